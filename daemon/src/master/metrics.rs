//! The master's counts: the final counters of every worker that exited,
//! folded into per-listener totals, plus what only the master knows
//! (restarts, reloads); and the Prometheus text exposition (format 0.0.4)
//! of those totals with the live workers' blocks added.
//!
//! After a binary upgrade the old daemon's counts are added to every
//! series (`carry`), so counters go on growing across it.
//!
//! Promises: a counter never decreases while the daemon runs: `requests`
//! is held at the highest value shown (a request the plugin refused from
//! inside is taken back from its worker's count once it ends); a worker's
//! counts move from its live block into the totals exactly once, when the
//! master reaps it (requests it still had in flight count as failed), and a
//! listener removed by a reload keeps its totals (and its series). The
//! exposition is plain text written here: the metric set is fixed, and the
//! values are sums the master computes from shared memory at scrape time,
//! which a registry of its own atomics (the prometheus-client crate) would
//! only copy. Never blocks and never touches a worker.

use crate::os::stats::{Counts, WorkerStats, BUCKETS};
use crate::worker::gate::Reason;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

/// What the master keeps per listener name.
#[derive(Clone, Debug, Default)]
struct Retired {
    counts: Counts,
    restarts: u64,
}

/// Totals that outlive workers.
#[derive(Debug)]
pub struct Totals {
    listeners: BTreeMap<String, Retired>,
    /// The highest `requests` each listener has shown: a request the
    /// plugin refuses from inside (`refuse_request`) is taken back from
    /// its worker's count, which must not make the counter step back.
    shown: RefCell<BTreeMap<String, u64>>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    pub started_at: SystemTime,
    /// What the daemon this one replaced (binary upgrade) counted.
    pub carried: Option<crate::master::carry::CarryIn>,
}

/// One listener's numbers at a scrape: totals plus live workers.
#[derive(Clone, Debug, Default)]
pub struct ListenerView {
    pub counts: Counts,
    /// Requests in flight in live workers.
    pub active: u64,
    pub workers: u64,
    pub restarts: u64,
}

impl Default for Totals {
    fn default() -> Totals {
        Totals {
            listeners: BTreeMap::new(),
            shown: RefCell::new(BTreeMap::new()),
            reloads_ok: 0,
            reloads_failed: 0,
            started_at: SystemTime::now(),
            carried: None,
        }
    }
}

impl Totals {
    /// A worker of `listener` was reaped: fold its final counts.
    pub fn worker_exited(&mut self, listener: &str, stats: &WorkerStats) {
        let last = stats.snapshot().retired();
        self.entry(listener).counts.add(&last);
    }

    /// A crashed worker of `listener` was started again.
    pub fn worker_restarted(&mut self, listener: &str) {
        self.entry(listener).restarts += 1;
    }

    /// Reloads (ok, failed), with those of the daemon this one replaced.
    pub fn reloads(&self) -> (u64, u64) {
        let c = self.carried.as_ref().map(|c| c.read()).unwrap_or_default();
        (
            self.reloads_ok + c.reloads_ok,
            self.reloads_failed + c.reloads_failed,
        )
    }

    /// What to hand on to a new daemon: every listener's view (`live`
    /// blocks included) and the reloads.
    pub fn snapshot<'a>(
        &self,
        live: impl IntoIterator<Item = (&'a str, &'a WorkerStats)>,
    ) -> crate::master::carry::Snapshot {
        let (reloads_ok, reloads_failed) = self.reloads();
        let listeners = self
            .view(live)
            .into_iter()
            .map(|(name, v)| {
                let c = crate::master::carry::Carried {
                    counts: v.counts,
                    restarts: v.restarts,
                };
                (name, c)
            })
            .collect();
        crate::master::carry::Snapshot {
            listeners,
            reloads_ok,
            reloads_failed,
        }
    }

    /// Make `listener` known (so its series exist from the start).
    pub fn know(&mut self, listener: &str) {
        self.entry(listener);
    }

    fn entry(&mut self, listener: &str) -> &mut Retired {
        self.listeners.entry(listener.to_string()).or_default()
    }

    /// Every listener ever known, with its totals plus `live` blocks:
    /// (listener name, block) pairs of the running workers.
    pub fn view<'a>(
        &self,
        live: impl IntoIterator<Item = (&'a str, &'a WorkerStats)>,
    ) -> BTreeMap<String, ListenerView> {
        let mut out: BTreeMap<String, ListenerView> = self
            .listeners
            .iter()
            .map(|(name, r)| {
                let v = ListenerView {
                    counts: r.counts.clone(),
                    restarts: r.restarts,
                    ..ListenerView::default()
                };
                (name.clone(), v)
            })
            .collect();
        let carried = self.carried.as_ref().map(|c| c.read()).unwrap_or_default();
        for (name, c) in carried.listeners {
            let v = out.entry(name).or_default();
            v.active += c.counts.active();
            v.counts.add(&c.counts);
            v.restarts += c.restarts;
        }
        for (name, stats) in live {
            let now = stats.snapshot();
            let v = out.entry(name.to_string()).or_default();
            v.active += now.active();
            v.workers += 1;
            v.counts.add(&now);
        }
        let mut shown = self.shown.borrow_mut();
        for (name, v) in out.iter_mut() {
            let high = shown.entry(name.clone()).or_default();
            *high = (*high).max(v.counts.requests);
            v.counts.requests = *high;
        }
        out
    }
}

