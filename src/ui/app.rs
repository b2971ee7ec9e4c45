//! The app's state and frame loop: a view over the show [`Controller`] (which owns the
//! collection, its undo history, the settings and the engine session), with what only the
//! window has: the monitors' textures, the selection and drags, studio mode's transition
//! choice, the Settings window's working copy, and the problems to show.

use super::docks;
use super::handles::{self, ItemFrame};
use super::monitor::{self, PREVIEW_GREEN, PROGRAM_RED};
use super::pickers::{PickFor, Pickers};
use super::window_paint::{CanvasImage, WindowPaint};
use crate::base::Pacing;
use crate::control::{
    settings_path, Controller, Received, Request, RequestError, Settings, Subscription,
};
use crate::engine::{
    Direction, Engine, EngineConfig, Event, FrameListener, RecordingConfig, Stats, Transition,
    TransitionKind,
};
use crate::remote::{RemoteConfig, RemoteServer};
use crate::render::Gpu;
use crate::scene::{self, Collection, Color, Edit, Item, ItemSize, SourceKind};
use crate::show::CueRunner;
use eframe::egui;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The window's background: egui's dark panel grey.
const BACKGROUND: egui::Color32 = egui::Color32::from_gray(27);

/// The transitions offered in the Transitions dock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionChoice {
    Cut,
    Fade,
    FadeToBlack,
    SlideLeft,
    WipeRight,
}

impl TransitionChoice {
    pub const ALL: [TransitionChoice; 5] = [
        TransitionChoice::Cut,
        TransitionChoice::Fade,
        TransitionChoice::FadeToBlack,
        TransitionChoice::SlideLeft,
        TransitionChoice::WipeRight,
    ];

    pub fn label(self) -> &'static str {
        match self {
            TransitionChoice::Cut => "Cut",
            TransitionChoice::Fade => "Fade",
            TransitionChoice::FadeToBlack => "Fade to black",
            TransitionChoice::SlideLeft => "Slide",
            TransitionChoice::WipeRight => "Wipe",
        }
    }

    pub fn transition(self, duration: Duration) -> Transition {
        let kind = match self {
            TransitionChoice::Cut => return Transition::CUT,
            TransitionChoice::Fade => TransitionKind::Fade,
            TransitionChoice::FadeToBlack => TransitionKind::FadeToColor(Color::BLACK),
            TransitionChoice::SlideLeft => TransitionKind::Slide(Direction::Left),
            TransitionChoice::WipeRight => TransitionKind::Wipe(Direction::Right),
        };
        Transition { kind, duration }
    }
}

/// The running engine's canvases, ready to be shown (none without a wgpu renderer).
struct Canvases {
    /// The controller's engine start they belong to.
    start: u64,
    program: Option<CanvasImage>,
    preview: Option<CanvasImage>,
}

pub struct TallyApp {
    pub(super) controller: Controller,
    /// The controller's events for the window: warnings, recordings finished, failures.
    events: Subscription,
    canvases: Option<Canvases>,
    window_paint: Option<WindowPaint>,
    pub(super) studio_mode: bool,
    pub(super) transition: TransitionChoice,
    pub(super) transition_ms: u32,
    pub(super) tbar: f32,
    /// Index of the selected item in the edited scene.
    pub(super) selected: Option<usize>,
    pub(super) stats: Stats,
    /// A recording stopped whose file the engine is still finishing.
    pub(super) finishing_recording: Option<PathBuf>,
    /// The last recording completed.
    pub(super) saved_recording: Option<PathBuf>,
    /// The file dialog open, if any.
    pub(super) pickers: Pickers,
    /// The cue selected in the Cue List, for editing.
    pub(super) selected_cue: Option<usize>,
    /// A cue's delay or time being typed in the Cue List (applied when the field is left).
    pub(super) cue_trigger_text: Option<(usize, String)>,
    /// Remote control while Settings turn it on, with the configuration it runs with.
    remote: Option<(RemoteServer, RemoteConfig)>,
    /// Why remote control is not serving though Settings ask for it, and for which settings.
    remote_problem: Option<String>,
    remote_problem_for: Option<RemoteConfig>,
    /// The window's egui context, which a remote request wakes for its answer.
    egui_ctx: egui::Context,
    /// The Settings window's working copy; the controller takes each change at the next pass.
    pub(super) settings: Settings,
    pub(super) show_settings: bool,
    /// Canvas size and rate being edited in Settings, until applied.
    pub(super) canvas_draft: Option<scene::Canvas>,
    /// Whether NVENC opens here, checked when Settings first shows it.
    /// Which encoders open on this machine (short test encodes, done once, when Settings
    /// first shows them).
    encoder_probes: Option<Vec<crate::encode::EncoderProbe>>,
    /// The destinations being edited in the Settings window, one per line.
    pub(super) destinations_text: String,
    /// The Settings window's encode profiles, one per line, as typed.
    pub(super) profiles_text: String,
    /// The Settings window's HLS ladder, as typed (comma-separated profile names).
    pub(super) hls_ladder_text: String,
    /// Problems to show: a collection that failed to load, an engine that failed to start.
    pub(super) problem: Option<String>,
    pub(super) warnings: Vec<String>,
    /// Window redraws since the app opened, for the frame rate reported on exit.
    redraws: u64,
    redraw_pacing: RedrawPacing,
    opened: Instant,
    pub(super) open_path: String,
    pub(super) new_text: String,
    /// The Name field of the Properties dock while it is being edited.
    pub(super) renaming: Option<String>,
    /// Text being typed into Properties fields that apply when left, by source and field.
    pub(super) field_edits: std::collections::HashMap<String, String>,
    dragging: Option<DragState>,
    /// A scene just put in preview, shown as such until the engine reports it.
    pending_preview: Option<(String, Instant)>,
    /// What waits on the unsaved-changes question.
    pub(super) pending: Option<Pending>,
    /// The user chose to close without saving: let the window go.
    closing: bool,
    /// Where the editable monitor's picture was last drawn, and its points per canvas pixel.
    edit_monitor: Option<(egui::Rect, f32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DragAction {
    Move,
    /// A corner handle: scale about the opposite corner.
    Resize(usize),
    /// Alt held on an edge: crop that side.
    Crop(usize),
    /// The handle above the item: turn it about its centre.
    Rotate,
}

/// An action held back because the collection has unsaved changes.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Pending {
    Open(PathBuf),
    Quit,
}

struct DragState {
    index: usize,
    /// What the drag does to the item.
    action: DragAction,
    /// The item as it was when the drag started; each step applies the whole drag to it.
    start: Item,
    start_frame: ItemFrame,
    start_pointer: [f32; 2],
}

impl TallyApp {
    /// Builds the app on eframe's wgpu device and starts the engine on `path` (or the
    /// collection open last, or the demo), with settings from the config directory.
    pub fn new(cc: &eframe::CreationContext<'_>, path: Option<PathBuf>) -> Self {
        Self::with_settings_file(cc, path, settings_path())
    }

    /// As [`TallyApp::new`], keeping settings in `settings_path`.
    pub fn with_settings_file(
        cc: &eframe::CreationContext<'_>,
        path: Option<PathBuf>,
        settings_path: PathBuf,
    ) -> Self {
        Self::on_context(
            &cc.egui_ctx,
            cc.wgpu_render_state.as_ref(),
            path,
            settings_path,
        )
    }

