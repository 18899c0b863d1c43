//! RDB persistence: SAVE, BGSAVE, save points, loading at start-up, saving at shutdown.
//!
//! Why it is shaped this way: a save is split in three steps so that clients are never stalled
//! by disk I/O or encoding.
//! 1. [`prepare`] runs under the server lock and takes a point-in-time snapshot of every
//!    database. The keyspace is copy-on-write (see `db/mod.rs`), so this costs one `Arc` clone
//!    per shard, whatever the dataset size: this is our `fork()`.
//! 2. [`write`] runs without the lock: it encodes the snapshot (the `rdb` module) and streams it
//!    to `<dbfilename>.tmp` in bounded chunks through the disk seam, fsyncs it, renames it over
//!    `dbfilename` and fsyncs the directory, as Redis does. A crash at any point leaves either
//!    the previous complete file or the new complete file under the name, never a mix.
//! 3. [`finish`] runs under the lock again: it records the outcome (`LASTSAVE`, INFO fields,
//!    the dirty counter, the MISCONF state) and reports the save to the observer.
//!
//! SAVE uses the same three steps and answers when the file is durable; unlike Redis it does
//! not block other clients meanwhile (they see the same point-in-time file either way).
//! Loading happens before the server accepts connections; a corrupt or truncated file stops
//! start-up with a clear message instead of starting empty.
//!
//! Save points are configured values (`save 9223372036854775807 1` is accepted, as in Redis) and
//! the clock may jump: arithmetic on them saturates (issue 12).

use std::io;
use std::path::PathBuf;

use crate::db::{DbSnapshot, ExpirePolicy, Keyspace};
use crate::env::{Disk, DISK_WRITE_CHUNK_BYTES};
use crate::rdb::{AuxFields, RdbWriter};
use crate::server::State;

/// What INFO persistence reports and what save points need.
#[derive(Clone, Debug)]
pub struct SaveState {
    pub bgsave_in_progress: bool,
    /// A foreground SAVE (or the shutdown save) is writing: saves never run concurrently, they
    /// would share the temporary file.
    pub save_in_progress: bool,
    pub bgsave_started_ms: i64,
    pub last_bgsave_ok: bool,
    pub last_bgsave_duration_s: i64,
    /// Last attempt (success or failure), for the retry delay after a failure.
    pub last_attempt_ms: i64,
    pub saves_total: u64,
}

impl Default for SaveState {
    fn default() -> SaveState {
        SaveState {
            bgsave_in_progress: false,
            save_in_progress: false,
            bgsave_started_ms: 0,
            last_bgsave_ok: true,
            last_bgsave_duration_s: -1,
            last_attempt_ms: 0,
            saves_total: 0,
        }
    }
}

/// Redis waits this long before retrying a failed background save from the save points.
pub const BGSAVE_RETRY_DELAY_MS: i64 = 5_000;

/// A snapshot ready to be written.
pub struct SaveJob {
    snapshots: Vec<DbSnapshot>,
    aux: AuxFields,
    pub path: PathBuf,
    /// Changes the snapshot covers (subtracted from `dirty` on success).
    dirty_at_start: u64,
    pub started_ms: i64,
    /// Dataset digest at the snapshot (simulation: what a later load must reproduce).
    pub digest: Option<crate::db::digest::Digest>,
}

/// `dir/dbfilename`.
pub fn rdb_path(st: &State) -> PathBuf {
    let dir = st.config.hot.dir.as_str();
    let file = st.config.hot.dbfilename.as_str();
    PathBuf::from(dir).join(file)
}

/// Whether any save point is configured (`save` not empty).
pub fn save_points(st: &State) -> Vec<(i64, u64)> {
    st.config.hot.save_points.clone()
}

