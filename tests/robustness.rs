//! What a hostile but fair user feeds Tally, and every way of stopping it: each test here is a
//! defect that once crashed Tally, lost a recording or destroyed a file, run through the real
//! `tally` binary (or the engine) and checked with the system ffprobe and ffmpeg.

mod common;

use common::{
    decode_errors, free_port, pattern_scene, probe, repo_root, run, stderr, stdout, tally,
    write_scene,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A 320x240 collection with one source of `kind` reading `path` (written as given), shown.
fn one_source_scene(dir: &Path, name: &str, kind: &str, key: &str, path: &Path) -> PathBuf {
    let text_line = if kind == "text" {
        "text = \"Hi\"\n"
    } else {
        ""
    };
    write_scene(
        dir,
        name,
        &format!(
            "[canvas]\nwidth = 320\nheight = 240\nfps = 30\n\n[[sources]]\nid = \"s\"\n\
             kind = \"{kind}\"\n{text_line}{key} = \"{}\"\n\n[[scenes]]\nname = \"S\"\n\
             items = [{{ source = \"s\" }}]\n",
            path.display()
        ),
    )
}

/// The first bytes of the bundled clip: a header that promises more than the file holds.
fn truncated_clip(dir: &Path) -> PathBuf {
    let clip = std::fs::read(repo_root().join("assets/clip.mp4")).unwrap();
    let path = dir.join("truncated.mp4");
    std::fs::write(&path, &clip[..20_000]).unwrap();
    path
}

#[test]
fn check_opens_every_file_a_collection_names_and_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let empty_png = dir.path().join("empty.png");
    std::fs::write(&empty_png, b"").unwrap();
    let text_as_png = dir.path().join("notes.png");
    std::fs::write(&text_as_png, b"this is not a picture\n").unwrap();
    let folder = dir.path().join("pictures");
    std::fs::create_dir(&folder).unwrap();
    let logo = repo_root().join("assets/logo.png");
    let cases = [
        ("image", "path", empty_png.clone(), "empty.png:"),
        ("media", "path", text_as_png, "its picture does not decode"),
        ("media", "path", truncated_clip(dir.path()), "FFmpeg"),
        ("media", "path", empty_png, "FFmpeg"),
        ("text", "font", logo, "not a TrueType or OpenType font"),
        ("image", "path", folder, "is a folder, not a file"),
    ];
    for (index, (kind, key, path, reason)) in cases.into_iter().enumerate() {
        let name = format!("case{index}.toml");
        let scene = one_source_scene(dir.path(), &name, kind, key, &path);
        let output = run(tally().arg("check").arg(&scene));
        let message = stderr(&output);
        assert!(!output.status.success(), "{kind} {path:?} passed check");
        // File, line, column and field, then what is wrong.
        let line = if kind == "text" { 10 } else { 9 };
        let located = format!("{name}:{line}:{}: sources[0].{key}:", key.len() + 4);
        assert!(message.contains(&located), "{message}");
        assert!(message.contains(reason), "{kind} {path:?}: {message}");
    }
    // What the bundled demo names opens.
    let demo = run(tally()
        .arg("check")
        .arg(repo_root().join("scenes/demo.toml")));
    assert!(demo.status.success(), "{}", stderr(&demo));
}

