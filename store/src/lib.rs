//! `store`: a Redis-compatible server whose replication and failover are tested by
//! deterministic simulation.
//!
//! Module map (one concern each, like mini-redis):
//! - [`protocol`]: RESP2 request parser (with limits) and reply encoder.
//! - [`connection`]: one client connection's read/execute/write loop.
//! - [`cmd`]: the command table and one file per command family.
//! - [`db`]: the keyspace (copy-on-write sharded tables, expiry).
//! - [`server`]: shared state, accept loop, cron, shutdown.
//! - [`config`]: redis.conf parsing, CONFIG SET/GET/REWRITE.
//! - [`env`]: the seams to the world (clock, RNG, disk) that simulation replaces.
//! - [`cmdgen`]: a seeded generator of commands from the command table (fuzzing, workloads).
//! - [`pubsub`], [`watch`], [`glob`], [`sds`], [`alloc`], [`logging`]: supporting pieces.

pub mod alloc;
pub mod client;
pub mod cmd;
pub mod cmdgen;
pub mod config;
pub mod connection;
pub mod db;
pub mod env;
pub mod fault;
pub mod glob;
pub mod logging;
pub mod observe;
pub mod persistence;
pub mod protocol;
pub mod pubsub;
pub mod rdb;
pub mod replication;
pub mod sds;
pub mod server;
pub mod watch;

/// The Redis version this server speaks for (clients gate features on `redis_version`).
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";
