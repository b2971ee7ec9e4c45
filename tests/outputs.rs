//! Outputs started and stopped while the engine runs, as the app does: a recording started
//! and stopped in the middle of a live stream, over a real nginx-rtmp, in real time. Every
//! file is checked with the system ffmpeg: it decodes without errors, starts at zero, its
//! pictures are consecutive frames of the test pattern, and its sound is as long as its
//! pictures; the stream carries on across the recording's start and stop unbroken.

mod common;

use common::{decode_errors, frame_counters, pattern_scene, stream_times, RtmpServer, SrtListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tally::encode::{VideoCodec, VideoEncoderKind, VideoSettings};
use tally::engine::{Command, Engine, EngineConfig, Event, RecordingConfig};
use tally::output::{parse_destination, RecordingFormat};

fn idle_engine(scene: &Path) -> Engine {
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    let collection = tally::scene::load_file(scene).unwrap();
    Engine::start(collection, EngineConfig::default()).unwrap()
}

fn mp4(path: &Path) -> RecordingConfig {
    RecordingConfig {
        path: path.to_path_buf(),
        format: RecordingFormat::Mp4,
        profile: None,
    }
}

/// Waits up to `limit` for an event `matching` picks out; fails with the events seen.
fn wait_for<T>(engine: &Engine, limit: Duration, matching: impl Fn(&Event) -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(event) = engine.events().recv_timeout(Duration::from_millis(100)) {
            if let Some(found) = matching(&event) {
                return found;
            }
            if !matches!(event, Event::AudioLevels(_)) {
                seen.push(event);
            }
        }
    }
    panic!("timed out; events: {seen:?}");
}

fn recording_stopped(engine: &Engine, path: &Path) -> Option<String> {
    wait_for(engine, Duration::from_secs(30), |event| match event {
        Event::RecordingStopped {
            path: stopped,
            error,
        } if stopped == path => Some(error.clone()),
        _ => None,
    })
}

/// The frame counters of `file`: all readable and strictly increasing, and consecutive
/// unless the engine skipped frames. Returns them.
fn consecutive_frames(file: &Path, skipped: u64) -> Vec<u64> {
    let counters: Vec<u64> = frame_counters(file)
        .into_iter()
        .enumerate()
        .map(|(index, counter)| counter.unwrap_or_else(|| panic!("{file:?} frame {index}")))
        .collect();
    let gaps = counters
        .windows(2)
        .filter(|pair| pair[1] != pair[0] + 1)
        .count() as u64;
    assert!(
        counters.windows(2).all(|pair| pair[1] > pair[0]),
        "{file:?}: frames out of order"
    );
    assert!(
        gaps <= skipped,
        "{file:?}: {gaps} gaps in the frame counter with {skipped} frames skipped"
    );
    counters
}

/// A file recorded in mid-show: decodes cleanly, starts at zero, sound as long as pictures.
fn check_mid_show_file(file: &Path, skipped: u64) -> Vec<u64> {
    assert_eq!(decode_errors(file), "", "{file:?}");
    let (video_start, video_duration) = stream_times(file, "v:0");
    let (audio_start, audio_duration) = stream_times(file, "a:0");
    // Two frames in: the MP4 muxer moves the pictures by the B-frame delay, as it does in a
    // recording made from the first frame.
    assert!(
        video_start.abs() < 0.1,
        "{file:?} video starts at {video_start}"
    );
    assert!(
        audio_start.abs() < 0.05,
        "{file:?} audio starts at {audio_start}"
    );
    let (video_end, audio_end) = (video_start + video_duration, audio_start + audio_duration);
    assert!(
        (video_end - audio_end).abs() < 0.1,
        "{file:?}: video ends at {video_end}, audio at {audio_end}"
    );
    consecutive_frames(file, skipped)
}

