//! Redis 7's protections on the real binary, each checked the way an attacker or a careless
//! administrator would meet it: one command that used to abort the server, protected configs,
//! limits before AUTH, output buffer limits, protected mode from a non-local loopback address,
//! and the configuration mistakes Redis refuses at start-up. Where the behaviour is observable
//! on the wire, the same check runs against a real redis-server 7 too (when installed), so the
//! expected texts are Redis's, not ours.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Runs `check` against our server and, when installed, against redis-server started with the
/// same extra arguments.
fn against_both(extra: &[&str], check: impl Fn(u16, &str)) {
    let ours = start_store(extra);
    check(ours.port, "store");
    if redis_server_available() {
        let theirs = start_redis_with(extra);
        check(theirs.port, "redis");
    }
}

/// Sends raw bytes on a fresh connection and returns what the server wrote before closing (or
/// before a second of silence).
fn raw_exchange(port: u16, bytes: &[u8]) -> (String, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    s.write_all(bytes).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn string_growth_past_the_limit_is_an_error_not_an_abort() {
    against_both(&[], |port, who| {
        let mut c = Conn::new(port);
        let too_big = "-ERR string exceeds maximum allowed size (proto-max-bulk-len)";
        // offset + length >= 2^63 used to overflow a signed comparison and abort the process.
        assert_eq!(c.call(&["SETRANGE", "k", "9223372036854775807", "x"]), too_big, "{who}");
        assert_eq!(c.call(&["SETRANGE", "k", "9223372036854775806", "xy"]), too_big, "{who}");
        assert_eq!(c.call(&["SETRANGE", "k", "536870912", "x"]), too_big, "{who}");
        assert_eq!(c.call(&["SETRANGE", "k", "-1", "x"]), "-ERR offset is out of range", "{who}");
        assert_eq!(c.call(&["SET", "k", "abc"]), "+OK", "{who}");
        assert_eq!(c.call(&["SETRANGE", "k", "9223372036854775807", ""]), ":3", "{who}");
        assert_eq!(c.call(&["PING"]), "+PONG", "{who}: still serving");
    });
}

#[test]
fn protected_configs_cannot_point_saves_at_arbitrary_files() {
    against_both(&[], |port, who| {
        let mut c = Conn::new(port);
        for (name, value) in [("dir", "/tmp"), ("dbfilename", "../escaped.rdb"), ("dbfilename", "authorized_keys")] {
            assert_eq!(
                c.call(&["CONFIG", "SET", name, value]),
                format!("-ERR CONFIG SET failed (possibly related to argument '{name}') - can't set protected config"),
                "{who}"
            );
        }
        // Several pairs: nothing applies when one is refused.
        assert!(c.call(&["CONFIG", "SET", "maxmemory", "10mb", "dir", "/tmp"]).starts_with("-ERR"), "{who}");
        assert_eq!(c.call(&["CONFIG", "GET", "maxmemory"]), "[\"maxmemory\", \"0\"]", "{who}");
        assert_eq!(c.call(&["CONFIG", "GET", "dbfilename"]), "[\"dbfilename\", \"dump.rdb\"]", "{who}");
    });
    against_both(&["--enable-protected-configs", "yes"], |port, who| {
        let mut c = Conn::new(port);
        for bad in ["../escaped.rdb", "/etc/cron.d/x", "a/b"] {
            assert_eq!(
                c.call(&["CONFIG", "SET", "dbfilename", bad]),
                "-ERR CONFIG SET failed (possibly related to argument 'dbfilename') - dbfilename can't be a path, just a filename",
                "{who}"
            );
        }
        assert_eq!(
            c.call(&["CONFIG", "SET", "dir", "/nonexistent/dir"]),
            "-ERR CONFIG SET failed (possibly related to argument 'dir') - No such file or directory",
            "{who}"
        );
        assert_eq!(c.call(&["CONFIG", "SET", "dbfilename", "other.rdb"]), "+OK", "{who}");
    });
}

#[test]
fn limits_before_auth_close_oversized_requests() {
    against_both(&["--requirepass", "secret"], |port, who| {
        let (got, closed) = raw_exchange(port, b"*11\r\n");
        assert_eq!(got, "-ERR Protocol error: unauthenticated multibulk length\r\n", "{who}");
        assert!(closed, "{who}: connection closed");
        let (got, closed) = raw_exchange(port, b"*2\r\n$4\r\nAUTH\r\n$16385\r\n");
        assert_eq!(got, "-ERR Protocol error: unauthenticated bulk length\r\n", "{who}");
        assert!(closed, "{who}");
        // Within the limits, a wrong password is just an error.
        let mut arg = b"*2\r\n$4\r\nAUTH\r\n$16384\r\n".to_vec();
        arg.extend(vec![b'a'; 16384]);
        arg.extend_from_slice(b"\r\n");
        let (got, _) = raw_exchange(port, &arg);
        assert!(got.starts_with("-WRONGPASS"), "{who}: {got}");
        // AUTH lifts the limits for the requests after it, even pipelined behind it.
        let mut req = b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n*12\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n".to_vec();
        for _ in 0..10 {
            req.extend_from_slice(b"$1\r\nx\r\n");
        }
        req.extend_from_slice(b"*1\r\n$4\r\nQUIT\r\n");
        let (got, _) = raw_exchange(port, &req);
        assert_eq!(got, "+OK\r\n:10\r\n+OK\r\n", "{who}");
    });
}

#[test]
fn unauthenticated_clients_cannot_grow_memory() {
    let server = start_store(&["--requirepass", "secret"]);
    let before = rss_kb(server.child.id());
    // Four clients each claim a 250 MB AUTH argument and start streaming it: each is cut off at
    // its first 16 KB.
    let mut socks: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = s.write_all(b"*2\r\n$4\r\nAUTH\r\n$262144000\r\n");
            s
        })
        .collect();
    let chunk = vec![b'a'; 1 << 20];
    for s in socks.iter_mut() {
        for _ in 0..50 {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
    }
    let after = rss_kb(server.child.id());
    assert!(after < before + 64 * 1024, "RSS grew from {before} kB to {after} kB");
    assert_eq!(Conn::new(server.port).call(&["AUTH", "secret"]), "+OK");
}

