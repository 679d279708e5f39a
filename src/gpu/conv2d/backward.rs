//! Host side of the conv2d gradients and conv_transpose2d: plan every dispatch (validating all
//! arguments and sizes) before encoding anything, then submit them together.

use crate::error::{invalid, Result};
use crate::gpu::conv2d::depthwise::LaneOrder;
use crate::gpu::conv2d::direct::{
    direct_uniforms, gather_operands, plan_bias, plan_input_direct, CHANNEL_TILE,
};
use crate::gpu::conv2d::gemm;
use crate::gpu::conv2d::reduce::{output_rows, plan_reduction, plan_reduction_by_columns};
use crate::gpu::conv2d::split_backward::{self, TiledGrad};
use crate::gpu::conv2d::subgroup::SubgroupWidth;
use crate::gpu::conv2d::uniforms::Conv2dUniforms;
use crate::gpu::conv2d::variant::{self, ConvPass, ConvVariant};
use crate::gpu::conv2d::{depthwise as conv2d_depthwise, packed as conv2d_packed};
use crate::gpu::kernels::Kernel;
use crate::gpu::plan::memory::{self, Ledger, MemoryEstimate};
use crate::gpu::plan::{
    run_into_output, ConvOperands, KeepWeights, Operand, Plan, ReadyPlan, Step,
};
use crate::gpu::runtime::launch::{
    check_same_gpu, check_whole, conv_operands, dims4, submit_after_copies,
};
use crate::gpu::split;
use crate::gpu::{Gpu, GpuTensor};
use crate::grads::{Conv2dGrads, GradSelection};
use crate::params::{Conv2dGeometry, Conv2dParams, ConvTranspose2dParams, Layout};

/// The input-gradient dispatches of the variant the planner picks: one for the direct kernel,
/// one per stride phase for the GEMM kernels (after the repacking, for packed8).
fn plan_input(gpu: &Gpu, op: &'static str, g: &Conv2dGeometry, has_bias: bool) -> Result<Plan> {
    let variant = variant::choose(gpu, op, ConvPass::InputGrad, g)?.variant;
    plan_input_with(gpu, op, g, has_bias, variant)
}

/// [`plan_input`] with a given variant.
fn plan_input_with(
    gpu: &Gpu,
    op: &'static str,
    g: &Conv2dGeometry,
    has_bias: bool,
    variant: ConvVariant,
) -> Result<Plan> {
    let max_per_dimension = gpu.limits().max_compute_workgroups_per_dimension;
    let as_forward = conv2d_depthwise::input_grad_as_forward(g);
    Ok(match variant {
        ConvVariant::Depthwise if as_forward.is_some() => {
            conv2d_depthwise::input_grad(gpu, op, &as_forward.expect("checked"), has_bias)?
        }
        ConvVariant::Direct | ConvVariant::Depthwise => {
            Plan::single(plan_input_direct(gpu, op, g, has_bias)?)
        }
        ConvVariant::Subgroup => {
            let width = SubgroupWidth::of(gpu).map_err(|why| invalid(op, why))?;
            Plan {
                steps: gemm::input_grad(op, g, width.tile(), has_bias, max_per_dimension)?
                    .iter()
                    .map(|d| Step::new(width.gemm_kernel(), &d.uniforms, d.grid, gather_operands()))
                    .collect(),
                ..Plan::default()
            }
        }
        ConvVariant::Packed4
        | ConvVariant::Packed8
        | ConvVariant::Packed16
        | ConvVariant::Tiled => conv2d_packed::input_grad(
            op,
            variant.packed_tiling().expect("a packed variant"),
            g,
            has_bias,
            max_per_dimension,
        )?,
    })
}

fn plan_weight(gpu: &Gpu, op: &'static str, g: &Conv2dGeometry) -> Result<Plan> {
    let variant = variant::choose(gpu, op, ConvPass::WeightGrad, g)?.variant;
    plan_weight_with(gpu, op, g, variant)
}

