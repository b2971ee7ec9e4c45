//! Show scripts run by the real `tally run`: cues fire on their frames (read back from the
//! recording's pixels and sound), `--fast` gives the same frames every run, real time fires
//! each cue on its due frame, and bad show files get located errors.

mod common;

use common::{
    mono_audio, probe, raw_video, rms_db, run, square_colours, stderr, stdout, tally, write_scene,
};
use std::path::{Path, PathBuf};
use std::process::Output;

/// A 320x180 collection: scene Red (red fill), scene Blue (blue fill, a caption hidden at
/// first), and a tone-like clip with sound small in a corner of both.
fn collection(dir: &Path) -> PathBuf {
    write_scene(
        dir,
        "show-scenes.toml",
        r##"
[canvas]
width = 320
height = 180
fps = 30

[[sources]]
id = "red"
kind = "color"
color = "#ff0000"

[[sources]]
id = "blue"
kind = "color"
color = "#0000ff"

[[sources]]
id = "caption"
kind = "text"
text = "placeholder"
size = 40
color = "#ffffff"

[[sources]]
id = "clip"
kind = "media"
path = "ASSETS/clip.mp4"

[[scenes]]
name = "Red"
items = [{ source = "red" }, { source = "clip", position = [280, 150], scale = [0.05, 0.05] }]

[[scenes]]
name = "Blue"
items = [
  { source = "blue" },
  { source = "caption", position = [10, 100], visible = false },
  { source = "clip", position = [280, 150], scale = [0.05, 0.05] },
]
"##,
    )
}

fn show(dir: &Path, cues: &str) -> PathBuf {
    collection(dir);
    write_scene(
        dir,
        "show.toml",
        &format!("collection = \"show-scenes.toml\"\n{cues}"),
    )
}

const EVERY_ACTION: &str = r#"
[[cues]]
name = "Open"
actions = [{ do = "take", scene = "Red" }]

[[cues]]
name = "Blue"
at = "00:00:01"
actions = [{ do = "take", scene = "Blue" }]

[[cues]]
name = "Caption"
after = "500ms"
actions = [
  { do = "text", source = "caption", text = "HELLO" },
  { do = "show", scene = "Blue", source = "caption" },
]

[[cues]]
name = "Music down"
at = "00:00:02"
actions = [{ do = "volume", source = "clip", db = -40, fade_ms = 1000 }]

[[cues]]
name = "Mute"
at = "00:00:04"
actions = [{ do = "mute", source = "clip" }]

[[cues]]
name = "End"
after = "0.5"
actions = [{ do = "end" }]
"#;

/// Mean (r, g, b) of a `size`-pixel square at `at` in every frame of `file` (320x180).
fn run_fast(show: &Path, record: Option<&Path>) -> Output {
    let mut command = tally();
    command
        .arg("run")
        .arg(show)
        .args(["--auto", "--fast", "--quiet", "-y"]);
    if let Some(record) = record {
        command.arg("--record").arg(record);
    }
    run(&mut command)
}

