//! WATCH bookkeeping: which clients watch which keys, and which transactions are now doomed.
//!
//! Every successful write touches its keys (see `cmd::call`), which flags the watching clients;
//! their next EXEC then fails with a null reply, as Redis's optimistic locking does.

use std::collections::{BTreeMap, BTreeSet};

use crate::sds::Sds;

#[derive(Default)]
pub struct Watches {
    /// (db, key) -> clients watching it.
    keys: BTreeMap<(usize, Sds), BTreeSet<u64>>,
    /// Clients whose watched keys changed since they watched them.
    pub dirty: BTreeSet<u64>,
}

impl Watches {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn watch(&mut self, client: u64, db: usize, key: Sds) {
        self.keys.entry((db, key)).or_default().insert(client);
    }

    /// Forgets every watch of `client` (EXEC, DISCARD, UNWATCH, disconnect).
    pub fn unwatch_all(&mut self, client: u64, watched: &[(usize, Sds)]) {
        for k in watched {
            if let Some(set) = self.keys.get_mut(k) {
                set.remove(&client);
                if set.is_empty() {
                    self.keys.remove(k);
                }
            }
        }
        self.dirty.remove(&client);
    }

    pub fn touch(&mut self, db: usize, key: &[u8]) {
        if self.keys.is_empty() {
            return;
        }
        if let Some(set) = self.keys.get(&(db, Sds::new(key))) {
            self.dirty.extend(set.iter().copied());
        }
    }

    /// FLUSHDB/FLUSHALL, called before the flush: the watchers of keys in `db` (or any db) that
    /// exist are dirtied, as Redis's `touchAllWatchedKeysInDb` (a watched key that did not
    /// exist is not changed by emptying the database).
    pub fn touch_existing_in_db(&mut self, db: Option<usize>, exists: impl Fn(usize, &[u8]) -> bool) {
        for ((d, key), set) in &self.keys {
            if (db.is_none() || db == Some(*d)) && exists(*d, key) {
                self.dirty.extend(set.iter().copied());
            }
        }
    }

    /// A whole dataset replaced (a replica's full sync): every watcher of a key in `db` (or any
    /// db) is dirtied.
    pub fn touch_db(&mut self, db: Option<usize>) {
        for ((d, _), set) in &self.keys {
            if db.is_none() || db == Some(*d) {
                self.dirty.extend(set.iter().copied());
            }
        }
    }
}
