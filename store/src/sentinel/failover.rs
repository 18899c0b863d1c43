//! Failover: votes, the leader election, and the state machine that promotes a replica and
//! re-points the others (sentinel.c's FAILOVER section).
//!
//! Why it is shaped this way: safety rests on three rules kept exactly as Redis keeps them, so
//! each has one function and asserts around it: a sentinel votes at most once per epoch
//! ([`vote_leader`]), a leader needs `max(quorum, voters/2+1)` votes of its epoch
//! ([`get_leader`]), and a failover starts only from ODOWN ([`start_if_needed`]) or a user's
//! SENTINEL FAILOVER. Everything the state machine sends goes out as one transaction per
//! instance ([`send_slaveof`]), whose success is judged only from later INFO, as in Redis.

use std::collections::BTreeMap;

use super::instance::{flag, Addr, FailoverState, Instance, Kind, Master, Reported};
use super::monitor::instance_id;
use super::{at, Action, Global, Level, ReplyKind, Sentinel, MAX_DESYNC_MS};

/// `sentinelVoteLeader`: adopt a larger epoch; vote for `req_runid` if this master has no vote
/// in `req_epoch` yet; return the vote held (leader, epoch).
pub fn vote_leader(
    g: &mut Global,
    m: &mut Master,
    req_epoch: u64,
    req_runid: &str,
    now_ms: i64,
) -> (Option<String>, u64) {
    if req_epoch > g.current_epoch {
        g.current_epoch = req_epoch;
        g.flush_config = true;
        g.warn(m.name(), "+new-epoch", g.current_epoch.to_string());
    }
    let fresh =
        m.leader_epoch < req_epoch || (crate::fault::planted("sentinel-double-vote") && m.leader_epoch == req_epoch);
    if fresh && g.current_epoch <= req_epoch {
        let previous_epoch = m.leader_epoch;
        m.leader = Some(req_runid.to_string());
        m.leader_epoch = g.current_epoch;
        g.flush_config = true;
        g.counters.votes_granted = g.counters.votes_granted.saturating_add(1);
        g.warn(m.name(), "+vote-for-leader", format!("{req_runid} {}", m.leader_epoch));
        if !req_runid.eq_ignore_ascii_case(&g.myid) {
            let delay = g.random_ms(MAX_DESYNC_MS);
            m.failover_start_ms = now_ms.saturating_add(delay);
        }
        // One vote per epoch: the epoch of the vote only ever grows (the simulator's checker
        // judges this from the logs; here it is a debug check).
        debug_assert!(m.leader_epoch > previous_epoch, "a second vote in epoch {}", m.leader_epoch);
    } else if m.leader_epoch >= req_epoch && m.leader.as_deref() != Some(req_runid) {
        g.counters.votes_refused = g.counters.votes_refused.saturating_add(1);
        crate::fault::probe("sentinel.vote_refused");
    }
    (m.leader.clone(), m.leader_epoch)
}

/// `sentinelGetLeader`: the sentinel with the most votes in `epoch`, if it has a majority of
/// the voters (known sentinels and this one) and at least the quorum. This sentinel votes for
/// the most voted one, or for itself if nobody has votes yet.
pub fn get_leader(g: &mut Global, m: &mut Master, epoch: u64, now_ms: i64) -> Option<String> {
    debug_assert!(m.inst.has(flag::O_DOWN | flag::FAILOVER_IN_PROGRESS));
    let voters = m.sentinels.len().saturating_add(1);
    let mut counters: BTreeMap<String, usize> = BTreeMap::new();
    for s in m.sentinels.values() {
        if let (Some(l), true) = (&s.leader, s.leader_epoch == g.current_epoch) {
            let c = counters.entry(l.clone()).or_insert(0);
            *c = c.saturating_add(1);
        }
    }
    // Ties go to the first in order (Redis's dict order is arbitrary; this one is stable).
    let mut winner: Option<String> = None;
    let mut max_votes = 0usize;
    for (runid, &votes) in &counters {
        if votes > max_votes {
            max_votes = votes;
            winner = Some(runid.clone());
        }
    }
    let candidate = winner.clone().unwrap_or_else(|| g.myid.clone());
    let (my_vote, my_epoch) = vote_leader(g, m, epoch, &candidate, now_ms);
    if let (Some(v), true) = (my_vote, my_epoch == epoch) {
        let c = counters.entry(v.clone()).or_insert(0);
        *c = c.saturating_add(1);
        if *c > max_votes {
            max_votes = *c;
            winner = Some(v);
        }
    }
    let majority =
        if crate::fault::planted("sentinel-leader-no-majority") { voters / 2 } else { (voters / 2).saturating_add(1) };
    let needed = majority.max(m.quorum as usize);
    winner.filter(|_| max_votes >= needed)
}

