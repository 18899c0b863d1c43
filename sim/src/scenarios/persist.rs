//! Persist: one server with RDB snapshots, writers, a client that asks for SAVE and BGSAVE, and
//! the nemesis killing the node (power loss: unsynced data dropped, kept or torn), failing
//! fsyncs and filling the disk. The disk has service times, so crashes land inside saves.
//!
//! Checked over the node's observation log (`persistence_after_crash`):
//! - after every crash, the restarted server loads exactly the snapshot of the last save that
//!   reported success, or of a save that was in flight at the crash: never a mix, never an
//!   older file, never nothing when a save had succeeded;
//! - every start-up succeeds (an intact file always loads);
//! - at the end, a bit flipped in the file at rest must make the server refuse to start:
//!   corruption is always detected.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use store::client::{Client, Resp};
use store::db::digest::Digest;
use store::observe::Observation;

use crate::cluster::{Cluster, LogEntry};
use crate::nemesis::{Nemesis, Swarm};
use crate::trace::Trace;

const DATA_DIR: &str = "/data";

pub async fn run(seed: u64, trace: Trace) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cluster = Cluster::new(trace.clone());
    // Either explicit saves only, or save points that fire often as well.
    let save_line = if rng.gen_bool(0.5) { "save \"\"" } else { "save 1 1" };
    cluster.add_server(&format!("dir {DATA_DIR}\n{save_line}\nstop-writes-on-bgsave-error yes\n"), seed);
    let disk = cluster.servers[0].disk.clone();
    disk.set_latency(rng.gen_range(50..2000), rng.gen_range(500..20_000));
    let addr = cluster.servers[0].addr.clone();
    let mut swarm = Swarm::draw(&mut rng, true);
    // Crashes are the point of this scenario.
    swarm.kill = swarm.kill || rng.gen_bool(0.7);
    if swarm.interval_ms.0 >= 1000 {
        swarm.interval_ms = (100, 800);
        swarm.duration_ms = (100, 800);
    }
    store::fault::set_buggify(swarm.buggify);
    let run_for = Duration::from_millis(rng.gen_range(2_000..6_000));
    cluster.record(format!("persist: {save_line}, {} ms; faults: {}", run_for.as_millis(), swarm.describe()));
    let mut tasks = Vec::new();
    for c in 0..rng.gen_range(1..=3u32) {
        let node = cluster.client_node(&format!("writer-{c}"));
        let (addr, s) = (addr.clone(), rng.gen::<u64>());
        tasks.push(node.spawn(async move { writer(addr, s, run_for).await }));
    }
    let saver = cluster.client_node("saver");
    let (a, s) = (addr.clone(), rng.gen::<u64>());
    tasks.push(saver.spawn(async move { save_requests(a, s, run_for).await }));
    let mut nemesis = Nemesis::new(swarm, ChaCha8Rng::seed_from_u64(rng.gen()));
    nemesis.run(&cluster, run_for).await;
    for t in tasks {
        t.await.map_err(|e| format!("client task failed: {e}"))?;
    }
    // The restart that healing did has loaded by now; judge the log before liveness, so that a
    // refused start-up is reported as what it is.
    madsim::time::sleep(Duration::from_millis(200)).await;
    check_log(&cluster)?;
    // Liveness: the healed server serves again.
    let checker = cluster.client_node("checker");
    let a = addr.clone();
    checker
        .spawn(async move {
            let mut c = Cluster::connect(&a, Duration::from_secs(2), Duration::from_secs(20)).await?;
            c.cmd(&["PING"]).await.map_err(|e| format!("PING after heal: {e}"))
        })
        .await
        .map_err(|e| format!("checker task failed: {e}"))?
        .map_err(|e| format!("liveness: {e}"))?;
    corruption_is_detected(&mut cluster, &mut rng).await
}

async fn writer(addr: String, seed: u64, run_for: Duration) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let end = madsim::time::Instant::now() + run_for;
    let mut conn: Option<Client> = None;
    while madsim::time::Instant::now() < end {
        madsim::time::sleep(Duration::from_millis(rng.gen_range(1..20))).await;
        let Some(c) = conn.as_mut() else {
            conn = Client::connect(&addr, Duration::from_millis(500)).await.ok();
            continue;
        };
        let key = format!("k{}", rng.gen_range(0..16));
        let value = "x".repeat(rng.gen_range(1..300));
        let r = match rng.gen_range(0..4) {
            0 => c.cmd(&["DEL", &key]).await,
            1 => c.cmd(&["RPUSH", &format!("l{}", rng.gen_range(0..4)), &value]).await,
            2 => c.cmd(&["INCR", &format!("n{}", rng.gen_range(0..4))]).await,
            _ => c.cmd(&["SET", &key, &value]).await,
        };
        if r.is_err() {
            conn = None;
        }
    }
}

