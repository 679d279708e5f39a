//! Device memory a call will take at its peak, worked out without allocating or dispatching: the figure the splitter sizes its pieces by, and what `Gpu::memory_required` reports.
//!
//! Each op's estimate follows the order in which that op takes buffers from the pool and
//! gives them back (outputs, chunk copies, scratch, reduction partials, uniforms), counting
//! each buffer at its size class, so it equals the high-water mark of
//! [`PoolStats::peak_in_use_bytes`](crate::gpu::PoolStats) over the call. Idle pooled buffers
//! are not counted: the budget frees them before it fails.

use crate::error::Result;
use crate::gpu::plan::Plan;
use crate::gpu::Gpu;

/// What [`Gpu::memory_required`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// The most bytes of device buffers the call holds at once: its outputs, the copies of
    /// its pieces when it splits, scratch, reduction partials and uniforms, each at its pooled
    /// size class. Buffers alive before the call (its inputs) are not included.
    pub peak_bytes: u64,
    /// Bytes of the buffers the call returns (its outputs), included in `peak_bytes`.
    pub output_bytes: u64,
    /// How many pieces the call runs as: 1 unsplit, more when it splits over the batch,
    /// channels or rows to fit the binding limit or the memory budget.
    pub pieces: usize,
}

/// Allocations and frees in the order a call makes them, with the peak reached.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ledger {
    now: u64,
    peak: u64,
}

impl Ledger {
    pub fn alloc(&mut self, bytes: u64) {
        self.now += bytes;
        self.peak = self.peak.max(self.now);
    }

    pub fn free(&mut self, bytes: u64) {
        self.now = self.now.saturating_sub(bytes);
    }

    /// A nested step whose own peak is `peak` and which leaves `kept` bytes allocated.
    pub fn call(&mut self, peak: u64, kept: u64) {
        self.peak = self.peak.max(self.now + peak);
        self.now += kept;
    }

    pub fn peak(&self) -> u64 {
        self.peak
    }

    /// What a budget of `avail` bytes still leaves after what this ledger holds now.
    pub fn left(&self, avail: Option<u64>) -> Option<u64> {
        avail.map(|a| a.saturating_sub(self.now))
    }
}

/// Bytes a tensor of `shape` (f32 or u32 elements) occupies in the pool: each of its segments
/// at its size class when it passes the buffer limit.
pub(crate) fn tensor_bytes(gpu: &Gpu, shape: &[usize]) -> u64 {
    let bytes = shape
        .iter()
        .try_fold(4u64, |acc, &d| acc.checked_mul(d as u64))
        .unwrap_or(u64::MAX);
    let usage = crate::gpu::runtime::tensor::tensor_usage();
    let segment = crate::gpu::runtime::segments::segment_bytes(gpu, bytes);
    // Counted by arithmetic, not per segment: a shape that overflows has ~2^33 of them.
    let (full, rest) = (bytes / segment, bytes % segment);
    let rest = if rest == 0 {
        0
    } else {
        gpu.buffer_bytes(rest, usage)
    };
    full.saturating_mul(gpu.buffer_bytes(segment, usage))
        .saturating_add(rest)
}

/// Bytes of one dispatch's uniform buffer of `len` bytes.
pub(crate) fn uniform_bytes(gpu: &Gpu, len: usize) -> u64 {
    gpu.buffer_bytes(
        len as u64,
        wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    )
}

/// Bytes a plan allocates beside its outputs: its scratch buffers and textures and one
/// uniform buffer per step, all alive until its submission.
pub(crate) fn plan_bytes(gpu: &Gpu, plan: &Plan) -> u64 {
    let scratch: u64 = plan
        .scratch
        .iter()
        .map(|&floats| tensor_bytes(gpu, &[floats]))
        .sum::<u64>()
        + plan
            .textures
            .iter()
            .map(|&vec4s| crate::gpu::plan::texture_bytes(vec4s))
            .sum::<u64>();
    let uniforms: u64 = plan
        .steps
        .iter()
        .map(|s| uniform_bytes(gpu, s.uniforms.len()))
        .sum();
    scratch + uniforms
}

/// The most [`plan_bytes`] of the plans that can be made; the first error if none can.
/// A plan whose scratch cannot be bound is an error, as when the op makes it ready.
pub(crate) fn most_plan_bytes(
    gpu: &Gpu,
    op: &'static str,
    plans: impl IntoIterator<Item = Result<Plan>>,
) -> Result<u64> {
    let mut most: Option<u64> = None;
    let mut first_error = None;
    for plan in plans {
        let checked = plan.and_then(|p| {
            for &floats in &p.scratch {
                crate::gpu::runtime::launch::check_binding(gpu, op, "packed scratch", &[floats])?;
            }
            for &vec4s in &p.textures {
                crate::gpu::plan::check_texture(gpu, op, vec4s)?;
            }
            Ok(p)
        });
        match checked {
            Ok(p) => most = Some(most.unwrap_or(0).max(plan_bytes(gpu, &p))),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match (most, first_error) {
        (Some(bytes), _) => Ok(bytes),
        (None, Some(e)) => Err(e),
        (None, None) => Ok(0),
    }
}
