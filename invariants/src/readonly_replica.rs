//! no-write-on-read-only-replica.
//!
//! **Property.** Every write command a client sent to a replica with `replica-read-only yes`
//! (the default) that got a reply got `-READONLY`; none was applied. (A write that got no reply,
//! a timeout or a dropped connection, is not judged: it may not have arrived.)
//!
//! **From Redis.** `processCommand` rejects commands flagged as writes from ordinary clients
//! when `server.masterhost && server.repl_slave_ro` with "-READONLY You can't write against a
//! read only replica."

use crate::Violation;

pub const INVARIANT: &str = "no-write-on-read-only-replica";

/// A write sent to a read-only replica, and the reply it got (RESP rendered as text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaWrite {
    pub node: String,
    pub command: String,
    pub reply: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub refused: u64,
}

pub fn check(writes: &[ReplicaWrite]) -> Result<Stats, Violation> {
    let mut stats = Stats::default();
    for w in writes {
        if !w.reply.starts_with("-READONLY") {
            return Err(Violation {
                invariant: INVARIANT,
                message: format!("{} on read-only replica {} got {}", w.command, w.node, w.reply),
                at_ns: None,
            });
        }
        stats.refused += 1;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_readonly_refusals_pass() {
        let w = |reply: &str| ReplicaWrite { node: "r".into(), command: "SET k v".into(), reply: reply.into() };
        assert_eq!(check(&[w("-READONLY You can't write against a read only replica.")]).unwrap().refused, 1);
        assert!(check(&[w("+OK")]).is_err());
        assert!(check(&[w("-ERR something else")]).is_err(), "another error is not the promised refusal");
    }
}
