// NaN recognised by its bits: WGSL lets an implementation assume floats are never NaN, and
// `max`, `min` and `clamp` may drop a NaN operand, so a comparison cannot be trusted to see one.

fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn is_nan2(v: vec2<f32>) -> vec2<bool> {
    return (bitcast<vec2<u32>>(v) & vec2<u32>(0x7fffffffu)) > vec2<u32>(0x7f800000u);
}

fn is_nan4(v: vec4<f32>) -> vec4<bool> {
    return (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}
