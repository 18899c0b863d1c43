//! The observation sink: what the server reports about itself for checkers to judge.
//!
//! Every write that changed the dataset is reported with its position in the total order of
//! writes and the dataset digest right after it, maintained incrementally (XOR out each touched
//! key's old contribution, XOR in the new one; see `db::digest`). Replication will add its
//! offsets here, so that "the replica's digest at offset X equals the master's" is checkable.
//!
//! Cost: production passes no observer, and `cmd::call` tests one `Option` per command; nothing
//! is hashed. Simulation installs a sink per node and turns on `verify_every_write`, which
//! asserts after each write that the incremental digest equals a full recomputation.

use std::sync::Arc;

use bytes::Bytes;

use crate::db::digest::Digest;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Observation {
    /// A command that changed the dataset, as the `seq`-th write; `digest` is the dataset digest
    /// after it.
    Write { seq: u64, db: usize, command: Vec<Bytes>, digest: Digest },
    /// Keys deleted by expiry (lazy or active), and the digest after.
    Expired { keys: Vec<(usize, Bytes)>, digest: Digest },
    /// A save took its snapshot (the digest is the snapshot's).
    SaveStarted { digest: Digest },
    /// A save completed durably; `digest` is the dataset digest of the snapshot it wrote.
    Saved { digest: Digest },
    /// The dataset was loaded from disk at start-up.
    Loaded { digest: Digest, keys: u64 },
    /// Master: the replication stream reached `offset` under `replid`, with this dataset digest.
    ReplOffset { replid: String, offset: i64, digest: Digest },
    /// Replica: applied the master's stream up to `offset` under `replid`; dataset digest after.
    ReplApplied { replid: String, offset: i64, digest: Digest },
    /// Replica: acknowledged `offset` to its master; `digest` is its dataset when it did.
    ReplAcked { replid: String, offset: i64, digest: Digest },
    /// Master: min-replicas-to-write decided on a write, with the good replicas it counted.
    WriteGate { accepted: bool, good: usize, needed: usize },
    /// Master: answered a PSYNC (`continued`: +CONTINUE) holding this history and backlog
    /// (`backlog_histlen` -1: no backlog). `asked_offset` is the next byte the replica wants.
    PsyncServed {
        replica: u64,
        asked_replid: String,
        asked_offset: i64,
        legacy_sync: bool,
        replid: String,
        replid2: String,
        second_offset: i64,
        backlog_first_offset: i64,
        backlog_histlen: i64,
        continued: bool,
    },
    /// Master: replica connection `replica` acknowledged `offset`.
    AckReceived { replica: u64, offset: i64 },
    /// Master: a WAIT for `target_offset` returned `reported` replicas.
    WaitReplied { target_offset: i64, reported: usize },
    /// Sentinel: an event it logged and published (`+sdown`, `+switch-master`, ...).
    SentinelEvent { kind: String, text: String },
}

/// Where observations go. Called under the server lock: keep it short (append to a buffer).
#[derive(Clone)]
pub struct Observer {
    sink: Arc<dyn Fn(Observation) + Send + Sync>,
    /// Recompute the full digest after every write and assert it matches (simulation only).
    pub verify_every_write: bool,
}

impl Observer {
    pub fn new(sink: impl Fn(Observation) + Send + Sync + 'static, verify_every_write: bool) -> Observer {
        Observer { sink: Arc::new(sink), verify_every_write }
    }

    pub fn emit(&self, o: Observation) {
        (self.sink)(o)
    }

    pub fn sentinel_event(&self, kind: &str, text: &str) {
        self.emit(Observation::SentinelEvent { kind: kind.to_string(), text: text.to_string() })
    }
}

/// The incremental digest state kept by the server when observed.
#[derive(Clone, Debug, Default)]
pub struct Tracking {
    pub digest: Digest,
    pub write_seq: u64,
}
