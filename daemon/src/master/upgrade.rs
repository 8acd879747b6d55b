//! Binary upgrade (SIGUSR2, `sockhostctl upgrade`): replace the running
//! daemon with the binary now at its path, refusing no connection.
//!
//! The master forks and executes that binary with every listening socket
//! handed over as in socket activation (the same sockets, never re-bound)
//! and a report pipe. The new daemon checks its config, starts its workers
//! and writes `OK` once they all serve, or the reason it could not start.
//! Meanwhile this daemon keeps serving: the kernel hands each connection to
//! whichever generation accepts first. Only on `OK` does this master tell
//! the service manager the new main pid (`MAINPID=`), drain its workers and
//! exit, leaving socket files, the pid file and the fd store to the new
//! one. A new binary that reports an error, exits, or is not ready within
//! `start_timeout` (plus a margin for its own start) is killed and this
//! daemon keeps serving, untouched.
//!
//! The counters go with the sockets (`carry`, fd name `@counts`): the new
//! daemon's series go on from the old one's values.
//!
//! Why a new process rather than re-executing in place: if the new binary
//! crashes while starting, the old one is still there.

use super::Master;
use crate::os::reexec;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// Time the new daemon has beyond `start_timeout` (config, binding checks).
const MARGIN: Duration = Duration::from_secs(5);

/// An upgrade in flight.
struct Pending {
    pid: Pid,
    report: File,
    buf: Vec<u8>,
    deadline: Instant,
    started: Instant,
    /// Set once the new daemon exited (reaped): why the upgrade failed.
    ended: Option<String>,
    /// The report pipe closed (the exit status, when reaped, says more).
    eof: bool,
    ok: bool,
}

/// The upgrade in flight, if any, and whether this daemon handed over.
#[derive(Default)]
pub(super) struct Upgrades {
    pending: Option<Pending>,
    /// The new daemon's pid, once this one handed over and drains.
    handed_over: Option<Pid>,
}

impl Upgrades {
    pub fn in_flight(&self) -> bool {
        self.pending.is_some()
    }

    pub fn handed_over(&self) -> bool {
        self.handed_over.is_some()
    }

    pub fn fd(&self) -> Option<RawFd> {
        self.pending
            .as_ref()
            .filter(|p| !p.eof && !p.ok)
            .map(|p| p.report.as_raw_fd())
    }

    /// The report pipe while an upgrade is pending (a forked worker
    /// closes it, read or not).
    pub fn report_fd(&self) -> Option<RawFd> {
        self.pending.as_ref().map(|p| p.report.as_raw_fd())
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.deadline)
    }
}

impl Master {
    /// SIGUSR2 (or the control socket's `upgrade`).
    pub(super) fn request_upgrade(&mut self) {
        if self.upgrade.in_flight() {
            tracing::warn!("SIGUSR2: an upgrade is already in progress");
            return;
        }
        let busy = if self.stop_deadline.is_some() {
            Some("the daemon is stopping")
        } else if self.starting.is_some() {
            Some("the daemon is still starting")
        } else if !self.reload.idle() {
            Some("a reload is in progress; try again once it is done")
        } else {
            None
        };
        if let Some(why) = busy {
            self.finish_upgrade(Err(format!("not started: {why}")));
            return;
        }
        match self.begin_upgrade() {
            Ok(p) => {
                tracing::info!(
                    "upgrade: started {} as pid {}; this daemon serves until it is ready",
                    self.exe.display(),
                    p.pid
                );
                self.upgrade.pending = Some(p);
            }
            Err(why) => self.finish_upgrade(Err(why)),
        }
    }

    fn begin_upgrade(&mut self) -> Result<Pending, String> {
        if !self.exe.is_file() {
            return Err(format!("{} is not a file", self.exe.display()));
        }
        let (read, write) = crate::os::signals::pipe().map_err(|e| format!("pipe: {e}"))?;
        let mut sockets: Vec<(String, RawFd)> = self
            .sockets
            .iter()
            .map(|(name, s)| (name.clone(), s.as_raw_fd()))
            .collect();
        sockets.sort();
        sockets.extend(self.obs.handover_fds());
        let snapshot = self.carry_snapshot();
        if let Some(fd) = self.obs.begin_carry(&snapshot) {
            sockets.push((crate::master::carry::COUNTS_FD.to_string(), fd));
        }
        // Which sockets the service manager owns (their unix files are
        // not ours to remove); the rest the new daemon takes over fully.
        let mut owned: Vec<&str> = self.inherited.iter().map(String::as_str).collect();
        owned.sort_unstable();
        let env = vec![(SYSTEMD_OWNED_VAR.to_string(), owned.join(":"))];
        let pid = reexec::spawn(&self.exe, &self.args, &sockets, write.as_raw_fd(), &env)
            .map_err(|e| format!("cannot start {}: {e}", self.exe.display()))?;
        drop(write);
        let now = Instant::now();
        Ok(Pending {
            pid,
            report: File::from(read),
            buf: Vec::new(),
            deadline: now + self.config.daemon.start_timeout + MARGIN,
            started: now,
            ended: None,
            eof: false,
            ok: false,
        })
    }