    /// As [`TallyApp::with_settings_file`], for a window loop other than eframe's: egui's
    /// context and the wgpu state its renderer draws with.
    pub fn on_context(
        egui_ctx: &egui::Context,
        render_state: Option<&eframe::egui_wgpu::RenderState>,
        path: Option<PathBuf>,
        settings_path: PathBuf,
    ) -> Self {
        let mut app = Self::on_context_without_engine(egui_ctx, render_state, path, settings_path);
        app.ensure_engine();
        app
    }

    /// As [`TallyApp::on_context`], but the engine waits for [`TallyApp::ensure_engine`] (or
    /// [`TallyApp::record_to`]). The app's window starts it after its first frame: on a
    /// software rasteriser that frame compiles egui's shaders and uploads the font atlas,
    /// which kept a just-started engine's first frames late.
    pub fn on_context_without_engine(
        egui_ctx: &egui::Context,
        render_state: Option<&eframe::egui_wgpu::RenderState>,
        path: Option<PathBuf>,
        settings_path: PathBuf,
    ) -> Self {
        egui_ctx.set_theme(egui::Theme::Dark);
        // The window's background is the frame's clear colour (`clear_color`), so panels
        // paint nothing of their own: egui's shader is costly on a software rasteriser (see
        // `WindowPaint`).
        egui_ctx.style_mut_of(egui::Theme::Dark, |style| {
            style.visuals.panel_fill = egui::Color32::TRANSPARENT;
        });
        let window_paint = render_state.map(WindowPaint::new);
        let gpu: Option<Arc<Gpu>> = render_state.map(|state| {
            Arc::new(Gpu {
                device: state.device.clone(),
                queue: state.queue.clone(),
                info: state.adapter.get_info(),
            })
        });
        if gpu.as_ref().is_some_and(|gpu| gpu.is_software()) {
            // Feathering (egui's anti-aliasing) lines every shape's edges with one-pixel
            // strips. A software rasteriser shades whole 4x4 blocks for each thin triangle, so
            // the strips cost as much as the shapes: off, egui's meshes touch half the blocks
            // (BENCHMARKS.md), for slightly stepped round corners.
            egui_ctx.tessellation_options_mut(|options| options.feathering = false);
        }
        let (settings, settings_problem) = Settings::load(&settings_path);
        // What was open last, unless a file is named (or the last one is gone).
        let path = path
            .or_else(|| {
                settings
                    .last_collection
                    .clone()
                    .filter(|last| last.exists())
            })
            .unwrap_or_else(demo_collection);
        // A show script opens with its collection; anything else is a collection.
        let (collection, file, show, problem) = if crate::show::looks_like_show(&path) {
            match crate::show::load_file(&path) {
                Ok(show) => (
                    show.collection.clone(),
                    Some(show.collection_file.clone()),
                    Some(show),
                    None,
                ),
                Err(error) => (empty_collection(), None, None, Some(error.to_string())),
            }
        } else {
            match scene::load_file(&path) {
                Ok(collection) => (collection, Some(path), None, None),
                Err(error) => (empty_collection(), None, None, Some(error.to_string())),
            }
        };
        let redraw_pacing = RedrawPacing::default();
        let config = EngineConfig {
            pacing: Pacing::RealTime,
            video: settings.video(),
            gpu,
            on_frame: Some(redraw_pacing.frame_listener({
                let ctx = egui_ctx.clone();
                // Not `request_repaint()`: egui answers that with two redraws.
                move || ctx.request_repaint_after(Duration::from_millis(1))
            })),
            ..EngineConfig::default()
        };
        let mut controller = Controller::new(collection, file, config)
            .with_settings(settings.clone(), Some(settings_path));
        if let Some(show) = &show {
            let runner = CueRunner::new(show, false, crate::show::local_time_of_day);
            controller = controller.with_show(show, runner);
        }
        // Studio mode, with the program scene in preview, from the first engine on.
        let program = controller.collection().current_scene.clone();
        controller.set_start_preview(Some(program));
        let events = controller.subscribe();
        Self {
            controller,
            events,
            canvases: None,
            window_paint,
            studio_mode: true,
            transition: TransitionChoice::Fade,
            transition_ms: 300,
            tbar: 0.0,
            selected: None,
            stats: Stats::default(),
            finishing_recording: None,
            saved_recording: None,
            pickers: Pickers::default(),
            selected_cue: None,
            cue_trigger_text: None,
            remote: None,
            remote_problem: None,
            remote_problem_for: None,
            egui_ctx: egui_ctx.clone(),
            destinations_text: settings.destinations.join("\n"),
            profiles_text: settings.profiles.join("\n"),
            hls_ladder_text: settings.hls_ladder.join(","),
            settings,
            show_settings: false,
            canvas_draft: None,
            encoder_probes: None,
            problem: problem.or(settings_problem.map(|error| error.to_string())),
            warnings: Vec::new(),
            redraws: 0,
            redraw_pacing,
            opened: Instant::now(),
            open_path: String::new(),
            new_text: "Title".into(),
            renaming: None,
            field_edits: Default::default(),
            dragging: None,
            pending_preview: None,
            pending: None,
            closing: false,
            edit_monitor: None,
        }
    }

    /// Starts the engine on the current collection unless one runs.
    pub fn ensure_engine(&mut self) {
        if self.controller.engine().is_none() {
            if let Err(error) = self.controller.start() {
                self.problem = Some(format!("the engine could not start: {error}"));
            }
            self.catch_up_with_engine();
        }
    }

    /// The last recording the engine reported complete.
    pub fn saved_recording(&self) -> Option<&Path> {
        self.saved_recording.as_deref()
    }

    /// How many engines were started since the app opened.
    pub fn engine_starts(&self) -> u64 {
        self.controller.engine_starts()
    }

    pub fn engine(&self) -> Option<&Engine> {
        self.controller.engine()
    }

    pub fn collection(&self) -> &Collection {
        self.controller.collection()
    }

    /// The show controller the window is a view over.
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// The source of the item selected in the edited scene.
    pub fn selected_source(&self) -> Option<String> {
        self.selected_item().map(|(_, _, item)| item.source.clone())
    }

    /// The open collection's file, if it has one.
    pub fn file(&self) -> Option<&Path> {
        self.controller.file()
    }

    /// The file being recorded to, while a recording runs.
    pub(super) fn recording(&self) -> Option<PathBuf> {
        self.controller.state().recording
    }

    pub(super) fn streaming(&self) -> bool {
        self.controller.state().streaming
    }

    /// The scene that editing applies to: the preview in studio mode, else the program.
    pub fn edited_scene_name(&self) -> String {
        if let (true, Some((pending, _))) = (self.studio_mode, &self.pending_preview) {
            return pending.clone();
        }
        if self.studio_mode {
            self.stats
                .switcher
                .preview
                .clone()
                .unwrap_or_else(|| self.program_scene())
        } else {
            self.program_scene()
        }
    }

