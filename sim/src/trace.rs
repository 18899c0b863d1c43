//! The trace of a simulated run and its hash.
//!
//! Every event a run observes (operation invoked, reply received, fault injected, node state)
//! is recorded with its simulated time. The hash of the whole sequence is printed at the end of
//! each run: the same seed with the same binary must print the same hash, and the sweep re-runs
//! a sample of seeds to check exactly that. Because events carry times and replies, the check
//! sees divergence that madsim's own RNG-draw check cannot (a different reply, a reordering).
//! The last [`TRACE_TAIL_MAX`] events are kept in memory for the failure timeline.

#![allow(deprecated)] // SipHasher with fixed keys: stable across processes, which is the point.

use std::collections::VecDeque;
use std::hash::{Hasher, SipHasher};
use std::sync::{Arc, Mutex};

/// Events kept for the timeline of a failing run.
pub const TRACE_TAIL_MAX: usize = 4096;

#[derive(Clone)]
pub struct Trace {
    inner: Arc<Mutex<TraceInner>>,
}

struct TraceInner {
    hasher: SipHasher,
    count: u64,
    tail: VecDeque<Event>,
    verbose: bool,
}

/// What kind of mark an event makes on the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A point event on its lane.
    Point,
    /// An operation that started at `start_ns` and ended at the event's time.
    Span { start_ns: u128 },
    /// A fault: drawn across every lane.
    Fault,
}

/// One recorded event, kept for the failure timeline.
#[derive(Clone, Debug)]
pub struct Event {
    pub t_ns: u128,
    /// Who it happened to: a node, a client, or "cluster".
    pub lane: String,
    pub text: String,
    pub mark: Mark,
}

impl Event {
    pub fn line(&self) -> String {
        match self.mark {
            Mark::Span { start_ns } => format!(
                "{:>12.6}s {:<10} {} (took {:.3} ms)",
                self.t_ns as f64 / 1e9,
                self.lane,
                self.text,
                (self.t_ns - start_ns) as f64 / 1e6
            ),
            _ => format!("{:>12.6}s {:<10} {}", self.t_ns as f64 / 1e9, self.lane, self.text),
        }
    }
}

impl Trace {
    pub fn new(verbose: bool) -> Trace {
        Trace {
            inner: Arc::new(Mutex::new(TraceInner {
                hasher: SipHasher::new_with_keys(0x7472_6163, 0x6568_6173),
                count: 0,
                tail: VecDeque::new(),
                verbose,
            })),
        }
    }

    /// Records a cluster-level event at simulated time `t_ns`; events starting with
    /// "nemesis:" are faults.
    pub fn record(&self, t_ns: u128, event: String) {
        let mark = if event.starts_with("nemesis:") { Mark::Fault } else { Mark::Point };
        self.push(Event { t_ns, lane: "cluster".into(), text: event, mark });
    }

    /// Records an operation by `lane` that ran from `start_ns` to `end_ns`.
    pub fn record_op(&self, lane: &str, start_ns: u128, end_ns: u128, text: String) {
        debug_assert!(start_ns <= end_ns);
        self.push(Event { t_ns: end_ns, lane: lane.to_string(), text, mark: Mark::Span { start_ns } });
    }

    /// Folds what a node observed about itself into the hash (not into the timeline's tail, to
    /// keep memory bounded): every write, digest, offset and ACK of every node counts, so the
    /// determinism self-check catches a divergence wherever it lands, even in a scenario whose
    /// own events are few.
    pub fn observe(&self, t_ns: u128, lane: &str, observation: &impl std::hash::Hash) {
        let mut t = self.inner.lock().expect("trace lock");
        t.hasher.write_u128(t_ns);
        t.hasher.write(lane.as_bytes());
        t.hasher.write_u8(0xfd);
        observation.hash(&mut t.hasher);
        t.count += 1;
    }

    fn push(&self, e: Event) {
        let mut t = self.inner.lock().expect("trace lock");
        t.hasher.write_u128(e.t_ns);
        if let Mark::Span { start_ns } = e.mark {
            t.hasher.write_u128(start_ns);
        }
        t.hasher.write(e.lane.as_bytes());
        t.hasher.write_u8(0xfe);
        t.hasher.write(e.text.as_bytes());
        t.hasher.write_u8(0xff);
        t.count += 1;
        if t.verbose {
            println!("{}", e.line());
        }
        if t.tail.len() == TRACE_TAIL_MAX {
            t.tail.pop_front();
        }
        t.tail.push_back(e);
    }

    pub fn hash(&self) -> u64 {
        self.inner.lock().expect("trace lock").hasher.finish()
    }

    pub fn count(&self) -> u64 {
        self.inner.lock().expect("trace lock").count
    }

    pub fn tail(&self) -> Vec<Event> {
        self.inner.lock().expect("trace lock").tail.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_events_times_and_order() {
        let a = Trace::new(false);
        a.record(1, "x".into());
        a.record(2, "y".into());
        let b = Trace::new(false);
        b.record(1, "x".into());
        b.record(2, "y".into());
        assert_eq!(a.hash(), b.hash());
        let c = Trace::new(false);
        c.record(2, "y".into());
        c.record(1, "x".into());
        assert_ne!(a.hash(), c.hash());
        let d = Trace::new(false);
        d.record(1, "x".into());
        d.record(3, "y".into());
        assert_ne!(a.hash(), d.hash());
        assert_eq!(a.count(), 2);
    }
}
