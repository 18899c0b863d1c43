//! The `sentinel ...` directives of sentinel.conf, and the state written back to the file.
//!
//! Why it is shaped this way: a sentinel's file is both its configuration and its memory. It
//! starts as one `sentinel monitor` line; after every change of state the sentinel rewrites it
//! (myid, epochs, known replicas and sentinels) so that a restarted sentinel resumes where it
//! stopped and never votes twice in an epoch. Loading follows Redis's three passes (global
//! options, then `monitor` lines, then per-master options) so the order of lines in the file
//! does not matter; [`rewrite_lines`] writes what `rewriteConfigSentinelOption` writes.
//! The server's own directives (port, dir, logfile, ...) stay in [`crate::config::Config`],
//! which passes the `sentinel` lines here and splices the rewritten ones back in place.

use super::instance::{Addr, Master, DEFAULT_FAILOVER_TIMEOUT_MS, DEFAULT_PARALLEL_SYNCS};
use super::Sentinel;

/// One `sentinel` line of the file: where it was, and its words after `sentinel`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub file: String,
    pub line_no: usize,
    pub text: String,
    pub args: Vec<String>,
}

/// A line Redis refuses, with its reason (Redis's texts).
#[derive(Debug, PartialEq, Eq)]
pub struct LineError {
    pub line: Line,
    pub reason: String,
}

/// Directives loaded before the `monitor` lines (`preMonitorCfgName`).
const PRE_MONITOR: &[&str] = &[
    "announce-ip",
    "announce-port",
    "deny-scripts-reconfig",
    "sentinel-user",
    "sentinel-pass",
    "current-epoch",
    "myid",
    "resolve-hostnames",
    "announce-hostnames",
];

/// Applies the file's `sentinel` lines in Redis's order. `executable` says whether a script
/// path may be run (Redis's `access(path, X_OK)`, asked of the disk seam by the caller).
pub fn load(s: &mut Sentinel, lines: &[Line], now_ms: i64, executable: &dyn Fn(&str) -> bool) -> Result<(), LineError> {
    let first = |l: &&Line| l.args.first().map(|a| a.to_ascii_lowercase()).unwrap_or_default();
    let pre = lines.iter().filter(|l| PRE_MONITOR.contains(&first(l).as_str()));
    let monitor = lines.iter().filter(|l| first(l) == "monitor");
    let post = lines.iter().filter(|l| first(l) != "monitor" && !PRE_MONITOR.contains(&first(l).as_str()));
    for l in pre.chain(monitor).chain(post) {
        apply(s, &l.args, now_ms).map_err(|reason| LineError { line: l.clone(), reason: reason.to_string() })?;
        let reason = match (first(&l).as_str(), l.args.get(2)) {
            ("notification-script", Some(p)) if !executable(p) => {
                "Notification script seems non existing or non executable."
            }
            ("client-reconfig-script", Some(p)) if !executable(p) => {
                "Client reconfiguration script seems non existing or non executable."
            }
            _ => continue,
        };
        return Err(LineError { line: l.clone(), reason: reason.to_string() });
    }
    Ok(())
}

/// Redis's `atoi`: leading digits (and sign), 0 when there are none.
fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    let v = digits[..end].parse::<i64>().unwrap_or(0);
    if neg {
        v.saturating_neg()
    } else {
        v
    }
}

fn yes_no(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Whether `host` is a usable address: an IP, or any name with resolve-hostnames.
pub fn valid_host(s: &Sentinel, host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok() || (s.g.resolve_hostnames && !host.is_empty())
}

/// Adds a master (`sentinel monitor` / SENTINEL MONITOR).
pub fn add_master(
    s: &mut Sentinel,
    name: &str,
    host: &str,
    port: i64,
    quorum: i64,
    now_ms: i64,
) -> Result<(), &'static str> {
    if quorum <= 0 {
        return Err("Quorum must be 1 or greater.");
    }
    if !valid_host(s, host) {
        return Err("Can't resolve instance hostname.");
    }
    let port = u16::try_from(port).ok().filter(|p| *p > 0).ok_or("Invalid port number.")?;
    if s.masters.contains_key(name) {
        return Err("Duplicate master name.");
    }
    if s.masters.len() >= super::MASTERS_MAX {
        return Err("Too many masters.");
    }
    let quorum = u32::try_from(quorum).unwrap_or(u32::MAX);
    let mut m = Master::new(name, Addr::new(host, port), quorum, now_ms);
    m.inst.link.generation = s.g.new_generation();
    m.inst.down_after_ms = s.g.timing.default_down_after_ms;
    m.failover_timeout_ms = s.g.timing.default_failover_timeout_ms;
    s.masters.insert(name.to_string(), m);
    Ok(())
}

