//! sentinel-one-vote-per-epoch and sentinel-leader-has-majority.
//!
//! **Properties.**
//! 1. A sentinel votes at most once per epoch: two `+vote-for-leader <runid> <epoch>` events of
//!    one sentinel never name the same epoch. Across a crash the rule holds for every vote the
//!    sentinel had made durable (a later `~config-saved` whose `sentinel leader-epoch` reached
//!    that epoch, before the crash); a vote lost with the crash was never sent to anyone (the
//!    vote reply and the sentinel's own use of it wait for the flush), so it does not count.
//! 2. At most one sentinel is elected leader per epoch (`~elected <master> <epoch> <known>`)
//!    among those whose election needed a majority of the deployed sentinels, and the leader of an epoch had at least `max(quorum, known / 2 + 1)` votes, `known` being
//!    the sentinels it knew (itself included); with a quorum of at least a majority of the
//!    `sentinels` deployed, also a majority of those. A vote is a `+vote-for-leader <its runid>
//!    <epoch>` in a voter's own log: counted here, not taken from what the leader believed.
//!
//! **From Redis.** `sentinelVoteLeader` votes only if `master->leader_epoch < req_epoch`, and
//! flushes the config before replying; `sentinelGetLeader` requires `max(quorum, voters/2+1)`
//! votes, where voters are the known sentinels plus itself (sentinel.c). With a quorum below
//! the majority, a sentinel that knows fewer peers needs fewer votes: two sentinels that have
//! not discovered each other can then both lead one epoch. That is Redis's rule, counted in
//! [`Stats::split_by_partial_view`], not a violation.

use std::collections::{BTreeMap, BTreeSet};

use crate::sentinel_log::{word, SentinelEntry, SentinelLog, ENTRIES_MAX};
use crate::Violation;

pub const INVARIANT: &str = "sentinel-one-vote-per-epoch";
pub const LEADER: &str = "sentinel-leader-has-majority";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub votes: u64,
    pub elections: u64,
    /// Epochs with two leaders that each knew too few sentinels to need a majority of them.
    pub split_by_partial_view: u64,
}

/// `myids` maps each log's node to the sentinel's run id (several if it changed, which would
/// itself be a bug the caller reports).
pub fn check(
    logs: &[SentinelLog],
    myids: &BTreeMap<String, String>,
    sentinels: usize,
    quorum: usize,
) -> Result<Stats, Violation> {
    let mut stats = Stats::default();
    // Votes by epoch: voter node -> candidate.
    let mut votes: BTreeMap<u64, BTreeMap<String, String>> = BTreeMap::new();
    for log in logs {
        if log.entries.len() > ENTRIES_MAX {
            return Err(Violation {
                invariant: INVARIANT,
                message: format!("{}: log too long", log.node),
                at_ns: None,
            });
        }
        check_one(log, &mut votes, &mut stats)?;
    }
    // The leader of each (master, epoch) so far, and whether its election needed a majority of
    // the deployed sentinels.
    let mut leaders: BTreeMap<(String, u64), (String, bool)> = BTreeMap::new();
    let majority = sentinels / 2 + 1;
    for log in logs {
        for (t, text) in log.events("~elected") {
            let (Some(master), Some(epoch)) = (word::<String>(text, 0), word::<u64>(text, 1)) else { continue };
            stats.elections += 1;
            let known = word::<usize>(text, 2).unwrap_or(sentinels);
            let mut needed = quorum.max(known / 2 + 1);
            if quorum >= majority {
                needed = needed.max(majority);
            }
            let strong = needed >= majority;
            if let Some(id) = myids.get(&log.node) {
                let voters: BTreeSet<&String> = votes
                    .get(&epoch)
                    .map(|v| v.iter().filter(|(_, c)| *c == id).map(|(n, _)| n).collect())
                    .unwrap_or_default();
                if voters.len() < needed {
                    return Err(Violation {
                        invariant: LEADER,
                        message: format!(
                            "{} elected for {master} in epoch {epoch} with {} vote(s) ({voters:?}), {needed} needed ({known} known, {sentinels} deployed, quorum {quorum})",
                            log.node,
                            voters.len()
                        ),
                        at_ns: Some(t),
                    });
                }
            }
            match leaders.get(&(master.clone(), epoch)) {
                Some((other, other_strong)) if *other != log.node => {
                    // Two majorities of the same sentinels share a voter, who voted once: two
                    // leaders are a bug. Two leaders that each knew too few sentinels to need a
                    // majority (a quorum below it, discovery unfinished) are Redis's rule.
                    if strong && *other_strong {
                        return Err(Violation {
                            invariant: LEADER,
                            message: format!("{} and {other} both elected for {master} in epoch {epoch}", log.node),
                            at_ns: Some(t),
                        });
                    }
                    stats.split_by_partial_view += 1;
                }
                Some(_) => {}
                None => {
                    leaders.insert((master, epoch), (log.node.clone(), strong));
                }
            }
        }
    }
    Ok(stats)
}

