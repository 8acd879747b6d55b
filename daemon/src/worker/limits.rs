//! Per-source limits for the built-in `verify_request`:
//! `rate_limit_per_source` (a token bucket per source: R new requests per
//! second, burst R) and `max_connections_per_source` (open stream
//! connections per source, counted by [`SourceSlot`] guards).
//!
//! Owns the table of sources of one worker. Promises: the table never holds
//! more than its capacity (so a spray from many addresses cannot grow
//! memory without bound); a source with an open connection is never
//! forgotten, so its count stays exact; a [`SourceSlot`] gives its
//! connection back exactly once, when dropped (the request thread, the
//! reaped fork child's record, or the sync loop after `finish_request`).
//! When room is needed, sources that lose nothing by being forgotten go
//! first (idle, bucket full), then idle sources that would be admitted
//! anyway (a token left), and only then other idle ones (they get a fresh
//! burst: the one place the rate limit fails open, reported in the log).
//! The map uses std's randomly keyed SipHash, so crafted addresses cannot
//! collide it into slowness. Never blocks and never logs per request.
//! With `workers = K` (K > 1) the counting is done in the listener's
//! shared table instead ([`crate::worker::shared_limits`]), so the limits
//! hold across the K workers; the settings and the guards stay the same.

use crate::worker::shared_limits::SharedTable;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Room kept for sources beyond those pinned by open connections.
const SPARE: usize = 8192;

/// At most one "forgot sources" warning per this long.
const FORGET_WARN_EVERY: Duration = Duration::from_secs(10);

/// Whom a request counts against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// An inet or inet6 client (IPv4-mapped IPv6 counts as IPv4).
    Ip(IpAddr),
    /// A unix stream client, by its SO_PEERCRED uid.
    Uid(u32),
    /// A unix datagram client, by its socket path (empty when unnamed).
    Path(Box<[u8]>),
}

/// Which limit a source went over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exceeded {
    /// No token left in the source's bucket.
    Rate,
    /// `max_connections_per_source` connections already open.
    Connections(u32),
    /// The table is full of sources with open connections (cannot happen
    /// while the capacity covers the dispatch's cap on requests in flight).
    TableFull,
}

/// One source's state.
#[derive(Clone, Copy, Debug)]
struct Entry {
    open: u32,
    tokens: f64,
    refilled: Instant,
}

/// The token bucket settings.
#[derive(Clone, Copy, Debug)]
struct Rate {
    per_sec: f64,
    burst: f64,
}

impl Entry {
    fn tokens_at(&self, now: Instant, rate: Option<Rate>) -> f64 {
        match rate {
            Some(r) => {
                let secs = now.saturating_duration_since(self.refilled).as_secs_f64();
                (self.tokens + secs * r.per_sec).min(r.burst)
            }
            None => 0.0,
        }
    }
}

#[derive(Debug)]
struct Table {
    entries: HashMap<Source, Entry>,
    capacity: usize,
    rate: Option<Rate>,
    forgotten: u64,
    last_forget_warn: Option<Instant>,
}

/// A listener's per-source limits (one per worker process).
#[derive(Debug, Clone)]
pub struct SourceLimits {
    max_open: Option<u32>,
    rate: Option<Rate>,
    table: Arc<Mutex<Table>>,
    /// The listener's table shared by its workers, and this process's
    /// ownership column in it.
    shared: Option<(Arc<SharedTable>, usize)>,
}

