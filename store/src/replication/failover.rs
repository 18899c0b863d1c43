//! FAILOVER: Redis 6.2's coordinated failover, as a state machine driven by the cron.
//!
//! Why it is shaped this way: the master pauses writes (so its offset stops moving), waits until
//! a replica has acknowledged everything (`waiting-for-sync`), then turns itself into a replica
//! of that one and sends it `PSYNC <replid> <offset> FAILOVER` (`failover-in-progress`): the
//! target promotes itself only if its history is the master's (same replid), and the old master
//! continues partially from it. No acknowledged write can be lost, because none is accepted
//! after the pause and the target holds every earlier one. The decision is a pure function of
//! the state ([`decide`]); the cron applies it under the lock and starts the link task outside
//! (replication/replica.rs sends the FAILOVER argument and reports the outcome here).
//! Redis's source: replication.c `failoverCommand`, `updateFailoverStatus`, `abortFailover`.

use super::{ReplState, ReplicaState};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    #[default]
    None,
    /// Writes paused, waiting for a replica to acknowledge the master's offset.
    WaitForSync,
    /// This node is now a replica of the target and is sending it PSYNC ... FAILOVER.
    InProgress,
}

/// The failover under way, if any.
#[derive(Clone, Debug, Default)]
pub struct Failover {
    pub phase: Phase,
    /// FAILOVER TO host port, or the replica chosen once it caught up.
    pub target: Option<(String, u16)>,
    /// FAILOVER TIMEOUT: the clock time waiting-for-sync ends at.
    pub end_ms: Option<i64>,
    /// FAILOVER ... FORCE: at the timeout, fail over to the target even if it lags.
    pub force: bool,
}

impl Failover {
    /// INFO replication's `master_failover_state`.
    pub fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::None => "no-failover",
            Phase::WaitForSync => "waiting-for-sync",
            Phase::InProgress => "failover-in-progress",
        }
    }

    pub fn active(&self) -> bool {
        self.phase != Phase::None
    }
}

/// What the cron must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Wait,
    /// Become a replica of this address and send it PSYNC ... FAILOVER.
    Hand {
        host: String,
        port: u16,
    },
    Abort(&'static str),
}

/// The next step of a failover in waiting-for-sync, from the master's view of its replicas.
pub fn decide(f: &Failover, repl: &ReplState, now_ms: i64) -> Step {
    if f.phase != Phase::WaitForSync {
        return Step::Wait;
    }
    if f.end_ms.is_some_and(|end| end <= now_ms) {
        return match (&f.target, f.force) {
            (Some((host, port)), true) => Step::Hand { host: host.clone(), port: *port },
            _ => Step::Abort("Replica never caught up before timeout"),
        };
    }
    let caught_up = |r: &&super::ReplicaInfo| r.state == ReplicaState::Online && r.ack_offset == repl.offset;
    let chosen = match &f.target {
        Some((host, port)) => repl
            .replicas
            .values()
            .filter(|r| r.ip.eq_ignore_ascii_case(host) && r.listening_port == *port)
            .find(caught_up),
        // The first replica (by connection id: the oldest) that has everything.
        None => repl.replicas.values().find(caught_up),
    };
    match chosen {
        Some(r) => Step::Hand { host: r.ip.clone(), port: r.listening_port },
        None => Step::Wait,
    }
}

/// Applies the cron's step: on `Hand`, the node turns replica of the target (the generation
/// of the link task to start is returned).
pub fn tick(st: &mut crate::server::State, env: &crate::env::Env, now_ms: i64) -> Option<u64> {
    match decide(&st.failover, &st.repl, now_ms) {
        Step::Wait => None,
        Step::Abort(why) => {
            abort(st, why, env.rng.hex_id());
            None
        }
        Step::Hand { host, port } => {
            tracing::info!("Failover target {host}:{port} is synced, failing over.");
            st.failover.phase = Phase::InProgress;
            st.failover.target = Some((host.clone(), port));
            let generation = crate::cmd::replication::demote(st, host, port, now_ms, true);
            debug_assert!(st.repl.is_replica() && st.failover.phase == Phase::InProgress);
            Some(generation)
        }
    }
}

/// The failover is over (the target accepted the PSYNC): writes resume (as a replica's, they
/// are refused with READONLY; the clients find the new master).
pub fn clear(st: &mut crate::server::State) {
    st.failover = Failover::default();
    st.pause.by_failover = false;
    let now_ms = st.now_ms;
    crate::pause::apply_expire_policy(st, now_ms);
    st.unpaused.notify_waiters();
    debug_assert!(!st.failover.active() && !st.pause.by_failover);
}

/// Redis's `abortFailover`: a node already handing over becomes a master again (with a new
/// replication id, its history kept as replid2), and writes resume. `new_replid` comes from
/// the node's seeded RNG (`Env::rng`), never from an unseeded source.
pub fn abort(st: &mut crate::server::State, why: &str, new_replid: String) {
    if !st.failover.active() {
        return;
    }
    match &st.failover.target {
        Some((host, port)) => tracing::info!("FAILOVER to {host}:{port} aborted: {why}"),
        None => tracing::info!("FAILOVER to any replica aborted: {why}"),
    }
    if st.failover.phase == Phase::InProgress {
        crate::cmd::replication::promote(st, new_replid);
    }
    clear(st);
    crate::fault::probe("repl.failover_aborted");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::ReplicaInfo;

    fn repl_with(acks: &[(u64, &str, u16, i64)], offset: i64) -> ReplState {
        let mut r = ReplState::new("a".repeat(40));
        r.offset = offset;
        for &(id, ip, port, ack) in acks {
            let info = ReplicaInfo {
                ip: ip.into(),
                listening_port: port,
                state: ReplicaState::Online,
                ack_offset: ack,
                ack_ms: 0,
            };
            r.replicas.insert(id, info);
        }
        r
    }

    fn waiting(target: Option<(&str, u16)>, end_ms: Option<i64>, force: bool) -> Failover {
        Failover { phase: Phase::WaitForSync, target: target.map(|(h, p)| (h.into(), p)), end_ms, force }
    }

    #[test]
    fn hands_over_only_to_a_replica_that_acknowledged_everything() {
        let repl = repl_with(&[(1, "10.0.0.2", 6379, 90), (2, "10.0.0.3", 6379, 100)], 100);
        let any = waiting(None, None, false);
        assert_eq!(decide(&any, &repl, 0), Step::Hand { host: "10.0.0.3".into(), port: 6379 });
        let to_lagging = waiting(Some(("10.0.0.2", 6379)), None, false);
        assert_eq!(decide(&to_lagging, &repl, 0), Step::Wait);
    }

    #[test]
    fn the_timeout_aborts_unless_forced_to_a_target() {
        let repl = repl_with(&[(1, "10.0.0.2", 6379, 90)], 100);
        let plain = waiting(Some(("10.0.0.2", 6379)), Some(50), false);
        assert_eq!(decide(&plain, &repl, 49), Step::Wait);
        assert_eq!(decide(&plain, &repl, 50), Step::Abort("Replica never caught up before timeout"));
        let forced = waiting(Some(("10.0.0.2", 6379)), Some(50), true);
        assert_eq!(decide(&forced, &repl, 50), Step::Hand { host: "10.0.0.2".into(), port: 6379 });
    }
}
