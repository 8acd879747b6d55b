//! `--log-file PATH`: log lines appended to a file that logrotate may move.
//!
//! The file is opened once, in the process that parses the command line,
//! before any fork: the master and every worker (and request child) write
//! through their own copy of the fd, each line with one `write(2)` on an
//! `O_APPEND` file, so lines of different processes never interleave.
//!
//! Reopening follows logrotate's convention, SIGUSR1 to the master (the pid
//! in the pid file): the master reopens at once ([`reopen_in_master`]) and
//! forwards SIGUSR1 to each of its workers, serving or still starting,
//! which have their own copy of the fd. SIGUSR1 is blocked across the
//! fork of a worker ([`block_sigusr1`]) until the worker has installed its
//! handler, so one sent meanwhile waits instead of reaching the handler
//! the worker inherited. A worker's handler ([`reopen_on_sigusr1`]) only sets a flag;
//! the worker reopens before writing its next line, so no signal handler
//! ever touches a lock or allocates. Request children inherit the worker's
//! file and handler. A reopen that fails (the folder is gone or not
//! writable by `[daemon] user`) keeps the old file and says so in it.

use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use tracing_subscriber::fmt::MakeWriter;

/// Set by SIGUSR1 in a worker; the next line written reopens first.
static REOPEN: AtomicBool = AtomicBool::new(false);

/// The process's log file, when `--log-file` was given.
static LOG_FILE: OnceLock<LogFile> = OnceLock::new();

/// The log file and the path it is reopened from.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

/// The log file's path, when `--log-file` was given (a sandboxed worker
/// must still be able to reopen it on SIGUSR1).
pub fn path() -> Option<&'static Path> {
    LOG_FILE.get().map(|l| l.path.as_path())
}

fn open_append(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// Open `path` for appending (made absolute: the classic daemon changes to
/// `/`) as this process's log file.
pub fn open(path: &Path) -> io::Result<&'static LogFile> {
    let path = std::path::absolute(path)?;
    let file = open_append(&path)?;
    let log = LogFile {
        path,
        file: Mutex::new(file),
    };
    LOG_FILE
        .set(log)
        .map_err(|_| io::Error::other("the log file is already open"))?;
    LOG_FILE
        .get()
        .ok_or_else(|| io::Error::other("the log file is not open"))
}

impl LogFile {
    fn lock(&self) -> MutexGuard<'_, File> {
        self.file.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replace `file` with a fresh open of the path; on failure keep it.
    fn reopen_into(&self, file: &mut File) -> io::Result<()> {
        *file = open_append(&self.path)?;
        Ok(())
    }
}

/// One line's writer: the whole formatted event arrives in one `write`.
pub struct LineWriter(&'static LogFile);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut file = self.0.lock();
        if REOPEN.swap(false, Ordering::Relaxed) {
            if let Err(e) = self.0.reopen_into(&mut file) {
                let _ = writeln!(
                    file,
                    "sockhostd[{}]: cannot reopen {}: {e}; still writing here",
                    std::process::id(),
                    self.0.path.display()
                );
            }
        }
        file.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for &'static LogFile {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter(self)
    }
}

extern "C" fn on_sigusr1(_: libc::c_int) {
    REOPEN.store(true, Ordering::Relaxed);
}

/// In a worker: SIGUSR1 marks the log file for reopening (and does nothing
/// else; without `--log-file` it is simply ignored). Then unblocks it (it
/// is blocked from the fork on, see [`block_sigusr1`]): one that came
/// meanwhile is taken now.
pub fn reopen_on_sigusr1() -> io::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_sigusr1),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic.
    unsafe { sigaction(Signal::SIGUSR1, &action) }.map_err(io::Error::from)?;
    let mut usr1 = SigSet::empty();
    usr1.add(Signal::SIGUSR1);
    usr1.thread_unblock().map_err(io::Error::from)
}

/// Block SIGUSR1 (before forking a worker); returns the mask to restore
/// in the parent with [`restore_mask`]. The child keeps it blocked until
/// [`reopen_on_sigusr1`].
pub fn block_sigusr1() -> Option<SigSet> {
    let mut usr1 = SigSet::empty();
    usr1.add(Signal::SIGUSR1);
    let mut old = SigSet::empty();
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&usr1),
        Some(&mut old),
    )
    .ok()
    .map(|()| old)
}

/// Put back the mask [`block_sigusr1`] returned.
pub fn restore_mask(old: Option<SigSet>) {
    if let Some(old) = old {
        let _ = old.thread_set_mask();
    }
}

/// In the master, on SIGUSR1: reopen the log file now and forward the
/// signal to `workers` (serving and starting ones alike).
pub fn reopen_in_master(workers: impl IntoIterator<Item = Pid>) {
    let workers: Vec<Pid> = workers.into_iter().collect();
    let Some(log) = LOG_FILE.get() else {
        tracing::info!("SIGUSR1: no log file to reopen");
        return;
    };
    let result = {
        let mut file = log.lock();
        log.reopen_into(&mut file)
    };
    match result {
        Ok(()) => tracing::info!(
            "SIGUSR1: reopened {}; telling {} workers",
            log.path.display(),
            workers.len()
        ),
        Err(e) => tracing::error!(
            "SIGUSR1: cannot reopen {}: {e}; still writing to the old file",
            log.path.display()
        ),
    }
    for pid in workers {
        if let Err(e) = kill(pid, Signal::SIGUSR1) {
            tracing::warn!("cannot forward SIGUSR1 to worker {pid}: {e}");
        }
    }
}
