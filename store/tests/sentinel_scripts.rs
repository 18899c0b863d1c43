//! A sentinel's scripts, as Redis runs them: `notification-script` for every WARNING event
//! about a master or its instances (`<event type> <description>`), `client-reconfig-script`
//! when a failover moves the master (`<master> leader|observer start <from ip> <from port>
//! <to ip> <to port>`), a script that exits 1 retried later (SENTINEL PENDING-SCRIPTS shows
//! it), scripts checked for being executable at start-up and in SENTINEL SET.
//!
//! Each check runs against our sentinel and, when installed, against redis-sentinel 7 in the
//! same way, so a difference is ours (in CI both run).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// A shell script in `dir` that appends its arguments as one line to `<name>.log` and exits
/// with `code`.
fn script(dir: &Path, name: &str, code: i32) -> PathBuf {
    let path = dir.join(format!("{name}.sh"));
    let log = dir.join(format!("{name}.log"));
    std::fs::write(&path, format!("#!/bin/sh\necho \"$@\" >> {}\nexit {code}\n", log.display())).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn lines(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(format!("{name}.log")))
        .map(|t| t.lines().map(String::from).collect())
        .unwrap_or_default()
}

fn kinds() -> Vec<SentinelKind> {
    let mut kinds = vec![SentinelKind::Store];
    if require_or_skip(redis_sentinel_available(), "redis-sentinel") {
        kinds.push(SentinelKind::Redis);
    }
    kinds
}

/// One sentinel with both scripts over our three servers; the master killed.
fn failover_runs_scripts(kind: SentinelKind) {
    let mut g = sentinel_group(false, &[], 1, 1500, 15_000);
    let (p0, p1, p2) = (g.servers[0].port, g.servers[1].port, g.servers[2].port);
    let notify = script(&g.dir, "notify", 0);
    let reconfig = script(&g.dir, "reconfig", 0);
    let port = free_port();
    let text = format!(
        "{}sentinel notification-script mymaster {}\nsentinel client-reconfig-script mymaster {}\n",
        sentinel_conf(port, &g.dir, p0, 1, 1500, 15_000),
        notify.display(),
        reconfig.display()
    );
    let name = format!("sentinel-{port}.conf");
    g.sentinels.push(ConfNode::start(kind.program(), kind.args(), &g.dir, &name, port, &text));
    let who = kind.label();
    wait_for("replicas discovered", || {
        let mut c = Conn::new(port);
        let r = c.call(&["SENTINEL", "REPLICAS", "mymaster"]);
        r.contains(&p1.to_string()) && r.contains(&p2.to_string())
    });
    g.servers[0].kill();
    let dir = g.dir.clone();
    let mut new_port = 0u16;
    wait_for_within(&format!("{who}: client-reconfig-script called"), Duration::from_secs(60), || {
        let want = format!("mymaster leader start 127.0.0.1 {p0} 127.0.0.1 ");
        let Some(l) = lines(&dir, "reconfig").into_iter().find(|l| l.starts_with(&want)) else { return false };
        new_port = l[want.len()..].trim().parse().unwrap_or(0);
        true
    });
    assert!(new_port == p1 || new_port == p2, "{who}: {:?}", lines(&dir, "reconfig"));
    let switch = format!("+switch-master mymaster 127.0.0.1 {p0} 127.0.0.1 {new_port}");
    wait_for_within(&format!("{who}: notification of the switch"), Duration::from_secs(30), || {
        lines(&dir, "notify").contains(&switch)
    });
    let notified = lines(&dir, "notify");
    for want in [
        format!("+monitor master mymaster 127.0.0.1 {p0} quorum 1"),
        format!("+sdown master mymaster 127.0.0.1 {p0}"),
        format!("+odown master mymaster 127.0.0.1 {p0} #quorum 1/1"),
        "+new-epoch 1".to_string(),
        format!("+try-failover master mymaster 127.0.0.1 {p0}"),
        format!("+elected-leader master mymaster 127.0.0.1 {p0}"),
        format!("+promoted-slave slave 127.0.0.1:{new_port} 127.0.0.1 {new_port} @ mymaster 127.0.0.1 {p0}"),
        format!("+failover-end master mymaster 127.0.0.1 {p0}"),
    ] {
        assert!(notified.contains(&want), "{who}: no `{want}` among the notifications:\n{}", notified.join("\n"));
    }
    // NOTICE events (the reconfiguration steps) are published but not passed to the script.
    for notice in ["+slave-reconf-sent", "+failover-state-send-slaveof-noone", "+slave "] {
        assert!(
            !notified.iter().any(|l| l.starts_with(notice)),
            "{who}: a NOTICE event reached the script:\n{}",
            notified.join("\n")
        );
    }
    let mut c = Conn::new(port);
    assert_eq!(
        c.call(&["SENTINEL", "SET", "mymaster", "notification-script", notify.to_str().unwrap()]),
        "-ERR Reconfiguration of scripts path is denied for security reasons. Check the deny-scripts-reconfig configuration directive in your Sentinel configuration",
        "{who}"
    );
}

