//! Replication: a master, one or two replicas (sometimes chained: a replica of a replica), under
//! the nemesis, with writers on the master, readers and would-be writers on the replicas, WAIT,
//! and (some seeds) min-replicas-to-write.
//!
//! Checked on every seed, by the checkers in `invariants/` (each states its property and the
//! Redis behaviour behind it), over the nodes' observation logs converted to plain data:
//! - `replica_matches_master`: whenever a replica has applied (or acknowledged) offset X under
//!   replication ID R, its dataset digest equals the master's at X under R, so its history is a
//!   prefix of the master's stream: no write applied twice, none skipped;
//! - `readonly_replica`: every write sent to a read-only replica is refused READONLY;
//! - `wait_bound`: WAIT never reports more replicas than had acknowledged the client's offset
//!   (and, checked by the client, never more than exist);
//! - `min_replicas_gate`: every accepted write had enough good replicas by the master's own
//!   count, every NOREPLICAS had too few;
//! - `partial_resync_when_covered`: +CONTINUE exactly when the backlog covers the gap;
//! - liveness (here): after faults heal, every replica catches up with the master's offset and
//!   all nodes hold the same dataset (DEBUG DIGEST), within `CONVERGE_BOUND`.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use store::client::{Client, Resp};
use store::observe::Observation;

use crate::cluster::{Cluster, LogEntry};
use crate::nemesis::{Nemesis, Swarm};
use crate::trace::Trace;

pub const CONVERGE_BOUND: Duration = Duration::from_secs(60);
const PERSISTENCE_SALT: u64 = 0x7065_7273_6973_7431;

pub async fn run(seed: u64, trace: Trace) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cluster = Cluster::new(trace.clone());
    // Both payload framings: diskless (`$EOF:` mark, Redis 7's default) and disk-style (`$len`).
    let diskless = if rng.gen_bool(0.5) {
        "repl-diskless-sync yes\nrepl-diskless-sync-delay 0\n"
    } else {
        "repl-diskless-sync no\n"
    };
    // On some seeds every node saves often, so a restarted node loads a (possibly stale or torn)
    // RDB with its replication id and offset and resumes with PSYNC, and disk faults (fsync
    // errors, a full disk) meet full syncs and saves. A separate stream decides, so the other
    // draws of a seed are unchanged.
    let persistent = ChaCha8Rng::seed_from_u64(seed ^ PERSISTENCE_SALT).gen_bool(0.4);
    let save = if persistent { "save 1 1" } else { "save \"\"" };
    let common = format!("{save}\nrepl-timeout 3\nrepl-ping-replica-period 1\nrepl-backlog-size 16kb\n{diskless}");
    let common = common.as_str();
    let gate = rng.gen_bool(0.3);
    let master_cfg =
        if gate { format!("{common}min-replicas-to-write 1\nmin-replicas-max-lag 2\n") } else { common.to_string() };
    cluster.add_server(&master_cfg, seed);
    let replicas = rng.gen_range(1..=2usize);
    let chained = replicas == 2 && rng.gen_bool(0.5);
    for i in 0..replicas {
        let upstream = if chained && i == 1 { "10.0.0.2" } else { "10.0.0.1" };
        cluster.add_server(&format!("{common}replicaof {upstream} 6379\n"), seed);
    }
    let mut swarm = Swarm::draw(&mut rng, true);
    // Without persistence a disk fault would have no effect (and would only claim coverage).
    swarm.disk &= persistent;
    store::fault::set_buggify(swarm.buggify);
    let run_for = Duration::from_millis(rng.gen_range(3_000..8_000));
    cluster.record(format!(
        "replication: {replicas} replica(s){}{}{}; {} ms; faults: {}",
        if chained { " chained" } else { "" },
        if persistent { ", save 1 1" } else { "" },
        if gate { ", min-replicas-to-write 1" } else { "" },
        run_for.as_millis(),
        swarm.describe()
    ));
    let master_addr = cluster.servers[0].addr.clone();
    let replica_addrs: Vec<String> = cluster.servers[1..].iter().map(|s| s.addr.clone()).collect();
    let mut tasks = Vec::new();
    for c in 0..rng.gen_range(1..=3u32) {
        let node = cluster.client_node(&format!("writer-{c}"));
        let (a, s) = (master_addr.clone(), rng.gen::<u64>());
        let n = replicas;
        tasks.push(node.spawn(async move { writer(a, s, run_for, n).await }));
    }
    let node = cluster.client_node("replica-client");
    let (ra, s) = (replica_addrs.clone(), rng.gen::<u64>());
    let replica_writes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let rw = replica_writes.clone();
    tasks.push(node.spawn(async move { replica_client(ra, s, run_for, rw).await }));
    let mut nemesis = Nemesis::new(swarm, ChaCha8Rng::seed_from_u64(rng.gen()));
    nemesis.run(&cluster, run_for).await;
    for t in tasks {
        t.await.map_err(|e| format!("client task failed: {e}"))??;
    }
    // Fault points are faults too: they heal with the others before the liveness phase.
    store::fault::set_buggify(false);
    let converged = converge(&mut cluster, master_addr, replica_addrs).await;
    // The per-offset check pinpoints a divergence better than the final digests: judge it first.
    check_logs(&cluster)?;
    let writes = replica_writes.lock().expect("replica writes");
    invariants::readonly_replica::check(&writes).map_err(|v| v.to_string())?;
    if !writes.is_empty() {
        store::fault::probe("repl.readonly_seen");
    }
    converged
}

