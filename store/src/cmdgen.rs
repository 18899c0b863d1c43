//! A deterministic generator of Redis commands, for fuzzing and as a simulator workload.
//!
//! Why it is shaped this way:
//! - Commands come from the server's own table ([`CommandTable`]): a command we add is fuzzed
//!   without touching this file, and one we lack is never sent (its absence is not a finding).
//! - The table knows arity and key positions, not syntax, so each command gets a short list of
//!   its option keywords (`words`) and container commands a list of subcommands with the kinds
//!   of their arguments (`subcommands`). Arguments are otherwise drawn from pools of typical,
//!   boundary and hostile values, so most commands are well-formed enough to reach deep code and
//!   some are deliberately not (wrong arity, bad numbers, unknown options and commands).
//! - Keys come from small pools, so that commands meet each other's data: each family mostly
//!   uses two keys of its own (so that lists, sets... grow and get read back) and otherwise
//!   three keys shared by all (a list pushed by one command is read as a string by the next:
//!   WRONGTYPE paths; a set is stored into a key that holds a hash, and so on).
//! - Everything is a function of the seed (a ChaCha8 stream); no I/O and no clock, so the same
//!   seed gives the same commands in a test, a fuzz run or a simulation.
//! - [`CommandGen::wall_clock_safe`] is for comparing two servers on real clocks: relative
//!   expiry times become far-future values that strictly increase from one command to the next,
//!   so no key expires during a run and GT/LT comparisons of deadlines never tie (and SET's
//!   absolute times in the past become future ones: see `tame_times`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cmd::{CommandSpec, CommandTable};
use crate::protocol::parse_i64_strict;

/// Keys every command uses (a hostile key now and then comes from [`CommandGen::key`]).
const KEYS: &[&str] = &["k1", "k2", "k3"];
const TYPICAL_INTS: &[&str] = &["0", "1", "2", "3", "5", "10", "-1", "-2", "100"];
const BOUNDARY_INTS: &[&str] = &[
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "65536",
    "1000000",
];
const FLOATS: &[&str] = &[
    "1.5",
    "-1.5",
    "0.1",
    "-0",
    "0.0",
    "1e308",
    "-1e308",
    "1e309",
    "1e-320",
    "3.14e2",
    ".5",
    "5.",
    "1e",
    "0x1p3",
    "inf",
    "-inf",
    "+inf",
    "Infinity",
    "-infinity",
    "nan",
    "NaN",
    "-nan",
];
/// Sorted-set range syntax (scores and lex).
const RANGES: &[&str] = &["(1", "(-1", "(0", "[a", "(a", "[", "(", "-", "+", "(inf", "(-inf", "(+inf", "[k1", "(nan"];
const WORDS: &[&str] = &["a", "b", "c", "foo", "bar", "k1", "k2", "set1", "x", "1a", "hello world"];

/// Keys a family's commands prefer, so that each type also builds up data of its own rather
/// than mostly meeting WRONGTYPE on the shared keys.
fn family_keys(name: &str) -> &'static [&'static str] {
    use crate::cmd::{hashes, lists, sets, strings, zset_algebra, zsets};
    let member = |table: &[CommandSpec]| table.iter().any(|s| s.name == name);
    if member(strings::COMMANDS) {
        &["str1", "str2"]
    } else if member(lists::COMMANDS) {
        &["list1", "list2"]
    } else if member(hashes::COMMANDS) {
        &["hash1", "hash2"]
    } else if member(sets::COMMANDS) {
        &["set1", "set2"]
    } else if member(zsets::COMMANDS) || member(zset_algebra::COMMANDS) {
        &["zset1", "zset2"]
    } else {
        &["str1", "list1", "hash1", "set1", "zset1"]
    }
}
const HOSTILE: &[&str] = &[
    "",
    " 1",
    "1 ",
    "0x10",
    "01",
    "+1",
    "-",
    "--1",
    "1.0",
    "\t1",
    "1\n",
    "*",
    "?",
    "[a-z]*",
    "k*",
    "*1*",
    "\\",
    "[",
    "[^a]",
    "*a*a*a*a*a*a*a*a*a*a*b",
    "\r\n",
    "\0",
    "é",
];

