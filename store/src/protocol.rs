//! Request parsing and RESP2/RESP3 reply encoding.
//!
//! Why it is shaped this way:
//! - Requests are parsed *resumably*: [`RequestParser`] keeps how far it got in the client's
//!   query buffer, so a 1M-argument `MSET` arriving in 16 KB reads is scanned once, not once per
//!   read. Argument positions are offsets into the buffer; when a request is complete the caller
//!   splits it off and freezes it, and every argument becomes a zero-copy `Bytes` slice.
//! - Every length a client controls is checked against a limit *before* anything is allocated for
//!   it: the multibulk count (`INT_MAX`, as Redis 7), each bulk length (`proto-max-bulk-len`),
//!   the count lines and an inline line still waiting for its newline (64 KB). Before AUTH the
//!   limits are Redis 7's much tighter ones (10 arguments, 16 KB each), so a client without the
//!   password cannot make the server buffer much. Memory grows only with bytes that actually
//!   arrived, and the connection bounds those with `client-query-buffer-limit`.
//! - Errors carry Redis's exact texts (`Protocol error: invalid bulk length`, ...); the connection
//!   replies with them and closes, as Redis does.
//! - No arithmetic on what a client sends can overflow (issue 12): the bulk length is added to
//!   a buffer offset with `checked_add` (a failure is `invalid bulk length`), and the other
//!   sums are offsets within the buffer plus a line ending, each with the reason it is bounded.
//! - Replies are written straight into the client's output buffer by small functions
//!   ([`Reply`]), like Redis's `addReply*`, instead of building a reply tree first.
//! - The reply protocol is per client ([`Proto`], chosen with `HELLO`). Only the few reply types
//!   that RESP3 added (null, map, set, double, push, verbatim string) take it: each writes its
//!   RESP3 form or the RESP2 form Redis falls back to, so a command handler states *what* it
//!   replies and RESP2 clients get exactly the bytes they always got.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Redis's `PROTO_INLINE_MAX_SIZE`: how much of an inline request or count line may arrive
/// without its line ending.
pub const INLINE_MAX_BYTES: usize = 64 * 1024;
/// Redis 7 rejects a multibulk count above `INT_MAX`.
pub const MULTIBULK_COUNT_MAX: i64 = i32::MAX as i64;
/// Before AUTH (Redis's `authRequired`): at most this many arguments...
pub const UNAUTH_MULTIBULK_COUNT_MAX: i64 = 10;
/// ... and this many bytes per argument.
pub const UNAUTH_BULK_LEN_MAX: i64 = 16 * 1024;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `proto-max-bulk-len` (not applied to a master's stream, as in Redis).
    pub bulk_len_max: i64,
    /// The client must still AUTH: Redis 7's pre-authentication limits apply.
    pub unauthenticated: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { bulk_len_max: 512 * 1024 * 1024, unauthenticated: false }
    }
}

/// A protocol violation: the text after `-ERR Protocol error: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

/// One complete request.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// A command with its arguments (at least one).
    Command(Vec<Bytes>),
    /// An empty inline line or an empty multibulk (`*0`): nothing to run. Replicas use a bare
    /// newline as a keepalive.
    Empty,
}

#[derive(Default)]
enum Stage {
    /// Nothing of the next request has been consumed.
    #[default]
    Start,
    /// Inside a multibulk: `remaining` bulks still to read.
    Multibulk { remaining: usize },
}

/// Resumable parser over a client's query buffer.
#[derive(Default)]
pub struct RequestParser {
    stage: Stage,
    /// Offset of the first unparsed byte of the current request.
    pos: usize,
    /// Argument ranges of the current multibulk request.
    args: Vec<(usize, usize)>,
    /// Whether every line of the current request ended in exactly `\r\n` (Redis only looks
    /// for the `\r` and skips the byte after it, so a request may parse without being canonical).
    canonical: bool,
    /// The bytes of the last multibulk request, when canonical: byte for byte what encoding its
    /// arguments would give, so the replication stream can carry it without re-encoding.
    frame: Option<Bytes>,
}

impl RequestParser {
    pub fn new() -> RequestParser {
        RequestParser::default()
    }

