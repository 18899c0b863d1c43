//! Configuration in redis.conf format.
//!
//! Why it is shaped this way: Redis users arrive with config files copied from tutorials or from
//! the stock redis.conf, so every directive Redis 7.0 knows is recognised (the table below lists
//! them with Redis's defaults). Directives the server acts on are validated by type; the others
//! are parsed, validated by the shape of their default and stored, so `CONFIG GET` answers as
//! Redis would and a later feature can pick them up. An unknown directive or a bad value stops
//! start-up with the file, the line and the reason, as Redis does.
//!
//! Values are kept as normalised strings keyed by canonical name (`slaveof` is an alias of
//! `replicaof`, and so on); the few read on hot paths are mirrored into [`Hot`] on every change.
//! The original file lines are kept so that `CONFIG REWRITE` can write the file back with its
//! comments and layout, replacing only the lines whose options changed.
//!
//! Values come from files and clients (CONFIG SET): arithmetic here is checked (issue 12), and
//! the modules that use a value (`persistence`, `replication`) saturate what they compute from it.

use std::collections::BTreeMap;
use std::fmt;

use crate::protocol::split_args;

/// Redis 7.0's directives with their defaults (from `CONFIG GET *` of redis-server 7.0.15),
/// except where this server documents a different default (see [`OUR_DEFAULTS`]).
const REDIS_DIRECTIVES: &[(&str, &str)] = &[
    ("acl-pubsub-default", "resetchannels"),
    ("aclfile", ""),
    ("acllog-max-len", "128"),
    ("active-defrag-cycle-max", "25"),
    ("active-defrag-cycle-min", "1"),
    ("active-defrag-ignore-bytes", "104857600"),
    ("active-defrag-max-scan-fields", "1000"),
    ("active-defrag-threshold-lower", "10"),
    ("active-defrag-threshold-upper", "100"),
    ("active-expire-effort", "1"),
    ("activedefrag", "no"),
    ("activerehashing", "yes"),
    ("always-show-logo", "no"),
    ("aof-disable-auto-gc", "no"),
    ("aof-load-truncated", "yes"),
    ("aof-rewrite-incremental-fsync", "yes"),
    ("aof-timestamp-enabled", "no"),
    ("aof-use-rdb-preamble", "yes"),
    ("aof_rewrite_cpulist", ""),
    ("appenddirname", "appendonlydir"),
    ("appendfilename", "appendonly.aof"),
    ("appendfsync", "everysec"),
    ("appendonly", "no"),
    ("auto-aof-rewrite-min-size", "67108864"),
    ("auto-aof-rewrite-percentage", "100"),
    ("bgsave_cpulist", ""),
    ("bind-source-addr", ""),
    ("bio_cpulist", ""),
    ("busy-reply-threshold", "5000"),
    ("client-output-buffer-limit", "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"),
    ("client-query-buffer-limit", "1073741824"),
    ("cluster-allow-pubsubshard-when-down", "yes"),
    ("cluster-allow-reads-when-down", "no"),
    ("cluster-allow-replica-migration", "yes"),
    ("cluster-announce-bus-port", "0"),
    ("cluster-announce-hostname", ""),
    ("cluster-announce-ip", ""),
    ("cluster-announce-port", "0"),
    ("cluster-announce-tls-port", "0"),
    ("cluster-config-file", "nodes.conf"),
    ("cluster-enabled", "no"),
    ("cluster-link-sendbuf-limit", "0"),
    ("cluster-migration-barrier", "1"),
    ("cluster-node-timeout", "15000"),
    ("cluster-port", "0"),
    ("cluster-preferred-endpoint-type", "ip"),
    ("cluster-replica-no-failover", "no"),
    ("cluster-replica-validity-factor", "10"),
    ("cluster-require-full-coverage", "yes"),
    ("cluster-slave-no-failover", "no"),
    ("cluster-slave-validity-factor", "10"),
    ("crash-log-enabled", "yes"),
    ("crash-memcheck-enabled", "yes"),
    ("databases", "16"),
    ("dbfilename", "dump.rdb"),
    ("disable-thp", "yes"),
    ("dynamic-hz", "yes"),
    ("enable-debug-command", "no"),
    ("enable-module-command", "no"),
    ("enable-protected-configs", "no"),
    ("hash-max-listpack-entries", "512"),
    ("hash-max-listpack-value", "64"),
    ("hash-max-ziplist-entries", "512"),
    ("hash-max-ziplist-value", "64"),
    ("hll-sparse-max-bytes", "3000"),
    ("hz", "10"),
    ("ignore-warnings", ""),
    ("io-threads", "1"),
    ("io-threads-do-reads", "no"),
    ("jemalloc-bg-thread", "yes"),
    ("latency-monitor-threshold", "0"),
    ("latency-tracking", "yes"),
    ("latency-tracking-info-percentiles", "50 99 99.9"),
    ("lazyfree-lazy-eviction", "no"),
    ("lazyfree-lazy-expire", "no"),
    ("lazyfree-lazy-server-del", "no"),
    ("lazyfree-lazy-user-del", "no"),
    ("lazyfree-lazy-user-flush", "no"),
    ("lfu-decay-time", "1"),
    ("lfu-log-factor", "10"),
    ("list-compress-depth", "0"),
    ("list-max-listpack-size", "-2"),
    ("list-max-ziplist-size", "-2"),
    ("loglevel", "notice"),
    ("lua-time-limit", "5000"),
    ("masterauth", ""),
    ("masteruser", ""),
    ("maxclients", "10000"),
    ("maxmemory", "0"),
    ("maxmemory-clients", "0"),
    ("maxmemory-eviction-tenacity", "10"),
    ("maxmemory-policy", "noeviction"),
    ("maxmemory-samples", "5"),
    ("min-replicas-max-lag", "10"),
    ("min-replicas-to-write", "0"),
    ("min-slaves-max-lag", "10"),
    ("min-slaves-to-write", "0"),
    ("no-appendfsync-on-rewrite", "no"),
    ("notify-keyspace-events", ""),
    ("oom-score-adj", "no"),
    ("oom-score-adj-values", "0 200 800"),
    ("proc-title-template", "{title} {listen-addr} {server-mode}"),
    ("propagation-error-behavior", "ignore"),
    ("protected-mode", "yes"),
    ("proto-max-bulk-len", "536870912"),
    ("rdb-del-sync-files", "no"),
    ("rdb-save-incremental-fsync", "yes"),
    ("rdbchecksum", "yes"),
    ("rdbcompression", "yes"),
    ("repl-backlog-size", "1048576"),
    ("repl-backlog-ttl", "3600"),
    ("repl-disable-tcp-nodelay", "no"),
    ("repl-diskless-load", "disabled"),
    ("repl-diskless-sync", "yes"),
    ("repl-diskless-sync-delay", "5"),
    ("repl-diskless-sync-max-replicas", "0"),
    ("repl-ping-replica-period", "10"),
    ("repl-ping-slave-period", "10"),
    ("repl-timeout", "60"),
    ("replica-announce-ip", ""),
    ("replica-announce-port", "0"),
    ("replica-announced", "yes"),
    ("replica-ignore-disk-write-errors", "no"),
    ("replica-ignore-maxmemory", "yes"),
    ("replica-lazy-flush", "no"),
    ("replica-priority", "100"),
    ("replica-read-only", "yes"),
    ("replica-serve-stale-data", "yes"),
    ("replicaof", ""),
    ("requirepass", ""),
    ("sanitize-dump-payload", "no"),
    ("server_cpulist", ""),
    ("set-max-intset-entries", "512"),
    ("set-proc-title", "yes"),
    ("shutdown-on-sigint", "default"),
    ("shutdown-on-sigterm", "default"),
    ("shutdown-timeout", "10"),
    ("slave-announce-ip", ""),
    ("slave-announce-port", "0"),
    ("slave-ignore-maxmemory", "yes"),
    ("slave-lazy-flush", "no"),
    ("slave-priority", "100"),
    ("slave-read-only", "yes"),
    ("slave-serve-stale-data", "yes"),
    ("slaveof", ""),
    ("slowlog-log-slower-than", "10000"),
    ("slowlog-max-len", "128"),
    ("socket-mark-id", "0"),
    ("stop-writes-on-bgsave-error", "yes"),
    ("stream-node-max-bytes", "4096"),
    ("stream-node-max-entries", "100"),
    ("supervised", "no"),
    ("syslog-enabled", "no"),
    ("syslog-facility", "local0"),
    ("syslog-ident", "redis"),
    ("tcp-backlog", "511"),
    ("tcp-keepalive", "300"),
    ("timeout", "0"),
    ("tls-auth-clients", "yes"),
    ("tls-ca-cert-dir", ""),
    ("tls-ca-cert-file", ""),
    ("tls-cert-file", ""),
    ("tls-ciphers", ""),
    ("tls-ciphersuites", ""),
    ("tls-client-cert-file", ""),
    ("tls-client-key-file", ""),
    ("tls-client-key-file-pass", ""),
    ("tls-cluster", "no"),
    ("tls-dh-params-file", ""),
    ("tls-key-file", ""),
    ("tls-key-file-pass", ""),
    ("tls-port", "0"),
    ("tls-prefer-server-ciphers", "no"),
    ("tls-protocols", ""),
    ("tls-replication", "no"),
    ("tls-session-cache-size", "20480"),
    ("tls-session-cache-timeout", "300"),
    ("tls-session-caching", "yes"),
    ("tracking-table-max-keys", "1000000"),
    ("unixsocket", ""),
    ("unixsocketperm", "0"),
    ("zset-max-listpack-entries", "128"),
    ("zset-max-listpack-value", "64"),
    ("zset-max-ziplist-entries", "128"),
    ("zset-max-ziplist-value", "64"),
];

