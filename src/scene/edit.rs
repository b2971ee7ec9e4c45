//! Fine-grained edits of a collection (an input's volume, an item's visibility, a text source's
//! text...), checked and applied to the data without resending the whole collection. Pure data:
//! the controller applies a front-end's edits and records them for undo; a show's cues send
//! theirs to the engine, which applies each to its own copy and tells the controller, so both
//! copies change the same way.

use super::{did_you_mean, Collection, SourceKind};
use std::path::PathBuf;

/// One edit of the open collection.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// An input's fader, in dB (-100 to +26, as the mixer's fader).
    SetVolume {
        source: String,
        db: f32,
    },
    SetMute {
        source: String,
        muted: bool,
    },
    /// Shows or hides every item of `source` in `scene` (a show's `show` and `hide`).
    SetSourceVisible {
        scene: String,
        source: String,
        visible: bool,
    },
    /// Shows or hides item `index` (bottom first) of `scene`.
    SetItemVisible {
        scene: String,
        index: usize,
        visible: bool,
    },
    /// Moves item `index` of `scene` to `position` (canvas pixels of its top-left corner).
    SetItemPosition {
        scene: String,
        index: usize,
        position: [f32; 2],
    },
    SetText {
        source: String,
        text: String,
    },
    /// Points a media source at another file.
    SetMediaFile {
        source: String,
        path: PathBuf,
    },
    /// Renames a source everywhere it is used. A name is letters, digits, `_` and `-` (easy to
    /// type in a file), and unused.
    RenameSource {
        from: String,
        to: String,
    },
}

/// Why an edit was refused; the collection is then unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    #[error("no source is named `{name}`{}", suggestion(.did_you_mean))]
    UnknownSource {
        name: String,
        did_you_mean: Option<String>,
    },
    #[error("no scene is named `{name}`{}", suggestion(.did_you_mean))]
    UnknownScene {
        name: String,
        did_you_mean: Option<String>,
    },
    #[error("scene `{scene}` has {items} item(s); there is no item {index}")]
    NoSuchItem {
        scene: String,
        index: usize,
        items: usize,
    },
    #[error("source `{source_id}` is a {kind} source; this needs {wanted}")]
    WrongKind {
        source_id: String,
        kind: &'static str,
        wanted: &'static str,
    },
    #[error("{value} dB is outside the fader's range, -100 to +26 dB")]
    VolumeOutOfRange { value: f32 },
    #[error("`{0}` cannot name a source: use letters, digits, `_` and `-`")]
    NotAName(String),
    #[error("a source is already named `{0}`")]
    NameTaken(String),
}

fn suggestion(did_you_mean: &Option<String>) -> String {
    did_you_mean
        .as_ref()
        .map(|name| format!(" (did you mean `{name}`?)"))
        .unwrap_or_default()
}

pub(crate) fn unknown_scene(collection: &Collection, name: &str) -> EditError {
    EditError::UnknownScene {
        name: name.to_string(),
        did_you_mean: did_you_mean(name, collection.scenes.iter().map(|s| s.name.as_str()))
            .map(str::to_string),
    }
}

pub(crate) fn unknown_source(collection: &Collection, name: &str) -> EditError {
    EditError::UnknownSource {
        name: name.to_string(),
        did_you_mean: did_you_mean(name, collection.sources.iter().map(|s| s.id.as_str()))
            .map(str::to_string),
    }
}

