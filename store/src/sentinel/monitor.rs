//! Monitoring: the periodic PING, INFO and hello of every instance, what their replies teach
//! (replicas from a master's INFO, sentinels from hellos, roles, reboots), SDOWN, ODOWN and TILT.
//!
//! Why it is shaped this way: each function is one of sentinel.c's, over this module's types,
//! and none does I/O: commands go out as [`Action`]s, replies come back through the `on_*`
//! functions, so a simulated run, a test and production take the same decisions from the same
//! inputs. Every time is read once per call from the caller's `now_ms` (the node clock).

use super::failover;
use super::instance::{flag, Addr, FailoverState, Instance, Kind, Master, Reported};
use super::{at, Action, Global, InstanceId, Level, ReplyKind, Sentinel, HELLO_CHANNEL, PENDING_COMMANDS_MAX};
use crate::client::Resp;

/// The TILT check (`sentinelCheckTiltCondition`): the timer ran backwards, or more than the
/// trigger since the last run: the clock jumped or the process stalled, and every timeout
/// measured across that gap is wrong, so the sentinel watches without acting for a while.
pub fn check_tilt(g: &mut Global, now_ms: i64) {
    let delta = now_ms.saturating_sub(g.previous_time_ms);
    if (delta < 0 || delta > g.timing.tilt_trigger_ms) && !crate::fault::planted("sentinel-no-tilt") {
        g.tilt = true;
        g.tilt_start_ms = now_ms;
        g.counters.tilt_entered = g.counters.tilt_entered.saturating_add(1);
        g.event(Level::Warning, "+tilt", "#tilt mode entered".into());
        crate::fault::probe("sentinel.tilt_entered");
    }
    g.previous_time_ms = now_ms;
}

/// One master, then its replicas, then its sentinels (`sentinelHandleDictOfRedisInstances`).
pub fn handle_master(g: &mut Global, m: &mut Master, now_ms: i64) {
    send_periodic(g, m, Kind::Master, None, now_ms);
    if acting_allowed(g, now_ms) {
        check_sdown(g, m, Kind::Master, None, now_ms);
        check_odown(g, m, now_ms);
        if failover::start_if_needed(g, m, now_ms) {
            ask_master_state(g, m, true, now_ms);
        }
        failover::state_machine(g, m, now_ms);
        ask_master_state(g, m, false, now_ms);
    }
    let replicas: Vec<String> = m.replicas.keys().cloned().collect();
    for name in &replicas {
        send_periodic(g, m, Kind::Replica, Some(name), now_ms);
        if acting_allowed(g, now_ms) {
            check_sdown(g, m, Kind::Replica, Some(name), now_ms);
        }
    }
    let sentinels: Vec<String> = m.sentinels.keys().cloned().collect();
    for name in &sentinels {
        send_periodic(g, m, Kind::Sentinel, Some(name), now_ms);
        if acting_allowed(g, now_ms) {
            check_sdown(g, m, Kind::Sentinel, Some(name), now_ms);
        }
    }
}

/// Whether the acting half runs: not during TILT, which ends after the TILT period.
fn acting_allowed(g: &mut Global, now_ms: i64) -> bool {
    if !g.tilt {
        return true;
    }
    if now_ms.saturating_sub(g.tilt_start_ms) < g.timing.tilt_period_ms {
        return false;
    }
    g.tilt = false;
    g.event(Level::Warning, "-tilt", "#tilt mode exited".into());
    true
}

/// The instance of `m` that `kind`/`name` select (the master itself for `None`).
pub fn inst_mut<'a>(m: &'a mut Master, kind: Kind, name: Option<&String>) -> Option<&'a mut Instance> {
    match (kind, name) {
        (Kind::Master, _) => Some(&mut m.inst),
        (Kind::Replica, Some(n)) => m.replicas.get_mut(n),
        (Kind::Sentinel, Some(n)) => m.sentinels.get_mut(n),
        _ => None,
    }
}

/// The same, read-only.
pub fn inst_ref<'a>(m: &'a Master, kind: Kind, name: Option<&String>) -> Option<&'a Instance> {
    match (kind, name) {
        (Kind::Master, _) => Some(&m.inst),
        (Kind::Replica, Some(n)) => m.replicas.get(n),
        (Kind::Sentinel, Some(n)) => m.sentinels.get(n),
        _ => None,
    }
}