/// CONFIG's arguments: parameter names (among them some a caller may have to refuse to set,
/// such as port and dir), patterns and values.
const CONFIG_WORDS: &[&str] = &[
    "maxmemory",
    "hz",
    "timeout",
    "port",
    "dir",
    "dbfilename",
    "bind",
    "save",
    "appendonly",
    "requirepass",
    "list-max-listpack-size",
    "hash-max-listpack-entries",
    "set-max-intset-entries",
    "zset-max-listpack-entries",
    "proto-max-bulk-len",
    "notify-keyspace-events",
    "loglevel",
    "databases",
    "maxclients",
    "no-such-option",
    "*",
    "max*",
    "*-max-*",
    "yes",
    "no",
];

/// Script bodies for EVAL (and shas of some of them for EVALSHA): reads, writes, errors, a
/// shebang, and results of each reply type.
const SCRIPTS: &[&str] = &[
    "return 1",
    "return redis.call('get', KEYS[1])",
    "return redis.call('set', KEYS[1], ARGV[1])",
    "return redis.call('incr', KEYS[1])",
    "return redis.pcall('incr', KEYS[1])",
    "return redis.call('lpush', KEYS[1], ARGV[1], ARGV[2])",
    "redis.call('del', KEYS[1]); return redis.call('exists', KEYS[1])",
    "return {KEYS[1], ARGV[1], 3.5, false, {ok='fine'}}",
    "error('boom')",
    "return redis.error_reply('MY error')",
    "x = 1",
    "return math.random(100)",
    "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])",
    "#!lua\nreturn redis.call('set', KEYS[1], 'v')",
    "return redis.call('hgetall', KEYS[1])",
    "e0d5e6d0c0f3e1a1b5a7b0b2f0f7f2d5b1c7b6a4",
];

/// Option keywords and arguments a command parses beyond keys and plain values.
fn words(name: &str) -> &'static [&'static str] {
    match name {
        "set" => &["NX", "XX", "GET", "EX", "PX", "EXAT", "PXAT", "KEEPTTL"],
        "getex" => &["EX", "PX", "EXAT", "PXAT", "PERSIST"],
        "expire" | "pexpire" | "expireat" | "pexpireat" => &["NX", "XX", "GT", "LT"],
        "zadd" => &["NX", "XX", "GT", "LT", "CH", "INCR"],
        "zrange" | "zrangestore" => &["BYSCORE", "BYLEX", "REV", "LIMIT", "WITHSCORES", "-inf", "+inf", "[a", "(1"],
        "zrangebyscore" | "zrevrangebyscore" | "zcount" | "zremrangebyscore" => {
            &["WITHSCORES", "LIMIT", "-inf", "+inf", "(1", "(inf"]
        }
        "zrangebylex" | "zrevrangebylex" | "zlexcount" | "zremrangebylex" => &["LIMIT", "-", "+", "[a", "(a", "[k1"],
        "zrevrange" | "zrandmember" => &["WITHSCORES"],
        "hrandfield" => &["WITHVALUES"],
        "lpos" => &["RANK", "COUNT", "MAXLEN"],
        "linsert" => &["BEFORE", "AFTER"],
        "lmove" | "blmove" => &["LEFT", "RIGHT"],
        "lmpop" | "blmpop" => &["LEFT", "RIGHT", "COUNT"],
        "zmpop" | "bzmpop" => &["MIN", "MAX", "COUNT"],
        "scan" => &["MATCH", "COUNT", "TYPE", "string", "list", "set", "zset", "hash", "k*"],
        "sscan" | "hscan" | "zscan" => &["MATCH", "COUNT", "*", "a*"],
        "sintercard" | "zintercard" => &["LIMIT"],
        "zunion" | "zinter" | "zunionstore" | "zinterstore" => {
            &["WEIGHTS", "AGGREGATE", "SUM", "MIN", "MAX", "WITHSCORES", "inf", "-inf"]
        }
        "zdiff" | "zdiffstore" => &["WITHSCORES"],
        "flushall" | "flushdb" => &["ASYNC", "SYNC"],
        "bitop" => &["AND", "OR", "XOR", "NOT"],
        "bitcount" | "bitpos" => &["BIT", "BYTE"],
        "bgsave" => &["SCHEDULE"],
        "script" => &["SYNC", "ASYNC", "return 1", "return redis.call('get', KEYS[1])"],
        "eval" | "eval_ro" | "evalsha" | "evalsha_ro" => SCRIPTS,
        "shutdown" => &["NOSAVE", "SAVE", "NOW", "FORCE", "ABORT"],
        "hello" => &["2", "3", "AUTH", "default", "SETNAME"],
        "auth" => &["default", "nopass"],
        "info" => &[
            "server",
            "clients",
            "memory",
            "persistence",
            "stats",
            "replication",
            "keyspace",
            "all",
            "everything",
            "default",
        ],
        "replicaof" | "slaveof" => &["NO", "ONE"],
        "replconf" => &["listening-port", "ip-address", "capa", "eof", "psync2", "ack", "getack", "rdb-only"],
        "psync" => &["?", "-1"],
        "client" => &[
            "TYPE", "normal", "pubsub", "master", "ID", "ADDR", "LADDR", "SKIPME", "USER", "MAXAGE", "yes", "no", "ON",
            "OFF", "SKIP", "TIMEOUT", "ERROR",
        ],
        "config" => CONFIG_WORDS,
        _ => &[],
    }
}

