//! Forking workers: the master's side of the control-socket protocol
//! (worker → master `READY` or `ERROR reason`, read by `launch`; master →
//! worker `GO`, written by [`go`]; worker → master `STOPPED` once a drain
//! has ended its accept loop, read by `retire`).
//!
//! Promises: a worker is forked from the single-threaded master; the master
//! process itself never loads a plugin; nothing here waits for a worker.

use crate::config::{Config, ListenerConfig};
use crate::os::shm::SharedSlice;
use crate::os::stats::WorkerStats;
use crate::worker::{worker_main, WorkerArgs};
use nix::sys::wait::WaitStatus;
use nix::unistd::{fork, ForkResult, Pid};
use socket2::Socket;
use std::io::{self, Write};
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;

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
    /// Its request counters (None for a `--check` worker).
    pub stats: Option<SharedSlice<WorkerStats>>,
    /// What it reports after READY (`late`).
    pub late: super::late::Late,
    /// The read end of its log relay, until the master adopts it (it
    /// outlives the worker: programs may still write).
    pub relay: Option<super::relay::Relay>,
}

/// Where worker `index` of `l` goes among the CPUs when it is kept on one:
/// after the workers of the listeners before it that may be kept on one
/// (`ListenerConfig::may_keep_on_one_cpu`), so no two of them share a CPU
/// while there are CPUs to spare.
fn cpu_slot(config: &Config, l: &ListenerConfig, index: usize) -> usize {
    let before: usize = config
        .listeners
        .iter()
        .take_while(|x| x.name != l.name)
        .filter(|x| x.may_keep_on_one_cpu())
        .map(|x| x.workers)
        .sum();
    before + index
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
    // The listener's per-source table shared by its workers (workers > 1
    // with per-source limits), made once, before any of them is forked.
    crate::worker::shared_limits::prepare(l)?;
    let stats = if check_only {
        None
    } else {
        Some(WorkerStats::map()?)
    };
    let (relay, log_fd) = match check_only {
        true => (None, None),
        false => super::relay::pair(&l.name).map(|(r, w)| (Some(r), Some(w)))?,
    };
    // SAFETY: getpid has no preconditions.
    let master_pid = unsafe { libc::getpid() };
    // SIGUSR1 (reopen the log file) is forwarded to starting workers too:
    // blocked across fork, the child takes it only once its own handler
    // is in place (a SIGUSR1 meanwhile waits), never the master's.
    let usr1 = crate::os::logfile::block_sigusr1();
    // SAFETY: the master is single-threaded, so the child cannot inherit a
    // lock held by another thread; the child never returns (worker_main).
    let forked = unsafe { fork() }.map_err(io::Error::from);
    if !matches!(forked, Ok(ForkResult::Child)) {
        crate::os::logfile::restore_mask(usr1);
    }
    match forked? {
        ForkResult::Child => {
            drop(master_end);
            drop(relay);
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
                stats,
                log_fd,
                cpu_slot: cpu_slot(config, l, index),
            })
        }
        ForkResult::Parent { child } => {
            // Also set it here: whichever runs first wins the race.
            let _ = nix::unistd::setpgid(child, child);
            // Only this worker (and what it forks) may see its counters:
            // workers of other listeners, forked later, do not get them.
            if let Some(s) = &stats {
                if let Err(e) = s.keep_from_later_forks() {
                    tracing::warn!(listener = %l.name, "worker {child}: counters stay visible to later workers: {e}");
                }
            }
            drop(log_fd); // only the worker and what it runs write
            master_end.set_nonblocking(true)?;
            Ok(Worker {
                pid: child,
                listener: l.name.clone(),
                index,
                generation,
                ctrl: master_end,
                started: Instant::now(),
                draining: false,
                stats,
                late: Default::default(),
                relay,
            })
        }
    }
}

/// Fork a worker that only loads the plugin, calls `create` and `destroy`,
/// and reports (`sockhostd --check`).
pub fn spawn_check(config: &Config, l: &ListenerConfig) -> io::Result<Worker> {
    spawn(config, l, 0, None, 0, Vec::new(), true)
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