/// [`plan_weight`] with a given variant.
fn plan_weight_with(
    gpu: &Gpu,
    op: &'static str,
    g: &Conv2dGeometry,
    variant: ConvVariant,
) -> Result<Plan> {
    let taps = g.h.kernel * g.w.kernel;
    let reduce_len = g.out_channels * g.in_channels_per_group() * taps;
    let unpacked = vec![
        Operand::Input,
        Operand::GradOutput,
        Operand::Unused,
        Operand::Output,
    ];
    match variant {
        ConvVariant::Depthwise if conv2d_depthwise::forward_fits(g) => {
            // One invocation per channel and column of quads in each block of rows; each
            // column sums apart, so that on a GPU lanes can lie along the contiguous dimension.
            let order = LaneOrder::for_device(gpu, g.layout);
            let per_invocation = order.weight_grad_quads(g);
            let columns = g.w.output.div_ceil(4).div_ceil(per_invocation);
            plan_reduction_by_columns(
                gpu,
                op,
                g,
                output_rows(g),
                Plan::default(),
                Kernel::Conv2dDepthwiseWeightGradQuads,
                unpacked,
                (g.out_channels * columns, columns),
                reduce_len,
                |_, u| {
                    bytemuck::bytes_of(&Conv2dUniforms {
                        lanes_along_channels: u32::from(order.along_channels),
                        quads_per_invocation: per_invocation as u32,
                        ..u
                    })
                    .to_vec()
                },
            )
        }
        ConvVariant::Direct | ConvVariant::Depthwise => {
            let tiles = g.out_channels_per_group().div_ceil(CHANNEL_TILE);
            plan_reduction(
                gpu,
                op,
                g,
                Plan::default(),
                Kernel::Conv2dBackwardWeightPartial,
                unpacked,
                g.groups * tiles * g.in_channels_per_group() * taps,
                reduce_len,
                direct_uniforms(tiles),
            )
        }
        ConvVariant::Subgroup => {
            let width = SubgroupWidth::of(gpu).map_err(|why| invalid(op, why))?;
            let tile = width.tile();
            plan_reduction(
                gpu,
                op,
                g,
                Plan::default(),
                width.weight_grad_kernel(),
                unpacked,
                gemm::weight_grad_subgroups_per_block(g, tile) * tile.columns,
                reduce_len,
                |plan, direct| {
                    let u = gemm::weight_grad_partial(
                        g,
                        tile,
                        plan.rows_per_block,
                        plan.blocks,
                        direct.invocations,
                    );
                    bytemuck::bytes_of(&u).to_vec()
                },
            )
        }
        variant @ (ConvVariant::Packed4
        | ConvVariant::Packed8
        | ConvVariant::Packed16
        | ConvVariant::Tiled) => {
            let tiling = variant
                .packed_tiling()
                .expect("a packed variant")
                .for_weight_grad(g.out_channels_per_group());
            let max_per_dimension = gpu.limits().max_compute_workgroups_per_dimension;
            let (packing, [rows_a, rows_b]) =
                conv2d_packed::weight_grad_packing(op, tiling, g, max_per_dimension)?;
            let (kernel, per_block) = conv2d_packed::weight_grad_pass1(tiling, g);
            plan_reduction_by_columns(
                gpu,
                op,
                g,
                conv2d_packed::weight_grad_rows(tiling, g),
                packing,
                kernel,
                vec![rows_a, rows_b, Operand::Unused, Operand::Output],
                (per_block, 1),
                reduce_len,
                |plan, direct| {
                    let u = conv2d_packed::weight_grad_partial(
                        tiling,
                        g,
                        plan.rows_per_block,
                        plan.blocks,
                        direct.invocations,
                    );
                    bytemuck::bytes_of(&u).to_vec()
                },
            )
        }
    }
}

