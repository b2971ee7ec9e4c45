//! Recordings made by the real `tally record`, checked with the system ffprobe and ffmpeg:
//! exact frame counts, every frame the right one, keyframe cadence, audio length and sync,
//! MKV, and a recording killed with SIGKILL that still decodes.

mod common;

use common::{
    decode_errors, first_time_above, frame_counters, pattern_scene, probe, run_ok, tally, tool,
    write_scene,
};
use std::path::Path;
use std::time::{Duration, Instant};

/// One AAC frame, the tolerance the issue sets for audio against video.
const AAC_FRAME_SECS: f64 = 1024.0 / 48000.0;

fn record(scene: &Path, output: &Path, extra: &[&str]) -> String {
    let mut command = tally();
    command
        .arg("record")
        .arg(scene)
        .arg("-o")
        .arg(output)
        .arg("--quiet")
        .args(extra);
    run_ok(&mut command)
}

fn stream_end(file: &Path, stream: &str) -> f64 {
    let (start, duration) = common::stream_times(file, stream);
    start + duration
}

#[test]
fn thirty_seconds_fast_is_900_frames_in_order_with_keyframes_every_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let output = dir.path().join("out.mp4");
    let summary = record(&scene, &output, &["--duration", "30s", "--fast"]);
    assert!(
        summary.contains("900 rendered, 0 lagged, 0 skipped, 900 encoded"),
        "{summary}"
    );

    let video = probe(
        &output,
        "v:0",
        "stream=codec_name,profile,width,height,r_frame_rate,nb_read_frames",
        true,
    );
    assert_eq!(video, vec!["h264,High,640,360,30/1,900"]);
    let audio = probe(
        &output,
        "a:0",
        "stream=codec_name,sample_rate,channels",
        false,
    );
    assert_eq!(audio, vec!["aac,48000,2"]);
    assert!(
        (stream_end(&output, "a:0") - stream_end(&output, "v:0")).abs() <= AAC_FRAME_SECS,
        "audio and video end more than one AAC frame apart"
    );

    // Keyframes exactly every 60 frames (2 s at 30 fps).
    assert_eq!(
        keyframe_positions(&output),
        (0..900).step_by(60).collect::<Vec<_>>()
    );

    // Every keyframe is an IDR (a closed GOP): count IDR slices in the bitstream.
    let annex_b = dir.path().join("out.h264");
    common::run_ok(
        tool("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&output)
            .args([
                "-c:v",
                "copy",
                "-an",
                "-bsf:v",
                "h264_mp4toannexb",
                "-f",
                "h264",
            ])
            .arg(&annex_b),
    );
    let bitstream = std::fs::read(&annex_b).unwrap();
    let idr_slices = bitstream
        .windows(4)
        .filter(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 5)
        .count();
    assert_eq!(idr_slices, 15, "one IDR frame per keyframe");

    // Every frame is the one rendered for its slot: no drop, no repeat.
    let counters = frame_counters(&output);
    assert_eq!(counters.len(), 900);
    for (index, counter) in counters.iter().enumerate() {
        assert_eq!(
            *counter,
            Some(index as u64),
            "frame {index} shows {counter:?}"
        );
    }
    assert_eq!(decode_errors(&output), "");
}

/// Which frames (in presentation order, from 0) of `file`'s video are keyframes.
fn keyframe_positions(file: &Path) -> Vec<usize> {
    let mut pts: Vec<(i64, bool)> = probe(file, "v:0", "packet=pts,flags", false)
        .iter()
        .map(|line| {
            let (pts, flags) = line.split_once(',').unwrap();
            (pts.parse().unwrap(), flags.contains('K'))
        })
        .collect();
    pts.sort();
    pts.iter()
        .enumerate()
        .filter(|(_, (_, key))| *key)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn hevc_and_av1_record_to_mp4_and_mkv_with_their_keyframes() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let encodes = [
        ("hevc", "x265", "ultrafast", "hevc,Main,640,360"),
        ("av1", "svt-av1", "12", "av1,Main,640,360"),
        ("av1", "rav1e", "10", "av1,Main,640,360"),
    ];
    for (codec, encoder, preset, expected) in encodes {
        for container in ["mp4", "mkv"] {
            let output = dir.path().join(format!("{encoder}.{container}"));
            let summary = record(
                &scene,
                &output,
                &[
                    "--duration",
                    "4s",
                    "--fast",
                    "--codec",
                    codec,
                    "--encoder",
                    encoder,
                    "--preset",
                    preset,
                    "--keyframe-interval",
                    "1",
                ],
            );
            assert!(summary.contains("120 encoded"), "{summary}");
            let what = format!("{codec} ({encoder}) in {container}");
            let video = probe(
                &output,
                "v:0",
                "stream=codec_name,profile,width,height",
                false,
            );
            assert_eq!(video, [expected], "{what}");
            if (codec, container) == ("hevc", "mp4") {
                // Apple's players take HEVC in MP4 only tagged hvc1.
                let tag = probe(&output, "v:0", "stream=codec_tag_string", false);
                assert_eq!(tag, ["hvc1"], "{what}");
            }
            assert_eq!(keyframe_positions(&output), [0, 30, 60, 90], "{what}");
            assert_eq!(decode_errors(&output), "", "{what}");
            let counters = frame_counters(&output);
            assert_eq!(counters.len(), 120, "{what}");
            assert!(
                counters
                    .iter()
                    .enumerate()
                    .all(|(i, c)| *c == Some(i as u64)),
                "{what}: {counters:?}"
            );
            // (Matroska keeps no duration per stream to compare.)
            if container == "mp4" {
                assert!(
                    (stream_end(&output, "a:0") - stream_end(&output, "v:0")).abs() <= 0.05,
                    "{what}: audio and video end apart"
                );
            }
        }
    }
}

