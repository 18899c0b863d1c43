//! Commands: the table, the per-client session, and `execute`, which applies Redis's checks in
//! Redis's order before running a command.
//!
//! Why it is shaped this way: each family of commands lives in its own file and exports a
//! `COMMANDS` table of [`CommandSpec`]s (name, arity, flags, key positions, handler), like Redis's
//! command table. Handlers are plain functions over a [`Ctx`] (the locked state, the client's
//! session and its output buffer) that write their reply directly. Everything that must happen
//! for *every* write (dirty counting, WATCH invalidation, and later replication feeding) happens
//! once in [`call`], keyed on the command's flags and key positions, so a new command cannot
//! forget it.

pub mod bitmaps;
pub mod connection;
pub mod hashes;
pub mod keys;
pub mod lists;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod sentinel;
pub mod server;
pub mod sets;
pub mod strings;
pub mod transactions;
pub mod zset_algebra;
pub mod zsets;

use std::collections::{BTreeSet, HashMap};

use bytes::{Bytes, BytesMut};

use crate::db::Value;
use crate::env::Env;
use crate::protocol::{parse_i64_strict, Proto, Reply};
use crate::sds::Sds;
use crate::server::State;

pub const WRITE: u32 = 1 << 0;
pub const READONLY: u32 = 1 << 1;
/// May grow memory: refused past `maxmemory` (noeviction).
pub const DENYOOM: u32 = 1 << 2;
pub const ADMIN: u32 = 1 << 3;
pub const PUBSUB: u32 = 1 << 4;
/// Allowed before AUTH.
pub const NO_AUTH: u32 = 1 << 5;
/// Allowed in RESP2 subscribe context.
pub const SUB_OK: u32 = 1 << 6;
/// Runs immediately inside MULTI instead of being queued.
pub const NO_QUEUE: u32 = 1 << 7;
/// Refused inside MULTI (`WATCH inside MULTI is not allowed`).
pub const NO_MULTI: u32 = 1 << 8;
pub const FAST: u32 = 1 << 9;
/// Served by a replica whose link is down even with replica-serve-stale-data no.
pub const STALE: u32 = 1 << 10;
pub const LOADING: u32 = 1 << 11;
/// The handler signals (for WATCH) the keys it modifies itself, because some of its keys may be
/// only read or left alone (DEL of a missing key, the sources of SINTERSTORE); without this flag
/// `call` signals every key of a write that changed something.
pub const SIGNALS_OWN_KEYS: u32 = 1 << 12;
/// Not a write, but may propagate (PUBLISH): held by a write pause like a write.
pub const MAY_REPLICATE: u32 = 1 << 13;
/// May block the client (BLPOP...): COMMAND INFO's `blocking`.
pub const BLOCKING: u32 = 1 << 14;
/// Refused from scripts (`redis.call('multi')`): COMMAND INFO's `noscript`.
pub const NO_SCRIPT: u32 = 1 << 15;

/// `redis.set_repl` flags: where a script's writes are propagated (Redis's PROPAGATE_AOF and
/// PROPAGATE_REPL).
pub const SCRIPT_REPL_AOF: u8 = 1;
pub const SCRIPT_REPL_REPLICA: u8 = 2;
pub const SCRIPT_REPL_ALL: u8 = 3;

pub type Handler = fn(&mut Ctx, &[Bytes]);

/// One row of the command table.
pub struct CommandSpec {
    pub name: &'static str,
    /// Redis arity: positive is exact, negative is a minimum (both count the name).
    pub arity: i32,
    pub flags: u32,
    /// 1-based key positions: first, last (negative counts from the end), step; 0 = no keys.
    pub keys: (i32, i32, i32),
    pub handler: Handler,
}

impl CommandSpec {
    pub fn is_write(&self) -> bool {
        self.flags & WRITE != 0
    }

    /// The keys this invocation touches.
    pub fn key_args<'a>(&self, args: &'a [Bytes]) -> Vec<&'a Bytes> {
        if let Some(keys) = movable_keys(self.name, args) {
            return keys;
        }
        let (first, last, step) = self.keys;
        let (Ok(first), Ok(step)) = (usize::try_from(first), usize::try_from(step)) else {
            return Vec::new();
        };
        if first == 0 || step == 0 {
            return Vec::new();
        }
        // One past the last key position. A negative `last` counts from the end (-1 is the last
        // argument); one beyond the start selects nothing, as the saturation to 0 does.
        let end = match usize::try_from(last) {
            Ok(last) => last.saturating_add(1),
            Err(_) => args.len().saturating_sub((last.unsigned_abs() as usize).saturating_sub(1)),
        };
        args.iter().take(end).skip(first).step_by(step).collect()
    }

    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        // Redis's order (`addReplyCommandFlags`).
        for (bit, name) in [
            (WRITE, "write"),
            (READONLY, "readonly"),
            (DENYOOM, "denyoom"),
            (ADMIN, "admin"),
            (PUBSUB, "pubsub"),
            (NO_SCRIPT, "noscript"),
            (BLOCKING, "blocking"),
            (LOADING, "loading"),
            (STALE, "stale"),
            (FAST, "fast"),
            (NO_AUTH, "no_auth"),
            (MAY_REPLICATE, "may_replicate"),
        ] {
            if self.flags & bit != 0 {
                v.push(name);
            }
        }
        v
    }
}

/// The keys of a command whose key count is an argument (Redis's "movable keys": LMPOP,
/// BZMPOP, ZUNIONSTORE...): the destination if any, then `numkeys` keys after the count. None
/// for other commands; no keys when the count is not a positive integer that fits.
pub fn movable_keys<'a>(name: &str, args: &'a [Bytes]) -> Option<Vec<&'a Bytes>> {
    let (numkeys_at, destination) = match name {
        "lmpop" | "zmpop" | "sintercard" | "zintercard" | "zunion" | "zinter" | "zdiff" => (1, false),
        "blmpop" | "bzmpop" | "eval" | "evalsha" | "eval_ro" | "evalsha_ro" => (2, false),
        "zunionstore" | "zinterstore" | "zdiffstore" => (2, true),
        _ => return None,
    };
    let numkeys = args.get(numkeys_at).and_then(|a| parse_i64_strict(a)).and_then(|n| usize::try_from(n).ok());
    let keys = numkeys.filter(|&n| n > 0).and_then(|n| args.get(numkeys_at.saturating_add(1)..)?.get(..n));
    let Some(keys) = keys else {
        return Some(Vec::new());
    };
    let mut out: Vec<&Bytes> = Vec::with_capacity(keys.len().saturating_add(1));
    if destination {
        out.extend(args.get(1));
    }
    out.extend(keys.iter());
    Some(out)
}

