//! The preview and program monitors: the compositor's canvas shown at the largest size that
//! fits, with a tally-coloured frame, and in the editable monitor the selected item's outline
//! and dragging with snapping to the canvas edges and centre.

use super::window_paint::{CanvasImage, WindowPaint};
use crate::render::geometry::item_quad;
use crate::scene::{Crop, Item};
use eframe::egui::{self, Color32, Pos2, Rect, Sense, Stroke, Vec2};

pub const PROGRAM_RED: Color32 = Color32::from_rgb(220, 40, 40);
pub const PREVIEW_GREEN: Color32 = Color32::from_rgb(40, 180, 80);

/// Canvas pixels within which a dragged item's edge or centre snaps.
const SNAP_DISTANCE: f32 = 12.0;

/// A monitor on screen: where the canvas was drawn and at what scale.
pub struct Shown {
    pub response: egui::Response,
    pub image: Rect,
    /// Screen points per canvas pixel.
    pub scale: f32,
}

impl Shown {
    pub fn to_canvas(&self, screen: Pos2) -> [f32; 2] {
        [
            (screen.x - self.image.min.x) / self.scale,
            (screen.y - self.image.min.y) / self.scale,
        ]
    }

    fn to_screen(&self, canvas: [f32; 2]) -> Pos2 {
        Pos2::new(
            self.image.min.x + canvas[0] * self.scale,
            self.image.min.y + canvas[1] * self.scale,
        )
    }
}

/// Draws `image` (a canvas of `canvas` pixels) into the space left in `ui`, letterboxed; black
/// until there is one.
pub fn show(
    ui: &mut egui::Ui,
    image: Option<(&WindowPaint, &CanvasImage)>,
    canvas: [u32; 2],
    title: &str,
    tally: Color32,
) -> Shown {
    ui.vertical_centered(|ui| {
        ui.label(egui::RichText::new(title).color(tally).strong());
    });
    let available = ui.available_size();
    let aspect = canvas[0] as f32 / canvas[1].max(1) as f32;
    let size = if available.x / available.y.max(1.0) > aspect {
        Vec2::new(available.y * aspect, available.y)
    } else {
        Vec2::new(available.x, available.x / aspect)
    };
    let (outer, response) = ui.allocate_exact_size(available, Sense::click_and_drag());
    let shown = image;
    let image = Rect::from_center_size(outer.center(), size);
    let painter = ui.painter_at(outer);
    match shown {
        Some((paint, canvas_image)) => {
            painter.add(paint.canvas(image, canvas_image));
        }
        None => {
            painter.rect_filled(image, 0.0, Color32::BLACK);
        }
    }
    painter.rect_stroke(
        image.expand(1.5),
        0.0,
        Stroke::new(3.0, tally),
        egui::StrokeKind::Outside,
    );
    Shown {
        response,
        image,
        scale: size.x / canvas[0].max(1) as f32,
    }
}

/// An item's axis-aligned bounds on the canvas `[x0, y0, x1, y1]` (rotation included).
pub fn item_bounds(item: &Item, source_size: [u32; 2]) -> Option<[f32; 4]> {
    let quad = item_quad(item, source_size)?;
    let mut bounds = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
    for [x, y] in quad.pos_in_canvas {
        bounds = [
            bounds[0].min(x),
            bounds[1].min(y),
            bounds[2].max(x),
            bounds[3].max(y),
        ];
    }
    Some(bounds)
}

/// The topmost visible, unlocked item under canvas point `at`.
pub fn item_at(
    items: &[Item],
    sizes: &dyn Fn(&str) -> Option<[u32; 2]>,
    at: [f32; 2],
) -> Option<usize> {
    items.iter().enumerate().rev().find_map(|(index, item)| {
        let bounds = item_bounds(item, sizes(&item.source)?)?;
        let inside = item.visible
            && !item.locked
            && at[0] >= bounds[0]
            && at[0] <= bounds[2]
            && at[1] >= bounds[1]
            && at[1] <= bounds[3];
        inside.then_some(index)
    })
}

/// Screen points between the top of the selection and the rotate handle above it.
const ROTATE_HANDLE_GAP: f32 = 24.0;

