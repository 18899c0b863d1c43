//! String commands: SET (all options), GET, GETSET, GETDEL, GETEX, MSET, MSETNX, MGET, SETNX,
//! SETEX, PSETEX, INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT, APPEND, STRLEN, GETRANGE, SETRANGE.

use bytes::Bytes;

use super::*;
use crate::protocol::{parse_i64_strict, Reply};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "get", arity: 2, flags: READONLY | FAST, keys: (1, 1, 1), handler: get },
    CommandSpec { name: "set", arity: -3, flags: WRITE | DENYOOM, keys: (1, 1, 1), handler: set },
    CommandSpec { name: "setnx", arity: 3, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: setnx },
    CommandSpec { name: "setex", arity: 4, flags: WRITE | DENYOOM, keys: (1, 1, 1), handler: setex },
    CommandSpec { name: "psetex", arity: 4, flags: WRITE | DENYOOM, keys: (1, 1, 1), handler: psetex },
    CommandSpec { name: "getset", arity: 3, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: getset },
    CommandSpec { name: "getdel", arity: 2, flags: WRITE | FAST, keys: (1, 1, 1), handler: getdel },
    CommandSpec { name: "getex", arity: -2, flags: WRITE | FAST, keys: (1, 1, 1), handler: getex },
    CommandSpec { name: "mset", arity: -3, flags: WRITE | DENYOOM, keys: (1, -1, 2), handler: mset },
    CommandSpec { name: "msetnx", arity: -3, flags: WRITE | DENYOOM, keys: (1, -1, 2), handler: msetnx },
    CommandSpec { name: "mget", arity: -2, flags: READONLY | FAST, keys: (1, -1, 1), handler: mget },
    CommandSpec { name: "incr", arity: 2, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: incr },
    CommandSpec { name: "decr", arity: 2, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: decr },
    CommandSpec { name: "incrby", arity: 3, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: incrby },
    CommandSpec { name: "decrby", arity: 3, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: decrby },
    CommandSpec { name: "incrbyfloat", arity: 3, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: incrbyfloat },
    CommandSpec { name: "append", arity: 3, flags: WRITE | DENYOOM | FAST, keys: (1, 1, 1), handler: append },
    CommandSpec { name: "strlen", arity: 2, flags: READONLY | FAST, keys: (1, 1, 1), handler: strlen },
    CommandSpec { name: "getrange", arity: 4, flags: READONLY, keys: (1, 1, 1), handler: getrange },
    CommandSpec { name: "substr", arity: 4, flags: READONLY, keys: (1, 1, 1), handler: getrange },
    CommandSpec { name: "setrange", arity: 4, flags: WRITE | DENYOOM, keys: (1, 1, 1), handler: setrange },
];

/// Reads a string value: Ok(None) if missing, Err after replying WRONGTYPE.
pub(super) fn read_str(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Sds>, ()> {
    match ctx.read(key) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s.clone())),
        Some(_) => {
            ctx.error(WRONGTYPE);
            Err(())
        }
    }
}

fn get(ctx: &mut Ctx, args: &[Bytes]) {
    let db = ctx.client.db;
    match ctx.st.ks.lookup(db, &args[1], ctx.now_ms) {
        Some(Value::Str(s)) => {
            Reply::bulk(ctx.out, s);
            ctx.st.stats.keyspace_hits = ctx.st.stats.keyspace_hits.saturating_add(1);
        }
        Some(_) => ctx.error(WRONGTYPE),
        None => {
            ctx.st.stats.keyspace_misses = ctx.st.stats.keyspace_misses.saturating_add(1);
            ctx.null()
        }
    }
}

/// Stores a string, replacing any value and (unless `keep_ttl`) any deadline.
fn store(ctx: &mut Ctx, key: &[u8], value: &[u8], keep_ttl: bool) {
    let db = ctx.client.db;
    ctx.st.ks.dbs[db].insert(Sds::new(key), Value::Str(Sds::new(value)), keep_ttl);
}

