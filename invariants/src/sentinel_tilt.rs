//! sentinel-tilts-on-clock-jump.
//!
//! **Property.** When the harness moves a running sentinel's clock backwards by more than
//! [`BACKWARD_MS`] or forwards by more than [`FORWARD_MS`], the sentinel logs `+tilt` before the
//! harness next moves its clock, kills it, or the run ends. The jumps are the harness's record
//! (with their simulated times), not the sentinel's.
//!
//! Jumps the sentinel may have seen as one: jumps less than [`SAME_TICK_NS`] apart, or made
//! while the node was paused, form one group; a group owes a `+tilt` when its net change and at
//! least one of its jumps both qualify (so two jumps that cancel out within one timer period
//! owe nothing, and neither do two small ones that different timer runs may have seen apart).
//! A pause is itself a forward jump as the timer sees it (it did not run meanwhile), of a length
//! the harness knows: a group that began while the node was paused, or within a timer period of
//! its resume, has the pause added to its net change.
//! Nothing is owed for jumps while the node is down, before a restarted node logs its first
//! event, or when the node is killed while paused or before it logged anything after a resume
//! (it may never have run after the jump), or killed within a timer period of the jump.
//!
//! **From Redis.** `sentinelCheckTiltCondition` enters TILT when the time between two timer
//! runs is negative or more than `SENTINEL_TILT_TRIGGER` (2 s); the timer runs at least every
//! 100 ms, so a backward jump of more than 100 ms always shows as negative (sentinel.c).

use crate::sentinel_log::{SentinelEntry, SentinelLog};
use crate::Violation;

pub const INVARIANT: &str = "sentinel-tilts-on-clock-jump";
/// A forward jump beyond Redis's trigger (2 s) plus a timer period.
pub const FORWARD_MS: i64 = 2100;
/// A backward jump longer than a timer period.
pub const BACKWARD_MS: i64 = 100;
/// Jumps closer than a timer period may fall between the same two timer runs.
pub const SAME_TICK_NS: u128 = 100_000_000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub jumps_checked: u64,
}

/// Jumps the sentinel may have seen as one change.
#[derive(Clone, Copy, Debug)]
struct Group {
    net_ms: i64,
    any_qualifies: bool,
    first_ns: u128,
    last_ns: u128,
    /// The end of the last pause added to it, and whether the node was paused again before a
    /// timer period had passed since (the timer may still not have seen the group: that pause
    /// adds too; found at sentinel seed 4210, a jump inside two back-to-back pauses).
    pause_added_until_ns: Option<u128>,
    repaused: bool,
}

impl Group {
    fn owes_tilt(&self) -> bool {
        self.any_qualifies && qualifies(self.net_ms)
    }
}

fn qualifies(ms: i64) -> bool {
    ms < -BACKWARD_MS || ms > FORWARD_MS
}

pub fn check(logs: &[SentinelLog]) -> Result<Stats, Violation> {
    let mut stats = Stats::default();
    for log in logs {
        check_one(log, &mut stats)?;
    }
    Ok(stats)
}

