//! Replication: master and replicas as Redis runs them.
//!
//! Why it is shaped this way:
//! - Every write already executes under the one server lock, in one total order (see
//!   `server.rs`). `cmd::call` hands each write that changed the dataset to [`propagate`], which
//!   encodes it as a RESP command (with a SELECT when the database changes, and with relative
//!   times and random choices rewritten into deterministic forms by the handlers), appends it to
//!   the [`Backlog`] and to every attached replica's bounded push queue. The master's offset
//!   counts those bytes, exactly as Redis's `master_repl_offset` does.
//! - A replica's link (`replica.rs`) is one task: connect, handshake, full or partial sync, then
//!   apply the stream command by command under the lock, counting applied bytes, and
//!   acknowledge. Its own replicas receive the master's stream bytes unchanged, so offsets are
//!   the same along a chain.
//! - The master side of a link (`master.rs`) is an ordinary client connection that sent PSYNC:
//!   the snapshot for a full sync is the same copy-on-write snapshot BGSAVE takes.
//! - Every wait on a peer has a timeout (repl-timeout): a partition stalls a connection without
//!   resetting it.
//! - Offsets come from peers (PSYNC, REPLCONF ACK, +FULLRESYNC) and files (the RDB's
//!   `repl-offset`): arithmetic on them, on clock readings and on configured periods saturates
//!   instead of overflowing (issue 12). A real stream never gets near `i64::MAX` bytes.

pub mod backlog;
pub mod failover;
pub mod master;
pub mod replica;
pub mod transitions;

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};

pub use backlog::Backlog;

use crate::protocol::encode_command;
use crate::server::{ClientEntry, State};

/// Redis's `CONFIG_REPL_BACKLOG_MIN_SIZE`: no backlog is smaller.
pub const BACKLOG_SIZE_MIN: usize = 16 * 1024;

