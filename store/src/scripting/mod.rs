//! Lua scripting: EVAL, EVALSHA and their read-only forms, on Lua 5.1 as Redis 7.0 embeds it.
//!
//! Why it is shaped this way:
//! - One Lua state per server (Redis's), built by [`Engine::new`]: the base, table, string,
//!   math and debug libraries, `cjson`, `cmsgpack` and `bit` (files of their own), the `redis` API, Redis's `pcall`, and
//!   `math.random` on Redis's
//!   `rand48` stream (so scripts draw the same numbers as on Redis, and nothing from the clock or
//!   an unseeded source: the simulation stays deterministic). SCRIPT FLUSH builds a new state.
//! - A script runs under the server lock, like any command: `redis.call` runs the command through
//!   [`crate::cmd::call`] (so WATCH, propagation, the AOF and blocked clients see each write) into
//!   a private buffer, and the reply is parsed back into Lua values, as Redis does. The script's
//!   writes reach replicas and the AOF wrapped in MULTI/EXEC (effects replication); EVAL itself
//!   is never propagated.
//! - Scripts may not create or assign globals (Redis 7's read-only globals): each script runs in
//!   an environment that reads the globals and refuses assignments.
//! - The engine is taken out of the state while a script runs (the script's callbacks borrow
//!   the state mutably); scripts cannot run scripts (EVAL is `noscript`), so it is never missing
//!   when a script starts.
//! - Limits: Lua's memory is capped ([`LUA_MEMORY_MAX`]); replies converted from Lua nest at most
//!   [`REPLY_DEPTH_MAX`] deep (a table may contain itself).
//! - Not yet: a script that never ends holds the server. Redis answers other clients -BUSY past
//!   `busy-reply-threshold` and lets SCRIPT KILL stop the script; here the script holds the state
//!   lock on the runtime's thread, and so does every task that takes the lock meanwhile (cron,
//!   replication, admission), so nothing could answer. It needs the script run off the runtime
//!   thread and every lock taker to wait without blocking while a script runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value, Variadic};

use crate::client::Resp;
use crate::cmd::{CommandSpec, Ctx};
use crate::protocol::{Proto, Reply};

mod bit;
mod cjson;
mod cmsgpack;
mod rand48;

/// Lua's memory, at most (Redis leaves it unbounded; a cap keeps a runaway script from taking
/// the process down with it).
pub const LUA_MEMORY_MAX: usize = 1 << 30;
/// Nesting of a script's reply, at most.
pub const REPLY_DEPTH_MAX: usize = 1000;
/// Scripts kept in the cache, at most (Redis's cache is unbounded until SCRIPT FLUSH).
pub const SCRIPTS_MAX: usize = 1 << 20;

const PRELUDE: &str = include_str!("prelude.lua");

/// The Lua state and the script cache.
pub struct Engine {
    lua: Lua,
    /// The prelude's runtime table: `raw` (set while a script runs), `run`, `resp`, `repl`.
    rt: Table,
    /// The environment scripts run in: reads globals, refuses assignments.
    env: Table,
    /// sha1 (lower-case hex) -> compiled script and its shebang flags.
    scripts: HashMap<String, (Function, ScriptFlags)>,
    /// Redis's `rand48` state: kept across SCRIPT FLUSH, as Redis keeps its C global.
    rand: Arc<Mutex<rand48::Rand48>>,
}

/// How a script's run ended.
pub enum Outcome {
    Ok(Value),
    /// The error table's message, and where in the script it was raised.
    Err {
        message: String,
        source: Option<String>,
        line: Option<i64>,
    },
}

/// A script's `#!lua flags=...` line (Redis 7's shebang); all false for a script without one.
#[derive(Clone, Copy, Default, Debug)]
pub struct ScriptFlags {
    pub shebang: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
}

/// Redis's `evalExtractShebangFlags`: the flags, and where the code starts (the shebang line's
/// newline is kept, so line numbers count it).
pub fn parse_shebang(body: &[u8]) -> Result<(ScriptFlags, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((ScriptFlags::default(), 0));
    }
    let Some(nl) = body.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let words = crate::protocol::split_args(&body[..nl]).ok_or("ERR Invalid script shebang")?;
    let Some((engine, options)) = words.split_first() else {
        return Err("ERR Invalid script shebang".into());
    };
    if engine.as_slice() != b"#!lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {}", String::from_utf8_lossy(engine)));
    }
    let mut flags = ScriptFlags { shebang: true, ..ScriptFlags::default() };
    for option in options {
        let Some(list) = option.strip_prefix(b"flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {}", String::from_utf8_lossy(option)));
        };
        for flag in list.split(|&b| b == b',').filter(|f| !f.is_empty()) {
            match flag {
                b"no-writes" => flags.no_writes = true,
                b"allow-oom" => flags.allow_oom = true,
                b"allow-stale" => flags.allow_stale = true,
                b"no-cluster" | b"allow-cross-slot-keys" => {}
                _ => return Err(format!("ERR Unexpected flag in script shebang: {}", String::from_utf8_lossy(flag))),
            }
        }
    }
    Ok((flags, nl))
}

pub fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

impl Engine {
    pub fn new() -> Engine {
        Engine::with_rand(Arc::new(Mutex::new(rand48::Rand48::new())))
    }