/// One directive (`sentinelHandleConfiguration`).
fn apply(s: &mut Sentinel, args: &[String], now_ms: i64) -> Result<(), &'static str> {
    let Some((name, rest)) = args.split_first() else { return Err("Unrecognized sentinel configuration statement.") };
    let a: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (name.to_ascii_lowercase().as_str(), a.as_slice()) {
        ("monitor", [m, host, port, quorum]) => add_master(s, m, host, atoi(port), atoi(quorum), now_ms),
        ("current-epoch", [e]) => {
            let e = e.parse::<u64>().unwrap_or(0);
            s.g.current_epoch = s.g.current_epoch.max(e);
            Ok(())
        }
        ("myid", [id]) => {
            if id.len() != 40 {
                return Err("Malformed Sentinel id in myid option.");
            }
            s.g.myid = id.to_string();
            Ok(())
        }
        ("announce-ip", [ip]) => {
            s.g.announce_ip = (!ip.is_empty()).then(|| ip.to_string());
            Ok(())
        }
        ("announce-port", [p]) => {
            s.g.announce_port = u16::try_from(atoi(p)).unwrap_or(0);
            Ok(())
        }
        ("deny-scripts-reconfig", [v]) => {
            s.g.deny_scripts_reconfig =
                yes_no(v).ok_or("Please specify yes or no for the deny-scripts-reconfig options.")?;
            Ok(())
        }
        ("sentinel-user", [v]) => {
            s.g.sentinel_user = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        }
        ("sentinel-pass", [v]) => {
            s.g.sentinel_pass = (!v.is_empty()).then(|| v.to_string());
            Ok(())
        }
        ("resolve-hostnames", [v]) => {
            s.g.resolve_hostnames = yes_no(v).ok_or("Please specify yes or no for the resolve-hostnames option.")?;
            Ok(())
        }
        ("announce-hostnames", [v]) => {
            s.g.announce_hostnames = yes_no(v).ok_or("Please specify yes or no for the announce-hostnames option.")?;
            Ok(())
        }
        (directive, [master, more @ ..]) => apply_to_master(s, directive, master, more, now_ms),
        _ => Err("Unrecognized sentinel configuration statement."),
    }
}

/// The per-master directives.
fn apply_to_master(
    s: &mut Sentinel,
    directive: &str,
    master: &str,
    a: &[&str],
    now_ms: i64,
) -> Result<(), &'static str> {
    if !matches!(
        (directive, a.len()),
        ("down-after-milliseconds" | "failover-timeout" | "parallel-syncs" | "notification-script", 1)
            | ("client-reconfig-script" | "auth-pass" | "auth-user" | "config-epoch" | "leader-epoch", 1)
            | ("master-reboot-down-after-period", 1)
            | ("known-slave" | "known-replica", 2)
            | ("known-sentinel", 2 | 3)
            | ("rename-command", 2)
    ) {
        return Err("Unrecognized sentinel configuration statement.");
    }
    let resolve = s.g.resolve_hostnames;
    let (g, masters) = (&mut s.g, &mut s.masters);
    let m = masters.get_mut(master).ok_or("No such master with specified name.")?;
    match (directive, a) {
        ("down-after-milliseconds", [v]) => {
            let ms = atoi(v);
            if ms <= 0 {
                return Err("negative or zero time parameter.");
            }
            m.set_down_after(ms);
        }
        ("failover-timeout", [v]) => {
            m.failover_timeout_ms = atoi(v);
            if m.failover_timeout_ms <= 0 {
                return Err("negative or zero time parameter.");
            }
        }
        ("parallel-syncs", [v]) => m.parallel_syncs = u32::try_from(atoi(v)).unwrap_or(0),
        ("notification-script", [p]) => m.notification_script = Some(p.to_string()),
        ("client-reconfig-script", [p]) => m.client_reconfig_script = Some(p.to_string()),
        ("auth-pass", [p]) => m.auth_pass = Some(p.to_string()),
        ("auth-user", [u]) => m.auth_user = Some(u.to_string()),
        ("config-epoch", [e]) => {
            m.config_epoch = e.parse().unwrap_or(0);
            g.current_epoch = g.current_epoch.max(m.config_epoch);
        }
        ("leader-epoch", [e]) => m.leader_epoch = e.parse().unwrap_or(0),
        ("master-reboot-down-after-period", [v]) => {
            m.master_reboot_down_after_ms = atoi(v);
            if m.master_reboot_down_after_ms < 0 {
                return Err("negative time parameter.");
            }
        }
        ("known-slave" | "known-replica", [host, port]) => {
            let port = u16::try_from(atoi(port)).ok().filter(|p| *p > 0).ok_or("Invalid port number.")?;
            if !(resolve || host.parse::<std::net::IpAddr>().is_ok()) {
                return Err("Can't resolve instance hostname.");
            }
            let addr = Addr::new(host, port);
            if m.replicas.contains_key(&addr.name()) {
                return Err("Duplicate hostname and port for replica.");
            }
            let r = g.instance(super::instance::Kind::Replica, addr.name(), addr, m.inst.down_after_ms, now_ms);
            m.replicas.insert(r.name.clone(), r);
        }
        ("known-sentinel", [host, port, runid]) => {
            let port = u16::try_from(atoi(port)).ok().filter(|p| *p > 0).ok_or("Invalid port number.")?;
            if m.sentinels.contains_key(*runid) {
                return Err("Duplicate runid for sentinel.");
            }
            let mut si = g.instance(
                super::instance::Kind::Sentinel,
                runid.to_string(),
                Addr::new(host, port),
                m.inst.down_after_ms,
                now_ms,
            );
            si.runid = Some(runid.to_string());
            m.sentinels.insert(runid.to_string(), si);
        }
        // The old form without a run id is ignored, as Redis does.
        ("known-sentinel", [_, _]) => {}
        ("rename-command", [from, to]) => {
            let from = from.to_ascii_lowercase();
            if m.renamed_commands.contains_key(&from) {
                return Err("Same command renamed multiple times with rename-command.");
            }
            m.renamed_commands.insert(from, to.to_string());
        }
        _ => return Err("Unrecognized sentinel configuration statement."),
    }
    Ok(())
}

