//! Differential compatibility test: the same command scripts run against a real redis-server 7
//! and against store-server, and every reply must be identical (text, type and error message).
//!
//! Scripts live in `tests/compat/*.txt`, one command per line in redis-cli syntax. A line
//! starting with `@` compares the reply as an unordered collection (SMEMBERS, KEYS...); `~`
//! compares only the reply's type (TIME, INFO...). Each script starts on an empty dataset.

mod common;

use common::*;

fn normalise_unordered(reply: &str) -> String {
    // Top-level array items, sorted; items never contain ", " in our scripts.
    let inner = reply.trim_start_matches('[').trim_end_matches(']');
    let mut items: Vec<&str> = if inner.is_empty() { vec![] } else { inner.split(", ").collect() };
    items.sort();
    format!("[{}]", items.join(", "))
}

fn kind(reply: &str) -> char {
    reply.chars().next().unwrap_or(' ')
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
            let ra = a.read().unwrap_or_else(|| "(closed)".into());
            let rb = b.read().unwrap_or_else(|| "(closed)".into());
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
