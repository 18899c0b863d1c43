//! The master side of a replication link: a client connection that sent PSYNC (or SYNC).
//!
//! Under the lock, the master decides between a partial resync (the backlog still holds every
//! byte the replica lacks: `+CONTINUE` and those bytes) and a full one (`+FULLRESYNC <replid>
//! <offset>`, then the dataset as an RDB payload in Redis's disk framing, `$<len>\r\n<bytes>`).
//! In the same critical section the replica is registered, so every write after the snapshot
//! is queued for it behind the payload: nothing is lost or applied twice between the snapshot
//! and the stream. Encoding the snapshot happens outside the lock.
//! The offset a replica asks for is any i64 it sends: arithmetic on it saturates (issue 12).

use std::sync::Arc;

use bytes::{BufMut, BytesMut};

use super::{ReplicaInfo, ReplicaState};
use crate::server::Shared;

/// How the replica asked.
pub struct SyncRequest {
    pub client_id: u64,
    pub replid: String,
    /// The next byte the replica wants (its offset + 1), or -1 for "?".
    pub offset: i64,
    pub ip: String,
    pub listening_port: u16,
    /// Old SYNC: no +FULLRESYNC line, always a full payload.
    pub legacy_sync: bool,
    /// The replica announced `capa eof`.
    pub capa_eof: bool,
}