/// Everything one scrape shows.
pub struct Scrape<'a> {
    pub listeners: &'a BTreeMap<String, ListenerView>,
    pub totals: &'a Totals,
    pub generation: u64,
}

/// A label value in the exposition's quoting.
fn quoted(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The text exposition of `s`.
pub fn render(s: &Scrape<'_>) -> String {
    let mut out = String::with_capacity(4096);
    let mut family = |name: &str, kind: &str, help: &str, rows: &mut dyn FnMut(&mut String)| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        rows(&mut out);
    };
    let per_listener = |f: fn(&ListenerView) -> u64, name: &'static str| {
        move |o: &mut String| {
            for (l, v) in s.listeners {
                let _ = writeln!(o, "{name}{{listener={}}} {}", quoted(l), f(v));
            }
        }
    };
    family(
        "sockhost_requests_total",
        "counter",
        "Requests dispatched to the plugin (stream: accepted connections; dgram: datagrams).",
        &mut per_listener(|v| v.counts.requests, "sockhost_requests_total"),
    );
    family(
        "sockhost_requests_failed_total",
        "counter",
        "Requests whose setup, handle or finish failed or panicked, or whose process died.",
        &mut per_listener(|v| v.counts.failed, "sockhost_requests_failed_total"),
    );
    family(
        "sockhost_requests_refused_total",
        "counter",
        "Requests refused before dispatch, by reason.",
        &mut |o: &mut String| {
            for (l, v) in s.listeners {
                for r in Reason::ALL {
                    let n = v.counts.refused.get(r.index()).copied().unwrap_or(0);
                    let (l, r) = (quoted(l), quoted(r.label()));
                    let _ = writeln!(
                        o,
                        "sockhost_requests_refused_total{{listener={l},reason={r}}} {n}"
                    );
                }
            }
        },
    );
    family(
        "sockhost_requests_active",
        "gauge",
        "Requests being handled now.",
        &mut per_listener(|v| v.active, "sockhost_requests_active"),
    );
    family(
        "sockhost_request_duration_seconds",
        "histogram",
        "Time from dispatch to the end of the handler's finish.",
        &mut |o: &mut String| histogram(o, s.listeners),
    );
    family(
        "sockhost_datagrams_dropped_total",
        "counter",
        "Datagrams dropped for being longer than max_packet_size.",
        &mut per_listener(|v| v.counts.dropped, "sockhost_datagrams_dropped_total"),
    );
    family(
        "sockhost_workers",
        "gauge",
        "Worker processes running (all generations).",
        &mut per_listener(|v| v.workers, "sockhost_workers"),
    );
    family(
        "sockhost_worker_restarts_total",
        "counter",
        "Workers started again after they crashed.",
        &mut per_listener(|v| v.restarts, "sockhost_worker_restarts_total"),
    );
    let t = s.totals;
    let (ok, failed) = t.reloads();
    family(
        "sockhost_reloads_total",
        "counter",
        "Reloads, by result (failed: rolled back).",
        &mut |o: &mut String| {
            let _ = writeln!(o, "sockhost_reloads_total{{result=\"ok\"}} {ok}");
            let _ = writeln!(o, "sockhost_reloads_total{{result=\"failed\"}} {failed}");
        },
    );
    family(
        "sockhost_generation",
        "gauge",
        "The generation now serving (1 at start, one more per reload that started workers).",
        &mut |o: &mut String| {
            let _ = writeln!(o, "sockhost_generation {}", s.generation);
        },
    );
    family(
        "sockhost_build_info",
        "gauge",
        "Always 1; the version is the label.",
        &mut |o: &mut String| {
            let v = quoted(env!("CARGO_PKG_VERSION"));
            let _ = writeln!(o, "sockhost_build_info{{version={v}}} 1");
        },
    );
    family(
        "sockhost_start_time_seconds",
        "gauge",
        "When the daemon started, in seconds since the Unix epoch.",
        &mut |o: &mut String| {
            let _ = writeln!(
                o,
                "sockhost_start_time_seconds {:.3}",
                seconds(t.started_at)
            );
        },
    );
    out
}