/// Subcommands of container commands, each with its arguments: `k` a key, `v` a value, `w` one
/// of the command's [`words`], `c` a command name; a trailing `*` repeats the last kind 0-3 times.
fn subcommands(name: &str) -> &'static [(&'static str, &'static str)] {
    match name {
        "config" => &[("get", "w"), ("set", "w v"), ("resetstat", ""), ("rewrite", ""), ("help", "")],
        "client" => &[
            ("id", ""),
            ("getname", ""),
            ("setname", "v"),
            ("list", "w w*"),
            ("info", ""),
            ("kill", "w v w v"),
            ("setinfo", "w v"),
            ("reply", "w"),
            ("no-evict", "w"),
            ("no-touch", "w"),
            ("unblock", "v w*"),
            ("help", ""),
        ],
        "command" => {
            &[("count", ""), ("info", "c*"), ("docs", "c*"), ("list", ""), ("getkeys", "c k v*"), ("help", "")]
        }
        "debug" => &[
            ("digest", ""),
            ("digest-value", "k*"),
            ("sleep", "v"),
            ("set-active-expire", "v"),
            ("object", "k"),
            ("help", ""),
        ],
        "pubsub" => &[
            ("channels", "v*"),
            ("numsub", "v*"),
            ("numpat", ""),
            ("shardchannels", "v*"),
            ("shardnumsub", "v*"),
            ("help", ""),
        ],
        "script" => &[("exists", "v v*"), ("flush", "w*"), ("kill", ""), ("load", "v"), ("help", "")],
        _ => &[],
    }
}

/// Commands with an argument that counts the keys following it, and that argument's position.
const NUMKEYS: &[(&str, usize)] = &[("sintercard", 1), ("lmpop", 1), ("zmpop", 1), ("blmpop", 2), ("bzmpop", 2)];

/// Where a blocking command's timeout is: its last argument, or a fixed position.
fn timeout_position(name: &str, argc: usize) -> Option<usize> {
    match name {
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => argc.checked_sub(1),
        "blmpop" | "bzmpop" => Some(1),
        "brpoplpush" => Some(3),
        "blmove" => Some(5),
        _ => None,
    }
}

/// A blocking command's valid timeout becomes 10 ms: with one client nothing would ever wake
/// it, and timeout 0 waits for ever. Invalid ones stay, for the error paths.
fn tame_blocking_timeout(args: &mut [Vec<u8>]) {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let Some(at) = timeout_position(&name, args.len()) else { return };
    let Some(t) = args.get(at).and_then(|a| crate::cmd::parse_f64(a)) else { return };
    if (0.0..1e12).contains(&t) {
        args[at] = b"0.01".to_vec();
    }
}

