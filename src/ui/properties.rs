//! The Properties dock: the selected item's name, placement and opacity, and below them the
//! settings of its source, laid out per kind (colour and size, text and font, file paths,
//! devices), and for a source with sound its balance, sync offset and filters. Every change is
//! an undoable edit that reaches the running engine.
//!
//! Paths, device names and the like are applied when the field is left (Enter or a click
//! elsewhere), not at every keystroke: a half-typed path would reopen the source each time.

use super::app::TallyApp;
use super::pickers::PickFor;
use crate::scene::{
    AudioFilter, AudioSettings, CameraFormat, Color, Outline, SourceKind, SYNC_OFFSET_LIMIT_MS,
};
use eframe::egui;
use std::path::PathBuf;

pub fn properties(app: &mut TallyApp, ui: &mut egui::Ui) {
    let Some((scene_index, index, item)) = app.selected_item() else {
        ui.label("Select an item in the preview or in Sources.");
        return;
    };
    let mut item = item.clone();
    let source = app.collection().source(&item.source).cloned();
    ui.horizontal(|ui| {
        let label = ui.label("Name");
        let mut name = app.renaming.clone().unwrap_or_else(|| item.source.clone());
        let response = ui
            .add(egui::TextEdit::singleline(&mut name).desired_width(90.0))
            .labelled_by(label.id);
        if response.changed() || response.gained_focus() {
            app.renaming = Some(name.clone());
        }
        if response.lost_focus() {
            app.renaming = None;
            if name != item.source {
                app.rename_source(&item.source, &name);
            }
        }
    });
    let before = item.clone();
    egui::Grid::new("item properties")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label("x");
            ui.add(egui::DragValue::new(&mut item.position[0]).speed(1.0));
            ui.end_row();
            ui.label("y");
            ui.add(egui::DragValue::new(&mut item.position[1]).speed(1.0));
            ui.end_row();
            ui.label("rotation");
            ui.add(
                egui::DragValue::new(&mut item.rotation)
                    .speed(0.5)
                    .suffix("°"),
            );
            ui.end_row();
            ui.label("opacity");
            ui.add(egui::Slider::new(&mut item.opacity, 0.0..=1.0));
            ui.end_row();
        });
    if item != before {
        app.edit(|c| c.scenes[scene_index].items[index] = item.clone());
    }
    let Some(source) = source else {
        return;
    };
    ui.separator();
    ui.label(egui::RichText::new(source.kind.name()).small());
    let mut kind = source.kind.clone();
    let mut fields = std::mem::take(&mut app.field_edits);
    let browse = egui::Grid::new("source properties")
        .num_columns(2)
        .show(ui, |ui| {
            let mut form = Form {
                ui,
                fields: &mut fields,
                source_id: &source.id,
                browse_requested: false,
            };
            form.kind(&mut kind);
            form.browse_requested
        })
        .inner;
    app.field_edits = fields;
    if let Some(audio) = kind.audio_mut() {
        ui.separator();
        audio_properties(ui, audio);
    }
    if browse {
        app.browse(PickFor::SourceFile(source.id.clone()));
    }
    if kind != source.kind {
        app.edit(|c| {
            if let Some(edited) = c.sources.iter_mut().find(|s| s.id == source.id) {
                edited.kind = kind;
            }
        });
    }
}

/// The rows of one source's settings in a two-column grid. `fields` holds what is being typed
/// into text fields that apply when left.
struct Form<'a> {
    ui: &'a mut egui::Ui,
    fields: &'a mut std::collections::HashMap<String, String>,
    source_id: &'a str,
    /// A file field's Browse button was clicked.
    browse_requested: bool,
}

