//! Loads RDB files of versions 1..=11 (Redis 1.x to 7.2) into our values (`rdbLoadRio`,
//! `rdbLoadObject`).
//!
//! # Why it is shaped this way
//!
//! The input may come from a real Redis master, from our own disk after a crash, or from
//! anything else; the loader must therefore be total: **no panic, no partial dataset, no
//! allocation out of proportion to the input**, and a message naming the byte where it failed.
//!
//! - Everything is parsed from one `&[u8]` (the caller reads the file or the transfer through
//!   its seam). Raw strings are sliced, not copied, until they become an `Sds`.
//! - Every count read from the file is checked against the bytes left *before* anything is
//!   reserved (each element needs at least one byte, a pair two, a ZSET_2 entry nine), and
//!   pre-allocation is further capped at [`PREALLOC_CAP`] elements, so a lying header costs at
//!   most that. LZF lengths are checked against the 88× maximum expansion of LZF. Compact blobs
//!   (listpack, ziplist, zipmap, intset) are validated entry by entry against their own headers,
//!   back-lengths and terminators, which is Redis's *deep* sanitisation, always on.
//! - The dataset is returned only when the whole file, including the CRC, checked out.
//! - Semantics follow Redis 7.0: duplicate keys, fields and members, NaN scores, empty intsets
//!   and zipmaps are corruption; other empty collections (which old Redis bugs could write) are
//!   skipped and counted, as `rdbLoadRio` does with `RDB_LOAD_ERR_EMPTY_KEY`; a stored CRC of 0
//!   is not verified. Expired keys are returned with their deadline: whether to drop them
//!   (a master does, a replica does not) is the caller's policy.
//! - Unsupported content (modules, functions, streams) fails cleanly with its name instead of
//!   being skipped, because skipping would silently lose data.
//! - No arithmetic on a value from the input can overflow: fields are taken by splitting the
//!   slice that is left (`split_at_checked`), positions are recovered as `whole - rest` only for
//!   messages, and the few sums of small header sizes carry the reason they cannot overflow.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::lzf;
use super::{
    len_enc, offset_of, opcode, rdb_type, RdbError, QUICKLIST_NODE_PACKED, QUICKLIST_NODE_PLAIN, RDB_MAX_LOAD_VERSION,
};
use crate::db::{Hasher, Value, ZSet};
use crate::sds::Sds;

/// Most elements reserved up front for one collection or database; beyond, containers grow.
pub const PREALLOC_CAP: usize = 1 << 16;

type Entry = (Sds, Value, Option<i64>);

/// A loaded file.
#[derive(Clone, Debug, Default)]
pub struct RdbData {
    pub version: u32,
    /// One vector per database (as many as the `databases` argument), in file order.
    pub dbs: Vec<Vec<Entry>>,
    /// `repl-id`, when present with Redis's 40-character length.
    pub repl_id: Option<String>,
    pub repl_offset: Option<i64>,
    pub repl_stream_db: Option<i64>,
    /// Every other AUX field, in file order (`redis-ver`, `ctime`, `used-mem`, `aof-base`...).
    pub aux: Vec<(Sds, Sds)>,
    /// Empty collections skipped, as Redis does.
    pub empty_keys_skipped: u64,
    /// Bytes of the input the file occupied (anything after is not part of it, e.g. an AOF tail).
    pub len: usize,
}

impl RdbData {
    pub fn key_count(&self) -> usize {
        self.dbs.iter().map(Vec::len).sum()
    }

