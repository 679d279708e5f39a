//! The buffer pool: wgpu buffers recycled by size class and usage, so repeated calls allocate nothing new.
//!
//! Every buffer wgconv creates (tensors, reduction temporaries, uniforms, readback staging,
//! timestamp resolves) comes from [`BufferPool::take`] as a [`PooledBuffer`], which goes back to
//! the pool's free list when its last handle drops instead of being freed.
//!
//! Why handing a buffer out again is safe while the GPU may still be using it:
//! - A buffer returns only when its last handle drops. Every op records *and submits* its
//!   commands within one call, holding its tensors (borrowed inputs, new outputs, temporaries)
//!   until after `queue.submit`, so a returned buffer is never referenced by an encoder that is
//!   still to be submitted; at most by submitted work that may still be running.
//! - Its next owner touches it only through the same queue: `queue.write_buffer` (uploads,
//!   uniforms), which wgpu executes after every earlier submission and before the next one, or
//!   commands in a later submission. Submissions on one queue execute in order, and wgpu-core
//!   tracks each buffer's usage across submissions and records the barrier from the old use
//!   (a read, say) to the new one (a write) itself: the same guarantee a program relies on when
//!   it rewrites, with `write_buffer`, a buffer an earlier submission reads. So the new writes
//!   cannot overtake the old reads (no write-after-read hazard) and the old writes are visible
//!   or overwritten in order.
//! - A buffer that is mapped or has a map pending (a readback abandoned halfway, a failed map)
//!   is freed, not pooled: a pending map would make its next use a validation error.
//! - A buffer whose creation failed (out of memory, a validation error) never becomes a
//!   `PooledBuffer`: `take` creates inside its own error scopes and returns `Err`.
//!
//! Callers that bind [`crate::GpuTensor::buffer`] in their own commands must keep the tensor
//! alive until those commands are submitted.
//!
//! The packed kernels' operand textures are pooled the same way, by extent, as
//! [`PooledTexture`]s, and count toward the same figures and budget: a texture is written
//! only by the commands of the call that holds it, as a buffer is.
//!
//! Kept buffers and textures (packed weights) stay in use after their call, found again by
//! what they were derived from ([`KeptKey`]): a later call binds one only to read it, so
//! sharing it needs nothing beyond the above. An evicted one is freed, never pooled, since a call on another
//! thread may still be about to bind it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};

use crate::error::{Error, Result};

/// Free buffers kept at most, in bytes, summed over the pool; a buffer returned beyond this
/// frees idle ones, largest first, to fit (or is freed itself if larger than the limit). Large
/// enough for a VGG layer's activations at batch 16 to stay pooled between calls.
pub const DEFAULT_POOL_LIMIT_BYTES: u64 = 1 << 30;

/// Sizes are rounded up to this multiple, so tensors of nearly equal size share a class.
const SIZE_QUANTUM: u64 = 256;

/// What the pool has done so far (see [`crate::Gpu::pool_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Buffers created on the device (`create_buffer` calls), over the `Gpu`'s life.
    pub allocations: u64,
    /// Requests served from the free list instead.
    pub reuses: u64,
    /// Buffers waiting in the free list now.
    pub free_buffers: usize,
    /// Their total size in bytes.
    pub free_bytes: u64,
    /// Bytes of all buffers created and not yet freed: in use, or waiting in the pool.
    pub live_bytes: u64,
    /// The memory budget, if one is set ([`crate::Gpu::set_memory_budget`]).
    pub budget: Option<u64>,
    /// The most bytes of buffers handed out and not yet returned (`live_bytes - free_bytes`)
    /// at any moment since the `Gpu` was made or [`crate::Gpu::reset_peak_memory`]: what
    /// [`crate::Gpu::memory_required`] predicts for one call.
    pub peak_in_use_bytes: u64,
    /// Buffers and textures kept for what they hold (packed weights, per weight tensor and
    /// contents version): in use, counted in `live_bytes`.
    pub kept_buffers: usize,
    /// Their total size in bytes.
    pub kept_bytes: u64,
    /// Calls that found their kept buffer (and skipped deriving it).
    pub kept_hits: u64,
    /// Calls that looked for one and derived it instead.
    pub kept_misses: u64,
}

