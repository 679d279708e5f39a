//! The two CPU paths agree: f64 loops (the specification) against im2col + matrix product.

mod common;

use common::{random_case, Flavour, Rng};
use wgconv::{compare, cpu, ErrorBound};

#[test]
fn im2col_matches_loops_on_random_parameter_sets() {
    // The same seed and draws as the GPU sweep, so both cover the same parameter sets.
    let mut rng = Rng::new(0x5eed_0002);
    let mut checked = 0;
    for flavour in Flavour::ALL {
        for i in 0..24 {
            let case = random_case(&mut rng, flavour);
            let x = rng.array4(case.input);
            let w = rng.array4(case.weight);
            let b = case.bias.then(|| rng.array1(case.weight[0]));
            let b = b.as_ref().map(|b| b.view());
            let loops = cpu::conv2d(x.view(), w.view(), b, &case.params).unwrap();
            let im2col = cpu::conv2d_im2col(x.view(), w.view(), b, &case.params).unwrap();
            // im2col is an f32 matrix product: the sums in an order of its own.
            let bound = ErrorBound::conv2d(x.view(), w.view(), b, &case.params).unwrap();
            let report = compare(im2col.view(), loops.view(), &bound);
            assert!(report.passed(), "{flavour:?} case {i}: {case:?}\n{report}");
            checked += 1;
        }
    }
    assert_eq!(checked, 240);
}

/// A hand-computed case with padding, stride and dilation together, independent of both paths.
#[test]
fn loops_match_a_hand_computed_dilated_padded_case() {
    // 1x1x4x4 input 0..16, 2x2 kernel of ones, dilation 2, padding 1, stride 3.
    // Padded 6x6, effective kernel 3, out = floor((6 - 3)/3) + 1 = 2.
    let x =
        ndarray::Array::from_shape_vec((1, 1, 4, 4), (0..16).map(|v| v as f32).collect()).unwrap();
    let w = ndarray::Array4::<f32>::ones((1, 1, 2, 2));
    let p = wgconv::Conv2dParams::default()
        .with_stride(3)
        .with_dilation(2)
        .with_padding(wgconv::Padding::uniform(1));
    let y = cpu::conv2d(x.view(), w.view(), None, &p).unwrap();
    // Output (0,0) taps padded (0,0),(0,2),(2,0),(2,2) -> input (-1,-1),(-1,1),(1,-1),(1,1): only x[1,1] = 5.
    // Output (0,1) taps padded cols 3,5 -> input cols 2,4(out): rows -1,1 -> x[1,2] = 6.
    // Output (1,0) taps padded rows 3,5 -> input rows 2,4(out): x[2,1] = 9.
    // Output (1,1): x[2,2] = 10.
    assert_eq!(y, ndarray::array![[[[5.0f32, 6.0], [9.0, 10.0]]]]);
    let y2 = cpu::conv2d_im2col(x.view(), w.view(), None, &p).unwrap();
    assert_eq!(y2, y);
}
