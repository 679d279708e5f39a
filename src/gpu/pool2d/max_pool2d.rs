//! Host side of the max-pooling kernels: validation, index provenance checks, variant choice, dispatch.

use crate::error::{invalid, too_large, Result};
use crate::gpu::kernels::Kernel;
use crate::gpu::plan::memory::{self, MemoryEstimate};
use crate::gpu::plan::variant_env::{variant_from_env, UnknownVariant};
use crate::gpu::pool2d::split::{self, PoolPass, Split};
use crate::gpu::runtime::dispatch::DispatchGrid;
use crate::gpu::runtime::launch::{
    check_binding, check_layout, check_same_gpu, check_whole, dims4, submit, Dispatch, Resource,
};
use crate::gpu::runtime::tensor::{Contents, IndexOrigin};
use crate::gpu::runtime::uniforms::uniform_struct;
use crate::gpu::{Gpu, GpuTensor};
use crate::params::{IndexStyle, Layout, Pool2dGeometry, Pool2dParams};

uniform_struct! {
    /// Mirrors `Pool2dUniforms` in `shaders/pool2d/max_pool2d.wgsl`.
    pub struct Pool2dUniforms {
        batch, channels, in_h, in_w,
        out_h, out_w, kernel_h, kernel_w,
        stride_h, stride_w, pad_h, pad_w,
        dilation_h, dilation_w, invocations, index_style,
        in_stride_n, in_stride_c, in_stride_h, in_stride_w,
        out_stride_n, out_stride_c, out_stride_h, out_stride_w,
        index_base, _pad0, _pad1, _pad2,
    }
}

fn uniforms(g: &Pool2dGeometry, invocations: u32, index_base: u32) -> Pool2dUniforms {
    // Geometry validation bounds every size by u32::MAX elements, so these casts are exact.
    let u = |v: usize| v as u32;
    let input_strides = g.layout.activation_strides(g.input_sizes());
    let output_strides = g.layout.activation_strides(g.output_sizes());
    Pool2dUniforms {
        batch: u(g.batch),
        channels: u(g.channels),
        in_h: u(g.h.input),
        in_w: u(g.w.input),
        out_h: u(g.h.output),
        out_w: u(g.w.output),
        kernel_h: u(g.h.kernel),
        kernel_w: u(g.w.kernel),
        stride_h: u(g.h.stride),
        stride_w: u(g.w.stride),
        pad_h: u(g.h.pad_before),
        pad_w: u(g.w.pad_before),
        dilation_h: u(g.h.dilation),
        dilation_w: u(g.w.dilation),
        invocations,
        index_style: match g.index_style {
            IndexStyle::PyTorch => 0,
            IndexStyle::TensorFlow => 1,
        },
        in_stride_n: u(input_strides[0]),
        in_stride_c: u(input_strides[1]),
        in_stride_h: u(input_strides[2]),
        in_stride_w: u(input_strides[3]),
        out_stride_n: u(output_strides[0]),
        out_stride_c: u(output_strides[1]),
        out_stride_h: u(output_strides[2]),
        out_stride_w: u(output_strides[3]),
        index_base,
        ..Default::default()
    }
}

fn grid(gpu: &Gpu, op: &'static str, invocations: usize) -> Result<DispatchGrid> {
    DispatchGrid::for_invocations(
        op,
        invocations as u64,
        gpu.limits().max_compute_workgroups_per_dimension,
    )
}

/// Environment variable that forces a max-pooling kernel variant by name (`per-element`,
/// `blocked`) on every `Gpu` created afterwards, as [`Gpu::force_pool_variant`] does.
pub const POOL_VARIANT_ENV: &str = "WGCONV_POOL_VARIANT";

