//! Sources: everything that produces pictures or sound for the canvas.
//!
//! A running source answers two questions on the render thread: "what picture do you show at
//! this tick?" and "what sound do you play for these samples?". Sources that change by
//! themselves (media files) decode on their own threads and publish ahead into bounded queues,
//! so a slow source never stalls the render clock; in deterministic pacing the render thread
//! waits for them instead, so a `--fast` render is the same every time.

pub mod audio_devices;
mod audio_input;
pub mod camera;
mod image_source;
mod input_check;
mod media;
mod screen;
mod test_pattern;
mod text;

pub use audio_input::AudioInput;
pub use image_source::{load_image, ImageError, ImageProblem};
pub use input_check::{memory_estimate, InputFiles, MemoryEstimate};
pub use media::{MediaError, MediaPlayer, MediaProblem};
pub use screen::{no_signal_card, DisplayProblem, ScreenCapture, ScreenError};
pub use test_pattern::{read_counter, TestPattern};
pub use text::{render_text, FontProblem, TextError};

use crate::base::{FrameRef, Pacing, Tick, VideoFrame};
use crate::scene::{Collection, Source, SourceKind};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A source while the engine runs.
pub trait RunningSource: Send {
    /// Width and height that item transforms refer to (the texture may be smaller, e.g. 1x1
    /// for a solid colour).
    fn size(&self) -> [u32; 2];

    /// The picture for this tick, or `None` while there is nothing to show yet.
    fn video(&mut self, tick: Tick) -> Option<FrameRef>;

    /// Adds this source's sound for samples `first_sample..first_sample + out.len() / 2` into
    /// `out` (interleaved stereo). Sources without sound do nothing.
    fn mix_audio(&mut self, _first_sample: u64, _out: &mut [f32], _pacing: Pacing) {}

    /// Waits (up to `timeout`) until the source can show its first picture; live sources with
    /// decoders use this so a recording does not start on black frames.
    fn preroll(&mut self, _timeout: Duration) {}

    /// Tells a live source when engine sample 0 and frame 0 are due, so it can place what
    /// its device captures on the engine's timeline.
    fn clock_started(&mut self, _epoch: Instant) {}

    /// Messages for the operator (a device lost or back), collected by the engine.
    fn notices(&self) -> Option<&Notices> {
        None
    }

    /// Plays, pauses or restarts a source that plays a file, at engine time `now`.
    fn control(&mut self, _control: MediaControl, _now: Duration) -> Result<(), ControlError> {
        Err(ControlError::NotMedia)
    }

    /// Whether a source that plays a file once has played all of it.
    fn has_ended(&self) -> bool {
        false
    }

    /// Where a source that plays a file is in it at engine time `now`; `None` for the others.
    fn playback(&self, _now: Duration) -> Option<MediaPlayback> {
        None
    }
}

/// Where a media file's playback stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaPlayback {
    pub state: PlaybackState,
    /// How far into the file (into this pass of it, for a looping file).
    pub cursor: Duration,
    /// One pass of the file; `None` where the container does not say.
    pub duration: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaybackState {
    Playing,
    Paused,
    Ended,
}

/// What can be done to a playing media file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaControl {
    Play,
    Pause,
    /// From its beginning, now.
    Restart,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("it does not play a file")]
    NotMedia,
    #[error("no such source")]
    NoSuchSource,
    #[error(transparent)]
    Restart(#[from] MediaError),
}

/// Messages a source's own threads leave for the engine to pass on as warnings.
#[derive(Debug, Clone, Default)]
pub struct Notices(Arc<Mutex<Vec<String>>>);

impl Notices {
    pub fn push(&self, message: String) {
        // The engine passes these on as warnings; the log gets them too, quietly.
        tracing::info!("{message}");
        if let Ok(mut pending) = self.0.lock() {
            // Bounded: nobody may be collecting (a source opened outside an engine).
            if pending.len() < 64 {
                pending.push(message);
            }
        }
    }

    pub fn take(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut pending| std::mem::take(&mut *pending))
            .unwrap_or_default()
    }
}

