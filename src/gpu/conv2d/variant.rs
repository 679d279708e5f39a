//! Chooses a kernel variant for each conv2d pass from the shape, the parameters and the adapter,
//! and says why.

use std::sync::{Arc, Mutex};

use crate::error::{invalid, Result};
use crate::gpu::conv2d::packed::Tiling;
use crate::gpu::conv2d::subgroup::SubgroupWidth;
use crate::gpu::conv2d::{depthwise as conv2d_depthwise, packed as conv2d_packed, tune as tuning};
use crate::gpu::plan::variant_env::{variant_from_env, UnknownVariant};
use crate::gpu::Gpu;
use crate::params::Conv2dGeometry;

/// Environment variable that forces a conv2d kernel variant by name (`direct`, `subgroup`,
/// `packed4`, `packed8`, `packed16`, `tiled`, `depthwise`) on every `Gpu` created afterwards, as [`Gpu::force_conv_variant`] does.
pub const VARIANT_ENV: &str = "WGCONV_CONV_VARIANT";

/// A family of conv2d kernels. Every variant computes every pass of every parameter set; they
/// differ only in how work maps to invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvVariant {
    /// Register-tiled direct convolution (`conv2d_forward`, `conv2d_backward_input`,
    /// `conv2d_backward_weight_partial`): 4 channels x 4 columns per invocation, portable.
    Direct,
    /// Implicit GEMM over subgroups (`conv2d_gemm_subgroup`, `conv2d_weight_grad_subgroup`):
    /// each lane loads distinct values and shares them by subgroup broadcast, a tile of one
    /// column per lane by 16 channels (more past 16 lanes). Needs SUBGROUP and a subgroup size
    /// the adapter fixes at 4, 8, 16, 32 or 64 (lavapipe at every vector width, SwiftShader).
    Subgroup,
    /// Packed8's kernels composed for 4 lanes (`conv2d/packed4`): tiles of 8 pixels by 8
    /// channels, or of 16 by 16 where there are more than 8. Needs SUBGROUP and a subgroup
    /// size of exactly 4 (SwiftShader, lavapipe at 128 bits).
    Packed4,
    /// The subgroup scheme at 8 lanes on operands repacked into textures as zero-padded vec4s along the
    /// reduction (`pack_*_texture`, then `conv2d_gemm_packed[_wide|_few]` or
    /// `conv2d_weight_grad_packed[_wide]` of `conv2d/packed8`): four reduction terms per load and loop step, no
    /// bounds checks, at the price of scratch memory and one repacking pass per operand.
    /// Needs SUBGROUP and a subgroup size of exactly 8 (lavapipe on AVX2).
    Packed8,
    /// Packed8's kernels composed for 16 lanes (`conv2d_gemm_packed[_wide]` and
    /// `conv2d_weight_grad_packed[_wide]` of `conv2d/packed16`): tiles of 32 pixels by 32
    /// channels, or of 64 by 64 where there are more than 32. Needs SUBGROUP and a subgroup size of exactly 16
    /// (lavapipe at 512 bits, on AVX-512).
    Packed16,
    /// Implicit GEMM with workgroup-memory tiles (`conv2d_gemm_tiled`,
    /// `conv2d_weight_grad_tiled`) on operands packed as packed8's, into buffers
    /// (`pack_*_vec4`): 32 pixels x 64 channels
    /// per workgroup of 64, each operand read from device memory once per tile. Written for
    /// real GPUs, where workgroup memory is fast and loads are coalesced; portable, and the
    /// planner's pick on adapters without usable subgroups (wgpu's GL backend).
    Tiled,
    /// Depthwise layers (one input channel per group), NCHW or NHWC: quads of outputs with
    /// straight-line taps, lanes in the order [`Gpu::depthwise_lanes`] gives
    /// (`conv2d_depthwise_quads`), for the forward, a
    /// unit-stride input gradient (a flipped forward) and the weight gradient (split-K,
    /// `conv2d_depthwise_weight_grad_quads`), where the shape allows (windows up to 3x3,
    /// column stride 1 or 2, left padding up to 1); every other pass and shape runs the
    /// direct kernels. Portable.
    Depthwise,
}

