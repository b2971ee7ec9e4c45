//! The app in a real window: started under Xvfb as a user would start it, it must show the
//! collection's picture in its monitors (the engine's canvas drawn through the shared GPU
//! device and presented to the X server), checked on a screenshot of the X display.

mod common;

use common::{tally, tool, write_scene, XServer};
use std::time::{Duration, Instant};

#[test]
fn the_app_opens_a_window_showing_the_scene() {
    let x = XServer::start(1280, 800);
    let dir = tempfile::tempdir().unwrap();
    // A canvas filled with one unmistakable colour.
    let scene = write_scene(
        dir.path(),
        "window.toml",
        "[canvas]\nwidth = 640\nheight = 360\nfps = 30\n\n[[sources]]\nid = \"green\"\nkind = \"color\"\ncolor = \"#20c040\"\n\n[[scenes]]\nname = \"Main\"\n\n[[scenes.items]]\nsource = \"green\"\n",
    );
    let mut app = tally()
        .env("DISPLAY", &x.display)
        .arg(&scene)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let shot = dir.path().join("screen.rgb");
    let deadline = Instant::now() + Duration::from_secs(30);
    let green_pixels = loop {
        assert!(
            app.try_wait().unwrap().is_none(),
            "the app exited: {}",
            String::from_utf8_lossy(&app.wait_with_output().unwrap().stderr)
        );
        let status = tool("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "x11grab",
                "-video_size",
                "1280x800",
                "-i",
            ])
            .arg(&x.display)
            .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24"])
            .arg(&shot)
            .status()
            .unwrap();
        assert!(status.success());
        let pixels = std::fs::read(&shot).unwrap();
        let green = pixels
            .chunks_exact(3)
            .filter(|p| {
                p[0].abs_diff(0x20) < 12 && p[1].abs_diff(0xc0) < 12 && p[2].abs_diff(0x40) < 12
            })
            .count();
        // Two monitors of about 630x355 each at 1280x800.
        if green > 300_000 {
            break green;
        }
        assert!(
            Instant::now() < deadline,
            "no picture after 30 s ({green} green pixels)"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = app.kill();
    let _ = app.wait();
    assert!(
        green_pixels < 1280 * 800,
        "the window has more than the monitors"
    );
}
