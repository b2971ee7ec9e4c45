//! Reads a scene collection from TOML, collecting every problem instead of stopping at the first.
//!
//! Written by hand over toml's spanned document tree rather than with `#[derive(Deserialize)]`:
//! serde stops at the first error and cannot suggest the key or source id the user meant,
//! while here each field is decoded on its own, so one run of `tally check` lists everything.

use super::diagnostics::{did_you_mean, Diagnostic, LineIndex, LoadError};
use super::{
    AudioFilter, AudioInputSource, AudioSettings, Bounds, BoundsFit, CameraFormat, CameraSource,
    Canvas, Collection, Color, Crop, FrameRate, Item, ItemSize, MediaSource, Monitoring, Outline,
    Region, Scene, ScreenSource, Source, SourceKind, TextSource, SYNC_OFFSET_LIMIT_MS,
};
use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

pub(crate) type Span = Range<usize>;
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// The largest picture a source may ask for (a colour, an item's bounds, a capture region):
/// the texture size every GPU wgpu runs on can hold.
const MAX_PICTURE_SIDE: u32 = 8192;
/// The largest canvas side. The canvas is drawn, converted and read back every frame, and its
/// buffers grow with its area: 4096x4096 already needs about 1.5 GB, 8192x8192 needed 6 GB.
const MAX_CANVAS_SIDE: u32 = 4096;
/// Frame rates from one frame a second (slower has no use on a live canvas, and a rate near
/// zero would make a one-frame audio block of hours) to 240.
const MIN_FPS: f64 = 1.0;
const MAX_FPS: f64 = 240.0;
/// A scene collection larger than this is not one (a video renamed .toml, /dev/zero).
const MAX_FILE_BYTES: u64 = 16 << 20;
/// After this many syntax errors the rest are most likely echoes of the first ones.
const MAX_SYNTAX_ERRORS: usize = 3;

/// The kinds of file a collection names, each looked into differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Image,
    Font,
    Media,
}

/// Looks inside a file a collection names (decodes a picture, reads a font, probes a clip),
/// so `tally check` finds a broken one before the show starts. The scene loader knows only
/// that the file exists; [`crate::sources::InputFiles`] knows how to open each kind.
pub trait InputCheck {
    /// Why `path` cannot be used as a `kind`, if it cannot (the opening layer's own error).
    fn check(&self, kind: InputKind, path: &Path) -> Result<(), UnusableInput>;
}

/// Why a file a collection names cannot be used, as the code that opens it says.
pub type UnusableInput = Box<dyn std::error::Error + Send + Sync>;

/// Loads and validates the collection at `path`; the files it names must exist.
pub fn load_file(path: &Path) -> Result<Collection, LoadError> {
    load_file_checking(path, None)
}

/// As [`load_file`], and every file the collection names is opened by `inputs` and must be
/// usable (a picture that decodes, a font, a clip with a picture or sound).
pub fn load_file_checked(path: &Path, inputs: &dyn InputCheck) -> Result<Collection, LoadError> {
    load_file_checking(path, Some(inputs))
}

fn load_file_checking(
    path: &Path,
    inputs: Option<&dyn InputCheck>,
) -> Result<Collection, LoadError> {
    let (text, base_dir) = read_document(path, "scene collection")?;
    parse_checking(&text, path, &base_dir, inputs)
}

/// The text of a TOML file Tally reads (`what` names it in messages: "scene collection"),
/// and the folder its paths are relative to.
pub(crate) fn read_document(path: &Path, what: &str) -> Result<(String, PathBuf), LoadError> {
    let text = read_bounded(path, what).map_err(|message| LoadError {
        diagnostics: vec![Diagnostic {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message,
            help: None,
        }],
    })?;
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok((text, base_dir))
}