/// Name lookup over all command families, honouring `rename-command`.
pub struct CommandTable {
    pub specs: Vec<&'static CommandSpec>,
    by_name: HashMap<Vec<u8>, usize, ahash::RandomState>,
}

/// Every family's table, in the order COMMAND lists them.
fn all_families() -> impl Iterator<Item = &'static CommandSpec> {
    connection::COMMANDS
        .iter()
        .chain(server::COMMANDS)
        .chain(keys::COMMANDS)
        .chain(strings::COMMANDS)
        .chain(bitmaps::COMMANDS)
        .chain(lists::COMMANDS)
        .chain(hashes::COMMANDS)
        .chain(sets::COMMANDS)
        .chain(zsets::COMMANDS)
        .chain(zset_algebra::COMMANDS)
        .chain(pubsub::COMMANDS)
        .chain(transactions::COMMANDS)
        .chain(replication::COMMANDS)
        .chain(scripting::COMMANDS)
}

impl CommandTable {
    /// A data node's table: every family.
    pub fn new(renames: &[(String, String)]) -> CommandTable {
        CommandTable::with_specs(all_families().collect(), renames)
    }

    /// The table of a node in sentinel mode ([`sentinel::table`]).
    pub fn sentinel(renames: &[(String, String)]) -> CommandTable {
        CommandTable::with_specs(sentinel::table(), renames)
    }

    fn with_specs(specs: Vec<&'static CommandSpec>, renames: &[(String, String)]) -> CommandTable {
        // Fixed seeds: the table is never iterated, and lookups must not depend on the RNG.
        let mut by_name = HashMap::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4));
        for (i, s) in specs.iter().enumerate() {
            let prev = by_name.insert(s.name.as_bytes().to_vec(), i);
            assert!(prev.is_none(), "duplicate command {}", s.name);
        }
        for (from, to) in renames {
            if let Some(i) = by_name.remove(from.as_bytes()) {
                if !to.is_empty() {
                    by_name.insert(to.as_bytes().to_vec(), i);
                }
            }
        }
        CommandTable { specs, by_name }
    }

    pub fn lookup(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        let mut buf = [0u8; 32];
        if name.len() > buf.len() {
            return None;
        }
        for (d, s) in buf.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        self.by_name.get(&buf[..name.len()]).map(|&i| self.specs[i])
    }
}

/// A queued transaction.
#[derive(Default)]
pub struct Multi {
    pub queue: Vec<(&'static CommandSpec, Vec<Bytes>)>,
    /// An error was seen while queueing: EXEC must abort.
    pub failed: bool,
}

/// Commands a MULTI may queue before it is refused (a limit on client-controlled memory).
pub const MULTI_QUEUE_MAX: usize = 1024 * 1024;

/// Per-connection state, owned by the connection task.
pub struct Session {
    pub id: u64,
    pub db: usize,
    pub authenticated: bool,
    pub name: Option<String>,
    /// The reply protocol, switched by HELLO and back to RESP2 by RESET.
    pub proto: Proto,
    pub multi: Option<Multi>,
    pub watched: Vec<(usize, Sds)>,
    pub channels: BTreeSet<Bytes>,
    pub patterns: BTreeSet<Bytes>,
    /// Close after flushing the replies (QUIT, protocol errors).
    pub close: bool,
    pub addr: String,
    pub laddr: String,
    /// Loopback peer (protected mode lets it in).
    pub is_local: bool,
    /// Work commands left for the connection to finish outside the lock, each with where its
    /// reply goes in the output (an offset into `out` when it was deferred): a plain command's
    /// reply goes at the end, one inside EXEC at its place in EXEC's reply array. Several can
    /// be pending at once (two deferred commands in one transaction).
    pub deferred: Vec<(usize, Deferred)>,
    /// EXEC is running this session's queued commands: nothing may block (WAIT answers at once,
    /// as Redis's CLIENT_DENY_BLOCKING).
    pub in_exec: bool,
    /// This connection is a replica attached with PSYNC/SYNC (its ACKs update the registry).
    pub is_replica: bool,
    /// This session applies the master's stream on a replica (writes allowed, no replies).
    pub is_master: bool,
    /// REPLCONF listening-port / ip-address, for INFO and ROLE.
    pub repl_listening_port: u16,
    pub repl_ip: Option<String>,
    /// REPLCONF capa eof: the replica understands the diskless `$EOF:` payload framing.
    pub repl_capa_eof: bool,
    /// A diskless payload was sent: hold the stream until the replica's first ACK (it finds the
    /// end mark only at the end of a read, so nothing may follow it before it answers).
    pub hold_stream: bool,
    /// CLIENT REPLY OFF: no replies until CLIENT REPLY ON.
    pub reply_off: bool,
    /// CLIENT REPLY SKIP: the next command's reply is dropped...
    pub reply_skip_next: bool,
    /// ... which is this one's (set while it runs; CLIENT REPLY ON clears it).
    pub reply_skip: bool,
    /// A command a client pause holds: the connection waits, then runs it again.
    pub postponed: Option<Vec<Bytes>>,
    /// The command just run blocked (BLPOP on empty keys): the connection waits for its outcome
    /// (see `blocking.rs`) before running anything else.
    pub blocked: bool,
    /// This session re-runs a blocked client's command because this key became ready.
    pub serving: Option<Sds>,
    /// ... and the key held nothing for it after all: the client stays blocked.
    pub still_blocked: bool,
    /// Where this session's writes propagate while a script runs (`redis.set_repl`); all of
    /// them otherwise.
    pub script_repl: u8,
}

/// Asynchronous work a command hands to its connection, performed after the lock is released;
/// the connection writes the command's reply when it completes, before running the next request.
pub enum Deferred {
    /// CONFIG REWRITE: write the file through the disk seam.
    WriteConfig { path: std::path::PathBuf },
    /// CONFIG SET appendonly yes|no: start or stop the AOF, then +OK (or Redis's error).
    Appendonly(bool),
    /// BGREWRITEAOF.
    BgRewriteAof,
    /// DEBUG SLEEP: hold this client (not the server) for a while, then +OK.
    Sleep(std::time::Duration),
    /// SAVE: write a snapshot and answer when it is durable.
    Save,
    /// BGSAVE [SCHEDULE].
    BgSave { schedule: bool },
    /// SHUTDOWN: save if asked (or if save points exist), then stop; an error if the save fails.
    Shutdown(crate::server::ShutdownMode),
    /// PSYNC / SYNC: become a replica link (full or partial resync).
    Sync { replid: String, offset: i64, legacy: bool },
    /// WAIT: until `replicas` acknowledged `offset`, or the timeout (0 = no timeout).
    Wait { replicas: usize, offset: i64, timeout_ms: u64 },
    /// REPLICAOF host port: start the link task for this generation.
    StartReplication { generation: u64 },
    /// A sentinel's state written to its config file (SENTINEL SET, MONITOR, FLUSHCONFIG...):
    /// +OK once synced, Redis's error otherwise.
    /// With `reply`, that reply is sent whatever the outcome (a vote is answered after its
    /// epoch is on disk, as Redis's synchronous `sentinelFlushConfig` makes it).
    SentinelFlush { reply: Option<Vec<u8>> },
}

impl Session {
    pub fn new(id: u64, addr: String, laddr: String, is_local: bool) -> Session {
        Session {
            id,
            db: 0,
            authenticated: false,
            name: None,
            proto: Proto::Resp2,
            multi: None,
            watched: Vec::new(),
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            close: false,
            postponed: None,
            blocked: false,
            serving: None,
            still_blocked: false,
            script_repl: SCRIPT_REPL_ALL,
            addr,
            laddr,
            is_local,
            deferred: Vec::new(),
            in_exec: false,
            is_replica: false,
            is_master: false,
            repl_listening_port: 0,
            repl_ip: None,
            repl_capa_eof: false,
            hold_stream: false,
            reply_off: false,
            reply_skip_next: false,
            reply_skip: false,
        }
    }

