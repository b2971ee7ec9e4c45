//! The show controller: the one owner of what a show is made of, above the engine and shows and
//! below the front-ends. It holds the open collection (edits with undo, saving), the engine
//! session, and what the outputs are doing; front-ends send it [`Request`]s, each answered with
//! success or a [`RequestError`] that says why, and read its events through their own
//! [`Subscription`] (see [`hub`]), so a slow reader loses only its own meter readings.
//!
//! It also keeps the [`Settings`] (how to encode, where to record and stream) and restarts the
//! engine when the canvas changes while nothing is on air. The app, `tally record`, `stream`
//! and `run` go through it.

mod cues;
mod history;
pub mod hub;
mod settings;
pub mod stats;

pub use cues::{unused_name, CueEdit, CueEditError};
pub use history::History;
pub use hub::{Hub, Received, Subscription};
pub use settings::{settings_path, Settings, SettingsError};

use crate::engine::transition::Transition;
use crate::engine::{
    Command, CommandError, Engine, EngineConfig, EngineError, Event, RecordingConfig, Stats,
    Summary,
};
use crate::output::Destination;
use crate::scene::{
    apply_edit, unknown_scene, unknown_source, Canvas, Collection, Edit, EditError, LoadError,
    SourceKind,
};
use crate::show::{Cue, CueRunner, CueStatus, Show};
use crate::sources::MediaControl;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What a front-end asks of the show.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// This scene on program, with a cut.
    SetProgramScene(String),
    /// Studio mode with this scene in preview; `None` leaves studio mode.
    SetPreviewScene(Option<String>),
    /// The preview scene to program with `transition`.
    Take(Transition),
    /// Scene `to` to program with `transition` (outside studio mode's preview).
    Transition {
        to: String,
        transition: Transition,
    },
    /// The T-bar moved to `position` (0 to 1): preview towards program; 1 completes it.
    SetTBar {
        position: f32,
        transition: Transition,
    },
    Edit(Edit),
    Undo,
    Redo,
    /// Saves the collection to its own file, or to `to` (which then becomes its file).
    Save {
        to: Option<PathBuf>,
    },
    StartRecording(RecordingConfig),
    StopRecording,
    StartStreaming(Vec<Destination>),
    StopStreaming,
    Media {
        source: String,
        control: MediaControl,
    },
    /// The operator's GO for a show's next cue.
    Go,
    /// The show's cue `n` (from 0) fires next; those between are not fired.
    JumpToCue(usize),
    EditCues(CueEdit),
    /// Saves the show to its own file, or to `to` (which then becomes its file).
    SaveShow {
        to: Option<PathBuf>,
    },
    /// Ends the show: the frame in hand is finished, the outputs are closed, and the engine
    /// stops (see [`Controller::is_finished`] and [`Controller::wait`]).
    Stop,
}

/// Why a request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Edit(#[from] EditError),
    #[error("nothing is being recorded")]
    NotRecording,
    #[error("the settings' encode profiles: {0}")]
    Profile(#[from] crate::encode::ProfileError),
    #[error("already recording to {}", .0.display())]
    AlreadyRecording(PathBuf),
    #[error("nothing is being streamed")]
    NotStreaming,
    #[error("no scene is in preview (studio mode is off)")]
    NoPreview,
    #[error("nothing to undo")]
    NothingToUndo,
    #[error("nothing to redo")]
    NothingToRedo,
    #[error("the collection has no file yet; save it to a path")]
    NoFile,
    #[error("cannot save to {}: {cause}", path.display())]
    Save {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("the show is not running")]
    NotRunning,
    #[error("no show script is open")]
    NoShow,
    #[error(transparent)]
    CueEdit(#[from] CueEditError),
    #[error(transparent)]
    Engine(#[from] CommandError),
    #[error(transparent)]
    Session(#[from] EngineError),
    #[error("recordings folder {}: {cause}", folder.display())]
    RecordingsFolder {
        folder: PathBuf,
        cause: std::io::Error,
    },
    #[error(transparent)]
    HlsSettings(#[from] settings::HlsSettingsError),
    #[error(transparent)]
    Hls(#[from] crate::output::hls_publication::HlsPublicationError),
}

/// Why another collection was not opened; the open one stays as it was.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(
        "{}: its canvas ({}) differs from the show's ({}), which cannot change while recording \
         or streaming: stop them to open it",
        path.display(), describe_canvas(opened), describe_canvas(on_air)
    )]
    CanvasOnAir {
        path: PathBuf,
        opened: Canvas,
        on_air: Canvas,
    },
    #[error("opened, but the engine did not take it: {0}")]
    Engine(#[from] RequestError),
    #[error(
        "{}: a show starts its engine afresh, which would end the recording and streams: stop \
         them to open it",
        .0.display()
    )]
    ShowOnAir(PathBuf),
}

/// A show script's cues, as a cue list shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct CueList {
    pub file: PathBuf,
    pub cues: Vec<Cue>,
    pub status: CueStatus,
    /// Cues edited since the show was opened or saved.
    pub unsaved: bool,
}

