//! The GPU context: a device with the adapter's real limits, error capture, memory accounting (which adapter: `adapter.rs`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::runtime::adapter::{choose_adapter, enumerate};
use crate::gpu::runtime::buffer_pool::{BufferPool, PoolStats, PooledBuffer};
use crate::gpu::runtime::extensions::Extensions;
use crate::gpu::runtime::pipelines::Pipelines;

/// Environment variable that picks an adapter by a substring of its name (case-insensitive).
pub const ADAPTER_ENV: &str = "WGCONV_ADAPTER";

/// A wgpu device and queue with wgconv's compiled kernels. Cheap to clone: clones share the
/// device, the pipeline cache and the error state.
#[derive(Clone)]
pub struct Gpu {
    pub(crate) inner: Arc<GpuInner>,
}

pub(crate) struct GpuInner {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub selection: String,
    pub pipelines: Pipelines,
    /// Bound in place of an absent optional read-only buffer (a conv2d without bias).
    pub placeholder: wgpu::Buffer,
    /// Bound in place of an output a kernel does not write (pooling without indices); separate
    /// from `placeholder` because one buffer may not be read-only and writable in one dispatch.
    pub placeholder_rw: wgpu::Buffer,
    /// Set by the device-lost callback.
    pub lost: Arc<Mutex<Option<String>>>,
    /// Errors that escaped every error scope, drained by the next call.
    pub uncaptured: Arc<Mutex<Vec<String>>>,
    /// The most bytes one storage binding may hold: the device's limit, or less when set by
    /// [`Gpu::limit_storage_binding`]. Larger tensors are split (see `gpu::split`).
    pub binding_limit: AtomicU64,
    /// The most bytes one tensor buffer (segment) may hold: the device's `max_buffer_size`, or
    /// less when set by [`Gpu::limit_buffer_size`]. Larger tensors are segmented (see
    /// `gpu::runtime::segments`).
    pub buffer_limit: AtomicU64,
    /// The most texels along either side of a packed texture (see `limit_texture_dimension`).
    pub texture_limit: AtomicU32,
    /// Recycled buffers and the allocation counters (see `gpu::runtime::buffer_pool`).
    pub pool: Arc<BufferPool>,
    /// Kernel timing for benchmarks.
    pub profiler: Mutex<crate::gpu::runtime::profiler::Profiler>,
    /// State the layers above keep per device (the planner's forced variants, the tuner),
    /// one value per type: the runtime stores it without knowing what it is.
    pub extensions: Extensions,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("adapter", &self.inner.info.name)
            .field("backend", &self.inner.info.backend)
            .field("device_type", &self.inner.info.device_type)
            .finish()
    }
}

impl Gpu {
    /// Picks an adapter and creates a device, blocking until done.
    ///
    /// `WGPU_BACKEND` (e.g. `vulkan`, `gl`) limits the backends searched and
    /// `WGCONV_ADAPTER=<spec>` limits the candidates to the adapters the spec names (a part of
    /// the name, a backend, or both: see [`Gpu::adapter_matches`]); among the candidates the
    /// most capable adapter wins (discrete, then integrated, virtual, CPU), preferring native
    /// backends over GL.
    pub fn new() -> Result<Self> {
        pollster::block_on(Self::new_async())
    }