#[test]
fn a_recording_starts_and_stops_in_the_middle_of_a_live_stream() {
    let server = RtmpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let engine = idle_engine(&scene);

    // Nothing records or streams yet: nothing is encoded.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(engine.stats().frames_encoded, 0);
    assert!(engine.stats().frames_rendered > 10);

    // A recording that cannot start says why, and the show goes on.
    let nowhere = PathBuf::from("/nonexistent-folder/x.mp4");
    engine
        .send(Command::StartRecording(mp4(&nowhere)))
        .expect("the engine takes the command");
    let error = recording_stopped(&engine, &nowhere).expect("an error");
    assert!(error.contains("/nonexistent-folder"), "{error}");
    assert!(!engine.is_finished());

    let destination = parse_destination(&server.url("show")).unwrap();
    engine
        .send(Command::StartStreaming(vec![destination]))
        .expect("the engine takes the command");
    std::thread::sleep(Duration::from_secs(2));

    let first = dir.path().join("first.mp4");
    engine
        .send(Command::StartRecording(mp4(&first)))
        .expect("the engine takes the command");
    std::thread::sleep(Duration::from_millis(200));
    // One recording at a time.
    let second_at_once = dir.path().join("again.mp4");
    engine
        .send(Command::StartRecording(mp4(&second_at_once)))
        .expect("the engine takes the command");
    let refused = recording_stopped(&engine, &second_at_once).expect("refused");
    assert!(refused.contains("already recording"), "{refused}");
    std::thread::sleep(Duration::from_secs(3));
    engine
        .send(Command::StopRecording)
        .expect("the engine takes the command");
    assert_eq!(recording_stopped(&engine, &first), None);

    std::thread::sleep(Duration::from_secs(1));
    engine
        .send(Command::StopStreaming)
        .expect("the engine takes the command");
    let stream_error = wait_for(&engine, Duration::from_secs(20), |event| match event {
        Event::StreamingStopped { error } => Some(error.clone()),
        _ => None,
    });
    assert_eq!(stream_error, None);
    assert!(
        engine.stats().outputs.is_empty(),
        "the stopped stream is gone"
    );

    // With everything stopped the encoders close: nothing more is encoded.
    std::thread::sleep(Duration::from_millis(500));
    let encoded = engine.stats().frames_encoded;
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(engine.stats().frames_encoded, encoded);

    // Recording again opens new encoders.
    let last = dir.path().join("last.mp4");
    engine
        .send(Command::StartRecording(mp4(&last)))
        .expect("the engine takes the command");
    std::thread::sleep(Duration::from_secs(2));
    let summary = engine.stop().unwrap();
    let skipped = summary.stats.frames_skipped;

    let recorded = check_mid_show_file(&first, skipped);
    assert!(
        recorded.len().abs_diff(3 * 30 + 6) <= 15,
        "{} frames recorded in about 3.2 s",
        recorded.len()
    );
    let streamed_file = server.recording("show");
    assert_eq!(decode_errors(&streamed_file), "");
    let streamed = consecutive_frames(&streamed_file, skipped);
    assert!(
        streamed.len().abs_diff(6 * 30 + 6) <= 20,
        "{} frames streamed in about 6.2 s",
        streamed.len()
    );
    // The stream went on unbroken around the recording: it holds the recording's frames and
    // some before and after.
    assert!(streamed[0] + 30 < recorded[0], "{streamed:?} {recorded:?}");
    assert!(streamed[streamed.len() - 1] > recorded[recorded.len() - 1] + 15);

    let again = check_mid_show_file(&last, skipped);
    assert!(again[0] > streamed[streamed.len() - 1] + 30);
    assert!(again.len().abs_diff(2 * 30) <= 15, "{} frames", again.len());
}

/// An engine encoding with `video` settings.
fn engine_encoding(scene: &Path, video: VideoSettings) -> Engine {
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    let collection = tally::scene::load_file(scene).unwrap();
    let config = EngineConfig {
        video,
        ..EngineConfig::default()
    };
    Engine::start(collection, config).unwrap()
}

/// One encode of [`hevc_and_av1_stream_over_srt_and_a_recording_joins_on_a_keyframe`].
struct CodecCase {
    video: VideoSettings,
    /// As ffprobe names it.
    name: &'static str,
    /// The container the SRT listener saves (what arrives is copied into it).
    received_as: &'static str,
    /// Whether the encoder makes a keyframe where one is asked for.
    forced: bool,
}

