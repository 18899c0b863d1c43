//! Client pauses: `CLIENT PAUSE <ms> [WRITE|ALL]` and the write pause a coordinated FAILOVER
//! holds while its replica catches up.
//!
//! Why it is shaped this way: Redis keeps one pause per purpose (a client's command, a failover)
//! and obeys the most restrictive one still running, so a failover's pause outlives a client's
//! `CLIENT UNPAUSE` and the reverse. The decision "does this command wait?" is made in
//! `cmd::execute` under the lock, like every other admission check; the waiting is done by the
//! connection outside it (`connection.rs`), which retries the command when woken. While any
//! pause holds, keys past their expiry are hidden but not deleted (the DEL a master would
//! propagate would move the offset a failing-over replica must reach), as Redis does.

/// What a pause holds back. Ordered: `All` is more restrictive than `Write`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PauseKind {
    /// Commands that write or may propagate (Redis's CMD_WRITE | CMD_MAY_REPLICATE).
    Write,
    /// Every command of a normal client.
    All,
}

/// The pauses in force, one per purpose.
#[derive(Clone, Debug, Default)]
pub struct ClientPause {
    /// CLIENT PAUSE: its kind and the clock time it ends at.
    pub by_command: Option<(PauseKind, i64)>,
    /// FAILOVER: a write pause until the failover ends or is aborted (no end time).
    pub by_failover: bool,
}

impl ClientPause {
    /// The most restrictive pause still running at `now_ms`, if any.
    pub fn kind(&self, now_ms: i64) -> Option<PauseKind> {
        let command = self.by_command.filter(|&(_, end_ms)| end_ms >= now_ms).map(|(kind, _)| kind);
        let failover = self.by_failover.then_some(PauseKind::Write);
        command.max(failover)
    }

    /// CLIENT PAUSE: a second pause keeps the longer end and the more restrictive kind, as
    /// Redis's `pauseClients` merges them.
    pub fn pause_by_command(&mut self, kind: PauseKind, end_ms: i64, now_ms: i64) {
        let merged = match self.by_command.filter(|&(_, end)| end >= now_ms) {
            Some((k, end)) => (k.max(kind), end.max(end_ms)),
            None => (kind, end_ms),
        };
        self.by_command = Some(merged);
        debug_assert!(self.by_command.is_some_and(|(k, e)| k >= kind && e >= end_ms));
    }

    /// Whether a command with these properties waits, for a client that is not a replica.
    pub fn holds(&self, now_ms: i64, may_replicate: bool) -> bool {
        match self.kind(now_ms) {
            None => false,
            Some(PauseKind::All) => true,
            Some(PauseKind::Write) => may_replicate,
        }
    }
}

/// How long a postponed client sleeps before looking again, at most: an unpause wakes it at
/// once (`Shared::unpaused`); this bounds the wait if the wake-up raced its registration.
pub const RECHECK_MS_MAX: u64 = 100;

/// Keeps the keyspace's expiry policy in line with the role and the pauses: a replica and a
/// paused master hide expired keys without deleting them.
pub fn apply_expire_policy(st: &mut crate::server::State, now_ms: i64) {
    let hide_only = st.repl.is_replica() || st.pause.kind(now_ms).is_some();
    st.ks.policy = if hide_only { crate::db::ExpirePolicy::HideOnly } else { crate::db::ExpirePolicy::Delete };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_restrictive_pause_wins_until_it_ends() {
        let mut p = ClientPause::default();
        assert_eq!(p.kind(0), None);
        p.pause_by_command(PauseKind::All, 100, 0);
        p.pause_by_command(PauseKind::Write, 50, 0);
        assert_eq!(p.by_command, Some((PauseKind::All, 100)));
        assert!(p.holds(100, false));
        assert!(!p.holds(101, true));
        p.by_failover = true;
        assert_eq!(p.kind(101), Some(PauseKind::Write));
        assert!(!p.holds(101, false));
        assert!(p.holds(101, true));
    }

    #[test]
    fn an_ended_pause_is_not_merged_into_a_new_one() {
        let mut p = ClientPause::default();
        p.pause_by_command(PauseKind::All, 10, 0);
        p.pause_by_command(PauseKind::Write, 50, 20);
        assert_eq!(p.by_command, Some((PauseKind::Write, 50)));
    }
}
