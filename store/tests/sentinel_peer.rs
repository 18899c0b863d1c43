//! What a Sentinel (ours or Redis's) relies on from a server, on the real binary, each checked
//! against redis-server 7 too when it is installed: the CLIENT KILL filters its promotion
//! transaction uses (`CLIENT KILL TYPE normal` must not drop replicas), and CLIENT LIST's view
//! of replica connections.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn field(c: &mut Conn, section: &str, name: &str) -> String {
    info_value(c, section, name)
}

/// A master with one replica (both ours, or both Redis's), the link up.
fn master_with_replica(redis: bool) -> (Proc, Proc) {
    let start = |extra: &[&str]| {
        if redis {
            start_redis_with(extra)
        } else {
            start_store(extra)
        }
    };
    let master = start(&["--repl-diskless-sync-delay", "0"]);
    let target = format!("127.0.0.1 {}", master.port);
    let replica = start(&["--replicaof", &target]);
    let mut r = Conn::new(replica.port);
    wait_for("replica link up", || field(&mut r, "replication", "master_link_status") == "up");
    (master, replica)
}

fn client_kill_filters_keep_replicas(redis: bool) {
    let who = if redis { "redis" } else { "store" };
    let (master, _replica) = master_with_replica(redis);
    let mut admin = Conn::new(master.port);
    let _normal = Conn::new(master.port);
    let mut subscriber = Conn::new(master.port);
    assert_eq!(subscriber.call(&["SUBSCRIBE", "events"]), "[\"subscribe\", \"events\", :1]");

    let replicas = admin.call(&["CLIENT", "LIST", "TYPE", "replica"]);
    assert_eq!(replicas.matches("id=").count(), 1, "{who}: {replicas}");
    assert!(replicas.contains("flags=S"), "{who}: {replicas}");
    assert_eq!(admin.call(&["CLIENT", "LIST", "TYPE", "pubsub"]).matches("id=").count(), 1, "{who}");

    // The sentinel's promotion transaction: only normal clients, then subscribers, are killed.
    assert_eq!(admin.call(&["CLIENT", "KILL", "TYPE", "normal"]), ":1", "{who}: the other normal client");
    assert_eq!(admin.call(&["CLIENT", "KILL", "TYPE", "pubsub"]), ":1", "{who}: the subscriber");
    assert_eq!(field(&mut admin, "replication", "connected_slaves"), "1", "{who}: replica kept");
    assert_eq!(field(&mut admin, "stats", "sync_full"), "1", "{who}: no resync");

    // The other filters.
    assert_eq!(admin.call(&["CLIENT", "KILL", "TYPE", "bogus"]), "-ERR Unknown client type 'bogus'", "{who}");
    assert_eq!(admin.call(&["CLIENT", "KILL", "USER", "nobody"]), "-ERR No such user 'nobody'", "{who}");
    assert_eq!(admin.call(&["CLIENT", "KILL", "ID", "0"]), "-ERR client-id should be greater than 0", "{who}");
    assert_eq!(admin.call(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "maybe"]), "-ERR syntax error", "{who}");
    assert_eq!(admin.call(&["CLIENT", "KILL", "USER", "default", "TYPE", "master"]), ":0", "{who}");
    let id = admin.call(&["CLIENT", "ID"]);
    let laddr = format!("127.0.0.1:{}", master.port);
    assert_eq!(admin.call(&["CLIENT", "KILL", "LADDR", &laddr, "TYPE", "normal"]), ":0", "{who}: skipme");
    assert_eq!(
        admin.call(&["CLIENT", "KILL", "ID", id.trim_start_matches(':'), "SKIPME", "no"]),
        ":1",
        "{who}: kills itself after replying"
    );
    assert!(admin.read().is_none(), "{who}: the connection closed");

    // TYPE replica drops the replica, which then resyncs.
    let mut admin = Conn::new(master.port);
    assert_eq!(admin.call(&["CLIENT", "KILL", "TYPE", "replica"]), ":1", "{who}");
}

#[test]
fn client_kill_filters_keep_replicas_ours() {
    client_kill_filters_keep_replicas(false);
}

#[test]
fn client_kill_filters_keep_replicas_redis() {
    if require_or_skip(redis_server_available(), "redis-server") {
        client_kill_filters_keep_replicas(true);
    }
}

