//! Sentinel: automatic failover for master/replica groups, wire-compatible with redis-sentinel 7.
//!
//! Why it is shaped this way:
//! - Redis runs Sentinel as a mode of redis-server: the same event loop, client handling and
//!   pub/sub, a different command table, and a timer. So does this code base: a sentinel node
//!   is a [`crate::server::Server`] whose command table is [`crate::cmd::sentinel`]'s and whose
//!   `State` holds a [`Sentinel`]; the listener, connection loop, client registry (CLIENT),
//!   pub/sub (the event channels) and connection commands are the server's own, unchanged.
//! - The sentinel's logic is a state machine with no I/O ([`Sentinel::tick`] and the `on_*`
//!   handlers): it reads what its links reported, decides, and queues [`Action`]s (commands to
//!   send) and [`Event`]s (to log and publish). `link.rs` owns the sockets: it carries the
//!   actions out and feeds the replies back under the state lock. Decisions are therefore
//!   replayable from a seed: every time is the node clock's, every random draw the node RNG's.
//! - The code follows Redis's sentinel.c function by function (the names say which), because
//!   interoperating with real sentinels means voting, counting and timing exactly as they do.
//!
//! Module map: [`instance`] (what is known about each instance), [`monitor`] (links, PING,
//! INFO, hello, SDOWN/ODOWN, TILT), [`failover`] (votes, the election, the failover state
//! machine), [`config`] (the `sentinel` directives and the state written back to the file),
//! [`scripts`] (the notification and client-reconfiguration script queue), [`link`] (the
//! connections and the script processes).

pub mod config;
pub mod failover;
pub mod instance;
pub mod link;
pub mod monitor;
pub mod scripts;

use std::collections::BTreeMap;

use instance::{Addr, Kind, Master};

/// The channel sentinels announce themselves on, through every monitored instance.
pub const HELLO_CHANNEL: &str = "__sentinel__:hello";
/// Sentinel's default port.
pub const DEFAULT_PORT: u16 = 26379;
/// Commands that may wait on one link before periodic ones are skipped
/// (`SENTINEL_MAX_PENDING_COMMANDS`).
pub const PENDING_COMMANDS_MAX: u32 = 100;
/// Masters one sentinel may monitor (a limit on what a client's SENTINEL MONITOR can allocate).
pub const MASTERS_MAX: usize = 10_000;
/// Replicas and sentinels remembered per master (discovered from INFO and hellos a peer sends).
pub const INSTANCES_PER_MASTER_MAX: usize = 1_000;
/// Random delay added to a failover start so sentinels do not all ask for votes at once
/// (`SENTINEL_MAX_DESYNC`).
pub const MAX_DESYNC_MS: u64 = 1000;

/// The timing parameters, Redis's defaults; SENTINEL DEBUG changes them at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    pub info_period_ms: i64,
    pub ping_period_ms: i64,
    pub ask_period_ms: i64,
    pub publish_period_ms: i64,
    pub default_down_after_ms: i64,
    pub default_failover_timeout_ms: i64,
    pub tilt_trigger_ms: i64,
    pub tilt_period_ms: i64,
    pub slave_reconf_timeout_ms: i64,
    pub min_link_reconnect_period_ms: i64,
    pub election_timeout_ms: i64,
    pub script_max_runtime_ms: i64,
    pub script_retry_delay_ms: i64,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            info_period_ms: 10_000,
            ping_period_ms: 1000,
            ask_period_ms: 1000,
            publish_period_ms: 2000,
            default_down_after_ms: 30_000,
            default_failover_timeout_ms: 180_000,
            tilt_trigger_ms: 2000,
            tilt_period_ms: 30_000,
            slave_reconf_timeout_ms: 10_000,
            min_link_reconnect_period_ms: 15_000,
            election_timeout_ms: 10_000,
            script_max_runtime_ms: 60_000,
            script_retry_delay_ms: 30_000,
        }
    }
}

/// Log level of an event (Redis's LL_WARNING / LL_NOTICE / LL_VERBOSE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Not logged nor published: a fact for the simulator's checkers (`~elected`, `~switch`).
    Fact,
    Verbose,
    Notice,
    Warning,
}

/// Something that happened, to be logged and published on the channel named `kind`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub level: Level,
    pub kind: String,
    pub text: String,
    /// The master the event is about, if any: its `notification-script` runs for WARNING
    /// events (Redis passes the instance to `sentinelEvent`; TILT events have none).
    pub master: Option<String>,
}