#[test]
fn normal_output_limit_disconnects_clients_that_do_not_read() {
    let server = start_store(&[]);
    let mut admin = Conn::new(server.port);
    assert_eq!(admin.call(&["CONFIG", "SET", "client-output-buffer-limit", "normal 8mb 0 0"]), "+OK");
    let value = "x".repeat(1 << 20);
    assert_eq!(admin.call(&["SET", "big", &value]), "+OK");
    let before = rss_kb(server.child.id());
    // Eight clients ask for 100 MB replies and never read them.
    let mgets: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            let mut req = String::from("MGET");
            for _ in 0..100 {
                req.push_str(" big");
            }
            req.push_str("\r\n");
            s.write_all(req.as_bytes()).unwrap();
            s
        })
        .collect();
    let start = Instant::now();
    loop {
        let clients = admin.call(&["CLIENT", "LIST"]);
        if clients.matches("cmd=mget").count() == 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "clients over the limit stayed connected:\n{clients}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let info = admin.call(&["INFO", "stats"]);
    assert!(info.contains("client_output_buffer_limit_disconnections:8"), "{info}");
    let after = rss_kb(server.child.id());
    assert!(after < before + 256 * 1024, "RSS grew from {before} kB to {after} kB");
    // A client that reads gets its (smaller) reply.
    let mut reader = Conn::new(server.port);
    assert_eq!(reader.call(&["STRLEN", "big"]), ":1048576");
    drop(mgets);
}

#[test]
fn client_reply_off_skip_on() {
    against_both(&[], |port, who| {
        let (got, _) = raw_exchange(
            port,
            b"CLIENT REPLY SKIP\r\nSET a 1\r\nGET a\r\nCLIENT REPLY OFF\r\nSET b 2\r\nGET nosuch\r\nCLIENT REPLY ON\r\nGET b\r\nCLIENT REPLY MAYBE\r\nQUIT\r\n",
        );
        assert_eq!(got, "$1\r\n1\r\n+OK\r\n$1\r\n2\r\n-ERR syntax error\r\n+OK\r\n", "{who}");
    });
}

