//! List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LINDEX, LSET, LRANGE, LTRIM,
//! LREM, LINSERT, LPOS, RPOPLPUSH, LMOVE, LMPOP, and the blocking BLPOP, BRPOP, BRPOPLPUSH,
//! BLMOVE, BLMPOP (their waiting is `blocking.rs`'s; their handlers decide what to take).
//!
//! Design notes:
//! - A list is a `VecDeque<Sds>` behind an `Arc` (see `db/value.rs`). Pushes and pops at both
//!   ends are O(1) and LINDEX/LSET are O(1) (Redis's quicklist is O(n) there); LINSERT and LREM
//!   shift elements, O(n) like Redis.
//! - Writes go through `Arc::make_mut`: while a snapshot shares the list, the first write copies
//!   it once (even a write that turns out to change nothing, e.g. LREM without a match). We accept
//!   that rather than look every key up twice.
//! - Argument checks happen in Redis's order (some commands parse their numbers before looking
//!   the key up, others after), so error-vs-nil answers match Redis exactly.
//! - Allocations are sized by the list, never by a client-supplied count.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::protocol::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "lpush", arity: -3, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: lpush },
    CommandSpec { name: "rpush", arity: -3, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: rpush },
    CommandSpec { name: "lpushx", arity: -3, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: lpushx },
    CommandSpec { name: "rpushx", arity: -3, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: rpushx },
    CommandSpec { name: "lpop", arity: -2, flags: WRITE | FAST, keys: (1, 1, 1), handler: lpop },
    CommandSpec { name: "rpop", arity: -2, flags: WRITE | FAST, keys: (1, 1, 1), handler: rpop },
    CommandSpec { name: "llen", arity: 2, flags: READONLY | FAST, keys: (1, 1, 1), handler: llen },
    CommandSpec { name: "lindex", arity: 3, flags: READONLY, keys: (1, 1, 1), handler: lindex },
    CommandSpec { name: "lset", arity: 4, flags: WRITE | DENYOOM, keys: (1, 1, 1), handler: lset },
    CommandSpec { name: "lrange", arity: 4, flags: READONLY, keys: (1, 1, 1), handler: lrange },
    CommandSpec { name: "ltrim", arity: 4, flags: WRITE, keys: (1, 1, 1), handler: ltrim },
    CommandSpec { name: "lrem", arity: 4, flags: WRITE, keys: (1, 1, 1), handler: lrem },
    CommandSpec { name: "linsert", arity: 5, flags: WRITE | DENYOOM, keys: (1, 1, 1), handler: linsert },
    CommandSpec { name: "lpos", arity: -3, flags: READONLY, keys: (1, 1, 1), handler: lpos },
    CommandSpec { name: "rpoplpush", arity: 3, flags: WRITE | DENYOOM, keys: (1, 2, 1), handler: rpoplpush },
    CommandSpec { name: "lmove", arity: 5, flags: WRITE | DENYOOM, keys: (1, 2, 1), handler: lmove },
    CommandSpec { name: "lmpop", arity: -4, flags: WRITE | SIGNALS_OWN_KEYS, keys: (0, 0, 0), handler: lmpop },
    CommandSpec {
        name: "blpop",
        arity: -3,
        flags: NO_SCRIPT | WRITE | BLOCKING | SIGNALS_OWN_KEYS,
        keys: (1, -2, 1),
        handler: blpop,
    },
    CommandSpec {
        name: "brpop",
        arity: -3,
        flags: NO_SCRIPT | WRITE | BLOCKING | SIGNALS_OWN_KEYS,
        keys: (1, -2, 1),
        handler: brpop,
    },
    CommandSpec {
        name: "brpoplpush",
        arity: 4,
        flags: NO_SCRIPT | WRITE | DENYOOM | BLOCKING,
        keys: (1, 2, 1),
        handler: brpoplpush,
    },
    CommandSpec {
        name: "blmove",
        arity: 6,
        flags: NO_SCRIPT | WRITE | DENYOOM | BLOCKING,
        keys: (1, 2, 1),
        handler: blmove,
    },
    CommandSpec {
        name: "blmpop",
        arity: -5,
        flags: WRITE | BLOCKING | SIGNALS_OWN_KEYS,
        keys: (0, 0, 0),
        handler: blmpop,
    },
];