/// Defaults that differ from the table: bind and protected mode are loopback-safe, no daemon,
/// save points as in the stock redis.conf.
const OUR_DEFAULTS: &[(&str, &str)] = &[
    ("port", "6379"),
    ("bind", "127.0.0.1 -::1"),
    ("daemonize", "no"),
    ("pidfile", ""),
    ("logfile", ""),
    ("dir", "."),
    ("save", "3600 1 300 100 60 10000"),
];

/// Old names Redis still accepts, mapped to the canonical one.
const ALIASES: &[(&str, &str)] = &[
    ("slaveof", "replicaof"),
    ("slave-read-only", "replica-read-only"),
    ("slave-serve-stale-data", "replica-serve-stale-data"),
    ("slave-priority", "replica-priority"),
    ("slave-announce-ip", "replica-announce-ip"),
    ("slave-announce-port", "replica-announce-port"),
    ("slave-lazy-flush", "replica-lazy-flush"),
    ("slave-ignore-maxmemory", "replica-ignore-maxmemory"),
    ("min-slaves-to-write", "min-replicas-to-write"),
    ("min-slaves-max-lag", "min-replicas-max-lag"),
    ("repl-ping-slave-period", "repl-ping-replica-period"),
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
    ("list-max-ziplist-size", "list-max-listpack-size"),
    ("cluster-slave-no-failover", "cluster-replica-no-failover"),
    ("cluster-slave-validity-factor", "cluster-replica-validity-factor"),
];

/// Directives CONFIG SET refuses, as Redis marks them immutable.
const IMMUTABLE: &[&str] = &[
    "port",
    "bind",
    "daemonize",
    "databases",
    "pidfile",
    "logfile",
    "supervised",
    "unixsocket",
    "unixsocketperm",
    "io-threads",
    "io-threads-do-reads",
    "tcp-backlog",
    "cluster-enabled",
    "cluster-config-file",
    "cluster-port",
    "syslog-enabled",
    "syslog-ident",
    "syslog-facility",
    "aclfile",
    "appenddirname",
    "set-proc-title",
    "disable-thp",
    "enable-debug-command",
    "enable-module-command",
    "enable-protected-configs",
    "always-show-logo",
    "replicaof",
    "jemalloc-bg-thread",
    "tls-port",
    "crash-log-enabled",
    "crash-memcheck-enabled",
    "bgsave_cpulist",
    "server_cpulist",
    "bio_cpulist",
    "aof_rewrite_cpulist",
];

