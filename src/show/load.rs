//! Reads a show file and checks it against its collection, reporting every problem with file,
//! line, column and field, as scene files are (it shares the scene loader's decoder).
//!
//! ```toml
//! collection = "../scenes/demo.toml"
//!
//! [[cues]]
//! name = "Open"                      # no trigger: waits for GO
//! actions = [{ do = "take", scene = "Live", transition = "fade", duration_ms = 500 }]
//!
//! [[cues]]
//! name = "Bars"
//! after = "5s"                       # or at = "00:01:30", at_clock = "19:00:00",
//!                                    # or when_ends = "clip" (a media source)
//! actions = [{ do = "take", scene = "Bars" }, { do = "end" }]
//! ```

use super::{Action, Cue, Show, Trigger};
use crate::engine::{Direction, Transition, TransitionKind};
use crate::output::{parse_destination, RecordingFormat};
use crate::scene::load::{decode_document, read_document, suggestion, Decoder, Span, Table, Value};
use crate::scene::{Collection, Color, InputCheck, LoadError, SourceKind};
use crate::sources::MediaControl;
use std::path::Path;
use std::time::Duration;
use toml::de::DeValue;

const ACTIONS: [&str; 15] = [
    "play",
    "pause",
    "restart",
    "take",
    "preview",
    "show",
    "hide",
    "text",
    "volume",
    "mute",
    "unmute",
    "record",
    "stop_recording",
    "stream",
    "stop_streaming",
];
const TRANSITIONS: [&str; 11] = [
    "cut",
    "fade",
    "fade_to_black",
    "slide_left",
    "slide_right",
    "slide_up",
    "slide_down",
    "wipe_left",
    "wipe_right",
    "wipe_up",
    "wipe_down",
];
/// A transition without `duration_ms` lasts this long.
const DEFAULT_TRANSITION: Duration = Duration::from_millis(500);

/// Whether `path` reads as a show file (it has `cues`) rather than a scene collection; false
/// for anything that cannot be read, which the scene loader then reports.
pub fn looks_like_show(path: &Path) -> bool {
    read_document(path, "show")
        .ok()
        .and_then(|(text, _)| text.parse::<toml::Table>().ok())
        .is_some_and(|table| table.contains_key("cues"))
}

/// Loads the show at `path` and its collection (whose files must exist).
pub fn load_file(path: &Path) -> Result<Show, LoadError> {
    load(path, None)
}

/// As [`load_file`], every file the collection names opened by `inputs` too.
pub fn load_file_checked(path: &Path, inputs: &dyn InputCheck) -> Result<Show, LoadError> {
    load(path, Some(inputs))
}

fn load(path: &Path, inputs: Option<&dyn InputCheck>) -> Result<Show, LoadError> {
    let (text, base_dir) = read_document(path, "show")?;
    parse(&text, path, &base_dir, inputs)
}

/// Parses a show from `text` (`file` names it in messages; its collection and recordings are
/// found from `base_dir`).
pub fn parse_str(text: &str, file: &Path, base_dir: &Path) -> Result<Show, LoadError> {
    parse(text, file, base_dir, None)
}

fn parse(
    text: &str,
    path: &Path,
    base_dir: &Path,
    inputs: Option<&dyn InputCheck>,
) -> Result<Show, LoadError> {
    // The collection first: the cues are checked against it.
    let collection_file = decode_document(text, path, base_dir, None, |decoder, root| {
        decoder.required(&root, "collection", |decoder, value, field| {
            decoder.collection_file(value, field)
        })
    })?;
    let collection = match inputs {
        Some(inputs) => crate::scene::load_file_checked(&collection_file, inputs),
        None => crate::scene::load_file(&collection_file),
    }?;
    let cues = decode_document(text, path, base_dir, None, |decoder, root| {
        decoder.reject_unknown_keys(&root, &["collection", "cues"]);
        let cues = decoder.array_of_tables(&root, "cues", true, |decoder, table| {
            let at = table.get("at").map(|value| value.span());
            let cue = decoder.cue(&table, &collection)?;
            Some(DecodedCue {
                cue,
                at_field: table.child("at"),
                at_span: at,
            })
        });
        decoder.show_clock_in_order(&cues);
        decoder.one_recording_at_a_time(&cues);
        Some(cues.into_iter().map(|(decoded, _)| decoded.cue).collect())
    })?;
    Ok(Show {
        file: path.to_path_buf(),
        collection_file,
        collection,
        cues,
    })
}

