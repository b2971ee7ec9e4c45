//! Editing an item with the mouse in the preview: where its frame and handles are, and what
//! dragging each does to the item (move with snapping, resize about the opposite corner, crop
//! one side, turn about the centre). Pure arithmetic in canvas pixels, so it is tested without
//! a window; rotated items and items sized by a bounding box are handled in the item's own
//! axes.

use crate::scene::geometry::item_quad;
use crate::scene::{Crop, Item, ItemSize};

/// Canvas pixels within which a dragged item's edge or centre snaps.
const SNAP_DISTANCE: f32 = 12.0;

/// Screen points between the top of the selection and the rotate handle above it.
pub const ROTATE_HANDLE_GAP: f32 = 24.0;

/// The rectangle an item is drawn in, turned (and flipped) with the item: the picture's own
/// edges, not the axis-aligned box around them. "Local" points are measured from the corner
/// showing the picture's top-left along the picture's own axes, so its left edge is where
/// `crop.left` cuts whatever the rotation or a negative (mirroring) scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ItemFrame {
    pub centre: [f32; 2],
    /// Width and height along the picture's axes, in canvas pixels.
    pub size: [f32; 2],
    /// Unit vectors on the canvas along the picture's rows (left to right) and columns (top
    /// to bottom).
    across: [f32; 2],
    down: [f32; 2],
}

impl ItemFrame {
    /// The frame of `item` showing a source of `source_size`, or `None` when nothing of it is
    /// drawn.
    pub fn of(item: &Item, source_size: [u32; 2]) -> Option<Self> {
        let [top_left, top_right, bottom_left, bottom_right] =
            item_quad(item, source_size)?.pos_in_canvas;
        let size = [
            distance(top_left, top_right),
            distance(top_left, bottom_left),
        ];
        if size[0] <= 0.0 || size[1] <= 0.0 {
            return None;
        }
        let unit = |to: [f32; 2], length: f32| {
            [
                (to[0] - top_left[0]) / length,
                (to[1] - top_left[1]) / length,
            ]
        };
        Some(Self {
            centre: [
                (top_left[0] + bottom_right[0]) / 2.0,
                (top_left[1] + bottom_right[1]) / 2.0,
            ],
            size,
            across: unit(top_right, size[0]),
            down: unit(bottom_left, size[1]),
        })
    }

    /// A canvas point in the picture's axes, from its top-left corner.
    pub fn to_local(self, canvas: [f32; 2]) -> [f32; 2] {
        let [dx, dy] = self.unturned([canvas[0] - self.centre[0], canvas[1] - self.centre[1]]);
        [dx + self.size[0] / 2.0, dy + self.size[1] / 2.0]
    }

    /// A local point on the canvas.
    pub fn to_canvas(self, local: [f32; 2]) -> [f32; 2] {
        let [dx, dy] = self.turned([local[0] - self.size[0] / 2.0, local[1] - self.size[1] / 2.0]);
        [self.centre[0] + dx, self.centre[1] + dy]
    }

    /// A canvas direction in the picture's axes.
    fn unturned(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        [
            x * self.across[0] + y * self.across[1],
            x * self.down[0] + y * self.down[1],
        ]
    }

    /// A direction along the picture's axes on the canvas.
    fn turned(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        [
            x * self.across[0] + y * self.down[0],
            x * self.across[1] + y * self.down[1],
        ]
    }

    /// The corners on the canvas: top-left, top-right, bottom-left, bottom-right of the
    /// picture, wherever they are after turning.
    pub fn corners(&self) -> [[f32; 2]; 4] {
        let [w, h] = self.size;
        [[0.0, 0.0], [w, 0.0], [0.0, h], [w, h]].map(|local| self.to_canvas(local))
    }

    /// The axis-aligned box around the turned picture `[x0, y0, x1, y1]`.
    pub fn bounds(&self) -> [f32; 4] {
        self.corners().iter().fold(
            [f32::MAX, f32::MAX, f32::MIN, f32::MIN],
            |[x0, y0, x1, y1], [x, y]| [x0.min(*x), y0.min(*y), x1.max(*x), y1.max(*y)],
        )
    }

    pub fn contains(&self, canvas: [f32; 2]) -> bool {
        let [x, y] = self.to_local(canvas);
        (0.0..=self.size[0]).contains(&x) && (0.0..=self.size[1]).contains(&y)
    }

    /// Which corner (in [`ItemFrame::corners`] order) is within `reach` canvas pixels of `at`.
    pub fn corner_at(&self, at: [f32; 2], reach: f32) -> Option<usize> {
        self.corners()
            .iter()
            .position(|corner| distance(*corner, at) <= reach)
    }