/// Which end of a list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Left,
    Right,
}

/// Reads a list (hit/miss counted): Ok(None) if missing; Err after replying WRONGTYPE.
/// The `Arc` clone is cheap and lets the handler write its reply while holding the list.
fn read_list(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Arc<VecDeque<Sds>>>, ()> {
    match ctx.read(key) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(l.clone())),
        Some(_) => {
            ctx.error(WRONGTYPE);
            Err(())
        }
    }
}

/// Looks a list up for modification: Ok(None) if missing, Err(()) if another type (the caller
/// replies WRONGTYPE once the borrow has ended).
fn write_list<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut VecDeque<Sds>>, ()> {
    match ctx.write_lookup(key) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(Arc::make_mut(l))),
        Some(_) => Err(()),
    }
}

/// The type of a live key, without hit/miss accounting.
fn type_of(ctx: &mut Ctx, key: &[u8]) -> Option<&'static str> {
    let db = ctx.db();
    ctx.st.ks.lookup(db, key, ctx.now_ms).map(|v| v.type_name())
}

fn store_new(ctx: &mut Ctx, key: &[u8], list: VecDeque<Sds>) {
    let db = ctx.db();
    ctx.st.ks.dbs[db].insert(Sds::new(key), Value::List(Arc::new(list)), false);
}

/// Redis never keeps an empty collection: deletes the key when its list became empty.
fn delete_if_empty(ctx: &mut Ctx, key: &[u8], empty: bool) {
    if empty {
        let db = ctx.db();
        ctx.st.ks.delete(db, key);
    }
}

fn push(l: &mut VecDeque<Sds>, end: End, v: Sds) {
    match end {
        End::Left => l.push_front(v),
        End::Right => l.push_back(v),
    }
}

fn pop(l: &mut VecDeque<Sds>, end: End) -> Option<Sds> {
    match end {
        End::Left => l.pop_front(),
        End::Right => l.pop_back(),
    }
}

/// Parses a non-negative integer like Redis's `getPositiveLongFromObjectOrReply`: a non-integer
/// and a negative value both get `msg`.
fn positive_arg(ctx: &mut Ctx, arg: &[u8], msg: &str) -> Option<i64> {
    match parse_i64_strict(arg) {
        Some(v) if v >= 0 => Some(v),
        _ => {
            ctx.error(msg);
            None
        }
    }
}

/// Resolves a possibly negative index against `len` (-1 is the last element); None when out of
/// range.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 {
        len.checked_sub(usize::try_from(index.unsigned_abs()).ok()?)?
    } else {
        usize::try_from(index).ok()?
    };
    (i < len).then_some(i)
}

/// Redis's start/stop normalisation for LRANGE/LTRIM and the rank ranges of sorted sets: the
/// positions selected, or None when the range is empty. Negative indexes count from the end
/// (`len + index`, which cannot overflow: `index` is negative and `len` is not).
pub(super) fn resolve_range(start: i64, end: i64, len: usize) -> Option<Range<usize>> {
    let len = i64::try_from(len).ok()?;
    let start = if start < 0 { start.saturating_add(len).max(0) } else { start };
    let end = if end < 0 { end.saturating_add(len) } else { end };
    if start > end || start >= len {
        return None;
    }
    // One past the last position: `end + 1` capped at `len` (an `end` of i64::MAX saturates to
    // a value past `len` all the same).
    let stop = end.saturating_add(1).min(len);
    Some(start as usize..stop as usize)
}

