//! One client connection: read, parse, execute, reply, repeat.
//!
//! Why it is shaped this way:
//! - The task owns the socket and does both directions itself (madsim's `TcpStream` cannot be
//!   split), waiting with a `biased` select on: a kill request, pub/sub messages for this client,
//!   socket input, and the idle timeout. `biased` because an unbiased select draws from tokio's
//!   unseeded RNG, which would break simulation determinism.
//! - All complete requests in the buffer are parsed first, then executed under one lock
//!   (at most [`BATCH_MAX`] at a time, bounding how long one client holds the lock), and all their
//!   replies are written with one write and one flush. Under madsim nothing is sent before
//!   `flush`, so every write path ends in one.
//! - Limits: the query buffer may not pass `client-query-buffer-limit` (the client is closed, as
//!   Redis does); a protocol error is answered with Redis's text and the connection closed.
//! - Statistics count with saturating adds and waits are computed without `Instant` arithmetic
//!   that could panic (issue 12).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

use crate::cmd::{execute, Ctx, Deferred, Session};
use crate::protocol::{Limits, Reply, Request, RequestParser};
use crate::server::{ClientEntry, OutputLimit, Shared, PUSH_QUEUE_MAX};

/// Requests executed per lock acquisition.
pub const BATCH_MAX: usize = 1024;
const READ_CHUNK: usize = 16 * 1024;

const DENIED: &str = "DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.";