/// Which instance an action or a link report is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InstanceId {
    pub master: String,
    pub kind: Kind,
    /// The instance's name within its master: the master's name, a replica's `ip:port`, a
    /// sentinel's run id.
    pub name: String,
}

/// What a queued command's reply is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    Ping,
    Info,
    Publish,
    IsMasterDown,
    /// MULTI/SLAVEOF/.../EXEC, AUTH, SCRIPT KILL: judged later from INFO, as Redis does.
    Discard,
}

/// Work for the link layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send these commands, in order, on the instance's command link.
    Send { to: InstanceId, generation: u64, commands: Vec<(Vec<String>, ReplyKind)> },
    /// Close one of the instance's connections (link recycling); it is reopened.
    Close { to: InstanceId, generation: u64, pubsub: bool },
    /// Start a script process (`argv[0]` is its path); its end is reported to
    /// [`Sentinel::on_script_exit`].
    RunScript { job: u64, argv: Vec<String> },
    /// SIGKILL a script that ran too long.
    KillScript { job: u64, pid: u32 },
}

/// What the link layer needs to keep a connection to an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSpec {
    pub id: InstanceId,
    pub generation: u64,
    pub addr: Addr,
    /// AUTH arguments (user, password), if any.
    pub auth: Option<(Option<String>, String)>,
    /// `sentinel-<first 8 of myid>`: the link names itself `<this>-cmd` / `<this>-pubsub`.
    pub client_name: String,
    /// Masters and replicas also get a pub/sub connection subscribed to the hello channel.
    pub pubsub: bool,
}

/// Counters the simulator's coverage table and INFO read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub tilt_entered: u64,
    pub failovers_started: u64,
    pub failovers_elected: u64,
    pub failovers_completed: u64,
    pub failovers_aborted: u64,
    pub votes_granted: u64,
    pub votes_refused: u64,
    pub elections_lost: u64,
}

/// The sentinel-wide state: everything but the masters (`struct sentinelState`).
pub struct Global {
    pub myid: String,
    pub current_epoch: u64,
    pub tilt: bool,
    pub tilt_start_ms: i64,
    pub previous_time_ms: i64,
    pub announce_ip: Option<String>,
    pub announce_port: u16,
    /// The port this sentinel listens on (hellos announce it without announce-port).
    pub port: u16,
    pub deny_scripts_reconfig: bool,
    pub resolve_hostnames: bool,
    pub announce_hostnames: bool,
    pub sentinel_user: Option<String>,
    pub sentinel_pass: Option<String>,
    pub timing: Timing,
    pub events: Vec<Event>,
    pub actions: Vec<Action>,
    /// A change of state that must reach the config file (`sentinelFlushConfig`).
    pub flush_config: bool,
    pub counters: Counters,
    pub scripts: scripts::Scripts,
    /// Source of link generations (see [`instance::Link::generation`]).
    next_generation: u64,
    rng: crate::env::Rng,
}

/// A sentinel: global state plus the masters it monitors, by name.
pub struct Sentinel {
    pub g: Global,
    pub masters: BTreeMap<String, Master>,
}

/// Bounded logs: events and actions are drained by the shell every tick; if it stalls, the
/// oldest are dropped rather than grow without bound.
const QUEUE_MAX: usize = 100_000;

impl Global {
    /// Records an event. `at` is the `%@` part (see [`at`]), `rest` what follows it.
    pub fn event(&mut self, level: Level, kind: &str, text: String) {
        if self.events.len() >= QUEUE_MAX {
            self.events.remove(0);
        }
        self.events.push(Event { level, kind: kind.to_string(), text, master: None });
    }

    /// A WARNING event about master `master` (or one of its instances): logged, published, and
    /// passed to the master's notification script.
    pub fn warn(&mut self, master: &str, kind: &str, text: String) {
        self.event(Level::Warning, kind, text);
        if let Some(e) = self.events.last_mut() {
            e.master = Some(master.to_string());
        }
    }

    /// `sentinelCallClientReconfScript`: a failover moved `master` from `from` to `to`.
    pub fn client_reconfig(&mut self, m: &instance::Master, leader: bool, from: &Addr, to: &Addr) {
        let Some(path) = m.client_reconfig_script.clone() else { return };
        let role = if leader { "leader" } else { "observer" };
        let argv = vec![
            path,
            m.name().to_string(),
            role.to_string(),
            "start".to_string(),
            from.host.clone(),
            from.port.to_string(),
            to.host.clone(),
            to.port.to_string(),
        ];
        self.scripts.schedule(argv);
    }

