//! How operators see inside the master: the metrics endpoint (`[daemon]
//! metrics`, HTTP `GET /metrics`), the control socket, and the totals both
//! show; and the few places the master's loop calls them.
//!
//! The master's loop calls, and nothing else here is called from it:
//! - [`Master::observer_fds`] while building its poll set, and
//!   [`Master::serve_observers`] with those fds' readiness;
//! - [`Master::observers_due`] for its poll timeout and
//!   [`Master::expire_observers`] on every turn;
//! - [`Observe::reload_started`] where a reload starts and
//!   [`Observe::reload_finished`] where its outcome is known (a reload is
//!   asynchronous: see `reload`); [`Observe::wants_reload`] says a client
//!   waits for one, and `serve_observers` then asks for a reload as SIGHUP
//!   does;
//! - [`Observe::worker_exited`] when it reaps a worker, and
//!   [`Observe::worker_restarted`] when a crashed one is back;
//! - [`Observe::fds`] for the fds a new worker must close;
//! - [`Observe::begin_carry`] when a binary upgrade starts,
//!   [`Master::update_carry`] on every turn while one is in flight or
//!   handed over, [`Observe::end_carry`] when it failed (see `carry`).
//!
//! Across a binary upgrade exactly one daemon answers scrapes at a time,
//! so a scraper never sees a counter go back: the old one stops accepting
//! scrapes when the upgrade starts (again if it fails), the new one
//! accepts once its first generation serves, with the old one's counts
//! added.
//!
//! Promises: the master never blocks here; a scraper gets at most one
//! answer and is closed; a slow or hostile one is closed at its deadline
//! (see `conn`); a bind failure at start is an error that names the
//! address (the control socket's default path is the exception: see
//! `control`).

use crate::config::Config;
use crate::master::carry::{CarryIn, CarryOut, COUNTS_FD};
use crate::master::conn::{Endpoint, Limits};
use crate::master::control::{self, Ask, Control};
use crate::master::metrics::{self, Totals};
use crate::master::spawn::Worker;
use crate::master::status::{ListenerStatus, ReloadRecord, Status};
use crate::master::Master;
use crate::os::poll::Interest;
use crate::os::transport;
use std::collections::HashMap;
use std::io;
use std::net::TcpListener;
use std::os::fd::{OwnedFd, RawFd};
use std::time::{Instant, SystemTime};

/// Split the sockets handed over at start into the upgrade's own (named
/// `@...`, by fd name) and the listeners' (for `match_inherited`).
pub fn split_handed(
    all: Vec<(socket2::Socket, String)>,
) -> (HashMap<String, OwnedFd>, Vec<(socket2::Socket, String)>) {
    let (ours, listeners): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|(_, name)| name.starts_with('@'));
    let ours = ours
        .into_iter()
        .map(|(s, name)| (name, OwnedFd::from(s)))
        .collect();
    (ours, listeners)
}

/// The names a binary upgrade hands the metrics and control listening
/// sockets over by (`LISTEN_FDNAMES`; no listener name has an `@`).
pub const METRICS_FD: &str = "@metrics";
pub const CONTROL_FD: &str = "@control";

const SCRAPE_LIMITS: Limits = Limits {
    max_request: 8192,
    timeout: std::time::Duration::from_secs(5),
    max_clients: 16,
};

/// The master's observation state.
pub struct Observe {
    pub totals: Totals,
    scrape: Option<Endpoint<TcpListener>>,
    control: Option<Control>,
    /// How many fds of the last poll set are ours: (scrape, control).
    polled: (usize, usize),
    /// The counts handed to an upgrade's new daemon, while it runs.
    carry: Option<CarryOut>,
}

/// The outcome of one reload, as the master reports it.
pub type ReloadOutcome = Result<String, String>;