/// What a kept buffer was derived from: a tensor (its buffers' identity and contents version,
/// see `GpuTensor::contents_version`) and a description of the derivation (kernels and
/// uniforms), which must match exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeptKey {
    pub source: usize,
    pub version: u64,
    pub derivation: Vec<u8>,
}

/// What a kept entry holds: packed weights in a buffer (the tiled kernels) or a texture (the
/// packed ones).
#[derive(Clone, Debug)]
pub(crate) enum KeptObject {
    Buffer(wgpu::Buffer),
    Texture(wgpu::Texture),
}

impl KeptObject {
    fn size(&self) -> u64 {
        match self {
            KeptObject::Buffer(b) => b.size(),
            KeptObject::Texture(t) => BufferPool::texture_bytes((t.width(), t.height())),
        }
    }
}

/// Kept objects, oldest first, each with what tells whether its source tensor is still alive.
#[derive(Default)]
struct Kept {
    entries: VecDeque<(KeptKey, Weak<AtomicU64>, KeptObject)>,
    bytes: u64,
}

#[derive(Default)]
struct Free {
    /// Idle buffers by (size, usage), each with the tick it was returned at, oldest first.
    lists: HashMap<(u64, wgpu::BufferUsages), Vec<(u64, wgpu::Buffer)>>,
    /// Packed-operand textures by (width, height), likewise; their bytes count in `bytes`.
    textures: HashMap<(u32, u32), Vec<(u64, wgpu::Texture)>>,
    /// Counts returns: the order in which `make_room` frees idle objects, oldest first.
    tick: u64,
    bytes: u64,
    buffers: usize,
}

/// Free buffers by (size class, usage), and counters.
pub(crate) struct BufferPool {
    free: Mutex<Free>,
    kept: Mutex<Kept>,
    stats: Mutex<PoolStats>,
    limit_bytes: Mutex<u64>,
}

