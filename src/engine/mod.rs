//! The engine: the one handle front-ends (CLI, GUI, remote control) use to run a show.
//!
//! [`Engine::start`] loads nothing by itself: it takes a scene collection and a configuration,
//! starts the pipeline threads (render, video encode, audio encode, outputs) and returns once
//! they have all opened, or with the first error. Front-ends then send [`Command`]s, read
//! [`Event`]s, and poll [`Stats`]; none of them touches the pipeline's internals.

mod clock;
mod events;
mod keyframes;
mod outputs;
mod pipeline;
pub mod switcher;
pub mod transition;

pub use clock::{FrameClock, TickStart};
pub use transition::{Direction, Transition, TransitionKind};

use crate::audio::MixerLevels;
use crate::base::{Pacing, Tick, VideoFrame};
use crate::encode::{AudioSettings, EncodeError, VideoSettings};
use crate::output::{
    Destination, OutputError, OutputNotice, OutputStats, RecordingFormat, StreamOutput,
    StreamSettings,
};
use crate::render::{Compositor, Gpu, RenderError};
use crate::scene::Collection;
use crate::sources::SourceError;
use crossbeam_channel::{bounded, Receiver, SendTimeoutError, Sender};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct RecordingConfig {
    pub path: PathBuf,
    pub format: RecordingFormat,
    /// The encode it is recorded at; `None`: the run's own, shared with the streams.
    pub profile: Option<crate::encode::EncodeProfile>,
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub pacing: Pacing,
    /// Stop by itself after this many canvas frames; `None` runs until [`Command::Stop`].
    pub frame_limit: Option<u64>,
    pub video: VideoSettings,
    pub audio: AudioSettings,
    /// Record from the first frame (the recording can also start and stop while the engine
    /// runs: [`Command::StartRecording`]).
    pub recording: Option<RecordingConfig>,
    /// Live stream outputs from the first frame, all fed from the same encode as the
    /// recording.
    pub streams: Vec<Destination>,
    pub stream_settings: StreamSettings,
    /// Output device for audio monitoring (`default` when `None`); opened only when a source
    /// is set to be monitored.
    pub monitor_device: Option<String>,
    /// Draw on this GPU device (the app shares its own, so the monitors show the compositor's
    /// canvases without copies); `None` opens one.
    pub gpu: Option<Arc<Gpu>>,
    /// Told after each frame's drawing is submitted (see [`FrameListener`]).
    pub on_frame: Option<FrameListener>,
    /// Faults to inject, for tests of what the engine does when a part of it fails.
    #[doc(hidden)]
    pub faults: Faults,
    /// Something that commands the show frame by frame from inside the render loop (a show
    /// script's cues), so what it does lands on an exact frame.
    pub driver: Option<DriverSlot>,
}

/// Commands the engine from inside its render loop, once a frame, before the frame is drawn:
/// what it returns is applied to that very frame. A show script's cue runner is one; it knows
/// the show, the engine knows only commands.
pub trait FrameDriver: Send {
    fn frame(&mut self, frame: &FrameContext) -> DriverOutput;
}

/// What a [`FrameDriver`] is told of the frame about to be drawn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameContext {
    pub index: u64,
    /// When the frame is due on the canvas clock (from the engine's first frame).
    pub now: Duration,
    /// How many [`Command::Go`] arrived since the last frame.
    pub go: u32,
    /// The sources that play a file once and have played all of it.
    pub media_ended: Vec<String>,
}

/// What a [`FrameDriver`] wants done this frame.
#[derive(Debug, Default)]
pub struct DriverOutput {
    pub commands: Vec<Command>,
    pub events: Vec<Event>,
}

/// A [`FrameDriver`] handed to the engine (shared so the configuration stays `Clone`).
#[derive(Clone)]
pub struct DriverSlot(pub Arc<std::sync::Mutex<dyn FrameDriver>>);

impl DriverSlot {
    pub fn new(driver: impl FrameDriver + 'static) -> Self {
        Self(Arc::new(std::sync::Mutex::new(driver)))
    }
}

impl std::fmt::Debug for DriverSlot {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("DriverSlot")
    }
}

/// Faults a test can make the engine suffer on purpose (all off by default).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// The video encoder thread panics when it is handed this many frames of a session.
    pub panic_video_encoder_after: Option<u64>,
}

