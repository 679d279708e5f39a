//! Test-only lane-address checks of the real-GPU kernels: bank sets of the tiled GEMMs' workgroup-memory accesses per phase, and 32-byte sectors per 32-lane access of their stores and of the depthwise kernels, from host mirrors of the kernels' index expressions.

/// One access of 32 consecutive lanes (a warp; two AMD half-waves behave alike).
pub(crate) enum Access {
    /// Workgroup memory: the first 32-bit word each lane touches and the words it touches
    /// (1 for f32, 4 for vec4).
    Workgroup {
        word: Box<dyn Fn(u32) -> u32>,
        width: u32,
    },
    /// Device memory: the byte address each lane touches and the bytes it touches.
    Global {
        byte: Box<dyn Fn(u32) -> u64>,
        bytes: u32,
    },
}

const LANES: u32 = 32;
const BANKS: u32 = 32;
const SECTOR: u64 = 32;

/// How many distinct words the busiest bank serves in one phase: workgroup memory serves 128
/// bytes a cycle, so a `width`-word access runs in phases of 32 / `width` lanes, and lanes of a
/// phase that read the same word share it (a broadcast). 1 is conflict-free.
pub(crate) fn conflict_degree(word: &dyn Fn(u32) -> u32, width: u32) -> u32 {
    let per_phase = LANES / width;
    (0..width)
        .map(|phase| {
            let mut per_bank: Vec<Vec<u32>> = vec![Vec::new(); BANKS as usize];
            for lane in phase * per_phase..(phase + 1) * per_phase {
                for w in word(lane)..word(lane) + width {
                    let bank = &mut per_bank[(w % BANKS) as usize];
                    if !bank.contains(&w) {
                        bank.push(w);
                    }
                }
            }
            per_bank.iter().map(|b| b.len() as u32).max().unwrap_or(0)
        })
        .max()
        .unwrap_or(0)
}

/// The 32-byte sectors a 32-lane access touches, and the fewest its bytes could fit in.
pub(crate) fn sectors(byte: &dyn Fn(u32) -> u64, bytes: u32) -> (usize, usize) {
    let mut touched: Vec<u64> = (0..LANES)
        .flat_map(|lane| {
            let first = byte(lane);
            (first / SECTOR..=(first + u64::from(bytes) - 1) / SECTOR).collect::<Vec<_>>()
        })
        .collect();
    touched.sort_unstable();
    touched.dedup();
    let mut distinct: Vec<u64> = (0..LANES).map(&byte).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let ideal = (distinct.len() as u64 * u64::from(bytes)).div_ceil(SECTOR) as usize;
    (touched.len(), ideal)
}

/// What a check found: per access, its name and either its conflict degree (workgroup) or its
/// sectors against the fewest (global).
pub(crate) fn report(accesses: &[(String, Access)]) -> Vec<(String, String, bool)> {
    accesses
        .iter()
        .map(|(name, access)| match access {
            Access::Workgroup { word, width } => {
                let degree = conflict_degree(word.as_ref(), *width);
                (name.clone(), format!("{degree}-way"), degree == 1)
            }
            Access::Global { byte, bytes } => {
                let (got, ideal) = sectors(byte.as_ref(), *bytes);
                (
                    name.clone(),
                    format!("{got} sectors (fewest {ideal})"),
                    got == ideal,
                )
            }
        })
        .collect()
}

#[test]
fn conflicts_and_sectors_count_known_patterns() {
    // Consecutive f32 words: conflict-free; a stride of 2 words: 2-way; all lanes one word:
    // a broadcast.
    assert_eq!(conflict_degree(&|l| l, 1), 1);
    assert_eq!(conflict_degree(&|l| 2 * l, 1), 2);
    assert_eq!(conflict_degree(&|_| 7, 1), 1);
    // vec4s: 8 consecutive per phase are conflict-free, a stride of 4 vec4s is 4-way.
    assert_eq!(conflict_degree(&|l| 4 * l, 4), 1);
    assert_eq!(conflict_degree(&|l| 16 * l, 4), 4);
    // 32 consecutive f32: 4 sectors; 32 f32 one row of 64 floats apart: 32.
    assert_eq!(sectors(&|l| 4 * u64::from(l), 4), (4, 4));
    assert_eq!(sectors(&|l| 256 * u64::from(l), 4), (32, 4));
}

/// Output pixels per image of the layer the NCHW store checks use (ResNet's 3x3 layers at
/// 56x56); an NHWC destination has exactly the tile's channels.
const PLANE: u64 = 56 * 56;

/// How invocation t sits in a tile of `m` channels (`lanes` in `shaders/conv2d/tiled.wgsl`).
#[derive(Clone, Copy)]
struct Lanes {
    m: u32,
    m4: u32,
    columns: u32,
    channel_lanes: u32,
}

