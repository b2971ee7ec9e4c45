//! The desktop app driven as a user would, with egui_kittest on lavapipe (no display): the real
//! app, its real engine on the same GPU device, real clicks, typing and drags.

mod common;

use common::write_scene;
use eframe::egui;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use std::path::Path;
use std::time::{Duration, Instant};
use tally::scene::SourceKind;
use tally::ui::{PickFor, TallyApp};

const SHOW: &str = r##"
current_scene = "Main"

[canvas]
width = 640
height = 360
fps = 30

[[sources]]
id = "background"
kind = "color"
color = "#1b2735"

[[sources]]
id = "box"
kind = "color"
color = "#e04040"
width = 100
height = 100

[[sources]]
id = "blue"
kind = "color"
color = "#2040e0"

[[scenes]]
name = "Main"

[[scenes.items]]
source = "background"

[[scenes.items]]
source = "box"
position = [200, 100]

[[scenes]]
name = "Bars"

[[scenes.items]]
source = "blue"
"##;

/// The app on `path`, with its settings file beside it (never the user's).
fn harness(path: &Path) -> Harness<'static, TallyApp> {
    let settings = path.with_file_name("settings.toml");
    app_with(Some(path.to_path_buf()), settings)
}

fn app_with(
    path: Option<std::path::PathBuf>,
    settings: std::path::PathBuf,
) -> Harness<'static, TallyApp> {
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    Harness::builder()
        .with_size([1280.0, 800.0])
        .wgpu_setup(tally::ui::wgpu_setup())
        .build_eframe(move |cc| TallyApp::with_settings_file(cc, path, settings))
}

/// The app on SHOW (in `dir`) with settings that record into `dir/recordings`, its Settings
/// window open; and that folder.
fn settings_open_with_recordings_folder(
    dir: &Path,
) -> (Harness<'static, TallyApp>, std::path::PathBuf) {
    let recordings = dir.join("recordings");
    std::fs::write(
        dir.join("settings.toml"),
        format!("recordings_dir = {:?}\n", recordings.display().to_string()),
    )
    .unwrap();
    let mut harness = harness(&write_scene(dir, "show.toml", SHOW));
    harness.run_steps(2);
    harness.get_by_label("Settings").click();
    harness.run_steps(2);
    (harness, recordings)
}

/// Opens the combo box labelled `combo` and picks `option` in it.
fn choose(harness: &mut Harness<'static, TallyApp>, combo: &str, option: &str) {
    harness
        .get_by_role_and_label(egui::accesskit::Role::ComboBox, combo)
        .click();
    harness.run_steps(2);
    harness.get_by_label(option).click();
    harness.run_steps(2);
}

/// Steps the app (the engine runs on its own) until `done` holds, for up to five seconds.
fn step_until(harness: &mut Harness<'static, TallyApp>, done: impl Fn(&TallyApp) -> bool) {
    step_until_within(harness, Duration::from_secs(5), done);
}

fn step_until_within(
    harness: &mut Harness<'static, TallyApp>,
    limit: Duration,
    done: impl Fn(&TallyApp) -> bool,
) {
    let deadline = Instant::now() + limit;
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "timed out waiting on the app");
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn program(app: &TallyApp) -> String {
    app.engine()
        .map(|engine| engine.stats().switcher.program)
        .unwrap_or_default()
}

fn item_position(app: &TallyApp, scene: &str, source: &str) -> [f32; 2] {
    let scene = app.collection().scene(scene).unwrap();
    scene
        .items
        .iter()
        .find(|i| i.source == source)
        .unwrap()
        .position
}

#[test]
fn choosing_a_scene_and_pressing_transition_puts_it_on_program() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    step_until(&mut harness, |app| program(app) == "Main");
    harness.get_by_label("Bars").click();
    harness.run_steps(2);
    assert_eq!(
        harness.state().edited_scene_name(),
        "Bars",
        "Bars went to preview"
    );
    step_until(&mut harness, |app| {
        app.engine()
            .is_some_and(|e| e.stats().switcher.preview.as_deref() == Some("Bars"))
    });
    assert_eq!(program(harness.state()), "Main", "not on program yet");
    harness.get_by_label("Transition").click();
    harness.run_steps(2);
    step_until(&mut harness, |app| program(app) == "Bars");
    // As on a vision mixer, the old program scene is now in preview.
    step_until(&mut harness, |app| app.edited_scene_name() == "Main");
}

#[test]
fn the_t_bar_the_enter_key_and_the_cut_button_take_preview_to_program() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    step_until(&mut harness, |app| program(app) == "Main");
    harness.get_by_label("Bars").click();
    harness.run_steps(2);
    step_until(&mut harness, |app| {
        app.engine()
            .is_some_and(|e| e.stats().switcher.preview.as_deref() == Some("Bars"))
    });
    // The T-bar pushed halfway holds the transition there, with Main still on program.
    harness
        .get_by_role_and_label(egui::accesskit::Role::Slider, "T-bar")
        .set_value_accesskit(0.5);
    harness.run_steps(2);
    step_until(&mut harness, |app| {
        app.engine().is_some_and(|e| {
            e.stats()
                .switcher
                .transition_progress
                .is_some_and(|progress| (progress - 0.5).abs() < 0.01)
        })
    });
    assert_eq!(program(harness.state()), "Main");
    // All the way: Bars is on program, and the bar is ready for the next one.
    harness
        .get_by_role_and_label(egui::accesskit::Role::Slider, "T-bar")
        .set_value_accesskit(1.0);
    harness.run_steps(2);
    step_until(&mut harness, |app| program(app) == "Bars");
    step_until(&mut harness, |app| app.edited_scene_name() == "Main");
    // Enter is the Transition hotkey: Main goes back.
    harness.key_press(egui::Key::Enter);
    harness.run_steps(2);
    step_until(&mut harness, |app| program(app) == "Main");
    step_until(&mut harness, |app| app.edited_scene_name() == "Bars");
    // The quick Cut button switches at once, whatever transition is chosen.
    harness.get_by_label("Cut").click();
    harness.run_steps(2);
    step_until(&mut harness, |app| program(app) == "Bars");
}

#[test]
fn a_text_source_is_added_and_its_text_edited() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    harness.run_steps(2);
    harness.get_by_label("+ Text").click();
    harness.run_steps(2);
    let text_of = |app: &TallyApp| match &app.collection().source("text1").map(|s| &s.kind) {
        Some(SourceKind::Text(text)) => Some(text.text.clone()),
        _ => None,
    };
    assert_eq!(text_of(harness.state()).as_deref(), Some("Title"));
    // The new item is selected: its properties show the text, which the user rewrites.
    let field = harness.get_by_role_and_label(egui::accesskit::Role::MultilineTextInput, "Text");
    field.focus();
    field.type_text(" of the show");
    harness.run_steps(2);
    assert_eq!(
        text_of(harness.state()).as_deref(),
        Some("Title of the show")
    );
    // The engine has the new source running (it reports its size).
    step_until(&mut harness, |app| {
        app.engine()
            .is_some_and(|engine| engine.stats().source_sizes.contains_key("text1"))
    });
}