/// How the pooling kernels map work to invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolVariant {
    /// One output (forward) or one input element (backward, a gather over the windows that
    /// cover it) per invocation: any shape, and the most parallel, for real GPUs.
    PerElement,
    /// More work per invocation, for CPU adapters (lavapipe), where each invocation and each
    /// load costs far more than arithmetic: the forward takes eight outputs of a row with vec4
    /// loads where the shape allows it (dense NCHW, windows at most 3 high and 2 or 3 wide at
    /// column stride 2, left padding at most 1, widths multiples of 4), and the backward one
    /// (n, c) plane per invocation, scattering in window order (unless some window has no tap
    /// inside the input, or TensorFlow indices meet NCHW). Elsewhere it runs per element.
    Blocked,
}

impl PoolVariant {
    /// Every variant.
    pub const ALL: [PoolVariant; 2] = [PoolVariant::PerElement, PoolVariant::Blocked];

    /// The name `--pool-variant` and `WGCONV_POOL_VARIANT` take.
    pub fn name(self) -> &'static str {
        match self {
            PoolVariant::PerElement => "per-element",
            PoolVariant::Blocked => "blocked",
        }
    }

    /// The variant called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// The forced variant, else `Blocked` on CPU adapters and `PerElement` elsewhere; for the
    /// backward, unforced, `PerElement` also where too few planes would fill the scan's lanes.
    pub fn choose(gpu: &Gpu, g: &Pool2dGeometry, backward: bool) -> Self {
        if let Some(forced) = gpu.forced_pool_variant() {
            return forced;
        }
        match gpu.adapter_info().device_type {
            wgpu::DeviceType::Cpu if !backward || g.batch * g.channels >= SCAN_MIN_PLANES => {
                PoolVariant::Blocked
            }
            _ => PoolVariant::PerElement,
        }
    }

    /// The entry point this variant runs for the forward pass of `g` (`--explain`, tests).
    pub fn forward_entry_point(self, g: &Pool2dGeometry, with_indices: bool) -> &'static str {
        self.forward_kernel(g, with_indices).entry_point()
    }

    /// The entry point this variant runs for the backward pass of `g`.
    pub fn backward_entry_point(self, g: &Pool2dGeometry) -> &'static str {
        self.backward_kernel(g).entry_point()
    }

    /// The forward kernel this variant runs for `g`: `Blocked` takes the octet kernels only
    /// where the shape allows (see `octet_max` in the shader), their two-row, four-load form
    /// for windows at most 2x2 exactly 2 wide without left padding.
    pub(crate) fn forward_kernel(self, g: &Pool2dGeometry, with_indices: bool) -> Kernel {
        let octets = self == PoolVariant::Blocked
            && g.layout == Layout::Nchw
            && g.h.kernel <= 3
            && matches!(g.w.kernel, 2 | 3)
            && g.w.stride == 2
            && g.w.dilation == 1
            && g.w.pad_before <= 1
            && g.w.input.is_multiple_of(4)
            && g.w.output.is_multiple_of(4);
        let two_by_two = g.h.kernel <= 2 && g.w.kernel == 2 && g.w.pad_before == 0;
        match (octets, two_by_two, with_indices) {
            (false, _, false) => Kernel::MaxPool2dForward,
            (false, _, true) => Kernel::MaxPool2dForwardWithIndices,
            (true, false, false) => Kernel::MaxPool2dForwardOctets,
            (true, false, true) => Kernel::MaxPool2dForwardOctetsWithIndices,
            (true, true, false) => Kernel::MaxPool2dForwardOctets2x2,
            (true, true, true) => Kernel::MaxPool2dForwardOctets2x2WithIndices,
        }
    }

    /// The backward kernel this variant runs for `g`: `Blocked` scans planes unless a window
    /// has no tap inside the input (it must then route nowhere) or TensorFlow indices meet NCHW
    /// (the scan turns an index into an offset without dividing).
    pub(crate) fn backward_kernel(self, g: &Pool2dGeometry) -> Kernel {
        let scan = self == PoolVariant::Blocked
            && g.every_window_has_taps()
            && !(g.layout == Layout::Nchw && g.index_style == IndexStyle::TensorFlow);
        if scan {
            Kernel::MaxPool2dBackwardScan
        } else {
            Kernel::MaxPool2dBackward
        }
    }
}