    /// Whether the reply of the command running now is to be dropped (CLIENT REPLY OFF|SKIP).
    pub fn reply_suppressed(&self) -> bool {
        self.reply_off || self.reply_skip
    }

    /// Channels and patterns subscribed to: two in-memory sets, whose sizes add up without
    /// overflow.
    #[allow(clippy::arithmetic_side_effects)]
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

/// What a handler works with.
pub struct Ctx<'a> {
    pub st: &'a mut State,
    pub client: &'a mut Session,
    pub out: &'a mut BytesMut,
    pub env: &'a Env,
    /// Wall-clock time for this batch (expiry decisions use one time per command, like Redis).
    pub now_ms: i64,
    /// The request's exact bytes when canonical (see `RequestParser::take_frame`): a write
    /// propagated unchanged goes into the stream as these bytes, without re-encoding. Taken by
    /// the first `call`, so the commands an EXEC runs never see EXEC's frame.
    pub frame: Option<Bytes>,
}

// Redis's shared error texts.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const SYNTAX: &str = "ERR syntax error";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const NO_SUCH_KEY: &str = "ERR no such key";

impl Ctx<'_> {
    pub fn error(&mut self, msg: &str) {
        self.st.stats.total_error_replies = self.st.stats.total_error_replies.saturating_add(1);
        Reply::error(self.out, msg);
    }

    /// An error whose text ends with client input, as Redis's `addReplyErrorFormat` sends it:
    /// newlines at its end are trimmed (the ones inside become spaces, as for every error).
    pub fn error_format(&mut self, msg: &str) {
        self.error(msg.trim_end_matches(['\r', '\n']))
    }

    pub fn ok(&mut self) {
        Reply::ok(self.out);
    }

    pub fn int(&mut self, v: i64) {
        Reply::int(self.out, v);
    }

    pub fn bulk(&mut self, b: &[u8]) {
        Reply::bulk(self.out, b);
    }

    pub fn proto(&self) -> Proto {
        self.client.proto
    }

    /// A missing value, in the client's protocol.
    pub fn null(&mut self) {
        Reply::null(self.out, self.client.proto);
    }

    /// A missing collection, in the client's protocol.
    pub fn null_array(&mut self) {
        Reply::null_array(self.out, self.client.proto);
    }

    pub fn array_len(&mut self, n: usize) {
        Reply::array_len(self.out, n);
    }

    pub fn map_len(&mut self, n: usize) {
        Reply::map_len(self.out, self.client.proto, n);
    }

    pub fn set_len(&mut self, n: usize) {
        Reply::set_len(self.out, self.client.proto, n);
    }

    pub fn push_len(&mut self, n: usize) {
        Reply::push_len(self.out, self.client.proto, n);
    }

    pub fn double(&mut self, v: f64) {
        Reply::double(self.out, self.client.proto, v);
    }

    pub fn verbatim(&mut self, text: &[u8]) {
        Reply::verbatim(self.out, self.client.proto, text);
    }

    pub fn db(&self) -> usize {
        self.client.db
    }

    /// Reads a key for a client (lazy expiry applies), counting hits and misses.
    pub fn read(&mut self, key: &[u8]) -> Option<&Value> {
        let db = self.client.db;
        let found = self.st.ks.lookup(db, key, self.now_ms).is_some();
        if found {
            self.st.stats.keyspace_hits = self.st.stats.keyspace_hits.saturating_add(1);
        } else {
            self.st.stats.keyspace_misses = self.st.stats.keyspace_misses.saturating_add(1);
        }
        self.st.ks.lookup(db, key, self.now_ms)
    }

    /// Looks a key up for modification (lazy expiry applies; no hit/miss accounting).
    pub fn write_lookup(&mut self, key: &[u8]) -> Option<&mut Value> {
        let db = self.client.db;
        self.st.ks.lookup_mut(db, key, self.now_ms)
    }