pub async fn serve<S>(shared: Arc<Shared>, mut stream: S, peer: SocketAddr, local: Option<SocketAddr>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (push_tx, mut push_rx) = mpsc::channel(PUSH_QUEUE_MAX);
    let kill = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(Notify::new());
    let queued_bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let addr = peer.to_string();
    let laddr = local.map(|a| a.to_string()).unwrap_or_default();
    let is_local = is_local_peer(peer.ip());

    // Admission: maxclients and protected mode, then registration.
    let admitted = {
        let mut st = shared.lock();
        if st.clients.len() >= st.config.hot.maxclients {
            st.stats.rejected_connections = st.stats.rejected_connections.saturating_add(1);
            Err("ERR max number of clients reached")
        } else if st.config.hot.protected_mode && st.config.hot.requirepass.is_none() && !is_local {
            st.stats.rejected_connections = st.stats.rejected_connections.saturating_add(1);
            Err(DENIED)
        } else {
            let id = st.allocate_client_id();
            st.stats.total_connections_received = st.stats.total_connections_received.saturating_add(1);
            let now = shared.env.clock.now_ms();
            let mut entry = ClientEntry::new(id, addr.clone(), laddr.clone(), now, push_tx);
            entry.kill = kill.clone();
            entry.wake = wake.clone();
            entry.queued_bytes = queued_bytes.clone();
            st.clients.insert(id, entry);
            let session = Session::new(id, addr, laddr, is_local);
            Ok((
                request_limits(&st, &session),
                session,
                st.config.hot.client_query_buffer_limit,
                st.config.hot.timeout_secs,
            ))
        }
    };
    let (mut limits, mut session, mut query_buffer_limit, mut timeout_secs) = match admitted {
        Ok(x) => x,
        Err(msg) => {
            let mut out = BytesMut::new();
            Reply::error(&mut out, msg);
            let _ = stream.write_all(&out).await;
            let _ = stream.flush().await;
            return;
        }
    };

    let mut inbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    let mut parser = RequestParser::new();
    let mut batch: VecDeque<(Request, Option<bytes::Bytes>)> = VecDeque::new();
    let mut bytes_in: u64 = 0;

    'conn: loop {
        let mut protocol_error = None;
        let mut one_at_a_time = false;
        while batch.len() < BATCH_MAX {
            // Before AUTH, one request at a time: the next one must be parsed with the limits
            // that hold after this one ran (an AUTH lifts them).
            if limits.unauthenticated && !batch.is_empty() {
                one_at_a_time = true;
                break;
            }
            match parser.next(&mut inbuf, &limits) {
                Ok(Some(r)) => batch.push_back((r, parser.take_frame())),
                Ok(None) => break,
                Err(e) => {
                    protocol_error = Some(e);
                    break;
                }
            }
        }
        let more_parsed = batch.len() == BATCH_MAX || one_at_a_time;
        let batch_len = batch.len();
        if batch_len > 1 {
            crate::fault::probe("conn.pipelined_batch");
        }
        // Where the reply of the command running now starts in `out` (CLIENT REPLY OFF|SKIP).
        let mut reply_mark = out.len();
        // This client's class of client-output-buffer-limit, as of its last command.
        let mut out_limit = OutputLimit::NONE;
        // The AOF position this batch's writes reach: its replies wait for the AOF writer.
        let mut aof_mark: Option<u64> = None;
        // A client pause holds the command at the front of `batch`: wait, then retry it.
        let mut postponed = false;
        // The command just run blocked (BLPOP on empty keys): wait for its outcome first.
        let mut blocked = false;
        while (!batch.is_empty() || bytes_in > 0) && !postponed && !blocked {
            let deferred = {
                let mut st = shared.lock();
                let aof_before = st.aof.fed;
                st.stats.net_input_bytes = st.stats.net_input_bytes.saturating_add(bytes_in);
                bytes_in = 0;
                // Messages published before this batch go out before its replies, as in Redis,
                // where a publisher writes straight into the subscriber's output buffer. While
                // the lock is held nobody else can publish, so this client's own PUBLISH (which
                // writes its message into `out` directly) is ordered exactly too.
                while !session.hold_stream {
                    let Ok(m) = push_rx.try_recv() else { break };
                    queued_bytes.fetch_sub(m.len(), Ordering::Relaxed);
                    out.extend_from_slice(&m);
                }
                let now_ms = shared.env.clock.now_ms();
                st.now_ms = now_ms;
                let mut last_cmd = None;
                while let Some((req, frame)) = batch.pop_front() {
                    let Request::Command(args) = req else {
                        continue;
                    };
                    if batch.is_empty() && batch_len >= 3 && crate::fault::planted("batch-drops-last") {
                        Reply::ok(&mut out);
                        continue;
                    }
                    last_cmd = Some(args[0].clone());
                    reply_mark = out.len();
                    session.reply_skip = std::mem::take(&mut session.reply_skip_next);
                    let frame_kept = frame.clone();
                    let mut ctx =
                        Ctx { st: &mut st, client: &mut session, out: &mut out, env: &shared.env, now_ms, frame };
                    execute(&mut ctx, args);
                    if let Some(args) = session.postponed.take() {
                        session.reply_skip_next = std::mem::take(&mut session.reply_skip);
                        batch.push_front((Request::Command(args), frame_kept));
                        postponed = true;
                        break;
                    }
                    if std::mem::take(&mut session.blocked) {
                        // Its reply comes when the wait ends; suppressed (or not) then.
                        blocked = true;
                        break;
                    }
                    if !session.deferred.is_empty() {
                        // Its reply comes after the deferred work: suppressed (or not) then.
                        break;
                    }
                    if session.reply_suppressed() {
                        out.truncate(reply_mark);
                    }
                    session.reply_skip = false;
                    out_limit = output_limit(&st, &session);
                    if out_limit.hard_exceeded(out.len()) {
                        close_over_output_limit(&mut st, &session, out.len());
                        out.clear();
                        session.close = true;
                    }
                    if session.close {
                        break;
                    }
                }
                if session.close {
                    batch.clear();
                }
                st.stats.net_output_bytes = st.stats.net_output_bytes.saturating_add(out.len() as u64);
                if st.aof.fed > aof_before {
                    aof_mark = Some(st.aof.fed);
                }
                if st.shutdown.is_some() {
                    shared.shutdown_notify.notify_one();
                }
                // Settings a CONFIG SET may have changed.
                limits = request_limits(&st, &session);
                query_buffer_limit = st.config.hot.client_query_buffer_limit;
                timeout_secs = st.config.hot.timeout_secs;
                if let Some(entry) = st.clients.get_mut(&session.id) {
                    entry.db = session.db;
                    if entry.name != session.name {
                        entry.name = session.name.clone();
                    }
                    entry.proto = session.proto;
                    entry.last_active_ms = now_ms;
                    entry.sub = session.channels.len();
                    entry.psub = session.patterns.len();
                    entry.multi = session.multi.as_ref().map(|m| m.queue.len() as i64).unwrap_or(-1);
                    // One string per batch, not per command: CLIENT LIST only shows the last one.
                    if let Some(c) = last_cmd {
                        if !entry.last_cmd.as_bytes().eq_ignore_ascii_case(&c) {
                            entry.last_cmd = String::from_utf8_lossy(&c).to_ascii_lowercase();
                        }
                    }
                }
                std::mem::take(&mut session.deferred)
            };
            if !deferred.is_empty() {
                if run_all_deferred(&shared, deferred, &mut out, &mut session, &mut stream).await {
                    session.close = true;
                    batch.clear();
                }
                if session.reply_suppressed() {
                    out.truncate(reply_mark);
                }
                session.reply_skip = false;
            }
        }
        if let Some(e) = protocol_error {
            crate::fault::probe("conn.protocol_error");
            tracing::debug!("Protocol error ({}) from client: id={} addr={}", e.0, session.id, session.addr);
            Reply::error(&mut out, &format!("ERR Protocol error: {}", e.0));
            session.close = true;
        }
        // Redis writes the AOF before replies go out (fsynced first with `appendfsync always`).
        if let Some(mark) = aof_mark.take() {
            if !crate::aof::wait_for(&shared, mark).await {
                break 'conn;
            }
        }
        if !out.is_empty() {
            if crate::fault::buggify("buggify.conn.delay_flush") {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let soft_deadline = out_limit.soft_deadline_ms(out.len()).map(|ms| Duration::from_millis(ms.max(0) as u64));
            if !write_unless_killed(&mut stream, &out, &wake, &kill, soft_deadline).await {
                if soft_deadline.is_some() {
                    close_over_output_limit(&mut shared.lock(), &session, out.len());
                }
                break 'conn;
            }
            out.clear();
        }
        if session.close || kill.load(Ordering::Acquire) {
            break 'conn;
        }
        if postponed {
            wait_for_unpause(&shared, &wake).await;
            continue 'conn;
        }
        if blocked {
            let wait = BlockedWait { shared: &shared, id: session.id, wake: &wake, kill: &kill, query_buffer_limit };
            let Some(outcome) = wait.until_outcome(&mut stream, &mut inbuf, &mut bytes_in).await else {
                break 'conn;
            };
            if !deliver_outcome(&shared, outcome, &mut out, &mut session).await {
                break 'conn;
            }
            if session.close {
                // Unblocked because the server became a replica: the reply, then the close.
                batch.clear();
                inbuf.clear();
            }
            continue 'conn;
        }
        if inbuf.len() > query_buffer_limit {
            crate::fault::probe("conn.query_buffer_limit");
            tracing::warn!(
                "Closing client that reached max query buffer length: id={} addr={} (qbuf={})",
                session.id,
                session.addr,
                inbuf.len()
            );
            break 'conn;
        }
        if more_parsed {
            continue;
        }
        if inbuf.spare_capacity_mut().len() < READ_CHUNK / 4 {
            inbuf.reserve(READ_CHUNK);
        }
        // Redis exempts pub/sub clients from the idle timeout.
        let idle_limit = (timeout_secs > 0 && session.subscriptions() == 0 && !session.is_replica)
            .then(|| Duration::from_secs(timeout_secs));
        tokio::select! {
            biased;
            _ = wake.notified() => {
                if kill.load(Ordering::Acquire) {
                    crate::fault::probe("conn.killed");
                    break 'conn;
                }
            }
            Some(msg) = push_rx.recv(), if !session.hold_stream => {
                queued_bytes.fetch_sub(msg.len(), Ordering::Relaxed);
                out.extend_from_slice(&msg);
                // Drain what else is queued so one flush carries it all (bounded by the queue).
                while let Ok(m) = push_rx.try_recv() {
                    queued_bytes.fetch_sub(m.len(), Ordering::Relaxed);
                    out.extend_from_slice(&m);
                }
            }
            r = read_some(&mut stream, &mut inbuf) => match r {
                Ok(0) | Err(_) => break 'conn,
                Ok(n) => bytes_in = bytes_in.saturating_add(n as u64),
            },
            _ = sleep_or_forever(idle_limit) => {
                tracing::debug!("Closing idle client id={}", session.id);
                break 'conn;
            }
        }
    }

    // Unregister: subscriptions, watches, registry entry.
    let mut st = shared.lock();
    let id = session.id;
    st.pubsub.remove_client(id, &session.channels, &session.patterns);
    st.watches.unwatch_all(id, &session.watched);
    st.clients.remove(&id);
    st.blocking.forget(id);
    if st.repl.replicas.remove(&id).is_some() {
        tracing::info!("Connection with replica {} lost.", session.addr);
    }
}

