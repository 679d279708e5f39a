//! Work past the storage-binding limit: an op on batch-major tensors runs on chunks of the batch, each chunk's inputs copied out and its output copied back into place.
//!
//! A tensor larger than one binding may hold (128 MiB on lavapipe and most WebGPU devices)
//! can still live in one buffer (up to `max_buffer_size`); only a kernel cannot bind it whole.
//! So the host picks the largest number of samples whose inputs and output each fit one
//! binding, copies those samples of every input into pooled chunk tensors, runs the op on them
//! (which then fits), and copies the chunk's output into its place. Samples are independent in
//! these ops, so the result equals the unsplit one bit for bit. Copies need only 4-byte
//! alignment, so any shape works; binding sub-ranges instead would need 256-byte-aligned
//! offsets. Everything is enqueued in order on one queue, so chunk buffers are reused safely
//! (see `gpu::pool`), and nothing waits.
//!
//! The weight and bias gradients sum over the batch: each chunk's gradient is copied into a
//! row of partial sums, which the blocked reductions' second pass adds in chunk order.
//!
//! Pooling indices are per sample, so their chunks are copied like values (with their origin
//! rebased) and the assembled tensor is valid for the whole batch.
//!
//! Chunks are sized by the memory budget too: each op passes its unsplit peak for a given
//! number of samples (`gpu::memory`), and a chunk's copies plus that peak must fit what the
//! budget leaves. conv2d and max pooling split within a sample as well (`gpu::split_conv`,
//! `gpu::split_pool`), through `coarsest_cut` here.

use crate::error::{too_large, Error, Result};
use crate::gpu::memory::{self, Ledger};
use crate::gpu::{Gpu, GpuTensor};

/// A batch-major operand of a split call, by name and shape (batch first).
pub(crate) type Named<'a> = (&'a str, &'a [usize]);

/// True when a tensor of any of `shapes` (f32 or u32 elements) exceeds one storage binding, or
/// when the call unsplit (`whole_bytes` at its peak) would pass the memory budget;
/// `whole_bytes` is asked only when the bindings fit and a budget is set.
/// `avail` is what the budget leaves (`Gpu::memory_available`, less what an estimate has
/// already counted).
pub(crate) fn needed(
    gpu: &Gpu,
    shapes: &[&[usize]],
    avail: Option<u64>,
    whole_bytes: impl FnOnce() -> Result<u64>,
) -> Result<bool> {
    let limit = gpu.max_storage_binding();
    if shapes.iter().any(|shape| bytes(shape) > limit) {
        return Ok(true);
    }
    match avail {
        Some(avail) => Ok(whole_bytes()? > avail),
        None => Ok(false),
    }
}

pub(crate) fn bytes(shape: &[usize]) -> u64 {
    shape
        .iter()
        .try_fold(4u64, |acc, &d| acc.checked_mul(d as u64))
        .unwrap_or(u64::MAX)
}

/// `shape` with its batch (first dimension) set to `nb`.
fn with_batch(shape: &[usize], nb: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    s[0] = nb;
    s
}

/// The peak of one chunk of `nb` samples: the copies of its inputs, then the op on them
/// (`inner`, the unsplit call's peak for `nb` samples).
fn chunk_peak(
    gpu: &Gpu,
    inputs: &[Named],
    nb: usize,
    inner: &dyn Fn(usize) -> Result<u64>,
) -> Result<u64> {
    let slices: u64 = inputs
        .iter()
        .map(|(_, shape)| memory::tensor_bytes(gpu, &with_batch(shape, nb)))
        .sum();
    Ok(slices + inner(nb)?)
}

