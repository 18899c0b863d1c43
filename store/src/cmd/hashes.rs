//! Hash commands: HSET, HMSET, HSETNX, HGET, HMGET, HDEL, HLEN, HSTRLEN, HEXISTS, HGETALL, HKEYS,
//! HVALS, HINCRBY, HINCRBYFLOAT, HRANDFIELD, HSCAN.
//!
//! Design notes:
//! - A hash is a `HashMap<Sds, Sds>` built with the keyspace hasher, so HGETALL/HKEYS order and
//!   HRANDFIELD picks are deterministic for a node's seed (Redis's order is unspecified too, but
//!   for small hashes it is insertion order, which we do not reproduce).
//! - HSCAN uses the hash-ordered cursor described in `sets.rs`: complete under concurrent
//!   changes, O(n) per call; a hash small enough for Redis's listpack encoding (<= 128 fields,
//!   fields and values <= 64 bytes) is returned whole with cursor 0, as Redis does.
//! - HINCRBYFLOAT computes in emulated x87 `long double` ([`long_double`]), as Redis does on
//!   x86-64, so results match it digit for digit (0.1 + 0.2 is `0.3`, 1000.1 is
//!   `1000.09999999999999998`); plain `f64` arithmetic would differ in the last digits.
//! - HRANDFIELD with a negative count is bounded by `RANDOM_REPLY_MAX` samples (see `sets.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::sets::RANDOM_REPLY_MAX;
use super::sets::{pick, range_arg, reply_empty_scan, reply_scan, sample_distinct, scan_cursor, scan_opts, scan_page};
use super::*;
use crate::db::HashMapS;
use crate::protocol::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "hset", arity: -4, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: hset },
    CommandSpec { name: "hmset", arity: -4, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: hmset },
    CommandSpec { name: "hsetnx", arity: 4, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: hsetnx },
    CommandSpec { name: "hget", arity: 3, flags: READONLY | FAST, keys: (1, 1, 1), handler: hget },
    CommandSpec { name: "hmget", arity: -3, flags: READONLY | FAST, keys: (1, 1, 1), handler: hmget },
    CommandSpec { name: "hdel", arity: -3, flags: WRITE | FAST, keys: (1, 1, 1), handler: hdel },
    CommandSpec { name: "hlen", arity: 2, flags: READONLY | FAST, keys: (1, 1, 1), handler: hlen },
    CommandSpec { name: "hstrlen", arity: 3, flags: READONLY | FAST, keys: (1, 1, 1), handler: hstrlen },
    CommandSpec { name: "hexists", arity: 3, flags: READONLY | FAST, keys: (1, 1, 1), handler: hexists },
    CommandSpec { name: "hgetall", arity: 2, flags: READONLY, keys: (1, 1, 1), handler: hgetall },
    CommandSpec { name: "hkeys", arity: 2, flags: READONLY, keys: (1, 1, 1), handler: hkeys },
    CommandSpec { name: "hvals", arity: 2, flags: READONLY, keys: (1, 1, 1), handler: hvals },
    CommandSpec { name: "hincrby", arity: 4, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: hincrby },
    CommandSpec {
        name: "hincrbyfloat",
        arity: 4,
        flags: WRITE | DENYOOM | FAST,
        keys: (1, 1, 1),
        handler: hincrbyfloat,
    },
    CommandSpec { name: "hrandfield", arity: -2, flags: READONLY, keys: (1, 1, 1), handler: hrandfield },
    CommandSpec { name: "hscan", arity: -3, flags: READONLY, keys: (1, 1, 1), handler: hscan },
];

type HashS = HashMapS<Sds, Sds>;

/// Redis's `hash-max-listpack-entries` / `hash-max-listpack-value` defaults.
const LISTPACK_MAX_ENTRIES: usize = 128;
const LISTPACK_MAX_VALUE: usize = 64;

/// Reads a hash (hit/miss counted): Ok(None) if missing; Err after replying WRONGTYPE.
fn read_hash(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Arc<HashS>>, ()> {
    match ctx.read(key) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(h.clone())),
        Some(_) => {
            ctx.error(WRONGTYPE);
            Err(())
        }
    }
}

/// Looks a hash up for modification: Ok(None) if missing, Err(()) if another type.
fn write_hash<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut HashS>, ()> {
    match ctx.write_lookup(key) {
        None => Ok(None),
        Some(Value::Hash(h)) => Ok(Some(Arc::make_mut(h))),
        Some(_) => Err(()),
    }
}