    fn with_rand(rand: Arc<Mutex<rand48::Rand48>>) -> Engine {
        let (lua, rt, env) = build_state(&rand).expect("the Lua state and prelude build");
        Engine { lua, rt, env, scripts: HashMap::new(), rand }
    }

    /// SCRIPT FLUSH: a new state, an empty cache.
    pub fn flush(&mut self) {
        *self = Engine::with_rand(self.rand.clone());
    }

    pub fn exists(&self, sha: &str) -> bool {
        self.scripts.contains_key(&sha.to_ascii_lowercase())
    }

    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }

    /// Lua's memory in use (INFO's `used_memory_lua`).
    pub fn memory_bytes(&self) -> usize {
        self.lua.used_memory()
    }

    /// Compiles a script into the cache (SCRIPT LOAD, EVAL); its sha1, or Redis's error.
    pub fn load(&mut self, body: &[u8]) -> Result<String, String> {
        let sha = sha1_hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        if self.scripts.len() >= SCRIPTS_MAX {
            return Err("ERR the script cache is full; SCRIPT FLUSH it".into());
        }
        let (flags, code_at) = parse_shebang(body)?;
        // Never bytecode: a precompiled chunk can break out of any sandbox, and Redis's Lua
        // only parses text (its lexer then stops at the escape byte). A space in front keeps
        // mlua from taking a leading ESC for a binary chunk and changes no line number.
        let mut code = Vec::with_capacity(body.len().saturating_sub(code_at).saturating_add(1));
        if body.get(code_at) == Some(&0x1b) {
            code.push(b' ');
        }
        code.extend_from_slice(&body[code_at..]);
        let chunk = self.lua.load(code).set_name("@user_script").set_environment(self.env.clone());
        let chunk = chunk.set_mode(mlua::ChunkMode::Text);
        match chunk.into_function() {
            Ok(f) => {
                self.scripts.insert(sha.clone(), (f, flags));
                Ok(sha)
            }
            Err(e) => Err(format!("ERR Error compiling script (new function): {}", lua_message(&e))),
        }
    }

    fn function(&self, sha: &str) -> Option<Function> {
        self.scripts.get(sha).map(|(f, _)| f.clone())
    }

    /// A cached script's shebang flags.
    pub fn flags(&self, sha: &str) -> Option<ScriptFlags> {
        self.scripts.get(sha).map(|(_, flags)| *flags)
    }
}

impl Default for Engine {
    fn default() -> Engine {
        Engine::new()
    }
}

/// The message of a Lua error as Lua put it (mlua adds context to callback errors).
fn lua_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) | mlua::Error::MemoryError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_message(cause),
        other => other.to_string(),
    }
}

