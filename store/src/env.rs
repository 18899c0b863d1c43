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

/// Wall-clock time with an injectable per-node offset.
///
/// Under madsim `SystemTime::now()` is the simulated clock (madsim interposes
/// `clock_gettime`), so the only thing this type adds is the skew.
#[derive(Clone, Default)]
pub struct Clock {
    skew_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn new() -> Clock {
        Clock::default()
    }

    /// Milliseconds since the Unix epoch, as this node believes.
    pub fn now_ms(&self) -> i64 {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        real + self.skew_ms.load(Ordering::Relaxed)
    }

    /// Microseconds since the Unix epoch (for `TIME`).
    pub fn now_us(&self) -> i64 {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        real + self.skew_ms.load(Ordering::Relaxed) * 1000
    }

    /// Moves this node's clock by `delta_ms` (may be negative: a backward jump).
    pub fn jump_ms(&self, delta_ms: i64) {
        self.skew_ms.fetch_add(delta_ms, Ordering::Relaxed);
    }

    pub fn skew_ms(&self) -> i64 {
        self.skew_ms.load(Ordering::Relaxed)
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
            let v = self.next_u64();
            for i in 0..16 {
                if out.len() == 40 {
                    break;
                }
                let nibble = ((v >> (i * 4)) & 0xf) as u8;
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

impl Disk {
    pub async fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self {
            Disk::Real => tokio::fs::read(path).await,
            Disk::Sim(d) => d.read(path),
        }
    }

    /// Replaces `path` with `data` the way Redis does for its own files: write a temporary
    /// file, fsync it, rename it over the target, fsync the directory.
    pub async fn write_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let tmp = temp_path(path);
        match self {
            Disk::Real => {
                use tokio::io::AsyncWriteExt;
                let mut f = tokio::fs::File::create(&tmp).await?;
                f.write_all(data).await?;
                f.sync_all().await?;
                drop(f);
                tokio::fs::rename(&tmp, path).await?;
                let dir = parent_dir(path);
                if let Ok(d) = tokio::fs::File::open(&dir).await {
                    // Directory fsync is advisory on some file systems; an error here is not fatal.
                    let _ = d.sync_all().await;
                }
                Ok(())
            }
            Disk::Sim(d) => {
                d.write(&tmp, data)?;
                d.fsync(&tmp)?;
                d.rename(&tmp, path)?;
                d.fsync_dir()
            }
        }
    }

    pub async fn exists(&self, path: &Path) -> bool {
        match self {
            Disk::Real => tokio::fs::metadata(path).await.is_ok(),
            Disk::Sim(d) => d.exists(path),
        }
    }
}

fn temp_path(path: &Path) -> PathBuf {
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

/// An in-memory disk that remembers what has been made durable.
///
/// Each file has the bytes a reader sees now and the bytes that survive a crash (what the last
/// fsync covered). Renames and creations are durable only after a directory fsync. A crash
/// (`power_fail`) drops everything not durable; the simulation can also tear the tail of the
/// last unsynced write. Limits: `capacity_bytes` models a full disk.
pub struct SimDisk {
    state: Mutex<SimDiskState>,
}

#[derive(Default, Clone)]
struct SimFile {
    data: Vec<u8>,
    synced: Vec<u8>,
}

struct SimDiskState {
    /// The namespace a reader sees now.
    files: BTreeMap<PathBuf, SimFile>,
    /// The namespace that survives a crash: path -> synced contents at the last dir fsync.
    durable_names: BTreeMap<PathBuf, Vec<u8>>,
    capacity_bytes: u64,
    fail_fsync: bool,
}

impl SimDisk {
    pub fn new(capacity_bytes: u64) -> SimDisk {
        SimDisk {
            state: Mutex::new(SimDiskState {
                files: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                capacity_bytes,
                fail_fsync: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SimDiskState> {
        self.state.lock().expect("sim disk lock")
    }

    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.lock();
        s.files.get(path).map(|f| f.data.clone()).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }

    pub fn exists(&self, path: &Path) -> bool {
        self.lock().files.contains_key(path)
    }

    pub fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut s = self.lock();
        let used: u64 = s.files.iter().filter(|(p, _)| p.as_path() != path).map(|(_, f)| f.data.len() as u64).sum();
        if used + data.len() as u64 > s.capacity_bytes {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "No space left on device"));
        }
        let f = s.files.entry(path.to_path_buf()).or_default();
        f.data = data.to_vec();
        Ok(())
    }

    pub fn fsync(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        if s.fail_fsync {
            return Err(io::Error::other("Input/output error (simulated fsync failure)"));
        }
        let f = s.files.get_mut(path).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        f.synced = f.data.clone();
        Ok(())
    }

    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let f = s.files.remove(from).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        s.files.insert(to.to_path_buf(), f);
        Ok(())
    }

    /// Makes the current namespace durable, each file with its synced contents.
    pub fn fsync_dir(&self) -> io::Result<()> {
        let mut s = self.lock();
        if s.fail_fsync {
            return Err(io::Error::other("Input/output error (simulated fsync failure)"));
        }
        s.durable_names = s.files.iter().map(|(p, f)| (p.clone(), f.synced.clone())).collect();
        Ok(())
    }

    /// A crash: only durable names with their synced contents survive.
    pub fn power_fail(&self) {
        let mut s = self.lock();
        s.files =
            s.durable_names.iter().map(|(p, d)| (p.clone(), SimFile { data: d.clone(), synced: d.clone() })).collect();
    }

    pub fn set_fail_fsync(&self, fail: bool) {
        self.lock().fail_fsync = fail;
    }

    pub fn set_capacity(&self, capacity_bytes: u64) {
        self.lock().capacity_bytes = capacity_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
