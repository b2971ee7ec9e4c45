// Unpacks a camera's YUYV (4:2:2, BT.601 limited range) into the source's RGBA texture. The
// packed frame is uploaded as an RGBA8 texture half as wide: each texel holds Y0 U Y1 V for a
// pair of pixels. One invocation writes one output pixel; chroma is shared by the pair.

@group(0) @binding(0) var packed: texture_2d<f32>;
@group(0) @binding(1) var unpacked: texture_storage_2d<rgba8unorm, write>;

@compute @workgroup_size(16, 8)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let size = textureDimensions(unpacked);
    if (id.x >= size.x || id.y >= size.y) {
        return;
    }
    let pair = textureLoad(packed, vec2<u32>(id.x / 2u, id.y), 0);
    let luma = select(pair.b, pair.r, id.x % 2u == 0u);
    let y = (luma * 255.0 - 16.0) * (255.0 / 219.0);
    let u = (pair.g * 255.0 - 128.0) * (255.0 / 224.0);
    let v = (pair.a * 255.0 - 128.0) * (255.0 / 224.0);
    let rgb = vec3<f32>(
        y + 1.402 * v,
        y - 0.344136 * u - 0.714136 * v,
        y + 1.772 * u,
    ) / 255.0;
    textureStore(unpacked, vec2<u32>(id.xy), vec4<f32>(clamp(rgb, vec3<f32>(0.0), vec3<f32>(1.0)), 1.0));
}
