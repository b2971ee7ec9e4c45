//! Cameras. This machine has none, so: pixel-format conversion is checked on camera-format
//! frames recorded by FFmpeg (YUYV, NV12 and MJPEG as webcams send them) against FFmpeg's own
//! conversion; the plug/unplug handling is driven through a double at the device boundary
//! (the `CameraBackend` trait, the one place a double is allowed); and a scene with a camera
//! that is not there still records, with a warning and a NO SIGNAL card.

mod common;

use common::{raw_video, run, tally, tool, write_scene};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally::base::{FrameRef, Pacing, Packing, Tick, VideoFrame};
use tally::render::{Compositor, Gpu, Layer};
use tally::scene::Item;
use tally::scene::{CameraFormat, CameraSource};
use tally::sources::camera::convert::{nv12_to_rgba, yuyv_frame, yuyv_to_rgba, JpegDecoder};
use tally::sources::camera::{
    Camera, CameraBackend, CameraError, CameraInfo, CameraMode, CameraStream, DeviceProblem,
    PixelFormat, RawFrame,
};
use tally::sources::RunningSource;

const WIDTH: u32 = 320;
const HEIGHT: u32 = 240;

/// One frame of FFmpeg's test card in `pix_fmt` (raw) or as a JPEG (`mjpeg`).
fn recorded_frame(dir: &Path, pix_fmt: &str) -> Vec<u8> {
    let path = dir.join(format!("frame.{pix_fmt}"));
    let mut command = tool("ffmpeg");
    command
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={WIDTH}x{HEIGHT}:rate=1:duration=1"));
    if pix_fmt == "mjpeg" {
        // What a webcam sends: baseline JPEG, full-range 4:2:2.
        command.args([
            "-c:v", "mjpeg", "-pix_fmt", "yuvj422p", "-q:v", "2", "-f", "mjpeg",
        ]);
    } else {
        command.args(["-f", "rawvideo", "-pix_fmt", pix_fmt]);
    }
    let status = command.arg(&path).status().unwrap();
    assert!(status.success());
    std::fs::read(path).unwrap()
}

/// FFmpeg's RGBA for a recorded frame (BT.601, as Tally assumes). Chroma is taken from the
/// nearest sample, as Tally does, rather than interpolated.
fn ffmpeg_rgba(dir: &Path, pix_fmt: &str) -> Vec<u8> {
    let path = dir.join(format!("frame.{pix_fmt}"));
    let mut before = vec![];
    let size = format!("{WIDTH}x{HEIGHT}");
    if pix_fmt != "mjpeg" {
        before = vec!["-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", &size];
    }
    raw_video(&path, &before, &["-sws_flags", "neighbor"], "rgba")
}

/// Mean and 99.9th-percentile absolute difference over the colour channels.
fn difference(ours: &[u8], theirs: &[u8]) -> (f64, u8) {
    assert_eq!(ours.len(), theirs.len());
    let mut diffs: Vec<u8> = ours
        .chunks_exact(4)
        .zip(theirs.chunks_exact(4))
        .flat_map(|(a, b)| (0..3).map(move |c| a[c].abs_diff(b[c])))
        .collect();
    let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
    diffs.sort_unstable();
    (mean, diffs[diffs.len() * 999 / 1000])
}

#[test]
fn yuyv_frames_convert_like_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let frame = recorded_frame(dir.path(), "yuyv422");
    let ours = yuyv_to_rgba(WIDTH, HEIGHT, &frame).unwrap();
    let (mean, p999) = difference(&ours.pixels, &ffmpeg_rgba(dir.path(), "yuyv422"));
    assert!(
        mean < 1.5 && p999 <= 8,
        "mean {mean:.2}, 99.9th percentile {p999}"
    );
}

/// Draws `frame` alone on a canvas of its size through the compositor and reads it back.
fn through_the_compositor(frame: VideoFrame) -> VideoFrame {
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    let size = [frame.width, frame.height];
    let mut compositor = Compositor::new(Arc::new(Gpu::open().unwrap()), size);
    let item = Item::new("camera", [0.0, 0.0]);
    let frame = FrameRef {
        frame: Arc::new(frame),
        generation: 1,
    };
    let layer = Layer {
        source_id: "camera",
        frame: &frame,
        source_size: size,
        item: &item,
        clip: None,
    };
    compositor.render_rgba(&[layer]).unwrap()
}

#[test]
fn yuyv_frames_are_unpacked_on_the_gpu_like_ffmpeg_converts_them() {
    let dir = tempfile::tempdir().unwrap();
    let packed = yuyv_frame(WIDTH, HEIGHT, recorded_frame(dir.path(), "yuyv422")).unwrap();
    assert_eq!(packed.packing, Packing::Yuyv);
    assert_eq!(
        packed.pixels.len(),
        (WIDTH * HEIGHT * 2) as usize,
        "uploaded as it came"
    );
    let ours = through_the_compositor(packed);
    let (mean, p999) = difference(&ours.pixels, &ffmpeg_rgba(dir.path(), "yuyv422"));
    assert!(
        mean < 1.5 && p999 <= 8,
        "mean {mean:.2}, 99.9th percentile {p999}"
    );
}

