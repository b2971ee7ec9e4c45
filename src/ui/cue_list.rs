//! The Cue List dock, shown while a show script is open: the cues with the next one marked,
//! the GO button (Space), the countdown to a timed cue, and editing of the selected cue (its
//! trigger, its place, a jump to it, deleting it) and adding one from what is on air. Every
//! change is a request to the show controller, so it is undoable like any other edit and the
//! running show takes it at its next frame.

use super::app::TallyApp;
use super::monitor::PREVIEW_GREEN;
use crate::control::{CueEdit, CueList, Request};
use crate::scene::SourceKind;
use crate::show::{parse_clock, Trigger};
use eframe::egui::{self, RichText};
use std::time::Duration;

/// The dock, on the window's right, when a show is open.
pub fn panel(app: &mut TallyApp, ui: &mut egui::Ui) {
    let Some(list) = app.controller().cue_list() else {
        return;
    };
    egui::Panel::right("cue list")
        .resizable(true)
        .default_size(300.0)
        .show(ui, |ui| contents(app, ui, &list));
}

fn contents(app: &mut TallyApp, ui: &mut egui::Ui, list: &CueList) {
    let name = list
        .file
        .file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    let marker = if list.unsaved { " (unsaved)" } else { "" };
    ui.label(RichText::new(format!("Cue List: {name}{marker}")).strong())
        .on_hover_text(list.file.display().to_string());
    ui.label(format!("show time {}", clock(list.status.show_time)));
    ui.horizontal(|ui| {
        let go = egui::Button::new(RichText::new("GO").strong().size(18.0))
            .min_size(egui::vec2(80.0, 36.0));
        if ui
            .add_enabled(list.status.next.is_some(), go)
            .on_hover_text("Space")
            .clicked()
        {
            app.go();
        }
        ui.label(next_cue_text(list));
    });
    ui.horizontal(|ui| {
        if ui
            .button("Add cue")
            .on_hover_text(
                "a cue that takes the program scene as it is now, at the next cue's place",
            )
            .clicked()
        {
            app.add_cue_from_current_state();
        }
        if ui.button("Save show").clicked() {
            app.cue_request(Request::SaveShow { to: None });
        }
    });
    ui.separator();
    let fired = |index: usize| list.status.next.is_none_or(|next| index < next);
    egui::ScrollArea::vertical()
        .id_salt("cues")
        .max_height(ui.available_height() - 120.0)
        .show(ui, |ui| {
            for (index, cue) in list.cues.iter().enumerate() {
                ui.horizontal(|ui| {
                    // A light, as in the Scenes dock: green for the next cue, grey for those
                    // fired.
                    let color = if list.status.next == Some(index) {
                        PREVIEW_GREEN
                    } else if fired(index) {
                        egui::Color32::from_gray(110)
                    } else {
                        egui::Color32::TRANSPARENT
                    };
                    let (rect, _) =
                        ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
                    ui.painter().circle_filled(rect.center(), 5.0, color);
                    let selected = app.selected_cue == Some(index);
                    let label = format!("{}. {}", index + 1, cue.name);
                    if ui.selectable_label(selected, label).clicked() {
                        app.selected_cue = Some(index);
                        app.cue_trigger_text = None;
                    }
                    ui.label(RichText::new(trigger_text(&cue.trigger)).small());
                });
            }
        });
    ui.separator();
    match app.selected_cue.filter(|index| *index < list.cues.len()) {
        Some(index) => selected_cue(app, ui, list, index),
        None => {
            ui.label(RichText::new("select a cue to edit it").small());
        }
    }
}

/// What the next cue waits for, with the countdown to a timed one.
fn next_cue_text(list: &CueList) -> String {
    let Some(next) = list.status.next else {
        return "every cue has fired".into();
    };
    let cue = &list.cues[next];
    match (&cue.trigger, list.status.due_in) {
        (Trigger::Go, _) => format!("next: {} (waits for GO)", cue.name),
        (Trigger::MediaEnd(source), _) => format!("next: {} (when {source} ends)", cue.name),
        (_, Some(due_in)) => format!("next: {} in {}", cue.name, countdown(due_in)),
        (_, None) => format!("next: {}", cue.name),
    }
}

