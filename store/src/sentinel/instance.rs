//! What a sentinel knows about each instance it watches: masters, their replicas, and the other
//! sentinels that watch the same master (Redis's `sentinelRedisInstance`, split by kind).
//!
//! Why it is shaped this way: Redis keeps one struct with flags for all three kinds; here the
//! fields every kind has are in [`Instance`] and a master's own (quorum, epochs, the failover
//! in progress, its replicas and sentinels) are in [`Master`], so a replica cannot be given a
//! quorum by mistake. Times are milliseconds on the node's clock (the clock seam), so the
//! simulator can skew one sentinel's clock. Maps are `BTreeMap`s: iteration order decides
//! which replica is re-pointed first, and it must be the same in every run of a seed.

use std::collections::BTreeMap;

/// An address as configured or learnt: the host is kept as text (an IP, or a hostname with
/// `resolve-hostnames yes`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Addr {
    pub host: String,
    pub port: u16,
}

impl Addr {
    pub fn new(host: &str, port: u16) -> Addr {
        Addr { host: host.to_string(), port }
    }

    /// `host:port` (with brackets for IPv6), the name Redis gives a replica.
    pub fn name(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether `host` names this address (case-insensitive, as Redis compares hostnames).
    pub fn host_is(&self, host: &str) -> bool {
        self.host.eq_ignore_ascii_case(host)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Master,
    Replica,
    Sentinel,
}

impl Kind {
    /// The word events and SENTINEL replies use.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Master => "master",
            Kind::Replica => "slave",
            Kind::Sentinel => "sentinel",
        }
    }
}

/// The role an instance reported in its last INFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reported {
    Unknown,
    Master,
    Replica,
}

/// Instance flags, Redis's `SRI_*` that are not the kind.
pub mod flag {
    pub const S_DOWN: u32 = 1 << 0;
    pub const O_DOWN: u32 = 1 << 1;
    /// A sentinel that said the master is down (is-master-down-by-addr).
    pub const MASTER_DOWN: u32 = 1 << 2;
    pub const FAILOVER_IN_PROGRESS: u32 = 1 << 3;
    pub const PROMOTED: u32 = 1 << 4;
    pub const RECONF_SENT: u32 = 1 << 5;
    pub const RECONF_INPROG: u32 = 1 << 6;
    pub const RECONF_DONE: u32 = 1 << 7;
    pub const FORCE_FAILOVER: u32 = 1 << 8;
    pub const SCRIPT_KILL_SENT: u32 = 1 << 9;
    pub const MASTER_REBOOT: u32 = 1 << 10;
}

/// The two connections to an instance, as the state machine sees them (the I/O lives in
/// `link.rs`). Times are 0 when they have not happened.
#[derive(Clone, Debug, Default)]
pub struct Link {
    /// Bumped whenever the instance is reset or changes address: events from a link of an older
    /// generation are ignored, and the driver replaces the connection.
    pub generation: u64,
    pub cmd_connected: bool,
    pub pubsub_connected: bool,
    pub cmd_conn_ms: i64,
    pub pubsub_conn_ms: i64,
    pub pubsub_last_activity_ms: i64,
    /// When the oldest unanswered PING was sent (0: none pending).
    pub act_ping_ms: i64,
    pub last_ping_ms: i64,
    pub last_pong_ms: i64,
    /// The last acceptable PING reply (PONG, LOADING, MASTERDOWN).
    pub last_avail_ms: i64,
    pub pending_commands: u32,
}

impl Link {
    pub fn new(now_ms: i64, generation: u64) -> Link {
        Link {
            generation,
            act_ping_ms: now_ms,
            last_avail_ms: now_ms,
            last_pong_ms: now_ms,
            pubsub_last_activity_ms: now_ms,
            ..Link::default()
        }
    }
}