#[test]
fn check_refuses_what_is_not_a_file_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.toml");
    assert!(common::tool("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let huge = dir.path().join("huge.toml");
    std::fs::write(&huge, vec![b'#'; 17 << 20]).unwrap();
    let cases = [
        (PathBuf::from("/dev/zero"), "it is a device, not a file"),
        (dir.path().to_path_buf(), "it is a folder, not a file"),
        (fifo, "it is a pipe (FIFO), not a file"),
        (huge, "larger than 16 MB"),
    ];
    for (path, reason) in cases {
        let started = Instant::now();
        let output = run(tally().arg("check").arg(&path));
        assert!(!output.status.success());
        assert!(stderr(&output).contains(reason), "{}", stderr(&output));
        // /dev/zero and the pipe would block or read without end.
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}

#[test]
fn a_media_source_that_is_no_video_does_not_bring_down_the_show() {
    // Loaded without looking inside the file, as the app does; before the fix libswscale
    // aborted the whole process (SIGABRT) on its first picture.
    let dir = tempfile::tempdir().unwrap();
    let text_as_png = dir.path().join("notes.png");
    std::fs::write(&text_as_png, b"this is not a picture\n").unwrap();
    let scene = one_source_scene(dir.path(), "scene.toml", "media", "path", &text_as_png);
    let collection = tally::scene::load_file(&scene).unwrap();
    let output = dir.path().join("out.mkv");
    let engine = tally::engine::Engine::start(
        collection,
        tally::engine::EngineConfig {
            pacing: tally::base::Pacing::Deterministic,
            frame_limit: Some(30),
            recording: Some(tally::engine::RecordingConfig {
                path: output.clone(),
                format: tally::output::RecordingFormat::Mkv,
                profile: None,
            }),
            ..Default::default()
        },
    )
    .expect("the engine starts");
    // The operator is told, rather than left looking at a frozen picture.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut warnings = Vec::new();
    while !warnings
        .iter()
        .any(|w: &String| w.contains("notes.png: its picture stopped"))
    {
        assert!(Instant::now() < deadline, "no warning came: {warnings:?}");
        if let Ok(tally::engine::Event::Warning(warning)) =
            engine.events().recv_timeout(Duration::from_millis(100))
        {
            warnings.push(warning);
        }
    }
    let summary = engine.wait().expect("the show runs to its end");
    assert_eq!(summary.stats.frames_rendered, 30);
    assert_eq!(decode_errors(&output), "");
}

#[test]
fn a_command_to_an_engine_that_stopped_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let collection = tally::scene::load_file(&pattern_scene(dir.path(), "30")).unwrap();
    let engine = tally::engine::Engine::start(
        collection,
        tally::engine::EngineConfig {
            pacing: tally::base::Pacing::Deterministic,
            frame_limit: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    common::wait_until("the engine did not end", Duration::from_secs(30), || {
        engine.is_finished()
    });
    assert_eq!(
        engine.send(tally::engine::Command::StopRecording),
        Err(tally::engine::CommandError::Stopped)
    );
}

#[test]
fn a_text_wider_than_the_gpu_allows_is_drawn_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // 900 characters at 40 px: about 24,000 pixels wide, over any GPU's texture limit.
    let ticker = "NEWS ".repeat(180);
    let scene = write_scene(
        dir.path(),
        "ticker.toml",
        &format!(
            "[canvas]\nwidth = 640\nheight = 360\nfps = 30\n\n[[sources]]\nid = \"ticker\"\n\
             kind = \"text\"\ntext = \"{ticker}\"\nsize = 40\n\n[[scenes]]\nname = \"S\"\n\
             items = [{{ source = \"ticker\" }}]\n"
        ),
    );
    let picture = dir.path().join("ticker.png");
    let output = run(tally().arg("snapshot").arg(&scene).arg("-o").arg(&picture));
    assert!(output.status.success(), "{}", stderr(&output));
    let image = image::open(&picture).unwrap().to_rgba8();
    let lit = image.pixels().filter(|pixel| pixel.0[0] > 128).count();
    assert!(lit > 500, "the text was not drawn ({lit} light pixels)");
}

#[test]
fn frame_rates_under_one_and_huge_canvases_are_refused_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, canvas: &str| {
        write_scene(
            dir.path(),
            name,
            &format!(
                "[canvas]\n{canvas}\n\n[[sources]]\nid = \"c\"\nkind = \"color\"\n\
                 color = \"#ff0000\"\n\n[[scenes]]\nname = \"S\"\n"
            ),
        )
    };
    let slow = write(
        "slow.toml",
        "width = 320\nheight = 240\nfps = \"1/1000000\"",
    );
    let output = run(tally().arg("check").arg(&slow));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("slow.toml:4:7: canvas.fps: frame rate is not usable"));
    let huge = write("huge.toml", "width = 8192\nheight = 8192\nfps = 30");
    let output = run(tally().arg("check").arg(&huge));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("huge.toml:2:9: canvas.width: canvas size 8192 is not usable"),
        "{}",
        stderr(&output)
    );
}

/// True if the MP4 at `path` still has fragments (it was never finished).
fn is_fragmented(path: &Path) -> bool {
    std::fs::read(path)
        .unwrap()
        .windows(4)
        .any(|window| window == b"moof")
}

fn seconds_of_video(path: &Path) -> f64 {
    probe(path, "v:0", "stream=duration", false)
        .first()
        .and_then(|duration| duration.parse().ok())
        .unwrap_or_else(|| {
            probe(path, "", "format=duration", false)
                .first()
                .and_then(|duration| duration.parse().ok())
                .unwrap_or(0.0)
        })
}