/// The Lua state: libraries, the `redis` table, `math.random`, the prelude, the environment.
fn build_state(rand: &Arc<Mutex<rand48::Rand48>>) -> mlua::Result<(Lua, Table, Table)> {
    let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
    // SAFETY: mlua calls the `debug` library unsafe because Lua code can break the VM's
    // invariants with it (set upvalues of C functions, change metatables of primitives). Redis
    // loads it for scripts all the same; scripts are the server operator's clients' code, as
    // trusted as on Redis.
    let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) };
    lua.set_memory_limit(LUA_MEMORY_MAX)?;
    let globals = lua.globals();
    for name in ["loadfile", "dofile"] {
        globals.raw_set(name, Value::Nil)?;
    }
    let redis = lua.create_table()?;
    for (name, v) in [("LOG_DEBUG", 0), ("LOG_VERBOSE", 1), ("LOG_NOTICE", 2), ("LOG_WARNING", 3)] {
        redis.raw_set(name, v)?;
    }
    for (name, v) in [("REPL_NONE", 0), ("REPL_AOF", 1), ("REPL_SLAVE", 2), ("REPL_REPLICA", 2), ("REPL_ALL", 3)] {
        redis.raw_set(name, v)?;
    }
    redis.raw_set("REDIS_VERSION", crate::REDIS_COMPAT_VERSION)?;
    redis.raw_set("REDIS_VERSION_NUM", version_num(crate::REDIS_COMPAT_VERSION))?;
    redis.raw_set("error_reply", lua.create_function(|lua, args: MultiValue| reply_table(lua, args, "err"))?)?;
    redis.raw_set("status_reply", lua.create_function(|lua, args: MultiValue| reply_table(lua, args, "ok"))?)?;
    globals.raw_set("redis", redis.clone())?;
    let rt = lua.create_table()?;
    install_random(&lua, &rt, rand)?;
    rt.raw_set("resp", 2)?;
    rt.raw_set("repl", 3)?;
    rt.raw_set("raw", lua.create_function(raw_call)?)?;
    rt.raw_set("cjson_encode", lua.create_function(cjson::encode)?)?;
    rt.raw_set("cjson_decode", lua.create_function(cjson::decode)?)?;
    rt.raw_set("cmsgpack_pack", lua.create_function(cmsgpack::pack)?)?;
    rt.raw_set("cmsgpack_unpack", lua.create_function(cmsgpack::unpack)?)?;
    rt.raw_set("cmsgpack_unpack_one", lua.create_function(cmsgpack::unpack_one)?)?;
    rt.raw_set("cmsgpack_unpack_limit", lua.create_function(cmsgpack::unpack_limit)?)?;
    for (i, name) in bit::NAMES.iter().enumerate() {
        let f = lua.create_function(move |lua, args: MultiValue| bit::call(lua, i, args))?;
        rt.raw_set(format!("bit_{name}"), f)?;
    }
    rt.raw_set("sha1hex", lua.create_function(sha1hex)?)?;
    rt.raw_set("log", lua.create_function(log)?)?;
    rt.raw_set("set_repl", lua.create_function(set_repl)?)?;
    lua.set_named_registry_value(RT_REGISTRY_KEY, rt.clone())?;
    // SAFETY: `raising` only moves values on the Lua stack and calls Lua (see its comment).
    unsafe {
        redis.raw_set("call", lua.create_c_function(raising::<true, 0>)?)?;
        redis.raw_set("pcall", lua.create_c_function(raising::<false, 0>)?)?;
        redis.raw_set("sha1hex", lua.create_c_function(raising::<true, 1>)?)?;
        redis.raw_set("log", lua.create_c_function(raising::<true, 2>)?)?;
        let math: Table = globals.raw_get("math")?;
        math.raw_set("random", lua.create_c_function(raising::<true, 3>)?)?;
        math.raw_set("randomseed", lua.create_c_function(raising::<true, 4>)?)?;
        let json = lua.create_table()?;
        json.raw_set("encode", lua.create_c_function(raising::<true, 5>)?)?;
        json.raw_set("decode", lua.create_c_function(raising::<true, 6>)?)?;
        json.raw_set("null", cjson::null())?;
        json.raw_set("_NAME", "cjson")?;
        json.raw_set("_VERSION", "2.1.0")?;
        globals.raw_set("cjson", json)?;
        let msgpack = lua.create_table()?;
        msgpack.raw_set("pack", lua.create_c_function(raising::<true, 7>)?)?;
        msgpack.raw_set("unpack", lua.create_c_function(raising::<true, 8>)?)?;
        msgpack.raw_set("unpack_one", lua.create_c_function(raising::<true, 9>)?)?;
        msgpack.raw_set("unpack_limit", lua.create_c_function(raising::<true, 10>)?)?;
        msgpack.raw_set("_NAME", "cmsgpack")?;
        msgpack.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
        msgpack.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
        msgpack.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
        globals.raw_set("cmsgpack", msgpack)?;
        let bits = lua.create_table()?;
        let bit_functions: [mlua::ffi::lua_CFunction; 12] = [
            raising::<true, 11>,
            raising::<true, 12>,
            raising::<true, 13>,
            raising::<true, 14>,
            raising::<true, 15>,
            raising::<true, 16>,
            raising::<true, 17>,
            raising::<true, 18>,
            raising::<true, 19>,
            raising::<true, 20>,
            raising::<true, 21>,
            raising::<true, 22>,
        ];
        for (name, f) in bit::NAMES.iter().zip(bit_functions) {
            bits.raw_set(*name, lua.create_c_function(f)?)?;
        }
        globals.raw_set("bit", bits)?;
    }
    lua.load(PRELUDE).set_name("=redis").call::<()>(rt.clone())?;
    globals.raw_set("__redis__err__handler", rt.raw_get::<Function>("handler")?)?;
    remove_unlisted_globals(&globals)?;
    let env = script_environment(&lua, &globals)?;
    Ok((lua, rt, env))
}

/// Redis 7.0's allowed globals (`script_lua.c`'s allow lists, less `getfenv`, `setfenv` and
/// `newproxy`, which the 7.0 that Debian ships removes with its security fixes); everything
/// else the libraries defined is removed (`print`, `dofile`, `loadfile`, and `debug` once the
/// prelude holds what it needs).
const GLOBALS_ALLOWED: &[&str] = &[
    "string",
    "cjson",
    "bit",
    "cmsgpack",
    "math",
    "table",
    "struct",
    "redis",
    "__redis__err__handler",
    "xpcall",
    "tostring",
    "getfenv",
    "setmetatable",
    "next",
    "assert",
    "tonumber",
    "rawequal",
    "collectgarbage",
    "getmetatable",
    "rawset",
    "pcall",
    "coroutine",
    "type",
    "_G",
    "select",
    "unpack",
    "gcinfo",
    "pairs",
    "rawget",
    "loadstring",
    "ipairs",
    "_VERSION",
    "load",
    "error",
];

/// The library tables scripts see read-only (Redis protects every table reachable from the
/// globals; KEYS and ARGV are the script's own).
const LIBRARIES_READ_ONLY: &[&str] =
    &["string", "math", "table", "redis", "coroutine", "bit", "cjson", "struct", "cmsgpack"];

fn remove_unlisted_globals(globals: &Table) -> mlua::Result<()> {
    let names: Vec<String> = globals.pairs::<String, Value>().filter_map(Result::ok).map(|(k, _)| k).collect();
    for name in names {
        if !GLOBALS_ALLOWED.contains(&name.as_str()) {
            globals.raw_set(name, Value::Nil)?;
        }
    }
    Ok(())
}

