//! Replication commands: REPLICAOF/SLAVEOF, ROLE, WAIT, FAILOVER, and the ones replicas send
//! their master: REPLCONF, PSYNC, SYNC.

use bytes::Bytes;

use super::*;
use crate::protocol::Reply;
use crate::replication::{ReplicaState, Role};

pub const COMMANDS: &[CommandSpec] = &[
    // Queued inside MULTI, as in Redis: a sentinel promotes and re-points inside a transaction.
    CommandSpec { name: "replicaof", arity: 3, flags: NO_SCRIPT | ADMIN | STALE, keys: (0, 0, 0), handler: replicaof },
    CommandSpec { name: "slaveof", arity: 3, flags: NO_SCRIPT | ADMIN | STALE, keys: (0, 0, 0), handler: replicaof },
    CommandSpec { name: "role", arity: 1, flags: NO_SCRIPT | FAST | STALE | LOADING, keys: (0, 0, 0), handler: role },
    CommandSpec { name: "wait", arity: 3, flags: NO_SCRIPT | 0, keys: (0, 0, 0), handler: wait },
    CommandSpec {
        name: "replconf",
        arity: -1,
        flags: NO_SCRIPT | ADMIN | STALE | LOADING,
        keys: (0, 0, 0),
        handler: replconf,
    },
    CommandSpec {
        name: "psync",
        arity: -3,
        flags: NO_SCRIPT | ADMIN | NO_MULTI | STALE,
        keys: (0, 0, 0),
        handler: psync,
    },
    CommandSpec { name: "sync", arity: 1, flags: NO_SCRIPT | ADMIN | NO_MULTI | STALE, keys: (0, 0, 0), handler: sync },
    CommandSpec { name: "failover", arity: -1, flags: NO_SCRIPT | ADMIN | STALE, keys: (0, 0, 0), handler: failover },
];

/// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]: parsed and checked in Redis's order;
/// the handover itself runs from the cron (replication/failover.rs).
fn failover(ctx: &mut Ctx, args: &[Bytes]) {
    use crate::replication::failover::{Failover, Phase};
    if args.len() == 2 && eq_ic(&args[1], "abort") {
        if !ctx.st.failover.active() {
            return ctx.error("ERR No failover in progress.");
        }
        let new_id = ctx.env.rng.hex_id();
        crate::replication::failover::abort(ctx.st, "Failover manually aborted", new_id);
        return ctx.ok();
    }
    let (mut timeout_ms, mut force, mut target) = (0i64, false, None::<(String, i64)>);
    let mut j = 1;
    while j < args.len() {
        let (next, after) = (args.get(j.saturating_add(1)), args.get(j.saturating_add(2)));
        if eq_ic(&args[j], "timeout") && next.is_some() && timeout_ms == 0 {
            let Some(t) = next.and_then(|a| arg_i64(ctx, a)) else { return };
            if t <= 0 {
                return ctx.error("ERR FAILOVER timeout must be greater than 0");
            }
            timeout_ms = t;
            j = j.saturating_add(2);
        } else if let (true, Some(host), Some(port), None) = (eq_ic(&args[j], "to"), next, after, &target) {
            let Some(port) = arg_i64(ctx, port) else { return };
            target = Some((String::from_utf8_lossy(host).into_owned(), port));
            j = j.saturating_add(3);
        } else if eq_ic(&args[j], "force") && !force {
            force = true;
            j = j.saturating_add(1);
        } else {
            return ctx.error(SYNTAX);
        }
    }
    if ctx.st.failover.active() {
        return ctx.error("ERR FAILOVER already in progress.");
    }
    if ctx.st.repl.is_replica() {
        return ctx.error("ERR FAILOVER is not valid when server is a replica.");
    }
    if ctx.st.repl.replicas.is_empty() {
        return ctx.error("ERR FAILOVER requires connected replicas.");
    }
    if force && (timeout_ms == 0 || target.is_none()) {
        return ctx.error("ERR FAILOVER with force option requires both a timeout and target HOST and IP.");
    }
    let target = match target {
        None => None,
        Some((host, port)) => {
            let found = ctx
                .st
                .repl
                .replicas
                .values()
                .find(|r| r.ip.eq_ignore_ascii_case(&host) && i64::from(r.listening_port) == port);
            let Some(replica) = found else {
                return ctx.error("ERR FAILOVER target HOST and PORT is not a replica.");
            };
            if replica.state != ReplicaState::Online {
                return ctx.error("ERR FAILOVER target replica is not online.");
            }
            Some((host, replica.listening_port))
        }
    };
    match &target {
        Some((host, port)) => tracing::info!("FAILOVER requested to {host}:{port}."),
        None => tracing::info!("FAILOVER requested to any replica."),
    }
    let end_ms = (timeout_ms > 0).then(|| ctx.now_ms.saturating_add(timeout_ms));
    ctx.st.failover = Failover { phase: Phase::WaitForSync, target, end_ms, force };
    ctx.st.pause.by_failover = true;
    let now_ms = ctx.now_ms;
    crate::pause::apply_expire_policy(ctx.st, now_ms);
    crate::fault::probe("repl.failover_started");
    ctx.ok()
}

