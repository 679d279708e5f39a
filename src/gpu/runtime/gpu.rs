//! The GPU context: adapter choice, a device with the adapter's real limits, error capture.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
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

    /// A `Gpu` on the best-ranked adapter that `spec` names (see [`Gpu::adapter_matches`]),
    /// ignoring `WGCONV_ADAPTER`; blocks until the device is created. A spec that matches no
    /// adapter is `InvalidArgument`, listing the adapters there are; no adapter at all is
    /// `NoAdapter`.
    pub fn with_adapter(spec: &str) -> Result<Self> {
        let matching = Self::matching_adapters(spec)?;
        let seen = matching.len();
        let mut adapters: Vec<wgpu::Adapter> = matching.into_iter().map(|(_, a)| a).collect();
        // `matching_adapters` never returns an empty list.
        let best = best_ranked(&adapters).unwrap_or(0);
        let adapter = adapters.swap_remove(best);
        let selection = if seen == 1 {
            format!("the only adapter that {spec:?} matches")
        } else {
            format!(
                "ranked first of the {seen} adapters that {spec:?} matches (discrete > \
                 integrated > virtual > CPU; native backends over GL)"
            )
        };
        pollster::block_on(Self::from_adapter(adapter, selection))
    }

    /// A `Gpu` on every adapter that `spec` names (see [`Gpu::adapter_matches`]), in the
    /// order of [`Gpu::available_adapters`], for running the same work on each. Errors as
    /// [`Gpu::with_adapter`] does, or with the first device that cannot be created.
    pub fn on_each_adapter(spec: &str) -> Result<Vec<Self>> {
        Self::matching_adapters(spec)?
            .into_iter()
            .map(|(i, adapter)| {
                let info = adapter.get_info();
                let selection =
                    format!("adapter {} of those wgpu found, matched by {spec:?}", i + 1);
                // Name the adapter: with several, "request_device failed" alone says too little.
                pollster::block_on(Self::from_adapter(adapter, selection)).map_err(|e| {
                    Error::Device {
                        op: "Gpu::on_each_adapter",
                        message: format!("{}: {e}", describe(&info)),
                    }
                })
            })
            .collect()
    }

    /// Whether `spec` names the adapter `info` describes. Case-insensitive; `all` names every
    /// adapter. Otherwise every whitespace-separated word of `spec` must match: a backend's
    /// name (`vulkan`, `gl`, `metal`, `dx12`, `webgpu`) matches the adapters on that backend
    /// (and only those: `gl` never matches a name containing "gl"); `cpu` matches software
    /// adapters (device type `Cpu`: lavapipe, llvmpipe, SwiftShader) and `gpu` every other;
    /// any other word a part of the adapter's name. `"llvmpipe gl"` thus picks Mesa's llvmpipe
    /// through OpenGL where the same driver is also seen through Vulkan, and `gpu` a real GPU
    /// through every backend that reaches it.
    pub fn adapter_matches(info: &wgpu::AdapterInfo, spec: &str) -> bool {
        let spec = spec.trim().to_lowercase();
        if spec == "all" {
            return true;
        }
        let name = info.name.to_lowercase();
        let software = info.device_type == wgpu::DeviceType::Cpu;
        let mut words = spec.split_whitespace().peekable();
        // An empty spec names nothing, rather than everything by vacuous truth.
        words.peek().is_some()
            && words.all(|word| match (word, backend_named(word)) {
                (_, Some(backend)) => info.backend == backend,
                ("cpu", None) => software,
                // GL reports a real GPU as `Other` (it cannot tell), so "gpu" is "not software".
                ("gpu", None) => !software,
                (_, None) => name.contains(word),
            })
    }

    /// The adapters `spec` matches, each with its index in enumeration order.
    fn matching_adapters(spec: &str) -> Result<Vec<(usize, wgpu::Adapter)>> {
        let adapters = pollster::block_on(enumerate());
        if adapters.is_empty() {
            return Err(no_adapter_found());
        }
        let seen: Vec<String> = adapters
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}. {}", i + 1, describe(&a.get_info())))
            .collect();
        let matching: Vec<(usize, wgpu::Adapter)> = adapters
            .into_iter()
            .enumerate()
            .filter(|(_, a)| Self::adapter_matches(&a.get_info(), spec))
            .collect();
        if matching.is_empty() {
            return Err(Error::InvalidArgument {
                op: "Gpu::with_adapter",
                what: format!(
                    "adapter {spec:?} matches none of the adapters wgpu found: {}",
                    seen.join("; ")
                ),
            });
        }
        Ok(matching)
    }

    /// Creates the device on a given adapter, requesting all of the adapter's limits.
    pub async fn from_adapter(adapter: wgpu::Adapter, selection: String) -> Result<Self> {
        let limits = adapter.limits();
        // Timestamps are only used when a benchmark asks for them, but must be requested now;
        // subgroups let the planner pick the kernels that share loads across SIMD lanes.
        let features =
            adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgconv"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Device {
                op: "Gpu::new",
                message: format!("request_device failed: {e}"),
            })?;
        Ok(Self::from_wgpu(
            device,
            queue,
            adapter.get_info(),
            selection,
        ))
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

    /// Frees every buffer waiting in the pool (buffers in use are unaffected).
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

/// Ranks adapters: a real GPU beats a software one, and a native backend beats GL.
fn adapter_rank(device_type: wgpu::DeviceType, backend: wgpu::Backend) -> (u8, u8) {
    let device = match device_type {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 1,
        wgpu::DeviceType::Other => 0,
    };
    let backend = match backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 2,
        wgpu::Backend::Gl => 1,
        _ => 0,
    };
    (device, backend)
}

