//! Sorted-set algebra: ZUNION, ZINTER, ZDIFF, their STORE forms, and ZINTERCARD, as Redis 7.0's
//! `zunionInterDiffGenericCommand`.
//!
//! Why it is a file of its own: the seven commands share one argument grammar (numkeys, keys,
//! WEIGHTS, AGGREGATE, WITHSCORES, LIMIT) and one evaluation, and none of them touches the
//! sorted-set internals beyond reading members and scores; `zsets.rs` is the type itself.
//!
//! Redis's details kept here: plain sets are inputs too (every member scores 1); the inputs are
//! ordered by size before union and intersection (so a sum adds in Redis's order); a weighted
//! score that is NaN (`inf * 0`) becomes 0, and so does a sum of `inf` and `-inf`; a store of
//! an empty result deletes the destination. The result is bounded by the inputs' sizes.

use std::sync::Arc;

use bytes::Bytes;

use super::zsets::{parse_score, reply_entries, reply_entries_len, store_result};
use super::*;
use crate::db::ZSet;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "zunionstore",
        arity: -4,
        flags: WRITE | DENYOOM | SIGNALS_OWN_KEYS,
        keys: (1, 1, 1),
        handler: zunionstore,
    },
    CommandSpec {
        name: "zinterstore",
        arity: -4,
        flags: WRITE | DENYOOM | SIGNALS_OWN_KEYS,
        keys: (1, 1, 1),
        handler: zinterstore,
    },
    CommandSpec {
        name: "zdiffstore",
        arity: -4,
        flags: WRITE | DENYOOM | SIGNALS_OWN_KEYS,
        keys: (1, 1, 1),
        handler: zdiffstore,
    },
    CommandSpec { name: "zunion", arity: -3, flags: READONLY, keys: (0, 0, 0), handler: zunion },
    CommandSpec { name: "zinter", arity: -3, flags: READONLY, keys: (0, 0, 0), handler: zinter },
    CommandSpec { name: "zdiff", arity: -3, flags: READONLY, keys: (0, 0, 0), handler: zdiff },
    CommandSpec { name: "zintercard", arity: -3, flags: READONLY, keys: (0, 0, 0), handler: zintercard },
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Redis's `zunionInterAggregate`.
    fn apply(self, target: f64, v: f64) -> f64 {
        match self {
            Aggregate::Sum => {
                let sum = target + v;
                if sum.is_nan() {
                    0.0
                } else {
                    sum
                }
            }
            Aggregate::Min => {
                if v < target {
                    v
                } else {
                    target
                }
            }
            Aggregate::Max => {
                if v > target {
                    v
                } else {
                    target
                }
            }
        }
    }
}

/// One input: its members and scores (a set's score 1), and its weight.
struct Source {
    entries: Option<Input>,
    weight: f64,
}

enum Input {
    ZSet(Arc<ZSet>),
    Set(Arc<crate::db::value::HashSetS<Sds>>),
}

impl Source {
    fn len(&self) -> usize {
        match &self.entries {
            None => 0,
            Some(Input::ZSet(z)) => z.len(),
            Some(Input::Set(s)) => s.len(),
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.entries {
            None => None,
            Some(Input::ZSet(z)) => z.scores.get(member).copied(),
            Some(Input::Set(s)) => s.contains(member).then_some(1.0),
        }
    }

    /// Members with their unweighted scores, in the input's order.
    fn members(&self) -> Box<dyn Iterator<Item = (&Sds, f64)> + '_> {
        match &self.entries {
            None => Box::new(std::iter::empty()),
            Some(Input::ZSet(z)) => Box::new(z.ordered.iter().map(|(s, m)| (m, s.0))),
            Some(Input::Set(s)) => Box::new(s.iter().map(|m| (m, 1.0))),
        }
    }
}

/// A weighted score, 0 where the product is NaN (`inf * 0`), as Redis initialises it.
fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// The parsed command.
struct Request {
    sources: Vec<Source>,
    aggregate: Aggregate,
    withscores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    limit: u64,
}

