//! Screen and window capture on X11: the whole screen, a region of it, or a window found by
//! its title, with the cursor drawn in. A capture thread grabs at the canvas rate into a
//! latest-frame slot, so a slow X server never stalls the render clock. A window that closes
//! (or is not there yet) shows a "no signal" card and is looked for again once a second.
//!
//! Uses x11rb (the X protocol in Rust, no C library). Grabs go through GetImage; MIT-SHM would
//! save a copy per frame but needs shared-memory system calls the crate leaves to unsafe code.

use super::{render_text, spawn_source_thread, Notices, RunningSource};
use crate::base::FrameRate;
use crate::base::{FrameRef, Packing, Tick, VideoFrame};
use crate::scene::{Color, ScreenSource, TextSource};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::xfixes::ConnectionExt as _;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, ImageFormat, Window};
use x11rb::rust_connection::RustConnection;

const NO_SIGNAL_SIZE: [u32; 2] = [640, 360];
const LOOK_AGAIN_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error("cannot open X display {display}: {cause} (is an X server running there, and may this user use it?)")]
    Display {
        display: String,
        cause: DisplayProblem,
    },
}

/// Why an X display could not be captured.
#[derive(Debug, thiserror::Error)]
pub enum DisplayProblem {
    #[error("{0}")]
    Connect(#[from] x11rb::errors::ConnectError),
    #[error("the display has no such screen")]
    NoSuchScreen,
    #[error("cannot start the capture thread: {0}")]
    Thread(#[from] std::io::Error),
}

struct Latest {
    frame: Option<FrameRef>,
    size: [u32; 2],
}

pub struct ScreenCapture {
    latest: Arc<Mutex<Latest>>,
    /// When the engine's frame 0 is due; grabs are timed to land just before each frame.
    epoch: Arc<Mutex<Option<Instant>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The capture thread's death, for the operator.
    notices: Notices,
}

/// What to grab, in the coordinates of the drawable it is grabbed from.
#[derive(Clone, Copy)]
struct Target {
    drawable: Window,
    x: i16,
    y: i16,
    width: u16,
    height: u16,
}

struct Grabber {
    connection: RustConnection,
    root: Window,
    settings: ScreenSource,
    cursor: bool,
    no_signal: Arc<VideoFrame>,
}

impl ScreenCapture {
    pub fn open(settings: &ScreenSource, fps: FrameRate) -> Result<Self, ScreenError> {
        let display_name = settings
            .display
            .clone()
            .or_else(|| std::env::var("DISPLAY").ok());
        let shown = display_name
            .clone()
            .unwrap_or_else(|| "(DISPLAY not set)".into());
        let fail = |cause: DisplayProblem| ScreenError::Display {
            display: shown.clone(),
            cause,
        };
        let (connection, screen) =
            x11rb::connect(display_name.as_deref()).map_err(|e| fail(e.into()))?;
        let root = connection
            .setup()
            .roots
            .get(screen)
            .map(|screen| screen.root)
            .ok_or_else(|| fail(DisplayProblem::NoSuchScreen))?;
        // XFixes must be announced before its cursor requests; without it there is no cursor.
        let cursor = settings.cursor
            && connection
                .xfixes_query_version(4, 0)
                .ok()
                .and_then(|cookie| cookie.reply().ok())
                .is_some();
        let grabber = Grabber {
            connection,
            root,
            settings: settings.clone(),
            cursor,
            no_signal: Arc::new(no_signal_card(NO_SIGNAL_SIZE)),
        };
        let first_target = grabber.find_target();
        if first_target.is_none() {
            tracing::warn!(
                "screen capture: {} not found yet; showing \"no signal\"",
                grabber.describe()
            );
        }
        let size = first_target.map_or(NO_SIGNAL_SIZE, |t| {
            [u32::from(t.width), u32::from(t.height)]
        });
        let latest = Arc::new(Mutex::new(Latest { frame: None, size }));
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Arc::new(Mutex::new(None));
        let notices = Notices::default();
        let thread = {
            let (latest, stop, epoch) = (latest.clone(), stop.clone(), epoch.clone());
            spawn_source_thread("screen-capture", &notices, move || {
                grabber.run(first_target, fps, &latest, &epoch, &stop)
            })
            .map_err(|e| fail(e.into()))?
        };
        Ok(Self {
            latest,
            epoch,
            stop,
            thread: Some(thread),
            notices,
        })
    }
}

impl RunningSource for ScreenCapture {
    fn notices(&self) -> Option<&Notices> {
        Some(&self.notices)
    }

    fn size(&self) -> [u32; 2] {
        self.latest
            .lock()
            .map_or(NO_SIGNAL_SIZE, |latest| latest.size)
    }

    fn video(&mut self, _tick: Tick) -> Option<FrameRef> {
        self.latest
            .lock()
            .ok()
            .and_then(|latest| latest.frame.clone())
    }

    fn clock_started(&mut self, epoch: Instant) {
        if let Ok(mut slot) = self.epoch.lock() {
            *slot = Some(epoch);
        }
    }

    fn preroll(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self
            .latest
            .lock()
            .is_ok_and(|latest| latest.frame.is_none())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ScreenCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Grabber {
    fn describe(&self) -> String {
        match &self.settings.window {
            Some(title) => format!("the window titled \"{title}\""),
            None => "the screen".into(),
        }
    }

    fn run(
        self,
        mut target: Option<Target>,
        fps: FrameRate,
        latest: &Mutex<Latest>,
        epoch: &Mutex<Option<Instant>>,
        stop: &AtomicBool,
    ) {
        let start = Instant::now();
        let mut generation = 0u64;
        let mut showing_no_signal = false;
        let mut last_search = Instant::now();
        let mut frame_number = 0u64;
        let mut previous: Option<Arc<VideoFrame>> = None;
        while !stop.load(Ordering::Relaxed) {
            if target.is_none() && last_search.elapsed() >= LOOK_AGAIN_EVERY {
                last_search = Instant::now();
                target = self.find_target();
                if target.is_some() {
                    tracing::info!("screen capture: {} found", self.describe());
                }
            }
            let grab_started = Instant::now();
            let grabbed = target.and_then(|t| self.grab(t));
            let grab_time = grab_started.elapsed();
            if target.is_some() && grabbed.is_none() {
                tracing::warn!(
                    "screen capture: {} is gone; showing \"no signal\"",
                    self.describe()
                );
                target = None;
                last_search = Instant::now();
            }
            let update = match grabbed {
                // An unchanged screen is not a new picture: the compositor then skips it.
                Some(frame) if !showing_no_signal && previous.as_deref() == Some(&frame) => None,
                Some(frame) => {
                    showing_no_signal = false;
                    let frame = Arc::new(frame);
                    previous = Some(frame.clone());
                    Some(frame)
                }
                None if !showing_no_signal => {
                    showing_no_signal = true;
                    Some(self.no_signal.clone())
                }
                None => None,
            };
            if let Some(frame) = update {
                generation += 1;
                if let Ok(mut latest) = latest.lock() {
                    latest.size = [frame.width, frame.height];
                    latest.frame = Some(FrameRef { frame, generation });
                }
            }
            let engine_epoch = epoch.lock().ok().and_then(|epoch| *epoch);
            let due = match engine_epoch {
                // Grab just before each frame is rendered, so what a frame shows is at most
                // the grab's own duration old instead of up to a whole frame.
                Some(epoch) => next_grab(epoch, fps, grab_time, Instant::now()),
                None => {
                    frame_number += 1;
                    start + Duration::from_nanos(fps.frame_start_nanos(frame_number))
                }
            };
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    }

    fn find_target(&self) -> Option<Target> {
        match &self.settings.window {
            None => {
                let geometry = self.connection.get_geometry(self.root).ok()?.reply().ok()?;
                let target = Target {
                    drawable: self.root,
                    x: 0,
                    y: 0,
                    width: geometry.width,
                    height: geometry.height,
                };
                Some(match self.settings.region {
                    Some(region) => Target {
                        x: region.x as i16,
                        y: region.y as i16,
                        width: (region.width as u16)
                            .min(geometry.width.saturating_sub(region.x as u16)),
                        height: (region.height as u16)
                            .min(geometry.height.saturating_sub(region.y as u16)),
                        ..target
                    },
                    None => target,
                })
            }
            Some(title) => {
                let window = self.find_window(self.root, title, 0)?;
                let geometry = self.connection.get_geometry(window).ok()?.reply().ok()?;
                Some(Target {
                    drawable: window,
                    x: 0,
                    y: 0,
                    width: geometry.width,
                    height: geometry.height,
                })
            }
        }
    }

    /// Depth-first search for a window whose name contains `title`.
    fn find_window(&self, window: Window, title: &str, depth: u32) -> Option<Window> {
        if depth > 0
            && self
                .window_name(window)
                .is_some_and(|name| name.contains(title))
        {
            return Some(window);
        }
        if depth > 8 {
            return None;
        }
        let tree = self.connection.query_tree(window).ok()?.reply().ok()?;
        tree.children
            .iter()
            .find_map(|child| self.find_window(*child, title, depth + 1))
    }

    fn window_name(&self, window: Window) -> Option<String> {
        let reply = self
            .connection
            .get_property(false, window, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 1024)
            .ok()?
            .reply()
            .ok()?;
        (!reply.value.is_empty()).then(|| String::from_utf8_lossy(&reply.value).into_owned())
    }

    /// One picture of `target`, with the cursor, as packed RGBA; `None` if it cannot be read.
    fn grab(&self, target: Target) -> Option<VideoFrame> {
        let reply = self
            .connection
            .get_image(
                ImageFormat::Z_PIXMAP,
                target.drawable,
                target.x,
                target.y,
                target.width,
                target.height,
                !0,
            )
            .ok()?
            .reply()
            .ok()?;
        let (width, height) = (u32::from(target.width), u32::from(target.height));
        if reply.data.len() < (width * height * 4) as usize {
            return None; // not 32 bits per pixel: depths below 24 are not supported
        }
        // TrueColor at 24/32 bits arrives as B, G, R, unused.
        let mut pixels = vec![255u8; (width * height * 4) as usize];
        for (rgba, bgrx) in pixels.chunks_exact_mut(4).zip(reply.data.chunks_exact(4)) {
            rgba[0] = bgrx[2];
            rgba[1] = bgrx[1];
            rgba[2] = bgrx[0];
        }
        let mut frame = VideoFrame {
            width,
            height,
            pixels,
            packing: Packing::Rgba,
        };
        if self.cursor {
            self.draw_cursor(&mut frame, target);
        }
        Some(frame)
    }

    fn draw_cursor(&self, frame: &mut VideoFrame, target: Target) {
        let Some(cursor) = self
            .connection
            .xfixes_get_cursor_image()
            .ok()
            .and_then(|c| c.reply().ok())
        else {
            return;
        };
        // Where the target sits on the screen, to place the pointer within it.
        let origin = self
            .connection
            .translate_coordinates(target.drawable, self.root, target.x, target.y)
            .ok()
            .and_then(|c| c.reply().ok())
            .map_or((0, 0), |t| (i32::from(t.dst_x), i32::from(t.dst_y)));
        let left = i32::from(cursor.x) - i32::from(cursor.xhot) - origin.0;
        let top = i32::from(cursor.y) - i32::from(cursor.yhot) - origin.1;
        for row in 0..i32::from(cursor.height) {
            for column in 0..i32::from(cursor.width) {
                let (x, y) = (left + column, top + row);
                if x < 0 || y < 0 || x >= frame.width as i32 || y >= frame.height as i32 {
                    continue;
                }
                let Some(&argb) = cursor
                    .cursor_image
                    .get((row * i32::from(cursor.width) + column) as usize)
                else {
                    continue;
                };
                let alpha = argb >> 24;
                if alpha == 0 {
                    continue;
                }
                // The cursor image is premultiplied ARGB: source over destination.
                let offset = ((y as u32 * frame.width + x as u32) * 4) as usize;
                let source = [(argb >> 16) & 0xff, (argb >> 8) & 0xff, argb & 0xff];
                blend_over(&mut frame.pixels[offset..offset + 3], source, alpha);
            }
        }
    }
}

/// Premultiplied `source` (RGB, 0-255) with `alpha` over the RGB bytes of one pixel.
/// When to grab next: `lead` (the last grab's duration plus a margin) before the first frame
/// deadline that leaves time for it.
fn next_grab(epoch: Instant, fps: FrameRate, grab_time: Duration, now: Instant) -> Instant {
    let period = Duration::from_nanos(fps.frame_start_nanos(1));
    let lead = (grab_time + Duration::from_millis(2)).min(period / 2);
    let since = now.saturating_duration_since(epoch) + lead;
    let next_frame = fps.frames_in(since) + 1;
    epoch + Duration::from_nanos(fps.frame_start_nanos(next_frame)) - lead
}

fn blend_over(pixel: &mut [u8], source: [u32; 3], alpha: u32) {
    for (under, over) in pixel.iter_mut().zip(source) {
        *under = (over + u32::from(*under) * (255 - alpha) / 255).min(255) as u8;
    }
}

/// A dark card saying NO SIGNAL, shown while a capture has nothing to show.
pub fn no_signal_card(size: [u32; 2]) -> VideoFrame {
    let [width, height] = size;
    let mut card = VideoFrame::solid(width, height, [24, 24, 28, 255]);
    let text = TextSource {
        text: "NO SIGNAL".into(),
        font: None,
        size: (height as f32 / 8.0).max(12.0),
        color: Color::rgba(200, 200, 200, 255),
        outline: None,
    };
    if let Ok(label) = render_text(&text, None) {
        let left = width.saturating_sub(label.width) / 2;
        let top = height.saturating_sub(label.height) / 2;
        for row in 0..label.height.min(height) {
            for column in 0..label.width.min(width) {
                let from = ((row * label.width + column) * 4) as usize;
                let to = (((top + row) * width + left + column) * 4) as usize;
                let source = [0, 1, 2].map(|channel| u32::from(label.pixels[from + channel]));
                let alpha = u32::from(label.pixels[from + 3]);
                blend_over(&mut card.pixels[to..to + 3], source, alpha);
            }
        }
    }
    card
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grabs_land_just_before_each_frame() {
        let epoch = Instant::now();
        let fps = FrameRate::new(30, 1);
        let ms = Duration::from_millis;
        // 10 ms into frame 0, a 5 ms grab is due 7 ms before frame 1 (33.3 ms).
        let due = next_grab(epoch, fps, ms(5), epoch + ms(10));
        assert_eq!(due - epoch, Duration::from_nanos(33_333_333) - ms(7));
        // Too late for frame 1's slot: the next one.
        let due = next_grab(epoch, fps, ms(5), epoch + ms(30));
        assert_eq!(due - epoch, Duration::from_nanos(66_666_666) - ms(7));
        // A grab slower than half a frame is started half a frame early, no more.
        let due = next_grab(epoch, fps, ms(40), epoch + ms(1));
        assert_eq!(due - epoch, Duration::from_nanos(33_333_333 - 16_666_666));
    }
}
