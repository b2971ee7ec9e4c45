//! Remote control (obs-websocket v5) driven by real client libraries from the package
//! registries against `tally serve`: obs-websocket-js from npm (MessagePack, as Bitfocus
//! Companion speaks it) and obsws-python from PyPI (JSON). Both are installed by
//! packaging/install-deps.sh into tests/remote.

mod common;

use common::{mono_audio, rms_db, square_colours, tally, tool, write_scene};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

const PASSWORD: &str = "correct horse battery staple";

/// Two scenes of one colour each, with the demo clip's sound in both.
fn collection(dir: &Path) -> PathBuf {
    let assets = common::repo_root().join("assets");
    write_scene(
        dir,
        "remote.toml",
        &r##"
current_scene = "A"

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
id = "clip"
kind = "media"
path = "ASSETS/clip.mp4"

[[scenes]]
name = "A"
items = [{ source = "red" }, { source = "clip", position = [300, 160], scale = [0.03, 0.03] }]

[[scenes]]
name = "B"
items = [{ source = "blue" }, { source = "clip", position = [300, 160], scale = [0.03, 0.03] }]
"##
        .replace("ASSETS", &assets.display().to_string()),
    )
}

/// `tally serve` on an ephemeral port, with its own settings (recordings into `dir`) and
/// password; stopped with SIGINT, as Ctrl-C would.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    fn start(dir: &Path, collection: &Path) -> Self {
        let config = dir.join("config");
        std::fs::create_dir_all(config.join("tally")).unwrap();
        std::fs::write(
            config.join("tally/settings.toml"),
            format!(
                "recordings_dir = {:?}\nrecording_format = \"mkv\"\n",
                dir.join("recordings").display().to_string()
            ),
        )
        .unwrap();
        let mut child = tally()
            .arg("serve")
            .arg(collection)
            .args(["--control-port", "0", "--quiet"])
            .env("XDG_CONFIG_HOME", &config)
            .env("XDG_RUNTIME_DIR", common::runtime_dir())
            .env("TALLY_CONTROL_PASSWORD", PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tally serve starts");
        let stdout = child.stdout.take().expect("its output");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("tally serve says where it listens")
                .expect("its output reads");
            if let Some(at) = line.find("ws://") {
                break line[at..].trim().to_string();
            }
        };
        // The rest of its output goes to the test's own.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| println!("{l}")));
        Self { child, url }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let interrupted = tool("kill").args(["-INT", &pid]).status();
        if !interrupted.is_ok_and(|status| status.success()) {
            eprintln!("could not interrupt tally serve; killing it");
            if let Err(error) = self.child.kill() {
                eprintln!("{error}");
            }
        }
        match self.child.wait() {
            Ok(status) => assert!(status.success(), "tally serve ended with {status}"),
            Err(error) => eprintln!("tally serve: {error}"),
        }
    }
}

fn clients_folder() -> PathBuf {
    let folder = common::repo_root().join("tests/remote");
    assert!(
        folder.join("node_modules/obs-websocket-js").is_dir(),
        "obs-websocket-js is not installed: run packaging/install-deps.sh"
    );
    folder
}

#[test]
fn a_real_client_switches_scenes_records_and_sets_a_volume_with_events_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &collection(dir.path()));
    let output = tool("node")
        .current_dir(clients_folder())
        .arg("drive.mjs")
        .arg(&served.url)
        .arg(PASSWORD)
        .output()
        .expect("node runs");
    let printed = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(printed.trim()).expect("the client's report");
    assert_eq!(report["wrongPassword"], 4009, "{report}");
    assert_eq!(report["rpcVersion"], 1);
    assert_eq!(report["version"]["supportedImageFormats"], true);
    assert_eq!(report["unknownRequest"], 204);
    let volume = report["volume"]["inputVolumeMul"].as_f64().unwrap();
    assert!((volume - 0.1).abs() < 0.001, "{volume}");

    // Events in the order things happened.
    let events: Vec<String> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            let detail = event["outputState"]
                .as_str()
                .or(event["sceneName"].as_str())
                .or(event["inputName"].as_str())
                .unwrap_or_default();
            format!("{} {detail}", event["type"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        events,
        [
            "RecordStateChanged OBS_WEBSOCKET_OUTPUT_STARTED",
            "InputVolumeChanged clip",
            "CurrentProgramSceneChanged B",
            "RecordStateChanged OBS_WEBSOCKET_OUTPUT_STOPPED",
        ],
        "{report}"
    );

    // The batch stopped at its failure, each result with its own id.
    let batch: Vec<(String, bool, u64)> = report["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["ok"].as_bool().unwrap(),
                r["code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        batch,
        [
            ("one".to_string(), true, 100),
            ("two".to_string(), true, 100),
            ("three".to_string(), false, 600),
        ]
    );

    // The recording the client started and stopped: red, then blue from the switch on, with
    // the sound 20 dB down from the volume change.
    let path = PathBuf::from(report["stop"]["outputPath"].as_str().unwrap());
    assert!(path.starts_with(dir.path().join("recordings")), "{path:?}");
    let centre = square_colours(&path, [150, 80], 8);
    let blue_from = centre
        .iter()
        .position(|[r, _, b]| *b > 200.0 && *r < 50.0)
        .expect("blue frames");
    assert!(centre[..blue_from]
        .iter()
        .all(|[r, _, b]| *r > 200.0 && *b < 50.0));
    assert!(centre[blue_from..]
        .iter()
        .all(|[r, _, b]| *b > 200.0 && *r < 50.0));
    assert!(blue_from >= 30, "scene A for {blue_from} frames");
    let sound = mono_audio(&path);
    let seconds = |from: f64, to: f64| &sound[(from * 48000.0) as usize..(to * 48000.0) as usize];
    let switch = blue_from as f64 / 30.0;
    let before = rms_db(seconds(switch - 1.0, switch - 0.2));
    let after = rms_db(seconds(switch + 0.2, switch + 1.0));
    assert!(before > -40.0, "the clip is silent: {before:.1} dB");
    assert!(
        (before - after - 20.0).abs() < 3.0,
        "{before:.1} dB before the change, {after:.1} dB after"
    );
    drop(served);
}

#[test]
fn a_json_client_mutes_and_hides_and_hears_it_on_its_event_connection() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &collection(dir.path()));
    let port = served.url.rsplit(':').next().unwrap().to_string();
    let python = clients_folder().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "obsws-python is not installed: run packaging/install-deps.sh"
    );
    let output = std::process::Command::new(python)
        .current_dir(clients_folder())
        .args(["json_client.py", "127.0.0.1", &port, PASSWORD])
        .output()
        .expect("python runs");
    let printed = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(printed.trim()).expect("the client's report");
    assert_eq!(
        report["scenes"],
        serde_json::json!(["B", "A"]),
        "OBS lists the last first"
    );
    assert_eq!(report["program"], "A");
    assert_eq!(report["muted"], true);
    assert_eq!(report["toggled"], false);
    assert_eq!(report["item"], serde_json::json!([2, false]));
    assert_eq!(report["mute_of_a_colour"][0], 602, "{report}");
    assert_eq!(
        report["events"],
        serde_json::json!([
            ["InputMuteStateChanged", "clip", true],
            ["InputMuteStateChanged", "clip", false],
            ["SceneItemEnableStateChanged", "A", 2, false],
        ]),
        "{report}"
    );
    drop(served);
}
