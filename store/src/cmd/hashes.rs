//! Hash commands: HSET, HMSET, HSETNX, HGET, HMGET, HDEL, HLEN, HSTRLEN, HEXISTS, HGETALL, HKEYS,
//! HVALS, HINCRBY, HINCRBYFLOAT, HRANDFIELD, HSCAN.
//!
//! Design notes:
//! - A hash is a `HashMap<Sds, Sds>` built with the keyspace hasher, so HGETALL/HKEYS order and
//!   HRANDFIELD picks are deterministic for a node's seed (Redis's order is unspecified too, but
//!   for small hashes it is insertion order, which we do not reproduce).
//! - HSCAN uses the hash-ordered cursor described in `sets.rs`: complete under concurrent
//!   changes, O(n) per call; a hash small enough for Redis's listpack encoding (<= 128 fields,
//!   fields and values <= 64 bytes) is returned whole with cursor 0, as Redis does.
//! - HINCRBYFLOAT computes in `f64` and formats with `format_double`; Redis uses `long double`,
//!   so results can differ in the last digits (e.g. 0.1 + 0.2 is `0.3` in Redis).
//! - HRANDFIELD with a negative count is bounded by `RANDOM_REPLY_MAX` samples (see `sets.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::sets::{pick, range_arg, reply_empty_scan, reply_scan, sample_distinct, scan_cursor, scan_opts, scan_page};
use super::sets::RANDOM_REPLY_MAX;
use super::*;
use crate::db::HashMapS;
use crate::protocol::{format_double, Reply};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "hset", arity: -4, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: hset },
    CommandSpec { name: "hmset", arity: -4, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: hmset },
    CommandSpec { name: "hsetnx", arity: 4, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: hsetnx },
    CommandSpec { name: "hget", arity: 3, flags: READONLY | FAST, keys: (1, 1, 1), handler: hget },
    CommandSpec { name: "hmget", arity: -3, flags: READONLY | FAST, keys: (1, 1, 1), handler: hmget },
    CommandSpec { name: "hdel", arity: -3, flags: WRITE | FAST, keys: (1, 1, 1), handler: hdel },
    CommandSpec { name: "hlen", arity: 2, flags: READONLY | FAST, keys: (1, 1, 1), handler: hlen },
    CommandSpec { name: "hstrlen", arity: 3, flags: READONLY | FAST, keys: (1, 1, 1), handler: hstrlen },
    CommandSpec { name: "hexists", arity: 3, flags: READONLY | FAST, keys: (1, 1, 1), handler: hexists },
    CommandSpec { name: "hgetall", arity: 2, flags: READONLY, keys: (1, 1, 1), handler: hgetall },
    CommandSpec { name: "hkeys", arity: 2, flags: READONLY, keys: (1, 1, 1), handler: hkeys },
    CommandSpec { name: "hvals", arity: 2, flags: READONLY, keys: (1, 1, 1), handler: hvals },
    CommandSpec { name: "hincrby", arity: 4, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: hincrby },
    CommandSpec {
        name: "hincrbyfloat",
        arity: 4,
        flags: WRITE | DENYOOM | FAST,
        keys: (1, 1, 1),
        handler: hincrbyfloat,
    },
    CommandSpec { name: "hrandfield", arity: -2, flags: READONLY, keys: (1, 1, 1), handler: hrandfield },
    CommandSpec { name: "hscan", arity: -3, flags: READONLY, keys: (1, 1, 1), handler: hscan },
];

type HashS = HashMapS<Sds, Sds>;

/// Redis's `hash-max-listpack-entries` / `hash-max-listpack-value` defaults.
const LISTPACK_MAX_ENTRIES: usize = 128;
const LISTPACK_MAX_VALUE: usize = 64;

/// Reads a hash (hit/miss counted): Ok(None) if missing; Err after replying WRONGTYPE.
fn read_hash(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Arc<HashS>>, ()> {
    match ctx.read(key) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(h.clone())),
        Some(_) => {
            ctx.error(WRONGTYPE);
            Err(())
        }
    }
}

/// Looks a hash up for modification: Ok(None) if missing, Err(()) if another type.
fn write_hash<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut HashS>, ()> {
    match ctx.write_lookup(key) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(Arc::make_mut(h))),
        Some(_) => Err(()),
    }
}

