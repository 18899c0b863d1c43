//! min-replicas-to-write.
//!
//! **Property.** Every write the master accepted while `min-replicas-to-write N` was set had at
//! least N good replicas (acknowledged within `min-replicas-max-lag`) by the master's own count
//! at that moment, and every write it refused with `-NOREPLICAS` had fewer.
//!
//! **From Redis.** `processCommand` refuses writes when `server.repl_good_slaves_count <
//! server.repl_min_slaves_to_write` (replication.c `refreshGoodSlavesCount`); Redis documents
//! this as a bound on the window of lost writes, not a guarantee (see the project's notes on
//! what Redis replication does not promise). What the server can promise is to apply its own
//! rule exactly, and that is what is checked.

use crate::repl_log::{ReplEvent, ReplLog};
use crate::Violation;

pub const INVARIANT: &str = "min-replicas-to-write";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub accepted: u64,
    pub refused: u64,
}

pub fn check(log: &ReplLog) -> Result<Stats, Violation> {
    let mut stats = Stats::default();
    for n in &log.nodes {
        for e in &n.events {
            let ReplEvent::WriteGate { accepted, good, needed } = e else { continue };
            if *accepted != (*good >= *needed) {
                return Err(Violation {
                    invariant: INVARIANT,
                    message: format!(
                        "{} {} a write with {good} good replicas of {needed} needed",
                        n.node,
                        if *accepted { "accepted" } else { "refused" }
                    ),
                    at_ns: None,
                });
            }
            if *accepted {
                stats.accepted += 1;
            } else {
                stats.refused += 1;
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repl_log::NodeLog;

    fn gate(accepted: bool, good: usize) -> ReplLog {
        let events = vec![ReplEvent::WriteGate { accepted, good, needed: 1 }];
        ReplLog { nodes: vec![NodeLog { node: "m".into(), events }] }
    }

    #[test]
    fn decisions_follow_the_count() {
        assert_eq!(check(&gate(true, 1)).unwrap(), Stats { accepted: 1, refused: 0 });
        assert_eq!(check(&gate(false, 0)).unwrap(), Stats { accepted: 0, refused: 1 });
    }

    #[test]
    fn accepting_with_too_few_or_refusing_with_enough_fails() {
        assert!(check(&gate(true, 0)).is_err());
        assert!(check(&gate(false, 2)).is_err());
    }
}
