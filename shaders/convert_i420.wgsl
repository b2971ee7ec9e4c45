// Converts the RGBA canvas to planar YUV 4:2:0 (I420), BT.709, limited range, into one
// storage buffer: the Y plane, then U, then V, each row padded to whole 32-bit words.
// Each invocation writes one word: four luma samples, or four U and four V samples.
// A conversion to another size than the canvas's (an output encoded smaller) averages the
// canvas pixels each output pixel covers, and converts the whole picture every frame.
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

const LUMA_WEIGHTS = vec3<f32>(0.2126, 0.7152, 0.0722);

fn canvas_pixel(x: u32, y: u32) -> vec3<f32> {
    let clamped = vec2<u32>(min(x, params.source_width - 1u), min(y, params.source_height - 1u));
    return textureLoad(canvas, clamped, 0).rgb;
}

// The output pixel (x, y): the canvas pixel itself, or, scaled, the mean of the canvas pixels
// its area covers (at most 4 x 4 of them: downscaling further than 4:1 skips some).
fn pixel(x: u32, y: u32) -> vec3<f32> {
    let cx = min(x, params.width - 1u);
    let cy = min(y, params.height - 1u);
    if (params.width == params.source_width && params.height == params.source_height) {
        return canvas_pixel(cx, cy);
    }
    let x0 = cx * params.source_width / params.width;
    let y0 = cy * params.source_height / params.height;
    let x1 = min(max(x0 + 1u, ((cx + 1u) * params.source_width + params.width - 1u) / params.width), x0 + 4u);
    let y1 = min(max(y0 + 1u, ((cy + 1u) * params.source_height + params.height - 1u) / params.height), y0 + 4u);
    var sum = vec3<f32>(0.0);
    for (var sy = y0; sy < y1; sy = sy + 1u) {
        for (var sx = x0; sx < x1; sx = sx + 1u) {
            sum = sum + canvas_pixel(sx, sy);
        }
    }
    return sum / f32((x1 - x0) * (y1 - y0));
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
        let rgb = (pixel(x, y) + pixel(x + 1u, y) + pixel(x, y + 1u) + pixel(x + 1u, y + 1u)) * 0.25;
        let luma = dot(rgb, LUMA_WEIGHTS);
        let cb = 128.0 + 224.0 * (rgb.b - luma) / 1.8556;
        let cr = 128.0 + 224.0 * (rgb.r - luma) / 1.5748;
        packed_u = packed_u | (to_byte(cb) << (8u * i));
        packed_v = packed_v | (to_byte(cr) << (8u * i));
    }
    planes[params.u_offset_words + row * params.chroma_stride_words + word] = packed_u;
    planes[params.v_offset_words + row * params.chroma_stride_words + word] = packed_v;
}
