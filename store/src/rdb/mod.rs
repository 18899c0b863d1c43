//! The RDB snapshot format, as Redis 7.0 writes it and as Redis 1.x–7.2 files can hold it.
//!
//! # Why it is shaped this way
//!
//! RDB is how data crosses the boundary to real Redis: a full resync sends one, `SAVE` writes
//! one, and a real replica **exits** if ours is malformed (see the wire reference, section 3).
//! So the module is pure code over bytes — no disk, no tokio — and the caller moves the bytes
//! through the project's disk or network seam. That keeps it deterministic under simulation and
//! lets the tests drive it with plain slices.
//!
//! - [`crc64`]: Redis's CRC-64 (Jones polynomial), the trailer of every file since version 5.
//! - [`lzf`]: the LZF codec Redis uses for strings longer than 20 bytes.
//! - [`encode`]: a streaming writer of version 10 files (what Redis 7.0 writes), so a large
//!   dataset is serialised key by key instead of being built twice in memory.
//! - [`decode`]: a loader for versions 1..=11 and every encoding a real Redis writes or wrote
//!   (ziplists, zipmaps, intsets, quicklists, listpacks). It never panics and never allocates
//!   more than a bounded multiple of its input, whatever the bytes: every count and length in
//!   the file is checked against what is left before anything is reserved.
//!
//! The numeric constants below are the ones in Redis's `rdb.h`; they are the file format.
//!
//! Arithmetic here and in the submodules is denied unless checked, saturating or explicitly
//! allowed with the reason it cannot overflow: every length, count and offset comes from a file
//! or a peer (issue 12).

pub mod crc64;
pub mod decode;
pub mod encode;
pub mod lzf;

#[cfg(test)]
mod fixtures;
// Test code (generators, corruption helpers): an overflow there fails a test, it cannot abort
// a server, so the arithmetic lint denied above does not apply.
#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests;

use std::fmt;

pub use decode::{decode, decode_dump, RdbData};
pub use encode::{dump_value, encode_keyspace, AuxFields, RdbWriter, ReplAux};

/// The version this module writes: Redis 7.0's. Redis refuses files newer than its own, so
/// writing 10 keeps every 7.x replica able to load ours.
pub const RDB_VERSION: u32 = 10;
/// The newest version the decoder accepts (Redis 7.2 files; 7.4's 12 adds hash-field expiry,
/// which our values cannot hold).
pub const RDB_MAX_LOAD_VERSION: u32 = 11;

/// Opcodes (bytes in the position of a value type).
pub mod opcode {
    pub const FUNCTION2: u8 = 245;
    pub const FUNCTION_PRE_GA: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// Value types.
pub mod rdb_type {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE_PRE_GA: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
}

/// Length-encoding markers (top two bits of the first byte, or the whole byte).
pub(crate) mod len_enc {
    pub const BITS_6: u8 = 0;
    pub const BITS_14: u8 = 1;
    pub const BITS_32: u8 = 0x80;
    pub const BITS_64: u8 = 0x81;
    pub const ENCVAL: u8 = 3;
    /// Special string encodings (low six bits after `ENCVAL`).
    pub const ENC_INT8: u8 = 0;
    pub const ENC_INT16: u8 = 1;
    pub const ENC_INT32: u8 = 2;
    pub const ENC_LZF: u8 = 3;
}

/// Quicklist node containers (QUICKLIST_2).
pub(crate) const QUICKLIST_NODE_PLAIN: u64 = 1;
pub(crate) const QUICKLIST_NODE_PACKED: u64 = 2;

/// A corrupt, truncated or unsupported file. `offset` is the byte in the input where the
/// problem was found (for a problem inside a compact blob, the blob's first byte).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RdbError {
    pub offset: usize,
    pub message: String,
}

impl RdbError {
    pub fn new(offset: usize, message: impl Into<String>) -> RdbError {
        RdbError { offset, message: message.into() }
    }
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad RDB at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for RdbError {}

/// Where `rest`, a suffix of `whole` (what is left after parsing some of it), starts in `whole`:
/// for positions in error messages. (Saturating only in name: a suffix is never longer.)
pub(crate) fn offset_of(whole: &[u8], rest: &[u8]) -> usize {
    whole.len().saturating_sub(rest.len())
}

/// Parses `s` as Redis's `string2ll` does: an optional `-`, digits without leading zeros (bare
/// `0` allowed, `-0` not), in `i64` range, nothing else. Strings that pass are the ones Redis
/// stores as integers (int-encoded RDB strings, listpack and intset integers), and exactly these
/// print back to the same bytes, so integer encoding never changes a value.
pub(crate) fn parse_canonical_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    // Accumulate negatively so that i64::MIN parses.
    let mut v: i64 = 0;
    for &c in digits {
        let d = char::from(c).to_digit(10)?;
        v = v.checked_mul(10)?.checked_sub(i64::from(d))?;
    }
    if neg {
        Some(v)
    } else {
        v.checked_neg()
    }
}
