//! conv2d forward in tiles of samples, output channels and output rows, for work past the storage-binding limit or the memory budget, even within one sample.
//!
//! A tile's output is a box of the whole output; its input is the band of input rows its
//! windows read, halo included, of the input channels its output channels see. Inside the
//! input that halo is real rows, so a band keeps only the padding that lies outside the input
//! (`AxisGeometry::output_band` works it out), and the tile runs as an ordinary conv2d with that
//! explicit padding. Output channels split by whole groups, or within one group (the tile is
//! then an ungrouped conv over that group's input channels); the weight and bias are sliced to
//! the tile's output channels. Every input box, slice and output placement is a buffer copy
//! (`gpu::split::copy`), since the whole tensors may be past what one binding holds. The tiles cover
//! the output once, and each output element sums the same terms in the same order as unsplit.
//!
//! Cuts are tried from coarse to fine (`split::coarsest_cut`): whole samples first (no halo,
//! the weight whole), then bands of rows within a sample, then output channels (the input read
//! once per channel range). A cut fits when every tile's tensors fit one binding and, under a memory budget,
//! every tile's copies and conv2d fit what the budget leaves beside the whole output.

use std::collections::HashSet;

use crate::activation::Activation;
use crate::error::{too_large, Error, Result};
use crate::gpu::conv2d::forward as conv2d;
use crate::gpu::plan::{memory, KeepWeights};
use crate::gpu::split::copy::{self, Box4};
use crate::gpu::split::{self, bytes, coarsest_cut, Cut};
use crate::gpu::{Gpu, GpuTensor};
use crate::params::{Conv2dGeometry, Conv2dParams, Padding};

const OP: &str = "conv2d";

/// A tile ready to run: where its output goes (logical `[n, c, h, w]`), its own conv2d, and
/// where its input box starts (its extent is the tile's input size).
#[derive(Clone, Copy, Debug)]
struct Tile {
    out_start: [usize; 4],
    in_start: [usize; 4],
    params: Conv2dParams,
    g: Conv2dGeometry,
}

/// What the split call is: the whole geometry and parameters, and the epilogue.
#[derive(Clone, Copy)]
pub(crate) struct Whole<'a> {
    pub g: &'a Conv2dGeometry,
    pub params: &'a Conv2dParams,
    pub has_bias: bool,
    pub activation: Activation,
}