/// Redis's argument checks in its order: numkeys, the key count, each key's type, then the
/// options. `store` forbids WITHSCORES; `card` is ZINTERCARD's grammar (LIMIT only).
fn parse(ctx: &mut Ctx, args: &[Bytes], numkeys_at: usize, op: Op, store: bool, card: bool) -> Option<Request> {
    let name = args[0].to_ascii_lowercase();
    let setnum = arg_i64(ctx, &args[numkeys_at])?;
    if setnum < 1 {
        let name = String::from_utf8_lossy(&name).into_owned();
        ctx.error(&format!("ERR at least 1 input key is needed for '{name}' command"));
        return None;
    }
    let rest = &args[numkeys_at.saturating_add(1)..];
    if setnum as u64 > rest.len() as u64 {
        ctx.error(SYNTAX);
        return None;
    }
    let (keys, mut options) = rest.split_at(setnum as usize);
    let mut sources = Vec::with_capacity(keys.len());
    for k in keys {
        let entries = match ctx.read(k) {
            None => None,
            Some(Value::ZSet(z)) => Some(Input::ZSet(z.clone())),
            Some(Value::Set(s)) => Some(Input::Set(s.clone())),
            Some(_) => {
                ctx.error(WRONGTYPE);
                return None;
            }
        };
        sources.push(Source { entries, weight: 1.0 });
    }
    let mut req = Request { sources, aggregate: Aggregate::Sum, withscores: false, limit: 0 };
    while let Some((opt, tail)) = options.split_first() {
        let algebra = op != Op::Diff && !card;
        if algebra && tail.len() >= req.sources.len() && eq_ic(opt, "weights") {
            for (src, w) in req.sources.iter_mut().zip(tail) {
                let Some(w) = parse_score(w) else {
                    ctx.error("ERR weight value is not a float");
                    return None;
                };
                src.weight = w;
            }
            options = &tail[req.sources.len()..];
        } else if algebra && !tail.is_empty() && eq_ic(opt, "aggregate") {
            req.aggregate = match &tail[0] {
                a if eq_ic(a, "sum") => Aggregate::Sum,
                a if eq_ic(a, "min") => Aggregate::Min,
                a if eq_ic(a, "max") => Aggregate::Max,
                _ => {
                    ctx.error(SYNTAX);
                    return None;
                }
            };
            options = &tail[1..];
        } else if !store && !card && eq_ic(opt, "withscores") {
            req.withscores = true;
            options = tail;
        } else if card && !tail.is_empty() && eq_ic(opt, "limit") {
            let limit = match parse_i64_strict(&tail[0]) {
                Some(l) if l >= 0 => l as u64,
                _ => {
                    ctx.error("ERR LIMIT can't be negative");
                    return None;
                }
            };
            req.limit = limit;
            options = &tail[1..];
        } else {
            ctx.error(SYNTAX);
            return None;
        }
    }
    Some(req)
}

/// Evaluates the operation into a new sorted set (ZINTERCARD counts instead: `card`).
fn evaluate(ctx: &Ctx, mut req: Request, op: Op) -> (ZSet, u64) {
    let mut out = ZSet::new(ctx.st.ks.hasher());
    if op != Op::Diff {
        // Smallest first, as Redis's qsort by cardinality (stable here).
        req.sources.sort_by_key(|s| s.len());
    }
    let agg = req.aggregate;
    match op {
        Op::Inter => {
            let Some((first, others)) = req.sources.split_first() else { return (out, 0) };
            let mut count = 0u64;
            for (m, s) in first.members() {
                let mut score = weighted(s, first.weight);
                let in_all = others.iter().all(|o| match o.score(m) {
                    Some(v) => {
                        score = agg.apply(score, v * o.weight);
                        true
                    }
                    None => false,
                });
                if !in_all {
                    continue;
                }
                count = count.saturating_add(1);
                if req.limit > 0 && count >= req.limit {
                    break;
                }
                out.insert(m.clone(), score);
            }
            (out, count)
        }
        Op::Union => {
            for src in &req.sources {
                for (m, s) in src.members() {
                    let v = weighted(s, src.weight);
                    let merged = match out.scores.get(m) {
                        Some(&prev) => agg.apply(prev, v),
                        None => v,
                    };
                    out.insert(m.clone(), merged);
                }
            }
            let n = out.len() as u64;
            (out, n)
        }
        Op::Diff => {
            let Some((first, others)) = req.sources.split_first() else { return (out, 0) };
            for (m, s) in first.members() {
                if others.iter().all(|o| o.score(m).is_none()) {
                    out.insert(m.clone(), s);
                }
            }
            let n = out.len() as u64;
            (out, n)
        }
    }
}

fn generic(ctx: &mut Ctx, args: &[Bytes], op: Op, store: bool) {
    let numkeys_at = if store { 2 } else { 1 };
    let Some(req) = parse(ctx, args, numkeys_at, op, store, false) else {
        return;
    };
    let withscores = req.withscores;
    let (result, _) = evaluate(ctx, req, op);
    if store {
        return store_result(ctx, &args[1], result);
    }
    reply_entries_len(ctx, result.len(), withscores);
    let entries: Vec<(&[u8], f64)> = result.ordered.iter().map(|(s, m)| (&m[..], s.0)).collect();
    reply_entries(ctx, entries.into_iter(), withscores);
}

fn zunionstore(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, Op::Union, true)
}

fn zinterstore(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, Op::Inter, true)
}

fn zdiffstore(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, Op::Diff, true)
}

fn zunion(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, Op::Union, false)
}

fn zinter(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, Op::Inter, false)
}

fn zdiff(ctx: &mut Ctx, args: &[Bytes]) {
    generic(ctx, args, Op::Diff, false)
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]: the intersection's size, counting stopped at
/// the limit.
fn zintercard(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(req) = parse(ctx, args, 1, Op::Inter, false, true) else {
        return;
    };
    let (_, count) = evaluate(ctx, req, Op::Inter);
    ctx.int(count as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_follow_redis_for_infinities_and_nan() {
        assert_eq!(Aggregate::Sum.apply(f64::INFINITY, f64::NEG_INFINITY), 0.0);
        assert_eq!(Aggregate::Min.apply(1.0, f64::NAN), 1.0);
        assert_eq!(Aggregate::Max.apply(1.0, 2.0), 2.0);
        assert_eq!(weighted(f64::INFINITY, 0.0), 0.0);
        assert_eq!(weighted(2.0, -1.5), -3.0);
    }
}
