//! The seams between the server and the world: clock, randomness and disk.
//!
//! Why this module exists: the same server code runs in production on real tokio and inside the
//! madsim simulator. madsim already simulates the network, timers and task scheduling, but it
//! has one global clock (no per-node skew), and its `tokio::fs` is the *real* disk shared by all
//! simulated nodes. So every source of time-of-day, randomness and persistence goes through an
//! [`Env`] that the process (or the simulated cluster) hands to the server at start-up:
//!
//! - [`Clock`]: wall-clock milliseconds (expiry, `TIME`, `LASTSAVE`) with a per-node offset that
//!   the simulation moves to inject skew and jumps. Monotonic durations use `tokio::time`, which
//!   madsim simulates.
//! - [`Rng`]: one seeded ChaCha stream per node. Run IDs, `RANDOMKEY`, `SPOP` and hash seeds all
//!   draw from it, so a seed fixes every "random" choice.
//! - [`Disk`]: the real file system in production, or a [`SimDisk`] that models what a crash
//!   loses (unsynced writes, torn tails) in simulation.
//!
//! The clock's skew can be any jump a simulation injects: clock arithmetic saturates rather than
//! overflow (issue 12).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Everything a server node needs from the world it runs in.
#[derive(Clone)]
pub struct Env {
    pub clock: Clock,
    pub rng: Rng,
    pub disk: Disk,
    /// Where the server reports its writes (simulation); None in production.
    pub observer: Option<crate::observe::Observer>,
}

impl Env {
    /// Production environment: real disk, OS-seeded randomness, no skew.
    pub fn production() -> Env {
        let mut seed = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Env { clock: Clock::new(), rng: Rng::new(u64::from_le_bytes(seed)), disk: Disk::Real, observer: None }
    }

    /// Simulated environment: every choice derives from `seed`; the disk is the node's own.
    pub fn simulated(seed: u64, disk: Arc<SimDisk>, clock: Clock) -> Env {
        Env { clock, rng: Rng::new(seed), disk: Disk::Sim(disk), observer: None }
    }
}

/// Wall-clock time with an injectable per-node offset and drift.
///
/// Under madsim `SystemTime::now()` is the simulated clock (madsim interposes
/// `clock_gettime`), and there is one clock for all nodes, so what this type adds is each node's
/// own error: a skew (jumps, as NTP corrections and VM migrations make) and a drift (a rate, in
/// parts per million, as a fast or slow oscillator makes), so timeouts and TTLs on different
/// nodes disagree as they do on real machines.
#[derive(Clone, Default)]
pub struct Clock {
    skew_ms: Arc<AtomicI64>,
    drift_ppm: Arc<AtomicI64>,
    /// The real time (ms) from which the current drift accumulates.
    drift_origin_ms: Arc<AtomicI64>,
}

/// The largest drift a clock may be given: 10%, far beyond real oscillators, so that a rate
/// error is visible within a short simulated run.
pub const CLOCK_DRIFT_PPM_MAX: i64 = 100_000;

impl Clock {
    pub fn new() -> Clock {
        Clock::default()
    }

    fn real_ms() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }

    /// The node's error now: skew plus the drift accumulated since it was set.
    fn error_ms(&self, real_ms: i64) -> i64 {
        let ppm = self.drift_ppm.load(Ordering::Relaxed);
        let since = real_ms.saturating_sub(self.drift_origin_ms.load(Ordering::Relaxed)).max(0);
        let drift = since.saturating_mul(ppm).checked_div(1_000_000).unwrap_or(0);
        self.skew_ms.load(Ordering::Relaxed).saturating_add(drift)
    }

    /// Milliseconds since the Unix epoch, as this node believes.
    pub fn now_ms(&self) -> i64 {
        let real = Self::real_ms();
        real.saturating_add(self.error_ms(real))
    }

    /// Microseconds since the Unix epoch (for `TIME`).
    pub fn now_us(&self) -> i64 {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        real.saturating_add(self.error_ms(real / 1000).saturating_mul(1000))
    }

    /// Sets this node's drift (parts per million, clamped to ±[`CLOCK_DRIFT_PPM_MAX`]); the error
    /// accumulated so far is kept as skew, so the clock does not jump when its rate changes.
    pub fn set_drift_ppm(&self, ppm: i64) {
        let real = Self::real_ms();
        let error = self.error_ms(real);
        self.skew_ms.store(error, Ordering::Relaxed);
        self.drift_origin_ms.store(real, Ordering::Relaxed);
        self.drift_ppm.store(ppm.clamp(-CLOCK_DRIFT_PPM_MAX, CLOCK_DRIFT_PPM_MAX), Ordering::Relaxed);
    }

    pub fn drift_ppm(&self) -> i64 {
        self.drift_ppm.load(Ordering::Relaxed)
    }

    /// Moves this node's clock by `delta_ms` (may be negative: a backward jump).
    pub fn jump_ms(&self, delta_ms: i64) {
        self.skew_ms.fetch_add(delta_ms, Ordering::Relaxed);
    }

    /// The node's total error now (skew and accumulated drift).
    pub fn skew_ms(&self) -> i64 {
        self.error_ms(Self::real_ms())
    }
}