    /// Parses the next request from the front of `buf`. On success the request's bytes are
    /// removed from `buf`. `Ok(None)` means more bytes are needed.
    pub fn next(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<Option<Request>, ProtocolError> {
        loop {
            match self.stage {
                Stage::Start => {
                    self.frame = None;
                    debug_assert_eq!(self.pos, 0);
                    debug_assert!(self.args.is_empty());
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    if first != b'*' {
                        return parse_inline(buf);
                    }
                    let Some((count, next)) = read_line_int(buf, 1, "too big mbulk count string")? else {
                        return Ok(None);
                    };
                    if count > MULTIBULK_COUNT_MAX {
                        return Err(ProtocolError("invalid multibulk length".into()));
                    }
                    if count > UNAUTH_MULTIBULK_COUNT_MAX && limits.unauthenticated {
                        return Err(ProtocolError("unauthenticated multibulk length".into()));
                    }
                    if count <= 0 {
                        let _ = buf.split_to(next);
                        return Ok(Some(Request::Empty));
                    }
                    self.canonical = buf[..next].last() == Some(&b'\n');
                    self.pos = next;
                    // Reserve for the ranges, but never more than a small bound: a client that
                    // claims a million arguments must send them before we pay for them.
                    self.args.reserve((count as usize).min(1024));
                    self.stage = Stage::Multibulk { remaining: count as usize };
                }
                Stage::Multibulk { remaining: 0 } => {
                    let frozen = buf.split_to(self.pos).freeze();
                    let args = self.args.drain(..).map(|(s, e)| frozen.slice(s..e)).collect();
                    self.frame = self.canonical.then_some(frozen);
                    self.pos = 0;
                    self.stage = Stage::Start;
                    return Ok(Some(Request::Command(args)));
                }
                Stage::Multibulk { remaining } => {
                    let Some(&b) = buf.get(self.pos) else {
                        return Ok(None);
                    };
                    if b != b'$' {
                        return Err(protocol_expected_dollar(b));
                    }
                    // The `$` at `self.pos` was just read: one past it is at most `buf.len()`.
                    #[allow(clippy::arithmetic_side_effects)]
                    let count_start = self.pos + 1;
                    let Some((len, data_start)) = read_line_int(buf, count_start, "too big bulk count string")? else {
                        return Ok(None);
                    };
                    if len < 0 || len > limits.bulk_len_max {
                        return Err(ProtocolError("invalid bulk length".into()));
                    }
                    if len > UNAUTH_BULK_LEN_MAX && limits.unauthenticated {
                        return Err(ProtocolError("unauthenticated bulk length".into()));
                    }
                    // The length is at most `bulk_len_max`, which is i64::MAX on a master's stream:
                    // on a 32-bit target the end may not be representable, so refuse it instead.
                    // Redis skips the two bytes after the data without looking at them.
                    let Some((data_end, bulk_end)) = usize::try_from(len)
                        .ok()
                        .and_then(|len| data_start.checked_add(len))
                        .and_then(|data_end| Some((data_end, data_end.checked_add(2)?)))
                    else {
                        return Err(ProtocolError("invalid bulk length".into()));
                    };
                    if buf.len() < bulk_end {
                        return Ok(None);
                    }
                    self.canonical &= buf[..data_start].last() == Some(&b'\n') && &buf[data_end..bulk_end] == b"\r\n";
                    self.args.push((data_start, data_end));
                    self.pos = bulk_end;
                    // `remaining > 0`: the arm above takes 0.
                    #[allow(clippy::arithmetic_side_effects)]
                    {
                        self.stage = Stage::Multibulk { remaining: remaining - 1 };
                    }
                }
            }
        }
    }

    /// The exact bytes of the request `next` just returned, if it was a canonical multibulk
    /// (None for inline requests and for multibulks with stray line endings). Taken once.
    pub fn take_frame(&mut self) -> Option<Bytes> {
        self.frame.take()
    }

    /// Bytes still needed to complete the bulk being read, when known (for read sizing).
    pub fn in_progress(&self) -> bool {
        matches!(self.stage, Stage::Multibulk { .. })
    }
}

fn protocol_expected_dollar(got: u8) -> ProtocolError {
    ProtocolError(format!("expected '$', got '{}'", got as char))
}

/// Reads a `<int>\r\n` starting at `start`; returns the value and the offset after the CRLF.
fn read_line_int(buf: &[u8], start: usize, too_big: &'static str) -> Result<Option<(i64, usize)>, ProtocolError> {
    let window = &buf[start.min(buf.len())..];
    let Some(nl) = memchr(b'\r', window) else {
        if window.len() > INLINE_MAX_BYTES {
            return Err(ProtocolError(too_big.into()));
        }
        return Ok(None);
    };
    if nl > INLINE_MAX_BYTES {
        return Err(ProtocolError(too_big.into()));
    }
    if window[nl..].len() < 2 {
        return Ok(None);
    }
    // The error is built only on failure: this runs for every argument of every request.
    let value = parse_i64_strict(&window[..nl]).ok_or_else(|| {
        ProtocolError(if too_big.contains("mbulk") { "invalid multibulk length" } else { "invalid bulk length" }.into())
    })?;
    // `nl + 2 <= window.len() == buf.len() - start`: the sum is at most `buf.len()`.
    #[allow(clippy::arithmetic_side_effects)]
    let next = start + nl + 2;
    Ok(Some((value, next)))
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Parses an integer the way Redis's `string2ll` does: optional `-`, digits, no leading zeros,
/// no spaces, no `+`, fits in i64.
pub fn parse_i64_strict(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    if digits.is_empty() || (digits[0] == b'0' && digits.len() > 1) || (neg && digits == b"0") {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        let digit = i64::from(char::from(d).to_digit(10)?);
        v = if neg { v.checked_mul(10)?.checked_sub(digit)? } else { v.checked_mul(10)?.checked_add(digit)? };
    }
    Some(v)
}

/// Inline protocol: one line, arguments split like Redis's `sdssplitargs` (quotes, escapes).
/// As in Redis, only a line still without its newline past 64 KB is refused: a longer line whose
/// newline has arrived is taken (the query buffer limit bounds it).
fn parse_inline(buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > INLINE_MAX_BYTES {
            return Err(ProtocolError("too big inline request".into()));
        }
        return Ok(None);
    };
    let line = buf.split_to(nl);
    buf.advance(1); // the '\n'
    let mut line = &line[..];
    if let Some((b'\r', rest)) = line.split_last() {
        line = rest;
    }
    let args = split_args(line).ok_or_else(|| ProtocolError("unbalanced quotes in request".into()))?;
    if args.is_empty() {
        return Ok(Some(Request::Empty));
    }
    Ok(Some(Request::Command(args.into_iter().map(Bytes::from).collect())))
}

/// Splits a line into arguments like Redis's `sdssplitargs`: whitespace separates, `"..."`
/// supports `\n \r \t \b \a \\ \" \xHH`, `'...'` supports `\'`. A closing quote must be followed
/// by whitespace or the end. Returns `None` on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut rest = line;
    loop {
        let blanks = rest.iter().take_while(|c| c.is_ascii_whitespace()).count();
        rest = &rest[blanks..];
        if rest.is_empty() {
            return Some(out);
        }
        // A closing quote must be followed by whitespace or the end.
        let closes = |after: &[u8]| after.first().is_none_or(|c| c.is_ascii_whitespace());
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                match rest {
                    [] => return None,
                    [b'\\', b'x', h, l, after @ ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                        cur.push(hex_val(*h) << 4 | hex_val(*l));
                        rest = after;
                    }
                    [b'\\', e, after @ ..] => {
                        cur.push(match e {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => *other,
                        });
                        rest = after;
                    }
                    [b'"', after @ ..] => {
                        if !closes(after) {
                            return None;
                        }
                        rest = after;
                        break;
                    }
                    [c, after @ ..] => {
                        cur.push(*c);
                        rest = after;
                    }
                }
            } else if in_sq {
                match rest {
                    [] => return None,
                    [b'\\', b'\'', after @ ..] => {
                        cur.push(b'\'');
                        rest = after;
                    }
                    [b'\'', after @ ..] => {
                        if !closes(after) {
                            return None;
                        }
                        rest = after;
                        break;
                    }
                    [c, after @ ..] => {
                        cur.push(*c);
                        rest = after;
                    }
                }
            } else {
                match rest {
                    [] => break,
                    [b' ' | b'\n' | b'\r' | b'\t' | 0, after @ ..] => {
                        rest = after;
                        break;
                    }
                    [b'"', after @ ..] => {
                        in_dq = true;
                        rest = after;
                    }
                    [b'\'', after @ ..] => {
                        in_sq = true;
                        rest = after;
                    }
                    [c, after @ ..] => {
                        cur.push(*c);
                        rest = after;
                    }
                }
            }
        }
        out.push(cur);
    }
}

