//! A set of workers being started together (the first generation, a
//! reload's new workers, one crashed worker's replacement), waiting for
//! each to report on its control socket: `DEPENDS path` lines (files its
//! plugin named with `depends_on`), then `READY` or `ERROR reason`.
//!
//! A [`Launch`] never blocks: the master's loop polls [`Launch::fds`],
//! hands readable ones to [`Launch::readable`], tells it about exits
//! ([`Launch::exited`]) and the time ([`Launch::tick`]), and asks
//! [`Launch::state`] what to do. It fails as soon as one worker fails (the
//! reasons of all that failed so far, each with its listener), so a reload
//! rolls back without waiting for the slowest plugin. `--check` uses the
//! same reports through the blocking [`Launch::wait`], outside any loop.

use crate::master::spawn::{describe_status, Worker};
use crate::os::poll::wait_readable;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What one worker said (or did) so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ready, with the files its plugin depends on (`DEPENDS` lines).
    Ready(Vec<PathBuf>),
    Failed(String),
}

/// Where a launch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchState {
    /// Some workers have not reported yet, none failed.
    Pending,
    /// Every worker reported READY.
    Ready,
    /// At least one failed: the reasons, `listener `x`: why` joined by "; ".
    Failed(String),
}

struct Slot {
    worker: Worker,
    buf: Vec<u8>,
    outcome: Option<Outcome>,
    /// The control socket closed without a report: the exit status, when
    /// it is reaped, will say why.
    eof: bool,
    reaped: bool,
}

/// Workers started together, with one deadline.
pub struct Launch {
    slots: Vec<Slot>,
    deadline: Instant,
    timeout: Duration,
}

impl Launch {
    /// Wait for `workers`, each given `timeout` from now to report.
    pub fn new(workers: Vec<Worker>, timeout: Duration) -> Launch {
        let slots = workers
            .into_iter()
            .map(|worker| Slot {
                worker,
                buf: Vec::new(),
                outcome: None,
                eof: false,
                reaped: false,
            })
            .collect();
        Launch {
            slots,
            deadline: Instant::now() + timeout,
            timeout,
        }
    }

