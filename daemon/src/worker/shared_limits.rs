//! The per-source table of a listener with `workers = K` (K > 1): one
//! table in shared memory ([`crate::os::shm`]) that all K workers, their
//! request threads, and the workers of an overlapping generation use, so
//! `max_connections_per_source` and `rate_limit_per_source` hold for the
//! listener as a whole, not K times over.
//!
//! Why a shared table and not steering: behind a balancer every TCP peer
//! is the balancer, so SO_REUSEPORT with a BPF program keyed on the TCP
//! source cannot send one client's connections to one worker; only the
//! PROXY header knows the client, and it is read after accept, in any
//! worker. So the workers count in one place.
//!
//! Shape: a set-associative array of [`WAYS`]-entry sets (an entry never
//! moves while it exists, so no rehash across processes), keyed by a
//! random-keyed hash chosen in the master (crafted addresses cannot aim at
//! one set), guarded by one lock word holding the holder's pid (a few
//! dozen instructions inside; a holder found dead is overtaken). Each
//! process that counts takes an ownership column ([`SharedTable::claim`]):
//! an open connection is counted in its entry and in its owner's column,
//! so when a worker dies holding slots (SIGKILL, crash), the first process
//! to notice (another worker at most a second later, or its replacement at
//! start) gives them back. A fork child's connection is counted in its
//! worker's column and given back when the worker reaps it; a child that
//! outlives a killed worker serves its one request uncounted.
//!
//! Made by the master before it forks the listener's workers ([`prepare`]),
//! kept across respawns and reloads while the limits and `workers` stay
//! the same (changed ones get a fresh table: connections opened under the
//! old one are not counted in the new). Never blocks beyond the lock;
//! never logs per request.

use crate::config::ListenerConfig;
use crate::os::shm::{SharedSlice, ShmSafe};
use crate::worker::limits::{Exceeded, Source};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Entries per set.
pub const WAYS: usize = 16;
/// Sets in a table: 16384 sources in all.
const SETS: usize = 1024;
/// How often a process looks for columns of processes that are gone.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// One source's counts.
#[repr(C)]
#[derive(Default)]
struct Entry {
    /// 0: free; else the key's kind (1 IP, 2 uid, 3 path hash).
    kind: AtomicU32,
    open: AtomicU32,
    key_hi: AtomicU64,
    key_lo: AtomicU64,
    /// f64 bits.
    tokens: AtomicU64,
    /// Nanoseconds since the table's epoch.
    refilled: AtomicU64,
}

// SAFETY: a repr(C) struct of integer atomics: zero is valid (a free
// entry), no pointers, and atomics are sound across processes.
unsafe impl ShmSafe for Entry {}

/// Who holds the table's lock (a pid), and the lossy-forget count.
#[repr(C)]
#[derive(Default)]
struct Header {
    lock: AtomicU32,
    _pad: AtomicU32,
    forgotten: AtomicU64,
}

// SAFETY: as for Entry.
unsafe impl ShmSafe for Header {}

/// The settings a table was made for; another set makes another table.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Settings {
    workers: usize,
    max_open: Option<usize>,
    rate: Option<f64>,
}

/// One listener's shared table.
pub struct SharedTable {
    header: SharedSlice<Header>,
    entries: SharedSlice<Entry>,
    owners: SharedSlice<AtomicU32>,
    /// `owners.len()` columns of `entries.len()` counts, column-major.
    held: SharedSlice<AtomicU32>,
    hasher: RandomState,
    epoch: Instant,
    last_reap: Mutex<Option<Instant>>,
    /// When this process last warned about forgotten sources.
    last_forget_warn: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for SharedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTable")
            .field("entries", &self.entries.len())
            .field("columns", &self.owners.len())
            .finish_non_exhaustive()
    }
}

/// The master's tables, by listener name; inherited by every fork.
static TABLES: Mutex<Vec<(String, Settings, Arc<SharedTable>)>> = Mutex::new(Vec::new());