/// Starts one of a source's threads (a decoder, a capture loop). If it panics (a bug, or a
/// library's), the operator is told that the source stopped, rather than left looking at a
/// frozen picture or listening to silence with no notice.
pub(crate) fn spawn_source_thread(
    name: &str,
    notices: &Notices,
    work: impl FnOnce() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let span = tracing::info_span!("source", thread = name);
    let on_panic = notices.clone();
    let thread_name = name.to_string();
    std::thread::Builder::new()
        .name(name.chars().take(15).collect())
        .spawn(move || {
            let finished =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| span.in_scope(work)));
            if finished.is_err() {
                on_panic.push(format!(
                    "{thread_name} stopped after an internal error; the source stays as it was \
                     until it is reopened"
                ));
            }
        })
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source `{id}`: {cause}")]
    Open { id: String, cause: OpenProblem },
}

/// Why a source did not open, as its kind's own code says.
#[derive(Debug, thiserror::Error)]
pub enum OpenProblem {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error(transparent)]
    Screen(#[from] ScreenError),
}

/// A source whose picture never changes after it is made.
struct StillSource {
    size: [u32; 2],
    frame: FrameRef,
}

impl RunningSource for StillSource {
    fn size(&self) -> [u32; 2] {
        self.size
    }

    fn video(&mut self, _tick: Tick) -> Option<FrameRef> {
        Some(self.frame.clone())
    }
}

fn still(size: [u32; 2], frame: VideoFrame) -> Box<dyn RunningSource> {
    Box::new(StillSource {
        size,
        frame: FrameRef {
            frame: Arc::new(frame),
            generation: 1,
        },
    })
}

/// The largest scale at which any item in the collection shows source `id` (of `native` size),
/// capped at 1: decoding larger than that only costs time and memory. `None` when no item
/// shows it.
fn largest_display_scale(collection: &Collection, id: &str, native: [u32; 2]) -> Option<f32> {
    collection
        .scenes
        .iter()
        .flat_map(|scene| &scene.items)
        .filter(|item| item.source == id)
        .filter_map(|item| crate::scene::geometry::display_scale(item, native))
        .reduce(f32::max)
        .map(|scale| scale.min(1.0))
}

/// Opens `source` for the engine: decodes images, lays out text, starts media decoders.
pub fn open(
    source: &Source,
    collection: &Collection,
) -> Result<Box<dyn RunningSource>, SourceError> {
    let fail = |cause: OpenProblem| SourceError::Open {
        id: source.id.clone(),
        cause,
    };
    Ok(match &source.kind {
        SourceKind::Color {
            color,
            width,
            height,
        } => still(
            [*width, *height],
            VideoFrame::solid(1, 1, color.premultiplied()),
        ),
        SourceKind::Image { path } => {
            let resolved = collection.resolve(path);
            let frame = load_image(&resolved).map_err(|e| fail(e.into()))?;
            still([frame.width, frame.height], frame)
        }
        SourceKind::Text(text) => {
            let font = text.font.as_ref().map(|path| collection.resolve(path));
            let frame = render_text(text, font.as_deref()).map_err(|e| fail(e.into()))?;
            still([frame.width, frame.height], frame)
        }
        SourceKind::Media(media) => {
            let resolved = collection.resolve(&media.path);
            let shown_at = |native: [u32; 2]| largest_display_scale(collection, &source.id, native);
            Box::new(MediaPlayer::open(&resolved, media, shown_at).map_err(|e| fail(e.into()))?)
        }
        SourceKind::TestPattern { width, height } => Box::new(TestPattern::new(*width, *height)),
        SourceKind::Screen(screen) => Box::new(
            ScreenCapture::open(screen, collection.canvas.fps).map_err(|e| fail(e.into()))?,
        ),
        SourceKind::AudioInput(input) => Box::new(AudioInput::open(&source.id, input)),
        SourceKind::Camera(camera) => Box::new(camera::Camera::open(
            &source.id,
            camera,
            Box::new(camera::V4lBackend),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_thread_that_panics_is_reported_to_the_operator() {
        let notices = Notices::default();
        let thread = spawn_source_thread("media-video clip.mp4", &notices, || {
            panic!("a decoder bug");
        })
        .unwrap();
        thread
            .join()
            .expect("the panic is caught inside the thread");
        let said = notices.take();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with("media-video clip.mp4 stopped"),
            "{said:?}"
        );
        // A thread that ends normally says nothing.
        spawn_source_thread("quiet", &notices, || {})
            .unwrap()
            .join()
            .unwrap();
        assert!(notices.take().is_empty());
    }
}