fn push_generic(ctx: &mut Ctx, args: &[Bytes], end: End, only_existing: bool) {
    let key = &args[1];
    let elems = &args[2..];
    let len = match write_list(ctx, key) {
        Err(()) => return ctx.error(WRONGTYPE),
        Ok(Some(l)) => {
            for e in elems {
                push(l, end, Sds::new(e));
            }
            l.len()
        }
        Ok(None) if only_existing => return ctx.int(0),
        Ok(None) => {
            let mut l = VecDeque::with_capacity(elems.len());
            for e in elems {
                push(&mut l, end, Sds::new(e));
            }
            let n = l.len();
            store_new(ctx, key, l);
            n
        }
    };
    ctx.dirty(elems.len() as u64);
    ctx.int(len as i64)
}

fn lpush(ctx: &mut Ctx, args: &[Bytes]) {
    push_generic(ctx, args, End::Left, false)
}

fn rpush(ctx: &mut Ctx, args: &[Bytes]) {
    push_generic(ctx, args, End::Right, false)
}

fn lpushx(ctx: &mut Ctx, args: &[Bytes]) {
    push_generic(ctx, args, End::Left, true)
}

fn rpushx(ctx: &mut Ctx, args: &[Bytes]) {
    push_generic(ctx, args, End::Right, true)
}

/// LPOP/RPOP key [count]: without count a bulk (nil if missing); with count an array (nil array
/// if missing, empty array for count 0), as Redis 7.
fn pop_generic(ctx: &mut Ctx, args: &[Bytes], end: End, name: &str) {
    if args.len() > 3 {
        return ctx.error(&format!("ERR wrong number of arguments for '{name}' command"));
    }
    let count = if args.len() == 3 {
        let Some(c) = positive_arg(ctx, &args[2], "ERR value is out of range, must be positive") else {
            return;
        };
        Some(c)
    } else {
        None
    };
    let key = &args[1];
    let (popped, empty) = match write_list(ctx, key) {
        Err(()) => return ctx.error(WRONGTYPE),
        Ok(None) => {
            return if count.is_some() { ctx.null_array() } else { ctx.null() };
        }
        Ok(Some(_)) if count == Some(0) => return Reply::array_len(ctx.out, 0),
        Ok(Some(l)) => {
            let n = (count.unwrap_or(1) as u64).min(l.len() as u64) as usize;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                if let Some(v) = pop(l, end) {
                    out.push(v);
                }
            }
            (out, l.is_empty())
        }
    };
    delete_if_empty(ctx, key, empty);
    ctx.dirty(popped.len() as u64);
    match count {
        None => match popped.first() {
            Some(v) => ctx.bulk(v),
            None => ctx.null(),
        },
        Some(_) => Reply::bulk_array(ctx.out, popped.iter()),
    }
}

fn lpop(ctx: &mut Ctx, args: &[Bytes]) {
    pop_generic(ctx, args, End::Left, "lpop")
}

fn rpop(ctx: &mut Ctx, args: &[Bytes]) {
    pop_generic(ctx, args, End::Right, "rpop")
}

fn llen(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(l) = read_list(ctx, &args[1]) else {
        return;
    };
    ctx.int(l.map_or(0, |l| l.len() as i64))
}

fn lindex(ctx: &mut Ctx, args: &[Bytes]) {
    // Redis looks the key up before parsing the index.
    let Ok(l) = read_list(ctx, &args[1]) else {
        return;
    };
    let Some(l) = l else { return ctx.null() };
    let Some(index) = arg_i64(ctx, &args[2]) else {
        return;
    };
    match resolve_index(index, l.len()) {
        Some(i) => ctx.bulk(&l[i]),
        None => ctx.null(),
    }
}

