//! The seed sweep and single-seed replay (madsim flavour).
//!
//! Each seed runs in a fresh madsim runtime seeded with it. A run fails if its scenario returns
//! an error, panics (an assertion in server or checker code), or passes the simulated time limit
//! (a liveness failure). On failure the runner prints the seed, the reason, the tail of the trace
//! and the one command that replays it. A sample of seeds is run twice and their trace hashes
//! compared: the determinism self-check.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use crate::scenarios::{self, Scenario};
use crate::trace::Trace;

/// Simulated seconds a run may take before it counts as hung.
pub const RUN_TIME_LIMIT_S: u64 = 3600;

pub struct Outcome {
    pub trace_hash: u64,
    pub events: u64,
    pub simulated: Duration,
    /// Coverage probes reached in this run, with counts.
    pub probes: BTreeMap<&'static str, u64>,
}

pub struct Failure {
    pub message: String,
    pub tail: Vec<crate::trace::Event>,
    pub trace_hash: u64,
}

/// Runs one seed of one scenario, with the given planted bugs active.
pub fn run_seed(scenario: &Scenario, seed: u64, verbose: bool, planted: &[String]) -> Result<Outcome, Failure> {
    // Fault points, planted bugs and probes are per run; the scenario turns buggify on if its
    // swarm says so.
    store::fault::reset(false, planted);
    let trace = Trace::new(verbose);
    let mut rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    rt.set_time_limit(Duration::from_secs(RUN_TIME_LIMIT_S));
    let t = trace.clone();
    let run = scenario.run;
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async move {
            let start = madsim::time::Instant::now();
            let r = run(seed, t).await;
            let elapsed = start.elapsed();
            // The scenario's cluster killed its nodes when dropped; one more turn of the executor
            // drops their tasks (see `Cluster`'s Drop), so memory stays flat across seeds.
            madsim::time::sleep(Duration::from_millis(1)).await;
            (r, elapsed)
        })
    }));
    match result {
        Ok((Ok(()), simulated)) => Ok(Outcome {
            trace_hash: trace.hash(),
            events: trace.count(),
            simulated,
            probes: store::fault::take_probes(),
        }),
        Ok((Err(message), _)) => Err(Failure { message, tail: trace.tail(), trace_hash: trace.hash() }),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err(Failure { message: format!("panic: {message}"), tail: trace.tail(), trace_hash: trace.hash() })
        }
    }
}

fn replay_command(scenario: &str, seed: u64, planted: &[String]) -> String {
    let mut cmd = format!("cargo run -p sim -- replay --scenario {scenario} --seed {seed}");
    for bug in planted {
        cmd.push_str(&format!(" --plant {bug}"));
    }
    cmd
}

fn report_failure(scenario: &str, seed: u64, planted: &[String], f: &Failure) {
    eprintln!("\n=== FAILED scenario={scenario} seed={seed} ===");
    eprintln!("reason: {}", f.message);
    eprintln!("trace hash: {:016x}", f.trace_hash);
    eprintln!("last events:");
    for e in f.tail.iter().rev().take(40).collect::<Vec<_>>().into_iter().rev() {
        eprintln!("  {}", e.line());
    }
    match crate::timeline::write(scenario, seed, &f.message, &f.tail) {
        Ok((txt, html)) => eprintln!(
            "timeline: {}
          {}",
            txt.display(),
            html.display()
        ),
        Err(e) => eprintln!("could not write the timeline: {e}"),
    }
    eprintln!("replay with:\n  {}", replay_command(scenario, seed, planted));
}

struct Args {
    command: String,
    scenario: Option<String>,
    seeds: Option<u64>,
    start: u64,
    seed: Option<u64>,
    verbose: bool,
    planted: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        command: args.first().cloned().unwrap_or_else(|| "sweep".into()),
        scenario: None,
        seeds: None,
        start: 0,
        seed: None,
        verbose: false,
        planted: Vec::new(),
    };
    let mut i = 1;
    let num = |v: Option<&String>, what: &str| -> Result<u64, String> {
        v.ok_or(format!("{what} needs a value"))?.parse::<u64>().map_err(|e| format!("{what}: {e}"))
    };
    while i < args.len() {
        match args[i].as_str() {
            "--scenario" => a.scenario = Some(args.get(i + 1).cloned().ok_or("--scenario needs a value")?),
            "--seeds" => a.seeds = Some(num(args.get(i + 1), "--seeds")?),
            "--start" => a.start = num(args.get(i + 1), "--start")?,
            "--seed" => a.seed = Some(num(args.get(i + 1), "--seed")?),
            "--plant" => a.planted.push(args.get(i + 1).cloned().ok_or("--plant needs a bug name")?),
            "--verbose" => {
                a.verbose = true;
                i += 1;
                continue;
            }
            other => return Err(format!("unknown argument {other}")),
        }
        i += 2;
    }
    Ok(a)
}