    /// Whether the key exists with another type than `want` (after expiry).
    pub fn wrong_type(&mut self, key: &[u8], want: &str) -> bool {
        let db = self.client.db;
        matches!(self.st.ks.lookup(db, key, self.now_ms), Some(v) if v.type_name() != want)
    }

    /// Leaves `work` to the connection, to run after the lock is released; its reply goes where
    /// this command's reply would have started.
    pub fn defer(&mut self, work: Deferred) {
        debug_assert!(self.client.deferred.len() < MULTI_QUEUE_MAX, "at most one per queued command");
        self.client.deferred.push((self.out.len(), work));
    }

    pub fn dirty(&mut self, n: u64) {
        self.st.dirty = self.st.dirty.saturating_add(n);
    }

    /// Redis's `signalModifiedKey`, for commands flagged [`SIGNALS_OWN_KEYS`].
    pub fn signal_modified(&mut self, key: &[u8]) {
        let db = self.client.db;
        self.st.watches.touch(db, key);
    }
}

/// Replaces this command in the replication stream (relative times made absolute, random
/// choices made explicit), so that replicas and a reloaded stream reach the same data.
pub fn rewrite_as(ctx: &mut Ctx, commands: Vec<Vec<Bytes>>) {
    if propagating(ctx) {
        ctx.st.repl.rewrite = Some(commands);
    }
}

/// Whether writes are fed anywhere, replicas or the AOF (only then are rewrites worth building).
pub fn propagating(ctx: &Ctx) -> bool {
    replicating(ctx) || ctx.st.aof.recording()
}

/// Whether writes are being fed to a replication stream.
pub fn replicating(ctx: &Ctx) -> bool {
    ctx.st.repl.backlog.is_some() && !ctx.st.repl.is_replica()
}

/// A stream argument from text.
pub fn arg(s: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(s.as_ref())
}

/// Parses an integer argument; replies with Redis's error and returns None if it is not one.
pub fn arg_i64(ctx: &mut Ctx, arg: &[u8]) -> Option<i64> {
    match parse_i64_strict(arg) {
        Some(v) => Some(v),
        None => {
            ctx.error(NOT_INTEGER);
            None
        }
    }
}

/// Parses a float argument like Redis's `getDoubleFromObject` (accepts `inf`, `-inf`, `+inf`,
/// rejects NaN, spaces and empty strings).
pub fn parse_f64(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    let v = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => strtod_whole(s)?,
    };
    if v.is_nan() {
        return None;
    }
    Some(v)
}

/// C's `strtod` required to consume all of `s` (leading spaces are the caller's business):
/// decimal text, or a hexadecimal float (`0x1.8p3`), which `strtod` accepts too. Overflow gives
/// an infinity and underflow zero, as `strtod` returns them.
pub fn strtod_whole(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(hex) => hex_float(hex).map(|v| if neg { -v } else { v }),
        None => s.parse::<f64>().ok(),
    }
}

/// A hexadecimal float after its `0x`: hex digits with an optional point, then an optional
/// binary exponent `p[+-]digits`, rounded to nearest (ties to even) like `strtod`. The exponent
/// is client input: it is clamped to a million (the result is 0 or infinite long before), and
/// what the digits add to it saturates.
fn hex_float(s: &str) -> Option<f64> {
    let (mut mant, mut sticky, mut exp, mut any_digit, mut point) = (0u128, false, 0i64, false, false);
    let mut rest = s.as_bytes();
    while let Some((&c, tail)) = rest.split_first() {
        if c == b'.' && !point {
            point = true;
        } else if let Some(d) = (c as char).to_digit(16) {
            any_digit = true;
            if mant >> 120 == 0 {
                mant = mant << 4 | d as u128;
                if point {
                    exp = exp.saturating_sub(4);
                }
            } else {
                // Past 120 bits only whether anything was dropped matters (for rounding).
                sticky |= d != 0;
                if !point {
                    exp = exp.saturating_add(4);
                }
            }
        } else {
            break;
        }
        rest = tail;
    }
    if !any_digit {
        return None;
    }
    if let Some(e) = rest.strip_prefix(b"p").or_else(|| rest.strip_prefix(b"P")) {
        let (neg, digits) = match e.split_first() {
            Some((b'-', digits)) => (true, digits),
            Some((b'+', digits)) => (false, digits),
            _ => (false, e),
        };
        let mut e: i64 = 0;
        for &d in digits {
            let d = (d as char).to_digit(10)?;
            e = e.saturating_mul(10).saturating_add(i64::from(d)).min(1_000_000);
        }
        if digits.is_empty() {
            return None;
        }
        exp = if neg { exp.saturating_sub(e) } else { exp.saturating_add(e) };
    } else if !rest.is_empty() {
        return None;
    }
    if mant == 0 {
        return Some(0.0);
    }
    let (mant, shifted) = round_to_53_bits(mant, sticky);
    Some(scale_by_pow2(mant as f64, exp.saturating_add(shifted)))
}

/// Rounds a nonzero mantissa of at most 124 bits to 53 (nearest, ties to even, `sticky` for
/// bits dropped before): the rounded mantissa and the binary exponent it was shifted by. The
/// mantissa's length is within 1..=124, so the shift is within 1..=71 and the masks are in
/// range; the shifted mantissa plus one fits.
#[allow(clippy::arithmetic_side_effects)]
fn round_to_53_bits(mut mant: u128, sticky: bool) -> (u128, i64) {
    let len = 128 - mant.leading_zeros() as i64;
    if len <= 53 {
        return (mant, 0);
    }
    let sh = (len - 53) as u32;
    let rem = mant & ((1u128 << sh) - 1);
    let half = 1u128 << (sh - 1);
    mant >>= sh;
    if rem > half || (rem == half && (sticky || mant & 1 == 1)) {
        mant += 1;
    }
    (mant, sh as i64)
}

/// `v * 2^exp`, in steps that stay exact until the result itself over- or underflows. `exp`
/// only moves toward zero, by 1000 while past ±1000.
#[allow(clippy::arithmetic_side_effects)]
fn scale_by_pow2(mut v: f64, mut exp: i64) -> f64 {
    while exp > 1000 && v.is_finite() {
        v *= 2f64.powi(1000);
        exp -= 1000;
    }
    while exp < -1000 && v != 0.0 {
        v *= 2f64.powi(-1000);
        exp += 1000;
    }
    v * 2f64.powi(exp.clamp(-2000, 2000) as i32)
}

