//! The replication backlog: the last `repl-backlog-size` bytes of the replication stream.
//!
//! A replica that lost its link asks to continue from offset X (`PSYNC <replid> <X>`); the
//! master can answer `+CONTINUE` only if every byte from X to its current offset is still here.
//! A bounded ring: appending past the size drops the oldest bytes and advances
//! `first_offset`, so memory never exceeds the configured size, whatever the write rate.
//! Offsets saturate at `i64::MAX` instead of overflowing: no real stream gets near it, but the
//! starting offset comes from a peer or a file (issue 12).

use std::collections::VecDeque;

pub struct Backlog {
    buf: VecDeque<u8>,
    size_max: usize,
    /// Replication offset of `buf[0]`. Offsets count stream bytes from 1, as Redis does: a
    /// fresh backlog at master offset M starts at M + 1.
    first_offset: i64,
}

impl Backlog {
    /// A backlog whose next byte will have offset `next_offset`.
    pub fn new(size_max: usize, next_offset: i64) -> Backlog {
        assert!(size_max > 0);
        Backlog { buf: VecDeque::new(), size_max, first_offset: next_offset }
    }

    pub fn append(&mut self, data: &[u8]) {
        // Of `data`, at most the newest `size_max` bytes can stay; then the oldest held bytes
        // make room for them.
        let (skipped, tail) = data.split_at(data.len().saturating_sub(self.size_max));
        let overflow = self.buf.len().saturating_add(tail.len()).saturating_sub(self.size_max);
        self.buf.drain(..overflow);
        self.buf.extend(tail);
        self.advance(skipped.len());
        self.advance(overflow);
        debug_assert!(self.buf.len() <= self.size_max);
    }

    /// Moves `first_offset` past `n` dropped bytes.
    fn advance(&mut self, n: usize) {
        self.first_offset = self.first_offset.saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn first_offset(&self) -> i64 {
        self.first_offset
    }

    pub fn histlen(&self) -> usize {
        self.buf.len()
    }

    pub fn size_max(&self) -> usize {
        self.size_max
    }

    /// Resizes (CONFIG SET repl-backlog-size), keeping the newest bytes.
    pub fn resize(&mut self, size_max: usize) {
        assert!(size_max > 0);
        self.size_max = size_max;
        let overflow = self.buf.len().saturating_sub(size_max);
        self.buf.drain(..overflow);
        self.advance(overflow);
    }

    /// The bytes from offset `from` (inclusive) to the end, if all are still held.
    /// `from` may be one past the end (nothing to send).
    pub fn range_from(&self, from: i64) -> Option<Vec<u8>> {
        if from > self.end_offset() {
            return None;
        }
        // Negative (or not representable) when `from` is before the first byte held.
        let skip = usize::try_from(from.checked_sub(self.first_offset)?).ok()?;
        Some(self.buf.iter().skip(skip).copied().collect())
    }

    /// One past the offset of the last byte held (`first_offset + histlen`).
    pub fn end_offset(&self) -> i64 {
        self.first_offset.saturating_add(i64::try_from(self.buf.len()).unwrap_or(i64::MAX))
    }
}

// Test code (proptest bodies): an overflow fails a test, it cannot abort a server.
#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn offsets_near_the_end_of_i64_saturate() {
        // The first offset comes from a peer or a file (`+FULLRESYNC`, the RDB's repl-offset).
        let mut b = Backlog::new(4, i64::MAX - 2);
        b.append(b"abcdef");
        assert_eq!(b.first_offset(), i64::MAX, "advanced past 2 dropped bytes, then saturated");
        assert_eq!(b.end_offset(), i64::MAX);
        assert_eq!(b.range_from(i64::MAX).as_deref(), Some(&b"cdef"[..]));
        assert!(b.range_from(i64::MIN).is_none());
        b.resize(1);
        assert_eq!(b.first_offset(), i64::MAX);
        let b = Backlog::new(4, i64::MIN);
        assert!(b.range_from(i64::MAX).is_none());
        assert_eq!(b.range_from(i64::MIN).as_deref(), Some(&b""[..]));
    }

    #[test]
    fn keeps_the_newest_bytes_within_its_size() {
        let mut b = Backlog::new(8, 1);
        b.append(b"abcde");
        assert_eq!(b.range_from(1).unwrap(), b"abcde");
        b.append(b"fghij");
        assert_eq!(b.histlen(), 8);
        assert_eq!(b.first_offset(), 3);
        assert_eq!(b.range_from(3).unwrap(), b"cdefghij");
        assert_eq!(b.range_from(11).unwrap(), b"");
        assert!(b.range_from(2).is_none(), "trimmed bytes cannot be served");
        assert!(b.range_from(12).is_none(), "the future cannot be served");
        b.append(b"0123456789xy");
        assert_eq!(b.range_from(b.first_offset()).unwrap(), b"456789xy");
        assert_eq!(b.first_offset(), 11 + 4);
        b.resize(3);
        assert_eq!(b.range_from(b.first_offset()).unwrap(), b"9xy");
    }

    proptest::proptest! {
        #[test]
        fn offsets_track_every_byte(chunks in proptest::collection::vec(proptest::collection::vec(0u8..255, 0..20), 0..30), size in 1usize..40) {
            let mut b = Backlog::new(size, 100);
            let mut all = Vec::new();
            for c in &chunks {
                b.append(c);
                all.extend_from_slice(c);
            }
            let end = 100 + all.len() as i64;
            proptest::prop_assert_eq!(b.first_offset() + b.histlen() as i64, end);
            let held = b.range_from(b.first_offset()).unwrap();
            proptest::prop_assert_eq!(&held[..], &all[all.len() - held.len()..]);
        }
    }
}
