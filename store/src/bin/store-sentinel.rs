//! `store-sentinel`: the sentinel binary, `store-server` in sentinel mode (as `redis-sentinel`
//! is `redis-server` under another name). `store-sentinel sentinel.conf` is the same as
//! `store-server sentinel.conf --sentinel`.

#[path = "store-server.rs"]
#[allow(dead_code)]
mod server_main;

fn main() -> std::process::ExitCode {
    server_main::main_as(true)
}