/// The peak bytes of the gradients `which` of `g` computed unsplit: each gradient with its
/// scratch, then every dispatch's uniforms, all alive until the one submission.
pub(crate) fn whole_bytes(
    gpu: &Gpu,
    op: &'static str,
    g: &Conv2dGeometry,
    which: GradSelection,
) -> Result<u64> {
    let most = |pass, plan: &dyn Fn(ConvVariant) -> Result<Plan>| {
        let plans = variant::candidates(gpu, op, pass, g)?.into_iter().map(plan);
        memory::most_plan_bytes(gpu, op, plans)
    };
    let mut total = 0;
    if which.input {
        total += memory::tensor_bytes(gpu, &g.input_shape())
            + most(ConvPass::InputGrad, &|v| {
                plan_input_with(gpu, op, g, false, v)
            })?;
    }
    if which.weight {
        total += memory::tensor_bytes(gpu, &g.weight_shape())
            + most(ConvPass::WeightGrad, &|v| plan_weight_with(gpu, op, g, v))?;
    }
    if which.bias {
        let plan = plan_bias(gpu, op, g)?;
        total += memory::tensor_bytes(gpu, &[g.out_channels]) + memory::plan_bytes(gpu, &plan);
    }
    Ok(total)
}

/// The tensors a gradient selection binds: grad_output, and the input (or dx) and the weight
/// (or dw) for dx and dw.
fn bound_shapes(g: &Conv2dGeometry, which: GradSelection) -> Vec<[usize; 4]> {
    if which.input || which.weight {
        vec![g.input_shape(), g.output_shape(), g.weight_shape()]
    } else {
        vec![g.output_shape()]
    }
}

/// Whether the gradients `which` must be split, with `avail` bytes left in the budget.
fn must_split(
    gpu: &Gpu,
    op: &'static str,
    g: &Conv2dGeometry,
    which: GradSelection,
    avail: Option<u64>,
) -> Result<bool> {
    let bound = bound_shapes(g, which);
    let shapes: Vec<&[usize]> = bound.iter().map(|s| &s[..]).collect();
    split::needed(gpu, &shapes, avail, || whole_bytes(gpu, op, g, which))
}

/// The tiled call of the one gradient `one` selects (`gpu::conv2d::split_backward`).
fn tiled<'a>(
    op: &'static str,
    g: &'a Conv2dGeometry,
    one: GradSelection,
) -> split_backward::Whole<'a> {
    let pass = if one.input {
        TiledGrad::InputGrad
    } else if one.weight {
        TiledGrad::WeightGrad
    } else {
        TiledGrad::BiasGrad
    };
    split_backward::Whole {
        op,
        g,
        pass,
        inner: None,
    }
}

/// The gradients selected by `which`, one at a time: each gradient's result stays while the
/// next is computed.
fn each_grad(which: GradSelection) -> impl Iterator<Item = GradSelection> {
    [
        (which.input, GradSelection::INPUT),
        (which.weight, GradSelection::WEIGHT),
        (which.bias, GradSelection::BIAS),
    ]
    .into_iter()
    .filter_map(|(on, one)| on.then_some(one))
}

/// The bytes of the one gradient `one` selects.
fn grad_bytes(gpu: &Gpu, g: &Conv2dGeometry, one: GradSelection) -> u64 {
    if one.input {
        memory::tensor_bytes(gpu, &g.input_shape())
    } else if one.weight {
        memory::tensor_bytes(gpu, &g.weight_shape())
    } else {
        memory::tensor_bytes(gpu, &[g.out_channels])
    }
}