pub fn arg_f64(ctx: &mut Ctx, arg: &[u8]) -> Option<f64> {
    match parse_f64(arg) {
        Some(v) => Some(v),
        None => {
            ctx.error(NOT_FLOAT);
            None
        }
    }
}

pub fn eq_ic(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// An argument as Redis's `%.<max>s` formats it into a message: a C string, so it ends at the
/// first NUL byte, cut to `max` bytes.
pub fn c_str(b: &[u8], max: usize) -> String {
    lossy(c_bytes(b, max))
}

fn c_bytes(b: &[u8], max: usize) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len()).min(max)]
}

/// Redis's reply to an unknown subcommand of a container command (CONFIG, CLIENT, PUBSUB...).
pub fn unknown_subcommand(ctx: &mut Ctx, args: &[Bytes]) {
    let cmd = lossy(&args[0]).to_ascii_uppercase();
    ctx.error(&format!("ERR unknown subcommand '{}'. Try {cmd} HELP.", c_str(&args[1], 128)))
}

/// Redis's `addReplySubcommandSyntaxError`: a known subcommand with arguments it refuses.
pub fn subcommand_syntax_error(ctx: &mut Ctx, args: &[Bytes]) {
    let cmd = lossy(&args[0]).to_ascii_uppercase();
    let sub = c_str(&args[1], 128);
    ctx.error(&format!("ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {cmd} HELP."))
}

/// Redis's `addReplyHelp`: the header, the subcommand lines, and the HELP footer.
pub fn reply_help(ctx: &mut Ctx, args: &[Bytes], lines: &[&str]) {
    let cmd = lossy(&args[0]).to_ascii_uppercase();
    // `lines` is one of the constant help texts.
    #[allow(clippy::arithmetic_side_effects)]
    let len = lines.len() + 3;
    Reply::array_len(ctx.out, len);
    Reply::simple(ctx.out, &format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    for l in lines {
        Reply::simple(ctx.out, l);
    }
    Reply::simple(ctx.out, "HELP");
    Reply::simple(ctx.out, "    Prints this help.");
}

/// The full per-request path, Redis's `processCommand`: lookup, arity, auth, subscribe
/// context, MULTI queueing, OOM, then `call`.
pub fn execute(ctx: &mut Ctx, args: Vec<Bytes>) {
    debug_assert!(!args.is_empty());
    let name = &args[0];
    let Some(spec) = ctx.st.commands.lookup(name) else {
        // As Redis formats it: C strings (cut at a NUL), the name to 128 bytes, the arguments
        // while their list is shorter than 128 bytes, each cut to the room left.
        let mut list = Vec::new();
        for a in args.iter().skip(1) {
            let room = 128usize.saturating_sub(list.len());
            if room == 0 {
                break;
            }
            list.push(b'\'');
            list.extend_from_slice(c_bytes(a, room));
            list.extend_from_slice(b"' ");
        }
        let msg = format!("ERR unknown command '{}', with args beginning with: {}", c_str(name, 128), lossy(&list));
        flag_multi_failed(ctx);
        ctx.error(&msg);
        return;
    };
    if !arity_ok(spec.arity, args.len()) {
        return reject(ctx, spec, &format!("ERR wrong number of arguments for '{}' command", spec.name));
    }
    if let Err(msg) = check_subcommand(spec, &args) {
        return reject(ctx, spec, &msg);
    }
    if ctx.st.config.hot.requirepass.is_some() && !ctx.client.authenticated && spec.flags & NO_AUTH == 0 {
        return reject(ctx, spec, "NOAUTH Authentication required.");
    }
    // Only RESP2 needs the subscribe context: there messages and replies share one array type
    // and could not be told apart. RESP3 sends messages as push frames, so (as in Redis) a
    // subscribed RESP3 client may run any command.
    if ctx.client.proto == Proto::Resp2 && ctx.client.subscriptions() > 0 && spec.flags & SUB_OK == 0 {
        ctx.error(&format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        ));
        return;
    }
    if ctx.st.repl.is_replica() && !ctx.client.is_master {
        if spec.is_write() && ctx.st.config.hot.replica_read_only {
            flag_multi_failed(ctx);
            crate::fault::probe("repl.readonly_refused");
            ctx.error("READONLY You can't write against a read only replica.");
            return;
        }
        if !ctx.st.repl.link.up && spec.flags & STALE == 0 && !ctx.st.config.hot.replica_serve_stale_data {
            flag_multi_failed(ctx);
            ctx.error("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.");
            return;
        }
    }
    if spec.is_write() && !ctx.st.repl.is_replica() && !gate_writes(ctx) {
        flag_multi_failed(ctx);
        crate::fault::probe("repl.noreplicas_refused");
        ctx.error("NOREPLICAS Not enough good replicas to write.");
        return;
    }
    if spec.is_write() && !ctx.client.is_master && crate::persistence::writes_refused(ctx.st) {
        flag_multi_failed(ctx);
        ctx.error(crate::persistence::MISCONF);
        return;
    }
    if (spec.is_write() || spec.name == "ping") && !ctx.client.is_master {
        if let Some(e) = crate::aof::refuses_writes(ctx.st) {
            flag_multi_failed(ctx);
            crate::fault::probe("aof.write_error_refused");
            ctx.error(&e);
            return;
        }
    }
    if spec.flags & DENYOOM != 0 && !ctx.client.is_master && over_maxmemory(ctx.st) {
        flag_multi_failed(ctx);
        ctx.error("OOM command not allowed when used memory > 'maxmemory'.");
        return;
    }
    // Redis's client pause: a normal client's command waits (the connection retries it when the
    // pause lifts); replicas and the master's stream never wait.
    if !ctx.client.is_replica && !ctx.client.is_master && ctx.st.pause.holds(ctx.now_ms, may_replicate(ctx, spec)) {
        crate::fault::probe("pause.postponed");
        ctx.client.postponed = Some(args);
        return;
    }
    // Queued only once every check above passed, as Redis's processCommand: a write refused
    // here (READONLY, NOREPLICAS, MISCONF, OOM) is refused inside MULTI too, and flags the
    // transaction, instead of being queued and run by EXEC past the checks.
    if ctx.client.multi.is_some() && spec.flags & NO_QUEUE == 0 {
        if spec.flags & NO_MULTI != 0 {
            flag_multi_failed(ctx);
            ctx.error(&format!("ERR Command not allowed inside a transaction"));
            return;
        }
        let multi = ctx.client.multi.as_mut().expect("checked");
        if multi.queue.len() >= MULTI_QUEUE_MAX {
            multi.failed = true;
            ctx.error("ERR MULTI queue is full");
            return;
        }
        multi.queue.push((spec, args));
        Reply::simple(ctx.out, "QUEUED");
        return;
    }
    call(ctx, spec, &args);
    // Redis's `handleClientsBlockedOnKeys`: after a command, a transaction or a write of the
    // master's stream, before any other client's command.
    if !ctx.st.blocking.is_empty() {
        crate::blocking::serve_ready(ctx.st, ctx.env, ctx.now_ms);
    }
}

