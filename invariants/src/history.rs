//! The recorded history of client operations against one key space of registers and counters.
//!
//! A history records what clients *observed*, never what the server did internally: for each
//! operation, when the client invoked it (`invoke_ns`, just before the request was written),
//! when the reply arrived (`complete_ns`, just after it was read), and what the reply was.
//!
//! All times are nanoseconds on one clock shared by every client (the simulator's clock, or one
//! machine's monotonic clock for real runs). Checkers compare the completion of one client's
//! operation with the invocation of another's, so per-client clocks would make them unsound.
//!
//! The outcome says how much the client knows, which is what Redis's replies let it know:
//!
//! - [`Outcome::Ok`]: the server replied with a result; the operation took effect exactly once,
//!   at some instant between invocation and completion.
//! - [`Outcome::Fail`]: the server replied with an error (`-ERR ...`, such as INCR's
//!   "increment or decrement would overflow"); Redis applies nothing of a command that replies
//!   with an error, so the operation definitely took no effect.
//! - [`Outcome::Unknown`]: no reply (timeout, connection dropped, server restarted); the
//!   operation may have taken effect at any instant after its invocation, or never. It has no
//!   completion time.
//!
//! A history is *well-formed* ([`History::validate`], invariant `history/well-formed`) when ids
//! are unique, `complete_ns` is `None` exactly for `Unknown` outcomes, no operation completes
//! before it is invoked, and each `Ok` result has the shape its command replies with in Redis
//! (GET: bulk string or nil; SET: `+OK`; INCR/INCRBY: integer; DEL of one key: integer 0 or 1).
//! A malformed history is a bug in the recorder, reported as such rather than judged.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Violation;

/// The invariant name for malformed histories.
pub const INVARIANT: &str = "history/well-formed";

/// At most this many operations in one history: bounds every checker's memory. A million
/// operations is far more than one simulated run records; a longer real run should be split.
pub const HISTORY_OPS_MAX: usize = 1 << 20;

/// One command against one key. Every command here touches exactly one key, as the Redis
/// commands they stand for do (GET, SET, INCR/INCRBY, and DEL with one key).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpKind {
    /// `GET key`.
    Get { key: String },
    /// `SET key value` (no options).
    Set { key: String, value: i64 },
    /// `INCRBY key by` (`INCR key` when `by` is 1, `DECRBY` when negative).
    Incr { key: String, by: i64 },
    /// `DEL key` with exactly one key.
    Del { key: String },
    /// Optimistic compare-and-set: `WATCH key`, `GET key` (read `expect`), `MULTI`,
    /// `SET key new`, `EXEC`. A successful EXEC (Ok(Done)) means no write touched the key between
    /// the WATCH and the EXEC, so the read and the write take effect as one atomic step at a
    /// point inside the op's interval. An aborted EXEC (nil) is recorded as Fail: it wrote nothing.
    Cas { key: String, expect: Option<i64>, new: i64 },
}

impl OpKind {
    pub fn key(&self) -> &str {
        match self {
            OpKind::Get { key }
            | OpKind::Set { key, .. }
            | OpKind::Incr { key, .. }
            | OpKind::Del { key }
            | OpKind::Cas { key, .. } => key,
        }
    }
}

/// A successful reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ret {
    /// GET's reply: the value, or `None` for nil (the key is absent).
    Value(Option<i64>),
    /// INCR's new value, or DEL's count of deleted keys (0 or 1).
    Int(i64),
    /// SET's `+OK`.
    Done,
}

/// What the client learnt about its operation; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// The server replied with this result: the operation took effect.
    Ok(Ret),
    /// The server replied with an error: the operation definitely took no effect.
    Fail,
    /// No reply: the operation may or may not have taken effect.
    Unknown,
}

/// One operation as one client observed it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Op {
    /// Unique within the history; reports name operations by it (`#id`).
    pub id: u64,
    pub client: u32,
    pub invoke_ns: u128,
    /// `None` exactly when `outcome` is [`Outcome::Unknown`].
    pub complete_ns: Option<u128>,
    pub kind: OpKind,
    pub outcome: Outcome,
}

impl Op {
    pub fn key(&self) -> &str {
        self.kind.key()
    }
}