    /// Index of the edited scene in the collection, if it still exists.
    pub(super) fn edited_scene_index(&self) -> Option<usize> {
        let name = self.edited_scene_name();
        self.collection().scenes.iter().position(|s| s.name == name)
    }

    pub fn program_scene(&self) -> String {
        if self.stats.switcher.program.is_empty() {
            self.collection().current_scene.clone()
        } else {
            self.stats.switcher.program.clone()
        }
    }

    /// Asks the controller for `request`; a refusal is shown in the warnings (with no engine
    /// running there is nothing to command).
    pub(super) fn request(&mut self, request: Request) {
        match self.controller.request(request) {
            Ok(()) | Err(RequestError::NotRunning) => {}
            Err(error) => self.warnings.push(error.to_string()),
        }
    }

    pub(super) fn chosen_transition(&self) -> Transition {
        self.transition
            .transition(Duration::from_millis(u64::from(self.transition_ms)))
    }

    /// Makes the monitors show the canvases of the engine running now (after a start or a
    /// restart of the controller's engine).
    fn catch_up_with_engine(&mut self) {
        let starts = self.controller.engine_starts();
        let Some(engine) = self.controller.engine() else {
            self.canvases = None;
            return;
        };
        if self.canvases.as_ref().is_some_and(|c| c.start == starts) {
            return;
        }
        let display = engine.display();
        let image = |texture| self.window_paint.as_ref().map(|paint| paint.image(texture));
        self.canvases = Some(Canvases {
            start: starts,
            program: image(&display.program),
            preview: image(&display.preview),
        });
    }

    /// Applies an edit to the collection, recording it for undo; the controller hands it to
    /// the engine.
    pub(super) fn edit(&mut self, change: impl FnOnce(&mut Collection)) {
        let outcome = self.controller.change(change);
        self.after_change(outcome);
    }

    /// Deletes the selected item of the edited scene (the Delete button or key), and its
    /// source when nothing else uses it.
    pub(super) fn delete_selected_item(&mut self) {
        let Some(scene_index) = self.edited_scene_index() else {
            return;
        };
        let Some(index) = self
            .selected
            .filter(|index| *index < self.collection().scenes[scene_index].items.len())
        else {
            return;
        };
        self.edit(|c| {
            c.remove_item(scene_index, index);
        });
        self.selected = None;
    }

    /// For continuous changes (dragging, typing) whose start was already recorded.
    pub(super) fn edit_without_history(&mut self, change: impl FnOnce(&mut Collection)) {
        let outcome = self.controller.change_without_history(change);
        self.after_change(outcome);
    }

    /// Shows what went wrong with a change (the engine did not take it, or did not restart
    /// on a new canvas), and follows a restart with the monitors.
    fn after_change(&mut self, outcome: Result<(), RequestError>) {
        match outcome {
            Ok(()) | Err(RequestError::NotRunning) => {}
            Err(error @ RequestError::Session(_)) => {
                self.problem = Some(format!("the engine could not restart: {error}"));
            }
            Err(error) => self
                .warnings
                .push(format!("the engine did not take an edit: {error}")),
        }
        self.catch_up_with_engine();
    }

    pub fn undo(&mut self) {
        match self.controller.request(Request::Undo) {
            Ok(()) | Err(RequestError::NothingToUndo) => self.after_change(Ok(())),
            Err(error) => self.after_change(Err(error)),
        }
    }

    pub fn redo(&mut self) {
        match self.controller.request(Request::Redo) {
            Ok(()) | Err(RequestError::NothingToRedo) => self.after_change(Ok(())),
            Err(error) => self.after_change(Err(error)),
        }
    }

    /// Renames source `from` to `to` everywhere it is used. New names are letters, digits, `_`
    /// and `-` (easy to type in a file) and must be unused; a bad one is reported, not applied.
    pub fn rename_source(&mut self, from: &str, to: &str) {
        let rename = Edit::RenameSource {
            from: from.to_string(),
            to: to.to_string(),
        };
        match self.controller.request(Request::Edit(rename)) {
            Ok(()) => self.after_change(Ok(())),
            Err(RequestError::Edit(refused)) => self.problem = Some(refused.to_string()),
            Err(error) => self.after_change(Err(error)),
        }
    }

    /// Whether the collection or the open show's cues have changes not saved.
    pub(super) fn has_unsaved(&self) -> bool {
        self.controller.state().unsaved || self.controller.cues_unsaved()
    }

    /// Saves the collection and the show's cues, each if it has changes (Ctrl+S with a show
    /// open, and the unsaved-changes question's Save).
    fn save_changes(&mut self) {
        if self.controller.state().unsaved {
            self.save(None);
        }
        if self.controller.cues_unsaved() {
            self.cue_request(Request::SaveShow { to: None });
        }
    }

    /// Opens another collection or show, first asking about unsaved changes.
    pub fn request_open(&mut self, path: PathBuf) {
        if self.has_unsaved() {
            self.pending = Some(Pending::Open(path));
        } else {
            self.open(&path);
        }
    }

