//! Starting workers and waiting for them to report: the master's side of
//! the control-socket protocol (worker → master: `DEPENDS path` lines, then
//! `READY` or `ERROR reason`; master → worker `GO`).
//!
//! Promises: a worker is forked from the single-threaded master; the master
//! process itself never loads a plugin; [`wait_ready`] returns only when
//! every worker in the set answered, died, or the deadline passed, and
//! reports each failure with the worker's own reason.

use crate::config::{Config, ListenerConfig};
use crate::poll::wait_readable;
use crate::worker::{worker_main, WorkerArgs};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use socket2::Socket;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// How long a worker may take to load its plugin and call `create`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The master's record of one worker process.
#[derive(Debug)]
pub struct Worker {
    pub pid: Pid,
    pub listener: String,
    /// Which of the listener's `workers` this is (0-based).
    pub index: usize,
    pub generation: u64,
    pub ctrl: UnixStream,
    pub started: Instant,
    /// Told to drain (SIGTERM sent): its exit is expected.
    pub draining: bool,
}

/// Fork one worker for `l`. `close_fds` are the master's fds the worker
/// must not keep (other listeners' sockets, other control sockets, the
/// master's signal pipe).
pub fn spawn(
    config: &Config,
    l: &ListenerConfig,
    index: usize,
    socket: Option<&Socket>,
    generation: u64,
    close_fds: Vec<RawFd>,
    check_only: bool,
) -> io::Result<Worker> {
    let (master_end, worker_end) = UnixStream::pair()?;
    let socket = socket.map(Socket::try_clone).transpose()?;
    // SAFETY: getpid has no preconditions.
    let master_pid = unsafe { libc::getpid() };
    // SAFETY: the master is single-threaded, so the child cannot inherit a
    // lock held by another thread; the child never returns (worker_main).
    match unsafe { fork() }.map_err(io::Error::from)? {
        ForkResult::Child => {
            drop(master_end);
            let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
            worker_main(WorkerArgs {
                listener: l,
                daemon: &config.daemon,
                socket,
                ctrl: worker_end,
                close_fds,
                master_pid,
                generation,
                check_only,
            })
        }
        ForkResult::Parent { child } => {
            // Also set it here: whichever runs first wins the race.
            let _ = nix::unistd::setpgid(child, child);
            master_end.set_nonblocking(true)?;
            Ok(Worker {
                pid: child,
                listener: l.name.clone(),
                index,
                generation,
                ctrl: master_end,
                started: Instant::now(),
                draining: false,
            })
        }
    }
}

/// Fork a worker that only loads the plugin, calls `create` and `destroy`,
/// and reports (`sockhostd --check`).
pub fn spawn_check(config: &Config, l: &ListenerConfig) -> io::Result<Worker> {
    spawn(config, l, 0, None, 0, Vec::new(), true)
}

/// What a worker said (or did) before the deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ready, with the files its plugin depends on (`DEPENDS` lines).
    Ready(Vec<std::path::PathBuf>),
    Failed(String),
}

/// Wait until every worker in `workers` reported READY or failed. A worker
/// that exits before reporting is reaped here and described by its status.
/// `interrupt` is polled too; when it becomes readable the wait returns
/// early with `None` for those still pending.
pub fn wait_ready(
    workers: &[&Worker],
    interrupt: RawFd,
    deadline: Instant,
) -> HashMap<Pid, Outcome> {
    let mut out: HashMap<Pid, Outcome> = HashMap::new();
    let mut bufs: HashMap<Pid, Vec<u8>> = HashMap::new();
    while out.len() < workers.len() {
        let pending: Vec<&&Worker> = workers
            .iter()
            .filter(|w| !out.contains_key(&w.pid))
            .collect();
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            for w in pending {
                out.insert(
                    w.pid,
                    Outcome::Failed(format!("did not report ready within {READY_TIMEOUT:?}")),
                );
            }
            break;
        }
        let mut fds: Vec<RawFd> = pending.iter().map(|w| w.ctrl.as_raw_fd()).collect();
        fds.push(interrupt);
        let ready =
            wait_readable(&fds, Some(left.min(Duration::from_millis(200)))).unwrap_or_default();
        if ready.last().copied().unwrap_or(false) {
            break;
        }
        for (w, r) in pending.iter().zip(ready) {
            if r {
                if let Some(o) = read_report(w, bufs.entry(w.pid).or_default()) {
                    out.insert(w.pid, o);
                }
            }
        }
    }
    out
}

/// Read what a worker wrote; `Some` once a full report (or EOF) arrived.
fn read_report(w: &Worker, buf: &mut Vec<u8>) -> Option<Outcome> {
    let mut chunk = [0u8; 4096];
    let mut ctrl = &w.ctrl;
    loop {
        match ctrl.read(&mut chunk) {
            Ok(0) => return Some(report_or_exit(w, buf)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Some(Outcome::Failed(format!("control socket: {e}"))),
        }
    }
    parse_report(&String::from_utf8_lossy(buf), false)
}

/// The report in `text`: `DEPENDS` lines, then `READY` or `ERROR why`.
/// `None` while the last line is still incomplete (unless `at_eof`).
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

/// The control socket closed: use the report if there was one, else the
/// exit status.
fn report_or_exit(w: &Worker, buf: &[u8]) -> Outcome {
    if let Some(outcome) = parse_report(&String::from_utf8_lossy(buf), true) {
        return outcome;
    }
    let status = waitpid(w.pid, Some(WaitPidFlag::WNOHANG));
    Outcome::Failed(format!(
        "exited before reporting ready ({})",
        describe_status(status)
    ))
}

/// "status 1", "signal SIGSEGV (core dumped)", ... for logs.
pub fn describe_status(status: nix::Result<WaitStatus>) -> String {
    match status {
        Ok(WaitStatus::Exited(_, code)) => format!("exit status {code}"),
        Ok(WaitStatus::Signaled(_, sig, core)) => {
            format!(
                "killed by {}{}",
                sig.as_str(),
                if core { " (core dumped)" } else { "" }
            )
        }
        Ok(WaitStatus::StillAlive) => "still running".into(),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("status unknown: {e}"),
    }
}

/// Tell a ready worker to start serving.
pub fn go(w: &Worker) -> io::Result<()> {
    let mut ctrl = &w.ctrl;
    ctrl.write_all(b"GO\n")
}

/// Stop workers that must not serve (a failed generation): SIGKILL and reap.
pub fn abort(workers: &[Worker]) {
    for w in workers {
        let _ = kill(w.pid, Signal::SIGKILL);
    }
    for w in workers {
        let _ = waitpid(w.pid, None);
    }
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
            parse_report("ERROR boom\n", false),
            Some(Outcome::Failed("boom".into()))
        );
        assert_eq!(parse_report("READY", true), Some(Outcome::Ready(vec![])));
        assert_eq!(parse_report("", true), None);
    }
}