impl Lanes {
    fn new(m: u32) -> Self {
        Lanes {
            m,
            m4: m / 4,
            columns: 2048 / m,
            channel_lanes: m / 8,
        }
    }
    fn tm(self, t: u32) -> u32 {
        t % self.channel_lanes
    }
    fn tp(self, t: u32) -> u32 {
        t / self.channel_lanes
    }
    /// The output tile's word of (column, channel): rows of m words for a channel-contiguous
    /// destination, m + 1 otherwise.
    fn output_word(self, column: u32, m: u32, channels_contiguous: bool) -> u32 {
        column * (self.m + u32::from(!channels_contiguous)) + m
    }
    /// Output e's (column, channel) in the store loop.
    fn output_place(self, e: u32, channels_contiguous: bool) -> (u32, u32) {
        if channels_contiguous {
            (e / self.m, e % self.m)
        } else {
            (e % self.columns, e / self.columns)
        }
    }
}

/// The tiled GEMMs' workgroup-memory accesses and device stores for lanes 0..32 of the first
/// workgroup with a tile of `m` channels, mirrored from the index expressions of
/// `shaders/conv2d/tiled.wgsl` (first K step, first staged vec4, first output), and whether
/// the budget covers each: the K step, the staging and the stores must be clean; the
/// once-per-tile moves of the accumulators into the output tile are reported only.
fn tiled_accesses(m: u32) -> Vec<(String, Access, bool)> {
    let l = Lanes::new(m);
    let mut accesses: Vec<(String, Access, bool)> = vec![
        (
            "K step: channel vec4 0".into(),
            Access::Workgroup {
                word: Box::new(move |t| 4 * l.tm(t)),
                width: 4,
            },
            true,
        ),
        (
            "K step: channel vec4 1".into(),
            Access::Workgroup {
                word: Box::new(move |t| 4 * (l.tm(t) + l.channel_lanes)),
                width: 4,
            },
            true,
        ),
        (
            "staging: weights loaded (forward)".into(),
            // packed_b[weight_base + kq * m_pad] with one tile of m channels: m_pad = m.
            Access::Global {
                byte: Box::new(move |t| 16 * u64::from((t / m) * m + t % m)),
                bytes: 16,
            },
            true,
        ),
    ];
    for c in 0..4 {
        accesses.push((
            format!("staging: store {c} of a staged vec4"),
            Access::Workgroup {
                word: Box::new(move |t| {
                    let (staged_m, q) = (t % m, t / m);
                    let term = (c + q) & 3;
                    4 * ((4 * q + term) * l.m4 + staged_m / 4) + staged_m % 4
                }),
                width: 1,
            },
            true,
        ));
    }
    for (name, contiguous) in [("NCHW", false), ("NHWC", true)] {
        accesses.push((
            format!("output tile read, {name}"),
            Access::Workgroup {
                word: Box::new(move |t| {
                    let (column, channel) = l.output_place(t, contiguous);
                    l.output_word(column, channel, contiguous)
                }),
                width: 1,
            },
            true,
        ));
        accesses.push((
            format!("output store, {name}"),
            Access::Global {
                byte: Box::new(move |t| {
                    let (pixel, channel) = l.output_place(t, contiguous);
                    let (pixel, channel) = (u64::from(pixel), u64::from(channel));
                    if contiguous {
                        4 * (pixel * u64::from(m) + channel)
                    } else {
                        4 * (pixel + channel * PLANE)
                    }
                }),
                bytes: 4,
            },
            true,
        ));
    }
    for (name, contiguous) in [("NCHW", false), ("NHWC", true)] {
        for k in 0..4 {
            accesses.push((
                format!("output tile write {k} of an accumulator vec4, {name}"),
                Access::Workgroup {
                    word: Box::new(move |t| {
                        let rotate = if contiguous { l.tp(t) } else { 0 };
                        l.output_word(l.tp(t), 4 * l.tm(t), contiguous) + ((k + rotate) & 3)
                    }),
                    width: 1,
                },
                false,
            ));
        }
    }
    accesses.push((
        "staging: grad_output loaded (dw)".into(),
        // packed_a[(g * channels + m) * k_vec + kq], a 56-wide row of vec4s per channel.
        Access::Global {
            byte: Box::new(move |t| 16 * u64::from((t % m) * 14 * 56 + t / m)),
            bytes: 16,
        },
        false,
    ));
    accesses
}

