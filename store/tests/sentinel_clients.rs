//! Clients of our sentinel (`store-sentinel`), as applications use Sentinel: our servers (a
//! master and two replicas) watched by three of our sentinels at quorum 2.
//!
//! - redis-py's `redis.sentinel.Sentinel([...])`: `discover_master`, `discover_slaves`,
//!   `master_for('mymaster')` and `slave_for('mymaster')` work, in RESP2 and RESP3, and keep
//!   working across a failover (the same client objects, retried for at most 30 s). Skipped
//!   (or, in CI, failed) without python3 and redis-py.
//! - The replies client libraries rely on: ROLE is `["sentinel", ["mymaster"]]` (what redis-rs
//!   checks before trusting a sentinel), SENTINEL MASTERS has `flags` = `master` and numeric
//!   fields that parse (what redis-py's parser converts), SENTINEL CKQUORUM, Redis's
//!   unknown-command error, and PUBLISH refused but for hellos. Then a real redis-sentinel joins
//!   the same group and the same calls are compared with its replies.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const DOWN_AFTER_MS: u64 = 1500;
const FAILOVER_TIMEOUT_MS: u64 = 15000;
const WAIT: Duration = Duration::from_secs(60);

fn call(port: u16, args: &[&str]) -> String {
    Conn::new(port).call(args)
}

/// Every sentinel lists both replicas and the `others` other sentinels.
fn wait_discovered(sentinels: &[&ConfNode], replicas: &[u16], others: usize) {
    for s in sentinels {
        wait_for_within("replicas discovered", WAIT, || {
            let r = call(s.port, &["SENTINEL", "REPLICAS", "mymaster"]);
            replicas.iter().all(|p| r.contains(&format!("\"{p}\"")))
        });
        wait_for_within("sentinels discovered", WAIT, || {
            call(s.port, &["SENTINEL", "SENTINELS", "mymaster"]).matches("\"runid\"").count() == others
        });
    }
}

fn our_group() -> SentinelGroup {
    let g = sentinel_group(
        false,
        &[SentinelKind::Store, SentinelKind::Store, SentinelKind::Store],
        2,
        DOWN_AFTER_MS,
        FAILOVER_TIMEOUT_MS,
    );
    let master = g.servers[0].port;
    wait_for_within("both replicas in sync", WAIT, || {
        info_value(&mut Conn::new(master), "replication", "connected_slaves") == "2"
    });
    let sentinels: Vec<&ConfNode> = g.sentinels.iter().collect();
    wait_discovered(&sentinels, &[g.servers[1].port, g.servers[2].port], 2);
    g
}

/// The redis-py client: phase one before the failover, then (after "go" on stdin) phase two
/// with the same client objects. Prints `READY` between the phases and one `RESULT` line per
/// protocol at the end.
const REDIS_PY_SCRIPT: &str = r#"
import json, sys, time
import redis
from redis.sentinel import Sentinel

sentinel_ports = [int(p) for p in sys.argv[1].split(",")]
old_master = int(sys.argv[2])
replicas = sorted(int(p) for p in sys.argv[3].split(","))
RETRYABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ReadOnlyError)

def until(what, f, limit=30.0):
    deadline = time.time() + limit
    last = None
    while time.time() < deadline:
        try:
            v = f()
            if v:
                return v
            last = v
        except RETRYABLE as e:
            last = repr(e)
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {limit}s; last: {last!r}")

clients = {}
for proto in (2, 3):
    s = Sentinel([("127.0.0.1", p) for p in sentinel_ports], socket_timeout=2.0, protocol=proto,
                 sentinel_kwargs={"socket_timeout": 2.0, "protocol": proto})
    addr = s.discover_master("mymaster")
    assert addr == ("127.0.0.1", old_master), (proto, addr)
    slaves = sorted(p for _, p in s.discover_slaves("mymaster"))
    assert slaves == replicas, (proto, slaves)
    masters = s.sentinels[0].sentinel_masters()
    state = masters["mymaster"]
    assert state["is_master"] and not state["is_sdown"] and not state["is_odown"], (proto, state)
    assert state["num-other-sentinels"] == 2 and state["quorum"] == 2 and state["num-slaves"] == 2, (proto, state)
    m = s.master_for("mymaster", socket_timeout=2.0)
    r = s.slave_for("mymaster", socket_timeout=2.0)
    assert m.set(f"before:{proto}", "kept")
    assert m.execute_command("ROLE")[0] in (b"master", "master")
    until(f"RESP{proto} replica has the write", lambda: r.get(f"before:{proto}") == b"kept")
    assert r.execute_command("ROLE")[0] in (b"slave", "slave")
    clients[proto] = (s, m, r)

print("READY", flush=True)
assert sys.stdin.readline().strip() == "go"

