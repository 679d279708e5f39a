//! `GpuTensor`: an f32 storage buffer with a shape, uploaded from and read back into ndarray.

use std::sync::Arc;

use ndarray::{Array1, Array4, ArrayD, ArrayView, ArrayView1, ArrayView4, Dimension, IxDyn};

use crate::error::{invalid, too_large, Error, Result};
use crate::gpu::Gpu;

/// A tensor living in GPU memory: a storage buffer holding `f32` values in row-major order of
/// `shape`. Ops take tensors and return new ones without waiting for the GPU; only the `read`
/// methods synchronise. Cloning shares the buffer.
#[derive(Clone, Debug)]
pub struct GpuTensor {
    gpu: Gpu,
    buffer: Arc<wgpu::Buffer>,
    shape: Vec<usize>,
}

/// Receives the result of mapping a readback buffer.
type MapReceiver =
    futures_intrusive::channel::shared::OneshotReceiver<Result<(), wgpu::BufferAsyncError>>;

const F32_BYTES: u64 = std::mem::size_of::<f32>() as u64;

impl GpuTensor {
    /// Uploads a 4-D array (contiguous or not; a strided view is copied into row-major order).
    pub fn upload(gpu: &Gpu, data: ArrayView4<f32>) -> Result<Self> {
        Self::upload_view(gpu, data)
    }

    /// Uploads a 1-D array, for example a bias.
    pub fn upload_1d(gpu: &Gpu, data: ArrayView1<f32>) -> Result<Self> {
        Self::upload_view(gpu, data)
    }

    fn upload_view<D: Dimension>(gpu: &Gpu, data: ArrayView<f32, D>) -> Result<Self> {
        const OP: &str = "GpuTensor::upload";
        let shape = data.shape().to_vec();
        let bytes = Self::checked_bytes(gpu, OP, &shape)?;
        let contiguous = data.as_standard_layout();
        let values = contiguous
            .as_slice()
            .expect("as_standard_layout returns a contiguous array");
        let buffer = gpu.capture(OP, || {
            let buffer = gpu.inner.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgconv tensor"),
                size: bytes,
                usage: Self::usage(),
                mapped_at_creation: true,
            });
            buffer
                .slice(..)
                .get_mapped_range_mut()
                .map(|mut view| view.copy_from_slice(bytemuck::cast_slice(values)))
                .map(|()| {
                    buffer.unmap();
                    buffer
                })
        })?;
        let buffer = buffer.map_err(|e| Error::Device {
            op: OP,
            message: format!("mapping a new buffer failed: {e}"),
        })?;
        Ok(Self {
            gpu: gpu.clone(),
            buffer: Arc::new(buffer),
            shape,
        })
    }

    /// An uninitialised tensor for an op's output. The caller's error scope covers it.
    pub(crate) fn uninit(gpu: &Gpu, op: &'static str, shape: &[usize]) -> Result<Self> {
        let bytes = Self::checked_bytes(gpu, op, shape)?;
        let buffer = gpu.inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgconv tensor"),
            size: bytes,
            usage: Self::usage(),
            mapped_at_creation: false,
        });
        Ok(Self {
            gpu: gpu.clone(),
            buffer: Arc::new(buffer),
            shape: shape.to_vec(),
        })
    }

    fn usage() -> wgpu::BufferUsages {
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST
    }

    /// Size in bytes, rejecting empty tensors and buffers the device cannot create.
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
        let max = gpu.limits().max_buffer_size;
        if bytes > max {
            return Err(too_large(
                op,
                format!("tensor shape {shape:?} needs {bytes} bytes, above the device's max_buffer_size {max}"),
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

    /// Size of the buffer in bytes.
    pub fn byte_size(&self) -> u64 {
        self.buffer.size()
    }

    /// The context this tensor lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// The storage buffer, for callers that bind it in their own pipelines.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Waits for every op writing this tensor and copies it into a 4-D array.
    pub fn read(&self) -> Result<Array4<f32>> {
        let values = self.read_values()?;
        self.shape_as_array4(values)
    }

    /// [`GpuTensor::read`] without blocking the calling thread: a helper thread waits on the
    /// device while the returned future is pending.
    pub async fn read_async(&self) -> Result<Array4<f32>> {
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
        Ok(Array1::from(self.read_values()?))
    }

    /// Reads a tensor of any rank.
    pub fn read_dyn(&self) -> Result<ArrayD<f32>> {
        let values = self.read_values()?;
        ArrayD::from_shape_vec(IxDyn(&self.shape), values)
            .map_err(|e| invalid("GpuTensor::read_dyn", e.to_string()))
    }

    fn shape_as_array4(&self, values: Vec<f32>) -> Result<Array4<f32>> {
        let dims = self.dims4().ok_or_else(|| {
            invalid(
                "GpuTensor::read",
                format!("tensor has shape {:?}, not four dimensions", self.shape),
            )
        })?;
        Array4::from_shape_vec(dims, values).map_err(|e| invalid("GpuTensor::read", e.to_string()))
    }

    /// Copies the buffer into a mappable staging buffer and starts mapping it.
    fn start_readback(&self, op: &'static str) -> Result<(wgpu::Buffer, MapReceiver)> {
        let gpu = &self.gpu;
        let size = self.buffer.size();
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        let staging = gpu.capture(op, || {
            let staging = gpu.inner.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgconv readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder =
                gpu.inner
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("wgconv readback"),
                    });
            encoder.copy_buffer_to_buffer(&self.buffer, 0, &staging, 0, size);
            gpu.inner.queue.submit([encoder.finish()]);
            staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                // A closed channel means the reader gave up; nothing to report to.
                let _ = sender.send(r);
            });
            staging
        })?;
        Ok((staging, receiver))
    }

    fn finish_readback(
        op: &'static str,
        staging: wgpu::Buffer,
        mapped: Option<Result<(), wgpu::BufferAsyncError>>,
    ) -> Result<Vec<f32>> {
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
                .slice(..)
                .get_mapped_range()
                .map_err(|e| Error::Device {
                    op,
                    message: format!("reading the mapped buffer failed: {e}"),
                })?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        Ok(values)
    }

    fn read_values(&self) -> Result<Vec<f32>> {
        const OP: &str = "GpuTensor::read";
        let (staging, receiver) = self.start_readback(OP)?;
        self.gpu.wait(OP)?;
        let mapped = pollster::block_on(receiver.receive());
        Self::finish_readback(OP, staging, mapped)
    }

    async fn read_values_async(&self) -> Result<Vec<f32>> {
        const OP: &str = "GpuTensor::read_async";
        let (staging, receiver) = self.start_readback(OP)?;
        // wgpu on native only runs map callbacks while someone polls the device; that someone is
        // a short-lived thread, so the caller's executor is never blocked.
        let gpu = self.gpu.clone();
        let waiter = std::thread::spawn(move || gpu.wait(OP));
        let mapped = receiver.receive().await;
        waiter.join().map_err(|_| Error::Device {
            op: OP,
            message: "the device polling thread panicked".into(),
        })??;
        Self::finish_readback(OP, staging, mapped)
    }
}