/// [`crate::gpu::Gpu::memory_required`] for the conv2d gradients.
pub(crate) fn backward_memory(
    gpu: &Gpu,
    input: [usize; 4],
    weight: [usize; 4],
    params: &Conv2dParams,
    which: GradSelection,
) -> Result<MemoryEstimate> {
    const OP: &str = "conv2d_backward";
    let g = params.geometry(OP, input, weight, None)?;
    let output_bytes = each_grad(which).map(|one| grad_bytes(gpu, &g, one)).sum();
    let avail = gpu.memory_available();
    if !must_split(gpu, OP, &g, which, avail)? {
        return Ok(MemoryEstimate {
            peak_bytes: whole_bytes(gpu, OP, &g, which)?,
            output_bytes,
            pieces: 1,
        });
    }
    let mut ledger = Ledger::default();
    let mut pieces = 0;
    for one in each_grad(which) {
        let left = ledger.left(avail);
        let (peak, n) = if must_split(gpu, OP, &g, one, left)? {
            tiled(OP, &g, one).peak(gpu, left)?
        } else {
            (whole_bytes(gpu, OP, &g, one)?, 1)
        };
        ledger.call(peak, grad_bytes(gpu, &g, one));
        pieces += n;
    }
    Ok(MemoryEstimate {
        peak_bytes: ledger.peak(),
        output_bytes,
        pieces,
    })
}

/// [`crate::gpu::Gpu::memory_required`] for conv_transpose2d.
pub(crate) fn transpose_memory(
    gpu: &Gpu,
    input: [usize; 4],
    weight: [usize; 4],
    has_bias: bool,
    params: &ConvTranspose2dParams,
) -> Result<MemoryEstimate> {
    const OP: &str = "conv_transpose2d";
    let bias_len = has_bias.then(|| params.layout.logical_weight(weight)[1] * params.groups);
    let g = params.geometry(OP, input, weight, bias_len)?;
    let output_bytes = memory::tensor_bytes(gpu, &g.input_shape());
    let tiled = transposed(&g, has_bias);
    let avail = gpu.memory_available();
    let (peak_bytes, pieces) = if tiled.needs_split(gpu, avail)? {
        tiled.peak(gpu, avail)?
    } else {
        (transpose_whole_bytes(gpu, &g, has_bias)?, 1)
    };
    Ok(MemoryEstimate {
        peak_bytes,
        output_bytes,
        pieces,
    })
}

/// conv_transpose2d of `g` as a tiled call (`gpu::conv2d::split_backward`).
fn transposed(g: &Conv2dGeometry, bias: bool) -> split_backward::Whole<'_> {
    split_backward::Whole {
        op: "conv_transpose2d",
        g,
        pass: TiledGrad::Transpose { bias },
        inner: None,
    }
}

/// The peak bytes of conv_transpose2d unsplit: its output, then the input-gradient plan.
pub(crate) fn transpose_whole_bytes(gpu: &Gpu, g: &Conv2dGeometry, has_bias: bool) -> Result<u64> {
    const OP: &str = "conv_transpose2d";
    let plans = variant::candidates(gpu, OP, ConvPass::InputGrad, g)?
        .into_iter()
        .map(|v| plan_input_with(gpu, OP, g, has_bias, v));
    Ok(memory::tensor_bytes(gpu, &g.input_shape()) + memory::most_plan_bytes(gpu, OP, plans)?)
}

/// Every conv2d gradient entry point lands here. Shapes come from tensors where the caller has
/// them and from explicit shapes otherwise; all validation and planning happens before the
/// first buffer is created.
#[allow(clippy::too_many_arguments)]
fn backward(
    op: &'static str,
    input_shape: [usize; 4],
    input: Option<&GpuTensor>,
    weight_shape: Option<[usize; 4]>,
    weight: Option<&GpuTensor>,
    grad_output: &GpuTensor,
    params: &Conv2dParams,
    which: GradSelection,
) -> Result<Conv2dGrads<GpuTensor, GpuTensor>> {
    let gpu = grad_output.gpu();
    let tensors: Vec<&GpuTensor> = [input, weight].into_iter().flatten().collect();
    check_same_gpu(gpu, op, &tensors)?;
    for (name, t) in [("input", input), ("weight", weight)] {
        if let Some(t) = t {
            dims4(op, name, t, params.layout)?;
        }
    }
    let weight_shape = match (weight_shape, weight) {
        (Some(s), _) => s,
        (None, Some(w)) => dims4(op, "weight", w, params.layout)?,
        (None, None) => unreachable!("callers pass a weight or its shape"),
    };
    let g = params.backward_geometry(
        op,
        input_shape,
        weight_shape,
        dims4(op, "grad_output", grad_output, params.layout)?,
    )?;
    if must_split(gpu, op, &g, which, gpu.memory_available())? {
        return backward_split(op, &g, input, weight, grad_output, which);
    }
    backward_whole(op, &g, input, weight, grad_output, which, KeepWeights::Yes)
}

