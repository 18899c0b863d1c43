//! What replication checkers judge: per-node logs of replication events, as plain data.
//!
//! A server reports these as it works (in simulation through its observation sink; a real run
//! could produce the same from logs). Each node's events are in the order that node produced
//! them; nothing is assumed about the order between nodes except through offsets and
//! replication IDs, which is what Redis itself relies on.
//!
//! Digests are opaque: two datasets are equal exactly when their digests are (the server's
//! digest is order-independent over keys, so equal data gives equal digests whatever the
//! history). Their width is the checkers' only assumption about them.

use serde::{Deserialize, Serialize};

/// An opaque dataset digest.
pub type Digest = [u64; 3];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplEvent {
    /// Master: its stream reached `offset` (bytes ever fed) under `replid`; dataset digest then.
    Fed { replid: String, offset: i64, digest: Digest },
    /// Replica: it applied its master's stream up to `offset` under `replid`; digest after.
    Applied { replid: String, offset: i64, digest: Digest },
    /// Replica: it acknowledged `offset` (REPLCONF ACK); its digest when it did.
    Acked { replid: String, offset: i64, digest: Digest },
    /// Master: min-replicas-to-write decided on a write, counting `good` replicas of `needed`.
    WriteGate { accepted: bool, good: usize, needed: usize },
    /// Master: how it answered a PSYNC, with what it held when it decided.
    PsyncServed(PsyncServed),
    /// Master: replica connection `replica` acknowledged `offset`.
    AckReceived { replica: u64, offset: i64 },
    /// Master: WAIT for `target_offset` returned `reported` replicas.
    WaitReplied { target_offset: i64, reported: usize },
}

/// A master's PSYNC decision and the state it decided on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PsyncServed {
    /// The replica's connection (as in `AckReceived`).
    pub replica: u64,
    /// What the replica asked for: a replication ID (or "?") and the next byte it wants.
    pub asked_replid: String,
    pub asked_offset: i64,
    /// The old SYNC command (never partial).
    pub legacy_sync: bool,
    /// The master's current history and the previous one it still accepts (PSYNC2).
    pub replid: String,
    pub replid2: String,
    /// First offset that is not valid under `replid2` any more (-1 when there is none).
    pub second_offset: i64,
    /// The backlog: the offset of its first byte and how many bytes it holds.
    pub backlog_first_offset: i64,
    pub backlog_histlen: i64,
    /// Whether the master answered +CONTINUE (otherwise +FULLRESYNC).
    pub continued: bool,
}

/// One node's events, in the order it produced them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLog {
    pub node: String,
    pub events: Vec<ReplEvent>,
}

/// Every node's log for one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplLog {
    pub nodes: Vec<NodeLog>,
}

/// Shortens a digest for messages.
pub fn short(d: &Digest) -> String {
    format!("{:016x}", d[0])
}