#[test]
fn every_action_lands_on_its_frame_and_fast_renders_the_same_twice() {
    let dir = tempfile::tempdir().unwrap();
    let show = show(dir.path(), EVERY_ACTION);
    let check = run(tally().arg("check").arg(&show));
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(stdout(&check).contains("ok (6 cues"), "{}", stdout(&check));

    let first = dir.path().join("first.mkv");
    let output = run_fast(&show, Some(&first));
    assert!(output.status.success(), "{}", stderr(&output));
    let log = stdout(&output);
    for (cue, name, frame) in [
        (1, "Open", 0),
        (2, "Blue", 30),
        (3, "Caption", 45),
        (4, "Music down", 60),
        (5, "Mute", 120),
        (6, "End", 135),
    ] {
        let line = format!("cue {cue} `{name}` fired at frame {frame}");
        assert!(log.contains(&line), "no `{line}` in:\n{log}");
    }
    assert!(log.contains("135 rendered, 0 lagged"), "{log}");

    // Program: red up to frame 29, blue from frame 30 (a corner away from caption and clip).
    let corner = square_colours(&first, [4, 4], 8);
    assert_eq!(corner.len(), 135);
    for (frame, [r, _, b]) in corner.iter().enumerate() {
        let red = *r > 200.0 && *b < 50.0;
        assert_eq!(red, frame < 30, "frame {frame}: {:?}", corner[frame]);
    }
    // The caption ("HELLO", white) shows from frame 45.
    let caption = square_colours(&first, [12, 108], 24);
    for (frame, [r, g, _]) in caption.iter().enumerate().skip(30) {
        let lit = *r > 60.0 && *g > 60.0;
        assert_eq!(lit, frame >= 45, "frame {frame}: {:?}", caption[frame]);
    }
    // The clip's sound: faded 40 dB down between 2 s and 3 s, muted from 4 s.
    let sound = mono_audio(&first);
    let second = |from: f64, to: f64| &sound[(from * 48000.0) as usize..(to * 48000.0) as usize];
    let before = rms_db(second(1.0, 2.0));
    let after = rms_db(second(3.05, 3.95));
    let muted = rms_db(second(4.05, 4.45));
    assert!(before > -40.0, "the clip is silent: {before:.1} dB");
    assert!(
        (before - after - 40.0).abs() < 3.0,
        "fade: {before:.1} dB to {after:.1} dB"
    );
    let halfway = rms_db(second(2.45, 2.55));
    assert!(
        (before - halfway - 20.0).abs() < 4.0,
        "halfway through the fade: {halfway:.1} dB"
    );
    assert!(muted < -90.0, "muted: {muted:.1} dB");
    // The same show again: the same pictures, frame for frame.
    let again = dir.path().join("again.mkv");
    let output = run_fast(&show, Some(&again));
    assert!(output.status.success(), "{}", stderr(&output));
    let pictures = |file: &Path| raw_video(file, &[], &["-fps_mode", "passthrough"], "rgb24");
    assert!(
        pictures(&first) == pictures(&again),
        "the two renders differ"
    );
}

