//! Copies of 4-D boxes between tensors (a band of rows, a range of channels, some samples), as buffer-to-buffer copies of the box's contiguous runs.
//!
//! The source of a split is often larger than one storage binding, so no kernel can read it;
//! buffer copies can, and need only 4-byte alignment. A box is copied as its longest
//! contiguous runs: a run spans every axis inside the outermost one the box does not cover
//! whole (in both tensors), so rows of full width in NCHW are one run per (n, c) plane, and a
//! band of full rows in NHWC one run per sample; a channel range in NHWC is one run per pixel.
//! Either tensor may be segmented (`gpu::runtime::segments`): a run is then cut where it crosses a
//! segment boundary of either, each piece one buffer copy.

use crate::error::{invalid, too_large, Result};
use crate::gpu::{Gpu, GpuTensor};

/// Most runs one box copy may issue: a guard against a split that would encode millions of
/// copy commands (a channel range of a huge NHWC plane), which is better refused.
pub(crate) const MAX_RUNS: u64 = 1 << 20;

/// A box in a 4-D tensor, in its physical axis order: where it starts and how far it extends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Box4 {
    pub start: [usize; 4],
    pub extent: [usize; 4],
}

impl Box4 {
    /// The box `start .. start + extent` of a tensor whose axes are ordered by `to_physical`
    /// (a layout's `activation_shape` or `weight_shape`), given in logical order.
    pub fn logical(
        to_physical: impl Fn([usize; 4]) -> [usize; 4],
        start: [usize; 4],
        extent: [usize; 4],
    ) -> Self {
        Self {
            start: to_physical(start),
            extent: to_physical(extent),
        }
    }

    /// The whole of a tensor of `shape`.
    pub fn whole(shape: [usize; 4]) -> Self {
        Self {
            start: [0; 4],
            extent: shape,
        }
    }
}

/// The axis whose extent a run covers: the innermost one the box does not cover whole in
/// both tensors (the axes inside it are whole, so the run is contiguous in both).
fn run_axis(
    src_shape: [usize; 4],
    from: Box4,
    dst_shape: [usize; 4],
    to_start: [usize; 4],
) -> usize {
    (0..4)
        .rev()
        .find(|&axis| {
            let whole = |shape: [usize; 4], start: [usize; 4]| {
                start[axis] == 0 && from.extent[axis] == shape[axis]
            };
            !(whole(src_shape, from.start) && whole(dst_shape, to_start))
        })
        .unwrap_or(0)
}

/// Element offsets (from the start of each tensor) and length of each contiguous run that
/// copies `from` (a box of a tensor of `src_shape`) to `to_start` in a tensor of `dst_shape`.
fn runs(
    src_shape: [usize; 4],
    from: Box4,
    dst_shape: [usize; 4],
    to_start: [usize; 4],
) -> (Vec<(u64, u64)>, u64) {
    let split_axis = run_axis(src_shape, from, dst_shape, to_start);
    let strides = |shape: [usize; 4]| {
        let mut s = [1u64; 4];
        for i in (0..3).rev() {
            s[i] = s[i + 1] * shape[i + 1] as u64;
        }
        s
    };
    let (ss, ds) = (strides(src_shape), strides(dst_shape));
    let run = from.extent[split_axis] as u64 * ss[split_axis];
    let outer: Vec<usize> = (0..split_axis).map(|a| from.extent[a]).collect();
    let count: u64 = outer.iter().map(|&e| e as u64).product();
    let mut offsets = Vec::with_capacity(count.min(MAX_RUNS) as usize);
    let mut index = [0usize; 4];
    for _ in 0..count {
        let at = |start: [usize; 4], strides: [u64; 4]| -> u64 {
            (0..4)
                .map(|a| (start[a] + index[a]) as u64 * strides[a])
                .sum()
        };
        offsets.push((at(from.start, ss), at(to_start, ds)));
        // Next outer index, last outer axis fastest.
        for a in (0..split_axis).rev() {
            index[a] += 1;
            if index[a] < from.extent[a] {
                break;
            }
            index[a] = 0;
        }
    }
    (offsets, run)
}

/// Copies the box `from` of `src` into `dst` at `to_start` (physical coordinates), enqueued
/// in one submission, never waiting.
pub(crate) fn copy_box(
    gpu: &Gpu,
    op: &'static str,
    src: &GpuTensor,
    from: Box4,
    dst: &GpuTensor,
    to_start: [usize; 4],
) -> Result<()> {
    let shape4 = |t: &GpuTensor| {
        t.dims4().ok_or_else(|| {
            invalid(
                op,
                format!("a box copy needs 4-D tensors, got shape {:?}", t.shape()),
            )
        })
    };
    let count: u64 = from.extent.iter().map(|&e| e as u64).product();
    let (src_shape, dst_shape) = (shape4(src)?, shape4(dst)?);
    let outer = runs_needed(src_shape, from, dst_shape, to_start);
    if outer > MAX_RUNS {
        return Err(too_large(
            op,
            format!(
                "copying a box of {:?} out of a tensor of shape {src_shape:?} into one of \
                 {dst_shape:?} takes {outer} separate copies, more than {MAX_RUNS}: split this \
                 tensor in the other layout",
                from.extent
            ),
        ));
    }
    if count == 0 {
        return Ok(());
    }
    let (offsets, run) = runs(src_shape, from, dst_shape, to_start);
    gpu.capture(op, || -> Result<()> {
        let mut encoder = gpu
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(op) });
        for (s, d) in offsets {
            encode_span(&mut encoder, op, src, s * 4, dst, d * 4, run * 4)?;
        }
        gpu.queue().submit([encoder.finish()]);
        Ok(())
    })?
}

