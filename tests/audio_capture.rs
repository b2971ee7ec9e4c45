//! Audio capture against a real sound server: a PulseAudio started by the test with null sinks
//! (virtual sound cards). Tones are played into them by the server's own sine generator (or
//! fed through pacat where a test times them itself), Tally captures the sinks' monitors
//! ("desktop audio") through its audio input sources and records, and the recordings are
//! checked with an FFT and level measurement.

mod common;

use common::{dominant_tone, mono_audio, run, tally, write_scene, PulseServer, XServer};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The sound of the "speakers" sink, heard through its monitor ("desktop audio").
const DESKTOP_AUDIO: &str = r#"
[[sources]]
id = "desktop"
kind = "audio_input"
device = "desktop"
always_on = true
"#;

fn audio_scene(dir: &Path, input: &str) -> std::path::PathBuf {
    write_scene(
        dir,
        "audio.toml",
        &format!(
            r##"
[canvas]
width = 320
height = 180
fps = 30

[[sources]]
id = "background"
kind = "color"
color = "#203040"

{input}

[[scenes]]
name = "Main"

[[scenes.items]]
source = "background"
"##
        ),
    )
}

fn record(
    pulse: &PulseServer,
    scene: &Path,
    output: &Path,
    seconds: u32,
    extra: &[&str],
) -> String {
    let mut command = tally();
    pulse.env(&mut command);
    let result = run(command
        .arg("record")
        .arg(scene)
        .arg("-o")
        .arg(output)
        .args(["--duration", &format!("{seconds}s"), "--quiet"])
        .args(extra));
    let stderr = String::from_utf8_lossy(&result.stderr).to_string();
    assert!(result.status.success(), "tally record failed:\n{stderr}");
    stderr
}

#[test]
fn desktop_audio_is_captured_at_its_frequency_and_level() {
    let pulse = PulseServer::start();
    // A 997 Hz sine at 0.5 peak (-6.02 dBFS; RMS -9.03 dBFS) playing on the default output.
    let _tone = pulse.play_sine("speakers", 997);
    let dir = tempfile::tempdir().unwrap();
    let scene = audio_scene(dir.path(), DESKTOP_AUDIO);
    let output = dir.path().join("desktop.mkv");
    record(&pulse, &scene, &output, 6, &[]);
    let audio = mono_audio(&output);
    assert!(audio.len() >= 48_000 * 5, "{} samples", audio.len());
    // The sound server takes a moment to start a new monitor stream; judge the last 3 s, up
    // to where the recording's sound ends (the encoder pads its last frame with silence).
    let tail = &audio[audio.len() - 48_000 * 3..audio.len() - 4800];
    let (frequency, rms_dbfs) = dominant_tone(tail);
    assert!(
        (frequency - 997.0).abs() < 2.0,
        "strongest frequency {frequency:.1} Hz, expected 997"
    );
    // AAC at 160 kbps keeps a pure tone's level within a fraction of a dB.
    assert!(
        (rms_dbfs + 9.03).abs() < 0.5,
        "level {rms_dbfs:.2} dBFS RMS, expected -9.03"
    );
    // Dropped or repeated blocks would show as sudden jumps in a pure tone.
    let worst_step = tail
        .windows(3)
        .map(|w| (w[2] - 2.0 * w[1] + w[0]).abs())
        .fold(0.0f32, f32::max);
    let smooth = 0.5 * (std::f32::consts::TAU * 997.0 / 48_000.0).powi(2);
    assert!(
        worst_step < smooth * 4.0,
        "a discontinuity of {worst_step} (a clean tone's largest is {smooth})"
    );
}