for proto, (s, m, r) in clients.items():
    t0 = time.time()
    until(f"RESP{proto} master_for writes after the failover", lambda: m.set(f"after:{proto}", "failover"))
    took = time.time() - t0
    addr = s.discover_master("mymaster")
    assert addr[1] != old_master, (proto, addr)
    assert m.get(f"before:{proto}") == b"kept", proto
    assert m.execute_command("ROLE")[0] in (b"master", "master")
    until(f"RESP{proto} slave_for reads the write after the failover",
          lambda: r.get(f"after:{proto}") == b"failover" and r.execute_command("ROLE")[0] in (b"slave", "slave"))
    slaves = sorted(p for _, p in s.discover_slaves("mymaster"))
    print("RESULT " + json.dumps({"protocol": proto, "master": addr[1], "slaves": slaves, "write_after_s": round(took, 2)}), flush=True)
"#;

#[test]
fn redis_py_sentinel_clients_follow_a_failover() {
    if !require_or_skip(python_redis_available(), "python3 with redis-py") {
        return;
    }
    let mut g = our_group();
    let (p0, p1, p2) = (g.servers[0].port, g.servers[1].port, g.servers[2].port);
    let ports: Vec<String> = g.sentinels.iter().map(|s| s.port.to_string()).collect();
    let mut py = Command::new("python3")
        .args(["-c", REDIS_PY_SCRIPT, &ports.join(","), &p0.to_string(), &format!("{p1},{p2}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut ready = String::new();
    out.read_line(&mut ready).unwrap();
    if ready.trim() != "READY" {
        let o = py.wait_with_output().unwrap();
        panic!(
            "redis-py before the failover failed (files and logs in {}):\n{ready}{}",
            g.dir.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    // Fail the master over under the clients' feet.
    g.servers[0].kill();
    py.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let o = py.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!("{rest}{stderr}");
    assert!(
        o.status.success(),
        "redis-py across the failover failed (files and logs in {}):\n{rest}{stderr}",
        g.dir.display()
    );
    let results: Vec<&str> = rest.lines().filter(|l| l.starts_with("RESULT ")).collect();
    assert_eq!(results.len(), 2, "{rest}");

    // What redis-py found is what every sentinel says, and the writes are on that master.
    let new_port: u16 = call(g.sentinels[0].port, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"])
        .trim_matches(|c| c == '[' || c == ']')
        .rsplit(", ")
        .next()
        .unwrap()
        .trim_matches('"')
        .parse()
        .unwrap();
    assert!(new_port == p1 || new_port == p2, "new master {new_port}");
    let other = if new_port == p1 { p2 } else { p1 };
    for r in &results {
        assert!(r.contains(&format!("\"master\": {new_port},")), "{r}");
        // The dead old master may still be listed (as a replica not yet SDOWN), as Redis does.
        let slaves = r.split("\"slaves\": [").nth(1).and_then(|t| t.split(']').next()).unwrap_or("");
        assert!(slaves.split(", ").any(|p| p == other.to_string()), "{r}");
    }
    let mut m = Conn::new(new_port);
    assert_eq!(m.call(&["GET", "after:2"]), "\"failover\"");
    assert_eq!(m.call(&["GET", "after:3"]), "\"failover\"");
}

/// The numeric fields of SENTINEL MASTER(S) that redis-py converts with `int()`.
const NUMERIC: &[&str] = &[
    "link-pending-commands",
    "link-refcount",
    "last-ping-sent",
    "last-ok-ping-reply",
    "last-ping-reply",
    "down-after-milliseconds",
    "info-refresh",
    "role-reported-time",
    "config-epoch",
    "num-slaves",
    "num-other-sentinels",
    "quorum",
    "failover-timeout",
    "parallel-syncs",
];

/// SENTINEL MASTERS as one master's fields, checked for what clients parse.
fn masters_fields(c: &mut Conn, master_port: u16, sentinels: usize, who: &str) -> Vec<(String, String)> {
    let reply = c.call_value(&["SENTINEL", "MASTERS"]);
    let rows = reply.items();
    assert_eq!(rows.len(), 1, "{who}: {reply:?}");
    let fields = rows[0].pairs();
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(get("name"), "mymaster", "{who}: {fields:?}");
    assert_eq!(get("ip"), "127.0.0.1", "{who}");
    assert_eq!(get("port"), master_port.to_string(), "{who}");
    assert_eq!(get("flags"), "master", "{who}: {fields:?}");
    assert_eq!(get("role-reported"), "master", "{who}");
    assert_eq!(get("runid").len(), 40, "{who}: {fields:?}");
    for k in NUMERIC {
        assert!(get(k).parse::<i64>().is_ok(), "{who}: field {k} = {:?} in {fields:?}", get(k));
    }
    assert_eq!(get("num-slaves"), "2", "{who}");
    assert_eq!(get("num-other-sentinels"), (sentinels - 1).to_string(), "{who}");
    assert_eq!(get("quorum"), "2", "{who}");
    assert_eq!(get("down-after-milliseconds"), DOWN_AFTER_MS.to_string(), "{who}");
    assert_eq!(get("failover-timeout"), FAILOVER_TIMEOUT_MS.to_string(), "{who}");
    fields
}

/// The replies that do not depend on timing, for comparison between sentinels.
fn fixed_replies(port: u16) -> Vec<String> {
    let mut c = Conn::new(port);
    let mut v: Vec<String> = [
        &["ROLE"][..],
        &["SENTINEL", "CKQUORUM", "mymaster"],
        &["SENTINEL", "CKQUORUM", "nosuch"],
        &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "nosuch"],
        &["GET", "x"],
        &["SET", "a", "b"],
        &["PUBLISH", "foo", "bar"],
        &["PING"],
    ]
    .iter()
    .map(|args| c.call(args))
    .collect();
    // RESP3, as redis-py 8 speaks by default.
    let hello = c.call_value(&["HELLO", "3"]);
    assert!(matches!(hello, Resp::Map(_)), "HELLO 3 on {port}: {hello:?}");
    v.push(c.call(&["ROLE"]));
    v.push(c.call(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]));
    v
}

fn field_names(fields: &[(String, String)]) -> Vec<String> {
    fields.iter().map(|(k, _)| k.clone()).collect()
}

#[test]
fn sentinel_replies_clients_rely_on() {
    let g = our_group();
    let p0 = g.servers[0].port;
    for (i, s) in g.sentinels.iter().enumerate() {
        let who = format!("store-sentinel {i} (files and logs in {})", g.dir.display());
        let mut c = Conn::new(s.port);
        assert_eq!(c.call(&["ROLE"]), "[\"sentinel\", [\"mymaster\"]]", "{who}");
        assert_eq!(
            c.call(&["SENTINEL", "CKQUORUM", "mymaster"]),
            "+OK 3 usable Sentinels. Quorum and failover authorization can be reached",
            "{who}"
        );
        assert_eq!(c.call(&["GET", "x"]), "-ERR unknown command 'GET', with args beginning with: 'x' ", "{who}");
        assert_eq!(
            c.call(&["PUBLISH", "foo", "bar"]),
            "-ERR Only HELLO messages are accepted by Sentinel instances.",
            "{who}"
        );
        assert_eq!(
            c.call(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]),
            format!("[\"127.0.0.1\", \"{p0}\"]"),
            "{who}"
        );
        masters_fields(&mut c, p0, 3, &who);
        // RESP3: the same fields, as a map.
        assert!(matches!(c.call_value(&["HELLO", "3"]), Resp::Map(_)), "{who}");
        let reply = c.call_value(&["SENTINEL", "MASTERS"]);
        assert!(
            matches!(reply.items().first(), Some(Resp::Map(_))),
            "{who}: RESP3 SENTINEL MASTERS rows are maps: {reply:?}"
        );
        masters_fields(&mut c, p0, 3, &who);
    }

    // A real redis-sentinel joins the same group: everyone must see four sentinels, and it must
    // answer the same calls the same way.
    if !require_or_skip(redis_sentinel_available(), "redis-sentinel") {
        return;
    }
    let real = start_sentinel(SentinelKind::Redis, &g.dir, p0, 2, DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS);
    let all: Vec<&ConfNode> = g.sentinels.iter().chain(std::iter::once(&real)).collect();
    wait_discovered(&all, &[g.servers[1].port, g.servers[2].port], 3);
    let ours = g.sentinels[0].port;
    let who = format!("files and logs in {}", g.dir.display());
    assert_eq!(fixed_replies(ours), fixed_replies(real.port), "store-sentinel vs redis-sentinel ({who})");
    assert_eq!(
        call(ours, &["SENTINEL", "CKQUORUM", "mymaster"]),
        "+OK 4 usable Sentinels. Quorum and failover authorization can be reached"
    );
    for resp3 in [false, true] {
        let (mut a, mut b) = (Conn::new(ours), Conn::new(real.port));
        if resp3 {
            a.call(&["HELLO", "3"]);
            b.call(&["HELLO", "3"]);
        }
        let fa = masters_fields(&mut a, p0, 4, &format!("store-sentinel, resp3 {resp3} ({who})"));
        let fb = masters_fields(&mut b, p0, 4, &format!("redis-sentinel, resp3 {resp3} ({who})"));
        assert_eq!(field_names(&fa), field_names(&fb), "SENTINEL MASTERS fields, resp3 {resp3} ({who})");
        let same = [
            "name",
            "ip",
            "port",
            "runid",
            "flags",
            "role-reported",
            "config-epoch",
            "num-slaves",
            "num-other-sentinels",
            "quorum",
        ];
        for k in same {
            let v = |f: &[(String, String)]| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            assert_eq!(v(&fa), v(&fb), "SENTINEL MASTERS {k}, resp3 {resp3} ({who})");
        }
    }
}
