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
//! - [`sentinel`]: Sentinel mode (monitoring, failure detection, elections, failover).
//! - [`env`]: the seams to the world (clock, RNG, disk) that simulation replaces.
//! - [`cmdgen`]: a seeded generator of commands from the command table (fuzzing, workloads).
//! - [`blocking`]: clients blocked in BLPOP and friends, served in order when a key is ready.
//! - [`scripting`]: EVAL and its Lua 5.1 engine (the `redis` API, Redis's reply conversions).
//! - [`pause`]: CLIENT PAUSE and the write pause of a coordinated FAILOVER.
//! - [`pubsub`], [`watch`], [`glob`], [`sds`], [`alloc`], [`logging`]: supporting pieces.
//!
//! No arithmetic side effects anywhere in the library (issue 12): clients, peers and files
//! send the numbers the server computes with, and a release build aborts on a panic, so an
//! overflow must be neither a panic nor a silent wrap. Arithmetic is checked or saturating
//! where a value can be driven from outside; where it is bounded, the code shows the bound
//! (iterators rather than index arithmetic) or an `#[allow]` on the smallest item says why it
//! cannot overflow. `ci/test` runs clippy with this lint.

#![deny(clippy::arithmetic_side_effects)]

pub mod alloc;
pub mod aof;
pub mod blocking;
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
pub mod pause;
pub mod persistence;
pub mod protocol;
pub mod pubsub;
pub mod rdb;
pub mod replication;
pub mod scripting;
pub mod sds;
pub mod sentinel;
pub mod server;
pub mod watch;

/// The Redis version this server speaks for (clients gate features on `redis_version`).
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";
