//! Connection commands: PING, ECHO, AUTH, SELECT, QUIT, HELLO, RESET, CLIENT.

use bytes::Bytes;

use super::*;
use crate::protocol::{Proto, Reply};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "ping", arity: -1, flags: FAST | SUB_OK | STALE, keys: (0, 0, 0), handler: ping },
    CommandSpec { name: "echo", arity: 2, flags: FAST, keys: (0, 0, 0), handler: echo },
    CommandSpec {
        name: "auth",
        arity: -2,
        flags: NO_SCRIPT | FAST | NO_AUTH | STALE | LOADING,
        keys: (0, 0, 0),
        handler: auth,
    },
    CommandSpec { name: "select", arity: 2, flags: FAST | LOADING | STALE, keys: (0, 0, 0), handler: select },
    CommandSpec {
        name: "quit",
        arity: -1,
        flags: NO_SCRIPT | FAST | NO_AUTH | SUB_OK | NO_QUEUE | STALE | LOADING,
        keys: (0, 0, 0),
        handler: quit,
    },
    CommandSpec {
        name: "hello",
        arity: -1,
        flags: NO_SCRIPT | FAST | NO_AUTH | STALE | LOADING,
        keys: (0, 0, 0),
        handler: hello,
    },
    CommandSpec {
        name: "reset",
        arity: 1,
        flags: FAST | NO_AUTH | SUB_OK | NO_QUEUE | STALE | LOADING,
        keys: (0, 0, 0),
        handler: reset,
    },
    CommandSpec {
        name: "client",
        arity: -2,
        flags: NO_SCRIPT | ADMIN | STALE | LOADING,
        keys: (0, 0, 0),
        handler: client,
    },
];

fn ping(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 2 {
        return ctx.error("ERR wrong number of arguments for 'ping' command");
    }
    // In subscribe context RESP2 replies with a pong multibulk, as Redis does, because a plain
    // reply could not be told from a message there; RESP3 replies normally.
    if ctx.client.subscriptions() > 0 && ctx.proto() == Proto::Resp2 {
        Reply::array_len(ctx.out, 2);
        Reply::bulk(ctx.out, b"pong");
        Reply::bulk(ctx.out, args.get(1).map(|a| &a[..]).unwrap_or(b""));
        return;
    }
    match args.get(1) {
        Some(m) => ctx.bulk(m),
        None => Reply::simple(ctx.out, "PONG"),
    }
}

fn echo(ctx: &mut Ctx, args: &[Bytes]) {
    ctx.bulk(&args[1]);
}

