//! The append-only file, as Redis 7.0 writes it: a directory (`appenddirname`) holding a base
//! file (an RDB image, `aof-use-rdb-preamble yes`), incremental files of commands, and a
//! manifest naming them ([`manifest`]). Files ours writes load into redis-server 7.0 and pass
//! redis-check-aof; Redis's load into ours.
//!
//! Why it is shaped this way:
//! - Commands reach the AOF exactly as they reach replicas (Redis feeds both from one
//!   propagation): [`feed`] is called with the same rewritten effects (relative times made
//!   absolute), under the server lock, and only appends to an in-memory queue.
//! - One writer task ([`writer`]) owns every AOF file handle and does all AOF I/O, in queue
//!   order: bytes, switches to a new incr file (whose manifest is made durable first, so no
//!   acknowledged write can land in a file the manifest does not name), manifest updates at
//!   the end of a rewrite, and syncs asked for by SHUTDOWN. It writes whatever is queued in one
//!   call (group commit) and fsyncs per `appendfsync`.
//! - A client's reply waits for its writes (Redis writes the AOF buffer in `beforeSleep`,
//!   before replies go out): until the writer has attempted them (`everysec`, `no`), or
//!   until they are fsynced (`always`). See [`wait_for`].
//! - A rewrite ([`rewrite`]) is our `fork()`: a point-in-time snapshot under the lock (one
//!   `Arc` clone per shard), a new incr file for the writes that follow, the base written from
//!   the snapshot off the lock, then the manifest swapped.
//! - Loading ([`load`]) replays incr files through the normal command path as a client whose
//!   replies are discarded, as Redis's fake AOF client does.
//!
//! Limits: while more than [`PENDING_BYTES_MAX`] bytes wait for the disk (it fails, or is far
//! slower than the writes), client writes are refused with `-MISCONF` until it catches up (a
//! replica's master stream is not refused: it is bounded by the master's output limit for
//! replicas); every size read from a file is checked against the file's length.

pub mod load;
pub mod manifest;
pub mod rewrite;
pub mod writer;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{oneshot, Notify};

use crate::server::{Shared, State};
use manifest::Manifest;

/// Bytes queued for the writer before clients wait for it.
pub const PENDING_BYTES_MAX: usize = 64 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    Always,
    EverySec,
    No,
}

impl Fsync {
    pub fn parse(v: &str) -> Fsync {
        match v {
            "always" => Fsync::Always,
            "no" => Fsync::No,
            _ => Fsync::EverySec,
        }
    }
}

/// `aof_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Off,
    On,
    /// Turned on at run time (or after a replica's full sync): the first rewrite has not
    /// finished, so the manifest does not name the files being written yet.
    WaitRewrite,
}

/// Work for the writer, in order.
pub enum Entry {
    Bytes(BytesMut),
    /// From now on write to `path` (created empty, or appended to when `append`); when
    /// `manifest` is set, it is made durable first.
    Switch {
        path: PathBuf,
        append: bool,
        manifest: Option<(PathBuf, String)>,
    },
    /// Make this manifest durable, then remove these files; report the outcome.
    Manifest {
        path: PathBuf,
        text: String,
        remove: Vec<PathBuf>,
        done: oneshot::Sender<bool>,
    },
    /// Write and fsync everything before this entry (SHUTDOWN, `appendonly no`).
    Sync(oneshot::Sender<bool>),
}

pub struct AofState {
    pub status: Status,
    pub manifest: Manifest,
    /// The incr file writes go to (set once a switch is queued).
    pub target: Option<PathBuf>,
    pub queue: VecDeque<Entry>,
    queued_bytes: usize,
    selected_db: Option<usize>,
    multi_emitted: bool,
    last_ts_secs: i64,
    /// Bytes fed, bytes the writer attempted, wrote, and fsynced: positions clients wait for.
    pub fed: u64,
    pub attempted: u64,
    pub written: u64,
    pub synced: u64,
    /// The last write or fsync error (`-MISCONF`), cleared by the next success.
    pub write_error: Option<String>,
    /// `always` could not make a write durable: the server stops, as Redis exits.
    pub fatal: bool,
    pub current_size: u64,
    pub base_size: u64,
    pub rewrite: rewrite::RewriteStats,
    pub delayed_fsync: u64,
    /// Wakes the writer; wakes clients waiting for the writer.
    pub writer_wake: Arc<Notify>,
    pub progress: Arc<Notify>,
}

