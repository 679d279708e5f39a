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
//! Not split yet: a single sample past the limit (that needs channel or row splits with a
//! halo), and tensors past `max_buffer_size`.

use crate::error::{too_large, Result};
use crate::gpu::{Gpu, GpuTensor};

/// True when a tensor of any of `shapes` (f32 or u32 elements) exceeds one storage binding.
pub(crate) fn needed(gpu: &Gpu, shapes: &[&[usize]]) -> bool {
    let limit = gpu.max_storage_binding();
    shapes.iter().any(|shape| bytes(shape) > limit)
}

fn bytes(shape: &[usize]) -> u64 {
    shape
        .iter()
        .try_fold(4u64, |acc, &d| acc.checked_mul(d as u64))
        .unwrap_or(u64::MAX)
}

/// The most samples per chunk such that every input (named, batch-major) and one sample of
/// `output_shape` (batch-major) fit one binding, at most the batch.
fn samples_per_chunk(
    gpu: &Gpu,
    op: &'static str,
    inputs: &[(&str, &GpuTensor)],
    output_shape: &[usize],
    batch: usize,
) -> Result<usize> {
    let limit = gpu.max_storage_binding();
    let mut samples = batch;
    let named_shapes = inputs
        .iter()
        .map(|(name, t)| (*name, t.shape()))
        .chain(std::iter::once(("output", output_shape)));
    for (name, shape) in named_shapes {
        let per_sample = bytes(&shape[1..]);
        if per_sample > limit {
            return Err(too_large(
                op,
                format!(
                    "one sample of {name} (shape {shape:?}) is {per_sample} bytes, above the \
                     storage binding limit of {limit} bytes (the device's \
                     max_storage_buffer_binding_size, or Gpu::limit_storage_binding); wgconv \
                     splits work over the batch only, not within a sample"
                ),
            ));
        }
        samples = samples.min((limit / per_sample) as usize);
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

/// Runs `run` on chunks of the batch of `inputs` (named, batch-major, all of batch N) and
/// assembles an output of `output_shape` (batch-major, batch N) from the chunks' outputs.
pub(crate) fn over_batch(
    gpu: &Gpu,
    op: &'static str,
    inputs: &[(&str, &GpuTensor)],
    output_shape: &[usize],
    run: impl Fn(&[GpuTensor]) -> Result<GpuTensor>,
) -> Result<GpuTensor> {
    let layout = inputs
        .first()
        .map_or(crate::Layout::Nchw, |(_, t)| t.layout());
    let output = gpu.capture(op, || GpuTensor::uninit(gpu, op, output_shape, layout))??;
    over_batch_into(gpu, op, inputs, &[&output], |chunks| Ok(vec![run(chunks)?]))?;
    Ok(output)
}

/// [`over_batch`] for ops with several outputs, created by the caller (batch-major, batch N):
/// `run` returns the chunk's outputs in the same order.
pub(crate) fn over_batch_into(
    gpu: &Gpu,
    op: &'static str,
    inputs: &[(&str, &GpuTensor)],
    outputs: &[&GpuTensor],
    run: impl Fn(&[GpuTensor]) -> Result<Vec<GpuTensor>>,
) -> Result<()> {
    let batch = outputs[0].shape()[0];
    let mut samples = batch;
    for out in outputs {
        samples = samples.min(samples_per_chunk(gpu, op, inputs, out.shape(), batch)?);
    }
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

/// Runs `run` on chunks of the batch of `inputs` (batch-major, batch `batch`) and returns the
/// sum of the chunks' results (all of `result_shape`), added in chunk order on the device, so
/// the sum is the same on every run: the weight and bias gradients, which sum over the batch.
pub(crate) fn sum_over_batch(
    gpu: &Gpu,
    op: &'static str,
    inputs: &[(&str, &GpuTensor)],
    batch: usize,
    result_shape: &[usize],
    run: impl Fn(&[GpuTensor]) -> Result<GpuTensor>,
) -> Result<GpuTensor> {
    // Chunks are sized by the inputs; the result does not grow with the batch.
    let samples = samples_per_chunk(gpu, op, inputs, &[1], batch)?;
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
    // As many rows of partial sums as one binding holds: the running sum, then the next chunks'
    // results, added in that order, so the sum is ((c0 + c1 + ..) + ck + ..) on every run.
    let limit = gpu.max_storage_binding();
    let rows = (limit / (len as u64 * 4)).min(chunks as u64) as usize;
    if rows < 2 {
        return Err(too_large(
            op,
            format!(
                "the {len}-element result must be summed over {chunks} chunks of the batch, but \
                 two rows of it do not fit the storage binding limit of {limit} bytes"
            ),
        ));
    }
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
