//! aof-durability.
//!
//! **Property.** A server with the append-only file on is crashed (power loss: what was not
//! fsynced may be lost, kept, or torn) and restarted any number of times; each client writes
//! keys no one else writes, once each, and records when each write was acknowledged. At the
//! end, for every acknowledged write that the final dataset does not hold:
//! - with `appendfsync always`: a violation, whatever the crashes (Redis fsyncs the AOF before
//!   it replies: `flushAppendOnlyFile` runs in `beforeSleep`, before replies are written, and
//!   with `always` it fsyncs inline, exiting if it cannot);
//! - with `appendfsync everysec`: excused only by a crash after the write was sent and within
//!   `EVERYSEC_WINDOW_MS` of its acknowledgement (the server wrote it somewhere between the two,
//!   and a reply may reach the client after the crash; time the node spent paused does not
//!   count, as a stopped process runs no fsync; Redis's documented bound, "you can lose one second worth of writes",
//!   at most two seconds when an fsync is slow: aof.c's postponed write);
//! - with `appendfsync no`: measured, not judged (the kernel decides).
//!
//! A write whose value differs from what was acknowledged is a violation under every policy:
//! the AOF may lose a suffix, never invent data.
//!
//! Judged only from what the harness saw: acknowledgement times on the simulated clock, the
//! times it crashed the node, and what a client read back at the end.

use crate::Violation;

pub const INVARIANT: &str = "aof-durability";
/// Redis's `everysec` bound.
pub const EVERYSEC_WINDOW_MS: u128 = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Always,
    EverySec,
    No,
}

/// One acknowledged write and what the end showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckedWrite {
    pub key: String,
    pub value: String,
    /// When the client sent it, and when the acknowledgement arrived.
    pub invoked_at_ns: u128,
    pub acked_at_ns: u128,
    /// What the final dataset holds for the key (None: missing).
    pub found: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub acked: u64,
    pub lost: u64,
    /// Lost writes excused by a crash inside the everysec window.
    pub lost_in_window: u64,
    pub crashes: u64,
}

/// `paused_ns`: the intervals the node was paused (start, end).
pub fn check(
    policy: Policy,
    writes: &[AckedWrite],
    crashes_ns: &[u128],
    paused_ns: &[(u128, u128)],
) -> Result<Stats, Violation> {
    let mut stats = Stats { acked: writes.len() as u64, crashes: crashes_ns.len() as u64, ..Stats::default() };
    for w in writes {
        match &w.found {
            Some(v) if *v == w.value => continue,
            Some(v) => {
                return Err(violation(format!(
                    "key {} acknowledged with value {:?} at {} ms reads back as {v:?}",
                    w.key,
                    w.value,
                    w.acked_at_ns / 1_000_000
                )))
            }
            None => stats.lost = stats.lost.saturating_add(1),
        }
        let crash_after = crashes_ns.iter().copied().filter(|c| *c >= w.invoked_at_ns).min();
        let excused = match policy {
            Policy::No => true,
            Policy::Always => false,
            Policy::EverySec => {
                crash_after.is_some_and(|c| running_ns(w.acked_at_ns, c, paused_ns) <= EVERYSEC_WINDOW_MS * 1_000_000)
            }
        };
        if policy == Policy::EverySec && excused {
            stats.lost_in_window = stats.lost_in_window.saturating_add(1);
        }
        if !excused {
            let next = match crash_after {
                Some(c) => format!("the next crash came {} ms later", c.saturating_sub(w.acked_at_ns) / 1_000_000),
                None => "no crash came after it".to_string(),
            };
            return Err(violation(format!(
                "key {} acknowledged at {} ms under appendfsync {policy:?} is missing after restart ({next})",
                w.key,
                w.acked_at_ns / 1_000_000
            )));
        }
    }
    Ok(stats)
}

/// Time from `from` to `to` during which the node was not paused (0 if `to` is earlier).
fn running_ns(from: u128, to: u128, paused_ns: &[(u128, u128)]) -> u128 {
    let total = to.saturating_sub(from);
    let paused: u128 = paused_ns.iter().map(|(a, b)| (*b).min(to).saturating_sub((*a).max(from))).sum();
    total.saturating_sub(paused)
}

fn violation(message: String) -> Violation {
    Violation { invariant: INVARIANT, message, at_ns: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(key: &str, at_ms: u128, found: Option<&str>) -> AckedWrite {
        AckedWrite {
            key: key.into(),
            value: "v".into(),
            invoked_at_ns: at_ms.saturating_sub(1) * 1_000_000,
            acked_at_ns: at_ms * 1_000_000,
            found: found.map(String::from),
        }
    }

    #[test]
    fn always_forgives_nothing() {
        let writes = [w("a", 100, Some("v")), w("b", 200, None)];
        assert!(check(Policy::Always, &writes, &[250_000_000], &[]).is_err());
        assert_eq!(check(Policy::Always, &writes[..1], &[], &[]).unwrap().acked, 1);
    }

    #[test]
    fn everysec_forgives_the_last_two_seconds_before_a_crash() {
        let crash = [3_000_000_000u128];
        assert_eq!(check(Policy::EverySec, &[w("a", 1500, None)], &crash, &[]).unwrap().lost_in_window, 1);
        assert!(check(Policy::EverySec, &[w("a", 900, None)], &crash, &[]).is_err(), "2.1 s before the crash");
        assert!(check(Policy::EverySec, &[w("a", 3500, None)], &crash, &[]).is_err(), "after the last crash");
        // Paused time does not count: 2.1 s with 0.5 s paused is inside the window.
        assert_eq!(
            check(Policy::EverySec, &[w("a", 900, None)], &crash, &[(1_000_000_000, 1_500_000_000)]).unwrap().lost,
            1
        );
        // Acknowledged just after the crash (the reply was in flight): excused.
        assert_eq!(check(Policy::EverySec, &[w("a", 3000, None)], &[2_999_500_000], &[]).unwrap().lost, 1);
    }

    #[test]
    fn a_changed_value_is_never_forgiven() {
        assert!(check(Policy::No, &[w("a", 1, Some("other"))], &[], &[]).is_err());
        assert_eq!(check(Policy::No, &[w("a", 1, None)], &[], &[]).unwrap().lost, 1);
    }
}
