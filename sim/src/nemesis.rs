//! The nemesis: faults drawn per seed, injected while workloads run, healed for the liveness
//! phase.
//!
//! Swarm testing: each seed first draws a [`Swarm`], which fault kinds are on and how often they
//! strike, so that across seeds every combination is tried, including "only partitions" and
//! "nothing at all" (the rare interleavings a busy mix of faults would mask).
//!
//! Fault kinds: kill and restart (the node's unsynced disk writes are lost), pause and resume,
//! partitions (symmetric split, majority/minority, one node isolated, one-way link, and the same
//! among servers only, which cuts replication while clients still reach every server), clogged
//! node, latency ranges, packet loss (which madsim's TCP turns into retransmission delay), disk
//! faults through the disk seam (fsync errors, a full disk), clock jumps and clock drift (a rate
//! per node) through the clock seam, and buggify fault points in server code.
//!
//! Latency and loss are network-wide settings in madsim; each such fault keeps its own value, and
//! healing one restores the worst of those still active (not the default), so overlapping
//! faults do not cancel each other early.
//!
//! Every fault applied and healed goes into the trace, so replays show the same schedule.

use std::time::Duration;

use madsim::net::NetSim;
use madsim::task::NodeId;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::cluster::Cluster;

/// madsim's default one-way latency range, restored when faults heal.
const DEFAULT_LATENCY: std::ops::Range<Duration> = Duration::from_millis(1)..Duration::from_millis(10);
/// Active faults at once, at most.
pub const ACTIVE_FAULTS_MAX: usize = 4;

#[derive(Clone, Debug, Default)]
pub struct Swarm {
    pub kill: bool,
    pub pause: bool,
    pub partition: bool,
    pub clog: bool,
    pub latency: bool,
    pub loss: bool,
    pub clock: bool,
    pub disk: bool,
    pub buggify: bool,
    /// Time between fault injections.
    pub interval_ms: (u64, u64),
    /// How long a fault lasts before it heals.
    pub duration_ms: (u64, u64),
}

impl Swarm {
    /// Draws which faults are on for this seed; one seed in ten runs with none at all.
    pub fn draw(rng: &mut ChaCha8Rng, allow_kill: bool) -> Swarm {
        if rng.gen_bool(0.1) {
            return Swarm { interval_ms: (1000, 1000), duration_ms: (100, 100), ..Swarm::default() };
        }
        let fast = rng.gen_bool(0.5);
        Swarm {
            kill: allow_kill && rng.gen_bool(0.5),
            pause: rng.gen_bool(0.5),
            partition: rng.gen_bool(0.5),
            clog: rng.gen_bool(0.4),
            latency: rng.gen_bool(0.5),
            loss: rng.gen_bool(0.3),
            clock: rng.gen_bool(0.4),
            disk: rng.gen_bool(0.3),
            buggify: rng.gen_bool(0.5),
            interval_ms: if fast { (50, 400) } else { (300, 2000) },
            duration_ms: if fast { (50, 800) } else { (200, 3000) },
        }
    }

