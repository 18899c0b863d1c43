//! Sorted-set commands: ZADD (NX XX GT LT CH INCR), ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD, ZCOUNT,
//! ZLEXCOUNT, ZRANK, ZREVRANK, ZRANGE (rank, BYSCORE, BYLEX, REV, LIMIT, WITHSCORES), ZREVRANGE,
//! ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX, ZRANGESTORE, ZREMRANGEBYRANK,
//! ZREMRANGEBYSCORE, ZREMRANGEBYLEX, ZPOPMIN, ZPOPMAX, ZMPOP, the blocking BZPOPMIN, BZPOPMAX
//! and BZMPOP (their waiting is `blocking.rs`'s), ZRANDMEMBER, ZSCAN.
//!
//! Design notes and trade-offs:
//! - `ZSet` (db/value.rs) is a member -> score map plus a `BTreeSet<(Score, member)>`. Score and
//!   lex ranges are O(log n + m) B-tree range scans, but anything positional walks the tree:
//!   ZRANK is O(rank), ZRANGE/ZREMRANGEBYRANK by index O(distance from the nearer end + m),
//!   LIMIT offsets O(offset), and ZCOUNT/ZLEXCOUNT count the range (O(m)), where Redis's
//!   skiplist with spans answers in O(log n).
//! - Lex ranges assume, like Redis, that all members share one score; then they are B-tree
//!   ranges. With mixed scores we take the first member (in score order) at or past `min` and
//!   continue while members are within `max`, which is what Redis's listpack encoding does (its
//!   skiplist answer depends on the skiplist's shape).
//! - Scores are written the way Redis 7.0 writes them, `%.17g` ([`format_score`]), so `0.1` is
//!   `0.10000000000000001` (Redis 7.2+ writes the shortest form). Score arguments are parsed
//!   with Redis's `strtod` checks: overflow (`1e400`) and underflow to zero are "not a valid
//!   float" (hexadecimal floats are not accepted); range bounds follow `zslParseRange`, which
//!   accepts an empty string as 0 and overflow as infinity.
//! - RESP3 clients get scores as doubles (`,0.10000000000000001`, same text) and WITHSCORES
//!   replies as [member, score] pairs, as Redis 7.0 sends them; ZSCAN keeps bulk-string scores
//!   in both protocols, as Redis does.
//! - ZSCAN uses the hash-ordered cursor described in `sets.rs`; a sorted set small enough for
//!   Redis's listpack encoding (<= 128 members of <= 64 bytes) is returned whole, in score order,
//!   with cursor 0, as Redis does.

use std::collections::BTreeSet;
use std::ops::Bound::{self, Excluded, Included, Unbounded};
use std::sync::Arc;

use bytes::Bytes;

use super::lists::resolve_range;
use super::sets::{pick, range_arg, range_arg_msg, reply_empty_scan, reply_scan, sample_distinct, scan_cursor};
use super::sets::{scan_opts, scan_page, RANDOM_REPLY_MAX};
use super::*;
use crate::db::{Score, ZSet};
use crate::protocol::{format_double, Reply};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "zadd", arity: -4, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: zadd },
    CommandSpec { name: "zincrby", arity: 4, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: zincrby },
    CommandSpec { name: "zrem", arity: -3, flags: WRITE | FAST, keys: (1, 1, 1), handler: zrem },
    CommandSpec { name: "zscore", arity: 3, flags: READONLY | FAST, keys: (1, 1, 1), handler: zscore },
    CommandSpec { name: "zmscore", arity: -3, flags: READONLY | FAST, keys: (1, 1, 1), handler: zmscore },
    CommandSpec { name: "zcard", arity: 2, flags: READONLY | FAST, keys: (1, 1, 1), handler: zcard },
    CommandSpec { name: "zcount", arity: 4, flags: READONLY | FAST, keys: (1, 1, 1), handler: zcount },
    CommandSpec { name: "zlexcount", arity: 4, flags: READONLY | FAST, keys: (1, 1, 1), handler: zlexcount },
    CommandSpec { name: "zrank", arity: 3, flags: READONLY | FAST, keys: (1, 1, 1), handler: zrank },
    CommandSpec { name: "zrevrank", arity: 3, flags: READONLY | FAST, keys: (1, 1, 1), handler: zrevrank },
    CommandSpec { name: "zrange", arity: -4, flags: READONLY, keys: (1, 1, 1), handler: zrange },
    CommandSpec { name: "zrevrange", arity: -4, flags: READONLY, keys: (1, 1, 1), handler: zrevrange },
    CommandSpec { name: "zrangebyscore", arity: -4, flags: READONLY, keys: (1, 1, 1), handler: zrangebyscore },
    CommandSpec { name: "zrevrangebyscore", arity: -4, flags: READONLY, keys: (1, 1, 1), handler: zrevrangebyscore },
    CommandSpec { name: "zrangebylex", arity: -4, flags: READONLY, keys: (1, 1, 1), handler: zrangebylex },
    CommandSpec { name: "zrevrangebylex", arity: -4, flags: READONLY, keys: (1, 1, 1), handler: zrevrangebylex },
    CommandSpec {
        name: "zrangestore",
        arity: -5,
        flags: WRITE | DENYOOM | SIGNALS_OWN_KEYS,
        keys: (1, 2, 1),
        handler: zrangestore,
    },
    CommandSpec { name: "zremrangebyrank", arity: 4, flags: WRITE, keys: (1, 1, 1), handler: zremrangebyrank },
    CommandSpec { name: "zremrangebyscore", arity: 4, flags: WRITE, keys: (1, 1, 1), handler: zremrangebyscore },
    CommandSpec { name: "zremrangebylex", arity: 4, flags: WRITE, keys: (1, 1, 1), handler: zremrangebylex },
    CommandSpec { name: "zpopmin", arity: -2, flags: WRITE | FAST, keys: (1, 1, 1), handler: zpopmin },
    CommandSpec { name: "zpopmax", arity: -2, flags: WRITE | FAST, keys: (1, 1, 1), handler: zpopmax },
    CommandSpec { name: "zmpop", arity: -4, flags: WRITE | SIGNALS_OWN_KEYS, keys: (0, 0, 0), handler: zmpop },
    CommandSpec {
        name: "bzpopmin",
        arity: -3,
        flags: NO_SCRIPT | WRITE | FAST | BLOCKING | SIGNALS_OWN_KEYS,
        keys: (1, -2, 1),
        handler: bzpopmin,
    },
    CommandSpec {
        name: "bzpopmax",
        arity: -3,
        flags: NO_SCRIPT | WRITE | FAST | BLOCKING | SIGNALS_OWN_KEYS,
        keys: (1, -2, 1),
        handler: bzpopmax,
    },
    CommandSpec {
        name: "bzmpop",
        arity: -5,
        flags: WRITE | BLOCKING | SIGNALS_OWN_KEYS,
        keys: (0, 0, 0),
        handler: bzmpop,
    },
    CommandSpec { name: "zrandmember", arity: -2, flags: READONLY, keys: (1, 1, 1), handler: zrandmember },
    CommandSpec { name: "zscan", arity: -3, flags: READONLY, keys: (1, 1, 1), handler: zscan },
];

