//! Fires a show's cues, frame by frame, from inside the engine's render loop: the engine calls
//! [`CueRunner::frame`] with the frame's canvas time before drawing it, and applies the
//! commands it returns to that frame. No clock of its own: the show time is the frame's, and
//! the time of day comes from a function given at the start, so tests drive it by hand.

use super::{Action, Cue, Show, Trigger};
use crate::engine::{Command, DriverOutput, Event, FrameContext, FrameDriver, RecordingConfig};
use crate::output::RecordingFormat;
use crate::scene::{apply_edit, Collection, Edit, SourceKind};
use crate::sources::MediaControl;
use std::time::Duration;

/// A volume moving from one level to another over a span of show time.
#[derive(Debug, Clone, PartialEq)]
struct Fade {
    source: String,
    from_db: f32,
    to_db: f32,
    start: Duration,
    length: Duration,
}

impl Fade {
    /// The level at `now` (linear in dB), and whether the fade is over.
    fn level(&self, now: Duration) -> (f32, bool) {
        let elapsed = now.saturating_sub(self.start);
        if elapsed >= self.length {
            return (self.to_db, true);
        }
        let progress = elapsed.as_secs_f32() / self.length.as_secs_f32();
        (self.from_db + (self.to_db - self.from_db) * progress, false)
    }
}

/// The running show: which cue is next, when the last one fired, the collection as the cues
/// have changed it, and the fades under way.
pub struct CueRunner {
    cues: Vec<Cue>,
    next: usize,
    /// Show time at which the last cue fired (zero before any).
    last_fired: Duration,
    /// Fire cues that wait for GO or the wall clock at once (a rehearsal, a `--fast` render).
    auto: bool,
    collection: Collection,
    fades: Vec<Fade>,
    /// Show time at the engine's frame 0: zero, or where a resumed show starts.
    start: Duration,
    /// What the first frame must set up again after a jump (preview, recording, streams).
    resume: Vec<Command>,
    /// The media sources that have played to their end, as of this frame.
    media_ended: Vec<String>,
    time_of_day: Box<dyn FnMut() -> Duration + Send>,
    /// Show time of the latest frame.
    now: Duration,
    /// The cue that fired last (by an operator's jump, not always the one above `next`).
    fired_last: Option<usize>,
}

/// Where a running show stands, for a cue list.
#[derive(Debug, Clone, PartialEq)]
pub struct CueStatus {
    /// The cue that fires next; `None` once every cue has.
    pub next: Option<usize>,
    /// The cue that fired last.
    pub fired_last: Option<usize>,
    /// Show time of the latest frame.
    pub show_time: Duration,
    /// How long until the next cue is due, for a cue with a time (`at`, `after`, `at_clock`);
    /// zero when it is overdue (it fires on the next frame).
    pub due_in: Option<Duration>,
}

/// Where a show starts: its first cue, a cue, or a time on the show clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPoint {
    Beginning,
    /// Just before cue `n` (from 0) fires: every cue above it has.
    Cue(usize),
    /// At this show time: every cue due by then has fired.
    Time(Duration),
}

/// The state of a show at its start point, computed without playing what came before.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowState {
    /// The collection as the cues left it, its current scene the one on program.
    pub collection: Collection,
    pub preview: Option<String>,
    /// A recording the cues had running (it restarts to a new file, see [`resumed_path`]).
    pub recording: Option<std::path::PathBuf>,
    pub streams: Vec<crate::output::Destination>,
    /// Show time at the start point.
    pub at: Duration,
}

/// The file a recording that was running at a resumed show's start point goes on in:
/// `part.mkv` becomes `part-resumed.mkv` (then `-resumed-2`...), never the file from before.
pub fn resumed_path(path: &std::path::Path) -> std::path::PathBuf {
    let stem = path
        .file_stem()
        .map_or("recording".into(), |s| s.to_string_lossy().to_string());
    let extension = path
        .extension()
        .map_or(String::new(), |e| format!(".{}", e.to_string_lossy()));
    let mut candidate = path.with_file_name(format!("{stem}-resumed{extension}"));
    let mut take = 1;
    while candidate.exists() {
        take += 1;
        candidate = path.with_file_name(format!("{stem}-resumed-{take}{extension}"));
    }
    candidate
}

