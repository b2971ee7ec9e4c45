//! Show scripts: a file that names a scene collection and holds an ordered list of cues, each
//! with a trigger (the operator's GO, a delay after the cue before it, a time on the show clock
//! or on the wall clock) and actions (take a scene, show an item, change a text, fade a volume,
//! start a recording...). `load` reads and checks a show against its collection; `runner`
//! fires the cues from inside the engine's render loop (as its [`crate::engine::FrameDriver`]),
//! so a cue due at show time t acts on the first frame at or after t.
//!
//! The show layer sits above the engine: it turns cues into the engine's commands, and the
//! engine knows nothing of shows.

mod load;
mod runner;
mod save;

pub use load::{load_file, load_file_checked, looks_like_show, parse_clock, parse_str};
pub use runner::{resumed_path, CueRunner, CueStatus, ShowState, StartPoint};
pub use save::{save_file, to_toml_string};

use crate::engine::Transition;
use crate::output::Destination;
use crate::scene::Collection;
use std::path::PathBuf;
use std::time::Duration;

/// The local time since midnight, for cues due at a time of day (the runner takes it as a
/// function, so tests give their own).
pub fn local_time_of_day() -> Duration {
    use chrono::Timelike;
    let now = chrono::Local::now();
    Duration::from_secs(u64::from(now.num_seconds_from_midnight()))
        + Duration::from_nanos(u64::from(now.nanosecond() % 1_000_000_000))
}

/// A loaded, checked show.
#[derive(Debug, Clone)]
pub struct Show {
    /// The show file, for messages.
    pub file: PathBuf,
    /// The collection file, resolved against the show file's folder.
    pub collection_file: PathBuf,
    pub collection: Collection,
    pub cues: Vec<Cue>,
}

impl Show {
    /// Whether a cue ends the show (`{ do = "end" }`).
    pub fn ends_by_itself(&self) -> bool {
        self.cues
            .iter()
            .any(|cue| cue.actions.contains(&Action::End))
    }

    /// Whether a cue waits for a person or the wall clock, which a `--fast` render cannot.
    pub fn waits_for_the_world(&self) -> bool {
        self.cues
            .iter()
            .any(|cue| matches!(cue.trigger, Trigger::Go | Trigger::AtClock(_)))
    }

    /// The files the show's own recording actions write.
    pub fn recording_files(&self) -> Vec<PathBuf> {
        self.cues
            .iter()
            .flat_map(|cue| &cue.actions)
            .filter_map(|action| match action {
                Action::Record(path) => Some(path.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Why a show cannot start where it was asked to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("the show has no cue {0}")]
    NoSuchCue(usize),
    #[error("the show has ended by then (cue `{cue}` ends it)")]
    AfterTheEnd { cue: String },
    #[error("the show has no cue named `{0}`")]
    NoCueNamed(String),
}

impl Show {
    /// The cue `reference` names: its name, or its number from 1.
    pub fn find_cue(&self, reference: &str) -> Result<usize, StartError> {
        if let Some(index) = self.cues.iter().position(|cue| cue.name == reference) {
            return Ok(index);
        }
        match reference.parse::<usize>() {
            Ok(number) if (1..=self.cues.len()).contains(&number) => Ok(number - 1),
            Ok(number) => Err(StartError::NoSuchCue(number)),
            Err(_) => Err(StartError::NoCueNamed(reference.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub name: String,
    pub trigger: Trigger,
    pub actions: Vec<Action>,
}

/// When a cue fires. Cues fire in order: a cue is considered only once the one before it has
/// fired, so a cue whose time passed while an earlier one waited for GO fires right after it.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// When this media source (one that does not loop) has played to its end.
    MediaEnd(String),
    /// The operator's GO (Enter in the terminal, the API, the app's GO button).
    Go,
    /// This long after the cue before it fired (after the show's start for the first cue).
    After(Duration),
    /// At this time on the show clock (from the show's first frame).
    At(Duration),
    /// At this local time of day (time since midnight).
    AtClock(Duration),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Put a scene on program with a transition.
    Take {
        scene: String,
        transition: Transition,
    },
    /// Put a scene in studio mode's preview.
    Preview(String),
    /// Show or hide every item of `source` in `scene`.
    Visible {
        scene: String,
        source: String,
        visible: bool,
    },
    /// Change a text source's text.
    Text {
        source: String,
        text: String,
    },
    /// Move a source's fader to `db`, over `fade` (at once when zero).
    Volume {
        source: String,
        db: f32,
        fade: Duration,
    },
    Mute {
        source: String,
        muted: bool,
    },
    /// Start recording to this file (resolved against the show's folder).
    Record(PathBuf),
    /// Stop the recording (Tally records one file at a time).
    StopRecording,
    /// Start streaming to these destinations.
    Stream(Vec<Destination>),
    /// Stop the streams to these destinations, or every stream (`--to` ones too) when `None`.
    StopStreaming(Option<Vec<Destination>>),
    /// Play, pause or restart a media source.
    Media {
        source: String,
        control: crate::sources::MediaControl,
    },
    /// End the show: outputs finish and the run ends.
    End,
}
