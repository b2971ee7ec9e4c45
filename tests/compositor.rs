//! Golden-image tests of the GPU compositor (on lavapipe where there is no GPU): one scene per
//! transform, rendered with `render_snapshot` and compared with PNGs in tests/golden. Each test
//! also checks a few pixels against values worked out by hand, so a wrong golden cannot hide
//! a wrong compositor. `UPDATE_GOLDEN=1 cargo test --test compositor` rewrites the PNGs.

mod common;

use tally::base::VideoFrame;
use tally::engine::render_snapshot;
use tally::scene;

/// Per channel, every pixel may differ from the golden image by this much (0-255): enough for
/// a different GPU's bilinear rounding, far too little for a misplaced or mis-blended layer.
const TOLERANCE: u8 = 3;

fn render(toml: &str, frame: u64) -> VideoFrame {
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_scene(dir.path(), "scene.toml", toml);
    let collection = scene::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    render_snapshot(&collection, frame).unwrap_or_else(|e| panic!("{e}"))
}

fn pixel(frame: &VideoFrame, x: u32, y: u32) -> [u8; 4] {
    let offset = ((y * frame.width + x) * 4) as usize;
    let p = &frame.pixels[offset..offset + 4];
    [p[0], p[1], p[2], p[3]]
}

fn assert_pixel(frame: &VideoFrame, x: u32, y: u32, expected: [u8; 3]) {
    let actual = pixel(frame, x, y);
    let close = actual
        .iter()
        .zip(expected)
        .all(|(a, e)| a.abs_diff(e) <= TOLERANCE);
    assert!(
        close,
        "pixel ({x}, {y}) is {actual:?}, expected about {expected:?}"
    );
}

fn assert_matches_golden(name: &str, frame: &VideoFrame) {
    let path = common::repo_root()
        .join("tests/golden")
        .join(format!("{name}.png"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        image::save_buffer(
            &path,
            &frame.pixels,
            frame.width,
            frame.height,
            image::ColorType::Rgba8,
        )
        .unwrap();
        return;
    }
    let golden = image::open(&path)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
                path.display()
            )
        })
        .to_rgba8();
    assert_eq!(
        (golden.width(), golden.height()),
        (frame.width, frame.height),
        "{name}: size"
    );
    let mut worst = (0u8, 0usize);
    for (index, (a, b)) in frame.pixels.iter().zip(golden.as_raw()).enumerate() {
        let difference = a.abs_diff(*b);
        if difference > worst.0 {
            worst = (difference, index / 4);
        }
    }
    if worst.0 > TOLERANCE {
        let actual = path.with_extension("actual.png");
        image::save_buffer(
            &actual,
            &frame.pixels,
            frame.width,
            frame.height,
            image::ColorType::Rgba8,
        )
        .unwrap();
        panic!(
            "{name}: pixel ({}, {}) differs by {} (> {TOLERANCE}); rendered image saved as {}",
            worst.1 as u32 % frame.width,
            worst.1 as u32 / frame.width,
            worst.0,
            actual.display()
        );
    }
}

const CANVAS: &str = "[canvas]\nwidth = 320\nheight = 180\nfps = 30\n";

fn scene(sources: &str, items: &str) -> String {
    format!("{CANVAS}\n{sources}\n[[scenes]]\nname = \"S\"\n{items}")
}

#[test]
fn blend_is_premultiplied_over() {
    let toml = scene(
        r##"
[[sources]]
id = "blue"
kind = "color"
color = "#0000ff"
[[sources]]
id = "red_half"
kind = "color"
color = "#ff000080"
width = 160
height = 90
"##,
        r#"
[[scenes.items]]
source = "blue"
[[scenes.items]]
source = "red_half"
position = [80, 45]
"#,
    );
    let frame = render(&toml, 0);
    // 50% red over blue: red 128, blue 255 * (1 - 128/255) = 127.
    assert_pixel(&frame, 160, 90, [128, 0, 127]);
    assert_pixel(&frame, 10, 10, [0, 0, 255]);
    assert_matches_golden("blend", &frame);
}

#[test]
fn scale_and_bounds_size_items() {
    let toml = scene(
        r##"
[[sources]]
id = "logo"
kind = "image"
path = "ASSETS/logo.png"
[[sources]]
id = "green"
kind = "color"
color = "#00ff00"
width = 100
height = 50
"##,
        r#"
[[scenes.items]]
source = "logo"
scale = [0.5, 0.5]
[[scenes.items]]
source = "green"
position = [200, 0]
scale = [1.0, 2.0]
[[scenes.items]]
source = "logo"
position = [0, 100]
bounds = { width = 300, height = 60, fit = "fit" }
"#,
    );
    let frame = render(&toml, 0);
    // Green 100x50 scaled to 100x100 at (200, 0): inside at (250, 95), outside at (250, 105).
    assert_pixel(&frame, 250, 95, [0, 255, 0]);
    assert_pixel(&frame, 250, 105, [0, 0, 0]);
    // The 240x120 logo at half size: its circle (centre 60,60, radius 50) lands at (30, 30).
    assert_pixel(&frame, 30, 30, [255, 80, 40]);
    assert_matches_golden("scale", &frame);
}

