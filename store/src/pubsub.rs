//! Pub/sub registry: which clients listen on which channels and patterns.
//!
//! Delivery goes through each subscriber's bounded push queue (see `server::PUSH_QUEUE_MAX`):
//! a subscriber that cannot keep up is disconnected, as Redis does when a pubsub client passes
//! its output buffer limit, so one slow reader cannot grow the server's memory without bound.
//! Ordered maps keep `PUBSUB CHANNELS` and delivery order deterministic.
//!
//! A message is encoded once per protocol, not once per subscriber: RESP2 subscribers get an
//! array, RESP3 subscribers a push frame, and a variant is built only if some subscriber speaks
//! its protocol (most channels have subscribers of one kind, so most messages are encoded once).

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};

use crate::glob::glob_match;
use crate::protocol::{Proto, Reply};
use crate::server::{ClientEntry, OutputLimit};

#[derive(Default)]
pub struct PubSub {
    pub channels: BTreeMap<Bytes, BTreeSet<u64>>,
    pub patterns: BTreeMap<Bytes, BTreeSet<u64>>,
}

impl PubSub {
    /// Returns whether the client was newly subscribed.
    pub fn subscribe(&mut self, client: u64, channel: &Bytes) -> bool {
        self.channels.entry(channel.clone()).or_default().insert(client)
    }

    pub fn unsubscribe(&mut self, client: u64, channel: &[u8]) -> bool {
        let Some(set) = self.channels.get_mut(channel) else {
            return false;
        };
        let removed = set.remove(&client);
        if set.is_empty() {
            self.channels.remove(channel);
        }
        removed
    }

    pub fn psubscribe(&mut self, client: u64, pattern: &Bytes) -> bool {
        self.patterns.entry(pattern.clone()).or_default().insert(client)
    }

    pub fn punsubscribe(&mut self, client: u64, pattern: &[u8]) -> bool {
        let Some(set) = self.patterns.get_mut(pattern) else {
            return false;
        };
        let removed = set.remove(&client);
        if set.is_empty() {
            self.patterns.remove(pattern);
        }
        removed
    }

    /// Delivers a message; returns the number of clients that received it. Subscribers whose
    /// queue is full are asked to disconnect. The publisher's own copy (a subscribed RESP3
    /// client may publish) goes straight into its output, ahead of the PUBLISH reply, as in
    /// Redis; it never goes through its queue, which the publisher only reads after its batch.
    pub fn publish(
        &self,
        clients: &BTreeMap<u64, ClientEntry>,
        channel: &[u8],
        message: &[u8],
        publisher: Publisher<'_>,
        limit: OutputLimit,
        now_ms: i64,
    ) -> usize {
        let mut receivers = 0usize;
        // Sends a message's frames to `ids`; returns how many received it.
        let mut deliver_all = |ids: &BTreeSet<u64>, frames: &mut Frames<'_>| -> usize {
            // Counted by the iterator: at most `ids.len()`.
            ids.iter()
                .filter(|&id| {
                    if *id == publisher.id {
                        publisher.out.extend_from_slice(&frames.get(publisher.proto));
                        true
                    } else if let Some(c) = clients.get(id) {
                        deliver(c, frames.get(c.proto), &limit, now_ms);
                        true
                    } else {
                        false
                    }
                })
                .count()
        };
        if let Some(ids) = self.channels.get(channel) {
            let encode = |out: &mut BytesMut, proto: Proto| {
                Reply::push_len(out, proto, 3);
                Reply::bulk(out, b"message");
                Reply::bulk(out, channel);
                Reply::bulk(out, message);
            };
            let mut frames = Frames::new(&encode);
            receivers = receivers.saturating_add(deliver_all(ids, &mut frames));
        }
        for (pattern, ids) in &self.patterns {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            let encode = |out: &mut BytesMut, proto: Proto| {
                Reply::push_len(out, proto, 4);
                Reply::bulk(out, b"pmessage");
                Reply::bulk(out, pattern);
                Reply::bulk(out, channel);
                Reply::bulk(out, message);
            };
            let mut frames = Frames::new(&encode);
            receivers = receivers.saturating_add(deliver_all(ids, &mut frames));
        }
        receivers
    }

    /// Removes every subscription of a disconnecting client.
    pub fn remove_client(&mut self, client: u64, channels: &BTreeSet<Bytes>, patterns: &BTreeSet<Bytes>) {
        for ch in channels {
            self.unsubscribe(client, ch);
        }
        for p in patterns {
            self.punsubscribe(client, p);
        }
    }
}

/// The client running PUBLISH: its id, its protocol and its output buffer.
pub struct Publisher<'a> {
    pub id: u64,
    pub proto: Proto,
    pub out: &'a mut BytesMut,
}

/// One message's frames, encoded lazily: at most once per protocol, and only for a protocol
/// some receiver speaks.
struct Frames<'a> {
    encode: &'a dyn Fn(&mut BytesMut, Proto),
    resp2: Option<Bytes>,
    resp3: Option<Bytes>,
}