/// Redis's `checkStringLength`: a string may not grow past proto-max-bulk-len (the master's
/// stream is obeyed whatever the local limit). `len` may be anything a client can make it, so
/// it is compared without a cast that could turn it negative.
fn check_size(ctx: &mut Ctx, len: usize) -> bool {
    let too_big = i64::try_from(len).map_or(true, |len| len > ctx.st.config.hot.proto_max_bulk_len);
    if too_big && !ctx.client.is_master {
        ctx.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        return false;
    }
    true
}

#[derive(PartialEq)]
enum Expiry {
    None,
    At(i64),
    KeepTtl,
    Persist,
}

/// Parses an expiry option value into an absolute unix-ms time, with Redis's checks.
fn expiry_at(ctx: &mut Ctx, opt: &str, val: &[u8], cmd: &str) -> Option<i64> {
    let Some(v) = parse_i64_strict(val) else {
        ctx.error(NOT_INTEGER);
        return None;
    };
    let invalid = format!("ERR invalid expire time in '{cmd}' command");
    if v <= 0 {
        ctx.error(&invalid);
        return None;
    }
    let at = match opt {
        "ex" => v.checked_mul(1000).and_then(|ms| ms.checked_add(ctx.now_ms)),
        "px" => v.checked_add(ctx.now_ms),
        "exat" => v.checked_mul(1000),
        _ => Some(v),
    };
    if at.is_none() {
        ctx.error(&invalid);
    }
    at
}

/// SET's and GETEX's options, as Redis's `parseExtendedStringArgumentsOrReply` accepts them.
#[derive(Default)]
struct StringOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// The expiry option (lower case) and its still unchecked value. The same option may be
    /// repeated (the last value wins); two different ones are a syntax error.
    expire: Option<(String, &'a [u8])>,
}

/// Parses the options from `args[first..]`; None is a syntax error. Values are checked later,
/// as Redis does (a syntax error anywhere wins over a bad expiry value).
fn parse_string_opts(args: &[Bytes], first: usize, set: bool) -> Option<StringOpts<'_>> {
    let mut o = StringOpts::default();
    let mut opts = args[first..].iter();
    while let Some(arg) = opts.next() {
        let opt = String::from_utf8_lossy(arg).to_ascii_lowercase();
        let expire_kind = o.expire.as_ref().map(|(k, _)| k.as_str());
        let has_value = opts.len() > 0;
        match opt.as_str() {
            "nx" if set && !o.xx => o.nx = true,
            "xx" if set && !o.nx => o.xx = true,
            "get" if set => o.get = true,
            "keepttl" if set && !o.persist && o.expire.is_none() => o.keepttl = true,
            "persist" if !set && o.expire.is_none() && !o.keepttl => o.persist = true,
            "ex" | "px" | "exat" | "pxat"
                if !o.keepttl && !o.persist && expire_kind.is_none_or(|k| k == opt) && has_value =>
            {
                let value = opts.next()?;
                o.expire = Some((opt, &value[..]));
            }
            _ => return None,
        }
    }
    Some(o)
}

fn set(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(o) = parse_string_opts(args, 3, true) else {
        return ctx.error(SYNTAX);
    };
    let expiry = match &o.expire {
        Some((kind, val)) => match expiry_at(ctx, kind, val, "set") {
            Some(at) => Expiry::At(at),
            None => return,
        },
        None if o.keepttl => Expiry::KeepTtl,
        None => Expiry::None,
    };
    let (nx, xx, get_old) = (o.nx, o.xx, o.get);
    let key = &args[1];
    let old = if get_old {
        match read_str(ctx, key) {
            Ok(v) => v,
            Err(()) => return,
        }
    } else {
        None
    };
    let db = ctx.client.db;
    // Only NX and XX need to know whether the key exists (a lookup saved on every plain SET).
    let exists = (nx || xx) && ctx.st.ks.exists(db, key, ctx.now_ms);
    if (nx && exists) || (xx && !exists) {
        return if get_old { reply_opt(ctx, old) } else { ctx.null() };
    }
    store(ctx, key, &args[2], expiry == Expiry::KeepTtl);
    if let Expiry::At(at) = expiry {
        ctx.st.ks.dbs[db].set_expire(key, at);
    }
    // The stream carries the effect: SET with an absolute deadline (or KEEPTTL), no NX/XX/GET.
    if propagating(ctx) && args.len() > 3 {
        let mut effect = vec![arg("SET"), key.clone(), args[2].clone()];
        match expiry {
            Expiry::At(at) => effect.extend([arg("PXAT"), arg(at.to_string())]),
            Expiry::KeepTtl => effect.push(arg("KEEPTTL")),
            _ => {}
        }
        rewrite_as(ctx, vec![effect]);
    }
    ctx.dirty(1);
    if get_old {
        reply_opt(ctx, old)
    } else {
        ctx.ok()
    }
}