/// Redis's `zset-max-listpack-entries` / `zset-max-listpack-value` defaults.
const LISTPACK_MAX_ENTRIES: usize = 128;
const LISTPACK_MAX_VALUE: usize = 64;

const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

type Entry = (Score, Sds);

// ---------------------------------------------------------------------------------------------
// Number formatting and parsing.

/// Formats a score like Redis 7.0's `addReplyDouble` (`%.17g` via `format_double`). Zero is `0`
/// whatever its sign, as Redis reports it for small (listpack) sorted sets.
pub(crate) fn format_score(v: f64) -> String {
    format_double(unsigned_zero(v))
}

fn unsigned_zero(v: f64) -> f64 {
    if v == 0.0 {
        0.0
    } else {
        v
    }
}

/// A score reply: a RESP3 double, or the `%.17g` bulk string in RESP2 (`addReplyDouble`).
fn reply_score(ctx: &mut Ctx, v: f64) {
    ctx.double(unsigned_zero(v))
}

/// The header of a reply of `n` entries, each a member or (with scores) a member and its score.
/// With scores RESP2 flattens the pairs and RESP3 nests each in its own array, as Redis 7.0
/// does for ZRANGE and ZRANDMEMBER (and ZPOPMIN/ZPOPMAX with a count). `n` is at most the
/// set's size or `RANDOM_REPLY_MAX`, so twice it fits.
#[allow(clippy::arithmetic_side_effects)]
pub(super) fn reply_entries_len(ctx: &mut Ctx, n: usize, withscores: bool) {
    let per = if withscores && !ctx.proto().is_resp3() { 2 } else { 1 };
    ctx.array_len(n * per)
}

/// The entries announced by [`reply_entries_len`].
pub(super) fn reply_entries<'a>(ctx: &mut Ctx, items: impl Iterator<Item = (&'a [u8], f64)>, withscores: bool) {
    let nested = withscores && ctx.proto().is_resp3();
    for (m, s) in items {
        if nested {
            ctx.array_len(2);
        }
        Reply::bulk(ctx.out, m);
        if withscores {
            reply_score(ctx, s);
        }
    }
}

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Parses a score argument like Redis's `getDoubleFromObject`: no spaces, no NaN, and `strtod`
/// range errors (overflow to infinity, underflow to zero) are rejected.
pub(super) fn parse_score(arg: &[u8]) -> Option<f64> {
    let v = parse_f64(arg)?;
    let lower = arg.to_ascii_lowercase();
    // The digits before the exponent (`e`, or `p` for a hexadecimal float).
    let unsigned = lower.strip_prefix(b"-").or(lower.strip_prefix(b"+")).unwrap_or(&lower);
    let hex = unsigned.starts_with(b"0x");
    let mantissa = lower.split(|&b| b == if hex { b'p' } else { b'e' }).next().unwrap_or(&[]);
    let nonzero = |b: &u8| (b'1'..=b'9').contains(b) || (hex && (b'a'..=b'f').contains(b));
    if v.is_infinite() && !lower.ends_with(b"inf") && !lower.ends_with(b"infinity") {
        return None;
    }
    if v == 0.0 && mantissa.iter().any(nonzero) {
        return None;
    }
    Some(v)
}

fn arg_score(ctx: &mut Ctx, arg: &[u8]) -> Option<f64> {
    let v = parse_score(arg);
    if v.is_none() {
        ctx.error(NOT_FLOAT);
    }
    v
}

/// Parses a range bound like C's `strtod` with the whole string consumed: leading spaces are
/// skipped, an empty string is 0, overflow gives infinity. Redis reads the bound as a C string,
/// so a NUL byte ends it.
fn parse_strtod(s: &[u8]) -> Option<f64> {
    let s = &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())];
    if s.is_empty() {
        return Some(0.0);
    }
    let start = s.iter().position(|&b| !is_c_space(b))?;
    let v = super::strtod_whole(std::str::from_utf8(&s[start..]).ok()?)?;
    (!v.is_nan()).then_some(v)
}

// ---------------------------------------------------------------------------------------------
// Ranges.

/// A score interval (`zrangespec`).
#[derive(Clone, Copy)]
struct ScoreRange {
    min: f64,
    max: f64,
    minex: bool,
    maxex: bool,
}

