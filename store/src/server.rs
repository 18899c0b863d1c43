//! The server: shared state, the accept loop, the cron, and shutdown.
//!
//! Why it is shaped this way: every command runs under one lock on [`State`], the way Redis runs
//! every command on one thread. That gives writes a single total order (what replication numbers
//! with offsets) and keeps commands simple, while parsing, reply encoding and socket I/O run in
//! each connection's own task, in parallel on tokio's workers. Connections lock once per batch of
//! pipelined requests, so a `-P 16` pipeline pays for one lock, not sixteen.
//!
//! Nothing here touches the OS directly: sockets, timers and tasks come from `tokio` (madsim's
//! under `--cfg madsim`), and time, randomness and disk from the [`Env`] seams.
//!
//! Clock readings, configured limits and the replication offset saved in an RDB file are
//! untrusted here: arithmetic on them is checked or saturating (issue 12).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

use crate::cmd::CommandTable;
use crate::config::Config;
use crate::connection;
use crate::db::Keyspace;
use crate::env::Env;
use crate::pubsub::PubSub;
use crate::watch::Watches;

/// Messages a connection can receive from outside its own request stream.
pub type PushSender = mpsc::Sender<bytes::Bytes>;

/// Pub/sub messages that may wait for one subscriber before it is disconnected (its output
/// buffer limit, counted in messages).
pub const PUSH_QUEUE_MAX: usize = 64 * 1024;

/// What the registry knows about each connected client (for CLIENT LIST/KILL, pub/sub delivery).
pub struct ClientEntry {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub name: Option<String>,
    pub db: usize,
    pub created_ms: i64,
    pub last_active_ms: i64,
    pub last_cmd: String,
    pub sub: usize,
    pub psub: usize,
    pub multi: i64,
    /// The client's reply protocol, which pub/sub messages to it are encoded in.
    pub proto: crate::protocol::Proto,
    pub push: PushSender,
    pub kill: Arc<AtomicBool>,
    pub wake: Arc<Notify>,
    /// Bytes queued in `push` and not yet written to the socket (output buffer accounting).
    pub queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
    /// When the queue last went over its class's soft limit (0: it is not over).
    pub soft_limit_since_ms: std::sync::atomic::AtomicI64,
}

/// One class of `client-output-buffer-limit <class> <hard> <soft> <soft-seconds>`: a client
/// whose queued output passes `hard_bytes`, or stays past `soft_bytes` for longer than
/// `soft_ms`, is disconnected (0 disables either limit), as Redis does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutputLimit {
    pub hard_bytes: usize,
    pub soft_bytes: usize,
    pub soft_ms: i64,
}

impl OutputLimit {
    /// No limit (the normal class's default).
    pub const NONE: OutputLimit = OutputLimit { hard_bytes: 0, soft_bytes: 0, soft_ms: 0 };

    /// Whether `pending` bytes of replies pass the hard limit.
    pub fn hard_exceeded(&self, pending: usize) -> bool {
        self.hard_bytes > 0 && pending > self.hard_bytes
    }

    /// How long a write of `pending` bytes may take before the soft limit closes the client:
    /// over the soft limit, Redis allows `soft_ms` before it disconnects.
    pub fn soft_deadline_ms(&self, pending: usize) -> Option<i64> {
        (self.soft_bytes > 0 && pending > self.soft_bytes).then_some(self.soft_ms)
    }

    /// The limit for `class` ("replica"/"slave" or "pubsub") from the directive's value (as
    /// the config stores it: groups of class, hard bytes, soft bytes, seconds); `default` if
    /// the class is absent or malformed.
    pub fn parse(value: &str, class: &str, default: OutputLimit) -> OutputLimit {
        let is_class = |c: &str| c == class || (class == "replica" && c == "slave");
        let parts: Vec<&str> = value.split_whitespace().collect();
        parts
            .chunks(4)
            .filter(|c| c.len() == 4 && is_class(c[0]))
            .last()
            .and_then(|c| {
                Some(OutputLimit {
                    hard_bytes: crate::config::parse_memory(c[1])? as usize,
                    soft_bytes: crate::config::parse_memory(c[2])? as usize,
                    soft_ms: c[3].parse::<i64>().ok()?.saturating_mul(1000),
                })
            })
            .unwrap_or(default)
    }