fn settings(l: &ListenerConfig) -> Option<Settings> {
    let limited = l.max_connections_per_source.is_some() || l.rate_limit_per_source.is_some();
    (l.workers > 1 && limited).then_some(Settings {
        workers: l.workers,
        max_open: l.max_connections_per_source,
        rate: l.rate_limit_per_source,
    })
}

/// In the master, before forking a worker of `l`: make its shared table
/// if it needs one and has none for these settings. Idempotent.
pub fn prepare(l: &ListenerConfig) -> io::Result<()> {
    let Some(want) = settings(l) else {
        return Ok(());
    };
    let mut tables = TABLES.lock().unwrap_or_else(|p| p.into_inner());
    if tables.iter().any(|(n, s, _)| *n == l.name && *s == want) {
        return Ok(());
    }
    let table = Arc::new(SharedTable::new(2 * want.workers + 2)?);
    tables.retain(|(n, _, _)| *n != l.name);
    tables.push((l.name.clone(), want, table));
    Ok(())
}

/// In a worker: the table the master made for `l`, if it needs one.
pub fn for_worker(l: &ListenerConfig) -> Option<Arc<SharedTable>> {
    let want = settings(l)?;
    let tables = TABLES.lock().unwrap_or_else(|p| p.into_inner());
    tables
        .iter()
        .find(|(n, s, _)| *n == l.name && *s == want)
        .map(|(_, _, t)| Arc::clone(t))
}

fn pid() -> u32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u32 }
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid as i32, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Holds the table's lock until dropped.
struct Locked<'a>(&'a AtomicU32);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

/// A source as two words and a kind.
fn key(source: &Source) -> (u32, u64, u64) {
    match source {
        Source::Ip(ip) => {
            let v6 = match ip {
                std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                std::net::IpAddr::V6(v6) => *v6,
            };
            let bits = u128::from(v6);
            (1, (bits >> 64) as u64, bits as u64)
        }
        Source::Uid(uid) => (2, 0, u64::from(*uid)),
        Source::Path(p) => {
            let fixed = std::hash::BuildHasherDefault::<std::hash::DefaultHasher>::default();
            (3, p.len() as u64, fixed.hash_one(p))
        }
    }
}

impl SharedTable {
    fn new(columns: usize) -> io::Result<SharedTable> {
        let entries = SETS * WAYS;
        Ok(SharedTable {
            header: SharedSlice::new(1)?,
            entries: SharedSlice::new(entries)?,
            owners: SharedSlice::new(columns)?,
            held: SharedSlice::new(columns * entries)?,
            hasher: RandomState::new(),
            epoch: Instant::now(),
            last_reap: Mutex::new(None),
            last_forget_warn: Mutex::new(None),
        })
    }

    /// Take an ownership column for this process (after giving back the
    /// slots of processes that are gone). `None` when every column is
    /// held by a live process.
    pub fn claim(&self) -> Option<usize> {
        self.reap_dead();
        let me = pid();
        (0..self.owners.len()).find(|&c| {
            self.owners[c]
                .compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }

    fn lock(&self) -> Locked<'_> {
        let word = &self.header[0].lock;
        let me = pid();
        let mut spins: u32 = 0;
        loop {
            match word.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Locked(word),
                Err(holder) => {
                    spins = spins.wrapping_add(1);
                    if spins % 64 != 0 {
                        std::hint::spin_loop();
                        continue;
                    }
                    if holder != 0 && holder != me && !alive(holder) {
                        // The holder died inside; its update is at most one
                        // entry's counts, which the column reap repairs.
                        let _ =
                            word.compare_exchange(holder, me, Ordering::Acquire, Ordering::Relaxed);
                        if word.load(Ordering::Relaxed) == me {
                            return Locked(word);
                        }
                    }
                    // SAFETY: sched_yield has no preconditions.
                    unsafe { libc::sched_yield() };
                }
            }
        }
    }