/// `tally record` of `scene` to `output`, ten minutes `--fast`, once it has written 200 kB.
fn growing_recording(scene: &Path, output: &Path) -> std::process::Child {
    let child = tally()
        .arg("record")
        .arg(scene)
        .arg("-o")
        .arg(output)
        .args(["--fast", "--duration", "10m", "--quiet"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_until(
        "the recording did not grow",
        Duration::from_secs(60),
        || std::fs::metadata(output).map_or(0, |m| m.len()) >= 200_000,
    );
    child
}

/// Sends `signal` (such as "TERM") to `child` and waits for it to end.
fn stopped_with(child: std::process::Child, signal: &str) -> std::process::Output {
    let killed = common::tool("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait_with_output().unwrap()
}

#[test]
fn every_stop_signal_finishes_mp4_and_mkv_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    for signal in ["INT", "TERM", "HUP", "QUIT"] {
        for extension in ["mp4", "mkv"] {
            let output = dir.path().join(format!("{signal}.{extension}"));
            let child = growing_recording(&scene, &output);
            let finished = stopped_with(child, signal);
            assert!(
                finished.status.success(),
                "SIG{signal}: {:?} {}",
                finished.status,
                stderr(&finished)
            );
            assert!(stdout(&finished).contains(&format!("SIG{signal}: stopping")));
            assert_eq!(decode_errors(&output), "", "SIG{signal} {extension}");
            assert!(
                seconds_of_video(&output) > 1.0,
                "SIG{signal}: {extension} has no duration"
            );
            if extension == "mp4" {
                assert!(
                    !is_fragmented(&output),
                    "SIG{signal}: the MP4 was not finished"
                );
            }
        }
    }
}

fn sha(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn an_output_never_replaces_an_input_and_an_existing_file_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    std::fs::copy(repo_root().join("assets/clip.mp4"), &clip).unwrap();
    let scene = one_source_scene(
        dir.path(),
        "scene.toml",
        "media",
        "path",
        Path::new("clip.mp4"),
    );
    let before = sha(&clip);
    for extra in [&[][..], &["--overwrite"][..], &["-y"][..]] {
        let output = run(tally()
            .arg("record")
            .arg(&scene)
            .args(["-o", clip.to_str().unwrap(), "--fast", "--duration", "1s"])
            .args(extra));
        assert!(!output.status.success());
        assert!(
            stderr(&output).contains("is one of the show's own inputs"),
            "{}",
            stderr(&output)
        );
        assert!(sha(&clip) == before, "the input was changed");
    }
    // Through another name for the same file, and as a snapshot.
    let link = dir.path().join("link.png");
    let logo = dir.path().join("logo.png");
    std::fs::copy(repo_root().join("assets/logo.png"), &logo).unwrap();
    std::fs::hard_link(&logo, &link).unwrap();
    let image_scene = one_source_scene(dir.path(), "image.toml", "image", "path", &logo);
    let output = run(tally()
        .arg("snapshot")
        .arg(&image_scene)
        .arg("-o")
        .arg(&link)
        .arg("-y"));
    assert!(stderr(&output).contains("is one of the show's own inputs"));

    // Any other existing file: refused, then replaced with --overwrite.
    let existing = dir.path().join("existing.mkv");
    std::fs::write(&existing, b"precious").unwrap();
    let record = |extra: &[&str]| {
        run(tally()
            .arg("record")
            .arg(&scene)
            .arg("-o")
            .arg(&existing)
            .args(["--fast", "--duration", "1s", "--quiet"])
            .args(extra))
    };
    let refused = record(&[]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("already exists"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(std::fs::read(&existing).unwrap(), b"precious");
    // The app's --record too (checked before it looks for a display).
    if cfg!(feature = "app") {
        let app = run(tally()
            .env_remove("DISPLAY")
            .arg(&scene)
            .arg("--record")
            .arg(&existing));
        assert!(!app.status.success());
        assert!(stderr(&app).contains("already exists"), "{}", stderr(&app));
        let app = run(tally()
            .env_remove("DISPLAY")
            .arg(&scene)
            .args(["--overwrite", "--record"])
            .arg(&clip));
        assert!(
            stderr(&app).contains("is one of the show's own inputs"),
            "{}",
            stderr(&app)
        );
    } else {
        // The headless build has no app: it says so and touches nothing.
        let app = run(tally().arg(&scene).arg("--record").arg(&existing));
        assert!(!app.status.success());
        assert!(stderr(&app).contains("headless build"), "{}", stderr(&app));
    }
    assert_eq!(std::fs::read(&existing).unwrap(), b"precious");
    let replaced = record(&["--overwrite"]);
    assert!(replaced.status.success(), "{}", stderr(&replaced));
    assert_eq!(decode_errors(&existing), "");
}

#[test]
fn a_stream_that_never_connects_fails_and_a_missing_ca_file_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    // Nothing listens on this port: the output retries until the end, then the run fails.
    let url = format!("rtmp://127.0.0.1:{}/live/test", free_port());
    let output =
        run(tally()
            .arg("stream")
            .arg(&scene)
            .args(["--to", &url, "--duration", "2s", "--quiet"]));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("never connected"),
        "{}",
        stderr(&output)
    );

    let missing = dir.path().join("missing-ca.pem");
    let output = run(tally()
        .arg("stream")
        .arg(&scene)
        .args(["--to", &url, "--duration", "2s", "--tls-ca-file"])
        .arg(&missing));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("--tls-ca-file") && stderr(&output).contains("missing-ca.pem"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_panicking_video_encoder_still_finishes_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let collection = tally::scene::load_file(&pattern_scene(dir.path(), "30")).unwrap();
    for format in [
        tally::output::RecordingFormat::Mp4,
        tally::output::RecordingFormat::Mkv,
    ] {
        let output = dir
            .path()
            .join(format!("panicked.{format:?}").to_lowercase());
        let engine = tally::engine::Engine::start(
            collection.clone(),
            tally::engine::EngineConfig {
                pacing: tally::base::Pacing::Deterministic,
                frame_limit: Some(300),
                recording: Some(tally::engine::RecordingConfig {
                    path: output.clone(),
                    format,
                    profile: None,
                }),
                faults: tally::engine::Faults {
                    panic_video_encoder_after: Some(90),
                },
                ..Default::default()
            },
        )
        .unwrap();
        // Before the fix the recorder waited for an end that never came, and this hung.
        let (ended, result) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || ended.send(engine.wait().map(|_| ())).unwrap());
        let result = result
            .recv_timeout(Duration::from_secs(60))
            .expect("the engine stopped within a minute");
        let error = result
            .expect_err("a panicked encoder is an error")
            .to_string();
        assert!(error.contains("encoder thread panicked"), "{error}");
        assert_eq!(decode_errors(&output), "", "{format:?}");
        let frames = probe(&output, "v:0", "stream=nb_read_frames", true);
        let frames: u64 = frames[0].parse().unwrap();
        assert!((60..=90).contains(&frames), "{format:?}: {frames} frames");
    }
}

#[test]
fn messages_for_mistakes_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    // A misspelt command.
    let output = run(tally().args(["recrod", "show.toml", "-o", "x.mp4"]));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("did you mean `tally record`?"),
        "{}",
        stderr(&output)
    );
    // A missing collection: one "error:", naming the file.
    let missing = dir.path().join("nowhere.toml");
    let output = run(tally().arg("record").arg(&missing).args(["-o", "x.mp4"]));
    let message = stderr(&output);
    assert!(!message.contains("error: error:"), "{message}");
    assert!(message.contains("nowhere.toml"), "{message}");
    // A JPEG snapshot is written as a JPEG.
    let scene = pattern_scene(dir.path(), "30");
    let jpeg = dir.path().join("thumb.jpg");
    let output = run(tally().arg("snapshot").arg(&scene).arg("-o").arg(&jpeg));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        image::ImageFormat::from_path(&jpeg).unwrap(),
        image::ImageFormat::Jpeg
    );
    assert!(image::open(&jpeg).is_ok());
    // A 100 KB value is not echoed in full.
    let pasted = "x".repeat(100_000);
    let long = write_scene(
        dir.path(),
        "long.toml",
        &format!(
            "[canvas]\nwidth = 320\nheight = 240\nfps = 30\n\n[[sources]]\nid = \"c\"\n\
             kind = \"color\"\ncolor = \"{pasted}\"\n\n[[scenes]]\nname = \"S\"\n"
        ),
    );
    let output = run(tally().arg("check").arg(&long));
    assert!(!output.status.success());
    assert!(
        stderr(&output).len() < 2_000,
        "{} bytes",
        stderr(&output).len()
    );
    assert!(stderr(&output).contains("long.toml:9:9: sources[0].color:"));
    // One missing bracket: a few errors, not a hundred.
    let mut broken = String::from("[canvas\nwidth = 320\n");
    for index in 0..100 {
        broken.push_str(&format!("[[sources]\nid = \"s{index}\"\n"));
    }
    let broken = write_scene(dir.path(), "broken.toml", &broken);
    let output = run(tally().arg("check").arg(&broken));
    let errors = stderr(&output)
        .lines()
        .filter(|line| line.starts_with("error:"))
        .count();
    assert!((1..=4).contains(&errors), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("broken.toml:1:"),
        "{}",
        stderr(&output)
    );
    // No XDG_RUNTIME_DIR, as on servers and in containers: no message from a system library.
    let output = run(tally()
        .env_remove("XDG_RUNTIME_DIR")
        .arg("snapshot")
        .arg(&scene)
        .arg("-o")
        .arg(dir.path().join("server.png")));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("XDG_RUNTIME_DIR"),
        "{}",
        stderr(&output)
    );
}