    /// Whether `queued` bytes break the limit now; tracks the soft limit's start in `since`.
    fn exceeded(&self, queued: usize, since: &std::sync::atomic::AtomicI64, now_ms: i64) -> bool {
        if self.hard_bytes > 0 && queued > self.hard_bytes {
            return true;
        }
        if self.soft_bytes == 0 || queued <= self.soft_bytes {
            since.store(0, Ordering::Relaxed);
            return false;
        }
        let start = since.load(Ordering::Relaxed);
        if start == 0 {
            // The clock never reads 0 in practice; a start of 0 would just restart the timer.
            since.store(now_ms.max(1), Ordering::Relaxed);
            return false;
        }
        now_ms.saturating_sub(start) > self.soft_ms
    }
}

impl ClientEntry {
    /// A registry entry for a new connection (a client, or a replica's link to its master).
    pub fn new(id: u64, addr: String, laddr: String, now_ms: i64, push: PushSender) -> ClientEntry {
        ClientEntry {
            id,
            addr,
            laddr,
            name: None,
            db: 0,
            created_ms: now_ms,
            last_active_ms: now_ms,
            last_cmd: "NULL".into(),
            sub: 0,
            psub: 0,
            multi: -1,
            proto: Default::default(),
            push,
            kill: Arc::new(AtomicBool::new(false)),
            wake: Arc::new(Notify::new()),
            queued_bytes: Default::default(),
            soft_limit_since_ms: Default::default(),
        }
    }

    /// Queues bytes for this client; past its output limit or with a full queue the client is
    /// disconnected instead, as Redis does at client-output-buffer-limit. Returns whether queued.
    pub fn push_bytes(&self, frame: bytes::Bytes, limit: &OutputLimit, now_ms: i64) -> bool {
        let len = frame.len();
        let queued = self.queued_bytes.fetch_add(len, Ordering::Relaxed).saturating_add(len);
        if limit.exceeded(queued, &self.soft_limit_since_ms, now_ms) || self.push.try_send(frame).is_err() {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.request_kill();
            return false;
        }
        true
    }

