//! Per-sentinel logs of the events a sentinel published (`+vote-for-leader`, `+odown`, ...),
//! the facts it recorded for checkers (`~elected <master> <epoch>`, `~switch <master> <epoch>
//! <addr>`, `~config-saved <file text>`), and the crashes the harness caused: the input of
//! [`crate::sentinel_votes`], [`crate::sentinel_switches`] and [`crate::sentinel_failover_start`].
//!
//! The harness records these as they happen, stamped with the simulated clock; crashes are
//! the harness's own knowledge (it killed the node), never the sentinel's.

/// One entry of a sentinel's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SentinelEntry {
    /// An event or fact: its channel name (`+sdown`, `~elected`) and text.
    Event { kind: String, text: String },
    /// The harness killed the node here, at `at_ns`; what it had not written to disk is gone.
    Crash { at_ns: u128 },
    /// The harness restarted the node here.
    Restart,
    /// The harness moved the node's clock by `ms` here, at `at_ns` of simulated time.
    ClockJump { ms: i64, at_ns: u128 },
    /// The harness paused (true) or resumed (false) the node here, at `at_ns`.
    Paused { paused: bool, at_ns: u128 },
}

/// One sentinel's log, in order, with simulated times in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SentinelLog {
    pub node: String,
    pub entries: Vec<(u128, SentinelEntry)>,
}

/// At most this many entries per log are judged (a longer log is a violation of its own).
pub const ENTRIES_MAX: usize = 1_000_000;

impl SentinelLog {
    /// The events of one kind, with their texts and times.
    pub fn events<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (u128, &'a str)> + 'a {
        self.entries.iter().filter_map(move |(t, e)| match e {
            SentinelEntry::Event { kind: k, text } if k == kind => Some((*t, text.as_str())),
            _ => None,
        })
    }
}

/// The `n`-th space-separated word of an event text, parsed.
pub fn word<T: std::str::FromStr>(text: &str, n: usize) -> Option<T> {
    text.split(' ').nth(n)?.parse().ok()
}
