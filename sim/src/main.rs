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
        std::process::exit(sim::runner::main(&args));
    }
}