impl Whole<'_> {
    /// Whether the call must be tiled: a tensor past one binding, or, with `avail` bytes of
    /// budget left, more memory than that unsplit.
    pub fn needs_split(&self, gpu: &Gpu, avail: Option<u64>) -> Result<bool> {
        let g = self.g;
        let shapes = [g.input_shape(), g.output_shape(), g.weight_shape()];
        let shapes: Vec<&[usize]> = shapes.iter().map(|s| &s[..]).collect();
        split::needed(gpu, &shapes, avail, || {
            conv2d::whole_bytes(gpu, g, self.has_bias, self.activation)
        })
    }

    fn slices_input(&self, t: &Tile) -> bool {
        t.in_start != [0; 4] || t.g.input_sizes() != self.g.input_sizes()
    }

    fn slices_weight(&self, t: &Tile) -> bool {
        t.g.out_channels != self.g.out_channels
    }

    /// The tiles of a cut, channel ranges outermost (so a weight slice serves all its tiles),
    /// then samples, then rows.
    fn tiles(&self, cut: Cut) -> Result<Vec<Tile>> {
        let g = self.g;
        let mut tiles = Vec::new();
        for (o0, ob) in
            split::channel_ranges(g.out_channels, g.out_channels_per_group(), cut.channels)
        {
            for n0 in (0..g.batch).step_by(cut.samples) {
                for y0 in (0..g.h.output).step_by(cut.rows) {
                    let nb = cut.samples.min(g.batch - n0);
                    let yb = cut.rows.min(g.h.output - y0);
                    tiles.push(self.tile([n0, o0, y0], [nb, ob, yb])?);
                }
            }
        }
        Ok(tiles)
    }

    /// The tile whose output is the box `start .. start + extent` over (sample, output
    /// channel, row), all columns.
    fn tile(&self, [n0, o0, y0]: [usize; 3], [nb, ob, yb]: [usize; 3]) -> Result<Tile> {
        let g = self.g;
        let (per_group_out, per_group_in) = (g.out_channels_per_group(), g.in_channels_per_group());
        let (c0, groups) = if o0.is_multiple_of(per_group_out) && ob.is_multiple_of(per_group_out) {
            (o0 / per_group_out * per_group_in, ob / per_group_out)
        } else {
            (o0 / per_group_out * per_group_in, 1)
        };
        let (row0, h) = g.h.output_band(y0, yb).ok_or_else(|| {
            too_large(
                OP,
                format!(
                    "output rows {y0}..{} read only padding (padding {} + {} around {} input \
                     rows), so they cannot be computed as a band of their own; this conv2d \
                     cannot be split into row bands that small",
                    y0 + yb,
                    g.h.pad_before,
                    g.h.pad_after,
                    g.h.input
                ),
            )
        })?;
        let params = Conv2dParams {
            padding: Padding::explicit(h.pad_before, h.pad_after, g.w.pad_before, g.w.pad_after),
            groups,
            ..*self.params
        };
        let layout = g.layout;
        let input = layout.activation_shape([nb, groups * per_group_in, h.input, g.w.input]);
        let weight = layout.weight_shape([ob, per_group_in, g.h.kernel, g.w.kernel]);
        // The geometry the tile's own conv2d call will resolve, so estimates match it.
        let tg = params.geometry(OP, input, weight, self.has_bias.then_some(ob))?;
        Ok(Tile {
            out_start: [n0, o0, y0, 0],
            in_start: [n0, c0, row0, 0],
            params,
            g: tg,
        })
    }

    /// The peak bytes of one tile: its copies (input band, weight and bias slices) and its
    /// conv2d.
    fn tile_bytes(&self, gpu: &Gpu, t: &Tile) -> Result<u64> {
        let mut total = conv2d::whole_bytes(gpu, &t.g, self.has_bias, self.activation)?;
        if self.slices_input(t) {
            total += memory::tensor_bytes(gpu, &t.g.input_shape());
        }
        if self.slices_weight(t) {
            total += memory::tensor_bytes(gpu, &t.g.weight_shape());
            if self.has_bias {
                total += memory::tensor_bytes(gpu, &[t.g.out_channels]);
            }
        }
        Ok(total)
    }

    /// The most bytes any of `tiles` needs, each distinct tile planned once; `Err` if one of
    /// them cannot run (a tensor past the binding limit, a plan that cannot be made).
    fn most_tile_bytes(&self, gpu: &Gpu, tiles: &[Tile]) -> Result<u64> {
        let limit = gpu.max_storage_binding();
        let mut seen = HashSet::new();
        let mut most = 0;
        for t in tiles {
            if !seen.insert((t.g, self.slices_input(t), self.slices_weight(t))) {
                continue;
            }
            for (name, shape) in [
                ("input band", t.g.input_shape()),
                ("output tile", t.g.output_shape()),
                ("weight slice", t.g.weight_shape()),
            ] {
                if bytes(&shape) > limit {
                    return Err(too_large(
                        OP,
                        format!(
                            "even split into tiles of {} sample(s), {} output channel(s) and {} \
                             output row(s), a tile's {name} of shape {shape:?} is {} bytes, above \
                             the storage binding limit of {limit} bytes",
                            t.g.batch,
                            t.g.out_channels,
                            t.g.h.output,
                            bytes(&shape)
                        ),
                    ));
                }
            }
            most = most.max(self.tile_bytes(gpu, t)?);
        }
        Ok(most)
    }

    /// The tiles of the coarsest cut that fits, `avail` bytes of budget being left beside the
    /// whole output.
    fn choose(&self, gpu: &Gpu, avail: Option<u64>) -> Result<Vec<Tile>> {
        let g = self.g;
        let check = |cut: Cut| -> Result<Vec<Tile>> {
            let tiles = self.tiles(cut)?;
            let most = self.most_tile_bytes(gpu, &tiles)?;
            match avail {
                Some(a) if most > a => Err(Error::OutOfMemory {
                    op: OP,
                    message: format!(
                        "even split into tiles of {} sample(s), {} output channel(s) and {} \
                         output row(s), a tile needs {most} bytes of device memory, but the \
                         memory budget leaves {a} bytes beside the buffers in use and the output",
                        cut.samples, cut.channels, cut.rows
                    ),
                }),
                _ => Ok(tiles),
            }
        };
        let whole = Cut {
            samples: g.batch,
            channels: g.out_channels,
            rows: g.h.output,
        };
        let named = [
            ("input", &g.input_shape()[..]),
            ("weight", &g.weight_shape()[..]),
            ("output", &g.output_shape()[..]),
        ];
        let tiles = coarsest_cut(whole, true, &check)
            .map_err(|e| split::unsplittable(gpu, OP, &named, e))?;
        if tiles.len() == 1 {
            return Err(too_large(
                OP,
                "the call needs splitting, but its smallest tile is the whole call",
            ));
        }
        Ok(tiles)
    }
}

