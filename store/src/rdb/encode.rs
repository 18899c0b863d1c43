//! Writes RDB version 10 files the way Redis 7.0 does (`rdbSaveRio`, `rdbSaveObject`).
//!
//! # Why it is shaped this way
//!
//! - **Streaming.** [`RdbWriter`] serialises one key at a time into a small buffer that it hands
//!   to the caller's [`Write`] sink every [`FLUSH_BYTES`], folding each flushed chunk into the
//!   running CRC. A snapshot of millions of keys is therefore never materialised a second time;
//!   the peak extra memory is one value's encoding (see [`RdbWriter::write_entry`]). The sink
//!   is any `Write` (a `Vec`, or a buffer the caller drains through the disk seam between
//!   [`RdbWriter::write_entry`] calls via [`RdbWriter::sink`]), so this file does no I/O itself.
//! - **The encodings Redis 7.0 itself writes**, chosen with Redis's default thresholds, so that
//!   a real replica or `redis-check-rdb` sees nothing unusual: strings int-encoded when they are
//!   canonical integers of at most 11 characters that fit 32 bits, LZF-compressed when longer
//!   than 20 bytes and compression saves at least 4 bytes; lists as QUICKLIST_2 of listpack
//!   nodes filled by quicklist's own rule for `list-max-listpack-size -2` (8 KiB); sets as an
//!   intset when they hold at most 512 integers, else a plain set; hashes and sorted sets as a
//!   listpack up to 128 entries of at most 64 bytes, else plain (ZSET_2 with binary scores,
//!   written highest first as Redis walks its skiplist). With compression off, a value encodes
//!   byte for byte like Redis's `DUMP` of the same value built by `RPUSH`/`SADD`/`ZADD`
//!   ([`dump_value`]), which the interop test checks.
//! - **Limits.** Listpacks are built only up to the sizes above (a node exceeds 8 KiB only
//!   when a single element does); elements of 1 GiB or more go into plain quicklist nodes as in
//!   Redis (`packed_threshold`); lengths are written with the 64-bit form when needed. Empty
//!   collections are skipped (Redis never holds them, and would skip them on load).

use std::io::{self, Write};

use super::crc64::Crc64;
use super::lzf::Compressor;
use super::{len_enc, opcode, parse_canonical_i64, rdb_type, QUICKLIST_NODE_PACKED, QUICKLIST_NODE_PLAIN, RDB_VERSION};
use crate::db::{DbSnapshot, Keyspace, Value};

/// Bytes buffered before handing them to the sink.
pub const FLUSH_BYTES: usize = 64 * 1024;
/// Redis 7.0 defaults that decide compact encodings.
pub const HASH_MAX_LISTPACK_ENTRIES: usize = 128;
pub const HASH_MAX_LISTPACK_VALUE: usize = 64;
pub const ZSET_MAX_LISTPACK_ENTRIES: usize = 128;
pub const ZSET_MAX_LISTPACK_VALUE: usize = 64;
pub const SET_MAX_INTSET_ENTRIES: usize = 512;
/// `list-max-listpack-size -2`: a quicklist node's listpack stays within 8 KiB.
pub const LIST_NODE_MAX_BYTES: usize = 8192;
/// quicklist's `SIZE_ESTIMATE_OVERHEAD`, part of its node-fill rule.
const LIST_NODE_OVERHEAD: usize = 8;
/// quicklist's default `packed_threshold`: larger elements get a plain node of their own.
pub const LIST_PACKED_THRESHOLD: usize = 1 << 30;
/// Strings longer than this are tried with LZF (`rdbSaveRawString`).
const LZF_MIN_LEN: usize = 20;

/// Replication fields Redis writes when the node is part of a replication chain (`rsi`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplAux {
    pub stream_db: i64,
    /// The 40-character replication id.
    pub id: String,
    pub offset: i64,
}

