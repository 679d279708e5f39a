//! Encoding one kernel dispatch: uniforms, bind group, compute pass, submit. Never waits.

use crate::error::{invalid, too_large, Error, Result};
use crate::gpu::runtime::dispatch::DispatchGrid;
use crate::gpu::runtime::pipelines::CompiledKernel;
use crate::gpu::runtime::profiler::{PassTimer, WallClock};
use crate::gpu::{Gpu, GpuTensor};
use crate::params::Layout;

/// One kernel dispatch: `uniforms` at binding 0 and `resources` at bindings 1.. in order.
pub(crate) struct Dispatch<'a> {
    pub kernel: &'a CompiledKernel,
    pub label: &'static str,
    pub uniforms: &'a [u8],
    pub resources: Vec<Resource<'a>>,
    pub grid: DispatchGrid,
}

/// What a dispatch binds at one slot after its uniforms.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Resource<'a> {
    Buffer(&'a wgpu::Buffer),
    Texture(&'a wgpu::TextureView),
}

impl<'a> Resource<'a> {
    /// Whole buffers, in binding order.
    pub fn buffers<const N: usize>(buffers: [&'a wgpu::Buffer; N]) -> Vec<Resource<'a>> {
        buffers.into_iter().map(Resource::Buffer).collect()
    }

    fn binding(self) -> wgpu::BindingResource<'a> {
        match self {
            Resource::Buffer(b) => b.as_entire_binding(),
            Resource::Texture(view) => wgpu::BindingResource::TextureView(view),
        }
    }
}

/// A copy of a buffer's first `vec4s` vec4s into a packed texture (vec4 i at texel
/// `(i % width, i / width)`, rows of `PACKED_TEXTURE_WIDTH` as `plan::texture_extent` lays them
/// out): a packed operand whose source already has the packed order, copied instead of
/// gathered by a kernel.
pub(crate) struct TextureCopy<'a> {
    pub from: &'a wgpu::Buffer,
    pub to: &'a wgpu::Texture,
    pub vec4s: usize,
}

impl TextureCopy<'_> {
    /// Whole texture rows in one region, then the last, partial row.
    fn encode(&self, encoder: &mut wgpu::CommandEncoder) {
        let width = self.to.width() as usize;
        let texel_bytes = 16;
        let (full_rows, rest) = (self.vec4s / width, self.vec4s % width);
        for (row, columns, rows) in [(0, width, full_rows), (full_rows, rest, 1)] {
            if columns == 0 || rows == 0 {
                continue;
            }
            encoder.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer: self.from,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: (row * width * texel_bytes) as u64,
                        // Required, and a multiple of 256 bytes, only across rows.
                        bytes_per_row: (rows > 1).then_some((width * texel_bytes) as u32),
                        rows_per_image: None,
                    },
                },
                wgpu::TexelCopyTextureInfo {
                    texture: self.to,
                    mip_level: 0,
                    origin: wgpu::Origin3d {
                        x: 0,
                        y: row as u32,
                        z: 0,
                    },
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::Extent3d {
                    width: columns as u32,
                    height: rows as u32,
                    depth_or_array_layers: 1,
                },
            );
        }
    }
}

/// Records `dispatches` in order into one command buffer and submits it; the GPU runs them in
/// order (a later dispatch sees an earlier one's writes). Never waits. Must run inside
/// [`Gpu::capture`] so that errors become `Err`.
///
/// Uniform buffers come from the pool and are filled by `queue.write_buffer`, which wgpu runs
/// before this submission and after every earlier one; they go back to the pool once the
/// submission is recorded (see `gpu::runtime::buffer_pool` for why reuse by a later submission is safe).
pub(crate) fn submit(gpu: &Gpu, label: &'static str, dispatches: &[Dispatch<'_>]) -> Result<()> {
    submit_after_copies(gpu, label, &[], dispatches)
}

/// [`submit`] with `copies` recorded first, ahead of the compute pass, in the same command
/// buffer.
pub(crate) fn submit_after_copies(
    gpu: &Gpu,
    label: &'static str,
    copies: &[TextureCopy<'_>],
    dispatches: &[Dispatch<'_>],
) -> Result<()> {
    let device = &gpu.inner.device;
    let uniform_buffers = dispatches
        .iter()
        .map(|d| {
            let buffer = gpu.take_buffer(
                label,
                "wgconv uniforms",
                d.uniforms.len() as u64,
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            )?;
            gpu.inner.queue.write_buffer(&buffer, 0, d.uniforms);
            Ok(buffer)
        })
        .collect::<Result<Vec<_>>>()?;
    let bind_groups: Vec<wgpu::BindGroup> = dispatches
        .iter()
        .zip(&uniform_buffers)
        .map(|(d, uniform_buffer)| {
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: uniform_buffer.as_entire_binding(),
            }];
            entries.extend(
                d.resources
                    .iter()
                    .enumerate()
                    .map(|(i, r)| wgpu::BindGroupEntry {
                        binding: i as u32 + 1,
                        resource: r.binding(),
                    }),
            );
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(d.label),
                layout: &d.kernel.layout,
                entries: &entries,
            })
        })
        .collect();
    let mut encoder =
        device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
    for copy in copies {
        copy.encode(&mut encoder);
    }
    let timer = PassTimer::new(gpu, label)?;
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: timer.as_ref().map(|t| wgpu::ComputePassTimestampWrites {
                query_set: &t.query_set,
                beginning_of_pass_write_index: Some(0),
                end_of_pass_write_index: Some(1),
            }),
        });
        for (d, bind_group) in dispatches.iter().zip(&bind_groups) {
            pass.set_pipeline(&d.kernel.pipeline);
            pass.set_bind_group(0, bind_group, &[]);
            let [x, y, z] = d.grid.workgroups;
            pass.dispatch_workgroups(x, y, z);
        }
    }
    // The resolve buffer, like the uniforms, must stay out of the pool until submitted.
    let resolve = timer.map(|timer| timer.resolve(gpu, &mut encoder));
    let clock = WallClock::start(gpu, label)?;
    gpu.inner.queue.submit([encoder.finish()]);
    drop((uniform_buffers, resolve));
    match clock {
        Some(clock) => clock.stop(gpu, label),
        None => Ok(()),
    }
}