impl ScoreRange {
    /// Parses `min max` like `zslParseRange` (`(` makes a bound exclusive).
    fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let bound = |a: &[u8]| -> Option<(f64, bool)> {
            match a.first() {
                Some(b'(') => Some((parse_strtod(&a[1..])?, true)),
                _ => Some((parse_strtod(a)?, false)),
            }
        };
        let (min, minex) = bound(min)?;
        let (max, maxex) = bound(max)?;
        Some(ScoreRange { min, max, minex, maxex })
    }

    /// The B-tree bounds of the interval; None when it is certainly empty.
    fn bounds(&self) -> Option<(Bound<Entry>, Bound<Entry>)> {
        let lo = if self.minex {
            if self.min == f64::INFINITY {
                return None;
            }
            Included((Score(self.min.next_up()), Sds::new(b"")))
        } else if self.min == f64::NEG_INFINITY {
            Unbounded
        } else {
            Included((Score(self.min), Sds::new(b"")))
        };
        let hi = if self.maxex {
            Excluded((Score(self.max), Sds::new(b"")))
        } else if self.max == f64::INFINITY {
            Unbounded
        } else {
            Excluded((Score(self.max.next_up()), Sds::new(b"")))
        };
        Some((lo, hi))
    }
}

/// One end of a lex range (`zslParseLexRangeItem`).
#[derive(Clone)]
enum LexBound {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    Incl(Sds),
    Excl(Sds),
}

#[derive(Clone)]
struct LexRange {
    min: LexBound,
    max: LexBound,
}

impl LexBound {
    fn parse(a: &[u8]) -> Option<LexBound> {
        match a.first()? {
            b'+' if a.len() == 1 => Some(LexBound::Max),
            b'-' if a.len() == 1 => Some(LexBound::Min),
            b'(' => Some(LexBound::Excl(Sds::new(&a[1..]))),
            b'[' => Some(LexBound::Incl(Sds::new(&a[1..]))),
            _ => None,
        }
    }
}

impl LexRange {
    fn parse(min: &[u8], max: &[u8]) -> Option<LexRange> {
        Some(LexRange { min: LexBound::parse(min)?, max: LexBound::parse(max)? })
    }

    /// False for ranges that are always empty (`min > max`, or equal with an exclusive end).
    fn nonempty(&self) -> bool {
        use std::cmp::Ordering::*;
        // Order of bounds: `-` < every string < `+`; returns (ordering, either exclusive).
        let key = |b: &LexBound| -> (u8, Option<Sds>, bool) {
            match b {
                LexBound::Min => (0, None, true),
                LexBound::Incl(x) => (1, Some(x.clone()), false),
                LexBound::Excl(x) => (1, Some(x.clone()), true),
                LexBound::Max => (2, None, true),
            }
        };
        let (a, b) = (key(&self.min), key(&self.max));
        match (a.0, a.1).cmp(&(b.0, b.1)) {
            Greater => false,
            Equal => !(a.2 || b.2),
            Less => true,
        }
    }

    fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Incl(x) => m >= &x[..],
            LexBound::Excl(x) => m > &x[..],
        }
    }

    fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::Max => true,
            LexBound::Min => false,
            LexBound::Incl(x) => m <= &x[..],
            LexBound::Excl(x) => m < &x[..],
        }
    }
}

/// `BTreeSet::range` without its panics (start > end, or equal bounds both excluded): an empty
/// interval gives None.
fn safe_range<'a>(
    set: &'a BTreeSet<Entry>,
    lo: Bound<Entry>,
    hi: Bound<Entry>,
) -> Option<std::collections::btree_set::Range<'a, Entry>> {
    if let (Included(a) | Excluded(a), Included(b) | Excluded(b)) = (&lo, &hi) {
        match a.cmp(b) {
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Equal if !(matches!(lo, Included(_)) && matches!(hi, Included(_))) => return None,
            _ => {}
        }
    }
    Some(set.range((lo, hi)))
}

/// Members with scores in `r`, in ascending order (reversible).
fn score_iter<'a>(z: &'a ZSet, r: &ScoreRange) -> impl DoubleEndedIterator<Item = &'a Entry> + 'a {
    r.bounds().and_then(|(lo, hi)| safe_range(&z.ordered, lo, hi)).into_iter().flatten()
}

/// Members in lex range `r`, ascending or (with `reverse`) descending.
fn lex_iter<'a>(z: &'a ZSet, r: &LexRange, reverse: bool) -> Box<dyn Iterator<Item = &'a Entry> + 'a> {
    let (Some(first), Some(last)) = (z.ordered.first(), z.ordered.last()) else {
        return Box::new(std::iter::empty());
    };
    if first.0 == last.0 {
        // One score: members are in lex order, so the range is a B-tree range.
        let s = first.0;
        let lo = match &r.min {
            LexBound::Min => Unbounded,
            LexBound::Max => return Box::new(std::iter::empty()),
            LexBound::Incl(x) => Included((s, x.clone())),
            LexBound::Excl(x) => Excluded((s, x.clone())),
        };
        let hi = match &r.max {
            LexBound::Max => Unbounded,
            LexBound::Min => return Box::new(std::iter::empty()),
            LexBound::Incl(x) => Included((s, x.clone())),
            LexBound::Excl(x) => Excluded((s, x.clone())),
        };
        let range = safe_range(&z.ordered, lo, hi).into_iter().flatten();
        return if reverse { Box::new(range.rev()) } else { Box::new(range) };
    }
    // Redis's `zslIsInLexRange` pre-checks: an inverted range, a last member below `min` or a
    // first member above `max` select nothing.
    if !r.nonempty() || !r.gte_min(&last.1) || !r.lte_max(&first.1) {
        return Box::new(std::iter::empty());
    }
    let r1 = r.clone();
    let r2 = r.clone();
    if reverse {
        Box::new(z.ordered.iter().rev().skip_while(move |e| !r1.lte_max(&e.1)).take_while(move |e| r2.gte_min(&e.1)))
    } else {
        Box::new(z.ordered.iter().skip_while(move |e| !r1.gte_min(&e.1)).take_while(move |e| r2.lte_max(&e.1)))
    }
}