fn lset(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    match type_of(ctx, key) {
        None => return ctx.error(NO_SUCH_KEY),
        Some("list") => {}
        Some(_) => return ctx.error(WRONGTYPE),
    }
    let Some(index) = arg_i64(ctx, &args[2]) else {
        return;
    };
    let done = match write_list(ctx, key) {
        Ok(Some(l)) => match resolve_index(index, l.len()) {
            Some(i) => {
                l[i] = Sds::new(&args[3]);
                true
            }
            None => false,
        },
        _ => false,
    };
    if !done {
        return ctx.error("ERR index out of range");
    }
    ctx.dirty(1);
    ctx.ok()
}

fn lrange(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(start) = arg_i64(ctx, &args[2]) else {
        return;
    };
    let Some(end) = arg_i64(ctx, &args[3]) else {
        return;
    };
    let Ok(l) = read_list(ctx, &args[1]) else {
        return;
    };
    let Some(l) = l else {
        return Reply::array_len(ctx.out, 0);
    };
    match resolve_range(start, end, l.len()) {
        Some(r) => Reply::bulk_array(ctx.out, l.range(r)),
        None => Reply::array_len(ctx.out, 0),
    }
}

fn ltrim(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(start) = arg_i64(ctx, &args[2]) else {
        return;
    };
    let Some(end) = arg_i64(ctx, &args[3]) else {
        return;
    };
    let key = &args[1];
    let (removed, empty) = match write_list(ctx, key) {
        Err(()) => return ctx.error(WRONGTYPE),
        Ok(None) => return ctx.ok(),
        Ok(Some(l)) => {
            let len = l.len();
            match resolve_range(start, end, len) {
                Some(r) => {
                    l.truncate(r.end);
                    l.drain(..r.start);
                }
                None => l.clear(),
            }
            // The list only shrank: the difference is what was removed.
            (len.abs_diff(l.len()), l.is_empty())
        }
    };
    delete_if_empty(ctx, key, empty);
    ctx.dirty(removed as u64);
    if removed == 0 {
        // Redis signals the key as modified even when LTRIM removes nothing (WATCH sees it);
        // `call` only does so for commands that changed the dirty counter.
        let db = ctx.db();
        ctx.st.watches.touch(db, key);
    }
    ctx.ok()
}

fn lrem(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(count) = arg_i64(ctx, &args[2]) else {
        return;
    };
    let key = &args[1];
    let elem = &args[3][..];
    let (removed, empty) = match write_list(ctx, key) {
        Err(()) => return ctx.error(WRONGTYPE),
        Ok(None) => return ctx.int(0),
        Ok(Some(l)) => {
            let before = l.len();
            let limit = if count == 0 { usize::MAX } else { count.unsigned_abs().min(before as u64) as usize };
            let matching = l.iter().enumerate().filter(|(_, e)| &e[..] == elem).map(|(i, _)| i);
            if count == 0 {
                l.retain(|e| &e[..] != elem);
            } else if count > 0 {
                // The first `limit` matches from the head: every match up to the last of them.
                if let Some(cut) = matching.take(limit).last() {
                    let mut index = 0usize..;
                    l.retain(|e| !(index.next().is_some_and(|i| i <= cut) && &e[..] == elem));
                }
            } else if let Some(cut) = matching.rev().take(limit).last() {
                // From the tail: every match from the first of the last `limit` ones.
                let mut index = 0usize..;
                l.retain(|e| !(index.next().is_some_and(|i| i >= cut) && &e[..] == elem));
            }
            // The list only shrank: the difference is what was removed.
            (before.abs_diff(l.len()), l.is_empty())
        }
    };
    delete_if_empty(ctx, key, empty);
    ctx.dirty(removed as u64);
    ctx.int(removed as i64)
}

