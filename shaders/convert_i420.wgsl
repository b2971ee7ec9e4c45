// Converts the RGBA canvas to planar YUV 4:2:0 (I420), BT.709, limited range, into one
// storage buffer: the Y plane, then U, then V, each row padded to whole 32-bit words.
// Each invocation writes one word: four luma samples, or four U and four V samples.
// A conversion to another size than the canvas's (an output encoded smaller) averages the
// canvas area each output sample covers with four bilinear taps (exact for areas up to 4 x 4
// canvas pixels; further downscaling skips some), and converts the whole picture every frame.
// At the canvas's size only the region that changed since the last frame is converted; the
// rest of the buffer keeps last frame's values. The region starts on a multiple of 8 pixels across and 2 down,
// so it maps onto whole words in every plane.

struct Params {
    width: u32,
    height: u32,
    luma_stride_words: u32,
    chroma_stride_words: u32,
    u_offset_words: u32,
    v_offset_words: u32,
    // The region, in luma words and rows.
    region_x_words: u32,
    region_y: u32,
    region_width_words: u32,
    region_height: u32,
    // The canvas's size; the same as width and height when nothing is scaled.
    source_width: u32,
    source_height: u32,
};

@group(0) @binding(0) var canvas: texture_2d<f32>;
@group(0) @binding(1) var<storage, read_write> planes: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var canvas_sampler: sampler;

const LUMA_WEIGHTS = vec3<f32>(0.2126, 0.7152, 0.0722);

fn canvas_pixel(x: u32, y: u32) -> vec3<f32> {
    let clamped = vec2<u32>(min(x, params.source_width - 1u), min(y, params.source_height - 1u));
    return textureLoad(canvas, clamped, 0).rgb;
}

fn scaled() -> bool {
    return params.width != params.source_width || params.height != params.source_height;
}

// The mean colour of the canvas over output pixels [x0, x1) x [y0, y1) (output coordinates),
// from four bilinear taps at the quarter points of that area.
fn area(x0: f32, y0: f32, x1: f32, y1: f32) -> vec3<f32> {
    let source = vec2<f32>(f32(params.source_width), f32(params.source_height));
    let to_canvas = source / vec2<f32>(f32(params.width), f32(params.height));
    let low = vec2<f32>(x0, y0) * to_canvas;
    let span = vec2<f32>(x1 - x0, y1 - y0) * to_canvas;
    var sum = vec3<f32>(0.0);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let quarter = vec2<f32>(f32(i % 2u) * 0.5 + 0.25, f32(i / 2u) * 0.5 + 0.25);
        let at = (low + span * quarter) / source;
        sum = sum + textureSampleLevel(canvas, canvas_sampler, at, 0.0).rgb;
    }
    return sum * 0.25;
}

// Output pixel (x, y).
fn pixel(x: u32, y: u32) -> vec3<f32> {
    if (!scaled()) {
        return canvas_pixel(x, y);
    }
    let cx = f32(min(x, params.width - 1u));
    let cy = f32(min(y, params.height - 1u));
    return area(cx, cy, cx + 1.0, cy + 1.0);
}

// The 2 x 2 block of output pixels at (x, y) that one chroma sample covers.
fn block(x: u32, y: u32) -> vec3<f32> {
    if (!scaled()) {
        return (pixel(x, y) + pixel(x + 1u, y) + pixel(x, y + 1u) + pixel(x + 1u, y + 1u)) * 0.25;
    }
    let x1 = f32(min(x + 2u, params.width));
    let y1 = f32(min(y + 2u, params.height));
    return area(f32(x), f32(y), x1, y1);
}

fn to_byte(value: f32) -> u32 {
    return u32(clamp(round(value), 0.0, 255.0));
}

@compute @workgroup_size(16, 8)
fn luma(@builtin(global_invocation_id) id: vec3<u32>) {
    let word = params.region_x_words + id.x;
    let y = params.region_y + id.y;
    if (id.x >= params.region_width_words || id.y >= params.region_height
        || word >= params.luma_stride_words || y >= params.height) {
        return;
    }
    var packed = 0u;
    for (var i = 0u; i < 4u; i = i + 1u) {
        let luma = 16.0 + 219.0 * dot(pixel(word * 4u + i, y), LUMA_WEIGHTS);
        packed = packed | (to_byte(luma) << (8u * i));
    }
    planes[y * params.luma_stride_words + word] = packed;
}

@compute @workgroup_size(16, 8)
fn chroma(@builtin(global_invocation_id) id: vec3<u32>) {
    // Chroma words cover 8 pixels across; chroma rows cover 2 pixel rows.
    let word = params.region_x_words / 2u + id.x;
    let row = params.region_y / 2u + id.y;
    let chroma_height = (params.height + 1u) / 2u;
    if (id.x >= (params.region_width_words + 1u) / 2u || id.y >= (params.region_height + 1u) / 2u
        || word >= params.chroma_stride_words || row >= chroma_height) {
        return;
    }
    var packed_u = 0u;
    var packed_v = 0u;
    for (var i = 0u; i < 4u; i = i + 1u) {
        let x = (word * 4u + i) * 2u;
        let y = row * 2u;
        // Each chroma sample covers a 2x2 block of pixels.
        let rgb = block(x, y);
        let luma = dot(rgb, LUMA_WEIGHTS);
        let cb = 128.0 + 224.0 * (rgb.b - luma) / 1.8556;
        let cr = 128.0 + 224.0 * (rgb.r - luma) / 1.5748;
        packed_u = packed_u | (to_byte(cb) << (8u * i));
        packed_v = packed_v | (to_byte(cr) << (8u * i));
    }
    planes[params.u_offset_words + row * params.chroma_stride_words + word] = packed_u;
    planes[params.v_offset_words + row * params.chroma_stride_words + word] = packed_v;
}