    /// [`Gpu::new`] without blocking.
    pub async fn new_async() -> Result<Self> {
        let adapters = enumerate().await;
        let wanted = std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty());
        let (adapter, selection) = choose_adapter(adapters, wanted.as_deref())?;
        Self::from_adapter(adapter, selection).await
    }

    /// Wraps a device and queue the caller created (for example to share them with a renderer).
    pub fn from_wgpu(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        selection: String,
    ) -> Self {
        let lost = Arc::new(Mutex::new(None));
        let lost_in_callback = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            *lost_in_callback.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(format!("{reason:?}: {message}"));
        });
        // Errors outside our scopes must never reach wgpu's default handler, which panics.
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&uncaptured);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.to_string());
        }));
        let placeholder_buffer = |label| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        };
        let placeholder = placeholder_buffer("wgconv placeholder");
        let placeholder_rw = placeholder_buffer("wgconv placeholder (write)");
        let limits = device.limits();
        // A binding never holds more than one buffer, so a tensor past the buffer limit is
        // always past the binding limit too, and every op splits it.
        let binding_limit = AtomicU64::new(
            limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size),
        );
        let buffer_limit = AtomicU64::new(limits.max_buffer_size);
        let texture_limit = AtomicU32::new(limits.max_texture_dimension_2d);
        Gpu {
            inner: Arc::new(GpuInner {
                device,
                queue,
                info,
                limits,
                selection,
                pipelines: Pipelines::default(),
                placeholder,
                placeholder_rw,
                pool: BufferPool::new(),
                binding_limit,
                buffer_limit,
                texture_limit,
                lost,
                uncaptured,
                profiler: Mutex::default(),
                extensions: Extensions::default(),
            }),
        }
    }

    /// Name, backend, device type and driver of the adapter in use.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.inner.info
    }

    /// True on a discrete or integrated GPU; false on CPU drivers (lavapipe, SwiftShader,
    /// llvmpipe) and on virtual or unknown devices. Kernels that lay lanes out for coalesced
    /// loads, or tile for workgroup memory, are chosen on this.
    pub fn is_hardware_gpu(&self) -> bool {
        matches!(
            self.inner.info.device_type,
            wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu
        )
    }

    /// Why this adapter was chosen.
    pub fn selection_reason(&self) -> &str {
        &self.inner.selection
    }

    /// The device's limits (the adapter's own, not wgpu's defaults).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// Binds at most `bytes` per storage buffer from now on (never more than the device
    /// allows): ops whose tensors are larger split their work, as they do past the device's own
    /// limit. For tests on small data, and to stay within WebGPU's portable 128 MiB.
    /// Never more than [`Gpu::max_buffer_size`], so that a segmented tensor always splits.
    pub fn limit_storage_binding(&self, bytes: u64) {
        let device = self
            .inner
            .limits
            .max_storage_buffer_binding_size
            .min(self.max_buffer_size());
        self.inner
            .binding_limit
            .store(bytes.clamp(4, device), Ordering::Relaxed);
    }

    /// Stores tensors in buffers of at most `bytes` each from now on (never more than the
    /// device's `max_buffer_size`, never less than 4): larger tensors are kept in several
    /// buffers (segments, see [`GpuTensor::segment_count`](crate::gpu::GpuTensor)). Lowers the
    /// storage-binding limit to `bytes` when it was higher. Tensors made before keep their
    /// segments. For tests on small data.
    pub fn limit_buffer_size(&self, bytes: u64) {
        let limit = bytes.clamp(4, self.inner.limits.max_buffer_size);
        self.inner.buffer_limit.store(limit, Ordering::Relaxed);
        self.inner.binding_limit.fetch_min(limit, Ordering::Relaxed);
    }

    /// Makes packed textures at most `texels` wide and high from now on (never more than the
    /// device's `max_texture_dimension_2d`): operands that would need larger ones are not
    /// packed into textures (the planner passes packed8 over; forced, it is `TooLarge`). For
    /// tests, which cannot reach the device's own limit without gigabytes of data.
    pub fn limit_texture_dimension(&self, texels: u32) {
        let device = self.inner.limits.max_texture_dimension_2d;
        self.inner
            .texture_limit
            .store(texels.clamp(1, device), Ordering::Relaxed);
    }

    /// The most texels along either side of a packed texture here (see
    /// [`Gpu::limit_texture_dimension`]).
    pub fn max_texture_dimension(&self) -> u32 {
        self.inner.texture_limit.load(Ordering::Relaxed)
    }

    /// The most bytes one tensor buffer holds here (see [`Gpu::limit_buffer_size`]).
    pub fn max_buffer_size(&self) -> u64 {
        self.inner.buffer_limit.load(Ordering::Relaxed)
    }

    /// The most bytes one storage binding holds here (see [`Gpu::limit_storage_binding`]).
    pub fn max_storage_binding(&self) -> u64 {
        self.inner.binding_limit.load(Ordering::Relaxed)
    }

    /// How many buffers this `Gpu` has created on the device so far (tensors, temporaries,
    /// uniforms, readback staging, timers; not the two 16-byte placeholders made with it).
    /// Buffers are pooled, so repeating a call with the same shapes adds nothing.
    pub fn buffer_allocations(&self) -> u64 {
        self.inner.pool.stats().allocations
    }

    /// Allocations, reuses and what the buffer pool holds now.
    pub fn pool_stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    /// This `Gpu` with a memory budget: buffers it creates (tensors, temporaries, uniforms,
    /// staging) may total at most `bytes`, idle pooled buffers included, which are freed first
    /// when a new one would not fit. A call that would pass the budget is
    /// `Error::OutOfMemory` (checked as buffers are created, so approximate when several
    /// threads allocate at once).
    pub fn with_memory_budget(self, bytes: u64) -> Self {
        self.set_memory_budget(Some(bytes));
        self
    }

    /// Sets the memory budget ([`Gpu::with_memory_budget`]); `None` lifts it.
    pub fn set_memory_budget(&self, bytes: Option<u64>) {
        self.inner.pool.set_budget(bytes);
    }

    /// Bytes of the buffers this `Gpu` has alive: in use, or waiting in the pool.
    pub fn memory_in_use(&self) -> u64 {
        self.inner.pool.stats().live_bytes
    }

    /// Frees every buffer waiting in the pool, and the packed weights kept for later calls
    /// (buffers in use by tensors are unaffected).
    pub fn clear_buffer_pool(&self) {
        self.inner.pool.clear(None);
    }

    /// Frees the pooled buffers and keeps at most `bytes` of free buffers from now on (default
    /// 1 GiB); 0 turns pooling off.
    pub fn set_buffer_pool_limit(&self, bytes: u64) {
        self.inner.pool.clear(Some(bytes));
    }

    /// A buffer of at least `bytes` with `usage`, from the pool or newly created; an
    /// allocation failure is an `Err` naming `op`.
    pub(crate) fn take_buffer(
        &self,
        op: &'static str,
        label: &'static str,
        bytes: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<PooledBuffer> {
        let max = self.size_class_cap(bytes, usage);
        self.inner
            .pool
            .take(&self.inner.device, op, label, bytes, max, usage)
    }

    /// The most a request of `bytes` with `usage` may be rounded up to: its size class may
    /// grow, but never past what the buffer will be bound as.
    fn size_class_cap(&self, bytes: u64, usage: wgpu::BufferUsages) -> u64 {
        let limits = &self.inner.limits;
        let max = if usage.contains(wgpu::BufferUsages::UNIFORM) {
            limits.max_uniform_buffer_binding_size
        } else if usage.contains(wgpu::BufferUsages::STORAGE) {
            limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size)
        } else {
            limits.max_buffer_size
        };
        max.max(bytes)
    }

    /// The bytes a buffer of `bytes` with `usage` really occupies once taken from the pool
    /// (its size class): what the memory estimates add up.
    pub(crate) fn buffer_bytes(&self, bytes: u64, usage: wgpu::BufferUsages) -> u64 {
        BufferPool::size_class(bytes, self.size_class_cap(bytes, usage))
    }

    /// Bytes the memory budget still allows beside the buffers in use now (idle pooled ones
    /// are freed when needed), or `None` when there is no budget.
    pub fn memory_available(&self) -> Option<u64> {
        self.inner.pool.available()
    }

    /// Restarts [`PoolStats::peak_in_use_bytes`] from the bytes in use now, so that the peak of
    /// the next calls can be compared with [`Gpu::memory_required`].
    pub fn reset_peak_memory(&self) {
        self.inner.pool.reset_peak();
    }

    /// The underlying wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The underlying wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// Every adapter wgpu can see with the current `WGPU_BACKEND`, in wgpu's order (backend by
    /// backend): the order in which [`Gpu::on_each_adapter`] returns them.
    pub fn available_adapters() -> Vec<wgpu::AdapterInfo> {
        pollster::block_on(enumerate())
            .iter()
            .map(|a| a.get_info())
            .collect()
    }

    /// True when both handles share one device.
    pub(crate) fn same_as(&self, other: &Gpu) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Runs `f`, which creates resources and submits work, inside wgpu error scopes, so that a
    /// validation or out-of-memory error becomes `Err` instead of a panic. Popping a scope does
    /// not wait for the GPU.
    pub(crate) fn capture<T>(&self, op: &'static str, f: impl FnOnce() -> T) -> Result<T> {
        self.check_healthy(op)?;
        let device = &self.inner.device;
        let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let errors = [
            pollster::block_on(validation.pop()),
            pollster::block_on(oom.pop()),
            pollster::block_on(internal.pop()),
        ];
        if let Some(e) = errors.into_iter().flatten().next() {
            // A lost device explains any error (an invalid buffer, say), but wgpu reports a
            // destroyed device through its callback only once the queue is idle: let the queue
            // drain first. Errors are rare, so this wait costs nothing on the normal path.
            let _ = device.poll(wgpu::PollType::wait_indefinitely());
            self.check_healthy(op)?;
            return Err(device_error(op, e));
        }
        self.check_healthy(op)?;
        Ok(value)
    }

    /// True once the device is lost (destroyed, reset, out of memory fatally): every call on
    /// this `Gpu` fails from then on, and a new `Gpu` is needed.
    pub fn is_lost(&self) -> bool {
        self.poll_lost();
        self.inner
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Lets wgpu run its device-lost callback if the device has been lost: after
    /// `Device::destroy` the callback only fires from a poll once the queue is idle.
    /// Non-blocking.
    fn poll_lost(&self) {
        // A poll error means the device is gone; the callback has then said so.
        let _ = self.inner.device.poll(wgpu::PollType::Poll);
    }

    /// `Err` if the device is lost or an error escaped the error scopes since the last call.
    pub(crate) fn check_healthy(&self, op: &'static str) -> Result<()> {
        self.poll_lost();
        if let Some(reason) = self
            .inner
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(Error::DeviceLost { op, reason });
        }
        let escaped: Vec<String> = std::mem::take(
            &mut *self
                .inner
                .uncaptured
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        if !escaped.is_empty() {
            return Err(Error::Device {
                op,
                message: escaped.join("; "),
            });
        }
        Ok(())
    }

    /// Blocks until every op submitted so far has finished on the device (for timing; reads
    /// synchronise on their own).
    pub fn synchronize(&self) -> Result<()> {
        self.wait("Gpu::synchronize")
    }

    /// Blocks until all submitted work is done.
    pub(crate) fn wait(&self, op: &'static str) -> Result<()> {
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| {
                // A lost device is the likelier story, and the more useful error.
                self.check_healthy(op).err().unwrap_or(Error::Device {
                    op,
                    message: format!("waiting for the GPU failed: {e}"),
                })
            })?;
        self.check_healthy(op)
    }
}