fn auth(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() > 3 {
        return ctx.error(SYNTAX);
    }
    let Some(pass) = ctx.st.config.hot.requirepass.clone() else {
        if args.len() == 2 {
            return ctx.error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            );
        }
        // AUTH default <anything> succeeds when the default user has no password (user names
        // are case-sensitive).
        if &args[1][..] == b"default" {
            ctx.client.authenticated = true;
            return ctx.ok();
        }
        return ctx.error("WRONGPASS invalid username-password pair or user is disabled.");
    };
    let (user, given) = if args.len() == 3 { (&args[1][..], &args[2][..]) } else { (&b"default"[..], &args[1][..]) };
    // Constant-time comparison: the password check must not leak the matching prefix length.
    if user == b"default" && constant_time_eq(given, &pass) {
        ctx.client.authenticated = true;
        ctx.ok()
    } else {
        ctx.client.authenticated = false;
        ctx.error("WRONGPASS invalid username-password pair or user is disabled.")
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn select(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(n) = crate::protocol::parse_i64_strict(&args[1]) else {
        return ctx.error(NOT_INTEGER);
    };
    // Redis reads the index as an int.
    if i32::try_from(n).is_err() {
        return ctx.error("ERR value is out of range, value must between -2147483648 and 2147483647");
    }
    if n < 0 || n as usize >= ctx.st.ks.dbs.len() {
        return ctx.error("ERR DB index is out of range");
    }
    ctx.client.db = n as usize;
    ctx.ok()
}

fn quit(ctx: &mut Ctx, _args: &[Bytes]) {
    ctx.client.close = true;
    ctx.ok()
}

fn hello(ctx: &mut Ctx, args: &[Bytes]) {
    // Without a version HELLO keeps the current protocol.
    let mut proto = ctx.proto();
    let mut options = &args[1..];
    if let Some((v, rest)) = options.split_first() {
        proto = match crate::protocol::parse_i64_strict(v) {
            Some(2) => Proto::Resp2,
            Some(3) => Proto::Resp3,
            Some(_) => return ctx.error("NOPROTO unsupported protocol version"),
            None => return ctx.error("ERR Protocol version is not an integer or out of range"),
        };
        options = rest;
    }
    loop {
        match options {
            [] => break,
            [opt, user, password, rest @ ..] if eq_ic(opt, "auth") => {
                // The only user is `default` (case-sensitive); without requirepass any password
                // is accepted for it, as for Redis's nopass default user.
                let pass = ctx.st.config.hot.requirepass.clone();
                let ok = &user[..] == b"default" && pass.is_none_or(|p| constant_time_eq(password, &p));
                if !ok {
                    return ctx.error("WRONGPASS invalid username-password pair or user is disabled.");
                }
                ctx.client.authenticated = true;
                options = rest;
            }
            [opt, name, rest @ ..] if eq_ic(opt, "setname") => {
                if let Err(e) = validate_name(name) {
                    return ctx.error(e);
                }
                ctx.client.name = Some(String::from_utf8_lossy(name).into_owned());
                options = rest;
            }
            [opt, ..] => {
                // Redis formats the option as a C string: it ends at a NUL byte.
                let opt = opt.split(|&b| b == 0).next().unwrap_or_default();
                return ctx.error(&format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(opt)));
            }
        }
    }
    if ctx.st.config.hot.requirepass.is_some() && !ctx.client.authenticated {
        return ctx.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    // The switch happens only once every option succeeded (a failed AUTH keeps the old
    // protocol, as in Redis), and before the reply, which is written in the new protocol. The
    // registry entry (pub/sub delivery) follows at the end of the batch; until then this
    // client's own PUBLISH uses the session's protocol.
    ctx.client.proto = proto;
    ctx.map_len(7);
    Reply::bulk(ctx.out, b"server");
    Reply::bulk(ctx.out, b"redis");
    Reply::bulk(ctx.out, b"version");
    Reply::bulk(ctx.out, crate::REDIS_COMPAT_VERSION.as_bytes());
    Reply::bulk(ctx.out, b"proto");
    Reply::int(ctx.out, proto.version());
    Reply::bulk(ctx.out, b"id");
    Reply::int(ctx.out, ctx.client.id as i64);
    Reply::bulk(ctx.out, b"mode");
    Reply::bulk(ctx.out, b"standalone");
    Reply::bulk(ctx.out, b"role");
    Reply::bulk(ctx.out, b"master");
    Reply::bulk(ctx.out, b"modules");
    Reply::array_len(ctx.out, 0);
}

fn reset(ctx: &mut Ctx, _args: &[Bytes]) {
    let id = ctx.client.id;
    ctx.client.multi = None;
    let watched = std::mem::take(&mut ctx.client.watched);
    ctx.st.watches.unwatch_all(id, &watched);
    let channels = std::mem::take(&mut ctx.client.channels);
    let patterns = std::mem::take(&mut ctx.client.patterns);
    ctx.st.pubsub.remove_client(id, &channels, &patterns);
    ctx.client.db = 0;
    ctx.client.name = None;
    ctx.client.authenticated = false;
    ctx.client.proto = Proto::Resp2;
    Reply::simple(ctx.out, "RESET");
}

fn validate_name(name: &[u8]) -> Result<(), &'static str> {
    if name.iter().any(|&b| b <= b' ' || b > b'~') {
        return Err("ERR Client names cannot contain spaces, newlines or special characters.");
    }
    Ok(())
}