/// Fields every kind of instance has.
#[derive(Clone, Debug)]
pub struct Instance {
    pub kind: Kind,
    /// Masters: the configured name; replicas: `ip:port`; sentinels: their run id.
    pub name: String,
    pub addr: Addr,
    pub runid: Option<String>,
    pub flags: u32,
    pub link: Link,
    /// This sentinel's own IP on the command link (hellos announce it, as Redis's
    /// `anetFdToString(FD_TO_SOCK_NAME)`).
    pub link_local_ip: Option<String>,
    pub down_after_ms: i64,
    pub s_down_since_ms: i64,
    pub o_down_since_ms: i64,
    pub last_pub_ms: i64,
    // From INFO (masters and replicas).
    pub info: Option<String>,
    pub info_refresh_ms: i64,
    pub role_reported: Reported,
    pub role_reported_ms: i64,
    pub master_link_down_ms: i64,
    pub slave_master_host: Option<String>,
    pub slave_master_port: u16,
    pub slave_conf_change_ms: i64,
    pub slave_master_link_up: bool,
    pub slave_priority: i64,
    pub slave_repl_offset: u64,
    pub replica_announced: bool,
    pub slave_reconf_sent_ms: i64,
    pub master_reboot_since_ms: i64,
    // Sentinels.
    pub last_hello_ms: i64,
    pub last_master_down_reply_ms: i64,
    pub leader: Option<String>,
    pub leader_epoch: u64,
}

/// Redis's default `replica-priority`.
pub const DEFAULT_PRIORITY: i64 = 100;

impl Instance {
    pub fn new(kind: Kind, name: String, addr: Addr, down_after_ms: i64, now_ms: i64) -> Instance {
        Instance {
            kind,
            name,
            addr,
            runid: None,
            flags: 0,
            link: Link::new(now_ms, 0),
            link_local_ip: None,
            down_after_ms,
            s_down_since_ms: 0,
            o_down_since_ms: 0,
            last_pub_ms: now_ms,
            info: None,
            info_refresh_ms: 0,
            role_reported: if kind == Kind::Replica { Reported::Replica } else { Reported::Master },
            role_reported_ms: now_ms,
            master_link_down_ms: 0,
            slave_master_host: None,
            slave_master_port: 0,
            slave_conf_change_ms: now_ms,
            slave_master_link_up: false,
            slave_priority: DEFAULT_PRIORITY,
            slave_repl_offset: 0,
            replica_announced: true,
            slave_reconf_sent_ms: 0,
            master_reboot_since_ms: 0,
            last_hello_ms: now_ms,
            last_master_down_reply_ms: now_ms,
            leader: None,
            leader_epoch: 0,
        }
    }

    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// Redis's `link->disconnected`: either connection missing (sentinels have no pub/sub link).
    pub fn disconnected(&self) -> bool {
        !self.link.cmd_connected || (self.kind != Kind::Sentinel && !self.link.pubsub_connected)
    }

    /// No SDOWN or ODOWN in the last `ms` (`sentinelRedisInstanceNoDownFor`).
    pub fn no_down_for(&self, ms: i64, now_ms: i64) -> bool {
        let recent = self.s_down_since_ms.max(self.o_down_since_ms);
        recent == 0 || now_ms.saturating_sub(recent) > ms
    }

    /// The comma-separated flags of SENTINEL MASTERS and friends, in Redis's order.
    pub fn flag_text(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        let f = |bit: u32| self.flags & bit != 0;
        if f(flag::S_DOWN) {
            parts.push("s_down");
        }
        if f(flag::O_DOWN) {
            parts.push("o_down");
        }
        parts.push(self.kind.word());
        if self.disconnected() {
            parts.push("disconnected");
        }
        for (bit, word) in [
            (flag::MASTER_DOWN, "master_down"),
            (flag::FAILOVER_IN_PROGRESS, "failover_in_progress"),
            (flag::PROMOTED, "promoted"),
            (flag::RECONF_SENT, "reconf_sent"),
            (flag::RECONF_INPROG, "reconf_inprog"),
            (flag::RECONF_DONE, "reconf_done"),
            (flag::FORCE_FAILOVER, "force_failover"),
            (flag::SCRIPT_KILL_SENT, "script_kill_sent"),
            (flag::MASTER_REBOOT, "master_reboot"),
        ] {
            if f(bit) {
                parts.push(word);
            }
        }
        parts.join(",")
    }
}

/// The failover state machine's states (`SENTINEL_FAILOVER_STATE_*`), in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailoverState {
    None,
    WaitStart,
    SelectSlave,
    SendSlaveofNoone,
    WaitPromotion,
    ReconfSlaves,
    UpdateConfig,
}

