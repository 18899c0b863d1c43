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
//! - blocking pops and scripts (the consumer): served on the master while writers push, they
//!   reach replicas as their effects, so the checks above cover them too;
//! - liveness (here): after faults heal, every replica catches up with the master's offset and
//!   all nodes hold the same dataset (DEBUG DIGEST), within `CONVERGE_BOUND`.

use std::sync::{Arc, Mutex};
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
    let addrs: Vec<String> = cluster.servers.iter().map(|s| s.addr.clone()).collect();
    let topology = Arc::new(Mutex::new(Topology { master: 0, epoch: 0, changing: false }));
    // On some seeds the topology changes during the run: a replica is promoted with REPLICAOF
    // NO ONE, the others (the old master included) re-pointed to it, sometimes through a chain.
    let switchovers = if ChaCha8Rng::seed_from_u64(seed ^ TOPOLOGY_SALT).gen_bool(0.4) { 2 } else { 0 };
    let mut tasks = Vec::new();
    for c in 0..rng.gen_range(1..=3u32) {
        let node = cluster.client_node(&format!("writer-{c}"));
        let (a, t, s) = (addrs.clone(), topology.clone(), rng.gen::<u64>());
        let n = replicas;
        tasks.push(node.spawn(async move { writer(a, t, s, run_for, n).await }));
    }
    let node = cluster.client_node("replica-client");
    let (ra, t, s) = (addrs.clone(), topology.clone(), rng.gen::<u64>());
    let replica_writes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let rw = replica_writes.clone();
    tasks.push(node.spawn(async move { replica_client(ra, t, s, run_for, rw).await }));
    // A consumer of the writers' lists on the same client node (a node of its own would change
    // every seed's fault draws), from a stream of its own (so the other draws are unchanged).
    let (ca, ct) = (addrs.clone(), topology.clone());
    tasks.push(node.spawn(async move { consumer(ca, ct, seed ^ CONSUMER_SALT, run_for).await }));
    if switchovers > 0 {
        let node = cluster.client_node("operator");
        let (a, t, s, trace) = (addrs.clone(), topology.clone(), rng.gen::<u64>(), cluster.trace.clone());
        tasks.push(node.spawn(async move { operator(a, t, s, run_for, switchovers, trace).await }));
    }
    let mut nemesis = Nemesis::new(swarm, ChaCha8Rng::seed_from_u64(rng.gen()));
    nemesis.run(&cluster, run_for).await;
    for t in tasks {
        t.await.map_err(|e| format!("client task failed: {e}"))??;
    }
    // Fault points are faults too: they heal with the others before the liveness phase.
    store::fault::set_buggify(false);
    let master = topology.lock().expect("topology").master;
    if switchovers > 0 {
        // An order the operator sent may not have arrived (a partition): restate the topology
        // now that the network is whole, as an operator would.
        restate_topology(&mut cluster, &addrs, master).await?;
    }
    let master_addr = addrs[master].clone();
    let replica_addrs: Vec<String> =
        addrs.iter().enumerate().filter(|(i, _)| *i != master).map(|(_, a)| a.clone()).collect();
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