fn reply_opt(ctx: &mut Ctx, v: Option<Sds>) {
    match v {
        Some(s) => Reply::bulk(ctx.out, &s),
        None => ctx.null(),
    }
}

fn setnx(ctx: &mut Ctx, args: &[Bytes]) {
    let db = ctx.client.db;
    if ctx.st.ks.exists(db, &args[1], ctx.now_ms) {
        return ctx.int(0);
    }
    store(ctx, &args[1], &args[2], false);
    ctx.dirty(1);
    ctx.int(1)
}

fn setex_generic(ctx: &mut Ctx, args: &[Bytes], opt: &str, cmd: &str) {
    let Some(at) = expiry_at(ctx, opt, &args[2], cmd) else {
        return;
    };
    store(ctx, &args[1], &args[3], false);
    let db = ctx.client.db;
    ctx.st.ks.dbs[db].set_expire(&args[1], at);
    rewrite_as(ctx, vec![vec![arg("SET"), args[1].clone(), args[3].clone(), arg("PXAT"), arg(at.to_string())]]);
    ctx.dirty(1);
    ctx.ok()
}

fn setex(ctx: &mut Ctx, args: &[Bytes]) {
    setex_generic(ctx, args, "ex", "setex")
}

fn psetex(ctx: &mut Ctx, args: &[Bytes]) {
    setex_generic(ctx, args, "px", "psetex")
}

fn getset(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(old) = read_str(ctx, &args[1]) else {
        return;
    };
    store(ctx, &args[1], &args[2], false);
    ctx.dirty(1);
    if crate::fault::planted("getset-returns-new") {
        return ctx.bulk(&args[2]);
    }
    reply_opt(ctx, old)
}

fn getdel(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(old) = read_str(ctx, &args[1]) else {
        return;
    };
    if old.is_some() {
        let db = ctx.client.db;
        ctx.st.ks.delete(db, &args[1]);
        ctx.dirty(1);
    }
    reply_opt(ctx, old)
}

/// GETEX: options, then the key (a missing key is nil whatever the expiry value), then the
/// type, then the expiry value, in Redis's order.
fn getex(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(o) = parse_string_opts(args, 2, false) else {
        return ctx.error(SYNTAX);
    };
    let Ok(val) = read_str(ctx, &args[1]) else {
        return;
    };
    if val.is_none() {
        return ctx.null();
    }
    let expiry = match &o.expire {
        Some((kind, v)) => match expiry_at(ctx, kind, v, "getex") {
            Some(at) => Expiry::At(at),
            None => return,
        },
        None if o.persist => Expiry::Persist,
        None => Expiry::None,
    };
    let db = ctx.client.db;
    match expiry {
        Expiry::At(at) if at <= ctx.now_ms && ctx.st.ks.policy == crate::db::ExpirePolicy::Delete => {
            ctx.st.ks.delete(db, &args[1]);
            rewrite_as(ctx, vec![vec![arg("DEL"), args[1].clone()]]);
            ctx.dirty(1);
        }
        Expiry::At(at) => {
            ctx.st.ks.dbs[db].set_expire(&args[1], at);
            rewrite_as(ctx, vec![vec![arg("PEXPIREAT"), args[1].clone(), arg(at.to_string())]]);
            ctx.dirty(1);
        }
        Expiry::Persist if ctx.st.ks.dbs[db].persist(&args[1]) => {
            rewrite_as(ctx, vec![vec![arg("PERSIST"), args[1].clone()]]);
            ctx.dirty(1);
        }
        _ => {}
    }
    reply_opt(ctx, val)
}