fn id_of(m: &Master, inst: &Instance) -> InstanceId {
    InstanceId { master: m.name().to_string(), kind: inst.kind, name: inst.name.clone() }
}

/// PING, INFO and hello when due (`sentinelSendPeriodicCommands`). Called for every instance
/// on every tick, and mostly nothing is due: what is due is decided first, and the commands'
/// strings are built only then (with 50 masters this was most of the sentinel's idle CPU).
fn send_periodic(g: &mut Global, m: &mut Master, kind: Kind, name: Option<&String>, now_ms: i64) {
    let master_busy = m.inst.has(flag::O_DOWN | flag::FAILOVER_IN_PROGRESS);
    let (info_due, ping_due, hello_due) = {
        let Some(inst) = inst_ref(m, kind, name) else { return };
        if inst.disconnected() || inst.link.pending_commands >= PENDING_COMMANDS_MAX {
            return;
        }
        let info_period_ms = if kind == Kind::Replica && (master_busy || inst.master_link_down_ms != 0) {
            1000
        } else {
            g.timing.info_period_ms
        };
        let ping_period_ms = inst.down_after_ms.min(g.timing.ping_period_ms);
        let info_due = kind != Kind::Sentinel
            && (inst.info_refresh_ms == 0 || since(now_ms, inst.info_refresh_ms) > info_period_ms);
        let ping_due = since(now_ms, inst.link.last_pong_ms) > ping_period_ms
            && since(now_ms, inst.link.last_ping_ms) > ping_period_ms / 2;
        let hello_due = since(now_ms, inst.last_pub_ms) > g.timing.publish_period_ms && inst.link_local_ip.is_some();
        (info_due, ping_due, hello_due)
    };
    if !(info_due || ping_due || hello_due) {
        return;
    }
    // Renamed commands apply to the master's group, not to other sentinels (Redis's
    // `sentinelInstanceMapCommand`).
    let mapped = |c: &str| if kind == Kind::Sentinel { c.to_string() } else { m.command_name(c) };
    let mut commands = Vec::new();
    if info_due {
        commands.push((vec![mapped("INFO")], ReplyKind::Info));
    }
    let ping_cmd = ping_due.then(|| mapped("PING"));
    let hello = hello_due.then(|| (mapped("PUBLISH"), hello_payload(g, m)));
    let master_name = m.name().to_string();
    let Some(inst) = inst_mut(m, kind, name) else { return };
    if let Some(ping_cmd) = ping_cmd {
        inst.link.last_ping_ms = now_ms;
        if inst.link.act_ping_ms == 0 {
            inst.link.act_ping_ms = now_ms;
        }
        commands.push((vec![ping_cmd], ReplyKind::Ping));
    }
    if let (Some((publish_cmd, hello)), Some(local_ip)) = (hello, inst.link_local_ip.as_deref()) {
        let (ip, port) = g.announce(local_ip);
        let payload = format!("{ip},{port},{hello}");
        commands.push((vec![publish_cmd, HELLO_CHANNEL.to_string(), payload], ReplyKind::Publish));
    }
    debug_assert!(!commands.is_empty());
    inst.link.pending_commands = inst.link.pending_commands.saturating_add(commands.len() as u32);
    let to = InstanceId { master: master_name, kind, name: inst.name.clone() };
    g.send(Action::Send { to, generation: inst.link.generation, commands });
}

/// Milliseconds since `then_ms`, for deciding whether a periodic command is due. A time in
/// the future (the clock went back since it was taken) counts as long ago. A deliberate
/// difference from Redis, which computes `now - then` and so sends no INFO (nor PING, nor
/// hello) to an instance until the clock catches up with the time it last did: after a jump
/// back of a minute, a promoted replica's INFO was not asked for, its promotion never seen,
/// and every failover attempt timed out (simulator, seed 2165).
fn since(now_ms: i64, then_ms: i64) -> i64 {
    if then_ms > now_ms {
        i64::MAX
    } else {
        now_ms.saturating_sub(then_ms)
    }
}

/// The hello's part after this sentinel's address: `myid,current_epoch,master_name,master_ip,
/// master_port,master_config_epoch` (`sentinelSendHello`).
fn hello_payload(g: &Global, m: &Master) -> String {
    let addr = m.current_addr();
    format!("{},{},{},{},{},{}", g.myid, g.current_epoch, m.name(), addr.host, addr.port, m.config_epoch)
}