/// The crate's error for a wgpu error caught in an error scope: out-of-memory apart, since the
/// device survives it and the caller can act on it.
pub(crate) fn device_error(op: &'static str, e: wgpu::Error) -> Error {
    match e {
        wgpu::Error::OutOfMemory { .. } => Error::OutOfMemory {
            op,
            message: e.to_string(),
        },
        other => Error::Device {
            op,
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_gpu() -> Option<Gpu> {
        match Gpu::new() {
            Ok(g) => Some(g),
            Err(e)
                if std::env::var_os("CI").is_none()
                    && std::env::var_os("WGCONV_SKIP_GPU_TESTS").is_some() =>
            {
                eprintln!("SKIPPED (no GPU): {e}");
                None
            }
            Err(e) => panic!("GPU tests need an adapter: {e}"),
        }
    }

    /// A buffer that is both mappable for reading and a storage buffer is a wgpu validation
    /// error; inside `capture` it must come back as `Err`, not a panic.
    fn invalid_buffer(gpu: &Gpu) -> wgpu::Buffer {
        gpu.device().create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    }

    #[test]
    fn validation_errors_become_err() {
        let Some(gpu) = test_gpu() else { return };
        let e = gpu.capture("test op", || invalid_buffer(&gpu)).unwrap_err();
        assert!(matches!(e, Error::Device { op: "test op", .. }), "{e:?}");
        // The device stays usable afterwards.
        gpu.capture("test op", || ()).unwrap();
    }

    #[test]
    fn errors_outside_scopes_are_reported_by_the_next_call() {
        let Some(gpu) = test_gpu() else { return };
        let _ = invalid_buffer(&gpu);
        let e = gpu.check_healthy("next op").unwrap_err();
        assert!(matches!(e, Error::Device { op: "next op", .. }), "{e:?}");
        gpu.check_healthy("next op").unwrap();
    }

    #[test]
    fn out_of_memory_is_its_own_error() {
        let oom = wgpu::Error::OutOfMemory {
            source: Box::new(std::io::Error::other("no memory")),
        };
        let e = device_error("conv2d", oom);
        assert!(
            matches!(e, Error::OutOfMemory { op: "conv2d", .. }),
            "{e:?}"
        );
        assert!(
            e.to_string().starts_with("conv2d: out of GPU memory"),
            "{e}"
        );
    }
}