/// Step 1, under the lock: the point-in-time snapshot.
pub fn prepare(st: &mut State, now_ms: i64) -> SaveJob {
    let snapshots = st.ks.dbs.iter().map(|db| db.snapshot()).collect();
    let digest = st.observer.as_ref().map(|_| crate::db::digest::digest_all(&st.ks.dbs));
    if let (Some(obs), Some(d)) = (&st.observer, digest) {
        obs.emit(crate::observe::Observation::SaveStarted { digest: d });
    }
    // The replication id and offset are saved only when the offset means something (Redis's
    // rdbPopulateSaveInfo): a master counts its stream only once it has a backlog (writes made
    // before do not move the offset, so "offset 0" would name different datasets), and a replica
    // only once it holds its master's data at a known point.
    let meaningful = if st.repl.is_replica() { st.repl.has_history } else { st.repl.backlog.is_some() };
    let aux = AuxFields {
        ctime: now_ms / 1000,
        used_mem: crate::alloc::used_memory() as u64,
        repl: meaningful.then(|| crate::rdb::ReplAux {
            // A master saves the database its stream is in (Redis's slaveseldb), not 0: a node
            // restarted from this file continues the stream there.
            stream_db: if st.repl.is_replica() { st.repl.master_db as i64 } else { st.repl.stream_db() as i64 },
            id: st.repl.replid.clone(),
            offset: st.repl.offset,
        }),
        ..AuxFields::default()
    };
    SaveJob { snapshots, aux, path: rdb_path(st), dirty_at_start: st.dirty, started_ms: now_ms, digest }
}

/// A snapshot of every database plus the aux fields, for a full resync (no observation: it is
/// not a save).
pub fn snapshot_for_sync(st: &State, now_ms: i64) -> (Vec<DbSnapshot>, AuxFields) {
    let snapshots = st.ks.dbs.iter().map(|db| db.snapshot()).collect();
    let aux = AuxFields {
        ctime: now_ms / 1000,
        used_mem: crate::alloc::used_memory() as u64,
        // The database the stream is in at this offset: a master forces a SELECT after a full
        // sync, but a replica relays its master's stream, which may be in any database.
        repl: Some(crate::rdb::ReplAux {
            stream_db: if st.repl.is_replica() { st.repl.master_db as i64 } else { 0 },
            id: st.repl.replid.clone(),
            offset: st.repl.offset,
        }),
        ..AuxFields::default()
    };
    (snapshots, aux)
}

/// Encodes snapshots into one RDB image in memory (full resync payload).
pub fn encode_snapshots(snapshots: &[DbSnapshot], aux: &AuxFields) -> io::Result<Vec<u8>> {
    encode_snapshots_with(snapshots, aux, &mut || {})
}

/// Entries encoded between two calls of the caller's `tick` (a few tens of microseconds).
pub const ENCODE_TICK_ENTRIES: u32 = 256;

/// As `encode_snapshots`, calling `tick` every `ENCODE_TICK_ENTRIES` entries.
pub fn encode_snapshots_with(snapshots: &[DbSnapshot], aux: &AuxFields, tick: &mut dyn FnMut()) -> io::Result<Vec<u8>> {
    let mut entries: u32 = 0;
    let mut writer = RdbWriter::new(Vec::new());
    writer.write_header(aux)?;
    for (index, snap) in snapshots.iter().enumerate() {
        let size: u64 = snap.shards.iter().map(|s| s.map.len() as u64).sum();
        if size == 0 {
            continue;
        }
        let expires: u64 = snap.shards.iter().map(|s| s.expires.len() as u64).sum();
        writer.begin_db(index as u64, size, expires)?;
        for (key, value, expire) in snap.iter() {
            writer.write_entry(key, value, expire)?;
            entries = entries.wrapping_add(1);
            if entries % ENCODE_TICK_ENTRIES == 0 {
                tick();
            }
        }
    }
    writer.finish()
}

/// Encodes snapshots away from the threads that serve clients. Encoding a large dataset is
/// CPU work of a second or more; on the serving thread it would stall every client (the p99 a
/// BGSAVE costs). In production it runs on tokio's blocking pool; in simulation it runs inline
/// (madsim has one thread and simulated time, so nothing is stalled that a checker can see).
pub async fn encode_off_thread(snapshots: Vec<DbSnapshot>, aux: AuxFields) -> io::Result<Vec<u8>> {
    #[cfg(not(madsim))]
    {
        tokio::task::spawn_blocking(move || {
            lower_thread_priority();
            // Yield the core every few tens of microseconds: a pure CPU loop keeps it for a
            // whole scheduler slice (milliseconds) even when niced, and a client thread that
            // wakes meanwhile waits that long (measured: GET p99 during back-to-back BGSAVEs
            // went from ~2.1 ms to ~0.85 ms, 0.5 ms idle). When nothing else wants the core
            // the yield returns at once.
            encode_snapshots_with(&snapshots, &aux, &mut std::thread::yield_now)
        })
        .await
        .map_err(|e| io::Error::other(format!("encoder task failed: {e}")))?
    }
    #[cfg(madsim)]
    {
        encode_snapshots(&snapshots, &aux)
    }
}