#[test]
fn dragging_an_item_in_the_preview_moves_it_and_undo_puts_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    // The engine must have told the app the sources' sizes (needed to hit-test items).
    wait_for_sizes(&mut harness);
    // 100 px right and 60 down: clear of the snapping to the canvas centre lines.
    drag_in_preview(&mut harness, [250.0, 150.0], [350.0, 210.0]);
    let moved = item_position(harness.state(), "Main", "box");
    assert!(
        (moved[0] - 300.0).abs() < 1.5 && (moved[1] - 160.0).abs() < 1.5,
        "the box moved by the drag to {moved:?}"
    );
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.run_steps(2);
    assert_eq!(
        item_position(harness.state(), "Main", "box"),
        [200.0, 100.0]
    );
    harness.get_by_label("Redo").click();
    harness.run_steps(2);
    assert_eq!(item_position(harness.state(), "Main", "box"), moved);
}

#[test]
fn an_invalid_collection_shows_its_error_and_keeps_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    let broken = write_scene(
        dir.path(),
        "broken.toml",
        "[canvas]\nwidth = 640\nheight = 360\nfps = 30\n\n[[sources]]\nid = \"x\"\nkind = \"colour\"\n",
    );
    harness.run_steps(2);
    let field = harness.get_by_role_and_label(egui::accesskit::Role::TextInput, "File");
    field.focus();
    field.type_text(&broken.display().to_string());
    harness.run_steps(1);
    harness.get_by_label("Open").click();
    harness.run_steps(2);
    assert!(harness
        .query_by_label_contains("unknown source kind `colour` (did you mean `color`?)")
        .is_some());
    assert!(
        harness.state().collection().scene("Main").is_some(),
        "the old show stays"
    );
    harness.get_by_label("OK").click();
    harness.run_steps(2);
    assert!(harness
        .query_by_label_contains("unknown source kind")
        .is_none());
}

#[test]
fn main_window_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    step_until(&mut harness, |app| {
        app.engine()
            .is_some_and(|engine| engine.stats().frames_rendered > 10)
    });
    // Let the monitors show a rendered frame.
    for _ in 0..5 {
        harness.step();
        std::thread::sleep(Duration::from_millis(40));
    }
    // The Stats dock shows live figures (fps, CPU, memory) that differ run to run; the rest
    // of the window must match.
    let options = egui_kittest::SnapshotOptions::new().max_failed_pixels(12_000);
    let mut image = harness.render().expect("the window renders");
    // kittest's renderer starts from a transparent frame where eframe's clears to the app's
    // clear colour, the window's background; lay the picture over it as the window shows it.
    let clear = eframe::App::clear_color(harness.state(), &egui::Visuals::dark());
    for pixel in image.pixels_mut() {
        // The rendered picture is premultiplied by its alpha.
        let cover = f32::from(pixel[3]) / 255.0;
        for (channel, background) in pixel.0.iter_mut().zip(clear) {
            *channel = (f32::from(*channel) + background * 255.0 * (1.0 - cover)).round() as u8;
        }
    }
    egui_kittest::image_snapshot_options(&image, "main_window", &options);
}

#[test]
fn streaming_from_settings_reaches_the_server_and_recording_starts_and_stops_beside_it() {
    let server = common::RtmpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, recordings) = settings_open_with_recordings_folder(dir.path());
    let label = "Stream destinations, one per line (rtmp://, rtmps://, srt://; PRIMARY|BACKUP; ${VAR} for keys)";
    let field = harness
        .get_all_by_label(label)
        .find(|node| node.accesskit_node().role() != egui::accesskit::Role::Label)
        .expect("the destinations field");
    field.focus();
    field.type_text(&server.url("fromapp"));
    harness.run_steps(2);
    // The key is masked where the destination is shown.
    assert!(harness.query_by_label_contains("fromapp").is_none());
    harness.get_by_label("Save settings").click();
    harness.run_steps(2);
    let saved = std::fs::read_to_string(dir.path().join("settings.toml")).unwrap();
    assert!(saved.contains("fromapp"), "{saved}");
    // The Settings window covers the Controls dock at this window size.
    harness.get_by_label("Close window").click();
    harness.run_steps(2);
    harness.get_by_label("Start Streaming").click();
    harness.run_steps(2);
    step_until(&mut harness, |app| {
        app.engine().is_some_and(|engine| {
            engine
                .stats()
                .outputs
                .first()
                .is_some_and(|output| output.state == tally::output::OutputState::Live)
        })
    });
    std::thread::sleep(Duration::from_secs(1));

    // Recording joins the live stream without a restart: the same engine runs throughout.
    let engines_before = harness.state().engine_starts();
    harness.get_by_label("Start Recording").click();
    harness.run_steps(2);
    std::thread::sleep(Duration::from_secs(2));
    harness.get_by_label("Stop Recording").click();
    harness.run_steps(2);
    step_until(&mut harness, |app| app.saved_recording().is_some());
    let file = harness.state().saved_recording().unwrap().to_path_buf();
    assert!(file.starts_with(&recordings), "{file:?}");
    assert_eq!(common::decode_errors(&file), "");
    let recorded: u64 = common::probe(&file, "v:0", "stream=nb_read_frames", true)[0]
        .parse()
        .unwrap();
    assert!(
        recorded.abs_diff(60) <= 15,
        "{recorded} frames in about 2 s"
    );
    harness.run_steps(2);
    let saved_label = format!("saved {}", file.display());
    assert!(harness.query_by_label(&saved_label).is_some());

    std::thread::sleep(Duration::from_secs(1));
    harness.get_by_label("Stop Streaming").click();
    harness.run_steps(2);
    step_until(&mut harness, |app| {
        app.engine()
            .is_some_and(|engine| engine.stats().outputs.is_empty())
    });
    assert_eq!(
        harness.state().engine_starts(),
        engines_before,
        "the engine restarted"
    );
    let streamed = server.recording("fromapp");
    assert_eq!(common::decode_errors(&streamed), "");
    let frames: u64 = common::probe(&streamed, "v:0", "stream=nb_read_frames", true)[0]
        .parse()
        .unwrap_or(0);
    // Unbroken across the recording's start and stop: about 4 s of pictures.
    assert!(frames >= 100, "{frames} frames reached the server");
}

#[test]
fn the_app_reopens_the_collection_open_last() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_scene(dir.path(), "first.toml", SHOW);
    let second = write_scene(
        dir.path(),
        "second.toml",
        &SHOW.replace("\"Bars\"", "\"Second\""),
    );
    let settings = dir.path().join("settings.toml");
    {
        let mut harness = app_with(Some(first), settings.clone());
        harness.run_steps(2);
        let field = harness.get_by_role_and_label(egui::accesskit::Role::TextInput, "File");
        field.focus();
        field.type_text(&second.display().to_string());
        harness.run_steps(1);
        harness.get_by_label("Open").click();
        harness.run_steps(2);
        assert!(harness.state().collection().scene("Second").is_some());
    }
    // Started again without a file: the one open last comes back.
    let mut harness = app_with(None, settings);
    harness.run_steps(2);
    assert_eq!(
        harness.state().file().map(Path::to_path_buf),
        Some(second.canonicalize().unwrap())
    );
    assert!(harness.state().collection().scene("Second").is_some());
}

