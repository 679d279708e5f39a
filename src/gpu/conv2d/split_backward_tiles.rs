//! The tiles of a split conv2d gradient or conv_transpose2d (`gpu::conv2d::split_backward`): each tile's own conv geometry and the boxes it reads and writes.

use crate::error::{too_large, Result};
use crate::gpu::conv2d::split_backward::{TiledGrad, Whole};
use crate::gpu::split::{self, Cut};
use crate::params::{AxisGeometry, Conv2dGeometry};

/// A tile: its own conv geometry, its channel range in the result's channel axis, and where
/// the boxes it reads (input, grad_output, weight: logical `[n, c, h, w]` / `[o, i, kh, kw]`)
/// and writes (dx: logical activation coordinates; dw: logical weight coordinates; db: its
/// first channel) start.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tile {
    pub g: Conv2dGeometry,
    pub range: (usize, usize),
    /// The other side's channels within the group, relative to it: dx's output channels
    /// (a part of a sum), dw's input channels (a box of dw); all of them when not cut.
    pub part: (usize, usize),
    /// Whether conv_transpose2d's bias is added here (the first part of a tile only).
    pub with_bias: bool,
    pub x_start: [usize; 4],
    pub dy_start: [usize; 4],
    pub w_start: [usize; 4],
    pub out_start: [usize; 4],
}

