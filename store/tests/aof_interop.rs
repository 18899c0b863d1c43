//! The append-only file against the real thing: files ours writes pass redis-check-aof and load
//! into redis-server 7.0 with the same data; Redis's load into ours; `appendfsync always` loses
//! no acknowledged write to `kill -9`; a torn last command is cut (or, with
//! `aof-load-truncated no`, refused as Redis refuses it); `CONFIG SET appendonly yes` keeps the
//! dataset across a restart once its rewrite is done.
//!
//! Scenarios that need redis-server or redis-check-aof are skipped without them (failed in CI).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("store-aof-{tag}-{}-{}", std::process::id(), free_port()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn node(program: &str, d: &Path, extra: &str) -> ConfNode {
    let port = free_port();
    let text = format!("port {port}\ndir {}\nsave \"\"\nappendonly yes\n{extra}", d.display());
    ConfNode::start(program, &[], d, &format!("{port}.conf"), port, &text)
}

fn ours() -> &'static str {
    env!("CARGO_BIN_EXE_store-server")
}

/// A varied dataset: every type, TTLs, a transaction, several databases, rewritten commands.
fn write_dataset(c: &mut Conn, from: usize) {
    for i in from..from + 50 {
        assert_eq!(c.call(&["SET", &format!("s:{i}"), &format!("v{i}")]), "+OK");
        c.call(&["RPUSH", &format!("l:{}", i % 5), &format!("e{i}")]);
        c.call(&["HSET", &format!("h:{}", i % 3), &format!("f{i}"), &format!("{i}")]);
        c.call(&["SADD", &format!("set:{}", i % 4), &format!("m{i}")]);
        c.call(&["ZADD", "z", &format!("{}.5", i), &format!("z{i}")]);
    }
    c.call(&["SET", &format!("ttl:{from}"), "x", "EX", "1000"]);
    c.call(&["EXPIRE", "s:0", "2000"]);
    c.call(&["INCRBYFLOAT", "f", "1.25"]);
    c.call(&["DEL", &format!("s:{}", from + 1)]);
    c.call(&["MULTI"]);
    c.call(&["INCR", "counter"]);
    c.call(&["LPUSH", "l:0", "head"]);
    assert!(c.call(&["EXEC"]).starts_with('['));
    c.call(&["SELECT", "3"]);
    c.call(&["SET", &format!("db3:{from}"), "three"]);
    c.call(&["SELECT", "0"]);
}

/// Everything a client can see of the dataset, TTLs rounded to "has one".
fn snapshot(port: u16) -> BTreeMap<String, String> {
    let mut c = Conn::new(port);
    let mut out = BTreeMap::new();
    for db in ["0", "3"] {
        c.call(&["SELECT", db]);
        let keys = c.call_value(&["KEYS", "*"]);
        for k in keys.items() {
            let k = k.text().to_string();
            let ty = c.call(&["TYPE", &k]);
            let value = match ty.as_str() {
                "+string" => c.call(&["GET", &k]),
                "+list" => c.call(&["LRANGE", &k, "0", "-1"]),
                "+hash" => {
                    sorted(c.call_value(&["HGETALL", &k]).items().iter().map(|v| v.text().to_string()).collect())
                }
                "+set" => {
                    sorted(c.call_value(&["SMEMBERS", &k]).items().iter().map(|v| v.text().to_string()).collect())
                }
                "+zset" => c.call(&["ZRANGE", &k, "0", "-1", "WITHSCORES"]),
                other => other.to_string(),
            };
            let ttl = c.call(&["PTTL", &k]);
            let has_ttl = ttl.trim_start_matches(':').parse::<i64>().unwrap_or(-1) > 0;
            out.insert(format!("{db}/{k}"), format!("{ty} {value} ttl={has_ttl}"));
        }
    }
    out
}

fn sorted(mut v: Vec<String>) -> String {
    v.sort();
    v.join(",")
}

fn manifest(d: &Path) -> PathBuf {
    d.join("appendonlydir").join("appendonly.aof.manifest")
}

fn check_aof(d: &Path) -> String {
    let out = Command::new("redis-check-aof").arg(manifest(d)).output().expect("redis-check-aof");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "redis-check-aof failed:\n{text}");
    text
}

