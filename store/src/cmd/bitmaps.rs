//! Bitmaps on strings: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP (Redis 7.0's `bitops.c`).
//!
//! Why it is shaped this way: a bitmap is an ordinary string value (bit 0 is the most
//! significant bit of byte 0), so these commands read and write `Value::Str` and everything
//! else (replication, AOF, RDB, DEBUG DIGEST) already handles them. Ranges are resolved once
//! into an inclusive range of bit positions, and the searches work on that range, instead of
//! Redis's byte loop with edge masks; the replies, including Redis's answer for a clear bit not
//! found without an explicit end (the first bit past the string), are Redis's. Offsets come
//! from clients: a bit offset is bounded by proto-max-bulk-len before anything is allocated.

use bytes::Bytes;

use super::*;
use crate::db::Value;
use crate::protocol::parse_i64_strict;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "setbit", arity: 4, flags: WRITE | DENYOOM, keys: (1, 1, 1), handler: setbit },
    CommandSpec { name: "getbit", arity: 3, flags: READONLY | FAST, keys: (1, 1, 1), handler: getbit },
    CommandSpec { name: "bitcount", arity: -2, flags: READONLY, keys: (1, 1, 1), handler: bitcount },
    CommandSpec { name: "bitpos", arity: -3, flags: READONLY, keys: (1, 1, 1), handler: bitpos },
    CommandSpec {
        name: "bitop",
        arity: -4,
        flags: WRITE | DENYOOM | SIGNALS_OWN_KEYS,
        keys: (2, -1, 1),
        handler: bitop,
    },
];

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

/// A bit offset, bounded so the byte it addresses fits proto-max-bulk-len (not for the master's
/// stream, which Redis obeys whatever the limit).
fn bit_offset(ctx: &mut Ctx, arg: &[u8]) -> Option<u64> {
    let limit_bytes = ctx.st.config.hot.proto_max_bulk_len;
    match parse_i64_strict(arg) {
        Some(off) if off >= 0 && (ctx.client.is_master || (off >> 3) < limit_bytes) => Some(off as u64),
        _ => {
            ctx.error(BAD_OFFSET);
            None
        }
    }
}

