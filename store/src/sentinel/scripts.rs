//! The scripts a sentinel runs: `notification-script` (every WARNING event about a master or
//! its instances, as `<script> <event type> <event description>`) and `client-reconfig-script`
//! (when a failover moves a master, as `<script> <master-name> <role> <state> <from-ip>
//! <from-port> <to-ip> <to-port>`, role `leader` or `observer`, state `start`).
//!
//! Why it is shaped this way: the queue is state-machine state like everything else in the
//! sentinel, with Redis's limits and retry rule (sentinel.c, "script execution"): at most 256
//! jobs queued (the oldest waiting one is dropped), 16 running, a script that exits 1 or dies
//! by a signal retried up to 10 attempts in all with a delay doubling from 30 s, one running
//! longer than 60 s killed. This module only decides; the timer's I/O (`link.rs`) starts the
//! processes and reports how they ended, so the simulator can run the same decisions.

use std::collections::VecDeque;

/// Jobs kept (`SENTINEL_SCRIPT_MAX_QUEUE`).
pub const QUEUE_MAX: usize = 256;
/// Jobs running at once (`SENTINEL_SCRIPT_MAX_RUNNING`).
pub const RUNNING_MAX: usize = 16;
/// Attempts of one job (`SENTINEL_SCRIPT_MAX_RETRY`).
pub const ATTEMPTS_MAX: u32 = 10;
/// Arguments passed, the script's path included (`SENTINEL_SCRIPT_MAX_ARGS`).
pub const ARGS_MAX: usize = 16;

/// How a started script ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signaled(i32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: u64,
    pub argv: Vec<String>,
    pub running: bool,
    /// The process id while running (0 before the process layer reports it).
    pub pid: u32,
    /// When it started (running) or may start again (a retry); 0 for a first attempt.
    pub start_ms: i64,
    pub attempts: u32,
    /// A kill was asked for (it is asked once, then the exit is awaited).
    pub kill_sent: bool,
}

/// The queue (`sentinel.scripts_queue`), oldest first.
#[derive(Debug, Default)]
pub struct Scripts {
    pub jobs: VecDeque<Job>,
    next_id: u64,
}

impl Scripts {
    pub fn running(&self) -> usize {
        self.jobs.iter().filter(|j| j.running).count()
    }

    /// `sentinelScheduleScriptExecution`: queues `argv` (path first), dropping the oldest job
    /// not running when the queue is full.
    pub fn schedule(&mut self, mut argv: Vec<String>) {
        assert!(!argv.is_empty(), "a script job names its script");
        argv.truncate(ARGS_MAX);
        self.next_id = self.next_id.saturating_add(1);
        let job = Job { id: self.next_id, argv, running: false, pid: 0, start_ms: 0, attempts: 0, kill_sent: false };
        self.jobs.push_back(job);
        if self.jobs.len() > QUEUE_MAX {
            if let Some(i) = self.jobs.iter().position(|j| !j.running) {
                self.jobs.remove(i);
            }
        }
        debug_assert!(self.jobs.len() <= QUEUE_MAX.saturating_add(RUNNING_MAX));
    }

    /// `sentinelRunPendingScripts`: the jobs to start now (oldest first), marked running.
    pub fn start_due(&mut self, now_ms: i64) -> Vec<(u64, Vec<String>)> {
        let mut running = self.running();
        let mut start = Vec::new();
        for j in self.jobs.iter_mut() {
            if running >= RUNNING_MAX {
                break;
            }
            if j.running || (j.start_ms != 0 && j.start_ms > now_ms) {
                continue;
            }
            j.running = true;
            j.start_ms = now_ms;
            j.attempts = j.attempts.saturating_add(1);
            j.pid = 0;
            j.kill_sent = false;
            running = running.saturating_add(1);
            start.push((j.id, j.argv.clone()));
        }
        debug_assert!(self.running() <= RUNNING_MAX);
        start
    }

    /// The process of job `id` has this pid.
    pub fn on_started(&mut self, id: u64, pid: u32) {
        if let Some(j) = self.jobs.iter_mut().find(|j| j.id == id && j.running) {
            j.pid = pid;
        }
    }

