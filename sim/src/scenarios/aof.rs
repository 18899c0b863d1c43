//! AOF: one server with `appendonly yes` (`appendfsync always` or `everysec`), writers of keys
//! no one else writes, a client asking for BGREWRITEAOF now and then (with small automatic
//! rewrite thresholds too), and the nemesis killing the node (power loss: unsynced data
//! dropped, kept or torn) while the disk has service times, so crashes land inside writes,
//! fsyncs and rewrites.
//!
//! Checked (`invariants::aof_durability`): after the last restart, every acknowledged write is
//! there with its value under `always`; under `everysec` one may be missing only if a crash
//! came within two seconds of its acknowledgement. Every start-up must succeed: a torn tail is
//! cut (`aof-load-truncated yes`), and a crash in the middle of a rewrite leaves files the
//! manifest names consistently.
//!
//! No disk errors here (full disk, failed fsync): with `always` Redis exits on them, and the
//! harness restarts only the nodes it killed itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use invariants::aof_durability::{AckedWrite, Policy};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use store::client::{Client, Resp};

use crate::cluster::{Cluster, LogEntry};
use crate::nemesis::{Nemesis, Swarm};
use crate::trace::Trace;

const DATA_DIR: &str = "/data";

/// (key, value, sent at, acknowledged at: ns since the cluster started).
type Acks = Arc<Mutex<Vec<(String, String, u128, u128)>>>;

pub async fn run(seed: u64, trace: Trace) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cluster = Cluster::new(trace.clone());
    let (policy, fsync) = if rng.gen_bool(0.5) { (Policy::Always, "always") } else { (Policy::EverySec, "everysec") };
    let rewrite_min = ["1mb", "16kb", "4kb"][rng.gen_range(0..3)];
    // The base as an RDB image, or (aof-use-rdb-preamble no) as commands.
    let preamble = if rng.gen_bool(0.7) { "yes" } else { "no" };
    cluster.add_server(
        &format!(
            "dir {DATA_DIR}\nsave \"\"\nappendonly yes\nappendfsync {fsync}\nauto-aof-rewrite-min-size {rewrite_min}\nauto-aof-rewrite-percentage 50\naof-use-rdb-preamble {preamble}\n"
        ),
        seed,
    );
    let disk = cluster.servers[0].disk.clone();
    disk.set_latency(rng.gen_range(50..2000), rng.gen_range(500..20_000));
    let addr = cluster.servers[0].addr.clone();
    let mut swarm = Swarm::draw(&mut rng, true);
    swarm.kill = swarm.kill || rng.gen_bool(0.8);
    swarm.disk = false;
    if swarm.interval_ms.0 >= 1000 {
        swarm.interval_ms = (100, 800);
        swarm.duration_ms = (100, 800);
    }
    store::fault::set_buggify(swarm.buggify);
    let run_for = Duration::from_millis(rng.gen_range(2_000..8_000));
    cluster.record(format!(
        "aof: appendfsync {fsync}, rdb preamble {preamble}, rewrite min {rewrite_min}, {} ms; faults: {}",
        run_for.as_millis(),
        swarm.describe()
    ));
    let acks: Acks = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for c in 0..rng.gen_range(1..=3u32) {
        let node = cluster.client_node(&format!("writer-{c}"));
        let (addr, s, a, start) = (addr.clone(), rng.gen::<u64>(), acks.clone(), cluster.start());
        tasks.push(node.spawn(async move { writer(c, addr, s, run_for, a, start).await }));
    }
    let rewriter = cluster.client_node("rewriter");
    let (a, s) = (addr.clone(), rng.gen::<u64>());
    tasks.push(rewriter.spawn(async move { rewrites(a, s, run_for).await }));
    let mut nemesis = Nemesis::new(swarm, ChaCha8Rng::seed_from_u64(rng.gen()));
    nemesis.run(&cluster, run_for).await;
    for t in tasks {
        t.await.map_err(|e| format!("client task failed: {e}"))?;
    }
    store::fault::set_buggify(false);
    let failures = startup_failures(&cluster);
    if !failures.is_empty() {
        return Err(format!("aof: a restart was refused: {failures:?}"));
    }
    let acked = acks.lock().expect("acks").clone();
    let writes = read_back(&mut cluster, &addr, acked).await?;
    let (crashes, paused) = crashes_and_pauses(&cluster);
    let stats = invariants::aof_durability::check(policy, &writes, &crashes, &paused).map_err(|v| v.to_string())?;
    if stats.crashes > 0 && stats.acked > 0 {
        store::fault::probe(if policy == Policy::Always { "aof.always_checked" } else { "aof.everysec_checked" });
    }
    store::fault::probe_n("aof.acked_writes", stats.acked);
    store::fault::probe_n("aof.lost_in_window", stats.lost_in_window);
    cluster.record(format!(
        "aof: {} acknowledged writes, {} lost ({} within the everysec window), {} crashes",
        stats.acked, stats.lost, stats.lost_in_window, stats.crashes
    ));
    Ok(())
}