impl BufferPool {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            free: Mutex::default(),
            kept: Mutex::default(),
            stats: Mutex::default(),
            limit_bytes: Mutex::new(DEFAULT_POOL_LIMIT_BYTES),
        })
    }

    /// The size class of a request of `bytes`: rounded up to [`SIZE_QUANTUM`] unless that would
    /// pass `max` (the most one buffer or binding may hold), then exact.
    pub fn size_class(bytes: u64, max: u64) -> u64 {
        let rounded = bytes.max(1).div_ceil(SIZE_QUANTUM) * SIZE_QUANTUM;
        if rounded <= max {
            rounded
        } else {
            bytes
        }
    }

    /// A buffer of at least `bytes` (its size class, capped by `max`) with exactly `usage`:
    /// from the free list, or created inside error scopes so that an out-of-memory or
    /// validation error is an `Err` naming `op`.
    pub fn take(
        self: &Arc<Self>,
        device: &wgpu::Device,
        op: &'static str,
        label: &'static str,
        bytes: u64,
        max: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<PooledBuffer> {
        let size = Self::size_class(bytes, max);
        let reused = {
            let mut free = lock(&self.free);
            let buffer = free
                .lists
                .get_mut(&(size, usage))
                .and_then(Vec::pop)
                .map(|(_, b)| b);
            if buffer.is_some() {
                free.bytes -= size;
                free.buffers -= 1;
            }
            buffer
        };
        let buffer = match reused {
            Some(b) => {
                lock(&self.stats).reuses += 1;
                b
            }
            None => {
                self.reserve(op, label, size)?;
                self.create(device, op, label, size, usage)?
            }
        };
        self.note_peak();
        Ok(PooledBuffer {
            buffer: Some(buffer),
            pool: Arc::clone(self),
            mapping: false,
        })
    }

    /// Creates a buffer that is not pooled (the placeholders), counted like the others.
    pub fn create(
        &self,
        device: &wgpu::Device,
        op: &'static str,
        label: &'static str,
        size: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        });
        let errors = [
            pollster::block_on(validation.pop()),
            pollster::block_on(oom.pop()),
        ];
        lock(&self.stats).allocations += 1;
        if let Some(e) = errors.into_iter().flatten().next() {
            let e = crate::gpu::runtime::gpu::device_error(op, e);
            return Err(match e {
                crate::Error::OutOfMemory { op, message } => crate::Error::OutOfMemory {
                    op,
                    message: format!("allocating {size} bytes ({label}): {message}"),
                },
                crate::Error::Device { op, message } => crate::Error::Device {
                    op,
                    message: format!("allocating {size} bytes ({label}): {message}"),
                },
                other => other,
            });
        }
        lock(&self.stats).live_bytes += size;
        Ok(buffer)
    }

    fn give_back(&self, buffer: wgpu::Buffer) {
        let size = buffer.size();
        let limit = *lock(&self.limit_bytes);
        let mut free = lock(&self.free);
        if !self.make_room(&mut free, size, limit) {
            drop(free);
            self.freed(size);
            return; // freed: larger than the pool may hold
        }
        free.bytes += size;
        free.buffers += 1;
        free.tick += 1;
        let tick = free.tick;
        free.lists
            .entry((size, buffer.usage()))
            .or_default()
            .push((tick, buffer));
    }

    /// Frees idle buffers and textures, the longest idle first, until `size` more bytes fit
    /// under `limit`; false (nothing freed) if `size` alone passes it. What was returned last
    /// is the likeliest to be asked for again (the next call of a loop), so it is what stays:
    /// a network's earlier layers' shapes make room for the current layer's.
    fn make_room(&self, free: &mut Free, size: u64, limit: u64) -> bool {
        if size > limit {
            return false;
        }
        while free.bytes + size > limit {
            let oldest_buffer = free
                .lists
                .iter()
                .filter_map(|(&key, list)| list.first().map(|(tick, _)| (*tick, key)))
                .min_by_key(|&(tick, _)| tick);
            let oldest_texture = free
                .textures
                .iter()
                .filter_map(|(&extent, list)| list.first().map(|(tick, _)| (*tick, extent)))
                .min();
            let buffer_first = match (oldest_buffer, oldest_texture) {
                (None, None) => break, // nothing idle left: free.bytes is 0
                (Some((b, _)), Some((t, _))) => b < t,
                (buffer, _) => buffer.is_some(),
            };
            let evicted = match (oldest_buffer, oldest_texture) {
                (Some((_, key)), _) if buffer_first => {
                    free.lists.get_mut(&key).expect("listed").remove(0);
                    free.buffers -= 1;
                    key.0
                }
                (_, Some((_, extent))) => {
                    free.textures.get_mut(&extent).expect("listed").remove(0);
                    Self::texture_bytes(extent)
                }
                _ => break,
            };
            free.bytes -= evicted;
            self.freed(evicted);
        }
        true
    }

    /// Raises the in-use high-water mark to what is in use now.
    fn note_peak(&self) {
        let free = lock(&self.free).bytes;
        let mut stats = lock(&self.stats);
        stats.peak_in_use_bytes = stats
            .peak_in_use_bytes
            .max(stats.live_bytes.saturating_sub(free));
    }

    /// Starts the in-use high-water mark again from what is in use now.
    pub fn reset_peak(&self) {
        let free = lock(&self.free).bytes;
        let mut stats = lock(&self.stats);
        stats.peak_in_use_bytes = stats.live_bytes.saturating_sub(free);
    }

    /// Bytes the budget still allows beside the buffers in use (idle ones can be freed), or
    /// `None` without a budget.
    pub fn available(&self) -> Option<u64> {
        let free = lock(&self.free).bytes;
        let stats = lock(&self.stats);
        let in_use = stats.live_bytes.saturating_sub(free);
        stats.budget.map(|b| b.saturating_sub(in_use))
    }

    /// The pool's figures. Returns the kept weights of tensors since dropped to the pool first
    /// (they are idle: counted as pooled, not in use), which may free the longest-idle objects
    /// to make room, as any return does.
    pub fn stats(&self) -> PoolStats {
        self.release_orphans();
        let (kept_buffers, kept_bytes) = {
            let kept = lock(&self.kept);
            (kept.entries.len(), kept.bytes)
        };
        let free = lock(&self.free);
        PoolStats {
            free_buffers: free.buffers,
            free_bytes: free.bytes,
            kept_buffers,
            kept_bytes,
            ..*lock(&self.stats)
        }
    }

    /// Frees every pooled buffer and every kept one, and sets how many bytes the pool may keep
    /// from now on.
    pub fn clear(&self, limit_bytes: Option<u64>) {
        if let Some(limit) = limit_bytes {
            *lock(&self.limit_bytes) = limit;
        }
        self.clear_kept();
        let idle = std::mem::take(&mut *lock(&self.free));
        self.freed(idle.bytes);
    }
}

