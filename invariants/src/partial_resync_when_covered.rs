//! partial-resync-when-covered.
//!
//! **Property.** A master answers `PSYNC <id> <offset>` with `+CONTINUE` exactly when it can
//! serve the gap from its backlog: the id is its current replication ID, or its previous one
//! (`replid2`) with `offset` not past the point where that history ended; and `offset` (the
//! next byte the replica wants) lies within the backlog, from its first byte to one past its
//! last. Otherwise, and always for the old `SYNC`, it answers `+FULLRESYNC`.
//!
//! Both directions matter: continuing without the bytes would hand the replica a stream with a
//! hole (caught later as divergence, if at all), and a full resync when the backlog covers the
//! gap costs a whole snapshot for nothing, which is what `repl-backlog-size` exists to avoid.
//!
//! **From Redis.** replication.c `masterTryPartialResynchronization`: the id check against
//! `server.replid`/`server.replid2` and `second_replid_offset`, then `psync_offset <
//! server.repl_backlog->offset || psync_offset > (server.repl_backlog->offset +
//! server.repl_backlog->histlen)` means a full resync.

use crate::repl_log::{PsyncServed, ReplEvent, ReplLog};
use crate::Violation;

pub const INVARIANT: &str = "partial-resync-when-covered";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub continued: u64,
    /// Full resyncs where the backlog could not serve the request.
    pub full_needed: u64,
}

/// Whether the master could have continued: the rule above, restated from Redis.
pub fn covered(p: &PsyncServed) -> bool {
    if p.legacy_sync {
        return false;
    }
    let history_known =
        p.asked_replid == p.replid || (p.asked_replid == p.replid2 && p.asked_offset <= p.second_offset);
    let in_backlog = p.backlog_histlen >= 0
        && p.asked_offset >= p.backlog_first_offset
        && p.asked_offset <= p.backlog_first_offset + p.backlog_histlen;
    history_known && in_backlog
}

pub fn check(log: &ReplLog) -> Result<Stats, Violation> {
    let mut stats = Stats::default();
    for n in &log.nodes {
        for e in &n.events {
            let ReplEvent::PsyncServed(p) = e else { continue };
            let could = covered(p);
            if p.continued != could {
                return Err(Violation {
                    invariant: INVARIANT,
                    message: format!(
                        "{} answered {} to PSYNC {} {} holding {} (replid2 {} until {}) and a backlog of {} bytes from {}",
                        n.node,
                        if p.continued { "+CONTINUE" } else { "+FULLRESYNC" },
                        p.asked_replid,
                        p.asked_offset,
                        p.replid,
                        p.replid2,
                        p.second_offset,
                        p.backlog_histlen,
                        p.backlog_first_offset
                    ),
                    at_ns: None,
                });
            }
            if could {
                stats.continued += 1;
            } else {
                stats.full_needed += 1;
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repl_log::NodeLog;

    fn served(asked_replid: &str, asked_offset: i64, continued: bool) -> PsyncServed {
        PsyncServed {
            replica: 1,
            asked_replid: asked_replid.into(),
            asked_offset,
            legacy_sync: false,
            replid: "new".into(),
            replid2: "old".into(),
            second_offset: 50,
            backlog_first_offset: 20,
            backlog_histlen: 60,
            continued,
        }
    }
    fn run(p: PsyncServed) -> Result<Stats, Violation> {
        check(&ReplLog { nodes: vec![NodeLog { node: "m".into(), events: vec![ReplEvent::PsyncServed(p)] }] })
    }

    #[test]
    fn the_rule_at_its_edges() {
        assert!(covered(&served("new", 20, true)), "the backlog's first byte");
        assert!(covered(&served("new", 80, true)), "one past the last byte: nothing to send");
        assert!(!covered(&served("new", 19, true)), "before the backlog");
        assert!(!covered(&served("new", 81, true)), "past the end");
        assert!(covered(&served("old", 50, true)), "the previous history up to where it ended");
        assert!(!covered(&served("old", 51, true)), "past the end of the previous history");
        assert!(!covered(&served("?", 20, true)));
        assert!(!covered(&PsyncServed { legacy_sync: true, ..served("new", 20, true) }));
        assert!(!covered(&PsyncServed { backlog_histlen: -1, ..served("new", 20, true) }), "no backlog");
    }

    #[test]
    fn both_wrong_answers_fail() {
        assert!(run(served("new", 30, true)).is_ok());
        assert!(run(served("new", 10, false)).is_ok());
        assert_eq!(run(served("new", 30, false)).unwrap_err().invariant, INVARIANT, "needless full resync");
        assert_eq!(run(served("new", 10, true)).unwrap_err().invariant, INVARIANT, "continue over a hole");
    }
}