#[test]
fn config_set_repl_backlog_size_resizes_the_live_backlog() {
    let (master, _replica) = master_with_replica(false);
    let mut c = Conn::new(master.port);
    let value = "v".repeat(1000);
    for i in 0..100 {
        assert_eq!(c.call(&["SET", &format!("k{i}"), &value]), "+OK");
    }
    let histlen = |c: &mut Conn| field(c, "replication", "repl_backlog_histlen").parse::<u64>().unwrap();
    assert!(histlen(&mut c) > 100_000, "the default 1 MB backlog holds all 100 writes");
    assert_eq!(c.call(&["CONFIG", "SET", "repl-backlog-size", "32kb"]), "+OK");
    assert_eq!(histlen(&mut c), 32 * 1024, "the live backlog keeps only its newest 32 KB");
    assert_eq!(field(&mut c, "replication", "repl_backlog_size"), "32768");
}

/// A server (ours or Redis's) started from a config file, as a sentinel's peers are.
fn start_from_file(redis: bool, extra: &str) -> (Proc, std::path::PathBuf) {
    use std::process::{Command, Stdio};
    let port = free_port();
    let dir = fresh_dir(port);
    let conf = std::path::Path::new(&dir).join("server.conf");
    std::fs::write(&conf, format!("# peer\nport {port}\ndir {dir}\nsave \"\"\nloglevel warning\n{extra}")).unwrap();
    let bin = if redis { "redis-server".to_string() } else { env!("CARGO_BIN_EXE_store-server").to_string() };
    let child = Command::new(bin).arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Proc { child, port }, conf)
}

fn both(mut check: impl FnMut(bool, &str)) {
    check(false, "store");
    if require_or_skip(redis_server_available(), "redis-server") {
        check(true, "redis");
    }
}

#[test]
fn deferred_commands_compose_inside_exec() {
    both(|redis, who| {
        let (server, conf) = start_from_file(redis, "");
        let mut c = Conn::new(server.port);
        // CONFIG REWRITE's reply keeps its place in EXEC's array.
        assert_eq!(c.call(&["MULTI"]), "+OK");
        assert_eq!(c.call(&["CONFIG", "REWRITE"]), "+QUEUED", "{who}");
        assert_eq!(c.call(&["SET", "b", "2"]), "+QUEUED");
        assert_eq!(c.call(&["GET", "b"]), "+QUEUED");
        assert_eq!(c.call(&["EXEC"]), "[+OK, +OK, \"2\"]", "{who}");
        // Two deferred commands and a WAIT (which never blocks inside EXEC) in one transaction.
        assert_eq!(c.call(&["CONFIG", "SET", "maxmemory", "7mb"]), "+OK");
        assert_eq!(c.call(&["MULTI"]), "+OK");
        for cmd in
            [&["CONFIG", "REWRITE"][..], &["WAIT", "1", "0"], &["INCR", "n"], &["CONFIG", "REWRITE"], &["INCR", "n"]]
        {
            assert_eq!(c.call(cmd), "+QUEUED", "{who}: {cmd:?}");
        }
        assert_eq!(c.call(&["EXEC"]), "[+OK, :0, :1, +OK, :2]", "{who}");
        let text = std::fs::read_to_string(&conf).unwrap();
        assert!(text.contains("maxmemory 7mb") || text.contains("maxmemory 7340032"), "{who}: {text}");
        assert_eq!(c.call(&["PING"]), "+PONG", "{who}: nothing left unanswered");
        // What cannot run inside a transaction is refused there, and aborts it.
        assert_eq!(c.call(&["MULTI"]), "+OK");
        for cmd in ["SAVE", "SHUTDOWN", "SYNC"] {
            assert_eq!(c.call(&[cmd]), "-ERR Command not allowed inside a transaction", "{who}: {cmd}");
        }
        assert_eq!(c.call(&["EXEC"]), "-EXECABORT Transaction discarded because of previous errors.", "{who}");
    });
}