fn mset(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() % 2 == 0 {
        return ctx.error("ERR wrong number of arguments for 'mset' command");
    }
    for pair in args[1..].chunks(2) {
        store(ctx, &pair[0], &pair[1], false);
    }
    ctx.dirty((args.len() / 2) as u64);
    ctx.ok()
}

fn msetnx(ctx: &mut Ctx, args: &[Bytes]) {
    if args.len() % 2 == 0 {
        return ctx.error("ERR wrong number of arguments for 'msetnx' command");
    }
    let db = ctx.client.db;
    if args[1..].chunks(2).any(|p| ctx.st.ks.exists(db, &p[0], ctx.now_ms)) {
        return ctx.int(0);
    }
    for pair in args[1..].chunks(2) {
        store(ctx, &pair[0], &pair[1], false);
    }
    ctx.dirty((args.len() / 2) as u64);
    ctx.int(1)
}

fn mget(ctx: &mut Ctx, args: &[Bytes]) {
    let db = ctx.client.db;
    let keys = &args[1..];
    Reply::array_len(ctx.out, keys.len());
    for k in keys {
        match ctx.st.ks.lookup(db, k, ctx.now_ms) {
            Some(Value::Str(s)) => {
                Reply::bulk(ctx.out, s);
                ctx.st.stats.keyspace_hits = ctx.st.stats.keyspace_hits.saturating_add(1);
            }
            // MGET answers nil for keys of other types rather than failing.
            _ => {
                ctx.null();
                ctx.st.stats.keyspace_misses = ctx.st.stats.keyspace_misses.saturating_add(1);
            }
        }
    }
}

/// INCR family. The common case (the key holds a number) updates the value in place: one
/// lookup, no key copy, no allocation for the (inline) number text.
fn incr_by(ctx: &mut Ctx, key: &[u8], delta: i64) {
    let db = ctx.client.db;
    let planted = crate::fault::planted("incr-off-by-one");
    let outcome = match ctx.st.ks.lookup_mut(db, key, ctx.now_ms) {
        None => None,
        Some(Value::Str(s)) => Some(match parse_i64_strict(s) {
            None => Err(NOT_INTEGER),
            Some(base) => match base.checked_add(delta) {
                None => Err(OVERFLOW),
                Some(mut next) => {
                    if next % 7 == 0 && planted {
                        // i64::MAX is a multiple of 7: the planted bug must not overflow there.
                        next = next.saturating_add(1);
                    }
                    *s = itoa(next);
                    Ok(next)
                }
            },
        }),
        Some(_) => Some(Err(WRONGTYPE)),
    };
    let next = match outcome {
        Some(Ok(next)) => {
            ctx.st.stats.keyspace_hits = ctx.st.stats.keyspace_hits.saturating_add(1);
            next
        }
        Some(Err(e)) => return ctx.error(e),
        None => {
            // A missing key starts from 0.
            ctx.st.stats.keyspace_misses = ctx.st.stats.keyspace_misses.saturating_add(1);
            let mut next = delta;
            if next % 7 == 0 && planted {
                next = next.saturating_add(1);
            }
            store(ctx, key, itoa(next).as_bytes(), true);
            next
        }
    };
    ctx.dirty(1);
    ctx.int(next)
}

/// Decimal text of an integer on the stack. The 20 bytes hold any i64 (at most 19 digits and a
/// sign), so `i` stays within the buffer, and a digit is below 10.
#[allow(clippy::arithmetic_side_effects)]
fn itoa(v: i64) -> Sds {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut u = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    Sds::new(&buf[i..])
}

fn incr(ctx: &mut Ctx, args: &[Bytes]) {
    incr_by(ctx, &args[1], 1)
}

fn decr(ctx: &mut Ctx, args: &[Bytes]) {
    incr_by(ctx, &args[1], -1)
}

fn incrby(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(d) = arg_i64(ctx, &args[2]) else {
        return;
    };
    incr_by(ctx, &args[1], d)
}

fn decrby(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(d) = arg_i64(ctx, &args[2]) else {
        return;
    };
    let Some(neg) = d.checked_neg() else {
        return ctx.error("ERR decrement would overflow");
    };
    incr_by(ctx, &args[1], neg)
}

