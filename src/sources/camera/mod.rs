//! Camera sources: a webcam or capture card shown on the canvas.
//!
//! A capture thread per camera opens the device through a [`CameraBackend`] (V4L2 via nokhwa
//! in the app; a double in tests, the one place one is allowed), negotiates the format
//! nearest to what the scene asks for, converts each frame to RGBA and publishes it into a
//! latest-frame slot, so a slow camera never stalls the render clock. When the camera is
//! missing or unplugged the source shows a NO SIGNAL card, says so once, and tries to open it
//! again every second; a missing camera is a warning, never a failed collection.

pub mod convert;
mod v4l;

pub use v4l::V4lBackend;

use super::screen::no_signal_card;
use super::{spawn_source_thread, Notices, RunningSource};
use crate::base::{FrameRef, Tick, VideoFrame};
use crate::scene::{CameraFormat, CameraSource};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const RETRY_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PixelFormat {
    Mjpeg,
    Yuyv,
    Nv12,
    /// A format Tally does not convert, by its FourCC or name.
    Other(String),
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PixelFormat::Mjpeg => write!(f, "MJPEG"),
            PixelFormat::Yuyv => write!(f, "YUYV"),
            PixelFormat::Nv12 => write!(f, "NV12"),
            PixelFormat::Other(name) => write!(f, "{name}"),
        }
    }
}

/// One format a camera can deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraMode {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub pixel: PixelFormat,
}

impl fmt::Display for CameraMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{} {} fps {}",
            self.width, self.height, self.fps, self.pixel
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraInfo {
    /// What a scene names it by: the device path on Linux.
    pub id: String,
    pub name: String,
    pub modes: Vec<CameraMode>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraError {
    #[error("no camera `{wanted}`; {available}")]
    NotFound { wanted: String, available: String },
    #[error("camera `{device}` is busy: another program is using it; close it and the camera is picked up within a second")]
    Busy { device: String },
    #[error("camera `{device}`: permission denied; add this user to the `video` group")]
    Denied { device: String },
    #[error("camera `{device}` offers no {wanted} format; it offers: {offered}")]
    NoFormat {
        device: String,
        wanted: String,
        offered: String,
    },
    #[error("camera `{device}`: {cause}")]
    Device {
        device: String,
        cause: DeviceProblem,
    },
    /// The camera was working and stopped delivering frames (unplugged).
    #[error("camera `{device}` stopped delivering frames: {cause}")]
    Lost {
        device: String,
        cause: DeviceProblem,
    },
}

/// What went wrong with a camera device: Tally's own findings, or the camera API's error,
/// kept whole.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeviceProblem {
    #[error("not a /dev/videoN device")]
    NotAVideoDevice,
    #[error("{0} cannot be converted")]
    Unconvertible(PixelFormat),
    #[error("{0}")]
    Api(Arc<dyn std::error::Error + Send + Sync>),
}

/// Two problems are the same when the operator would read the same words: the capture thread
/// says a problem again only when it changes.
impl PartialEq for DeviceProblem {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (DeviceProblem::NotAVideoDevice, DeviceProblem::NotAVideoDevice) => true,
            (DeviceProblem::Unconvertible(a), DeviceProblem::Unconvertible(b)) => a == b,
            (DeviceProblem::Api(a), DeviceProblem::Api(b)) => a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

impl Eq for DeviceProblem {}

/// A raw frame as the camera sent it.
pub struct RawFrame {
    pub data: Vec<u8>,
}

/// The device boundary: what Tally needs from a camera API.
pub trait CameraBackend: Send {
    fn list(&self) -> Result<Vec<CameraInfo>, CameraError>;
    /// Opens `device` in `mode` (one of those it listed) and starts streaming.
    fn open(
        &mut self,
        device: &str,
        mode: &CameraMode,
    ) -> Result<Box<dyn CameraStream>, CameraError>;
}

/// Lives on the capture thread that opened it, so it need not be `Send`.
pub trait CameraStream {
    /// Blocks until the next frame (cameras pace themselves) or fails when the device is gone.
    fn next_frame(&mut self) -> Result<RawFrame, CameraError>;
}

/// What the scene asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FormatRequest {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub format: CameraFormat,
}

