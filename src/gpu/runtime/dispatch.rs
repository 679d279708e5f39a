//! Dispatch grids: a 1-D range of invocations folded into x, y and z under the device limit.

use crate::error::{too_large, Result};

/// Invocations per workgroup of every 1-D kernel; the shaders declare the same number.
pub const WORKGROUP_SIZE: u32 = 64;

/// Workgroup counts for one dispatch. Shaders rebuild the linear workgroup index as
/// `(z * ny + y) * nx + x` and skip invocations past `invocations`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DispatchGrid {
    pub workgroups: [u32; 3],
    pub invocations: u32,
}

impl DispatchGrid {
    /// The smallest near-square grid covering `invocations` with no dimension above
    /// `max_per_dimension` (the device's `max_compute_workgroups_per_dimension`).
    pub fn for_invocations(
        op: &'static str,
        invocations: u64,
        max_per_dimension: u32,
    ) -> Result<Self> {
        Self::for_invocations_in(op, invocations, WORKGROUP_SIZE, max_per_dimension)
    }

    /// As [`DispatchGrid::for_invocations`], for a kernel whose workgroups hold
    /// `workgroup_size` invocations.
    pub fn for_invocations_in(
        op: &'static str,
        invocations: u64,
        workgroup_size: u32,
        max_per_dimension: u32,
    ) -> Result<Self> {
        let invocations_u32 = u32::try_from(invocations).map_err(|_| {
            too_large(
                op,
                format!("{invocations} invocations exceed the u32 index range"),
            )
        })?;
        let total = invocations
            .div_ceil(u64::from(workgroup_size.max(1)))
            .max(1);
        let max = u64::from(max_per_dimension.max(1));
        let y_z = total.div_ceil(max);
        let z = y_z.div_ceil(max);
        let y = y_z.div_ceil(z);
        let x = total.div_ceil(y * z);
        if x > max || y > max || z > max {
            return Err(too_large(
                op,
                format!("{total} workgroups do not fit a {max}^3 dispatch grid"),
            ));
        }
        Ok(Self {
            workgroups: [x as u32, y as u32, z as u32],
            invocations: invocations_u32,
        })
    }

    /// Total workgroups dispatched.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn workgroup_count(&self) -> u64 {
        self.workgroups.iter().map(|&d| u64::from(d)).product()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_grid_is_one_dimensional() {
        let g = DispatchGrid::for_invocations("t", 1000, 65535).unwrap();
        assert_eq!(g.workgroups, [16, 1, 1]);
    }

    #[test]
    fn large_grid_folds_into_y_and_z_and_covers_everything() {
        for &inv in &[65535u64 * 64 + 1, 4_410_000, u32::MAX as u64] {
            let g = DispatchGrid::for_invocations("t", inv, 65535).unwrap();
            assert!(g.workgroups.iter().all(|&d| d <= 65535), "{g:?}");
            assert!(g.workgroup_count() * 64 >= inv);
        }
        let g = DispatchGrid::for_invocations("t", 1 << 18, 16).unwrap();
        assert!(g.workgroups.iter().all(|&d| d <= 16));
        assert!(g.workgroups[2] > 1);
        assert!(g.workgroup_count() * 64 >= 1 << 18);
        assert!(DispatchGrid::for_invocations("t", 1 << 30, 8).is_err());
    }
}