/// The gradients `which` of `g` unsplit: every dispatch planned (and every size checked)
/// before the first buffer is created, then all of them in one submission.
fn backward_whole(
    op: &'static str,
    g: &Conv2dGeometry,
    input: Option<&GpuTensor>,
    weight: Option<&GpuTensor>,
    grad_output: &GpuTensor,
    which: GradSelection,
    keep: KeepWeights,
) -> Result<Conv2dGrads<GpuTensor, GpuTensor>> {
    let gpu = grad_output.gpu();
    let layout = g.layout;
    let ready = |plan: Result<Plan>| ReadyPlan::new(gpu, op, plan?);
    let dx_plan = which
        .input
        .then(|| ready(plan_input(gpu, op, g, false)))
        .transpose()?;
    let dw_plan = which
        .weight
        .then(|| ready(plan_weight(gpu, op, g)))
        .transpose()?;
    let db_plan = which
        .bias
        .then(|| ready(plan_bias(gpu, op, g)))
        .transpose()?;

    check_whole(op, &[("grad_output", grad_output)])?;
    for (name, t) in [("input", input), ("weight", weight)] {
        if let Some(t) = t {
            check_whole(op, &[(name, t)])?;
        }
    }
    gpu.capture(op, || -> Result<Conv2dGrads<GpuTensor, GpuTensor>> {
        let placeholder = &gpu.inner.placeholder;
        let dy = grad_output.first_buffer();
        let outputs = [
            (&dx_plan, g.input_shape().to_vec()),
            (&dw_plan, g.weight_shape().to_vec()),
            (&db_plan, vec![g.out_channels]),
        ]
        .map(|(plan, shape)| {
            plan.as_ref()
                .map(|p| -> Result<_> {
                    Ok((
                        GpuTensor::uninit(gpu, op, &shape, layout)?,
                        p.scratch(gpu, op, weight.filter(|_| keep == KeepWeights::Yes))?,
                    ))
                })
                .transpose()
        });
        let [dx, dw, db] = outputs;
        let (dx, dw, db) = (dx?, dw?, db?);
        for (name, out) in [
            ("grad_input", &dx),
            ("grad_weight", &dw),
            ("grad_bias", &db),
        ] {
            if let Some((t, _)) = out {
                check_whole(op, &[(name, t)])?;
            }
        }
        let mut copies = Vec::new();
        let mut dispatches = Vec::new();
        for (plan, out) in [(&dx_plan, &dx), (&dw_plan, &dw), (&db_plan, &db)] {
            if let (Some(plan), Some((output, scratch))) = (plan, out) {
                let resolve = |operand| match operand {
                    Operand::Input => input.expect("dw needs the input tensor").first_buffer(),
                    Operand::Weight => weight.expect("dx needs the weight tensor").first_buffer(),
                    Operand::GradOutput => dy,
                    Operand::Output => output.first_buffer(),
                    _ => placeholder,
                };
                // The copies read only the call's tensors, so they may all go first.
                copies.extend(plan.copies(scratch, resolve));
                dispatches.extend(plan.dispatches(scratch, resolve));
            }
        }
        submit_after_copies(gpu, op, &copies, &dispatches)?;
        drop((copies, dispatches));
        // wgpu keeps the scratch buffers alive until the submitted work is done.
        let mut results = [dx, dw, db].map(|out| {
            out.map(|(t, scratch)| {
                scratch.finish(gpu);
                t
            })
        });
        Ok(Conv2dGrads {
            input: results[0].take(),
            weight: results[1].take(),
            bias: results[2].take(),
        })
    })?
}