async fn writer(addr: String, seed: u64, run_for: Duration, replicas: usize) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let end = madsim::time::Instant::now() + run_for;
    let mut conn: Option<Client> = None;
    while madsim::time::Instant::now() < end {
        madsim::time::sleep(Duration::from_millis(rng.gen_range(1..25))).await;
        let Some(c) = conn.as_mut() else {
            conn = Client::connect(&addr, Duration::from_millis(700)).await.ok();
            continue;
        };
        let k = format!("k{}", rng.gen_range(0..12));
        let db = rng.gen_range(0..3).to_string();
        let r = match rng.gen_range(0..10) {
            0 => c.cmd(&["SELECT", &db]).await,
            1 => c.cmd(&["DEL", &k]).await,
            2 => c.cmd(&["RPUSH", &format!("l{}", rng.gen_range(0..3)), &rng.gen::<u16>().to_string()]).await,
            3 => c.cmd(&["EXPIRE", &k, &rng.gen_range(1..3).to_string()]).await,
            4 => c.cmd(&["SPOP", &format!("s{}", rng.gen_range(0..2))]).await,
            5 => c.cmd(&["SADD", &format!("s{}", rng.gen_range(0..2)), &rng.gen_range(0..20).to_string()]).await,
            6 => {
                let ops: Vec<Vec<Vec<u8>>> = vec![
                    vec![b"MULTI".to_vec()],
                    vec![b"INCR".to_vec(), k.clone().into_bytes()],
                    vec![b"SET".to_vec(), b"last".to_vec(), k.clone().into_bytes(), b"PX".to_vec(), b"1500".to_vec()],
                    vec![b"EXEC".to_vec()],
                ];
                c.pipeline(&ops).await.map(|mut r| r.pop().unwrap_or(Resp::Bulk(None)))
            }
            7 => {
                let r = c.cmd(&["WAIT", "1", "50"]).await;
                if let Ok(Resp::Int(n)) = &r {
                    if *n < 0 || *n as usize > replicas {
                        return Err(format!("WAIT reported {n} replicas but there are {replicas}"));
                    }
                    if *n > 0 {
                        store::fault::probe("repl.wait_acknowledged");
                    }
                }
                r
            }
            8 => c.cmd(&["INCRBYFLOAT", &format!("f{}", rng.gen_range(0..2)), "0.1"]).await,
            _ => c.cmd(&["SET", &k, &rng.gen::<u32>().to_string()]).await,
        };
        match r {
            Ok(Resp::Error(e)) if e.starts_with("NOREPLICAS") => store::fault::probe("repl.client_saw_noreplicas"),
            Ok(_) => {}
            Err(_) => conn = None,
        }
    }
    Ok(())
}

async fn replica_client(
    addrs: Vec<String>,
    seed: u64,
    run_for: Duration,
    writes: std::sync::Arc<std::sync::Mutex<Vec<invariants::readonly_replica::ReplicaWrite>>>,
) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let end = madsim::time::Instant::now() + run_for;
    while madsim::time::Instant::now() < end {
        madsim::time::sleep(Duration::from_millis(rng.gen_range(10..80))).await;
        let addr = &addrs[rng.gen_range(0..addrs.len())];
        let Ok(mut c) = Client::connect(addr, Duration::from_millis(700)).await else { continue };
        // After a timeout the reply may still arrive: never reuse such a connection.
        if c.cmd(&["GET", &format!("k{}", rng.gen_range(0..12))]).await.is_err() {
            continue;
        }
        // Only replies are judged: a write that timed out may never have arrived.
        if let Ok(reply) = c.cmd(&["SET", "written-on-replica", "1"]).await {
            let w = invariants::readonly_replica::ReplicaWrite {
                node: addr.clone(),
                command: "SET written-on-replica 1".into(),
                reply: reply.render(),
            };
            writes.lock().expect("replica writes").push(w);
        }
    }
    Ok(())
}

