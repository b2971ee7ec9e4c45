//! Scene collection files: every broken file gets a precise message and a non-zero exit from
//! `tally check`; no input makes loading panic; saving is atomic and keeps a backup.

mod common;

use common::{tally, write_scene};
use std::path::Path;
use tally::scene;

const GOOD: &str = r##"
current_scene = "Main"

[canvas]
width = 1280
height = 720
fps = "30000/1001"

[[sources]]
id = "logo"
kind = "image"
path = "ASSETS/logo.png"

[[sources]]
id = "background"
kind = "color"
color = "#102030"

[[scenes]]
name = "Main"

[[scenes.items]]
source = "background"

[[scenes.items]]
source = "logo"
position = [10, 20]
opacity = 0.5
"##;

/// Runs `tally check` on `text` and returns (exit success, stderr).
fn check(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scene(dir.path(), "scene.toml", text);
    let output = tally().arg("check").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!stderr.contains("panicked"), "tally panicked:\n{stderr}");
    (output.status.success(), stderr)
}

/// Asserts that `tally check` fails and reports `expected` (a substring) at `line`.
fn assert_reports(text: &str, line: usize, field: &str, expected: &str) {
    let (ok, stderr) = check(text);
    assert!(!ok, "expected a failure for {expected:?}, got success");
    let wanted_location = format!("scene.toml:{line}:");
    let hit = stderr
        .lines()
        .find(|l| l.contains(&wanted_location) && l.contains(field) && l.contains(expected));
    assert!(
        hit.is_some(),
        "expected `{expected}` for field `{field}` at line {line}, got:\n{stderr}"
    );
}

#[test]
fn good_file_passes() {
    let (ok, stderr) = check(GOOD);
    assert!(ok, "{stderr}");
}

#[test]
fn syntax_error_names_line() {
    assert_reports("[canvas\nwidth = 1\n", 1, "", "TOML syntax error");
}

#[test]
fn unknown_key_suggests_the_right_one() {
    let text = GOOD.replace("position = [10, 20]", "positon = [10, 20]");
    assert_reports(
        &text,
        27,
        "scenes[0].items[1].positon",
        "unknown key `positon` (did you mean `position`?)",
    );
}

#[test]
fn wrong_type_says_what_was_expected() {
    let text = GOOD.replace("width = 1280", "width = \"wide\"");
    assert_reports(
        &text,
        5,
        "canvas.width",
        "expected an integer, found string",
    );
}

#[test]
fn missing_image_names_the_resolved_path() {
    let text = GOOD.replace("ASSETS/logo.png", "ASSETS/no-such-logo.png");
    let (_, stderr) = check(&text);
    let resolved = common::repo_root().join("assets/no-such-logo.png");
    assert!(
        stderr.contains(&format!("file not found: {}", resolved.display())),
        "{stderr}"
    );
    assert_reports(&text, 12, "sources[0].path", "file not found");
}

#[test]
fn relative_paths_resolve_against_the_scene_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = GOOD.replace("ASSETS/logo.png", "pictures/logo.png");
    let path = write_scene(dir.path(), "scene.toml", &text);
    let error = scene::load_file(&path).unwrap_err().to_string();
    assert!(
        error.contains(&dir.path().join("pictures/logo.png").display().to_string()),
        "{error}"
    );
}

#[test]
fn zero_canvas_is_refused() {
    let text = GOOD.replace("width = 1280", "width = 0");
    assert_reports(&text, 5, "canvas.width", "canvas size 0 is not usable");
}

#[test]
fn odd_canvas_is_refused_with_the_reason() {
    let text = GOOD.replace("height = 720", "height = 721");
    assert_reports(&text, 6, "canvas.height", "4:2:0 video needs even sizes");
}

#[test]
fn unknown_source_id_suggests_the_closest() {
    let text = GOOD.replace("source = \"logo\"", "source = \"lgo\"");
    assert_reports(
        &text,
        26,
        "scenes[0].items[1].source",
        "no source has the id `lgo` (did you mean `logo`?)",
    );
}

#[test]
fn unknown_source_kind_suggests_the_closest() {
    let text = GOOD.replace("kind = \"color\"", "kind = \"colour\"");
    assert_reports(
        &text,
        16,
        "sources[1].kind",
        "unknown source kind `colour` (did you mean `color`?)",
    );
}