/// Draws commands: see the module comment.
pub struct CommandGen {
    rng: ChaCha8Rng,
    specs: Vec<&'static CommandSpec>,
    /// Lower-case `name` or `name|subcommand` entries never generated.
    deny: Vec<String>,
    wall_clock_safe: bool,
    /// Commands generated so far (makes tamed expiry times strictly increase).
    issued: u64,
}

/// SETBIT's offset sizes the string: an offset within the limit but past a million bits is
/// brought under it (a 256 MB string per command would swamp the sweep and the fuzzer), while
/// offsets past the limit stay, for the error path.
fn tame_bit_offset(args: &mut [Vec<u8>]) {
    if !args.first().is_some_and(|n| n.eq_ignore_ascii_case(b"setbit")) {
        return;
    }
    let Some(off) = args.get(2).and_then(|a| parse_i64_strict(a)) else { return };
    if off > 1_000_000 && off < (1i64 << 32) {
        args[2] = (off % 1_000_000).to_string().into_bytes();
    }
}

impl CommandGen {
    pub fn new(seed: u64) -> CommandGen {
        CommandGen::with_exclusions(seed, &[])
    }

    /// A generator that never produces the commands in `deny`: names (`"shutdown"`) or
    /// container subcommands (`"debug|sleep"`), case-insensitive.
    pub fn with_exclusions(seed: u64, deny: &[&str]) -> CommandGen {
        let deny: Vec<String> = deny.iter().map(|d| d.to_ascii_lowercase()).collect();
        let specs: Vec<_> =
            CommandTable::new(&[]).specs.into_iter().filter(|s| !deny.iter().any(|d| d == s.name)).collect();
        assert!(!specs.is_empty(), "the deny list excludes every command");
        CommandGen { rng: ChaCha8Rng::seed_from_u64(seed), specs, deny, wall_clock_safe: false, issued: 0 }
    }

    /// Relative expiry times (EXPIRE, PEXPIRE, SETEX, PSETEX, SET/GETEX EX and PX) that are
    /// positive and not huge become far-future, strictly increasing values, and so do SET's
    /// EXAT/PXAT times in the past; see the module doc.
    pub fn wall_clock_safe(mut self) -> CommandGen {
        self.wall_clock_safe = true;
        self
    }

