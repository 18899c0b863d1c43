//! Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER, SINTER,
//! SUNION, SDIFF, SINTERSTORE, SUNIONSTORE, SDIFFSTORE, SMOVE, SINTERCARD, SSCAN; plus the helpers
//! the hash and sorted-set families share with it (SCAN cursors, random sampling, ranged counts).
//!
//! Design notes:
//! - A set is a `HashSet<Sds>` built with the keyspace hasher (never a random one), so iteration
//!   order, and with it every reply and every random pick, is a function of the node's seed and
//!   the command history: simulated runs replay exactly.
//! - Randomness comes only from `ctx.env.rng`. A `HashSet` has no O(1) random access, so picking
//!   a random member walks the table (O(n)); Redis picks a random bucket in O(1). SPOP/SRANDMEMBER
//!   with a count collect the members once and do a partial Fisher-Yates shuffle, O(n + count).
//!   A pick depends on the table's layout, which a replica rebuilt from a snapshot may not share:
//!   replication must propagate SPOP as the SREM of what was popped, as Redis does.
//! - Sets whose members are all integers and that are small enough for Redis's intset encoding
//!   (<= 512 members) are listed in ascending numeric order, as Redis lists an intset (SMEMBERS,
//!   SINTER/SUNION/SDIFF, SSCAN).
//! - SSCAN/HSCAN/ZSCAN cursors: Redis scans its hash table by bucket (reverse-binary cursor). We
//!   order elements by a 63-bit hash of the element (keyspace hasher) and the cursor is "resume at
//!   this hash value" (0 = start/done). Elements present for the whole scan are returned at least
//!   once whatever is added or removed in between, like Redis; each call costs O(n) (a selection
//!   over the collection) instead of O(count). Collections small enough for Redis's compact
//!   encodings are returned whole with cursor 0, as Redis does for listpacks and intsets.
//! - Negative SRANDMEMBER/HRANDFIELD/ZRANDMEMBER counts (samples with repetition) make a reply
//!   whose size the client picks; we refuse more than [`RANDOM_REPLY_MAX`] samples with
//!   `ERR value is out of range` (Redis has no limit).

use std::collections::HashSet;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::*;
use crate::db::{HashSetS, Hasher};
use crate::env::Rng;
use crate::protocol::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "sadd", arity: -3, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: sadd },
    CommandSpec { name: "srem", arity: -3, flags: WRITE | FAST, keys: (1, 1, 1), handler: srem },
    CommandSpec { name: "smembers", arity: 2, flags: READONLY, keys: (1, 1, 1), handler: smembers },
    CommandSpec { name: "sismember", arity: 3, flags: READONLY | FAST, keys: (1, 1, 1), handler: sismember },
    CommandSpec { name: "smismember", arity: -3, flags: READONLY | FAST, keys: (1, 1, 1), handler: smismember },
    CommandSpec { name: "scard", arity: 2, flags: READONLY | FAST, keys: (1, 1, 1), handler: scard },
    CommandSpec { name: "spop", arity: -2, flags: WRITE | FAST, keys: (1, 1, 1), handler: spop },
    CommandSpec { name: "srandmember", arity: -2, flags: READONLY, keys: (1, 1, 1), handler: srandmember },
    CommandSpec { name: "sinter", arity: -2, flags: READONLY, keys: (1, -1, 1), handler: sinter },
    CommandSpec { name: "sunion", arity: -2, flags: READONLY, keys: (1, -1, 1), handler: sunion },
    CommandSpec { name: "sdiff", arity: -2, flags: READONLY, keys: (1, -1, 1), handler: sdiff },
    CommandSpec {
        name: "sinterstore",
        arity: -3,
        flags: WRITE | DENYOOM | SIGNALS_OWN_KEYS,
        keys: (1, -1, 1),
        handler: sinterstore,
    },
    CommandSpec {
        name: "sunionstore",
        arity: -3,
        flags: WRITE | DENYOOM | SIGNALS_OWN_KEYS,
        keys: (1, -1, 1),
        handler: sunionstore,
    },
    CommandSpec {
        name: "sdiffstore",
        arity: -3,
        flags: WRITE | DENYOOM | SIGNALS_OWN_KEYS,
        keys: (1, -1, 1),
        handler: sdiffstore,
    },
    CommandSpec { name: "smove", arity: 4, flags: WRITE | FAST, keys: (1, 2, 1), handler: smove },
    // Keys follow `numkeys` (movable keys): Redis reports (0, 0, 0) too.
    CommandSpec { name: "sintercard", arity: -3, flags: READONLY, keys: (0, 0, 0), handler: sintercard },
    CommandSpec { name: "sscan", arity: -3, flags: READONLY, keys: (1, 1, 1), handler: sscan },
];

