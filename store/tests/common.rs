//! Shared helpers for the end-to-end tests: start a server process on a free loopback port,
//! talk to it with a tiny blocking RESP client. Tests are not server code, so std I/O is fine.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A server process killed on drop.
pub struct Proc {
    pub child: Child,
    pub port: u16,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_ready(port: u16) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
            if c.write_all(b"PING\r\n").is_ok() {
                let mut b = [0u8; 64];
                if let Ok(n) = c.read(&mut b) {
                    if n > 0 && !b.starts_with(b"-LOADING") {
                        return;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server on port {port} did not become ready");
}

pub fn start_store(extra: &[&str]) -> Proc {
    let port = free_port();
    let dir = fresh_dir(port);
    let mut args = vec![
        "--dir".to_string(),
        dir,
        "--port".to_string(),
        port.to_string(),
        "--save".into(),
        "".into(),
        "--loglevel".into(),
        "warning".into(),
        "--enable-debug-command".into(),
        "yes".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Command::new(env!("CARGO_BIN_EXE_store-server"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start store-server");
    wait_ready(port);
    Proc { child, port }
}

pub fn redis_server_available() -> bool {
    Command::new("redis-server").arg("--version").output().is_ok()
}

/// On CI a missing peer is an error (CI installs it); elsewhere the test says it skipped.
pub fn require_or_skip(available: bool, what: &str) -> bool {
    if available {
        return true;
    }
    if std::env::var("CI").is_ok() {
        panic!("{what} is required in CI (.ci/run installs it)");
    }
    eprintln!("SKIPPED: {what} not installed here; run ci/install-deps to include this test");
    false
}

/// A fresh, empty directory for one server: nothing left by an earlier run (a dump.rdb a
/// replica saved, say) may leak into this one.
pub fn fresh_dir(port: u16) -> String {
    let dir = std::env::temp_dir().join(format!("store-test-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir.display().to_string()
}

pub fn start_redis() -> Proc {
    start_redis_with(&["--enable-debug-command", "yes"])
}

/// A real redis-server on a fresh port and directory, persistence off, with `extra` directives
/// (`--replicaof "host port"` as one argument works, as in Redis 7).
pub fn start_redis_with(extra: &[&str]) -> Proc {
    let port = free_port();
    let dir = fresh_dir(port);
    let mut args: Vec<String> =
        ["--dir", &dir, "--port", &port.to_string(), "--save", "", "--appendonly", "no", "--loglevel", "warning"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Command::new("redis-server")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    wait_ready(port);
    Proc { child, port }
}

/// Polls `f` every 50 ms until it holds; fails the test after 20 s.
pub fn wait_for(what: &str, f: impl FnMut() -> bool) {
    wait_for_within(what, Duration::from_secs(20), f)
}

pub fn wait_for_within(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A blocking client that returns replies rendered as text, one line per reply.
pub struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn { s, buf: Vec::new() }
    }

    pub fn send(&mut self, args: &[Vec<u8>]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.s.write_all(&out).unwrap();
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 65536];
        match self.s.read(&mut tmp) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Some(l);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Reads `n` bytes of payload and its CRLF; None if the connection closed first.
    fn payload(&mut self, n: usize) -> Option<String> {
        while self.buf.len() < n + 2 {
            if !self.fill() {
                return None;
            }
        }
        let v = String::from_utf8_lossy(&self.buf[..n]).into_owned();
        self.buf.drain(..n + 2);
        Some(v)
    }

    /// Reads `n` replies and joins their renderings.
    fn items(&mut self, n: i64, sep: &str) -> Option<String> {
        let mut items = Vec::new();
        for _ in 0..n {
            items.push(self.read()?);
        }
        Some(items.join(sep))
    }

    /// Reads one reply and renders it; None if the connection closed.
    ///
    /// RESP2: `"bulk"`, `(nil)`, `[a, b]`, `(nil array)`, and simple strings, errors and
    /// integers as sent (`+OK`, `-ERR ...`, `:1`). RESP3 types keep their type byte so that a
    /// RESP3 reply never renders like a RESP2 one: `(null)`, `%{k: v, ...}` (map), `~[a, b]`
    /// (set), `>[a, b]` (push), `,1.5` (double), `#t` (boolean), `(123` (big number),
    /// `=txt:"..."` (verbatim string) and `!"..."` (blob error).
    pub fn read(&mut self) -> Option<String> {
        let l = self.line()?;
        let (kind, rest) = l.split_at(1);
        Some(match kind {
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    "(nil)".into()
                } else {
                    format!("{:?}", self.payload(n as usize)?)
                }
            }
            "*" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    "(nil array)".into()
                } else {
                    format!("[{}]", self.items(n, ", ")?)
                }
            }
            "_" => "(null)".into(),
            "~" => format!("~[{}]", self.items(rest.parse().unwrap(), ", ")?),
            ">" => format!(">[{}]", self.items(rest.parse().unwrap(), ", ")?),
            "%" => {
                let n: i64 = rest.parse().unwrap();
                let mut pairs = Vec::new();
                for _ in 0..n {
                    let k = self.read()?;
                    let v = self.read()?;
                    pairs.push(format!("{k}: {v}"));
                }
                format!("%{{{}}}", pairs.join(", "))
            }
            "=" => {
                let v = self.payload(rest.parse().unwrap())?;
                // The first four bytes are the format (`txt:`), the rest the text.
                let (format, text) = v.split_at(4.min(v.len()));
                format!("={format}{text:?}")
            }
            "!" => format!("!{:?}", self.payload(rest.parse().unwrap())?),
            _ => l,
        })
    }

    pub fn call(&mut self, args: &[&str]) -> String {
        let a: Vec<Vec<u8>> = args.iter().map(|s| s.as_bytes().to_vec()).collect();
        self.send(&a);
        self.read().unwrap_or_else(|| "(closed)".into())
    }
}

/// Raw-byte replies, for binary values (DUMP payloads, binary strings) that the text rendering
/// of [`Conn::read`] would mangle.
impl Conn {
    fn send_bytes(&mut self, args: &[&[u8]]) {
        let a: Vec<Vec<u8>> = args.iter().map(|s| s.to_vec()).collect();
        self.send(&a);
    }

    fn read_bulk_raw(&mut self) -> Option<Vec<u8>> {
        let l = self.line().expect("connection closed");
        if let Some(simple) = l.strip_prefix('+') {
            return Some(simple.as_bytes().to_vec());
        }
        let n: i64 = match l.strip_prefix('$') {
            Some(n) => n.parse().unwrap(),
            None => panic!("expected a bulk string, got {l:?}"),
        };
        if n < 0 {
            return None;
        }
        let n = n as usize;
        while self.buf.len() < n + 2 {
            assert!(self.fill(), "connection closed inside a bulk string");
        }
        let v = self.buf[..n].to_vec();
        self.buf.drain(..n + 2);
        Some(v)
    }

    /// Sends a command whose reply is a bulk string; returns its bytes (None for nil).
    pub fn call_bulk(&mut self, args: &[&[u8]]) -> Option<Vec<u8>> {
        self.send_bytes(args);
        self.read_bulk_raw()
    }

    /// Sends a command whose reply is an array of bulk (or simple) strings; returns their bytes.
    pub fn call_bulks(&mut self, args: &[&[u8]]) -> Vec<Vec<u8>> {
        self.send_bytes(args);
        let l = self.line().expect("connection closed");
        let n: usize = match l.strip_prefix('*') {
            Some(n) => n.parse().unwrap(),
            None => panic!("expected an array, got {l:?}"),
        };
        (0..n).map(|_| self.read_bulk_raw().unwrap_or_default()).collect()
    }

    /// Sends a command with binary arguments and returns the reply rendered as by [`Conn::read`].
    pub fn call_raw(&mut self, args: &[&[u8]]) -> String {
        self.send_bytes(args);
        self.read().unwrap_or_else(|| "(closed)".into())
    }
}

/// INFO [section], parsed by the project's typed parser (no test splits `role:` by hand).
pub fn info(c: &mut Conn, section: &str) -> store::client::info::Info {
    let raw = c.call_bulk(&[b"INFO", section.as_bytes()]).unwrap_or_default();
    store::client::info::Info::parse(&String::from_utf8_lossy(&raw))
}

/// One INFO field's value ("" when absent).
pub fn info_value(c: &mut Conn, section: &str, name: &str) -> String {
    info(c, section).get(name).unwrap_or_default().to_string()
}

// ---- Sentinel groups (sentinel_interop.rs, sentinel_clients.rs) ----

/// A process started from a config file in a directory, restartable on the same file (a
/// sentinel rewrites it). Its stdout and stderr go to `<conf>.log` next to the file, appended
/// across restarts, so a failed test leaves the logs behind.
pub struct ConfNode {
    pub child: Option<Child>,
    pub port: u16,
    pub conf: std::path::PathBuf,
    pub program: String,
    /// Arguments after the config file (`--sentinel`).
    pub args: Vec<String>,
}

impl ConfNode {
    pub fn start(program: &str, args: &[&str], dir: &std::path::Path, name: &str, port: u16, text: &str) -> ConfNode {
        let conf = dir.join(name);
        std::fs::write(&conf, text).unwrap();
        let mut n = ConfNode {
            child: None,
            port,
            conf,
            program: program.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        n.restart();
        n
    }

    pub fn log_path(&self) -> std::path::PathBuf {
        let mut p = self.conf.clone().into_os_string();
        p.push(".log");
        p.into()
    }

    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let child = Command::new(&self.program)
            .arg(&self.conf)
            .args(&self.args)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.program));
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                panic!("{} {} exited at start-up ({status}):\n{log}", self.program, self.conf.display());
            }
            assert!(start.elapsed() < Duration::from_secs(10), "{} on {} did not start", self.program, self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The config file as it is now (a sentinel rewrites it).
    pub fn conf_text(&self) -> String {
        std::fs::read_to_string(&self.conf).unwrap_or_default()
    }
}

impl Drop for ConfNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Which sentinel program a group member runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SentinelKind {
    /// Real `redis-sentinel sentinel.conf`.
    Redis,
    /// Ours, `store-sentinel sentinel.conf`.
    Store,
    /// Ours, started as `store-server sentinel.conf --sentinel`.
    StoreFlag,
}

impl SentinelKind {
    pub fn is_ours(self) -> bool {
        self != SentinelKind::Redis
    }

    pub fn program(self) -> &'static str {
        match self {
            SentinelKind::Redis => "redis-sentinel",
            SentinelKind::Store => env!("CARGO_BIN_EXE_store-sentinel"),
            SentinelKind::StoreFlag => env!("CARGO_BIN_EXE_store-server"),
        }
    }

    pub fn args(self) -> &'static [&'static str] {
        match self {
            SentinelKind::StoreFlag => &["--sentinel"],
            _ => &[],
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SentinelKind::Redis => "redis-sentinel",
            SentinelKind::Store => "store-sentinel",
            SentinelKind::StoreFlag => "store-server --sentinel",
        }
    }
}

pub fn redis_sentinel_available() -> bool {
    Command::new("redis-sentinel").arg("--version").output().is_ok()
}

pub fn python_redis_available() -> bool {
    Command::new("python3").args(["-c", "import redis.sentinel"]).status().map(|s| s.success()).unwrap_or(false)
}

/// The tutorial's group: a master and two replicas from config files, and sentinels each
/// configured with only the master. The directory is removed on drop unless the test failed.
pub struct SentinelGroup {
    pub servers: Vec<ConfNode>,
    pub sentinels: Vec<ConfNode>,
    pub kinds: Vec<SentinelKind>,
    pub dir: std::path::PathBuf,
}

impl Drop for SentinelGroup {
    fn drop(&mut self) {
        for n in self.sentinels.iter_mut().chain(self.servers.iter_mut()) {
            n.kill();
        }
        if std::thread::panicking() {
            eprintln!("sentinel group files and logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A sentinel.conf as the tutorial writes it.
pub fn sentinel_conf(
    port: u16,
    dir: &std::path::Path,
    master_port: u16,
    quorum: usize,
    down_after_ms: u64,
    failover_timeout_ms: u64,
) -> String {
    format!(
        "port {port}\ndir {}\nsentinel monitor mymaster 127.0.0.1 {master_port} {quorum}\nsentinel down-after-milliseconds mymaster {down_after_ms}\nsentinel failover-timeout mymaster {failover_timeout_ms}\n",
        dir.display()
    )
}

/// Starts the tutorial's servers (redis-server or ours) and one sentinel of each `kinds`.
pub fn sentinel_group(
    redis_servers: bool,
    kinds: &[SentinelKind],
    quorum: usize,
    down_after_ms: u64,
    failover_timeout_ms: u64,
) -> SentinelGroup {
    let dir = std::env::temp_dir().join(format!("store-sentinel-{}-{}", std::process::id(), free_port()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let server = if redis_servers { "redis-server" } else { env!("CARGO_BIN_EXE_store-server") };
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut group =
        SentinelGroup { servers: Vec::new(), sentinels: Vec::new(), kinds: kinds.to_vec(), dir: dir.clone() };
    for (i, port) in ports.iter().enumerate() {
        let d = dir.join(format!("server-{port}"));
        std::fs::create_dir_all(&d).unwrap();
        let mut text = format!("# tutorial instance\nport {port}\ndir {}\nloglevel notice\nsave \"\"\n", d.display());
        if i > 0 {
            text.push_str(&format!("replicaof 127.0.0.1 {}\n", ports[0]));
        }
        group.servers.push(ConfNode::start(server, &[], &dir, &format!("{port}.conf"), *port, &text));
    }
    for kind in kinds {
        group.sentinels.push(start_sentinel(*kind, &dir, ports[0], quorum, down_after_ms, failover_timeout_ms));
    }
    group
}

/// One more sentinel of `kind` monitoring `mymaster` at `master_port`, with its file in `dir`.
pub fn start_sentinel(
    kind: SentinelKind,
    dir: &std::path::Path,
    master_port: u16,
    quorum: usize,
    down_after_ms: u64,
    failover_timeout_ms: u64,
) -> ConfNode {
    let port = free_port();
    let text = sentinel_conf(port, dir, master_port, quorum, down_after_ms, failover_timeout_ms);
    ConfNode::start(kind.program(), kind.args(), dir, &format!("sentinel-{port}.conf"), port, &text)
}

/// A reply as a value, for tests that look inside arrays and maps (RESP3 maps become
/// `Map`, RESP2 flat arrays stay `Array`; [`Resp::pairs`] reads either as key/value pairs).
#[derive(Clone, Debug, PartialEq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(String),
    Nil,
    Array(Vec<Resp>),
    Map(Vec<(Resp, Resp)>),
    Other(String),
}

impl Resp {
    /// The text of a simple string, bulk string or error; "" otherwise.
    pub fn text(&self) -> &str {
        match self {
            Resp::Simple(s) | Resp::Bulk(s) | Resp::Error(s) | Resp::Other(s) => s,
            _ => "",
        }
    }

    pub fn items(&self) -> &[Resp] {
        match self {
            Resp::Array(v) => v,
            _ => &[],
        }
    }

    /// A map reply, or a flat array of alternating keys and values, as (key, value) text pairs.
    pub fn pairs(&self) -> Vec<(String, String)> {
        match self {
            Resp::Map(v) => v.iter().map(|(k, v)| (k.text().to_string(), v.text().to_string())).collect(),
            Resp::Array(v) => v
                .chunks(2)
                .map(|c| (c[0].text().to_string(), c.get(1).map(|x| x.text()).unwrap_or("").to_string()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl Conn {
    /// Reads one reply as a [`Resp`] value; None if the connection closed.
    pub fn read_value(&mut self) -> Option<Resp> {
        let l = self.line()?;
        let (kind, rest) = l.split_at(1);
        Some(match kind {
            "+" => Resp::Simple(rest.to_string()),
            "-" => Resp::Error(rest.to_string()),
            ":" => Resp::Int(rest.parse().unwrap()),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    Resp::Nil
                } else {
                    Resp::Bulk(self.payload(n as usize)?)
                }
            }
            "_" => Resp::Nil,
            "*" | "~" | ">" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Some(Resp::Nil);
                }
                let mut v = Vec::new();
                for _ in 0..n {
                    v.push(self.read_value()?);
                }
                Resp::Array(v)
            }
            "%" => {
                let n: i64 = rest.parse().unwrap();
                let mut v = Vec::new();
                for _ in 0..n {
                    let k = self.read_value()?;
                    v.push((k, self.read_value()?));
                }
                Resp::Map(v)
            }
            "=" => {
                let v = self.payload(rest.parse().unwrap())?;
                Resp::Bulk(v.get(4..).unwrap_or("").to_string())
            }
            _ => Resp::Other(l),
        })
    }

    /// Sends a command and reads its reply as a [`Resp`] value.
    pub fn call_value(&mut self, args: &[&str]) -> Resp {
        let a: Vec<Vec<u8>> = args.iter().map(|s| s.as_bytes().to_vec()).collect();
        self.send(&a);
        self.read_value().unwrap_or(Resp::Other("(closed)".into()))
    }
}
