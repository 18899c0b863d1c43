//! The keyspace: 16 (configurable) databases of keys with optional expiry.
//!
//! # Why it is shaped this way
//!
//! Two needs drive the layout (see the design notes in the README):
//!
//! 1. **One total order of writes.** Replication numbers every write with a byte offset, and the
//!    dataset digest at offset X must be well defined. All commands therefore execute under one
//!    lock on the server state (like Redis's single thread); network I/O and parsing run in
//!    parallel on the tokio workers, outside the lock.
//!
//! 2. **Point-in-time snapshots without stalling clients**, for BGSAVE and full resync, at
//!    millions of keys. Redis forks and lets the kernel copy pages on write. We get the same effect
//!    in user space: each database is split into [`SHARDS`] hash tables, each behind an `Arc`.
//!    A snapshot clones the `Arc`s (O(shards), microseconds). A write calls `Arc::make_mut` on
//!    its shard, which copies that one shard only if a snapshot still holds it. The pause a write
//!    can see is bounded by one shard's size (about keys/1024), and large collections are
//!    themselves behind `Arc`, so copying a shard never deep-copies a big list or hash.
//!    Sharding also bounds hash-table resize pauses to one shard (Redis rehashes incrementally
//!    for the same reason).
//!
//! Expiry follows Redis: keys carry an absolute unix-ms deadline in a per-shard `expires` map;
//! reads expire lazily; a periodic task samples volatile keys (active expiry). On a replica the
//! [`ExpirePolicy`] is `HideOnly`: expired keys read as missing but are only deleted when the
//! master's stream says so.
//!
//! Iteration order is deterministic for a given hash seed; the seed comes from the node's
//! seeded RNG, so simulated runs replay exactly and production gets hash-flooding resistance.
//!
//! SCAN cursors come from clients: they are decoded with shifts and masks and walked by
//! iterators, so no arithmetic on them can overflow (issue 12). The key counters are kept by
//! the few allowed increments below, each next to the table operation it counts.

pub mod digest;
pub mod value;

use std::collections::HashMap;
use std::sync::Arc;

use crate::sds::Sds;
pub use value::{HashMapS, HashSetS, Hasher, Score, Value, ZSet};

/// Shards per database. A power of two; a snapshot costs this many `Arc` clones per database.
pub const SHARDS: usize = 1024;

/// What a lookup does with a logically expired key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpirePolicy {
    /// Master (or standalone): delete it and report it for propagation as `DEL`.
    Delete,
    /// Replica: hide it from reads, keep it until the master deletes it.
    HideOnly,
}

#[derive(Clone)]
pub struct Shard {
    pub map: HashMapS<Sds, Value>,
    pub expires: HashMapS<Sds, i64>,
}

impl Shard {
    fn new(hasher: &Hasher) -> Shard {
        Shard { map: HashMap::with_hasher(hasher.clone()), expires: HashMap::with_hasher(hasher.clone()) }
    }
}

/// One database (`SELECT n`).
#[derive(Clone)]
pub struct Db {
    shards: Vec<Arc<Shard>>,
    hasher: Hasher,
    len: usize,
    expires_len: usize,
    /// Round-robin position of the active expiry cycle.
    expire_cursor: usize,
}

/// A point-in-time copy of a database; holding it makes later writes copy shards on demand.
#[derive(Clone)]
pub struct DbSnapshot {
    pub shards: Vec<Arc<Shard>>,
}

impl DbSnapshot {
    pub fn iter(&self) -> impl Iterator<Item = (&Sds, &Value, Option<i64>)> {
        self.shards.iter().flat_map(|s| s.map.iter().map(move |(k, v)| (k, v, s.expires.get(k).copied())))
    }
}

impl Db {
    pub fn new(hasher: Hasher) -> Db {
        let empty = Arc::new(Shard::new(&hasher));
        Db { shards: vec![empty; SHARDS], hasher, len: 0, expires_len: 0, expire_cursor: 0 }
    }

    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    fn shard_of(&self, key: &[u8]) -> usize {
        // Bits 32.. of the hash pick the shard; hashbrown uses the low bits for the bucket and
        // the top 7 for its control byte, so the choices stay independent.
        ((self.hasher.hash_one(key) >> 32) as usize) & (SHARDS - 1)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn expires_len(&self) -> usize {
        self.expires_len
    }

    /// The key's expiry deadline (unix ms), if it has one. Does not check liveness.
    pub fn expire_at(&self, key: &[u8]) -> Option<i64> {
        self.shards[self.shard_of(key)].expires.get(key).copied()
    }

    /// Whether the key exists but is logically expired at `now_ms`.
    pub fn is_expired(&self, key: &[u8], now_ms: i64) -> bool {
        matches!(self.expire_at(key), Some(at) if at <= now_ms)
    }

    /// Reads a key without touching expiry (the raw stored value).
    pub fn get_raw(&self, key: &[u8]) -> Option<&Value> {
        self.shards[self.shard_of(key)].map.get(key)
    }

    /// Mutable access to a stored value; copies its shard if a snapshot shares it.
    pub fn get_raw_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        let i = self.shard_of(key);
        if !self.shards[i].map.contains_key(key) {
            return None;
        }
        Arc::make_mut(&mut self.shards[i]).map.get_mut(key)
    }