/// Where the prelude's runtime table is in the registry (for [`raising`]).
const RT_REGISTRY_KEY: &str = "redis_rt";
const RT_REGISTRY_KEY_C: &std::ffi::CStr = c"redis_rt";
/// The runtime table's functions that [`raising`] calls, by index.
const RAISING_TARGETS: [&std::ffi::CStr; 23] = [
    c"raw",
    c"sha1hex",
    c"log",
    c"random",
    c"randomseed",
    c"cjson_encode",
    c"cjson_decode",
    c"cmsgpack_pack",
    c"cmsgpack_unpack",
    c"cmsgpack_unpack_one",
    c"cmsgpack_unpack_limit",
    c"bit_tobit",
    c"bit_tohex",
    c"bit_bnot",
    c"bit_band",
    c"bit_bor",
    c"bit_bxor",
    c"bit_lshift",
    c"bit_rshift",
    c"bit_arshift",
    c"bit_rol",
    c"bit_ror",
    c"bit_bswap",
];
/// Targets in this range return their values in a table `{n = count, ...}`, which `raising`
/// spreads into that many results (cmsgpack's unpack functions).
const SPREAD: std::ops::RangeInclusive<usize> = 8..=10;

/// The index of `raw` (redis.call / redis.pcall), whose number arguments become text.
const RAW: usize = 0;

/// `redis.call`, `redis.pcall`, `redis.sha1hex`, `redis.log`, `math.random` and
/// `math.randomseed` as C functions, as in Redis: the Rust function `RAISING_TARGETS[TARGET]` of
/// the runtime table returns (ok, value), and when `RAISE` and not ok this raises the value: an
/// `{err = ...}` table (which a Rust callback cannot raise) as it is, a message with the
/// caller's position in front (as `luaL_error` does). Being C functions, they leave the script's
/// frame on the stack even when called in tail position (`return redis.call(...)`), so an error
/// reports the script's line.
///
/// For redis.call, number arguments are first turned into text with `%.17g` here, where the
/// Lua number is still a double (mlua would hand `-0.0` to Rust as the integer 0).
///
/// Safety: called by Lua with its arguments on the stack; it pushes at most three values (a C
/// function may use `LUA_MINSTACK`, 20) and keeps no Rust value with a destructor across a call
/// that may not return (`lua_call`, `lua_error`, and allocation errors of `lua_pushlstring`).
unsafe extern "C-unwind" fn raising<const RAISE: bool, const TARGET: usize>(
    state: *mut mlua::lua_State,
) -> std::ffi::c_int {
    use mlua::ffi;
    let n = ffi::lua_gettop(state);
    if TARGET == RAW {
        for i in 1..=n {
            if ffi::lua_type(state, i) == ffi::LUA_TNUMBER {
                let mut buf = [0u8; 64];
                let len = g17_into(ffi::lua_tonumber(state, i), &mut buf);
                ffi::lua_pushlstring(state, buf.as_ptr().cast(), len);
                ffi::lua_replace(state, i);
            }
        }
    }
    ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, RT_REGISTRY_KEY_C.as_ptr());
    ffi::lua_getfield(state, -1, RAISING_TARGETS[TARGET].as_ptr());
    ffi::lua_remove(state, -2);
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, n, 2);
    if RAISE && ffi::lua_toboolean(state, -2) == 0 {
        if ffi::lua_type(state, -1) == ffi::LUA_TSTRING {
            ffi::luaL_where(state, 1);
            ffi::lua_insert(state, -2);
            ffi::lua_concat(state, 2);
        }
        ffi::lua_error(state);
    }
    if *SPREAD.start() <= TARGET && TARGET <= *SPREAD.end() {
        let t = ffi::lua_gettop(state);
        ffi::lua_getfield(state, t, c"n".as_ptr());
        let count = ffi::lua_tointeger(state, -1).clamp(0, i64::from(i32::MAX / 2)) as std::ffi::c_int;
        ffi::lua_settop(state, -2);
        if ffi::lua_checkstack(state, count) == 0 {
            ffi::luaL_where(state, 1);
            ffi::lua_pushstring(state, c"too many results to unpack".as_ptr());
            ffi::lua_concat(state, 2);
            ffi::lua_error(state);
        }
        for i in 1..=count {
            ffi::lua_rawgeti(state, t, i64::from(i));
        }
        return count;
    }
    1
}

/// `%.17g` of `v` into `buf`; the length written (at most 64 bytes: `%.17g` needs 24).
fn g17_into(v: f64, buf: &mut [u8; 64]) -> usize {
    let text = format_g17(v);
    let len = text.len().min(buf.len());
    buf[..len].copy_from_slice(&text.as_bytes()[..len]);
    len
}

/// The scripts' environment: an empty table whose reads fall through to the globals (an
/// unknown one is an error) and whose assignments are refused, as Redis 7's read-only globals.
fn script_environment(lua: &Lua, globals: &Table) -> mlua::Result<Table> {
    let protect = r#"
        local G, libraries = ...
        local error, tostring, rawget, rawset, setmetatable, ipairs, pairs = error, tostring, rawget, rawset, setmetatable, ipairs, pairs
        local function refuse() error("Attempt to modify a readonly table", 2) end
        local proxies = {}
        for _, name in ipairs(libraries) do
            local t = rawget(G, name)
            if t ~= nil then
                proxies[name] = setmetatable({}, {__index = t, __newindex = refuse})
            end
        end
        local env = {}
        proxies['_G'] = env
        local protected = {[env] = true}
        for _, p in pairs(proxies) do
            protected[p] = true
        end
        local lua_rawset, lua_setmetatable = rawset, setmetatable
        -- The C API's stores into a read-only table fail without a position, as in Redis.
        proxies['rawset'] = function(t, k, v)
            if protected[t] then
                error("Attempt to modify a readonly table", 0)
            end
            return lua_rawset(t, k, v)
        end
        proxies['setmetatable'] = function(t, m)
            if protected[t] then
                error("Attempt to modify a readonly table", 0)
            end
            return lua_setmetatable(t, m)
        end
        return setmetatable(env, {
            __index = function(_, k)
                local p = proxies[k]
                if p ~= nil then
                    return p
                end
                local v = rawget(G, k)
                if v == nil then
                    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
                end
                return v
            end,
            __newindex = refuse,
        })
    "#;
    let libraries = lua.create_sequence_from(LIBRARIES_READ_ONLY.iter().copied())?;
    lua.load(protect).set_name("=redis").call((globals.clone(), libraries))
}

