//! Blocked reductions (`shaders/conv2d/reduce.wgsl`): every weight and bias gradient sums over
//! the N*OH rows of grad_output in blocks (pass 1, by the variant's kernel), then adds the
//! blocks' partial sums in block order (pass 2), so results are bitwise reproducible.

use crate::error::Result;
use crate::gpu::conv2d::forward::geometry_uniforms;
use crate::gpu::conv2d::uniforms::Conv2dUniforms;
use crate::gpu::kernels::Kernel;
use crate::gpu::plan::{Operand, Plan, Step};
use crate::gpu::runtime::dispatch::DispatchGrid;
use crate::gpu::runtime::launch::check_binding;
use crate::gpu::Gpu;
use crate::params::Conv2dGeometry;

/// Most terms one block of a blocked reduction sums before its partial is written: bounds the
/// f32 error of each partial and keeps blocks short.
pub(crate) const BLOCK_TERMS: usize = 1024;
/// Fewest pass-1 invocations a blocked reduction aims for, so that every core of the device has
/// work even when there are few outputs (a 3-channel bias, a tiny filter bank).
pub(crate) const MIN_PARALLEL_INVOCATIONS: usize = 16 * 1024;

/// How a blocked reduction over the `rows` rows (n, oy) of grad_output is cut into blocks.
/// Depends only on the shape and the device's binding limit, so it is the same on every run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReductionPlan {
    pub rows_per_block: usize,
    pub blocks: usize,
}

impl ReductionPlan {
    /// `rows` rows of `row_len` terms, `pass1_per_block` pass-1 invocations per block, and
    /// `partials_per_block` partial sums written per block.
    pub fn new(
        rows: usize,
        row_len: usize,
        pass1_per_block: usize,
        partials_per_block: usize,
        max_binding_bytes: u64,
    ) -> Self {
        let mut rows_per_block = (BLOCK_TERMS / row_len.max(1)).clamp(1, rows);
        let wanted_blocks = MIN_PARALLEL_INVOCATIONS.div_ceil(pass1_per_block.max(1));
        if rows.div_ceil(rows_per_block) < wanted_blocks {
            rows_per_block = rows.div_ceil(wanted_blocks).max(1);
        }
        let max_blocks = (max_binding_bytes / 4 / partials_per_block.max(1) as u64).max(1);
        if rows.div_ceil(rows_per_block) as u64 > max_blocks {
            rows_per_block = rows.div_ceil(max_blocks as usize);
        }
        Self {
            rows_per_block,
            blocks: rows.div_ceil(rows_per_block),
        }
    }
}

pub(crate) fn grid(gpu: &Gpu, op: &'static str, invocations: usize) -> Result<DispatchGrid> {
    DispatchGrid::for_invocations(
        op,
        invocations as u64,
        gpu.limits().max_compute_workgroups_per_dimension,
    )
}

/// A blocked reduction: the `prelude` steps, then pass 1 (`kernel` on `pass1_operands`, whose
/// `Output` is the partial sums, with the uniforms `pass1_uniforms` makes from the reduction
/// plan and the shared uniforms, whose `invocations` match the pass-1 grid), then pass 2
/// adding the partials in block order into the step's `Output`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_reduction(
    gpu: &Gpu,
    op: &'static str,
    g: &Conv2dGeometry,
    mut prelude: Plan,
    kernel: Kernel,
    pass1_operands: Vec<Operand>,
    pass1_per_block: usize,
    reduce_len: usize,
    pass1_uniforms: impl FnOnce(&ReductionPlan, Conv2dUniforms) -> Vec<u8>,
) -> Result<Plan> {
    let plan = ReductionPlan::new(
        g.batch * g.h.output,
        g.w.output,
        pass1_per_block,
        reduce_len,
        gpu.max_storage_binding(),
    );
    check_binding(gpu, op, "partial sums", &[plan.blocks, reduce_len])?;
    let partials = Operand::Scratch(prelude.add_scratch(plan.blocks * reduce_len));
    let base = Conv2dUniforms {
        rows_per_block: plan.rows_per_block as u32,
        blocks: plan.blocks as u32,
        reduce_len: reduce_len as u32,
        ..geometry_uniforms(g)
    };
    let pass1_grid = grid(gpu, op, plan.blocks * pass1_per_block)?;
    let pass2_grid = grid(gpu, op, reduce_len)?;
    prelude.steps.push(Step {
        kernel,
        uniforms: pass1_uniforms(
            &plan,
            Conv2dUniforms {
                invocations: pass1_grid.invocations,
                ..base
            },
        ),
        grid: pass1_grid,
        operands: pass1_operands
            .into_iter()
            .map(|o| if o == Operand::Output { partials } else { o })
            .collect(),
    });
    prelude.steps.push(Step::new(
        Kernel::ReducePartials,
        &Conv2dUniforms {
            invocations: pass2_grid.invocations,
            ..base
        },
        pass2_grid,
        vec![partials, Operand::Unused, Operand::Unused, Operand::Output],
    ));
    Ok(prelude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduction_plan_bounds_blocks_and_keeps_cores_busy() {
        // 64x64x3x3 weights at batch 8, 56x56: many outputs, blocks of at most BLOCK_TERMS terms.
        let p = ReductionPlan::new(8 * 56, 56, 16 * 64 * 9, 64 * 64 * 9, 128 << 20);
        assert!(p.rows_per_block * 56 <= BLOCK_TERMS);
        assert_eq!(p.blocks, (8 * 56usize).div_ceil(p.rows_per_block));
        // A 3-channel bias: few outputs, so many one-row blocks.
        let p = ReductionPlan::new(8 * 56, 56, 3, 3, 128 << 20);
        assert_eq!(p.rows_per_block, 1);
        // A tiny binding limit forces bigger blocks.
        let p = ReductionPlan::new(1000, 1, 100, 100, 4 * 100 * 10);
        assert!(p.blocks <= 10);
    }
}
