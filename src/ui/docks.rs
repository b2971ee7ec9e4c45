//! The docks around the monitors: Scenes, Sources, Properties, Audio Mixer, Transitions,
//! Controls and Stats, and the File bar above. Each dock reads the app's state and turns
//! clicks into edits (undoable) or engine commands.

use super::app::{TallyApp, TransitionChoice};
use super::monitor::{PREVIEW_GREEN, PROGRAM_RED};
use super::pickers::{PickFor, IMAGE_EXTENSIONS};
use crate::audio::Levels;
use crate::control::Request;
use crate::encode::{VideoCodec, VideoEncoderKind};
use crate::scene::{
    AudioSettings, Color, Item, MediaSource, Monitoring, Source, SourceKind, TextSource,
};
use eframe::egui::{self, Color32, RichText};
use std::path::Path;

const AMBER: Color32 = Color32::from_rgb(230, 160, 30);

pub fn top_bar(app: &mut TallyApp, ui: &mut egui::Ui) {
    egui::Panel::top("file bar").show(ui, |ui| {
        ui.horizontal(|ui| {
            let name = app
                .file()
                .as_ref()
                .and_then(|path| path.file_name())
                .map_or("untitled".to_string(), |name| {
                    name.to_string_lossy().into_owned()
                });
            let full = app
                .file()
                .as_ref()
                .map_or("not saved yet".to_string(), |path| {
                    path.display().to_string()
                });
            let marker = if app.controller.state().unsaved {
                " (unsaved)"
            } else {
                ""
            };
            ui.label(RichText::new(format!("Tally — {name}{marker}")).strong())
                .on_hover_text(full);
            ui.separator();
            let label = ui.label("File");
            ui.add(
                egui::TextEdit::singleline(&mut app.open_path)
                    .hint_text("scene collection file")
                    .desired_width(260.0),
            )
            .labelled_by(label.id);
            // With a path typed in File, Open and Save as use it; with none they ask in a
            // file dialog.
            let typed = app.open_path.trim().to_string();
            if ui.button("Open").on_hover_text("Ctrl+O").clicked() {
                if typed.is_empty() {
                    app.browse(PickFor::OpenCollection);
                } else {
                    app.request_open(typed.clone().into());
                }
            }
            if ui.button("Save as").clicked() {
                if typed.is_empty() {
                    app.browse(PickFor::SaveCollectionAs);
                } else {
                    app.save(Some(std::path::Path::new(&typed)));
                }
            }
            if ui
                .add_enabled(app.file().is_some(), egui::Button::new("Save"))
                .on_hover_text("Ctrl+S")
                .clicked()
            {
                app.save(None);
            }
            if app.pickers.is_open() {
                ui.label(RichText::new("choosing a file...").small());
            }
            ui.separator();
            if ui
                .add_enabled(app.controller.state().can_undo, egui::Button::new("Undo"))
                .on_hover_text("Ctrl+Z")
                .clicked()
            {
                app.undo();
            }
            if ui
                .add_enabled(app.controller.state().can_redo, egui::Button::new("Redo"))
                .on_hover_text("Ctrl+Y")
                .clicked()
            {
                app.redo();
            }
        });
    });
}

pub fn bottom_docks(app: &mut TallyApp, ui: &mut egui::Ui) {
    egui::Panel::bottom("docks")
        .resizable(true)
        .default_size(300.0)
        .show(ui, |ui| {
            // Fixed widths that fit 1280 pixels; wider windows give the rest to Stats, and
            // narrower ones scroll.
            egui::ScrollArea::horizontal().show(ui, |ui| {
                ui.horizontal_top(|ui| {
                    dock(ui, "Scenes", 140.0, |ui| scenes(app, ui));
                    dock(ui, "Sources", 165.0, |ui| sources(app, ui));
                    dock(ui, "Properties", 165.0, |ui| {
                        super::properties::properties(app, ui)
                    });
                    dock(ui, "Audio Mixer", 220.0, |ui| mixer(app, ui));
                    dock(ui, "Transitions", 230.0, |ui| transitions(app, ui));
                    dock(ui, "Controls", 140.0, |ui| controls(app, ui));
                    let rest = (ui.available_width() - 16.0).max(150.0);
                    dock(ui, "Stats", rest, |ui| stats(app, ui));
                });
            });
        });
}