impl<'a> Frames<'a> {
    fn new(encode: &'a dyn Fn(&mut BytesMut, Proto)) -> Frames<'a> {
        Frames { encode, resp2: None, resp3: None }
    }

    /// The frame for `proto` (a cheap reference-counted clone after the first call).
    fn get(&mut self, proto: Proto) -> Bytes {
        let encode = self.encode;
        let slot = match proto {
            Proto::Resp2 => &mut self.resp2,
            Proto::Resp3 => &mut self.resp3,
        };
        slot.get_or_insert_with(|| {
            let mut out = BytesMut::new();
            encode(&mut out, proto);
            out.freeze()
        })
        .clone()
    }
}

/// Redis's default `pubsub 32mb 8mb 60`.
pub const PUBSUB_OUTPUT_LIMIT_DEFAULT: OutputLimit =
    OutputLimit { hard_bytes: 32 << 20, soft_bytes: 8 << 20, soft_ms: 60_000 };

/// Queues a message for a subscriber, bounded in bytes by the pubsub output limit (and in
/// messages by the queue's capacity): a subscriber that does not read is disconnected.
fn deliver(c: &ClientEntry, frame: Bytes, limit: &OutputLimit, now_ms: i64) {
    if !c.push_bytes(frame, limit, now_ms) {
        tracing::warn!(
            "Client id={} addr={} scheduled to be closed for overcoming of output buffer limits.",
            c.id,
            c.addr
        );
        c.request_kill();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use tokio::sync::{mpsc, Notify};

    use super::*;

    fn entry(id: u64, proto: Proto) -> (ClientEntry, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(16);
        let c = ClientEntry {
            id,
            addr: String::new(),
            laddr: String::new(),
            name: None,
            db: 0,
            created_ms: 0,
            last_active_ms: 0,
            last_cmd: String::new(),
            sub: 0,
            psub: 0,
            multi: -1,
            proto,
            push: tx,
            kill: Arc::new(AtomicBool::new(false)),
            wake: Arc::new(Notify::new()),
            queued_bytes: Default::default(),
            soft_limit_since_ms: Default::default(),
        };
        (c, rx)
    }

    #[test]
    fn each_subscriber_gets_its_protocol_and_the_publisher_its_own_copy_inline() {
        let mut ps = PubSub::default();
        let mut clients = BTreeMap::new();
        let (c2, mut rx2) = entry(1, Proto::Resp2);
        let (c3, mut rx3) = entry(2, Proto::Resp3);
        let (me, mut rx_me) = entry(3, Proto::Resp3);
        for c in [c2, c3, me] {
            ps.subscribe(c.id, &Bytes::from_static(b"ch"));
            clients.insert(c.id, c);
        }
        ps.psubscribe(2, &Bytes::from_static(b"c*"));
        let mut out = BytesMut::new();
        let publisher = Publisher { id: 3, proto: Proto::Resp3, out: &mut out };
        let n = ps.publish(&clients, b"ch", b"hi", publisher, PUBSUB_OUTPUT_LIMIT_DEFAULT, 1);
        assert_eq!(n, 4);
        assert_eq!(&rx2.try_recv().unwrap()[..], b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        assert_eq!(&rx3.try_recv().unwrap()[..], b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        assert_eq!(&rx3.try_recv().unwrap()[..], b">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        assert!(rx_me.try_recv().is_err(), "the publisher's copy must not go through its queue");
        assert_eq!(&out[..], b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    }

    #[test]
    fn a_subscriber_that_does_not_read_is_disconnected_at_the_byte_limits() {
        let limit = OutputLimit { hard_bytes: 1000, soft_bytes: 300, soft_ms: 2_000 };
        let mut ps = PubSub::default();
        let mut clients = BTreeMap::new();
        let (c, _rx) = entry(1, Proto::Resp2);
        let kill = c.kill.clone();
        ps.subscribe(c.id, &Bytes::from_static(b"ch"));
        clients.insert(c.id, c);
        let mut out = BytesMut::new();
        let msg = [b'x'; 100]; // ~130 bytes per frame
        let mut publish = |now_ms: i64| {
            let publisher = Publisher { id: 9, proto: Proto::Resp2, out: &mut out };
            ps.publish(&clients, b"ch", &msg, publisher, limit, now_ms);
        };
        // Past the soft limit the timer starts; within its seconds the subscriber stays.
        for _ in 0..4 {
            publish(10_000);
        }
        publish(11_000);
        assert!(!kill.load(std::sync::atomic::Ordering::Acquire), "soft limit for under 2 s is tolerated");
        publish(12_500);
        assert!(kill.load(std::sync::atomic::Ordering::Acquire), "soft limit held for over 2 s disconnects");

        // The hard limit disconnects at once.
        let mut ps = PubSub::default();
        let mut clients = BTreeMap::new();
        let (c, _rx) = entry(2, Proto::Resp2);
        let kill = c.kill.clone();
        ps.subscribe(c.id, &Bytes::from_static(b"ch"));
        clients.insert(c.id, c);
        let hard_only = OutputLimit { hard_bytes: 1000, soft_bytes: 0, soft_ms: 0 };
        for i in 0..8 {
            assert!(!kill.load(std::sync::atomic::Ordering::Acquire), "killed after only {i} messages");
            let publisher = Publisher { id: 9, proto: Proto::Resp2, out: &mut out };
            ps.publish(&clients, b"ch", &msg, publisher, hard_only, 10_000);
        }
        assert!(kill.load(std::sync::atomic::Ordering::Acquire), "over 1000 bytes queued");
    }

    #[test]
    fn frames_are_encoded_once_per_protocol_and_only_when_needed() {
        let calls = Cell::new(0);
        let encode = |out: &mut BytesMut, proto: Proto| {
            calls.set(calls.get() + 1);
            Reply::push_len(out, proto, 0);
        };
        let mut frames = Frames::new(&encode);
        for _ in 0..3 {
            assert_eq!(&frames.get(Proto::Resp3)[..], b">0\r\n");
        }
        assert_eq!(calls.get(), 1);
        assert_eq!(&frames.get(Proto::Resp2)[..], b"*0\r\n");
        assert_eq!(&frames.get(Proto::Resp2)[..], b"*0\r\n");
        assert_eq!(calls.get(), 2);
    }
}