    /// The report pipe is readable: `OK`, an error, or its end.
    pub(super) fn upgrade_readable(&mut self) {
        let Some(p) = self.upgrade.pending.as_mut() else {
            return;
        };
        let mut chunk = [0u8; 1024];
        loop {
            match p.report.read(&mut chunk) {
                Ok(0) => {
                    p.eof = true;
                    break;
                }
                Ok(n) => p.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        if p.buf.starts_with(b"OK") {
            p.ok = true;
        }
    }

    /// A child exited: the new daemon of a pending upgrade?
    pub(super) fn upgrade_exited(&mut self, pid: Pid, status: WaitStatus) -> bool {
        let Some(p) = self.upgrade.pending.as_mut().filter(|p| p.pid == pid) else {
            return false;
        };
        let what = super::spawn::describe_status(Ok(status));
        let said = String::from_utf8_lossy(&p.buf).trim().to_string();
        p.ok = false;
        p.ended = Some(if said.is_empty() || said.starts_with("OK") {
            format!("the new daemon exited ({what})")
        } else {
            format!("{said} (the new daemon exited: {what})")
        });
        true
    }

    /// Hand over once the new daemon is ready; give up on failure or at
    /// the deadline.
    pub(super) fn advance_upgrade(&mut self) {
        let Some(p) = self.upgrade.pending.as_ref() else {
            return;
        };
        let (pid, started) = (p.pid, p.started);
        if p.ok {
            self.upgrade.pending = None;
            tracing::info!(
                "upgrade: pid {pid} is ready after {:.1} ms; handing over",
                started.elapsed().as_secs_f64() * 1000.0
            );
            self.finish_upgrade(Ok(pid));
            self.hand_over(pid);
            return;
        }
        let failed = match &p.ended {
            Some(why) => Some(why.clone()),
            None if Instant::now() >= p.deadline => Some(format!(
                "the new daemon was not ready within {:?} (start_timeout + {MARGIN:?})",
                p.deadline.saturating_duration_since(started)
            )),
            None => None,
        };
        if let Some(why) = failed {
            self.abandon_upgrade();
            self.finish_upgrade(Err(why));
        }
    }

    /// Kill a pending upgrade's new daemon (its workers die with it).
    fn abandon_upgrade(&mut self) {
        if let Some(p) = self.upgrade.pending.take() {
            let _ = kill(p.pid, Signal::SIGKILL);
            self.dying.push(p.pid);
        }
    }

    /// SIGTERM/SIGINT while an upgrade is in flight: drop it.
    pub(super) fn stop_upgrade(&mut self) {
        if self.upgrade.in_flight() {
            self.abandon_upgrade();
            self.finish_upgrade(Err("abandoned: the daemon is stopping".into()));
        }
    }

    fn finish_upgrade(&mut self, outcome: Result<Pid, String>) {
        match &outcome {
            Err(why) => {
                // After a hand-over (a second upgrade asked of a draining
                // daemon) the new daemon keeps the scrapes and the counts.
                if !self.upgrade.handed_over() {
                    self.obs.end_carry();
                }
                let line = format!(
                    "upgrade failed, this daemon keeps serving (generation {}): {why}",
                    self.generation
                );
                tracing::error!("{line}");
                self.obs.upgrade_finished(false, &line);
            }
            Ok(pid) => {
                let line = format!(
                    "upgraded: pid {pid} ({}) serves; pid {} drains and exits",
                    self.exe.display(),
                    std::process::id()
                );
                self.obs.upgrade_finished(true, &line);
            }
        }
    }

    /// Whether an upgrade is in flight.
    pub(super) fn upgrade_in_flight(&self) -> bool {
        self.upgrade.in_flight()
    }

    /// The new daemon serves: make it the service's main process, then
    /// drain and exit without touching what it now owns.
    fn hand_over(&mut self, new: Pid) {
        self.upgrade.handed_over = Some(new);
        self.obs.handed_over();
        self.notifier
            .main_pid(new.as_raw(), "upgraded: the new daemon serves");
        self.cancel_respawns(None);
        for w in &mut self.workers {
            w.draining = true;
            let _ = kill(w.pid, Signal::SIGTERM);
        }
        let timeout = self.config.daemon.shutdown_timeout;
        self.stop_deadline = Some(Instant::now() + timeout + Duration::from_secs(5));
        tracing::info!(
            "upgrade: handed over to pid {new}; {} workers finish requests in flight, then this daemon exits",
            self.workers.len()
        );
    }
}

/// The variable naming the handed-over sockets that the service manager
/// owns (socket activation or its fd store), `:`-separated.
pub const SYSTEMD_OWNED_VAR: &str = "SOCKHOST_SYSTEMD_SOCKETS";
