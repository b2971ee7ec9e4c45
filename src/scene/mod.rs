//! The scene collection: plain data describing the canvas, the sources and the scenes made of them.
//!
//! This module owns the data model and its file format (TOML). Loading goes through
//! [`load`], which reports every problem with file, line, column and field; saving goes through
//! [`save`], which is atomic and keeps a `.bak`. The running pipeline derives its state from
//! these types and never writes back into them.

mod diagnostics;
mod edit;
pub mod geometry;
pub(crate) mod load;
mod save;

pub use crate::base::FrameRate;
pub(crate) use diagnostics::did_you_mean;
pub use diagnostics::{Diagnostic, LoadError};
pub use edit::{apply as apply_edit, differences, Edit, EditError};
pub(crate) use edit::{unknown_scene, unknown_source};
pub use load::{
    load_file, load_file_checked, parse_str, parse_str_checked, InputCheck, InputKind,
    UnusableInput,
};
pub use save::{save_file, to_toml_string, write_atomically};

use serde::{Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};

/// A whole scene collection as written in a file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Collection {
    /// Directory relative paths in the file are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
    pub canvas: Canvas,
    pub current_scene: String,
    pub sources: Vec<Source>,
    pub scenes: Vec<Scene>,
}

#[cfg(test)]
impl Collection {
    /// A 2x2 collection whose only source is a media file `id` at `path` (never opened by the
    /// unit tests that use it) and whose one scene is empty.
    pub(crate) fn with_one_media_source(id: &str, path: &str, audio: AudioSettings) -> Self {
        Collection {
            base_dir: ".".into(),
            canvas: Canvas {
                width: 2,
                height: 2,
                fps: FrameRate::new(30, 1),
            },
            current_scene: "S".into(),
            sources: vec![Source {
                id: id.into(),
                kind: SourceKind::Media(MediaSource {
                    path: path.into(),
                    looping: false,
                    audio,
                }),
            }],
            scenes: vec![Scene {
                name: "S".into(),
                items: Vec::new(),
            }],
        }
    }
}

impl Collection {
    pub fn source(&self, id: &str) -> Option<&Source> {
        self.sources.iter().find(|source| source.id == id)
    }

    pub fn scene(&self, name: &str) -> Option<&Scene> {
        self.scenes.iter().find(|scene| scene.name == name)
    }

    /// Takes item `item` out of scene `scene`, and its source out of the collection when
    /// nothing else uses it (no item in any scene shows it, and it is not an audio input that
    /// is always on), as OBS does: a source nobody shows would stay open (a camera, a file
    /// being decoded) and hidden in the file. Returns the source's id if it went too.
    pub fn remove_item(&mut self, scene: usize, item: usize) -> Option<String> {
        let items = &mut self.scenes.get_mut(scene)?.items;
        if item >= items.len() {
            return None;
        }
        let source = items.remove(item).source;
        let still_shown = self
            .scenes
            .iter()
            .flat_map(|scene| &scene.items)
            .any(|item| item.source == source);
        let heard_everywhere = matches!(
            self.source(&source).map(|source| &source.kind),
            Some(SourceKind::AudioInput(input)) if input.always_on
        );
        if still_shown || heard_everywhere {
            return None;
        }
        self.sources.retain(|kept| kept.id != source);
        Some(source)
    }

    /// Every file the collection's sources read, resolved: what an output must never replace.
    pub fn input_files(&self) -> Vec<PathBuf> {
        self.sources
            .iter()
            .filter_map(|source| source.kind.file())
            .map(|path| self.resolve(path))
            .collect()
    }

    /// Resolves a path written in the file against the file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pub fps: FrameRate,
}

/// Straight (not premultiplied) 8-bit sRGB colour with alpha.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color {
    pub r: u8,
    pub g: u8,
    pub b: u8,
    pub a: u8,
}

impl Color {
    pub const WHITE: Color = Color::rgba(255, 255, 255, 255);
    pub const BLACK: Color = Color::rgba(0, 0, 0, 255);

    pub const fn rgba(r: u8, g: u8, b: u8, a: u8) -> Self {
        Self { r, g, b, a }
    }

    /// Parses `#rrggbb` or `#rrggbbaa`.
    pub fn parse_hex(text: &str) -> Option<Self> {
        let hex = text.strip_prefix('#')?;
        if !(hex.len() == 6 || hex.len() == 8) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).ok();
        let alpha = if hex.len() == 8 { byte(6)? } else { 255 };
        Some(Self::rgba(byte(0)?, byte(2)?, byte(4)?, alpha))
    }

    /// The colour as premultiplied RGBA bytes.
    pub fn premultiplied(self) -> [u8; 4] {
        let scale = |c: u8| ((u16::from(c) * u16::from(self.a) + 127) / 255) as u8;
        [scale(self.r), scale(self.g), scale(self.b), self.a]
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.r, self.g, self.b)?;
        if self.a != 255 {
            write!(f, "{:02x}", self.a)?;
        }
        Ok(())
    }
}