    /// Asks the client's connection task to close.
    pub fn request_kill(&self) {
        self.kill.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

#[derive(Default, Debug, Clone)]
pub struct Stats {
    pub total_connections_received: u64,
    pub total_commands_processed: u64,
    pub rejected_connections: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub pubsub_messages: u64,
    /// Clients closed for passing a client-output-buffer-limit (Redis 7.2's INFO field).
    pub client_output_limit_disconnections: u64,
    pub total_error_replies: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownMode {
    Default,
    Save,
    NoSave,
}

/// Everything commands read and write, behind the one lock.
pub struct State {
    /// The clock as last read (Redis's cached `server.mstime`): refreshed for every batch of
    /// commands and every cron tick, for decisions where that precision is enough (output
    /// buffer soft limits).
    pub now_ms: i64,
    pub ks: Keyspace,
    pub config: Config,
    pub commands: CommandTable,
    pub clients: BTreeMap<u64, ClientEntry>,
    pub next_client_id: u64,
    pub pubsub: PubSub,
    pub watches: Watches,
    pub stats: Stats,
    pub run_id: String,
    /// Replication: role, IDs, offsets, backlog, attached replicas.
    pub repl: crate::replication::ReplState,
    /// Changes since the last save (Redis's `server.dirty`).
    pub dirty: u64,
    pub start_ms: i64,
    pub lastsave_ms: i64,
    pub port: u16,
    pub shutdown: Option<ShutdownMode>,
    pub config_file: Option<String>,
    /// Observation sink and the incremental digest it needs (simulation only).
    pub observer: Option<crate::observe::Observer>,
    pub tracking: crate::observe::Tracking,
    pub save: crate::persistence::SaveState,
    /// The append-only file: what is queued for its writer, its files and statistics.
    pub aof: crate::aof::AofState,
    /// Woken at every replica ACK, so WAIT answers the moment its count is reached (Redis wakes
    /// its waiting clients from the ACK handler) rather than at its next poll.
    pub acks: Arc<Notify>,
    /// Sentinel mode: the sentinel's state (its links run in `sentinel::link`).
    pub sentinel: Option<Box<crate::sentinel::Sentinel>>,
    /// Wakes the sentinel's timer when a reply or a command queued work for its links.
    pub sentinel_wake: Arc<Notify>,
    /// CLIENT PAUSE and FAILOVER's write pause.
    pub pause: crate::pause::ClientPause,
    /// Woken when a pause is lifted, so postponed clients retry at once.
    pub unpaused: Arc<Notify>,
    /// A coordinated FAILOVER under way (replication/failover.rs).
    pub failover: crate::replication::failover::Failover,
    /// Clients blocked in BLPOP and friends, and the keys made ready for them.
    pub blocking: crate::blocking::Blocking,
    /// The Lua engine and script cache (None only while a script runs: see `scripting`).
    pub scripting: Option<crate::scripting::Engine>,
}

/// The state plus what is shared without the lock.
pub struct Shared {
    state: Mutex<State>,
    pub env: Env,
    /// Woken when a SHUTDOWN is requested.
    pub shutdown_notify: Notify,
    /// Held while the config file is rewritten: two rewrites at once (a client's and the
    /// sentinel timer's) would share one temporary file, and the second rename would fail.
    /// Each writer computes its text while holding it, so the last write has the newest state.
    pub config_writes: tokio::sync::Mutex<()>,
}

impl Shared {
    /// The lock for code that runs while a panic unwinds (a `Drop`): None if a panic poisoned
    /// it, since a second panic there would abort the process (and, in simulation, the sweep)
    /// instead of failing one seed.
    pub fn lock_unless_poisoned(&self) -> Option<MutexGuard<'_, State>> {
        self.state.lock().ok()
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a command panicked mid-way: the state may be inconsistent, and
        // continuing would serve corrupt data. Crash instead (TigerStyle: fail fast).
        self.state.lock().expect("server state lock poisoned")
    }
}

/// A server bound and ready to serve.
pub struct Server {
    pub shared: Arc<Shared>,
    listeners: Vec<TcpListener>,
    /// The first AOF base, when the AOF is on and none existed (written once serving starts).
    aof_job: Option<crate::aof::rewrite::Job>,
}

impl Server {
    /// Builds the state and binds the configured addresses.
    pub async fn bind(config: Config, env: Env) -> std::io::Result<Server> {
        let port = config.hot.port;
        let binds = config.hot.bind.clone();
        let mut listeners = Vec::new();
        for b in &binds {
            // A leading '-' marks an optional address (bind failure is not fatal), as in Redis.
            let (optional, addr) = match b.strip_prefix('-') {
                Some(a) => (true, a),
                None => (false, b.as_str()),
            };
            let addr = if addr == "*" { "0.0.0.0" } else { addr };
            let sock = if addr.contains(':') { format!("[{addr}]:{port}") } else { format!("{addr}:{port}") };
            match TcpListener::bind(sock.as_str()).await {
                Ok(l) => listeners.push(l),
                Err(e) if optional => {
                    tracing::warn!("Could not create server TCP listening socket {sock}: {e}")
                }
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("Could not create server TCP listening socket {sock}: {e}"),
                    ))
                }
            }
        }
        let actual_port = listeners.first().and_then(|l| l.local_addr().ok()).map(|a| a.port()).unwrap_or(port);
        let mut state = State::new(config, &env, actual_port);
        let now = env.clock.now_ms();
        if state.config.sentinel_mode {
            state.sentinel = Some(Box::new(new_sentinel(&state, &env, now)?));
            return Ok(Server {
                shared: Arc::new(Shared {
                    state: Mutex::new(state),
                    env,
                    shutdown_notify: Notify::new(),
                    config_writes: tokio::sync::Mutex::new(()),
                }),
                listeners,
                aof_job: None,
            });
        }
        state.config.check_no_sentinel_lines().map_err(|e| std::io::Error::other(e.to_string()))?;
        // Load the dataset before accepting anyone, as Redis does; a corrupt file stops start-up.
        // A replica keeps keys that expired while it was down: its master will send the DELs.
        if state.config.hot.replicaof.is_some() {
            state.ks.policy = crate::db::ExpirePolicy::HideOnly;
        }
        // The manifest is read whether or not the AOF is on, as Redis does.
        let mut manifest = crate::aof::load::read_manifest(&state, &env.disk).await.map_err(std::io::Error::other)?;
        let aof_job = if crate::aof::configured(&state) {
            // With the AOF on, the RDB file is not read (Redis's rule: the AOF is the dataset).
            crate::aof::load::upgrade_old_file(&state, &env.disk, &mut manifest)
                .await
                .map_err(std::io::Error::other)?;
            let loaded = crate::aof::load::load(&mut state, &env, &manifest).await.map_err(std::io::Error::other)?;
            if loaded.is_none() {
                if let Some(obs) = &state.observer {
                    obs.emit(crate::observe::Observation::Loaded { digest: [0; 3], keys: 0 });
                }
            }
            state.aof.manifest = manifest;
            if let Some(l) = &loaded {
                tracing::info!("DB loaded from append only file: {} keys", l.keys);
                state.aof.base_size = l.base_size;
                state.aof.current_size = l.total_size;
            }
            crate::aof::open_on_start(&mut state, now)
        } else {
            state.aof.manifest = manifest;
            let loaded = crate::persistence::load(&mut state, &env.disk, now).await.map_err(std::io::Error::other)?;
            if let Some(info) = loaded {
                let expired = info.expired_keys.clone();
                adopt_saved_replication(&mut state, info);
                delete_expired_after_load(&mut state, &expired, now);
            }
            None
        };
        Ok(Server {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                env,
                shutdown_notify: Notify::new(),
                config_writes: tokio::sync::Mutex::new(()),
            }),
            listeners,
            aof_job,
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listeners.first().and_then(|l| l.local_addr().ok())
    }

    /// Serves until SHUTDOWN. Returns the shutdown mode requested.
    pub async fn run(self) -> ShutdownMode {
        let shared = self.shared;
        {
            let st = shared.lock();
            tracing::info!("Server initialized, run_id={} port={} databases={}", st.run_id, st.port, st.ks.dbs.len());
        }
        let mut tasks = Vec::new();
        for listener in self.listeners {
            let shared = shared.clone();
            tasks.push(tokio::spawn(accept_loop(shared, listener)));
        }
        let sentinel_mode = shared.lock().sentinel.is_some();
        if sentinel_mode {
            tasks.push(crate::sentinel::link::spawn(shared.clone()));
        } else {
            tasks.push(tokio::spawn(cron(shared.clone())));
            tasks.push(crate::aof::writer::spawn(shared.clone()));
            if let Some(job) = self.aof_job {
                tracing::info!("Creating AOF base file on server start");
                tasks.push(tokio::spawn(crate::aof::rewrite::run(shared.clone(), job)));
            }
        }
        // `replicaof` in the configuration: follow that master from the start.
        let start_link = {
            let mut st = shared.lock();
            match st.config.hot.replicaof.clone() {
                Some((host, port)) => {
                    let now = shared.env.clock.now_ms();
                    // At start-up only an RDB's replication id gives history (set by the load
                    // above); an empty node asks for a full sync, as Redis does.
                    Some(crate::cmd::replication::demote(&mut st, host, port, now, false))
                }
                None => None,
            }
        };
        if let Some(generation) = start_link {
            crate::replication::replica::spawn_link(shared.clone(), generation);
        }
        tracing::info!("Ready to accept connections");
        loop {
            // Read the flag into a local first: the guard must be gone before the body locks.
            let requested = shared.lock().shutdown;
            if let Some(mode) = requested {
                let must_save = match mode {
                    _ if sentinel_mode => false,
                    ShutdownMode::Save => true,
                    ShutdownMode::NoSave => false,
                    ShutdownMode::Default => !crate::persistence::save_points(&shared.lock()).is_empty(),
                };
                if !sentinel_mode && shared.lock().aof.target.is_some() {
                    tracing::info!("Calling fsync() on the AOF file.");
                    if !crate::aof::flush_and_sync(&shared).await {
                        tracing::warn!("Fail to fsync the AOF file.");
                    }
                }
                if must_save {
                    tracing::info!("Saving the final RDB snapshot before exiting.");
                    if let Err(e) = save_now(&shared, true).await {
                        // Redis refuses to exit rather than lose data it was told to keep.
                        tracing::warn!("Error trying to save the DB, can't exit: {e}");
                        shared.lock().shutdown = None;
                        continue;
                    }
                }
                for t in &tasks {
                    t.abort();
                }
                let st = shared.lock();
                for c in st.clients.values() {
                    c.request_kill();
                }
                tracing::info!("Redis-compatible server is now ready to exit, bye bye...");
                return mode;
            }
            shared.shutdown_notify.notified().await;
        }
    }
}

