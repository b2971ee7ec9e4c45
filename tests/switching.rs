//! Studio-mode switching through the engine's handle: preview, Transition with each
//! transition kind, the T-bar, and live edits of the collection. Recorded in deterministic
//! pacing and checked frame by frame from the recording.

mod common;

use common::raw_video;
use std::path::Path;
use std::time::Duration;
use tally::base::Pacing;
use tally::engine::{
    Command, Direction, Engine, EngineConfig, Event, RecordingConfig, Transition, TransitionKind,
};
use tally::output::RecordingFormat;
use tally::scene::{self, Collection};

const RED_BLUE: &str = r##"
current_scene = "Red"

[canvas]
width = 64
height = 32
fps = 30

[[sources]]
id = "red"
kind = "color"
color = "#ff0000"

[[sources]]
id = "blue"
kind = "color"
color = "#0000ff"

[[scenes]]
name = "Red"

[[scenes.items]]
source = "red"

[[scenes]]
name = "Blue"

[[scenes.items]]
source = "blue"
"##;

fn collection() -> Collection {
    scene::parse_str(RED_BLUE, Path::new("switching.toml"), Path::new(".")).unwrap()
}

fn config(output: &Path, frames: u64) -> EngineConfig {
    EngineConfig {
        pacing: Pacing::Deterministic,
        frame_limit: Some(frames),
        video: Default::default(),
        audio: Default::default(),
        recording: Some(RecordingConfig {
            path: output.to_path_buf(),
            format: RecordingFormat::Mkv,
            profile: None,
        }),
        streams: Vec::new(),
        stream_settings: Default::default(),
        monitor_device: None,
        gpu: None,
        on_frame: None,
        faults: Default::default(),
        driver: None,
    }
}

/// Average colours (r, g, b) of a frame's left and right halves.
type Halves = ([f32; 3], [f32; 3]);

/// Average (r, g, b) of the middle of the left and right halves of every recorded 64x32
/// frame (columns 4-27 and 36-59, clear of the chroma blur around an edge in the middle).
fn halves(file: &Path) -> Vec<Halves> {
    let raw = raw_video(file, &[], &[], "rgb24");
    raw.chunks_exact(64 * 32 * 3)
        .map(|frame| {
            let average = |columns: std::ops::Range<usize>| {
                let mut sum = [0.0f32; 3];
                let count = (columns.len() * 32) as f32;
                for row in frame.chunks_exact(64 * 3) {
                    for column in columns.clone() {
                        for (c, total) in sum.iter_mut().enumerate() {
                            *total += f32::from(row[column * 3 + c]);
                        }
                    }
                }
                sum.map(|total| total / count)
            };
            (average(4..28), average(36..60))
        })
        .collect()
}

fn is_red(rgb: [f32; 3]) -> bool {
    rgb[0] > 200.0 && rgb[2] < 40.0
}

fn is_blue(rgb: [f32; 3]) -> bool {
    rgb[2] > 200.0 && rgb[0] < 40.0
}

/// Starts an engine in studio mode with Blue in preview, takes it with `transition`, records
/// 90 frames, and returns the events seen and the frames' halves.
fn take_with(transition: Transition) -> (Vec<Event>, Vec<Halves>) {
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("take.mkv");
    let engine = Engine::start(collection(), config(&output, 90)).unwrap();
    engine
        .send(Command::SetPreview(Some("Blue".into())))
        .expect("the engine takes the command");
    engine
        .send(Command::Transition {
            to: None,
            transition,
        })
        .expect("the engine takes the command");
    let events: Vec<Event> = {
        let receiver = engine.events().clone();
        engine.wait().unwrap();
        receiver.try_iter().collect()
    };
    if let Ok(keep) = std::env::var("KEEP_SWITCHING") {
        std::fs::copy(&output, keep).unwrap();
    }
    (events, halves(&output))
}

#[test]
fn a_fade_takes_preview_to_program_over_its_duration() {
    let fade = Transition::fade(Duration::from_secs(1));
    let (events, frames) = take_with(fade);
    assert!(is_red(frames[0].0), "starts on Red: {:?}", frames[0]);
    assert!(is_blue(frames[89].0), "ends on Blue: {:?}", frames[89]);
    let mixed = frames
        .iter()
        .filter(|(left, _)| left[2] > 8.0 && left[2] < 247.0)
        .count();
    // One second at 30 fps.
    assert!((27..=30).contains(&mixed), "{mixed} frames in between");
    // The blue rises steadily.
    let blues: Vec<f32> = frames.iter().map(|(left, _)| left[2]).collect();
    assert!(blues.windows(2).all(|w| w[1] >= w[0] - 2.0), "{blues:?}");
    assert!(events.contains(&Event::SceneChanged {
        scene: "Blue".into()
    }));
    // Announced as it happens: the transition starts, the scene goes to program and, like a
    // vision mixer, what was on program to preview; then the transition is over.
    let changes: Vec<&Event> = events
        .iter()
        .filter(|event| !matches!(event, Event::AudioLevels(_)))
        .collect();
    assert_eq!(
        changes,
        [
            &Event::PreviewChanged {
                scene: Some("Blue".into())
            },
            &Event::TransitionStarted {
                to: "Blue".into(),
                transition: fade
            },
            &Event::SceneChanged {
                scene: "Blue".into()
            },
            &Event::PreviewChanged {
                scene: Some("Red".into())
            },
            &Event::TransitionEnded {
                to: "Blue".into(),
                transition: fade
            },
        ]
    );
    // Meter readings every 50 ms of sound: three seconds make sixty.
    let readings = events
        .iter()
        .filter(|event| matches!(event, Event::AudioLevels(_)))
        .count();
    assert_eq!(readings, 60);
}