fn client(ctx: &mut Ctx, args: &[Bytes]) {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match (sub.as_str(), args.len()) {
        ("id", 2) => ctx.int(ctx.client.id as i64),
        ("getname", 2) => match ctx.client.name.clone() {
            Some(n) => ctx.bulk(n.as_bytes()),
            None => ctx.null(),
        },
        ("setname", 3) => {
            if let Err(e) = validate_name(&args[2]) {
                return ctx.error(e);
            }
            ctx.client.name =
                if args[2].is_empty() { None } else { Some(String::from_utf8_lossy(&args[2]).into_owned()) };
            ctx.ok()
        }
        ("list", _) => client_list(ctx, args),
        ("info", 2) => {
            let id = ctx.client.id;
            let line = client_line(ctx, id);
            ctx.verbatim(line.as_bytes())
        }
        ("kill", _) => client_kill(ctx, args),
        ("setinfo", 4) => ctx.ok(),
        ("no-evict", 3) | ("no-touch", 3) if eq_ic(&args[2], "on") || eq_ic(&args[2], "off") => ctx.ok(),
        ("no-evict", 3) | ("no-touch", 3) => ctx.error(SYNTAX),
        ("reply", 3) => client_reply(ctx, &args[2]),
        ("pause", 3 | 4) => client_pause(ctx, args),
        ("unblock", 3 | 4) => client_unblock(ctx, args),
        ("unblock", _) => subcommand_syntax_error(ctx, args),
        ("unpause", 2) => {
            ctx.st.pause.by_command = None;
            let now_ms = ctx.now_ms;
            crate::pause::apply_expire_policy(ctx.st, now_ms);
            ctx.st.unpaused.notify_waiters();
            ctx.ok()
        }
        ("help", 2) => {
            let lines = [
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are: ID, ADDR, LADDR, SKIPME.",
                "LIST [options ...]",
                "    Return information about client connections. Options: TYPE, ID.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
            ];
            Reply::array_len(ctx.out, lines.len());
            for l in lines {
                Reply::simple(ctx.out, l);
            }
        }
        (
            "getname" | "id" | "setname" | "info" | "setinfo" | "reply" | "no-evict" | "no-touch" | "help" | "pause"
            | "unpause",
            _,
        ) => ctx.error(&format!("ERR wrong number of arguments for 'client|{sub}' command")),
        _ => ctx.error(&format!("ERR unknown subcommand '{}'. Try CLIENT HELP.", String::from_utf8_lossy(&args[1]))),
    }
}

