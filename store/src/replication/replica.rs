//! The replica side of a link: one task per `REPLICAOF`, stopped when the generation changes.
//!
//! Loop: connect, handshake as Redis 7 does (PING, AUTH, REPLCONF listening-port, REPLCONF capa
//! eof capa psync2, PSYNC <replid> <offset+1>), then either load the full payload (replacing the
//! dataset) or continue, then apply the stream command by command under the server lock,
//! counting applied bytes as the offset, relaying the same bytes to our own replicas, and
//! acknowledging every second and on GETACK. Every wait has a timeout (repl-timeout for the
//! stream, 5 s per handshake step): a partition stalls, it does not reset. On any failure the
//! link goes down and the loop reconnects, and PSYNC then asks to continue where it stopped.
//! What the master sends is untrusted: a `+FULLRESYNC` offset whose successor is not an i64 is
//! refused, and the offset then advances saturating (issue 12).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::{Client, Resp};
use crate::cmd::{execute, Ctx, Session};
use crate::protocol::{encode_command, Limits, Request, RequestParser};
use crate::replication::transitions::FullSyncDone;
use crate::replication::{Role, NO_REPLID};
use crate::server::Shared;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// The "current time" the master's stream executes at on a replica: before every deadline.
const MASTER_CLIENT_NOW_MS: i64 = i64::MIN / 4;
/// Largest RDB payload accepted from a master.
const PAYLOAD_BYTES_MAX: usize = 16 << 30;

pub fn spawn_link(shared: Arc<Shared>, generation: u64) {
    tokio::spawn(async move { run(shared, generation).await });
}

fn current(shared: &Shared, generation: u64) -> bool {
    shared.lock().repl.is_current(generation)
}

fn link_down(shared: &Shared, generation: u64) {
    let now_ms = shared.env.clock.now_ms();
    if shared.lock().repl.link_lost(generation, now_ms) {
        crate::fault::probe("repl.link_down");
    }
}

async fn run(shared: Arc<Shared>, generation: u64) {
    while current(&shared, generation) {
        match attempt(&shared, generation).await {
            Ok(()) => {}
            Err(e) => tracing::warn!("Connection with master lost or failed: {e}"),
        }
        link_down(&shared, generation);
        tokio::time::sleep(RETRY_DELAY).await;
    }
}

struct Target {
    addr: String,
    auth: Option<(Option<String>, String)>,
    my_port: u16,
    announce_ip: Option<String>,
    replid: String,
    offset: i64,
    repl_timeout: Duration,
}

fn target(shared: &Shared) -> Option<Target> {
    let st = shared.lock();
    let Role::Replica { host, port } = &st.repl.role else { return None };
    let hot = &st.config.hot;
    let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    Some(Target {
        addr,
        auth: hot.masterauth.clone().map(|pass| (hot.masteruser.clone(), pass)),
        // replica-announce-port / -ip let a replica behind NAT tell its master how to reach it.
        my_port: if hot.replica_announce_port > 0 { hot.replica_announce_port } else { st.port },
        announce_ip: st.config.hot.replica_announce_ip.clone(),
        // A node that never held replicated data asks for a full sync (`PSYNC ? -1`); one with
        // history (a demoted master, a restarted replica) asks to continue from it.
        replid: if st.repl.has_history { st.repl.replid.clone() } else { NO_REPLID.to_string() },
        offset: st.repl.offset,
        repl_timeout: Duration::from_millis(u64::try_from(st.config.hot.repl_timeout_ms).unwrap_or(1000)),
    })
}

