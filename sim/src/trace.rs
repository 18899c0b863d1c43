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
    tail: VecDeque<String>,
    verbose: bool,
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

    /// Records one event at simulated time `t_ns`.
    pub fn record(&self, t_ns: u128, event: String) {
        let mut t = self.inner.lock().expect("trace lock");
        t.hasher.write_u128(t_ns);
        t.hasher.write(event.as_bytes());
        t.hasher.write_u8(0xff);
        t.count += 1;
        let line = format!("{:>12.6}s {}", t_ns as f64 / 1e9, event);
        if t.verbose {
            println!("{line}");
        }
        if t.tail.len() == TRACE_TAIL_MAX {
            t.tail.pop_front();
        }
        t.tail.push_back(line);
    }

    pub fn hash(&self) -> u64 {
        self.inner.lock().expect("trace lock").hasher.finish()
    }

    pub fn count(&self) -> u64 {
        self.inner.lock().expect("trace lock").count
    }

    pub fn tail(&self) -> Vec<String> {
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