/// SDOWN, and link recycling (`sentinelCheckSubjectivelyDown`). Runs for every instance on
/// every tick: it allocates only when it acts (closes a link, raises an event).
fn check_sdown(g: &mut Global, m: &mut Master, kind: Kind, name: Option<&String>, now_ms: i64) {
    let reboot_period_ms = m.master_reboot_down_after_ms;
    let min_reconnect_ms = g.timing.min_link_reconnect_period_ms;
    let publish_period_ms = g.timing.publish_period_ms;
    let info_period_ms = g.timing.info_period_ms;
    let Some(inst) = inst_mut(m, kind, name) else { return };
    let link = &inst.link;
    let elapsed_ms = if link.act_ping_ms != 0 {
        now_ms.saturating_sub(link.act_ping_ms)
    } else if inst.disconnected() {
        now_ms.saturating_sub(link.last_avail_ms)
    } else {
        0
    };
    let half_ms = inst.down_after_ms / 2;
    let close_cmd = link.cmd_connected
        && now_ms.saturating_sub(link.cmd_conn_ms) > min_reconnect_ms
        && link.act_ping_ms != 0
        && now_ms.saturating_sub(link.act_ping_ms) > half_ms
        && now_ms.saturating_sub(link.last_pong_ms) > half_ms;
    if close_cmd {
        inst.link.cmd_connected = false;
        inst.link.pending_commands = 0;
    }
    let link = &inst.link;
    let close_pubsub = link.pubsub_connected
        && now_ms.saturating_sub(link.pubsub_conn_ms) > min_reconnect_ms
        && now_ms.saturating_sub(link.pubsub_last_activity_ms) > publish_period_ms.saturating_mul(3);
    if close_pubsub {
        inst.link.pubsub_connected = false;
    }
    // `since`: a role change seen before the clock went back counts as long ago, as for the
    // periodic commands (durability-failover seed 16: a master that had handed over was seen
    // reporting "slave" at a time 47 s ahead of the clock after the heal, and was not judged
    // down for over a minute).
    let claims_replica = inst.kind == Kind::Master
        && inst.role_reported == Reported::Replica
        && since(now_ms, inst.role_reported_ms) > inst.down_after_ms.saturating_add(info_period_ms.saturating_mul(2));
    let rebooted =
        inst.has(flag::MASTER_REBOOT) && now_ms.saturating_sub(inst.master_reboot_since_ms) > reboot_period_ms;
    let down = elapsed_ms > inst.down_after_ms || claims_replica || rebooted;
    let event = if down && !inst.has(flag::S_DOWN) {
        inst.s_down_since_ms = now_ms;
        inst.flags |= flag::S_DOWN;
        Some("+sdown")
    } else if !down && inst.has(flag::S_DOWN) {
        inst.flags &= !(flag::S_DOWN | flag::SCRIPT_KILL_SENT);
        Some("-sdown")
    } else {
        None
    };
    if !close_cmd && !close_pubsub && event.is_none() {
        return;
    }
    let Some(inst) = inst_ref(m, kind, name) else { return };
    let to = InstanceId { master: m.name().to_string(), kind, name: inst.name.clone() };
    let generation = inst.link.generation;
    if close_cmd {
        g.send(Action::Close { to: to.clone(), generation, pubsub: false });
    }
    if close_pubsub {
        g.send(Action::Close { to: to.clone(), generation, pubsub: true });
    }
    if let Some(event) = event {
        let text = at(inst, (kind != Kind::Master).then_some(&m.inst));
        g.warn(&to.master, event, text);
    }
}

/// ODOWN: own SDOWN plus enough sentinels saying the master is down (`sentinelCheckObjectivelyDown`).
fn check_odown(g: &mut Global, m: &mut Master, now_ms: i64) {
    let mut quorum: u32 = 0;
    let mut odown = false;
    if m.inst.has(flag::S_DOWN) {
        let others = m.sentinels.values().filter(|s| s.has(flag::MASTER_DOWN)).count();
        quorum = u32::try_from(others).unwrap_or(u32::MAX).saturating_add(1);
        odown = quorum >= m.quorum;
    }
    if odown && !m.inst.has(flag::O_DOWN) {
        m.inst.flags |= flag::O_DOWN;
        m.inst.o_down_since_ms = now_ms;
        g.warn(m.name(), "+odown", format!("{} #quorum {}/{}", at(&m.inst, None), quorum, m.quorum));
        crate::fault::probe("sentinel.odown");
    } else if !odown && m.inst.has(flag::O_DOWN) {
        m.inst.flags &= !flag::O_DOWN;
        g.warn(m.name(), "-odown", at(&m.inst, None));
    }
}

