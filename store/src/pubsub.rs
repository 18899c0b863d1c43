//! Pub/sub registry: which clients listen on which channels and patterns.
//!
//! Delivery goes through each subscriber's bounded push queue (see `server::PUSH_QUEUE_MAX`):
//! a subscriber that cannot keep up is disconnected, as Redis does when a pubsub client passes
//! its output buffer limit, so one slow reader cannot grow the server's memory without bound.
//! Ordered maps keep `PUBSUB CHANNELS` and delivery order deterministic.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};

use crate::glob::glob_match;
use crate::protocol::Reply;
use crate::server::ClientEntry;

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
    /// queue is full are asked to disconnect.
    pub fn publish(&self, clients: &BTreeMap<u64, ClientEntry>, channel: &[u8], message: &[u8]) -> usize {
        let mut receivers = 0;
        if let Some(ids) = self.channels.get(channel) {
            let mut frame = BytesMut::new();
            Reply::array_len(&mut frame, 3);
            Reply::bulk(&mut frame, b"message");
            Reply::bulk(&mut frame, channel);
            Reply::bulk(&mut frame, message);
            let frame = frame.freeze();
            for id in ids {
                if let Some(c) = clients.get(id) {
                    deliver(c, frame.clone());
                    receivers += 1;
                }
            }
        }
        for (pattern, ids) in &self.patterns {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            let mut frame = BytesMut::new();
            Reply::array_len(&mut frame, 4);
            Reply::bulk(&mut frame, b"pmessage");
            Reply::bulk(&mut frame, pattern);
            Reply::bulk(&mut frame, channel);
            Reply::bulk(&mut frame, message);
            let frame = frame.freeze();
            for id in ids {
                if let Some(c) = clients.get(id) {
                    deliver(c, frame.clone());
                    receivers += 1;
                }
            }
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

fn deliver(c: &ClientEntry, frame: Bytes) {
    if c.push.try_send(frame).is_err() {
        tracing::warn!(
            "Client id={} addr={} scheduled to be closed for overcoming of output buffer limits.",
            c.id,
            c.addr
        );
        c.request_kill();
    }
}
