//! Remote control (obs-websocket v5) driven by real client libraries from the package
//! registries against `tally serve`: obs-websocket-js from npm (MessagePack, as Bitfocus
//! Companion speaks it) and obsws-python from PyPI (JSON). Both are installed by
//! packaging/install-deps.sh into tests/remote.

mod common;

use common::{
    close_code, identify, mono_audio, raw_client, rms_db, square_colours, tally, tool, write_scene,
};
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
        Self::with_password(dir, collection, Some(PASSWORD))
    }

    /// As [`Served::start`], with `password` (`None`: no authentication).
    fn with_password(dir: &Path, collection: &Path, password: Option<&str>) -> Self {
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
        let mut command = tally();
        command
            .arg("serve")
            .arg(collection)
            .args(["--control-port", "0", "--quiet"])
            .env("XDG_CONFIG_HOME", &config)
            .env("XDG_RUNTIME_DIR", common::runtime_dir())
            .env_remove("TALLY_CONTROL_PASSWORD")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(password) = password {
            command.env("TALLY_CONTROL_PASSWORD", password);
        }
        let mut child = command.spawn().expect("tally serve starts");
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

/// Runs a client script and reads the JSON report it prints.
fn client_report(client: &mut std::process::Command) -> Value {
    let output = client.output().expect("the client runs");
    let printed = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(printed.trim()).expect("the client's report")
}

/// The events a client's report lists, each as "Type detail": the detail is the first of
/// `fields` the event has.
fn event_lines(report: &Value, fields: &[&str]) -> Vec<String> {
    report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            let detail = fields
                .iter()
                .find_map(|field| event[*field].as_str())
                .unwrap_or_default();
            format!("{} {detail}", event["type"].as_str().unwrap())
        })
        .collect()
}

#[test]
fn a_real_client_switches_scenes_records_and_sets_a_volume_with_events_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &collection(dir.path()));
    let report = client_report(
        tool("node")
            .current_dir(clients_folder())
            .arg("drive.mjs")
            .arg(&served.url)
            .arg(PASSWORD),
    );
    assert_eq!(report["wrongPassword"], 4009, "{report}");
    assert_eq!(report["rpcVersion"], 1);
    assert_eq!(report["version"]["supportedImageFormats"], true);
    assert_eq!(report["unknownRequest"], 204);
    let volume = report["volume"]["inputVolumeMul"].as_f64().unwrap();
    assert!((volume - 0.1).abs() < 0.001, "{volume}");

    // Events in the order things happened.
    let events = event_lines(&report, &["outputState", "sceneName", "inputName"]);
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
    let report = client_report(
        std::process::Command::new(python)
            .current_dir(clients_folder())
            .args(["json_client.py", "127.0.0.1", &port, PASSWORD]),
    );
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

#[test]
fn transitions_media_ends_and_another_collection_are_announced() {
    let dir = tempfile::tempdir().unwrap();
    let scenes = write_scene(
        dir.path(),
        "events.toml",
        r##"
current_scene = "A"

[canvas]
width = 160
height = 90
fps = 30

[[sources]]
id = "red"
kind = "color"
color = "#ff0000"

[[sources]]
id = "once"
kind = "media"
path = "ASSETS/clip.mp4"
loop = false

[[scenes]]
name = "A"
items = [{ source = "red" }, { source = "once", scale = [0.1, 0.1] }]

[[scenes]]
name = "B"
items = [{ source = "red" }]
"##,
    );
    write_scene(
        dir.path(),
        "other.toml",
        r##"
current_scene = "X"

[canvas]
width = 160
height = 90
fps = 30

[[sources]]
id = "grey"
kind = "color"
color = "#808080"

[[scenes]]
name = "X"
items = [{ source = "grey" }]

[[scenes]]
name = "Y"
items = [{ source = "grey" }]
"##,
    );
    let served = Served::start(dir.path(), &scenes);
    let report = client_report(
        tool("node")
            .current_dir(clients_folder())
            .arg("events.mjs")
            .arg(&served.url)
            .arg(PASSWORD),
    );
    // The clip (4 s) played, ended where it ends, and played again when restarted.
    assert_eq!(report["playing"]["mediaDuration"], 4000, "{report}");
    assert_eq!(report["ended"]["mediaState"], "OBS_MEDIA_STATE_ENDED");
    assert_eq!(report["ended"]["mediaCursor"], 4000);
    let restarted_at = report["restarted"]["mediaCursor"].as_u64().unwrap();
    assert!(restarted_at < 2000, "{report}");
    assert_eq!(report["statusOfAColour"], 602, "{report}");
    // Every event in the order it happened: the end (once), then the transition.
    let events: Vec<String> = event_lines(&report, &["transitionName", "sceneName", "inputName"])
        .into_iter()
        .filter(|line| !line.starts_with("SceneListChanged"))
        .collect();
    assert_eq!(
        events[..5],
        [
            "MediaInputPlaybackEnded once",
            "SceneTransitionStarted Fade",
            "CurrentProgramSceneChanged B",
            "SceneTransitionEnded Fade",
            "SceneTransitionVideoEnded Fade",
        ],
        "{report}"
    );
    let listed: Vec<&str> = report["sceneList"]["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|scene| scene["sceneName"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["Y", "X"], "OBS lists the last first");
    drop(served);
}

#[test]
fn twenty_busy_clients_with_meters_are_all_served_while_recording() {
    // bench/remote.sh measures this load for 30 s (round trips, CPU); here it runs briefly to
    // show that every client is answered, none starved, and every one hears the meters.
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &collection(dir.path()));
    let report = client_report(tool("node").current_dir(clients_folder()).args([
        "load.mjs",
        &served.url,
        PASSWORD,
        "20",
        "50",
        "5",
        "A",
        "clip",
    ]));
    assert_eq!(report["failed"], 0, "{report}");
    let done = &report["per_client_done"];
    let (fewest, most) = (done[0].as_u64().unwrap(), done[1].as_u64().unwrap());
    // Each client waits for one answer before its next request: a starved client would have
    // done a fraction of what the busiest did.
    assert!(fewest > 0 && fewest * 2 >= most, "{report}");
    assert!(
        report["per_client_meter_events"][0].as_u64().unwrap() > 0,
        "{report}"
    );
    let recording = PathBuf::from(report["recording"].as_str().unwrap());
    let frames = common::probe(&recording, "v:0", "stream=nb_read_frames", true);
    let frames: u64 = frames[0].parse().unwrap();
    // About five seconds at 30 fps, and it decodes.
    assert!(frames > 100, "{frames} frames");
    assert_eq!(common::decode_errors(&recording), "");
    drop(served);
}