impl Whole<'_> {
    /// The other side's channels per group (dx: output, dw: input), which a part splits.
    pub(super) fn other_per_group(&self) -> usize {
        match self.pass {
            TiledGrad::InputGrad | TiledGrad::Transpose { .. } => self.g.out_channels_per_group(),
            TiledGrad::WeightGrad => self.g.in_channels_per_group(),
            TiledGrad::BiasGrad => 1,
        }
    }

    pub(super) fn tiles(&self, cut: Cut) -> Result<Vec<Tile>> {
        let g = self.g;
        let whole = self.whole_cut();
        let per_group = match self.pass {
            TiledGrad::InputGrad | TiledGrad::Transpose { .. } => g.in_channels_per_group(),
            TiledGrad::WeightGrad | TiledGrad::BiasGrad => g.out_channels_per_group(),
        };
        let other = self.other_per_group();
        let inner = self.inner.unwrap_or(other).clamp(1, other);
        let parts: Vec<(usize, usize)> = (0..other)
            .step_by(inner)
            .map(|q0| (q0, inner.min(other - q0)))
            .collect();
        // A part is within one group, so its tile's channel range must be too.
        let channels = if parts.len() > 1 {
            cut.channels.min(per_group)
        } else {
            cut.channels
        };
        let mut tiles = Vec::new();
        for (c0, cb) in split::channel_ranges(whole.channels, per_group, channels) {
            let before = tiles.len();
            // dx: a tile's parts are consecutive, to be summed; dw: a part is a box of its
            // own, over all samples and rows.
            let (outer, innermost) = match self.pass {
                TiledGrad::InputGrad | TiledGrad::Transpose { .. } => {
                    (vec![(0, other)], parts.clone())
                }
                _ => (parts.clone(), vec![(0, other)]),
            };
            for &dw_part in &outer {
                for n0 in (0..g.batch).step_by(cut.samples) {
                    for r0 in (0..whole.rows).step_by(cut.rows) {
                        let nb = cut.samples.min(g.batch - n0);
                        let rb = cut.rows.min(whole.rows - r0);
                        for &dx_part in &innermost {
                            let at = ([n0, c0, r0], [nb, cb, rb]);
                            let tile = match self.pass {
                                TiledGrad::InputGrad | TiledGrad::Transpose { .. } => {
                                    Some(self.input_tile(at.0, at.1, dx_part))
                                }
                                TiledGrad::WeightGrad => self.weight_tile(at.0, at.1, dw_part)?,
                                TiledGrad::BiasGrad => Some(self.bias_tile(at.0, at.1)),
                            };
                            tiles.extend(tile);
                        }
                    }
                }
            }
            if tiles.len() == before {
                return Err(too_large(
                    self.op,
                    format!(
                        "split into bands of {} output row(s), every band's windows lie wholly \
                         in the padding (padding {} + {} around {} input rows), so no band is \
                         left to compute",
                        cut.rows, g.h.pad_before, g.h.pad_after, g.h.input
                    ),
                ));
            }
        }
        Ok(tiles)
    }

    /// The dx tile of samples `n0..`, input channels `c0..` and input rows `r0..`, over the
    /// output channels `q0..q0 + qb` of its group.
    fn input_tile(
        &self,
        [n0, c0, r0]: [usize; 3],
        [nb, cb, rb]: [usize; 3],
        (q0, qb): (usize, usize),
    ) -> Tile {
        let g = self.g;
        let (ipg, opg) = (g.in_channels_per_group(), g.out_channels_per_group());
        let group = c0 / ipg;
        let whole_groups = c0.is_multiple_of(ipg) && cb.is_multiple_of(ipg);
        let (groups, first_in) = if whole_groups {
            (cb / ipg, 0)
        } else {
            (1, c0 - group * ipg)
        };
        // A part (qb < opg) lies within one group: `tiles` keeps its range there.
        let out_channels = if qb < opg { qb } else { groups * opg };
        let (o0, h) = if rb == g.h.input {
            (0, g.h)
        } else {
            g.h.gather_band(r0, rb)
        };
        Tile {
            g: Conv2dGeometry {
                batch: nb,
                in_channels: cb,
                out_channels,
                groups,
                h,
                ..*g
            },
            range: (c0, cb),
            part: (q0, qb),
            with_bias: self.pass == (TiledGrad::Transpose { bias: true }) && q0 == 0,
            x_start: [0; 4],
            dy_start: [n0, group * opg + q0, o0, 0],
            w_start: [group * opg + q0, first_in, 0, 0],
            out_start: [n0, c0, r0, 0],
        }
    }

    /// The dw tile of samples `n0..`, output channels `o0..` and output rows `y0..`, over the
    /// input channels `p0..p0 + pb` of its group; `None` when those rows' windows read only
    /// padding (they add nothing to dw).
    fn weight_tile(
        &self,
        [n0, o0, y0]: [usize; 3],
        [nb, ob, yb]: [usize; 3],
        (p0, pb): (usize, usize),
    ) -> Result<Option<Tile>> {
        let g = self.g;
        let (ipg, opg) = (g.in_channels_per_group(), g.out_channels_per_group());
        let group = o0 / opg;
        let whole_groups = o0.is_multiple_of(opg) && ob.is_multiple_of(opg);
        let groups = if whole_groups { ob / opg } else { 1 };
        // A part (pb < ipg) lies within one group: `tiles` keeps its range there.
        let in_channels = if pb < ipg { pb } else { groups * ipg };
        let (row0, h) = if yb == g.h.output {
            (0, g.h)
        } else {
            match g.h.output_band(y0, yb) {
                Some(band) => band,
                None => return Ok(None),
            }
        };
        Ok(Some(Tile {
            g: Conv2dGeometry {
                batch: nb,
                in_channels,
                out_channels: ob,
                groups,
                h,
                ..*g
            },
            range: (o0, ob),
            part: (p0, pb),
            with_bias: false,
            x_start: [n0, group * ipg + p0, row0, 0],
            dy_start: [n0, o0, y0, 0],
            w_start: [0; 4],
            out_start: [o0, p0, 0, 0],
        }))
    }

    /// The db tile: grad_output's box as the output of a depthwise 1x1 conv, which has its
    /// shape and is all the bias reduction needs.
    fn bias_tile(&self, [n0, o0, y0]: [usize; 3], [nb, ob, yb]: [usize; 3]) -> Tile {
        let g = self.g;
        let unit = |size: usize| AxisGeometry {
            input: size,
            kernel: 1,
            stride: 1,
            dilation: 1,
            pad_before: 0,
            pad_after: 0,
            output: size,
        };
        Tile {
            g: Conv2dGeometry {
                batch: nb,
                in_channels: ob,
                out_channels: ob,
                groups: ob,
                h: unit(yb),
                w: unit(g.w.output),
                layout: g.layout,
                flip: false,
            },
            range: (o0, ob),
            part: (0, 1),
            with_bias: false,
            x_start: [0; 4],
            dy_start: [n0, o0, y0, 0],
            w_start: [0; 4],
            out_start: [o0, 0, 0, 0],
        }
    }
}