/// The string at `key` (None if missing); a wrong type is answered and is Err.
fn read_bytes(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Vec<u8>>, ()> {
    super::strings::read_str(ctx, key).map(|s| s.map(|s| s.to_vec()))
}

fn bit_at(p: &[u8], pos: u64) -> bool {
    let byte = usize::try_from(pos >> 3).ok().and_then(|i| p.get(i)).copied().unwrap_or(0);
    byte & (0x80u8 >> (pos & 7)) != 0
}

fn setbit(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(offset) = bit_offset(ctx, &args[2]) else { return };
    let on = match parse_i64_strict(&args[3]) {
        Some(v @ (0 | 1)) => v == 1,
        _ => return ctx.error("ERR bit is not an integer or out of range"),
    };
    let Ok(cur) = read_bytes(ctx, &args[1]) else { return };
    let Ok(byte) = usize::try_from(offset >> 3) else { return ctx.error(BAD_OFFSET) };
    let existed = cur.is_some();
    let mut v = cur.unwrap_or_default();
    let old = bit_at(&v, offset);
    let grows = v.len() <= byte;
    if grows {
        // Bounded by `bit_offset`: at most proto-max-bulk-len bytes.
        v.resize(byte.saturating_add(1), 0);
    }
    // Redis counts a change only if the key is new, grew, or the bit flips.
    if !existed || grows || old != on {
        let mask = 0x80u8 >> (offset & 7);
        v[byte] = if on { v[byte] | mask } else { v[byte] & !mask };
        let db = ctx.client.db;
        ctx.st.ks.dbs[db].insert(Sds::new(&args[1]), Value::Str(Sds::from_vec(v)), true);
        ctx.dirty(1);
    }
    ctx.int(i64::from(old))
}

fn getbit(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(offset) = bit_offset(ctx, &args[2]) else { return };
    let Ok(cur) = read_bytes(ctx, &args[1]) else { return };
    let bit = cur.is_some_and(|p| bit_at(&p, offset));
    ctx.int(i64::from(bit))
}

/// Resolves Redis's start/end (negative from the end, clamped) over `total` units into an
/// inclusive range, or None when it is empty.
fn clamp_range(start: i64, end: i64, total: i64) -> Option<(i64, i64)> {
    let start = if start < 0 { start.saturating_add(total) } else { start }.max(0);
    let end = if end < 0 { end.saturating_add(total) } else { end }.max(0);
    let end = end.min(total.saturating_sub(1));
    (start <= end).then_some((start, end))
}

/// BIT or BYTE, as the optional unit argument says.
fn unit_is_bit(ctx: &mut Ctx, arg: &[u8]) -> Option<bool> {
    if arg.eq_ignore_ascii_case(b"bit") {
        Some(true)
    } else if arg.eq_ignore_ascii_case(b"byte") {
        Some(false)
    } else {
        ctx.error(SYNTAX);
        None
    }
}

/// The inclusive bit range of a resolved start/end in bits or bytes.
fn bit_range(range: (i64, i64), in_bits: bool) -> (u64, u64) {
    let (s, e) = (range.0 as u64, range.1 as u64);
    if in_bits {
        (s, e)
    } else {
        (s.saturating_mul(8), e.saturating_mul(8).saturating_add(7))
    }
}

fn count_ones(p: &[u8], from_bit: u64, to_bit: u64) -> i64 {
    let mut count: i64 = 0;
    let mut pos = from_bit;
    while pos <= to_bit {
        let whole_byte = pos & 7 == 0 && to_bit.saturating_sub(pos) >= 7;
        if whole_byte {
            let byte = usize::try_from(pos >> 3).ok().and_then(|i| p.get(i)).copied().unwrap_or(0);
            count = count.saturating_add(i64::from(byte.count_ones()));
            pos = pos.saturating_add(8);
        } else {
            count = count.saturating_add(i64::from(bit_at(p, pos)));
            pos = pos.saturating_add(1);
        }
    }
    count
}

fn bitcount(ctx: &mut Ctx, args: &[Bytes]) {
    // As Redis: the key first (missing: 0 whatever the arguments), then the range.
    let Ok(cur) = read_bytes(ctx, &args[1]) else { return };
    let Some(p) = cur else { return ctx.int(0) };
    let len = p.len() as i64;
    let (range, in_bits) = match args.len() {
        2 => (clamp_range(0, -1, len), false),
        4 | 5 => {
            let Some(start) = arg_i64(ctx, &args[2]) else { return };
            let Some(end) = arg_i64(ctx, &args[3]) else { return };
            if start < 0 && end < 0 && start > end {
                return ctx.int(0);
            }
            let in_bits = match args.get(4) {
                Some(u) => match unit_is_bit(ctx, u) {
                    Some(b) => b,
                    None => return,
                },
                None => false,
            };
            let total = if in_bits { len.saturating_mul(8) } else { len };
            (clamp_range(start, end, total), in_bits)
        }
        _ => return ctx.error(SYNTAX),
    };
    let Some(range) = range else { return ctx.int(0) };
    let (from, to) = bit_range(range, in_bits);
    ctx.int(count_ones(&p, from, to))
}

fn bitpos(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(bit) = arg_i64(ctx, &args[2]) else { return };
    if bit != 0 && bit != 1 {
        return ctx.error("ERR The bit argument must be 1 or 0.");
    }
    let want = bit == 1;
    let Ok(cur) = read_bytes(ctx, &args[1]) else { return };
    // A missing key is an infinite run of zero bits.
    let Some(p) = cur else { return ctx.int(if want { -1 } else { 0 }) };
    let len = p.len() as i64;
    let (range, in_bits, end_given) = match args.len() {
        3 => (clamp_range(0, -1, len), false, false),
        4..=6 => {
            let Some(start) = arg_i64(ctx, &args[3]) else { return };
            let in_bits = match args.get(5) {
                Some(u) => match unit_is_bit(ctx, u) {
                    Some(b) => b,
                    None => return,
                },
                None => false,
            };
            let end = match args.get(4) {
                Some(e) => match arg_i64(ctx, e) {
                    Some(e) => e,
                    None => return,
                },
                None => len.saturating_sub(1),
            };
            let total = if in_bits { len.saturating_mul(8) } else { len };
            (clamp_range(start, end, total), in_bits, args.len() >= 5)
        }
        _ => return ctx.error(SYNTAX),
    };
    let Some(range) = range else { return ctx.int(-1) };
    let (from, to) = bit_range(range, in_bits);
    if let Some(found) = first_bit(&p, from, to, want) {
        return ctx.int(found as i64);
    }
    // Not found. A clear bit with no explicit end: the string is taken as padded with zeros,
    // so the answer is the first bit past the searched bytes (Redis's reply).
    if !want && !end_given {
        let past = (to | 7).saturating_add(1);
        return ctx.int(past as i64);
    }
    ctx.int(-1)
}

/// The first bit equal to `want` in `from..=to`. Whole bytes that cannot hold it (0x00 when
/// looking for a 1, 0xff for a 0) are skipped eight bits at a time: this runs under the server
/// lock, over strings of up to proto-max-bulk-len bytes.
fn first_bit(p: &[u8], from: u64, to: u64, want: bool) -> Option<u64> {
    let skip = if want { 0x00u8 } else { 0xffu8 };
    let mut pos = from;
    while pos <= to {
        let byte = usize::try_from(pos >> 3).ok().and_then(|i| p.get(i)).copied().unwrap_or(0);
        if pos & 7 == 0 && to.saturating_sub(pos) >= 7 && byte == skip {
            pos = pos.saturating_add(8);
            continue;
        }
        if bit_at(p, pos) == want {
            return Some(pos);
        }
        pos = pos.saturating_add(1);
    }
    None
}

fn bitop(ctx: &mut Ctx, args: &[Bytes]) {
    #[derive(Clone, Copy, PartialEq)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let op = match args[1].to_ascii_lowercase().as_slice() {
        b"and" => Op::And,
        b"or" => Op::Or,
        b"xor" => Op::Xor,
        b"not" => Op::Not,
        _ => return ctx.error(SYNTAX),
    };
    if op == Op::Not && args.len() != 4 {
        return ctx.error("ERR BITOP NOT must be called with a single source key.");
    }
    let mut sources = Vec::with_capacity(args.len().saturating_sub(3));
    for key in &args[3..] {
        let Ok(cur) = read_bytes(ctx, key) else { return };
        sources.push(cur.unwrap_or_default());
    }
    let max_len = sources.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = vec![0u8; max_len];
    for (i, byte) in out.iter_mut().enumerate() {
        let mut it = sources.iter().map(|s| s.get(i).copied().unwrap_or(0));
        let first = it.next().unwrap_or(0);
        *byte = match op {
            Op::Not => !first,
            Op::And => it.fold(first, |a, b| a & b),
            Op::Or => it.fold(first, |a, b| a | b),
            Op::Xor => it.fold(first, |a, b| a ^ b),
        };
    }
    let db = ctx.client.db;
    let target = &args[2];
    let changed = if max_len > 0 {
        ctx.st.ks.dbs[db].insert(Sds::new(target), Value::Str(Sds::from_vec(out)), false);
        true
    } else {
        ctx.st.ks.dbs[db].remove(target).is_some()
    };
    if changed {
        ctx.st.watches.touch(db, target);
        ctx.dirty(1);
    }
    ctx.int(max_len as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_as_redis_clamps_them() {
        assert_eq!(clamp_range(0, -1, 3), Some((0, 2)));
        assert_eq!(clamp_range(-100, 100, 3), Some((0, 2)));
        assert_eq!(clamp_range(2, 1, 3), None);
        assert_eq!(clamp_range(0, -1, 0), None);
        assert_eq!(bit_range((1, 2), false), (8, 23));
    }

    #[test]
    fn bits_are_counted_most_significant_first() {
        let p = [0b1000_0001u8, 0xff];
        assert!(bit_at(&p, 0) && bit_at(&p, 7) && !bit_at(&p, 1));
        assert!(!bit_at(&p, 1000));
        assert_eq!(count_ones(&p, 0, 15), 10);
        assert_eq!(count_ones(&p, 1, 6), 0);
        assert_eq!(count_ones(&p, 7, 9), 3);
    }

    #[test]
    fn first_bit_skips_whole_bytes_and_respects_the_range() {
        let p = [0x00u8, 0x00, 0x01, 0xff];
        assert_eq!(first_bit(&p, 0, 31, true), Some(23));
        assert_eq!(first_bit(&p, 0, 22, true), None);
        assert_eq!(first_bit(&p, 24, 31, false), None);
        assert_eq!(first_bit(&p, 3, 31, false), Some(3));
        assert_eq!(first_bit(&[0xffu8, 0xfe], 0, 15, false), Some(15));
    }
}