#[test]
fn unsaved_changes_are_asked_about_before_opening_another_collection() {
    let dir = tempfile::tempdir().unwrap();
    let other = write_scene(
        dir.path(),
        "other.toml",
        &SHOW.replace("\"Bars\"", "\"Other\""),
    );
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    harness.run_steps(2);
    harness.get_by_label("+ Colour").click();
    harness.run_steps(2);
    let field = harness.get_by_role_and_label(egui::accesskit::Role::TextInput, "File");
    field.focus();
    field.type_text(&other.display().to_string());
    harness.run_steps(1);
    harness.get_by_label("Open").click();
    harness.run_steps(2);
    assert!(harness
        .query_by_label_contains("changes that are not saved")
        .is_some());
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    assert!(
        harness.state().collection().source("colour1").is_some(),
        "the edit is kept"
    );
    assert!(harness.state().collection().scene("Other").is_none());
    harness.get_by_label("Open").click();
    harness.run_steps(2);
    harness.get_by_label("Don't save").click();
    harness.run_steps(2);
    assert!(harness.state().collection().scene("Other").is_some());
    // The file on disk was not touched by the discarded edit.
    let original = std::fs::read_to_string(dir.path().join("show.toml")).unwrap();
    assert!(!original.contains("colour1"));
}

/// Drags the mouse from canvas point `from` to `to` in the editable monitor, in steps.
fn drag_in_preview(harness: &mut Harness<'static, TallyApp>, from: [f32; 2], to: [f32; 2]) {
    let grab = harness
        .state()
        .edit_monitor_point(from)
        .expect("the preview is drawn");
    let drop = harness.state().edit_monitor_point(to).unwrap();
    harness.hover_at(grab);
    harness.step();
    harness.drag_at(grab);
    harness.step();
    for step in 1..=8 {
        harness.hover_at(grab + (drop - grab) * (step as f32 / 8.0));
        harness.step();
    }
    harness.drop_at(drop);
    harness.run_steps(2);
}

fn click_in_preview(harness: &mut Harness<'static, TallyApp>, at: [f32; 2]) {
    let point = harness
        .state()
        .edit_monitor_point(at)
        .expect("the preview is drawn");
    harness.hover_at(point);
    harness.step();
    harness.drag_at(point);
    harness.step();
    harness.drop_at(point);
    harness.run_steps(2);
}

fn wait_for_sizes(harness: &mut Harness<'static, TallyApp>) {
    step_until(harness, |app| {
        app.engine()
            .is_some_and(|engine| engine.stats().source_sizes.contains_key("box"))
    });
    harness.run_steps(2);
}

#[test]
fn a_corner_handle_resizes_the_item_and_a_locked_item_stays_put() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    wait_for_sizes(&mut harness);
    // Select the box (100x100 at 200,100), then pull its bottom-right corner 50 px right.
    click_in_preview(&mut harness, [250.0, 150.0]);
    assert_eq!(harness.state().selected_source().as_deref(), Some("box"));
    drag_in_preview(&mut harness, [300.0, 200.0], [350.0, 200.0]);
    let item = harness.state().collection().scene("Main").unwrap().items[1].clone();
    assert_eq!(item.position, [200.0, 100.0], "the opposite corner stays");
    match item.size {
        tally::scene::ItemSize::Scale([x, y]) => {
            assert!((x - 1.5).abs() < 0.02 && (y - 1.5).abs() < 0.02, "{x} {y}")
        }
        other => panic!("{other:?}"),
    }
    // Locked, it is not picked up by a drag.
    // Sources lists the top item (the box) first.
    harness.get_all_by_label("lock").next().unwrap().click();
    harness.run_steps(2);
    assert!(harness.state().collection().scene("Main").unwrap().items[1].locked);
    let before = item_position(harness.state(), "Main", "box");
    drag_in_preview(&mut harness, [260.0, 160.0], [300.0, 200.0]);
    assert_eq!(item_position(harness.state(), "Main", "box"), before);
}

#[test]
fn items_are_hidden_reordered_and_deleted_and_undo_restores_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    wait_for_sizes(&mut harness);
    let items = |app: &TallyApp| -> Vec<(String, bool)> {
        let scene = app.collection().scene("Main").unwrap();
        scene
            .items
            .iter()
            .map(|item| (item.source.clone(), item.visible))
            .collect()
    };
    let start = items(harness.state());
    assert_eq!(
        start,
        [("background".to_string(), true), ("box".to_string(), true)]
    );
    harness.get_by_label("show box").click();
    harness.run_steps(2);
    assert!(!items(harness.state())[1].1, "hidden");
    // A hidden item is not picked up in the preview.
    click_in_preview(&mut harness, [250.0, 150.0]);
    assert_eq!(
        harness.state().selected_source().as_deref(),
        Some("background")
    );

    harness.get_by_label("box").click();
    harness.run_steps(1);
    harness.get_by_label("Lower").click();
    harness.run_steps(2);
    let names: Vec<String> = items(harness.state())
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["box", "background"], "lowered under the background");
    harness.get_by_label("Delete").click();
    harness.run_steps(2);
    assert_eq!(items(harness.state()), [("background".to_string(), true)]);
    // No other scene shows it: the source goes with its last item (and comes back on undo).
    assert!(harness.state().collection().source("box").is_none());

    for _ in 0..3 {
        harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
        harness.run_steps(2);
    }
    assert_eq!(items(harness.state()), start);
    assert!(harness.state().collection().source("box").is_some());

    // The Delete key deletes the item selected in the preview.
    click_in_preview(&mut harness, [250.0, 150.0]);
    assert_eq!(harness.state().selected_source().as_deref(), Some("box"));
    harness.key_press(egui::Key::Delete);
    harness.run_steps(2);
    assert_eq!(items(harness.state()), [("background".to_string(), true)]);
    assert!(harness.state().collection().source("box").is_none());
}

#[test]
fn renaming_a_source_renames_it_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    wait_for_sizes(&mut harness);
    click_in_preview(&mut harness, [250.0, 150.0]);
    let field = harness.get_by_role_and_label(egui::accesskit::Role::TextInput, "Name");
    field.focus();
    field.type_text("_red");
    harness.run_steps(1);
    harness.key_press(egui::Key::Enter);
    harness.run_steps(2);
    let app = harness.state();
    assert!(app.collection().source("box_red").is_some(), "renamed");
    assert!(app.collection().source("box").is_none());
    assert!(app
        .collection()
        .scene("Main")
        .unwrap()
        .items
        .iter()
        .any(|item| item.source == "box_red"));
}

