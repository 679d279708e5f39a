//! Kernel timing with timestamp queries: when on, every submitted compute pass records its start
//! and end, and the total is read back on demand (a synchronising call, for benchmarks only).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::gpu::runtime::buffer_pool::PooledBuffer;
use crate::gpu::Gpu;

/// Readback buffers of the passes timed since the profiler was started.
#[derive(Default)]
pub(crate) struct Profiler {
    pub active: bool,
    pub pending: Vec<PooledBuffer>,
}

/// The query set and resolve buffers of one timed pass.
pub(crate) struct PassTimer {
    pub query_set: wgpu::QuerySet,
    resolve: PooledBuffer,
    readback: PooledBuffer,
}

impl PassTimer {
    /// A timer for the next pass, if timing is on and the device supports it.
    pub fn new(gpu: &Gpu, op: &'static str) -> Result<Option<Self>> {
        let on = gpu
            .inner
            .profiler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .active;
        if !on || !gpu.timestamps_supported() {
            return Ok(None);
        }
        let buffer = |usage| gpu.take_buffer(op, "wgconv timestamps", 16, usage);
        Ok(Some(Self {
            query_set: gpu
                .inner
                .device
                .create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("wgconv pass timer"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                }),
            resolve: buffer(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC)?,
            readback: buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST)?,
        }))
    }

    /// Records the copy of both timestamps after the pass; the readback joins the pending list.
    /// Returns the resolve buffer, which the caller keeps until the encoder is submitted.
    pub fn resolve(self, gpu: &Gpu, encoder: &mut wgpu::CommandEncoder) -> PooledBuffer {
        encoder.resolve_query_set(&self.query_set, 0..2, &self.resolve, 0);
        encoder.copy_buffer_to_buffer(&self.resolve, 0, &self.readback, 0, 16);
        gpu.inner
            .profiler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pending
            .push(self.readback);
        self.resolve
    }
}

impl Gpu {
    /// Whether the device records timestamps (`Features::TIMESTAMP_QUERY`).
    pub fn timestamps_supported(&self) -> bool {
        self.inner
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Starts timing every compute pass submitted from now on (see [`Gpu::stop_kernel_timing`]).
    pub fn start_kernel_timing(&self) {
        let mut p = self
            .inner
            .profiler
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        p.active = true;
        p.pending.clear();
    }

    /// Waits for the timed passes and returns their summed GPU time, or `None` without
    /// timestamp support. Stops timing.
    pub fn stop_kernel_timing(&self) -> Result<Option<Duration>> {
        const OP: &str = "Gpu::stop_kernel_timing";
        let pending = {
            let mut p = self
                .inner
                .profiler
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            p.active = false;
            std::mem::take(&mut p.pending)
        };
        if !self.timestamps_supported() {
            return Ok(None);
        }
        let mut pending = pending;
        for buffer in &mut pending {
            buffer.set_mapping(true);
            buffer.slice(..16).map_async(wgpu::MapMode::Read, |_| {});
        }
        self.wait(OP)?;
        let period = f64::from(self.inner.queue.get_timestamp_period());
        let mut total_ns = 0.0;
        for buffer in &pending {
            let view = buffer
                .slice(..16)
                .get_mapped_range()
                .map_err(|e| Error::Device {
                    op: OP,
                    message: format!("reading timestamps failed: {e}"),
                })?;
            let t: &[u64] = bytemuck::cast_slice(&view);
            total_ns += t[1].saturating_sub(t[0]) as f64 * period;
        }
        for buffer in &mut pending {
            buffer.unmap();
            buffer.set_mapping(false);
        }
        Ok(Some(Duration::from_secs_f64(total_ns * 1e-9)))
    }
}