fn check_one(log: &SentinelLog, stats: &mut Stats) -> Result<(), Violation> {
    let mut alive = true;
    let mut paused = false;
    // Resumed, and nothing logged since: it may have been killed before it ran at all.
    let mut quiet_since_resume = false;
    let mut group: Option<Group> = None;
    // When the node was last paused, and for how long (ms) the last pause lasted, with its end.
    let mut paused_at_ns: u128 = 0;
    let mut last_pause: Option<(i64, u128)> = None;
    for (_, e) in &log.entries {
        match e {
            SentinelEntry::Crash { .. } | SentinelEntry::Restart => {
                // Killed within a timer period of the jump: it may not have run since.
                let crash_ns = match e {
                    SentinelEntry::Crash { at_ns } => Some(*at_ns),
                    _ => None,
                };
                if let Some(g) = group.take() {
                    let ran = crash_ns.is_none_or(|t| t.saturating_sub(g.last_ns) >= SAME_TICK_NS);
                    if !paused && !quiet_since_resume && ran {
                        unanswered(log, &g)?;
                    }
                }
                (alive, paused, quiet_since_resume) = (false, false, false);
            }
            SentinelEntry::ClockJump { .. } if !alive => {}
            SentinelEntry::ClockJump { ms, at_ns } => {
                // The timer may not have run since the group's last jump: the node is paused,
                // the jumps are close, or it was resumed only just now after the group.
                let resumed_ns = last_pause.map_or(0, |(_, end)| end);
                let joins = group.is_some_and(|g| {
                    paused
                        || at_ns.saturating_sub(g.last_ns) < SAME_TICK_NS
                        || (g.last_ns <= resumed_ns && at_ns.saturating_sub(resumed_ns) < SAME_TICK_NS)
                });
                match (&mut group, joins) {
                    (Some(g), true) => {
                        g.net_ms = g.net_ms.saturating_add(*ms);
                        g.any_qualifies |= qualifies(*ms);
                        g.last_ns = *at_ns;
                    }
                    _ => {
                        if let Some(g) = group.take() {
                            unanswered(log, &g)?;
                        }
                        // The time the timer did not run counts as a forward jump.
                        // (A group begun while paused gets the whole pause at the resume.)
                        let pause_ms = match last_pause {
                            Some((ms, end)) if !paused && at_ns.saturating_sub(end) < SAME_TICK_NS => ms,
                            _ => 0,
                        };
                        let net_ms = ms.saturating_add(pause_ms);
                        group = Some(Group {
                            net_ms,
                            any_qualifies: qualifies(*ms),
                            first_ns: *at_ns,
                            last_ns: *at_ns,
                            pause_added_until_ns: None,
                            repaused: false,
                        });
                    }
                }
            }
            SentinelEntry::Paused { paused: p, at_ns } => {
                if *p {
                    paused_at_ns = *at_ns;
                    if let Some(g) = group.as_mut() {
                        g.repaused = g.pause_added_until_ns.is_some_and(|end| at_ns.saturating_sub(end) < SAME_TICK_NS);
                    }
                } else if paused {
                    let ms = i64::try_from(at_ns.saturating_sub(paused_at_ns) / 1_000_000).unwrap_or(i64::MAX);
                    last_pause = Some((ms, *at_ns));
                    if let Some(g) = group.as_mut() {
                        // Jumps made during the pause (or a pause right after one that held
                        // them): the pause adds to what the timer sees.
                        if g.first_ns >= paused_at_ns || g.repaused {
                            g.net_ms = g.net_ms.saturating_add(ms);
                            g.pause_added_until_ns = Some(*at_ns);
                            g.repaused = false;
                        }
                    }
                }
                paused = *p;
                quiet_since_resume = !*p;
            }
            SentinelEntry::Event { kind, .. } => {
                alive = true;
                quiet_since_resume = false;
                if kind == "+tilt" {
                    if group.take().is_some_and(|g| g.owes_tilt()) {
                        stats.jumps_checked += 1;
                    }
                }
            }
        }
    }
    match group {
        Some(g) => unanswered(log, &g),
        None => Ok(()),
    }
}