#[test]
fn alt_dragging_an_edge_crops_the_item() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    wait_for_sizes(&mut harness);
    click_in_preview(&mut harness, [250.0, 150.0]);
    // Hold Alt and pull the box's left edge (x = 200) 30 px to the right.
    harness.event(egui::Event::ModifiersChanged(egui::Modifiers::ALT));
    drag_in_preview(&mut harness, [200.0, 150.0], [230.0, 150.0]);
    harness.event(egui::Event::ModifiersChanged(egui::Modifiers::NONE));
    harness.run_steps(1);
    let item = harness.state().collection().scene("Main").unwrap().items[1].clone();
    assert_eq!(item.crop.left, 30, "{:?}", item.crop);
    assert_eq!(
        item.position,
        [230.0, 100.0],
        "the picture stays where it was"
    );
}

/// Alt-drags `from` to `to` in the preview of SHOW with the box's item changed by `item_lines`,
/// and returns the box's item and where its picture is drawn (the box around its corners).
fn crop_by_alt_drag(
    item_lines: &str,
    from: [f32; 2],
    to: [f32; 2],
) -> (tally::scene::Item, [f32; 4]) {
    let dir = tempfile::tempdir().unwrap();
    let show = SHOW.replace("position = [200, 100]", item_lines);
    let mut harness = harness(&write_scene(dir.path(), "show.toml", &show));
    wait_for_sizes(&mut harness);
    click_in_preview(&mut harness, [250.0, 150.0]);
    assert_eq!(harness.state().selected_source().as_deref(), Some("box"));
    harness.event(egui::Event::ModifiersChanged(egui::Modifiers::ALT));
    drag_in_preview(&mut harness, from, to);
    harness.event(egui::Event::ModifiersChanged(egui::Modifiers::NONE));
    harness.run_steps(1);
    let item = harness.state().collection().scene("Main").unwrap().items[1].clone();
    let quad = tally::render::item_quad(&item, [100, 100]).expect("still drawn");
    let drawn = quad.pos_in_canvas.iter().fold(
        [f32::MAX, f32::MAX, f32::MIN, f32::MIN],
        |[x0, y0, x1, y1], [x, y]| [x0.min(*x), y0.min(*y), x1.max(*x), y1.max(*y)],
    );
    (item, drawn)
}

fn roughly(a: [f32; 4], b: [f32; 4]) -> bool {
    a.iter().zip(b).all(|(a, b)| (a - b).abs() < 0.5)
}

#[test]
fn alt_dragging_the_edge_of_a_turned_item_crops_its_own_side() {
    // A quarter turn clockwise: the picture's left edge is now on top, at y = 100. Pulling it
    // down 30 px crops 30 px off the picture's left; its far side stays at y = 200.
    let (item, drawn) = crop_by_alt_drag(
        "position = [200, 100]\nrotation = 90",
        [250.0, 100.0],
        [250.0, 130.0],
    );
    assert_eq!(item.crop.left, 30, "{:?}", item.crop);
    assert!(roughly(drawn, [200.0, 130.0, 300.0, 200.0]), "{drawn:?}");
}

#[test]
fn alt_dragging_the_edge_of_a_boxed_item_crops_it_without_rescaling() {
    // The 100x100 box fitted in a 200x100 bounding box is drawn at (250, 100), centred. Its
    // right edge pulled 20 px left crops 20 source pixels; the box narrows so the rest of the
    // picture keeps its size and place.
    let (item, drawn) = crop_by_alt_drag(
        "position = [200, 100]\nbounds = { width = 200, height = 100, fit = \"fit\" }",
        [350.0, 150.0],
        [330.0, 150.0],
    );
    assert_eq!(item.crop.right, 20, "{:?}", item.crop);
    assert!(roughly(drawn, [250.0, 100.0, 330.0, 200.0]), "{drawn:?}");
}

#[test]
fn the_rotate_handle_turns_the_item_and_undo_turns_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    wait_for_sizes(&mut harness);
    // The box is 100x100 at (200, 100): its centre is (250, 150).
    click_in_preview(&mut harness, [250.0, 150.0]);
    let handle = harness
        .state()
        .rotate_handle_point()
        .expect("the selected box has a rotate handle");
    assert_eq!(handle[0], 250.0);
    assert!(handle[1] < 100.0, "above the box: {handle:?}");
    // From above the centre to its right: a quarter turn clockwise.
    drag_in_preview(&mut harness, handle, [350.0, 150.0]);
    let item = harness.state().collection().scene("Main").unwrap().items[1].clone();
    assert!((item.rotation - 90.0).abs() < 0.5, "{}", item.rotation);
    assert_eq!(item.position, [200.0, 100.0], "it turns in place");
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.run_steps(2);
    let item = &harness.state().collection().scene("Main").unwrap().items[1];
    assert_eq!(item.rotation, 0.0);
}

#[test]
fn properties_edit_the_selected_sources_own_settings() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    wait_for_sizes(&mut harness);
    // The box is a 100x100 colour source: Properties shows its colour and size.
    click_in_preview(&mut harness, [250.0, 150.0]);
    harness
        .get_by_role_and_label(egui::accesskit::Role::SpinButton, "width")
        .set_value_accesskit(160.0);
    harness.run_steps(2);
    let width_of = |app: &TallyApp| match app.collection().source("box").map(|s| &s.kind) {
        Some(SourceKind::Color { width, .. }) => *width,
        other => panic!("{other:?}"),
    };
    assert_eq!(width_of(harness.state()), 160);
    // The engine reopened it at the new size.
    step_until(&mut harness, |app| {
        app.engine()
            .is_some_and(|engine| engine.stats().source_sizes.get("box") == Some(&[160, 100]))
    });
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.run_steps(2);
    assert_eq!(width_of(harness.state()), 100);
}