/// Redis's `islocalClient`: exactly 127.0.0.1 or ::1 (not all of 127.0.0.0/8, which a container
/// or a proxy may route from elsewhere). Protected mode, `enable-debug-command local` and
/// `enable-protected-configs local` trust only these.
pub fn is_local_peer(ip: std::net::IpAddr) -> bool {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match ip {
        IpAddr::V4(v4) => v4 == Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST || v6.to_ipv4_mapped() == Some(Ipv4Addr::LOCALHOST),
    }
}

/// The client-output-buffer-limit class that applies to this client's pending replies: pubsub
/// for a subscriber, normal otherwise (Redis's `getClientType`). Replica links are bounded by
/// their own class where the stream is queued, and a master link gets no replies.
fn output_limit(st: &crate::server::State, session: &Session) -> OutputLimit {
    if session.is_replica || session.is_master {
        OutputLimit::NONE
    } else if session.subscriptions() > 0 {
        st.config.hot.pubsub_output_limit
    } else {
        st.config.hot.normal_output_limit
    }
}

fn close_over_output_limit(st: &mut crate::server::State, session: &Session, pending: usize) {
    crate::fault::probe("conn.output_limit_closed");
    st.stats.client_output_limit_disconnections = st.stats.client_output_limit_disconnections.saturating_add(1);
    tracing::warn!(
        "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits (pending {} bytes).",
        session.id,
        session.addr,
        pending
    );
}

