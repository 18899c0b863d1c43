//! The sentinel's I/O: its timer, and two connections per watched instance.
//!
//! Why it is shaped this way:
//! - The state machine ([`super::Sentinel`]) lives in the server's `State`, under its one lock,
//!   like every command's data: SENTINEL commands, a peer's vote request and the timer all see
//!   one consistent state. This module never decides anything; it carries out the queued
//!   [`Action`]s and feeds replies back through the `on_*` handlers, each under the lock.
//! - Each connection is a task that owns its socket (madsim's cannot be split) and waits with a
//!   `biased` select on its command queue and the socket. The command link pipelines what it
//!   is given and matches replies in order; the pub/sub link owns a [`Subscriber`]. Under madsim
//!   a partition stalls a connection forever, so no wait here decides anything by itself:
//!   reads wait as long as the state machine wants, and it closes a link that is too quiet
//!   (Redis's link recycling) by queueing [`Action::Close`].
//! - The timer ticks every 50 to 100 ms, the period drawn from the node's seeded RNG (Redis
//!   varies `hz` from 10 to 19 so that sentinels started together do not ask for votes in
//!   lockstep). A reply that queued actions wakes it early, so a promotion or a vote does not
//!   wait for the next tick.
//! - After a change of state the configuration file is rewritten through the disk seam and
//!   synced, outside the lock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Action, InstanceId, LinkSpec, ReplyKind, HELLO_CHANNEL};
use crate::client::subscriber::{Message, Subscriber};
use crate::client::Client;
use crate::server::Shared;

/// How long a connection attempt may take, and the pause before the next one (Redis retries a
/// link at most once per ping period).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
const RECONNECT_PAUSE: Duration = Duration::from_millis(1000);
/// Replies wait this long at most; the state machine closes quiet links much sooner.
const READ_TIMEOUT: Duration = Duration::from_secs(3600);
/// Commands queued on one link before new ones are dropped (the state machine stops queueing
/// periodic commands at 100 pending; this bounds everything else).
const LINK_QUEUE_MAX: usize = 1024;
/// Replies awaited on one command link before it is closed and reopened.
const REPLIES_PENDING_MAX: usize = 10_000;

enum LinkOp {
    Send(Vec<(Vec<String>, ReplyKind)>),
    Close,
}

