//! Sentinels failing over servers, as the classic tutorial runs it: a master and two replicas
//! started from config files, sentinels configured with only the master. The sentinels must
//! discover the replicas (and each other), mark a killed replica `+sdown` and `-sdown` when it
//! returns, fail over a killed master with the tutorial's events in order, never mark either live
//! replica `+sdown` during the failover (the promotion and reconfiguration transactions end with
//! `CLIENT KILL TYPE pubsub`, which drops every sentinel's hello link to that replica: Redis
//! reconnects it at its next timer tick), make the other replica follow the promoted one, keep the
//! data written before the kill, and convert the restarted old master into a replica
//! (`+convert-to-slave`). Afterwards every sentinel's config file names the new master and keeps
//! its `sentinel myid`, and a sentinel restarted on its file answers with the new master and the
//! same id. Event checks that fail are reported together at the end of a scenario.
//!
//! The sentinels are real redis-sentinel 7, ours (`store-sentinel`, or `store-server --sentinel`),
//! or a mix of both that must discover each other, vote and fail over together, whichever leads.
//! The all-redis-sentinel scenarios run twice: with our servers, and with redis-server in their
//! place, so that a failure of ours is ours and not the test's. Scenarios that need redis-sentinel
//! or redis-server are skipped (or, in CI, failed) without them.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// Sentinel timings: Redis's own sentinel tests use a few seconds; these keep a run short.
const DOWN_AFTER_MS: u64 = 1500;
const FAILOVER_TIMEOUT_MS: u64 = 15000;
/// How long a failover (or discovery) may take before the test gives up.
const EVENT_WAIT: Duration = Duration::from_secs(60);