impl Default for EngineConfig {
    /// In real time until stopped, with no outputs, monitoring (if asked for) on the default
    /// device, and a GPU device of its own.
    fn default() -> Self {
        Self {
            pacing: Pacing::RealTime,
            frame_limit: None,
            video: VideoSettings::default(),
            audio: AudioSettings::default(),
            recording: None,
            streams: Vec::new(),
            stream_settings: StreamSettings::default(),
            monitor_device: None,
            gpu: None,
            on_frame: None,
            faults: Faults::default(),
            driver: None,
        }
    }
}

/// Called on the render thread with a frame's index once its drawing (program, and studio
/// mode's preview) is submitted: a window that redraws then shows the new canvases and does
/// its own drawing while the render thread waits for the next frame's slot. On a software
/// rasteriser the window and the engine share one queue and the same cores, and a window
/// drawn on its own timer lands in the engine's slot now and then and makes it late.
#[derive(Clone)]
pub struct FrameListener(Arc<dyn Fn(u64) + Send + Sync>);

impl FrameListener {
    pub fn new(listener: impl Fn(u64) + Send + Sync + 'static) -> Self {
        Self(Arc::new(listener))
    }

    pub fn frame_submitted(&self, index: u64) {
        (self.0)(index)
    }
}

impl std::fmt::Debug for FrameListener {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("FrameListener")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Put this scene on program with a cut.
    SwitchScene(String),
    /// Studio mode on, with this scene in preview; `None` turns it off.
    SetPreview(Option<String>),
    /// Put `to` (the preview scene when `None`) on program with `transition`.
    Transition {
        to: Option<String>,
        transition: Transition,
    },
    /// The T-bar moved: takes the preview scene towards program; 1.0 completes it.
    SetTBar {
        position: f32,
        transition: Transition,
    },
    /// The collection was edited: new and changed sources are opened, items redrawn.
    UpdateCollection(Box<Collection>),
    /// One fine-grained edit of the collection (a show's cue, a step of a fade), applied as
    /// [`Command::UpdateCollection`] would apply the edited whole and announced as
    /// [`Event::Edited`]; one that no longer fits (its source was removed) is a warning.
    Edit(crate::scene::Edit),
    /// Stream outputs waiting to reconnect try again now.
    ReconnectOutputs,
    /// Start recording from the next frame (beside any live streams: they share the encode).
    /// A failure is reported as [`Event::RecordingStopped`].
    StartRecording(RecordingConfig),
    /// End the recording at the next frame and close the file.
    StopRecording,
    /// Start streaming to these destinations from the next frame, beside what is already
    /// recording or streaming. A failure to start is reported as [`Event::StreamingStopped`].
    StartStreaming(Vec<Destination>),
    /// End every live stream at the next frame.
    StopStreaming,
    /// End only the live streams to these destinations at the next frame; the others go on.
    StopStreamingTo(Vec<Destination>),
    /// Encode with these settings from the next time encoding starts (outputs that join a
    /// recording or stream already running share its encoder as it is).
    SetVideoSettings(VideoSettings),
    /// Play, pause or restart a source that plays a file.
    Media {
        source: String,
        control: crate::sources::MediaControl,
    },
    /// The operator's GO for the next cue waiting for one (see [`FrameDriver`]).
    Go,
    /// Finish the frame in hand, flush encoders and close outputs.
    Stop,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A scene went on program.
    SceneChanged {
        scene: String,
    },
    PreviewChanged {
        scene: Option<String>,
    },
    /// Something went wrong that did not stop the engine.
    Warning(String),
    /// A stream output changed state (connected, lost its connection, gave up...).
    Output(OutputNotice),
    /// Meter readings of every channel strip and the master, every 50 ms.
    AudioLevels(MixerLevels),
    /// A recording asked for by [`Command::StartRecording`] began (one in the configuration
    /// begins with the engine, unannounced).
    RecordingStarted {
        path: PathBuf,
    },
    /// A recording ended: its file is complete (stopped), or it failed (`error`; also when
    /// it could not start).
    RecordingStopped {
        path: PathBuf,
        error: Option<String>,
    },
    /// The streams stopped were all closed, or streaming could not start (`error`).
    StreamingStopped {
        error: Option<String>,
    },
    /// The collection changed by this edit: the engine's took a [`Command::Edit`] (a show's
    /// cue), and a front-end keeping its own copy applies it too; the show controller also
    /// announces every change made through it this way, for front-ends that follow changes.
    Edited(crate::scene::Edit),
    /// A show cue fired on canvas frame `frame` (number `cue` in the show, from 0).
    CueFired {
        cue: usize,
        name: String,
        frame: u64,
    },
    /// A transition towards `to` began on program (a cut too: it ends at once).
    TransitionStarted {
        to: String,
        transition: Transition,
    },
    /// The transition towards `to` is over (`to` is on program, or its scene was removed).
    TransitionEnded {
        to: String,
        transition: Transition,
    },
    /// A media source that plays its file once reached the end of it.
    MediaEnded {
        source: String,
    },
    /// The collection's scenes were added, removed, renamed or reordered; `scenes` bottom
    /// first, as in the file. Announced by the show controller, which makes such changes.
    ScenesChanged {
        scenes: Vec<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("the scene collection has no scene named `{0}`")]
    NoSuchScene(String),
    #[error("engine thread failed: {0}")]
    Thread(#[from] ThreadProblem),
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// What went wrong with one of the engine's threads.
#[derive(Debug, thiserror::Error)]
pub enum ThreadProblem {
    #[error("cannot start thread {name}: {cause}")]
    Spawn { name: String, cause: std::io::Error },
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
    #[error("start-up failed")]
    StartUpFailed,
    #[error("the render thread stopped while starting")]
    StoppedWhileStarting,
    #[error("the engine was already stopped")]
    AlreadyStopped,
    #[error("no encode session")]
    NoEncodeSession,
}

/// How long [`Engine::send`] waits for room in a full command queue.
pub const COMMAND_WAIT: Duration = Duration::from_secs(2);

/// Why a command did not reach the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("the engine has stopped")]
    Stopped,
    #[error("the engine took no commands for {0:?}: its render thread is stuck")]
    Busy(Duration),
}

/// Counters the pipeline updates while it runs.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    rendered: AtomicU64,
    lagged: AtomicU64,
    skipped: AtomicU64,
    encoded: AtomicU64,
    audio_samples: AtomicU64,
    bytes_written: AtomicU64,
    render_nanos: AtomicU64,
    streams: std::sync::Mutex<Vec<Arc<StreamOutput>>>,
    /// The video bitrate outputs ask for (kbps); 0 until adaptive bitrate changes it.
    video_target_kbps: std::sync::atomic::AtomicU32,
    audio_levels: std::sync::Mutex<Option<MixerLevels>>,
    switcher: std::sync::Mutex<SwitcherStats>,
    source_sizes: std::sync::Mutex<std::collections::HashMap<String, [u32; 2]>>,
    media: std::sync::Mutex<std::collections::HashMap<String, crate::sources::MediaPlayback>>,
    encoder: std::sync::Mutex<Option<String>>,
    /// The encodes running now, one per profile in use.
    encodes: std::sync::Mutex<Vec<EncodeStatus>>,
}