#[test]
fn ntsc_rate_counts_whole_frames() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "\"30000/1001\"");
    let output = dir.path().join("ntsc.mp4");
    record(&scene, &output, &["--duration", "10s", "--fast"]);
    let video = probe(&output, "v:0", "stream=r_frame_rate,nb_read_frames", true);
    assert_eq!(video, vec!["30000/1001,299"]);
}

#[test]
fn real_time_recording_has_the_exact_frame_count() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let output = dir.path().join("live.mp4");
    let started = Instant::now();
    record(&scene, &output, &["--duration", "5s"]);
    // Paced, not rushed: 150 frames at 30 fps cannot finish in much less than 5 s.
    assert!(started.elapsed() >= Duration::from_millis(4800));
    let video = probe(&output, "v:0", "stream=nb_read_frames", true);
    assert_eq!(video, vec!["150"]);
    assert_eq!(decode_errors(&output), "");
}

#[test]
fn mkv_recording_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let output = dir.path().join("out.mkv");
    record(
        &scene,
        &output,
        &[
            "--duration",
            "3s",
            "--fast",
            "--rate-control",
            "crf",
            "--crf",
            "28",
        ],
    );
    let streams = probe(&output, "v:0", "stream=codec_name,width,height", false);
    assert_eq!(streams, vec!["h264,640,360"]);
    assert_eq!(
        probe(&output, "a:0", "stream=codec_name", false),
        vec!["aac"]
    );
    let counters = frame_counters(&output);
    assert_eq!(counters.len(), 90);
    assert_eq!(decode_errors(&output), "");
}

#[test]
fn unsupported_extension_is_refused_before_recording() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let output = tally()
        .arg("record")
        .arg(&scene)
        .arg("-o")
        .arg(dir.path().join("out.avi"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("must end in .mp4 or .mkv"));
}

#[test]
fn recording_killed_with_sigkill_still_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    for (attempt, kill_at_bytes) in [300_000u64, 700_000, 1_100_000].into_iter().enumerate() {
        killed_recording_keeps_what_it_wrote(
            &scene,
            &format!("killed-{attempt}"),
            kill_at_bytes,
            &[],
        );
    }
}

#[test]
fn av1_and_hevc_recordings_killed_with_sigkill_still_decode() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    killed_recording_keeps_what_it_wrote(
        &scene,
        "killed-av1",
        400_000,
        &["--codec", "av1", "--preset", "12"],
    );
    killed_recording_keeps_what_it_wrote(
        &scene,
        "killed-hevc",
        400_000,
        &["--codec", "hevc", "--preset", "ultrafast"],
    );
}