    /// Inserts or replaces the value. `keep_ttl` keeps an existing deadline (SET KEEPTTL and
    /// in-place modifications); otherwise any deadline is removed, as Redis's `setKey` does.
    pub fn insert(&mut self, key: Sds, value: Value, keep_ttl: bool) {
        let i = self.shard_of(&key);
        let shard = Arc::make_mut(&mut self.shards[i]);
        // Each counter counts entries of the tables: it is decremented only for an entry just
        // removed (so it was at least 1) and incremented for one just added (at most the number
        // of keys in memory).
        #[allow(clippy::arithmetic_side_effects)]
        {
            if !keep_ttl && !shard.expires.is_empty() && shard.expires.remove(&key[..]).is_some() {
                self.expires_len -= 1;
            }
            if shard.map.insert(key, value).is_none() {
                self.len += 1;
            }
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let i = self.shard_of(key);
        if !self.shards[i].map.contains_key(key) {
            return None;
        }
        let shard = Arc::make_mut(&mut self.shards[i]);
        let v = shard.map.remove(key)?;
        // As in `insert`: decremented for an entry just removed.
        #[allow(clippy::arithmetic_side_effects)]
        {
            self.len -= 1;
            if shard.expires.remove(key).is_some() {
                self.expires_len -= 1;
            }
        }
        Some(v)
    }

    /// Sets a deadline on an existing key; returns false if the key does not exist.
    pub fn set_expire(&mut self, key: &[u8], at_ms: i64) -> bool {
        let i = self.shard_of(key);
        if !self.shards[i].map.contains_key(key) {
            return false;
        }
        let shard = Arc::make_mut(&mut self.shards[i]);
        let (k, _) = shard.map.get_key_value(key).expect("checked above");
        let k = k.clone();
        // As in `insert`: incremented for an entry just added.
        #[allow(clippy::arithmetic_side_effects)]
        if shard.expires.insert(k, at_ms).is_none() {
            self.expires_len += 1;
        }
        true
    }

    /// Removes a deadline; returns whether there was one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        let i = self.shard_of(key);
        if !self.shards[i].expires.contains_key(key) {
            return false;
        }
        // As in `insert`: decremented for an entry just removed (it was there, checked above).
        #[allow(clippy::arithmetic_side_effects)]
        if Arc::make_mut(&mut self.shards[i]).expires.remove(key).is_some() {
            self.expires_len -= 1;
        }
        true
    }

    pub fn clear(&mut self) {
        let empty = Arc::new(Shard::new(&self.hasher));
        self.shards = vec![empty; SHARDS];
        self.len = 0;
        self.expires_len = 0;
    }

    /// Every (key, value, deadline), raw, in deterministic order.
    pub fn iter(&self) -> impl Iterator<Item = (&Sds, &Value, Option<i64>)> {
        self.shards
            .iter()
            .filter(|s| !s.map.is_empty())
            .flat_map(|s| s.map.iter().map(move |(k, v)| (k, v, s.expires.get(k).copied())))
    }

    pub fn snapshot(&self) -> DbSnapshot {
        DbSnapshot { shards: self.shards.clone() }
    }

    /// All keys (raw, including logically expired ones), in deterministic order.
    pub fn keys(&self) -> impl Iterator<Item = &Sds> {
        self.shards.iter().flat_map(|s| s.map.keys())
    }

    /// A uniformly chosen shard-then-key; `pick` draws random numbers below its argument.
    pub fn random_key(&self, mut pick: impl FnMut(u64) -> u64) -> Option<&Sds> {
        if self.len == 0 {
            return None;
        }
        // Pick a key index over the whole database, then walk shards to it: uniform over keys.
        let mut n = pick(self.len as u64) as usize;
        for s in &self.shards {
            match n.checked_sub(s.map.len()) {
                None => return s.map.keys().nth(n),
                Some(rest) => n = rest,
            }
        }
        unreachable!("len accounting is wrong");
    }

