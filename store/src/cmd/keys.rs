//! Generic key commands: DEL, UNLINK, EXISTS, TYPE, KEYS, SCAN, RENAME, RENAMENX, RANDOMKEY,
//! EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST, TOUCH.

use bytes::Bytes;

use super::*;
use crate::glob::glob_match;
use crate::protocol::{parse_i64_strict, Reply};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "del", arity: -2, flags: WRITE | SIGNALS_OWN_KEYS, keys: (1, -1, 1), handler: del },
    CommandSpec { name: "unlink", arity: -2, flags: WRITE | FAST | SIGNALS_OWN_KEYS, keys: (1, -1, 1), handler: del },
    CommandSpec { name: "exists", arity: -2, flags: READONLY | FAST, keys: (1, -1, 1), handler: exists },
    CommandSpec { name: "touch", arity: -2, flags: READONLY | FAST, keys: (1, -1, 1), handler: exists },
    CommandSpec { name: "type", arity: 2, flags: READONLY | FAST, keys: (1, 1, 1), handler: type_ },
    CommandSpec { name: "keys", arity: 2, flags: READONLY, keys: (0, 0, 0), handler: keys },
    CommandSpec { name: "scan", arity: -2, flags: READONLY, keys: (0, 0, 0), handler: scan },
    CommandSpec { name: "rename", arity: 3, flags: WRITE, keys: (1, 2, 1), handler: rename },
    CommandSpec { name: "renamenx", arity: 3, flags: WRITE | FAST, keys: (1, 2, 1), handler: renamenx },
    CommandSpec { name: "randomkey", arity: 1, flags: READONLY, keys: (0, 0, 0), handler: randomkey },
    CommandSpec { name: "expire", arity: -3, flags: WRITE | FAST, keys: (1, 1, 1), handler: expire },
    CommandSpec { name: "pexpire", arity: -3, flags: WRITE | FAST, keys: (1, 1, 1), handler: pexpire },
    CommandSpec { name: "expireat", arity: -3, flags: WRITE | FAST, keys: (1, 1, 1), handler: expireat },
    CommandSpec { name: "pexpireat", arity: -3, flags: WRITE | FAST, keys: (1, 1, 1), handler: pexpireat },
    CommandSpec { name: "ttl", arity: 2, flags: READONLY | FAST, keys: (1, 1, 1), handler: ttl },
    CommandSpec { name: "pttl", arity: 2, flags: READONLY | FAST, keys: (1, 1, 1), handler: pttl },
    CommandSpec { name: "expiretime", arity: 2, flags: READONLY | FAST, keys: (1, 1, 1), handler: expiretime },
    CommandSpec { name: "pexpiretime", arity: 2, flags: READONLY | FAST, keys: (1, 1, 1), handler: pexpiretime },
    CommandSpec { name: "persist", arity: 2, flags: WRITE | FAST, keys: (1, 1, 1), handler: persist },
];

fn del(ctx: &mut Ctx, args: &[Bytes]) {
    let db = ctx.db();
    let keys = &args[1..];
    let deleted = keys
        .iter()
        .filter(|k| {
            ctx.st.ks.expire_if_needed(db, k, ctx.now_ms);
            let deleted = ctx.st.ks.delete(db, k);
            if deleted {
                // Only the keys deleted are modified (WATCH of a missing key stays clean).
                ctx.signal_modified(k);
            }
            deleted
        })
        .count();
    ctx.dirty(deleted as u64);
    if crate::fault::planted("del-miscount") {
        return ctx.int(keys.len() as i64);
    }
    ctx.int(deleted as i64)
}

fn exists(ctx: &mut Ctx, args: &[Bytes]) {
    let db = ctx.db();
    let n = args[1..].iter().filter(|k| ctx.st.ks.exists(db, k, ctx.now_ms)).count();
    ctx.int(n as i64)
}

fn type_(ctx: &mut Ctx, args: &[Bytes]) {
    let t = ctx.st.ks.lookup(ctx.client.db, &args[1], ctx.now_ms).map(|v| v.type_name()).unwrap_or("none");
    Reply::simple(ctx.out, t)
}

fn keys(ctx: &mut Ctx, args: &[Bytes]) {
    let db = ctx.db();
    let pattern = &args[1];
    let all = pattern[..] == b"*"[..];
    let now = ctx.now_ms;
    let d = &ctx.st.ks.dbs[db];
    let matched: Vec<Sds> =
        d.keys().filter(|k| !d.is_expired(k, now) && (all || glob_match(pattern, k, false))).cloned().collect();
    Reply::bulk_array(ctx.out, matched.iter());
}