/// The node's seeded random stream.
#[derive(Clone)]
pub struct Rng {
    inner: Arc<Mutex<ChaCha8Rng>>,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { inner: Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed))) }
    }

    pub fn next_u64(&self) -> u64 {
        self.inner.lock().expect("rng lock").next_u64()
    }

    /// Uniform in `0..bound`; `bound` must be positive.
    // `bound > 0` (asserted): the remainders cannot divide by zero, and `u64::MAX % bound` is at
    // most `u64::MAX`, so the subtraction cannot underflow.
    #[allow(clippy::arithmetic_side_effects)]
    pub fn below(&self, bound: u64) -> u64 {
        assert!(bound > 0);
        // Rejection sampling keeps the distribution uniform.
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % bound;
            }
        }
    }

    /// A 40-character hex identifier, as Redis uses for run IDs and replication IDs.
    pub fn hex_id(&self) -> String {
        let mut out = String::with_capacity(40);
        while out.len() < 40 {
            let mut v = self.next_u64();
            // The 16 nibbles of `v`, lowest first.
            for _ in 0..16 {
                if out.len() == 40 {
                    break;
                }
                let nibble = (v & 0xf) as u8;
                v >>= 4;
                out.push(char::from_digit(nibble as u32, 16).expect("nibble"));
            }
        }
        out
    }
}

/// The persistence seam.
#[derive(Clone)]
pub enum Disk {
    /// The real file system (production only: under madsim `tokio::fs` is not simulated).
    Real,
    /// A simulated per-node disk that models crashes.
    Sim(Arc<SimDisk>),
}

/// Bytes handed to the disk per write call. Saves write in chunks of this size, which bounds
/// memory in flight and gives the simulation crash points inside a save.
pub const DISK_WRITE_CHUNK_BYTES: usize = 64 * 1024;

/// A file open for writing through the seam.
pub enum DiskFile {
    Real(tokio::fs::File),
    Sim { disk: Arc<SimDisk>, path: PathBuf },
}

impl DiskFile {
    /// Appends `data`. On return the bytes are in the operating system's hands (write(2) done),
    /// so a killed process does not lose them: tokio's `File` completes writes in the
    /// background, and its `write_all` may return first, so it is flushed here. (Found by the
    /// AOF interop test: a write acknowledged under `everysec` was lost to `kill -9`.)
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            DiskFile::Real(f) => {
                use tokio::io::AsyncWriteExt;
                f.write_all(data).await?;
                f.flush().await
            }
            DiskFile::Sim { disk, path } => {
                // A crash may land between any two writes (and during the write's service time).
                sim_pause(disk.latency(false)).await;
                disk.append(path, data)
            }
        }
    }

    /// fsync: what was written so far survives a crash.
    pub async fn sync(&mut self) -> io::Result<()> {
        match self {
            DiskFile::Real(f) => {
                use tokio::io::AsyncWriteExt;
                f.flush().await?;
                f.sync_all().await
            }
            DiskFile::Sim { disk, path } => {
                sim_pause(disk.latency(true)).await;
                disk.fsync(path)
            }
        }
    }
}

