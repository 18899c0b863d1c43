//! The AOF writer: the one task that touches AOF files, in queue order (see the module doc of
//! [`super`]). It wakes when something is queued, and once a second for `everysec`'s fsync.
//!
//! Failures, as Redis handles them (`flushAppendOnlyFile`): with `always`, a write or fsync
//! that fails stops the server (Redis exits: an acknowledged write must be durable); with
//! `everysec` and `no`, the bytes stay queued and are retried, writes and PING are refused
//! with `-MISCONF` until a write succeeds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Entry, Fsync};
use crate::env::DiskFile;
use crate::server::Shared;

/// `everysec`: fsync at most this often.
const EVERYSEC: Duration = Duration::from_secs(1);

struct Open {
    file: DiskFile,
    /// Bytes written since the last fsync.
    unsynced: u64,
}

pub fn spawn(shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(shared))
}

async fn run(shared: Arc<Shared>) {
    let wake = shared.lock().aof.writer_wake.clone();
    let mut open: Option<Open> = None;
    let mut last_fsync = tokio::time::Instant::now();
    loop {
        let (entries, fed, policy) = {
            let mut st = shared.lock();
            let policy = super::fsync_policy(&st);
            let (entries, fed) = st.aof.take();
            (entries, fed, policy)
        };
        let due = policy == Fsync::EverySec && last_fsync.elapsed() >= EVERYSEC;
        if !entries.is_empty() || due {
            // Written first (replies of `everysec` and `no` may go), then fsynced per policy
            // (replies of `always` may go).
            let mut outcome = process(&shared, &mut open, entries, &mut last_fsync).await;
            let failed = outcome.error.is_some();
            let left = std::mem::take(&mut outcome.left);
            let reached = report(&shared, outcome, fed, left, policy);
            if !failed {
                let synced = fsync_per_policy(&shared, &mut open, policy, &mut last_fsync).await;
                report_synced(&shared, synced, reached, policy);
            }
        }
        tokio::select! {
            biased;
            _ = wake.notified() => {}
            _ = tokio::time::sleep(EVERYSEC) => {}
        }
    }
}

/// What one round achieved: bytes written, whether everything written is fsynced, the first
/// error, and the entries left for a retry.
struct Outcome {
    written: u64,
    error: Option<String>,
    left: Vec<Entry>,
}

async fn process(
    shared: &Shared,
    open: &mut Option<Open>,
    entries: Vec<Entry>,
    last_fsync: &mut tokio::time::Instant,
) -> Outcome {
    let disk = shared.env.disk.clone();
    let mut out = Outcome { written: 0, error: None, left: Vec::new() };
    let mut iter = entries.into_iter();
    while let Some(e) = iter.next() {
        let result = match e {
            Entry::Bytes(b) => match open.as_mut() {
                Some(o) => match o.file.write_all(&b).await {
                    Ok(()) => {
                        o.unsynced = o.unsynced.saturating_add(b.len() as u64);
                        out.written = out.written.saturating_add(b.len() as u64);
                        Ok(())
                    }
                    Err(err) => {
                        // The bytes stay queued (a short write left nothing we count).
                        out.left.push(Entry::Bytes(b));
                        Err(err)
                    }
                },
                None => Ok(()),
            },
            Entry::Switch { path, append, manifest } => {
                let r = switch(&disk, open, &path, append, manifest.as_ref()).await;
                if r.is_err() {
                    // Retried with what follows it: nothing may go to the old file meanwhile.
                    out.left.push(Entry::Switch { path, append, manifest });
                }
                r
            }
            Entry::Manifest { path, text, remove, done } => {
                let r = disk.write_atomic(&path, text.as_bytes()).await;
                if r.is_ok() {
                    for p in remove {
                        tracing::info!("Removing the history file {} in the background", super::show(&p));
                        let _ = disk.remove(&p).await;
                    }
                }
                let _ = done.send(r.is_ok());
                Ok(())
            }
            Entry::Sync(done) => {
                let r = sync(open).await;
                *last_fsync = tokio::time::Instant::now();
                let _ = done.send(r.is_ok());
                r
            }
        };
        if let Err(err) = result {
            out.error = Some(crate::env::strerror(&err));
            out.left.extend(iter);
            return out;
        }
    }
    out
}