/// The encoder is background work: when it competes for a core with the thread that serves
/// clients, the serving thread should mostly win, or a BGSAVE shows up as client latency
/// (Redis's forked child competes the same way; `bgsave_cpulist` is its knob). A nice value,
/// not SCHED_IDLE: an idle-class thread can starve forever on a busy machine, and a full sync
/// waiting on it would never finish. Linux nice values are per thread, so this lowers only the
/// blocking-pool thread that runs it, which stays niced afterwards (raising it back needs
/// privileges; the pool only ever runs background file work). A failure is harmless.
#[cfg(not(madsim))]
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread's own id; no memory is passed.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, BACKGROUND_NICE);
    }
}

/// The nice value of the snapshot encoder (0 is normal, 19 the lowest priority).
#[cfg(not(madsim))]
const BACKGROUND_NICE: libc::c_int = 10;

/// Step 2, without the lock: encode (off the serving threads) and write durably in bounded
/// chunks: temporary file, fsync, rename, directory fsync. Returns the file size. The image is
/// held in memory once while it is written (the price of encoding off-thread).
pub async fn write(job: &SaveJob, disk: &Disk) -> io::Result<u64> {
    let image = encode_off_thread(job.snapshots.clone(), job.aux.clone()).await?;
    let tmp = crate::env::temp_path(&job.path);
    let mut file = disk.create(&tmp).await?;
    for chunk in image.chunks(DISK_WRITE_CHUNK_BYTES) {
        // Each chunk is a point where a simulated crash can land.
        file.write_all(chunk).await?;
    }
    let written = image.len() as u64;
    if crate::fault::planted("rename-before-fsync") {
        // The planted bug: the name is switched before the data is durable.
        drop(file);
        disk.rename(&tmp, &job.path).await?;
        disk.sync_dir_of(&job.path).await?;
        return Ok(written);
    }
    file.sync().await?;
    drop(file);
    disk.rename(&tmp, &job.path).await?;
    disk.sync_dir_of(&job.path).await?;
    Ok(written)
}

/// Step 3, under the lock: record the outcome.
pub fn finish(st: &mut State, job: &SaveJob, result: &io::Result<u64>, now_ms: i64, background: bool) {
    st.save.last_attempt_ms = now_ms;
    st.save.last_bgsave_duration_s = (now_ms.saturating_sub(job.started_ms) / 1000).max(0);
    if background {
        st.save.bgsave_in_progress = false;
    } else {
        st.save.save_in_progress = false;
    }
    match result {
        Ok(bytes) => {
            st.dirty = st.dirty.saturating_sub(job.dirty_at_start);
            st.lastsave_ms = now_ms;
            st.save.last_bgsave_ok = true;
            st.save.saves_total = st.save.saves_total.saturating_add(1);
            tracing::info!("DB saved on disk ({bytes} bytes)");
            crate::fault::probe(if background { "persist.bgsave_ok" } else { "persist.save_ok" });
            if let (Some(obs), Some(digest)) = (&st.observer, job.digest) {
                obs.emit(crate::observe::Observation::Saved { digest });
            }
        }
        Err(e) => {
            st.save.last_bgsave_ok = false;
            tracing::warn!("Failed saving the DB: {e}");
            crate::fault::probe("persist.save_failed");
        }
    }
}

/// Whether a save is being written.
pub fn busy(st: &State) -> bool {
    st.save.bgsave_in_progress || st.save.save_in_progress
}

/// Whether write commands must be refused (`stop-writes-on-bgsave-error`, MISCONF).
pub fn writes_refused(st: &State) -> bool {
    !st.save.last_bgsave_ok && st.config.hot.stop_writes_on_bgsave_error && !st.config.hot.save_points.is_empty()
}

pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// Whether a save point asks for a background save now.
pub fn save_point_due(st: &State, now_ms: i64) -> bool {
    if busy(st) || st.dirty == 0 {
        return false;
    }
    if !st.save.last_bgsave_ok && now_ms.saturating_sub(st.save.last_attempt_ms) < BGSAVE_RETRY_DELAY_MS {
        return false;
    }
    save_points(st)
        .iter()
        .any(|&(secs, changes)| st.dirty >= changes && save_period_elapsed(now_ms, st.lastsave_ms, secs))
}

