//! LZF, the byte-oriented LZ77 variant Redis uses for RDB strings (`lzf_c.c`, `lzf_d.c`).
//!
//! Format, per control byte `c`: `c < 32` copies the next `c + 1` literal bytes; otherwise
//! `len = c >> 5` (plus the next byte when `len == 7`) and a back-reference of `len + 2` bytes
//! at distance `((c & 31) << 8) + next byte + 1`, possibly overlapping its own output.
//!
//! Why it is shaped so:
//! - **Decompression is bounded by construction.** The decoder takes the output length the RDB
//!   header claims, refuses claims no LZF stream of that size could produce (one input byte can
//!   yield at most [`MAX_EXPANSION`] output bytes), and checks every literal run and
//!   back-reference against both buffers, so a hostile file costs at most `88 ×` its own size
//!   and can never panic or read out of bounds.
//! - **Compression is a plain greedy matcher**, not a port of `lzf_c.c`: any valid LZF stream
//!   decodes the same in Redis, so byte-identical output is not needed. The hash table is kept
//!   in a reusable [`Compressor`] and invalidated by an epoch counter instead of being cleared,
//!   because Redis compresses every string over 20 bytes and clearing 128 KiB for each one
//!   would dominate the cost of small strings; the epoch keeps each output a function of its
//!   input alone (deterministic snapshots).

use std::fmt;

/// Longest back-reference distance.
pub const MAX_OFF: usize = 1 << 13;
/// Longest back-reference (`7 + 255 + 2`).
pub const MAX_REF: usize = (1 << 8) + (1 << 3);
/// Longest literal run.
pub const MAX_LIT: usize = 1 << 5;
/// Most output bytes one input byte can produce: a 3-byte long back-reference yields 264.
pub const MAX_EXPANSION: usize = MAX_REF / 3;

/// log2 of the compressor's hash-table size (16 K entries of 8 bytes).
const HLOG: u32 = 14;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LzfError {
    /// Offset in the compressed input.
    pub at: usize,
    pub reason: &'static str,
}

impl fmt::Display for LzfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid LZF data at compressed byte {}: {}", self.at, self.reason)
    }
}

impl std::error::Error for LzfError {}

/// Decompresses `input`, which must expand to exactly `out_len` bytes.
///
/// The input is consumed as a shrinking slice and the output budget as a counter that each
/// run or reference is checked-subtracted from, so no offset is ever computed from the data.
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, LzfError> {
    if out_len > input.len().saturating_mul(MAX_EXPANSION) {
        return Err(LzfError { at: 0, reason: "claimed length exceeds what the data can expand to" });
    }
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    // Output bytes still expected (`out_len - out.len()`).
    let mut room = out_len;
    let mut rest = input;
    while let Some((&ctrl, after)) = rest.split_first() {
        let at = consumed(input, rest);
        let err = |reason| Err(LzfError { at, reason });
        rest = after;
        if usize::from(ctrl) < MAX_LIT {
            // `ctrl + 1` literal bytes.
            let Some(lit) = rest.get(..=usize::from(ctrl)) else {
                return err("literal run past the end of the input");
            };
            let Some(r) = room.checked_sub(lit.len()) else {
                return err("literal run past the declared length");
            };
            room = r;
            out.extend_from_slice(lit);
            rest = &rest[lit.len()..];
        } else {
            let extra = if ctrl >> 5 == 7 {
                let Some((&extra, after)) = rest.split_first() else {
                    return err("back-reference length past the end of the input");
                };
                rest = after;
                extra
            } else {
                0
            };
            let Some((&low, after)) = rest.split_first() else {
                return err("back-reference offset past the end of the input");
            };
            rest = after;
            let (len, dist) = back_reference(ctrl, extra, low);
            let Some(start) = out.len().checked_sub(dist) else {
                return err("back-reference before the start of the output");
            };
            let Some(r) = room.checked_sub(len) else {
                return err("back-reference past the declared length");
            };
            room = r;
            if dist >= len {
                // `start + len <= start + dist == out.len()`.
                #[allow(clippy::arithmetic_side_effects)]
                let end = start + len;
                out.extend_from_within(start..end);
            } else {
                // Overlapping: the `dist` bytes from `start` repeat (each copied byte may be
                // one this reference just produced). `dist < len <= MAX_REF`.
                let mut period = [0u8; MAX_REF];
                let period = &mut period[..dist];
                period.copy_from_slice(&out[start..]);
                out.extend(period.iter().cycle().take(len));
            }
        }
    }
    if room != 0 {
        return Err(LzfError { at: input.len(), reason: "data ends before the declared length" });
    }
    Ok(out)
}