/// `Err` unless every tensor lives on `gpu`.
pub(crate) fn check_same_gpu(gpu: &Gpu, op: &'static str, tensors: &[&GpuTensor]) -> Result<()> {
    if tensors.iter().all(|t| t.gpu().same_as(gpu)) {
        Ok(())
    } else {
        Err(Error::ContextMismatch { op })
    }
}

/// The shape of a tensor that must hold 4-D f32 values in `layout`.
pub(crate) fn dims4(
    op: &'static str,
    name: &str,
    t: &GpuTensor,
    layout: Layout,
) -> Result<[usize; 4]> {
    t.expect_values(op)?;
    check_layout(op, name, t, layout)?;
    t.dims4()
        .ok_or_else(|| invalid(op, format!("{name} must be 4-D, got shape {:?}", t.shape())))
}

/// The checks every convolution-like op makes of its operands: one GPU, the layout the
/// parameters name, 4-D input and weight, a 1-D bias. Returns the two shapes and the bias length.
pub(crate) fn conv_operands(
    op: &'static str,
    input: &GpuTensor,
    weight: &GpuTensor,
    bias: Option<&GpuTensor>,
    layout: Layout,
) -> Result<([usize; 4], [usize; 4], Option<usize>)> {
    let gpu = input.gpu();
    check_same_gpu(gpu, op, &[input, weight])?;
    if let Some(b) = bias {
        check_same_gpu(gpu, op, &[b])?;
    }
    Ok((
        dims4(op, "input", input, layout)?,
        dims4(op, "weight", weight, layout)?,
        bias.map(|b| len1(op, "bias", b)).transpose()?,
    ))
}

/// `Err` unless a 4-D tensor is stored in the layout the call's parameters name.
pub(crate) fn check_layout(
    op: &'static str,
    name: &str,
    t: &GpuTensor,
    layout: Layout,
) -> Result<()> {
    if t.layout() != layout {
        return Err(invalid(
            op,
            format!(
                "{name} is stored as {:?} but the parameters say {layout:?}: mixed layouts in one call",
                t.layout()
            ),
        ));
    }
    Ok(())
}

/// The length of a tensor that must be 1-D.
pub(crate) fn len1(op: &'static str, name: &str, t: &GpuTensor) -> Result<usize> {
    t.expect_values(op)?;
    match t.shape() {
        [len] => Ok(*len),
        other => Err(invalid(
            op,
            format!("{name} must be 1-D, got shape {other:?}"),
        )),
    }
}

/// `Err` if any of the `named` tensors is segmented: a kernel binds one buffer per tensor.
/// Ops split such tensors before their kernels run; this guards the kernels themselves.
pub(crate) fn check_whole(op: &'static str, named: &[(&str, &GpuTensor)]) -> Result<()> {
    for (name, t) in named {
        if t.segment_count() > 1 {
            return Err(too_large(
                op,
                format!(
                    "{name} of shape {:?} is {} bytes stored in {} buffers of at most {} bytes \
                     (the buffer limit: the device's max_buffer_size, or Gpu::limit_buffer_size \
                     when the tensor was made), and a kernel binds one buffer",
                    t.shape(),
                    t.byte_size(),
                    t.segment_count(),
                    t.segment_bytes()
                ),
            ));
        }
    }
    Ok(())
}

/// `Err` if a tensor of `shape` cannot be bound as one storage buffer on this device.
pub(crate) fn check_binding(
    gpu: &Gpu,
    op: &'static str,
    name: &str,
    shape: &[usize],
) -> Result<()> {
    let bytes = shape
        .iter()
        .try_fold(4u64, |acc, &d| acc.checked_mul(d as u64))
        .unwrap_or(u64::MAX);
    let max = gpu.max_storage_binding();
    if bytes > max {
        return Err(too_large(
            op,
            format!(
                "{name} of shape {shape:?} is {bytes} bytes, above the storage binding limit \
                 of {max} bytes (the device's max_storage_buffer_binding_size, or \
                 Gpu::limit_storage_binding)"
            ),
        ));
    }
    Ok(())
}