/// The most samples per chunk such that every input (named, batch-major) and one sample of
/// each output (batch-major) fit one binding, and a chunk's peak (`peak(nb)`) fits `avail`
/// bytes of the budget; at most the batch, and fewer than it (else there is nothing to split).
fn samples_per_chunk(
    gpu: &Gpu,
    op: &'static str,
    inputs: &[Named],
    outputs: &[&[usize]],
    batch: usize,
    avail: Option<u64>,
    peak: impl Fn(usize) -> Result<u64>,
) -> Result<usize> {
    let limit = gpu.max_storage_binding();
    let mut samples = batch;
    let named_shapes = inputs
        .iter()
        .copied()
        .chain(outputs.iter().map(|s| ("output", *s)));
    for (name, shape) in named_shapes {
        let per_sample = bytes(&shape[1..]);
        if per_sample > limit {
            return Err(too_large(
                op,
                format!(
                    "one sample of {name} (shape {shape:?}) is {per_sample} bytes, above the \
                     storage binding limit of {limit} bytes (the device's \
                     max_storage_buffer_binding_size, or Gpu::limit_storage_binding), and this \
                     op splits over the batch only"
                ),
            ));
        }
        samples = samples.min((limit / per_sample) as usize);
    }
    if let Some(avail) = avail {
        samples = largest_fitting(samples.max(1), avail, &peak)?.ok_or_else(|| {
            let one = peak(1).map_or_else(|e| e.to_string(), |b| format!("{b} bytes"));
            Error::OutOfMemory {
                op,
                message: format!(
                    "even one sample at a time needs {one} of device memory, but the memory \
                     budget leaves {avail} bytes beside the buffers in use"
                ),
            }
        })?;
    }
    if samples >= batch {
        // Every tensor named here fits whole, so the one past the limit is not batch-major:
        // splitting would call the op on the same sizes again, forever.
        return Err(too_large(
            op,
            format!("a tensor past the storage binding limit of {limit} bytes cannot be split over the batch"),
        ));
    }
    Ok(samples.max(1))
}

/// The largest `n` in `1..=most` with `peak(n) <= avail` (peaks grow with `n`), or `None`.
pub(crate) fn largest_fitting(
    most: usize,
    avail: u64,
    peak: &dyn Fn(usize) -> Result<u64>,
) -> Result<Option<usize>> {
    largest_where(most, &|n| Ok(peak(n)? <= avail))
}

/// The largest `n` in `1..=most` for which `fits(n)` holds (it holds for all smaller `n`
/// too), or `None` when it does not hold for 1.
pub(crate) fn largest_where(
    most: usize,
    fits: &dyn Fn(usize) -> Result<bool>,
) -> Result<Option<usize>> {
    if most == 0 || !fits(1)? {
        return Ok(None);
    }
    let (mut lo, mut hi) = (1, most);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid)? {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(Some(lo))
}

/// Samples, channels and rows per tile of a split within samples (the last tile along each
/// may be smaller).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cut {
    pub samples: usize,
    pub channels: usize,
    pub rows: usize,
}

/// The result of `check` for the coarsest cut of `whole` (the call's batch, channels and rows)
/// it accepts, tried in this order: fewer samples per tile, then bands of rows of one sample,
/// then ranges of channels (only when `split_channels`) with bands of rows; the error of the
/// finest cut when it accepts none.
pub(crate) fn coarsest_cut<T>(
    whole: Cut,
    split_channels: bool,
    check: &dyn Fn(Cut) -> Result<T>,
) -> Result<T> {
    let fits = |cut: Cut| Ok(check(cut).is_ok());
    let Cut {
        samples: batch,
        channels,
        rows,
    } = whole;
    let cut = |samples, channels, rows| Cut {
        samples,
        channels,
        rows,
    };
    if let Some(n) = largest_where(batch, &|n| fits(cut(n, channels, rows)))? {
        return check(cut(n, channels, rows));
    }
    if let Some(r) = largest_where(rows, &|r| fits(cut(1, channels, r)))? {
        return check(cut(1, channels, r));
    }
    let c = if split_channels {
        largest_where(channels, &|c| fits(cut(1, c, 1)))?.unwrap_or(1)
    } else {
        channels
    };
    let r = largest_where(rows, &|r| fits(cut(1, c, r)))?.unwrap_or(1);
    check(cut(1, c, r))
}