fn linsert(ctx: &mut Ctx, args: &[Bytes]) {
    let after = if eq_ic(&args[2], "after") {
        true
    } else if eq_ic(&args[2], "before") {
        false
    } else {
        return ctx.error(SYNTAX);
    };
    let key = &args[1];
    let pivot = &args[3][..];
    let result = match write_list(ctx, key) {
        Err(()) => return ctx.error(WRONGTYPE),
        Ok(None) => return ctx.int(0),
        Ok(Some(l)) => match l.iter().position(|e| &e[..] == pivot) {
            Some(i) => {
                // `i` is a position in the list: one past it is at most the list's length.
                #[allow(clippy::arithmetic_side_effects)]
                let at = if after { i + 1 } else { i };
                l.insert(at, Sds::new(&args[4]));
                Some(l.len())
            }
            None => None,
        },
    };
    match result {
        Some(len) => {
            ctx.dirty(1);
            ctx.int(len as i64)
        }
        None => ctx.int(-1),
    }
}

fn lpos(ctx: &mut Ctx, args: &[Bytes]) {
    let elem = &args[2][..];
    let (mut rank, mut count, mut maxlen) = (1i64, -1i64, 0i64);
    let mut opts = args[3..].iter();
    while let Some(opt) = opts.next() {
        let value = if opts.len() > 0 { opts.next() } else { None };
        match value {
            Some(v) if eq_ic(opt, "rank") => {
                let Some(r) = arg_i64(ctx, v) else {
                    return;
                };
                if r == 0 {
                    return ctx.error(
                        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
                         or use negative to start from the end of the list",
                    );
                }
                rank = r;
            }
            Some(v) if eq_ic(opt, "count") => {
                let Some(c) = positive_arg(ctx, v, "ERR COUNT can't be negative") else {
                    return;
                };
                count = c;
            }
            Some(v) if eq_ic(opt, "maxlen") => {
                let Some(m) = positive_arg(ctx, v, "ERR MAXLEN can't be negative") else {
                    return;
                };
                maxlen = m;
            }
            _ => return ctx.error(SYNTAX),
        }
    }
    // A negative rank searches from the tail. Redis negates a C long; RANK i64::MIN stays
    // negative there, which the wrapping arithmetic below reproduces.
    let from_tail = rank < 0;
    if from_tail {
        rank = rank.wrapping_neg();
    }
    let Ok(l) = read_list(ctx, &args[1]) else {
        return;
    };
    let Some(l) = l else {
        return if count == -1 { ctx.null() } else { Reply::array_len(ctx.out, 0) };
    };
    let len = l.len();
    let mut found: Vec<i64> = Vec::new();
    let scan_len = if maxlen == 0 { len } else { (maxlen as u64).min(len as u64) as usize };
    let indexed = l.iter().enumerate();
    let scanned: Box<dyn Iterator<Item = (usize, &Sds)>> =
        if from_tail { Box::new(indexed.rev()) } else { Box::new(indexed) };
    // `matches` numbers the matches from 1, in scan order.
    for ((pos, _), matches) in scanned.take(scan_len).filter(|(_, e)| &e[..] == elem).zip(1i64..) {
        if matches >= rank {
            found.push(pos as i64);
            if count == -1 {
                break;
            }
            if count != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= count {
                break;
            }
        }
    }
    if count == -1 {
        match found.first() {
            Some(&p) => ctx.int(p),
            None => ctx.null(),
        }
    } else {
        Reply::array_len(ctx.out, found.len());
        for p in found {
            Reply::int(ctx.out, p);
        }
    }
}

fn parse_end(arg: &[u8]) -> Option<End> {
    if eq_ic(arg, "left") {
        Some(End::Left)
    } else if eq_ic(arg, "right") {
        Some(End::Right)
    } else {
        None
    }
}