/// `cargo test --lib lane_address -- --nocapture` prints each access's figure.
#[test]
fn tiled_gemm_lanes_are_conflict_free_and_stores_coalesced() {
    let mut bad = Vec::new();
    for m in [8, 16, 32, 64] {
        let accesses = tiled_accesses(m);
        let checked: Vec<bool> = accesses.iter().map(|a| a.2).collect();
        let pairs: Vec<(String, Access)> = accesses.into_iter().map(|(n, a, _)| (n, a)).collect();
        for ((name, figure, ok), checked) in report(&pairs).into_iter().zip(checked) {
            let note = match (ok, checked) {
                (true, _) => "",
                (false, true) => "  <- over budget",
                (false, false) => "  (reported only)",
            };
            println!("tiled, {m} channels: {name}: {figure}{note}");
            if checked && !ok {
                bad.push(format!("{m} channels: {name}: {figure}"));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

/// Invocation `index` of a depthwise kernel as (n, oc, column of quads, run of rows), mirrored
/// from `depthwise_item` in `shaders/conv2d/depthwise.wgsl`.
fn depthwise_item(
    index: u32,
    along_channels: bool,
    channels: u32,
    columns: u32,
    runs: u32,
) -> [u32; 4] {
    if along_channels {
        let rest = index / channels;
        let rest2 = rest / columns;
        [rest2 / runs, index % channels, rest % columns, rest2 % runs]
    } else {
        let rest = index / columns;
        let rest2 = rest / runs;
        [
            rest2 / channels,
            rest2 % channels,
            index % columns,
            rest % runs,
        ]
    }
}

/// Sectors one warp's depthwise forward touches against the fewest its distinct bytes fit in:
/// the ten input loads of the first tap row of each lane's first output row, and the four
/// stores of its quad. A 3x3 layer of 64 channels at 56x56, batch 2, 16 rows per invocation;
/// warps at several places in the grid.
fn depthwise_warp_sectors(nhwc: bool, along_channels: bool) -> [(usize, usize); 2] {
    let (c, h, w, rows) = (64u32, 56u32, 56u32, 16u32);
    let columns = w.div_ceil(4);
    let runs = h.div_ceil(rows);
    let address = move |n: u32, ch: u32, y: u32, x: u32| -> u64 {
        let (n, ch, y, x) = (u64::from(n), u64::from(ch), u64::from(y), u64::from(x));
        let (c, h, w) = (u64::from(c), u64::from(h), u64::from(w));
        4 * if nhwc {
            ((n * h + y) * w + x) * c + ch
        } else {
            ((n * c + ch) * h + y) * w + x
        }
    };
    let mut totals = [(0, 0); 2];
    for warp in [0u32, 1, 5, 77] {
        let item = |lane: u32| depthwise_item(32 * warp + lane, along_channels, c, columns, runs);
        let loads: Vec<u64> = (0..32)
            .flat_map(|lane| {
                let [n, ch, q, run] = item(lane);
                (0..10).map(move |j| {
                    let x = (4 * q + j).saturating_sub(1).min(w - 1);
                    address(n, ch, run * rows, x)
                })
            })
            .collect();
        let stores: Vec<u64> = (0..32)
            .flat_map(|lane| {
                let [n, ch, q, run] = item(lane);
                (0..4).map(move |j| address(n, ch, run * rows, (4 * q + j).min(w - 1)))
            })
            .collect();
        for (total, bytes) in totals.iter_mut().zip([loads, stores]) {
            let mut words = bytes.clone();
            words.sort_unstable();
            words.dedup();
            let mut touched: Vec<u64> = words.iter().map(|b| b / SECTOR).collect();
            touched.dedup();
            total.0 += touched.len();
            total.1 += (words.len() as u64 * 4).div_ceil(SECTOR) as usize;
        }
    }
    totals
}

/// The GPU order of the depthwise kernels (lanes along the quads of a row in NCHW, along
/// channels in NHWC) touches at most 1.5x the sectors its bytes need, loads and stores; lanes
/// along channels in NCHW (the CPU-driver order) would not, which shows the check can fail.
#[test]
fn depthwise_gpu_order_coalesces_in_both_layouts() {
    let within = |(touched, fewest): (usize, usize)| 2 * touched <= 3 * fewest;
    for nhwc in [false, true] {
        let [loads, stores] = depthwise_warp_sectors(nhwc, nhwc);
        println!("depthwise, GPU order, nhwc {nhwc}: loads {loads:?}, stores {stores:?} (touched, fewest)");
        assert!(
            within(loads) && within(stores),
            "nhwc {nhwc}: {loads:?} {stores:?}"
        );
    }
    let [loads, stores] = depthwise_warp_sectors(false, true);
    println!("depthwise, NCHW with lanes along channels: loads {loads:?}, stores {stores:?}");
    assert!(!within(loads) && !within(stores), "{loads:?} {stores:?}");
}