/// `math.random` and `math.randomseed` as Redis replaces them (`redis_math_random`): Rust
/// functions of the runtime table returning (ok, value), raised by [`raising`].
fn install_random(lua: &Lua, rt: &Table, rand: &Arc<Mutex<rand48::Rand48>>) -> mlua::Result<()> {
    let r = rand.clone();
    let random = lua.create_function(move |lua, args: Variadic<Value>| {
        let x = r.lock().map_err(|_| mlua::Error::runtime("rand lock"))?.next_unit();
        Ok(match rand48::random_reply(x, &args) {
            Ok(v) => (true, Value::Number(v)),
            Err(e) => (false, Value::String(lua.create_string(e)?)),
        })
    })?;
    let r = rand.clone();
    let seed = lua.create_function(move |lua, args: Variadic<Value>| {
        let Some(s) = args.first().and_then(rand48::check_int_value) else {
            let got = args.first().map(|v| v.type_name()).unwrap_or("no value");
            let e = format!("bad argument #1 to 'randomseed' (number expected, got {got})");
            return Ok((false, Value::String(lua.create_string(e)?)));
        };
        r.lock().map_err(|_| mlua::Error::runtime("rand lock"))?.seed(s as i32);
        Ok((true, Value::Nil))
    })?;
    rt.raw_set("random", random)?;
    rt.raw_set("randomseed", seed)?;
    Ok(())
}

/// "7.0.15" as Redis's `REDIS_VERSION_NUM`: one byte per part (0x07000f).
fn version_num(v: &str) -> i64 {
    v.split('.').take(3).fold(0i64, |acc, p| acc.saturating_mul(256).saturating_add(p.parse::<i64>().unwrap_or(0)))
}

/// A Lua number as an integer (truncated, like `luaL_checkint`).
fn lua_int(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Number(n) if n.is_finite() => Some(*n as i64),
        Value::String(s) => s.to_str().ok()?.trim().parse::<f64>().ok().map(|n| n as i64),
        _ => None,
    }
}

/// Redis's `luaPushErrorBuff` text: a leading `-CODE` is the code, else `ERR`; trailing CR/LF
/// trimmed.
pub fn error_text(raw: &str) -> String {
    let (code, msg) = match raw.strip_prefix('-') {
        Some(rest) => match rest.split_once(' ') {
            Some((code, msg)) => (code.to_string(), msg.to_string()),
            None => ("ERR".to_string(), rest.to_string()),
        },
        None => ("ERR".to_string(), raw.to_string()),
    };
    format!("{code} {}", msg.trim_matches(['\r', '\n']))
}

fn err_table(lua: &Lua, message: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", message)?;
    Ok(t)
}

/// `redis.error_reply(msg)` and `redis.status_reply(msg)`.
fn reply_table(lua: &Lua, args: MultiValue, field: &str) -> mlua::Result<Table> {
    let (Some(Value::String(s)), 1) = (args.front(), args.len()) else {
        return err_table(lua, "ERR wrong number or type of arguments");
    };
    let text = s.to_string_lossy();
    if field == "ok" {
        let t = lua.create_table()?;
        t.raw_set("ok", s.clone())?;
        return Ok(t);
    }
    let raw = if text.starts_with('-') { text } else { format!("-{text}") };
    err_table(lua, &error_text(&raw))
}

/// `redis.sha1hex(s)`: (ok, digest) for the prelude to raise on.
fn sha1hex(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    if args.len() != 1 {
        return Ok((false, Value::Table(err_table(lua, "ERR wrong number of arguments")?)));
    }
    let bytes = match args.front() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => {
            lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec()).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    Ok((true, Value::String(lua.create_string(sha1_hex(&bytes))?)))
}

/// `redis.log(level, message...)`.
fn log(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    let fail = |m: &str| -> mlua::Result<(bool, Value)> { Ok((false, Value::Table(err_table(lua, m)?))) };
    if args.len() < 2 {
        return fail("ERR redis.log() requires two arguments or more.");
    }
    let Some(level) = args.front().and_then(|v| match v {
        Value::Integer(_) | Value::Number(_) => lua_int(v),
        _ => None,
    }) else {
        return fail("ERR First argument must be a number (log level).");
    };
    if !(0..=3).contains(&level) {
        return fail("ERR Invalid debug level.");
    }
    let mut text = String::new();
    for (i, v) in args.iter().skip(1).enumerate() {
        if i > 0 {
            text.push(' ');
        }
        if let Some(s) = lua.coerce_string(v.clone())? {
            text.push_str(&s.to_string_lossy());
        }
    }
    match level {
        0 | 1 => tracing::debug!("{text}"),
        2 => tracing::info!("{text}"),
        _ => tracing::warn!("{text}"),
    }
    Ok((true, Value::Nil))
}