/// Every event a sentinel publishes (`PSUBSCRIBE *`), as "channel payload" lines, in order,
/// each with the time it arrived.
struct Events {
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Events {
    fn subscribe(port: u16) -> Events {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"PSUBSCRIBE *\r\n").unwrap();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                let now = Instant::now();
                while let Some((msg, used)) = parse_pmessage(&buf) {
                    buf.drain(..used);
                    if let Some(m) = msg {
                        sink.lock().unwrap().push((now, m));
                    }
                }
            }
        });
        Events { seen }
    }

    fn lines(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(|(_, e)| e.clone()).collect()
    }

    /// The first event on `channel` whose payload contains `needle`, and when it arrived.
    fn find(&self, channel: &str, needle: &str) -> Option<(Instant, String)> {
        let prefix = format!("{channel} ");
        self.seen.lock().unwrap().iter().find(|(_, e)| e.starts_with(&prefix) && e.contains(needle)).cloned()
    }

    /// Waits until an event on `channel` whose payload contains `needle` arrives.
    fn wait(&self, channel: &str, needle: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some((_, e)) = self.find(channel, needle) {
                return e;
            }
            assert!(
                start.elapsed() < EVENT_WAIT,
                "no '{channel}' event with '{needle}' within {EVENT_WAIT:?}; events:\n{}",
                self.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn has(&self, channel: &str, needle: &str) -> bool {
        self.find(channel, needle).is_some()
    }

    /// Events received so far.
    fn len(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Events received after the first `n`.
    fn since(&self, n: usize) -> Vec<String> {
        self.lines().get(n..).map(|v| v.to_vec()).unwrap_or_default()
    }

    fn channels(&self) -> Vec<String> {
        self.lines().iter().map(|e| e.split(' ').next().unwrap_or("").to_string()).collect()
    }
}

/// SDOWN must wait down-after-milliseconds from when the instance stopped answering: each
/// sentinel's `+sdown` for `needle` (if it published one) may not arrive sooner than that after
/// `killed`, less a margin for a PING already in flight at the kill.
fn check_sdown_not_early(
    all_events: &[Events],
    kinds: &[SentinelKind],
    needle: &str,
    killed: Instant,
    findings: &mut Vec<String>,
) {
    let least = Duration::from_millis(DOWN_AFTER_MS - 200);
    for (e, kind) in all_events.iter().zip(kinds) {
        if let Some((at, line)) = e.find("+sdown", needle) {
            let after = at.saturating_duration_since(killed);
            if after < least {
                findings.push(format!(
                    "{} published '+sdown {line}' {} ms after the kill, with down-after-milliseconds {DOWN_AFTER_MS}",
                    kind.label(),
                    after.as_millis()
                ));
            }
        }
    }
}

/// Parses one RESP2 array of bulk strings from the front of `buf`: Some((Some("channel
/// payload"), used)) for a pmessage, Some((None, used)) for anything else, None if incomplete.
fn parse_pmessage(buf: &[u8]) -> Option<(Option<String>, usize)> {
    let mut pos = 0;
    let line = |pos: &mut usize| -> Option<String> {
        let end = buf[*pos..].windows(2).position(|w| w == b"\r\n")? + *pos;
        let l = String::from_utf8_lossy(&buf[*pos..end]).into_owned();
        *pos = end + 2;
        Some(l)
    };
    let head = line(&mut pos)?;
    let n: usize = head.strip_prefix('*')?.parse().ok()?;
    let mut items = Vec::new();
    for _ in 0..n {
        let h = line(&mut pos)?;
        if let Some(len) = h.strip_prefix('$') {
            let len: usize = len.parse().ok()?;
            if buf.len() < pos + len + 2 {
                return None;
            }
            items.push(String::from_utf8_lossy(&buf[pos..pos + len]).into_owned());
            pos += len + 2;
        } else {
            items.push(h);
        }
    }
    let msg = (items.len() == 4 && items[0] == "pmessage").then(|| format!("{} {}", items[2], items[3]));
    Some((msg, pos))
}

fn info_field(port: u16, section: &str, name: &str) -> String {
    let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    drop(s);
    info_value(&mut Conn::new(port), section, name)
}

fn wait_for(what: &str, f: impl FnMut() -> bool) {
    wait_for_within(what, EVENT_WAIT, f)
}

fn sentinel_call(port: u16, args: &[&str]) -> String {
    Conn::new(port).call(args)
}

/// The `sentinel monitor` line a sentinel's rewritten file must hold for the master at `port`.
fn monitor_line(port: u16, quorum: usize) -> String {
    format!("sentinel monitor mymaster 127.0.0.1 {port} {quorum}")
}

fn conf_myid(text: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix("sentinel myid ")).map(|id| id.trim().to_string())
}

fn failover_with_sentinels(redis: bool, kinds: &[SentinelKind], quorum: usize) {
    let sentinels = kinds.len();
    let who = format!(
        "{} with [{}]",
        if redis { "redis-server" } else { "store-server" },
        kinds.iter().map(|k| k.label()).collect::<Vec<_>>().join(", ")
    );
    let mut g = sentinel_group(redis, kinds, quorum, DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS);
    let who = format!("{who} (files and logs in {})", g.dir.display());
    let who = who.as_str();
    let (p0, p1, p2) = (g.servers[0].port, g.servers[1].port, g.servers[2].port);
    wait_for("both replicas in sync", || info_field(p0, "replication", "connected_slaves") == "2");
    let mut master = Conn::new(p0);
    for i in 0..100 {
        assert_eq!(master.call(&["SET", &format!("key:{i}"), &format!("value:{i}")]), "+OK");
    }
    assert_eq!(master.call(&["WAIT", "2", "5000"]), ":2", "{who}");
    let events = Events::subscribe(g.sentinels[0].port);
    // Whichever sentinel leads (or converts the old master) publishes on its own channels.
    let all_events: Vec<Events> = g.sentinels.iter().map(|s| Events::subscribe(s.port)).collect();

    // Discovery: the replicas from the master's INFO, the other sentinels from hellos.
    for s in &g.sentinels {
        wait_for("replicas discovered", || {
            let r = sentinel_call(s.port, &["SENTINEL", "REPLICAS", "mymaster"]);
            r.contains(&p1.to_string()) && r.contains(&p2.to_string())
        });
        wait_for("sentinels discovered", || {
            let r = sentinel_call(s.port, &["SENTINEL", "SENTINELS", "mymaster"]);
            r.matches("\"runid\"").count() == sentinels - 1
        });
    }

    // Event checks that fail are collected and reported at the end, so that one wrong event
    // does not hide whether the rest of the scenario (files, restarts) works.
    let mut findings: Vec<String> = Vec::new();

    // A killed replica is +sdown after down-after-milliseconds (every sentinel pings it), -sdown
    // when back.
    let killed = Instant::now();
    g.servers[2].kill();
    events.wait("+sdown", &format!("slave 127.0.0.1:{p2}"));
    for e in &all_events {
        e.wait("+sdown", &format!("slave 127.0.0.1:{p2}"));
    }
    check_sdown_not_early(&all_events, kinds, &format!("slave 127.0.0.1:{p2} "), killed, &mut findings);
    g.servers[2].restart();
    events.wait("-sdown", &format!("slave 127.0.0.1:{p2}"));
    wait_for("replica back in sync", || info_field(p0, "replication", "connected_slaves") == "2");

    // A killed master is failed over.
    drop(master);
    let before_kill: Vec<usize> = all_events.iter().map(|e| e.len()).collect();
    let killed = Instant::now();
    g.servers[0].kill();
    let switch = events.wait("+switch-master", &format!("mymaster 127.0.0.1 {p0} 127.0.0.1"));
    let new_port: u16 = switch.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(new_port == p1 || new_port == p2, "{who}: {switch}");
    let other = if new_port == p1 { p2 } else { p1 };
    check_sdown_not_early(&all_events, kinds, &format!("master mymaster 127.0.0.1 {p0}"), killed, &mut findings);
    // Both replicas stay up throughout: no sentinel may see either as down during the failover.
    for ((e, n), kind) in all_events.iter().zip(&before_kill).zip(kinds) {
        e.wait("+switch-master", &format!("mymaster 127.0.0.1 {p0} 127.0.0.1 {new_port}"));
        let seen = e.since(*n);
        for live in [new_port, other] {
            let needle = format!("slave 127.0.0.1:{live} ");
            if seen.iter().any(|x| x.starts_with("+sdown ") && x.contains(&needle)) {
                findings.push(format!(
                    "{} marked the live replica {live} +sdown during the failover (promoted: {new_port}); its events since the master was killed:\n{}",
                    kind.label(),
                    seen.join("\n")
                ));
            }
        }
    }
    if sentinels == 1 {
        // The single sentinel leads: the tutorial's events, in order.
        let order = [
            "+sdown",
            "+odown",
            "+new-epoch",
            "+try-failover",
            "+vote-for-leader",
            "+elected-leader",
            "+failover-state-select-slave",
            "+selected-slave",
            "+failover-state-send-slaveof-noone",
            "+failover-state-wait-promotion",
            "+promoted-slave",
            "+failover-state-reconf-slaves",
            "+slave-reconf-sent",
            "+slave-reconf-inprog",
            "+slave-reconf-done",
            "+failover-end",
            "+switch-master",
        ];
        let channels = events.channels();
        let mut from = 0;
        // The replica's +sdown came first; the master's is the last +sdown before +odown.
        if let Some(odown) = channels.iter().position(|c| c == "+odown") {
            from = channels[..odown].iter().rposition(|c| c == "+sdown").unwrap_or(from);
        }
        let mut at = from;
        for want in order {
            match channels[at..].iter().position(|c| c == want) {
                Some(i) => at += i,
                None => {
                    findings
                        .push(format!("event {want} missing or out of order in:\n{}", events.since(from).join("\n")));
                    break;
                }
            }
        }
        let odown = events.wait("+odown", &format!("master mymaster 127.0.0.1 {p0}"));
        assert!(odown.contains("#quorum 1/1"), "{who}: {odown}");
    } else {
        // Which one led, for the log of a mixed group.
        let leaders: Vec<&str> = all_events
            .iter()
            .zip(kinds)
            .filter(|(e, _)| e.has("+failover-end", &format!("master mymaster 127.0.0.1 {p0}")))
            .map(|(_, k)| k.label())
            .collect();
        eprintln!("{who}: failover led by {leaders:?}");
    }
    wait_for("promoted replica is master", || info_field(new_port, "replication", "role") == "master");
    wait_for("the other replica follows it", || {
        info_field(other, "replication", "master_port") == new_port.to_string()
            && info_field(other, "replication", "master_link_status") == "up"
    });
    for s in &g.sentinels {
        wait_for("every sentinel names the new master", || {
            sentinel_call(s.port, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"])
                == format!("[\"127.0.0.1\", \"{new_port}\"]")
        });
    }
    let mut promoted = Conn::new(new_port);
    assert_eq!(promoted.call(&["GET", "key:99"]), "\"value:99\"", "{who}: data written before the kill");
    assert_eq!(promoted.call(&["SET", "after", "failover"]), "+OK", "{who}");

    // Every sentinel's file now names the new master and keeps its id (Redis rewrites the file
    // after the switch; redis-sentinels are checked too, which keeps the test honest).
    for (s, kind) in g.sentinels.iter().zip(kinds) {
        let myid = sentinel_call(s.port, &["SENTINEL", "MYID"]);
        wait_for_within(&format!("{who}: {} rewrote its file with the new master", kind.label()), EVENT_WAIT, || {
            let text = s.conf_text();
            text.lines().any(|l| l.trim() == monitor_line(new_port, quorum))
                && conf_myid(&text).is_some_and(|id| format!("{id:?}") == myid)
        });
    }

    // The old master, restarted, is converted into a replica of the new one.
    g.servers[0].restart();
    wait_for("+convert-to-slave from some sentinel", || {
        all_events.iter().any(|e| e.has("+convert-to-slave", &format!("127.0.0.1:{p0}")))
    });
    wait_for("old master replicates from the new one", || {
        info_field(p0, "replication", "master_port") == new_port.to_string()
            && info_field(p0, "replication", "master_link_status") == "up"
    });
    let mut old = Conn::new(p0);
    wait_for("old master has the new write", || old.call(&["GET", "after"]) == "\"failover\"");

    // A sentinel restarted on its file knows the new master and keeps its id, at once.
    for (s, kind) in g.sentinels.iter_mut().zip(kinds) {
        let myid = sentinel_call(s.port, &["SENTINEL", "MYID"]);
        s.kill();
        let text = s.conf_text();
        assert!(
            text.lines().any(|l| l.trim() == monitor_line(new_port, quorum)),
            "{who}: {}'s file after the failover:\n{text}",
            kind.label()
        );
        s.restart();
        assert_eq!(
            sentinel_call(s.port, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]),
            format!("[\"127.0.0.1\", \"{new_port}\"]"),
            "{who}: restarted {}",
            kind.label()
        );
        assert_eq!(sentinel_call(s.port, &["SENTINEL", "MYID"]), myid, "{who}: restarted {}", kind.label());
    }
    assert!(findings.is_empty(), "{who}: the failover completed, but:\n\n{}", findings.join("\n\n"));
}

fn run(redis: bool, kinds: &[SentinelKind], quorum: usize) {
    if kinds.contains(&SentinelKind::Redis) && !require_or_skip(redis_sentinel_available(), "redis-sentinel") {
        return;
    }
    if redis && !require_or_skip(redis_server_available(), "redis-server") {
        return;
    }
    failover_with_sentinels(redis, kinds, quorum);
}

use SentinelKind::{Redis, Store, StoreFlag};

#[test]
fn one_real_sentinel_fails_over_our_servers() {
    run(false, &[Redis], 1);
}

#[test]
fn one_real_sentinel_fails_over_redis_servers() {
    run(true, &[Redis], 1);
}

#[test]
fn three_real_sentinels_fail_over_our_servers() {
    run(false, &[Redis, Redis, Redis], 2);
}

#[test]
fn three_real_sentinels_fail_over_redis_servers() {
    run(true, &[Redis, Redis, Redis], 2);
}

#[test]
fn one_store_sentinel_fails_over_our_servers() {
    run(false, &[Store], 1);
}

#[test]
fn one_store_sentinel_fails_over_redis_servers() {
    run(true, &[Store], 1);
}

/// The third is started as `store-server sentinel.conf --sentinel`, Redis's other form.
#[test]
fn three_store_sentinels_fail_over_our_servers() {
    run(false, &[Store, Store, StoreFlag], 2);
}

#[test]
fn two_real_sentinels_and_one_of_ours_fail_over_our_servers() {
    run(false, &[Redis, Redis, Store], 2);
}

#[test]
fn two_of_our_sentinels_and_one_real_fail_over_our_servers() {
    run(false, &[Store, Store, Redis], 2);
}
