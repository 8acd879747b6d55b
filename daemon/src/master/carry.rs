//! Counters carried across a binary upgrade (`sockhostctl upgrade`,
//! SIGUSR2), so every `_total` series a scraper sees keeps growing.
//!
//! The old master makes a memfd ([`CarryOut`]) when the upgrade starts and
//! hands it to the new daemon with the sockets (fd name `@counts`). It
//! holds a short text header (format, refusal reasons and histogram
//! bounds by name, listener names) and, from the next page on, one array
//! of 64-bit atomics: the reload counts, then per listener the counts of
//! everything that daemon ever served (its folded totals, its live
//! workers' blocks and what it carried in itself). The old master writes
//! it at the end of every turn of its loop until it exits, so the values
//! include its draining workers' last requests; the new daemon
//! ([`CarryIn`]) adds them to its own at every scrape.
//!
//! Promises: a value in the region never decreases (writes are
//! `fetch_max`); the layout is read by name, so a new binary with other
//! refusal reasons drops only those it does not know, and one with other
//! histogram bounds carries everything but the histogram (it says so);
//! nothing here blocks or allocates per request.

use crate::os::shm::SharedSlice;
use crate::os::stats::{Counts, BUCKETS, MAX_REASONS};
use crate::worker::gate::Reason;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The fd name the region is handed over by.
pub const COUNTS_FD: &str = "@counts";

/// The header's first line: the format and its version.
const MAGIC: &str = "sockhost-counts 1";
/// Values before the first listener's: reloads ok, reloads failed.
const HEAD: usize = 2;
/// Per listener before the refusals: requests, dropped, done, failed,
/// duration_ns, restarts.
const FIXED: usize = 6;
const PAGE: u64 = 4096;

/// One listener's carried numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Carried {
    pub counts: Counts,
    pub restarts: u64,
}

/// Everything a daemon hands on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub listeners: BTreeMap<String, Carried>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
}

/// The values per listener for `reasons` refusal reasons and `buckets`
/// histogram bounds (+Inf comes on top).
fn stride(reasons: usize, buckets: usize) -> usize {
    FIXED + reasons + buckets + 1
}

/// The old daemon's side: the region it writes.
pub struct CarryOut {
    fd: OwnedFd,
    values: SharedSlice<AtomicU64>,
    names: Vec<String>,
}

impl CarryOut {
    /// A region for `names` (listener names: no spaces or newlines).
    pub fn create(names: Vec<String>) -> io::Result<CarryOut> {
        let labels: Vec<&str> = Reason::ALL.iter().map(|r| r.label()).collect();
        let bounds: Vec<String> = BUCKETS.iter().map(f64::to_string).collect();
        let mut header = format!(
            "{MAGIC}\nreasons {}\nbuckets {}\n",
            labels.join(" "),
            bounds.join(" ")
        );
        for n in &names {
            header.push_str(&format!("listener {n}\n"));
        }
        let text = header.into_bytes();
        let offset = (8 + text.len() as u64).div_ceil(PAGE) * PAGE;
        let count = HEAD + names.len() * stride(labels.len(), BUCKETS.len());
        // SAFETY: memfd_create with a static NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"sockhost-counts".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd owned by nobody else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.set_len(offset + 8 * count as u64)?;
        file.write_all_at(&(text.len() as u64).to_le_bytes(), 0)?;
        file.write_all_at(&text, 8)?;
        let values = SharedSlice::map_fd(file.as_raw_fd(), offset, count)?;
        Ok(CarryOut {
            fd: OwnedFd::from(file),
            values,
            names,
        })
    }

    /// The fd to hand over.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Record `s` (names not in the region are left out; no value goes
    /// down).
    pub fn write(&self, s: &Snapshot) {
        let put = |i: usize, v: u64| {
            if let Some(a) = self.values.get(i) {
                a.fetch_max(v, Ordering::Release);
            }
        };
        put(0, s.reloads_ok);
        put(1, s.reloads_failed);
        let per = stride(Reason::ALL.len(), BUCKETS.len());
        for (i, name) in self.names.iter().enumerate() {
            let Some(l) = s.listeners.get(name) else {
                continue;
            };
            let at = HEAD + i * per;
            let c = &l.counts;
            let fixed = [
                c.requests,
                c.dropped,
                c.done,
                c.failed,
                c.duration_ns,
                l.restarts,
            ];
            let refused = Reason::ALL.iter().map(|r| c.refused[r.index()]);
            let values = fixed.into_iter().chain(refused).chain(c.buckets);
            for (k, v) in values.enumerate() {
                put(at + k, v);
            }
        }
    }
}

/// The new daemon's side: the region an old daemon writes.
#[derive(Debug)]
pub struct CarryIn {
    values: SharedSlice<AtomicU64>,
    names: Vec<String>,
    /// Per carried reason: its index here, if this binary knows it.
    reasons: Vec<Option<usize>>,
    /// Whether the histogram bounds are this binary's.
    same_buckets: bool,
    buckets: usize,
}