/// The value of an ASCII hex digit (the caller checked it is one).
fn hex_val(c: u8) -> u8 {
    char::from(c).to_digit(16).map_or(0, |d| d as u8)
}

/// The reply protocol a client speaks: RESP2 until it sends `HELLO 3`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Proto {
    #[default]
    Resp2,
    Resp3,
}

impl Proto {
    /// The version number `HELLO` and `CLIENT LIST` report.
    pub fn version(self) -> i64 {
        match self {
            Proto::Resp2 => 2,
            Proto::Resp3 => 3,
        }
    }

    pub fn is_resp3(self) -> bool {
        self == Proto::Resp3
    }
}

/// Reply encoding, written straight into an output buffer.
pub struct Reply;

impl Reply {
    pub fn ok(out: &mut BytesMut) {
        out.put_slice(b"+OK\r\n");
    }

    pub fn simple(out: &mut BytesMut, s: &str) {
        out.reserve(s.len().saturating_add(3));
        out.put_u8(b'+');
        out.put_slice(s.as_bytes());
        out.put_slice(b"\r\n");
    }

    /// An error reply. `msg` starts with its code (`ERR ...`, `WRONGTYPE ...`); newlines in it
    /// are replaced so that the reply stays one line, as Redis does.
    pub fn error(out: &mut BytesMut, msg: &str) {
        out.reserve(msg.len().saturating_add(3));
        out.put_u8(b'-');
        for &b in msg.as_bytes() {
            out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        out.put_slice(b"\r\n");
    }

    pub fn int(out: &mut BytesMut, v: i64) {
        out.put_u8(b':');
        put_decimal(out, v);
        out.put_slice(b"\r\n");
    }

    pub fn bulk(out: &mut BytesMut, data: &[u8]) {
        out.reserve(data.len().saturating_add(16));
        out.put_u8(b'$');
        put_decimal(out, data.len() as i64);
        out.put_slice(b"\r\n");
        out.put_slice(data);
        out.put_slice(b"\r\n");
    }

    pub fn bulk_i64(out: &mut BytesMut, v: i64) {
        let mut b = itoa_buf(v);
        Reply::bulk(out, b.as_slice_mut());
    }

    /// A missing value: RESP2's null bulk string, RESP3's null.
    pub fn null(out: &mut BytesMut, proto: Proto) {
        out.put_slice(if proto.is_resp3() { b"_\r\n" } else { b"$-1\r\n" });
    }

    /// A missing collection (aborted EXEC, LPOP with a count on a missing key): RESP2's null
    /// array, RESP3's null (RESP3 has one null for both).
    pub fn null_array(out: &mut BytesMut, proto: Proto) {
        out.put_slice(if proto.is_resp3() { b"_\r\n" } else { b"*-1\r\n" });
    }

    pub fn array_len(out: &mut BytesMut, n: usize) {
        Reply::aggregate_len(out, b'*', n);
    }

    /// A map of `n` pairs (then `n` keys and values, interleaved): RESP3 `%n`, a flat array of
    /// `2n` items in RESP2.
    pub fn map_len(out: &mut BytesMut, proto: Proto, n: usize) {
        if proto.is_resp3() {
            Reply::aggregate_len(out, b'%', n);
        } else {
            Reply::aggregate_len(out, b'*', n.saturating_mul(2));
        }
    }

    /// An unordered collection of `n` distinct items: RESP3 `~n`, an array in RESP2.
    pub fn set_len(out: &mut BytesMut, proto: Proto, n: usize) {
        Reply::aggregate_len(out, if proto.is_resp3() { b'~' } else { b'*' }, n);
    }

    /// Out-of-band data (pub/sub messages and confirmations): RESP3 `>n`, an array in RESP2.
    pub fn push_len(out: &mut BytesMut, proto: Proto, n: usize) {
        Reply::aggregate_len(out, if proto.is_resp3() { b'>' } else { b'*' }, n);
    }

    fn aggregate_len(out: &mut BytesMut, kind: u8, n: usize) {
        out.put_u8(kind);
        put_decimal(out, n as i64);
        out.put_slice(b"\r\n");
    }

    pub fn bulk_array<I, B>(out: &mut BytesMut, items: I)
    where
        I: ExactSizeIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        Reply::array_len(out, items.len());
        for it in items {
            Reply::bulk(out, it.as_ref());
        }
    }