impl Disk {
    pub async fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self {
            Disk::Real => tokio::fs::read(path).await,
            Disk::Sim(d) => d.read(path),
        }
    }

    /// Creates (or truncates) a file for writing.
    pub async fn create(&self, path: &Path) -> io::Result<DiskFile> {
        match self {
            Disk::Real => Ok(DiskFile::Real(tokio::fs::File::create(path).await?)),
            Disk::Sim(d) => {
                d.create(path)?;
                Ok(DiskFile::Sim { disk: d.clone(), path: path.to_path_buf() })
            }
        }
    }

    /// Opens a file for appending, creating it if missing (the AOF's incr file).
    pub async fn open_append(&self, path: &Path) -> io::Result<DiskFile> {
        match self {
            Disk::Real => {
                let f = tokio::fs::OpenOptions::new().append(true).create(true).open(path).await?;
                Ok(DiskFile::Real(f))
            }
            Disk::Sim(d) => {
                if !d.exists(path) {
                    d.create(path)?;
                }
                Ok(DiskFile::Sim { disk: d.clone(), path: path.to_path_buf() })
            }
        }
    }

    /// Cuts a file to `len` bytes and syncs it (a truncated AOF tail removed at load).
    pub async fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        match self {
            Disk::Real => {
                let f = tokio::fs::OpenOptions::new().write(true).open(path).await?;
                f.set_len(len).await?;
                f.sync_all().await
            }
            Disk::Sim(d) => d.truncate(path, len),
        }
    }

    /// Creates a directory (and its parents) if missing. The simulated disk is flat.
    pub async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        match self {
            Disk::Real => tokio::fs::create_dir_all(path).await,
            Disk::Sim(_) => Ok(()),
        }
    }

    /// A file's length, None if it does not exist.
    pub async fn len(&self, path: &Path) -> io::Result<Option<u64>> {
        match self {
            Disk::Real => match tokio::fs::metadata(path).await {
                Ok(m) => Ok(Some(m.len())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            Disk::Sim(d) => Ok(d.read(path).ok().map(|b| b.len() as u64)),
        }
    }

    pub async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        match self {
            Disk::Real => tokio::fs::rename(from, to).await,
            Disk::Sim(d) => {
                let r = d.rename(from, to);
                tokio::task::yield_now().await;
                r
            }
        }
    }

    /// fsync of the directory holding `path`: makes creations and renames in it durable.
    pub async fn sync_dir_of(&self, path: &Path) -> io::Result<()> {
        match self {
            Disk::Real => match tokio::fs::File::open(parent_dir(path)).await {
                // Some file systems refuse to fsync a directory; Redis ignores that too.
                Ok(d) => d.sync_all().await.or(Ok(())),
                Err(_) => Ok(()),
            },
            Disk::Sim(d) => {
                sim_pause(d.latency(true)).await;
                d.fsync_dir()
            }
        }
    }

    pub async fn remove(&self, path: &Path) -> io::Result<()> {
        match self {
            Disk::Real => tokio::fs::remove_file(path).await,
            Disk::Sim(d) => d.remove(path),
        }
    }

    /// Replaces `path` with `data` the way Redis does for its own files: write a temporary
    /// file, fsync it, rename it over the target, fsync the directory.
    pub async fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let tmp = temp_path(path);
        let mut f = self.create(&tmp).await?;
        for chunk in data.chunks(DISK_WRITE_CHUNK_BYTES) {
            f.write_all(chunk).await?;
        }
        f.sync().await?;
        drop(f);
        self.rename(&tmp, path).await?;
        self.sync_dir_of(path).await
    }

    /// Whether `path` is a usable directory (`dir` at start-up and in CONFIG SET), with the
    /// system's reason when not. Synchronous: it is one `stat`, asked while a command runs. The
    /// simulated disk is flat, so every directory exists there.
    pub fn check_dir(&self, path: &Path) -> io::Result<()> {
        match self {
            Disk::Real => match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => Ok(()),
                Ok(_) => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
                Err(e) => Err(e),
            },
            Disk::Sim(_) => Ok(()),
        }
    }

    /// Whether `path` is a file this process may execute (a sentinel's scripts; Redis asks
    /// `access(path, X_OK)`). Synchronous, one `stat`, like [`Disk::check_dir`]. The simulated
    /// disk runs no programs: a script there is any file it holds.
    pub fn is_executable(&self, path: &Path) -> bool {
        match self {
            Disk::Real => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            }
            Disk::Sim(d) => d.exists(path),
        }
    }

    pub async fn exists(&self, path: &Path) -> bool {
        match self {
            Disk::Real => tokio::fs::metadata(path).await.is_ok(),
            Disk::Sim(d) => d.exists(path),
        }
    }
}

/// An I/O error as Redis prints it (`strerror`): "No such file or directory", without Rust's
/// " (os error 2)" suffix.
pub fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Lets the simulation crash the node here: yields, or sleeps for a simulated service time.
async fn sim_pause(d: std::time::Duration) {
    // A disk that stalls now and then (a slow fsync, a busy device): crashes and concurrent
    // commands land inside the I/O more often.
    if crate::fault::buggify("buggify.disk.stall") {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        return;
    }
    if d.is_zero() {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(d).await;
    }
}