impl Observe {
    /// Bind the metrics address and the control socket (before privileges
    /// are dropped). Err names what failed.
    /// `handed` holds the listening sockets a binary upgrade's old daemon
    /// passed on (`@metrics`, `@control`): used instead of binding anew
    /// when they are bound where the config says.
    pub fn open(config: &Config, handed: &mut HashMap<String, OwnedFd>) -> io::Result<Observe> {
        let scrape = match config.daemon.metrics {
            None => None,
            Some(addr) => {
                let taken = handed
                    .remove(METRICS_FD)
                    .map(TcpListener::from)
                    .filter(|l| {
                        l.local_addr()
                            .is_ok_and(|a| a == addr || (addr.port() == 0 && a.ip() == addr.ip()))
                    });
                let upgraded = taken.is_some();
                let l = match taken {
                    Some(l) => l,
                    None => TcpListener::bind(addr).map_err(|e| {
                        io::Error::new(e.kind(), format!("[daemon] metrics {addr}: {e}"))
                    })?,
                };
                l.set_nonblocking(true)?;
                let at = l.local_addr()?;
                tracing::info!("metrics on http://{at}/metrics");
                let mut e = Endpoint::new(l, SCRAPE_LIMITS);
                if upgraded {
                    e.stop_accepting(); // until this daemon serves
                }
                Some(e)
            }
        };
        let control = control::open(&config.daemon, handed.remove(CONTROL_FD))?;
        if let Some(c) = &control {
            tracing::info!("control socket {}", c.path().display());
        }
        let mut totals = Totals::default();
        config.listeners.iter().for_each(|l| totals.know(&l.name));
        totals.carried = handed
            .remove(COUNTS_FD)
            .and_then(|fd| match CarryIn::open(fd) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!("upgrade: the old daemon's counts are unreadable ({e}); counters start from zero");
                    None
                }
            });
        Ok(Observe {
            totals,
            scrape,
            control,
            polled: (0, 0),
            carry: None,
        })
    }

    /// The listening sockets a binary upgrade hands to the new daemon,
    /// with the names it knows them by.
    pub fn handover_fds(&self) -> Vec<(String, RawFd)> {
        let mut out = Vec::new();
        if let Some(s) = &self.scrape {
            out.push((METRICS_FD.to_string(), s.listener_fd()));
        }
        if let Some(c) = &self.control {
            out.push((CONTROL_FD.to_string(), c.listening_fd()));
        }
        out
    }

    /// The new daemon of an upgrade serves: it accepts scrapes and control
    /// clients from now on (those open here are still answered).
    pub fn handed_over(&mut self) {
        if let Some(s) = &mut self.scrape {
            s.stop_accepting();
        }
        if let Some(c) = &mut self.control {
            c.handed_over();
        }
    }

    /// A binary upgrade starts: stop answering scrapes (the new daemon
    /// will, with these counts) and make the region that carries them.
    /// Returns the fd to hand over (None: the counts are not carried).
    pub fn begin_carry(&mut self, snapshot: &crate::master::carry::Snapshot) -> Option<RawFd> {
        if let Some(s) = &mut self.scrape {
            s.stop_accepting();
        }
        let names = snapshot.listeners.keys().cloned().collect();
        match CarryOut::create(names) {
            Ok(out) => {
                out.write(snapshot);
                let fd = out.fd();
                self.carry = Some(out);
                Some(fd)
            }
            Err(e) => {
                tracing::warn!("upgrade: cannot hand the counters over ({e}); the new daemon's start from zero");
                None
            }
        }
    }

    /// The upgrade failed: this daemon answers scrapes again.
    pub fn end_carry(&mut self) {
        self.carry = None;
        if let Some(s) = &mut self.scrape {
            s.resume_accepting();
        }
    }

    /// The first generation serves: what was taken over is this daemon's.
    pub fn started(&mut self) {
        if let Some(s) = &mut self.scrape {
            s.resume_accepting();
        }
        if let Some(c) = &mut self.control {
            c.own_file();
        }
    }

    /// Whether a `sockhostctl upgrade` waits.
    pub fn wants_upgrade(&self) -> bool {
        self.control.as_ref().is_some_and(Control::wants_upgrade)
    }

    /// A binary upgrade ended: tell whoever waits for it.
    pub fn upgrade_finished(&mut self, ok: bool, message: &str) {
        if let Some(c) = &mut self.control {
            c.upgrade_finished(ok, message);
        }
    }

    /// Every fd held here (a forked worker closes them).
    pub fn fds(&self) -> Vec<RawFd> {
        let mut out = Vec::new();
        if let Some(s) = &self.scrape {
            s.fds(&mut out);
        }
        if let Some(c) = &self.control {
            c.fds(&mut out);
        }
        // The counts memfd handed to an upgrade's new daemon.
        out.extend(self.carry.as_ref().map(CarryOut::fd));
        out
    }

    /// A worker was reaped: its counts join the totals.
    pub fn worker_exited(&mut self, w: &Worker) {
        if let Some(block) = &w.stats {
            self.totals.worker_exited(&w.listener, &block[0]);
        }
    }

    /// A crashed worker of `listener` serves again.
    pub fn worker_restarted(&mut self, listener: &str) {
        self.totals.worker_restarted(listener);
    }

    /// Whether a `sockhostctl reload` waits for a reload to start.
    pub fn wants_reload(&self) -> bool {
        self.control.as_ref().is_some_and(Control::wants_reload)
    }

    /// A reload starts now (for any reason): the clients waiting for one
    /// will get its outcome.
    pub fn reload_started(&mut self) {
        if let Some(c) = &mut self.control {
            c.reload_started();
        }
    }

    /// The reload that started last is over, with `outcome`; `listeners`
    /// are the names now configured (their series exist from now on).
    pub fn reload_finished(&mut self, outcome: &ReloadOutcome, listeners: &[String]) {
        let record = ReloadRecord {
            at: SystemTime::now(),
            ok: outcome.is_ok(),
            message: match outcome {
                Ok(line) | Err(line) => line.clone(),
            },
        };
        if record.ok {
            self.totals.reloads_ok += 1;
        } else {
            self.totals.reloads_failed += 1;
        }
        listeners.iter().for_each(|l| self.totals.know(l));
        if let Some(c) = &mut self.control {
            c.reload_finished(&record);
        }
    }
}