/// Replication IDs are 40 hex characters; "0000..." means none (replid2 when cleared).
pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Master,
    Replica { host: String, port: u16 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaState {
    /// PSYNC received, a full sync needed, the snapshot not taken yet (the diskless delay): the
    /// replica is listed in INFO at once, as Redis lists it, but gets no stream yet.
    WaitBgsave,
    /// Full sync: snapshot taken, RDB being sent; the stream is queued behind it.
    SendBulk,
    Online,
}

impl ReplicaState {
    /// Whether stream bytes are queued for a replica in this state (not before its snapshot).
    pub fn receives_stream(self) -> bool {
        self != ReplicaState::WaitBgsave
    }
}

/// What the master knows about one attached replica.
#[derive(Clone, Debug)]
pub struct ReplicaInfo {
    pub ip: String,
    pub listening_port: u16,
    pub state: ReplicaState,
    pub ack_offset: i64,
    pub ack_ms: i64,
}

/// The replica side's view of its link to the master.
#[derive(Clone, Debug, Default)]
pub struct LinkStatus {
    pub up: bool,
    pub last_io_ms: i64,
    pub down_since_ms: i64,
    pub sync_in_progress: bool,
    /// Bumped by every REPLICAOF: a link task whose generation is stale stops.
    pub generation: u64,
    /// While a full sync's payload is being received (Redis's REPL_STATE_TRANSFER).
    pub transfer: Option<Transfer>,
    /// The link's entry in the client registry while the stream is applied (CLIENT LIST shows
    /// it with flags=M; CLIENT KILL TYPE master drops it, and the link reconnects).
    pub client_id: Option<u64>,
}

/// Progress of a full sync's payload, for INFO's `master_sync_*` fields.
#[derive(Clone, Debug, Default)]
pub struct Transfer {
    /// Payload size announced by `$<len>`; -1 for a diskless `$EOF:` payload (size unknown).
    pub size_bytes: i64,
    pub read_bytes: i64,
    pub last_io_ms: i64,
}

pub struct ReplState {
    pub role: Role,
    pub replid: String,
    pub replid2: String,
    /// First offset valid under replid2 (-1 when none).
    pub second_offset: i64,
    /// Master: bytes ever fed into the stream. Replica: bytes of the master's stream applied.
    pub offset: i64,
    /// Whether this node's dataset is a known point (`replid`, `offset`) of some history: set
    /// by a full sync, a partial resync, an RDB that carried a replication id, and by a master
    /// turning replica (Redis's cached master). Offset 0 can be such a point (a replica that
    /// synced before the first write), so the offset alone cannot tell.
    pub has_history: bool,
    pub backlog: Option<Backlog>,
    pub replicas: BTreeMap<u64, ReplicaInfo>,
    /// The database the stream last SELECTed (None: the next write emits a SELECT).
    seldb: Option<usize>,
    pub link: LinkStatus,
    /// Set by a handler to replace its own command in the stream (deterministic rewrites).
    pub rewrite: Option<Vec<Vec<Bytes>>>,
    /// Inside EXEC: the queued writes are wrapped in MULTI/EXEC in the stream.
    pub in_exec: bool,
    multi_emitted: bool,
    /// Replica: the database the master's stream last selected. It survives a reconnect, as
    /// Redis's cached master does: after +CONTINUE the master sends no SELECT.
    pub master_db: usize,
    /// client-output-buffer-limit for replicas (hard limit, bytes; 0 = none), from the config.
    pub obuf_limit: crate::server::OutputLimit,
    /// When the master last PINGed (repl-ping-replica-period) its replicas its replicas, on the monotonic clock: Redis counts
    /// replication cron runs for this, so a wall-clock jump never silences the heartbeat (with
    /// the wall clock, a jump back stopped the PINGs for as long as the jump, and replicas
    /// timed out and reconnected over and over: found by the sentinel failover check, seed 1035).
    pub last_ping_at: Option<tokio::time::Instant>,
    /// Full syncs and partial resyncs served (INFO stats).
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
}

impl ReplState {
    pub fn new(replid: String) -> ReplState {
        ReplState {
            role: Role::Master,
            replid,
            replid2: NO_REPLID.into(),
            second_offset: -1,
            offset: 0,
            has_history: false,
            backlog: None,
            replicas: BTreeMap::new(),
            seldb: None,
            link: LinkStatus::default(),
            rewrite: None,
            in_exec: false,
            multi_emitted: false,
            master_db: 0,
            obuf_limit: REPLICA_OUTPUT_LIMIT_DEFAULT,
            last_ping_at: None,
            sync_full: 0,
            sync_partial_ok: 0,
            sync_partial_err: 0,
        }
    }

    pub fn is_replica(&self) -> bool {
        matches!(self.role, Role::Replica { .. })
    }

    /// The database the stream is in now (the last SELECT fed; 0 when the next write will emit
    /// one), saved in an RDB as `repl-stream-db` so that a node restarted from it applies the
    /// stream that follows in the right database (Redis's `slaveseldb`).
    pub fn stream_db(&self) -> usize {
        self.seldb.unwrap_or(0)
    }

    /// Forces a SELECT before the next write (after a full resync and on promotion).
    pub fn reset_seldb(&mut self) {
        self.seldb = None;
    }

    /// Creates the backlog if there is none (the first replica to attach does this).
    pub fn ensure_backlog(&mut self, size: usize) {
        if self.backlog.is_none() {
            // The smallest backlog Redis allows: it wraps early, so partial resyncs are refused
            // (and full ones taken) far more often.
            let size = if crate::fault::buggify("buggify.repl.backlog_minimal") { BACKLOG_SIZE_MIN } else { size };
            self.backlog = Some(Backlog::new(size.max(BACKLOG_SIZE_MIN), self.offset.saturating_add(1)));
        }
    }

    /// Whether `PSYNC id offset` can continue from the backlog (Redis's
    /// `masterTryPartialResynchronization` conditions). `offset` is the next byte wanted.
    pub fn can_continue(&self, id: &str, offset: i64) -> bool {
        let id_ok = id == self.replid || (id == self.replid2 && offset <= self.second_offset);
        match &self.backlog {
            Some(b) if id_ok => offset >= b.first_offset() && offset <= b.end_offset(),
            _ => false,
        }
    }

    /// Promotion (REPLICAOF NO ONE): the old history stays valid under replid2.
    pub fn shift_replid(&mut self, new_id: String) {
        self.replid2 = std::mem::replace(&mut self.replid, new_id);
        self.second_offset = self.offset.saturating_add(1);
        self.seldb = None;
    }

    /// Replicas that acknowledged within `max_lag_s` (min-replicas-to-write's "good" ones).
    /// WAIT's count: online replicas that acknowledged `offset` (Redis's
    /// `replicationCountAcksByOffset`; a replica still waiting for or loading its snapshot does
    /// not count). `count_unacked` is the planted bug `wait-counts-unacked`.
    pub fn acked_replicas(&self, offset: i64, count_unacked: bool) -> usize {
        self.replicas
            .values()
            .filter(|r| r.state == ReplicaState::Online || (count_unacked && r.state.receives_stream()))
            .filter(|r| count_unacked || r.ack_offset >= offset)
            .count()
    }

    pub fn good_replicas(&self, now_ms: i64, max_lag_s: i64) -> usize {
        self.replicas
            .values()
            .filter(|r| {
                r.state == ReplicaState::Online && now_ms.saturating_sub(r.ack_ms) <= max_lag_s.saturating_mul(1000)
            })
            .count()
    }
}

/// The IP part of a peer's `ip:port` address (IPv6 without its brackets): where a replica that
/// announced no `ip-address` is listed.
pub fn peer_ip(addr: &str) -> String {
    addr.rsplit_once(':').map(|(h, _)| h.trim_matches(|c| c == '[' || c == ']').to_string()).unwrap_or_default()
}

/// Appends raw stream bytes to the backlog and every attached replica (bounded queues: a
/// replica that cannot keep up is disconnected and will resync, as with Redis's
/// client-output-buffer-limit for replicas).
pub fn feed_raw(repl: &mut ReplState, clients: &BTreeMap<u64, ClientEntry>, bytes: Bytes, now_ms: i64) {
    repl.offset = repl.offset.saturating_add(bytes.len() as i64);
    if let Some(b) = repl.backlog.as_mut() {
        b.append(&bytes);
    }
    for (id, info) in repl.replicas.iter() {
        if !info.state.receives_stream() {
            continue;
        }
        if let Some(c) = clients.get(id) {
            if !c.push_bytes(bytes.clone(), &repl.obuf_limit, now_ms) {
                tracing::warn!("Replica {} scheduled to be closed for overcoming of output buffer limits.", c.addr);
                crate::fault::probe("repl.replica_output_limit");
            }
        }
    }
}

/// Feeds one write into the stream (master only; replicas relay their master's bytes).
pub fn propagate(st: &mut State, db: usize, commands: &[Vec<Bytes>]) {
    if st.repl.is_replica() || st.repl.backlog.is_none() {
        return;
    }
    let mut out = BytesMut::new();
    stream_prefix(st, db, &mut out);
    for c in commands {
        let refs: Vec<&[u8]> = c.iter().map(|a| &a[..]).collect();
        encode_command(&mut out, &refs);
    }
    let bytes = out.freeze();
    let State { repl, clients, now_ms, .. } = st;
    feed_raw(repl, clients, bytes, *now_ms);
    observe_fed(st);
}

/// Feeds one write given as its exact canonical request bytes (the common case: a command
/// propagated unchanged). Without a prefix to add, the bytes go out without being copied.
pub fn propagate_frame(st: &mut State, db: usize, frame: Bytes) {
    if st.repl.is_replica() || st.repl.backlog.is_none() {
        return;
    }
    let mut prefix = BytesMut::new();
    stream_prefix(st, db, &mut prefix);
    let bytes = if prefix.is_empty() {
        frame
    } else {
        prefix.extend_from_slice(&frame);
        prefix.freeze()
    };
    let State { repl, clients, now_ms, .. } = st;
    feed_raw(repl, clients, bytes, *now_ms);
    observe_fed(st);
}

/// What must precede a write in the stream: MULTI for the first write of an EXEC, and a
/// SELECT when the stream is in another database.
fn stream_prefix(st: &mut State, db: usize, out: &mut BytesMut) {
    if st.repl.in_exec && !st.repl.multi_emitted {
        encode_command(out, &[b"MULTI"]);
        st.repl.multi_emitted = true;
    }
    if st.repl.seldb != Some(db) {
        let n = db.to_string();
        encode_command(out, &[b"SELECT", n.as_bytes()]);
        st.repl.seldb = Some(db);
    }
}

/// Master heartbeat, from the cron: PING into the stream every repl-ping-replica-period (so
/// replicas can tell a silent master from a dead one), and drop replicas silent for longer
/// than repl-timeout (they will reconnect and resync).
pub fn cron(st: &mut State, now_ms: i64) {
    st.repl.obuf_limit = st.config.hot.replica_output_limit;
    if st.repl.is_replica() || st.repl.replicas.is_empty() {
        return;
    }
    let period_ms = st.config.hot.repl_ping_replica_period_ms;
    let period = std::time::Duration::from_millis(u64::try_from(period_ms).unwrap_or(0));
    // Not while a FAILOVER waits for a replica to reach the offset: a PING would move it.
    if !st.failover.active() && st.repl.last_ping_at.is_none_or(|at| at.elapsed() >= period) {
        st.repl.last_ping_at = Some(tokio::time::Instant::now());
        let mut out = BytesMut::new();
        encode_command(&mut out, &[b"PING"]);
        feed_raw(&mut st.repl, &st.clients, out.freeze(), now_ms);
        observe_fed(st);
    }
    let timeout_ms = st.config.hot.repl_timeout_ms;
    for (id, r) in st.repl.replicas.iter() {
        if r.state == ReplicaState::Online && now_ms.saturating_sub(r.ack_ms) > timeout_ms {
            if let Some(c) = st.clients.get(id) {
                tracing::warn!("Disconnecting timedout replica (streaming sync): {}:{}", r.ip, r.listening_port);
                crate::fault::probe("repl.master_dropped_silent_replica");
                c.request_kill();
            }
        }
    }
}

/// Redis's default `slave 256mb 64mb 60`.
pub const REPLICA_OUTPUT_LIMIT_DEFAULT: crate::server::OutputLimit =
    crate::server::OutputLimit { hard_bytes: 256 << 20, soft_bytes: 64 << 20, soft_ms: 60_000 };

/// Closes a MULTI opened in the stream by an EXEC's writes.
pub fn end_exec(st: &mut State) {
    st.repl.in_exec = false;
    if std::mem::take(&mut st.repl.multi_emitted) {
        let mut out = BytesMut::new();
        encode_command(&mut out, &[b"EXEC"]);
        let State { repl, clients, now_ms, .. } = st;
        feed_raw(repl, clients, out.freeze(), *now_ms);
        observe_fed(st);
    }
}

/// Reports the master's offset with the dataset digest at it (simulation checks replicas
/// against these).
fn observe_fed(st: &State) {
    if let Some(obs) = &st.observer {
        // Inside MULTI the dataset is mid-transaction; the digest is reported at EXEC.
        if st.repl.in_exec {
            return;
        }
        obs.emit(crate::observe::Observation::ReplOffset {
            replid: st.repl.replid.clone(),
            offset: st.repl.offset,
            digest: st.tracking.digest,
        });
    }
}

/// Whole seconds from `then_ms` to `now_ms`, 0 if the clock went back (INFO's lags and ages).
fn seconds_since(now_ms: i64, then_ms: i64) -> i64 {
    (now_ms.saturating_sub(then_ms) / 1000).max(0)
}

/// INFO replication, with Redis's field names and order.
pub fn info_section(st: &State, now_ms: i64) -> String {
    use std::fmt::Write as _;
    let r = &st.repl;
    let mut o = String::from("# Replication\r\n");
    match &r.role {
        Role::Master => {
            let _ = write!(o, "role:master\r\nconnected_slaves:{}\r\n", r.replicas.len());
            let min_write = st.config.hot.min_replicas_to_write;
            let max_lag = st.config.hot.min_replicas_max_lag;
            if min_write > 0 && max_lag > 0 {
                let _ = write!(o, "min_slaves_good_slaves:{}\r\n", r.good_replicas(now_ms, max_lag));
            }
            for (i, info) in r.replicas.values().enumerate() {
                let (state, lag) = match info.state {
                    ReplicaState::WaitBgsave => ("wait_bgsave", 0),
                    ReplicaState::SendBulk => ("send_bulk", 0),
                    ReplicaState::Online => ("online", seconds_since(now_ms, info.ack_ms)),
                };
                let _ = write!(
                    o,
                    "slave{i}:ip={},port={},state={state},offset={},lag={lag}\r\n",
                    info.ip, info.listening_port, info.ack_offset
                );
            }
        }
        Role::Replica { host, port } => {
            let l = &r.link;
            let _ = write!(
                o,
                "role:slave\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
                if l.up { "up" } else { "down" },
                if l.up { seconds_since(now_ms, l.last_io_ms) } else { -1 },
                l.transfer.is_some() as u8,
                r.offset,
                r.offset,
            );
            if let Some(t) = &l.transfer {
                let perc = if t.size_bytes > 0 { t.read_bytes as f64 / t.size_bytes as f64 * 100.0 } else { 0.0 };
                let _ = write!(
                    o,
                    "master_sync_total_bytes:{}\r\nmaster_sync_read_bytes:{}\r\nmaster_sync_left_bytes:{}\r\nmaster_sync_perc:{perc:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\n",
                    t.size_bytes,
                    t.read_bytes,
                    t.size_bytes.saturating_sub(t.read_bytes),
                    seconds_since(now_ms, t.last_io_ms),
                );
            }
            if !l.up {
                let down = if l.down_since_ms > 0 { seconds_since(now_ms, l.down_since_ms) } else { -1 };
                let _ = write!(o, "master_link_down_since_seconds:{down}\r\n");
            }
            let _ = write!(
                o,
                "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:1\r\nconnected_slaves:{}\r\n",
                st.config.hot.replica_priority,
                st.config.hot.replica_read_only as u8,
                r.replicas.len()
            );
            for (i, info) in r.replicas.values().enumerate() {
                let _ = write!(
                    o,
                    "slave{i}:ip={},port={},state=online,offset={},lag={}\r\n",
                    info.ip,
                    info.listening_port,
                    info.ack_offset,
                    seconds_since(now_ms, info.ack_ms)
                );
            }
        }
    }
    // Both roles: a master handing over is a replica until the target accepts.
    o.push_str("master_failover_state:");
    o.push_str(st.failover.state_name());
    o.push_str("\r\n");
    let (active, first, histlen) = match &r.backlog {
        Some(b) => (1, b.first_offset(), b.histlen()),
        None => (0, 0, 0),
    };
    let _ = write!(
        o,
        "master_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{active}\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{first}\r\nrepl_backlog_histlen:{histlen}\r\n",
        r.replid,
        r.replid2,
        r.offset,
        r.second_offset,
        st.config.hot.repl_backlog_size,
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_offsets_and_clocks_do_not_overflow() {
        let id = "a".repeat(40);
        let mut r = ReplState::new(id.clone());
        r.offset = i64::MAX;
        r.ensure_backlog(16 * 1024);
        assert_eq!(r.backlog.as_ref().unwrap().first_offset(), i64::MAX);
        assert!(r.can_continue(&id, i64::MAX));
        assert!(!r.can_continue(&id, i64::MIN));
        r.shift_replid("c".repeat(40));
        assert_eq!(r.second_offset, i64::MAX);
        let clients = BTreeMap::new();
        feed_raw(&mut r, &clients, Bytes::from_static(b"*1\r\n$4\r\nPING\r\n"), 0);
        assert_eq!(r.offset, i64::MAX);
        r.replicas.insert(
            1,
            ReplicaInfo {
                ip: "x".into(),
                listening_port: 1,
                state: ReplicaState::Online,
                ack_offset: 0,
                ack_ms: i64::MIN,
            },
        );
        assert_eq!(r.good_replicas(i64::MAX, i64::MAX), 1);
        assert_eq!(r.good_replicas(i64::MAX, 10), 0);
        assert_eq!(seconds_since(i64::MAX, i64::MIN), i64::MAX / 1000);
        assert_eq!(seconds_since(i64::MIN, i64::MAX), 0);
    }

    #[test]
    fn info_shows_transfer_progress_only_during_the_payload() {
        let env = crate::env::Env::production();
        let mut st = crate::server::State::new(crate::config::Config::new(), &env, 6380);
        st.repl.role = Role::Replica { host: "127.0.0.1".into(), port: 6379 };
        let idle = info_section(&st, 5_000);
        assert!(idle.contains("master_sync_in_progress:0\r\n"), "{idle}");
        assert!(!idle.contains("master_sync_total_bytes"), "{idle}");
        st.repl.link.transfer = Some(Transfer { size_bytes: 400, read_bytes: 100, last_io_ms: 3_000 });
        let busy = info_section(&st, 5_000);
        let want = "master_sync_in_progress:1\r\nslave_read_repl_offset:0\r\nslave_repl_offset:0\r\n\
            master_sync_total_bytes:400\r\nmaster_sync_read_bytes:100\r\nmaster_sync_left_bytes:300\r\n\
            master_sync_perc:25.00\r\nmaster_sync_last_io_seconds_ago:2\r\n";
        assert!(busy.contains(want), "{busy}");
        // Diskless: the size is unknown, as Redis shows it.
        st.repl.link.transfer = Some(Transfer { size_bytes: -1, read_bytes: 10, last_io_ms: 5_000 });
        let diskless = info_section(&st, 5_000);
        assert!(diskless.contains("master_sync_total_bytes:-1\r\nmaster_sync_read_bytes:10\r\nmaster_sync_left_bytes:-11\r\nmaster_sync_perc:0.00\r\n"), "{diskless}");
    }

    #[test]
    fn replica_output_limit_comes_from_the_config_value() {
        use crate::server::OutputLimit;
        let default = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";
        let d = REPLICA_OUTPUT_LIMIT_DEFAULT;
        assert_eq!(OutputLimit::parse(default, "replica", d), d);
        assert_eq!(
            OutputLimit::parse(default, "pubsub", d),
            OutputLimit { hard_bytes: 32 << 20, soft_bytes: 8 << 20, soft_ms: 60_000 }
        );
        assert_eq!(
            OutputLimit::parse("replica 1mb 0 0", "replica", d),
            OutputLimit { hard_bytes: 1 << 20, soft_bytes: 0, soft_ms: 0 }
        );
        assert_eq!(OutputLimit::parse("", "replica", d), d);
        assert_eq!(OutputLimit::parse("pubsub x 1 1", "pubsub", d), d, "malformed: the default");
    }

    #[test]
    fn partial_resync_needs_the_id_and_the_bytes() {
        let mut r = ReplState::new("a".repeat(40));
        assert!(!r.can_continue(&"a".repeat(40), 1), "no backlog yet");
        r.ensure_backlog(16 * 1024);
        r.offset = 10;
        r.backlog.as_mut().unwrap().append(&[0u8; 10]);
        assert!(r.can_continue(&"a".repeat(40), 1));
        assert!(r.can_continue(&"a".repeat(40), 11), "nothing missing is fine");
        assert!(!r.can_continue(&"a".repeat(40), 12), "the future is not served");
        assert!(!r.can_continue(&"b".repeat(40), 5), "another history");
        // After a promotion the old id stays valid up to the switch.
        r.shift_replid("c".repeat(40));
        assert!(r.can_continue(&"a".repeat(40), 11));
        assert!(!r.can_continue(&"a".repeat(40), 12));
        assert!(r.can_continue(&"c".repeat(40), 5));
    }
}
