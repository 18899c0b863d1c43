//! FAILOVER (Redis 6.2's coordinated failover) and CLIENT PAUSE, side by side with redis-server
//! 7: the same errors for the same misuse, and a handover between every pairing of our server
//! and Redis's in which no write the old master acknowledged is missing from the new one.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Ours,
    Redis,
}

fn start(kind: Kind, extra: &[&str]) -> Proc {
    match kind {
        Kind::Ours => start_store(extra),
        Kind::Redis => start_redis_with(extra),
    }
}

/// The misuse cases, answered identically by both servers.
#[test]
fn failover_and_pause_errors_match_redis() {
    if !require_or_skip(redis_server_available(), "redis-server") {
        return;
    }
    let (ours, theirs) = (start_store(&[]), start_redis());
    let (mut a, mut b) = (Conn::new(ours.port), Conn::new(theirs.port));
    let cases: &[&[&str]] = &[
        &["FAILOVER"],
        &["FAILOVER", "ABORT"],
        &["FAILOVER", "TIMEOUT", "0"],
        &["FAILOVER", "TIMEOUT", "x"],
        &["FAILOVER", "TIMEOUT", "10", "TIMEOUT", "20"],
        &["FAILOVER", "FORCE"],
        &["FAILOVER", "TO", "127.0.0.1"],
        &["FAILOVER", "TO", "127.0.0.1", "notaport"],
        &["FAILOVER", "ABORT", "now"],
        &["FAILOVER", "bogus"],
        &["CLIENT", "PAUSE"],
        &["CLIENT", "PAUSE", "10", "READS"],
        &["CLIENT", "PAUSE", "-1"],
        &["CLIENT", "PAUSE", "x", "WRITE"],
        &["CLIENT", "PAUSE", "0"],
        &["CLIENT", "UNPAUSE"],
        &["CLIENT", "UNPAUSE", "x"],
    ];
    for case in cases {
        assert_eq!(a.call(case), b.call(case), "{case:?}");
    }
    // With a replica, FAILOVER's own checks: a target that is not a replica, FORCE without TO.
    let replica = start_store(&["--replicaof", &format!("127.0.0.1 {}", ours.port)]);
    let replica_redis = start_redis_with(&["--replicaof", &format!("127.0.0.1 {}", theirs.port)]);
    wait_for("replicas online", || {
        info_value(&mut a, "replication", "slave0").contains("online")
            && info_value(&mut b, "replication", "slave0").contains("online")
    });
    for case in [&["FAILOVER", "TO", "127.0.0.1", "1"][..], &["FAILOVER", "FORCE", "TIMEOUT", "100"][..]] {
        assert_eq!(a.call(case), b.call(case), "{case:?}");
    }
    let mut r = Conn::new(replica.port);
    let mut rr = Conn::new(replica_redis.port);
    assert_eq!(r.call(&["FAILOVER"]), rr.call(&["FAILOVER"]));
}

/// A client writes without pause while the master hands over; every write it saw acknowledged
/// must be on the new master, and the old one must follow it.
fn handover(master_kind: Kind, replica_kind: Kind) {
    let master = start(master_kind, &[]);
    let replica = start(replica_kind, &["--replicaof", &format!("127.0.0.1 {}", master.port)]);
    let mut m = Conn::new(master.port);
    let mut r = Conn::new(replica.port);
    wait_for("the replica online", || info_value(&mut m, "replication", "slave0").contains("online"));
    let stop = Arc::new(AtomicBool::new(false));
    let (port, flag) = (master.port, stop.clone());
    let writer = std::thread::spawn(move || {
        let mut c = Conn::new(port);
        let mut acked = Vec::new();
        let mut n = 0u64;
        while !flag.load(Ordering::Relaxed) && n < 200_000 {
            n += 1;
            let reply = c.call(&["SET", &format!("w:{n}"), &n.to_string()]);
            if reply == "+OK" {
                acked.push(n);
            } else {
                // READONLY once the old master is a replica: the handover is done.
                assert!(reply.starts_with("-READONLY"), "unexpected reply to a write: {reply}");
                break;
            }
        }
        acked
    });
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(m.call(&["FAILOVER", "TIMEOUT", "10000"]), "+OK");
    wait_for("the roles to swap", || {
        info_value(&mut r, "replication", "role") == "master"
            && info_value(&mut m, "replication", "master_link_status") == "up"
            && info_value(&mut m, "replication", "master_failover_state") == "no-failover"
    });
    stop.store(true, Ordering::Relaxed);
    let acked = writer.join().expect("writer");
    assert!(!acked.is_empty(), "the writer got no write through before the failover");
    for n in &acked {
        assert_eq!(r.call(&["GET", &format!("w:{n}")]), format!("\"{n}\""), "acknowledged write {n} lost");
    }
    assert_eq!(info_value(&mut m, "replication", "role"), "slave");
    // The old master continued partially from the new one (PSYNC2 through the FAILOVER PSYNC).
    r.call(&["SET", "after", "1"]);
    wait_for("the old master to follow", || m.call(&["GET", "after"]) == "\"1\"");
    eprintln!(
        "{master_kind:?} master -> {replica_kind:?} replica: {} acknowledged writes kept, handover in {:?}",
        acked.len(),
        started.elapsed()
    );
}

