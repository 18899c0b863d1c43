//! Splitting a history at server restarts, so that each epoch is judged from the state the
//! restart promises.
//!
//! # The property
//!
//! With restarts at times `r_1 < r_2 < ... < r_k`, epoch `e` (0-based) spans `[r_e, r_{e+1})`
//! (with `r_0` = the beginning of time and `r_{k+1}` = +infinity). The history is correct when
//! each epoch's sub-history, [`split_at_restarts`], is linearizable
//! ([`crate::linearizable`]) starting from an empty dataset; [`check_epochs`] checks exactly
//! that.
//!
//! - An operation belongs to the epoch in which it was *invoked* (`r_e <= invoke_ns <
//!   r_{e+1}`): a restart closes every connection, so a request sent to one incarnation of the
//!   server is never executed by the next. (A client that retries after reconnecting must
//!   record the retry as a new operation.)
//! - An operation invoked before a restart that did not complete before it (`complete_ns >=
//!   r_{e+1}`, or no reply at all) becomes [`Outcome::Unknown`] in its epoch: the old incarnation
//!   may or may not have executed it before dying, and a reply stamped at or after the restart
//!   cannot have come from it. Unknown is the permissive choice, so this never causes a false
//!   alarm. The exception is [`Outcome::Fail`]: an error reply says the operation was not
//!   applied whichever incarnation sent it, so it stays a failure.
//!
//! # Where it comes from
//!
//! With persistence off (`save ""` and `appendonly no`), Redis promises nothing across a
//! restart: the new process starts with an empty dataset. Checking the whole history as one
//! would then report every read after a restart that misses an earlier write as a stale read;
//! checking each epoch from empty is exactly the promise. When RDB persistence lands, an epoch
//! will start from the dataset the restart loaded instead, through
//! [`crate::linearizable::check_from`]'s `initial` state.

use std::collections::BTreeMap;

use crate::history::{History, Outcome};
use crate::linearizable::{self, CheckStats, SEARCH_STEPS_MAX};
use crate::Violation;

/// At most this many restarts in one history: each gives an epoch, and each epoch a history.
pub const RESTARTS_MAX: usize = 1 << 16;

/// Splits `history` into `restarts_ns.len() + 1` epochs, the ops of epoch `e` being those
/// invoked in `[restarts_ns[e - 1], restarts_ns[e])`; see the module docs for the outcomes of
/// ops that span a restart. Ops keep their ids; each epoch keeps the history's order of ops.
///
/// `restarts_ns` must be strictly increasing and at most [`RESTARTS_MAX`] long.
pub fn split_at_restarts(history: &History, restarts_ns: &[u128]) -> Vec<History> {
    assert!(
        restarts_ns.len() <= RESTARTS_MAX,
        "{} restarts, more than RESTARTS_MAX = {RESTARTS_MAX}",
        restarts_ns.len()
    );
    assert!(
        restarts_ns.windows(2).all(|pair| pair[0] < pair[1]),
        "restart times must be strictly increasing: {restarts_ns:?}"
    );
    let mut epochs = vec![History::new(); restarts_ns.len() + 1];
    for op in &history.ops {
        let epoch = restarts_ns.partition_point(|&restart_ns| restart_ns <= op.invoke_ns);
        let mut op = op.clone();
        if let Some(&restart_ns) = restarts_ns.get(epoch) {
            assert!(op.invoke_ns < restart_ns);
            let spans_restart = op.complete_ns.is_none_or(|complete_ns| complete_ns >= restart_ns);
            if spans_restart && op.outcome != Outcome::Fail {
                op.outcome = Outcome::Unknown;
                op.complete_ns = None;
            }
        }
        if epoch > 0 {
            assert!(restarts_ns[epoch - 1] <= op.invoke_ns);
        }
        epochs[epoch].ops.push(op);
    }
    assert_eq!(epochs.iter().map(|epoch| epoch.ops.len()).sum::<usize>(), history.ops.len());
    epochs
}