const ENUMS: &[(&str, &[&str])] = &[
    ("loglevel", &["debug", "verbose", "notice", "warning"]),
    (
        "maxmemory-policy",
        &[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ],
    ),
    ("appendfsync", &["everysec", "always", "no"]),
    ("supervised", &["upstart", "systemd", "auto", "no"]),
    ("repl-diskless-load", &["disabled", "on-empty-db", "swapdb"]),
    ("propagation-error-behavior", &["ignore", "panic", "panic-on-replicas"]),
    ("shutdown-on-sigint", &["default", "save", "nosave", "now", "force"]),
    ("shutdown-on-sigterm", &["default", "save", "nosave", "now", "force"]),
    ("acl-pubsub-default", &["allchannels", "resetchannels"]),
    ("cluster-preferred-endpoint-type", &["ip", "hostname", "unknown-endpoint"]),
    ("sanitize-dump-payload", &["no", "yes", "clients"]),
    ("enable-debug-command", &["no", "yes", "local"]),
    ("enable-module-command", &["no", "yes", "local"]),
    ("enable-protected-configs", &["no", "yes", "local"]),
    ("oom-score-adj", &["no", "yes", "relative", "absolute"]),
    ("syslog-facility", &["user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]),
];

/// Memory-valued directives (accept `1gb`, `100mb`, `64k`...).
const MEMORY: &[&str] = &[
    "maxmemory",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "repl-backlog-size",
    "active-defrag-ignore-bytes",
    "auto-aof-rewrite-min-size",
    "maxmemory-clients",
    "stream-node-max-bytes",
    "cluster-link-sendbuf-limit",
    "hll-sparse-max-bytes",
    "hash-max-listpack-value",
    "zset-max-listpack-value",
];

/// Ranges Redis enforces on memory-valued directives (the others take 0 to `i64::MAX`): a
/// 1-byte `proto-max-bulk-len` would break every command, so Redis's minimums are ours.
const MEMORY_RANGES: &[(&str, u64, u64)] = &[
    ("proto-max-bulk-len", 1024 * 1024, i64::MAX as u64),
    ("auto-aof-rewrite-min-size", 0, i64::MAX as u64),
    ("client-query-buffer-limit", 1024 * 1024, i64::MAX as u64),
    ("repl-backlog-size", 1, i64::MAX as u64),
    ("active-defrag-ignore-bytes", 1, i64::MAX as u64),
    ("maxmemory", 0, u64::MAX),
    ("cluster-link-sendbuf-limit", 0, u64::MAX),
];

/// Directives CONFIG SET changes only when `enable-protected-configs` allows it (Redis 7's
/// `PROTECTED_CONFIG`): together with SAVE they would let a client write a file anywhere.
const PROTECTED: &[&str] = &["dir", "dbfilename"];

/// How deep `include` may nest (an include cycle stops here with an error, not a stack overflow).
pub const INCLUDE_DEPTH_MAX: usize = 16;

/// Integer ranges Redis 7.0 enforces (its `createIntConfig` and kin, config.c); every numeric
/// directive is checked, whether or not this server acts on it, so CONFIG SET refuses what Redis
/// refuses.
const INT_RANGES: &[(&str, i64, i64)] = &[
    ("databases", 1, 2147483647),
    ("port", 0, 65535),
    ("io-threads", 1, 128),
    ("auto-aof-rewrite-percentage", 0, 2147483647),
    ("cluster-replica-validity-factor", 0, 2147483647),
    ("list-max-listpack-size", -2147483648, 2147483647),
    ("tcp-keepalive", 0, 2147483647),
    ("cluster-migration-barrier", 0, 2147483647),
    ("active-defrag-cycle-min", 1, 99),
    ("active-defrag-cycle-max", 1, 99),
    ("active-defrag-threshold-lower", 0, 1000),
    ("active-defrag-threshold-upper", 0, 1000),
    ("lfu-log-factor", 0, 2147483647),
    ("lfu-decay-time", 0, 2147483647),
    ("replica-priority", 0, 2147483647),
    ("repl-diskless-sync-delay", 0, 2147483647),
    ("maxmemory-samples", 1, 2147483647),
    ("maxmemory-eviction-tenacity", 0, 100),
    ("timeout", 0, 2147483647),
    ("replica-announce-port", 0, 65535),
    ("tcp-backlog", 0, 2147483647),
    ("cluster-port", 0, 65535),
    ("cluster-announce-bus-port", 0, 65535),
    ("cluster-announce-port", 0, 65535),
    ("cluster-announce-tls-port", 0, 65535),
    ("repl-timeout", 1, 2147483647),
    ("repl-ping-replica-period", 1, 2147483647),
    ("list-compress-depth", 0, 2147483647),
    ("active-expire-effort", 1, 10),
    ("hz", 0, 2147483647),
    ("min-replicas-to-write", 0, 2147483647),
    ("min-replicas-max-lag", 0, 2147483647),
    ("shutdown-timeout", 0, 2147483647),
    ("repl-diskless-sync-max-replicas", 0, 2147483647),
    ("maxclients", 1, 4294967295),
    ("busy-reply-threshold", 0, i64::MAX),
    ("cluster-node-timeout", 0, i64::MAX),
    ("slowlog-log-slower-than", -1, i64::MAX),
    ("latency-monitor-threshold", 0, i64::MAX),
    ("stream-node-max-entries", 0, i64::MAX),
    ("hash-max-listpack-entries", 0, i64::MAX),
    ("set-max-intset-entries", 0, i64::MAX),
    ("zset-max-listpack-entries", 0, i64::MAX),
    ("tracking-table-max-keys", 0, i64::MAX),
    ("repl-backlog-ttl", 0, i64::MAX),
    ("tls-port", 0, 65535),
    ("tls-session-cache-size", 0, 2147483647),
    ("tls-session-cache-timeout", 0, 2147483647),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Int(i64, i64),
    Memory,
    Enum(&'static [&'static str]),
    Str,
    /// `save <secs> <changes> ...` (repeatable; `save ""` clears).
    Save,
    /// `bind addr [addr ...]`.
    Bind,
    /// `replicaof <host> <port>` or `replicaof no one`.
    ReplicaOf,
    /// `client-output-buffer-limit <class> <hard> <soft> <secs>` (repeatable).
    ClientOutputBufferLimit,
}

/// Who may use a protected feature (`enable-debug-command`, `enable-protected-configs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    #[default]
    No,
    Yes,
    /// Only clients from 127.0.0.1 or ::1.
    Local,
}

impl Access {
    fn parse(v: &str) -> Access {
        match v {
            "yes" => Access::Yes,
            "local" => Access::Local,
            _ => Access::No,
        }
    }

    pub fn allows(self, client_is_local: bool) -> bool {
        self == Access::Yes || (self == Access::Local && client_is_local)
    }
}

/// The settings the server acts on, typed and parsed once per change (file, command line, CONFIG
/// SET), so no code path looks a directive up by name or parses its text again. The string map
/// stays the source for CONFIG GET and CONFIG REWRITE.
#[derive(Clone, Debug, Default)]
pub struct Hot {
    pub requirepass: Option<Vec<u8>>,
    pub maxmemory: u64,
    pub proto_max_bulk_len: i64,
    pub client_query_buffer_limit: usize,
    pub timeout_secs: u64,
    pub replica_read_only: bool,
    pub protected_mode: bool,
    pub databases: usize,
    pub hz: u64,
    pub maxclients: usize,
    pub loglevel: String,
    /// Read on every write (the -NOREPLICAS gate), so kept parsed.
    pub min_replicas_to_write: i64,
    pub min_replicas_max_lag: i64,
    /// client-output-buffer-limit's pubsub class, checked on every message delivered.
    pub pubsub_output_limit: crate::server::OutputLimit,
    /// client-output-buffer-limit's normal class (Redis's default, 0 0 0, is no limit), checked
    /// on a client's pending replies after every command.
    pub normal_output_limit: crate::server::OutputLimit,
    /// client-output-buffer-limit's replica class, checked as the stream is queued.
    pub replica_output_limit: crate::server::OutputLimit,
    pub port: u16,
    pub bind: Vec<String>,
    /// `replicaof host port`, if set.
    pub replicaof: Option<(String, u16)>,
    pub masterauth: Option<String>,
    pub masteruser: Option<String>,
    pub repl_backlog_size: usize,
    pub repl_timeout_ms: i64,
    pub repl_ping_replica_period_ms: i64,
    pub repl_diskless_sync: bool,
    pub repl_diskless_sync_delay_s: u64,
    pub replica_priority: i64,
    pub replica_announce_ip: Option<String>,
    /// 0: announce the listening port.
    pub replica_announce_port: u16,
    pub replica_serve_stale_data: bool,
    /// `save` as (seconds, changes) pairs; empty: no save points.
    pub save_points: Vec<(i64, u64)>,
    pub dir: String,
    pub dbfilename: String,
    pub stop_writes_on_bgsave_error: bool,
    pub maxmemory_policy: String,
    pub enable_debug_command: Access,
    pub enable_protected_configs: Access,
    pub io_threads: usize,
    pub daemonize: bool,
    pub pidfile: String,
    pub logfile: String,
}