impl CueRunner {
    /// Runs `show` from its first cue. `time_of_day` says the local time since midnight, for
    /// `at_clock` cues.
    pub fn new(
        show: &Show,
        auto: bool,
        time_of_day: impl FnMut() -> Duration + Send + 'static,
    ) -> Self {
        Self {
            cues: show.cues.clone(),
            next: 0,
            last_fired: Duration::ZERO,
            auto,
            collection: show.collection.clone(),
            fades: Vec::new(),
            start: Duration::ZERO,
            resume: Vec::new(),
            media_ended: Vec::new(),
            time_of_day: Box::new(time_of_day),
            now: Duration::ZERO,
            fired_last: None,
        }
    }

    pub fn cues(&self) -> &[Cue] {
        &self.cues
    }

    /// Where the show stands: the next cue, the last fired, and the countdown to a timed cue.
    pub fn status(&mut self) -> CueStatus {
        let due_in = match self.cues.get(self.next).map(|cue| &cue.trigger) {
            Some(Trigger::At(at)) => Some(at.saturating_sub(self.now)),
            Some(Trigger::After(delay)) => {
                Some((self.last_fired + *delay).saturating_sub(self.now))
            }
            Some(Trigger::AtClock(at)) => Some(at.saturating_sub((self.time_of_day)())),
            Some(Trigger::Go | Trigger::MediaEnd(_)) | None => None,
        };
        CueStatus {
            next: (self.next < self.cues.len()).then_some(self.next),
            fired_last: self.fired_last,
            show_time: self.now,
            due_in,
        }
    }

    /// The operator moves the show to cue `cue` without firing it or those between: it fires
    /// next, when its trigger says (a cue waiting `after` counts from the jump). `None` if the
    /// show has no such cue.
    pub fn jump_to(&mut self, cue: usize) -> Option<()> {
        if cue >= self.cues.len() {
            return None;
        }
        self.next = cue;
        self.last_fired = self.now;
        Some(())
    }

    /// The cues become `cues` (edited by an operator), `next` firing next.
    pub fn replace_cues(&mut self, cues: Vec<Cue>, next: usize) {
        self.next = next.min(cues.len());
        self.fired_last = self.fired_last.filter(|cue| *cue < cues.len());
        self.cues = cues;
    }

    /// The show goes on in a new engine (restarted for a new canvas): its first frame is at
    /// the show time reached so far, not at the start of the show.
    pub fn continue_in_new_engine(&mut self) {
        self.start = self.now;
    }

    /// The cue that fires next (the number of cues once every one has).
    pub fn next_cue(&self) -> usize {
        self.next
    }