    /// An AUX field other than the replication ones, by name.
    pub fn aux_field(&self, name: &str) -> Option<&Sds> {
        self.aux.iter().find(|(k, _)| k[..].eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }
}

/// Decodes a whole RDB file. `databases` is the server's `databases` setting: a SELECTDB at or
/// beyond it is an error (Redis exits on it). `hasher` seeds the hash tables of the values.
pub fn decode(input: &[u8], databases: usize, hasher: &Hasher) -> Result<RdbData, RdbError> {
    let mut r = Reader { buf: input, pos: 0 };
    let magic = r.take(9, "the RDB header")?;
    if &magic[..5] != b"REDIS" {
        return Err(RdbError::new(0, "not an RDB file (no REDIS signature)"));
    }
    // Four ASCII digits, so at most 9999: `to_digit` rejects anything else, the sums cannot fail.
    let Some(version) =
        magic[5..].iter().try_fold(0u32, |v, &d| v.checked_mul(10)?.checked_add(char::from(d).to_digit(10)?))
    else {
        return Err(RdbError::new(5, "malformed RDB version"));
    };
    if !(1..=RDB_MAX_LOAD_VERSION).contains(&version) {
        return Err(RdbError::new(5, format!("Can't handle RDB format version {version}")));
    }
    if databases == 0 {
        return Err(RdbError::new(0, "no databases to load into"));
    }
    let mut out = RdbData { version, dbs: vec![Vec::new(); databases], ..RdbData::default() };
    let mut db = 0usize;
    let mut expire: Option<i64> = None;
    loop {
        let at = r.pos;
        let t = r.u8("an opcode or value type")?;
        match t {
            opcode::EOF => break,
            opcode::EXPIRETIME => {
                let b = r.take(4, "EXPIRETIME")?;
                // Seconds in an i32: |secs| * 1000 < 2^41, far inside i64.
                #[allow(clippy::arithmetic_side_effects)]
                let ms = i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])) * 1000;
                expire = Some(ms);
            }
            opcode::EXPIRETIME_MS => {
                let b = r.take(8, "EXPIRETIME_MS")?;
                expire = Some(i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]));
            }
            opcode::FREQ => {
                r.u8("FREQ")?;
            }
            opcode::IDLE => {
                r.len("IDLE")?;
            }
            opcode::SELECTDB => {
                let id = r.len("SELECTDB")?;
                if id >= databases as u64 {
                    return Err(RdbError::new(
                        at,
                        format!("SELECTDB {id} out of range: this server has {databases} databases"),
                    ));
                }
                db = id as usize;
            }
            opcode::RESIZEDB => {
                let size = r.len("RESIZEDB db size")?;
                r.len("RESIZEDB expires size")?;
                let hint = (size as usize).min(r.remaining() / 3).min(PREALLOC_CAP);
                out.dbs[db].reserve(hint);
            }
            opcode::AUX => {
                let k = r.string("AUX key")?;
                let vat = r.pos;
                let v = r.string("AUX value")?;
                let int = |v: &[u8], name: &str| {
                    std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.trim().parse::<i64>().ok())
                        .ok_or_else(|| RdbError::new(vat, format!("AUX {name} is not an integer")))
                };
                if k.eq_ignore_ascii_case(b"repl-stream-db") {
                    out.repl_stream_db = Some(int(&v, "repl-stream-db")?);
                } else if k.eq_ignore_ascii_case(b"repl-offset") {
                    out.repl_offset = Some(int(&v, "repl-offset")?);
                } else if k.eq_ignore_ascii_case(b"repl-id") && v.len() == 40 && v.is_ascii() {
                    out.repl_id = Some(String::from_utf8_lossy(&v).into_owned());
                } else {
                    out.aux.push((cow_sds(k), cow_sds(v)));
                }
            }
            opcode::MODULE_AUX => {
                return Err(RdbError::new(at, "module/function data not supported (MODULE_AUX record)"));
            }
            opcode::FUNCTION2 | opcode::FUNCTION_PRE_GA => {
                return Err(RdbError::new(at, "module/function data not supported (FUNCTION record)"));
            }
            _ => {
                check_type(t, at)?;
                let key = r.sds("a key")?;
                match r.object(t, hasher)? {
                    Some(v) => out.dbs[db].push((key, v, expire)),
                    None => out.empty_keys_skipped = out.empty_keys_skipped.saturating_add(1),
                }
                expire = None;
            }
        }
    }
    let eof_end = r.pos;
    if version >= 5 {
        let b = r.take(8, "the CRC-64 trailer")?;
        let stored = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        if stored != 0 {
            let computed = super::crc64::crc64(&input[..eof_end]);
            if computed != stored {
                return Err(RdbError::new(
                    eof_end,
                    format!("RDB CRC error: file says {stored:016x}, contents hash to {computed:016x}"),
                ));
            }
        }
    }
    out.len = r.pos;
    for (i, entries) in out.dbs.iter().enumerate() {
        let mut seen: HashSet<&[u8], Hasher> = HashSet::with_capacity_and_hasher(entries.len(), hasher.clone());
        for (k, _, _) in entries {
            if !seen.insert(&k[..]) {
                return Err(RdbError::new(
                    eof_end.saturating_sub(1), // the EOF opcode (eof_end >= 10: header and opcode)
                    format!("duplicate key '{}' in DB {i}", String::from_utf8_lossy(k)),
                ));
            }
        }
    }
    Ok(out)
}

/// Decodes a `DUMP` payload (`RESTORE`): type, value, RDB version (u16 LE), CRC-64 (LE). The
/// payload must be exactly one value; a newer version or a CRC mismatch is refused, as Redis
/// does (`verifyDumpPayload`). An empty collection is an error here.
pub fn decode_dump(payload: &[u8], hasher: &Hasher) -> Result<Value, RdbError> {
    const WRONG: &str = "DUMP payload version or checksum are wrong";
    // body ++ version (2) ++ CRC (8), the CRC covering body and version.
    let Some((signed, crc)) = payload.split_last_chunk::<8>() else {
        return Err(RdbError::new(0, WRONG));
    };
    let Some((body, ver)) = signed.split_last_chunk::<2>().filter(|(body, _)| !body.is_empty()) else {
        return Err(RdbError::new(0, WRONG));
    };
    let body_end = body.len();
    if u32::from(u16::from_le_bytes(*ver)) > RDB_MAX_LOAD_VERSION
        || super::crc64::crc64(signed) != u64::from_le_bytes(*crc)
    {
        return Err(RdbError::new(body_end, WRONG));
    }
    let mut r = Reader { buf: body, pos: 0 };
    let t = r.u8("the value type")?;
    check_type(t, 0)?;
    let v = r.object(t, hasher)?.ok_or_else(|| RdbError::new(0, "empty collection in DUMP payload"))?;
    if r.pos != body_end {
        return Err(RdbError::new(r.pos, "trailing bytes after the value in DUMP payload"));
    }
    Ok(v)
}

