//! conv2d gradients and conv_transpose2d on the CPU: f64 reference loops, and an im2col/col2im
//! baseline (the im2col tutorial's matrix form, with `np.add.at` as a scatter loop).

use ndarray::{s, Array1, Array2, Array4, ArrayView1, ArrayView4, Axis};

use super::conv2d::{fill_columns, input_coord, Real};
use super::{nchw, nchw_mut, new_activation, oihw, shape4};
use crate::error::{invalid, Result};
use crate::grads::{Conv2dGrads, GradSelection};
use crate::params::{AxisGeometry, Conv2dGeometry, Conv2dParams, ConvTranspose2dParams, Layout};

/// The output position that tap `k` of an axis maps input coordinate `i` to, if any:
/// `o * stride + k * dilation = i + pad_before` with `0 <= o < output`.
fn output_coord(axis: &AxisGeometry, i: usize, k: usize) -> Option<usize> {
    let shifted = (i + axis.pad_before).checked_sub(k * axis.dilation)?;
    if shifted % axis.stride != 0 {
        return None;
    }
    let o = shifted / axis.stride;
    (o < axis.output).then_some(o)
}

/// Gradient with respect to the input, in gather form: each input element sums
/// `weight * grad_output` over every (output channel, tap) whose window covers it.
pub fn conv2d_backward_input(
    input_shape: [usize; 4],
    weight: ArrayView4<f32>,
    grad_output: ArrayView4<f32>,
    params: &Conv2dParams,
) -> Result<Array4<f32>> {
    const OP: &str = "cpu::conv2d_backward_input";
    let g = params.backward_geometry(OP, input_shape, shape4(&weight), shape4(&grad_output))?;
    Ok(backward_input_loops(&g, weight, grad_output, None))
}

/// The dx loops shared by the gradient and conv_transpose2d (which adds a bias), on f32 data or
/// on f64 (the magnitudes of `super::magnitude`); they accumulate in f64 either way.
pub(super) fn backward_input_loops<T: Real>(
    g: &Conv2dGeometry,
    weight: ArrayView4<T>,
    grad_output: ArrayView4<T>,
    bias: Option<ArrayView1<T>>,
) -> Array4<T> {
    let weight = oihw(weight, g.layout, g.flip);
    let grad_output = nchw(grad_output, g.layout);
    let cin_pg = g.in_channels_per_group();
    let cout_pg = g.out_channels_per_group();
    let mut stored = new_activation::<T>(g.input_sizes(), g.layout);
    let mut dx = nchw_mut(&mut stored, g.layout);
    for n in 0..g.batch {
        for c in 0..g.in_channels {
            let group = c / cin_pg;
            let ci = c % cin_pg;
            for iy in 0..g.h.input {
                for ix in 0..g.w.input {
                    let mut sum = bias.map_or(0.0, |b| b[c].to_f64());
                    for oc in group * cout_pg..(group + 1) * cout_pg {
                        for ky in 0..g.h.kernel {
                            let Some(oy) = output_coord(&g.h, iy, ky) else {
                                continue;
                            };
                            for kx in 0..g.w.kernel {
                                let Some(ox) = output_coord(&g.w, ix, kx) else {
                                    continue;
                                };
                                sum += weight[[oc, ci, ky, kx]].to_f64()
                                    * grad_output[[n, oc, oy, ox]].to_f64();
                            }
                        }
                    }
                    dx[[n, c, iy, ix]] = T::from_f64(sum);
                }
            }
        }
    }
    stored
}

/// Gradient with respect to the weights: each weight sums `input * grad_output` over every
/// sample and output position, in f64.
pub fn conv2d_backward_weight(
    input: ArrayView4<f32>,
    weight_shape: [usize; 4],
    grad_output: ArrayView4<f32>,
    params: &Conv2dParams,
) -> Result<Array4<f32>> {
    const OP: &str = "cpu::conv2d_backward_weight";
    let g = params.backward_geometry(OP, shape4(&input), weight_shape, shape4(&grad_output))?;
    Ok(backward_weight_loops(&g, input, grad_output))
}