/// Whether `secs` seconds have passed since `lastsave_ms`. A period too long for milliseconds
/// in an i64 (292 million years) saturates, so it does not elapse in any real clock's range.
fn save_period_elapsed(now_ms: i64, lastsave_ms: i64, secs: i64) -> bool {
    now_ms.saturating_sub(lastsave_ms) >= secs.saturating_mul(1000)
}

/// Loads `dir/dbfilename` into the keyspace at start-up. A missing file is an empty dataset; a
/// corrupt one is an error that stops start-up. Every key is loaded as the file holds it; on a
/// master the keys already expired are listed in the result, for the caller to delete once the
/// replication state is known (Redis feeds their DELs to the backlog, so that replicas which
/// continue from the file's offset delete them too).
pub async fn load(st: &mut State, disk: &Disk, now_ms: i64) -> Result<Option<LoadInfo>, String> {
    let path = rdb_path(st);
    let bytes = match disk.read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(obs) = &st.observer {
                obs.emit(crate::observe::Observation::Loaded { digest: [0; 3], keys: 0 });
            }
            return Ok(None);
        }
        Err(e) => return Err(format!("Fatal error loading the DB {}: {e}. Exiting.", path.display())),
    };
    let data = crate::rdb::decode(&bytes, st.ks.dbs.len(), &st.ks.hasher())
        .map_err(|e| format!("Short read or corrupt RDB loading {}: {e}. Exiting.", path.display()))?;
    let mut keys = 0u64;
    let mut expired_keys = Vec::new();
    let drop_expired = st.ks.policy == ExpirePolicy::Delete;
    for (index, entries) in data.dbs.into_iter().enumerate() {
        for (key, value, expire) in entries {
            if drop_expired && expire.is_some_and(|t| t <= now_ms) {
                expired_keys.push((index, key.clone()));
            }
            insert(&mut st.ks, index, key, value, expire);
            keys = keys.saturating_add(1);
        }
    }
    let expired = expired_keys.len() as u64;
    if st.observer.is_some() {
        st.tracking.digest = crate::db::digest::digest_all(&st.ks.dbs);
        let obs = st.observer.clone().expect("checked");
        obs.emit(crate::observe::Observation::Loaded { digest: st.tracking.digest, keys });
    }
    crate::fault::probe("persist.loaded");
    tracing::info!("DB loaded from disk: {keys} keys ({expired} already expired, to be deleted)");
    Ok(Some(LoadInfo {
        keys,
        expired_skipped: expired,
        expired_keys,
        repl_id: data.repl_id,
        repl_offset: data.repl_offset,
        repl_stream_db: data.repl_stream_db,
    }))
}

fn insert(ks: &mut Keyspace, db: usize, key: crate::sds::Sds, value: crate::db::Value, expire: Option<i64>) {
    ks.dbs[db].insert(key.clone(), value, false);
    if let Some(t) = expire {
        ks.dbs[db].set_expire(&key, t);
    }
}

/// What a load found (replication will use the replication id and offset).
#[derive(Clone, Debug)]
pub struct LoadInfo {
    pub keys: u64,
    pub expired_skipped: u64,
    /// On a master: the keys the file held that had already expired (see [`load`]).
    pub expired_keys: Vec<(usize, crate::sds::Sds)>,
    pub repl_id: Option<String>,
    pub repl_offset: Option<i64>,
    pub repl_stream_db: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_points_of_any_length_never_overflow() {
        // `save 9223372036854775807 1` is a valid configuration: `secs * 1000` overflowed (a
        // panic in debug builds; in release it wrapped negative and saved on every cron tick).
        assert!(!save_period_elapsed(1_000_000, 0, i64::MAX));
        // Clock extremes (a jump backwards past the last save) saturate too.
        assert!(!save_period_elapsed(i64::MIN, i64::MAX, 0));
        assert!(save_period_elapsed(i64::MAX, i64::MIN, 1));
        assert!(save_period_elapsed(61_000, 1_000, 60));
        assert!(!save_period_elapsed(60_999, 1_000, 60));
        let env = crate::env::Env::production();
        let mut st = State::new(crate::config::Config::new(), &env, 6380);
        st.config.set("save", "9223372036854775807 1").expect("a valid save point");
        st.dirty = 10;
        assert!(!save_point_due(&st, 1_000_000));
    }
}
