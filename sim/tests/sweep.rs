//! `cargo test` runs the simulation sweep.
//!
//! This test is compiled in the normal build. It builds the madsim flavour of the `sim` binary
//! into `target/madsim` (see `sim::launcher`) and runs its sweep: every scenario for its default
//! number of seeds (at least 1000), plus every regression seed in `seeds/`. The knob for more:
//! `SIM_SEEDS=10000 cargo test`. A failing seed is printed with the command that replays it.

#[cfg(not(madsim))]
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