/// Every adapter of the backends `WGPU_BACKEND` allows (all of them when unset).
async fn enumerate() -> Vec<wgpu::Adapter> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    instance.enumerate_adapters(backends).await
}

/// The backend a word of an adapter spec names, if it names one.
fn backend_named(word: &str) -> Option<wgpu::Backend> {
    [
        wgpu::Backend::Vulkan,
        wgpu::Backend::Gl,
        wgpu::Backend::Metal,
        wgpu::Backend::Dx12,
        wgpu::Backend::BrowserWebGpu,
    ]
    .into_iter()
    .find(|b| b.to_str() == word)
}

fn no_adapter_found() -> Error {
    Error::NoAdapter {
        reason: format!(
            "wgpu found no adapter for backends {:?} (WGPU_BACKEND={:?})",
            wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all()),
            std::env::var("WGPU_BACKEND").unwrap_or_default()
        ),
    }
}

fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
}

/// Picks the best-ranked adapter among those `wanted` names (all of them when `None`), and
/// says why.
fn choose_adapter(
    adapters: Vec<wgpu::Adapter>,
    wanted: Option<&str>,
) -> Result<(wgpu::Adapter, String)> {
    let seen: Vec<String> = adapters.iter().map(|a| describe(&a.get_info())).collect();
    let mut candidates: Vec<wgpu::Adapter> = adapters
        .into_iter()
        .filter(|a| wanted.is_none_or(|w| Gpu::adapter_matches(&a.get_info(), w)))
        .collect();
    let Some(best) = best_ranked(&candidates) else {
        return Err(match wanted {
            Some(wanted) if !seen.is_empty() => Error::NoAdapter {
                reason: format!(
                    "{ADAPTER_ENV}={wanted:?} matches none of the adapters found: [{}]",
                    seen.join(", ")
                ),
            },
            _ => no_adapter_found(),
        });
    };
    let reason = match (wanted, candidates.len()) {
        (Some(wanted), 1) => format!("{ADAPTER_ENV}={wanted:?} matched it"),
        (Some(wanted), n) => format!(
            "{ADAPTER_ENV}={wanted:?} matched {n} adapters; ranked first of them (discrete > \
             integrated > virtual > CPU; native backends over GL)"
        ),
        (None, 1) => "the only adapter found".to_string(),
        (None, _) => format!(
            "ranked first of [{}] (discrete > integrated > virtual > CPU; native backends \
             over GL)",
            seen.join(", ")
        ),
    };
    Ok((candidates.swap_remove(best), reason))
}

/// The index of the best-ranked adapter (see [`adapter_rank`]); the first enumerated wins a tie.
fn best_ranked(adapters: &[wgpu::Adapter]) -> Option<usize> {
    (0..adapters.len()).max_by_key(|&i| {
        let info = adapters[i].get_info();
        (
            adapter_rank(info.device_type, info.backend),
            std::cmp::Reverse(i),
        )
    })
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

    #[test]
    fn specs_match_name_parts_and_backends() {
        let adapter = |name: &str, backend| {
            let mut info = wgpu::AdapterInfo::new(wgpu::DeviceType::Cpu, backend);
            info.name = name.into();
            info
        };
        let vulkan = adapter("llvmpipe (LLVM 15.0.6, 256 bits)", wgpu::Backend::Vulkan);
        let gl = adapter("llvmpipe (LLVM 15.0.6, 256 bits)", wgpu::Backend::Gl);
        let mut angle = adapter("ANGLE (Vulkan)", wgpu::Backend::Vulkan);
        angle.device_type = wgpu::DeviceType::IntegratedGpu;
        let mut nvidia_gl = adapter("NVIDIA H200/PCIe/SSE2", wgpu::Backend::Gl);
        nvidia_gl.device_type = wgpu::DeviceType::Other;
        let matches = |spec| {
            [&vulkan, &gl, &angle, &nvidia_gl]
                .map(|info| Gpu::adapter_matches(info, spec))
                .to_vec()
        };
        assert_eq!(matches("LLVMpipe"), [true, true, false, false]);
        assert_eq!(matches("llvm 256"), [true, true, false, false]);
        let gl_only = [false, true, false, true];
        assert_eq!(matches("GL"), gl_only, "a backend, not a part of ANGLE");
        assert_eq!(matches("vulkan"), [true, false, true, false]);
        assert_eq!(matches("llvmpipe vulkan"), [true, false, false, false]);
        assert_eq!(matches("gpu"), [false, false, true, true]);
        assert_eq!(matches("CPU gl"), [false, true, false, false]);
        assert_eq!(matches("nvidia"), [false, false, false, true]);
        assert_eq!(matches(" All "), [true, true, true, true]);
        assert_eq!(matches("swiftshader"), [false, false, false, false]);
        assert_eq!(matches("  "), [false, false, false, false]);
    }

    #[test]
    fn ranking_prefers_real_gpus_and_native_backends() {
        let lavapipe = adapter_rank(wgpu::DeviceType::Cpu, wgpu::Backend::Vulkan);
        let llvmpipe_gl = adapter_rank(wgpu::DeviceType::Cpu, wgpu::Backend::Gl);
        let discrete = adapter_rank(wgpu::DeviceType::DiscreteGpu, wgpu::Backend::Vulkan);
        assert!(discrete > lavapipe && lavapipe > llvmpipe_gl);
    }
}