fn dock(ui: &mut egui::Ui, title: &str, width: f32, contents: impl FnOnce(&mut egui::Ui)) {
    let height = ui.available_height();
    let layout = egui::Layout::top_down(egui::Align::Min);
    ui.allocate_ui_with_layout(egui::vec2(width, height), layout, |ui| {
        // No outline: on a software rasteriser each thin line costs as much as a large area
        // (see `TallyApp::with_settings_file`); the gaps and titles set the docks apart.
        let margin = 7;
        egui::Frame::new().inner_margin(margin).show(ui, |ui| {
            // The dock fills its share exactly, so the panel keeps its height frame to frame.
            let inner = f32::from(2 * margin);
            ui.set_width(width - inner);
            ui.set_min_height(height - inner);
            ui.label(RichText::new(title).strong());
            ui.separator();
            egui::ScrollArea::vertical()
                .id_salt(title)
                .show(ui, contents);
        });
    });
}

fn scenes(app: &mut TallyApp, ui: &mut egui::Ui) {
    let program = app.program_scene();
    let preview = app.studio_mode.then(|| app.edited_scene_name());
    let names: Vec<String> = app
        .collection()
        .scenes
        .iter()
        .map(|s| s.name.clone())
        .collect();
    for name in names {
        ui.horizontal(|ui| {
            // The tally light: red on program, green in preview.
            let color = if name == program {
                PROGRAM_RED
            } else if preview.as_deref() == Some(name.as_str()) {
                PREVIEW_GREEN
            } else {
                Color32::from_gray(70)
            };
            let (rect, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
            ui.painter().circle_filled(rect.center(), 5.0, color);
            let chosen =
                preview.as_deref() == Some(name.as_str()) || (!app.studio_mode && name == program);
            if ui.selectable_label(chosen, &name).clicked() {
                app.choose_scene(&name);
            }
        });
    }
}

fn sources(app: &mut TallyApp, ui: &mut egui::Ui) {
    let scene_name = app.edited_scene_name();
    let Some(scene_index) = app.edited_scene_index() else {
        return;
    };
    ui.label(RichText::new(format!("in {scene_name}, top first")).small());
    let count = app.collection().scenes[scene_index].items.len();
    for index in (0..count).rev() {
        let item = &app.collection().scenes[scene_index].items[index];
        let (source, mut visible, mut locked) = (item.source.clone(), item.visible, item.locked);
        ui.horizontal(|ui| {
            let shown = ui.checkbox(&mut visible, "").on_hover_text("visible");
            // Named for screen readers (and tests); the item's name stands beside it.
            shown.widget_info(|| {
                egui::WidgetInfo::selected(
                    egui::Role::CheckBox,
                    true,
                    visible,
                    format!("show {source}"),
                )
            });
            if shown.changed() {
                app.edit(|c| c.scenes[scene_index].items[index].visible = visible);
            }
            if ui
                .toggle_value(&mut locked, RichText::new("lock").small())
                .on_hover_text(format!("lock {source} against moving in the preview"))
                .changed()
            {
                app.edit(|c| c.scenes[scene_index].items[index].locked = locked);
            }
            if ui
                .selectable_label(app.selected == Some(index), &source)
                .clicked()
            {
                app.selected = Some(index);
            }
        });
    }
    ui.separator();
    ui.horizontal_wrapped(|ui| {
        if ui.button("+ Text").clicked() {
            let text = app.new_text.clone();
            add_source(
                app,
                "text",
                SourceKind::Text(TextSource {
                    text,
                    font: None,
                    size: 48.0,
                    color: Color::WHITE,
                    outline: None,
                }),
            );
        }
        if ui.button("+ Colour").clicked() {
            let canvas = app.collection().canvas;
            add_source(
                app,
                "colour",
                SourceKind::Color {
                    color: Color::rgba(40, 60, 90, 255),
                    width: canvas.width / 4,
                    height: canvas.height / 4,
                },
            );
        }
        if ui.button("+ Image...").clicked() {
            app.browse(PickFor::NewImage);
        }
        if ui.button("+ Media...").clicked() {
            app.browse(PickFor::NewMedia);
        }
        if ui.button("+ Test pattern").clicked() {
            add_source(
                app,
                "pattern",
                SourceKind::TestPattern {
                    width: 640,
                    height: 360,
                },
            );
        }
    });
    let label = ui.label("New text");
    ui.add(egui::TextEdit::singleline(&mut app.new_text))
        .labelled_by(label.id);
    let selected = app.selected.filter(|index| *index < count);
    ui.horizontal(|ui| {
        let Some(index) = selected else {
            return;
        };
        if ui.button("Raise").clicked() && index + 1 < count {
            app.edit(|c| c.scenes[scene_index].items.swap(index, index + 1));
            app.selected = Some(index + 1);
        }
        if ui.button("Lower").clicked() && index > 0 {
            app.edit(|c| c.scenes[scene_index].items.swap(index, index - 1));
            app.selected = Some(index - 1);
        }
        if ui.button("Delete").clicked() {
            app.delete_selected_item();
        }
    });
    ui.label(RichText::new("Drop image or media files on the window to add them.").small());
}

/// A new source of `kind` with an unused id, shown on top of the edited scene.
fn add_source(app: &mut TallyApp, base: &str, kind: SourceKind) {
    let id = (1..)
        .map(|n| format!("{base}{n}"))
        .find(|id| app.collection().source(id).is_none())
        .unwrap_or_else(|| base.to_string());
    let Some(scene_index) = app.edited_scene_index() else {
        return;
    };
    let item = Item::new(id.clone(), [40.0, 40.0]);
    app.edit(|c| {
        c.sources.push(Source { id, kind });
        c.scenes[scene_index].items.push(item);
    });
    app.selected = Some(app.collection().scenes[scene_index].items.len() - 1);
}

/// A file dropped on the window or chosen with + Image... / + Media...: an image or a media
/// source, its path relative to the collection's folder when inside it.
pub fn add_file_source(app: &mut TallyApp, chosen: &Path) {
    let path = &app.collection_relative(chosen);
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let kind = if IMAGE_EXTENSIONS.contains(&extension.as_str()) {
        SourceKind::Image {
            path: path.to_path_buf(),
        }
    } else {
        SourceKind::Media(MediaSource {
            path: path.to_path_buf(),
            looping: true,
            audio: AudioSettings::default(),
        })
    };
    let base = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .map(|stem| {
            stem.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect::<String>()
        })
        .filter(|stem| !stem.is_empty())
        .unwrap_or_else(|| "file".into());
    add_source(app, &base, kind);
}

fn mixer(app: &mut TallyApp, ui: &mut egui::Ui) {
    let levels = app.stats.audio_levels.clone();
    if let Some(levels) = &levels {
        meter(ui, "Master", &levels.master);
    }
    let strips: Vec<(String, AudioSettings)> = app
        .collection()
        .sources
        .iter()
        .filter_map(|s| Some((s.id.clone(), s.kind.audio()?.clone())))
        .collect();
    if strips.is_empty() {
        ui.label("No sources with sound.");
    }
    for (id, settings) in strips {
        ui.separator();
        let reading = levels
            .as_ref()
            .and_then(|l| l.sources.iter().find(|(source, _)| *source == id))
            .map(|(_, reading)| *reading);
        if let Some(reading) = &reading {
            meter(ui, &id, reading);
        } else {
            ui.label(&id);
        }
        let mut changed = settings.clone();
        ui.horizontal(|ui| {
            ui.add(
                egui::Slider::new(&mut changed.volume_db, -60.0..=10.0)
                    .suffix(" dB")
                    .text("fader"),
            );
        });
        ui.horizontal(|ui| {
            ui.toggle_value(&mut changed.muted, "mute");
            egui::ComboBox::from_id_salt(format!("monitoring {id}"))
                .width(120.0)
                .selected_text(monitoring_label(changed.monitoring))
                .show_ui(ui, |ui| {
                    for choice in [
                        Monitoring::Off,
                        Monitoring::MonitorOnly,
                        Monitoring::MonitorAndOutput,
                    ] {
                        ui.selectable_value(
                            &mut changed.monitoring,
                            choice,
                            monitoring_label(choice),
                        );
                    }
                })
                .response
                .on_hover_text("monitoring")
                // Named for screen readers (and tests) without a label taking room on screen.
                .widget_info(|| {
                    egui::WidgetInfo::labeled(egui::Role::ComboBox, true, "monitoring")
                });
        });
        if changed != settings {
            app.edit(|c| {
                if let Some(audio) = c
                    .sources
                    .iter_mut()
                    .find(|s| s.id == id)
                    .and_then(|s| s.kind.audio_mut())
                {
                    *audio = changed;
                }
            });
        }
    }
}

fn monitoring_label(monitoring: Monitoring) -> &'static str {
    match monitoring {
        Monitoring::Off => "monitor off",
        Monitoring::MonitorOnly => "monitor only",
        Monitoring::MonitorAndOutput => "monitor and output",
    }
}