/// Quotes a value for a config line when needed (Redis's `sdscatrepr` for announce-ip).
fn q(v: &str) -> String {
    if !v.is_empty() && !v.bytes().any(|b| b.is_ascii_whitespace() || b == b'"' || b == b'\'' || b == b'\\') {
        return v.to_string();
    }
    format!("{v:?}")
}

/// The `sentinel` lines a rewrite writes (`rewriteConfigSentinelOption`).
pub fn rewrite_lines(s: &Sentinel) -> Vec<String> {
    let g = &s.g;
    let mut out = vec![format!("sentinel myid {}", g.myid)];
    if !g.deny_scripts_reconfig {
        out.push("sentinel deny-scripts-reconfig no".into());
    }
    if g.resolve_hostnames {
        out.push("sentinel resolve-hostnames yes".into());
    }
    if g.announce_hostnames {
        out.push("sentinel announce-hostnames yes".into());
    }
    for m in s.masters.values() {
        master_lines(g, m, &mut out);
    }
    out.push(format!("sentinel current-epoch {}", g.current_epoch));
    if let Some(ip) = &g.announce_ip {
        out.push(format!("sentinel announce-ip {}", q(ip)));
    }
    if g.announce_port != 0 {
        out.push(format!("sentinel announce-port {}", g.announce_port));
    }
    if let Some(u) = &g.sentinel_user {
        out.push(format!("sentinel sentinel-user {}", q(u)));
    }
    if let Some(p) = &g.sentinel_pass {
        out.push(format!("sentinel sentinel-pass {}", q(p)));
    }
    out
}