impl FailoverState {
    pub fn name(self) -> &'static str {
        match self {
            FailoverState::None => "none",
            FailoverState::WaitStart => "wait_start",
            FailoverState::SelectSlave => "select_slave",
            FailoverState::SendSlaveofNoone => "send_slaveof_noone",
            FailoverState::WaitPromotion => "wait_promotion",
            FailoverState::ReconfSlaves => "reconf_slaves",
            FailoverState::UpdateConfig => "update_config",
        }
    }
}

/// Redis's defaults for a new master.
pub const DEFAULT_DOWN_AFTER_MS: i64 = 30_000;
pub const DEFAULT_FAILOVER_TIMEOUT_MS: i64 = 180_000;
pub const DEFAULT_PARALLEL_SYNCS: u32 = 1;

/// A monitored master with everything that hangs off it.
#[derive(Clone, Debug)]
pub struct Master {
    pub inst: Instance,
    pub quorum: u32,
    pub config_epoch: u64,
    /// The sentinel this one voted for, and in which epoch.
    pub leader: Option<String>,
    pub leader_epoch: u64,
    pub failover_epoch: u64,
    pub failover_state: FailoverState,
    pub failover_state_change_ms: i64,
    pub failover_start_ms: i64,
    pub failover_timeout_ms: i64,
    pub failover_delay_logged_ms: i64,
    pub parallel_syncs: u32,
    /// The replica chosen for promotion (a key of `replicas`).
    pub promoted: Option<String>,
    pub replicas: BTreeMap<String, Instance>,
    /// Other sentinels, by run id.
    pub sentinels: BTreeMap<String, Instance>,
    pub auth_pass: Option<String>,
    pub auth_user: Option<String>,
    pub notification_script: Option<String>,
    pub client_reconfig_script: Option<String>,
    pub master_reboot_down_after_ms: i64,
    /// `sentinel rename-command <master> <command> <renamed>`: names to send instead.
    pub renamed_commands: BTreeMap<String, String>,
}

impl Master {
    pub fn new(name: &str, addr: Addr, quorum: u32, now_ms: i64) -> Master {
        Master {
            inst: Instance::new(Kind::Master, name.to_string(), addr, DEFAULT_DOWN_AFTER_MS, now_ms),
            quorum,
            config_epoch: 0,
            leader: None,
            leader_epoch: 0,
            failover_epoch: 0,
            failover_state: FailoverState::None,
            failover_state_change_ms: 0,
            failover_start_ms: 0,
            failover_timeout_ms: DEFAULT_FAILOVER_TIMEOUT_MS,
            failover_delay_logged_ms: 0,
            parallel_syncs: DEFAULT_PARALLEL_SYNCS,
            promoted: None,
            replicas: BTreeMap::new(),
            sentinels: BTreeMap::new(),
            auth_pass: None,
            auth_user: None,
            notification_script: None,
            client_reconfig_script: None,
            master_reboot_down_after_ms: 0,
            renamed_commands: BTreeMap::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.inst.name
    }

    pub fn in_failover(&self) -> bool {
        self.inst.has(flag::FAILOVER_IN_PROGRESS)
    }

    /// The address clients should use: the promoted replica's once the failover reached
    /// RECONF_SLAVES (it has accepted the role), the master's otherwise.
    pub fn current_addr(&self) -> &Addr {
        if self.in_failover() && self.failover_state >= FailoverState::ReconfSlaves {
            if let Some(p) = self.promoted.as_ref().and_then(|k| self.replicas.get(k)) {
                return &p.addr;
            }
        }
        &self.inst.addr
    }

    /// The name to send for `command` (rename-command on this master's group).
    pub fn command_name(&self, command: &str) -> String {
        self.renamed_commands.get(&command.to_ascii_lowercase()).cloned().unwrap_or_else(|| command.to_string())
    }

    /// Replica by address.
    pub fn replica_at(&self, host: &str, port: u16) -> Option<&Instance> {
        self.replicas.values().find(|r| r.addr.port == port && r.addr.host_is(host))
    }

    /// Sets down-after on the master and everything under it (`sentinelPropagateDownAfterPeriod`).
    pub fn set_down_after(&mut self, ms: i64) {
        self.inst.down_after_ms = ms;
        for r in self.replicas.values_mut().chain(self.sentinels.values_mut()) {
            r.down_after_ms = ms;
        }
    }
}