#[test]
fn nv12_frames_convert_like_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let frame = recorded_frame(dir.path(), "nv12");
    let ours = nv12_to_rgba(WIDTH, HEIGHT, &frame).unwrap();
    let (mean, p999) = difference(&ours.pixels, &ffmpeg_rgba(dir.path(), "nv12"));
    assert!(
        mean < 1.5 && p999 <= 8,
        "mean {mean:.2}, 99.9th percentile {p999}"
    );
}

#[test]
fn mjpeg_frames_decode_like_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = recorded_frame(dir.path(), "mjpeg");
    let mut decoder = JpegDecoder::new().unwrap();
    let ours = decoder.decode(&jpeg).unwrap();
    assert_eq!((ours.width, ours.height), (WIDTH, HEIGHT));
    let (mean, p999) = difference(&ours.pixels, &ffmpeg_rgba(dir.path(), "mjpeg"));
    assert!(
        mean < 1.5 && p999 <= 8,
        "mean {mean:.2}, 99.9th percentile {p999}"
    );
    // The decoder is reused frame after frame; a truncated frame (a USB hiccup) is decoded
    // as far as it goes or refused, never a panic, and the next good frame decodes again.
    assert!(decoder.decode(&jpeg).is_ok());
    let _ = decoder.decode(&jpeg[..jpeg.len() / 3]);
    assert_eq!(decoder.decode(&jpeg).unwrap().pixels, ours.pixels);
}

/// A camera double: lists one camera while `plugged`, and streams solid-colour YUYV frames
/// until it is unplugged.
struct PluggableCamera {
    plugged: Arc<AtomicBool>,
    modes: Vec<CameraMode>,
}

struct PluggableStream {
    plugged: Arc<AtomicBool>,
    mode: CameraMode,
}

impl CameraBackend for PluggableCamera {
    fn list(&self) -> Result<Vec<CameraInfo>, CameraError> {
        Ok(if self.plugged.load(Ordering::SeqCst) {
            vec![CameraInfo {
                id: "/dev/video0".into(),
                name: "Test Cam".into(),
                modes: self.modes.clone(),
            }]
        } else {
            Vec::new()
        })
    }

    fn open(
        &mut self,
        _device: &str,
        mode: &CameraMode,
    ) -> Result<Box<dyn CameraStream>, CameraError> {
        Ok(Box::new(PluggableStream {
            plugged: self.plugged.clone(),
            mode: mode.clone(),
        }))
    }
}

impl CameraStream for PluggableStream {
    fn next_frame(&mut self) -> Result<RawFrame, CameraError> {
        std::thread::sleep(Duration::from_millis(10));
        if !self.plugged.load(Ordering::SeqCst) {
            return Err(CameraError::Lost {
                device: "/dev/video0".into(),
                // ENODEV, as V4L2 says when the camera is unplugged.
                cause: DeviceProblem::Api(std::sync::Arc::new(std::io::Error::from_raw_os_error(
                    19,
                ))),
            });
        }
        // BT.601 limited-range pure-ish green: Y 145, U 54, V 34.
        let pixels = (self.mode.width * self.mode.height / 2) as usize;
        Ok(RawFrame {
            data: [145u8, 54, 145, 34].repeat(pixels),
        })
    }
}

fn camera_source(format: CameraFormat) -> CameraSource {
    CameraSource {
        device: "/dev/video0".into(),
        width: 64,
        height: 48,
        fps: 30,
        format,
    }
}

fn yuyv_mode() -> CameraMode {
    CameraMode {
        width: 64,
        height: 48,
        fps: 30,
        pixel: PixelFormat::Yuyv,
    }
}

fn tick() -> Tick {
    Tick {
        index: 0,
        time: Duration::ZERO,
        pacing: Pacing::RealTime,
    }
}

