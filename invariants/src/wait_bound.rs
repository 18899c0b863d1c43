//! wait-never-overcounts.
//!
//! **Property.** When `WAIT numreplicas timeout` returns n for a client whose writes reach
//! offset T in the master's stream, at least n distinct replica connections had acknowledged
//! an offset of at least T by then (in the master's own log of ACKs received, in order).
//!
//! A replica that continued with `PSYNC <id> X` holds everything before X from the moment it
//! attaches, so it counts as having acknowledged X-1 then; and a WAIT for offset 0 (a client
//! that wrote nothing) waits for nothing, so any replica satisfies it, as in Redis.
//!
//! The count here includes connections that acknowledged and later went away, so it can only
//! be higher than the master's own count of attached replicas: the check never blames a
//! correct WAIT, and catches one that counts a replica that never acknowledged.
//!
//! **From Redis.** `WAIT` replies with `replicationCountAcksByOffset(c->woff)`, the replicas
//! whose `repl_ack_off` is at least the client's write offset (replication.c `waitCommand`).

use std::collections::BTreeMap;

use crate::repl_log::{ReplEvent, ReplLog};
use crate::Violation;

pub const INVARIANT: &str = "wait-never-overcounts";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub waits: u64,
    /// WAITs that reported at least one replica.
    pub waits_acknowledged: u64,
}

pub fn check(log: &ReplLog) -> Result<Stats, Violation> {
    let mut stats = Stats::default();
    for n in &log.nodes {
        // Highest offset each replica connection acknowledged so far.
        let mut acked: BTreeMap<u64, i64> = BTreeMap::new();
        for e in &n.events {
            match e {
                ReplEvent::AckReceived { replica, offset } => {
                    let best = acked.entry(*replica).or_insert(*offset);
                    *best = (*best).max(*offset);
                }
                ReplEvent::PsyncServed(p) if p.continued => {
                    let best = acked.entry(p.replica).or_insert(p.asked_offset - 1);
                    *best = (*best).max(p.asked_offset - 1);
                }
                ReplEvent::PsyncServed(p) => {
                    acked.entry(p.replica).or_insert(0);
                }
                ReplEvent::WaitReplied { target_offset, reported } => {
                    let have = acked.values().filter(|o| **o >= *target_offset).count();
                    if *reported > have {
                        return Err(Violation {
                            invariant: INVARIANT,
                            message: format!(
                                "{}: WAIT for offset {target_offset} reported {reported} replicas, but only {have} had acknowledged it",
                                n.node
                            ),
                            at_ns: None,
                        });
                    }
                    stats.waits += 1;
                    if *reported > 0 {
                        stats.waits_acknowledged += 1;
                    }
                }
                _ => {}
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repl_log::NodeLog;

    fn run(events: Vec<ReplEvent>) -> Result<Stats, Violation> {
        check(&ReplLog { nodes: vec![NodeLog { node: "m".into(), events }] })
    }

    #[test]
    fn counts_only_acknowledgements_that_reach_the_target() {
        let ack = |replica, offset| ReplEvent::AckReceived { replica, offset };
        let wait = |target_offset, reported| ReplEvent::WaitReplied { target_offset, reported };
        assert!(run(vec![ack(1, 100), ack(2, 90), wait(95, 1)]).is_ok());
        assert!(run(vec![ack(1, 100), ack(2, 90), wait(95, 2)]).is_err(), "replica 2 is behind");
        assert!(run(vec![wait(95, 1), ack(1, 100)]).is_err(), "the ACK came after the reply");
        assert!(run(vec![ack(1, 100), ack(1, 200), wait(150, 1)]).is_ok(), "the highest ACK counts");
        assert_eq!(run(vec![wait(10, 0)]).unwrap(), Stats { waits: 1, waits_acknowledged: 0 });
    }

    #[test]
    fn attaching_counts_as_acknowledging_what_the_replica_already_holds() {
        let psync = |replica, asked_offset, continued| {
            ReplEvent::PsyncServed(crate::repl_log::PsyncServed {
                replica,
                asked_replid: "a".into(),
                asked_offset,
                legacy_sync: false,
                replid: "a".into(),
                replid2: "b".into(),
                second_offset: -1,
                backlog_first_offset: 1,
                backlog_histlen: 100,
                continued,
            })
        };
        let wait = |target_offset, reported| ReplEvent::WaitReplied { target_offset, reported };
        assert!(run(vec![psync(1, 51, true), wait(50, 1)]).is_ok(), "continued from 51: holds 50");
        assert!(run(vec![psync(1, 51, true), wait(51, 1)]).is_err());
        assert!(run(vec![psync(1, -1, false), wait(0, 1)]).is_ok(), "a client that wrote nothing");
        assert!(run(vec![psync(1, -1, false), wait(1, 1)]).is_err(), "a full sync acknowledges nothing yet");
    }
}