/// The editor of cue `index`: its trigger, and buttons to jump to it, move it and delete it.
fn selected_cue(app: &mut TallyApp, ui: &mut egui::Ui, list: &CueList, index: usize) {
    let cue = &list.cues[index];
    ui.label(RichText::new(format!("{}. {}", index + 1, cue.name)).strong());
    let media_sources: Vec<String> = app
        .collection()
        .sources
        .iter()
        .filter(|source| matches!(&source.kind, SourceKind::Media(media) if !media.looping))
        .map(|source| source.id.clone())
        .collect();
    let current = TriggerKind::of(&cue.trigger);
    let mut chosen = current;
    egui::ComboBox::from_label("Trigger")
        .selected_text(chosen.label())
        .show_ui(ui, |ui| {
            for kind in TriggerKind::ALL {
                if kind == TriggerKind::MediaEnd && media_sources.is_empty() {
                    continue;
                }
                ui.selectable_value(&mut chosen, kind, kind.label());
            }
        });
    if chosen != current {
        let trigger = chosen.default_trigger(list, media_sources.first());
        app.cue_trigger_text = None;
        app.cue_request(Request::EditCues(CueEdit::SetTrigger {
            cue: index,
            trigger,
        }));
    }
    trigger_value(app, ui, &cue.trigger, index, &media_sources);
    ui.horizontal(|ui| {
        if ui
            .button("Jump here")
            .on_hover_text("this cue fires next; those above it do not fire")
            .clicked()
        {
            app.cue_request(Request::JumpToCue(index));
        }
        if ui
            .add_enabled(index > 0, egui::Button::new("Move up"))
            .clicked()
        {
            app.selected_cue = Some(index - 1);
            app.cue_request(Request::EditCues(CueEdit::Move {
                from: index,
                to: index - 1,
            }));
        }
        if ui
            .add_enabled(index + 1 < list.cues.len(), egui::Button::new("Move down"))
            .clicked()
        {
            app.selected_cue = Some(index + 1);
            app.cue_request(Request::EditCues(CueEdit::Move {
                from: index,
                to: index + 1,
            }));
        }
        if ui.button("Delete cue").clicked() {
            app.selected_cue = None;
            app.cue_request(Request::EditCues(CueEdit::Remove(index)));
        }
    });
}

/// The trigger's value: a delay or a time typed in (applied when the field is left), or the
/// media source whose end fires the cue.
fn trigger_value(
    app: &mut TallyApp,
    ui: &mut egui::Ui,
    trigger: &Trigger,
    index: usize,
    media_sources: &[String],
) {
    let shown = match trigger {
        Trigger::Go => return,
        Trigger::MediaEnd(source) => {
            let mut chosen = source.clone();
            egui::ComboBox::from_label("Media source")
                .selected_text(chosen.clone())
                .show_ui(ui, |ui| {
                    for id in media_sources {
                        ui.selectable_value(&mut chosen, id.clone(), id);
                    }
                });
            if chosen != *source {
                app.cue_request(Request::EditCues(CueEdit::SetTrigger {
                    cue: index,
                    trigger: Trigger::MediaEnd(chosen),
                }));
            }
            return;
        }
        Trigger::After(delay) => humantime::format_duration(*delay).to_string(),
        Trigger::At(at) | Trigger::AtClock(at) => clock(*at),
    };
    let mut text = match &app.cue_trigger_text {
        Some((cue, text)) if *cue == index => text.clone(),
        _ => shown,
    };
    let label = match trigger {
        Trigger::After(_) => "Delay",
        _ => "Time",
    };
    let response = ui
        .horizontal(|ui| {
            let named = ui.label(label);
            ui.add(egui::TextEdit::singleline(&mut text).desired_width(120.0))
                .labelled_by(named.id)
        })
        .inner;
    if response.changed() {
        app.cue_trigger_text = Some((index, text.clone()));
    }
    if response.lost_focus() {
        app.cue_trigger_text = None;
        let parsed = match trigger {
            Trigger::After(_) => humantime::parse_duration(text.trim())
                .ok()
                .map(Trigger::After),
            Trigger::At(_) => parse_clock(&text).map(Trigger::At),
            _ => parse_clock(&text)
                .filter(|at| *at < Duration::from_secs(24 * 3600))
                .map(Trigger::AtClock),
        };
        match parsed {
            Some(new) if new != *trigger => {
                app.cue_request(Request::EditCues(CueEdit::SetTrigger {
                    cue: index,
                    trigger: new,
                }))
            }
            Some(_) => {}
            None => {
                app.problem = Some(format!(
                    "`{text}` is not a {}",
                    if label == "Delay" {
                        "delay (such as 5s, 1m30s or 500ms)"
                    } else {
                        "time (HH:MM:SS)"
                    }
                ));
            }
        }
    }
}