    /// One step of `SCAN`. The cursor is `shard << 33 | position`, where the position is a 32-bit
    /// key hash (plus one bit for "past the end"). Within a shard keys are visited in hash order,
    /// so every key present for the whole scan is returned at least once, whatever is inserted
    /// or deleted between calls. Returns the next cursor (0 when done).
    pub fn scan(&self, cursor: u64, count: usize, out: &mut Vec<Sds>) -> u64 {
        // Any u64 a client sends decodes to some shard and position: a shard past the last one
        // ends the scan.
        let first = (cursor >> 33) as usize;
        let mut pos = cursor & ((1u64 << 33) - 1);
        let mut budget = count.max(1);
        for (shard, s) in self.shards.iter().enumerate().skip(first) {
            if budget == 0 {
                // The previous shard used the budget up: the next call starts with this one.
                return (shard as u64) << 33;
            }
            if !s.map.is_empty() {
                let mut keyed: Vec<(u32, &Sds)> = s
                    .map
                    .keys()
                    .map(|k| (self.hasher.hash_one(&k[..]) as u32, k))
                    .filter(|(h, _)| *h as u64 >= pos)
                    .collect();
                keyed.sort_unstable();
                // Never split a group of equal hashes across two calls.
                for group in keyed.chunk_by(|a, b| a.0 == b.0) {
                    if budget == 0 {
                        return ((shard as u64) << 33) | group[0].0 as u64;
                    }
                    out.extend(group.iter().map(|(_, k)| (*k).clone()));
                    budget = budget.saturating_sub(group.len());
                }
            }
            pos = 0;
        }
        0
    }

    /// Active expiry: examines up to `budget` volatile keys, continuing round-robin over shards,
    /// and returns those whose deadline has passed (the caller deletes and propagates them).
    pub fn sample_expired(&mut self, now_ms: i64, budget: usize, out: &mut Vec<Sds>) -> usize {
        let mut examined = 0usize;
        // Each shard at most once per call.
        for _ in 0..SHARDS {
            if examined >= budget || self.expires_len == 0 {
                break;
            }
            let s = &self.shards[self.expire_cursor];
            examined = examined.saturating_add(s.expires.len());
            out.extend(s.expires.iter().filter(|(_, &at)| at <= now_ms).map(|(k, _)| k.clone()));
            self.expire_cursor = self.expire_cursor.checked_add(1).filter(|&c| c < SHARDS).unwrap_or(0);
        }
        examined
    }

    /// Verifies the length counters against the tables (test and simulation assertion).
    pub fn check_invariants(&self) {
        let len: usize = self.shards.iter().map(|s| s.map.len()).sum();
        let exp: usize = self.shards.iter().map(|s| s.expires.len()).sum();
        assert_eq!(len, self.len, "key count drifted");
        assert_eq!(exp, self.expires_len, "volatile key count drifted");
        for s in &self.shards {
            for k in s.expires.keys() {
                assert!(s.map.contains_key(k), "deadline without key");
            }
        }
    }
}

/// All databases of a node, plus the expiry policy and keys expired since last drained.
pub struct Keyspace {
    pub dbs: Vec<Db>,
    pub policy: ExpirePolicy,
    /// Keys deleted by lazy or active expiry, in order, for propagation (`DEL`) and stats.
    pub expired: Vec<(usize, Sds)>,
    pub expired_total: u64,
    /// When set (simulation), expiry deletions XOR the deleted key's digest into
    /// `expired_digest`, so the observer's incremental dataset digest stays exact.
    pub track_digest: bool,
    pub expired_digest: digest::Digest,
    /// Per deleted key, its digest contribution (parallel to `expired` when tracking), so that
    /// each propagated DEL can be reported with the digest right after it.
    pub expired_digests: Vec<digest::Digest>,
    /// On a writable replica, keys its own clients wrote with a TTL (Redis's
    /// `slaveKeysWithExpire`): the master will never send their DEL, so the replica expires them
    /// itself. Bounded by the keys that exist.
    pub replica_keys_with_expire: std::collections::BTreeSet<(usize, Sds)>,
    hasher: Hasher,
}