/// The AUX fields at the head of the file (`rdbSaveInfoAuxFields`), in the order Redis writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuxFields {
    pub redis_ver: String,
    pub redis_bits: u32,
    /// Creation time, unix seconds.
    pub ctime: i64,
    pub used_mem: u64,
    /// `repl-stream-db`, `repl-id`, `repl-offset`; omitted when `None`, as Redis does outside
    /// replication.
    pub repl: Option<ReplAux>,
    /// Whether the file is an AOF base (`aof-base`).
    pub aof_base: bool,
}

impl Default for AuxFields {
    fn default() -> AuxFields {
        AuxFields {
            redis_ver: crate::REDIS_COMPAT_VERSION.to_string(),
            redis_bits: 64,
            ctime: 0,
            used_mem: 0,
            repl: None,
            aof_base: false,
        }
    }
}

/// Where encoded bytes go: the file writer (buffer + CRC + sink) or a plain `Vec` (DUMP).
trait Sink {
    fn put(&mut self, b: &[u8]) -> io::Result<()>;
}

impl Sink for Vec<u8> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.extend_from_slice(b);
        Ok(())
    }
}

/// The file's byte stream: buffered, CRC'd, handed to `out` in chunks.
struct Stream<W: Write> {
    out: W,
    buf: Vec<u8>,
    crc: Crc64,
}

impl<W: Write> Stream<W> {
    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.crc.update(&self.buf);
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl<W: Write> Sink for Stream<W> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        if b.len() >= FLUSH_BYTES {
            // Large payloads bypass the buffer instead of being copied into it.
            self.flush_buf()?;
            self.crc.update(b);
            return self.out.write_all(b);
        }
        self.buf.extend_from_slice(b);
        if self.buf.len() >= FLUSH_BYTES {
            self.flush_buf()?;
        }
        Ok(())
    }
}

/// Reusable encoding state: LZF table and scratch buffers, plus the settings that Redis takes
/// from its config (`rdbcompression`, the quicklist packed threshold).
struct Encoder {
    lzf: Compressor,
    lzf_out: Vec<u8>,
    blob: Vec<u8>,
    compression: bool,
    packed_threshold: usize,
}

impl Encoder {
    fn new() -> Encoder {
        Encoder {
            lzf: Compressor::new(),
            lzf_out: Vec::new(),
            blob: Vec::new(),
            compression: true,
            packed_threshold: LIST_PACKED_THRESHOLD,
        }
    }
}

fn put_u8(s: &mut impl Sink, b: u8) -> io::Result<()> {
    s.put(&[b])
}

/// `rdbSaveLen`.
fn put_len(s: &mut impl Sink, len: u64) -> io::Result<()> {
    if len < 1 << 6 {
        s.put(&[(len as u8) | (len_enc::BITS_6 << 6)])
    } else if len < 1 << 14 {
        s.put(&[((len >> 8) as u8) | (len_enc::BITS_14 << 6), len as u8])
    } else if len <= u32::MAX as u64 {
        let b = (len as u32).to_be_bytes();
        s.put(&[len_enc::BITS_32, b[0], b[1], b[2], b[3]])
    } else {
        let mut b = [0u8; 9];
        b[0] = len_enc::BITS_64;
        b[1..].copy_from_slice(&len.to_be_bytes());
        s.put(&b)
    }
}

/// `rdbEncodeInteger`: the special encodings for values that fit 8, 16 or 32 bits.
fn int_encoding(v: i64, out: &mut [u8; 5]) -> Option<usize> {
    let enc = |e: u8| (len_enc::ENCVAL << 6) | e;
    if let Ok(x) = i8::try_from(v) {
        out[0] = enc(len_enc::ENC_INT8);
        out[1] = x as u8;
        Some(2)
    } else if let Ok(x) = i16::try_from(v) {
        out[0] = enc(len_enc::ENC_INT16);
        out[1..3].copy_from_slice(&x.to_le_bytes());
        Some(3)
    } else if let Ok(x) = i32::try_from(v) {
        out[0] = enc(len_enc::ENC_INT32);
        out[1..5].copy_from_slice(&x.to_le_bytes());
        Some(5)
    } else {
        None
    }
}