async fn save_requests(addr: String, seed: u64, run_for: Duration) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let end = madsim::time::Instant::now() + run_for;
    while madsim::time::Instant::now() < end {
        madsim::time::sleep(Duration::from_millis(rng.gen_range(20..300))).await;
        let Ok(mut c) = Client::connect(&addr, Duration::from_millis(800)).await else { continue };
        let cmd = if rng.gen_bool(0.5) { "SAVE" } else { "BGSAVE" };
        if let Ok(Resp::Error(e)) = c.cmd(&[cmd]).await {
            if e.contains("already in progress") {
                store::fault::probe("persist.concurrent_save_refused");
            }
        }
    }
}

/// Walks the node's log: saves started and completed, crashes, loads.
fn check_log(cluster: &Cluster) -> Result<(), String> {
    let observed = cluster.servers[0].observed.lock().expect("observed");
    if let Some(f) = observed.startup_failures.first() {
        return Err(format!("persistence: the server refused to start after a crash: {f}"));
    }
    if observed.dropped > 0 {
        return Err("persistence: observation log overflowed; raise OBSERVATIONS_MAX".into());
    }
    let hex = |d: &Digest| store::db::digest::to_hex(d);
    // The file's content as far as completed saves go: None = no file yet (empty dataset).
    let mut last_done: Option<Digest> = None;
    let mut in_flight: Vec<Digest> = Vec::new();
    let mut crashed = false;
    let mut crashes_checked = 0;
    for entry in observed.log.iter() {
        match entry {
            LogEntry::Server(Observation::SaveStarted { digest }) => in_flight.push(*digest),
            LogEntry::Server(Observation::Saved { digest }) => {
                if let Some(i) = in_flight.iter().position(|d| d == digest) {
                    in_flight.remove(i);
                }
                last_done = Some(*digest);
            }
            LogEntry::Restart | LogEntry::ClockJump { .. } | LogEntry::Paused { .. } => {}
            LogEntry::Crash { .. } => {
                if !in_flight.is_empty() {
                    store::fault::probe("persist.crash_during_save");
                }
                crashed = true;
            }
            LogEntry::Server(Observation::Loaded { digest, .. }) => {
                if crashed {
                    let mut allowed: Vec<Digest> = in_flight.clone();
                    allowed.push(last_done.unwrap_or([0; 3]));
                    if !allowed.contains(digest) {
                        return Err(format!(
                            "persistence: after a crash the server loaded a dataset with digest {} but the last completed save had {} and saves in flight had {:?}",
                            hex(digest),
                            last_done.map(|d| hex(&d)).unwrap_or_else(|| "no file".into()),
                            in_flight.iter().map(hex).collect::<Vec<_>>()
                        ));
                    }
                    crashes_checked += 1;
                }
                // What was loaded is now what the file holds.
                last_done = if *digest == [0; 3] && last_done.is_none() { None } else { Some(*digest) };
                in_flight.clear();
                crashed = false;
            }
            LogEntry::Server(_) => {}
        }
    }
    if crashes_checked > 0 {
        store::fault::probe("persist.restart_checked");
    }
    Ok(())
}

/// Kills the healed node, flips one bit of dump.rdb, restarts: the server must refuse to load it.
async fn corruption_is_detected(cluster: &mut Cluster, rng: &mut ChaCha8Rng) -> Result<(), String> {
    let s = &cluster.servers[0];
    let path = std::path::Path::new(DATA_DIR).join("dump.rdb");
    if !s.disk.exists(&path) {
        return Ok(());
    }
    cluster.handle.kill(s.node.id());
    let bit = rng.gen::<u64>();
    s.disk.corrupt(&path, bit).map_err(|e| e.to_string())?;
    cluster.record(format!("corrupting bit {} of dump.rdb, then restarting", bit % (8 * 1 << 40)));
    let failures_before = s.observed.lock().expect("observed").startup_failures.len();
    cluster.handle.restart(s.node.id());
    madsim::time::sleep(Duration::from_millis(500)).await;
    let failures = s.observed.lock().expect("observed").startup_failures.clone();
    if failures.len() == failures_before {
        return Err("persistence: a dump.rdb with a flipped bit was loaded without complaint".into());
    }
    store::fault::probe("persist.corruption_detected");
    cluster.record(format!("start-up refused as it should: {}", failures.last().expect("one")));
    Ok(())
}