impl State {
    /// A new client id (connections and the replica's link to its master share the sequence).
    pub fn allocate_client_id(&mut self) -> u64 {
        let id = self.next_client_id;
        // One id per connection: 2^64 of them cannot happen (and saturating would hand out
        // duplicates, wrapping would too).
        #[allow(clippy::arithmetic_side_effects)]
        {
            self.next_client_id += 1;
        }
        id
    }

    pub fn new(config: Config, env: &Env, port: u16) -> State {
        let seeds = [env.rng.next_u64(), env.rng.next_u64(), env.rng.next_u64(), env.rng.next_u64()];
        let mut ks = Keyspace::new(config.hot.databases.max(1), seeds);
        ks.policy = crate::db::ExpirePolicy::Delete;
        ks.track_digest = env.observer.is_some();
        let commands = if config.sentinel_mode {
            CommandTable::sentinel(&config.renames)
        } else {
            CommandTable::new(&config.renames)
        };
        let now = env.clock.now_ms();
        State {
            now_ms: now,
            ks,
            commands,
            clients: BTreeMap::new(),
            next_client_id: 1,
            pubsub: PubSub::default(),
            watches: Watches::default(),
            stats: Stats::default(),
            run_id: env.rng.hex_id(),
            repl: crate::replication::ReplState::new(env.rng.hex_id()),
            dirty: 0,
            start_ms: now,
            lastsave_ms: now,
            port,
            shutdown: None,
            config_file: config.file.clone(),
            observer: env.observer.clone(),
            tracking: Default::default(),
            acks: Arc::new(Notify::new()),
            save: Default::default(),
            aof: crate::aof::AofState::new(),
            sentinel: None,
            sentinel_wake: Arc::new(Notify::new()),
            pause: crate::pause::ClientPause::default(),
            unpaused: Arc::new(Notify::new()),
            failover: crate::replication::failover::Failover::default(),
            blocking: crate::blocking::Blocking::new(),
            scripting: Some(crate::scripting::Engine::new()),
            config,
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!("Accepting client connection: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let local = stream.local_addr().ok();
        #[cfg(not(madsim))]
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            connection::serve(shared, stream, peer, local).await;
        });
    }
}