/// The show script the controller runs: the runner that fires its cues (and holds them, as
/// edited) from inside the engine.
struct ShowSession {
    file: PathBuf,
    runner: Arc<Mutex<CueRunner>>,
    unsaved: bool,
}

/// What undo returns to: the collection, and a show's cues.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    collection: Collection,
    cues: Vec<Cue>,
}

fn scene_names(collection: &Collection) -> Vec<&str> {
    collection
        .scenes
        .iter()
        .map(|scene| scene.name.as_str())
        .collect()
}

fn describe_canvas(canvas: &Canvas) -> String {
    format!("{}x{} at {} fps", canvas.width, canvas.height, canvas.fps)
}

/// The show as front-ends see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowState {
    pub program: String,
    /// `Some` in studio mode.
    pub preview: Option<String>,
    /// How far a transition (or the T-bar) has taken preview to program, 0 to 1, while one is
    /// under way.
    pub transition_progress: Option<f32>,
    /// The recording's file while one runs (from its request until its `RecordingStopped`).
    pub recording: Option<PathBuf>,
    pub streaming: bool,
    pub unsaved: bool,
    pub can_undo: bool,
    pub can_redo: bool,
}

pub struct Controller {
    collection: Collection,
    settings: Settings,
    /// Where the settings are saved; `None` keeps them in memory.
    settings_path: Option<PathBuf>,
    /// Engines started so far (a restart ends outputs, and monitors show new canvases).
    engine_starts: u64,
    /// Where the collection is saved.
    file: Option<PathBuf>,
    history: History<Snapshot>,
    show: Option<ShowSession>,
    stats_history: stats::StatsHistory,
    /// The transition a take uses when a front-end names none (remote control's "current
    /// scene transition").
    transition: Transition,
    /// When the running recording and streams began (as the controller heard of them).
    recording_since: Option<std::time::Instant>,
    streaming_since: Option<std::time::Instant>,
    unsaved: bool,
    config: EngineConfig,
    engine: Option<Engine>,
    hub: Hub,
    program: String,
    preview: Option<String>,
    recording: Option<PathBuf>,
    streaming: bool,
    /// The HLS the settings publish while streaming: its folder, master writer and server.
    hls: Option<crate::output::hls_publication::HlsPublication>,
}

impl Controller {
    /// A controller for `collection` (loaded from `file`, if it was), whose engine will run
    /// with `config`.
    pub fn new(collection: Collection, file: Option<PathBuf>, config: EngineConfig) -> Self {
        Self {
            program: collection.current_scene.clone(),
            recording: config.recording.as_ref().map(|r| r.path.clone()),
            streaming: !config.streams.is_empty(),
            collection,
            settings: Settings::default(),
            settings_path: None,
            engine_starts: 0,
            file,
            history: History::default(),
            show: None,
            stats_history: stats::StatsHistory::default(),
            transition: Transition::fade(std::time::Duration::from_millis(300)),
            recording_since: None,
            streaming_since: None,
            unsaved: false,
            config,
            engine: None,
            hub: Hub::default(),
            preview: None,
            hls: None,
        }
    }