/// SENTINEL is-master-down-by-addr to the other sentinels while the master is SDOWN, a vote
/// request once a failover started (`sentinelAskMasterStateToOtherSentinels`).
pub fn ask_master_state(g: &mut Global, m: &mut Master, forced: bool, now_ms: i64) {
    let ask_period_ms = g.timing.ask_period_ms;
    for s in m.sentinels.values_mut() {
        if now_ms.saturating_sub(s.last_master_down_reply_ms) > ask_period_ms.saturating_mul(5) {
            s.flags &= !flag::MASTER_DOWN;
            s.leader = None;
        }
    }
    // Asked only while the master is SDOWN: most ticks stop here, before any allocation.
    if !m.inst.has(flag::S_DOWN) {
        return;
    }
    let runid = if m.failover_state > FailoverState::None { g.myid.clone() } else { "*".to_string() };
    let command = m.command_name("SENTINEL");
    let addr = m.inst.addr.clone();
    let master_name = m.name().to_string();
    let epoch = g.current_epoch;
    for s in m.sentinels.values_mut() {
        let elapsed_ms = now_ms.saturating_sub(s.last_master_down_reply_ms);
        if s.disconnected() || (!forced && elapsed_ms < ask_period_ms) {
            continue;
        }
        let args = vec![
            command.clone(),
            "is-master-down-by-addr".to_string(),
            addr.host.clone(),
            addr.port.to_string(),
            epoch.to_string(),
            runid.clone(),
        ];
        s.link.pending_commands = s.link.pending_commands.saturating_add(1);
        let to = InstanceId { master: master_name.clone(), kind: Kind::Sentinel, name: s.name.clone() };
        g.send(Action::Send { to, generation: s.link.generation, commands: vec![(args, ReplyKind::IsMasterDown)] });
    }
}

impl Sentinel {
    /// A connection attempt starts (`sentinelReconnectInstance`): as in Redis, the link counts
    /// as connected while the connection is in progress, and the command link queues a PING at
    /// once, so down-after is measured from the first attempt that goes unanswered (a killed
    /// instance is SDOWN down-after milliseconds after its first failed reconnect, not from
    /// its last PONG, and a live one whose connection a CLIENT KILL dropped is pinged again
    /// right away).
    pub fn on_link_connecting(&mut self, id: &InstanceId, generation: u64, pubsub: bool, now_ms: i64) {
        let Some((g, m, _)) = self.instance_mut(id) else { return };
        let ping = if id.kind == Kind::Sentinel { "PING".to_string() } else { m.command_name("PING") };
        let Some(inst) = inst_mut(m, id.kind, Some(&id.name)) else { return };
        if inst.link.generation != generation {
            return;
        }
        if pubsub {
            inst.link.pubsub_connected = true;
            inst.link.pubsub_conn_ms = now_ms;
            inst.link.pubsub_last_activity_ms = now_ms;
            return;
        }
        inst.link.cmd_connected = true;
        inst.link.cmd_conn_ms = now_ms;
        inst.link.pending_commands = 1;
        inst.link.last_ping_ms = now_ms;
        if inst.link.act_ping_ms == 0 {
            inst.link.act_ping_ms = now_ms;
        }
        let commands = vec![(vec![ping], ReplyKind::Ping)];
        g.send(Action::Send { to: id.clone(), generation, commands });
    }

    /// A connection is established (`pubsub`: the hello subscription is active); the command
    /// link tells the local address hellos announce.
    pub fn on_link_up(&mut self, id: &InstanceId, generation: u64, pubsub: bool, local_ip: &str, now_ms: i64) {
        let Some((_, m, _)) = self.instance_mut(id) else { return };
        let Some(inst) = inst_mut(m, id.kind, Some(&id.name)) else { return };
        if inst.link.generation != generation {
            return;
        }
        if pubsub {
            inst.link.pubsub_last_activity_ms = now_ms;
        } else {
            inst.link_local_ip = Some(local_ip.to_string());
        }
    }

