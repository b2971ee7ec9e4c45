//! Live streaming against real servers on loopback, started by the tests: nginx with the RTMP
//! module, and an FFmpeg SRT listener. What arrived is checked with ffprobe and ffmpeg.

mod common;

use common::{
    decode_errors, free_port, http_get, pattern_scene, probe, tally, tool, RtmpServer, SrtListener,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn video_frames(file: &Path) -> u64 {
    probe(file, "v:0", "stream=nb_read_frames", true)[0]
        .parse()
        .unwrap()
}

/// Runs `tally stream` to completion; returns (success, stdout + stderr).
fn stream(args: &[&str]) -> (bool, String) {
    let output = tally().arg("stream").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    (output.status.success(), text)
}

#[test]
fn rtmp_publish_arrives_complete_and_decodable_with_a_parallel_recording() {
    let server = RtmpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let recording = dir.path().join("parallel.mp4");
    let (ok, text) = stream(&[
        scene.to_str().unwrap(),
        "--to",
        &server.url("secretkey123"),
        "--record",
        recording.to_str().unwrap(),
        "--duration",
        "20s",
    ]);
    assert!(ok, "{text}");
    assert!(
        !text.contains("secretkey123"),
        "the stream key was printed:\n{text}"
    );
    assert!(text.contains("/live/****"), "{text}");

    let received = server.recording("secretkey123");
    let video = probe(
        &received,
        "v:0",
        "stream=codec_name,width,height,r_frame_rate",
        false,
    );
    assert_eq!(video, vec!["h264,640,360,30/1"]);
    assert_eq!(
        probe(&received, "a:0", "stream=codec_name,sample_rate", false),
        vec!["aac,48000"]
    );
    let frames = video_frames(&received);
    assert!(frames.abs_diff(600) <= 1, "received {frames} frames of 600");
    assert_eq!(decode_errors(&received), "");
    assert_eq!(video_frames(&recording), 600);
}

#[test]
fn server_restart_mid_stream_reconnects_and_the_recording_keeps_every_frame() {
    let mut server = RtmpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let recording = dir.path().join("parallel.mp4");
    let mut child = tally()
        .arg("stream")
        .arg(&scene)
        .args(["--to", &server.url("resilient"), "--record"])
        .arg(&recording)
        .args([
            "--duration",
            "24s",
            "--reconnect-delay",
            "1s",
            "--reconnect-max-delay",
            "2s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = read_lines_in_background(&mut child);

    wait_for_line(&lines, "[live]", Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(4));
    server.kill();
    wait_for_line(&lines, "reconnecting", Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(3));
    let restarted_at = Instant::now();
    server.restart();
    let reconnected_at = wait_for_line_after(
        &lines,
        "connected to",
        restarted_at,
        Duration::from_secs(10),
    );
    let status = child.wait().unwrap();
    let output = lines.lock().unwrap().join("\n");
    assert!(status.success(), "{output}");

    // The backoff is capped at 2 s (plus 20% jitter): back within one retry delay.
    let waited = reconnected_at.duration_since(restarted_at);
    assert!(
        waited <= Duration::from_millis(2400 + 1500),
        "reconnected {waited:?} after the server came back\n{output}"
    );
    // One file per publish: what arrived before the crash, and after the reconnect.
    let received = server.recordings("resilient");
    assert!(
        received.len() >= 2,
        "expected a second publish after the restart: {received:?}"
    );
    let resumed = received.last().unwrap();
    assert_eq!(
        decode_errors(resumed),
        "",
        "the resumed stream does not decode cleanly"
    );
    assert!(
        video_frames(resumed) > 150,
        "too little arrived after the reconnect"
    );
    let first = video_frames(&received[0]);
    assert!(
        first > 100,
        "too little arrived before the crash ({first} frames)"
    );
    assert_eq!(video_frames(&recording), 720, "the recording lost frames");
}

type Lines = std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>>;

fn read_lines_in_background(child: &mut Child) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let stdout = child.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let timed: Lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (sink, timed_sink) = (lines.clone(), timed.clone());
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            timed_sink
                .lock()
                .unwrap()
                .push((Instant::now(), line.clone()));
            sink.lock().unwrap().push(line);
        }
    });
    TIMED.with(|cell| *cell.borrow_mut() = Some(timed));
    lines
}

thread_local! {
    static TIMED: std::cell::RefCell<Option<Lines>> = const { std::cell::RefCell::new(None) };
}

fn wait_for_line(
    lines: &std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    needle: &str,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    while !lines
        .lock()
        .unwrap()
        .iter()
        .any(|line| line.contains(needle))
    {
        assert!(
            Instant::now() < deadline,
            "no line with {needle:?}:\n{}",
            lines.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_line_after(
    lines: &std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    needle: &str,
    after: Instant,
    timeout: Duration,
) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        let found = TIMED.with(|cell| {
            cell.borrow().as_ref().and_then(|timed| {
                timed
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(at, line)| *at >= after && line.contains(needle))
                    .map(|(at, _)| *at)
            })
        });
        if let Some(at) = found {
            return at;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} after the restart:\n{}",
            lines.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn srt_caller_reaches_a_listener_with_and_without_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    for passphrase in [None, Some("correct-horse-battery")] {
        let listener = SrtListener::start(dir.path(), passphrase);
        let mut url = format!("srt://127.0.0.1:{}?latency_ms=200", listener.port);
        if let Some(passphrase) = passphrase {
            url.push_str(&format!("&passphrase={passphrase}"));
        }
        let (ok, text) = stream(&[scene.to_str().unwrap(), "--to", &url, "--duration", "8s"]);
        assert!(ok, "{text}");
        if let Some(passphrase) = passphrase {
            assert!(
                !text.contains(passphrase),
                "the passphrase was printed:\n{text}"
            );
        }
        let (received, errors) = listener.finish();
        // MPEG-TS lists each stream twice (in its program and on its own): look at the first.
        assert_eq!(
            probe(&received, "v:0", "stream=codec_name,width,height", false)[0],
            "h264,640,360"
        );
        assert_eq!(
            probe(&received, "a:0", "stream=codec_name", false)[0],
            "aac"
        );
        let frames = video_frames(&received);
        assert!(
            frames.abs_diff(240) <= 1,
            "received {frames} of 240 frames ({errors})"
        );
        assert_eq!(decode_errors(&received), "", "passphrase {passphrase:?}");
    }
}

#[test]
fn srt_wrong_passphrase_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let listener = SrtListener::start(dir.path(), Some("the-right-passphrase"));
    let url = format!(
        "srt://127.0.0.1:{}?passphrase=a-wrong-passphrase",
        listener.port
    );
    let recording = dir.path().join("kept.mp4");
    let (ok, text) = stream(&[
        scene.to_str().unwrap(),
        "--to",
        &url,
        "--record",
        recording.to_str().unwrap(),
        "--duration",
        "6s",
        "--max-retries",
        "1",
        "--reconnect-delay",
        "1s",
    ]);
    drop(listener);
    assert!(!ok, "a refused output must fail the command:\n{text}");
    assert!(text.contains("cannot connect to srt://127.0.0.1"), "{text}");
    assert!(text.contains("same passphrase"), "{text}");
    assert!(
        text.contains("passphrase=****") && !text.contains("a-wrong-passphrase"),
        "{text}"
    );
    // The recording is not affected by the failed output.
    assert_eq!(video_frames(&recording), 180);
}

#[test]
fn bad_destinations_are_named_and_other_outputs_keep_running() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let scene = scene.to_str().unwrap();

    let (ok, text) = stream(&[
        scene,
        "--to",
        "http://example.com/live/key",
        "--duration",
        "1s",
    ]);
    assert!(!ok && text.contains("unknown scheme `http`"), "{text}");
    let (ok, text) = stream(&[
        scene,
        "--to",
        "rtmp://127.0.0.1/onlyapp",
        "--duration",
        "1s",
    ]);
    assert!(
        !ok && text.contains("expected rtmp://host[:port]/app/stream-key"),
        "{text}"
    );

    // Refused connection on one output; a working server on the other keeps receiving.
    let server = RtmpServer::start();
    let closed_port = free_port();
    let refused = format!("rtmp://127.0.0.1:{closed_port}/live/refusedkey");
    let (ok, text) = stream(&[
        scene,
        "--to",
        &refused,
        "--to",
        &server.url("healthy"),
        "--duration",
        "6s",
        "--max-retries",
        "1",
        "--reconnect-delay",
        "1s",
    ]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("rtmp://127.0.0.1:{closed_port}/live/****")),
        "{text}"
    );
    assert!(
        text.contains("Connection refused") || text.contains("refused"),
        "{text}"
    );
    assert!(!text.contains("refusedkey"), "{text}");
    let frames = video_frames(&server.recording("healthy"));
    assert!(
        frames.abs_diff(180) <= 1,
        "the healthy output got {frames} frames"
    );
}