/// One running encode as the outputs module publishes it; [`EncodeStats`] is its snapshot.
#[derive(Debug, Clone)]
pub(crate) struct EncodeStatus {
    pub profile: Option<String>,
    pub encoder: String,
    pub size: (u32, u32),
    pub configured_kbps: Option<u32>,
    pub target_kbps: Arc<std::sync::atomic::AtomicU32>,
}

/// One running encode: the profile outputs named (`None`: the run's own encode), what it
/// encodes with, and the bitrate it aims at now.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeStats {
    pub profile: Option<String>,
    /// "H.264 (libx264)".
    pub encoder: String,
    pub width: u32,
    pub height: u32,
    /// The profile's bitrate (kbps); `None` for constant quality.
    pub configured_kbps: Option<u32>,
    /// What its streams' adaptive bitrate set (kbps); `None` while it set nothing.
    pub adapted_kbps: Option<u32>,
}

impl EncodeStats {
    /// "H.264 (libx264) 320x180, 1500 kbps, adapted to 600 kbps".
    pub fn describe(&self) -> String {
        let rate = match (self.configured_kbps, self.adapted_kbps) {
            (Some(kbps), Some(adapted)) => format!("{kbps} kbps, adapted to {adapted} kbps"),
            (Some(kbps), None) => format!("{kbps} kbps"),
            (None, _) => "constant quality".into(),
        };
        format!("{} {}x{}, {rate}", self.encoder, self.width, self.height)
    }
}

/// Program, preview and transition, as the switcher last drew them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SwitcherStats {
    pub program: String,
    pub preview: Option<String>,
    /// 0..1 while a transition runs.
    pub transition_progress: Option<f32>,
}

