//! Redis's CRC-64: Jones polynomial `0xad93d23594c935a9`, reflected in and out, initial value 0,
//! no final xor (crc-catalog `CRC-64/REDIS`, check value `0xe9c6d914c4b8d9ca`).
//!
//! Why table-driven with slicing-by-8: every RDB byte we write or load goes through this, and a
//! snapshot can be gigabytes; eight 256-entry tables (16 KiB, built at compile time) process a
//! word per step instead of a byte. The byte-at-a-time loop is kept for the tail and as the
//! reference the tests compare against. Pure safe code; the state is one `u64`.

/// The reflected form of the Jones polynomial.
const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;

// Evaluated only at compile time (the `static` below), where an overflow would be a build
// error; every counter is bounded by its loop condition (`i < 256`, `bit < 8`, `1 <= k < 8`).
// `const fn` cannot use iterators, hence the index arithmetic.
#[allow(clippy::arithmetic_side_effects)]
const fn make_tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY_REFLECTED } else { crc >> 1 };
            bit += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

static TABLES: [[u64; 256]; 8] = make_tables();

/// Incremental CRC-64 state. `Crc64::new().update(a).update(b)` equals the CRC of `a ++ b`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Crc64(u64);

impl Crc64 {
    pub fn new() -> Crc64 {
        Crc64(0)
    }

    /// Continues from a previous value (Redis's `crc64(crc, buf, len)`).
    pub fn from_value(crc: u64) -> Crc64 {
        Crc64(crc)
    }

    pub fn update(&mut self, data: &[u8]) -> &mut Crc64 {
        let t = &TABLES;
        let mut crc = self.0;
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let word = crc ^ u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            crc = t[7][(word & 0xff) as usize]
                ^ t[6][((word >> 8) & 0xff) as usize]
                ^ t[5][((word >> 16) & 0xff) as usize]
                ^ t[4][((word >> 24) & 0xff) as usize]
                ^ t[3][((word >> 32) & 0xff) as usize]
                ^ t[2][((word >> 40) & 0xff) as usize]
                ^ t[1][((word >> 48) & 0xff) as usize]
                ^ t[0][(word >> 56) as usize];
        }
        for &b in chunks.remainder() {
            crc = t[0][((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
        }
        self.0 = crc;
        self
    }

    pub fn value(&self) -> u64 {
        self.0
    }
}

/// The CRC-64 of one buffer.
pub fn crc64(data: &[u8]) -> u64 {
    Crc64::new().update(data).value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bit-at-a-time definition, independent of the tables.
    fn reference(data: &[u8]) -> u64 {
        let mut crc = 0u64;
        for &b in data {
            crc ^= b as u64;
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ POLY_REFLECTED } else { crc >> 1 };
            }
        }
        crc
    }

    #[test]
    fn check_value() {
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        assert_eq!(reference(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        assert_eq!(crc64(b""), 0);
    }

    #[test]
    fn redis_test_vector() {
        // crc64.c's self test (`crc64Test`): the same text and expected value.
        let li = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor \
incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation \
ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in \
voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat cupidatat non \
proident, sunt in culpa qui officia deserunt mollit anim id est laborum.\0";
        // `sizeof(li)` in the C test includes the terminating NUL.
        assert_eq!(crc64(li), 0xc779_4709_e696_83b3);
        assert_eq!(reference(li), 0xc779_4709_e696_83b3);
    }

    proptest! {
        #[test]
        fn sliced_equals_bitwise_and_is_incremental(data in proptest::collection::vec(any::<u8>(), 0..300),
                                                    split in 0usize..300) {
            prop_assert_eq!(crc64(&data), reference(&data));
            let s = split.min(data.len());
            let mut c = Crc64::new();
            c.update(&data[..s]).update(&data[s..]);
            prop_assert_eq!(c.value(), reference(&data));
        }
    }
}