/// `redis.set_repl(flags)`: stored for `redis.call` to honour.
fn set_repl(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    if args.len() != 1 {
        return Ok((false, Value::Table(err_table(lua, "ERR redis.set_repl() requires two arguments.")?)));
    }
    let flags = args.front().and_then(lua_int).unwrap_or(0);
    if flags & !3 != 0 {
        let m = "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.";
        return Ok((false, Value::Table(err_table(lua, m)?)));
    }
    Ok((true, Value::Integer(flags)))
}

// ---------------------------------------------------------------------------------------------
// Running a script.

/// What a script may do: EVAL_RO and `no-writes` scripts may not write; `allow-oom` ones may
/// run deny-oom commands past maxmemory.
#[derive(Clone, Copy)]
pub struct RunFlags {
    pub read_only: bool,
    pub allow_oom: bool,
}

/// Runs the cached script `sha` for `ctx`'s client and writes its reply (or error) to `ctx.out`.
pub fn run(ctx: &mut Ctx, sha: &str, keys: &[Bytes], argv: &[Bytes], flags: RunFlags) {
    let Some(engine) = ctx.st.scripting.take() else {
        return ctx.error("ERR a script is already running");
    };
    let Some(f) = engine.function(sha) else {
        ctx.st.scripting = Some(engine);
        return ctx.error("NOSCRIPT No matching script. Please use EVAL.");
    };
    let (db, proto, in_exec) = (ctx.client.db, ctx.client.proto, ctx.client.in_exec);
    let outer_exec = ctx.st.repl.in_exec;
    ctx.st.repl.in_exec = true;
    ctx.client.in_exec = true;
    let result = run_in_scope(ctx, &engine, f, keys, argv, flags);
    ctx.client.db = db;
    ctx.client.proto = proto;
    ctx.client.in_exec = in_exec;
    ctx.client.script_repl = crate::cmd::SCRIPT_REPL_ALL;
    if !outer_exec {
        crate::replication::end_exec(ctx.st);
        crate::aof::end_exec(ctx.st);
    }
    let script_resp = engine.rt.raw_get::<i64>("resp").unwrap_or(2);
    ctx.st.scripting = Some(engine);
    match result {
        Ok(Outcome::Ok(v)) => lua_to_reply(ctx, &v, script_resp == 3, 0),
        Ok(Outcome::Err { message, source, line }) => {
            let at = match (source, line) {
                (Some(s), Some(l)) => format!(" script: {sha}, on {s}:{l}."),
                _ => format!(" script: {sha}"),
            };
            ctx.error(&format!("{message}{at}"))
        }
        Err(e) => ctx.error(&format!("ERR {} script: {sha}", lua_message(&e))),
    }
}

fn run_in_scope(
    ctx: &mut Ctx,
    engine: &Engine,
    f: Function,
    keys: &[Bytes],
    argv: &[Bytes],
    flags: RunFlags,
) -> mlua::Result<Outcome> {
    let lua = &engine.lua;
    let globals = lua.globals();
    globals.raw_set(
        "KEYS",
        lua.create_sequence_from(keys.iter().map(|k| lua.create_string(k)).collect::<mlua::Result<Vec<_>>>()?)?,
    )?;
    globals.raw_set(
        "ARGV",
        lua.create_sequence_from(argv.iter().map(|a| lua.create_string(a)).collect::<mlua::Result<Vec<_>>>()?)?,
    )?;
    engine.rt.raw_set("resp", 2)?;
    engine.rt.raw_set("repl", 3)?;
    // `raw` (built once, in `build_state`) finds the client through this while the script runs.
    let running = Running { ctx: (ctx as *mut Ctx).cast(), flags, wrote: false };
    lua.set_app_data(running);
    let run: Function = engine.rt.raw_get("run")?;
    let results = run.call::<MultiValue>(f);
    lua.remove_app_data::<Running>();
    let mut results = results?.into_iter();
    let ok = matches!(results.next(), Some(Value::Boolean(true)));
    let value = results.next().unwrap_or(Value::Nil);
    if ok {
        return Ok(Outcome::Ok(value));
    }
    Ok(error_outcome(&value))
}

/// The running script's client, for `raw` (redis.call's Rust side). A raw pointer because the
/// function is built once per Lua state (building a scoped callback per run cost a third of an
/// EVALSHA's time); it is set just before the script starts and removed as soon as it ends, and
/// Lua runs nothing of ours in between but this script.
struct Running {
    ctx: *mut std::ffi::c_void,
    flags: RunFlags,
    wrote: bool,
}

// SAFETY: the pointer is only used on the thread running the script, during the run.
unsafe impl Send for Running {}

/// `raw`: runs one redis.call / redis.pcall for the running script; (ok, value).
fn raw_call(lua: &Lua, args: Variadic<Value>) -> mlua::Result<(bool, Value)> {
    let rt: Table = lua.named_registry_value(RT_REGISTRY_KEY)?;
    let resp = rt.raw_get::<i64>("resp").unwrap_or(2);
    let repl = rt.raw_get::<i64>("repl").unwrap_or(3);
    let Some(mut running) = lua.app_data_mut::<Running>() else {
        let message = "ERR redis.call/pcall can only be called inside a script invocation";
        return Ok((false, Value::Table(err_table(lua, message)?)));
    };
    let flags = running.flags;
    // SAFETY: see `Running`: set by `run_in_scope` from its `&mut Ctx`, which outlives the run
    // and is not otherwise used until the run ends.
    let ctx = unsafe { &mut *running.ctx.cast::<Ctx>() };
    match redis_call(ctx, lua, &args, resp == 3, repl, flags, &mut running.wrote) {
        Ok(v) => Ok((true, v)),
        Err(message) => Ok((false, Value::Table(err_table(lua, &message)?))),
    }
}

