//! Where an item lands on the canvas: crop, scale or bounds, rotation, as four corners.
//! Pure arithmetic, so it is tested without a GPU.

use crate::scene::{BoundsFit, Item, ItemSize};

/// An item's quad: corners in canvas pixels with their texture coordinates, in the order
/// top-left, top-right, bottom-left, bottom-right (a triangle strip).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quad {
    pub pos_in_canvas: [[f32; 2]; 4],
    pub uv: [[f32; 2]; 4],
}

/// The quad for `item` showing a source of `source_size` pixels, or `None` when nothing of
/// it is visible (cropped away, zero scale).
pub fn item_quad(item: &Item, source_size: [u32; 2]) -> Option<Quad> {
    let [source_width, source_height] = source_size.map(|side| side as f32);
    let crop = item.crop;
    let cropped_width = source_width - (crop.left + crop.right) as f32;
    let cropped_height = source_height - (crop.top + crop.bottom) as f32;
    if cropped_width <= 0.0 || cropped_height <= 0.0 {
        return None;
    }
    let mut u = [
        crop.left as f32 / source_width,
        (source_width - crop.right as f32) / source_width,
    ];
    let mut v = [
        crop.top as f32 / source_height,
        (source_height - crop.bottom as f32) / source_height,
    ];

    // Size on the canvas, and where the drawn rectangle sits relative to `position`.
    let (size, offset) = match item.size {
        ItemSize::Scale([scale_x, scale_y]) => (
            [cropped_width * scale_x, cropped_height * scale_y],
            [0.0, 0.0],
        ),
        ItemSize::Bounds(bounds) => {
            let fit_scale = (bounds.width / cropped_width).min(bounds.height / cropped_height);
            let fill_scale = (bounds.width / cropped_width).max(bounds.height / cropped_height);
            match bounds.fit {
                BoundsFit::Stretch => ([bounds.width, bounds.height], [0.0, 0.0]),
                BoundsFit::Fit => {
                    let size = [cropped_width * fit_scale, cropped_height * fit_scale];
                    (
                        size,
                        [
                            (bounds.width - size[0]) / 2.0,
                            (bounds.height - size[1]) / 2.0,
                        ],
                    )
                }
                BoundsFit::Fill => {
                    // Show the middle of the source that covers the box; trim the rest.
                    let visible_u = bounds.width / (cropped_width * fill_scale);
                    let visible_v = bounds.height / (cropped_height * fill_scale);
                    u = trim_centered(u, visible_u);
                    v = trim_centered(v, visible_v);
                    ([bounds.width, bounds.height], [0.0, 0.0])
                }
            }
        }
    };
    if size[0] == 0.0 || size[1] == 0.0 {
        return None;
    }

    let left = item.position[0] + offset[0];
    let top = item.position[1] + offset[1];
    let centre = [left + size[0] / 2.0, top + size[1] / 2.0];
    let (sin, cos) = item.rotation.to_radians().sin_cos();
    // Canvas y grows downwards, so this standard rotation turns clockwise on screen.
    let rotate = |x: f32, y: f32| {
        let (dx, dy) = (x - centre[0], y - centre[1]);
        [
            centre[0] + dx * cos - dy * sin,
            centre[1] + dx * sin + dy * cos,
        ]
    };
    let right = left + size[0];
    let bottom = top + size[1];
    Some(Quad {
        pos_in_canvas: [
            rotate(left, top),
            rotate(right, top),
            rotate(left, bottom),
            rotate(right, bottom),
        ],
        uv: [[u[0], v[0]], [u[1], v[0]], [u[0], v[1]], [u[1], v[1]]],
    })
}

/// How many canvas pixels one source pixel of `item` covers, at most across both axes
/// (1.0 at scale 1; 0.375 for 1280x720 shown at 480x270).
pub fn display_scale(item: &Item, source_size: [u32; 2]) -> Option<f32> {
    let quad = item_quad(item, source_size)?;
    let length = |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    let across = length(quad.pos_in_canvas[0], quad.pos_in_canvas[1]);
    let down = length(quad.pos_in_canvas[0], quad.pos_in_canvas[2]);
    let texels_across = (quad.uv[1][0] - quad.uv[0][0]).abs() * source_size[0] as f32;
    let texels_down = (quad.uv[2][1] - quad.uv[0][1]).abs() * source_size[1] as f32;
    Some((across / texels_across.max(1e-6)).max(down / texels_down.max(1e-6)))
}