#[test]
fn a_wipe_uncovers_the_new_scene_from_one_side() {
    let (_, frames) = take_with(Transition {
        kind: TransitionKind::Wipe(Direction::Right),
        duration: Duration::from_secs(1),
    });
    // Half way through, the left half is Blue and the right half still Red.
    let halfway = frames
        .iter()
        .find(|(left, right)| is_blue(*left) && is_red(*right))
        .expect("a frame with the left half wiped to Blue and the right still Red");
    assert!(is_blue(halfway.0));
    assert!(is_blue(frames[89].1));
}

#[test]
fn a_slide_pushes_the_old_scene_out() {
    let (_, frames) = take_with(Transition {
        kind: TransitionKind::Slide(Direction::Left),
        duration: Duration::from_secs(1),
    });
    // Sliding left: the old scene leaves on the left, the new one enters from the right.
    assert!(frames
        .iter()
        .any(|(left, right)| is_red(*left) && is_blue(*right)));
    assert!(!frames
        .iter()
        .any(|(left, right)| is_blue(*left) && is_red(*right)));
}

#[test]
fn fade_to_colour_passes_through_the_colour() {
    let (_, frames) = take_with(Transition {
        kind: TransitionKind::FadeToColor(scene::Color::BLACK),
        duration: Duration::from_secs(1),
    });
    assert!(
        frames
            .iter()
            .any(|(left, _)| left.iter().all(|c| *c < 16.0)),
        "a black frame half way"
    );
    assert!(is_blue(frames[89].0));
}

#[test]
fn edits_reach_the_running_engine() {
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("edit.mkv");
    let engine = Engine::start(collection(), config(&output, 60)).unwrap();
    // Recolour the red source green, and add a text source over it.
    let mut edited = collection();
    edited.sources[0].kind = scene::SourceKind::Color {
        color: scene::Color::rgba(0, 255, 0, 255),
        width: 64,
        height: 32,
    };
    engine
        .send(Command::UpdateCollection(Box::new(edited)))
        .expect("the engine takes the command");
    engine.wait().unwrap();
    let frames = halves(&output);
    let last = frames.last().unwrap().0;
    assert!(
        last[1] > 200.0 && last[0] < 40.0,
        "green after the edit: {last:?}"
    );
}

/// An edit that points a source at a file which takes long to open (here a FIFO nobody writes
/// to: FFmpeg waits on it) must not hold up program output: the source opens on a helper
/// thread while the frames go on, and its failure arrives as a warning.
#[test]
fn a_source_that_takes_long_to_open_does_not_hold_up_the_show() {
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("slow.mp4");
    assert!(common::tool("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let engine = Engine::start(
        collection(),
        EngineConfig {
            pacing: Pacing::RealTime,
            frame_limit: None,
            recording: None,
            ..config(&dir.path().join("unused.mkv"), 0)
        },
    )
    .unwrap();
    let mut edited = collection();
    // The loader would refuse a FIFO; the engine is handed the source as an edit would be.
    let clip = scene::Source {
        id: "clip".into(),
        kind: scene::SourceKind::Media(scene::MediaSource {
            path: fifo.clone(),
            looping: false,
            audio: Default::default(),
        }),
    };
    edited.sources.push(clip);
    edited.scenes[0]
        .items
        .push(scene::Item::new("clip", [0.0, 0.0]));
    let before = engine.stats().frames_rendered;
    engine
        .send(Command::UpdateCollection(Box::new(edited)))
        .expect("the engine takes the edit");
    common::wait_until(
        "30 more frames while the source opens",
        Duration::from_secs(30),
        || engine.stats().frames_rendered >= before + 30,
    );
    // Let FFmpeg's open end: a writer comes and goes, the file is empty, the open fails.
    drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
    common::wait_until("a warning about the clip", Duration::from_secs(30), || {
        engine
            .events()
            .try_iter()
            .any(|event| matches!(&event, Event::Warning(message) if message.contains("clip")))
    });
    engine.stop().unwrap();
}
