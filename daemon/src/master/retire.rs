//! The last step of a reload: the old generation's workers acknowledge
//! that they stopped accepting, and only then is the reload reported done
//! (the `reload done` log line, READY=1, `sockhostctl reload`'s answer).
//!
//! Why: SIGTERM tells a retired worker to drain, but a worker busy inside
//! its accept batch (or not yet scheduled) could still take a connection
//! queued after the master sent it, and serve it with the old code. Each
//! worker writes `STOPPED` on its control socket once it will never accept
//! again: its signal handler at once when the loop is not between
//! `enter_accept` and `leave_accept` (asleep in poll, or busy in a
//! request, however long), else its loop, right after that accept, when
//! it sees the stop (see `os::signals`).
//!
//! Promises: never blocks: the wait is a state of the master's poll loop
//! ([`Retiring`]), with a deadline (`shutdown_timeout` clamped to 1..5 s)
//! past which the reload is reported anyway, naming the workers that did
//! not answer. A worker that exits (or is killed) counts as stopped.

use super::reload::Plan;
use super::Master;
use nix::unistd::Pid;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// The line a worker writes once it will accept no more.
pub const STOPPED: &str = "STOPPED";

/// The bounds of the wait for acknowledgements.
const LEAST: Duration = Duration::from_secs(1);
const MOST: Duration = Duration::from_secs(5);

/// A reload whose new generation serves, waiting for the old one's
/// acknowledgements.
pub(super) struct Retiring {
    pub t0: Instant,
    pub plan: Plan,
    /// Retired workers that have not acknowledged yet, with what each
    /// wrote so far.
    waiting: Vec<(Pid, Vec<u8>)>,
    deadline: Instant,
    timeout: Duration,
}

impl Retiring {
    /// Wait for `waiting` (just sent SIGTERM) for `shutdown_timeout`,
    /// clamped to 1..5 s.
    pub fn new(t0: Instant, plan: Plan, waiting: Vec<Pid>, shutdown_timeout: Duration) -> Self {
        let timeout = shutdown_timeout.clamp(LEAST, MOST);
        Retiring {
            t0,
            plan,
            waiting: waiting.into_iter().map(|p| (p, Vec::new())).collect(),
            deadline: Instant::now() + timeout,
            timeout,
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// What reading a retired worker's control socket found.
#[derive(Debug, PartialEq, Eq)]
enum Ack {
    /// `STOPPED`, or the socket closed (the worker is gone).
    Stopped,
    /// Nothing whole yet.
    NotYet,
}

/// Read what `ctrl` holds (non-blocking) into `buf`: stopped once a
/// `STOPPED` line came or the socket closed or failed.
fn read_ack(mut ctrl: impl Read, buf: &mut Vec<u8>) -> Ack {
    let mut chunk = [0u8; 256];
    loop {
        match ctrl.read(&mut chunk) {
            Ok(0) => return Ack::Stopped,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Ack::Stopped,
        }
    }
    let text = String::from_utf8_lossy(buf);
    if text
        .split_inclusive('\n')
        .any(|l| l.trim_end() == STOPPED && l.ends_with('\n'))
    {
        Ack::Stopped
    } else {
        Ack::NotYet
    }
}

impl Master {
    /// The control sockets of retired workers still to acknowledge.
    pub(super) fn retiring_fds(&self) -> Vec<RawFd> {
        let Some(r) = self.reload.retiring() else {
            return Vec::new();
        };
        self.workers
            .iter()
            .filter(|w| r.waiting.iter().any(|(p, _)| *p == w.pid))
            .map(|w| w.ctrl.as_raw_fd())
            .collect()
    }

    /// `fd` is readable: if it is a retired worker's, see whether it
    /// acknowledged. Returns whether it was one.
    pub(super) fn retiring_readable(&mut self, fd: RawFd) -> bool {
        let Some(w) = self.workers.iter().find(|w| w.ctrl.as_raw_fd() == fd) else {
            return false;
        };
        let Some(r) = self.reload.retiring_mut() else {
            return false;
        };
        let Some(pos) = r.waiting.iter().position(|(p, _)| *p == w.pid) else {
            return false;
        };
        if read_ack(&w.ctrl, &mut r.waiting[pos].1) == Ack::Stopped {
            r.waiting.swap_remove(pos);
        }
        true
    }

    /// Report the reload done once every retired worker acknowledged (or
    /// is gone), or at the deadline.
    pub(super) fn advance_retiring(&mut self) {
        let now = Instant::now();
        let workers = &self.workers;
        let Some(r) = self.reload.retiring_mut() else {
            return;
        };
        r.waiting
            .retain(|(p, _)| workers.iter().any(|w| w.pid == *p));
        if !r.waiting.is_empty() && now < r.deadline {
            return;
        }
        if !r.waiting.is_empty() {
            let names: Vec<String> = r
                .waiting
                .iter()
                .map(|(p, _)| {
                    let l = workers
                        .iter()
                        .find(|w| w.pid == *p)
                        .map(|w| w.listener.as_str());
                    format!("{p} (listener `{}`)", l.unwrap_or("?"))
                })
                .collect();
            tracing::warn!(
                "retired workers {} did not acknowledge that they stopped accepting within {:?}; reporting the reload done without them",
                names.join(", "),
                r.timeout
            );
        }
        if let Some(r) = self.reload.take_retiring() {
            self.finish_reload(r.t0, Ok(r.plan));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{read_ack, Ack};
    use std::io::{self, Read};

    /// A reader that yields `parts` in turn, then WouldBlock (or EOF).
    struct Parts(Vec<&'static [u8]>, bool);

    impl Read for Parts {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return if self.1 {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
            let p = self.0.remove(0);
            buf[..p.len()].copy_from_slice(p);
            Ok(p.len())
        }
    }

    #[test]
    fn stopped_is_a_whole_line_or_a_closed_socket() {
        let mut buf = Vec::new();
        assert_eq!(read_ack(Parts(vec![b"STOP"], false), &mut buf), Ack::NotYet);
        assert_eq!(
            read_ack(Parts(vec![b"PED\n"], false), &mut buf),
            Ack::Stopped
        );
        assert_eq!(read_ack(Parts(vec![], false), &mut Vec::new()), Ack::NotYet);
        assert_eq!(read_ack(Parts(vec![], true), &mut Vec::new()), Ack::Stopped);
    }
}
