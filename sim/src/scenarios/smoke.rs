//! Smoke: one server, several clients, each on its own keys, no faults.
//!
//! Because no two clients share a key, each client's replies are fully determined by its own
//! history: every reply is checked against a sequential [`Model`] of that client's keys,
//! including inside MULTI/EXEC. Clients interleave freely on the server, so this also checks
//! that concurrent clients do not disturb each other (databases, transactions, pipelines).
//!
//! On most seeds a *hostile* client joins them in its own database: it sends commands drawn by
//! `store::cmdgen` from the whole command table with boundary and hostile arguments (the
//! differential fuzzer's generator, without its redis-server oracle). Nothing predicts its
//! replies, so what is checked is what must hold whatever they are: the server never panics
//! (a panic is a failure with its seed), answers every command, keeps serving the model-checked
//! clients correctly beside it, and its incremental dataset digest equals a full recomputation
//! after every write (the observer's check), for every command family.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use store::client::Resp;

use crate::cluster::Cluster;
use crate::model::Model;
use crate::trace::Trace;

const IO_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(seed: u64, trace: Trace) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cluster = Cluster::new(trace.clone());
    let server = cluster.add_server("", seed);
    let addr = cluster.servers[server].addr.clone();
    let clients = rng.gen_range(1..=4);
    let ops = rng.gen_range(20..120);
    cluster.record(format!("smoke: {clients} clients x {ops} ops"));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let node = cluster.client_node(&format!("client-{c}"));
        let addr = addr.clone();
        let trace = trace.clone();
        let client_seed = rng.gen::<u64>();
        tasks.push(node.spawn(async move { client_workload(c, client_seed, addr, ops, trace).await }));
    }
    // A separate stream decides the hostile client, so the other clients' draws are unchanged.
    let mut fuzz_rng = ChaCha8Rng::seed_from_u64(seed ^ FUZZ_SEED_SALT);
    if fuzz_rng.gen_ratio(3, 4) {
        let node = cluster.client_node("fuzz");
        let addr = addr.clone();
        let trace = trace.clone();
        let fuzz_seed = fuzz_rng.gen::<u64>();
        let commands = fuzz_rng.gen_range(50..300);
        cluster.record(format!("smoke: hostile client x {commands} commands"));
        tasks.push(node.spawn(async move { fuzz_workload(fuzz_seed, addr, commands, trace).await }));
    }
    for t in tasks {
        t.await.map_err(|e| format!("client task failed: {e}"))??;
    }
    // The final dataset digest joins the trace, so replays compare data as well as replies.
    let checker = cluster.client_node("checker");
    let digest = checker
        .spawn(async move {
            let mut probe = Cluster::connect(&addr, IO_TIMEOUT, Duration::from_secs(5)).await?;
            probe.cmd(&["DEBUG", "DIGEST"]).await.map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| format!("checker task failed: {e}"))??;
    cluster.record(format!("final digest {}", digest.render()));
    Ok(())
}

const FUZZ_SEED_SALT: u64 = 0x6675_7a7a_636d_6467;
/// The hostile client's database: no model-checked client uses it.
const FUZZ_DB: &str = "9";

/// Commands the hostile client never sends, each because it would reach outside its database
/// or break the request/reply framing this harness reads, not because the server must not
/// survive it (the differential fuzzer sends most of them to a real server):
const FUZZ_DENY: &[&str] = &[
    // other databases and the whole server: would invalidate the other clients' models
    "select",
    "swapdb",
    "move",
    "flushall",
    "config",
    "debug",
    "client",
    "shutdown",
    // turn the connection into a replica or a master link, or the server into a replica
    "replicaof",
    "slaveof",
    "psync",
    "sync",
    "replconf",
    "failover",
    // several replies per command, pushes, or a closed connection
    "subscribe",
    "psubscribe",
    "unsubscribe",
    "punsubscribe",
    "ssubscribe",
    "sunsubscribe",
    "monitor",
    "hello",
    "reset",
    "quit",
    // WAIT with a timeout of 0 blocks forever on a server without replicas
    "wait",
];