    pub fn describe(&self) -> String {
        let kinds: Vec<&str> = [
            (self.kill, "kill"),
            (self.pause, "pause"),
            (self.partition, "partition"),
            (self.clog, "clog"),
            (self.latency, "latency"),
            (self.loss, "loss"),
            (self.clock, "clock"),
            (self.disk, "disk"),
            (self.buggify, "buggify"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        if kinds.is_empty() {
            "no faults".into()
        } else {
            format!(
                "{} every {}-{} ms for {}-{} ms",
                kinds.join("+"),
                self.interval_ms.0,
                self.interval_ms.1,
                self.duration_ms.0,
                self.duration_ms.1
            )
        }
    }

    fn kinds(&self) -> Vec<Kind> {
        let mut v = Vec::new();
        if self.kill {
            v.push(Kind::Kill);
        }
        if self.pause {
            v.push(Kind::Pause);
        }
        if self.partition {
            v.push(Kind::Partition);
        }
        if self.clog {
            v.push(Kind::Clog);
        }
        if self.latency {
            v.push(Kind::Latency);
        }
        if self.loss {
            v.push(Kind::Loss);
        }
        if self.clock {
            v.push(Kind::Clock);
            v.push(Kind::Drift);
        }
        if self.disk {
            v.push(Kind::Disk);
        }
        v
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Kill,
    Pause,
    Partition,
    Clog,
    Latency,
    Loss,
    Clock,
    Drift,
    Disk,
}

/// A fault in force, and how to undo it.
#[derive(Debug)]
enum Active {
    Killed(usize),
    Paused(usize),
    Links(Vec<(NodeId, NodeId)>),
    Clogged(NodeId),
    /// The upper bound of one-way latency this fault set, in ms.
    Latency(u64),
    /// The packet loss rate this fault set.
    Loss(f64),
    Drifting(usize),
    DiskFsync(usize),
    DiskFull(usize),
}

pub struct Nemesis {
    swarm: Swarm,
    rng: ChaCha8Rng,
    active: Vec<(Active, madsim::time::Instant)>,
    /// Simulated times (ns since cluster start) at which a server was killed, per server.
    pub kills_ns: Vec<(usize, u128)>,
}

impl Nemesis {
    pub fn new(swarm: Swarm, rng: ChaCha8Rng) -> Nemesis {
        Nemesis { swarm, rng, active: Vec::new(), kills_ns: Vec::new() }
    }

    /// Injects faults until `run_for` has passed, then heals everything (the liveness phase).
    pub async fn run(&mut self, cluster: &Cluster, run_for: Duration) {
        let kinds = self.swarm.kinds();
        let end = madsim::time::Instant::now() + run_for;
        while madsim::time::Instant::now() < end {
            let wait = self.rng.gen_range(self.swarm.interval_ms.0..=self.swarm.interval_ms.1);
            madsim::time::sleep(Duration::from_millis(wait)).await;
            self.heal_due(cluster, false);
            if kinds.is_empty() || self.active.len() >= ACTIVE_FAULTS_MAX {
                continue;
            }
            let kind = *kinds.choose(&mut self.rng).expect("non-empty");
            self.inject(cluster, kind);
        }
        self.heal_due(cluster, true);
    }

    fn heal_at(&mut self) -> madsim::time::Instant {
        let d = self.rng.gen_range(self.swarm.duration_ms.0..=self.swarm.duration_ms.1);
        madsim::time::Instant::now() + Duration::from_millis(d)
    }

    fn all_nodes(cluster: &Cluster) -> Vec<(String, NodeId)> {
        Self::servers(cluster).into_iter().chain(cluster.clients.iter().cloned()).collect()
    }

    fn servers(cluster: &Cluster) -> Vec<(String, NodeId)> {
        cluster.servers.iter().map(|s| (s.name.clone(), s.node.id())).collect()
    }

    /// The network settings the still-active latency and loss faults ask for (the worst of each),
    /// or madsim's defaults when none is left.
    fn restore_network(&self) {
        let latency_hi =
            self.active.iter().filter_map(|(a, _)| if let Active::Latency(hi) = a { Some(*hi) } else { None }).max();
        let loss = self
            .active
            .iter()
            .filter_map(|(a, _)| if let Active::Loss(r) = a { Some(*r) } else { None })
            .fold(0.0, f64::max);
        NetSim::current().update_config(|c| {
            c.send_latency = match latency_hi {
                Some(hi) => Duration::from_millis(1)..Duration::from_millis(hi),
                None => DEFAULT_LATENCY,
            };
            c.packet_loss_rate = loss;
        });
    }

    fn inject(&mut self, cluster: &Cluster, kind: Kind) {
        let net = NetSim::current();
        let n_servers = cluster.servers.len();
        let server = self.rng.gen_range(0..n_servers);
        let busy = |a: &Active| matches!(a, Active::Killed(i) | Active::Paused(i) if *i == server);
        let fault = match kind {
            Kind::Kill if !self.active.iter().any(|(a, _)| busy(a)) => {
                let s = &cluster.servers[server];
                cluster.handle.kill(s.node.id());
                // Power loss: the durable namespace survives; data written since the last fsync
                // is lost, kept, or torn, as the crash falls.
                let loss = match self.rng.gen_range(0..3) {
                    0 => store::env::CrashLoss::DropUnsynced,
                    1 => store::env::CrashLoss::KeepUnsynced,
                    _ => store::env::CrashLoss::Torn(self.rng.gen_range(0..1000)),
                };
                s.disk.power_fail_with(loss);
                s.observed
                    .lock()
                    .expect("observed")
                    .log
                    .push_back(crate::cluster::LogEntry::Crash { at_ns: cluster.now_ns() });
                self.kills_ns.push((server, cluster.now_ns()));
                store::fault::probe("fault.kill");
                cluster.record(format!("nemesis: kill {} (disk: {loss:?})", s.name));
                Active::Killed(server)
            }
            Kind::Pause if !self.active.iter().any(|(a, _)| busy(a)) => {
                let s = &cluster.servers[server];
                cluster.handle.pause(s.node.id());
                s.observed
                    .lock()
                    .expect("observed")
                    .log
                    .push_back(crate::cluster::LogEntry::Paused { paused: true, at_ns: cluster.now_ns() });
                store::fault::probe("fault.pause");
                cluster.record(format!("nemesis: pause {}", s.name));
                Active::Paused(server)
            }
            Kind::Partition => {
                // Half of the partitions are among servers only: replication links are cut
                // while every client still reaches every server.
                let servers_only = n_servers > 1 && self.rng.gen_bool(0.5);
                let mut nodes = if servers_only { Self::servers(cluster) } else { Self::all_nodes(cluster) };
                if servers_only {
                    store::fault::probe("fault.partition.servers_only");
                }
                nodes.shuffle(&mut self.rng);
                let links: Vec<(NodeId, NodeId)>;
                let what;
                match self.rng.gen_range(0..3) {
                    0 => {
                        // Symmetric split (a majority/minority when sizes differ).
                        let cut = self.rng.gen_range(1..nodes.len().max(2));
                        let (a, b) = nodes.split_at(cut.min(nodes.len()));
                        links = a.iter().flat_map(|x| b.iter().flat_map(move |y| [(x.1, y.1), (y.1, x.1)])).collect();
                        what = format!(
                            "partition {{{}}} | {{{}}}",
                            a.iter().map(|n| n.0.as_str()).collect::<Vec<_>>().join(","),
                            b.iter().map(|n| n.0.as_str()).collect::<Vec<_>>().join(",")
                        );
                        store::fault::probe("fault.partition.split");
                    }
                    1 => {
                        // One node isolated from everyone.
                        let (x, rest) = nodes.split_first().expect("nodes");
                        links = rest.iter().flat_map(|y| [(x.1, y.1), (y.1, x.1)]).collect();
                        what = format!("isolate {}", x.0);
                        store::fault::probe("fault.partition.isolate");
                    }
                    _ => {
                        // One-way: src can no longer reach dst, dst still reaches src.
                        let (src, dst) = (&nodes[0], &nodes[1 % nodes.len()]);
                        links = vec![(src.1, dst.1)];
                        what = format!("one-way {} -/-> {}", src.0, dst.0);
                        store::fault::probe("fault.partition.one_way");
                    }
                }
                for (a, b) in &links {
                    net.clog_link(*a, *b);
                }
                cluster.record(format!("nemesis: {what}"));
                Active::Links(links)
            }
            Kind::Clog => {
                let nodes = Self::all_nodes(cluster);
                let (name, id) = nodes.choose(&mut self.rng).expect("nodes").clone();
                net.clog_node(id);
                store::fault::probe("fault.clog");
                cluster.record(format!("nemesis: clog {name}"));
                Active::Clogged(id)
            }
            Kind::Latency => {
                let hi = self.rng.gen_range(20..500);
                let at = self.heal_at();
                self.active.push((Active::Latency(hi), at));
                self.restore_network();
                store::fault::probe("fault.latency");
                cluster.record(format!("nemesis: latency 1-{hi} ms"));
                return;
            }
            Kind::Loss => {
                let rate = self.rng.gen_range(0.01..0.3);
                let at = self.heal_at();
                self.active.push((Active::Loss(rate), at));
                self.restore_network();
                store::fault::probe("fault.loss");
                cluster.record(format!("nemesis: packet loss {rate:.2}"));
                return;
            }
            Kind::Drift if !self.active.iter().any(|(a, _)| matches!(a, Active::Drifting(i) if *i == server)) => {
                // A rate error: this node's clock runs fast or slow by up to 5% until healed.
                let ppm = self.rng.gen_range(-50_000i64..=50_000);
                let s = &cluster.servers[server];
                s.clock.set_drift_ppm(ppm);
                store::fault::probe("fault.clock_drift");
                cluster.record(format!("nemesis: clock of {} drifts {ppm} ppm", s.name));
                Active::Drifting(server)
            }
            Kind::Clock => {
                // Jumps either way; a backward jump is what NTP corrections and VM migrations do.
                let delta = self.rng.gen_range(-30_000i64..30_000);
                let s = &cluster.servers[server];
                s.clock.jump_ms(delta);
                s.observed
                    .lock()
                    .expect("observed")
                    .log
                    .push_back(crate::cluster::LogEntry::ClockJump { ms: delta, at_ns: cluster.now_ns() });
                store::fault::probe("fault.clock_jump");
                cluster.record(format!(
                    "nemesis: clock of {} jumps {delta} ms (skew now {} ms)",
                    s.name,
                    s.clock.skew_ms()
                ));
                return; // Clock skew persists until the liveness phase resets it.
            }
            Kind::Disk => {
                let s = &cluster.servers[server];
                if self.rng.gen_bool(0.5) {
                    s.disk.set_fail_fsync(true);
                    store::fault::probe("fault.disk.fsync_error");
                    cluster.record(format!("nemesis: fsync fails on {}", s.name));
                    Active::DiskFsync(server)
                } else {
                    s.disk.set_capacity(0);
                    store::fault::probe("fault.disk.full");
                    cluster.record(format!("nemesis: disk full on {}", s.name));
                    Active::DiskFull(server)
                }
            }
            _ => return,
        };
        let at = self.heal_at();
        self.active.push((fault, at));
    }

    /// Heals faults whose time has come (all of them when `all`).
    fn heal_due(&mut self, cluster: &Cluster, all: bool) {
        let now = madsim::time::Instant::now();
        let net = NetSim::current();
        let mut keep = Vec::new();
        for (fault, at) in std::mem::take(&mut self.active) {
            if !all && at > now {
                keep.push((fault, at));
                continue;
            }
            match fault {
                Active::Killed(i) => {
                    let s = &cluster.servers[i];
                    cluster.handle.restart(s.node.id());
                    s.observed.lock().expect("observed").log.push_back(crate::cluster::LogEntry::Restart);
                    store::fault::probe("fault.restart");
                    cluster.record(format!("nemesis: restart {}", s.name));
                }
                Active::Paused(i) => {
                    let s = &cluster.servers[i];
                    cluster.handle.resume(s.node.id());
                    s.observed
                        .lock()
                        .expect("observed")
                        .log
                        .push_back(crate::cluster::LogEntry::Paused { paused: false, at_ns: cluster.now_ns() });
                    cluster.record(format!("nemesis: resume {}", s.name));
                }
                Active::Links(links) => {
                    for (a, b) in links {
                        net.unclog_link(a, b);
                    }
                    cluster.record("nemesis: partition healed".into());
                }
                Active::Clogged(id) => {
                    net.unclog_node(id);
                    cluster.record("nemesis: unclog".into());
                }
                Active::Latency(hi) => cluster.record(format!("nemesis: latency 1-{hi} ms healed")),
                Active::Loss(rate) => cluster.record(format!("nemesis: packet loss {rate:.2} healed")),
                Active::Drifting(i) => {
                    // The rate is right again; the error it accumulated stays (as skew).
                    cluster.servers[i].clock.set_drift_ppm(0);
                    cluster
                        .record(format!("nemesis: clock of {} runs at the right rate again", cluster.servers[i].name));
                }
                Active::DiskFsync(i) => {
                    cluster.servers[i].disk.set_fail_fsync(false);
                    cluster.record(format!("nemesis: fsync works again on {}", cluster.servers[i].name));
                }
                Active::DiskFull(i) => {
                    cluster.servers[i].disk.set_capacity(crate::cluster::DISK_BYTES);
                    cluster.record(format!("nemesis: disk space back on {}", cluster.servers[i].name));
                }
            }
        }
        self.active = keep;
        self.restore_network();
        if all {
            for s in &cluster.servers {
                s.clock.set_drift_ppm(0);
                if s.clock.skew_ms() != 0 {
                    let delta = -s.clock.skew_ms();
                    s.clock.jump_ms(delta);
                    s.observed
                        .lock()
                        .expect("observed")
                        .log
                        .push_back(crate::cluster::LogEntry::ClockJump { ms: delta, at_ns: cluster.now_ns() });
                    cluster.record(format!("nemesis: clock of {} back in sync", s.name));
                }
            }
        }
    }
}