/// Pops from `src`'s `from` end and pushes onto `dst`'s `to` end, atomically.
fn lmove_generic(ctx: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End) {
    match type_of(ctx, src) {
        None => return ctx.null(),
        Some("list") => {}
        Some(_) => return ctx.error(WRONGTYPE),
    }
    if src != dst && !matches!(type_of(ctx, dst), None | Some("list")) {
        return ctx.error(WRONGTYPE);
    }
    let value = if src == dst {
        // Rotation within one list (never empties it).
        match write_list(ctx, src) {
            Ok(Some(l)) => {
                let Some(v) = pop(l, from) else {
                    return ctx.null();
                };
                push(l, to, v.clone());
                v
            }
            _ => return ctx.null(),
        }
    } else {
        let (v, empty) = match write_list(ctx, src) {
            Ok(Some(l)) => match pop(l, from) {
                Some(v) => (v, l.is_empty()),
                None => return ctx.null(),
            },
            _ => return ctx.null(),
        };
        delete_if_empty(ctx, src, empty);
        match write_list(ctx, dst) {
            Ok(Some(l)) => push(l, to, v.clone()),
            _ => store_new(ctx, dst, VecDeque::from([v.clone()])),
        }
        v
    };
    ctx.dirty(1);
    ctx.bulk(&value)
}

fn rpoplpush(ctx: &mut Ctx, args: &[Bytes]) {
    lmove_generic(ctx, &args[1], &args[2], End::Right, End::Left)
}

fn lmove(ctx: &mut Ctx, args: &[Bytes]) {
    let (Some(from), Some(to)) = (parse_end(&args[3]), parse_end(&args[4])) else {
        return ctx.error(SYNTAX);
    };
    lmove_generic(ctx, &args[1], &args[2], from, to)
}

// ---------------------------------------------------------------------------------------------
// Multi-key and blocking pops (Redis's `blockingPopGenericCommand`, `mpopGenericCommand`).

/// What a pop from several keys takes: one element (BLPOP's `[key, value]`) or up to `count`
/// (LMPOP's `[key, [values]]`).
#[derive(Clone, Copy)]
enum Take {
    One,
    Up(i64),
}

/// Pops from the first of `keys` holding a list and replies; Some(()) if a reply was written
/// (the pop, or WRONGTYPE), None if every key was missing.
fn pop_first(ctx: &mut Ctx, keys: &[Bytes], end: End, take: Take) -> Option<()> {
    let serving = ctx.client.serving.clone();
    for key in keys {
        // Serving a blocked client: only the key that became ready (Redis 7.0's order).
        if serving.as_ref().is_some_and(|s| s.as_bytes() != &key[..]) {
            continue;
        }
        let (popped, empty) = match write_list(ctx, key) {
            Err(()) => {
                ctx.error(WRONGTYPE);
                return Some(());
            }
            Ok(None) => continue,
            Ok(Some(l)) if l.is_empty() => continue,
            Ok(Some(l)) => {
                let n = match take {
                    Take::One => 1,
                    Take::Up(count) => (count as u64).min(l.len() as u64),
                };
                let popped: Vec<Sds> = (0..n).filter_map(|_| pop(l, end)).collect();
                (popped, l.is_empty())
            }
        };
        delete_if_empty(ctx, key, empty);
        ctx.dirty(popped.len() as u64);
        ctx.signal_modified(key);
        let name = if end == End::Left { "LPOP" } else { "RPOP" };
        match take {
            Take::One => {
                rewrite_as(ctx, vec![vec![arg(name), key.clone()]]);
                ctx.array_len(2);
                ctx.bulk(key);
                ctx.bulk(&popped[0]);
            }
            Take::Up(_) => {
                rewrite_as(ctx, vec![vec![arg(name), key.clone(), arg(popped.len().to_string())]]);
                ctx.array_len(2);
                ctx.bulk(key);
                Reply::bulk_array(ctx.out, popped.iter());
            }
        }
        return Some(());
    }
    None
}

/// BLPOP/BRPOP key [key ...] timeout.
fn blocking_pop(ctx: &mut Ctx, args: &[Bytes], end: End) {
    let Some((keys, deadline)) = crate::blocking::keys_and_deadline(ctx, args) else {
        return;
    };
    if pop_first(ctx, keys, end, Take::One).is_none() {
        crate::blocking::block_or_nil(ctx, args, keys, deadline, "list", true);
    }
}