    /// The controller keeps `settings` (saved to `path`, when given). The engine encodes as
    /// its configuration says until [`Controller::set_settings`] changes the video settings.
    pub fn with_settings(mut self, settings: Settings, path: Option<PathBuf>) -> Self {
        self.settings = settings;
        self.settings_path = path;
        self
    }

    /// The controller runs `show` with `runner` (made for it, perhaps moved to a start point):
    /// the engine it starts takes the runner as its frame driver.
    pub fn with_show(mut self, show: &Show, runner: CueRunner) -> Self {
        self.install_show(show, runner);
        self
    }

    fn install_show(&mut self, show: &Show, runner: CueRunner) {
        let runner = Arc::new(Mutex::new(runner));
        let driver: Arc<Mutex<dyn crate::engine::FrameDriver>> = runner.clone();
        self.config.driver = Some(crate::engine::DriverSlot(driver));
        self.show = Some(ShowSession {
            file: show.file.clone(),
            runner,
            unsaved: false,
        });
    }

    /// Opens the show script in `path` with its collection, in place of what is open (unsaved
    /// changes are the caller's to ask about); a running engine starts afresh on it, so
    /// nothing may be on air.
    pub fn open_show(&mut self, path: &Path) -> Result<(), OpenError> {
        let show = crate::show::load_file(path)?;
        if self.on_air() {
            return Err(OpenError::ShowOnAir(path.to_path_buf()));
        }
        self.collection = show.collection.clone();
        self.file = Some(show.collection_file.clone());
        self.unsaved = false;
        self.history.clear();
        self.remember_file();
        self.program = self.collection.current_scene.clone();
        if self.preview.is_some() {
            self.preview = Some(self.program.clone());
        }
        let runner = CueRunner::new(&show, false, crate::show::local_time_of_day);
        self.install_show(&show, runner);
        if self.engine.is_some() {
            self.restart()?;
        }
        Ok(())
    }

    /// Whether a show script is open (without copying its cues, as [`Controller::cue_list`]
    /// does).
    pub fn has_show(&self) -> bool {
        self.show.is_some()
    }

    /// Whether the open show's cues were edited since it was opened or saved.
    pub fn cues_unsaved(&self) -> bool {
        self.show.as_ref().is_some_and(|show| show.unsaved)
    }

