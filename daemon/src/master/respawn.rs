//! Crash respawn: a worker that died while serving is replaced, its socket
//! staying open in the master meanwhile so the kernel queues connections.
//!
//! A slot (listener, worker index) that keeps crashing soon after start
//! backs off exponentially (100 ms doubling to 30 s; the count resets once
//! a worker lived `HEALTHY_AFTER`); from the third crash in a row the log
//! says "crash-loop back-off". The replacement is a one-worker
//! [`Launch`]: the master keeps serving signals while its plugin loads, and
//! a replacement that fails or times out is itself retried with back-off.

use super::launch::{Launch, LaunchState};
use super::Master;
use crate::os::backoff::Backoff;
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// The respawn back-off.
const RESPAWN: Backoff = Backoff {
    first: Duration::from_millis(100),
    cap: Duration::from_secs(30),
};
/// How long a worker must live for its slot's crash count to reset.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);

/// A worker slot to restart after a crash.
#[derive(Debug, Clone)]
struct Slot {
    listener: String,
    index: usize,
}

/// Scheduled and running respawns, and each slot's crash count.
#[derive(Default)]
pub(super) struct Respawns {
    scheduled: Vec<(Instant, Slot)>,
    running: Vec<(Slot, Launch)>,
    crashes: HashMap<(String, usize), u32>,
}

impl Respawns {
    /// Nothing scheduled or starting.
    pub fn idle(&self) -> bool {
        self.scheduled.is_empty() && self.running.is_empty()
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.scheduled.iter().map(|(at, _)| *at).min()
    }

    pub fn launches(&self) -> impl Iterator<Item = &Launch> {
        self.running.iter().map(|(_, l)| l)
    }

    pub fn launches_mut(&mut self) -> impl Iterator<Item = &mut Launch> {
        self.running.iter_mut().map(|(_, l)| l)
    }
}

impl Master {
    /// Back off exponentially while a slot keeps crashing (or, `clean`,
    /// stopping on its own) soon after start.
    pub(super) fn schedule_respawn(
        &mut self,
        name: String,
        index: usize,
        started: Instant,
        what: &str,
        clean: bool,
    ) {
        let key = (name.clone(), index);
        let count = match self.respawn.crashes.get(&key) {
            Some(c) if started.elapsed() < HEALTHY_AFTER => c + 1,
            _ => 1,
        };
        self.respawn.crashes.insert(key, count);
        let delay = RESPAWN.delay(count);
        if clean {
            tracing::info!(listener = %name, "{what}; restarting in {delay:?}");
        } else if count >= 3 {
            tracing::error!(listener = %name, "{what}; {count} crashes in a row, restarting in {delay:?} (crash-loop back-off)");
        } else {
            tracing::error!(listener = %name, "{what}; restarting in {delay:?}");
        }
        let slot = Slot {
            listener: name,
            index,
        };
        self.respawn.scheduled.push((Instant::now() + delay, slot));
    }

    /// Fork the replacements whose back-off has passed.
    pub(super) fn start_due_respawns(&mut self, now: Instant) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.respawn.scheduled)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.respawn.scheduled = later;
        for (_, slot) in due {
            self.start_respawn(slot);
        }
    }

    fn start_respawn(&mut self, slot: Slot) {
        let config = self.config.clone();
        let Some(l) = config.listeners.iter().find(|l| l.name == slot.listener) else {
            return;
        };
        let socket = self.sockets.get(&l.name);
        let own = socket.map_or(-1, |s| s.as_raw_fd());
        let close = self.fds_to_close(&HashMap::new(), own);
        let gen = self.generation;
        match super::spawn::spawn(&config, l, slot.index, socket, gen, close, false) {
            Ok(w) => {
                let launch = Launch::new(vec![w], config.daemon.start_timeout);
                self.respawn.running.push((slot, launch));
            }
            Err(e) => {
                let what = format!("restart failed: cannot fork: {e}");
                self.schedule_respawn(slot.listener, slot.index, Instant::now(), &what, false);
            }
        }
    }

    /// Let ready replacements serve; retry failed ones with back-off.
    pub(super) fn advance_respawns(&mut self) {
        let running = std::mem::take(&mut self.respawn.running);
        for (slot, launch) in running {
            match launch.state() {
                LaunchState::Pending => self.respawn.running.push((slot, launch)),
                LaunchState::Ready => {
                    let workers = launch.into_workers();
                    for w in &workers {
                        tracing::info!(listener = %w.listener, "worker {} restarted", w.pid);
                        self.obs.worker_restarted(&w.listener);
                    }
                    self.go(workers);
                }
                LaunchState::Failed(why) => {
                    self.dying.extend(launch.abort());
                    let what = format!("restart failed: {why}");
                    self.schedule_respawn(slot.listener, slot.index, Instant::now(), &what, false);
                }
            }
        }
    }

    /// Drop scheduled and running respawns of `listeners` (all when None):
    /// on stop, or when a reload replaces those listeners.
    pub(super) fn cancel_respawns(&mut self, listeners: Option<&[String]>) {
        let hit = |name: &str| listeners.is_none_or(|n| n.iter().any(|x| x == name));
        self.respawn.scheduled.retain(|(_, s)| !hit(&s.listener));
        let running = std::mem::take(&mut self.respawn.running);
        for (slot, launch) in running {
            if hit(&slot.listener) {
                self.dying.extend(launch.abort());
            } else {
                self.respawn.running.push((slot, launch));
            }
        }
    }
}