/// The parser's limits for this client now: proto-max-bulk-len, and Redis 7's pre-AUTH limits
/// while a password is required and not yet given.
fn request_limits(st: &crate::server::State, session: &Session) -> Limits {
    Limits {
        bulk_len_max: st.config.hot.proto_max_bulk_len,
        unauthenticated: st.config.hot.requirepass.is_some() && !session.authenticated,
    }
}

/// Writes and flushes `out`; false if the write failed or the client was killed meanwhile. A
/// client that stops reading blocks the write forever (and under madsim a partition stalls it
/// without an error), so a kill (CLIENT KILL, an output buffer limit) must be able to end it.
///
/// Past the soft output limit the write has `soft_deadline` to finish. Replies cannot grow while
/// their write is pending (the connection runs no command meanwhile), so "over the soft limit for
/// soft-seconds" is "this write took longer than soft-seconds"; the whole pending output counts
/// until written, which errs towards closing a reader that is slow as well as one that stopped.
async fn write_unless_killed<S: AsyncWrite + Unpin>(
    stream: &mut S,
    out: &[u8],
    wake: &Notify,
    kill: &AtomicBool,
    soft_deadline: Option<Duration>,
) -> bool {
    let write = async {
        let io = async {
            stream.write_all(out).await?;
            stream.flush().await
        };
        match soft_deadline {
            None => io.await,
            Some(d) => tokio::time::timeout(d, io)
                .await
                .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "soft output limit"))),
        }
    };
    let killed = async {
        while !kill.load(Ordering::Acquire) {
            wake.notified().await;
        }
    };
    // The write is polled first: when it completes at once (the usual case) the kill future is
    // never polled, so no waiter is registered on `wake` for every reply.
    tokio::select! {
        biased;
        r = write => r.is_ok(),
        _ = killed => {
            crate::fault::probe("conn.killed_while_writing");
            false
        }
    }
}