/// A horizontal meter on a -60..0 dBFS scale: RMS as the bar, sample peak as a tick; green up
/// to -20, yellow to -9, red above.
fn meter(ui: &mut egui::Ui, label: &str, levels: &Levels) {
    ui.label(format!(
        "{label}  {:.1} dBFS peak, {:.1} RMS",
        levels.sample_peak_dbfs.max(-99.0),
        levels.rms_dbfs.max(-99.0)
    ));
    let (rect, _) =
        ui.allocate_exact_size(egui::vec2(ui.available_width(), 10.0), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, Color32::from_gray(30));
    let x_of =
        |db: f32| rect.left() + rect.width() * ((db.max(-60.0) + 60.0) / 60.0).clamp(0.0, 1.0);
    for (from, to, color) in [
        (-60.0, -20.0, Color32::from_rgb(40, 170, 60)),
        (-20.0, -9.0, Color32::from_rgb(220, 200, 40)),
        (-9.0, 0.0, Color32::from_rgb(220, 50, 40)),
    ] {
        let end = levels.rms_dbfs.min(to);
        if end > from {
            painter.rect_filled(
                egui::Rect::from_x_y_ranges(x_of(from)..=x_of(end), rect.y_range()),
                0.0,
                color,
            );
        }
    }
    if levels.sample_peak_dbfs > -60.0 {
        let x = x_of(levels.sample_peak_dbfs);
        painter.line_segment(
            [egui::pos2(x, rect.top()), egui::pos2(x, rect.bottom())],
            egui::Stroke::new(2.0, Color32::WHITE),
        );
    }
}