#[test]
fn recordings_started_and_stopped_by_cues_have_their_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let show = show(
        dir.path(),
        r#"
[[cues]]
name = "First part"
at = "00:00:01"
actions = [{ do = "record", file = "part1.mp4" }]

[[cues]]
name = "Stop it"
after = "1s"
actions = [{ do = "stop_recording" }, { do = "take", scene = "Blue" }]

[[cues]]
name = "Second part"
at = "00:00:02.5"
actions = [{ do = "record", file = "part2.mkv" }]

[[cues]]
name = "End"
at = "00:00:04"
actions = [{ do = "end" }]
"#,
    );
    let output = run_fast(&show, None);
    assert!(output.status.success(), "{}", stderr(&output));
    // 1 s to 2 s, and 2.5 s to the end at 4 s.
    for (file, frames) in [("part1.mp4", "30"), ("part2.mkv", "45")] {
        let path = dir.path().join(file);
        assert_eq!(
            probe(&path, "v:0", "stream=nb_read_frames", true),
            vec![frames]
        );
        assert_eq!(common::decode_errors(&path), "");
    }
    // Tally records one file at a time: a whole-show --record beside them is refused.
    let output = run(tally()
        .arg("run")
        .arg(&show)
        .args(["--auto", "--fast", "-y", "--record"])
        .arg(dir.path().join("whole.mkv")));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("records one file at a time"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_real_time_show_fires_each_cue_on_its_due_frame() {
    let dir = tempfile::tempdir().unwrap();
    let show = show(
        dir.path(),
        r#"
[[cues]]
name = "A"
at = "00:00:00.5"
actions = [{ do = "take", scene = "Blue" }]

[[cues]]
name = "B"
at = "00:00:01"
actions = [{ do = "take", scene = "Red", transition = "fade", duration_ms = 300 }]

[[cues]]
name = "C"
after = "500ms"
actions = [{ do = "preview", scene = "Blue" }]

[[cues]]
name = "End"
at = "00:00:02"
actions = [{ do = "end" }]
"#,
    );
    let output = run(tally().arg("run").arg(&show).arg("--quiet"));
    assert!(output.status.success(), "{}", stderr(&output));
    let log = stdout(&output);
    for line in [
        "cue 1 `A` fired at frame 15",
        "cue 2 `B` fired at frame 30",
        "cue 3 `C` fired at frame 45",
        "cue 4 `End` fired at frame 60",
    ] {
        assert!(log.contains(line), "no `{line}` in:\n{log}");
    }
}

#[test]
fn show_files_get_located_errors_and_runs_that_cannot_finish_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let show = show(
        dir.path(),
        r#"
[[cues]]
name = "Typo"
actions = [{ do = "take", scene = "Bleu", transition = "dissolve" }]

[[cues]]
name = "Wrong kind"
at = "00:00:05"
actions = [{ do = "text", source = "red", text = "x" }, { do = "fade", source = "clip" }]

[[cues]]
name = "Too early"
at = "00:00:02"
after = "1s"
actions = [{ do = "take", scene = "Red" }]

[[cues]]
name = "Out of order"
at = "00:00:01"
actions = [{ do = "volume", source = "red", db = -10 }, { do = "record", file = "x.avi" }]

[[cues]]
name = "Two at once"
actions = [{ do = "record", file = "a.mkv" }, { do = "record", file = "b.mkv" }]
"#,
    );
    let output = run(tally().arg("check").arg(&show));
    assert!(!output.status.success());
    let message = stderr(&output);
    for expected in [
        "show.toml:5:35: cues[0].actions[0].scene: no scene is named `Bleu` (did you mean `Blue`?)",
        "show.toml:10:36: cues[1].actions[0].source: source `red` is a color source; this action needs a text source",
        "show.toml:10:64: cues[1].actions[1].do: unknown value `fade`",
        "show.toml:5:56: cues[0].actions[0].transition: unknown value `dissolve`",
        "show.toml:14:6: cues[2].at: a cue has one trigger; this one has after and at",
        "show.toml:20:6: cues[3].at: cue `Out of order` is due at 00:00:01.000 on the show clock, before cue `Wrong kind` (00:00:05.000) above it",
        "show.toml:21:38: cues[3].actions[0].source: source `red` is a color source; this action needs a source with sound",
        "show.toml:21:81: cues[3].actions[1].file: `x.avi` is not a recording",
        "cue `Two at once` records to",
    ] {
        assert!(message.contains(expected), "no `{expected}` in:\n{message}");
    }

    // A collection that is not there: at the show's own line.
    let lost = write_scene(
        dir.path(),
        "lost.toml",
        "collection = \"nowhere.toml\"\n[[cues]]\nname = \"A\"\nactions = [{ do = \"end\" }]\n",
    );
    let output = run(tally().arg("check").arg(&lost));
    assert!(
        stderr(&output).contains("lost.toml:1:14: collection: no scene collection file at"),
        "{}",
        stderr(&output)
    );

    // A show waiting for GO cannot be rendered --fast without --auto, nor one with no end.
    let waits = show_with(dir.path(), "waits.toml", "actions = [{ do = \"end\" }]");
    let output = run(tally().arg("run").arg(&waits).arg("--fast"));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("add --auto"),
        "{}",
        stderr(&output)
    );
    let endless = show_with(
        dir.path(),
        "endless.toml",
        "after = \"1s\"\nactions = [{ do = \"take\", scene = \"Red\" }]",
    );
    let output = run(tally().arg("run").arg(&endless).arg("--fast"));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("give --duration"),
        "{}",
        stderr(&output)
    );
}

fn show_with(dir: &Path, name: &str, cue: &str) -> PathBuf {
    write_scene(
        dir,
        name,
        &format!("collection = \"show-scenes.toml\"\n[[cues]]\nname = \"Only\"\n{cue}\n"),
    )
}

