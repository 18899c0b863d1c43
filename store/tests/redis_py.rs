//! Runs the redis-py suite (`tests/python/test_redis_py.py`) against a real store-server
//! process. redis-py is installed by `ci/install-deps`; without it the test says it skipped
//! (and fails on CI, where it must be present).

mod common;

use std::process::Command;

use common::*;

fn redis_py_available() -> bool {
    Command::new("python3").args(["-c", "import redis"]).status().map(|s| s.success()).unwrap_or(false)
}

#[test]
fn redis_py_suite() {
    if !require_or_skip(redis_py_available(), "python3 with redis-py") {
        return;
    }
    let server = start_store(&[]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/test_redis_py.py");
    let out =
        Command::new("python3").arg(&script).env("STORE_PORT", server.port.to_string()).output().expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "redis-py suite failed:\n{stdout}");
}