/// Kept buffers: at most a quarter of the pool's limit, none under a memory budget (a budget
/// rations memory; a kept buffer is only a saving of time), oldest evicted first.
impl BufferPool {
    fn kept_limit(&self) -> u64 {
        if lock(&self.stats).budget.is_some() {
            return 0;
        }
        *lock(&self.limit_bytes) / 4
    }

    /// What is kept under `key`, if anything; counts a hit or a miss while keeping is on.
    pub fn find_kept(&self, key: &KeptKey) -> Option<KeptObject> {
        if self.kept_limit() == 0 {
            return None;
        }
        self.release_orphans();
        let (found, stale) = {
            let mut kept = lock(&self.kept);
            let found = kept
                .entries
                .iter()
                .find(|(k, _, _)| k == key)
                .map(|(_, _, b)| b.clone());
            // What was derived the same way from an older version of the same tensor can be
            // found no more: back to the pool now, for this call's derivation to reuse (packed
            // textures are pooled by exact extent, so keeping it until this call is done would
            // make every training step's repacking allocate).
            let stale = match found {
                Some(_) => None,
                None => kept
                    .entries
                    .iter()
                    .position(|(k, _, _)| k.source == key.source && k.derivation == key.derivation)
                    .and_then(|i| kept.entries.remove(i)),
            };
            if let Some((_, _, old)) = &stale {
                kept.bytes -= old.size();
            }
            (found, stale)
        };
        if let Some((_, _, old)) = stale {
            self.give_back_kept(old);
        }
        let mut stats = lock(&self.stats);
        if found.is_some() {
            stats.kept_hits += 1;
        } else {
            stats.kept_misses += 1;
        }
        found
    }

    /// Keeps `object` under `key`, in place of what was derived the same way from an older
    /// version of the same tensor (which no call can find again: back to the pool, for the
    /// next step of a training loop to reuse), evicting the oldest entries to stay within the
    /// limit; returns `object` to the pool instead when keeping is off, it alone passes the
    /// limit, or another call kept the same version meanwhile (a third may be reading that
    /// one, so it stays).
    /// `source` is the source tensor's version cell: once no tensor holds it, nothing can
    /// find the entry again, and its object goes back to the pool.
    pub fn keep(&self, key: KeptKey, source: Weak<AtomicU64>, object: Loaned) {
        let limit = self.kept_limit();
        let size = match &object {
            Loaned::Buffer(b) => b.size(),
            Loaned::Texture(t) => t.size(),
        };
        if size > limit {
            return; // dropped: back to the pool
        }
        self.release_orphans();
        if lock(&self.kept).entries.iter().any(|(k, _, _)| *k == key) {
            return; // dropped: back to the pool
        }
        let raw = match object {
            Loaned::Buffer(b) => KeptObject::Buffer(b.into_raw()),
            Loaned::Texture(t) => KeptObject::Texture(t.into_raw()),
        };
        let mut evicted = 0;
        let mut replaced = None;
        {
            let mut kept = lock(&self.kept);
            if let Some(i) = kept
                .entries
                .iter()
                .position(|(k, _, _)| k.source == key.source && k.derivation == key.derivation)
            {
                let (_, _, old) = kept.entries.remove(i).expect("found");
                kept.bytes -= old.size();
                replaced = Some(old);
            }
            while kept.bytes + size > limit {
                let Some((_, _, old)) = kept.entries.pop_front() else {
                    break;
                };
                kept.bytes -= old.size();
                evicted += old.size();
            }
            kept.bytes += size;
            kept.entries.push_back((key, source, raw));
        }
        self.freed(evicted);
        if let Some(old) = replaced {
            self.give_back_kept(old);
        }
    }