#[test]
fn a_cue_waiting_for_go_fires_on_enter() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let show = show(
        dir.path(),
        r#"
[[cues]]
name = "Go"
actions = [{ do = "take", scene = "Blue" }]

[[cues]]
name = "End"
after = "500ms"
actions = [{ do = "end" }]
"#,
    );
    let mut child = tally()
        .arg("run")
        .arg(&show)
        .arg("--quiet")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Enter, as an operator would press it.
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let log = stdout(&output);
    assert!(log.contains("cues that wait for GO fire on Enter"), "{log}");
    let go_frame: u64 = log
        .lines()
        .find_map(|line| line.strip_prefix("cue 1 `Go` fired at frame "))
        .expect("the GO cue fired")
        .parse()
        .unwrap();
    let line = format!("cue 2 `End` fired at frame {}", go_frame + 15);
    assert!(log.contains(&line), "no `{line}` in:\n{log}");
}

#[test]
fn starting_at_a_time_or_a_cue_shows_what_the_whole_run_showed_there() {
    let dir = tempfile::tempdir().unwrap();
    let show = show(dir.path(), EVERY_ACTION);
    let whole = dir.path().join("whole.mkv");
    let output = run_fast(&show, Some(&whole));
    assert!(output.status.success(), "{}", stderr(&output));
    // Everything but the clip's corner (a resumed clip starts from its beginning).
    let picture = |file: &Path, frame: usize| {
        let frames = raw_video(
            file,
            &[],
            &["-fps_mode", "passthrough", "-vf", "crop=260:140:0:0"],
            "rgb24",
        );
        frames
            .chunks_exact(260 * 140 * 3)
            .nth(frame)
            .expect("the frame")
            .to_vec()
    };
    for (start, args, whole_frame) in [
        ("from 2.5 s", ["--from", "00:00:02.5"], 75),
        ("at the caption", ["--start-at", "Caption"], 30),
        ("at cue 2", ["--start-at", "2"], 0),
    ] {
        let resumed = dir.path().join("resumed.mkv");
        let output = run(tally()
            .arg("run")
            .arg(&show)
            .args(["--auto", "--fast", "--quiet", "-y", "--duration", "1s"])
            .args(args)
            .arg("--record")
            .arg(&resumed));
        assert!(output.status.success(), "{start}: {}", stderr(&output));
        // The same picture, as far as two encodes of it can be: the whole run's frame was
        // coded against its neighbours, the resumed one is a keyframe.
        let difference = mean_difference(&picture(&resumed, 0), &picture(&whole, whole_frame));
        assert!(
            difference < 2.0,
            "{start}: the first frame differs from frame {whole_frame} of the whole run by {difference:.2}"
        );
    }
    // A frame with another scene on air is far from it: the comparison tells them apart.
    assert!(mean_difference(&picture(&whole, 0), &picture(&whole, 75)) > 50.0);
    // The caption cue fires half a second after the resumed start, as in the whole run.
    let output = run(tally()
        .arg("run")
        .arg(&show)
        .args(["--auto", "--fast", "--quiet", "-y", "--duration", "1s"])
        .args(["--start-at", "Caption"]));
    assert!(
        stdout(&output).contains("cue 3 `Caption` fired at frame 15"),
        "{}",
        stdout(&output)
    );
}

/// The mean absolute difference of two pictures' bytes.
fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let total: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.len() as f64
}

/// The frame a cue fired on, from `tally run`'s log.
fn fired_at(log: &str, cue: usize, name: &str) -> u64 {
    let prefix = format!("cue {cue} `{name}` fired at frame ");
    log.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("cue {cue} `{name}` did not fire:\n{log}"))
        .parse()
        .unwrap()
}

