//! The app in a real window: started under Xvfb as a user would start it, it must show the
//! collection's picture in its monitors (the engine's canvas drawn through the shared GPU
//! device and presented to the X server), checked on a screenshot of the X display; and a
//! collection chosen in the real file dialog (the desktop portal's GTK dialog, or zenity where
//! no portal runs, driven with xdotool) is opened.

mod common;

use common::{decode_errors, stream_times, tally, tool, write_scene, DesktopPortal, XServer};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A canvas filled with one unmistakable colour.
fn one_colour_scene(dir: &Path, name: &str, colour: &str) -> PathBuf {
    write_scene(
        dir,
        name,
        &format!("[canvas]\nwidth = 640\nheight = 360\nfps = 30\n\n[[sources]]\nid = \"fill\"\nkind = \"color\"\ncolor = \"#{colour}\"\n\n[[scenes]]\nname = \"Main\"\n\n[[scenes.items]]\nsource = \"fill\"\n"),
    )
}

/// Starts the app on `scene` in `x`'s display, with its settings under `config`, on the
/// session bus of `portal` (or on none, so file dialogs are zenity's).
fn start_app(x: &XServer, scene: &Path, config: &Path, portal: Option<&DesktopPortal>) -> Child {
    app_command(x, scene, config, portal).spawn().unwrap()
}

/// The command [`start_app`] runs, for a test to add to.
fn app_command(
    x: &XServer,
    scene: &Path,
    config: &Path,
    portal: Option<&DesktopPortal>,
) -> Command {
    let mut app = tally();
    match portal {
        Some(portal) => app
            .env("DBUS_SESSION_BUS_ADDRESS", &portal.bus_address)
            .env("XDG_CURRENT_DESKTOP", "GNOME"),
        None => app.env_remove("DBUS_SESSION_BUS_ADDRESS"),
    };
    app.env("DISPLAY", &x.display)
        .env("XDG_CONFIG_HOME", config)
        .env("TALLY_LOG", "warn,tally::ui::window_loop=debug")
        .arg(scene)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    app
}

/// Whether an RGB pixel is within a few levels of `rgb`.
fn near(pixel: &[u8], rgb: [u8; 3]) -> bool {
    pixel
        .iter()
        .zip(rgb)
        .all(|(value, wanted)| value.abs_diff(wanted) < 12)
}

/// Takes screenshots of the display until more than `at_least` pixels are within a few
/// levels of `rgb`, for up to 30 s; returns that count.
fn wait_for_colour(
    x: &XServer,
    app: &mut Child,
    rgb: [u8; 3],
    at_least: usize,
    shot: &Path,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            app.try_wait().unwrap().is_none(),
            "the app exited: {}",
            app.stderr
                .take()
                .map(|mut stderr| {
                    let mut text = String::new();
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
                    text
                })
                .unwrap_or_default()
        );
        let pixels = screenshot(x, [1280, 800], shot);
        let matching = pixels
            .chunks_exact(3)
            .filter(|pixel| near(pixel, rgb))
            .count();
        if matching > at_least {
            return matching;
        }
        assert!(
            Instant::now() < deadline,
            "not on screen after 30 s: {rgb:?} ({matching} pixels)"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The top left `size` of the display as RGB bytes (also written to `shot`).
fn screenshot(x: &XServer, [width, height]: [u32; 2], shot: &Path) -> Vec<u8> {
    let status = tool("ffmpeg")
        .args(["-v", "error", "-y", "-f", "x11grab", "-video_size"])
        .arg(format!("{width}x{height}"))
        .arg("-i")
        .arg(&x.display)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24"])
        .arg(shot)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(shot).unwrap()
}

/// Runs xdotool on `x`'s display; fails the test if it fails (or hangs for 30 s).
fn xdotool(x: &XServer, args: &[&str]) -> String {
    let output = tool("timeout")
        .arg("30")
        .arg("xdotool")
        .args(args)
        .env("DISPLAY", &x.display)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "xdotool {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Ends `app` and returns what it logged.
fn kill_and_read_log(mut app: Child) -> String {
    let _ = app.kill();
    let _ = app.wait();
    let mut log = String::new();
    if let Some(mut stderr) = app.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut stderr, &mut log);
    }
    log
}