#[test]
fn an_image_path_typed_in_properties_applies_when_the_field_is_left() {
    let dir = tempfile::tempdir().unwrap();
    image::RgbaImage::from_pixel(64, 64, image::Rgba([0, 200, 0, 255]))
        .save(dir.path().join("logo.png"))
        .unwrap();
    image::RgbaImage::from_pixel(32, 16, image::Rgba([0, 0, 200, 255]))
        .save(dir.path().join("other.png"))
        .unwrap();
    let collection = "[canvas]\nwidth = 1280\nheight = 720\nfps = 30\n\n\
        [[sources]]\nid = \"logo\"\nkind = \"image\"\npath = \"logo.png\"\n\n\
        [[scenes]]\nname = \"Main\"\n\n[[scenes.items]]\nsource = \"logo\"\nposition = [200, 100]\n";
    let mut harness = harness(&write_scene(dir.path(), "show.toml", collection));
    step_until(&mut harness, |app| {
        app.engine()
            .is_some_and(|engine| engine.stats().source_sizes.get("logo") == Some(&[64, 64]))
    });
    harness.run_steps(2);
    click_in_preview(&mut harness, [230.0, 130.0]);
    assert_eq!(harness.state().selected_source().as_deref(), Some("logo"));
    let path_of = |app: &TallyApp| match app.collection().source("logo").map(|s| &s.kind) {
        Some(SourceKind::Image { path }) => path.clone(),
        other => panic!("{other:?}"),
    };
    let field = harness.get_by_role_and_label(egui::accesskit::Role::TextInput, "file");
    field.focus();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness
        .get_by_role_and_label(egui::accesskit::Role::TextInput, "file")
        .type_text("other.png");
    harness.run_steps(2);
    // Still typing: nothing applied yet.
    assert_eq!(path_of(harness.state()), std::path::Path::new("logo.png"));
    harness.key_press(egui::Key::Enter);
    harness.run_steps(2);
    // Relative, as in the file: taken from the collection's folder.
    assert_eq!(path_of(harness.state()), std::path::Path::new("other.png"));
    step_until(&mut harness, |app| {
        app.engine()
            .is_some_and(|engine| engine.stats().source_sizes.get("logo") == Some(&[32, 16]))
    });

    // The field has a Browse button (the file dialog itself is driven in tests/app_window.rs);
    // a file chosen there inside the collection's folder is kept relative too.
    assert!(harness.query_by_label("Browse...").is_some());
    let chosen = dir.path().canonicalize().unwrap().join("logo.png");
    harness
        .state_mut()
        .apply_picked(PickFor::SourceFile("logo".into()), chosen);
    harness.run_steps(2);
    assert_eq!(path_of(harness.state()), std::path::Path::new("logo.png"));
    step_until(&mut harness, |app| {
        app.engine()
            .is_some_and(|engine| engine.stats().source_sizes.get("logo") == Some(&[64, 64]))
    });
}

#[test]
fn the_canvas_size_set_in_settings_restarts_the_engine_on_it_and_undo_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    wait_for_sizes(&mut harness);
    harness.get_by_label("Settings").click();
    harness.run_steps(2);
    harness
        .get_by_role_and_label(egui::accesskit::Role::SpinButton, "canvas width")
        .set_value_accesskit(320.0);
    harness.run_steps(1);
    harness
        .get_by_role_and_label(egui::accesskit::Role::SpinButton, "canvas height")
        .set_value_accesskit(180.0);
    harness.run_steps(1);
    // Nothing changes until applied.
    assert_eq!(harness.state().collection().canvas.width, 640);
    harness.get_by_label("Apply canvas").click();
    harness.run_steps(2);
    let canvas = harness.state().collection().canvas;
    assert_eq!((canvas.width, canvas.height), (320, 180));
    let program_size = |app: &TallyApp| {
        let texture = &app.engine().expect("an engine runs").display().program;
        (texture.width(), texture.height())
    };
    assert_eq!(
        program_size(harness.state()),
        (320, 180),
        "a new engine on the new canvas"
    );
    // Undo in the top bar (the Settings window may cover it, so by its accessibility action).
    harness.get_by_label("Undo").click_accesskit();
    harness.run_steps(2);
    assert_eq!(harness.state().collection().canvas.width, 640);
    assert_eq!(program_size(harness.state()), (640, 360));
}

/// The main window at `size` points and `pixels_per_point` (a display's scale factor): every
/// dock and control is inside the window, and the monitors get at least `min_monitor` points.
fn assert_laid_out(size: [f32; 2], pixels_per_point: f32, min_monitor: f32) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scene(dir.path(), "show.toml", SHOW);
    let settings = dir.path().join("settings.toml");
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    let mut harness = Harness::builder()
        .with_size(size)
        .with_pixels_per_point(pixels_per_point)
        .wgpu_setup(tally::ui::wgpu_setup())
        .build_eframe(move |cc| TallyApp::with_settings_file(cc, Some(path), settings));
    harness.run_steps(3);
    let window = egui::Rect::from_min_size(egui::Pos2::ZERO, size.into());
    for label in [
        "Scenes",
        "Sources",
        "Properties",
        "Audio Mixer",
        "Transitions",
        "Controls",
        "Stats",
        "Studio Mode",
        "Start Recording",
        "Start Streaming",
        "Settings",
        "Transition",
        "Open",
        "Save",
    ] {
        let rect = harness.get_by_label(label).rect();
        assert!(
            window.contains_rect(rect),
            "{label} at {rect:?} is outside {window:?}"
        );
    }
    // The preview's top-left and bottom-right canvas corners are on screen, far enough apart.
    let app = harness.state();
    let top_left = app
        .edit_monitor_point([0.0, 0.0])
        .expect("the preview is drawn");
    let bottom_right = app.edit_monitor_point([640.0, 360.0]).unwrap();
    assert!(window.contains(top_left) && window.contains(bottom_right));
    let width = bottom_right.x - top_left.x;
    assert!(
        width >= min_monitor,
        "preview {width} points wide at {size:?}"
    );
}

#[test]
fn the_window_is_laid_out_at_720p_and_at_4k_with_a_scale_factor_of_two() {
    // 1280x720 at 1x, and 3840x2160 pixels at 2x (1920x1080 points).
    assert_laid_out([1280.0, 720.0], 1.0, 450.0);
    assert_laid_out([1920.0, 1080.0], 2.0, 800.0);
}

#[test]
fn files_dropped_on_the_window_become_sources_on_top_of_the_preview_scene() {
    let dir = tempfile::tempdir().unwrap();
    image::RgbaImage::from_pixel(64, 48, image::Rgba([0, 200, 0, 255]))
        .save(dir.path().join("logo.png"))
        .unwrap();
    let clip = common::repo_root().join("assets/clip.mp4");
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    wait_for_sizes(&mut harness);
    // What a file manager's drag delivers: the dropped files' paths, in one frame.
    for path in [dir.path().join("logo.png"), clip.clone()] {
        harness
            .input_mut()
            .dropped_files
            .push(std::sync::Arc::new(FileOnDisk(path)));
    }
    harness.run_steps(2);
    let app = harness.state();
    match app.collection().source("logo1").map(|source| &source.kind) {
        // Inside the collection's folder the path is stored relative, as typed in the file.
        Some(SourceKind::Image { path }) => assert_eq!(path, Path::new("logo.png")),
        other => panic!("{other:?}"),
    }
    match app.collection().source("clip1").map(|source| &source.kind) {
        Some(SourceKind::Media(media)) => assert_eq!(media.path, clip),
        other => panic!("{other:?}"),
    }
    let items: Vec<&str> = app
        .collection()
        .scene("Main")
        .unwrap()
        .items
        .iter()
        .map(|item| item.source.as_str())
        .collect();
    assert_eq!(items, ["background", "box", "logo1", "clip1"]);
    assert_eq!(app.selected_source().as_deref(), Some("clip1"));
    // The running engine opened both files.
    step_until(&mut harness, |app| {
        app.engine().is_some_and(|engine| {
            let sizes = &engine.stats().source_sizes;
            sizes.get("logo1") == Some(&[64, 48]) && sizes.contains_key("clip1")
        })
    });
    // Each drop is one edit: undo takes them back one by one.
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.run_steps(2);
    assert!(harness.state().collection().source("clip1").is_none());
    assert!(harness.state().collection().source("logo1").is_some());
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    harness.run_steps(2);
    assert!(harness.state().collection().source("logo1").is_none());
}

