//! ROLE as a typed value: the three shapes Redis 7 answers (master, replica, sentinel), as
//! redis-py's and redis-rs's sentinel support read them (a client checks ROLE before trusting an
//! address a sentinel gave it). [`RoleReply::to_resp`] builds the reply a server sends; the
//! property test parses what it encodes.

use bytes::Bytes;

use super::Resp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleReply {
    /// `["master", offset, [[ip, port, offset], ...]]` (the replicas' fields are bulk strings).
    Master { offset: i64, replicas: Vec<RoleReplica> },
    /// `["slave", host, port, state, offset]`; state is `connect`, `connecting`, `sync`,
    /// `connected` or `handshake`.
    Replica { host: String, port: i64, state: String, offset: i64 },
    /// `["sentinel", [master names]]`.
    Sentinel { masters: Vec<String> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleReplica {
    pub ip: String,
    pub port: i64,
    pub offset: i64,
}

fn text(r: &Resp, what: &str) -> Result<String, String> {
    r.as_text().ok_or_else(|| format!("ROLE: {what} is not a string: {}", r.render()))
}

fn int(r: &Resp, what: &str) -> Result<i64, String> {
    match r {
        Resp::Int(i) => Ok(*i),
        other => other
            .as_text()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| format!("ROLE: {what} is not an integer: {}", other.render())),
    }
}

impl RoleReply {
    pub fn parse(reply: &Resp) -> Result<RoleReply, String> {
        let items = reply.items().ok_or_else(|| format!("ROLE answered {}", reply.render()))?;
        let kind = items.first().map(|k| text(k, "role")).transpose()?.unwrap_or_default();
        match (kind.as_str(), items) {
            ("master", [_, offset, replicas]) => {
                let list = replicas.items().ok_or_else(|| "ROLE: master without its replica list".to_string())?;
                let replicas = list
                    .iter()
                    .map(|r| match r.items() {
                        Some([ip, port, offset]) => Ok(RoleReplica {
                            ip: text(ip, "replica ip")?,
                            port: int(port, "replica port")?,
                            offset: int(offset, "replica offset")?,
                        }),
                        _ => Err(format!("ROLE: bad replica entry {}", r.render())),
                    })
                    .collect::<Result<_, _>>()?;
                Ok(RoleReply::Master { offset: int(offset, "offset")?, replicas })
            }
            ("slave", [_, host, port, state, offset]) => Ok(RoleReply::Replica {
                host: text(host, "master host")?,
                port: int(port, "master port")?,
                state: text(state, "link state")?,
                offset: int(offset, "offset")?,
            }),
            ("sentinel", [_, masters]) => {
                let list = masters.items().ok_or_else(|| "ROLE: sentinel without its masters".to_string())?;
                Ok(RoleReply::Sentinel {
                    masters: list.iter().map(|m| text(m, "master name")).collect::<Result<_, _>>()?,
                })
            }
            _ => Err(format!("ROLE answered {}", reply.render())),
        }
    }

    /// The replication offset a master or replica reports (None for a sentinel).
    pub fn offset(&self) -> Option<i64> {
        match self {
            RoleReply::Master { offset, .. } | RoleReply::Replica { offset, .. } => Some(*offset),
            RoleReply::Sentinel { .. } => None,
        }
    }

    /// The reply as Redis sends it (RESP2 shapes).
    pub fn to_resp(&self) -> Resp {
        let bulk = |s: &str| Resp::Bulk(Some(Bytes::copy_from_slice(s.as_bytes())));
        match self {
            RoleReply::Master { offset, replicas } => Resp::Array(Some(vec![
                bulk("master"),
                Resp::Int(*offset),
                Resp::Array(Some(
                    replicas
                        .iter()
                        .map(|r| {
                            Resp::Array(Some(vec![bulk(&r.ip), bulk(&r.port.to_string()), bulk(&r.offset.to_string())]))
                        })
                        .collect(),
                )),
            ])),
            RoleReply::Replica { host, port, state, offset } => {
                Resp::Array(Some(vec![bulk("slave"), bulk(host), Resp::Int(*port), bulk(state), Resp::Int(*offset)]))
            }
            RoleReply::Sentinel { masters } => {
                Resp::Array(Some(vec![bulk("sentinel"), Resp::Array(Some(masters.iter().map(|m| bulk(m)).collect()))]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use proptest::prelude::*;

    use super::*;

    fn arb_role() -> impl Strategy<Value = RoleReply> {
        let replica = ("[0-9a-f.:]{1,15}", any::<i64>(), any::<i64>()).prop_map(|(ip, port, offset)| RoleReplica {
            ip,
            port,
            offset,
        });
        prop_oneof![
            (any::<i64>(), proptest::collection::vec(replica, 0..4))
                .prop_map(|(offset, replicas)| RoleReply::Master { offset, replicas }),
            ("[a-z0-9.-]{1,20}", any::<i64>(), "[a-z]{1,10}", any::<i64>())
                .prop_map(|(host, port, state, offset)| RoleReply::Replica { host, port, state, offset }),
            proptest::collection::vec("[a-z0-9-]{1,12}", 0..4).prop_map(|masters| RoleReply::Sentinel { masters }),
        ]
    }

    proptest! {
        #[test]
        fn encode_then_parse_is_identity(role in arb_role()) {
            let mut wire = BytesMut::new();
            role.to_resp().encode(&mut wire);
            let reply = crate::client::parse_reply(&mut wire).unwrap().unwrap();
            prop_assert_eq!(RoleReply::parse(&reply).unwrap(), role);
        }
    }

    #[test]
    fn rejects_other_shapes() {
        assert!(RoleReply::parse(&Resp::Int(1)).is_err());
        assert!(RoleReply::parse(&Resp::Array(Some(vec![Resp::Simple("master".into())]))).is_err());
    }
}