/// Rejects types we cannot hold before reading their key, naming them.
fn check_type(t: u8, at: usize) -> Result<(), RdbError> {
    match t {
        rdb_type::MODULE_PRE_GA | rdb_type::MODULE_2 => {
            Err(RdbError::new(at, format!("module/function data not supported (module value, type {t})")))
        }
        rdb_type::STREAM_LISTPACKS | rdb_type::STREAM_LISTPACKS_2 | rdb_type::STREAM_LISTPACKS_3 => {
            Err(RdbError::new(at, format!("stream values are not supported (type {t}, stream listpacks)")))
        }
        0..=5 | 9..=14 | 16..=18 | 20 => Ok(()),
        _ => Err(RdbError::new(at, format!("unknown value type {t}"))),
    }
}

fn cow_sds(c: Cow<'_, [u8]>) -> Sds {
    match c {
        Cow::Borrowed(b) => Sds::new(b),
        Cow::Owned(v) => Sds::from_vec(v),
    }
}

fn int_sds(v: i64) -> Sds {
    Sds::from_vec(v.to_string().into_bytes())
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// The input not read yet (`pos <= buf.len()` always: it only advances over taken bytes).
    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    fn remaining(&self) -> usize {
        self.rest().len()
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], RdbError> {
        let rest = self.rest();
        let Some((s, _)) = usize::try_from(n).ok().and_then(|n| rest.split_at_checked(n)) else {
            return Err(RdbError::new(self.pos, format!("truncated: {what} needs {n} bytes, {} left", rest.len())));
        };
        // `s` is a prefix of what was left: the position stays within the buffer.
        #[allow(clippy::arithmetic_side_effects)]
        {
            self.pos += s.len();
        }
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8, RdbError> {
        Ok(self.take(1, what)?[0])
    }

    /// `rdbLoadLenByRef`: (value, is_special_encoding).
    fn len_raw(&mut self, what: &str) -> Result<(u64, bool), RdbError> {
        let at = self.pos;
        let b = self.u8(what)?;
        match b >> 6 {
            len_enc::BITS_6 => Ok(((b & 0x3f) as u64, false)),
            len_enc::BITS_14 => Ok(((((b & 0x3f) as u64) << 8) | self.u8(what)? as u64, false)),
            len_enc::ENCVAL => Ok(((b & 0x3f) as u64, true)),
            _ => match b {
                len_enc::BITS_32 => {
                    let s = self.take(4, what)?;
                    Ok((u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as u64, false))
                }
                len_enc::BITS_64 => {
                    let s = self.take(8, what)?;
                    Ok((u64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]), false))
                }
                _ => Err(RdbError::new(at, format!("unknown length encoding 0x{b:02x} for {what}"))),
            },
        }
    }

    fn len(&mut self, what: &str) -> Result<u64, RdbError> {
        let at = self.pos;
        match self.len_raw(what)? {
            (v, false) => Ok(v),
            (_, true) => Err(RdbError::new(at, format!("{what}: expected a length, found a string encoding"))),
        }
    }

    /// A count of items that each take at least `min_bytes`: checked against the input left.
    fn count(&mut self, what: &str, min_bytes: u64) -> Result<usize, RdbError> {
        let at = self.pos;
        let n = self.len(what)?;
        if n.saturating_mul(min_bytes) > self.remaining() as u64 {
            return Err(RdbError::new(
                at,
                format!("{what} {n} cannot fit in the {} bytes left (truncated or corrupt)", self.remaining()),
            ));
        }
        Ok(n as usize)
    }

    /// `rdbGenericLoadStringObject`: raw, int8/16/32 or LZF.
    fn string(&mut self, what: &str) -> Result<Cow<'a, [u8]>, RdbError> {
        let at = self.pos;
        let (v, special) = self.len_raw(what)?;
        if !special {
            return Ok(Cow::Borrowed(self.take(v, what)?));
        }
        match v as u8 {
            len_enc::ENC_INT8 => Ok(Cow::Owned((self.u8(what)? as i8).to_string().into_bytes())),
            len_enc::ENC_INT16 => {
                let b = self.take(2, what)?;
                Ok(Cow::Owned(i16::from_le_bytes([b[0], b[1]]).to_string().into_bytes()))
            }
            len_enc::ENC_INT32 => {
                let b = self.take(4, what)?;
                Ok(Cow::Owned(i32::from_le_bytes([b[0], b[1], b[2], b[3]]).to_string().into_bytes()))
            }
            len_enc::ENC_LZF => {
                let clen = self.len("LZF compressed length")?;
                let len = self.len("LZF uncompressed length")?;
                let data_at = self.pos;
                let data = self.take(clen, "LZF data")?;
                if len > clen.saturating_mul(lzf::MAX_EXPANSION as u64) {
                    return Err(RdbError::new(
                        at,
                        format!("LZF string claims {len} bytes from {clen}: more than LZF can expand to"),
                    ));
                }
                lzf::decompress(data, len as usize)
                    .map(Cow::Owned)
                    // `e.at <= data.len()`, and `data` ends within the buffer.
                    .map_err(|e| RdbError::new(data_at.saturating_add(e.at), format!("{what}: {}", e.reason)))
            }
            e => Err(RdbError::new(at, format!("unknown string encoding {e} for {what}"))),
        }
    }

    fn sds(&mut self, what: &str) -> Result<Sds, RdbError> {
        self.string(what).map(cow_sds)
    }

    /// `rdbLoadDoubleValue` (ZSET v1): length byte, then ASCII; 253/254/255 are nan/+inf/-inf.
    fn ascii_double(&mut self) -> Result<f64, RdbError> {
        let at = self.pos;
        let n = self.u8("a score")?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                let b = self.take(n as u64, "a score")?;
                parse_score(b).ok_or_else(|| RdbError::new(at, "unparseable score"))
            }
        }
    }

    /// `rdbLoadObject`: `None` for an empty collection (skipped, as Redis does).
    fn object(&mut self, t: u8, hasher: &Hasher) -> Result<Option<Value>, RdbError> {
        let at = self.pos;
        let corrupt = |msg: String| RdbError::new(at, msg);
        Ok(Some(match t {
            rdb_type::STRING => Value::Str(self.sds("a string value")?),
            rdb_type::LIST => {
                let n = self.count("list length", 1)?;
                if n == 0 {
                    return Ok(None);
                }
                let mut l = VecDeque::with_capacity(n.min(PREALLOC_CAP));
                for _ in 0..n {
                    l.push_back(self.sds("a list element")?);
                }
                Value::List(Arc::new(l))
            }
            rdb_type::SET => {
                let n = self.count("set size", 1)?;
                if n == 0 {
                    return Ok(None);
                }
                let mut s = HashSet::with_capacity_and_hasher(n.min(PREALLOC_CAP), hasher.clone());
                for _ in 0..n {
                    let m = self.sds("a set member")?;
                    if !s.insert(m) {
                        return Err(corrupt("Duplicate set members detected".into()));
                    }
                }
                Value::Set(Arc::new(s))
            }
            rdb_type::ZSET | rdb_type::ZSET_2 => {
                let min = if t == rdb_type::ZSET_2 { 9 } else { 2 };
                let n = self.count("sorted set size", min)?;
                if n == 0 {
                    return Ok(None);
                }
                let mut z = ZSet::new(hasher.clone());
                z.scores.reserve(n.min(PREALLOC_CAP));
                for _ in 0..n {
                    let m = self.sds("a sorted set member")?;
                    let score = if t == rdb_type::ZSET_2 {
                        let b = self.take(8, "a binary score")?;
                        f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                    } else {
                        self.ascii_double()?
                    };
                    zset_add(&mut z, m, score).map_err(corrupt)?;
                }
                Value::ZSet(Arc::new(z))
            }
            rdb_type::HASH => {
                let n = self.count("hash size", 2)?;
                if n == 0 {
                    return Ok(None);
                }
                let mut h = HashMap::with_capacity_and_hasher(n.min(PREALLOC_CAP), hasher.clone());
                for _ in 0..n {
                    let f = self.sds("a hash field")?;
                    let v = self.sds("a hash value")?;
                    if h.insert(f, v).is_some() {
                        return Err(corrupt("Duplicate hash fields detected".into()));
                    }
                }
                Value::Hash(Arc::new(h))
            }
            rdb_type::LIST_QUICKLIST | rdb_type::LIST_QUICKLIST_2 => {
                let v2 = t == rdb_type::LIST_QUICKLIST_2;
                let n = self.count("quicklist node count", if v2 { 2 } else { 1 })?;
                let mut l = VecDeque::new();
                for _ in 0..n {
                    let container = if v2 { self.len("quicklist node container")? } else { QUICKLIST_NODE_PACKED };
                    if container != QUICKLIST_NODE_PACKED && container != QUICKLIST_NODE_PLAIN {
                        return Err(corrupt(format!("Quicklist integrity check failed: container {container}")));
                    }
                    let node_at = self.pos;
                    let blob = self.string("a quicklist node")?;
                    if blob.is_empty() {
                        return Err(RdbError::new(node_at, "empty quicklist node"));
                    }
                    if container == QUICKLIST_NODE_PLAIN {
                        l.push_back(cow_sds(blob));
                        continue;
                    }
                    let entries = if v2 { parse_listpack(&blob) } else { parse_ziplist(&blob) };
                    let entries = entries.map_err(|e| {
                        let kind = if v2 { "listpack" } else { "ziplist" };
                        RdbError::new(node_at, format!("quicklist node {kind} integrity check failed: {e}"))
                    })?;
                    l.extend(entries.into_iter().map(Elem::into_sds));
                }
                if l.is_empty() {
                    return Ok(None);
                }
                Value::List(Arc::new(l))
            }
            _ => return self.compact_object(t, hasher),
        }))
    }

    /// Types whose value is one string holding a compact structure.
    fn compact_object(&mut self, t: u8, hasher: &Hasher) -> Result<Option<Value>, RdbError> {
        let at = self.pos;
        let blob = self.string("an encoded value")?;
        let fail = |kind: &str, e: String| RdbError::new(at, format!("{kind} integrity check failed: {e}"));
        let value = match t {
            rdb_type::HASH_ZIPMAP => {
                let pairs = parse_zipmap(&blob).map_err(|e| fail("zipmap", e))?;
                build_hash(pairs.into_iter().map(|(k, v)| (Elem::Str(k), Elem::Str(v))), hasher)
                    .map_err(|e| fail("zipmap", e))?
            }
            rdb_type::LIST_ZIPLIST => {
                let entries = parse_ziplist(&blob).map_err(|e| fail("list ziplist", e))?;
                if entries.is_empty() {
                    return Ok(None);
                }
                Value::List(Arc::new(entries.into_iter().map(Elem::into_sds).collect()))
            }
            rdb_type::SET_INTSET => {
                let ints = parse_intset(&blob).map_err(|e| fail("intset", e))?;
                let mut s = HashSet::with_capacity_and_hasher(ints.len(), hasher.clone());
                s.extend(ints.into_iter().map(int_sds));
                Value::Set(Arc::new(s))
            }
            rdb_type::SET_LISTPACK => {
                let entries = parse_listpack(&blob).map_err(|e| fail("set listpack", e))?;
                if entries.is_empty() {
                    return Ok(None);
                }
                let mut s = HashSet::with_capacity_and_hasher(entries.len(), hasher.clone());
                for e in entries {
                    if !s.insert(e.into_sds()) {
                        return Err(fail("set listpack", "duplicate member".into()));
                    }
                }
                Value::Set(Arc::new(s))
            }
            rdb_type::ZSET_ZIPLIST | rdb_type::ZSET_LISTPACK => {
                let (kind, entries) = if t == rdb_type::ZSET_ZIPLIST {
                    ("zset ziplist", parse_ziplist(&blob))
                } else {
                    ("zset listpack", parse_listpack(&blob))
                };
                let pairs = pairs(entries.map_err(|e| fail(kind, e))?).map_err(|e| fail(kind, e))?;
                if pairs.is_empty() {
                    return Ok(None);
                }
                let mut z = ZSet::new(hasher.clone());
                z.scores.reserve(pairs.len());
                for (m, s) in pairs {
                    let score = match s {
                        Elem::Int(i) => i as f64,
                        Elem::Str(b) => parse_score(b).ok_or_else(|| fail(kind, "unparseable score".into()))?,
                    };
                    zset_add(&mut z, m.into_sds(), score).map_err(|e| fail(kind, e))?;
                }
                Value::ZSet(Arc::new(z))
            }
            rdb_type::HASH_ZIPLIST | rdb_type::HASH_LISTPACK => {
                let (kind, entries) = if t == rdb_type::HASH_ZIPLIST {
                    ("hash ziplist", parse_ziplist(&blob))
                } else {
                    ("hash listpack", parse_listpack(&blob))
                };
                let pairs = pairs(entries.map_err(|e| fail(kind, e))?).map_err(|e| fail(kind, e))?;
                if pairs.is_empty() {
                    return Ok(None);
                }
                build_hash(pairs.into_iter(), hasher).map_err(|e| fail(kind, e))?
            }
            _ => return Err(RdbError::new(at, format!("unknown value type {t}"))),
        };
        Ok(Some(value))
    }
}

