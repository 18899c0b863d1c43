//! Register: one server, several clients sharing a few integer keys, under the nemesis.
//!
//! Clients run GET, SET, INCR, DEL and an optimistic compare-and-set built from WATCH/GET/
//! MULTI/SET/EXEC, with short timeouts so that faults turn into operations of unknown outcome.
//! Everything observed is recorded as a history (invocation time, completion time, client,
//! result) and judged by the `invariants` crate:
//! - the history is linearizable against a sequential register model, per key;
//! - with persistence off (`save ""`), a killed server restarts empty, which is exactly what
//!   Redis promises: the history is split at every kill and each epoch is checked from empty.
//!
//! Then the liveness phase: faults stop, the network heals, the server restarts, and a client
//! must be served again within `LIVENESS_BOUND`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use invariants::history::{History, Op, OpKind, Outcome, Ret};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use store::client::{Client, Resp};

use crate::cluster::Cluster;
use crate::nemesis::{Nemesis, Swarm};
use crate::trace::Trace;

/// After the faults stop, the server must answer within this much simulated time.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(20);
const KEYS: [&str; 3] = ["k0", "k1", "k2"];

struct Shared {
    history: Mutex<Vec<Op>>,
    next_id: AtomicU64,
    start: madsim::time::Instant,
    trace: Trace,
}

impl Shared {
    fn now_ns(&self) -> u128 {
        self.start.elapsed().as_nanos()
    }
}

pub async fn run(seed: u64, trace: Trace) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cluster = Cluster::new(trace.clone());
    cluster.add_server("save \"\"\nappendonly no\n", seed);
    let addr = cluster.servers[0].addr.clone();
    let mut swarm = Swarm::draw(&mut rng, true);
    // Persistence is off here (save "", as Redis promises nothing across a restart without it):
    // a disk fault would have no effect, and a probe of its injection would claim coverage that
    // is not there. The persist and replication scenarios exercise the disk.
    swarm.disk = false;
    store::fault::set_buggify(swarm.buggify);
    let clients = rng.gen_range(2..=5);
    let run_for = Duration::from_millis(rng.gen_range(2_000..8_000));
    cluster.record(format!("register: {clients} clients for {} ms; faults: {}", run_for.as_millis(), swarm.describe()));
    let shared = Arc::new(Shared {
        history: Mutex::new(Vec::new()),
        next_id: AtomicU64::new(1),
        start: cluster.start(),
        trace: trace.clone(),
    });
    let mut tasks = Vec::new();
    for c in 0..clients {
        let node = cluster.client_node(&format!("client-{c}"));
        let (addr, shared, client_seed) = (addr.clone(), shared.clone(), rng.gen::<u64>());
        tasks.push(node.spawn(async move { client_loop(c, client_seed, addr, run_for, shared).await }));
    }
    let mut nemesis = Nemesis::new(swarm, ChaCha8Rng::seed_from_u64(rng.gen()));
    nemesis.run(&cluster, run_for).await;
    for t in tasks {
        t.await.map_err(|e| format!("client task failed: {e}"))?;
    }
    // Liveness: everything is healed; the server must serve again within the bound.
    let checker = cluster.client_node("checker");
    let healed_at = cluster.now_ns();
    let live = checker
        .spawn(async move {
            let mut c = Cluster::connect(&addr, Duration::from_secs(2), LIVENESS_BOUND).await?;
            c.cmd(&["PING"]).await.map_err(|e| format!("PING after heal: {e}"))
        })
        .await
        .map_err(|e| format!("checker task failed: {e}"))?;
    match live {
        Ok(Resp::Simple(p)) if p == "PONG" => {
            store::fault::probe("liveness.converged");
            cluster
                .record(format!("liveness: served again {} ms after heal", (cluster.now_ns() - healed_at) / 1_000_000));
        }
        other => {
            return Err(format!(
                "liveness: server not serving within {LIVENESS_BOUND:?} after faults healed: {other:?}"
            ))
        }
    }
    // Safety: linearizable per key within each epoch between kills (persistence is off).
    let history = History { ops: std::mem::take(&mut *shared.history.lock().expect("history")) };
    let mut restarts: Vec<u128> = nemesis.kills_ns.iter().map(|(_, t)| *t).collect();
    restarts.sort_unstable();
    restarts.dedup();
    if !restarts.is_empty() {
        store::fault::probe("check.epochs_split_at_kill");
    }
    let stats = invariants::epochs::check_epochs(&history, &restarts).map_err(|v| v.to_string())?;
    cluster.record(format!(
        "checked: {} ops, {} keys, {} search steps, {} epochs",
        stats.ops_checked,
        stats.keys_checked,
        stats.search_steps,
        restarts.len() + 1
    ));
    Ok(())
}

/// What happened to one attempt.
enum Attempt {
    Done(Outcome),
    /// The connection is unusable afterwards.
    Broken(Outcome),
}

fn int_of(r: &Resp) -> Option<i64> {
    r.as_bytes().and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.parse().ok())
}

