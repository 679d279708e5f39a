//! `GpuTensor`: an f32 storage buffer with a shape, uploaded from and read back into ndarray.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ndarray::{Array1, Array4, ArrayD, ArrayView, ArrayView1, ArrayView4, Dimension, IxDyn};

use crate::params::{Layout, Pool2dParams};

use crate::error::{invalid, too_large, Error, Result};
use crate::gpu::runtime::buffer_pool::PooledBuffer;
use crate::gpu::runtime::segments;
use crate::gpu::Gpu;

/// A tensor living in GPU memory: a storage buffer holding `f32` values in row-major order of
/// `shape`, or several (segments) when the values pass [`Gpu::max_buffer_size`] (see
/// `gpu::runtime::segments`). Ops take tensors and return new ones without waiting for the GPU; only
/// the `read` methods synchronise. Cloning shares the buffers.
#[derive(Clone, Debug)]
pub struct GpuTensor {
    gpu: Gpu,
    /// The segments in memory order; one unless the values pass the buffer limit. Pooled:
    /// each may be larger than its share (its size class); goes back to the pool on drop.
    buffers: Arc<Vec<PooledBuffer>>,
    /// The bytes of the values each segment but the last holds (`bytes` with one segment).
    segment: u64,
    /// The bytes the tensor's values occupy, over all segments.
    bytes: u64,
    shape: Vec<usize>,
    contents: Contents,
    layout: Layout,
    /// The contents version, shared by clones: unique among all tensors' versions, renewed by
    /// every write into this tensor after it was made (see [`GpuTensor::contents_changed`]), so
    /// that what was derived from an older version (packed weights) is never taken for this one.
    version: Arc<AtomicU64>,
}

/// The next contents version of any tensor.
fn next_version() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What a tensor's buffer holds.
#[derive(Clone, Debug)]
pub enum Contents {
    /// f32 values.
    Values,
    /// Max-pooling argmax indices (`h * W + w` within each plane), stored as u32.
    Indices(IndexOrigin),
}

/// Where pooling indices came from, which decides how a backward pass may trust them.
#[derive(Clone, Debug)]
pub enum IndexOrigin {
    /// Written by wgconv's max pooling of an input of this shape with these parameters: every
    /// index lies inside its own window by construction.
    Pooled {
        /// The pooled input's shape, in the parameters' layout.
        input_shape: [usize; 4],
        /// The pooling's parameters.
        params: Pool2dParams,
    },
    /// Uploaded by the caller (from PyTorch, say). A host copy is kept so that each index can
    /// be checked against its window before any backward pass reads it.
    Uploaded(Arc<Array4<u32>>),
}

/// Receives the result of mapping a readback buffer.
type MapReceiver =
    futures_intrusive::channel::shared::OneshotReceiver<Result<(), wgpu::BufferAsyncError>>;

/// How every tensor's buffer may be used: bound as storage, and copied from and into.
pub(crate) fn tensor_usage() -> wgpu::BufferUsages {
    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST
}

const F32_BYTES: u64 = std::mem::size_of::<f32>() as u64;

impl GpuTensor {
    /// Uploads a 4-D array in NCHW (activations) or OIHW (weights) order, contiguous or not; a
    /// strided view is copied into row-major order.
    pub fn upload(gpu: &Gpu, data: ArrayView4<f32>) -> Result<Self> {
        Self::upload_view(gpu, data, "GpuTensor::upload")
    }

    /// Uploads a 4-D array stored in `layout`: NHWC activations or HWIO weights for
    /// `Layout::Nhwc`. Ops check that every tensor's layout matches their parameters.
    pub fn upload_with_layout(gpu: &Gpu, data: ArrayView4<f32>, layout: Layout) -> Result<Self> {
        let mut t = Self::upload_view(gpu, data, "GpuTensor::upload")?;
        t.layout = layout;
        Ok(t)
    }

    /// Uploads a 1-D array, for example a bias.
    pub fn upload_1d(gpu: &Gpu, data: ArrayView1<f32>) -> Result<Self> {
        Self::upload_view(gpu, data, "GpuTensor::upload")
    }