    /// The open show's cues and where it stands; `None` without a show.
    pub fn cue_list(&self) -> Option<CueList> {
        let show = self.show.as_ref()?;
        let mut runner = crate::base::lock(&show.runner);
        Some(CueList {
            file: show.file.clone(),
            cues: runner.cues().to_vec(),
            status: runner.status(),
            unsaved: show.unsaved,
        })
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            collection: self.collection.clone(),
            cues: self.show.as_ref().map_or_else(Vec::new, |show| {
                crate::base::lock(&show.runner).cues().to_vec()
            }),
        }
    }

    /// Puts an undone or redone snapshot in place.
    fn restore(&mut self, snapshot: Snapshot) -> Result<(), RequestError> {
        if let Some(show) = &mut self.show {
            let mut runner = crate::base::lock(&show.runner);
            if runner.cues() != snapshot.cues.as_slice() {
                let next = runner.next_cue();
                runner.replace_cues(snapshot.cues, next);
                show.unsaved = true;
            }
        }
        if snapshot.collection == self.collection {
            return Ok(());
        }
        self.replace_collection(snapshot.collection)
    }

    fn edit_cues(&mut self, edit: CueEdit) -> Result<(), RequestError> {
        let before = self.snapshot();
        let show = self.show.as_mut().ok_or(RequestError::NoShow)?;
        let mut runner = crate::base::lock(&show.runner);
        let mut cues = runner.cues().to_vec();
        let mut next = runner.next_cue();
        cues::apply(&mut cues, &mut next, edit)?;
        runner.replace_cues(cues, next);
        drop(runner);
        show.unsaved = true;
        self.history.record(&before);
        Ok(())
    }

    fn save_show(&mut self, to: Option<PathBuf>) -> Result<(), RequestError> {
        let show = self.show.as_ref().ok_or(RequestError::NoShow)?;
        let path = to.unwrap_or_else(|| show.file.clone());
        let saved = Show {
            file: path.clone(),
            collection_file: self.file.clone().ok_or(RequestError::NoFile)?,
            collection: self.collection.clone(),
            cues: crate::base::lock(&show.runner).cues().to_vec(),
        };
        crate::show::save_file(&saved, &path).map_err(|cause| RequestError::Save {
            path: path.clone(),
            cause,
        })?;
        if let Some(show) = &mut self.show {
            show.file = path;
            show.unsaved = false;
        }
        Ok(())
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The settings become `settings`; the next encoder started uses their video settings
    /// (outputs that join a running encode share it as it is).
    pub fn set_settings(&mut self, settings: Settings) -> Result<(), RequestError> {
        if settings == self.settings {
            return Ok(());
        }
        let video_changed = settings.video() != self.settings.video();
        self.settings = settings;
        if video_changed {
            self.config.video = self.settings.video();
            if self.engine.is_some() {
                self.send(Command::SetVideoSettings(self.config.video.clone()))?;
            }
        }
        Ok(())
    }

    /// A recording as the settings ask for it, started at `now`: a new file named by the time
    /// in the recordings folder (created if need be), in the settings' format, never over an
    /// earlier take (two started within a second get -2, -3...).
    pub fn new_recording(
        &self,
        now: std::time::SystemTime,
    ) -> Result<RecordingConfig, RequestError> {
        let stamp = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let extension = self.settings.recording_format.to_ascii_lowercase();
        let folder = self.settings.recordings_dir.clone();
        if let Err(cause) = std::fs::create_dir_all(&folder) {
            return Err(RequestError::RecordingsFolder { folder, cause });
        }
        let mut path = folder.join(format!("tally-{stamp}.{extension}"));
        let mut take = 1;
        while path.exists() {
            take += 1;
            path = folder.join(format!("tally-{stamp}-{take}.{extension}"));
        }
        self.recording_to(path)
    }

    /// A recording to `path` as the settings ask for it: their format and recording profile.
    pub fn recording_to(&self, path: PathBuf) -> Result<RecordingConfig, RequestError> {
        let profile = self
            .settings
            .profile(&self.settings.recording_profile, self.canvas_size())?;
        Ok(RecordingConfig {
            path,
            format: self.settings.recording_format(),
            profile,
        })
    }

    /// The collection's canvas (width, height), which ladder profiles follow the shape of.
    fn canvas_size(&self) -> (u32, u32) {
        (self.collection.canvas.width, self.collection.canvas.height)
    }

    /// The stream destinations in the settings, each parsed (keys from the environment) and
    /// set to the settings' stream profile, or why it cannot be used; `Err` when the stream
    /// profile itself cannot be.
    pub fn destinations_from_settings(
        &self,
    ) -> Result<Vec<Result<Destination, crate::output::DestinationError>>, RequestError> {
        let profile = self
            .settings
            .profile(&self.settings.stream_profile, self.canvas_size())?;
        Ok(self
            .settings
            .destinations
            .iter()
            .map(|text| {
                crate::output::parse_destination(text).map(|destination| Destination {
                    profile: profile.clone(),
                    ..destination
                })
            })
            .collect())
    }

    /// Writes the settings to their file (nothing to do when they have none).
    pub fn save_settings(&self) -> Result<(), SettingsError> {
        match &self.settings_path {
            Some(path) => self.settings.save(path),
            None => Ok(()),
        }
    }

    /// The collection's file, if it has one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The running engine: its canvases for monitors, its figures.
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// How many engines were started (each restart makes new canvases).
    pub fn engine_starts(&self) -> u64 {
        self.engine_starts
    }

    /// Whether something records or streams (then the engine is not restarted for an edit).
    pub fn on_air(&self) -> bool {
        self.engine.is_some() && (self.recording.is_some() || self.streaming)
    }

    /// Starts the engine on the collection as it is now, with studio mode's preview as it was.
    /// The recording and streams of the configuration start with the first engine only.
    pub fn start(&mut self) -> Result<(), RequestError> {
        if self.engine.is_some() {
            return Ok(());
        }
        let mut collection = self.collection.clone();
        if collection.scene(&self.program).is_some() {
            collection.current_scene = self.program.clone();
        } else {
            self.program = collection.current_scene.clone();
        }
        let engine = Engine::start(collection, self.config.clone())?;
        self.config.recording = None;
        self.config.streams.clear();
        self.engine_starts += 1;
        let preview = self
            .preview
            .clone()
            .filter(|scene| self.collection.scene(scene).is_some());
        self.engine = Some(engine);
        match preview {
            Some(scene) => self.send(Command::SetPreview(Some(scene))),
            None => Ok(()),
        }
    }

    /// Studio mode's preview for the next engine started (`None`: studio mode off); a running
    /// engine is asked with [`Request::SetPreviewScene`].
    pub fn set_start_preview(&mut self, scene: Option<String>) {
        self.preview = scene;
    }

    /// Stops the engine (ending what records or streams) and starts a new one on the
    /// collection as it is now.
    pub fn restart(&mut self) -> Result<(), RequestError> {
        let preview = self.preview.clone();
        self.stop()?;
        self.preview = preview;
        if let Some(show) = &self.show {
            crate::base::lock(&show.runner).continue_in_new_engine();
        }
        self.start()
    }

    /// Stops the engine, finishing its outputs; its last events go to the subscribers.
    pub fn stop(&mut self) -> Result<Option<Summary>, EngineError> {
        self.end_with(Engine::stop)
    }

    /// Whether the engine has ended (by itself at its frame limit or the end of a show, or
    /// after [`Request::Stop`]), or never started.
    pub fn is_finished(&self) -> bool {
        self.engine.as_ref().is_none_or(Engine::is_finished)
    }

    /// Waits for the engine to end, after handing its last events to the subscribers.
    pub fn wait(&mut self) -> Result<Option<Summary>, EngineError> {
        self.end_with(Engine::wait)
    }

    /// Ends the engine session by `end` (stopping it, or waiting for it); its last events (the
    /// end of a recording, the cue that ended the show) go to the subscribers, and nothing
    /// records or streams any more.
    fn end_with(
        &mut self,
        end: fn(Engine) -> Result<Summary, EngineError>,
    ) -> Result<Option<Summary>, EngineError> {
        let Some(engine) = self.engine.take() else {
            return Ok(None);
        };
        let last_events = engine.events().clone();
        let summary = end(engine);
        for event in last_events.try_iter() {
            self.pass_on(&event);
        }
        self.recording = None;
        self.streaming = false;
        self.end_hls();
        summary.map(Some)
    }

    /// Stops the HLS server and master writer once the HLS outputs have ended (a temporary
    /// folder goes with them); what failed is told to every front-end.
    fn end_hls(&mut self) {
        let Some(publication) = self.hls.take() else {
            return;
        };
        match publication.stop() {
            Ok(Some(pushed)) => tracing::info!(
                "HLS push: {} files sent, {} deleted, {} failed attempts",
                pushed.files_sent,
                pushed.files_deleted,
                pushed.failures
            ),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!("HLS: {error}");
                self.hub.publish(&Event::Warning(format!("HLS: {error}")));
            }
        }
    }

    /// The HLS master playlist's URL while HLS is served.
    pub fn hls_url(&self) -> Option<String> {
        self.hls.as_ref().and_then(|hls| hls.master_url())
    }

    pub fn subscribe(&self) -> Subscription {
        self.hub.subscribe()
    }

    /// Hands the engine's events to every subscriber and keeps the state they describe.
    /// Front-ends call it often (the app once a frame; headless ones in their loop).
    pub fn pump(&mut self) {
        let Some(engine) = &self.engine else {
            return;
        };
        let mut events: Vec<Event> = engine.events().try_iter().collect();
        // A failed HLS upload is retried; the operator hears of each failure meanwhile.
        if let Some(problem) = self.hls.as_ref().and_then(|hls| hls.take_problem()) {
            events.push(Event::Warning(format!("HLS push: {problem}")));
        }
        // Pumped after every remote request too: the figures are read only when a sample is due.
        let now = std::time::Instant::now();
        if self.stats_history.due(now) {
            self.stats_history.update(&engine.stats(), now);
        }
        for event in events {
            self.pass_on(&event);
        }
    }

    /// The transition a take uses when none is named.
    pub fn transition(&self) -> Transition {
        self.transition
    }

    pub fn set_transition(&mut self, transition: Transition) {
        self.transition = transition;
    }

    /// How long the recording has run at `now`, and the streams been live.
    pub fn outputs_running_for(
        &self,
        now: std::time::Instant,
    ) -> (Option<std::time::Duration>, Option<std::time::Duration>) {
        let since = |start: Option<std::time::Instant>| start.map(|start| now - start);
        (since(self.recording_since), since(self.streaming_since))
    }

    /// The engine's figures sampled once a second (as of the last [`Controller::pump`]), with
    /// this process's CPU and memory.
    pub fn stats_history(&self) -> &stats::StatsHistory {
        &self.stats_history
    }

    /// Keeps the state an engine event describes, and hands the event to every subscriber.
    fn pass_on(&mut self, event: &Event) {
        self.observe(event);
        self.hub.publish(event);
    }

    /// Keeps the state an engine event describes.
    fn observe(&mut self, event: &Event) {
        match event {
            Event::RecordingStarted { .. } => {
                self.recording_since = Some(std::time::Instant::now());
            }
            Event::Output(notice) if notice.state == crate::output::OutputState::Live => {
                self.streaming_since
                    .get_or_insert_with(std::time::Instant::now);
            }
            Event::SceneChanged { scene } => self.program = scene.clone(),
            Event::PreviewChanged { scene } => self.preview = scene.clone(),
            Event::RecordingStopped { path, .. } if self.recording.as_ref() == Some(path) => {
                self.recording = None;
                self.recording_since = None;
            }
            Event::StreamingStopped { .. } => {
                self.streaming = false;
                self.streaming_since = None;
                self.end_hls();
            }
            // A show's cue changed the engine's copy; this one follows, so the next edit made
            // here does not undo the cue's. Not an operator's edit: no undo step, and the
            // collection is not marked unsaved.
            Event::Edited(edit) => {
                if let Err(error) = apply_edit(&mut self.collection, edit) {
                    tracing::warn!(
                        "the controller's collection did not take a show's edit: {error}"
                    );
                }
            }
            _ => {}
        }
    }

    pub fn state(&self) -> ShowState {
        ShowState {
            program: self.program.clone(),
            preview: self.preview.clone(),
            transition_progress: self
                .engine
                .as_ref()
                .and_then(|engine| engine.stats().switcher.transition_progress),
            recording: self.recording.clone(),
            streaming: self.streaming,
            unsaved: self.unsaved,
            can_undo: self.history.can_undo(),
            can_redo: self.history.can_redo(),
        }
    }

    /// The collection as edited so far (every item's visibility and transform, every input's
    /// volume and mute).
    pub fn collection(&self) -> &Collection {
        &self.collection
    }

    /// The engine's figures: frames, each output's state and throughput, meters.
    pub fn stats(&self) -> Option<Stats> {
        self.engine.as_ref().map(Engine::stats)
    }

    /// Carries out `request`, or says why not.
    pub fn request(&mut self, request: Request) -> Result<(), RequestError> {
        match request {
            Request::SetProgramScene(scene) => {
                self.known_scene(&scene)?;
                self.send(Command::SwitchScene(scene))
            }
            Request::SetPreviewScene(scene) => {
                if let Some(name) = &scene {
                    self.known_scene(name)?;
                }
                self.send(Command::SetPreview(scene.clone()))?;
                // Kept at once (the engine confirms it a frame later), so a take right after
                // finds the preview.
                self.preview = scene;
                Ok(())
            }
            Request::Take(transition) => {
                if self.preview.is_none() {
                    return Err(RequestError::NoPreview);
                }
                self.send(Command::Transition {
                    to: None,
                    transition,
                })
            }
            Request::Transition { to, transition } => {
                self.known_scene(&to)?;
                self.send(Command::Transition {
                    to: Some(to),
                    transition,
                })
            }
            Request::SetTBar {
                position,
                transition,
            } => {
                if self.preview.is_none() {
                    return Err(RequestError::NoPreview);
                }
                self.send(Command::SetTBar {
                    position,
                    transition,
                })
            }
            Request::Edit(edit) => {
                let mut edited = self.collection.clone();
                apply_edit(&mut edited, &edit)?;
                self.history.record(&self.snapshot());
                self.replace_collection(edited)
            }
            Request::Undo => {
                let previous = self
                    .history
                    .undo(&self.snapshot())
                    .ok_or(RequestError::NothingToUndo)?;
                self.restore(previous)
            }
            Request::Redo => {
                let next = self
                    .history
                    .redo(&self.snapshot())
                    .ok_or(RequestError::NothingToRedo)?;
                self.restore(next)
            }
            Request::Save { to } => self.save(to),
            Request::StartRecording(recording) => {
                if let Some(path) = &self.recording {
                    return Err(RequestError::AlreadyRecording(path.clone()));
                }
                let path = recording.path.clone();
                // Recording starts the show when it is not running yet.
                self.start()?;
                self.send(Command::StartRecording(recording))?;
                self.recording = Some(path);
                Ok(())
            }
            Request::StopRecording => {
                if self.recording.is_none() {
                    return Err(RequestError::NotRecording);
                }
                self.send(Command::StopRecording)
            }
            Request::StartStreaming(mut destinations) => {
                let plan = self.settings.hls_plan(self.canvas_size())?;
                self.start()?;
                // Streams added to running ones leave the running HLS as it is.
                if let (Some(plan), None) = (plan, &self.hls) {
                    let publication = crate::output::hls_publication::HlsPublication::start(&plan)?;
                    destinations.extend(publication.destinations().iter().cloned());
                    self.hls = Some(publication);
                }
                if let Err(error) = self.send(Command::StartStreaming(destinations)) {
                    self.end_hls();
                    return Err(error);
                }
                self.streaming = true;
                Ok(())
            }
            Request::StopStreaming => {
                if !self.streaming {
                    return Err(RequestError::NotStreaming);
                }
                self.send(Command::StopStreaming)
            }
            Request::Media { source, control } => {
                match self.collection.source(&source).map(|s| &s.kind) {
                    None => return Err(unknown_source(&self.collection, &source).into()),
                    Some(SourceKind::Media(_)) => {}
                    Some(other) => {
                        return Err(EditError::WrongKind {
                            source_id: source,
                            kind: other.name(),
                            wanted: "a media source",
                        }
                        .into())
                    }
                }
                self.send(Command::Media { source, control })
            }
            Request::Go => {
                if self.show.is_none() {
                    return Err(RequestError::NoShow);
                }
                self.send(Command::Go)
            }
            Request::JumpToCue(cue) => {
                let show = self.show.as_ref().ok_or(RequestError::NoShow)?;
                let mut runner = crate::base::lock(&show.runner);
                let cues = runner.cues().len();
                runner
                    .jump_to(cue)
                    .ok_or(CueEditError::NoSuchCue { index: cue, cues })?;
                Ok(())
            }
            Request::EditCues(edit) => self.edit_cues(edit),
            Request::SaveShow { to } => self.save_show(to),
            Request::Stop => self.send(Command::Stop),
        }
    }

    fn known_scene(&self, name: &str) -> Result<(), RequestError> {
        match self.collection.scene(name) {
            Some(_) => Ok(()),
            None => Err(unknown_scene(&self.collection, name).into()),
        }
    }

    /// Tells every front-end the collection's scenes (added, removed, renamed, reordered, or
    /// another collection opened).
    fn announce_scenes(&self) {
        let scenes = scene_names(&self.collection)
            .into_iter()
            .map(str::to_string)
            .collect();
        self.hub.publish(&Event::ScenesChanged { scenes });
    }

    fn send(&self, command: Command) -> Result<(), RequestError> {
        let engine = self.engine.as_ref().ok_or(RequestError::NotRunning)?;
        Ok(engine.send(command)?)
    }

    /// A change of the collection made in this process (the app's editors: adding, removing,
    /// reordering, renaming), kept for undo like an [`Edit`].
    pub fn change(&mut self, change: impl FnOnce(&mut Collection)) -> Result<(), RequestError> {
        self.history.record(&self.snapshot());
        self.change_without_history(change)
    }

    /// Keeps the collection as it is now as one undo step, for a change made in many steps
    /// (a drag) through [`Controller::change_without_history`].
    pub fn checkpoint(&mut self) {
        self.history.record(&self.snapshot());
    }

    /// As [`Controller::change`], with no undo step (a drag's every step after its first).
    pub fn change_without_history(
        &mut self,
        change: impl FnOnce(&mut Collection),
    ) -> Result<(), RequestError> {
        let mut changed = self.collection.clone();
        change(&mut changed);
        self.replace_collection(changed)
    }

    /// The collection becomes `collection`; a running engine is told, or restarted when the
    /// canvas changed and nothing is on air (on air it keeps its canvas until it restarts, and
    /// says so).
    fn replace_collection(&mut self, collection: Collection) -> Result<(), RequestError> {
        let canvas_changed = collection.canvas != self.collection.canvas;
        // Every front-end hears what changed, whoever changed it.
        for edit in crate::scene::differences(&self.collection, &collection) {
            self.hub.publish(&Event::Edited(edit));
        }
        let scenes_changed = scene_names(&collection) != scene_names(&self.collection);
        self.collection = collection;
        if scenes_changed {
            self.announce_scenes();
        }
        self.unsaved = true;
        if self.engine.is_none() {
            return Ok(());
        }
        if canvas_changed && !self.on_air() {
            return self.restart();
        }
        self.send(Command::UpdateCollection(Box::new(self.collection.clone())))
    }

    /// Opens the collection in `path` in place of this one (unsaved changes are the caller's
    /// to ask about). On air, the show goes on with it (its current scene to program), which
    /// needs the same canvas; otherwise a running engine restarts on it.
    pub fn open(&mut self, path: &Path) -> Result<(), OpenError> {
        let collection = crate::scene::load_file(path)?;
        let on_air = self.on_air();
        if self.show.is_some() {
            // The show's cues name this collection's scenes and sources: it closes with it,
            // and its runner leaves with the engine it drives.
            if on_air {
                return Err(OpenError::ShowOnAir(path.to_path_buf()));
            }
            self.show = None;
            self.config.driver = None;
        }
        if on_air && collection.canvas != self.collection.canvas {
            return Err(OpenError::CanvasOnAir {
                path: path.to_path_buf(),
                opened: collection.canvas,
                on_air: self.collection.canvas,
            });
        }
        let scene = collection.current_scene.clone();
        self.collection = collection;
        self.announce_scenes();
        self.file = Some(path.to_path_buf());
        self.unsaved = false;
        self.history.clear();
        self.remember_file();
        let studio_mode = self.preview.is_some();
        self.program = scene.clone();
        self.preview = studio_mode.then(|| scene.clone());
        if self.engine.is_none() {
            return Ok(());
        }
        if !on_air {
            return Ok(self.restart()?);
        }
        self.send(Command::UpdateCollection(Box::new(self.collection.clone())))?;
        self.send(Command::SwitchScene(scene.clone()))?;
        if studio_mode {
            self.send(Command::SetPreview(Some(scene)))?;
        }
        Ok(())
    }

    fn save(&mut self, to: Option<PathBuf>) -> Result<(), RequestError> {
        let path = to
            .or_else(|| self.file.clone())
            .ok_or(RequestError::NoFile)?;
        crate::scene::save_file(&self.collection, &path).map_err(|cause| RequestError::Save {
            path: path.clone(),
            cause,
        })?;
        self.file = Some(path);
        self.unsaved = false;
        self.remember_file();
        Ok(())
    }

    /// Keeps the collection's file in the settings as the one to open next time. Failing to
    /// save that is a warning to the subscribers: the collection itself is safe.
    fn remember_file(&mut self) {
        if self.settings_path.is_none() {
            return;
        }
        let file = self.file.as_ref().and_then(|path| path.canonicalize().ok());
        if file.is_none() || file == self.settings.last_collection {
            return;
        }
        self.settings.last_collection = file;
        if let Err(error) = self.save_settings() {
            self.hub
                .publish(&Event::Warning(format!("settings not saved: {error}")));
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::error!("the show did not stop cleanly: {error}");
        }
    }
}
