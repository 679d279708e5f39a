//! Planned dispatches whose buffers are named by role, resolved once a call's tensors exist, so
//! that every check and size computation happens before anything is allocated or encoded.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};

use crate::error::too_large;
use crate::error::Result;
use crate::gpu::kernels::{Kernel, PACKED_TEXTURE_WIDTH};
use crate::gpu::runtime::buffer_pool::{BufferPool, KeptKey, KeptObject, Loaned, PooledTexture};
use crate::gpu::runtime::dispatch::DispatchGrid;
use crate::gpu::runtime::launch::{
    check_binding, check_whole, submit_after_copies, Dispatch, Resource, TextureCopy,
};
use crate::gpu::runtime::pipelines::{CompiledKernel, Overrides};
use crate::gpu::{Gpu, GpuTensor};
use crate::params::Layout;

/// Which buffer a planned dispatch binds at one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// The forward input (conv2d, and the weight gradient's im2col).
    Input,
    /// grad_output (the source of the input gradient), or conv_transpose2d's input.
    GradOutput,
    Weight,
    /// The bias, or the read-only placeholder where there is none.
    Bias,
    /// The read-only placeholder for a slot the kernel does not read.
    Unused,
    /// What the step writes for the caller: the result, or a reduction's partial sums.
    Output,
    /// Scratch buffer `i` of the plan.
    Scratch(usize),
    /// Packed texture `i` of the plan.
    Texture(usize),
}

/// One dispatch: a kernel, the pipeline constants it is built with, its uniforms, its grid and
/// its buffers by role (bindings 1..).
#[derive(Clone, Debug)]
pub struct Step {
    pub kernel: Kernel,
    pub overrides: Overrides,
    pub uniforms: Vec<u8>,
    pub grid: DispatchGrid,
    pub operands: Vec<Operand>,
}

/// The uniforms of a step, which may choose pipeline constants too (the conv family's
/// epilogue).
pub trait StepUniforms: bytemuck::Pod {
    /// The pipeline constants a dispatch with these uniforms needs.
    fn overrides(&self) -> Overrides;
}

impl Step {
    pub fn new<U: StepUniforms>(
        kernel: Kernel,
        uniforms: &U,
        grid: DispatchGrid,
        operands: Vec<Operand>,
    ) -> Self {
        Self {
            kernel,
            overrides: uniforms.overrides(),
            uniforms: bytemuck::bytes_of(uniforms).to_vec(),
            grid,
            operands,
        }
    }
}

/// Steps in order, the length in f32 of each scratch buffer they share, and the vec4s of each
/// packed texture.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub scratch: Vec<usize>,
    pub textures: Vec<usize>,
    /// The scratch buffer or texture (`Scratch(i)` or `Texture(i)`) that holds what the steps
    /// `[Weight, it]` derive from the weights alone (packed weights): kept after the call, and
    /// found again by a later call with the same weight contents, which then skips those steps.
    pub kept_weights: Option<Operand>,
    /// Operands copied into packed textures ahead of the steps, whose order they already have.
    pub texture_copies: Vec<PlannedCopy>,
}

/// The first `vec4s` vec4s of an operand's buffer copied into packed texture `texture`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedCopy {
    pub from: Operand,
    pub texture: usize,
    pub vec4s: usize,
}

impl Step {
    /// Whether the step derives the kept scratch operand `kept` from the weights alone.
    fn derives_weights(&self, kept: Operand) -> bool {
        self.operands == [Operand::Weight, kept]
    }
}

/// Width and height in texels of a packed texture of `vec4s` vec4s: rows of
/// `PACKED_TEXTURE_WIDTH`, narrower when one row holds them all.
pub fn texture_extent(vec4s: usize) -> (usize, usize) {
    let vec4s = vec4s.max(1);
    (
        vec4s.min(PACKED_TEXTURE_WIDTH),
        vec4s.div_ceil(PACKED_TEXTURE_WIDTH),
    )
}

/// Bytes of a packed texture of `vec4s` vec4s.
pub fn texture_bytes(vec4s: usize) -> u64 {
    let (width, height) = texture_extent(vec4s);
    BufferPool::texture_bytes((width as u32, height as u32))
}