/// Below this many (n, c) planes the scan backward leaves lavapipe's lanes idle, and the
/// gather form (one invocation per input element) is faster unless forced.
const SCAN_MIN_PLANES: usize = 16;

/// The peak bytes of a pooling forward pass unsplit: values, indices, uniforms.
pub(crate) fn forward_whole_bytes(gpu: &Gpu, g: &Pool2dGeometry, with_indices: bool) -> u64 {
    let out = memory::tensor_bytes(gpu, &g.output_shape());
    out * (1 + u64::from(with_indices)) + memory::uniform_bytes(gpu, POOL_UNIFORMS)
}

/// The peak bytes of a pooling backward pass unsplit: the input gradient and uniforms.
pub(crate) fn backward_whole_bytes(gpu: &Gpu, g: &Pool2dGeometry) -> u64 {
    memory::tensor_bytes(gpu, &g.input_shape()) + memory::uniform_bytes(gpu, POOL_UNIFORMS)
}

const POOL_UNIFORMS: usize = std::mem::size_of::<Pool2dUniforms>();

/// [`crate::gpu::Gpu::memory_required`] for max pooling.
pub(crate) fn forward_memory(
    gpu: &Gpu,
    input: [usize; 4],
    params: &Pool2dParams,
    with_indices: bool,
) -> Result<MemoryEstimate> {
    const OP: &str = "max_pool2d";
    let g = params.geometry(OP, input)?;
    let output_bytes = memory::tensor_bytes(gpu, &g.output_shape()) * (1 + u64::from(with_indices));
    let split = Split {
        op: OP,
        g: &g,
        pass: PoolPass::Forward { with_indices },
    };
    estimate(
        gpu,
        split,
        output_bytes,
        forward_whole_bytes(gpu, &g, with_indices),
    )
}

/// [`crate::gpu::Gpu::memory_required`] for the max-pooling backward pass.
pub(crate) fn backward_memory(
    gpu: &Gpu,
    input: [usize; 4],
    params: &Pool2dParams,
) -> Result<MemoryEstimate> {
    const OP: &str = "max_pool2d_backward";
    let g = params.geometry(OP, input)?;
    let output_bytes = memory::tensor_bytes(gpu, &g.input_shape());
    let split = Split {
        op: OP,
        g: &g,
        pass: PoolPass::Backward,
    };
    estimate(gpu, split, output_bytes, backward_whole_bytes(gpu, &g))
}

fn estimate(gpu: &Gpu, split: Split, output_bytes: u64, whole: u64) -> Result<MemoryEstimate> {
    let avail = gpu.memory_available();
    let (peak_bytes, pieces) = if split.needs_split(gpu, avail)? {
        split::peak(gpu, split, avail)?
    } else {
        (whole, 1)
    };
    Ok(MemoryEstimate {
        peak_bytes,
        output_bytes,
        pieces,
    })
}

/// Max pooling for inference: the pooled values only (no index buffer is written).
pub fn max_pool2d(input: &GpuTensor, params: &Pool2dParams) -> Result<GpuTensor> {
    Ok(forward(input, params, false)?.0)
}

/// Max pooling for training: the pooled values and the argmax indices, `h * W + w` within each
/// (n, c) plane as PyTorch returns them, or TensorFlow's `(h * W + w) * C + c` when
/// `params.index_style` asks (read them with [`GpuTensor::read_indices`]). Both outputs are in
/// `params.layout`.
pub fn max_pool2d_with_indices(
    input: &GpuTensor,
    params: &Pool2dParams,
) -> Result<(GpuTensor, GpuTensor)> {
    let (values, indices) = forward(input, params, true)?;
    Ok((values, indices.expect("requested")))
}

