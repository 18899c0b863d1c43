//! The scenarios the sweep runs. Each is an async function of (seed, trace) that builds a
//! cluster, drives a workload, checks what it observed, and returns an error describing the
//! first violation.

pub mod aof;
pub mod hazard;
pub mod persist;
pub mod register;
pub mod replication;
pub mod sentinel;
pub mod smoke;

use std::future::Future;
use std::pin::Pin;

use crate::trace::Trace;

pub type RunFn = fn(u64, Trace) -> Pin<Box<dyn Future<Output = Result<(), String>>>>;

pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub default_seeds: u64,
    /// A whole-suite sweep (`cargo test`, CI) runs at most this many seeds of the scenario while
    /// a known failure past them is open; naming the scenario runs any number.
    pub suite_seeds_max: Option<u64>,
    /// Coverage probes some seed of a sweep must reach, or the sweep fails (it would otherwise
    /// pass vacuously).
    pub required_probes: &'static [&'static str],
    pub run: RunFn,
}

/// What every durability scenario must reach.
const DURABILITY_PROBES: &[&str] = &["sentinel.promoted", "sentinel.converged", "sentinel.failover_after_kill"];
/// The coordinated-failover profile must also see handovers complete (an effect on a server).
const FAILOVER_PROBES: &[&str] = &[
    "sentinel.promoted",
    "sentinel.converged",
    "sentinel.failover_after_kill",
    "repl.failover_started",
    "repl.failover_completed",
];