    /// The answer to the unsaved-changes question: save first or not, then go on; or cancel.
    pub(super) fn resolve_pending(&mut self, save_first: Option<bool>, ctx: &egui::Context) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        match save_first {
            None => return,
            Some(true) => {
                self.save_changes();
                if self.has_unsaved() {
                    // Saving failed (the problem is shown): do not lose the edits.
                    return;
                }
            }
            Some(false) => {}
        }
        match pending {
            Pending::Open(path) => self.open(&path),
            Pending::Quit => {
                self.closing = true;
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }

    /// Opens the file dialog for `purpose`, in the folder that fits it.
    pub(super) fn browse(&mut self, purpose: PickFor) {
        let start = match &purpose {
            PickFor::RecordingsFolder => Some(self.settings.recordings_dir.clone()),
            _ => Some(self.collection().base_dir.clone()).filter(|dir| !dir.as_os_str().is_empty()),
        };
        self.pickers.open(purpose, start.as_deref());
    }

    /// `path` relative to the collection's folder when it is inside it, as it would be typed
    /// in the file, so the folder can move with its media; otherwise unchanged.
    pub(super) fn collection_relative(&self, path: &Path) -> PathBuf {
        let base = &self.collection().base_dir;
        let canonical_base = base.canonicalize().ok();
        let relative = [Some(base), canonical_base.as_ref()]
            .into_iter()
            .flatten()
            .filter(|base| !base.as_os_str().is_empty())
            .find_map(|base| path.strip_prefix(base).ok())
            .map_or_else(|| path.to_path_buf(), Path::to_path_buf);
        relative
    }

    /// Uses a path chosen in a file dialog.
    pub fn apply_picked(&mut self, purpose: PickFor, path: PathBuf) {
        match purpose {
            PickFor::OpenCollection => self.request_open(path),
            PickFor::SaveCollectionAs => {
                let path = if path.extension().is_none() {
                    path.with_extension("toml")
                } else {
                    path
                };
                self.save(Some(&path));
            }
            PickFor::NewImage | PickFor::NewMedia => docks::add_file_source(self, &path),
            PickFor::SourceFile(id) => {
                let path = self.collection_relative(&path);
                self.edit(|collection| {
                    let source = collection.sources.iter_mut().find(|s| s.id == id);
                    match source.map(|source| &mut source.kind) {
                        Some(SourceKind::Image { path: file }) => *file = path,
                        Some(SourceKind::Media(media)) => media.path = path,
                        _ => {}
                    }
                });
            }
            PickFor::RecordingsFolder => self.settings.recordings_dir = path,
        }
    }

    /// Opens another collection; one that fails to load leaves the current one untouched.
    pub fn open(&mut self, path: &Path) {
        let restarts = self.controller.engine().is_some() && !self.controller.on_air();
        let opened = if crate::show::looks_like_show(path) {
            self.controller.open_show(path)
        } else {
            self.controller.open(path)
        };
        match opened {
            Ok(()) => {
                self.selected = None;
                self.problem = None;
                self.pending_preview = None;
                if restarts {
                    self.stats = Stats::default();
                }
            }
            Err(error) => self.problem = Some(error.to_string()),
        }
        self.catch_up_with_engine();
    }

    /// Saves to the open file (atomically, keeping a `.bak`), or to `path` (save as).
    pub fn save(&mut self, path: Option<&Path>) {
        let to = path.map(Path::to_path_buf);
        if let Err(error) = self.controller.request(Request::Save { to }) {
            self.problem = Some(match error {
                RequestError::NoFile => "there is no file to save to yet: use Save as".into(),
                error => error.to_string(),
            });
        }
    }

    /// Starts recording to `path`: on the running engine (beside a live stream, sharing its
    /// encoder unless Settings give recordings a profile of their own), or by starting the
    /// engine.
    pub fn record_to(&mut self, path: PathBuf) {
        self.take_settings();
        match self.controller.recording_to(path) {
            Ok(recording) => self.begin_recording(recording),
            Err(error) => self.problem = Some(format!("not recording: {error}")),
        }
    }

    /// Starts recording to a new file named by the time in the recordings folder.
    pub fn start_recording(&mut self) {
        self.take_settings();
        match self.controller.new_recording(std::time::SystemTime::now()) {
            Ok(recording) => self.begin_recording(recording),
            Err(error) => self.problem = Some(format!("not recording: {error}")),
        }
    }

    fn begin_recording(&mut self, recording: RecordingConfig) {
        if let Err(error) = self.controller.request(Request::StartRecording(recording)) {
            self.problem = Some(format!("not recording: {error}"));
        }
        self.catch_up_with_engine();
    }

    /// The GO button (or Space): the show's next cue that waits for GO fires.
    pub fn go(&mut self) {
        self.request(Request::Go);
    }

    /// A cue list's request (a jump, a cue edit, saving the show); a refusal is shown.
    pub(super) fn cue_request(&mut self, request: Request) {
        if let Err(error) = self.controller.request(request) {
            self.problem = Some(error.to_string());
        }
    }

    /// A new cue from what is on air now: it takes the program scene with the chosen
    /// transition (and puts the preview scene back in studio mode), waiting for GO. It goes
    /// in at the next cue's place, so it fires next.
    pub fn add_cue_from_current_state(&mut self) {
        let Some(list) = self.controller.cue_list() else {
            return;
        };
        let mut actions = vec![crate::show::Action::Take {
            scene: self.program_scene(),
            transition: self.chosen_transition(),
        }];
        if self.studio_mode {
            let preview = self.edited_scene_name();
            if preview != self.program_scene() {
                actions.push(crate::show::Action::Preview(preview));
            }
        }
        let cue = crate::show::Cue {
            name: crate::control::unused_name(&list.cues),
            trigger: crate::show::Trigger::Go,
            actions,
        };
        let at = list.status.next.unwrap_or(list.cues.len());
        self.selected_cue = Some(at);
        self.cue_request(Request::EditCues(crate::control::CueEdit::Add { at, cue }));
    }

    /// Ends the recording; the engine says when the file is complete.
    pub fn stop_recording(&mut self) {
        let Some(path) = self.recording() else {
            return;
        };
        match self.controller.request(Request::StopRecording) {
            Ok(()) => self.finishing_recording = Some(path),
            Err(error) => self.problem = Some(format!("the recording goes on: {error}")),
        }
    }

    /// Goes live to the destinations in Settings, beside a recording if one is running.
    pub fn start_streaming(&mut self) {
        self.take_settings();
        let parsed_destinations = match self.controller.destinations_from_settings() {
            Ok(parsed) => parsed,
            Err(error) => {
                self.problem = Some(format!("not streaming: {error}"));
                return;
            }
        };
        let mut destinations = Vec::new();
        for parsed in parsed_destinations {
            match parsed {
                Ok(destination) => destinations.push(destination),
                Err(error) => self.warnings.push(format!("not streaming to it: {error}")),
            }
        }
        if destinations.is_empty() && !self.settings.hls {
            self.problem = Some("no stream destination in Settings can be used".into());
            return;
        }
        if let Err(error) = self
            .controller
            .request(Request::StartStreaming(destinations))
        {
            self.problem = Some(format!("not streaming: {error}"));
        }
        self.catch_up_with_engine();
    }

    pub fn stop_streaming(&mut self) {
        self.request(Request::StopStreaming);
    }

    /// Saves the Settings window's values to the config directory.
    pub fn save_settings(&mut self) {
        self.settings.destinations = non_empty_lines(&self.destinations_text);
        self.take_settings();
        if let Err(error) = self.controller.save_settings() {
            self.problem = Some(format!("settings not saved: {error}"));
        }
    }

    /// Where remote control serves, while it does.
    pub fn remote_address(&self) -> Option<std::net::SocketAddr> {
        self.remote.as_ref().map(|(server, _)| server.address())
    }

    pub(super) fn remote_problem(&self) -> Option<&str> {
        self.remote_problem.as_deref()
    }

    /// Serves remote control as the settings ask: starts, stops or restarts the
    /// server when they change; the show goes on meanwhile.
    fn serve_remote_control(&mut self) {
        let settings = self.controller.settings();
        let wanted = settings.remote_control.then(|| RemoteConfig {
            bind: std::net::SocketAddr::new(settings.remote_bind, settings.remote_port),
            password: settings.remote_password(),
        });
        // What runs, or what failed to (a port in use): nothing to do until the settings change.
        let tried = self
            .remote
            .as_ref()
            .map(|(_, config)| config)
            .or(self.remote_problem_for.as_ref());
        if wanted.as_ref() == tried {
            return;
        }
        if let Some((server, _)) = self.remote.take() {
            server.stop();
        }
        self.remote_problem = None;
        self.remote_problem_for = None;
        let Some(config) = wanted else {
            return;
        };
        match RemoteServer::start(config.clone(), self.controller.subscribe()) {
            Ok(server) => {
                let ctx = self.egui_ctx.clone();
                server.wake_with(Arc::new(move || ctx.request_repaint()));
                self.remote = Some((server, config));
            }
            Err(error) => {
                self.remote_problem = Some(error.to_string());
                self.remote_problem_for = Some(config);
            }
        }
    }

    /// Answers the remote requests waiting, between two redraws.
    fn answer_remote_requests(&mut self) {
        let Some((server, _)) = &mut self.remote else {
            return;
        };
        server.answer_until(&mut self.controller, Instant::now());
        if let Err(error) = server.check() {
            self.warnings.push(error.to_string());
        }
        self.catch_up_with_engine();
    }

    /// Hands the Settings window's working copy to the controller when it changed (the next
    /// encoder started uses it), and takes back what the controller changed itself (the
    /// collection open last).
    fn take_settings(&mut self) {
        self.settings.profiles = non_empty_lines(&self.profiles_text);
        self.settings.hls_ladder = self
            .hls_ladder_text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(String::from)
            .collect();
        let mut settings = self.settings.clone();
        settings
            .last_collection
            .clone_from(&self.controller.settings().last_collection);
        if let Err(error) = self.controller.set_settings(settings.clone()) {
            self.warnings.push(format!("settings: {error}"));
        }
        self.settings = settings;
        self.serve_remote_control();
    }

    pub(super) fn set_studio_mode(&mut self, on: bool) {
        self.studio_mode = on;
        let preview = on.then(|| self.program_scene());
        self.request(Request::SetPreviewScene(preview));
    }

    /// A scene clicked in the Scenes dock: to preview in studio mode, else cut to program.
    pub fn choose_scene(&mut self, name: &str) {
        self.selected = None;
        if self.studio_mode {
            self.request(Request::SetPreviewScene(Some(name.to_string())));
            self.pending_preview = Some((name.to_string(), Instant::now()));
        } else {
            self.request(Request::Transition {
                to: name.to_string(),
                transition: self.chosen_transition(),
            });
        }
    }

    /// The Transition button (or Enter): preview to program.
    pub fn take(&mut self) {
        self.tbar = 0.0;
        self.pending_preview = None;
        self.selected = None;
        self.request(Request::Take(self.chosen_transition()));
    }

    /// The controller's news: its events, the engine's figures, and an engine that ended.
    fn poll_engine(&mut self) {
        self.take_settings();
        self.controller.pump();
        while let Some(received) = self.events.try_next() {
            match received {
                Received::Event(event) => self.hear(event),
                Received::Overrun => self
                    .warnings
                    .push("the window fell behind the show's events; some were not shown".into()),
            }
        }
        if self.warnings.len() > 20 {
            let excess = self.warnings.len() - 20;
            self.warnings.drain(..excess);
        }
        let Some(engine) = self.controller.engine() else {
            return;
        };
        self.stats = engine.stats();
        let caught_up = self.pending_preview.as_ref().is_some_and(|(scene, since)| {
            self.stats.switcher.preview.as_ref() == Some(scene)
                || since.elapsed() > Duration::from_secs(1)
        });
        if caught_up {
            self.pending_preview = None;
        }
        if self.controller.is_finished() {
            if let Err(error) = self.controller.wait() {
                self.problem = Some(format!("the engine stopped: {error}"));
            }
            self.catch_up_with_engine();
        }
    }

    /// What the window does with one of the show's events.
    fn hear(&mut self, event: Event) {
        match event {
            Event::Warning(message) => self.warnings.push(message),
            Event::RecordingStopped { path, error } => {
                if self.finishing_recording.as_ref() == Some(&path) {
                    self.finishing_recording = None;
                }
                match error {
                    Some(error) => self.problem = Some(format!("recording failed: {error}")),
                    None => self.saved_recording = Some(path),
                }
            }
            Event::StreamingStopped { error: Some(error) } => {
                self.problem = Some(format!("streaming failed: {error}"));
            }
            _ => {}
        }
    }

    fn keyboard(&mut self, ctx: &egui::Context) {
        // Asked before `input_mut`: egui's context lock is not re-entrant.
        let typing = ctx.egui_wants_keyboard_input();
        let go = !typing
            && self.controller.has_show()
            && ctx.input_mut(|input| input.consume_key(egui::Modifiers::NONE, egui::Key::Space));
        if go {
            self.go();
        }
        let (undo, redo, take, delete, open, save) = ctx.input_mut(|input| {
            let undo = input.consume_key(egui::Modifiers::COMMAND, egui::Key::Z);
            let redo = input.consume_key(egui::Modifiers::COMMAND, egui::Key::Y)
                || input.consume_key(
                    egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
                    egui::Key::Z,
                );
            let take = !typing && input.consume_key(egui::Modifiers::NONE, egui::Key::Enter);
            let delete = !typing && input.consume_key(egui::Modifiers::NONE, egui::Key::Delete);
            let open = input.consume_key(egui::Modifiers::COMMAND, egui::Key::O);
            let save = input.consume_key(egui::Modifiers::COMMAND, egui::Key::S);
            (undo, redo, take, delete, open, save)
        });
        if delete {
            self.delete_selected_item();
        }
        if open {
            self.browse(PickFor::OpenCollection);
        }
        if save {
            match self.file() {
                Some(_) if self.controller.has_show() => self.save_changes(),
                Some(_) => self.save(None),
                None => self.browse(PickFor::SaveCollectionAs),
            }
        }
        if undo {
            self.undo();
        }
        if redo {
            self.redo();
        }
        if take && self.studio_mode {
            self.take();
        }
    }

    /// Files dropped on the window become image or media sources in the edited scene.
    fn dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|input| {
            input
                .raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        for path in dropped {
            docks::add_file_source(self, &path);
        }
    }

    /// The monitors: preview and program side by side in studio mode, else program alone.
    fn monitors(&mut self, ui: &mut egui::Ui) {
        let canvas = self.collection().canvas;
        let canvas = [canvas.width, canvas.height];
        // Handles (cheap clones), so that the monitors can be drawn while `self` is edited.
        let paint = self.window_paint.clone();
        let (program, preview) = match &self.canvases {
            Some(canvases) => (canvases.program.clone(), canvases.preview.clone()),
            None => (None, None),
        };
        let program_texture = paint.as_ref().zip(program.as_ref());
        let preview_texture = paint.as_ref().zip(preview.as_ref());
        // The engine does not draw a preview that shows the program scene; show program's.
        let preview_texture = if self.edited_scene_name() == self.program_scene()
            && self.stats.switcher.transition_progress.is_none()
        {
            program_texture
        } else {
            preview_texture
        };
        if self.studio_mode {
            ui.columns(2, |columns| {
                let preview_title = format!("Preview: {}", self.edited_scene_name());
                let shown = monitor::show(
                    &mut columns[0],
                    preview_texture,
                    canvas,
                    &preview_title,
                    PREVIEW_GREEN,
                );
                self.interact_with_items(&columns[0], &shown);
                let program_title = format!("Program: {}", self.program_scene());
                monitor::show(
                    &mut columns[1],
                    program_texture,
                    canvas,
                    &program_title,
                    PROGRAM_RED,
                );
            });
        } else {
            let title = format!("Program: {}", self.program_scene());
            let shown = monitor::show(ui, program_texture, canvas, &title, PROGRAM_RED);
            self.interact_with_items(ui, &shown);
        }
    }

    /// The canvas point of the selected item's rotate handle in the editable monitor, as last
    /// drawn.
    pub fn rotate_handle_point(&self) -> Option<[f32; 2]> {
        let (_, scale) = self.edit_monitor?;
        let (_, _, item) = self.selected_item()?;
        let size = self.stats.source_sizes.get(&item.source).copied()?;
        Some(ItemFrame::of(item, size)?.rotate_handle(scale))
    }

    /// Sets the collection's canvas (an undoable edit); the controller restarts the engine on
    /// it, carrying over program and preview. The caller makes sure nothing is recording or
    /// streaming.
    pub(super) fn apply_canvas(&mut self, canvas: scene::Canvas) {
        self.edit(|collection| collection.canvas = canvas);
    }

    /// Whether NVIDIA's encoder for `codec` opens on this machine.
    pub(super) fn nvenc_usable(
        &mut self,
        codec: crate::encode::VideoCodec,
    ) -> Result<(), &crate::encode::Unusable> {
        const NOT_IN_FFMPEG: crate::encode::Unusable = crate::encode::Unusable::NotInFfmpeg;
        let name = crate::encode::VideoEncoderKind::Nvenc.encoder_name(codec);
        self.encoder_probes
            .get_or_insert_with(crate::encode::probe_encoders)
            .iter()
            .find(|probe| Some(probe.name) == name)
            .map_or(Err(&NOT_IN_FFMPEG), |probe| {
                probe.usable.as_ref().map(|_| ())
            })
    }

    /// How often the window redraws (before halving after a lag): the canvas rate, or less as
    /// Settings ask (Monitors), or `TALLY_UI_FPS` for a run (it wins over the setting).
    pub fn window_fps(&self) -> f64 {
        let canvas = self.collection().canvas.fps.as_f64().max(1.0);
        let asked = std::env::var("TALLY_UI_FPS")
            .ok()
            .and_then(|value| value.parse::<f64>().ok())
            .filter(|value| *value > 0.0)
            .or((self.settings.monitor_fps > 0).then_some(f64::from(self.settings.monitor_fps)));
        asked.map_or(canvas, |asked| asked.min(canvas))
    }

    /// By how much the window's rate is divided because the engine lagged recently (1 when it
    /// is not).
    pub(super) fn window_slowed_by(&self) -> u32 {
        self.redraw_pacing.slowed_by()
    }

    /// Where an item's canvas point is on screen in the editable monitor (preview in studio
    /// mode), as last drawn.
    pub fn edit_monitor_point(&self, canvas: [f32; 2]) -> Option<egui::Pos2> {
        let (rect, scale) = self.edit_monitor?;
        Some(rect.min + egui::vec2(canvas[0] * scale, canvas[1] * scale))
    }

    /// Selecting and dragging items in the editable monitor.
    fn interact_with_items(&mut self, ui: &egui::Ui, shown: &monitor::Shown) {
        self.edit_monitor = Some((shown.image, shown.scale));
        let sizes = self.stats.source_sizes.clone();
        let size_of = |id: &str| sizes.get(id).copied();
        let Some(scene_index) = self.edited_scene_index() else {
            return;
        };
        let response = &shown.response;
        if response.drag_started() || response.clicked() {
            // Where the button went down: a drag is only recognised after the pointer has
            // moved a little, and that first stretch belongs to the move too.
            let pressed_at = ui.input(|input| input.pointer.press_origin());
            if let Some(pointer) = pressed_at.or_else(|| response.interact_pointer_pos()) {
                let at = shown.to_canvas(pointer);
                let items = &self.controller.collection().scenes[scene_index].items;
                // A handle of the selected item first (the rotate handle, an edge with Alt held
                // to crop, a corner to resize), then whatever is under the pointer.
                let reach = 8.0 / shown.scale;
                let alt = ui.input(|input| input.modifiers.alt);
                let handle = self.selected.and_then(|index| {
                    let item = items.get(index).filter(|item| !item.locked)?;
                    let frame = ItemFrame::of(item, size_of(&item.source)?)?;
                    let [x, y] = frame.rotate_handle(shown.scale);
                    let action = if (x - at[0]).hypot(y - at[1]) <= reach {
                        DragAction::Rotate
                    } else if alt {
                        DragAction::Crop(frame.edge_at(at, reach)?)
                    } else {
                        DragAction::Resize(frame.corner_at(at, reach)?)
                    };
                    Some((index, action))
                });
                self.selected = match handle {
                    Some((index, _)) => Some(index),
                    None => handles::item_at(items, &size_of, at),
                };
                if response.drag_started() {
                    self.dragging = self.selected.and_then(|index| {
                        let item = &items[index];
                        Some(DragState {
                            index,
                            action: handle.map_or(DragAction::Move, |(_, action)| action),
                            start: item.clone(),
                            start_frame: ItemFrame::of(item, size_of(&item.source)?)?,
                            start_pointer: at,
                        })
                    });
                    if self.dragging.is_some() {
                        self.controller.checkpoint();
                    }
                }
            }
        }
        if let (Some(drag), Some(pointer)) = (&self.dragging, response.interact_pointer_pos()) {
            if response.dragged() {
                let at = shown.to_canvas(pointer);
                let delta = [at[0] - drag.start_pointer[0], at[1] - drag.start_pointer[1]];
                let canvas = [
                    self.collection().canvas.width,
                    self.collection().canvas.height,
                ];
                let start = &drag.start;
                let mut moved = start.clone();
                match drag.action {
                    DragAction::Resize(corner) => {
                        let (factor, position) =
                            handles::resized(corner, &drag.start_frame, start.position, delta);
                        moved.position = position;
                        moved.size = scaled(start.size, factor);
                    }
                    DragAction::Crop(edge) => {
                        if let Some(cropped) = size_of(&start.source)
                            .and_then(|size| handles::cropped(start, size, edge, delta))
                        {
                            moved = cropped;
                        }
                    }
                    // Turning leaves the item where it is: it rotates about its centre.
                    DragAction::Rotate => {
                        let snap = ui.input(|input| input.modifiers.shift);
                        moved.rotation = handles::rotated(
                            start.rotation,
                            drag.start_frame.centre,
                            drag.start_pointer,
                            at,
                            snap,
                        );
                    }
                    DragAction::Move => {
                        moved.position = handles::snapped_position(
                            start.position,
                            delta,
                            drag.start_frame.bounds(),
                            canvas,
                        );
                    }
                }
                let index = drag.index;
                if self.collection().scenes[scene_index].items[index] != moved {
                    self.edit_without_history(|collection| {
                        collection.scenes[scene_index].items[index] = moved;
                    });
                }
            }
        }
        if response.drag_stopped() {
            self.dragging = None;
        }
        if let Some(item) = self
            .selected
            .and_then(|index| self.collection().scenes[scene_index].items.get(index))
        {
            if let Some(frame) = size_of(&item.source).and_then(|size| ItemFrame::of(item, size)) {
                monitor::draw_selection(ui, shown, &frame);
            }
        }
    }

    /// The selected item of the edited scene, with its scene's index.
    pub(super) fn selected_item(&self) -> Option<(usize, usize, &Item)> {
        let scene_index = self.edited_scene_index()?;
        let index = self.selected?;
        let item = self.collection().scenes[scene_index].items.get(index)?;
        Some((scene_index, index, item))
    }
}

impl eframe::App for TallyApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.logic_pass(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.ui_pass(ui);
    }