fn histogram(o: &mut String, listeners: &BTreeMap<String, ListenerView>) {
    let name = "sockhost_request_duration_seconds";
    for (l, v) in listeners {
        let l = quoted(l);
        let mut below = 0u64;
        for (i, n) in v.counts.buckets.iter().enumerate() {
            below += n;
            let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(o, "{name}_bucket{{listener={l},le=\"{le}\"}} {below}");
        }
        let sum = v.counts.duration_ns as f64 / 1e9;
        let _ = writeln!(o, "{name}_sum{{listener={l}}} {sum}");
        let _ = writeln!(o, "{name}_count{{listener={l}}} {below}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects: a request the plugin refused from inside is taken back
    /// from its worker's count, and the counter shown never steps back.
    #[test]
    fn requests_never_step_back_when_one_is_taken_back() {
        use crate::os::stats::Meter;
        let totals = Totals::default();
        let meter = Meter::leak(WorkerStats::map().expect("map a block"));
        let stats = meter.stats().expect("a block");
        let shown = |t: &Totals| t.view([("echo", stats)])["echo"].counts.requests;
        meter.dispatched();
        meter.dispatched();
        assert_eq!(shown(&totals), 2);
        meter.withdrawn(Reason::Plugin.index());
        assert_eq!(stats.snapshot().requests, 1);
        assert_eq!(shown(&totals), 2);
        assert_eq!(stats.snapshot().refused[Reason::Plugin.index()], 1);
        meter.dispatched();
        meter.dispatched();
        assert_eq!(shown(&totals), 3);
    }

    #[test]
    fn label_values_are_quoted() {
        assert_eq!(quoted("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }

    #[test]
    fn the_exposition_has_every_family_and_cumulative_buckets() {
        let mut counts = Counts {
            requests: 3,
            done: 3,
            failed: 1,
            duration_ns: 1_500_000_000,
            ..Counts::default()
        };
        counts.buckets[0] = 1;
        counts.buckets[BUCKETS.len()] = 2;
        counts.refused[Reason::Rate.index()] = 4;
        let mut listeners = BTreeMap::new();
        let view = ListenerView {
            counts,
            workers: 2,
            restarts: 1,
            ..ListenerView::default()
        };
        listeners.insert("echo".to_string(), view);
        let totals = Totals::default();
        let text = render(&Scrape {
            listeners: &listeners,
            totals: &totals,
            generation: 7,
        });
        for line in [
            "sockhost_requests_total{listener=\"echo\"} 3",
            "sockhost_requests_failed_total{listener=\"echo\"} 1",
            "sockhost_requests_refused_total{listener=\"echo\",reason=\"rate_limit\"} 4",
            "sockhost_requests_refused_total{listener=\"echo\",reason=\"deny\"} 0",
            "sockhost_requests_active{listener=\"echo\"} 0",
            "sockhost_request_duration_seconds_bucket{listener=\"echo\",le=\"0.0001\"} 1",
            "sockhost_request_duration_seconds_bucket{listener=\"echo\",le=\"10\"} 1",
            "sockhost_request_duration_seconds_bucket{listener=\"echo\",le=\"+Inf\"} 3",
            "sockhost_request_duration_seconds_sum{listener=\"echo\"} 1.5",
            "sockhost_request_duration_seconds_count{listener=\"echo\"} 3",
            "sockhost_workers{listener=\"echo\"} 2",
            "sockhost_worker_restarts_total{listener=\"echo\"} 1",
            "sockhost_reloads_total{result=\"ok\"} 0",
            "sockhost_reloads_total{result=\"failed\"} 0",
            "sockhost_generation 7",
            "# TYPE sockhost_request_duration_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in:\n{text}"
            );
        }
        assert!(text.contains("sockhost_build_info{version=\""));
        assert!(text.contains("sockhost_start_time_seconds "));
    }
}