    /// A fact for the checkers: what the epoch of an election or a switch was, which the
    /// wire events do not say.
    pub fn fact(&mut self, kind: &str, text: String) {
        self.event(Level::Fact, kind, text);
    }

    pub fn send(&mut self, action: Action) {
        if self.actions.len() >= QUEUE_MAX {
            self.actions.remove(0);
        }
        self.actions.push(action);
    }

    /// A new instance record, with a link generation no other record ever had.
    pub fn instance(
        &mut self,
        kind: Kind,
        name: String,
        addr: Addr,
        down_after_ms: i64,
        now_ms: i64,
    ) -> instance::Instance {
        let mut inst = instance::Instance::new(kind, name, addr, down_after_ms, now_ms);
        inst.link.generation = self.new_generation();
        inst
    }

    /// A fresh link generation: the old connections of an instance given one are replaced.
    pub fn new_generation(&mut self) -> u64 {
        let g = self.next_generation;
        self.next_generation = self.next_generation.saturating_add(1);
        g
    }

    /// A uniformly random delay below `bound_ms` from the node's seeded RNG.
    pub fn random_ms(&self, bound_ms: u64) -> i64 {
        i64::try_from(self.rng.below(bound_ms.max(1))).unwrap_or(0)
    }

    /// The address this sentinel announces for itself on a link whose local address is
    /// `local_ip` (announce-ip wins, as in Redis).
    pub fn announce(&self, local_ip: &str) -> (String, u16) {
        let ip = self.announce_ip.clone().unwrap_or_else(|| local_ip.to_string());
        let port = if self.announce_port != 0 { self.announce_port } else { self.port };
        (ip, port)
    }
}

/// Redis's `%@`: `<kind> <name> <ip> <port>`, plus ` @ <master> <ip> <port>` for instances that
/// are not masters.
pub fn at(inst: &instance::Instance, master: Option<&instance::Instance>) -> String {
    let own = format!("{} {} {} {}", inst.kind.word(), inst.name, inst.addr.host, inst.addr.port);
    match master {
        Some(m) if inst.kind != Kind::Master => {
            format!("{own} @ {} {} {}", m.name, m.addr.host, m.addr.port)
        }
        _ => own,
    }
}

impl Sentinel {
    pub fn new(myid: String, port: u16, rng: crate::env::Rng, now_ms: i64) -> Sentinel {
        Sentinel {
            g: Global {
                myid,
                current_epoch: 0,
                tilt: false,
                tilt_start_ms: 0,
                previous_time_ms: now_ms,
                announce_ip: None,
                announce_port: 0,
                port,
                deny_scripts_reconfig: true,
                resolve_hostnames: false,
                announce_hostnames: false,
                sentinel_user: None,
                sentinel_pass: None,
                timing: Timing::default(),
                events: Vec::new(),
                actions: Vec::new(),
                flush_config: false,
                counters: Counters::default(),
                scripts: scripts::Scripts::default(),
                next_generation: 1,
                rng,
            },
            masters: BTreeMap::new(),
        }
    }

    /// The timer (`sentinelTimer`): TILT check, then every master with its replicas and
    /// sentinels, then the switch of a master whose failover ended.
    pub fn tick(&mut self, now_ms: i64) {
        monitor::check_tilt(&mut self.g, now_ms);
        let mut switch_to_promoted = None;
        for m in self.masters.values_mut() {
            monitor::handle_master(&mut self.g, m, now_ms);
            if m.failover_state == instance::FailoverState::UpdateConfig {
                switch_to_promoted = Some(m.name().to_string());
            }
        }
        if let Some(name) = switch_to_promoted {
            if let Some(m) = self.masters.get_mut(&name) {
                failover::switch_to_promoted(&mut self.g, m, now_ms);
            }
        }
        self.run_scripts(now_ms);
        debug_assert!(self.masters.values().all(|m| m.promoted.is_none() || m.in_failover()));
    }