impl Keyspace {
    pub fn new(databases: usize, seeds: [u64; 4]) -> Keyspace {
        assert!(databases > 0);
        let hasher = Hasher::with_seeds(seeds[0], seeds[1], seeds[2], seeds[3]);
        Keyspace {
            dbs: (0..databases).map(|_| Db::new(hasher.clone())).collect(),
            policy: ExpirePolicy::Delete,
            expired: Vec::new(),
            expired_total: 0,
            track_digest: false,
            expired_digest: [0; 3],
            expired_digests: Vec::new(),
            replica_keys_with_expire: Default::default(),
            hasher,
        }
    }

    pub fn hasher(&self) -> Hasher {
        self.hasher.clone()
    }

    /// Looks a key up for a client: a logically expired key is missing; under `Delete` it is also
    /// removed and recorded in `expired`.
    pub fn lookup(&mut self, db: usize, key: &[u8], now_ms: i64) -> Option<&Value> {
        self.expire_if_needed(db, key, now_ms);
        if self.dbs[db].is_expired(key, now_ms) {
            return None; // HideOnly
        }
        self.dbs[db].get_raw(key)
    }

    /// Like `lookup`, for modification.
    pub fn lookup_mut(&mut self, db: usize, key: &[u8], now_ms: i64) -> Option<&mut Value> {
        self.expire_if_needed(db, key, now_ms);
        if self.dbs[db].is_expired(key, now_ms) {
            return None;
        }
        self.dbs[db].get_raw_mut(key)
    }

    pub fn exists(&mut self, db: usize, key: &[u8], now_ms: i64) -> bool {
        self.lookup(db, key, now_ms).is_some()
    }

    /// Deletes the key if it is logically expired and the policy allows; returns whether it did.
    pub fn expire_if_needed(&mut self, db: usize, key: &[u8], now_ms: i64) -> bool {
        if self.policy == ExpirePolicy::HideOnly || !self.dbs[db].is_expired(key, now_ms) {
            return false;
        }
        if self.track_digest {
            let d = digest::key_digest_in(db, &self.dbs[db], key);
            self.expired_digest = digest::xor(self.expired_digest, d);
            self.expired_digests.push(d);
        }
        self.dbs[db].remove(key);
        crate::fault::probe("expire.lazy_delete");
        self.expired.push((db, Sds::new(key)));
        self.expired_total = self.expired_total.saturating_add(1);
        true
    }

    /// Removed from expiry tracking when a write replaces the key; a plain delete.
    pub fn delete(&mut self, db: usize, key: &[u8]) -> bool {
        self.dbs[db].remove(key).is_some()
    }

    /// On a replica: deletes the expired keys that its own clients wrote with a TTL (see
    /// `replica_keys_with_expire`), and forgets tracked keys that no longer have a TTL. Returns
    /// the keys deleted.
    pub fn expire_replica_written_keys(&mut self, now_ms: i64) -> usize {
        let mut deleted = 0usize;
        let tracked: Vec<(usize, Sds)> = self.replica_keys_with_expire.iter().cloned().collect();
        for (db, key) in tracked {
            let Some(d) = self.dbs.get(db) else {
                self.replica_keys_with_expire.remove(&(db, key));
                continue;
            };
            if d.expire_at(&key).is_none() {
                self.replica_keys_with_expire.remove(&(db, key));
                continue;
            }
            if !d.is_expired(&key, now_ms) {
                continue;
            }
            if self.track_digest {
                let dg = digest::key_digest_in(db, &self.dbs[db], &key);
                self.expired_digest = digest::xor(self.expired_digest, dg);
                self.expired_digests.push(dg);
            }
            self.dbs[db].remove(&key);
            crate::fault::probe("expire.replica_written_key");
            self.replica_keys_with_expire.remove(&(db, key.clone()));
            self.expired.push((db, key));
            self.expired_total = self.expired_total.saturating_add(1);
            deleted = deleted.saturating_add(1);
        }
        deleted
    }