fn rewrite_done(port: u16) -> bool {
    let mut c = Conn::new(port);
    info_value(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
        && info_value(&mut c, "persistence", "aof_rewrite_scheduled") == "0"
}

#[test]
fn our_aof_passes_redis_check_aof_and_loads_into_redis() {
    if !require_or_skip(redis_server_available(), "redis-server") {
        return;
    }
    let d = dir("ours");
    let mut n = node(ours(), &d, "appendfsync always\n");
    let mut c = Conn::new(n.port);
    write_dataset(&mut c, 0);
    assert_eq!(c.call(&["BGREWRITEAOF"]), "+Background append only file rewriting started");
    wait_for("rewrite done", || rewrite_done(n.port));
    write_dataset(&mut c, 100);
    let before = snapshot(n.port);
    assert!(before.len() > 20, "{before:?}");
    drop(c);
    n.kill();
    let report = check_aof(&d);
    assert!(report.contains("All AOF files and manifest are valid"), "{report}");
    let redis = node("redis-server", &d, "");
    assert_eq!(snapshot(redis.port), before, "redis-server loaded our AOF differently");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn redis_aof_loads_into_ours() {
    if !require_or_skip(redis_server_available(), "redis-server") {
        return;
    }
    let d = dir("redis");
    let mut redis = node("redis-server", &d, "appendfsync always\n");
    let mut c = Conn::new(redis.port);
    write_dataset(&mut c, 0);
    c.call(&["BGREWRITEAOF"]);
    wait_for("redis rewrite done", || rewrite_done(redis.port));
    write_dataset(&mut c, 100);
    let before = snapshot(redis.port);
    drop(c);
    redis.kill();
    let n = node(ours(), &d, "");
    assert_eq!(snapshot(n.port), before, "we loaded Redis's AOF differently");
    // And what we append to it still passes Redis's checker.
    let mut c = Conn::new(n.port);
    write_dataset(&mut c, 200);
    assert!(check_aof(&d).contains("All AOF files and manifest are valid"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn appendfsync_always_loses_nothing_acknowledged_to_kill_9() {
    let d = dir("always");
    let mut n =
        node(ours(), &d, "appendfsync always\nauto-aof-rewrite-min-size 64kb\nauto-aof-rewrite-percentage 20\n");
    let port = n.port;
    let writer = std::thread::spawn(move || {
        let mut acked = Vec::new();
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return acked };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        use std::io::{Read, Write};
        for i in 0..100_000u64 {
            let (k, v) = (format!("k:{i}"), format!("{i}:{}", "x".repeat(100)));
            let req = format!("*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n", k.len(), v.len());
            if s.write_all(req.as_bytes()).is_err() {
                break;
            }
            let mut buf = [0u8; 5];
            match s.read_exact(&mut buf) {
                Ok(()) if &buf == b"+OK\r\n" => acked.push((k, v)),
                _ => break,
            }
        }
        acked
    });
    std::thread::sleep(Duration::from_millis(1500));
    n.kill();
    let acked = writer.join().unwrap();
    assert!(acked.len() > 100, "only {} writes acknowledged before the kill", acked.len());
    n.restart();
    let mut c = Conn::new(n.port);
    let missing: Vec<&String> =
        acked.iter().filter(|(k, v)| c.call(&["GET", k]) != format!("\"{v}\"")).map(|(k, _)| k).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_torn_last_command_is_cut_or_refused_as_redis_does() {
    let d = dir("torn");
    let mut n = node(ours(), &d, "appendfsync always\n");
    let mut c = Conn::new(n.port);
    c.call(&["SET", "a", "1"]);
    c.call(&["SET", "b", "2"]);
    drop(c);
    n.kill();
    let incr = d.join("appendonlydir").join("appendonly.aof.1.incr.aof");
    let intact = std::fs::metadata(&incr).unwrap().len();
    let mut bytes = std::fs::read(&incr).unwrap();
    bytes.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$5\r\nhal");
    std::fs::write(&incr, &bytes).unwrap();

    // aof-load-truncated no: refused, with Redis's advice, and the file left alone.
    let conf = n.conf.clone();
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{text}aof-load-truncated no\n")).unwrap();
    let out = Command::new(ours()).arg(&conf).output().unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "started with a torn AOF: {log}");
    assert!(log.contains("Unexpected end of file reading the append only file"), "{log}");
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), bytes.len() as u64);

    // Default (yes): the torn command is cut off the file, the rest loads.
    std::fs::write(&conf, &text).unwrap();
    n.restart();
    let mut c = Conn::new(n.port);
    assert_eq!(c.call(&["MGET", "a", "b", "c"]), "[\"1\", \"2\", (nil)]");
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), intact);
    drop(c);
    n.kill();
    if require_or_skip(Command::new("redis-check-aof").arg("--help").output().is_ok(), "redis-check-aof") {
        check_aof(&d);
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn config_set_appendonly_yes_keeps_the_dataset() {
    let d = dir("switch");
    let port = free_port();
    let text = format!("port {port}\ndir {}\nsave \"\"\nappendonly no\n", d.display());
    let mut n = ConfNode::start(ours(), &[], &d, "s.conf", port, &text);
    let mut c = Conn::new(port);
    for i in 0..200 {
        c.call(&["SET", &format!("k{i}"), &format!("{i}")]);
    }
    assert_eq!(c.call(&["CONFIG", "SET", "appendonly", "yes"]), "+OK");
    wait_for("first rewrite", || rewrite_done(port) && manifest(&d).exists());
    assert_eq!(c.call(&["SET", "after", "yes"]), "+OK");
    assert_eq!(info_value(&mut c, "persistence", "aof_enabled"), "1");
    drop(c);
    n.kill();
    std::fs::write(&n.conf, text.replace("appendonly no", "appendonly yes")).unwrap();
    n.restart();
    let mut c = Conn::new(port);
    assert_eq!(c.call(&["GET", "k199"]), "\"199\"");
    assert_eq!(c.call(&["GET", "after"]), "\"yes\"");
    assert_eq!(c.call(&["DBSIZE"]), ":201");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_commands_base_without_rdb_preamble_round_trips_with_redis() {
    if !require_or_skip(redis_server_available(), "redis-server") {
        return;
    }
    let extra = "appendfsync always\naof-use-rdb-preamble no\naof-timestamp-enabled yes\n";
    // Ours writes `.base.aof` (commands, 64 items per command, a #TS: line first).
    let d = dir("ours-resp");
    let mut n = node(ours(), &d, extra);
    let mut c = Conn::new(n.port);
    write_dataset(&mut c, 0);
    for i in 0..200 {
        c.call(&["RPUSH", "long", &format!("{i}")]);
    }
    assert_eq!(c.call(&["BGREWRITEAOF"]), "+Background append only file rewriting started");
    wait_for("rewrite done", || rewrite_done(n.port));
    write_dataset(&mut c, 100);
    let before = snapshot(n.port);
    drop(c);
    n.kill();
    let base = std::fs::read(d.join("appendonlydir").join("appendonly.aof.2.base.aof")).expect("a commands base");
    assert!(base.starts_with(b"#TS:"), "{:?}", String::from_utf8_lossy(&base[..40.min(base.len())]));
    let report = check_aof(&d);
    assert!(report.contains("Start to check BASE AOF (RESP format)"), "{report}");
    let redis = node("redis-server", &d, extra);
    assert_eq!(snapshot(redis.port), before, "redis-server loaded our commands base differently");
    drop(redis);
    // Redis's commands base loads into ours.
    let d2 = dir("redis-resp");
    let mut redis = node("redis-server", &d2, extra);
    let mut c = Conn::new(redis.port);
    write_dataset(&mut c, 0);
    c.call(&["BGREWRITEAOF"]);
    wait_for("redis rewrite done", || rewrite_done(redis.port));
    let before = snapshot(redis.port);
    drop(c);
    redis.kill();
    let n = node(ours(), &d2, extra);
    assert_eq!(snapshot(n.port), before, "we loaded Redis's commands base differently");
    let _ = std::fs::remove_dir_all(&d);
    let _ = std::fs::remove_dir_all(&d2);
}