    fn clear_color(&self, _visuals: &egui::Visuals) -> [f32; 4] {
        self.background().to_normalized_gamma_f32()
    }

    fn on_exit(&mut self) {
        self.finish();
    }
}

impl TallyApp {
    /// Each pass, before the window's widgets: the engine's news, keys, dropped files, picked
    /// files, and when to redraw next.
    pub fn logic_pass(&mut self, ctx: &egui::Context) {
        let close_requested = ctx.input(|input| input.viewport().close_requested());
        if close_requested && self.has_unsaved() && !self.closing {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.pending = Some(Pending::Quit);
        }
        self.poll_engine();
        self.answer_remote_requests();
        self.keyboard(ctx);
        self.dropped_files(ctx);
        if let Some((purpose, path)) = self.pickers.take_picked() {
            self.apply_picked(purpose, path);
        }
        let now = Instant::now();
        let wanted = Duration::from_secs_f64(1.0 / self.window_fps());
        let period = self
            .redraw_pacing
            .period(wanted, self.stats.frames_lagged, now);
        if self.controller.engine().is_some() {
            let canvas_fps = self.collection().canvas.fps.as_f64();
            self.redraw_pacing.follow_engine(period, canvas_fps);
            ctx.request_repaint_after(ENGINE_SILENCE.max(period * 2));
        } else {
            ctx.request_repaint_after(self.redraw_pacing.delay(period, now));
        }
    }