    /// One command: its name and arguments. (Not an `Iterator`: the stream never ends, and
    /// callers want the command, not an `Option` of it.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Vec<Vec<u8>> {
        self.issued = self.issued.saturating_add(1);
        if self.rng.gen_ratio(1, 300) {
            // An unknown command, for the error path.
            let mut args = vec![b"nosuchcommand".to_vec()];
            for _ in 0..self.rng.gen_range(0..3) {
                args.push(self.value(&[]));
            }
            return args;
        }
        let spec = self.pick_spec();
        let mut args = if subcommands(spec.name).is_empty() { self.plain(spec) } else { self.container(spec) };
        if self.wall_clock_safe {
            self.tame_times(&mut args);
        }
        tame_bit_offset(&mut args);
        tame_blocking_timeout(&mut args);
        args[0] = self.spell(spec.name);
        args
    }

    /// A command from the table; the FLUSH commands less often, so that data builds up.
    fn pick_spec(&mut self) -> &'static CommandSpec {
        loop {
            let spec = self.specs[self.rng.gen_range(0..self.specs.len())];
            if !spec.name.starts_with("flush") || self.rng.gen_ratio(1, 4) {
                return spec;
            }
        }
    }

    /// The name as sent: commands are case-insensitive, so sometimes upper or mixed case.
    fn spell(&mut self, name: &str) -> Vec<u8> {
        match self.rng.gen_range(0..10) {
            0 => name.to_ascii_uppercase().into_bytes(),
            1 => name.bytes().enumerate().map(|(i, b)| if i % 2 == 0 { b.to_ascii_uppercase() } else { b }).collect(),
            _ => name.as_bytes().to_vec(),
        }
    }

    /// How many arguments (name included) to send: mostly what the arity allows, sometimes not.
    /// An arity from the command table is small, and at most 40 are added to it.
    #[allow(clippy::arithmetic_side_effects)]
    fn argc(&mut self, arity: i32) -> usize {
        let min = arity.unsigned_abs() as usize;
        if self.rng.gen_ratio(1, 30) {
            // Deliberately wrong: one too few, or one too many for a fixed arity.
            return if arity > 0 && self.rng.gen_bool(0.5) { min + 1 } else { min.saturating_sub(1).max(1) };
        }
        if arity > 0 {
            return min;
        }
        let extra = match self.rng.gen_range(0..100) {
            0..=29 => 0,
            30..=79 => self.rng.gen_range(1..=3),
            80..=96 => self.rng.gen_range(4..=10),
            _ => self.rng.gen_range(11..=40),
        };
        min + extra
    }

    /// A command without subcommands: keys at the table's key positions, values elsewhere.
    fn plain(&mut self, spec: &CommandSpec) -> Vec<Vec<u8>> {
        let argc = self.argc(spec.arity);
        let words = words(spec.name);
        let family = family_keys(spec.name);
        let mut args = vec![spec.name.as_bytes().to_vec()];
        let numkeys_at = NUMKEYS.iter().find(|(n, _)| *n == spec.name).map(|&(_, at)| at);
        let numkeys_at = numkeys_at.filter(|&at| argc > at.saturating_add(1));
        let mut key_positions = 0..0;
        if let Some(at) = numkeys_at {
            // Arguments before the count: BLMPOP's timeout, ZUNIONSTORE's destination.
            while args.len() < at {
                let a = if is_key_position(spec.keys, args.len(), argc) { self.key(family) } else { self.value(words) };
                args.push(a);
            }
            // Mostly a count that matches the keys that follow; sometimes any value.
            // `argc > at + 1`: from 1 to `argc - at - 1` keys, from position `at + 1` on, all
            // before `argc` (positions and counts are small).
            #[allow(clippy::arithmetic_side_effects)]
            let (n, keys) = {
                let n = self.rng.gen_range(1..argc - at);
                (n, at + 1..at + 1 + n)
            };
            args.push(if self.rng.gen_ratio(4, 5) { n.to_string().into_bytes() } else { self.value(&[]) });
            key_positions = keys;
        }
        let required = spec.arity.unsigned_abs() as usize;
        while args.len() < argc {
            let i = args.len();
            let is_key =
                if numkeys_at.is_some() { key_positions.contains(&i) } else { is_key_position(spec.keys, i, argc) };
            let a = if is_key {
                self.key(family)
            } else if i >= required && !words.is_empty() && self.rng.gen_bool(0.4) {
                // Optional arguments are mostly options: a keyword more often there.
                self.word(words)
            } else {
                self.value(words)
            };
            args.push(a);
        }
        args
    }

    /// A container command (CONFIG, CLIENT...): a subcommand, then its arguments.
    fn container(&mut self, spec: &CommandSpec) -> Vec<Vec<u8>> {
        let allowed = |sub: &str| !self.deny.contains(&format!("{}|{sub}", spec.name));
        let subs: Vec<(&str, &str)> = subcommands(spec.name).iter().copied().filter(|(s, _)| allowed(s)).collect();
        let mut args = vec![spec.name.as_bytes().to_vec()];
        if subs.is_empty() || self.rng.gen_ratio(1, 25) {
            // An unknown subcommand, or none at all.
            if self.rng.gen_bool(0.5) {
                args.push(self.value(&[]));
            }
            return args;
        }
        let (sub, pattern) = subs[self.rng.gen_range(0..subs.len())];
        args.push(self.spell(sub));
        let words = words(spec.name);
        let mut last = None;
        for kind in pattern.split_whitespace() {
            if kind.ends_with('*') {
                for _ in 0..self.rng.gen_range(0..=3) {
                    args.push(self.of_kind(kind.as_bytes()[0], words));
                }
            } else {
                args.push(self.of_kind(kind.as_bytes()[0], words));
            }
            last = Some(kind.as_bytes()[0]);
        }
        if self.rng.gen_ratio(1, 12) {
            // Wrong arity for the subcommand: one argument more, or one less.
            if self.rng.gen_bool(0.5) || args.len() <= 2 {
                let kind = last.unwrap_or(b'v');
                args.push(self.of_kind(kind, words));
            } else {
                args.pop();
            }
        }
        args
    }

    fn of_kind(&mut self, kind: u8, words: &[&str]) -> Vec<u8> {
        match kind {
            b'k' => self.key(family_keys("")),
            b'w' if !words.is_empty() => self.word(words),
            b'c' if self.rng.gen_ratio(9, 10) => {
                self.specs[self.rng.gen_range(0..self.specs.len())].name.as_bytes().to_vec()
            }
            _ => self.value(words),
        }
    }

    /// A key: mostly one the command's family prefers, else a shared one, sometimes hostile
    /// (empty, binary, with a space).
    fn key(&mut self, family: &[&str]) -> Vec<u8> {
        if self.rng.gen_ratio(1, 30) {
            return [&b""[..], b"k1 ", b"\x00\xff"][self.rng.gen_range(0..3)].to_vec();
        }
        let pool = if self.rng.gen_ratio(3, 5) { family } else { KEYS };
        pool[self.rng.gen_range(0..pool.len())].as_bytes().to_vec()
    }

    /// A non-key argument: one of the command's keywords, or a typical, boundary or hostile value.
    fn value(&mut self, words: &[&str]) -> Vec<u8> {
        if !words.is_empty() && self.rng.gen_ratio(1, 4) {
            return self.word(words);
        }
        let pool = match self.rng.gen_range(0..100) {
            0..=39 => TYPICAL_INTS,
            40..=49 => BOUNDARY_INTS,
            50..=57 => FLOATS,
            58..=62 => RANGES,
            63..=82 => WORDS,
            83..=94 => HOSTILE,
            95..=97 => return self.binary(),
            _ => return self.big(),
        };
        pool[self.rng.gen_range(0..pool.len())].as_bytes().to_vec()
    }

    /// One of the command's keywords, sometimes in another case (keywords are case-insensitive,
    /// user names and the like are not).
    fn word(&mut self, words: &[&str]) -> Vec<u8> {
        let w = words[self.rng.gen_range(0..words.len())];
        match self.rng.gen_range(0..10) {
            0 | 1 => w.to_ascii_lowercase(),
            2 => w.to_ascii_uppercase(),
            _ => w.to_string(),
        }
        .into_bytes()
    }

    /// Random bytes, any value (invalid UTF-8, NUL, CR, LF).
    fn binary(&mut self) -> Vec<u8> {
        let n = self.rng.gen_range(1..=32);
        (0..n).map(|_| self.rng.gen()).collect()
    }

    /// A large value: 1 KB, or (a quarter of the time) 64 KB, the largest this generator sends.
    fn big(&mut self) -> Vec<u8> {
        let n = if self.rng.gen_ratio(1, 4) { 64 * 1024 } else { 1024 };
        vec![b'x'; n]
    }

    /// See [`CommandGen::wall_clock_safe`].
    fn tame_times(&mut self, args: &mut [Vec<u8>]) {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        for i in 2..args.len() {
            // `i` starts at 2.
            #[allow(clippy::arithmetic_side_effects)]
            let option = String::from_utf8_lossy(&args[i - 1]).to_ascii_lowercase();
            // The value each kind of time becomes: relative ones strictly increase (GT and LT
            // never tie); SET's absolute ones in the past become future ones, since SET stores
            // an already expired key that DBSIZE counts until an active expiry cycle, whose
            // timing differs between two servers, removes it.
            let (limit, base) = match (name.as_str(), option.as_str()) {
                ("expire" | "pexpire" | "setex" | "psetex", _) if i == 2 => (1 << 40, 1_000_000_000),
                ("set" | "getex", "ex" | "px") => (1 << 40, 1_000_000_000),
                ("set", "exat") => (1_000_000_000, 4_000_000_000),
                ("set", "pxat") => (1_000_000_000_000, 4_000_000_000_000),
                _ => continue,
            };
            if parse_i64_strict(&args[i]).is_some_and(|v| (1..limit).contains(&v)) {
                args[i] = self.issued.saturating_add(base).to_string().into_bytes();
            }
        }
    }
}