impl Serialize for Color {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    pub id: String,
    #[serde(flatten)]
    pub kind: SourceKind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceKind {
    Color {
        color: Color,
        width: u32,
        height: u32,
    },
    Image {
        path: PathBuf,
    },
    Text(TextSource),
    Media(MediaSource),
    TestPattern {
        width: u32,
        height: u32,
    },
    Screen(ScreenSource),
    AudioInput(AudioInputSource),
    Camera(CameraSource),
}

impl SourceKind {
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::Color { .. } => "color",
            SourceKind::Image { .. } => "image",
            SourceKind::Text(_) => "text",
            SourceKind::Media(_) => "media",
            SourceKind::TestPattern { .. } => "test_pattern",
            SourceKind::Screen(_) => "screen",
            SourceKind::AudioInput(_) => "audio_input",
            SourceKind::Camera(_) => "camera",
        }
    }

    /// The source's mixer settings, for kinds that make sound.
    pub fn audio(&self) -> Option<&AudioSettings> {
        match self {
            SourceKind::Media(media) => Some(&media.audio),
            SourceKind::AudioInput(input) => Some(&input.audio),
            _ => None,
        }
    }

    pub fn audio_mut(&mut self) -> Option<&mut AudioSettings> {
        match self {
            SourceKind::Media(media) => Some(&mut media.audio),
            SourceKind::AudioInput(input) => Some(&mut input.audio),
            _ => None,
        }
    }

    /// The file this source reads (a picture, a clip, a font), as written in the collection.
    pub fn file(&self) -> Option<&Path> {
        match self {
            SourceKind::Image { path } => Some(path),
            SourceKind::Media(media) => Some(&media.path),
            SourceKind::Text(text) => text.font.as_deref(),
            _ => None,
        }
    }

    /// Whether the two differ in their mixer settings at most (fader, mute, filters, ...):
    /// those belong to the mixer, so such a change leaves the running source as it is.
    pub fn same_apart_from_audio(&self, other: &SourceKind) -> bool {
        let mut other = other.clone();
        if let (Some(mine), Some(theirs)) = (self.audio(), other.audio_mut()) {
            *theirs = mine.clone();
        }
        *self == other
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextSource {
    pub text: String,
    /// A TrueType/OpenType file; `None` is the bundled DejaVu Sans Bold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub font: Option<PathBuf>,
    /// Font size in pixels (the em height).
    pub size: f32,
    pub color: Color,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outline: Option<Outline>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Outline {
    /// Outline thickness in pixels.
    pub width: f32,
    pub color: Color,
}

/// An X11 screen, a region of it, or one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScreenSource {
    /// X display such as ":0"; `None` is `$DISPLAY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// Part of the screen, in screen pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    /// The first window whose title contains this text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Draw the mouse pointer into the picture.
    pub cursor: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// A microphone, line input or desktop-audio monitor, captured through the sound server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioInputSource {
    /// Device id or name as `tally devices` lists it; `default` is the default input and
    /// `desktop` the monitor of the default output (what the computer is playing).
    pub device: String,
    /// Mixed in every scene (like OBS's global audio devices), not only in scenes that show it.
    pub always_on: bool,
    #[serde(flatten)]
    pub audio: AudioSettings,
}

/// A camera or capture card (V4L2 on Linux).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CameraSource {
    /// Device path (`/dev/video0`), index, or name as `tally devices` lists it.
    pub device: String,
    /// The format to ask for; the nearest the camera supports is used and reported.
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub format: CameraFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraFormat {
    /// Whatever the camera offers closest to the asked size and rate.
    Any,
    Mjpeg,
    Yuyv,
    Nv12,
}

impl CameraFormat {
    pub const NAMES: [&'static str; 4] = ["any", "mjpeg", "yuyv", "nv12"];

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "any" => Self::Any,
            "mjpeg" => Self::Mjpeg,
            "yuyv" => Self::Yuyv,
            "nv12" => Self::Nv12,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MediaSource {
    pub path: PathBuf,
    #[serde(rename = "loop")]
    pub looping: bool,
    #[serde(flatten)]
    pub audio: AudioSettings,
}

/// How far a source's sound may be shifted against its picture, either way.
pub const SYNC_OFFSET_LIMIT_MS: i32 = 5000;

/// How a source's sound goes into the mix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioSettings {
    /// Fader, in dB.
    pub volume_db: f32,
    pub muted: bool,
    /// -1 is left only, 0 both, +1 right only.
    pub balance: f32,
    /// Positive delays the sound against the picture, negative plays it earlier.
    pub sync_offset_ms: i32,
    /// Applied in order, before the fader.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<AudioFilter>,
    pub monitoring: Monitoring,
}

/// Whether the operator hears a source on the monitoring device, and whether it goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitoring {
    #[default]
    Off,
    /// Heard on the monitoring device only; left out of the program mix.
    MonitorOnly,
    MonitorAndOutput,
}

impl Monitoring {
    pub const NAMES: [&'static str; 3] = ["off", "monitor_only", "monitor_and_output"];

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "off" => Self::Off,
            "monitor_only" => Self::MonitorOnly,
            "monitor_and_output" => Self::MonitorAndOutput,
            _ => return None,
        })
    }
}