/// Outlines the selected item, with small squares at its corners and the rotate handle (a
/// circle on a stalk above its top edge).
pub fn draw_selection(ui: &egui::Ui, shown: &Shown, bounds: [f32; 4]) {
    let rect = Rect::from_min_max(
        shown.to_screen([bounds[0], bounds[1]]),
        shown.to_screen([bounds[2], bounds[3]]),
    );
    let painter = ui.painter_at(shown.image.expand(ROTATE_HANDLE_GAP + 8.0));
    let stroke = Stroke::new(1.5, Color32::from_rgb(255, 200, 0));
    painter.rect_stroke(rect, 0.0, stroke, egui::StrokeKind::Middle);
    let handle = shown.to_screen(rotate_handle(bounds, shown.scale));
    painter.line_segment([rect.center_top(), handle], stroke);
    painter.circle_stroke(handle, 5.0, stroke);
    for corner in [
        rect.left_top(),
        rect.right_top(),
        rect.left_bottom(),
        rect.right_bottom(),
    ] {
        painter.rect_filled(
            Rect::from_center_size(corner, Vec2::splat(6.0)),
            0.0,
            stroke.color,
        );
    }
}

/// Where the rotate handle of an item with `bounds` is, in canvas pixels, on a monitor showing
/// `scale` screen points per canvas pixel.
pub fn rotate_handle(bounds: [f32; 4], scale: f32) -> [f32; 2] {
    [
        (bounds[0] + bounds[2]) / 2.0,
        bounds[1] - ROTATE_HANDLE_GAP / scale.max(0.01),
    ]
}

/// The rotation after the rotate handle was dragged from `start_pointer` to `pointer` about
/// the item's `centre`: clockwise degrees in (-180, 180], in whole 15-degree steps with `snap`.
pub fn rotated(
    start_rotation: f32,
    centre: [f32; 2],
    start_pointer: [f32; 2],
    pointer: [f32; 2],
    snap: bool,
) -> f32 {
    // The canvas's y axis points down, so a growing angle is clockwise on screen.
    let angle = |at: [f32; 2]| (at[1] - centre[1]).atan2(at[0] - centre[0]).to_degrees();
    let mut rotation = start_rotation + angle(pointer) - angle(start_pointer);
    if snap {
        rotation = (rotation / 15.0).round() * 15.0;
    }
    let wrapped = rotation.rem_euclid(360.0);
    if wrapped > 180.0 {
        wrapped - 360.0
    } else {
        wrapped
    }
}

/// Which corner of `bounds` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) is
/// within `reach` canvas pixels of `at`.
pub fn corner_at(bounds: [f32; 4], at: [f32; 2], reach: f32) -> Option<usize> {
    let corners = [
        [bounds[0], bounds[1]],
        [bounds[2], bounds[1]],
        [bounds[0], bounds[3]],
        [bounds[2], bounds[3]],
    ];
    corners
        .iter()
        .position(|c| (c[0] - at[0]).abs() <= reach && (c[1] - at[1]).abs() <= reach)
}

/// Resizing by dragging `corner` of an item (bounds and position at the drag's start) by
/// `delta`: the item scales uniformly about the opposite corner, never below 8 pixels.
/// Returns the scale factor and the new position.
pub fn resized(
    corner: usize,
    start_bounds: [f32; 4],
    start_position: [f32; 2],
    delta: [f32; 2],
) -> (f32, [f32; 2]) {
    let width = (start_bounds[2] - start_bounds[0]).max(1.0);
    let height = (start_bounds[3] - start_bounds[1]).max(1.0);
    let grow_x = if corner % 2 == 1 { delta[0] } else { -delta[0] };
    let grow_y = if corner >= 2 { delta[1] } else { -delta[1] };
    // The larger relative pull decides, so the corner follows the pointer's main direction.
    let factor = if (grow_x / width).abs() > (grow_y / height).abs() {
        (width + grow_x) / width
    } else {
        (height + grow_y) / height
    };
    let factor = factor.max(8.0 / width.min(height));
    let (new_width, new_height) = (width * factor, height * factor);
    // Keep the opposite corner where it was.
    let shift_x = if corner % 2 == 1 {
        0.0
    } else {
        width - new_width
    };
    let shift_y = if corner >= 2 {
        0.0
    } else {
        height - new_height
    };
    (
        factor,
        [start_position[0] + shift_x, start_position[1] + shift_y],
    )
}

