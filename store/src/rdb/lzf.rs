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
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, LzfError> {
    if out_len > input.len().saturating_mul(MAX_EXPANSION) {
        return Err(LzfError { at: 0, reason: "claimed length exceeds what the data can expand to" });
    }
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut ip = 0;
    while ip < input.len() {
        let at = ip;
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < MAX_LIT {
            let n = ctrl + 1;
            if input.len() - ip < n {
                return Err(LzfError { at, reason: "literal run past the end of the input" });
            }
            if out_len - out.len() < n {
                return Err(LzfError { at, reason: "literal run past the declared length" });
            }
            out.extend_from_slice(&input[ip..ip + n]);
            ip += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                let Some(&extra) = input.get(ip) else {
                    return Err(LzfError { at, reason: "back-reference length past the end of the input" });
                };
                len += extra as usize;
                ip += 1;
            }
            let len = len + 2;
            let Some(&low) = input.get(ip) else {
                return Err(LzfError { at, reason: "back-reference offset past the end of the input" });
            };
            ip += 1;
            let dist = ((ctrl & 0x1f) << 8) + low as usize + 1;
            if dist > out.len() {
                return Err(LzfError { at, reason: "back-reference before the start of the output" });
            }
            if out_len - out.len() < len {
                return Err(LzfError { at, reason: "back-reference past the declared length" });
            }
            let start = out.len() - dist;
            if dist >= len {
                out.extend_from_within(start..start + len);
            } else {
                // Overlapping: each copied byte may be one this reference just produced.
                for i in 0..len {
                    let b = out[start + i];
                    out.push(b);
                }
            }
        }
    }
    if out.len() != out_len {
        return Err(LzfError { at: input.len(), reason: "data ends before the declared length" });
    }
    Ok(out)
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
        out.push((chunk.len() - 1) as u8);
        out.extend_from_slice(chunk);
    }
}

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

impl Compressor {
    pub fn new() -> Compressor {
        Compressor { table: vec![(0, 0); 1 << HLOG], epoch: 0 }
    }

    fn next_epoch(&mut self) {
        if self.epoch == u32::MAX {
            self.table.iter_mut().for_each(|e| *e = (0, 0));
            self.epoch = 0;
        }
        self.epoch += 1;
    }

    /// Appends the compressed form of `input` to `out` if it is at most `max_out` bytes, and
    /// returns whether it did (on `false`, `out` is unchanged). Like `lzf_compress` with an
    /// output limit: Redis passes `len - 4` so that compression must save at least 4 bytes.
    pub fn compress(&mut self, input: &[u8], max_out: usize, out: &mut Vec<u8>) -> bool {
        let n = input.len();
        // Positions are stored as u32; Redis strings are far smaller, so just do not compress.
        if n == 0 || n > u32::MAX as usize {
            return false;
        }
        self.next_epoch();
        let epoch = self.epoch;
        let base = out.len();
        let mut lit_start = 0;
        let mut ip = 0;
        while ip + 3 <= n {
            let h = hash3(&input[ip..]);
            let (e, r) = self.table[h];
            self.table[h] = (epoch, ip as u32);
            if e == epoch {
                let r = r as usize; // always < ip: entries of this epoch are earlier positions
                let dist = ip - r;
                if dist <= MAX_OFF && input[r..r + 3] == input[ip..ip + 3] {
                    let max = (n - ip).min(MAX_REF);
                    let mut len = 3;
                    while len < max && input[r + len] == input[ip + len] {
                        len += 1;
                    }
                    emit_literals(out, &input[lit_start..ip]);
                    emit_backref(out, len, dist);
                    if out.len() - base > max_out {
                        out.truncate(base);
                        return false;
                    }
                    let end = ip + len;
                    let mut p = ip + 1;
                    while p < end && p + 3 <= n {
                        self.table[hash3(&input[p..])] = (epoch, p as u32);
                        p += 1;
                    }
                    ip = end;
                    lit_start = ip;
                    continue;
                }
            }
            ip += 1;
            // Give up early on incompressible data: pending literals already exceed the budget.
            let pending = ip - lit_start;
            if out.len() - base + pending + pending.div_ceil(MAX_LIT) > max_out {
                out.truncate(base);
                return false;
            }
        }
        emit_literals(out, &input[lit_start..]);
        if out.len() - base > max_out {
            out.truncate(base);
            return false;
        }
        true
    }
}

#[cfg(test)]
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
