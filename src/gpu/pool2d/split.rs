//! Max pooling, forward and backward, in tiles of samples, channels and rows, for work past the storage-binding limit or the memory budget, even within one sample.
//!
//! Channels are independent, and a band of output rows reads only the input rows its windows
//! reach (`AxisGeometry::output_band`): the band keeps as padding only what lies outside the
//! real input, so -inf never stands in for a real neighbouring row. The backward pass tiles
//! the input gradient instead: a band of input rows gathers from the outputs whose windows
//! may reach it (`AxisGeometry::input_band`). Indices stay those of the whole plane: the
//! kernels add the band's first position (`index_base`) to every index they write or compare.
//! TensorFlow-style indices count channels, so with them channels are never split.
//! Boxes move by buffer copies (`gpu::split::copy`); tiles cover the output once, so the result is
//! the unsplit one bit for bit.

use std::collections::HashSet;

use crate::error::{too_large, Error, Result};
use crate::gpu::plan::memory;
use crate::gpu::pool2d::max_pool2d::forward_whole_bytes;
use crate::gpu::pool2d::max_pool2d::{backward_whole, backward_whole_bytes, forward_whole};
use crate::gpu::runtime::tensor::IndexOrigin;
use crate::gpu::split::copy::{self, Box4};
use crate::gpu::split::{self, bytes, coarsest_cut, Cut};
use crate::gpu::{Gpu, GpuTensor};
use crate::params::{IndexStyle, Pool2dGeometry};

/// Which pooling pass is split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PoolPass {
    /// The forward pass, with or without indices.
    Forward { with_indices: bool },
    /// The backward pass.
    Backward,
}

/// A tile: its own geometry, where the box it reads starts (the input, or grad_output and
/// the indices for the backward) and where the box it writes goes, both logical
/// `[n, c, h, w]`, and the index of its first row in the whole plane.
#[derive(Clone, Copy, Debug)]
struct Tile {
    g: Pool2dGeometry,
    read_start: [usize; 4],
    write_start: [usize; 4],
    index_base: u32,
}

/// The split call: the whole geometry and the pass.
#[derive(Clone, Copy)]
pub(crate) struct Split<'a> {
    pub op: &'static str,
    pub g: &'a Pool2dGeometry,
    pub pass: PoolPass,
}

