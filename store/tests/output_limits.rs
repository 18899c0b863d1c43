//! Output buffer limits on the real binary: a pub/sub subscriber that stops reading is
//! disconnected once its queued messages pass `client-output-buffer-limit pubsub`, as in Redis,
//! even while the server is blocked writing to it. The server's memory stays bounded and the
//! publisher is unaffected.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_subscriber_that_stops_reading_is_disconnected_at_the_pubsub_limit() {
    let server = start_store(&[]);
    let mut admin = Conn::new(server.port);
    assert_eq!(admin.call(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 0 0"]), "+OK");
    // Only the pubsub class changed.
    let limits = admin.call(&["CONFIG", "GET", "client-output-buffer-limit"]);
    assert!(limits.contains("normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 0 0"), "{limits}");

    // A subscriber that never reads again.
    let mut sub = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    sub.write_all(b"SUBSCRIBE news\r\n").unwrap();
    let start = Instant::now();
    while admin.call(&["PUBSUB", "NUMSUB", "news"]) != "[\"news\", :1]" {
        assert!(start.elapsed() < Duration::from_secs(5), "subscription not registered");
        std::thread::sleep(Duration::from_millis(10));
    }

    // 20 MB of messages, far past what the socket buffers and the 1 MB limit hold.
    let mut publisher = Conn::new(server.port);
    let message = "x".repeat(10_000);
    for _ in 0..2_000 {
        let reply = publisher.call(&["PUBLISH", "news", &message]);
        assert!(reply == ":1" || reply == ":0", "PUBLISH answered {reply}");
    }
    let start = Instant::now();
    while admin.call(&["PUBSUB", "NUMSUB", "news"]) != "[\"news\", :0]" {
        assert!(start.elapsed() < Duration::from_secs(5), "the subscriber was never disconnected");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The publisher's connection is untouched.
    assert_eq!(publisher.call(&["PING"]), "+PONG");
    drop(sub);
}