/// `Err` unless a packed texture of `vec4s` vec4s fits the device's 2D texture limit.
pub(crate) fn check_texture(gpu: &Gpu, op: &'static str, vec4s: usize) -> Result<()> {
    let (width, height) = texture_extent(vec4s);
    let max = gpu.max_texture_dimension() as usize;
    if width.max(height) > max {
        return Err(too_large(
            op,
            format!(
                "a packed operand of {vec4s} vec4s needs a {width}x{height} texture, above the \
                 texture limit of {max} texels a side (the device's max_texture_dimension_2d, \
                 or Gpu::limit_texture_dimension)"
            ),
        ));
    }
    Ok(())
}

impl Plan {
    pub fn single(step: Step) -> Self {
        Self {
            steps: vec![step],
            ..Self::default()
        }
    }

    /// Adds a scratch buffer of `floats` f32 (at least one vec4) and returns its index.
    pub fn add_scratch(&mut self, floats: usize) -> usize {
        self.scratch.push(floats.max(4));
        self.scratch.len() - 1
    }

    /// Adds a packed texture of `vec4s` vec4s and returns its index.
    pub fn add_texture(&mut self, vec4s: usize) -> usize {
        self.textures.push(vec4s);
        self.textures.len() - 1
    }

    /// Adds a packed texture that the first `vec4s` vec4s of `from` are copied into ahead of
    /// the steps, and returns it.
    pub fn add_texture_copy(&mut self, from: Operand, vec4s: usize) -> Operand {
        let texture = self.add_texture(vec4s);
        self.texture_copies.push(PlannedCopy {
            from,
            texture,
            vec4s,
        });
        Operand::Texture(texture)
    }

    /// Bytes of scratch memory the plan allocates: buffers and textures.
    pub fn scratch_bytes(&self) -> u64 {
        let buffers: u64 = self.scratch.iter().map(|&n| n as u64 * 4).sum();
        buffers + self.textures.iter().map(|&n| texture_bytes(n)).sum::<u64>()
    }

    /// Whether every packed texture fits the device's texture limit.
    pub fn textures_fit(&self, gpu: &Gpu) -> bool {
        self.textures
            .iter()
            .all(|&n| check_texture(gpu, "planner", n).is_ok())
    }

    /// Bytes of the largest scratch buffer, which must fit one storage binding.
    pub fn largest_scratch_bytes(&self) -> u64 {
        self.scratch
            .iter()
            .map(|&n| n as u64 * 4)
            .max()
            .unwrap_or(0)
    }
}

/// A plan made ready to encode: checked against the device, its kernels compiled.
pub(crate) struct ReadyPlan {
    plan: Plan,
    kernels: Vec<Arc<CompiledKernel>>,
}

impl ReadyPlan {
    /// Checks every scratch buffer against the binding limit and every texture against the
    /// texture limit, and compiles every kernel.
    pub fn new(gpu: &Gpu, op: &'static str, plan: Plan) -> Result<Self> {
        for &floats in &plan.scratch {
            check_binding(gpu, op, "packed scratch", &[floats])?;
        }
        for &vec4s in &plan.textures {
            check_texture(gpu, op, vec4s)?;
        }
        let kernels = plan
            .steps
            .iter()
            .map(|s| s.kernel.compiled_with(gpu, op, &s.overrides))
            .collect::<Result<_>>()?;
        Ok(Self { plan, kernels })
    }

    /// What identifies the derivation of the kept weights: the steps that make them (kernels
    /// and uniforms) and their size.
    fn kept_key(&self, kept: Operand, weight: &GpuTensor) -> KeptKey {
        let (kind, size) = match kept {
            Operand::Scratch(i) => (b'b', self.plan.scratch[i]),
            Operand::Texture(i) => (b't', self.plan.textures[i]),
            other => unreachable!("weights are kept only in scratch, not {other:?}"),
        };
        let mut derivation = vec![kind];
        derivation.extend_from_slice(&(size as u64).to_le_bytes());
        for step in self.plan.steps.iter().filter(|s| s.derives_weights(kept)) {
            derivation.extend_from_slice(step.kernel.entry_point().as_bytes());
            derivation.push(0);
            derivation.extend_from_slice(&step.uniforms);
        }
        let (source, version) = weight.contents_identity();
        KeptKey {
            source,
            version,
            derivation,
        }
    }