impl Form<'_> {
    fn kind(&mut self, kind: &mut SourceKind) {
        match kind {
            SourceKind::Color {
                color,
                width,
                height,
            } => {
                self.color("colour", color);
                self.pixels("width", width);
                self.pixels("height", height);
            }
            SourceKind::Image { path } => self.path("file", path),
            SourceKind::Text(text) => {
                let label = self.ui.label("Text");
                self.ui
                    .add(
                        egui::TextEdit::multiline(&mut text.text)
                            .desired_rows(2)
                            .desired_width(110.0)
                            .id_salt("text source"),
                    )
                    .labelled_by(label.id);
                self.ui.end_row();
                let label = self.ui.label("size");
                self.ui
                    .add(
                        egui::DragValue::new(&mut text.size)
                            .range(1.0..=1000.0)
                            .suffix(" px"),
                    )
                    .labelled_by(label.id);
                self.ui.end_row();
                self.color("colour", &mut text.color);
                let label = self.ui.label("outline");
                let mut outlined = text.outline.is_some();
                self.ui.checkbox(&mut outlined, "").labelled_by(label.id);
                self.ui.end_row();
                match (outlined, &mut text.outline) {
                    (true, None) => {
                        text.outline = Some(Outline {
                            width: 2.0,
                            color: Color::BLACK,
                        })
                    }
                    (false, Some(_)) => text.outline = None,
                    (true, Some(outline)) => {
                        let label = self.ui.label("outline width");
                        self.ui
                            .add(egui::DragValue::new(&mut outline.width).range(0.0..=100.0))
                            .labelled_by(label.id);
                        self.ui.end_row();
                        self.color("outline colour", &mut outline.color);
                    }
                    (false, None) => {}
                }
            }
            SourceKind::Media(media) => {
                self.path("file", &mut media.path);
                self.check("loop", &mut media.looping);
            }
            SourceKind::TestPattern { width, height } => {
                self.pixels("width", width);
                self.pixels("height", height);
            }
            SourceKind::Screen(screen) => {
                self.optional_text("window", &mut screen.window);
                self.optional_text("display", &mut screen.display);
                self.check("cursor", &mut screen.cursor);
            }
            SourceKind::Camera(camera) => {
                self.text("device", &mut camera.device);
                self.pixels("width", &mut camera.width);
                self.pixels("height", &mut camera.height);
                let label = self.ui.label("fps");
                self.ui
                    .add(egui::DragValue::new(&mut camera.fps).range(1..=240))
                    .labelled_by(label.id);
                self.ui.end_row();
                self.ui.label("format");
                egui::ComboBox::from_id_salt("camera format")
                    .selected_text(format_name(camera.format))
                    .show_ui(self.ui, |ui| {
                        for name in CameraFormat::NAMES {
                            if let Some(format) = CameraFormat::parse(name) {
                                ui.selectable_value(&mut camera.format, format, name);
                            }
                        }
                    });
                self.ui.end_row();
            }
            SourceKind::AudioInput(input) => {
                self.text("device", &mut input.device);
                self.check("in every scene", &mut input.always_on);
            }
        }
    }

    fn color(&mut self, name: &str, color: &mut Color) {
        let label = self.ui.label(name);
        let mut rgba = egui::Color32::from_rgba_unmultiplied(color.r, color.g, color.b, color.a);
        let response = egui::color_picker::color_edit_button_srgba(
            self.ui,
            &mut rgba,
            egui::color_picker::Alpha::OnlyBlend,
        )
        .labelled_by(label.id);
        if response.changed() {
            let [r, g, b, a] = rgba.to_srgba_unmultiplied();
            *color = Color { r, g, b, a };
        }
        self.ui.end_row();
    }

    fn pixels(&mut self, name: &str, value: &mut u32) {
        let label = self.ui.label(name);
        self.ui
            .add(egui::DragValue::new(value).range(1..=16384).suffix(" px"))
            .labelled_by(label.id);
        self.ui.end_row();
    }

    fn check(&mut self, name: &str, value: &mut bool) {
        let label = self.ui.label(name);
        self.ui.checkbox(value, "").labelled_by(label.id);
        self.ui.end_row();
    }

    /// A text field whose value applies when the field is left; `Some` then.
    fn field(&mut self, name: &str, current: &str) -> Option<String> {
        self.field_row(name, current, false)
    }

    /// As [`field`](Self::field), with a Browse button after it (for files) when `browse`.
    fn field_row(&mut self, name: &str, current: &str, browse: bool) -> Option<String> {
        let key = format!("{}/{name}", self.source_id);
        let label = self.ui.label(name);
        let mut value = self
            .fields
            .get(&key)
            .cloned()
            .unwrap_or_else(|| current.to_string());
        let (response, browsed) = self
            .ui
            .horizontal(|ui| {
                let response = ui
                    .add(egui::TextEdit::singleline(&mut value).desired_width(110.0))
                    .labelled_by(label.id);
                let browsed = browse && ui.button("Browse...").clicked();
                (response, browsed)
            })
            .inner;
        self.browse_requested |= browsed;
        self.ui.end_row();
        if response.lost_focus() {
            self.fields.remove(&key);
            return (value != current).then_some(value);
        }
        if response.has_focus() {
            self.fields.insert(key, value);
        }
        None
    }

    fn text(&mut self, name: &str, value: &mut String) {
        if let Some(edited) = self.field(name, value) {
            *value = edited;
        }
    }

    /// Empty means none.
    fn optional_text(&mut self, name: &str, value: &mut Option<String>) {
        if let Some(edited) = self.field(name, value.as_deref().unwrap_or("")) {
            *value = Some(edited.trim().to_string()).filter(|text| !text.is_empty());
        }
    }

    fn path(&mut self, name: &str, path: &mut PathBuf) {
        if let Some(edited) = self.field_row(name, &path.to_string_lossy(), true) {
            // Kept as typed: a relative path is taken from the collection's folder, as in
            // the file.
            *path = PathBuf::from(edited.trim());
        }
    }
}