#[test]
fn malformed_and_hostile_messages_close_that_client_with_the_right_code_and_the_show_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // No password here: the protocol's own checks are under test.
    let served = Served::with_password(dir.path(), &collection(dir.path()), None);
    let url = served.url.clone();
    let text = |value: Value| tungstenite::Message::text(value.to_string());
    let json = Some("obswebsocket.json");
    let msgpack = Some("obswebsocket.msgpack");
    // What is sent, on which subprotocol, and the close code it must get (`None`: the
    // connection just ends).
    type Hostile = (
        &'static str,
        Option<&'static str>,
        Vec<tungstenite::Message>,
        Option<u16>,
    );
    let cases: Vec<Hostile> = vec![
        (
            "not JSON",
            json,
            vec![tungstenite::Message::text("{\"op\": 1, \"d\": ")],
            Some(4002),
        ),
        (
            "a binary frame on JSON",
            json,
            vec![tungstenite::Message::binary(vec![0x81, 0xa1])],
            Some(4002),
        ),
        (
            "a text frame on MessagePack",
            msgpack,
            vec![tungstenite::Message::text("{}")],
            Some(4002),
        ),
        (
            "truncated MessagePack",
            msgpack,
            vec![tungstenite::Message::binary(vec![0x82, 0xa2, 0x6f])],
            Some(4002),
        ),
        (
            "no op",
            json,
            vec![text(serde_json::json!({"d": {}}))],
            Some(4003),
        ),
        (
            "op as a string",
            json,
            vec![text(serde_json::json!({"op": "1", "d": {}}))],
            Some(4004),
        ),
        (
            "a request before Identify",
            json,
            vec![text(
                serde_json::json!({"op": 6, "d": {"requestType": "GetVersion", "requestId": "x"}}),
            )],
            Some(4007),
        ),
        (
            "rpcVersion as a string",
            json,
            vec![text(serde_json::json!({"op": 1, "d": {"rpcVersion": "1"}}))],
            Some(4004),
        ),
        (
            "no rpcVersion",
            json,
            vec![text(serde_json::json!({"op": 1, "d": {}}))],
            Some(4003),
        ),
        (
            "rpcVersion 2",
            json,
            vec![text(serde_json::json!({"op": 1, "d": {"rpcVersion": 2}}))],
            Some(4010),
        ),
        (
            "Identify twice",
            json,
            vec![
                text(serde_json::json!({"op": 1, "d": {"rpcVersion": 1}})),
                text(serde_json::json!({"op": 1, "d": {"rpcVersion": 1}})),
            ],
            Some(4008),
        ),
        (
            "an unknown op",
            json,
            vec![
                text(serde_json::json!({"op": 1, "d": {"rpcVersion": 1}})),
                text(serde_json::json!({"op": 42, "d": {}})),
            ],
            Some(4006),
        ),
        (
            "a huge frame",
            json,
            vec![tungstenite::Message::text("x".repeat(2 << 20))],
            None,
        ),
    ];
    for (what, subprotocol, messages, expected) in cases {
        let mut socket = raw_client(&url, subprotocol);
        for message in messages {
            if socket.send(message).is_err() {
                break;
            }
        }
        let code = close_code(&mut socket);
        match expected {
            Some(expected) => assert_eq!(code, Some(expected), "{what}"),
            // A frame over the limit ends the connection (the library refuses to read it).
            None => assert!(code.is_none() || code == Some(1009), "{what}: {code:?}"),
        }
    }

    // A flood of requests is cut off as a policy violation: the server answers the burst it
    // allows (1,000, and 500 a second more while it answers them) and closes (the client, still sending, may see the connection reset before it
    // reads the close frame).
    let mut flooding = raw_client(&url, json);
    identify(&mut flooding);
    let request =
        text(serde_json::json!({"op": 6, "d": {"requestType": "GetInputList", "requestId": "f"}}));
    for _ in 0..3000 {
        if flooding.send(request.clone()).is_err() {
            break;
        }
    }
    let mut answered = 0;
    let code = loop {
        match flooding.read() {
            Ok(tungstenite::Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Ok(_) => answered += 1,
            Err(_) => break None,
        }
    };
    assert!(code.is_none() || code == Some(1008), "a flood: {code:?}");
    // The burst and what refilled while it was answered, far short of the flood.
    assert!(answered < 2000, "a flood: {answered} of 3000 answered");

    // Random requests with the wrong kinds of fields: each is answered, none closes the client.
    let mut random = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random
    };
    let values = [
        serde_json::json!(null),
        serde_json::json!(-1),
        serde_json::json!(1e300),
        serde_json::json!("A"),
        serde_json::json!(""),
        serde_json::json!([1, 2]),
        serde_json::json!({"x": {}}),
        serde_json::json!(true),
        serde_json::json!(4294967297_u64),
    ];
    let fields = [
        "sceneName",
        "inputName",
        "inputVolumeDb",
        "inputVolumeMul",
        "sceneItemId",
        "inputMuted",
        "position",
        "transitionName",
        "sceneItemTransform",
        "inputSettings",
        "vendorName",
        "requestType",
        "requestData",
        "cue",
        "sleepMillis",
    ];
    let mut client = raw_client(&url, json);
    identify(&mut client);
    let _identified = client.read().unwrap();
    let requests = tally::remote::REQUESTS;
    for round in 0..400 {
        let request_type = requests[next() as usize % requests.len()];
        if matches!(
            request_type,
            "StartRecord"
                | "ToggleRecord"
                | "StartStream"
                | "ToggleStream"
                | "Sleep"
                | "SetCurrentSceneCollection"
        ) {
            continue;
        }
        let mut data = serde_json::Map::new();
        for _ in 0..(next() % 4) {
            let field = fields[next() as usize % fields.len()];
            data.insert(field.into(), values[next() as usize % values.len()].clone());
        }
        let id = format!("r{round}");
        client
            .send(text(serde_json::json!({"op": 6, "d": {"requestType": request_type, "requestId": id, "requestData": data}})))
            .unwrap();
        let answer = loop {
            let message = client
                .read()
                .unwrap_or_else(|e| panic!("{request_type} {data:?}: {e}"));
            let value: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
            if value["op"] == 7 {
                break value;
            }
        };
        assert_eq!(answer["d"]["requestId"], id.as_str());
        let code = answer["d"]["requestStatus"]["code"].as_u64().unwrap();
        assert!(
            code == 100 || (300..800).contains(&code),
            "{request_type} {data:?}: {answer}"
        );
    }

    // The show went on: it still answers, and renders its frames on time (a second of them).
    let get_stats =
        text(serde_json::json!({"op": 6, "d": {"requestType": "GetStats", "requestId": "s"}}));
    let mut stats = Value::Null;
    common::wait_until(
        "a second of frames",
        std::time::Duration::from_secs(30),
        || {
            client.send(get_stats.clone()).unwrap();
            stats = loop {
                let value: Value =
                    serde_json::from_str(client.read().unwrap().to_text().unwrap()).unwrap();
                if value["op"] == 7 {
                    break value["d"]["responseData"].clone();
                }
            };
            stats["renderTotalFrames"].as_u64().unwrap() >= 30
        },
    );
    let total = stats["renderTotalFrames"].as_u64().unwrap();
    let lagged = stats["renderSkippedFrames"].as_u64().unwrap();
    assert!(
        lagged * 20 <= total,
        "{lagged} of {total} frames lagged: {stats}"
    );
    drop(client);
    drop(served);
}
