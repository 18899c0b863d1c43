//! Linearizability of a single-node history of registers and counters.
//!
//! # The property
//!
//! A history is linearizable when there is one total order of (a subset of) its operations
//! such that:
//!
//! 1. every operation with [`Outcome::Ok`] is in the order, every one with [`Outcome::Fail`] is
//!    not, and each one with [`Outcome::Unknown`] may be in it or not;
//! 2. the order respects real time: if operation A completed before operation B was invoked
//!    (`A.complete_ns < B.invoke_ns`), A comes before B. An operation without a completion time
//!    (`Unknown`) completes at +infinity, so it only has to come after the operations that
//!    completed before its invocation;
//! 3. running the order on the sequential model, from the initial state, gives every `Ok`
//!    operation exactly the result it recorded (`Unknown` operations accept any result).
//!
//! The sequential model is that of Redis strings holding integers, one per key. Every key
//! starts absent (GET replies nil) unless the initial state says otherwise;
//! `SET key v` stores v and replies OK; `INCRBY key by` treats an absent key as 0, stores and
//! replies the sum (or, on i64 overflow, replies an error and changes nothing); `DEL key`
//! replies 1 and makes the key absent if it existed, else replies 0; `GET key` replies the
//! value or nil.
//!
//! # Where it comes from
//!
//! A single Redis server executes commands one at a time on one thread, each command
//! atomically, in the order the event loop reads them; a reply is written after its command
//! ran. So every command takes effect at one instant between the client sending it and
//! receiving the reply, and the instants form one sequence: a single Redis node is
//! linearizable for single-key commands. (Replication and failover weaken this; they get their
//! own invariants.)
//!
//! # Per-key decomposition
//!
//! Linearizability is *local* (Herlihy & Wing, 1990): a history of several objects is
//! linearizable if and only if the sub-history of each object is. Every command here reads or
//! writes exactly one key, and keys are independent objects of the model, so each key is checked
//! on its own. This is sound and complete, and turns one search exponential in all concurrent
//! operations into one per key, exponential only in that key's concurrency.
//!
//! # The search
//!
//! Wing & Gong's algorithm with Lowe's memoization, as in the `porcupine` Go checker and in
//! Knossos. Each operation gives a call entry (at `invoke_ns`) and a return entry (at
//! `complete_ns`, +infinity when unknown), all in one list sorted by time, calls before returns
//! at equal times (so that operations touching at one instant count as concurrent, the
//! permissive choice). Walking the list from its head, the search tries to linearize each call
//! it meets (apply it to the model; keep it if the model gives the recorded result), removing
//! the call and its return from the list and restarting from the head. Meeting a return entry
//! means that operation had to take effect by now and did not: backtrack by undoing the last
//! linearized call and trying the next entry after it. A cache of (set of linearized operations,
//! model state) pairs prunes states already explored, since the rest of the search from there
//! depends on nothing else. Meeting the return entry of an `Unknown` operation means every
//! operation with a reply is already linearized, so the remaining unknown ones can go last (or
//! never take effect, which no one can tell apart): the history is linearizable.
//!
//! The search is bounded: at most [`SEARCH_STEPS_MAX`] steps per check, at most
//! [`OPS_PER_KEY_MAX`] operations per key and at most [`CACHE_BYTES_MAX`] bytes of cache.
//! Exceeding a bound is reported as `linearizable/search-limit`, which means "not decided",
//! never as a pass.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::history::{History, Op, OpKind, Outcome, Ret};
use crate::Violation;

pub const INVARIANT: &str = "linearizable";
/// The search exceeded one of its limits: the history is neither proven nor refuted.
pub const INVARIANT_SEARCH_LIMIT: &str = "linearizable/search-limit";

/// At most this many search steps (entries visited) for one whole check, over all keys. Four
/// million steps take about a second in a debug build; histories that well-behaved servers
/// produce need a few steps per operation.
pub const SEARCH_STEPS_MAX: u64 = 1 << 22;

/// At most this many operations (failed ones excluded) on one key. The search is exponential in
/// a key's concurrency, and its cache entries grow with a key's operations; a workload that
/// wants longer histories should spread them over more keys.
pub const OPS_PER_KEY_MAX: usize = 4096;

/// At most this many bytes of memoization cache while checking one key.
pub const CACHE_BYTES_MAX: usize = 256 << 20;

/// At most this many operations in each list of a violation's witness, so that a report stays
/// readable; the lists are cut around the operation that could not be linearized.
const WITNESS_OPS_MAX: usize = 64;

/// What a passing check looked at, so that callers can tell a vacuous pass from a real one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckStats {
    pub keys_checked: u64,
    /// Operations that entered the search (failed operations and unknown GETs, which constrain
    /// nothing, excluded).
    pub ops_checked: u64,
    pub search_steps: u64,
}

/// Checks that `history` is linearizable with every key starting absent.
pub fn check(history: &History) -> Result<CheckStats, Violation> {
    check_from(history, &BTreeMap::new())
}