/// Records `scene` to `NAME.mp4` beside it (with `encoding` arguments), kills tally with
/// SIGKILL once the file holds `kill_at_bytes`, and checks that what was written plays: every
/// fragment before the last, in order, without a decoding error.
fn killed_recording_keeps_what_it_wrote(
    scene: &Path,
    name: &str,
    kill_at_bytes: u64,
    encoding: &[&str],
) {
    let dir = scene.parent().unwrap();
    let output = dir.join(format!("{name}.mp4"));
    let mut child = tally()
        .arg("record")
        .arg(scene)
        .arg("-o")
        .arg(&output)
        .args([
            "--duration",
            "120s",
            "--fast",
            "--quiet",
            "--keyframe-interval",
            "1",
        ])
        .args(encoding)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&output).map_or(0, |m| m.len()) < kill_at_bytes {
        assert!(
            Instant::now() < deadline,
            "{name}: the recording did not grow"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "{name}: tally ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to finish the file
    child.wait().unwrap();

    // The killed file opens as it is.
    let frames: u64 = probe(&output, "v:0", "stream=nb_read_frames", true)[0]
        .parse()
        .unwrap();
    assert!(frames >= 30, "{name}: only {frames} frames survived");
    // The kill can land while a fragment is being written (FFmpeg writes a large one in
    // more than one call, and a kill can cut even one call short): that fragment is lost,
    // and nothing before it.
    let bytes = std::fs::read(&output).unwrap();
    let (complete, cut_off) = complete_fragments(&bytes);
    assert!(
        cut_off.len() <= 2 && cut_off.first().is_none_or(|kind| kind.starts_with("moof")),
        "{name}: more than the last fragment is cut off: {cut_off:?}"
    );
    let kept = dir.join(format!("{name}-complete.mp4"));
    std::fs::write(&kept, &bytes[..complete]).unwrap();
    assert_eq!(decode_errors(&kept), "", "{name}");
    // What survived is a prefix of the show, in order.
    let counters = frame_counters(&kept);
    assert!(
        counters.len() >= 30,
        "{name}: only {} whole frames",
        counters.len()
    );
    for (index, counter) in counters.iter().enumerate() {
        assert_eq!(*counter, Some(index as u64), "{name}, frame {index}");
    }
}

/// The length of a fragmented MP4 up to the end of its last complete fragment (a `moof` box
/// followed by its whole `mdat`), and the top-level boxes after that point, a cut-off one
/// marked "(cut)".
fn complete_fragments(bytes: &[u8]) -> (usize, Vec<String>) {
    let (mut offset, mut complete) = (0, 0);
    let mut previous = String::new();
    let mut after = Vec::new();
    while offset + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        let kind = String::from_utf8_lossy(&bytes[offset + 4..offset + 8]).to_string();
        // The muxer writes 32-bit sizes only (a fragment is far below 4 GB).
        let whole = size >= 8 && offset + size <= bytes.len();
        let end = offset + size;
        if whole && (kind == "ftyp" || kind == "moov" || (kind == "mdat" && previous == "moof")) {
            complete = end;
            after.clear();
        } else {
            after.push(if whole {
                kind.clone()
            } else {
                format!("{kind} (cut)")
            });
        }
        if !whole {
            break;
        }
        previous = kind;
        offset = end;
    }
    if offset < bytes.len() && offset + 8 > bytes.len() {
        after.push("a few bytes (cut)".to_string());
    }
    (complete, after)
}

#[test]
fn complete_fragments_finds_where_a_killed_file_was_cut() {
    let boxed = |kind: &str, body: usize| {
        let mut bytes = ((8 + body) as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(kind.as_bytes());
        bytes.resize(8 + body, 7);
        bytes
    };
    let header = [boxed("ftyp", 20), boxed("moov", 100)].concat();
    let fragment = [boxed("moof", 50), boxed("mdat", 1000)].concat();
    let file = [header.clone(), fragment.clone(), fragment.clone()].concat();
    assert_eq!(complete_fragments(&file), (file.len(), vec![]));
    // Cut inside the second fragment's mdat.
    let cut = &file[..header.len() + fragment.len() + 300];
    assert_eq!(
        complete_fragments(cut),
        (
            header.len() + fragment.len(),
            vec!["moof".to_string(), "mdat (cut)".to_string()]
        )
    );
    // Cut inside the second moof's size field.
    let cut = &file[..header.len() + fragment.len() + 3];
    assert_eq!(complete_fragments(cut).0, header.len() + fragment.len());
    assert_eq!(
        complete_fragments(cut).1,
        vec!["a few bytes (cut)".to_string()]
    );
    // An mdat without its moof is not a complete fragment.
    let odd = [header.clone(), boxed("mdat", 10)].concat();
    assert_eq!(
        complete_fragments(&odd),
        (header.len(), vec!["mdat".to_string()])
    );
}

/// Records a clip with a white flash and a beep at the same moment (1.0 s), with the given
/// audio sync offset; returns when the flash and the beep happen in the recording.
fn flash_and_beep(sync_offset_ms: i32) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    // A clip that is black and silent except for a white flash and a beep, both at 1.0-1.1 s.
    let flash = dir.path().join("flash.mp4");
    run_ok(tool("ffmpeg").args([
        "-v", "error", "-y",
        "-f", "lavfi", "-i", "color=black:s=320x180:r=30:d=3,drawbox=color=white:t=fill:enable='between(t,1,1.09)'",
        "-f", "lavfi", "-i", "sine=f=1000:r=48000:d=3,volume=volume=0:enable='not(between(t,1,1.1))'",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
    ]).arg(&flash));
    let scene = write_scene(
        dir.path(),
        "sync.toml",
        &format!(
            r#"
[canvas]
width = 320
height = 180
fps = 30

[[sources]]
id = "flash"
kind = "media"
path = "{}"
loop = false
sync_offset_ms = {sync_offset_ms}

[[scenes]]
name = "Sync"

[[scenes.items]]
source = "flash"
"#,
            flash.display()
        ),
    );
    let output = dir.path().join("sync.mp4");
    record(&scene, &output, &["--duration", "3s", "--fast"]);
    let flash_at = first_time_above(
        &output,
        "movie=sync.mp4,signalstats",
        "lavfi.signalstats.YAVG",
        128.0,
    );
    let beep_at = first_time_above(
        &output,
        "amovie=sync.mp4,asetnsamples=n=240,astats=metadata=1:reset=1",
        "lavfi.astats.Overall.Peak_level",
        // The beep peaks at -18 dBFS mono, -21 dBFS per channel once spread over stereo.
        -30.0,
    );
    (flash_at, beep_at)
}