/// A dropped file as eframe hands it over on the desktop: a path on disk.
#[derive(Debug)]
struct FileOnDisk(std::path::PathBuf);

impl egui::DroppedFile for FileOnDisk {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|error| error.to_string())
    }
}

const WITH_SOUND: &str = r##"
[canvas]
width = 640
height = 360
fps = 30

[[sources]]
id = "clip"
kind = "media"
path = "ASSETS/clip.mp4"
loop = true

[[scenes]]
name = "Main"

[[scenes.items]]
source = "clip"
"##;

/// Steps the app until the engine's master meter satisfies `wanted` (30 s at most); returns
/// the master RMS in dBFS.
fn master_rms_until(harness: &mut Harness<'static, TallyApp>, wanted: impl Fn(f32) -> bool) -> f32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        harness.step();
        let rms = harness
            .state()
            .engine()
            .and_then(|engine| engine.stats().audio_levels)
            .map_or(f32::NEG_INFINITY, |levels| levels.master.rms_dbfs);
        if wanted(rms) {
            return rms;
        }
        assert!(
            Instant::now() < deadline,
            "master RMS stayed at {rms:.1} dBFS"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The app on [`WITH_SOUND`], stepped until the clip is heard; with the master's RMS then.
fn playing_with_sound(dir: &Path) -> (Harness<'static, TallyApp>, f32) {
    let mut harness = harness(&write_scene(dir, "show.toml", WITH_SOUND));
    // The clip's sound is about -21 dBFS on average; the first readings may still be rising.
    master_rms_until(&mut harness, |rms| rms > -40.0);
    std::thread::sleep(Duration::from_millis(300));
    let loud = master_rms_until(&mut harness, |_| true);
    (harness, loud)
}

fn clip_audio(app: &TallyApp) -> tally::scene::AudioSettings {
    match &app.collection().source("clip").unwrap().kind {
        SourceKind::Media(media) => media.audio.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_mixer_strip_mutes_fades_and_monitors_a_source_and_the_master_meter_follows() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, loud) = playing_with_sound(dir.path());

    harness.get_by_label("mute").click();
    harness.run_steps(2);
    assert!(clip_audio(harness.state()).muted);
    master_rms_until(&mut harness, |rms| rms < -90.0);
    harness.get_by_label("mute").click();
    harness.run_steps(2);
    assert!(!clip_audio(harness.state()).muted);
    master_rms_until(&mut harness, |rms| rms > -40.0);

    // The fader at -20 dB: the master falls by about that much.
    harness
        .get_by_role_and_label(egui::accesskit::Role::Slider, "fader")
        .set_value_accesskit(-20.0);
    harness.run_steps(2);
    assert_eq!(clip_audio(harness.state()).volume_db, -20.0);
    master_rms_until(&mut harness, |rms| (rms - (loud - 20.0)).abs() < 5.0);

    // Monitored only: heard in the monitor, no longer in the program's sound.
    choose(&mut harness, "monitoring", "monitor only");
    assert_eq!(
        clip_audio(harness.state()).monitoring,
        tally::scene::Monitoring::MonitorOnly
    );
    master_rms_until(&mut harness, |rms| rms < -90.0);
}

/// Picks `kind` in Properties' "add filter" box, scrolled into view first.
fn add_filter(harness: &mut Harness<'static, TallyApp>, kind: &str) {
    harness
        .get_by_role_and_label(egui::accesskit::Role::ComboBox, "add filter")
        .scroll_to_me();
    // The dock scrolls over a few frames.
    harness.run_steps(20);
    choose(harness, "add filter", kind);
}

/// Clicks the `nth` widget labelled `label`, scrolled into view first.
fn click_in_dock(harness: &mut Harness<'static, TallyApp>, label: &str, nth: usize) {
    harness
        .get_all_by_label(label)
        .nth(nth)
        .unwrap()
        .scroll_to_me();
    harness.run_steps(20);
    harness.get_all_by_label(label).nth(nth).unwrap().click();
    harness.run_steps(2);
}

#[test]
fn audio_filters_added_in_properties_shape_the_sound_and_undo_takes_them_off() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, loud) = playing_with_sound(dir.path());
    step_until(&mut harness, |app| {
        app.engine()
            .is_some_and(|engine| engine.stats().source_sizes.contains_key("clip"))
    });
    harness.run_steps(2);
    click_in_preview(&mut harness, [320.0, 180.0]);

    // Properties shows the clip's sound below its file: a filter chain, empty so far.
    add_filter(&mut harness, "Gain");
    assert_eq!(
        clip_audio(harness.state()).filters,
        [tally::scene::AudioFilter::Gain { db: 0.0 }]
    );
    harness
        .get_by_role_and_label(egui::accesskit::Role::SpinButton, "gain")
        .set_value_accesskit(-20.0);
    harness.run_steps(2);
    assert_eq!(
        clip_audio(harness.state()).filters,
        [tally::scene::AudioFilter::Gain { db: -20.0 }]
    );
    master_rms_until(&mut harness, |rms| (rms - (loud - 20.0)).abs() < 5.0);

    // A limiter after it, moved up before it, then removed.
    add_filter(&mut harness, "Limiter");
    let names = |app: &TallyApp| -> Vec<&'static str> {
        clip_audio(app).filters.iter().map(|f| f.name()).collect()
    };
    assert_eq!(names(harness.state()), ["gain", "limiter"]);
    click_in_dock(&mut harness, "Up", 1);
    assert_eq!(names(harness.state()), ["limiter", "gain"]);
    click_in_dock(&mut harness, "Remove", 0);
    assert_eq!(
        clip_audio(harness.state()).filters,
        [tally::scene::AudioFilter::Gain { db: -20.0 }]
    );

    // The sync offset is the strip's too; then every edit is undone.
    harness
        .get_by_role_and_label(egui::accesskit::Role::SpinButton, "sync offset")
        .set_value_accesskit(120.0);
    harness.run_steps(2);
    assert_eq!(clip_audio(harness.state()).sync_offset_ms, 120);
    for _ in 0..6 {
        harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
        harness.run_steps(2);
    }
    assert_eq!(
        clip_audio(harness.state()),
        tally::scene::AudioSettings::default()
    );
    master_rms_until(&mut harness, |rms| (rms - loud).abs() < 5.0);
}

#[test]
fn the_monitor_rate_chosen_in_settings_paces_the_window_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let show = write_scene(dir.path(), "show.toml", SHOW);
    let mut harness = harness(&show);
    harness.run_steps(2);
    // The canvas rate until asked otherwise.
    let canvas_fps = harness.state().collection().canvas.fps.as_f64();
    assert_eq!(harness.state().window_fps(), canvas_fps);
    harness.get_by_label("Settings").click();
    harness.run_steps(2);
    choose(&mut harness, "Monitors redraw", "10 times a second");
    assert_eq!(harness.state().window_fps(), 10.0);
    harness.get_by_label("Save settings").click();
    harness.run_steps(2);
    drop(harness);
    let saved = std::fs::read_to_string(dir.path().join("settings.toml")).unwrap();
    assert!(saved.contains("monitor_fps = 10"), "{saved}");
    // The next time the app opens it redraws as often as chosen.
    let harness = self::harness(&show);
    assert_eq!(harness.state().window_fps(), 10.0);
}