fn blpop(ctx: &mut Ctx, args: &[Bytes]) {
    blocking_pop(ctx, args, End::Left)
}

fn brpop(ctx: &mut Ctx, args: &[Bytes]) {
    blocking_pop(ctx, args, End::Right)
}

fn lmpop(ctx: &mut Ctx, args: &[Bytes]) {
    let Some((keys, end, count)) = crate::blocking::parse_mpop(ctx, args, 1, parse_end) else {
        return;
    };
    if pop_first(ctx, keys, end, Take::Up(count)).is_none() {
        ctx.null_array();
    }
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count].
fn blmpop(ctx: &mut Ctx, args: &[Bytes]) {
    let Some((keys, end, count)) = crate::blocking::parse_mpop(ctx, args, 2, parse_end) else {
        return;
    };
    let Some(deadline) = crate::blocking::parse_timeout(ctx, &args[1]) else {
        return;
    };
    if pop_first(ctx, keys, end, Take::Up(count)).is_none() {
        crate::blocking::block_or_nil(ctx, args, keys, deadline, "list", true);
    }
}

/// BLMOVE/BRPOPLPUSH: LMOVE when the source holds a list, else wait for it. Propagated as the
/// non-blocking command, which is what ran.
fn blocking_move(ctx: &mut Ctx, args: &[Bytes], from: End, to: End, deadline: Option<i64>) {
    let (src, dst) = (&args[1], &args[2]);
    match type_of(ctx, src) {
        Some("list") => {}
        Some(_) => return ctx.error(WRONGTYPE),
        None => return crate::blocking::block_or_nil(ctx, args, &args[1..2], deadline, "list", false),
    }
    let dirty_before = ctx.st.dirty;
    lmove_generic(ctx, src, dst, from, to);
    if ctx.st.dirty != dirty_before {
        let side = |e: End| arg(if e == End::Left { "LEFT" } else { "RIGHT" });
        let effect = if eq_ic(&args[0], "brpoplpush") {
            vec![arg("RPOPLPUSH"), src.clone(), dst.clone()]
        } else {
            vec![arg("LMOVE"), src.clone(), dst.clone(), side(from), side(to)]
        };
        rewrite_as(ctx, vec![effect]);
    }
}

fn blmove(ctx: &mut Ctx, args: &[Bytes]) {
    let (Some(from), Some(to)) = (parse_end(&args[3]), parse_end(&args[4])) else {
        return ctx.error(SYNTAX);
    };
    if let Some(deadline) = crate::blocking::parse_timeout(ctx, &args[5]) {
        blocking_move(ctx, args, from, to, deadline)
    }
}

fn brpoplpush(ctx: &mut Ctx, args: &[Bytes]) {
    if let Some(deadline) = crate::blocking::parse_timeout(ctx, &args[3]) {
        blocking_move(ctx, args, End::Right, End::Left, deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_redis_normalisation() {
        assert_eq!(resolve_range(0, -1, 3), Some(0..3));
        assert_eq!(resolve_range(-100, 100, 3), Some(0..3));
        assert_eq!(resolve_range(2, 1, 3), None);
        assert_eq!(resolve_range(3, 5, 3), None);
        assert_eq!(resolve_range(i64::MIN, i64::MAX, 3), Some(0..3));
        assert_eq!(resolve_range(-1, i64::MAX, 3), Some(2..3));
        assert_eq!(resolve_range(1, 1, 3), Some(1..2));
        assert_eq!(resolve_range(i64::MAX, i64::MIN, 3), None);
        assert_eq!(resolve_range(0, -1, 0), None);
        assert_eq!(resolve_index(-1, 3), Some(2));
        assert_eq!(resolve_index(i64::MIN, 3), None);
        assert_eq!(resolve_index(-3, 3), Some(0));
        assert_eq!(resolve_index(-4, 3), None);
        assert_eq!(resolve_index(i64::MAX, 3), None);
        assert_eq!(resolve_index(3, 3), None);
    }
}