    /// A connection closed or could not be opened.
    pub fn on_link_down(&mut self, id: &InstanceId, generation: u64, pubsub: bool) {
        let Some((_, m, _)) = self.instance_mut(id) else { return };
        let Some(inst) = inst_mut(m, id.kind, Some(&id.name)) else { return };
        if inst.link.generation != generation {
            return;
        }
        if pubsub {
            inst.link.pubsub_connected = false;
        } else {
            inst.link.cmd_connected = false;
            inst.link.pending_commands = 0;
        }
    }

    /// A message on an instance's hello subscription (any message counts as activity).
    pub fn on_pubsub_message(&mut self, id: &InstanceId, generation: u64, channel: &str, payload: &str, now_ms: i64) {
        {
            let Some((_, m, _)) = self.instance_mut(id) else { return };
            let Some(inst) = inst_mut(m, id.kind, Some(&id.name)) else { return };
            if inst.link.generation != generation {
                return;
            }
            inst.link.pubsub_last_activity_ms = now_ms;
        }
        if channel != HELLO_CHANNEL || payload.contains(self.g.myid.as_str()) {
            return;
        }
        self.process_hello(payload, now_ms);
    }

    /// A reply on an instance's command link.
    pub fn on_reply(&mut self, id: &InstanceId, generation: u64, kind: ReplyKind, reply: &Resp, now_ms: i64) {
        let Some((g, m, _)) = self.instance_mut(id) else { return };
        let Some(inst) = inst_mut(m, id.kind, Some(&id.name)) else { return };
        if inst.link.generation != generation {
            return;
        }
        inst.link.pending_commands = inst.link.pending_commands.saturating_sub(1);
        match kind {
            ReplyKind::Ping => on_ping_reply(g, m, id, reply, now_ms),
            ReplyKind::Info => {
                if let Resp::Bulk(Some(text)) = reply {
                    let text = String::from_utf8_lossy(text).into_owned();
                    refresh_info(g, m, id, &text, now_ms);
                }
            }
            ReplyKind::Publish => {
                if !reply.is_error() {
                    inst.last_pub_ms = now_ms;
                }
            }
            ReplyKind::IsMasterDown => on_is_master_down_reply(inst, reply, now_ms),
            ReplyKind::Discard => {}
        }
    }
}

/// `sentinelPingReplyCallback`: PONG, LOADING and MASTERDOWN mean alive.
fn on_ping_reply(g: &mut Global, m: &mut Master, id: &InstanceId, reply: &Resp, now_ms: i64) {
    let command = m.command_name("SCRIPT");
    let Some(inst) = inst_mut(m, id.kind, Some(&id.name)) else { return };
    let text = match reply {
        Resp::Simple(s) | Resp::Error(s) => s.clone(),
        _ => String::new(),
    };
    if matches!(reply, Resp::Simple(_) | Resp::Error(_)) {
        if text.starts_with("PONG") || text.starts_with("LOADING") || text.starts_with("MASTERDOWN") {
            inst.link.last_avail_ms = now_ms;
            inst.link.act_ping_ms = 0;
            if inst.has(flag::MASTER_REBOOT) && text.starts_with("PONG") {
                inst.flags &= !flag::MASTER_REBOOT;
            }
        } else if text.starts_with("BUSY") && inst.has(flag::S_DOWN) && !inst.has(flag::SCRIPT_KILL_SENT) {
            inst.flags |= flag::SCRIPT_KILL_SENT;
            inst.link.pending_commands = inst.link.pending_commands.saturating_add(1);
            let commands = vec![(vec![command, "KILL".to_string()], ReplyKind::Discard)];
            g.send(Action::Send { to: id.clone(), generation: inst.link.generation, commands });
        }
    }
    inst.link.last_pong_ms = now_ms;
}

/// `sentinelReceiveIsMasterDownReply`: `[down 0|1, leader runid or *, leader epoch]`.
fn on_is_master_down_reply(s: &mut Instance, reply: &Resp, now_ms: i64) {
    let Some([Resp::Int(down), leader, Resp::Int(epoch)]) = reply.items() else { return };
    let Some(leader) = leader.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()) else { return };
    s.last_master_down_reply_ms = now_ms;
    if *down == 1 {
        s.flags |= flag::MASTER_DOWN;
    } else {
        s.flags &= !flag::MASTER_DOWN;
    }
    if leader != "*" {
        s.leader = Some(leader);
        s.leader_epoch = u64::try_from(*epoch).unwrap_or(0);
    }
}

