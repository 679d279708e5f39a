//! Plans of the direct conv2d kernels' gradient passes (`shaders/conv2d/direct.wgsl`): the
//! input gradient in gather form with stride phases skipped, and pass 1 of the weight and bias
//! reductions.

use crate::error::{too_large, Result};
use crate::gpu::conv2d::forward::{geometry_uniforms, FORWARD_CHANNEL_TILE};
use crate::gpu::conv2d::gemm::{gcd, modular_inverse};
use crate::gpu::conv2d::reduce::{grid, plan_reduction, ReductionPlan};
use crate::gpu::conv2d::uniforms::Conv2dUniforms;
use crate::gpu::kernels::Kernel;
use crate::gpu::plan::{Operand, Plan, Step};
use crate::gpu::Gpu;
use crate::params::Conv2dGeometry;

/// Channels per invocation in the gradient kernels (`TILE` in the shader).
pub(crate) const CHANNEL_TILE: usize = FORWARD_CHANNEL_TILE;

/// `(gcd, step, inverse)` for one axis of the stride-phase skipping in the dx kernel: taps `k`
/// with `k * dilation = t (mod stride)` are `k0 + j * step` with `step = stride / gcd` and
/// `k0 = (t / gcd) * inverse (mod step)`.
fn stride_phase(op: &'static str, stride: usize, dilation: usize) -> Result<(u32, u32, u32)> {
    let gcd = gcd(stride, dilation);
    let step = stride / gcd;
    // The shader multiplies two residues below `step` in u32.
    if step > 65_536 {
        return Err(too_large(
            op,
            format!("stride {stride} with dilation {dilation}: the input-gradient kernel supports a stride phase of at most 65536"),
        ));
    }
    let inverse = modular_inverse(dilation / gcd, step);
    Ok((gcd as u32, step as u32, inverse as u32))
}

/// Operands of the unpacked input-gradient kernels.
pub(crate) fn gather_operands() -> Vec<Operand> {
    vec![
        Operand::GradOutput,
        Operand::Weight,
        Operand::Bias,
        Operand::Output,
    ]
}

pub(crate) fn plan_input_direct(
    gpu: &Gpu,
    op: &'static str,
    g: &Conv2dGeometry,
    has_bias: bool,
) -> Result<Step> {
    let tiles = g.in_channels_per_group().div_ceil(CHANNEL_TILE);
    let invocations = g.batch * g.groups * tiles * g.h.input * g.w.input;
    let grid = grid(gpu, op, invocations)?;
    let (gcd_h, step_h, inv_h) = stride_phase(op, g.h.stride, g.h.dilation)?;
    let (gcd_w, step_w, inv_w) = stride_phase(op, g.w.stride, g.w.dilation)?;
    Ok(Step::new(
        Kernel::Conv2dBackwardInput,
        &Conv2dUniforms {
            channel_tiles_per_group: tiles as u32,
            has_bias: u32::from(has_bias),
            invocations: grid.invocations,
            phase_gcd_h: gcd_h,
            phase_gcd_w: gcd_w,
            phase_step_h: step_h,
            phase_step_w: step_w,
            phase_inv_h: inv_h,
            phase_inv_w: inv_w,
            ..geometry_uniforms(g)
        },
        grid,
        gather_operands(),
    ))
}

/// Pass-1 uniforms of the direct reduction kernels: the shared ones with `tiles` channel tiles
/// per group.
pub(crate) fn direct_uniforms(
    tiles: usize,
) -> impl FnOnce(&ReductionPlan, Conv2dUniforms) -> Vec<u8> {
    move |_, u| {
        bytemuck::bytes_of(&Conv2dUniforms {
            channel_tiles_per_group: tiles as u32,
            ..u
        })
        .to_vec()
    }
}

pub(crate) fn plan_bias(gpu: &Gpu, op: &'static str, g: &Conv2dGeometry) -> Result<Plan> {
    plan_reduction(
        gpu,
        op,
        g,
        Plan::default(),
        Kernel::Conv2dBackwardBiasPartial,
        vec![
            Operand::Unused,
            Operand::GradOutput,
            Operand::Unused,
            Operand::Output,
        ],
        g.out_channels,
        g.out_channels,
        direct_uniforms(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stride_phase_lists_exactly_the_contributing_taps() {
        for stride in 1..7 {
            for dilation in 1..7 {
                let (gcd, step, inv) = stride_phase("t", stride, dilation).unwrap();
                let (gcd, step, inv) = (gcd as usize, step as usize, inv as usize);
                for t in 0..50usize {
                    let expected: Vec<usize> = (0..20)
                        .filter(|k| (t + 1000 * stride - k * dilation) % stride == 0)
                        .collect();
                    let got: Vec<usize> = if t % gcd != 0 {
                        vec![]
                    } else {
                        let k0 = ((t / gcd) % step) * inv % step;
                        (k0..20).step_by(step).collect()
                    };
                    assert_eq!(got, expected, "stride {stride} dilation {dilation} t {t}");
                }
            }
        }
    }
}
