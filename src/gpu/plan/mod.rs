//! Planning a call before anything is allocated: its dispatch steps with buffers named by role,
//! and the device memory it will take at its peak.

pub(crate) mod memory;
mod steps;
pub(crate) mod variant_env;

pub(crate) use steps::*;
