//! sentinel-failover-needs-odown.
//!
//! **Property.** A sentinel starts a failover (`+try-failover`) only while it holds the master
//! objectively down: its last `+odown`/`-odown` event for that master before the
//! `+try-failover` is `+odown` (no operator SENTINEL FAILOVER runs in the harness). And ODOWN
//! itself needs the quorum: the `+odown` text ends with `#quorum <n>/<q>` with `n >= q`.
//!
//! **From Redis.** `sentinelStartFailoverIfNeeded` returns at once unless `SRI_O_DOWN`;
//! `sentinelCheckObjectivelyDown` sets it when the sentinels reporting the master down, itself
//! included, reach the quorum (sentinel.c).

use std::collections::BTreeMap;

use crate::sentinel_log::{word, SentinelEntry, SentinelLog};
use crate::Violation;

pub const INVARIANT: &str = "sentinel-failover-needs-odown";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub failovers_started: u64,
}

pub fn check(logs: &[SentinelLog]) -> Result<Stats, Violation> {
    let mut stats = Stats::default();
    for log in logs {
        let mut odown: BTreeMap<String, bool> = BTreeMap::new();
        for (t, e) in &log.entries {
            let SentinelEntry::Event { kind, text } = e else {
                // A restart forgets ODOWN (a clock jump changes nothing here).
                if matches!(e, SentinelEntry::Crash { .. } | SentinelEntry::Restart) {
                    odown.clear();
                }
                continue;
            };
            let master: Option<String> = word(text, 1);
            match kind.as_str() {
                "+odown" => {
                    let counts = text.rsplit_once("#quorum ").and_then(|(_, q)| q.split_once('/'));
                    let reached =
                        counts.and_then(|(n, q)| Some(n.parse::<u64>().ok()? >= q.trim().parse::<u64>().ok()?));
                    if reached != Some(true) {
                        return Err(Violation {
                            invariant: INVARIANT,
                            message: format!("{}: +odown without quorum: {text}", log.node),
                            at_ns: Some(*t),
                        });
                    }
                    odown.insert(master.unwrap_or_default(), true);
                }
                "-odown" => {
                    odown.insert(master.unwrap_or_default(), false);
                }
                "+try-failover" => {
                    stats.failovers_started += 1;
                    if !odown.get(&master.clone().unwrap_or_default()).copied().unwrap_or(false) {
                        return Err(Violation {
                            invariant: INVARIANT,
                            message: format!(
                                "{} started a failover of {} without ODOWN",
                                log.node,
                                master.unwrap_or_default()
                            ),
                            at_ns: Some(*t),
                        });
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

    fn ev(kind: &str, text: &str) -> (u128, SentinelEntry) {
        (0, SentinelEntry::Event { kind: kind.into(), text: text.into() })
    }

    #[test]
    fn try_failover_needs_odown() {
        let ok = SentinelLog {
            node: "s".into(),
            entries: vec![
                ev("+odown", "master m 1.2.3.4 6379 #quorum 2/2"),
                ev("+try-failover", "master m 1.2.3.4 6379"),
            ],
        };
        assert_eq!(check(&[ok]).unwrap().failovers_started, 1);
        let early = SentinelLog { node: "s".into(), entries: vec![ev("+try-failover", "master m 1.2.3.4 6379")] };
        assert!(check(&[early]).is_err());
        let short = SentinelLog { node: "s".into(), entries: vec![ev("+odown", "master m 1.2.3.4 6379 #quorum 1/2")] };
        assert!(check(&[short]).is_err());
    }
}