/// A problem with a directive: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line_no: usize,
    pub line: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    /// Formatted like Redis's fatal config error report.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\n*** FATAL CONFIG FILE ERROR (store {}) ***", env!("CARGO_PKG_VERSION"))?;
        writeln!(f, "Reading the configuration file {}, at line {}", self.file, self.line_no)?;
        writeln!(f, ">>> '{}'", self.line)?;
        write!(f, "{}", self.reason)
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    /// `rename-command` pairs (original, new name; empty new name disables the command).
    pub renames: Vec<(String, String)>,
    /// The file this configuration came from and its lines, for CONFIG REWRITE.
    pub file: Option<String>,
    file_lines: Vec<String>,
    pub hot: Hot,
    /// Sentinel mode (`store-sentinel`, `--sentinel`): the node runs Sentinel's command table.
    pub sentinel_mode: bool,
    /// The `sentinel ...` lines, for the sentinel to load (a data node refuses them).
    pub sentinel_lines: Vec<crate::sentinel::config::Line>,
}

impl Default for Config {
    fn default() -> Config {
        Config::new()
    }
}

fn canonical(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if let Some((_, c)) = ALIASES.iter().find(|(a, _)| *a == lower) {
        return Some(c);
    }
    OUR_DEFAULTS.iter().chain(REDIS_DIRECTIVES.iter()).find(|(n, _)| *n == lower).map(|(n, _)| *n)
}

fn default_of(name: &str) -> &'static str {
    OUR_DEFAULTS
        .iter()
        .chain(REDIS_DIRECTIVES.iter())
        .find(|(n, _)| *n == name)
        .map(|(_, d)| *d)
        .expect("known directive")
}

fn kind_of(name: &'static str) -> Kind {
    match name {
        "save" => return Kind::Save,
        "bind" => return Kind::Bind,
        "replicaof" => return Kind::ReplicaOf,
        "client-output-buffer-limit" => return Kind::ClientOutputBufferLimit,
        _ => {}
    }
    if let Some((_, vals)) = ENUMS.iter().find(|(n, _)| *n == name) {
        return Kind::Enum(vals);
    }
    if MEMORY.contains(&name) {
        return Kind::Memory;
    }
    if let Some((_, lo, hi)) = INT_RANGES.iter().find(|(n, _, _)| *n == name) {
        return Kind::Int(*lo, *hi);
    }
    let d = default_of(name);
    if d == "yes" || d == "no" {
        return Kind::Bool;
    }
    if d.parse::<i64>().is_ok() {
        return Kind::Int(i64::MIN, i64::MAX);
    }
    Kind::Str
}

/// Parses `1gb`, `100mb`, `64k`, `123` into bytes, as Redis's `memtoull`.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let (num, mul) = [
        ("gb", 1u64 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suf, m)| Some((lower.strip_suffix(suf)?, *m)))
    .unwrap_or((&lower[..], 1));
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(mul)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Validates and normalises `args` for directive `name`. Errors are Redis's reason texts.
fn normalise(name: &'static str, args: &[String]) -> Result<String, String> {
    let kind = kind_of(name);
    // Redis's MULTI_ARG_CONFIGs split a lone argument at its spaces, so that the command line
    // `--replicaof "127.0.0.1 6379"` (common in container setups) works.
    let split: Vec<String>;
    let args = match (kind, args) {
        (Kind::ReplicaOf | Kind::Bind, [one]) if !one.is_empty() => {
            split = split_args(one.as_bytes())
                .ok_or_else(|| "Unbalanced quotes in configuration line".to_string())?
                .into_iter()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect();
            &split[..]
        }
        _ => args,
    };
    let single = || -> Result<&String, String> {
        if args.len() != 1 {
            return Err("wrong number of arguments".into());
        }
        Ok(&args[0])
    };
    match kind {
        Kind::Bool => {
            let v = single()?;
            let b = parse_bool(v).ok_or_else(|| "argument must be 'yes' or 'no'".to_string())?;
            Ok(if b { "yes".into() } else { "no".into() })
        }
        Kind::Int(lo, hi) => {
            let v = single()?;
            // Redis's string2ll: no sign but '-', no leading zeros, no spaces.
            let n = crate::protocol::parse_i64_strict(v.as_bytes())
                .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
            if n < lo || n > hi {
                return Err(format!("argument must be between {lo} and {hi} inclusive"));
            }
            // Redis accepts any hz and clamps it to 1..=500.
            if name == "hz" {
                return Ok(n.clamp(1, 500).to_string());
            }
            Ok(n.to_string())
        }
        Kind::Memory => {
            let v = single()?;
            let n = parse_memory(v).ok_or_else(|| "argument must be a memory value".to_string())?;
            let (lo, hi) = MEMORY_RANGES
                .iter()
                .find(|(m, _, _)| *m == name)
                .map_or((0, i64::MAX as u64), |(_, lo, hi)| (*lo, *hi));
            if n < lo || n > hi {
                return Err(format!("argument must be between {lo} and {hi} inclusive"));
            }
            Ok(n.to_string())
        }
        Kind::Enum(vals) => {
            let v = single()?.to_ascii_lowercase();
            if vals.contains(&v.as_str()) {
                Ok(v)
            } else {
                Err(format!("argument(s) must be one of the following: {}", vals.join(", ")))
            }
        }
        Kind::Str => {
            if args.len() > 1 && name != "oom-score-adj-values" && name != "latency-tracking-info-percentiles" {
                return Err("wrong number of arguments".into());
            }
            let v = args.join(" ");
            validate_str(name, &v)?;
            if name == "notify-keyspace-events" {
                return keyspace_events_normalised(&v);
            }
            Ok(v)
        }
        Kind::Save => {
            let joined: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
            if joined.is_empty() {
                return Ok(String::new());
            }
            if joined.len() % 2 != 0 {
                return Err("Invalid save parameters".into());
            }
            for v in &joined {
                match v.parse::<i64>() {
                    Ok(n) if n >= 0 => {}
                    _ => return Err("Invalid save parameters".into()),
                }
            }
            Ok(joined.join(" "))
        }
        Kind::Bind => {
            if args.is_empty() || args.len() > 16 {
                return Err("Too many bind addresses specified.".into());
            }
            Ok(args.join(" "))
        }
        Kind::ReplicaOf => {
            if args.len() != 2 {
                return Err("wrong number of arguments".into());
            }
            if args[0].eq_ignore_ascii_case("no") && args[1].eq_ignore_ascii_case("one") {
                return Ok(String::new());
            }
            match args[1].parse::<i64>() {
                Ok(p) if (0..=65535).contains(&p) => Ok(format!("{} {}", args[0], p)),
                _ => Err("Invalid master port".into()),
            }
        }
        Kind::ClientOutputBufferLimit => {
            let joined: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
            if joined.is_empty() || joined.len() % 4 != 0 {
                return Err("Wrong number of arguments in buffer limit configuration.".into());
            }
            let mut groups = Vec::new();
            for chunk in joined.chunks(4) {
                // Stored as Redis shows it: the class's old name, bytes, seconds.
                let class = match chunk[0].to_ascii_lowercase().as_str() {
                    "normal" => "normal",
                    "slave" | "replica" => "slave",
                    "pubsub" => "pubsub",
                    _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
                };
                let (Some(hard), Some(soft), Ok(secs)) =
                    (parse_memory(chunk[1]), parse_memory(chunk[2]), chunk[3].parse::<u64>())
                else {
                    return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into());
                };
                groups.push(format!("{class} {hard} {soft} {secs}"));
            }
            Ok(groups.join(" "))
        }
    }
}