impl From<&CameraSource> for FormatRequest {
    fn from(source: &CameraSource) -> Self {
        Self {
            width: source.width,
            height: source.height,
            fps: source.fps,
            format: source.format,
        }
    }
}

fn matches(format: CameraFormat, pixel: &PixelFormat) -> bool {
    match format {
        CameraFormat::Any => !matches!(pixel, PixelFormat::Other(_)),
        CameraFormat::Mjpeg => *pixel == PixelFormat::Mjpeg,
        CameraFormat::Yuyv => *pixel == PixelFormat::Yuyv,
        CameraFormat::Nv12 => *pixel == PixelFormat::Nv12,
    }
}

/// The supported mode nearest to the request: the closest size (by how far each side is off,
/// as a ratio), then a frame rate at or just above the one asked for rather than below it,
/// then (for `any`) uncompressed over MJPEG, which costs a decode.
pub fn choose_mode(modes: &[CameraMode], request: &FormatRequest) -> Option<CameraMode> {
    let size_distance = |mode: &CameraMode| {
        let ratio =
            |got: u32, want: u32| (f64::from(got.max(1)) / f64::from(want.max(1))).ln().abs();
        ratio(mode.width, request.width) + ratio(mode.height, request.height)
    };
    let rate_distance = |mode: &CameraMode| {
        let (got, want) = (f64::from(mode.fps), f64::from(request.fps));
        if got >= want {
            (got - want) / want
        } else {
            // A camera slower than the canvas repeats frames: much worse than a faster one.
            4.0 * (want - got) / want
        }
    };
    let format_cost = |mode: &CameraMode| match mode.pixel {
        PixelFormat::Nv12 | PixelFormat::Yuyv => 0,
        _ => 1,
    };
    modes
        .iter()
        .filter(|mode| matches(request.format, &mode.pixel))
        .min_by(|a, b| {
            let key = |mode: &CameraMode| (size_distance(mode), rate_distance(mode));
            let (sa, ra) = key(a);
            let (sb, rb) = key(b);
            sa.total_cmp(&sb)
                .then(ra.total_cmp(&rb))
                .then(format_cost(a).cmp(&format_cost(b)))
        })
        .cloned()
}

/// Latest converted picture, shared with the render thread.
struct Slot {
    frame: FrameRef,
    size: [u32; 2],
}

pub struct Camera {
    slot: Arc<Mutex<Slot>>,
    notices: Notices,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Camera {
    pub fn open(id: &str, settings: &CameraSource, backend: Box<dyn CameraBackend>) -> Self {
        let size = [settings.width, settings.height];
        let slot = Arc::new(Mutex::new(Slot {
            frame: FrameRef {
                frame: Arc::new(no_signal_card(size)),
                generation: 1,
            },
            size,
        }));
        let notices = Notices::default();
        let stop = Arc::new(AtomicBool::new(false));
        let capture = Capture {
            label: format!("camera source `{id}`"),
            device: settings.device.clone(),
            request: FormatRequest::from(settings),
            backend,
            slot: slot.clone(),
            notices: notices.clone(),
            stop: stop.clone(),
        };
        let thread =
            match spawn_source_thread(&format!("camera-{id}"), &notices, move || capture.run()) {
                Ok(thread) => Some(thread),
                Err(error) => {
                    notices.push(format!(
                    "camera source `{id}` shows nothing: its capture thread cannot start: {error}"
                ));
                    None
                }
            };
        Self {
            slot,
            notices,
            stop,
            thread,
        }
    }
}

impl RunningSource for Camera {
    fn size(&self) -> [u32; 2] {
        self.slot.lock().map_or([1, 1], |slot| slot.size)
    }

    fn video(&mut self, _tick: Tick) -> Option<FrameRef> {
        self.slot.lock().ok().map(|slot| slot.frame.clone())
    }

