//! Work past the storage-binding limit or the memory budget: whether a call must split, and the search for the coarsest cut of its work into tiles that fit.
//!
//! A tensor larger than one binding may hold (128 MiB on lavapipe and most WebGPU devices)
//! can still live in one buffer (up to `max_buffer_size`), or past that in several
//! (`gpu::runtime::segments`); only a kernel cannot bind it whole.
//! So ops cut their work into tiles of samples, channels and rows, copy each tile's inputs
//! into pooled tensors (buffer copies need only 4-byte alignment, where binding sub-ranges
//! would need 256-byte-aligned offsets; see `gpu::split::copy`), run on them, and copy the results
//! into place (`gpu::conv2d::split_forward`, `gpu::pool2d::split`, `gpu::conv2d::split_backward`), or add them in a fixed
//! order where the result sums over the cut (`gpu::conv2d::partial_sums`); elementwise ops cut their
//! elements into chunks (`gpu::split::flat`). Everything is enqueued in order on one queue, so
//! tile buffers are reused safely (see `gpu::runtime::buffer_pool`), and nothing waits.
//!
//! Tiles are sized by the memory budget too: a cut fits when every tile's copies and op fit
//! what the budget leaves, each op working its peaks out as `gpu::plan::memory` does.

pub(crate) mod copy;
pub(crate) mod flat;

use crate::error::{too_large, Error, Result};
use crate::gpu::Gpu;

/// A tensor of a split call, by name and shape.
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

impl Cut {
    pub const fn new(samples: usize, channels: usize, rows: usize) -> Self {
        Cut {
            samples,
            channels,
            rows,
        }
    }
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
    let cut = Cut::new;
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

/// [`coarsest_cut`] for results that sum over samples and rows (the weight and bias
/// gradients), where a cut of channels costs no partial sums: fewer samples per tile, then
/// ranges of channels (with as many samples as then fit), then bands of rows of one sample
/// within the narrowest range needed.
pub(crate) fn coarsest_cut_by_channels<T>(
    whole: Cut,
    check: &dyn Fn(Cut) -> Result<T>,
) -> Result<T> {
    let fits = |cut: Cut| Ok(check(cut).is_ok());
    let Cut {
        samples: batch,
        channels,
        rows,
    } = whole;
    let cut = Cut::new;
    if let Some(n) = largest_where(batch, &|n| fits(cut(n, channels, rows)))? {
        return check(cut(n, channels, rows));
    }
    if let Some(c) = largest_where(channels, &|c| fits(cut(1, c, rows)))? {
        let n = largest_where(batch, &|n| fits(cut(n, c, rows)))?.unwrap_or(1);
        return check(cut(n, c, rows));
    }
    let c = largest_where(channels, &|c| fits(cut(1, c, 1)))?.unwrap_or(1);
    let r = largest_where(rows, &|r| fits(cut(1, c, r)))?.unwrap_or(1);
    check(cut(1, c, r))
}

/// The channel ranges `(start, len)` of a cut of `channels` channels per tile, out of `total`
/// in groups of `per_group`: whole groups when the cut spans one or more (a tile then keeps
/// its groups), else ranges within each group (a tile is then an ungrouped conv).
pub(crate) fn channel_ranges(
    total: usize,
    per_group: usize,
    channels: usize,
) -> Vec<(usize, usize)> {
    let step = if channels >= per_group {
        channels / per_group * per_group
    } else {
        channels.max(1)
    };
    let mut ranges = Vec::new();
    if step >= per_group {
        for c0 in (0..total).step_by(step) {
            ranges.push((c0, step.min(total - c0)));
        }
    } else {
        for group_start in (0..total).step_by(per_group) {
            for c in (0..per_group).step_by(step) {
                ranges.push((group_start + c, step.min(per_group - c)));
            }
        }
    }
    ranges
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