fn trim_centered(range: [f32; 2], keep_fraction: f32) -> [f32; 2] {
    let span = range[1] - range[0];
    let cut = span * (1.0 - keep_fraction.min(1.0)) / 2.0;
    [range[0] + cut, range[1] - cut]
}

/// Canvas pixels to normalised device coordinates (y up).
pub fn ndc_from_canvas(pos_in_canvas: [f32; 2], canvas_size: [u32; 2]) -> [f32; 2] {
    [
        pos_in_canvas[0] / canvas_size[0] as f32 * 2.0 - 1.0,
        1.0 - pos_in_canvas[1] / canvas_size[1] as f32 * 2.0,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::{Bounds, Crop};

    fn item(size: ItemSize) -> Item {
        Item {
            size,
            ..Item::new("s", [10.0, 20.0])
        }
    }

    fn close(a: [f32; 2], b: [f32; 2]) -> bool {
        (a[0] - b[0]).abs() < 1e-3 && (a[1] - b[1]).abs() < 1e-3
    }

    #[test]
    fn scale_multiplies_the_cropped_size() {
        let mut it = item(ItemSize::Scale([2.0, 0.5]));
        it.crop = Crop {
            left: 10,
            right: 30,
            top: 0,
            bottom: 20,
        };
        let quad = item_quad(&it, [100, 100]).unwrap();
        assert!(close(quad.pos_in_canvas[0], [10.0, 20.0]));
        assert!(close(quad.pos_in_canvas[3], [10.0 + 120.0, 20.0 + 40.0]));
        assert!(close(quad.uv[0], [0.1, 0.0]));
        assert!(close(quad.uv[3], [0.7, 0.8]));
    }

    #[test]
    fn fit_keeps_aspect_and_centres_in_the_box() {
        let bounds = Bounds {
            width: 200.0,
            height: 200.0,
            fit: BoundsFit::Fit,
        };
        let quad = item_quad(&item(ItemSize::Bounds(bounds)), [400, 200]).unwrap();
        assert!(close(quad.pos_in_canvas[0], [10.0, 70.0]));
        assert!(close(quad.pos_in_canvas[3], [210.0, 170.0]));
    }

    #[test]
    fn fill_covers_the_box_and_trims_the_overflow() {
        let bounds = Bounds {
            width: 200.0,
            height: 200.0,
            fit: BoundsFit::Fill,
        };
        let quad = item_quad(&item(ItemSize::Bounds(bounds)), [400, 200]).unwrap();
        assert!(close(quad.pos_in_canvas[3], [210.0, 220.0]));
        assert!(close(quad.uv[0], [0.25, 0.0]));
        assert!(close(quad.uv[3], [0.75, 1.0]));
    }

    #[test]
    fn rotation_turns_clockwise_about_the_centre() {
        let mut it = item(ItemSize::Scale([1.0, 1.0]));
        it.position = [0.0, 0.0];
        it.rotation = 90.0;
        let quad = item_quad(&it, [100, 50]).unwrap();
        // The top-left corner of a 100x50 rectangle centred on (50, 25) moves to the top-right.
        assert!(close(quad.pos_in_canvas[0], [75.0, -25.0]));
    }

    #[test]
    fn display_scale_is_canvas_pixels_per_source_pixel() {
        let bounds = Bounds {
            width: 480.0,
            height: 270.0,
            fit: BoundsFit::Fit,
        };
        let scale = display_scale(&item(ItemSize::Bounds(bounds)), [1280, 720]).unwrap();
        assert!((scale - 0.375).abs() < 1e-4);
    }

    #[test]
    fn fully_cropped_items_are_not_drawn() {
        let mut it = item(ItemSize::Scale([1.0, 1.0]));
        it.crop = Crop {
            left: 60,
            right: 40,
            top: 0,
            bottom: 0,
        };
        assert!(item_quad(&it, [100, 100]).is_none());
    }
}