/// A tmpfs of `megabytes` mounted for one test (needs root, as CI and the dev machines run).
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let mounted = common::tool("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(
            mounted.success(),
            "cannot mount a small tmpfs (this test needs root, as CI has)"
        );
        Self { path, _dir: dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
        if !unmounted.is_ok_and(|status| status.success()) {
            eprintln!("could not unmount {}", self.path.display());
        }
    }
}

#[test]
fn a_full_disk_leaves_a_recording_that_plays_to_its_last_whole_fragment() {
    let disk = SmallDisk::mount(2);
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    for extension in ["mp4", "mkv"] {
        let output = disk.path.join(format!("full.{extension}"));
        let result = run(tally()
            .arg("record")
            .arg(&scene)
            .arg("-o")
            .arg(&output)
            .args(["--fast", "--duration", "5m", "--quiet"]));
        assert_eq!(result.status.code(), Some(1));
        assert!(
            stderr(&result).contains("No space left on device")
                && stderr(&result).contains(&format!("full.{extension}")),
            "{}",
            stderr(&result)
        );
        assert_eq!(decode_errors(&output), "", "{extension}");
        let frames = probe(&output, "v:0", "stream=nb_read_frames", true);
        let frames: u64 = frames[0].parse().unwrap();
        assert!(frames >= 30, "{extension}: {frames} frames");
        std::fs::remove_file(&output).unwrap();
    }
}