#[test]
fn failover_hands_over_between_our_servers() {
    handover(Kind::Ours, Kind::Ours);
}

#[test]
fn failover_hands_over_to_and_from_redis() {
    if !require_or_skip(redis_server_available(), "redis-server") {
        return;
    }
    handover(Kind::Ours, Kind::Redis);
    handover(Kind::Redis, Kind::Ours);
}

/// FAILOVER TIMEOUT while the only replica cannot acknowledge (its process is stopped with
/// SIGSTOP): the failover is aborted at the timeout, the held writes go through, the node stays
/// master.
#[test]
fn failover_timeout_aborts_and_writes_resume() {
    for kind in [Kind::Ours, Kind::Redis] {
        if matches!(kind, Kind::Redis) && !require_or_skip(redis_server_available(), "redis-server") {
            return;
        }
        let master = start(kind, &[]);
        let replica = start(kind, &["--replicaof", &format!("127.0.0.1 {}", master.port)]);
        let mut m = Conn::new(master.port);
        wait_for("the replica online", || info_value(&mut m, "replication", "slave0").contains("online"));
        let mut r = Conn::new(replica.port);
        // Hold the replica's acknowledgements back: its process is stopped.
        let pid = replica.child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
        m.call(&["SET", "k", "1"]);
        assert_eq!(m.call(&["FAILOVER", "TIMEOUT", "500"]), "+OK");
        assert_eq!(info_value(&mut m, "replication", "master_failover_state"), "waiting-for-sync");
        // A write from another client waits for the pause, then goes through after the abort.
        let mut w = Conn::new(master.port);
        let begun = Instant::now();
        assert_eq!(w.call(&["SET", "k", "2"]), "+OK", "{kind:?}");
        assert!(begun.elapsed() >= Duration::from_millis(300), "{kind:?}: the write did not wait for the pause");
        assert_eq!(info_value(&mut m, "replication", "master_failover_state"), "no-failover");
        assert_eq!(info_value(&mut m, "replication", "role"), "master");
        assert!(std::process::Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
        wait_for("the replica to catch up", || r.call(&["GET", "k"]) == "\"2\"");
    }
}

/// CLIENT PAUSE WRITE holds writes (and PUBLISH) but not reads; CLIENT UNPAUSE releases them.
#[test]
fn client_pause_write_holds_writes_until_unpause() {
    for kind in [Kind::Ours, Kind::Redis] {
        if matches!(kind, Kind::Redis) && !require_or_skip(redis_server_available(), "redis-server") {
            return;
        }
        let server = start(kind, &[]);
        let mut admin = Conn::new(server.port);
        admin.call(&["SET", "k", "before"]);
        assert_eq!(admin.call(&["CLIENT", "PAUSE", "100000", "WRITE"]), "+OK");
        assert_eq!(admin.call(&["GET", "k"]), "\"before\"", "{kind:?}: reads go on");
        let port = server.port;
        let writer = std::thread::spawn(move || {
            let mut c = Conn::new(port);
            let begun = Instant::now();
            let reply = c.call(&["SET", "k", "after"]);
            (reply, begun.elapsed())
        });
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(admin.call(&["GET", "k"]), "\"before\"", "{kind:?}: a paused write ran");
        assert_eq!(admin.call(&["CLIENT", "UNPAUSE"]), "+OK");
        let (reply, waited) = writer.join().expect("writer");
        assert_eq!(reply, "+OK");
        assert!(waited >= Duration::from_millis(300), "{kind:?}: waited only {waited:?}");
        assert_eq!(admin.call(&["GET", "k"]), "\"after\"");
    }
}