    /// The window's widgets, in the viewport's root `ui`.
    pub fn ui_pass(&mut self, ui: &mut egui::Ui) {
        self.redraws += 1;
        docks::top_bar(self, ui);
        docks::bottom_docks(self, ui);
        let ctx = ui.ctx().clone();
        docks::problem_window(self, &ctx);
        docks::settings_window(self, &ctx);
        docks::unsaved_window(self, &ctx);
        super::cue_list::panel(self, ui);
        egui::CentralPanel::default().show(ui, |ui| self.monitors(ui));
    }

    /// The window's background: the renderer clears the frame to it before drawing.
    pub fn background(&self) -> egui::Color32 {
        BACKGROUND
    }

    /// When the window closes: reports its redraw rate, stops the engine (finishing a
    /// recording) and reports its frames.
    pub fn finish(&mut self) {
        let open = self.opened.elapsed().as_secs_f64();
        eprintln!(
            "window: {} redraws in {open:.1} s ({:.1} per second)",
            self.redraws,
            self.redraws as f64 / open.max(0.001)
        );
        let recording = self.recording();
        self.canvases = None;
        match self.controller.stop() {
            Ok(None) => {}
            Ok(Some(summary)) => {
                let stats = summary.stats;
                if let Some(path) = &recording {
                    eprintln!(
                        "Recorded {} to {}",
                        humantime::format_duration(Duration::from_secs(
                            summary.wall_time.as_secs()
                        )),
                        path.display()
                    );
                }
                eprintln!(
                    "frames: {} rendered, {} lagged, {} skipped, {} encoded",
                    stats.frames_rendered,
                    stats.frames_lagged,
                    stats.frames_skipped,
                    stats.frames_encoded
                );
            }
            Err(error) => eprintln!("error: {error}"),
        }
    }
}

/// When the window redraws. While an engine runs, after every Nth frame it draws (the
/// engine tells the window, see [`FrameListener`]), so the window draws in the gap before the
/// engine's next frame; without one, once a period on a fixed grid (so the time a redraw
/// takes does not lower the rate). On a machine where the window and the engine share the
/// CPU the program output comes first: when the engine lags, the window halves its rate, and
/// halves it again each time the engine still lags a second later (down to an eighth, or four
/// redraws a second); after five seconds without a lag it doubles its rate again, one step at
/// a time.
#[derive(Debug, Default)]
struct RedrawPacing {
    next: Option<Instant>,
    lagged_seen: u64,
    /// How many times the rate is halved (0 to `MAX_SLOWDOWN`).
    slowdown: u32,
    /// When the rate last changed because of the engine (a lag or a quiet spell).
    slowdown_changed: Option<Instant>,
    /// When the engine's lagged count last grew.
    last_lag: Option<Instant>,
    /// Frames per redraw, read by the engine's frame listener on the render thread.
    frames_per_redraw: Arc<AtomicU64>,
}

/// The window's rate after the engine's last lag stays lowered this long, then doubles.
const SLOW_AFTER_LAG: Duration = Duration::from_secs(5);

/// A lag this soon after the rate was lowered is taken as part of the same spell: the lower
/// rate has not had time to help yet.
const SLOWDOWN_SETTLES: Duration = Duration::from_secs(1);

/// At most an eighth of the rate asked for,
const MAX_SLOWDOWN: u32 = 3;

/// and never below four redraws a second (slower, the window looks frozen), unless asked for.
const SLOWEST_REDRAW: Duration = Duration::from_millis(250);

/// How long the window waits for the engine's word before it redraws anyway (so that it
/// notices an engine that stopped drawing).
const ENGINE_SILENCE: Duration = Duration::from_millis(500);

impl RedrawPacing {
    /// The time between redraws: `wanted`, doubled for each step the window is slowed by,
    /// given the engine's count of lagged frames so far.
    fn period(&mut self, wanted: Duration, lagged_total: u64, now: Instant) -> Duration {
        let since = |then: Option<Instant>| {
            then.map_or(Duration::MAX, |then| now.saturating_duration_since(then))
        };
        if lagged_total > self.lagged_seen {
            if self.slowdown == 0 || since(self.slowdown_changed) >= SLOWDOWN_SETTLES {
                self.slowdown = (self.slowdown + 1).min(MAX_SLOWDOWN);
                self.slowdown_changed = Some(now);
            }
            self.last_lag = Some(now);
        } else if self.slowdown > 0
            && since(self.last_lag) >= SLOW_AFTER_LAG
            && since(self.slowdown_changed) >= SLOW_AFTER_LAG
        {
            self.slowdown -= 1;
            self.slowdown_changed = Some(now);
        }
        // A new engine counts from zero again.
        self.lagged_seen = lagged_total;
        (wanted * self.slowed_by()).min(SLOWEST_REDRAW.max(wanted))
    }

