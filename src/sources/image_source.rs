//! Image files (PNG, JPEG) decoded once into a premultiplied frame.

use crate::base::{Packing, VideoFrame};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("cannot load image {path}: {cause}")]
pub struct ImageError {
    path: String,
    cause: ImageProblem,
}

/// Why a picture file does not load: it cannot be read, or it does not decode.
#[derive(Debug, thiserror::Error)]
pub enum ImageProblem {
    #[error("{0}")]
    Read(#[from] std::io::Error),
    #[error("{0}")]
    Decode(#[from] image::ImageError),
}

impl ImageError {
    /// What is wrong with the file, without its name.
    pub fn into_cause(self) -> ImageProblem {
        self.cause
    }
}

pub fn load_image(path: &Path) -> Result<VideoFrame, ImageError> {
    let decoded = image::ImageReader::open(path)
        .and_then(|reader| reader.with_guessed_format())
        .map_err(ImageProblem::from)
        .and_then(|reader| reader.decode().map_err(ImageProblem::from))
        .map_err(|cause| ImageError {
            path: path.display().to_string(),
            cause,
        })?;
    let rgba = decoded.to_rgba8();
    let (width, height) = rgba.dimensions();
    let mut pixels = rgba.into_raw();
    premultiply(&mut pixels);
    Ok(VideoFrame {
        width,
        height,
        pixels,
        packing: Packing::Rgba,
    })
}

/// Converts straight-alpha RGBA8 to premultiplied, rounding to nearest.
pub(crate) fn premultiply(pixels: &mut [u8]) {
    for pixel in pixels.chunks_exact_mut(4) {
        let alpha = u16::from(pixel[3]);
        if alpha == 255 {
            continue;
        }
        for channel in &mut pixel[..3] {
            *channel = ((u16::from(*channel) * alpha + 127) / 255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn premultiply_scales_colour_by_alpha() {
        let mut pixels = vec![255, 128, 0, 128, 10, 20, 30, 255, 200, 200, 200, 0];
        premultiply(&mut pixels);
        assert_eq!(pixels, vec![128, 64, 0, 128, 10, 20, 30, 255, 0, 0, 0, 0]);
    }
}