fn scan(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(cursor) = super::sets::scan_cursor(ctx, &args[1]) else {
        return;
    };
    let mut pattern: Option<Bytes> = None;
    let mut count = 10usize;
    let mut type_filter: Option<String> = None;
    for pair in args[2..].chunks(2) {
        let [opt, value] = pair else {
            return ctx.error(SYNTAX);
        };
        if eq_ic(opt, "match") {
            pattern = Some(value.clone());
        } else if eq_ic(opt, "count") {
            match parse_i64_strict(value) {
                Some(c) if c >= 1 => count = (c as usize).min(1 << 20),
                Some(_) => return ctx.error(SYNTAX),
                None => return ctx.error(NOT_INTEGER),
            }
        } else if eq_ic(opt, "type") {
            type_filter = Some(String::from_utf8_lossy(value).to_ascii_lowercase());
        } else {
            return ctx.error(SYNTAX);
        }
    }
    let db = ctx.db();
    let mut found = Vec::new();
    let next = ctx.st.ks.dbs[db].scan(cursor, count, &mut found);
    let now = ctx.now_ms;
    let mut keep = Vec::with_capacity(found.len());
    for k in found {
        // Expired keys met by SCAN are deleted (master) or hidden (replica), as Redis does.
        if ctx.st.ks.lookup(db, &k, now).is_none() {
            continue;
        }
        if let Some(p) = &pattern {
            if !glob_match(p, &k, false) {
                continue;
            }
        }
        if let Some(t) = &type_filter {
            if ctx.st.ks.dbs[db].get_raw(&k).map(|v| v.type_name()) != Some(t.as_str()) {
                continue;
            }
        }
        keep.push(k);
    }
    Reply::array_len(ctx.out, 2);
    Reply::bulk(ctx.out, next.to_string().as_bytes());
    Reply::bulk_array(ctx.out, keep.iter());
}

fn rename_impl(ctx: &mut Ctx, args: &[Bytes], nx: bool) {
    let db = ctx.db();
    let now = ctx.now_ms;
    let (src, dst) = (&args[1], &args[2]);
    if ctx.st.ks.lookup(db, src, now).is_none() {
        return ctx.error(NO_SUCH_KEY);
    }
    if src == dst {
        return if nx { ctx.int(0) } else { ctx.ok() };
    }
    if nx && ctx.st.ks.exists(db, dst, now) {
        return ctx.int(0);
    }
    let ttl = ctx.st.ks.dbs[db].expire_at(src);
    let value = ctx.st.ks.dbs[db].remove(src).expect("looked up above");
    ctx.st.ks.dbs[db].remove(dst);
    ctx.st.ks.dbs[db].insert(Sds::new(dst), value, false);
    if let Some(at) = ttl {
        ctx.st.ks.dbs[db].set_expire(dst, at);
    }
    ctx.dirty(1);
    if nx {
        ctx.int(1)
    } else {
        ctx.ok()
    }
}