async fn attempt(shared: &Arc<Shared>, generation: u64) -> Result<(), String> {
    let Some(t) = target(shared) else { return Ok(()) };
    // The log lines along the way are Redis's own, so operators' habits (and greps) carry over.
    tracing::info!("Connecting to MASTER {}", t.addr);
    let mut c =
        Client::connect(&t.addr, HANDSHAKE_TIMEOUT).await.map_err(|e| format!("connecting to {}: {e}", t.addr))?;
    tracing::info!("MASTER <-> REPLICA sync started");
    shared.lock().repl.link_handshake_started(generation);
    match c.cmd(&["PING"]).await.map_err(|e| e.to_string())? {
        Resp::Simple(_) => {}
        Resp::Error(e) if e.starts_with("NOAUTH") || e.starts_with("NOPERM") => {}
        other => return Err(format!("unexpected reply to PING: {}", other.render())),
    }
    // AUTH and the REPLCONFs go in one burst, replies read in order, as Redis does.
    let mut burst: Vec<Vec<Vec<u8>>> = Vec::new();
    if let Some((user, pass)) = &t.auth {
        let mut a = vec![b"AUTH".to_vec()];
        if let Some(u) = user {
            a.push(u.clone().into_bytes());
        }
        a.push(pass.clone().into_bytes());
        burst.push(a);
    }
    burst.push(vec![b"REPLCONF".to_vec(), b"listening-port".to_vec(), t.my_port.to_string().into_bytes()]);
    if let Some(ip) = &t.announce_ip {
        burst.push(vec![b"REPLCONF".to_vec(), b"ip-address".to_vec(), ip.clone().into_bytes()]);
    }
    burst.push(vec![b"REPLCONF".to_vec(), b"capa".to_vec(), b"eof".to_vec(), b"capa".to_vec(), b"psync2".to_vec()]);
    let replies = c.pipeline(&burst).await.map_err(|e| e.to_string())?;
    if t.auth.is_some() && replies[0].is_error() {
        return Err(format!("AUTH with the master failed: {}", replies[0].render()));
    }
    tracing::info!("Master replied to PING, replication can continue...");
    // Continue from our own history if we have one (the cached master of Redis).
    let (id, next) =
        if t.replid == NO_REPLID { ("?".to_string(), -1) } else { (t.replid.clone(), t.offset.saturating_add(1)) };
    if t.replid == NO_REPLID {
        tracing::info!("Partial resynchronization not possible (no cached master)");
    } else {
        tracing::info!("Trying a partial resynchronization (request {id}:{next}).");
    }
    // A master handing over (FAILOVER) asks its target to take its place as it resyncs.
    let handing_over = shared.lock().failover.phase == super::failover::Phase::InProgress;
    let mut psync: Vec<&[u8]> = vec![b"PSYNC", id.as_bytes()];
    let next_text = next.to_string();
    psync.push(next_text.as_bytes());
    if handing_over {
        psync.push(b"FAILOVER");
    }
    if let Err(e) = c.send(&psync).await {
        if handing_over {
            abort_failover(shared, generation, "Write error to failover target");
        }
        return Err(e.to_string());
    }
    c.io_timeout = t.repl_timeout;
    let line = read_status(&mut c).await?;
    if handing_over {
        settle_failover(shared, generation, &line);
    }
    let mut eager_acks = false;
    if let Some(rest) = line.strip_prefix("+FULLRESYNC ") {
        let Some((new_id, off)) = parse_fullresync(rest) else {
            return Err(format!("bad FULLRESYNC line: {line}"));
        };
        if new_id.len() != 40 {
            return Err(format!("bad replication id in FULLRESYNC: {new_id}"));
        }
        tracing::info!("Full resync from master: {new_id}:{off}");
        eager_acks = full_sync(shared, &mut c, generation, new_id.to_string(), off).await?;
    } else if let Some(rest) = line.strip_prefix("+CONTINUE") {
        let new_id = rest.trim();
        if new_id.len() != 40 && !new_id.is_empty() {
            return Err(format!("bad replication id in CONTINUE: {new_id}"));
        }
        let now_ms = shared.env.clock.now_ms();
        let mut st = shared.lock();
        if !st.repl.is_current(generation) {
            return Ok(());
        }
        let size = backlog_size(&st);
        st.repl.link_continued(new_id, size, now_ms);
        crate::fault::probe("repl.replica_continued");
        tracing::info!("Successful partial resynchronization with master.");
        tracing::info!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
    } else {
        return Err(format!("unexpected reply to PSYNC: {line}"));
    }
    stream(shared, c, generation, t.repl_timeout, eager_acks).await
}

