//! Sentinel mode's commands: SENTINEL and its subcommands, and the sentinel versions of INFO,
//! ROLE and PUBLISH; [`table`] is the whole command table of a sentinel node.
//!
//! Why it is shaped this way: a sentinel is a server with another command table (Redis's
//! `CMD_SENTINEL`/`CMD_ONLY_SENTINEL` flags): the connection, pub/sub and CLIENT commands are
//! the server's own handlers, listed in [`table`]; everything else is unknown, with Redis's
//! error. The handlers here only read or change [`crate::sentinel::Sentinel`] under the lock;
//! rewriting the config file is deferred to the connection, as CONFIG REWRITE is.

use bytes::Bytes;

use super::*;
use crate::protocol::Reply;
use crate::sentinel::instance::{flag, Instance, Kind, Master, Reported};
use crate::sentinel::Sentinel;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "sentinel", arity: -2, flags: ADMIN | STALE | LOADING, keys: (0, 0, 0), handler: sentinel },
    CommandSpec {
        name: "publish",
        arity: 3,
        flags: PUBSUB | FAST | STALE | LOADING,
        keys: (0, 0, 0),
        handler: publish,
    },
    CommandSpec { name: "info", arity: -1, flags: STALE | LOADING, keys: (0, 0, 0), handler: info },
    CommandSpec { name: "role", arity: 1, flags: FAST | STALE | LOADING, keys: (0, 0, 0), handler: role },
];

/// The server commands a sentinel also answers (Redis 7.0's commands flagged SENTINEL).
const SHARED: &[&str] = &[
    "ping",
    "auth",
    "hello",
    "client",
    "quit",
    "command",
    "shutdown",
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
];

/// A sentinel node's command table.
pub fn table() -> Vec<&'static CommandSpec> {
    let shared = all_families().filter(|s| SHARED.contains(&s.name));
    COMMANDS.iter().chain(shared).collect()
}

const HELP: &[&str] = &[
    "CKQUORUM <master-name>",
    "    Check if the current Sentinel configuration is able to reach the quorum",
    "    needed to failover a master and the majority needed to authorize the",
    "    failover.",
    "CONFIG SET <param> <value>",
    "    Set a global Sentinel configuration parameter.",
    "CONFIG GET <param>",
    "    Get global Sentinel configuration parameter.",
    "DEBUG [<param> <value> ...]",
    "    Show a list of configurable time parameters and their values (milliseconds).",
    "    Or update current configurable parameters values (one or more).",
    "GET-MASTER-ADDR-BY-NAME <master-name>",
    "    Return the ip and port number of the master with that name.",
    "FAILOVER <master-name>",
    "    Manually failover a master node without asking for agreement from other",
    "    Sentinels",
    "FLUSHCONFIG",
    "    Force Sentinel to rewrite its configuration on disk, including the current",
    "    Sentinel state.",
    "INFO-CACHE <master-name>",
    "    Return last cached INFO output from masters and all its replicas.",
    "IS-MASTER-DOWN-BY-ADDR <ip> <port> <current-epoch> <runid>",
    "    Check if the master specified by ip:port is down from current Sentinel's",
    "    point of view.",
    "MASTER <master-name>",
    "    Show the state and info of the specified master.",
    "MASTERS",
    "    Show a list of monitored masters and their state.",
    "MONITOR <name> <ip> <port> <quorum>",
    "    Start monitoring a new master with the specified name, ip, port and quorum.",
    "MYID",
    "    Return the ID of the Sentinel instance.",
    "PENDING-SCRIPTS",
    "    Get pending scripts information.",
    "REMOVE <master-name>",
    "    Remove master from Sentinel's monitor list.",
    "REPLICAS <master-name>",
    "    Show a list of replicas for this master and their state.",
    "RESET <pattern>",
    "    Reset masters for specific master name matching this pattern.",
    "SENTINELS <master-name>",
    "    Show a list of Sentinel instances for this master and their state.",
    "SET <master-name> <option> <value> [<option> <value> ...]",
    "    Set configuration parameters for certain masters.",
    "SIMULATE-FAILURE [CRASH-AFTER-ELECTION] [CRASH-AFTER-PROMOTION] [HELP]",
    "    Simulate a Sentinel crash.",
];

