//! Dataset digest (`DEBUG DIGEST`): one fingerprint of every database's contents.
//!
//! Order-independent where Redis's data is unordered: each key contributes a hash of
//! (db, key, type, value, deadline) and keys are combined with XOR, so two nodes holding the
//! same data in different hash-table orders agree. Within a value, list elements are hashed in
//! order, set/hash/zset elements are combined with XOR. The hash has fixed keys, so the digest
//! is stable across processes and nodes (unlike the node-seeded table hasher).
//! An empty dataset digests to 40 zeros, as in Redis.
//!
//! The hash is not cryptographic: it only has to make accidental equality of different data
//! negligible, never to resist an adversary (Redis's own DEBUG DIGEST uses SHA1 mixing; the
//! values differ from Redis's anyway). It is three independent 64-bit lanes computed in one
//! pass: each 8-byte word is mixed into each lane by an invertible step (xor, multiply by an
//! odd constant, rotate), so two inputs of the same length that differ in one word always
//! differ in every lane, and lengths are hashed first. The simulation recomputes the whole
//! digest after every write to check the incremental one, so this runs millions of times per
//! sweep: it replaced SipHash, which took about half of the sweep's time.

use super::{Db, Value};

/// 160 bits as three lanes (the last truncated to 32 bits when printed).
pub type Digest = [u64; 3];

const LANE_SEEDS: [u64; 3] = [0x5ee0_d1e5_0123_4567, 0xabad_cafe_89ab_cdef, 0xfeed_f00d_0246_8ace];
const LANE_MULS: [u64; 3] = [0x9e37_79b9_7f4a_7c15, 0xc2b2_ae3d_27d4_eb4f, 0x1656_67b1_9e37_79f9];
/// Rotation of each lane (29 + 2 × lane).
const LANE_ROTS: [u32; 3] = [29, 31, 33];

#[inline]
fn mix(lanes: &mut [u64; 3], word: u64) {
    for ((lane, mul), rot) in lanes.iter_mut().zip(LANE_MULS).zip(LANE_ROTS) {
        *lane = (*lane ^ word).wrapping_mul(mul).rotate_left(rot);
    }
}