/// Checks that `history` is linearizable with each key starting at its value in `initial`
/// (absent when not there), such as a dataset restored from an RDB file at start-up.
pub fn check_from(history: &History, initial: &BTreeMap<String, i64>) -> Result<CheckStats, Violation> {
    check_with_budget(history, initial, SEARCH_STEPS_MAX)
}

/// [`check_from`] with at most `search_steps_max` search steps, so that callers (and tests) can
/// share or shrink the budget.
pub(crate) fn check_with_budget(
    history: &History,
    initial: &BTreeMap<String, i64>,
    search_steps_max: u64,
) -> Result<CheckStats, Violation> {
    history.validate()?;
    let mut stats = CheckStats::default();
    for (key, ops) in history.ops_by_key() {
        let key_ops: Vec<KeyOp> = ops.iter().filter_map(|op| KeyOp::from_op(op)).collect();
        if key_ops.len() > OPS_PER_KEY_MAX {
            return Err(Violation {
                invariant: INVARIANT_SEARCH_LIMIT,
                message: format!(
                    "key {key:?} has {} ops to check, more than OPS_PER_KEY_MAX = \
                     {OPS_PER_KEY_MAX}; not decided",
                    key_ops.len()
                ),
                at_ns: None,
            });
        }
        assert!(stats.search_steps <= search_steps_max);
        let initial_state = initial.get(key).copied();
        let search = search(&key_ops, initial_state, search_steps_max - stats.search_steps);
        stats.search_steps += search.steps;
        assert!(stats.search_steps <= search_steps_max);
        match search.verdict {
            Verdict::Linearizable => {}
            Verdict::NotLinearizable(witness) => {
                return Err(report(key, &ops, &key_ops, initial_state, &witness));
            }
            Verdict::GaveUp(reason) => {
                let limit = match reason {
                    GaveUp::Steps => {
                        format!("SEARCH_STEPS_MAX = {search_steps_max} search steps")
                    }
                    GaveUp::CacheBytes => format!("CACHE_BYTES_MAX = {CACHE_BYTES_MAX} bytes"),
                };
                return Err(Violation {
                    invariant: INVARIANT_SEARCH_LIMIT,
                    message: format!(
                        "key {key:?} ({} ops to check): search exceeded {limit} after {} keys \
                         passed; not decided",
                        key_ops.len(),
                        stats.keys_checked
                    ),
                    at_ns: None,
                });
            }
        }
        stats.keys_checked += 1;
        stats.ops_checked += key_ops.len() as u64;
    }
    Ok(stats)
}

/// An instant on the history's clock; `Never` is the +infinity at which unknown ops return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Instant {
    At(u128),
    Never,
}

/// The model state of one key: its value, or `None` when absent.
type State = Option<i64>;

/// An op of one key, ready for the search.
#[derive(Clone, Copy, Debug)]
struct KeyOp<'a> {
    op: &'a Op,
    invoke: Instant,
    complete: Instant,
    /// `None` when the result is unknown.
    expected: Option<Ret>,
}

impl<'a> KeyOp<'a> {
    /// `None` for ops the search can ignore: failed ops (they took no effect) and unknown GETs
    /// (no effect, no result to explain).
    fn from_op(op: &'a Op) -> Option<KeyOp<'a>> {
        let expected = match op.outcome {
            Outcome::Fail => return None,
            Outcome::Unknown if matches!(op.kind, OpKind::Get { .. }) => return None,
            Outcome::Unknown => None,
            Outcome::Ok(ret) => Some(ret),
        };
        let complete = match op.complete_ns {
            Some(complete_ns) => Instant::At(complete_ns),
            None => Instant::Never,
        };
        assert_eq!(expected.is_none(), complete == Instant::Never);
        Some(KeyOp { op, invoke: Instant::At(op.invoke_ns), complete, expected })
    }
}

/// The sequential model: the state after `kind` runs on `state`, and its reply; `None` when the
/// command replies with an error and changes nothing (INCRBY overflowing i64).
fn model_apply(state: State, kind: &OpKind) -> Option<(State, Ret)> {
    match kind {
        OpKind::Get { .. } => Some((state, Ret::Value(state))),
        OpKind::Set { value, .. } => Some((Some(*value), Ret::Done)),
        OpKind::Incr { by, .. } => {
            let new = state.unwrap_or(0).checked_add(*by)?;
            Some((Some(new), Ret::Int(new)))
        }
        OpKind::Del { .. } => Some((None, Ret::Int(i64::from(state.is_some())))),
        // A CAS whose expectation is stale cannot have succeeded (WATCH would have aborted it).
        OpKind::Cas { expect, new, .. } => (state == *expect).then_some((Some(*new), Ret::Done)),
    }
}

/// One step of the search: the state after linearizing `op` in `state`, or `None` when the
/// model's result contradicts the recorded one.
fn model_step(state: State, op: &KeyOp) -> Option<State> {
    match (model_apply(state, &op.op.kind), op.expected) {
        (Some((state_new, _)), None) => Some(state_new),
        (Some((state_new, ret)), Some(expected)) => (ret == expected).then_some(state_new),
        // An unknown op that the server would refuse takes no effect; a recorded success of
        // an op the server must refuse cannot be explained.
        (None, None) => Some(state),
        (None, Some(_)) => None,
    }
}

enum Verdict {
    Linearizable,
    NotLinearizable(Witness),
    GaveUp(GaveUp),
}

enum GaveUp {
    Steps,
    CacheBytes,
}

/// The deepest point the search reached before being stuck.
struct Witness {
    /// Indices into the key's ops, in linearization order, each with the state after it.
    prefix: Vec<(usize, State)>,
    /// The op whose return entry the search met without having linearized it.
    blocked: usize,
}

struct Search {
    steps: u64,
    verdict: Verdict,
}

const NIL: usize = usize::MAX;

/// The linked list of call and return entries, with node 0 a head sentinel. Removing and
/// reinserting an op's two entries in stack order (dancing links) makes backtracking O(1).
struct Entries {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each node: the index of its op in the key's ops.
    op: Vec<usize>,
    is_call: Vec<bool>,
    /// For each op: its return node.
    return_node: Vec<usize>,
}

impl Entries {
    fn new(ops: &[KeyOp]) -> Entries {
        // Sorted by time; calls (0) before returns (1) at equal times; then by op index, which
        // is invocation order, so that the order is deterministic.
        let mut sorted: Vec<(Instant, u8, usize)> = Vec::with_capacity(ops.len() * 2);
        for (index, op) in ops.iter().enumerate() {
            assert!(op.invoke <= op.complete);
            sorted.push((op.invoke, 0, index));
            sorted.push((op.complete, 1, index));
        }
        sorted.sort_unstable();
        let nodes = sorted.len() + 1;
        let mut entries = Entries {
            next: (1..=nodes).map(|n| if n < nodes { n } else { NIL }).collect(),
            prev: (0..nodes).map(|n| n.wrapping_sub(1)).collect(),
            op: Vec::with_capacity(nodes),
            is_call: Vec::with_capacity(nodes),
            return_node: vec![NIL; ops.len()],
        };
        assert_eq!(entries.prev[0], NIL);
        entries.op.push(NIL);
        entries.is_call.push(false);
        for (position, (_, kind, index)) in sorted.into_iter().enumerate() {
            entries.op.push(index);
            entries.is_call.push(kind == 0);
            if kind == 1 {
                entries.return_node[index] = position + 1;
            }
        }
        assert!(entries.return_node.iter().all(|&node| node != NIL));
        entries
    }

