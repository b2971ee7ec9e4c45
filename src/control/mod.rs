//! The show controller: the one owner of what a show is made of, above the engine and shows and
//! below the front-ends. It holds the open collection (edits with undo, saving), the engine
//! session, and what the outputs are doing; front-ends send it [`Request`]s, each answered with
//! success or a [`RequestError`] that says why, and read its events through their own
//! [`Subscription`] (see [`hub`]), so a slow reader loses only its own meter readings.
//!
//! `tally record`, `stream` and `run` go through it. Unfinished (issue #16): the app does not
//! yet (it still owns its collection, history and engine session), and settings are the engine
//! configuration it is given.

mod history;
pub mod hub;

pub use history::History;
pub use hub::{Hub, Received, Subscription};

use crate::engine::transition::Transition;
use crate::engine::{
    Command, CommandError, Engine, EngineConfig, EngineError, Event, RecordingConfig, Stats,
    Summary,
};
use crate::output::Destination;
use crate::scene::{
    apply_edit, unknown_scene, unknown_source, Collection, Edit, EditError, SourceKind,
};
use crate::sources::MediaControl;
use std::path::PathBuf;

/// What a front-end asks of the show.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// This scene on program, with a cut.
    SetProgramScene(String),
    /// Studio mode with this scene in preview; `None` leaves studio mode.
    SetPreviewScene(Option<String>),
    /// The preview scene to program with `transition`.
    Take(Transition),
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
    #[error(transparent)]
    Engine(#[from] CommandError),
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
    /// Where the collection is saved.
    file: Option<PathBuf>,
    history: History,
    unsaved: bool,
    config: EngineConfig,
    engine: Option<Engine>,
    hub: Hub,
    program: String,
    preview: Option<String>,
    recording: Option<PathBuf>,
    streaming: bool,
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
            file,
            history: History::default(),
            unsaved: false,
            config,
            engine: None,
            hub: Hub::default(),
            preview: None,
        }
    }

    /// Starts the engine on the collection as it is now.
    pub fn start(&mut self) -> Result<(), EngineError> {
        if self.engine.is_some() {
            return Ok(());
        }
        let mut collection = self.collection.clone();
        collection.current_scene = self.program.clone();
        self.engine = Some(Engine::start(collection, self.config.clone())?);
        Ok(())
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
        summary.map(Some)
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
        let events: Vec<Event> = engine.events().try_iter().collect();
        for event in events {
            self.pass_on(&event);
        }
    }

    /// Keeps the state an engine event describes, and hands the event to every subscriber.
    fn pass_on(&mut self, event: &Event) {
        self.observe(event);
        self.hub.publish(event);
    }

    /// Keeps the state an engine event describes.
    fn observe(&mut self, event: &Event) {
        match event {
            Event::SceneChanged { scene } => self.program = scene.clone(),
            Event::PreviewChanged { scene } => self.preview = scene.clone(),
            Event::RecordingStopped { path, .. } if self.recording.as_ref() == Some(path) => {
                self.recording = None;
            }
            Event::StreamingStopped { .. } => self.streaming = false,
            // A show's cue changed the engine's copy; this one follows, so the next edit made
            // here does not undo the cue's. Not an operator's edit: no undo step, and the
            // collection is not marked unsaved.
            Event::Edited(edit) => {
                if let Err(error) = apply_edit(&mut self.collection, edit) {
                    tracing::warn!("the controller's collection did not take a show's edit: {error}");
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
                self.send(Command::SetPreview(scene))
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
            Request::Edit(edit) => {
                let mut edited = self.collection.clone();
                apply_edit(&mut edited, &edit)?;
                self.history.record(&self.collection);
                self.replace_collection(edited)
            }
            Request::Undo => {
                let previous = self
                    .history
                    .undo(&self.collection)
                    .ok_or(RequestError::NothingToUndo)?;
                self.replace_collection(previous)
            }
            Request::Redo => {
                let next = self
                    .history
                    .redo(&self.collection)
                    .ok_or(RequestError::NothingToRedo)?;
                self.replace_collection(next)
            }
            Request::Save { to } => self.save(to),
            Request::StartRecording(recording) => {
                if let Some(path) = &self.recording {
                    return Err(RequestError::AlreadyRecording(path.clone()));
                }
                let path = recording.path.clone();
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
            Request::StartStreaming(destinations) => {
                self.send(Command::StartStreaming(destinations))?;
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
            Request::Go => self.send(Command::Go),
            Request::Stop => self.send(Command::Stop),
        }
    }

    fn known_scene(&self, name: &str) -> Result<(), RequestError> {
        match self.collection.scene(name) {
            Some(_) => Ok(()),
            None => Err(unknown_scene(&self.collection, name).into()),
        }
    }

    fn send(&self, command: Command) -> Result<(), RequestError> {
        let engine = self.engine.as_ref().ok_or(RequestError::NotRunning)?;
        Ok(engine.send(command)?)
    }

    /// The collection becomes `collection`; a running engine is told.
    fn replace_collection(&mut self, collection: Collection) -> Result<(), RequestError> {
        self.collection = collection;
        self.unsaved = true;
        match &self.engine {
            Some(engine) => {
                Ok(engine.send(Command::UpdateCollection(Box::new(self.collection.clone())))?)
            }
            None => Ok(()),
        }
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
        Ok(())
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::error!("the show did not stop cleanly: {error}");
        }
    }
}
