//! The conv2d gradients and conv_transpose2d in tiles of samples, channels and rows, for work past the storage-binding limit or the memory budget, even within one sample.
//!
//! - **dx** (and conv_transpose2d, which is dx plus a bias) is tiled like the forward pass:
//!   a tile computes a box of dx (samples, input channels, a band of input rows) from the
//!   grad_output rows whose windows reach that band (`AxisGeometry::gather_band`), through
//!   the weight slice of its input channels: whole groups keep their grouping; a range within
//!   one group is an ungrouped conv over that group's output channels. Tiles cover dx once,
//!   and each element sums the same terms as unsplit. When even one row of grad_output across
//!   a group's output channels is too large, a tile is cut further into parts over those
//!   output channels, whose dx are added in a fixed order (`gpu::conv2d::partial_sums`) before the
//!   tile is placed (conv_transpose2d's bias joins the first part only).
//! - **dw** sums over samples and output positions, so a tile computes the weight gradient of
//!   some output channels (the grad_output channels and the input channels of their groups)
//!   over some samples and a band of output rows, reading the input rows those windows reach
//!   (`AxisGeometry::output_band`, which keeps as padding only what lies outside the input).
//!   Channel ranges are disjoint boxes of dw; within a range the tiles' gradients are added in
//!   a fixed order (`gpu::conv2d::partial_sums`). A band whose windows lie wholly in the padding adds
//!   no term (a padding tap adds none) and is skipped. When the input band of a group's input
//!   channels is too large, dw is cut over those input channels too (disjoint boxes of dw).
//! - **db** likewise, from grad_output alone.
//!
//! Every box moves by buffer copies (`gpu::split::copy`), since the whole tensors may be past what one
//! binding holds. Cuts go coarse to fine (`gpu::split`): for dx samples, then row bands, then
//! channels; for dw and db samples, then channel ranges (which cost no partial sums), then row
//! bands; only when none fits, the other side's channels within a group (dx: output
//! channels, dw: input channels) as well. A cut fits when every tile's tensors fit one binding
//! and, under a memory budget, the tiled call's peak (worked out in the order it allocates)
//! fits what the budget leaves. The tiles themselves are made in `gpu::conv2d::split_backward_tiles`.

use std::collections::HashMap;

use crate::error::{invalid, too_large, Error, Result};
use crate::gpu::conv2d::backward;
use crate::gpu::conv2d::partial_sums;
use crate::gpu::conv2d::split_backward_tiles::Tile;
use crate::gpu::plan::memory::{self, Ledger};
use crate::gpu::plan::KeepWeights;
use crate::gpu::split::copy::{self, Box4};
use crate::gpu::split::{self, bytes, Cut};
use crate::gpu::{Gpu, GpuTensor};
use crate::grads::GradSelection;
use crate::params::Conv2dGeometry;

/// Which result of the conv2d family is tiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TiledGrad {
    /// dx of conv2d.
    InputGrad,
    /// conv_transpose2d: dx of the conv whose input gradient it is, plus a bias if it has one.
    Transpose { bias: bool },
    /// dw.
    WeightGrad,
    /// db.
    BiasGrad,
}

impl TiledGrad {
    /// Whether tiles' results are summed (over samples and rows) rather than placed.
    pub(super) fn sums(self) -> bool {
        matches!(self, TiledGrad::WeightGrad | TiledGrad::BiasGrad)
    }
}

/// The tiles of a cut, and the rows of partial sums a pass adds.
struct Schedule {
    tiles: Vec<Tile>,
    rows: usize,
}

impl Schedule {
    /// The tiles summed into each box of the result (dw and db: a channel range over all
    /// samples and rows; dx: one tile, or its parts), in order.
    fn groups(&self) -> Vec<&[Tile]> {
        self.tiles
            .chunk_by(|a, b| a.out_start == b.out_start)
            .collect()
    }
}

/// The split call: the op's name, the whole conv geometry (conv_transpose2d's is that of the
/// conv whose input gradient it is) and the pass.
#[derive(Clone, Copy)]
pub(crate) struct Whole<'a> {
    pub op: &'static str,
    pub g: &'a Conv2dGeometry,
    pub pass: TiledGrad,
    /// The other side's channels per tile within a group (see [`Tile::part`]); `None` for
    /// all of them.
    pub inner: Option<usize>,
}

