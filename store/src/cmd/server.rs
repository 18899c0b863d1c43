//! Server commands: INFO, CONFIG, DBSIZE, FLUSHDB, FLUSHALL, TIME, COMMAND, SHUTDOWN, DEBUG,
//! LASTSAVE.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::config::{Config, SetError};
use crate::db::digest;
use crate::protocol::{Proto, Reply};
use crate::server::ShutdownMode;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "info", arity: -1, flags: STALE | LOADING, keys: (0, 0, 0), handler: info },
    CommandSpec {
        name: "config",
        arity: -2,
        flags: NO_SCRIPT | ADMIN | STALE | LOADING,
        keys: (0, 0, 0),
        handler: config,
    },
    CommandSpec { name: "dbsize", arity: 1, flags: READONLY | FAST, keys: (0, 0, 0), handler: dbsize },
    CommandSpec { name: "flushdb", arity: -1, flags: WRITE, keys: (0, 0, 0), handler: flushdb },
    CommandSpec { name: "flushall", arity: -1, flags: WRITE, keys: (0, 0, 0), handler: flushall },
    CommandSpec { name: "time", arity: 1, flags: FAST | STALE | LOADING, keys: (0, 0, 0), handler: time },
    CommandSpec { name: "command", arity: -1, flags: STALE | LOADING, keys: (0, 0, 0), handler: command },
    CommandSpec {
        name: "shutdown",
        arity: -1,
        flags: NO_SCRIPT | ADMIN | NO_MULTI | STALE | LOADING,
        keys: (0, 0, 0),
        handler: shutdown,
    },
    CommandSpec {
        name: "debug",
        arity: -2,
        flags: NO_SCRIPT | ADMIN | STALE | LOADING,
        keys: (0, 0, 0),
        handler: debug,
    },
    CommandSpec { name: "save", arity: 1, flags: NO_SCRIPT | ADMIN | NO_MULTI, keys: (0, 0, 0), handler: save },
    CommandSpec { name: "bgsave", arity: -1, flags: NO_SCRIPT | ADMIN, keys: (0, 0, 0), handler: bgsave },
    CommandSpec { name: "bgrewriteaof", arity: 1, flags: NO_SCRIPT | ADMIN, keys: (0, 0, 0), handler: bgrewriteaof },
    CommandSpec { name: "lastsave", arity: 1, flags: FAST | STALE | LOADING, keys: (0, 0, 0), handler: lastsave },
];

fn human_bytes(n: u64) -> String {
    let f = n as f64;
    if n < 1024 {
        format!("{n}B")
    } else if n < 1 << 20 {
        format!("{:.2}K", f / 1024.0)
    } else if n < 1 << 30 {
        format!("{:.2}M", f / (1 << 20) as f64)
    } else {
        format!("{:.2}G", f / (1u64 << 30) as f64)
    }
}

/// Resident set size in bytes, where the platform tells it.
fn rss_bytes() -> u64 {
    #[cfg(all(target_os = "linux", not(madsim)))]
    {
        // Reading procfs is an OS query, not persistence; it is compiled out of the simulator.
        if let Ok(s) = std::fs::read_to_string("/proc/self/statm") {
            if let Some(pages) = s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()) {
                return pages.saturating_mul(4096);
            }
        }
    }
    crate::alloc::used_memory() as u64
}