impl ConvVariant {
    /// Every variant, in the order `--explain` lists them.
    pub const ALL: &'static [ConvVariant] = &[
        ConvVariant::Direct,
        ConvVariant::Subgroup,
        ConvVariant::Packed4,
        ConvVariant::Packed8,
        ConvVariant::Packed16,
        ConvVariant::Tiled,
        ConvVariant::Depthwise,
    ];

    /// How the packed variants tile their GEMM; `None` for the unpacked ones.
    pub fn packed_tiling(self) -> Option<Tiling> {
        match self {
            ConvVariant::Packed4 => Some(Tiling::Subgroup(4)),
            ConvVariant::Packed8 => Some(Tiling::Subgroup(8)),
            ConvVariant::Packed16 => Some(Tiling::Subgroup(16)),
            ConvVariant::Tiled => Some(Tiling::Workgroup(conv2d_packed::TILED_CHANNELS)),
            ConvVariant::Direct | ConvVariant::Subgroup | ConvVariant::Depthwise => None,
        }
    }

    /// The name the CLI and the tuning cache use.
    pub fn name(self) -> &'static str {
        match self {
            ConvVariant::Direct => "direct",
            ConvVariant::Subgroup => "subgroup",
            ConvVariant::Packed4 => "packed4",
            ConvVariant::Packed8 => "packed8",
            ConvVariant::Packed16 => "packed16",
            ConvVariant::Tiled => "tiled",
            ConvVariant::Depthwise => "depthwise",
        }
    }

    /// The variant called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == name)
    }

    /// `Ok` when this device can run the variant, else why not.
    pub fn available(self, gpu: &Gpu) -> std::result::Result<(), String> {
        match self {
            ConvVariant::Direct | ConvVariant::Depthwise => Ok(()),
            ConvVariant::Tiled => {
                let have = gpu.limits().max_compute_workgroup_storage_size;
                if have < conv2d_packed::TILED_WORKGROUP_BYTES {
                    return Err(format!(
                        "the device has {have} bytes of workgroup memory, the kernels need {}",
                        conv2d_packed::TILED_WORKGROUP_BYTES
                    ));
                }
                Ok(())
            }
            ConvVariant::Subgroup => SubgroupWidth::of(gpu).map(|_| ()),
            ConvVariant::Packed4 | ConvVariant::Packed8 | ConvVariant::Packed16 => {
                let Some(Tiling::Subgroup(want)) = self.packed_tiling() else {
                    unreachable!("the packed variants tile by subgroups")
                };
                match SubgroupWidth::of(gpu)?.lanes() {
                    lanes if lanes == want => Ok(()),
                    lanes => Err(format!(
                        "subgroups are {lanes} wide, {} needs exactly {want}",
                        self.name()
                    )),
                }
            }
        }
    }
}

/// The passes of a convolution, each planned on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvPass {
    /// The forward pass (conv2d).
    Forward,
    /// The input gradient dx, which conv_transpose2d also runs.
    InputGrad,
    /// The weight gradient dw.
    WeightGrad,
}

impl ConvPass {
    /// The short name `--explain` and the tuning cache use: `forward`, `dx`, `dw`.
    pub fn name(self) -> &'static str {
        match self {
            ConvPass::Forward => "forward",
            ConvPass::InputGrad => "dx",
            ConvPass::WeightGrad => "dw",
        }
    }

    /// Channels a tile of this pass spans: the GEMM's M within one group.
    fn tile_channels(self, g: &Conv2dGeometry) -> usize {
        match self {
            ConvPass::Forward | ConvPass::WeightGrad => g.out_channels_per_group(),
            ConvPass::InputGrad => g.in_channels_per_group(),
        }
    }
}