async fn writer(
    addrs: Vec<String>,
    topology: Arc<Mutex<Topology>>,
    seed: u64,
    run_for: Duration,
    replicas: usize,
) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let end = madsim::time::Instant::now() + run_for;
    let mut conn: Option<(usize, Client)> = None;
    while madsim::time::Instant::now() < end {
        madsim::time::sleep(Duration::from_millis(rng.gen_range(1..25))).await;
        // Writers follow the master the operator announced.
        let master = topology.lock().expect("topology").master;
        if conn.as_ref().is_some_and(|(i, _)| *i != master) {
            conn = None;
        }
        let Some((_, c)) = conn.as_mut() else {
            conn = Client::connect(&addrs[master], Duration::from_millis(700)).await.ok().map(|c| (master, c));
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

const CONSUMER_SALT: u64 = 0x636f_6e73_756d_6572;

/// A job-queue consumer on the master: blocking pops of the lists the writers push to (woken by
/// their pushes, served under the master's lock, propagated as LPOP/LMOVE), and a script that
/// writes three times (propagated as its effects, wrapped in MULTI/EXEC). The replication
/// checkers then judge that replicas apply exactly what these did on the master; a consumer
/// blocked on a master that the operator demotes gets -UNBLOCKED and reconnects.
async fn consumer(
    addrs: Vec<String>,
    topology: Arc<Mutex<Topology>>,
    seed: u64,
    run_for: Duration,
) -> Result<(), String> {
    const SCRIPT: &str =
        "redis.call('incr', KEYS[1]) redis.call('rpush', KEYS[2], ARGV[1]) return redis.call('lpop', KEYS[2])";
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let end = madsim::time::Instant::now() + run_for;
    let mut conn: Option<(usize, Client)> = None;
    while madsim::time::Instant::now() < end {
        madsim::time::sleep(Duration::from_millis(rng.gen_range(1..40))).await;
        let master = topology.lock().expect("topology").master;
        if conn.as_ref().is_some_and(|(i, _)| *i != master) {
            conn = None;
        }
        let Some((_, c)) = conn.as_mut() else {
            conn = Client::connect(&addrs[master], Duration::from_millis(700)).await.ok().map(|c| (master, c));
            continue;
        };
        let timeout = ["0.05", "0.2", "0.4"][rng.gen_range(0..3)];
        let r = match rng.gen_range(0..5) {
            0 | 1 => c.cmd(&["BLPOP", "l0", "l1", "l2", timeout]).await,
            2 => c.cmd(&["BRPOPLPUSH", "l0", "l1", timeout]).await,
            3 => c.cmd(&["BLMPOP", timeout, "2", "l2", "l1", "RIGHT", "COUNT", "2"]).await,
            _ => {
                let k = format!("k{}", rng.gen_range(0..12));
                c.cmd(&["EVAL", SCRIPT, "2", &k, "l2", &rng.gen::<u16>().to_string()]).await
            }
        };
        match r {
            Ok(Resp::Error(e)) if e.starts_with("UNBLOCKED") => {
                store::fault::probe("repl.consumer_unblocked");
                conn = None;
            }
            Ok(Resp::Array(Some(_))) => store::fault::probe("repl.consumer_popped"),
            Ok(_) => {}
            // After a timeout the reply may still arrive: never reuse such a connection.
            Err(_) => conn = None,
        }
    }
    Ok(())
}

async fn replica_client(
    addrs: Vec<String>,
    topology: Arc<Mutex<Topology>>,
    seed: u64,
    run_for: Duration,
    writes: std::sync::Arc<std::sync::Mutex<Vec<invariants::readonly_replica::ReplicaWrite>>>,
) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let end = madsim::time::Instant::now() + run_for;
    while madsim::time::Instant::now() < end {
        madsim::time::sleep(Duration::from_millis(rng.gen_range(10..80))).await;
        let before = *topology.lock().expect("topology");
        let target = rng.gen_range(0..addrs.len());
        if target == before.master || before.changing {
            continue;
        }
        let addr = &addrs[target];
        let Ok(mut c) = Client::connect(addr, Duration::from_millis(700)).await else { continue };
        // After a timeout the reply may still arrive: never reuse such a connection.
        if c.cmd(&["GET", &format!("k{}", rng.gen_range(0..12))]).await.is_err() {
            continue;
        }
        // Only replies are judged: a write that timed out may never have arrived. And only
        // writes to a node that was a replica throughout (no topology change meanwhile, and ROLE
        // says so: an order the operator sent through a partition may have landed late).
        if let Ok(reply) = c.cmd(&["SET", "written-on-replica", "1"]).await {
            let still_replica = matches!(c.role().await, Ok(store::client::role::RoleReply::Replica { .. }));
            if !still_replica || *topology.lock().expect("topology") != before {
                continue;
            }
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

const TOPOLOGY_SALT: u64 = 0x746f_706f_6c6f_6779;

/// Which node the operator made master, and a count of changes (`changing` while one is under
/// way), so that clients can tell whether a reply came from a stable topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Topology {
    master: usize,
    epoch: u64,
    changing: bool,
}

/// The operator of the classic tutorial, by hand: promote a replica with REPLICAOF NO ONE, then
/// re-point every other node (the old master rejoins as a replica) to it, sometimes through
/// another replica (a chain). The other replicas of a promoted replica continue partially
/// (PSYNC2: replid2 and second_repl_offset), which the checkers judge.
async fn operator(
    addrs: Vec<String>,
    topology: Arc<Mutex<Topology>>,
    seed: u64,
    run_for: Duration,
    switchovers: u32,
    trace: Trace,
) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = madsim::time::Instant::now();
    for _ in 0..switchovers {
        let at = Duration::from_millis(rng.gen_range(300..run_for.as_millis().max(301) as u64));
        madsim::time::sleep(at.saturating_sub(start.elapsed()) / switchovers.max(1)).await;
        let old = topology.lock().expect("topology").master;
        let new = (old + rng.gen_range(1..addrs.len())) % addrs.len();
        topology.lock().expect("topology").changing = true;
        let promoted = order(&addrs[new], &["REPLICAOF", "NO", "ONE"]).await;
        trace.record(start.elapsed().as_nanos(), format!("operator: REPLICAOF NO ONE on {} -> {promoted}", addrs[new]));
        {
            let mut t = topology.lock().expect("topology");
            t.master = new;
            t.epoch += 1;
        }
        for i in (0..addrs.len()).filter(|i| *i != new) {
            // Usually the new master; sometimes a replica already re-pointed (a chain).
            let upstream = if i != old && rng.gen_bool(0.2) { old } else { new };
            let ip = addrs[upstream].split(':').next().unwrap_or_default().to_string();
            let reply = order(&addrs[i], &["REPLICAOF", &ip, "6379"]).await;
            trace.record(start.elapsed().as_nanos(), format!("operator: REPLICAOF {ip} on {} -> {reply}", addrs[i]));
        }
        store::fault::probe("repl.topology_changed");
        let mut t = topology.lock().expect("topology");
        t.epoch += 1;
        t.changing = false;
    }
    Ok(())
}

/// Sends one administrative command on a fresh connection; its reply rendered, or the error.
async fn order(addr: &str, args: &[&str]) -> String {
    match Client::connect(addr, Duration::from_millis(700)).await {
        Ok(mut c) => match c.cmd(args).await {
            Ok(r) => r.render(),
            Err(e) => format!("no reply ({e})"),
        },
        Err(e) => format!("unreachable ({e})"),
    }
}

/// After the faults heal: every node is told its role again (idempotent), so that an order lost
/// in a partition cannot leave two masters for the liveness check.
async fn restate_topology(cluster: &mut Cluster, addrs: &[String], master: usize) -> Result<(), String> {
    let node = cluster.client_node("operator-restate");
    let addrs = addrs.to_vec();
    let (trace, at) = (cluster.trace.clone(), cluster.now_ns());
    node.spawn(async move {
        let ip = addrs[master].split(':').next().unwrap_or_default().to_string();
        for (i, a) in addrs.iter().enumerate() {
            let args: Vec<&str> =
                if i == master { vec!["REPLICAOF", "NO", "ONE"] } else { vec!["REPLICAOF", &ip, "6379"] };
            let reply = order(a, &args).await;
            trace.record(at, format!("operator: restate {} on {a} -> {reply}", args.join(" ")));
        }
    })
    .await
    .map_err(|e| format!("operator task failed: {e}"))
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