/// dx of `g` unsplit, for a tile of a split call.
pub(crate) fn input_grad_whole(
    op: &'static str,
    g: &Conv2dGeometry,
    weight: &GpuTensor,
    grad_output: &GpuTensor,
) -> Result<GpuTensor> {
    let grads = backward_whole(
        op,
        g,
        None,
        Some(weight),
        grad_output,
        GradSelection::INPUT,
        KeepWeights::No,
    )?;
    Ok(grads.input.expect("requested"))
}

/// dw of `g` unsplit, for a tile of a split call.
pub(crate) fn weight_grad_whole(
    op: &'static str,
    g: &Conv2dGeometry,
    input: &GpuTensor,
    grad_output: &GpuTensor,
) -> Result<GpuTensor> {
    let grads = backward_whole(
        op,
        g,
        Some(input),
        None,
        grad_output,
        GradSelection::WEIGHT,
        KeepWeights::No,
    )?;
    Ok(grads.weight.expect("requested"))
}

/// db of `g` unsplit, for a tile of a split call.
pub(crate) fn bias_grad_whole(
    op: &'static str,
    g: &Conv2dGeometry,
    grad_output: &GpuTensor,
) -> Result<GpuTensor> {
    let grads = backward_whole(
        op,
        g,
        None,
        None,
        grad_output,
        GradSelection::BIAS,
        KeepWeights::No,
    )?;
    Ok(grads.bias.expect("requested"))
}

/// [`backward`] for work past the binding limit or the budget: each requested gradient on its
/// own, whole if it fits (the budget counting the ones already made), else in tiles
/// (`gpu::conv2d::split_backward`).
fn backward_split(
    op: &'static str,
    g: &Conv2dGeometry,
    input: Option<&GpuTensor>,
    weight: Option<&GpuTensor>,
    grad_output: &GpuTensor,
    which: GradSelection,
) -> Result<Conv2dGrads<GpuTensor, GpuTensor>> {
    let gpu = grad_output.gpu();
    let mut grads = Conv2dGrads {
        input: None,
        weight: None,
        bias: None,
    };
    for one in each_grad(which) {
        let split = must_split(gpu, op, g, one, gpu.memory_available())?;
        if !split {
            let whole = backward_whole(op, g, input, weight, grad_output, one, KeepWeights::No)?;
            grads.input = grads.input.or(whole.input);
            grads.weight = grads.weight.or(whole.weight);
            grads.bias = grads.bias.or(whole.bias);
            continue;
        }
        let tiles = tiled(op, g, one);
        if one.input {
            let weight = weight.expect("dx needs the weight tensor");
            grads.input = Some(tiles.run_input(grad_output, weight, None)?);
        } else if one.weight {
            grads.weight = Some(tiles.run_sum(input, grad_output)?);
        } else {
            grads.bias = Some(tiles.run_sum(None, grad_output)?);
        }
    }
    Ok(grads)
}

/// The gradients of conv2d selected by `which`, from the forward `input` and `weight` and the
/// upstream gradient `grad_output` (same `params` as the forward call). All requested gradients
/// are encoded in one submit; nothing waits.
pub fn conv2d_backward(
    input: &GpuTensor,
    weight: &GpuTensor,
    grad_output: &GpuTensor,
    params: &Conv2dParams,
    which: GradSelection,
) -> Result<Conv2dGrads<GpuTensor, GpuTensor>> {
    const OP: &str = "conv2d_backward";
    backward(
        OP,
        dims4(OP, "input", input, params.layout)?,
        Some(input),
        None,
        Some(weight),
        grad_output,
        params,
        which,
    )
}

