//! The master's one poll loop: each turn waits for a signal, a worker's
//! report, an observer's client or the next timer, handles what came, and
//! moves every state in flight on (a generation starting, a reload, a
//! respawn, an upgrade). Never blocks anywhere but in its one poll.

use super::launch::{Launch, LaunchState};
use super::{relay, retire, Master};
use crate::os::poll::Interest;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::os::fd::RawFd;
use std::time::Instant;

impl Master {
    /// Run the loop until stopped and every worker is gone.
    pub(super) fn serve(&mut self) {
        while !(self.stop_deadline.is_some()
            && self.workers.is_empty()
            && self.dying.is_empty()
            && self.reload.idle()
            && self.respawn.idle()
            && !self.upgrade.in_flight())
        {
            self.turn();
        }
    }

    /// One turn of the loop: wait for a signal, a worker's report or the
    /// next timer, and handle what came.
    pub(super) fn turn(&mut self) {
        self.adopt_relays();
        let mut fds = vec![self.signals.fd()];
        fds.extend(self.launches().flat_map(Launch::fds));
        let upgrade_fd = self.upgrade.fd();
        fds.extend(upgrade_fd);
        let retiring = self.retiring_fds();
        // A retired worker's control socket is read for its STOPPED alone.
        let late: Vec<RawFd> = self
            .late_fds()
            .into_iter()
            .filter(|fd| !retiring.contains(fd))
            .collect();
        fds.extend(&retiring);
        fds.extend(&late);
        let ours = fds.len();
        let mut polled: Vec<(RawFd, Interest)> =
            fds.iter().map(|&fd| (fd, Interest::Read)).collect();
        self.observer_fds(&mut polled);
        let relays_at = polled.len();
        polled.extend(self.relays.iter().map(|r| (r.fd(), Interest::Read)));
        let timeout = self
            .next_timer()
            .map(|t| t.saturating_duration_since(Instant::now()));
        let ready = crate::os::poll::wait_events(&polled, timeout).unwrap_or_default();
        for (&fd, _) in fds.iter().zip(&ready).skip(1).filter(|(_, &r)| r) {
            if Some(fd) == upgrade_fd {
                self.upgrade_readable();
            } else if self.retiring_readable(fd) {
            } else if late.contains(&fd) {
                self.late_readable(fd);
            } else {
                self.launches_mut().for_each(|l| l.readable(fd));
            }
        }
        if ready.first().copied().unwrap_or(false) {
            for sig in self.signals.drain() {
                match sig {
                    Signal::SIGTERM | Signal::SIGINT => self.begin_stop(sig),
                    Signal::SIGHUP => self.request_reload(),
                    Signal::SIGUSR2 => self.request_upgrade(),
                    Signal::SIGCHLD => self.reap(),
                    // Starting workers too: SIGUSR1 waits, blocked,
                    // until a new worker's handler is in place.
                    Signal::SIGUSR1 => {
                        let starting = self.launches().flat_map(Launch::pids);
                        let pids: Vec<Pid> =
                            self.workers.iter().map(|w| w.pid).chain(starting).collect();
                        crate::os::logfile::reopen_in_master(pids)
                    }
                    _ => {}
                }
            }
        }
        self.serve_observers(ready.get(ours..relays_at).unwrap_or_default());
        let relays_ready = ready.get(relays_at..).unwrap_or_default().to_vec();
        self.read_relays(&relays_ready);
        self.expire_observers();
        self.run_timers();
        self.advance();
        self.update_carry();
    }

    /// Take the relays of workers forked since the last turn.
    fn adopt_relays(&mut self) {
        let mut new = Vec::new();
        new.extend(self.workers.iter_mut().filter_map(|w| w.relay.take()));
        for l in self.launches_mut() {
            new.extend(l.take_relays());
        }
        self.relays.extend(new);
    }

    /// Read the relays that are readable (`ready`, in `self.relays`
    /// order); drop those whose writers are all gone.
    fn read_relays(&mut self, ready: &[bool]) {
        let mut i = 0;
        self.relays.retain_mut(|r| {
            let keep = !ready.get(i).copied().unwrap_or(false) || r.readable();
            i += 1;
            keep
        });
    }

    /// Every launch in flight: the first generation, a reload's, respawns.
    pub(super) fn launches(&self) -> impl Iterator<Item = &Launch> {
        self.starting
            .iter()
            .chain(self.reload.launch())
            .chain(self.respawn.launches())
    }

    pub(super) fn launches_mut(&mut self) -> impl Iterator<Item = &mut Launch> {
        self.starting
            .iter_mut()
            .chain(self.reload.launch_mut())
            .chain(self.respawn.launches_mut())
    }

    /// Act on launches that finished, one way or the other.
    pub(super) fn advance(&mut self) {
        self.advance_start();
        self.advance_reload();
        self.advance_respawns();
        self.advance_upgrade();
    }

    pub(super) fn next_timer(&self) -> Option<Instant> {
        // A launch already decided (an empty one: a reload that changes no
        // listener) is acted on in the next turn, at once: nothing else
        // may come to wake the loop.
        let decided = self
            .launches()
            .any(|l| !matches!(l.state(), LaunchState::Pending))
            .then(Instant::now);
        let launches = self
            .launches()
            .map(Launch::deadline)
            .chain(self.upgrade.deadline())
            .chain(self.reload.retiring().map(retire::Retiring::deadline))
            .min();
        let respawn = self
            .respawn
            .next_due()
            .filter(|_| self.stop_deadline.is_none());
        [
            decided,
            launches,
            respawn,
            self.stop_deadline,
            self.notifier.watchdog_due(),
            self.observers_due(),
            self.relays.iter().filter_map(relay::Relay::due).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(super) fn run_timers(&mut self) {
        self.notifier.watchdog_tick();
        let now = Instant::now();
        self.relays.iter_mut().for_each(|r| r.tick(now));
        self.launches_mut().for_each(|l| l.tick(now));
        if let Some(deadline) = self.stop_deadline {
            if now >= deadline && !self.workers.is_empty() {
                tracing::warn!(
                    "{} workers still running at the stop deadline; killing them",
                    self.workers.len()
                );
                self.kill_all();
            }
            return;
        }
        self.start_due_respawns(now);
    }
}
