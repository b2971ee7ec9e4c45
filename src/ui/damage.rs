//! Which parts of the window a redraw has to draw again. Where the window's frame lives on
//! between redraws (drawn into a texture of our own for `x11_shm`), a pass whose shapes are
//! those of the last pass but for a few (the monitors, which change every frame, a level meter,
//! a figure in Stats) redraws only their rectangles, and only those are read back and passed to
//! the X server. On a software rasteriser every pixel drawn costs CPU time the engine needs.

use eframe::egui::{self, epaint::ClippedShape, Color32, Rect, Shape};

/// A rectangle of the window in physical pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl PixelRect {
    fn right(&self) -> u32 {
        self.x + self.width
    }

    fn bottom(&self) -> u32 {
        self.y + self.height
    }

    fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    fn overlaps(&self, other: &PixelRect) -> bool {
        self.x < other.right()
            && other.x < self.right()
            && self.y < other.bottom()
            && other.y < self.bottom()
    }

    fn union(&self, other: &PixelRect) -> PixelRect {
        let (x, y) = (self.x.min(other.x), self.y.min(other.y));
        PixelRect {
            x,
            y,
            width: self.right().max(other.right()) - x,
            height: self.bottom().max(other.bottom()) - y,
        }
    }

    /// The same rectangle in points, exact, so that clipping to it scissors these pixels.
    fn in_points(&self, pixels_per_point: f32) -> Rect {
        Rect::from_min_max(
            egui::pos2(self.x as f32, self.y as f32),
            egui::pos2(self.right() as f32, self.bottom() as f32),
        ) / pixels_per_point
    }
}

/// What a pass redraws.
#[derive(Debug, PartialEq)]
pub enum Damage {
    /// The whole window.
    Everything,
    /// These rectangles, which do not overlap; none when nothing changed.
    Rects(Vec<PixelRect>),
}

/// Past this share of the window a full redraw costs about as much as the rectangles.
const MOST_OF_THE_WINDOW: f64 = 0.6;

/// How far a shape's pixels may reach past its bounding rectangle: egui's anti-aliasing
/// feathers edges by a pixel, and rounding to pixels adds up to one more.
const FEATHER_PIXELS: f32 = 2.0;

/// Remembers the last pass's shapes to tell what the next one changed.
#[derive(Default)]
pub struct DamageTracker {
    previous: Vec<ClippedShape>,
    previous_view: Option<([u32; 2], f32)>,
}

impl DamageTracker {
    /// What has to be redrawn to show `shapes` in a window of `size` pixels, given that the
    /// last pass's shapes are shown there now. `everything` asks for the whole window (its
    /// pixels are gone, or a texture changed under unchanged shapes).
    pub fn damage(
        &mut self,
        shapes: &[ClippedShape],
        size: [u32; 2],
        pixels_per_point: f32,
        everything: bool,
    ) -> Damage {
        let view = (size, pixels_per_point);
        let same_view = self.previous_view.replace(view) == Some(view);
        let previous = std::mem::replace(&mut self.previous, shapes.to_vec());
        // Shapes are matched by their place in the list: one shape more or less (a hover, a
        // new row) shifts everything after it, so that is redrawn whole.
        if everything || !same_view || previous.len() != shapes.len() {
            return Damage::Everything;
        }
        let mut rects = Vec::new();
        for (now, before) in shapes.iter().zip(&previous) {
            // A paint callback's pixels (the monitors) change without its shape changing.
            if matches!(now.shape, Shape::Callback(_)) || now != before {
                rects.extend(pixel_bounds(now, size, pixels_per_point));
                rects.extend(pixel_bounds(before, size, pixels_per_point));
            }
        }
        let rects = merge_overlapping(rects);
        let damaged: u64 = rects.iter().map(PixelRect::area).sum();
        let window = u64::from(size[0]) * u64::from(size[1]);
        if damaged as f64 > MOST_OF_THE_WINDOW * window as f64 {
            Damage::Everything
        } else {
            Damage::Rects(rects)
        }
    }
}