/// Field/value or member/score pairs of a flat compact encoding.
fn pairs(entries: Vec<Elem<'_>>) -> Result<Vec<(Elem<'_>, Elem<'_>)>, String> {
    if !entries.len().is_multiple_of(2) {
        return Err(format!("odd number of entries ({})", entries.len()));
    }
    let mut it = entries.into_iter();
    let mut out = Vec::with_capacity(it.len() / 2);
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Ok(out)
}

fn build_hash<'b>(
    pairs: impl ExactSizeIterator<Item = (Elem<'b>, Elem<'b>)>,
    hasher: &Hasher,
) -> Result<Value, String> {
    let mut h = HashMap::with_capacity_and_hasher(pairs.len(), hasher.clone());
    for (f, v) in pairs {
        if h.insert(f.into_sds(), v.into_sds()).is_some() {
            return Err("duplicate hash field".into());
        }
    }
    Ok(Value::Hash(Arc::new(h)))
}

fn zset_add(z: &mut ZSet, member: Sds, score: f64) -> Result<(), String> {
    if score.is_nan() {
        return Err("Zset with NAN score detected".into());
    }
    if z.scores.contains_key(&member[..]) {
        return Err("Duplicate zset fields detected".into());
    }
    z.insert(member, score);
    Ok(())
}

