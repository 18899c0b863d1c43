//! acked-writes-kept: what a failover configuration loses, measured from what clients saw.
//!
//! **Property measured.** A client writes unique keys `w:<n>` = `n`, each once, to whichever
//! server Sentinel names as master, and records the writes it saw acknowledged (`+OK`, and for
//! the WAIT configurations `WAIT` answering at least the replicas asked for). After the faults
//! end and the group converges, the client reads every acknowledged key from the converged
//! master. An acknowledged key that is missing is **lost**; one whose value is not `n` is
//! **corrupt** (a violation under every configuration: replication and failover may drop a
//! suffix of history, never invent data).
//!
//! Loss is measured, not judged: asynchronous replication with Sentinel promises nothing more
//! (Redis's docs: "last failover wins"; Jepsen 2013 lost most acknowledged writes under a
//! partition). Where a configuration promises more, the caller judges the figure (the
//! `aof-durability` checker for `appendfsync always` on one crashed node).
//!
//! The input is plain data, the same for a simulated run and for real processes: the
//! `durability history v1` text format ([`History::parse`]), which `ci/durability-real` writes
//! for redis-server and for ours, and which the simulator's scenarios build in memory.

use std::collections::BTreeMap;

use crate::Violation;

pub const INVARIANT: &str = "acked-writes-kept";
/// A history file is read whole: at most this many acknowledged writes.
pub const WRITES_MAX: usize = 10_000_000;

/// One run: the writes acknowledged, what the end read back, and the time without a
/// successful write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub configuration: String,
    pub implementation: String,
    /// Acknowledged writes by number.
    pub acked: Vec<u64>,
    /// What the final read returned for each acknowledged number (None: the key is missing).
    pub read_back: BTreeMap<u64, Option<String>>,
    pub unavailable_ms: u64,
    /// The group never converged (no final read; loss not measurable).
    pub stuck: bool,
}

/// The figure for one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loss {
    pub acked: u64,
    pub lost: u64,
    /// Up to ten lost write numbers, for the report.
    pub lost_sample: Vec<u64>,
}

/// Counts lost writes; a corrupt value, or an acknowledged write never read back, is a
/// violation (the harness must read every acknowledged key).
pub fn measure(h: &History) -> Result<Loss, Violation> {
    let mut loss = Loss { acked: h.acked.len() as u64, ..Loss::default() };
    if h.stuck {
        return Ok(Loss { acked: loss.acked, ..Loss::default() });
    }
    for &n in &h.acked {
        match h.read_back.get(&n) {
            None => return Err(violation(format!("acknowledged write w:{n} was never read back"))),
            Some(None) => {
                loss.lost = loss.lost.saturating_add(1);
                if loss.lost_sample.len() < 10 {
                    loss.lost_sample.push(n);
                }
            }
            Some(Some(v)) if *v == n.to_string() => {}
            Some(Some(v)) => return Err(violation(format!("w:{n} holds {v:?}, not the acknowledged {n}"))),
        }
    }
    debug_assert!(loss.lost <= loss.acked);
    Ok(loss)
}

fn violation(message: String) -> Violation {
    Violation { invariant: INVARIANT, message, at_ns: None }
}

impl History {
    /// Parses the `durability history v1` format: one record per line,
    /// `configuration <text>`, `implementation <text>`, `ack <n>`, `read <n> <value>` or
    /// `read <n> -` (missing), `unavailable_ms <ms>`, `stuck`; blank lines and `#` comments
    /// are skipped. Unknown records are errors, so a harness and this reader cannot drift.
    pub fn parse(text: &str) -> Result<History, String> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some("durability history v1") {
            return Err("not a `durability history v1` file".into());
        }
        let mut h = History::default();
        for (i, line) in lines.enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let (record, rest) = line.split_once(' ').unwrap_or((line, ""));
            let number = |s: &str| s.parse::<u64>().map_err(|_| format!("line {}: bad number {s:?}", i + 2));
            match record {
                "configuration" => h.configuration = rest.to_string(),
                "implementation" => h.implementation = rest.to_string(),
                "ack" if h.acked.len() < WRITES_MAX => h.acked.push(number(rest)?),
                "ack" => return Err(format!("more than {WRITES_MAX} acknowledged writes")),
                "read" => {
                    let (n, v) = rest.split_once(' ').ok_or_else(|| format!("line {}: read without a value", i + 2))?;
                    h.read_back.insert(number(n)?, (v != "-").then(|| v.to_string()));
                }
                "unavailable_ms" => h.unavailable_ms = number(rest)?,
                "stuck" => h.stuck = true,
                _ => return Err(format!("line {}: unknown record {record:?}", i + 2)),
            }
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> History {
        History::parse(text).expect("parses")
    }

    #[test]
    fn missing_keys_are_lost_and_present_ones_kept() {
        let h = parse("durability history v1\nconfiguration x\nack 1\nack 2\nack 3\nread 1 1\nread 2 -\nread 3 3\n");
        let loss = measure(&h).expect("no violation");
        assert_eq!((loss.acked, loss.lost, loss.lost_sample), (3, 1, vec![2]));
    }

    #[test]
    fn a_wrong_value_or_an_unread_write_is_a_violation() {
        let corrupt = parse("durability history v1\nack 1\nread 1 7\n");
        assert!(measure(&corrupt).unwrap_err().message.contains("holds"));
        let unread = parse("durability history v1\nack 1\n");
        assert!(measure(&unread).unwrap_err().message.contains("never read back"));
    }

    #[test]
    fn a_stuck_run_measures_no_loss_and_unknown_records_are_refused() {
        let h = parse("durability history v1\nack 1\nstuck\n");
        assert_eq!(measure(&h).expect("ok").lost, 0);
        assert!(History::parse("durability history v1\nbogus 1\n").is_err());
        assert!(History::parse("something else\n").is_err());
    }
}
