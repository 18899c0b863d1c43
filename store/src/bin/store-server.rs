//! `store-server`: the production server binary, shaped like `redis-server`.
//!
//! Usage: `store-server [/path/to/redis.conf] [--directive value ...] [--sentinel]`. With no file it runs on
//! the embedded defaults (port 6379, bind 127.0.0.1, protected mode). Command-line directives are
//! applied after the file, exactly as Redis does.

use std::process::ExitCode;

use store::config::{Config, ConfigSource};
use store::env::{strerror, Disk, Env};
use store::server::Server;

#[global_allocator]
static ALLOC: store::alloc::CountingAlloc = store::alloc::CountingAlloc;

fn usage() -> ! {
    eprintln!("Usage: ./store-server [/path/to/redis.conf] [options] [-]");
    eprintln!("       ./store-server - (read config from stdin)");
    eprintln!("       ./store-server -v or --version");
    eprintln!("       ./store-server -h or --help");
    eprintln!();
    eprintln!("Examples:");
    eprintln!("       ./store-server (run the server with default config)");
    eprintln!("       ./store-server /etc/redis/6379.conf");
    eprintln!("       ./store-server --port 7777");
    eprintln!("       ./store-server --port 7777 --replicaof 127.0.0.1 8888");
    eprintln!("       ./store-server /etc/myredis.conf --loglevel verbose");
    std::process::exit(1);
}

/// Turns `--port 6380 --save ""` into config lines, quoting values as needed.
fn args_to_lines(args: &[String]) -> Result<String, String> {
    let mut text = String::new();
    let mut have_directive = false;
    for a in args {
        if let Some(name) = a.strip_prefix("--") {
            if name.is_empty() {
                return Err("empty option name".into());
            }
            if have_directive {
                text.push('\n');
            }
            text.push_str(name);
            have_directive = true;
        } else {
            if !have_directive {
                return Err(format!("unexpected argument '{a}' before any --option"));
            }
            text.push(' ');
            text.push('"');
            for c in a.chars() {
                match c {
                    '"' => text.push_str("\\\""),
                    '\\' => text.push_str("\\\\"),
                    '\n' => text.push_str("\\n"),
                    c => text.push(c),
                }
            }
            text.push('"');
        }
    }
    text.push('\n');
    Ok(text)
}

/// The real file system, for `include` and `dir` while the configuration is read (before the
/// server runs; the server itself reaches files only through the disk seam).
struct FsSource;

impl ConfigSource for FsSource {
    fn read_include(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(path)
            .map_err(|e| format!("Fatal error, can't open config file '{path}': {}", strerror(&e)))
    }

    fn check_dir(&self, path: &str) -> Result<(), String> {
        Disk::Real.check_dir(std::path::Path::new(path)).map_err(|e| strerror(&e))
    }
}

fn load_config(args: &[String], sentinel: bool) -> Result<Config, String> {
    let (file, rest) = match args.first() {
        Some(f) if !f.starts_with("--") => (Some(f.clone()), &args[1..]),
        _ => (None, args),
    };
    let mut config = if sentinel { Config::sentinel_defaults() } else { Config::new() };
    match &file {
        Some(path) if path == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| e.to_string())?;
            config.load_file_text(&text, "stdin", &FsSource).map_err(|e| e.to_string())?;
        }
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("Fatal error, can't open config file '{path}': {e}"))?;
            config.load_file_text(&text, path, &FsSource).map_err(|e| e.to_string())?;
            // Absolute path, so CONFIG REWRITE works whatever `dir` becomes.
            config.file = Some(std::fs::canonicalize(path).map(|p| p.display().to_string()).unwrap_or(path.clone()));
        }
        None => {
            eprintln!("Warning: no config file specified, using the default config. In order to specify a config file use ./store-server /path/to/redis.conf");
        }
    }
    if sentinel {
        check_sentinel_file(config.file.as_deref())?;
    }
    if !rest.is_empty() {
        let text = args_to_lines(rest).map_err(|e| format!("Invalid command line: {e}"))?;
        config.apply_text_with(&text, "command line", &FsSource).map_err(|e| e.to_string())?;
    }
    Ok(config)
}