fn rename(ctx: &mut Ctx, args: &[Bytes]) {
    rename_impl(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx, args: &[Bytes]) {
    rename_impl(ctx, args, true)
}

fn randomkey(ctx: &mut Ctx, _args: &[Bytes]) {
    let db = ctx.db();
    // A bounded number of tries: with many expired keys on a replica we may keep hitting them,
    // and Redis then returns one anyway after 100 tries.
    for attempt in 0..100 {
        let rng = &ctx.env.rng;
        let Some(k) = ctx.st.ks.dbs[db].random_key(|n| rng.below(n)).cloned() else {
            return ctx.null();
        };
        if ctx.st.ks.lookup(db, &k, ctx.now_ms).is_some() || attempt == 99 {
            return ctx.bulk(&k);
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Unit {
    Seconds,
    Millis,
}

/// EXPIRE family: `relative` adds to now; NX/XX/GT/LT as Redis 7.
/// Options are checked before the time, as Redis does (`EXPIRE k x NX XX` is an option error).
fn expire_generic(ctx: &mut Ctx, args: &[Bytes], unit: Unit, relative: bool) {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..] {
        let o = String::from_utf8_lossy(opt).to_ascii_lowercase();
        match o.as_str() {
            "nx" => nx = true,
            "xx" => xx = true,
            "gt" => gt = true,
            "lt" => lt = true,
            // Redis formats the option as a C string: it ends at a NUL byte.
            _ => return ctx.error_format(&format!("ERR Unsupported option {}", c_str(opt, usize::MAX))),
        }
    }
    if nx && (xx || gt || lt) {
        return ctx.error("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return ctx.error("ERR GT and LT options at the same time are not compatible");
    }
    let Some(v) = arg_i64(ctx, &args[2]) else {
        return;
    };
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let invalid = format!("ERR invalid expire time in '{name}' command");
    let ms = if unit == Unit::Seconds { v.checked_mul(1000) } else { Some(v) };
    let Some(ms) = ms else {
        return ctx.error(&invalid);
    };
    let at = if relative { ms.checked_add(ctx.now_ms) } else { Some(ms) };
    let Some(at) = at else {
        return ctx.error(&invalid);
    };
    let db = ctx.db();
    if ctx.st.ks.lookup(db, &args[1], ctx.now_ms).is_none() {
        return ctx.int(0);
    }
    let current = ctx.st.ks.dbs[db].expire_at(&args[1]);
    // A key without TTL has an infinite one for GT/LT purposes.
    let allowed = match current {
        None => !xx && !gt,
        Some(cur) => !nx && (!gt || at > cur) && (!lt || at < cur),
    };
    if !allowed {
        return ctx.int(0);
    }
    if at <= ctx.now_ms && ctx.st.ks.policy == crate::db::ExpirePolicy::Delete {
        // A deadline in the past deletes the key now (propagated as DEL).
        ctx.st.ks.delete(db, &args[1]);
        rewrite_as(ctx, vec![vec![arg("DEL"), args[1].clone()]]);
    } else {
        ctx.st.ks.dbs[db].set_expire(&args[1], at);
        // Replicas get the absolute deadline: their clocks and apply times differ.
        rewrite_as(ctx, vec![vec![arg("PEXPIREAT"), args[1].clone(), arg(at.to_string())]]);
    }
    ctx.dirty(1);
    ctx.int(1)
}

fn expire(ctx: &mut Ctx, args: &[Bytes]) {
    expire_generic(ctx, args, Unit::Seconds, true)
}
fn pexpire(ctx: &mut Ctx, args: &[Bytes]) {
    expire_generic(ctx, args, Unit::Millis, true)
}
fn expireat(ctx: &mut Ctx, args: &[Bytes]) {
    expire_generic(ctx, args, Unit::Seconds, false)
}
fn pexpireat(ctx: &mut Ctx, args: &[Bytes]) {
    expire_generic(ctx, args, Unit::Millis, false)
}

/// TTL family: -2 if no key, -1 if no deadline.
fn ttl_generic(ctx: &mut Ctx, args: &[Bytes], unit: Unit, absolute: bool) {
    let db = ctx.db();
    if ctx.st.ks.lookup(db, &args[1], ctx.now_ms).is_none() {
        return ctx.int(-2);
    }
    let Some(at) = ctx.st.ks.dbs[db].expire_at(&args[1]) else {
        return ctx.int(-1);
    };
    // Negative values read as 0, as in Redis (the key is live, so its deadline is after now).
    let v = if absolute { at } else { at.saturating_sub(ctx.now_ms) }.max(0);
    let out = match unit {
        Unit::Seconds => ms_to_secs_rounded(v),
        Unit::Millis => v,
    };
    ctx.int(out)
}

/// Milliseconds (not negative) to seconds rounded to the nearest, as Redis's `(ms+500)/1000`
/// for TTL and EXPIRETIME. That expression overflows for a deadline near i64::MAX (a client can
/// set one with PEXPIREAT); Redis's build answers as if computed exactly, and so does this.
fn ms_to_secs_rounded(ms: i64) -> i64 {
    // At most i64::MAX / 1000 plus one: the addition cannot saturate.
    (ms / 1000).saturating_add(i64::from(ms % 1000 >= 500))
}

fn ttl(ctx: &mut Ctx, args: &[Bytes]) {
    ttl_generic(ctx, args, Unit::Seconds, false)
}
fn pttl(ctx: &mut Ctx, args: &[Bytes]) {
    ttl_generic(ctx, args, Unit::Millis, false)
}
fn expiretime(ctx: &mut Ctx, args: &[Bytes]) {
    ttl_generic(ctx, args, Unit::Seconds, true)
}
fn pexpiretime(ctx: &mut Ctx, args: &[Bytes]) {
    ttl_generic(ctx, args, Unit::Millis, true)
}

fn persist(ctx: &mut Ctx, args: &[Bytes]) {
    let db = ctx.db();
    if ctx.st.ks.lookup(db, &args[1], ctx.now_ms).is_none() {
        return ctx.int(0);
    }
    if ctx.st.ks.dbs[db].persist(&args[1]) {
        ctx.dirty(1);
        ctx.int(1)
    } else {
        ctx.int(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_like_redis_without_overflow() {
        assert_eq!(ms_to_secs_rounded(0), 0);
        assert_eq!(ms_to_secs_rounded(499), 0);
        assert_eq!(ms_to_secs_rounded(500), 1);
        assert_eq!(ms_to_secs_rounded(1499), 1);
        assert_eq!(ms_to_secs_rounded(i64::MAX), 9_223_372_036_854_776);
    }
}
