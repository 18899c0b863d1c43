//! RDB interop with a real Redis 7.0 (`redis-server`, `redis-check-rdb`).
//!
//! The unit tests in `src/rdb/` prove that our encoder and decoder agree with each other; only a
//! real Redis can prove that they agree with *Redis*. So, in both directions:
//! - Redis → us: fill a redis-server with every type in its compact and large encodings
//!   (listpack, intset, quicklist with several, compressed and plain nodes, hashtable, skiplist),
//!   LZF strings, integers, expiries and several databases; `SAVE`; decode the file; compare
//!   every key with what the live server returns. The same values are also checked at the byte
//!   level: our `DUMP` encoding must equal Redis's where the encoding is deterministic, and
//!   Redis must `RESTORE` ours to a value with the same `DEBUG DIGEST-VALUE`.
//! - us → Redis: encode a dataset, `redis-check-rdb` it, start redis-server on it (with deep
//!   payload sanitisation on) and read everything back with ordinary commands and `redis-cli`.
//! - Old formats: Redis's own test files (zipmap, ziplists, quicklist v1, ZSET v1) are loaded by
//!   both and compared.
//!
//! Skips with a message when redis-server is not installed (and `CI` is unset).

mod common;
#[path = "../src/rdb/fixtures.rs"]
mod fixtures;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use store::db::{Hasher, Keyspace, Value, ZSet};
use store::rdb::{self, encode::dump_value, AuxFields, RdbWriter};
use store::sds::Sds;

const DATABASES: usize = 16;

