//! What the compositor redraws: each frame's layers planned as quads and bounds
//! ([`plan`]), and the part of the canvas that differs from the frame before
//! ([`dirty_region`]), aligned to whole words of every I420 plane. Pure: no GPU, so the
//! rules of "draw only what changed" are tested on their own.

use super::Layer;
use crate::scene::geometry::{item_quad, ndc_from_canvas};

/// One item as the shader draws it: its corners in clip space with their texture
/// coordinates, and its opacity.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ItemUniform {
    pub(crate) corners: [[f32; 4]; 4],
    pub(crate) opacity: [f32; 4],
}

/// A rectangle of the canvas in pixels: x, y, width, height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanvasRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl CanvasRect {
    /// The smallest rectangle on whole pixels holding `[min_x, min_y, max_x, max_y]`, grown by
    /// a pixel for bilinear filtering, aligned to 8 across and 2 down (so it maps onto whole
    /// words of every I420 plane), and clipped to the canvas.
    pub(crate) fn covering(bounds: [f32; 4], canvas: [u32; 2]) -> Option<Self> {
        let clamp = |value: f32, max: u32| value.clamp(0.0, max as f32) as u32;
        let x0 = clamp((bounds[0] - 1.0).floor(), canvas[0]) / 8 * 8;
        let y0 = clamp((bounds[1] - 1.0).floor(), canvas[1]) / 2 * 2;
        let x1 = clamp((bounds[2] + 1.0).ceil(), canvas[0]).div_ceil(8) * 8;
        let y1 = clamp((bounds[3] + 1.0).ceil(), canvas[1]).div_ceil(2) * 2;
        let (x1, y1) = (x1.min(canvas[0]), y1.min(canvas[1]));
        (x1 > x0 && y1 > y0).then_some(Self {
            x: x0,
            y: y0,
            width: x1 - x0,
            height: y1 - y0,
        })
    }
}

/// What was drawn for one layer, to tell next frame what changed.
#[derive(Clone, PartialEq)]
pub(crate) struct DrawnLayer {
    pub(crate) source_id: String,
    pub(crate) generation: u64,
    pub(crate) uniform: [u8; std::mem::size_of::<ItemUniform>()],
    pub(crate) bounds: [f32; 4],
    /// Scissor in whole canvas pixels `[x0, y0, x1, y1]`, when the layer is clipped.
    pub(crate) clip: Option<[u32; 4]>,
}

fn intersection(a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
    [
        a[0].max(b[0]),
        a[1].max(b[1]),
        a[2].min(b[2]),
        a[3].min(b[3]),
    ]
}

fn union(a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
    [
        a[0].min(b[0]),
        a[1].min(b[1]),
        a[2].max(b[2]),
        a[3].max(b[3]),
    ]
}