/// The error for a call that must split but cannot: a `TooLarge` from its finest cut, prefixed
/// by which of the call's whole tensors (`named`) are past the binding limit; any other error
/// (the budget's `OutOfMemory`) as it is.
pub(crate) fn unsplittable(gpu: &Gpu, op: &'static str, named: &[Named], finest: Error) -> Error {
    let Error::TooLarge { what, .. } = finest else {
        return finest;
    };
    let limit = gpu.max_storage_binding();
    let past: Vec<String> = named
        .iter()
        .filter(|(_, shape)| bytes(shape) > limit)
        .map(|(name, shape)| format!("{name} of shape {shape:?} is {} bytes", bytes(shape)))
        .collect();
    let past = if past.is_empty() {
        "the call does not fit unsplit".to_string()
    } else {
        format!(
            "{}, above the storage binding limit of {limit} bytes (the device's \
             max_storage_buffer_binding_size, or Gpu::limit_storage_binding)",
            past.join(", ")
        )
    };
    too_large(op, format!("{past}, and it cannot be split: {what}"))
}

/// The chunk sizes a batch of `batch` cut into chunks of `samples` has: the full ones and the
/// remainder (whose smaller geometry may plan differently).
fn chunk_sizes(batch: usize, samples: usize) -> Vec<usize> {
    let mut sizes = vec![samples.min(batch)];
    if !batch.is_multiple_of(samples) && batch > samples {
        sizes.push(batch % samples);
    }
    sizes
}

/// The peak bytes of [`over_batch_into`] on `inputs`, with outputs of `outputs` (allocated
/// first) and `inner(nb)` the op's unsplit peak on `nb` samples, when `avail` bytes of the
/// budget are left before the call; and the number of chunks.
pub(crate) fn over_batch_peak(
    gpu: &Gpu,
    op: &'static str,
    inputs: &[Named],
    outputs: &[&[usize]],
    avail: Option<u64>,
    inner: &dyn Fn(usize) -> Result<u64>,
) -> Result<(u64, usize)> {
    let out_bytes: u64 = outputs.iter().map(|s| memory::tensor_bytes(gpu, s)).sum();
    let avail = avail.map(|a| a.saturating_sub(out_bytes));
    let batch = outputs[0][0];
    let samples = samples_per_chunk(gpu, op, inputs, outputs, batch, avail, |nb| {
        chunk_peak(gpu, inputs, nb, inner)
    })?;
    let mut worst = 0;
    for nb in chunk_sizes(batch, samples) {
        worst = worst.max(chunk_peak(gpu, inputs, nb, inner)?);
    }
    Ok((out_bytes + worst, batch.div_ceil(samples)))
}

/// Runs `run` on chunks of the batch of `inputs` (named, batch-major, all of batch N) and
/// assembles an output of `output_shape` (batch-major, batch N) from the chunks' outputs.
/// `inner(nb)` is the op's unsplit peak on `nb` samples, to size chunks by the budget.
pub(crate) fn over_batch(
    gpu: &Gpu,
    op: &'static str,
    inputs: &[(&str, &GpuTensor)],
    output_shape: &[usize],
    inner: &dyn Fn(usize) -> Result<u64>,
    run: impl Fn(&[GpuTensor]) -> Result<GpuTensor>,
) -> Result<GpuTensor> {
    let layout = inputs
        .first()
        .map_or(crate::Layout::Nchw, |(_, t)| t.layout());
    let output = gpu.capture(op, || GpuTensor::uninit(gpu, op, output_shape, layout))??;
    over_batch_into(gpu, op, inputs, &[&output], inner, |chunks| {
        Ok(vec![run(chunks)?])
    })?;
    Ok(output)
}

/// [`over_batch`] for ops with several outputs, created by the caller (batch-major, batch N):
/// `run` returns the chunk's outputs in the same order.
pub(crate) fn over_batch_into(
    gpu: &Gpu,
    op: &'static str,
    inputs: &[(&str, &GpuTensor)],
    outputs: &[&GpuTensor],
    inner: &dyn Fn(usize) -> Result<u64>,
    run: impl Fn(&[GpuTensor]) -> Result<Vec<GpuTensor>>,
) -> Result<()> {
    let batch = outputs[0].shape()[0];
    let named: Vec<Named> = inputs.iter().map(|(n, t)| (*n, t.shape())).collect();
    let output_shapes: Vec<&[usize]> = outputs.iter().map(|t| t.shape()).collect();
    // The outputs exist already, so what the budget leaves now is what the chunks may use.
    let samples = samples_per_chunk(
        gpu,
        op,
        &named,
        &output_shapes,
        batch,
        gpu.memory_available(),
        |nb| chunk_peak(gpu, &named, nb, inner),
    )?;
    let mut n0 = 0;
    while n0 < batch {
        let nb = samples.min(batch - n0);
        let chunks = inputs
            .iter()
            .map(|(_, t)| t.batch_slice(op, n0, nb))
            .collect::<Result<Vec<_>>>()?;
        for (result, out) in run(&chunks)?.iter().zip(outputs) {
            result.copy_into_batch(op, out, n0)?;
        }
        n0 += nb;
    }
    Ok(())
}

