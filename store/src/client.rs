//! A small RESP2 client: how this code base talks *to* a server.
//!
//! Why it lives in `store`: replication (a replica connecting to its master), Sentinel (which
//! watches masters with INFO and talks over pub/sub) and the simulation's workloads all need to
//! connect to a server. They share this one client so that the handshake code, the reply parser
//! and its limits are written and tested once, and run on the same seams (madsim's network in
//! simulation).
//!
//! Every read waits at most `io_timeout`: under madsim a partition stalls a connection forever
//! instead of resetting it, so a wait without a timeout would hang its caller.
//! Replies are parsed with limits (bulk length, array length, nesting depth) because the peer
//! may be faulty or hostile, and no arithmetic on what it sends can overflow (issue 12).

#![deny(clippy::arithmetic_side_effects)]

use std::io;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::protocol::{encode_command, parse_i64_strict};

/// Largest bulk reply accepted (Redis's proto-max-bulk-len default).
pub const REPLY_BULK_MAX: i64 = 512 * 1024 * 1024;
/// Largest array reply accepted.
pub const REPLY_ARRAY_MAX: i64 = 16 * 1024 * 1024;
/// Deepest nesting accepted.
pub const REPLY_DEPTH_MAX: usize = 8;

/// A reply from a server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Bytes>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    pub fn is_error(&self) -> bool {
        matches!(self, Resp::Error(_))
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
            Resp::Array(Some(items)) => {
                let inner: Vec<String> = items.iter().map(|i| i.render()).collect();
                format!("[{}]", inner.join(","))
            }
        }
    }
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
    match kind {
        b'+' => {
            *pos = next;
            Ok(Some(Resp::Simple(text())))
        }
        b'-' => {
            *pos = next;
            Ok(Some(Resp::Error(text())))
        }
        b':' => {
            let v = parse_i64_strict(line).ok_or_else(|| bad("invalid integer"))?;
            *pos = next;
            Ok(Some(Resp::Int(v)))
        }
        b'$' => {
            let len = parse_i64_strict(line).ok_or_else(|| bad("invalid bulk length"))?;
            if len == -1 {
                *pos = next;
                return Ok(Some(Resp::Bulk(None)));
            }
            if !(0..=REPLY_BULK_MAX).contains(&len) {
                return Err(bad("invalid bulk length"));
            }
            let Some((end, bulk_end)) = next.checked_add(len as usize).and_then(|end| Some((end, end.checked_add(2)?)))
            else {
                return Err(bad("invalid bulk length"));
            };
            if buf.len() < bulk_end {
                return Ok(None);
            }
            if &buf[end..bulk_end] != b"\r\n" {
                return Err(bad("bulk not terminated by CRLF"));
            }
            let data = Bytes::copy_from_slice(&buf[next..end]);
            *pos = bulk_end;
            Ok(Some(Resp::Bulk(Some(data))))
        }
        b'*' => {
            let len = parse_i64_strict(line).ok_or_else(|| bad("invalid multibulk length"))?;
            if len == -1 {
                *pos = next;
                return Ok(Some(Resp::Array(None)));
            }
            if !(0..=REPLY_ARRAY_MAX).contains(&len) {
                return Err(bad("invalid multibulk length"));
            }
            let mut p = next;
            // Capacity bounded by what can possibly be in the buffer, not by the claimed length.
            let mut items = Vec::with_capacity((len as usize).min((buf[p..].len() / 3).saturating_add(1)));
            // `depth <= REPLY_DEPTH_MAX`, checked on entry.
            #[allow(clippy::arithmetic_side_effects)]
            let inner = depth + 1;
            for _ in 0..len {
                match parse_at(buf, &mut p, inner)? {
                    Some(r) => items.push(r),
                    None => return Ok(None),
                }
            }
            *pos = p;
            Ok(Some(Resp::Array(Some(items))))
        }
        other => Err(bad(&format!("unexpected reply type byte 0x{other:02x}"))),
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