/// The error table the handler built: message, source and line.
fn error_outcome(v: &Value) -> Outcome {
    let Value::Table(t) = v else {
        return Outcome::Err { message: "ERR unknown error".into(), source: None, line: None };
    };
    let message = match t.raw_get::<Value>("err") {
        Ok(Value::String(s)) => s.to_string_lossy(),
        Ok(other) => format!("ERR {}", other.to_string().unwrap_or_default()),
        Err(_) => "ERR unknown error".into(),
    };
    let source = t.raw_get::<Option<String>>("source").ok().flatten();
    let line = t.raw_get::<Option<i64>>("line").ok().flatten();
    Outcome::Err { message, source, line }
}

/// `redis.call`'s work (Redis's `luaRedisGenericCommand` and `scriptCall`): the arguments as
/// strings, Redis's checks in its order, the command through `call`, its reply as Lua values.
/// An Err is the error message (for an `{err = ...}` table).
fn redis_call(
    ctx: &mut Ctx,
    lua: &Lua,
    words: &[Value],
    resp3: bool,
    repl: i64,
    flags: RunFlags,
    wrote: &mut bool,
) -> Result<Value, String> {
    if words.is_empty() {
        return Err("ERR Please specify at least one argument for this redis lib call".into());
    }
    let mut args = Vec::with_capacity(words.len());
    for w in words {
        args.push(match w {
            Value::String(s) => Bytes::copy_from_slice(&s.as_bytes()),
            Value::Integer(i) => Bytes::from(i.to_string()),
            Value::Number(n) => Bytes::from(format_g17(*n)),
            _ => return Err("ERR Lua redis lib command arguments must be strings or integers".into()),
        });
    }
    let spec = check_call(ctx, &args, flags, *wrote)?;
    let mut out = BytesMut::new();
    let proto = if resp3 { Proto::Resp3 } else { Proto::Resp2 };
    let caller_proto = std::mem::replace(&mut ctx.client.proto, proto);
    ctx.client.script_repl = (repl & 3) as u8;
    let dirty_before = ctx.st.dirty;
    // Work an enclosing EXEC deferred earlier (a BGSAVE queued before this EVAL) is not ours.
    let deferred_before = ctx.client.deferred.len();
    {
        let mut inner = Ctx {
            st: &mut *ctx.st,
            client: &mut *ctx.client,
            out: &mut out,
            env: ctx.env,
            now_ms: ctx.now_ms,
            frame: None,
        };
        crate::cmd::call(&mut inner, spec, &args);
    }
    ctx.client.proto = caller_proto;
    *wrote |= ctx.st.dirty != dirty_before;
    if ctx.client.deferred.len() > deferred_before {
        // Nothing that defers work is allowed from scripts (all such commands are `noscript`).
        ctx.client.deferred.truncate(deferred_before);
        return Err("ERR This Redis command is not allowed from script".into());
    }
    let reply = crate::client::parse_reply(&mut out).ok().flatten().ok_or("ERR the command's reply did not parse")?;
    if let Resp::Error(e) = &reply {
        return Err(error_text(&format!("-{e}")));
    }
    resp_to_lua(lua, &reply).map_err(|e| format!("ERR {}", lua_message(&e)))
}

/// Redis's `scriptCall` checks: the command exists with this arity, may run from a script, and
/// (for a write) may write now. Err is the error message.
fn check_call(ctx: &mut Ctx, args: &[Bytes], flags: RunFlags, wrote: bool) -> Result<&'static CommandSpec, String> {
    let spec = ctx.st.commands.lookup(&args[0]).ok_or("ERR Unknown Redis command called from script")?;
    if !crate::cmd::arity_ok(spec.arity, args.len()) {
        return Err("ERR Wrong number of args calling Redis command from script".into());
    }
    if !crate::cmd::known_subcommand(spec, args) {
        return Err("ERR Unknown Redis command called from script".into());
    }
    if spec.flags & crate::cmd::NO_SCRIPT != 0 {
        return Err("ERR This Redis command is not allowed from script".into());
    }
    if flags.read_only && (spec.is_write() || spec.flags & crate::cmd::MAY_REPLICATE != 0) {
        return Err("ERR Write commands are not allowed from read-only scripts.".into());
    }
    if spec.is_write() {
        crate::cmd::may_write(ctx).map_err(|e| error_text(&format!("-{e}")))?;
    }
    let oom_checked = !flags.allow_oom && !wrote && !ctx.client.is_master;
    if oom_checked && spec.flags & crate::cmd::DENYOOM != 0 && crate::cmd::over_maxmemory(ctx.st) {
        return Err("OOM command not allowed when used memory > 'maxmemory'.".into());
    }
    Ok(spec)
}

/// A double as C's `%.17g` (how Redis passes a Lua number to a command).
pub fn format_g17(v: f64) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf".into() } else { "inf".into() };
    }
    crate::protocol::format_double(v)
}