/// Encodes a copy of `len` bytes from byte `from` of `src`'s values to byte `to` of `dst`'s,
/// one buffer copy per stretch that stays within one segment of each.
fn encode_span(
    encoder: &mut wgpu::CommandEncoder,
    op: &'static str,
    src: &GpuTensor,
    mut from: u64,
    dst: &GpuTensor,
    mut to: u64,
    mut len: u64,
) -> Result<()> {
    let outside = |name: &str, t: &GpuTensor, at: u64| {
        invalid(
            op,
            format!(
                "copy reaches byte {at} of the {name} tensor of shape {:?}, which has {} bytes",
                t.shape(),
                t.byte_size()
            ),
        )
    };
    while len > 0 {
        let (s_buf, s_off, s_left) = src
            .locate(from)
            .ok_or_else(|| outside("source", src, from))?;
        let (d_buf, d_off, d_left) = dst
            .locate(to)
            .ok_or_else(|| outside("destination", dst, to))?;
        let n = len.min(s_left).min(d_left);
        encoder.copy_buffer_to_buffer(s_buf, s_off, d_buf, d_off, n);
        from += n;
        to += n;
        len -= n;
    }
    Ok(())
}

/// How many runs [`copy_box`] would issue.
pub(crate) fn runs_needed(
    src_shape: [usize; 4],
    from: Box4,
    dst_shape: [usize; 4],
    to_start: [usize; 4],
) -> u64 {
    let split_axis = run_axis(src_shape, from, dst_shape, to_start);
    from.extent[..split_axis]
        .iter()
        .map(|&e| e as u64)
        .product()
}

/// The box `from` of `src` as a tensor of its own (values; `src`'s layout).
pub(crate) fn slice(gpu: &Gpu, op: &'static str, src: &GpuTensor, from: Box4) -> Result<GpuTensor> {
    let out = gpu.capture(op, || {
        GpuTensor::uninit(gpu, op, &from.extent, src.layout())
    })??;
    copy_box(gpu, op, src, from, &out, [0; 4])?;
    Ok(out)
}

/// Elements `start .. start + len` of a tensor, in memory order, as a 1-D tensor of their own
/// (a bias slice, or a chunk of an elementwise op's operand).
pub(crate) fn slice_1d(
    gpu: &Gpu,
    op: &'static str,
    src: &GpuTensor,
    start: usize,
    len: usize,
) -> Result<GpuTensor> {
    let out = gpu.capture(op, || GpuTensor::uninit(gpu, op, &[len], src.layout()))??;
    copy_flat(gpu, op, src, start, &out, 0, len)?;
    Ok(out)
}

/// Copies elements `from .. from + len` of `src` to `to .. to + len` of `dst`, in memory
/// order whatever their shapes, enqueued in one submission, never waiting.
pub(crate) fn copy_flat(
    gpu: &Gpu,
    op: &'static str,
    src: &GpuTensor,
    from: usize,
    dst: &GpuTensor,
    to: usize,
    len: usize,
) -> Result<()> {
    gpu.capture(op, || -> Result<()> {
        let mut encoder = gpu
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(op) });
        encode_span(
            &mut encoder,
            op,
            src,
            from as u64 * 4,
            dst,
            to as u64 * 4,
            len as u64 * 4,
        )?;
        gpu.queue().submit([encoder.finish()]);
        Ok(())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_rows_of_nchw_planes_are_one_run_per_plane() {
        // Rows 2..5 of every channel of 2 samples of [2, 3, 8, 10]: 6 runs of 30.
        let from = Box4 {
            start: [0, 0, 2, 0],
            extent: [2, 3, 3, 10],
        };
        let (offsets, run) = runs([2, 3, 8, 10], from, [2, 3, 3, 10], [0; 4]);
        assert_eq!(run, 30);
        assert_eq!(offsets.len(), 6);
        assert_eq!(offsets[1], (80 + 20, 30));
        assert_eq!(offsets[3], (240 + 20, 90));
    }

    #[test]
    fn a_whole_sample_range_is_one_run() {
        let from = Box4 {
            start: [1, 0, 0, 0],
            extent: [2, 3, 4, 5],
        };
        let (offsets, run) = runs([4, 3, 4, 5], from, [2, 3, 4, 5], [0; 4]);
        assert_eq!((offsets, run), (vec![(60, 0)], 120));
    }

    #[test]
    fn a_channel_range_of_nhwc_is_one_run_per_pixel() {
        // NHWC [1, 2, 2, 6], channels 2..4 placed at channels 4..6 of another.
        let from = Box4 {
            start: [0, 0, 0, 2],
            extent: [1, 2, 2, 2],
        };
        let (offsets, run) = runs([1, 2, 2, 6], from, [1, 2, 2, 6], [0, 0, 0, 4]);
        assert_eq!(run, 2);
        assert_eq!(offsets, vec![(2, 4), (8, 10), (14, 16), (20, 22)]);
        assert_eq!(
            runs_needed([1, 2, 2, 6], from, [1, 2, 2, 6], [0, 0, 0, 4]),
            4
        );
    }
}