/// The fsync `appendfsync` asks for after a round of writes: Ok(true) if everything written
/// is now durable.
async fn fsync_per_policy(
    shared: &Shared,
    open: &mut Option<Open>,
    policy: Fsync,
    last_fsync: &mut tokio::time::Instant,
) -> std::io::Result<bool> {
    let fsync_now = match policy {
        Fsync::Always => true,
        Fsync::EverySec => last_fsync.elapsed() >= EVERYSEC,
        Fsync::No => false,
    };
    let skip = {
        let st = shared.lock();
        st.config.get("no-appendfsync-on-rewrite") == Some("yes")
            && st.aof.rewrite.in_progress
            && policy != Fsync::Always
    };
    if !fsync_now || skip {
        return Ok(false);
    }
    sync(open).await?;
    *last_fsync = tokio::time::Instant::now();
    Ok(true)
}

/// Moves to another incr file, after making the manifest that names it durable.
async fn switch(
    disk: &crate::env::Disk,
    open: &mut Option<Open>,
    path: &std::path::Path,
    append: bool,
    manifest: Option<&(PathBuf, String)>,
) -> std::io::Result<()> {
    if let Some(o) = open.as_mut() {
        // The old file's last writes are made durable before it is left (Redis closes it
        // with an fsync in the background).
        o.file.sync().await?;
    }
    if let Some(dir) = path.parent() {
        disk.create_dir_all(dir).await?;
    }
    let file = if append { disk.open_append(path).await? } else { disk.create(path).await? };
    if let Some((mpath, text)) = manifest {
        disk.write_atomic(mpath, text.as_bytes()).await?;
    } else {
        disk.sync_dir_of(path).await?;
    }
    tracing::info!("Opening AOF incr file {}", super::show(path));
    *open = Some(Open { file, unsynced: 0 });
    Ok(())
}

async fn sync(open: &mut Option<Open>) -> std::io::Result<()> {
    match open.as_mut() {
        Some(o) if o.unsynced > 0 => {
            o.file.sync().await?;
            o.unsynced = 0;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Records the writes under the lock and wakes waiting clients. Returns the AOF position
/// now written.
fn report(shared: &Shared, out: Outcome, fed: u64, left: Vec<Entry>, policy: Fsync) -> u64 {
    let mut st = shared.lock();
    let a = &mut st.aof;
    let left_bytes: u64 = left.iter().map(|e| if let Entry::Bytes(b) = e { b.len() as u64 } else { 0 }).sum();
    a.put_back(left);
    let reached = fed.saturating_sub(left_bytes);
    a.attempted = a.attempted.max(fed);
    a.written = a.written.max(reached);
    a.current_size = a.current_size.saturating_add(out.written);
    match out.error {
        Some(e) => record_error(shared, &mut st, e, policy),
        None => {
            if st.aof.write_error.take().is_some() {
                tracing::warn!("AOF write error looks solved, Redis can write again.");
            }
        }
    }
    let progress = st.aof.progress.clone();
    drop(st);
    progress.notify_waiters();
    reached
}

/// Records an fsync's outcome: everything up to `reached` is durable, or the error.
fn report_synced(shared: &Shared, synced: std::io::Result<bool>, reached: u64, policy: Fsync) {
    let mut st = shared.lock();
    match synced {
        Ok(true) => st.aof.synced = st.aof.synced.max(reached),
        Ok(false) => return,
        Err(e) => record_error(shared, &mut st, crate::env::strerror(&e), policy),
    }
    let progress = st.aof.progress.clone();
    drop(st);
    progress.notify_waiters();
}

/// A failed write or fsync: `-MISCONF` until one succeeds; with `always`, the server stops
/// (Redis exits rather than acknowledge a write it could not make durable).
fn record_error(shared: &Shared, st: &mut crate::server::State, e: String, policy: Fsync) {
    if st.aof.write_error.is_none() {
        tracing::warn!("Error writing to the AOF file: {e}");
    }
    st.aof.write_error = Some(e);
    if policy == Fsync::Always {
        tracing::warn!("Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting...");
        st.aof.fatal = true;
        st.shutdown = Some(crate::server::ShutdownMode::NoSave);
        shared.shutdown_notify.notify_one();
    }
}