impl CarryIn {
    /// Map the region handed over as `fd`. Err when it is not one.
    pub fn open(fd: OwnedFd) -> io::Result<CarryIn> {
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
        let file = File::from(fd);
        let mut len = [0u8; 8];
        file.read_exact_at(&mut len, 0)?;
        let len = u64::from_le_bytes(len);
        if len > 1 << 24 {
            return Err(bad("header too long"));
        }
        let mut text = vec![0u8; len as usize];
        file.read_exact_at(&mut text, 8)?;
        let text = String::from_utf8(text).map_err(|_| bad("header is not UTF-8"))?;
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(bad("not a sockhost-counts 1 region"));
        }
        let (mut reasons, mut bounds, mut names) = (Vec::new(), Vec::new(), Vec::new());
        for line in lines {
            match line.split_once(' ') {
                Some(("reasons", rest)) => {
                    reasons = rest.split(' ').map(reason_index).collect::<Vec<_>>();
                }
                Some(("buckets", rest)) => bounds = rest.split(' ').map(str::to_string).collect(),
                Some(("listener", name)) => names.push(name.to_string()),
                _ => return Err(bad("unexpected header line")),
            }
        }
        let ours: Vec<String> = BUCKETS.iter().map(f64::to_string).collect();
        let same_buckets = bounds == ours;
        if !same_buckets {
            tracing::warn!("upgrade: the old daemon's histogram bounds differ from this one's; sockhost_request_duration_seconds starts again from zero");
        }
        let unknown = reasons.iter().filter(|r| r.is_none()).count();
        if unknown > 0 {
            tracing::warn!("upgrade: {unknown} refusal reasons of the old daemon are unknown here; their counts are left out");
        }
        let offset = (8 + len).div_ceil(PAGE) * PAGE;
        let count = HEAD + names.len() * stride(reasons.len(), bounds.len());
        if file.metadata()?.len() < offset + 8 * count as u64 {
            return Err(bad("region shorter than its header says"));
        }
        let values = SharedSlice::map_fd(file.as_raw_fd(), offset, count)?;
        Ok(CarryIn {
            values,
            names,
            reasons,
            same_buckets,
            buckets: bounds.len(),
        })
    }

    /// What the old daemon has counted so far.
    pub fn read(&self) -> Snapshot {
        let get = |i: usize| self.values.get(i).map_or(0, |a| a.load(Ordering::Acquire));
        let per = stride(self.reasons.len(), self.buckets);
        let mut listeners = BTreeMap::new();
        for (i, name) in self.names.iter().enumerate() {
            let at = HEAD + i * per;
            let mut counts = Counts {
                requests: get(at),
                dropped: get(at + 1),
                done: get(at + 2),
                failed: get(at + 3),
                duration_ns: get(at + 4),
                ..Counts::default()
            };
            for (k, r) in self.reasons.iter().enumerate() {
                if let Some(r) = r {
                    counts.refused[*r] += get(at + FIXED + k);
                }
            }
            if self.same_buckets {
                let first = at + FIXED + self.reasons.len();
                for (k, b) in counts.buckets.iter_mut().enumerate() {
                    *b = get(first + k);
                }
            } else {
                counts.duration_ns = 0;
            }
            let restarts = get(at + 5);
            listeners.insert(name.clone(), Carried { counts, restarts });
        }
        Snapshot {
            listeners,
            reloads_ok: get(0),
            reloads_failed: get(1),
        }
    }
}

/// The index of the refusal reason labelled `label` in this binary.
fn reason_index(label: &str) -> Option<usize> {
    Reason::ALL
        .iter()
        .find(|r| r.label() == label)
        .map(|r| r.index())
        .filter(|&i| i < MAX_REASONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(requests: u64) -> Snapshot {
        let mut counts = Counts {
            requests,
            done: requests - 1,
            failed: 2,
            duration_ns: 7_000,
            dropped: 1,
            ..Counts::default()
        };
        counts.refused[Reason::Rate.index()] = 3;
        counts.buckets[0] = requests - 1;
        let mut listeners = BTreeMap::new();
        listeners.insert(
            "echo".to_string(),
            Carried {
                counts,
                restarts: 4,
            },
        );
        Snapshot {
            listeners,
            reloads_ok: 5,
            reloads_failed: 6,
        }
    }

    fn handed(out: &CarryOut) -> CarryIn {
        // SAFETY: dup of an fd this test holds open.
        let fd = unsafe { libc::fcntl(out.fd(), libc::F_DUPFD_CLOEXEC, 0) };
        assert!(fd >= 0);
        // SAFETY: the fresh duplicate is owned by nobody else.
        CarryIn::open(unsafe { OwnedFd::from_raw_fd(fd) }).expect("open")
    }

    #[test]
    fn what_the_old_daemon_writes_the_new_one_reads_as_it_changes() {
        let out = CarryOut::create(vec!["echo".into(), "gone".into()]).expect("create");
        out.write(&sample(10));
        let carried = handed(&out);
        let mut want = sample(10);
        want.listeners.insert("gone".into(), Carried::default());
        assert_eq!(carried.read(), want);
        out.write(&sample(20));
        assert_eq!(carried.read().listeners["echo"].counts.requests, 20);
        out.write(&sample(15));
        assert_eq!(
            carried.read().listeners["echo"].counts.requests,
            20,
            "never decreases"
        );
    }

    #[test]
    fn anything_but_a_region_is_refused() {
        // SAFETY: memfd_create with a static name.
        let fd = unsafe { libc::memfd_create(c"x".as_ptr(), libc::MFD_CLOEXEC) };
        // SAFETY: a fresh fd owned by nobody else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.write_all_at(&5u64.to_le_bytes(), 0).expect("write");
        file.write_all_at(b"hello", 8).expect("write");
        assert!(CarryIn::open(OwnedFd::from(file)).is_err());
    }
}