/// One sentinel's votes: never two in an epoch within an incarnation, nor across a crash once
/// durable.
fn check_one(
    log: &SentinelLog,
    votes: &mut BTreeMap<u64, BTreeMap<String, String>>,
    stats: &mut Stats,
) -> Result<(), Violation> {
    // Epochs voted in this incarnation, and the highest leader epoch known durable.
    let mut this_life: BTreeMap<u64, String> = BTreeMap::new();
    let mut durable_epoch: u64 = 0;
    let mut durable_votes: BTreeMap<u64, String> = BTreeMap::new();
    for (t, e) in &log.entries {
        match e {
            SentinelEntry::Crash { .. } => this_life.clear(),
            SentinelEntry::Event { kind, text } if kind == "~config-saved" => {
                let saved = saved_leader_epoch(text);
                if saved > durable_epoch {
                    for (epoch, cand) in this_life.range(durable_epoch.saturating_add(1)..=saved) {
                        durable_votes.insert(*epoch, cand.clone());
                    }
                }
                durable_epoch = durable_epoch.max(saved);
            }
            SentinelEntry::Event { kind, text } if kind == "+vote-for-leader" => {
                let (Some(cand), Some(epoch)) = (word::<String>(text, 0), word::<u64>(text, 1)) else { continue };
                stats.votes += 1;
                let earlier = this_life.get(&epoch).or_else(|| durable_votes.get(&epoch));
                if let Some(prev) = earlier {
                    return Err(Violation {
                        invariant: INVARIANT,
                        message: format!("{} voted twice in epoch {epoch}: for {prev}, then for {cand}", log.node),
                        at_ns: Some(*t),
                    });
                }
                this_life.insert(epoch, cand.clone());
                votes.entry(epoch).or_default().insert(log.node.clone(), cand);
            }
            SentinelEntry::Event { .. }
            | SentinelEntry::Restart
            | SentinelEntry::ClockJump { .. }
            | SentinelEntry::Paused { .. } => {}
        }
    }
    Ok(())
}

/// The highest `sentinel leader-epoch <master> <n>` in a saved config file.
fn saved_leader_epoch(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix("sentinel leader-epoch "))
        .filter_map(|rest| word::<u64>(rest, 1))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: u128, kind: &str, text: &str) -> (u128, SentinelEntry) {
        (t, SentinelEntry::Event { kind: kind.into(), text: text.into() })
    }

    fn ids() -> BTreeMap<String, String> {
        [("s1", "A"), ("s2", "B"), ("s3", "C")].iter().map(|(n, i)| (n.to_string(), i.to_string())).collect()
    }

    #[test]
    fn a_majority_elects_and_double_votes_are_caught() {
        let s1 = SentinelLog {
            node: "s1".into(),
            entries: vec![ev(1, "+vote-for-leader", "A 1"), ev(3, "~elected", "m 1 3")],
        };
        let s2 = SentinelLog { node: "s2".into(), entries: vec![ev(2, "+vote-for-leader", "A 1")] };
        let s3 = SentinelLog { node: "s3".into(), entries: vec![ev(2, "+vote-for-leader", "B 1")] };
        assert_eq!(check(&[s1.clone(), s2.clone(), s3.clone()], &ids(), 3, 2).unwrap().elections, 1);
        // Without s2's vote, s1 had 1 of 3.
        let lonely = SentinelLog { node: "s2".into(), entries: vec![] };
        assert_eq!(check(&[s1.clone(), lonely, s3.clone()], &ids(), 3, 2).unwrap_err().invariant, LEADER);
        // A second vote in the same epoch.
        let twice = SentinelLog {
            node: "s3".into(),
            entries: vec![ev(2, "+vote-for-leader", "B 1"), ev(4, "+vote-for-leader", "A 1")],
        };
        assert_eq!(check(&[s1.clone(), s2.clone(), twice], &ids(), 3, 2).unwrap_err().invariant, INVARIANT);
        // Across a crash: a vote made durable counts, one lost with the crash does not.
        let durable = SentinelLog {
            node: "s3".into(),
            entries: vec![
                ev(2, "+vote-for-leader", "B 1"),
                ev(3, "~config-saved", "sentinel leader-epoch m 1\n"),
                (4, SentinelEntry::Crash { at_ns: 4 }),
                ev(5, "+vote-for-leader", "A 1"),
            ],
        };
        assert_eq!(check(&[s1.clone(), s2.clone(), durable], &ids(), 3, 2).unwrap_err().invariant, INVARIANT);
        let lost = SentinelLog {
            node: "s3".into(),
            entries: vec![
                ev(2, "+vote-for-leader", "B 1"),
                (4, SentinelEntry::Crash { at_ns: 4 }),
                ev(5, "+vote-for-leader", "A 1"),
            ],
        };
        assert!(check(&[s1, s2, lost], &ids(), 3, 2).is_ok());
        // Quorum 1 and only itself known: Redis elects it with its own vote.
        let alone = SentinelLog {
            node: "s1".into(),
            entries: vec![ev(1, "+vote-for-leader", "A 1"), ev(3, "~elected", "m 1 1")],
        };
        assert!(check(&[alone], &ids(), 3, 1).is_ok());
        // Knowing three, it needs two, whatever the quorum.
        let knew = SentinelLog {
            node: "s1".into(),
            entries: vec![ev(1, "+vote-for-leader", "A 1"), ev(3, "~elected", "m 1 3")],
        };
        assert_eq!(check(&[knew], &ids(), 3, 1).unwrap_err().invariant, LEADER);
    }
}