#[test]
fn media_pause_play_restart_and_the_end_of_a_clip_drive_cues() {
    let dir = tempfile::tempdir().unwrap();
    // The bundled clip lasts 4 s (120 frames), played once.
    write_scene(
        dir.path(),
        "clip-scenes.toml",
        r##"
[canvas]
width = 320
height = 180
fps = 30

[[sources]]
id = "clip"
kind = "media"
path = "ASSETS/clip.mp4"
loop = false

[[sources]]
id = "blue"
kind = "color"
color = "#0000ff"

[[scenes]]
name = "Clip"
items = [{ source = "clip", bounds = { width = 320, height = 180 } }]

[[scenes]]
name = "Blue"
items = [{ source = "blue" }]
"##,
    );
    let show = write_scene(
        dir.path(),
        "clip-show.toml",
        r#"collection = "clip-scenes.toml"

[[cues]]
name = "Pause"
at = "00:00:01"
actions = [{ do = "pause", source = "clip" }]

[[cues]]
name = "Play"
at = "00:00:02"
actions = [{ do = "play", source = "clip" }]

[[cues]]
name = "Ended"
when_ends = "clip"
actions = [{ do = "take", scene = "Blue" }]

[[cues]]
name = "Again"
after = "500ms"
actions = [{ do = "restart", source = "clip" }, { do = "take", scene = "Clip" }]

[[cues]]
name = "Ended again"
when_ends = "clip"
actions = [{ do = "end" }]
"#,
    );
    let output = run_fast(&show, None);
    assert!(output.status.success(), "{}", stderr(&output));
    let log = stdout(&output);
    // Paused for a second, the clip ends at 5 s instead of 4 s.
    let ended = fired_at(&log, 3, "Ended");
    assert!(
        (150..=152).contains(&ended),
        "ended at frame {ended}:\n{log}"
    );
    let again = fired_at(&log, 4, "Again");
    assert_eq!(again, ended + 15);
    // Restarted, it plays its 4 s again.
    let ended_again = fired_at(&log, 5, "Ended again");
    assert!(
        (again + 120..=again + 122).contains(&ended_again),
        "restarted at {again}, ended again at {ended_again}"
    );

    // A looping clip never ends: check says so.
    let looping = write_scene(
        dir.path(),
        "looping.toml",
        &std::fs::read_to_string(dir.path().join("clip-scenes.toml"))
            .unwrap()
            .replace("loop = false", "loop = true"),
    );
    let bad = write_scene(
        dir.path(),
        "bad-show.toml",
        &format!(
            "collection = \"{}\"\n[[cues]]\nname = \"Never\"\nwhen_ends = \"clip\"\nactions = [{{ do = \"pause\", source = \"clip\" }}]\n",
            looping.display()
        ),
    );
    let output = run(tally().arg("check").arg(&bad));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("media source `clip` loops, so it never ends"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn stop_streaming_with_destinations_stops_only_those() {
    let server = common::RtmpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (server.url("a"), server.url("b"));
    let show = show(
        dir.path(),
        &format!(
            r#"
[[cues]]
name = "On air"
at = "00:00:00"
actions = [{{ do = "stream", to = ["{a}", "{b}"] }}]

[[cues]]
name = "Drop A"
at = "00:00:01.5"
actions = [{{ do = "stop_streaming", to = ["{a}"] }}]

[[cues]]
name = "End"
at = "00:00:03"
actions = [{{ do = "end" }}]
"#
        ),
    );
    let output = run(tally().arg("run").arg(&show));
    assert!(output.status.success(), "{}", stderr(&output));
    // FLV says no duration: count the pictures (30 a second).
    let frames = |stream: &str| -> u64 {
        probe(
            &server.recording(stream),
            "v:0",
            "stream=nb_read_frames",
            true,
        )[0]
        .parse()
        .unwrap()
    };
    let (a_frames, b_frames) = (frames("a"), frames("b"));
    assert!(
        (30..66).contains(&a_frames),
        "stream a had {a_frames} frames"
    );
    assert!(
        b_frames >= 80,
        "stream b had {b_frames} frames (a {a_frames})"
    );
}
