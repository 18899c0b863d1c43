//! Building and starting the simulator from a normal (non-madsim) build.
//!
//! The simulator must be compiled with `--cfg madsim` (madsim's network, time and tasks replace
//! tokio's), and in its own target directory so the two flavours never overwrite each other.
//! Rather than asking people to set RUSTFLAGS, a plain `cargo run -p sim -- ...` or `cargo test`
//! runs this launcher, which invokes cargo for the madsim flavour into `target/madsim` and then
//! runs it with the same arguments. One command, no environment to set by hand.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};

/// The workspace root (the parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("sim lives in the workspace").to_path_buf()
}

/// Where the madsim flavour is built.
pub fn madsim_target_dir() -> PathBuf {
    workspace_root().join("target").join("madsim")
}

/// Builds the madsim flavour of the `sim` binary (release: the sweep runs thousands of seeds),
/// with overflow checks on (an arithmetic overflow that production would wrap silently is a
/// panic in simulation) and panics unwinding rather than aborting as in the production profile,
/// so that a panic in server code fails its seed, which is reported with its replay command,
/// instead of killing the whole sweep.
pub fn build_sim() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(workspace_root())
        .args(["build", "--release", "-p", "sim", "--bin", "sim"])
        .args(["--config", "profile.release.overflow-checks=true", "--config", "profile.release.panic=\"unwind\""])
        .env("RUSTFLAGS", "--cfg madsim")
        .env("CARGO_TARGET_DIR", madsim_target_dir())
        .status()
        .map_err(|e| format!("running {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!("building the madsim flavour failed: {status}"));
    }
    Ok(madsim_target_dir().join("release").join("sim"))
}

/// Builds the simulator and runs it with `args`.
pub fn run_sim(args: &[String]) -> Result<ExitStatus, String> {
    let bin = build_sim()?;
    Command::new(&bin).args(args).status().map_err(|e| format!("running {}: {e}", bin.display()))
}
