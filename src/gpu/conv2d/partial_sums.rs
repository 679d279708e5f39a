//! Sums of several results of one shape, added on the device in a fixed order: the weight and bias gradients of a split call, whose pieces each give a partial sum.
//!
//! The parts are copied into rows of a partials tensor and added by the blocked reductions'
//! second pass (`reduce_partials`), the running sum first, so the sum is
//! `((p0 + p1 + ..) + pk + ..)` on every run: reproducible, though not bitwise equal to an
//! unsplit sum, whose blocks fall differently. A pass adds as many rows as one binding holds.

use crate::error::{too_large, Result};
use crate::gpu::plan::memory::{self, Ledger};
use crate::gpu::split::copy;
use crate::gpu::{Gpu, GpuTensor};
use crate::params::Layout;

/// Rows of partial sums one pass may add: what one binding holds, at most `count` (the
/// running sum counting as one); `Err` when fewer than two fit and there is more than one part.
pub(crate) fn most_rows(gpu: &Gpu, op: &'static str, len: usize, count: usize) -> Result<usize> {
    let limit = gpu.max_storage_binding();
    let rows = (limit / (len as u64 * 4).max(1)).min(count as u64) as usize;
    if rows < 2 && count > 1 {
        return Err(too_large(
            op,
            format!(
                "the {len}-element result must be summed over {count} parts, but two rows of it \
                 ({} bytes) do not fit the storage binding limit of {limit} bytes",
                len as u64 * 8
            ),
        ));
    }
    Ok(rows)
}

/// The peak bytes of [`sum_in_order`] over `count` parts whose own peaks are `part(k)` (each
/// leaving only its result, dropped once copied), `rows` rows a pass, into `result_shape`.
pub(crate) fn peak(
    gpu: &Gpu,
    count: usize,
    rows: usize,
    result_shape: &[usize],
    part: &dyn Fn(usize) -> Result<u64>,
) -> Result<u64> {
    if count == 1 {
        return part(0);
    }
    let result = memory::tensor_bytes(gpu, result_shape);
    let len: usize = result_shape.iter().product();
    let mut ledger = Ledger::default();
    let mut has_sum = false;
    let mut k = 0;
    while k < count {
        let first = usize::from(has_sum);
        let take = (rows - first).min(count - k);
        let partials = memory::tensor_bytes(gpu, &[first + take, len]);
        ledger.alloc(partials);
        for j in 0..take {
            ledger.call(part(k + j)?, 0);
        }
        ledger.call(
            result + memory::uniform_bytes(gpu, crate::gpu::conv2d::uniforms::CONV_UNIFORMS),
            result,
        );
        if has_sum {
            ledger.free(result);
        }
        ledger.free(partials);
        has_sum = true;
        k += take;
    }
    Ok(ledger.peak())
}

/// The sum of `part(0) .. part(count - 1)` (each a tensor of `result_shape`), added in that
/// order, `rows` rows a pass (at least 2 when `count > 1`, see [`most_rows`]).
pub(crate) fn sum_in_order(
    gpu: &Gpu,
    op: &'static str,
    count: usize,
    rows: usize,
    result_shape: &[usize],
    layout: Layout,
    mut part: impl FnMut(usize) -> Result<GpuTensor>,
) -> Result<GpuTensor> {
    if count == 1 {
        return part(0);
    }
    let len: usize = result_shape.iter().product();
    let mut sum: Option<GpuTensor> = None;
    let mut k = 0;
    while k < count {
        let first = usize::from(sum.is_some());
        let take = (rows - first).min(count - k);
        let partials = gpu.capture(op, || {
            GpuTensor::uninit(gpu, op, &[first + take, len], layout)
        })??;
        if let Some(sum) = &sum {
            copy::copy_flat(gpu, op, sum, 0, &partials, 0, len)?;
        }
        for j in 0..take {
            copy::copy_flat(gpu, op, &part(k + j)?, 0, &partials, (first + j) * len, len)?;
        }
        sum = Some(add_rows(
            gpu,
            op,
            &partials,
            first + take,
            result_shape,
            layout,
        )?);
        k += take;
    }
    Ok(sum.expect("count > 1, so at least one pass ran"))
}

/// `result[i] = sum over b in row order of partials[b][i]`, with the blocked reductions'
/// second pass (`reduce_partials`).
fn add_rows(
    gpu: &Gpu,
    op: &'static str,
    partials: &GpuTensor,
    rows: usize,
    result_shape: &[usize],
    layout: Layout,
) -> Result<GpuTensor> {
    use crate::gpu::kernels::Kernel;
    use crate::gpu::runtime::dispatch::DispatchGrid;
    use crate::gpu::runtime::launch::{submit, Dispatch, Resource};
    let len: usize = result_shape.iter().product();
    let grid = DispatchGrid::for_invocations(
        op,
        len as u64,
        gpu.limits().max_compute_workgroups_per_dimension,
    )?;
    let uniforms = crate::gpu::conv2d::uniforms::Conv2dUniforms {
        invocations: grid.invocations,
        blocks: rows as u32,
        reduce_segment: rows as u32,
        reduce_len: len as u32,
        ..Default::default()
    };
    let kernel = Kernel::ReducePartials.compiled(gpu, op)?;
    crate::gpu::runtime::launch::check_whole(op, &[("partial sums", partials)])?;
    gpu.capture(op, || -> Result<GpuTensor> {
        let result = GpuTensor::uninit(gpu, op, result_shape, layout)?;
        crate::gpu::runtime::launch::check_whole(op, &[("reduced sum", &result)])?;
        let ph = &gpu.inner.placeholder;
        submit(
            gpu,
            op,
            &[Dispatch {
                kernel: &kernel,
                label: Kernel::ReducePartials.entry_point(),
                uniforms: bytemuck::bytes_of(&uniforms),
                resources: Resource::buffers([
                    partials.first_buffer(),
                    ph,
                    ph,
                    result.first_buffer(),
                ]),
                grid,
            }],
        )?;
        Ok(result)
    })?
}
