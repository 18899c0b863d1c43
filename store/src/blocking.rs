//! Blocking commands' waiting room (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
//! BZPOPMAX, BZMPOP): which client waits on which keys, in arrival order, and what each one gets
//! when it is served, times out or is unblocked. Redis's `blocked.c`, for lists and sorted sets.
//!
//! Why it is shaped this way:
//! - A blocked client's command is decided under the server lock by whoever made its key ready,
//!   exactly as Redis's `handleClientsBlockedOnKeys` runs after a command, a MULTI/EXEC or the
//!   master's stream: the push and the pops it feeds are one step, so no other client can take
//!   the element in between, and clients are served in the order they blocked.
//! - Serving re-runs the blocked command's own handler on the client's behalf (with a session
//!   that carries the client's db and protocol, and `serving` naming the ready key), so a blocking
//!   pop has one implementation of its reply and its propagation (as LPOP, LMOVE, ZPOPMIN...).
//!   Like Redis 7.0, a served client pops from the key that became ready, not from its first key.
//! - The waiting itself is the connection's (`connection.rs`): it keeps reading the socket (a
//!   client that disconnects must not be served an element it will never see), watches its kill
//!   flag, and checks the deadline by the node's clock (the clock seam: skew and jumps apply).
//! - Limits: one entry per connection (so at most `maxclients`); the keys of an entry are the
//!   command's arguments, already bounded by the query buffer.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::cmd::{CommandSpec, Ctx, Session};
use crate::protocol::{Proto, Reply};
use crate::sds::Sds;
use crate::server::State;

/// How a blocked client's wait ended.
#[derive(Debug)]
pub enum Outcome {
    /// Its command ran: the reply, and the AOF position its write reached (the reply waits for
    /// the AOF as any write's does).
    Served { reply: BytesMut, aof_mark: u64 },
    /// The deadline passed, or CLIENT UNBLOCK ... TIMEOUT.
    TimedOut,
    /// CLIENT UNBLOCK ... ERROR, or the server became a replica; `close` ends the connection
    /// after the reply (Redis's `disconnectAllBlockedClients`).
    Error { message: String, close: bool },
}

/// A blocked client: the command to run again, where, and how to tell it.
pub struct Blocked {
    pub spec: &'static CommandSpec,
    pub args: Vec<Bytes>,
    pub db: usize,
    /// The keys waited on, without repetitions, in the command's order.
    pub keys: Vec<Sds>,
    pub proto: Proto,
    /// The node-clock time (ms) at which it times out; None waits for ever (timeout 0).
    pub deadline_ms: Option<i64>,
    /// Which type of value serves it (Redis serves only clients of the ready key's type).
    pub wants: &'static str,
    pub outcome: Option<Outcome>,
    pub wake: Arc<Notify>,
}

/// Every blocked client, and the keys made ready since the last serving pass.
pub struct Blocking {
    /// By client id (ordered: CLIENT LIST and INFO walk it deterministically).
    clients: BTreeMap<u64, Blocked>,
    /// (db, key) -> the clients blocked on it, first blocked first.
    by_key: HashMap<(usize, Sds), VecDeque<u64>, ahash::RandomState>,
    /// Keys with waiters that a write touched, in the order they were touched.
    ready: Vec<(usize, Sds)>,
    ready_set: HashSet<(usize, Sds), ahash::RandomState>,
}

/// How long a blocked connection sleeps between looks at its deadline, at most: the node clock
/// may jump, so the deadline is re-read rather than slept to.
pub const RECHECK_MS_MAX: u64 = 100;

impl Blocking {
    pub fn new() -> Blocking {
        // Fixed seeds, and no `Default` (whose `RandomState::new()` would seed itself from the
        // process's randomness the first time: under madsim, a draw from the simulation's RNG
        // in the first run of a seed and not in its replay, which the determinism check caught).
        Blocking {
            clients: BTreeMap::new(),
            by_key: HashMap::with_hasher(ahash::RandomState::with_seeds(5, 6, 7, 8)),
            ready: Vec::new(),
            ready_set: HashSet::with_hasher(ahash::RandomState::with_seeds(5, 6, 7, 8)),
        }
    }