/// Applies `edit` to `collection`, or says why not and leaves it as it was.
pub fn apply(collection: &mut Collection, edit: &Edit) -> Result<(), EditError> {
    match edit {
        Edit::SetVolume { source, db } => {
            if !(-100.0..=26.0).contains(db) {
                return Err(EditError::VolumeOutOfRange { value: *db });
            }
            sound_of(collection, source)?.volume_db = *db;
        }
        Edit::SetMute { source, muted } => sound_of(collection, source)?.muted = *muted,
        Edit::SetSourceVisible {
            scene,
            source,
            visible,
        } => {
            let Some(position) = collection.scenes.iter().position(|s| s.name == *scene) else {
                return Err(unknown_scene(collection, scene));
            };
            if collection.source(source).is_none() {
                return Err(unknown_source(collection, source));
            }
            for item in collection.scenes[position]
                .items
                .iter_mut()
                .filter(|item| item.source == *source)
            {
                item.visible = *visible;
            }
        }
        Edit::SetItemVisible {
            scene,
            index,
            visible,
        } => item_of(collection, scene, *index)?.visible = *visible,
        Edit::SetItemPosition {
            scene,
            index,
            position,
        } => item_of(collection, scene, *index)?.position = *position,
        Edit::SetText { source, text } => match &mut kind_of(collection, source)? {
            SourceKind::Text(settings) => settings.text = text.clone(),
            other => return Err(wrong_kind(source, other, "a text source")),
        },
        Edit::SetMediaFile { source, path } => match &mut kind_of(collection, source)? {
            SourceKind::Media(settings) => settings.path = path.clone(),
            other => return Err(wrong_kind(source, other, "a media source")),
        },
        Edit::RenameSource { from, to } => rename_source(collection, from, to)?,
    }
    Ok(())
}

/// The fine-grained edits that take `before` to `after` for what front-ends follow one by one:
/// each input's volume and mute, each text source's text, each item's visibility (by its
/// place, in scenes of both). Other changes (sources added or removed, items moved) are not
/// listed: a front-end rereads the collection for them.
pub fn differences(before: &Collection, after: &Collection) -> Vec<Edit> {
    let mut edits = Vec::new();
    for source in &after.sources {
        let Some(old) = before.source(&source.id) else {
            continue;
        };
        if let (Some(new), Some(old)) = (source.kind.audio(), old.kind.audio()) {
            if new.volume_db != old.volume_db {
                edits.push(Edit::SetVolume {
                    source: source.id.clone(),
                    db: new.volume_db,
                });
            }
            if new.muted != old.muted {
                edits.push(Edit::SetMute {
                    source: source.id.clone(),
                    muted: new.muted,
                });
            }
        }
        if let (SourceKind::Text(new), SourceKind::Text(old)) = (&source.kind, &old.kind) {
            if new.text != old.text {
                edits.push(Edit::SetText {
                    source: source.id.clone(),
                    text: new.text.clone(),
                });
            }
        }
    }
    for scene in &after.scenes {
        let Some(old) = before.scene(&scene.name) else {
            continue;
        };
        for (index, (new, old)) in scene.items.iter().zip(&old.items).enumerate() {
            if new.visible != old.visible && new.source == old.source {
                edits.push(Edit::SetItemVisible {
                    scene: scene.name.clone(),
                    index,
                    visible: new.visible,
                });
            }
            if new.position != old.position && new.source == old.source {
                edits.push(Edit::SetItemPosition {
                    scene: scene.name.clone(),
                    index,
                    position: new.position,
                });
            }
        }
    }
    edits
}

fn rename_source(collection: &mut Collection, from: &str, to: &str) -> Result<(), EditError> {
    let a_name = !to.is_empty()
        && to
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !a_name {
        return Err(EditError::NotAName(to.to_string()));
    }
    if collection.source(to).is_some() {
        return Err(EditError::NameTaken(to.to_string()));
    }
    kind_of(collection, from)?;
    for source in collection.sources.iter_mut().filter(|s| s.id == from) {
        source.id = to.to_string();
    }
    for item in collection
        .scenes
        .iter_mut()
        .flat_map(|scene| &mut scene.items)
        .filter(|item| item.source == from)
    {
        item.source = to.to_string();
    }
    Ok(())
}

fn wrong_kind(source: &str, kind: &SourceKind, wanted: &'static str) -> EditError {
    EditError::WrongKind {
        source_id: source.to_string(),
        kind: kind.name(),
        wanted,
    }
}

fn kind_of<'c>(collection: &'c mut Collection, id: &str) -> Result<&'c mut SourceKind, EditError> {
    match collection.sources.iter().position(|source| source.id == id) {
        Some(index) => Ok(&mut collection.sources[index].kind),
        None => Err(unknown_source(collection, id)),
    }
}