/// A TCP proxy on loopback that passes client-to-server bytes at `bytes_per_second` until
/// `slow_for` has passed, then at full speed. It serves one connection and stops by itself.
fn throttling_proxy(upstream_port: u16, bytes_per_second: usize, slow_for: Duration) -> u16 {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // A small receive buffer, so the squeeze reaches the sender quickly.
    socket.set_recv_buffer_size(32 * 1024).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(1).unwrap();
    let listener: TcpListener = socket.into();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut client, _)) = listener.accept() else {
            return;
        };
        let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
            return;
        };
        let (mut client_reader, mut server_writer) =
            (client.try_clone().unwrap(), server.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut server, &mut client);
        });
        let started = Instant::now();
        let mut chunk = [0u8; 1024];
        let deadline = started + Duration::from_secs(120);
        while Instant::now() < deadline {
            let Ok(read) = client_reader.read(&mut chunk) else {
                break;
            };
            if read == 0 || server_writer.write_all(&chunk[..read]).is_err() {
                break;
            }
            if started.elapsed() < slow_for {
                std::thread::sleep(Duration::from_secs_f64(
                    read as f64 / bytes_per_second as f64,
                ));
            }
        }
        let _ = server_writer.shutdown(std::net::Shutdown::Write);
    });
    port
}