    /// One active-expiry cycle over all databases. Returns keys examined.
    pub fn active_expire(&mut self, now_ms: i64, budget_per_db: usize) -> usize {
        if self.policy == ExpirePolicy::HideOnly {
            return 0;
        }
        let mut examined = 0usize;
        let mut batch = Vec::new();
        for db in 0..self.dbs.len() {
            batch.clear();
            examined = examined.saturating_add(self.dbs[db].sample_expired(now_ms, budget_per_db, &mut batch));
            for k in batch.drain(..) {
                if self.track_digest {
                    let d = digest::key_digest_in(db, &self.dbs[db], &k);
                    self.expired_digest = digest::xor(self.expired_digest, d);
                    self.expired_digests.push(d);
                }
                self.dbs[db].remove(&k);
                crate::fault::probe("expire.active_delete");
                self.expired.push((db, k));
                self.expired_total = self.expired_total.saturating_add(1);
            }
        }
        examined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_takes_any_cursor() {
        let mut k = ks();
        for i in 0..100 {
            k.dbs[0].insert(Sds::from(format!("k{i}").as_str()), s("v"), false);
        }
        let mut out = Vec::new();
        assert_eq!(k.dbs[0].scan(u64::MAX, 10, &mut out), 0, "a shard past the last one ends the scan");
        assert!(out.is_empty());
        let last_shard = ((SHARDS as u64) - 1) << 33;
        assert_eq!(k.dbs[0].scan(last_shard | ((1 << 33) - 1), usize::MAX, &mut out), 0);
    }

    fn ks() -> Keyspace {
        Keyspace::new(2, [1, 2, 3, 4])
    }

    fn s(v: &str) -> Value {
        Value::Str(Sds::from(v))
    }

    #[test]
    fn snapshot_is_point_in_time() {
        let mut k = ks();
        for i in 0..5000 {
            k.dbs[0].insert(Sds::from(format!("k{i}").as_str()), s("a"), false);
        }
        let snap = k.dbs[0].snapshot();
        for i in 0..5000 {
            k.dbs[0].insert(Sds::from(format!("k{i}").as_str()), s("b"), false);
        }
        k.dbs[0].remove(b"k1");
        assert_eq!(snap.iter().count(), 5000);
        assert!(snap.iter().all(|(_, v, _)| matches!(v, Value::Str(x) if &x[..] == b"a")));
        assert_eq!(k.dbs[0].len(), 4999);
        k.dbs[0].check_invariants();
    }

    #[test]
    fn lazy_expiry_deletes_on_master_hides_on_replica() {
        let mut k = ks();
        k.dbs[0].insert(Sds::from("x"), s("1"), false);
        assert!(k.dbs[0].set_expire(b"x", 100));
        assert!(k.lookup(0, b"x", 99).is_some());
        k.policy = ExpirePolicy::HideOnly;
        assert!(k.lookup(0, b"x", 100).is_none());
        assert_eq!(k.dbs[0].len(), 1, "replica keeps the key");
        k.policy = ExpirePolicy::Delete;
        assert!(k.lookup(0, b"x", 100).is_none());
        assert_eq!(k.dbs[0].len(), 0);
        assert_eq!(k.expired, vec![(0, Sds::from("x"))]);
        k.dbs[0].check_invariants();
    }

    #[test]
    fn active_expiry_removes_all_past_deadlines() {
        let mut k = ks();
        for i in 0..3000 {
            let key = Sds::from(format!("k{i}").as_str());
            k.dbs[1].insert(key.clone(), s("v"), false);
            if i % 3 == 0 {
                k.dbs[1].set_expire(&key, 10);
            }
        }
        while k.dbs[1].expires_len() > 0 {
            k.active_expire(50, 100);
        }
        assert_eq!(k.dbs[1].len(), 2000);
        assert_eq!(k.expired_total, 1000);
        k.dbs[1].check_invariants();
    }

    #[test]
    fn scan_returns_every_stable_key_despite_churn() {
        let mut k = ks();
        for i in 0..2000 {
            k.dbs[0].insert(Sds::from(format!("stable{i}").as_str()), s("v"), false);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            let mut out = Vec::new();
            cursor = k.dbs[0].scan(cursor, 10, &mut out);
            seen.extend(out.into_iter().map(|x| x.to_vec()));
            // Churn between calls.
            k.dbs[0].insert(Sds::from(format!("churn{round}").as_str()), s("v"), false);
            k.dbs[0].remove(format!("churn{}", round / 2).as_bytes());
            round += 1;
            if cursor == 0 {
                break;
            }
        }
        for i in 0..2000 {
            assert!(seen.contains(format!("stable{i}").as_bytes()), "missed stable{i}");
        }
    }

    #[test]
    fn insert_without_keepttl_clears_deadline() {
        let mut k = ks();
        k.dbs[0].insert(Sds::from("a"), s("1"), false);
        k.dbs[0].set_expire(b"a", 1000);
        k.dbs[0].insert(Sds::from("a"), s("2"), true);
        assert_eq!(k.dbs[0].expire_at(b"a"), Some(1000));
        k.dbs[0].insert(Sds::from("a"), s("3"), false);
        assert_eq!(k.dbs[0].expire_at(b"a"), None);
        k.dbs[0].check_invariants();
    }
}