/// Green pixels in an RGB screenshot `width` pixels wide: (left of `split`, from it on).
fn green_left_and_right(pixels: &[u8], width: usize, split: usize) -> (usize, usize) {
    let mut counts = (0, 0);
    for (index, pixel) in pixels.chunks_exact(3).enumerate() {
        match (near(pixel, [0x20, 0xc0, 0x40]), index % width < split) {
            (true, true) => counts.0 += 1,
            (true, false) => counts.1 += 1,
            _ => {}
        }
    }
    counts
}

/// On lavapipe the frames go to the X server through MIT-SHM (`ui::x11_shm`): the picture
/// must be on screen, and again after the window grows past its first size (a bigger frame
/// texture and shared segment).
#[test]
fn the_app_opens_a_window_showing_the_scene() {
    let x = XServer::start(1600, 1000);
    let dir = tempfile::tempdir().unwrap();
    let scene = one_colour_scene(dir.path(), "window.toml", "20c040");
    let mut app = start_app(&x, &scene, &dir.path().join("config"), None);
    let shot = dir.path().join("screen.rgb");
    // Two monitors of about 630x355 each in the 1280x800 window.
    let green_pixels = wait_for_colour(&x, &mut app, [0x20, 0xc0, 0x40], 300_000, &shot);
    assert!(
        green_pixels < 1280 * 800,
        "the window has more than the monitors"
    );

    let window = xdotool(&x, &["search", "--name", "^Tally"]);
    let window = window.lines().next().unwrap().to_string();
    xdotool(&x, &["windowsize", &window, "1560", "960"]);
    // The monitors grow with the window, to about 770x433 each, the right one past x = 1280.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (left, right) = loop {
        let counts = green_left_and_right(&screenshot(&x, [1600, 1000], &shot), 1600, 1280);
        if counts.1 > 80_000 || Instant::now() > deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let log = kill_and_read_log(app);
    assert!(
        right > 80_000 && left + right > 550_000,
        "after growing the window: {left} green pixels left of x = 1280, {right} right of it"
    );
    assert!(
        log.contains("through shared memory") && !log.contains("from now on"),
        "the frames did not go through MIT-SHM all along: {log}"
    );
}

/// The swapchain, where MIT-SHM is not used (a GPU, a remote X server, or switched off).
#[test]
fn the_app_shows_the_scene_through_the_swapchain_too() {
    let x = XServer::start(1280, 800);
    let dir = tempfile::tempdir().unwrap();
    let scene = one_colour_scene(dir.path(), "swapchain.toml", "20c040");
    let mut app = app_command(&x, &scene, &dir.path().join("config"), None)
        .env("TALLY_WINDOW_SHM", "off")
        .spawn()
        .unwrap();
    let shot = dir.path().join("screen.rgb");
    let green_pixels = wait_for_colour(&x, &mut app, [0x20, 0xc0, 0x40], 300_000, &shot);
    let log = kill_and_read_log(app);
    assert!(green_pixels < 1280 * 800);
    assert!(
        log.contains("through the swapchain: TALLY_WINDOW_SHM=off"),
        "not through the swapchain: {log}"
    );
}

/// The path a machine with a GPU takes (egui-wgpu's own renderer, each frame presented as soon
/// as it is submitted), forced on lavapipe so it is tested here too.
#[test]
fn the_gpu_presenter_shows_the_scene_and_the_docks() {
    let x = XServer::start(1280, 800);
    let dir = tempfile::tempdir().unwrap();
    let scene = one_colour_scene(dir.path(), "gpu.toml", "c04020");
    let mut app = app_command(&x, &scene, &dir.path().join("config"), None)
        .env("TALLY_WINDOW_PRESENTER", "gpu")
        .spawn()
        .unwrap();
    let shot = dir.path().join("screen.rgb");
    let scene_pixels = wait_for_colour(&x, &mut app, [0xc0, 0x40, 0x20], 300_000, &shot);
    // The canvas is a part of the window: the docks around it were drawn too, with their
    // light text on dark panels.
    assert!(scene_pixels < 1280 * 800);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let light = screenshot(&x, [1280, 800], &shot)
            .chunks_exact(3)
            .filter(|pixel| pixel.iter().all(|&channel| channel > 150))
            .count();
        if light > 1000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no dock text was drawn ({light} light pixels)"
        );
    }
    let log = kill_and_read_log(app);
    assert!(
        log.contains("the window draws with egui-wgpu into the swapchain"),
        "not the GPU's path: {log}"
    );
}