/// Entry point of the madsim flavour; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let a = match parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\nusage: sim sweep [--scenario NAME] [--seeds N] [--start S] | sim replay --scenario NAME --seed N [--verbose]");
            return 2;
        }
    };
    match a.command.as_str() {
        "replay" => {
            let (Some(name), Some(seed)) = (a.scenario.as_deref(), a.seed) else {
                eprintln!("replay needs --scenario and --seed");
                return 2;
            };
            let Some(sc) = scenarios::find(name) else {
                eprintln!("unknown scenario {name}");
                return 2;
            };
            match run_seed(sc, seed, a.verbose, &a.planted) {
                Ok(o) => {
                    println!(
                        "scenario={name} seed={seed} ok events={} simulated={:.3}s",
                        o.events,
                        o.simulated.as_secs_f64()
                    );
                    println!("trace hash: {:016x}", o.trace_hash);
                    0
                }
                Err(f) => {
                    report_failure(name, seed, &a.planted, &f);
                    1
                }
            }
        }
        "sweep" => sweep(&a),
        "planted" => planted(&a),
        "durability" => durability(&a),
        "list" => {
            for s in scenarios::ALL {
                println!("{:<16} {}", s.name, s.about);
            }
            0
        }
        other => {
            eprintln!("unknown command {other}");
            2
        }
    }
}

/// Seeds recorded in `seeds/` for a scenario (each once failed; each is replayed every sweep).
fn regression_seeds(scenario: &str) -> Vec<u64> {
    let dir = crate::launcher::workspace_root().join("seeds");
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return out;
    };
    let mut files: Vec<_> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "txt")).collect();
    files.sort();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let mut parts = line.split_whitespace();
            if let (Some(sc), Some(seed)) = (parts.next(), parts.next()) {
                if sc == scenario {
                    if let Ok(s) = seed.parse() {
                        out.push(s);
                    }
                }
            }
        }
    }
    out
}

fn sweep(a: &Args) -> i32 {
    let selected: Vec<&Scenario> = match a.scenario.as_deref() {
        None | Some("all") => scenarios::ALL.iter().collect(),
        Some(name) => match scenarios::find(name) {
            Some(s) => vec![s],
            None => {
                eprintln!("unknown scenario {name}");
                return 2;
            }
        },
    };
    let whole_suite = selected.len() > 1;
    for sc in selected {
        let n = a.seeds.unwrap_or(sc.default_seeds);
        let n = match sc.suite_seeds_max {
            Some(max) if whole_suite => n.min(max),
            _ => n,
        };
        let regressions = regression_seeds(sc.name);
        let seeds: Vec<u64> = regressions.iter().copied().chain(a.start..a.start + n).collect();
        let wall = Instant::now();
        let mut simulated = Duration::ZERO;
        let mut events = 0;
        let mut hashes = Vec::with_capacity(seeds.len());
        let mut coverage: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
        for &seed in &seeds {
            match run_seed(sc, seed, false, &[]) {
                Ok(o) => {
                    simulated += o.simulated;
                    events += o.events;
                    hashes.push((seed, o.trace_hash));
                    for (probe, hits) in o.probes {
                        let e = coverage.entry(probe).or_default();
                        e.0 += 1;
                        e.1 += hits;
                    }
                }
                Err(f) => {
                    report_failure(sc.name, seed, &[], &f);
                    return 1;
                }
            }
        }
        let wall_s = wall.elapsed().as_secs_f64().max(1e-9);
        println!(
            "scenario {:<12} {} seeds ({} regression) passed | {:.1}s wall | {:.0} seeds/s | {:.0} simulated s | {:.0}x real time | {} events",
            sc.name,
            seeds.len(),
            regressions.len(),
            wall_s,
            seeds.len() as f64 / wall_s,
            simulated.as_secs_f64(),
            simulated.as_secs_f64() / wall_s,
            events
        );
        println!("coverage ({}): probe, seeds that reached it, total hits", sc.name);
        for (probe, (seeds_hit, hits)) in &coverage {
            let required = if sc.required_probes.contains(probe) { " (required)" } else { "" };
            println!("  {probe:<36} {seeds_hit:>6} seeds {hits:>9} hits{required}");
        }
        let missing: Vec<&&str> = sc.required_probes.iter().filter(|p| !coverage.contains_key(**p)).collect();
        if !missing.is_empty() {
            eprintln!("coverage FAILED for {}: required probes never reached: {:?}", sc.name, missing);
            return 1;
        }
        // Determinism self-check: every 100th seed (at least 3) runs again, hashes must agree.
        let sample: Vec<(u64, u64)> = hashes.iter().copied().step_by((hashes.len() / 10).max(1)).take(10).collect();
        for (seed, hash) in &sample {
            match run_seed(sc, *seed, false, &[]) {
                Ok(o) if o.trace_hash == *hash => {}
                Ok(o) => {
                    eprintln!(
                        "NON-DETERMINISM scenario={} seed={seed}: trace hash {:016x} then {:016x}\nreplay with:\n  {}",
                        sc.name,
                        hash,
                        o.trace_hash,
                        replay_command(sc.name, *seed, &[])
                    );
                    return 1;
                }
                Err(f) => {
                    eprintln!("NON-DETERMINISM: seed {seed} passed once and failed on re-run");
                    report_failure(sc.name, *seed, &[], &f);
                    return 1;
                }
            }
        }
        println!(
            "determinism: {} seeds re-run, trace hashes identical (e.g. seed {} -> {:016x})",
            sample.len(),
            sample[0].0,
            sample[0].1
        );
    }
    0
}