impl Default for AudioSettings {
    fn default() -> Self {
        Self {
            volume_db: 0.0,
            muted: false,
            balance: 0.0,
            sync_offset_ms: 0,
            filters: Vec::new(),
            monitoring: Monitoring::Off,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AudioFilter {
    Gain {
        db: f32,
    },
    NoiseGate {
        open_db: f32,
        close_db: f32,
        attack_ms: f32,
        hold_ms: f32,
        release_ms: f32,
    },
    Compressor {
        threshold_db: f32,
        ratio: f32,
        attack_ms: f32,
        release_ms: f32,
        makeup_db: f32,
    },
    Limiter {
        threshold_db: f32,
        release_ms: f32,
    },
}

/// One setting of a filter, as a scene file and the app's Properties name it.
pub struct FilterParameter<'a> {
    /// The key in a scene file.
    pub key: &'static str,
    /// What the app calls it.
    pub label: &'static str,
    pub value: &'a mut f32,
    /// What a scene file accepts.
    pub range: std::ops::RangeInclusive<f32>,
    pub unit: &'static str,
}

impl AudioFilter {
    /// The kinds, as a scene file names them.
    pub const NAMES: [&'static str; 4] = ["gain", "noise_gate", "compressor", "limiter"];

    /// A filter of the named kind with its default settings.
    pub fn new(name: &str) -> Option<Self> {
        Some(match name {
            "gain" => Self::Gain { db: 0.0 },
            "noise_gate" => Self::NoiseGate {
                open_db: -26.0,
                close_db: -32.0,
                attack_ms: 25.0,
                hold_ms: 200.0,
                release_ms: 150.0,
            },
            "compressor" => Self::Compressor {
                threshold_db: -18.0,
                ratio: 4.0,
                attack_ms: 6.0,
                release_ms: 60.0,
                makeup_db: 0.0,
            },
            "limiter" => Self::Limiter {
                threshold_db: -6.0,
                release_ms: 60.0,
            },
            _ => return None,
        })
    }

    /// The kind's name in a scene file.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Gain { .. } => "gain",
            Self::NoiseGate { .. } => "noise_gate",
            Self::Compressor { .. } => "compressor",
            Self::Limiter { .. } => "limiter",
        }
    }

    /// What the app calls the kind.
    pub fn title(&self) -> &'static str {
        match self {
            Self::Gain { .. } => "Gain",
            Self::NoiseGate { .. } => "Noise gate",
            Self::Compressor { .. } => "Compressor",
            Self::Limiter { .. } => "Limiter",
        }
    }