/// Scores stored as text: `%.17g` output, integers, `inf`/`-inf` (what Redis writes).
fn parse_score(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    s.trim().parse::<f64>().ok()
}

// ---- compact encodings ------------------------------------------------------------------------

/// One element of a listpack or ziplist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem<'b> {
    Str(&'b [u8]),
    Int(i64),
}

impl Elem<'_> {
    fn into_sds(self) -> Sds {
        match self {
            Elem::Str(b) => Sds::new(b),
            Elem::Int(i) => int_sds(i),
        }
    }
}

fn le_uint(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |v, &x| (v << 8) | x as u64)
}

/// Sign-extends the low `bits` bits of `v`.
// Callers pass the widths of the encodings, 8..=64 bits, so `64 - bits` is 0..=56.
#[allow(clippy::arithmetic_side_effects)]
fn sign_extend(v: u64, bits: u32) -> i64 {
    debug_assert!((1..=64).contains(&bits));
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// Splits `n` bytes off the front of `s`, or fails as the entry at `p` running past the end.
fn split(s: &[u8], n: usize, p: usize) -> Result<(&[u8], &[u8]), String> {
    s.split_at_checked(n).ok_or_else(|| format!("entry at {p} runs past the end"))
}

/// Listpack: u32 LE total bytes, u16 LE count (65535 = unknown), entries, 0xFF. Each entry is
/// encoding + data + backlen; every field is checked (`lpValidateIntegrity`, deep).
fn parse_listpack(lp: &[u8]) -> Result<Vec<Elem<'_>>, String> {
    const HDR: usize = super::encode::LP_HEADER_SIZE;
    if lp.len() < HDR + 1 {
        return Err(format!("{} bytes is shorter than an empty listpack", lp.len()));
    }
    let total = le_uint(&lp[0..4]) as usize;
    if total != lp.len() {
        return Err(format!("header says {total} bytes, blob has {}", lp.len()));
    }
    // Entries never include the terminator.
    let Some((&super::encode::LP_EOF, body)) = lp.split_last() else {
        return Err("missing terminator".into());
    };
    let header_count = le_uint(&lp[4..6]) as usize;
    // Every entry takes at least two bytes (encoding and back-length).
    let mut out = Vec::with_capacity(header_count.min(body.len() / 2));
    let mut rest = &body[HDR..];
    while let Some((&b, data)) = rest.split_first() {
        let p = offset_of(body, rest);
        let (elem, after) = if b & 0x80 == 0 {
            (Elem::Int((b & 0x7f) as i64), data)
        } else if b & 0xC0 == 0x80 {
            let (s, after) = split(data, (b & 0x3f) as usize, p)?;
            (Elem::Str(s), after)
        } else if b & 0xE0 == 0xC0 {
            let (x, after) = split(data, 1, p)?;
            (Elem::Int(sign_extend((((b & 0x1f) as u64) << 8) | x[0] as u64, 13)), after)
        } else if b & 0xF0 == 0xE0 {
            let (x, after) = split(data, 1, p)?;
            let (s, after) = split(after, (((b & 0x0f) as usize) << 8) | x[0] as usize, p)?;
            (Elem::Str(s), after)
        } else {
            match b {
                0xF0 => {
                    let (x, after) = split(data, 4, p)?;
                    let (s, after) = split(after, le_uint(x) as usize, p)?;
                    (Elem::Str(s), after)
                }
                0xF1 => {
                    let (x, after) = split(data, 2, p)?;
                    (Elem::Int(sign_extend(le_uint(x), 16)), after)
                }
                0xF2 => {
                    let (x, after) = split(data, 3, p)?;
                    (Elem::Int(sign_extend(le_uint(x), 24)), after)
                }
                0xF3 => {
                    let (x, after) = split(data, 4, p)?;
                    (Elem::Int(sign_extend(le_uint(x), 32)), after)
                }
                0xF4 => {
                    let (x, after) = split(data, 8, p)?;
                    (Elem::Int(le_uint(x) as i64), after)
                }
                _ => return Err(format!("invalid entry encoding 0x{b:02x} at {p}")),
            }
        };
        let mut expect = [0u8; 5];
        let bl = super::encode::lp_backlen(offset_of(rest, after), &mut expect);
        let (got, after) = split(after, bl, p)?;
        if got != &expect[..bl] {
            return Err(format!("entry at {p} has a wrong back-length"));
        }
        out.push(elem);
        rest = after;
    }
    if header_count != u16::MAX as usize && header_count != out.len() {
        return Err(format!("header count {header_count} but {} entries", out.len()));
    }
    Ok(out)
}

