//! `--daemonize --pid-file PATH`: the classic double-fork daemon.
//!
//! The invoking process returns only when the daemon is ready (exit 0) or
//! failed to start (exit 1, with the daemon's reason on stderr): a readiness
//! pipe carries `OK` or the error text. The daemon runs in its own session,
//! with the working folder `/` and stdin and stdout on /dev/null. Its
//! stderr stays the caller's until ready, so start-up lines and errors reach
//! the operator; once ready the master and its workers put /dev/null there
//! too, so nothing of the caller's stays open (`out=$(sockhostd
//! --daemonize ...)`, ssh and config tools see end-of-file and return).
//! Log to `--log-file` or `--log syslog` to keep the lines after that. The
//! pid file is written atomically (temp file + rename) and removed on exit.

use crate::master::{self, StartError};
use nix::unistd::{fork, setsid, ForkResult};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set in the daemon: workers forked before ready let go of the caller's
/// stderr once they serve ([`worker_serving`]).
static DETACHED: AtomicBool = AtomicBool::new(false);

/// Why `--daemonize` failed (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum DaemonizeError {
    #[error("{0}")]
    Start(String),
    #[error("daemonize: {0}")]
    Io(#[from] std::io::Error),
}

/// Fork into the background and run the master there.
pub fn run(config: &Path, pid_file: &Path) -> Result<(), DaemonizeError> {
    let pid_file = std::path::absolute(pid_file)?;
    let config = std::path::absolute(config)?;
    let (read, write) = crate::os::signals::pipe()?;
    // SAFETY: single-threaded at this point (before the master starts).
    match unsafe { fork() }.map_err(std::io::Error::from)? {
        ForkResult::Parent { .. } => {
            drop(write);
            wait_for_daemon(read)
        }
        ForkResult::Child => {
            drop(read);
            let code = daemon_side(&config, &pid_file, write);
            // SAFETY: leave without running the parent's exit handlers twice.
            unsafe { libc::_exit(code) }
        }
    }
}

/// Read the daemon's report: `OK` as soon as it arrives, else the error
/// text up to end-of-file.
fn wait_for_daemon(read: OwnedFd) -> Result<(), DaemonizeError> {
    set_blocking(&read);
    let mut file = std::fs::File::from(read);
    let mut text = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        if text.starts_with(b"OK") {
            return Ok(());
        }
    }
    let text = String::from_utf8_lossy(&text);
    match text.trim() {
        "" => Err(DaemonizeError::Start(
            "the daemon exited before it was ready".into(),
        )),
        why => Err(DaemonizeError::Start(why.to_string())),
    }
}

fn set_blocking(fd: &OwnedFd) {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
}

/// The first child: new session, second fork; the grandchild is the daemon.
fn daemon_side(config: &Path, pid_file: &Path, write: OwnedFd) -> i32 {
    let mut report = std::fs::File::from(write);
    if let Err(e) = setsid() {
        let _ = write!(report, "setsid: {e}");
        return 1;
    }
    // SAFETY: still single-threaded.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => 0,
        Ok(ForkResult::Child) => daemon_main(config, pid_file, report),
        Err(e) => {
            let _ = write!(report, "fork: {e}");
            1
        }
    }
}

fn daemon_main(config: &Path, pid_file: &Path, mut report: std::fs::File) -> i32 {
    if let Err(e) = detach_stdio() {
        let _ = write!(report, "cannot detach: {e}");
        return 1;
    }
    serve_reporting(config, Some(pid_file), report)
}

/// When this process is the new binary of an upgrade: the pipe the old
/// daemon waits on (taken out of the environment, so workers never see it).
pub fn upgrade_report() -> Option<std::fs::File> {
    use std::os::fd::FromRawFd;
    let var = crate::os::reexec::UPGRADE_FD_VAR;
    let fd: i32 = std::env::var(var).ok()?.parse().ok()?;
    // SAFETY: single-threaded (main, before the master starts).
    unsafe { std::env::remove_var(var) };
    // SAFETY: F_SETFD on a number; it fails harmlessly if nothing is open.
    if fd < 3 || unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: the old daemon handed us this fd for this purpose only.
    Some(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Run as the new binary of an upgrade, in the old daemon's place: no new
/// fork or session (the old daemon already detached, if it did); with
/// `--daemonize` the pid file is rewritten with this pid once started.
pub fn run_upgraded(
    config: &Path,
    pid_file: Option<&Path>,
    report: std::fs::File,
) -> Result<(), DaemonizeError> {
    if pid_file.is_some() {
        DETACHED.store(true, Ordering::Relaxed);
    }
    match serve_reporting(config, pid_file, report) {
        0 => Ok(()),
        _ => Err(DaemonizeError::Start(
            "could not take over from the running daemon (it keeps serving)".into(),
        )),
    }
}

/// Run the master, writing `OK` to `report` once it serves or the reason
/// it could not start; keep `pid_file` (if any) while running.
fn serve_reporting(config: &Path, pid_file: Option<&Path>, mut report: std::fs::File) -> i32 {
    if let Some(pid_file) = pid_file {
        if let Err(e) = write_pid_file(pid_file) {
            let _ = write!(report, "pid file {}: {e}", pid_file.display());
            return 1;
        }
    }
    let guard = pid_file.map(|p| PidFileGuard(p.to_path_buf()));
    // Workers must not hold the report pipe open, or the waiting parent
    // could not see end-of-file when the daemon fails later.
    let report_fd = std::os::fd::AsRawFd::as_raw_fd(&report);
    let mut report = Some(report);
    let detached = pid_file.is_some();
    if detached {
        DETACHED.store(true, Ordering::Relaxed);
    }
    let result = master::run_with(config, &[report_fd], || {
        if let Some(mut r) = report.take() {
            let _ = r.write_all(b"OK");
        }
        if detached {
            if let Err(e) = null_stdio(&[0, 1, 2]) {
                tracing::warn!("cannot put /dev/null on stderr: {e}");
            }
        }
    });
    drop(guard);
    match result {
        Ok(()) => 0,
        Err(e) => {
            if let Some(mut r) = report.take() {
                let _ = write!(r, "{}", describe(&e));
            }
            1
        }
    }
}

fn describe(e: &StartError) -> String {
    e.to_string()
}

fn detach_stdio() -> std::io::Result<()> {
    std::env::set_current_dir("/")?;
    null_stdio(&[0, 1])
}

/// In a worker that now serves: under `--daemonize`, let go of the
/// caller's stdio (this worker may have been forked before the daemon was
/// ready, with the caller's stderr). Elsewhere nothing happens.
pub fn worker_serving() {
    if DETACHED.load(Ordering::Relaxed) {
        if let Err(e) = null_stdio(&[0, 1, 2]) {
            tracing::warn!("cannot put /dev/null on stderr: {e}");
        }
    }
}

/// Put /dev/null on each of `fds` (standard fds).
fn null_stdio(fds: &[i32]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for &fd in fds {
        // SAFETY: dup2 onto the standard fds; `null` stays open across it.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Write our pid to `path` atomically: a temp file beside it, then rename.
fn write_pid_file(path: &Path) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, format!("{}\n", std::process::id()))?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Removes the pid file when the daemon exits, unless it names another
/// process by then (the new daemon of a binary upgrade).
struct PidFileGuard(PathBuf);

impl Drop for PidFileGuard {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.0)
            .is_ok_and(|s| s.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