/// The target answered our PSYNC ... FAILOVER: the failover is over if it accepted (Redis
/// expects +CONTINUE but takes a full resync too), aborted if it refused.
fn settle_failover(shared: &Shared, generation: u64, line: &str) {
    if line.starts_with("+FULLRESYNC") || line.starts_with("+CONTINUE") {
        let mut st = shared.lock();
        if st.repl.is_current(generation) && st.failover.phase == super::failover::Phase::InProgress {
            tracing::info!("FAILOVER to the target succeeded: {line}");
            super::failover::clear(&mut st);
            crate::fault::probe("repl.failover_completed");
        }
    } else {
        abort_failover(shared, generation, "Failover target rejected psync request");
    }
}

fn abort_failover(shared: &Shared, generation: u64, why: &str) {
    let new_id = shared.env.rng.hex_id();
    let mut st = shared.lock();
    if st.repl.is_current(generation) {
        super::failover::abort(&mut st, why, new_id);
    }
}

/// The replication id and offset of a `+FULLRESYNC <replid> <offset>` line (after the prefix).
/// The backlog will start at `offset + 1`, so an offset without a successor (i64::MAX, which
/// overflowed there) is refused like any malformed line.
fn parse_fullresync(rest: &str) -> Option<(&str, i64)> {
    let mut parts = rest.split_whitespace();
    let id = parts.next()?;
    let offset = parts.next()?.parse::<i64>().ok().filter(|o| o.checked_add(1).is_some())?;
    Some((id, offset))
}

/// Reads a status line, skipping the empty keepalive lines a master sends while preparing.
async fn read_status(c: &mut Client) -> Result<String, String> {
    for _ in 0..10_000 {
        let line = c.read_line(64 * 1024).await.map_err(|e| e.to_string())?;
        if !line.is_empty() {
            return Ok(line);
        }
    }
    Err("too many keepalives".into())
}