/// Reads what is available; under buggify sometimes only a few bytes, so that requests arrive
/// split at every possible boundary and the resumable parser is exercised.
async fn read_some<S: AsyncRead + Unpin>(stream: &mut S, inbuf: &mut BytesMut) -> std::io::Result<usize> {
    if crate::fault::buggify("buggify.conn.tiny_reads") {
        let mut tiny = [0u8; 7];
        let n = stream.read(&mut tiny).await?;
        inbuf.extend_from_slice(&tiny[..n]);
        return Ok(n);
    }
    stream.read_buf(inbuf).await
}

/// A blocked client's connection, waiting for its command's outcome (see `blocking.rs`).
struct BlockedWait<'a> {
    shared: &'a Shared,
    id: u64,
    wake: &'a Notify,
    kill: &'a AtomicBool,
    query_buffer_limit: usize,
}

impl BlockedWait<'_> {
    /// Waits until the client is served, unblocked or times out (by the node clock), and returns
    /// how; None when the connection must close instead (the client went away or sent past its
    /// query buffer limit, or was killed). The socket is read meanwhile, as Redis keeps reading
    /// a blocked client: a client that disconnects stops waiting, and is never served an element
    /// it would not receive.
    async fn until_outcome<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        inbuf: &mut BytesMut,
        bytes_in: &mut u64,
    ) -> Option<crate::blocking::Outcome> {
        loop {
            let nap = {
                let mut st = self.shared.lock();
                let now_ms = self.shared.env.clock.now_ms();
                if let Some(outcome) = st.blocking.take_outcome(self.id, now_ms) {
                    return Some(outcome);
                }
                // Re-read by the node clock, which may jump: at most RECHECK_MS_MAX between looks.
                let recheck_ms = crate::blocking::RECHECK_MS_MAX as i64;
                st.blocking.deadline_ms(self.id).map(|d| d.saturating_sub(now_ms).clamp(1, recheck_ms) as u64)
            };
            if self.kill.load(Ordering::Acquire) {
                crate::fault::probe("blocking.killed");
                return None;
            }
            tokio::select! {
                biased;
                _ = self.wake.notified() => {}
                r = read_some(stream, inbuf) => match r {
                    Ok(0) | Err(_) => {
                        crate::fault::probe("blocking.client_left");
                        return None;
                    }
                    Ok(n) => {
                        *bytes_in = bytes_in.saturating_add(n as u64);
                        if inbuf.len() > self.query_buffer_limit {
                            return None;
                        }
                    }
                },
                _ = sleep_or_forever(nap.map(Duration::from_millis)) => {}
            }
        }
    }
}

/// Writes a blocked command's reply into `out`, once its write is in the AOF as any write's
/// reply waits for. False when the connection must close (the AOF failed).
async fn deliver_outcome(
    shared: &Shared,
    outcome: crate::blocking::Outcome,
    out: &mut BytesMut,
    session: &mut Session,
) -> bool {
    use crate::blocking::Outcome;
    let mut reply = BytesMut::new();
    match outcome {
        Outcome::Served { reply: served, aof_mark } => {
            if !crate::aof::wait_for(shared, aof_mark).await {
                return false;
            }
            reply = served;
        }
        Outcome::TimedOut => crate::blocking::timed_out_reply(&mut reply, session.proto),
        Outcome::Error { message, close } => {
            Reply::error(&mut reply, &message);
            session.close |= close;
        }
    }
    if !session.reply_suppressed() {
        out.extend_from_slice(&reply);
    }
    session.reply_skip = false;
    true
}

/// A postponed client waits until a pause is lifted (woken at once), its connection is woken
/// (a kill), or a short recheck period passes (a CLIENT PAUSE that simply ran out).
async fn wait_for_unpause(shared: &Shared, wake: &Notify) {
    let unpaused = shared.lock().unpaused.clone();
    tokio::select! {
        biased;
        _ = wake.notified() => {}
        _ = unpaused.notified() => {}
        _ = tokio::time::sleep(Duration::from_millis(crate::pause::RECHECK_MS_MAX)) => {}
    }
}