/// What one INFO reply says, parsed as sentinel.c does (line by line; the replica fields only
/// after `role:slave`).
#[derive(Debug, Default)]
struct InfoFacts {
    run_id: Option<String>,
    replicas: Vec<Addr>,
    master_link_down_ms: i64,
    role: Option<Reported>,
    master_host: Option<String>,
    master_port: Option<u16>,
    link_up: Option<bool>,
    priority: Option<i64>,
    repl_offset: Option<u64>,
    announced: Option<bool>,
}

fn parse_info(text: &str) -> InfoFacts {
    let mut f = InfoFacts::default();
    for l in text.split("\r\n").flat_map(|l| l.split('\n')) {
        if let Some(id) = l.strip_prefix("run_id:") {
            if id.len() >= 40 && id.is_char_boundary(40) {
                f.run_id = Some(id[..40].to_string());
            }
        }
        if l.len() >= 7 && l.starts_with("slave") && l.as_bytes()[5].is_ascii_digit() {
            if let Some(a) = parse_replica_line(l) {
                f.replicas.push(a);
            }
        }
        if let Some(v) = l.strip_prefix("master_link_down_since_seconds:") {
            f.master_link_down_ms = v.trim().parse::<i64>().unwrap_or(0).saturating_mul(1000);
        }
        if l.starts_with("role:master") {
            f.role = Some(Reported::Master);
        } else if l.starts_with("role:slave") {
            f.role = Some(Reported::Replica);
        }
        if f.role != Some(Reported::Replica) {
            continue;
        }
        if let Some(v) = l.strip_prefix("master_host:") {
            f.master_host = Some(v.to_string());
        } else if let Some(v) = l.strip_prefix("master_port:") {
            f.master_port = Some(v.trim().parse().unwrap_or(0));
        } else if let Some(v) = l.strip_prefix("master_link_status:") {
            f.link_up = Some(v.eq_ignore_ascii_case("up"));
        } else if let Some(v) = l.strip_prefix("slave_priority:") {
            f.priority = Some(v.trim().parse().unwrap_or(0));
        } else if let Some(v) = l.strip_prefix("slave_repl_offset:") {
            f.repl_offset = Some(v.trim().parse().unwrap_or(0));
        } else if let Some(v) = l.strip_prefix("replica_announced:") {
            f.announced = Some(v.trim().parse::<i64>().unwrap_or(0) != 0);
        }
    }
    f
}

/// `slave0:ip=...,port=...,...` (or the old `slave0:<ip>,<port>,<state>`).
fn parse_replica_line(l: &str) -> Option<Addr> {
    let (_, rest) = l.split_once(':')?;
    let (ip, port) = if rest.contains("ip=") {
        let field = |k: &str| rest.split(',').find_map(|p| p.strip_prefix(k)).map(str::to_string);
        (field("ip=")?, field("port=")?)
    } else {
        let mut parts = rest.split(',');
        let ip = parts.next()?.to_string();
        let port = parts.next()?.to_string();
        parts.next()?;
        (ip, port)
    };
    let port: u16 = port.trim().parse().ok()?;
    Some(Addr::new(&ip, port))
}

/// `sentinelRefreshInstanceInfo`: record what INFO says, then act on it.
fn refresh_info(g: &mut Global, m: &mut Master, id: &InstanceId, text: &str, now_ms: i64) {
    let facts = parse_info(text);
    let master_inst = m.inst.clone();
    let reboot_period_ms = m.master_reboot_down_after_ms;
    {
        let Some(inst) = inst_mut(m, id.kind, Some(&id.name)) else { return };
        let master_ref = (inst.kind != Kind::Master).then_some(&master_inst);
        inst.info = Some(text.to_string());
        inst.master_link_down_ms = facts.master_link_down_ms;
        if let Some(run_id) = &facts.run_id {
            if inst.runid.as_ref().is_some_and(|old| old != run_id) {
                let t = at(inst, master_ref);
                g.event(Level::Notice, "+reboot", t);
                if inst.kind == Kind::Master && reboot_period_ms != 0 {
                    inst.flags |= flag::MASTER_REBOOT;
                    inst.master_reboot_since_ms = now_ms;
                }
            }
            inst.runid = Some(run_id.clone());
        }
        record_replica_fields(inst, &facts, now_ms);
        inst.info_refresh_ms = now_ms;
        let role = facts.role.unwrap_or(Reported::Unknown);
        if role != inst.role_reported {
            inst.role_reported_ms = now_ms;
            inst.role_reported = role;
            if role == Reported::Replica {
                inst.slave_conf_change_ms = now_ms;
            }
            let coherent =
                matches!((inst.kind, role), (Kind::Master, Reported::Master) | (Kind::Replica, Reported::Replica));
            let word = if role == Reported::Master { "master" } else { "slave" };
            let t = format!("{} new reported role is {word}", at(inst, master_ref));
            g.event(Level::Verbose, if coherent { "+role-change" } else { "-role-change" }, t);
        }
    }
    if id.kind == Kind::Master {
        discover_replicas(g, m, &facts.replicas, now_ms);
    }
    if g.tilt {
        return;
    }
    if id.kind == Kind::Replica {
        failover::act_on_replica_info(g, m, &id.name, facts.role.unwrap_or(Reported::Unknown), now_ms);
    }
}