impl Encoder {
    /// `rdbSaveRawString`: int-encode short canonical integers, LZF long compressible strings,
    /// else length + bytes.
    fn put_string(&mut self, s: &mut impl Sink, data: &[u8]) -> io::Result<()> {
        if data.len() <= 11 {
            if let Some(v) = parse_canonical_i64(data) {
                let mut b = [0u8; 5];
                if let Some(n) = int_encoding(v, &mut b) {
                    return s.put(&b[..n]);
                }
            }
        }
        if self.compression && data.len() > LZF_MIN_LEN {
            let mut out = std::mem::take(&mut self.lzf_out);
            out.clear();
            // `data.len() > LZF_MIN_LEN` (20): compression must save at least 4 bytes, as in Redis.
            #[allow(clippy::arithmetic_side_effects)]
            let max_out = data.len() - 4;
            let compressed = self.lzf.compress(data, max_out, &mut out);
            let r = if compressed {
                put_u8(s, (len_enc::ENCVAL << 6) | len_enc::ENC_LZF)
                    .and_then(|_| put_len(s, out.len() as u64))
                    .and_then(|_| put_len(s, data.len() as u64))
                    .and_then(|_| s.put(&out))
            } else {
                Ok(())
            };
            self.lzf_out = out;
            if compressed {
                return r;
            }
        }
        put_len(s, data.len() as u64)?;
        s.put(data)
    }

    /// Writes a blob built in `self.blob` as a string.
    fn put_blob(&mut self, s: &mut impl Sink) -> io::Result<()> {
        let blob = std::mem::take(&mut self.blob);
        let r = self.put_string(s, &blob);
        self.blob = blob;
        r
    }

    /// The RDB type byte for a value, or `None` for an empty collection (not written).
    fn value_type(&self, v: &Value) -> Option<u8> {
        Some(match v {
            Value::Str(_) => rdb_type::STRING,
            Value::List(l) if l.is_empty() => return None,
            Value::List(_) => rdb_type::LIST_QUICKLIST_2,
            Value::Set(s) if s.is_empty() => return None,
            Value::Set(s) if intset_eligible(s.iter().map(|m| &m[..])) => rdb_type::SET_INTSET,
            Value::Set(_) => rdb_type::SET,
            Value::Hash(h) if h.is_empty() => return None,
            Value::Hash(h)
                if h.len() <= HASH_MAX_LISTPACK_ENTRIES
                    && h.iter()
                        .all(|(f, v)| f.len() <= HASH_MAX_LISTPACK_VALUE && v.len() <= HASH_MAX_LISTPACK_VALUE) =>
            {
                rdb_type::HASH_LISTPACK
            }
            Value::Hash(_) => rdb_type::HASH,
            Value::ZSet(z) if z.is_empty() => return None,
            Value::ZSet(z)
                if z.len() <= ZSET_MAX_LISTPACK_ENTRIES
                    && z.scores.keys().all(|m| m.len() <= ZSET_MAX_LISTPACK_VALUE) =>
            {
                rdb_type::ZSET_LISTPACK
            }
            Value::ZSet(_) => rdb_type::ZSET_2,
        })
    }