/// How [`sum_over_batch`] cuts its work: samples per chunk, and rows of partial sums added per
/// reduction pass (the running sum counts as one).
#[derive(Clone, Copy, Debug)]
struct SumCut {
    samples: usize,
    rows: usize,
}

/// Rows of partial sums one pass may add: what one binding holds, at most all chunks.
fn sum_rows(gpu: &Gpu, op: &'static str, len: usize, chunks: usize) -> Result<usize> {
    let limit = gpu.max_storage_binding();
    let rows = (limit / (len as u64 * 4)).min(chunks as u64) as usize;
    if rows < 2 && chunks > 1 {
        return Err(too_large(
            op,
            format!(
                "the {len}-element result must be summed over {chunks} chunks of the batch, but \
                 two rows of it do not fit the storage binding limit of {limit} bytes"
            ),
        ));
    }
    Ok(rows)
}

/// The peak bytes of [`sum_over_batch`] cut as `cut`, following its allocations in order.
fn sum_peak(
    gpu: &Gpu,
    inputs: &[Named],
    batch: usize,
    result_shape: &[usize],
    cut: SumCut,
    inner: &dyn Fn(usize) -> Result<u64>,
) -> Result<u64> {
    let chunks = batch.div_ceil(cut.samples);
    let result = memory::tensor_bytes(gpu, result_shape);
    let chunk = |k: usize| chunk_peak(gpu, inputs, cut.samples.min(batch - k * cut.samples), inner);
    if chunks == 1 {
        return chunk(0);
    }
    let len: usize = result_shape.iter().product();
    let mut ledger = Ledger::default();
    let mut has_sum = false;
    let mut k = 0;
    while k < chunks {
        let first = usize::from(has_sum);
        let take = (cut.rows - first).min(chunks - k);
        let partials = memory::tensor_bytes(gpu, &[first + take, len]);
        ledger.alloc(partials);
        for j in 0..take {
            // Each chunk's result stays only until it is copied into the partial sums.
            ledger.call(chunk(k + j)?, 0);
        }
        ledger.call(
            result + memory::uniform_bytes(gpu, memory::CONV_UNIFORMS),
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

/// How to cut [`sum_over_batch`]'s work, the same for the call and for its estimate.
fn sum_cut(
    gpu: &Gpu,
    op: &'static str,
    inputs: &[Named],
    batch: usize,
    result_shape: &[usize],
    avail: Option<u64>,
    inner: &dyn Fn(usize) -> Result<u64>,
) -> Result<SumCut> {
    let len: usize = result_shape.iter().product();
    let cut_for = |samples: usize| -> Result<SumCut> {
        let rows = sum_rows(gpu, op, len, batch.div_ceil(samples))?;
        Ok(SumCut { samples, rows })
    };
    // Chunks are sized by the inputs; the result does not grow with the batch.
    let samples = samples_per_chunk(gpu, op, inputs, &[&[batch]], batch, avail, |nb| {
        sum_peak(gpu, inputs, batch, result_shape, cut_for(nb)?, inner)
    })?;
    cut_for(samples)
}

/// The peak bytes of [`sum_over_batch`] (see [`over_batch_peak`]) and its number of chunks.
pub(crate) fn sum_over_batch_peak(
    gpu: &Gpu,
    op: &'static str,
    inputs: &[Named],
    batch: usize,
    result_shape: &[usize],
    avail: Option<u64>,
    inner: &dyn Fn(usize) -> Result<u64>,
) -> Result<(u64, usize)> {
    let cut = sum_cut(gpu, op, inputs, batch, result_shape, avail, inner)?;
    Ok((
        sum_peak(gpu, inputs, batch, result_shape, cut, inner)?,
        batch.div_ceil(cut.samples),
    ))
}

/// Runs `run` on chunks of the batch of `inputs` (batch-major, batch `batch`) and returns the
/// sum of the chunks' results (all of `result_shape`), added in chunk order on the device, so
/// the sum is the same on every run: the weight and bias gradients, which sum over the batch.
pub(crate) fn sum_over_batch(
    gpu: &Gpu,
    op: &'static str,
    inputs: &[(&str, &GpuTensor)],
    batch: usize,
    result_shape: &[usize],
    inner: &dyn Fn(usize) -> Result<u64>,
    run: impl Fn(&[GpuTensor]) -> Result<GpuTensor>,
) -> Result<GpuTensor> {
    let named: Vec<Named> = inputs.iter().map(|(n, t)| (*n, t.shape())).collect();
    let cut = sum_cut(
        gpu,
        op,
        &named,
        batch,
        result_shape,
        gpu.memory_available(),
        inner,
    )?;
    let samples = cut.samples;
    let chunks = batch.div_ceil(samples);
    let len: usize = result_shape.iter().product();
    let layout = inputs
        .first()
        .map_or(crate::Layout::Nchw, |(_, t)| t.layout());
    let chunk = |k: usize| -> Result<GpuTensor> {
        let n0 = k * samples;
        let nb = samples.min(batch - n0);
        let sliced = inputs
            .iter()
            .map(|(_, t)| t.batch_slice(op, n0, nb))
            .collect::<Result<Vec<_>>>()?;
        run(&sliced)
    };
    if chunks == 1 {
        return chunk(0);
    }
    // `rows` rows of partial sums: the running sum, then the next chunks' results, added in
    // that order, so the sum is ((c0 + c1 + ..) + ck + ..) on every run.
    let rows = cut.rows;
    let mut sum: Option<GpuTensor> = None;
    let mut k = 0;
    while k < chunks {
        let first = usize::from(sum.is_some());
        let take = (rows - first).min(chunks - k);
        let partials = gpu.capture(op, || {
            GpuTensor::uninit(gpu, op, &[first + take, len], layout)
        })??;
        if let Some(sum) = &sum {
            sum.copy_into_batch(op, &partials, 0)?;
        }
        for j in 0..take {
            chunk(k + j)?.copy_into_batch(op, &partials, first + j)?;
        }
        sum = Some(add_partials(
            gpu,
            op,
            &partials,
            first + take,
            len,
            result_shape,
            layout,
        )?);
        k += take;
    }
    Ok(sum.expect("at least one chunk"))
}

/// `result[i] = sum over b in block order of partials[b][i]`, with the blocked reductions'
/// second pass (`reduce_partials`).
fn add_partials(
    gpu: &Gpu,
    op: &'static str,
    partials: &GpuTensor,
    blocks: usize,
    len: usize,
    result_shape: &[usize],
    layout: crate::Layout,
) -> Result<GpuTensor> {
    use crate::gpu::dispatch::DispatchGrid;
    use crate::gpu::launch::{submit, Dispatch};
    use crate::gpu::pipelines::{compiled, Kernel};
    let grid = DispatchGrid::for_invocations(
        op,
        len as u64,
        gpu.limits().max_compute_workgroups_per_dimension,
    )?;
    let uniforms = crate::gpu::uniforms::Conv2dUniforms {
        invocations: grid.invocations,
        blocks: blocks as u32,
        reduce_len: len as u32,
        ..Default::default()
    };
    let kernel = compiled(gpu, op, Kernel::ReducePartials)?;
    gpu.capture(op, || -> Result<GpuTensor> {
        let result = GpuTensor::uninit(gpu, op, result_shape, layout)?;
        let ph = &gpu.inner.placeholder;
        submit(
            gpu,
            op,
            &[Dispatch {
                kernel: &kernel,
                label: Kernel::ReducePartials.entry_point(),
                uniforms: bytemuck::bytes_of(&uniforms),
                buffers: vec![partials.buffer(), ph, ph, result.buffer()],
                grid,
            }],
        )?;
        Ok(result)
    })?
}