fn sound_of<'c>(
    collection: &'c mut Collection,
    id: &str,
) -> Result<&'c mut super::AudioSettings, EditError> {
    let kind = kind_of(collection, id)?;
    let name = kind.name();
    kind.audio_mut().ok_or(EditError::WrongKind {
        source_id: id.to_string(),
        kind: name,
        wanted: "a source with sound (media or audio input)",
    })
}

fn item_of<'c>(
    collection: &'c mut Collection,
    scene: &str,
    index: usize,
) -> Result<&'c mut super::Item, EditError> {
    let Some(position) = collection
        .scenes
        .iter()
        .position(|found| found.name == scene)
    else {
        return Err(unknown_scene(collection, scene));
    };
    let found = &mut collection.scenes[position];
    let items = found.items.len();
    found.items.get_mut(index).ok_or(EditError::NoSuchItem {
        scene: scene.to_string(),
        index,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn show() -> Collection {
        super::super::parse_str(
            "[canvas]\nwidth = 64\nheight = 36\nfps = 30\n\n\
             [[sources]]\nid = \"title\"\nkind = \"text\"\ntext = \"Hello\"\n\n\
             [[sources]]\nid = \"bed\"\nkind = \"audio_input\"\ndevice = \"default\"\n\n\
             [[scenes]]\nname = \"Intro\"\n[[scenes.items]]\nsource = \"title\"\n",
            Path::new("show.toml"),
            Path::new("."),
        )
        .expect("the test collection loads")
    }

    #[test]
    fn edits_change_exactly_what_they_name() {
        let mut collection = show();
        apply(
            &mut collection,
            &Edit::SetText {
                source: "title".into(),
                text: "Goodbye".into(),
            },
        )
        .unwrap();
        apply(
            &mut collection,
            &Edit::SetVolume {
                source: "bed".into(),
                db: -12.0,
            },
        )
        .unwrap();
        apply(
            &mut collection,
            &Edit::SetItemVisible {
                scene: "Intro".into(),
                index: 0,
                visible: false,
            },
        )
        .unwrap();
        let mut expected = show();
        if let SourceKind::Text(text) = &mut expected.sources[0].kind {
            text.text = "Goodbye".into();
        }
        expected.sources[1].kind.audio_mut().unwrap().volume_db = -12.0;
        expected.scenes[0].items[0].visible = false;
        assert_eq!(collection, expected);
    }

    #[test]
    fn a_refused_edit_says_why_and_changes_nothing() {
        let mut collection = show();
        let refusals = [
            (
                Edit::SetText {
                    source: "titel".into(),
                    text: "x".into(),
                },
                "no source is named `titel` (did you mean `title`?)",
            ),
            (
                Edit::SetMute {
                    source: "title".into(),
                    muted: true,
                },
                "source `title` is a text source; this needs a source with sound (media or audio input)",
            ),
            (
                Edit::SetText {
                    source: "bed".into(),
                    text: "x".into(),
                },
                "source `bed` is a audio_input source; this needs a text source",
            ),
            (
                Edit::SetItemVisible {
                    scene: "Intro".into(),
                    index: 3,
                    visible: true,
                },
                "scene `Intro` has 1 item(s); there is no item 3",
            ),
            (
                Edit::SetItemPosition {
                    scene: "intro".into(),
                    index: 0,
                    position: [0.0, 0.0],
                },
                "no scene is named `intro` (did you mean `Intro`?)",
            ),
            (
                Edit::SetVolume {
                    source: "bed".into(),
                    db: 40.0,
                },
                "40 dB is outside the fader's range, -100 to +26 dB",
            ),
            (
                Edit::RenameSource {
                    from: "title".into(),
                    to: "the title".into(),
                },
                "`the title` cannot name a source: use letters, digits, `_` and `-`",
            ),
            (
                Edit::RenameSource {
                    from: "title".into(),
                    to: "bed".into(),
                },
                "a source is already named `bed`",
            ),
        ];
        for (edit, why) in refusals {
            let error = apply(&mut collection, &edit).expect_err("refused");
            assert_eq!(error.to_string(), why);
        }
        assert_eq!(collection, show());
    }
}