#[test]
fn protected_mode_trusts_only_127_0_0_1() {
    // No password and protected mode on (the defaults): only 127.0.0.1 and ::1 are local. A
    // connection from 127.0.0.2 (another loopback address, as a container or proxy may use) is
    // refused, as Redis does.
    against_both(&["--protected-mode", "yes", "--bind", "127.0.0.1"], |port, who| {
        let mut s = connect_from("127.0.0.2", port);
        s.write_all(b"PING\r\n").unwrap();
        let mut got = String::new();
        let _ = s.read_to_string(&mut got);
        assert!(got.starts_with("-DENIED Redis is running in protected mode"), "{who}: {got:?}");
        assert_eq!(Conn::new(port).call(&["PING"]), "+PONG", "{who}");
    });
}

/// A TCP connection to 127.0.0.1:`port` from the source address `from`.
fn connect_from(from: &str, port: u16) -> TcpStream {
    use std::os::fd::FromRawFd;
    let ip: std::net::Ipv4Addr = from.parse().unwrap();
    // SAFETY: plain socket calls on a descriptor this function owns until it hands it to
    // TcpStream, which closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let mut src: libc::sockaddr_in = std::mem::zeroed();
        src.sin_family = libc::AF_INET as libc::sa_family_t;
        src.sin_addr.s_addr = u32::from(ip).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(libc::bind(fd, &src as *const _ as *const libc::sockaddr, len), 0, "bind {from}");
        let mut dst: libc::sockaddr_in = std::mem::zeroed();
        dst.sin_family = libc::AF_INET as libc::sa_family_t;
        dst.sin_port = port.to_be();
        dst.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        assert_eq!(libc::connect(fd, &dst as *const _ as *const libc::sockaddr, len), 0, "connect");
        let s = TcpStream::from_raw_fd(fd);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }
}

#[test]
fn large_valid_requests_are_taken() {
    against_both(&[], |port, who| {
        // More than 1,048,576 arguments: Redis 7 takes up to INT_MAX.
        let n = 1_100_000;
        let mut req = format!("*{}\r\n$5\r\nRPUSH\r\n$4\r\nlist\r\n", n + 2).into_bytes();
        for _ in 0..n {
            req.extend_from_slice(b"$1\r\nx\r\n");
        }
        let mut c = Conn::new(port);
        c.send_raw(&req);
        assert_eq!(c.read().unwrap(), format!(":{n}"), "{who}");
        // An inline command past 64 KB whose newline arrives with it.
        let mut line = b"SET inline ".to_vec();
        line.extend(vec![b'v'; 70_000]);
        line.extend_from_slice(b"\r\n");
        c.send_raw(&line);
        assert_eq!(c.read().unwrap(), "+OK", "{who}");
        assert_eq!(c.call(&["STRLEN", "inline"]), ":70000", "{who}");
    });
}

#[test]
fn config_limits_are_redis_s() {
    against_both(&[], |port, who| {
        let mut c = Conn::new(port);
        for name in ["proto-max-bulk-len", "client-query-buffer-limit"] {
            assert_eq!(
                c.call(&["CONFIG", "SET", name, "1"]),
                format!("-ERR CONFIG SET failed (possibly related to argument '{name}') - argument must be between 1048576 and 9223372036854775807 inclusive"),
                "{who}"
            );
        }
        assert_eq!(c.call(&["SET", "k", "v"]), "+OK", "{who}: still serving");
    });
}

