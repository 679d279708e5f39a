//! Test-only lane-address check of the tiled GEMMs: bank sets of workgroup-memory accesses per phase and 32-byte sectors per 32-lane store, from a host mirror of the kernels' index expressions.

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

/// Output pixels per image and channels of the layer the store checks use (ResNet's 64-channel
/// 3x3 layer at 56x56): only the strides matter.
const PLANE: u64 = 56 * 56;
const CHANNELS: u64 = 64;

/// The tiled GEMMs' workgroup-memory accesses and output stores for lanes 0..32 of the first
/// workgroup, mirrored from the index expressions of `shaders/conv2d/tiled.wgsl` (first K term,
/// first accumulator): `t` is `local_invocation_index`.
fn tiled_accesses() -> Vec<(String, Access)> {
    let tp = |t: u32| t % 8;
    let tm = |t: u32| t / 8;
    let pixel = move |t: u32| u64::from(tp(t) * 4);
    let channel = move |t: u32| u64::from(tm(t) * 8);
    vec![
        (
            "K step: source_tile read".into(),
            Access::Workgroup {
                word: Box::new(move |t| 4 * (tp(t) * 4)),
                width: 4,
            },
        ),
        (
            "K step: source_live read".into(),
            Access::Workgroup {
                word: Box::new(move |t| tp(t) * 4),
                width: 1,
            },
        ),
        (
            "K step: weight_tile read".into(),
            Access::Workgroup {
                word: Box::new(move |t| 4 * (tm(t) * 8)),
                width: 4,
            },
        ),
        (
            "staging: source_tile store".into(),
            Access::Workgroup {
                word: Box::new(|t| 4 * (t % 32)),
                width: 4,
            },
        ),
        (
            "staging: weight_tile store".into(),
            Access::Workgroup {
                word: Box::new(|t| 4 * t),
                width: 4,
            },
        ),
        (
            "output store, NCHW".into(),
            Access::Global {
                byte: Box::new(move |t| 4 * (pixel(t) + channel(t) * PLANE)),
                bytes: 4,
            },
        ),
        (
            "output store, NHWC".into(),
            Access::Global {
                byte: Box::new(move |t| 4 * (pixel(t) * CHANNELS + channel(t))),
                bytes: 4,
            },
        ),
    ]
}

/// Whether the tiled GEMMs are known to miss the lane-address budget (conflict-free workgroup
/// accesses, stores in the fewest sectors): a kernel that meets it must say so here.
const TILED_KNOWN_BAD: bool = true;

/// `cargo test --lib lane_address -- --nocapture` prints each access's figure.
#[test]
fn tiled_gemm_lanes_are_conflict_free_and_stores_coalesced() {
    let found = report(&tiled_accesses());
    for (name, figure, ok) in &found {
        println!(
            "tiled {name}: {figure}{}",
            if *ok { "" } else { "  <- over budget" }
        );
    }
    let bad: Vec<_> = found.iter().filter(|(_, _, ok)| !ok).collect();
    if TILED_KNOWN_BAD {
        assert!(
            !bad.is_empty(),
            "the tiled GEMMs meet the lane budget: clear TILED_KNOWN_BAD"
        );
    } else {
        assert!(bad.is_empty(), "{bad:#?}");
    }
}
