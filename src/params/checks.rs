//! Argument checks shared by every op's validation.

use crate::error::{invalid, too_large, Result};

/// Largest element count a tensor may have: shaders index buffers with `u32`.
const MAX_ELEMENTS: u64 = u32::MAX as u64;

/// `Err` unless there is at least one group.
pub(super) fn check_groups(op: &'static str, groups: usize) -> Result<()> {
    if groups == 0 {
        return Err(invalid(op, "groups must be at least 1, got 0"));
    }
    Ok(())
}

/// `Err` unless a bias, if given, has one value per output channel.
pub(super) fn check_bias(
    op: &'static str,
    bias_len: Option<usize>,
    out_channels: usize,
    what: &str,
) -> Result<()> {
    match bias_len {
        Some(len) if len != out_channels => Err(invalid(
            op,
            format!("bias has {len} elements but {what} has {out_channels} output channels"),
        )),
        _ => Ok(()),
    }
}

/// `Err` if any dimension of `shape` is zero.
pub(super) fn check_no_zero_dim(
    op: &'static str,
    name: &str,
    shape: &[usize],
    dims: &str,
) -> Result<()> {
    if shape.contains(&0) {
        return Err(invalid(
            op,
            format!("{name} shape {dims} = {shape:?} has a zero-sized dimension"),
        ));
    }
    Ok(())
}

/// `Err` unless both values of a `[height, width]` pair are at least 1.
pub(super) fn check_positive_pair(op: &'static str, name: &str, pair: [usize; 2]) -> Result<()> {
    if pair.contains(&0) {
        return Err(invalid(
            op,
            format!("{name} must be at least 1 on both axes, got {pair:?} ([height, width])"),
        ));
    }
    Ok(())
}

/// Rejects a tensor whose flat index would not fit in `u32`.
pub(super) fn check_element_count(op: &'static str, name: &str, shape: &[usize]) -> Result<()> {
    let count = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    match count {
        Some(c) if c <= MAX_ELEMENTS => Ok(()),
        _ => Err(too_large(
            op,
            format!(
                "{name} shape {shape:?} has more than {MAX_ELEMENTS} elements, the most a u32 \
                 flat index can address"
            ),
        )),
    }
}

/// `Err` unless the `named` shapes (the first is the reference) are one shape: the operands of an
/// elementwise op such as the optimizer's, on either backend.
pub(crate) fn check_same_shape(op: &'static str, named: &[(&str, &[usize])]) -> Result<()> {
    let Some(&(first_name, first)) = named.first() else {
        return Ok(());
    };
    for &(name, shape) in &named[1..] {
        if shape != first {
            return Err(invalid(
                op,
                format!("{name} has shape {shape:?}, {first_name} has {first:?}; they must match"),
            ));
        }
    }
    Ok(())
}