/// Waits until the camera's picture has `rgb` near its top-left corner (clear of the NO
/// SIGNAL text); all notices seen meanwhile.
fn wait_for_colour(camera: &mut Camera, rgb: [u8; 3], notices: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        notices.extend(camera.notices().unwrap().take());
        if let Some(frame) = camera.video(tick()) {
            // Cameras' YUYV is unpacked by the compositor; unpack it here the same way.
            let unpacked = match frame.frame.packing {
                Packing::Yuyv => {
                    yuyv_to_rgba(frame.frame.width, frame.frame.height, &frame.frame.pixels)
                        .unwrap()
                }
                Packing::Rgba => (*frame.frame).clone(),
            };
            let f = &unpacked;
            let corner = ((f.width + 1) * 4) as usize;
            let pixel = &f.pixels[corner..corner + 3];
            if pixel.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 3) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "never showed {rgb:?}; notices: {notices:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

const NO_SIGNAL_BACKGROUND: [u8; 3] = [24, 24, 28];
const CAMERA_GREEN: [u8; 3] = [0, 255, 0];

#[test]
fn an_unplugged_camera_shows_no_signal_and_comes_back_by_itself() {
    let plugged = Arc::new(AtomicBool::new(true));
    let backend = PluggableCamera {
        plugged: plugged.clone(),
        modes: vec![yuyv_mode()],
    };
    let mut camera = Camera::open("cam", &camera_source(CameraFormat::Any), Box::new(backend));
    let mut notices = Vec::new();
    wait_for_colour(&mut camera, CAMERA_GREEN, &mut notices);
    assert_eq!(camera.size(), [64, 48]);

    plugged.store(false, Ordering::SeqCst);
    wait_for_colour(&mut camera, NO_SIGNAL_BACKGROUND, &mut notices);
    // The reason is given before the card is shown.
    notices.extend(camera.notices().unwrap().take());
    // The card keeps the camera's size, so the layout does not jump.
    assert_eq!(camera.size(), [64, 48]);
    assert!(
        notices
            .iter()
            .any(|n| n
                .contains("camera source `cam`: camera `/dev/video0` stopped delivering frames")),
        "{notices:?}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    notices.extend(camera.notices().unwrap().take());
    let complaints = notices.iter().filter(|n| n.contains("no camera")).count();
    assert!(complaints <= 1, "said once, not every second: {notices:?}");

    plugged.store(true, Ordering::SeqCst);
    wait_for_colour(&mut camera, CAMERA_GREEN, &mut notices);
    assert!(
        notices
            .iter()
            .any(|n| n.contains("reattached (64x48 30 fps YUYV)")),
        "{notices:?}"
    );
}

#[test]
fn a_format_the_camera_lacks_is_explained() {
    let backend = PluggableCamera {
        plugged: Arc::new(AtomicBool::new(true)),
        modes: vec![yuyv_mode()],
    };
    let camera = Camera::open(
        "cam",
        &camera_source(CameraFormat::Mjpeg),
        Box::new(backend),
    );
    let mut notices = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while notices.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        notices.extend(camera.notices().unwrap().take());
    }
    assert_eq!(
        notices.first().map(String::as_str),
        Some("camera source `cam`: camera `/dev/video0` offers no mjpeg format; it offers: 64x48 30 fps YUYV; retrying every second"),
    );
}

#[test]
fn the_nearest_format_is_chosen_and_reported() {
    let backend = PluggableCamera {
        plugged: Arc::new(AtomicBool::new(true)),
        modes: vec![yuyv_mode()],
    };
    let mut asked = camera_source(CameraFormat::Yuyv);
    asked.width = 1280;
    asked.height = 720;
    let mut camera = Camera::open("cam", &asked, Box::new(backend));
    let mut notices = Vec::new();
    wait_for_colour(&mut camera, CAMERA_GREEN, &mut notices);
    assert!(
        notices.iter().any(|n| n
            == "camera source `cam`: 1280x720 at 30 fps is not offered; using the nearest, 64x48 30 fps YUYV"),
        "{notices:?}"
    );
}

#[test]
fn a_scene_with_a_missing_camera_still_records_with_no_signal() {
    let dir = tempfile::tempdir().unwrap();
    let scene = write_scene(
        dir.path(),
        "camera.toml",
        r#"
[canvas]
width = 320
height = 180
fps = 30

[[sources]]
id = "cam"
kind = "camera"
device = "/dev/video9"
width = 640
height = 360

[[scenes]]
name = "Main"

[[scenes.items]]
source = "cam"
bounds = { width = 320, height = 180 }
"#,
    );
    let output = dir.path().join("camera.mkv");
    let result = run(tally()
        .arg("record")
        .arg(&scene)
        .arg("-o")
        .arg(&output)
        .args(["--duration", "2s", "--quiet"]));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: camera source `cam`: no camera `/dev/video9`"),
        "{stderr}"
    );
    // The picture is the NO SIGNAL card (dark grey with light text), not black.
    let frame = raw_video(&output, &["-ss", "1"], &["-frames:v", "1"], "rgb24");
    let corner = &frame[..3];
    assert!(
        corner
            .iter()
            .zip(NO_SIGNAL_BACKGROUND)
            .all(|(a, b)| a.abs_diff(b) <= 4),
        "corner {corner:?}"
    );
    assert!(
        frame.chunks_exact(3).any(|p| p[0] > 150),
        "the card's text is drawn"
    );
}

#[test]
fn devices_says_plainly_when_there_is_no_camera() {
    let has_camera = std::fs::read_dir("/dev").is_ok_and(|entries| {
        entries
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().starts_with("video"))
    });
    if has_camera {
        eprintln!("this machine has a /dev/video* node; the empty listing is not checked here");
        return;
    }
    let output = run(tally().arg("devices"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        stdout.contains("Cameras:\n  none found (no /dev/video* devices): plug one in, or check that this user is in the `video` group"),
        "{stdout}"
    );
}