    /// A double as Redis 7.0's `addReplyDouble` writes it: `%.17g` (`inf`/`-inf` spelled out),
    /// as a RESP3 double `,<text>` or a RESP2 bulk string.
    pub fn double(out: &mut BytesMut, proto: Proto, v: f64) {
        let text = format_double(v);
        if proto.is_resp3() {
            out.reserve(text.len().saturating_add(3));
            out.put_u8(b',');
            out.put_slice(text.as_bytes());
            out.put_slice(b"\r\n");
        } else {
            Reply::bulk(out, text.as_bytes());
        }
    }

    /// A boolean: RESP3 `#t`/`#f`, RESP2 `:1`/`:0` (Redis's `addReplyBool`).
    pub fn boolean(out: &mut BytesMut, proto: Proto, v: bool) {
        match (proto.is_resp3(), v) {
            (true, true) => out.put_slice(b"#t\r\n"),
            (true, false) => out.put_slice(b"#f\r\n"),
            (false, v) => Reply::int(out, i64::from(v)),
        }
    }

    /// A big number given as its digits: RESP3 `(`, a bulk string in RESP2.
    pub fn big_number(out: &mut BytesMut, proto: Proto, digits: &str) {
        if !proto.is_resp3() {
            return Reply::bulk(out, digits.as_bytes());
        }
        out.put_u8(b'(');
        out.put_slice(digits.as_bytes());
        out.put_slice(b"\r\n");
    }