#[test]
fn sentinel_promotion_transaction() {
    both(|redis, who| {
        let start = |extra: &[&str]| if redis { start_redis_with(extra) } else { start_store(extra) };
        let master = start(&["--repl-diskless-sync-delay", "0"]);
        let (replica, conf) = start_from_file(redis, &format!("replicaof 127.0.0.1 {}\n", master.port));
        let mut r = Conn::new(replica.port);
        wait_for("link up", || field(&mut r, "replication", "master_link_status") == "up");
        let mut bystander = Conn::new(replica.port);
        // What a sentinel sends to promote a replica: nothing runs before EXEC.
        assert_eq!(r.call(&["MULTI"]), "+OK");
        for cmd in [
            &["SLAVEOF", "NO", "ONE"][..],
            &["CONFIG", "REWRITE"],
            &["CLIENT", "KILL", "TYPE", "normal"],
            &["CLIENT", "KILL", "TYPE", "pubsub"],
        ] {
            assert_eq!(r.call(cmd), "+QUEUED", "{who}: {cmd:?}");
        }
        assert_eq!(field(&mut bystander, "replication", "role"), "slave", "{who}: SLAVEOF was queued");
        assert_eq!(r.call(&["EXEC"]), "[+OK, +OK, :1, :0]", "{who}");
        assert!(bystander.read().is_none(), "{who}: the normal client was killed");
        assert_eq!(field(&mut r, "replication", "role"), "master", "{who}");
        let text = std::fs::read_to_string(&conf).unwrap();
        assert!(!text.lines().any(|l| l.starts_with("replicaof")), "{who}: the rewrite dropped replicaof:\n{text}");
        // And back: re-pointed inside a transaction too.
        assert_eq!(r.call(&["MULTI"]), "+OK");
        assert_eq!(r.call(&["SLAVEOF", "127.0.0.1", &master.port.to_string()]), "+QUEUED");
        assert_eq!(r.call(&["CONFIG", "REWRITE"]), "+QUEUED");
        assert_eq!(r.call(&["EXEC"]), "[+OK, +OK]", "{who}");
        wait_for("link up again", || field(&mut r, "replication", "master_link_status") == "up");
        let text = std::fs::read_to_string(&conf).unwrap();
        assert!(text.contains(&format!("replicaof 127.0.0.1 {}", master.port)), "{who}:\n{text}");
    });
}

#[test]
fn wait_counts_acks_and_times_out() {
    // WAIT's latency (a round trip, not a polling period) is measured by ci/bench side by side
    // with redis-server; here only what it answers.
    let (master, _replica) = master_with_replica(false);
    let mut c = Conn::new(master.port);
    for i in 0..50 {
        assert_eq!(c.call(&["SET", &format!("k{i}"), "v"]), "+OK");
        assert_eq!(c.call(&["WAIT", "1", "0"]), ":1");
    }
    assert_eq!(c.call(&["SET", "last", "v"]), "+OK");
    assert_eq!(c.call(&["WAIT", "2", "100"]), ":1", "one replica, after the timeout");
}

#[test]
fn first_write_after_a_diskless_sync_from_redis_arrives_at_once() {
    // A redis-server master streams to a replica loaded from an `$EOF:` payload only after an ACK
    // that arrives once it has put the replica online; our replica ACKs eagerly until the stream
    // starts, so the first write is not held until its next periodic (1 s) ACK.
    if !require_or_skip(redis_server_available(), "redis-server") {
        return;
    }
    for _ in 0..3 {
        let master = start_redis_with(&["--repl-diskless-sync-delay", "0"]);
        let replica = start_store(&[]);
        let mut r = Conn::new(replica.port);
        assert_eq!(r.call(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]), "+OK");
        wait_for("link up", || field(&mut r, "replication", "master_link_status") == "up");
        let mut m = Conn::new(master.port);
        let start = Instant::now();
        assert_eq!(m.call(&["SET", "first", "write"]), "+OK");
        wait_for("the first write", || r.call(&["GET", "first"]) == "\"write\"");
        // Functional, not a speed target: a missed first ACK costs a whole ACK period (1 s).
        assert!(start.elapsed() < Duration::from_millis(900), "first write took {:?}", start.elapsed());
    }
}

#[test]
fn a_replica_is_listed_while_its_sync_waits() {
    // With Redis 7's defaults (diskless sync after repl-diskless-sync-delay 5), a replica is in
    // the master's INFO as soon as it asks for a sync: a sentinel looking at the master inside
    // that window learns about it.
    both(|redis, who| {
        let start = |extra: &[&str]| if redis { start_redis_with(extra) } else { start_store(extra) };
        let master = start(&["--repl-diskless-sync-delay", "5"]);
        let replica = start(&[]);
        let mut r = Conn::new(replica.port);
        assert_eq!(r.call(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]), "+OK");
        let mut m = Conn::new(master.port);
        let start_time = Instant::now();
        wait_for("the replica listed", || field(&mut m, "replication", "connected_slaves") == "1");
        assert!(start_time.elapsed() < Duration::from_secs(4), "{who}: listed only when the sync started");
        let repl = info(&mut m, "replication").replication().unwrap();
        assert_eq!(repl.replicas.len(), 1, "{who}: {repl:?}");
        assert_eq!(repl.replicas[0].state, "wait_bgsave", "{who}");
        assert_eq!(repl.replicas[0].port, replica.port, "{who}");
        // Writes meanwhile reach it after the snapshot, and WAIT does not count it yet.
        assert_eq!(m.call(&["SET", "k", "v"]), "+OK");
        assert_eq!(m.call(&["WAIT", "1", "100"]), ":0", "{who}");
        wait_for("link up", || field(&mut r, "replication", "master_link_status") == "up");
        wait_for("the write", || r.call(&["GET", "k"]) == "\"v\"");
    });
}