    /// Uploads max-pooling indices (int64, in the flattening of the pooling's `index_style`)
    /// stored in `layout`. Negative values or values past `u32::MAX` are rejected here; a
    /// backward pass later checks each index against its window.
    pub fn upload_indices(gpu: &Gpu, indices: ArrayView4<i64>, layout: Layout) -> Result<Self> {
        const OP: &str = "GpuTensor::upload_indices";
        let mut narrowed = Array4::<u32>::zeros(indices.dim());
        for ((pos, &v), slot) in indices.indexed_iter().zip(narrowed.iter_mut()) {
            *slot = u32::try_from(v).map_err(|_| {
                invalid(
                    OP,
                    format!("index {v} at {pos:?} is outside 0..={}", u32::MAX),
                )
            })?;
        }
        let narrowed = Arc::new(narrowed);
        let mut tensor = Self::upload_view(gpu, narrowed.view(), OP)?;
        tensor.contents = Contents::Indices(IndexOrigin::Uploaded(narrowed));
        tensor.layout = layout;
        Ok(tensor)
    }

    fn upload_view<T: bytemuck::Pod, D: Dimension>(
        gpu: &Gpu,
        data: ArrayView<T, D>,
        op: &'static str,
    ) -> Result<Self> {
        let shape = data.shape().to_vec();
        let bytes = Self::checked_bytes(gpu, op, &shape)?;
        let contiguous = data.as_standard_layout();
        let values = contiguous
            .as_slice()
            .expect("as_standard_layout returns a contiguous array");
        // A pooled buffer may still be read by submitted work, so it is filled by a queue write,
        // which wgpu orders after that work (see `gpu::runtime::buffer_pool`), never by mapping.
        let segment = segments::segment_bytes(gpu, bytes);
        let buffers = gpu
            .capture(op, || -> Result<Vec<PooledBuffer>> {
                let buffers = Self::take_segments(gpu, op, bytes, segment)?;
                let raw: &[u8] = bytemuck::cast_slice(values);
                for (buffer, chunk) in buffers.iter().zip(raw.chunks(segment as usize)) {
                    gpu.inner.queue.write_buffer(buffer, 0, chunk);
                }
                Ok(buffers)
            })
            .and_then(|r| r)?;
        Ok(Self {
            gpu: gpu.clone(),
            buffers: Arc::new(buffers),
            segment,
            bytes,
            shape,
            contents: Contents::Values,
            layout: Layout::Nchw,
            version: Arc::new(AtomicU64::new(next_version())),
        })
    }

    /// An uninitialised tensor for an op's output. The caller's error scope covers it.
    pub(crate) fn uninit(
        gpu: &Gpu,
        op: &'static str,
        shape: &[usize],
        layout: Layout,
    ) -> Result<Self> {
        let bytes = Self::checked_bytes(gpu, op, shape)?;
        let segment = segments::segment_bytes(gpu, bytes);
        let buffers = Self::take_segments(gpu, op, bytes, segment)?;
        Ok(Self {
            gpu: gpu.clone(),
            buffers: Arc::new(buffers),
            segment,
            bytes,
            shape: shape.to_vec(),
            contents: Contents::Values,
            layout,
            version: Arc::new(AtomicU64::new(next_version())),
        })
    }

    /// One pooled buffer per segment of a tensor of `bytes` cut every `segment`, taken in
    /// memory order (the order `memory::tensor_bytes` counts them in).
    fn take_segments(
        gpu: &Gpu,
        op: &'static str,
        bytes: u64,
        segment: u64,
    ) -> Result<Vec<PooledBuffer>> {
        segments::lengths(bytes, segment)
            .map(|len| gpu.take_buffer(op, "wgconv tensor", len, Self::usage()))
            .collect()
    }

    /// An uninitialised tensor of pooling indices written by a pooling kernel.
    pub(crate) fn uninit_indices(
        gpu: &Gpu,
        op: &'static str,
        shape: &[usize],
        layout: Layout,
        origin: IndexOrigin,
    ) -> Result<Self> {
        let mut t = Self::uninit(gpu, op, shape, layout)?;
        t.contents = Contents::Indices(origin);
        Ok(t)
    }

    /// What the buffer holds.
    pub fn contents(&self) -> &Contents {
        &self.contents
    }