/// A planner decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The pass planned.
    pub pass: ConvPass,
    /// The variant that runs it.
    pub variant: ConvVariant,
    /// Why: the rule, the forced setting or the tuning measurement behind the pick.
    pub reason: String,
}

/// Fewest channels per group for which the subgroup kernels' 16-channel tiles beat the direct
/// kernel's 4-channel tiles: below this on both sides (depthwise layers) most of each tile's
/// lanes would compute padding. Without subgroups, the tiled kernels need this many on both
/// sides.
pub const SUBGROUP_MIN_CHANNELS: usize = 8;

/// The variant for one pass of `g` on `gpu`: the variant the tuner is timing on this thread,
/// else the forced variant if one is set (an `Err` if the device cannot run it), else the
/// tuner's choice if tuning is on, else the planner's pick.
pub fn choose(gpu: &Gpu, op: &'static str, pass: ConvPass, g: &Conv2dGeometry) -> Result<Choice> {
    check_variant_env(gpu, op)?;
    if let Some(variant) = tuning::variant_being_timed() {
        return Ok(Choice {
            pass,
            variant,
            reason: "being timed by the tuner".into(),
        });
    }
    if let Some(forced) = gpu.forced_conv_variant() {
        forced.available(gpu).map_err(|why| {
            invalid(
                op,
                format!("forced variant {} cannot run here: {why}", forced.name()),
            )
        })?;
        return Ok(Choice {
            pass,
            variant: forced,
            reason: "forced by Gpu::force_conv_variant".into(),
        });
    }
    if let Some(tuner) = gpu.tuner() {
        let (variant, reason) = tuner.choose(gpu, pass, g)?;
        return Ok(Choice {
            pass,
            variant,
            reason,
        });
    }
    Ok(plan(gpu, pass, g))
}

/// The variants [`choose`] may return for this pass, found without timing anything: the one
/// it would return, or, when tuning is on and nothing is cached for this shape, every variant
/// the device can run (the tuner's pick is one of them). Memory estimates plan each.
pub(crate) fn candidates(
    gpu: &Gpu,
    op: &'static str,
    pass: ConvPass,
    g: &Conv2dGeometry,
) -> Result<Vec<ConvVariant>> {
    check_variant_env(gpu, op)?;
    if tuning::variant_being_timed().is_some() || gpu.forced_conv_variant().is_some() {
        return Ok(vec![choose(gpu, op, pass, g)?.variant]);
    }
    if let Some(tuner) = gpu.tuner() {
        let cached = tuner
            .cached(&tuning::cache_key(gpu, pass, g))
            .filter(|v| v.available(gpu).is_ok());
        return Ok(match cached {
            Some(v) => vec![v],
            None => ConvVariant::ALL
                .iter()
                .copied()
                .filter(|v| v.available(gpu).is_ok())
                .collect(),
        });
    }
    Ok(vec![plan(gpu, pass, g).variant])
}

