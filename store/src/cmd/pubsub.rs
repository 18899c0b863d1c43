//! Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB.

use bytes::Bytes;

use super::*;
use crate::glob::glob_match;
use crate::protocol::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "subscribe",
        arity: -2,
        flags: NO_SCRIPT | PUBSUB | SUB_OK | STALE | LOADING,
        keys: (0, 0, 0),
        handler: subscribe,
    },
    CommandSpec {
        name: "unsubscribe",
        arity: -1,
        flags: NO_SCRIPT | PUBSUB | SUB_OK | STALE | LOADING,
        keys: (0, 0, 0),
        handler: unsubscribe,
    },
    CommandSpec {
        name: "psubscribe",
        arity: -2,
        flags: NO_SCRIPT | PUBSUB | SUB_OK | STALE | LOADING,
        keys: (0, 0, 0),
        handler: psubscribe,
    },
    CommandSpec {
        name: "punsubscribe",
        arity: -1,
        flags: NO_SCRIPT | PUBSUB | SUB_OK | STALE | LOADING,
        keys: (0, 0, 0),
        handler: punsubscribe,
    },
    CommandSpec {
        name: "publish",
        arity: 3,
        flags: PUBSUB | FAST | STALE | LOADING | MAY_REPLICATE,
        keys: (0, 0, 0),
        handler: publish,
    },
    CommandSpec { name: "pubsub", arity: -2, flags: PUBSUB | STALE | LOADING, keys: (0, 0, 0), handler: pubsub },
];

/// A (un)subscribe confirmation: a push frame in RESP3, like the messages, as Redis sends it.
fn confirm(ctx: &mut Ctx, kind: &[u8], name: Option<&[u8]>) {
    ctx.push_len(3);
    Reply::bulk(ctx.out, kind);
    match name {
        Some(n) => Reply::bulk(ctx.out, n),
        None => ctx.null(),
    }
    Reply::int(ctx.out, ctx.client.subscriptions() as i64);
}

fn subscribe(ctx: &mut Ctx, args: &[Bytes]) {
    if ctx.client.multi.is_some() {
        return ctx.error("ERR SUBSCRIBE isn't allowed for a DENY BLOCKING client");
    }
    for ch in &args[1..] {
        if ctx.client.channels.insert(ch.clone()) {
            ctx.st.pubsub.subscribe(ctx.client.id, ch);
        }
        confirm(ctx, b"subscribe", Some(ch));
    }
}

fn unsubscribe(ctx: &mut Ctx, args: &[Bytes]) {
    let targets: Vec<Bytes> =
        if args.len() == 1 { ctx.client.channels.iter().cloned().collect() } else { args[1..].to_vec() };
    if targets.is_empty() {
        return confirm(ctx, b"unsubscribe", None);
    }
    for ch in targets {
        if ctx.client.channels.remove(&ch) {
            ctx.st.pubsub.unsubscribe(ctx.client.id, &ch);
        }
        confirm(ctx, b"unsubscribe", Some(&ch));
    }
}

fn psubscribe(ctx: &mut Ctx, args: &[Bytes]) {
    if ctx.client.multi.is_some() {
        return ctx.error("ERR PSUBSCRIBE isn't allowed for a DENY BLOCKING client");
    }
    for p in &args[1..] {
        if ctx.client.patterns.insert(p.clone()) {
            ctx.st.pubsub.psubscribe(ctx.client.id, p);
        }
        confirm(ctx, b"psubscribe", Some(p));
    }
}

fn punsubscribe(ctx: &mut Ctx, args: &[Bytes]) {
    let targets: Vec<Bytes> =
        if args.len() == 1 { ctx.client.patterns.iter().cloned().collect() } else { args[1..].to_vec() };
    if targets.is_empty() {
        return confirm(ctx, b"punsubscribe", None);
    }
    for p in targets {
        if ctx.client.patterns.remove(&p) {
            ctx.st.pubsub.punsubscribe(ctx.client.id, &p);
        }
        confirm(ctx, b"punsubscribe", Some(&p));
    }
}

fn publish(ctx: &mut Ctx, args: &[Bytes]) {
    let publisher = crate::pubsub::Publisher { id: ctx.client.id, proto: ctx.client.proto, out: &mut *ctx.out };
    let limit = ctx.st.config.hot.pubsub_output_limit;
    let n = ctx.st.pubsub.publish(&ctx.st.clients, &args[1], &args[2], publisher, limit, ctx.now_ms);
    ctx.st.stats.pubsub_messages = ctx.st.stats.pubsub_messages.saturating_add(1);
    ctx.int(n as i64)
}

/// PUBSUB is a container command, as in Redis 7: an unknown subcommand and a subcommand's
/// arity are refused before it runs, then each subcommand checks its own arguments. We have no
/// shard channels (no SSUBSCRIBE), so SHARDCHANNELS and SHARDNUMSUB report none.
fn pubsub(ctx: &mut Ctx, args: &[Bytes]) {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let arity = match sub.as_str() {
        "channels" | "numsub" | "shardchannels" | "shardnumsub" => -2i32,
        "numpat" | "help" => 2,
        _ => return unknown_subcommand(ctx, args),
    };
    // Redis's arity: positive is exact, negative a minimum.
    let (argc, required) = (args.len(), arity.unsigned_abs() as usize);
    if (arity > 0 && argc != required) || argc < required {
        return ctx.error(&format!("ERR wrong number of arguments for 'pubsub|{sub}' command"));
    }
    match sub.as_str() {
        "help" => reply_help(ctx, args, PUBSUB_HELP),
        "channels" if args.len() <= 3 => {
            let pattern = args.get(2).cloned();
            let names: Vec<Bytes> = ctx
                .st
                .pubsub
                .channels
                .keys()
                .filter(|c| pattern.as_ref().is_none_or(|p| glob_match(p, c, false)))
                .cloned()
                .collect();
            Reply::bulk_array(ctx.out, names.iter());
        }
        "shardchannels" if args.len() <= 3 => Reply::array_len(ctx.out, 0),
        "numsub" | "shardnumsub" => {
            let shard = sub == "shardnumsub";
            let channels = &args[2..];
            // A name and a count per channel argument: twice the argument count fits.
            #[allow(clippy::arithmetic_side_effects)]
            let len = channels.len() * 2;
            Reply::array_len(ctx.out, len);
            for ch in channels {
                let n = if shard { 0 } else { ctx.st.pubsub.channels.get(&ch[..]).map(|s| s.len()).unwrap_or(0) };
                Reply::bulk(ctx.out, ch);
                Reply::int(ctx.out, n as i64);
            }
        }
        "numpat" => {
            let n = ctx.st.pubsub.patterns.len();
            ctx.int(n as i64)
        }
        _ => subcommand_syntax_error(ctx, args),
    }
}

/// Redis 7.0's PUBSUB HELP text.
const PUBSUB_HELP: &[&str] = &[
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
];
