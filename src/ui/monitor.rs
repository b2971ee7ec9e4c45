//! The preview and program monitors: the compositor's canvas shown at the largest size that
//! fits, with a tally-coloured frame, and in the editable monitor the selected item's outline
//! and handles (what dragging them does is `handles`).

use super::handles::{ItemFrame, ROTATE_HANDLE_GAP};
use super::window_paint::{CanvasImage, WindowPaint};
use eframe::egui::{self, Color32, Pos2, Rect, Sense, Stroke, Vec2};

pub const PROGRAM_RED: Color32 = Color32::from_rgb(220, 40, 40);
pub const PREVIEW_GREEN: Color32 = Color32::from_rgb(40, 180, 80);

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

/// Outlines the selected item along its picture's own (possibly turned) edges, with small
/// squares at its corners and the rotate handle (a circle on a stalk above its top edge).
pub fn draw_selection(ui: &egui::Ui, shown: &Shown, frame: &ItemFrame) {
    let painter = ui.painter_at(shown.image.expand(ROTATE_HANDLE_GAP + 8.0));
    let stroke = Stroke::new(1.5, Color32::from_rgb(255, 200, 0));
    let [top_left, top_right, bottom_left, bottom_right] =
        frame.corners().map(|corner| shown.to_screen(corner));
    painter.add(egui::Shape::closed_line(
        vec![top_left, top_right, bottom_right, bottom_left],
        stroke,
    ));
    let handle = shown.to_screen(frame.rotate_handle(shown.scale));
    painter.line_segment([shown.to_screen(frame.top_middle()), handle], stroke);
    painter.circle_stroke(handle, 5.0, stroke);
    for corner in [top_left, top_right, bottom_left, bottom_right] {
        painter.rect_filled(
            Rect::from_center_size(corner, Vec2::splat(6.0)),
            0.0,
            stroke.color,
        );
    }
}