/// `sentinelStartFailover`: a new epoch, and WAIT_START after a random delay.
pub fn start(g: &mut Global, m: &mut Master, now_ms: i64) {
    assert_eq!(m.inst.kind, Kind::Master);
    m.failover_state = FailoverState::WaitStart;
    m.inst.flags |= flag::FAILOVER_IN_PROGRESS;
    g.current_epoch = g.current_epoch.saturating_add(1);
    m.failover_epoch = g.current_epoch;
    g.flush_config = true;
    g.counters.failovers_started = g.counters.failovers_started.saturating_add(1);
    g.warn(m.name(), "+new-epoch", g.current_epoch.to_string());
    g.warn(m.name(), "+try-failover", at(&m.inst, None));
    let delay = g.random_ms(MAX_DESYNC_MS);
    m.failover_start_ms = now_ms.saturating_add(delay);
    m.failover_state_change_ms = now_ms;
    crate::fault::probe("sentinel.failover_started");
}

/// `sentinelStartFailoverIfNeeded`: ODOWN, none in progress, none tried in 2×failover-timeout.
pub fn start_if_needed(g: &mut Global, m: &mut Master, now_ms: i64) -> bool {
    let down = if crate::fault::planted("sentinel-failover-on-sdown") { flag::S_DOWN } else { flag::O_DOWN };
    if !m.inst.has(down) || m.in_failover() {
        return false;
    }
    if now_ms.saturating_sub(m.failover_start_ms) < m.failover_timeout_ms.saturating_mul(2) {
        if m.failover_delay_logged_ms != m.failover_start_ms {
            m.failover_delay_logged_ms = m.failover_start_ms;
            let next_s = m.failover_start_ms.saturating_add(m.failover_timeout_ms.saturating_mul(2)) / 1000;
            tracing::warn!("Next failover delay: I will not start a failover before {next_s} (unix time)");
        }
        return false;
    }
    start(g, m, now_ms);
    true
}

/// `sentinelSelectSlave`: the best replica to promote, or None.
pub fn select_replica(g: &Global, m: &Master, now_ms: i64) -> Option<String> {
    candidates(g, m, now_ms).first().map(|r| r.name.clone())
}

/// Why each replica is not a candidate (for the simulator's logs when none is).
fn rejections(g: &Global, m: &Master, now_ms: i64) -> Vec<String> {
    let s_down = m.inst.has(flag::S_DOWN);
    m.replicas
        .values()
        .map(|r| {
            format!(
                "{}: down={} disconnected={} avail_ago_ms={} priority={} info_age_ms={} link_down_ms={} master_sdown_ms={}",
                r.name,
                r.has(flag::S_DOWN | flag::O_DOWN),
                r.disconnected(),
                now_ms.saturating_sub(r.link.last_avail_ms),
                r.slave_priority,
                now_ms.saturating_sub(r.info_refresh_ms),
                r.master_link_down_ms,
                if s_down { now_ms.saturating_sub(m.inst.s_down_since_ms) } else { -1 },
            )
        })
        .chain(std::iter::once(format!("known replicas: {}; ping period {} ms", m.replicas.len(), g.timing.ping_period_ms)))
        .collect()
}