    /// Moves the show to `point` as if it had run there (cues waiting for GO or a time of day
    /// counted as fired when reached), without playing anything: the state to start the engine
    /// with, and the runner to go on from there. The show clock then starts at the point.
    pub fn start_at(&mut self, point: StartPoint) -> Result<ShowState, super::StartError> {
        if let StartPoint::Cue(index) = point {
            if index >= self.cues.len() {
                return Err(super::StartError::NoSuchCue(index + 1));
            }
        }
        let mut state = ShowState {
            collection: self.collection.clone(),
            preview: None,
            recording: None,
            streams: Vec::new(),
            at: Duration::ZERO,
        };
        let mut program = self.collection.current_scene.clone();
        let mut now = Duration::ZERO;
        while let Some(cue) = self.cues.get(self.next).cloned() {
            let due = match cue.trigger {
                Trigger::Go | Trigger::AtClock(_) | Trigger::MediaEnd(_) => now,
                Trigger::After(delay) => self.last_fired + delay,
                Trigger::At(at) => at.max(now),
            };
            let reached = match point {
                StartPoint::Beginning => false,
                StartPoint::Cue(index) => self.next < index,
                StartPoint::Time(time) => due <= time,
            };
            if !reached {
                break;
            }
            now = due;
            let (mut edits, mut commands) = (Vec::new(), Vec::new());
            for action in &cue.actions {
                self.apply(action, now, &mut edits, &mut commands);
            }
            for command in commands {
                match command {
                    Command::Transition {
                        to: Some(scene), ..
                    } => program = scene,
                    Command::SetPreview(scene) => state.preview = scene,
                    Command::StartRecording(config) => state.recording = Some(config.path),
                    Command::StopRecording => state.recording = None,
                    Command::StartStreaming(destinations) => state.streams.extend(destinations),
                    Command::StopStreaming => state.streams.clear(),
                    Command::StopStreamingTo(stopped) => {
                        state.streams.retain(|stream| !stopped.contains(stream));
                    }
                    Command::Stop => {
                        return Err(super::StartError::AfterTheEnd { cue: cue.name });
                    }
                    _ => {}
                }
            }
            self.last_fired = now;
            self.fired_last = Some(self.next);
            self.next += 1;
        }
        if let StartPoint::Time(time) = point {
            now = time;
        }
        // Fades under way at the point stand where they have got to.
        self.advance_fades(now, &mut Vec::new());
        state.at = now;
        self.start = now;
        state.collection = self.collection.clone();
        state.collection.current_scene = program;
        self.collection.current_scene = state.collection.current_scene.clone();
        if let Some(preview) = &state.preview {
            self.resume.push(Command::SetPreview(Some(preview.clone())));
        }
        if let Some(recording) = &state.recording {
            self.resume.push(Command::StartRecording(RecordingConfig {
                path: resumed_path(recording),
                format: RecordingFormat::from_path(recording).unwrap_or(RecordingFormat::Mkv),
                profile: None,
            }));
        }
        if !state.streams.is_empty() {
            self.resume
                .push(Command::StartStreaming(state.streams.clone()));
        }
        Ok(state)
    }

    /// Whether every cue has fired.
    pub fn is_done(&self) -> bool {
        self.next >= self.cues.len()
    }

    fn is_due(&mut self, trigger: &Trigger, now: Duration, go: &mut u32) -> bool {
        let trigger = trigger.clone();
        match trigger {
            Trigger::Go if self.auto => true,
            Trigger::Go if *go > 0 => {
                *go -= 1;
                true
            }
            Trigger::Go => false,
            Trigger::After(delay) => now >= self.last_fired + delay,
            Trigger::At(at) => now >= at,
            Trigger::AtClock(_) if self.auto => true,
            Trigger::AtClock(at) => (self.time_of_day)() >= at,
            Trigger::MediaEnd(ref source) => self.media_ended.contains(source),
        }
    }

    /// Applies `action` at `now`: edits of the collection go to `edits` (and to the runner's
    /// own copy), everything else to `commands`.
    fn apply(
        &mut self,
        action: &Action,
        now: Duration,
        edits: &mut Vec<Edit>,
        commands: &mut Vec<Command>,
    ) {
        match action {
            Action::Take { scene, transition } => commands.push(Command::Transition {
                to: Some(scene.clone()),
                transition: *transition,
            }),
            Action::Preview(scene) => commands.push(Command::SetPreview(Some(scene.clone()))),
            Action::Visible {
                scene,
                source,
                visible,
            } => self.edit(
                Edit::SetSourceVisible {
                    scene: scene.clone(),
                    source: source.clone(),
                    visible: *visible,
                },
                edits,
            ),
            Action::Text { source, text } => self.edit(
                Edit::SetText {
                    source: source.clone(),
                    text: text.clone(),
                },
                edits,
            ),
            Action::Volume { source, db, fade } => {
                self.fades.retain(|running| running.source != *source);
                let from_db = self
                    .source_kind(source)
                    .and_then(|kind| kind.audio().map(|audio| audio.volume_db))
                    .unwrap_or(*db);
                self.fades.push(Fade {
                    source: source.clone(),
                    from_db,
                    to_db: *db,
                    start: now,
                    length: *fade,
                });
            }
            Action::Mute { source, muted } => self.edit(
                Edit::SetMute {
                    source: source.clone(),
                    muted: *muted,
                },
                edits,
            ),
            Action::Record(path) => commands.push(Command::StartRecording(RecordingConfig {
                path: path.clone(),
                format: RecordingFormat::from_path(path).unwrap_or(RecordingFormat::Mkv),
                profile: None,
            })),
            Action::StopRecording => commands.push(Command::StopRecording),
            Action::Stream(destinations) => {
                commands.push(Command::StartStreaming(destinations.clone()));
            }
            Action::StopStreaming(None) => commands.push(Command::StopStreaming),
            Action::StopStreaming(Some(destinations)) => {
                commands.push(Command::StopStreamingTo(destinations.clone()));
            }
            Action::End => commands.push(Command::Stop),
            Action::Media { source, control } => {
                // Restarted or played again: it has not ended any more.
                if *control != MediaControl::Pause {
                    self.media_ended.retain(|ended| ended != source);
                }
                commands.push(Command::Media {
                    source: source.clone(),
                    control: *control,
                });
            }
        }
    }

