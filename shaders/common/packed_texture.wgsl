// A packed texture holds vec4 i at texel (i % TEXTURE_WIDTH, i / TEXTURE_WIDTH)
// (`PACKED_TEXTURE_WIDTH` on the host): conv2d/pack.wgsl's *_texture entry points write them
// and conv2d/packed.wgsl reads them.

const TEXTURE_SHIFT: u32 = 12u;
const TEXTURE_WIDTH: u32 = 1u << TEXTURE_SHIFT;

fn texel_of(i: u32) -> vec2<u32> {
    return vec2<u32>(i & (TEXTURE_WIDTH - 1u), i >> TEXTURE_SHIFT);
}