/// A whole HTTP request head.
fn head_complete(input: &[u8]) -> bool {
    input.windows(4).any(|w| w == b"\r\n\r\n") || input.windows(2).any(|w| w == b"\n\n")
}

/// The answer to one HTTP request head; `body` makes the metrics text.
fn http_answer(head: &[u8], body: &mut dyn FnMut() -> String) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, text) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body())
        }
        ("GET" | "HEAD", _) => ("404 Not Found", "text/plain", "try /metrics\n".into()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET /metrics only\n".into(),
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        text.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(text.as_bytes());
    }
    out
}

impl Master {
    /// Append the observers' fds to the poll set.
    pub(crate) fn observer_fds(&mut self, out: &mut Vec<(RawFd, Interest)>) {
        let start = out.len();
        if let Some(s) = &mut self.obs.scrape {
            s.poll_fds(out);
        }
        let mid = out.len();
        if let Some(c) = &mut self.obs.control {
            c.poll_fds(out);
        }
        self.obs.polled = (mid - start, out.len() - mid);
    }

    /// Handle the readiness of the fds [`Master::observer_fds`] added.
    pub(crate) fn serve_observers(&mut self, ready: &[bool]) {
        let (n_scrape, n_control) = self.obs.polled;
        let (scrape_ready, rest) = ready.split_at(n_scrape.min(ready.len()));
        let control_ready = &rest[..n_control.min(rest.len())];
        if let Some(mut s) = self.obs.scrape.take() {
            let whole = s.on_ready(scrape_ready, head_complete);
            let mut text: Option<String> = None;
            for id in whole {
                let head = s.conn(id).map(|c| c.input.clone()).unwrap_or_default();
                let answer = http_answer(&head, &mut || {
                    text.get_or_insert_with(|| self.metrics_text()).clone()
                });
                s.answer(id, answer);
            }
            self.obs.scrape = Some(s);
        }
        if let Some(mut c) = self.obs.control.take() {
            for (id, ask) in c.on_ready(control_ready) {
                match ask {
                    Ask::Status { json } => {
                        let mut status = self.status();
                        status.last_reload = c.last_reload.clone();
                        let text = if json { status.json() } else { status.text() };
                        c.answer(id, 0, &text);
                    }
                }
            }
            if self.stopping() {
                c.refuse_reloads("the daemon is stopping; not reloading");
            }
            self.obs.control = Some(c);
        }
        if self.obs.wants_reload() && !self.stopping() {
            self.request_reload();
        }
        if self.obs.wants_upgrade() && !self.upgrade_in_flight() {
            self.request_upgrade();
        }
    }