/// Looks a hash up for modification, creating an empty one if missing (Redis's
/// `hashTypeLookupWriteOrCreate`); Err(()) if another type. The caller must delete the key again
/// if it leaves the hash empty.
fn write_or_create<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<&'a mut HashS, ()> {
    let db = ctx.db();
    match ctx.st.ks.lookup(db, key, ctx.now_ms).map(|v| v.type_name()) {
        Some("hash") => {}
        Some(_) => return Err(()),
        None => {
            let h: HashS = HashMap::with_hasher(ctx.st.ks.hasher());
            ctx.st.ks.dbs[db].insert(Sds::new(key), Value::Hash(Arc::new(h)), false);
        }
    }
    match ctx.st.ks.dbs[db].get_raw_mut(key) {
        Some(Value::Hash(h)) => Ok(Arc::make_mut(h)),
        _ => Err(()),
    }
}

/// Deletes the key if its hash is empty (after a failed increment on a fresh key).
fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let db = ctx.db();
    if matches!(ctx.st.ks.dbs[db].get_raw(key), Some(Value::Hash(h)) if h.is_empty()) {
        ctx.st.ks.delete(db, key);
    }
}

fn hset_generic(ctx: &mut Ctx, args: &[Bytes], name: &str) {
    if args.len() % 2 == 1 {
        return ctx.error(&format!("ERR wrong number of arguments for '{name}' command"));
    }
    let key = &args[1];
    let Ok(h) = write_or_create(ctx, key) else { return ctx.error(WRONGTYPE) };
    let mut created = 0;
    for pair in args[2..].chunks_exact(2) {
        if h.insert(Sds::new(&pair[0]), Sds::new(&pair[1])).is_none() {
            created += 1;
        }
    }
    ctx.dirty(((args.len() - 2) / 2) as u64);
    if name == "hset" {
        ctx.int(created)
    } else {
        ctx.ok()
    }
}

fn hset(ctx: &mut Ctx, args: &[Bytes]) {
    hset_generic(ctx, args, "hset")
}

fn hmset(ctx: &mut Ctx, args: &[Bytes]) {
    hset_generic(ctx, args, "hmset")
}

fn hsetnx(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let Ok(h) = write_or_create(ctx, key) else { return ctx.error(WRONGTYPE) };
    if h.contains_key(&args[2][..]) {
        return ctx.int(0);
    }
    h.insert(Sds::new(&args[2]), Sds::new(&args[3]));
    ctx.dirty(1);
    ctx.int(1)
}

fn hget(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else { return };
    match h.as_ref().and_then(|h| h.get(&args[2][..])) {
        Some(v) => Reply::bulk(ctx.out, v),
        None => Reply::null(ctx.out),
    }
}

fn hmget(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else { return };
    Reply::array_len(ctx.out, args.len() - 2);
    for f in &args[2..] {
        match h.as_ref().and_then(|h| h.get(&f[..])) {
            Some(v) => Reply::bulk(ctx.out, v),
            None => Reply::null(ctx.out),
        }
    }
}

fn hdel(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let (deleted, empty) = match write_hash(ctx, key) {
        Err(()) => return ctx.error(WRONGTYPE),
        Ok(None) => return ctx.int(0),
        Ok(Some(h)) => (args[2..].iter().filter(|f| h.remove(&f[..]).is_some()).count(), h.is_empty()),
    };
    if empty {
        let db = ctx.db();
        ctx.st.ks.delete(db, key);
    }
    ctx.dirty(deleted as u64);
    ctx.int(deleted as i64)
}

fn hlen(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else { return };
    ctx.int(h.map_or(0, |h| h.len() as i64))
}

fn hstrlen(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else { return };
    ctx.int(h.as_ref().and_then(|h| h.get(&args[2][..])).map_or(0, |v| v.len() as i64))
}

fn hexists(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else { return };
    ctx.int(h.is_some_and(|h| h.contains_key(&args[2][..])) as i64)
}

fn hgetall(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else { return };
    let Some(h) = h else { return Reply::array_len(ctx.out, 0) };
    Reply::array_len(ctx.out, h.len() * 2);
    for (f, v) in h.iter() {
        Reply::bulk(ctx.out, f);
        Reply::bulk(ctx.out, v);
    }
}

fn hkeys(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else { return };
    match h {
        Some(h) => Reply::bulk_array(ctx.out, h.keys()),
        None => Reply::array_len(ctx.out, 0),
    }
}

fn hvals(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else { return };
    match h {
        Some(h) => Reply::bulk_array(ctx.out, h.values()),
        None => Reply::array_len(ctx.out, 0),
    }
}

fn hincrby(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(incr) = arg_i64(ctx, &args[3]) else { return };
    let key = &args[1];
    let Ok(h) = write_or_create(ctx, key) else { return ctx.error(WRONGTYPE) };
    let result = match h.get(&args[2][..]) {
        None => Ok(incr),
        Some(v) => match parse_i64_strict(v) {
            None => Err("ERR hash value is not an integer"),
            Some(old) => old.checked_add(incr).ok_or("ERR increment or decrement would overflow"),
        },
    };
    match result {
        Ok(n) => {
            h.insert(Sds::new(&args[2]), Sds::new(n.to_string().as_bytes()));
            ctx.dirty(1);
            ctx.int(n)
        }
        Err(msg) => {
            drop_if_empty(ctx, key);
            ctx.error(msg)
        }
    }
}