/// An open connection counted against its source; dropping it gives the
/// connection back.
#[derive(Debug)]
pub struct SourceSlot {
    table: Arc<Mutex<Table>>,
    source: Source,
    /// Counted in the shared table: (table, column, entry).
    shared: Option<(Arc<SharedTable>, usize, usize)>,
}

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    // A panic while holding the lock leaves consistent counts (every
    // update is a single assignment), so a poisoned lock is still usable.
    table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SourceLimits {
    /// Limits of `max_open` connections and `rate` new requests per second
    /// per source; `in_flight` is the most requests the dispatch runs at
    /// once (each may pin one source in the table).
    pub fn new(max_open: Option<usize>, rate: Option<f64>, in_flight: usize) -> SourceLimits {
        let rate = rate.map(|per_sec| Rate {
            per_sec,
            burst: per_sec.max(1.0),
        });
        let capacity = SPARE.saturating_add(in_flight).saturating_add(1);
        SourceLimits {
            max_open: max_open.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            rate,
            table: Arc::new(Mutex::new(Table {
                entries: HashMap::new(),
                capacity,
                rate,
                forgotten: 0,
                last_forget_warn: None,
            })),
            shared: None,
        }
    }

    /// Count in `table`, shared with the listener's other workers, as the
    /// owner of `column`.
    pub fn shared(mut self, table: Arc<SharedTable>, column: usize) -> SourceLimits {
        self.shared = Some((table, column));
        self
    }

    /// `rate_limit_per_source`, as configured.
    pub fn rate_per_sec(&self) -> Option<f64> {
        self.rate.map(|r| r.per_sec)
    }

    /// Whether any limit is configured.
    pub fn active(&self) -> bool {
        self.max_open.is_some() || self.rate.is_some()
    }

    /// Count a new request from `source`: take a token, and (with
    /// `max_connections_per_source`) an open-connection slot, returned as
    /// a guard. `Err` says which limit refused it.
    pub fn admit(&self, source: Source, now: Instant) -> Result<Option<SourceSlot>, Exceeded> {
        if !self.active() {
            return Ok(None);
        }
        if let Some((shared, column)) = &self.shared {
            let rate = self.rate.map(|r| (r.per_sec, r.burst));
            let entry = shared.admit(*column, &source, rate, self.max_open, now)?;
            return Ok(entry.map(|entry| SourceSlot {
                table: Arc::clone(&self.table),
                source,
                shared: Some((Arc::clone(shared), *column, entry)),
            }));
        }
        let mut table = lock(&self.table);
        if !table.entries.contains_key(&source) && !table.make_room(now) {
            return Err(Exceeded::TableFull);
        }
        let burst = self.rate.map_or(0.0, |r| r.burst);
        let entry = table.entries.entry(source.clone()).or_insert(Entry {
            open: 0,
            tokens: burst,
            refilled: now,
        });
        if self.rate.is_some() {
            entry.tokens = entry.tokens_at(now, self.rate);
            entry.refilled = now;
            if entry.tokens < 1.0 {
                return Err(Exceeded::Rate);
            }
            entry.tokens -= 1.0;
        }
        let Some(max) = self.max_open else {
            return Ok(None);
        };
        if entry.open >= max {
            return Err(Exceeded::Connections(max));
        }
        entry.open += 1;
        drop(table);
        Ok(Some(SourceSlot {
            table: Arc::clone(&self.table),
            source,
            shared: None,
        }))
    }

    /// Sources in the table now.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        lock(&self.table).entries.len()
    }

    /// Open connections counted for `source`.
    #[cfg(test)]
    pub fn open(&self, source: &Source) -> u32 {
        if let Some((shared, _)) = &self.shared {
            return shared.open(source);
        }
        lock(&self.table).entries.get(source).map_or(0, |e| e.open)
    }
}

impl Table {
    /// Make room for one more source; false when every entry holds an
    /// open connection.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.entries.len() < self.capacity {
            return true;
        }
        // Sweep down to a low-water mark, so a spray pays for one sweep
        // per SPARE / 2 new sources rather than one per source.
        let low_water = self.capacity - SPARE / 2;
        let rate = self.rate;
        let before = self.entries.len();
        // 1. Idle sources whose bucket is full are as good as new.
        self.entries
            .retain(|_, e| e.open > 0 || (rate.is_some() && e.tokens_at(now, rate) < burst(rate)));
        let lossless = before - self.entries.len();
        // 2. Idle sources that would be admitted now anyway.
        if self.entries.len() > low_water {
            self.entries
                .retain(|_, e| e.open > 0 || e.tokens_at(now, rate) < 1.0);
        }
        // 3. Every idle source.
        if self.entries.len() > low_water {
            self.entries.retain(|_, e| e.open > 0);
        }
        let lossy = before - lossless - self.entries.len();
        self.forgotten += lossy as u64;
        if lossy > 0 && self.warn_due(now) {
            tracing::warn!(
                "the per-source table is full ({} sources): forgot the rate-limit state of {} recently seen sources ({} since start); each gets a fresh burst",
                self.capacity,
                lossy,
                self.forgotten
            );
        }
        self.entries.len() < self.capacity
    }

    fn warn_due(&mut self, now: Instant) -> bool {
        let due = self
            .last_forget_warn
            .is_none_or(|t| now.saturating_duration_since(t) >= FORGET_WARN_EVERY);
        if due {
            self.last_forget_warn = Some(now);
        }
        due
    }
}

