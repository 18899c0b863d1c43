//! INFO as typed values.
//!
//! Why: a sentinel decides failovers from INFO replication (role, the replicas a master lists
//! and their offsets, a replica's link status, priority and offset), and the simulator and the
//! tests read the same fields. Parsed here once, with the fields Redis 7 writes, instead of
//! `role:` being split by hand wherever it is needed. [`ReplicationInfo::render`] writes the
//! section in Redis's format; the property test parses what it renders.

use std::fmt::Write as _;

/// The fields of an INFO reply, in order, each with its section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Info {
    fields: Vec<(String, String, String)>,
}

/// Limits on what is kept from one INFO reply (a peer may be hostile).
pub const INFO_FIELDS_MAX: usize = 4096;

impl Info {
    /// Parses INFO's text: `# Section` headers and `name:value` lines; anything else is skipped.
    pub fn parse(text: &str) -> Info {
        let mut section = String::new();
        let mut fields = Vec::new();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(name) = line.strip_prefix("# ") {
                section = name.trim().to_ascii_lowercase();
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if fields.len() < INFO_FIELDS_MAX {
                fields.push((section.clone(), name.to_string(), value.to_string()));
            }
        }
        Info { fields }
    }

    /// A field's value (the first with that name, in any section).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(_, n, _)| n == name).map(|(_, _, v)| v.as_str())
    }

    pub fn get_i64(&self, name: &str) -> Option<i64> {
        self.get(name)?.parse().ok()
    }

    /// The fields of one section (lower-case name, as in `INFO replication`).
    pub fn section(&self, section: &str) -> impl Iterator<Item = (&str, &str)> {
        let section = section.to_ascii_lowercase();
        self.fields.iter().filter(move |(s, _, _)| *s == section).map(|(_, n, v)| (n.as_str(), v.as_str()))
    }

    /// The server's run ID (`INFO server`), which a sentinel watches for restarts.
    pub fn run_id(&self) -> Option<&str> {
        self.get("run_id")
    }

    /// The replication section, typed.
    pub fn replication(&self) -> Result<ReplicationInfo, String> {
        ReplicationInfo::from_info(self)
    }
}

/// INFO replication: what a master or a replica says about its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationInfo {
    pub role: InfoRole,
    pub connected_replicas: i64,
    pub replicas: Vec<ReplicaLine>,
    pub master_replid: String,
    pub master_repl_offset: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InfoRole {
    Master,
    /// A replica and what it knows of its link.
    Replica(ReplicaSide),
}

/// The replica-only fields a sentinel reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaSide {
    pub master_host: String,
    pub master_port: u16,
    pub link_up: bool,
    /// `master_link_down_since_seconds`, present while the link is down.
    pub link_down_since_seconds: Option<i64>,
    pub sync_in_progress: bool,
    pub repl_offset: i64,
    pub priority: i64,
    pub read_only: bool,
    pub announced: bool,
}

/// One `slaveN:ip=...,port=...,state=...,offset=...,lag=...` line of a master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaLine {
    pub ip: String,
    pub port: u16,
    pub state: String,
    pub offset: i64,
    pub lag: i64,
}

impl ReplicaLine {
    fn parse(value: &str) -> Result<ReplicaLine, String> {
        let mut line = ReplicaLine { ip: String::new(), port: 0, state: String::new(), offset: 0, lag: 0 };
        for part in value.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("bad replica field '{part}'"))?;
            let num = || v.parse::<i64>().map_err(|_| format!("bad number in '{part}'"));
            match k {
                "ip" => line.ip = v.to_string(),
                "port" => line.port = v.parse().map_err(|_| format!("bad port in '{part}'"))?,
                "state" => line.state = v.to_string(),
                "offset" => line.offset = num()?,
                "lag" => line.lag = num()?,
                _ => {} // fields a later Redis may add
            }
        }
        if line.ip.is_empty() || line.state.is_empty() {
            return Err(format!("replica line without ip or state: '{value}'"));
        }
        Ok(line)
    }
}

impl ReplicationInfo {
    fn from_info(info: &Info) -> Result<ReplicationInfo, String> {
        let need = |name: &str| info.get(name).ok_or_else(|| format!("INFO replication lacks {name}"));
        let need_i64 = |name: &str| need(name)?.parse::<i64>().map_err(|_| format!("{name} is not a number"));
        let role = match need("role")? {
            "master" => InfoRole::Master,
            "slave" => InfoRole::Replica(ReplicaSide {
                master_host: need("master_host")?.to_string(),
                master_port: need("master_port")?.parse().map_err(|_| "master_port is not a port".to_string())?,
                link_up: need("master_link_status")? == "up",
                link_down_since_seconds: info.get_i64("master_link_down_since_seconds"),
                sync_in_progress: need("master_sync_in_progress")? == "1",
                repl_offset: need_i64("slave_repl_offset")?,
                priority: need_i64("slave_priority")?,
                read_only: need("slave_read_only")? == "1",
                announced: info.get("replica_announced").is_none_or(|v| v == "1"),
            }),
            other => return Err(format!("unknown role '{other}'")),
        };
        let mut replicas = Vec::new();
        for (name, value) in info.section("replication") {
            let is_replica_line =
                name.strip_prefix("slave").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if is_replica_line {
                replicas.push(ReplicaLine::parse(value)?);
            }
        }
        Ok(ReplicationInfo {
            role,
            connected_replicas: need_i64("connected_slaves")?,
            replicas,
            master_replid: need("master_replid")?.to_string(),
            master_repl_offset: need_i64("master_repl_offset")?,
        })
    }

