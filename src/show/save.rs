//! Writes a show back to the TOML its loader reads, for cues edited in the app: the collection
//! and recordings as paths relative to the show's folder, triggers and actions in the loader's
//! own words, destinations as they were written (`${NAME}` unexpanded, so no key lands in the
//! file that was not there). Saving is atomic and keeps a `.bak`, as for collections.

use super::load::{clock_text, transition_name};
use super::{Action, Cue, Show, Trigger};
use crate::engine::TransitionKind;
use crate::sources::MediaControl;
use std::path::{Component, Path, PathBuf};

/// The show as TOML; `folder` is where the file will be (paths are written relative to it).
pub fn to_toml_string(show: &Show, folder: &Path) -> String {
    let mut text = format!(
        "collection = {}\n",
        quoted(&relative_text(&show.collection_file, folder))
    );
    for cue in &show.cues {
        write_cue(&mut text, cue, folder);
    }
    text
}

/// Saves `show` to `path` atomically, keeping the previous file as `path.bak`.
pub fn save_file(show: &Show, path: &Path) -> std::io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    crate::scene::write_atomically(path, to_toml_string(show, folder).as_bytes())
}

fn write_cue(text: &mut String, cue: &Cue, folder: &Path) {
    text.push_str(&format!("\n[[cues]]\nname = {}\n", quoted(&cue.name)));
    match &cue.trigger {
        Trigger::Go => {}
        Trigger::After(delay) => {
            let delay = humantime::format_duration(*delay).to_string();
            text.push_str(&format!("after = {}\n", quoted(&delay)));
        }
        Trigger::At(at) => {
            text.push_str(&format!("at = {}\n", quoted(&clock_text(*at))));
        }
        Trigger::AtClock(at) => {
            text.push_str(&format!("at_clock = {}\n", quoted(&clock_text(*at))));
        }
        Trigger::MediaEnd(source) => {
            text.push_str(&format!("when_ends = {}\n", quoted(source)));
        }
    }
    text.push_str("actions = [\n");
    for action in &cue.actions {
        text.push_str(&format!(
            "  {{ {} }},\n",
            action_fields(action, folder).join(", ")
        ));
    }
    text.push_str("]\n");
}

/// One action's inline-table fields, `do` first.
fn action_fields(action: &Action, folder: &Path) -> Vec<String> {
    let field = |key: &str, value: &str| format!("{key} = {}", quoted(value));
    match action {
        Action::Take { scene, transition } => {
            let mut fields = vec![field("do", "take"), field("scene", scene)];
            if transition.kind != TransitionKind::Cut {
                fields.push(field("transition", transition_name(transition.kind)));
                fields.push(format!("duration_ms = {}", transition.duration.as_millis()));
            }
            fields
        }
        Action::Preview(scene) => vec![field("do", "preview"), field("scene", scene)],
        Action::Visible {
            scene,
            source,
            visible,
        } => vec![
            field("do", if *visible { "show" } else { "hide" }),
            field("scene", scene),
            field("source", source),
        ],
        Action::Text { source, text } => vec![
            field("do", "text"),
            field("source", source),
            field("text", text),
        ],
        Action::Volume { source, db, fade } => {
            let mut fields = vec![
                field("do", "volume"),
                field("source", source),
                format!("db = {db}"),
            ];
            if !fade.is_zero() {
                fields.push(format!("fade_ms = {}", fade.as_millis()));
            }
            fields
        }
        Action::Mute { source, muted } => vec![
            field("do", if *muted { "mute" } else { "unmute" }),
            field("source", source),
        ],
        Action::Record(path) => vec![
            field("do", "record"),
            field("file", &relative_text(path, folder)),
        ],
        Action::StopRecording => vec![field("do", "stop_recording")],
        Action::Stream(destinations) => vec![
            field("do", "stream"),
            format!("to = {}", url_list(destinations)),
        ],
        Action::StopStreaming(None) => vec![field("do", "stop_streaming")],
        Action::StopStreaming(Some(destinations)) => vec![
            field("do", "stop_streaming"),
            format!("to = {}", url_list(destinations)),
        ],
        Action::Media { source, control } => vec![
            field(
                "do",
                match control {
                    MediaControl::Play => "play",
                    MediaControl::Pause => "pause",
                    MediaControl::Restart => "restart",
                },
            ),
            field("source", source),
        ],
        Action::End => vec![field("do", "end")],
    }
}

fn url_list(destinations: &[crate::output::Destination]) -> String {
    let urls: Vec<String> = destinations
        .iter()
        .map(|destination| quoted(&destination.written()))
        .collect();
    format!("[{}]", urls.join(", "))
}

