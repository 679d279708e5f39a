//! Golden values from the public tutorials wgconv grew out of (numpy and TensorFlow notebooks on
//! convolution, not in this repository; docs/testing.md lists them), reproduced on the GPU and the
//! CPU.

mod common;

use ndarray::{array, s, Array, Array1, Array4};
use wgconv::{conv2d, cpu, Conv2dParams, GpuTensor, Padding};

/// Runs conv2d on the GPU.
fn gpu_conv(
    x: &Array4<f32>,
    w: &Array4<f32>,
    b: Option<&Array1<f32>>,
    p: &Conv2dParams,
) -> Option<Array4<f32>> {
    let gpu = common::gpu()?;
    let xt = GpuTensor::upload(gpu, x.view()).unwrap();
    let wt = GpuTensor::upload(gpu, w.view()).unwrap();
    let bt = b.map(|b| GpuTensor::upload_1d(gpu, b.view()).unwrap());
    Some(conv2d(&xt, &wt, bt.as_ref(), p).unwrap().read().unwrap())
}

/// numpy's `linspace(start, stop, num)`, computed in f64 as numpy does, then rounded to f32.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f32> {
    let step = (stop - start) / (num - 1) as f64;
    (0..num).map(|i| (start + step * i as f64) as f32).collect()
}

/// The CS231n 7x7x3 example (already zero-padded), given in NHWC/HWIO, two 3x3x3 filters,
/// bias [1, 0], stride 2, VALID. The tutorial's TensorFlow output is exact integers.
#[test]
fn cs231n_7x7x3_example_is_exact() {
    let planes = [
        "0 0 0 0 0 0 0;0 0 1 0 1 0 0;0 2 1 0 1 2 0;0 0 2 0 0 1 0;0 2 0 1 0 0 0;0 0 0 1 2 2 0;0 0 0 0 0 0 0",
        "0 0 0 0 0 0 0;0 1 0 0 1 1 0;0 0 2 2 1 1 0;0 2 1 2 1 0 0;0 2 1 1 2 2 0;0 1 2 0 2 2 0;0 0 0 0 0 0 0",
        "0 0 0 0 0 0 0;0 2 1 1 1 1 0;0 2 2 1 2 1 0;0 1 1 0 2 2 0;0 2 1 2 2 0 0;0 1 2 2 0 0 0;0 0 0 0 0 0 0",
    ];
    // x[:, :, c] = plane c, i.e. NCHW channel c.
    let mut x = Array4::<f32>::zeros((1, 3, 7, 7));
    for (c, text) in planes.iter().enumerate() {
        for (i, row) in text.split(';').enumerate() {
            for (j, v) in row.split_whitespace().enumerate() {
                x[[0, c, i, j]] = v.parse().unwrap();
            }
        }
    }
    // w[:, :, c_in, c_out] from the tutorial, written here as OIHW w[c_out, c_in].
    let filters = [
        [
            "0 0 1;-1 1 1;0 1 0",
            "1 1 1;0 1 1;0 1 0",
            "-1 0 0;-1 1 1;0 -1 0",
        ],
        [
            "0 0 0;1 1 -1;-1 1 1",
            "0 1 -1;1 1 -1;-1 1 -1",
            "1 1 0;-1 -1 0;0 -1 1",
        ],
    ];
    let mut w = Array4::<f32>::zeros((2, 3, 3, 3));
    for (o, per_in) in filters.iter().enumerate() {
        for (c, text) in per_in.iter().enumerate() {
            for (i, row) in text.split(';').enumerate() {
                for (j, v) in row.split_whitespace().enumerate() {
                    w[[o, c, i, j]] = v.parse().unwrap();
                }
            }
        }
    }
    let b = array![1.0f32, 0.0];
    let p = Conv2dParams::default().with_stride(2);
    let expected0 = array![[6.0f32, 4., 3.], [13., 7., 4.], [10., 9., 5.]];
    let expected1 = array![[-1.0f32, -3., 1.], [0., 6., 2.], [1., -3., 12.]];
    let mut results = vec![
        (
            "cpu loops",
            cpu::conv2d(x.view(), w.view(), Some(b.view()), &p).unwrap(),
        ),
        (
            "cpu im2col",
            cpu::conv2d_im2col(x.view(), w.view(), Some(b.view()), &p).unwrap(),
        ),
    ];
    if let Some(y) = gpu_conv(&x, &w, Some(&b), &p) {
        results.push(("gpu", y));
    }
    for (path, y) in results {
        assert_eq!(y.dim(), (1, 2, 3, 3), "{path}");
        assert_eq!(y.slice(s![0, 0, .., ..]), expected0, "{path}");
        assert_eq!(y.slice(s![0, 1, .., ..]), expected1, "{path}");
    }
}