enum Plan {
    Partial { bytes: Vec<u8>, replid: String },
    Full { snapshots: Vec<crate::db::DbSnapshot>, aux: crate::rdb::AuxFields, replid: String, offset: i64 },
    Refuse(&'static str),
}

/// How long the connection must wait, sending a newline keepalive every second, before a
/// diskless full sync (repl-diskless-sync-delay); zero for partial or disk-style syncs. Real
/// replicas (and ours) treat those newlines as "still preparing", so a delay longer than their
/// repl-timeout does not break the handshake.
pub fn diskless_delay(shared: &Shared, replid: &str, offset: i64, capa_eof: bool, legacy: bool) -> std::time::Duration {
    let st = shared.lock();
    let diskless = st.config.hot.repl_diskless_sync && capa_eof && !legacy;
    if !diskless || st.repl.can_continue(replid, offset) {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::from_secs(st.config.hot.repl_diskless_sync_delay_s)
}

/// Serves the request; writes what must be sent into `out`. Returns None if refused, else
/// whether the payload used the diskless framing (the stream then waits for the first ACK).
pub async fn serve(shared: &Arc<Shared>, req: SyncRequest, out: &mut BytesMut) -> Option<bool> {
    // Diskless sync (repl-diskless-sync, Redis 7's default) waits repl-diskless-sync-delay first,
    // so that replicas arriving together could share one transfer, and frames the payload with
    // an end mark instead of a length.
    let (diskless, delay_s) = {
        let st = shared.lock();
        (st.config.hot.repl_diskless_sync, st.config.hot.repl_diskless_sync_delay_s)
    };
    let diskless = diskless && req.capa_eof && !req.legacy_sync;
    let _ = delay_s; // the delay (with keepalives) is taken by the connection: see `diskless_delay`
    let now = shared.env.clock.now_ms();
    let plan = {
        let mut st = shared.lock();
        if st.repl.is_replica() && !st.repl.link.up {
            // Listed as waiting when the PSYNC arrived (the link may have dropped since).
            st.repl.replicas.remove(&req.client_id);
            Plan::Refuse("NOMASTERLINK Can't SYNC while not connected with my master")
        } else {
            let size = st.config.hot.repl_backlog_size;
            st.repl.ensure_backlog(size);
            let info = |state| ReplicaInfo {
                ip: req.ip.clone(),
                listening_port: req.listening_port,
                state,
                ack_offset: 0,
                ack_ms: now,
            };
            tracing::info!("Replica {}:{} asks for synchronization", req.ip, req.listening_port);
            let continued = !req.legacy_sync
                && st.repl.can_continue(&req.replid, req.offset)
                && !crate::fault::planted("psync-refuses-covered");
            if let Some(obs) = &st.observer {
                let (first, histlen) = match &st.repl.backlog {
                    Some(b) => (b.first_offset(), b.histlen() as i64),
                    None => (0, -1),
                };
                obs.emit(crate::observe::Observation::PsyncServed {
                    replica: req.client_id,
                    asked_replid: req.replid.clone(),
                    asked_offset: req.offset,
                    legacy_sync: req.legacy_sync,
                    replid: st.repl.replid.clone(),
                    replid2: st.repl.replid2.clone(),
                    second_offset: st.repl.second_offset,
                    backlog_first_offset: first,
                    backlog_histlen: histlen,
                    continued,
                });
            }
            if continued {
                let from =
                    if crate::fault::planted("backlog-off-by-one") { req.offset.saturating_add(1) } else { req.offset };
                let bytes = st.repl.backlog.as_ref().and_then(|b| b.range_from(from)).unwrap_or_default();
                st.repl.sync_partial_ok = st.repl.sync_partial_ok.saturating_add(1);
                let mut i = info(ReplicaState::Online);
                // It has every byte before the one it asked for.
                i.ack_offset = req.offset.saturating_sub(1);
                st.repl.replicas.insert(req.client_id, i);
                crate::fault::probe("repl.partial_resync");
                Plan::Partial { bytes, replid: st.repl.replid.clone() }
            } else {
                if req.replid != "?" {
                    st.repl.sync_partial_err = st.repl.sync_partial_err.saturating_add(1);
                    crate::fault::probe("repl.partial_resync_refused");
                }
                st.repl.sync_full = st.repl.sync_full.saturating_add(1);
                // The stream after this point starts with a SELECT, as after Redis's fork.
                st.repl.reset_seldb();
                let (snapshots, aux) = crate::persistence::snapshot_for_sync(&st, now);
                st.repl.replicas.insert(req.client_id, info(ReplicaState::SendBulk));
                crate::fault::probe("repl.full_resync");
                Plan::Full { snapshots, aux, replid: st.repl.replid.clone(), offset: st.repl.offset }
            }
        }
    };
    match plan {
        Plan::Refuse(msg) => {
            crate::protocol::Reply::error(out, msg);
            None
        }
        Plan::Partial { bytes, replid } => {
            tracing::info!(
                "Partial resynchronization request from {} accepted, sending {} bytes of backlog.",
                req.ip,
                bytes.len()
            );
            out.put_slice(format!("+CONTINUE {replid}\r\n").as_bytes());
            out.put_slice(&bytes);
            Some(false)
        }
        Plan::Full { snapshots, aux, replid, offset } => {
            tracing::info!("Full resync requested by replica {}:{}", req.ip, req.listening_port);
            tracing::info!(
                "Starting BGSAVE for SYNC with target: {} (offset {offset})",
                if diskless { "replicas sockets" } else { "disk" }
            );
            let payload = match crate::persistence::encode_off_thread(snapshots, aux).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("Encoding the snapshot for a replica failed: {e}");
                    shared.lock().repl.replicas.remove(&req.client_id);
                    crate::protocol::Reply::error(out, "ERR snapshot for replication failed");
                    return None;
                }
            };
            if !req.legacy_sync {
                out.put_slice(format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes());
            }
            if diskless {
                let mark = shared.env.rng.hex_id();
                out.put_slice(format!("$EOF:{mark}\r\n").as_bytes());
                out.put_slice(&payload);
                out.put_slice(mark.as_bytes());
                crate::fault::probe("repl.diskless_payload");
                // Online once the replica's first ACK arrives (REPLCONF ACK sets it).
            } else {
                out.put_slice(format!("${}\r\n", payload.len()).as_bytes());
                out.put_slice(&payload);
                if let Some(r) = shared.lock().repl.replicas.get_mut(&req.client_id) {
                    r.state = ReplicaState::Online;
                    r.ack_ms = now;
                }
            }
            Some(diskless)
        }
    }
}
