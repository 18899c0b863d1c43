//! The simulator's command line.
//!
//! `cargo run -p sim -- sweep [--scenario NAME] [--seeds N] [--start S]`
//! `cargo run -p sim -- replay --scenario NAME --seed N [--verbose]`
//!
//! In a normal build this binary is a launcher: it builds the madsim flavour into
//! `target/madsim` and runs it with the same arguments (see `sim::launcher`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    #[cfg(not(madsim))]
    {
        match sim::launcher::run_sim(&args) {
            Ok(status) => std::process::exit(status.code().unwrap_or(1)),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
    }
    #[cfg(madsim)]
    {
        // SIM_SERVER_LOG=1: every node's log lines (Redis's wording) on stderr, for reading a
        // failing seed's replay; not part of the trace.
        if std::env::var("SIM_SERVER_LOG").is_ok() {
            tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).with_target(false).with_ansi(false).init();
        }
        std::process::exit(sim::runner::main(&args));
    }
}
