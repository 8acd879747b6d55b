//! One worker's request counters, in memory the master shares with it.
//!
//! The master maps a [`WorkerStats`] block (a [`SharedSlice`] of one) for
//! every worker it forks; the worker and its request threads write it with
//! relaxed atomic adds through a [`Meter`] (fork mode: the worker counts
//! each child's request when it reaps it, so a child writes nothing here);
//! the master reads it at any time and, when the worker has exited, folds
//! its final values into the listener's totals. Request children inherit
//! the mapping like the rest of the worker's memory.
//!
//! Promises: counting costs no lock and no system call (a duration is two
//! reads of CLOCK_MONOTONIC, which the vDSO answers in user space); the
//! block is one page; the fields the serve loop writes and those written
//! as requests end sit on separate cache lines. Every counter only grows. Nothing here knows
//! what a request is: the worker decides when to call each method.

use crate::os::shm::{SharedSlice, ShmSafe};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Upper bounds of the request duration histogram, in seconds (Prometheus
/// `le`); one more bucket (+Inf) takes the rest. Fixed, so the buckets of
/// every worker, generation and listener add up.
pub const BUCKETS: [f64; 14] = [
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// [`BUCKETS`] in nanoseconds, for the request path.
const BUCKETS_NS: [u64; 14] = [
    100_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];

/// Room for refusal reasons: the gate's reasons index this array, so a new
/// reason needs no change here while there are fewer than this many.
pub const MAX_REASONS: usize = 16;

/// What the serve loop writes: one cache line group of its own.
#[repr(C, align(64))]
pub struct LoopCounts {
    /// Requests dispatched to the plugin (accepted connections, datagrams).
    pub requests: AtomicU64,
    /// Oversized datagrams dropped before any check.
    pub dropped: AtomicU64,
    /// Refused requests, by the gate's reason index.
    pub refused: [AtomicU64; MAX_REASONS],
}

/// What is written as each request ends (threads, children, the loop).
#[repr(C, align(64))]
pub struct EndCounts {
    /// Requests that ended, well or not: `requests - done` are in flight.
    pub done: AtomicU64,
    /// Requests whose hooks failed or panicked, or whose process died.
    pub failed: AtomicU64,
    /// Sum of observed durations, nanoseconds.
    pub duration_ns: AtomicU64,
    /// Observations per bucket (not cumulative); the last is +Inf.
    pub buckets: [AtomicU64; BUCKETS.len() + 1],
}

/// One worker's counters.
#[repr(C)]
pub struct WorkerStats {
    pub serve: LoopCounts,
    pub end: EndCounts,
}

// SAFETY: repr(C) structs of integer atomics only: zero is a valid value,
// no pointers, and every access is an atomic operation.
unsafe impl ShmSafe for LoopCounts {}
// SAFETY: as for LoopCounts.
unsafe impl ShmSafe for EndCounts {}
// SAFETY: a repr(C) pair of ShmSafe structs.
unsafe impl ShmSafe for WorkerStats {}

/// A snapshot of a block (or a sum of them), as plain numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub dropped: u64,
    pub refused: [u64; MAX_REASONS],
    pub done: u64,
    pub failed: u64,
    pub duration_ns: u64,
    pub buckets: [u64; BUCKETS.len() + 1],
}

impl WorkerStats {
    /// A fresh zeroed block for one worker, shared with what it forks.
    pub fn map() -> io::Result<SharedSlice<WorkerStats>> {
        SharedSlice::new(1)
    }

    /// Read every counter (each atomically; together, as of about now).
    pub fn snapshot(&self) -> Counts {
        let load = |a: &AtomicU64| a.load(Relaxed);
        Counts {
            requests: load(&self.serve.requests),
            dropped: load(&self.serve.dropped),
            refused: self.serve.refused.each_ref().map(load),
            done: load(&self.end.done),
            failed: load(&self.end.failed),
            duration_ns: load(&self.end.duration_ns),
            buckets: self.end.buckets.each_ref().map(load),
        }
    }
}

impl Counts {
    /// Add `other` into these counts.
    pub fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.dropped += other.dropped;
        self.done += other.done;
        self.failed += other.failed;
        self.duration_ns += other.duration_ns;
        for (a, b) in self.refused.iter_mut().zip(&other.refused) {
            *a += b;
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
    }

    /// Requests dispatched but not ended.
    pub fn active(&self) -> u64 {
        self.requests.saturating_sub(self.done)
    }

    /// The final counts of a worker that exited: what was still in flight
    /// died with it and counts as failed (and as ended).
    pub fn retired(mut self) -> Counts {
        let lost = self.active();
        self.failed += lost;
        self.done += lost;
        self
    }

    /// Observations in the histogram.
    pub fn observed(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// The histogram bucket of a duration.
fn bucket(ns: u64) -> usize {
    BUCKETS_NS.partition_point(|&le| le < ns)
}

/// A worker's handle on its block: `Copy`, usable from the serve loop,
/// request threads and request children alike. [`Meter::none`] counts
/// nothing (check mode, tests).
#[derive(Clone, Copy)]
pub struct Meter {
    stats: Option<&'static WorkerStats>,
}

impl Meter {
    /// A meter writing nowhere.
    pub const fn none() -> Meter {
        Meter { stats: None }
    }

    /// A meter on `block` for the rest of this process's life: the mapping
    /// is never unmapped here (a worker ends in `_exit`).
    pub fn leak(block: SharedSlice<WorkerStats>) -> Meter {
        let stats: &'static [WorkerStats] = block.leak();
        Meter {
            stats: stats.first(),
        }
    }

    /// The block this meter writes, if any.
    pub fn stats(&self) -> Option<&'static WorkerStats> {
        self.stats
    }

    /// A request goes to the plugin. Returns when it started.
    #[inline]
    pub fn dispatched(&self) -> Instant {
        if let Some(s) = self.stats {
            s.serve.requests.fetch_add(1, Relaxed);
        }
        Instant::now()
    }

    /// A request dispatched at `started` ended; `ok` unless a hook failed.
    #[inline]
    pub fn ended(&self, started: Instant, ok: bool) -> Duration {
        let took = started.elapsed();
        if let Some(s) = self.stats {
            let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
            s.end.duration_ns.fetch_add(ns, Relaxed);
            s.end.buckets[bucket(ns)].fetch_add(1, Relaxed);
            if !ok {
                s.end.failed.fetch_add(1, Relaxed);
            }
            s.end.done.fetch_add(1, Relaxed);
        }
        took
    }

    /// A request refused before dispatch, by reason index `reason`.
    #[inline]
    pub fn refused(&self, reason: usize) {
        if let Some(s) = self.stats {
            if let Some(c) = s.serve.refused.get(reason) {
                c.fetch_add(1, Relaxed);
            }
        }
    }

    /// A request dispatched but then refused by the plugin's own check run
    /// inside it (`refuse_request`): no longer a request, a refusal by
    /// reason index `reason`. Its dispatch is taken back, so it never
    /// counted as in flight, done or failed once it ends.
    #[cold]
    pub fn withdrawn(&self, reason: usize) {
        if let Some(s) = self.stats {
            s.serve.requests.fetch_sub(1, Relaxed);
            if let Some(c) = s.serve.refused.get(reason) {
                c.fetch_add(1, Relaxed);
            }
        }
    }

    /// An oversized datagram was dropped.
    #[inline]
    pub fn dropped(&self) {
        if let Some(s) = self.stats {
            s.serve.dropped.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_take_durations_up_to_their_bound() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(100_000), 0, "le is inclusive");
        assert_eq!(bucket(100_001), 1);
        assert_eq!(bucket(10_000_000_000), BUCKETS.len() - 1);
        assert_eq!(bucket(u64::MAX), BUCKETS.len(), "+Inf");
        for (s, ns) in BUCKETS.iter().zip(BUCKETS_NS) {
            assert_eq!((s * 1e9).round() as u64, ns);
        }
    }

    #[test]
    fn a_forked_child_counts_into_the_block_the_parent_reads() {
        let meter = Meter::leak(WorkerStats::map().expect("map"));
        let reader = meter.stats().expect("a block");
        let t = meter.dispatched();
        // SAFETY: the child only does atomic adds, a clock read and _exit.
        match unsafe { libc::fork() } {
            0 => {
                meter.ended(t, false);
                meter.refused(3);
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(0) }
            }
            -1 => panic!("fork: {}", io::Error::last_os_error()),
            pid => {
                let mut status = 0;
                // SAFETY: waits for the child just forked.
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }
        }
        let c = reader.snapshot();
        assert_eq!((c.requests, c.done, c.failed, c.observed()), (1, 1, 1, 1));
        assert_eq!(c.refused[3], 1);
        assert_eq!(c.active(), 0);
    }

    #[test]
    fn a_retired_worker_counts_what_was_in_flight_as_failed() {
        let c = Counts {
            requests: 5,
            done: 3,
            failed: 1,
            ..Counts::default()
        };
        let r = c.retired();
        assert_eq!((r.requests, r.done, r.failed, r.active()), (5, 5, 3, 0));
    }
}