/// Checks that each epoch of `history` (split at `restarts_ns`, see [`split_at_restarts`]) is
/// linearizable from an empty dataset. The search budget, [`SEARCH_STEPS_MAX`], is shared by
/// all epochs. A key used in several epochs counts once per epoch in `keys_checked`.
pub fn check_epochs(history: &History, restarts_ns: &[u128]) -> Result<CheckStats, Violation> {
    history.validate()?;
    let epochs = split_at_restarts(history, restarts_ns);
    let mut stats = CheckStats::default();
    for (index, epoch) in epochs.iter().enumerate() {
        assert!(stats.search_steps <= SEARCH_STEPS_MAX);
        let budget = SEARCH_STEPS_MAX - stats.search_steps;
        match linearizable::check_with_budget(epoch, &BTreeMap::new(), budget) {
            Ok(epoch_stats) => {
                stats.keys_checked += epoch_stats.keys_checked;
                stats.ops_checked += epoch_stats.ops_checked;
                stats.search_steps += epoch_stats.search_steps;
            }
            Err(violation) => {
                let start = match index {
                    0 => "the start".to_string(),
                    _ => format!("the restart at {} ns", restarts_ns[index - 1]),
                };
                let end = match restarts_ns.get(index) {
                    Some(restart_ns) => format!("the restart at {restart_ns} ns"),
                    None => "the end".to_string(),
                };
                return Err(Violation {
                    message: format!(
                        "epoch {index} of {} (from {start} to {end}, checked from an empty \
                         dataset): {}",
                        epochs.len(),
                        violation.message
                    ),
                    ..violation
                });
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::build::*;
    use crate::history::{Op, Ret};
    use crate::linearizable::tests::{execute_with_restarts, plan_strategy, NEVER_WRITTEN};
    use proptest::prelude::*;

    fn ids(history: &History) -> Vec<u64> {
        history.ops.iter().map(|op| op.id).collect()
    }

    #[test]
    fn no_restarts_is_one_epoch_unchanged() {
        let history = history(vec![set("x", 1, 0, 10), unknown(get("x", None, 5, 5))]);
        assert_eq!(split_at_restarts(&history, &[]), vec![history]);
    }

    #[test]
    fn ops_belong_to_the_epoch_they_were_invoked_in() {
        let history = history(vec![
            set("x", 1, 0, 10),
            get("x", Some(1), 99, 99),
            get("x", None, 100, 110),
            get("x", None, 150, 160),
            get("x", None, 300, 310),
        ]);
        let epochs = split_at_restarts(&history, &[100, 200, 250]);
        assert_eq!(epochs.len(), 4);
        assert_eq!(ids(&epochs[0]), [1, 2]);
        // Invoked at the restart instant: the new incarnation's.
        assert_eq!(ids(&epochs[1]), [3, 4]);
        assert_eq!(ids(&epochs[2]), Vec::<u64>::new());
        assert_eq!(ids(&epochs[3]), [5]);
        // Nothing spanned a restart, so nothing changed.
        let rejoined: Vec<&Op> = epochs.iter().flat_map(|epoch| &epoch.ops).collect();
        assert_eq!(rejoined, history.ops.iter().collect::<Vec<_>>());
    }

    #[test]
    fn ops_spanning_a_restart_become_unknown() {
        let history = history(vec![
            set("x", 1, 0, 150),
            set("x", 2, 10, 100),
            unknown(set("x", 3, 20, 20)),
            failed(set("x", 4, 30, 150)),
            set("x", 5, 40, 99),
        ]);
        let epochs = split_at_restarts(&history, &[100]);
        let outcomes: Vec<(Outcome, Option<u128>)> =
            epochs[0].ops.iter().map(|op| (op.outcome, op.complete_ns)).collect();
        assert_eq!(
            outcomes,
            [
                (Outcome::Unknown, None),
                // A reply at the restart instant cannot be trusted to predate it.
                (Outcome::Unknown, None),
                (Outcome::Unknown, None),
                (Outcome::Fail, Some(150)),
                (Outcome::Ok(Ret::Done), Some(99)),
            ]
        );
        assert!(epochs[1].ops.is_empty());
    }

    #[test]
    #[should_panic(expected = "strictly increasing")]
    fn restarts_out_of_order_are_a_caller_bug() {
        split_at_restarts(&History::new(), &[200, 100]);
    }

    #[test]
    fn each_epoch_starts_empty() {
        let history = history(vec![
            set("x", 1, 0, 10),
            incr("n", 1, 1, 0, 10),
            get("x", None, 200, 210),
            incr("n", 1, 1, 200, 210),
        ]);
        // As one epoch: both reads after the restart look like lost writes.
        assert!(linearizable::check(&history).is_err());
        let stats = check_epochs(&history, &[100]).expect("each epoch from empty");
        assert_eq!(stats.keys_checked, 4);
        assert_eq!(stats.ops_checked, 4);
    }

    #[test]
    fn data_surviving_a_restart_fails_naming_the_epoch() {
        let history = history(vec![set("x", 1, 0, 10), get("x", Some(1), 200, 210)]);
        assert!(linearizable::check(&history).is_ok());
        let violation = check_epochs(&history, &[100]).expect_err("x survived the restart");
        assert_eq!(violation.invariant, linearizable::INVARIANT);
        assert_eq!(violation.at_ns, Some(210));
        assert!(violation.message.starts_with("epoch 1 of 2 (from the restart at 100 ns to the end"), "{violation}");
    }

    #[test]
    fn write_spanning_a_restart_may_or_may_not_have_applied() {
        for seen in [None, Some(1)] {
            let history = history(vec![set("x", 1, 0, 150), get("x", seen, 50, 60)]);
            assert!(check_epochs(&history, &[100]).is_ok());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn executions_with_restarts_pass_epoch_by_epoch(
            plan in plan_strategy(),
            restart_before in prop::collection::vec(prop::bool::weighted(0.1), 40),
        ) {
            let (history, restarts_ns) = execute_with_restarts(&plan, &restart_before);
            if let Err(violation) = check_epochs(&history, &restarts_ns) {
                return Err(TestCaseError::fail(format!("{violation}\n{}", history.render())));
            }
        }

        #[test]
        fn a_read_of_a_never_written_value_is_caught_in_its_epoch(
            plan in plan_strategy(),
            restart_before in prop::collection::vec(prop::bool::weighted(0.1), 40),
            pick in any::<prop::sample::Index>(),
        ) {
            let (mut history, restarts_ns) = execute_with_restarts(&plan, &restart_before);
            let epochs = split_at_restarts(&history, &restarts_ns);
            // Only reads that keep their reply after the split still constrain anything.
            let reads: Vec<u64> = epochs
                .iter()
                .flat_map(|epoch| &epoch.ops)
                .filter(|op| matches!(op.outcome, Outcome::Ok(Ret::Value(_))))
                .map(|op| op.id)
                .collect();
            prop_assume!(!reads.is_empty());
            let read = reads[pick.index(reads.len())];
            let op = history.ops.iter_mut().find(|op| op.id == read).expect("a read");
            op.outcome = Outcome::Ok(Ret::Value(Some(NEVER_WRITTEN)));
            let violation = check_epochs(&history, &restarts_ns).expect_err("corrupted read");
            prop_assert_eq!(violation.invariant, linearizable::INVARIANT);
        }
    }
}