/// Each subcommand's arity (Redis 7's container table: positive exact, negative minimum).
const SUBCOMMANDS: &[(&str, i32)] = &[
    ("ckquorum", 3),
    ("config", -3),
    ("debug", -2),
    ("failover", 3),
    ("flushconfig", 2),
    ("get-master-addr-by-name", 3),
    ("help", 2),
    ("info-cache", -3),
    ("is-master-down-by-addr", 6),
    ("master", 3),
    ("masters", 2),
    ("monitor", 6),
    ("myid", 2),
    ("pending-scripts", 2),
    ("remove", 3),
    ("replicas", 3),
    ("reset", 3),
    ("sentinels", 3),
    ("set", -5),
    ("simulate-failure", -3),
    ("slaves", 3),
];

fn sentinel(ctx: &mut Ctx, args: &[Bytes]) {
    let sub = lossy(&args[1]).to_ascii_lowercase();
    let Some(&(_, arity)) = SUBCOMMANDS.iter().find(|(n, _)| *n == sub) else {
        return unknown_subcommand(ctx, args);
    };
    let (argc, required) = (args.len(), arity.unsigned_abs() as usize);
    if (arity > 0 && argc != required) || argc < required {
        return ctx.error(&format!("ERR wrong number of arguments for 'sentinel|{sub}' command"));
    }
    if ctx.st.sentinel.is_none() {
        return ctx.error("ERR This instance has sentinel support disabled");
    }
    match sub.as_str() {
        "help" => reply_help(ctx, args, HELP),
        "masters" => masters(ctx),
        "master" | "replicas" | "slaves" | "sentinels" => instances(ctx, &sub, &args[2]),
        "myid" => {
            let id = with(ctx, |s, _| s.g.myid.clone());
            ctx.bulk(id.as_bytes())
        }
        "get-master-addr-by-name" => {
            let name = lossy(&args[2]);
            match with(ctx, |s, _| s.masters.get(&name).map(|m| m.current_addr().clone())) {
                None => ctx.null_array(),
                Some(a) => {
                    ctx.array_len(2);
                    ctx.bulk(a.host.as_bytes());
                    ctx.bulk(a.port.to_string().as_bytes());
                }
            }
        }
        "is-master-down-by-addr" => is_master_down_by_addr(ctx, args),
        "failover" => {
            let name = lossy(&args[2]);
            match with(ctx, |s, now| s.force_failover(&name, now)) {
                Ok(()) => ctx.ok(),
                Err(e) => ctx.error(e),
            }
        }
        "reset" => {
            let n = with(ctx, |s, now| s.reset_matching(&args[2], now));
            ctx.int(i64::try_from(n).unwrap_or(i64::MAX))
        }
        "monitor" => monitor(ctx, args),
        "remove" => {
            let name = lossy(&args[2]);
            let removed = with(ctx, |s, _| {
                let m = s.masters.remove(&name)?;
                s.g.event(crate::sentinel::Level::Warning, "-monitor", crate::sentinel::at(&m.inst, None));
                Some(())
            });
            if removed.is_none() {
                return ctx.error(NO_SUCH_MASTER);
            }
            flush_and_reply(ctx)
        }
        "flushconfig" => flush_and_reply(ctx),
        "ckquorum" => ckquorum(ctx, &args[2]),
        "set" => set(ctx, args),
        "config" => config(ctx, args),
        "info-cache" => info_cache(ctx, &args[2..]),
        "pending-scripts" => pending_scripts(ctx),
        "debug" => debug(ctx, &args[2..]),
        "simulate-failure" => ctx.ok(),
        _ => unknown_subcommand(ctx, args),
    }
}

const NO_SUCH_MASTER: &str = "ERR No such master with that name";

/// Runs `f` on the sentinel (present: checked by [`sentinel`]) with the batch's time.
fn with<T>(ctx: &mut Ctx, f: impl FnOnce(&mut Sentinel, i64) -> T) -> T {
    let now = ctx.now_ms;
    let s = ctx.st.sentinel.as_mut().expect("sentinel mode checked by the caller");
    let out = f(s, now);
    ctx.st.sentinel_wake.notify_one();
    out
}

fn masters(ctx: &mut Ctx) {
    let now = ctx.now_ms;
    let rows: Vec<Vec<(String, String)>> =
        with(ctx, |s, _| s.masters.values().map(|m| instance_fields(&m.inst, Some(m), &s.g, now)).collect());
    write_rows(ctx, &rows)
}

