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
//! Not split yet: a single sample past the limit (that needs channel or row splits with a
//! halo), tensors past `max_buffer_size`, pooling indices, and the weight and bias gradients
//! (which would add the chunks' sums).

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

/// Runs `run` on chunks of the batch of `inputs` (named, batch-major, all of batch N) and
/// assembles an output of `output_shape` (batch-major, batch N) from the chunks' outputs.
pub(crate) fn over_batch(
    gpu: &Gpu,
    op: &'static str,
    inputs: &[(&str, &GpuTensor)],
    output_shape: &[usize],
    run: impl Fn(&[GpuTensor]) -> Result<GpuTensor>,
) -> Result<GpuTensor> {
    let limit = gpu.max_storage_binding();
    let batch = output_shape[0];
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
    let layout = inputs
        .first()
        .map_or(crate::Layout::Nchw, |(_, t)| t.layout());
    let output = gpu.capture(op, || GpuTensor::uninit(gpu, op, output_shape, layout))??;
    let mut n0 = 0;
    while n0 < batch {
        let nb = samples.min(batch - n0);
        let chunks = inputs
            .iter()
            .map(|(_, t)| t.batch_slice(op, n0, nb))
            .collect::<Result<Vec<_>>>()?;
        run(&chunks)?.copy_into_batch(op, &output, n0)?;
        n0 += nb;
    }
    Ok(output)
}