/// Seeds within which every planted bug must be caught.
pub const PLANTED_SEEDS_MAX: u64 = 300;

/// Runs each planted bug (or the one named by --plant) against every scenario until some seed
/// fails; succeeds only if every bug is caught within `PLANTED_SEEDS_MAX` seeds.
fn planted(a: &Args) -> i32 {
    let bugs: Vec<String> = if a.planted.is_empty() {
        store::fault::PLANTED_BUGS.iter().map(|(n, _)| n.to_string()).collect()
    } else {
        a.planted.clone()
    };
    let limit = a.seeds.unwrap_or(PLANTED_SEEDS_MAX);
    let mut escaped = Vec::new();
    for bug in &bugs {
        let mut caught = None;
        'search: for seed in a.start..a.start + limit {
            for sc in scenarios::ALL {
                if let Err(f) = run_seed(sc, seed, false, std::slice::from_ref(bug)) {
                    caught = Some((sc.name, seed, f.message));
                    break 'search;
                }
            }
        }
        match caught {
            Some((sc, seed, msg)) => {
                let short: String = msg.chars().take(110).collect();
                println!("planted {bug:<20} caught by {sc} at seed {seed}: {short}");
            }
            None => {
                println!("planted {bug:<20} NOT caught within {limit} seeds");
                escaped.push(bug.clone());
            }
        }
    }
    if escaped.is_empty() {
        println!("all {} planted bugs caught within {limit} seeds", bugs.len());
        0
    } else {
        eprintln!("planted bugs not caught: {escaped:?}");
        1
    }
}

/// `sim durability [--seeds N]`: the durability table (issue 14). Each `durability-*` scenario
/// (and `sentinel`, persistence off) runs N seeds (default 200); per configuration: seeds,
/// writes acknowledged, lost (count, share, the worst seed with its replay command), and the
/// mean unavailability per seed (time without an acknowledged write, beyond one second per
/// gap), and the seeds left stuck (a replication loop after FAILOVER and a crash: Redis's
/// hazard, measured; their lost writes are not counted, there is no converged dataset). A
/// failing seed fails the command. Prints a Markdown table.
fn durability(a: &Args) -> i32 {
    let seeds = a.seeds.unwrap_or(200);
    let start = a.start;
    let mut rows = Vec::new();
    let mut failed = false;
    let names = std::iter::once("sentinel")
        .chain(scenarios::ALL.iter().map(|s| s.name).filter(|n| n.starts_with("durability-")));
    for name in names {
        let Some(sc) = scenarios::find(name) else { continue };
        let (mut acked, mut lost, mut unavailable_ms, mut worst) = (0u64, 0u64, 0u64, (0u64, start));
        let mut stuck = 0u64;
        for seed in start..start.saturating_add(seeds) {
            match run_seed(sc, seed, false, &a.planted) {
                Ok(o) => {
                    let get = |p: &str| o.probes.get(p).copied().unwrap_or(0);
                    let l = get("sentinel.acked_writes_lost");
                    acked += get("sentinel.acked_writes");
                    lost += l;
                    unavailable_ms += get("durability.unavailable_ms");
                    stuck += get("durability.stuck_replication_loop");
                    if l > worst.0 {
                        worst = (l, seed);
                    }
                }
                Err(f) => {
                    report_failure(name, seed, &a.planted, &f);
                    failed = true;
                }
            }
        }
        let share = if acked == 0 { 0.0 } else { lost as f64 * 100.0 / acked as f64 };
        let worst_cell = if worst.0 == 0 {
            "none".to_string()
        } else {
            format!("{} lost: `{}`", worst.0, replay_command(name, worst.1, &a.planted))
        };
        let about = if name == "sentinel" {
            scenarios::sentinel::NO_PERSISTENCE.name.to_string()
        } else {
            let i = scenarios::ALL
                .iter()
                .filter(|s| s.name.starts_with("durability-"))
                .position(|s| s.name == name)
                .unwrap_or(0);
            scenarios::sentinel::PROFILES[i].name.to_string()
        };
        let mean_unavail = unavailable_ms as f64 / 1000.0 / seeds.max(1) as f64;
        rows.push(format!(
            "| {about} (`{name}`) | {seeds} | {acked} | {lost} ({share:.1}%) | {worst_cell} | {mean_unavail:.1} s | {stuck} |"
        ));
        eprintln!("durability: {name} done");
    }
    println!(
        "| configuration | seeds | writes acknowledged | lost (share) | worst seed | unavailable per seed (mean) | stuck seeds |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|");
    for r in rows {
        println!("{r}");
    }
    i32::from(failed)
}