#[test]
fn media_picture_and_sound_stay_in_sync() {
    let (flash_at, beep_at) = flash_and_beep(0);
    assert!(
        (flash_at - beep_at).abs() < 1.0 / 30.0,
        "flash at {flash_at:.3} s, beep at {beep_at:.3} s: more than one video frame apart"
    );
}

#[test]
fn sync_offset_moves_the_sound_against_the_picture() {
    let (flash_at, beep_at) = flash_and_beep(200);
    let shift = beep_at - flash_at;
    assert!(
        (shift - 0.2).abs() < 1.0 / 30.0,
        "the beep is {shift:.3} s after the flash, expected 0.200"
    );
}

#[test]
fn ten_minutes_do_not_drift() {
    let dir = tempfile::tempdir().unwrap();
    let scene = write_scene(
        dir.path(),
        "long.toml",
        r#"
[canvas]
width = 64
height = 36
fps = "30000/1001"

[[sources]]
id = "clip"
kind = "media"
path = "ASSETS/clip.mp4"

[[scenes]]
name = "Long"

[[scenes.items]]
source = "clip"
bounds = { width = 64, height = 36 }
"#,
    );
    let output = dir.path().join("long.mp4");
    record(
        &scene,
        &output,
        &["--duration", "10m", "--fast", "--preset", "ultrafast"],
    );
    let video_end = stream_end(&output, "v:0");
    let audio_end = stream_end(&output, "a:0");
    assert!((video_end - 600.0).abs() < 0.1, "video lasts {video_end}");
    assert!(
        (audio_end - video_end).abs() <= AAC_FRAME_SECS,
        "after 10 minutes audio ends at {audio_end:.4} s, video at {video_end:.4} s"
    );
}

/// A machine that stalls (here: the process stopped for 2.5 s) leaves the render more than a
/// second behind real time: it skips to the current frame instead of staying behind, so the
/// recording is as long as the time on air, with its sound whole.
#[test]
fn a_render_that_falls_far_behind_skips_ahead_and_the_recording_keeps_time() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let output = dir.path().join("stalled.mp4");
    let child = tally()
        .arg("record")
        .arg(&scene)
        .arg("-o")
        .arg(&output)
        .args(["--duration", "8s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let pid = child.id().to_string();
    run_ok(tool("kill").args(["-STOP", &pid]));
    std::thread::sleep(Duration::from_millis(2500));
    run_ok(tool("kill").args(["-CONT", &pid]));
    let result = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(result.status.success(), "{stderr}");
    assert!(stderr.contains("to stay on time"), "{stderr}");
    let counts = stdout
        .lines()
        .find(|line| line.contains("frames:"))
        .unwrap_or_else(|| panic!("no frame counts in {stdout}"));
    let number_before = |word: &str| -> u64 {
        let words: Vec<&str> = counts.split([' ', ',']).filter(|w| !w.is_empty()).collect();
        let at = words.iter().position(|w| *w == word).unwrap();
        words[at - 1].parse().unwrap()
    };
    let (rendered, skipped) = (number_before("rendered"), number_before("skipped"));
    // About 2.5 s (75 frames) were missed; those more than a second behind are given up.
    assert!((40..=80).contains(&skipped), "{counts}");
    assert_eq!(rendered + skipped, 240, "{counts}");
    let frames: u64 = probe(&output, "v:0", "stream=nb_read_frames", true)[0]
        .parse()
        .unwrap();
    assert_eq!(frames, rendered);
    // Picture and sound both run the full 8 s: the picture froze, nothing fell behind.
    assert!((stream_end(&output, "v:0") - 8.0).abs() < 0.1);
    assert!((stream_end(&output, "a:0") - 8.0).abs() < 0.1);
    assert_eq!(decode_errors(&output), "");
}