fn burst(rate: Option<Rate>) -> f64 {
    rate.map_or(0.0, |r| r.burst)
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut table = lock(&self.table);
        let rate = table.rate;
        if let Some((shared, column, entry)) = &self.shared {
            drop(table);
            shared.release(*column, *entry, rate.is_none());
            return;
        }
        let Some(entry) = table.entries.get_mut(&self.source) else {
            return;
        };
        entry.open = entry.open.saturating_sub(1);
        // Without a rate limit an idle source carries no state.
        if entry.open == 0 && rate.is_none() {
            table.entries.remove(&self.source);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> Source {
        Source::Ip(IpAddr::from(n.to_be_bytes()))
    }

    #[test]
    fn bucket_admits_a_burst_then_refills_at_the_rate() {
        let l = SourceLimits::new(None, Some(5.0), 1);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(l.admit(ip(1), t0).is_ok());
        }
        assert_eq!(l.admit(ip(1), t0).err(), Some(Exceeded::Rate));
        assert!(
            l.admit(ip(2), t0).is_ok(),
            "another source has its own bucket"
        );
        let later = t0 + Duration::from_millis(210);
        assert!(l.admit(ip(1), later).is_ok(), "one token back after 1/5 s");
        assert_eq!(l.admit(ip(1), later).err(), Some(Exceeded::Rate));
        let much_later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(
                l.admit(ip(1), much_later).is_ok(),
                "refills up to the burst"
            );
        }
        assert_eq!(l.admit(ip(1), much_later).err(), Some(Exceeded::Rate));
    }

    #[test]
    fn a_rate_below_one_still_allows_one_connection() {
        let l = SourceLimits::new(None, Some(0.5), 1);
        let t0 = Instant::now();
        assert!(l.admit(ip(1), t0).is_ok());
        assert_eq!(l.admit(ip(1), t0).err(), Some(Exceeded::Rate));
        assert!(l.admit(ip(1), t0 + Duration::from_secs(2)).is_ok());
    }

    #[test]
    fn slots_count_open_connections_and_give_them_back_on_drop() {
        let l = SourceLimits::new(Some(2), None, 8);
        let now = Instant::now();
        let a = l.admit(ip(1), now).expect("first").expect("slot");
        let b = l.admit(ip(1), now).expect("second").expect("slot");
        assert_eq!(l.admit(ip(1), now).err(), Some(Exceeded::Connections(2)));
        assert_eq!(l.open(&ip(1)), 2);
        drop(a);
        assert_eq!(l.open(&ip(1)), 1);
        let c = l.admit(ip(1), now).expect("a slot came back");
        drop((b, c));
        assert_eq!(
            l.tracked(),
            0,
            "an idle source without a rate keeps nothing"
        );
    }

    #[test]
    fn no_limits_means_no_state() {
        let l = SourceLimits::new(None, None, 8);
        for n in 0..1000 {
            assert!(l.admit(ip(n), Instant::now()).expect("admitted").is_none());
        }
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn a_spray_of_sources_cannot_grow_the_table_past_its_capacity() {
        let l = SourceLimits::new(Some(1), Some(1.0), 16);
        let now = Instant::now();
        // Sixteen sources keep a connection open throughout.
        let held: Vec<SourceSlot> = (0..16)
            .map(|n| l.admit(ip(n), now).expect("admitted").expect("slot"))
            .collect();
        let capacity = SPARE + 16 + 1;
        for n in 16..200_000 {
            // Each new source connects once and leaves (empty bucket).
            let _ = l.admit(ip(n), now);
            assert!(l.tracked() <= capacity, "{} > {capacity}", l.tracked());
        }
        for (n, slot) in held.iter().enumerate() {
            assert_eq!(slot.source, ip(n as u32));
            assert_eq!(
                l.open(&ip(n as u32)),
                1,
                "open connections are never forgotten"
            );
            assert_eq!(
                l.admit(ip(n as u32), now).err(),
                Some(Exceeded::Rate),
                "and neither is their rate state"
            );
        }
    }

    #[test]
    fn sweeping_keeps_the_sources_that_are_being_limited() {
        let l = SourceLimits::new(None, Some(3.0), 0);
        let now = Instant::now();
        for _ in 0..3 {
            assert!(l.admit(ip(0), now).is_ok());
        }
        // A spray fills the table with sources that still have tokens.
        for n in 1..(SPARE as u32 + 10) {
            let _ = l.admit(ip(n), now);
        }
        assert_eq!(
            l.admit(ip(0), now).err(),
            Some(Exceeded::Rate),
            "the exhausted source was kept"
        );
    }

    #[test]
    fn a_table_full_of_open_connections_refuses_new_sources() {
        let l = SourceLimits::new(Some(1), None, 0);
        let now = Instant::now();
        let held: Vec<_> = (0..(SPARE as u32 + 1))
            .map(|n| l.admit(ip(n), now).expect("room").expect("slot"))
            .collect();
        assert_eq!(l.admit(ip(u32::MAX), now).err(), Some(Exceeded::TableFull));
        drop(held);
        assert!(l.admit(ip(u32::MAX), now).is_ok());
    }

    #[test]
    fn a_slot_moves_to_another_thread() {
        let l = SourceLimits::new(Some(1), None, 1);
        let slot = l.admit(Source::Uid(1000), Instant::now()).expect("ok");
        std::thread::spawn(move || drop(slot))
            .join()
            .expect("thread");
        assert_eq!(l.open(&Source::Uid(1000)), 0);
    }
}