#[test]
fn bad_colour_explains_the_format() {
    let text = GOOD.replace("#102030", "red");
    assert_reports(&text, 17, "sources[1].color", "`red` is not a colour");
}

#[test]
fn zero_denominator_frame_rate_is_refused() {
    let text = GOOD.replace("\"30000/1001\"", "\"30/0\"");
    assert_reports(&text, 7, "canvas.fps", "frame rate is not usable");
}

#[test]
fn opacity_out_of_range_gives_the_range() {
    let text = GOOD.replace("opacity = 0.5", "opacity = 1.5");
    assert_reports(
        &text,
        28,
        "scenes[0].items[1].opacity",
        "expected a number from 0 to 1",
    );
}

#[test]
fn duplicate_source_id_is_refused() {
    let text = GOOD.replace("id = \"background\"", "id = \"logo\"");
    let (ok, stderr) = check(&text);
    assert!(!ok);
    assert!(stderr.contains("duplicate source id `logo`"), "{stderr}");
}

#[test]
fn unknown_current_scene_suggests_the_closest() {
    let text = GOOD.replace("current_scene = \"Main\"", "current_scene = \"Mian\"");
    assert_reports(
        &text,
        2,
        "current_scene",
        "no scene is named `Mian` (did you mean `Main`?)",
    );
}

#[test]
fn scale_and_bounds_together_are_refused() {
    let text = GOOD.replace(
        "position = [10, 20]",
        "position = [10, 20]\nscale = [1, 1]\nbounds = { width = 10, height = 10 }",
    );
    let (ok, stderr) = check(&text);
    assert!(!ok);
    assert!(
        stderr.contains("either `scale` or `bounds`, not both"),
        "{stderr}"
    );
}

#[test]
fn empty_file_lists_what_is_missing() {
    let (ok, stderr) = check("");
    assert!(!ok);
    assert!(
        stderr.contains("missing required table [canvas]"),
        "{stderr}"
    );
    assert!(stderr.contains("missing `[[scenes]]`"), "{stderr}");
}