/// A cue as read, with where its `at` field is, for the checks across cues.
struct DecodedCue {
    cue: Cue,
    at_field: String,
    at_span: Option<Span>,
}

impl Decoder<'_> {
    /// The show's collection file, resolved; one that is missing or no file is an error at the
    /// show's `collection` line (what is wrong inside it, at its own lines).
    fn collection_file(&mut self, value: &Value<'_>, field: &str) -> Option<std::path::PathBuf> {
        let path = self.base_dir.join(self.string(value, field)?);
        if !path.is_file() {
            self.error(
                value.span(),
                field,
                format!("no scene collection file at {}", path.display()),
                Some("the path is relative to the show file".into()),
            );
            return None;
        }
        Some(path)
    }

    fn cue(&mut self, table: &Table<'_, '_>, collection: &Collection) -> Option<Cue> {
        self.reject_unknown_keys(
            table,
            &["name", "after", "at", "at_clock", "when_ends", "actions"],
        );
        let name = self.required(table, "name", Decoder::identifier);
        let triggers: Vec<&str> = ["after", "at", "at_clock", "when_ends"]
            .into_iter()
            .filter(|key| table.get(key).is_some())
            .collect();
        if triggers.len() > 1 {
            let second = table
                .get(triggers[1])
                .map_or(table.span.clone(), |v| v.span());
            self.error(
                second,
                &table.child(triggers[1]),
                format!(
                    "a cue has one trigger; this one has {}",
                    triggers.join(" and ")
                ),
                Some("without any, the cue waits for GO".into()),
            );
            return None;
        }
        let trigger = match triggers.first() {
            None => Some(Trigger::Go),
            Some(&"after") => self
                .optional(table, "after", Decoder::duration)
                .map(Trigger::After),
            Some(&"at") => self
                .optional(table, "at", Decoder::clock_time)
                .map(Trigger::At),
            Some(&"when_ends") => self
                .optional(table, "when_ends", |d, v, f| {
                    let id = d.source_id(v, f, collection, is_media, "a media source")?;
                    let loops = matches!(
                        collection.source(&id).map(|s| &s.kind),
                        Some(SourceKind::Media(media)) if media.looping
                    );
                    if loops {
                        d.error(
                            v.span(),
                            f,
                            format!("media source `{id}` loops, so it never ends"),
                            Some("set `loop = false` on it in the collection".into()),
                        );
                        return None;
                    }
                    Some(id)
                })
                .map(Trigger::MediaEnd),
            Some(_) => self
                .optional(table, "at_clock", |d, v, f| {
                    d.clock_time(v, f).filter(|t| {
                        let in_a_day = *t < Duration::from_secs(24 * 3600);
                        if !in_a_day {
                            d.error(v.span(), f, "not a time of day".into(), None);
                        }
                        in_a_day
                    })
                })
                .map(Trigger::AtClock),
        };
        let actions = self.array_of_tables(table, "actions", true, |decoder, action| {
            decoder.action(&action, collection)
        });
        Some(Cue {
            name: name?,
            trigger: trigger?,
            actions: actions.into_iter().map(|(action, _)| action).collect(),
        })
    }

    /// `at` cues must come in the order of their times: a later cue cannot fire earlier.
    /// Each cue comes with its `at` field's name and place.
    fn show_clock_in_order(&mut self, cues: &[(DecodedCue, Span)]) {
        let mut latest: Option<(Duration, &str)> = None;
        for (
            DecodedCue {
                cue,
                at_field: field,
                at_span,
            },
            span,
        ) in cues
        {
            let Trigger::At(at) = cue.trigger else {
                continue;
            };
            if let Some((before, name)) = latest.filter(|(before, _)| at < *before) {
                self.error(
                    at_span.clone().unwrap_or_else(|| span.clone()),
                    field,
                    format!(
                        "cue `{}` is due at {} on the show clock, before cue `{name}` ({}) above it",
                        cue.name,
                        clock_text(at),
                        clock_text(before)
                    ),
                    Some("cues fire in order: move it up, or change its time".into()),
                );
            }
            latest = Some((at, &cue.name));
        }
    }

    /// A cue that records while an earlier cue's recording still runs would fail in the show:
    /// Tally records one file at a time.
    fn one_recording_at_a_time(&mut self, cues: &[(DecodedCue, Span)]) {
        let mut running: Option<&str> = None;
        for (DecodedCue { cue, .. }, span) in cues {
            for action in &cue.actions {
                match action {
                    Action::Record(path) => {
                        if let Some(earlier) = running {
                            self.error(
                                span.clone(),
                                "cues.actions",
                                format!(
                                    "cue `{}` records to {} while cue `{earlier}`'s recording \
                                     still runs",
                                    cue.name,
                                    path.display()
                                ),
                                Some(
                                    "Tally records one file at a time: stop_recording first".into(),
                                ),
                            );
                        }
                        running = Some(&cue.name);
                    }
                    Action::StopRecording => running = None,
                    _ => {}
                }
            }
        }
    }

    fn action(&mut self, table: &Table<'_, '_>, collection: &Collection) -> Option<Action> {
        let kind = self.required(table, "do", |decoder, value, field| {
            decoder.keyword(
                value,
                field,
                &[ACTIONS.as_slice(), &["end"]].concat(),
                |name| {
                    Some(name.to_string())
                        .filter(|name| ACTIONS.contains(&name.as_str()) || name == "end")
                },
            )
        })?;
        let keys: &[&str] = match kind.as_str() {
            "take" => &["do", "scene", "transition", "duration_ms"],
            "preview" => &["do", "scene"],
            "show" | "hide" => &["do", "scene", "source"],
            "text" => &["do", "source", "text"],
            "volume" => &["do", "source", "db", "fade_ms"],
            "mute" | "unmute" | "play" | "pause" | "restart" => &["do", "source"],
            "record" => &["do", "file"],
            "stream" | "stop_streaming" => &["do", "to"],
            _ => &["do"],
        };
        self.reject_unknown_keys(table, keys);
        let scene = |decoder: &mut Self| {
            decoder.required(table, "scene", |d, v, f| d.scene_name(v, f, collection))
        };
        let source = |decoder: &mut Self, fits: fn(&SourceKind) -> bool, what: &str| {
            decoder.required(table, "source", |d, v, f| {
                d.source_id(v, f, collection, fits, what)
            })
        };
        Some(match kind.as_str() {
            "take" => {
                let scene = scene(self);
                let transition = self.transition(table);
                Action::Take {
                    scene: scene?,
                    transition: transition?,
                }
            }
            "preview" => Action::Preview(scene(self)?),
            "show" | "hide" => {
                let scene = scene(self);
                let source = source(self, |_| true, "a source");
                let (scene, source) = (scene?, source?);
                let shown_there = collection
                    .scene(&scene)
                    .is_some_and(|s| s.items.iter().any(|item| item.source == source));
                if !shown_there {
                    self.error(
                        table.span.clone(),
                        &table.child("source"),
                        format!("scene `{scene}` has no item of source `{source}`"),
                        None,
                    );
                    return None;
                }
                Action::Visible {
                    scene,
                    source,
                    visible: kind == "show",
                }
            }
            "text" => {
                let source = source(self, |k| matches!(k, SourceKind::Text(_)), "a text source");
                let text = self.required(table, "text", Decoder::string);
                Action::Text {
                    source: source?,
                    text: text?,
                }
            }
            "volume" => {
                let source = source(self, |k| k.audio().is_some(), "a source with sound");
                let db = self.required(table, "db", |d, v, f| d.number_in(v, f, -100.0, 26.0));
                let fade = self.optional(table, "fade_ms", |d, v, f| d.milliseconds(v, f));
                Action::Volume {
                    source: source?,
                    db: db?,
                    fade: fade.unwrap_or_default(),
                }
            }
            "mute" | "unmute" => Action::Mute {
                source: source(self, |k| k.audio().is_some(), "a source with sound")?,
                muted: kind == "mute",
            },
            "play" | "pause" | "restart" => Action::Media {
                source: source(self, is_media, "a media source")?,
                control: match kind.as_str() {
                    "play" => MediaControl::Play,
                    "pause" => MediaControl::Pause,
                    _ => MediaControl::Restart,
                },
            },
            "record" => {
                let file = self.required(table, "file", Decoder::string)?;
                let path = self.base_dir.join(&file);
                if RecordingFormat::from_path(&path).is_none() {
                    let value = table.get("file")?;
                    self.error(
                        value.span(),
                        &table.child("file"),
                        format!("`{file}` is not a recording"),
                        Some("the file must end in .mp4 or .mkv".into()),
                    );
                    return None;
                }
                Action::Record(path)
            }
            "stream" => {
                let value = table.get("to");
                let Some(value) = value else {
                    self.error(
                        table.span.clone(),
                        &table.child("to"),
                        "missing required field `to`".into(),
                        Some("a list of destination URLs: to = [\"rtmp://...\"]".into()),
                    );
                    return None;
                };
                Action::Stream(self.destinations(value, &table.child("to"))?)
            }
            "stop_recording" => Action::StopRecording,
            "stop_streaming" => match table.get("to") {
                None => Action::StopStreaming(None),
                Some(value) => {
                    Action::StopStreaming(Some(self.destinations(value, &table.child("to"))?))
                }
            },
            _ => Action::End,
        })
    }

    fn transition(&mut self, table: &Table<'_, '_>) -> Option<Transition> {
        let duration = self.optional(table, "duration_ms", |d, v, f| d.milliseconds(v, f));
        let kind = match table.get("transition") {
            None => TransitionKind::Cut,
            Some(_) => self.optional(table, "transition", |decoder, value, field| {
                decoder.keyword(value, field, &TRANSITIONS, transition_kind)
            })?,
        };
        Some(Transition {
            kind,
            duration: match kind {
                TransitionKind::Cut => Duration::ZERO,
                _ => duration.unwrap_or(DEFAULT_TRANSITION),
            },
        })
    }

    fn scene_name(
        &mut self,
        value: &Value<'_>,
        field: &str,
        collection: &Collection,
    ) -> Option<String> {
        let name = self.string(value, field)?;
        if collection.scene(&name).is_some() {
            return Some(name);
        }
        let names = collection.scenes.iter().map(|scene| scene.name.as_str());
        let help = suggestion(&name, names, "scenes");
        self.error(
            value.span(),
            field,
            format!("no scene is named `{name}`"),
            help,
        );
        None
    }

    fn source_id(
        &mut self,
        value: &Value<'_>,
        field: &str,
        collection: &Collection,
        fits: fn(&SourceKind) -> bool,
        what: &str,
    ) -> Option<String> {
        let id = self.string(value, field)?;
        match collection.source(&id) {
            Some(source) if fits(&source.kind) => Some(id),
            Some(source) => {
                self.error(
                    value.span(),
                    field,
                    format!(
                        "source `{id}` is a {} source; this action needs {what}",
                        source.kind.name()
                    ),
                    None,
                );
                None
            }
            None => {
                let ids = collection.sources.iter().map(|source| source.id.as_str());
                let help = suggestion(&id, ids, "sources");
                self.error(
                    value.span(),
                    field,
                    format!("no source is named `{id}`"),
                    help,
                );
                None
            }
        }
    }

    fn destinations(
        &mut self,
        value: &Value<'_>,
        field: &str,
    ) -> Option<Vec<crate::output::Destination>> {
        let DeValue::Array(urls) = value.get_ref() else {
            self.type_error(value, field, "a list of destination URLs");
            return None;
        };
        let mut destinations = Vec::new();
        for (index, url) in urls.iter().enumerate() {
            let field = format!("{field}[{index}]");
            let text = self.string(url, &field)?;
            match parse_destination(&text) {
                Ok(destination) => destinations.push(destination),
                Err(error) => {
                    self.error(url.span(), &field, error.to_string(), None);
                    return None;
                }
            }
        }
        Some(destinations)
    }

    /// A delay: "5s", "1m30s", "500ms", or a number of seconds.
    fn duration(&mut self, value: &Value<'_>, field: &str) -> Option<Duration> {
        let parsed = match value.get_ref() {
            DeValue::String(text) => humantime::parse_duration(text.trim()).ok().or_else(|| {
                // A bare number of seconds, as in "0.5".
                text.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|seconds| (0.0..=86_400.0).contains(seconds))
                    .map(Duration::from_secs_f64)
            }),
            DeValue::Integer(_) | DeValue::Float(_) => self
                .number(value, field)
                .filter(|seconds| (0.0..=86_400.0).contains(seconds))
                .map(Duration::from_secs_f64),
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                value.span(),
                field,
                "not a delay".into(),
                Some("expected a delay such as \"5s\", \"1m30s\" or \"500ms\"".into()),
            );
        }
        parsed
    }

    fn milliseconds(&mut self, value: &Value<'_>, field: &str) -> Option<Duration> {
        let millis = self.number_in(value, field, 0.0, 3_600_000.0)?;
        Some(Duration::from_secs_f64(f64::from(millis) / 1000.0))
    }

    /// "HH:MM:SS" or "HH:MM:SS.fff" (or "MM:SS").
    fn clock_time(&mut self, value: &Value<'_>, field: &str) -> Option<Duration> {
        let text = self.string(value, field)?;
        let parsed = parse_clock(&text);
        if parsed.is_none() {
            self.error(
                value.span(),
                field,
                format!("`{text}` is not a time"),
                Some("expected \"HH:MM:SS\", such as \"00:02:30\" or \"19:00:00.5\"".into()),
            );
        }
        parsed
    }
}