/// The dw loops, on f32 data or on f64 (the magnitudes of `super::magnitude`); they accumulate
/// in f64 either way.
pub(super) fn backward_weight_loops<T: Real>(
    g: &Conv2dGeometry,
    input: ArrayView4<T>,
    grad_output: ArrayView4<T>,
) -> Array4<T> {
    let input = nchw(input, g.layout);
    let grad_output = nchw(grad_output, g.layout);
    let cin_pg = g.in_channels_per_group();
    let cout_pg = g.out_channels_per_group();
    let mut stored = Array4::<T>::default(g.weight_shape());
    // Written through the same (permuted, maybe flipped) view the forward reads weights through.
    let mut dw = oihw_mut(&mut stored, g.layout, g.flip);
    for oc in 0..g.out_channels {
        let group = oc / cout_pg;
        for ci in 0..cin_pg {
            let c = group * cin_pg + ci;
            for ky in 0..g.h.kernel {
                for kx in 0..g.w.kernel {
                    let mut sum = 0.0f64;
                    for n in 0..g.batch {
                        for oy in 0..g.h.output {
                            let Some(iy) = input_coord(&g.h, oy, ky) else {
                                continue;
                            };
                            for ox in 0..g.w.output {
                                let Some(ix) = input_coord(&g.w, ox, kx) else {
                                    continue;
                                };
                                sum += input[[n, c, iy, ix]].to_f64()
                                    * grad_output[[n, oc, oy, ox]].to_f64();
                            }
                        }
                    }
                    dw[[oc, ci, ky, kx]] = T::from_f64(sum);
                }
            }
        }
    }
    stored
}

/// The mutable twin of [`super::oihw`].
fn oihw_mut<T>(w: &mut Array4<T>, layout: Layout, flip: bool) -> ndarray::ArrayViewMut4<'_, T> {
    let mut v = w.view_mut().permuted_axes(layout.weight_permutation());
    if flip {
        v.invert_axis(Axis(2));
        v.invert_axis(Axis(3));
    }
    v
}

/// Gradient with respect to the bias: `grad_output` (stored in `layout`) summed over N, OH and
/// OW, in f64.
pub fn conv2d_backward_bias(grad_output: ArrayView4<f32>, layout: Layout) -> Result<Array1<f32>> {
    let sums = channel_sums("cpu::conv2d_backward_bias", grad_output, layout, f64::from)?;
    Ok(sums.mapv(|v| v as f32))
}

/// `term(v)` summed over N, OH and OW for each channel of `grad_output`, in f64: the bias
/// gradient, and with `|v|` its magnitude.
pub(super) fn channel_sums(
    op: &'static str,
    grad_output: ArrayView4<f32>,
    layout: Layout,
    term: impl Fn(f32) -> f64,
) -> Result<Array1<f64>> {
    let shape = shape4(&grad_output);
    if shape.contains(&0) {
        return Err(invalid(
            op,
            format!("grad_output shape {shape:?} has a zero-sized dimension"),
        ));
    }
    Ok(nchw(grad_output, layout)
        .axis_iter(Axis(1))
        .map(|channel| channel.iter().map(|&v| term(v)).sum::<f64>())
        .collect())
}

/// The requested subset of `(dx, dw, db)`.
pub fn conv2d_backward(
    input: ArrayView4<f32>,
    weight: ArrayView4<f32>,
    grad_output: ArrayView4<f32>,
    params: &Conv2dParams,
    which: GradSelection,
) -> Result<Conv2dGrads<Array4<f32>, Array1<f32>>> {
    const OP: &str = "cpu::conv2d_backward";
    params.backward_geometry(OP, shape4(&input), shape4(&weight), shape4(&grad_output))?;
    which.compute(
        || conv2d_backward_input(shape4(&input), weight, grad_output, params),
        || conv2d_backward_weight(input, shape4(&weight), grad_output, params),
        || conv2d_backward_bias(grad_output, params.layout),
    )
}

/// Transposed convolution (PyTorch's `conv_transpose2d`): the input gradient of the matching
/// conv2d applied to `input`, plus an optional bias of length C_out.
pub fn conv_transpose2d(
    input: ArrayView4<f32>,
    weight: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    params: &ConvTranspose2dParams,
) -> Result<Array4<f32>> {
    const OP: &str = "cpu::conv_transpose2d";
    let g = params.geometry(OP, shape4(&input), shape4(&weight), bias.map(|b| b.len()))?;
    Ok(backward_input_loops(&g, weight, input, bias))
}