    /// `rdbSaveObject` for a value whose type byte `ty` came from [`Encoder::value_type`].
    fn put_value(&mut self, s: &mut impl Sink, ty: u8, v: &Value) -> io::Result<()> {
        match v {
            Value::Str(x) => self.put_string(s, x),
            Value::List(l) => {
                let threshold = self.packed_threshold;
                let mut nodes = 0u64;
                let mut i = 0;
                // One node per step, each with at least one element: `nodes <= l.len()`.
                #[allow(clippy::arithmetic_side_effects)]
                while i < l.len() {
                    i = next_list_node(l, i, threshold).0;
                    nodes += 1;
                }
                put_len(s, nodes)?;
                let mut i = 0;
                while i < l.len() {
                    let (end, plain) = next_list_node(l, i, threshold);
                    if plain {
                        put_len(s, QUICKLIST_NODE_PLAIN)?;
                        self.put_string(s, &l[i])?;
                    } else {
                        put_len(s, QUICKLIST_NODE_PACKED)?;
                        lp_begin(&mut self.blob);
                        let node = l.range(i..end);
                        let count = node.len();
                        for e in node {
                            lp_append(&mut self.blob, e);
                        }
                        lp_finish(&mut self.blob, count);
                        self.put_blob(s)?;
                    }
                    i = end;
                }
                Ok(())
            }
            Value::Set(set) if ty == rdb_type::SET_INTSET => {
                let mut ints: Vec<i64> = set.iter().filter_map(|m| parse_canonical_i64(m)).collect();
                ints.sort_unstable();
                build_intset(&mut self.blob, &ints);
                self.put_blob(s)
            }
            Value::Set(set) => {
                put_len(s, set.len() as u64)?;
                for m in set.iter() {
                    self.put_string(s, m)?;
                }
                Ok(())
            }
            Value::Hash(h) if ty == rdb_type::HASH_LISTPACK => {
                lp_begin(&mut self.blob);
                for (f, v) in h.iter() {
                    lp_append(&mut self.blob, f);
                    lp_append(&mut self.blob, v);
                }
                // The header count saturates at 65535 ("unknown") anyway.
                lp_finish(&mut self.blob, h.len().saturating_mul(2));
                self.put_blob(s)
            }
            Value::Hash(h) => {
                put_len(s, h.len() as u64)?;
                for (f, v) in h.iter() {
                    self.put_string(s, f)?;
                    self.put_string(s, v)?;
                }
                Ok(())
            }
            Value::ZSet(z) if ty == rdb_type::ZSET_LISTPACK => {
                lp_begin(&mut self.blob);
                for (score, m) in z.ordered.iter() {
                    lp_append(&mut self.blob, m);
                    lp_append(&mut self.blob, score_text(score.0).as_bytes());
                }
                lp_finish(&mut self.blob, z.len().saturating_mul(2));
                self.put_blob(s)
            }
            Value::ZSet(z) => {
                put_len(s, z.len() as u64)?;
                // Highest first, as Redis walks its skiplist from the tail.
                for (score, m) in z.ordered.iter().rev() {
                    self.put_string(s, m)?;
                    s.put(&score.0.to_le_bytes())?;
                }
                Ok(())
            }
        }
    }
}

fn intset_eligible<'a>(mut members: impl ExactSizeIterator<Item = &'a [u8]>) -> bool {
    members.len() <= SET_MAX_INTSET_ENTRIES && members.all(|m| parse_canonical_i64(m).is_some())
}

/// intset: u32 LE element width, u32 LE count, sorted LE values of the smallest width that
/// holds them all.
fn build_intset(blob: &mut Vec<u8>, sorted: &[i64]) {
    let fits = |lo: i64, hi: i64| sorted.first().is_none_or(|&a| a >= lo) && sorted.last().is_none_or(|&b| b <= hi);
    let width: usize = if fits(i16::MIN as i64, i16::MAX as i64) {
        2
    } else if fits(i32::MIN as i64, i32::MAX as i64) {
        4
    } else {
        8
    };
    blob.clear();
    blob.extend_from_slice(&(width as u32).to_le_bytes());
    blob.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for &v in sorted {
        blob.extend_from_slice(&v.to_le_bytes()[..width]);
    }
}

/// The next quicklist node starting at element `start`: (end, is_plain). quicklist's fill
/// rule for a size limit: an element joins the current node if the node's listpack size plus
/// the element's length plus 8 stays within the limit; large elements get a plain node.
// `start < end <= l.len()` are indices; `size` is one node's listpack size, at most
// LIST_NODE_MAX_BYTES plus one element, and elements are in memory (at most isize::MAX bytes).
#[allow(clippy::arithmetic_side_effects)]
fn next_list_node(l: &std::collections::VecDeque<crate::sds::Sds>, start: usize, threshold: usize) -> (usize, bool) {
    if l[start].len() >= threshold {
        return (start + 1, true);
    }
    let mut size = LP_HEADER_SIZE + 1;
    let mut end = start;
    while end < l.len() {
        let e = &l[end];
        if e.len() >= threshold {
            break;
        }
        if end > start
            && (size + e.len() + LIST_NODE_OVERHEAD > LIST_NODE_MAX_BYTES || end - start >= u16::MAX as usize - 1)
        {
            break;
        }
        size += lp_entry_size(e);
        end += 1;
    }
    (end, false)
}