    /// Allocates the scratch buffers and textures, or for the kept weights finds those that a
    /// call with the same `weight` contents left. Call inside [`Gpu::capture`].
    pub fn scratch(
        &self,
        gpu: &Gpu,
        op: &'static str,
        weight: Option<&GpuTensor>,
    ) -> Result<Scratch> {
        let kept = self
            .plan
            .kept_weights
            .zip(weight)
            .map(|(i, w)| (i, self.kept_key(i, w), w.contents_liveness()));
        let found = kept
            .as_ref()
            .and_then(|(k, key, _)| Some((*k, gpu.inner.pool.find_kept(key)?)));
        Ok(Scratch {
            buffers: self
                .plan
                .scratch
                .iter()
                .enumerate()
                .map(|(i, &floats)| match &found {
                    Some((Operand::Scratch(k), KeptObject::Buffer(buffer))) if *k == i => {
                        Ok(ScratchBuffer::Kept(buffer.clone()))
                    }
                    _ => {
                        GpuTensor::uninit(gpu, op, &[floats], Layout::Nchw).map(ScratchBuffer::New)
                    }
                })
                .collect::<Result<_>>()?,
            textures: self
                .plan
                .textures
                .iter()
                .enumerate()
                .map(|(i, &vec4s)| match &found {
                    Some((Operand::Texture(k), KeptObject::Texture(texture))) if *k == i => {
                        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
                        Ok(ScratchTexture::Kept(texture.clone(), view))
                    }
                    _ => {
                        let (width, height) = texture_extent(vec4s);
                        gpu.inner
                            .pool
                            .take_texture(&gpu.inner.device, op, (width as u32, height as u32))
                            .map(ScratchTexture::New)
                    }
                })
                .collect::<Result<_>>()?,
            keep: if found.is_some() { None } else { kept },
            found: found.map(|(k, _)| k),
        })
    }

    /// The copies into packed textures, from what `resolve` gives.
    pub fn copies<'a>(
        &'a self,
        scratch: &'a Scratch,
        resolve: impl Fn(Operand) -> &'a wgpu::Buffer,
    ) -> Vec<TextureCopy<'a>> {
        self.plan
            .texture_copies
            .iter()
            .map(|c| TextureCopy {
                from: resolve(c.from),
                to: scratch.textures[c.texture].texture(),
                vec4s: c.vec4s,
            })
            .collect()
    }

    /// The dispatches, with scratch operands bound to `scratch` and every other operand to
    /// what `resolve` gives.
    pub fn dispatches<'a>(
        &'a self,
        scratch: &'a Scratch,
        resolve: impl Fn(Operand) -> &'a wgpu::Buffer,
    ) -> Vec<Dispatch<'a>> {
        self.plan
            .steps
            .iter()
            .zip(&self.kernels)
            .filter(|(step, _)| scratch.found.is_none_or(|i| !step.derives_weights(i)))
            .map(|(step, kernel)| Dispatch {
                kernel,
                label: step.kernel.entry_point(),
                uniforms: &step.uniforms,
                resources: step
                    .operands
                    .iter()
                    .map(|&o| match o {
                        Operand::Scratch(i) => Resource::Buffer(scratch.buffers[i].buffer()),
                        Operand::Texture(i) => Resource::Texture(scratch.textures[i].view()),
                        other => Resource::Buffer(resolve(other)),
                    })
                    .collect(),
                grid: step.grid,
            })
            .collect()
    }
}

/// The scratch memory of one run of a plan.
pub(crate) struct Scratch {
    buffers: Vec<ScratchBuffer>,
    textures: Vec<ScratchTexture>,
    /// The kept weights this run found (its steps deriving them are skipped).
    found: Option<Operand>,
    /// The kept weights this run derives, to keep once its commands are submitted, with the
    /// weight tensor's liveness.
    keep: Option<(Operand, KeptKey, Weak<AtomicU64>)>,
}

/// A packed texture: from the pool for this run, or kept from an earlier one.
enum ScratchTexture {
    New(PooledTexture),
    Kept(wgpu::Texture, wgpu::TextureView),
}

impl ScratchTexture {
    fn texture(&self) -> &wgpu::Texture {
        match self {
            ScratchTexture::New(t) => t.texture(),
            ScratchTexture::Kept(t, _) => t,
        }
    }

    fn view(&self) -> &wgpu::TextureView {
        match self {
            ScratchTexture::New(t) => t.view(),
            ScratchTexture::Kept(_, view) => view,
        }
    }
}