async fn perform(conn: &mut Client, kind: &OpKind) -> Attempt {
    // An I/O error after the request may have been sent: the effect is unknown.
    let unknown = Attempt::Broken(Outcome::Unknown);
    match kind {
        OpKind::Get { key } => match conn.cmd(&["GET", key]).await {
            Ok(Resp::Bulk(None)) => Attempt::Done(Outcome::Ok(Ret::Value(None))),
            Ok(r @ Resp::Bulk(Some(_))) => match int_of(&r) {
                Some(v) => Attempt::Done(Outcome::Ok(Ret::Value(Some(v)))),
                None => Attempt::Done(Outcome::Fail),
            },
            Ok(_) => Attempt::Done(Outcome::Fail),
            Err(_) => unknown,
        },
        OpKind::Set { key, value } => match conn.cmd(&["SET", key, &value.to_string()]).await {
            Ok(Resp::Simple(s)) if s == "OK" => Attempt::Done(Outcome::Ok(Ret::Done)),
            Ok(_) => Attempt::Done(Outcome::Fail),
            Err(_) => unknown,
        },
        OpKind::Incr { key, .. } => match conn.cmd(&["INCR", key]).await {
            Ok(Resp::Int(n)) => Attempt::Done(Outcome::Ok(Ret::Int(n))),
            Ok(_) => Attempt::Done(Outcome::Fail),
            Err(_) => unknown,
        },
        OpKind::Del { key } => match conn.cmd(&["DEL", key]).await {
            Ok(Resp::Int(n)) => Attempt::Done(Outcome::Ok(Ret::Int(n))),
            Ok(_) => Attempt::Done(Outcome::Fail),
            Err(_) => unknown,
        },
        OpKind::Cas { .. } => unreachable!("CAS is performed by perform_cas"),
    }
}

/// WATCH/GET/MULTI/SET/EXEC. Returns the value read (the expectation) and what happened.
/// Anything going wrong before EXEC is sent means nothing was written: Fail.
async fn perform_cas(conn: &mut Client, key: &str, bump: i64) -> (Option<i64>, Attempt) {
    let broken = |o| Attempt::Broken(o);
    match conn.cmd(&["WATCH", key]).await {
        Ok(Resp::Simple(s)) if s == "OK" => {}
        _ => return (None, broken(Outcome::Fail)),
    }
    let expect = match conn.cmd(&["GET", key]).await {
        Ok(Resp::Bulk(None)) => None,
        Ok(r @ Resp::Bulk(Some(_))) if int_of(&r).is_some() => int_of(&r),
        _ => return (None, broken(Outcome::Fail)),
    };
    let new = expect.unwrap_or(0) + bump;
    let new_s = new.to_string();
    let queued = conn
        .pipeline(&[vec![b"MULTI".to_vec()], vec![b"SET".to_vec(), key.as_bytes().to_vec(), new_s.into_bytes()]])
        .await;
    match queued {
        Ok(r) if r == [Resp::Simple("OK".into()), Resp::Simple("QUEUED".into())] => {}
        _ => return (expect, broken(Outcome::Fail)),
    }
    match conn.cmd(&["EXEC"]).await {
        Ok(Resp::Array(Some(items))) if items == [Resp::Simple("OK".into())] => {
            store::fault::probe("op.cas_committed");
            (expect, Attempt::Done(Outcome::Ok(Ret::Done)))
        }
        Ok(Resp::Array(None)) => {
            store::fault::probe("op.cas_aborted");
            (expect, Attempt::Done(Outcome::Fail))
        }
        Ok(_) => (expect, broken(Outcome::Fail)),
        Err(_) => (expect, broken(Outcome::Unknown)),
    }
}

async fn client_loop(c: u32, seed: u64, addr: String, run_for: Duration, shared: Arc<Shared>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let io_timeout = Duration::from_millis(rng.gen_range(150..2000));
    let end = madsim::time::Instant::now() + run_for;
    let lane = format!("client-{c}");
    let mut conn: Option<Client> = None;
    while madsim::time::Instant::now() < end {
        madsim::time::sleep(Duration::from_millis(rng.gen_range(0..30))).await;
        let Some(client) = conn.as_mut() else {
            match Client::connect(&addr, io_timeout).await {
                Ok(cl) => conn = Some(cl),
                Err(_) => madsim::time::sleep(Duration::from_millis(100)).await,
            }
            continue;
        };
        let key = KEYS[rng.gen_range(0..KEYS.len())].to_string();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let invoke_ns = shared.now_ns();
        let (kind, attempt) = match rng.gen_range(0..10) {
            0..=2 => {
                let k = OpKind::Get { key };
                let a = perform(client, &k).await;
                (k, a)
            }
            3..=4 => {
                let k = OpKind::Set { key, value: rng.gen_range(0..1000) };
                let a = perform(client, &k).await;
                (k, a)
            }
            5..=7 => {
                let k = OpKind::Incr { key, by: 1 };
                let a = perform(client, &k).await;
                (k, a)
            }
            8 => {
                let k = OpKind::Del { key };
                let a = perform(client, &k).await;
                (k, a)
            }
            _ => {
                let bump = rng.gen_range(1..5);
                let (expect, a) = perform_cas(client, &key, bump).await;
                let new = expect.unwrap_or(0) + bump;
                (OpKind::Cas { key, expect, new }, a)
            }
        };
        let (outcome, broken) = match attempt {
            Attempt::Done(o) => (o, false),
            Attempt::Broken(o) => (o, true),
        };
        if broken {
            conn = None;
        }
        let complete_ns = match outcome {
            Outcome::Unknown => {
                store::fault::probe("op.unknown");
                None
            }
            _ => Some(shared.now_ns()),
        };
        let op = Op { id, client: c, invoke_ns, complete_ns, kind, outcome };
        shared.trace.record_op(&lane, invoke_ns, complete_ns.unwrap_or_else(|| shared.now_ns()), format!("{op}"));
        shared.history.lock().expect("history").push(op);
    }
}