/// The score as `zzlInsertAt` stores it in a listpack, byte for byte Redis 7.0's `d2string`:
/// `inf`/`-inf`, `0`/`-0`, integers in `[-2^62, 2^62]` in decimal (which the listpack then
/// int-encodes), anything else as `%.17g` (17 significant digits: parses back exactly).
pub(crate) fn score_text(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    const LIM: f64 = 4_611_686_018_427_387_904.0; // (double)(LLONG_MAX / 2) = 2^62
    if f.fract() == 0.0 && (-LIM..=LIM).contains(&f) {
        return (f as i64).to_string();
    }
    format_g17(f)
}

/// C's `printf("%.17g", f)` for finite non-zero `f`.
pub(crate) fn format_g17(f: f64) -> String {
    const P: i32 = 17;
    let sci = format!("{:.*e}", (P - 1) as usize, f.abs()); // "d.dddddddddddddddde[-]x"
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    let strip = |s: &mut String| {
        if s.contains('.') {
            while s.ends_with('0') {
                s.pop();
            }
            if s.ends_with('.') {
                s.pop();
            }
        }
    };
    let mut body = String::new();
    if !(-4..P).contains(&exp) {
        body.push(digits[0] as char);
        body.push('.');
        body.extend(digits[1..].iter().map(|&d| d as char));
        strip(&mut body);
        let sign = if exp < 0 { '-' } else { '+' };
        body.push_str(&format!("e{sign}{:02}", exp.abs()));
    } else if exp >= 0 {
        // `0 <= exp < P` here.
        #[allow(clippy::arithmetic_side_effects)]
        let int_len = exp as usize + 1;
        body.extend(digits[..int_len].iter().map(|&d| d as char));
        body.push('.');
        body.extend(digits[int_len..].iter().map(|&d| d as char));
        strip(&mut body);
    } else {
        body.push_str("0.");
        // `-4 <= exp < 0` here: 0 to 3 zeros.
        #[allow(clippy::arithmetic_side_effects)]
        let zeros = -exp - 1;
        for _ in 0..zeros {
            body.push('0');
        }
        body.extend(digits.iter().map(|&d| d as char));
        strip(&mut body);
    }
    out.push_str(&body);
    out
}

// ---- listpack writer -------------------------------------------------------------------------

pub(crate) const LP_HEADER_SIZE: usize = 6;
pub(crate) const LP_EOF: u8 = 0xFF;

/// `lpEncodeBacklen`: the entry length written backwards in 7-bit groups.
pub(crate) fn lp_backlen(l: usize, out: &mut [u8; 5]) -> usize {
    let l = l as u64;
    if l <= 127 {
        out[0] = l as u8;
        1
    } else if l < 16383 {
        out[0] = (l >> 7) as u8;
        out[1] = ((l & 127) | 128) as u8;
        2
    } else if l < 2_097_151 {
        out[0] = (l >> 14) as u8;
        out[1] = (((l >> 7) & 127) | 128) as u8;
        out[2] = ((l & 127) | 128) as u8;
        3
    } else if l < 268_435_455 {
        out[0] = (l >> 21) as u8;
        out[1] = (((l >> 14) & 127) | 128) as u8;
        out[2] = (((l >> 7) & 127) | 128) as u8;
        out[3] = ((l & 127) | 128) as u8;
        4
    } else {
        out[0] = (l >> 28) as u8;
        out[1] = (((l >> 21) & 127) | 128) as u8;
        out[2] = (((l >> 14) & 127) | 128) as u8;
        out[3] = (((l >> 7) & 127) | 128) as u8;
        out[4] = ((l & 127) | 128) as u8;
        5
    }
}