fn transitions(app: &mut TallyApp, ui: &mut egui::Ui) {
    egui::ComboBox::from_label("kind")
        .selected_text(app.transition.label())
        .show_ui(ui, |ui| {
            for choice in TransitionChoice::ALL {
                ui.selectable_value(&mut app.transition, choice, choice.label());
            }
        });
    ui.add(
        egui::Slider::new(&mut app.transition_ms, 0..=5000)
            .suffix(" ms")
            .text("length"),
    );
    ui.horizontal(|ui| {
        if ui
            .button("Cut")
            .on_hover_text("quick: cut to the preview")
            .clicked()
        {
            app.request(Request::Take(crate::engine::Transition::CUT));
        }
        if ui
            .button("Fade")
            .on_hover_text("quick: 300 ms fade")
            .clicked()
        {
            app.request(Request::Take(crate::engine::Transition::fade(
                std::time::Duration::from_millis(300),
            )));
        }
    });
    let enabled = app.studio_mode;
    if ui
        .add_enabled(
            enabled,
            egui::Button::new(RichText::new("Transition").strong())
                .min_size(egui::vec2(120.0, 32.0)),
        )
        .on_hover_text("Enter")
        .clicked()
    {
        app.take();
    }
    let response = ui.add_enabled(
        enabled,
        egui::Slider::new(&mut app.tbar, 0.0..=1.0)
            .show_value(false)
            .text("T-bar"),
    );
    if response.changed() {
        let transition = app.chosen_transition();
        app.request(Request::SetTBar {
            position: app.tbar,
            transition,
        });
        if app.tbar >= 1.0 {
            app.tbar = 0.0;
        }
    }
    if let Some(progress) = app.stats.switcher.transition_progress {
        ui.add(egui::ProgressBar::new(progress).text("transition"));
    }
}

fn controls(app: &mut TallyApp, ui: &mut egui::Ui) {
    let mut studio = app.studio_mode;
    if ui.toggle_value(&mut studio, "Studio Mode").changed() {
        app.set_studio_mode(studio);
    }
    match app.recording().clone() {
        Some(path) => {
            if ui
                .button(RichText::new("Stop Recording").color(PROGRAM_RED))
                .clicked()
            {
                app.stop_recording();
            }
            ui.label(
                RichText::new(format!("REC {}", path.display()))
                    .color(PROGRAM_RED)
                    .small(),
            );
        }
        None => {
            if ui.button("Start Recording").clicked() {
                app.start_recording();
            }
        }
    }
    if let Some(path) = &app.finishing_recording {
        ui.label(RichText::new(format!("finishing {}...", path.display())).small());
    } else if let Some(path) = &app.saved_recording {
        ui.label(RichText::new(format!("saved {}", path.display())).small());
    }
    if app.streaming() {
        if ui
            .button(RichText::new("Stop Streaming").color(PROGRAM_RED))
            .clicked()
        {
            app.stop_streaming();
        }
    } else if ui
        .add_enabled(
            !app.settings.destinations.is_empty() || app.settings.hls,
            egui::Button::new("Start Streaming"),
        )
        .on_disabled_hover_text("add a destination or turn on HLS in Settings")
        .clicked()
    {
        app.start_streaming();
    }
    if ui.button("Settings").clicked() {
        app.show_settings = true;
    }
}