async fn full_sync(
    shared: &Arc<Shared>,
    c: &mut Client,
    generation: u64,
    replid: String,
    offset: i64,
) -> Result<bool, String> {
    let header = read_status(c).await?;
    // Diskless form (`$EOF:<mark>`): size unknown, read until the 40-byte mark repeats.
    let eof_mark = header.strip_prefix("$EOF:").map(str::to_string);
    let size = match &eof_mark {
        Some(mark) if mark.len() == 40 => None,
        Some(_) => return Err("bad EOF mark".into()),
        None => match header.strip_prefix('$').and_then(|l| l.parse::<usize>().ok()) {
            Some(len) if len > PAYLOAD_BYTES_MAX => return Err(format!("payload of {len} bytes is too large")),
            Some(len) => Some(len),
            None => return Err(format!("bad payload header: {header}")),
        },
    };
    match size {
        Some(n) => tracing::info!("MASTER <-> REPLICA sync: receiving {n} bytes from master to memory"),
        None => tracing::info!("MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to memory"),
    }
    progress(shared, generation, size.map_or(-1, |n| n as i64), 0);
    let mut payload = Vec::with_capacity(size.unwrap_or(0).min(64 << 20));
    loop {
        let chunk = match size {
            Some(n) => {
                if payload.len() == n {
                    break;
                }
                // `payload.len() < n`: equal broke out above, and reads never exceed the rest.
                c.read_up_to(n.saturating_sub(payload.len())).await
            }
            // The master sends nothing after the mark until we ACK, so the mark ends a read.
            None => c.read_available().await,
        }
        .map_err(|e| e.to_string())?;
        payload.extend_from_slice(&chunk);
        if payload.len() > PAYLOAD_BYTES_MAX {
            return Err("payload too large".into());
        }
        progress(shared, generation, size.map_or(-1, |n| n as i64), payload.len() as i64);
        if let Some(mark) = &eof_mark {
            if let Some(rdb) = payload.strip_suffix(mark.as_bytes()) {
                payload.truncate(rdb.len());
                crate::fault::probe("repl.replica_diskless_load");
                break;
            }
        }
    }
    let mut st = shared.lock();
    if st.repl.link.generation != generation {
        return Ok(false);
    }
    let data = crate::rdb::decode(&payload, st.ks.dbs.len(), &st.ks.hasher()).map_err(|e| {
        crate::fault::probe("repl.bad_payload");
        format!("the master sent a corrupt snapshot: {e}")
    })?;
    tracing::info!("MASTER <-> REPLICA sync: Flushing old data");
    tracing::info!("MASTER <-> REPLICA sync: Loading DB in memory");
    // Replace the dataset: drop the old data, load the snapshot (expired keys kept: replicas
    // wait for the master's DEL).
    for db in st.ks.dbs.iter_mut() {
        db.clear();
    }
    for (index, entries) in data.dbs.into_iter().enumerate() {
        for (key, value, expire) in entries {
            st.ks.dbs[index].insert(key.clone(), value, false);
            if let Some(t) = expire {
                st.ks.dbs[index].set_expire(&key, t);
            }
        }
    }
    st.watches.touch_db(None);
    // The stream continues in the database the payload says (RDB aux repl-stream-db).
    let master_db = data.repl_stream_db.filter(|d| *d >= 0 && (*d as usize) < st.ks.dbs.len()).unwrap_or(0) as usize;
    let backlog_size = backlog_size(&st);
    // `offset + 1` was checked when the +FULLRESYNC line was read.
    st.repl.link_full_sync_done(FullSyncDone { replid, offset, master_db, backlog_size }, shared.env.clock.now_ms());
    // Our own replicas must resync from the new dataset.
    for id in std::mem::take(&mut st.repl.replicas).keys() {
        if let Some(cl) = st.clients.get(id) {
            cl.request_kill();
        }
    }
    if st.observer.is_some() {
        st.tracking.digest = crate::db::digest::digest_all(&st.ks.dbs);
        let obs = st.observer.clone().expect("checked");
        obs.emit(crate::observe::Observation::ReplApplied {
            replid: st.repl.replid.clone(),
            offset,
            digest: st.tracking.digest,
        });
    }
    crate::fault::probe("repl.replica_full_sync");
    let aof_job = crate::aof::rewrite::restart_after_full_sync(&mut st, shared.env.clock.now_ms());
    drop(st);
    if let Some(job) = aof_job {
        tokio::spawn(crate::aof::rewrite::run(shared.clone(), job));
    }
    tracing::info!("MASTER <-> REPLICA sync: Finished with success ({} bytes)", payload.len());
    Ok(eof_mark.is_some())
}

/// Records how much of the payload has arrived (INFO's master_sync_* fields).
fn progress(shared: &Shared, generation: u64, size_bytes: i64, read_bytes: i64) {
    let now_ms = shared.env.clock.now_ms();
    shared.lock().repl.link_transfer_progress(generation, size_bytes, read_bytes, now_ms);
}

/// repl-backlog-size, as a size (at least 1; the backlog applies Redis's minimum).
fn backlog_size(st: &crate::server::State) -> usize {
    st.config.hot.repl_backlog_size
}

/// Sends REPLCONF ACK and reports what was acknowledged (simulation checks the replica's data
/// at that offset against the master's).
async fn ack(
    shared: &Shared,
    stream: &mut tokio::net::TcpStream,
    offset: i64,
    timeout: Duration,
) -> Result<(), String> {
    send_ack(stream, offset, timeout).await?;
    let st = shared.lock();
    if let Some(obs) = &st.observer {
        obs.emit(crate::observe::Observation::ReplAcked {
            replid: st.repl.replid.clone(),
            offset,
            digest: st.tracking.digest,
        });
    }
    Ok(())
}

async fn send_ack(stream: &mut tokio::net::TcpStream, offset: i64, timeout: Duration) -> Result<(), String> {
    let mut out = BytesMut::new();
    let off = offset.to_string();
    encode_command(&mut out, &[b"REPLCONF", b"ACK", off.as_bytes()]);
    let write = async {
        stream.write_all(&out).await?;
        stream.flush().await
    };
    tokio::time::timeout(timeout, write)
        .await
        .map_err(|_| "ACK write timed out".to_string())?
        .map_err(|e| e.to_string())
}

