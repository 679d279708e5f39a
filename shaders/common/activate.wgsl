// The fused epilogue's activation (`Activation` on the host), applied to up to four outputs at
// once. The module composed with this piece declares `u` with `activation` and
// `activation_slope` fields. A NaN stays NaN, as in PyTorch: `max(NaN, 0)` and `clamp(NaN, ..)`
// may return a bound, so a NaN input is passed through explicitly. Needs common/nonfinite.wgsl.

fn activate4(v: vec4<f32>) -> vec4<f32> {
    var out = v;
    switch u.activation {
        case 1u: {
            out = max(v, vec4<f32>(0.0));
        }
        case 2u: {
            out = 1.0 / (1.0 + exp(-v));
        }
        case 3u: {
            // tanh(15) rounds to 1 in f32; clamping keeps exp-based implementations finite.
            out = tanh(clamp(v, vec4<f32>(-15.0), vec4<f32>(15.0)));
        }
        case 4u: {
            let slope = bitcast<f32>(u.activation_slope);
            out = select(v * slope, v, v > vec4<f32>(0.0));
        }
        default: {}
    }
    return select(out, v, is_nan4(v));
}

fn activate2(v: vec2<f32>) -> vec2<f32> {
    return activate4(vec4<f32>(v, v)).xy;
}

fn activate1(v: f32) -> f32 {
    return activate4(vec4<f32>(v)).x;
}