#[test]
fn hevc_and_av1_stream_over_srt_and_a_recording_joins_on_a_keyframe() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    // x265 and rav1e make a keyframe where asked: with ten seconds between their own, the
    // recording's first keyframe is the one it asked for. SVT-AV1 (in FFmpeg 5.1) cannot be
    // asked: the recording starts at its next own keyframe, two seconds apart. AV1 travels in Matroska
    // (MPEG-TS has no AV1 mapping), HEVC in MPEG-TS.
    let cases = [
        CodecCase {
            video: VideoSettings {
                codec: VideoCodec::Hevc,
                encoder: VideoEncoderKind::X265,
                preset: "ultrafast".into(),
                keyframe_interval_secs: 10.0,
                ..VideoSettings::default()
            },
            name: "hevc",
            received_as: "mpegts",
            forced: true,
        },
        CodecCase {
            video: VideoSettings {
                codec: VideoCodec::Av1,
                encoder: VideoEncoderKind::SvtAv1,
                preset: "12".into(),
                keyframe_interval_secs: 2.0,
                ..VideoSettings::default()
            },
            name: "av1",
            received_as: "matroska",
            forced: false,
        },
        CodecCase {
            video: VideoSettings {
                codec: VideoCodec::Av1,
                encoder: VideoEncoderKind::Rav1e,
                preset: "10".into(),
                keyframe_interval_secs: 10.0,
                ..VideoSettings::default()
            },
            name: "av1",
            received_as: "matroska",
            forced: true,
        },
    ];
    for case in cases {
        let name = case.name;
        let listener = SrtListener::saving_as(dir.path(), None, case.received_as);
        let forced = case.forced;
        let encoder = case.video.encoder;
        let engine = engine_encoding(&scene, case.video);
        let destination =
            parse_destination(&format!("srt://127.0.0.1:{}?latency_ms=200", listener.port))
                .unwrap();
        engine
            .send(Command::StartStreaming(vec![destination]))
            .expect("the engine takes the command");
        common::wait_until("a second streamed", Duration::from_secs(30), || {
            engine.stats().frames_encoded >= 30
        });
        // The recording joins the running encoder.
        let joined = dir.path().join(format!("{name}-{encoder:?}-joined.mp4"));
        engine
            .send(Command::StartRecording(mp4(&joined)))
            .expect("the engine takes the command");
        let from = engine.stats().frames_encoded;
        common::wait_until("three seconds more", Duration::from_secs(30), || {
            engine.stats().frames_encoded >= from + 90
        });
        engine
            .send(Command::StopRecording)
            .expect("the engine takes the command");
        assert_eq!(recording_stopped(&engine, &joined), None);
        let summary = engine.stop().unwrap();
        let skipped = summary.stats.frames_skipped;

        let recorded = check_mid_show_file(&joined, skipped);
        assert!(recorded[0] >= 30, "{name}: joined at frame {}", recorded[0]);
        let flags = common::probe(&joined, "v:0", "packet=flags", false);
        assert!(flags[0].starts_with('K'), "{name}: starts with {flags:?}");
        if forced {
            let keyframes = flags.iter().filter(|f| f.starts_with('K')).count();
            assert_eq!(keyframes, 1, "{name}: one keyframe, the one asked for");
        }

        // FFmpeg's SRT reader ends with an I/O error when the caller hangs up; what it saved
        // is checked instead.
        let (received, _) = listener.finish();
        // MPEG-TS lists each stream twice (in its program and on its own): the first says.
        let codec_name = common::probe(&received, "v:0", "stream=codec_name", false);
        assert_eq!(codec_name[0], name);
        assert_eq!(decode_errors(&received), "", "{name} over SRT");
        let streamed = consecutive_frames(&received, skipped);
        assert!(
            streamed.len() > 60,
            "{name}: {} frames arrived",
            streamed.len()
        );
        // The stream went on around the recording.
        assert!(streamed[0] < recorded[0], "{name}");
        assert!(
            streamed[streamed.len() - 1] >= recorded[recorded.len() - 1],
            "{name}"
        );
    }
}