const RUNDOWN: &str = r#"
collection = "show.toml"

[[cues]]
name = "Bars up"
actions = [{ do = "take", scene = "Bars" }]

[[cues]]
name = "Back"
actions = [{ do = "take", scene = "Main", transition = "fade", duration_ms = 200 }]

[[cues]]
name = "Timed"
at = "00:10:00"
actions = [{ do = "take", scene = "Bars" }]
"#;

/// The app on a show script (with the SHOW collection), its settings file beside it.
fn show_harness(dir: &Path) -> (Harness<'static, TallyApp>, std::path::PathBuf) {
    write_scene(dir, "show.toml", SHOW);
    let show = write_scene(dir, "run.show.toml", RUNDOWN);
    (harness(&show), show)
}

fn next_cue(app: &TallyApp) -> Option<usize> {
    app.controller()
        .cue_list()
        .expect("a show is open")
        .status
        .next
}

#[test]
fn go_and_space_fire_the_cue_list_and_the_countdown_shows() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, _) = show_harness(dir.path());
    step_until(&mut harness, |app| program(app) == "Main");
    assert!(harness
        .query_by_label_contains("Cue List: run.show.toml")
        .is_some());
    assert!(harness
        .query_by_label_contains("next: Bars up (waits for GO)")
        .is_some());
    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, "GO")
        .click();
    harness.run_steps(2);
    step_until(&mut harness, |app| program(app) == "Bars");
    assert_eq!(next_cue(harness.state()), Some(1));
    harness.key_press(egui::Key::Space);
    harness.run_steps(2);
    step_until(&mut harness, |app| program(app) == "Main");
    assert_eq!(next_cue(harness.state()), Some(2));
    // The timed cue counts down on the show clock: ten minutes less the time run so far.
    harness.run_steps(2);
    assert!(harness
        .query_by_label_contains("next: Timed in 00:09:")
        .is_some());
}

#[test]
fn cues_edited_in_the_app_are_undone_and_the_show_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let (mut harness, show_file) = show_harness(dir.path());
    step_until(&mut harness, |app| program(app) == "Main");
    let cues = |app: &TallyApp| app.controller().cue_list().unwrap().cues;
    harness.get_by_label("2. Back").click();
    harness.run_steps(2);
    choose(&mut harness, "Trigger", "after the cue above");
    assert_eq!(
        cues(harness.state())[1].trigger,
        tally::show::Trigger::After(Duration::from_secs(5))
    );
    let delay = harness.get_by_role_and_label(egui::accesskit::Role::TextInput, "Delay");
    delay.focus();
    harness.run_steps(1);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.run_steps(1);
    harness
        .get_by_role_and_label(egui::accesskit::Role::TextInput, "Delay")
        .type_text("1m 30s");
    harness.run_steps(1);
    harness.key_press(egui::Key::Enter);
    harness.run_steps(2);
    assert_eq!(
        cues(harness.state())[1].trigger,
        tally::show::Trigger::After(Duration::from_secs(90))
    );
    harness.get_by_label("Undo").click();
    harness.run_steps(2);
    assert_eq!(
        cues(harness.state())[1].trigger,
        tally::show::Trigger::After(Duration::from_secs(5))
    );
    harness.get_by_label("Undo").click();
    harness.run_steps(2);
    assert_eq!(cues(harness.state())[1].trigger, tally::show::Trigger::Go);

    harness.get_by_label("Delete cue").click();
    harness.run_steps(2);
    assert_eq!(cues(harness.state()).len(), 2);
    harness.get_by_label("Undo").click();
    harness.run_steps(2);
    assert_eq!(cues(harness.state())[1].name, "Back");

    // A cue from what is on air goes in at the next cue's place, and fires next.
    harness.get_by_label("Add cue").click();
    harness.run_steps(2);
    let added = &cues(harness.state())[0];
    assert_eq!(added.name, "Cue 4");
    assert_eq!(
        added.actions.first(),
        Some(&tally::show::Action::Take {
            scene: "Main".into(),
            transition: tally::engine::Transition::fade(Duration::from_millis(300)),
        })
    );
    assert!(harness.query_by_label_contains("(unsaved)").is_some());
    harness.get_by_label("Save show").click();
    harness.run_steps(2);
    let saved = tally::show::load_file(&show_file).expect("the saved show loads");
    assert_eq!(saved.cues, cues(harness.state()));
    assert!(harness.query_by_label_contains("(unsaved)").is_none());
}

#[test]
fn a_remote_client_takes_a_scene_to_program_in_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let collection = write_scene(dir.path(), "show.toml", SHOW);
    let settings = dir.path().join("settings.toml");
    // Port 0: an ephemeral port, which the app reports.
    std::fs::write(&settings, "remote_control = true\nremote_port = 0\n").unwrap();
    let mut harness = app_with(Some(collection), settings);
    step_until(&mut harness, |app| program(app) == "Main");
    let address = harness
        .state()
        .remote_address()
        .expect("remote control serves");
    let mut client = common::raw_client(&format!("ws://{address}"), Some("obswebsocket.json"));
    common::identify(&mut client);
    client
        .send(tungstenite::Message::text(
            serde_json::json!({"op": 6, "d": {"requestType": "SetCurrentProgramScene",
                "requestId": "take", "requestData": {"sceneName": "Bars"}}})
            .to_string(),
        ))
        .unwrap();
    // The app answers between its redraws.
    step_until(&mut harness, |app| program(app) == "Bars");
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("Program: Bars").is_some());
    let answer = loop {
        let message = client.read().expect("the answer");
        let value: serde_json::Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        if value["op"] == 7 {
            break value;
        }
    };
    assert_eq!(answer["d"]["requestId"], "take");
    assert_eq!(answer["d"]["requestStatus"]["code"], 100, "{answer}");
    // And a change made in the app reaches the client as an event.
    harness.get_by_label("Main").click();
    harness.run_steps(2);
    harness.get_by_label("Transition").click();
    harness.run_steps(2);
    // The window keeps drawing (and so hands the show's events on) while the client waits.
    client
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let event = loop {
        assert!(
            Instant::now() < deadline,
            "no event for the take made in the app"
        );
        harness.step();
        let Ok(message) = client.read() else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        // The remote take's own event comes first.
        if value["op"] == 5
            && value["d"]["eventType"] == "CurrentProgramSceneChanged"
            && value["d"]["eventData"]["sceneName"] != "Bars"
        {
            break value;
        }
    };
    assert_eq!(event["d"]["eventData"]["sceneName"], "Main");
}