fn master_lines(g: &super::Global, m: &Master, out: &mut Vec<String>) {
    let name = m.name();
    let addr = m.current_addr();
    out.push(format!("sentinel monitor {name} {} {} {}", addr.host, addr.port, m.quorum));
    if m.inst.down_after_ms != super::instance::DEFAULT_DOWN_AFTER_MS {
        out.push(format!("sentinel down-after-milliseconds {name} {}", m.inst.down_after_ms));
    }
    if m.failover_timeout_ms != DEFAULT_FAILOVER_TIMEOUT_MS {
        out.push(format!("sentinel failover-timeout {name} {}", m.failover_timeout_ms));
    }
    if m.parallel_syncs != DEFAULT_PARALLEL_SYNCS {
        out.push(format!("sentinel parallel-syncs {name} {}", m.parallel_syncs));
    }
    for (key, v) in [
        ("notification-script", &m.notification_script),
        ("client-reconfig-script", &m.client_reconfig_script),
        ("auth-pass", &m.auth_pass),
        ("auth-user", &m.auth_user),
    ] {
        if let Some(v) = v {
            out.push(format!("sentinel {key} {name} {}", q(v)));
        }
    }
    if m.master_reboot_down_after_ms != 0 {
        out.push(format!("sentinel master-reboot-down-after-period {name} {}", m.master_reboot_down_after_ms));
    }
    out.push(format!("sentinel config-epoch {name} {}", m.config_epoch));
    out.push(format!("sentinel leader-epoch {name} {}", m.leader_epoch));
    for r in m.replicas.values() {
        // The promoted replica is the master's current address: it is listed under the old one.
        let a = if r.addr == *addr { &m.inst.addr } else { &r.addr };
        out.push(format!("sentinel known-replica {name} {} {}", a.host, a.port));
    }
    for si in m.sentinels.values() {
        if let Some(runid) = &si.runid {
            out.push(format!("sentinel known-sentinel {name} {} {} {runid}", si.addr.host, si.addr.port));
        }
    }
    for (from, to) in &m.renamed_commands {
        out.push(format!("sentinel rename-command {name} {from} {to}"));
    }
    let _ = g;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, line_no: usize) -> Line {
        Line {
            file: "sentinel.conf".into(),
            line_no,
            text: text.into(),
            args: text.split_whitespace().skip(1).map(String::from).collect(),
        }
    }

    fn sentinel() -> Sentinel {
        Sentinel::new("a".repeat(40), 26379, crate::env::Rng::new(1), 1000)
    }

    #[test]
    fn loads_in_redis_order_and_rewrites_the_state() {
        let mut s = sentinel();
        let text = [
            "sentinel down-after-milliseconds mymaster 2000",
            "sentinel known-replica mymaster 127.0.0.1 6380",
            "sentinel monitor mymaster 127.0.0.1 6379 2",
            "sentinel current-epoch 7",
            "sentinel known-sentinel mymaster 127.0.0.1 26380 bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            "sentinel config-epoch mymaster 3",
            "sentinel myid 0123456789012345678901234567890123456789",
        ];
        let lines: Vec<Line> = text.iter().zip(1..).map(|(t, n)| line(t, n)).collect();
        load(&mut s, &lines, 1000, &|_| true).unwrap();
        let m = &s.masters["mymaster"];
        assert_eq!((m.quorum, m.inst.down_after_ms, m.config_epoch), (2, 2000, 3));
        assert_eq!(m.replicas.len(), 1);
        assert_eq!(m.replicas["127.0.0.1:6380"].down_after_ms, 2000);
        assert_eq!(s.g.current_epoch, 7);
        let out = rewrite_lines(&s);
        assert_eq!(out[0], "sentinel myid 0123456789012345678901234567890123456789");
        for want in [
            "sentinel monitor mymaster 127.0.0.1 6379 2",
            "sentinel down-after-milliseconds mymaster 2000",
            "sentinel config-epoch mymaster 3",
            "sentinel leader-epoch mymaster 0",
            "sentinel known-replica mymaster 127.0.0.1 6380",
            "sentinel known-sentinel mymaster 127.0.0.1 26380 bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            "sentinel current-epoch 7",
        ] {
            assert!(out.iter().any(|l| l == want), "{want} missing from {out:?}");
        }
        // What it wrote loads back to the same lines.
        let mut again = sentinel();
        let lines: Vec<Line> = out.iter().zip(1..).map(|(t, n)| line(t, n)).collect();
        load(&mut again, &lines, 1000, &|_| true).unwrap();
        assert_eq!(rewrite_lines(&again), out);
    }

    #[test]
    fn refuses_what_redis_refuses() {
        for (text, reason) in [
            ("sentinel monitor m 127.0.0.1 6379 0", "Quorum must be 1 or greater."),
            ("sentinel monitor m 127.0.0.1 0 1", "Invalid port number."),
            ("sentinel monitor m not-an-ip 6379 1", "Can't resolve instance hostname."),
            ("sentinel down-after-milliseconds nobody 10", "No such master with specified name."),
            ("sentinel myid short", "Malformed Sentinel id in myid option."),
            ("sentinel frobnicate", "Unrecognized sentinel configuration statement."),
            ("sentinel deny-scripts-reconfig maybe", "Please specify yes or no for the deny-scripts-reconfig options."),
        ] {
            let mut s = sentinel();
            let err = load(&mut s, &[line(text, 1)], 0, &|_| true).unwrap_err();
            assert_eq!(err.reason, reason, "{text}");
        }
        let mut s = sentinel();
        let two = [line("sentinel monitor m 127.0.0.1 6379 1", 1), line("sentinel monitor m 127.0.0.1 6380 1", 2)];
        assert_eq!(load(&mut s, &two, 0, &|_| true).unwrap_err().reason, "Duplicate master name.");
    }

    #[test]
    fn scripts_must_be_executable() {
        let monitor = line("sentinel monitor m 127.0.0.1 6379 1", 1);
        let ok = |p: &str| p == "/bin/notify";
        for (text, reason) in [
            ("sentinel notification-script m /nope", "Notification script seems non existing or non executable."),
            (
                "sentinel client-reconfig-script m /nope",
                "Client reconfiguration script seems non existing or non executable.",
            ),
        ] {
            let mut s = sentinel();
            let err = load(&mut s, &[monitor.clone(), line(text, 2)], 0, &ok).unwrap_err();
            assert_eq!((err.reason.as_str(), err.line.line_no), (reason, 2), "{text}");
        }
        let mut s = sentinel();
        load(&mut s, &[monitor, line("sentinel notification-script m /bin/notify", 2)], 0, &ok).unwrap();
        assert_eq!(s.masters["m"].notification_script.as_deref(), Some("/bin/notify"));
    }
}