fn is_media(kind: &SourceKind) -> bool {
    matches!(kind, SourceKind::Media(_))
}

/// The name a show file gives `kind` (`fade` for a fade to a colour other than black, which
/// show files cannot name).
pub(super) fn transition_name(kind: TransitionKind) -> &'static str {
    TRANSITIONS
        .into_iter()
        .find(|name| transition_kind(name) == Some(kind))
        .unwrap_or("fade")
}

fn transition_kind(name: &str) -> Option<TransitionKind> {
    let direction = |suffix: &str| match suffix {
        "left" => Some(Direction::Left),
        "right" => Some(Direction::Right),
        "up" => Some(Direction::Up),
        "down" => Some(Direction::Down),
        _ => None,
    };
    match name {
        "cut" => Some(TransitionKind::Cut),
        "fade" => Some(TransitionKind::Fade),
        "fade_to_black" => Some(TransitionKind::FadeToColor(Color::BLACK)),
        _ => match name.split_once('_')? {
            ("slide", to) => direction(to).map(TransitionKind::Slide),
            ("wipe", to) => direction(to).map(TransitionKind::Wipe),
            _ => None,
        },
    }
}

/// "HH:MM:SS[.fff]" or "MM:SS[.fff]" as a duration.
pub fn parse_clock(text: &str) -> Option<Duration> {
    let parts: Vec<&str> = text.trim().split(':').collect();
    let (hours, minutes, seconds) = match parts.as_slice() {
        [hours, minutes, seconds] => (hours.parse::<u64>().ok()?, *minutes, *seconds),
        [minutes, seconds] => (0, *minutes, *seconds),
        _ => return None,
    };
    let minutes = minutes.parse::<u64>().ok().filter(|m| *m < 60)?;
    let seconds = seconds
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (0.0..60.0).contains(s))?;
    Some(Duration::from_secs(hours * 3600 + minutes * 60) + Duration::from_secs_f64(seconds))
}