/// The peak bytes of the tiled call and its number of tiles, with `avail` bytes of budget
/// left before it.
pub(crate) fn peak(gpu: &Gpu, whole: Whole, avail: Option<u64>) -> Result<(u64, usize)> {
    let out = memory::tensor_bytes(gpu, &whole.g.output_shape());
    let tiles = whole.choose(gpu, avail.map(|a| a.saturating_sub(out)))?;
    Ok((out + whole.most_tile_bytes(gpu, &tiles)?, tiles.len()))
}

/// Runs the tiled call: chooses the tiles, allocates the output, then runs each tile's
/// copies, conv2d and placement.
pub(crate) fn run(
    input: &GpuTensor,
    weight: &GpuTensor,
    bias: Option<&GpuTensor>,
    whole: Whole,
) -> Result<GpuTensor> {
    let gpu = input.gpu();
    let layout = whole.g.layout;
    // Tiles first, with what the budget will leave beside the output (as `peak` counts it), so
    // that a call which cannot split fails before allocating an output it will never fill.
    let out = memory::tensor_bytes(gpu, &whole.g.output_shape());
    let tiles = whole.choose(gpu, gpu.memory_available().map(|a| a.saturating_sub(out)))?;
    let output = gpu.capture(OP, || {
        GpuTensor::uninit(gpu, OP, &whole.g.output_shape(), layout)
    })??;
    let activations = |a| layout.activation_shape(a);
    let weights = |w| layout.weight_shape(w);
    // The weight and bias slices of the current channel range; replaced (the old ones dropped
    // first) when the range changes.
    let mut sliced: Option<(usize, GpuTensor, Option<GpuTensor>)> = None;
    for t in &tiles {
        let (w, b) = if whole.slices_weight(t) {
            let o0 = t.out_start[1];
            if sliced.as_ref().map(|s| s.0) != Some(o0) {
                drop(sliced.take());
                let g = &t.g;
                let from = Box4::logical(weights, [o0, 0, 0, 0], g.weight_sizes());
                let w = copy::slice(gpu, OP, weight, from)?;
                let b = bias
                    .map(|b| copy::slice_1d(gpu, OP, b, o0, g.out_channels))
                    .transpose()?;
                sliced = Some((o0, w, b));
            }
            let (_, w, b) = sliced.as_ref().expect("just made");
            (w, b.as_ref())
        } else {
            (weight, bias)
        };
        let x = if whole.slices_input(t) {
            let from = Box4::logical(activations, t.in_start, t.g.input_sizes());
            copy::slice(gpu, OP, input, from)?
        } else {
            input.clone()
        };
        let y = conv2d::conv2d_keeping(&x, w, b, &t.params, whole.activation, KeepWeights::No)?;
        let placed = Box4::whole(layout.activation_shape(t.g.output_sizes()));
        copy::copy_box(gpu, OP, &y, placed, &output, activations(t.out_start))?;
    }
    Ok(output)
}