/// A sentinel from the config's `sentinel` lines; a new myid (from the node's seeded RNG) is
/// written back at once, as `sentinelIsRunning` does.
fn new_sentinel(state: &State, env: &Env, now_ms: i64) -> std::io::Result<crate::sentinel::Sentinel> {
    let mut s = crate::sentinel::Sentinel::new(String::new(), state.port, env.rng.clone(), now_ms);
    let executable = |p: &str| env.disk.is_executable(std::path::Path::new(p));
    crate::sentinel::config::load(&mut s, &state.config.sentinel_lines, now_ms, &executable).map_err(|e| {
        let err = crate::config::ConfigError {
            file: e.line.file.clone(),
            line_no: e.line.line_no,
            line: e.line.text.clone(),
            reason: e.reason,
        };
        std::io::Error::other(err.to_string())
    })?;
    if s.g.myid.is_empty() {
        s.g.myid = env.rng.hex_id();
        s.g.flush_config = true;
    }
    tracing::warn!("Sentinel ID is {}", s.g.myid);
    s.initial_monitor_events();
    Ok(s)
}

/// Longest a shutdown waits for a background save to finish before saving itself.
const SAVE_WAIT_MAX: Duration = Duration::from_secs(600);

/// SAVE (and the final save at shutdown): snapshot, write, record. Returns the file size.
/// With `wait`, waits for a save in progress to end first; without, fails if one is running.
pub async fn save_now(shared: &Shared, wait: bool) -> std::io::Result<u64> {
    let started = tokio::time::Instant::now();
    let job = loop {
        {
            let mut st = shared.lock();
            if !crate::persistence::busy(&st) {
                st.save.save_in_progress = true;
                break crate::persistence::prepare(&mut st, shared.env.clock.now_ms());
            }
        }
        if !wait || started.elapsed() > SAVE_WAIT_MAX {
            return Err(std::io::Error::other("Background save already in progress"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let result = crate::persistence::write(&job, &shared.env.disk).await;
    let mut st = shared.lock();
    crate::persistence::finish(&mut st, &job, &result, shared.env.clock.now_ms(), false);
    result
}

/// BGSAVE: takes the snapshot now and writes it in a background task.
pub fn start_bgsave(shared: &Arc<Shared>) -> Result<(), &'static str> {
    let job = {
        let mut st = shared.lock();
        if crate::persistence::busy(&st) {
            return Err("ERR Background save already in progress");
        }
        st.save.bgsave_in_progress = true;
        let now = shared.env.clock.now_ms();
        st.save.bgsave_started_ms = now;
        crate::persistence::prepare(&mut st, now)
    };
    crate::fault::probe("persist.bgsave_started");
    let shared = shared.clone();
    tokio::spawn(async move {
        let result = crate::persistence::write(&job, &shared.env.disk).await;
        let mut st = shared.lock();
        crate::persistence::finish(&mut st, &job, &result, shared.env.clock.now_ms(), true);
    });
    Ok(())
}

/// The replication id and offset saved in the RDB let a restarted replica continue partially,
/// and a restarted master accept its old replicas' PSYNC via replid2. The file is untrusted: an
/// id that is not 40 characters, or an offset that is negative or has no successor (a backlog
/// starts at offset + 1: `repl-offset` 9223372036854775807 overflowed), is ignored.
fn adopt_saved_replication(state: &mut State, loaded: crate::persistence::LoadInfo) {
    let crate::persistence::LoadInfo { repl_id: Some(id), repl_offset: Some(off), repl_stream_db, .. } = loaded else {
        return;
    };
    if off < 0 || off.checked_add(1).is_none() || id.len() != 40 {
        return;
    }
    let as_replica = state.config.hot.replicaof.is_some();
    let db = repl_stream_db.unwrap_or(0);
    let master_db = if db >= 0 && (db as usize) < state.ks.dbs.len() { db as usize } else { 0 };
    state.repl.adopt_saved(id, off, as_replica, master_db, state.config.hot.repl_backlog_size);
    crate::fault::probe("repl.saved_state_adopted");
}

/// Keys the file held that had already expired are deleted after loading, as DELs: a master that
/// restarted with its replication state has its backlog first, so the DELs reach the replicas
/// that continue partially from the file's offset (Redis 7's RDBFLAGS_FEED_REPL), and the
/// replicas' data stays the master's at every offset.
fn delete_expired_after_load(state: &mut State, expired: &[(usize, crate::sds::Sds)], now_ms: i64) {
    if expired.is_empty() {
        return;
    }
    for (db, key) in expired {
        state.ks.expire_if_needed(*db, key, now_ms);
    }
    crate::cmd::propagate_expired(state, true);
    crate::fault::probe("persist.expired_deleted_after_load");
}

/// Periodic work, `hz` times a second: active expiry, and (later issues) replication and
/// persistence timers.
async fn cron(shared: Arc<Shared>) {
    loop {
        let hz = shared.lock().config.hot.hz;
        tokio::time::sleep(Duration::from_millis(1000u64.checked_div(hz).unwrap_or(1000))).await;
        if crate::fault::buggify("buggify.cron.skip_tick") {
            continue;
        }
        let now = shared.env.clock.now_ms();
        let mut st = shared.lock();
        st.now_ms = now;
        // A CLIENT PAUSE that ran out lets expiry delete again (its clients retry on their own).
        crate::pause::apply_expire_policy(&mut st, now);
        // Redis's fast cycle examines 20 keys per db per loop and repeats while >25% expired;
        // a fixed budget per tick bounds the time the lock is held.
        st.ks.active_expire(now, 200);
        if st.repl.is_replica() && !st.ks.replica_keys_with_expire.is_empty() {
            st.ks.expire_replica_written_keys(now);
        }
        crate::cmd::propagate_expired(&mut st, true);
        crate::replication::cron(&mut st, now);
        let hand_over = crate::replication::failover::tick(&mut st, &shared.env, now);
        let due = crate::persistence::save_point_due(&st, now);
        drop(st);
        if let Some(generation) = hand_over {
            crate::replication::replica::spawn_link(shared.clone(), generation);
        }
        crate::aof::rewrite::cron(&shared, now);
        if due {
            tracing::info!("Save point reached: background saving started");
            let _ = start_bgsave(&shared);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(id: &str, off: i64) -> crate::persistence::LoadInfo {
        crate::persistence::LoadInfo {
            keys: 0,
            expired_skipped: 0,
            expired_keys: Vec::new(),
            repl_id: Some(id.to_string()),
            repl_offset: Some(off),
            repl_stream_db: None,
        }
    }

    #[test]
    fn saved_replication_offset_is_checked() {
        let env = crate::env::Env::production();
        let id = "a".repeat(40);
        let mut st = State::new(Config::new(), &env, 6380);
        adopt_saved_replication(&mut st, saved(&id, 41));
        assert_eq!((st.repl.replid2.as_str(), st.repl.second_offset, st.repl.offset), (id.as_str(), 42, 41));
        assert!(st.repl.has_history);
        // `repl-offset` i64::MAX used to overflow computing second_offset (offset + 1) and, when a
        // replica attached, the backlog's start; now the file's replication info is ignored.
        for bad in [i64::MAX, -1, i64::MIN] {
            let mut st = State::new(Config::new(), &env, 6380);
            adopt_saved_replication(&mut st, saved(&id, bad));
            assert!(!st.repl.has_history, "offset {bad}");
            assert_eq!((st.repl.offset, st.repl.second_offset), (0, -1), "offset {bad}");
        }
        let mut st = State::new(Config::new(), &env, 6380);
        adopt_saved_replication(&mut st, saved(&id, i64::MAX - 1));
        st.repl.ensure_backlog(16 * 1024);
        assert_eq!(st.repl.backlog.as_ref().map(|b| b.first_offset()), Some(i64::MAX));
    }
}
