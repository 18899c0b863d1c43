//! The replication role and link state's transitions, in one place, each followed by a check of
//! the state's invariants.
//!
//! Why: the role (master or replica of whom), the replication IDs and offsets, and the replica's
//! view of its link are one state machine. Written field by field from six files, a transition
//! could leave a combination no transition should produce (a master whose link is "up", a
//! transfer in progress on a link that is up, an offset the backlog does not end at) and nothing
//! would notice until a replica diverged. Here every change of role or link state is a method,
//! the I/O stays outside (the link task in `replica.rs`, the commands in `cmd/replication.rs`),
//! and [`ReplState::check`] states what must hold after each: in debug and simulation builds a
//! violation panics (a failing seed); in release it is logged, since aborting would drop every
//! client for what may be a harmless inconsistency.

use super::{Backlog, ReplState, Role, Transfer, NO_REPLID};

impl ReplState {
    /// The invariants of the role, IDs, offsets, backlog and link.
    pub fn check(&self) -> Result<(), String> {
        if self.replid.len() != 40 || self.replid2.len() != 40 {
            return Err(format!("replication ids must be 40 characters: {} {}", self.replid, self.replid2));
        }
        if (self.replid2 == NO_REPLID) != (self.second_offset == -1) {
            return Err(format!("replid2 {} with second offset {}", self.replid2, self.second_offset));
        }
        if self.offset < 0 {
            return Err(format!("negative offset {}", self.offset));
        }
        if let Some(b) = &self.backlog {
            if b.end_offset() != self.offset.saturating_add(1) {
                return Err(format!("backlog ends at {} but the offset is {}", b.end_offset(), self.offset));
            }
        }
        if self.role == Role::Master && self.second_offset != -1 && self.backlog.is_none() {
            return Err("a master continuing a history (replid2) without a backlog".into());
        }
        let link = &self.link;
        if self.role == Role::Master && (link.up || link.sync_in_progress || link.transfer.is_some()) {
            return Err(format!("a master with a link: up {} syncing {}", link.up, link.sync_in_progress));
        }
        if link.up && (link.sync_in_progress || link.transfer.is_some()) {
            return Err("a link that is up and still syncing".into());
        }
        if link.transfer.is_some() && !link.sync_in_progress {
            return Err("a payload transfer outside a sync".into());
        }
        Ok(())
    }

    /// Checks the invariants after a transition (see the module comment).
    fn checked(&self, transition: &str) {
        if let Err(e) = self.check() {
            if cfg!(any(debug_assertions, madsim)) {
                panic!("replication state invariant broken after {transition}: {e}");
            }
            tracing::error!("replication state invariant broken after {transition}: {e}");
        }
    }

    /// REPLICAOF NO ONE: the history so far stays valid under replid2 (PSYNC2), so this node's
    /// own replicas and the former master's other replicas can continue partially. The link
    /// task of the old generation stops.
    pub fn become_master(&mut self, new_id: String, backlog_size: usize) {
        assert_eq!(new_id.len(), 40, "a replication id");
        self.shift_replid(new_id);
        // The other replicas continue from this history: it needs a backlog even if this node
        // never completed a sync (the backlog then starts at its offset and holds what follows).
        self.ensure_backlog(backlog_size);
        self.role = Role::Master;
        self.link.generation = self.link.generation.wrapping_add(1);
        self.link.up = false;
        self.link.sync_in_progress = false;
        self.link.transfer = None;
        self.checked("becoming master");
    }

    /// REPLICAOF host port: keep the data (PSYNC may continue from it) and follow the new
    /// master; the returned generation identifies the link task to start. `offer_own_history`
    /// is false at start-up, where only a loaded RDB's replication id gives history.
    pub fn become_replica(&mut self, host: String, port: u16, now_ms: i64, offer_own_history: bool) -> u64 {
        let was_master = !self.is_replica() && offer_own_history;
        self.role = Role::Replica { host, port };
        self.link.generation = self.link.generation.wrapping_add(1);
        self.link.up = false;
        self.link.sync_in_progress = false;
        self.link.transfer = None;
        self.link.down_since_ms = now_ms;
        // A master turning replica offers its own history to the new master (Redis's
        // replicationCacheMasterUsingMyself); a replica switching masters keeps what it had.
        if was_master {
            self.has_history = true;
        }
        self.checked("becoming a replica");
        self.link.generation
    }

    /// Whether `generation` is still the link to follow.
    pub fn is_current(&self, generation: u64) -> bool {
        self.link.generation == generation && self.is_replica()
    }

    /// The link task connected and started its handshake.
    pub fn link_handshake_started(&mut self, generation: u64) {
        if !self.is_current(generation) {
            return;
        }
        self.link.sync_in_progress = true;
        self.checked("handshake start");
    }

    /// Part of a full sync's payload arrived (INFO's master_sync_* fields).
    pub fn link_transfer_progress(&mut self, generation: u64, size_bytes: i64, read_bytes: i64, now_ms: i64) {
        if !self.is_current(generation) || !self.link.sync_in_progress {
            return;
        }
        self.link.transfer = Some(Transfer { size_bytes, read_bytes, last_io_ms: now_ms });
        self.checked("transfer progress");
    }

    /// A full sync's payload is loaded: the dataset is the master's at `offset` under `replid`,
    /// and the stream continues from `offset + 1` in `master_db`.
    pub fn link_full_sync_done(&mut self, sync: FullSyncDone, now_ms: i64) {
        assert_eq!(sync.replid.len(), 40, "a replication id");
        assert!(sync.offset >= 0, "a stream offset");
        self.replid = sync.replid;
        self.replid2 = NO_REPLID.into();
        self.second_offset = -1;
        self.offset = sync.offset;
        self.master_db = sync.master_db;
        self.has_history = true;
        self.backlog =
            Some(Backlog::new(sync.backlog_size.max(super::BACKLOG_SIZE_MIN), sync.offset.saturating_add(1)));
        self.link_up(now_ms);
        self.checked("full sync");
    }