/// The planner's own pick, ignoring any forced variant.
pub fn plan(gpu: &Gpu, pass: ConvPass, g: &Conv2dGeometry) -> Choice {
    let channels = pass.tile_channels(g);
    let (cin, cout) = (g.in_channels_per_group(), g.out_channels_per_group());
    // A packed variant's plan if its scratch fits: buffers one binding, textures the
    // texture limit.
    let fits = |tiling| {
        conv2d_packed::scratch_plan(pass, tiling, g)
            .ok()
            .filter(|p| {
                p.largest_scratch_bytes() <= gpu.max_storage_binding() && p.textures_fit(gpu)
            })
    };
    let width = SubgroupWidth::of(gpu);
    // The packed kernels at the adapter's fixed width, if they are composed for it.
    let packed_variant = match width {
        Ok(w) if w.lanes() == 4 => Some(ConvVariant::Packed4),
        Ok(w) if w.lanes() == 8 => Some(ConvVariant::Packed8),
        Ok(w) if w.lanes() == 16 => Some(ConvVariant::Packed16),
        _ => None,
    };
    let packed_tiling = packed_variant.and_then(ConvVariant::packed_tiling);
    let packed = packed_tiling.and_then(fits);
    let real_gpu = gpu.is_hardware_gpu();
    // Real GPUs take tiled, and so do adapters without usable subgroups (wgpu's GL backend,
    // lavapipe at 1024 bits), where it outran the direct kernels (docs/benchmarks.md); where
    // the subgroup kernels run, its plan would be built on every call for nothing.
    let tiled = ((real_gpu || width.is_err()) && ConvVariant::Tiled.available(gpu).is_ok())
        .then(|| fits(Tiling::Workgroup(conv2d_packed::TILED_CHANNELS)))
        .flatten();
    let depthwise = match pass {
        ConvPass::Forward => conv2d_depthwise::forward_fits(g),
        ConvPass::InputGrad => conv2d_depthwise::input_grad_as_forward(g).is_some(),
        ConvPass::WeightGrad => conv2d_depthwise::forward_fits(g),
    };
    // The tiles the tiled kernels would run for this pass (narrowed to the layer's channels).
    let tiled_tiles = || {
        Tiling::Workgroup(conv2d_packed::TILED_CHANNELS)
            .for_pass(pass, channels)
            .describe()
    };
    let (variant, reason) = match width {
        _ if depthwise => (
            ConvVariant::Depthwise,
            format!(
                "depthwise ({cout} out per input channel), 3x3 or smaller: quads of outputs with straight-line taps, lanes {}",
                match conv2d_depthwise::LaneOrder::for_device(gpu, g.layout).along_channels {
                    true => "along channels",
                    false => "along the quads of a row",
                }
            ),
        ),
        _ if real_gpu && cin.max(cout) >= SUBGROUP_MIN_CHANNELS && tiled.is_some() => (
            ConvVariant::Tiled,
            format!(
                "a {:?} GPU: workgroup memory, {cin} in / {cout} out channels per group{}",
                gpu.adapter_info().device_type,
                tiled_tiles()
            ),
        ),
        // Without subgroups, tiled where both sides have channels to fill its tiles: a
        // 3-channel stem ran slower tiled than direct at 1024 bits.
        Err(why) if cin.min(cout) >= SUBGROUP_MIN_CHANNELS && tiled.is_some() => (
            ConvVariant::Tiled,
            format!(
                "no subgroup kernels ({why}): workgroup memory, {cin} in / {cout} out channels per group{}",
                tiled_tiles()
            ),
        ),
        Err(why) => (ConvVariant::Direct, format!("no subgroup kernels: {why}")),
        Ok(_) if cin.max(cout) < SUBGROUP_MIN_CHANNELS => (
            ConvVariant::Direct,
            format!(
                "{channels} channels per group ({cin} in, {cout} out): 16-channel subgroup tiles would be mostly idle"
            ),
        ),
        Ok(w) => match packed {
            // Even a tile with few live channels (a 3-channel stem's dx) wins: the long
            // reduction over the other side's channels runs four terms per load.
            Some(p) => (
                packed_variant.expect("a packed plan comes with its variant"),
                format!(
                    "{}-wide subgroups (the adapter fixes the size, the probe confirmed it), {cin} in / {cout} out channels per group: vec4 loads of operands repacked or copied into {} KiB of scratch{}",
                    w.lanes(),
                    p.scratch_bytes().div_ceil(1024),
                    packed_tiling
                        .map(|t| t.for_pass(pass, channels).describe())
                        .unwrap_or_default()
                ),
            ),
            None if channels >= SUBGROUP_MIN_CHANNELS => (
                ConvVariant::Subgroup,
                format!(
                    "{}-wide subgroups, tiles of {} pixels x {} channels, {channels} channels per group; {}",
                    w.lanes(),
                    w.tile().columns,
                    w.tile().channels,
                    if packed_tiling.is_some() {
                        "the packed kernels' scratch would not fit one binding or texture"
                    } else {
                        "the packed kernels need 4-, 8- or 16-wide subgroups"
                    }
                ),
            ),
            None => (
                ConvVariant::Direct,
                format!(
                    "{channels} channels per group, too few for {}-wide subgroup tiles of {} channels{}",
                    w.lanes(),
                    w.tile().channels,
                    if packed_tiling.is_some() {
                        ", and the packed kernels' scratch would not fit one binding or texture"
                    } else {
                        ""
                    }
                ),
            ),
        },
    };
    Choice {
        pass,
        variant,
        reason,
    }
}

