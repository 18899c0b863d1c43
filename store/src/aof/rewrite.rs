//! AOF rewrites (`BGREWRITEAOF`, automatic ones, `appendonly yes` at run time, the first base
//! at start-up, and after a replica's full sync), as Redis 7.0 sequences them:
//! 1. [`begin`], under the lock: a point-in-time snapshot, and (AOF on) a new incr file that
//!    every later write goes to. When the AOF is on, the manifest naming that incr file is made
//!    durable by the writer before the first byte goes into it; while the AOF is being turned
//!    on, the manifest is left alone until the rewrite ends.
//! 2. [`run`], off the lock: the snapshot is encoded as an RDB image (`aof-base` aux field),
//!    written to `<dir>/temp-rewriteaof-bg-<n>.aof`, fsynced, renamed into the AOF directory
//!    as the new base.
//! 3. The new manifest (new base, the current incr, the old files as history or removed) is
//!    made durable by the writer, in order with everything else it writes; then the state is
//!    updated.

use std::path::PathBuf;
use std::sync::Arc;

use super::manifest::{AofFile, FileType, Manifest};
use super::{Entry, Status};
use crate::db::DbSnapshot;
use crate::rdb::AuxFields;
use crate::server::{Shared, State};

#[derive(Clone, Debug)]
pub struct RewriteStats {
    pub in_progress: bool,
    pub scheduled: bool,
    pub started_ms: i64,
    pub last_secs: i64,
    pub last_ok: bool,
    /// Rewrites started (`aof_rewrites`).
    pub started: u64,
    pub consecutive_failures: u64,
    pub last_failure_ms: i64,
    /// Bumped when the dataset is replaced (a replica's full sync): a rewrite of the old
    /// dataset still running must not become the AOF.
    pub generation: u64,
}

impl Default for RewriteStats {
    fn default() -> RewriteStats {
        RewriteStats {
            in_progress: false,
            scheduled: false,
            started_ms: 0,
            last_secs: -1,
            last_ok: true,
            started: 0,
            consecutive_failures: 0,
            last_failure_ms: 0,
            generation: 0,
        }
    }
}

/// A rewrite under way.
pub struct Job {
    snapshots: Vec<DbSnapshot>,
    aux: AuxFields,
    base: AofFile,
    /// The incr file the rewrite opened (None when the AOF is off).
    incr: Option<AofFile>,
    /// Bytes fed before the rewrite began (the new incr holds what follows).
    fed_at_start: u64,
    generation: u64,
    /// Write the base as commands instead of an RDB image.
    commands: bool,
    /// `aof-timestamp-enabled`: a commands base starts with `#TS:<secs>`.
    timestamp: Option<i64>,
}

pub const STARTED: &str = "Background append only file rewriting started";
pub const SCHEDULED: &str = "Background append only file rewriting scheduled";
pub const ALREADY: &str = "ERR Background append only file rewriting already in progress";

/// BGREWRITEAOF (and `appendonly yes`): starts a rewrite now, or schedules it while a save
/// runs or inside a transaction. Ok is the status reply, Err the error reply.
pub fn start(shared: &Arc<Shared>) -> Result<&'static str, &'static str> {
    let job = {
        let mut st = shared.lock();
        if st.aof.rewrite.in_progress {
            return Err(ALREADY);
        }
        if crate::persistence::busy(&st) || st.repl.in_exec {
            st.aof.rewrite.scheduled = true;
            return Ok(SCHEDULED);
        }
        let now = shared.env.clock.now_ms();
        begin(&mut st, now)
    };
    tokio::spawn(run(shared.clone(), job));
    Ok(STARTED)
}

