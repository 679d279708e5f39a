//! conv2d on the CPU: plain loops with f64 accumulation, and im2col + matrix product.

use ndarray::{s, Array2, Array4, ArrayView1, ArrayView3, ArrayView4, Axis};

use super::{nchw, nchw_mut, new_activation, oihw, shape4};
use crate::activation::Activation;
use crate::error::Result;
use crate::params::{AxisGeometry, Conv2dGeometry, Conv2dParams};

const OP: &str = "cpu::conv2d";

/// The reference convolution (cross-correlation, NCHW input, OIHW weights): for every output
/// element, the sum over its window in f64, then the bias, rounded once to f32.
pub fn conv2d(
    input: ArrayView4<f32>,
    weight: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    params: &Conv2dParams,
) -> Result<Array4<f32>> {
    conv2d_loops(input, weight, bias, params, Activation::None)
}

/// [`conv2d`] followed by `activation`, applied in f64 before the single rounding to f32: the
/// reference for the GPU's fused epilogue.
pub fn conv2d_with_activation(
    input: ArrayView4<f32>,
    weight: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    params: &Conv2dParams,
    activation: Activation,
) -> Result<Array4<f32>> {
    conv2d_loops(input, weight, bias, params, activation)
}

/// [`conv2d`] on f64 data, for finite-difference checks that need more precision than f32.
pub fn conv2d_f64(
    input: ArrayView4<f64>,
    weight: ArrayView4<f64>,
    bias: Option<ArrayView1<f64>>,
    params: &Conv2dParams,
) -> Result<Array4<f64>> {
    conv2d_loops(input, weight, bias, params, Activation::None)
}

/// An element type of the reference loops; they accumulate in f64 whatever it is.
pub trait Real: Copy + Default {
    /// The value as f64, exactly.
    fn to_f64(self) -> f64;
    /// The nearest value of this type to `v`.
    fn from_f64(v: f64) -> Self;
}

impl Real for f32 {
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Real for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

fn conv2d_loops<T: Real>(
    input: ArrayView4<T>,
    weight: ArrayView4<T>,
    bias: Option<ArrayView1<T>>,
    params: &Conv2dParams,
    activation: Activation,
) -> Result<Array4<T>> {
    let g = params.geometry(OP, shape4(&input), shape4(&weight), bias.map(|b| b.len()))?;
    let input = nchw(input, g.layout);
    let weight = oihw(weight, g.layout, g.flip);
    let cin_pg = g.in_channels_per_group();
    let cout_pg = g.out_channels_per_group();
    let mut stored = new_activation::<T>(g.output_sizes(), g.layout);
    let mut output = nchw_mut(&mut stored, g.layout);
    for n in 0..g.batch {
        for oc in 0..g.out_channels {
            let group = oc / cout_pg;
            for oy in 0..g.h.output {
                for ox in 0..g.w.output {
                    let mut sum = 0.0f64;
                    for ci in 0..cin_pg {
                        let c = group * cin_pg + ci;
                        for ky in 0..g.h.kernel {
                            let Some(iy) = input_coord(&g.h, oy, ky) else {
                                continue;
                            };
                            for kx in 0..g.w.kernel {
                                let Some(ix) = input_coord(&g.w, ox, kx) else {
                                    continue;
                                };
                                sum += input[[n, c, iy, ix]].to_f64()
                                    * weight[[oc, ci, ky, kx]].to_f64();
                            }
                        }
                    }
                    if let Some(b) = bias {
                        sum += b[oc].to_f64();
                    }
                    output[[n, oc, oy, ox]] = T::from_f64(activation.apply(sum));
                }
            }
        }
    }
    Ok(stored)
}

/// The input coordinate that tap `k` of output position `o` reads, or `None` in the padding.
pub(super) fn input_coord(axis: &AxisGeometry, o: usize, k: usize) -> Option<usize> {
    let padded = o * axis.stride + k * axis.dilation;
    let i = padded.checked_sub(axis.pad_before)?;
    (i < axis.input).then_some(i)
}

/// The same convolution as one matrix product per (sample, group): the input windows are
/// unrolled into the columns of a `(C_in/groups * kh * kw, OH * OW)` matrix (im2col) and the
/// group's weights, viewed as `(C_out/groups, C_in/groups * kh * kw)`, multiply it. f32
/// accumulation through `ndarray`'s matrix product: this is the CPU baseline for benchmarks.
pub fn conv2d_im2col(
    input: ArrayView4<f32>,
    weight: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    params: &Conv2dParams,
) -> Result<Array4<f32>> {
    let g = params.geometry(OP, shape4(&input), shape4(&weight), bias.map(|b| b.len()))?;
    let input = nchw(input, g.layout);
    let weight = oihw(weight, g.layout, g.flip);
    let cin_pg = g.in_channels_per_group();
    let cout_pg = g.out_channels_per_group();
    let rows = g.reduction_len();
    let pixels = g.h.output * g.w.output;
    let weight = weight.as_standard_layout();
    let mut stored = new_activation::<f32>(g.output_sizes(), g.layout);
    let mut output = nchw_mut(&mut stored, g.layout);
    let mut columns = Array2::<f32>::zeros((rows, pixels));
    for n in 0..g.batch {
        for group in 0..g.groups {
            let sample = input.slice(s![n, group * cin_pg..(group + 1) * cin_pg, .., ..]);
            fill_columns(&g, sample, &mut columns);
            let kernels = weight
                .slice(s![group * cout_pg..(group + 1) * cout_pg, .., .., ..])
                .into_shape_with_order((cout_pg, rows))
                .expect("a standard-layout slice over the outer axis is contiguous");
            let product = kernels.dot(&columns);
            let mut out = output.slice_mut(s![n, group * cout_pg..(group + 1) * cout_pg, .., ..]);
            for (mut plane, row) in out.axis_iter_mut(Axis(0)).zip(product.rows()) {
                let row = row
                    .into_shape_with_order((g.h.output, g.w.output))
                    .expect("a matrix row holds exactly one output plane");
                plane.assign(&row);
            }
        }
    }
    if let Some(b) = bias {
        for (oc, mut channel) in output.axis_iter_mut(Axis(1)).enumerate() {
            channel += b[oc];
        }
    }
    Ok(stored)
}

/// im2col for one sample and one group: row `(ci, ky, kx)`, column `(oy, ox)` holds the input
/// value that tap reads, or 0 in the padding.
pub(super) fn fill_columns(g: &Conv2dGeometry, sample: ArrayView3<f32>, columns: &mut Array2<f32>) {
    let mut row = 0;
    for plane in sample.outer_iter() {
        for ky in 0..g.h.kernel {
            for kx in 0..g.w.kernel {
                let mut dst = columns.row_mut(row);
                let dst = dst
                    .as_slice_mut()
                    .expect("rows of a standard-layout matrix are contiguous");
                for oy in 0..g.h.output {
                    let iy = input_coord(&g.h, oy, ky);
                    let out_row = &mut dst[oy * g.w.output..(oy + 1) * g.w.output];
                    match iy {
                        None => out_row.fill(0.0),
                        Some(iy) => {
                            for (ox, v) in out_row.iter_mut().enumerate() {
                                *v = input_coord(&g.w, ox, kx).map_or(0.0, |ix| plane[[iy, ix]]);
                            }
                        }
                    }
                }
                row += 1;
            }
        }
    }
}