fn instances(ctx: &mut Ctx, sub: &str, name: &Bytes) {
    let now = ctx.now_ms;
    let name = lossy(name);
    let rows = with(ctx, |s, _| {
        let m = s.masters.get(&name)?;
        Some(match sub {
            "master" => vec![instance_fields(&m.inst, Some(m), &s.g, now)],
            "sentinels" => m.sentinels.values().map(|i| instance_fields(i, None, &s.g, now)).collect(),
            _ => m
                .replicas
                .values()
                .filter(|r| r.replica_announced)
                .map(|i| instance_fields(i, None, &s.g, now))
                .collect(),
        })
    });
    let Some(rows) = rows else { return ctx.error(NO_SUCH_MASTER) };
    if sub == "master" {
        return write_map(ctx, &rows[0]);
    }
    write_rows(ctx, &rows)
}

fn write_rows(ctx: &mut Ctx, rows: &[Vec<(String, String)>]) {
    ctx.array_len(rows.len());
    for r in rows {
        write_map(ctx, r);
    }
}

fn write_map(ctx: &mut Ctx, fields: &[(String, String)]) {
    ctx.map_len(fields.len());
    for (k, v) in fields {
        ctx.bulk(k.as_bytes());
        ctx.bulk(v.as_bytes());
    }
}

/// `addReplySentinelRedisInstance`: the fields, in Redis's order, all as strings.
fn instance_fields(
    i: &Instance,
    master: Option<&Master>,
    g: &crate::sentinel::Global,
    now: i64,
) -> Vec<(String, String)> {
    let ago = |t: i64| now.saturating_sub(t).to_string();
    let mut f: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| f.push((k.to_string(), v));
    put("name", i.name.clone());
    put("ip", i.addr.host.clone());
    put("port", i.addr.port.to_string());
    put("runid", i.runid.clone().unwrap_or_default());
    put("flags", i.flag_text());
    put("link-pending-commands", i.link.pending_commands.to_string());
    put("link-refcount", "1".into());
    if let Some(m) = master.filter(|m| m.in_failover()) {
        put("failover-state", m.failover_state.name().into());
    }
    put("last-ping-sent", if i.link.act_ping_ms != 0 { ago(i.link.act_ping_ms) } else { "0".into() });
    put("last-ok-ping-reply", ago(i.link.last_avail_ms));
    put("last-ping-reply", ago(i.link.last_pong_ms));
    if i.has(flag::S_DOWN) {
        put("s-down-time", ago(i.s_down_since_ms));
    }
    if i.has(flag::O_DOWN) {
        put("o-down-time", ago(i.o_down_since_ms));
    }
    put("down-after-milliseconds", i.down_after_ms.to_string());
    if i.kind != Kind::Sentinel {
        put("info-refresh", if i.info_refresh_ms != 0 { ago(i.info_refresh_ms) } else { "0".into() });
        put("role-reported", if i.role_reported == Reported::Replica { "slave" } else { "master" }.into());
        put("role-reported-time", ago(i.role_reported_ms));
    }
    if let Some(m) = master {
        put("config-epoch", m.config_epoch.to_string());
        put("num-slaves", m.replicas.len().to_string());
        put("num-other-sentinels", m.sentinels.len().to_string());
        put("quorum", m.quorum.to_string());
        put("failover-timeout", m.failover_timeout_ms.to_string());
        put("parallel-syncs", m.parallel_syncs.to_string());
        if let Some(s) = &m.notification_script {
            put("notification-script", s.clone());
        }
        if let Some(s) = &m.client_reconfig_script {
            put("client-reconfig-script", s.clone());
        }
    }
    if i.kind == Kind::Replica {
        put("master-link-down-time", i.master_link_down_ms.to_string());
        put("master-link-status", if i.slave_master_link_up { "ok" } else { "err" }.into());
        put("master-host", i.slave_master_host.clone().unwrap_or_else(|| "?".into()));
        put("master-port", i.slave_master_port.to_string());
        put("slave-priority", i.slave_priority.to_string());
        put("slave-repl-offset", i.slave_repl_offset.to_string());
        put("replica-announced", u8::from(i.replica_announced).to_string());
    }
    if i.kind == Kind::Sentinel {
        put("last-hello-message", ago(i.last_hello_ms));
        put("voted-leader", i.leader.clone().unwrap_or_else(|| "?".into()));
        put("voted-leader-epoch", i.leader_epoch.to_string());
    }
    let _ = g;
    f
}

