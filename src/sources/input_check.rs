//! Looking inside the files a collection names before the show starts, with the same code the
//! sources open them with: a picture is decoded, a font read, a clip's first picture and
//! sound decoded. `tally check` and the command line's loading use it, so a 0-byte PNG, a
//! truncated MP4 or a PNG named as a font is an error with its file and line, not a failure
//! (or worse) once the show runs.

use super::{image_source, media, text};
use crate::scene::{InputCheck, InputKind};
use std::path::Path;

/// The [`InputCheck`] that opens files as the sources do.
pub struct InputFiles;

impl InputCheck for InputFiles {
    fn check(&self, kind: InputKind, path: &Path) -> Result<(), String> {
        match kind {
            InputKind::Image => image_source::load_image(path)
                .map(drop)
                .map_err(|error| error.reason().to_string()),
            InputKind::Font => text::load_font(Some(path))
                .map(drop)
                .map_err(|error| error.reason().to_string()),
            InputKind::Media => media::check_file(path),
        }
    }
}