/// Step 1, under the lock.
pub fn begin(st: &mut State, now_ms: i64) -> Job {
    assert!(!st.aof.rewrite.in_progress, "one rewrite at a time");
    let name = super::file_name(st);
    let snapshots = st.ks.dbs.iter().map(|db| db.snapshot()).collect();
    let aux = AuxFields {
        ctime: now_ms / 1000,
        used_mem: crate::alloc::used_memory() as u64,
        aof_base: true,
        ..AuxFields::default()
    };
    let base_seq = st.aof.manifest.base_seq.saturating_add(1);
    // `aof-use-rdb-preamble no`: the base is commands (`.base.aof`), as Redis writes it then.
    let commands = st.config.get("aof-use-rdb-preamble") == Some("no");
    let ext = if commands { "aof" } else { "rdb" };
    let base = AofFile { name: format!("{name}.{base_seq}.base.{ext}"), seq: base_seq, kind: FileType::Base };
    let timestamp = (st.config.get("aof-timestamp-enabled") == Some("yes")).then_some(now_ms / 1000);
    let incr = (st.aof.status != Status::Off).then(|| {
        let seq = st.aof.manifest.incr_seq.saturating_add(1);
        AofFile { name: format!("{name}.{seq}.incr.aof"), seq, kind: FileType::Incr }
    });
    if let Some(f) = &incr {
        let path = super::in_dir(st, &f.name);
        let manifest = (st.aof.status == Status::On).then(|| {
            let mut m = st.aof.manifest.clone();
            m.incrs.push(f.clone());
            m.incr_seq = f.seq;
            let text = m.render();
            st.aof.manifest = m;
            (super::manifest_path(st), text)
        });
        tracing::info!("Creating AOF incr file {} on background rewrite", f.name);
        st.aof.push(Entry::Switch { path: path.clone(), append: false, manifest });
        st.aof.target = Some(path);
        // Every incr file starts with its SELECT.
        st.aof.selected_db = None;
    }
    let r = &mut st.aof.rewrite;
    r.in_progress = true;
    r.scheduled = false;
    r.started_ms = now_ms;
    r.started = r.started.saturating_add(1);
    crate::fault::probe("aof.rewrite_started");
    Job {
        snapshots,
        aux,
        base,
        incr,
        fed_at_start: st.aof.fed,
        generation: st.aof.rewrite.generation,
        commands,
        timestamp,
    }
}

/// Steps 2 and 3, off the lock.
pub async fn run(shared: Arc<Shared>, job: Job) {
    tracing::info!("Background append only file rewriting started");
    let ok = match write_base(&shared, &job).await {
        Ok(size) => swap_manifest(&shared, &job, size).await,
        Err(e) => {
            tracing::warn!("Write error writing append only file on disk: {e}");
            false
        }
    };
    let mut st = shared.lock();
    let now = shared.env.clock.now_ms();
    let r = &mut st.aof.rewrite;
    r.in_progress = false;
    r.last_secs = now.saturating_sub(r.started_ms) / 1000;
    r.last_ok = ok;
    if ok {
        r.consecutive_failures = 0;
        tracing::info!("Background AOF rewrite finished successfully");
        crate::fault::probe("aof.rewrite_done");
    } else {
        r.consecutive_failures = r.consecutive_failures.saturating_add(1);
        r.last_failure_ms = now;
        tracing::warn!("Background AOF rewrite terminated with error");
        if st.aof.status == Status::WaitRewrite {
            // Turning the AOF on is retried from the cron.
            st.aof.rewrite.scheduled = true;
        }
    }
}

/// Writes the new base durably; returns its size.
async fn write_base(shared: &Shared, job: &Job) -> std::io::Result<u64> {
    let image = if job.commands {
        commands_base(&job.snapshots, job.timestamp)
    } else {
        crate::persistence::encode_off_thread(job.snapshots.clone(), job.aux.clone()).await?
    };
    let (dir, tmp) = {
        let st = shared.lock();
        let dir = super::dir(&st);
        let tmp = PathBuf::from(st.config.hot.dir.as_str()).join(format!("temp-rewriteaof-bg-{}.aof", job.base.seq));
        (dir, tmp)
    };
    let disk = &shared.env.disk;
    disk.create_dir_all(&dir).await?;
    let mut f = disk.create(&tmp).await?;
    for chunk in image.chunks(crate::env::DISK_WRITE_CHUNK_BYTES) {
        f.write_all(chunk).await?;
    }
    f.sync().await?;
    drop(f);
    let target = dir.join(&job.base.name);
    disk.rename(&tmp, &target).await?;
    disk.sync_dir_of(&target).await?;
    tracing::info!("Successfully renamed the temporary AOF base file into {}", job.base.name);
    Ok(image.len() as u64)
}

