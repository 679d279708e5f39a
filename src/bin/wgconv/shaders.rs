//! `wgconv shaders`: every shader module written out exactly as the crate hands it to a compiler,
//! so that other compilers (Tint, through scripts/webgpu) can check what wgpu's naga accepts.

use std::path::{Path, PathBuf};

use clap::Args;
use wgconv::gpu::{shader_sources, ShaderTarget};

#[derive(Args)]
#[command(group = clap::ArgGroup::new("target").required(true).multiple(true))]
pub struct ShadersArgs {
    /// Write the modules as a browser's WebGPU gets them (with `enable subgroups;` where needed).
    #[arg(long, value_name = "DIR", group = "target")]
    webgpu: Option<PathBuf>,
    /// Write the modules as wgpu's native backends (through naga) get them.
    #[arg(long, value_name = "DIR", group = "target")]
    native: Option<PathBuf>,
}

pub fn run(args: &ShadersArgs) -> wgconv::Result<()> {
    for (target, dir) in [
        (ShaderTarget::WebGpu, &args.webgpu),
        (ShaderTarget::Native, &args.native),
    ] {
        if let Some(dir) = dir {
            write_all(target, dir)?;
        }
    }
    Ok(())
}

/// One file per module, `DIR/<name>.wgsl` (`conv2d/direct` becomes `DIR/conv2d/direct.wgsl`).
fn write_all(target: ShaderTarget, dir: &Path) -> wgconv::Result<()> {
    let io = |path: &Path, e: std::io::Error| wgconv::Error::InvalidArgument {
        op: "shaders",
        what: format!("{}: {e}", path.display()),
    };
    let sources = shader_sources(target);
    for (name, source) in &sources {
        let path = dir.join(format!("{name}.wgsl"));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(&path, source).map_err(|e| io(&path, e))?;
    }
    println!(
        "{} modules for {target:?} in {}",
        sources.len(),
        dir.display()
    );
    Ok(())
}