async fn sleep_or_forever(limit: Option<Duration>) {
    match limit {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending::<()>().await,
    }
}

/// Runs the work commands deferred, in the order they ran, each reply spliced in where its
/// command's reply belongs (see `Session::deferred`): inside EXEC's reply array, or at the end.
/// Returns true when the connection must close afterwards (a successful SHUTDOWN).
async fn run_all_deferred<S: AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    deferred: Vec<(usize, Deferred)>,
    out: &mut BytesMut,
    session: &mut Session,
    stream: &mut S,
) -> bool {
    // Bytes spliced in so far, all before the positions still to fill (they never decrease).
    let mut shift = 0usize;
    let mut last_at = 0usize;
    for (at, work) in deferred {
        assert!(at >= last_at, "deferred replies are recorded in order");
        last_at = at;
        if let Deferred::Sync { replid, offset, legacy } = &work {
            diskless_keepalive(shared, replid, *offset, *legacy, session, stream).await;
        }
        let at = at.saturating_add(shift).min(out.len());
        let len_before = out.len();
        let close = if at == len_before {
            // At the end (the usual case): written in place, no copy (a full sync's payload).
            run_deferred(shared, work, out, session).await
        } else {
            crate::fault::probe("conn.deferred_reply_inside_exec");
            let mut reply = BytesMut::new();
            let close = run_deferred(shared, work, &mut reply, session).await;
            let tail = out.split_off(at);
            if !crate::fault::planted("exec-drops-deferred-reply") {
                out.extend_from_slice(&reply);
            }
            out.extend_from_slice(&tail);
            close
        };
        shift = shift.saturating_add(out.len().saturating_sub(len_before));
        if close {
            return true;
        }
    }
    false
}

/// Before a diskless full sync, newline keepalives for as long as `repl-diskless-sync-delay`
/// holds the payload back, so that the replica's repl-timeout does not expire meanwhile.
async fn diskless_keepalive<S: AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    replid: &str,
    offset: i64,
    legacy: bool,
    session: &Session,
    stream: &mut S,
) {
    let delay = crate::replication::master::diskless_delay(shared, replid, offset, session.repl_capa_eof, legacy);
    let end = crate::client::deadline_after(delay);
    while tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(1).min(end.saturating_duration_since(tokio::time::Instant::now())))
            .await;
        if stream.write_all(b"\n").await.is_err() || stream.flush().await.is_err() {
            break;
        }
    }
}

/// CONFIG REWRITE's write, with the text made once no other rewrite is under way.
async fn write_config(shared: &Shared, path: &std::path::Path) -> std::io::Result<()> {
    let _writing = shared.config_writes.lock().await;
    let text = shared.lock().config.rewrite();
    shared.env.disk.write_atomic(path, text.as_bytes()).await
}