/// Whether argument `i` of an `argc`-argument command is a key, by the table's (first, last,
/// step); a negative last counts from the end. Positions and argument counts are small (the
/// generator sends at most 40 arguments past the arity), `i >= first` and `step > 0`.
#[allow(clippy::arithmetic_side_effects)]
fn is_key_position((first, last, step): (i32, i32, i32), i: usize, argc: usize) -> bool {
    if first <= 0 || step <= 0 {
        return false;
    }
    let last = if last < 0 { argc as i32 + last } else { last };
    let i = i as i32;
    i >= first && i <= last && (i - first) % step == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(a: &[u8]) -> String {
        String::from_utf8_lossy(a).to_ascii_lowercase()
    }

    #[test]
    fn same_seed_same_commands() {
        let (mut a, mut b) = (CommandGen::new(7), CommandGen::new(7));
        for _ in 0..2000 {
            assert_eq!(a.next(), b.next());
        }
        let mut c = CommandGen::new(8);
        assert!((0..100).any(|_| a.next() != c.next()));
    }

    #[test]
    fn every_command_and_subcommand_is_reached() {
        let mut g = CommandGen::new(1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100_000 {
            let args = g.next();
            seen.insert(lower(&args[0]));
            if args.len() > 1 {
                seen.insert(format!("{}|{}", lower(&args[0]), lower(&args[1])));
            }
        }
        for spec in CommandTable::new(&[]).specs {
            assert!(seen.contains(spec.name), "{} never generated", spec.name);
            for (sub, _) in subcommands(spec.name) {
                assert!(seen.contains(&format!("{}|{sub}", spec.name)), "{} {sub} never generated", spec.name);
            }
        }
    }

    #[test]
    fn exclusions_are_honoured_and_arguments_bounded() {
        let mut g = CommandGen::with_exclusions(3, &["SHUTDOWN", "debug|sleep"]);
        for _ in 0..50_000 {
            let args = g.next();
            let name = lower(&args[0]);
            assert_ne!(name, "shutdown");
            assert!(!(name == "debug" && args.len() > 1 && lower(&args[1]) == "sleep"));
            assert!(args.iter().all(|a| a.len() <= 64 * 1024));
            assert!(args.len() <= 50);
        }
    }

    #[test]
    fn arity_is_mostly_honoured() {
        let table = CommandTable::new(&[]);
        let mut g = CommandGen::new(5);
        let (mut ok, mut total) = (0, 0);
        for _ in 0..20_000 {
            let args = g.next();
            let Some(spec) = table.lookup(&args[0]) else { continue };
            total += 1;
            let n = args.len() as i32;
            if (spec.arity > 0 && n == spec.arity) || (spec.arity < 0 && n >= -spec.arity) {
                ok += 1;
            }
        }
        assert!(ok * 100 > total * 90, "{ok} of {total} commands had a valid arity");
        assert!(ok < total, "wrong arities are generated too");
    }

    #[test]
    fn wall_clock_safe_times_increase() {
        let mut g = CommandGen::new(9).wall_clock_safe();
        let mut last = 0;
        for _ in 0..50_000 {
            let args = g.next();
            if lower(&args[0]) == "pexpire" && args.len() >= 3 {
                if let Some(v) = parse_i64_strict(&args[2]) {
                    assert!(v <= 0 || v > 1 << 40 || v >= 1_000_000_000, "{v}");
                    if (1_000_000_000..1 << 40).contains(&v) {
                        assert!(v > last);
                        last = v;
                    }
                }
            }
        }
        assert!(last > 0);
    }
}
