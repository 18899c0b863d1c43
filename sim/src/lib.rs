//! `sim`: deterministic simulation of store clusters.
//!
//! - [`launcher`]: how a normal build builds and starts the madsim flavour (`target/madsim`).
//! - [`trace`]: the event trace and its hash (same seed, same binary, same hash).
//! - [`model`]: a sequential model of data commands for checking replies.
//! - `runner` and `scenarios` (madsim flavour only): the seed sweep, replay, and the simulated
//!   clusters with their workloads.

pub mod launcher;
pub mod model;
pub mod timeline;
pub mod trace;

#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod nemesis;
#[cfg(madsim)]
pub mod runner;
#[cfg(madsim)]
pub mod scenarios;
