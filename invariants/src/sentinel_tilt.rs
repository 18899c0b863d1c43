//! sentinel-tilts-on-clock-jump.
//!
//! **Property.** When the harness moves a running sentinel's clock backwards by more than 100
//! ms, or forwards by more than 2 s (net, over the jumps since its last `+tilt`), the sentinel
//! logs `+tilt` before it is next killed or the run ends. Jumps while the node is down are not
//! counted, nor those before a restarted sentinel's first event (a starting sentinel takes the
//! clock as it finds it). The jumps are the harness's
//! record, not the sentinel's.
//!
//! **From Redis.** `sentinelCheckTiltCondition` enters TILT when the time between two timer
//! runs is negative or more than `SENTINEL_TILT_TRIGGER` (2 s); the timer runs every 100 ms at
//! most, so a backward jump of more than 100 ms is always seen as negative (sentinel.c).

use crate::sentinel_log::{SentinelEntry, SentinelLog};
use crate::Violation;

pub const INVARIANT: &str = "sentinel-tilts-on-clock-jump";
/// The net forward jump that must trigger TILT (Redis's trigger, 2 s).
pub const FORWARD_MS: i64 = 2000;
/// The net backward jump that must trigger TILT (longer than a timer period).
pub const BACKWARD_MS: i64 = 100;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub jumps_checked: u64,
}

pub fn check(logs: &[SentinelLog]) -> Result<Stats, Violation> {
    let mut stats = Stats::default();
    for log in logs {
        let mut alive = true;
        let mut pending: i64 = 0;
        let mut since: Option<u128> = None;
        for (t, e) in &log.entries {
            match e {
                // Down from a crash until the restarted process logs its first event (its
                // `+monitor` lines): a jump before then is the clock it starts with.
                SentinelEntry::Crash | SentinelEntry::Restart => {
                    unanswered(log, pending, since)?;
                    alive = false;
                    pending = 0;
                    since = None;
                }
                SentinelEntry::ClockJump(ms) if alive => {
                    pending = pending.saturating_add(*ms);
                    since.get_or_insert(*t);
                }
                SentinelEntry::ClockJump(_) => {}
                SentinelEntry::Event { kind, .. } if kind == "+tilt" => {
                    alive = true;
                    if since.is_some() && qualifies(pending) {
                        stats.jumps_checked += 1;
                    }
                    pending = 0;
                    since = None;
                }
                SentinelEntry::Event { .. } => alive = true,
            }
        }
        unanswered(log, pending, since)?;
    }
    Ok(stats)
}

fn qualifies(net_ms: i64) -> bool {
    net_ms < -BACKWARD_MS || net_ms > FORWARD_MS
}

fn unanswered(log: &SentinelLog, pending: i64, since: Option<u128>) -> Result<(), Violation> {
    match since {
        Some(t) if qualifies(pending) => Err(Violation {
            invariant: INVARIANT,
            message: format!("{}: clock moved {pending} ms and the sentinel never entered TILT", log.node),
            at_ns: Some(t),
        }),
        _ => Ok(()),
    }
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

    #[test]
    fn jumps_need_tilt() {
        assert_eq!(check(&[log(vec![SentinelEntry::ClockJump(-5000), tilt()])]).unwrap().jumps_checked, 1);
        assert!(check(&[log(vec![SentinelEntry::ClockJump(5000)])]).is_err());
        // Jumps that cancel out, a small one, and one while the node was down: nothing owed.
        assert!(check(&[log(vec![SentinelEntry::ClockJump(3000), SentinelEntry::ClockJump(-3000)])]).is_ok());
        assert!(check(&[log(vec![SentinelEntry::ClockJump(-50)])]).is_ok());
        assert!(
            check(&[log(vec![SentinelEntry::Crash, SentinelEntry::ClockJump(9000), SentinelEntry::Restart])]).is_ok()
        );
    }
}