/// The layers as they will be drawn: visible ones with their quads in clip space.
pub(crate) fn plan(layers: &[Layer<'_>], canvas_size: [u32; 2]) -> Vec<DrawnLayer> {
    layers
        .iter()
        .filter(|layer| layer.item.visible && layer.item.opacity > 0.0)
        .filter_map(|layer| {
            let quad = item_quad(layer.item, layer.source_size)?;
            let mut corners = [[0.0; 4]; 4];
            let mut bounds = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
            for (corner, (pos, uv)) in corners
                .iter_mut()
                .zip(quad.pos_in_canvas.iter().zip(quad.uv))
            {
                let ndc = ndc_from_canvas(*pos, canvas_size);
                *corner = [ndc[0], ndc[1], uv[0], uv[1]];
                bounds = union(bounds, [pos[0], pos[1], pos[0], pos[1]]);
            }
            let uniform = ItemUniform {
                corners,
                opacity: [layer.item.opacity, 0.0, 0.0, 0.0],
            };
            let mut bytes = [0u8; std::mem::size_of::<ItemUniform>()];
            bytes.copy_from_slice(bytemuck::bytes_of(&uniform));
            let clip = layer.clip.map(|[x0, y0, x1, y1]| {
                let [width, height] = canvas_size.map(|side| side as f32);
                let x0 = x0.clamp(0.0, width).round() as u32;
                let y0 = y0.clamp(0.0, height).round() as u32;
                [
                    x0,
                    y0,
                    (x1.clamp(0.0, width).round() as u32).max(x0),
                    (y1.clamp(0.0, height).round() as u32).max(y0),
                ]
            });
            if let Some([x0, y0, x1, y1]) = clip {
                bounds = intersection(bounds, [x0 as f32, y0 as f32, x1 as f32, y1 as f32]);
                if bounds[2] <= bounds[0] || bounds[3] <= bounds[1] {
                    return None;
                }
            }
            Some(DrawnLayer {
                source_id: layer.source_id.to_string(),
                generation: layer.frame.generation,
                uniform: bytes,
                bounds,
                clip,
            })
        })
        .collect()
}

/// The part of the canvas that differs from last frame, or `None` when nothing does.
pub(crate) fn dirty_region(
    drawn: Option<&[DrawnLayer]>,
    planned: &[DrawnLayer],
    canvas_size: [u32; 2],
) -> Option<CanvasRect> {
    let everything = CanvasRect {
        x: 0,
        y: 0,
        width: canvas_size[0],
        height: canvas_size[1],
    };
    let Some(drawn) = drawn else {
        return Some(everything);
    };
    let same_stack = drawn.len() == planned.len()
        && drawn
            .iter()
            .zip(planned)
            .all(|(old, new)| old.source_id == new.source_id);
    if !same_stack {
        return Some(everything);
    }
    let changed = drawn
        .iter()
        .zip(planned)
        .filter(|(old, new)| old != new)
        .map(|(old, new)| union(old.bounds, new.bounds))
        .reduce(union)?;
    CanvasRect::covering(changed, canvas_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::{FrameRef, VideoFrame};
    use crate::scene::Item;
    use std::sync::Arc;

    const CANVAS: [u32; 2] = [320, 180];

    fn picture(generation: u64) -> FrameRef {
        FrameRef {
            frame: Arc::new(VideoFrame::solid(1, 1, [255, 0, 0, 255])),
            generation,
        }
    }

    fn layer<'a>(id: &'a str, frame: &'a FrameRef, item: &'a Item) -> Layer<'a> {
        Layer {
            source_id: id,
            frame,
            source_size: [100, 50],
            item,
            clip: None,
        }
    }

    fn everything() -> CanvasRect {
        CanvasRect {
            x: 0,
            y: 0,
            width: CANVAS[0],
            height: CANVAS[1],
        }
    }

    #[test]
    fn the_first_frame_draws_everything_and_an_unchanged_one_nothing() {
        let frame = picture(1);
        let item = Item::new("a", [10.0, 20.0]);
        let planned = plan(&[layer("a", &frame, &item)], CANVAS);
        assert_eq!(dirty_region(None, &planned, CANVAS), Some(everything()));
        let again = plan(&[layer("a", &frame, &item)], CANVAS);
        assert_eq!(dirty_region(Some(&planned), &again, CANVAS), None);
    }

    #[test]
    fn a_new_picture_redraws_its_item_grown_a_pixel_and_aligned_to_8_by_2() {
        let (old, new) = (picture(1), picture(2));
        let background = picture(7);
        let full = Item::new("bg", [0.0, 0.0]);
        let item = Item::new("a", [10.0, 21.0]);
        let before = plan(
            &[layer("bg", &background, &full), layer("a", &old, &item)],
            CANVAS,
        );
        let after = plan(
            &[layer("bg", &background, &full), layer("a", &new, &item)],
            CANVAS,
        );
        assert_eq!(after[1].bounds, [10.0, 21.0, 110.0, 71.0]);
        // 9..111 across becomes 8..112; 20..72 down stays on even rows.
        assert_eq!(
            dirty_region(Some(&before), &after, CANVAS),
            Some(CanvasRect {
                x: 8,
                y: 20,
                width: 104,
                height: 52
            })
        );
    }

    #[test]
    fn a_moved_item_redraws_where_it_was_and_where_it_is() {
        let frame = picture(1);
        let here = Item::new("a", [0.0, 0.0]);
        let there = Item::new("a", [200.0, 100.0]);
        let before = plan(&[layer("a", &frame, &here)], CANVAS);
        let after = plan(&[layer("a", &frame, &there)], CANVAS);
        let region = dirty_region(Some(&before), &after, CANVAS).expect("something changed");
        assert_eq!((region.x, region.y), (0, 0));
        // 300 + 1 rounds up to 304; 150 + 1 to 152.
        assert_eq!((region.width, region.height), (304, 152));
    }

    #[test]
    fn a_layer_added_or_taken_away_redraws_everything() {
        let frame = picture(1);
        let a = Item::new("a", [0.0, 0.0]);
        let b = Item::new("b", [50.0, 50.0]);
        let one = plan(&[layer("a", &frame, &a)], CANVAS);
        let two = plan(&[layer("a", &frame, &a), layer("b", &frame, &b)], CANVAS);
        assert_eq!(dirty_region(Some(&one), &two, CANVAS), Some(everything()));
        assert_eq!(dirty_region(Some(&two), &one, CANVAS), Some(everything()));
    }

    #[test]
    fn hidden_transparent_and_clipped_away_items_are_not_drawn() {
        let frame = picture(1);
        let hidden = Item {
            visible: false,
            ..Item::new("a", [0.0, 0.0])
        };
        let clear = Item {
            opacity: 0.0,
            ..Item::new("a", [0.0, 0.0])
        };
        let shown = Item::new("a", [0.0, 0.0]);
        let mut clipped_away = layer("a", &frame, &shown);
        clipped_away.clip = Some([200.0, 0.0, 320.0, 180.0]);
        let mut half = layer("a", &frame, &shown);
        half.clip = Some([50.0, 0.0, 320.0, 180.0]);
        let planned = plan(
            &[
                layer("a", &frame, &hidden),
                layer("a", &frame, &clear),
                clipped_away,
                half,
            ],
            CANVAS,
        );
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].bounds, [50.0, 0.0, 100.0, 50.0]);
        assert_eq!(planned[0].clip, Some([50, 0, 320, 180]));
    }

    #[test]
    fn a_region_is_clipped_to_the_canvas_and_empty_bounds_cover_nothing() {
        let region = CanvasRect::covering([300.0, 170.0, 400.0, 250.0], CANVAS).unwrap();
        assert_eq!(
            region,
            CanvasRect {
                x: 296,
                y: 168,
                width: 24,
                height: 12
            }
        );
        assert_eq!(
            CanvasRect::covering([400.0, 0.0, 500.0, 10.0], CANVAS),
            None
        );
    }
}