/// The most samples a negative-count SRANDMEMBER/HRANDFIELD/ZRANDMEMBER may ask for.
pub(super) const RANDOM_REPLY_MAX: u64 = 1 << 20;
/// Redis's `set-max-intset-entries` default: integer sets up to this size are listed sorted.
const INTSET_MAX: usize = 512;

type SetS = HashSetS<Sds>;

// ---------------------------------------------------------------------------------------------
// Helpers shared with hashes.rs and zsets.rs.

/// Parses an integer in `[min, max]` like Redis's `getRangeLongFromObjectOrReply` without a
/// custom message.
pub(super) fn range_arg(ctx: &mut Ctx, arg: &[u8], min: i64, max: i64) -> Option<i64> {
    let v = arg_i64(ctx, arg)?;
    if v < min || v > max {
        ctx.error(&format!("ERR value is out of range, value must between {min} and {max}"));
        return None;
    }
    Some(v)
}

/// Parses an integer in `[min, max]`; a non-integer or out-of-range value both get `msg`
/// (Redis's `get*LongFromObjectOrReply` with a message).
pub(crate) fn range_arg_msg(ctx: &mut Ctx, arg: &[u8], min: i64, max: i64, msg: &str) -> Option<i64> {
    match parse_i64_strict(arg) {
        Some(v) if v >= min && v <= max => Some(v),
        _ => {
            ctx.error(msg);
            None
        }
    }
}

/// A uniformly random index below `n`, from the node's RNG (0 when `n` is 0).
pub(super) fn pick(rng: &Rng, n: usize) -> usize {
    if n == 0 {
        return 0; // callers index with `nth`, which then finds nothing
    }
    rng.below(n as u64) as usize
}

/// Shuffles the first `k` items of `v` into a uniformly random distinct sample (partial
/// Fisher-Yates) and drops the rest.
pub(super) fn sample_distinct<T>(rng: &Rng, v: &mut Vec<T>, k: usize) {
    let k = k.min(v.len());
    for i in 0..k {
        // Swaps item `i` with a random one at or after it.
        let rest = &mut v[i..];
        let j = pick(rng, rest.len());
        rest.swap(0, j);
    }
    v.truncate(k);
}