/// The manifest after the rewrite: the new base, the incr opened at its start, the rest as
/// history (removed at once unless `aof-disable-auto-gc yes`).
async fn swap_manifest(shared: &Shared, job: &Job, base_size: u64) -> bool {
    let (rx, next) = {
        let mut st = shared.lock();
        if st.aof.rewrite.generation != job.generation {
            tracing::warn!("Background AOF rewrite of a dataset since replaced: discarded");
            return false;
        }
        let old = st.aof.manifest.clone();
        let mut history: Vec<AofFile> = Vec::new();
        for f in old.incrs.iter().rev().filter(|f| Some(&f.name) != job.incr.as_ref().map(|i| &i.name)) {
            history.push(AofFile { kind: FileType::History, ..f.clone() });
        }
        if let Some(b) = &old.base {
            history.push(AofFile { kind: FileType::History, ..b.clone() });
        }
        history.extend(old.history.iter().cloned());
        let gc = st.config.get("aof-disable-auto-gc") != Some("yes");
        let remove: Vec<PathBuf> =
            if gc { history.iter().map(|f| super::in_dir(&st, &f.name)).collect() } else { Vec::new() };
        let next = Manifest {
            base: Some(job.base.clone()),
            history: if gc { Vec::new() } else { history },
            incrs: job.incr.iter().filter(|_| !crate::fault::planted("aof-manifest-drops-incr")).cloned().collect(),
            base_seq: job.base.seq,
            incr_seq: job.incr.as_ref().map(|i| i.seq).unwrap_or(old.incr_seq).max(old.incr_seq),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let path = super::manifest_path(&st);
        st.aof.push(Entry::Manifest { path, text: next.render(), remove, done: tx });
        (rx, next)
    };
    if !rx.await.unwrap_or(false) {
        return false;
    }
    let mut st = shared.lock();
    let since = st.aof.fed.saturating_sub(job.fed_at_start);
    st.aof.manifest = next;
    st.aof.base_size = base_size.saturating_add(since);
    st.aof.current_size = base_size.saturating_add(since);
    // A full sync that replaced the dataset while the manifest was being written restarted
    // the AOF (`restart_after_full_sync`): the manifest on disk is this rewrite's, but the AOF
    // stays waiting for the next rewrite, which records the new dataset. Turning it on here
    // would leave it "on" with no file to record into, and every write until that rewrite
    // began would be missing from it.
    if st.aof.rewrite.generation != job.generation {
        tracing::warn!("Background AOF rewrite of a dataset since replaced: discarded");
        return false;
    }
    if st.aof.status == Status::WaitRewrite {
        st.aof.status = Status::On;
        tracing::info!("AOF rewrite finished: the append only file is now on");
    }
    debug_assert!(st.aof.status != Status::On || st.aof.target.is_some());
    true
}

/// The cron's part (`serverCron`): a scheduled rewrite once nothing else runs, and the
/// automatic rewrite on growth; after three failures in a row, retries back off from one
/// minute to an hour.
pub fn cron(shared: &Arc<Shared>, now_ms: i64) {
    let due = {
        let st = shared.lock();
        let r = &st.aof.rewrite;
        if r.in_progress || crate::persistence::busy(&st) || limited(r, now_ms) {
            false
        } else if r.scheduled {
            true
        } else {
            growth_due(&st)
        }
    };
    if due {
        let _ = start(shared);
    }
}

fn growth_due(st: &State) -> bool {
    let perc = st.config.get_i64("auto-aof-rewrite-percentage");
    let min_size = st.config.get_i64("auto-aof-rewrite-min-size");
    let a = &st.aof;
    if a.status != Status::On || perc <= 0 || (a.current_size as i64) <= min_size {
        return false;
    }
    let base = (a.base_size as i64).max(1);
    let growth = (a.current_size as i64).saturating_mul(100).checked_div(base).unwrap_or(0).saturating_sub(100);
    if growth >= perc {
        tracing::info!("Starting automatic rewriting of AOF on {growth}% growth");
        return true;
    }
    false
}

fn limited(r: &RewriteStats, now_ms: i64) -> bool {
    if r.consecutive_failures < 3 {
        return false;
    }
    let minutes = 1i64 << (r.consecutive_failures.saturating_sub(3)).min(6);
    now_ms.saturating_sub(r.last_failure_ms) < minutes.min(60).saturating_mul(60_000)
}

/// A replica loaded its master's snapshot: the AOF restarts from the new dataset (Redis's
/// `stopAppendOnly` + `startAppendOnly`). The files on disk keep naming the old dataset, whole,
/// until the new base is written; writes made meanwhile go only to the new incr file.
pub fn restart_after_full_sync(st: &mut State, now_ms: i64) -> Option<Job> {
    if st.aof.status == Status::Off {
        return None;
    }
    st.aof.status = Status::WaitRewrite;
    st.aof.target = None;
    st.aof.rewrite.generation = st.aof.rewrite.generation.saturating_add(1);
    crate::fault::probe("aof.restarted_after_full_sync");
    if st.aof.rewrite.in_progress {
        st.aof.rewrite.scheduled = true;
        return None;
    }
    Some(begin(st, now_ms))
}

/// Commands per key in a commands base (`AOF_REWRITE_ITEMS_PER_CMD`).
const ITEMS_PER_COMMAND: usize = 64;

/// A base of commands (`rewriteAppendOnlyFileRio`): per non-empty database a SELECT, per key
/// SET, RPUSH, SADD, ZADD or HMSET (at most 64 items per command), then PEXPIREAT for a TTL.
pub fn commands_base(snapshots: &[DbSnapshot], timestamp: Option<i64>) -> Vec<u8> {
    use crate::db::Value;
    let mut out = bytes::BytesMut::new();
    if let Some(ts) = timestamp {
        out.extend_from_slice(format!("#TS:{ts}\r\n").as_bytes());
    }
    let cmd = |out: &mut bytes::BytesMut, args: &[&[u8]]| crate::protocol::encode_command(out, args);
    for (index, snap) in snapshots.iter().enumerate() {
        let mut entries = snap.iter().peekable();
        if entries.peek().is_none() {
            continue;
        }
        let db = index.to_string();
        cmd(&mut out, &[b"SELECT", db.as_bytes()]);
        for (key, value, expire) in entries {
            match value {
                Value::Str(v) => cmd(&mut out, &[b"SET", key, v]),
                Value::List(items) => {
                    let items: Vec<&[u8]> = items.iter().map(|i| &i[..]).collect();
                    batched(&mut out, b"RPUSH", key, &items);
                }
                Value::Set(members) => {
                    let members: Vec<&[u8]> = members.iter().map(|m| &m[..]).collect();
                    batched(&mut out, b"SADD", key, &members);
                }
                Value::ZSet(z) => {
                    let scores: Vec<String> =
                        z.ordered.iter().map(|(s, _)| crate::protocol::format_double(s.0)).collect();
                    let pairs: Vec<&[u8]> =
                        z.ordered.iter().zip(scores.iter()).flat_map(|((_, m), s)| [s.as_bytes(), &m[..]]).collect();
                    batched_pairs(&mut out, b"ZADD", key, &pairs);
                }
                Value::Hash(h) => {
                    let pairs: Vec<&[u8]> = h.iter().flat_map(|(f, v)| [&f[..], &v[..]]).collect();
                    batched_pairs(&mut out, b"HMSET", key, &pairs);
                }
            }
            if let Some(at) = expire {
                let at = at.to_string();
                cmd(&mut out, &[b"PEXPIREAT", key, at.as_bytes()]);
            }
        }
    }
    out.to_vec()
}

fn batched(out: &mut bytes::BytesMut, name: &[u8], key: &[u8], items: &[&[u8]]) {
    for chunk in items.chunks(ITEMS_PER_COMMAND) {
        let mut args: Vec<&[u8]> = vec![name, key];
        args.extend_from_slice(chunk);
        crate::protocol::encode_command(out, &args);
    }
}

/// Items that come in pairs (score member, field value): 64 pairs per command.
fn batched_pairs(out: &mut bytes::BytesMut, name: &[u8], key: &[u8], items: &[&[u8]]) {
    for chunk in items.chunks(ITEMS_PER_COMMAND.saturating_mul(2)) {
        let mut args: Vec<&[u8]> = vec![name, key];
        args.extend_from_slice(chunk);
        crate::protocol::encode_command(out, &args);
    }
}