fn hasher() -> Hasher {
    Hasher::with_seeds(5, 6, 7, 8)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        let p = std::env::temp_dir().join(format!("store-rdb-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn available() -> bool {
    let check_rdb = Command::new("redis-check-rdb").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    require_or_skip(redis_server_available() && check_rdb, "redis-server and redis-check-rdb")
}

/// redis-server on `dir/dbfile` (loaded at startup if present), deep payload sanitisation on.
fn start_redis_in(dir: &Path, dbfile: &str) -> Proc {
    let port = free_port();
    let log = dir.join("redis.log");
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .args(["--dir", dir.to_str().unwrap(), "--dbfilename", dbfile, "--logfile", log.to_str().unwrap()])
        .args(["--enable-debug-command", "yes", "--sanitize-dump-payload", "yes", "--databases", "16"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let mut p = Proc { child, port };
    let start = Instant::now();
    loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            panic!("redis-server exited ({status}); log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
            let mut b = [0u8; 64];
            if c.write_all(b"PING\r\n").is_ok() && matches!(c.read(&mut b), Ok(n) if b[..n].starts_with(b"+PONG")) {
                return p;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "redis-server on port {port} did not become ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command and insists it did not fail.
fn ok(c: &mut Conn, args: &[&[u8]]) -> String {
    let r = c.call_raw(args);
    assert!(!r.starts_with('-') && r != "(closed)", "{:?} failed: {r}", String::from_utf8_lossy(args[0]));
    r
}

fn int_reply(c: &mut Conn, args: &[&[u8]]) -> i64 {
    let r = ok(c, args);
    r.strip_prefix(':').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("not an integer reply: {r}"))
}

// ---- comparable values -----------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Canon {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// Sorted by member; scores compare with `==` (Redis prints -0 as "-0", but 0 == -0 anyway).
    ZSet(Vec<(Vec<u8>, f64)>),
}

fn canon(v: &Value) -> Canon {
    match v {
        Value::Str(s) => Canon::Str(s.to_vec()),
        Value::List(l) => Canon::List(l.iter().map(|e| e.to_vec()).collect()),
        Value::Set(s) => {
            let mut m: Vec<_> = s.iter().map(|e| e.to_vec()).collect();
            m.sort();
            Canon::Set(m)
        }
        Value::Hash(h) => {
            let mut m: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            m.sort();
            Canon::Hash(m)
        }
        Value::ZSet(z) => {
            let mut m: Vec<_> = z.scores.iter().map(|(k, s)| (k.to_vec(), *s)).collect();
            m.sort_by(|a, b| a.0.cmp(&b.0));
            Canon::ZSet(m)
        }
    }
}

/// The value of `key` as the live server reports it.
fn redis_canon(c: &mut Conn, key: &[u8]) -> Canon {
    let ty = ok(c, &[b"TYPE", key]);
    match ty.as_str() {
        "+string" => Canon::Str(c.call_bulk(&[b"GET", key]).unwrap()),
        "+list" => Canon::List(c.call_bulks(&[b"LRANGE", key, b"0", b"-1"])),
        "+set" => {
            let mut m = c.call_bulks(&[b"SMEMBERS", key]);
            m.sort();
            Canon::Set(m)
        }
        "+hash" => {
            let flat = c.call_bulks(&[b"HGETALL", key]);
            let mut m: Vec<_> = flat.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
            m.sort();
            Canon::Hash(m)
        }
        "+zset" => {
            let flat = c.call_bulks(&[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]);
            let mut m: Vec<_> = flat
                .chunks(2)
                .map(|p| (p[0].clone(), String::from_utf8_lossy(&p[1]).parse::<f64>().expect("score")))
                .collect();
            m.sort_by(|a, b| a.0.cmp(&b.0));
            Canon::ZSet(m)
        }
        other => panic!("unexpected TYPE {other} for {:?}", String::from_utf8_lossy(key)),
    }
}

fn redis_expire(c: &mut Conn, key: &[u8]) -> Option<i64> {
    match int_reply(c, &[b"PEXPIRETIME", key]) {
        -1 => None,
        -2 => panic!("key vanished"),
        ms => Some(ms),
    }
}

type Expected = BTreeMap<Vec<u8>, (Canon, Option<i64>)>;

/// Every key of database `db` on the live server equals `want` (values and deadlines).
fn assert_db_matches(c: &mut Conn, db: usize, want: &Expected, what: &str) {
    ok(c, &[b"SELECT", db.to_string().as_bytes()]);
    let mut keys = c.call_bulks(&[b"KEYS", b"*"]);
    keys.sort();
    let want_keys: Vec<Vec<u8>> = want.keys().cloned().collect();
    assert_eq!(
        keys.iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect::<Vec<_>>(),
        want_keys.iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect::<Vec<_>>(),
        "{what}: keys of db {db}"
    );
    assert_eq!(int_reply(c, &[b"DBSIZE"]), want.len() as i64, "{what}: DBSIZE of db {db}");
    for (k, (v, exp)) in want {
        let name = String::from_utf8_lossy(k);
        assert_eq!(&redis_canon(c, k), v, "{what}: value of {name:?} in db {db}");
        assert_eq!(&redis_expire(c, k), exp, "{what}: deadline of {name:?} in db {db}");
    }
}

fn expected_of(entries: &[(Sds, Value, Option<i64>)]) -> Expected {
    entries.iter().map(|(k, v, e)| (k.to_vec(), (canon(v), *e))).collect()
}

// ---- Redis → us ------------------------------------------------------------------------------

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn push_all(c: &mut Conn, cmd: &[u8], key: &[u8], items: &[Vec<u8>]) {
    for chunk in items.chunks(400) {
        let mut args: Vec<&[u8]> = vec![cmd, key];
        args.extend(chunk.iter().map(|e| &e[..]));
        ok(c, &args);
    }
}

fn fill_real_redis(c: &mut Conn) {
    let s = |v: &str| v.as_bytes().to_vec();
    // Strings: small, integer-encoded, too large for int32, leading zero, empty, long and
    // compressible, long and incompressible, binary.
    for (k, v) in [
        ("s:small", s("hello")),
        ("s:int", s("12345")),
        ("s:neg", s("-5")),
        ("s:bigint", s("9999999999")),
        ("s:i64min", s("-9223372036854775808")),
        ("s:lead", s("007")),
        ("s:empty", s("")),
        ("s:long", vec![b'x'; 1000]),
        ("s:text", s(&"The quick brown fox jumps over the lazy dog. ".repeat(40))),
        ("s:random", pseudo_random(300, 42)),
        ("s:binary", (0..=255u8).cycle().take(700).collect()),
    ] {
        ok(c, &[b"SET", k.as_bytes(), &v]);
    }
    // Lists: a small one, several 8 KiB nodes, a node holding one element larger than 8 KiB.
    push_all(c, b"RPUSH", b"l:small", &[s("a"), s("1"), s("-3"), s("hello"), s("5000000000"), s("")]);
    push_all(c, b"RPUSH", b"l:big", &(0..5000).map(|i| format!("item-{i}").into_bytes()).collect::<Vec<_>>());
    let mixed: Vec<Vec<u8>> = (0..300)
        .map(|i| if i == 150 { vec![b'M'; 10_000] } else { vec![b'a' + (i % 26) as u8; (i * 7) % 500] })
        .collect();
    push_all(c, b"RPUSH", b"l:mixed", &mixed);
    // Inner nodes LZF-compressed in memory (saved as compressed blobs).
    ok(c, &[b"CONFIG", b"SET", b"list-compress-depth", b"1"]);
    push_all(
        c,
        b"RPUSH",
        b"l:compressed",
        &(0..3000).map(|i| format!("compress-me-{i}-aaaaaaaaaaaaaaaa").into_bytes()).collect::<Vec<_>>(),
    );
    ok(c, &[b"CONFIG", b"SET", b"list-compress-depth", b"0"]);
    // Plain nodes (container 1) for elements at or above the packed threshold.
    ok(c, &[b"DEBUG", b"QUICKLIST-PACKED-THRESHOLD", b"100"]);
    push_all(c, b"RPUSH", b"l:plain", &[s("small1"), vec![b'p'; 200], s("small2"), vec![b'q'; 300], s("small3")]);
    ok(c, &[b"DEBUG", b"QUICKLIST-PACKED-THRESHOLD", b"1073741824"]);
    // Sets: intsets of 16 and 64 bits, too many integers for an intset, strings.
    push_all(c, b"SADD", b"set:int", &(1..=100).map(|i: i32| i.to_string().into_bytes()).collect::<Vec<_>>());
    push_all(c, b"SADD", b"set:wide", &[s("5000000000"), s("-5000000000"), s("1")]);
    push_all(c, b"SADD", b"set:int-big", &(0..600).map(|i: i32| (i * 3).to_string().into_bytes()).collect::<Vec<_>>());
    push_all(c, b"SADD", b"set:str", &[s("a"), s("b"), s("c")]);
    push_all(c, b"SADD", b"set:big", &(0..1000).map(|i| format!("m{i}").into_bytes()).collect::<Vec<_>>());
    // Hashes: listpack, too many fields, too long a value.
    let pairs = |n: usize, vlen: usize| -> Vec<Vec<u8>> {
        (0..n).flat_map(|i| [format!("f{i}").into_bytes(), format!("{i}-{}", "v".repeat(vlen)).into_bytes()]).collect()
    };
    push_all(c, b"HSET", b"h:small", &pairs(10, 3));
    push_all(c, b"HSET", b"h:big", &pairs(600, 5));
    push_all(c, b"HSET", b"h:longval", &pairs(3, 100));
    // Sorted sets: listpack with special scores, skiplist, long member.
    push_all(
        c,
        b"ZADD",
        b"z:small",
        &["1.5", "a", "-inf", "b", "+inf", "c", "0.1", "d", "1e300", "e", "0", "f", "-0", "g", "3", "h", "5e-324", "i"]
            .map(s),
    );
    let big: Vec<Vec<u8>> = (0..300)
        .flat_map(|i| [format!("{}", i as f64 * 0.5 - 20.0).into_bytes(), format!("zm{i}").into_bytes()])
        .collect();
    push_all(c, b"ZADD", b"z:big", &big);
    push_all(c, b"ZADD", b"z:longmember", &[s("1"), vec![b'L'; 100], s("2"), s("short")]);
    for (k, at) in [("s:small", "4102444800000"), ("h:small", "4102444800123"), ("l:big", "4102444800456")] {
        assert_eq!(int_reply(c, &[b"PEXPIREAT", k.as_bytes(), at.as_bytes()]), 1);
    }
    // Other databases.
    ok(c, &[b"SELECT", b"3"]);
    ok(c, &[b"SET", b"k3", b"v3"]);
    ok(c, &[b"RPUSH", b"l3", b"x"]);
    ok(c, &[b"SELECT", b"15"]);
    ok(c, &[b"HSET", b"h15", b"a", b"b"]);
    ok(c, &[b"PEXPIREAT", b"h15", b"4102444800999"]);
    ok(c, &[b"SELECT", b"0"]);

    // The encodings this test means to cover really are the ones Redis used.
    for (k, enc) in [
        ("s:int", "int"),
        ("s:long", "raw"),
        ("l:big", "quicklist"),
        ("set:int", "intset"),
        ("set:wide", "intset"),
        ("set:int-big", "hashtable"),
        ("h:small", "listpack"),
        ("h:big", "hashtable"),
        ("h:longval", "hashtable"),
        ("z:small", "listpack"),
        ("z:big", "skiplist"),
        ("z:longmember", "skiplist"),
    ] {
        assert_eq!(c.call_bulk(&[b"OBJECT", b"ENCODING", k.as_bytes()]).unwrap(), enc.as_bytes(), "encoding of {k}");
    }
}

#[test]
fn redis_rdb_loads_in_our_decoder() {
    if !available() {
        return;
    }
    let dir = TempDir::new("from-redis");
    let redis = start_redis_in(&dir.0, "dump.rdb");
    let mut c = Conn::new(redis.port);
    fill_real_redis(&mut c);
    assert_eq!(ok(&mut c, &[b"SAVE"]), "+OK");
    let file = std::fs::read(dir.0.join("dump.rdb")).unwrap();
    let data = rdb::decode(&file, DATABASES, &hasher()).unwrap_or_else(|e| panic!("decoding Redis's dump: {e}"));
    assert_eq!(data.version, 10);
    assert!(data.aux_field("redis-ver").is_some_and(|v| v.starts_with(b"7.")));
    assert_eq!(data.len, file.len());
    assert_eq!(data.dbs.iter().filter(|d| !d.is_empty()).count(), 3);
    for db in 0..DATABASES {
        assert_db_matches(&mut c, db, &expected_of(&data.dbs[db]), "Redis's SAVE decoded by us");
    }
    // Spot checks against what was written, independent of the live comparison.
    let db0: HashMap<&[u8], &(Sds, Value, Option<i64>)> = data.dbs[0].iter().map(|e| (&e.0[..], e)).collect();
    assert!(matches!(&db0[&b"s:long"[..]].1, Value::Str(s) if s[..] == [b'x'; 1000]));
    assert!(matches!(&db0[&b"l:big"[..]].1, Value::List(l) if l.len() == 5000 && &l[4999][..] == b"item-4999"));
    assert_eq!(db0[&b"s:small"[..]].2, Some(4_102_444_800_000));

    // Byte level: with compression off, our DUMP encoding of the decoded values equals Redis's
    // wherever Redis's encoding is deterministic (not hash-table order, not compressed nodes).
    ok(&mut c, &[b"CONFIG", b"SET", b"rdbcompression", b"no"]);
    ok(&mut c, &[b"SELECT", b"0"]);
    for k in [
        "s:small",
        "s:int",
        "s:neg",
        "s:bigint",
        "s:i64min",
        "s:lead",
        "s:empty",
        "s:long",
        "s:text",
        "s:random",
        "s:binary",
        "l:small",
        "l:big",
        "l:mixed",
        "set:int",
        "set:wide",
        "z:small",
        "z:big",
        "z:longmember",
    ] {
        let theirs = c.call_bulk(&[b"DUMP", k.as_bytes()]).unwrap();
        let ours = dump_value(&db0[k.as_bytes()].1, false).unwrap();
        assert!(
            theirs == ours,
            "DUMP of {k} differs:\n redis {:02x?}\n ours  {:02x?}",
            &theirs[..theirs.len().min(80)],
            &ours[..ours.len().min(80)]
        );
    }
    ok(&mut c, &[b"CONFIG", b"SET", b"rdbcompression", b"yes"]);

    // Semantic level: Redis RESTOREs our (compressed) payload of every value into an equal value.
    for (db, entries) in data.dbs.iter().enumerate() {
        ok(&mut c, &[b"SELECT", db.to_string().as_bytes()]);
        for (k, v, exp) in entries {
            let payload = dump_value(v, true).unwrap();
            // The digest covers the deadline too, so the copy gets the same one.
            let ttl = exp.unwrap_or(0).to_string();
            assert_eq!(ok(&mut c, &[b"RESTORE", b"__copy__", ttl.as_bytes(), &payload, b"REPLACE", b"ABSTTL"]), "+OK");
            let d = c.call_bulks(&[b"DEBUG", b"DIGEST-VALUE", &k[..], b"__copy__"]);
            assert_eq!(d[0], d[1], "RESTORE of our payload for {:?} changed the value", String::from_utf8_lossy(k));
            ok(&mut c, &[b"DEL", b"__copy__"]);
        }
    }
}

// ---- us → Redis ------------------------------------------------------------------------------

fn our_dataset(now: i64) -> Keyspace {
    let mut ks = Keyspace::new(DATABASES, [9, 8, 7, 6]);
    let h = ks.hasher();
    let sds = |b: &[u8]| Sds::new(b);
    let list = |items: Vec<Vec<u8>>| Value::List(Arc::new(items.iter().map(|e| sds(e)).collect::<VecDeque<_>>()));
    let set = |items: Vec<Vec<u8>>| {
        let mut s: HashSet<Sds, Hasher> = HashSet::with_hasher(h.clone());
        s.extend(items.iter().map(|e| sds(e)));
        Value::Set(Arc::new(s))
    };
    let hash = |items: Vec<(Vec<u8>, Vec<u8>)>| {
        let mut m: HashMap<Sds, Sds, Hasher> = HashMap::with_hasher(h.clone());
        m.extend(items.iter().map(|(f, v)| (sds(f), sds(v))));
        Value::Hash(Arc::new(m))
    };
    let zset = |items: Vec<(Vec<u8>, f64)>| {
        let mut z = ZSet::new(h.clone());
        for (m, s) in items {
            z.insert(sds(&m), s);
        }
        Value::ZSet(Arc::new(z))
    };
    let b = |s: &str| s.as_bytes().to_vec();
    let mut put = |db: usize, k: &str, v: Value, exp: Option<i64>| {
        ks.dbs[db].insert(Sds::from(k), v, false);
        if let Some(e) = exp {
            ks.dbs[db].set_expire(k.as_bytes(), e);
        }
    };
    for (k, v) in [
        ("str", b("hello")),
        ("int", b("42")),
        ("bigint", b("12345678901")),
        ("neg", b("-129")),
        ("lead", b("007")),
        ("minus0", b("-0")),
        ("empty", b("")),
        ("long", vec![b'c'; 5000]),
        ("text", b(&"lorem ipsum dolor sit amet ".repeat(30))),
        ("binary", (0..=255u8).cycle().take(600).collect()),
        ("random", pseudo_random(500, 7)),
    ] {
        put(0, k, Value::Str(Sds::new(&v)), if k == "str" { Some(now + 3_600_000) } else { None });
    }
    put(0, "gone", Value::Str(Sds::from("expired before the load")), Some(now - 1000));
    put(0, "list:small", list(vec![b("a"), b("1"), b("-1"), b(""), b("5000000000")]), None);
    put(0, "list:big", list((0..5000).map(|i| format!("item-{i}").into_bytes()).collect()), Some(now + 7_200_000));
    put(0, "list:plain", list(vec![b("s1"), vec![b'p'; 150], b("s2"), vec![b'q'; 1000], b("s3")]), None);
    put(0, "list:huge-elem", list(vec![b("x"), vec![b'H'; 20_000], b("y")]), None);
    put(0, "set:int", set((1..=50).map(|i: i32| i.to_string().into_bytes()).collect()), None);
    put(0, "set:wide", set(vec![i64::MIN.to_string().into_bytes(), i64::MAX.to_string().into_bytes(), b("0")]), None);
    put(0, "set:int600", set((0..600).map(|i: i32| (i * 7 - 2000).to_string().into_bytes()).collect()), None);
    put(0, "set:str", set(vec![b("a"), b("b"), b("007"), b("-0")]), None);
    put(0, "set:big", set((0..2000).map(|i| format!("member:{i}").into_bytes()).collect()), None);
    put(
        0,
        "hash:small",
        hash((0..20).map(|i| (format!("f{i}").into_bytes(), i.to_string().into_bytes())).collect()),
        None,
    );
    put(0, "hash:64", hash(vec![(vec![b'k'; 64], vec![b'v'; 64]), (b("n"), b("-7"))]), None);
    put(0, "hash:65", hash(vec![(b("k"), vec![b'v'; 65])]), None);
    put(
        0,
        "hash:big",
        hash((0..1000).map(|i| (format!("f{i}").into_bytes(), format!("value-{i}").into_bytes())).collect()),
        None,
    );
    put(
        0,
        "zset:small",
        zset(vec![
            (b("inf"), f64::INFINITY),
            (b("-inf"), f64::NEG_INFINITY),
            (b("negzero"), -0.0),
            (b("zero"), 0.0),
            (b("tenth"), 0.1),
            (b("huge"), 1e300),
            (b("tiny"), 5e-324),
            (b("pow62"), 4_611_686_018_427_387_904.0),
            (b("half"), 1.5),
            (b("int"), -42.0),
        ]),
        None,
    );
    put(0, "zset:big", zset((0..500).map(|i| (format!("zm{i}").into_bytes(), (i as f64) / 3.0)).collect()), None);
    put(0, "zset:longmember", zset(vec![(vec![b'L'; 70], 1.0), (b("s"), 2.0)]), None);
    put(1, "db1:str", Value::Str(Sds::from("one")), None);
    put(1, "db1:list", list(vec![b("x"), b("y")]), Some(now + 60_000));
    put(5, "db5:hash", hash(vec![(b("a"), b("b"))]), None);
    put(15, "db15:zset", zset(vec![(b("m"), 3.25)]), Some(now + 86_400_000));
    ks
}

#[test]
fn our_rdb_loads_in_redis() {
    if !available() {
        return;
    }
    let now = now_ms();
    let ks = our_dataset(now);
    let mut w = RdbWriter::new(Vec::new()).with_list_packed_threshold(100);
    let aux = AuxFields { ctime: now / 1000, used_mem: 1 << 20, ..AuxFields::default() };
    w.write_header(&aux).unwrap();
    for (i, db) in ks.dbs.iter().enumerate() {
        w.write_snapshot(i as u64, &db.snapshot()).unwrap();
    }
    let file = w.finish().unwrap();
    let dir = TempDir::new("to-redis");
    let path = dir.0.join("dump.rdb");
    std::fs::write(&path, &file).unwrap();

    let check = Command::new("redis-check-rdb").arg(&path).output().expect("run redis-check-rdb");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && report.contains("RDB looks OK"), "redis-check-rdb rejected our file:\n{report}");

    let redis = start_redis_in(&dir.0, "dump.rdb");
    let mut c = Conn::new(redis.port);
    for (i, db) in ks.dbs.iter().enumerate() {
        // A master drops keys whose deadline passed while loading; everything else must be there.
        let want: Expected = db
            .iter()
            .filter(|(_, _, e)| e.is_none_or(|e| e > now_ms()))
            .map(|(k, v, e)| (k.to_vec(), (canon(v), e)))
            .collect();
        assert_db_matches(&mut c, i, &want, "our RDB loaded by Redis");
    }
    ok(&mut c, &[b"SELECT", b"0"]);
    assert_eq!(int_reply(&mut c, &[b"EXISTS", b"gone"]), 0);
    for (k, enc) in [
        ("set:int", "intset"),
        ("hash:small", "listpack"),
        ("hash:65", "hashtable"),
        ("zset:small", "listpack"),
        ("zset:big", "skiplist"),
    ] {
        assert_eq!(
            c.call_bulk(&[b"OBJECT", b"ENCODING", k.as_bytes()]).unwrap(),
            enc.as_bytes(),
            "Redis's encoding of {k}"
        );
    }
    // And through redis-cli itself.
    let cli = |args: &[&str]| {
        let out =
            Command::new("redis-cli").args(["-p", &redis.port.to_string()]).args(args).output().expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["-n", "15", "DBSIZE"]), "1");
    assert_eq!(cli(&["-n", "1", "LRANGE", "db1:list", "0", "-1"]), "x\ny");
    assert_eq!(cli(&["ZRANGE", "zset:longmember", "0", "-1", "WITHSCORES"]), format!("{}\n1\ns\n2", "L".repeat(70)));
    let ttl: i64 = cli(&["TTL", "str"]).parse().unwrap();
    assert!((3500..=3600).contains(&ttl), "TTL of str is {ttl}");
    assert_eq!(cli(&["GET", "long"]), "c".repeat(5000));
    assert_eq!(cli(&["HGET", "hash:big", "f999"]), "value-999");
    assert_eq!(cli(&["SISMEMBER", "set:wide", &i64::MIN.to_string()]), "1");
}

// ---- old formats -----------------------------------------------------------------------------

#[test]
fn old_format_fixtures_load_the_same_in_redis_and_in_ours() {
    if !available() {
        return;
    }
    for (name, bytes) in fixtures::ALL {
        let dir = TempDir::new("fixture");
        let file = format!("{name}.rdb");
        std::fs::write(dir.0.join(&file), bytes).unwrap();
        let ours = rdb::decode(bytes, DATABASES, &hasher()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let redis = start_redis_in(&dir.0, &file);
        let mut c = Conn::new(redis.port);
        for db in 0..DATABASES {
            assert_db_matches(&mut c, db, &expected_of(&ours.dbs[db]), name);
        }
    }
}
