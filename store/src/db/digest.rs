//! Dataset digest (`DEBUG DIGEST`): one fingerprint of every database's contents.
//!
//! Order-independent where Redis's data is unordered: each key contributes a hash of
//! (db, key, type, value, deadline) and keys are combined with XOR, so two nodes holding the
//! same data in different hash-table orders agree. Within a value, list elements are hashed in
//! order, set/hash/zset elements are combined with XOR. The hash is SipHash with fixed keys, so
//! the digest is stable across processes and nodes (unlike the node-seeded table hasher).
//! An empty dataset digests to 40 zeros, as in Redis.

#![allow(deprecated)] // std's SipHasher is deprecated only in favour of randomly keyed hashers.

use std::hash::{Hasher as _, SipHasher};

use super::{Db, Value};

/// 160 bits as three lanes (the last truncated to 32 bits when printed).
pub type Digest = [u64; 3];

const LANE_KEYS: [(u64, u64); 3] = [(0x5ee0_d1e5, 0x0123), (0xabad_cafe, 0x4567), (0xfeed_f00d, 0x89ab)];

fn hash_parts(parts: &[&[u8]]) -> Digest {
    let mut d = [0u64; 3];
    for (lane, (k0, k1)) in LANE_KEYS.iter().enumerate() {
        let mut h = SipHasher::new_with_keys(*k0, *k1);
        for p in parts {
            h.write_usize(p.len());
            h.write(p);
        }
        d[lane] = h.finish();
    }
    d
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
}