    /// Queues notification scripts for the WARNING events raised since the last call (the
    /// shell calls this as it publishes them), while the masters' script paths are at hand.
    pub fn schedule_notifications(&mut self, events: &[Event]) {
        for e in events.iter().filter(|e| e.level == Level::Warning) {
            let Some(m) = e.master.as_ref().and_then(|n| self.masters.get(n)) else { continue };
            if let Some(path) = &m.notification_script {
                self.g.scripts.schedule(vec![path.clone(), e.kind.clone(), e.text.clone()]);
            }
        }
    }

    /// Starts the scripts that are due and kills those that ran too long (the script part of
    /// `sentinelTimer`).
    fn run_scripts(&mut self, now_ms: i64) {
        for (job, argv) in self.g.scripts.start_due(now_ms) {
            self.g.send(Action::RunScript { job, argv });
        }
        let max_runtime_ms = self.g.timing.script_max_runtime_ms;
        for (job, pid, path) in self.g.scripts.timed_out(now_ms, max_runtime_ms) {
            self.g.event(Level::Warning, "-script-timeout", format!("{path} {pid}"));
            self.g.send(Action::KillScript { job, pid });
        }
    }

    /// The process of script job `job` started as `pid`.
    pub fn on_script_started(&mut self, job: u64, pid: u32) {
        self.g.scripts.on_started(job, pid);
    }

    /// A script process ended (or could not start: exit code 2, as Redis's child reports a
    /// failed `execve`).
    pub fn on_script_exit(&mut self, job: u64, outcome: scripts::Outcome, now_ms: i64) {
        let retry_delay_ms = self.g.timing.script_retry_delay_ms;
        if let Some(text) = self.g.scripts.on_exit(job, outcome, now_ms, retry_delay_ms) {
            self.g.event(Level::Warning, "-script-error", text);
        }
    }

    /// The connections the link layer should hold right now.
    pub fn link_specs(&self) -> Vec<LinkSpec> {
        let prefix: String = self.g.myid.chars().take(8).collect();
        let client_name = format!("sentinel-{prefix}");
        let mut specs = Vec::new();
        for m in self.masters.values() {
            let auth = m.auth_pass.clone().map(|p| (m.auth_user.clone(), p));
            let sentinel_auth = self.g.sentinel_pass.clone().map(|p| (self.g.sentinel_user.clone(), p));
            let all = std::iter::once(&m.inst).chain(m.replicas.values()).chain(m.sentinels.values());
            for inst in all {
                let is_sentinel = inst.kind == Kind::Sentinel;
                specs.push(LinkSpec {
                    id: InstanceId { master: m.name().to_string(), kind: inst.kind, name: inst.name.clone() },
                    generation: inst.link.generation,
                    addr: inst.addr.clone(),
                    auth: if is_sentinel { sentinel_auth.clone() } else { auth.clone() },
                    client_name: client_name.clone(),
                    pubsub: !is_sentinel,
                });
            }
        }
        specs
    }

    /// Changes whenever the set of links to hold may have changed: every new instance, reset or
    /// credential change takes a new generation, and removals change the count.
    pub fn links_version(&self) -> (u64, usize) {
        let instances =
            self.masters.values().map(|m| m.replicas.len().saturating_add(m.sentinels.len()).saturating_add(1)).sum();
        (self.g.next_generation, instances)
    }

    /// The instance an id names, if it still exists.
    pub fn instance_mut(&mut self, id: &InstanceId) -> Option<(&mut Global, &mut Master, Kind)> {
        let m = self.masters.get_mut(&id.master)?;
        let exists = match id.kind {
            Kind::Master => true,
            Kind::Replica => m.replicas.contains_key(&id.name),
            Kind::Sentinel => m.sentinels.contains_key(&id.name),
        };
        exists.then_some((&mut self.g, m, id.kind))
    }

    /// The master with this address (IS-MASTER-DOWN-BY-ADDR names masters by address).
    pub fn master_by_addr(&mut self, host: &str, port: u16) -> Option<&mut Master> {
        self.masters.values_mut().find(|m| m.inst.addr.port == port && m.inst.addr.host_is(host))
    }

    /// `+monitor` for every master (at start-up, `sentinelGenerateInitialMonitorEvents`).
    pub fn initial_monitor_events(&mut self) {
        let lines: Vec<(String, String)> = self
            .masters
            .values()
            .map(|m| (m.name().to_string(), format!("{} quorum {}", at(&m.inst, None), m.quorum)))
            .collect();
        for (name, text) in lines {
            self.g.warn(&name, "+monitor", text);
        }
    }
}