    /// Applies `edit` to the runner's copy of the collection and queues it for the engine.
    /// The show was checked against its collection, so an edit that does not fit here is one
    /// whose source an operator removed since: the engine reports it when it gets it.
    fn edit(&mut self, edit: Edit, edits: &mut Vec<Edit>) {
        if let Err(error) = apply_edit(&mut self.collection, &edit) {
            tracing::debug!("the show's copy of the collection did not take an edit: {error}");
        }
        edits.push(edit);
    }

    fn source_kind(&mut self, id: &str) -> Option<&mut SourceKind> {
        self.collection
            .sources
            .iter_mut()
            .find(|source| source.id == id)
            .map(|source| &mut source.kind)
    }

    /// Moves every fade under way to its level at `now`, queueing the new levels in `edits`.
    fn advance_fades(&mut self, now: Duration, edits: &mut Vec<Edit>) {
        for fade in std::mem::take(&mut self.fades) {
            let (level, over) = fade.level(now);
            self.edit(
                Edit::SetVolume {
                    source: fade.source.clone(),
                    db: level,
                },
                edits,
            );
            if !over {
                self.fades.push(fade);
            }
        }
    }
}

impl FrameDriver for CueRunner {
    fn frame(&mut self, frame: &FrameContext) -> DriverOutput {
        let index = frame.index;
        let mut go = frame.go;
        // The show clock: the engine's canvas time from where the show started.
        let now = self.start + frame.now;
        self.now = now;
        self.media_ended.clone_from(&frame.media_ended);
        let mut output = DriverOutput {
            commands: std::mem::take(&mut self.resume),
            events: Vec::new(),
        };
        let mut edits = Vec::new();
        while let Some(cue) = self.cues.get(self.next).cloned() {
            if !self.is_due(&cue.trigger, now, &mut go) {
                break;
            }
            for action in &cue.actions {
                self.apply(action, now, &mut edits, &mut output.commands);
            }
            output.events.push(Event::CueFired {
                cue: self.next,
                name: cue.name.clone(),
                frame: index,
            });
            tracing::info!(
                "cue {} `{}` fired at frame {index}",
                self.next + 1,
                cue.name
            );
            self.last_fired = now;
            self.fired_last = Some(self.next);
            self.next += 1;
        }
        self.advance_fades(now, &mut edits);
        // Edits go first, so a take in the same cue shows the edited scene.
        output
            .commands
            .splice(0..0, edits.into_iter().map(Command::Edit));
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Transition;
    use crate::scene::{AudioSettings, Collection};
    use std::path::PathBuf;

    fn show(cues: Vec<(Trigger, Vec<Action>)>) -> Show {
        Show {
            file: PathBuf::from("test.show.toml"),
            collection_file: PathBuf::from("test.toml"),
            collection: Collection::with_one_media_source(
                "clip",
                "clip.mp4",
                AudioSettings::default(),
            ),
            cues: cues
                .into_iter()
                .enumerate()
                .map(|(index, (trigger, actions))| Cue {
                    name: format!("cue{index}"),
                    trigger,
                    actions,
                })
                .collect(),
        }
    }

    fn frame_at(fps: u64, index: u64) -> Duration {
        Duration::from_nanos(index * 1_000_000_000 / fps)
    }

    /// Frame `index` at 30 fps with `go` GOs.
    fn context(index: u64, go: u32) -> FrameContext {
        FrameContext {
            index,
            now: frame_at(30, index),
            go,
            media_ended: Vec::new(),
        }
    }

    /// Runs frames 0..frames at 30 fps with GOs at the given frames; the frames each cue
    /// fired on.
    fn fired(runner: &mut CueRunner, frames: u64, gos: &[u64]) -> Vec<(usize, u64)> {
        let mut fired = Vec::new();
        for index in 0..frames {
            let go = gos.iter().filter(|&&at| at == index).count() as u32;
            for event in runner.frame(&context(index, go)).events {
                if let Event::CueFired { cue, frame, .. } = event {
                    fired.push((cue, frame));
                }
            }
        }
        fired
    }

    #[test]
    fn cues_fire_on_the_first_frame_at_or_after_their_time_in_order() {
        let show = show(vec![
            (Trigger::At(Duration::from_millis(500)), vec![]),
            // 1.01 s is not a frame start at 30 fps: the next frame (31, at 1.0333 s).
            (Trigger::At(Duration::from_millis(1010)), vec![]),
            (Trigger::After(Duration::from_millis(100)), vec![]),
            (Trigger::After(Duration::ZERO), vec![]),
        ]);
        let mut runner = CueRunner::new(&show, false, || Duration::ZERO);
        assert_eq!(
            fired(&mut runner, 60, &[]),
            vec![(0, 15), (1, 31), (2, 34), (3, 34)]
        );
        assert!(runner.is_done());
    }

    #[test]
    fn a_go_fires_one_waiting_cue_and_timed_cues_behind_it_wait() {
        let show = show(vec![
            (Trigger::Go, vec![]),
            (Trigger::At(Duration::from_millis(100)), vec![]),
            (Trigger::Go, vec![]),
            (Trigger::After(Duration::from_millis(200)), vec![]),
        ]);
        let mut runner = CueRunner::new(&show, false, || Duration::ZERO);
        // The first GO at frame 10; the `at` cue is overdue then and follows at once; the
        // second GO at frame 20, the last cue 6 frames later.
        assert_eq!(
            fired(&mut runner, 40, &[10, 20]),
            vec![(0, 10), (1, 10), (2, 20), (3, 26)]
        );
        // With auto, GO cues do not wait.
        let mut rehearsal = CueRunner::new(&show, true, || Duration::ZERO);
        assert_eq!(
            fired(&mut rehearsal, 40, &[]),
            vec![(0, 0), (1, 3), (2, 3), (3, 9)]
        );
    }

    #[test]
    fn a_media_end_cue_waits_for_its_clip_and_a_restart_makes_it_wait_again() {
        let show = show(vec![
            (Trigger::MediaEnd("clip".into()), vec![]),
            (
                Trigger::Go,
                vec![Action::Media {
                    source: "clip".into(),
                    control: MediaControl::Restart,
                }],
            ),
            (Trigger::MediaEnd("clip".into()), vec![]),
        ]);
        let mut runner = CueRunner::new(&show, false, || Duration::ZERO);
        let ended = |index: u64, go: u32| FrameContext {
            media_ended: vec!["clip".into()],
            ..context(index, go)
        };
        assert!(runner.frame(&context(0, 0)).events.is_empty());
        // The clip ended: cue 0 fires; GO restarts it, so cue 2 waits although the engine
        // still says "ended" in this frame (it restarts the clip after the driver ran).
        assert_eq!(runner.frame(&ended(1, 0)).events.len(), 1);
        let output = runner.frame(&ended(2, 1));
        assert_eq!(output.events.len(), 1);
        assert!(output.commands.contains(&Command::Media {
            source: "clip".into(),
            control: MediaControl::Restart
        }));
        assert!(runner.frame(&context(3, 0)).events.is_empty());
        assert_eq!(runner.frame(&ended(4, 0)).events.len(), 1);
        assert!(runner.is_done());
    }

    #[test]
    fn a_wall_clock_cue_waits_for_its_time_of_day() {
        let show = show(vec![(
            Trigger::AtClock(Duration::from_secs(19 * 3600)),
            vec![],
        )]);
        let clock = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(18 * 3600));
        let read = clock.clone();
        let mut runner = CueRunner::new(&show, false, move || {
            Duration::from_secs(read.load(std::sync::atomic::Ordering::Relaxed))
        });
        assert!(fired(&mut runner, 10, &[]).is_empty());
        clock.store(19 * 3600, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(fired(&mut runner, 1, &[]), vec![(0, 0)]);
    }

    #[test]
    fn a_volume_fade_moves_the_fader_frame_by_frame_then_stops() {
        let show = show(vec![(
            Trigger::At(Duration::from_secs(1)),
            vec![Action::Volume {
                source: "clip".into(),
                db: -30.0,
                fade: Duration::from_secs(1),
            }],
        )]);
        let mut runner = CueRunner::new(&show, false, || Duration::ZERO);
        let mut levels = Vec::new();
        for index in 0..90 {
            let output = runner.frame(&context(index, 0));
            for command in output.commands {
                if let Command::Edit(Edit::SetVolume { db, .. }) = command {
                    levels.push((index, db));
                }
            }
        }
        // Frames 30 to 60: from 0 dB down to -30 dB, then no more updates.
        assert_eq!(levels.first(), Some(&(30, 0.0)));
        assert_eq!(levels.last(), Some(&(60, -30.0)));
        assert_eq!(levels.len(), 31);
        let (_, halfway) = levels[15];
        assert!((halfway + 15.0).abs() < 0.01, "{halfway}");
    }

    /// A show of takes, texts and a fade, at 30 fps.
    fn rundown() -> Show {
        let mut show = show(vec![
            (
                Trigger::Go,
                vec![Action::Take {
                    scene: "S".into(),
                    transition: Transition::CUT,
                }],
            ),
            (
                Trigger::At(Duration::from_secs(1)),
                vec![Action::Volume {
                    source: "clip".into(),
                    db: -20.0,
                    fade: Duration::from_secs(2),
                }],
            ),
            (
                Trigger::After(Duration::from_millis(500)),
                vec![
                    Action::Preview("S".into()),
                    Action::Record("part.mkv".into()),
                    Action::Mute {
                        source: "clip".into(),
                        muted: true,
                    },
                ],
            ),
            (Trigger::At(Duration::from_secs(4)), vec![Action::End]),
        ]);
        show.collection.current_scene = "S".into();
        show
    }

    /// The collection as the engine has it after a run from the start up to frame `until`.
    fn played_up_to(show: &Show, until: u64) -> Collection {
        let mut runner = CueRunner::new(show, true, || Duration::ZERO);
        let mut edited = show.collection.clone();
        for index in 0..=until {
            for command in runner.frame(&context(index, 0)).commands {
                if let Command::Edit(edit) = command {
                    apply_edit(&mut edited, &edit).expect("the show's edits fit");
                }
            }
        }
        edited
    }

    #[test]
    fn starting_at_a_time_gives_the_state_a_run_had_there() {
        let show = rundown();
        // 2 s: halfway through the fade, after the mute, while recording.
        let mut runner = CueRunner::new(&show, true, || Duration::ZERO);
        let state = runner
            .start_at(StartPoint::Time(Duration::from_secs(2)))
            .unwrap();
        assert_eq!(state.collection, played_up_to(&show, 60));
        let volume = state.collection.sources[0].kind.audio().unwrap().volume_db;
        assert!((volume + 10.0).abs() < 0.01, "{volume}");
        assert_eq!(state.preview.as_deref(), Some("S"));
        assert_eq!(state.recording, Some("part.mkv".into()));
        // The first frame sets preview and the recording up again; the fade goes on from
        // there and the show ends at 4 s on the show clock, frame 60 of this run.
        let first = runner.frame(&context(0, 0)).commands;
        assert!(first.contains(&Command::SetPreview(Some("S".into()))));
        assert!(first.iter().any(|c| matches!(c,
            Command::StartRecording(config) if config.path.ends_with("part-resumed.mkv"))));
        let mut ended_at = None;
        for index in 1..90 {
            let commands = runner.frame(&context(index, 0)).commands;
            if commands.contains(&Command::Stop) {
                ended_at = Some(index);
                break;
            }
        }
        assert_eq!(ended_at, Some(60));
    }

    #[test]
    fn starting_at_a_cue_applies_every_cue_above_it() {
        let show = rundown();
        let mut runner = CueRunner::new(&show, false, || Duration::ZERO);
        let state = runner.start_at(StartPoint::Cue(2)).unwrap();
        // Cues 0 and 1 fired (at 0 s and 1 s): the fade runs, nothing is muted yet.
        assert_eq!(state.at, Duration::from_secs(1));
        assert!(!state.collection.sources[0].kind.audio().unwrap().muted);
        assert_eq!(state.recording, None);
        let mut runner = CueRunner::new(&show, false, || Duration::ZERO);
        assert_eq!(
            runner.start_at(StartPoint::Cue(9)),
            Err(crate::show::StartError::NoSuchCue(10))
        );
        let mut runner = CueRunner::new(&show, false, || Duration::ZERO);
        assert!(matches!(
            runner.start_at(StartPoint::Time(Duration::from_secs(5))),
            Err(crate::show::StartError::AfterTheEnd { .. })
        ));
    }

    #[test]
    fn edits_come_before_the_take_of_the_same_cue() {
        let show = show(vec![(
            Trigger::Go,
            vec![
                Action::Take {
                    scene: "S".into(),
                    transition: Transition::CUT,
                },
                Action::Mute {
                    source: "clip".into(),
                    muted: true,
                },
                Action::End,
            ],
        )]);
        let mut runner = CueRunner::new(&show, true, || Duration::ZERO);
        let commands = runner.frame(&context(0, 0)).commands;
        assert_eq!(
            commands[0],
            Command::Edit(Edit::SetMute {
                source: "clip".into(),
                muted: true
            })
        );
        assert!(matches!(commands[1], Command::Transition { .. }));
        assert_eq!(commands[2], Command::Stop);
    }

    #[test]
    fn the_status_counts_down_to_a_timed_cue_and_a_jump_moves_the_next_cue() {
        let show = show(vec![
            (Trigger::Go, vec![]),
            (Trigger::At(Duration::from_secs(2)), vec![]),
            (Trigger::Go, vec![]),
            (Trigger::After(Duration::from_secs(1)), vec![]),
        ]);
        let mut runner = CueRunner::new(&show, false, || Duration::ZERO);
        fired(&mut runner, 1, &[0]);
        let status = runner.status();
        assert_eq!(status.next, Some(1));
        assert_eq!(status.fired_last, Some(0));
        assert_eq!(status.due_in, Some(Duration::from_secs(2)));
        runner.frame(&context(30, 0));
        assert_eq!(runner.status().due_in, Some(Duration::from_secs(1)));
        // The operator jumps over cues 1 and 2: cue 3 fires a second after the jump.
        assert_eq!(runner.jump_to(3), Some(()));
        assert_eq!(runner.jump_to(4), None);
        assert_eq!(runner.status().due_in, Some(Duration::from_secs(1)));
        let mut fired_at = None;
        for index in 31..100 {
            for event in runner.frame(&context(index, 0)).events {
                if let Event::CueFired { cue, frame, .. } = event {
                    fired_at = Some((cue, frame));
                }
            }
        }
        assert_eq!(fired_at, Some((3, 60)));
        let status = runner.status();
        assert_eq!((status.next, status.fired_last), (None, Some(3)));
    }

    #[test]
    fn a_show_continued_in_a_new_engine_keeps_its_clock() {
        let show = show(vec![(Trigger::At(Duration::from_secs(2)), vec![])]);
        let mut runner = CueRunner::new(&show, false, || Duration::ZERO);
        assert!(fired(&mut runner, 31, &[]).is_empty());
        // A new engine counts its frames from 0 again; the show clock goes on from 1 s.
        runner.continue_in_new_engine();
        assert_eq!(fired(&mut runner, 31, &[]), vec![(0, 30)]);
    }
}