/// Encoder, recording and stream settings, saved in the config directory.
pub fn settings_window(app: &mut TallyApp, ctx: &egui::Context) {
    let mut open = app.show_settings;
    egui::Window::new("Settings")
        .open(&mut open)
        .collapsible(false)
        .default_width(460.0)
        .show(ctx, |ui| {
            canvas_settings(app, ui);
            ui.separator();
            egui::Grid::new("settings").num_columns(2).show(ui, |ui| {
                let label = ui.label("Codec");
                egui::ComboBox::from_id_salt("codec")
                    .selected_text(app.settings.codec().label())
                    .show_ui(ui, |ui| {
                        for codec in VideoCodec::ALL {
                            ui.selectable_value(&mut app.settings.codec, codec.key().to_string(), codec.label());
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Encoder");
                let codec = app.settings.codec();
                let software = codec.software_encoder();
                let mut encoders = vec![
                    (software, format!("{} (software)", software.key())),
                    (VideoEncoderKind::Nvenc, "NVENC (NVIDIA hardware)".to_string()),
                    (VideoEncoderKind::Auto, format!("Auto (NVENC if it opens, else {})", software.key())),
                ];
                if codec == VideoCodec::Av1 {
                    encoders.insert(1, (VideoEncoderKind::Rav1e, "rav1e (software, slower: for renders)".to_string()));
                }
                let chosen = app.settings.encoder();
                let chosen_name = encoders
                    .iter()
                    .find(|(kind, _)| *kind == chosen)
                    .map_or(encoders[0].1.clone(), |(_, name)| name.clone());
                egui::ComboBox::from_id_salt("encoder")
                    .selected_text(chosen_name)
                    .show_ui(ui, |ui| {
                        for (kind, name) in encoders.clone() {
                            ui.selectable_value(&mut app.settings.encoder, kind.key().to_string(), name);
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();
                // Whether the hardware encoder opens here, checked once (a short test encode).
                let nvenc_chosen = chosen == VideoEncoderKind::Nvenc;
                let nvenc = app.nvenc_usable(codec);
                ui.label("");
                match nvenc {
                    Ok(()) => ui.label(RichText::new("NVENC opens on this machine").small()),
                    Err(why) => ui.label(
                        RichText::new(format!("NVENC not usable here: {why}"))
                            .small()
                            .color(if nvenc_chosen { AMBER } else { ui.visuals().weak_text_color() }),
                    ),
                };
                ui.end_row();
                ui.label("Preset");
                egui::ComboBox::from_id_salt("preset")
                    .selected_text(app.settings.preset.clone())
                    .show_ui(ui, |ui| {
                        for preset in ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] {
                            ui.selectable_value(&mut app.settings.preset, preset.to_string(), preset);
                        }
                    })
                    .response
                    .on_hover_text("x264's preset names; x265 shares them, SVT-AV1 and NVENC take their nearest");
                ui.end_row();
                ui.label("Bitrate");
                ui.add(
                    egui::DragValue::new(&mut app.settings.bitrate_kbps)
                        .range(200..=50_000)
                        .suffix(" kbps"),
                );
                ui.end_row();
                ui.label("Keyframe every");
                ui.add(
                    egui::DragValue::new(&mut app.settings.keyframe_interval_secs)
                        .range(0.5..=10.0)
                        .speed(0.5)
                        .suffix(" s"),
                );
                ui.end_row();
                let label = ui.label("Recordings folder");
                ui.horizontal(|ui| {
                    let mut folder = app.settings.recordings_dir.display().to_string();
                    if ui.text_edit_singleline(&mut folder).labelled_by(label.id).changed() {
                        app.settings.recordings_dir = folder.into();
                    }
                    if ui.button("Browse...").clicked() {
                        app.browse(PickFor::RecordingsFolder);
                    }
                });
                ui.end_row();
                ui.label("Recording format");
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut app.settings.recording_format, "mp4".to_string(), "MP4");
                    ui.selectable_value(&mut app.settings.recording_format, "mkv".to_string(), "MKV");
                });
                ui.end_row();
                let label = ui.label("Monitors redraw");
                let rates = [
                    (0, "at the canvas rate"),
                    (15, "15 times a second"),
                    (10, "10 times a second"),
                    (5, "5 times a second"),
                ];
                let chosen = rates
                    .iter()
                    .find(|(fps, _)| *fps == app.settings.monitor_fps)
                    .map_or_else(|| format!("{} times a second", app.settings.monitor_fps), |(_, name)| name.to_string());
                egui::ComboBox::from_id_salt("monitor rate")
                    .selected_text(chosen)
                    .show_ui(ui, |ui| {
                        for (fps, name) in rates {
                            ui.selectable_value(&mut app.settings.monitor_fps, fps, name);
                        }
                    })
                    .response
                    .labelled_by(label.id)
                    .on_hover_text(
                        "Without a GPU the window's drawing competes with the program output: \
                         fewer redraws leave more for recording and streaming",
                    );
                ui.end_row();
            });
            ui.separator();
            let label = ui.label(
                "Stream destinations, one per line (rtmp://, rtmps://, srt://; PRIMARY|BACKUP; ${VAR} for keys)",
            );
            ui.label(
                RichText::new(
                    "SRT options go in the URL: srt://HOST:PORT?streamid=...&passphrase=...&latency_ms=200",
                )
                .small(),
            );
            ui.add(
                egui::TextEdit::multiline(&mut app.destinations_text)
                    .desired_rows(3)
                    .password(true)
                    .desired_width(f32::INFINITY),
            )
            .labelled_by(label.id);
            // What was typed stays hidden; each destination is shown with its key masked.
            for line in app.destinations_text.lines().filter(|l| !l.trim().is_empty()) {
                match crate::output::parse_destination(line) {
                    Ok(destination) => {
                        ui.label(RichText::new(format!("ok: {}", destination.primary.masked())).small())
                    }
                    Err(error) => ui.label(RichText::new(error.to_string()).color(AMBER).small()),
                };
            }
            encode_profile_settings(app, ui);
            hls_settings(app, ui);
            ui.label(
                RichText::new(
                    "Encoder changes apply when recording or streaming starts with neither running (both share one encoder unless a profile sets them apart).",
                )
                .small(),
            );
            ui.separator();
            remote_control_settings(app, ui);
            if ui.button("Save settings").clicked() {
                app.save_settings();
            }
        });
    app.show_settings = open;
}

/// Encode profiles: their definitions, and which one recordings and streams use (empty: the
/// encoding above, shared).
fn encode_profile_settings(app: &mut TallyApp, ui: &mut egui::Ui) {
    ui.separator();
    let label = ui.label(
        "Encode profiles, one per line (NAME=size=1280x720,bitrate=3000,codec=hevc,...; 1080p, 720p, 480p, 360p need none)",
    );
    ui.add(
        egui::TextEdit::multiline(&mut app.profiles_text)
            .desired_rows(2)
            .desired_width(f32::INFINITY),
    )
    .labelled_by(label.id);
    let base = app.settings.video();
    for line in app.profiles_text.lines().filter(|l| !l.trim().is_empty()) {
        // The canvas only matters for ladder names; checking a line needs none.
        match crate::encode::EncodeProfile::parse(line, &base, (1920, 1080)) {
            Ok(profile) => ui.label(RichText::new(format!("ok: {}", profile.name)).small()),
            Err(error) => ui.label(RichText::new(error.to_string()).color(AMBER).small()),
        };
    }
    let hint =
        "Empty: the encoding above, shared. Or a profile named above, or 1080p, 720p, 480p, 360p";
    egui::Grid::new("profiles").num_columns(2).show(ui, |ui| {
        let label = ui.label("Recording profile");
        ui.text_edit_singleline(&mut app.settings.recording_profile)
            .labelled_by(label.id)
            .on_hover_text(hint);
        ui.end_row();
        let label = ui.label("Stream profile");
        ui.text_edit_singleline(&mut app.settings.stream_profile)
            .labelled_by(label.id)
            .on_hover_text(hint);
        ui.end_row();
    });
}

/// HLS published while streaming: where it is written, where it is served, its ladder and
/// whether it is low-latency. Applied when streaming starts.
fn hls_settings(app: &mut TallyApp, ui: &mut egui::Ui) {
    ui.separator();
    // Folded by default: the window is tall already, and most shows stream without HLS.
    egui::CollapsingHeader::new("HLS")
        .default_open(app.settings.hls)
        .show(ui, |ui| hls_settings_body(app, ui));
}

fn hls_settings_body(app: &mut TallyApp, ui: &mut egui::Ui) {
    ui.checkbox(
        &mut app.settings.hls,
        "Publish HLS while streaming (CMAF segments; a browser or player on the LAN plays it)",
    );
    egui::Grid::new("hls").num_columns(2).show(ui, |ui| {
        let label = ui.label("HLS folder");
        ui.text_edit_singleline(&mut app.settings.hls_dir)
            .labelled_by(label.id)
            .on_hover_text("Empty: a temporary folder, removed when streaming stops");
        ui.end_row();
        let label = ui.label("Serve HLS at");
        ui.text_edit_singleline(&mut app.settings.hls_serve)
            .labelled_by(label.id)
            .on_hover_text(
                "ADDRESS:PORT for http://ADDRESS:PORT/live/master.m3u8 (127.0.0.1: this computer \
                 only); empty: only written to the folder",
            );
        ui.end_row();
        let label = ui.label("Push HLS to");
        ui.add(egui::TextEdit::singleline(&mut app.settings.hls_push).password(true))
            .labelled_by(label.id)
            .on_hover_text(
                "An origin or ingest's folder URL (http(s)://HOST/PATH/KEY/; ${VAR} for the \
                 key); empty: not pushed",
            );
        ui.end_row();
        let label = ui.label("HLS ladder");
        ui.text_edit_singleline(&mut app.hls_ladder_text)
            .labelled_by(label.id)
            .on_hover_text(
                "Profiles, comma-separated (for example 1080p,720p,480p); empty: one rendition \
                 at the stream profile",
            );
        ui.end_row();
        let label = ui.label("HLS segment (s)");
        ui.add(egui::DragValue::new(&mut app.settings.hls_segment_secs).range(0.5..=10.0))
            .labelled_by(label.id);
        ui.end_row();
    });
    ui.horizontal(|ui| {
        ui.checkbox(
            &mut app.settings.hls_low_latency,
            "Low-latency HLS (partial segments)",
        );
        let label = ui.label("Part (ms)");
        ui.add(egui::DragValue::new(&mut app.settings.hls_part_ms).range(100..=2000))
            .labelled_by(label.id);
    });
    if let Some(url) = app.controller.hls_url() {
        ui.label(RichText::new(format!("HLS: {url}")).small());
    }
}

/// Remote control (obs-websocket v5): on or off, this computer only or every network, port
/// and password, applied at once (the server restarts; the show goes on).
fn remote_control_settings(app: &mut TallyApp, ui: &mut egui::Ui) {
    ui.checkbox(
        &mut app.settings.remote_control,
        "Remote control (obs-websocket v5: Companion, Stream Deck, scripts)",
    );
    ui.horizontal(|ui| {
        let label = ui.label("Port");
        ui.add(egui::DragValue::new(&mut app.settings.remote_port).range(1..=65535))
            .labelled_by(label.id);
        let label = ui.label("Password");
        ui.add(
            egui::TextEdit::singleline(&mut app.settings.remote_password)
                .password(true)
                .desired_width(140.0),
        )
        .labelled_by(label.id);
    });
    let mut other_computers = !app.settings.remote_bind.is_loopback();
    if ui
        .checkbox(
            &mut other_computers,
            "Other computers may connect (every network; needs a password)",
        )
        .changed()
    {
        app.settings.remote_bind = if other_computers {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv4Addr::LOCALHOST.into()
        };
    }
    match (app.remote_address(), app.remote_problem()) {
        (Some(address), _) => {
            let reach = if address.ip().is_loopback() {
                "this computer only"
            } else {
                "other computers too"
            };
            ui.label(RichText::new(format!("serving ws://{address} ({reach})")).small());
        }
        (None, Some(problem)) => {
            ui.label(RichText::new(problem).color(AMBER).small());
        }
        (None, None) => {}
    }
}

/// The collection's canvas (it lives in the scene file, not in the settings): size and frame
/// rate, applied by restarting the engine, so not while recording or streaming.
fn canvas_settings(app: &mut TallyApp, ui: &mut egui::Ui) {
    const RATES: [(u32, u32, &str); 7] = [
        (24, 1, "24"),
        (25, 1, "25"),
        (30000, 1001, "29.97"),
        (30, 1, "30"),
        (50, 1, "50"),
        (60000, 1001, "59.94"),
        (60, 1, "60"),
    ];
    let current = app.collection().canvas;
    let mut draft = app.canvas_draft.unwrap_or(current);
    ui.label(RichText::new("Canvas (saved in the scene collection)").strong());
    egui::Grid::new("canvas settings")
        .num_columns(2)
        .show(ui, |ui| {
            let label = ui.label("canvas width");
            ui.add(
                egui::DragValue::new(&mut draft.width)
                    .range(16..=7680)
                    .suffix(" px"),
            )
            .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("canvas height");
            ui.add(
                egui::DragValue::new(&mut draft.height)
                    .range(16..=4320)
                    .suffix(" px"),
            )
            .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("frame rate");
            let shown = RATES
                .iter()
                .find(|(num, den, _)| draft.fps == crate::base::FrameRate::new(*num, *den))
                .map_or_else(
                    || format!("{:.3}", draft.fps.as_f64()),
                    |(_, _, name)| name.to_string(),
                );
            egui::ComboBox::from_id_salt("frame rate")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    for (num, den, name) in RATES {
                        ui.selectable_value(
                            &mut draft.fps,
                            crate::base::FrameRate::new(num, den),
                            name,
                        );
                    }
                })
                .response
                .labelled_by(label.id);
            ui.end_row();
        });
    // Even sizes: the encoder's 4:2:0 chroma needs them.
    draft.width += draft.width % 2;
    draft.height += draft.height % 2;
    let busy = app.recording().is_some() || app.streaming();
    ui.horizontal(|ui| {
        let apply = ui.add_enabled(draft != current && !busy, egui::Button::new("Apply canvas"));
        if apply.clicked() {
            app.apply_canvas(draft);
            draft = app.collection().canvas;
        }
        if busy && draft != current {
            ui.label(
                RichText::new("stop recording and streaming to change the canvas")
                    .small()
                    .color(AMBER),
            );
        }
    });
    app.canvas_draft = (draft != app.collection().canvas).then_some(draft);
}