#[test]
fn ctrl_c_closes_the_window_and_finishes_its_recording() {
    let x = XServer::start(1280, 800);
    let dir = tempfile::tempdir().unwrap();
    let scene = one_colour_scene(dir.path(), "closing.toml", "2040c0");
    let recording = dir.path().join("closing.mp4");
    let mut app = app_command(&x, &scene, &dir.path().join("config"), None)
        .arg("--record")
        .arg(&recording)
        .spawn()
        .unwrap();
    let shot = dir.path().join("screen.rgb");
    wait_for_colour(&x, &mut app, [0x20, 0x40, 0xc0], 300_000, &shot);
    std::thread::sleep(Duration::from_secs(2));
    let status = tool("kill")
        .args(["-INT", &app.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = app.try_wait().unwrap() {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = app.kill();
            panic!("the app did not close within 30 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut app.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(exit.success(), "the app exited with {exit}: {stderr}");
    assert!(stderr.contains("window: "), "no redraw count: {stderr}");
    assert!(stderr.contains("frames: "), "no frame count: {stderr}");
    assert_eq!(decode_errors(&recording), "");
    let (_, seconds) = stream_times(&recording, "v:0");
    assert!(seconds > 1.5, "the recording holds {seconds} s");
}

#[test]
fn ctrl_o_opens_a_collection_chosen_in_zenitys_dialog_where_no_portal_runs() {
    let x = XServer::start(1280, 800);
    // rfd falls back to zenity, whose window is called "zenity" (rfd gives it no title).
    open_second_collection_with_ctrl_o(&x, None, "^zenity$");
}

#[test]
fn ctrl_o_opens_a_collection_chosen_in_the_desktop_portals_dialog() {
    let x = XServer::start(1280, 800);
    let portal = DesktopPortal::start(&x);
    // The portal's own GTK dialog carries the app's title; zenity's would be called "zenity".
    open_second_collection_with_ctrl_o(&x, Some(&portal), "^Open scene collection$");
}

/// Starts the app on one collection, presses Ctrl+O, types a second collection's path into the
/// file dialog whose window name matches `dialog_name`, and checks the app opened it.
fn open_second_collection_with_ctrl_o(
    x: &XServer,
    portal: Option<&DesktopPortal>,
    dialog_name: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let first = one_colour_scene(dir.path(), "first.toml", "20c040");
    let second = one_colour_scene(dir.path(), "second.toml", "c02020");
    let config = dir.path().join("config");
    let mut app = start_app(x, &first, &config, portal);
    let shot = dir.path().join("screen.rgb");
    wait_for_colour(x, &mut app, [0x20, 0xc0, 0x40], 300_000, &shot);

    let window = xdotool(x, &["search", "--sync", "--name", "^Tally$"]);
    let window = window.lines().next().unwrap().to_string();
    xdotool(x, &["windowfocus", "--sync", &window]);
    xdotool(x, &["key", "ctrl+o"]);
    // A GTK file chooser either way, where Ctrl+L types a location.
    let dialog = xdotool(
        x,
        &["search", "--sync", "--onlyvisible", "--name", dialog_name],
    );
    let dialog = dialog.lines().next().unwrap().to_string();
    xdotool(x, &["windowfocus", "--sync", &dialog]);
    xdotool(x, &["key", "ctrl+l"]);
    std::thread::sleep(Duration::from_millis(500));
    xdotool(x, &["type", "--delay", "20", second.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(500));
    xdotool(x, &["key", "Return"]);

    // The app opened it: its picture is on screen, and it is remembered as the last one.
    wait_for_colour(x, &mut app, [0xc0, 0x20, 0x20], 300_000, &shot);
    let settings = std::fs::read_to_string(config.join("tally/settings.toml")).unwrap();
    assert!(
        settings.contains(&format!(
            "last_collection = {:?}",
            second.canonicalize().unwrap().display().to_string()
        )),
        "{settings}"
    );
    let _ = app.kill();
    let _ = app.wait();
}