/// The text of a file that should be a `what`, refusing what cannot be one before reading it
/// all.
fn read_bounded(path: &Path, what: &str) -> Result<String, String> {
    use std::io::Read;
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read the {what}: {e}"))?;
    if let Some(kind) = not_a_regular_file(&metadata) {
        return Err(format!("cannot read the {what}: it is {kind}, not a file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read the {what}: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "this is not a {what}: it is larger than {} MB",
            MAX_FILE_BYTES >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|error| {
        format!(
            "this is not a {what}: it is not UTF-8 text (byte {} is not)",
            error.utf8_error().valid_up_to()
        )
    })
}

/// What a path that is not a regular file is instead, in words.
fn not_a_regular_file(metadata: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let kind = metadata.file_type();
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a folder")
    } else if kind.is_fifo() {
        Some("a pipe (FIFO)")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("a device")
    } else {
        Some("not a regular file")
    }
}

/// Parses a collection from `text`; `file` is only used in messages, `base_dir` resolves paths.
pub fn parse_str(text: &str, file: &Path, base_dir: &Path) -> Result<Collection, LoadError> {
    parse_checking(text, file, base_dir, None)
}

/// As [`parse_str`], with every file the collection names opened by `inputs`.
pub fn parse_str_checked(
    text: &str,
    file: &Path,
    base_dir: &Path,
    inputs: &dyn InputCheck,
) -> Result<Collection, LoadError> {
    parse_checking(text, file, base_dir, Some(inputs))
}

fn parse_checking(
    text: &str,
    file: &Path,
    base_dir: &Path,
    inputs: Option<&dyn InputCheck>,
) -> Result<Collection, LoadError> {
    decode_document(text, file, base_dir, inputs, |decoder, root| {
        decoder.collection(&root)
    })
}

/// Parses `text` as TOML and hands its root table to `decode_root`, collecting every problem
/// either finds: the shared front of the scene and show loaders. `file` is only used in
/// messages, `base_dir` resolves paths.
pub(crate) fn decode_document<T>(
    text: &str,
    file: &Path,
    base_dir: &Path,
    inputs: Option<&dyn InputCheck>,
    decode_root: impl FnOnce(&mut Decoder<'_>, Table<'_, '_>) -> Option<T>,
) -> Result<T, LoadError> {
    let mut decoder = Decoder {
        file,
        base_dir,
        inputs,
        index: LineIndex::new(text),
        diagnostics: Vec::new(),
    };
    let (document, syntax_errors) = DeTable::parse_recoverable(text);
    let syntax_count = syntax_errors.len();
    for error in syntax_errors.into_iter().take(MAX_SYNTAX_ERRORS) {
        let span = error.span().unwrap_or(0..0);
        decoder.error(
            span,
            "",
            format!("TOML syntax error: {}", error.message().trim()),
            None,
        );
    }
    if syntax_count > MAX_SYNTAX_ERRORS {
        // One missing bracket makes every line after it wrong; fix the first ones and check
        // again rather than read a hundred echoes.
        let last = decoder.diagnostics.last().cloned();
        if let Some(last) = last {
            decoder.diagnostics.push(Diagnostic {
                message: format!(
                    "{} more TOML syntax errors after this one, most likely caused by the ones \
                     above; fix those and check again",
                    syntax_count - MAX_SYNTAX_ERRORS
                ),
                help: None,
                field: String::new(),
                ..last
            });
        }
    }
    let decoded = if decoder.diagnostics.is_empty() {
        let root = Table {
            entries: document.get_ref(),
            field: String::new(),
            span: document.span(),
        };
        decode_root(&mut decoder, root)
    } else {
        None
    };
    match decoded {
        Some(decoded) if decoder.diagnostics.is_empty() => Ok(decoded),
        _ => {
            let mut diagnostics = decoder.diagnostics;
            diagnostics.sort_by_key(|d| (d.line, d.column));
            Err(LoadError { diagnostics })
        }
    }
}

pub(crate) struct Decoder<'a> {
    file: &'a Path,
    pub(crate) base_dir: &'a Path,
    inputs: Option<&'a dyn InputCheck>,
    index: LineIndex<'a>,
    diagnostics: Vec<Diagnostic>,
}

/// A table being decoded, with the dotted path that names it in messages.
pub(crate) struct Table<'t, 'i> {
    pub(crate) entries: &'t DeTable<'i>,
    pub(crate) field: String,
    pub(crate) span: Span,
}

impl<'t, 'i> Table<'t, 'i> {
    pub(crate) fn get(&self, key: &str) -> Option<&'t Value<'i>> {
        self.entries.get(key)
    }

    pub(crate) fn child(&self, key: &str) -> String {
        if self.field.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.field)
        }
    }
}

