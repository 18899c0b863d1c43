//! sentinel-config-epochs-agree.
//!
//! **Property.** Every switch of a master's address a sentinel makes (`~switch <master>
//! <config_epoch> <addr>`, logged when it leads a failover to its end and when it adopts a
//! newer configuration from a hello) carries a configuration epoch; across all sentinels, one
//! epoch names one address (two different addresses under one epoch would be two masters with
//! equal claims), and each sentinel's switches of a master have strictly increasing epochs (a
//! sentinel never goes back to an older configuration). Across a crash, the epochs it had
//! written to its config file (`~config-saved`) are the ones it must stay above; a change lost
//! with the crash (an fsync error) may be learnt again.
//!
//! **From Redis.** The leader sets `master->config_epoch = failover_epoch` when the promoted
//! replica reports master, an epoch won by at most one leader; other sentinels adopt a hello's
//! configuration only if `master->config_epoch < master_config_epoch` (sentinel.c
//! `sentinelProcessHelloMessage`).

use std::collections::BTreeMap;

use crate::sentinel_log::{word, SentinelEntry, SentinelLog};
use crate::Violation;

pub const INVARIANT: &str = "sentinel-config-epochs-agree";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub switches: u64,
    /// The newest configuration per master: (epoch, address).
    pub newest: BTreeMap<String, (u64, String)>,
}

pub fn check(logs: &[SentinelLog]) -> Result<Stats, Violation> {
    let mut stats = Stats::default();
    let mut by_epoch: BTreeMap<(String, u64), (String, String)> = BTreeMap::new();
    for log in logs {
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        // The configuration epochs last written to disk: what a restart resumes from.
        let mut durable: BTreeMap<String, u64> = BTreeMap::new();
        for (t, entry) in &log.entries {
            let t = *t;
            let text = match entry {
                SentinelEntry::Crash { .. } => {
                    last = durable.clone();
                    continue;
                }
                SentinelEntry::Event { kind, text } if kind == "~config-saved" => {
                    for l in text.lines().filter_map(|l| l.strip_prefix("sentinel config-epoch ")) {
                        if let (Some(m), Some(e)) = (word::<String>(l, 0), word::<u64>(l, 1)) {
                            durable.insert(m, e);
                        }
                    }
                    continue;
                }
                SentinelEntry::Event { kind, text } if kind == "~switch" => text.as_str(),
                SentinelEntry::Event { .. }
                | SentinelEntry::Restart
                | SentinelEntry::ClockJump { .. }
                | SentinelEntry::Paused { .. } => continue,
            };
            let (Some(master), Some(epoch), Some(addr)) =
                (word::<String>(text, 0), word::<u64>(text, 1), word::<String>(text, 2))
            else {
                continue;
            };
            stats.switches += 1;
            if let Some(prev) = last.insert(master.clone(), epoch) {
                if epoch <= prev {
                    return Err(Violation {
                        invariant: INVARIANT,
                        message: format!("{} switched {master} to epoch {epoch} after epoch {prev}", log.node),
                        at_ns: Some(t),
                    });
                }
            }
            let key = (master.clone(), epoch);
            match by_epoch.get(&key) {
                Some((other_addr, other_node)) if *other_addr != addr => {
                    return Err(Violation {
                        invariant: INVARIANT,
                        message: format!(
                            "epoch {epoch} of {master}: {} says {addr}, {other_node} says {other_addr}",
                            log.node
                        ),
                        at_ns: Some(t),
                    });
                }
                Some(_) => {}
                None => {
                    by_epoch.insert(key, (addr.clone(), log.node.clone()));
                }
            }
            let newest = stats.newest.entry(master).or_insert((0, String::new()));
            if epoch >= newest.0 {
                *newest = (epoch, addr);
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(node: &str, switches: &[&str]) -> SentinelLog {
        SentinelLog {
            node: node.into(),
            entries: switches
                .iter()
                .enumerate()
                .map(|(i, s)| (i as u128, SentinelEntry::Event { kind: "~switch".into(), text: s.to_string() }))
                .collect(),
        }
    }

    #[test]
    fn one_address_per_epoch_and_increasing() {
        let ok = check(&[log("a", &["m 1 x:1", "m 3 y:1"]), log("b", &["m 3 y:1"])]).unwrap();
        assert_eq!(ok.newest["m"], (3, "y:1".to_string()));
        assert!(check(&[log("a", &["m 1 x:1"]), log("b", &["m 1 y:1"])]).is_err());
        assert!(check(&[log("a", &["m 3 x:1", "m 2 y:1"])]).is_err());
    }
}