    /// How long to wait before the next redraw at one per `period`, on the grid. A redraw that
    /// is late by more than a period starts a new grid rather than being followed by a burst.
    fn delay(&mut self, period: Duration, now: Instant) -> Duration {
        let next = match self.next {
            Some(next) if next > now => return next - now,
            Some(next) if now - next < period => next + period,
            _ => now + period,
        };
        self.next = Some(next);
        next - now
    }

    /// Redraw after every engine frame whose index is a multiple of the frames (at
    /// `canvas_fps`) in `period`, at least every frame.
    fn follow_engine(&mut self, period: Duration, canvas_fps: f64) {
        let frames = (period.as_secs_f64() * canvas_fps).round().max(1.0) as u64;
        self.frames_per_redraw.store(frames, Ordering::Relaxed);
        // Back on the grid, should the engine stop, from a fresh start.
        self.next = None;
    }

    /// What the engine calls after each frame: `redraw` on the frames due.
    fn frame_listener(&self, redraw: impl Fn() + Send + Sync + 'static) -> FrameListener {
        let frames_per_redraw = self.frames_per_redraw.clone();
        FrameListener::new(move |index| {
            if index % frames_per_redraw.load(Ordering::Relaxed).max(1) == 0 {
                redraw();
            }
        })
    }