/// Ziplist (pre-7.0 compact lists, hashes, zsets): u32 LE bytes, u32 LE tail offset, u16 LE
/// count, entries of (prevlen, encoding, data), 0xFF. Checked like `ziplistValidateIntegrity`
/// with deep validation: prevlens chain, tail points at the last entry, count matches.
fn parse_ziplist(zl: &[u8]) -> Result<Vec<Elem<'_>>, String> {
    const HDR: usize = 10;
    if zl.len() < HDR + 1 {
        return Err(format!("{} bytes is shorter than an empty ziplist", zl.len()));
    }
    let bytes = le_uint(&zl[0..4]) as usize;
    if bytes != zl.len() {
        return Err(format!("header says {bytes} bytes, blob has {}", zl.len()));
    }
    let Some((&0xFF, body)) = zl.split_last() else {
        return Err("missing terminator".into());
    };
    let tail = le_uint(&zl[4..8]) as usize;
    let header_count = le_uint(&zl[8..10]) as usize;
    // Every entry takes at least two bytes (prevlen and encoding).
    let mut out = Vec::with_capacity(header_count.min(body.len() / 2));
    let mut rest = &body[HDR..];
    let mut prev_raw = 0usize;
    let mut last = None;
    while let Some((&first, after_first)) = rest.split_first() {
        let p = offset_of(body, rest);
        let (prevlen, after) = if first < 254 {
            (first as usize, after_first)
        } else if first == 254 {
            let (x, after) = split(after_first, 4, p)?;
            (le_uint(x) as usize, after)
        } else {
            return Err(format!("terminator inside the ziplist at {p}"));
        };
        if prevlen != prev_raw {
            return Err(format!("entry at {p} says the previous entry has {prevlen} bytes, it has {prev_raw}"));
        }
        let (enc, data) = split(after, 1, p)?;
        let b = enc[0];
        let (elem, after) = match b >> 6 {
            0 => {
                let (s, after) = split(data, (b & 0x3f) as usize, p)?;
                (Elem::Str(s), after)
            }
            1 => {
                let (x, after) = split(data, 1, p)?;
                let (s, after) = split(after, (((b & 0x3f) as usize) << 8) | x[0] as usize, p)?;
                (Elem::Str(s), after)
            }
            2 => {
                let (x, after) = split(data, 4, p)?;
                let (s, after) = split(after, u32::from_be_bytes([x[0], x[1], x[2], x[3]]) as usize, p)?;
                (Elem::Str(s), after)
            }
            _ => {
                let (size, bits) = match b {
                    0xC0 => (2, 16),
                    0xD0 => (4, 32),
                    0xE0 => (8, 64),
                    0xF0 => (3, 24),
                    0xFE => (1, 8),
                    0xF1..=0xFD => (0, 0),
                    _ => return Err(format!("invalid entry encoding 0x{b:02x} at {p}")),
                };
                let (x, after) = split(data, size, p)?;
                let v = if bits == 0 { ziplist_immediate(b) } else { sign_extend(le_uint(x), bits) };
                (Elem::Int(v), after)
            }
        };
        out.push(elem);
        last = Some(p);
        prev_raw = offset_of(rest, after);
        rest = after;
    }
    if let Some(l) = last {
        if l != tail {
            return Err(format!("tail offset {tail} does not point at the last entry ({l})"));
        }
    }
    if header_count != u16::MAX as usize && header_count != out.len() {
        return Err(format!("header count {header_count} but {} entries", out.len()));
    }
    Ok(out)
}