impl Whole<'_> {
    /// The tensors the pass binds unsplit, by name.
    fn named(&self) -> Vec<(&'static str, [usize; 4])> {
        let g = self.g;
        let (x, dy, w) = (g.input_shape(), g.output_shape(), g.weight_shape());
        match self.pass {
            TiledGrad::InputGrad => vec![("grad_output", dy), ("weight", w), ("dx", x)],
            TiledGrad::Transpose { .. } => vec![("input", dy), ("weight", w), ("output", x)],
            TiledGrad::WeightGrad => vec![("input", x), ("grad_output", dy), ("dw", w)],
            TiledGrad::BiasGrad => vec![("grad_output", dy)],
        }
    }

    /// The result's shape in the layout.
    fn result_shape(&self, g: &Conv2dGeometry) -> Vec<usize> {
        match self.pass {
            TiledGrad::InputGrad | TiledGrad::Transpose { .. } => g.input_shape().to_vec(),
            TiledGrad::WeightGrad => g.weight_shape().to_vec(),
            TiledGrad::BiasGrad => vec![g.out_channels],
        }
    }

    /// The peak bytes of the pass run unsplit on `g` (conv_transpose2d adding a bias if
    /// `with_bias`).
    fn whole_bytes(&self, gpu: &Gpu, g: &Conv2dGeometry, with_bias: bool) -> Result<u64> {
        let one = match self.pass {
            TiledGrad::Transpose { .. } => {
                return backward::transpose_whole_bytes(gpu, g, with_bias)
            }
            TiledGrad::InputGrad => GradSelection::INPUT,
            TiledGrad::WeightGrad => GradSelection::WEIGHT,
            TiledGrad::BiasGrad => GradSelection::BIAS,
        };
        backward::whole_bytes(gpu, self.op, g, one)
    }

    /// Whether the call must be tiled: a tensor past one binding, or, with `avail` bytes of
    /// budget left, more memory than that unsplit.
    pub fn needs_split(&self, gpu: &Gpu, avail: Option<u64>) -> Result<bool> {
        let named = self.named();
        let shapes: Vec<&[usize]> = named.iter().map(|(_, s)| &s[..]).collect();
        let bias = self.pass == (TiledGrad::Transpose { bias: true });
        split::needed(gpu, &shapes, avail, || self.whole_bytes(gpu, self.g, bias))
    }

    /// The channel axis a cut splits (dx: input channels; dw, db: output channels) and the
    /// rows it bands (dx: input rows; dw, db: output rows).
    pub(super) fn whole_cut(&self) -> Cut {
        let g = self.g;
        match self.pass {
            TiledGrad::InputGrad | TiledGrad::Transpose { .. } => Cut {
                samples: g.batch,
                channels: g.in_channels,
                rows: g.h.input,
            },
            TiledGrad::WeightGrad | TiledGrad::BiasGrad => Cut {
                samples: g.batch,
                channels: g.out_channels,
                rows: g.h.output,
            },
        }
    }

    /// Whether a tile copies out a box of the input (dw only).
    fn slices_input(&self, t: &Tile) -> bool {
        self.pass == TiledGrad::WeightGrad
            && (t.x_start != [0; 4] || t.g.input_sizes() != self.g.input_sizes())
    }

    /// Whether a tile copies out a box of grad_output (conv_transpose2d's input).
    fn slices_grad_output(&self, t: &Tile) -> bool {
        t.dy_start != [0; 4] || t.g.output_sizes() != self.g.output_sizes()
    }

    /// A tile's grad_output: its box copied out, or the whole tensor where the tile spans it.
    fn tile_grad_output(&self, grad_output: &GpuTensor, t: &Tile) -> Result<GpuTensor> {
        if !self.slices_grad_output(t) {
            return Ok(grad_output.clone());
        }
        let layout = self.g.layout;
        let from = Box4::logical(
            |a| layout.activation_shape(a),
            t.dy_start,
            t.g.output_sizes(),
        );
        copy::slice(grad_output.gpu(), self.op, grad_output, from)
    }

    /// Whether a tile copies out a slice of the weight (and of conv_transpose2d's bias).
    fn slices_weight(&self, t: &Tile) -> bool {
        matches!(
            self.pass,
            TiledGrad::InputGrad | TiledGrad::Transpose { .. }
        ) && t.g.weight_sizes() != self.g.weight_sizes()
    }

    /// Whether a tile copies out a slice of conv_transpose2d's bias (when it adds it, over a
    /// range of its output channels).
    fn slices_bias(&self, t: &Tile) -> bool {
        t.with_bias && t.range.1 != self.g.in_channels
    }

    /// The peak bytes of one tile: its copies, then the pass on them.
    fn tile_bytes(&self, gpu: &Gpu, t: &Tile) -> Result<u64> {
        let mut total = self.whole_bytes(gpu, &t.g, t.with_bias)?;
        if self.slices_input(t) {
            total += memory::tensor_bytes(gpu, &t.g.input_shape());
        }
        if self.slices_grad_output(t) {
            total += memory::tensor_bytes(gpu, &t.g.output_shape());
        }
        if self.slices_weight(t) {
            total += memory::tensor_bytes(gpu, &t.g.weight_shape());
        }
        if self.slices_bias(t) {
            total += memory::tensor_bytes(gpu, &[t.range.1]);
        }
        Ok(total)
    }

    /// Each distinct tile's peak, planned once; `Err` if one of them cannot run (a tensor past
    /// the binding limit, a plan that cannot be made).
    fn tile_costs(&self, gpu: &Gpu, tiles: &[Tile]) -> Result<Vec<u64>> {
        let limit = gpu.max_storage_binding();
        let mut seen: HashMap<(Conv2dGeometry, [bool; 5]), u64> = HashMap::new();
        let mut costs = Vec::with_capacity(tiles.len());
        for t in tiles {
            let key = (
                t.g,
                [
                    self.slices_input(t),
                    self.slices_grad_output(t),
                    self.slices_weight(t),
                    self.slices_bias(t),
                    t.with_bias,
                ],
            );
            if let Some(&cost) = seen.get(&key) {
                costs.push(cost);
                continue;
            }
            let tile = Whole { g: &t.g, ..*self };
            for (name, shape) in tile.named() {
                if bytes(&shape) > limit {
                    return Err(too_large(
                        self.op,
                        format!(
                            "even split into tiles of {} sample(s), {} channel(s) (over {} of \
                             the {} {} channel(s) of their group) and {} row(s), a tile's \
                             {name} of shape {shape:?} is {} bytes, above the storage binding \
                             limit of {limit} bytes",
                            t.g.batch,
                            t.range.1,
                            t.part.1,
                            self.other_per_group(),
                            self.other_side(),
                            self.tile_rows(t),
                            bytes(&shape)
                        ),
                    ));
                }
            }
            let cost = self.tile_bytes(gpu, t)?;
            seen.insert(key, cost);
            costs.push(cost);
        }
        Ok(costs)
    }

    /// What the other side's channels are, for messages.
    fn other_side(&self) -> &'static str {
        match self.pass {
            TiledGrad::InputGrad => "grad_output",
            TiledGrad::Transpose { .. } => "input",
            TiledGrad::WeightGrad => "input",
            TiledGrad::BiasGrad => "grad_output",
        }
    }

    /// The rows a tile bands, as the cut counts them.
    fn tile_rows(&self, t: &Tile) -> usize {
        match self.pass {
            TiledGrad::InputGrad | TiledGrad::Transpose { .. } => t.g.h.input,
            TiledGrad::WeightGrad | TiledGrad::BiasGrad => t.g.h.output,
        }
    }

    /// The box of the result a group of tiles sums into.
    fn group_shape(&self, t: &Tile) -> Vec<usize> {
        self.result_shape(&t.g)
    }

    /// Whether `run_*` allocates the whole result before the tiles: always for dx (tiles are
    /// placed), for dw and db when there is more than one box to place.
    fn result_first(&self, groups: usize) -> bool {
        !self.pass.sums() || groups > 1
    }

    /// The peak bytes of a schedule, following the order `run_*` allocates in.
    fn schedule_peak(&self, gpu: &Gpu, s: &Schedule, costs: &[u64]) -> Result<u64> {
        let out = memory::tensor_bytes(gpu, &self.result_shape(self.g));
        let groups = s.groups();
        if !self.pass.sums() && groups.iter().all(|g| g.len() == 1) {
            // Tiles placed one by one; a weight slice kept across a range's tiles is counted
            // in each of them.
            return Ok(out + costs.iter().copied().max().unwrap_or(0));
        }
        let mut ledger = Ledger::default();
        if self.result_first(groups.len()) {
            ledger.alloc(out);
        }
        let mut first = 0;
        for tiles in groups {
            let part = |k: usize| Ok(costs[first + k]);
            let shape = self.group_shape(&tiles[0]);
            ledger.call(
                partial_sums::peak(gpu, tiles.len(), s.rows, &shape, &part)?,
                0,
            );
            first += tiles.len();
        }
        Ok(ledger.peak())
    }

    /// The schedule of `cut` and its peak, within `avail` bytes of budget if given.
    fn schedule(&self, gpu: &Gpu, cut: Cut, avail: Option<u64>) -> Result<(Schedule, u64)> {
        let tiles = self.tiles(cut)?;
        let costs = self.tile_costs(gpu, &tiles)?;
        let mut s = Schedule { tiles, rows: 0 };
        let groups = s.groups();
        let most_parts = groups.iter().map(|g| g.len()).max().unwrap_or(1);
        if most_parts > 1 {
            let len = groups
                .iter()
                .map(|g| self.group_shape(&g[0]).iter().product::<usize>())
                .max()
                .unwrap_or(1);
            s.rows = partial_sums::most_rows(gpu, self.op, len, most_parts)?;
        }
        let peak = self.schedule_peak(gpu, &s, &costs)?;
        let Some(avail) = avail.filter(|&a| peak > a) else {
            return Ok((s, peak));
        };
        // Fewer rows of partial sums a pass may still fit the budget.
        if s.rows > 2 {
            let fits = |extra: usize| {
                let trial = Schedule {
                    tiles: s.tiles.clone(),
                    rows: 1 + extra,
                };
                Ok(self.schedule_peak(gpu, &trial, &costs)? <= avail)
            };
            if let Some(extra) = split::largest_where(s.rows - 1, &fits)? {
                s.rows = 1 + extra;
                let peak = self.schedule_peak(gpu, &s, &costs)?;
                return Ok((s, peak));
            }
        }
        Err(Error::OutOfMemory {
            op: self.op,
            message: format!(
                "even split into tiles of {} sample(s), {} channel(s) and {} row(s), the call \
                 needs {peak} bytes of device memory, but the memory budget leaves {avail} \
                 bytes beside the buffers in use",
                cut.samples, cut.channels, cut.rows
            ),
        })
    }

    /// The schedule of the coarsest cut that fits with this `inner`, and its peak.
    fn coarsest(&self, gpu: &Gpu, avail: Option<u64>) -> Result<(Schedule, u64)> {
        let check = |cut: Cut| self.schedule(gpu, cut, avail);
        let whole = self.whole_cut();
        if self.pass.sums() {
            split::coarsest_cut_by_channels(whole, &check)
        } else {
            split::coarsest_cut(whole, true, &check)
        }
    }

    /// The schedule of the coarsest cut that fits, with `avail` bytes of budget left before
    /// the call, and its peak: the other side's channels whole if any cut fits so, else as
    /// many of them per part as the finest cut allows.
    fn choose(&self, gpu: &Gpu, avail: Option<u64>) -> Result<(Schedule, u64)> {
        let other = self.other_per_group();
        let chosen = self.coarsest(gpu, avail).or_else(|whole_error| {
            let finest = Cut {
                samples: 1,
                channels: 1,
                rows: 1,
            };
            let with_inner = |inner| Whole {
                inner: Some(inner),
                ..*self
            };
            let fits = |inner: usize| Ok(with_inner(inner).schedule(gpu, finest, avail).is_ok());
            match split::largest_where(other.saturating_sub(1), &fits)? {
                Some(inner) => with_inner(inner).coarsest(gpu, avail),
                None if other > 1 => with_inner(1).schedule(gpu, finest, avail),
                None => Err(whole_error),
            }
        });
        let named = self.named();
        let named: Vec<split::Named> = named.iter().map(|(n, s)| (*n, &s[..])).collect();
        let (s, peak) = chosen.map_err(|e| split::unsplittable(gpu, self.op, &named, e))?;
        // One tile can be less than the whole call (dw bands that read only padding are
        // skipped); only one that is the whole call would not fit after all.
        if s.tiles.len() == 1 && s.tiles[0].g == *self.g {
            return Err(too_large(
                self.op,
                "the call needs splitting, but its smallest tile is the whole call",
            ));
        }
        Ok((s, peak))
    }

    /// The peak bytes of the tiled call and its number of tiles, with `avail` bytes of budget
    /// left before it.
    pub fn peak(&self, gpu: &Gpu, avail: Option<u64>) -> Result<(u64, usize)> {
        let (s, peak) = self.choose(gpu, avail)?;
        Ok((peak, s.tiles.len()))
    }

    /// Runs the tiled dx or conv_transpose2d: each tile's copies and pass (its parts' results
    /// summed in order), its result copied into place.
    pub fn run_input(
        &self,
        grad_output: &GpuTensor,
        weight: &GpuTensor,
        bias: Option<&GpuTensor>,
    ) -> Result<GpuTensor> {
        let (gpu, op, layout) = (grad_output.gpu(), self.op, self.g.layout);
        let (s, _) = self.choose(gpu, gpu.memory_available())?;
        let result = gpu.capture(op, || {
            GpuTensor::uninit(gpu, op, &self.g.input_shape(), layout)
        })??;
        let activations = |a| layout.activation_shape(a);
        let weight_slice = |t: &Tile| {
            let from = Box4::logical(|w| layout.weight_shape(w), t.w_start, t.g.weight_sizes());
            copy::slice(gpu, op, weight, from)
        };
        let bias_slice = |t: &Tile| -> Result<Option<GpuTensor>> {
            match bias {
                Some(b) if self.slices_bias(t) => {
                    Ok(Some(copy::slice_1d(gpu, op, b, t.range.0, t.range.1)?))
                }
                _ => Ok(None),
            }
        };
        let run = |t: &Tile, w: &GpuTensor, b: Option<&GpuTensor>| -> Result<GpuTensor> {
            let dy = self.tile_grad_output(grad_output, t)?;
            match self.pass {
                TiledGrad::Transpose { .. } => {
                    backward::transpose_whole(&dy, w, b, &t.g, KeepWeights::No)
                }
                _ => backward::input_grad_whole(op, &t.g, w, &dy),
            }
        };
        // The weight (and bias) slices of the current channel range when tiles are whole
        // (no parts); replaced, the old ones dropped first, when the range changes.
        let mut sliced: Option<(usize, GpuTensor, Option<GpuTensor>)> = None;
        for tiles in s.groups() {
            let t = &tiles[0];
            let tile_dx = if tiles.len() > 1 {
                drop(sliced.take());
                let shape = self.group_shape(t);
                partial_sums::sum_in_order(gpu, op, tiles.len(), s.rows, &shape, layout, |k| {
                    let t = &tiles[k];
                    let w = weight_slice(t)?;
                    let b = bias_slice(t)?;
                    let b = if t.with_bias {
                        b.as_ref().or(bias)
                    } else {
                        None
                    };
                    run(t, &w, b)
                })?
            } else if self.slices_weight(t) {
                if sliced.as_ref().map(|s| s.0) != Some(t.range.0) {
                    drop(sliced.take());
                    sliced = Some((t.range.0, weight_slice(t)?, bias_slice(t)?));
                }
                let (_, w, b) = sliced.as_ref().expect("just made");
                run(t, w, b.as_ref())?
            } else {
                run(t, weight, bias)?
            };
            let placed = Box4::whole(t.g.input_shape());
            copy::copy_box(gpu, op, &tile_dx, placed, &result, activations(t.out_start))?;
        }
        Ok(result)
    }

    /// Runs the tiled dw (with the forward `input`) or db: each box's tiles summed in order,
    /// the sum copied into place.
    pub fn run_sum(&self, input: Option<&GpuTensor>, grad_output: &GpuTensor) -> Result<GpuTensor> {
        let (gpu, op, layout) = (grad_output.gpu(), self.op, self.g.layout);
        let (s, _) = self.choose(gpu, gpu.memory_available())?;
        let groups = s.groups();
        let result = if self.result_first(groups.len()) {
            let shape = self.result_shape(self.g);
            Some(gpu.capture(op, || GpuTensor::uninit(gpu, op, &shape, layout))??)
        } else {
            None
        };
        let activations = |a| layout.activation_shape(a);
        let part = |t: &Tile| -> Result<GpuTensor> {
            let x = match input {
                Some(x) if self.slices_input(t) => {
                    let from = Box4::logical(activations, t.x_start, t.g.input_sizes());
                    Some(copy::slice(gpu, op, x, from)?)
                }
                x => x.cloned(),
            };
            let dy = self.tile_grad_output(grad_output, t)?;
            match self.pass {
                TiledGrad::WeightGrad => {
                    let x = x.ok_or_else(|| {
                        invalid(op, "the weight gradient needs the forward input")
                    })?;
                    backward::weight_grad_whole(op, &t.g, &x, &dy)
                }
                _ => backward::bias_grad_whole(op, &t.g, &dy),
            }
        };
        for tiles in groups {
            let shape = self.group_shape(&tiles[0]);
            let sum =
                partial_sums::sum_in_order(gpu, op, tiles.len(), s.rows, &shape, layout, |k| {
                    part(&tiles[k])
                })?;
            let Some(result) = &result else {
                return Ok(sum);
            };
            let t = &tiles[0];
            match self.pass {
                TiledGrad::WeightGrad => {
                    let at = layout.weight_shape(t.out_start);
                    copy::copy_box(gpu, op, &sum, Box4::whole(t.g.weight_shape()), result, at)?;
                }
                _ => copy::copy_flat(gpu, op, &sum, 0, result, t.range.0, t.range.1)?,
            }
        }
        result.ok_or_else(|| too_large(op, "a split call with no tiles"))
    }
}