impl AofState {
    pub fn new() -> AofState {
        AofState {
            status: Status::Off,
            manifest: Manifest::default(),
            target: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            selected_db: None,
            multi_emitted: false,
            last_ts_secs: 0,
            fed: 0,
            attempted: 0,
            written: 0,
            synced: 0,
            write_error: None,
            fatal: false,
            current_size: 0,
            base_size: 0,
            rewrite: rewrite::RewriteStats::default(),
            delayed_fsync: 0,
            writer_wake: Arc::new(Notify::new()),
            progress: Arc::new(Notify::new()),
        }
    }

    /// Whether commands are being recorded.
    pub fn recording(&self) -> bool {
        self.target.is_some() && self.status != Status::Off
    }

    pub fn push(&mut self, e: Entry) {
        if let Entry::Bytes(b) = &e {
            self.queued_bytes = self.queued_bytes.saturating_add(b.len());
        }
        self.queue.push_back(e);
        self.writer_wake.notify_one();
    }

    /// Everything queued, for the writer (it reports back with [`AofState::written_back`]).
    pub fn take(&mut self) -> (Vec<Entry>, u64) {
        self.queued_bytes = 0;
        (self.queue.drain(..).collect(), self.fed)
    }

    /// Bytes the writer could not write go back to the front of the queue, in order.
    pub fn put_back(&mut self, entries: Vec<Entry>) {
        for e in entries.into_iter().rev() {
            if let Entry::Bytes(b) = &e {
                self.queued_bytes = self.queued_bytes.saturating_add(b.len());
            }
            self.queue.push_front(e);
        }
    }

    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }
}

impl Default for AofState {
    fn default() -> AofState {
        AofState::new()
    }
}

/// `<dir>/<appenddirname>`.
pub fn dir(st: &State) -> PathBuf {
    PathBuf::from(st.config.hot.dir.as_str()).join(st.config.get("appenddirname").unwrap_or("appendonlydir"))
}

/// `appendfilename`.
pub fn file_name(st: &State) -> String {
    st.config.get("appendfilename").unwrap_or("appendonly.aof").to_string()
}

pub fn manifest_path(st: &State) -> PathBuf {
    dir(st).join(format!("{}.manifest", file_name(st)))
}

pub fn fsync_policy(st: &State) -> Fsync {
    Fsync::parse(st.config.get("appendfsync").unwrap_or("everysec"))
}

/// Whether the configuration asks for the AOF (`appendonly yes`).
pub fn configured(st: &State) -> bool {
    st.config.get("appendonly") == Some("yes")
}

/// Appends one write (already encoded as RESP commands) for database `db`, with the SELECT,
/// MULTI and `#TS:` annotation Redis's `feedAppendOnlyFile` would add.
pub fn feed(st: &mut State, db: usize, commands: &[u8]) {
    if !st.aof.recording() {
        return;
    }
    let mut out = BytesMut::new();
    if st.config.get("aof-timestamp-enabled") == Some("yes") {
        let secs = st.now_ms / 1000;
        if secs > st.aof.last_ts_secs {
            st.aof.last_ts_secs = secs;
            out.extend_from_slice(format!("#TS:{secs}\r\n").as_bytes());
        }
    }
    if st.aof.selected_db != Some(db) {
        let n = db.to_string();
        crate::protocol::encode_command(&mut out, &[b"SELECT", n.as_bytes()]);
        st.aof.selected_db = Some(db);
    }
    if st.repl.in_exec && !st.aof.multi_emitted {
        crate::protocol::encode_command(&mut out, &[b"MULTI"]);
        st.aof.multi_emitted = true;
    }
    out.extend_from_slice(commands);
    append(st, out);
}