enum RangeSpec {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// The entries a range selects, in reply order. `offset`/`limit` apply to score and lex ranges
/// with Redis's semantics: a negative offset selects nothing, a negative limit means no limit.
fn select<'a>(z: &'a ZSet, spec: &RangeSpec, reverse: bool, offset: i64, limit: i64) -> Vec<&'a Entry> {
    let ranks = match spec {
        RangeSpec::Rank(s, e) => match resolve_range(*s, *e, z.len()) {
            Some(r) => r,
            None => return Vec::new(),
        },
        _ => {
            if offset < 0 || (offset > 0 && offset as u64 >= z.len() as u64) {
                return Vec::new();
            }
            0..0
        }
    };
    let take = if limit < 0 { usize::MAX } else { usize::try_from(limit).unwrap_or(usize::MAX) };
    let skip = offset as usize;
    match spec {
        RangeSpec::Rank(..) => {
            // Walk from whichever end of the tree is nearer the range.
            let (start, n) = (ranks.start, ranks.len());
            // The range ends within the set.
            #[allow(clippy::arithmetic_side_effects)]
            let from_far_end = z.len() - ranks.end;
            let mut v: Vec<&Entry> = match (reverse, from_far_end < start) {
                (false, false) => z.ordered.iter().skip(start).take(n).collect(),
                (false, true) => z.ordered.iter().rev().skip(from_far_end).take(n).collect(),
                (true, false) => z.ordered.iter().rev().skip(start).take(n).collect(),
                (true, true) => z.ordered.iter().skip(from_far_end).take(n).collect(),
            };
            if from_far_end < start {
                v.reverse();
            }
            v
        }
        RangeSpec::Score(r) => {
            if reverse {
                score_iter(z, r).rev().skip(skip).take(take).collect()
            } else {
                score_iter(z, r).skip(skip).take(take).collect()
            }
        }
        RangeSpec::Lex(r) => lex_iter(z, r, reverse).skip(skip).take(take).collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Key access.

/// Reads a sorted set (hit/miss counted): Ok(None) if missing; Err after replying WRONGTYPE.
fn read_zset(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Arc<ZSet>>, ()> {
    match ctx.read(key) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z.clone())),
        Some(_) => {
            ctx.error(WRONGTYPE);
            Err(())
        }
    }
}

/// Looks a sorted set up for modification: Ok(None) if missing, Err(()) if another type.
fn write_zset<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut ZSet>, ()> {
    match ctx.write_lookup(key) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(Arc::make_mut(z))),
        Some(_) => Err(()),
    }
}

fn store_new(ctx: &mut Ctx, key: &[u8], z: ZSet) {
    let db = ctx.db();
    ctx.st.ks.dbs[db].insert(Sds::new(key), Value::ZSet(Arc::new(z)), false);
}

fn delete_if_empty(ctx: &mut Ctx, key: &[u8], empty: bool) {
    if empty {
        let db = ctx.db();
        ctx.st.ks.delete(db, key);
    }
}

// ---------------------------------------------------------------------------------------------
// ZADD / ZINCRBY.

#[derive(Default)]
struct ZaddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    incr: bool,
}

enum ZaddOutcome {
    Added(f64),
    Updated(f64),
    /// Processed, score unchanged.
    Same(f64),
    /// Not processed (NX on an existing member, XX on a missing one, GT/LT refused).
    Nop,
}

/// Redis's `zsetAdd` for one pair; Err(()) when an increment produces NaN.
fn zadd_one(z: &mut ZSet, score: f64, member: &[u8], f: &ZaddFlags) -> Result<ZaddOutcome, ()> {
    if let Some(&cur) = z.scores.get(member) {
        if f.nx {
            return Ok(ZaddOutcome::Nop);
        }
        let mut score = score;
        if f.incr {
            // The stored zero has no sign (a listpack keeps -0 as the integer 0): -0 + 0 is 0.
            score += unsigned_zero(cur);
            if score.is_nan() {
                return Err(());
            }
        }
        if (f.lt && score >= cur) || (f.gt && score <= cur) {
            return Ok(ZaddOutcome::Nop);
        }
        if score != cur {
            z.insert(Sds::new(member), score);
            return Ok(ZaddOutcome::Updated(score));
        }
        Ok(ZaddOutcome::Same(score))
    } else if !f.xx {
        z.insert(Sds::new(member), score);
        Ok(ZaddOutcome::Added(score))
    } else {
        Ok(ZaddOutcome::Nop)
    }
}