/// Redis's `redisProtocolToLuaType`: a command's reply as the Lua value a script sees.
fn resp_to_lua(lua: &Lua, r: &Resp) -> mlua::Result<Value> {
    let table_with = |k: &str, v: Value| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(k, v)?;
        Ok(Value::Table(t))
    };
    Ok(match r {
        Resp::Int(i) => Value::Number(*i as f64),
        Resp::Bulk(Some(b)) => Value::String(lua.create_string(b)?),
        Resp::Bulk(None) | Resp::Array(None) => Value::Boolean(false),
        Resp::Simple(s) => table_with("ok", Value::String(lua.create_string(s)?))?,
        Resp::Error(e) => table_with("err", Value::String(lua.create_string(e)?))?,
        Resp::BlobError(e) => table_with("err", Value::String(lua.create_string(e)?))?,
        Resp::Array(Some(items)) | Resp::Push(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i.saturating_add(1), resp_to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        Resp::Null => Value::Nil,
        Resp::Bool(b) => Value::Boolean(*b),
        Resp::Double(text) => {
            let v = crate::cmd::parse_f64(text.as_bytes()).unwrap_or(f64::NAN);
            table_with("double", Value::Number(v))?
        }
        Resp::BigNumber(text) => table_with("big_number", Value::String(lua.create_string(text)?))?,
        Resp::Verbatim(format, text) => {
            let inner = lua.create_table()?;
            inner.raw_set("format", format.as_str())?;
            inner.raw_set("string", lua.create_string(text)?)?;
            table_with("verbatim_string", Value::Table(inner))?
        }
        Resp::Map(pairs) => {
            let inner = lua.create_table()?;
            for (k, v) in pairs {
                inner.raw_set(resp_to_lua(lua, k)?, resp_to_lua(lua, v)?)?;
            }
            table_with("map", Value::Table(inner))?
        }
        Resp::Set(items) => {
            let inner = lua.create_table()?;
            for item in items {
                inner.raw_set(resp_to_lua(lua, item)?, true)?;
            }
            table_with("set", Value::Table(inner))?
        }
    })
}

/// Redis's `luaReplyToRedisReply`: a script's result as the client's reply. `resp3` is the
/// script's protocol (`redis.setresp`), which decides how booleans are sent.
fn lua_to_reply(ctx: &mut Ctx, v: &Value, resp3: bool, depth: usize) {
    if depth > REPLY_DEPTH_MAX {
        return ctx.error("ERR reached lua stack limit");
    }
    let next = depth.saturating_add(1);
    match v {
        Value::String(s) => ctx.bulk(&s.as_bytes()),
        Value::Boolean(b) if !resp3 => {
            if *b {
                ctx.int(1)
            } else {
                ctx.null()
            }
        }
        Value::Boolean(b) => Reply::boolean(ctx.out, ctx.client.proto, *b),
        Value::Integer(i) => ctx.int(*i),
        Value::Number(n) => ctx.int(truncate_to_i64(*n)),
        Value::Table(t) => table_to_reply(ctx, t, resp3, next),
        _ => ctx.null(),
    }
}

/// C's `(long long)` conversion of a double as x86-64 does it: NaN, infinities and values out
/// of range give the "integer indefinite" value, i64::MIN (`return math.huge` replies that).
fn truncate_to_i64(n: f64) -> i64 {
    if n.is_finite() && n > -9.223_372_036_854_776e18 && n < 9.223_372_036_854_776e18 {
        n as i64
    } else {
        i64::MIN
    }
}

fn table_to_reply(ctx: &mut Ctx, t: &Table, resp3: bool, depth: usize) {
    if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
        let msg = e.to_string_lossy();
        return ctx.error(&msg);
    }
    if let Ok(Value::String(ok)) = t.raw_get::<Value>("ok") {
        let text = ok.to_string_lossy().replace(['\r', '\n'], " ");
        return Reply::simple(ctx.out, &text);
    }
    if let Ok(Value::Number(d)) = t.raw_get::<Value>("double") {
        return ctx.double(d);
    }
    if let Ok(Value::Integer(d)) = t.raw_get::<Value>("double") {
        return ctx.double(d as f64);
    }
    if let Ok(Value::String(b)) = t.raw_get::<Value>("big_number") {
        let text = b.to_string_lossy().replace(['\r', '\n'], " ");
        return Reply::big_number(ctx.out, ctx.client.proto, &text);
    }
    if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string") {
        if let (Ok(Value::String(f)), Ok(Value::String(s))) =
            (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
        {
            return Reply::verbatim_format(ctx.out, ctx.client.proto, &f.to_string_lossy(), &s.as_bytes());
        }
    }
    if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
        let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(Result::ok).collect();
        ctx.map_len(pairs.len());
        for (k, v) in &pairs {
            lua_to_reply(ctx, k, resp3, depth);
            lua_to_reply(ctx, v, resp3, depth);
        }
        return;
    }
    if let Ok(Value::Table(s)) = t.raw_get::<Value>("set") {
        let items: Vec<Value> = s.pairs::<Value, Value>().filter_map(Result::ok).map(|(k, _)| k).collect();
        ctx.set_len(items.len());
        for k in &items {
            lua_to_reply(ctx, k, resp3, depth);
        }
        return;
    }
    // An array: elements 1, 2... up to the first nil.
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(v),
        }
    }
    ctx.array_len(items.len());
    for v in &items {
        lua_to_reply(ctx, v, resp3, depth);
    }
}