fn forward(
    input: &GpuTensor,
    params: &Pool2dParams,
    with_indices: bool,
) -> Result<(GpuTensor, Option<GpuTensor>)> {
    const OP: &str = "max_pool2d";
    let gpu = input.gpu();
    let layout = params.layout;
    check_pool_variant_env(gpu, OP)?;
    let g = params.geometry(OP, dims4(OP, "input", input, layout)?)?;
    if with_indices {
        check_indices_fit(OP, &g)?;
    }
    let origin = IndexOrigin::Pooled {
        input_shape: g.input_shape(),
        params: *params,
    };
    let split = Split {
        op: OP,
        g: &g,
        pass: PoolPass::Forward { with_indices },
    };
    if split.needs_split(gpu, gpu.memory_available())? {
        return split::forward(input, split, origin);
    }
    forward_whole(OP, input, &g, with_indices, 0, origin)
}

/// The GPU stores indices as `u32`. A window with no tap inside the input returns its first
/// tap's index (PyTorch's rule), which dilation and padding can put past `u32::MAX` on a small
/// input: refused here rather than wrapped.
fn check_indices_fit(op: &'static str, g: &Pool2dGeometry) -> Result<()> {
    // Where even the bound fits, skip the exact walk over every output row and column.
    if g.index_bound() <= u128::from(u32::MAX) {
        return Ok(());
    }
    match g.largest_tapless_index() {
        Some((index, oh, ow)) if index > u128::from(u32::MAX) => Err(too_large(
            op,
            format!(
                "the window of output ({oh}, {ow}) lies wholly in the padding (padding {:?}, \
                 dilation {:?}, input {}x{}), so its index is its first tap's, {index}, past the \
                 GPU's u32 indices (at most {}); the CPU path returns it",
                [g.h.pad_before, g.w.pad_before],
                [g.h.dilation, g.w.dilation],
                g.h.input,
                g.w.input,
                u32::MAX
            ),
        )),
        _ => Ok(()),
    }
}

/// One forward dispatch over all of `g`, whose indices start at `index_base` (a band's first
/// row in the whole plane) and carry `origin`.
pub(crate) fn forward_whole(
    op: &'static str,
    input: &GpuTensor,
    g: &Pool2dGeometry,
    with_indices: bool,
    index_base: u32,
    origin: IndexOrigin,
) -> Result<(GpuTensor, Option<GpuTensor>)> {
    let gpu = input.gpu();
    let layout = g.layout;
    check_binding(gpu, op, "input", &g.input_shape())?;
    check_binding(gpu, op, "output", &g.output_shape())?;
    check_whole(op, &[("input", input)])?;
    let outputs = g.output_shape().iter().product::<usize>();
    let kernel_id = PoolVariant::choose(gpu, g, false).forward_kernel(g, with_indices);
    let invocations = match kernel_id {
        // An octet per eight outputs of a row, the last one half-empty when out_w is 4 past a
        // multiple of 8: rows times octets per row, as the shader numbers them
        // (`octet_place`). Rounding rows * (out_w + 4) / 8 as a whole instead counts half an
        // octet per row too many where out_w is a multiple of 8, octets past the last row
        // that read past the input and write past the output.
        Kernel::MaxPool2dForwardOctets
        | Kernel::MaxPool2dForwardOctetsWithIndices
        | Kernel::MaxPool2dForwardOctets2x2
        | Kernel::MaxPool2dForwardOctets2x2WithIndices => {
            outputs / g.w.output * g.w.output.div_ceil(8)
        }
        _ => outputs,
    };
    let grid = grid(gpu, op, invocations)?;
    let uniforms = uniforms(g, grid.invocations, index_base);
    let kernel = kernel_id.compiled(gpu, op)?;
    gpu.capture(op, || -> Result<(GpuTensor, Option<GpuTensor>)> {
        let values = GpuTensor::uninit(gpu, op, &g.output_shape(), layout)?;
        let indices = with_indices
            .then(|| GpuTensor::uninit_indices(gpu, op, &g.output_shape(), layout, origin))
            .transpose()?;
        check_whole(op, &[("output", &values)])?;
        if let Some(t) = &indices {
            check_whole(op, &[("indices", t)])?;
        }
        let index_buffer = indices
            .as_ref()
            .map_or(&gpu.inner.placeholder_rw, |t| t.first_buffer());
        submit(
            gpu,
            op,
            &[Dispatch {
                kernel: &kernel,
                label: kernel_id.entry_point(),
                uniforms: bytemuck::bytes_of(&uniforms),
                resources: Resource::buffers([
                    input.first_buffer(),
                    &gpu.inner.placeholder,
                    values.first_buffer(),
                    index_buffer,
                ]),
                grid,
            }],
        )?;
        Ok((values, indices))
    })?
}