/// The value of a ziplist immediate-integer encoding byte (0xF1..=0xFD hold 0..=12).
// `b & 0x0f` is 1..=13 for those bytes, the only ones the caller passes.
#[allow(clippy::arithmetic_side_effects)]
fn ziplist_immediate(b: u8) -> i64 {
    debug_assert!((0xF1..=0xFD).contains(&b));
    i64::from(b & 0x0f) - 1
}

type FieldValue<'b> = (&'b [u8], &'b [u8]);

/// Zipmap (Redis < 2.6 small hashes): count byte, then (len, field, len, free, value, free
/// bytes)*, 0xFF. Lengths are one byte below 254, else 254 + u32 LE.
fn parse_zipmap<'z>(zm: &'z [u8]) -> Result<Vec<FieldValue<'z>>, String> {
    let Some((&0xFF, body)) = zm.split_last() else {
        return Err("missing terminator".into());
    };
    let Some((&count, entries)) = body.split_first() else {
        return Err("missing terminator".into());
    };
    // Positions in messages are offsets in the zipmap.
    let at = |s: &[u8]| offset_of(body, s);
    let read_len = |s: &'z [u8]| -> Result<(usize, &'z [u8]), String> {
        match s.split_first() {
            None => Err(format!("entry at {} runs past the end", at(s))),
            Some((&b, after)) if b < 254 => Ok((b as usize, after)),
            Some((_, after)) => match after.split_first_chunk::<4>() {
                Some((n, after)) => Ok((u32::from_le_bytes(*n) as usize, after)),
                None => Err(format!("length at {} runs past the end", at(s))),
            },
        }
    };
    let mut out = Vec::new();
    let mut rest = entries;
    while let Some((&b, _)) = rest.split_first() {
        if b == 0xFF {
            return Err(format!("terminator inside the zipmap at {}", at(rest)));
        }
        let (kl, r) = read_len(rest)?;
        let (k, r) = split(r, kl, at(r))?;
        let (vl, r) = read_len(r)?;
        let Some((&free, r)) = r.split_first() else {
            return Err(format!("free byte at {} runs past the end", at(r)));
        };
        let (v, r) = split(r, vl, at(r))?;
        let (_, r) = split(r, free as usize, at(r))?;
        out.push((k, v));
        rest = r;
    }
    if out.is_empty() {
        return Err("empty zipmap".into());
    }
    if count != 254 && count as usize != out.len() {
        return Err(format!("header count {} but {} entries", count, out.len()));
    }
    Ok(out)
}