/// The conv2d planner's per-device settings, kept in the `Gpu`'s extensions.
struct ConvSettings {
    /// A variant every call must use, overriding the planner (tests, `--variant`).
    forced: Mutex<Option<ConvVariant>>,
    /// `WGCONV_CONV_VARIANT` when it names no variant.
    unknown_env: Option<UnknownVariant>,
    /// Set by [`Gpu::enable_tuning`]: the planner then times variants on first use of a shape.
    tuner: Mutex<Option<Arc<tuning::Tuner>>>,
}

impl Default for ConvSettings {
    /// Read when a `Gpu` first plans a conv2d-family call: `WGCONV_CONV_VARIANT` forces a variant.
    fn default() -> Self {
        let (forced, unknown_env) = variant_from_env(VARIANT_ENV, ConvVariant::from_name);
        Self {
            forced: Mutex::new(forced),
            unknown_env,
            tuner: Mutex::new(None),
        }
    }
}

/// `Err` when `WGCONV_CONV_VARIANT` names no variant and no variant is forced in code (which
/// wins over the variable).
fn check_variant_env(gpu: &Gpu, op: &'static str) -> Result<()> {
    match &gpu.conv_settings().unknown_env {
        Some(unknown) if gpu.forced_conv_variant().is_none() => Err(unknown.error(
            op,
            "conv2d kernel variant",
            ConvVariant::ALL.iter().map(|v| v.name()),
        )),
        _ => Ok(()),
    }
}

impl Gpu {
    fn conv_settings(&self) -> Arc<ConvSettings> {
        self.inner.extensions.get::<ConvSettings>()
    }

    /// Makes every conv2d-family call on this device (and its clones) use `variant` instead
    /// of the planner's pick; `None` gives the choice back to the planner. A call whose forced
    /// variant this device cannot run returns `Err`.
    pub fn force_conv_variant(&self, variant: Option<ConvVariant>) {
        *self
            .conv_settings()
            .forced
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = variant;
    }

    /// The variant set by [`Gpu::force_conv_variant`], if any.
    pub fn forced_conv_variant(&self) -> Option<ConvVariant> {
        *self
            .conv_settings()
            .forced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Turns on autotuning: from now on the first conv2d-family call of each shape and pass
    /// times every variant this device can run and keeps the fastest, in the JSON cache at
    /// `cache` (default: [`crate::gpu::conv2d::tune::default_cache_path`]), which later runs and
    /// other `Gpu`s read back. A forced variant still wins over the cache. Errors if the
    /// cache exists but cannot be read as one.
    pub fn enable_tuning(&self, cache: Option<&std::path::Path>) -> Result<()> {
        let path = cache.map_or_else(crate::gpu::conv2d::tune::default_cache_path, |p| {
            p.to_path_buf()
        });
        let tuner = crate::gpu::conv2d::tune::Tuner::open(&path)?;
        *self
            .conv_settings()
            .tuner
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(tuner));
        Ok(())
    }

    /// The tuner, if [`Gpu::enable_tuning`] turned tuning on.
    pub fn tuner(&self) -> Option<Arc<crate::gpu::conv2d::tune::Tuner>> {
        self.conv_settings()
            .tuner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