fn is_master_down_by_addr(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(port) = parse_i64_strict(&args[3]).ok_or(()) else { return ctx.error(NOT_INTEGER) };
    let Some(epoch) = parse_i64_strict(&args[4]) else { return ctx.error(NOT_INTEGER) };
    let host = lossy(&args[2]);
    let runid = lossy(&args[5]);
    let (down, leader, leader_epoch) = match u16::try_from(port) {
        Ok(port) => with(ctx, |s, now| s.is_master_down_by_addr(&host, port, epoch as u64, &runid, now)),
        Err(_) => (false, "*".to_string(), 0),
    };
    let mut reply = bytes::BytesMut::new();
    Reply::array_len(&mut reply, 3);
    Reply::int(&mut reply, i64::from(down));
    Reply::bulk(&mut reply, leader.as_bytes());
    Reply::int(&mut reply, i64::try_from(leader_epoch).unwrap_or(i64::MAX));
    // A vote (or an adopted epoch) is answered only once it is on disk.
    let must_flush = with(ctx, |s, _| std::mem::take(&mut s.g.flush_config));
    if must_flush && ctx.st.config_file.is_some() {
        ctx.defer(Deferred::SentinelFlush { reply: Some(reply.to_vec()) });
    } else {
        ctx.out.extend_from_slice(&reply);
    }
}

fn monitor(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(quorum) = parse_i64_strict(&args[5]) else { return ctx.error("ERR Invalid quorum") };
    let Some(port) = parse_i64_strict(&args[4]) else { return ctx.error("ERR Invalid port") };
    if quorum <= 0 {
        return ctx.error("ERR Quorum must be 1 or greater.");
    }
    let (name, host) = (lossy(&args[2]), lossy(&args[3]));
    let added = with(ctx, |s, now| {
        if !crate::sentinel::config::valid_host(s, &host) {
            return Err("ERR Invalid IP address or hostname specified");
        }
        crate::sentinel::config::add_master(s, &name, &host, port, quorum, now).map_err(|e| match e {
            "Duplicate master name." => "ERR Duplicate master name.",
            "Invalid port number." => "ERR Invalid port number.",
            _ => "ERR Unknown Error for creating instances.",
        })?;
        let m = &s.masters[&name];
        let text = format!("{} quorum {}", crate::sentinel::at(&m.inst, None), m.quorum);
        s.g.warn(&name, "+monitor", text);
        Ok(())
    });
    match added {
        Ok(()) => flush_and_reply(ctx),
        Err(e) => ctx.error(e),
    }
}

/// `sentinelFlushConfigAndReply`: +OK once the file is written, an error if it could not be.
fn flush_and_reply(ctx: &mut Ctx) {
    if ctx.st.config_file.is_none() {
        return ctx.error("ERR Failed to save config file. Check server logs.");
    }
    ctx.defer(Deferred::SentinelFlush { reply: None });
}

fn ckquorum(ctx: &mut Ctx, name: &Bytes) {
    let name = lossy(name);
    let Some((usable, quorum, voters)) = with(ctx, |s, _| {
        let m = s.masters.get(&name)?;
        let usable = m.sentinels.values().filter(|r| !r.has(flag::S_DOWN | flag::O_DOWN)).count().saturating_add(1);
        Some((usable, m.quorum as usize, m.sentinels.len().saturating_add(1)))
    }) else {
        return ctx.error(NO_SUCH_MASTER);
    };
    let no_quorum = usable < quorum;
    let no_auth = usable < (voters / 2).saturating_add(1);
    if !no_quorum && !no_auth {
        return Reply::simple(
            ctx.out,
            &format!("OK {usable} usable Sentinels. Quorum and failover authorization can be reached"),
        );
    }
    let mut e = format!("NOQUORUM {usable} usable Sentinels. ");
    if no_quorum {
        e.push_str("Not enough available Sentinels to reach the specified quorum for this master");
    }
    if no_auth {
        if no_quorum {
            e.push_str(". ");
        }
        e.push_str("Not enough available Sentinels to reach the majority and authorize a failover");
    }
    ctx.error(&e)
}