impl Split<'_> {
    /// The shapes the pass reads and writes, in the layout.
    fn read_shape(&self, g: &Pool2dGeometry) -> [usize; 4] {
        match self.pass {
            PoolPass::Forward { .. } => g.input_shape(),
            PoolPass::Backward => g.output_shape(),
        }
    }

    fn write_shape(&self, g: &Pool2dGeometry) -> [usize; 4] {
        match self.pass {
            PoolPass::Forward { .. } => g.output_shape(),
            PoolPass::Backward => g.input_shape(),
        }
    }

    /// Tensors the pass reads (the backward reads grad_output and the indices) and writes.
    fn reads(&self) -> u64 {
        match self.pass {
            PoolPass::Forward { .. } => 1,
            PoolPass::Backward => 2,
        }
    }

    fn writes(&self) -> u64 {
        match self.pass {
            PoolPass::Forward { with_indices } => 1 + u64::from(with_indices),
            PoolPass::Backward => 1,
        }
    }

    fn whole_bytes(&self, gpu: &Gpu, g: &Pool2dGeometry) -> u64 {
        match self.pass {
            PoolPass::Forward { with_indices } => forward_whole_bytes(gpu, g, with_indices),
            PoolPass::Backward => backward_whole_bytes(gpu, g),
        }
    }

    /// Whether the call must be tiled: a tensor past one binding, or, with `avail` bytes of
    /// budget left, more memory than that unsplit.
    pub fn needs_split(&self, gpu: &Gpu, avail: Option<u64>) -> Result<bool> {
        let shapes = [self.g.input_shape(), self.g.output_shape()];
        let shapes: Vec<&[usize]> = shapes.iter().map(|s| &s[..]).collect();
        split::needed(gpu, &shapes, avail, || Ok(self.whole_bytes(gpu, self.g)))
    }

    /// Whether a tile reads a box smaller than the whole tensor (and so copies it out).
    fn slices(&self, t: &Tile) -> bool {
        t.read_start != [0; 4] || self.read_shape(&t.g) != self.read_shape(self.g)
    }

    /// The rows the pass tiles: output rows forward, input (gradient) rows backward.
    fn rows(&self) -> usize {
        match self.pass {
            PoolPass::Forward { .. } => self.g.h.output,
            PoolPass::Backward => self.g.h.input,
        }
    }

    fn tiles(&self, cut: Cut) -> Result<Vec<Tile>> {
        let g = self.g;
        let rows = self.rows();
        let mut tiles = Vec::new();
        for c0 in (0..g.channels).step_by(cut.channels) {
            for n0 in (0..g.batch).step_by(cut.samples) {
                for r0 in (0..rows).step_by(cut.rows) {
                    let (nb, cb) = (
                        cut.samples.min(g.batch - n0),
                        cut.channels.min(g.channels - c0),
                    );
                    tiles.push(self.tile([n0, c0, r0], [nb, cb, cut.rows.min(rows - r0)])?);
                }
            }
        }
        Ok(tiles)
    }

    fn tile(&self, [n0, c0, r0]: [usize; 3], [nb, cb, rb]: [usize; 3]) -> Result<Tile> {
        let g = self.g;
        let (read_row, write_row, first_input_row, h) = match self.pass {
            PoolPass::Forward { .. } => {
                let (row0, h) = g.h.output_band(r0, rb).ok_or_else(|| {
                    too_large(
                        self.op,
                        format!(
                            "output rows {r0}..{} have windows wholly in the padding, so they \
                             cannot be pooled as a band of their own; this pooling cannot be \
                             split into row bands that small",
                            r0 + rb
                        ),
                    )
                })?;
                (row0, r0, row0, h)
            }
            PoolPass::Backward => {
                let (o0, h) = g.h.input_band(r0, rb);
                (o0, r0, r0, h)
            }
        };
        let tg = Pool2dGeometry {
            batch: nb,
            channels: cb,
            h,
            ..*g
        };
        let per_row = match g.index_style {
            IndexStyle::PyTorch => g.w.input,
            IndexStyle::TensorFlow => g.w.input * g.channels,
        };
        // Indices of the whole plane fit u32 (validated), and so does any offset into it.
        let index_base = (first_input_row * per_row) as u32;
        Ok(Tile {
            g: tg,
            read_start: [n0, c0, read_row, 0],
            write_start: [n0, c0, write_row, 0],
            index_base,
        })
    }

    /// The peak bytes of one tile: the copies of what it reads, then its kernel.
    fn tile_bytes(&self, gpu: &Gpu, t: &Tile) -> u64 {
        let copies = if self.slices(t) {
            self.reads() * memory::tensor_bytes(gpu, &self.read_shape(&t.g))
        } else {
            0
        };
        copies + self.whole_bytes(gpu, &t.g)
    }

    /// The most bytes any tile needs; `Err` if a tile's tensors do not fit one binding.
    fn most_tile_bytes(&self, gpu: &Gpu, tiles: &[Tile]) -> Result<u64> {
        let limit = gpu.max_storage_binding();
        let mut seen = HashSet::new();
        let mut most = 0;
        for t in tiles {
            if !seen.insert((t.g, self.slices(t))) {
                continue;
            }
            for shape in [t.g.input_shape(), t.g.output_shape()] {
                if bytes(&shape) > limit {
                    return Err(too_large(
                        self.op,
                        format!(
                            "even split into tiles of {} sample(s), {} channel(s) and {} row(s), \
                             a tile's tensor of shape {shape:?} is {} bytes, above the storage \
                             binding limit of {limit} bytes",
                            t.g.batch,
                            t.g.channels,
                            match self.pass {
                                PoolPass::Forward { .. } => t.g.h.output,
                                PoolPass::Backward => t.g.h.input,
                            },
                            bytes(&shape)
                        ),
                    ));
                }
            }
            most = most.max(self.tile_bytes(gpu, t));
        }
        Ok(most)
    }

    /// The tiles of the coarsest cut that fits, `avail` bytes of budget being left beside
    /// the whole outputs.
    fn choose(&self, gpu: &Gpu, avail: Option<u64>) -> Result<Vec<Tile>> {
        let check = |cut: Cut| -> Result<Vec<Tile>> {
            let tiles = self.tiles(cut)?;
            let most = self.most_tile_bytes(gpu, &tiles)?;
            match avail {
                Some(a) if most > a => Err(Error::OutOfMemory {
                    op: self.op,
                    message: format!(
                        "even split into tiles of {} sample(s), {} channel(s) and {} row(s), a \
                         tile needs {most} bytes of device memory, but the memory budget leaves \
                         {a} bytes beside the buffers in use and the output",
                        cut.samples, cut.channels, cut.rows
                    ),
                }),
                _ => Ok(tiles),
            }
        };
        let whole = Cut {
            samples: self.g.batch,
            channels: self.g.channels,
            rows: self.rows(),
        };
        let indices_count_channels = self.g.index_style == IndexStyle::TensorFlow
            && self.pass
                != (PoolPass::Forward {
                    with_indices: false,
                });
        let named = [
            ("input", &self.g.input_shape()[..]),
            ("output", &self.g.output_shape()[..]),
        ];
        let tiles = coarsest_cut(whole, !indices_count_channels, &check)
            .map_err(|e| split::unsplittable(gpu, self.op, &named, e))?;
        if tiles.len() == 1 {
            return Err(too_large(
                self.op,
                "the call needs splitting, but its smallest tile is the whole call",
            ));
        }
        Ok(tiles)
    }
}