/// Finishes a command's asynchronous part and writes its reply.
/// Returns true when the connection must close afterwards (a successful SHUTDOWN).
async fn run_deferred(shared: &Arc<Shared>, d: Deferred, out: &mut BytesMut, session: &mut Session) -> bool {
    match d {
        Deferred::WriteConfig { path } => match write_config(shared, &path).await {
            Ok(()) => {
                tracing::info!("CONFIG REWRITE executed with success.");
                Reply::ok(out)
            }
            Err(e) => {
                tracing::warn!("CONFIG REWRITE failed: {e}");
                Reply::error(out, &format!("ERR Rewriting config file: {e}"))
            }
        },
        Deferred::Appendonly(on) => {
            if !on {
                crate::aof::turn_off(shared).await;
                Reply::ok(out)
            } else if let Err(e) = crate::aof::turn_on(shared) {
                shared.lock().config.set("appendonly", "no").ok();
                Reply::error(out, &format!("ERR CONFIG SET failed (possibly related to argument 'appendonly') - {e}"))
            } else {
                Reply::ok(out)
            }
        }
        Deferred::BgRewriteAof => match crate::aof::rewrite::start(shared) {
            Ok(status) => Reply::simple(out, status),
            Err(e) => Reply::error(out, e),
        },
        Deferred::SentinelFlush { reply } => {
            let saved = crate::sentinel::link::flush_config(shared).await;
            if let Some(r) = reply {
                out.extend_from_slice(&r)
            } else if saved {
                Reply::ok(out)
            } else {
                Reply::error(out, "ERR Failed to save config file. Check server logs.")
            }
        }
        Deferred::Sleep(d) => {
            tokio::time::sleep(d).await;
            Reply::ok(out)
        }
        Deferred::Save => match crate::server::save_now(shared, false).await {
            Ok(_) => Reply::ok(out),
            Err(e) if e.to_string().contains("already in progress") => {
                Reply::error(out, "ERR Background save already in progress")
            }
            Err(_) => Reply::error(out, "ERR"),
        },
        Deferred::BgSave { schedule } => match crate::server::start_bgsave(shared) {
            Ok(()) => Reply::simple(out, "Background saving started"),
            Err(_) if schedule => Reply::simple(out, "Background saving scheduled"),
            Err(e) => Reply::error(out, e),
        },
        Deferred::Sync { replid, offset, legacy } => {
            let ip = session.repl_ip.clone().unwrap_or_else(|| crate::replication::peer_ip(&session.addr));
            let req = crate::replication::master::SyncRequest {
                client_id: session.id,
                replid,
                offset,
                ip,
                listening_port: session.repl_listening_port,
                legacy_sync: legacy,
                capa_eof: session.repl_capa_eof,
            };
            match crate::replication::master::serve(shared, req, out).await {
                Some(diskless) => {
                    session.is_replica = true;
                    session.hold_stream = diskless;
                }
                None => {}
            }
        }
        Deferred::Wait { replicas, offset, timeout_ms } => {
            let start = tokio::time::Instant::now();
            let acked = loop {
                let acks = shared.lock().acks.clone();
                // Registered before the count is read, so an ACK landing in between still wakes us.
                let ack_arrived = acks.notified();
                tokio::pin!(ack_arrived);
                ack_arrived.as_mut().enable();
                let done = {
                    let st = shared.lock();
                    let planted = crate::fault::planted("wait-counts-unacked");
                    let acked = st.repl.acked_replicas(offset, planted);
                    let timed_out = timeout_ms > 0 && start.elapsed() >= Duration::from_millis(timeout_ms);
                    let done = acked >= replicas || timed_out;
                    // Reported under the lock, so no ACK can land between the count and the record.
                    if let (true, Some(obs)) = (done, &st.observer) {
                        obs.emit(crate::observe::Observation::WaitReplied { target_offset: offset, reported: acked });
                    }
                    done.then_some(acked)
                };
                if let Some(acked) = done {
                    break acked;
                }
                // Until an ACK arrives, or the timeout; at most 100 ms between looks anyway.
                let mut nap = Duration::from_millis(100);
                if timeout_ms > 0 {
                    nap = nap.min(Duration::from_millis(timeout_ms).saturating_sub(start.elapsed()));
                }
                let _ = tokio::time::timeout(nap, ack_arrived).await;
            };
            Reply::int(out, acked as i64);
        }
        Deferred::StartReplication { generation } => {
            crate::replication::replica::spawn_link(shared.clone(), generation);
            Reply::ok(out);
        }
        Deferred::Shutdown(mode) => {
            use crate::server::ShutdownMode;
            let must_save = match mode {
                ShutdownMode::Save => true,
                ShutdownMode::NoSave => false,
                ShutdownMode::Default => !crate::persistence::save_points(&shared.lock()).is_empty(),
            };
            if must_save {
                if let Err(e) = crate::server::save_now(shared, true).await {
                    tracing::warn!("Error trying to save the DB, can't exit: {e}");
                    Reply::error(out, "ERR Errors trying to SHUTDOWN. Check logs.");
                    return false;
                }
            }
            tracing::warn!("User requested shutdown...");
            // Saved (or not wanted): the server exits without saving again. No reply, as Redis.
            shared.lock().shutdown = Some(ShutdownMode::NoSave);
            shared.shutdown_notify.notify_one();
            return true;
        }
    }
    false
}