pub(super) fn clock_text(time: Duration) -> String {
    let seconds = time.as_secs_f64();
    format!(
        "{:02}:{:02}:{:06.3}",
        (seconds / 3600.0) as u64,
        ((seconds / 60.0) as u64) % 60,
        seconds % 60.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_read_hours_minutes_and_fractions_of_seconds() {
        assert_eq!(parse_clock("00:02:30"), Some(Duration::from_secs(150)));
        assert_eq!(
            parse_clock("1:00:00.5"),
            Some(Duration::from_millis(3_600_500))
        );
        assert_eq!(parse_clock("02:30"), Some(Duration::from_secs(150)));
        assert_eq!(parse_clock("00:60:00"), None);
        assert_eq!(parse_clock("00:00:60"), None);
        assert_eq!(parse_clock("soon"), None);
        assert_eq!(clock_text(Duration::from_millis(3_750_250)), "01:02:30.250");
    }

    #[test]
    fn transitions_are_named_with_their_direction() {
        assert_eq!(
            transition_kind("wipe_left"),
            Some(TransitionKind::Wipe(Direction::Left))
        );
        assert_eq!(
            transition_kind("slide_up"),
            Some(TransitionKind::Slide(Direction::Up))
        );
        assert_eq!(transition_kind("slide_sideways"), None);
        for name in TRANSITIONS {
            assert!(transition_kind(name).is_some(), "{name}");
        }
    }
}