    /// The memory order of a 4-D tensor (meaningless for 1-D ones).
    pub fn layout(&self) -> Layout {
        self.layout
    }

    fn usage() -> wgpu::BufferUsages {
        tensor_usage()
    }

    /// Size in bytes of the values, rejecting empty tensors and sizes past
    /// `segments::MAX_DEVICE_BUFFERS` of the device's largest buffers.
    fn checked_bytes(gpu: &Gpu, op: &'static str, shape: &[usize]) -> Result<u64> {
        if shape.contains(&0) {
            return Err(invalid(
                op,
                format!("tensor shape {shape:?} has a zero-sized dimension"),
            ));
        }
        let bytes = shape
            .iter()
            .try_fold(F32_BYTES, |acc, &d| acc.checked_mul(d as u64))
            .ok_or_else(|| too_large(op, format!("tensor shape {shape:?} overflows u64 bytes")))?;
        // Past the buffer limit the tensor is segmented. wgpu tells nothing of the device's
        // memory, so a ceiling of a few device-sized buffers keeps a mistaken shape from
        // allocating (and zero-filling) terabytes before anything can fail.
        let device_max = gpu.limits().max_buffer_size;
        let ceiling = device_max.saturating_mul(segments::MAX_DEVICE_BUFFERS);
        if bytes > ceiling || usize::try_from(bytes).is_err() {
            return Err(too_large(
                op,
                format!(
                    "tensor shape {shape:?} needs {bytes} bytes, above the {ceiling} bytes a \
                     tensor may hold: {} buffers of the device's max_buffer_size {device_max}",
                    segments::MAX_DEVICE_BUFFERS
                ),
            ));
        }
        Ok(bytes)
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The shape as `[N, C, H, W]` if the tensor is 4-D.
    pub fn dims4(&self) -> Option<[usize; 4]> {
        self.shape.as_slice().try_into().ok()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Always false: empty tensors cannot be created.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the values in bytes (the pooled buffer may be a little larger).
    pub fn byte_size(&self) -> u64 {
        self.bytes
    }

    /// The context this tensor lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Says that the values changed other than through wgconv (commands of the caller's own
    /// that write [`GpuTensor::buffer`] or [`GpuTensor::segments`]). Call it after such a
    /// write: wgconv keeps what it derives from a weight tensor (the packed weights of the
    /// tiled kernels) until the tensor's contents change, and learns of changes it did not
    /// make only from this. Every write wgconv makes (an upload, an op's output, an optimizer
    /// step in place) already counts.
    pub fn contents_changed(&self) {
        self.version.store(next_version(), Ordering::Relaxed);
    }

    /// What identifies these contents: the buffers' identity and the contents version.
    pub(crate) fn contents_identity(&self) -> (usize, u64) {
        (
            Arc::as_ptr(&self.buffers) as usize,
            self.version.load(Ordering::Relaxed),
        )
    }

    /// Whether a clone shares these buffers (a write into them would reach it too).
    pub(crate) fn is_shared(&self) -> bool {
        Arc::strong_count(&self.buffers) > 1
    }

    /// The version cell, to tell later whether any clone of this tensor is still alive.
    pub(crate) fn contents_liveness(&self) -> std::sync::Weak<AtomicU64> {
        Arc::downgrade(&self.version)
    }

    /// The tensor's one buffer, taken from it: `None` if it is segmented or shared by a clone.
    pub(crate) fn into_only_buffer(self) -> Option<PooledBuffer> {
        let mut buffers = Arc::try_unwrap(self.buffers).ok()?;
        if buffers.len() != 1 {
            return None;
        }
        buffers.pop()
    }

    /// The storage buffer, for callers that bind it in their own pipelines; its values fill the
    /// first [`GpuTensor::byte_size`] bytes. It is pooled: keep the tensor alive until commands
    /// using the buffer are submitted, or the pool may hand it to another tensor first. A
    /// caller that writes it must call [`GpuTensor::contents_changed`] afterwards.
    /// `TooLarge` for a segmented tensor, which no single buffer holds (see
    /// [`GpuTensor::segments`]).
    pub fn buffer(&self) -> Result<&wgpu::Buffer> {
        if self.buffers.len() > 1 {
            return Err(too_large(
                "GpuTensor::buffer",
                format!(
                    "tensor of shape {:?} is {} bytes in {} buffers of at most {} bytes (the \
                     buffer limit); use GpuTensor::segments",
                    self.shape,
                    self.bytes,
                    self.buffers.len(),
                    self.segment
                ),
            ));
        }
        Ok(self.first_buffer())
    }

    /// The first segment: the whole tensor unless segmented. Kernels bind it only after
    /// `launch::check_whole` has refused segmented tensors.
    pub(crate) fn first_buffer(&self) -> &wgpu::Buffer {
        &self.buffers[0]
    }

    /// The buffers holding the values, in memory order: segment `i` holds bytes
    /// `i * segment_bytes ..` of the values, each full but the last.
    pub fn segments(&self) -> impl Iterator<Item = &wgpu::Buffer> {
        self.buffers.iter().map(|b| &**b)
    }

    /// How many buffers hold the values: 1 unless they pass [`Gpu::max_buffer_size`].
    pub fn segment_count(&self) -> usize {
        self.buffers.len()
    }

    /// The bytes of values each segment but the last holds ([`GpuTensor::byte_size`] when
    /// there is one segment).
    pub fn segment_bytes(&self) -> u64 {
        self.segment
    }

    /// The segment holding byte `at` of the values, the offset of that byte in it, and how
    /// many bytes of values follow in that segment; `None` past the end.
    pub(crate) fn locate(&self, at: u64) -> Option<(&wgpu::Buffer, u64, u64)> {
        if at >= self.bytes {
            return None;
        }
        let index = at / self.segment;
        let start = index * self.segment;
        let len = self.segment.min(self.bytes - start);
        let buffer = self.buffers.get(usize::try_from(index).ok()?)?;
        Some((buffer, at - start, len - (at - start)))
    }

    /// Waits for every op writing this tensor and copies it into a 4-D array.
    pub fn read(&self) -> Result<Array4<f32>> {
        self.expect_values("GpuTensor::read")?;
        let values = self.read_values()?;
        self.shape_as_array4(values)
    }

    /// Reads pooling indices as PyTorch's int64.
    pub fn read_indices(&self) -> Result<Array4<i64>> {
        const OP: &str = "GpuTensor::read_indices";
        if !matches!(self.contents, Contents::Indices(_)) {
            return Err(invalid(OP, "tensor holds f32 values, not pooling indices"));
        }
        let raw: Vec<u32> = self.read_values()?;
        self.shape_as_array4(raw.into_iter().map(i64::from).collect())
    }

    /// `Err` unless the tensor holds f32 values.
    pub(crate) fn expect_values(&self, op: &'static str) -> Result<()> {
        match self.contents {
            Contents::Values => Ok(()),
            Contents::Indices(_) => {
                Err(invalid(op, "tensor holds pooling indices, not f32 values"))
            }
        }
    }

    /// [`GpuTensor::read`] without blocking the calling thread: a helper thread waits on the
    /// device while the returned future is pending.
    pub async fn read_async(&self) -> Result<Array4<f32>> {
        self.expect_values("GpuTensor::read_async")?;
        let values = self.read_values_async().await?;
        self.shape_as_array4(values)
    }

    /// Reads a 1-D tensor.
    pub fn read_1d(&self) -> Result<Array1<f32>> {
        if self.shape.len() != 1 {
            return Err(invalid(
                "GpuTensor::read_1d",
                format!("tensor has shape {:?}, not one dimension", self.shape),
            ));
        }
        self.expect_values("GpuTensor::read_1d")?;
        Ok(Array1::from(self.read_values::<f32>()?))
    }

    /// Reads a tensor of any rank.
    pub fn read_dyn(&self) -> Result<ArrayD<f32>> {
        self.expect_values("GpuTensor::read_dyn")?;
        let values = self.read_values()?;
        ArrayD::from_shape_vec(IxDyn(&self.shape), values)
            .map_err(|e| invalid("GpuTensor::read_dyn", e.to_string()))
    }

    fn shape_as_array4<T>(&self, values: Vec<T>) -> Result<Array4<T>> {
        let dims = self.dims4().ok_or_else(|| {
            invalid(
                "GpuTensor::read",
                format!("tensor has shape {:?}, not four dimensions", self.shape),
            )
        })?;
        Array4::from_shape_vec(dims, values).map_err(|e| invalid("GpuTensor::read", e.to_string()))
    }

    /// The byte length of segment `index`.
    fn segment_len(&self, index: usize) -> u64 {
        let start = index as u64 * self.segment;
        self.segment.min(self.bytes.saturating_sub(start))
    }

    /// Copies segment `index` into a mappable staging buffer and starts mapping it.
    fn start_readback(
        &self,
        op: &'static str,
        index: usize,
    ) -> Result<(PooledBuffer, MapReceiver)> {
        let gpu = &self.gpu;
        let size = self.segment_len(index);
        let source = self.buffers.get(index).ok_or_else(|| {
            invalid(
                op,
                format!("segment {index} of {} does not exist", self.buffers.len()),
            )
        })?;
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        let staging = gpu
            .capture(op, || -> Result<PooledBuffer> {
                let mut staging = gpu.take_buffer(
                    op,
                    "wgconv readback",
                    size,
                    wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                )?;
                let mut encoder =
                    gpu.inner
                        .device
                        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                            label: Some("wgconv readback"),
                        });
                encoder.copy_buffer_to_buffer(source, 0, &staging, 0, size);
                gpu.inner.queue.submit([encoder.finish()]);
                // Until unmapped, the staging buffer must not go back to the pool.
                staging.set_mapping(true);
                staging
                    .slice(..size)
                    .map_async(wgpu::MapMode::Read, move |r| {
                        // A closed channel means the reader gave up; nothing to report to.
                        let _ = sender.send(r);
                    });
                Ok(staging)
            })
            .and_then(|r| r)?;
        Ok((staging, receiver))
    }