fn zadd_generic(ctx: &mut Ctx, args: &[Bytes], incr: bool) {
    let mut f = ZaddFlags { incr, ..ZaddFlags::default() };
    let mut ch = false;
    let mut pairs = &args[2..];
    while let Some((a, rest)) = pairs.split_first() {
        if eq_ic(a, "nx") {
            f.nx = true;
        } else if eq_ic(a, "xx") {
            f.xx = true;
        } else if eq_ic(a, "ch") {
            ch = true;
        } else if eq_ic(a, "incr") {
            f.incr = true;
        } else if eq_ic(a, "gt") {
            f.gt = true;
        } else if eq_ic(a, "lt") {
            f.lt = true;
        } else {
            break;
        }
        pairs = rest;
    }
    let elements = pairs.len();
    if elements == 0 || !elements.is_multiple_of(2) {
        return ctx.error(SYNTAX);
    }
    if f.nx && f.xx {
        return ctx.error("ERR XX and NX options at the same time are not compatible");
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return ctx.error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && elements > 2 {
        return ctx.error("ERR INCR option supports a single increment-element pair");
    }
    let mut scores = Vec::with_capacity(pairs.len() / 2);
    for p in pairs.chunks_exact(2) {
        let Some(s) = arg_score(ctx, &p[0]) else {
            return;
        };
        scores.push(s);
    }
    let key = &args[1];
    let mut outcomes = Vec::with_capacity(scores.len());
    let mut nan = false;
    let mut apply = |z: &mut ZSet| {
        for (p, &score) in pairs.chunks_exact(2).zip(&scores) {
            match zadd_one(z, score, &p[1], &f) {
                Ok(outcome) => outcomes.push(outcome),
                Err(()) => {
                    nan = true;
                    return;
                }
            }
        }
    };
    match write_zset(ctx, key) {
        Err(()) => return ctx.error(WRONGTYPE),
        Ok(Some(z)) => apply(z),
        Ok(None) if f.xx => {}
        Ok(None) => {
            let mut z = ZSet::new(ctx.st.ks.hasher());
            apply(&mut z);
            if !z.is_empty() {
                store_new(ctx, key, z);
            }
        }
    }
    let added = outcomes.iter().filter(|o| matches!(o, ZaddOutcome::Added(_))).count();
    let changed = outcomes.iter().filter(|o| matches!(o, ZaddOutcome::Added(_) | ZaddOutcome::Updated(_))).count();
    ctx.dirty(changed as u64);
    if nan {
        return ctx.error("ERR resulting score is not a number (NaN)");
    }
    if f.incr {
        // The score of the last pair processed (INCR takes one pair).
        let last = outcomes.iter().rev().find_map(|o| match o {
            ZaddOutcome::Added(s) | ZaddOutcome::Updated(s) | ZaddOutcome::Same(s) => Some(*s),
            ZaddOutcome::Nop => None,
        });
        match last {
            // The new score as computed, sign included: Redis replies `-0` for a member added
            // with an increment of -0 (its stored score then reads back as 0).
            Some(s) => ctx.double(s),
            None => ctx.null(),
        }
    } else {
        ctx.int((if ch { changed } else { added }) as i64)
    }
}

fn zadd(ctx: &mut Ctx, args: &[Bytes]) {
    zadd_generic(ctx, args, false)
}

fn zincrby(ctx: &mut Ctx, args: &[Bytes]) {
    zadd_generic(ctx, args, true)
}

// ---------------------------------------------------------------------------------------------
// Point reads and removals.

fn zrem(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let (removed, empty) = match write_zset(ctx, key) {
        Err(()) => return ctx.error(WRONGTYPE),
        Ok(None) => return ctx.int(0),
        Ok(Some(z)) => (args[2..].iter().filter(|m| z.remove(m).is_some()).count(), z.is_empty()),
    };
    delete_if_empty(ctx, key, empty);
    ctx.dirty(removed as u64);
    ctx.int(removed as i64)
}

fn zscore(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(z) = read_zset(ctx, &args[1]) else {
        return;
    };
    match z.as_ref().and_then(|z| z.scores.get(&args[2][..])) {
        Some(&s) => reply_score(ctx, s),
        None => ctx.null(),
    }
}

fn zmscore(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(z) = read_zset(ctx, &args[1]) else {
        return;
    };
    let members = &args[2..];
    Reply::array_len(ctx.out, members.len());
    for m in members {
        match z.as_ref().and_then(|z| z.scores.get(&m[..])) {
            Some(&s) => reply_score(ctx, s),
            None => ctx.null(),
        }
    }
}

fn zcard(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(z) = read_zset(ctx, &args[1]) else {
        return;
    };
    ctx.int(z.map_or(0, |z| z.len() as i64))
}

fn zcount(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(r) = ScoreRange::parse(&args[2], &args[3]) else {
        return ctx.error(NOT_FLOAT_RANGE);
    };
    let Ok(z) = read_zset(ctx, &args[1]) else {
        return;
    };
    ctx.int(z.map_or(0, |z| score_iter(&z, &r).count() as i64))
}

fn zlexcount(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(r) = LexRange::parse(&args[2], &args[3]) else {
        return ctx.error(NOT_LEX_RANGE);
    };
    let Ok(z) = read_zset(ctx, &args[1]) else {
        return;
    };
    ctx.int(z.map_or(0, |z| lex_iter(&z, &r, false).count() as i64))
}

fn zrank_generic(ctx: &mut Ctx, args: &[Bytes], reverse: bool) {
    let Ok(z) = read_zset(ctx, &args[1]) else {
        return;
    };
    // A member's rank is below the set's size.
    #[allow(clippy::arithmetic_side_effects)]
    let rank = z.as_ref().and_then(|z| z.rank(&args[2]).map(|r| if reverse { z.len() - 1 - r } else { r }));
    match rank {
        Some(r) => ctx.int(r as i64),
        None => ctx.null(),
    }
}

fn zrank(ctx: &mut Ctx, args: &[Bytes]) {
    zrank_generic(ctx, args, false)
}

fn zrevrank(ctx: &mut Ctx, args: &[Bytes]) {
    zrank_generic(ctx, args, true)
}

// ---------------------------------------------------------------------------------------------
// ZRANGE family.

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Auto,
    Forward,
    Reverse,
}

/// Parses a range's two bounds per its type, replying with Redis's error on failure.
fn parse_spec(ctx: &mut Ctx, rt: RangeType, min: &[u8], max: &[u8]) -> Option<RangeSpec> {
    match rt {
        RangeType::Score => match ScoreRange::parse(min, max) {
            Some(r) => Some(RangeSpec::Score(r)),
            None => {
                ctx.error(NOT_FLOAT_RANGE);
                None
            }
        },
        RangeType::Lex => match LexRange::parse(min, max) {
            Some(r) => Some(RangeSpec::Lex(r)),
            None => {
                ctx.error(NOT_LEX_RANGE);
                None
            }
        },
        _ => {
            let s = arg_i64(ctx, min)?;
            let e = arg_i64(ctx, max)?;
            Some(RangeSpec::Rank(s, e))
        }
    }
}

