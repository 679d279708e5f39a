//! Blocked reductions (`shaders/conv2d/reduce.wgsl`): every weight and bias gradient sums over
//! the N*OH rows of grad_output in blocks (pass 1, by the variant's kernel), then adds the
//! blocks' partial sums in a fixed tree of runs in block order (pass 2), so results are
//! bitwise reproducible.

use crate::error::Result;
use crate::gpu::conv2d::forward::geometry_uniforms;
use crate::gpu::conv2d::uniforms::Conv2dUniforms;
use crate::gpu::kernels::Kernel;
use crate::gpu::plan::{Operand, Plan, Step};
use crate::gpu::runtime::dispatch::DispatchGrid;
use crate::gpu::runtime::launch::check_binding;
use crate::gpu::runtime::pipelines::Overrides;
use crate::gpu::Gpu;
use crate::params::Conv2dGeometry;

/// Most terms one block of a blocked reduction sums before its partial is written: bounds the
/// f32 error of each partial and keeps blocks short.
pub(crate) const BLOCK_TERMS: usize = 1024;
/// Fewest pass-1 invocations a blocked reduction aims for, so that every core of the device has
/// work even when there are few outputs (a 3-channel bias, a tiny filter bank).
pub(crate) const MIN_PARALLEL_INVOCATIONS: usize = 16 * 1024;
/// The same for pass-1 kernels written for CPU drivers ([`Kernel::for_cpu_drivers`]): 64
/// workgroups keep even a many-core host busy, and fewer, longer blocks spare pass 1 its
/// per-tile setup and stores and pass 2 its partials (lavapipe at 512 bits, the 3x3
/// 64-channel 56x56 layer at batch 8: dw 68 -> 53 ms on one thread).
pub(crate) const CPU_PARALLEL_INVOCATIONS: usize = 4 * 1024;
/// Most partials one invocation of pass 2 adds in a chain: more blocks than this are added in a
/// tree of passes (each adding runs of this many), which keeps every chain of dependent adds
/// short and, for few outputs, puts more invocations to work.
pub(crate) const REDUCE_FAN_IN: usize = 16;

/// Runs per element of each pass of pass 2 over `blocks` partials, the last pass's being 1.
pub(crate) fn reduction_passes(blocks: usize) -> Vec<usize> {
    let mut passes = Vec::new();
    let mut n = blocks;
    while n > REDUCE_FAN_IN {
        n = n.div_ceil(REDUCE_FAN_IN);
        passes.push(n);
    }
    passes.push(1);
    passes
}

/// How a blocked reduction over the `rows` rows (n, oy) of grad_output is cut into blocks.
/// Depends only on the shape and the device's binding limit, so it is the same on every run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReductionPlan {
    pub rows_per_block: usize,
    pub blocks: usize,
}