/// Looks a hash up for modification, creating an empty one if missing (Redis's
/// `hashTypeLookupWriteOrCreate`); Err(()) if another type. The caller must delete the key again
/// if it leaves the hash empty.
fn write_or_create<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<&'a mut HashS, ()> {
    let db = ctx.db();
    match ctx.st.ks.lookup(db, key, ctx.now_ms).map(|v| v.type_name()) {
        Some("hash") => {}
        Some(_) => return Err(()),
        None => {
            let h: HashS = HashMap::with_hasher(ctx.st.ks.hasher());
            ctx.st.ks.dbs[db].insert(Sds::new(key), Value::Hash(Arc::new(h)), false);
        }
    }
    match ctx.st.ks.dbs[db].get_raw_mut(key) {
        Some(Value::Hash(h)) => Ok(Arc::make_mut(h)),
        _ => Err(()),
    }
}

/// Deletes the key if its hash is empty (after a failed increment on a fresh key).
fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let db = ctx.db();
    if matches!(ctx.st.ks.dbs[db].get_raw(key), Some(Value::Hash(h)) if h.is_empty()) {
        ctx.st.ks.delete(db, key);
    }
}

fn hset_generic(ctx: &mut Ctx, args: &[Bytes], name: &str) {
    if !args.len().is_multiple_of(2) {
        return ctx.error(&format!("ERR wrong number of arguments for '{name}' command"));
    }
    let key = &args[1];
    let Ok(h) = write_or_create(ctx, key) else {
        return ctx.error(WRONGTYPE);
    };
    let pairs = &args[2..];
    let created = pairs.chunks_exact(2).filter(|p| h.insert(Sds::new(&p[0]), Sds::new(&p[1])).is_none()).count();
    ctx.dirty((pairs.len() / 2) as u64);
    if name == "hset" {
        ctx.int(created as i64)
    } else {
        ctx.ok()
    }
}

fn hset(ctx: &mut Ctx, args: &[Bytes]) {
    hset_generic(ctx, args, "hset")
}

fn hmset(ctx: &mut Ctx, args: &[Bytes]) {
    hset_generic(ctx, args, "hmset")
}

fn hsetnx(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let Ok(h) = write_or_create(ctx, key) else {
        return ctx.error(WRONGTYPE);
    };
    if h.contains_key(&args[2][..]) {
        return ctx.int(0);
    }
    h.insert(Sds::new(&args[2]), Sds::new(&args[3]));
    ctx.dirty(1);
    ctx.int(1)
}

fn hget(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else {
        return;
    };
    match h.as_ref().and_then(|h| h.get(&args[2][..])) {
        Some(v) => Reply::bulk(ctx.out, v),
        None => ctx.null(),
    }
}

fn hmget(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else {
        return;
    };
    let fields = &args[2..];
    Reply::array_len(ctx.out, fields.len());
    for f in fields {
        match h.as_ref().and_then(|h| h.get(&f[..])) {
            Some(v) => Reply::bulk(ctx.out, v),
            None => ctx.null(),
        }
    }
}

fn hdel(ctx: &mut Ctx, args: &[Bytes]) {
    let key = &args[1];
    let (deleted, empty) = match write_hash(ctx, key) {
        Err(()) => return ctx.error(WRONGTYPE),
        Ok(None) => return ctx.int(0),
        Ok(Some(h)) => (args[2..].iter().filter(|f| h.remove(&f[..]).is_some()).count(), h.is_empty()),
    };
    if empty {
        let db = ctx.db();
        ctx.st.ks.delete(db, key);
    }
    ctx.dirty(deleted as u64);
    ctx.int(deleted as i64)
}

fn hlen(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else {
        return;
    };
    ctx.int(h.map_or(0, |h| h.len() as i64))
}

fn hstrlen(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else {
        return;
    };
    ctx.int(h.as_ref().and_then(|h| h.get(&args[2][..])).map_or(0, |v| v.len() as i64))
}

fn hexists(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else {
        return;
    };
    ctx.int(h.is_some_and(|h| h.contains_key(&args[2][..])) as i64)
}

fn hgetall(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else {
        return;
    };
    let Some(h) = h else {
        return ctx.map_len(0);
    };
    ctx.map_len(h.len());
    for (f, v) in h.iter() {
        Reply::bulk(ctx.out, f);
        Reply::bulk(ctx.out, v);
    }
}