    /// The earliest deadline of an observer's client.
    pub(crate) fn observers_due(&self) -> Option<Instant> {
        let s = self.obs.scrape.as_ref().and_then(Endpoint::next_deadline);
        let c = self.obs.control.as_ref().and_then(Control::next_deadline);
        [s, c].into_iter().flatten().min()
    }

    /// Close observers' clients past their deadline.
    pub(crate) fn expire_observers(&mut self) {
        let now = Instant::now();
        if let Some(s) = &mut self.obs.scrape {
            s.expire(now);
        }
        if let Some(c) = &mut self.obs.control {
            c.expire(now);
        }
    }

    /// Every worker's live counters, by listener name.
    fn live_stats(&self) -> impl Iterator<Item = (&str, &crate::os::stats::WorkerStats)> {
        self.workers
            .iter()
            .filter_map(|w| w.stats.as_ref().map(|s| (w.listener.as_str(), &s[0])))
    }

    /// What to hand an upgrade's new daemon now.
    pub(crate) fn carry_snapshot(&self) -> crate::master::carry::Snapshot {
        self.obs.totals.snapshot(self.live_stats())
    }

    /// While an upgrade runs or after it handed over: bring the carried
    /// counts up to date (end of every turn, so also after the last reap).
    pub(crate) fn update_carry(&self) {
        if let Some(out) = &self.obs.carry {
            out.write(&self.carry_snapshot());
        }
    }

    /// The metrics text now.
    fn metrics_text(&self) -> String {
        let listeners = self.obs.totals.view(self.live_stats());
        metrics::render(&metrics::Scrape {
            listeners: &listeners,
            totals: &self.obs.totals,
            generation: self.generation,
        })
    }

    /// The status now (without the last reload, which `Control` keeps).
    fn status(&self) -> Status {
        let views = self.obs.totals.view(self.live_stats());
        let listeners = self
            .config
            .listeners
            .iter()
            .map(|l| {
                let v = views.get(&l.name).cloned().unwrap_or_default();
                ListenerStatus {
                    name: l.name.clone(),
                    address: self
                        .sockets
                        .get(&l.name)
                        .map(transport::local_description)
                        .unwrap_or_else(|| l.address.to_string()),
                    family: l.family.as_str(),
                    socktype: l.socktype.as_str(),
                    mixin: l.mixin.as_str(),
                    pids: self
                        .workers
                        .iter()
                        .filter(|w| w.listener == l.name && !w.draining)
                        .map(|w| w.pid.as_raw())
                        .collect(),
                    active: v.active,
                    requests: v.counts.requests,
                    failed: v.counts.failed,
                }
            })
            .collect();
        Status {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION"),
            generation: self.generation,
            started: self.obs.totals.started_at,
            last_reload: None,
            listeners,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_heads_get_metrics_404_or_405() {
        let mut body = || "m 1\n".to_string();
        let ok = http_answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &mut body);
        let ok = String::from_utf8_lossy(&ok);
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("version=0.0.4"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nm 1\n"), "{ok}");
        let head = http_answer(b"HEAD /metrics HTTP/1.1\r\n\r\n", &mut body);
        assert!(String::from_utf8_lossy(&head)
            .ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"));
        let nf = http_answer(b"GET / HTTP/1.1\r\n\r\n", &mut body);
        assert!(nf.starts_with(b"HTTP/1.1 404 "));
        let na = http_answer(b"POST /metrics HTTP/1.1\r\n\r\n", &mut body);
        assert!(na.starts_with(b"HTTP/1.1 405 "));
        assert!(head_complete(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(!head_complete(b"GET / HTTP/1.0\r\n"));
    }
}