    /// Which edge of the picture (0 left, 1 right, 2 top, 3 bottom, in its own axes) is
    /// within `reach` canvas pixels of `at`, along the edge's length.
    pub fn edge_at(&self, at: [f32; 2], reach: f32) -> Option<usize> {
        let [x, y] = self.to_local(at);
        let [w, h] = self.size;
        let along_x = x > -reach && x < w + reach;
        let along_y = y > -reach && y < h + reach;
        [
            x.abs() <= reach && along_y,
            (x - w).abs() <= reach && along_y,
            y.abs() <= reach && along_x,
            (y - h).abs() <= reach && along_x,
        ]
        .iter()
        .position(|hit| *hit)
    }

    /// The middle of the picture's top edge, where the rotate handle's stalk starts.
    pub fn top_middle(&self) -> [f32; 2] {
        self.to_canvas([self.size[0] / 2.0, 0.0])
    }

    /// Where the rotate handle is: above the middle of the picture's top edge, turned with it,
    /// a fixed distance on a monitor showing `scale` screen points per canvas pixel.
    pub fn rotate_handle(&self, scale: f32) -> [f32; 2] {
        self.to_canvas([self.size[0] / 2.0, -ROTATE_HANDLE_GAP / scale.max(0.01)])
    }
}

fn distance(a: [f32; 2], b: [f32; 2]) -> f32 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// The topmost visible, unlocked item whose picture covers canvas point `at`.
pub fn item_at(
    items: &[Item],
    sizes: &dyn Fn(&str) -> Option<[u32; 2]>,
    at: [f32; 2],
) -> Option<usize> {
    items.iter().enumerate().rev().find_map(|(index, item)| {
        let frame = ItemFrame::of(item, sizes(&item.source)?)?;
        (item.visible && !item.locked && frame.contains(at)).then_some(index)
    })
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

/// Resizing by dragging `corner` of an item (its frame and position at the drag's start) by
/// `delta` canvas pixels: the item scales uniformly about the opposite corner, which stays
/// where it is, and never below 8 pixels. Returns the scale factor and the new position.
pub fn resized(
    corner: usize,
    start: &ItemFrame,
    start_position: [f32; 2],
    delta: [f32; 2],
) -> (f32, [f32; 2]) {
    let [width, height] = start.size.map(|side| side.max(1.0));
    let [along_x, along_y] = start.unturned(delta);
    let grow_x = if corner % 2 == 1 { along_x } else { -along_x };
    let grow_y = if corner >= 2 { along_y } else { -along_y };
    // The larger relative pull decides, so the corner follows the pointer's main direction.
    let factor = if (grow_x / width).abs() > (grow_y / height).abs() {
        (width + grow_x) / width
    } else {
        (height + grow_y) / height
    };
    let factor = factor.max(8.0 / width.min(height));
    // Scaling everything about the fixed corner scales the item's position about it too,
    // whatever the rotation or the padding inside a bounding box.
    let fixed = start.corners()[3 - corner];
    let position = [0, 1].map(|axis| fixed[axis] + factor * (start_position[axis] - fixed[axis]));
    (factor, position)
}

/// The item after alt-dragging `edge` of its picture (0 left, 1 right, 2 top, 3 bottom, in its
/// own axes) by `delta` canvas pixels: that side is cropped or uncropped by whole source
/// pixels, and nothing else moves on the canvas. The rest of the picture keeps its place and
/// size, whether the item is turned and whether it is sized by scale or by a bounding box (the
/// box shrinks with the picture so the picture is not rescaled). At least one source pixel
/// stays visible. `None` when the item is not drawn.
pub fn cropped(start: &Item, source_size: [u32; 2], edge: usize, delta: [f32; 2]) -> Option<Item> {
    let quad = item_quad(start, source_size)?;
    let frame = ItemFrame::of(start, source_size)?;
    // Source pixels visible along each of the item's axes, and canvas pixels per source pixel.
    let visible = [
        (quad.uv[1][0] - quad.uv[0][0]).abs() * source_size[0] as f32,
        (quad.uv[2][1] - quad.uv[0][1]).abs() * source_size[1] as f32,
    ];
    let density = [0, 1].map(|axis| frame.size[axis] / visible[axis].max(1e-6));
    let axis = if edge < 2 { 0 } else { 1 };
    let along = frame.unturned(delta)[axis];
    // Dragging the far edge towards the near one crops it, so its pull counts the other way.
    let inward = if edge % 2 == 0 { along } else { -along };
    let Crop {
        left,
        right,
        top,
        bottom,
    } = start.crop;
    let already = [left, right, top, bottom][edge] as f32;
    let room = (visible[axis] - 1.0).floor().max(0.0);
    let change = (inward / density[axis].max(1e-6))
        .round()
        .clamp(-already, room);
    let mut item = start.clone();
    let side = match edge {
        0 => &mut item.crop.left,
        1 => &mut item.crop.right,
        2 => &mut item.crop.top,
        _ => &mut item.crop.bottom,
    };
    *side = (already + change) as u32;

    // What is left of the picture, in the start frame's local coordinates.
    let cut = change * density[axis];
    let mut kept = [0.0, 0.0, frame.size[0], frame.size[1]];
    match edge {
        0 => kept[0] += cut,
        1 => kept[2] -= cut,
        2 => kept[1] += cut,
        _ => kept[3] -= cut,
    }
    let kept_size = [kept[2] - kept[0], kept[3] - kept[1]];
    if let ItemSize::Bounds(bounds) = &mut item.size {
        // The same density in a box as much smaller as the picture: a fitted picture's
        // padding and a filled picture's trimmed overflow stay as they were.
        if axis == 0 {
            bounds.width -= cut;
        } else {
            bounds.height -= cut;
        }
    }
    // The item turns about the centre of what it draws, so place that centre where the kept
    // part's centre already is. Before turning, the drawn rectangle starts at `position` plus
    // the padding of a fitted box and runs the way the scale's sign says (mirrored leftwards
    // or upwards when negative).
    let direction = match start.size {
        ItemSize::Scale(scale) => scale.map(f32::signum),
        ItemSize::Bounds(_) => [1.0, 1.0],
    };
    let drawn_from = |centre: [f32; 2], size: [f32; 2]| {
        [0, 1].map(|axis| centre[axis] - direction[axis] * size[axis] / 2.0)
    };
    let start_from = drawn_from(frame.centre, frame.size);
    let padding = [0, 1].map(|axis| start_from[axis] - start.position[axis]);
    let kept_centre = frame.to_canvas([(kept[0] + kept[2]) / 2.0, (kept[1] + kept[3]) / 2.0]);
    let kept_from = drawn_from(kept_centre, kept_size);
    item.position = [0, 1].map(|axis| kept_from[axis] - padding[axis]);
    Some(item)
}

/// Where an item moved by `delta` lands: its edges and centre snap to the canvas's edges and
/// centre lines when within a few pixels. `bounds` is the axis-aligned box around the item.
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
    use crate::scene::{Bounds, BoundsFit};

    fn item_at_scale(position: [f32; 2], scale: f32, rotation: f32) -> Item {
        Item {
            size: ItemSize::Scale([scale, scale]),
            rotation,
            ..Item::new("s", position)
        }
    }

    fn boxed(fit: BoundsFit, rotation: f32) -> Item {
        Item {
            size: ItemSize::Bounds(Bounds {
                width: 300.0,
                height: 300.0,
                fit,
            }),
            rotation,
            ..Item::new("s", [100.0, 50.0])
        }
    }

    fn close(a: [f32; 2], b: [f32; 2], tolerance: f32) -> bool {
        (a[0] - b[0]).abs() < tolerance && (a[1] - b[1]).abs() < tolerance
    }

    #[test]
    fn the_frame_follows_the_turned_picture() {
        // A 200x100 source at (100, 100), a quarter turn: it stands 100 wide and 200 tall
        // about the same centre (200, 150).
        let frame = ItemFrame::of(&item_at_scale([100.0, 100.0], 1.0, 90.0), [200, 100]).unwrap();
        assert!(close(frame.centre, [200.0, 150.0], 1e-3));
        assert!(close(frame.size, [200.0, 100.0], 1e-3));
        let bounds = frame.bounds();
        assert!(
            close([bounds[0], bounds[1]], [150.0, 50.0], 1e-3),
            "{bounds:?}"
        );
        // The picture's top-left corner is now on the right, at the top.
        assert!(close(frame.corners()[0], [250.0, 50.0], 1e-3));
        assert!(close(frame.to_local([250.0, 50.0]), [0.0, 0.0], 1e-3));
        // Its left edge is the top of what is seen; the handle is out to the right.
        assert_eq!(frame.edge_at([200.0, 52.0], 4.0), Some(0));
        assert_eq!(frame.edge_at([200.0, 248.0], 4.0), Some(1));
        assert!(close(frame.rotate_handle(1.0), [274.0, 150.0], 1e-3));
        // At 45 degrees the corners of the box around it are outside the picture.
        let frame = ItemFrame::of(&item_at_scale([100.0, 100.0], 1.0, 45.0), [200, 100]).unwrap();
        let bounds = frame.bounds();
        assert!(!frame.contains([bounds[0] + 2.0, bounds[1] + 2.0]));
        assert!(frame.contains(frame.centre));
    }

    #[test]
    fn the_topmost_item_under_the_pointer_is_picked() {
        let sizes = |_: &str| Some([200, 100]);
        let below = item_at_scale([0.0, 0.0], 1.0, 0.0);
        let turned = item_at_scale([100.0, 100.0], 1.0, 45.0);
        let items = [below, turned];
        assert_eq!(item_at(&items, &sizes, [200.0, 150.0]), Some(1));
        // Inside the box around the turned item but outside its picture: the one below.
        let frame = ItemFrame::of(&items[1], [200, 100]).unwrap();
        let corner = [frame.bounds()[0] + 3.0, frame.bounds()[1] + 3.0];
        assert_eq!(item_at(&items, &sizes, corner), Some(0));
        // Where both are, a locked item lets the pointer through to the one below.
        assert_eq!(item_at(&items, &sizes, [180.0, 90.0]), Some(1));
        let mut locked = items.clone();
        locked[1].locked = true;
        assert_eq!(item_at(&locked, &sizes, [180.0, 90.0]), Some(0));
    }

    #[test]
    fn alt_dragging_an_edge_crops_that_side() {
        let start = item_at_scale([100.0, 100.0], 1.0, 0.0);
        let frame = ItemFrame::of(&start, [200, 100]).unwrap();
        assert_eq!(frame.edge_at([101.0, 150.0], 4.0), Some(0));
        assert_eq!(frame.edge_at([200.0, 198.0], 4.0), Some(3));
        assert_eq!(frame.edge_at([200.0, 150.0], 4.0), None);
        // The left edge dragged 30 px right crops 30 px and the item's position follows, so the
        // picture does not move.
        let item = cropped(&start, [200, 100], 0, [30.0, 0.0]).unwrap();
        assert_eq!((item.crop.left, item.position), (30, [130.0, 100.0]));
        // At scale 2, 30 canvas px are 15 source px; the right edge keeps the position.
        let start = item_at_scale([100.0, 100.0], 2.0, 0.0);
        let item = cropped(&start, [200, 100], 1, [-30.0, 0.0]).unwrap();
        assert_eq!((item.crop.right, item.position), (15, [100.0, 100.0]));
        // Never more than the source has, and never negative.
        let item = cropped(&start, [200, 100], 2, [0.0, 5000.0]).unwrap();
        assert_eq!(item.crop.top, 99);
        let item = cropped(&start, [200, 100], 3, [0.0, 50.0]).unwrap();
        assert_eq!(item.crop.bottom, 0);
    }

    /// Where source point `uv` was drawn on the canvas by `quad`.
    fn canvas_of(quad: &crate::render::Quad, uv: [f32; 2]) -> [f32; 2] {
        let [p0, p1, p2, _] = quad.pos_in_canvas;
        let s = (uv[0] - quad.uv[0][0]) / (quad.uv[1][0] - quad.uv[0][0]);
        let t = (uv[1] - quad.uv[0][1]) / (quad.uv[2][1] - quad.uv[0][1]);
        [0, 1].map(|axis| p0[axis] + s * (p1[axis] - p0[axis]) + t * (p2[axis] - p0[axis]))
    }

    #[test]
    fn cropping_turned_and_boxed_items_leaves_the_rest_of_the_picture_in_place() {
        let source = [400, 200];
        let starts = [
            item_at_scale([100.0, 100.0], 1.5, 0.0),
            item_at_scale([100.0, 100.0], 1.5, 30.0),
            item_at_scale([100.0, 100.0], 0.5, -120.0),
            boxed(BoundsFit::Fit, 0.0),
            boxed(BoundsFit::Fit, 75.0),
            boxed(BoundsFit::Fill, 0.0),
            boxed(BoundsFit::Fill, 200.0),
            boxed(BoundsFit::Stretch, 15.0),
            // Mirrored: a negative scale flips the picture, so its left edge is on the right.
            Item {
                size: ItemSize::Scale([-1.0, 1.0]),
                ..item_at_scale([400.0, 100.0], 1.0, 0.0)
            },
            Item {
                size: ItemSize::Scale([0.75, -0.5]),
                ..item_at_scale([100.0, 300.0], 1.0, 40.0)
            },
        ];
        for start in starts {
            let before = item_quad(&start, source).unwrap();
            let frame = ItemFrame::of(&start, source).unwrap();
            for edge in 0..4 {
                // Pull each edge 40 canvas px inwards along the picture's own axis.
                let inwards = [[40.0, 0.0], [-40.0, 0.0], [0.0, 40.0], [0.0, -40.0]][edge];
                let delta = frame.turned(inwards);
                let item = cropped(&start, source, edge, delta).unwrap();
                let after = item_quad(&item, source).unwrap();
                let case = format!("{:?} edge {edge}: {:?}", start.size, item.crop);
                let side = [
                    item.crop.left,
                    item.crop.right,
                    item.crop.top,
                    item.crop.bottom,
                ];
                assert!(side[edge] > 0, "{case}");
                // Every corner of what is left shows the same source point where it was.
                for corner in 0..4 {
                    let was = canvas_of(&before, after.uv[corner]);
                    let is = after.pos_in_canvas[corner];
                    assert!(
                        close(was, is, 0.05),
                        "{case} corner {corner}: {was:?} {is:?}"
                    );
                }
                // And the cut edge moved inwards by about the pull.
                let moved = ItemFrame::of(&item, source).unwrap();
                let shrunk = [frame.size[0] - moved.size[0], frame.size[1] - moved.size[1]];
                let pulled = if edge < 2 { shrunk[0] } else { shrunk[1] };
                assert!((pulled - 40.0).abs() <= 1.5, "{case}: {pulled}");
                // Dragging back out uncrops it again.
                let back = cropped(&item, source, edge, [-delta[0], -delta[1]]).unwrap();
                assert_eq!(back.crop, start.crop, "{case}");
            }
        }
    }

    #[test]
    fn corners_resize_about_the_opposite_corner() {
        let start = item_at_scale([100.0, 100.0], 1.0, 0.0);
        let frame = ItemFrame::of(&start, [200, 100]).unwrap();
        assert_eq!(frame.corner_at([298.0, 203.0], 6.0), Some(3));
        assert_eq!(frame.corner_at([200.0, 150.0], 6.0), None);
        // Bottom-right pulled 200 px right: twice as wide, the top-left stays.
        assert_eq!(
            resized(3, &frame, [100.0, 100.0], [200.0, 10.0]),
            (2.0, [100.0, 100.0])
        );
        // Top-left pulled 100 px left: 1.5 times, so the item's corner moves up-left.
        assert_eq!(
            resized(0, &frame, [100.0, 100.0], [-100.0, 0.0]),
            (1.5, [0.0, 50.0])
        );
        // Never below 8 px.
        let (factor, _) = resized(3, &frame, [100.0, 100.0], [-1000.0, 0.0]);
        assert!((factor - 0.08).abs() < 1e-6);
    }

    #[test]
    fn resizing_turned_and_boxed_items_keeps_the_opposite_corner() {
        let source = [400, 200];
        for start in [
            item_at_scale([100.0, 100.0], 1.0, 30.0),
            boxed(BoundsFit::Fit, 0.0),
            boxed(BoundsFit::Fit, -60.0),
            Item {
                size: ItemSize::Scale([-1.0, 1.0]),
                ..item_at_scale([400.0, 100.0], 1.0, 20.0)
            },
        ] {
            let frame = ItemFrame::of(&start, source).unwrap();
            for corner in 0..4 {
                // Pull the corner 50 px outwards along the picture's width.
                let outwards = if corner % 2 == 1 { 50.0 } else { -50.0 };
                let delta = frame.turned([outwards, 0.0]);
                let (factor, position) = resized(corner, &frame, start.position, delta);
                let expected = (frame.size[0] + 50.0) / frame.size[0];
                assert!((factor - expected).abs() < 1e-4, "{factor} {expected}");
                let mut item = start.clone();
                item.position = position;
                item.size = match start.size {
                    ItemSize::Scale([x, y]) => ItemSize::Scale([x * factor, y * factor]),
                    ItemSize::Bounds(mut bounds) => {
                        bounds.width *= factor;
                        bounds.height *= factor;
                        ItemSize::Bounds(bounds)
                    }
                };
                let after = ItemFrame::of(&item, source).unwrap();
                let fixed = 3 - corner;
                assert!(
                    close(after.corners()[fixed], frame.corners()[fixed], 0.01),
                    "{:?} corner {corner}",
                    start.size
                );
            }
        }
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
        let frame = ItemFrame::of(&item_at_scale([100.0, 80.0], 1.0, 0.0), [200, 40]).unwrap();
        assert!(close(frame.rotate_handle(0.5), [200.0, 32.0], 1e-3));
    }
}