    /// The section as Redis 7 writes it (the fields this type holds, in Redis's order).
    pub fn render(&self) -> String {
        let mut o = String::from("# Replication\r\n");
        match &self.role {
            InfoRole::Master => o.push_str("role:master\r\n"),
            InfoRole::Replica(r) => {
                let _ = write!(
                    o,
                    "role:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:-1\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
                    r.master_host,
                    r.master_port,
                    if r.link_up { "up" } else { "down" },
                    u8::from(r.sync_in_progress),
                    r.repl_offset,
                    r.repl_offset,
                );
                if let Some(s) = r.link_down_since_seconds {
                    let _ = write!(o, "master_link_down_since_seconds:{s}\r\n");
                }
                let _ = write!(
                    o,
                    "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n",
                    r.priority,
                    u8::from(r.read_only),
                    u8::from(r.announced)
                );
            }
        }
        let _ = write!(o, "connected_slaves:{}\r\n", self.connected_replicas);
        for (i, l) in self.replicas.iter().enumerate() {
            let _ = write!(
                o,
                "slave{i}:ip={},port={},state={},offset={},lag={}\r\n",
                l.ip, l.port, l.state, l.offset, l.lag
            );
        }
        let _ = write!(
            o,
            "master_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:-1\r\n",
            self.master_replid, self.master_repl_offset
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_redis_7_replica_output() {
        let text = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7603\r\nmaster_link_status:up\r\nmaster_last_io_seconds_ago:1\r\nmaster_sync_in_progress:0\r\nslave_read_repl_offset:14\r\nslave_repl_offset:14\r\nslave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:5c9068391dfcf31cdb452713c815c95373a52ea0\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:14\r\nsecond_repl_offset:-1\r\n";
        let r = Info::parse(text).replication().unwrap();
        let InfoRole::Replica(side) = &r.role else { panic!("{r:?}") };
        assert_eq!((side.master_port, side.link_up, side.repl_offset, side.priority), (7603, true, 14, 100));
        assert_eq!(r.master_repl_offset, 14);
    }

    #[test]
    fn parses_a_masters_replica_lines() {
        let text = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=127.0.0.1,port=7602,state=online,offset=14,lag=0\r\nslave1:ip=::1,port=7603,state=wait_bgsave,offset=0,lag=0\r\nmaster_failover_state:no-failover\r\nmaster_replid:ab\r\nmaster_repl_offset:14\r\n";
        let r = Info::parse(text).replication().unwrap();
        assert_eq!(r.role, InfoRole::Master);
        assert_eq!(r.replicas.len(), 2);
        assert_eq!(r.replicas[1].state, "wait_bgsave");
        assert!(Info::parse("role:king\r\n").replication().is_err());
        assert!(Info::parse("# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:port=1\r\nmaster_replid:a\r\nmaster_repl_offset:0\r\n")
            .replication()
            .is_err());
    }

    fn arb_replication() -> impl Strategy<Value = ReplicationInfo> {
        let line = ("[0-9a-f.:]{1,15}", any::<u16>(), "[a-z_]{1,12}", any::<i64>(), any::<i64>())
            .prop_map(|(ip, port, state, offset, lag)| ReplicaLine { ip, port, state, offset, lag });
        let side = (
            "[a-z0-9.-]{1,20}",
            any::<u16>(),
            any::<bool>(),
            proptest::option::of(0i64..1_000_000),
            any::<bool>(),
            any::<i64>(),
            0i64..1000,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(h, p, up, down, sync, off, prio, ro, ann)| ReplicaSide {
                master_host: h,
                master_port: p,
                link_up: up,
                link_down_since_seconds: down,
                sync_in_progress: sync,
                repl_offset: off,
                priority: prio,
                read_only: ro,
                announced: ann,
            });
        let role = prop_oneof![Just(InfoRole::Master), side.prop_map(InfoRole::Replica)];
        (role, proptest::collection::vec(line, 0..4), "[0-9a-f]{40}", any::<i64>()).prop_map(
            |(role, replicas, replid, offset)| ReplicationInfo {
                role,
                connected_replicas: replicas.len() as i64,
                replicas,
                master_replid: replid,
                master_repl_offset: offset,
            },
        )
    }

    proptest! {
        #[test]
        fn render_then_parse_is_identity(r in arb_replication()) {
            prop_assert_eq!(Info::parse(&r.render()).replication().unwrap(), r);
        }
    }
}