/// How often a replica ACKs while it waits for the first stream bytes after a diskless full sync,
/// and for how long. A redis-server master starts streaming to such a replica only at an ACK that
/// arrives after it has put the replica online (when its cron reaps the RDB child, up to a tick
/// after the payload ended), so the ACK sent at once may be too early; the next one, a second
/// later, would delay every write of that second.
const EAGER_ACK_EVERY: Duration = Duration::from_millis(50);
const EAGER_ACKS_FOR: Duration = Duration::from_secs(2);

/// Applies the master's stream; `eager_acks` after a diskless (`$EOF:`) full sync.
async fn stream(
    shared: &Arc<Shared>,
    c: Client,
    generation: u64,
    repl_timeout: Duration,
    eager_acks: bool,
) -> Result<(), String> {
    let (mut sock, mut buf) = c.into_parts();
    let registered = MasterClient::register(shared, &sock);
    let mut parser = RequestParser::new();
    // As in Redis, proto-max-bulk-len does not apply to the master's stream: a replica must
    // take whatever its master accepted. Memory still grows only with bytes that arrived.
    let limits = Limits { bulk_len_max: i64::MAX, unauthenticated: false };
    let mut master = Session::new(0, "master".into(), String::new(), true);
    master.is_master = true;
    master.authenticated = true;
    master.db = shared.lock().repl.master_db;
    let ack_every = Duration::from_secs(1);
    let mut next_ack = tokio::time::Instant::now();
    let mut last_read = tokio::time::Instant::now();
    // Until the first read after a diskless sync: ACK every EAGER_ACK_EVERY (a bounded number).
    let mut eager_until = eager_acks.then(|| crate::client::deadline_after(EAGER_ACKS_FOR));
    // The master's transaction being received (MULTI seen, EXEC not yet): see `apply`.
    let mut pending = PendingTransaction::default();
    loop {
        if crate::fault::planted("ack-before-apply") && !buf.is_empty() {
            // The planted bug: acknowledge what was read before applying it.
            let off = shared.lock().repl.offset.saturating_add(buf.len() as i64);
            ack(shared, &mut sock, off, repl_timeout).await?;
        }
        // Apply every complete command in the buffer.
        loop {
            let before = buf.len();
            let req = parser.next(&mut buf, &limits).map_err(|e| format!("Protocol error from master: {}", e.0))?;
            let Some(req) = req else { break };
            // The parser only removes bytes from `buf`.
            let consumed = before.saturating_sub(buf.len()) as i64;
            let frame = parser.take_frame();
            let Request::Command(args) = req else {
                continue;
            };
            let getack =
                args.len() >= 2 && args[0].eq_ignore_ascii_case(b"replconf") && args[1].eq_ignore_ascii_case(b"getack");
            let offset = apply(shared, generation, &mut master, &mut pending, args, frame, consumed)?;
            if getack {
                // Redis acknowledges the offset before GETACK's own bytes.
                ack(shared, &mut sock, offset.saturating_sub(consumed), repl_timeout).await?;
            }
        }
        if !current(shared, generation) {
            return Ok(());
        }
        if registered.killed() {
            crate::fault::probe("repl.master_link_killed");
            return Err("the link to the master was killed (CLIENT KILL)".into());
        }
        let now = tokio::time::Instant::now();
        // At an ACK point (about once a second), the link may drop on its own (a proxy timeout,
        // a NAT table flush): the replica reconnects and asks to continue, which exercises PSYNC
        // after every kind of gap.
        if now >= next_ack && crate::fault::buggify("buggify.repl.replica_drops_link") {
            return Err("link dropped (buggify)".into());
        }
        if now >= next_ack {
            let off = shared.lock().repl.offset;
            ack(shared, &mut sock, off, repl_timeout).await?;
            let eager = eager_until.is_some_and(|until| now < until);
            if eager {
                crate::fault::probe("repl.replica_eager_ack");
            }
            next_ack = now.checked_add(if eager { EAGER_ACK_EVERY } else { ack_every }).unwrap_or(now);
        }
        if now.duration_since(last_read) > repl_timeout {
            crate::fault::probe("repl.replica_timeout");
            return Err("MASTER timeout: no data nor PING received...".into());
        }
        if buf.spare_capacity_mut().len() < 4096 {
            buf.reserve(64 * 1024);
        }
        let wait = next_ack.saturating_duration_since(now).max(Duration::from_millis(1));
        let read = tokio::select! {
            biased;
            _ = registered.wake.notified() => continue, // a kill request: checked above
            r = tokio::time::timeout(wait, sock.read_buf(&mut buf)) => r,
        };
        match read {
            Err(_) => {} // time for an ACK
            Ok(Ok(0)) => return Err("connection closed by master".into()),
            Ok(Ok(_)) => {
                last_read = tokio::time::Instant::now();
                if eager_until.take().is_some() {
                    // The stream has started: back to one ACK a second from here.
                    next_ack = next_ack.min(last_read.checked_add(ack_every).unwrap_or(last_read));
                }
                // One clock read per read from the master, not per command applied.
                let now_ms = shared.env.clock.now_ms();
                let mut st = shared.lock();
                st.repl.link.last_io_ms = now_ms;
                st.now_ms = now_ms;
            }
            Ok(Err(e)) => return Err(e.to_string()),
        }
    }
}