/// Liveness: every replica reaches the master's offset and all digests agree.
async fn converge(cluster: &mut Cluster, master: String, replicas: Vec<String>) -> Result<(), String> {
    let node = cluster.client_node("checker");
    let started = cluster.now_ns();
    let result = node
        .spawn(async move {
            let deadline = madsim::time::Instant::now() + CONVERGE_BOUND;
            let mut last = String::new();
            while madsim::time::Instant::now() < deadline {
                madsim::time::sleep(Duration::from_millis(200)).await;
                let mut digests = Vec::new();
                let mut offsets = Vec::new();
                for a in std::iter::once(&master).chain(replicas.iter()) {
                    let Ok(mut c) = Client::connect(a, Duration::from_millis(500)).await else { break };
                    let (Ok(d), Ok(role)) = (c.cmd(&["DEBUG", "DIGEST"]).await, c.role().await) else { break };
                    digests.push(d.render());
                    offsets.push(role.offset().unwrap_or(-1));
                }
                if digests.len() == replicas.len() + 1
                    && digests.iter().all(|d| *d == digests[0])
                    && offsets.iter().all(|o| *o == offsets[0])
                {
                    return Ok(());
                }
                last = format!("digests {digests:?} offsets {offsets:?}");
            }
            Err(format!("liveness: replicas did not converge within {CONVERGE_BOUND:?} after heal: {last}"))
        })
        .await
        .map_err(|e| format!("checker task failed: {e}"))?;
    result?;
    store::fault::probe("repl.converged");
    cluster.record(format!("converged {} ms after heal", (cluster.now_ns() - started) / 1_000_000));
    Ok(())
}

/// The replication invariants (see `invariants/`), over the observation logs as plain data.
fn check_logs(cluster: &Cluster) -> Result<(), String> {
    if std::env::var("SIM_DUMP_LOGS").is_ok() {
        for s in &cluster.servers {
            for e in s.observed.lock().expect("observed").log.iter() {
                eprintln!("{} {:?}", s.name, e);
            }
        }
    }
    let log = repl_log(cluster)?;
    let matched = invariants::replica_matches_master::check(&log).map_err(|v| context(cluster, v))?;
    if matched.checked > 0 {
        store::fault::probe("repl.digest_checked");
    }
    let gate = invariants::min_replicas_gate::check(&log).map_err(|v| v.to_string())?;
    if gate.refused > 0 {
        store::fault::probe("repl.noreplicas_gate");
    }
    let psync = invariants::partial_resync_when_covered::check(&log).map_err(|v| v.to_string())?;
    if psync.continued > 0 {
        store::fault::probe("repl.continue_checked");
    }
    let wait = invariants::wait_bound::check(&log).map_err(|v| v.to_string())?;
    if wait.waits_acknowledged > 0 {
        store::fault::probe("repl.wait_checked");
    }
    Ok(())
}

/// Every server's replication observations, converted to the checkers' plain data.
fn repl_log(cluster: &Cluster) -> Result<invariants::repl_log::ReplLog, String> {
    use invariants::repl_log::{NodeLog, PsyncServed, ReplEvent};
    let mut nodes = Vec::new();
    for s in &cluster.servers {
        let o = s.observed.lock().expect("observed");
        if o.dropped > 0 {
            return Err("observation log overflowed; raise OBSERVATIONS_MAX".into());
        }
        let mut events = Vec::new();
        for e in o.log.iter() {
            let LogEntry::Server(obs) = e else { continue };
            events.push(match obs.clone() {
                Observation::ReplOffset { replid, offset, digest } => ReplEvent::Fed { replid, offset, digest },
                Observation::ReplApplied { replid, offset, digest } => ReplEvent::Applied { replid, offset, digest },
                Observation::ReplAcked { replid, offset, digest } => ReplEvent::Acked { replid, offset, digest },
                Observation::WriteGate { accepted, good, needed } => ReplEvent::WriteGate { accepted, good, needed },
                Observation::PsyncServed {
                    replica,
                    asked_replid,
                    asked_offset,
                    legacy_sync,
                    replid,
                    replid2,
                    second_offset,
                    backlog_first_offset,
                    backlog_histlen,
                    continued,
                } => ReplEvent::PsyncServed(PsyncServed {
                    replica,
                    asked_replid,
                    asked_offset,
                    legacy_sync,
                    replid,
                    replid2,
                    second_offset,
                    backlog_first_offset,
                    backlog_histlen,
                    continued,
                }),
                Observation::AckReceived { replica, offset } => ReplEvent::AckReceived { replica, offset },
                Observation::WaitReplied { target_offset, reported } => {
                    ReplEvent::WaitReplied { target_offset, reported }
                }
                _ => continue,
            });
        }
        nodes.push(NodeLog { node: s.name.clone(), events });
    }
    Ok(invariants::repl_log::ReplLog { nodes })
}

/// A divergence report with what the master did just before (its writes and offsets).
fn context(cluster: &Cluster, v: invariants::Violation) -> String {
    let master = cluster.servers[0].observed.lock().expect("observed");
    let mut context = Vec::new();
    for e in master.log.iter() {
        match e {
            LogEntry::Server(Observation::Write { command, .. }) => context.push(format!(
                "write {}",
                command.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" ")
            )),
            LogEntry::Server(Observation::ReplOffset { offset, .. }) => context.push(format!("fed to {offset}")),
            LogEntry::Server(Observation::Expired { keys, .. }) => context.push(format!("expired {keys:?}")),
            _ => {}
        }
    }
    let tail = context[context.len().saturating_sub(12)..].join("; ");
    format!("{v} (the master's last events: {tail})")
}