    fn is_empty(&self) -> bool {
        self.next[0] == NIL
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        if next != NIL {
            self.prev[next] = node;
        }
    }

    /// Removes a call and its return.
    fn lift(&mut self, call: usize) {
        assert!(self.is_call[call]);
        self.unlink(call);
        self.unlink(self.return_node[self.op[call]]);
    }

    /// Undoes [`Entries::lift`]; must be called in reverse order of the lifts.
    fn unlift(&mut self, call: usize) {
        assert!(self.is_call[call]);
        self.relink(self.return_node[self.op[call]]);
        self.relink(call);
    }
}

/// The set of linearized ops, with an incrementally maintained hash for the cache.
struct Linearized {
    words: Vec<u64>,
    hash: u64,
}

impl Linearized {
    fn new(ops_count: usize) -> Linearized {
        Linearized { words: vec![0; ops_count.div_ceil(64)], hash: 0 }
    }

    fn contains(&self, index: usize) -> bool {
        self.words[index / 64] & (1 << (index % 64)) != 0
    }

    /// Adds or removes `index`.
    fn toggle(&mut self, index: usize) {
        self.words[index / 64] ^= 1 << (index % 64);
        // Zobrist hashing: XOR-ing a fixed pseudo-random word per member keeps the hash a
        // function of the set alone, whatever the order of insertions and removals.
        self.hash ^= mix(index as u64 + 1);
    }
}

/// splitmix64's finalizer: a fixed, well-spread hash of a word.
fn mix(word: u64) -> u64 {
    let mut z = word.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn state_hash(state: State) -> u64 {
    match state {
        None => mix(u64::MAX),
        Some(value) => mix(value as u64 ^ 0x5555_5555_5555_5555),
    }
}

struct CacheEntry {
    linearized: Box<[u64]>,
    state: State,
}

/// Memoized (linearized set, state) pairs, bucketed by hash; collisions are resolved by
/// comparing the sets, so a collision costs time but never a wrong verdict.
struct Cache {
    buckets: HashMap<u64, Vec<CacheEntry>>,
    bytes: usize,
}

impl Cache {
    /// Inserts the pair; false if it was already there.
    fn insert(&mut self, linearized: &Linearized, state: State) -> bool {
        let bucket = self.buckets.entry(mix(linearized.hash ^ state_hash(state))).or_default();
        let seen = bucket.iter().any(|entry| entry.state == state && *entry.linearized == *linearized.words);
        if seen {
            return false;
        }
        bucket.push(CacheEntry { linearized: linearized.words.clone().into_boxed_slice(), state });
        // The words, the state, and an estimate of the map's own overhead per entry.
        self.bytes += linearized.words.len() * 8 + 64;
        true
    }
}

fn search(ops: &[KeyOp], initial_state: State, steps_max: u64) -> Search {
    let mut entries = Entries::new(ops);
    let mut linearized = Linearized::new(ops.len());
    let mut cache = Cache { buckets: HashMap::new(), bytes: 0 };
    let mut state = initial_state;
    // The linearized calls, in order, each with the state before it (to backtrack to).
    let mut calls: Vec<(usize, State)> = Vec::with_capacity(ops.len());
    let mut witness: Option<Witness> = None;
    let mut steps: u64 = 0;
    let mut node = entries.next[0];
    let verdict = loop {
        if node == NIL {
            // Every call is followed by its return in the list, so the walk can only run off
            // its end when the list is empty.
            assert!(entries.is_empty());
            assert_eq!(calls.len(), ops.len());
            break Verdict::Linearizable;
        }
        if steps == steps_max {
            break Verdict::GaveUp(GaveUp::Steps);
        }
        steps += 1;
        let index = entries.op[node];
        if entries.is_call[node] {
            assert!(!linearized.contains(index));
            let Some(state_new) = model_step(state, &ops[index]) else {
                node = entries.next[node];
                continue;
            };
            linearized.toggle(index);
            if cache.insert(&linearized, state_new) {
                if cache.bytes > CACHE_BYTES_MAX {
                    break Verdict::GaveUp(GaveUp::CacheBytes);
                }
                calls.push((node, state));
                state = state_new;
                entries.lift(node);
                node = entries.next[0];
            } else {
                // Explored already from this very (set, state): nothing new down there.
                linearized.toggle(index);
                node = entries.next[node];
            }
        } else {
            assert!(!linearized.contains(index));
            if ops[index].complete == Instant::Never {
                // All return entries before this one were passed, and only unknown ops return
                // at +infinity: every op with a reply is linearized. The remaining unknown ops
                // can take effect after all of them (with any result), or never.
                assert!(ops[index].expected.is_none());
                assert!((0..ops.len()).all(|other| ops[other].expected.is_none() || linearized.contains(other)));
                break Verdict::Linearizable;
            }
            // The op returning here had to take effect by now and did not.
            if witness.as_ref().is_none_or(|witness| calls.len() > witness.prefix.len()) {
                witness = Some(witness_of(&calls, &entries, state, index));
            }
            let Some((call, state_before)) = calls.pop() else {
                break Verdict::NotLinearizable(witness.expect("recorded just above"));
            };
            state = state_before;
            linearized.toggle(entries.op[call]);
            entries.unlift(call);
            node = entries.next[call];
        }
    };
    assert!(steps <= steps_max);
    Search { steps, verdict }
}

fn witness_of(calls: &[(usize, State)], entries: &Entries, state: State, blocked: usize) -> Witness {
    let prefix = calls
        .iter()
        .enumerate()
        .map(|(position, &(call, _))| {
            // The state after a call is the state before the next one, or the current state.
            let state_after = calls.get(position + 1).map_or(state, |&(_, before)| before);
            (entries.op[call], state_after)
        })
        .collect();
    Witness { prefix, blocked }
}

fn render_initial(state: State) -> String {
    match state {
        Some(value) => format!("at \"{value}\""),
        None => "absent".to_string(),
    }
}

fn render_state(state: State) -> String {
    match state {
        Some(value) => format!("\"{value}\""),
        None => "(absent)".to_string(),
    }
}

fn report(key: &str, all_ops: &[&Op], key_ops: &[KeyOp], initial_state: State, witness: &Witness) -> Violation {
    let blocked = key_ops[witness.blocked].op;
    let at_ns = blocked.complete_ns;
    assert!(at_ns.is_some(), "unknown ops never block");
    let mut message = String::new();
    let left_out = all_ops.len() - key_ops.len();
    let _ = write!(message, "key {key:?}: no linearization of its {} ops exists", key_ops.len());
    if left_out > 0 {
        let _ = write!(message, " ({left_out} failed ops or unknown GETs left out)");
    }
    let _ = writeln!(message, ", the key starting {}.", render_initial(initial_state));
    let _ = writeln!(
        message,
        "longest linearizable prefix found ({} ops, each with the value after it):",
        witness.prefix.len()
    );
    let skipped = witness.prefix.len().saturating_sub(WITNESS_OPS_MAX);
    if skipped > 0 {
        let _ = writeln!(message, "  ... {skipped} earlier ops");
    }
    for &(index, state_after) in &witness.prefix[skipped..] {
        let _ = writeln!(message, "  {}   => {}", key_ops[index].op, render_state(state_after));
    }
    let _ = writeln!(
        message,
        "then {blocked} had to take effect before completing, but after this prefix no choice \
         of the ops that may take effect next leads to a linearization."
    );
    let _ = writeln!(message, "ops of key {key:?} in invocation order:");
    // A window of the ops around the blocked one, which is where the contradiction lies.
    let position = all_ops.iter().position(|op| op.id == blocked.id).expect("the blocked op is an op of this key");
    let start = position.saturating_sub(WITNESS_OPS_MAX / 2).min(all_ops.len().saturating_sub(WITNESS_OPS_MAX));
    let end = (start + WITNESS_OPS_MAX).min(all_ops.len());
    if start > 0 {
        let _ = writeln!(message, "  ... {start} earlier ops");
    }
    for op in &all_ops[start..end] {
        let marker = if op.id == blocked.id { " <- blocked" } else { "" };
        let _ = writeln!(message, "  {op}{marker}");
    }
    if end < all_ops.len() {
        let _ = writeln!(message, "  ... {} later ops", all_ops.len() - end);
    }
    Violation { invariant: INVARIANT, message: message.trim_end().to_string(), at_ns }
}

#[cfg(test)]
pub(crate) mod tests {
    #[test]
    fn cas_succeeds_only_on_the_current_value() {
        let cas = |id, client, invoke_ns, complete_ns, expect, new| Op {
            id,
            client,
            invoke_ns,
            complete_ns: Some(complete_ns),
            kind: OpKind::Cas { key: "c".into(), expect, new },
            outcome: Outcome::Ok(Ret::Done),
        };
        let incr = |id, client, invoke_ns, complete_ns, result| Op {
            id,
            client,
            invoke_ns,
            complete_ns: Some(complete_ns),
            kind: OpKind::Incr { key: "c".into(), by: 1 },
            outcome: Outcome::Ok(Ret::Int(result)),
        };
        // INCR to 1, then CAS 1 -> 2, then INCR sees 2 -> 3: fine.
        let good = History { ops: vec![incr(1, 1, 0, 10, 1), cas(2, 2, 20, 30, Some(1), 2), incr(3, 1, 40, 50, 3)] };
        assert!(check(&good).is_ok());
        // The planted WATCH bug: an INCR inside the CAS window is overwritten (lost update).
        let lost = History {
            ops: vec![
                incr(1, 1, 0, 10, 1),
                cas(2, 2, 20, 60, Some(1), 2),
                incr(3, 1, 30, 40, 2),
                incr(4, 1, 70, 80, 3),
            ],
        };
        assert_eq!(check(&lost).unwrap_err().invariant, INVARIANT);
    }

    use super::*;
    use crate::history::build::*;
    use proptest::prelude::*;

    fn assert_linearizable(history: &History) -> CheckStats {
        match check(history) {
            Ok(stats) => stats,
            Err(violation) => panic!("expected linearizable:\n{violation}"),
        }
    }

    fn assert_not_linearizable(history: &History) -> Violation {
        match check(history) {
            Ok(stats) => panic!("expected a violation, got {stats:?} for:\n{}", history.render()),
            Err(violation) => {
                assert_eq!(violation.invariant, INVARIANT, "{violation}");
                violation
            }
        }
    }

    #[test]
    fn empty_history_passes_vacuously() {
        let stats = assert_linearizable(&History::new());
        assert_eq!(stats, CheckStats::default());
    }

    #[test]
    fn sequential_register() {
        let history = history(vec![
            get("x", None, 0, 10),
            set("x", 1, 20, 30),
            get("x", Some(1), 40, 50),
            set("x", 2, 60, 70),
            get("x", Some(2), 80, 90),
        ]);
        let stats = assert_linearizable(&history);
        assert_eq!(stats.keys_checked, 1);
        assert_eq!(stats.ops_checked, 5);
        assert!(stats.search_steps > 0);
    }

    #[test]
    fn read_concurrent_with_write_sees_old_or_new() {
        for seen in [None, Some(1)] {
            assert_linearizable(&history(vec![set("x", 1, 0, 100), get("x", seen, 50, 150)]));
            assert_linearizable(&history(vec![set("x", 1, 50, 150), get("x", seen, 0, 100)]));
        }
    }

    #[test]
    fn concurrent_writes_take_effect_in_either_order() {
        for (first, second) in [(1, 2), (2, 1)] {
            let history = history(vec![
                set("x", 1, 0, 100),
                set("x", 2, 10, 90),
                get("x", Some(first), 200, 210),
                get("x", Some(first), 220, 230),
            ]);
            assert_linearizable(&history);
            // Two reads concurrent with both writes may see them in either order, as long as
            // they do not disagree on that order.
            let history = self::history(vec![
                set("x", 1, 0, 100),
                set("x", 2, 10, 100),
                get("x", Some(first), 20, 100),
                get("x", Some(second), 30, 100),
            ]);
            assert_linearizable(&history);
        }
    }

    #[test]
    fn reads_disagreeing_on_the_order_of_writes_fail() {
        // Once a read after both writes saw 2, no later read may see 1.
        let history = history(vec![
            set("x", 1, 0, 100),
            set("x", 2, 10, 100),
            get("x", Some(2), 110, 120),
            get("x", Some(1), 130, 140),
        ]);
        assert_not_linearizable(&history);
    }

    #[test]
    fn unknown_write_may_appear_later() {
        let history = history(vec![
            unknown(set("x", 7, 0, 0)),
            get("x", None, 10, 20),
            get("x", Some(7), 1000, 1010),
            get("x", Some(7), 2000, 2010),
        ]);
        assert_linearizable(&history);
    }

    #[test]
    fn unknown_write_may_never_appear() {
        let history = history(vec![
            unknown(set("x", 7, 0, 0)),
            set("x", 1, 10, 20),
            get("x", Some(1), 1000, 1010),
            unknown(incr("x", 5, 0, 1100, 1100)),
            get("x", Some(1), 2000, 2010),
            unknown(del("x", 0, 2100, 2100)),
        ]);
        assert_linearizable(&history);
    }

    #[test]
    fn unknown_write_cannot_appear_before_its_invocation() {
        let history = history(vec![get("x", Some(7), 0, 10), unknown(set("x", 7, 20, 20))]);
        assert_not_linearizable(&history);
    }

    #[test]
    fn unknown_write_cannot_appear_then_vanish() {
        let history = history(vec![unknown(set("x", 7, 0, 0)), get("x", Some(7), 10, 20), get("x", None, 30, 40)]);
        assert_not_linearizable(&history);
    }

    #[test]
    fn incr_chains() {
        let history = history(vec![
            incr("n", 1, 1, 0, 10),
            incr("n", 1, 2, 20, 30),
            incr("n", 5, 7, 40, 50),
            incr("n", -10, -3, 60, 70),
            get("n", Some(-3), 80, 90),
        ]);
        assert_linearizable(&history);
        // Concurrent increments may return their values in either order of invocation.
        for (first, second) in [(1, 2), (2, 1)] {
            let history = self::history(vec![
                incr("n", 1, first, 0, 100),
                incr("n", 1, second, 10, 90),
                get("n", Some(2), 200, 210),
            ]);
            assert_linearizable(&history);
        }
        // An unknown increment explains a jump, or not.
        for final_value in [2, 3] {
            let history = self::history(vec![
                incr("n", 1, 1, 0, 10),
                unknown(incr("n", 1, 0, 20, 20)),
                incr("n", 1, final_value, 30, 40),
                get("n", Some(final_value), 50, 60),
            ]);
            assert_linearizable(&history);
        }
    }

    #[test]
    fn incr_on_set_value_and_after_del() {
        let history = history(vec![
            set("n", 10, 0, 10),
            incr("n", 1, 11, 20, 30),
            del("n", 1, 40, 50),
            incr("n", 1, 1, 60, 70),
            del("n", 1, 80, 90),
            del("n", 0, 100, 110),
            get("n", None, 120, 130),
        ]);
        assert_linearizable(&history);
    }

    #[test]
    fn lost_increment_fails() {
        let history = history(vec![incr("n", 1, 1, 0, 10), incr("n", 1, 1, 20, 30)]);
        let violation = assert_not_linearizable(&history);
        assert_eq!(violation.at_ns, Some(30));
        // Concurrent, but both returning 1: one increment was lost all the same.
        let history = self::history(vec![incr("n", 1, 1, 0, 100), incr("n", 1, 1, 10, 90)]);
        assert_not_linearizable(&history);
    }

    #[test]
    fn incr_overflow_must_fail_and_change_nothing() {
        let history = history(vec![
            set("n", i64::MAX, 0, 10),
            failed(incr("n", 1, 0, 20, 30)),
            unknown(incr("n", 1, 0, 35, 35)),
            get("n", Some(i64::MAX), 40, 50),
        ]);
        assert_linearizable(&history);
        // A success that the model must refuse cannot be explained.
        let history = self::history(vec![set("n", i64::MAX, 0, 10), incr("n", 1, 0, 20, 30)]);
        assert_not_linearizable(&history);
    }

    #[test]
    fn stale_read_after_completed_write_fails() {
        let history = history(vec![set("x", 1, 0, 10), set("x", 2, 20, 30), get("x", Some(1), 40, 50)]);
        let violation = assert_not_linearizable(&history);
        assert_eq!(violation.at_ns, Some(50));
        assert!(violation.message.contains("key \"x\""), "{violation}");
        assert!(violation.message.contains("#3 client 3 [40 ns, 50 ns] GET \"x\" -> \"1\" <- blocked"), "{violation}");
        // The longest prefix: both writes.
        assert!(violation.message.contains("longest linearizable prefix found (2 ops"), "{violation}");
    }

    #[test]
    fn read_of_never_written_value_fails() {
        let history = history(vec![set("x", 1, 0, 10), get("x", Some(99), 5, 50)]);
        assert_not_linearizable(&history);
        let history = self::history(vec![get("x", Some(0), 5, 50)]);
        assert_not_linearizable(&history);
    }

    #[test]
    fn read_before_write_was_invoked_fails() {
        let history = history(vec![get("x", Some(1), 0, 10), set("x", 1, 20, 30)]);
        let violation = assert_not_linearizable(&history);
        assert_eq!(violation.at_ns, Some(10));
        assert!(violation.message.contains("longest linearizable prefix found (0 ops"), "{violation}");
    }

    #[test]
    fn wrong_del_count_fails() {
        let history = history(vec![del("x", 1, 0, 10)]);
        assert_not_linearizable(&history);
        let history = self::history(vec![set("x", 1, 0, 10), del("x", 0, 20, 30)]);
        assert_not_linearizable(&history);
        let history = self::history(vec![set("x", 1, 0, 10), del("x", 1, 20, 30), del("x", 1, 40, 50)]);
        assert_not_linearizable(&history);
    }

    #[test]
    fn failed_write_is_never_visible() {
        let history = history(vec![failed(set("x", 1, 0, 10)), get("x", None, 20, 30)]);
        assert_linearizable(&history);
        let history = self::history(vec![failed(set("x", 1, 0, 10)), get("x", Some(1), 20, 30)]);
        assert_not_linearizable(&history);
    }

    #[test]
    fn keys_are_independent() {
        let history = history(vec![
            set("a", 1, 0, 10),
            set("b", 2, 0, 10),
            get("a", Some(1), 20, 30),
            get("b", Some(2), 20, 30),
            get("c", None, 20, 30),
        ]);
        let stats = assert_linearizable(&history);
        assert_eq!(stats.keys_checked, 3);
        let history = self::history(vec![set("a", 1, 0, 10), get("b", Some(1), 20, 30)]);
        let violation = assert_not_linearizable(&history);
        assert!(violation.message.contains("key \"b\""), "{violation}");
    }

    #[test]
    fn initial_state_is_where_each_key_starts() {
        let history = history(vec![get("x", Some(5), 0, 10), incr("x", 1, 6, 20, 30)]);
        assert_not_linearizable(&history);
        let initial = BTreeMap::from([("x".to_string(), 5)]);
        assert!(check_from(&history, &initial).is_ok());
        let violation = check_from(&history, &BTreeMap::from([("x".to_string(), 4)])).expect_err("starts at 4");
        assert!(violation.message.contains("the key starting at \"4\""), "{violation}");
    }

    #[test]
    fn malformed_history_is_reported_as_such() {
        let mut history = history(vec![set("x", 1, 0, 10)]);
        history.ops[0].complete_ns = None;
        let violation = check(&history).expect_err("malformed");
        assert_eq!(violation.invariant, crate::history::INVARIANT);
    }

    #[test]
    fn too_many_ops_on_one_key_is_a_search_limit() {
        let ops = (0..=OPS_PER_KEY_MAX as u128).map(|i| set("x", 1, i * 10, i * 10 + 5)).collect();
        let violation = check(&history(ops)).expect_err("over the limit");
        assert_eq!(violation.invariant, INVARIANT_SEARCH_LIMIT);
        assert!(violation.message.contains("OPS_PER_KEY_MAX"), "{violation}");
    }

    #[test]
    fn long_sequential_history_at_the_limit_is_cheap() {
        let ops = (0..OPS_PER_KEY_MAX as u128).map(|i| incr("x", 1, i as i64 + 1, i * 10, i * 10 + 5)).collect();
        let stats = assert_linearizable(&history(ops));
        assert_eq!(stats.ops_checked, OPS_PER_KEY_MAX as u64);
        assert!(stats.search_steps <= 4 * OPS_PER_KEY_MAX as u64);
    }

    /// Many concurrent writes and a read of a value none of them wrote: refuting it needs
    /// exploring every subset of the writes, so a small budget runs out.
    fn hard_history(writes: usize) -> History {
        let mut ops: Vec<Op> = (0..writes).map(|i| set("x", i as i64, i as u128, 1000)).collect();
        ops.push(get("x", Some(-1), 500, 2000));
        history(ops)
    }

    #[test]
    fn search_step_limit_is_reported_not_hung() {
        let history = hard_history(10);
        let violation = check_with_budget(&history, &BTreeMap::new(), 1000).expect_err("over budget");
        assert_eq!(violation.invariant, INVARIANT_SEARCH_LIMIT);
        assert!(violation.message.contains("SEARCH_STEPS_MAX = 1000"), "{violation}");
        assert_eq!(violation.at_ns, None);
        // With the full budget the same history is refuted: memoization collapses the orders
        // of the writes into subsets (2^10 of them), well within the budget.
        let violation = check(&history).expect_err("not linearizable");
        assert_eq!(violation.invariant, INVARIANT);
    }

    #[test]
    fn budget_is_shared_by_all_keys() {
        let history =
            history(vec![set("a", 1, 0, 10), set("b", 1, 0, 10), get("a", Some(1), 20, 30), get("b", Some(1), 20, 30)]);
        let stats = assert_linearizable(&history);
        let budget = stats.search_steps - 1;
        let violation = check_with_budget(&history, &BTreeMap::new(), budget).expect_err("over budget");
        assert_eq!(violation.invariant, INVARIANT_SEARCH_LIMIT);
        assert!(violation.message.contains("key \"b\""), "{violation}");
    }

    /// What one generated op does in the sequential execution.
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum Fate {
        /// Takes effect at its linearization point; the client sees the reply.
        Replied,
        /// Takes effect at its linearization point; the reply is lost.
        LostReply,
        /// Never takes effect; no reply.
        LostRequest,
        /// Never takes effect; an error reply.
        Refused,
    }

    fn fate_strategy() -> impl Strategy<Value = Fate> {
        prop_oneof![
            7 => Just(Fate::Replied),
            1 => Just(Fate::LostReply),
            1 => Just(Fate::LostRequest),
            1 => Just(Fate::Refused),
        ]
    }

    fn kind_strategy() -> impl Strategy<Value = OpKind> {
        let key = (0..3u8).prop_map(|k| format!("k{k}"));
        prop_oneof![
            3 => key.clone().prop_map(|key| OpKind::Get { key }),
            2 => (key.clone(), -50i64..50).prop_map(|(key, value)| OpKind::Set { key, value }),
            2 => (key.clone(), -5i64..=5).prop_map(|(key, by)| OpKind::Incr { key, by }),
            1 => key.prop_map(|key| OpKind::Del { key }),
        ]
    }

    /// One generated op: what it is, its fate, the gap since the previous linearization point,
    /// and how long before and after its own linearization point it was invoked and completed.
    pub(crate) type OpPlan = (OpKind, Fate, u64, u64, u64, u32);

    pub(crate) fn plan_strategy() -> impl Strategy<Value = Vec<OpPlan>> {
        prop::collection::vec((kind_strategy(), fate_strategy(), 1u64..10, 0u64..25, 0u64..25, 0u32..4), 1..40)
    }

    /// Runs the plan on the model, one op at a time at increasing linearization points, and
    /// records each op over an interval around its point: a linearizable history by
    /// construction, with as much overlap as the plan's intervals give.
    pub(crate) fn execute(plan: &[OpPlan]) -> History {
        let (history, restarts_ns) = execute_with_restarts(plan, &[]);
        assert!(restarts_ns.is_empty());
        history
    }

    /// [`execute`], with the server restarting (losing every key) just before the ops whose
    /// `restart_before` flag is set; returns the restart times too. No op is invoked before a
    /// restart and takes effect after it: a restart drops every connection, so an op invoked
    /// before it either took effect before it or never.
    pub(crate) fn execute_with_restarts(plan: &[OpPlan], restart_before: &[bool]) -> (History, Vec<u128>) {
        let mut states: BTreeMap<String, i64> = BTreeMap::new();
        let mut point_ns: u128 = 1000;
        let mut epoch_start_ns: u128 = 0;
        let mut restarts_ns = Vec::new();
        let mut ops = Vec::with_capacity(plan.len());
        for (index, (kind, fate, gap_ns, lead_ns, lag_ns, client)) in plan.iter().enumerate() {
            if restart_before.get(index).copied().unwrap_or(false) {
                // Strictly after the previous linearization point.
                epoch_start_ns = point_ns + 1;
                point_ns = epoch_start_ns;
                restarts_ns.push(epoch_start_ns);
                states.clear();
            }
            point_ns += u128::from(*gap_ns);
            let state = states.get(kind.key()).copied();
            let applied = match fate {
                Fate::Replied | Fate::LostReply => model_apply(state, kind),
                Fate::LostRequest | Fate::Refused => None,
            };
            if let Some((state_new, _)) = applied {
                match state_new {
                    Some(value) => states.insert(kind.key().to_string(), value),
                    None => states.remove(kind.key()),
                };
            }
            let (complete_ns, outcome) = match (fate, applied) {
                (Fate::Replied, Some((_, ret))) => (Some(point_ns + u128::from(*lag_ns)), Outcome::Ok(ret)),
                // The model refused it (overflow): the server replies with an error.
                (Fate::Replied, None) | (Fate::Refused, _) => (Some(point_ns + u128::from(*lag_ns)), Outcome::Fail),
                (Fate::LostReply | Fate::LostRequest, _) => (None, Outcome::Unknown),
            };
            ops.push(Op {
                id: index as u64,
                client: *client,
                invoke_ns: (point_ns - u128::from(*lead_ns)).max(epoch_start_ns),
                complete_ns,
                kind: kind.clone(),
                outcome,
            });
        }
        (History { ops }, restarts_ns)
    }

    /// A value no generated op can write: SET writes at most 50 in absolute value, and 40
    /// increments of at most 5 stay far below.
    pub(crate) const NEVER_WRITTEN: i64 = 1_000_000_007;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn sequential_executions_are_linearizable(plan in plan_strategy()) {
            let history = execute(&plan);
            prop_assert!(history.validate().is_ok());
            if let Err(violation) = check(&history) {
                return Err(TestCaseError::fail(format!("{violation}")));
            }
        }

        #[test]
        fn a_read_of_a_never_written_value_is_caught(
            plan in plan_strategy(),
            pick in any::<prop::sample::Index>(),
        ) {
            let mut history = execute(&plan);
            let reads: Vec<usize> = (0..history.ops.len())
                .filter(|&i| matches!(history.ops[i].outcome, Outcome::Ok(Ret::Value(_))))
                .collect();
            prop_assume!(!reads.is_empty());
            let read = reads[pick.index(reads.len())];
            history.ops[read].outcome = Outcome::Ok(Ret::Value(Some(NEVER_WRITTEN)));
            match check(&history) {
                Ok(stats) => {
                    return Err(TestCaseError::fail(format!(
                        "corrupted read #{} passed ({stats:?}):\n{}",
                        history.ops[read].id,
                        history.render()
                    )));
                }
                Err(violation) => {
                    prop_assert_eq!(violation.invariant, INVARIANT);
                    let key = history.ops[read].key().to_string();
                    let key_quoted = format!("key {key:?}");
                    prop_assert!(violation.message.contains(&key_quoted));
                }
            }
        }
    }
}
