//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (LOAD, EXISTS, FLUSH,
//! KILL, HELP). The engine is `scripting/`; this file parses the commands as Redis 7.0's
//! `eval.c` does and hands the script to it.

use bytes::Bytes;

use super::*;
use crate::scripting::RunFlags;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec { name: "eval", arity: -3, flags: NO_SCRIPT | STALE | MAY_REPLICATE, keys: (0, 0, 0), handler: eval },
    CommandSpec {
        name: "evalsha",
        arity: -3,
        flags: NO_SCRIPT | STALE | MAY_REPLICATE,
        keys: (0, 0, 0),
        handler: evalsha,
    },
    CommandSpec { name: "eval_ro", arity: -3, flags: NO_SCRIPT | STALE | READONLY, keys: (0, 0, 0), handler: eval_ro },
    CommandSpec {
        name: "evalsha_ro",
        arity: -3,
        flags: NO_SCRIPT | STALE | READONLY,
        keys: (0, 0, 0),
        handler: evalsha_ro,
    },
    CommandSpec { name: "script", arity: -2, flags: NO_SCRIPT | STALE, keys: (0, 0, 0), handler: script },
];

/// EVAL's `numkeys` and the split of the rest into KEYS and ARGV; None after replying the
/// error.
fn keys_and_args<'a>(ctx: &mut Ctx, args: &'a [Bytes]) -> Option<(&'a [Bytes], &'a [Bytes])> {
    let numkeys = arg_i64(ctx, &args[2])?;
    let rest = &args[3..];
    if numkeys > rest.len() as i64 {
        ctx.error("ERR Number of keys can't be greater than number of args");
        return None;
    }
    if numkeys < 0 {
        ctx.error("ERR Number of keys can't be negative");
        return None;
    }
    Some(rest.split_at(numkeys as usize))
}

/// Compiles `body` into the cache; its sha1, or None after replying the error.
fn load(ctx: &mut Ctx, body: &[u8]) -> Option<String> {
    let Some(engine) = ctx.st.scripting.as_mut() else {
        ctx.error("ERR a script is already running");
        return None;
    };
    match engine.load(body) {
        Ok(sha) => Some(sha),
        Err(e) => {
            ctx.error(&e);
            None
        }
    }
}

fn flush(ctx: &mut Ctx) {
    if let Some(engine) = ctx.st.scripting.as_mut() {
        engine.flush();
    }
    ctx.ok()
}

/// EVAL, EVALSHA and their `_RO` forms, in Redis's order: EVALSHA's sha length, numkeys, the
/// script (compiled and cached, or found), its shebang's conditions, then the run.
fn eval_generic(ctx: &mut Ctx, args: &[Bytes], by_sha: bool, ro: bool) {
    if by_sha && args[1].len() != 40 {
        return ctx.error("NOSCRIPT No matching script. Please use EVAL.");
    }
    let Some((keys, argv)) = keys_and_args(ctx, args) else {
        return;
    };
    let sha = if by_sha {
        let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        if !ctx.st.scripting.as_ref().is_some_and(|e| e.exists(&sha)) {
            return ctx.error("NOSCRIPT No matching script. Please use EVAL.");
        }
        sha
    } else {
        match load(ctx, &args[1]) {
            Some(sha) => sha,
            None => return,
        }
    };
    let flags = ctx.st.scripting.as_ref().and_then(|e| e.flags(&sha)).unwrap_or_default();
    if let Err(e) = prepare(ctx, flags, ro) {
        return ctx.error(&e);
    }
    crate::fault::probe("script.run");
    let run = RunFlags { read_only: ro || (flags.shebang && flags.no_writes), allow_oom: flags.allow_oom };
    crate::scripting::run(ctx, &sha, keys, argv, run)
}

/// Redis's `scriptPrepareForRun` for a script with a shebang (one without is checked command by
/// command as it runs): a script that may write must be allowed to write now.
fn prepare(ctx: &Ctx, flags: crate::scripting::ScriptFlags, ro: bool) -> Result<(), String> {
    if !flags.shebang {
        return Ok(());
    }
    if !flags.no_writes {
        let replica = ctx.st.repl.is_replica() && !ctx.client.is_master;
        if replica && ctx.st.config.hot.replica_read_only {
            return Err("READONLY Can not run script with write flag on readonly replica".into());
        }
        if !ctx.client.is_master && crate::persistence::writes_refused(ctx.st) {
            return Err(crate::persistence::MISCONF.into());
        }
        if ro {
            return Err("ERR Can not execute a script with write flag using *_ro command.".into());
        }
        if !ctx.st.repl.is_replica() && !gate_writes(ctx) {
            return Err("NOREPLICAS Not enough good replicas to write.".into());
        }
        if !flags.allow_oom && !ctx.client.is_master && over_maxmemory(ctx.st) {
            return Err(
                "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'".into()
            );
        }
    }
    Ok(())
}

fn eval(ctx: &mut Ctx, args: &[Bytes]) {
    eval_generic(ctx, args, false, false)
}

fn evalsha(ctx: &mut Ctx, args: &[Bytes]) {
    eval_generic(ctx, args, true, false)
}

fn eval_ro(ctx: &mut Ctx, args: &[Bytes]) {
    eval_generic(ctx, args, false, true)
}

fn evalsha_ro(ctx: &mut Ctx, args: &[Bytes]) {
    eval_generic(ctx, args, true, true)
}

fn script(ctx: &mut Ctx, args: &[Bytes]) {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match (sub.as_str(), args.len()) {
        ("kill", 2) => ctx.error("NOTBUSY No scripts in execution right now."),
        ("flush", 2) => flush(ctx),
        ("flush", 3) if eq_ic(&args[2], "sync") || eq_ic(&args[2], "async") => flush(ctx),
        ("flush", _) => ctx.error("ERR SCRIPT FLUSH only support SYNC|ASYNC option"),
        ("exists", n) if n >= 3 => {
            let shas = &args[2..];
            ctx.array_len(shas.len());
            for sha in shas {
                let known = ctx.st.scripting.as_ref().is_some_and(|e| e.exists(&String::from_utf8_lossy(sha)));
                ctx.int(i64::from(known));
            }
        }
        ("load", 3) => match load(ctx, &args[2]) {
            Some(sha) => ctx.bulk(sha.as_bytes()),
            None => {}
        },
        ("help", 2) => reply_help(
            ctx,
            args,
            &[
                "DEBUG (YES|SYNC|NO)",
                "    Set the debug mode for subsequent scripts executed.",
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache. Very dangerous on replicas.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the scripts cache.",
                "    * SYNC: Synchronously flush the scripts cache.",
                "KILL",
                "    Kill the currently executing Lua script.",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
            ],
        ),
        ("kill" | "exists" | "load" | "help", _) => {
            ctx.error(&format!("ERR wrong number of arguments for 'script|{sub}' command"))
        }
        _ => ctx.error(&format!("ERR unknown subcommand '{}'. Try SCRIPT HELP.", String::from_utf8_lossy(&args[1]))),
    }
}
