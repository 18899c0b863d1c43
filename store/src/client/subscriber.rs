//! A connection in subscribe mode (mini-redis's `Subscriber`).
//!
//! Why a type of its own: once a connection has subscribed, what arrives on it is messages, not
//! replies, and (in RESP2) the only commands it may send are (UN)SUBSCRIBE, PING and QUIT. The
//! subscriber owns its [`Client`], so nothing can send an ordinary command on it and then read a
//! message as its reply. Messages come as RESP2 arrays or RESP3 pushes; both are read here. A
//! sentinel's hello channel and its event channels are read through this.

use std::io;

use bytes::Bytes;

use super::{Client, Resp};

/// One delivery on a subscribed connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// `message <channel> <payload>`.
    Message { channel: Bytes, payload: Bytes },
    /// `pmessage <pattern> <channel> <payload>`.
    PMessage { pattern: Bytes, channel: Bytes, payload: Bytes },
    /// A (un)subscribe confirmation or anything else pushed.
    Other(Resp),
}

pub struct Subscriber {
    client: Client,
}

impl Subscriber {
    pub fn new(client: Client) -> Subscriber {
        Subscriber { client }
    }

    /// SUBSCRIBE, reading the confirmation of each channel.
    pub async fn subscribe(&mut self, channels: &[&[u8]]) -> io::Result<()> {
        self.subscribe_with(b"SUBSCRIBE", channels).await
    }

    /// PSUBSCRIBE, reading the confirmation of each pattern.
    pub async fn psubscribe(&mut self, patterns: &[&[u8]]) -> io::Result<()> {
        self.subscribe_with(b"PSUBSCRIBE", patterns).await
    }

    async fn subscribe_with(&mut self, command: &[u8], names: &[&[u8]]) -> io::Result<()> {
        let mut args = vec![command];
        args.extend_from_slice(names);
        self.client.send(&args).await?;
        for _ in names {
            let reply = self.client.read_reply().await?;
            let kind = reply.items().and_then(|i| i.first()).and_then(|k| k.as_bytes()).map(|k| k.to_ascii_lowercase());
            if reply.is_error() || kind.as_deref() != Some(&command.to_ascii_lowercase()[..]) {
                return Err(io::Error::other(format!("subscribing answered {}", reply.render())));
            }
        }
        Ok(())
    }

    /// The next delivery, waiting at most the client's `io_timeout`.
    pub async fn next_message(&mut self) -> io::Result<Message> {
        let reply = self.client.read_reply().await?;
        Ok(Message::from_reply(reply))
    }

    /// The connection back, e.g. to close it.
    pub fn into_client(self) -> Client {
        self.client
    }
}

impl Message {
    fn from_reply(reply: Resp) -> Message {
        let bytes = |r: &Resp| r.as_bytes().map(Bytes::copy_from_slice);
        let parsed = match reply.items() {
            Some([kind, channel, payload]) if kind.as_bytes() == Some(b"message") => {
                bytes(channel).zip(bytes(payload)).map(|(channel, payload)| Message::Message { channel, payload })
            }
            Some([kind, pattern, channel, payload]) if kind.as_bytes() == Some(b"pmessage") => {
                match (bytes(pattern), bytes(channel), bytes(payload)) {
                    (Some(pattern), Some(channel), Some(payload)) => {
                        Some(Message::PMessage { pattern, channel, payload })
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        parsed.unwrap_or(Message::Other(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Resp {
        Resp::Bulk(Some(Bytes::copy_from_slice(s.as_bytes())))
    }

    #[test]
    fn messages_in_both_protocols() {
        let m = Message::from_reply(Resp::Array(Some(vec![bulk("message"), bulk("ch"), bulk("hi")])));
        assert_eq!(m, Message::Message { channel: Bytes::from_static(b"ch"), payload: Bytes::from_static(b"hi") });
        let p = Message::from_reply(Resp::Push(vec![bulk("pmessage"), bulk("*"), bulk("ch"), bulk("hi")]));
        assert!(matches!(p, Message::PMessage { .. }));
        let other = Message::from_reply(Resp::Push(vec![bulk("subscribe"), bulk("ch"), Resp::Int(1)]));
        assert!(matches!(other, Message::Other(_)));
    }
}