/// The replicas that may be promoted, best first (Redis's exclusions and order).
fn candidates<'a>(g: &Global, m: &'a Master, now_ms: i64) -> Vec<&'a Instance> {
    let ping_period_ms = g.timing.ping_period_ms;
    let mut max_master_down_ms = m.inst.down_after_ms.saturating_mul(10);
    if m.inst.has(flag::S_DOWN) {
        max_master_down_ms = max_master_down_ms.saturating_add(now_ms.saturating_sub(m.inst.s_down_since_ms));
    }
    let info_validity_ms = if m.inst.has(flag::S_DOWN) {
        ping_period_ms.saturating_mul(5)
    } else {
        g.timing.info_period_ms.saturating_mul(3)
    };
    let mut candidates: Vec<&Instance> = m
        .replicas
        .values()
        .filter(|r| {
            !r.has(flag::S_DOWN | flag::O_DOWN)
                && !r.disconnected()
                && now_ms.saturating_sub(r.link.last_avail_ms) <= ping_period_ms.saturating_mul(5)
                && r.slave_priority != 0
                && now_ms.saturating_sub(r.info_refresh_ms) <= info_validity_ms
                && r.master_link_down_ms <= max_master_down_ms
        })
        .collect();
    let lowest_first = crate::fault::planted("sentinel-selects-lowest-offset");
    candidates.sort_by(|a, b| {
        let by_offset = if lowest_first {
            a.slave_repl_offset.cmp(&b.slave_repl_offset)
        } else {
            b.slave_repl_offset.cmp(&a.slave_repl_offset)
        };
        a.slave_priority.cmp(&b.slave_priority).then(by_offset).then_with(|| match (&a.runid, &b.runid) {
            (Some(x), Some(y)) => x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()),
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, None) => std::cmp::Ordering::Equal,
        })
    });
    candidates
}

/// `sentinelFailoverStateMachine`.
pub fn state_machine(g: &mut Global, m: &mut Master, now_ms: i64) {
    if !m.in_failover() {
        return;
    }
    match m.failover_state {
        FailoverState::WaitStart => wait_start(g, m, now_ms),
        FailoverState::SelectSlave => select_slave(g, m, now_ms),
        FailoverState::SendSlaveofNoone => send_slaveof_noone(g, m, now_ms),
        FailoverState::WaitPromotion => {
            if now_ms.saturating_sub(m.failover_state_change_ms) > m.failover_timeout_ms {
                let why = m.promoted.as_ref().and_then(|p| m.replicas.get(p)).map(|r| {
                    format!(
                        "{} reported {:?} {} ms ago, INFO {} ms ago, link {:?}",
                        r.name,
                        r.role_reported,
                        now_ms.saturating_sub(r.role_reported_ms),
                        now_ms.saturating_sub(r.info_refresh_ms),
                        r.link
                    )
                });
                g.fact("~promotion-timeout", format!("{} {}", m.name(), why.unwrap_or_default()));
                g.warn(m.name(), "-failover-abort-slave-timeout", at(&m.inst, None));
                abort(g, m, now_ms);
            }
        }
        FailoverState::ReconfSlaves => reconf_next_replica(g, m, now_ms),
        FailoverState::None | FailoverState::UpdateConfig => {}
    }
}