/// Writes `w<c>:<n>` = a value of 1-300 bytes, each key once.
async fn writer(c: u32, addr: String, seed: u64, run_for: Duration, acks: Acks, start: madsim::time::Instant) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let end = madsim::time::Instant::now() + run_for;
    let mut conn: Option<Client> = None;
    let mut n = 0u64;
    while madsim::time::Instant::now() < end {
        madsim::time::sleep(Duration::from_millis(rng.gen_range(1..20))).await;
        let Some(cl) = conn.as_mut() else {
            conn = Client::connect(&addr, Duration::from_millis(500)).await.ok();
            continue;
        };
        n += 1;
        let key = format!("w{c}:{n}");
        let value = format!("{n}:{}", "x".repeat(rng.gen_range(1..300)));
        let sent = start.elapsed().as_nanos();
        match cl.cmd(&["SET", &key, &value]).await {
            Ok(Resp::Simple(s)) if s == "OK" => {
                acks.lock().expect("acks").push((key, value, sent, start.elapsed().as_nanos()));
            }
            Ok(_) => {}
            Err(_) => conn = None,
        }
    }
}

async fn rewrites(addr: String, seed: u64, run_for: Duration) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let end = madsim::time::Instant::now() + run_for;
    while madsim::time::Instant::now() < end {
        madsim::time::sleep(Duration::from_millis(rng.gen_range(200..1500))).await;
        let Ok(mut c) = Client::connect(&addr, Duration::from_millis(800)).await else { continue };
        if let Ok(Resp::Simple(s)) = c.cmd(&["BGREWRITEAOF"]).await {
            if s.contains("started") {
                store::fault::probe("aof.bgrewriteaof_started");
            }
        }
    }
}

/// The harness's own record: when it killed the node, and when it held it paused.
fn crashes_and_pauses(cluster: &Cluster) -> (Vec<u128>, Vec<(u128, u128)>) {
    let observed = cluster.servers[0].observed.lock().expect("observed");
    let (mut crashes, mut paused, mut since) = (Vec::new(), Vec::new(), None);
    for e in observed.log.iter() {
        match e {
            LogEntry::Crash { at_ns } => crashes.push(*at_ns),
            LogEntry::Paused { paused: true, at_ns } => since = Some(*at_ns),
            LogEntry::Paused { paused: false, at_ns } => {
                if let Some(s) = since.take() {
                    paused.push((s, *at_ns));
                }
            }
            _ => {}
        }
    }
    if let Some(s) = since {
        paused.push((s, u128::MAX));
    }
    (crashes, paused)
}

fn startup_failures(cluster: &Cluster) -> Vec<String> {
    cluster.servers[0].observed.lock().expect("observed").startup_failures.clone()
}

/// Reads every acknowledged key back from the healed server.
async fn read_back(
    cluster: &mut Cluster,
    addr: &str,
    acked: Vec<(String, String, u128, u128)>,
) -> Result<Vec<AckedWrite>, String> {
    let node = cluster.client_node("auditor");
    let a = addr.to_string();
    node.spawn(async move {
        let mut c = Cluster::connect(&a, Duration::from_secs(2), Duration::from_secs(20)).await?;
        let mut out = Vec::with_capacity(acked.len());
        for chunk in acked.chunks(500) {
            let mut args: Vec<&[u8]> = vec![b"MGET"];
            args.extend(chunk.iter().map(|(k, _, _, _)| k.as_bytes()));
            let r = c.call(&args).await.map_err(|e| format!("MGET after heal: {e}"))?;
            let items = r.items().ok_or("MGET answered no array")?;
            for ((key, value, sent, at), item) in chunk.iter().zip(items) {
                let found = item.as_text().map(String::from);
                out.push(AckedWrite {
                    key: key.clone(),
                    value: value.clone(),
                    invoked_at_ns: *sent,
                    acked_at_ns: *at,
                    found,
                });
            }
        }
        Ok::<_, String>(out)
    })
    .await
    .map_err(|e| format!("auditor failed: {e}"))?
}