/// The peak bytes of the tiled call and its number of tiles, with `avail` bytes of budget
/// left before it.
pub(crate) fn peak(gpu: &Gpu, split: Split, avail: Option<u64>) -> Result<(u64, usize)> {
    let out = output_bytes(gpu, &split);
    let tiles = split.choose(gpu, avail.map(|a| a.saturating_sub(out)))?;
    Ok((out + split.most_tile_bytes(gpu, &tiles)?, tiles.len()))
}

/// The bytes of the whole outputs of the split call.
fn output_bytes(gpu: &Gpu, split: &Split) -> u64 {
    split.writes() * memory::tensor_bytes(gpu, &split.write_shape(split.g))
}

/// What the memory budget will leave the tiles once the whole outputs exist.
fn available_beside_outputs(gpu: &Gpu, split: &Split) -> Option<u64> {
    let out = output_bytes(gpu, split);
    gpu.memory_available().map(|a| a.saturating_sub(out))
}

/// The tiled forward pass: values, and indices (of the whole input, with `origin`) if asked.
pub(crate) fn forward(
    input: &GpuTensor,
    split: Split,
    origin: IndexOrigin,
) -> Result<(GpuTensor, Option<GpuTensor>)> {
    let (gpu, op, g) = (input.gpu(), split.op, split.g);
    let PoolPass::Forward { with_indices } = split.pass else {
        unreachable!("a forward split")
    };
    // Tiles first, with what the budget will leave beside the outputs (as `peak` counts it),
    // so that a call which cannot split fails before allocating outputs it will never fill.
    let tiles = split.choose(gpu, available_beside_outputs(gpu, &split))?;
    let shape = g.output_shape();
    let values = gpu.capture(op, || GpuTensor::uninit(gpu, op, &shape, g.layout))??;
    let indices = with_indices
        .then(|| {
            gpu.capture(op, || {
                GpuTensor::uninit_indices(gpu, op, &shape, g.layout, origin.clone())
            })?
        })
        .transpose()?;
    let physical = |a| g.layout.activation_shape(a);
    for t in &tiles {
        let x = if split.slices(t) {
            copy::slice(
                gpu,
                op,
                input,
                Box4::logical(physical, t.read_start, t.g.input_sizes()),
            )?
        } else {
            input.clone()
        };
        let (v, i) = forward_whole(op, &x, &t.g, with_indices, t.index_base, origin.clone())?;
        let at = physical(t.write_start);
        copy::copy_box(gpu, op, &v, Box4::whole(t.g.output_shape()), &values, at)?;
        if let (Some(i), Some(indices)) = (i, &indices) {
            copy::copy_box(gpu, op, &i, Box4::whole(t.g.output_shape()), indices, at)?;
        }
    }
    Ok((values, indices))
}

/// The tiled backward pass: the input gradient from `grad_output` and `indices` (checked by
/// the caller).
pub(crate) fn backward(
    grad_output: &GpuTensor,
    indices: &GpuTensor,
    split: Split,
) -> Result<GpuTensor> {
    let (gpu, op, g) = (grad_output.gpu(), split.op, split.g);
    let tiles = split.choose(gpu, available_beside_outputs(gpu, &split))?;
    let dx = gpu.capture(op, || {
        GpuTensor::uninit(gpu, op, &g.input_shape(), g.layout)
    })??;
    let physical = |a| g.layout.activation_shape(a);
    for t in &tiles {
        let (dy, idx) = if split.slices(t) {
            let from = Box4::logical(physical, t.read_start, t.g.output_sizes());
            (
                copy::slice(gpu, op, grad_output, from)?,
                copy::slice(gpu, op, indices, from)?,
            )
        } else {
            (grad_output.clone(), indices.clone())
        };
        let part = backward_whole(op, &dy, &idx, &t.g, t.index_base, t.g.h == g.h)?;
        let at = physical(t.write_start);
        copy::copy_box(gpu, op, &part, Box4::whole(t.g.input_shape()), &dx, at)?;
    }
    Ok(dx)
}
