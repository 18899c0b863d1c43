//! `cargo test` runs the simulation.
//!
//! These tests are compiled in the normal build. Each builds the madsim flavour of the `sim`
//! binary into `target/madsim` (see `sim::launcher`; cargo makes the second build a no-op) and
//! runs it:
//! - the sweep: every scenario for its default number of seeds (at least 1000), plus every
//!   regression seed in `seeds/`, with the coverage table, speed figures and determinism check;
//!   the knob for more: `SIM_SEEDS=10000 cargo test -p sim`;
//! - planted bugs: each must be caught within a stated number of seeds;
//! - replay: a failing seed replays with the same trace hash.

#![cfg(not(madsim))]

use std::process::Command;

#[test]
fn simulation_sweep() {
    let mut args = vec!["sweep".to_string()];
    if let Ok(n) = std::env::var("SIM_SEEDS") {
        args.push("--seeds".into());
        args.push(n);
    }
    let status = sim::launcher::run_sim(&args).expect("simulator runs");
    assert!(status.success(), "the simulation sweep failed (see the seed and replay command above)");
}

#[test]
fn planted_bugs_are_caught() {
    let status = sim::launcher::run_sim(&["planted".to_string()]).expect("simulator runs");
    assert!(status.success(), "a planted bug escaped the sweep: the checkers are too weak");
}

#[test]
fn failing_seed_replays_with_the_same_trace() {
    let bin = sim::launcher::build_sim().expect("build the simulator");
    let replay = || {
        let out = Command::new(&bin)
            .args(["replay", "--scenario", "register", "--seed", "0", "--plant", "incr-off-by-one"])
            .output()
            .expect("run the simulator");
        assert!(!out.status.success(), "the planted bug must make seed 0 fail");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let hash = stderr.lines().find(|l| l.starts_with("trace hash:")).expect("a trace hash is printed").to_string();
        assert!(
            stderr.contains("cargo run -p sim -- replay --scenario register --seed 0 --plant incr-off-by-one"),
            "the replay command is printed"
        );
        hash
    };
    let first = replay();
    let second = replay();
    assert_eq!(first, second, "the same failing seed must replay the same trace");
    eprintln!("failing seed replayed twice: {first}");
}