/// Closes a MULTI opened in the AOF by an EXEC's writes.
pub fn end_exec(st: &mut State) {
    if std::mem::take(&mut st.aof.multi_emitted) && st.aof.recording() {
        let mut out = BytesMut::new();
        crate::protocol::encode_command(&mut out, &[b"EXEC"]);
        append(st, out);
    }
}

fn append(st: &mut State, out: BytesMut) {
    st.aof.fed = st.aof.fed.saturating_add(out.len() as u64);
    // Consecutive bytes share one queue entry (one write call for the writer).
    let len = out.len();
    if let Some(Entry::Bytes(last)) = st.aof.queue.back_mut() {
        last.extend_from_slice(&out);
        st.aof.queued_bytes = st.aof.queued_bytes.saturating_add(len);
        st.aof.writer_wake.notify_one();
    } else {
        st.aof.push(Entry::Bytes(out));
    }
}

/// Encodes one command as the AOF and the replication stream hold it.
pub fn encode(args: &[Bytes]) -> BytesMut {
    let mut out = BytesMut::new();
    let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
    crate::protocol::encode_command(&mut out, &refs);
    out
}

/// Whether a client's writes up to AOF position `mark` may be acknowledged: written (or at
/// least attempted, `everysec`/`no`) or fsynced (`always`). Returns false if the AOF failed
/// for good and the client must be closed without its reply.
pub async fn wait_for(shared: &Shared, mark: u64) -> bool {
    loop {
        let progress = {
            let st = shared.lock();
            if st.aof.fatal {
                return false;
            }
            let reached = match fsync_policy(&st) {
                Fsync::Always if !crate::fault::planted("aof-ack-before-fsync") => st.aof.synced,
                _ => st.aof.attempted,
            };
            if reached >= mark || st.aof.status == Status::Off {
                return true;
            }
            st.aof.progress.clone()
        };
        let notified = progress.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Re-check after registering: the writer may have finished in between.
        {
            let st = shared.lock();
            let reached = match fsync_policy(&st) {
                Fsync::Always if !crate::fault::planted("aof-ack-before-fsync") => st.aof.synced,
                _ => st.aof.attempted,
            };
            if st.aof.fatal || reached >= mark || st.aof.status == Status::Off {
                continue;
            }
        }
        notified.await;
    }
}

/// `-MISCONF` while the last AOF write or fsync failed (Redis refuses writes and PING), or
/// while the queue for the disk is over its limit.
pub fn refuses_writes(st: &State) -> Option<String> {
    if st.aof.status == Status::Off {
        return None;
    }
    if let Some(e) = &st.aof.write_error {
        return Some(format!("MISCONF Errors writing to the AOF file: {e}"));
    }
    (st.aof.queued_bytes() > PENDING_BYTES_MAX).then(|| {
        format!(
            "MISCONF Errors writing to the AOF file: {} bytes wait for the disk (limit {PENDING_BYTES_MAX})",
            st.aof.queued_bytes()
        )
    })
}

/// Writes and fsyncs everything queued (SHUTDOWN, `appendonly no`). False if it failed.
pub async fn flush_and_sync(shared: &Shared) -> bool {
    let rx = {
        let mut st = shared.lock();
        if st.aof.target.is_none() {
            return true;
        }
        let (tx, rx) = oneshot::channel();
        st.aof.push(Entry::Sync(tx));
        rx
    };
    rx.await.unwrap_or(false)
}

/// INFO persistence's AOF fields, in Redis 7.0's order.
pub fn info_fields(st: &State, now_ms: i64) -> String {
    let a = &st.aof;
    let r = &a.rewrite;
    let current_secs = if r.in_progress { now_ms.saturating_sub(r.started_ms) / 1000 } else { -1 };
    let mut o = format!(
        "aof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{current_secs}\r\naof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
        u8::from(a.status != Status::Off),
        u8::from(r.in_progress),
        u8::from(r.scheduled),
        r.last_secs,
        if r.last_ok { "ok" } else { "err" },
        r.started,
        r.consecutive_failures,
        if a.write_error.is_none() { "ok" } else { "err" },
    );
    if configured(st) {
        o.push_str(&format!(
            "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:{}\r\naof_buffer_length:{}\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:{}\r\n",
            a.current_size,
            a.base_size,
            u8::from(r.scheduled),
            a.queued_bytes(),
            a.delayed_fsync
        ));
    }
    o
}