#[test]
fn remote_control_opens_to_other_computers_only_with_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let collection = write_scene(dir.path(), "show.toml", SHOW);
    let settings = dir.path().join("settings.toml");
    std::fs::write(&settings, "remote_control = true\nremote_port = 0\n").unwrap();
    let mut harness = app_with(Some(collection), settings);
    step_until(&mut harness, |app| {
        app.remote_address().is_some_and(|a| a.ip().is_loopback())
    });
    harness.get_by_label("Settings").click();
    harness.run_steps(2);
    harness
        .get_by_label("Other computers may connect (every network; needs a password)")
        .click();
    harness.run_steps(3);
    // Refused without a password, and the window says what to do.
    assert_eq!(harness.state().remote_address(), None);
    assert!(harness
        .query_by_label_contains("open to the network without a password")
        .is_some());
    let field = harness
        .get_all_by_label("Password")
        .find(|node| node.accesskit_node().role() != egui::accesskit::Role::Label)
        .expect("the password field");
    field.focus();
    field.type_text("open sesame");
    step_until(&mut harness, |app| {
        app.remote_address().is_some_and(|a| !a.ip().is_loopback())
    });
    assert!(harness
        .query_by_label_contains("other computers too")
        .is_some());
    // A client without the password is refused with the spec's code.
    let port = harness.state().remote_address().unwrap().port();
    let mut client = common::raw_client(&format!("ws://127.0.0.1:{port}"), None);
    common::identify(&mut client);
    assert_eq!(common::close_code(&mut client), Some(4009));
}

#[test]
fn a_codec_chosen_in_settings_records_and_shows_in_stats() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("recordings")).unwrap();
    let (mut harness, _) = settings_open_with_recordings_folder(dir.path());
    choose(&mut harness, "Codec", "AV1");
    // The encoder follows the codec: AV1's software encoder, and NVENC's AV1 where it opens.
    let encoder = harness.get_by_role_and_label(egui::accesskit::Role::ComboBox, "Encoder");
    let shown = format!("{:?}", encoder.accesskit_node());
    assert!(shown.contains("svt-av1 (software)"), "{shown}");
    harness.get_by_label("Close window").click();
    harness.run_steps(2);
    harness.get_by_label("Start Recording").click();
    harness.run_steps(2);
    step_until(&mut harness, |app| {
        app.engine()
            .is_some_and(|engine| engine.stats().frames_encoded >= 45)
    });
    harness.run_steps(2);
    assert_eq!(
        harness.state().engine().unwrap().stats().encoder.as_deref(),
        Some("AV1 (libsvtav1)")
    );
    assert!(harness.query_by_label("video AV1 (libsvtav1)").is_some());
    harness.get_by_label("Stop Recording").click();
    harness.run_steps(2);
    step_until(&mut harness, |app| app.saved_recording().is_some());
    let file = harness.state().saved_recording().unwrap().to_path_buf();
    assert_eq!(
        common::probe(&file, "v:0", "stream=codec_name", false),
        ["av1"]
    );
    assert_eq!(common::decode_errors(&file), "");
    let saved = std::fs::read_to_string(dir.path().join("settings.toml")).unwrap_or_default();
    assert!(
        !saved.contains("av1"),
        "only Save settings writes the file: {saved}"
    );
}

#[test]
fn a_recording_profile_in_settings_records_at_its_own_size_and_shows_in_stats() {
    let dir = tempfile::tempdir().unwrap();
    let recordings = dir.path().join("recordings");
    std::fs::create_dir_all(&recordings).unwrap();
    std::fs::write(
        dir.path().join("settings.toml"),
        format!(
            "recordings_dir = {:?}\nprofiles = [\"small=size=320x180,bitrate=800\"]\n\
             recording_profile = \"small\"\n",
            recordings.display().to_string()
        ),
    )
    .unwrap();
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    harness.run_steps(2);
    harness.get_by_label("Start Recording").click();
    harness.run_steps(2);
    step_until(&mut harness, |app| {
        app.engine().is_some_and(|engine| {
            let stats = engine.stats();
            stats.frames_encoded >= 45 && stats.encodes.iter().any(|e| e.profile.is_some())
        })
    });
    harness.run_steps(2);
    let label = "small: H.264 (libx264) 320x180, 800 kbps";
    assert!(
        harness.query_by_label(label).is_some(),
        "no {label:?} in Stats"
    );
    harness.get_by_label("Stop Recording").click();
    harness.run_steps(2);
    step_until(&mut harness, |app| app.saved_recording().is_some());
    let file = harness.state().saved_recording().unwrap().to_path_buf();
    assert_eq!(
        common::probe(&file, "v:0", "stream=width,height", false),
        ["320,180"]
    );
    assert_eq!(common::decode_errors(&file), "");
}

#[test]
fn hls_from_settings_is_served_as_a_low_latency_ladder_while_streaming_and_ends_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("hls");
    let port = common::free_port();
    std::fs::write(
        dir.path().join("settings.toml"),
        format!(
            "keyframe_interval_secs = 1.0\n\
             profiles = [\"high=size=640x360,bitrate=800\", \"low=size=320x180,bitrate=300\"]\n\
             hls = true\nhls_dir = {:?}\nhls_serve = \"127.0.0.1:{port}\"\n\
             hls_ladder = [\"high\", \"low\"]\nhls_low_latency = true\nhls_segment_secs = 1.0\n",
            folder.display().to_string()
        ),
    )
    .unwrap();
    let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut harness = harness(&write_scene(dir.path(), "show.toml", SHOW));
    harness.run_steps(2);
    // No destination in Settings: HLS alone is a stream.
    harness.get_by_label("Start Streaming").click();
    harness.run_steps(2);
    step_until_within(&mut harness, Duration::from_secs(30), |app| {
        app.controller().hls_url().is_some()
            && common::http_get(address, "/live/low/media.m3u8").is_some_and(|(code, body)| {
                code == 200 && String::from_utf8_lossy(&body).contains("#EXT-X-PART:")
            })
            && common::http_get(address, "/live/master.m3u8").is_some_and(|(code, _)| code == 200)
    });
    assert_eq!(
        harness.state().controller().hls_url(),
        Some(format!("http://{address}/live/master.m3u8"))
    );
    let (_, master) = common::http_get(address, "/live/master.m3u8").unwrap();
    let master = String::from_utf8_lossy(&master).to_string();
    assert!(
        master.contains("RESOLUTION=640x360") && master.contains("RESOLUTION=320x180"),
        "{master}"
    );
    assert!(master.contains("high/media.m3u8") && master.contains("low/media.m3u8"));
    harness.run_steps(2);
    harness.get_by_label("Stop Streaming").click();
    harness.run_steps(2);
    step_until_within(&mut harness, Duration::from_secs(20), |app| {
        app.controller().hls_url().is_none()
    });
    // Ended: each rendition's playlist says so, and the server is gone.
    for rendition in ["high", "low"] {
        let playlist = std::fs::read_to_string(folder.join(rendition).join("media.m3u8")).unwrap();
        assert!(playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");
    }
    assert!(common::http_get(address, "/live/master.m3u8").is_none());
}
