//! Values stored under keys.
//!
//! Collections sit behind `Arc` so that a snapshot (which shares shards, see `db/mod.rs`) also
//! shares large values: the first write after a snapshot copies only the value it touches
//! (`Arc::make_mut`), never the whole dataset.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::sds::Sds;

pub type Hasher = ahash::RandomState;
pub type HashMapS<K, V> = HashMap<K, V, Hasher>;
pub type HashSetS<K> = HashSet<K, Hasher>;

#[derive(Clone, Debug)]
pub enum Value {
    Str(Sds),
    List(Arc<VecDeque<Sds>>),
    Hash(Arc<HashMapS<Sds, Sds>>),
    Set(Arc<HashSetS<Sds>>),
    ZSet(Arc<ZSet>),
}

impl Value {
    /// The name `TYPE` reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }
}

/// A score ordered totally (`f64::total_cmp`); NaN never enters a sorted set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Score {
    fn cmp(&self, other: &Score) -> std::cmp::Ordering {
        // -0.0 and 0.0 compare equal in Redis; normalise before total_cmp.
        let a = if self.0 == 0.0 { 0.0 } else { self.0 };
        let b = if other.0 == 0.0 { 0.0 } else { other.0 };
        a.total_cmp(&b)
    }
}

/// A sorted set: member -> score, plus the (score, member) order.
///
/// Rank queries walk the ordered set (O(rank)); Redis's skiplist with spans gives O(log n).
/// That trade is recorded here so it is revisited if ZRANK on huge sets matters.
#[derive(Clone, Debug)]
pub struct ZSet {
    pub scores: HashMapS<Sds, f64>,
    pub ordered: BTreeSet<(Score, Sds)>,
}

impl ZSet {
    pub fn new(hasher: Hasher) -> ZSet {
        ZSet { scores: HashMap::with_hasher(hasher), ordered: BTreeSet::new() }
    }

    pub fn len(&self) -> usize {
        debug_assert_eq!(self.scores.len(), self.ordered.len());
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Inserts or updates; returns the previous score.
    pub fn insert(&mut self, member: Sds, score: f64) -> Option<f64> {
        assert!(!score.is_nan());
        let old = self.scores.insert(member.clone(), score);
        if let Some(o) = old {
            let removed = self.ordered.remove(&(Score(o), member.clone()));
            debug_assert!(removed);
        }
        self.ordered.insert((Score(score), member));
        old
    }

    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (m, s) = self.scores.remove_entry(member)?;
        let removed = self.ordered.remove(&(Score(s), m));
        debug_assert!(removed);
        Some(s)
    }

    /// 0-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let s = *self.scores.get(member)?;
        let key = (Score(s), Sds::new(member));
        Some(self.ordered.range(..&key).count())
    }
}