/// Whether a write may run now, for a script's `redis.call` (Redis's
/// `scriptVerifyWriteCommandAllow`): Err is the error reply's text, as `execute` would send it.
pub fn may_write(ctx: &Ctx) -> Result<(), String> {
    if ctx.client.is_master {
        return Ok(());
    }
    if ctx.st.repl.is_replica() && ctx.st.config.hot.replica_read_only {
        return Err("READONLY You can't write against a read only replica.".into());
    }
    if !ctx.st.repl.is_replica() && !gate_writes(ctx) {
        return Err("NOREPLICAS Not enough good replicas to write.".into());
    }
    if crate::persistence::writes_refused(ctx.st) {
        return Err(crate::persistence::MISCONF.into());
    }
    if let Some(e) = crate::aof::refuses_writes(ctx.st) {
        return Err(e);
    }
    Ok(())
}

/// Redis's `is_may_replicate_command`: a write, PUBLISH, or an EXEC whose queue holds either.
fn may_replicate(ctx: &Ctx, spec: &CommandSpec) -> bool {
    let propagates = |s: &CommandSpec| s.is_write() || s.flags & MAY_REPLICATE != 0;
    if spec.name == "exec" {
        return ctx.client.multi.as_ref().is_some_and(|m| m.queue.iter().any(|(s, _)| propagates(s)));
    }
    propagates(spec)
}

/// min-replicas-to-write / min-replicas-max-lag, judged by the master's own view of its
/// replicas; the decision and the view it was made on are reported to the observer.
pub(crate) fn gate_writes(ctx: &Ctx) -> bool {
    let min = ctx.st.config.hot.min_replicas_to_write;
    let max_lag = ctx.st.config.hot.min_replicas_max_lag;
    if min <= 0 || max_lag <= 0 {
        return true;
    }
    let good = ctx.st.repl.good_replicas(ctx.now_ms, max_lag);
    let accepted = good >= min as usize;
    if let Some(obs) = &ctx.st.observer {
        obs.emit(crate::observe::Observation::WriteGate { accepted, good, needed: min as usize });
    }
    accepted
}

/// Redis's `rejectCommand`: the transaction (if any) is flagged to fail, and a refused EXEC
/// discards it at once, saying why.
fn reject(ctx: &mut Ctx, spec: &CommandSpec, msg: &str) {
    flag_multi_failed(ctx);
    if spec.name != "exec" {
        return ctx.error(msg);
    }
    ctx.client.multi = None;
    transactions::clear_watches(ctx);
    let why = msg.strip_prefix("ERR ").unwrap_or(msg);
    ctx.error(&format!("EXECABORT Transaction discarded because of: {why}"))
}

/// Redis 7's container commands that we implement, with the subcommands we implement and their
/// arities (Redis's; CLIENT SETINFO and NO-TOUCH are Redis 7.2's). Like a command, a
/// subcommand is looked up and its arity checked before anything runs or is queued. A new
/// container command (or subcommand) needs its row here, and in `cmdgen`'s list for the fuzzer.
const SUBCOMMANDS: &[(&str, &[(&str, i32)])] = &[
    ("config", &[("get", -3), ("set", -4), ("resetstat", 2), ("rewrite", 2), ("help", 2)]),
    (
        "client",
        &[
            ("getname", 2),
            ("help", 2),
            ("id", 2),
            ("info", 2),
            ("kill", -3),
            ("list", -2),
            ("no-evict", 3),
            ("no-touch", 3),
            ("pause", -3),
            ("reply", 3),
            ("setinfo", 4),
            ("setname", 3),
            ("unblock", -3),
            ("unpause", 2),
        ],
    ),
    ("command", &[("count", 2), ("docs", -2), ("getkeys", -4), ("help", 2), ("info", -2), ("list", -2)]),
    ("script", &[("exists", -3), ("flush", -2), ("help", 2), ("kill", 2), ("load", 3)]),
    (
        "pubsub",
        &[("channels", -2), ("help", 2), ("numpat", 2), ("numsub", -2), ("shardchannels", -2), ("shardnumsub", -2)],
    ),
];

/// The subcommand checks of Redis's `processCommand` (`commandCheckExistence`, then
/// `commandCheckArity`); Err is the error to reply.
/// Whether `args` names a subcommand `spec` has, when `spec` is a container command (Redis's
/// `lookupCommand` over the command and its subcommand).
pub fn known_subcommand(spec: &CommandSpec, args: &[Bytes]) -> bool {
    match SUBCOMMANDS.iter().find(|(name, _)| *name == spec.name) {
        None => true,
        Some((_, subs)) => {
            args.get(1).is_some_and(|a| subs.iter().any(|(sub, _)| a.eq_ignore_ascii_case(sub.as_bytes())))
        }
    }
}