pub const ALL: &[Scenario] = &[
    Scenario {
        name: "hazard-nopersist",
        about: "Redis's documented hazard: a master without persistence restarted by a supervisor wipes its replicas; the checker must report the loss",
        default_seeds: 1000,
        suite_seeds_max: None,
        required_probes: &["hazard.loss_reported"],
        run: |seed, trace| Box::pin(hazard::run(seed, trace, false)),
    },
    Scenario {
        name: "hazard-persist",
        about: "the same with RDB persistence on: no acknowledged write is lost",
        default_seeds: 1000,
        suite_seeds_max: None,
        required_probes: &["persist.loaded"],
        run: |seed, trace| Box::pin(hazard::run(seed, trace, true)),
    },
    Scenario {
        name: "replication",
        about: "master with 1-2 replicas (sometimes chained) under the nemesis, on some seeds with RDB persistence and disk faults, on some with an operator promoting replicas and re-pointing the others; replica digests match the master's at every offset, READONLY, WAIT, min-replicas, PSYNC continues exactly when the backlog covers, convergence after heal",
        default_seeds: 1000,
        suite_seeds_max: None,
        required_probes: &[
            "repl.full_resync",
            "repl.partial_resync",
            "repl.replica_full_sync",
            "repl.diskless_payload",
            "repl.replica_diskless_load",
            "repl.replica_continued",
            "repl.link_down",
            "repl.readonly_seen",
            "repl.wait_acknowledged",
            "repl.digest_checked",
            "repl.converged",
            "repl.noreplicas_gate",
            "repl.continue_checked",
            "repl.wait_checked",
            "repl.replica_eager_ack",
            "repl.replica_listed_waiting",
            "repl.promoted",
            "repl.topology_changed",
            "repl.saved_state_adopted",
            "repl.replica_transaction_pending",
        ],
        run: |seed, trace| Box::pin(replication::run(seed, trace)),
    },
    Scenario {
        name: "persist",
        about: "one server with RDB snapshots (SAVE, BGSAVE, save points), crashes during saves, disk faults; atomic snapshots, completed saves survive, corruption detected",
        default_seeds: 1000,
        suite_seeds_max: None,
        required_probes: &[
            "persist.save_ok",
            "persist.bgsave_ok",
            "persist.loaded",
            "persist.save_failed",
            "persist.crash_during_save",
            "persist.restart_checked",
            "persist.corruption_detected",
            "persist.concurrent_save_refused",
            "disk.fsync_error_returned",
            "disk.full_returned",
        ],
        run: |seed, trace| Box::pin(persist::run(seed, trace)),
    },
    Scenario {
        name: "aof",
        about: "one server with appendonly yes (appendfsync always or everysec), BGREWRITEAOF and automatic rewrites, crashes landing in writes, fsyncs and rewrites; every restart loads, every acknowledged write survives (always) or is lost only within two seconds of a crash (everysec)",
        default_seeds: 1000,
        suite_seeds_max: None,
        required_probes: &[
            "aof.loaded",
            "aof.rewrite_started",
            "aof.rewrite_done",
            "aof.bgrewriteaof_started",
            "aof.always_checked",
            "aof.everysec_checked",
            "aof.truncated_tail_loaded",
        ],
        run: |seed, trace| Box::pin(aof::run(seed, trace)),
    },
    Scenario {
        name: "durability-defaults",
        about: "the sentinel scenario's cluster, faults and checks under one durability configuration (sentinel::PROFILES[0]); acknowledged writes lost and unavailability measured for `sim durability`",
        default_seeds: 300,
        suite_seeds_max: Some(300),
        required_probes: DURABILITY_PROBES,
        run: |seed, trace| Box::pin(sentinel::run_with(seed, trace, &sentinel::PROFILES[0])),
    },
    Scenario {
        name: "durability-aof-everysec",
        about: "the sentinel scenario's cluster, faults and checks under one durability configuration (sentinel::PROFILES[1]); acknowledged writes lost and unavailability measured for `sim durability`",
        default_seeds: 300,
        suite_seeds_max: Some(300),
        required_probes: DURABILITY_PROBES,
        run: |seed, trace| Box::pin(sentinel::run_with(seed, trace, &sentinel::PROFILES[1])),
    },
    Scenario {
        name: "durability-aof-always",
        about: "the sentinel scenario's cluster, faults and checks under one durability configuration (sentinel::PROFILES[2]); acknowledged writes lost and unavailability measured for `sim durability`",
        default_seeds: 300,
        suite_seeds_max: Some(300),
        required_probes: DURABILITY_PROBES,
        run: |seed, trace| Box::pin(sentinel::run_with(seed, trace, &sentinel::PROFILES[2])),
    },
    Scenario {
        name: "durability-min-replicas",
        about: "the sentinel scenario's cluster, faults and checks under one durability configuration (sentinel::PROFILES[3]); acknowledged writes lost and unavailability measured for `sim durability`",
        default_seeds: 300,
        suite_seeds_max: Some(300),
        required_probes: DURABILITY_PROBES,
        run: |seed, trace| Box::pin(sentinel::run_with(seed, trace, &sentinel::PROFILES[3])),
    },
    Scenario {
        name: "durability-wait-1",
        about: "the sentinel scenario's cluster, faults and checks under one durability configuration (sentinel::PROFILES[4]); acknowledged writes lost and unavailability measured for `sim durability`",
        default_seeds: 300,
        suite_seeds_max: Some(300),
        required_probes: DURABILITY_PROBES,
        run: |seed, trace| Box::pin(sentinel::run_with(seed, trace, &sentinel::PROFILES[4])),
    },
    Scenario {
        name: "durability-wait-all",
        about: "the sentinel scenario's cluster, faults and checks under one durability configuration (sentinel::PROFILES[5]); acknowledged writes lost and unavailability measured for `sim durability`",
        default_seeds: 300,
        suite_seeds_max: Some(300),
        required_probes: DURABILITY_PROBES,
        run: |seed, trace| Box::pin(sentinel::run_with(seed, trace, &sentinel::PROFILES[5])),
    },
    Scenario {
        name: "durability-failover",
        about: "the sentinel scenario's cluster, faults and checks under one durability configuration (sentinel::PROFILES[6]: an operator's FAILOVER every 2-5 s); acknowledged writes lost and unavailability measured for `sim durability`",
        default_seeds: 300,
        suite_seeds_max: Some(300),
        required_probes: FAILOVER_PROBES,
        run: |seed, trace| Box::pin(sentinel::run_with(seed, trace, &sentinel::PROFILES[6])),
    },
    Scenario {
        name: "register",
        about: "one server, clients sharing keys (GET/SET/INCR/DEL/WATCH-CAS) under the nemesis; linearizability per epoch, liveness after heal",
        default_seeds: 1000,
        suite_seeds_max: None,
        required_probes: &[
            "fault.kill",
            "fault.restart",
            "fault.pause",
            "fault.partition.split",
            "fault.partition.isolate",
            "fault.partition.one_way",
            "fault.clog",
            "fault.latency",
            "fault.loss",
            "fault.clock_jump",
            "fault.clock_drift",
            "buggify.conn.tiny_reads",
            "buggify.conn.delay_flush",
            "multi.exec_aborted_by_watch",
            "op.unknown",
            "op.cas_committed",
            "check.epochs_split_at_kill",
            "liveness.converged",
        ],
        run: |seed, trace| Box::pin(register::run(seed, trace)),
    },
    Scenario {
        name: "sentinel",
        about: "three servers watched by 1, 3 or 5 of our sentinels under the nemesis (kills of any node, partitions, clock faults on sentinels); one vote per epoch, one leader per epoch with a majority, config epochs agree, no failover without ODOWN, one agreed master with converged data after heal; acknowledged writes lost are measured",
        default_seeds: 1000,
        suite_seeds_max: None,
        required_probes: &[
            "sentinel.odown",
            "sentinel.failover_started",
            "sentinel.promoted",
            "sentinel.switch_master",
            "sentinel.converged",
            "sentinel.failover_after_kill",
            "sentinel.election_checked",
            "sentinel.switch_checked",
            "sentinel.tilt_entered",
            "sentinel.convert_to_slave",
            "sentinel.tilt_checked",
            "sentinel.selection_checked",
            "sentinel.vote_refused",
            "sentinel.election_lost",
        ],
        run: |seed, trace| Box::pin(sentinel::run(seed, trace)),
    },
    Scenario {
    name: "smoke",
    about: "one server, 1-4 clients on their own keys, every reply checked against a sequential model; beside them a hostile client sending generated commands (store::cmdgen) that must all be answered, with the digest verified after every write",
    default_seeds: 1000,
    suite_seeds_max: None,
    required_probes: &["conn.pipelined_batch", "smoke.fuzz_command", "conn.deferred_reply_inside_exec"],
    run: |seed, trace| Box::pin(smoke::run(seed, trace)),
    },
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    ALL.iter().find(|s| s.name == name)
}