/// Redis's checks on string directives that name files: a file name may not be a path (with
/// `dir` and SAVE it would write anywhere).
fn validate_str(name: &str, v: &str) -> Result<(), String> {
    let is_path = v.contains('/') || v.contains('\\');
    match name {
        "dbfilename" if is_path => Err("dbfilename can't be a path, just a filename".into()),
        "appendfilename" if v.is_empty() => Err("appendfilename can't be empty".into()),
        "appendfilename" if is_path => Err("appendfilename can't be a path, just a filename".into()),
        "appenddirname" if is_path => Err("appenddirname can't be a path, just a dirname".into()),
        _ => Ok(()),
    }
}

/// Applies normalised client-output-buffer-limit groups over the current value: each class
/// named takes its new limits, the others keep theirs; always listed normal, slave, pubsub.
fn merge_output_limits(current: &str, update: &str) -> String {
    let mut classes: Vec<(String, String)> = ["normal", "slave", "pubsub"]
        .iter()
        .map(|c| (c.to_string(), default_of("client-output-buffer-limit").to_string()))
        .map(|(c, d)| {
            let limits = group_of(&d, &c).unwrap_or_else(|| "0 0 0".into());
            (c, limits)
        })
        .collect();
    for source in [current, update] {
        for (class, limits) in classes.iter_mut() {
            if let Some(l) = group_of(source, class) {
                *limits = l;
            }
        }
    }
    classes.iter().map(|(c, l)| format!("{c} {l}")).collect::<Vec<_>>().join(" ")
}

/// The last `hard soft secs` given for `class` in a normalised value.
fn group_of(value: &str, class: &str) -> Option<String> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    parts.chunks(4).filter(|g| g.len() == 4 && g[0] == class).last().map(|g| g[1..].join(" "))
}

/// What parsing a config file needs from the world: the text of included files, and whether a
/// `dir` exists. The binary reads the real file system; the simulator and unit tests use
/// [`NoFiles`].
pub trait ConfigSource {
    fn read_include(&self, path: &str) -> Result<String, String>;
    fn check_dir(&self, path: &str) -> Result<(), String>;
}

/// No file system: `include` is an error, every `dir` is accepted.
pub struct NoFiles;

impl ConfigSource for NoFiles {
    fn read_include(&self, path: &str) -> Result<String, String> {
        Err(format!("Fatal error, can't open config file '{path}': no file system here"))
    }

    fn check_dir(&self, _path: &str) -> Result<(), String> {
        Ok(())
    }
}

/// notify-keyspace-events as Redis stores it: the classes parsed (an unknown character is an
/// error) and written back in Redis's canonical order (`KEA` is shown as `AKE`).
fn keyspace_events_normalised(v: &str) -> Result<String, String> {
    const CLASSES: &str = "g$lshzxetdn";
    const ALL: &str = "g$lshzxetd";
    let mut set: Vec<char> = Vec::new();
    for c in v.chars() {
        match c {
            'A' => set.extend(ALL.chars()),
            c if CLASSES.contains(c) || "KEm".contains(c) => set.push(c),
            _ => return Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
        }
    }
    let has = |c: char| set.contains(&c);
    let mut out = String::new();
    // As Redis's keyspaceEventsFlagsToString: with every class of A set, A alone stands for them
    // (and hides n, which A does not include).
    if ALL.chars().all(has) {
        out.push('A');
    } else {
        out.extend(CLASSES.chars().filter(|c| has(*c)));
    }
    out.extend("KEm".chars().filter(|c| has(*c)));
    Ok(out)
}

fn non_empty(v: String) -> Option<String> {
    (!v.is_empty()).then_some(v)
}

/// `replicaof`'s stored value (`host port`, or empty for none).
fn parse_replicaof(v: &str) -> Option<(String, u16)> {
    let mut parts = v.split_whitespace();
    match (parts.next(), parts.next().and_then(|p| p.parse::<u16>().ok())) {
        (Some(host), Some(port)) => Some((host.to_string(), port)),
        _ => None,
    }
}

/// `save`'s stored value as (seconds, changes) pairs.
fn parse_save_points(v: &str) -> Vec<(i64, u64)> {
    let nums: Vec<i64> = v.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    nums.chunks(2).filter(|c| c.len() == 2 && c[1] >= 0).map(|c| (c[0], c[1] as u64)).collect()
}

/// Glob match used by CONFIG GET (and KEYS elsewhere); re-exported from `glob`.
use crate::glob::glob_match;

impl Config {
    /// All defaults.
    pub fn new() -> Config {
        let mut values = BTreeMap::new();
        for (n, d) in REDIS_DIRECTIVES.iter() {
            if ALIASES.iter().any(|(a, _)| a == n) {
                continue;
            }
            values.insert(*n, d.to_string());
        }
        for (n, d) in OUR_DEFAULTS {
            values.insert(*n, d.to_string());
        }
        let mut c = Config {
            values,
            renames: Vec::new(),
            file: None,
            file_lines: Vec::new(),
            hot: Hot::default(),
            sentinel_mode: false,
            sentinel_lines: Vec::new(),
        };
        c.refresh_hot();
        c
    }

