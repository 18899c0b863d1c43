//! sentinel-promotes-best-replica.
//!
//! **Property.** When a leader selects a replica to promote (`~selected <master> <name>
//! <candidates>`, the candidates as `name:priority:offset:runid` after Redis's exclusions), the
//! one selected comes first in Redis's order: lowest priority, then highest replication offset,
//! then smallest run id. The candidates are what the replicas reported in INFO; this checker
//! re-derives the choice from them rather than trusting it.
//!
//! **From Redis.** `sentinelSelectSlave` sorts with `compareSlavesForPromotion` (sentinel.c).

use crate::sentinel_log::SentinelLog;
use crate::Violation;

pub const INVARIANT: &str = "sentinel-promotes-best-replica";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Selections among two or more candidates (the only ones that test the order).
    pub selections: u64,
}

pub fn check(logs: &[SentinelLog]) -> Result<Stats, Violation> {
    let mut stats = Stats::default();
    for log in logs {
        for (t, text) in log.events("~selected") {
            let mut words = text.split(' ');
            let (Some(_master), Some(selected), Some(list)) = (words.next(), words.next(), words.next()) else {
                continue;
            };
            let mut candidates: Vec<(i64, std::cmp::Reverse<u64>, String, String)> = list
                .split(',')
                .filter_map(|c| {
                    let p: Vec<&str> = c.rsplitn(4, ':').collect();
                    // rsplitn gives runid, offset, priority, name.
                    let [runid, offset, priority, name] = p[..] else { return None };
                    let runid = if runid.is_empty() { "\u{10ffff}".to_string() } else { runid.to_ascii_lowercase() };
                    Some((priority.parse().ok()?, std::cmp::Reverse(offset.parse().ok()?), runid, name.to_string()))
                })
                .collect();
            candidates.sort();
            if candidates.len() > 1 {
                stats.selections += 1;
            }
            if let Some(best) = candidates.first() {
                if best.3 != selected {
                    return Err(Violation {
                        invariant: INVARIANT,
                        message: format!("{} selected {selected}, but {} is better among {list}", log.node, best.3),
                        at_ns: Some(t),
                    });
                }
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentinel_log::SentinelEntry;

    fn sel(text: &str) -> SentinelLog {
        SentinelLog {
            node: "s".into(),
            entries: vec![(0, SentinelEntry::Event { kind: "~selected".into(), text: text.into() })],
        }
    }

    #[test]
    fn highest_offset_wins_at_equal_priority() {
        assert!(check(&[sel("m 10.0.0.2:6379 10.0.0.2:6379:100:50:a,10.0.0.3:6379:100:40:b")]).is_ok());
        assert!(check(&[sel("m 10.0.0.3:6379 10.0.0.2:6379:100:50:a,10.0.0.3:6379:100:40:b")]).is_err());
        // Priority first.
        assert!(check(&[sel("m 10.0.0.3:6379 10.0.0.2:6379:100:50:a,10.0.0.3:6379:10:40:b")]).is_ok());
    }
}