/// One line, as reports show an operation, e.g.
/// `#12 client 3 [1000 ns, 2500 ns] INCRBY "k" 5 -> (integer) 7`.
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} client {} [{} ns, ", self.id, self.client, self.invoke_ns)?;
        match self.complete_ns {
            Some(complete_ns) => write!(f, "{complete_ns} ns] ")?,
            None => write!(f, "?] ")?,
        }
        // Keys are quoted (Debug) so that empty keys and keys with spaces stay readable.
        match &self.kind {
            OpKind::Get { key } => write!(f, "GET {key:?}")?,
            OpKind::Set { key, value } => write!(f, "SET {key:?} {value}")?,
            OpKind::Incr { key, by: 1 } => write!(f, "INCR {key:?}")?,
            OpKind::Incr { key, by } => write!(f, "INCRBY {key:?} {by}")?,
            OpKind::Del { key } => write!(f, "DEL {key:?}")?,
            OpKind::Cas { key, expect: Some(e), new } => write!(f, "CAS {key:?} {e} -> {new}")?,
            OpKind::Cas { key, expect: None, new } => write!(f, "CAS {key:?} (nil) -> {new}")?,
        }
        // Results are shown as redis-cli shows replies.
        match self.outcome {
            Outcome::Ok(Ret::Value(Some(value))) => write!(f, " -> \"{value}\""),
            Outcome::Ok(Ret::Value(None)) => write!(f, " -> (nil)"),
            Outcome::Ok(Ret::Int(int)) => write!(f, " -> (integer) {int}"),
            Outcome::Ok(Ret::Done) => write!(f, " -> OK"),
            Outcome::Fail => write!(f, " -> (error)"),
            Outcome::Unknown => write!(f, " -> ? (unknown)"),
        }
    }
}

/// A recorded history: the operations of all clients, in any order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub ops: Vec<Op>,
}

impl History {
    pub fn new() -> History {
        History { ops: Vec::new() }
    }

    /// Checks the well-formedness rules in the module docs. Checkers call this first, so that
    /// a recorder bug is reported as one and not as a violation by the server.
    pub fn validate(&self) -> Result<(), Violation> {
        let malformed = |op: Option<&Op>, why: String| Violation {
            invariant: INVARIANT,
            message: match op {
                Some(op) => format!("{why}: {op}"),
                None => why,
            },
            at_ns: None,
        };
        if self.ops.len() > HISTORY_OPS_MAX {
            return Err(malformed(
                None,
                format!("history has {} ops, more than HISTORY_OPS_MAX = {HISTORY_OPS_MAX}", self.ops.len()),
            ));
        }
        let mut ids = HashSet::with_capacity(self.ops.len());
        for op in &self.ops {
            if !ids.insert(op.id) {
                return Err(malformed(Some(op), "duplicate op id".to_string()));
            }
            match (op.outcome, op.complete_ns) {
                (Outcome::Unknown, None) => {}
                (Outcome::Unknown, Some(_)) => {
                    return Err(malformed(Some(op), "op with unknown outcome has a completion time".to_string()))
                }
                (_, None) => return Err(malformed(Some(op), "op with a reply has no completion time".to_string())),
                (_, Some(complete_ns)) => {
                    if complete_ns < op.invoke_ns {
                        return Err(malformed(Some(op), "op completes before it is invoked".to_string()));
                    }
                }
            }
            if let Outcome::Ok(ret) = op.outcome {
                let shape_ok = match (&op.kind, ret) {
                    (OpKind::Get { .. }, Ret::Value(_)) => true,
                    (OpKind::Set { .. }, Ret::Done) => true,
                    (OpKind::Incr { .. }, Ret::Int(_)) => true,
                    (OpKind::Del { .. }, Ret::Int(count)) => count == 0 || count == 1,
                    (OpKind::Cas { .. }, Ret::Done) => true,
                    _ => false,
                };
                if !shape_ok {
                    return Err(malformed(Some(op), "reply has a shape this command never replies with".to_string()));
                }
            }
        }
        Ok(())
    }

    /// The distinct keys the history touches, in order.
    pub fn keys(&self) -> BTreeSet<&str> {
        self.ops.iter().map(Op::key).collect()
    }

    /// The operations of each key, each key's in invocation order (ties broken by id, so the
    /// order does not depend on the order of `ops`).
    pub fn ops_by_key(&self) -> BTreeMap<&str, Vec<&Op>> {
        let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
        for op in &self.ops {
            by_key.entry(op.key()).or_default().push(op);
        }
        for ops in by_key.values_mut() {
            ops.sort_by_key(|op| (op.invoke_ns, op.id));
        }
        by_key
    }

    /// The operations of one key, in invocation order.
    pub fn ops_of_key(&self, key: &str) -> Vec<&Op> {
        let mut ops: Vec<&Op> = self.ops.iter().filter(|op| op.key() == key).collect();
        ops.sort_by_key(|op| (op.invoke_ns, op.id));
        ops
    }

    /// The whole history as text, one operation a line, in invocation order.
    pub fn render(&self) -> String {
        let mut ops: Vec<&Op> = self.ops.iter().collect();
        ops.sort_by_key(|op| (op.invoke_ns, op.id));
        let mut text = String::new();
        for op in ops {
            text.push_str(&op.to_string());
            text.push('\n');
        }
        text
    }
}