/// Routes `grad_output` back through `indices` to an input of `input_shape`: each input
/// element sums the gradients of the windows that chose it, in a fixed order (bitwise
/// reproducible, no atomics).
///
/// `indices` must come from [`max_pool2d_with_indices`] with the same input shape and params,
/// or from [`GpuTensor::upload_indices`] (PyTorch's indices, say); uploaded indices are checked
/// on the host against their windows before anything is dispatched, so an out-of-range index is
/// an `Err`, never an out-of-bounds access.
pub fn max_pool2d_backward(
    grad_output: &GpuTensor,
    indices: &GpuTensor,
    input_shape: [usize; 4],
    params: &Pool2dParams,
) -> Result<GpuTensor> {
    const OP: &str = "max_pool2d_backward";
    let gpu = grad_output.gpu();
    check_same_gpu(gpu, OP, &[indices])?;
    check_pool_variant_env(gpu, OP)?;
    let g = params.geometry(OP, input_shape)?;
    let index_shape = indices.dims4().ok_or_else(|| {
        invalid(
            OP,
            format!("indices must be 4-D, got shape {:?}", indices.shape()),
        )
    })?;
    check_layout(OP, "indices", indices, params.layout)?;
    crate::cpu::check_pool_shapes(
        OP,
        &g,
        dims4(OP, "grad_output", grad_output, params.layout)?,
        index_shape,
    )?;
    match indices.contents() {
        Contents::Values => {
            return Err(invalid(OP, "indices tensor holds f32 values; pass the indices from max_pool2d_with_indices or GpuTensor::upload_indices"))
        }
        Contents::Indices(IndexOrigin::Pooled {
            input_shape: pooled_shape,
            params: pooled_params,
        }) => {
            if *pooled_shape != input_shape || pooled_params != params {
                return Err(invalid(
                    OP,
                    format!(
                        "indices come from pooling an input of shape {pooled_shape:?} with \
                         {pooled_params:?}, not {input_shape:?} with {params:?}"
                    ),
                ));
            }
        }
        Contents::Indices(IndexOrigin::Uploaded(host)) => {
            let logical = host.view().permuted_axes(g.layout.activation_permutation());
            for ((n, c, oh, ow), &index) in logical.indexed_iter() {
                g.check_index(OP, [n, c, oh, ow], i64::from(index))?;
            }
        }
    }
    let split = Split {
        op: OP,
        g: &g,
        pass: PoolPass::Backward,
    };
    if split.needs_split(gpu, gpu.memory_available())? {
        return split::backward(grad_output, indices, split);
    }
    backward_whole(OP, grad_output, indices, &g, 0, true)
}