#[test]
fn crop_cuts_source_pixels() {
    let toml = scene(
        r##"
[[sources]]
id = "bars"
kind = "test_pattern"
width = 320
height = 180
"##,
        r#"
[[scenes.items]]
source = "bars"
crop = { left = 160, right = 0, top = 0, bottom = 90 }
"#,
    );
    let frame = render(&toml, 0);
    // The right half of the top rows starts with the green bar (column 3 of 7 = x 137..182;
    // source x 160 is green) and now sits at the canvas origin.
    assert_pixel(&frame, 10, 10, [0, 191, 0]);
    // Cropped away: the rest of the canvas is black.
    assert_pixel(&frame, 200, 150, [0, 0, 0]);
    assert_matches_golden("crop", &frame);
}

#[test]
fn rotation_turns_about_the_centre() {
    let toml = scene(
        r##"
[[sources]]
id = "white"
kind = "color"
color = "#ffffff"
width = 200
height = 20
"##,
        r#"
[[scenes.items]]
source = "white"
position = [60, 80]
rotation = 90
"#,
    );
    let frame = render(&toml, 0);
    // A 200x20 bar centred on (160, 90), turned upright: covers x 150..170, y -10..190.
    assert_pixel(&frame, 160, 10, [255, 255, 255]);
    assert_pixel(&frame, 160, 170, [255, 255, 255]);
    assert_pixel(&frame, 70, 90, [0, 0, 0]);
    assert_matches_golden("rotate", &frame);
}

#[test]
fn opacity_scales_the_whole_layer() {
    let toml = scene(
        r##"
[[sources]]
id = "white"
kind = "color"
color = "#ffffff"
[[sources]]
id = "logo"
kind = "image"
path = "ASSETS/logo.png"
"##,
        r#"
[[scenes.items]]
source = "white"
opacity = 0.5
[[scenes.items]]
source = "logo"
position = [40, 30]
opacity = 0.25
"#,
    );
    let frame = render(&toml, 0);
    // White at 50% over black.
    assert_pixel(&frame, 300, 170, [128, 128, 128]);
    // Logo circle (255, 80, 40) at 25% over grey 128: 0.25 * c + 0.75 * 128.
    assert_pixel(&frame, 100, 90, [160, 116, 106]);
    assert_matches_golden("opacity", &frame);
}

#[test]
fn text_has_fill_and_outline() {
    let toml = scene(
        r##"
[[sources]]
id = "title"
kind = "text"
text = "Tally 123"
size = 48
color = "#ffff00"
outline = { width = 3, color = "#0000ff" }
[[sources]]
id = "grey"
kind = "color"
color = "#808080"
"##,
        r#"
[[scenes.items]]
source = "grey"
[[scenes.items]]
source = "title"
position = [20, 60]
"#,
    );
    let frame = render(&toml, 0);
    let colours: Vec<[u8; 4]> = frame
        .pixels
        .chunks(4)
        .map(|p| [p[0], p[1], p[2], p[3]])
        .collect();
    let yellow = colours
        .iter()
        .filter(|p| p[0] > 240 && p[1] > 240 && p[2] < 20)
        .count();
    let blue = colours
        .iter()
        .filter(|p| p[0] < 20 && p[1] < 20 && p[2] > 230)
        .count();
    assert!(yellow > 500, "too little fill: {yellow} pixels");
    assert!(blue > 500, "too little outline: {blue} pixels");
    assert_pixel(&frame, 5, 5, [128, 128, 128]);
    assert_matches_golden("text", &frame);
}

#[test]
fn media_frames_follow_the_canvas_clock() {
    let toml = scene(
        r##"
[[sources]]
id = "clip"
kind = "media"
path = "ASSETS/clip.mp4"
"##,
        r#"
[[scenes.items]]
source = "clip"
bounds = { width = 320, height = 180, fit = "stretch" }
"#,
    );
    // testsrc2 draws a different picture every frame: frames 0 and 15 must differ, and the
    // same frame index must render the same picture twice.
    let first = render(&toml, 15);
    let again = render(&toml, 15);
    let other = render(&toml, 0);
    assert_eq!(first.pixels, again.pixels, "same frame index, same picture");
    assert_ne!(first.pixels, other.pixels);
    assert_matches_golden("media", &first);
}