/// Builders for hand-written histories in tests: `set("x", 1, 0, 10)` is a SET invoked at 0 ns
/// that completed OK at 10 ns; `unknown(..)` and `failed(..)` change the outcome.
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    fn op(kind: OpKind, ret: Ret, invoke_ns: u128, complete_ns: u128) -> Op {
        assert!(invoke_ns <= complete_ns);
        Op { id: 0, client: 0, invoke_ns, complete_ns: Some(complete_ns), kind, outcome: Outcome::Ok(ret) }
    }

    pub fn get(key: &str, value: Option<i64>, invoke_ns: u128, complete_ns: u128) -> Op {
        let kind = OpKind::Get { key: key.into() };
        op(kind, Ret::Value(value), invoke_ns, complete_ns)
    }

    pub fn set(key: &str, value: i64, invoke_ns: u128, complete_ns: u128) -> Op {
        let kind = OpKind::Set { key: key.into(), value };
        op(kind, Ret::Done, invoke_ns, complete_ns)
    }

    pub fn incr(key: &str, by: i64, new: i64, invoke_ns: u128, complete_ns: u128) -> Op {
        let kind = OpKind::Incr { key: key.into(), by };
        op(kind, Ret::Int(new), invoke_ns, complete_ns)
    }

    pub fn del(key: &str, count: i64, invoke_ns: u128, complete_ns: u128) -> Op {
        let kind = OpKind::Del { key: key.into() };
        op(kind, Ret::Int(count), invoke_ns, complete_ns)
    }

    pub fn unknown(op: Op) -> Op {
        Op { complete_ns: None, outcome: Outcome::Unknown, ..op }
    }

    pub fn failed(op: Op) -> Op {
        Op { outcome: Outcome::Fail, ..op }
    }

    /// Numbers the ops 1.. in the order given; each op gets its own client.
    pub fn history(ops: Vec<Op>) -> History {
        let ops = ops
            .into_iter()
            .enumerate()
            .map(|(index, op)| Op { id: index as u64 + 1, client: index as u32 + 1, ..op })
            .collect();
        History { ops }
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn renders_one_line_per_op_like_redis_cli() {
        let history = history(vec![
            set("k", 5, 0, 10),
            get("k", Some(5), 20, 30),
            get("k", None, 21, 31),
            incr("k", 1, 6, 40, 50),
            incr("k", -2, 4, 41, 51),
            del("k", 1, 60, 70),
            unknown(set("k", 9, 80, 80)),
            failed(incr("k", 1, 0, 90, 95)),
        ]);
        let lines: Vec<String> = history.ops.iter().map(Op::to_string).collect();
        assert_eq!(
            lines,
            [
                "#1 client 1 [0 ns, 10 ns] SET \"k\" 5 -> OK",
                "#2 client 2 [20 ns, 30 ns] GET \"k\" -> \"5\"",
                "#3 client 3 [21 ns, 31 ns] GET \"k\" -> (nil)",
                "#4 client 4 [40 ns, 50 ns] INCR \"k\" -> (integer) 6",
                "#5 client 5 [41 ns, 51 ns] INCRBY \"k\" -2 -> (integer) 4",
                "#6 client 6 [60 ns, 70 ns] DEL \"k\" -> (integer) 1",
                "#7 client 7 [80 ns, ?] SET \"k\" 9 -> ? (unknown)",
                "#8 client 8 [90 ns, 95 ns] INCR \"k\" -> (error)",
            ]
        );
        assert_eq!(history.render().lines().count(), 8);
        assert!(history.validate().is_ok());
    }

    #[test]
    fn groups_by_key_in_invocation_order() {
        let history =
            history(vec![set("b", 1, 30, 40), set("a", 1, 20, 25), get("b", None, 10, 50), get("a", None, 5, 6)]);
        let by_key = history.ops_by_key();
        assert_eq!(by_key.keys().copied().collect::<Vec<_>>(), ["a", "b"]);
        let ids = |ops: &Vec<&Op>| ops.iter().map(|op| op.id).collect::<Vec<_>>();
        assert_eq!(ids(&by_key["a"]), [4, 2]);
        assert_eq!(ids(&by_key["b"]), [3, 1]);
        assert_eq!(ids(&history.ops_of_key("b")), [3, 1]);
        assert_eq!(history.keys().into_iter().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn rejects_malformed_histories() {
        let expect_malformed = |history: History, why: &str| {
            let violation = history.validate().expect_err(why);
            assert_eq!(violation.invariant, INVARIANT);
            assert!(violation.message.contains(why), "{violation}");
        };
        let mut duplicate = history(vec![set("k", 1, 0, 1), set("k", 2, 0, 1)]);
        duplicate.ops[1].id = 1;
        expect_malformed(duplicate, "duplicate op id");

        let mut backwards = history(vec![set("k", 1, 10, 10)]);
        backwards.ops[0].complete_ns = Some(9);
        expect_malformed(backwards, "completes before it is invoked");

        let mut unknown_with_time = history(vec![unknown(set("k", 1, 0, 1))]);
        unknown_with_time.ops[0].complete_ns = Some(5);
        expect_malformed(unknown_with_time, "unknown outcome has a completion time");

        let mut reply_without_time = history(vec![set("k", 1, 0, 1)]);
        reply_without_time.ops[0].complete_ns = None;
        expect_malformed(reply_without_time, "no completion time");

        let mut get_with_int = history(vec![get("k", None, 0, 1)]);
        get_with_int.ops[0].outcome = Outcome::Ok(Ret::Int(3));
        expect_malformed(get_with_int, "shape");

        expect_malformed(history(vec![del("k", 2, 0, 1)]), "shape");
    }
}