/// Builds the INFO text for the requested sections (Redis's names and order).
pub fn info_text(st: &State, now_ms: i64, sections: &[String]) -> String {
    let all = sections.is_empty() || sections.iter().any(|s| s == "all" || s == "everything" || s == "default");
    let want = |s: &str| all || sections.iter().any(|x| x == s);
    let mut o = String::new();
    let uptime = (now_ms.saturating_sub(st.start_ms) / 1000).max(0);
    if want("server") {
        let _ = write!(
            o,
            "# Server\r\nredis_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:{}\r\nos:{}\r\narch_bits:64\r\nmultiplexing_api:tokio\r\natomicvar_api:c11-builtin\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nexecutable:\r\nconfig_file:{}\r\nio_threads_active:0\r\nstore_version:{}\r\n\r\n",
            crate::REDIS_COMPAT_VERSION,
            if st.sentinel.is_some() { "sentinel" } else { "standalone" },
            std::env::consts::OS,
            std::process::id(),
            st.run_id,
            st.port,
            now_ms.saturating_mul(1000),
            uptime,
            uptime / 86400,
            st.config.hot.hz,
            st.config.hot.hz,
            st.config_file.clone().unwrap_or_default(),
            env!("CARGO_PKG_VERSION"),
        );
    }
    if want("clients") {
        let pubsub = st.clients.values().filter(|c| c.sub > 0 || c.psub > 0).count();
        let _ = write!(
            o,
            "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:0\r\npubsub_clients:{}\r\nclients_in_timeout_table:{}\r\n\r\n",
            st.clients.len(),
            st.config.hot.maxclients,
            st.blocking.len(),
            pubsub,
            st.blocking.with_deadline()
        );
    }
    if want("memory") {
        let used = crate::alloc::used_memory() as u64;
        let peak = crate::alloc::peak_memory() as u64;
        let rss = rss_bytes();
        let max = st.config.hot.maxmemory;
        // While a script runs (INFO from the script itself) its engine is out of the state.
        let lua = st.scripting.as_ref().map_or(0, |e| e.memory_bytes()) as u64;
        let scripts = st.scripting.as_ref().map_or(0, |e| e.len());
        let _ = write!(
            o,
            "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nused_memory_lua:{lua}\r\nused_memory_vm_eval:{lua}\r\nused_memory_lua_human:{}\r\nnumber_of_cached_scripts:{scripts}\r\nused_memory_vm_total:{lua}\r\nused_memory_vm_total_human:{}\r\nmaxmemory:{max}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_allocator:libc\r\n\r\n",
            human_bytes(used),
            human_bytes(rss),
            human_bytes(peak),
            human_bytes(lua),
            human_bytes(lua),
            human_bytes(max),
            st.config.hot.maxmemory_policy,
            if used > 0 { rss as f64 / used as f64 } else { 0.0 },
        );
    }
    if want("persistence") {
        let _ = write!(
            o,
            "# Persistence\r\nloading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\n{}\r\n",
            st.dirty,
            st.save.bgsave_in_progress as u8,
            st.lastsave_ms / 1000,
            if st.save.last_bgsave_ok { "ok" } else { "err" },
            st.save.last_bgsave_duration_s,
            if st.save.bgsave_in_progress { now_ms.saturating_sub(st.save.bgsave_started_ms) / 1000 } else { -1 },
            st.save.saves_total,
            crate::aof::info_fields(st, now_ms),
        );
    }
    if want("stats") {
        let s = &st.stats;
        let _ = write!(
            o,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{}\r\nevicted_keys:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\ntotal_error_replies:{}\r\nclient_output_buffer_limit_disconnections:{}\r\n\r\n",
            s.total_connections_received,
            s.total_commands_processed,
            s.net_input_bytes,
            s.net_output_bytes,
            s.rejected_connections,
            st.repl.sync_full,
            st.repl.sync_partial_ok,
            st.repl.sync_partial_err,
            st.ks.expired_total,
            s.keyspace_hits,
            s.keyspace_misses,
            st.pubsub.channels.len(),
            st.pubsub.patterns.len(),
            s.total_error_replies,
            s.client_output_limit_disconnections,
        );
    }
    if want("replication") {
        o.push_str(&crate::replication::info_section(st, now_ms));
        o.push_str("\r\n");
    }
    if want("keyspace") {
        o.push_str("# Keyspace\r\n");
        for (i, db) in st.ks.dbs.iter().enumerate() {
            if !db.is_empty() {
                let _ = write!(o, "db{}:keys={},expires={},avg_ttl=0\r\n", i, db.len(), db.expires_len());
            }
        }
        o.push_str("\r\n");
    }
    // Drop the final blank line, as Redis does.
    while o.ends_with("\r\n\r\n") {
        o.pop();
        o.pop();
    }
    o
}

fn info(ctx: &mut Ctx, args: &[Bytes]) {
    let sections: Vec<String> = args[1..].iter().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    let text = info_text(ctx.st, ctx.now_ms, &sections);
    ctx.verbatim(text.as_bytes())
}