#[test]
fn a_squeezed_link_drops_video_by_policy_and_keeps_all_audio() {
    let server = RtmpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    // 400 kbit/s for 12 s: below the video (the test pattern takes about 1 Mbit/s) but above
    // the 160 kbit/s of audio plus keyframes.
    let proxy = throttling_proxy(server.port, 50_000, Duration::from_secs(12));
    let url = format!("rtmp://127.0.0.1:{proxy}/live/squeezed");
    let (ok, text) = stream(&[
        scene.to_str().unwrap(),
        "--to",
        &url,
        "--duration",
        "20s",
        "--drop-threshold",
        "700ms",
    ]);
    assert!(ok, "{text}");
    let received = server.recording("squeezed");
    if std::env::var_os("TALLY_KEEP").is_some() {
        std::fs::copy(&received, "/tmp/squeezed.flv").unwrap();
        std::fs::write("/tmp/squeezed.txt", &text).unwrap();
    }

    let queue_seconds: Vec<f64> = text
        .lines()
        .filter_map(|line| line.split("queue ").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    let worst = queue_seconds.iter().cloned().fold(0.0, f64::max);
    assert!(!queue_seconds.is_empty(), "no statistics printed:\n{text}");
    // Audio and keyframes are never dropped, so while a keyframe crawls through the narrow
    // link the audio behind it ages past the threshold; the queue stays within twice it.
    assert!(
        worst <= 2.0 * 0.7,
        "the queue reached {worst} s (threshold 0.7 s):\n{text}"
    );
    let dropped: u64 = text
        .lines()
        .rev()
        .find_map(|line| {
            line.split(" dropped")
                .next()?
                .rsplit(", ")
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    assert!(dropped > 0, "nothing was dropped:\n{text}");

    assert_eq!(decode_errors(&received), "");
    assert!(
        video_frames(&received) < 600,
        "video should have lost frames"
    );
    // Audio is complete: no gap between consecutive AAC frames (1024 samples = 21.3 ms; FLV
    // keeps milliseconds) from the start of the recording to the end of the show. nginx's
    // recorder itself starts at the first video keyframe, about 0.2 s in.
    let times: Vec<f64> = probe(&received, "a:0", "packet=pts_time", false)
        .iter()
        .filter_map(|t| t.trim_end_matches(',').parse().ok())
        .collect();
    let widest_gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(widest_gap <= 0.023, "a {widest_gap} s hole in the audio");
    assert!(
        times[0] <= 0.3 && *times.last().unwrap() >= 19.9,
        "audio spans {} to {}",
        times[0],
        times.last().unwrap()
    );
}

#[test]
fn backup_ingest_takes_over_when_the_primary_fails() {
    let server = RtmpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let dead_primary = format!("rtmp://127.0.0.1:{}/live/primarykey", free_port());
    let destination = format!("{dead_primary}|{}", server.url("backupkey"));
    let (ok, text) = stream(&[
        scene.to_str().unwrap(),
        "--to",
        &destination,
        "--duration",
        "8s",
        "--reconnect-delay",
        "1s",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("on backup"), "{text}");
    let frames = video_frames(&server.recording("backupkey"));
    assert!(frames > 150, "the backup received only {frames} frames");
    assert_eq!(decode_errors(&server.recording("backupkey")), "");
}

#[test]
fn destinations_file_with_keys_from_the_environment() {
    let server = RtmpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let file = dir.path().join("destinations.toml");
    std::fs::write(
        &file,
        format!(
            "[[destination]]\nurl = \"rtmp://127.0.0.1:{}/live/${{TALLY_TEST_KEY}}\"\n",
            server.port
        ),
    )
    .unwrap();
    let output = tally()
        .env("TALLY_TEST_KEY", "envsecret42")
        .arg("stream")
        .arg(&scene)
        .arg("--destinations")
        .arg(&file)
        .args(["--duration", "4s"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(!text.contains("envsecret42"), "{text}");
    assert!(video_frames(&server.recording("envsecret42")) > 100);

    // A key variable that is not set is named, and nothing starts.
    let output = tally()
        .arg("stream")
        .arg(&scene)
        .arg("--destinations")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("TALLY_TEST_KEY is not set"));
}

#[test]
fn reconnect_now_skips_the_backoff_wait() {
    use tally::engine::{Command, Engine, EngineConfig};
    use tally::output::{parse_destination, OutputState, ReconnectSettings, StreamSettings};

    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    let dir = tempfile::tempdir().unwrap();
    let collection = tally::scene::load_file(&pattern_scene(dir.path(), "30")).unwrap();
    let mut server = RtmpServer::start();
    server.kill(); // nothing listens yet
    let config = EngineConfig {
        pacing: tally::base::Pacing::RealTime,
        frame_limit: None,
        video: Default::default(),
        audio: Default::default(),
        recording: None,
        streams: vec![parse_destination(&server.url("manual")).unwrap()],
        stream_settings: StreamSettings {
            reconnect: ReconnectSettings {
                first_delay: Duration::from_secs(60),
                max_delay: Duration::from_secs(60),
                ..Default::default()
            },
            ..Default::default()
        },
        monitor_device: None,
        gpu: None,
        on_frame: None,
        faults: Default::default(),
        driver: None,
    };
    let engine = Engine::start(collection, config).unwrap();
    let state = |engine: &Engine| engine.stats().outputs[0].state.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !matches!(state(&engine), OutputState::Reconnecting { .. }) {
        assert!(
            Instant::now() < deadline,
            "never started waiting: {:?}",
            state(&engine)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.restart();
    let asked = Instant::now();
    engine
        .send(Command::ReconnectOutputs)
        .expect("the engine takes the command");
    while state(&engine) != OutputState::Live {
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "still {:?}",
            state(&engine)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Well before the 60 s backoff would have let it try again.
    assert!(asked.elapsed() < Duration::from_secs(10));
    let summary = engine.stop().unwrap();
    assert_eq!(summary.stats.outputs[0].state, OutputState::Stopped);
}

#[test]
fn rtmps_checks_the_server_certificate() {
    let server = RtmpServer::start_with_tls();
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let scene = scene.to_str().unwrap();
    let ca_file = server.ca_file();

    // Trusted through --tls-ca-file: the stream arrives over TLS.
    let (ok, text) = stream(&[
        scene,
        "--to",
        &server.rtmps_url("tlskey"),
        "--tls-ca-file",
        ca_file.to_str().unwrap(),
        "--duration",
        "5s",
    ]);
    assert!(ok, "{text}");
    assert!(!text.contains("tlskey"), "{text}");
    let received = server.recording("tlskey");
    assert!(video_frames(&received) > 120);
    assert_eq!(decode_errors(&received), "");

    // A self-signed certificate nobody vouches for is refused, with what to check.
    let (ok, text) = stream(&[
        scene,
        "--to",
        &server.rtmps_url("untrusted"),
        "--duration",
        "3s",
        "--max-retries",
        "1",
        "--reconnect-delay",
        "1s",
    ]);
    assert!(
        !ok,
        "an unverifiable certificate must not be accepted:\n{text}"
    );
    assert!(text.contains("TLS certificate"), "{text}");
    assert!(
        server.recordings("untrusted").is_empty(),
        "the stream went out anyway"
    );
}

#[test]
fn srt_listener_mode_waits_for_the_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let port = free_port();
    let mut tally_process = tally()
        .arg("stream")
        .arg(&scene)
        .args([
            "--to",
            &format!("srt://127.0.0.1:{port}?mode=listener"),
            "--duration",
            "10s",
            "--quiet",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The receiver calls in; retry until Tally is listening.
    let received = dir.path().join("from-listener.ts");
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut caller;
    loop {
        caller = tool("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-i",
                &format!("srt://127.0.0.1:{port}?mode=caller"),
            ])
            .args(["-c", "copy", "-f", "mpegts"])
            .arg(&received)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        if caller.try_wait().unwrap().is_none() || Instant::now() > deadline {
            break;
        }
    }
    let status = tally_process.wait().unwrap();
    let _ = caller.wait();
    assert!(status.success());
    let frames = video_frames(&received);
    assert!(frames > 150, "the receiver got {frames} frames");
    assert_eq!(decode_errors(&received), "");
}

#[test]
fn adaptive_bitrate_follows_a_squeezed_link_and_recovers() {
    let server = RtmpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    // 600 kbit/s for 10 s, then full speed.
    let proxy = throttling_proxy(server.port, 75_000, Duration::from_secs(10));
    let url = format!("rtmp://127.0.0.1:{proxy}/live/adaptive");
    let (ok, text) = stream(&[
        scene.to_str().unwrap(),
        "--to",
        &url,
        "--duration",
        "26s",
        "--adaptive-bitrate",
    ]);
    assert!(ok, "{text}");
    let targets: Vec<u32> = text
        .lines()
        .filter_map(|line| {
            line.split("video encoder bitrate ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    eprintln!("encoder bitrate each second (kbps): {targets:?}");
    let lowest = *targets
        .iter()
        .min()
        .unwrap_or_else(|| panic!("the bitrate never changed:\n{text}"));
    assert!(
        lowest < 800,
        "the bitrate only came down to {lowest} kbps:\n{text}"
    );
    assert!(
        *targets.last().unwrap() > lowest,
        "the bitrate did not recover after the squeeze:\n{text}"
    );
    let received = server.recording("adaptive");
    assert_eq!(decode_errors(&received), "");
}

#[test]
fn hevc_and_av1_go_over_enhanced_rtmp_and_a_newer_ffmpeg_decodes_them() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let ffmpeg7 = common::ffmpeg7();
    for (codec, preset) in [("hevc", "ultrafast"), ("av1", "12")] {
        // FFmpeg 7 as the RTMP server: it takes the publish and demuxes the enhanced FLV.
        let port = free_port();
        let received = dir.path().join(format!("received-{codec}.mkv"));
        let mut server = std::process::Command::new(&ffmpeg7)
            .args(["-v", "error", "-y", "-listen", "1", "-i"])
            .arg(format!("rtmp://127.0.0.1:{port}/live/key"))
            .args(["-c", "copy", "-f", "matroska"])
            .arg(&received)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        common::wait_until("the RTMP server listens", Duration::from_secs(10), || {
            common::tcp_port_listening(port)
        });
        let url = format!("rtmp://127.0.0.1:{port}/live/key");
        let (ok, text) = stream(&[
            scene.to_str().unwrap(),
            "--to",
            &url,
            "--duration",
            "4s",
            "--codec",
            codec,
            "--preset",
            preset,
        ]);
        assert!(ok, "{codec}: {text}");
        let (status, errors) = wait_with_stderr(&mut server);
        assert!(status.success(), "{codec}: the server said {errors}");
        assert_eq!(
            probe(&received, "v:0", "stream=codec_name,width,height", false),
            [format!("{codec},640,360")]
        );
        assert_eq!(probe(&received, "a:0", "stream=codec_name", false), ["aac"]);
        assert_eq!(decode_errors(&received), "", "{codec}");
        let frames = video_frames(&received);
        assert!(frames.abs_diff(120) <= 2, "{codec}: {frames} frames of 120");
    }
}

/// node-media-server (npm, installed by packaging/install-deps.sh), a relay that understands
/// enhanced RTMP, on loopback ports of its own; killed when dropped.
struct Relay {
    _process: ServerProcess,
    port: u16,
    /// Where it takes RTMPS, when started with a certificate.
    tls_port: Option<u16>,
}

/// A certificate authority of the test's own and a certificate it signed for 127.0.0.1, made
/// with openssl in `dir`: (the authority's certificate, the server's certificate, its key).
fn private_certificate_authority(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    let (cert, key, request) = (
        dir.join("server.pem"),
        dir.join("server-key.pem"),
        dir.join("server.csr"),
    );
    let extensions = dir.join("server.ext");
    std::fs::write(
        &extensions,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    common::run_ok(
        tool("openssl")
            .args([
                "req",
                "-x509",
                "-days",
                "1",
                "-subj",
                "/CN=Tally test authority",
            ])
            .args(ec)
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca),
    );
    common::run_ok(
        tool("openssl")
            .args(["req", "-subj", "/CN=127.0.0.1"])
            .args(ec)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&request),
    );
    common::run_ok(
        tool("openssl")
            .args(["x509", "-req", "-days", "1", "-CAcreateserial", "-in"])
            .arg(&request)
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&extensions)
            .arg("-out")
            .arg(&cert),
    );
    (ca, cert, key)
}

impl Relay {
    fn start(dir: &Path) -> Self {
        Self::start_with_certificate(dir, None)
    }

    /// Also takes RTMPS with `certificate` (the certificate's file and its key's).
    fn start_with_certificate(dir: &Path, certificate: Option<(&Path, &Path)>) -> Self {
        let server = common::repo_root().join("tests/relay/node_modules/node-media-server");
        assert!(
            server.is_dir(),
            "node-media-server is not installed: {}",
            common::INSTALL_HINT
        );
        let (port, http_port) = (free_port(), free_port());
        let tls_port = certificate.map(|_| free_port());
        let config = dir.join(format!("relay-{port}.json"));
        let data = dir.join(format!("relay-{port}"));
        let mut settings = serde_json::json!({
            "bind": "127.0.0.1",
            "store": {"path": data, "maxHistory": 100},
            "auth": {"play": false, "publish": false, "secret": ""},
            "rtmp": {"port": port},
            "http": {"port": http_port},
            "webadmin": {"enable": false},
            "record": {"auto": false, "path": data.join("record")},
        });
        if let (Some((cert, key)), Some(tls_port)) = (certificate, tls_port) {
            settings["rtmps"] = serde_json::json!({"port": tls_port, "cert": cert, "key": key});
        }
        std::fs::write(&config, settings.to_string()).unwrap();
        let child = tool("node")
            .arg(server.join("bin/app.js"))
            .arg("--config")
            .arg(&config)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        common::wait_until("the relay listens", Duration::from_secs(20), || {
            common::tcp_port_listening(port) && tls_port.is_none_or(common::tcp_port_listening)
        });
        Self {
            _process: ServerProcess {
                child,
                name: "the relay",
            },
            port,
            tls_port,
        }
    }
}

#[test]
fn hevc_and_av1_are_relayed_over_enhanced_rtmp_and_played_back() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let relay = Relay::start(dir.path());
    for (codec, preset) in [("hevc", "ultrafast"), ("av1", "12")] {
        let url = format!("rtmp://127.0.0.1:{}/live/{codec}", relay.port);
        let mut publisher = tally()
            .arg("stream")
            .arg(&scene)
            .args([
                "--to",
                &url,
                "--duration",
                "8s",
                "--codec",
                codec,
                "--preset",
                preset,
            ])
            .args(["--keyframe-interval", "1", "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let received = dir.path().join(format!("relayed-{codec}.mkv"));
        let played = play_from_relay(&url, "3", &received);
        let (status, said) = wait_with_stderr(&mut publisher);
        assert!(status.success(), "{codec}: tally stream: {said}");
        assert_eq!(
            probe(&received, "v:0", "stream=codec_name,width,height", false),
            [format!("{codec},640,360")],
            "{played}"
        );
        assert_eq!(probe(&received, "a:0", "stream=codec_name", false), ["aac"]);
        assert_eq!(decode_errors(&received), "", "{codec}");
        let frames = video_frames(&received);
        assert!(frames >= 60, "{codec}: {frames} frames in 3 s");
    }
}

/// Plays `url` from a relay with FFmpeg 7 until it gets `seconds` of it into `received`
/// (a player that comes before the publish is turned away, so it tries again).
fn play_from_relay(url: &str, seconds: &str, received: &Path) -> String {
    let ffmpeg7 = common::ffmpeg7();
    let mut played = String::new();
    common::wait_until(
        &format!("nothing to play at {url}"),
        Duration::from_secs(20),
        || {
            let output = std::process::Command::new(&ffmpeg7)
                .args(["-v", "error", "-y", "-rw_timeout", "5000000", "-i", url])
                .args(["-t", seconds, "-c", "copy", "-f", "matroska"])
                .arg(received)
                .output()
                .unwrap();
            played = String::from_utf8_lossy(&output.stderr).to_string();
            output.status.success() && received.exists()
        },
    );
    played
}

#[test]
fn hevc_goes_over_rtmps_checked_against_a_private_authority_and_is_relayed() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let (ca, cert, key) = private_certificate_authority(dir.path());
    let relay = Relay::start_with_certificate(dir.path(), Some((&cert, &key)));
    let tls_port = relay.tls_port.unwrap();
    let mut publisher = tally()
        .arg("stream")
        .arg(&scene)
        .arg("--to")
        .arg(format!("rtmps://127.0.0.1:{tls_port}/live/secure"))
        .arg("--tls-ca-file")
        .arg(&ca)
        .args([
            "--duration",
            "8s",
            "--codec",
            "hevc",
            "--preset",
            "ultrafast",
        ])
        .args(["--keyframe-interval", "1", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let received = dir.path().join("relayed-over-tls.mkv");
    let played = play_from_relay(
        &format!("rtmp://127.0.0.1:{}/live/secure", relay.port),
        "3",
        &received,
    );
    let (status, said) = wait_with_stderr(&mut publisher);
    assert!(status.success(), "tally stream: {said}");
    assert_eq!(
        probe(&received, "v:0", "stream=codec_name,width,height", false),
        ["hevc,640,360"],
        "{played}"
    );
    assert_eq!(decode_errors(&received), "");

    // Without the private authority the certificate is not trusted: refused, key unsaid.
    let (ok, text) = stream(&[
        scene.to_str().unwrap(),
        "--to",
        &format!("rtmps://127.0.0.1:{tls_port}/live/unchecked"),
        "--codec",
        "hevc",
        "--preset",
        "ultrafast",
        "--duration",
        "3s",
        "--max-retries",
        "1",
        "--reconnect-delay",
        "1s",
    ]);
    assert!(
        !ok,
        "an unverifiable certificate must not be accepted:\n{text}"
    );
    assert!(text.contains("TLS: invalid peer certificate"), "{text}");
    assert!(text.contains("--tls-ca-file"), "{text}");
    assert!(!text.contains("unchecked"), "the key was printed:\n{text}");
}

#[test]
fn enhanced_rtmp_announces_its_codecs_in_connect_as_a_real_server_parser_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let probe_script = common::repo_root().join("tests/relay/publish_probe.js");
    let mut server = tool("node")
        .arg(&probe_script)
        .env(
            "NODE_PATH",
            common::repo_root().join("tests/relay/node_modules"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = read_lines_in_background(&mut server);
    wait_for_line(&lines, "listening", Duration::from_secs(20));
    let listening: serde_json::Value = serde_json::from_str(&lines.lock().unwrap()[0]).unwrap();
    let port = listening["port"].as_u64().unwrap();
    let (ok, text) = stream(&[
        scene.to_str().unwrap(),
        "--to",
        &format!("rtmp://127.0.0.1:{port}/live/announced"),
        "--codec",
        "av1",
        "--preset",
        "12",
        "--keyframe-interval",
        "1",
        "--duration",
        "2s",
    ]);
    assert!(ok, "{text}");
    assert!(server.wait().unwrap().success());
    let lines = lines.lock().unwrap().clone();
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let publish = events
        .iter()
        .find(|event| event["event"] == "publish")
        .unwrap_or_else(|| panic!("no publish: {lines:?}"));
    assert_eq!(publish["stream"], "announced");
    let connect = &publish["connect"];
    assert_eq!(connect["app"], "live");
    assert_eq!(connect["tcUrl"], format!("rtmp://127.0.0.1:{port}/live"));
    assert_eq!(connect["fourCcList"], serde_json::json!(["av01", "hvc1"]));
    let closed = events.last().unwrap();
    assert_eq!(closed["event"], "closed", "{lines:?}");
    let av01 = u64::from(u32::from_be_bytes(*b"av01"));
    assert_eq!(closed["videoCodecs"], serde_json::json!([av01]));
    let packets = &closed["packets"];
    assert_eq!(packets["videoHeader"], 1, "{lines:?}");
    assert_eq!(packets["audioHeader"], 1, "{lines:?}");
    assert_eq!(packets["script"], 1, "{lines:?}");
    let keyframes = packets["keyframe"].as_u64().unwrap();
    let frames = keyframes + packets["frame"].as_u64().unwrap();
    assert!(frames.abs_diff(60) <= 2, "{frames} frames of 60: {lines:?}");
    assert!(keyframes >= 2, "one a second: {lines:?}");
    assert!(packets["audio"].as_u64().unwrap() >= 90, "{lines:?}");
}

/// Waits for `child` to end: how it ended, and what it wrote to its (piped) stderr.
/// The frames the engine skipped, from `tally`'s summary ("N rendered, N lagged, N skipped").
fn frames_skipped(summary: &str) -> u64 {
    summary
        .split(',')
        .find_map(|field| field.trim().strip_suffix(" skipped"))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no skipped count in the summary: {summary}"))
}

fn wait_with_stderr(child: &mut Child) -> (std::process::ExitStatus, String) {
    let mut said = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        stderr.read_to_string(&mut said).unwrap();
    }
    (child.wait().unwrap(), said)
}

/// A server process the test started, killed when dropped (and reaped, so none outlives it).
struct ServerProcess {
    child: Child,
    name: &'static str,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Err(error) = self.child.kill() {
            eprintln!("{}: {error}", self.name);
        }
        if let Err(error) = self.child.wait() {
            eprintln!("{}: {error}", self.name);
        }
    }
}

/// The HLS playlists as the m3u8 package (PyPI, installed by packaging/install-deps.sh) reads
/// them: the master's variants and each media playlist.
fn read_playlists(master: &str) -> serde_json::Value {
    let python = common::repo_root().join("tests/hls/.venv/bin/python");
    assert!(
        python.exists(),
        "the m3u8 parser is not installed: {}",
        common::INSTALL_HINT
    );
    let output = std::process::Command::new(python)
        .arg(common::repo_root().join("tests/hls/read_playlists.py"))
        .arg(master)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Decodes an HLS media playlist from its first listed segment with FFmpeg: (video frames,
/// errors). A playlist without an end (live, or cut short by a crash) is read again only a
/// few times, where FFmpeg's default would wait for new segments for a thousand reloads.
/// `frames` stops it early: a live stream's server stops with the stream, before a player
/// that follows in real time has the last segments.
fn decode_hls(playlist: &str, frames: Option<u64>) -> (u64, String) {
    let mut command = tool("ffmpeg");
    command
        .args(["-v", "error", "-m3u8_hold_counters", "2"])
        .args(["-live_start_index", "0", "-i", playlist, "-map", "0:v:0"]);
    if let Some(frames) = frames {
        command.args(["-frames:v", &frames.to_string()]);
    }
    let output = command.args(["-f", "framecrc", "-"]).output().unwrap();
    let frames = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with("0,"))
        .count() as u64;
    let mut errors = String::from_utf8_lossy(&output.stderr).to_string();
    if !output.status.success() {
        errors.push_str(&format!("\nffmpeg exited with {}", output.status));
    }
    (frames, errors)
}

/// A loopback address with a port free a moment ago, for a server a test starts.
fn free_loopback_address() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// `tally stream SCENE --hls-dir FOLDER --hls-serve ADDRESS --quiet`, for the caller's own
/// options and where its output goes.
fn hls_serving(scene: &Path, folder: &Path, address: std::net::SocketAddr) -> Command {
    let mut command = tally();
    command
        .arg("stream")
        .arg(scene)
        .arg("--hls-dir")
        .arg(folder)
        .arg("--hls-serve")
        .arg(address.to_string())
        .arg("--quiet");
    command
}

/// Waits until Tally's server (or an origin) at `address` serves `path` holding `text`.
fn wait_until_served(address: std::net::SocketAddr, path: &str, text: &str, within: Duration) {
    common::wait_until(&format!("{path} to hold {text}"), within, || {
        http_get(address, path).is_some_and(|(code, body)| {
            code == 200 && String::from_utf8_lossy(&body).contains(text)
        })
    });
}

fn segment_files(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name.starts_with("segment-"))
        .collect();
    names.sort();
    names
}

#[test]
fn hls_is_served_over_http_follows_the_spec_and_decodes_through_http() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let folder = dir.path().join("hls");
    let address = free_loopback_address();
    let mut publisher = hls_serving(&scene, &folder, address)
        .args(["--duration", "9s", "--keyframe-interval", "1"])
        .args(["--hls-segment", "1s", "--hls-window", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let master = format!("http://{address}/live/master.m3u8");
    // Live: the window has moved on once segment 4 is listed.
    wait_until_served(
        address,
        "/live/media.m3u8",
        "segment-000004.m4s",
        Duration::from_secs(20),
    );
    let live = read_playlists(&master);
    assert_eq!(live["variants"].as_array().unwrap().len(), 1, "{live}");
    let variant = &live["variants"][0];
    assert_eq!(variant["resolution"], serde_json::json!([640, 360]));
    let codecs = variant["codecs"].as_str().unwrap();
    assert!(
        codecs.starts_with("avc1.") && codecs.contains("mp4a.40.2"),
        "{codecs}"
    );
    assert!(variant["bandwidth"].as_u64().unwrap() > 2_000_000, "{live}");
    let media = &live["media"][0];
    assert_eq!(media["target_duration"], 1, "{media}");
    assert_eq!(media["independent_segments"], true);
    assert_eq!(media["init"], serde_json::json!(["init.mp4"]));
    assert_eq!(media["endlist"], false, "still live: {media}");
    assert!(media["media_sequence"].as_u64().unwrap() >= 2, "{media}");
    let segments = media["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 3, "the window: {media}");
    for segment in segments {
        assert_eq!(segment["duration"].as_f64().unwrap(), 1.0, "{media}");
        let uri = segment["uri"].as_str().unwrap();
        let (code, body) = http_get(address, &format!("/live/{uri}")).unwrap();
        assert_eq!(code, 200, "{uri}");
        assert!(!body.is_empty(), "{uri}");
    }
    // What the playlist no longer lists has gone from the server and from the disk, but one
    // segment back, kept for players still fetching it.
    let first_listed = media["media_sequence"].as_u64().unwrap();
    let gone = format!("segment-{:06}.m4s", first_listed - 2);
    assert_eq!(http_get(address, &format!("/live/{gone}")).unwrap().0, 404);
    assert!(!folder.join(&gone).exists());
    assert_eq!(http_get(address, "/live/../secret.m3u8").unwrap().0, 404);
    // FFmpeg plays the live stream through HTTP, from the oldest segment listed to the end.
    let media_url = format!("http://{address}/live/media.m3u8");
    // (ffprobe lists the stream once in its program and once on its own.)
    let probed = probe(
        Path::new(&media_url),
        "v:0",
        "stream=codec_name,width,height",
        false,
    );
    assert!(
        !probed.is_empty() && probed.iter().all(|line| line == "h264,640,360"),
        "{probed:?}"
    );
    let (frames, errors) = decode_hls(&media_url, Some(90));
    assert_eq!(errors, "");
    assert_eq!(frames, 90, "through HTTP");
    let (status, said) = wait_with_stderr(&mut publisher);
    assert!(status.success(), "{said}");
    assert!(said.contains(&master), "the URL is printed: {said}");
    // At the end the playlist says so, and the folder holds the window and no more.
    let ended = read_playlists(folder.join("master.m3u8").to_str().unwrap());
    assert_eq!(ended["media"][0]["endlist"], true, "{ended}");
    assert!(
        segment_files(&folder).len() <= 4,
        "{:?}",
        segment_files(&folder)
    );
    assert!(
        http_get(address, "/live/master.m3u8").is_none(),
        "the server stopped"
    );
}

#[test]
fn hls_killed_mid_stream_leaves_a_playable_playlist_and_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let folder = dir.path().join("hls");
    let mut publisher = tally()
        .arg("stream")
        .arg(&scene)
        .arg("--hls-dir")
        .arg(&folder)
        .args(["--duration", "60s", "--keyframe-interval", "1"])
        .args(["--hls-segment", "1s", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let playlist = folder.join("media.m3u8");
    common::wait_until("three segments listed", Duration::from_secs(20), || {
        std::fs::read_to_string(&playlist).is_ok_and(|text| text.contains("segment-000002.m4s"))
    });
    publisher.kill().unwrap();
    publisher.wait().unwrap();
    let read = read_playlists(folder.join("master.m3u8").to_str().unwrap());
    let media = &read["media"][0];
    assert_eq!(media["endlist"], false, "{media}");
    for segment in media["segments"].as_array().unwrap() {
        let uri = segment["uri"].as_str().unwrap();
        assert!(folder.join(uri).exists(), "{uri} is listed but missing");
    }
    let (frames, errors) = decode_hls(playlist.to_str().unwrap(), None);
    assert_eq!(errors, "");
    assert!(frames >= 90, "{frames} frames");

    // A second stream into the same folder would overwrite the first: refused.
    let (ok, text) = stream(&[
        scene.to_str().unwrap(),
        "--hls-dir",
        folder.to_str().unwrap(),
        "--duration",
        "1s",
    ]);
    assert!(!ok, "{text}");
    assert!(text.contains("already holds an HLS stream"), "{text}");
    assert!(text.contains("--overwrite"), "{text}");
}

#[test]
fn a_recording_and_a_stream_at_their_own_profiles_and_a_squeeze_lowers_only_the_stream() {
    let server = RtmpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let recording = dir.path().join("full.mp4");
    // 200 kbit/s for 10 s (the small picture needs about 500), then full speed.
    let proxy = throttling_proxy(server.port, 25_000, Duration::from_secs(10));
    let url = format!("rtmp://127.0.0.1:{proxy}/live/small");
    let (ok, text) = stream(&[
        scene.to_str().unwrap(),
        "--to",
        &url,
        "--profile",
        "small=size=320x180,bitrate=1500",
        "--stream-profile",
        "small",
        "--adaptive-bitrate",
        "--record",
        recording.to_str().unwrap(),
        "--bitrate",
        "2500",
        "--duration",
        "14s",
    ]);
    assert!(ok, "{text}");
    // The stream's encode came down; the recording's (the run's own) never changed.
    let adapted: Vec<u32> = text
        .lines()
        .filter(|line| line.contains("profile small: H.264 (libx264) 320x180, 1500 kbps"))
        .filter_map(|line| {
            line.split("adapted to ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let lowest = *adapted
        .iter()
        .min()
        .unwrap_or_else(|| panic!("the stream's bitrate never changed:\n{text}"));
    assert!(lowest < 500, "only down to {lowest} kbps:\n{text}");
    assert!(
        !text.contains("video encoder bitrate"),
        "the recording's encoder was adapted too:\n{text}"
    );
    assert_eq!(
        probe(&recording, "v:0", "stream=width,height", false),
        ["640,360"]
    );
    // The recording's video kept its rate through the squeeze: as many bits a second while
    // the link was squeezed as after.
    let squeezed = video_kbps_between(&recording, 3.0, 9.0);
    let after = video_kbps_between(&recording, 10.0, 14.0);
    assert!(
        squeezed > after * 0.7,
        "the recording fell to {squeezed:.0} kbps while the stream was squeezed ({after:.0} after)"
    );
    assert_eq!(decode_errors(&recording), "");
    let received = server.recording("small");
    assert_eq!(
        probe(&received, "v:0", "stream=width,height", false),
        ["320,180"]
    );
    assert_eq!(decode_errors(&received), "");
}

/// The video bitrate of `file` (kbps) over its show time from `from` to `to` (seconds).
fn video_kbps_between(file: &Path, from: f64, to: f64) -> f64 {
    let bytes: u64 = probe(file, "v:0", "packet=pts_time,size", false)
        .iter()
        .filter_map(|line| {
            let (time, size) = line.split_once(',')?;
            let time: f64 = time.parse().ok()?;
            (from..to)
                .contains(&time)
                .then(|| size.parse::<u64>().ok())?
        })
        .sum();
    bytes as f64 * 8.0 / 1000.0 / (to - from)
}

/// Keyframe times (seconds) of `playlist`'s video, from its first listed segment.
fn keyframe_times(playlist: &Path) -> Vec<String> {
    let output = tool("ffprobe")
        .args([
            "-v",
            "error",
            "-live_start_index",
            "0",
            "-select_streams",
            "v:0",
        ])
        .args(["-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(playlist)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.ends_with(",K_") || line.ends_with(",K"))
        .filter_map(|line| line.split(',').next().map(str::to_string))
        .collect()
}

#[test]
fn an_hls_ladder_has_a_rendition_per_profile_scaled_with_keyframes_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let folder = dir.path().join("ladder");
    let address = free_loopback_address();
    let mut publisher = hls_serving(&scene, &folder, address)
        .args([
            "--ladder",
            "360p,low",
            "--profile",
            "low=size=320x180,bitrate=400",
        ])
        .args([
            "--duration",
            "6s",
            "--keyframe-interval",
            "1",
            "--hls-segment",
            "1s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_until(
        "the ladder's master playlist",
        Duration::from_secs(20),
        || http_get(address, "/live/master.m3u8").is_some_and(|(code, _)| code == 200),
    );
    let live = read_playlists(&format!("http://{address}/live/master.m3u8"));
    let variants = live["variants"].as_array().unwrap();
    let resolutions: Vec<&serde_json::Value> = variants.iter().map(|v| &v["resolution"]).collect();
    assert_eq!(
        resolutions,
        [
            &serde_json::json!([640, 360]),
            &serde_json::json!([320, 180])
        ],
        "{live}"
    );
    let bandwidth = |index: usize| variants[index]["bandwidth"].as_u64().unwrap();
    assert!(bandwidth(0) > bandwidth(1), "{live}");
    for media in live["media"].as_array().unwrap() {
        assert_eq!(media["init"], serde_json::json!(["init.mp4"]), "{media}");
    }
    let (status, said) = wait_with_stderr(&mut publisher);
    assert!(status.success(), "{said}");
    let full = folder.join("360p/media.m3u8");
    let low = folder.join("low/media.m3u8");
    for (playlist, size) in [(&full, "640,360"), (&low, "320,180")] {
        let probed = probe(playlist, "v:0", "stream=width,height", false);
        assert!(probed.iter().all(|line| line == size), "{probed:?}");
        let (frames, errors) = decode_hls(playlist.to_str().unwrap(), None);
        assert_eq!(errors, "", "{}", playlist.display());
        assert!(frames >= 120, "{frames} frames in {}", playlist.display());
    }
    // A player switching renditions at a keyframe finds one at the same instant in each.
    let (full_keys, low_keys) = (keyframe_times(&full), keyframe_times(&low));
    assert!(full_keys.len() >= 4, "{full_keys:?}");
    assert_eq!(full_keys, low_keys);
}

/// nginx as an HLS origin that takes uploads (its WebDAV module: PUT) on a loopback
/// port and serves what it holds; killed when dropped.
struct HttpOrigin {
    _process: ServerProcess,
    port: u16,
    root: PathBuf,
}

impl HttpOrigin {
    fn start(dir: &Path) -> Self {
        Self::start_on(dir, free_port())
    }

    fn start_on(dir: &Path, port: u16) -> Self {
        Self::start_with(dir, port, None)
    }

    /// Also over TLS with `certificate` (the certificate's file and its key's): HTTPS only.
    fn start_with(dir: &Path, port: u16, certificate: Option<(&Path, &Path)>) -> Self {
        let root = dir.join(format!("origin-{port}"));
        std::fs::create_dir_all(root.join("www")).unwrap();
        let listen = match certificate {
            None => format!("listen 127.0.0.1:{port};"),
            Some((cert, key)) => format!(
                "listen 127.0.0.1:{port} ssl; ssl_certificate {}; ssl_certificate_key {};",
                cert.display(),
                key.display()
            ),
        };
        let config = format!(
            "daemon off;\nmaster_process off;\npid {root}/nginx.pid;\n\
             error_log {root}/error.log info;\nevents {{ worker_connections 64; }}\n\
             http {{\n  client_body_temp_path {root}/body;\n  access_log {root}/access.log;\n\
             server {{\n    {listen}\n    root {root}/www;\n\
             location /live/ {{ dav_methods PUT DELETE; create_full_put_path on; \
             client_max_body_size 64m; }}\n  }}\n}}\n",
            root = root.display()
        );
        std::fs::write(root.join("nginx.conf"), config).unwrap();
        let child = tool("nginx")
            .arg("-p")
            .arg(&root)
            .arg("-c")
            .arg(root.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        common::wait_until("the origin listens", Duration::from_secs(10), || {
            common::tcp_port_listening(port)
        });
        Self {
            _process: ServerProcess {
                child,
                name: "the origin",
            },
            port,
            root,
        }
    }

    /// Where an uploaded `path` (under /live/) is on disk.
    fn file(&self, path: &str) -> PathBuf {
        self.root.join("www/live").join(path)
    }

    /// The requests it answered, one line each (method, path, status).
    fn requests(&self) -> String {
        std::fs::read_to_string(self.root.join("access.log")).unwrap_or_default()
    }
}

#[test]
fn hls_is_pushed_to_an_origin_with_put_and_plays_back_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let origin = HttpOrigin::start(dir.path());
    let url = format!("http://127.0.0.1:{}/live/secret-key/", origin.port);
    let (ok, text) = stream(&[
        scene.to_str().unwrap(),
        "--hls-push",
        &url,
        "--duration",
        "7s",
        "--keyframe-interval",
        "1",
        "--hls-segment",
        "1s",
        "--hls-window",
        "3",
    ]);
    assert!(ok, "{text}");
    assert!(!text.contains("secret-key"), "the key was printed:\n{text}");
    assert!(text.contains("live/****"), "{text}");
    let requests = origin.requests();
    assert!(
        requests.contains("\"PUT /live/secret-key/init.mp4"),
        "{requests}"
    );
    assert!(!requests.contains("\" 4"), "refused uploads:\n{requests}");
    // Segments that left the window are deleted from the origin too, one move late.
    assert!(
        requests.contains("\"DELETE /live/secret-key/segment-"),
        "{requests}"
    );
    let on_origin = std::fs::read_dir(origin.file("secret-key"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("segment-")
        })
        .count();
    assert!(on_origin <= 4, "{on_origin} segments on the origin");
    assert!(text.contains("HLS push to"), "{text}");
    // What the origin holds plays back through it, to the end.
    let master = format!(
        "http://127.0.0.1:{}/live/secret-key/master.m3u8",
        origin.port
    );
    let read = read_playlists(&master);
    let media = &read["media"][0];
    assert_eq!(media["endlist"], true, "{media}");
    assert_eq!(media["segments"].as_array().unwrap().len(), 3, "{media}");
    assert!(origin.file("secret-key/init.mp4").exists());
    let (frames, errors) = decode_hls(
        &format!(
            "http://127.0.0.1:{}/live/secret-key/media.m3u8",
            origin.port
        ),
        None,
    );
    assert_eq!(errors, "");
    assert!(frames >= 60, "{frames} frames");
}

/// The live position of an LL-HLS media playlist's text: (the segment being written, its
/// parts listed so far).
fn live_edge(playlist: &str) -> (u64, u64) {
    let mut sequence = 0;
    let mut segments = 0;
    let mut parts = 0;
    for line in playlist.lines() {
        if let Some(number) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            sequence = number.parse().unwrap();
        } else if line.starts_with("#EXT-X-PART:") {
            parts += 1;
        } else if !line.is_empty() && !line.starts_with('#') {
            segments += 1;
            parts = 0;
        }
    }
    (sequence + segments, parts)
}

#[test]
fn low_latency_hls_lists_parts_holds_playlist_reloads_and_parts_come_at_their_duration() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let folder = dir.path().join("hls");
    let address = free_loopback_address();
    let mut publisher = hls_serving(&scene, &folder, address)
        .args([
            "--duration",
            "12s",
            "--keyframe-interval",
            "1",
            "--low-latency",
        ])
        .args([
            "--hls-segment",
            "1s",
            "--hls-window",
            "4",
            "--hls-part",
            "500ms",
        ])
        // The summary says how many frames the engine skipped on a busy machine.
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let master = format!("http://{address}/live/master.m3u8");
    wait_until_served(
        address,
        "/live/media.m3u8",
        "segment-000002.m4s",
        Duration::from_secs(20),
    );
    let live = read_playlists(&master);
    let variant = &live["variants"][0];
    assert_eq!(variant["resolution"], serde_json::json!([640, 360]));
    assert!(variant["codecs"].as_str().unwrap().starts_with("avc1.64"));
    let media = &live["media"][0];
    assert_eq!(media["part_target"], 0.5, "{media}");
    assert_eq!(media["can_block_reload"], "YES", "{media}");
    assert!(media["part_hold_back"].as_f64().unwrap() >= 1.0, "{media}");
    assert_eq!(media["preload_hint"]["type"], "PART", "{media}");
    assert_eq!(media["target_duration"], 1, "{media}");
    assert_eq!(media["endlist"], false, "{media}");
    let segments = media["segments"].as_array().unwrap();
    let whole: Vec<_> = segments.iter().filter(|s| !s["uri"].is_null()).collect();
    assert!(whole.len() >= 3, "{media}");
    // The last whole segments list their parts: each no longer than the part target, the first
    // starting with a keyframe, together as long as the segment, and the segment's file is
    // its parts' files one after another.
    let with_parts = whole.last().unwrap();
    let parts = with_parts["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{media}");
    assert_eq!(parts[0]["independent"], true, "{media}");
    let total: f64 = parts.iter().map(|p| p["duration"].as_f64().unwrap()).sum();
    assert!(
        (total - with_parts["duration"].as_f64().unwrap()).abs() < 0.001,
        "{media}"
    );
    let mut joined = Vec::new();
    for part in parts {
        assert!(part["duration"].as_f64().unwrap() <= 0.5, "{media}");
        let (code, body) =
            http_get(address, &format!("/live/{}", part["uri"].as_str().unwrap())).unwrap();
        assert_eq!(code, 200);
        joined.extend(body);
    }
    let (code, segment) = http_get(
        address,
        &format!("/live/{}", with_parts["uri"].as_str().unwrap()),
    )
    .unwrap();
    assert_eq!(code, 200);
    assert!(segment == joined, "a segment is its parts");

    // Blocking reloads: asking for the next part answers once it is listed, part after part,
    // half a second apart (a loose bound: the machine is shared).
    let (_, body) = http_get(address, "/live/media.m3u8").unwrap();
    let (mut msn, mut part) = live_edge(&String::from_utf8_lossy(&body));
    let mut arrivals = Vec::new();
    for _ in 0..8 {
        let (code, body) = http_get(
            address,
            &format!("/live/media.m3u8?_HLS_msn={msn}&_HLS_part={part}"),
        )
        .unwrap();
        arrivals.push(std::time::Instant::now());
        assert_eq!(code, 200);
        let text = String::from_utf8_lossy(&body).to_string();
        assert!(
            text.contains(&format!("URI=\"segment-{msn:06}.{part}.m4s\"")),
            "asked for part {part} of {msn}: {text}"
        );
        (msn, part) = live_edge(&text);
    }
    let mean = (arrivals[7] - arrivals[0]).as_secs_f64() / 7.0;
    assert!((0.3..0.8).contains(&mean), "parts {mean:.3} s apart");
    // The part the preload hint names is answered once it is written.
    let (_, body) = http_get(address, "/live/media.m3u8").unwrap();
    let text = String::from_utf8_lossy(&body).to_string();
    let hinted = text
        .lines()
        .find_map(|line| line.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let (code, body) = http_get(address, &format!("/live/{hinted}")).unwrap();
    assert_eq!(code, 200, "{hinted}");
    assert!(
        body.starts_with(&[0, 0]) && &body[4..8] == b"moof",
        "{hinted}"
    );
    // Asking too far ahead is refused at once.
    let (edge, _) = live_edge(&text);
    let (code, _) = http_get(address, &format!("/live/media.m3u8?_HLS_msn={}", edge + 5)).unwrap();
    assert_eq!(code, 400);

    let media_url = format!("http://{address}/live/media.m3u8");
    let (frames, errors) = decode_hls(&media_url, Some(60));
    assert_eq!(errors, "");
    assert_eq!(frames, 60, "through HTTP");
    let (status, said) = wait_with_stderr(&mut publisher);
    assert!(status.success(), "{said}");
    let ended = read_playlists(folder.join("master.m3u8").to_str().unwrap());
    assert_eq!(ended["media"][0]["endlist"], true, "{ended}");
    assert!(ended["media"][0]["preload_hint"].is_null(), "{ended}");
    let mut summary = String::new();
    publisher
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut summary)
        .unwrap();
    let skipped = frames_skipped(&summary);
    let (frames, errors) = decode_hls(folder.join("media.m3u8").to_str().unwrap(), None);
    assert_eq!(errors, "");
    // Four whole segments of 30 frames, less any frame the engine skipped on a busy machine.
    assert!(
        frames + skipped >= 4 * 30,
        "the window of four segments: {frames} frames, {skipped} skipped"
    );
}

/// A canvas filled by the bundled clip (motion, so the renditions' bitrates differ).
fn clip_scene(dir: &Path) -> PathBuf {
    common::write_scene(
        dir,
        "clip.toml",
        r#"
[canvas]
width = 640
height = 360
fps = 30

[[sources]]
id = "clip"
kind = "media"
path = "ASSETS/clip.mp4"

[[scenes]]
name = "Clip"

[[scenes.items]]
source = "clip"
"#,
    )
}

#[test]
fn low_latency_hls_plays_in_chromium_with_hls_js_and_switches_down_on_a_limited_link() {
    let browser = common::repo_root().join("tests/browser");
    assert!(
        browser.join("node_modules/hls.js").exists() && Path::new("/usr/bin/chromium").exists(),
        "hls.js, puppeteer-core or Chromium is not installed: {}",
        common::INSTALL_HINT
    );
    let dir = tempfile::tempdir().unwrap();
    let scene = clip_scene(dir.path());
    let address = free_loopback_address();
    let publisher = hls_serving(&scene, &dir.path().join("hls"), address)
        .args([
            "--duration",
            "120s",
            "--keyframe-interval",
            "1",
            "--low-latency",
        ])
        .args(["--hls-segment", "1s"])
        .args(["--profile", "high=size=640x360,bitrate=1200"])
        .args(["--profile", "low=size=320x180,bitrate=250"])
        .args(["--ladder", "high,low"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _publisher = ServerProcess {
        child: publisher,
        name: "tally",
    };
    common::wait_until(
        "the ladder's master playlist",
        Duration::from_secs(30),
        || http_get(address, "/live/master.m3u8").is_some_and(|(code, _)| code == 200),
    );
    // The high rendition needs about 1.5 Mbit/s: at 600 kbit/s hls.js must switch down.
    let output = std::process::Command::new("node")
        .arg(browser.join("play_hls.js"))
        .arg(format!("http://{address}/live/master.m3u8"))
        .args([
            "--watch",
            "5",
            "--limit-kbps",
            "600",
            "--switch-within",
            "40",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(said.trim()).unwrap();
    assert_eq!(report["mse_h264"], true, "{report}");
    let levels = report["watched"]["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 2, "{report}");
    assert_eq!(
        report["watched"]["level"], 1,
        "on the top rendition first: {report}"
    );
    assert_eq!(report["limited"]["level"], 0, "{report}");
    assert!(
        report["after_switch"]["position"].as_f64().unwrap()
            > report["limited"]["position"].as_f64().unwrap(),
        "{report}"
    );
    // Latency from the compositor to the screen: read from the page, checked only for sense
    // here (bench/ll_hls_latency.sh measures it).
    assert!(
        report["frames_measured"].as_u64().unwrap() >= 60,
        "{report}"
    );
    let median = report["latency_ms"]["median"].as_f64().unwrap();
    assert!((0.0..10_000.0).contains(&median), "{report}");
}

#[test]
fn a_low_latency_ladder_is_pushed_to_an_origin_which_never_lists_what_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let scene = clip_scene(dir.path());
    let origin = HttpOrigin::start(dir.path());
    let url = format!("http://127.0.0.1:{}/live/key/", origin.port);
    let mut publisher = tally()
        .arg("stream")
        .arg(&scene)
        .args(["--hls-push", &url, "--low-latency", "--duration", "8s"])
        .args(["--keyframe-interval", "1", "--hls-segment", "1s", "--quiet"])
        .args(["--profile", "high=size=640x360,bitrate=1000"])
        .args(["--profile", "low=size=320x180,bitrate=300"])
        .args(["--ladder", "high,low"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let address: std::net::SocketAddr = format!("127.0.0.1:{}", origin.port).parse().unwrap();
    // While it is live, every playlist the origin serves names only files it holds.
    wait_until_served(
        address,
        "/live/key/low/media.m3u8",
        "#EXT-X-PART:",
        Duration::from_secs(30),
    );
    for _ in 0..5 {
        for rendition in ["high", "low"] {
            let Some((200, body)) = http_get(address, &format!("/live/key/{rendition}/media.m3u8"))
            else {
                continue;
            };
            let playlist = String::from_utf8_lossy(&body).to_string();
            for line in playlist.lines() {
                let named = if line.starts_with("#EXT-X-PRELOAD-HINT") {
                    None
                } else if let Some((_, rest)) = line.split_once("URI=\"") {
                    rest.split_once('"').map(|(uri, _)| uri.to_string())
                } else if !line.starts_with('#') && !line.is_empty() {
                    Some(line.to_string())
                } else {
                    None
                };
                let Some(named) = named else { continue };
                let path = format!("/live/key/{rendition}/{named}");
                let (code, _) = http_get(address, &path).unwrap();
                // A segment may leave the window between the two requests, never arrive late.
                let media_sequence: u64 = playlist
                    .lines()
                    .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
                    .unwrap()
                    .parse()
                    .unwrap();
                let old = named
                    .strip_prefix("segment-")
                    .and_then(|rest| rest.split('.').next())
                    .and_then(|number| number.parse::<u64>().ok())
                    .is_some_and(|number| number <= media_sequence);
                assert!(code == 200 || old, "{path}: {code}\n{playlist}");
            }
        }
    }
    let (status, said) = wait_with_stderr(&mut publisher);
    assert!(status.success(), "{said}");
    assert!(!said.contains("/key/"), "the key was printed: {said}");
    let requests = origin.requests();
    let refused: Vec<&str> = requests
        .lines()
        .filter(|line| !line.contains("\"GET ") && line.contains("\" 4"))
        .collect();
    assert!(
        refused.is_empty(),
        "refused uploads:\n{}",
        refused.join("\n")
    );
    let master = format!("http://{address}/live/key/master.m3u8");
    let read = read_playlists(&master);
    let heights: Vec<_> = read["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|variant| variant["resolution"][1].as_u64().unwrap())
        .collect();
    assert_eq!(heights, [360, 180], "{read}");
    for media in read["media"].as_array().unwrap() {
        assert_eq!(media["endlist"], true, "{media}");
        assert_eq!(media["part_target"], 0.5, "{media}");
        // Pushed numbers start from the time in seconds: a later run reuses no name.
        assert!(
            media["media_sequence"].as_u64().unwrap() > 1_700_000_000,
            "{media}"
        );
        let (frames, errors) = decode_hls(media["uri"].as_str().unwrap(), None);
        assert_eq!(errors, "", "{media}");
        assert!(frames >= 5 * 30, "{frames} frames: {media}");
    }
}

#[test]
fn an_hls_push_retries_until_the_origin_answers_and_sends_what_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let folder = dir.path().join("hls");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/live/key/");
    let mut publisher = tally()
        .arg("stream")
        .arg(&scene)
        .arg("--hls-dir")
        .arg(&folder)
        .args([
            "--hls-push",
            &url,
            "--duration",
            "8s",
            "--keyframe-interval",
            "1",
        ])
        .args(["--hls-segment", "1s", "--reconnect-delay", "200ms"])
        .args(["--reconnect-max-delay", "500ms", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nothing listens yet: the first segments are written here but cannot go up.
    common::wait_until("two segments written", Duration::from_secs(20), || {
        folder.exists() && segment_files(&folder).len() >= 2
    });
    let origin = HttpOrigin::start_on(dir.path(), port);
    let (status, said) = wait_with_stderr(&mut publisher);
    assert!(status.success(), "{said}");
    assert!(
        said.contains("HLS push"),
        "the failures were reported: {said}"
    );
    assert!(!said.contains("/key/"), "the key was printed: {said}");
    let failed: u64 = said
        .split(" failed attempts")
        .next()
        .and_then(|head| head.rsplit(", ").next())
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0);
    assert!(failed >= 1, "{said}");
    let read = read_playlists(&format!("http://127.0.0.1:{port}/live/key/master.m3u8"));
    let media = &read["media"][0];
    assert_eq!(media["endlist"], true, "{media}");
    let (frames, errors) = decode_hls(media["uri"].as_str().unwrap(), None);
    assert_eq!(errors, "");
    assert!(frames >= 5 * 30, "{frames} frames");
    drop(origin);
}

#[test]
fn hls_is_pushed_over_https_checked_against_a_private_authority() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let (ca, cert, key) = private_certificate_authority(dir.path());
    let origin = HttpOrigin::start_with(dir.path(), free_port(), Some((&cert, &key)));
    let push = |key: &str, ca_file: Option<&Path>| {
        let url = format!("https://127.0.0.1:{}/live/{key}/", origin.port);
        let mut args = vec![
            scene.to_str().unwrap(),
            "--hls-push",
            &url,
            "--duration",
            "3s",
        ];
        args.extend(["--keyframe-interval", "1", "--hls-segment", "1s"]);
        args.extend(["--max-retries", "1", "--reconnect-delay", "200ms"]);
        if let Some(ca_file) = ca_file {
            args.extend(["--tls-ca-file", ca_file.to_str().unwrap()]);
        }
        stream(&args)
    };
    let (ok, text) = push("tls-key", Some(&ca));
    assert!(ok, "{text}");
    assert!(text.contains(", 0 failed attempts"), "{text}");
    assert!(!text.contains("tls-key"), "the key was printed:\n{text}");
    let read = read_playlists(origin.file("tls-key/master.m3u8").to_str().unwrap());
    let media = &read["media"][0];
    assert_eq!(media["endlist"], true, "{media}");
    let playlist = origin.file("tls-key/media.m3u8");
    let (frames, errors) = decode_hls(playlist.to_str().unwrap(), None);
    assert_eq!(errors, "");
    assert!(frames >= 2 * 30, "{frames} frames");

    // Without the private authority the origin's certificate is not trusted: nothing is
    // sent, the run fails saying why and what to do, and the key stays unsaid.
    let (ok, text) = push("unchecked", None);
    assert!(
        !ok,
        "an unverifiable certificate must not be accepted:\n{text}"
    );
    assert!(text.contains("TLS: invalid peer certificate"), "{text}");
    assert!(text.contains("--tls-ca-file"), "{text}");
    assert!(!text.contains("unchecked"), "the key was printed:\n{text}");
    assert!(!origin.file("unchecked").exists());
}