/// The path of a file named in the manifest.
pub fn in_dir(st: &State, name: &str) -> PathBuf {
    dir(st).join(name)
}

/// A file name's place for messages.
pub fn show(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// `aofOpenIfNeededOnServerStart`: after the load, recording starts. With no AOF at all the
/// first base is written from the (empty) dataset, as Redis does: the returned rewrite is run
/// once serving starts. Otherwise writes go to the last incr file (appended to), or to a new
/// one if the manifest names only a base.
pub fn open_on_start(st: &mut State, now_ms: i64) -> Option<rewrite::Job> {
    st.aof.status = Status::On;
    st.aof.selected_db = None;
    if st.aof.manifest.is_empty() {
        return Some(rewrite::begin(st, now_ms));
    }
    let (file, manifest) = match st.aof.manifest.incrs.last() {
        Some(last) => (last.clone(), None),
        None => {
            let seq = st.aof.manifest.incr_seq.saturating_add(1);
            let f = manifest::AofFile {
                name: format!("{}.{seq}.incr.aof", file_name(st)),
                seq,
                kind: manifest::FileType::Incr,
            };
            let mut m = st.aof.manifest.clone();
            m.incrs.push(f.clone());
            m.incr_seq = seq;
            let text = m.render();
            st.aof.manifest = m;
            tracing::info!("Creating AOF incr file {} on server start", f.name);
            (f, Some((manifest_path(st), text)))
        }
    };
    let append = manifest.is_none();
    let path = in_dir(st, &file.name);
    st.aof.push(Entry::Switch { path: path.clone(), append, manifest });
    st.aof.target = Some(path);
    None
}

/// `appendonly yes` at run time (`startAppendOnly`): recording starts into a new incr file
/// and a rewrite writes the base; the manifest names them once it ends (until then a restart
/// finds the old AOF, as with Redis). Err is Redis's CONFIG SET error.
pub fn turn_on(shared: &Arc<Shared>) -> Result<(), String> {
    {
        let mut st = shared.lock();
        if st.aof.status != Status::Off {
            return Ok(());
        }
        st.aof.status = Status::WaitRewrite;
        st.aof.write_error = None;
    }
    match rewrite::start(shared) {
        Ok(_) => Ok(()),
        Err(_) if shared.lock().aof.rewrite.in_progress => Ok(()),
        Err(_) => {
            shared.lock().aof.status = Status::Off;
            Err("Unable to turn on AOF. Check server logs.".into())
        }
    }
}

/// `appendonly no` (`stopAppendOnly`): what is queued is written and fsynced, then recording
/// stops. The files stay.
pub async fn turn_off(shared: &Shared) {
    if !flush_and_sync(shared).await {
        tracing::warn!("Fail to fsync the AOF file.");
    }
    let mut st = shared.lock();
    st.aof.status = Status::Off;
    st.aof.target = None;
    st.aof.selected_db = None;
    st.aof.rewrite.scheduled = false;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_refused_past_the_queue_limit_and_after_an_error() {
        let env = crate::env::Env::production();
        let mut st = State::new(crate::config::Config::new(), &env, 6390);
        st.aof.status = Status::On;
        st.aof.target = Some(PathBuf::from("x"));
        assert_eq!(refuses_writes(&st), None);
        feed(&mut st, 0, &vec![b'x'; PENDING_BYTES_MAX]);
        assert_eq!(st.aof.fed, st.aof.queued_bytes() as u64, "SELECT and the bytes, counted once");
        assert!(refuses_writes(&st).is_some_and(|e| e.starts_with("MISCONF ")));
        let (entries, fed) = st.aof.take();
        assert_eq!((entries.len(), fed), (1, st.aof.fed));
        assert_eq!(refuses_writes(&st), None);
        st.aof.write_error = Some("No space left on device".into());
        assert_eq!(
            refuses_writes(&st).as_deref(),
            Some("MISCONF Errors writing to the AOF file: No space left on device")
        );
        st.aof.status = Status::Off;
        assert_eq!(refuses_writes(&st), None);
    }
}