    fn held(&self, column: usize, entry: usize) -> &AtomicU32 {
        &self.held[column * self.entries.len() + entry]
    }

    fn nanos(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// Give back the slots of columns whose process is gone.
    fn reap_dead(&self) {
        for c in 0..self.owners.len() {
            let owner = self.owners[c].load(Ordering::Acquire);
            if owner == 0 || alive(owner) {
                continue;
            }
            let _locked = self.lock();
            let mut given_back = 0u64;
            for e in 0..self.entries.len() {
                let n = self.held(c, e).swap(0, Ordering::Relaxed);
                if n > 0 {
                    let entry = &self.entries[e];
                    let open = entry.open.load(Ordering::Relaxed);
                    entry.open.store(open.saturating_sub(n), Ordering::Relaxed);
                    given_back += u64::from(n);
                }
            }
            self.owners[c].store(0, Ordering::Release);
            if given_back > 0 {
                tracing::info!(
                    "gave back {given_back} per-source connection slots held by process {owner}, which is gone"
                );
            }
        }
    }

    /// Look for processes that are gone, at most once per [`REAP_EVERY`].
    fn maybe_reap(&self, now: Instant) {
        let mut last = self.last_reap.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| now.saturating_duration_since(t) < REAP_EVERY) {
            return;
        }
        *last = Some(now);
        drop(last);
        self.reap_dead();
    }

    /// Count a new request from `source` for `column`'s process: take a
    /// token (with `rate` = (per second, burst)) and, with `max_open`, an
    /// open-connection slot (true when one was taken).
    pub fn admit(
        &self,
        column: usize,
        source: &Source,
        rate: Option<(f64, f64)>,
        max_open: Option<u32>,
        now: Instant,
    ) -> Result<Option<usize>, Exceeded> {
        self.maybe_reap(now);
        let (kind, hi, lo) = key(source);
        let set = (self.hasher.hash_one((kind, hi, lo)) as usize) % SETS;
        let t = self.nanos(now);
        let locked = self.lock();
        let (idx, forgot) = self.find_or_make(set, (kind, hi, lo), rate, t)?;
        let entry = &self.entries[idx];
        if let Some((per_sec, burst)) = rate {
            let tokens = tokens_at(entry, t, per_sec, burst);
            entry.refilled.store(t, Ordering::Relaxed);
            if tokens < 1.0 {
                entry.tokens.store(tokens.to_bits(), Ordering::Relaxed);
                return Err(Exceeded::Rate);
            }
            entry
                .tokens
                .store((tokens - 1.0).to_bits(), Ordering::Relaxed);
        }
        let Some(max) = max_open else {
            drop(locked);
            self.warn_forgotten(forgot, now);
            return Ok(None);
        };
        let open = entry.open.load(Ordering::Relaxed);
        if open >= max {
            return Err(Exceeded::Connections(max));
        }
        self.held(column, idx).fetch_add(1, Ordering::Relaxed);
        entry.open.store(open + 1, Ordering::Relaxed);
        drop(locked);
        self.warn_forgotten(forgot, now);
        Ok(Some(idx))
    }