#[test]
fn a_failover_runs_the_notification_and_client_reconfig_scripts() {
    for kind in kinds() {
        failover_runs_scripts(kind);
    }
}

/// With `deny-scripts-reconfig no`: SENTINEL SET checks the path, and a script exiting 1 is
/// queued again with a delay.
fn failing_script_is_retried(kind: SentinelKind) {
    let dir = std::env::temp_dir().join(format!("store-sentinel-scripts-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let failing = script(&dir, "failing", 1);
    let (master_port, port) = (free_port(), free_port());
    let _master = ConfNode::start(
        env!("CARGO_BIN_EXE_store-server"),
        &[],
        &dir,
        "master.conf",
        master_port,
        &format!("port {master_port}\nsave \"\"\ndir {}\n", dir.display()),
    );
    let text =
        format!("{}sentinel deny-scripts-reconfig no\n", sentinel_conf(port, &dir, master_port, 1, 5000, 60_000));
    let mut sentinel = ConfNode::start(kind.program(), kind.args(), &dir, "sentinel.conf", port, &text);
    let who = kind.label();
    let mut c = Conn::new(port);
    let missing = dir.join("missing.sh");
    assert_eq!(
        c.call(&["SENTINEL", "SET", "mymaster", "notification-script", missing.to_str().unwrap()]),
        "-ERR Notification script seems non existing or non executable",
        "{who}"
    );
    assert_eq!(
        c.call(&["SENTINEL", "SET", "mymaster", "client-reconfig-script", missing.to_str().unwrap()]),
        "-ERR Client reconfiguration script seems non existing or non executable",
        "{who}"
    );
    assert_eq!(c.call(&["SENTINEL", "SET", "mymaster", "notification-script", failing.to_str().unwrap()]), "+OK");
    // A WARNING event (`+set`) runs the script, which fails with 1: retried after 30 s.
    assert_eq!(c.call(&["SENTINEL", "SET", "mymaster", "quorum", "1"]), "+OK");
    wait_for(&format!("{who}: the failing script ran"), || !lines(&dir, "failing").is_empty());
    let mut pending = Vec::new();
    wait_for(&format!("{who}: the failing script is scheduled again"), || {
        let r = Conn::new(port).call_value(&["SENTINEL", "PENDING-SCRIPTS"]);
        pending = r.items().iter().map(|j| j.pairs()).collect();
        pending.iter().any(|p| p.contains(&("flags".into(), "scheduled".into())))
    });
    // One job per `+set` since the script was set (this SET's own event included, as in Redis).
    wait_for(&format!("{who}: both failing runs scheduled again"), || {
        let r = Conn::new(port).call_value(&["SENTINEL", "PENDING-SCRIPTS"]);
        pending = r.items().iter().map(|j| j.pairs()).collect();
        pending.len() == 2 && pending.iter().all(|p| p.contains(&("flags".into(), "scheduled".into())))
    });
    for job in &pending {
        let get = |k: &str| job.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
        assert_eq!(get("retry-num"), "1", "{who}: {job:?}");
        let delay: i64 = get("run-delay").parse().unwrap_or(-1);
        assert!((20_000..=30_000).contains(&delay), "{who}: run-delay {delay} ms: {job:?}");
    }
    let info = c.call(&["INFO", "sentinel"]);
    assert!(info.contains("sentinel_scripts_queue_length:2"), "{who}: {info}");
    assert!(lines(&dir, "failing")[0].starts_with("+set master mymaster 127.0.0.1"), "{who}");

    // At start-up a script that cannot run is a configuration error.
    sentinel.kill();
    let bad = format!("{text}sentinel notification-script mymaster {}\n", missing.display());
    std::fs::write(dir.join("bad.conf"), bad).unwrap();
    let mut cmd = std::process::Command::new(kind.program());
    cmd.arg(dir.join("bad.conf")).args(kind.args());
    let out = cmd.output().unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{who} started with a missing script: {all}");
    assert!(all.contains("Notification script seems non existing or non executable"), "{who}: {all}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failing_script_is_retried_and_paths_are_checked() {
    for kind in kinds() {
        failing_script_is_retried(kind);
    }
}