fn unanswered(log: &SentinelLog, g: &Group) -> Result<(), Violation> {
    if !g.owes_tilt() {
        return Ok(());
    }
    Err(Violation {
        invariant: INVARIANT,
        message: format!("{}: clock moved {} ms and the sentinel never entered TILT", log.node, g.net_ms),
        at_ns: Some(g.first_ns),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(entries: Vec<SentinelEntry>) -> SentinelLog {
        SentinelLog {
            node: "s".into(),
            entries: entries.into_iter().enumerate().map(|(i, e)| (i as u128, e)).collect(),
        }
    }

    fn tilt() -> SentinelEntry {
        SentinelEntry::Event { kind: "+tilt".into(), text: "#tilt mode entered".into() }
    }

    fn pause(paused: bool, at_ms: u128) -> SentinelEntry {
        SentinelEntry::Paused { paused, at_ns: at_ms * 1_000_000 }
    }

    fn jump(ms: i64, at_ms: u128) -> SentinelEntry {
        SentinelEntry::ClockJump { ms, at_ns: at_ms * 1_000_000 }
    }

    #[test]
    fn jumps_need_tilt() {
        assert_eq!(check(&[log(vec![jump(-5000, 0), tilt()])]).unwrap().jumps_checked, 1);
        assert!(check(&[log(vec![jump(5000, 0)])]).is_err());
        // A second jump owes its own TILT.
        assert!(check(&[log(vec![jump(5000, 0), tilt(), jump(-5000, 1000)])]).is_err());
        // Jumps that cancel out within a timer period, small ones, two small ones seconds apart.
        assert!(check(&[log(vec![jump(3000, 0), jump(-3000, 10)])]).is_ok());
        assert!(check(&[log(vec![jump(-50, 0)])]).is_ok());
        assert!(check(&[log(vec![jump(1157, 0), jump(895, 4000)])]).is_ok());
        // Down, or killed while paused or before running again: nothing owed.
        assert!(check(&[log(vec![
            SentinelEntry::Crash { at_ns: 10_000_000_000 },
            jump(9000, 0),
            SentinelEntry::Restart
        ])])
        .is_ok());
        let paused = vec![pause(true, 0), jump(9000, 0), SentinelEntry::Crash { at_ns: 10_000_000_000 }];
        assert!(check(&[log(paused)]).is_ok());
        let quick =
            vec![pause(true, 0), jump(9000, 0), pause(false, 0), SentinelEntry::Crash { at_ns: 10_000_000_000 }];
        assert!(check(&[log(quick)]).is_ok());
        let resumed = vec![pause(true, 0), jump(9000, 0), pause(false, 0)];
        assert!(check(&[log(resumed)]).is_err());
        // A jump back inside two back-to-back pauses: the timer sees both pauses and the jump
        // as one forward move of 297 ms (sentinel seed 4210). A lone pause would owe nothing
        // either; the same jump with only the first pause (-372 ms net) owes a TILT.
        let chained =
            vec![pause(true, 4029), jump(-828, 4327), pause(false, 4485), pause(true, 4485), pause(false, 5154)];
        assert!(check(&[log(chained)]).is_ok());
        let single = vec![pause(true, 4029), jump(-828, 4327), pause(false, 4485)];
        assert!(check(&[log(single)]).is_err());
        // An 865 ms pause, then a 394 ms step back as it resumes: the timer saw +471 ms.
        let pause_covers = vec![pause(true, 11582), pause(false, 12447), jump(-394, 12447), tilt()];
        assert_eq!(check(&[log(pause_covers.clone())]).unwrap().jumps_checked, 0);
        assert!(check(&[log(pause_covers[..3].to_vec())]).is_ok());
        // Paused, a jump, resumed and paused again at once, then a jump as it resumes: the
        // timer saw both at its first run.
        let twice = vec![
            pause(true, 2210),
            jump(-7397, 2819),
            pause(false, 3040),
            pause(true, 3040),
            pause(false, 3181),
            jump(-10153, 3181),
            tilt(),
        ];
        assert_eq!(check(&[log(twice)]).unwrap().jumps_checked, 1);
        // Paused, a jump, resumed and the clock set back at once: the timer saw the pause only.
        let back = vec![pause(true, 10715), jump(13695, 12203), pause(false, 12203), jump(-13675, 12203)];
        assert!(check(&[log(back)]).is_ok());
        // Killed 56 ms after a jump: maybe no timer run in between; 500 ms after: TILT owed.
        let kill = |t: u128| SentinelEntry::Crash { at_ns: t * 1_000_000 };
        assert!(check(&[log(vec![jump(29229, 16661), kill(16717)])]).is_ok());
        assert!(check(&[log(vec![jump(29229, 16661), kill(17161)])]).is_err());
        // A step back longer than the pause is still seen.
        assert!(check(&[log(vec![pause(true, 0), pause(false, 300), jump(-2000, 300)])]).is_err());
    }
}