    /// When pending workers time out.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The control sockets of every worker in the launch (for
    /// `fds_to_close`: a sibling must not inherit them).
    pub fn ctrl_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.slots.iter().map(|s| s.worker.ctrl.as_raw_fd())
    }

    /// Every worker in the launch.
    pub fn workers(&self) -> impl Iterator<Item = &Worker> + '_ {
        self.slots.iter().map(|s| &s.worker)
    }

    /// The log relays of its workers, for the master to read.
    pub fn take_relays(&mut self) -> Vec<super::relay::Relay> {
        self.slots
            .iter_mut()
            .filter_map(|s| s.worker.relay.take())
            .collect()
    }

    /// The control sockets still to be read.
    pub fn fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.slots
            .iter()
            .filter(|s| s.outcome.is_none() && !s.eof)
            .map(|s| s.worker.ctrl.as_raw_fd())
    }

    /// `fd` is readable: read that worker's report if it is one of ours.
    pub fn readable(&mut self, fd: RawFd) {
        if let Some(s) = self
            .slots
            .iter_mut()
            .find(|s| s.outcome.is_none() && !s.eof && s.worker.ctrl.as_raw_fd() == fd)
        {
            (s.outcome, s.eof) = read_report(&s.worker, &mut s.buf);
        }
    }

    /// Worker `pid` exited with `status` (already reaped). Returns whether
    /// it was one of ours. A report it wrote before exiting still counts
    /// as its reason; a worker that exits after READY has failed too.
    pub fn exited(&mut self, pid: Pid, status: WaitStatus) -> bool {
        let Some(s) = self.slots.iter_mut().find(|s| s.worker.pid == pid) else {
            return false;
        };
        s.reaped = true;
        let what = describe_status(Ok(status));
        s.outcome = match s.outcome.take() {
            None => Some(match read_report(&s.worker, &mut s.buf).0 {
                Some(Outcome::Ready(_)) => {
                    Outcome::Failed(format!("exited before it was told to serve ({what})"))
                }
                Some(failed) => failed,
                None => Outcome::Failed(format!("exited before reporting ready ({what})")),
            }),
            Some(Outcome::Ready(_)) => Some(Outcome::Failed(format!(
                "exited after reporting ready ({what})"
            ))),
            failed => failed,
        };
        true
    }

    /// Fail every worker still pending at the deadline.
    pub fn tick(&mut self, now: Instant) {
        if now < self.deadline {
            return;
        }
        for s in self.slots.iter_mut().filter(|s| s.outcome.is_none()) {
            s.outcome = Some(Outcome::Failed(format!(
                "did not report ready within start_timeout ({:?})",
                self.timeout
            )));
        }
    }

    pub fn state(&self) -> LaunchState {
        let mut failures: Vec<String> = Vec::new();
        let mut pending = false;
        for s in &self.slots {
            match &s.outcome {
                None => pending = true,
                Some(Outcome::Ready(_)) => {}
                Some(Outcome::Failed(why)) => {
                    let line = format!("listener `{}`: {why}", s.worker.listener);
                    if !failures.contains(&line) {
                        failures.push(line);
                    }
                }
            }
        }
        match (failures.is_empty(), pending) {
            (false, _) => LaunchState::Failed(failures.join("; ")),
            (true, true) => LaunchState::Pending,
            (true, false) => LaunchState::Ready,
        }
    }

    /// The files each listener's plugin depends on, as its ready workers
    /// reported them.
    pub fn depends(&self) -> HashMap<String, Vec<PathBuf>> {
        let mut out: HashMap<String, Vec<PathBuf>> = HashMap::new();
        for s in &self.slots {
            if let Some(Outcome::Ready(paths)) = &s.outcome {
                let list = out.entry(s.worker.listener.clone()).or_default();
                list.extend(
                    paths
                        .iter()
                        .filter(|p| !list.contains(p))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
        }
        out
    }

    /// The workers, once [`LaunchState::Ready`].
    pub fn into_workers(self) -> Vec<Worker> {
        self.slots.into_iter().map(|s| s.worker).collect()
    }

    /// Kill every worker that has not been reaped yet (SIGKILL, without
    /// waiting) and return their pids, for the caller to reap.
    pub fn abort(self) -> Vec<Pid> {
        let live: Vec<Pid> = self
            .slots
            .iter()
            .filter(|s| !s.reaped)
            .map(|s| s.worker.pid)
            .collect();
        for &pid in &live {
            let _ = kill(pid, Signal::SIGKILL);
        }
        live
    }

    /// Block until every worker reported, one failed, or the deadline
    /// passed. For `--check`, which has no loop to return to; the caller
    /// reaps the children.
    pub fn wait(&mut self) -> LaunchState {
        loop {
            let state = self.state();
            if state != LaunchState::Pending {
                return state;
            }
            let fds: Vec<RawFd> = self.fds().collect();
            let left = self.deadline.saturating_duration_since(Instant::now());
            let ready = wait_readable(&fds, Some(left)).unwrap_or_default();
            for (fd, r) in fds.into_iter().zip(ready) {
                if r {
                    self.readable(fd);
                }
            }
            self.tick(Instant::now());
        }
    }
}

/// Read what a worker wrote: the report once it is whole (or the socket
/// closed after a partial one), and whether the socket is at EOF.
fn read_report(w: &Worker, buf: &mut Vec<u8>) -> (Option<Outcome>, bool) {
    let mut chunk = [0u8; 4096];
    let mut ctrl = &w.ctrl;
    let mut eof = false;
    loop {
        match ctrl.read(&mut chunk) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (Some(Outcome::Failed(format!("control socket: {e}"))), true),
        }
    }
    (parse_report(&String::from_utf8_lossy(buf), eof), eof)
}

/// The report in `text`: `DEPENDS` lines, then `READY` or `ERROR why`.
/// `None` while the deciding line is still incomplete (unless `at_eof`).
fn parse_report(text: &str, at_eof: bool) -> Option<Outcome> {
    let mut depends = Vec::new();
    for line in text.split_inclusive('\n') {
        if !line.ends_with('\n') && !at_eof {
            return None;
        }
        let line = line.trim_end_matches('\n');
        if let Some(path) = line.strip_prefix("DEPENDS ") {
            depends.push(path.into());
            continue;
        }
        return Some(match line.strip_prefix("ERROR ") {
            Some(msg) => Outcome::Failed(msg.to_string()),
            None if line.trim() == "READY" => Outcome::Ready(depends),
            None => Outcome::Failed(format!("unexpected report `{line}`")),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{parse_report, Outcome};
    use std::path::PathBuf;

    #[test]
    fn a_report_is_depends_lines_then_ready_or_error() {
        assert_eq!(parse_report("READY\n", false), Some(Outcome::Ready(vec![])));
        let text = "DEPENDS /srv/a.py\nDEPENDS /srv/b c.py\nREADY\n";
        assert_eq!(
            parse_report(text, false),
            Some(Outcome::Ready(vec![
                PathBuf::from("/srv/a.py"),
                PathBuf::from("/srv/b c.py")
            ]))
        );
        assert_eq!(
            parse_report("DEPENDS /srv/a.py\nREA", false),
            None,
            "incomplete"
        );
        assert_eq!(
            parse_report("ERROR plugin x: create failed\n", false),
            Some(Outcome::Failed("plugin x: create failed".into()))
        );
        assert!(
            matches!(parse_report("HELLO\n", false), Some(Outcome::Failed(m)) if m.contains("HELLO"))
        );
        assert_eq!(parse_report("READY", true), Some(Outcome::Ready(vec![])));
        assert_eq!(parse_report("", true), None);
    }
}