struct LinkHandle {
    spec: LinkSpec,
    cmd: mpsc::Sender<LinkOp>,
    pubsub: Option<mpsc::Sender<LinkOp>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for LinkHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the sentinel's timer (which starts the links). Returns its task.
pub fn spawn(shared: Arc<Shared>) -> JoinHandle<()> {
    tokio::spawn(timer(shared))
}

async fn timer(shared: Arc<Shared>) {
    let wake = shared.lock().sentinel_wake.clone();
    let mut links: BTreeMap<InstanceId, LinkHandle> = BTreeMap::new();
    let mut next_tick = tokio::time::Instant::now();
    // The instance set the links were last reconciled with: specs are only rebuilt when it
    // changed (every tick would allocate one per instance, with 50 masters a visible cost).
    let mut links_version: Option<(u64, usize)> = None;
    // Running scripts' kill switches, by job.
    let mut script_kills: BTreeMap<u64, oneshot::Sender<()>> = BTreeMap::new();
    loop {
        let due = tokio::time::Instant::now() >= next_tick;
        let (actions, specs, flush) = {
            let mut st = shared.lock();
            let now_ms = shared.env.clock.now_ms();
            st.now_ms = now_ms;
            let Some(s) = st.sentinel.as_mut() else { return };
            if due {
                s.tick(now_ms);
            }
            let actions = std::mem::take(&mut s.g.actions);
            let flush = std::mem::take(&mut s.g.flush_config);
            let version = s.links_version();
            let specs = (links_version != Some(version)).then(|| s.link_specs());
            links_version = Some(version);
            publish_events(&mut st, now_ms);
            (actions, specs, flush)
        };
        // The state reaches the disk before anything that depends on it leaves (a vote counted
        // for itself, an epoch): a sentinel that crashes and restarts never forgets a vote.
        if flush {
            flush_config(&shared).await;
        }
        if let Some(specs) = specs {
            reconcile(&shared, &mut links, specs);
        }
        route(&shared, &links, &mut script_kills, actions);
        if due {
            let period_ms = 50u64.saturating_add(shared.env.rng.below(51));
            next_tick = crate::client::deadline_after(Duration::from_millis(period_ms));
        }
        tokio::select! {
            biased;
            _ = wake.notified() => {}
            _ = tokio::time::sleep_until(next_tick) => {}
        }
    }
}

/// Logs each queued event and publishes it on its channel, as `sentinelEvent` does.
fn publish_events(st: &mut crate::server::State, now_ms: i64) {
    let Some(s) = st.sentinel.as_mut() else { return };
    let events = std::mem::take(&mut s.g.events);
    s.schedule_notifications(&events);
    for e in events {
        match e.level {
            super::Level::Fact => {
                if let Some(obs) = &st.observer {
                    obs.sentinel_event(&e.kind, &e.text);
                }
                continue;
            }
            super::Level::Warning => tracing::warn!("{} {}", e.kind, e.text),
            super::Level::Notice => tracing::info!("{} {}", e.kind, e.text),
            super::Level::Verbose => tracing::debug!("{} {}", e.kind, e.text),
        }
        if let Some(obs) = &st.observer {
            obs.sentinel_event(&e.kind, &e.text);
        }
        let mut sink = bytes::BytesMut::new();
        let publisher = crate::pubsub::Publisher { id: 0, proto: crate::protocol::Proto::Resp2, out: &mut sink };
        let limit = st.config.hot.pubsub_output_limit;
        st.pubsub.publish(&st.clients, e.kind.as_bytes(), e.text.as_bytes(), publisher, limit, now_ms);
    }
}

/// The file and text of a config rewrite with the sentinel's state, if it has a file.
fn config_text(st: &crate::server::State) -> Option<(std::path::PathBuf, String)> {
    let s = st.sentinel.as_ref()?;
    let path = st.config_file.clone()?;
    let lines = super::config::rewrite_lines(s);
    Some((std::path::PathBuf::from(path), st.config.rewrite_with(Some(&lines))))
}

/// `sentinelFlushConfig`: the state as it is now, written atomically and synced, one writer
/// at a time (see `Shared::config_writes`); a failure is logged, as in Redis. False without a
/// config file.
pub async fn flush_config(shared: &Shared) -> bool {
    let _writing = shared.config_writes.lock().await;
    let Some((path, text)) = ({
        let mut st = shared.lock();
        if let Some(s) = st.sentinel.as_mut() {
            // Whatever was pending is in this text.
            s.g.flush_config = false;
        }
        config_text(&st)
    }) else {
        return false;
    };
    match shared.env.disk.write_atomic(&path, text.as_bytes()).await {
        Ok(()) => {
            tracing::info!("Sentinel new configuration saved on disk");
            if let Some(obs) = shared.lock().observer.clone() {
                obs.sentinel_event("~config-saved", &text);
            }
            true
        }
        Err(e) => {
            tracing::warn!("WARNING: Sentinel was not able to save the new configuration on disk!!!: {e}");
            false
        }
    }
}

/// Opens links for new instances (or a new generation), closes those no longer wanted.
fn reconcile(shared: &Arc<Shared>, links: &mut BTreeMap<InstanceId, LinkHandle>, specs: Vec<LinkSpec>) {
    let wanted: BTreeMap<InstanceId, LinkSpec> = specs.into_iter().map(|s| (s.id.clone(), s)).collect();
    links.retain(|id, h| wanted.get(id).is_some_and(|s| *s == h.spec));
    for (id, spec) in wanted {
        if links.contains_key(&id) {
            continue;
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(LINK_QUEUE_MAX);
        let mut tasks = vec![tokio::spawn(cmd_link(shared.clone(), spec.clone(), cmd_rx))];
        let pubsub = spec.pubsub.then(|| {
            let (tx, rx) = mpsc::channel(LINK_QUEUE_MAX);
            tasks.push(tokio::spawn(pubsub_link(shared.clone(), spec.clone(), rx)));
            tx
        });
        links.insert(id, LinkHandle { spec, cmd: cmd_tx, pubsub, tasks });
    }
}

fn route(
    shared: &Arc<Shared>,
    links: &BTreeMap<InstanceId, LinkHandle>,
    script_kills: &mut BTreeMap<u64, oneshot::Sender<()>>,
    actions: Vec<Action>,
) {
    // A finished script's task dropped its receiver.
    script_kills.retain(|_, tx| !tx.is_closed());
    for a in actions {
        match a {
            Action::RunScript { job, argv } => {
                let (tx, rx) = oneshot::channel();
                script_kills.insert(job, tx);
                tokio::spawn(run_script(shared.clone(), job, argv, rx));
            }
            Action::KillScript { job, .. } => {
                if let Some(tx) = script_kills.remove(&job) {
                    let _ = tx.send(());
                }
            }
            Action::Send { to, generation, commands } => {
                if let Some(h) = links.get(&to).filter(|h| h.spec.generation == generation) {
                    let _ = h.cmd.try_send(LinkOp::Send(commands));
                }
            }
            Action::Close { to, generation, pubsub } => {
                let Some(h) = links.get(&to).filter(|h| h.spec.generation == generation) else { continue };
                let tx = if pubsub { h.pubsub.as_ref() } else { Some(&h.cmd) };
                if let Some(tx) = tx {
                    let _ = tx.try_send(LinkOp::Close);
                }
            }
        }
    }
}

/// Connects, authenticates and names the connection (`<client_name>-cmd|pubsub`). AUTH and
/// SETNAME replies are not judged, as Redis does not: a refused AUTH shows as PING errors.
async fn open(spec: &LinkSpec, role: &str) -> std::io::Result<Client> {
    let addr = spec.addr.name();
    let mut c = Client::connect(&addr, CONNECT_TIMEOUT).await?;
    if let Some((user, pass)) = &spec.auth {
        let mut args: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(u) = user {
            args.push(u.as_bytes());
        }
        args.push(pass.as_bytes());
        c.call(&args).await?;
    }
    let name = format!("{}-{role}", spec.client_name);
    c.call(&[b"CLIENT", b"SETNAME", name.as_bytes()]).await?;
    c.io_timeout = READ_TIMEOUT;
    Ok(c)
}

/// Reports under the lock; wakes the timer if the handler queued actions.
fn report(shared: &Shared, f: impl FnOnce(&mut super::Sentinel, i64)) {
    let mut st = shared.lock();
    let now_ms = shared.env.clock.now_ms();
    let wake = st.sentinel_wake.clone();
    let Some(s) = st.sentinel.as_mut() else { return };
    f(s, now_ms);
    if !s.g.actions.is_empty() || !s.g.events.is_empty() {
        wake.notify_one();
    }
}

async fn cmd_link(shared: Arc<Shared>, spec: LinkSpec, mut rx: mpsc::Receiver<LinkOp>) {
    let (id, generation) = (spec.id.clone(), spec.generation);
    let mut attempt = tokio::time::Instant::now();
    loop {
        report(&shared, |s, now| s.on_link_connecting(&id, generation, false, now));
        let mut client = match open(&spec, "cmd").await {
            Ok(c) => c,
            Err(_) => {
                report(&shared, |s, _| s.on_link_down(&id, generation, false));
                if !pause_draining(&mut rx, &mut attempt).await {
                    return;
                }
                continue;
            }
        };
        let local_ip = client.local_ip().unwrap_or_else(|| "127.0.0.1".into());
        report(&shared, |s, now| s.on_link_up(&id, generation, false, &local_ip, now));
        let closed_by_owner = serve_cmd(&shared, &spec, &mut client, &mut rx).await;
        report(&shared, |s, _| s.on_link_down(&id, generation, false));
        if closed_by_owner {
            return;
        }
        if !pause_draining(&mut rx, &mut attempt).await {
            return;
        }
    }
}

/// Runs one connection until it fails or is closed. True when the owner dropped the link.
async fn serve_cmd(shared: &Shared, spec: &LinkSpec, client: &mut Client, rx: &mut mpsc::Receiver<LinkOp>) -> bool {
    let mut expected: std::collections::VecDeque<ReplyKind> = std::collections::VecDeque::new();
    loop {
        tokio::select! {
            biased;
            op = rx.recv() => match op {
                None => return true,
                Some(LinkOp::Close) => return false,
                Some(LinkOp::Send(commands)) => {
                    // A peer that stopped answering: vote requests and transactions are not
                    // capped by the state machine (Redis relies on link recycling), so cap them
                    // here and start over.
                    if expected.len().saturating_add(commands.len()) > REPLIES_PENDING_MAX {
                        return false;
                    }
                    let mut out = bytes::BytesMut::new();
                    for (args, kind) in &commands {
                        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
                        crate::protocol::encode_command(&mut out, &refs);
                        expected.push_back(*kind);
                    }
                    if client.send_raw(&out).await.is_err() {
                        return false;
                    }
                }
            },
            // Read even when nothing is expected, so a closed connection is seen at once (as
            // hiredis does), not at the next command: the reconnection's PING then starts the
            // down-after clock. A reply nobody asked for is a broken peer: reconnect.
            reply = client.read_reply() => {
                let Ok(reply) = reply else { return false };
                let Some(kind) = expected.pop_front() else { return false };
                report(shared, |s, now| s.on_reply(&spec.id, spec.generation, kind, &reply, now));
            }
        }
    }
}

/// Waits until a reconnection may start: at once if the last attempt began at least
/// [`RECONNECT_PAUSE`] ago, as Redis reconnects at its next timer tick but at most once a ping
/// period. Drops what is queued meanwhile (a disconnected link sends nothing). False when the
/// owner dropped the link. `attempt` becomes the new attempt's start.
async fn pause_draining(rx: &mut mpsc::Receiver<LinkOp>, attempt: &mut tokio::time::Instant) -> bool {
    let until = attempt.checked_add(RECONNECT_PAUSE).unwrap_or(*attempt);
    loop {
        tokio::select! {
            biased;
            op = rx.recv() => if op.is_none() { return false },
            _ = tokio::time::sleep_until(until) => break,
        }
    }
    *attempt = tokio::time::Instant::now();
    true
}

async fn pubsub_link(shared: Arc<Shared>, spec: LinkSpec, mut rx: mpsc::Receiver<LinkOp>) {
    let (id, generation) = (spec.id.clone(), spec.generation);
    let mut attempt = tokio::time::Instant::now();
    loop {
        report(&shared, |s, now| s.on_link_connecting(&id, generation, true, now));
        let sub = match open(&spec, "pubsub").await {
            Ok(c) => {
                let mut sub = Subscriber::new(c);
                sub.subscribe(&[HELLO_CHANNEL.as_bytes()]).await.map(|_| sub)
            }
            Err(e) => Err(e),
        };
        let Ok(mut sub) = sub else {
            report(&shared, |s, _| s.on_link_down(&id, generation, true));
            if !pause_draining(&mut rx, &mut attempt).await {
                return;
            }
            continue;
        };
        report(&shared, |s, now| s.on_link_up(&id, generation, true, "", now));
        let owner_gone = loop {
            tokio::select! {
                biased;
                op = rx.recv() => match op {
                    None => break true,
                    Some(LinkOp::Close) => break false,
                    Some(LinkOp::Send(_)) => {}
                },
                m = sub.next_message() => match m {
                    Ok(Message::Message { channel, payload }) => {
                        let (channel, payload) = (String::from_utf8_lossy(&channel).into_owned(), String::from_utf8_lossy(&payload).into_owned());
                        report(&shared, |s, now| s.on_pubsub_message(&id, generation, &channel, &payload, now));
                    }
                    Ok(_) => {}
                    Err(_) => break false,
                },
            }
        };
        report(&shared, |s, _| s.on_link_down(&id, generation, true));
        if owner_gone || !pause_draining(&mut rx, &mut attempt).await {
            return;
        }
    }
}

/// Runs one script job to its end and reports how it ended; `kill` asks for SIGKILL (the
/// exit is then reported as that signal). A script that cannot be started reports exit code
/// 2, as Redis's forked child does when `execve` fails (not retried).
#[cfg(not(madsim))]
async fn run_script(shared: Arc<Shared>, job: u64, argv: Vec<String>, mut kill: oneshot::Receiver<()>) {
    use super::scripts::Outcome;
    use std::os::unix::process::ExitStatusExt;
    let spawned = tokio::process::Command::new(&argv[0]).args(&argv[1..]).stdin(std::process::Stdio::null()).spawn();
    let outcome = match spawned {
        Ok(mut child) => {
            let pid = child.id().unwrap_or(0);
            report(&shared, |s, _| s.on_script_started(job, pid));
            let status = tokio::select! {
                biased;
                status = child.wait() => status,
                _ = &mut kill => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            match status {
                Ok(status) => match status.signal() {
                    Some(sig) => Outcome::Signaled(sig),
                    None => Outcome::Exited(status.code().unwrap_or(2)),
                },
                Err(_) => Outcome::Exited(2),
            }
        }
        Err(e) => {
            tracing::warn!("Sentinel could not run script {}: {e}", argv[0]);
            Outcome::Exited(2)
        }
    };
    report(&shared, |s, now| s.on_script_exit(job, outcome, now));
}

/// Under the simulator no process runs: the script is recorded (for the checkers) and ends at
/// once with exit code 0.
#[cfg(madsim)]
async fn run_script(shared: Arc<Shared>, job: u64, argv: Vec<String>, _kill: oneshot::Receiver<()>) {
    if let Some(obs) = shared.lock().observer.clone() {
        obs.sentinel_event("~script", &argv.join(" "));
    }
    report(&shared, |s, _| s.on_script_started(job, 1));
    report(&shared, |s, now| s.on_script_exit(job, super::scripts::Outcome::Exited(0), now));
}