/// The shapes that draw `rects` of a window whose other pixels are already right: for each
/// rectangle, the background and then every shape that reaches into it, clipped to it.
pub fn shapes_within(
    shapes: &[ClippedShape],
    rects: &[PixelRect],
    pixels_per_point: f32,
    background: Color32,
) -> Vec<ClippedShape> {
    let margin = FEATHER_PIXELS / pixels_per_point;
    let mut within = Vec::new();
    for rect in rects {
        let clip_rect = rect.in_points(pixels_per_point);
        // Larger than the rectangle, so its own feathered edges fall outside the clip.
        within.push(ClippedShape::new(
            clip_rect,
            Shape::rect_filled(clip_rect.expand(2.0 * margin), 0.0, background),
        ));
        for clipped in shapes {
            let clip = clipped.clip_rect.intersect(clip_rect);
            let reaches = visual_bounds(clipped).expand(margin).intersects(clip);
            if clip.is_positive() && reaches {
                within.push(ClippedShape {
                    clip_rect: clip,
                    ..clipped.clone()
                });
            }
        }
    }
    within
}

/// The pixels `clipped` may touch, within the window; `None` when it touches none.
fn pixel_bounds(
    clipped: &ClippedShape,
    size: [u32; 2],
    pixels_per_point: f32,
) -> Option<PixelRect> {
    let bounds = visual_bounds(clipped).intersect(clipped.clip_rect);
    if !bounds.is_positive() {
        return None;
    }
    let bounds = bounds * pixels_per_point;
    let clamp = |value: f32, limit: u32| value.clamp(0.0, limit as f32) as u32;
    let (left, right) = (
        clamp((bounds.min.x - FEATHER_PIXELS).floor(), size[0]),
        clamp((bounds.max.x + FEATHER_PIXELS).ceil(), size[0]),
    );
    let (top, bottom) = (
        clamp((bounds.min.y - FEATHER_PIXELS).floor(), size[1]),
        clamp((bounds.max.y + FEATHER_PIXELS).ceil(), size[1]),
    );
    (right > left && bottom > top).then_some(PixelRect {
        x: left,
        y: top,
        width: right - left,
        height: bottom - top,
    })
}

/// Where `clipped` draws, in points, before clipping.
fn visual_bounds(clipped: &ClippedShape) -> Rect {
    clipped.transform_after_tessellation * clipped.shape.visual_bounding_rect()
}