fn check_subcommand(spec: &CommandSpec, args: &[Bytes]) -> Result<(), String> {
    let Some((_, subs)) = SUBCOMMANDS.iter().find(|(name, _)| *name == spec.name) else {
        return Ok(());
    };
    if args.len() < 2 {
        return Ok(());
    }
    let Some(&(sub, arity)) = subs.iter().find(|(sub, _)| args[1].eq_ignore_ascii_case(sub.as_bytes())) else {
        let cmd = lossy(&args[0]).to_ascii_uppercase();
        return Err(format!("ERR unknown subcommand '{}'. Try {cmd} HELP.", c_str(&args[1], 128)));
    };
    if !arity_ok(arity, args.len()) {
        return Err(format!("ERR wrong number of arguments for '{}|{sub}' command", spec.name));
    }
    Ok(())
}

/// Redis's arity check: a positive arity is the exact argument count (name included), a
/// negative one the minimum.
pub fn arity_ok(arity: i32, argc: usize) -> bool {
    let required = arity.unsigned_abs() as usize;
    if arity > 0 {
        argc == required
    } else {
        argc >= required
    }
}

fn flag_multi_failed(ctx: &mut Ctx) {
    if let Some(m) = ctx.client.multi.as_mut() {
        m.failed = true;
    }
}

pub fn over_maxmemory(st: &State) -> bool {
    let max = st.config.hot.maxmemory;
    max > 0 && crate::alloc::used_memory() as u64 > max
}

/// Runs a command and does what every write needs: invalidate WATCHes on its keys, count it,
/// and report it to the observer (simulation).
pub fn call(ctx: &mut Ctx, spec: &'static CommandSpec, args: &[Bytes]) {
    let frame = ctx.frame.take();
    let dirty_before = ctx.st.dirty;
    let observed = ctx.st.observer.is_some() && spec.is_write();
    let before = if observed { key_digests(ctx, spec, args) } else { Vec::new() };
    ctx.st.repl.rewrite = None;
    (spec.handler)(ctx, args);
    // Expiry deletions the command caused go into the stream before the command itself (and
    // into the observed digest first: `observe_write` then treats those keys as absent before).
    let expired_now: Vec<(usize, Sds)> = if observed { ctx.st.ks.expired.clone() } else { Vec::new() };
    // The command's own write is not yet in the observed digest: verify after it, not here.
    propagate_expired(ctx.st, false);
    if observed && ctx.st.dirty != dirty_before {
        observe_write(ctx, spec, args, &before, &expired_now);
    }
    let script_repl = ctx.client.script_repl;
    if ctx.st.dirty != dirty_before && spec.is_write() && ctx.st.aof.recording() && script_repl & SCRIPT_REPL_AOF != 0 {
        // The AOF gets exactly what replicas get (Redis feeds both from one propagation).
        let effect = match (&ctx.st.repl.rewrite, &frame) {
            (Some(commands), _) => {
                let mut out = bytes::BytesMut::new();
                for c in commands {
                    out.extend_from_slice(&crate::aof::encode(c));
                }
                out
            }
            (None, Some(f)) => bytes::BytesMut::from(&f[..]),
            (None, None) => crate::aof::encode(args),
        };
        crate::aof::feed(ctx.st, ctx.client.db, &effect);
    }
    if ctx.st.dirty != dirty_before && spec.is_write() && replicating(ctx) && script_repl & SCRIPT_REPL_REPLICA != 0 {
        let db = ctx.client.db;
        if crate::fault::planted("write-not-propagated") && spec.name == "incr" {
            // The planted bug: this write never reaches the replicas.
        } else if let Some(commands) = ctx.st.repl.rewrite.take() {
            crate::replication::propagate(ctx.st, db, &commands);
        } else if let Some(frame) = frame {
            debug_assert_eq!(frame, encode_args(args));
            crate::replication::propagate_frame(ctx.st, db, frame);
        } else {
            crate::replication::propagate(ctx.st, db, &[args.to_vec()]);
        }
    }
    if ctx.st.dirty != dirty_before && spec.is_write() && ctx.st.repl.is_replica() {
        track_replica_written_keys(ctx, spec, args);
    }
    ctx.st.stats.total_commands_processed = ctx.st.stats.total_commands_processed.saturating_add(1);
    let planted_skip = spec.name == "incr" && crate::fault::planted("watch-ignores-incr");
    let signalled = spec.flags & SIGNALS_OWN_KEYS != 0;
    if ctx.st.dirty != dirty_before && spec.is_write() && !planted_skip && !signalled && !ctx.st.watches.is_empty() {
        let db = ctx.client.db;
        for k in spec.key_args(args) {
            ctx.st.watches.touch(db, k);
        }
    }
    if ctx.st.dirty != dirty_before && spec.is_write() && !ctx.st.blocking.is_empty() {
        let db = ctx.client.db;
        for k in spec.key_args(args) {
            ctx.st.blocking.signal(db, k);
        }
    }
    propagate_expired(ctx.st, true);
}

/// A writable replica's own clients' keys with a TTL are expired by the replica itself (the
/// master never sends their DEL); a key the master's stream writes is the master's again.
fn track_replica_written_keys(ctx: &mut Ctx, spec: &CommandSpec, args: &[Bytes]) {
    let db = ctx.client.db;
    for k in spec.key_args(args) {
        let entry = (db, Sds::new(k));
        if !ctx.client.is_master && ctx.st.ks.dbs[db].expire_at(k).is_some() {
            ctx.st.ks.replica_keys_with_expire.insert(entry);
        } else if ctx.client.is_master && !ctx.st.ks.replica_keys_with_expire.is_empty() {
            ctx.st.ks.replica_keys_with_expire.remove(&entry);
        }
    }
}

/// The canonical encoding of a command (checks a frame against its arguments in debug builds).
fn encode_args(args: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
    crate::protocol::encode_command(&mut out, &refs);
    out.freeze()
}

fn key_digests(ctx: &Ctx, spec: &CommandSpec, args: &[Bytes]) -> Vec<crate::db::digest::Digest> {
    let db = ctx.client.db;
    spec.key_args(args).iter().map(|k| crate::db::digest::key_digest_in(db, &ctx.st.ks.dbs[db], k)).collect()
}