fn wait_start(g: &mut Global, m: &mut Master, now_ms: i64) {
    let epoch = m.failover_epoch;
    let leader = get_leader(g, m, epoch, now_ms);
    let is_leader = leader.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(&g.myid));
    if !is_leader && !m.inst.has(flag::FORCE_FAILOVER) {
        let election_timeout_ms = g.timing.election_timeout_ms.min(m.failover_timeout_ms);
        if now_ms.saturating_sub(m.failover_start_ms) > election_timeout_ms {
            g.warn(m.name(), "-failover-abort-not-elected", at(&m.inst, None));
            g.counters.elections_lost = g.counters.elections_lost.saturating_add(1);
            abort(g, m, now_ms);
        }
        return;
    }
    g.counters.failovers_elected = g.counters.failovers_elected.saturating_add(1);
    // The sentinels it knew: the checker counts the votes itself, from the voters' logs.
    g.fact("~elected", format!("{} {epoch} {}", m.name(), m.sentinels.len().saturating_add(1)));
    g.warn(m.name(), "+elected-leader", at(&m.inst, None));
    m.failover_state = FailoverState::SelectSlave;
    m.failover_state_change_ms = now_ms;
    g.warn(m.name(), "+failover-state-select-slave", at(&m.inst, None));
}

fn select_slave(g: &mut Global, m: &mut Master, now_ms: i64) {
    let listed: Vec<String> = candidates(g, m, now_ms)
        .iter()
        .map(|r| {
            format!("{}:{}:{}:{}", r.name, r.slave_priority, r.slave_repl_offset, r.runid.clone().unwrap_or_default())
        })
        .collect();
    let Some(name) = select_replica(g, m, now_ms) else {
        let why = rejections(g, m, now_ms);
        g.fact("~no-good-slave", format!("{} {}", m.name(), why.join(", ")));
        g.warn(m.name(), "-failover-abort-no-good-slave", at(&m.inst, None));
        abort(g, m, now_ms);
        return;
    };
    g.fact("~selected", format!("{} {name} {}", m.name(), listed.join(",")));
    let master = m.inst.clone();
    if let Some(r) = m.replicas.get_mut(&name) {
        r.flags |= flag::PROMOTED;
        g.warn(&master.name, "+selected-slave", at(r, Some(&master)));
        g.event(Level::Notice, "+failover-state-send-slaveof-noone", at(r, Some(&master)));
    }
    m.promoted = Some(name);
    m.failover_state = FailoverState::SendSlaveofNoone;
    m.failover_state_change_ms = now_ms;
}

fn send_slaveof_noone(g: &mut Global, m: &mut Master, now_ms: i64) {
    let Some(name) = m.promoted.clone() else { return };
    let disconnected = m.replicas.get(&name).is_none_or(|r| r.disconnected());
    if disconnected {
        if now_ms.saturating_sub(m.failover_state_change_ms) > m.failover_timeout_ms {
            let link = m.replicas.get(&name).map(|r| format!("{:?}", r.link)).unwrap_or_default();
            g.fact("~promotion-unsent", format!("{} {name} link {link}", m.name()));
            g.warn(m.name(), "-failover-abort-slave-timeout", at(&m.inst, None));
            abort(g, m, now_ms);
        }
        return;
    }
    if !send_slaveof(g, m, Kind::Replica, &name, None) {
        return;
    }
    if let Some(r) = m.replicas.get(&name) {
        g.event(Level::Notice, "+failover-state-wait-promotion", at(r, Some(&m.inst)));
    }
    m.failover_state = FailoverState::WaitPromotion;
    m.failover_state_change_ms = now_ms;
}

/// `sentinelAbortFailover`: only before the promoted replica accepted the role.
pub fn abort(g: &mut Global, m: &mut Master, now_ms: i64) {
    assert!(m.in_failover());
    assert!(m.failover_state <= FailoverState::WaitPromotion, "abort after promotion");
    m.inst.flags &= !(flag::FAILOVER_IN_PROGRESS | flag::FORCE_FAILOVER);
    m.failover_state = FailoverState::None;
    m.failover_state_change_ms = now_ms;
    if let Some(p) = m.promoted.take() {
        if let Some(r) = m.replicas.get_mut(&p) {
            r.flags &= !flag::PROMOTED;
        }
    }
    g.counters.failovers_aborted = g.counters.failovers_aborted.saturating_add(1);
}