#[test]
fn a_recording_whose_folder_is_removed_is_saved_again_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    for extension in ["mp4", "mkv"] {
        let folder = dir.path().join(format!("takes-{extension}"));
        std::fs::create_dir(&folder).unwrap();
        let output = folder.join(format!("take.{extension}"));
        let child = growing_recording(&scene, &output);
        std::fs::remove_dir_all(&folder).unwrap();
        let finished = stopped_with(child, "TERM");
        assert!(finished.status.success(), "{}", stderr(&finished));
        assert!(
            stderr(&finished).contains("saved there again"),
            "{}",
            stderr(&finished)
        );
        assert_eq!(decode_errors(&output), "", "{extension}");
        assert!(seconds_of_video(&output) > 1.0, "{extension}");
    }
}

#[test]
fn check_says_what_a_hundred_media_files_will_cost_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("[canvas]\nwidth = 1280\nheight = 720\nfps = 30\n");
    for index in 0..100 {
        text.push_str(&format!(
            "[[sources]]\nid = \"m{index}\"\nkind = \"media\"\npath = \"ASSETS/clip.mp4\"\n"
        ));
    }
    text.push_str("[[scenes]]\nname = \"S\"\n");
    let many = write_scene(dir.path(), "many.toml", &text);
    let output = run(tally().arg("check").arg(&many));
    assert!(output.status.success(), "{}", stderr(&output));
    // 100 clips of 640x360 at about 15 MB each.
    assert!(
        stderr(&output).contains("need about 1.4 GB of memory")
            && stderr(&output).contains("100 media files"),
        "{}",
        stderr(&output)
    );
    // A collection of ordinary size says nothing of it.
    let demo = run(tally()
        .arg("check")
        .arg(repo_root().join("scenes/demo.toml")));
    assert!(!stderr(&demo).contains("memory"), "{}", stderr(&demo));
}