/// A scratch buffer: allocated for this run, or kept from an earlier one.
enum ScratchBuffer {
    New(GpuTensor),
    Kept(wgpu::Buffer),
}

impl ScratchBuffer {
    fn buffer(&self) -> &wgpu::Buffer {
        match self {
            ScratchBuffer::New(t) => t.first_buffer(),
            ScratchBuffer::Kept(b) => b,
        }
    }
}

impl Scratch {
    /// Keeps the weights this run derived (call after submitting its commands, so that only
    /// what was really written is kept) and frees the rest.
    pub fn finish(self, gpu: &Gpu) {
        let Some((kept, key, source)) = self.keep else {
            return;
        };
        match kept {
            Operand::Scratch(i) => {
                if let Some(ScratchBuffer::New(t)) = self.buffers.into_iter().nth(i) {
                    if let Some(buffer) = t.into_only_buffer() {
                        gpu.inner.pool.keep(key, source, Loaned::Buffer(buffer));
                    }
                }
            }
            Operand::Texture(i) => {
                if let Some(ScratchTexture::New(t)) = self.textures.into_iter().nth(i) {
                    gpu.inner.pool.keep(key, source, Loaned::Texture(t));
                }
            }
            _ => {}
        }
    }
}

/// Whether an unsplit call keeps its packed weights for the next call with the same weights.
/// The pieces of a split call do not: each piece's packing differs, and keeping them all
/// would raise the split call's peak above what its plan predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeepWeights {
    Yes,
    No,
}

/// The operands of a plan that turns one source tensor, the weights and an optional bias into
/// one output: conv2d's forward (source role `Input`) and conv_transpose2d (`GradOutput`).
pub(crate) struct ConvOperands<'a> {
    pub source_role: Operand,
    pub source: &'a GpuTensor,
    pub weight: &'a GpuTensor,
    pub bias: Option<&'a GpuTensor>,
}

/// Runs `plan` on `operands` into a new output of `output_shape`, after checking that no
/// tensor is segmented (the caller splits those first); enqueued, never waited for.
pub(crate) fn run_into_output(
    gpu: &Gpu,
    op: &'static str,
    plan: &ReadyPlan,
    operands: ConvOperands<'_>,
    output_shape: &[usize],
    layout: Layout,
    keep: KeepWeights,
) -> Result<GpuTensor> {
    let ConvOperands {
        source_role,
        source,
        weight,
        bias,
    } = operands;
    check_whole(op, &[("input", source), ("weight", weight)])?;
    if let Some(b) = bias {
        check_whole(op, &[("bias", b)])?;
    }
    gpu.capture(op, || -> Result<GpuTensor> {
        let output = GpuTensor::uninit(gpu, op, output_shape, layout)?;
        check_whole(op, &[("output", &output)])?;
        let scratch = plan.scratch(gpu, op, Some(weight).filter(|_| keep == KeepWeights::Yes))?;
        let placeholder = &gpu.inner.placeholder;
        let resolve = |operand| match operand {
            role if role == source_role => source.first_buffer(),
            Operand::Weight => weight.first_buffer(),
            Operand::Bias => bias.map_or(placeholder, |b| b.first_buffer()),
            Operand::Output => output.first_buffer(),
            _ => placeholder,
        };
        let copies = plan.copies(&scratch, resolve);
        let dispatches = plan.dispatches(&scratch, resolve);
        submit_after_copies(gpu, op, &copies, &dispatches)?;
        drop((copies, dispatches));
        scratch.finish(gpu);
        Ok(output)
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_textures_are_rows_of_the_texture_width_and_narrow_when_one_row_holds_all() {
        assert_eq!(texture_extent(0), (1, 1));
        assert_eq!(texture_extent(100), (100, 1));
        assert_eq!(
            texture_extent(PACKED_TEXTURE_WIDTH),
            (PACKED_TEXTURE_WIDTH, 1)
        );
        assert_eq!(
            texture_extent(PACKED_TEXTURE_WIDTH + 1),
            (PACKED_TEXTURE_WIDTH, 2)
        );
        assert_eq!(texture_bytes(100), 1600);
        assert_eq!(
            texture_bytes(3 * PACKED_TEXTURE_WIDTH - 5),
            3 * PACKED_TEXTURE_WIDTH as u64 * 16
        );
    }
}