fn replicaof(ctx: &mut Ctx, args: &[Bytes]) {
    if ctx.st.failover.active() {
        return ctx.error("ERR REPLICAOF not allowed while failing over.");
    }
    if eq_ic(&args[1], "no") && eq_ic(&args[2], "one") {
        if ctx.st.repl.is_replica() {
            let new_id = ctx.env.rng.hex_id();
            promote(ctx.st, new_id);
            tracing::info!("MASTER MODE enabled (user request from '{}')", ctx.client.addr);
        }
        return ctx.ok();
    }
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    let Some(port) = crate::protocol::parse_i64_strict(&args[2]).filter(|p| (0..=65535).contains(p)) else {
        return ctx.error("ERR Invalid master port");
    };
    let port = port as u16;
    if ctx.st.repl.role == (Role::Replica { host: host.clone(), port }) {
        return Reply::simple(ctx.out, "OK Already connected to specified master");
    }
    let generation = demote(ctx.st, host.clone(), port, ctx.now_ms, true);
    tracing::info!("REPLICAOF {host}:{port} enabled (user request from '{}')", ctx.client.addr);
    ctx.defer(Deferred::StartReplication { generation });
}

/// REPLICAOF NO ONE: the history so far stays valid under replid2, so this node's own replicas
/// (and the former master's other replicas) can continue partially.
pub fn promote(st: &mut crate::server::State, new_id: String) {
    let backlog_size = st.config.hot.repl_backlog_size;
    st.repl.become_master(new_id, backlog_size);
    let now_ms = st.now_ms;
    crate::pause::apply_expire_policy(st, now_ms);
    st.config.set_internal("replicaof", "");
    disconnect_replicas(st);
    crate::fault::probe("repl.promoted");
}

/// REPLICAOF host port: keep the data (PSYNC may continue from it), follow the new master.
/// `offer_own_history`: a master turning replica at run time offers its own history to the new
/// master (PSYNC2); at start-up only an RDB's replication id gives history.
pub fn demote(st: &mut crate::server::State, host: String, port: u16, now_ms: i64, offer_own_history: bool) -> u64 {
    st.config.set_internal("replicaof", &format!("{host} {port}"));
    // Clients blocked on this node's keys would wait for writes that now come only from the
    // master (Redis's `disconnectAllBlockedClients`).
    st.blocking.disconnect_all();
    let generation = st.repl.become_replica(host, port, now_ms, offer_own_history);
    // Replicas never expire keys on their own: the master's DELs do it.
    crate::pause::apply_expire_policy(st, now_ms);
    disconnect_replicas(st);
    generation
}

/// Our own replicas must resync with the new history.
fn disconnect_replicas(st: &mut crate::server::State) {
    for id in std::mem::take(&mut st.repl.replicas).keys() {
        if let Some(c) = st.clients.get(id) {
            c.request_kill();
        }
    }
}

