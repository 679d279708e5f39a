// The fused epilogue: a bias and an activation (`Activation` on the host), the activation
// applied to up to four outputs at once. The module composed with this piece declares `u` with
// `activation` and `activation_slope` fields. A NaN stays NaN, as in PyTorch: `max(NaN, 0)` and
// `clamp(NaN, ..)` may return a bound, so a NaN input is passed through explicitly. Needs
// common/nonfinite.wgsl.
//
// Whether there is a bias and whether there is an activation are constants of the pipeline
// (the host builds one per epilogue it meets), not uniforms: lavapipe runs every branch under a
// lane mask, taken or not, so a uniform test still ran the bias loads and the exponentials of
// sigmoid and tanh on every store of every kernel (measured at 512 bits, ResNet-50 suite: a
// tenth of its time). Which activation stays a uniform: one pipeline serves all four.
override HAS_BIAS: bool = false;
override HAS_ACTIVATION: bool = false;

fn activate4(v: vec4<f32>) -> vec4<f32> {
    if (!HAS_ACTIVATION) {
        return v;
    }
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