    fn give_back_kept(&self, object: KeptObject) {
        match object {
            KeptObject::Buffer(b) => self.give_back(b),
            KeptObject::Texture(t) => self.give_back_texture(t),
        }
    }

    /// Returns to the pool the kept buffers whose source tensors are gone (the weights of an
    /// earlier call with other tensors): no call can bind them again, so a later one may reuse
    /// them as it would the scratch they were.
    fn release_orphans(&self) {
        let orphans: Vec<KeptObject> = {
            let mut kept = lock(&self.kept);
            let (alive, dead): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut kept.entries)
                .into_iter()
                .partition(|(_, source, _)| source.strong_count() > 0);
            kept.entries = alive;
            kept.bytes -= dead.iter().map(|(_, _, b)| b.size()).sum::<u64>();
            dead.into_iter().map(|(_, _, b)| b).collect()
        };
        for object in orphans {
            self.give_back_kept(object);
        }
    }

    /// Frees every kept buffer.
    fn clear_kept(&self) {
        let kept = std::mem::take(&mut *lock(&self.kept));
        self.freed(kept.bytes);
    }
}

/// Packed-operand textures: `rgba32float`, readable and storage-writable.
impl BufferPool {
    /// Bytes of a texture of `extent`.
    pub fn texture_bytes((width, height): (u32, u32)) -> u64 {
        u64::from(width) * u64::from(height) * 16
    }

    /// A texture of `extent` texels: from the free list, or created inside error scopes.
    pub fn take_texture(
        self: &Arc<Self>,
        device: &wgpu::Device,
        op: &'static str,
        extent: (u32, u32),
    ) -> Result<PooledTexture> {
        let size = Self::texture_bytes(extent);
        let reused = {
            let mut free = lock(&self.free);
            let texture = free
                .textures
                .get_mut(&extent)
                .and_then(Vec::pop)
                .map(|(_, t)| t);
            if texture.is_some() {
                free.bytes -= size;
            }
            texture
        };
        let texture = match reused {
            Some(t) => {
                lock(&self.stats).reuses += 1;
                t
            }
            None => {
                const LABEL: &str = "wgconv packed operand";
                self.reserve(op, LABEL, size)?;
                let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
                let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
                let texture = device.create_texture(&wgpu::TextureDescriptor {
                    label: Some(LABEL),
                    size: wgpu::Extent3d {
                        width: extent.0,
                        height: extent.1,
                        depth_or_array_layers: 1,
                    },
                    mip_level_count: 1,
                    sample_count: 1,
                    dimension: wgpu::TextureDimension::D2,
                    format: crate::gpu::runtime::pipelines::TEXTURE_FORMAT,
                    usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
                    view_formats: &[],
                });
                let errors = [
                    pollster::block_on(validation.pop()),
                    pollster::block_on(oom.pop()),
                ];
                lock(&self.stats).allocations += 1;
                if let Some(e) = errors.into_iter().flatten().next() {
                    return Err(crate::gpu::runtime::gpu::device_error(op, e));
                }
                lock(&self.stats).live_bytes += size;
                texture
            }
        };
        self.note_peak();
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        Ok(PooledTexture {
            texture: Some(texture),
            view,
            pool: Arc::clone(self),
        })
    }

    fn give_back_texture(&self, texture: wgpu::Texture) {
        let extent = (texture.width(), texture.height());
        let size = Self::texture_bytes(extent);
        let limit = *lock(&self.limit_bytes);
        let mut free = lock(&self.free);
        if !self.make_room(&mut free, size, limit) {
            drop(free);
            self.freed(size);
            return;
        }
        free.bytes += size;
        free.tick += 1;
        let tick = free.tick;
        free.textures
            .entry(extent)
            .or_default()
            .push((tick, texture));
    }
}

