//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queued commands run back to back under the server lock, so no other client's command can
//! interleave: the atomicity Redis gives. WATCH is optimistic: a write to a watched key (or its
//! expiry) marks the watcher dirty, and EXEC then replies with a null array.

use bytes::Bytes;

use super::*;
use crate::protocol::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "multi",
        arity: 1,
        flags: NO_SCRIPT | FAST | NO_QUEUE | LOADING | STALE,
        keys: (0, 0, 0),
        handler: multi,
    },
    CommandSpec {
        name: "exec",
        arity: 1,
        flags: NO_SCRIPT | NO_QUEUE | LOADING | STALE,
        keys: (0, 0, 0),
        handler: exec,
    },
    CommandSpec {
        name: "discard",
        arity: 1,
        flags: NO_SCRIPT | FAST | NO_QUEUE | LOADING | STALE,
        keys: (0, 0, 0),
        handler: discard,
    },
    CommandSpec {
        name: "watch",
        arity: -2,
        flags: NO_SCRIPT | FAST | NO_QUEUE | LOADING | STALE,
        keys: (1, -1, 1),
        handler: watch,
    },
    CommandSpec {
        name: "unwatch",
        arity: 1,
        flags: NO_SCRIPT | FAST | LOADING | STALE,
        keys: (0, 0, 0),
        handler: unwatch,
    },
];

fn multi(ctx: &mut Ctx, _args: &[Bytes]) {
    if ctx.client.multi.is_some() {
        return ctx.error("ERR MULTI calls can not be nested");
    }
    ctx.client.multi = Some(Multi::default());
    ctx.ok()
}

pub(super) fn clear_watches(ctx: &mut Ctx) {
    let watched = std::mem::take(&mut ctx.client.watched);
    ctx.st.watches.unwatch_all(ctx.client.id, &watched);
}

fn exec(ctx: &mut Ctx, _args: &[Bytes]) {
    let Some(m) = ctx.client.multi.take() else {
        return ctx.error("ERR EXEC without MULTI");
    };
    if m.failed {
        crate::fault::probe("multi.execabort");
        clear_watches(ctx);
        return ctx.error("EXECABORT Transaction discarded because of previous errors.");
    }
    // A watched key that expired since WATCH counts as modified (Redis 7).
    let expired_since = ctx.client.watched.iter().any(|(db, k)| ctx.st.ks.dbs[*db].is_expired(k, ctx.now_ms));
    if ctx.st.watches.dirty.contains(&ctx.client.id) || expired_since {
        crate::fault::probe("multi.exec_aborted_by_watch");
        clear_watches(ctx);
        return ctx.null_array();
    }
    clear_watches(ctx);
    // The node may have become a read-only replica since the writes were queued: Redis treats
    // an EXEC with queued writes as a write, refused READONLY, which aborts the transaction.
    let is_readonly_replica = ctx.st.repl.is_replica() && ctx.st.config.hot.replica_read_only && !ctx.client.is_master;
    if is_readonly_replica && m.queue.iter().any(|(spec, _)| spec.is_write()) {
        crate::fault::probe("multi.exec_refused_readonly");
        return ctx.error(
            "EXECABORT Transaction discarded because of: READONLY You can't write against a read only replica.",
        );
    }
    Reply::array_len(ctx.out, m.queue.len());
    // The queued writes reach replicas wrapped in MULTI/EXEC, so they apply atomically there too.
    ctx.st.repl.in_exec = true;
    ctx.client.in_exec = true;
    for (spec, args) in m.queue {
        // Errors found at run time (wrong type, OOM) are per-command replies; the rest still run.
        if spec.flags & DENYOOM != 0 && over_maxmemory(ctx.st) {
            ctx.error("OOM command not allowed when used memory > 'maxmemory'.");
            continue;
        }
        // A command whose work is deferred (CONFIG REWRITE, REPLICAOF host port, BGSAVE, DEBUG
        // SLEEP) leaves its reply's place in the array to the connection (`Ctx::defer`).
        call(ctx, spec, &args);
    }
    ctx.client.in_exec = false;
    crate::replication::end_exec(ctx.st);
    crate::aof::end_exec(ctx.st);
}

fn discard(ctx: &mut Ctx, _args: &[Bytes]) {
    if ctx.client.multi.take().is_none() {
        return ctx.error("ERR DISCARD without MULTI");
    }
    clear_watches(ctx);
    ctx.ok()
}

fn watch(ctx: &mut Ctx, args: &[Bytes]) {
    if ctx.client.multi.is_some() {
        return ctx.error("ERR WATCH inside MULTI is not allowed");
    }
    let db = ctx.client.db;
    for k in &args[1..] {
        let key = Sds::new(k);
        if ctx.client.watched.iter().any(|(d, w)| *d == db && *w == key) {
            continue;
        }
        // A key already expired when watched is deleted first, so that its deletion does not
        // dirty this very watch.
        ctx.st.ks.expire_if_needed(db, k, ctx.now_ms);
        propagate_expired(ctx.st, true);
        ctx.st.watches.watch(ctx.client.id, db, key.clone());
        ctx.client.watched.push((db, key));
    }
    ctx.ok()
}

fn unwatch(ctx: &mut Ctx, _args: &[Bytes]) {
    clear_watches(ctx);
    ctx.ok()
}