/// CLIENT UNBLOCK <id> [TIMEOUT|ERROR]: ends a blocked client's wait as a timeout (the
/// default) or with an `-UNBLOCKED` error; 1 if that client was blocked, 0 otherwise.
fn client_unblock(ctx: &mut Ctx, args: &[Bytes]) {
    let as_error = match args.get(3) {
        None => false,
        Some(r) if eq_ic(r, "timeout") => false,
        Some(r) if eq_ic(r, "error") => true,
        Some(_) => return ctx.error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    let Some(id) = arg_i64(ctx, &args[2]) else {
        return;
    };
    let Ok(id) = u64::try_from(id) else {
        return ctx.int(0);
    };
    if !ctx.st.blocking.is_blocked(id) {
        return ctx.int(0);
    }
    let outcome = if as_error {
        let message = "UNBLOCKED client unblocked via CLIENT UNBLOCK".to_string();
        crate::blocking::Outcome::Error { message, close: false }
    } else {
        crate::blocking::Outcome::TimedOut
    };
    crate::fault::probe("blocking.client_unblock");
    ctx.st.blocking.finish(id, outcome);
    ctx.int(1)
}

/// CLIENT PAUSE <ms> [WRITE|ALL]: Redis's checks in its order (the mode first, then the
/// timeout); the end is an absolute clock time, and a pause already running is merged.
fn client_pause(ctx: &mut Ctx, args: &[Bytes]) {
    use crate::pause::PauseKind;
    let kind = match args.get(3) {
        None => PauseKind::All,
        Some(m) if eq_ic(m, "write") => PauseKind::Write,
        Some(m) if eq_ic(m, "all") => PauseKind::All,
        Some(_) => return ctx.error("ERR CLIENT PAUSE mode must be WRITE or ALL"),
    };
    let Some(timeout_ms) = crate::protocol::parse_i64_strict(&args[2]) else {
        return ctx.error("ERR timeout is not an integer or out of range");
    };
    if timeout_ms < 0 {
        return ctx.error("ERR timeout is negative");
    }
    let now_ms = ctx.now_ms;
    // As Redis: a zero timeout is an end time of 0, a pause that has already ended.
    let end_ms = if timeout_ms == 0 { Some(0) } else { now_ms.checked_add(timeout_ms) };
    let Some(end_ms) = end_ms else {
        return ctx.error("ERR timeout is out of range");
    };
    ctx.st.pause.pause_by_command(kind, end_ms, now_ms);
    crate::pause::apply_expire_policy(ctx.st, now_ms);
    ctx.ok()
}

/// One CLIENT LIST line, with Redis's field names.
fn client_line(ctx: &mut Ctx, id: u64) -> String {
    // The calling client's registry entry is refreshed after the batch; use the live session.
    let now = ctx.now_ms;
    let Some(c) = ctx.st.clients.get(&id) else {
        return String::new();
    };
    let (name, db, sub, psub, multi, cmd, proto) = if id == ctx.client.id {
        (
            ctx.client.name.clone().unwrap_or_default(),
            ctx.client.db,
            ctx.client.channels.len(),
            ctx.client.patterns.len(),
            ctx.client.multi.as_ref().map(|m| m.queue.len() as i64).unwrap_or(-1),
            "client|list".to_string(),
            ctx.client.proto,
        )
    } else {
        (c.name.clone().unwrap_or_default(), c.db, c.sub, c.psub, c.multi, c.last_cmd.clone(), c.proto)
    };
    let flags = if ctx.st.repl.link.client_id == Some(id) {
        "M"
    } else if ctx.st.repl.replicas.contains_key(&id) {
        "S"
    } else if sub > 0 || psub > 0 {
        "P"
    } else if multi >= 0 {
        "x"
    } else if ctx.st.blocking.is_blocked(id) {
        "b"
    } else {
        "N"
    };
    format!(
        "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags={} db={} sub={} psub={} ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={}",
        c.id,
        c.addr,
        c.laddr,
        name,
        now.saturating_sub(c.created_ms).max(0) / 1000,
        now.saturating_sub(c.last_active_ms).max(0) / 1000,
        flags,
        db,
        sub,
        psub,
        multi,
        cmd,
        proto.version()
    )
}

fn client_list(ctx: &mut Ctx, args: &[Bytes]) {
    let mut ids: Vec<u64> = ctx.st.clients.keys().copied().collect();
    // Redis's shapes: no option, `TYPE <type>` alone, or `ID <id> [<id> ...]`.
    if args.len() == 4 && eq_ic(&args[2], "type") {
        let Some(kind) = ClientType::parse(&args[3]) else {
            let t = String::from_utf8_lossy(&args[3]).into_owned();
            return ctx.error(&format!("ERR Unknown client type '{t}'"));
        };
        let st = &*ctx.st;
        ids.retain(|id| st.clients.get(id).is_some_and(|c| ClientType::of(st, c) == kind));
    } else if args.len() > 3 && eq_ic(&args[2], "id") {
        let mut wanted = Vec::new();
        for a in &args[3..] {
            match crate::protocol::parse_i64_strict(a) {
                Some(v) if v > 0 => wanted.push(v as u64),
                _ => return ctx.error("ERR Invalid client ID"),
            }
        }
        ids.retain(|id| wanted.contains(id));
    } else if args.len() != 2 {
        return ctx.error(SYNTAX);
    }
    let mut text = String::new();
    for id in ids {
        text.push_str(&client_line(ctx, id));
        text.push('\n');
    }
    ctx.verbatim(text.as_bytes())
}

/// CLIENT REPLY ON|OFF|SKIP, as Redis: OFF and SKIP answer nothing themselves; the connection
/// drops the output of suppressed commands (see `Session::reply_suppressed`).
fn client_reply(ctx: &mut Ctx, mode: &[u8]) {
    if eq_ic(mode, "on") {
        ctx.client.reply_off = false;
        ctx.client.reply_skip = false;
        ctx.ok()
    } else if eq_ic(mode, "off") {
        ctx.client.reply_off = true;
    } else if eq_ic(mode, "skip") {
        if !ctx.client.reply_off {
            ctx.client.reply_skip_next = true;
        }
    } else {
        ctx.error(SYNTAX)
    }
}

/// Redis's client classes (`getClientType`), for CLIENT KILL/LIST TYPE and output limits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ClientType {
    Normal,
    Replica,
    Master,
    Pubsub,
}

impl ClientType {
    fn parse(name: &[u8]) -> Option<ClientType> {
        match name.to_ascii_lowercase().as_slice() {
            b"normal" => Some(ClientType::Normal),
            b"slave" | b"replica" => Some(ClientType::Replica),
            b"pubsub" => Some(ClientType::Pubsub),
            b"master" => Some(ClientType::Master),
            _ => None,
        }
    }