/// splitmix64's finalizer: spreads every input bit over the output.
#[inline]
fn finish(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn hash_parts(parts: &[&[u8]]) -> Digest {
    let mut lanes = LANE_SEEDS;
    for p in parts {
        mix(&mut lanes, p.len() as u64);
        let mut chunks = p.chunks_exact(8);
        for c in &mut chunks {
            mix(&mut lanes, u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            mix(&mut lanes, u64::from_le_bytes(last));
        }
    }
    [finish(lanes[0]), finish(lanes[1]), finish(lanes[2])]
}

fn xor_into(acc: &mut Digest, d: Digest) {
    for i in 0..3 {
        acc[i] ^= d[i];
    }
}

fn value_digest(v: &Value) -> Digest {
    let mut acc = [0u64; 3];
    match v {
        Value::Str(s) => acc = hash_parts(&[b"string", s]),
        Value::List(l) => {
            let mut chain = hash_parts(&[b"list"]);
            for e in l.iter() {
                let link: Vec<u8> = chain.iter().flat_map(|x| x.to_le_bytes()).collect();
                chain = hash_parts(&[&link, e]);
            }
            acc = chain;
        }
        Value::Set(s) => {
            xor_into(&mut acc, hash_parts(&[b"set"]));
            for m in s.iter() {
                xor_into(&mut acc, hash_parts(&[b"set-member", m]));
            }
        }
        Value::Hash(h) => {
            xor_into(&mut acc, hash_parts(&[b"hash"]));
            for (f, val) in h.iter() {
                xor_into(&mut acc, hash_parts(&[b"hash-field", f, val]));
            }
        }
        Value::ZSet(z) => {
            xor_into(&mut acc, hash_parts(&[b"zset"]));
            for (m, s) in z.scores.iter() {
                xor_into(&mut acc, hash_parts(&[b"zset-member", m, &s.to_bits().to_le_bytes()]));
            }
        }
    }
    acc
}

/// Digest of one key's value (`DEBUG DIGEST-VALUE`).
pub fn digest_value(v: &Value) -> Digest {
    value_digest(v)
}

/// One key's contribution to the dataset digest. The dataset digest is the XOR of these, so a
/// write updates it incrementally: XOR out the key's old contribution, XOR in the new one.
pub fn key_digest(db_index: usize, key: &[u8], value: &Value, expire_at: Option<i64>) -> Digest {
    let vd = value_digest(value);
    let vd_bytes: Vec<u8> = vd.iter().flat_map(|x| x.to_le_bytes()).collect();
    hash_parts(&[&(db_index as u64).to_le_bytes(), key, &vd_bytes, &expire_at.unwrap_or(-1).to_le_bytes()])
}

/// The key's current contribution (zero when absent), read raw (expired keys still count
/// until they are deleted).
pub fn key_digest_in(db_index: usize, db: &Db, key: &[u8]) -> Digest {
    match db.get_raw(key) {
        Some(v) => key_digest(db_index, key, v, db.expire_at(key)),
        None => [0; 3],
    }
}

pub fn xor(a: Digest, b: Digest) -> Digest {
    [a[0] ^ b[0], a[1] ^ b[1], a[2] ^ b[2]]
}

/// Digest of one database (XOR-combinable across databases).
pub fn digest_db(index: usize, db: &Db) -> Digest {
    let mut acc = [0u64; 3];
    if db.is_empty() {
        return acc;
    }
    for (k, v, exp) in db.iter() {
        xor_into(&mut acc, key_digest(index, k, v, exp));
    }
    acc
}

pub fn digest_all(dbs: &[Db]) -> Digest {
    let mut acc = [0u64; 3];
    for (i, db) in dbs.iter().enumerate() {
        xor_into(&mut acc, digest_db(i, db));
    }
    acc
}

pub fn to_hex(d: &Digest) -> String {
    format!("{:016x}{:016x}{:08x}", d[0], d[1], (d[2] >> 32) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Keyspace;
    use crate::sds::Sds;

    #[test]
    fn empty_is_zero_and_order_does_not_matter() {
        let a = Keyspace::new(2, [1, 1, 1, 1]);
        assert_eq!(to_hex(&digest_all(&a.dbs)), "0".repeat(40));
        let mut a = Keyspace::new(2, [1, 1, 1, 1]);
        let mut b = Keyspace::new(2, [9, 8, 7, 6]); // different hasher: different table order
        for i in 0..100 {
            a.dbs[0].insert(Sds::from(format!("k{i}").as_str()), Value::Str(Sds::from("v")), false);
        }
        for i in (0..100).rev() {
            b.dbs[0].insert(Sds::from(format!("k{i}").as_str()), Value::Str(Sds::from("v")), false);
        }
        assert_eq!(digest_all(&a.dbs), digest_all(&b.dbs));
        b.dbs[0].set_expire(b"k1", 5);
        assert_ne!(digest_all(&a.dbs), digest_all(&b.dbs));
        // Same key in another db is a different dataset.
        let mut c = Keyspace::new(2, [1, 1, 1, 1]);
        c.dbs[1].insert(Sds::from("k"), Value::Str(Sds::from("v")), false);
        let mut d = Keyspace::new(2, [1, 1, 1, 1]);
        d.dbs[0].insert(Sds::from("k"), Value::Str(Sds::from("v")), false);
        assert_ne!(digest_all(&c.dbs), digest_all(&d.dbs));
    }

    #[test]
    fn nearby_inputs_never_collide() {
        // Many short, structured inputs (the simulation's keys and values look like this),
        // every single-bit change of a longer one, and the length boundary around padding.
        let mut seen = std::collections::HashSet::new();
        for i in 0..200_000u32 {
            assert!(seen.insert(hash_parts(&[b"k", i.to_string().as_bytes()])), "collision at {i}");
        }
        let base = b"0123456789abcdef-0123456789".to_vec();
        let d0 = hash_parts(&[&base]);
        for bit in 0..base.len() * 8 {
            let mut flipped = base.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let d = hash_parts(&[&flipped]);
            assert!((0..3).all(|lane| d[lane] != d0[lane]), "bit {bit} left a lane unchanged");
        }
        assert_ne!(hash_parts(&[b"ab"]), hash_parts(&[b"ab\0"]));
        assert_ne!(hash_parts(&[b"ab", b"c"]), hash_parts(&[b"a", b"bc"]));
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::db::{Keyspace, Value};
    use crate::sds::Sds;

    #[derive(Clone, Debug)]
    enum Step {
        Set(u8, u8, u8),
        Del(u8, u8),
        Expire(u8, u8, i64),
        Persist(u8, u8),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..2, 0u8..6, any::<u8>()).prop_map(|(d, k, v)| Step::Set(d, k, v)),
            (0u8..2, 0u8..6).prop_map(|(d, k)| Step::Del(d, k)),
            (0u8..2, 0u8..6, 0i64..100).prop_map(|(d, k, t)| Step::Expire(d, k, t)),
            (0u8..2, 0u8..6).prop_map(|(d, k)| Step::Persist(d, k)),
        ]
    }

    /// Applies steps to a keyspace while maintaining the digest incrementally, the way
    /// `cmd::call` does (XOR out the key's old contribution, XOR in the new one), then expires
    /// everything due at `now`; the running digest must equal a full recomputation.
    fn run(steps: &[Step], seeds: [u64; 4], now: i64) -> Digest {
        let mut ks = Keyspace::new(2, seeds);
        ks.track_digest = true;
        let mut running = [0u64; 3];
        for s in steps {
            let (db, key) = match s {
                Step::Set(d, k, _) | Step::Del(d, k) | Step::Expire(d, k, _) | Step::Persist(d, k) => {
                    (*d as usize, format!("k{k}"))
                }
            };
            let before = key_digest_in(db, &ks.dbs[db], key.as_bytes());
            match s {
                Step::Set(_, _, v) => ks.dbs[db].insert(Sds::from(key.as_str()), Value::Str(Sds::new(&[*v])), false),
                Step::Del(..) => {
                    ks.dbs[db].remove(key.as_bytes());
                }
                Step::Expire(_, _, t) => {
                    ks.dbs[db].set_expire(key.as_bytes(), *t);
                }
                Step::Persist(..) => {
                    ks.dbs[db].persist(key.as_bytes());
                }
            }
            let after = key_digest_in(db, &ks.dbs[db], key.as_bytes());
            running = xor(xor(running, before), after);
            assert_eq!(running, digest_all(&ks.dbs));
        }
        let due = |ks: &Keyspace| ks.dbs.iter().any(|d| d.iter().any(|(_, _, e)| e.is_some_and(|t| t <= now)));
        while due(&ks) {
            ks.active_expire(now, 1000);
        }
        running = xor(running, std::mem::take(&mut ks.expired_digest));
        assert_eq!(running, digest_all(&ks.dbs), "expiry deletions fold into the running digest");
        running
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn incremental_digest_matches_full(steps in proptest::collection::vec(step(), 0..40), now in 0i64..120) {
            run(&steps, [1, 2, 3, 4], now);
        }

        /// Independent writes (different keys) commute: the digest does not depend on their
        /// order, nor on the node's hash seed (table order).
        #[test]
        fn independent_writes_commute(values in proptest::collection::vec(any::<u8>(), 6)) {
            let forward: Vec<Step> = values.iter().enumerate().map(|(k, v)| Step::Set(0, k as u8, *v)).collect();
            let mut backward = forward.clone();
            backward.reverse();
            prop_assert_eq!(run(&forward, [1, 2, 3, 4], 0), run(&backward, [9, 8, 7, 6], 0));
        }

        /// Writing a key then deleting it leaves the digest as if it never existed; expiring it
        /// does too.
        #[test]
        fn delete_and_expiry_undo_a_write(v in any::<u8>(), t in 0i64..50) {
            let base = run(&[Step::Set(1, 1, 7)], [1, 2, 3, 4], 0);
            prop_assert_eq!(run(&[Step::Set(1, 1, 7), Step::Set(0, 2, v), Step::Del(0, 2)], [1, 2, 3, 4], 0), base);
            prop_assert_eq!(run(&[Step::Set(1, 1, 7), Step::Set(0, 2, v), Step::Expire(0, 2, t)], [1, 2, 3, 4], 100), base);
        }
    }
}