/// One backward dispatch over all of `g`, whose indices start at `index_base`. `whole_rows`
/// says whether `g` spans its planes' every row: in a band of rows, windows at the edges may
/// name rows outside it, which the gather form skips but the plane scan would write to.
pub(crate) fn backward_whole(
    op: &'static str,
    grad_output: &GpuTensor,
    indices: &GpuTensor,
    g: &Pool2dGeometry,
    index_base: u32,
    whole_rows: bool,
) -> Result<GpuTensor> {
    let gpu = grad_output.gpu();
    check_binding(gpu, op, "grad_input", &g.input_shape())?;
    check_binding(gpu, op, "grad_output", &g.output_shape())?;
    check_whole(op, &[("grad_output", grad_output), ("indices", indices)])?;
    let kernel_id = match PoolVariant::choose(gpu, g, true).backward_kernel(g) {
        Kernel::MaxPool2dBackwardScan if !whole_rows => Kernel::MaxPool2dBackward,
        kernel => kernel,
    };
    let grid = if kernel_id == Kernel::MaxPool2dBackwardScan {
        DispatchGrid::for_invocations_in(
            op,
            (g.batch * g.channels) as u64,
            Kernel::MaxPool2dBackwardScan.workgroup_size(),
            gpu.limits().max_compute_workgroups_per_dimension,
        )?
    } else {
        grid(gpu, op, g.input_shape().iter().product::<usize>())?
    };
    let uniforms = uniforms(g, grid.invocations, index_base);
    let kernel = kernel_id.compiled(gpu, op)?;
    gpu.capture(op, || -> Result<GpuTensor> {
        let dx = GpuTensor::uninit(gpu, op, &g.input_shape(), g.layout)?;
        check_whole(op, &[("grad_input", &dx)])?;
        submit(
            gpu,
            op,
            &[Dispatch {
                kernel: &kernel,
                label: kernel_id.entry_point(),
                uniforms: bytemuck::bytes_of(&uniforms),
                resources: Resource::buffers([
                    grad_output.first_buffer(),
                    indices.first_buffer(),
                    dx.first_buffer(),
                    &gpu.inner.placeholder_rw,
                ]),
                grid,
            }],
        )?;
        Ok(dx)
    })?
}

/// The pooling planner's per-device settings, kept in the `Gpu`'s extensions.
struct PoolSettings {
    /// A variant every call must use (tests, `--pool-variant`).
    forced: std::sync::Mutex<Option<PoolVariant>>,
    /// `WGCONV_POOL_VARIANT` when it names no variant.
    unknown_env: Option<UnknownVariant>,
}

impl Default for PoolSettings {
    /// Read when a `Gpu` first plans a pooling call: `WGCONV_POOL_VARIANT` forces a variant.
    fn default() -> Self {
        let (forced, unknown_env) = variant_from_env(POOL_VARIANT_ENV, PoolVariant::from_name);
        Self {
            forced: std::sync::Mutex::new(forced),
            unknown_env,
        }
    }
}

/// `Err` when `WGCONV_POOL_VARIANT` names no variant and no variant is forced in code.
fn check_pool_variant_env(gpu: &Gpu, op: &'static str) -> Result<()> {
    match &gpu.pool_settings().unknown_env {
        Some(unknown) if gpu.forced_pool_variant().is_none() => Err(unknown.error(
            op,
            "max-pooling kernel variant",
            PoolVariant::ALL.map(PoolVariant::name),
        )),
        _ => Ok(()),
    }
}

impl Gpu {
    fn pool_settings(&self) -> std::sync::Arc<PoolSettings> {
        self.inner.extensions.get::<PoolSettings>()
    }

    /// Makes every max-pooling call on this device (and its clones) use `variant` instead of
    /// the choice by adapter type; `None` gives the choice back.
    pub fn force_pool_variant(&self, variant: Option<PoolVariant>) {
        *self
            .pool_settings()
            .forced
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = variant;
    }

    /// The variant set by [`Gpu::force_pool_variant`], if any.
    pub fn forced_pool_variant(&self) -> Option<PoolVariant> {
        *self
            .pool_settings()
            .forced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}