    /// A verbatim string of a three-letter `format` (cut or padded as Redis's
    /// `addReplyVerbatim`), a bulk string in RESP2.
    pub fn verbatim_format(out: &mut BytesMut, proto: Proto, format: &str, text: &[u8]) {
        if !proto.is_resp3() {
            return Reply::bulk(out, text);
        }
        let mut f: Vec<u8> = format.bytes().take(3).collect();
        f.resize(3, b' ');
        out.put_u8(b'=');
        put_decimal(out, (text.len() as i64).saturating_add(4));
        out.put_slice(b"\r\n");
        out.put_slice(&f);
        out.put_u8(b':');
        out.put_slice(text);
        out.put_slice(b"\r\n");
    }

    /// Human-readable text (INFO, CLIENT LIST): a RESP3 verbatim string of format `txt`, a bulk
    /// string in RESP2.
    pub fn verbatim(out: &mut BytesMut, proto: Proto, text: &[u8]) {
        if !proto.is_resp3() {
            return Reply::bulk(out, text);
        }
        out.reserve(text.len().saturating_add(24));
        out.put_u8(b'=');
        put_decimal(out, (text.len() as i64).saturating_add(4));
        out.put_slice(b"\r\ntxt:");
        out.put_slice(text);
        out.put_slice(b"\r\n");
    }
}

/// Formats a double as Redis 7.0's replies do: C's `%.17g` (`inf`/`-inf` spelled out).
/// So 1 is "1", 0.1 is "0.10000000000000001" and 1e20 is "1e+20", exactly as redis-server.
pub fn format_double(v: f64) -> String {
    format_g(v, 17)
}