fn stats(app: &mut TallyApp, ui: &mut egui::Ui) {
    let latest = app
        .controller()
        .stats_history()
        .latest()
        .unwrap_or_default();
    let (lagged, skipped) = app.controller().stats_history().recent_drops();
    let normal = ui.visuals().text_color();
    let severity = |count: u64| match count {
        0 => normal,
        1..=5 => AMBER,
        _ => PROGRAM_RED,
    };
    ui.label(format!("{:.1} fps", latest.fps));
    ui.label(format!("render {:.2} ms/frame", latest.render_ms));
    ui.label(
        RichText::new(format!(
            "lagged {} (last min {lagged})",
            app.stats.frames_lagged
        ))
        .color(severity(lagged)),
    );
    ui.label(
        RichText::new(format!(
            "skipped {} (last min {skipped})",
            app.stats.frames_skipped
        ))
        .color(severity(skipped)),
    );
    let slowed_by = app.window_slowed_by();
    if slowed_by > 1 {
        ui.label(
            RichText::new(format!("window at 1/{slowed_by} rate: the engine lagged")).color(AMBER),
        )
        .on_hover_text(
            "The program output comes first: the monitors redraw less often until the engine keeps up for a few seconds",
        );
    }
    if let Some(encoder) = &app.stats.encoder {
        ui.label(format!("video {encoder}"));
    }
    // Outputs encoded at a profile of their own: one line per encode.
    for encode in &app.stats.encodes {
        if let Some(profile) = &encode.profile {
            ui.label(format!("{profile}: {}", encode.describe()));
        }
    }
    ui.label(format!("CPU {:.0}% of a core", latest.cpu_percent));
    ui.label(format!("memory {:.0} MB", latest.rss_mb));
    for output in &app.stats.outputs {
        ui.label(format!(
            "{}: {} {} kbps",
            output.name, output.state, output.bitrate_kbps
        ));
    }
    // Render time over the last minute.
    let (rect, _) =
        ui.allocate_exact_size(egui::vec2(ui.available_width(), 40.0), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, Color32::from_gray(25));
    let samples: Vec<f64> = app
        .controller()
        .stats_history()
        .samples
        .iter()
        .map(|s| s.render_ms)
        .collect();
    let top = samples.iter().copied().fold(1.0, f64::max);
    let points: Vec<egui::Pos2> = samples
        .iter()
        .enumerate()
        .map(|(i, ms)| {
            egui::pos2(
                rect.left() + rect.width() * i as f32 / 59.0,
                rect.bottom() - rect.height() * (*ms / top) as f32,
            )
        })
        .collect();
    if points.len() > 1 {
        painter.line(points, egui::Stroke::new(1.5, PREVIEW_GREEN));
    }
    for warning in app.warnings.iter().rev().take(3) {
        ui.label(RichText::new(warning).color(AMBER).small());
    }
}