/// The numpy conv forward/backward loops tutorial: linspace input (2,3,4,4), weights (3,3,4,4),
/// bias linspace(-0.1, 0.2, 3), stride 2, pad 1; the printed output to 1e-6.
#[test]
fn numpy_loops_linspace_example_matches_printed_output() {
    let x = Array::from_shape_vec((2, 3, 4, 4), linspace(-0.1, 0.5, 96)).unwrap();
    let w = Array::from_shape_vec((3, 3, 4, 4), linspace(-0.2, 0.3, 144)).unwrap();
    let b = Array1::from(linspace(-0.1, 0.2, 3));
    let p = Conv2dParams::default()
        .with_stride(2)
        .with_padding(Padding::uniform(1));
    let expected = array![
        [
            [[-0.08759809f64, -0.10987781], [-0.18387192, -0.2109216]],
            [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
            [[0.50813986, 0.54309974], [0.64082444, 0.67101435]],
        ],
        [
            [[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
            [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
            [[2.36270298, 2.36904306], [2.38090835, 2.38247847]],
        ],
    ];
    let mut results = vec![
        (
            "cpu loops",
            cpu::conv2d(x.view(), w.view(), Some(b.view()), &p).unwrap(),
        ),
        (
            "cpu im2col",
            cpu::conv2d_im2col(x.view(), w.view(), Some(b.view()), &p).unwrap(),
        ),
    ];
    if let Some(y) = gpu_conv(&x, &w, Some(&b), &p) {
        results.push(("gpu", y));
    }
    for (path, y) in results {
        assert_eq!(y.dim(), (2, 3, 2, 2), "{path}");
        for (got, want) in y.iter().zip(expected.iter()) {
            assert!(
                (f64::from(*got) - want).abs() <= 1e-6,
                "{path}: got {got}, printed {want}"
            );
        }
    }
}

/// The numpy loops tutorial's 6x6 step image with the 3x3 Sobel-like horizontal-edge kernel,
/// VALID: rows of 0 and 40 (cross-correlation; scipy's true convolution would give -40).
#[test]
fn step_image_with_sobel_kernel_gives_rows_of_0_and_40() {
    let mut x = Array4::<f32>::zeros((1, 1, 6, 6));
    x.slice_mut(s![0, 0, 0..3, ..]).fill(10.0);
    let w = array![[1.0f32, 2., 1.], [0., 0., 0.], [-1., -2., -1.]]
        .into_shape_with_order((1, 1, 3, 3))
        .unwrap();
    let p = Conv2dParams::default();
    let expected = array![
        [0.0f32, 0., 0., 0.],
        [40., 40., 40., 40.],
        [40., 40., 40., 40.],
        [0., 0., 0., 0.]
    ];
    let mut results = vec![(
        "cpu loops",
        cpu::conv2d(x.view(), w.view(), None, &p).unwrap(),
    )];
    if let Some(y) = gpu_conv(&x, &w, None, &p) {
        results.push(("gpu", y));
    }
    for (path, y) in results {
        assert_eq!(y.slice(s![0, 0, .., ..]), expected, "{path}");
    }
}

/// The input-volume tutorial: an 11x11 input with 4 channels (NHWC there), one 5x5 filter,
/// stride 2, no padding gives a 4x4 map (`(W - F + 2P)/S + 1 = (11 - 5)/2 + 1 = 4`), whose
/// values agree with the reference.
#[test]
fn eleven_by_eleven_by_four_stride_two_gives_four_by_four() {
    let mut rng = common::Rng::new(0);
    let x = rng.array4([1, 4, 11, 11]);
    let w = rng.array4([1, 4, 5, 5]);
    let p = Conv2dParams::default().with_stride(2);
    let reference = cpu::conv2d(x.view(), w.view(), None, &p).unwrap();
    assert_eq!(reference.dim(), (1, 1, 4, 4));
    // One window written out by hand: output (1, 2) covers rows 2..7 and columns 4..9.
    let by_hand: f64 = (0..4)
        .flat_map(|c| (0..5).flat_map(move |i| (0..5).map(move |j| (c, i, j))))
        .map(|(c, i, j)| f64::from(x[[0, c, 2 + i, 4 + j]]) * f64::from(w[[0, c, i, j]]))
        .sum();
    assert!((f64::from(reference[[0, 0, 1, 2]]) - by_hand).abs() < 1e-6);
    if let Some(y) = gpu_conv(&x, &w, None, &p) {
        assert_eq!(y.dim(), (1, 1, 4, 4));
        let bound = wgconv::ErrorBound::conv2d(x.view(), w.view(), None, &p).unwrap();
        let c = wgconv::compare(y.view(), reference.view(), &bound);
        assert!(c.passed(), "{c}");
    }
}