/// Starts store-server expecting it to refuse to start; returns its stderr.
fn start_refused(args: &[&str]) -> String {
    let child = Command::new(env!("CARGO_BIN_EXE_store-server"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn store-server");
    let start = Instant::now();
    let mut child = child;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "store-server {args:?} exited 0");
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            let mut out = String::new();
            child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            return err + &out;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("store-server {args:?} started; it should have refused");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write_conf(name: &str, text: &str) -> String {
    let dir = fresh_dir(free_port());
    let path = format!("{dir}/{name}");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn config_mistakes_stop_start_up() {
    let port = free_port().to_string();
    let conf = write_conf("typo.conf", &format!("port {port}\nrename-command CONFGI \"\"\n"));
    let err = start_refused(&[&conf]);
    assert!(err.contains("No such command in rename-command"), "{err}");
    assert!(err.contains("line 2"), "{err}");

    let conf = write_conf("dir.conf", &format!("port {port}\ndir /nonexistent/store-dir\n"));
    let err = start_refused(&[&conf]);
    assert!(err.contains("No such file or directory"), "{err}");

    let conf = write_conf("dbf.conf", &format!("port {port}\ndbfilename ../escaped.rdb\n"));
    let err = start_refused(&[&conf]);
    assert!(err.contains("dbfilename can't be a path, just a filename"), "{err}");

    let conf = write_conf("missing-include.conf", &format!("port {port}\ninclude /nonexistent/other.conf\n"));
    let err = start_refused(&[&conf]);
    assert!(err.contains("/nonexistent/other.conf"), "{err}");
}

#[test]
fn include_and_renames_apply() {
    let port = free_port();
    let dir = fresh_dir(port);
    let included = format!("{dir}/common.conf");
    std::fs::write(&included, "maxmemory 5mb\nrename-command FLUSHALL \"\"\n").unwrap();
    let main = format!("{dir}/main.conf");
    std::fs::write(
        &main,
        format!("port {port}\ndir {dir}\nsave \"\"\ninclude {included}\nrename-command CONFIG MYCONFIG\n"),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_store-server"))
        .arg(&main)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Proc { child, port };
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = Conn::new(port);
    assert_eq!(c.call(&["MYCONFIG", "GET", "maxmemory"]), "[\"maxmemory\", \"5242880\"]");
    assert!(c.call(&["CONFIG", "GET", "maxmemory"]).starts_with("-ERR unknown command 'CONFIG'"));
    assert!(c.call(&["FLUSHALL"]).starts_with("-ERR unknown command 'FLUSHALL'"));
}

#[test]
fn replicaof_as_one_quoted_argument_starts_a_replica() {
    let master = start_store(&[]);
    let target = format!("127.0.0.1 {}", master.port);
    let replica = start_store(&["--replicaof", &target]);
    let mut c = Conn::new(replica.port);
    let info = c.call(&["INFO", "replication"]);
    assert!(info.contains("role:slave"), "{info}");
    assert!(info.contains(&format!("master_port:{}", master.port)), "{info}");
}

fn info_field(c: &mut Conn, section: &str, name: &str) -> String {
    info_value(c, section, name)
}

#[test]
fn replica_output_limit_drops_a_stalled_replica() {
    // The replica class: a replica that stops reading (here: stopped with SIGSTOP) is dropped
    // once the stream queued for it passes the hard limit, and resyncs when it comes back.
    let master = start_store(&["--client-output-buffer-limit", "replica 1mb 0 0", "--repl-diskless-sync-delay", "0"]);
    let target = format!("127.0.0.1 {}", master.port);
    let replica = start_store(&["--replicaof", &target]);
    let mut m = Conn::new(master.port);
    let mut r = Conn::new(replica.port);
    wait_for("replica link up", || info_field(&mut r, "replication", "master_link_status") == "up");
    let pid = replica.child.id() as libc::pid_t;
    // SAFETY: signals to a child process this test owns.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let value = "x".repeat(64 * 1024);
    for i in 0..200 {
        assert_eq!(m.call(&["SET", &format!("k{i}"), &value]), "+OK");
    }
    wait_for("the stalled replica dropped", || info_field(&mut m, "replication", "connected_slaves") == "0");
    unsafe { libc::kill(pid, libc::SIGCONT) };
    wait_for("the replica resynced", || {
        info_field(&mut m, "replication", "connected_slaves") == "1"
            && info_field(&mut r, "replication", "master_link_status") == "up"
    });
    assert_eq!(r.call(&["STRLEN", "k199"]), ":65536");
}