/// Stores a ZRANGESTORE result: a non-empty set replaces `dst`, an empty one deletes it.
pub(super) fn store_result(ctx: &mut Ctx, dst: &[u8], z: ZSet) {
    let n = z.len();
    // Only the destination is modified (the source is read): signalled when written or
    // deleted, as Redis does.
    if n > 0 {
        store_new(ctx, dst, z);
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

/// Redis's `zrangeGenericCommand`: `first` is the index of the source key (ZRANGESTORE's is 2),
/// `rt`/`dir` are fixed by the legacy commands and `Auto` for ZRANGE/ZRANGESTORE.
fn zrange_generic(ctx: &mut Ctx, args: &[Bytes], first: usize, store: bool, mut rt: RangeType, mut dir: Direction) {
    // The arity guarantees the key and the two bounds.
    let [key, min, max, options @ ..] = &args[first..] else {
        return ctx.error(SYNTAX);
    };
    let (mut min, mut max) = (min, max);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut options = options.iter();
    while let Some(a) = options.next() {
        if !store && eq_ic(a, "withscores") {
            withscores = true;
        } else if eq_ic(a, "limit") && options.len() >= 2 {
            let (Some(o), Some(l)) = (options.next(), options.next()) else {
                return ctx.error(SYNTAX);
            };
            let Some(o) = arg_i64(ctx, o) else {
                return;
            };
            let Some(l) = arg_i64(ctx, l) else {
                return;
            };
            offset = o;
            limit = l;
        } else if dir == Direction::Auto && eq_ic(a, "rev") {
            dir = Direction::Reverse;
        } else if rt == RangeType::Auto && eq_ic(a, "bylex") {
            rt = RangeType::Lex;
        } else if rt == RangeType::Auto && eq_ic(a, "byscore") {
            rt = RangeType::Score;
        } else {
            return ctx.error(SYNTAX);
        }
    }
    let reverse = dir == Direction::Reverse;
    if rt == RangeType::Auto {
        rt = RangeType::Rank;
    }
    if limit != -1 && rt == RangeType::Rank {
        return ctx.error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
    }
    if withscores && rt == RangeType::Lex {
        return ctx.error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    if reverse && rt != RangeType::Rank {
        // The range is given as max, min.
        std::mem::swap(&mut min, &mut max);
    }
    let Some(spec) = parse_spec(ctx, rt, min, max) else {
        return;
    };
    let z = if store {
        let db = ctx.db();
        match ctx.st.ks.lookup(db, key, ctx.now_ms) {
            None => None,
            Some(Value::ZSet(z)) => Some(z.clone()),
            Some(_) => return ctx.error(WRONGTYPE),
        }
    } else {
        match read_zset(ctx, key) {
            Ok(z) => z,
            Err(()) => return,
        }
    };
    let items = z.as_ref().map(|z| select(z, &spec, reverse, offset, limit)).unwrap_or_default();
    if store {
        let mut out = ZSet::new(ctx.st.ks.hasher());
        for (s, m) in items {
            out.insert(m.clone(), s.0);
        }
        return store_result(ctx, &args[1], out);
    }
    reply_entries_len(ctx, items.len(), withscores);
    reply_entries(ctx, items.into_iter().map(|(s, m)| (&m[..], s.0)), withscores);
}

fn zrange(ctx: &mut Ctx, args: &[Bytes]) {
    zrange_generic(ctx, args, 1, false, RangeType::Auto, Direction::Auto)
}

fn zrevrange(ctx: &mut Ctx, args: &[Bytes]) {
    zrange_generic(ctx, args, 1, false, RangeType::Rank, Direction::Reverse)
}

fn zrangebyscore(ctx: &mut Ctx, args: &[Bytes]) {
    zrange_generic(ctx, args, 1, false, RangeType::Score, Direction::Forward)
}

fn zrevrangebyscore(ctx: &mut Ctx, args: &[Bytes]) {
    zrange_generic(ctx, args, 1, false, RangeType::Score, Direction::Reverse)
}

fn zrangebylex(ctx: &mut Ctx, args: &[Bytes]) {
    zrange_generic(ctx, args, 1, false, RangeType::Lex, Direction::Forward)
}

fn zrevrangebylex(ctx: &mut Ctx, args: &[Bytes]) {
    zrange_generic(ctx, args, 1, false, RangeType::Lex, Direction::Reverse)
}

fn zrangestore(ctx: &mut Ctx, args: &[Bytes]) {
    zrange_generic(ctx, args, 2, true, RangeType::Auto, Direction::Auto)
}

fn zremrange_generic(ctx: &mut Ctx, args: &[Bytes], rt: RangeType) {
    let Some(spec) = parse_spec(ctx, rt, &args[2], &args[3]) else {
        return;
    };
    let key = &args[1];
    let (removed, empty) = match write_zset(ctx, key) {
        Err(()) => return ctx.error(WRONGTYPE),
        Ok(None) => return ctx.int(0),
        Ok(Some(z)) => {
            let victims: Vec<Sds> = select(z, &spec, false, 0, -1).into_iter().map(|(_, m)| m.clone()).collect();
            for m in &victims {
                z.remove(m);
            }
            (victims.len(), z.is_empty())
        }
    };
    delete_if_empty(ctx, key, empty);
    ctx.dirty(removed as u64);
    ctx.int(removed as i64)
}

fn zremrangebyrank(ctx: &mut Ctx, args: &[Bytes]) {
    zremrange_generic(ctx, args, RangeType::Rank)
}

fn zremrangebyscore(ctx: &mut Ctx, args: &[Bytes]) {
    zremrange_generic(ctx, args, RangeType::Score)
}

fn zremrangebylex(ctx: &mut Ctx, args: &[Bytes]) {
    zremrange_generic(ctx, args, RangeType::Lex)
}

// ---------------------------------------------------------------------------------------------
// Pops, random members, scan.

fn zpop_generic(ctx: &mut Ctx, args: &[Bytes], max: bool) {
    if args.len() > 3 {
        return ctx.error(SYNTAX);
    }
    let count = if args.len() == 3 {
        let msg = "ERR value is out of range, must be positive";
        let Some(c) = range_arg_msg(ctx, &args[2], 0, i64::MAX, msg) else {
            return;
        };
        c as u64
    } else {
        1
    };
    let key = &args[1];
    let (popped, empty) = match write_zset(ctx, key) {
        Err(()) => return ctx.error(WRONGTYPE),
        Ok(None) => return Reply::array_len(ctx.out, 0),
        Ok(Some(_)) if count == 0 => return Reply::array_len(ctx.out, 0),
        Ok(Some(z)) => {
            let n = count.min(z.len() as u64) as usize;
            let mut popped = Vec::with_capacity(n);
            for _ in 0..n {
                let e = if max { z.ordered.last() } else { z.ordered.first() };
                let Some((s, m)) = e.cloned() else { break };
                z.remove(&m);
                popped.push((m, s.0));
            }
            (popped, z.is_empty())
        }
    };
    delete_if_empty(ctx, key, empty);
    ctx.dirty(popped.len() as u64);
    let entries = popped.iter().map(|(m, s)| (&m[..], *s));
    if args.len() == 3 {
        reply_entries_len(ctx, popped.len(), true);
        reply_entries(ctx, entries, true);
    } else {
        // Without a count Redis 7.0 replies with a flat [member, score] even in RESP3. At most
        // one entry was popped.
        #[allow(clippy::arithmetic_side_effects)]
        let len = popped.len() * 2;
        ctx.array_len(len);
        for (m, s) in entries {
            Reply::bulk(ctx.out, m);
            reply_score(ctx, s);
        }
    }
}

fn zpopmin(ctx: &mut Ctx, args: &[Bytes]) {
    zpop_generic(ctx, args, false)
}

fn zpopmax(ctx: &mut Ctx, args: &[Bytes]) {
    zpop_generic(ctx, args, true)
}

/// Pops from the first of `keys` holding a sorted set (Redis's `genericZpopCommand` with a key):
/// one entry as BZPOPMIN's flat `[key, member, score]`, or (`count`) up to that many as ZMPOP's
/// `[key, [[member, score]...]]`. Some(()) once it replied (or WRONGTYPE), None if all missing.
fn zpop_first(ctx: &mut Ctx, keys: &[Bytes], max: bool, count: Option<i64>) -> Option<()> {
    let serving = ctx.client.serving.clone();
    for key in keys {
        // Serving a blocked client: only the key that became ready (Redis 7.0's order).
        if serving.as_ref().is_some_and(|s| s.as_bytes() != &key[..]) {
            continue;
        }
        let (popped, empty) = match write_zset(ctx, key) {
            Err(()) => {
                ctx.error(WRONGTYPE);
                return Some(());
            }
            Ok(None) => continue,
            Ok(Some(z)) if z.is_empty() => continue,
            Ok(Some(z)) => {
                let n = (count.unwrap_or(1) as u64).min(z.len() as u64);
                let mut popped = Vec::new();
                for _ in 0..n {
                    let e = if max { z.ordered.last() } else { z.ordered.first() };
                    let Some((s, m)) = e.cloned() else { break };
                    z.remove(&m);
                    popped.push((m, s.0));
                }
                (popped, z.is_empty())
            }
        };
        delete_if_empty(ctx, key, empty);
        ctx.dirty(popped.len() as u64);
        ctx.signal_modified(key);
        let name = arg(if max { "ZPOPMAX" } else { "ZPOPMIN" });
        match count {
            None => {
                rewrite_as(ctx, vec![vec![name, key.clone()]]);
                ctx.array_len(popped.len().saturating_mul(2).saturating_add(1));
                ctx.bulk(key);
                for (m, s) in &popped {
                    Reply::bulk(ctx.out, m);
                    reply_score(ctx, *s);
                }
            }
            Some(_) => {
                rewrite_as(ctx, vec![vec![name, key.clone(), arg(popped.len().to_string())]]);
                ctx.array_len(2);
                ctx.bulk(key);
                ctx.array_len(popped.len());
                for (m, s) in &popped {
                    ctx.array_len(2);
                    Reply::bulk(ctx.out, m);
                    reply_score(ctx, *s);
                }
            }
        }
        return Some(());
    }
    None
}

/// BZPOPMIN/BZPOPMAX key [key ...] timeout.
fn bzpop_generic(ctx: &mut Ctx, args: &[Bytes], max: bool) {
    let Some((keys, deadline)) = crate::blocking::keys_and_deadline(ctx, args) else {
        return;
    };
    if zpop_first(ctx, keys, max, None).is_none() {
        crate::blocking::block_or_nil(ctx, args, keys, deadline, "zset", true);
    }
}

fn bzpopmin(ctx: &mut Ctx, args: &[Bytes]) {
    bzpop_generic(ctx, args, false)
}

fn bzpopmax(ctx: &mut Ctx, args: &[Bytes]) {
    bzpop_generic(ctx, args, true)
}

/// MIN|MAX as ZMPOP reads it: true for MAX.
fn parse_min_max(arg: &[u8]) -> Option<bool> {
    if eq_ic(arg, "min") {
        Some(false)
    } else if eq_ic(arg, "max") {
        Some(true)
    } else {
        None
    }
}

fn zmpop(ctx: &mut Ctx, args: &[Bytes]) {
    let Some((keys, max, count)) = crate::blocking::parse_mpop(ctx, args, 1, parse_min_max) else {
        return;
    };
    if zpop_first(ctx, keys, max, Some(count)).is_none() {
        ctx.null_array();
    }
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count].
fn bzmpop(ctx: &mut Ctx, args: &[Bytes]) {
    let Some((keys, max, count)) = crate::blocking::parse_mpop(ctx, args, 2, parse_min_max) else {
        return;
    };
    let Some(deadline) = crate::blocking::parse_timeout(ctx, &args[1]) else {
        return;
    };
    if zpop_first(ctx, keys, max, Some(count)).is_none() {
        crate::blocking::block_or_nil(ctx, args, keys, deadline, "zset", true);
    }
}

fn zrandmember(ctx: &mut Ctx, args: &[Bytes]) {
    let env = ctx.env;
    let rng = &env.rng;
    if args.len() < 3 {
        let Ok(z) = read_zset(ctx, &args[1]) else {
            return;
        };
        return match z.as_ref().and_then(|z| z.ordered.iter().nth(pick(rng, z.len()))) {
            Some((_, m)) => Reply::bulk(ctx.out, m),
            None => ctx.null(),
        };
    }
    let Some(count) = range_arg(ctx, &args[2], -i64::MAX, i64::MAX) else {
        return;
    };
    if args.len() > 4 || (args.len() == 4 && !eq_ic(&args[3], "withscores")) {
        return ctx.error(SYNTAX);
    }
    let withscores = args.len() == 4;
    if withscores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return ctx.error("ERR value is out of range");
    }
    let Ok(z) = read_zset(ctx, &args[1]) else {
        return;
    };
    let Some(z) = z else {
        return Reply::array_len(ctx.out, 0);
    };
    // An empty collection is never stored; were one found, answer as for a missing key.
    if count == 0 || z.is_empty() {
        return Reply::array_len(ctx.out, 0);
    }
    let mut all: Vec<&Entry> = z.ordered.iter().collect();
    fn as_item<'a>(e: &&'a Entry) -> (&'a [u8], f64) {
        (&e.1[..], e.0 .0)
    }
    if count < 0 || count == 1 {
        let n = count.unsigned_abs();
        if n > RANDOM_REPLY_MAX {
            return ctx.error("ERR value is out of range");
        }
        reply_entries_len(ctx, n as usize, withscores);
        for _ in 0..n {
            let e = all[pick(rng, all.len())];
            reply_entries(ctx, std::iter::once(as_item(&e)), withscores);
        }
        return;
    }
    if count as u64 >= all.len() as u64 {
        reply_entries_len(ctx, all.len(), withscores);
        return reply_entries(ctx, all.iter().map(as_item), withscores);
    }
    sample_distinct(rng, &mut all, count as usize);
    reply_entries_len(ctx, all.len(), withscores);
    reply_entries(ctx, all.iter().map(as_item), withscores)
}

fn zscan(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(cursor) = scan_cursor(ctx, &args[2]) else {
        return;
    };
    let Ok(z) = read_zset(ctx, &args[1]) else {
        return;
    };
    let Some(z) = z else {
        return reply_empty_scan(ctx.out);
    };
    let Some(opts) = scan_opts(ctx, &args[3..]) else {
        return;
    };
    let compact = z.len() <= LISTPACK_MAX_ENTRIES && z.scores.keys().all(|m| m.len() <= LISTPACK_MAX_VALUE);
    let (page, next): (Vec<(&Sds, f64)>, u64) = if compact {
        (z.ordered.iter().map(|(s, m)| (m, s.0)).collect(), 0)
    } else {
        let hasher = ctx.st.ks.hasher();
        scan_page(&hasher, z.scores.iter().map(|(m, &s)| (m, s)), cursor, opts.count)
    };
    let flat: Vec<Vec<u8>> = page
        .into_iter()
        .filter(|(m, _)| opts.matches(m))
        .flat_map(|(m, s)| [m.to_vec(), format_score(s).into_bytes()])
        .collect();
    reply_scan(ctx.out, next, flat.iter());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_format_like_printf_g17() {
        let cases = [
            (0.1, "0.10000000000000001"),
            (1.5, "1.5"),
            (3.0, "3"),
            (-2.0, "-2"),
            (1e20, "1e+20"),
            (1e-5, "1.0000000000000001e-05"),
            (123456789.123, "123456789.123"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (0.0001, "0.0001"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (-0.0, "0"),
            (0.30000000000000004, "0.30000000000000004"),
        ];
        for (v, want) in cases {
            assert_eq!(format_score(v), want, "{v}");
        }
    }

    #[test]
    fn score_parsing_matches_strtod_checks() {
        assert_eq!(parse_score(b"1e400"), None);
        assert_eq!(parse_score(b"1e-400"), None);
        assert_eq!(parse_score(b"0e5"), Some(0.0));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"nan"), None);
        assert_eq!(parse_strtod(b""), Some(0.0));
        assert_eq!(parse_strtod(b"5\0x"), Some(5.0));
        assert_eq!(parse_strtod(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"0x1p3"), Some(8.0));
        assert_eq!(parse_score(b"-0x.8"), Some(-0.5));
        assert_eq!(parse_score(b"0x0p5"), Some(0.0));
        assert_eq!(parse_score(b"0x1p-5000"), None);
        assert_eq!(parse_score(b"0x1p5000"), None);
        assert_eq!(parse_score(b"0x"), None);
        assert_eq!(parse_score(b"0x1.fffffffffffff8p0"), Some(2.0));
        assert_eq!(parse_strtod(b" 5"), Some(5.0));
        assert_eq!(parse_strtod(b"  "), None);
        assert_eq!(parse_strtod(b"1e400"), Some(f64::INFINITY));
    }

    #[test]
    fn empty_and_inverted_ranges_do_not_panic() {
        let mut z = ZSet::new(crate::db::Hasher::with_seeds(1, 2, 3, 4));
        for (i, m) in ["a", "b", "c"].iter().enumerate() {
            z.insert(Sds::from(*m), i as f64);
        }
        for (min, max) in [("(1", "(1"), ("2", "1"), ("(1", "1"), ("+inf", "-inf"), ("(inf", "inf"), ("-inf", "(-inf")]
        {
            let r = ScoreRange::parse(min.as_bytes(), max.as_bytes()).unwrap();
            assert_eq!(score_iter(&z, &r).count(), 0, "{min} {max}");
        }
        let r = ScoreRange::parse(b"(0", b"2").unwrap();
        assert_eq!(score_iter(&z, &r).count(), 2);
        let mut same = ZSet::new(crate::db::Hasher::with_seeds(1, 2, 3, 4));
        for m in ["a", "b", "c"] {
            same.insert(Sds::from(m), 0.0);
        }
        for (min, max, n) in
            [("(b", "(b", 0), ("[b", "[b", 1), ("[c", "[a", 0), ("-", "+", 3), ("+", "-", 0), ("(a", "+", 2)]
        {
            let r = LexRange::parse(min.as_bytes(), max.as_bytes()).unwrap();
            assert_eq!(lex_iter(&same, &r, false).count(), n, "{min} {max}");
            assert_eq!(lex_iter(&same, &r, true).count(), n, "{min} {max}");
        }
    }
}