/// Gradient of conv2d with respect to its input (PyTorch's `conv2d_input`): `input_shape` is the
/// forward input's `[N, C_in, H, W]`.
pub fn conv2d_backward_input(
    input_shape: [usize; 4],
    weight: &GpuTensor,
    grad_output: &GpuTensor,
    params: &Conv2dParams,
) -> Result<GpuTensor> {
    let grads = backward(
        "conv2d_backward_input",
        input_shape,
        None,
        None,
        Some(weight),
        grad_output,
        params,
        GradSelection::INPUT,
    )?;
    Ok(grads.input.expect("requested"))
}

/// Gradient of conv2d with respect to its weights (PyTorch's `conv2d_weight`): `weight_shape` is
/// `[C_out, C_in/groups, kh, kw]`.
pub fn conv2d_backward_weight(
    input: &GpuTensor,
    weight_shape: [usize; 4],
    grad_output: &GpuTensor,
    params: &Conv2dParams,
) -> Result<GpuTensor> {
    const OP: &str = "conv2d_backward_weight";
    let grads = backward(
        OP,
        dims4(OP, "input", input, params.layout)?,
        Some(input),
        Some(weight_shape),
        None,
        grad_output,
        params,
        GradSelection::WEIGHT,
    )?;
    Ok(grads.weight.expect("requested"))
}

/// Gradient of conv2d with respect to its bias: `grad_output` (stored in `layout`) summed over
/// N, OH and OW, with the same blocked reduction as the weight gradient.
pub fn conv2d_backward_bias(grad_output: &GpuTensor, layout: Layout) -> Result<GpuTensor> {
    const OP: &str = "conv2d_backward_bias";
    let shape = dims4(OP, "grad_output", grad_output, layout)?;
    let [_, c, _, _] = layout.logical_activation(shape);
    // Any conv whose output has grad_output's shape will do; a depthwise 1x1 one keeps it.
    let weight_shape = layout.weight_shape([c, 1, 1, 1]);
    let params = Conv2dParams::default().with_groups(c).with_layout(layout);
    params.geometry(OP, shape, weight_shape, None)?;
    let grads = backward(
        OP,
        shape,
        None,
        Some(weight_shape),
        None,
        grad_output,
        &params,
        GradSelection::BIAS,
    )?;
    Ok(grads.bias.expect("requested"))
}

/// Transposed convolution (PyTorch's `conv_transpose2d`): `input` `[N, C_in, H, W]`, `weight`
/// `[C_in, C_out/groups, kh, kw]`, optional `bias` of length C_out. It runs the input-gradient
/// kernel of the matching conv2d on `input`.
pub fn conv_transpose2d(
    input: &GpuTensor,
    weight: &GpuTensor,
    bias: Option<&GpuTensor>,
    params: &ConvTranspose2dParams,
) -> Result<GpuTensor> {
    const OP: &str = "conv_transpose2d";
    let gpu = input.gpu();
    let layout = params.layout;
    let (input_shape, weight_shape, bias_len) = conv_operands(OP, input, weight, bias, layout)?;
    let g = params.geometry(OP, input_shape, weight_shape, bias_len)?;
    let tiled = transposed(&g, bias.is_some());
    if tiled.needs_split(gpu, gpu.memory_available())? {
        return tiled.run_input(input, weight, bias);
    }
    transpose_whole(input, weight, bias, &g, KeepWeights::Yes)
}

/// conv_transpose2d of `g` unsplit (`input` is grad_output of the conv `g` describes).
pub(crate) fn transpose_whole(
    input: &GpuTensor,
    weight: &GpuTensor,
    bias: Option<&GpuTensor>,
    g: &Conv2dGeometry,
    keep: KeepWeights,
) -> Result<GpuTensor> {
    const OP: &str = "conv_transpose2d";
    let gpu = input.gpu();
    let layout = g.layout;
    let plan = ReadyPlan::new(gpu, OP, plan_input(gpu, OP, g, bias.is_some())?)?;
    let operands = ConvOperands {
        source_role: Operand::GradOutput,
        source: input,
        weight,
        bias,
    };
    run_into_output(gpu, OP, &plan, operands, &g.input_shape(), layout, keep)
}