/// Rectangles covering the same pixels as `rects` and no two of which overlap: overlapping
/// ones are replaced by their union until none overlap.
fn merge_overlapping(mut rects: Vec<PixelRect>) -> Vec<PixelRect> {
    let mut merged: Vec<PixelRect> = Vec::with_capacity(rects.len());
    while let Some(mut rect) = rects.pop() {
        // A union may overlap rectangles already merged: take them back in until it does not.
        while let Some(index) = merged.iter().position(|other| other.overlaps(&rect)) {
            rect = rect.union(&merged.swap_remove(index));
        }
        merged.push(rect);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use eframe::egui::{pos2, vec2, Stroke};
    use eframe::egui_wgpu;

    const SIZE: [u32; 2] = [400, 300];

    fn clipped(shape: Shape) -> ClippedShape {
        ClippedShape::new(
            Rect::from_min_size(pos2(0.0, 0.0), vec2(400.0, 300.0)),
            shape,
        )
    }

    fn square(x: f32, y: f32, color: Color32) -> ClippedShape {
        clipped(Shape::rect_filled(
            Rect::from_min_size(pos2(x, y), vec2(10.0, 10.0)),
            0.0,
            color,
        ))
    }

    fn rect(x: u32, y: u32, width: u32, height: u32) -> PixelRect {
        PixelRect {
            x,
            y,
            width,
            height,
        }
    }

    #[test]
    fn the_first_pass_and_a_changed_view_redraw_everything() {
        let mut tracker = DamageTracker::default();
        let shapes = vec![square(10.0, 10.0, Color32::RED)];
        assert_eq!(
            tracker.damage(&shapes, SIZE, 1.0, false),
            Damage::Everything
        );
        assert_eq!(
            tracker.damage(&shapes, SIZE, 1.0, false),
            Damage::Rects(vec![])
        );
        assert_eq!(
            tracker.damage(&shapes, [400, 301], 1.0, false),
            Damage::Everything
        );
        assert_eq!(
            tracker.damage(&shapes, [400, 301], 2.0, false),
            Damage::Everything
        );
        assert_eq!(
            tracker.damage(&shapes, [400, 301], 2.0, true),
            Damage::Everything
        );
    }

    #[test]
    fn a_changed_shape_redraws_where_it_was_and_where_it_is() {
        let mut tracker = DamageTracker::default();
        let still = square(200.0, 200.0, Color32::GRAY);
        tracker.damage(
            &[square(10.0, 10.0, Color32::RED), still.clone()],
            SIZE,
            1.0,
            false,
        );
        let damage = tracker.damage(
            &[square(50.0, 10.0, Color32::RED), still.clone()],
            SIZE,
            1.0,
            false,
        );
        // Each square with its feathering margin; the two do not overlap.
        let mut expected = vec![rect(8, 8, 14, 14), rect(48, 8, 14, 14)];
        let Damage::Rects(mut rects) = damage else {
            panic!("{damage:?}");
        };
        rects.sort_by_key(|rect| rect.x);
        expected.sort_by_key(|rect| rect.x);
        assert_eq!(rects, expected);
        // A shape added: everything after it would shift.
        let more = [square(50.0, 10.0, Color32::RED), still.clone(), still];
        assert_eq!(tracker.damage(&more, SIZE, 1.0, false), Damage::Everything);
    }

    #[test]
    fn a_paint_callback_is_always_redrawn_and_overlaps_merge() {
        struct Nothing;
        impl egui_wgpu::CallbackTrait for Nothing {
            fn paint(
                &self,
                _info: egui::PaintCallbackInfo,
                _pass: &mut eframe::wgpu::RenderPass<'static>,
                _resources: &egui_wgpu::CallbackResources,
            ) {
            }
        }
        let monitor = Rect::from_min_size(pos2(100.0, 50.0), vec2(80.0, 40.0));
        let shapes = |stroke: Color32| {
            vec![
                clipped(egui_wgpu::Callback::new_paint_callback(monitor, Nothing).into()),
                clipped(Shape::rect_stroke(
                    monitor,
                    0.0,
                    Stroke::new(1.0, stroke),
                    egui::StrokeKind::Outside,
                )),
            ]
        };
        let mut tracker = DamageTracker::default();
        tracker.damage(&shapes(Color32::WHITE), SIZE, 2.0, false);
        // In pixels at 2 per point: 200..360 x 100..180, with the margin.
        assert_eq!(
            tracker.damage(&shapes(Color32::WHITE), SIZE, 2.0, false),
            Damage::Rects(vec![rect(198, 98, 164, 84)])
        );
        // The outline changed too: its rectangle takes in the monitor's.
        let Damage::Rects(rects) = tracker.damage(&shapes(Color32::RED), SIZE, 2.0, false) else {
            panic!("expected rectangles");
        };
        assert_eq!(rects.len(), 1);
        assert!(rects[0].x < 198 && rects[0].right() > 362, "{rects:?}");
    }

    #[test]
    fn most_of_the_window_changed_is_redrawn_whole() {
        let big = |color| {
            clipped(Shape::rect_filled(
                Rect::from_min_size(pos2(0.0, 0.0), vec2(390.0, 250.0)),
                0.0,
                color,
            ))
        };
        let mut tracker = DamageTracker::default();
        tracker.damage(&[big(Color32::RED)], SIZE, 1.0, false);
        assert_eq!(
            tracker.damage(&[big(Color32::BLUE)], SIZE, 1.0, false),
            Damage::Everything
        );
    }

    #[test]
    fn merged_rectangles_do_not_overlap_and_cover_every_input() {
        let inputs = vec![
            rect(0, 0, 10, 10),
            rect(5, 5, 10, 10),
            rect(30, 0, 5, 5),
            rect(14, 14, 20, 2),
            rect(100, 100, 1, 1),
        ];
        let merged = merge_overlapping(inputs.clone());
        for (i, a) in merged.iter().enumerate() {
            for b in &merged[i + 1..] {
                assert!(!a.overlaps(b), "{a:?} overlaps {b:?}");
            }
        }
        for input in &inputs {
            assert!(
                merged.iter().any(|m| m.union(input) == *m),
                "{input:?} is not covered by {merged:?}"
            );
        }
        assert_eq!(merged.len(), 2, "{merged:?}");
    }
}
