//! Fault points, planted bugs and coverage probes: the simulation's hooks into server code.
//!
//! - [`buggify`]: FoundationDB-style fault points. In a simulated run with buggify on, each call
//!   site is activated once, with probability 1/4, the first time it is reached; an active site
//!   then fires with probability 1/4 each time. Sites make rare paths common (tiny reads,
//!   delayed flushes, skipped cron ticks). Different seeds activate different sets of sites.
//! - [`planted`]: known bugs the sweep must catch (see [`PLANTED_BUGS`]); a checker that catches
//!   none of them is not a checker.
//! - [`probe`]: counts that an interesting state was reached; the sweep reports how many seeds
//!   reached each probe and fails if a required one was never reached.
//!
//! In the production build all three compile to nothing (constant `false`, empty body). In the
//! madsim flavour their state is per thread, which is per simulated run: madsim runs one runtime
//! on one thread, and the runner calls [`reset`] before each seed. Randomness comes from madsim's
//! seeded RNG, so activation is part of the replayed trace.

/// Bugs the simulator can plant, with what each does. Each must be caught by the sweep.
pub const PLANTED_BUGS: &[(&str, &str)] = &[
    ("incr-off-by-one", "INCR/INCRBY adds one too many when the result is a multiple of 7"),
    ("batch-drops-last", "the last request of a pipelined batch of 3 or more is answered +OK but not executed"),
    ("del-miscount", "DEL counts keys given instead of keys deleted"),
    ("watch-ignores-incr", "INCR does not invalidate WATCHes on its key"),
    ("getset-returns-new", "GETSET replies with the new value instead of the old one"),
    ("rename-before-fsync", "a save renames its temporary file over dump.rdb before fsyncing it"),
    ("write-not-propagated", "INCR is applied on the master but never sent to replicas"),
    ("replica-offset-off-by-one", "a replica counts one byte too many for every SELECT it applies"),
    ("backlog-off-by-one", "a partial resync sends the backlog starting one byte late"),
    ("ack-before-apply", "a replica acknowledges stream bytes it has read but not yet applied"),
    ("wait-counts-unacked", "WAIT counts every attached replica, acknowledged or not"),
    ("psync-refuses-covered", "a master answers +FULLRESYNC to a PSYNC its backlog could continue"),
    ("sentinel-double-vote", "a sentinel votes again in an epoch it already voted in (<= for <)"),
    (
        "sentinel-leader-no-majority",
        "the leader needs voters/2 votes instead of voters/2+1 (with a quorum below the majority)",
    ),
    ("sentinel-failover-on-sdown", "a failover starts on SDOWN, without waiting for ODOWN by the quorum"),
    ("sentinel-selects-lowest-offset", "replica selection prefers the lowest replication offset"),
    ("sentinel-ignores-newer-config", "a hello with a higher configuration epoch is not adopted"),
    ("sentinel-no-tilt", "the timer never enters TILT, whatever the clock does"),
    ("aof-ack-before-fsync", "with appendfsync always, replies wait for the AOF write but not its fsync"),
    ("aof-manifest-drops-incr", "the manifest written at the end of a rewrite omits the incr file opened at its start"),
    (
        "exec-drops-deferred-reply",
        "a deferred command's reply inside EXEC (BGSAVE, CONFIG REWRITE) is never spliced in",
    ),
];

#[cfg(madsim)]
mod imp {
    use std::cell::RefCell;
    use std::collections::{BTreeMap, BTreeSet};

    use rand::Rng;

    #[derive(Default)]
    struct State {
        buggify_enabled: bool,
        sites: BTreeMap<&'static str, bool>,
        planted: BTreeSet<String>,
        probes: BTreeMap<&'static str, u64>,
    }

    thread_local! {
        static STATE: RefCell<State> = RefCell::new(State::default());
    }

    pub fn reset(buggify_enabled: bool, planted: &[String]) {
        STATE.with(|s| {
            *s.borrow_mut() = State { buggify_enabled, planted: planted.iter().cloned().collect(), ..State::default() };
        });
    }

    pub fn set_buggify(enabled: bool) {
        STATE.with(|s| s.borrow_mut().buggify_enabled = enabled);
    }

    pub fn buggify(site: &'static str) -> bool {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            if !s.buggify_enabled {
                return false;
            }
            let mut rng = madsim::rand::thread_rng();
            let active = *s.sites.entry(site).or_insert_with(|| rng.gen_bool(0.25));
            let fired = active && rng.gen_bool(0.25);
            if fired {
                let n = s.probes.entry(site).or_default();
                *n = n.saturating_add(1);
            }
            fired
        })
    }

    pub fn planted(bug: &'static str) -> bool {
        STATE.with(|s| s.borrow().planted.contains(bug))
    }

    pub fn probe(name: &'static str) {
        probe_n(name, 1)
    }

    /// Adds `hits` to a probe: a measured quantity (acknowledged writes lost) that the sweep's
    /// coverage table then sums over seeds.
    pub fn probe_n(name: &'static str, hits: u64) {
        if hits == 0 {
            return;
        }
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            let n = s.probes.entry(name).or_default();
            *n = n.saturating_add(hits);
        });
    }

    pub fn take_probes() -> BTreeMap<&'static str, u64> {
        STATE.with(|s| std::mem::take(&mut s.borrow_mut().probes))
    }
}

#[cfg(madsim)]
pub use imp::{buggify, planted, probe, probe_n, reset, set_buggify, take_probes};

#[cfg(not(madsim))]
#[inline(always)]
pub fn buggify(_site: &'static str) -> bool {
    false
}

#[cfg(not(madsim))]
#[inline(always)]
pub fn planted(_bug: &'static str) -> bool {
    false
}

#[cfg(not(madsim))]
#[inline(always)]
pub fn probe_n(_name: &'static str, _hits: u64) {}

#[cfg(not(madsim))]
#[inline(always)]
pub fn probe(_name: &'static str) {}