/// A packed-operand texture on loan from the pool, with its view; dropping it returns it.
pub struct PooledTexture {
    texture: Option<wgpu::Texture>,
    view: wgpu::TextureView,
    pool: Arc<BufferPool>,
}

impl PooledTexture {
    pub fn view(&self) -> &wgpu::TextureView {
        &self.view
    }

    pub fn texture(&self) -> &wgpu::Texture {
        self.texture.as_ref().expect("present until drop")
    }

    fn size(&self) -> u64 {
        let t = self.texture();
        BufferPool::texture_bytes((t.width(), t.height()))
    }

    /// The texture, no longer on loan: its bytes stay counted as live until the owner reports
    /// it freed.
    fn into_raw(mut self) -> wgpu::Texture {
        self.texture.take().expect("present until drop")
    }
}

/// A buffer or texture on loan, handed to [`BufferPool::keep`].
pub(crate) enum Loaned {
    Buffer(PooledBuffer),
    Texture(PooledTexture),
}

impl Drop for PooledTexture {
    fn drop(&mut self) {
        if let Some(texture) = self.texture.take() {
            self.pool.give_back_texture(texture);
        }
    }
}

/// The memory budget ([`crate::Gpu::set_memory_budget`]).
impl BufferPool {
    /// Sets (or, with `None`, lifts) the most bytes of buffers this pool may have alive.
    pub fn set_budget(&self, budget: Option<u64>) {
        if budget.is_some() {
            // Nothing is kept under a budget, so no figure the budget is checked against
            // depends on what earlier calls left behind.
            self.clear_kept();
        }
        lock(&self.stats).budget = budget;
    }

    /// Room for `size` more bytes under the budget, freeing idle buffers if that makes room.
    fn reserve(&self, op: &'static str, label: &'static str, size: u64) -> Result<()> {
        let over = |stats: &PoolStats| {
            stats
                .budget
                .filter(|&b| stats.live_bytes.saturating_add(size) > b)
        };
        if over(&lock(&self.stats)).is_none() {
            return Ok(());
        }
        self.clear(None);
        let stats = *lock(&self.stats);
        match over(&stats) {
            None => Ok(()),
            Some(budget) => Err(Error::OutOfMemory {
                op,
                message: format!(
                    "allocating {size} bytes ({label}) would pass the memory budget of {budget} \
                     bytes, with {} bytes in use",
                    stats.live_bytes
                ),
            }),
        }
    }

    /// Records that a buffer of `size` bytes was freed.
    fn freed(&self, size: u64) {
        let mut stats = lock(&self.stats);
        stats.live_bytes = stats.live_bytes.saturating_sub(size);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A buffer on loan from the pool; dropping it returns the buffer (see the module docs).
pub struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    pool: Arc<BufferPool>,
    /// Set between `map_async` and `unmap`: such a buffer is freed on drop, not pooled.
    mapping: bool,
}

impl PooledBuffer {
    /// Records that a mapping was requested (`true`) or the buffer was unmapped (`false`).
    /// wgpu 30 cannot be asked for a buffer's map state, so the owner says.
    pub(crate) fn set_mapping(&mut self, mapping: bool) {
        self.mapping = mapping;
    }
}

impl PooledBuffer {
    /// The buffer, no longer on loan: its bytes stay counted as live until the owner reports
    /// it freed.
    fn into_raw(mut self) -> wgpu::Buffer {
        self.buffer.take().expect("present until drop")
    }
}

impl std::ops::Deref for PooledBuffer {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("present until drop")
    }
}

impl std::fmt::Debug for PooledBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PooledBuffer").field(&**self).finish()
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            if self.mapping {
                // Freed: a pending or live mapping must not reach the next owner.
                self.pool.freed(buffer.size());
                return;
            }
            self.pool.give_back(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_round_up_but_never_past_the_limit() {
        assert_eq!(BufferPool::size_class(4, 1 << 20), 256);
        assert_eq!(BufferPool::size_class(256, 1 << 20), 256);
        assert_eq!(BufferPool::size_class(260, 1 << 20), 512);
        assert_eq!(BufferPool::size_class(1000, 1001), 1000);
        assert_eq!(BufferPool::size_class(0, 1 << 20), 256);
    }
}
