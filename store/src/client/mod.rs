//! The outgoing client: how this code base talks *to* a server (RESP2 and RESP3).
//!
//! Why it lives in `store`: replication (a replica connecting to its master), Sentinel (which
//! watches masters with INFO and talks over pub/sub), the simulation's workloads and the tests all
//! need to connect to a server. They share this one client so that the handshake code, the reply
//! parser and its limits are written and tested once, and run on the same seams (madsim's network
//! in simulation). Its parts:
//! - [`Resp`] and [`parse_reply`]: every RESP2 and RESP3 reply type, parsed with limits (bulk
//!   length, aggregate length, nesting depth) because the peer may be faulty or hostile, and no
//!   arithmetic on what it sends can overflow; [`Resp::encode`] writes a reply back to the wire
//!   (the property tests parse what it renders).
//! - [`Client`]: connect, call, pipeline, AUTH, HELLO, CLIENT SETNAME.
//! - [`Subscriber`] (`subscriber.rs`): a connection in subscribe mode, which it owns, so nothing
//!   else can send a command on it and read a message as the reply.
//! - [`info::Info`] and [`role::RoleReply`]: INFO and ROLE as typed values, so no one parses
//!   `role:` by hand again.
//!
//! Every read waits at most `io_timeout`: under madsim a partition stalls a connection forever
//! instead of resetting it, so a wait without a timeout would hang its caller.

use std::io;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::protocol::{encode_command, parse_i64_strict};

pub mod info;
pub mod role;
pub mod subscriber;

pub use subscriber::{Message, Subscriber};

/// Largest bulk reply accepted (Redis's proto-max-bulk-len default).
pub const REPLY_BULK_MAX: i64 = 512 * 1024 * 1024;
/// Largest array reply accepted.
pub const REPLY_ARRAY_MAX: i64 = 16 * 1024 * 1024;
/// Deepest nesting accepted.
pub const REPLY_DEPTH_MAX: usize = 8;

/// A reply from a server. RESP2's five types, and RESP3's (after `HELLO 3`); a double keeps its
/// text, so replies compare and hash exactly.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Bytes>),
    Array(Option<Vec<Resp>>),
    /// RESP3 `_`.
    Null,
    /// RESP3 `#t` / `#f`.
    Bool(bool),
    /// RESP3 `,` (the text as sent: `1.5`, `inf`, `nan`).
    Double(String),
    /// RESP3 `(`.
    BigNumber(String),
    /// RESP3 `!`.
    BlobError(Bytes),
    /// RESP3 `=`: a three-letter format (`txt`, `mkd`) and the text.
    Verbatim(String, Bytes),
    /// RESP3 `%`: pairs in the order sent.
    Map(Vec<(Resp, Resp)>),
    /// RESP3 `~`.
    Set(Vec<Resp>),
    /// RESP3 `>`: out-of-band data (pub/sub messages, invalidations).
    Push(Vec<Resp>),
}

impl Resp {
    pub fn is_error(&self) -> bool {
        matches!(self, Resp::Error(_) | Resp::BlobError(_))
    }

    /// The items of an array, set or push (RESP3 sends several RESP2 arrays as sets or pushes).
    pub fn items(&self) -> Option<&[Resp]> {
        match self {
            Resp::Array(Some(items)) | Resp::Set(items) | Resp::Push(items) => Some(items),
            _ => None,
        }
    }