/// Sentinel keeps its state in its config file: it refuses to start without one it can write
/// (`sentinelCheckConfigFile`).
fn check_sentinel_file(file: Option<&str>) -> Result<(), String> {
    let Some(path) = file else {
        return Err("Sentinel needs config file on disk to save state. Exiting...".into());
    };
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map(|_| ())
        .map_err(|e| format!("Sentinel config file {path} is not writable: {}. Exiting...", store::env::strerror(&e)))
}

/// Whether to run as a sentinel: invoked as `store-sentinel`, or with `--sentinel` anywhere
/// (Redis's `checkForSentinelMode`). The flag is removed from the arguments.
pub fn sentinel_mode(args: &mut Vec<String>) -> bool {
    let by_name = std::env::args()
        .next()
        .and_then(|a| std::path::Path::new(&a).file_name().map(|f| f.to_string_lossy().into_owned()))
        .is_some_and(|n| n.contains("sentinel"));
    let before = args.len();
    args.retain(|a| a != "--sentinel");
    by_name || args.len() != before
}

/// Detaches from the terminal (`daemonize yes`): fork, setsid, stdio to /dev/null.
fn daemonize() -> Result<(), String> {
    // SAFETY: called before any thread exists (the runtime is built afterwards), so fork is sound.
    unsafe {
        match libc::fork() {
            -1 => return Err("fork failed".into()),
            0 => {}
            _ => libc::_exit(0),
        }
        libc::setsid();
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            libc::dup2(fd, 0);
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    main_as(false)
}

/// The server's main; `force_sentinel` for the `store-sentinel` binary.
pub fn main_as(force_sentinel: bool) -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let sentinel = sentinel_mode(&mut args) || force_sentinel;
    match args.first().map(|s| s.as_str()) {
        Some("-v") | Some("--version") => {
            println!(
                "store-server v={} (Redis-compatible {}) bits=64",
                env!("CARGO_PKG_VERSION"),
                store::REDIS_COMPAT_VERSION
            );
            return ExitCode::SUCCESS;
        }
        Some("-h") | Some("--help") => usage(),
        _ => {}
    }
    let config = match load_config(&args, sentinel) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let daemon = config.hot.daemonize;
    let mut pidfile = config.hot.pidfile.clone();
    if daemon {
        if pidfile.is_empty() {
            pidfile = "/var/run/redis.pid".into();
        }
        if let Err(e) = daemonize() {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = store::logging::init(&config.hot.loglevel, &config.hot.logfile) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    if !pidfile.is_empty() {
        if let Err(e) = std::fs::write(&pidfile, format!("{}\n", std::process::id())) {
            tracing::warn!("Failed to write PID file: {e}");
        }
    }
    // `io-threads` (Redis's knob, default 1) picks the runtime: with 1, everything runs on one
    // thread as in Redis, which avoids cross-thread wake-ups; with more, connections are served
    // by that many worker threads (commands still execute one at a time under the state lock).
    let io_threads = config.hot.io_threads;
    let built = if io_threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(io_threads).enable_all().build()
    };
    let runtime = match built {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Failed to start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async move {
        let server = match Server::bind(config, Env::production()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let shared = server.shared.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                return;
            };
            tokio::select! {
                biased;
                _ = term.recv() => tracing::warn!("Received SIGTERM scheduling shutdown..."),
                _ = int.recv() => tracing::warn!("Received SIGINT scheduling shutdown..."),
            }
            shared.lock().shutdown = Some(store::server::ShutdownMode::Default);
            shared.shutdown_notify.notify_one();
        });
        server.run().await;
        ExitCode::SUCCESS
    });
    if !pidfile.is_empty() {
        let _ = std::fs::remove_file(&pidfile);
    }
    // Connection tasks may still be parked; the runtime is dropped without waiting for them.
    runtime.shutdown_background();
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_becomes_config_lines() {
        let a: Vec<String> = ["--port", "6380", "--save", "", "--replicaof", "127.0.0.1", "6379"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let text = args_to_lines(&a).unwrap();
        let c = Config::parse(&text, "cmdline").unwrap();
        assert_eq!(c.get("port"), Some("6380"));
        assert_eq!(c.get("save"), Some(""));
        assert_eq!(c.get("replicaof"), Some("127.0.0.1 6379"));
        assert!(args_to_lines(&["6380".to_string()]).is_err());
    }
}
