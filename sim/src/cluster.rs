//! Simulated clusters: server nodes on fixed IPs, each with its own disk and clock.
//!
//! A server node's disk ([`SimDisk`]) and clock live *outside* the node, so they survive a
//! kill/restart the way a machine's disk and clock do; its seeded RNG does too, so a restarted
//! server draws a new run ID, as a restarted Redis would. Servers bind 0.0.0.0 with protected
//! mode off, as in a container deployment; clients run on their own nodes.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use madsim::runtime::{Handle, NodeHandle};
use store::client::Client;
use store::config::Config;
use store::env::{Clock, Env, SimDisk};
use store::server::Server;

use crate::trace::Trace;

pub const SERVER_PORT: u16 = 6379;
pub const SENTINEL_PORT: u16 = 26379;
/// Simulated disk size per node.
pub const DISK_BYTES: u64 = 1 << 30;

/// Observations kept per node (oldest dropped first).
pub const OBSERVATIONS_MAX: usize = 100_000;

/// What a server node reported through the observation sink.
#[derive(Default)]
pub struct Observed {
    pub log: std::collections::VecDeque<LogEntry>,
    pub dropped: u64,
    /// The dataset digest after the latest observed change.
    pub last_digest: Option<store::db::digest::Digest>,
    /// Start-ups that failed (the server refused to start), with the reason.
    pub startup_failures: Vec<String>,
}

/// One entry of a node's log: what the server reported, or what the nemesis did to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEntry {
    Server(store::observe::Observation),
    /// The nemesis killed the node here (power failure), at `at_ns`.
    Crash {
        at_ns: u128,
    },
    /// The nemesis restarted the node here.
    Restart,
    /// The nemesis moved the node's clock by `ms` here, at `at_ns` of simulated time.
    ClockJump {
        ms: i64,
        at_ns: u128,
    },
    /// The nemesis paused (true) or resumed (false) the node here, at `at_ns`.
    Paused {
        paused: bool,
        at_ns: u128,
    },
}

pub struct ServerNode {
    pub observed: Arc<std::sync::Mutex<Observed>>,
    pub name: String,
    pub ip: IpAddr,
    pub addr: String,
    pub node: NodeHandle,
    pub disk: Arc<SimDisk>,
    pub clock: Clock,
}

pub struct Cluster {
    pub handle: Handle,
    pub servers: Vec<ServerNode>,
    /// Client nodes (ids), for partitions between clients and servers.
    pub clients: Vec<(String, madsim::task::NodeId)>,
    pub trace: Trace,
    start: madsim::time::Instant,
    clients_made: u8,
}

/// Every node is killed when the cluster goes away (however the scenario ended). madsim does not
/// free a task still pending when its runtime is dropped (its task metadata holds the task's
/// own waker), so each seed's server and connection tasks, with their buffers, used to stay in
/// memory: about 1 MB a seed. Killing a node drops its tasks' futures; the runner then lets the
/// executor run once more so that it does.
impl Drop for Cluster {
    fn drop(&mut self) {
        for s in &self.servers {
            self.handle.kill(s.node.id());
        }
        for (_, id) in &self.clients {
            self.handle.kill(*id);
        }
    }
}

impl Cluster {
    pub fn new(trace: Trace) -> Cluster {
        Cluster {
            handle: Handle::current(),
            servers: Vec::new(),
            clients: Vec::new(),
            trace,
            start: madsim::time::Instant::now(),
            clients_made: 0,
        }
    }

    /// The instant all recorded times count from.
    pub fn start(&self) -> madsim::time::Instant {
        self.start
    }

    /// Simulated nanoseconds since the cluster was created.
    pub fn now_ns(&self) -> u128 {
        self.start.elapsed().as_nanos()
    }

    pub fn record(&self, event: String) {
        self.trace.record(self.now_ns(), event);
    }

    /// Adds a server node running `config_text` (plus the simulation's bind/port settings).
    pub fn add_server(&mut self, config_text: &str, seed: u64) -> usize {
        self.add_server_inner(config_text, seed, false)
    }

