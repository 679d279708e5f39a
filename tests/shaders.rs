//! Every `.wgsl` file parses and validates with naga, has the entry points the host dispatches,
//! and declares uniform structs laid out exactly like their Rust twins.

use std::path::Path;

use wgconv::gpu::pipelines::{Kernel, Shader};
use wgconv::gpu::uniforms::{
    ActivationUniforms, Conv2dUniforms, CopyUniforms, GemmConvUniforms, Pool2dUniforms,
};

fn parse_and_validate(source: &str, file: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(source)));
    // A file may use subgroup operations only if the host requests SUBGROUP before building
    // it; every other file must validate with no optional capability at all.
    let needs_subgroups = Shader::ALL
        .iter()
        .any(|s| s.file_name() == file && s.required_features().contains(wgpu::Features::SUBGROUP));
    let capabilities = if needs_subgroups {
        naga::valid::Capabilities::SUBGROUP
    } else {
        naga::valid::Capabilities::default()
    };
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(source)));
    (module, info)
}

#[test]
fn every_wgsl_file_validates_and_is_known_to_the_host() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut known: Vec<String> = Shader::ALL
        .iter()
        .map(|s| s.file_name().to_string())
        .collect();
    known.sort();
    assert_eq!(files, known, "shaders/ and Shader::ALL disagree");
    for file in &files {
        let on_disk = std::fs::read_to_string(dir.join(file)).unwrap();
        parse_and_validate(&on_disk, file);
    }
    // The compiled-in sources are the files on disk.
    for shader in Shader::ALL {
        let on_disk = std::fs::read_to_string(dir.join(shader.file_name())).unwrap();
        assert_eq!(shader.source(), on_disk);
    }
}

#[test]
fn every_kernel_entry_point_exists_with_the_host_workgroup_size() {
    for kernel in Kernel::ALL {
        let shader = kernel.shader();
        let (module, _) = parse_and_validate(shader.source(), shader.file_name());
        let entry = module
            .entry_points
            .iter()
            .find(|e| e.name == kernel.entry_point())
            .unwrap_or_else(|| {
                panic!(
                    "{} has no entry point {}",
                    shader.file_name(),
                    kernel.entry_point()
                )
            });
        assert_eq!(entry.stage, naga::ShaderStage::Compute);
        assert_eq!(
            entry.workgroup_size,
            [kernel.workgroup_size(), 1, 1],
            "{}",
            kernel.entry_point()
        );
    }
}

/// Field names, offsets and total size of a WGSL struct.
fn wgsl_struct(module: &naga::Module, name: &str) -> (Vec<(String, usize)>, usize) {
    let ty = module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no struct {name}"))
        .1;
    match &ty.inner {
        naga::TypeInner::Struct { members, span } => (
            members
                .iter()
                .map(|m| (m.name.clone().unwrap(), m.offset as usize))
                .collect(),
            *span as usize,
        ),
        other => panic!("{name} is not a struct: {other:?}"),
    }
}

fn assert_mirrors(shader: Shader, name: &str, fields: &[(&str, usize)], size: usize) {
    let (module, _) = parse_and_validate(shader.source(), shader.file_name());
    let (wgsl_fields, wgsl_size) = wgsl_struct(&module, name);
    let rust_fields: Vec<(String, usize)> =
        fields.iter().map(|(n, o)| (n.to_string(), *o)).collect();
    assert_eq!(
        wgsl_fields, rust_fields,
        "{name}: field names or offsets differ"
    );
    assert_eq!(wgsl_size, size, "{name}: sizes differ");
    assert_eq!(
        size % 16,
        0,
        "{name}: uniform buffers need a size that is a multiple of 16"
    );
}

#[test]
fn uniform_structs_mirror_their_rust_twins() {
    // Three files declare the GEMM uniforms; WGSL has no includes, so each copy is checked.
    for shader in [
        Shader::Conv2dSubgroup,
        Shader::Conv2dPack,
        Shader::Conv2dPacked,
    ] {
        assert_mirrors(
            shader,
            GemmConvUniforms::WGSL_NAME,
            GemmConvUniforms::FIELDS,
            std::mem::size_of::<GemmConvUniforms>(),
        );
    }
    assert_mirrors(
        Shader::Conv2d,
        Conv2dUniforms::WGSL_NAME,
        Conv2dUniforms::FIELDS,
        std::mem::size_of::<Conv2dUniforms>(),
    );
    assert_mirrors(
        Shader::MaxPool2d,
        Pool2dUniforms::WGSL_NAME,
        Pool2dUniforms::FIELDS,
        std::mem::size_of::<Pool2dUniforms>(),
    );
    assert_mirrors(
        Shader::Activation,
        ActivationUniforms::WGSL_NAME,
        ActivationUniforms::FIELDS,
        std::mem::size_of::<ActivationUniforms>(),
    );
    assert_mirrors(
        Shader::Copy,
        CopyUniforms::WGSL_NAME,
        CopyUniforms::FIELDS,
        std::mem::size_of::<CopyUniforms>(),
    );
}

/// A file that declares SUBGROUP really needs it (else the planner would withhold kernels from
/// devices that could run them); files that don't are checked without it by every test above.
#[test]
fn files_that_require_subgroups_need_them() {
    for shader in Shader::ALL {
        if !shader
            .required_features()
            .contains(wgpu::Features::SUBGROUP)
        {
            continue;
        }
        let module = naga::front::wgsl::parse_str(shader.source()).unwrap();
        let without = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        )
        .validate(&module);
        assert!(
            without.is_err(),
            "{} validates without SUBGROUP: drop its required feature",
            shader.file_name()
        );
    }
}

#[test]
fn packed_textures_have_the_host_width_in_every_shader_that_indexes_them() {
    let shift = wgconv::gpu::pipelines::PACKED_TEXTURE_WIDTH.trailing_zeros();
    assert_eq!(
        1usize << shift,
        wgconv::gpu::pipelines::PACKED_TEXTURE_WIDTH
    );
    for shader in [Shader::Conv2dPack, Shader::Conv2dPacked] {
        let (module, _) = parse_and_validate(shader.source(), shader.file_name());
        let (_, constant) = module
            .constants
            .iter()
            .find(|(_, c)| c.name.as_deref() == Some("TEXTURE_SHIFT"))
            .unwrap_or_else(|| panic!("{} declares TEXTURE_SHIFT", shader.file_name()));
        match module.global_expressions[constant.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => {
                assert_eq!(v, shift, "{}", shader.file_name())
            }
            ref other => panic!("{}: TEXTURE_SHIFT is {other:?}", shader.file_name()),
        }
    }
}