    /// By how much the window's rate is divided because the engine lagged (1 when it is not).
    fn slowed_by(&self) -> u32 {
        1 << self.slowdown
    }
}

/// An item's size multiplied by `factor`.
fn scaled(size: ItemSize, factor: f32) -> ItemSize {
    match size {
        ItemSize::Scale([x, y]) => ItemSize::Scale([x * factor, y * factor]),
        ItemSize::Bounds(mut bounds) => {
            bounds.width *= factor;
            bounds.height *= factor;
            ItemSize::Bounds(bounds)
        }
    }
}

/// The bundled demo collection, next to the executable's source tree or installed data.
pub fn demo_collection() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenes/demo.toml")
}

/// What the app shows while no collection could be loaded: one black scene.
fn empty_collection() -> Collection {
    scene::parse_str(
        "[canvas]\nwidth = 1280\nheight = 720\nfps = 30\n\n[[sources]]\nid = \"black\"\nkind = \"color\"\ncolor = \"#000000\"\n\n[[scenes]]\nname = \"Scene\"\n\n[[scenes.items]]\nsource = \"black\"\n",
        Path::new("untitled.toml"),
        Path::new("."),
    )
    .expect("the built-in empty collection is valid")
}

/// A Settings text area's lines, trimmed, without the empty ones.
fn non_empty_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redraws_keep_to_the_grid_however_long_each_takes() {
        let period = Duration::from_millis(33);
        let start = Instant::now();
        let mut pacing = RedrawPacing::default();
        assert_eq!(pacing.delay(period, start), period);
        // The redraw for `start + 33 ms` took 10 ms: the next is still due at 66 ms.
        let after_redraw = start + Duration::from_millis(43);
        assert_eq!(
            pacing.delay(period, after_redraw),
            Duration::from_millis(23)
        );
        // Asked again (input arrived) before then: the same deadline.
        let input = start + Duration::from_millis(50);
        assert_eq!(pacing.delay(period, input), Duration::from_millis(16));
        // Two periods late: a new grid from now, not a burst of catch-up redraws.
        let late = start + Duration::from_millis(200);
        assert_eq!(pacing.delay(period, late), period);
    }

    #[test]
    fn the_window_slows_down_step_by_step_while_the_engine_lags_and_recovers_the_same_way() {
        let wanted = Duration::from_millis(33);
        let ms = Duration::from_millis;
        let start = Instant::now();
        let mut pacing = RedrawPacing::default();
        assert_eq!(pacing.period(wanted, 0, start), wanted);
        // The engine lagged twice: half the rate.
        assert_eq!(pacing.period(wanted, 2, start + ms(100)), wanted * 2);
        assert_eq!(pacing.slowed_by(), 2);
        // More lags of the same spell, before the lower rate could help: no further step.
        assert_eq!(pacing.period(wanted, 5, start + ms(600)), wanted * 2);
        // Still lagging more than a second later: a quarter, then an eighth but no slower
        // than four redraws a second, and no lower.
        assert_eq!(pacing.period(wanted, 6, start + ms(1700)), wanted * 4);
        assert_eq!(pacing.period(wanted, 7, start + ms(2800)), ms(250));
        assert_eq!(pacing.slowed_by(), 8);
        assert_eq!(pacing.period(wanted, 8, start + ms(3900)), ms(250));
        assert_eq!(pacing.slowed_by(), 8);
        // Quiet: the rate doubles five seconds after the last lag, and again five later.
        let last_lag = start + ms(3900);
        assert_eq!(pacing.period(wanted, 8, last_lag + ms(4900)), ms(250));
        assert_eq!(pacing.period(wanted, 8, last_lag + ms(5000)), wanted * 4);
        assert_eq!(pacing.period(wanted, 8, last_lag + ms(9000)), wanted * 4);
        assert_eq!(pacing.period(wanted, 8, last_lag + ms(10_000)), wanted * 2);
        assert_eq!(pacing.period(wanted, 8, last_lag + ms(15_000)), wanted);
        assert_eq!(pacing.slowed_by(), 1);
        // A restarted engine counts from zero; that is not a new lag.
        assert_eq!(pacing.period(wanted, 0, last_lag + ms(16_000)), wanted);
        // A lag long after the last change starts again at half the rate.
        assert_eq!(pacing.period(wanted, 1, last_lag + ms(17_000)), wanted * 2);
    }

    #[test]
    fn an_engine_lagging_at_every_redraw_slows_the_window_a_step_a_second() {
        let wanted = Duration::from_millis(33);
        let ms = Duration::from_millis;
        let start = Instant::now();
        let mut pacing = RedrawPacing::default();
        // A new lag at every redraw, ten redraws a second.
        let mut slowed = Vec::new();
        for tenth in 1..=40u64 {
            pacing.period(wanted, tenth, start + ms(100 * tenth));
            if tenth % 10 == 0 {
                slowed.push(pacing.slowed_by());
            }
        }
        assert_eq!(slowed, [2, 4, 8, 8]);
        // The engine keeps up from then on: a step back after five seconds, then another.
        let last_lag = start + ms(4000);
        assert_eq!(pacing.period(wanted, 40, last_lag + ms(4900)), ms(250));
        assert_eq!(pacing.period(wanted, 40, last_lag + ms(5000)), wanted * 4);
        assert_eq!(pacing.period(wanted, 40, last_lag + ms(9900)), wanted * 4);
        assert_eq!(pacing.period(wanted, 40, last_lag + ms(10_000)), wanted * 2);
    }

    #[test]
    fn with_an_engine_the_window_redraws_after_every_nth_frame_it_draws() {
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut pacing = RedrawPacing::default();
        let index = Arc::new(AtomicU64::new(0));
        let listener = pacing.frame_listener({
            let (asked, index) = (asked.clone(), index.clone());
            move || asked.lock().unwrap().push(index.load(Ordering::Relaxed))
        });
        let frames_asking = |listener: &FrameListener| {
            asked.lock().unwrap().clear();
            for frame in 0..12 {
                index.store(frame, Ordering::Relaxed);
                listener.frame_submitted(frame);
            }
            asked.lock().unwrap().clone()
        };
        // Window at the canvas rate (30 fps): after every frame.
        pacing.follow_engine(Duration::from_secs_f64(1.0 / 30.0), 30.0);
        assert_eq!(frames_asking(&listener), (0..12).collect::<Vec<_>>());
        // At 10 fps (or at half of 20 after a lag): every third frame.
        pacing.follow_engine(Duration::from_millis(100), 30.0);
        assert_eq!(frames_asking(&listener), [0, 3, 6, 9]);
        // At 15 fps on a 25 fps canvas: every other frame (1.67, rounded).
        pacing.follow_engine(Duration::from_secs_f64(1.0 / 15.0), 25.0);
        assert_eq!(frames_asking(&listener), [0, 2, 4, 6, 8, 10]);
        // More than the canvas rate still redraws once a frame.
        pacing.follow_engine(Duration::from_millis(5), 30.0);
        assert_eq!(frames_asking(&listener).len(), 12);
    }
}