/// Offset of `rest`, a suffix of `input`, within `input` (for error messages).
fn consumed(input: &[u8], rest: &[u8]) -> usize {
    input.len().saturating_sub(rest.len())
}

/// A back-reference's (length, distance) from its control byte, the extra length byte (0 when
/// `ctrl >> 5 < 7`) and the low offset byte.
// Byte-sized operands: at most 7 + 255 + 2 = MAX_REF and (31 << 8) + 255 + 1 = MAX_OFF.
#[allow(clippy::arithmetic_side_effects)]
fn back_reference(ctrl: u8, extra: u8, low: u8) -> (usize, usize) {
    let len = usize::from(ctrl >> 5) + usize::from(extra) + 2;
    let dist = (usize::from(ctrl & 0x1f) << 8) + usize::from(low) + 1;
    (len, dist)
}

/// A reusable LZF compressor (holds the 128 KiB match table between calls).
pub struct Compressor {
    /// (epoch, position) of the last 3-byte sequence with each hash.
    table: Vec<(u32, u32)>,
    epoch: u32,
}

impl Default for Compressor {
    fn default() -> Compressor {
        Compressor::new()
    }
}

fn hash3(b: &[u8]) -> usize {
    let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
    (v.wrapping_mul(2_654_435_761) >> (32 - HLOG)) as usize
}

fn emit_literals(out: &mut Vec<u8>, lit: &[u8]) {
    for chunk in lit.chunks(MAX_LIT) {
        // `chunks` yields 1..=MAX_LIT bytes: the control byte is the run length minus one.
        #[allow(clippy::arithmetic_side_effects)]
        let ctrl = (chunk.len() - 1) as u8;
        out.push(ctrl);
        out.extend_from_slice(chunk);
    }
}

// The caller found a match of 3..=MAX_REF bytes at distance 1..=MAX_OFF (debug-asserted), so
// the subtractions stay within those small ranges.
#[allow(clippy::arithmetic_side_effects)]
fn emit_backref(out: &mut Vec<u8>, len: usize, dist: usize) {
    debug_assert!((3..=MAX_REF).contains(&len) && (1..=MAX_OFF).contains(&dist));
    let l = len - 2;
    let off = dist - 1;
    if l < 7 {
        out.push(((l << 5) | (off >> 8)) as u8);
    } else {
        out.push(((7 << 5) | (off >> 8)) as u8);
        out.push((l - 7) as u8);
    }
    out.push((off & 0xff) as u8);
}

/// Bytes appended to `out` since it was `base` long.
fn appended(out: &[u8], base: usize) -> usize {
    out.get(base..).map_or(0, <[u8]>::len)
}

impl Compressor {
    pub fn new() -> Compressor {
        Compressor { table: vec![(0, 0); 1 << HLOG], epoch: 0 }
    }

    fn next_epoch(&mut self) {
        self.epoch = match self.epoch.checked_add(1) {
            Some(e) => e,
            None => {
                // Every epoch was used: forget them all and start again.
                self.table.iter_mut().for_each(|e| *e = (0, 0));
                1
            }
        };
    }