impl<'a> Decoder<'a> {
    pub(crate) fn error(&mut self, span: Span, field: &str, message: String, help: Option<String>) {
        let (line, column) = self.index.line_column(span.start);
        self.diagnostics.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            field: shortened(field),
            message: shortened(&message),
            help: help.as_deref().map(shortened),
        });
    }

    fn collection(&mut self, root: &Table<'_, '_>) -> Option<Collection> {
        self.reject_unknown_keys(root, &["canvas", "current_scene", "sources", "scenes"]);

        let canvas = match root.get("canvas") {
            Some(value) => self.canvas(value, "canvas"),
            None => {
                self.error(
                    root.span.start..root.span.start,
                    "canvas",
                    "missing required table [canvas]".into(),
                    Some("add `[canvas]` with `width`, `height` and `fps`".into()),
                );
                None
            }
        };

        let sources = self.array_of_tables(root, "sources", false, |decoder, table| {
            decoder.source(&table, canvas)
        });
        let mut source_ids = HashSet::new();
        for (source, span) in &sources {
            if !source_ids.insert(source.id.clone()) {
                let field = "sources.id".to_string();
                self.error(
                    span.clone(),
                    &field,
                    format!("duplicate source id `{}`", source.id),
                    Some("each source needs its own id".into()),
                );
            }
        }
        // Items are checked against every id the file declares, even for sources that had
        // other problems, so one mistake is reported once.
        let declared = declared_ids(root);
        let ids: Vec<&str> = declared.iter().map(String::as_str).collect();
        let scenes = self.array_of_tables(root, "scenes", true, |decoder, table| {
            decoder.scene(&table, &ids)
        });
        let mut scene_names = HashSet::new();
        for (scene, span) in &scenes {
            if !scene_names.insert(scene.name.clone()) {
                self.error(
                    span.clone(),
                    "scenes.name",
                    format!("duplicate scene name `{}`", scene.name),
                    None,
                );
            }
        }

        let names: Vec<&str> = scenes
            .iter()
            .map(|(scene, _)| scene.name.as_str())
            .collect();
        let current_scene = match root.get("current_scene") {
            Some(value) => {
                let name = self.string(value, "current_scene")?;
                if !names.is_empty() && !names.contains(&name.as_str()) {
                    let help = suggestion(&name, names.iter().copied(), "scenes");
                    self.error(
                        value.span(),
                        "current_scene",
                        format!("no scene is named `{name}`"),
                        help,
                    );
                }
                name
            }
            None => names
                .first()
                .map(|name| name.to_string())
                .unwrap_or_default(),
        };

        Some(Collection {
            base_dir: self.base_dir.to_path_buf(),
            canvas: canvas?,
            current_scene,
            sources: sources.into_iter().map(|(source, _)| source).collect(),
            scenes: scenes.into_iter().map(|(scene, _)| scene).collect(),
        })
    }

    /// Decodes `[[key]]`, keeping each decoded element with the span of its table.
    pub(crate) fn array_of_tables<T>(
        &mut self,
        parent: &Table<'_, '_>,
        key: &str,
        required: bool,
        mut decode: impl FnMut(&mut Self, Table<'_, '_>) -> Option<T>,
    ) -> Vec<(T, Span)> {
        let field = parent.child(key);
        let Some(value) = parent.get(key) else {
            if required {
                self.error(
                    parent.span.start..parent.span.start,
                    &field,
                    format!("missing `[[{field}]]`: at least one is needed"),
                    None,
                );
            }
            return Vec::new();
        };
        let DeValue::Array(elements) = value.get_ref() else {
            self.type_error(value, &field, &format!("an array of tables `[[{field}]]`"));
            return Vec::new();
        };
        if required && elements.is_empty() {
            self.error(
                value.span(),
                &field,
                "at least one entry is needed".into(),
                None,
            );
        }
        let mut decoded = Vec::new();
        for (i, element) in elements.iter().enumerate() {
            let element_field = format!("{field}[{i}]");
            let DeValue::Table(entries) = element.get_ref() else {
                self.type_error(element, &element_field, "a table");
                continue;
            };
            let table = Table {
                entries,
                field: element_field,
                span: element.span(),
            };
            if let Some(item) = decode(self, table) {
                decoded.push((item, element.span()));
            }
        }
        decoded
    }

    pub(crate) fn sub_table<'t, 'i>(
        &mut self,
        value: &'t Value<'i>,
        field: &str,
    ) -> Option<Table<'t, 'i>> {
        match value.get_ref() {
            DeValue::Table(entries) => Some(Table {
                entries,
                field: field.to_string(),
                span: value.span(),
            }),
            _ => {
                self.type_error(value, field, "a table");
                None
            }
        }
    }

    pub(crate) fn reject_unknown_keys(&mut self, table: &Table<'_, '_>, known: &[&str]) {
        for (key, _) in table.entries.iter() {
            let name: &str = key.get_ref();
            if known.contains(&name) {
                continue;
            }
            let help = match did_you_mean(name, known.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("expected one of: {}", known.join(", ")),
            };
            self.error(
                key.span(),
                &table.child(name),
                format!("unknown key `{name}`"),
                Some(help),
            );
        }
    }

    fn canvas(&mut self, value: &Value<'_>, field: &str) -> Option<Canvas> {
        let table = self.sub_table(value, field)?;
        self.reject_unknown_keys(&table, &["width", "height", "fps"]);
        let width = self.required(&table, "width", Self::canvas_side);
        let height = self.required(&table, "height", Self::canvas_side);
        let fps = self.required(&table, "fps", Self::frame_rate);
        Some(Canvas {
            width: width?,
            height: height?,
            fps: fps?,
        })
    }

    fn canvas_side(&mut self, value: &Value<'_>, field: &str) -> Option<u32> {
        let side = self.integer(value, field)?;
        if side <= 0 || side > i64::from(MAX_CANVAS_SIDE) || side % 2 != 0 {
            self.error(
                value.span(),
                field,
                format!("canvas size {side} is not usable"),
                Some(format!(
                    "expected an even number of pixels from 2 to {MAX_CANVAS_SIDE}: 4:2:0 video needs even sizes"
                )),
            );
            return None;
        }
        u32::try_from(side).ok()
    }

    fn frame_rate(&mut self, value: &Value<'_>, field: &str) -> Option<FrameRate> {
        let expected =
            "expected frames per second as an integer (30) or a fraction string (\"30000/1001\")";
        let parsed = match value.get_ref() {
            DeValue::Integer(_) => self
                .integer(value, field)
                .and_then(|n| u32::try_from(n).ok())
                .map(|n| FrameRate::new(n, 1)),
            DeValue::String(text) => parse_fraction(text),
            DeValue::Float(float) => {
                // The broadcast rates people write as decimals; anything else must be exact.
                let rate = match float.as_str() {
                    "29.97" => Some(FrameRate::new(30000, 1001)),
                    "59.94" => Some(FrameRate::new(60000, 1001)),
                    "23.976" => Some(FrameRate::new(24000, 1001)),
                    _ => None,
                };
                if rate.is_none() {
                    self.error(
                        value.span(),
                        field,
                        format!("frame rate {} is not exact", float.as_str()),
                        Some(expected.into()),
                    );
                    return None;
                }
                rate
            }
            _ => {
                self.type_error(value, field, "a frame rate such as 30 or \"30000/1001\"");
                return None;
            }
        };
        match parsed {
            Some(rate)
                if rate.num > 0 && rate.den > 0 && (MIN_FPS..=MAX_FPS).contains(&rate.as_f64()) =>
            {
                Some(rate)
            }
            _ => {
                self.error(
                    value.span(),
                    field,
                    "frame rate is not usable".into(),
                    Some(format!("{expected}, from {MIN_FPS} to {MAX_FPS}")),
                );
                None
            }
        }
    }

    fn source(&mut self, table: &Table<'_, '_>, canvas: Option<Canvas>) -> Option<Source> {
        const KINDS: [&str; 8] = [
            "color",
            "image",
            "text",
            "media",
            "test_pattern",
            "screen",
            "audio_input",
            "camera",
        ];
        let id = self.required(table, "id", Self::identifier);
        let kind_value = table.get("kind");
        let kind_name = match kind_value {
            Some(value) => self.string(value, &table.child("kind")),
            None => {
                self.error(
                    table.span.clone(),
                    &table.child("kind"),
                    "missing required field `kind`".into(),
                    Some(format!("expected one of: {}", KINDS.join(", "))),
                );
                None
            }
        };
        let kind_name = kind_name?;
        let (canvas_width, canvas_height) = canvas.map_or((1280, 720), |c| (c.width, c.height));
        let kind = match kind_name.as_str() {
            "color" => {
                self.reject_unknown_keys(table, &["id", "kind", "color", "width", "height"]);
                let color = self.required(table, "color", Self::color);
                let width = self
                    .optional(table, "width", Self::size_px)
                    .unwrap_or(canvas_width);
                let height = self
                    .optional(table, "height", Self::size_px)
                    .unwrap_or(canvas_height);
                SourceKind::Color {
                    color: color?,
                    width,
                    height,
                }
            }
            "image" => {
                self.reject_unknown_keys(table, &["id", "kind", "path"]);
                SourceKind::Image {
                    path: self.required(table, "path", Self::image_file)?,
                }
            }
            "text" => {
                self.reject_unknown_keys(
                    table,
                    &["id", "kind", "text", "font", "size", "color", "outline"],
                );
                let text = self.required(table, "text", Self::string);
                let font = self.optional(table, "font", Self::font_file);
                let size = self.optional(table, "size", |d, v, f| d.number_in(v, f, 1.0, 1000.0));
                let color = self.optional(table, "color", Self::color);
                let outline = self.optional(table, "outline", Self::outline);
                SourceKind::Text(TextSource {
                    text: text?,
                    font,
                    size: size.unwrap_or(32.0),
                    color: color.unwrap_or(Color::WHITE),
                    outline,
                })
            }
            "media" => {
                self.reject_unknown_keys(table, &with_audio_keys(&["id", "kind", "path", "loop"]));
                let path = self.required(table, "path", Self::media_file);
                let looping = self.optional(table, "loop", Self::boolean);
                let audio = self.audio_settings(table);
                SourceKind::Media(MediaSource {
                    path: path?,
                    looping: looping.unwrap_or(true),
                    audio,
                })
            }
            "screen" => {
                self.reject_unknown_keys(
                    table,
                    &["id", "kind", "display", "region", "window", "cursor"],
                );
                let display = self.optional(table, "display", Self::string);
                let region = self.optional(table, "region", Self::region);
                let window = self.optional(table, "window", Self::identifier);
                if region.is_some() && window.is_some() {
                    self.error(
                        table.span.clone(),
                        &table.child("window"),
                        "a screen source takes either `region` or `window`, not both".into(),
                        None,
                    );
                }
                SourceKind::Screen(ScreenSource {
                    display,
                    region,
                    window,
                    cursor: self
                        .optional(table, "cursor", Self::boolean)
                        .unwrap_or(true),
                })
            }
            "audio_input" => {
                self.reject_unknown_keys(
                    table,
                    &with_audio_keys(&["id", "kind", "device", "always_on"]),
                );
                let device = self.required(table, "device", Self::string);
                let always_on = self.optional(table, "always_on", Self::boolean);
                let audio = self.audio_settings(table);
                SourceKind::AudioInput(AudioInputSource {
                    device: device?,
                    always_on: always_on.unwrap_or(false),
                    audio,
                })
            }
            "camera" => {
                self.reject_unknown_keys(
                    table,
                    &["id", "kind", "device", "width", "height", "fps", "format"],
                );
                let device = self.required(table, "device", Self::string);
                let width = self.optional(table, "width", Self::size_px);
                let height = self.optional(table, "height", Self::size_px);
                let fps = self.optional(table, "fps", |d, v, f| d.number_in(v, f, 1.0, 240.0));
                let format = self.optional(table, "format", |d, v, f| {
                    d.keyword(v, f, &CameraFormat::NAMES, CameraFormat::parse)
                });
                SourceKind::Camera(CameraSource {
                    device: device?,
                    width: width.unwrap_or(1280),
                    height: height.unwrap_or(720),
                    fps: fps.map_or(30, |fps| fps.round() as u32),
                    format: format.unwrap_or(CameraFormat::Any),
                })
            }
            "test_pattern" => {
                self.reject_unknown_keys(table, &["id", "kind", "width", "height"]);
                let width = self
                    .optional(table, "width", Self::size_px)
                    .unwrap_or(canvas_width);
                let height = self
                    .optional(table, "height", Self::size_px)
                    .unwrap_or(canvas_height);
                SourceKind::TestPattern { width, height }
            }
            other => {
                let help = match did_you_mean(other, KINDS) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("expected one of: {}", KINDS.join(", ")),
                };
                let span = kind_value.map_or(table.span.clone(), Spanned::span);
                self.error(
                    span,
                    &table.child("kind"),
                    format!("unknown source kind `{other}`"),
                    Some(help),
                );
                return None;
            }
        };
        Some(Source { id: id?, kind })
    }

    /// The audio keys of a source with sound (validated; bad ones are reported and defaulted).
    fn audio_settings(&mut self, table: &Table<'_, '_>) -> AudioSettings {
        let defaults = AudioSettings::default();
        AudioSettings {
            volume_db: self
                .optional(table, "volume_db", |d, v, f| {
                    d.number_in(v, f, -100.0, 30.0)
                })
                .unwrap_or(defaults.volume_db),
            muted: self
                .optional(table, "muted", Self::boolean)
                .unwrap_or(defaults.muted),
            balance: self
                .optional(table, "balance", |d, v, f| d.number_in(v, f, -1.0, 1.0))
                .unwrap_or(defaults.balance),
            sync_offset_ms: self
                .optional(table, "sync_offset_ms", |d, v, f| {
                    let limit = f64::from(SYNC_OFFSET_LIMIT_MS);
                    d.number_in(v, f, -limit, limit)
                })
                .map_or(defaults.sync_offset_ms, |ms| ms.round() as i32),
            filters: self
                .optional(table, "filters", |decoder, value, field| {
                    let DeValue::Array(elements) = value.get_ref() else {
                        decoder.type_error(value, field, "an array of filters");
                        return None;
                    };
                    Some(
                        elements
                            .iter()
                            .enumerate()
                            .filter_map(|(i, element)| {
                                decoder.audio_filter(element, &format!("{field}[{i}]"))
                            })
                            .collect(),
                    )
                })
                .unwrap_or_default(),
            monitoring: self
                .optional(table, "monitoring", |d, v, f| {
                    d.keyword(v, f, &Monitoring::NAMES, Monitoring::parse)
                })
                .unwrap_or(defaults.monitoring),
        }
    }

    /// One of a fixed set of words.
    pub(crate) fn keyword<T>(
        &mut self,
        value: &Value<'_>,
        field: &str,
        names: &[&str],
        parse: fn(&str) -> Option<T>,
    ) -> Option<T> {
        let text = self.string(value, field)?;
        if let Some(parsed) = parse(&text) {
            return Some(parsed);
        }
        let help = match did_you_mean(&text, names.iter().copied()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("expected one of: {}", names.join(", ")),
        };
        self.error(
            value.span(),
            field,
            format!("unknown value `{text}`"),
            Some(help),
        );
        None
    }

    fn audio_filter(&mut self, value: &Value<'_>, field: &str) -> Option<AudioFilter> {
        let table = self.sub_table(value, field)?;
        let kind = self.required(&table, "kind", Self::string)?;
        let Some(mut filter) = AudioFilter::new(&kind) else {
            let help = match did_you_mean(&kind, AudioFilter::NAMES) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("expected one of: {}", AudioFilter::NAMES.join(", ")),
            };
            let span = table.get("kind").map_or(table.span.clone(), Spanned::span);
            self.error(
                span,
                &table.child("kind"),
                format!("unknown filter `{kind}`"),
                Some(help),
            );
            return None;
        };
        let mut parameters = filter.parameters_mut();
        let keys: Vec<&str> = std::iter::once("kind")
            .chain(parameters.iter().map(|parameter| parameter.key))
            .collect();
        self.reject_unknown_keys(&table, &keys);
        for parameter in &mut parameters {
            let (min, max) = (*parameter.range.start(), *parameter.range.end());
            if let Some(number) = self.optional(&table, parameter.key, |d, v, f| {
                d.number_in(v, f, f64::from(min), f64::from(max))
            }) {
                *parameter.value = number;
            }
        }
        drop(parameters);
        Some(filter)
    }

    fn region(&mut self, value: &Value<'_>, field: &str) -> Option<Region> {
        let table = self.sub_table(value, field)?;
        self.reject_unknown_keys(&table, &["x", "y", "width", "height"]);
        let mut coordinate = |key: &str, min: i64| {
            self.required(&table, key, |decoder, value, field| {
                let number = decoder.integer(value, field)?;
                if !(min..=i64::from(MAX_PICTURE_SIDE)).contains(&number) {
                    decoder.error(
                        value.span(),
                        field,
                        format!("{number} is out of range"),
                        Some(format!("expected pixels from {min} to {MAX_PICTURE_SIDE}")),
                    );
                    return None;
                }
                u32::try_from(number).ok()
            })
        };
        let (x, y) = (coordinate("x", 0), coordinate("y", 0));
        let (width, height) = (coordinate("width", 1), coordinate("height", 1));
        Some(Region {
            x: x?,
            y: y?,
            width: width?,
            height: height?,
        })
    }

    fn outline(&mut self, value: &Value<'_>, field: &str) -> Option<Outline> {
        let table = self.sub_table(value, field)?;
        self.reject_unknown_keys(&table, &["width", "color"]);
        let width = self.required(&table, "width", |d, v, f| d.number_in(v, f, 0.0, 64.0));
        let color = self.optional(&table, "color", Self::color);
        Some(Outline {
            width: width?,
            color: color.unwrap_or(Color::BLACK),
        })
    }

    fn scene(&mut self, table: &Table<'_, '_>, source_ids: &[&str]) -> Option<Scene> {
        self.reject_unknown_keys(table, &["name", "items"]);
        let name = self.required(table, "name", Self::string);
        let items = self.array_of_tables(table, "items", false, |decoder, item| {
            decoder.item(&item, source_ids)
        });
        Some(Scene {
            name: name?,
            items: items.into_iter().map(|(item, _)| item).collect(),
        })
    }

    fn item(&mut self, table: &Table<'_, '_>, source_ids: &[&str]) -> Option<Item> {
        self.reject_unknown_keys(
            table,
            &[
                "source", "position", "scale", "bounds", "crop", "rotation", "opacity", "visible",
                "locked",
            ],
        );
        let source = self.required(table, "source", Self::string);
        if let (Some(id), Some(value)) = (&source, table.get("source")) {
            if !source_ids.contains(&id.as_str()) {
                let help = suggestion(id, source_ids.iter().copied(), "sources");
                self.error(
                    value.span(),
                    &table.child("source"),
                    format!("no source has the id `{id}`"),
                    help,
                );
            }
        }
        let position = self
            .optional(table, "position", Self::vec2)
            .unwrap_or([0.0, 0.0]);
        let scale = self.optional(table, "scale", Self::vec2);
        let bounds = self.optional(table, "bounds", Self::bounds);
        let size = match (scale, bounds) {
            (Some(_), Some(_)) => {
                self.error(
                    table.span.clone(),
                    &table.child("bounds"),
                    "an item takes either `scale` or `bounds`, not both".into(),
                    None,
                );
                None
            }
            (None, Some(bounds)) => Some(ItemSize::Bounds(bounds)),
            (scale, None) => Some(ItemSize::Scale(scale.unwrap_or([1.0, 1.0]))),
        };
        let crop = self.optional(table, "crop", Self::crop).unwrap_or_default();
        let rotation = self.optional(table, "rotation", |d, v, f| {
            d.number_in(v, f, -360.0, 360.0)
        });
        let opacity = self.optional(table, "opacity", |d, v, f| d.number_in(v, f, 0.0, 1.0));
        let visible = self.optional(table, "visible", Self::boolean);
        let locked = self.optional(table, "locked", Self::boolean);
        Some(Item {
            source: source?,
            position,
            size: size?,
            crop,
            rotation: rotation.unwrap_or(0.0),
            opacity: opacity.unwrap_or(1.0),
            visible: visible.unwrap_or(true),
            locked: locked.unwrap_or(false),
        })
    }

    fn bounds(&mut self, value: &Value<'_>, field: &str) -> Option<Bounds> {
        let table = self.sub_table(value, field)?;
        self.reject_unknown_keys(&table, &["width", "height", "fit"]);
        let width = self.required(&table, "width", |d, v, f| d.number_in(v, f, 1.0, 65536.0));
        let height = self.required(&table, "height", |d, v, f| d.number_in(v, f, 1.0, 65536.0));
        let fit = self.optional(&table, "fit", |decoder, value, field| {
            let text = decoder.string(value, field)?;
            let fit = match text.as_str() {
                "fit" => Some(BoundsFit::Fit),
                "fill" => Some(BoundsFit::Fill),
                "stretch" => Some(BoundsFit::Stretch),
                _ => None,
            };
            if fit.is_none() {
                decoder.error(
                    value.span(),
                    field,
                    format!("unknown fit `{text}`"),
                    Some("expected one of: fit, fill, stretch".into()),
                );
            }
            fit
        });
        Some(Bounds {
            width: width?,
            height: height?,
            fit: fit.unwrap_or(BoundsFit::Fit),
        })
    }

    fn crop(&mut self, value: &Value<'_>, field: &str) -> Option<Crop> {
        let table = self.sub_table(value, field)?;
        self.reject_unknown_keys(&table, &["left", "right", "top", "bottom"]);
        let mut side = |key: &str| {
            self.optional(&table, key, |d, v, f| {
                d.number_in(v, f, 0.0, 65536.0).map(|n| n as u32)
            })
            .unwrap_or(0)
        };
        Some(Crop {
            left: side("left"),
            right: side("right"),
            top: side("top"),
            bottom: side("bottom"),
        })
    }

    // ---- single values ----

    pub(crate) fn required<T>(
        &mut self,
        table: &Table<'_, '_>,
        key: &str,
        decode: impl FnOnce(&mut Self, &Value<'_>, &str) -> Option<T>,
    ) -> Option<T> {
        match table.get(key) {
            Some(value) => decode(self, value, &table.child(key)),
            None => {
                self.error(
                    table.span.clone(),
                    &table.child(key),
                    format!("missing required field `{key}`"),
                    None,
                );
                None
            }
        }
    }

    pub(crate) fn optional<T>(
        &mut self,
        table: &Table<'_, '_>,
        key: &str,
        decode: impl FnOnce(&mut Self, &Value<'_>, &str) -> Option<T>,
    ) -> Option<T> {
        let value = table.get(key)?;
        decode(self, value, &table.child(key))
    }

    pub(crate) fn type_error(&mut self, value: &Value<'_>, field: &str, expected: &str) {
        self.error(
            value.span(),
            field,
            format!("expected {expected}, found {}", value.get_ref().type_str()),
            None,
        );
    }

    pub(crate) fn string(&mut self, value: &Value<'_>, field: &str) -> Option<String> {
        match value.get_ref() {
            DeValue::String(text) => Some(text.to_string()),
            _ => {
                self.type_error(value, field, "a string");
                None
            }
        }
    }

    pub(crate) fn identifier(&mut self, value: &Value<'_>, field: &str) -> Option<String> {
        let text = self.string(value, field)?;
        if text.trim().is_empty() {
            self.error(value.span(), field, "must not be empty".into(), None);
            return None;
        }
        Some(text)
    }

    pub(crate) fn boolean(&mut self, value: &Value<'_>, field: &str) -> Option<bool> {
        match value.get_ref() {
            DeValue::Boolean(flag) => Some(*flag),
            _ => {
                self.type_error(value, field, "true or false");
                None
            }
        }
    }

    pub(crate) fn integer(&mut self, value: &Value<'_>, field: &str) -> Option<i64> {
        match value.get_ref() {
            DeValue::Integer(integer) => {
                let parsed = i64::from_str_radix(integer.as_str(), integer.radix()).ok();
                if parsed.is_none() {
                    self.error(value.span(), field, "integer out of range".into(), None);
                }
                parsed
            }
            _ => {
                self.type_error(value, field, "an integer");
                None
            }
        }
    }

    pub(crate) fn number(&mut self, value: &Value<'_>, field: &str) -> Option<f64> {
        match value.get_ref() {
            DeValue::Integer(_) => self.integer(value, field).map(|n| n as f64),
            DeValue::Float(float) => {
                let number = float.as_str().parse::<f64>().ok().filter(|n| n.is_finite());
                if number.is_none() {
                    self.error(value.span(), field, "expected a finite number".into(), None);
                }
                number
            }
            _ => {
                self.type_error(value, field, "a number");
                None
            }
        }
    }

    pub(crate) fn number_in(
        &mut self,
        value: &Value<'_>,
        field: &str,
        min: f64,
        max: f64,
    ) -> Option<f32> {
        let number = self.number(value, field)?;
        if !(min..=max).contains(&number) {
            self.error(
                value.span(),
                field,
                format!("{number} is out of range"),
                Some(format!("expected a number from {min} to {max}")),
            );
            return None;
        }
        Some(number as f32)
    }

    fn size_px(&mut self, value: &Value<'_>, field: &str) -> Option<u32> {
        let side = self.integer(value, field)?;
        if !(1..=i64::from(MAX_PICTURE_SIDE)).contains(&side) {
            self.error(
                value.span(),
                field,
                format!("size {side} is out of range"),
                Some(format!("expected pixels from 1 to {MAX_PICTURE_SIDE}")),
            );
            return None;
        }
        u32::try_from(side).ok()
    }

    fn vec2(&mut self, value: &Value<'_>, field: &str) -> Option<[f32; 2]> {
        let expected = "a pair of numbers [x, y]";
        let DeValue::Array(elements) = value.get_ref() else {
            self.type_error(value, field, expected);
            return None;
        };
        let [x, y] = elements.as_ref() else {
            self.error(
                value.span(),
                field,
                format!("expected {expected}, found {} elements", elements.len()),
                None,
            );
            return None;
        };
        let x = self.number(x, &format!("{field}[0]"));
        let y = self.number(y, &format!("{field}[1]"));
        Some([x? as f32, y? as f32])
    }

    pub(crate) fn color(&mut self, value: &Value<'_>, field: &str) -> Option<Color> {
        let text = self.string(value, field)?;
        let color = Color::parse_hex(&text);
        if color.is_none() {
            self.error(
                value.span(),
                field,
                format!("`{text}` is not a colour"),
                Some("expected \"#rrggbb\" or \"#rrggbbaa\" in hexadecimal".into()),
            );
        }
        color
    }

    fn image_file(&mut self, value: &Value<'_>, field: &str) -> Option<PathBuf> {
        self.input_file(value, field, InputKind::Image)
    }

    fn font_file(&mut self, value: &Value<'_>, field: &str) -> Option<PathBuf> {
        self.input_file(value, field, InputKind::Font)
    }

    fn media_file(&mut self, value: &Value<'_>, field: &str) -> Option<PathBuf> {
        self.input_file(value, field, InputKind::Media)
    }

    /// A path as written; it must name an existing regular file once resolved against the
    /// collection, which the input check (where there is one) can open as a `kind`.
    fn input_file(&mut self, value: &Value<'_>, field: &str, kind: InputKind) -> Option<PathBuf> {
        let written = PathBuf::from(self.string(value, field)?);
        let resolved = if written.is_absolute() {
            written.clone()
        } else {
            self.base_dir.join(&written)
        };
        let shown = std::path::absolute(&resolved).unwrap_or_else(|_| resolved.clone());
        let problem = match std::fs::metadata(&resolved) {
            Err(_) => Some((
                format!("file not found: {}", shown.display()),
                Some("paths are relative to the scene collection file".to_string()),
            )),
            Ok(metadata) => not_a_regular_file(&metadata)
                .map(|what| (format!("{} is {what}, not a file", shown.display()), None))
                .or_else(|| {
                    let inputs = self.inputs?;
                    let reason = inputs.check(kind, &resolved).err()?;
                    Some((format!("{}: {reason}", shown.display()), None))
                }),
        };
        if let Some((message, help)) = problem {
            self.error(value.span(), field, message, help);
            return None;
        }
        Some(written)
    }
}

/// Text for a message, cut short when a value quoted in it is huge (a 100 KB string pasted
/// by mistake): the location says where it is, and a terminal full of it helps nobody.
fn shortened(text: &str) -> String {
    const KEPT_CHARS: usize = 160;
    let count = text.chars().count();
    if count <= KEPT_CHARS + 40 {
        return text.to_string();
    }
    let kept: String = text.chars().take(KEPT_CHARS).collect();
    format!("{kept}... ({count} characters in all)")
}

/// The `id` strings of `[[sources]]`, read without judging anything else.
/// Keys read by [`Decoder::audio_settings`], for sources with sound.
const AUDIO_KEYS: [&str; 6] = [
    "volume_db",
    "muted",
    "balance",
    "sync_offset_ms",
    "filters",
    "monitoring",
];

/// A source kind's own keys plus the mixer's.
fn with_audio_keys<'k>(own: &[&'k str]) -> Vec<&'k str> {
    own.iter().copied().chain(AUDIO_KEYS).collect()
}

fn declared_ids(root: &Table<'_, '_>) -> Vec<String> {
    let Some(DeValue::Array(sources)) = root.get("sources").map(Spanned::get_ref) else {
        return Vec::new();
    };
    sources
        .iter()
        .filter_map(|source| match source.get_ref() {
            DeValue::Table(table) => match table.get("id").map(Spanned::get_ref) {
                Some(DeValue::String(id)) => Some(id.to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

pub(crate) fn suggestion<'c>(
    word: &str,
    candidates: impl Iterator<Item = &'c str> + Clone,
    what: &str,
) -> Option<String> {
    match did_you_mean(word, candidates.clone()) {
        Some(close) => Some(format!("did you mean `{close}`?")),
        None => {
            let known: Vec<&str> = candidates.collect();
            (!known.is_empty()).then(|| format!("{what} are: {}", known.join(", ")))
        }
    }
}

fn parse_fraction(text: &str) -> Option<FrameRate> {
    match text.split_once('/') {
        Some((num, den)) => Some(FrameRate::new(
            num.trim().parse().ok()?,
            den.trim().parse().ok()?,
        )),
        None => Some(FrameRate::new(text.trim().parse().ok()?, 1)),
    }
}