/// CONFIG SET dir: Redis `chdir`s, so a relative directory is taken from the current one, and
/// one that does not exist is refused with the system's reason (never accepted, to fail every
/// later SAVE).
fn resolve_dir(ctx: &Ctx, current: &str, requested: &str) -> Result<String, String> {
    let requested_path = std::path::Path::new(requested);
    let path = if requested_path.is_absolute() {
        requested_path.to_path_buf()
    } else {
        std::path::Path::new(current).join(requested_path)
    };
    ctx.env.disk.check_dir(&path).map_err(|e| crate::env::strerror(&e))?;
    Ok(path.display().to_string())
}

/// Settings held outside the configuration that a CONFIG SET must reach at once: the live
/// replication backlog is resized (keeping its newest bytes), as Redis's `updateReplBacklogSize`.
fn apply_live_settings(ctx: &mut Ctx, backlog_size_before: usize) {
    let backlog_size = ctx.st.config.hot.repl_backlog_size;
    if backlog_size != backlog_size_before {
        if let Some(backlog) = ctx.st.repl.backlog.as_mut() {
            let size = backlog_size.max(crate::replication::BACKLOG_SIZE_MIN);
            backlog.resize(size);
        }
    }
}

fn config(ctx: &mut Ctx, args: &[Bytes]) {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match sub.as_str() {
        "get" if args.len() >= 3 => {
            let mut found = BTreeMap::new();
            for p in &args[2..] {
                ctx.st.config.get_matching(p, &mut found);
            }
            ctx.map_len(found.len());
            for (k, v) in found {
                Reply::bulk(ctx.out, k.as_bytes());
                Reply::bulk(ctx.out, v.as_bytes());
            }
        }
        "set" if args.len() % 2 != 0 => ctx.error(SYNTAX),
        "set" if args.len() >= 4 => {
            // Several pairs apply atomically: validate on a copy, then swap in.
            let mut next = ctx.st.config.clone();
            for pair in args[2..].chunks(2) {
                let name = String::from_utf8_lossy(&pair[0]).into_owned();
                let mut value = String::from_utf8_lossy(&pair[1]).into_owned();
                if let Some(canon) = Config::canonical_name(&name) {
                    if !next.may_set(canon, ctx.client.is_local) {
                        // Redis names the argument as the client wrote it.
                        return ctx.error(&format!(
                            "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set protected config"
                        ));
                    }
                    if canon == "dir" {
                        match resolve_dir(ctx, next.get("dir").unwrap_or("."), &value) {
                            Ok(dir) => value = dir,
                            Err(reason) => {
                                return ctx.error(&format!(
                                    "ERR CONFIG SET failed (possibly related to argument 'dir') - {reason}"
                                ))
                            }
                        }
                    }
                }
                match next.set(&name, &value) {
                    Ok(()) => {}
                    Err(SetError::Unknown) => {
                        return ctx
                            .error(&format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'"))
                    }
                    Err(SetError::Invalid(canon, reason)) => {
                        // As Redis: a refusal names the argument as written, a bad value the
                        // directive's own name.
                        let arg = if reason == "can't set immutable config" { name.as_str() } else { canon };
                        return ctx.error(&format!(
                            "ERR CONFIG SET failed (possibly related to argument '{arg}') - {reason}"
                        ));
                    }
                }
            }
            let backlog_size_before = ctx.st.config.hot.repl_backlog_size;
            let aof_before = crate::aof::configured(ctx.st);
            ctx.st.config = next;
            apply_live_settings(ctx, backlog_size_before);
            match (aof_before, crate::aof::configured(ctx.st)) {
                // The AOF starts (a rewrite) or stops (a final fsync) before the reply.
                (false, true) => ctx.defer(Deferred::Appendonly(true)),
                (true, false) => ctx.defer(Deferred::Appendonly(false)),
                _ => ctx.ok(),
            }
        }
        "rewrite" if args.len() == 2 => {
            let Some(path) = ctx.st.config_file.clone() else {
                return ctx.error("ERR The server is running without a config file");
            };
            // The text is made when the write starts (see `Shared::config_writes`).
            ctx.defer(Deferred::WriteConfig { path: path.into() });
        }
        "resetstat" if args.len() == 2 => {
            ctx.st.stats = Default::default();
            ctx.ok()
        }
        "help" => {
            let lines = [
                "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
                "REWRITE",
                "    Rewrite the configuration file.",
            ];
            Reply::array_len(ctx.out, lines.len());
            for l in lines {
                Reply::simple(ctx.out, l);
            }
        }
        "get" | "set" | "rewrite" | "resetstat" => {
            ctx.error(&format!("ERR wrong number of arguments for 'config|{sub}' command"))
        }
        _ => ctx.error(&format!("ERR unknown subcommand '{}'. Try CONFIG HELP.", String::from_utf8_lossy(&args[1]))),
    }
}

fn dbsize(ctx: &mut Ctx, _args: &[Bytes]) {
    let n = ctx.st.ks.dbs[ctx.client.db].len();
    ctx.int(n as i64)
}

fn flush_mode_ok(ctx: &mut Ctx, args: &[Bytes]) -> bool {
    match args.len() {
        1 => true,
        2 if eq_ic(&args[1], "async") || eq_ic(&args[1], "sync") => true,
        _ => {
            ctx.error(SYNTAX);
            false
        }
    }
}

fn flushdb(ctx: &mut Ctx, args: &[Bytes]) {
    if !flush_mode_ok(ctx, args) {
        return;
    }
    let db = ctx.client.db;
    let n = ctx.st.ks.dbs[db].len() as u64;
    let dbs = &ctx.st.ks.dbs;
    ctx.st.watches.touch_existing_in_db(Some(db), |d, k| dbs[d].get_raw(k).is_some());
    ctx.st.ks.dbs[db].clear();
    ctx.dirty(n.max(1));
    ctx.ok()
}

fn flushall(ctx: &mut Ctx, args: &[Bytes]) {
    if !flush_mode_ok(ctx, args) {
        return;
    }
    let dbs = &ctx.st.ks.dbs;
    ctx.st.watches.touch_existing_in_db(None, |d, k| dbs[d].get_raw(k).is_some());
    let mut n = 0u64;
    for db in ctx.st.ks.dbs.iter_mut() {
        n = n.saturating_add(db.len() as u64);
        db.clear();
    }
    ctx.dirty(n.max(1));
    ctx.ok()
}

fn time(ctx: &mut Ctx, _args: &[Bytes]) {
    let us = ctx.env.clock.now_us();
    Reply::array_len(ctx.out, 2);
    Reply::bulk(ctx.out, (us / 1_000_000).to_string().as_bytes());
    Reply::bulk(ctx.out, (us % 1_000_000).to_string().as_bytes());
}

/// SCRIPT, without a script engine yet (issue: scripting): no script ever runs and none is
/// cached, so KILL answers NOTBUSY (what a sentinel sends to an instance it saw -BUSY), FLUSH
/// has nothing to drop and EXISTS finds nothing; LOAD says scripting is not available.
fn lastsave(ctx: &mut Ctx, _args: &[Bytes]) {
    let t = ctx.st.lastsave_ms / 1000;
    ctx.int(t)
}

/// One COMMAND entry. Flags, ACL categories, tips, key specs and subcommands are sets in RESP3,
/// as Redis 7.0 sends them.
fn command_entry(out: &mut BytesMut, proto: Proto, spec: &CommandSpec) {
    Reply::array_len(out, 10);
    Reply::bulk(out, spec.name.as_bytes());
    Reply::int(out, spec.arity as i64);
    let flags = spec.flag_names();
    Reply::set_len(out, proto, flags.len());
    for f in flags {
        Reply::simple(out, f);
    }
    Reply::int(out, spec.keys.0 as i64);
    Reply::int(out, spec.keys.1 as i64);
    Reply::int(out, spec.keys.2 as i64);
    Reply::set_len(out, proto, 0); // ACL categories
    Reply::set_len(out, proto, 0); // tips
    Reply::set_len(out, proto, 0); // key specs
    Reply::set_len(out, proto, 0); // subcommands
}

fn command(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() == 1 {
        let specs = ctx.st.commands.specs.clone();
        Reply::array_len(ctx.out, specs.len());
        let proto = ctx.proto();
        for s in specs {
            command_entry(ctx.out, proto, s);
        }
        return;
    }
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match sub.as_str() {
        "count" => {
            let n = ctx.st.commands.specs.len();
            ctx.int(n as i64)
        }
        "info" => {
            let names = &args[2..];
            Reply::array_len(ctx.out, names.len());
            for name in names {
                match ctx.st.commands.lookup(name) {
                    Some(s) => command_entry(ctx.out, ctx.client.proto, s),
                    None => ctx.null_array(),
                }
            }
        }
        // redis-cli asks for docs to show hints; an empty map means "no docs", which it accepts.
        "docs" => ctx.map_len(0),
        "list" => command_list(ctx, args),
        "getkeys" if args.len() >= 4 => command_getkeys(ctx, &args[2..]),
        "getkeys" => ctx.error("ERR wrong number of arguments for 'command|getkeys' command"),
        "help" if args.len() == 2 => super::reply_help(
            ctx,
            args,
            &[
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full Redis command.",
            ],
        ),
        _ => ctx.error(&format!("ERR unknown subcommand '{}'. Try COMMAND HELP.", String::from_utf8_lossy(&args[1]))),
    }
}

/// COMMAND LIST [FILTERBY MODULE <name> | ACLCAT <category> | PATTERN <glob>]. There are no
/// modules; ACL categories are approximated from the command flags until ACLs exist.
fn command_list(ctx: &mut Ctx, args: &[Bytes]) {
    let filter: Box<dyn Fn(&CommandSpec) -> bool> = match args.len() {
        2 => Box::new(|_| true),
        5 if eq_ic(&args[2], "filterby") => {
            let value = args[4].clone();
            if eq_ic(&args[3], "module") {
                Box::new(|_| false)
            } else if eq_ic(&args[3], "pattern") {
                Box::new(move |s: &CommandSpec| crate::glob::glob_match(&value, s.name.as_bytes(), true))
            } else if eq_ic(&args[3], "aclcat") {
                let flag = match value.to_ascii_lowercase().as_slice() {
                    b"read" => READONLY,
                    b"write" => WRITE,
                    b"admin" | b"dangerous" => ADMIN,
                    b"fast" => FAST,
                    b"pubsub" => PUBSUB,
                    _ => 0,
                };
                Box::new(move |s: &CommandSpec| flag != 0 && s.flags & flag != 0)
            } else {
                return ctx.error(SYNTAX);
            }
        }
        _ => return ctx.error(SYNTAX),
    };
    let names: Vec<&str> = ctx.st.commands.specs.iter().filter(|s| filter(s)).map(|s| s.name).collect();
    Reply::bulk_array(ctx.out, names.iter());
}

/// COMMAND GETKEYS <command> <args...>: the keys, by the command's key positions (or its
/// numkeys argument: SINTERCARD, LMPOP...), with Redis's errors for a wrong arity or bad arguments.
fn command_getkeys(ctx: &mut Ctx, full: &[Bytes]) {
    let Some(spec) = ctx.st.commands.lookup(&full[0]).filter(|s| super::known_subcommand(s, full)) else {
        return ctx.error("ERR Invalid command specified");
    };
    let movable = super::movable_keys(spec.name, full).map(|keys| keys.into_iter().cloned().collect::<Vec<_>>());
    if spec.keys.0 <= 0 && movable.is_none() {
        return ctx.error("ERR The command has no key arguments");
    }
    if !super::arity_ok(spec.arity, full.len()) {
        return ctx.error("ERR Invalid number of arguments specified for command");
    }
    let keys: Vec<Bytes> = match movable {
        // No keys: fine for the scripts (Redis's `no_mandatory_keys`); else a `numkeys` that
        // is not a positive count of the arguments present.
        Some(keys) if keys.is_empty() && spec.name.starts_with("eval") => return ctx.array_len(0),
        Some(keys) if keys.is_empty() => return ctx.error("ERR Invalid arguments specified for command"),
        Some(keys) => keys,
        None => spec.key_args(full).into_iter().cloned().collect(),
    };
    if keys.is_empty() {
        return ctx.error("ERR The command has no key arguments");
    }
    Reply::bulk_array(ctx.out, keys.iter())
}

fn shutdown(ctx: &mut Ctx, args: &[Bytes]) {
    let mut mode = ShutdownMode::Default;
    for a in &args[1..] {
        if eq_ic(a, "nosave") {
            mode = ShutdownMode::NoSave;
        } else if eq_ic(a, "save") {
            mode = ShutdownMode::Save;
        } else if eq_ic(a, "now") || eq_ic(a, "force") {
        } else if eq_ic(a, "abort") {
            return ctx.error("ERR No shutdown in progress.");
        } else {
            return ctx.error(SYNTAX);
        }
    }
    // The save (if any) and the stop happen in the connection, outside the lock.
    ctx.defer(Deferred::Shutdown(mode));
}

fn save(ctx: &mut Ctx, _args: &[Bytes]) {
    if crate::persistence::busy(ctx.st) {
        return ctx.error("ERR Background save already in progress");
    }
    ctx.defer(Deferred::Save);
}

fn bgsave(ctx: &mut Ctx, args: &[Bytes]) {
    let schedule = match args.len() {
        1 => false,
        2 if eq_ic(&args[1], "schedule") => true,
        _ => return ctx.error(SYNTAX),
    };
    ctx.defer(Deferred::BgSave { schedule });
}

/// BGREWRITEAOF: started at once (a deferred step, it spawns the rewrite), or scheduled inside
/// a transaction, as Redis does.
fn bgrewriteaof(ctx: &mut Ctx, _args: &[Bytes]) {
    if ctx.client.in_exec {
        if ctx.st.aof.rewrite.in_progress {
            return ctx.error(crate::aof::rewrite::ALREADY);
        }
        ctx.st.aof.rewrite.scheduled = true;
        return Reply::simple(ctx.out, crate::aof::rewrite::SCHEDULED);
    }
    ctx.defer(Deferred::BgRewriteAof);
}

fn debug(ctx: &mut Ctx, args: &[Bytes]) {
    // Redis 7 refuses DEBUG unless enable-debug-command allows it (yes, or local for loopback).
    if !ctx.st.config.hot.enable_debug_command.allows(ctx.client.is_local) {
        return ctx.error("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.");
    }
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match sub.as_str() {
        "digest" if args.len() == 2 => {
            let d = digest::digest_all(&ctx.st.ks.dbs);
            Reply::simple(ctx.out, &digest::to_hex(&d))
        }
        "digest-value" => {
            let db = ctx.client.db;
            let keys = &args[2..];
            Reply::array_len(ctx.out, keys.len());
            for k in keys {
                let d = match ctx.st.ks.dbs[db].get_raw(k) {
                    Some(v) => digest::digest_value(v),
                    None => [0; 3],
                };
                Reply::simple(ctx.out, &digest::to_hex(&d));
            }
        }
        "sleep" if args.len() == 3 => {
            // Redis reads the seconds with strtold and takes what does not parse as 0.
            let secs = parse_f64(&args[2]).unwrap_or(0.0);
            let ms = (secs * 1000.0).clamp(0.0, 3_600_000.0) as u64;
            ctx.defer(Deferred::Sleep(Duration::from_millis(ms)));
        }
        "set-active-expire" if args.len() == 3 => ctx.ok(),
        "object" if args.len() == 3 => {
            let db = ctx.client.db;
            let Some(v) = ctx.st.ks.lookup(db, &args[2], ctx.now_ms) else {
                return ctx.error(NO_SUCH_KEY);
            };
            let enc = match v {
                Value::Str(s) if crate::protocol::parse_i64_strict(s).is_some() => "int",
                Value::Str(s) if s.len() <= 44 => "embstr",
                Value::Str(_) => "raw",
                Value::List(_) => "quicklist",
                Value::Hash(_) | Value::Set(_) => "hashtable",
                Value::ZSet(_) => "skiplist",
            };
            let line = format!("Value at:0x0 refcount:1 encoding:{enc} serializedlength:0 lru:0 lru_seconds_idle:0");
            Reply::simple(ctx.out, &line)
        }
        "help" if args.len() == 2 => {
            let lines = [
                "DEBUG <subcommand>. Subcommands are:",
                "DIGEST",
                "DIGEST-VALUE <key> ...",
                "OBJECT <key>",
                "SLEEP <seconds>",
            ];
            Reply::array_len(ctx.out, lines.len());
            for l in lines {
                Reply::simple(ctx.out, l);
            }
        }
        // Redis's `addReplySubcommandSyntaxError`: the name cut to 128 bytes.
        _ => subcommand_syntax_error(ctx, args),
    }
}
