//! replica-matches-master-after-ack.
//!
//! **Property.** Whenever a replica reports that it applied (or acknowledged) its master's stream
//! up to offset X under replication ID R, its dataset digest equals the digest some master
//! reported when its own stream under R reached X. A pair with no master report at (R, X) is not
//! judged (a master reports every offset it feeds, so that only happens for offsets no master
//! of the run produced, such as those read back from a file).
//!
//! Equal digests at every offset both sides report make the replica's history a prefix of the
//! master's stream: a write applied twice or skipped changes the digest at the next offset.
//!
//! **From Redis.** A replica's `slave_repl_offset` and its `REPLCONF ACK` mean "I hold the
//! master's dataset as of this byte of its stream"; `WAIT` and `min-replicas-to-write` are built
//! on that promise (replication.c: `replicationSendAck`, `processCommand`'s offset accounting).

use std::collections::BTreeMap;

use crate::repl_log::{short, Digest, ReplEvent, ReplLog};
use crate::Violation;

pub const INVARIANT: &str = "replica-matches-master-after-ack";
/// Bounds the master index (distinct (id, offset) pairs a run may report).
pub const FED_POINTS_MAX: usize = 10_000_000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Replica reports compared with a master's digest.
    pub checked: u64,
}

pub fn check(log: &ReplLog) -> Result<Stats, Violation> {
    let mut fed: BTreeMap<(&str, i64), (&str, &Digest)> = BTreeMap::new();
    for n in &log.nodes {
        for e in &n.events {
            if let ReplEvent::Fed { replid, offset, digest } = e {
                if fed.len() >= FED_POINTS_MAX {
                    return Err(Violation {
                        invariant: "replica-matches-master-after-ack/limit",
                        message: format!("more than {FED_POINTS_MAX} fed offsets"),
                        at_ns: None,
                    });
                }
                fed.insert((replid.as_str(), *offset), (n.node.as_str(), digest));
            }
        }
    }
    let mut stats = Stats::default();
    for n in &log.nodes {
        for e in &n.events {
            let (ReplEvent::Applied { replid, offset, digest } | ReplEvent::Acked { replid, offset, digest }) = e
            else {
                continue;
            };
            let Some((master, want)) = fed.get(&(replid.as_str(), *offset)) else { continue };
            if *want != digest {
                return Err(Violation {
                    invariant: INVARIANT,
                    message: format!(
                        "{} at offset {offset} of {replid} has digest {} but {master} had {} there",
                        n.node,
                        short(digest),
                        short(want)
                    ),
                    at_ns: None,
                });
            }
            stats.checked += 1;
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repl_log::NodeLog;

    fn log(master: Vec<ReplEvent>, replica: Vec<ReplEvent>) -> ReplLog {
        ReplLog {
            nodes: vec![NodeLog { node: "m".into(), events: master }, NodeLog { node: "r".into(), events: replica }],
        }
    }
    fn fed(offset: i64, d: u64) -> ReplEvent {
        ReplEvent::Fed { replid: "a".into(), offset, digest: [d, 0, 0] }
    }
    fn applied(offset: i64, d: u64) -> ReplEvent {
        ReplEvent::Applied { replid: "a".into(), offset, digest: [d, 0, 0] }
    }

    #[test]
    fn a_replica_following_the_stream_passes() {
        let l = log(vec![fed(10, 1), fed(20, 2)], vec![applied(10, 1), applied(20, 2)]);
        assert_eq!(check(&l).unwrap().checked, 2);
    }

    #[test]
    fn a_skipped_or_repeated_write_fails() {
        // The replica's digest at 20 is the master's at 10: the write between was skipped.
        let l = log(vec![fed(10, 1), fed(20, 2)], vec![applied(10, 1), applied(20, 1)]);
        assert_eq!(check(&l).unwrap_err().invariant, INVARIANT);
    }

    #[test]
    fn offsets_under_another_id_are_not_compared() {
        let other = ReplEvent::Applied { replid: "b".into(), offset: 10, digest: [9, 0, 0] };
        assert_eq!(check(&log(vec![fed(10, 1)], vec![other])).unwrap().checked, 0);
    }
}