#[test]
fn audio_filters_are_checked_like_everything_else() {
    let text = GOOD.replace(
        "[[sources]]\nid = \"background\"",
        "[[sources]]\nid = \"clip\"\nkind = \"media\"\npath = \"ASSETS/clip.mp4\"\n\
         filters = [{ kind = \"compresor\" }, { kind = \"limiter\", threshold_db = 3 }]\n\n\
         [[sources]]\nid = \"background\"",
    );
    let (ok, stderr) = check(&text);
    assert!(!ok);
    assert!(
        stderr.contains("unknown filter `compresor` (did you mean `compressor`?)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("filters[1].threshold_db: 3 is out of range"),
        "{stderr}"
    );
}

#[test]
fn device_sources_are_checked_like_everything_else() {
    let text = GOOD.replace(
        "[[sources]]\nid = \"background\"",
        "[[sources]]\nid = \"mic\"\nkind = \"audio_input\"\nmonitoring = \"monitor-only\"\n\n\
         [[sources]]\nid = \"cam\"\nkind = \"camera\"\ndevice = \"/dev/video0\"\nformat = \"h264\"\nfps = 0\n\n\
         [[sources]]\nid = \"background\"",
    );
    let (ok, stderr) = check(&text);
    assert!(!ok);
    for expected in [
        "scene.toml:14:1: sources[1].device: missing required field `device`",
        "scene.toml:17:14: sources[1].monitoring: unknown value `monitor-only` (did you mean `monitor_only`?)",
        "scene.toml:23:10: sources[2].format: unknown value `h264` (expected one of: any, mjpeg, yuyv, nv12)",
        "scene.toml:24:7: sources[2].fps: 0 is out of range",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
}

#[test]
fn device_sources_round_trip_through_save() {
    let text = GOOD.replace(
        "[[sources]]\nid = \"background\"",
        "[[sources]]\nid = \"mic\"\nkind = \"audio_input\"\ndevice = \"desktop\"\nalways_on = true\n\
         monitoring = \"monitor_and_output\"\nvolume_db = -6.0\n\n\
         [[sources]]\nid = \"cam\"\nkind = \"camera\"\ndevice = \"Cam Link 4K\"\nwidth = 1920\nheight = 1080\nfps = 60\nformat = \"nv12\"\n\n\
         [[sources]]\nid = \"background\"",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_scene(dir.path(), "devices.toml", &text);
    let loaded = scene::load_file(&path).unwrap();
    scene::save_file(&loaded, &path).unwrap();
    assert_eq!(scene::load_file(&path).unwrap(), loaded);
    assert!(matches!(
        &loaded.source("cam").unwrap().kind,
        scene::SourceKind::Camera(camera) if camera.fps == 60 && camera.format == scene::CameraFormat::Nv12
    ));
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let text = GOOD
        .replace("width = 1280", "width = 0")
        .replace("#102030", "red")
        .replace("source = \"logo\"", "source = \"lgo\"");
    let (ok, stderr) = check(&text);
    assert!(!ok);
    assert!(stderr.contains("3 problems found"), "{stderr}");
}

#[test]
fn unreadable_file_is_named() {
    let output = tally()
        .args(["check", "/nonexistent/scene.toml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent/scene.toml: cannot read the scene collection"),
        "{stderr}"
    );
}

#[test]
fn loading_never_panics_on_truncated_or_corrupted_input() {
    let text = std::fs::read_to_string(common::repo_root().join("scenes/demo.toml")).unwrap();
    let base = common::repo_root().join("scenes");
    let file = Path::new("demo.toml");
    for end in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
        let _ = scene::parse_str(&text[..end], file, &base);
    }
    let bytes = text.as_bytes();
    for position in (0..bytes.len()).step_by(7) {
        for replacement in [b'"', b'[', b'=', b'\n', b'0', b'}'] {
            let mut corrupted = bytes.to_vec();
            corrupted[position] = replacement;
            if let Ok(corrupted) = String::from_utf8(corrupted) {
                let _ = scene::parse_str(&corrupted, file, &base);
            }
        }
    }
}

#[test]
fn shipped_scene_files_are_valid() {
    let bench_video = common::repo_root().join("bench/out/testsrc2-720p.mp4");
    for name in ["demo.toml", "benchmark.toml"] {
        if name == "benchmark.toml" && !bench_video.exists() {
            continue; // bench/run.sh makes its video; the file is checked once that exists.
        }
        let path = common::repo_root().join("scenes").join(name);
        if let Err(error) = scene::load_file(&path) {
            panic!("{name}: {error}");
        }
    }
}

#[test]
fn save_round_trips_and_keeps_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let source = write_scene(dir.path(), "scene.toml", GOOD);
    let original = scene::load_file(&source).unwrap();
    let mut edited = original.clone();
    edited.scenes[0].items[1].opacity = 0.25;
    scene::save_file(&edited, &source).unwrap();

    let reloaded = scene::load_file(&source).unwrap();
    assert_eq!(reloaded, edited);
    let backup = scene::load_file(&dir.path().join("scene.toml.bak")).unwrap();
    assert_eq!(backup, original);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("saving"))
        .collect();
    assert!(leftovers.is_empty(), "temporary file left behind");
}

#[test]
fn demo_collection_round_trips_through_save() {
    let path = common::repo_root().join("scenes/demo.toml");
    let collection = scene::load_file(&path).unwrap();
    let text = scene::to_toml_string(&collection).unwrap();
    let again = scene::parse_str(&text, Path::new("saved.toml"), &collection.base_dir).unwrap();
    assert_eq!(again, collection);
}

#[test]
fn every_filter_round_trips_through_save_at_both_ends_of_its_settings() {
    let path = common::repo_root().join("scenes/demo.toml");
    let mut collection = scene::load_file(&path).unwrap();
    let mut filters = Vec::new();
    for name in scene::AudioFilter::NAMES {
        for end in [false, true] {
            let mut filter = scene::AudioFilter::new(name).unwrap();
            assert_eq!(filter.name(), name);
            for parameter in filter.parameters_mut() {
                *parameter.value = if end {
                    *parameter.range.end()
                } else {
                    *parameter.range.start()
                };
            }
            filters.push(filter);
        }
    }
    let audio = collection
        .sources
        .iter_mut()
        .find_map(|source| source.kind.audio_mut())
        .expect("the demo has a source with sound");
    audio.filters = filters.clone();
    let text = scene::to_toml_string(&collection).unwrap();
    let again = scene::parse_str(&text, Path::new("saved.toml"), &collection.base_dir)
        .unwrap_or_else(|error| panic!("{error}\n{text}"));
    assert_eq!(again, collection);
    assert_eq!(filters.len(), 2 * scene::AudioFilter::NAMES.len());
}