fn record_replica_fields(inst: &mut Instance, f: &InfoFacts, now_ms: i64) {
    if let Some(host) = &f.master_host {
        if inst.slave_master_host.as_ref().is_none_or(|h| !h.eq_ignore_ascii_case(host)) {
            inst.slave_master_host = Some(host.clone());
            inst.slave_conf_change_ms = now_ms;
        }
    }
    if let Some(port) = f.master_port {
        if inst.slave_master_port != port {
            inst.slave_master_port = port;
            inst.slave_conf_change_ms = now_ms;
        }
    }
    if let Some(up) = f.link_up {
        inst.slave_master_link_up = up;
    }
    if let Some(p) = f.priority {
        inst.slave_priority = p;
    }
    if let Some(o) = f.repl_offset {
        inst.slave_repl_offset = o;
    }
    if let Some(a) = f.announced {
        inst.replica_announced = a;
    }
}

/// Replicas a master lists become instances (`+slave`). Port 0 means it never announced one.
fn discover_replicas(g: &mut Global, m: &mut Master, found: &[Addr], now_ms: i64) {
    for addr in found {
        if addr.port == 0 || m.replica_at(&addr.host, addr.port).is_some() {
            continue;
        }
        if m.replicas.len() >= super::INSTANCES_PER_MASTER_MAX {
            break;
        }
        let replica = g.instance(Kind::Replica, addr.name(), addr.clone(), m.inst.down_after_ms, now_ms);
        let t = at(&replica, Some(&m.inst));
        m.replicas.insert(replica.name.clone(), replica);
        g.event(Level::Notice, "+slave", t);
        g.flush_config = true;
    }
}

impl Sentinel {
    /// A hello from another sentinel, through an instance's channel or our PUBLISH
    /// (`sentinelProcessHelloMessage`).
    pub fn process_hello(&mut self, hello: &str, now_ms: i64) {
        let t: Vec<&str> = hello.split(',').collect();
        let [ip, port, runid, epoch, master_name, master_ip, master_port, master_epoch] = t[..] else { return };
        if !self.masters.contains_key(master_name) {
            return;
        }
        let port: u16 = port.parse().unwrap_or(0);
        let master_port: u16 = master_port.parse().unwrap_or(0);
        let current_epoch: u64 = epoch.parse().unwrap_or(0);
        let master_config_epoch: u64 = master_epoch.parse().unwrap_or(0);
        let known = self
            .masters
            .get(master_name)
            .and_then(|m| m.sentinels.get(runid))
            .is_some_and(|s| s.addr.port == port && s.addr.host_is(ip));
        if !known {
            self.add_sentinel(master_name, ip, port, runid, now_ms);
        }
        if current_epoch > self.g.current_epoch {
            self.g.current_epoch = current_epoch;
            self.g.flush_config = true;
            self.g.warn(master_name, "+new-epoch", current_epoch.to_string());
        }
        let Some(m) = self.masters.get_mut(master_name) else { return };
        let Some(si) = m.sentinels.get(runid).cloned() else { return };
        if m.config_epoch < master_config_epoch && !crate::fault::planted("sentinel-ignores-newer-config") {
            m.config_epoch = master_config_epoch;
            // Compared with the address this sentinel itself advertises, not the master record:
            // Redis compares with `master->addr`, so a newer configuration that arrives while its
            // own failover is reconfiguring replicas (and names the old master's address) is
            // taken as agreement, and its own failover then switches to its promoted replica
            // under the newer epoch: two addresses for one epoch, which the simulator's
            // sentinel-config-epochs-agree checker found. Here the newer configuration wins and
            // ends the failover in progress.
            let current = m.current_addr().clone();
            if m.in_failover() {
                crate::fault::probe("sentinel.newer_config_during_failover");
            }
            if master_port != current.port || !current.host_is(master_ip) {
                let g = &mut self.g;
                g.warn(m.name(), "+config-update-from", at(&si, Some(&m.inst)));
                let old = m.inst.addr.clone();
                let name = m.name().to_string();
                let text = format!("{name} {} {} {master_ip} {master_port}", old.host, old.port);
                g.warn(&name, "+switch-master", text);
                crate::fault::probe("sentinel.config_update_from_hello");
                g.fact("~switch", format!("{name} {master_config_epoch} {master_ip}:{master_port}"));
                let new_addr = Addr::new(master_ip, master_port);
                failover::reset_and_change_address(g, m, &new_addr, now_ms);
                g.client_reconfig(m, false, &old, &new_addr);
            }
        }
        if let Some(s) = m.sentinels.get_mut(runid) {
            s.last_hello_ms = now_ms;
        }
    }

