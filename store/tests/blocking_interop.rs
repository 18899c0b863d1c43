//! Blocking commands against redis-server 7, side by side: the same multi-client scenario runs on
//! both servers and every reply each client gets must be identical, in the same order. The
//! scenarios are the behaviours a job queue relies on: first blocked first served, a push
//! waking a client blocked on several keys, BLMOVE feeding another blocked client, a timeout,
//! CLIENT UNBLOCK, a client that disconnects while blocked (never served), a blocked client's
//! pipelined commands running after it is served, MULTI/EXEC making keys ready, a replica's
//! blocked client woken by its master's stream, and REPLICAOF unblocking everyone.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// One step of a scenario, on the client with the given index.
enum Step {
    /// Send a command without reading its reply (it blocks).
    Send(usize, &'static [&'static str]),
    /// Read one reply and record it.
    Read(usize),
    /// Send and read, recording the reply.
    Call(usize, &'static [&'static str]),
    /// Send and read, not recording (a client id, which differs between servers).
    Quiet(usize, &'static [&'static str]),
    /// Let blocked clients register before the next step.
    Pause,
    /// Close the client's connection.
    Drop(usize),
    /// CLIENT UNBLOCK the client `.1` from client `.0`, with the reason `.2`; the reply is
    /// recorded.
    Unblock(usize, usize, &'static str),
    /// The value of one INFO clients field, recorded.
    Info(usize, &'static str),
    /// Whether the client is a blocked one in CLIENT LIST (flags=b), recorded.
    FlagB(usize, usize),
}

use Step::*;

const CLIENTS: usize = 4;

/// Runs `steps` on a server and returns the transcript of recorded replies.
fn run(port: u16, steps: &[Step]) -> Vec<String> {
    let mut conns: Vec<Option<Conn>> = (0..CLIENTS).map(|_| Some(Conn::new(port))).collect();
    let mut ids = Vec::new();
    for c in conns.iter_mut() {
        let c = c.as_mut().unwrap();
        ids.push(c.call(&["CLIENT", "ID"]).trim_start_matches(':').to_string());
    }
    let mut out = Vec::new();
    let owned = |args: &[&str]| args.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>();
    for step in steps {
        match step {
            Send(i, args) => conns[*i].as_mut().unwrap().send(&owned(args)),
            Read(i) => {
                let r = conns[*i].as_mut().unwrap().read().unwrap_or_else(|| "(closed)".into());
                out.push(format!("c{i} <- {r}"));
            }
            Call(i, args) => {
                let r = conns[*i].as_mut().unwrap().call(args);
                out.push(format!("c{i} {} -> {r}", args.join(" ")));
            }
            Quiet(i, args) => {
                conns[*i].as_mut().unwrap().call(args);
            }
            Pause => std::thread::sleep(Duration::from_millis(150)),
            Drop(i) => conns[*i] = None,
            Unblock(i, target, reason) => {
                let r = conns[*i].as_mut().unwrap().call(&["CLIENT", "UNBLOCK", &ids[*target], reason]);
                out.push(format!("c{i} CLIENT UNBLOCK c{target} {reason} -> {r}"));
            }
            Info(i, field) => {
                let v = info_value(conns[*i].as_mut().unwrap(), "clients", field);
                out.push(format!("c{i} INFO {field} = {v}"));
            }
            FlagB(i, target) => {
                let list = conns[*i].as_mut().unwrap().call_bulk(&[b"CLIENT", b"LIST"]).unwrap_or_default();
                let text = String::from_utf8_lossy(&list);
                let line = text.lines().find(|l| l.starts_with(&format!("id={} ", ids[*target]))).unwrap_or("");
                out.push(format!("c{target} blocked in CLIENT LIST: {}", line.contains(" flags=b ")));
            }
        }
    }
    out
}

/// Runs a scenario on a fresh store-server and a fresh redis-server; the transcripts must match.
fn same_as_redis(name: &str, steps: &[Step]) {
    if !require_or_skip(redis_server_available(), "redis-server") {
        return;
    }
    let ours = start_store(&[]);
    let theirs = start_redis();
    let a = run(ours.port, steps);
    let b = run(theirs.port, steps);
    assert_eq!(a, b, "scenario {name}: store-server (left) and redis-server (right) differ");
    assert!(!a.is_empty(), "scenario {name} records something");
}

#[test]
fn first_blocked_is_first_served() {
    same_as_redis(
        "fifo",
        &[
            Send(0, &["BLPOP", "q", "0"]),
            Pause,
            Send(1, &["BLPOP", "q", "other", "0"]),
            Pause,
            Info(3, "blocked_clients"),
            FlagB(3, 0),
            Call(3, &["RPUSH", "q", "a", "b", "c"]),
            Read(0),
            Read(1),
            Call(3, &["LRANGE", "q", "0", "-1"]),
            Info(3, "blocked_clients"),
            FlagB(3, 0),
        ],
    );
}

#[test]
fn a_push_wakes_a_client_blocked_on_several_keys_and_types() {
    same_as_redis(
        "keys",
        &[
            Send(0, &["BRPOP", "a", "b", "0"]),
            Send(1, &["BZPOPMIN", "z", "0"]),
            Send(2, &["BZMPOP", "0", "2", "y", "z", "MAX", "COUNT", "5"]),
            Pause,
            Call(3, &["RPUSH", "b", "x", "y"]),
            Read(0),
            Call(3, &["ZADD", "z", "1", "m", "2", "n", "3", "o"]),
            Read(1),
            Read(2),
            Call(3, &["EXISTS", "z", "b"]),
            // A key of the wrong type serves no one; the right type later does.
            Send(0, &["BLPOP", "k", "0"]),
            Pause,
            Call(3, &["SET", "k", "v"]),
            Call(3, &["DEL", "k"]),
            Call(3, &["LPUSH", "k", "w"]),
            Read(0),
        ],
    );
}

#[test]
fn blmove_feeds_the_next_blocked_client() {
    same_as_redis(
        "chain",
        &[
            Send(0, &["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]),
            Pause,
            Send(1, &["BLPOP", "dst", "0"]),
            Send(2, &["BRPOPLPUSH", "dst", "third", "0"]),
            Pause,
            Call(3, &["RPUSH", "src", "v1", "v2"]),
            Read(0),
            Read(1),
            Call(3, &["LRANGE", "src", "0", "-1"]),
            Call(3, &["RPUSH", "dst", "w"]),
            Read(2),
            Call(3, &["LRANGE", "third", "0", "-1"]),
            Call(3, &["BLMPOP", "0", "1", "third", "LEFT", "COUNT", "9"]),
        ],
    );
}

#[test]
fn multi_exec_serves_from_the_key_made_ready_first() {
    same_as_redis(
        "multi",
        &[
            Send(0, &["BLPOP", "a", "b", "0"]),
            Pause,
            Call(3, &["MULTI"]),
            Call(3, &["RPUSH", "b", "from-b"]),
            Call(3, &["RPUSH", "a", "from-a"]),
            Call(3, &["EXEC"]),
            Read(0),
            Call(3, &["LRANGE", "a", "0", "-1"]),
            // A transaction that pushes and pops leaves nothing for the blocked client.
            Send(1, &["BLPOP", "c", "0"]),
            Pause,
            Call(3, &["MULTI"]),
            Call(3, &["RPUSH", "c", "x"]),
            Call(3, &["LPOP", "c"]),
            Call(3, &["EXEC"]),
            Info(3, "blocked_clients"),
            Call(3, &["RPUSH", "c", "y"]),
            Read(1),
        ],
    );
}

#[test]
fn timeouts_and_client_unblock() {
    if !require_or_skip(redis_server_available(), "redis-server") {
        return;
    }
    same_as_redis(
        "unblock",
        &[
            Quiet(0, &["HELLO", "3"]),
            Send(0, &["BLPOP", "q", "0"]),
            Send(1, &["BZPOPMAX", "z", "0"]),
            Pause,
            Info(3, "clients_in_timeout_table"),
            Unblock(3, 0, "TIMEOUT"),
            Read(0),
            Unblock(3, 1, "ERROR"),
            Read(1),
            Unblock(3, 1, "ERROR"),
            Send(0, &["BLMOVE", "q", "r", "LEFT", "LEFT", "5"]),
            Pause,
            Info(3, "clients_in_timeout_table"),
            Unblock(3, 0, "TIMEOUT"),
            Read(0),
            Call(3, &["PING"]),
        ],
    );
    // The timeout itself, on ours: within its time, not before.
    let ours = start_store(&[]);
    let mut c = Conn::new(ours.port);
    for (cmd, wait) in [(["BLPOP", "q", "0.3"], 300u64), (["BRPOP", "q", "0.05"], 50)] {
        let start = Instant::now();
        assert_eq!(c.call(&cmd), "(nil array)");
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(wait), "{cmd:?} answered after {took:?}");
        assert!(took < Duration::from_millis(wait + 1000), "{cmd:?} answered after {took:?}");
    }
}

#[test]
fn a_client_that_left_is_not_served_and_pipelined_commands_wait() {
    same_as_redis(
        "left",
        &[
            Send(0, &["BLPOP", "q", "0"]),
            Pause,
            Drop(0),
            Pause,
            Send(1, &["BLPOP", "q", "0"]),
            Send(1, &["PING"]),
            Send(1, &["LLEN", "q"]),
            Pause,
            Info(3, "blocked_clients"),
            Call(3, &["RPUSH", "q", "job"]),
            Read(1),
            Read(1),
            Read(1),
            Call(3, &["LLEN", "q"]),
        ],
    );
}

/// A blocked client on a writable replica is woken by its master's stream; one blocked on a
/// master that becomes a replica gets `-UNBLOCKED` and is disconnected (Redis 7.0).
#[test]
fn replicas_serve_from_the_stream_and_demotion_unblocks() {
    if !require_or_skip(redis_server_available(), "redis-server") {
        return;
    }
    let run_pair = |ours: bool| -> Vec<String> {
        let master = if ours { start_store(&[]) } else { start_redis() };
        let replica_args = ["--replicaof", "127.0.0.1", &master.port.to_string(), "--replica-read-only", "no"];
        let replicaof = format!("127.0.0.1 {}", master.port);
        let redis_args = ["--replicaof", &replicaof, "--replica-read-only", "no"];
        let replica = if ours { start_store(&replica_args) } else { start_redis_with(&redis_args) };
        let mut m = Conn::new(master.port);
        let mut r = Conn::new(replica.port);
        wait_for("replica in sync", || info_value(&mut r, "replication", "master_link_status") == "up");
        let mut out = Vec::new();
        r.send(&[b"BLPOP".to_vec(), b"q".to_vec(), b"0".to_vec()]);
        std::thread::sleep(Duration::from_millis(150));
        out.push(m.call(&["RPUSH", "q", "a", "b"]));
        out.push(r.read().unwrap_or_default());
        out.push(m.call(&["WAIT", "1", "2000"]));
        let mut r2 = Conn::new(replica.port);
        out.push(r2.call(&["LRANGE", "q", "0", "-1"]));
        // Demotion of a master with a blocked client.
        let mut b = Conn::new(master.port);
        b.send(&[b"BLPOP".to_vec(), b"nothing".to_vec(), b"0".to_vec()]);
        std::thread::sleep(Duration::from_millis(150));
        out.push(m.call(&["REPLICAOF", "127.0.0.1", &replica.port.to_string()]));
        out.push(b.read().unwrap_or_default());
        out.push(b.read().unwrap_or_else(|| "(closed)".into()));
        out
    };
    let ours = run_pair(true);
    let theirs = run_pair(false);
    assert_eq!(ours, theirs, "store-server (left) and redis-server (right) differ");
    assert_eq!(ours[1], r#"["q", "a"]"#);
}