/// C's `%.<precision>g` (`inf`/`-inf`/`nan` spelled out); precision is 1 to 17.
pub fn format_g(v: f64, precision: i32) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v.is_nan() {
        return "nan".into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let p = precision.clamp(1, 17);
    // Scientific form with p significant digits gives the decimal exponent after rounding.
    let sci = format!("{:.*e}", p.saturating_sub(1) as usize, v);
    let (mantissa, exp) = sci.split_once('e').expect("scientific format");
    let exp: i32 = exp.parse().expect("exponent");
    if exp < -4 || exp >= p {
        let m = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    // `-4 <= exp < p <= 17` here: 0 to 20 decimals.
    #[allow(clippy::arithmetic_side_effects)]
    let decimals = (p - 1 - exp).max(0) as usize;
    trim_fraction(&format!("{:.*}", decimals, v)).to_string()
}

fn trim_fraction(s: &str) -> &str {
    if !s.contains('.') {
        return s;
    }
    s.trim_end_matches('0').trim_end_matches('.')
}

struct ItoaBuf {
    buf: [u8; 20],
    start: usize,
}

impl ItoaBuf {
    fn as_slice_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

// Digits are written backwards from the end of a 20-byte buffer: an i64's magnitude has at most
// 19 digits, plus the sign, so `i` stays in 0..=20; `u % 10 < 10` keeps each digit a byte.
#[allow(clippy::arithmetic_side_effects)]
fn itoa_buf(v: i64) -> ItoaBuf {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let neg = v < 0;
    let mut u = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    ItoaBuf { buf, start: i }
}

pub fn put_decimal(out: &mut BytesMut, v: i64) {
    let mut b = itoa_buf(v);
    out.put_slice(b.as_slice_mut());
}

/// Encodes a command as a RESP array of bulk strings (what clients and replication send).
pub fn encode_command(out: &mut BytesMut, args: &[&[u8]]) {
    Reply::array_len(out, args.len());
    for a in args {
        Reply::bulk(out, a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_bulk_lengths_never_overflow_an_offset() {
        // A master's stream has no bulk limit (i64::MAX): the end of such a bulk must be computed
        // checked (on a 32-bit target it is not representable; here it is simply incomplete).
        let limits = Limits { bulk_len_max: i64::MAX, unauthenticated: false };
        for len in ["9223372036854775807", "9223372036854775806", "4294967295", "4294967296"] {
            let mut buf = BytesMut::from(format!("*1\r\n${len}\r\nabc").as_bytes());
            let r = RequestParser::new().next(&mut buf, &limits);
            assert!(matches!(r, Ok(None) | Err(_)), "{len}: {r:?}");
        }
        let mut buf = BytesMut::from(&b"*1\r\n$9223372036854775808\r\n"[..]);
        assert_eq!(RequestParser::new().next(&mut buf, &limits), Err(ProtocolError("invalid bulk length".into())));
        assert_eq!(parse_i64_strict(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64_strict(b"9223372036854775808"), None);
        assert_eq!(parse_i64_strict(b"-9223372036854775809"), None);
    }

    #[test]
    fn inline_escapes_at_the_end_of_the_line() {
        assert_eq!(split_args(b"\"a\\x4"), None, "unterminated after a partial \\x escape");
        assert_eq!(split_args(b"\"\\x41\\x4g\""), Some(vec![b"Ax4g".to_vec()]));
        assert_eq!(split_args(b"\"\\"), None);
        assert_eq!(split_args(b"'a\\'"), None, "an escaped quote does not close");
        assert_eq!(split_args(b"'a\\'b' c"), Some(vec![b"a'b".to_vec(), b"c".to_vec()]));
        assert_eq!(split_args(b"\"a\"b"), None, "a closing quote must be followed by a space");
        assert_eq!(split_args(b" a\0b "), Some(vec![b"a".to_vec(), b"b".to_vec()]));
    }

    fn parse_all(input: &[u8]) -> Result<Vec<Request>, ProtocolError> {
        let mut buf = BytesMut::from(input);
        let mut p = RequestParser::new();
        let mut out = Vec::new();
        while let Some(r) = p.next(&mut buf, &Limits::default())? {
            out.push(r);
        }
        Ok(out)
    }

    fn cmd(args: &[&str]) -> Request {
        Request::Command(args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect())
    }

    #[test]
    fn multibulk_and_inline() {
        assert_eq!(parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap(), vec![cmd(&["GET", "k"])]);
        assert_eq!(parse_all(b"PING\r\n").unwrap(), vec![cmd(&["PING"])]);
        assert_eq!(parse_all(b"set \"a b\" 'c d'\n").unwrap(), vec![cmd(&["set", "a b", "c d"])]);
        assert_eq!(parse_all(b"\r\n").unwrap(), vec![Request::Empty]);
        assert_eq!(parse_all(b"*0\r\n").unwrap(), vec![Request::Empty]);
        assert_eq!(parse_all(b"set \"\\x41\\n\" v\n").unwrap(), vec![cmd(&["set", "A\n", "v"])]);
    }

    #[test]
    fn resumes_across_reads() {
        let full = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        for split in 0..full.len() {
            let mut p = RequestParser::new();
            let mut buf = BytesMut::from(&full[..split]);
            assert_eq!(p.next(&mut buf, &Limits::default()).unwrap(), None, "split {split}");
            buf.extend_from_slice(&full[split..]);
            assert_eq!(p.next(&mut buf, &Limits::default()).unwrap(), Some(cmd(&["SET", "key", "value"])));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn errors_have_redis_texts() {
        assert_eq!(parse_all(b"*x\r\n").unwrap_err().0, "invalid multibulk length");
        assert_eq!(parse_all(b"*2147483648\r\n").unwrap_err().0, "invalid multibulk length");
        // Redis 7 takes more than a million arguments (an RPUSH of 1.1M elements).
        assert_eq!(parse_all(b"*2000000\r\n").unwrap(), vec![]);
        assert_eq!(parse_all(b"*1\r\n$-5\r\n").unwrap_err().0, "invalid bulk length");
        assert_eq!(parse_all(b"*1\r\n$999999999999\r\n").unwrap_err().0, "invalid bulk length");
        assert!(parse_all(b"*1\r\n+foo\r\n").unwrap_err().0.starts_with("expected '$'"));
        assert_eq!(parse_all(b"set \"abc\n").unwrap_err().0, "unbalanced quotes in request");
        let long = vec![b'a'; INLINE_MAX_BYTES + 1];
        assert_eq!(parse_all(&long).unwrap_err().0, "too big inline request");
        // With its newline, a longer inline line is a request, as in Redis.
        let mut line = b"set k ".to_vec();
        line.extend(vec![b'a'; INLINE_MAX_BYTES + 100]);
        line.extend_from_slice(b"\r\n");
        let parsed = parse_all(&line).unwrap();
        assert!(matches!(&parsed[..], [Request::Command(a)] if a.len() == 3 && a[2].len() == INLINE_MAX_BYTES + 100));
    }

    #[test]
    fn limits_before_auth_are_redis_7s() {
        let unauth = Limits { unauthenticated: true, ..Limits::default() };
        let parse = |input: &[u8], limits: &Limits| RequestParser::new().next(&mut BytesMut::from(input), limits);
        assert_eq!(parse(b"*11\r\n", &unauth).unwrap_err().0, "unauthenticated multibulk length");
        assert_eq!(parse(b"*10\r\n", &unauth).unwrap(), None);
        assert_eq!(parse(b"*2\r\n$4\r\nAUTH\r\n$16385\r\n", &unauth).unwrap_err().0, "unauthenticated bulk length");
        assert_eq!(parse(b"*2\r\n$4\r\nAUTH\r\n$16384\r\n", &unauth).unwrap(), None);
        assert_eq!(parse(b"*2\r\n$4\r\nAUTH\r\n$16385\r\n", &Limits::default()).unwrap(), None);
    }

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64_strict(b"0"), Some(0));
        assert_eq!(parse_i64_strict(b"-12"), Some(-12));
        assert_eq!(parse_i64_strict(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64_strict(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"+1", b"01", b"-0", b" 1", b"1 ", b"9223372036854775808", b"1a", b"-"] {
            assert_eq!(parse_i64_strict(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn resp3_types_and_their_resp2_fallbacks() {
        let enc = |f: &dyn Fn(&mut BytesMut, Proto)| -> (Vec<u8>, Vec<u8>) {
            let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
            f(&mut a, Proto::Resp2);
            f(&mut b, Proto::Resp3);
            (a.to_vec(), b.to_vec())
        };
        assert_eq!(enc(&|o, p| Reply::null(o, p)), (b"$-1\r\n".to_vec(), b"_\r\n".to_vec()));
        assert_eq!(enc(&|o, p| Reply::null_array(o, p)), (b"*-1\r\n".to_vec(), b"_\r\n".to_vec()));
        assert_eq!(enc(&|o, p| Reply::map_len(o, p, 3)), (b"*6\r\n".to_vec(), b"%3\r\n".to_vec()));
        assert_eq!(enc(&|o, p| Reply::set_len(o, p, 2)), (b"*2\r\n".to_vec(), b"~2\r\n".to_vec()));
        assert_eq!(enc(&|o, p| Reply::push_len(o, p, 3)), (b"*3\r\n".to_vec(), b">3\r\n".to_vec()));
        assert_eq!(
            enc(&|o, p| Reply::double(o, p, 0.1)),
            (b"$19\r\n0.10000000000000001\r\n".to_vec(), b",0.10000000000000001\r\n".to_vec())
        );
        assert_eq!(
            enc(&|o, p| Reply::double(o, p, f64::NEG_INFINITY)),
            (b"$4\r\n-inf\r\n".to_vec(), b",-inf\r\n".to_vec())
        );
        assert_eq!(
            enc(&|o, p| Reply::verbatim(o, p, b"a:1")),
            (b"$3\r\na:1\r\n".to_vec(), b"=7\r\ntxt:a:1\r\n".to_vec())
        );
    }

    #[test]
    fn double_formatting() {
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(1e-5), "1.0000000000000001e-05");
        assert_eq!(format_double(123456.0), "123456");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(-0.25), "-0.25");
    }

    /// A million generated inputs: valid requests mutated (bit flips, truncations, spliced
    /// digits and lengths, random bytes), fed in random read sizes. The parser must never panic,
    /// must always make progress or ask for more, and must never hold more arguments than bytes.
    #[test]
    fn million_mutated_inputs() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
        let seeds: [&[u8]; 6] = [
            b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
            b"*1\r\n$4\r\nPING\r\n",
            b"SET \"a b\" 'c'\r\n",
            b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n",
            b"*-1\r\n*0\r\n\r\n",
            b"*2\r\n$999999999999\r\n",
        ];
        let splices: [&[u8]; 8] = [b"*", b"$", b"\r\n", b"-1", b"2147483648", b"9999999999999999999", b"\"", b"\\x4"];
        let limits = Limits { bulk_len_max: 1 << 20, unauthenticated: false };
        for _ in 0..1_000_000 {
            let mut input = seeds[rng.gen_range(0..seeds.len())].to_vec();
            for _ in 0..rng.gen_range(0..4) {
                match rng.gen_range(0..5) {
                    0 if !input.is_empty() => {
                        let i = rng.gen_range(0..input.len());
                        input[i] ^= 1 << rng.gen_range(0..8);
                    }
                    1 if !input.is_empty() => input.truncate(rng.gen_range(0..input.len())),
                    2 => {
                        let i = rng.gen_range(0..=input.len());
                        let sp = splices[rng.gen_range(0..splices.len())];
                        input.splice(i..i, sp.iter().copied());
                    }
                    3 => input.push(rng.gen()),
                    _ => {
                        let extra = seeds[rng.gen_range(0..seeds.len())];
                        input.extend_from_slice(extra);
                    }
                }
            }
            let mut parser = RequestParser::new();
            let mut buf = BytesMut::new();
            let mut fed = 0;
            'feed: while fed < input.len() {
                let n = rng.gen_range(1..=input.len() - fed);
                buf.extend_from_slice(&input[fed..fed + n]);
                fed += n;
                loop {
                    let before = buf.len();
                    match parser.next(&mut buf, &limits) {
                        Ok(Some(Request::Command(args))) => {
                            assert!(!args.is_empty());
                            assert!(buf.len() < before, "a request must consume bytes");
                        }
                        Ok(Some(Request::Empty)) => assert!(buf.len() < before),
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                }
                assert!(parser.args.len() <= input.len(), "argument slots bounded by input");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]
        // Any byte soup: no panic, and every request consumed makes progress.
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse_all(&input);
        }

        // Valid encodings always round-trip, whatever the read boundaries.
        #[test]
        fn round_trips(args in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 1..6), split in 0usize..200) {
            let mut enc = BytesMut::new();
            let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
            encode_command(&mut enc, &refs);
            let split = split.min(enc.len());
            let mut p = RequestParser::new();
            let mut buf = BytesMut::from(&enc[..split]);
            let first = p.next(&mut buf, &Limits::default()).unwrap();
            let got = match first {
                Some(r) => r,
                None => {
                    buf.extend_from_slice(&enc[split..]);
                    p.next(&mut buf, &Limits::default()).unwrap().unwrap()
                }
            };
            let want = Request::Command(args.iter().map(|a| Bytes::copy_from_slice(a)).collect());
            proptest::prop_assert_eq!(got, want);
            // A canonical request's frame is exactly its encoding (the stream relies on it).
            let frame = p.take_frame();
            proptest::prop_assert_eq!(frame.as_deref(), Some(&enc[..]));
        }

        // Whatever the input, a frame handed out is the canonical encoding of the arguments
        // parsed with it: pairs the parser's canonical check with encode_command.
        #[test]
        fn frames_are_canonical(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256), mutate in proptest::prelude::any::<bool>()) {
            let mut bytes = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n".to_vec();
            if mutate {
                bytes.extend_from_slice(&input);
            } else {
                bytes = input.clone();
            }
            let mut p = RequestParser::new();
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(r)) = p.next(&mut buf, &Limits::default()) {
                if let (Request::Command(args), Some(frame)) = (&r, p.take_frame()) {
                    let mut enc = BytesMut::new();
                    let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
                    encode_command(&mut enc, &refs);
                    proptest::prop_assert_eq!(&frame[..], &enc[..]);
                }
            }
        }
    }

    #[test]
    fn stray_line_endings_give_no_frame() {
        for input in [&b"*1\r\n$4\r\nPINGxy"[..], b"*1\rx$4\r\nPING\r\n", b"*1\r\n$4\rxPING\r\n", b"PING\r\n"] {
            let mut p = RequestParser::new();
            let mut buf = BytesMut::from(input);
            let r = p.next(&mut buf, &Limits::default()).unwrap().unwrap();
            assert_eq!(r, Request::Command(vec![Bytes::from_static(b"PING")]), "{input:?}");
            assert!(p.take_frame().is_none(), "{input:?}");
        }
    }
}