/// Intset: u32 LE width (2, 4 or 8), u32 LE count, strictly ascending LE integers, non-empty.
fn parse_intset(is: &[u8]) -> Result<Vec<i64>, String> {
    if is.len() < 8 {
        return Err(format!("{} bytes is shorter than the header", is.len()));
    }
    let (width, bits) = match le_uint(&is[0..4]) {
        2 => (2usize, 16),
        4 => (4, 32),
        8 => (8, 64),
        w => return Err(format!("invalid element width {w}")),
    };
    let count = le_uint(&is[4..8]) as usize;
    if count.checked_mul(width).and_then(|n| n.checked_add(8)) != Some(is.len()) {
        return Err(format!("{count} elements of {width} bytes do not match {} bytes", is.len()));
    }
    if count == 0 {
        return Err("empty intset".into());
    }
    let vals: Vec<i64> = is[8..].chunks_exact(width).map(|c| sign_extend(le_uint(c), bits)).collect();
    if vals.windows(2).any(|w| w[0] >= w[1]) {
        return Err("elements not strictly ascending (duplicate or unsorted)".into());
    }
    Ok(vals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::encode::{lp_append, lp_begin, lp_finish};

    #[test]
    fn listpack_encodings_round_trip() {
        let items: Vec<Vec<u8>> = [
            "0",
            "127",
            "128",
            "-1",
            "-4096",
            "4095",
            "4096",
            "-32768",
            "32767",
            "32768",
            "-8388608",
            "8388607",
            "8388608",
            "-2147483648",
            "2147483647",
            "2147483648",
            "-9223372036854775808",
            "9223372036854775807",
            "",
            "a",
            "-0",
            "01",
            "+1",
            "9223372036854775808",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([vec![b'x'; 63], vec![b'y'; 64], vec![b'z'; 4095], vec![b'w'; 4096], vec![b'v'; 20000]])
        .collect();
        let mut lp = Vec::new();
        lp_begin(&mut lp);
        for i in &items {
            lp_append(&mut lp, i);
        }
        lp_finish(&mut lp, items.len());
        let back: Vec<Vec<u8>> = parse_listpack(&lp).unwrap().into_iter().map(|e| e.into_sds().to_vec()).collect();
        assert_eq!(back, items);
    }

    #[test]
    fn sign_extension() {
        assert_eq!(sign_extend(0x1fff, 13), -1);
        assert_eq!(sign_extend(0x1000, 13), -4096);
        assert_eq!(sign_extend(0x0fff, 13), 4095);
        assert_eq!(sign_extend(0xff_ffff, 24), -1);
        assert_eq!(sign_extend(0x80, 8), -128);
    }

    #[test]
    fn intset_rules() {
        let mk = |w: u32, v: &[i64]| {
            let mut b = w.to_le_bytes().to_vec();
            b.extend((v.len() as u32).to_le_bytes());
            for x in v {
                b.extend(&x.to_le_bytes()[..w as usize]);
            }
            b
        };
        assert_eq!(parse_intset(&mk(2, &[-5, 3, 7])).unwrap(), vec![-5, 3, 7]);
        assert!(parse_intset(&mk(2, &[3, 3])).is_err());
        assert!(parse_intset(&mk(2, &[4, 3])).is_err());
        assert!(parse_intset(&mk(2, &[])).is_err());
        assert!(parse_intset(&mk(3, &[1])).is_err());
        let mut short = mk(8, &[1, 2]);
        short.pop();
        assert!(parse_intset(&short).is_err());
    }

    #[test]
    fn ziplist_hand_built() {
        // entries: "ab", 12 (imm), -2 (int8), 300 (int16), 70000 (int24), and a 300-byte string
        let mut zl = vec![0u8; 10];
        let mut prev = 0usize;
        let mut offsets = Vec::new();
        let mut push = |zl: &mut Vec<u8>, payload: Vec<u8>| {
            offsets.push(zl.len());
            let start = zl.len();
            if prev < 254 {
                zl.push(prev as u8);
            } else {
                zl.push(254);
                zl.extend((prev as u32).to_le_bytes());
            }
            zl.extend(payload);
            prev = zl.len() - start;
        };
        push(&mut zl, vec![0x02, b'a', b'b']);
        push(&mut zl, vec![0xF1 + 12]);
        push(&mut zl, vec![0xFE, 0xFE]);
        push(&mut zl, vec![0xC0, 0x2C, 0x01]);
        push(&mut zl, vec![0xF0, 0x70, 0x11, 0x01]);
        let mut big = vec![0x40 | 1, 44];
        big.extend(vec![b'q'; 300]);
        push(&mut zl, big);
        push(&mut zl, vec![0x00]); // empty string after a 5-byte prevlen
        zl.push(0xFF);
        let n = zl.len() as u32;
        zl[0..4].copy_from_slice(&n.to_le_bytes());
        zl[4..8].copy_from_slice(&(*offsets.last().unwrap() as u32).to_le_bytes());
        zl[8..10].copy_from_slice(&7u16.to_le_bytes());
        let got: Vec<Sds> = parse_ziplist(&zl).unwrap().into_iter().map(Elem::into_sds).collect();
        let want: Vec<Sds> = ["ab", "12", "-2", "300", "70000"]
            .iter()
            .map(|s| Sds::from(*s))
            .chain([Sds::new(&[b'q'; 300]), Sds::from("")])
            .collect();
        assert_eq!(got, want);
        let mut bad = zl.clone();
        bad[8] = 6;
        assert!(parse_ziplist(&bad).is_err(), "count mismatch");
        let mut bad = zl.clone();
        bad[4] = bad[4].wrapping_add(1);
        assert!(parse_ziplist(&bad).is_err(), "tail mismatch");
    }
}
