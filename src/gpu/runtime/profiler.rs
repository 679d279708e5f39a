//! Kernel timing: when on, every submitted compute pass is timed, by timestamp queries on a
//! hardware GPU and by the wall clock around a drained queue on a CPU adapter, and the total is
//! read back on demand (synchronising, for benchmarks only).

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::gpu::runtime::buffer_pool::PooledBuffer;
use crate::gpu::Gpu;

/// Readback buffers of the passes timed since the profiler was started, or on a CPU adapter
/// their summed wall time.
#[derive(Default)]
pub(crate) struct Profiler {
    pub active: bool,
    pub pending: Vec<PooledBuffer>,
    pub wall: Duration,
}

/// The wall clock around one submission on a CPU adapter, started with the queue drained.
///
/// lavapipe writes a timestamp when it next flushes, not where the command stands: a pass's
/// first dispatches ran before its start was stamped, and a multi-dispatch weight gradient
/// read a third of its wall time. A CPU adapter runs a submission on host threads, so its
/// wall time with nothing else queued is its kernel time.
pub(crate) struct WallClock(Instant);

impl WallClock {
    /// Drains the queue and starts the clock, if timing is on and `gpu` is a CPU adapter.
    /// Writes queued by `write_buffer` (uploads, uniforms) run at the next submission, so an
    /// empty one sends them first, out of the time.
    pub fn start(gpu: &Gpu, op: &'static str) -> Result<Option<Self>> {
        if !gpu.timing_active() || gpu.is_hardware_gpu() {
            return Ok(None);
        }
        gpu.inner.queue.submit([]);
        gpu.wait(op)?;
        Ok(Some(Self(Instant::now())))
    }

    /// Waits for the submission and adds its wall time to the total.
    pub fn stop(self, gpu: &Gpu, op: &'static str) -> Result<()> {
        gpu.wait(op)?;
        let elapsed = self.0.elapsed();
        gpu.inner
            .profiler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .wall += elapsed;
        Ok(())
    }
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
        if !gpu.timing_active() || !gpu.trusts_timestamps() {
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

    /// Whether kernel timing reads timestamp queries: on a hardware GPU that has them. CPU
    /// adapters are timed by the wall clock instead (see `WallClock`).
    fn trusts_timestamps(&self) -> bool {
        self.is_hardware_gpu() && self.timestamps_supported()
    }

    fn timing_active(&self) -> bool {
        self.inner
            .profiler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .active
    }

    /// Starts timing every compute pass submitted from now on (see [`Gpu::stop_kernel_timing`]).
    /// On a CPU adapter each submission then waits for the queue before and after it.
    pub fn start_kernel_timing(&self) {
        let mut p = self
            .inner
            .profiler
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        p.active = true;
        p.pending.clear();
        p.wall = Duration::ZERO;
    }

    /// Waits for the timed passes and returns their summed time, or `None` on a hardware GPU
    /// without timestamp queries. Stops timing.
    ///
    /// A hardware GPU's (discrete or integrated) passes are timed by timestamp queries; any
    /// other adapter's, the CPU drivers' (lavapipe, SwiftShader, llvmpipe) above all, by the
    /// wall clock around each submission with the queue drained before it, because lavapipe
    /// stamps a timestamp at its next flush rather than where the command stands, which left
    /// some dispatches out of a pass's time.
    pub fn stop_kernel_timing(&self) -> Result<Option<Duration>> {
        const OP: &str = "Gpu::stop_kernel_timing";
        let (pending, wall) = {
            let mut p = self
                .inner
                .profiler
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            p.active = false;
            (std::mem::take(&mut p.pending), std::mem::take(&mut p.wall))
        };
        if !self.is_hardware_gpu() {
            return Ok(Some(wall));
        }
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
