//! Starting one program and seeing it to its end.
//!
//! Spawning goes through `std::process::Command`, which (absolute path, no
//! pre-exec closure, no identity change) uses `posix_spawn`: glibc's is
//! `clone(CLONE_VM|CLONE_VFORK)`, safe from a threaded worker (no copy of
//! the process, no lock taken in the child) and cheap from any. The
//! program's signal mask is emptied and SIGPIPE reset to default.
//!
//! Promises: every program started is waited for (no zombie); with
//! `max_runtime` it gets SIGTERM at the deadline and SIGKILL
//! [`KILL_AFTER`] later; the fds handed to it are closed here once it
//! runs, so its end of file is its own.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// Between SIGTERM and SIGKILL when `max_runtime` passed.
pub const KILL_AFTER: Duration = Duration::from_secs(5);

/// After SIGKILL, how long output is still read: a process the program
/// left behind (a grandchild) may hold the pipe open for ever.
pub const READ_AFTER_KILL: Duration = Duration::from_secs(1);

/// How a program ended.
pub struct Ended {
    pub pid: u32,
    pub status: ExitStatus,
    pub took: Duration,
    /// It outlived `max_runtime` and was signalled.
    pub timed_out: bool,
}

impl Ended {
    /// "pid 12 exit 0 in 3.1 ms", "pid 12 killed by signal 15 (SIGTERM) ...".
    pub fn describe(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        let ms = self.took.as_secs_f64() * 1000.0;
        let how = match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(sig)) => format!("killed by signal {sig} ({})", signal_name(sig)),
            _ => "ended".to_string(),
        };
        let late = if self.timed_out {
            " (past max_runtime)"
        } else {
            ""
        };
        format!("pid {} {how}{late} in {ms:.3} ms", self.pid)
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => "?",
    }
}

/// A duplicate of `fd` for a program's stdio (CLOEXEC; the spawn dup2s it).
pub fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd we then own, or -1.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// A pipe (read end, write end), both CLOEXEC.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are fresh fds we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A running program and its deadline.
pub struct Running {
    child: Child,
    started: Instant,
    deadline: Option<Instant>,
    /// Set once the program got SIGTERM: when SIGKILL is due.
    kill_at: Option<Instant>,
    /// Set once SIGKILL was sent: when reading output stops.
    stop_reading_at: Option<Instant>,
    pidfd: Option<OwnedFd>,
    /// `wait` reaped it; otherwise Drop kills and reaps it.
    reaped: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Running {
    /// Start `cmd` (its stdio already set), with `max_runtime`.
    pub fn start(cmd: &mut Command, max_runtime: Option<Duration>) -> io::Result<Running> {
        let started = Instant::now();
        let mut child = cmd.spawn()?;
        let pidfd = match max_runtime.map(|_| pidfd_open(child.id())) {
            None => None,
            Some(Ok(fd)) => Some(fd),
            Some(Err(e)) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(Running {
            child,
            started,
            // Beyond what Instant holds: no deadline in practice.
            deadline: max_runtime.and_then(|d| started.checked_add(d)),
            kill_at: None,
            stop_reading_at: None,
            pidfd,
            reaped: false,
        })
    }

    /// How long to wait at most before the next signal is due (None: no
    /// limit); sends the signal that is due now.
    fn due(&mut self) -> Option<Duration> {
        let now = Instant::now();
        if let Some(kill_at) = self.kill_at {
            if now >= kill_at {
                if self.stop_reading_at.is_none() {
                    let _ = self.child.kill();
                    self.stop_reading_at = Some(now + READ_AFTER_KILL);
                }
                return None; // SIGKILL cannot be ignored: wait for it
            }
            return Some(kill_at - now);
        }
        let deadline = self.deadline?;
        if now >= deadline {
            // SAFETY: signalling our own, not yet reaped, child.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            self.kill_at = Some(now + KILL_AFTER);
            return Some(KILL_AFTER);
        }
        Some(deadline - now)
    }

    /// Read `out` to its end (keeping at most `max` bytes) while the
    /// deadline holds; then wait for the program. Once SIGKILL was sent
    /// and [`READ_AFTER_KILL`] passed, stop reading and return what was
    /// kept (whoever still holds the pipe is not the program).
    pub fn collect(&mut self, out: OwnedFd, max: usize) -> io::Result<Vec<u8>> {
        let mut file = std::fs::File::from(out);
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let mut wait = self.due();
            if let Some(stop) = self.stop_reading_at {
                let now = Instant::now();
                if now >= stop {
                    return Ok(kept);
                }
                wait = Some(stop - now);
            }
            let mut fds = [libc::pollfd {
                fd: file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            let ms = wait.map_or(-1, |d| d.as_millis().clamp(1, i32::MAX as u128) as i32);
            // SAFETY: polling one pollfd of our own.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
            if rc == 0 {
                continue;
            }
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            match file.read(&mut buf) {
                Ok(0) => return Ok(kept),
                Ok(n) => {
                    let room = max.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Wait for the program to end, enforcing the deadline.
    pub fn wait(mut self) -> io::Result<Ended> {
        if let Some(pidfd) = self.pidfd.take() {
            while let Some(wait) = self.due() {
                let mut fds = [libc::pollfd {
                    fd: pidfd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                }];
                let ms = wait.as_millis().clamp(1, i32::MAX as u128) as i32;
                // SAFETY: polling one pollfd of our own.
                let rc = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
                if rc > 0 {
                    break;
                }
            }
        }
        let status = loop {
            match self.child.wait() {
                Ok(s) => {
                    self.reaped = true;
                    break s;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        Ok(Ended {
            pid: self.child.id(),
            status,
            took: self.started.elapsed(),
            timed_out: self.kill_at.is_some(),
        })
    }
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own (pidfds are CLOEXEC).
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    /// A program killed at max_runtime whose child keeps its stdout:
    /// collect returns (with what was written) while that child lives.
    #[test]
    fn collect_returns_after_sigkill_though_a_grandchild_holds_stdout() {
        let (read, write) = pipe().expect("pipe");
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "trap '' TERM; sleep 600 & echo $!; exec sleep 600"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(write));
        let mut run = Running::start(&mut cmd, Some(Duration::from_millis(50))).expect("start");
        drop(cmd); // our copy of the write end
        let out = run.collect(read, 100).expect("collect");
        let ended = run.wait().expect("wait");
        let text = String::from_utf8_lossy(&out);
        let pid: libc::pid_t = text.trim().parse().expect("the grandchild's pid");
        // SAFETY: signal 0 only checks the pid exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        // SAFETY: ending the sleep this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert!(alive, "the grandchild still held stdout");
        assert!(ended.timed_out, "{}", ended.describe());
    }

    /// A Running dropped without wait leaves no zombie behind.
    #[test]
    fn a_running_never_waited_for_is_killed_and_reaped() {
        let mut cmd = Command::new("/bin/sleep");
        cmd.arg("600");
        let run = Running::start(&mut cmd, None).expect("start");
        let pid = run.child.id() as libc::pid_t;
        drop(run);
        // SAFETY: waitpid on our own (already reaped) child's pid.
        let rc = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        assert_eq!(rc, -1, "reaped already, so no such child");
    }
}