    fn notices(&self) -> Option<&Notices> {
        Some(&self.notices)
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Capture {
    label: String,
    device: String,
    request: FormatRequest,
    backend: Box<dyn CameraBackend>,
    slot: Arc<Mutex<Slot>>,
    notices: Notices,
    stop: Arc<AtomicBool>,
}

impl Capture {
    fn run(mut self) {
        let mut last_problem: Option<CameraError> = None;
        let mut ever_opened = false;
        while !self.stop.load(Ordering::Relaxed) {
            let tried = Instant::now();
            match self.open() {
                Ok((mut stream, mode)) => {
                    if ever_opened {
                        self.notices
                            .push(format!("{}: reattached ({mode})", self.label));
                    }
                    ever_opened = true;
                    last_problem = None;
                    if let Err(error) = self.stream(stream.as_mut(), &mode) {
                        // Said before it is shown, so whoever sees the card finds the reason.
                        self.notices.push(format!(
                            "{}: {error}; showing NO SIGNAL until it is back",
                            self.label
                        ));
                        self.show_no_signal();
                        last_problem = Some(error);
                    }
                }
                Err(error) => {
                    if last_problem.as_ref() != Some(&error) {
                        self.notices
                            .push(format!("{}: {error}; retrying every second", self.label));
                        last_problem = Some(error);
                    }
                }
            }
            // Wait out the rest of the retry period, a little at a time so stopping is quick.
            while tried.elapsed() < RETRY_EVERY && !self.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn open(&mut self) -> Result<(Box<dyn CameraStream>, CameraMode), CameraError> {
        let cameras = self.backend.list()?;
        let camera = find_camera(&cameras, &self.device).ok_or_else(|| CameraError::NotFound {
            wanted: self.device.clone(),
            available: if cameras.is_empty() {
                "no cameras are connected (`tally devices` lists them)".into()
            } else {
                format!(
                    "connected: {}",
                    cameras
                        .iter()
                        .map(|c| format!("{} ({})", c.id, c.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        })?;
        let mode =
            choose_mode(&camera.modes, &self.request).ok_or_else(|| CameraError::NoFormat {
                device: camera.id.clone(),
                wanted: format!("{:?}", self.request.format).to_lowercase(),
                offered: offered(&camera.modes),
            })?;
        let asked = &self.request;
        if (mode.width, mode.height, mode.fps) != (asked.width, asked.height, asked.fps) {
            self.notices.push(format!(
                "{}: {}x{} at {} fps is not offered; using the nearest, {mode}",
                self.label, asked.width, asked.height, asked.fps
            ));
        }
        let stream = self.backend.open(&camera.id, &mode)?;
        Ok((stream, mode))
    }

    /// Publishes frames until the camera fails or the source stops.
    fn stream(
        &mut self,
        stream: &mut dyn CameraStream,
        mode: &CameraMode,
    ) -> Result<(), CameraError> {
        let mut jpeg = None;
        let mut bad_frames_reported = false;
        while !self.stop.load(Ordering::Relaxed) {
            let raw = stream.next_frame()?;
            match convert::to_frame(&mode.pixel, mode.width, mode.height, raw.data, &mut jpeg) {
                Ok(frame) => self.publish(frame),
                // A corrupt frame now and then is normal on USB; say it once and go on.
                Err(error) if !bad_frames_reported => {
                    bad_frames_reported = true;
                    self.notices
                        .push(format!("{}: skipping a bad frame: {error}", self.label));
                }
                Err(_) => {}
            }
        }
        Ok(())
    }

    fn publish(&self, frame: VideoFrame) {
        if let Ok(mut slot) = self.slot.lock() {
            slot.size = [frame.width, frame.height];
            slot.frame = FrameRef {
                frame: Arc::new(frame),
                generation: slot.frame.generation + 1,
            };
        }
    }

    fn show_no_signal(&self) {
        if let Ok(mut slot) = self.slot.lock() {
            slot.frame = FrameRef {
                frame: Arc::new(no_signal_card(slot.size)),
                generation: slot.frame.generation + 1,
            };
        }
    }
}

/// By id (device path), by index (`0` for /dev/video0), then by name.
pub fn find_camera<'c>(cameras: &'c [CameraInfo], wanted: &str) -> Option<&'c CameraInfo> {
    cameras
        .iter()
        .find(|camera| camera.id == wanted)
        .or_else(|| {
            let index: usize = wanted.parse().ok()?;
            cameras
                .iter()
                .find(|camera| camera.id == format!("/dev/video{index}"))
        })
        .or_else(|| cameras.iter().find(|camera| camera.name == wanted))
        .or_else(|| {
            cameras
                .iter()
                .find(|camera| camera.name.eq_ignore_ascii_case(wanted))
        })
}

fn offered(modes: &[CameraMode]) -> String {
    if modes.is_empty() {
        return "nothing".into();
    }
    modes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(width: u32, height: u32, fps: u32, pixel: PixelFormat) -> CameraMode {
        CameraMode {
            width,
            height,
            fps,
            pixel,
        }
    }

    /// A typical USB webcam: YUYV only up to 640x480 at 30 (bandwidth), MJPEG up to 1080p30.
    fn webcam() -> Vec<CameraMode> {
        vec![
            mode(640, 480, 30, PixelFormat::Yuyv),
            mode(1280, 720, 10, PixelFormat::Yuyv),
            mode(640, 480, 30, PixelFormat::Mjpeg),
            mode(1280, 720, 30, PixelFormat::Mjpeg),
            mode(1280, 720, 60, PixelFormat::Mjpeg),
            mode(1920, 1080, 30, PixelFormat::Mjpeg),
        ]
    }

    fn request(width: u32, height: u32, fps: u32, format: CameraFormat) -> FormatRequest {
        FormatRequest {
            width,
            height,
            fps,
            format,
        }
    }

    #[test]
    fn an_offered_format_is_taken_as_is() {
        let chosen = choose_mode(&webcam(), &request(1920, 1080, 30, CameraFormat::Any));
        assert_eq!(chosen, Some(mode(1920, 1080, 30, PixelFormat::Mjpeg)));
        let chosen = choose_mode(&webcam(), &request(640, 480, 30, CameraFormat::Any));
        assert_eq!(
            chosen,
            Some(mode(640, 480, 30, PixelFormat::Yuyv)),
            "uncompressed wins a tie"
        );
    }

    #[test]
    fn the_nearest_size_and_a_rate_at_or_above_the_canvas_are_preferred() {
        // 720p30 YUYV only comes at 10 fps: MJPEG at 30 is nearer.
        let chosen = choose_mode(&webcam(), &request(1280, 720, 30, CameraFormat::Any));
        assert_eq!(chosen, Some(mode(1280, 720, 30, PixelFormat::Mjpeg)));
        // Asking YUYV at 720p insists on the pixel format: 10 fps is all there is at that size.
        let chosen = choose_mode(&webcam(), &request(1280, 720, 30, CameraFormat::Yuyv));
        assert_eq!(chosen, Some(mode(1280, 720, 10, PixelFormat::Yuyv)));
        // 1600x900 is 20 % short of 1920x1080 but 25 % over 1280x720.
        let chosen = choose_mode(&webcam(), &request(1600, 900, 30, CameraFormat::Mjpeg));
        assert_eq!(chosen, Some(mode(1920, 1080, 30, PixelFormat::Mjpeg)));
        let chosen = choose_mode(&webcam(), &request(1280, 720, 50, CameraFormat::Mjpeg));
        assert_eq!(chosen, Some(mode(1280, 720, 60, PixelFormat::Mjpeg)));
    }

    #[test]
    fn a_format_the_camera_lacks_is_none() {
        assert_eq!(
            choose_mode(&webcam(), &request(640, 480, 30, CameraFormat::Nv12)),
            None
        );
        let only_h264 = [mode(1920, 1080, 30, PixelFormat::Other("H264".into()))];
        assert_eq!(
            choose_mode(&only_h264, &request(1920, 1080, 30, CameraFormat::Any)),
            None
        );
    }

    #[test]
    fn cameras_are_found_by_path_index_or_name() {
        let cameras = vec![
            CameraInfo {
                id: "/dev/video0".into(),
                name: "Integrated Camera".into(),
                modes: webcam(),
            },
            CameraInfo {
                id: "/dev/video2".into(),
                name: "Cam Link 4K".into(),
                modes: webcam(),
            },
        ];
        assert_eq!(
            find_camera(&cameras, "/dev/video2").unwrap().name,
            "Cam Link 4K"
        );
        assert_eq!(find_camera(&cameras, "0").unwrap().id, "/dev/video0");
        assert_eq!(
            find_camera(&cameras, "cam link 4k").unwrap().id,
            "/dev/video2"
        );
        assert!(find_camera(&cameras, "/dev/video9").is_none());
    }
}