/// An entry's encoding header (and the integer payload, for integers): `lpEncodeGetType`.
fn lp_encoding(e: &[u8], out: &mut [u8; 9]) -> (usize, bool) {
    if let Some(v) = parse_canonical_i64(e) {
        let n = if (0..=127).contains(&v) {
            out[0] = v as u8;
            1
        } else if (-4096..=4095).contains(&v) {
            // 13-bit two's complement of `v` in -4096..=4095.
            #[allow(clippy::arithmetic_side_effects)]
            let u = if v < 0 { (1i64 << 13) + v } else { v };
            out[0] = ((u >> 8) as u8) | 0xC0;
            out[1] = u as u8;
            2
        } else if let Ok(x) = i16::try_from(v) {
            out[0] = 0xF1;
            out[1..3].copy_from_slice(&x.to_le_bytes());
            3
        } else if (-8_388_608..=8_388_607).contains(&v) {
            out[0] = 0xF2;
            out[1..4].copy_from_slice(&(v as i32).to_le_bytes()[..3]);
            4
        } else if let Ok(x) = i32::try_from(v) {
            out[0] = 0xF3;
            out[1..5].copy_from_slice(&x.to_le_bytes());
            5
        } else {
            out[0] = 0xF4;
            out[1..9].copy_from_slice(&v.to_le_bytes());
            9
        };
        return (n, true);
    }
    let len = e.len();
    let n = if len < 64 {
        out[0] = 0x80 | len as u8;
        1
    } else if len < 4096 {
        out[0] = 0xE0 | (len >> 8) as u8;
        out[1] = len as u8;
        2
    } else {
        out[0] = 0xF0;
        out[1..5].copy_from_slice(&(len as u32).to_le_bytes());
        5
    };
    (n, false)
}

/// Encoding plus data bytes of an entry whose encoding takes `n` bytes (an integer's data is
/// inside its encoding).
// `e` is in memory (at most isize::MAX bytes): adding a header of at most 5 bytes cannot wrap.
#[allow(clippy::arithmetic_side_effects)]
fn lp_data_len(n: usize, is_int: bool, e: &[u8]) -> usize {
    if is_int {
        n
    } else {
        n + e.len()
    }
}

/// Bytes an element takes in a listpack: encoding, data, backlen.
// As in `lp_data_len`: an in-memory length plus a back-length of at most 5 bytes.
#[allow(clippy::arithmetic_side_effects)]
pub(crate) fn lp_entry_size(e: &[u8]) -> usize {
    let mut enc = [0u8; 9];
    let (n, is_int) = lp_encoding(e, &mut enc);
    let l = lp_data_len(n, is_int, e);
    let mut b = [0u8; 5];
    l + lp_backlen(l, &mut b)
}

pub(crate) fn lp_begin(blob: &mut Vec<u8>) {
    blob.clear();
    blob.extend_from_slice(&[0u8; LP_HEADER_SIZE]);
}

pub(crate) fn lp_append(blob: &mut Vec<u8>, e: &[u8]) {
    let mut enc = [0u8; 9];
    let (n, is_int) = lp_encoding(e, &mut enc);
    blob.extend_from_slice(&enc[..n]);
    if !is_int {
        blob.extend_from_slice(e);
    }
    let l = lp_data_len(n, is_int, e);
    let mut b = [0u8; 5];
    let bl = lp_backlen(l, &mut b);
    blob.extend_from_slice(&b[..bl]);
}

/// Terminates the listpack and fills its header (count saturates at 65535, "unknown").
pub(crate) fn lp_finish(blob: &mut Vec<u8>, count: usize) {
    blob.push(LP_EOF);
    let total = blob.len() as u32;
    blob[0..4].copy_from_slice(&total.to_le_bytes());
    let n = count.min(u16::MAX as usize) as u16;
    blob[4..6].copy_from_slice(&n.to_le_bytes());
}