    /// A sentinel not known at this address: replaces any entry with its run id (it moved) or
    /// at its address (another sentinel took the address), then adds it.
    fn add_sentinel(&mut self, master_name: &str, ip: &str, port: u16, runid: &str, now_ms: i64) {
        let moved = self.masters.get_mut(master_name).map(|m| m.sentinels.remove(runid).is_some()).unwrap_or(false);
        if moved {
            let m = &self.masters[master_name];
            let text = format!("{} ip {ip} port {port} for {runid}", at(&m.inst, None));
            self.g.event(Level::Notice, "+sentinel-address-switch", text);
        } else {
            let other = self.masters.get(master_name).and_then(|m| {
                m.sentinels
                    .values()
                    .find(|s| s.addr.port == port && s.addr.host_is(ip))
                    .map(|s| (s.name.clone(), at(s, Some(&m.inst))))
            });
            if let Some((obsolete, text)) = other {
                self.g.event(Level::Notice, "+sentinel-invalid-addr", text);
                for m in self.masters.values_mut() {
                    m.sentinels.remove(&obsolete);
                }
            }
        }
        let g = &mut self.g;
        let Some(m) = self.masters.get_mut(master_name) else { return };
        if m.sentinels.len() >= super::INSTANCES_PER_MASTER_MAX {
            return;
        }
        let mut s = g.instance(Kind::Sentinel, runid.to_string(), Addr::new(ip, port), m.inst.down_after_ms, now_ms);
        s.runid = Some(runid.to_string());
        if !moved {
            g.event(Level::Notice, "+sentinel", at(&s, Some(&m.inst)));
        }
        m.sentinels.insert(runid.to_string(), s);
        g.flush_config = true;
    }
}

/// `id` for an instance of `m` (used by the failover code to address its commands).
pub fn instance_id(m: &Master, inst: &Instance) -> InstanceId {
    id_of(m, inst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_parsing_follows_sentinel_c() {
        let text = "# Server\r\nrun_id:0123456789012345678901234567890123456789\r\n# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:6379\r\nmaster_link_status:up\r\nslave_repl_offset:42\r\nslave_priority:10\r\nreplica_announced:0\r\n";
        let f = parse_info(text);
        assert_eq!(f.run_id.as_deref(), Some("0123456789012345678901234567890123456789"));
        assert_eq!(f.role, Some(Reported::Replica));
        assert_eq!((f.master_host.as_deref(), f.master_port), (Some("10.0.0.1"), Some(6379)));
        assert_eq!((f.link_up, f.repl_offset, f.priority, f.announced), (Some(true), Some(42), Some(10), Some(false)));
        // Replica fields before the role line are ignored, as in Redis.
        let f = parse_info("master_host:x\r\nrole:master\r\nslave0:ip=1.2.3.4,port=6380,state=online,offset=1,lag=0\r\nslave1:5.6.7.8,6381,online\r\n");
        assert_eq!(f.master_host, None);
        assert_eq!(f.replicas, vec![Addr::new("1.2.3.4", 6380), Addr::new("5.6.7.8", 6381)]);
        // A short run id is not one.
        assert_eq!(parse_info("run_id:abc\r\n").run_id, None);
    }
}