fn hkeys(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else {
        return;
    };
    match h {
        Some(h) => Reply::bulk_array(ctx.out, h.keys()),
        None => Reply::array_len(ctx.out, 0),
    }
}

fn hvals(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(h) = read_hash(ctx, &args[1]) else {
        return;
    };
    match h {
        Some(h) => Reply::bulk_array(ctx.out, h.values()),
        None => Reply::array_len(ctx.out, 0),
    }
}

fn hincrby(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(incr) = arg_i64(ctx, &args[3]) else {
        return;
    };
    let key = &args[1];
    let Ok(h) = write_or_create(ctx, key) else {
        return ctx.error(WRONGTYPE);
    };
    let result = match h.get(&args[2][..]) {
        None => Ok(incr),
        Some(v) => match parse_i64_strict(v) {
            None => Err("ERR hash value is not an integer"),
            Some(old) => old.checked_add(incr).ok_or("ERR increment or decrement would overflow"),
        },
    };
    match result {
        Ok(n) => {
            h.insert(Sds::new(&args[2]), Sds::new(n.to_string().as_bytes()));
            ctx.dirty(1);
            ctx.int(n)
        }
        Err(msg) => {
            drop_if_empty(ctx, key);
            ctx.error(msg)
        }
    }
}

fn hincrbyfloat(ctx: &mut Ctx, args: &[Bytes]) {
    use long_double as ld;
    let Some(incr) = ld::parse(&args[3]) else {
        return ctx.error(NOT_FLOAT);
    };
    if !ld::is_finite(incr) {
        return ctx.error("ERR value is NaN or Infinity");
    }
    let key = &args[1];
    let Ok(h) = write_or_create(ctx, key) else {
        return ctx.error(WRONGTYPE);
    };
    let result = match h.get(&args[2][..]) {
        None => Ok(incr),
        Some(v) => match ld::parse(v) {
            None => Err("ERR hash value is not a float"),
            Some(old) => match ld::add(old, incr) {
                Some(n) if ld::is_finite(n) => Ok(n),
                _ => Err("ERR increment would produce NaN or Infinity"),
            },
        },
    };
    match result {
        Ok(n) => {
            let text = ld::format_human(n);
            h.insert(Sds::new(&args[2]), Sds::new(text.as_bytes()));
            // Replicas get the result (HSET), so float formatting cannot diverge.
            rewrite_as(ctx, vec![vec![arg("HSET"), key.clone(), args[2].clone(), arg(&text)]]);
            ctx.dirty(1);
            ctx.bulk(text.as_bytes())
        }
        Err(msg) => {
            drop_if_empty(ctx, key);
            ctx.error(msg)
        }
    }
}

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The header of an HRANDFIELD reply of `n` fields: with values, RESP2 flattens the pairs and
/// RESP3 nests each pair in its own array (Redis 7.0's shapes). `n` is at most the hash's size
/// or `RANDOM_REPLY_MAX`, so twice it fits.
#[allow(clippy::arithmetic_side_effects)]
fn reply_pairs_len(ctx: &mut Ctx, n: usize, withvalues: bool) {
    let per = if withvalues && !ctx.proto().is_resp3() { 2 } else { 1 };
    ctx.array_len(n * per)
}

fn reply_pairs<'a>(ctx: &mut Ctx, pairs: impl Iterator<Item = (&'a Sds, &'a Sds)>, withvalues: bool) {
    let nested = withvalues && ctx.proto().is_resp3();
    for (f, v) in pairs {
        if nested {
            ctx.array_len(2);
        }
        Reply::bulk(ctx.out, f);
        if withvalues {
            Reply::bulk(ctx.out, v);
        }
    }
}