// ---- the file writer -------------------------------------------------------------------------

/// Streams an RDB file into `W`. Call [`write_header`](RdbWriter::write_header) once, then
/// [`write_db`](RdbWriter::write_db) (or [`begin_db`](RdbWriter::begin_db) +
/// [`write_entry`](RdbWriter::write_entry)) per database, then [`finish`](RdbWriter::finish).
/// Calling them out of order is a programming error and panics.
pub struct RdbWriter<W: Write> {
    stream: Stream<W>,
    enc: Encoder,
    checksum: bool,
    header_written: bool,
    in_db: bool,
}

impl<W: Write> RdbWriter<W> {
    pub fn new(out: W) -> RdbWriter<W> {
        RdbWriter {
            stream: Stream { out, buf: Vec::with_capacity(FLUSH_BYTES), crc: Crc64::new() },
            enc: Encoder::new(),
            checksum: true,
            header_written: false,
            in_db: false,
        }
    }

    /// `rdbcompression` (default on): LZF for strings over 20 bytes.
    pub fn with_compression(mut self, on: bool) -> RdbWriter<W> {
        self.enc.compression = on;
        self
    }

    /// `rdbchecksum` (default on); off writes a zero CRC, which loaders do not verify.
    pub fn with_checksum(mut self, on: bool) -> RdbWriter<W> {
        self.checksum = on;
        self
    }

    /// List elements of at least this many bytes get a plain quicklist node (default 1 GiB,
    /// like Redis; `DEBUG QUICKLIST-PACKED-THRESHOLD` changes it there).
    pub fn with_list_packed_threshold(mut self, bytes: usize) -> RdbWriter<W> {
        self.enc.packed_threshold = bytes.max(1);
        self
    }

    fn aux(&mut self, key: &str, value: &[u8]) -> io::Result<()> {
        put_u8(&mut self.stream, opcode::AUX)?;
        self.enc.put_string(&mut self.stream, key.as_bytes())?;
        self.enc.put_string(&mut self.stream, value)
    }

    /// Magic, version and the AUX fields.
    pub fn write_header(&mut self, aux: &AuxFields) -> io::Result<()> {
        assert!(!self.header_written, "RDB header written twice");
        self.header_written = true;
        self.stream.put(format!("REDIS{RDB_VERSION:04}").as_bytes())?;
        self.aux("redis-ver", aux.redis_ver.as_bytes())?;
        self.aux("redis-bits", aux.redis_bits.to_string().as_bytes())?;
        self.aux("ctime", aux.ctime.to_string().as_bytes())?;
        self.aux("used-mem", aux.used_mem.to_string().as_bytes())?;
        if let Some(r) = &aux.repl {
            self.aux("repl-stream-db", r.stream_db.to_string().as_bytes())?;
            self.aux("repl-id", r.id.as_bytes())?;
            self.aux("repl-offset", r.offset.to_string().as_bytes())?;
        }
        self.aux("aof-base", if aux.aof_base { b"1" } else { b"0" })
    }

    /// SELECTDB and RESIZEDB (key and volatile-key counts, hints for the loader's tables).
    pub fn begin_db(&mut self, index: u64, db_size: u64, expires_size: u64) -> io::Result<()> {
        assert!(self.header_written, "RDB database written before the header");
        self.in_db = true;
        put_u8(&mut self.stream, opcode::SELECTDB)?;
        put_len(&mut self.stream, index)?;
        put_u8(&mut self.stream, opcode::RESIZEDB)?;
        put_len(&mut self.stream, db_size)?;
        put_len(&mut self.stream, expires_size)
    }

