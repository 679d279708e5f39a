//! Autotuning of the conv2d variant: the fastest per adapter and shape, timed once and cached in a JSON file.
//!
//! On first use of a shape every variant the device can run is timed. The cache file is read
//! and written by hand (`cache_json` below), so that the library needs no JSON crate.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use ndarray::Array4;

use crate::error::{invalid, Result};
use crate::gpu::conv2d::tune_cache;
use crate::gpu::conv2d::variant::{ConvPass, ConvVariant};
use crate::gpu::{Gpu, GpuTensor};
use crate::params::{Conv2dGeometry, Conv2dParams, Padding};

/// Environment variable naming the tuning cache file; see [`default_cache_path`].
pub const TUNE_CACHE_ENV: &str = "WGCONV_TUNE_CACHE";

/// Version of the cache format; a file with another version is rejected, not misread.
const CACHE_VERSION: u64 = 1;

thread_local! {
    /// The variant the tuner is timing on this thread; the planner obeys it before anything
    /// else, so timing one candidate never recurses into tuning.
    static TIMING: Cell<Option<ConvVariant>> = const { Cell::new(None) };
}

/// The variant being timed on this thread, if the tuner is timing one.
pub(crate) fn variant_being_timed() -> Option<ConvVariant> {
    TIMING.with(Cell::get)
}

/// The cache file used when none is given: `$WGCONV_TUNE_CACHE`, else
/// `$XDG_CACHE_HOME/wgconv/tune.json`, else `$HOME/.cache/wgconv/tune.json`.
pub fn default_cache_path() -> PathBuf {
    if let Some(p) = std::env::var_os(TUNE_CACHE_ENV) {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("wgconv").join("tune.json")
}

/// Tuned choices, keyed by adapter, pass and shape, backed by a JSON file:
/// `{"version": 1, "entries": {"<key>": "<variant name>", ...}}` where a key reads
/// `adapter name|driver info|pass|geometry`. The file is rewritten
/// whole after each new entry.
#[derive(Debug)]
pub struct Tuner {
    path: PathBuf,
    entries: Mutex<BTreeMap<String, String>>,
}

impl Tuner {
    /// Loads the cache at `path`; a missing file is an empty cache, an unreadable or malformed
    /// one an `Err` naming the file.
    pub fn open(path: &Path) -> Result<Self> {
        const OP: &str = "tuning cache";
        let entries = match std::fs::read_to_string(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(invalid(OP, format!("cannot read {}: {e}", path.display()))),
            Ok(text) => parse_cache(&text).map_err(|why| {
                invalid(
                    OP,
                    format!("{} is not a tuning cache: {why}", path.display()),
                )
            })?,
        };
        Ok(Self {
            path: path.to_path_buf(),
            entries: Mutex::new(entries),
        })
    }

    /// The cache file this tuner reads and writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cached variant for a key, if any.
    pub fn cached(&self, key: &str) -> Option<ConvVariant> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .and_then(|name| ConvVariant::from_name(name))
    }

    /// The variant for one pass of `g`: the cached one, else the fastest of the variants the
    /// device can run, timed now and written to the cache. Also returns whether it was timed.
    pub(crate) fn choose(
        &self,
        gpu: &Gpu,
        pass: ConvPass,
        g: &Conv2dGeometry,
    ) -> Result<(ConvVariant, String)> {
        let key = cache_key(gpu, pass, g);
        if let Some(v) = self.cached(&key) {
            if v.available(gpu).is_ok() {
                return Ok((
                    v,
                    format!("tuned earlier, cached in {}", self.path.display()),
                ));
            }
        }
        let mut timings = Vec::new();
        for &v in ConvVariant::ALL {
            if v.available(gpu).is_err() {
                continue;
            }
            // A variant that cannot run this shape (scratch over the binding limit) is no
            // candidate; the others still are.
            if let Ok(seconds) = time_variant(gpu, v, pass, g) {
                timings.push((v, seconds));
            }
        }
        let Some(&(best, seconds)) = timings.iter().min_by(|a, b| a.1.total_cmp(&b.1)) else {
            return Err(invalid(
                "tuning",
                format!(
                    "no conv2d variant could run the {} pass of {g:?}",
                    pass.name()
                ),
            ));
        };
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, best.name().to_string());
        self.save()?;
        let all: Vec<String> = timings
            .iter()
            .map(|(v, s)| format!("{} {:.2} ms", v.name(), s * 1e3))
            .collect();
        Ok((
            best,
            format!(
                "tuned now ({}), {:.2} ms is fastest",
                all.join(", "),
                seconds * 1e3
            ),
        ))
    }

    fn save(&self) -> Result<()> {
        const OP: &str = "tuning cache";
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| invalid(OP, format!("cannot create {}: {e}", dir.display())))?;
        }
        // Write a sibling and rename it, so a crash never leaves half a file behind.
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, tune_cache::write(CACHE_VERSION, &entries))
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| invalid(OP, format!("cannot write {}: {e}", self.path.display())))
    }
}