fn hincrbyfloat(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(incr) = arg_f64(ctx, &args[3]) else { return };
    if incr.is_infinite() {
        return ctx.error("ERR value is NaN or Infinity");
    }
    let key = &args[1];
    let Ok(h) = write_or_create(ctx, key) else { return ctx.error(WRONGTYPE) };
    let result = match h.get(&args[2][..]) {
        None => Ok(incr),
        Some(v) => match parse_f64(v) {
            None => Err("ERR hash value is not a float"),
            Some(old) => {
                let n = old + incr;
                if n.is_finite() {
                    Ok(n)
                } else {
                    Err("ERR increment would produce NaN or Infinity")
                }
            }
        },
    };
    match result {
        Ok(n) => {
            let text = format_double(n);
            h.insert(Sds::new(&args[2]), Sds::new(text.as_bytes()));
            ctx.dirty(1);
            ctx.bulk(text.as_bytes())
        }
        Err(msg) => {
            drop_if_empty(ctx, key);
            ctx.error(msg)
        }
    }
}

fn reply_pairs<'a>(ctx: &mut Ctx, pairs: impl Iterator<Item = (&'a Sds, &'a Sds)>, withvalues: bool) {
    for (f, v) in pairs {
        Reply::bulk(ctx.out, f);
        if withvalues {
            Reply::bulk(ctx.out, v);
        }
    }
}

fn hrandfield(ctx: &mut Ctx, args: &[Bytes]) {
    let env = ctx.env;
    let rng = &env.rng;
    if args.len() < 3 {
        let Ok(h) = read_hash(ctx, &args[1]) else { return };
        return match h.as_ref().and_then(|h| h.keys().nth(pick(rng, h.len()))) {
            Some(f) => Reply::bulk(ctx.out, f),
            None => ctx.null(),
        };
    }
    let Some(count) = range_arg(ctx, &args[2], -i64::MAX, i64::MAX) else { return };
    if args.len() > 4 || (args.len() == 4 && !eq_ic(&args[3], "withvalues")) {
        return ctx.error(SYNTAX);
    }
    let withvalues = args.len() == 4;
    if withvalues && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return ctx.error("ERR value is out of range");
    }
    let Ok(h) = read_hash(ctx, &args[1]) else { return };
    let Some(h) = h else { return Reply::array_len(ctx.out, 0) };
    if count == 0 {
        return Reply::array_len(ctx.out, 0);
    }
    let per = if withvalues { 2 } else { 1 };
    let mut all: Vec<(&Sds, &Sds)> = h.iter().collect();
    if count < 0 || count == 1 {
        let n = count.unsigned_abs();
        if n > RANDOM_REPLY_MAX {
            return ctx.error("ERR value is out of range");
        }
        Reply::array_len(ctx.out, n as usize * per);
        for _ in 0..n {
            let (f, v) = all[pick(rng, all.len())];
            reply_pairs(ctx, std::iter::once((f, v)), withvalues);
        }
        return;
    }
    if count as u64 >= all.len() as u64 {
        Reply::array_len(ctx.out, all.len() * per);
        return reply_pairs(ctx, all.into_iter(), withvalues);
    }
    sample_distinct(rng, &mut all, count as usize);
    Reply::array_len(ctx.out, all.len() * per);
    reply_pairs(ctx, all.into_iter(), withvalues)
}

fn hscan(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(cursor) = scan_cursor(ctx, &args[2]) else { return };
    let Ok(h) = read_hash(ctx, &args[1]) else { return };
    let Some(h) = h else { return reply_empty_scan(ctx.out) };
    let Some(opts) = scan_opts(ctx, &args[3..]) else { return };
    let compact = h.len() <= LISTPACK_MAX_ENTRIES
        && h.iter().all(|(f, v)| f.len() <= LISTPACK_MAX_VALUE && v.len() <= LISTPACK_MAX_VALUE);
    let (page, next): (Vec<(&Sds, &Sds)>, u64) = if compact {
        (h.iter().collect(), 0)
    } else {
        let hasher = ctx.st.ks.hasher();
        scan_page(&hasher, h.iter(), cursor, opts.count)
    };
    let mut flat: Vec<&Sds> = Vec::with_capacity(page.len() * 2);
    for (f, v) in page {
        if opts.matches(f) {
            flat.push(f);
            flat.push(v);
        }
    }
    reply_scan(ctx.out, next, flat.into_iter());
}