/// SENTINEL SET <master> <option> <value> ...: each change is a `+set` event; the file is
/// rewritten once if anything changed.
fn set(ctx: &mut Ctx, args: &[Bytes]) {
    let name = lossy(&args[2]);
    if with(ctx, |s, _| !s.masters.contains_key(&name)) {
        return ctx.error(NO_SUCH_MASTER);
    }
    let mut changes = 0usize;
    let mut j = 3usize;
    while let Some(option) = args.get(j) {
        let opt = lossy(option).to_ascii_lowercase();
        let takes = if opt == "rename-command" { 2 } else { 1 };
        let values: Vec<String> = args.iter().skip(j.saturating_add(1)).take(takes).map(|a| lossy(a)).collect();
        if values.len() < takes || !SET_OPTIONS.contains(&opt.as_str()) {
            if changes > 0 {
                with(ctx, |s, _| s.g.flush_config = true);
            }
            return ctx.error_format(&format!(
                "ERR Unknown option or number of arguments for SENTINEL SET '{}'",
                lossy(option)
            ));
        }
        let deny = with(ctx, |s, _| s.g.deny_scripts_reconfig);
        if deny && opt.ends_with("-script") {
            return ctx.error("ERR Reconfiguration of scripts path is denied for security reasons. Check the deny-scripts-reconfig configuration directive in your Sentinel configuration");
        }
        let script_error = match opt.as_str() {
            "notification-script" => "ERR Notification script seems non existing or non executable",
            "client-reconfig-script" => "ERR Client reconfiguration script seems non existing or non executable",
            _ => "",
        };
        if !script_error.is_empty()
            && !values[0].is_empty()
            && !ctx.env.disk.is_executable(std::path::Path::new(&values[0]))
        {
            if changes > 0 {
                with(ctx, |s, _| s.g.flush_config = true);
            }
            return ctx.error(script_error);
        }
        let result = with(ctx, |s, _| apply_set(s, &name, &opt, &values));
        if let Err(bad) = result {
            if changes > 0 {
                with(ctx, |s, _| s.g.flush_config = true);
            }
            return ctx.error_format(&format!(
                "ERR Invalid argument '{}' for SENTINEL SET '{}'",
                values[bad],
                lossy(option)
            ));
        }
        changes = changes.saturating_add(1);
        let shown = if opt == "auth-pass" { vec!["******".to_string()] } else { values.clone() };
        with(ctx, |s, _| {
            let at = crate::sentinel::at(&s.masters[&name].inst, None);
            s.g.warn(&name, "+set", format!("{at} {} {}", lossy(option), shown.join(" ")));
        });
        j = j.saturating_add(1).saturating_add(takes);
    }
    flush_and_reply(ctx)
}

const SET_OPTIONS: &[&str] = &[
    "down-after-milliseconds",
    "failover-timeout",
    "parallel-syncs",
    "notification-script",
    "client-reconfig-script",
    "auth-pass",
    "auth-user",
    "quorum",
    "rename-command",
    "master-reboot-down-after-period",
];

/// One SENTINEL SET option; Err is the index of the bad value.
fn apply_set(s: &mut Sentinel, name: &str, opt: &str, v: &[String]) -> Result<(), usize> {
    let positive = |x: &str| parse_i64_strict(x.as_bytes()).filter(|n| *n > 0);
    let (g, masters) = (&mut s.g, &mut s.masters);
    let m = masters.get_mut(name).ok_or(0usize)?;
    match opt {
        "down-after-milliseconds" => m.set_down_after(positive(&v[0]).ok_or(0usize)?),
        "failover-timeout" => m.failover_timeout_ms = positive(&v[0]).ok_or(0usize)?,
        "parallel-syncs" => m.parallel_syncs = u32::try_from(positive(&v[0]).ok_or(0usize)?).unwrap_or(u32::MAX),
        "quorum" => m.quorum = u32::try_from(positive(&v[0]).ok_or(0usize)?).unwrap_or(u32::MAX),
        "master-reboot-down-after-period" => {
            m.master_reboot_down_after_ms = parse_i64_strict(v[0].as_bytes()).filter(|n| *n >= 0).ok_or(0usize)?
        }
        "notification-script" => m.notification_script = (!v[0].is_empty()).then(|| v[0].clone()),
        "client-reconfig-script" => m.client_reconfig_script = (!v[0].is_empty()).then(|| v[0].clone()),
        "auth-pass" | "auth-user" => {
            let value = (!v[0].is_empty()).then(|| v[0].clone());
            if opt == "auth-pass" {
                m.auth_pass = value;
            } else {
                m.auth_user = value;
            }
            // New credentials: every link of the group reconnects with them.
            for inst in std::iter::once(&mut m.inst).chain(m.replicas.values_mut()) {
                inst.link = crate::sentinel::instance::Link::new(inst.link.last_avail_ms, g.new_generation());
            }
        }
        "rename-command" => {
            if v[0].is_empty() || v[1].is_empty() {
                return Err(if v[1].is_empty() { 1 } else { 0 });
            }
            let from = v[0].to_ascii_lowercase();
            m.renamed_commands.remove(&from);
            if !from.eq_ignore_ascii_case(&v[1]) {
                m.renamed_commands.insert(from, v[1].clone());
            }
        }
        _ => return Err(0),
    }
    Ok(())
}

