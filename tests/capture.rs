//! Screen and window capture on a real X server (Xvfb, started by the test): what Tally records
//! shows what was on the screen, and a window that closes becomes "no signal".

mod common;

use common::{run_ok, tally, write_scene, XServer};
use std::path::Path;
use std::time::Duration;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt, CreateWindowAux, PropMode, WindowClass};
use x11rb::wrapper::ConnectionExt as _;

/// The mean colour of a rectangle of frame `at_seconds` of `file` (RGB).
fn colour_at(file: &Path, at_seconds: f64, x: u32, y: u32, width: u32, height: u32) -> [f64; 3] {
    let seek = at_seconds.to_string();
    let crop = format!("crop={width}:{height}:{x}:{y}");
    let rgb = common::raw_video(
        file,
        &["-ss", &seek],
        &["-frames:v", "1", "-vf", &crop],
        "rgb24",
    );
    let pixels = rgb.chunks_exact(3).count().max(1) as f64;
    let mut sum = [0.0; 3];
    for pixel in rgb.chunks_exact(3) {
        for (total, value) in sum.iter_mut().zip(pixel) {
            *total += f64::from(*value);
        }
    }
    sum.map(|total| total / pixels)
}

fn assert_close(actual: [f64; 3], expected: [f64; 3], what: &str) {
    let close = actual
        .iter()
        .zip(expected)
        .all(|(a, e)| (a - e).abs() < 16.0);
    assert!(
        close,
        "{what}: colour {actual:?}, expected about {expected:?}"
    );
}

fn screen_scene(dir: &Path, source_settings: &str) -> std::path::PathBuf {
    write_scene(
        dir,
        "capture.toml",
        &format!(
            r#"
[canvas]
width = 640
height = 360
fps = 30

[[sources]]
id = "capture"
kind = "screen"
{source_settings}

[[scenes]]
name = "Capture"

[[scenes.items]]
source = "capture"
bounds = {{ width = 640, height = 360, fit = "stretch" }}
"#
        ),
    )
}

fn record(scene: &Path, output: &Path, seconds: &str) {
    run_ok(
        tally()
            .arg("record")
            .arg(scene)
            .arg("-o")
            .arg(output)
            .args(["--duration", seconds, "--quiet"]),
    );
}

/// A window of one colour with a title, mapped on `display`; destroyed when dropped.
struct TestWindow {
    connection: x11rb::rust_connection::RustConnection,
    window: u32,
}

impl TestWindow {
    fn open(display: &str, title: &str, rgb: u32, geometry: (i16, i16, u16, u16)) -> Self {
        let (connection, screen) = x11rb::connect(Some(display)).unwrap();
        let root = connection.setup().roots[screen].root;
        let window = connection.generate_id().unwrap();
        let (x, y, width, height) = geometry;
        connection
            .create_window(
                x11rb::COPY_DEPTH_FROM_PARENT,
                window,
                root,
                x,
                y,
                width,
                height,
                0,
                WindowClass::INPUT_OUTPUT,
                x11rb::COPY_FROM_PARENT,
                &CreateWindowAux::new()
                    .background_pixel(rgb)
                    .override_redirect(1),
            )
            .unwrap();
        connection
            .change_property8(
                PropMode::REPLACE,
                window,
                AtomEnum::WM_NAME,
                AtomEnum::STRING,
                title.as_bytes(),
            )
            .unwrap();
        connection.map_window(window).unwrap();
        connection.flush().unwrap();
        connection.sync().unwrap();
        Self { connection, window }
    }

    fn close(self) {
        self.connection.destroy_window(self.window).unwrap();
        self.connection.flush().unwrap();
        self.connection.sync().unwrap();
    }
}

#[test]
fn whole_screen_is_recorded() {
    let x = XServer::start(640, 360);
    x.paint_root("#ff0000");
    let dir = tempfile::tempdir().unwrap();
    let scene = screen_scene(
        dir.path(),
        &format!("display = \"{}\"\ncursor = false", x.display),
    );
    let output = dir.path().join("screen.mp4");
    record(&scene, &output, "2s");
    assert_close(
        colour_at(&output, 1.0, 0, 0, 640, 360),
        [255.0, 0.0, 0.0],
        "the red desktop",
    );
}

#[test]
fn a_region_and_a_window_by_title_are_recorded() {
    let x = XServer::start(640, 360);
    x.paint_root("#ff0000");
    let window = TestWindow::open(
        &x.display,
        "Tally capture test",
        0x0000ff,
        (100, 50, 200, 100),
    );
    let dir = tempfile::tempdir().unwrap();

    // The region exactly over the blue window, stretched to the whole canvas: all blue.
    let scene = screen_scene(
        dir.path(),
        &format!(
            "display = \"{}\"\ncursor = false\nregion = {{ x = 100, y = 50, width = 200, height = 100 }}",
            x.display
        ),
    );
    let output = dir.path().join("region.mp4");
    record(&scene, &output, "2s");
    assert_close(
        colour_at(&output, 1.0, 8, 8, 624, 344),
        [0.0, 0.0, 255.0],
        "the region",
    );

    // The window found by its title.
    let scene = screen_scene(
        dir.path(),
        &format!(
            "display = \"{}\"\ncursor = false\nwindow = \"capture test\"",
            x.display
        ),
    );
    let output = dir.path().join("window.mp4");
    let recording = std::thread::spawn({
        let (scene, output) = (scene.clone(), output.clone());
        move || record(&scene, &output, "4s")
    });
    std::thread::sleep(Duration::from_millis(2000));
    window.close();
    recording.join().unwrap();
    assert_close(
        colour_at(&output, 0.5, 8, 8, 624, 344),
        [0.0, 0.0, 255.0],
        "the window",
    );
    // Closed: the "no signal" card, dark grey with light text.
    let after = colour_at(&output, 3.8, 8, 8, 624, 60);
    assert_close(after, [24.0, 24.0, 28.0], "after the window closed");
}

#[test]
fn a_missing_display_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let scene = screen_scene(dir.path(), "display = \":987\"");
    let output = tally()
        .arg("record")
        .arg(&scene)
        .arg("-o")
        .arg(dir.path().join("x.mp4"))
        .args(["--duration", "1s"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("source `capture`: cannot open X display :987"),
        "{stderr}"
    );
}