    /// `+CONTINUE [new id]`: the stream goes on from our offset. A new id means the master
    /// changed history (a promotion): our old id stays valid as replid2.
    pub fn link_continued(&mut self, new_id: &str, backlog_size: usize, now_ms: i64) {
        if !new_id.is_empty() && new_id != self.replid {
            let old = std::mem::replace(&mut self.replid, new_id.to_string());
            self.replid2 = old;
            self.second_offset = self.offset.saturating_add(1);
        }
        self.has_history = true;
        self.ensure_backlog(backlog_size);
        self.link_up(now_ms);
        self.checked("partial resync");
    }

    fn link_up(&mut self, now_ms: i64) {
        self.link.up = true;
        self.link.sync_in_progress = false;
        self.link.transfer = None;
        self.link.last_io_ms = now_ms;
    }

    /// The link of `generation` broke (or gave up); returns whether it had been up.
    pub fn link_lost(&mut self, generation: u64, now_ms: i64) -> bool {
        if self.link.generation != generation {
            return false;
        }
        let was_up = self.link.up;
        if was_up {
            self.link.up = false;
            self.link.down_since_ms = now_ms;
        }
        self.link.sync_in_progress = false;
        self.link.transfer = None;
        self.checked("link loss");
        was_up
    }

    /// Stream bytes were applied (a replica) and relayed as received: our offset and our
    /// backlog advance together, so our own replicas see the master's offsets.
    pub fn stream_applied(&mut self, raw: &[u8]) {
        self.offset = self.offset.saturating_add(i64::try_from(raw.len()).unwrap_or(i64::MAX));
        if let Some(b) = self.backlog.as_mut() {
            b.append(raw);
        }
    }

    /// Stream bytes were applied that we could not relay byte for byte: the backlog restarts
    /// empty at our new offset (a sub-replica asking for earlier bytes resyncs fully).
    pub fn stream_applied_unrelayed(&mut self, consumed: i64) {
        self.offset = self.offset.saturating_add(consumed);
        if let Some(b) = self.backlog.as_mut() {
            *b = Backlog::new(b.size_max(), self.offset.saturating_add(1));
        }
        self.checked("an unrelayed stream command");
    }

    /// The replication id and offset saved in the RDB (Redis's PSYNC2 after restart): a
    /// replica continues as its master's replica, a master keeps them as replid2 so its old
    /// replicas can continue. Validated by the caller.
    pub fn adopt_saved(&mut self, id: String, offset: i64, as_replica: bool, master_db: usize, backlog_size: usize) {
        assert_eq!(id.len(), 40, "validated by the caller");
        assert!(self.backlog.is_none(), "adopted at start-up, before any stream");
        self.offset = offset;
        if as_replica {
            self.replid = id;
            self.master_db = master_db;
        } else {
            self.replid2 = id;
            self.second_offset = offset.saturating_add(1);
            // The history continues from the file's offset: every write from now on must be in
            // the stream (Redis creates the backlog before loading), or a replica continuing
            // from that offset would miss the writes made before it reconnected.
            self.ensure_backlog(backlog_size);
        }
        self.has_history = true;
        self.checked("loading the saved replication state");
    }
}

/// What a loaded full sync establishes (see [`ReplState::link_full_sync_done`]).
pub struct FullSyncDone {
    pub replid: String,
    pub offset: i64,
    pub master_db: usize,
    pub backlog_size: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> String {
        std::iter::repeat_n(c, 40).collect()
    }

    #[test]
    fn promotion_and_demotion_keep_the_invariants() {
        let mut r = ReplState::new(id('a'));
        r.ensure_backlog(16 * 1024);
        let generation = r.become_replica("m".into(), 1, 5, true);
        assert!(r.is_current(generation));
        r.link_handshake_started(generation);
        r.link_transfer_progress(generation, 10, 5, 6);
        r.link_full_sync_done(FullSyncDone { replid: id('b'), offset: 100, master_db: 0, backlog_size: 1 }, 7);
        assert!(r.link.up);
        r.stream_applied(b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(r.offset, 114);
        assert!(r.link_lost(generation, 8));
        r.become_master(id('c'), 16 * 1024);
        assert_eq!((r.replid2.as_str(), r.second_offset), (id('b').as_str(), 115));
        assert!(!r.is_current(generation));
        r.check().unwrap();
    }

    #[test]
    fn broken_states_are_named() {
        let mut r = ReplState::new(id('a'));
        r.link.up = true;
        assert!(r.check().unwrap_err().contains("master with a link"));
        let mut r = ReplState::new(id('a'));
        r.ensure_backlog(16 * 1024);
        r.offset = 3;
        assert!(r.check().unwrap_err().contains("backlog ends"));
        let mut r = ReplState::new(id('a'));
        r.second_offset = 5;
        assert!(r.check().is_err());
    }

    #[test]
    fn a_stale_generation_changes_nothing() {
        let mut r = ReplState::new(id('a'));
        let old = r.become_replica("m".into(), 1, 0, true);
        let new = r.become_replica("n".into(), 2, 0, true);
        assert_ne!(old, new);
        r.link_handshake_started(old);
        assert!(!r.link.sync_in_progress);
        assert!(!r.link_lost(old, 1));
    }
}