/// Parses a SCAN cursor like Redis (`strtoul` over the whole string: an optional sign, a negative
/// value wrapping around, no leading space, no overflow; the empty string is 0). Redis reads the
/// argument as a C string, so a NUL byte ends it (`"5\0x"` is 5).
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let arg = &arg[..arg.iter().position(|&b| b == 0).unwrap_or(arg.len())];
    let (neg, digits) = match arg.first() {
        None => return Some(0),
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        Some(_) => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parses a SCAN cursor (`ERR invalid cursor`).
pub(super) fn scan_cursor(ctx: &mut Ctx, arg: &[u8]) -> Option<u64> {
    match parse_cursor(arg) {
        Some(c) => Some(c),
        None => {
            ctx.error("ERR invalid cursor");
            None
        }
    }
}

/// The reply to a SCAN of a missing key.
pub(super) fn reply_empty_scan(out: &mut BytesMut) {
    Reply::array_len(out, 2);
    Reply::bulk(out, b"0");
    Reply::array_len(out, 0);
}

/// HSCAN/SSCAN/ZSCAN options after the cursor: MATCH pattern, COUNT n (>= 1).
pub(super) struct ScanOpts {
    pub pattern: Option<Bytes>,
    pub count: usize,
}

impl ScanOpts {
    pub fn matches(&self, item: &[u8]) -> bool {
        match &self.pattern {
            Some(p) => crate::glob::glob_match(p, item, false),
            None => true,
        }
    }
}

pub(super) fn scan_opts(ctx: &mut Ctx, args: &[Bytes]) -> Option<ScanOpts> {
    let mut opts = ScanOpts { pattern: None, count: 10 };
    for pair in args.chunks(2) {
        match pair {
            [opt, value] if eq_ic(opt, "count") => {
                let c = arg_i64(ctx, value)?;
                if c < 1 {
                    ctx.error(SYNTAX);
                    return None;
                }
                opts.count = usize::try_from(c).unwrap_or(usize::MAX);
            }
            [opt, value] if eq_ic(opt, "match") => {
                opts.pattern = if &value[..] == b"*" { None } else { Some(value.clone()) };
            }
            _ => {
                ctx.error(SYNTAX);
                return None;
            }
        }
    }
    Some(opts)
}

/// An element's place in scan order: a 63-bit hash plus one, so that 0 can mean "start".
/// A 63-bit value plus one fits a u64.
#[allow(clippy::arithmetic_side_effects)]
fn scan_pos(hasher: &Hasher, item: &[u8]) -> u64 {
    (hasher.hash_one(item) >> 1) + 1
}

/// One page of a hash-ordered scan: up to about `count` items whose position is at or past
/// `cursor`, and the cursor to continue from (0 when done). Items with equal positions are never
/// split across pages, so every item present throughout a scan is returned.
pub(super) fn scan_page<'a, T: Copy>(
    hasher: &Hasher,
    items: impl Iterator<Item = (&'a Sds, T)>,
    cursor: u64,
    count: usize,
) -> (Vec<(&'a Sds, T)>, u64) {
    let mut cands: Vec<(u64, &'a Sds, T)> = items
        .filter_map(|(m, t)| {
            let p = scan_pos(hasher, m);
            (p >= cursor).then_some((p, m, t))
        })
        .collect();
    let count = count.max(1);
    if cands.len() <= count {
        cands.sort_unstable_by_key(|c| c.0);
        return (cands.into_iter().map(|(_, m, t)| (m, t)).collect(), 0);
    }
    cands.select_nth_unstable_by_key(count, |c| c.0);
    let mut next = cands[count].0;
    let mut page: Vec<(u64, &'a Sds, T)> = cands[..count].iter().filter(|c| c.0 < next).copied().collect();
    if page.is_empty() {
        // More than `count` items share one position: return them all at once.
        page = cands.iter().filter(|c| c.0 == next).copied().collect();
        next = next.saturating_add(1);
    }
    page.sort_unstable_by_key(|c| c.0);
    (page.into_iter().map(|(_, m, t)| (m, t)).collect(), next)
}

/// Writes `[cursor, [items...]]`.
pub(super) fn reply_scan<I, B>(out: &mut BytesMut, cursor: u64, items: I)
where
    I: ExactSizeIterator<Item = B>,
    B: AsRef<[u8]>,
{
    Reply::array_len(out, 2);
    Reply::bulk(out, cursor.to_string().as_bytes());
    Reply::bulk_array(out, items);
}

// ---------------------------------------------------------------------------------------------

/// Reads a set (hit/miss counted): Ok(None) if missing; Err after replying WRONGTYPE.
fn read_set(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Arc<SetS>>, ()> {
    match ctx.read(key) {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(s.clone())),
        Some(_) => {
            ctx.error(WRONGTYPE);
            Err(())
        }
    }
}

/// Looks a set up for modification: Ok(None) if missing, Err(()) if another type.
fn write_set<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut SetS>, ()> {
    match ctx.write_lookup(key) {
        None => Ok(None),
        Some(Value::Set(s)) => Ok(Some(Arc::make_mut(s))),
        Some(_) => Err(()),
    }
}

fn type_of(ctx: &mut Ctx, key: &[u8]) -> Option<&'static str> {
    let db = ctx.db();
    ctx.st.ks.lookup(db, key, ctx.now_ms).map(|v| v.type_name())
}

fn new_set(ctx: &Ctx) -> SetS {
    HashSet::with_hasher(ctx.st.ks.hasher())
}

fn store_new(ctx: &mut Ctx, key: &[u8], set: SetS) {
    let db = ctx.db();
    ctx.st.ks.dbs[db].insert(Sds::new(key), Value::Set(Arc::new(set)), false);
}

fn delete_if_empty(ctx: &mut Ctx, key: &[u8], empty: bool) {
    if empty {
        let db = ctx.db();
        ctx.st.ks.delete(db, key);
    }
}

/// Orders members the way Redis lists them when the set would be an intset (all integers, small):
/// ascending numerically. Other sets keep table order.
fn intset_order(v: &mut [&Sds]) {
    if v.len() > INTSET_MAX {
        return;
    }
    let mut keyed = Vec::with_capacity(v.len());
    for m in v.iter() {
        match parse_i64_strict(m) {
            Some(n) => keyed.push((n, *m)),
            None => return,
        }
    }
    keyed.sort_unstable_by_key(|k| k.0);
    for (slot, (_, m)) in v.iter_mut().zip(keyed) {
        *slot = m;
    }
}

/// Replies with whole sets (SMEMBERS, SINTER, SUNION, SDIFF) as Redis does: a RESP3 set (an
/// array in RESP2), members in listing order.
fn reply_set(ctx: &mut Ctx, mut v: Vec<&Sds>) {
    intset_order(&mut v);
    ctx.set_len(v.len());
    for m in v {
        Reply::bulk(ctx.out, m);
    }
}

fn sadd(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let added = match write_set(ctx, key) {
        Err(()) => return ctx.error(WRONGTYPE),
        Ok(Some(s)) => args[2..].iter().filter(|m| s.insert(Sds::new(m))).count(),
        Ok(None) => {
            let mut s = new_set(ctx);
            for m in &args[2..] {
                s.insert(Sds::new(m));
            }
            let n = s.len();
            store_new(ctx, key, s);
            n
        }
    };
    ctx.dirty(added as u64);
    ctx.int(added as i64)
}

fn srem(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let (removed, empty) = match write_set(ctx, key) {
        Err(()) => return ctx.error(WRONGTYPE),
        Ok(None) => return ctx.int(0),
        Ok(Some(s)) => (args[2..].iter().filter(|m| s.remove(&m[..])).count(), s.is_empty()),
    };
    delete_if_empty(ctx, key, empty);
    ctx.dirty(removed as u64);
    ctx.int(removed as i64)
}

fn smembers(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(s) = read_set(ctx, &args[1]) else {
        return;
    };
    match s {
        Some(s) => reply_set(ctx, s.iter().collect()),
        None => ctx.set_len(0),
    }
}

fn sismember(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(s) = read_set(ctx, &args[1]) else {
        return;
    };
    ctx.int(s.is_some_and(|s| s.contains(&args[2][..])) as i64)
}

fn smismember(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(s) = read_set(ctx, &args[1]) else {
        return;
    };
    let members = &args[2..];
    Reply::array_len(ctx.out, members.len());
    for m in members {
        Reply::int(ctx.out, s.as_ref().is_some_and(|s| s.contains(&m[..])) as i64);
    }
}

fn scard(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(s) = read_set(ctx, &args[1]) else {
        return;
    };
    ctx.int(s.map_or(0, |s| s.len() as i64))
}

fn spop(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 3 {
        return ctx.error(SYNTAX);
    }
    let count = if args.len() == 3 {
        let msg = "ERR value is out of range, must be positive";
        let Some(c) = range_arg_msg(ctx, &args[2], 0, i64::MAX, msg) else {
            return;
        };
        Some(c as u64)
    } else {
        None
    };
    let key = &args[1];
    let env = ctx.env;
    let (popped, empty) = match write_set(ctx, key) {
        Err(()) => return ctx.error(WRONGTYPE),
        // With a count the reply is a set, even an empty one (Redis 7.0).
        Ok(None) => return if count.is_some() { ctx.set_len(0) } else { ctx.null() },
        Ok(Some(_)) if count == Some(0) => return ctx.set_len(0),
        Ok(Some(s)) => {
            let n = count.unwrap_or(1).min(s.len() as u64) as usize;
            let popped: Vec<Sds> = if n == s.len() {
                s.drain().collect()
            } else if n == 1 {
                let i = pick(&env.rng, s.len());
                s.iter().nth(i).cloned().into_iter().collect()
            } else {
                let mut all: Vec<&Sds> = s.iter().collect();
                sample_distinct(&env.rng, &mut all, n);
                all.into_iter().cloned().collect()
            };
            for m in &popped {
                s.remove(&m[..]);
            }
            (popped, s.is_empty())
        }
    };
    delete_if_empty(ctx, key, empty);
    ctx.dirty(popped.len() as u64);
    // Which members were popped depends on this node's table layout: replicas get SREM of them.
    if !popped.is_empty() {
        let mut srem = vec![arg("SREM"), key.clone()];
        srem.extend(popped.iter().map(|m| arg(&m[..])));
        rewrite_as(ctx, vec![srem]);
    }
    match count {
        None => match popped.first() {
            Some(m) => ctx.bulk(m),
            None => ctx.null(),
        },
        Some(_) => {
            ctx.set_len(popped.len());
            for m in &popped {
                Reply::bulk(ctx.out, m);
            }
        }
    }
}

fn srandmember(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 3 {
        return ctx.error(SYNTAX);
    }
    let count = if args.len() == 3 {
        let Some(c) = range_arg(ctx, &args[2], -i64::MAX, i64::MAX) else {
            return;
        };
        Some(c)
    } else {
        None
    };
    let Ok(s) = read_set(ctx, &args[1]) else {
        return;
    };
    let env = ctx.env;
    let rng = &env.rng;
    let Some(count) = count else {
        return match s {
            Some(s) => match s.iter().nth(pick(rng, s.len())) {
                Some(m) => Reply::bulk(ctx.out, m),
                None => ctx.null(),
            },
            None => ctx.null(),
        };
    };
    let Some(s) = s else {
        return Reply::array_len(ctx.out, 0);
    };
    // An empty collection is never stored; were one found, answer as for a missing key.
    if count == 0 || s.is_empty() {
        return Reply::array_len(ctx.out, 0);
    }
    let all: Vec<&Sds> = s.iter().collect();
    if count < 0 || count == 1 {
        // Samples with repetition, `|count|` of them.
        let n = count.unsigned_abs();
        if n > RANDOM_REPLY_MAX {
            return ctx.error("ERR value is out of range");
        }
        Reply::array_len(ctx.out, n as usize);
        for _ in 0..n {
            Reply::bulk(ctx.out, all[pick(rng, all.len())]);
        }
        return;
    }
    if count as u64 >= all.len() as u64 {
        // The whole set, in listing order, but an array even in RESP3 (Redis 7.0).
        let mut all = all;
        intset_order(&mut all);
        return Reply::bulk_array(ctx.out, all.into_iter());
    }
    let mut all = all;
    sample_distinct(rng, &mut all, count as usize);
    Reply::bulk_array(ctx.out, all.into_iter());
}

/// Looks up the source sets of SINTER/SUNION/SDIFF (and their STORE forms): None for a missing
/// key; Err after replying WRONGTYPE. `stats` counts hits/misses (read commands).
fn source_sets(ctx: &mut Ctx, keys: &[Bytes], stats: bool) -> Result<Vec<Option<Arc<SetS>>>, ()> {
    let mut sets = Vec::with_capacity(keys.len());
    for k in keys {
        let v = if stats {
            ctx.read(k)
        } else {
            let db = ctx.db();
            ctx.st.ks.lookup(db, k, ctx.now_ms)
        };
        match v {
            None => sets.push(None),
            Some(Value::Set(s)) => sets.push(Some(s.clone())),
            Some(_) => {
                ctx.error(WRONGTYPE);
                return Err(());
            }
        }
    }
    Ok(sets)
}

/// Stores a STORE command's result: a non-empty set replaces `dst` (and its TTL); an empty one
/// deletes it. Replies with the result's size.
fn store_result(ctx: &mut Ctx, dst: &[u8], result: SetS) {
    let n = result.len();
    // Only the destination is modified (the sources are read): signalled when written or
    // deleted, as Redis does.
    if n > 0 {
        store_new(ctx, dst, result);
        ctx.signal_modified(dst);
        ctx.dirty(1);
    } else {
        let db = ctx.db();
        if ctx.st.ks.delete(db, dst) {
            ctx.signal_modified(dst);
            ctx.dirty(1);
        }
    }
    ctx.int(n as i64)
}

enum Output<'a> {
    Reply,
    Store(&'a [u8]),
    /// SINTERCARD with its LIMIT (0 = none).
    Card(usize),
}

fn sinter_generic(ctx: &mut Ctx, keys: &[Bytes], output: Output) {
    let stats = !matches!(output, Output::Store(_));
    let Ok(sets) = source_sets(ctx, keys, stats) else {
        return;
    };
    let mut sets: Vec<Arc<SetS>> = match sets.into_iter().collect::<Option<Vec<_>>>() {
        Some(s) => s,
        None => {
            // Intersection with a missing (empty) set is empty.
            return match output {
                Output::Reply => ctx.set_len(0),
                Output::Store(dst) => {
                    let empty = new_set(ctx);
                    store_result(ctx, dst, empty)
                }
                Output::Card(_) => ctx.int(0),
            };
        }
    };
    sets.sort_by_key(|s| s.len());
    // Arity guarantees at least one key; an empty list would intersect to nothing.
    let empty = Arc::new(new_set(ctx));
    let (first, rest) = sets.split_first().unwrap_or((&empty, &[]));
    let in_all = |m: &&Sds| rest.iter().all(|s| s.contains(&m[..]));
    match output {
        Output::Card(limit) => {
            let common = first.iter().filter(in_all);
            let n = if limit == 0 { common.count() } else { common.take(limit).count() };
            ctx.int(n as i64)
        }
        Output::Reply => reply_set(ctx, first.iter().filter(in_all).collect()),
        Output::Store(dst) => {
            let mut result = new_set(ctx);
            result.extend(first.iter().filter(in_all).cloned());
            store_result(ctx, dst, result)
        }
    }
}

fn sunion_diff_generic(ctx: &mut Ctx, keys: &[Bytes], output: Output, diff: bool) {
    let stats = !matches!(output, Output::Store(_));
    let Ok(sets) = source_sets(ctx, keys, stats) else {
        return;
    };
    let mut result = new_set(ctx);
    if diff {
        if let Some(Some(first)) = sets.first() {
            let others: Vec<&Arc<SetS>> = sets[1..].iter().flatten().collect();
            result.extend(first.iter().filter(|m| !others.iter().any(|o| o.contains(&m[..]))).cloned());
        }
    } else {
        for s in sets.iter().flatten() {
            result.extend(s.iter().cloned());
        }
    }
    match output {
        Output::Store(dst) => store_result(ctx, dst, result),
        _ => reply_set(ctx, result.iter().collect()),
    }
}

fn sinter(ctx: &mut Ctx, args: &[Bytes]) {
    sinter_generic(ctx, &args[1..], Output::Reply)
}

fn sunion(ctx: &mut Ctx, args: &[Bytes]) {
    sunion_diff_generic(ctx, &args[1..], Output::Reply, false)
}

fn sdiff(ctx: &mut Ctx, args: &[Bytes]) {
    sunion_diff_generic(ctx, &args[1..], Output::Reply, true)
}

fn sinterstore(ctx: &mut Ctx, args: &[Bytes]) {
    sinter_generic(ctx, &args[2..], Output::Store(&args[1]))
}

fn sunionstore(ctx: &mut Ctx, args: &[Bytes]) {
    sunion_diff_generic(ctx, &args[2..], Output::Store(&args[1]), false)
}

fn sdiffstore(ctx: &mut Ctx, args: &[Bytes]) {
    sunion_diff_generic(ctx, &args[2..], Output::Store(&args[1]), true)
}

fn sintercard(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(numkeys) = range_arg_msg(ctx, &args[1], 1, i64::MAX, "ERR numkeys should be greater than 0") else {
        return;
    };
    let rest = &args[2..];
    if numkeys as u64 > rest.len() as u64 {
        return ctx.error("ERR Number of keys can't be greater than number of args");
    }
    let (keys, options) = rest.split_at(numkeys as usize);
    let mut limit = 0usize;
    let mut options = options.iter();
    while let Some(opt) = options.next() {
        let value = if eq_ic(opt, "limit") { options.next() } else { None };
        let Some(value) = value else {
            return ctx.error(SYNTAX);
        };
        let Some(l) = range_arg_msg(ctx, value, 0, i64::MAX, "ERR LIMIT can't be negative") else {
            return;
        };
        limit = usize::try_from(l).unwrap_or(usize::MAX);
    }
    sinter_generic(ctx, keys, Output::Card(limit))
}

fn smove(ctx: &mut Ctx, args: &[Bytes]) {
    let (src, dst, member) = (&args[1], &args[2], &args[3][..]);
    let src_type = type_of(ctx, src);
    let dst_type = type_of(ctx, dst);
    let Some(src_type) = src_type else {
        return ctx.int(0);
    };
    if src_type != "set" || dst_type.is_some_and(|t| t != "set") {
        return ctx.error(WRONGTYPE);
    }
    if src == dst {
        let Ok(s) = read_set(ctx, src) else { return };
        return ctx.int(s.is_some_and(|s| s.contains(member)) as i64);
    }
    let (removed, empty) = match write_set(ctx, src) {
        Ok(Some(s)) => (s.remove(member), s.is_empty()),
        _ => (false, false),
    };
    if !removed {
        return ctx.int(0);
    }
    delete_if_empty(ctx, src, empty);
    ctx.dirty(1);
    let added = match write_set(ctx, dst) {
        Ok(Some(s)) => s.insert(Sds::new(member)),
        _ => {
            let mut s = new_set(ctx);
            s.insert(Sds::new(member));
            store_new(ctx, dst, s);
            true
        }
    };
    if added {
        ctx.dirty(1);
    }
    ctx.int(1)
}

fn sscan(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(cursor) = scan_cursor(ctx, &args[2]) else {
        return;
    };
    let Ok(s) = read_set(ctx, &args[1]) else {
        return;
    };
    let Some(s) = s else {
        return reply_empty_scan(ctx.out);
    };
    let Some(opts) = scan_opts(ctx, &args[3..]) else {
        return;
    };
    let all_ints = s.len() <= INTSET_MAX && s.iter().all(|m| parse_i64_strict(m).is_some());
    let (mut items, next): (Vec<&Sds>, u64) = if all_ints {
        // Redis returns a whole intset in one call, sorted.
        (s.iter().collect(), 0)
    } else {
        let hasher = ctx.st.ks.hasher();
        let (page, next) = scan_page(&hasher, s.iter().map(|m| (m, ())), cursor, opts.count);
        (page.into_iter().map(|(m, ())| m).collect(), next)
    };
    if all_ints {
        intset_order(&mut items);
    }
    items.retain(|m| opts.matches(m));
    reply_scan(ctx.out, next, items.into_iter());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_pages_cover_everything_once() {
        let hasher = Hasher::with_seeds(1, 2, 3, 4);
        let items: Vec<Sds> = (0..1000).map(|i| Sds::from(format!("m{i}").as_str())).collect();
        let mut seen = std::collections::BTreeSet::new();
        let mut cursor = 0;
        loop {
            let (page, next) = scan_page(&hasher, items.iter().map(|m| (m, ())), cursor, 7);
            assert!(page.len() <= 7);
            for (m, ()) in page {
                assert!(seen.insert(m.clone()), "returned twice");
            }
            if next == 0 {
                break;
            }
            assert!(next > cursor);
            cursor = next;
        }
        assert_eq!(seen.len(), 1000);
    }

    #[test]
    fn intsets_sort_numerically() {
        let (a, b, c) = (Sds::from("10"), Sds::from("-2"), Sds::from("3"));
        let mut v = vec![&a, &b, &c];
        intset_order(&mut v);
        assert_eq!(v, vec![&b, &c, &a]);
        let d = Sds::from("x");
        let mut w = vec![&a, &d, &b];
        intset_order(&mut w);
        assert_eq!(w, vec![&a, &d, &b]);
    }
}
