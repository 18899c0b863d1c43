//! Checkers that judge recorded histories of client operations.
//!
//! # Why this crate exists
//!
//! A simulator that finds no failure proves nothing unless something judges what the clients
//! saw. The judges live here, apart from the server and the simulator, for two reasons:
//!
//! - **Independence.** A checker must not share code, types or assumptions with the thing it
//!   judges; otherwise a bug in the shared part passes both. This crate depends on no runtime
//!   (not madsim, not tokio) and not on the `store` crate: its input is plain data, a
//!   [`history::History`] of what each client invoked, when, and what reply came back.
//! - **Reuse.** Because the input is only a recorded history, the same checkers judge a
//!   deterministic simulation run, an end-to-end run of the real `store-server` binary, or a run
//!   of real Redis (to make sure a checker does not reject behaviour Redis itself shows).
//!
//! Each checker states one property precisely, in its module's docs, together with the Redis
//! behaviour the property comes from. A checker returns `Ok` with statistics (so a caller can
//! tell a vacuous pass from a real one) or a [`Violation`] that says which invariant failed, why,
//! and with a witness small enough to read.
//!
//! Every checker bounds its own work: a history it cannot decide within its limits gives a
//! distinct violation (for example `linearizable/search-limit`) rather than hanging or passing.
//!
//! # Modules
//!
//! - [`acked_writes`]: acknowledged writes lost by a failover configuration (measured), from
//!   a plain-text history that simulated and real runs both write.
//! - [`aof_durability`]: acknowledged writes survive crashes as `appendfsync` promises.
//! - [`history`]: the recorded history (operations, outcomes, times) and its well-formedness.
//! - [`linearizable`]: linearizability of a single-node history against a register/counter model.
//! - [`epochs`]: splitting a history at server restarts, so each epoch is checked from the
//!   state the restart promises (empty, while persistence is off).
//! - [`repl_log`]: per-node logs of replication events (offsets fed, applied and acknowledged
//!   with dataset digests, PSYNC decisions, ACKs, WAIT replies), the input of:
//!   - [`replica_matches_master`]: a replica's data at an offset is the master's at that offset;
//!   - [`min_replicas_gate`]: -NOREPLICAS exactly when too few good replicas;
//!   - [`partial_resync_when_covered`]: +CONTINUE exactly when the backlog covers the gap;
//!   - [`wait_bound`]: WAIT never reports more replicas than acknowledged.
//! - [`readonly_replica`]: writes sent to a read-only replica are all refused.
//! - [`sentinel_log`]: per-sentinel logs of events, facts and crashes, the input of:
//!   - [`sentinel_votes`]: one vote per sentinel per epoch, one leader per epoch, elected by a
//!     majority counted from the voters' logs;
//!   - [`sentinel_switches`]: one address per configuration epoch, epochs only increase;
//!   - [`sentinel_failover_start`]: no failover starts without ODOWN by a quorum;
//!   - [`sentinel_tilt`]: a clock jump the harness made sends the sentinel into TILT;
//!   - [`sentinel_selection`]: the promoted replica is the best of the candidates.
//!
//! # Adding an invariant
//!
//! 1. Add one file, `src/<name>.rs`, opening with a `//!` comment that states the property
//!    precisely (what must hold of every history, in terms of invocation and completion times
//!    and outcomes) and the Redis behaviour it comes from (a documented promise, or what Redis
//!    does, with the command or directive involved).
//! 2. Declare it below and give it a `pub const INVARIANT: &str` name, `"<name>"`, used as
//!    [`Violation::invariant`]; sub-cases (such as a search limit) use `"<name>/<case>"`.
//! 3. Expose `pub fn check(history: &history::History, ...) -> Result<Stats, Violation>`. Call
//!    [`history::History::validate`] first, bound every loop and every allocation by a named
//!    `pub const ..._MAX`, and report exceeding a limit as its own violation.
//! 4. Test it with hand-written histories that must pass and must fail (one per way the property
//!    can break), and a property test: histories generated from a correct sequential execution
//!    must pass, and the same histories with one planted fault must fail.
//! 5. Keep the crate free of runtime dependencies: only `serde` (so histories can be saved and
//!    replayed) and, for tests, `proptest`.

use std::fmt;

pub mod acked_writes;
pub mod aof_durability;
pub mod epochs;
pub mod history;
pub mod linearizable;
pub mod min_replicas_gate;
pub mod partial_resync_when_covered;
pub mod readonly_replica;
pub mod repl_log;
pub mod replica_matches_master;
pub mod sentinel_failover_start;
pub mod sentinel_log;
pub mod sentinel_selection;
pub mod sentinel_switches;
pub mod sentinel_tilt;
pub mod sentinel_votes;
pub mod wait_bound;

/// A broken invariant, or a history a checker could not decide within its limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant: the checker's `INVARIANT` name, such as `"linearizable"`, or a sub-case
    /// such as `"linearizable/search-limit"` or `"history/well-formed"`.
    pub invariant: &'static str,
    /// What went wrong, with the witness: enough rendered operations to see the problem.
    /// May span several lines.
    pub message: String,
    /// The time by which the violation is evident (for example the completion of the operation
    /// that cannot be explained), when the checker can name one.
    pub at_ns: Option<u128>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at_ns {
            Some(at_ns) => write!(f, "invariant {} violated at {} ns: {}", self.invariant, at_ns, self.message),
            None => write!(f, "invariant {} violated: {}", self.invariant, self.message),
        }
    }
}

impl std::error::Error for Violation {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violation_display_names_invariant_and_time() {
        let violation = Violation { invariant: "linearizable", message: "stale read".to_string(), at_ns: Some(42) };
        assert_eq!(violation.to_string(), "invariant linearizable violated at 42 ns: stale read");
        let violation = Violation { at_ns: None, ..violation };
        assert_eq!(violation.to_string(), "invariant linearizable violated: stale read");
    }
}