#[test]
fn psync_with_a_malformed_offset_is_an_error() {
    both(|redis, who| {
        let master = if redis { start_redis_with(&[]) } else { start_store(&[]) };
        let mut c = Conn::new(master.port);
        // What a sentinel sends to an instance that answered -BUSY.
        assert_eq!(c.call(&["SCRIPT", "KILL"]), "-NOTBUSY No scripts in execution right now.", "{who}");
        assert_eq!(c.call(&["PSYNC", "?", "notanumber"]), "-ERR value is not an integer or out of range", "{who}");
        assert_eq!(c.call(&["PING"]), "+PONG", "{who}: still a normal client");
        assert_eq!(field(&mut c, "replication", "connected_slaves"), "0", "{who}");
    });
}

#[test]
fn the_link_to_the_master_is_a_client() {
    both(|redis, who| {
        let (_master, replica) = master_with_replica(redis);
        let mut r = Conn::new(replica.port);
        let masters = r.call(&["CLIENT", "LIST", "TYPE", "master"]);
        assert_eq!(masters.matches("id=").count(), 1, "{who}: {masters}");
        assert!(masters.contains("flags=M"), "{who}: {masters}");
        // Killing it drops the link, which reconnects (a partial resync).
        assert_eq!(r.call(&["CLIENT", "KILL", "TYPE", "master"]), ":1", "{who}");
        wait_for("link up again", || {
            field(&mut r, "replication", "master_link_status") == "up"
                && r.call(&["CLIENT", "LIST", "TYPE", "master"]).matches("id=").count() == 1
        });
    });
}

#[test]
fn a_writable_replica_expires_the_keys_its_clients_wrote() {
    // Redis 7 tracks keys written with a TTL on a writable replica and expires them there: the
    // master never sends their DEL.
    both(|redis, who| {
        let (_master, replica) = master_with_replica(redis);
        let mut r = Conn::new(replica.port);
        assert_eq!(r.call(&["CONFIG", "SET", "replica-read-only", "no"]), "+OK");
        assert_eq!(r.call(&["SET", "local", "v", "PX", "100"]), "+OK", "{who}");
        assert_eq!(r.call(&["SET", "kept", "v"]), "+OK", "{who}");
        wait_for("the replica-written key expired", || r.call(&["DBSIZE"]) == ":1");
        assert_eq!(r.call(&["EXISTS", "local", "kept"]), ":1", "{who}");
        let role = r.call(&["ROLE"]);
        assert!(role.contains("\"connected\""), "{who}: {role}");
    });
}

#[test]
fn a_transaction_cannot_write_to_a_read_only_replica() {
    // Found by the simulator's topology changes: writes queued in MULTI on a replica were run
    // by EXEC past the READONLY check.
    both(|redis, who| {
        let (master, replica) = master_with_replica(redis);
        let mut r = Conn::new(replica.port);
        assert_eq!(r.call(&["MULTI"]), "+OK");
        assert_eq!(r.call(&["SET", "a", "1"]), "-READONLY You can't write against a read only replica.", "{who}");
        assert_eq!(r.call(&["EXEC"]), "-EXECABORT Transaction discarded because of previous errors.", "{who}");
        assert_eq!(r.call(&["GET", "a"]), "(nil)", "{who}");
        // A master that becomes a replica between MULTI and EXEC refuses the queued writes.
        let mut m = Conn::new(master.port);
        assert_eq!(m.call(&["MULTI"]), "+OK");
        assert_eq!(m.call(&["SET", "b", "1"]), "+QUEUED");
        let mut admin = Conn::new(master.port);
        assert_eq!(admin.call(&["REPLICAOF", "127.0.0.1", &replica.port.to_string()]), "+OK");
        assert_eq!(
            m.call(&["EXEC"]),
            "-EXECABORT Transaction discarded because of: READONLY You can't write against a read only replica.",
            "{who}"
        );
    });
}