/// A solid-colour layer's item: `size` canvas pixels at `position`.
fn solid_item(source: &str, position: [f32; 2], size: [f32; 2]) -> tally::scene::Item {
    tally::scene::Item {
        size: tally::scene::ItemSize::Scale(size),
        ..tally::scene::Item::new(source, position)
    }
}

#[test]
fn a_monitor_canvas_drawn_at_half_size_redraws_what_moved() {
    use std::sync::Arc;
    use tally::base::FrameRef;
    use tally::render::{Compositor, Gpu, Layer};
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    let gpu = Arc::new(Gpu::open().unwrap());
    // Items are placed on a 320x180 canvas; the monitor's texture is 160x90.
    let mut monitor = Compositor::for_display(gpu, [320, 180], [160, 90]);
    let solid = |rgba| FrameRef {
        frame: Arc::new(VideoFrame::solid(1, 1, rgba)),
        generation: 1,
    };
    let (blue, red) = (solid([0, 0, 255, 255]), solid([255, 0, 0, 255]));
    let background = solid_item("blue", [0.0, 0.0], [320.0, 180.0]);
    let draw = |monitor: &mut Compositor, box_at: [f32; 2]| {
        let square = solid_item("red", box_at, [40.0, 40.0]);
        let layers = [
            Layer {
                source_id: "blue",
                frame: &blue,
                source_size: [1, 1],
                item: &background,
                clip: None,
            },
            Layer {
                source_id: "red",
                frame: &red,
                source_size: [1, 1],
                item: &square,
                clip: None,
            },
        ];
        monitor.render_display(&layers).unwrap();
        monitor.canvas_rgba().unwrap()
    };
    let first = draw(&mut monitor, [40.0, 40.0]);
    assert_eq!((first.width, first.height), (160, 90));
    // A monitor is drawn for the screen only: it has no I420 conversion to encode from.
    let error = monitor.render(0, &[], &mut |_, _, _| {}).unwrap_err();
    assert!(error.to_string().contains("for the screen only"), "{error}");
    // The 40-pixel square at (40, 40) on the canvas is 20 pixels at (20, 20) on the monitor.
    assert_pixel(&first, 30, 30, [255, 0, 0]);
    assert_pixel(&first, 45, 30, [0, 0, 255]);
    // Moved: only the square's old and new places are redrawn (scissored in monitor pixels),
    // and the old place is blue again.
    let moved = draw(&mut monitor, [200.0, 100.0]);
    assert_pixel(&moved, 30, 30, [0, 0, 255]);
    assert_pixel(&moved, 110, 60, [255, 0, 0]);
    assert_pixel(&moved, 125, 60, [0, 0, 255]);
}

#[test]
fn program_and_preview_upload_a_picture_they_both_show_once() {
    use std::sync::Arc;
    use tally::base::FrameRef;
    use tally::render::{Compositor, Gpu, Layer};
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    let gpu = Arc::new(Gpu::open().unwrap());
    let mut program = Compositor::new(gpu, [320, 180]);
    let mut preview = Compositor::for_display_beside(&program, [160, 90]);
    let full_canvas = solid_item("camera", [0.0, 0.0], [320.0, 180.0]);
    let picture = |rgba, generation| FrameRef {
        frame: Arc::new(VideoFrame::solid(1, 1, rgba)),
        generation,
    };
    let layers = |frame| {
        [Layer {
            source_id: "camera",
            frame,
            source_size: [1, 1],
            item: &full_canvas,
            clip: None,
        }]
    };
    let green = picture([0, 255, 0, 255], 1);
    let on_program = program.render_rgba(&layers(&green)).unwrap();
    assert_pixel(&on_program, 160, 90, [0, 255, 0]);
    assert_eq!(program.source_uploads(), 1);
    // The preview counts the program's upload as its own ...
    assert_eq!(preview.source_uploads(), 1);
    // ... and draws the picture without uploading it again.
    preview.render_display(&layers(&green)).unwrap();
    assert_pixel(&preview.canvas_rgba().unwrap(), 80, 45, [0, 255, 0]);
    assert_eq!(preview.source_uploads(), 1);

    // The source's next picture: uploaded once, by whichever draws first, and both show it.
    let red = picture([255, 0, 0, 255], 2);
    preview.render_display(&layers(&red)).unwrap();
    assert_pixel(&preview.canvas_rgba().unwrap(), 80, 45, [255, 0, 0]);
    let on_program = program.render_rgba(&layers(&red)).unwrap();
    assert_pixel(&on_program, 160, 90, [255, 0, 0]);
    assert_eq!(program.source_uploads(), 2);

    // A replaced source is forgotten by both: its next picture is uploaded afresh.
    program.forget("camera");
    preview.forget("camera");
    preview.render_display(&layers(&red)).unwrap();
    assert_eq!(preview.source_uploads(), 3);
}