    /// Appends the compressed form of `input` to `out` if it is at most `max_out` bytes, and
    /// returns whether it did (on `false`, `out` is unchanged). Like `lzf_compress` with an
    /// output limit: Redis passes `len - 4` so that compression must save at least 4 bytes.
    pub fn compress(&mut self, input: &[u8], max_out: usize, out: &mut Vec<u8>) -> bool {
        let n = input.len();
        // Positions are stored as u32; Redis strings are far smaller, so just do not compress.
        if n == 0 || u32::try_from(n).is_err() {
            return false;
        }
        self.next_epoch();
        let epoch = self.epoch;
        let base = out.len();
        let mut lit_start = 0;
        let mut ip = 0;
        while let Some(head) = input.get(ip..).and_then(|rest| rest.first_chunk::<3>()) {
            let h = hash3(head);
            let (e, r) = self.table[h];
            self.table[h] = (epoch, ip as u32);
            // Entries of this epoch are earlier positions: `r < ip`.
            let dist = ip.checked_sub(r as usize).filter(|&d| e == epoch && (1..=MAX_OFF).contains(&d));
            if let Some(dist) = dist {
                let r = r as usize;
                // Common prefix of the two positions, at most MAX_REF and the input left.
                let len = input[r..].iter().zip(&input[ip..]).take(MAX_REF).take_while(|(a, b)| a == b).count();
                if len >= 3 {
                    emit_literals(out, &input[lit_start..ip]);
                    emit_backref(out, len, dist);
                    if appended(out, base) > max_out {
                        out.truncate(base);
                        return false;
                    }
                    // `len <= n - ip`: the match ends within the input.
                    #[allow(clippy::arithmetic_side_effects)]
                    let end = ip + len;
                    // Index the positions inside the match too (skipping `ip`, done above).
                    for (p, w) in (ip..end).zip(input[ip..].windows(3)).skip(1) {
                        self.table[hash3(w)] = (epoch, p as u32);
                    }
                    ip = end;
                    lit_start = ip;
                    continue;
                }
            }
            // `ip + 3 <= n` (a 3-byte head was there), and `lit_start <= ip`.
            #[allow(clippy::arithmetic_side_effects)]
            let pending = {
                ip += 1;
                ip - lit_start
            };
            // Give up early on incompressible data: pending literals already exceed the budget.
            // (Saturating: a sum past usize::MAX is over any budget.)
            let needed = appended(out, base).saturating_add(pending).saturating_add(pending.div_ceil(MAX_LIT));
            if needed > max_out {
                out.truncate(base);
                return false;
            }
        }
        emit_literals(out, &input[lit_start..]);
        if appended(out, base) > max_out {
            out.truncate(base);
            return false;
        }
        true
    }
}

// Test code (proptest strategies): an overflow fails a test, it cannot abort a server.
#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(data: &[u8]) {
        let mut c = Compressor::new();
        let mut out = Vec::new();
        assert!(c.compress(data, usize::MAX, &mut out) || data.is_empty());
        assert_eq!(decompress(&out, data.len()).unwrap(), data);
    }

    #[test]
    fn known_stream_from_redis() {
        // The "compressible" value of Redis's tests/assets/encodings.rdb: 'a' x 137.
        let z = [0x01, 0x61, 0x61, 0xe0, 0x7c, 0x00, 0x01, 0x61, 0x61];
        assert_eq!(decompress(&z, 137).unwrap(), vec![b'a'; 137]);
    }

    #[test]
    fn long_runs_and_limits() {
        round_trip(&vec![b'x'; 100_000]);
        let pattern: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        round_trip(&pattern);
        // Far matches at exactly the maximum distance.
        let mut far: Vec<u8> = (0..MAX_OFF as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        far.extend_from_within(0..300);
        round_trip(&far);
        let mut c = Compressor::new();
        let mut out = vec![9];
        assert!(!c.compress(b"abcdefghijklmnopqrstuvwxyz", 22, &mut out), "incompressible data must not fit");
        assert_eq!(out, vec![9], "a failed attempt leaves the output unchanged");
    }

    #[test]
    fn rejects_bad_streams() {
        assert!(decompress(&[0x20, 0x00], 3).is_err(), "reference before start");
        assert!(decompress(&[0x02, b'a'], 3).is_err(), "truncated literal");
        assert!(decompress(&[0x00, b'a'], 2).is_err(), "short output");
        assert!(decompress(&[0x01, b'a', b'b'], 1).is_err(), "long output");
        assert!(decompress(&[0x00, b'a', 0xe0], 100).is_err(), "truncated reference");
        assert!(decompress(&[0x00], 1 << 40).is_err(), "impossible claim is refused before allocating");
    }

    proptest! {
        #[test]
        fn round_trips(data in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2000),
            proptest::collection::vec(0u8..3, 0..5000),
            (proptest::collection::vec(any::<u8>(), 1..40), 1usize..400)
                .prop_map(|(unit, n)| unit.iter().cycle().take(unit.len() * n).copied().collect()),
        ]) {
            round_trip(&data);
        }

        #[test]
        fn output_respects_limit(data in proptest::collection::vec(0u8..4, 1..500), limit in 0usize..600) {
            let mut c = Compressor::new();
            let mut out = Vec::new();
            if c.compress(&data, limit, &mut out) {
                prop_assert!(out.len() <= limit);
                prop_assert_eq!(decompress(&out, data.len()).unwrap(), data);
            } else {
                prop_assert!(out.is_empty());
            }
        }

        #[test]
        fn arbitrary_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), n in 0usize..20_000) {
            if let Ok(out) = decompress(&data, n) {
                prop_assert_eq!(out.len(), n);
            }
        }
    }
}
