// Draws one item: a textured quad with premultiplied alpha, scaled by the item's opacity.
// The quad's corners arrive already transformed (crop, scale, rotation) in clip space.

struct Item {
    // xy: clip-space position, zw: texture coordinate; order TL, TR, BL, BR.
    corners: array<vec4<f32>, 4>,
    // x: opacity; yzw unused (uniform layout wants 16-byte members).
    opacity: vec4<f32>,
};

@group(0) @binding(0) var<uniform> item: Item;
@group(1) @binding(0) var source_texture: texture_2d<f32>;
@group(1) @binding(1) var source_sampler: sampler;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    let corner = item.corners[index];
    var out: VertexOut;
    out.position = vec4<f32>(corner.xy, 0.0, 1.0);
    out.uv = corner.zw;
    return out;
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    // Premultiplied: scaling all four channels by opacity keeps the colour correct.
    return textureSample(source_texture, source_sampler, in.uv) * item.opacity.x;
}