    /// `sentinelCollectTerminatedScripts` for one job: retried after a signal or exit code 1
    /// while attempts remain, else removed. Returns the `-script-error` text when it ended
    /// badly for good.
    pub fn on_exit(&mut self, id: u64, outcome: Outcome, now_ms: i64, retry_delay_ms: i64) -> Option<String> {
        let i = self.jobs.iter().position(|j| j.id == id && j.running)?;
        let (signal, code) = match outcome {
            Outcome::Exited(c) => (0, c),
            Outcome::Signaled(s) => (s, 0),
        };
        let j = &mut self.jobs[i];
        if (signal != 0 || code == 1) && j.attempts < ATTEMPTS_MAX {
            j.running = false;
            j.pid = 0;
            j.start_ms = now_ms.saturating_add(retry_delay(retry_delay_ms, j.attempts));
            return None;
        }
        let error = (signal != 0 || code != 0).then(|| format!("{} {signal} {code}", j.argv[0]));
        self.jobs.remove(i);
        error
    }

    /// `sentinelKillTimedoutScripts`: running jobs past `max_runtime_ms`, with their pid and
    /// path, each reported once.
    pub fn timed_out(&mut self, now_ms: i64, max_runtime_ms: i64) -> Vec<(u64, u32, String)> {
        let mut kill = Vec::new();
        for j in self.jobs.iter_mut().filter(|j| j.running && !j.kill_sent && j.pid != 0) {
            if now_ms.saturating_sub(j.start_ms) > max_runtime_ms {
                j.kill_sent = true;
                kill.push((j.id, j.pid, j.argv[0].clone()));
            }
        }
        kill
    }
}

/// `sentinelScriptRetryDelay`: the base delay, doubled for every attempt after the first.
fn retry_delay(base_ms: i64, attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(40);
    base_ms.saturating_mul(1i64 << doublings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(n: usize) -> Vec<String> {
        vec![format!("/s{n}"), "+sdown".into(), "master m 1.2.3.4 6379".into()]
    }

    #[test]
    fn runs_at_most_sixteen_and_keeps_at_most_the_queue_limit() {
        let mut s = Scripts::default();
        for n in 0..300 {
            s.schedule(argv(n));
        }
        assert_eq!(s.jobs.len(), QUEUE_MAX);
        // The oldest were dropped.
        assert_eq!(s.jobs[0].argv[0], "/s44");
        let started = s.start_due(1000);
        assert_eq!(started.len(), RUNNING_MAX);
        assert!(s.start_due(1000).is_empty());
        // Scheduling past the limit never drops a running job.
        for n in 300..600 {
            s.schedule(argv(n));
        }
        assert_eq!(s.running(), RUNNING_MAX);
    }

    #[test]
    fn retries_exit_one_and_signals_with_doubling_delay_then_reports() {
        let mut s = Scripts::default();
        s.schedule(argv(1));
        let mut now = 0i64;
        for attempt in 1..=ATTEMPTS_MAX {
            let started = s.start_due(now);
            assert_eq!(started.len(), 1, "attempt {attempt}");
            let id = started[0].0;
            s.on_started(id, 42);
            let outcome = if attempt % 2 == 0 { Outcome::Signaled(9) } else { Outcome::Exited(1) };
            let err = s.on_exit(id, outcome, now, 30_000);
            if attempt < ATTEMPTS_MAX {
                assert_eq!(err, None);
                let due = s.jobs[0].start_ms;
                assert_eq!(due - now, 30_000 * (1 << (attempt - 1)));
                assert!(s.start_due(due - 1).is_empty(), "not before its delay");
                now = due;
            } else {
                assert_eq!(err.as_deref(), Some("/s1 9 0"));
                assert!(s.jobs.is_empty());
            }
        }
    }

    #[test]
    fn other_exit_codes_end_the_job_at_once() {
        let mut s = Scripts::default();
        s.schedule(argv(1));
        s.schedule(argv(2));
        let started = s.start_due(0);
        assert_eq!(s.on_exit(started[0].0, Outcome::Exited(0), 5, 30_000), None);
        assert_eq!(s.on_exit(started[1].0, Outcome::Exited(2), 5, 30_000).as_deref(), Some("/s2 0 2"));
        assert!(s.jobs.is_empty());
        // An unknown or finished job is ignored.
        assert_eq!(s.on_exit(started[1].0, Outcome::Exited(2), 5, 30_000), None);
    }

    #[test]
    fn a_script_past_its_runtime_is_killed_once() {
        let mut s = Scripts::default();
        s.schedule(argv(1));
        let id = s.start_due(0)[0].0;
        assert!(s.timed_out(61_000, 60_000).is_empty(), "no pid yet: nothing to kill");
        s.on_started(id, 7);
        assert!(s.timed_out(60_000, 60_000).is_empty());
        assert_eq!(s.timed_out(60_001, 60_000), vec![(id, 7, "/s1".to_string())]);
        assert!(s.timed_out(90_000, 60_000).is_empty());
    }
}