/// Asks what to do with unsaved changes before opening another collection or quitting.
pub fn unsaved_window(app: &mut TallyApp, ctx: &egui::Context) {
    if app.pending.is_none() {
        return;
    }
    let mut answer = None;
    let mut cancelled = false;
    egui::Window::new("Unsaved changes")
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| {
            ui.label("The collection or the show has changes that are not saved.");
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(app.file().is_some(), egui::Button::new("Save"))
                    .clicked()
                {
                    answer = Some(true);
                }
                if ui.button("Don't save").clicked() {
                    answer = Some(false);
                }
                if ui.button("Cancel").clicked() {
                    cancelled = true;
                }
            });
        });
    if answer.is_some() || cancelled {
        app.resolve_pending(answer, ctx);
    }
}

/// A collection that failed to load, or an engine that failed: shown until dismissed.
pub fn problem_window(app: &mut TallyApp, ctx: &egui::Context) {
    let Some(problem) = app.problem.clone() else {
        return;
    };
    let mut open = true;
    egui::Window::new("Problem")
        .collapsible(false)
        .open(&mut open)
        .show(ctx, |ui| {
            ui.label(RichText::new(&problem).monospace());
            if ui.button("OK").clicked() {
                app.problem = None;
            }
        });
    if !open {
        app.problem = None;
    }
}
