//! Differential compatibility test: the same command scripts run against a real redis-server 7
//! and against store-server, and every reply must be identical (text, type and error message).
//!
//! Scripts live in `tests/compat/*.txt`, one command per line in redis-cli syntax. A line
//! starting with `@` compares the reply as an unordered collection (SMEMBERS, KEYS...); `~`
//! compares only the reply's type (TIME, INFO...). Each script starts on an empty dataset, on a
//! fresh RESP2 connection; a script switches protocol with `~HELLO 3` (only the type compared:
//! the reply carries the server's version and the client id).
//!
//! A command may have several replies: (P)(UN)SUBSCRIBE one per channel or pattern argument
//! (one when given none), and any command may be preceded by RESP3 push frames (a subscribed
//! RESP3 client's own PUBLISH delivers its message before the PUBLISH reply). They are compared
//! together, joined by spaces.

mod common;

use common::*;

/// Splits a rendered aggregate's contents at its top-level ", " separators (not inside nested
/// aggregates or quoted strings).
fn split_top_level(inner: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut quoted, mut escaped, mut start) = (0i32, false, false, 0);
    let bytes = inner.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if quoted {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => quoted = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth -= 1,
            b',' if depth == 0 && bytes.get(i + 1) == Some(&b' ') => {
                items.push(&inner[start..i]);
                start = i + 2;
            }
            _ => {}
        }
    }
    if start < inner.len() {
        items.push(&inner[start..]);
    }
    items
}

/// The reply with its top-level items sorted (arrays, sets, maps, pushes), for `@` lines.
fn normalise_unordered(reply: &str) -> String {
    let Some(open) = reply.find(['[', '{']) else {
        return reply.to_string();
    };
    if reply.len() < open + 2 {
        return reply.to_string();
    }
    let (prefix, body) = reply.split_at(open + 1);
    let (inner, close) = body.split_at(body.len() - 1);
    let mut items = split_top_level(inner);
    items.sort();
    format!("{prefix}{}{close}", items.join(", "))
}

/// The reply's type: its first character (`[`, `%`, `~`, `"`, `:`...), or the whole token for
/// the nulls, which all start with `(`.
fn kind(reply: &str) -> String {
    if reply.starts_with('(') && reply.ends_with(')') {
        return reply.to_string();
    }
    reply.chars().next().map(String::from).unwrap_or_default()
}

/// Reads every reply to one command (see the module comment) and joins their renderings.
fn read_replies(conn: &mut Conn, args: &[Vec<u8>]) -> String {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let confirmations = match name.as_str() {
        "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" => (args.len() - 1).max(1),
        _ => 0,
    };
    let mut replies = Vec::new();
    loop {
        let Some(r) = conn.read() else {
            replies.push("(closed)".to_string());
            break;
        };
        let push = r.starts_with('>');
        replies.push(r);
        let done = if confirmations > 0 { replies.len() >= confirmations } else { !push };
        if done {
            break;
        }
    }
    replies.join(" ")
}

#[test]
fn replies_match_real_redis() {
    if !require_or_skip(redis_server_available(), "redis-server") {
        return;
    }
    let ours = start_store(&[]);
    let theirs = start_redis();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let mut a = Conn::new(ours.port);
        let mut b = Conn::new(theirs.port);
        a.call(&["FLUSHALL"]);
        b.call(&["FLUSHALL"]);
        for (no, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (mode, cmd) = match line.as_bytes()[0] {
                b'@' | b'~' => (line.as_bytes()[0], &line[1..]),
                _ => (b'=', line),
            };
            let args = store::protocol::split_args(cmd.as_bytes()).expect("script line parses");
            a.send(&args);
            b.send(&args);
            let ra = read_replies(&mut a, &args);
            let rb = read_replies(&mut b, &args);
            compared += 1;
            let same = match mode {
                b'@' => normalise_unordered(&ra) == normalise_unordered(&rb),
                b'~' => kind(&ra) == kind(&rb),
                _ => ra == rb,
            };
            if !same {
                mismatches.push(format!(
                    "{}:{}: {}\n    store: {}\n    redis: {}",
                    f.file_name().unwrap().to_string_lossy(),
                    no + 1,
                    line,
                    ra,
                    rb
                ));
            }
        }
    }
    eprintln!("compared {compared} replies from {} scripts", files.len());
    assert!(mismatches.is_empty(), "{} replies differ from redis-server:\n{}", mismatches.len(), mismatches.join("\n"));
}
