//! What the fuzz targets check, shared by cargo-fuzz (`fuzz_targets/`) and the stable-Rust test `tests/fuzz_inputs.rs`: any bytes, no panic.
//!
//! A panic here is a bug: either the code under test panicked, or it broke one of the
//! invariants asserted below.
// Each includer uses only some of the functions.
#![allow(dead_code)]

use wgconv::npy::{self, NpyArray};
use wgconv::{flags, Conv2dParams, ConvTranspose2dParams, Pool2dParams};

/// The `.npy` reader on arbitrary bytes: `Ok` or `Err`, and whatever it reads writes back to a
/// file that reads again to the same values (bit for bit, so NaN payloads count).
pub fn npy_bytes(data: &[u8]) {
    let Ok(array) = npy::parse(data) else {
        return;
    };
    let written = to_bytes(&array);
    let again = npy::parse(&written).expect("a file wgconv wrote must read back");
    assert_eq!(to_bytes(&again), written, "round trip changed the array");
}

/// The `.npz` reader on arbitrary bytes, asked for the seeds' member names and for the only
/// member: `Ok` or `Err`, and what it reads round-trips as `.npy` does.
pub fn npz_bytes(data: &[u8]) {
    for member in [None, Some("x"), Some("indices")] {
        let Ok(array) = npy::parse_npz(data, member) else {
            continue;
        };
        let written = to_bytes(&array);
        let again = npy::parse(&written).expect("a file wgconv wrote must read back");
        assert_eq!(to_bytes(&again), written, "round trip changed the array");
    }
}

fn to_bytes(array: &NpyArray) -> Vec<u8> {
    match array {
        NpyArray::F32(a) => npy::to_bytes_f32(a.view()),
        NpyArray::I64(a) => npy::to_bytes_i64(a.view()),
    }
}

/// The command line's flag parsers on arbitrary text, split at newlines into the flags of a
/// `wgconv run` call, and whatever parses fed on to parameter validation, as the tool does.
pub fn flag_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\n');
    let mut next = || fields.next().unwrap_or("");
    let stride = flags::pair("stride", next());
    let padding = flags::padding(next());
    let dilation = flags::pair("dilation", next());
    let input = flags::shape4("input-shape", next());
    let weight = flags::shape4("weight-shape", next());
    let layout = flags::layout(next());
    let kernel = flags::pair("kernel", next());
    let (Ok(stride), Ok(padding), Ok(dilation), Ok(input), Ok(weight), Ok(layout)) =
        (stride, padding, dilation, input, weight, layout)
    else {
        return;
    };
    let conv = Conv2dParams {
        stride,
        padding,
        dilation,
        layout,
        ..Conv2dParams::default()
    };
    if let Ok(g) = conv.geometry("fuzz", input, weight, None) {
        // A valid geometry's sizes are consistent and its reduction is countable.
        assert_eq!(g.output_shape().len(), 4);
        let _ = g.reduction_len();
        let _ = conv.backward_geometry("fuzz", input, weight, g.output_shape());
    }
    let transposed = ConvTranspose2dParams {
        stride,
        padding,
        dilation,
        output_padding: kernel.as_ref().copied().unwrap_or([0, 0]),
        layout,
        ..ConvTranspose2dParams::default()
    };
    let _ = transposed.geometry("fuzz", input, weight, None);
    if let Ok(kernel) = kernel {
        let pool = Pool2dParams {
            kernel,
            stride,
            padding: dilation,
            layout,
            ..Pool2dParams::new(1, 1)
        };
        if let Ok(g) = pool.geometry("fuzz", input) {
            let _ = g.index_range();
        }
    }
}