/// A sound source's balance, sync offset and filter chain (the fader, mute and monitoring are
/// in the Audio Mixer).
fn audio_properties(ui: &mut egui::Ui, audio: &mut AudioSettings) {
    ui.label(egui::RichText::new("Audio").small());
    egui::Grid::new("audio properties")
        .num_columns(2)
        .show(ui, |ui| {
            let label = ui.label("balance");
            // As narrow as the dock's other fields.
            ui.spacing_mut().slider_width = 70.0;
            ui.add(egui::Slider::new(&mut audio.balance, -1.0..=1.0).show_value(false))
                .labelled_by(label.id);
            ui.end_row();
            let label = ui.label("sync offset");
            ui.add(
                egui::DragValue::new(&mut audio.sync_offset_ms)
                    .range(-SYNC_OFFSET_LIMIT_MS..=SYNC_OFFSET_LIMIT_MS)
                    .suffix(" ms"),
            )
            .labelled_by(label.id);
            ui.end_row();
        });
    ui.label(egui::RichText::new("Filters, in order").small());
    let mut moved = None;
    let mut removed = None;
    let last = audio.filters.len().saturating_sub(1);
    for (index, filter) in audio.filters.iter_mut().enumerate() {
        ui.push_id(index, |ui| {
            ui.label(egui::RichText::new(filter.title()).strong());
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(index > 0, egui::Button::new("Up").small())
                    .on_hover_text("earlier in the chain")
                    .clicked()
                {
                    moved = Some((index, index - 1));
                }
                if ui
                    .add_enabled(index < last, egui::Button::new("Down").small())
                    .on_hover_text("later in the chain")
                    .clicked()
                {
                    moved = Some((index, index + 1));
                }
                if ui.add(egui::Button::new("Remove").small()).clicked() {
                    removed = Some(index);
                }
            });
            egui::Grid::new("filter settings")
                .num_columns(2)
                .show(ui, |ui| {
                    for parameter in filter.parameters_mut() {
                        let label = ui.label(parameter.label);
                        ui.add(
                            egui::DragValue::new(parameter.value)
                                .range(parameter.range)
                                .speed(0.5)
                                .suffix(parameter.unit),
                        )
                        .labelled_by(label.id);
                        ui.end_row();
                    }
                });
        });
    }
    if let Some((from, to)) = moved {
        audio.filters.swap(from, to);
    }
    if let Some(index) = removed {
        audio.filters.remove(index);
    }
    egui::ComboBox::from_id_salt("add filter")
        .selected_text("+ Filter")
        .show_ui(ui, |ui| {
            for filter in AudioFilter::NAMES.into_iter().filter_map(AudioFilter::new) {
                if ui.selectable_label(false, filter.title()).clicked() {
                    audio.filters.push(filter);
                }
            }
        })
        .response
        .widget_info(|| egui::WidgetInfo::labeled(egui::Role::ComboBox, true, "add filter"));
}

fn format_name(format: CameraFormat) -> &'static str {
    CameraFormat::NAMES
        .into_iter()
        .find(|name| CameraFormat::parse(name) == Some(format))
        .unwrap_or("any")
}