    /// Parses a redis.conf text (file contents followed by command-line directives, as Redis
    /// does). `file` names the source in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let mut c = Config::new();
        c.apply_text(text, file)?;
        c.file_lines = text.lines().map(|l| l.to_string()).collect();
        Ok(c)
    }

    /// Parses a redis.conf text with access to files (`include`) and directories (`dir`).
    pub fn parse_with(text: &str, file: &str, source: &dyn ConfigSource) -> Result<Config, ConfigError> {
        let mut c = Config::new();
        c.load_file_text(text, file, source)?;
        Ok(c)
    }

    /// A sentinel's starting point (`initSentinelConfig`): port 26379, and no protected mode,
    /// since other sentinels must reach it.
    pub fn sentinel_defaults() -> Config {
        let mut c = Config::new();
        c.sentinel_mode = true;
        c.set_internal("port", &crate::sentinel::DEFAULT_PORT.to_string());
        c.set_internal("protected-mode", "no");
        c
    }

    /// Applies a config file's text on top of this configuration and keeps its lines for
    /// CONFIG REWRITE.
    pub fn load_file_text(&mut self, text: &str, file: &str, source: &dyn ConfigSource) -> Result<(), ConfigError> {
        self.apply_text_with(text, file, source)?;
        self.file_lines = text.lines().map(|l| l.to_string()).collect();
        Ok(())
    }

    /// A data node refuses `sentinel` lines, as redis-server does outside sentinel mode.
    pub fn check_no_sentinel_lines(&self) -> Result<(), ConfigError> {
        match self.sentinel_lines.first() {
            Some(l) if !self.sentinel_mode => Err(ConfigError {
                file: l.file.clone(),
                line_no: l.line_no,
                line: l.text.clone(),
                reason: "sentinel directive while not in sentinel mode".into(),
            }),
            _ => Ok(()),
        }
    }

    /// Applies more directives (used for the command line after the file).
    pub fn apply_text(&mut self, text: &str, file: &str) -> Result<(), ConfigError> {
        self.apply_text_with(text, file, &NoFiles)
    }

    /// Applies more directives, reading included files and checking `dir` through `source`.
    pub fn apply_text_with(&mut self, text: &str, file: &str, source: &dyn ConfigSource) -> Result<(), ConfigError> {
        self.apply_lines(text, file, source, 0)?;
        self.refresh_hot();
        Ok(())
    }

    fn apply_lines(
        &mut self,
        text: &str,
        file: &str,
        source: &dyn ConfigSource,
        depth: usize,
    ) -> Result<(), ConfigError> {
        // `save` lines accumulate within one source; the first one replaces the default.
        let mut saw_save = false;
        for (line_no, raw) in (1..).zip(text.lines()) {
            let err = |reason: String| ConfigError { file: file.to_string(), line_no, line: raw.to_string(), reason };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some(parts) = split_args(line.as_bytes()) else {
                return Err(err("Unbalanced quotes in configuration line".into()));
            };
            let parts: Vec<String> = parts.into_iter().map(|p| String::from_utf8_lossy(&p).into_owned()).collect();
            let Some((name, args)) = parts.split_first() else {
                continue;
            };
            let lname = name.to_ascii_lowercase();
            if lname == "include" && args.len() == 1 {
                if depth >= INCLUDE_DEPTH_MAX {
                    return Err(err(format!("include nested more than {INCLUDE_DEPTH_MAX} levels deep")));
                }
                let included = source.read_include(&args[0]).map_err(err)?;
                // `depth < INCLUDE_DEPTH_MAX`, checked just above.
                #[allow(clippy::arithmetic_side_effects)]
                let depth = depth + 1;
                self.apply_lines(&included, &args[0], source, depth)?;
                continue;
            }
            if lname == "sentinel" {
                self.sentinel_lines.push(crate::sentinel::config::Line {
                    file: file.to_string(),
                    line_no,
                    text: raw.to_string(),
                    args: args.to_vec(),
                });
                continue;
            }
            if lname == "rename-command" && args.len() == 2 {
                let (from, to) = (args[0].to_ascii_lowercase(), args[1].to_ascii_lowercase());
                self.check_rename(&from, &to).map_err(|e| err(e.into()))?;
                self.renames.push((from, to));
                continue;
            }
            let Some(canon) = canonical(&lname) else {
                return Err(err("Bad directive or wrong number of arguments".into()));
            };
            let normalised = normalise(canon, args).map_err(err)?;
            if canon == "dir" {
                source.check_dir(&normalised).map_err(err)?;
            }
            match canon {
                "save" if saw_save && !normalised.is_empty() => {
                    let prev = self.values.get("save").cloned().unwrap_or_default();
                    let merged = if prev.is_empty() { normalised } else { format!("{prev} {normalised}") };
                    self.values.insert(canon, merged);
                }
                "client-output-buffer-limit" => {
                    let prev = self.values.get(canon).cloned().unwrap_or_default();
                    self.values.insert(canon, merge_output_limits(&prev, &normalised));
                }
                _ => {
                    self.values.insert(canon, normalised);
                }
            }
            saw_save |= canon == "save";
        }
        Ok(())
    }

    /// Redis applies `rename-command` to the live command table line by line: the command must
    /// exist under that name now, and the new name must be free. A typo is an error, never a
    /// silently ignored line that leaves CONFIG or FLUSHALL enabled.
    fn check_rename(&self, from: &str, to: &str) -> Result<(), &'static str> {
        let table = if self.sentinel_mode {
            crate::cmd::CommandTable::sentinel(&self.renames)
        } else {
            crate::cmd::CommandTable::new(&self.renames)
        };
        if table.lookup(from.as_bytes()).is_none() {
            return Err("No such command in rename-command");
        }
        if !to.is_empty() && to != from && table.lookup(to.as_bytes()).is_some() {
            return Err("Target command name already exists");
        }
        Ok(())
    }

    fn refresh_hot(&mut self) {
        let g = |k: &str| self.values.get(k).cloned().unwrap_or_default();
        let num = |k: &str| g(k).parse::<i64>().unwrap_or(0);
        let pass = g("requirepass");
        self.hot = Hot {
            requirepass: if pass.is_empty() { None } else { Some(pass.into_bytes()) },
            maxmemory: num("maxmemory") as u64,
            proto_max_bulk_len: num("proto-max-bulk-len"),
            client_query_buffer_limit: num("client-query-buffer-limit") as usize,
            timeout_secs: num("timeout") as u64,
            replica_read_only: g("replica-read-only") == "yes",
            protected_mode: g("protected-mode") == "yes",
            databases: num("databases") as usize,
            hz: num("hz").clamp(1, 500) as u64,
            maxclients: num("maxclients") as usize,
            loglevel: g("loglevel"),
            min_replicas_to_write: num("min-replicas-to-write"),
            min_replicas_max_lag: num("min-replicas-max-lag"),
            pubsub_output_limit: crate::server::OutputLimit::parse(
                &g("client-output-buffer-limit"),
                "pubsub",
                crate::pubsub::PUBSUB_OUTPUT_LIMIT_DEFAULT,
            ),
            normal_output_limit: crate::server::OutputLimit::parse(
                &g("client-output-buffer-limit"),
                "normal",
                crate::server::OutputLimit::NONE,
            ),
            replica_output_limit: crate::server::OutputLimit::parse(
                &g("client-output-buffer-limit"),
                "replica",
                crate::replication::REPLICA_OUTPUT_LIMIT_DEFAULT,
            ),
            port: u16::try_from(num("port")).unwrap_or(0),
            bind: g("bind").split_whitespace().map(String::from).collect(),
            replicaof: parse_replicaof(&g("replicaof")),
            masterauth: non_empty(g("masterauth")),
            masteruser: non_empty(g("masteruser")),
            repl_backlog_size: usize::try_from(num("repl-backlog-size")).unwrap_or(1).max(1),
            repl_timeout_ms: num("repl-timeout").max(1).saturating_mul(1000),
            repl_ping_replica_period_ms: num("repl-ping-replica-period").max(1).saturating_mul(1000),
            repl_diskless_sync: g("repl-diskless-sync") == "yes",
            repl_diskless_sync_delay_s: num("repl-diskless-sync-delay").clamp(0, 3600) as u64,
            replica_priority: num("replica-priority"),
            replica_announce_ip: non_empty(g("replica-announce-ip")),
            replica_announce_port: u16::try_from(num("replica-announce-port")).unwrap_or(0),
            replica_serve_stale_data: g("replica-serve-stale-data") == "yes",
            save_points: parse_save_points(&g("save")),
            dir: g("dir"),
            dbfilename: g("dbfilename"),
            stop_writes_on_bgsave_error: g("stop-writes-on-bgsave-error") == "yes",
            maxmemory_policy: g("maxmemory-policy"),
            enable_debug_command: Access::parse(&g("enable-debug-command")),
            enable_protected_configs: Access::parse(&g("enable-protected-configs")),
            io_threads: num("io-threads").clamp(1, 128) as usize,
            daemonize: g("daemonize") == "yes",
            pidfile: g("pidfile"),
            logfile: g("logfile"),
        };
    }

    /// The current value of a directive (canonical or alias name).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(canonical(name)?).map(|s| s.as_str())
    }

    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    pub fn get_bool(&self, name: &str) -> bool {
        self.get(name) == Some("yes")
    }

    /// `CONFIG GET` pairs for one glob pattern, each name (aliases included) once. A name
    /// without glob characters is looked up directly and answered under the name as given
    /// (`CONFIG GET PORT` answers `PORT`), as Redis does.
    pub fn get_matching(&self, pattern: &[u8], out: &mut BTreeMap<String, String>) {
        if !pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
            let name = String::from_utf8_lossy(pattern).into_owned();
            if let Some(canon) = canonical(&name) {
                let v = self.display_value(canon, &self.values[canon]);
                out.insert(name, v);
            }
            return;
        }
        for (name, value) in &self.values {
            if glob_match(pattern, name.as_bytes(), true) {
                out.insert(name.to_string(), self.display_value(name, value));
            }
        }
        for (alias, canon) in ALIASES {
            if glob_match(pattern, alias.as_bytes(), true) {
                let v = &self.values[canon];
                out.insert(alias.to_string(), self.display_value(canon, v));
            }
        }
    }

    fn display_value(&self, name: &str, value: &str) -> String {
        match name {
            // Redis reports `dir` as an absolute path.
            "dir" if value == "." => {
                std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_else(|_| value.to_string())
            }
            _ => value.to_string(),
        }
    }

    /// The canonical name of a directive (aliases resolved), if it is one.
    pub fn canonical_name(name: &str) -> Option<&'static str> {
        canonical(name)
    }

    /// Whether CONFIG SET may change `name` for this client: protected directives (`dir`,
    /// `dbfilename`) only with `enable-protected-configs yes`, or `local` from 127.0.0.1/::1.
    pub fn may_set(&self, name: &str, client_is_local: bool) -> bool {
        let Some(canon) = canonical(name) else {
            return true;
        };
        if !PROTECTED.contains(&canon) {
            return true;
        }
        self.hot.enable_protected_configs.allows(client_is_local)
    }

    /// `CONFIG SET name value` (runtime). Errors are the text after Redis's
    /// `ERR CONFIG SET failed (possibly related to argument 'x') - `, or `Unknown` for unknown.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), SetError> {
        let canon = canonical(name).ok_or(SetError::Unknown)?;
        if IMMUTABLE.contains(&canon) {
            return Err(SetError::Invalid(canon, "can't set immutable config".into()));
        }
        let args: Vec<String> = match kind_of(canon) {
            Kind::Save | Kind::ClientOutputBufferLimit | Kind::Bind => {
                value.split_whitespace().map(String::from).collect()
            }
            _ => vec![value.to_string()],
        };
        let mut normalised = normalise(canon, &args).map_err(|e| SetError::Invalid(canon, e))?;
        if canon == "client-output-buffer-limit" {
            // Only the classes named change, as in Redis.
            normalised = merge_output_limits(self.values.get(canon).map_or("", |v| v.as_str()), &normalised);
        }
        self.values.insert(canon, normalised);
        self.refresh_hot();
        Ok(())
    }

    /// Sets a value bypassing mutability (REPLICAOF updates `replicaof` this way).
    pub fn set_internal(&mut self, name: &str, value: &str) {
        if let Some(canon) = canonical(name) {
            self.values.insert(canon, value.to_string());
            self.refresh_hot();
        }
    }

    /// The file contents CONFIG REWRITE writes: the original lines, with each changed option's
    /// first line replaced (later duplicates dropped), and options set to non-default values
    /// that the file did not mention appended at the end, as Redis does.
    pub fn rewrite(&self) -> String {
        self.rewrite_with(None)
    }

    /// [`Config::rewrite`], with a sentinel's state: the file's `sentinel` lines are replaced
    /// by `sentinel_lines` where the first of them was (or at the end).
    pub fn rewrite_with(&self, sentinel_lines: Option<&[String]>) -> String {
        const MARKER: &str = "# Generated by CONFIG REWRITE";
        let mut out: Vec<String> = Vec::new();
        let mut done: Vec<&'static str> = Vec::new();
        let mut renames_done = false;
        let mut sentinel_done = false;
        let mut has_marker = false;
        for raw in &self.file_lines {
            let line = raw.trim();
            if line == MARKER {
                has_marker = true;
                out.push(raw.clone());
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                out.push(raw.clone());
                continue;
            }
            let parts = split_args(line.as_bytes()).unwrap_or_default();
            let name = parts.first().map(|p| String::from_utf8_lossy(p).to_ascii_lowercase()).unwrap_or_default();
            if let (Some(lines), "sentinel") = (sentinel_lines, name.as_str()) {
                if !sentinel_done {
                    out.extend(lines.iter().cloned());
                    sentinel_done = true;
                }
                continue;
            }
            if name == "rename-command" {
                if !renames_done {
                    out.extend(self.rename_lines());
                    renames_done = true;
                }
                continue;
            }
            let Some(canon) = canonical(&name) else {
                out.push(raw.clone());
                continue;
            };
            if done.contains(&canon) {
                continue;
            }
            done.push(canon);
            out.extend(self.option_lines(canon));
        }
        let mut appended = Vec::new();
        for (name, value) in &self.values {
            if done.contains(name) || value == default_of(name) {
                continue;
            }
            appended.extend(self.option_lines(name));
        }
        if !renames_done {
            appended.extend(self.rename_lines());
        }
        if let (Some(lines), false) = (sentinel_lines, sentinel_done) {
            appended.extend(lines.iter().cloned());
        }
        // Trailing blank lines collapse before the generated block, as Redis does.
        while out.last().is_some_and(|l| l.trim().is_empty()) && !appended.is_empty() && !has_marker {
            out.pop();
        }
        if !appended.is_empty() {
            if !has_marker {
                out.push(MARKER.to_string());
            }
            out.extend(appended);
        }
        let mut text = out.join("\n");
        text.push('\n');
        text
    }

    fn rename_lines(&self) -> Vec<String> {
        self.renames.iter().map(|(a, b)| format!("rename-command {} {}", quote(a), quote(b))).collect()
    }

    fn option_lines(&self, name: &'static str) -> Vec<String> {
        let value = self.values.get(name).cloned().unwrap_or_default();
        match kind_of(name) {
            Kind::Save => {
                if value.is_empty() {
                    return vec!["save \"\"".into()];
                }
                let parts: Vec<&str> = value.split(' ').collect();
                parts.chunks(2).map(|c| format!("save {} {}", c[0], c[1])).collect()
            }
            Kind::ClientOutputBufferLimit => {
                let parts: Vec<&str> = value.split(' ').collect();
                parts.chunks(4).map(|c| format!("{name} {}", c.join(" "))).collect()
            }
            Kind::ReplicaOf if value.is_empty() => vec![],
            Kind::ReplicaOf | Kind::Bind => vec![format!("{name} {value}")],
            _ => vec![format!("{name} {}", quote(&value))],
        }
    }
}