    /// Every setting of the filter, in the order the app shows them.
    pub fn parameters_mut(&mut self) -> Vec<FilterParameter<'_>> {
        let parameter = |key, label, value, range, unit| FilterParameter {
            key,
            label,
            value,
            range,
            unit,
        };
        const TIME_MS: std::ops::RangeInclusive<f32> = 0.0..=10_000.0;
        match self {
            Self::Gain { db } => vec![parameter("db", "gain", db, -60.0..=30.0, " dB")],
            Self::NoiseGate {
                open_db,
                close_db,
                attack_ms,
                hold_ms,
                release_ms,
            } => vec![
                parameter("open_db", "open at", open_db, -100.0..=0.0, " dB"),
                parameter("close_db", "close at", close_db, -100.0..=0.0, " dB"),
                parameter("attack_ms", "attack", attack_ms, TIME_MS, " ms"),
                parameter("hold_ms", "hold", hold_ms, TIME_MS, " ms"),
                parameter("release_ms", "release", release_ms, TIME_MS, " ms"),
            ],
            Self::Compressor {
                threshold_db,
                ratio,
                attack_ms,
                release_ms,
                makeup_db,
            } => vec![
                parameter(
                    "threshold_db",
                    "threshold",
                    threshold_db,
                    -60.0..=0.0,
                    " dB",
                ),
                parameter("ratio", "ratio", ratio, 1.0..=100.0, ":1"),
                parameter("attack_ms", "attack", attack_ms, TIME_MS, " ms"),
                parameter("release_ms", "release", release_ms, TIME_MS, " ms"),
                parameter("makeup_db", "makeup gain", makeup_db, -30.0..=30.0, " dB"),
            ],
            Self::Limiter {
                threshold_db,
                release_ms,
            } => vec![
                parameter(
                    "threshold_db",
                    "threshold",
                    threshold_db,
                    -60.0..=0.0,
                    " dB",
                ),
                parameter("release_ms", "release", release_ms, TIME_MS, " ms"),
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scene {
    pub name: String,
    /// Bottom to top: the first item is drawn first.
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub source: String,
    /// Where the item's top-left corner (before rotation) sits, in canvas pixels.
    pub position: [f32; 2],
    #[serde(flatten)]
    pub size: ItemSize,
    pub crop: Crop,
    /// Clockwise, in degrees, about the item's centre.
    pub rotation: f32,
    pub opacity: f32,
    pub visible: bool,
    /// Not selectable or movable in the app's preview.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub locked: bool,
}

impl Item {
    /// `source` at `position`, at its own size, uncropped, unrotated, opaque, visible and
    /// unlocked: what a new item is, and what a scene file's item is unless it says otherwise.
    pub fn new(source: impl Into<String>, position: [f32; 2]) -> Self {
        Self {
            source: source.into(),
            position,
            size: ItemSize::Scale([1.0, 1.0]),
            crop: Crop::default(),
            rotation: 0.0,
            opacity: 1.0,
            visible: true,
            locked: false,
        }
    }
}

/// How an item's on-canvas size is derived from its (cropped) source size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum ItemSize {
    #[serde(rename = "scale")]
    Scale([f32; 2]),
    #[serde(rename = "bounds")]
    Bounds(Bounds),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bounds {
    pub width: f32,
    pub height: f32,
    pub fit: BoundsFit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BoundsFit {
    /// Scale uniformly so the whole source fits inside the box, centred.
    Fit,
    /// Scale uniformly so the source covers the box, centred; the overflow is cut off.
    Fill,
    /// Scale each axis to the box.
    Stretch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Crop {
    pub left: u32,
    pub right: u32,
    pub top: u32,
    pub bottom: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collection(sources: &[Source], scenes: &[(&str, &[&str])]) -> Collection {
        Collection {
            base_dir: PathBuf::new(),
            canvas: Canvas {
                width: 640,
                height: 360,
                fps: FrameRate::new(30, 1),
            },
            current_scene: scenes[0].0.to_string(),
            sources: sources.to_vec(),
            scenes: scenes
                .iter()
                .map(|(name, shown)| Scene {
                    name: name.to_string(),
                    items: shown
                        .iter()
                        .map(|source| Item::new(source.to_string(), [0.0, 0.0]))
                        .collect(),
                })
                .collect(),
        }
    }

    fn color(id: &str) -> Source {
        Source {
            id: id.to_string(),
            kind: SourceKind::TestPattern {
                width: 64,
                height: 64,
            },
        }
    }

    fn ids(collection: &Collection) -> Vec<&str> {
        collection.sources.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn removing_the_last_item_of_a_source_removes_the_source() {
        let mut show = collection(
            &[color("a"), color("shared")],
            &[("Main", &["a", "shared"]), ("Other", &["shared"])],
        );
        assert_eq!(show.remove_item(0, 0).as_deref(), Some("a"));
        assert_eq!(ids(&show), ["shared"]);
        // Still shown in Other: the source stays.
        assert_eq!(show.remove_item(0, 0), None);
        assert_eq!(ids(&show), ["shared"]);
        assert!(show.scenes[0].items.is_empty());
        assert_eq!(show.remove_item(1, 0).as_deref(), Some("shared"));
        assert!(show.sources.is_empty());
        // Out of range: nothing happens.
        assert_eq!(show.remove_item(1, 0), None);
        assert_eq!(show.remove_item(5, 0), None);
    }

    #[test]
    fn an_always_on_audio_input_outlives_its_items() {
        let input = |always_on| AudioInputSource {
            device: "default".into(),
            always_on,
            audio: AudioSettings::default(),
        };
        let mut show = collection(
            &[
                Source {
                    id: "mic".into(),
                    kind: SourceKind::AudioInput(input(true)),
                },
                Source {
                    id: "line".into(),
                    kind: SourceKind::AudioInput(input(false)),
                },
            ],
            &[("Main", &["mic", "line"])],
        );
        assert_eq!(show.remove_item(0, 0), None);
        assert_eq!(show.remove_item(0, 0).as_deref(), Some("line"));
        assert_eq!(ids(&show), ["mic"]);
    }
}