impl ReductionPlan {
    /// `rows` rows of `row_len` terms, `pass1_per_block` pass-1 invocations per block,
    /// `partials_per_block` partial sums written per block, and at least `min_parallel`
    /// pass-1 invocations where the rows allow.
    pub fn new(
        rows: usize,
        row_len: usize,
        pass1_per_block: usize,
        partials_per_block: usize,
        min_parallel: usize,
        max_binding_bytes: u64,
    ) -> Self {
        let mut rows_per_block = (BLOCK_TERMS / row_len.max(1)).clamp(1, rows);
        let wanted_blocks = min_parallel.div_ceil(pass1_per_block.max(1));
        if rows.div_ceil(rows_per_block) < wanted_blocks {
            rows_per_block = rows.div_ceil(wanted_blocks).max(1);
        }
        let max_blocks = (max_binding_bytes / 4 / partials_per_block.max(1) as u64).max(1);
        if rows.div_ceil(rows_per_block) as u64 > max_blocks {
            rows_per_block = rows.div_ceil(max_blocks as usize);
        }
        // The same number of blocks, as even as they go: 112 rows in blocks of at most 73
        // make 56 and 56, not 73 and 39 (the 256-channel 14x14 layer's dw on lavapipe: 38.5 ->
        // 31.9 ms at 256 bits, 25.9 -> 21.4 at 512).
        let blocks = rows.div_ceil(rows_per_block);
        Self {
            rows_per_block: rows.div_ceil(blocks),
            blocks,
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
/// adding the partials in a tree of passes (runs of at most [`REDUCE_FAN_IN`] in block order)
/// into the step's `Output`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_reduction(
    gpu: &Gpu,
    op: &'static str,
    g: &Conv2dGeometry,
    prelude: Plan,
    kernel: Kernel,
    pass1_operands: Vec<Operand>,
    pass1_per_block: usize,
    reduce_len: usize,
    pass1_uniforms: impl FnOnce(&ReductionPlan, Conv2dUniforms) -> Vec<u8>,
) -> Result<Plan> {
    plan_reduction_by_columns(
        gpu,
        op,
        g,
        output_rows(g),
        prelude,
        kernel,
        pass1_operands,
        (pass1_per_block, 1),
        reduce_len,
        pass1_uniforms,
    )
}

/// The rows (n, oy) of grad_output and the terms in each, which pass 1 sums in blocks unless
/// its kernel takes its reduction in other rows (a whole plane per image).
pub(crate) fn output_rows(g: &Conv2dGeometry) -> (usize, usize) {
    (g.batch * g.h.output, g.w.output)
}

/// [`plan_reduction`] over `rows.0` rows of `rows.1` terms each (see [`output_rows`]), whose
/// pass 1 also cuts every row into `column_sets` runs of columns (`pass1.1`), each summed
/// apart: a block then writes `column_sets` sets of partials (set `block * column_sets +
/// run`), and pass 2 adds all of them. `pass1.0` is the pass-1 invocations per block of rows.
/// The uniforms' `blocks` is the blocks of rows in pass 1.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_reduction_by_columns(
    gpu: &Gpu,
    op: &'static str,
    g: &Conv2dGeometry,
    (rows, row_len): (usize, usize),
    mut prelude: Plan,
    kernel: Kernel,
    pass1_operands: Vec<Operand>,
    (pass1_per_block, column_sets): (usize, usize),
    reduce_len: usize,
    pass1_uniforms: impl FnOnce(&ReductionPlan, Conv2dUniforms) -> Vec<u8>,
) -> Result<Plan> {
    let min_parallel = if kernel.for_cpu_drivers() {
        CPU_PARALLEL_INVOCATIONS
    } else {
        MIN_PARALLEL_INVOCATIONS
    };
    let plan = ReductionPlan::new(
        rows,
        row_len.div_ceil(column_sets),
        pass1_per_block,
        reduce_len * column_sets,
        min_parallel,
        gpu.max_storage_binding(),
    );
    let sets = plan.blocks * column_sets;
    check_binding(gpu, op, "partial sums", &[sets, reduce_len])?;
    // One set of partials is the result: pass 1 writes it in place, and there is no pass 2
    // (a copy, which took lavapipe 8 ms for a 512x512x3x3 weight).
    let partials = if sets == 1 {
        Operand::Output
    } else {
        Operand::Scratch(prelude.add_scratch(sets * reduce_len))
    };
    let base = Conv2dUniforms {
        rows_per_block: plan.rows_per_block as u32,
        blocks: plan.blocks as u32,
        reduce_len: reduce_len as u32,
        ..geometry_uniforms(g)
    };
    let pass1_grid = grid(gpu, op, plan.blocks * pass1_per_block)?;
    prelude.steps.push(Step {
        kernel,
        // Partial sums: no bias, no activation.
        overrides: Overrides::default(),
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
    if sets == 1 {
        return Ok(prelude);
    }
    let (mut source, mut blocks) = (partials, sets);
    for runs in reduction_passes(sets) {
        let target = if runs == 1 {
            Operand::Output
        } else {
            Operand::Scratch(prelude.add_scratch(runs * reduce_len))
        };
        // Four elements per invocation where the sums come in fours (every weight gradient
        // of a multiple of 4 output channels).
        let (kernel, per_invocation) = if reduce_len.is_multiple_of(4) {
            (Kernel::ReducePartialsVec4, 4)
        } else {
            (Kernel::ReducePartials, 1)
        };
        let pass2_grid = grid(gpu, op, runs * reduce_len / per_invocation)?;
        prelude.steps.push(Step::new(
            kernel,
            &Conv2dUniforms {
                invocations: pass2_grid.invocations,
                blocks: blocks as u32,
                reduce_segment: blocks.div_ceil(runs) as u32,
                ..base
            },
            pass2_grid,
            vec![source, Operand::Unused, Operand::Unused, target],
        ));
        (source, blocks) = (target, runs);
    }
    Ok(prelude)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pass but the last adds runs of at most the fan-in; the last adds at most that
    /// many partials, and they cover every block.
    #[test]
    fn pass_two_is_a_tree_of_short_chains() {
        assert_eq!(reduction_passes(1), [1]);
        assert_eq!(reduction_passes(REDUCE_FAN_IN), [1]);
        assert_eq!(reduction_passes(REDUCE_FAN_IN + 1), [2, 1]);
        assert_eq!(reduction_passes(448), [28, 2, 1]);
        for blocks in 1..2000 {
            let mut n = blocks;
            for runs in reduction_passes(blocks) {
                assert!(
                    n.div_ceil(runs) <= REDUCE_FAN_IN,
                    "{blocks}: {n} in {runs} runs"
                );
                // No run is empty: the last run starts before the end.
                assert!(
                    (runs - 1) * n.div_ceil(runs) < n,
                    "{blocks}: {n} in {runs} runs"
                );
                n = runs;
            }
            assert_eq!(n, 1);
        }
    }

    #[test]
    fn reduction_plan_bounds_blocks_and_keeps_cores_busy() {
        // 64x64x3x3 weights at batch 8, 56x56: many outputs, blocks of at most BLOCK_TERMS terms.
        let p = ReductionPlan::new(
            8 * 56,
            56,
            16 * 64 * 9,
            64 * 64 * 9,
            MIN_PARALLEL_INVOCATIONS,
            128 << 20,
        );
        assert!(p.rows_per_block * 56 <= BLOCK_TERMS);
        assert_eq!(p.blocks, (8 * 56usize).div_ceil(p.rows_per_block));
        // A 3-channel bias: few outputs, so many one-row blocks.
        let p = ReductionPlan::new(8 * 56, 56, 3, 3, MIN_PARALLEL_INVOCATIONS, 128 << 20);
        assert_eq!(p.rows_per_block, 1);
        // A tiny binding limit forces bigger blocks.
        let p = ReductionPlan::new(1000, 1, 100, 100, MIN_PARALLEL_INVOCATIONS, 4 * 100 * 10);
        assert!(p.blocks <= 10);
        // Blocks as even as they go: 112 rows of 14 terms, at most 73 rows a block (1024
        // terms), with enough invocations per block for one: two blocks of 56, not 73 and 39.
        let p = ReductionPlan::new(112, 14, 4608, 589_824, 4096, 128 << 20);
        assert_eq!((p.rows_per_block, p.blocks), (56, 2));
    }
}