/// Which edge of `bounds` (0 left, 1 right, 2 top, 3 bottom) is within `reach` canvas pixels
/// of `at`, along the edge's length.
pub fn edge_at(bounds: [f32; 4], at: [f32; 2], reach: f32) -> Option<usize> {
    let [x0, y0, x1, y1] = bounds;
    let along_x = at[0] > x0 - reach && at[0] < x1 + reach;
    let along_y = at[1] > y0 - reach && at[1] < y1 + reach;
    [
        (at[0] - x0).abs() <= reach && along_y,
        (at[0] - x1).abs() <= reach && along_y,
        (at[1] - y0).abs() <= reach && along_x,
        (at[1] - y1).abs() <= reach && along_x,
    ]
    .iter()
    .position(|hit| *hit)
}

/// Cropping by alt-dragging `edge` of an unrotated item shown at `scale` (canvas pixels per
/// source pixel) by `delta` canvas pixels: the edge moves with the pointer and the opposite
/// edge stays. At least one source pixel is always left.
pub fn cropped(
    edge: usize,
    start: Crop,
    start_position: [f32; 2],
    delta: [f32; 2],
    scale: [f32; 2],
    source_size: [u32; 2],
) -> (Crop, [f32; 2]) {
    let mut crop = start;
    let mut position = start_position;
    let room_x = source_size[0].saturating_sub(start.left + start.right + 1) as f32;
    let room_y = source_size[1].saturating_sub(start.top + start.bottom + 1) as f32;
    let pixels = |delta: f32, scale: f32| (delta / scale.max(1e-6)).round();
    match edge {
        0 => {
            let change = pixels(delta[0], scale[0]).clamp(-(start.left as f32), room_x);
            crop.left = (start.left as f32 + change) as u32;
            position[0] += change * scale[0];
        }
        1 => {
            let change = (-pixels(delta[0], scale[0])).clamp(-(start.right as f32), room_x);
            crop.right = (start.right as f32 + change) as u32;
        }
        2 => {
            let change = pixels(delta[1], scale[1]).clamp(-(start.top as f32), room_y);
            crop.top = (start.top as f32 + change) as u32;
            position[1] += change * scale[1];
        }
        _ => {
            let change = (-pixels(delta[1], scale[1])).clamp(-(start.bottom as f32), room_y);
            crop.bottom = (start.bottom as f32 + change) as u32;
        }
    }
    (crop, position)
}