/// SENTINEL CONFIG GET|SET: the global options (announce-ip, announce-port, resolve-hostnames,
/// announce-hostnames, sentinel-user, sentinel-pass).
fn config(ctx: &mut Ctx, args: &[Bytes]) {
    let op = lossy(&args[2]).to_ascii_lowercase();
    match (op.as_str(), args.len()) {
        ("get", 4) => {
            let pattern = args[3].clone();
            let pairs = with(ctx, |s, _| {
                let g = &s.g;
                let all = [
                    ("resolve-hostnames", yes_no(g.resolve_hostnames)),
                    ("announce-hostnames", yes_no(g.announce_hostnames)),
                    ("announce-ip", g.announce_ip.clone().unwrap_or_default()),
                    ("announce-port", g.announce_port.to_string()),
                    ("sentinel-user", g.sentinel_user.clone().unwrap_or_default()),
                    ("sentinel-pass", g.sentinel_pass.clone().unwrap_or_default()),
                ];
                all.into_iter()
                    .filter(|(k, _)| crate::glob::glob_match(&pattern, k.as_bytes(), true))
                    .collect::<Vec<_>>()
            });
            ctx.map_len(pairs.len());
            for (k, v) in pairs {
                ctx.bulk(k.as_bytes());
                ctx.bulk(v.as_bytes());
            }
        }
        ("set", 5) => config_set(ctx, &lossy(&args[3]).to_ascii_lowercase(), &lossy(&args[4])),
        _ => ctx.error("ERR Only SENTINEL CONFIG GET <option> / SET <option> <value> are supported."),
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn config_set(ctx: &mut Ctx, option: &str, value: &str) {
    let yn = match value.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    };
    let ok = with(ctx, |s, _| {
        let g = &mut s.g;
        match option {
            "resolve-hostnames" => yn.map(|b| g.resolve_hostnames = b).is_some(),
            "announce-hostnames" => yn.map(|b| g.announce_hostnames = b).is_some(),
            "announce-ip" => {
                g.announce_ip = (!value.is_empty()).then(|| value.to_string());
                true
            }
            "announce-port" => match value.parse::<u16>() {
                Ok(p) => {
                    g.announce_port = p;
                    true
                }
                Err(_) => false,
            },
            "sentinel-user" => {
                g.sentinel_user = (!value.is_empty()).then(|| value.to_string());
                g.new_generation(); // The links to other sentinels reconnect with it.
                true
            }
            "sentinel-pass" => {
                g.sentinel_pass = (!value.is_empty()).then(|| value.to_string());
                g.new_generation();
                true
            }
            _ => false,
        }
    });
    if !ok {
        return ctx.error_format(&format!("ERR Invalid argument '{value}' to SENTINEL CONFIG SET '{option}'"));
    }
    flush_and_reply(ctx)
}

fn info_cache(ctx: &mut Ctx, names: &[Bytes]) {
    let now = ctx.now_ms;
    let wanted: Vec<String> = names.iter().map(|n| lossy(n)).collect();
    let groups = with(ctx, |s, _| {
        s.masters
            .values()
            .filter(|m| wanted.iter().any(|w| w == m.name()))
            .map(|m| {
                let one = |i: &Instance| {
                    (
                        if m.inst.info_refresh_ms != 0 { now.saturating_sub(i.info_refresh_ms) } else { 0 },
                        i.info.clone(),
                    )
                };
                let infos: Vec<(i64, Option<String>)> =
                    std::iter::once(&m.inst).chain(m.replicas.values()).map(one).collect();
                (m.name().to_string(), infos)
            })
            .collect::<Vec<_>>()
    });
    ctx.array_len(groups.len().saturating_mul(2));
    for (name, infos) in groups {
        ctx.bulk(name.as_bytes());
        ctx.array_len(infos.len());
        for (age, info) in infos {
            ctx.array_len(2);
            ctx.int(age);
            match info {
                Some(t) => ctx.bulk(t.as_bytes()),
                None => ctx.null(),
            }
        }
    }
}

/// SENTINEL DEBUG: the timing parameters, or change them (as Redis's tests do).
fn debug(ctx: &mut Ctx, args: &[Bytes]) {
    if args.is_empty() {
        let t = with(ctx, |s, _| s.g.timing.clone());
        let fields = [
            ("INFO-PERIOD", t.info_period_ms),
            ("PING-PERIOD", t.ping_period_ms),
            ("ASK-PERIOD", t.ask_period_ms),
            ("PUBLISH-PERIOD", t.publish_period_ms),
            ("DEFAULT-DOWN-AFTER", t.default_down_after_ms),
            ("DEFAULT-FAILOVER-TIMEOUT", t.default_failover_timeout_ms),
            ("TILT-TRIGGER", t.tilt_trigger_ms),
            ("TILT-PERIOD", t.tilt_period_ms),
            ("SLAVE-RECONF-TIMEOUT", t.slave_reconf_timeout_ms),
            ("MIN-LINK-RECONNECT-PERIOD", t.min_link_reconnect_period_ms),
            ("ELECTION-TIMEOUT", t.election_timeout_ms),
            ("SCRIPT-MAX-RUNTIME", t.script_max_runtime_ms),
            ("SCRIPT-RETRY-DELAY", t.script_retry_delay_ms),
        ];
        ctx.map_len(fields.len());
        for (k, v) in fields {
            ctx.bulk(k.as_bytes());
            ctx.bulk(v.to_string().as_bytes());
        }
        return;
    }
    for pair in args.chunks(2) {
        let option = lossy(&pair[0]).to_ascii_lowercase();
        let Some(value) = pair.get(1) else {
            return ctx
                .error_format(&format!("ERR Unknown option or number of arguments for SENTINEL DEBUG '{option}'"));
        };
        let Some(ms) = parse_i64_strict(value).filter(|v| *v > 0) else {
            return ctx.error_format(&format!("ERR Invalid argument '{}' for SENTINEL DEBUG '{option}'", lossy(value)));
        };
        let known = with(ctx, |s, _| {
            let t = &mut s.g.timing;
            let field = match option.as_str() {
                "info-period" => &mut t.info_period_ms,
                "ping-period" => &mut t.ping_period_ms,
                "ask-period" => &mut t.ask_period_ms,
                "publish-period" => &mut t.publish_period_ms,
                "default-down-after" => &mut t.default_down_after_ms,
                "default-failover-timeout" => &mut t.default_failover_timeout_ms,
                "tilt-trigger" => &mut t.tilt_trigger_ms,
                "tilt-period" => &mut t.tilt_period_ms,
                "slave-reconf-timeout" => &mut t.slave_reconf_timeout_ms,
                "min-link-reconnect-period" => &mut t.min_link_reconnect_period_ms,
                "election-timeout" => &mut t.election_timeout_ms,
                "script-max-runtime" => &mut t.script_max_runtime_ms,
                "script-retry-delay" => &mut t.script_retry_delay_ms,
                _ => return false,
            };
            *field = ms;
            true
        });
        if !known {
            return ctx
                .error_format(&format!("ERR Unknown option or number of arguments for SENTINEL DEBUG '{option}'"));
        }
    }
    ctx.ok()
}

/// Sentinel's PUBLISH: only hellos, which it processes as if received on a channel.
fn publish(ctx: &mut Ctx, args: &[Bytes]) {
    if &args[1][..] != crate::sentinel::HELLO_CHANNEL.as_bytes() {
        return ctx.error("ERR Only HELLO messages are accepted by Sentinel instances.");
    }
    let hello = lossy(&args[2]);
    if ctx.st.sentinel.is_some() {
        with(ctx, |s, now| {
            if !hello.contains(s.g.myid.as_str()) {
                s.process_hello(&hello, now)
            }
        });
    }
    ctx.int(1)
}

/// Sentinel's ROLE: `sentinel` and the names of the masters it monitors.
fn role(ctx: &mut Ctx, _args: &[Bytes]) {
    let names: Vec<String> = match ctx.st.sentinel.as_ref() {
        Some(s) => s.masters.keys().cloned().collect(),
        None => Vec::new(),
    };
    ctx.array_len(2);
    ctx.bulk(b"sentinel");
    ctx.array_len(names.len());
    for n in names {
        ctx.bulk(n.as_bytes());
    }
}

/// Sentinel's INFO: server, clients, cpu, stats and the sentinel section.
fn info(ctx: &mut Ctx, args: &[Bytes]) {
    let mut sections: Vec<String> = args[1..].iter().map(|a| lossy(a).to_ascii_lowercase()).collect();
    let all = sections.is_empty() || sections.iter().any(|s| matches!(s.as_str(), "all" | "everything" | "default"));
    if all {
        sections = ["server", "clients", "cpu", "stats", "sentinel"].map(String::from).to_vec();
    }
    let base: Vec<String> =
        sections.iter().filter(|s| matches!(s.as_str(), "server" | "clients" | "stats")).cloned().collect();
    let mut text = if base.is_empty() { String::new() } else { super::server::info_text(ctx.st, ctx.now_ms, &base) };
    if sections.iter().any(|s| s == "sentinel") {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        text.push_str(&sentinel_section(ctx));
    }
    ctx.verbatim(text.as_bytes())
}

fn sentinel_section(ctx: &mut Ctx) -> String {
    let now = ctx.now_ms;
    let Some(s) = ctx.st.sentinel.as_ref() else { return String::new() };
    let g = &s.g;
    let tilt_since = if g.tilt { now.saturating_sub(g.tilt_start_ms) / 1000 } else { -1 };
    let mut o = format!(
        "# Sentinel\r\nsentinel_masters:{}\r\nsentinel_tilt:{}\r\nsentinel_tilt_since_seconds:{tilt_since}\r\nsentinel_running_scripts:{}\r\nsentinel_scripts_queue_length:{}\r\nsentinel_simulate_failure_flags:0\r\n",
        s.masters.len(),
        u8::from(g.tilt),
        g.scripts.running(),
        g.scripts.jobs.len(),
    );
    for (i, m) in s.masters.values().enumerate() {
        let status = if m.inst.has(flag::O_DOWN) {
            "odown"
        } else if m.inst.has(flag::S_DOWN) {
            "sdown"
        } else {
            "ok"
        };
        o.push_str(&format!(
            "master{i}:name={},status={status},address={}:{},slaves={},sentinels={}\r\n",
            m.name(),
            m.inst.addr.host,
            m.inst.addr.port,
            m.replicas.len(),
            m.sentinels.len().saturating_add(1)
        ));
    }
    o
}

/// SENTINEL PENDING-SCRIPTS (`sentinelPendingScriptsCommand`): the script queue, oldest first;
/// numbers as bulk strings, as Redis sends them.
fn pending_scripts(ctx: &mut Ctx) {
    let jobs: Vec<crate::sentinel::scripts::Job> = with(ctx, |s, _| s.g.scripts.jobs.iter().cloned().collect());
    let now = ctx.now_ms;
    ctx.array_len(jobs.len());
    for j in jobs {
        ctx.map_len(5);
        ctx.bulk(b"argv");
        ctx.array_len(j.argv.len());
        for a in &j.argv {
            ctx.bulk(a.as_bytes());
        }
        ctx.bulk(b"flags");
        ctx.bulk(if j.running { b"running" } else { b"scheduled" });
        ctx.bulk(b"pid");
        ctx.bulk(j.pid.to_string().as_bytes());
        let (key, ms) = if j.running {
            ("run-time", now.saturating_sub(j.start_ms))
        } else {
            ("run-delay", if j.start_ms == 0 { 0 } else { j.start_ms.saturating_sub(now).max(0) })
        };
        ctx.bulk(key.as_bytes());
        ctx.bulk(ms.to_string().as_bytes());
        ctx.bulk(b"retry-num");
        ctx.bulk(j.attempts.to_string().as_bytes());
    }
}