/// `dump.rdb` -> `dump.rdb.tmp` (beside it, so that the rename stays in one directory).
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// An in-memory disk that remembers what has been made durable, as a real one would.
///
/// Files are inodes; names point at inodes. Each inode has the bytes a reader sees now and the
/// length that the last fsync covered. The namespace (creations, renames, removals) becomes
/// durable only at a directory fsync. A crash (`power_fail`) keeps the durable namespace, and
/// for each file its synced bytes plus, per the crash draw, none, all or a torn prefix of what
/// was written after the last fsync (the "last write may be torn" of real disks). Limits:
/// `capacity_bytes` models a full disk; `fail_fsync` models fsync errors.
pub struct SimDisk {
    state: Mutex<SimDiskState>,
}

#[derive(Default, Clone)]
struct Inode {
    data: Vec<u8>,
    synced_len: usize,
}

struct SimDiskState {
    inodes: Vec<Inode>,
    /// The namespace a reader sees now.
    names: BTreeMap<PathBuf, usize>,
    /// The namespace that survives a crash.
    durable_names: BTreeMap<PathBuf, usize>,
    capacity_bytes: u64,
    fail_fsync: bool,
    /// Simulated service times: a save then spans simulated time, so crashes can land inside it.
    write_latency_us: u64,
    fsync_latency_us: u64,
}

impl SimDiskState {
    fn used_bytes(&self) -> u64 {
        let live: std::collections::BTreeSet<usize> =
            self.names.values().chain(self.durable_names.values()).copied().collect();
        live.iter().map(|&i| self.inodes[i].data.len() as u64).sum()
    }

    fn inode_of(&self, path: &Path) -> io::Result<usize> {
        self.names
            .get(path)
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
    }
}

/// What a crash does to data written after the last fsync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashLoss {
    /// All unsynced data is lost.
    DropUnsynced,
    /// All of it happened to reach the platter.
    KeepUnsynced,
    /// A prefix of it survives: this many bytes per 1000 of the unsynced tail.
    Torn(u16),
}

impl SimDisk {
    pub fn new(capacity_bytes: u64) -> SimDisk {
        SimDisk {
            state: Mutex::new(SimDiskState {
                inodes: Vec::new(),
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                capacity_bytes,
                fail_fsync: false,
                write_latency_us: 0,
                fsync_latency_us: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SimDiskState> {
        self.state.lock().expect("sim disk lock")
    }

    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.lock();
        let i = s.inode_of(path)?;
        Ok(s.inodes[i].data.clone())
    }

    pub fn exists(&self, path: &Path) -> bool {
        self.lock().names.contains_key(path)
    }

    /// Creates or truncates (a new inode: the old one may still be durable under its name).
    pub fn create(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let i = s.inodes.len();
        s.inodes.push(Inode::default());
        s.names.insert(path.to_path_buf(), i);
        Ok(())
    }

    pub fn append(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut s = self.lock();
        let i = s.inode_of(path)?;
        if s.used_bytes().saturating_add(data.len() as u64) > s.capacity_bytes {
            // An effect, not an injection: the server's write got the error.
            crate::fault::probe("disk.full_returned");
            return Err(io::Error::new(io::ErrorKind::StorageFull, "No space left on device"));
        }
        s.inodes[i].data.extend_from_slice(data);
        Ok(())
    }

    /// Whole-file write (create + append), for tests and small files.
    pub fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.create(path)?;
        self.append(path, data)
    }

    pub fn fsync(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        if s.fail_fsync {
            crate::fault::probe("disk.fsync_error_returned");
            return Err(io::Error::other("Input/output error (simulated fsync failure)"));
        }
        let i = s.inode_of(path)?;
        s.inodes[i].synced_len = s.inodes[i].data.len();
        Ok(())
    }

    /// Cuts a file to `len` bytes, durably (as a truncate followed by fsync).
    pub fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut s = self.lock();
        let i = s.inode_of(path)?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        s.inodes[i].data.truncate(len);
        s.inodes[i].synced_len = s.inodes[i].data.len();
        Ok(())
    }

    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let i = s.inode_of(from)?;
        s.names.remove(from);
        s.names.insert(to.to_path_buf(), i);
        Ok(())
    }

