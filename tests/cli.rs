//! The `wgconv` command line: each subcommand on small inputs, .npy and .npz round trips, error paths.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ndarray::{array, Array4, ArrayD, IxDyn};
use wgconv::npy::{self, NpyArray};
use wgconv::{cpu, Conv2dParams, GradSelection, Layout, Padding, Pool2dParams};

fn wgconv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgconv"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A folder of its own for one test, removed when the test ends (passing or not), so that
/// runs of the suite leave nothing behind in the temp dir.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("wgconv-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

fn save(path: &Path, a: &Array4<f32>) -> String {
    npy::write_atomically(path, &npy::to_bytes_f32(a.view().into_dyn())).unwrap();
    path.to_str().unwrap().to_string()
}

fn load_f32(path: &Path) -> ArrayD<f32> {
    match npy::read(path).unwrap() {
        NpyArray::F32(a) => a,
        NpyArray::I64(_) => panic!("expected float32"),
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The devices a run test covers: the CPU always, the GPU when there is an adapter.
fn devices() -> Vec<&'static str> {
    let mut d = vec!["--cpu"];
    if common::gpu().is_some() {
        d.push("--gpu");
    }
    d
}

#[test]
fn run_conv2d_reproduces_cs231n_7x7x3_in_nhwc() {
    let dir = scratch("cs231n");
    let mut x = Array4::<f32>::zeros((1, 7, 7, 3));
    let planes = [
        [
            [0, 1, 0, 1, 0],
            [2, 1, 0, 1, 2],
            [0, 2, 0, 0, 1],
            [2, 0, 1, 0, 0],
            [0, 0, 1, 2, 2],
        ],
        [
            [1, 0, 0, 1, 1],
            [0, 2, 2, 1, 1],
            [2, 1, 2, 1, 0],
            [2, 1, 1, 2, 2],
            [1, 2, 0, 2, 2],
        ],
        [
            [2, 1, 1, 1, 1],
            [2, 2, 1, 2, 1],
            [1, 1, 0, 2, 2],
            [2, 1, 2, 2, 0],
            [1, 2, 2, 0, 0],
        ],
    ];
    for (c, plane) in planes.iter().enumerate() {
        for (i, row) in plane.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                x[[0, i + 1, j + 1, c]] = v as f32;
            }
        }
    }
    let w_oihw = array![
        [
            [[0., 0., 1.], [-1., 1., 1.], [0., 1., 0.]],
            [[1., 1., 1.], [0., 1., 1.], [0., 1., 0.]],
            [[-1., 0., 0.], [-1., 1., 1.], [0., -1., 0.]]
        ],
        [
            [[0., 0., 0.], [1., 1., -1.], [-1., 1., 1.]],
            [[0., 1., -1.], [1., 1., -1.], [-1., 1., -1.]],
            [[1., 1., 0.], [-1., -1., 0.], [0., -1., 1.]]
        ]
    ];
    let w = w_oihw
        .view()
        .permuted_axes([2, 3, 1, 0])
        .as_standard_layout()
        .into_owned();
    let (xp, wp, bp) = (dir.join("x.npy"), dir.join("w.npy"), dir.join("b.npy"));
    save(&xp, &x);
    save(&wp, &w);
    npy::write_atomically(
        &bp,
        &npy::to_bytes_f32(array![1.0f32, 0.0].into_dyn().view()),
    )
    .unwrap();
    for device in devices() {
        let out = dir.join(format!("y{device}.npy"));
        let o = wgconv(&[
            "run",
            "conv2d",
            device,
            "--input",
            xp.to_str().unwrap(),
            "--weight",
            wp.to_str().unwrap(),
            "--bias",
            bp.to_str().unwrap(),
            "--stride",
            "2",
            "--padding",
            "valid",
            "--layout",
            "nhwc",
            "--output",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{device}: {}", stderr(&o));
        let y = load_f32(&out);
        assert_eq!(y.shape(), &[1, 3, 3, 2]);
        let o0: Vec<f32> = (0..9).map(|i| y[[0, i / 3, i % 3, 0]]).collect();
        let o1: Vec<f32> = (0..9).map(|i| y[[0, i / 3, i % 3, 1]]).collect();
        assert_eq!(o0, vec![6., 4., 3., 13., 7., 4., 10., 9., 5.], "{device}");
        assert_eq!(o1, vec![-1., -3., 1., 0., 6., 2., 1., -3., 12.], "{device}");
    }
    // The same outputs as TensorFlow printed them, checked as a reference produced elsewhere:
    // `run --expect` and `compare` pass on them, and fail naming the element one entry off.
    let mut tf = Array4::<f32>::zeros((1, 3, 3, 2));
    let printed = [
        [6., 4., 3., 13., 7., 4., 10., 9., 5.],
        [-1., -3., 1., 0., 6., 2., 1., -3., 12.],
    ];
    for (c, values) in printed.iter().enumerate() {
        for (i, &v) in values.iter().enumerate() {
            tf[[0, i / 3, i % 3, c]] = v;
        }
    }
    let mut tf_off = tf.clone();
    tf_off[[0, 1, 1, 1]] += 1e-3;
    let (tfp, offp) = (dir.join("tf.npy"), dir.join("tf_off.npy"));
    save(&tfp, &tf);
    save(&offp, &tf_off);
    let op_flags = [
        "--input",
        xp.to_str().unwrap(),
        "--weight",
        wp.to_str().unwrap(),
        "--bias",
        bp.to_str().unwrap(),
        "--stride",
        "2",
        "--padding",
        "valid",
        "--layout",
        "nhwc",
    ];
    let out = dir.join("y-expect.npy");
    for (reference, passes) in [(&tfp, true), (&offp, false)] {
        let device = *devices().last().expect("the CPU at least");
        let mut run = vec!["run", "conv2d", device, "--output", out.to_str().unwrap()];
        run.extend(op_flags);
        run.extend(["--expect", reference.to_str().unwrap()]);
        let got = dir.join("y--cpu.npy");
        let mut compare = vec![
            "compare",
            got.to_str().unwrap(),
            reference.to_str().unwrap(),
        ];
        compare.extend(["--op", "conv2d"]);
        compare.extend(op_flags);
        for args in [run, compare] {
            let o = wgconv(&args);
            let stdout = String::from_utf8_lossy(&o.stdout).to_string();
            if passes {
                assert!(o.status.success(), "{args:?}: {}{stdout}", stderr(&o));
                assert!(stdout.contains("PASS"), "{stdout}");
            } else {
                assert_eq!(o.status.code(), Some(1), "{args:?}: {}{stdout}", stderr(&o));
                assert!(stdout.contains("MISMATCH"), "{stdout}");
                assert!(stdout.contains("[0, 1, 1, 1]"), "{stdout}");
            }
        }
    }
}

#[test]
fn run_backward_transpose_and_pooling_match_the_library() {
    let dir = scratch("ops");
    let mut rng = common::Rng::new(71);
    let p = Conv2dParams::default()
        .with_stride(2)
        .with_padding(Padding::uniform(1))
        .with_groups(2);
    let x = rng.array4([2, 4, 9, 9]);
    let w = rng.array4([6, 2, 3, 3]);
    let dy = rng.array4([2, 6, 5, 5]);
    let (xp, wp, dyp) = (
        save(&dir.join("x.npy"), &x),
        save(&dir.join("w.npy"), &w),
        save(&dir.join("dy.npy"), &dy),
    );
    let want = cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL).unwrap();
    let bounds =
        wgconv::ErrorBound::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL)
            .unwrap();
    let bound_dx = bounds.input.unwrap().into_dyn();
    let bound_dw = bounds.weight.unwrap().into_dyn();
    let bound_db = bounds.bias.unwrap().into_dyn();
    for device in devices() {
        let (dx, dw, db) = (dir.join("dx.npy"), dir.join("dw.npy"), dir.join("db.npy"));
        let o = wgconv(&[
            "run",
            "conv2d-backward",
            device,
            "--input",
            &xp,
            "--weight",
            &wp,
            "--grad-output",
            &dyp,
            "--stride",
            "2",
            "--padding",
            "1",
            "--groups",
            "2",
            "--grad-input",
            dx.to_str().unwrap(),
            "--grad-weight",
            dw.to_str().unwrap(),
            "--grad-bias",
            db.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{device}: {}", stderr(&o));
        assert!(wgconv::compare(
            load_f32(&dx).view(),
            want.input.as_ref().unwrap().view().into_dyn(),
            &bound_dx
        )
        .passed());
        assert!(wgconv::compare(
            load_f32(&dw).view(),
            want.weight.as_ref().unwrap().view().into_dyn(),
            &bound_dw
        )
        .passed());
        assert!(wgconv::compare(
            load_f32(&db).view(),
            want.bias.as_ref().unwrap().view().into_dyn(),
            &bound_db
        )
        .passed());
        // The bias gradient is judged from grad_output alone: against the CPU's, and against
        // a reference off by 1 in one element.
        let db_cpu = dir.join("db_cpu.npy");
        let db_off = dir.join("db_off.npy");
        let mut off = want.bias.clone().unwrap();
        npy::write_atomically(&db_cpu, &npy::to_bytes_f32(off.view().into_dyn())).unwrap();
        off[0] += 1.0;
        npy::write_atomically(&db_off, &npy::to_bytes_f32(off.view().into_dyn())).unwrap();
        for (reference, code) in [(&db_cpu, 0), (&db_off, 1)] {
            let o = wgconv(&[
                "compare",
                db.to_str().unwrap(),
                reference.to_str().unwrap(),
                "--op",
                "conv2d-backward",
                "--gradient",
                "bias",
                "--grad-output",
                &dyp,
            ]);
            assert_eq!(o.status.code(), Some(code), "{device}: {}", stderr(&o));
        }

        // conv-transpose2d of dy with the same weights is the input gradient (plus no bias).
        let t = dir.join("t.npy");
        let o = wgconv(&[
            "run",
            "conv-transpose2d",
            device,
            "--input",
            &dyp,
            "--weight",
            &wp,
            "--stride",
            "2",
            "--padding",
            "1",
            "--groups",
            "2",
            "--output-padding",
            "0",
            "--output",
            t.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{device}: {}", stderr(&o));
        // The same sums as dx: its bound.
        assert!(wgconv::compare(
            load_f32(&t).view(),
            want.input.as_ref().unwrap().view().into_dyn(),
            &bound_dx
        )
        .passed());

        // Pooling, forward with int64 indices, then backward through them.
        let pool = Pool2dParams::new(3, 3)
            .with_stride(2)
            .with_padding(1)
            .with_ceil_mode(true);
        let (values, indices) = cpu::max_pool2d_with_indices(x.view(), &pool).unwrap();
        let (y, i) = (dir.join("pool.npy"), dir.join("idx.npy"));
        let o = wgconv(&[
            "run",
            "max-pool2d",
            device,
            "--input",
            &xp,
            "--kernel",
            "3",
            "--stride",
            "2",
            "--padding",
            "1",
            "--ceil-mode",
            "--output",
            y.to_str().unwrap(),
            "--indices",
            i.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{device}: {}", stderr(&o));
        assert_eq!(load_f32(&y), values.clone().into_dyn());
        let NpyArray::I64(read_indices) = npy::read(&i).unwrap() else {
            panic!("indices must be int64")
        };
        assert_eq!(read_indices, indices.clone().into_dyn());
        let pdy = save(&dir.join("pdy.npy"), &values.mapv(|v| v * 0.5));
        let pdx = dir.join("pdx.npy");
        let o = wgconv(&[
            "run",
            "max-pool2d-backward",
            device,
            "--grad-output",
            &pdy,
            "--indices",
            i.to_str().unwrap(),
            "--input-shape",
            "2,4,9,9",
            "--kernel",
            "3",
            "--stride",
            "2",
            "--padding",
            "1",
            "--ceil-mode",
            "--output",
            pdx.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{device}: {}", stderr(&o));
        let want_pdx = cpu::max_pool2d_backward(
            values.mapv(|v| v * 0.5).view(),
            indices.view(),
            [2, 4, 9, 9],
            &pool,
        )
        .unwrap();
        let bound = wgconv::ErrorBound::max_pool2d_backward(
            values.mapv(|v| v * 0.5).view(),
            indices.view(),
            [2, 4, 9, 9],
            &pool,
        )
        .unwrap()
        .into_dyn();
        assert!(
            wgconv::compare(load_f32(&pdx).view(), want_pdx.view().into_dyn(), &bound).passed()
        );
    }
    let _ = Layout::Nchw;
}

#[test]
fn bad_inputs_are_one_line_errors_with_exit_code_2_and_no_output() {
    let dir = scratch("errors");
    let x = save(&dir.join("x.npy"), &Array4::<f32>::ones((1, 1, 4, 4)));
    let w = save(&dir.join("w.npy"), &Array4::<f32>::ones((1, 1, 5, 5)));
    let garbage = dir.join("garbage.npy");
    std::fs::write(&garbage, b"this is not numpy").unwrap();
    let ints = dir.join("ints.npy");
    npy::write_atomically(
        &ints,
        &npy::to_bytes_i64(ArrayD::from_elem(IxDyn(&[1, 1, 4, 4]), 1i64).view()),
    )
    .unwrap();
    let three_d = dir.join("3d.npy");
    npy::write_atomically(
        &three_d,
        &npy::to_bytes_f32(ArrayD::from_elem(IxDyn(&[1, 4, 4]), 1.0f32).view()),
    )
    .unwrap();
    let out = dir.join("out.npy");
    let o = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "run",
                "conv2d",
                "--cpu",
                "--input",
                garbage.to_str().unwrap(),
                "--weight",
                &w,
                "--output",
                o,
            ],
            "magic",
        ),
        (
            vec![
                "run",
                "conv2d",
                "--cpu",
                "--input",
                ints.to_str().unwrap(),
                "--weight",
                &w,
                "--output",
                o,
            ],
            "must be float32, found int64",
        ),
        (
            vec![
                "run",
                "conv2d",
                "--cpu",
                "--input",
                three_d.to_str().unwrap(),
                "--weight",
                &w,
                "--output",
                o,
            ],
            "must have 4 dimensions",
        ),
        (
            vec![
                "run", "conv2d", "--cpu", "--input", &x, "--weight", &w, "--output", o,
            ],
            "effective kernel height 5",
        ),
        (
            vec![
                "run", "conv2d", "--cpu", "--input", &x, "--weight", &w, "--stride", "1,2,3",
                "--output", o,
            ],
            "expected 1 or 2 values",
        ),
        (
            vec!["run", "conv2d", "--cpu", "--input", &x, "--output", o],
            "--weight is required",
        ),
        (
            vec!["run", "conv2d", "--cpu", "--bogus-flag"],
            "--bogus-flag",
        ),
        (vec!["run", "not-an-op"], "not-an-op"),
        // The parser's own errors keep what they name on their one line.
        (vec!["run"], "not provided: <OP>"),
        (
            vec!["bench", "--suite", "foo"],
            "[possible values: resnet50, vgg, mobilenet, pool, smoke]",
        ),
        (
            vec!["run", "conv2d", "--strde", "2"],
            "a similar argument exists: '--stride'",
        ),
        (vec!["bench", "--repeat", "0"], "must be at least 1"),
        (vec!["check", "--cases", "0"], "must be at least 1"),
    ];
    for (args, needle) in cases {
        let result = wgconv(&args);
        let err = stderr(&result);
        assert_eq!(result.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
        assert!(
            err.starts_with("wgconv: ") && err.contains(needle),
            "{args:?}: {err}"
        );
        assert!(!out.exists(), "{args:?} left an output file");
    }
    // Nothing temporary is left behind either.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// An op's outputs are written together or not at all: a later output that cannot be written
/// (its folder missing) leaves no earlier one behind, and an existing file at an earlier
/// output's path is left as it was; two outputs at one path, and flags the op does not read,
/// are refused before any work.
#[test]
fn outputs_are_written_all_or_none_and_flags_must_apply() {
    let dir = scratch("all-or-none");
    let x = save(&dir.join("x.npy"), &Array4::<f32>::ones((1, 1, 4, 4)));
    let w = save(&dir.join("w.npy"), &Array4::<f32>::ones((2, 1, 3, 3)));
    let dy = save(&dir.join("dy.npy"), &Array4::<f32>::ones((1, 2, 2, 2)));
    let values = dir.join("values.npy");
    let earlier = save(&values, &Array4::<f32>::from_elem((1, 1, 1, 1), 7.0));
    let missing = dir.join("no-such-folder").join("i.npy");
    let gi = dir.join("gi.npy");
    let same = dir.join("same.npy");
    let same_spelled_otherwise = dir.join(".").join("same.npy");
    let (gi, same) = (gi.to_str().unwrap(), same.to_str().unwrap());
    let max_pool = ["run", "max-pool2d", "--input", &x, "--kernel", "2"];
    let backward = [
        "run",
        "conv2d-backward",
        "--input",
        &x,
        "--weight",
        &w,
        "--grad-output",
        &dy,
    ];
    let conv = ["run", "conv2d", "--input", &x, "--weight", &w];
    let missing = missing.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            [&max_pool[..], &["--output", &earlier, "--indices", missing]].concat(),
            "cannot write",
        ),
        (
            [
                &backward[..],
                &["--grad-input", gi, "--grad-weight", missing],
            ]
            .concat(),
            "cannot write",
        ),
        (
            [
                &max_pool[..],
                &[
                    "--output",
                    same,
                    "--indices",
                    same_spelled_otherwise.to_str().unwrap(),
                ],
            ]
            .concat(),
            "--output and --indices both name",
        ),
        (
            [&backward[..], &["--grad-input", same, "--grad-bias", same]].concat(),
            "--grad-input and --grad-bias both name",
        ),
        (
            [&conv[..], &["--kernel", "9", "--output", same]].concat(),
            "--kernel does not apply to conv2d",
        ),
        (
            [&conv[..], &["--indices", gi, "--output", same]].concat(),
            "--indices does not apply to conv2d",
        ),
        (
            [&max_pool[..], &["--groups", "5", "--output", same]].concat(),
            "--groups does not apply to max-pool2d",
        ),
        (
            [&backward[..], &["--bias", &x, "--grad-input", same]].concat(),
            "--bias does not apply to conv2d-backward",
        ),
        (
            vec!["compare", &x, &x, "--op", "max-pool2d", "--output", &x],
            "--output does not apply to max-pool2d",
        ),
    ];
    for device in devices() {
        for (args, needle) in &cases {
            let mut args = args.clone();
            args.insert(2, device);
            if args[0] == "compare" {
                args.remove(2);
            }
            let result = wgconv(&args);
            let err = stderr(&result);
            assert_eq!(result.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(needle), "{args:?}: {err}");
            assert!(!Path::new(gi).exists(), "{args:?} left {gi:?}");
            assert!(!Path::new(same).exists(), "{args:?} left {same:?}");
            assert_eq!(
                load_f32(&values).into_raw_vec_and_offset().0,
                vec![7.0],
                "{args:?} replaced an existing output"
            );
            let leftovers: Vec<_> = std::fs::read_dir(&*dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n.to_string_lossy().contains(".tmp"))
                .collect();
            assert!(leftovers.is_empty(), "{args:?}: {leftovers:?}");
        }
    }
    // Outputs whose names differ only in their extension share no temporary file, and an
    // output that is an existing folder stops the run before any output is written.
    let (y, y_idx) = (dir.join("y.npy"), dir.join("y.idx"));
    let folder = dir.join("folder.npy");
    std::fs::create_dir(&folder).unwrap();
    let run = |indices: &Path| {
        wgconv(&[
            "run",
            "max-pool2d",
            "--cpu",
            "--input",
            &x,
            "--kernel",
            "2",
            "--output",
            y.to_str().unwrap(),
            "--indices",
            indices.to_str().unwrap(),
        ])
    };
    let result = run(&folder);
    assert_eq!(result.status.code(), Some(2), "{}", stderr(&result));
    assert!(
        stderr(&result).contains("it is a folder"),
        "{}",
        stderr(&result)
    );
    assert!(!y.exists());
    let result = run(&y_idx);
    assert!(result.status.success(), "{}", stderr(&result));
    assert_eq!(load_f32(&y).shape(), &[1, 1, 2, 2]);
    match npy::read(&y_idx).unwrap() {
        NpyArray::I64(i) => assert_eq!(i.shape(), &[1, 1, 2, 2]),
        NpyArray::F32(_) => panic!("the indices file holds the values"),
    }
    // compare refuses what its judgement would not read.
    let y = y.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["compare", y, y, "--op", "max-pool2d", "--kernel", "2"],
            "--kernel does not apply to max-pool2d without --input",
        ),
        (
            vec!["compare", y, y, "--op", "conv2d", "--gradient", "bias"],
            "--gradient applies to conv2d-backward, not to conv2d",
        ),
        (
            vec![
                "compare",
                y,
                y,
                "--op",
                "conv2d-backward",
                "--gradient",
                "bias",
                "--input",
                &x,
            ],
            "--input does not apply to conv2d-backward (it reads --grad-output)",
        ),
    ] {
        let result = wgconv(&args);
        let err = stderr(&result);
        assert_eq!(result.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // Max pooling's results compared from the files alone must still be pooling results.
    for (shape, needle) in [
        (&[1, 2, 0, 5][..], "shape [1, 2, 0, 5], with a dimension 0"),
        (
            &[2, 3, 5][..],
            "shape [2, 3, 5], but max pooling's results are 4-D",
        ),
    ] {
        let file = dir.join("not-pooled.npy");
        npy::write_atomically(
            &file,
            &npy::to_bytes_f32(ArrayD::from_elem(IxDyn(shape), 1.0f32).view()),
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let result = wgconv(&["compare", file, file, "--op", "max-pool2d"]);
        let err = stderr(&result);
        assert_eq!(result.status.code(), Some(2), "{err}");
        assert!(err.contains(needle), "{err}");
    }
    // Given the input and the window, they must be the pooling of that input.
    let pooled = save(&dir.join("pooled.npy"), &Array4::<f32>::ones((1, 1, 2, 2)));
    for (kernel, ok) in [("2", true), ("1", false)] {
        let result = wgconv(&[
            "compare",
            &pooled,
            &pooled,
            "--op",
            "max-pool2d",
            "--input",
            &x,
            "--kernel",
            kernel,
        ]);
        let err = stderr(&result);
        if ok {
            assert_eq!(result.status.code(), Some(0), "{err}");
        } else {
            assert_eq!(result.status.code(), Some(2), "{err}");
            assert!(
                err.contains("wgconv compare: the files have shape [1, 1, 2, 2], but max pooling this input gives [1, 1, 4, 4]"),
                "{err}"
            );
        }
    }
}

/// A variant or backend name in the environment that names none is an error saying so.
#[test]
fn unknown_names_in_the_environment_are_errors() {
    let dir = scratch("variant-env");
    let x = save(&dir.join("x.npy"), &Array4::<f32>::ones((1, 1, 4, 4)));
    let w = save(&dir.join("w.npy"), &Array4::<f32>::ones((1, 1, 3, 3)));
    let y = dir.join("y.npy");
    let y = y.to_str().unwrap();
    let cases: [(&str, Vec<&str>, &str); 2] = [
        (
            "WGCONV_CONV_VARIANT",
            vec![
                "run", "conv2d", "--input", &x, "--weight", &w, "--output", y,
            ],
            "WGCONV_CONV_VARIANT=\"packed\" names no conv2d kernel variant",
        ),
        (
            "WGCONV_POOL_VARIANT",
            vec![
                "run",
                "max-pool2d",
                "--input",
                &x,
                "--kernel",
                "2",
                "--output",
                y,
            ],
            "WGCONV_POOL_VARIANT=\"packed\" names no max-pooling kernel variant",
        ),
    ];
    // The variants' names are read by a GPU's planner; the backend's by any run.
    let cases = cases
        .into_iter()
        .filter(|_| common::gpu().is_some())
        .chain([(
            "WGPU_BACKEND",
            vec![
                "run", "conv2d", "--input", &x, "--weight", &w, "--output", y,
            ],
            "no GPU adapter: WGPU_BACKEND=\"packed\" names no backend",
        )]);
    for (variable, args, needle) in cases {
        let result = Command::new(env!("CARGO_BIN_EXE_wgconv"))
            .args(&args)
            .env(variable, "packed")
            .output()
            .unwrap();
        let err = stderr(&result);
        assert_eq!(result.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!Path::new(y).exists());
    }
}

/// A `.npz` as numpy's `savez` (stored, Zip64 entries) or `savez_compressed` (deflated) writes it.
fn save_npz(path: &Path, arrays: &[(&str, &Array4<f32>)], compressed: bool) {
    use std::io::Write;
    let method = if compressed {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .large_file(true);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, a) in arrays {
        zip.start_file(format!("{name}.npy"), options).unwrap();
        zip.write_all(&npy::to_bytes_f32(a.view().into_dyn()))
            .unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn run_reads_npz_members_and_writes_only_npy() {
    let dir = scratch("npz");
    let mut rng = common::Rng::new(72);
    let x = rng.array4([1, 2, 6, 6]);
    let w = rng.array4([3, 2, 3, 3]);
    let want = cpu::conv2d(x.view(), w.view(), None, &Conv2dParams::default()).unwrap();
    let (stored, deflated) = (dir.join("xw.npz"), dir.join("xw_compressed.npz"));
    save_npz(&stored, &[("x", &x), ("w", &w)], false);
    save_npz(&deflated, &[("x", &x), ("w", &w)], true);
    let single = dir.join("only_w.npz");
    save_npz(&single, &[("w", &w)], false);
    let y = dir.join("y.npy");
    for (input, weight) in [
        (
            format!("{}:x", stored.display()),
            format!("{}:w", stored.display()),
        ),
        (
            format!("{}:x", deflated.display()),
            single.display().to_string(),
        ),
    ] {
        let o = wgconv(&[
            "run",
            "conv2d",
            "--cpu",
            "--input",
            &input,
            "--weight",
            &weight,
            "--output",
            y.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{input} {weight}: {}", stderr(&o));
        assert_eq!(load_f32(&y), want.clone().into_dyn());
        std::fs::remove_file(&y).unwrap();
    }

    let xp = save(&dir.join("x.npy"), &x);
    // A .npy under a .npz name: read as the archive its name says it is.
    let fake = dir.join("fake.npz");
    std::fs::copy(&xp, &fake).unwrap();
    let out_npz = dir.join("y.npz");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--input".into(), format!("{}:nope", stored.display())],
            "no array \"nope\" in the archive (x, w)",
        ),
        (
            vec!["--input".into(), stored.display().to_string()],
            "holds 2 arrays (x, w); name one as FILE.npz:NAME",
        ),
        (
            vec!["--input".into(), format!("{}:x", fake.display())],
            "not a readable .npz",
        ),
    ];
    for (input, needle) in cases {
        let mut args: Vec<String> = ["run", "conv2d", "--cpu", "--weight"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(format!("{}:w", stored.display()));
        args.extend(input);
        args.extend(["--output".to_string(), y.display().to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = wgconv(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!y.exists(), "{args:?} left an output file");
    }
    let o = wgconv(&[
        "run",
        "conv2d",
        "--cpu",
        "--input",
        &xp,
        "--weight",
        &format!("{}:w", stored.display()),
        "--output",
        &format!("{}:y", out_npz.display()),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("outputs are written as .npy files"),
        "{}",
        stderr(&o)
    );
    assert!(!out_npz.exists());
}

#[test]
fn info_check_and_bench_run() {
    if common::gpu().is_none() {
        return;
    }
    let dir = scratch("subcommands");
    let o = wgconv(&["info"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("chosen:") && text.contains("max_storage_buffer_binding_size"),
        "{text}"
    );
    // The AVX-512 hint shows exactly for lavapipe's Vulkan driver at 256 bits on such a CPU.
    let chosen = text.lines().find(|l| l.starts_with("chosen:")).unwrap();
    #[cfg(target_arch = "x86_64")]
    let avx512 = std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    let avx512 = false;
    let wants_hint = avx512 && chosen.contains("256 bits") && chosen.contains("Vulkan");
    assert_eq!(
        text.contains("LP_NATIVE_VECTOR_WIDTH=512"),
        wants_hint,
        "{text}"
    );

    let json = dir.join("check.json");
    let o = wgconv(&[
        "check",
        "--op",
        "conv2d-backward-weight",
        "--cases",
        "6",
        "--seed",
        "9",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["ops"][0]["op"], "conv2d-backward-weight");
    assert_eq!(report["ops"][0]["cases"], 6);
    assert_eq!(report["ops"][0]["failures"], 0);

    let (json, svg) = (dir.join("bench.json"), dir.join("bench.svg"));
    let o = wgconv(&[
        "bench",
        "--suite",
        "smoke",
        "--repeat",
        "1",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 11, "3 conv layers x 3 ops + 1 pool layer x 2");
    assert!(rows
        .iter()
        .all(|r| r["wall_ms"].as_f64().unwrap() > 0.0 && r["cpu_ms"].as_f64().unwrap() > 0.0));
    // The pool serves every timed repeat: the warm-up call allocates, the repeats do not.
    assert!(
        rows.iter().all(|r| r["allocations_repeats"] == 0),
        "{rows:?}"
    );
    assert!(report["pool"]["reuses"].as_u64().unwrap() > 0);
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
}

#[test]
fn bench_explains_the_planner_and_forces_a_variant() {
    if common::gpu().is_none() {
        return;
    }
    let o = wgconv(&["bench", "--suite", "smoke", "--repeat", "1", "--explain"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("kernel variants on this device:"), "{text}");
    // A depthwise layer's passes take the depthwise kernels (its stride-2 dx reads
    // grad_output with zeros inserted), each with the reason.
    let mut lines = text
        .lines()
        .skip_while(|l| !(l.starts_with("dw 3x3 s2 32 32") && l.contains("forward")));
    let forward = lines
        .next()
        .unwrap_or_else(|| panic!("no depthwise line in\n{text}"));
    assert!(
        forward.contains("depthwise") && forward.contains("straight-line taps"),
        "{forward}"
    );
    let dx = lines.next().unwrap();
    assert!(dx.contains("dx") && dx.contains("depthwise"), "{dx}");

    let o = wgconv(&[
        "bench",
        "--suite",
        "smoke",
        "--repeat",
        "1",
        "--explain",
        "--variant",
        "direct",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let planned: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("forward ") || l.contains("dx ") || l.contains("dw "))
        .filter(|l| l.contains("forced"))
        .collect();
    assert_eq!(
        planned.len(),
        9,
        "3 conv layers x 3 passes, all forced:\n{text}"
    );
    assert!(planned.iter().all(|l| l.contains("direct")), "{text}");

    let o = wgconv(&["bench", "--suite", "smoke", "--variant", "fastest"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("unknown variant"), "{}", stderr(&o));

    // --tune times every pass of every layer once and says so; a second run reads the cache.
    let cache = std::env::temp_dir().join(format!("wgconv-cli-tune-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&cache);
    let tune = |expect: &str| {
        let o = wgconv(&[
            "bench",
            "--suite",
            "smoke",
            "--repeat",
            "1",
            "--explain",
            "--tune",
            "--tune-cache",
            cache.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        let tuned = text.lines().filter(|l| l.contains(expect)).count();
        assert_eq!(tuned, 9, "3 conv layers x 3 passes {expect}:\n{text}");
    };
    tune("tuned now");
    tune("tuned earlier");
    let _ = std::fs::remove_file(&cache);
}

/// Every adapter the binary will see: it inherits this process's environment.
fn adapters() -> Vec<wgpu::AdapterInfo> {
    wgconv::Gpu::available_adapters()
}

/// How the binary names an adapter in legends and errors.
fn described(a: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", a.name, a.backend, a.device_type)
}

#[test]
fn an_adapter_that_matches_nothing_is_a_one_line_error_listing_the_adapters() {
    if common::gpu().is_none() {
        return;
    }
    let dir = scratch("bad-adapter");
    let out = dir.join("y.npy");
    let out = out.to_str().unwrap();
    let bad = "no-such-adapter-xyz";
    for args in [
        vec!["info", "--adapter", bad],
        vec!["check", "--cases", "1", "--adapter", bad],
        vec!["check", "--compare-adapters", "--adapter", bad],
        vec!["bench", "--suite", "smoke", "--adapter", bad],
        vec![
            "run",
            "conv2d",
            "--input",
            "x.npy",
            "--weight",
            "w.npy",
            "--output",
            out,
            "--adapter",
            bad,
        ],
        vec!["--adapter", bad],
    ] {
        let o = wgconv(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("--adapter") && err.contains(bad), "{err}");
        for a in adapters() {
            assert!(
                err.contains(&described(&a)),
                "{args:?} does not list {a:?}: {err}"
            );
        }
    }
    // `all` is for the subcommands that run on several adapters; a subcommand's flag goes after
    // its name; --cpu takes no adapter.
    for args in [
        vec!["--adapter", "all"],
        vec!["--adapter", "all", "info"],
        vec![
            "run",
            "conv2d",
            "--input",
            "x.npy",
            "--weight",
            "w.npy",
            "--output",
            out,
            "--cpu",
            "--adapter",
            "all",
        ],
    ] {
        let o = wgconv(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
    }
    assert!(!Path::new(out).exists());
}

#[test]
fn info_lists_every_adapter_with_subgroup_sizes_limits_and_variants() {
    if common::gpu().is_none() {
        return;
    }
    let o = wgconv(&["info"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let all = adapters();
    assert!(!all.is_empty());
    for (i, a) in all.iter().enumerate() {
        let tag = format!("[{}] {}", i + 1, a.name);
        let block: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != tag)
            .take_while(|l| *l == tag || l.starts_with(' '))
            .collect();
        let block = block.join("\n");
        assert!(!block.is_empty(), "no {tag:?} in\n{text}");
        for expected in [
            format!("backend {:?}", a.backend),
            format!(
                "subgroup size {}..={}",
                a.subgroup_min_size, a.subgroup_max_size
            ),
            "max storage binding".to_string(),
            "max texture 2D".to_string(),
        ] {
            assert!(block.contains(&expected), "{expected:?} not in\n{block}");
        }
        // Every conv2d variant, with whether it runs here; the planner's picks marked.
        for v in wgconv::ConvVariant::ALL {
            assert!(
                block.lines().any(|l| l.trim_start().starts_with(v.name())
                    && (l.contains(" yes") || l.contains(" no: "))),
                "{} not listed in\n{block}",
                v.name()
            );
        }
        assert!(block.contains("<- 3x3 64->64 56x56"), "{block}");
        assert!(
            block.contains("pooling variants: per-element, blocked"),
            "{block}"
        );
    }
    assert!(text.contains("chosen:"), "{text}");

    // --adapter narrows the list to what it names.
    let first = &all[0];
    let spec = first.backend.to_str();
    let o = wgconv(&["info", "--adapter", spec]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let listed = text.lines().filter(|l| l.starts_with('[')).count();
    let expected = all
        .iter()
        .filter(|a| wgconv::Gpu::adapter_matches(a, spec))
        .count();
    assert_eq!(listed, expected, "{text}");
}

#[test]
fn check_on_every_adapter_prints_one_table_and_one_json_entry_each() {
    if common::gpu().is_none() {
        return;
    }
    let dir = scratch("check-all");
    let json = dir.join("check.json");
    let o = wgconv(&[
        "check",
        "--adapter",
        "all",
        "--cases",
        "3",
        "--seed",
        "5",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let all = adapters();
    for (i, a) in all.iter().enumerate() {
        assert!(
            text.contains(&format!("[{}] {}", i + 1, described(a))),
            "{a:?} not in the legend:\n{text}"
        );
    }
    // Every op has one row per adapter, and the rows say 3 cases, 0 failures.
    let ops = [
        "conv2d",
        "conv2d-backward-input",
        "conv2d-backward-weight",
        "conv2d-backward-bias",
        "conv-transpose2d",
        "max-pool2d",
        "max-pool2d-backward",
        "activation-backward",
    ];
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip_while(|l| !l.starts_with("op "))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .take_while(|w: &Vec<&str>| w.len() >= 7)
        .collect();
    assert_eq!(rows.len(), ops.len() * all.len(), "{text}");
    for (k, row) in rows.iter().enumerate() {
        let (op, i) = (ops[k / all.len()], k % all.len());
        let tag = format!("[{}]", i + 1);
        let cells = if i == 0 {
            assert_eq!(row[0], op, "{text}");
            &row[1..]
        } else {
            &row[..]
        };
        assert_eq!(&cells[..3], [tag.as_str(), "3", "0"], "{text}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let entries = report["adapters"].as_array().unwrap();
    assert_eq!(entries.len(), all.len());
    for (entry, a) in entries.iter().zip(&all) {
        assert_eq!(entry["adapter"], a.name.as_str());
        assert_eq!(entry["backend"], a.backend.to_str());
        let ops_json = entry["ops"].as_array().unwrap();
        assert_eq!(ops_json.len(), ops.len());
        assert!(ops_json
            .iter()
            .all(|s| s["cases"] == 3 && s["failures"] == 0));
    }
}

/// With one adapter there is nothing to compare it with: the check says so, compares with the
/// CPU only and exits 0. With several, every adapter after the first is compared with it.
#[test]
fn compare_adapters_works_with_any_number_of_adapters() {
    if common::gpu().is_none() {
        return;
    }
    let all = adapters();
    let first = &all[0];
    let narrow = format!("{} {}", first.name, first.backend.to_str());
    let wide = "all".to_string();
    for spec in [narrow, wide] {
        let matching = all
            .iter()
            .filter(|a| wgconv::Gpu::adapter_matches(a, &spec))
            .count();
        let dir = scratch("compare");
        let json = dir.join("compare.json");
        let o = wgconv(&[
            "check",
            "--compare-adapters",
            "--adapter",
            &spec,
            "--op",
            "conv2d-backward-weight",
            "--cases",
            "2",
            "--json",
            json.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{spec}: {}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(report["adapters"].as_array().unwrap().len(), matching);
        if matching == 1 {
            assert!(text.contains("nothing to compare"), "{text}");
            assert!(!text.contains("worst pair"), "{text}");
            assert!(report.get("against_first_adapter").is_none(), "{report}");
        } else {
            assert!(text.contains("adapters against [1]"), "{text}");
            assert!(text.contains("worst pair: ["), "{text}");
            // The second table: one row per adapter after the first.
            let compared: Vec<&str> = text
                .lines()
                .skip_while(|l| !l.starts_with("adapters against [1]"))
                .skip(2)
                .take_while(|l| !l.starts_with("worst pair"))
                .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('[')))
                .collect();
            let expected: Vec<String> = (2..=matching).map(|k| format!("[{k}]")).collect();
            assert_eq!(compared, expected, "{text}");
            let pairs = report["against_first_adapter"].as_array().unwrap();
            assert_eq!(pairs.len(), matching - 1);
            assert!(pairs.iter().all(|p| p["ops"][0]["failures"] == 0));
        }
    }
}

#[test]
fn bench_on_every_adapter_reports_them_side_by_side() {
    if common::gpu().is_none() {
        return;
    }
    let all = adapters();
    let dir = scratch("bench-all");
    let (json, svg) = (dir.join("bench.json"), dir.join("bench.svg"));
    let o = wgconv(&[
        "bench",
        "--suite",
        "smoke",
        "--repeat",
        "1",
        "--adapter",
        "all",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let entries = report["adapters"].as_array().unwrap();
    assert_eq!(entries.len(), all.len());
    for (entry, a) in entries.iter().zip(&all) {
        assert_eq!(entry["adapter"], a.name.as_str());
        let rows = entry["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 11, "3 conv layers x 3 ops + 1 pool layer x 2");
        // The CPU is timed once and reported with every adapter.
        assert!(rows.iter().all(|r| r["cpu_ms"].as_f64().unwrap() > 0.0));
    }
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg"));
    for (i, a) in all.iter().enumerate() {
        assert!(
            svg.contains(&format!("[{}] {}", i + 1, described(a))),
            "{a:?}"
        );
    }
    if all.len() > 1 {
        let header = text.lines().find(|l| l.starts_with("layer ")).unwrap();
        for i in 1..=all.len() {
            assert!(header.contains(&format!("[{i}] ms")), "{header}");
        }
    }
}

#[test]
fn run_takes_each_adapter_by_name_and_backend() {
    if common::gpu().is_none() {
        return;
    }
    let dir = scratch("run-adapter");
    let mut rng = common::Rng::new(17);
    let x = save(&dir.join("x.npy"), &rng.array4([1, 3, 9, 9]));
    let w = save(&dir.join("w.npy"), &rng.array4([4, 3, 3, 3]));
    let run = |device: &[&str], name: &str| {
        let out = dir.join(name);
        let mut args = vec![
            "run",
            "conv2d",
            "--input",
            &x,
            "--weight",
            &w,
            "--padding",
            "same",
            "--output",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(device);
        let o = wgconv(&args);
        assert!(o.status.success(), "{device:?}: {}", stderr(&o));
        load_f32(&out)
    };
    let want = run(&["--cpu"], "cpu.npy");
    for (i, a) in adapters().iter().enumerate() {
        let spec = format!("{} {}", a.name, a.backend.to_str());
        let got = run(&["--adapter", &spec], &format!("gpu{i}.npy"));
        let report = wgconv::compare(
            got.view(),
            want.view(),
            wgconv::Tolerance::for_reduction(27),
        );
        assert!(report.passed(), "{spec}: {report}");
    }
}