/// The compositor's canvases, for a front-end that shares the GPU device to show them.
#[derive(Debug, Clone)]
pub struct DisplayTextures {
    pub program: wgpu::Texture,
    pub preview: wgpu::Texture,
}

/// A snapshot of the pipeline's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Canvas frames composited and read back.
    pub frames_rendered: u64,
    /// Frames whose whole time slot passed before they were started (the machine is too slow).
    pub frames_lagged: u64,
    /// Frames not encoded because the encoder was behind.
    pub frames_skipped: u64,
    pub frames_encoded: u64,
    pub audio_samples: u64,
    pub bytes_written: u64,
    /// Mean time spent compositing and reading back one frame.
    pub mean_render_time: Duration,
    /// One entry per stream output, in the order they were configured.
    pub outputs: Vec<OutputStats>,
    /// The video bitrate adaptive bitrate has set (kbps); `None` while it has changed nothing.
    pub adapted_bitrate_kbps: Option<u32>,
    /// The latest meter readings (updated every 50 ms).
    pub audio_levels: Option<MixerLevels>,
    pub switcher: SwitcherStats,
    /// Each running source's size, which item transforms refer to (for editing handles).
    pub source_sizes: std::collections::HashMap<String, [u32; 2]>,
    /// Where each media source is in its file (updated every frame).
    pub media: std::collections::HashMap<String, crate::sources::MediaPlayback>,
    /// The video codec and encoder of the latest encode ("HEVC (libx265)"); `None` before
    /// anything was encoded.
    pub encoder: Option<String>,
    /// Every encode running now (one per profile outputs use).
    pub encodes: Vec<EncodeStats>,
}