/// The hostile client: generated commands in its own database; every command must be answered.
async fn fuzz_workload(seed: u64, addr: String, commands: u32, trace: Trace) -> Result<(), String> {
    let start = madsim::time::Instant::now();
    let now = || start.elapsed().as_nanos();
    let mut gen = store::cmdgen::CommandGen::with_exclusions(seed, FUZZ_DENY);
    let mut client = Cluster::connect(&addr, IO_TIMEOUT, Duration::from_secs(10)).await?;
    let r = client.cmd(&["SELECT", FUZZ_DB]).await.map_err(|e| format!("fuzz: {e}"))?;
    if r != Resp::Simple("OK".into()) {
        return Err(format!("fuzz: SELECT {FUZZ_DB} replied {}", r.render()));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ FUZZ_SEED_SALT);
    for _ in 0..commands {
        if rng.gen_ratio(1, 25) {
            fuzz_transaction(&mut gen, &mut rng, &mut client, &trace, now()).await?;
            continue;
        }
        let cmd = gen.next();
        let refs: Vec<&[u8]> = cmd.iter().map(|a| a.as_slice()).collect();
        let got = client
            .call(&refs)
            .await
            .map_err(|e| format!("fuzz: {} got no reply ({e})", truncate(&render(&cmd), 200)))?;
        if matches!(&got, Resp::Error(e) if e.starts_with("ERR Protocol error")) {
            return Err(format!("fuzz: {} broke the protocol: {}", truncate(&render(&cmd), 200), got.render()));
        }
        store::fault::probe("smoke.fuzz_command");
        trace.record(now(), format!("fuzz {} -> {}", truncate(&render(&cmd), 120), truncate(&got.render(), 120)));
    }
    Ok(())
}