    /// The same, started from a config file on the node's own disk (`/redis.conf`), as the
    /// tutorial runs servers: CONFIG REWRITE (which a sentinel sends after every SLAVEOF)
    /// writes it, and a restarted node starts from what it holds.
    pub fn add_server_with_config_file(&mut self, config_text: &str, seed: u64) -> usize {
        self.add_server_inner(config_text, seed, true)
    }

    fn add_server_inner(&mut self, config_text: &str, seed: u64, config_file: bool) -> usize {
        let index = self.servers.len();
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, index as u8 + 1));
        let name = format!("server-{}", index + 1);
        let disk = Arc::new(SimDisk::new(DISK_BYTES));
        let clock = Clock::new();
        let mut env = Env::simulated(
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(index as u64),
            disk.clone(),
            clock.clone(),
        );
        let observed = Arc::new(std::sync::Mutex::new(Observed::default()));
        let sink = observed.clone();
        let (trace, lane, start) = (self.trace.clone(), name.clone(), self.start);
        let observed_for_init = observed.clone();
        // Every write is verified against a full digest recomputation: datasets are small here.
        env.observer = Some(store::observe::Observer::new(
            move |o| {
                trace.observe(start.elapsed().as_nanos(), &lane, &o);
                let mut s = sink.lock().expect("observed");
                match &o {
                    store::observe::Observation::Write { digest, .. }
                    | store::observe::Observation::Expired { digest, .. }
                    | store::observe::Observation::Loaded { digest, .. } => s.last_digest = Some(*digest),
                    store::observe::Observation::ReplApplied { digest, .. } => s.last_digest = Some(*digest),
                    store::observe::Observation::SaveStarted { .. }
                    | store::observe::Observation::Saved { .. }
                    | store::observe::Observation::ReplOffset { .. }
                    | store::observe::Observation::ReplAcked { .. }
                    | store::observe::Observation::WriteGate { .. }
                    | store::observe::Observation::PsyncServed { .. }
                    | store::observe::Observation::AckReceived { .. }
                    | store::observe::Observation::WaitReplied { .. }
                    | store::observe::Observation::SentinelEvent { .. } => {}
                }
                if s.log.len() == OBSERVATIONS_MAX {
                    s.log.pop_front();
                    s.dropped += 1;
                }
                s.log.push_back(LogEntry::Server(o));
            },
            true,
        ));
        let text =
            format!("port {SERVER_PORT}\nbind 0.0.0.0\nprotected-mode no\nenable-debug-command yes\n{config_text}");
        let config = Config::parse(&text, &name).expect("simulation config is valid");
        let path = std::path::PathBuf::from("/redis.conf");
        if config_file {
            disk.write(&path, text.as_bytes()).expect("simulated disk");
            disk.fsync(&path).expect("simulated disk");
            disk.fsync_dir().expect("simulated disk");
        }
        let node_disk = disk.clone();
        let node = self
            .handle
            .create_node()
            .name(name.clone())
            .ip(ip)
            .init(move || {
                let mut config = config.clone();
                let env = env.clone();
                let failures = observed_for_init.clone();
                let (disk, path) = (node_disk.clone(), path.clone());
                async move {
                    if config_file {
                        // A config file that is gone is a refused start-up, as for redis-server.
                        let text = match disk.read(&path) {
                            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                            Err(e) => {
                                failures.lock().expect("observed").startup_failures.push(format!("/redis.conf: {e}"));
                                return;
                            }
                        };
                        match Config::parse(&text, "/redis.conf") {
                            Ok(mut c) => {
                                c.file = Some(path.display().to_string());
                                config = c;
                            }
                            Err(e) => {
                                failures.lock().expect("observed").startup_failures.push(e.to_string());
                                return;
                            }
                        }
                    }
                    match Server::bind(config, env).await {
                        Ok(server) => {
                            server.run().await;
                        }
                        // A refused start-up (a corrupt dump.rdb) is an outcome checkers judge,
                        // not a simulator crash: record it and leave the node down.
                        Err(e) => failures.lock().expect("observed").startup_failures.push(e.to_string()),
                    }
                }
            })
            .build();
        self.record(format!("{name} started at {ip}"));
        self.servers.push(ServerNode { observed, name, ip, addr: format!("{ip}:{SERVER_PORT}"), node, disk, clock });
        index
    }

    /// Adds a sentinel node (`store-server --sentinel`) whose config file starts as
    /// `config_text` and lives on the node's own disk: a restarted sentinel reloads the state it
    /// rewrote there (myid, epochs, known instances), as a real one reloads sentinel.conf.
    pub fn add_sentinel(&mut self, config_text: &str, seed: u64) -> usize {
        let index = self.servers.len();
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, index as u8 + 1));
        let name = format!("sentinel-{}", index + 1);
        let disk = Arc::new(SimDisk::new(DISK_BYTES));
        let clock = Clock::new();
        let mut env = Env::simulated(
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(index as u64),
            disk.clone(),
            clock.clone(),
        );
        let observed = Arc::new(std::sync::Mutex::new(Observed::default()));
        let sink = observed.clone();
        let (trace, lane, start) = (self.trace.clone(), name.clone(), self.start);
        env.observer = Some(store::observe::Observer::new(
            move |o| {
                trace.observe(start.elapsed().as_nanos(), &lane, &o);
                let mut s = sink.lock().expect("observed");
                if s.log.len() == OBSERVATIONS_MAX {
                    s.log.pop_front();
                    s.dropped += 1;
                }
                s.log.push_back(LogEntry::Server(o));
            },
            false,
        ));
        let path = std::path::PathBuf::from("/sentinel.conf");
        let initial = format!(
            "port {SENTINEL_PORT}
bind 0.0.0.0
{config_text}"
        );
        disk.write(&path, initial.as_bytes()).expect("simulated disk");
        disk.fsync(&path).expect("simulated disk");
        disk.fsync_dir().expect("simulated disk");
        let (failures, node_disk) = (observed.clone(), disk.clone());
        let node = self
            .handle
            .create_node()
            .name(name.clone())
            .ip(ip)
            .init(move || {
                let (env, failures, disk, path) = (env.clone(), failures.clone(), node_disk.clone(), path.clone());
                async move {
                    let text = match disk.read(&path) {
                        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                        Err(e) => {
                            failures.lock().expect("observed").startup_failures.push(format!("/sentinel.conf: {e}"));
                            return;
                        }
                    };
                    let mut config = Config::sentinel_defaults();
                    let loaded = config
                        .load_file_text(&text, "/sentinel.conf", &store::config::NoFiles)
                        .map_err(|e| e.to_string());
                    config.file = Some(path.display().to_string());
                    let bound = match loaded {
                        Ok(()) => Server::bind(config, env).await.map_err(|e| e.to_string()),
                        Err(e) => Err(e),
                    };
                    match bound {
                        Ok(server) => {
                            server.run().await;
                        }
                        Err(e) => failures.lock().expect("observed").startup_failures.push(e),
                    }
                }
            })
            .build();
        self.record(format!("{name} started at {ip}"));
        let addr = format!("{ip}:{SENTINEL_PORT}");
        self.servers.push(ServerNode { observed, name, ip, addr, node, disk, clock });
        index
    }

    /// A node for running client tasks.
    pub fn client_node(&mut self, name: &str) -> NodeHandle {
        self.clients_made += 1;
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 1, self.clients_made));
        let node = self.handle.create_node().name(name.to_string()).ip(ip).build();
        self.clients.push((name.to_string(), node.id()));
        node
    }

    /// Connects to a server, retrying until it accepts or `deadline` passes.
    pub async fn connect(addr: &str, io_timeout: Duration, deadline: Duration) -> Result<Client, String> {
        let start = madsim::time::Instant::now();
        loop {
            match Client::connect(addr, io_timeout).await {
                Ok(c) => return Ok(c),
                Err(e) if start.elapsed() > deadline => return Err(format!("connect {addr}: {e}")),
                Err(_) => madsim::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}
