//! How the master's children end and how the master stops: graceful stop
//! (SIGTERM/SIGINT drains every worker, a second signal kills them),
//! reaping (a serving worker that crashed is respawned, a starting one
//! fails its launch, a killed one is forgotten), and removing the unix
//! socket files the daemon owns on exit.
//!
//! Promises: nothing here waits for a child: killed workers are reaped
//! from SIGCHLD like every other exit.

use super::launch::Launch;
use super::spawn::{describe_status, Worker};
use super::Master;
use crate::os::transport;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

impl Master {
    /// SIGTERM/SIGINT: abandon what is starting, drain every worker; a
    /// second signal kills them.
    pub(super) fn begin_stop(&mut self, sig: Signal) {
        if self.stop_deadline.is_some() {
            tracing::warn!("{} again: stopping at once", sig.as_str());
            self.kill_all();
            return;
        }
        if let Some(launch) = self.starting.take() {
            tracing::info!("{}: stopping before every worker was ready", sig.as_str());
            self.dying.extend(launch.abort());
        }
        self.abandon_reload(sig);
        self.stop_upgrade();
        self.cancel_respawns(None);
        let timeout = self.config.daemon.shutdown_timeout;
        tracing::info!(
            "{}: stopping; {} workers finish requests in flight (shutdown_timeout = {:?})",
            sig.as_str(),
            self.workers.len(),
            timeout
        );
        self.notifier.stopping();
        for w in &mut self.workers {
            w.draining = true;
            let _ = kill(w.pid, Signal::SIGTERM);
        }
        // Workers enforce shutdown_timeout themselves, then kill their own
        // stragglers; this is the master's backstop.
        self.stop_deadline = Some(Instant::now() + timeout + Duration::from_secs(5));
    }

    /// SIGKILL every worker (and its request children); they are reaped
    /// as they go.
    pub(super) fn kill_all(&mut self) {
        for w in std::mem::take(&mut self.workers) {
            let _ = kill(Pid::from_raw(-w.pid.as_raw()), Signal::SIGKILL);
            let _ = kill(w.pid, Signal::SIGKILL);
            self.dying.push(w.pid);
        }
        let launches: Vec<Launch> = self.starting.take().into_iter().collect();
        for l in launches {
            self.dying.extend(l.abort());
        }
    }

    /// Reap every exited child: a serving worker that crashed is respawned,
    /// a starting one fails its launch.
    pub(super) fn reap(&mut self) {
        loop {
            let Ok(st) = waitpid(None, Some(WaitPidFlag::WNOHANG)) else {
                return;
            };
            let Some(pid) = st.pid() else { return };
            if let Some(pos) = self.dying.iter().position(|&p| p == pid) {
                self.dying.swap_remove(pos);
                continue;
            }
            if self.upgrade_exited(pid, st) || self.launches_mut().any(|l| l.exited(pid, st)) {
                continue;
            }
            if let Some(pos) = self.workers.iter().position(|w| w.pid == pid) {
                let w = self.workers.remove(pos);
                self.worker_exited(w, st);
            }
        }
    }

    /// Whether a graceful stop has begun.
    pub(crate) fn stopping(&self) -> bool {
        self.stop_deadline.is_some()
    }

    fn worker_exited(&mut self, w: Worker, st: WaitStatus) {
        self.obs.worker_exited(&w);
        let what = describe_status(Ok(st));
        let (name, gen, pid) = (&w.listener, w.generation, w.pid.as_raw());
        if w.draining {
            tracing::info!(listener = %name, generation = gen, "worker {pid} finished draining ({what})");
            return;
        }
        if self.sockets.contains_key(name) && self.stop_deadline.is_none() {
            // Exit status 0: it stopped serving on its own, as a
            // socketserver program's serve_forever returns (Python:
            // server.shutdown()); not a crash to report, but the listener
            // keeps being served, with the same back-off should it keep
            // stopping at once.
            let clean = matches!(st, WaitStatus::Exited(_, 0));
            let what = if clean {
                format!("worker {pid} stopped serving on its own ({what})")
            } else {
                format!("worker {pid} died ({what})")
            };
            self.schedule_respawn(name.clone(), w.index, w.started, &what, clean);
        }
    }

    pub(super) fn remove_unix_files(&self) {
        if self.upgrade.handed_over() {
            return; // the new daemon serves on them
        }
        for l in self
            .config
            .listeners
            .iter()
            .filter(|l| !self.inherited.contains(&l.name) && !self.fdstore.holds(&l.name))
        {
            transport::remove_unix_file(l);
        }
    }
}
