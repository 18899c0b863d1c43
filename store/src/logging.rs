//! Logging through `tracing`, to the `logfile` or stdout, honouring `loglevel`.
//!
//! Redis's levels map onto tracing's: debug -> DEBUG, verbose -> DEBUG, notice -> INFO,
//! warning -> WARN, nothing -> off. The subscriber is process-wide, so it is installed by the
//! binary (production) or the simulator, never by library code.

use tracing_subscriber::filter::LevelFilter;

pub fn level_for(loglevel: &str) -> LevelFilter {
    match loglevel {
        "debug" | "verbose" => LevelFilter::DEBUG,
        "notice" => LevelFilter::INFO,
        "warning" => LevelFilter::WARN,
        "nothing" => LevelFilter::OFF,
        _ => LevelFilter::INFO,
    }
}

/// Installs the global subscriber. `logfile` empty means stdout. Returns an error text if the
/// log file cannot be opened (Redis refuses to start in that case).
pub fn init(loglevel: &str, logfile: &str) -> Result<(), String> {
    let builder = tracing_subscriber::fmt().with_max_level(level_for(loglevel)).with_target(false).with_ansi(false);
    if logfile.is_empty() {
        let _ = builder.with_writer(std::io::stdout).try_init();
    } else {
        // Start-up code, not a server path: the log file is opened once, before serving.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logfile)
            .map_err(|e| format!("Can't open the log file: {e}"))?;
        let _ = builder.with_writer(std::sync::Mutex::new(file)).try_init();
    }
    Ok(())
}