    /// The value of an integer reply.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Resp::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The text of a bulk, simple or verbatim string (lossy UTF-8).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Resp::Verbatim(_, b) => Some(String::from_utf8_lossy(b).into_owned()),
            other => other.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()),
        }
    }

    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Resp::Bulk(Some(b)) => Some(b),
            Resp::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// A compact one-line rendering (traces, timelines, messages).
    pub fn render(&self) -> String {
        match self {
            Resp::Simple(s) => format!("+{s}"),
            Resp::Error(e) => format!("-{e}"),
            Resp::Int(i) => format!(":{i}"),
            Resp::Bulk(None) => "(nil)".into(),
            Resp::Bulk(Some(b)) => format!("{:?}", String::from_utf8_lossy(b)),
            Resp::Array(None) => "(nil array)".into(),
            Resp::Array(Some(items)) => format!("[{}]", render_all(items)),
            Resp::Null => "(null)".into(),
            Resp::Bool(b) => format!("#{}", if *b { 't' } else { 'f' }),
            Resp::Double(d) => format!(",{d}"),
            Resp::BigNumber(n) => format!("({n}"),
            Resp::BlobError(e) => format!("!{:?}", String::from_utf8_lossy(e)),
            Resp::Verbatim(f, t) => format!("={f}:{:?}", String::from_utf8_lossy(t)),
            Resp::Map(pairs) => {
                let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{}: {}", k.render(), v.render())).collect();
                format!("%{{{}}}", inner.join(","))
            }
            Resp::Set(items) => format!("~[{}]", render_all(items)),
            Resp::Push(items) => format!(">[{}]", render_all(items)),
        }
    }

    /// Writes the reply in its wire form (what a server would send).
    pub fn encode(&self, out: &mut BytesMut) {
        use bytes::BufMut;
        let line = |out: &mut BytesMut, kind: u8, text: &[u8]| {
            out.put_u8(kind);
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        };
        let blob = |out: &mut BytesMut, kind: u8, data: &[u8]| {
            line(out, kind, data.len().to_string().as_bytes());
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        };
        let aggregate = |out: &mut BytesMut, kind: u8, items: &[Resp]| {
            line(out, kind, items.len().to_string().as_bytes());
            for i in items {
                i.encode(out);
            }
        };
        match self {
            Resp::Simple(s) => line(out, b'+', s.as_bytes()),
            Resp::Error(e) => line(out, b'-', e.as_bytes()),
            Resp::Int(i) => line(out, b':', i.to_string().as_bytes()),
            Resp::Bulk(None) => line(out, b'$', b"-1"),
            Resp::Bulk(Some(b)) => blob(out, b'$', b),
            Resp::Array(None) => line(out, b'*', b"-1"),
            Resp::Array(Some(items)) => aggregate(out, b'*', items),
            Resp::Null => line(out, b'_', b""),
            Resp::Bool(b) => line(out, b'#', if *b { b"t" } else { b"f" }),
            Resp::Double(d) => line(out, b',', d.as_bytes()),
            Resp::BigNumber(n) => line(out, b'(', n.as_bytes()),
            Resp::BlobError(e) => blob(out, b'!', e),
            Resp::Verbatim(f, t) => {
                let mut data = format!("{f}:").into_bytes();
                data.extend_from_slice(t);
                blob(out, b'=', &data)
            }
            Resp::Map(pairs) => {
                line(out, b'%', pairs.len().to_string().as_bytes());
                for (k, v) in pairs {
                    k.encode(out);
                    v.encode(out);
                }
            }
            Resp::Set(items) => aggregate(out, b'~', items),
            Resp::Push(items) => aggregate(out, b'>', items),
        }
    }
}

fn render_all(items: &[Resp]) -> String {
    items.iter().map(|i| i.render()).collect::<Vec<_>>().join(",")
}

/// Parses one reply from the front of `buf`; `Ok(None)` if incomplete. Consumes it on success.
pub fn parse_reply(buf: &mut BytesMut) -> io::Result<Option<Resp>> {
    let mut pos = 0;
    match parse_at(buf, &mut pos, 0)? {
        Some(r) => {
            buf.advance(pos);
            Ok(Some(r))
        }
        None => Ok(None),
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("Protocol error: {msg}"))
}

