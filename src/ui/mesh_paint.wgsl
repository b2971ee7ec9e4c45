// The window's egui meshes (see mesh_paint.rs): one texture sample and one multiply a pixel,
// with no branches, which a software rasteriser runs for every lane whichever way they go.

struct Screen {
    size_in_points: vec2<f32>,
    unused: vec2<f32>,
};

@group(0) @binding(0) var<uniform> screen: Screen;

struct Varyings {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
    // Premultiplied, gamma-encoded, as egui gives it.
    @location(1) color: vec4<f32>,
};

@vertex
fn vs_main(
    @location(0) position_in_points: vec2<f32>,
    @location(1) uv: vec2<f32>,
    @location(2) color: vec4<f32>,
) -> Varyings {
    var out: Varyings;
    out.position = vec4<f32>(
        2.0 * position_in_points.x / screen.size_in_points.x - 1.0,
        1.0 - 2.0 * position_in_points.y / screen.size_in_points.y,
        0.0,
        1.0,
    );
    out.uv = uv;
    out.color = color;
    return out;
}

@group(1) @binding(0) var image: texture_2d<f32>;
@group(1) @binding(1) var image_sampler: sampler;

// egui blends in gamma space, so a gamma-encoded target takes the product as it is.
@fragment
fn fs_gamma_target(in: Varyings) -> @location(0) vec4<f32> {
    return in.color * textureSample(image, image_sampler, in.uv);
}

@fragment
fn fs_srgb_target(in: Varyings) -> @location(0) vec4<f32> {
    let gamma = in.color * textureSample(image, image_sampler, in.uv);
    let low = gamma.rgb / 12.92;
    let high = pow((gamma.rgb + 0.055) / 1.055, vec3<f32>(2.4));
    return vec4<f32>(select(high, low, gamma.rgb <= vec3<f32>(0.04045)), gamma.a);
}