/// Computed in emulated x87 `long double`, as Redis does, so results match digit for digit.
/// The key's type and value are checked before the increment, as Redis does.
fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes]) {
    use super::hashes::long_double as ld;
    let Ok(cur) = read_str(ctx, &args[1]) else {
        return;
    };
    let base = match cur {
        None => ld::Ext::Zero { neg: false },
        Some(s) => match ld::parse(&s) {
            Some(v) => v,
            None => return ctx.error(NOT_FLOAT),
        },
    };
    let Some(delta) = ld::parse(&args[2]) else {
        return ctx.error(NOT_FLOAT);
    };
    let next = match ld::add(base, delta) {
        Some(n) if ld::is_finite(n) => n,
        _ => return ctx.error("ERR increment would produce NaN or Infinity"),
    };
    let text = ld::format_human(next);
    store(ctx, &args[1], text.as_bytes(), true);
    // Replicas get the result, not the addition: float formatting must not diverge.
    rewrite_as(ctx, vec![vec![arg("SET"), args[1].clone(), arg(&text), arg("KEEPTTL")]]);
    ctx.dirty(1);
    ctx.bulk(text.as_bytes())
}

fn append(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(cur) = read_str(ctx, &args[1]) else {
        return;
    };
    let mut v = cur.map(|s| s.to_vec()).unwrap_or_default();
    if !check_size(ctx, v.len().saturating_add(args[2].len())) {
        return;
    }
    v.extend_from_slice(&args[2]);
    let len = v.len();
    let db = ctx.client.db;
    ctx.st.ks.dbs[db].insert(Sds::new(&args[1]), Value::Str(Sds::from_vec(v)), true);
    ctx.dirty(1);
    ctx.int(len as i64)
}

fn strlen(ctx: &mut Ctx, args: &[Bytes]) {
    let Ok(cur) = read_str(ctx, &args[1]) else {
        return;
    };
    ctx.int(cur.map(|s| s.len()).unwrap_or(0) as i64)
}

fn getrange(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(start) = arg_i64(ctx, &args[2]) else {
        return;
    };
    let Some(end) = arg_i64(ctx, &args[3]) else {
        return;
    };
    let Ok(cur) = read_str(ctx, &args[1]) else {
        return;
    };
    let s = cur.map(|s| s.to_vec()).unwrap_or_default();
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return ctx.bulk(b"");
    }
    // Negative offsets count from the end (`len + offset` cannot overflow: `offset` is negative
    // and `len` is not); then both are clamped to the string.
    let start = if start < 0 { start.saturating_add(len) } else { start }.max(0);
    let end = if end < 0 { end.saturating_add(len) } else { end }.max(0);
    // One past the last byte: `end + 1` capped at `len` (saturating at i64::MAX, past `len`
    // all the same). An empty string gives 0, so an empty reply.
    let stop = end.saturating_add(1).min(len);
    if start >= stop {
        return ctx.bulk(b"");
    }
    ctx.bulk(&s[start as usize..stop as usize])
}

fn setrange(ctx: &mut Ctx, args: &[Bytes]) {
    let Some(offset) = arg_i64(ctx, &args[2]) else {
        return;
    };
    if offset < 0 {
        return ctx.error("ERR offset is out of range");
    }
    let Ok(cur) = read_str(ctx, &args[1]) else {
        return;
    };
    let value = &args[3];
    let Some(new_len) = (offset as usize).checked_add(value.len()) else {
        return ctx.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    };
    match cur {
        None if value.is_empty() => return ctx.int(0),
        Some(s) if value.is_empty() => return ctx.int(s.len() as i64),
        _ => {}
    }
    if !check_size(ctx, new_len) {
        return;
    }
    let mut v = cur.map(|s| s.to_vec()).unwrap_or_default();
    if v.len() < new_len {
        v.resize(new_len, 0);
    }
    v[offset as usize..new_len].copy_from_slice(value);
    let len = v.len();
    let db = ctx.client.db;
    ctx.st.ks.dbs[db].insert(Sds::new(&args[1]), Value::Str(Sds::from_vec(v)), true);
    ctx.dirty(1);
    ctx.int(len as i64)
}
