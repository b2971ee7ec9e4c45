//! The test pattern: SMPTE-style colour bars, a box that moves one step per canvas frame, and
//! the canvas frame number in seven-segment digits, so dropped or repeated frames can be seen
//! (and read back by tests) in any recording.

use super::RunningSource;
use crate::base::{FrameRef, Packing, Tick, VideoFrame};
use std::sync::Arc;

/// 75% bars in the usual order: white, yellow, cyan, green, magenta, red, blue.
const BARS: [[u8; 3]; 7] = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
];
/// The strip under the bars repeats them in reverse with black between, as SMPTE does.
const CASTELLATIONS: [[u8; 3]; 7] = [
    [0, 0, 191],
    [19, 19, 19],
    [191, 0, 191],
    [19, 19, 19],
    [0, 191, 191],
    [19, 19, 19],
    [191, 191, 191],
];

pub struct TestPattern {
    background: Vec<u8>,
    width: u32,
    height: u32,
    last_index: Option<u64>,
    current: Option<FrameRef>,
}

impl TestPattern {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            background: bars(width, height),
            width,
            height,
            last_index: None,
            current: None,
        }
    }

    /// The pattern for canvas frame `index`.
    pub fn frame(&self, index: u64) -> VideoFrame {
        let mut frame = VideoFrame {
            width: self.width,
            height: self.height,
            pixels: self.background.clone(),
            packing: Packing::Rgba,
        };
        let (w, h) = (self.width as i64, self.height as i64);
        // The moving box crosses the bottom band once every 4 seconds at 30 fps.
        let box_side = (h / 8).max(2);
        let travel = (w - box_side).max(1);
        let step = (index as i64 * travel / 120) % (2 * travel);
        let x = if step < travel {
            step
        } else {
            2 * travel - step
        };
        fill_rect(
            &mut frame,
            x,
            h - box_side,
            box_side,
            box_side,
            [255, 255, 255],
        );
        draw_counter(&mut frame, index);
        frame
    }
}

impl RunningSource for TestPattern {
    fn size(&self) -> [u32; 2] {
        [self.width, self.height]
    }

    fn video(&mut self, tick: Tick) -> Option<FrameRef> {
        if self.last_index != Some(tick.index) {
            self.last_index = Some(tick.index);
            self.current = Some(FrameRef {
                frame: Arc::new(self.frame(tick.index)),
                generation: tick.index + 1,
            });
        }
        self.current.clone()
    }
}

fn bars(width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let mut pixels = vec![0u8; w * h * 4];
    let bars_end = h * 2 / 3;
    let strip_end = h * 3 / 4;
    for y in 0..h {
        for x in 0..w {
            let column = (x * 7 / w.max(1)).min(6);
            let rgb = if y < bars_end {
                BARS[column]
            } else if y < strip_end {
                CASTELLATIONS[column]
            } else {
                // Bottom band: black with a PLUGE-like step of near-black greys.
                match x * 6 / w.max(1) {
                    4 => [10, 10, 10],
                    5 => [29, 29, 29],
                    _ => [16, 16, 16],
                }
            };
            let offset = (y * w + x) * 4;
            pixels[offset..offset + 4].copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
        }
    }
    pixels
}

fn fill_rect(frame: &mut VideoFrame, x: i64, y: i64, w: i64, h: i64, rgb: [u8; 3]) {
    let (fw, fh) = (i64::from(frame.width), i64::from(frame.height));
    for py in y.max(0)..(y + h).min(fh) {
        for px in x.max(0)..(x + w).min(fw) {
            let offset = ((py * fw + px) * 4) as usize;
            if let Some(pixel) = frame.pixels.get_mut(offset..offset + 4) {
                pixel.copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
            }
        }
    }
}

/// Segments a..g of each digit, as bits 0..6.
const DIGIT_SEGMENTS: [u8; 10] = [
    0b0111111, 0b0000110, 0b1011011, 0b1001111, 0b1100110, 0b1101101, 0b1111101, 0b0000111,
    0b1111111, 0b1101111,
];