/// Quotes a value for a config line when it is empty or has spaces or quotes.
fn quote(v: &str) -> String {
    if !v.is_empty() && !v.bytes().any(|b| b.is_ascii_whitespace() || b == b'"' || b == b'\'' || b == b'\\') {
        return v.to_string();
    }
    let mut s = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[derive(Debug, PartialEq, Eq)]
pub enum SetError {
    Unknown,
    Invalid(&'static str, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tutorial_replica_config() {
        let text = "# replica\nport 6380\nslaveof 127.0.0.1 6379\nslave-read-only yes\nsave 900 1\nsave 300 10\nmin-slaves-to-write 1\nmaxmemory 100mb\nrename-command FLUSHALL \"\"\n";
        let c = Config::parse(text, "r.conf").unwrap();
        assert_eq!(c.get("port"), Some("6380"));
        assert_eq!(c.get("replicaof"), Some("127.0.0.1 6379"));
        assert_eq!(c.get("slaveof"), Some("127.0.0.1 6379"));
        assert_eq!(c.get("save"), Some("900 1 300 10"));
        assert_eq!(c.get("min-replicas-to-write"), Some("1"));
        assert_eq!(c.hot.maxmemory, 100 << 20);
        assert_eq!(c.renames, vec![("flushall".to_string(), String::new())]);
    }

    #[test]
    fn output_limits_change_only_the_classes_named() {
        let default = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";
        let c = Config::parse("client-output-buffer-limit pubsub 1mb 512kb 10\n", "r.conf").unwrap();
        assert_eq!(
            c.get("client-output-buffer-limit"),
            Some("normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 524288 10")
        );
        let mut c = Config::new();
        assert_eq!(c.get("client-output-buffer-limit"), Some(default));
        c.set("client-output-buffer-limit", "replica 1gb 0 0 NORMAL 1 2 3").unwrap();
        assert_eq!(
            c.get("client-output-buffer-limit"),
            Some("normal 1 2 3 slave 1073741824 0 0 pubsub 33554432 8388608 60")
        );
        assert_eq!(c.hot.pubsub_output_limit.hard_bytes, 32 << 20);
        c.set("client-output-buffer-limit", "pubsub 1mb 0 0").unwrap();
        assert_eq!(
            c.hot.pubsub_output_limit,
            crate::server::OutputLimit { hard_bytes: 1 << 20, soft_bytes: 0, soft_ms: 0 }
        );
        assert!(c.set("client-output-buffer-limit", "pubsub 1mb 0").is_err());
        assert!(c.set("client-output-buffer-limit", "other 1 1 1").is_err());
        assert_eq!(c.hot.pubsub_output_limit.hard_bytes, 1 << 20, "a rejected value changes nothing");
    }

    #[test]
    fn errors_name_line_and_reason() {
        let e = Config::parse("port 6379\nfoo bar\n", "x.conf").unwrap_err();
        assert_eq!((e.line_no, e.line.as_str()), (2, "foo bar"));
        assert!(e.reason.contains("Bad directive"));
        let e = Config::parse("port 99999\n", "x.conf").unwrap_err();
        assert!(e.reason.contains("between 0 and 65535"), "{}", e.reason);
        let e = Config::parse("protected-mode maybe\n", "x.conf").unwrap_err();
        assert!(e.reason.contains("'yes' or 'no'"));
        let e = Config::parse("maxmemory lots\n", "x.conf").unwrap_err();
        assert!(e.reason.contains("memory value"));
        assert!(e.to_string().contains("at line 1"));
    }

    #[test]
    fn runtime_set_respects_mutability_and_types() {
        let mut c = Config::new();
        assert_eq!(c.set("nosuch", "1"), Err(SetError::Unknown));
        assert!(matches!(c.set("daemonize", "yes"), Err(SetError::Invalid("daemonize", _))));
        assert!(matches!(c.set("maxmemory", "x"), Err(SetError::Invalid(..))));
        c.set("maxmemory", "1gb").unwrap();
        assert_eq!(c.get("maxmemory"), Some("1073741824"));
        c.set("min-slaves-to-write", "2").unwrap();
        assert_eq!(c.get("min-replicas-to-write"), Some("2"));
        c.set("save", "").unwrap();
        assert_eq!(c.get("save"), Some(""));
    }

    #[test]
    fn rewrite_keeps_comments_and_replaces_changed_lines() {
        let text = "# my comment\nport 6380\n\n# persistence\nsave 900 1\nsave 300 10\nmaxmemory 1mb\n";
        let mut c = Config::parse(text, "r.conf").unwrap();
        c.set("maxmemory", "2mb").unwrap();
        c.set("save", "60 5").unwrap();
        c.set_internal("replicaof", "10.0.0.1 6379");
        c.set("requirepass", "s3cret pass").unwrap();
        let out = c.rewrite();
        assert!(out.starts_with("# my comment\nport 6380\n\n# persistence\nsave 60 5\nmaxmemory 2097152\n"), "{out}");
        assert!(out.contains("# Generated by CONFIG REWRITE\n"));
        assert!(out.contains("replicaof 10.0.0.1 6379\n"));
        assert!(out.contains("requirepass \"s3cret pass\"\n"));
        // Rewriting the rewritten file is stable.
        let again = Config::parse(&out, "r.conf").unwrap();
        assert_eq!(again.rewrite(), out);
        assert_eq!(again.get("requirepass"), Some("s3cret pass"));
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("1G"), Some(1_000_000_000));
        assert_eq!(parse_memory("64k"), Some(64_000));
        assert_eq!(parse_memory("64kb"), Some(65536));
        assert_eq!(parse_memory("-1"), None);
        assert_eq!(parse_memory("mb"), None);
    }
}