/// Updates the incremental digest for a write and reports it.
fn observe_write(
    ctx: &mut Ctx,
    spec: &CommandSpec,
    args: &[Bytes],
    before: &[crate::db::digest::Digest],
    expired_now: &[(usize, Sds)],
) {
    use crate::db::digest;
    let db = ctx.client.db;
    let after = key_digests(ctx, spec, args);
    let st = &mut *ctx.st;
    // Keys deleted by expiry during the command are folded in first. One of the command's own
    // keys may be among them: its "before" already counted it, so it is zeroed below.
    // Expiry deletions were already folded in by `propagate_expired`.
    let mut d = digest::xor(st.tracking.digest, std::mem::take(&mut st.ks.expired_digest));
    if spec.keys.0 <= 0 && movable_keys(spec.name, args).is_none() {
        // Keyless writes (FLUSHDB, FLUSHALL) may change any key: recompute.
        d = digest::digest_all(&st.ks.dbs);
    } else {
        let keys = spec.key_args(args);
        for (i, k) in keys.iter().enumerate() {
            // A key given twice (MSET k a k b) counts once.
            if keys[..i].contains(k) {
                continue;
            }
            let expired = expired_now.iter().any(|(edb, ek)| *edb == db && ek[..] == k[..]);
            let old = if expired { [0; 3] } else { before[i] };
            d = digest::xor(digest::xor(d, old), after[i]);
        }
    }
    st.tracking.digest = d;
    st.tracking.write_seq = st.tracking.write_seq.saturating_add(1);
    let observer = st.observer.clone().expect("observed");
    if observer.verify_every_write {
        let full = digest::digest_all(&st.ks.dbs);
        assert_eq!(
            d,
            full,
            "incremental digest diverged from the dataset after {:?}",
            String::from_utf8_lossy(&args[0])
        );
    }
    observer.emit(crate::observe::Observation::Write {
        seq: st.tracking.write_seq,
        db,
        command: args.to_vec(),
        digest: d,
    });
}

/// Keys deleted by expiry since the last call: invalidate watches (and, with replication, feed
/// `DEL` to replicas).
pub fn propagate_expired(st: &mut State, verify: bool) {
    if st.ks.expired.is_empty() {
        return;
    }
    let expired = std::mem::take(&mut st.ks.expired);
    let digests = std::mem::take(&mut st.ks.expired_digests);
    let observer = st.observer.clone();
    if observer.is_some() {
        debug_assert_eq!(digests.len(), expired.len());
        st.ks.expired_digest = [0; 3];
    }
    for (i, (db, key)) in expired.iter().enumerate() {
        st.watches.touch(*db, key);
        // Fold this key's deletion into the observed digest first, so that the DEL's stream
        // offset is reported with the dataset as it is right after it.
        if observer.is_some() {
            st.tracking.digest = crate::db::digest::xor(st.tracking.digest, digests[i]);
        }
        // Replicas never expire keys themselves: the master's DEL does it (Redis 7).
        let del = vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(key)];
        if st.aof.recording() {
            let bytes = crate::aof::encode(&del);
            crate::aof::feed(st, *db, &bytes);
        }
        crate::replication::propagate(st, *db, &[del]);
    }
    if let Some(observer) = observer {
        if verify && observer.verify_every_write {
            let full = crate::db::digest::digest_all(&st.ks.dbs);
            assert_eq!(st.tracking.digest, full, "incremental digest diverged after expiry");
        }
        observer.emit(crate::observe::Observation::Expired {
            keys: expired.iter().map(|(db, k)| (*db, Bytes::copy_from_slice(k))).collect(),
            digest: st.tracking.digest,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(keys: (i32, i32, i32), argc: usize) -> Vec<String> {
        let spec = CommandSpec { name: "t", arity: -1, flags: 0, keys, handler: |_, _| {} };
        let args: Vec<Bytes> = (0..argc).map(|i| arg(i.to_string())).collect();
        spec.key_args(&args).into_iter().map(|k| lossy(k)).collect()
    }

    #[test]
    fn key_positions_follow_the_table() {
        assert_eq!(keys((1, -1, 2), 5), ["1", "3"]);
        assert_eq!(keys((1, -1, 1), 4), ["1", "2", "3"]);
        assert_eq!(keys((1, 1, 1), 3), ["1"]);
        assert_eq!(keys((1, 2, 1), 3), ["1", "2"]);
        assert_eq!(keys((1, -2, 1), 4), ["1", "2"]);
        assert_eq!(keys((2, -1, 1), 4), ["2", "3"]);
        assert_eq!(keys((3, 100, 1), 5), ["3", "4"]);
        assert!(keys((0, 0, 0), 3).is_empty());
        assert!(keys((1, -10, 1), 3).is_empty());
        assert!(keys((1, -3, 1), 3).is_empty());
        assert!(keys((1, i32::MIN, 1), 3).is_empty());
        assert!(keys((1, 1, -1), 3).is_empty());
        assert_eq!(keys((1, i32::MAX, i32::MAX), 3), ["1"]);
    }

    #[test]
    fn arity_is_exact_or_a_minimum() {
        assert!(arity_ok(2, 2) && !arity_ok(2, 1) && !arity_ok(2, 3));
        assert!(arity_ok(-2, 2) && arity_ok(-2, 100) && !arity_ok(-2, 1));
        assert!(arity_ok(i32::MIN, 1 << 31) && !arity_ok(i32::MIN, 5));
    }

    #[test]
    fn hex_floats_with_extreme_exponents_and_lengths() {
        assert_eq!(strtod_whole("0x1p99999999999999999999999"), Some(f64::INFINITY));
        assert_eq!(strtod_whole("-0x1p-99999999999999999999999"), Some(-0.0));
        assert_eq!(strtod_whole(&format!("0x0.{}1p0", "0".repeat(100_000))), Some(0.0));
        assert_eq!(strtod_whole(&format!("0x1{}p-400000", "0".repeat(100_000))), Some(1.0));
        assert_eq!(strtod_whole(&format!("0x{}p-160", "f".repeat(40))), Some(1.0));
        assert_eq!(strtod_whole("0x1p"), None);
        assert_eq!(strtod_whole("0x1p-"), None);
        assert_eq!(strtod_whole("0x1p5x"), None);
        assert_eq!(strtod_whole("0x.p1"), None);
        assert_eq!(strtod_whole("0x1.8P+1"), Some(3.0));
    }
}