    /// One key: `[EXPIRETIME_MS ms] type key value`. Returns false (and writes nothing) for an
    /// empty collection. The value's whole encoding passes through memory once; Redis values
    /// are bounded, and strings of 64 KiB or more go to the sink without an extra copy.
    pub fn write_entry(&mut self, key: &[u8], value: &Value, expire_ms: Option<i64>) -> io::Result<bool> {
        assert!(self.in_db, "RDB key written before begin_db");
        let Some(ty) = self.enc.value_type(value) else {
            return Ok(false);
        };
        if let Some(ms) = expire_ms {
            put_u8(&mut self.stream, opcode::EXPIRETIME_MS)?;
            self.stream.put(&ms.to_le_bytes())?;
        }
        put_u8(&mut self.stream, ty)?;
        self.enc.put_string(&mut self.stream, key)?;
        self.enc.put_value(&mut self.stream, ty, value)?;
        Ok(true)
    }

    /// A whole database. Writes nothing if `entries` is empty (Redis skips empty databases).
    /// `db_size`/`expires_size` are the RESIZEDB hints. Returns the keys written.
    pub fn write_db<'a, I>(&mut self, index: u64, db_size: u64, expires_size: u64, entries: I) -> io::Result<u64>
    where
        I: IntoIterator<Item = (&'a crate::sds::Sds, &'a Value, Option<i64>)>,
    {
        let mut written = 0u64;
        let mut began = false;
        for (k, v, exp) in entries {
            if !began {
                self.begin_db(index, db_size, expires_size)?;
                began = true;
            }
            if self.write_entry(k, v, exp)? {
                written = written.saturating_add(1);
            }
        }
        Ok(written)
    }

    /// A point-in-time database copy (what BGSAVE and full resync serialise).
    pub fn write_snapshot(&mut self, index: u64, snap: &DbSnapshot) -> io::Result<u64> {
        let size: usize = snap.shards.iter().map(|s| s.map.len()).sum();
        let expires: usize = snap.shards.iter().map(|s| s.expires.len()).sum();
        self.write_db(index, size as u64, expires as u64, snap.iter())
    }

    /// Hands buffered bytes to the sink and returns it, so a caller can drain it (e.g. to the
    /// disk seam) between entries.
    pub fn sink(&mut self) -> io::Result<&mut W> {
        self.stream.flush_buf()?;
        Ok(&mut self.stream.out)
    }

    /// EOF opcode and the little-endian CRC-64 of everything before it (inclusive).
    pub fn finish(mut self) -> io::Result<W> {
        assert!(self.header_written, "RDB finished without a header");
        put_u8(&mut self.stream, opcode::EOF)?;
        self.stream.flush_buf()?;
        let crc = if self.checksum { self.stream.crc.value() } else { 0 };
        self.stream.out.write_all(&crc.to_le_bytes())?;
        self.stream.out.flush()?;
        Ok(self.stream.out)
    }
}

/// The whole keyspace as one RDB file in memory (tests, small datasets, `DEBUG RELOAD`-like
/// uses). Large snapshots should stream through [`RdbWriter`] instead.
pub fn encode_keyspace(ks: &Keyspace, aux: &AuxFields) -> Vec<u8> {
    let mut w = RdbWriter::new(Vec::new());
    let r: io::Result<Vec<u8>> = (|| {
        w.write_header(aux)?;
        for (i, db) in ks.dbs.iter().enumerate() {
            if !db.is_empty() {
                w.write_db(i as u64, db.len() as u64, db.expires_len() as u64, db.iter())?;
            }
        }
        w.finish()
    })();
    r.expect("writing to a Vec cannot fail")
}

/// A `DUMP` payload: type, value, RDB version (u16 LE), CRC-64 (LE) of all of that. `None` for
/// an empty collection. Byte-identical to Redis 7.0's for strings, lists, intsets and sorted
/// sets (hash and set order follow our tables) when compression matches `rdbcompression`.
pub fn dump_value(value: &Value, compression: bool) -> Option<Vec<u8>> {
    let mut enc = Encoder::new();
    enc.compression = compression;
    let ty = enc.value_type(value)?;
    let mut out = vec![ty];
    enc.put_value(&mut out, ty, value).expect("writing to a Vec cannot fail");
    out.extend_from_slice(&(RDB_VERSION as u16).to_le_bytes());
    let crc = super::crc64::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Some(out)
}