/// Where an item moved by `delta` lands: its edges and centre snap to the canvas's edges and
/// centre lines when within a few pixels.
pub fn snapped_position(
    position: [f32; 2],
    delta: [f32; 2],
    bounds: [f32; 4],
    canvas: [u32; 2],
) -> [f32; 2] {
    let mut moved = [position[0] + delta[0], position[1] + delta[1]];
    for axis in 0..2 {
        let low = bounds[axis] + delta[axis];
        let high = bounds[axis + 2] + delta[axis];
        let size = canvas[axis] as f32;
        let centre = (low + high) / 2.0;
        let candidates = [(low, 0.0), (high, size), (centre, size / 2.0)];
        if let Some((edge, target)) = candidates
            .iter()
            .filter(|(edge, target)| (edge - target).abs() < SNAP_DISTANCE)
            .min_by(|a, b| (a.0 - a.1).abs().total_cmp(&(b.0 - b.1).abs()))
        {
            moved[axis] += target - edge;
        }
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alt_dragging_an_edge_crops_that_side() {
        let bounds = [100.0, 100.0, 300.0, 200.0];
        assert_eq!(edge_at(bounds, [101.0, 150.0], 4.0), Some(0));
        assert_eq!(edge_at(bounds, [200.0, 198.0], 4.0), Some(3));
        assert_eq!(edge_at(bounds, [200.0, 150.0], 4.0), None);
        // A 200x100 source at scale 1: the left edge dragged 30 px right crops 30 px and the
        // item's position follows, so the picture does not move.
        let (crop, position) = cropped(
            0,
            Crop::default(),
            [100.0, 100.0],
            [30.0, 0.0],
            [1.0, 1.0],
            [200, 100],
        );
        assert_eq!((crop.left, position), (30, [130.0, 100.0]));
        // At scale 2, 30 canvas px are 15 source px; the right edge keeps the position.
        let (crop, position) = cropped(
            1,
            Crop::default(),
            [100.0, 100.0],
            [-30.0, 0.0],
            [2.0, 2.0],
            [200, 100],
        );
        assert_eq!((crop.right, position), (15, [100.0, 100.0]));
        // Never more than the source has, and never negative.
        let (crop, _) = cropped(
            2,
            Crop::default(),
            [0.0, 0.0],
            [0.0, 5000.0],
            [1.0, 1.0],
            [200, 100],
        );
        assert_eq!(crop.top, 99);
        let (crop, _) = cropped(
            3,
            Crop::default(),
            [0.0, 0.0],
            [0.0, 50.0],
            [1.0, 1.0],
            [200, 100],
        );
        assert_eq!(crop.bottom, 0);
    }

    #[test]
    fn corners_resize_about_the_opposite_corner() {
        let bounds = [100.0, 100.0, 300.0, 200.0];
        assert_eq!(corner_at(bounds, [298.0, 203.0], 6.0), Some(3));
        assert_eq!(corner_at(bounds, [200.0, 150.0], 6.0), None);
        // Bottom-right pulled 100 px right: twice as wide, the top-left stays.
        assert_eq!(
            resized(3, bounds, [100.0, 100.0], [200.0, 10.0]),
            (2.0, [100.0, 100.0])
        );
        // Top-left pulled 100 px left: 1.5 times, so the item's corner moves up-left.
        assert_eq!(
            resized(0, bounds, [100.0, 100.0], [-100.0, 0.0]),
            (1.5, [0.0, 50.0])
        );
        // Never below 8 px.
        let (factor, _) = resized(3, bounds, [100.0, 100.0], [-1000.0, 0.0]);
        assert!((factor - 0.08).abs() < 1e-6);
    }

    #[test]
    fn dragged_items_snap_to_edges_and_centre() {
        let canvas = [1280, 720];
        let snap = |position: [f32; 2], delta: [f32; 2], size: f32| {
            let bounds = [
                position[0],
                position[1],
                position[0] + size,
                position[1] + size,
            ];
            snapped_position(position, delta, bounds, canvas)
        };
        // A 100x100 item at (20, 100) dragged 5 px left: its left edge is 15 px from 0, no snap.
        assert_eq!(snap([20.0, 100.0], [-5.0, 0.0], 100.0), [15.0, 100.0]);
        // Dragged 12 px left it would be 8 px from the edge: it snaps to 0.
        assert_eq!(snap([20.0, 100.0], [-12.0, 0.0], 100.0), [0.0, 100.0]);
        // A centre 10 px from the canvas's centre lines snaps onto them.
        assert_eq!(snap([20.0, 300.0], [0.0, 0.0], 100.0), [20.0, 310.0]);
        assert_eq!(snap([585.0, 100.0], [0.0, 0.0], 100.0), [590.0, 100.0]);
        // The right edge snaps to the canvas's right edge.
        assert_eq!(snap([1175.0, 100.0], [0.0, 0.0], 100.0), [1180.0, 100.0]);
    }

    #[test]
    fn the_rotate_handle_turns_the_item_about_its_centre() {
        let centre = [200.0, 100.0];
        let above = [200.0, 50.0];
        // From straight above to straight right: a quarter turn clockwise.
        let right = [250.0, 100.0];
        assert!((rotated(0.0, centre, above, right, false) - 90.0).abs() < 1e-3);
        // To the left from 30 degrees: 30 - 90 = -60.
        let left = [150.0, 100.0];
        assert!((rotated(30.0, centre, above, left, false) + 60.0).abs() < 1e-3);
        // Past half a turn it wraps into (-180, 180].
        let below_left = [190.0, 150.0];
        let turned = rotated(90.0, centre, above, below_left, false);
        assert!(turned > -180.0 && turned <= 180.0, "{turned}");
        assert!(
            (turned - (90.0 + 180.0 + 11.31 - 360.0)).abs() < 0.01,
            "{turned}"
        );
        // Shift snaps to whole 15-degree steps.
        let a_bit_right = [210.0, 50.0];
        assert_eq!(rotated(0.0, centre, above, a_bit_right, true), 15.0);
        // The handle sits above the top edge's middle, 24 screen points up.
        assert_eq!(
            rotate_handle([100.0, 80.0, 300.0, 120.0], 0.5),
            [200.0, 32.0]
        );
    }
}
