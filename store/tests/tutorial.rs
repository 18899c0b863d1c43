//! The classic replication tutorial, verbatim with our binary: three instances from config
//! files, a replica configured with `slaveof`, another attached with SLAVEOF at run time,
//! INFO replication, writes on the master seen on the replicas, READONLY on a replica,
//! SLAVEOF NO ONE and re-pointing the other replica, and a restarted replica catching up with a
//! partial resync (its replication ID and offset survive in its RDB).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn start_with_config(dir: &std::path::Path, name: &str, text: &str) -> Proc {
    let port: u16 = text.lines().find_map(|l| l.strip_prefix("port ")).unwrap().trim().parse().unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_store-server"))
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start store-server");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "{name} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Proc { child, port }
}

fn field(c: &mut Conn, section: &str, name: &str) -> String {
    info_value(c, section, name)
}

#[test]
fn classic_tutorial() {
    let dir = std::env::temp_dir().join(format!("store-tutorial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let conf = |port: u16, extra: &str| {
        let d = dir.join(port.to_string());
        std::fs::create_dir_all(&d).unwrap();
        format!("# tutorial instance\nport {port}\ndir {}\nsave 900 1\nloglevel warning\n{extra}", d.display())
    };
    let _master = start_with_config(&dir, "6379.conf", &conf(p1, ""));
    let mut replica1 = start_with_config(&dir, "6380.conf", &conf(p2, &format!("slaveof 127.0.0.1 {p1}\n")));
    let _replica2 = start_with_config(&dir, "6381.conf", &conf(p3, ""));
    let (mut m, mut r1, mut r2) = (Conn::new(p1), Conn::new(p2), Conn::new(p3));
    assert_eq!(r2.call(&["SLAVEOF", "127.0.0.1", &p1.to_string()]), "+OK");
    m.call(&["SET", "greeting", "hello"]);
    wait_for("replicas to see the write", || {
        r1.call(&["GET", "greeting"]) == "\"hello\"" && r2.call(&["GET", "greeting"]) == "\"hello\""
    });
    assert_eq!(field(&mut m, "replication", "role"), "master");
    assert_eq!(field(&mut m, "replication", "connected_slaves"), "2");
    assert_eq!(field(&mut r1, "replication", "role"), "slave");
    assert_eq!(field(&mut r1, "replication", "master_link_status"), "up");
    assert!(r1.call(&["SET", "greeting", "nope"]).starts_with("-READONLY"));

    // A restarted replica catches up with a partial resync.
    // SHUTDOWN saves (save points are configured), with the replication ID and offset.
    r1.call(&["SHUTDOWN"]);
    let _ = replica1.child.wait();
    m.call(&["SET", "while-down", "1"]);
    replica1 = start_with_config(&dir, "6380.conf", &conf(p2, &format!("slaveof 127.0.0.1 {p1}\n")));
    let mut r1 = Conn::new(replica1.port);
    wait_for("the restarted replica to catch up", || r1.call(&["GET", "while-down"]) == "\"1\"");
    assert_eq!(field(&mut m, "stats", "sync_partial_ok"), "1", "the restarted replica continued partially");
    // Replica 1 started as a replica with no data and asked `PSYNC ? -1`; replica 2 started as
    // a master and, as Redis does on SLAVEOF, offered its own history, which the master could
    // not continue: one failed partial attempt, as Redis counts it.
    assert_eq!(field(&mut m, "stats", "sync_full"), "2");
    assert_eq!(field(&mut m, "stats", "sync_partial_err"), "1");

    // Failover by hand: promote replica 2, re-point replica 1 to it.
    assert_eq!(r2.call(&["SLAVEOF", "NO", "ONE"]), "+OK");
    assert_eq!(r2.call(&["SET", "after-failover", "yes"]), "+OK");
    assert_eq!(r1.call(&["SLAVEOF", "127.0.0.1", &p3.to_string()]), "+OK");
    wait_for("the re-pointed replica to follow the new master", || r1.call(&["GET", "after-failover"]) == "\"yes\"");
    assert_eq!(r1.call(&["GET", "greeting"]), "\"hello\"");
    let _ = std::fs::remove_dir_all(&dir);
}
