//! The hazard Redis's replication documentation warns about ("Safety of replication when master
//! has persistence turned off"): a master without persistence is killed and restarted at once by
//! a supervisor; it comes back empty, its replicas resync from it, and every acknowledged write
//! is gone from the whole group.
//!
//! Writes are acknowledged by WAIT (every replica has them) and, with persistence on, by a SAVE
//! too. Then the supervisor kills the master (power loss) and restarts it immediately. After the
//! group converges, the checker `acknowledged_writes_survive` looks for every acknowledged key
//! on every node.
//! - `hazard-nopersist`: the checker must report the loss (the scenario fails if it does not:
//!   a checker that cannot see this loss is not a checker);
//! - `hazard-persist`: the same with RDB snapshots on: nothing acknowledged is lost.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use store::client::{Client, Resp};

use crate::cluster::Cluster;
use crate::trace::Trace;

pub async fn run(seed: u64, trace: Trace, persistence: bool) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cluster = Cluster::new(trace.clone());
    let save = if persistence { "dir /data\nsave 3600 1\n" } else { "save \"\"\n" };
    cluster.add_server(&format!("{save}repl-timeout 3\nrepl-ping-replica-period 1\n"), seed);
    for _ in 0..2 {
        cluster.add_server("save \"\"\nrepl-timeout 3\nreplicaof 10.0.0.1 6379\n", seed);
    }
    let addrs: Vec<String> = cluster.servers.iter().map(|s| s.addr.clone()).collect();
    let keys = rng.gen_range(5..50);
    cluster
        .record(format!("hazard: persistence {}, {keys} acknowledged writes", if persistence { "on" } else { "off" }));
    // Phase 1: acknowledged writes.
    let writer = cluster.client_node("writer");
    let a = addrs[0].clone();
    let acknowledged = writer
        .spawn(async move {
            let mut c = Cluster::connect(&a, Duration::from_secs(2), Duration::from_secs(10)).await?;
            let mut acked = Vec::new();
            for i in 0..keys {
                let k = format!("ack{i}");
                c.cmd(&["SET", &k, "v"]).await.map_err(|e| e.to_string())?;
                acked.push(k);
            }
            // WAIT for both replicas (retrying while they finish their first sync).
            for _ in 0..100 {
                if c.cmd(&["WAIT", "2", "500"]).await.map_err(|e| e.to_string())? == Resp::Int(2) {
                    if persistence {
                        let r = c.cmd(&["SAVE"]).await.map_err(|e| e.to_string())?;
                        if r != Resp::Simple("OK".into()) {
                            return Err(format!("SAVE failed: {}", r.render()));
                        }
                    }
                    return Ok(acked);
                }
            }
            Err("replicas never acknowledged".to_string())
        })
        .await
        .map_err(|e| format!("writer failed: {e}"))??;
    // Phase 2: the supervisor restarts the master at once after a power loss.
    let master = &cluster.servers[0];
    cluster.handle.kill(master.node.id());
    master.disk.power_fail();
    cluster.handle.restart(master.node.id());
    cluster.record("supervisor: master killed and restarted immediately".into());
    // Phase 3: wait for the group to settle, then look for every acknowledged key everywhere.
    madsim::time::sleep(Duration::from_secs(rng.gen_range(5..10))).await;
    let checker = cluster.client_node("checker");
    let lost = checker
        .spawn(async move {
            let mut lost = Vec::new();
            for a in &addrs {
                let Ok(mut c) = Client::connect(a, Duration::from_secs(2)).await else {
                    lost.push(format!("{a} unreachable"));
                    continue;
                };
                for k in &acknowledged {
                    if c.cmd(&["EXISTS", k]).await.map_err(|e| e.to_string())? != Resp::Int(1) {
                        lost.push(format!("{k} on {a}"));
                    }
                }
            }
            Ok::<_, String>(lost)
        })
        .await
        .map_err(|e| format!("checker failed: {e}"))??;
    let verdict = acknowledged_writes_survive(&lost);
    match (persistence, verdict) {
        (true, Ok(())) => Ok(()),
        (true, Err(e)) => Err(e),
        (false, Err(e)) => {
            store::fault::probe("hazard.loss_reported");
            cluster.record(format!("checker reported, as Redis's documentation warns: {e}"));
            Ok(())
        }
        (false, Ok(())) => {
            Err("hazard: a master without persistence was restarted empty, yet the checker saw no loss".into())
        }
    }
}

/// The invariant: every write acknowledged by WAIT (and SAVE, with persistence on) is present on
/// every node after the group converges.
fn acknowledged_writes_survive(lost: &[String]) -> Result<(), String> {
    if lost.is_empty() {
        return Ok(());
    }
    let shown: Vec<&String> = lost.iter().take(5).collect();
    Err(format!("acknowledged writes lost: {} (e.g. {shown:?})", lost.len()))
}