/// A TOML string literal (quotes and escapes as TOML wants them).
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// `path` relative to `folder` where both are on the same tree (`../scenes/demo.toml`), else
/// absolute; always with `/`, as a show file is written by hand.
fn relative_text(path: &Path, folder: &Path) -> String {
    let absolute = |p: &Path| {
        p.canonicalize().unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|dir| dir.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        })
    };
    // A recording may not exist yet: its folder does.
    let path = match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if !path.exists() => absolute(parent).join(name),
        _ => absolute(path),
    };
    let folder = absolute(folder);
    let path_parts: Vec<Component> = path.components().collect();
    let folder_parts: Vec<Component> = folder.components().collect();
    let common = path_parts
        .iter()
        .zip(&folder_parts)
        .take_while(|(a, b)| a == b)
        .count();
    if common == 0 {
        return path.display().to_string();
    }
    let mut relative = PathBuf::new();
    for _ in common..folder_parts.len() {
        relative.push("..");
    }
    for part in &path_parts[common..] {
        relative.push(part);
    }
    relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_show_saved_and_loaded_again_is_the_same_show() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let show = super::super::load_file(&root.join("shows/demo.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Saved beside the original, so its collection path stays valid.
        let copy = root.join("shows").join(format!(
            ".saved-{}.toml",
            dir.path().file_name().unwrap().to_string_lossy()
        ));
        save_file(&show, &copy).unwrap();
        let loaded = super::super::load_file(&copy);
        let text = std::fs::read_to_string(&copy).unwrap();
        std::fs::remove_file(&copy).unwrap();
        let loaded = loaded.unwrap_or_else(|error| panic!("{error}\n{text}"));
        assert_eq!(loaded.cues, show.cues, "{text}");
        assert!(
            text.starts_with("collection = \"../scenes/demo.toml\""),
            "{text}"
        );
    }

    #[test]
    fn every_action_and_trigger_is_written_in_the_loaders_words() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("TALLY_TEST_SAVE_KEY", "secret-key");
        let collection = dir.path().join("c.toml");
        std::fs::write(
            &collection,
            "[canvas]\nwidth = 64\nheight = 36\nfps = 30\n\n\
             [[sources]]\nid = \"title\"\nkind = \"text\"\ntext = \"Hi\"\n\n\
             [[sources]]\nid = \"clip\"\nkind = \"media\"\npath = \"clip.mp4\"\nloop = false\n\n\
             [[scenes]]\nname = \"A\"\n[[scenes.items]]\nsource = \"title\"\n\
             [[scenes.items]]\nsource = \"clip\"\n\n[[scenes]]\nname = \"B\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("clip.mp4"), b"").unwrap();
        let text = "collection = \"c.toml\"\n\n\
             [[cues]]\nname = \"one\"\nactions = [\n  \
             { do = \"take\", scene = \"B\", transition = \"wipe_left\", duration_ms = 600 },\n  \
             { do = \"preview\", scene = \"A\" },\n  \
             { do = \"hide\", scene = \"A\", source = \"title\" },\n  \
             { do = \"text\", source = \"title\", text = \"Say \\\"hi\\\"\" },\n]\n\n\
             [[cues]]\nname = \"two\"\nafter = \"1s 500ms\"\nactions = [\n  \
             { do = \"volume\", source = \"clip\", db = -12.5, fade_ms = 250 },\n  \
             { do = \"mute\", source = \"clip\" },\n  { do = \"restart\", source = \"clip\" },\n  \
             { do = \"record\", file = \"out/part.mkv\" },\n]\n\n\
             [[cues]]\nname = \"three\"\nat = \"00:01:02.5\"\nactions = [\n  \
             { do = \"stream\", to = [\"rtmp://127.0.0.1/live/${TALLY_TEST_SAVE_KEY}\"] },\n  \
             { do = \"stop_recording\" },\n]\n\n\
             [[cues]]\nname = \"four\"\nwhen_ends = \"clip\"\nactions = [\n  \
             { do = \"stop_streaming\", to = [\"rtmp://127.0.0.1/live/${TALLY_TEST_SAVE_KEY}\"] },\n]\n\n\
             [[cues]]\nname = \"five\"\nat_clock = \"19:00:00\"\nactions = [{ do = \"end\" }]\n";
        let file = dir.path().join("s.toml");
        let show = super::super::parse_str(text, &file, dir.path()).unwrap();
        save_file(&show, &file).unwrap();
        let saved = std::fs::read_to_string(&file).unwrap();
        assert!(!saved.contains("secret-key"), "{saved}");
        assert!(saved.contains("${TALLY_TEST_SAVE_KEY}"), "{saved}");
        assert!(saved.contains("file = \"out/part.mkv\""), "{saved}");
        let again = super::super::load_file(&file).unwrap_or_else(|e| panic!("{e}\n{saved}"));
        assert_eq!(again.cues, show.cues, "{saved}");
        assert_eq!(again.cues.len(), 5);
    }
}