fn parse_cache(text: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    let tune_cache::Document { version, entries } = tune_cache::read(text)?;
    if version != Some(CACHE_VERSION) {
        let found = version.map_or_else(|| "none".to_string(), |v| v.to_string());
        return Err(format!("version {found}, expected {CACHE_VERSION}"));
    }
    let entries = entries.ok_or("no \"entries\" object")?;
    if let Some((k, v)) = entries
        .iter()
        .find(|(_, v)| ConvVariant::from_name(v).is_none())
    {
        return Err(format!("entry {k:?} names no known variant: {v:?}"));
    }
    Ok(entries)
}

/// The cache key of one pass of `g` on `gpu`: everything that can change which variant wins.
pub fn cache_key(gpu: &Gpu, pass: ConvPass, g: &Conv2dGeometry) -> String {
    let info = gpu.adapter_info();
    let axis = |a: &crate::params::AxisGeometry| {
        format!(
            "{}k{}s{}d{}p{}-{}",
            a.input, a.kernel, a.stride, a.dilation, a.pad_before, a.pad_after
        )
    };
    format!(
        "{}|{}|{}|n{} c{}->{} g{} h{} w{} {:?}{}",
        info.name,
        info.driver_info,
        pass.name(),
        g.batch,
        g.in_channels,
        g.out_channels,
        g.groups,
        axis(&g.h),
        axis(&g.w),
        g.layout,
        if g.flip { " flip" } else { "" }
    )
}

/// The parameters that give geometry `g`.
fn params_of(g: &Conv2dGeometry) -> Conv2dParams {
    Conv2dParams::default()
        .with_stride_hw(g.h.stride, g.w.stride)
        .with_dilation_hw(g.h.dilation, g.w.dilation)
        .with_padding(Padding::explicit(
            g.h.pad_before,
            g.h.pad_after,
            g.w.pad_before,
            g.w.pad_after,
        ))
        .with_groups(g.groups)
        .with_layout(g.layout)
        .with_flip(g.flip)
}

/// Seconds one run of `variant` takes for one pass of `g` (after a warm-up run that builds the
/// kernels), on zero-filled tensors of the pass's shapes.
fn time_variant(
    gpu: &Gpu,
    variant: ConvVariant,
    pass: ConvPass,
    g: &Conv2dGeometry,
) -> Result<f64> {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            TIMING.with(|t| t.set(None));
        }
    }
    TIMING.with(|t| t.set(Some(variant)));
    let _reset = Reset;
    let zeros = |shape: [usize; 4]| {
        GpuTensor::upload_with_layout(gpu, Array4::zeros(shape).view(), g.layout)
    };
    let params = params_of(g);
    let x = zeros(g.input_shape())?;
    let w = zeros(g.weight_shape())?;
    let dy = zeros(g.output_shape())?;
    let run = || -> Result<()> {
        let _out = match pass {
            ConvPass::Forward => crate::gpu::conv2d(&x, &w, None, &params)?,
            ConvPass::InputGrad => {
                crate::gpu::conv2d_backward_input(g.input_shape(), &w, &dy, &params)?
            }
            ConvPass::WeightGrad => {
                crate::gpu::conv2d_backward_weight(&x, g.weight_shape(), &dy, &params)?
            }
        };
        gpu.synchronize()
    };
    run()?;
    let start = Instant::now();
    run()?;
    Ok(start.elapsed().as_secs_f64())
}