fn line_at(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let pos = pos.min(buf.len());
    let rest = &buf[pos..];
    let i = rest.windows(2).position(|w| w == b"\r\n")?;
    // `i + 2 <= rest.len() == buf.len() - pos`: the sum is at most `buf.len()`.
    #[allow(clippy::arithmetic_side_effects)]
    let next = pos + i + 2;
    Some((&rest[..i], next))
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> io::Result<Option<Resp>> {
    if depth > REPLY_DEPTH_MAX {
        return Err(bad("reply nested too deeply"));
    }
    let Some(&kind) = buf.get(*pos) else {
        return Ok(None);
    };
    // The type byte at `*pos` was just read: one past it is at most `buf.len()`.
    #[allow(clippy::arithmetic_side_effects)]
    let line_start = *pos + 1;
    let Some((line, next)) = line_at(buf, line_start) else {
        if buf[*pos..].len() > 64 * 1024 {
            return Err(bad("reply line too long"));
        }
        return Ok(None);
    };
    let text = || String::from_utf8_lossy(line).into_owned();
    // `depth <= REPLY_DEPTH_MAX`, checked on entry.
    #[allow(clippy::arithmetic_side_effects)]
    let inner = depth + 1;
    let (reply, end) = match kind {
        b'+' => (Resp::Simple(text()), next),
        b'-' => (Resp::Error(text()), next),
        b':' => (Resp::Int(parse_i64_strict(line).ok_or_else(|| bad("invalid integer"))?), next),
        b',' => (Resp::Double(text()), next),
        b'(' => (Resp::BigNumber(text()), next),
        b'_' if line.is_empty() => (Resp::Null, next),
        b'#' if line == b"t" || line == b"f" => (Resp::Bool(line == b"t"), next),
        b'$' | b'!' | b'=' => {
            let len = parse_i64_strict(line).ok_or_else(|| bad("invalid bulk length"))?;
            if len == -1 && kind == b'$' {
                (Resp::Bulk(None), next)
            } else {
                let Some((data, end)) = blob_at(buf, next, len)? else { return Ok(None) };
                (blob_reply(kind, data)?, end)
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let len = parse_i64_strict(line).ok_or_else(|| bad("invalid multibulk length"))?;
            if len == -1 && kind == b'*' {
                (Resp::Array(None), next)
            } else {
                if !(0..=REPLY_ARRAY_MAX).contains(&len) {
                    return Err(bad("invalid multibulk length"));
                }
                // A map's (or attribute's) pairs are two replies each; REPLY_ARRAY_MAX * 2 fits.
                let count = if matches!(kind, b'%' | b'|') { len.saturating_mul(2) } else { len } as usize;
                let mut p = next;
                let Some(items) = items_at(buf, &mut p, count, inner)? else { return Ok(None) };
                if kind == b'|' {
                    // Attributes describe the reply that follows: skipped, the reply returned.
                    let Some(r) = parse_at(buf, &mut p, inner)? else { return Ok(None) };
                    *pos = p;
                    return Ok(Some(r));
                }
                (aggregate_reply(kind, items), p)
            }
        }
        other => return Err(bad(&format!("unexpected reply type byte 0x{other:02x}"))),
    };
    *pos = end;
    Ok(Some(reply))
}

/// The `len` bytes of a blob starting at `start` and the position after their CRLF; None if
/// they have not all arrived.
fn blob_at(buf: &[u8], start: usize, len: i64) -> io::Result<Option<(Bytes, usize)>> {
    if !(0..=REPLY_BULK_MAX).contains(&len) {
        return Err(bad("invalid bulk length"));
    }
    let Some((end, blob_end)) = start.checked_add(len as usize).and_then(|end| Some((end, end.checked_add(2)?))) else {
        return Err(bad("invalid bulk length"));
    };
    if buf.len() < blob_end {
        return Ok(None);
    }
    if &buf[end..blob_end] != b"\r\n" {
        return Err(bad("bulk not terminated by CRLF"));
    }
    Ok(Some((Bytes::copy_from_slice(&buf[start..end]), blob_end)))
}

fn blob_reply(kind: u8, data: Bytes) -> io::Result<Resp> {
    Ok(match kind {
        b'$' => Resp::Bulk(Some(data)),
        b'!' => Resp::BlobError(data),
        _ => {
            // `=`: "fmt:" then the text.
            if data.len() < 4 || data[3] != b':' {
                return Err(bad("verbatim string without its format"));
            }
            Resp::Verbatim(String::from_utf8_lossy(&data[..3]).into_owned(), data.slice(4..))
        }
    })
}

fn items_at(buf: &[u8], p: &mut usize, count: usize, depth: usize) -> io::Result<Option<Vec<Resp>>> {
    // Capacity bounded by what can possibly be in the buffer, not by the claimed length.
    let mut items = Vec::with_capacity(count.min((buf[(*p).min(buf.len())..].len() / 3).saturating_add(1)));
    for _ in 0..count {
        match parse_at(buf, p, depth)? {
            Some(r) => items.push(r),
            None => return Ok(None),
        }
    }
    Ok(Some(items))
}

fn aggregate_reply(kind: u8, items: Vec<Resp>) -> Resp {
    match kind {
        b'~' => Resp::Set(items),
        b'>' => Resp::Push(items),
        b'%' => {
            let mut pairs = Vec::with_capacity(items.len() / 2);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            Resp::Map(pairs)
        }
        _ => Resp::Array(Some(items)),
    }
}

/// `timeout` from now. Past what the clock can represent (a timeout of centuries, from a
/// configuration value) the deadline is simply far away, instead of the panic of `Instant + Duration`.
pub fn deadline_after(timeout: Duration) -> tokio::time::Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
    let now = tokio::time::Instant::now();
    now.checked_add(timeout).or_else(|| now.checked_add(FAR)).unwrap_or(now)
}

/// A connection to a server.
pub struct Client {
    stream: TcpStream,
    buf: BytesMut,
    pub io_timeout: Duration,
}

impl Client {
    /// Connects, giving up after `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> io::Result<Client> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        Ok(Client { stream, buf: BytesMut::with_capacity(4096), io_timeout: timeout })
    }

    /// The local IP of the connection (what a sentinel announces in its hellos).
    pub fn local_ip(&self) -> Option<String> {
        self.stream.local_addr().ok().map(|a| a.ip().to_string())
    }

    /// Sends one command (written and flushed: under madsim nothing leaves before `flush`).
    pub async fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        let mut out = BytesMut::new();
        encode_command(&mut out, args);
        self.send_raw(&out).await
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let io_timeout = self.io_timeout;
        tokio::time::timeout(io_timeout, async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?
    }

    /// Reads one reply, waiting at most `io_timeout` overall.
    pub async fn read_reply(&mut self) -> io::Result<Resp> {
        let deadline = deadline_after(self.io_timeout);
        loop {
            if let Some(r) = parse_reply(&mut self.buf)? {
                return Ok(r);
            }
            if self.buf.spare_capacity_mut().len() < 1024 {
                self.buf.reserve(16 * 1024);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let n = tokio::time::timeout(left, self.stream.read_buf(&mut self.buf))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "read timed out"))??;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by server"));
            }
        }
    }

    /// Sends a command and reads its reply.
    pub async fn call(&mut self, args: &[&[u8]]) -> io::Result<Resp> {
        self.send(args).await?;
        self.read_reply().await
    }

    /// Reads one line (up to CRLF or LF), for the replication handshake's status lines and
    /// payload headers. Empty lines are keepalives the caller may skip.
    pub async fn read_line(&mut self, max_len: usize) -> io::Result<String> {
        let deadline = deadline_after(self.io_timeout);
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(i);
                self.buf.advance(1); // the '\n'
                let text = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
                return Ok(text);
            }
            if self.buf.len() > max_len {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            self.fill(deadline).await?;
        }
    }

    /// Reads exactly `n` bytes (an RDB payload), in bounded steps, each within the timeout.
    pub async fn read_exact_bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n.min(64 << 20));
        loop {
            // `out.len() < n` here (it returned when equal).
            let take = n.saturating_sub(out.len()).min(self.buf.len());
            out.extend_from_slice(&self.buf.split_to(take));
            if out.len() == n {
                return Ok(out);
            }
            // Each chunk gets its own deadline: a large transfer may take long in total.
            let deadline = deadline_after(self.io_timeout);
            self.fill(deadline).await?;
        }
    }

    async fn fill(&mut self, deadline: tokio::time::Instant) -> io::Result<()> {
        if self.buf.spare_capacity_mut().len() < 1024 {
            self.buf.reserve(64 * 1024);
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let n = tokio::time::timeout(left, self.stream.read_buf(&mut self.buf))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "read timed out"))??;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by peer"));
        }
        Ok(())
    }

    /// Up to `max` bytes: what is buffered, or the next read if nothing is (within the timeout).
    /// Never more than `max`, so bytes past a payload stay buffered for whoever reads next.
    pub async fn read_up_to(&mut self, max: usize) -> io::Result<BytesMut> {
        if self.buf.is_empty() {
            let deadline = deadline_after(self.io_timeout);
            self.fill(deadline).await?;
        }
        let take = max.min(self.buf.len());
        Ok(self.buf.split_to(take))
    }

    /// Whatever is buffered, or the next read if nothing is (each read within the timeout).
    pub async fn read_available(&mut self) -> io::Result<BytesMut> {
        if self.buf.is_empty() {
            let deadline = deadline_after(self.io_timeout);
            self.fill(deadline).await?;
        }
        Ok(self.buf.split())
    }

    /// The socket and what was read ahead, for a caller that takes over the stream.
    pub fn into_parts(self) -> (TcpStream, BytesMut) {
        (self.stream, self.buf)
    }

    /// Sends several commands in one write and reads all their replies, in order.
    pub async fn pipeline(&mut self, commands: &[Vec<Vec<u8>>]) -> io::Result<Vec<Resp>> {
        let mut out = BytesMut::new();
        for c in commands {
            let refs: Vec<&[u8]> = c.iter().map(|a| a.as_slice()).collect();
            encode_command(&mut out, &refs);
        }
        self.send_raw(&out).await?;
        let mut replies = Vec::with_capacity(commands.len());
        for _ in commands {
            replies.push(self.read_reply().await?);
        }
        Ok(replies)
    }

    /// `call` with string arguments.
    pub async fn cmd(&mut self, args: &[&str]) -> io::Result<Resp> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.call(&a).await
    }

    /// `call`, with an error reply turned into an `io::Error` (for steps that must succeed).
    pub async fn call_ok(&mut self, args: &[&str]) -> io::Result<Resp> {
        match self.cmd(args).await? {
            r if r.is_error() => Err(io::Error::other(format!("{} answered {}", args.join(" "), r.render()))),
            r => Ok(r),
        }
    }

    /// AUTH [user] password (Redis 6's form when a user is given).
    pub async fn auth(&mut self, user: Option<&str>, password: &str) -> io::Result<()> {
        match user {
            Some(u) => self.call_ok(&["AUTH", u, password]).await?,
            None => self.call_ok(&["AUTH", password]).await?,
        };
        Ok(())
    }

    /// CLIENT SETNAME, as a sentinel names its links.
    pub async fn set_name(&mut self, name: &str) -> io::Result<()> {
        self.call_ok(&["CLIENT", "SETNAME", name]).await.map(|_| ())
    }

    /// HELLO with a protocol version (2 or 3) and optional AUTH; the server's map of facts.
    pub async fn hello(&mut self, proto: u8, auth: Option<(&str, &str)>) -> io::Result<Resp> {
        let version = proto.to_string();
        let mut args = vec!["HELLO", version.as_str()];
        if let Some((user, pass)) = auth {
            args.extend(["AUTH", user, pass]);
        }
        self.call_ok(&args).await
    }

    /// INFO [section], parsed.
    pub async fn info(&mut self, section: &str) -> io::Result<info::Info> {
        let reply = self.call_ok(&["INFO", section]).await?;
        let text = reply.as_text().ok_or_else(|| io::Error::other(format!("INFO answered {}", reply.render())))?;
        Ok(info::Info::parse(&text))
    }

    /// ROLE, parsed.
    pub async fn role(&mut self) -> io::Result<role::RoleReply> {
        let reply = self.call_ok(&["ROLE"]).await?;
        role::RoleReply::parse(&reply).map_err(io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_of_any_timeout() {
        // `Instant + Duration` panics past what the clock represents; a deadline must not.
        let far = deadline_after(Duration::MAX);
        assert!(far > tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600));
        assert!(deadline_after(Duration::ZERO) <= tokio::time::Instant::now());
    }

    #[test]
    fn largest_bulk_length_is_incomplete_not_an_overflow() {
        let max = format!("${REPLY_BULK_MAX}\r\nabc");
        assert!(parse(max.as_bytes()).unwrap().is_none());
        let over = format!("${}\r\n", REPLY_BULK_MAX + 1);
        assert!(parse(over.as_bytes()).is_err());
        assert!(parse(b"$9223372036854775807\r\n").is_err());
    }

    fn parse(s: &[u8]) -> io::Result<Option<Resp>> {
        parse_reply(&mut BytesMut::from(s))
    }

    #[test]
    fn parses_all_reply_kinds() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Some(Resp::Simple("OK".into())));
        assert_eq!(parse(b"-ERR x\r\n").unwrap(), Some(Resp::Error("ERR x".into())));
        assert_eq!(parse(b":-3\r\n").unwrap(), Some(Resp::Int(-3)));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Some(Resp::Bulk(None)));
        assert_eq!(parse(b"$3\r\nabc\r\n").unwrap(), Some(Resp::Bulk(Some(Bytes::from_static(b"abc")))));
        assert_eq!(
            parse(b"*2\r\n:1\r\n*0\r\n").unwrap(),
            Some(Resp::Array(Some(vec![Resp::Int(1), Resp::Array(Some(vec![]))])))
        );
        assert_eq!(parse(b"*2\r\n:1\r\n").unwrap(), None);
        assert_eq!(parse(b"$3\r\nab").unwrap(), None);
    }

    #[test]
    fn parses_resp3_kinds() {
        assert_eq!(parse(b"_\r\n").unwrap(), Some(Resp::Null));
        assert_eq!(parse(b"#t\r\n").unwrap(), Some(Resp::Bool(true)));
        assert_eq!(parse(b",1.5\r\n").unwrap(), Some(Resp::Double("1.5".into())));
        assert_eq!(parse(b"(123\r\n").unwrap(), Some(Resp::BigNumber("123".into())));
        assert_eq!(parse(b"!3\r\nERR\r\n").unwrap(), Some(Resp::BlobError(Bytes::from_static(b"ERR"))));
        assert_eq!(
            parse(b"=7\r\ntxt:abc\r\n").unwrap(),
            Some(Resp::Verbatim("txt".into(), Bytes::from_static(b"abc")))
        );
        assert_eq!(
            parse(b"%1\r\n+k\r\n:1\r\n").unwrap(),
            Some(Resp::Map(vec![(Resp::Simple("k".into()), Resp::Int(1))]))
        );
        assert_eq!(parse(b"~1\r\n:1\r\n").unwrap(), Some(Resp::Set(vec![Resp::Int(1)])));
        assert_eq!(parse(b">1\r\n:1\r\n").unwrap(), Some(Resp::Push(vec![Resp::Int(1)])));
        assert_eq!(parse(b"|1\r\n+a\r\n:1\r\n:7\r\n").unwrap(), Some(Resp::Int(7)), "attributes skipped");
        assert_eq!(parse(b"%1\r\n+k\r\n").unwrap(), None);
        assert!(parse(b"=2\r\nab\r\n").is_err());
    }

    fn arb_resp() -> impl proptest::strategy::Strategy<Value = Resp> {
        use proptest::prelude::*;
        let text = "[a-zA-Z0-9 .:-]{0,12}";
        let leaf = prop_oneof![
            text.prop_map(Resp::Simple),
            text.prop_map(Resp::Error),
            any::<i64>().prop_map(Resp::Int),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16))
                .prop_map(|b| Resp::Bulk(b.map(Bytes::from))),
            Just(Resp::Array(None)),
            Just(Resp::Null),
            any::<bool>().prop_map(Resp::Bool),
            "-?[0-9]{1,5}(\\.[0-9]{1,3})?".prop_map(Resp::Double),
            "-?[0-9]{1,30}".prop_map(Resp::BigNumber),
            proptest::collection::vec(any::<u8>(), 0..16).prop_map(|b| Resp::BlobError(Bytes::from(b))),
            ("[a-z]{3}", proptest::collection::vec(any::<u8>(), 0..16))
                .prop_map(|(f, t)| Resp::Verbatim(f, Bytes::from(t))),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| Resp::Array(Some(v))),
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Resp::Set),
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Resp::Push),
                proptest::collection::vec((inner.clone(), inner), 0..3).prop_map(Resp::Map),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn encode_then_parse_is_identity(r in arb_resp(), split in 0usize..64) {
            let mut wire = BytesMut::new();
            r.encode(&mut wire);
            // Incomplete until the last byte has arrived, then exactly the reply.
            let cut = split.min(wire.len().saturating_sub(1));
            proptest::prop_assert_eq!(parse(&wire[..cut]).unwrap(), None);
            let mut buf = wire.clone();
            proptest::prop_assert_eq!(parse_reply(&mut buf).unwrap(), Some(r));
            proptest::prop_assert!(buf.is_empty());
        }
    }

    #[test]
    fn rejects_hostile_replies() {
        assert!(parse(b"$99999999999\r\n").is_err());
        assert!(parse(b"*99999999999\r\n").is_err());
        assert!(parse(b"?\r\n").is_err());
        let deep = "*1\r\n".repeat(20);
        assert!(parse(deep.as_bytes()).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = parse(&input);
        }
    }
}