    /// Clients blocked now (INFO's `blocked_clients`, counting those whose outcome is decided
    /// but not yet delivered, as Redis counts them until they are unblocked).
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Blocked clients with a timeout (INFO's `clients_in_timeout_table`).
    pub fn with_deadline(&self) -> usize {
        self.clients.values().filter(|b| b.deadline_ms.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Keys blocked on (INFO's `total_blocking_keys` in later versions; used by tests).
    pub fn keys_len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_blocked(&self, id: u64) -> bool {
        self.clients.get(&id).is_some_and(|b| b.outcome.is_none())
    }

    /// Registers a client as blocked. Each key is waited on once, whatever its repetitions.
    pub fn block(&mut self, id: u64, blocked: Blocked) {
        assert!(!self.clients.contains_key(&id), "a client blocks on one command at a time");
        assert!(!blocked.keys.is_empty(), "a blocking command waits on at least one key");
        for k in &blocked.keys {
            self.by_key.entry((blocked.db, k.clone())).or_default().push_back(id);
        }
        self.clients.insert(id, blocked);
    }

    /// Removes a client from the key queues (its entry stays until the connection takes it).
    fn unlink(&mut self, id: u64) {
        let Some(b) = self.clients.get(&id) else { return };
        for k in &b.keys {
            let slot = (b.db, k.clone());
            if let Some(q) = self.by_key.get_mut(&slot) {
                q.retain(|&c| c != id);
                if q.is_empty() {
                    self.by_key.remove(&slot);
                }
            }
        }
    }

    /// Decides a client's wait (served, timed out, unblocked) and wakes its connection.
    pub fn finish(&mut self, id: u64, outcome: Outcome) {
        self.unlink(id);
        let Some(b) = self.clients.get_mut(&id) else { return };
        debug_assert!(b.outcome.is_none(), "a wait ends once");
        b.outcome = Some(outcome);
        b.wake.notify_one();
    }

    /// The connection's look: the outcome if decided, or a timeout if the deadline passed by
    /// the node clock `now_ms`; the entry is gone afterwards. None while still waiting.
    pub fn take_outcome(&mut self, id: u64, now_ms: i64) -> Option<Outcome> {
        let b = self.clients.get(&id)?;
        let timed_out = b.outcome.is_none() && b.deadline_ms.is_some_and(|d| now_ms >= d);
        if timed_out {
            crate::fault::probe("blocking.timed_out");
            self.finish(id, Outcome::TimedOut);
        }
        if self.clients.get(&id)?.outcome.is_none() {
            return None;
        }
        self.clients.remove(&id).and_then(|b| b.outcome)
    }

    /// A disconnected client's entry, whatever its state.
    pub fn forget(&mut self, id: u64) {
        self.unlink(id);
        self.clients.remove(&id);
    }

    /// The node-clock deadline of a still-waiting client.
    pub fn deadline_ms(&self, id: u64) -> Option<i64> {
        self.clients.get(&id).and_then(|b| b.deadline_ms)
    }

    /// Redis's `signalKeyAsReady`: a write touched `key`; if anyone waits on it, it is looked
    /// at after the current command (or transaction) completes.
    pub fn signal(&mut self, db: usize, key: &[u8]) {
        if self.by_key.is_empty() {
            return;
        }
        let slot = (db, Sds::new(key));
        if self.by_key.contains_key(&slot) && self.ready_set.insert(slot.clone()) {
            self.ready.push(slot);
        }
    }

    /// Redis's `disconnectAllBlockedClients`: the server became a replica, so what its clients
    /// wait for will never come from them; each gets `-UNBLOCKED` and its connection closes.
    pub fn disconnect_all(&mut self) {
        let ids: Vec<u64> = self.clients.iter().filter(|(_, b)| b.outcome.is_none()).map(|(&id, _)| id).collect();
        for id in ids {
            let message =
                "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)";
            self.finish(id, Outcome::Error { message: message.into(), close: true });
        }
    }
}

/// The session a blocked client's command is re-run with when its key is ready.
fn serving_session(id: u64, b: &Blocked, key: &Sds) -> Session {
    let mut s = Session::new(id, String::new(), String::new(), false);
    s.db = b.db;
    s.proto = b.proto;
    s.authenticated = true;
    s.serving = Some(key.clone());
    s
}

/// Redis's `handleClientsBlockedOnKeys`: serves the clients blocked on every key made ready,
/// first blocked first, for as long as serving makes more keys ready (BLMOVE pushes). Called
/// after each top-level command, with the lock held.
pub fn serve_ready(st: &mut State, env: &crate::env::Env, now_ms: i64) {
    // Each pass serves at least one client or makes no key ready, and each client is served at
    // most once, so the passes are bounded by the blocked clients (plus the final empty pass).
    let passes_max = st.blocking.len().saturating_add(2);
    for _ in 0..passes_max {
        if st.blocking.ready.is_empty() {
            return;
        }
        let ready = std::mem::take(&mut st.blocking.ready);
        st.blocking.ready_set.clear();
        for (db, key) in ready {
            serve_key(st, env, now_ms, db, &key);
        }
    }
    debug_assert!(st.blocking.ready.is_empty(), "serving converges");
}

/// Serves the clients blocked on one ready key, in order, while the key holds what they want.
fn serve_key(st: &mut State, env: &crate::env::Env, now_ms: i64, db: usize, key: &Sds) {
    let Some(waiting) = st.blocking.by_key.get(&(db, key.clone())).cloned() else { return };
    for id in waiting {
        let Some(kind) = st.ks.lookup(db, key, now_ms).map(|v| v.type_name()) else {
            return; // Emptied (and deleted) by the clients served before.
        };
        let Some(b) = st.blocking.clients.get(&id) else { continue };
        if b.outcome.is_some() || b.wants != kind {
            continue;
        }
        let (spec, args) = (b.spec, b.args.clone());
        let mut session = serving_session(id, b, key);
        let mut reply = BytesMut::new();
        let mut ctx = Ctx { st: &mut *st, client: &mut session, out: &mut reply, env, now_ms, frame: None };
        crate::cmd::call(&mut ctx, spec, &args);
        // The command was counted when it first ran; this is the same command finishing.
        st.stats.total_commands_processed = st.stats.total_commands_processed.saturating_sub(1);
        if session.still_blocked {
            continue;
        }
        assert!(!reply.is_empty(), "a served blocking command replies");
        crate::fault::probe("blocking.served");
        let aof_mark = st.aof.fed;
        st.blocking.finish(id, Outcome::Served { reply, aof_mark });
    }
}

/// What a blocking handler calls when nothing is there to take: registers the client (or, when
/// the client may not block, answers as a timeout would).
/// `nil_array` is the shape of that immediate answer: a null array, or (BLMOVE) a null bulk.
pub fn block_or_nil(
    ctx: &mut Ctx,
    args: &[Bytes],
    keys: &[Bytes],
    deadline_ms: Option<i64>,
    wants: &'static str,
    nil_array: bool,
) {
    if ctx.client.serving.is_some() {
        // Re-run for a ready key that was emptied by an earlier client: keep waiting.
        ctx.client.still_blocked = true;
        return;
    }
    // Redis's CLIENT_DENY_BLOCKING: inside MULTI/EXEC (or a script), and for the master's
    // stream, a blocking command answers at once as if it had timed out.
    if ctx.client.in_exec || ctx.client.is_master {
        crate::fault::probe("blocking.denied");
        return if nil_array { ctx.null_array() } else { ctx.null() };
    }
    let mut unique: Vec<Sds> = Vec::with_capacity(keys.len());
    for k in keys {
        if !unique.iter().any(|u| u.as_bytes() == &k[..]) {
            unique.push(Sds::new(k));
        }
    }
    let spec = ctx.st.commands.lookup(&args[0]).expect("a running command is in the table");
    let entry = ctx.st.clients.get(&ctx.client.id);
    let wake = entry.map(|e| e.wake.clone()).unwrap_or_default();
    let blocked = Blocked {
        spec,
        args: args.to_vec(),
        db: ctx.client.db,
        keys: unique,
        proto: ctx.client.proto,
        deadline_ms,
        wants,
        outcome: None,
        wake,
    };
    crate::fault::probe("blocking.blocked");
    ctx.st.blocking.block(ctx.client.id, blocked);
    ctx.client.blocked = true;
}

/// Redis's `getTimeoutFromObjectOrReply` in seconds: a float (rounded up to whole ms), not
/// negative; 0 waits for ever. Returns the node-clock deadline (None for ever), or None after
/// replying the error.
pub fn parse_timeout(ctx: &mut Ctx, arg: &[u8]) -> Option<Option<i64>> {
    let Some(secs) = crate::cmd::parse_f64(arg) else {
        ctx.error("ERR timeout is not a float or out of range");
        return None;
    };
    let ms = (secs * 1000.0).ceil();
    // Redis converts to a C long long: a value past its range (1e400, inf) comes out negative.
    if ms < 0.0 || ms >= i64::MAX as f64 {
        ctx.error("ERR timeout is negative");
        return None;
    }
    let ms = ms as i64;
    Some((ms > 0).then(|| ctx.now_ms.saturating_add(ms)))
}

/// BLPOP/BZPOPMIN's `key [key ...] timeout`: the keys and the deadline; None after replying.
pub fn keys_and_deadline<'a>(ctx: &mut Ctx, args: &'a [Bytes]) -> Option<(&'a [Bytes], Option<i64>)> {
    // Arity -3: at least one key before the timeout.
    let (Some((timeout, rest)), Some(_)) = (args.split_last(), args.get(2)) else {
        ctx.error(crate::cmd::SYNTAX);
        return None;
    };
    let deadline = parse_timeout(ctx, timeout)?;
    Some((&rest[1..], deadline))
}

/// The *MPOP grammar after `numkeys_at` (Redis's `lmpopGenericCommand`/`zmpopGenericCommand`):
/// the keys, the side (`side` parses LEFT|RIGHT or MIN|MAX), and COUNT (default 1). None after
/// replying Redis's error.
pub fn parse_mpop<'a, T>(
    ctx: &mut Ctx,
    args: &'a [Bytes],
    numkeys_at: usize,
    side: fn(&[u8]) -> Option<T>,
) -> Option<(&'a [Bytes], T, i64)> {
    use crate::cmd::{eq_ic, SYNTAX};
    let msg = "ERR numkeys should be greater than 0";
    let numkeys = crate::cmd::sets::range_arg_msg(ctx, &args[numkeys_at], 1, i64::MAX, msg)?;
    let rest = &args[numkeys_at.saturating_add(1)..];
    if numkeys as u64 >= rest.len() as u64 {
        ctx.error(SYNTAX);
        return None;
    }
    let (keys, rest) = rest.split_at(numkeys as usize);
    let Some(side) = side(&rest[0]) else {
        ctx.error(SYNTAX);
        return None;
    };
    let mut count = None;
    let mut opts = rest[1..].iter();
    while let Some(opt) = opts.next() {
        if count.is_none() && opts.len() > 0 && eq_ic(opt, "count") {
            let msg = "ERR count should be greater than 0";
            count = Some(crate::cmd::sets::range_arg_msg(ctx, opts.next()?, 1, i64::MAX, msg)?);
        } else {
            ctx.error(SYNTAX);
            return None;
        }
    }
    Some((keys, side, count.unwrap_or(1)))
}

/// The reply a wait that timed out gets: a null array in the client's protocol.
pub fn timed_out_reply(out: &mut BytesMut, proto: Proto) {
    Reply::null_array(out, proto);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(keys: &[&str]) -> Blocked {
        static SPEC: CommandSpec =
            CommandSpec { name: "blpop", arity: -3, flags: 0, keys: (1, -2, 1), handler: |_, _| {} };
        Blocked {
            spec: &SPEC,
            args: Vec::new(),
            db: 0,
            keys: keys.iter().map(|k| Sds::new(k.as_bytes())).collect(),
            proto: Proto::Resp2,
            deadline_ms: Some(1000),
            wants: "list",
            outcome: None,
            wake: Arc::default(),
        }
    }

    #[test]
    fn keys_are_queued_in_arrival_order_and_unlinked_when_done() {
        let mut b = Blocking::new();
        b.block(1, entry(&["a", "b"]));
        b.block(2, entry(&["a"]));
        assert_eq!(b.by_key[&(0, Sds::new(b"a"))], VecDeque::from([1, 2]));
        b.signal(0, b"a");
        b.signal(0, b"a");
        b.signal(0, b"zzz");
        assert_eq!(b.ready.len(), 1, "a key is ready once, and only if someone waits on it");
        b.finish(1, Outcome::TimedOut);
        assert_eq!(b.by_key[&(0, Sds::new(b"a"))], VecDeque::from([2]));
        assert!(!b.by_key.contains_key(&(0, Sds::new(b"b"))), "an emptied queue is removed");
        assert!(matches!(b.take_outcome(1, 0), Some(Outcome::TimedOut)));
        assert_eq!(b.len(), 1);
        b.forget(2);
        assert!(b.is_empty() && b.keys_len() == 0);
    }

    #[test]
    fn the_deadline_is_judged_by_the_clock_given() {
        let mut b = Blocking::new();
        b.block(7, entry(&["k"]));
        assert!(b.take_outcome(7, 999).is_none());
        assert!(b.is_blocked(7));
        assert!(matches!(b.take_outcome(7, 1000), Some(Outcome::TimedOut)));
        assert!(b.take_outcome(7, 1000).is_none(), "taken once");
    }
}