    /// The class of a registered client: this replica's link to its master, a replica attached
    /// by PSYNC, a subscriber, or normal.
    pub fn of(st: &crate::server::State, c: &crate::server::ClientEntry) -> ClientType {
        if st.repl.link.client_id == Some(c.id) {
            ClientType::Master
        } else if st.repl.replicas.contains_key(&c.id) {
            ClientType::Replica
        } else if c.sub > 0 || c.psub > 0 {
            ClientType::Pubsub
        } else {
            ClientType::Normal
        }
    }
}

/// CLIENT KILL's filters; a client must match every one given.
#[derive(Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<String>,
    laddr: Option<String>,
    kind: Option<ClientType>,
    /// Only clients connected at least this many seconds (MAXAGE, Redis 7.4's filter).
    age_secs_min: Option<i64>,
    skipme: bool,
}

/// Parses `CLIENT KILL <filter> <value> ...`; replies with Redis's error and returns None.
fn parse_kill_filter(ctx: &mut Ctx, args: &[Bytes]) -> Option<KillFilter> {
    let mut f = KillFilter { skipme: true, ..KillFilter::default() };
    if args.len() % 2 != 0 {
        ctx.error(SYNTAX);
        return None;
    }
    for pair in args[2..].chunks(2) {
        let (opt, v) = (&pair[0], &pair[1]);
        if eq_ic(opt, "id") {
            match crate::protocol::parse_i64_strict(v) {
                Some(id) if id > 0 => f.id = Some(id as u64),
                _ => {
                    ctx.error("ERR client-id should be greater than 0");
                    return None;
                }
            }
        } else if eq_ic(opt, "type") {
            let Some(kind) = ClientType::parse(v) else {
                ctx.error(&format!("ERR Unknown client type '{}'", String::from_utf8_lossy(v)));
                return None;
            };
            f.kind = Some(kind);
        } else if eq_ic(opt, "addr") {
            f.addr = Some(String::from_utf8_lossy(v).into_owned());
        } else if eq_ic(opt, "laddr") {
            f.laddr = Some(String::from_utf8_lossy(v).into_owned());
        } else if eq_ic(opt, "user") {
            // One user exists: `default`, the user every connection is.
            if &v[..] != b"default" {
                ctx.error(&format!("ERR No such user '{}'", String::from_utf8_lossy(v)));
                return None;
            }
        } else if eq_ic(opt, "maxage") {
            f.age_secs_min = Some(arg_i64(ctx, v)?);
        } else if eq_ic(opt, "skipme") {
            f.skipme = match v.to_ascii_lowercase().as_slice() {
                b"yes" => true,
                b"no" => false,
                _ => {
                    ctx.error(SYNTAX);
                    return None;
                }
            };
        } else {
            ctx.error(SYNTAX);
            return None;
        }
    }
    Some(f)
}

fn client_kill(ctx: &mut Ctx, args: &[Bytes]) {
    // Old form: CLIENT KILL addr:port -> +OK or error (and it may kill the caller).
    if args.len() == 3 {
        let target = String::from_utf8_lossy(&args[2]).into_owned();
        let found: Vec<u64> = ctx.st.clients.values().filter(|c| c.addr == target).map(|c| c.id).collect();
        if found.is_empty() {
            return ctx.error("ERR No such client");
        }
        kill_ids(ctx, &found);
        return ctx.ok();
    }
    let Some(f) = parse_kill_filter(ctx, args) else {
        return;
    };
    let (me, now_ms) = (ctx.client.id, ctx.now_ms);
    let st = &*ctx.st;
    let found: Vec<u64> = st
        .clients
        .values()
        .filter(|c| f.id.is_none_or(|id| c.id == id))
        .filter(|c| f.addr.as_ref().is_none_or(|a| &c.addr == a))
        .filter(|c| f.laddr.as_ref().is_none_or(|a| &c.laddr == a))
        .filter(|c| f.kind.is_none_or(|k| ClientType::of(st, c) == k))
        .filter(|c| f.age_secs_min.is_none_or(|age| now_ms.saturating_sub(c.created_ms) / 1000 >= age))
        .filter(|c| !(f.skipme && c.id == me))
        .map(|c| c.id)
        .collect();
    kill_ids(ctx, &found);
    ctx.int(found.len() as i64)
}

fn kill_ids(ctx: &mut Ctx, ids: &[u64]) {
    for id in ids {
        if *id == ctx.client.id {
            // Killing yourself closes after the reply, as Redis does.
            ctx.client.close = true;
        } else if let Some(c) = ctx.st.clients.get(id) {
            c.request_kill();
        }
    }
}
