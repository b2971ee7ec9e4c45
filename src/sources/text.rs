//! Text sources: laid out and rasterised on the CPU with ab_glyph into a texture, once per
//! change of text. Text changes rarely, so a CPU raster uploaded once costs less than drawing
//! glyphs on the GPU every frame (which on software Vulkan is the expensive part).

use crate::base::{Packing, VideoFrame};
use crate::scene::{Color, TextSource};
use ab_glyph::{Font, FontArc, PxScale, ScaleFont};
use std::path::Path;

const BUNDLED_FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("cannot read font {path}: {cause}")]
    Font { path: String, cause: FontProblem },
}

/// Why a font file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FontProblem {
    #[error("{0}")]
    Read(#[from] std::io::Error),
    #[error("not a TrueType or OpenType font")]
    NotAFont(#[from] ab_glyph::InvalidFont),
}

impl TextError {
    /// What is wrong with the font, without its name.
    pub fn into_cause(self) -> FontProblem {
        match self {
            TextError::Font { cause, .. } => cause,
        }
    }
}

pub(super) fn load_font(path: Option<&Path>) -> Result<FontArc, TextError> {
    match path {
        None => FontArc::try_from_slice(BUNDLED_FONT).map_err(|error| TextError::Font {
            path: "bundled DejaVu Sans Bold".into(),
            cause: error.into(),
        }),
        Some(path) => {
            let font_error = |cause: FontProblem| TextError::Font {
                path: path.display().to_string(),
                cause,
            };
            let bytes = std::fs::read(path).map_err(|e| font_error(e.into()))?;
            FontArc::try_from_vec(bytes).map_err(|e| font_error(e.into()))
        }
    }
}

/// Renders `text` (lines split on '\n', left-aligned) to a premultiplied frame just large
/// enough for the glyphs and their outline.
pub fn render_text(text: &TextSource, font_path: Option<&Path>) -> Result<VideoFrame, TextError> {
    let font = load_font(font_path)?;
    let scaled = font.as_scaled(PxScale::from(text.size));
    let outline_width = text.outline.map_or(0.0, |outline| outline.width);
    let padding = outline_width.ceil() as i32 + 1;
    let line_height = scaled.height() + scaled.line_gap();

    // Lay out every glyph first to know the frame's size.
    let mut glyphs = Vec::new();
    let mut widest: f32 = 0.0;
    let lines: Vec<&str> = text.text.split('\n').collect();
    for (line_number, line) in lines.iter().enumerate() {
        let baseline = scaled.ascent() + line_number as f32 * line_height;
        let mut caret = 0.0;
        let mut previous = None;
        for character in line.chars() {
            let id = scaled.glyph_id(character);
            if let Some(previous) = previous {
                caret += scaled.kern(previous, id);
            }
            glyphs
                .push(id.with_scale_and_position(scaled.scale(), ab_glyph::point(caret, baseline)));
            caret += scaled.h_advance(id);
            previous = Some(id);
        }
        widest = widest.max(caret);
    }
    let text_height = line_height * lines.len() as f32 - scaled.line_gap();
    let width = (widest.ceil() as i32 + 2 * padding).max(1) as u32;
    let height = (text_height.ceil() as i32 + 2 * padding).max(1) as u32;

    // Coverage of the glyphs alone, 0..=1 per pixel.
    let mut coverage = vec![0.0f32; width as usize * height as usize];
    for glyph in glyphs {
        let Some(outlined) = font.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outlined.px_bounds();
        outlined.draw(|x, y, amount| {
            let px = bounds.min.x as i32 + x as i32 + padding;
            let py = bounds.min.y as i32 + y as i32 + padding;
            if px >= 0 && py >= 0 && (px as u32) < width && (py as u32) < height {
                let index = py as usize * width as usize + px as usize;
                coverage[index] = (coverage[index] + amount).min(1.0);
            }
        });
    }

    let outline_coverage = text
        .outline
        .filter(|outline| outline.width > 0.0)
        .map(|outline| dilate(&coverage, width, height, outline.width));

    let mut pixels = Vec::with_capacity(coverage.len() * 4);
    for (index, &fill) in coverage.iter().enumerate() {
        let fill_rgba = premultiplied_f32(text.color, fill);
        let rgba = match (&outline_coverage, text.outline) {
            (Some(ring), Some(outline)) => {
                let under = premultiplied_f32(outline.color, ring[index]);
                // Fill over outline, both premultiplied.
                let mut out = [0.0; 4];
                for c in 0..4 {
                    out[c] = fill_rgba[c] + under[c] * (1.0 - fill_rgba[3]);
                }
                out
            }
            _ => fill_rgba,
        };
        pixels.extend(rgba.map(|c| (c * 255.0).round().clamp(0.0, 255.0) as u8));
    }
    Ok(VideoFrame {
        width,
        height,
        pixels,
        packing: Packing::Rgba,
    })
}

fn premultiplied_f32(color: Color, coverage: f32) -> [f32; 4] {
    let alpha = f32::from(color.a) / 255.0 * coverage;
    [
        f32::from(color.r) / 255.0 * alpha,
        f32::from(color.g) / 255.0 * alpha,
        f32::from(color.b) / 255.0 * alpha,
        alpha,
    ]
}

/// Grows coverage by `radius` pixels: each pixel takes the strongest coverage within a disc,
/// with the disc's edge anti-aliased so the outline is smooth.
fn dilate(coverage: &[f32], width: u32, height: u32, radius: f32) -> Vec<f32> {
    let reach = radius.ceil() as i32;
    let mut offsets = Vec::new();
    for dy in -reach..=reach {
        for dx in -reach..=reach {
            let distance = ((dx * dx + dy * dy) as f32).sqrt();
            let weight = (radius + 0.5 - distance).clamp(0.0, 1.0);
            if weight > 0.0 {
                offsets.push((dx, dy, weight));
            }
        }
    }
    let (w, h) = (width as i32, height as i32);
    let mut grown = vec![0.0f32; coverage.len()];
    for y in 0..h {
        for x in 0..w {
            let mut strongest: f32 = 0.0;
            for &(dx, dy, weight) in &offsets {
                let (sx, sy) = (x + dx, y + dy);
                if sx >= 0 && sy >= 0 && sx < w && sy < h {
                    strongest = strongest.max(coverage[(sy * w + sx) as usize] * weight);
                }
            }
            grown[(y * w + x) as usize] = strongest;
        }
    }
    grown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::Outline;

    fn text(outline: Option<Outline>) -> TextSource {
        TextSource {
            text: "Hi".into(),
            font: None,
            size: 32.0,
            color: Color::WHITE,
            outline,
        }
    }

    #[test]
    fn renders_opaque_glyph_pixels_and_transparent_background() {
        let frame = render_text(&text(None), None).unwrap();
        assert!(frame.height >= 32 && frame.width > 30);
        let alphas: Vec<u8> = frame.pixels.chunks(4).map(|p| p[3]).collect();
        assert_eq!(alphas[0], 0, "corner is transparent");
        assert!(alphas.contains(&255), "glyph stems are fully covered");
        // Premultiplied white: colour never exceeds alpha.
        assert!(frame.pixels.chunks(4).all(|p| p[0] <= p[3]));
    }

    #[test]
    fn outline_adds_dark_pixels_around_glyphs() {
        let outline = Outline {
            width: 3.0,
            color: Color::BLACK,
        };
        let plain = render_text(&text(None), None).unwrap();
        let outlined = render_text(&text(Some(outline)), None).unwrap();
        let covered = |f: &VideoFrame| f.pixels.chunks(4).filter(|p| p[3] > 128).count();
        assert!(covered(&outlined) > covered(&plain) + 50);
        assert!(outlined.pixels.chunks(4).any(|p| p[3] == 255 && p[0] == 0));
    }
}