impl Counters {
    fn snapshot(&self) -> Stats {
        let rendered = self.rendered.load(Ordering::Relaxed);
        Stats {
            frames_rendered: rendered,
            frames_lagged: self.lagged.load(Ordering::Relaxed),
            frames_skipped: self.skipped.load(Ordering::Relaxed),
            frames_encoded: self.encoded.load(Ordering::Relaxed),
            audio_samples: self.audio_samples.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            mean_render_time: Duration::from_nanos(
                self.render_nanos.load(Ordering::Relaxed) / rendered.max(1),
            ),
            source_sizes: self
                .source_sizes
                .lock()
                .map(|sizes| sizes.clone())
                .unwrap_or_default(),
            media: self
                .media
                .lock()
                .map(|media| media.clone())
                .unwrap_or_default(),
            encoder: self
                .encoder
                .lock()
                .map(|encoder| encoder.clone())
                .unwrap_or_default(),
            switcher: self
                .switcher
                .lock()
                .map(|switcher| switcher.clone())
                .unwrap_or_default(),
            audio_levels: self
                .audio_levels
                .lock()
                .ok()
                .and_then(|levels| levels.clone()),
            adapted_bitrate_kbps: Some(self.video_target_kbps.load(Ordering::Relaxed))
                .filter(|&kbps| kbps > 0),
            outputs: self
                .streams
                .lock()
                .map(|streams| streams.iter().map(|stream| stream.stats()).collect())
                .unwrap_or_default(),
            encodes: self
                .encodes
                .lock()
                .map(|encodes| {
                    encodes
                        .iter()
                        .map(|encode| EncodeStats {
                            profile: encode.profile.clone(),
                            encoder: encode.encoder.clone(),
                            width: encode.size.0,
                            height: encode.size.1,
                            configured_kbps: encode.configured_kbps,
                            adapted_kbps: Some(encode.target_kbps.load(Ordering::Relaxed))
                                .filter(|&kbps| kbps > 0),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub stats: Stats,
    pub wall_time: Duration,
    pub encoder: String,
    pub gpu: String,
}

pub struct Engine {
    display: DisplayTextures,
    commands: Sender<Command>,
    events: Receiver<Event>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<Result<Summary, EngineError>>>,
}

impl Engine {
    /// Starts the pipeline on `collection`; returns when every part has opened.
    pub fn start(collection: Collection, config: EngineConfig) -> Result<Self, EngineError> {
        if collection.scene(&collection.current_scene).is_none() {
            return Err(EngineError::NoSuchScene(collection.current_scene.clone()));
        }
        let (commands, command_receiver) = bounded(64);
        let (event_sender, events) = bounded(256);
        let counters = Arc::new(Counters::default());
        let (ready_sender, ready) = bounded(1);
        let thread_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name("render".into())
            .spawn(move || {
                let span = tracing::info_span!("render");
                let _entered = span.enter();
                pipeline::run(
                    collection,
                    config,
                    command_receiver,
                    events::EventSink::new(event_sender),
                    thread_counters,
                    ready_sender,
                )
            })
            .map_err(|cause| {
                EngineError::Thread(ThreadProblem::Spawn {
                    name: "render".into(),
                    cause,
                })
            })?;
        match ready.recv() {
            Ok(Ok(display)) => Ok(Self {
                display,
                commands,
                events,
                counters,
                thread: Some(thread),
            }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => Err(match thread.join() {
                Ok(Err(error)) => error,
                _ => EngineError::Thread(ThreadProblem::StoppedWhileStarting),
            }),
        }
    }

    /// Hands `command` to the render thread, which takes the commands waiting for it at the
    /// start of each frame. A full queue is waited on for up to [`COMMAND_WAIT`] (a burst of
    /// commands within one frame), never dropped silently.
    pub fn send(&self, command: Command) -> Result<(), CommandError> {
        self.commands
            .send_timeout(command, COMMAND_WAIT)
            .map_err(|error| match error {
                SendTimeoutError::Timeout(_) => CommandError::Busy(COMMAND_WAIT),
                SendTimeoutError::Disconnected(_) => CommandError::Stopped,
            })
    }

    /// The program and preview canvases (textures on the engine's GPU device).
    pub fn display(&self) -> &DisplayTextures {
        &self.display
    }

    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the engine to end (frame limit reached, or after [`Command::Stop`]).
    pub fn wait(mut self) -> Result<Summary, EngineError> {
        let thread = self.thread.take();
        match thread.map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(EngineError::Thread(ThreadProblem::Panicked("render"))),
            None => Err(EngineError::Thread(ThreadProblem::AlreadyStopped)),
        }
    }

    /// Stops the engine and waits for it to finish its outputs.
    pub fn stop(self) -> Result<Summary, EngineError> {
        match self.send(Command::Stop) {
            // Ended already (frame limit, failure): `wait` says how.
            Ok(()) | Err(CommandError::Stopped) => self.wait(),
            Err(error @ CommandError::Busy(_)) => Err(EngineError::Command(error)),
        }
    }
}

/// Renders canvas frame `frame_index` of the collection's current scene to RGBA, with every
/// source at exactly that frame's time (for snapshots, thumbnails and golden-image tests).
pub fn render_snapshot(
    collection: &Collection,
    frame_index: u64,
) -> Result<VideoFrame, EngineError> {
    let canvas = [collection.canvas.width, collection.canvas.height];
    render_snapshot_at_size(collection, frame_index, canvas)
}

/// As [`render_snapshot`], drawn at `size` pixels (the whole canvas, scaled: a thumbnail).
pub fn render_snapshot_at_size(
    collection: &Collection,
    frame_index: u64,
    size: [u32; 2],
) -> Result<VideoFrame, EngineError> {
    let scene = collection
        .scene(&collection.current_scene)
        .ok_or_else(|| EngineError::NoSuchScene(collection.current_scene.clone()))?;
    let mut sources = pipeline::open_sources(collection)?;
    let gpu = Arc::new(Gpu::open()?);
    let canvas = [collection.canvas.width, collection.canvas.height];
    let mut compositor = Compositor::for_display(gpu, canvas, size);
    let tick = Tick {
        index: frame_index,
        time: Duration::from_nanos(collection.canvas.fps.frame_start_nanos(frame_index)),
        pacing: Pacing::Deterministic,
    };
    let pictures = pipeline::gather_pictures(&[scene], &mut sources, tick);
    let layers = pipeline::scene_layers(scene, &pictures, &sources);
    Ok(compositor.render_rgba(&layers)?)
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            // Dropped without `stop` (a front-end unwinding): stop anyway and finish the
            // outputs; there is no caller left to hand a failure to, so it is logged.
            if let Err(error) = self.send(Command::Stop) {
                if error != CommandError::Stopped {
                    tracing::error!("stopping the engine: {error}");
                }
            }
            match thread.join() {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::error!("the engine ended with an error: {error}"),
                Err(_) => tracing::error!("the engine's render thread panicked"),
            }
        }
    }
}
