// The monitors' canvas copy (see window_paint.rs).

struct Varyings {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// One triangle that covers the viewport: uv (0,0) at its top left, (1,1) at its bottom right.
@vertex
fn vs_full_viewport(@builtin(vertex_index) index: u32) -> Varyings {
    let uv = vec2<f32>(f32((index << 1u) & 2u), f32(index & 2u));
    var out: Varyings;
    out.position = vec4<f32>(uv.x * 2.0 - 1.0, 1.0 - uv.y * 2.0, 0.0, 1.0);
    out.uv = uv;
    return out;
}

@group(0) @binding(0) var canvas: texture_2d<f32>;
@group(0) @binding(1) var canvas_sampler: sampler;

// The canvas is opaque on air: whatever is transparent in it is encoded as black.
@fragment
fn fs_copy(in: Varyings) -> @location(0) vec4<f32> {
    return vec4<f32>(textureSample(canvas, canvas_sampler, in.uv).rgb, 1.0);
}

@fragment
fn fs_copy_to_srgb_target(in: Varyings) -> @location(0) vec4<f32> {
    let gamma = textureSample(canvas, canvas_sampler, in.uv).rgb;
    let low = gamma / 12.92;
    let high = pow((gamma + 0.055) / 1.055, vec3<f32>(2.4));
    return vec4<f32>(select(high, low, gamma <= vec3<f32>(0.04045)), 1.0);
}
