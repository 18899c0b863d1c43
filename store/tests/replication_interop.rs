//! Replication interop with real redis-server 7: a real replica of our master (full sync,
//! streaming, partial resync after the link breaks), and our replica of a real master.

mod common;

use common::*;

fn info_field(c: &mut Conn, field: &str) -> String {
    info_value(c, "replication", field)
}

#[test]
fn real_redis_replicates_from_us() {
    if !require_or_skip(redis_server_available(), "redis-server") {
        return;
    }
    let ours = start_store(&[]);
    let theirs = start_redis();
    let mut m = Conn::new(ours.port);
    let mut r = Conn::new(theirs.port);
    m.call(&["SET", "before", "1"]);
    m.call(&["RPUSH", "list", "a", "b"]);
    assert_eq!(r.call(&["REPLICAOF", "127.0.0.1", &ours.port.to_string()]), "+OK");
    wait_for("the real replica to sync", || r.call(&["GET", "before"]) == "\"1\"");
    // Streaming, across databases, with expiry rewritten to absolute times.
    m.call(&["SELECT", "3"]);
    m.call(&["SET", "in3", "x", "EX", "100"]);
    m.call(&["SELECT", "0"]);
    m.call(&["HSET", "h", "f", "v"]);
    m.call(&["INCRBYFLOAT", "fl", "0.1"]);
    // Wait for the last write: the earlier ones may arrive in separate segments, and the
    // stream is applied in order, so once it is there all are.
    wait_for("streamed writes", || r.call(&["GET", "fl"]) == "\"0.1\"");
    assert_eq!(r.call(&["HGET", "h", "f"]), "\"v\"");
    r.call(&["SELECT", "3"]);
    assert_eq!(r.call(&["GET", "in3"]), "\"x\"");
    let ttl: i64 = r.call(&["TTL", "in3"]).trim_start_matches(':').parse().unwrap();
    assert!((90..=100).contains(&ttl), "ttl {ttl}");
    r.call(&["SELECT", "0"]);
    // WAIT counts the real replica's acknowledgement.
    assert_eq!(m.call(&["WAIT", "1", "5000"]), ":1");
    // Break the link from the master side; the real replica must continue partially.
    let list = m.call(&["CLIENT", "LIST"]);
    let replica_addr = list
        .split("\\n")
        .find(|l| l.contains("cmd=psync") || l.contains("cmd=replconf"))
        .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("addr=")))
        .map(|s| s.to_string())
        .expect("the replica's connection is in CLIENT LIST");
    {
        let addr = replica_addr;
        m.call(&["CLIENT", "KILL", &addr]);
        m.call(&["SET", "after-break", "1"]);
        wait_for("the real replica to reconnect", || r.call(&["GET", "after-break"]) == "\"1\"");
        let mut stats = Conn::new(ours.port);
        let info = stats.call(&["INFO", "stats"]);
        assert!(info.contains("sync_partial_ok:1"), "expected a partial resync: {info}");
    }
    assert_eq!(m.call(&["DBSIZE"]), r.call(&["DBSIZE"]));
}

#[test]
fn we_replicate_from_real_redis() {
    if !require_or_skip(redis_server_available(), "redis-server") {
        return;
    }
    let theirs = start_redis();
    let ours = start_store(&[]);
    let mut m = Conn::new(theirs.port);
    let mut r = Conn::new(ours.port);
    for i in 0..600 {
        m.call(&["SADD", "bigset", &format!("member{i}")]);
    }
    m.call(&["ZADD", "z", "1.5", "a", "2", "b"]);
    m.call(&["SET", "n", "41"]);
    assert_eq!(r.call(&["REPLICAOF", "127.0.0.1", &theirs.port.to_string()]), "+OK");
    wait_for("our replica to sync", || r.call(&["SCARD", "bigset"]) == ":600");
    m.call(&["INCR", "n"]);
    m.call(&["SELECT", "5"]);
    m.call(&["LPUSH", "l5", "x"]);
    wait_for("streamed writes", || r.call(&["GET", "n"]) == "\"42\"");
    r.call(&["SELECT", "5"]);
    wait_for("the write in db 5", || r.call(&["LLEN", "l5"]) == ":1");
    assert!(r.call(&["SET", "x", "1"]).starts_with("-READONLY"));
    assert_eq!(info_field(&mut r, "master_link_status"), "up");
    assert_eq!(info_field(&mut r, "role"), "slave");
    // Promotion: writes are accepted again.
    assert_eq!(r.call(&["REPLICAOF", "NO", "ONE"]), "+OK");
    assert_eq!(r.call(&["SET", "x", "1"]), "+OK");
}

/// A script's writes reach a replica as their effects (wrapped in MULTI/EXEC, expiry made
/// absolute, SELECT inside the script honoured), never as the script: in both directions,
/// ours to Redis and Redis to ours. A script that writes and then fails keeps its writes.
#[test]
fn script_effects_replicate_both_ways() {
    if !require_or_skip(redis_server_available(), "redis-server") {
        return;
    }
    for ours_is_master in [true, false] {
        let (master, replica) =
            if ours_is_master { (start_store(&[]), start_redis()) } else { (start_redis(), start_store(&[])) };
        let mut m = Conn::new(master.port);
        let mut r = Conn::new(replica.port);
        assert_eq!(r.call(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]), "+OK");
        wait_for("the replica to sync", || info_field(&mut r, "master_link_status") == "up");
        let script = "redis.call('set', KEYS[1], ARGV[1], 'EX', 100) \
                      redis.call('incrbyfloat', KEYS[2], '1.5') \
                      redis.call('rpush', KEYS[3], math.random(1000), 'b') \
                      local l = redis.call('lrange', KEYS[3], 0, -1) \
                      redis.call('select', 5) redis.call('set', 'in5', 'x') \
                      return l";
        let reply = m.call(&["EVAL", script, "3", "s", "f", "l", "v"]);
        assert!(reply.starts_with('['), "{reply}");
        assert!(m.call(&["EVAL", "redis.call('set', 'kept', '1') error('after a write')", "0"]).starts_with("-ERR"));
        assert_eq!(m.call(&["WAIT", "1", "5000"]), ":1");
        for key in ["s", "f", "kept"] {
            assert_eq!(r.call(&["GET", key]), m.call(&["GET", key]), "{key}");
        }
        assert_eq!(r.call(&["LRANGE", "l", "0", "-1"]), reply, "the random element is the master's");
        let ttl: i64 = r.call(&["TTL", "s"]).trim_start_matches(':').parse().unwrap();
        assert!((90..=100).contains(&ttl), "ttl {ttl}");
        r.call(&["SELECT", "5"]);
        assert_eq!(r.call(&["GET", "in5"]), "\"x\"");
        assert_eq!(r.call(&["SCRIPT", "EXISTS", &store::scripting::sha1_hex(script.as_bytes())]), "[:0]");
    }
}