    pub fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.inode_of(path)?;
        s.names.remove(path);
        Ok(())
    }

    /// Makes the current namespace durable.
    pub fn fsync_dir(&self) -> io::Result<()> {
        let mut s = self.lock();
        if s.fail_fsync {
            crate::fault::probe("disk.fsync_error_returned");
            return Err(io::Error::other("Input/output error (simulated fsync failure)"));
        }
        s.durable_names = s.names.clone();
        Ok(())
    }

    /// A crash that loses everything not made durable.
    pub fn power_fail(&self) {
        self.power_fail_with(CrashLoss::DropUnsynced);
    }

    /// A crash: the durable namespace survives; each file keeps its synced bytes and, per
    /// `loss`, some of the rest.
    pub fn power_fail_with(&self, loss: CrashLoss) {
        let mut s = self.lock();
        for inode in s.inodes.iter_mut() {
            // `synced_len <= data.len()`: set from it at fsync, and data only grows until here.
            let unsynced = inode.data.len().saturating_sub(inode.synced_len);
            let keep = match loss {
                CrashLoss::DropUnsynced => 0,
                CrashLoss::KeepUnsynced => unsynced,
                CrashLoss::Torn(per_mille) => unsynced.saturating_mul(per_mille.min(1000) as usize) / 1000,
            };
            inode.data.truncate(inode.synced_len.saturating_add(keep));
            inode.synced_len = inode.data.len();
        }
        s.names = s.durable_names.clone();
    }

    /// Flips one bit of a file at rest (bit rot), for checking that corruption is detected.
    pub fn corrupt(&self, path: &Path, bit: u64) -> io::Result<()> {
        let mut s = self.lock();
        let i = s.inode_of(path)?;
        let len = s.inodes[i].data.len() as u64;
        if len == 0 {
            return Ok(());
        }
        let byte = (bit / 8).checked_rem(len).unwrap_or(0) as usize; // len > 0, checked above
        s.inodes[i].data[byte] ^= 1 << (bit % 8);
        Ok(())
    }

    pub fn set_fail_fsync(&self, fail: bool) {
        self.lock().fail_fsync = fail;
    }

    pub fn set_capacity(&self, capacity_bytes: u64) {
        self.lock().capacity_bytes = capacity_bytes;
    }

    /// How long each write and each fsync takes (simulated time).
    pub fn set_latency(&self, write_us: u64, fsync_us: u64) {
        let mut s = self.lock();
        s.write_latency_us = write_us;
        s.fsync_latency_us = fsync_us;
    }

    fn latency(&self, fsync: bool) -> std::time::Duration {
        let s = self.lock();
        std::time::Duration::from_micros(if fsync { s.fsync_latency_us } else { s.write_latency_us })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_writes_keep_a_prefix_of_the_unsynced_tail() {
        let d = SimDisk::new(1 << 20);
        let p = Path::new("f");
        d.create(p).unwrap();
        d.append(p, b"abcd").unwrap();
        d.fsync(p).unwrap();
        d.fsync_dir().unwrap();
        d.append(p, b"0123456789").unwrap();
        d.power_fail_with(CrashLoss::Torn(500));
        assert_eq!(d.read(p).unwrap(), b"abcd01234");
        d.append(p, b"xyz").unwrap();
        d.power_fail_with(CrashLoss::KeepUnsynced);
        assert_eq!(d.read(p).unwrap(), b"abcd01234xyz");
    }

    #[test]
    fn rename_before_fsync_loses_the_data() {
        // The bug the persistence issue plants: rename before fsync. After a crash the name
        // points at a file whose data never reached the disk.
        let d = SimDisk::new(1 << 20);
        let (tmp, p) = (Path::new("dump.rdb.tmp"), Path::new("dump.rdb"));
        d.write(tmp, b"snapshot").unwrap();
        d.rename(tmp, p).unwrap();
        d.fsync_dir().unwrap();
        d.power_fail();
        assert_eq!(d.read(p).unwrap(), b"");
    }

    #[test]
    fn crash_keeps_only_synced_and_dir_synced() {
        let d = SimDisk::new(1 << 20);
        let p = Path::new("dump.rdb");
        d.write(p, b"one").unwrap();
        d.fsync(p).unwrap();
        d.fsync_dir().unwrap();
        d.write(p, b"two").unwrap();
        assert_eq!(d.read(p).unwrap(), b"two");
        d.power_fail();
        assert_eq!(d.read(p).unwrap(), b"one");
        // A rename not followed by a directory fsync is lost.
        d.write(Path::new("x.tmp"), b"new").unwrap();
        d.fsync(Path::new("x.tmp")).unwrap();
        d.rename(Path::new("x.tmp"), p).unwrap();
        d.power_fail();
        assert_eq!(d.read(p).unwrap(), b"one");
    }

    #[test]
    fn hex_ids_are_40_hex_and_seeded() {
        let a = Rng::new(7).hex_id();
        let b = Rng::new(7).hex_id();
        assert_eq!(a, b);
        assert_eq!(a.len(), 40);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(Rng::new(8).hex_id(), a);
    }

    #[test]
    fn disk_full_is_reported() {
        let d = SimDisk::new(4);
        assert_eq!(d.write(Path::new("f"), b"12345").unwrap_err().kind(), io::ErrorKind::StorageFull);
    }
}