    fn finish_readback<T: bytemuck::Pod>(
        op: &'static str,
        mut staging: PooledBuffer,
        size: u64,
        mapped: Option<Result<(), wgpu::BufferAsyncError>>,
    ) -> Result<Vec<T>> {
        match mapped {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                return Err(Error::Device {
                    op,
                    message: format!("mapping the readback buffer failed: {e}"),
                })
            }
            None => {
                return Err(Error::Device {
                    op,
                    message: "the readback was dropped before completing".into(),
                })
            }
        }
        let values = {
            let view = staging
                .slice(..size)
                .get_mapped_range()
                .map_err(|e| Error::Device {
                    op,
                    message: format!("reading the mapped buffer failed: {e}"),
                })?;
            bytemuck::cast_slice::<u8, T>(&view).to_vec()
        };
        staging.unmap();
        staging.set_mapping(false);
        Ok(values)
    }

    /// Segment by segment, so that staging never holds more than one buffer's worth.
    fn read_values<T: bytemuck::Pod>(&self) -> Result<Vec<T>> {
        const OP: &str = "GpuTensor::read";
        let mut values = Vec::new();
        for index in 0..self.buffers.len() {
            let (staging, receiver) = self.start_readback(OP, index)?;
            self.gpu.wait(OP)?;
            let mapped = pollster::block_on(receiver.receive());
            let part = Self::finish_readback(OP, staging, self.segment_len(index), mapped)?;
            if values.is_empty() {
                values = part;
            } else {
                values.extend_from_slice(&part);
            }
        }
        Ok(values)
    }

    async fn read_values_async(&self) -> Result<Vec<f32>> {
        const OP: &str = "GpuTensor::read_async";
        let mut values = Vec::new();
        for index in 0..self.buffers.len() {
            let (staging, receiver) = self.start_readback(OP, index)?;
            // wgpu on native only runs map callbacks while someone polls the device; that
            // someone is a short-lived thread, so the caller's executor is never blocked.
            let gpu = self.gpu.clone();
            let waiter = std::thread::spawn(move || gpu.wait(OP));
            let mapped = receiver.receive().await;
            waiter.join().map_err(|_| Error::Device {
                op: OP,
                message: "the device polling thread panicked".into(),
            })??;
            let part = Self::finish_readback(OP, staging, self.segment_len(index), mapped)?;
            if values.is_empty() {
                values = part;
            } else {
                values.extend_from_slice(&part);
            }
        }
        Ok(values)
    }
}