/// `sentinelSendSlaveOf`: the transaction that promotes (`addr` None) or re-points an
/// instance, then rewrites its config and drops its clients so they ask again. False if the
/// command link is down (nothing was queued).
pub fn send_slaveof(g: &mut Global, m: &mut Master, kind: Kind, name: &str, addr: Option<&Addr>) -> bool {
    let names = ["MULTI", "SLAVEOF", "CONFIG", "CLIENT", "EXEC"].map(|c| m.command_name(c));
    let [multi, slaveof, config, client, exec] = names;
    let Some(inst) = super::monitor::inst_mut(m, kind, Some(&name.to_string())) else { return false };
    if !inst.link.cmd_connected {
        return false;
    }
    let (host, port) = match addr {
        None => ("NO".to_string(), "ONE".to_string()),
        Some(a) => (a.host.clone(), a.port.to_string()),
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let commands = vec![
        (vec![multi], ReplyKind::Discard),
        (vec![slaveof, host, port], ReplyKind::Discard),
        (vec![config, "REWRITE".into()], ReplyKind::Discard),
        ([vec![client.clone()], s(&["KILL", "TYPE", "normal"])].concat(), ReplyKind::Discard),
        ([vec![client], s(&["KILL", "TYPE", "pubsub"])].concat(), ReplyKind::Discard),
        (vec![exec], ReplyKind::Discard),
    ];
    inst.link.pending_commands = inst.link.pending_commands.saturating_add(commands.len() as u32);
    let generation = inst.link.generation;
    let inst_ref = inst.clone();
    let to = instance_id(m, &inst_ref);
    g.send(Action::Send { to, generation, commands });
    true
}

/// What INFO from a replica means for the failover and the configuration
/// (the acting half of `sentinelRefreshInstanceInfo`).
pub fn act_on_replica_info(g: &mut Global, m: &mut Master, name: &str, role: Reported, now_ms: i64) {
    let Some(r) = m.replicas.get(name).cloned() else { return };
    if role == Reported::Master {
        if r.has(flag::PROMOTED) && m.in_failover() && m.failover_state == FailoverState::WaitPromotion {
            promoted(g, m, &r, now_ms);
        } else {
            let wait_ms = g.timing.publish_period_ms.saturating_mul(4);
            if !r.has(flag::PROMOTED)
                && master_looks_sane(g, m, now_ms)
                && r.no_down_for(wait_ms, now_ms)
                && now_ms.saturating_sub(r.role_reported_ms) > wait_ms
            {
                let addr = m.inst.addr.clone();
                if send_slaveof(g, m, Kind::Replica, name, Some(&addr)) {
                    g.event(Level::Notice, "+convert-to-slave", at(&r, Some(&m.inst)));
                    crate::fault::probe("sentinel.convert_to_slave");
                }
            }
        }
    }
    let wrong_master = r.slave_master_port != m.inst.addr.port
        || r.slave_master_host.as_deref().is_none_or(|h| !m.inst.addr.host_is(h));
    if role == Reported::Replica && wrong_master {
        let wait_ms = m.failover_timeout_ms;
        if master_looks_sane(g, m, now_ms)
            && r.no_down_for(wait_ms, now_ms)
            && now_ms.saturating_sub(r.slave_conf_change_ms) > wait_ms
        {
            let addr = m.inst.addr.clone();
            if send_slaveof(g, m, Kind::Replica, name, Some(&addr)) {
                g.event(Level::Notice, "+fix-slave-config", at(&r, Some(&m.inst)));
            }
        }
    }
    if role == Reported::Replica && r.has(flag::RECONF_SENT | flag::RECONF_INPROG) {
        track_reconf(g, m, name);
    }
}

/// The promoted replica reports master: the failover's epoch becomes the configuration's.
fn promoted(g: &mut Global, m: &mut Master, r: &Instance, now_ms: i64) {
    m.config_epoch = m.failover_epoch;
    m.failover_state = FailoverState::ReconfSlaves;
    m.failover_state_change_ms = now_ms;
    g.flush_config = true;
    g.warn(m.name(), "+promoted-slave", at(r, Some(&m.inst)));
    g.warn(m.name(), "+failover-state-reconf-slaves", at(&m.inst, None));
    g.client_reconfig(m, true, &m.inst.addr, &r.addr);
    force_hello(g, m);
    crate::fault::probe("sentinel.promoted");
}

/// SENT → INPROG once the replica names the promoted one as master; INPROG → DONE once its
/// link is up.
fn track_reconf(g: &mut Global, m: &mut Master, name: &str) {
    let Some(promoted_addr) = m.promoted.as_ref().and_then(|p| m.replicas.get(p)).map(|p| p.addr.clone()) else {
        return;
    };
    let master = m.inst.clone();
    let Some(r) = m.replicas.get_mut(name) else { return };
    let points_at_promoted = r.slave_master_port == promoted_addr.port
        && r.slave_master_host.as_deref().is_some_and(|h| promoted_addr.host_is(h));
    if r.has(flag::RECONF_SENT) && points_at_promoted {
        r.flags &= !flag::RECONF_SENT;
        r.flags |= flag::RECONF_INPROG;
        g.event(Level::Notice, "+slave-reconf-inprog", at(r, Some(&master)));
    }
    if r.has(flag::RECONF_INPROG) && r.slave_master_link_up {
        r.flags &= !flag::RECONF_INPROG;
        r.flags |= flag::RECONF_DONE;
        g.event(Level::Notice, "+slave-reconf-done", at(r, Some(&master)));
    }
}

/// `sentinelMasterLooksSane`.
fn master_looks_sane(g: &Global, m: &Master, now_ms: i64) -> bool {
    m.inst.role_reported == Reported::Master
        && !m.inst.has(flag::S_DOWN | flag::O_DOWN)
        && now_ms.saturating_sub(m.inst.info_refresh_ms) < g.timing.info_period_ms.saturating_mul(2)
}

/// Hellos to every instance of the master at the next tick (`sentinelForceHelloUpdateForMaster`).
fn force_hello(g: &Global, m: &mut Master) {
    let back = g.timing.publish_period_ms.saturating_add(1);
    for inst in std::iter::once(&mut m.inst).chain(m.replicas.values_mut()).chain(m.sentinels.values_mut()) {
        if inst.last_pub_ms >= back {
            inst.last_pub_ms = inst.last_pub_ms.saturating_sub(back);
        }
    }
}

/// `sentinelFailoverReconfNextSlave`: re-point up to parallel-syncs replicas at a time.
fn reconf_next_replica(g: &mut Global, m: &mut Master, now_ms: i64) {
    let Some(promoted_addr) = m.promoted.as_ref().and_then(|p| m.replicas.get(p)).map(|p| p.addr.clone()) else {
        return;
    };
    let mut in_progress = m.replicas.values().filter(|r| r.has(flag::RECONF_SENT | flag::RECONF_INPROG)).count();
    let names: Vec<String> = m.replicas.keys().cloned().collect();
    let master = m.inst.clone();
    for name in names {
        if in_progress >= m.parallel_syncs as usize {
            break;
        }
        let Some(r) = m.replicas.get_mut(&name) else { continue };
        if r.has(flag::PROMOTED | flag::RECONF_DONE) {
            continue;
        }
        if r.has(flag::RECONF_SENT) && now_ms.saturating_sub(r.slave_reconf_sent_ms) > g.timing.slave_reconf_timeout_ms
        {
            g.event(Level::Notice, "-slave-reconf-sent-timeout", at(r, Some(&master)));
            r.flags &= !flag::RECONF_SENT;
            r.flags |= flag::RECONF_DONE;
        }
        if r.has(flag::RECONF_SENT | flag::RECONF_INPROG) || r.disconnected() {
            continue;
        }
        if send_slaveof(g, m, Kind::Replica, &name, Some(&promoted_addr)) {
            if let Some(r) = m.replicas.get_mut(&name) {
                r.flags |= flag::RECONF_SENT;
                r.slave_reconf_sent_ms = now_ms;
                g.event(Level::Notice, "+slave-reconf-sent", at(r, Some(&master)));
            }
            in_progress = in_progress.saturating_add(1);
        }
    }
    detect_end(g, m, &promoted_addr, now_ms);
}

/// `sentinelFailoverDetectEnd`: every reachable replica re-pointed, or the timeout.
fn detect_end(g: &mut Global, m: &mut Master, promoted_addr: &Addr, now_ms: i64) {
    let promoted_down = m.promoted.as_ref().and_then(|p| m.replicas.get(p)).is_none_or(|p| p.has(flag::S_DOWN));
    if promoted_down {
        return;
    }
    let mut not_reconfigured =
        m.replicas.values().filter(|r| !r.has(flag::PROMOTED | flag::RECONF_DONE | flag::S_DOWN)).count();
    let timeout = now_ms.saturating_sub(m.failover_state_change_ms) > m.failover_timeout_ms;
    if timeout {
        not_reconfigured = 0;
        g.warn(m.name(), "+failover-end-for-timeout", at(&m.inst, None));
    }
    if not_reconfigured == 0 {
        g.warn(m.name(), "+failover-end", at(&m.inst, None));
        m.failover_state = FailoverState::UpdateConfig;
        m.failover_state_change_ms = now_ms;
    }
    if !timeout {
        return;
    }
    let names: Vec<String> = m.replicas.keys().cloned().collect();
    for name in names {
        let Some(r) = m.replicas.get(&name) else { continue };
        if r.has(flag::PROMOTED | flag::RECONF_DONE | flag::RECONF_SENT) || r.disconnected() {
            continue;
        }
        if send_slaveof(g, m, Kind::Replica, &name, Some(promoted_addr)) {
            if let Some(r) = m.replicas.get_mut(&name) {
                r.flags |= flag::RECONF_SENT;
                let t = at(r, Some(&m.inst));
                g.event(Level::Notice, "+slave-reconf-sent-be", t);
            }
        }
    }
}

/// `sentinelFailoverSwitchToPromotedSlave`: the promoted replica becomes the master record.
pub fn switch_to_promoted(g: &mut Global, m: &mut Master, now_ms: i64) {
    let new_addr =
        m.promoted.as_ref().and_then(|p| m.replicas.get(p)).map(|p| p.addr.clone()).unwrap_or(m.inst.addr.clone());
    let old = m.inst.addr.clone();
    let text = format!("{} {} {} {} {}", m.name(), old.host, old.port, new_addr.host, new_addr.port);
    g.warn(m.name(), "+switch-master", text);
    g.counters.failovers_completed = g.counters.failovers_completed.saturating_add(1);
    g.fact("~switch", format!("{} {} {}:{}", m.name(), m.config_epoch, new_addr.host, new_addr.port));
    crate::fault::probe("sentinel.switch_master");
    reset_and_change_address(g, m, &new_addr, now_ms);
    assert!(!m.in_failover() && m.inst.addr == new_addr);
}

/// `sentinelResetMaster`: forget replicas (and sentinels unless `keep_sentinels`), links and
/// failover state.
pub fn reset_master(g: &mut Global, m: &mut Master, keep_sentinels: bool, now_ms: i64) {
    m.replicas.clear();
    if !keep_sentinels {
        m.sentinels.clear();
    }
    let generation = g.new_generation();
    let inst = &mut m.inst;
    inst.flags = 0;
    inst.link = super::instance::Link::new(now_ms, generation);
    inst.link_local_ip = None;
    inst.runid = None;
    inst.slave_master_host = None;
    inst.role_reported_ms = now_ms;
    inst.role_reported = Reported::Master;
    inst.info_refresh_ms = 0;
    m.leader = None;
    m.failover_state = FailoverState::None;
    m.failover_state_change_ms = 0;
    m.failover_start_ms = 0;
    m.promoted = None;
}

/// `sentinelResetMasterAndChangeAddress`: the master record moves to `new_addr`; its replicas
/// (but the new master) and the old master come back as replicas (`+slave`).
pub fn reset_and_change_address(g: &mut Global, m: &mut Master, new_addr: &Addr, now_ms: i64) {
    let mut replicas: Vec<Addr> = m.replicas.values().map(|r| r.addr.clone()).filter(|a| a != new_addr).collect();
    if *new_addr != m.inst.addr {
        replicas.push(m.inst.addr.clone());
    }
    reset_master(g, m, true, now_ms);
    m.inst.addr = new_addr.clone();
    m.inst.o_down_since_ms = 0;
    m.inst.s_down_since_ms = 0;
    for addr in replicas {
        if m.replicas.contains_key(&addr.name()) {
            continue;
        }
        let r = g.instance(Kind::Replica, addr.name(), addr, m.inst.down_after_ms, now_ms);
        g.event(Level::Notice, "+slave", at(&r, Some(&m.inst)));
        m.replicas.insert(r.name.clone(), r);
    }
    g.flush_config = true;
}

impl Sentinel {
    /// SENTINEL IS-MASTER-DOWN-BY-ADDR: (down, leader or "*", leader epoch).
    pub fn is_master_down_by_addr(
        &mut self,
        host: &str,
        port: u16,
        req_epoch: u64,
        runid: &str,
        now_ms: i64,
    ) -> (bool, String, u64) {
        let tilt = self.g.tilt;
        let Some(name) = self
            .masters
            .values()
            .find(|m| m.inst.addr.port == port && m.inst.addr.host_is(host))
            .map(|m| m.name().to_string())
        else {
            return (false, "*".into(), 0);
        };
        let (g, masters) = (&mut self.g, &mut self.masters);
        let Some(m) = masters.get_mut(&name) else { return (false, "*".into(), 0) };
        let down = !tilt && m.inst.has(flag::S_DOWN);
        if runid == "*" {
            return (down, "*".into(), 0);
        }
        let (leader, epoch) = vote_leader(g, m, req_epoch, runid, now_ms);
        (down, leader.unwrap_or_else(|| "*".into()), epoch)
    }

    /// SENTINEL FAILOVER: start without agreement. Err is the reply's error.
    pub fn force_failover(&mut self, name: &str, now_ms: i64) -> Result<(), &'static str> {
        let (g, masters) = (&mut self.g, &mut self.masters);
        let m = masters.get_mut(name).ok_or("ERR No such master with that name")?;
        if m.in_failover() {
            return Err("INPROG Failover already in progress");
        }
        if select_replica(g, m, now_ms).is_none() {
            return Err("NOGOODSLAVE No suitable replica to promote");
        }
        tracing::warn!("Executing user requested FAILOVER of '{name}'");
        start(g, m, now_ms);
        m.inst.flags |= flag::FORCE_FAILOVER;
        Ok(())
    }

    /// SENTINEL RESET <pattern>: how many masters were reset.
    pub fn reset_matching(&mut self, pattern: &[u8], now_ms: i64) -> usize {
        let mut n = 0usize;
        for m in self.masters.values_mut() {
            if crate::glob::glob_match(pattern, m.name().as_bytes(), false) {
                reset_master(&mut self.g, m, false, now_ms);
                self.g.warn(m.name(), "+reset-master", at(&m.inst, None));
                n = n.saturating_add(1);
            }
        }
        if n > 0 {
            self.g.flush_config = true;
        }
        n
    }
}