fn hrandfield(ctx: &mut Ctx, args: &[Bytes]) {
    let env = ctx.env;
    let rng = &env.rng;
    if args.len() < 3 {
        let Ok(h) = read_hash(ctx, &args[1]) else {
            return;
        };
        return match h.as_ref().and_then(|h| h.keys().nth(pick(rng, h.len()))) {
            Some(f) => Reply::bulk(ctx.out, f),
            None => ctx.null(),
        };
    }
    let Some(count) = range_arg(ctx, &args[2], -i64::MAX, i64::MAX) else {
        return;
    };
    if args.len() > 4 || (args.len() == 4 && !eq_ic(&args[3], "withvalues")) {
        return ctx.error(SYNTAX);
    }
    let withvalues = args.len() == 4;
    if withvalues && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return ctx.error("ERR value is out of range");
    }
    let Ok(h) = read_hash(ctx, &args[1]) else {
        return;
    };
    let Some(h) = h else {
        return Reply::array_len(ctx.out, 0);
    };
    // An empty collection is never stored; were one found, answer as for a missing key.
    if count == 0 || h.is_empty() {
        return Reply::array_len(ctx.out, 0);
    }
    let mut all: Vec<(&Sds, &Sds)> = h.iter().collect();
    if count < 0 || count == 1 {
        let n = count.unsigned_abs();
        if n > RANDOM_REPLY_MAX {
            return ctx.error("ERR value is out of range");
        }
        reply_pairs_len(ctx, n as usize, withvalues);
        for _ in 0..n {
            let (f, v) = all[pick(rng, all.len())];
            reply_pairs(ctx, std::iter::once((f, v)), withvalues);
        }
        return;
    }
    if count as u64 >= all.len() as u64 {
        reply_pairs_len(ctx, all.len(), withvalues);
        return reply_pairs(ctx, all.into_iter(), withvalues);
    }
    sample_distinct(rng, &mut all, count as usize);
    reply_pairs_len(ctx, all.len(), withvalues);
    reply_pairs(ctx, all.into_iter(), withvalues)
}

fn hscan(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(cursor) = scan_cursor(ctx, &args[2]) else {
        return;
    };
    let Ok(h) = read_hash(ctx, &args[1]) else {
        return;
    };
    let Some(h) = h else {
        return reply_empty_scan(ctx.out);
    };
    let Some(opts) = scan_opts(ctx, &args[3..]) else {
        return;
    };
    let compact = h.len() <= LISTPACK_MAX_ENTRIES
        && h.iter().all(|(f, v)| f.len() <= LISTPACK_MAX_VALUE && v.len() <= LISTPACK_MAX_VALUE);
    let (page, next): (Vec<(&Sds, &Sds)>, u64) = if compact {
        (h.iter().collect(), 0)
    } else {
        let hasher = ctx.st.ks.hasher();
        scan_page(&hasher, h.iter(), cursor, opts.count)
    };
    let flat: Vec<&Sds> = page.into_iter().filter(|(f, _)| opts.matches(f)).flat_map(|(f, v)| [f, v]).collect();
    reply_scan(ctx.out, next, flat.into_iter());
}

