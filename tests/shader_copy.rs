//! The shader copy the bench measures memory-bound kernels against: an exact copy, tails included.

mod common;

use common::Rng;
use wgconv::gpu::copy_through_shader;
use wgconv::{Error, GpuTensor};

#[test]
fn the_shader_copy_is_exact_for_every_tail() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(0xc0_9e);
    // 1 to 7 vec4s cover every tail of the 4-vec4 invocations; the last is many invocations.
    for len in [4, 8, 12, 16, 20, 24, 28, 4 * 1001] {
        let x = rng.array4([1, 1, 1, len]);
        let copy = copy_through_shader(&GpuTensor::upload(gpu, x.view()).unwrap()).unwrap();
        assert_eq!(copy.read().unwrap(), x, "{len} floats");
    }
}

#[test]
fn a_length_that_is_not_whole_vec4s_is_an_error() {
    let Some(gpu) = common::gpu() else { return };
    let x = ndarray::Array4::<f32>::zeros((1, 1, 1, 6));
    match copy_through_shader(&GpuTensor::upload(gpu, x.view()).unwrap()) {
        Err(Error::InvalidArgument { what, .. }) => assert!(what.contains("6 elements"), "{what}"),
        other => panic!("{other:?}"),
    }
}