fn role(ctx: &mut Ctx, _args: &[Bytes]) {
    match ctx.st.repl.role.clone() {
        Role::Master => {
            Reply::array_len(ctx.out, 3);
            Reply::bulk(ctx.out, b"master");
            Reply::int(ctx.out, ctx.st.repl.offset);
            let replicas: Vec<_> = ctx.st.repl.replicas.values().cloned().collect();
            Reply::array_len(ctx.out, replicas.len());
            for r in replicas {
                Reply::array_len(ctx.out, 3);
                Reply::bulk(ctx.out, r.ip.as_bytes());
                Reply::bulk(ctx.out, r.listening_port.to_string().as_bytes());
                Reply::bulk(ctx.out, r.ack_offset.to_string().as_bytes());
            }
        }
        Role::Replica { host, port } => {
            // Redis's link states as ROLE names them: the handshake is visible while it lasts.
            let link = &ctx.st.repl.link;
            let state = match (link.up, link.sync_in_progress, link.transfer.is_some()) {
                (true, _, _) => "connected",
                (false, true, true) => "sync",
                (false, true, false) => "handshake",
                (false, false, _) => "connect",
            };
            Reply::array_len(ctx.out, 5);
            Reply::bulk(ctx.out, b"slave");
            Reply::bulk(ctx.out, host.as_bytes());
            Reply::int(ctx.out, port as i64);
            Reply::bulk(ctx.out, state.as_bytes());
            Reply::int(ctx.out, ctx.st.repl.offset);
        }
    }
}

fn wait(ctx: &mut Ctx, args: &[Bytes]) {
    if ctx.st.repl.is_replica() {
        return ctx.error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
    }
    let Some(n) = arg_i64(ctx, &args[1]) else { return };
    let Some(timeout) = crate::protocol::parse_i64_strict(&args[2]) else {
        return ctx.error("ERR timeout is not an integer or out of range");
    };
    if timeout < 0 {
        return ctx.error("ERR timeout is negative");
    }
    let target = ctx.st.repl.offset;
    let acked = ctx.st.repl.acked_replicas(target, false);
    // Inside EXEC nothing blocks: the count now, as Redis does for a client that may not block.
    if ctx.client.in_exec || n <= 0 || acked as i64 >= n {
        return ctx.int(acked as i64);
    }
    // Ask the replicas to acknowledge now rather than at their next periodic ACK; not while
    // clients are paused (a GETACK in the stream would move the offset a FAILOVER waits for).
    if ctx.st.pause.kind(ctx.now_ms).is_none() {
        let db = ctx.client.db;
        crate::replication::propagate(ctx.st, db, &[vec![arg("REPLCONF"), arg("GETACK"), arg("*")]]);
    }
    ctx.defer(Deferred::Wait { replicas: n as usize, offset: target, timeout_ms: timeout as u64 });
}

fn replconf(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() % 2 == 0 {
        return ctx.error(SYNTAX);
    }
    for pair in args[1..].chunks_exact(2) {
        let [opt_arg, val] = pair else {
            return ctx.error(SYNTAX);
        };
        let opt = String::from_utf8_lossy(opt_arg).to_ascii_lowercase();
        match opt.as_str() {
            "listening-port" => match crate::protocol::parse_i64_strict(val) {
                Some(p) if (0..=65535).contains(&p) => ctx.client.repl_listening_port = p as u16,
                _ => return ctx.error(NOT_INTEGER),
            },
            "ip-address" if val.len() < 256 => ctx.client.repl_ip = Some(String::from_utf8_lossy(val).into_owned()),
            "ip-address" => return ctx.error("ERR REPLCONF ip-address provided by replica instance is too long"),
            "capa" => {
                if val.eq_ignore_ascii_case(b"eof") {
                    ctx.client.repl_capa_eof = true;
                }
            }
            "rdb-only" | "rdb-filter-only" => {}
            "ack" => {
                // A master never answers ACKs, and ignores them from non-replicas.
                ctx.client.hold_stream = false;
                if let Some(off) = crate::protocol::parse_i64_strict(val) {
                    let now = ctx.now_ms;
                    if let Some(r) = ctx.st.repl.replicas.get_mut(&ctx.client.id) {
                        if let Some(obs) = &ctx.st.observer {
                            obs.emit(crate::observe::Observation::AckReceived { replica: ctx.client.id, offset: off });
                        }
                        if off > r.ack_offset {
                            r.ack_offset = off;
                            ctx.st.acks.notify_waiters();
                        }
                        r.ack_ms = now;
                        if r.state == ReplicaState::SendBulk {
                            r.state = ReplicaState::Online;
                            tracing::info!("Synchronization with replica {}:{} succeeded", r.ip, r.listening_port);
                        }
                    }
                }
                return;
            }
            "getack" => return,
            _ => {
                return ctx.error(&format!("ERR Unrecognized REPLCONF option: {}", String::from_utf8_lossy(opt_arg)));
            }
        }
    }
    ctx.ok()
}