#[test]
fn a_missing_device_is_a_warning_and_the_show_goes_on() {
    let pulse = PulseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let scene = audio_scene(
        dir.path(),
        r#"
[[sources]]
id = "mic"
kind = "audio_input"
device = "Studio Microphone"
always_on = true
"#,
    );
    let output = dir.path().join("missing.mkv");
    let stderr = record(&pulse, &scene, &output, 2, &[]);
    assert!(
        stderr.contains("audio input `mic` (device `Studio Microphone`): no audio input named `Studio Microphone`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("speakers.monitor"),
        "lists what there is: {stderr}"
    );
    assert!(stderr.contains("retrying every second"), "{stderr}");
    let audio = mono_audio(&output);
    assert!(audio.len() >= 48_000 * 19 / 10, "the recording is whole");
    assert!(audio.iter().all(|s| s.abs() < 1e-3), "and silent");
}

#[test]
fn an_unplugged_device_is_reported_and_reattached() {
    let pulse = PulseServer::start();
    let load_usb_mic =
        || pulse.load_module(&["module-null-sink", "sink_name=usbmic", "rate=48000"]);
    let module = load_usb_mic();
    let dir = tempfile::tempdir().unwrap();
    let scene = audio_scene(
        dir.path(),
        r#"
[[sources]]
id = "mic"
kind = "audio_input"
device = "usbmic.monitor"
always_on = true
"#,
    );
    let output = dir.path().join("unplug.mkv");
    let mut command = tally();
    pulse.env(&mut command);
    let child = command
        .arg("record")
        .arg(&scene)
        .arg("-o")
        .arg(&output)
        .args(["--duration", "12s", "--quiet"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    run(pulse.command("pactl").args(["unload-module", &module]));
    std::thread::sleep(Duration::from_secs(3));
    load_usb_mic();
    let _tone = pulse.play_sine("usbmic", 440);
    let result = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    assert!(
        stderr.contains("audio input `mic` (device `usbmic.monitor`): lost"),
        "{stderr}"
    );
    assert!(stderr.contains("reattached"), "{stderr}");
    // The sound after the re-plug made it into the recording.
    let audio = mono_audio(&output);
    let (frequency, level) = dominant_tone(&audio[audio.len() - 48_000 * 2..audio.len() - 4800]);
    assert!(
        (frequency - 440.0).abs() < 2.0 && level > -12.0,
        "{frequency} Hz at {level} dBFS"
    );
}

#[test]
fn monitoring_plays_the_source_to_the_monitor_device() {
    let pulse = PulseServer::start();
    let _tone = pulse.play_sine("speakers", 660);
    let dir = tempfile::tempdir().unwrap();
    let scene = audio_scene(
        dir.path(),
        &format!("{DESKTOP_AUDIO}monitoring = \"monitor_only\"\n"),
    );
    let output = dir.path().join("monitor.mkv");
    let listener = std::thread::spawn({
        let address = pulse.address();
        move || {
            std::thread::sleep(Duration::from_secs(4));
            headphones(&address, 2)
        }
    });
    record(
        &pulse,
        &scene,
        &output,
        7,
        &["--monitor-device", "headphones"],
    );
    let heard = listener.join().unwrap();
    assert!(heard.len() > 48_000, "{} samples heard", heard.len());
    let (frequency, level) = dominant_tone(&heard);
    // The monitoring queue drops or pads sound to stay short when the machine is loaded (see
    // `audio::monitor`); each jump smears the tone's peak over a few 0.73 Hz bins (CI once
    // heard 662.1 Hz at the right level). A wrong or silent source is far outside this.
    assert!(
        (frequency - 660.0).abs() < 5.0 && (level + 9.03).abs() < 1.0,
        "the headphones hear {frequency:.1} Hz at {level:.2} dBFS"
    );
    // Monitor only: the operator hears it, the recording does not have it.
    let recorded = mono_audio(&output);
    assert!(
        recorded.iter().all(|s| s.abs() < 1e-3),
        "monitor-only sound leaked into the program"
    );
}

/// `seconds` of what the "headphones" sink plays (the left channel).
fn headphones(pulse_address: &str, seconds: u32) -> Vec<f32> {
    let output = std::process::Command::new("timeout")
        .env("PULSE_SERVER", pulse_address)
        .arg(seconds.to_string())
        .args([
            "parec",
            "--format=float32le",
            "--rate=48000",
            "--channels=2",
        ])
        .arg("--device=headphones.monitor")
        .output()
        .unwrap();
    output
        .stdout
        .chunks_exact(8)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Monitoring chosen in the middle of the show (as in the app's mixer) opens the monitoring
/// device then: the engine had none, as nothing was monitored when it started.
#[test]
fn monitoring_turned_on_during_the_show_is_heard() {
    let pulse = PulseServer::start();
    let _tone = pulse.play_sine("speakers", 660);
    let dir = tempfile::tempdir().unwrap();
    let scene = audio_scene(dir.path(), DESKTOP_AUDIO);
    let mut collection = tally::scene::load_file(&scene).unwrap();
    // The engine runs in this process: its sound server is this test's (the other tests give
    // theirs to the processes they start).
    std::env::set_var("PULSE_SERVER", pulse.address());
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    let engine = tally::engine::Engine::start(
        collection.clone(),
        tally::engine::EngineConfig {
            monitor_device: Some("headphones".into()),
            ..Default::default()
        },
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // An idle sink may give its monitor nothing at all; whatever comes must be silence.
    let before = headphones(&pulse.address(), 1);
    assert!(
        before.iter().all(|s| s.abs() < 1e-3),
        "the headphones heard the source before it was monitored"
    );

    let tally::scene::SourceKind::AudioInput(input) = &mut collection.sources[1].kind else {
        panic!("{:?}", collection.sources[1]);
    };
    input.audio.monitoring = tally::scene::Monitoring::MonitorAndOutput;
    engine
        .send(tally::engine::Command::UpdateCollection(Box::new(
            collection,
        )))
        .expect("the engine takes the command");
    std::thread::sleep(Duration::from_secs(1));
    let heard = headphones(&pulse.address(), 2);
    engine.stop().unwrap();
    assert!(heard.len() > 48_000, "{} samples heard", heard.len());
    let (frequency, level) = dominant_tone(&heard);
    assert!(
        (frequency - 660.0).abs() < 5.0 && (level + 9.03).abs() < 1.0,
        "the headphones hear {frequency:.1} Hz at {level:.2} dBFS"
    );
}

/// A screen flashes white with a tone burst, five times; in the recording picture and sound
/// line up within a video frame.
///
/// A change on screen shows in the first frame grabbed after it, so a single flash's first white
/// frame comes anywhere from 0 to 1 frame after its sound even when sync is perfect, and one
/// flash cannot tell a sync error from that rounding. The flashes are a fifth of a frame more
/// than a second apart, so they fall at five evenly spread points of the frame period: their
/// median first white frame comes half a frame after the sound, plus the sync error.
#[test]
fn captured_picture_and_sound_line_up_within_a_frame() {
    const FLASHES: u32 = 5;
    let fps = 30.0;
    let frame = 1.0 / fps;
    let flash_at = |flash: u32| {
        Duration::from_secs_f64(3.5 + f64::from(flash) * (1.0 + frame / f64::from(FLASHES)))
    };
    let tone_for = 0.3;
    let white_for = Duration::from_millis(500);

    let x = XServer::start(320, 180);
    x.paint_root("#000000");
    let pulse = PulseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let scene = write_scene(
        dir.path(),
        "av.toml",
        &format!(
            r#"
[canvas]
width = 320
height = 180
fps = 30

[[sources]]
id = "screen"
kind = "screen"
display = "{}"
cursor = false

[[sources]]
id = "desktop"
kind = "audio_input"
device = "desktop"
always_on = true

[[scenes]]
name = "Main"

[[scenes.items]]
source = "screen"
"#,
            x.display
        ),
    );
    // A player fed in real time, 5 ms at a time, with a 10 ms buffer, so a tone reaches the
    // sound server when it is written and no backlog of silence waits ahead of it.
    let mut player = pulse
        .command("pacat")
        .args([
            "--playback",
            "--raw",
            "--format=float32le",
            "--rate=48000",
            "--channels=2",
            "--latency-msec=10",
            "--device=speakers",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut feed = player.stdin.take().unwrap();
    let output = dir.path().join("av.mkv");
    let mut command = tally();
    pulse.env(&mut command);
    let recorder = command
        .arg("record")
        .arg(&scene)
        .arg("-o")
        .arg(&output)
        .args(["--duration", "9s", "--quiet"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Nothing is written between the bursts but a moment of silence to open the stream: the
    // stream runs dry, so each burst plays when written instead of queueing behind silence.
    let start = Instant::now();
    feed.write_all(&vec![0u8; 48_000 / 10 * 8]).unwrap();
    for flash in 0..FLASHES {
        std::thread::sleep((start + flash_at(flash)).saturating_duration_since(Instant::now()));
        x.paint_root("#ffffff");
        let tone_start = Instant::now();
        play_in_real_time(&mut feed, tone_for);
        std::thread::sleep((tone_start + white_for).saturating_duration_since(Instant::now()));
        x.paint_root("#000000");
    }
    drop(feed);
    let _ = player.wait();
    let result = recorder.wait_with_output().unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );

    // Real presentation times, from the file's timestamps.
    let pictures = common::times_rising_above(
        &output,
        "movie=av.mkv,signalstats",
        "lavfi.signalstats.YAVG",
        128.0,
    );
    let sounds = common::times_rising_above(
        &output,
        "amovie=av.mkv,asetnsamples=n=48,astats=metadata=1:reset=1",
        "lavfi.astats.Overall.Peak_level",
        -20.0,
    );
    assert_eq!(
        pictures.len(),
        FLASHES as usize,
        "white frames start at {pictures:?} s"
    );
    // A flash's sound is the first to start after the previous burst (the flashes are a second
    // apart, the bursts 0.3 s long); a gap in the player's feed may restart a burst, later.
    let offsets: Vec<f64> = pictures
        .iter()
        .map(|picture| {
            let sound = sounds
                .iter()
                .find(|sound| **sound > picture - 0.5)
                .filter(|sound| **sound < picture + 0.5)
                .unwrap_or_else(|| panic!("no sound near the flash at {picture:.3} s: {sounds:?}"));
            picture - sound
        })
        .collect();
    let mut sorted = offsets.clone();
    sorted.sort_by(f64::total_cmp);
    // Half a frame is what the rounding to frames adds on average; the median leaves out a flash
    // whose grab a loaded machine delivered a frame late, or a burst the player started late.
    let sync_error = sorted[sorted.len() / 2] - frame / 2.0;
    eprintln!(
        "first white frames after their sound (ms): {:.1?}; sync error {:.1} ms",
        offsets.iter().map(|o| o * 1000.0).collect::<Vec<_>>(),
        sync_error * 1000.0
    );
    assert!(
        sync_error.abs() < frame,
        "picture and sound are {:.1} ms apart (the picture later if positive); first white \
         frames after their sound: {offsets:.3?} s",
        sync_error * 1000.0
    );
}

/// Writes `seconds` of a 1 kHz tone at -6 dBFS (stereo float) to a player, 5 ms at a time, each
/// block when it is due.
fn play_in_real_time(feed: &mut impl Write, seconds: f64) {
    let start = Instant::now();
    let block = 240u64;
    let total = (seconds * 48_000.0) as u64;
    let mut written = 0u64;
    while written < total {
        let samples: Vec<u8> = (written..written + block)
            .flat_map(|n| {
                let t = n as f32 / 48_000.0;
                let bytes = (0.5 * (std::f32::consts::TAU * 1000.0 * t).sin()).to_le_bytes();
                [bytes, bytes].concat()
            })
            .collect();
        feed.write_all(&samples).unwrap();
        written += block;
        let due = start + Duration::from_nanos(written * 1_000_000_000 / 48_000);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
}