/// A transaction of generated commands around one whose work the connection finishes after the
/// lock (BGSAVE: its reply is spliced into EXEC's array). When everything was queued, EXEC must
/// answer one reply per queued command (or a null array, if a key this client WATCHed changed).
async fn fuzz_transaction(
    gen: &mut store::cmdgen::CommandGen,
    rng: &mut ChaCha8Rng,
    client: &mut store::client::Client,
    trace: &Trace,
    at: u128,
) -> Result<(), String> {
    let mut cmds: Vec<Vec<Vec<u8>>> = (0..rng.gen_range(0..3)).map(|_| gen.next()).collect();
    cmds.insert(rng.gen_range(0..=cmds.len()), vec![b"BGSAVE".to_vec()]);
    let r = client.cmd(&["MULTI"]).await.map_err(|e| format!("fuzz: MULTI: {e}"))?;
    let mut all_queued = r == Resp::Simple("OK".into());
    for cmd in &cmds {
        let refs: Vec<&[u8]> = cmd.iter().map(|a| a.as_slice()).collect();
        let r = client.call(&refs).await.map_err(|e| format!("fuzz: {} in MULTI: {e}", render(cmd)))?;
        all_queued &= r == Resp::Simple("QUEUED".into());
    }
    let r = client.cmd(&["EXEC"]).await.map_err(|e| format!("fuzz: EXEC: {e}"))?;
    trace.record(at, format!("fuzz MULTI [{} commands] EXEC -> {}", cmds.len(), truncate(&r.render(), 120)));
    if !all_queued {
        return Ok(());
    }
    match &r {
        Resp::Array(Some(items)) if items.len() == cmds.len() => Ok(()),
        Resp::Array(None) => Ok(()),
        _ => Err(format!("fuzz: EXEC of {} queued commands answered {}", cmds.len(), r.render())),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn random_value(rng: &mut ChaCha8Rng) -> Vec<u8> {
    if rng.gen_bool(0.5) {
        rng.gen_range(-100i64..1000).to_string().into_bytes()
    } else {
        format!("v{}", rng.gen_range(0..50)).into_bytes()
    }
}

/// Draws one command over this client's keys.
fn random_command(c: u32, rng: &mut ChaCha8Rng) -> Vec<Vec<u8>> {
    let key = format!("c{c}:k{}", rng.gen_range(0..4)).into_bytes();
    let key2 = format!("c{c}:k{}", rng.gen_range(0..4)).into_bytes();
    let s = |x: &str| x.as_bytes().to_vec();
    let v = random_value(rng);
    match rng.gen_range(0..24) {
        0 | 1 => vec![s("SET"), key, v],
        2 | 3 => vec![s("GET"), key],
        4 => vec![s("INCR"), key],
        5 => vec![s("INCRBY"), key, rng.gen_range(-5i64..5).to_string().into_bytes()],
        6 => vec![s("APPEND"), key, v],
        7 => vec![s("DEL"), key, key2],
        8 => vec![s("EXISTS"), key, key2],
        9 => vec![s("STRLEN"), key],
        10 => vec![s("GETSET"), key, v],
        11 => vec![s("SETNX"), key, v],
        12 => vec![s("TYPE"), key],
        13 => vec![s("SET"), key, v, s("EX"), s("1000")],
        14 => vec![s("TTL"), key],
        15 => vec![s("EXPIRE"), key, s("1000")],
        16 => vec![s("PERSIST"), key],
        17 => vec![if rng.gen_bool(0.5) { s("RPUSH") } else { s("LPUSH") }, key, v, random_value(rng)],
        18 => vec![if rng.gen_bool(0.5) { s("LPOP") } else { s("RPOP") }, key],
        19 => vec![s("LLEN"), key],
        20 => vec![s("HSET"), key, format!("f{}", rng.gen_range(0..3)).into_bytes(), v],
        21 => vec![s("HGET"), key, format!("f{}", rng.gen_range(0..3)).into_bytes()],
        22 => vec![s("SADD"), key, v],
        _ => vec![s("SISMEMBER"), key, v],
    }
}

fn render(args: &[Vec<u8>]) -> String {
    args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" ")
}

async fn client_workload(c: u32, seed: u64, addr: String, ops: u32, trace: Trace) -> Result<(), String> {
    let start = madsim::time::Instant::now();
    let now = || start.elapsed().as_nanos();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut client = Cluster::connect(&addr, IO_TIMEOUT, Duration::from_secs(10)).await?;
    let mut model = Model::default();
    let mut db = 0usize;
    let mut i = 0;
    while i < ops {
        madsim::time::sleep(Duration::from_micros(rng.gen_range(0..3000))).await;
        let roll = rng.gen_range(0..100);
        if roll < 5 {
            // SELECT another database: keys there are a separate namespace.
            let next = rng.gen_range(0..3);
            let r = client.cmd(&["SELECT", &next.to_string()]).await.map_err(|e| format!("c{c}: {e}"))?;
            trace.record(now(), format!("c{c} SELECT {next} -> {}", r.render()));
            if r != Resp::Simple("OK".into()) {
                return Err(format!("c{c}: SELECT {next} replied {}", r.render()));
            }
            db = next;
            i += 1;
            continue;
        }
        if roll < 15 {
            // A transaction: every queued command answers QUEUED, EXEC answers them all in order.
            let n = rng.gen_range(1..4);
            let cmds: Vec<Vec<Vec<u8>>> = (0..n).map(|_| random_command(c, &mut rng)).collect();
            let r = client.cmd(&["MULTI"]).await.map_err(|e| format!("c{c}: {e}"))?;
            trace.record(now(), format!("c{c} MULTI -> {}", r.render()));
            for cmd in &cmds {
                let refs: Vec<&[u8]> = cmd.iter().map(|a| a.as_slice()).collect();
                let r = client.call(&refs).await.map_err(|e| format!("c{c}: {e}"))?;
                trace.record(now(), format!("c{c} {} -> {}", render(cmd), r.render()));
                if r != Resp::Simple("QUEUED".into()) {
                    return Err(format!("c{c}: {} inside MULTI replied {}", render(cmd), r.render()));
                }
            }
            let r = client.cmd(&["EXEC"]).await.map_err(|e| format!("c{c}: {e}"))?;
            trace.record(now(), format!("c{c} EXEC -> {}", r.render()));
            let Resp::Array(Some(items)) = &r else {
                return Err(format!("c{c}: EXEC replied {}", r.render()));
            };
            if items.len() != cmds.len() {
                return Err(format!("c{c}: EXEC returned {} replies for {} commands", items.len(), cmds.len()));
            }
            for (cmd, got) in cmds.iter().zip(items) {
                let want = model.apply(db, cmd).ok_or_else(|| format!("model lacks {}", render(cmd)))?;
                if !Model::reply_matches(&want, got) {
                    return Err(format!(
                        "c{c}: in EXEC, {} expected {} got {}",
                        render(cmd),
                        want.render(),
                        got.render()
                    ));
                }
            }
            i += n;
            continue;
        }
        if roll < 25 {
            // A pipeline: several commands in one write, replies read back in order.
            let n = rng.gen_range(2..6);
            let cmds: Vec<Vec<Vec<u8>>> = (0..n).map(|_| random_command(c, &mut rng)).collect();
            let replies = client.pipeline(&cmds).await.map_err(|e| format!("c{c}: pipeline failed: {e}"))?;
            for (cmd, got) in cmds.iter().zip(&replies) {
                trace.record(now(), format!("c{c} [pipelined] {} -> {}", render(cmd), got.render()));
                let want = model.apply(db, cmd).ok_or_else(|| format!("model lacks {}", render(cmd)))?;
                if !Model::reply_matches(&want, got) {
                    return Err(format!(
                        "c{c}: pipelined {} expected {} got {}",
                        render(cmd),
                        want.render(),
                        got.render()
                    ));
                }
            }
            i += n;
            continue;
        }
        let cmd = random_command(c, &mut rng);
        let refs: Vec<&[u8]> = cmd.iter().map(|a| a.as_slice()).collect();
        let started = now();
        let got = client.call(&refs).await.map_err(|e| format!("c{c}: {} failed: {e}", render(&cmd)))?;
        trace.record_op(&format!("c{c}"), started, now(), format!("{} -> {}", render(&cmd), got.render()));
        let want = model.apply(db, &cmd).ok_or_else(|| format!("model lacks {}", render(&cmd)))?;
        if !Model::reply_matches(&want, &got) {
            return Err(format!("c{c}: {} expected {} got {}", render(&cmd), want.render(), got.render()));
        }
        i += 1;
    }
    Ok(())
}