    /// After forgetting a source's rate state to make room: warn, at most
    /// once per 10 s per process, with the count so far.
    fn warn_forgotten(&self, forgot: bool, now: Instant) {
        if !forgot {
            return;
        }
        let mut last = self
            .last_forget_warn
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(10)) {
            return;
        }
        *last = Some(now);
        tracing::warn!(
            "the shared per-source table is full where a new source falls: forgot the rate-limit state of an idle source to make room ({} since start); it gets a fresh burst",
            self.header[0].forgotten.load(Ordering::Relaxed)
        );
    }

    /// The entry of `k` in `set`, made (in a free or forgettable way) if
    /// absent. Called with the lock held.
    fn find_or_make(
        &self,
        set: usize,
        k: (u32, u64, u64),
        rate: Option<(f64, f64)>,
        t: u64,
    ) -> Result<(usize, bool), Exceeded> {
        let ways = set * WAYS..(set + 1) * WAYS;
        let is = |e: &Entry| {
            e.kind.load(Ordering::Relaxed) == k.0
                && e.key_hi.load(Ordering::Relaxed) == k.1
                && e.key_lo.load(Ordering::Relaxed) == k.2
        };
        if let Some(i) = ways.clone().find(|&i| is(&self.entries[i])) {
            return Ok((i, false));
        }
        // Free first; then idle with a full bucket (nothing lost); then
        // idle that would be admitted anyway; then any idle (fails open).
        let burst = rate.map_or(0.0, |r| r.1);
        let rank = |i: usize| -> Option<u8> {
            let e = &self.entries[i];
            if e.kind.load(Ordering::Relaxed) == 0 {
                return Some(0);
            }
            if e.open.load(Ordering::Relaxed) > 0 {
                return None;
            }
            let tokens = rate.map_or(burst, |(per_sec, b)| tokens_at(e, t, per_sec, b));
            Some(if tokens >= burst {
                1
            } else if tokens >= 1.0 {
                2
            } else {
                3
            })
        };
        let (i, r) = ways
            .filter_map(|i| rank(i).map(|r| (i, r)))
            .min_by_key(|&(_, r)| r)
            .ok_or(Exceeded::TableFull)?;
        if r == 3 {
            self.header[0].forgotten.fetch_add(1, Ordering::Relaxed);
        }
        let e = &self.entries[i];
        e.key_hi.store(k.1, Ordering::Relaxed);
        e.key_lo.store(k.2, Ordering::Relaxed);
        e.open.store(0, Ordering::Relaxed);
        e.tokens.store(burst.to_bits(), Ordering::Relaxed);
        e.refilled.store(t, Ordering::Relaxed);
        e.kind.store(k.0, Ordering::Relaxed);
        Ok((i, r == 3))
    }

    /// Give back one open-connection slot of `entry` taken by `column`.
    /// `forget_idle`: without a rate limit an idle source keeps nothing.
    pub fn release(&self, column: usize, entry: usize, forget_idle: bool) {
        let _locked = self.lock();
        let held = self.held(column, entry);
        let n = held.load(Ordering::Relaxed);
        if n == 0 {
            return; // already given back by a reap
        }
        held.store(n - 1, Ordering::Relaxed);
        let e = &self.entries[entry];
        let open = e.open.load(Ordering::Relaxed).saturating_sub(1);
        e.open.store(open, Ordering::Relaxed);
        if open == 0 && forget_idle {
            e.kind.store(0, Ordering::Relaxed);
        }
    }

    /// Open connections counted for `source`.
    #[cfg(test)]
    pub fn open(&self, source: &Source) -> u32 {
        let (kind, hi, lo) = key(source);
        let set = (self.hasher.hash_one((kind, hi, lo)) as usize) % SETS;
        let _locked = self.lock();
        (set * WAYS..(set + 1) * WAYS)
            .map(|i| &self.entries[i])
            .find(|e| {
                e.kind.load(Ordering::Relaxed) == kind
                    && e.key_hi.load(Ordering::Relaxed) == hi
                    && e.key_lo.load(Ordering::Relaxed) == lo
            })
            .map_or(0, |e| e.open.load(Ordering::Relaxed))
    }
}

fn tokens_at(e: &Entry, t: u64, per_sec: f64, burst: f64) -> f64 {
    let tokens = f64::from_bits(e.tokens.load(Ordering::Relaxed));
    let since = t.saturating_sub(e.refilled.load(Ordering::Relaxed)) as f64 / 1e9;
    (tokens + since * per_sec).min(burst)
}

#[cfg(test)]
#[path = "shared_limits_tests.rs"]
mod tests;