/// Software x87 80-bit extended precision, the `long double` Redis uses for HINCRBYFLOAT (and
/// INCRBYFLOAT) on x86-64 Linux, so that results match Redis digit for digit: parsing is
/// correctly rounded like glibc's `strtold`, addition rounds to a 64-bit mantissa (nearest,
/// ties to even) like the x87 FPU, and formatting is exact `%.17Lf` with trailing zeros removed
/// (Redis's `ld2string(..., LD_STR_HUMAN)`). Big-number work is bounded: inputs are at most
/// 5119 bytes (Redis's `MAX_LONG_DOUBLE_CHARS`) and exponents are checked before any
/// allocation, so the largest number handled has about 33,000 bits.
pub(crate) mod long_double {
    /// A long double value. `Finite` is `mant * 2^exp` with the top bit of `mant` set.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Ext {
        Zero { neg: bool },
        Inf { neg: bool },
        Finite { neg: bool, mant: u64, exp: i32 },
    }

    /// Longest accepted input (Redis rejects `len >= MAX_LONG_DOUBLE_CHARS`).
    const MAX_CHARS: usize = 5119;
    /// Largest `exp` of a finite value (`mant * 2^exp < 2^16384`).
    const EXP_MAX: i32 = 16384 - 64;
    /// Smallest `exp` kept (subnormals are kept at full precision, a negligible deviation).
    const EXP_MIN: i32 = -16445 - 63;

    /// Little-endian base-2^32 natural number.
    #[derive(Clone, Debug)]
    struct Big(Vec<u32>);

    impl Big {
        fn from_u64(v: u64) -> Big {
            let mut b = Big(vec![v as u32, (v >> 32) as u32]);
            b.trim();
            b
        }

        fn trim(&mut self) {
            while self.0.last() == Some(&0) {
                self.0.pop();
            }
        }

        fn is_zero(&self) -> bool {
            self.0.is_empty()
        }

        /// `limb * m + carry` is below 2^64: both factors are below 2^32 and the carry too.
        #[allow(clippy::arithmetic_side_effects)]
        fn mul_add_small(&mut self, m: u32, a: u32) {
            let mut carry = a as u64;
            for limb in self.0.iter_mut() {
                let v = *limb as u64 * m as u64 + carry;
                *limb = v as u32;
                carry = v >> 32;
            }
            if carry > 0 {
                self.0.push(carry as u32);
            }
            self.trim();
        }

        /// `n` only decreases while at least 9, and 10^n is taken for `n` < 9.
        #[allow(clippy::arithmetic_side_effects)]
        fn mul_pow10(&mut self, mut n: u32) {
            while n >= 9 {
                self.mul_add_small(1_000_000_000, 0);
                n -= 9;
            }
            self.mul_add_small(10u32.pow(n), 0);
        }

        /// Divides in place; returns the remainder. Callers divide by nonzero constants (powers
        /// of 5 and 10^9), and the running remainder is below `d`, so `rem << 32 | limb` fits.
        #[allow(clippy::arithmetic_side_effects)]
        fn div_small(&mut self, d: u32) -> u32 {
            let mut rem = 0u64;
            for limb in self.0.iter_mut().rev() {
                let cur = (rem << 32) | *limb as u64;
                *limb = (cur / d as u64) as u32;
                rem = cur % d as u64;
            }
            self.trim();
            rem as u32
        }

        fn shl(&mut self, bits: usize) {
            if self.is_zero() {
                return;
            }
            let (words, bits) = (bits / 32, bits % 32);
            if bits > 0 {
                let mut carry = 0u32;
                for limb in self.0.iter_mut() {
                    let v = ((*limb as u64) << bits) | carry as u64;
                    *limb = v as u32;
                    carry = (v >> 32) as u32;
                }
                if carry > 0 {
                    self.0.push(carry);
                }
            }
            self.0.splice(0..0, std::iter::repeat_n(0, words));
        }

        /// The limb count times 32 is the number's bit size (tens of thousands at most, see
        /// above), and the top limb has at most 32 leading zeros.
        #[allow(clippy::arithmetic_side_effects)]
        fn bits(&self) -> usize {
            match self.0.last() {
                None => 0,
                Some(&top) => self.0.len() * 32 - top.leading_zeros() as usize,
            }
        }

        fn bit(&self, i: usize) -> bool {
            self.0.get(i / 32).is_some_and(|l| (l >> (i % 32)) & 1 == 1)
        }

        /// Whether any of the lowest `n` bits is set. `rest` is below 32, so the mask is in range.
        #[allow(clippy::arithmetic_side_effects)]
        fn any_below(&self, n: usize) -> bool {
            let words = n / 32;
            if self.0.iter().take(words).any(|&l| l != 0) {
                return true;
            }
            let rest = n % 32;
            rest > 0 && self.0.get(words).is_some_and(|&l| l & ((1u32 << rest) - 1) != 0)
        }

        /// Bits `[from, from + 64)` as a u64. `from` is a bit position in the number (at most
        /// its bit size), so `from + i` cannot overflow.
        #[allow(clippy::arithmetic_side_effects)]
        fn bits_at(&self, from: usize) -> u64 {
            let mut v = 0u64;
            for i in 0..64 {
                if self.bit(from + i) {
                    v |= 1 << i;
                }
            }
            v
        }

        fn to_decimal(&self) -> String {
            let mut n = self.clone();
            let mut chunks = Vec::new();
            while !n.is_zero() {
                chunks.push(n.div_small(1_000_000_000));
            }
            let mut s = chunks.pop().map_or_else(|| "0".to_string(), |c| c.to_string());
            for c in chunks.iter().rev() {
                s.push_str(&format!("{c:09}"));
            }
            s
        }
    }

    /// Rounds `n * 2^shift_exp` (n > 0) to a 64-bit mantissa, nearest-even; `sticky` says
    /// nonzero bits were already lost below `n`. `n > 0` has 1 to about 33,000 bits, so the
    /// shifts are within 1..=63 (or `sh >= 1`) and `exp`, which callers keep within a few
    /// million, moves by at most that much.
    #[allow(clippy::arithmetic_side_effects)]
    fn round_big(neg: bool, n: &Big, exp: i64, sticky: bool) -> Option<Ext> {
        let len = n.bits();
        let (mant, exp) = if len <= 64 {
            let m = n.bits_at(0) << (64 - len);
            (m, exp - (64 - len) as i64)
        } else {
            let sh = len - 64;
            let mut m = n.bits_at(sh);
            let round = n.bit(sh - 1);
            let rest = sticky || n.any_below(sh - 1);
            let mut e = exp + sh as i64;
            if round && (rest || m & 1 == 1) {
                m = m.wrapping_add(1);
                if m == 0 {
                    m = 1 << 63;
                    e += 1;
                }
            }
            (m, e)
        };
        finite(neg, mant, exp)
    }

    fn finite(neg: bool, mant: u64, exp: i64) -> Option<Ext> {
        if exp > EXP_MAX as i64 {
            return Some(Ext::Inf { neg });
        }
        if exp < EXP_MIN as i64 {
            return Some(Ext::Zero { neg });
        }
        Some(Ext::Finite { neg, mant, exp: exp as i32 })
    }

    /// Parses like Redis's `string2ld`: `strtold` over the whole string, no leading space, no
    /// NaN, and out-of-range values (overflow, underflow to zero) rejected. Hexadecimal floats
    /// (`0x1.8p3`) are accepted, as `strtold` accepts them.
    ///
    /// The arithmetic is bounded by the input: positions and digit counts by `MAX_CHARS`, the
    /// exponent is clamped to 1,000,000 digit by digit, and the magnitude checks keep `k`
    /// between about -10,100 and 4,934 before any big-number work (so `m` and `s` are small).
    #[allow(clippy::arithmetic_side_effects)]
    pub fn parse(s: &[u8]) -> Option<Ext> {
        if s.is_empty() || s.len() > MAX_CHARS || super::is_c_space(s[0]) {
            return None;
        }
        let (neg, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let lower = body.to_ascii_lowercase();
        if lower == b"inf" || lower == b"infinity" {
            return Some(Ext::Inf { neg });
        }
        if let Some(hex) = lower.strip_prefix(b"0x") {
            return parse_hex(neg, hex);
        }
        let mut i = 0;
        let mut digits: Vec<u8> = Vec::new();
        let mut frac_len: i64 = 0;
        while i < body.len() && body[i].is_ascii_digit() {
            digits.push(body[i] - b'0');
            i += 1;
        }
        if i < body.len() && body[i] == b'.' {
            i += 1;
            while i < body.len() && body[i].is_ascii_digit() {
                digits.push(body[i] - b'0');
                frac_len += 1;
                i += 1;
            }
        }
        if digits.is_empty() {
            return None;
        }
        let mut exp10: i64 = 0;
        if i < body.len() && (body[i] == b'e' || body[i] == b'E') {
            i += 1;
            let eneg = match body.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            while i < body.len() && body[i].is_ascii_digit() {
                exp10 = (exp10 * 10 + (body[i] - b'0') as i64).min(1_000_000);
                i += 1;
            }
            if i == start {
                return None;
            }
            if eneg {
                exp10 = -exp10;
            }
        }
        if i != body.len() {
            return None;
        }
        let first = digits.iter().position(|&d| d != 0);
        let Some(first) = first else {
            return Some(Ext::Zero { neg });
        };
        let digits = &digits[first..];
        let k = exp10 - frac_len; // value = digits * 10^k
        let magnitude = digits.len() as i64 + k; // value < 10^magnitude
        if magnitude > 4934 {
            return None; // overflow: strtold's ERANGE
        }
        if magnitude < -4952 {
            return None; // underflow to zero: ERANGE
        }
        let mut n = Big(Vec::new());
        for chunk in digits.chunks(9) {
            let v = chunk.iter().fold(0u32, |a, &d| a * 10 + d as u32);
            n.mul_add_small(10u32.pow(chunk.len() as u32), v);
        }
        let v = if k >= 0 {
            n.mul_pow10(k as u32);
            round_big(neg, &n, 0, false)?
        } else {
            // digits / 10^m = (digits * 2^s / 2^m) / 5^m with s large enough for 70+ bits.
            let m = (-k) as usize;
            let s = m + m * 2322 / 1000 + 72;
            n.shl(s - m);
            let mut sticky = false;
            let mut left = m;
            while left > 0 {
                let step = left.min(13);
                sticky |= n.div_small(5u32.pow(step as u32)) != 0;
                left -= step;
            }
            round_big(neg, &n, -(s as i64), sticky)?
        };
        match v {
            Ext::Finite { .. } => Some(v),
            _ => None, // out of range: rejected like strtold's ERANGE
        }
    }

    /// The part of a hexadecimal float after `0x` (lower case): hex digits with an optional
    /// point, then an optional binary exponent `p[+-]digits`. Positions and digit counts are
    /// bounded by `MAX_CHARS`, the exponent is clamped to 1,000,000 digit by digit.
    #[allow(clippy::arithmetic_side_effects)]
    fn parse_hex(neg: bool, s: &[u8]) -> Option<Ext> {
        let hex = |b: u8| (b as char).to_digit(16);
        let mut n = Big(Vec::new());
        let (mut i, mut frac, mut digits) = (0, 0i64, 0);
        let mut point = false;
        while i < s.len() {
            match s[i] {
                b'.' if !point => point = true,
                b => match hex(b) {
                    Some(d) => {
                        n.mul_add_small(16, d);
                        digits += 1;
                        frac += point as i64;
                    }
                    None => break,
                },
            }
            i += 1;
        }
        if digits == 0 {
            return None;
        }
        let mut exp2: i64 = 0;
        if i < s.len() && s[i] == b'p' {
            let eneg = s.get(i + 1) == Some(&b'-');
            i += 1 + matches!(s.get(i + 1), Some(b'-' | b'+')) as usize;
            let start = i;
            while i < s.len() && s[i].is_ascii_digit() {
                exp2 = (exp2 * 10 + (s[i] - b'0') as i64).min(1_000_000);
                i += 1;
            }
            if i == start {
                return None;
            }
            if eneg {
                exp2 = -exp2;
            }
        }
        if i != s.len() {
            return None;
        }
        if n.is_zero() {
            return Some(Ext::Zero { neg });
        }
        match round_big(neg, &n, exp2 - 4 * frac, false)? {
            v @ Ext::Finite { .. } => Some(v),
            _ => None, // out of range: rejected like strtold's ERANGE
        }
    }

    /// `a + b`; None when the result is NaN (`inf + -inf`). Exponents are i32s widened to
    /// i64; mantissas have their top bit set, so shifted left by 62 they are below 2^126 and
    /// their sum fits a u128; `a` is the larger, so the difference is not negative; `s` is
    /// nonzero, so `top` is within 0..=127 and the shifts within 1..=127.
    #[allow(clippy::arithmetic_side_effects)]
    pub fn add(a: Ext, b: Ext) -> Option<Ext> {
        use Ext::*;
        match (a, b) {
            (Inf { neg: x }, Inf { neg: y }) => (x == y).then_some(a),
            (Inf { .. }, _) => Some(a),
            (_, Inf { .. }) => Some(b),
            (Zero { neg: x }, Zero { neg: y }) => Some(Zero { neg: x && y }),
            (Zero { .. }, _) => Some(b),
            (_, Zero { .. }) => Some(a),
            (Finite { neg: an, mant: am, exp: ae }, Finite { neg: bn, mant: bm, exp: be }) => {
                let ((an, am, ae), (bn, bm, be)) =
                    if (be, bm) > (ae, am) { ((bn, bm, be), (an, am, ae)) } else { ((an, am, ae), (bn, bm, be)) };
                let d = (ae as i64 - be as i64) as u64;
                let a128 = (am as u128) << 62;
                let full = (bm as u128) << 62;
                let (mut b128, sticky) = if d == 0 {
                    (full, false)
                } else if d <= 126 {
                    (full >> d, full & ((1u128 << d) - 1) != 0)
                } else {
                    (0, true)
                };
                if sticky {
                    b128 |= 1;
                }
                let s = if an == bn { a128 + b128 } else { a128 - b128 };
                if s == 0 {
                    return Some(Zero { neg: false });
                }
                let top = 127 - s.leading_zeros() as i64;
                let base = ae as i64 - 62;
                if top > 63 {
                    let sh = (top - 63) as u32;
                    let mut m = (s >> sh) as u64;
                    let rem = s & ((1u128 << sh) - 1);
                    let half = 1u128 << (sh - 1);
                    let mut e = base + sh as i64;
                    if rem > half || (rem == half && m & 1 == 1) {
                        m = m.wrapping_add(1);
                        if m == 0 {
                            m = 1 << 63;
                            e += 1;
                        }
                    }
                    finite(an, m, e)
                } else {
                    let sh = (63 - top) as u32;
                    finite(an, (s << sh) as u64, base - sh as i64)
                }
            }
        }
    }

    pub fn is_finite(v: Ext) -> bool {
        !matches!(v, Ext::Inf { .. })
    }

    /// Formats like Redis's `ld2string(..., LD_STR_HUMAN)`: `%.17Lf`, trailing zeros and a bare
    /// dot removed, `-0` written `0`. A finite value's `exp` is within `EXP_MIN..=EXP_MAX`, so
    /// `e >= 1` when negative; `bits` is within 1..32; the padded digits are at least 18 long.
    #[allow(clippy::arithmetic_side_effects)]
    pub fn format_human(v: Ext) -> String {
        let (neg, digits) = match v {
            Ext::Inf { neg } => return if neg { "-inf" } else { "inf" }.to_string(),
            Ext::Zero { neg } => (neg, "0".to_string()),
            Ext::Finite { neg, mant, exp } => {
                let mut n = Big::from_u64(mant);
                if exp >= 0 {
                    n.shl(exp as usize);
                    let mut d = n.to_decimal();
                    d.push_str(&"0".repeat(17));
                    (neg, d)
                } else {
                    let e = (-exp) as usize;
                    n.mul_pow10(17);
                    let round = n.bit(e - 1);
                    let rest = n.any_below(e - 1);
                    let mut q = n.clone();
                    // q = n >> e
                    let words = e / 32;
                    q.0.drain(..words.min(q.0.len()));
                    let bits = e % 32;
                    if bits > 0 {
                        let mut carry = 0u32;
                        for limb in q.0.iter_mut().rev() {
                            let v = *limb;
                            *limb = (v >> bits) | carry;
                            carry = v << (32 - bits);
                        }
                    }
                    q.trim();
                    if round && (rest || q.bit(0)) {
                        q.mul_add_small(1, 1);
                    }
                    (neg, q.to_decimal())
                }
            }
        };
        let padded = if digits.len() < 18 { format!("{}{}", "0".repeat(18 - digits.len()), digits) } else { digits };
        let (int, frac) = padded.split_at(padded.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut out = String::with_capacity(padded.len() + 2);
        if neg {
            out.push('-');
        }
        out.push_str(int);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        if out == "-0" {
            out = "0".to_string();
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn incr(a: &str, b: &str) -> String {
            format_human(add(parse(a.as_bytes()).unwrap(), parse(b.as_bytes()).unwrap()).unwrap())
        }

        #[test]
        fn matches_redis_on_x86_64() {
            // Expected values taken from redis-server 7.0 (HINCRBYFLOAT).
            assert_eq!(incr("0", "1000.1"), "1000.09999999999999998");
            assert_eq!(incr("1000.09999999999999998", "0.2"), "1000.29999999999999999");
            assert_eq!(incr("0.1", "0.2"), "0.3");
            assert_eq!(incr("0", "1.5e-10"), "0.00000000015");
            assert_eq!(incr("1.5e-10", "0.2"), "0.20000000015");
            assert_eq!(incr("0", "123456.789"), "123456.78900000000000148");
            assert_eq!(incr("123456.78900000000000148", "0.2"), "123456.98900000000000432");
            assert_eq!(incr("0", "1e30"), "1000000000000000000024696061952");
            assert_eq!(incr("0", "1e20"), "100000000000000000000");
            assert_eq!(incr("-0.7", "0.2"), "-0.5");
            assert_eq!(incr("10.6", "5.0e3"), "5010.60000000000000009");
            assert_eq!(incr("5010.60000000000000009", "2.0e2"), "5210.60000000000000009");
            assert_eq!(incr("10.5", "0.1"), "10.6");
            assert_eq!(incr("3.3", "0.2"), "3.5");
            assert_eq!(incr("1", "-1"), "0");
            assert_eq!(incr("-1e-30", "0"), "0");
        }

        #[test]
        fn parse_rejects_what_redis_rejects() {
            for bad in ["", " 1", "1 ", "abc", "nan", "1e", "1e5000", "1e-5000", ".", "-", "0x", "0x.", "0x1p", "0x1g"]
            {
                assert_eq!(parse(bad.as_bytes()), None, "{bad}");
            }
            // Hexadecimal floats, as strtold reads them (values checked against redis-server 7.0).
            assert_eq!(incr("1", "0x1p3"), "9");
            assert_eq!(incr("9", "0x.8"), "9.5");
            assert_eq!(incr("0", "-0X10"), "-16");
            assert_eq!(incr("0", "0x1.8p-1"), "0.75");
            assert!(matches!(parse(b"1e400"), Some(Ext::Finite { .. })));
            assert_eq!(parse(b"-inf"), Some(Ext::Inf { neg: true }));
            assert_eq!(parse(b"-0"), Some(Ext::Zero { neg: true }));
            assert_eq!(add(parse(b"inf").unwrap(), parse(b"-inf").unwrap()), None);
        }
    }
}