fn psync(ctx: &mut Ctx, args: &[Bytes]) {
    if ctx.client.is_replica {
        return ctx.error("ERR SYNC and PSYNC are invalid with pending output");
    }
    let replid = String::from_utf8_lossy(&args[1]).into_owned();
    if args.len() > 3 && eq_ic(&args[3], "failover") && !accept_failover(ctx, &replid) {
        return;
    }
    if ctx.st.failover.active() {
        return ctx.error("NOMASTERLINK Can't SYNC while failing over");
    }
    // `PSYNC ? -1` asks for a full sync; any other offset must be an integer (Redis replies with
    // the error rather than starting a full sync on garbage).
    let Some(offset) = arg_i64(ctx, &args[2]) else {
        return;
    };
    list_waiting_replica(ctx, &replid, offset, false);
    ctx.defer(Deferred::Sync { replid, offset, legacy: false });
}

/// `PSYNC <replid> <offset> FAILOVER` from our master handing over: this replica becomes the
/// master if its history is the sender's (the PSYNC then continues from it as from any
/// master). False when refused (the error is the reply).
fn accept_failover(ctx: &mut Ctx, replid: &str) -> bool {
    tracing::warn!("Failover request received for replid {replid}.");
    if !ctx.st.repl.is_replica() {
        ctx.error("ERR PSYNC FAILOVER can't be sent to a master.");
        return false;
    }
    if !replid.eq_ignore_ascii_case(&ctx.st.repl.replid) {
        ctx.error("ERR PSYNC FAILOVER replid must match my replid.");
        return false;
    }
    let new_id = ctx.env.rng.hex_id();
    promote(ctx.st, new_id);
    debug_assert!(!ctx.st.repl.is_replica());
    tracing::info!("MASTER MODE enabled (failover request from '{}')", ctx.client.addr);
    crate::fault::probe("repl.failover_target_promoted");
    true
}

/// A replica that will need a full sync is listed at once (`state=wait_bgsave`), before the
/// diskless delay: a sentinel that looks at the master then learns about it, as with Redis.
fn list_waiting_replica(ctx: &mut Ctx, replid: &str, offset: i64, legacy: bool) {
    if ctx.st.repl.is_replica() && !ctx.st.repl.link.up {
        return; // refused in the deferred part (NOMASTERLINK)
    }
    if !legacy && ctx.st.repl.can_continue(replid, offset) {
        return;
    }
    let ip = ctx.client.repl_ip.clone().unwrap_or_else(|| crate::replication::peer_ip(&ctx.client.addr));
    let info = crate::replication::ReplicaInfo {
        ip,
        listening_port: ctx.client.repl_listening_port,
        state: ReplicaState::WaitBgsave,
        ack_offset: 0,
        ack_ms: ctx.now_ms,
    };
    ctx.st.repl.replicas.insert(ctx.client.id, info);
    crate::fault::probe("repl.replica_listed_waiting");
}

fn sync(ctx: &mut Ctx, _args: &[Bytes]) {
    if ctx.client.is_replica {
        return ctx.error("ERR SYNC and PSYNC are invalid with pending output");
    }
    if ctx.st.failover.active() {
        return ctx.error("NOMASTERLINK Can't SYNC while failing over");
    }
    list_waiting_replica(ctx, "?", -1, true);
    ctx.defer(Deferred::Sync { replid: "?".into(), offset: -1, legacy: true });
}