/// Draws `index` as six seven-segment digits on a black plate in the top-left corner.
fn draw_counter(frame: &mut VideoFrame, index: u64) {
    let digit_height = (i64::from(frame.height) / 8).max(10);
    let digit_width = digit_height / 2;
    let thickness = (digit_height / 8).max(1);
    let gap = thickness * 2;
    let margin = thickness * 2;
    let digits = 6;
    let plate_width = margin * 2 + digits * (digit_width + gap) - gap;
    fill_rect(
        frame,
        0,
        0,
        plate_width,
        digit_height + margin * 2,
        [0, 0, 0],
    );
    let text = format!("{:06}", index % 1_000_000);
    for (position, character) in text.chars().enumerate() {
        let Some(value) = character.to_digit(10) else {
            continue;
        };
        let segments = DIGIT_SEGMENTS[value as usize];
        let x = margin + position as i64 * (digit_width + gap);
        let y = margin;
        let half = digit_height / 2;
        let bars = [
            (x, y, digit_width, thickness),                            // a: top
            (x + digit_width - thickness, y, thickness, half),         // b: top right
            (x + digit_width - thickness, y + half, thickness, half),  // c: bottom right
            (x, y + digit_height - thickness, digit_width, thickness), // d: bottom
            (x, y + half, thickness, half),                            // e: bottom left
            (x, y, thickness, half),                                   // f: top left
            (x, y + half - thickness / 2, digit_width, thickness),     // g: middle
        ];
        for (bit, (bx, by, bw, bh)) in bars.iter().enumerate() {
            if segments & (1 << bit) != 0 {
                fill_rect(frame, *bx, *by, *bw, *bh, [255, 255, 255]);
            }
        }
    }
}

/// Reads the frame number back from a picture of the pattern (RGBA, the pattern drawn 1:1 at
/// the top-left of the picture). Tests use it to prove that every frame of a recording is the
/// one it should be, even after lossy encoding.
pub fn read_counter(rgba: &[u8], width: u32, pattern_height: u32) -> Option<u64> {
    let digit_height = (i64::from(pattern_height) / 8).max(10);
    let digit_width = digit_height / 2;
    let thickness = (digit_height / 8).max(1);
    let gap = thickness * 2;
    let margin = thickness * 2;
    let luma_at = |x: i64, y: i64| -> Option<u8> {
        let offset = ((y * i64::from(width) + x) * 4) as usize;
        let p = rgba.get(offset..offset + 3)?;
        Some(((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3) as u8)
    };
    let mut value = 0u64;
    for position in 0..6 {
        let x = margin + position * (digit_width + gap);
        let y = margin;
        let half = digit_height / 2;
        let t2 = thickness / 2;
        // Sample the middle of each segment.
        let probes = [
            (x + digit_width / 2, y + t2),
            (x + digit_width - 1 - t2, y + half / 2),
            (x + digit_width - 1 - t2, y + half + half / 2),
            (x + digit_width / 2, y + digit_height - 1 - t2),
            (x + t2, y + half + half / 2),
            (x + t2, y + half / 2),
            (x + digit_width / 2, y + half),
        ];
        let mut segments = 0u8;
        for (bit, (px, py)) in probes.iter().enumerate() {
            if luma_at(*px, *py)? > 128 {
                segments |= 1 << bit;
            }
        }
        let digit = DIGIT_SEGMENTS.iter().position(|&s| s == segments)?;
        value = value * 10 + digit as u64;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_reads_back_what_was_drawn() {
        let pattern = TestPattern::new(640, 360);
        for index in [0, 7, 123, 899, 45678] {
            let frame = pattern.frame(index);
            assert_eq!(read_counter(&frame.pixels, 640, 360), Some(index));
        }
    }

    #[test]
    fn moving_box_moves_every_frame() {
        let pattern = TestPattern::new(640, 360);
        assert_ne!(pattern.frame(10).pixels, pattern.frame(11).pixels);
    }
}