/// The link's entry in the client registry, for as long as the stream is applied: CLIENT LIST
/// shows it (flags=M), CLIENT KILL can end it. Unregistered on drop, whichever way the stream
/// ends.
struct MasterClient<'a> {
    shared: &'a Shared,
    id: u64,
    kill: Arc<std::sync::atomic::AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
}

impl<'a> MasterClient<'a> {
    fn register(shared: &'a Shared, sock: &tokio::net::TcpStream) -> MasterClient<'a> {
        let addr = sock.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let laddr = sock.local_addr().map(|a| a.to_string()).unwrap_or_default();
        // Nothing is ever pushed to the master link: the receiver is not kept.
        let (push, _) = tokio::sync::mpsc::channel(1);
        let mut st = shared.lock();
        let id = st.allocate_client_id();
        let entry = crate::server::ClientEntry::new(id, addr, laddr, shared.env.clock.now_ms(), push);
        let (kill, wake) = (entry.kill.clone(), entry.wake.clone());
        st.clients.insert(id, entry);
        // A link task being replaced (REPLICAOF elsewhere) may not have noticed yet: the newest
        // registration is the link; the older one unregisters only its own entry.
        st.repl.link.client_id = Some(id);
        MasterClient { shared, id, kill, wake }
    }

    fn killed(&self) -> bool {
        self.kill.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Drop for MasterClient<'_> {
    fn drop(&mut self) {
        let Some(mut st) = self.shared.lock_unless_poisoned() else {
            return;
        };
        st.clients.remove(&self.id);
        if st.repl.link.client_id == Some(self.id) {
            st.repl.link.client_id = None;
        }
    }
}

/// The bytes of the master's transaction received so far. Until its EXEC they are not applied
/// in the offset's sense (Redis advances the master client's `reploff` only outside MULTI): a
/// link that breaks mid-transaction resumes from before its MULTI, so the transaction is
/// received whole again, instead of its first half being lost with the old connection's queue.
#[derive(Default)]
struct PendingTransaction {
    bytes: BytesMut,
    consumed: i64,
}

/// Executes one stream command as the master's session and advances the offset by its bytes
/// (by the whole transaction's at its EXEC).
fn apply(
    shared: &Arc<Shared>,
    generation: u64,
    master: &mut Session,
    pending: &mut PendingTransaction,
    args: Vec<Bytes>,
    frame: Option<Bytes>,
    consumed: i64,
) -> Result<i64, String> {
    // The master's exact bytes when the parser vouches they are canonical; otherwise our
    // encoding, which the length check below compares with what was consumed.
    let raw = frame.unwrap_or_else(|| {
        let mut raw = BytesMut::new();
        let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        encode_command(&mut raw, &refs);
        raw.freeze()
    });
    let mut st = shared.lock();
    if st.repl.link.generation != generation {
        return Err("replication target changed".into());
    }
    // The master's commands see keys the replica's clock thinks expired as present (Redis 7's
    // expireIfNeeded for the master client): the master decides expiry and sends DEL, and a
    // skewed replica clock must not change what its writes do. No key is expired at this time.
    // The stream carries only absolute deadlines, so no relative time is computed from it.
    let now_ms = MASTER_CLIENT_NOW_MS;
    let mut out = BytesMut::new();
    {
        let mut ctx = Ctx { st: &mut st, client: master, out: &mut out, env: &shared.env, now_ms, frame: None };
        execute(&mut ctx, args);
    }
    // Replies to the master are never sent; deferred work does not apply to it.
    master.deferred.clear();
    st.repl.master_db = master.db;
    let canonical = raw.len() as i64 == consumed;
    if master.multi.is_some() || !pending.bytes.is_empty() {
        pending.bytes.extend_from_slice(&raw);
        pending.consumed = pending.consumed.saturating_add(consumed);
        if master.multi.is_some() {
            crate::fault::probe("repl.replica_transaction_pending");
            return Ok(st.repl.offset);
        }
    }
    // Applied: a plain command, or a transaction's EXEC with everything before it.
    let (raw, consumed) = if pending.bytes.is_empty() {
        (raw, consumed)
    } else {
        let whole = std::mem::take(&mut pending.bytes).freeze();
        (whole, std::mem::take(&mut pending.consumed))
    };
    // Our replicas get the master's bytes unchanged, so offsets agree along a chain. Masters
    // send canonical RESP, so our re-encoding is byte-identical; if it is not, our replicas are
    // dropped (they resync) rather than given a stream whose offsets differ, and our backlog
    // restarts (it could not hold the master's bytes).
    if canonical && raw.len() as i64 == consumed {
        st.repl.stream_applied(&raw);
        if crate::fault::planted("replica-offset-off-by-one") && raw.starts_with(b"*2\r\n$6\r\nSELECT") {
            // The planted bug: a SELECT counted one byte too many.
            st.repl.offset = st.repl.offset.saturating_add(1);
        }
        relay(&mut st, raw);
    } else {
        st.repl.stream_applied_unrelayed(consumed);
        crate::fault::probe("repl.noncanonical_stream");
        for id in std::mem::take(&mut st.repl.replicas).keys() {
            if let Some(c) = st.clients.get(id) {
                c.request_kill();
            }
        }
    }
    let offset = st.repl.offset;
    if let Some(obs) = st.observer.clone() {
        if master.multi.is_none() {
            obs.emit(crate::observe::Observation::ReplApplied {
                replid: st.repl.replid.clone(),
                offset,
                digest: st.tracking.digest,
            });
        }
    }
    Ok(offset)
}

/// Queues relayed stream bytes for our replicas (our offset and backlog advanced already, in
/// `ReplState::stream_applied`).
fn relay(st: &mut crate::server::State, bytes: Bytes) {
    let crate::server::State { repl, clients, now_ms, .. } = st;
    for (id, info) in repl.replicas.iter() {
        if !info.state.receives_stream() {
            continue;
        }
        if let Some(c) = clients.get(id) {
            c.push_bytes(bytes.clone(), &repl.obuf_limit, *now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fullresync_offset_must_have_a_successor() {
        let id = "b".repeat(40);
        assert_eq!(parse_fullresync(&format!("{id} 0")), Some((id.as_str(), 0)));
        assert_eq!(parse_fullresync(&format!("{id} 9223372036854775806")), Some((id.as_str(), i64::MAX - 1)));
        assert_eq!(parse_fullresync(&format!("{id} 9223372036854775807")), None, "offset + 1 would overflow");
        assert_eq!(parse_fullresync(&format!("{id} 9223372036854775808")), None);
        assert_eq!(parse_fullresync(&id), None);
    }
}