/// The kinds of trigger offered, in the order shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TriggerKind {
    Go,
    After,
    At,
    AtClock,
    MediaEnd,
}

impl TriggerKind {
    const ALL: [TriggerKind; 5] = [
        TriggerKind::Go,
        TriggerKind::After,
        TriggerKind::At,
        TriggerKind::AtClock,
        TriggerKind::MediaEnd,
    ];

    fn of(trigger: &Trigger) -> Self {
        match trigger {
            Trigger::Go => TriggerKind::Go,
            Trigger::After(_) => TriggerKind::After,
            Trigger::At(_) => TriggerKind::At,
            Trigger::AtClock(_) => TriggerKind::AtClock,
            Trigger::MediaEnd(_) => TriggerKind::MediaEnd,
        }
    }

    fn label(self) -> &'static str {
        match self {
            TriggerKind::Go => "GO",
            TriggerKind::After => "after the cue above",
            TriggerKind::At => "at a show time",
            TriggerKind::AtClock => "at a time of day",
            TriggerKind::MediaEnd => "when media ends",
        }
    }

    /// A trigger of this kind to start from: 5 s after the cue above, a show time a minute
    /// from now, the next full hour, or the end of the first media source that does not loop.
    fn default_trigger(self, list: &CueList, media: Option<&String>) -> Trigger {
        let minute = Duration::from_secs(60);
        match self {
            TriggerKind::Go => Trigger::Go,
            TriggerKind::After => Trigger::After(Duration::from_secs(5)),
            TriggerKind::At => {
                let whole = Duration::from_secs(list.status.show_time.as_secs());
                Trigger::At(whole + minute)
            }
            TriggerKind::AtClock => {
                let now = crate::show::local_time_of_day().as_secs();
                Trigger::AtClock(Duration::from_secs((now / 3600 + 1) % 24 * 3600))
            }
            TriggerKind::MediaEnd => media.map_or(Trigger::Go, |id| Trigger::MediaEnd(id.clone())),
        }
    }
}

fn trigger_text(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Go => "GO".into(),
        Trigger::After(delay) => format!("after {}", humantime::format_duration(*delay)),
        Trigger::At(at) => format!("at {}", clock(*at)),
        Trigger::AtClock(at) => format!("at {} (clock)", clock(*at)),
        Trigger::MediaEnd(source) => format!("when {source} ends"),
    }
}

/// `HH:MM:SS`, with tenths when there are any (as a show file writes it).
fn clock(time: Duration) -> String {
    let seconds = time.as_secs();
    let tenths = time.subsec_millis() / 100;
    let whole = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    if tenths == 0 {
        whole
    } else {
        format!("{whole}.{tenths}")
    }
}

/// A countdown: `4.2 s` under a minute, else `HH:MM:SS`.
fn countdown(time: Duration) -> String {
    if time < Duration::from_secs(60) {
        format!("{:.1} s", time.as_secs_f64())
    } else {
        clock(time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_a_show_file_writes_them() {
        assert_eq!(clock(Duration::from_millis(8_000)), "00:00:08");
        assert_eq!(clock(Duration::from_millis(3_723_400)), "01:02:03.4");
        assert_eq!(countdown(Duration::from_millis(4_250)), "4.2 s");
        assert_eq!(countdown(Duration::from_secs(90)), "00:01:30");
        assert_eq!(
            parse_clock(&clock(Duration::from_millis(3_723_400))),
            Some(Duration::from_millis(3_723_400))
        );
    }
}
