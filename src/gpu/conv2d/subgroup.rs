//! Host side of the subgroup kernels (`shaders/conv2d/subgroup.wgsl`): the lane width the
//! adapter fixes, checked by a probe (`shaders/conv2d/subgroup_probe.wgsl`), and that width's
//! kernels and tile.

use std::sync::OnceLock;

use crate::error::{invalid, Result};
use crate::gpu::conv2d::gemm::SubgroupTile;
use crate::gpu::kernels::Kernel;
use crate::gpu::runtime::uniforms::uniform_struct;
use crate::gpu::Gpu;

uniform_struct! {
    /// Mirrors `SubgroupProbeUniforms` in `shaders/conv2d/subgroup_probe.wgsl`.
    pub struct SubgroupProbeUniforms {
        invocations, _pad0, _pad1, _pad2,
    }
}

/// The lane widths `subgroup.wgsl` is composed for (`subgroup_lanes{W}.wgsl`).
pub const SUBGROUP_WIDTHS: [u32; 5] = [4, 8, 16, 32, 64];

/// A subgroup width the subgroup kernels serve, fixed by the adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubgroupWidth(u32);

impl SubgroupWidth {
    /// The width every subgroup of this device has, if the device has the SUBGROUP feature, its
    /// adapter fixes the width (minimum equal to maximum: the kernels give each lane a column of
    /// the tile, so a subgroup narrower than composed would drop columns), the width is one of
    /// [`SUBGROUP_WIDTHS`], and the probe finds subgroups of that width that behave as the
    /// kernels assume; else why not. The probe runs once per `Gpu` (one dispatch and a
    /// readback of 1 KiB), on the first call that asks.
    pub fn of(gpu: &Gpu) -> std::result::Result<Self, String> {
        gpu.inner
            .extensions
            .get::<ProbedWidth>()
            .0
            .get_or_init(|| Self::reported(gpu).and_then(|w| w.probe(gpu)))
            .clone()
    }

    /// The width the adapter reports, if the kernels serve it.
    fn reported(gpu: &Gpu) -> std::result::Result<Self, String> {
        if !gpu.device().features().contains(wgpu::Features::SUBGROUP) {
            return Err("the device lacks the SUBGROUP feature".into());
        }
        let info = gpu.adapter_info();
        let (min, max) = (info.subgroup_min_size, info.subgroup_max_size);
        if min != max {
            return Err(format!(
                "the subgroup size varies ({min}..={max}); the kernels need one fixed width"
            ));
        }
        if !SUBGROUP_WIDTHS.contains(&min) {
            return Err(format!(
                "subgroups are {min} wide; the kernels are built for {SUBGROUP_WIDTHS:?}"
            ));
        }
        Ok(Self(min))
    }

    /// Runs the probe: `Ok(self)` when every invocation of a 64-wide workgroup saw lane
    /// `local % W`, size `W`, and the first and last lanes of its block of `W`.
    fn probe(self, gpu: &Gpu) -> std::result::Result<Self, String> {
        let seen = run_probe(gpu).map_err(|e| format!("the subgroup probe failed: {e}"))?;
        let w = self.0;
        for (local, s) in (0u32..).zip(seen.chunks_exact(4)) {
            let block = local / w * w;
            let want = [local % w, w, block, block + w - 1];
            if s != want {
                return Err(format!(
                    "the adapter reports {w}-wide subgroups, but invocation {local} of a workgroup \
                     saw (lane, size, first, last) = {s:?}, not {want:?}"
                ));
            }
        }
        Ok(self)
    }

    /// Lanes per subgroup.
    pub fn lanes(self) -> u32 {
        self.0
    }

    /// The tile one subgroup computes.
    pub fn tile(self) -> SubgroupTile {
        SubgroupTile::for_lanes(self.0 as usize)
    }

    /// The gather GEMM (forward, input gradient) of this width.
    pub(crate) fn gemm_kernel(self) -> Kernel {
        match self.0 {
            4 => Kernel::Conv2dGemmSubgroup4,
            8 => Kernel::Conv2dGemmSubgroup8,
            16 => Kernel::Conv2dGemmSubgroup16,
            32 => Kernel::Conv2dGemmSubgroup32,
            _ => Kernel::Conv2dGemmSubgroup64,
        }
    }

    /// Pass 1 of the weight gradient of this width.
    pub(crate) fn weight_grad_kernel(self) -> Kernel {
        match self.0 {
            4 => Kernel::Conv2dWeightGradSubgroup4,
            8 => Kernel::Conv2dWeightGradSubgroup8,
            16 => Kernel::Conv2dWeightGradSubgroup16,
            32 => Kernel::Conv2dWeightGradSubgroup32,
            _ => Kernel::Conv2dWeightGradSubgroup64,
        }
    }
}

/// The probed width, once per `Gpu`.
#[derive(Default)]
struct ProbedWidth(OnceLock<std::result::Result<SubgroupWidth, String>>);

/// What each invocation of one 64-wide workgroup saw: (lane, size, first, last) per invocation.
/// Its buffers are the device's own, not the pool's: the probe runs once, inside whatever call
/// first plans a conv, and must leave neither pooled buffers nor memory in use behind (a memory
/// budget set before that call counts on it).
fn run_probe(gpu: &Gpu) -> Result<Vec<u32>> {
    const OP: &str = "subgroup probe";
    let kernel = Kernel::SubgroupProbe;
    let compiled = kernel.compiled(gpu, OP)?;
    let invocations = kernel.workgroup_size();
    let bytes = 16 * u64::from(invocations);
    let uniforms = SubgroupProbeUniforms {
        invocations,
        ..Default::default()
    };
    let device = gpu.device();
    let staging = gpu.capture(OP, || {
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(OP),
            size: std::mem::size_of::<SubgroupProbeUniforms>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        gpu.queue()
            .write_buffer(&uniform, 0, bytemuck::bytes_of(&uniforms));
        let seen = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(OP),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(OP),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(OP),
            layout: &compiled.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uniform.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: seen.as_entire_binding(),
                },
            ],
        });
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(OP) });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(OP),
                timestamp_writes: None,
            });
            pass.set_pipeline(&compiled.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(1, 1, 1);
        }
        encoder.copy_buffer_to_buffer(&seen, 0, &staging, 0, bytes);
        gpu.queue().submit([encoder.finish()]);
        staging
    })?;
    let (sender, receiver) = std::sync::mpsc::channel();
    staging
        .slice(..)
        .map_async(wgpu::MapMode::Read, move |r| drop(sender.send(r)));
    gpu.wait(OP)?;
    receiver
        .recv()
        .map_err(|_| invalid(OP, "the readback was never mapped"))?
        .map_err(|e| invalid(OP, format!("mapping the readback failed: {e}")))?;
    let view = staging
        .slice(..)
        .get_mapped_range()
        .map_err(|e| invalid(OP, format!("reading the readback failed: {e:?}")))?;
    Ok(bytemuck::cast_slice::<u8, u32>(&view).to_vec())
}