#[test]
fn snapshot_writes_a_thumbnail_of_the_width_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_scene(
        dir.path(),
        "scene.toml",
        &scene(
            "[[sources]]\nid = \"green\"\nkind = \"color\"\ncolor = \"#00ff00\"\n",
            "[[scenes.items]]\nsource = \"green\"\n",
        ),
    );
    let png = dir.path().join("thumb.png");
    let status = common::tally()
        .args(["snapshot", "--width", "96", "-o"])
        .arg(&png)
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let thumb = image::open(&png).unwrap().to_rgba8();
    // 320x180 scaled to 96 across keeps its shape: 96x54.
    assert_eq!(thumb.dimensions(), (96, 54));
    assert_eq!(thumb.get_pixel(48, 27).0, [0, 255, 0, 255]);
}

#[test]
fn an_output_size_is_converted_by_averaging_the_canvas_area_each_pixel_covers() {
    use std::sync::Arc;
    use tally::base::{FrameRef, I420Layout};
    use tally::render::{Compositor, Gpu, Layer};
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    let gpu = Arc::new(Gpu::open().unwrap());
    let mut program = Compositor::new(gpu, [320, 180]);
    program.set_output_sizes(&[(320, 180), (160, 90)]);
    // One-pixel black and white columns on the left half, white on the right.
    let mut stripes = VideoFrame::solid(320, 180, [255, 255, 255, 255]);
    for y in 0..180usize {
        for x in (0..160usize).step_by(2) {
            let at = (y * 320 + x) * 4;
            stripes.pixels[at..at + 3].copy_from_slice(&[0, 0, 0]);
        }
    }
    let picture = FrameRef {
        frame: Arc::new(stripes),
        generation: 1,
    };
    // Scale 1: each picture pixel on one canvas pixel.
    let item = solid_item("stripes", [0.0, 0.0], [1.0, 1.0]);
    let layers = [Layer {
        source_id: "stripes",
        frame: &picture,
        source_size: [320, 180],
        item: &item,
        clip: None,
    }];
    let mut received: Vec<(u32, Vec<u8>, I420Layout)> = Vec::new();
    let mut keep = |_, bytes: &[u8], layout: &I420Layout| {
        received.push((layout.width, bytes.to_vec(), *layout));
    };
    program.render(0, &layers, &mut keep).unwrap();
    program.flush(&mut keep).unwrap();
    let luma = |width: u32, x: usize, y: usize| {
        let (_, bytes, layout) = received
            .iter()
            .find(|(w, _, _)| *w == width)
            .unwrap_or_else(|| panic!("no {width}-wide picture"));
        bytes[y * layout.luma_stride + x]
    };
    // At the canvas's size the columns stay apart (limited range: black 16, white 235).
    assert!(luma(320, 10, 50) <= 18, "{}", luma(320, 10, 50));
    assert!(luma(320, 11, 50) >= 233, "{}", luma(320, 11, 50));
    // Half size: each pixel covers a black and a white column, so it is mid-grey, as a
    // picture looks from further away (picking one column would give 16 or 235).
    for x in [5, 40, 70] {
        let value = luma(160, x, 45);
        assert!((120..=132).contains(&value), "x {x}: {value}");
    }
    assert!(luma(160, 120, 45) >= 233, "{}", luma(160, 120, 45));

    // Next frame a black square covers part of the right half: only the part of each picture
    // that changed is converted again, and every picture shows the change.
    let square_picture = FrameRef {
        frame: Arc::new(VideoFrame::solid(1, 1, [0, 0, 0, 255])),
        generation: 1,
    };
    let square = solid_item("square", [240.0, 100.0], [40.0, 40.0]);
    let with_square = [
        Layer {
            source_id: "stripes",
            frame: &picture,
            source_size: [320, 180],
            item: &item,
            clip: None,
        },
        Layer {
            source_id: "square",
            frame: &square_picture,
            source_size: [1, 1],
            item: &square,
            clip: None,
        },
    ];
    received.clear();
    let mut keep = |_, bytes: &[u8], layout: &I420Layout| {
        received.push((layout.width, bytes.to_vec(), *layout));
    };
    program.render(1, &with_square, &mut keep).unwrap();
    program.flush(&mut keep).unwrap();
    let luma = |width: u32, x: usize, y: usize| {
        let (_, bytes, layout) = received.iter().find(|(w, _, _)| *w == width).unwrap();
        bytes[y * layout.luma_stride + x]
    };
    assert!(luma(320, 260, 120) <= 18, "{}", luma(320, 260, 120));
    assert!(luma(160, 130, 60) <= 18, "{}", luma(160, 130, 60));
    assert!(
        luma(160, 100, 30) >= 233,
        "untouched: {}",
        luma(160, 100, 30)
    );
    assert!(
        (120..=132).contains(&luma(160, 40, 45)),
        "{}",
        luma(160, 40, 45)
    );
}
