//! An elementwise op in chunks of contiguous elements, for tensors past the storage-binding limit or the memory budget: any shape splits, down to single elements.
//!
//! Each element depends only on the same element of the operands, so a chunk is a run of
//! elements in memory order, whatever the shape or layout: its operands are copied out
//! (`copy::slice_1d`), the op runs on them as 1-D tensors, and its result is copied into place.
//! The result equals the unsplit one bit for bit.

use crate::error::{too_large, Error, Result};
use crate::gpu::plan::memory;
use crate::gpu::split::copy;
use crate::gpu::split::largest_fitting;
use crate::gpu::{Gpu, GpuTensor};

/// An elementwise call: its name, its operands' shape (all alike) and their number, and the
/// op's own peak on `n` elements unsplit (its result and uniforms).
pub(crate) struct Elementwise<'a> {
    pub op: &'static str,
    pub shape: &'a [usize],
    pub operands: usize,
    pub inner: &'a dyn Fn(usize) -> u64,
}

impl Elementwise<'_> {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The peak of one chunk of `n` elements: its operands' copies, then the op on them.
    fn chunk_bytes(&self, gpu: &Gpu, n: usize) -> u64 {
        self.operands as u64 * memory::tensor_bytes(gpu, &[n]) + (self.inner)(n)
    }

    /// Elements per chunk: what one binding holds, and what fits `avail` bytes of budget left
    /// beside the result; fewer than all (else there is nothing to split).
    fn chunk_len(&self, gpu: &Gpu, avail: Option<u64>) -> Result<usize> {
        let limit = gpu.max_storage_binding();
        let len = self.len();
        let mut most = (limit / 4).min(len as u64) as usize;
        if most == 0 {
            return Err(too_large(
                self.op,
                format!(
                    "the storage binding limit of {limit} bytes holds no 4-byte element, so \
                     tensors of shape {:?} cannot be split into chunks that fit",
                    self.shape
                ),
            ));
        }
        if let Some(avail) = avail {
            let out = memory::tensor_bytes(gpu, self.shape);
            let left = avail.saturating_sub(out);
            let peak = |n: usize| Ok(self.chunk_bytes(gpu, n));
            most = largest_fitting(most, left, &peak)?.ok_or_else(|| Error::OutOfMemory {
                op: self.op,
                message: format!(
                    "even one element at a time needs {} bytes of device memory beside the \
                     {out}-byte result, but the memory budget leaves {avail} bytes beside the \
                     buffers in use",
                    self.chunk_bytes(gpu, 1)
                ),
            })?;
        }
        if most >= len {
            return Err(too_large(
                self.op,
                format!(
                    "the call on shape {:?} needs splitting, but its smallest chunk is the \
                     whole call",
                    self.shape
                ),
            ));
        }
        Ok(most)
    }

    /// The peak bytes of [`Self::run`] and its number of chunks, with `avail` bytes of budget
    /// left before the call: the result, then the first (largest) chunk.
    pub fn peak(&self, gpu: &Gpu, avail: Option<u64>) -> Result<(u64, usize)> {
        let n = self.chunk_len(gpu, avail)?;
        let out = memory::tensor_bytes(gpu, self.shape);
        Ok((out + self.chunk_bytes(gpu, n), self.len().div_ceil(n)))
    }

    /// Runs `run` on chunks of `operands` (all of this call's shape and one layout) and
    /// assembles the result from the chunks' results.
    pub fn run(
        &self,
        gpu: &Gpu,
        operands: &[&GpuTensor],
        run: impl Fn(&[GpuTensor]) -> Result<GpuTensor>,
    ) -> Result<GpuTensor> {
        let (op, len) = (self.op, self.len());
        let n = self.chunk_len(gpu, gpu.memory_available())?;
        let layout = operands.first().map_or(crate::Layout::Nchw, |t| t.layout());
        let result = gpu.capture(op, || GpuTensor::uninit(gpu, op, self.shape, layout))??;
        let mut start = 0;
        while start < len {
            let count = n.min(len - start);
            let chunks = operands
                .iter()
                .map(|t| copy::slice_1d(gpu, op, t, start, count))
                .collect::<Result<Vec<_>>>()?;
            copy::copy_flat(gpu, op, &run(&chunks)?, 0, &result, start, count)?;
            start += count;
        }
        Ok(result)
    }
}