/// All three gradients through matrix products, as the im2col tutorial computes them:
/// `dw = dY · colsᵀ`, `dcols = Wᵀ · dY` scattered back into the input with an `np.add.at`-style
/// loop (col2im), `db = Σ dY`. f32 accumulation: the CPU baseline for benchmarks.
pub fn conv2d_backward_im2col(
    input: ArrayView4<f32>,
    weight: ArrayView4<f32>,
    grad_output: ArrayView4<f32>,
    params: &Conv2dParams,
    which: GradSelection,
) -> Result<Conv2dGrads<Array4<f32>, Array1<f32>>> {
    const OP: &str = "cpu::conv2d_backward_im2col";
    let g = params.backward_geometry(OP, shape4(&input), shape4(&weight), shape4(&grad_output))?;
    let input = nchw(input, g.layout);
    let cin_pg = g.in_channels_per_group();
    let cout_pg = g.out_channels_per_group();
    let rows = g.reduction_len();
    let pixels = g.h.output * g.w.output;
    let weight = oihw(weight, g.layout, g.flip)
        .as_standard_layout()
        .into_owned();
    let grad_output = nchw(grad_output, g.layout)
        .as_standard_layout()
        .into_owned();
    let mut dx_stored = which
        .input
        .then(|| new_activation::<f32>(g.input_sizes(), g.layout));
    let mut dx = dx_stored.as_mut().map(|a| nchw_mut(a, g.layout));
    let mut dw = which
        .weight
        .then(|| Array2::<f32>::zeros((g.out_channels, rows)));
    let mut columns = Array2::<f32>::zeros((rows, pixels));
    for n in 0..g.batch {
        for group in 0..g.groups {
            let channels_in = group * cin_pg..(group + 1) * cin_pg;
            let channels_out = group * cout_pg..(group + 1) * cout_pg;
            let dy = grad_output
                .slice(s![n, channels_out.clone(), .., ..])
                .into_shape_with_order((cout_pg, pixels))
                .expect("a standard-layout sample slice is contiguous");
            if let Some(dw) = dw.as_mut() {
                fill_columns(
                    &g,
                    input.slice(s![n, channels_in.clone(), .., ..]),
                    &mut columns,
                );
                let mut block = dw.slice_mut(s![channels_out.clone(), ..]);
                block += &dy.dot(&columns.t());
            }
            if let Some(dx) = dx.as_mut() {
                let kernels = weight
                    .slice(s![channels_out, .., .., ..])
                    .into_shape_with_order((cout_pg, rows))
                    .expect("a standard-layout slice over the outer axis is contiguous");
                let dcols = kernels.t().dot(&dy);
                scatter_columns(&g, &dcols, dx.slice_mut(s![n, channels_in, .., ..]));
            }
        }
    }
    Ok(Conv2dGrads {
        input: dx_stored,
        weight: dw.map(|dw| {
            let oihw_dw = dw
                .into_shape_with_order(g.weight_sizes())
                .expect("dw rows are OIHW in order");
            let mut stored = Array4::<f32>::zeros(g.weight_shape());
            oihw_mut(&mut stored, g.layout, g.flip).assign(&oihw_dw);
            stored
        }),
        bias: which.bias.then(|| {
            grad_output
                .axis_iter(Axis(1))
                .map(|channel| channel.sum())
                .collect()
        }),
    })
}

/// col2im: adds column `(oy, ox)` of row `(ci, ky, kx)` back into the input position that tap
/// read, the inverse of `fill_columns` (numpy's `np.add.at`).
fn scatter_columns(g: &Conv2dGeometry, dcols: &Array2<f32>, mut dx: ndarray::ArrayViewMut3<f32>) {
    let mut row = 0;
    for ci in 0..g.in_channels_per_group() {
        for ky in 0..g.h.kernel {
            for kx in 0..g.w.kernel {
                for oy in 0..g.h.output {
                    let Some(iy) = input_coord(&g.h, oy, ky) else {
                        continue;
                    };
                    for ox in 0..g.w.output {
                        if let Some(ix) = input_coord(&g.w, ox, kx) {
                            dx[[ci, iy, ix]] += dcols[[row, oy * g.w.output + ox]];
                        }
                    }
                }
                row += 1;
            }
        }
    }
}
