//! Signals delivered as bytes on a self-pipe, so each loop (master, worker)
//! waits on one fd with poll and never does work inside a handler.
//!
//! Owns the process-wide write end the handler writes to. The handler only
//! calls `write(2)` (async-signal-safe) with the signal number as one byte,
//! and, in a serving worker, the stop handshake: `STOPPED` on the control
//! socket once the worker will take no more requests ([`enter_accept`]).
//! The pipe belongs to the process that installed it: after a fork the
//! child calls [`SignalPipe::install`] again to get a pipe of its own, or,
//! as a request child does, simply runs on: a signal reaching a process
//! that is not the pipe's owner gets its default action (SIGTERM ends it),
//! so a child needs no system call to undo its parent's handlers.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

/// The write end of the current pipe; -1 before install.
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
/// The process that installed the pipe (and reads it); 0 before install.
static OWNER: AtomicI32 = AtomicI32::new(0);
/// Set by the handler, cleared by `drain`: lets a busy loop notice a signal
/// without a system call.
static PENDING: AtomicBool = AtomicBool::new(false);
/// Set by the handler on SIGTERM/SIGINT, never cleared: a stop was asked.
static STOP: AtomicBool = AtomicBool::new(false);
/// Set by a worker's loop while it may take a request (see
/// [`enter_accept`]).
static ACCEPTING: AtomicBool = AtomicBool::new(false);
/// Where the handler acknowledges a stop (a worker's control socket);
/// -1: nowhere.
static ACK_FD: AtomicI32 = AtomicI32::new(-1);
/// What it writes there.
const STOPPED: &[u8] = b"STOPPED\n";
/// Seconds for a last-resort `alarm(2)` armed by the first SIGTERM/SIGINT
/// (0: none). SIGALRM's default action ends a process whose stop hangs.
static ALARM_ON_STOP: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    let saved = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    // SAFETY: getpid(2) is async-signal-safe.
    if unsafe { libc::getpid() } != OWNER.load(Ordering::Relaxed) {
        // A forked child that inherited the handler: act as if it had none.
        // The re-raised signal is blocked while this handler runs and is
        // delivered, with its default action, as soon as it returns.
        // SAFETY: signal(2) and raise(3) are async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
            *libc::__errno_location() = saved;
        }
        return;
    }
    PENDING.store(true, Ordering::Relaxed);
    if sig == libc::SIGTERM || sig == libc::SIGINT {
        // The stop handshake (see `enter_accept`): SeqCst on both sides,
        // so either the loop sees STOP before it accepts, or this sees
        // ACCEPTING and leaves the acknowledgement to the loop.
        STOP.store(true, Ordering::SeqCst);
        let ack = ACK_FD.load(Ordering::SeqCst);
        if ack >= 0 && !ACCEPTING.load(Ordering::SeqCst) {
            // SAFETY: write(2) is async-signal-safe; a static buffer.
            unsafe { libc::write(ack, STOPPED.as_ptr().cast(), STOPPED.len()) };
        }
        // Only the first stop signal arms the alarm (swap leaves 0 behind).
        let secs = ALARM_ON_STOP.swap(0, Ordering::Relaxed);
        if secs > 0 {
            // SAFETY: alarm(2) is async-signal-safe.
            unsafe { libc::alarm(secs) };
        }
    }
    let fd = WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is one live byte.
        // A full pipe (EAGAIN) is fine: the loop is already due to wake.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
    // SAFETY: restore errno for the interrupted code.
    unsafe { *libc::__errno_location() = saved };
}

/// The read end of the self-pipe, and the signals routed to it.
#[derive(Debug)]
pub struct SignalPipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl SignalPipe {
    /// Route `signals` to a fresh non-blocking, close-on-exec pipe. Replaces
    /// any pipe installed earlier in this process (e.g. inherited by fork).
    pub fn install(signals: &[Signal]) -> io::Result<SignalPipe> {
        let (read, write) = pipe()?;
        WRITE_FD.store(write.as_raw_fd(), Ordering::SeqCst);
        OWNER.store(std::process::id() as i32, Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
            SigSet::empty(),
        );
        for &sig in signals {
            // SAFETY: the handler only calls async-signal-safe functions.
            unsafe { sigaction(sig, &action) }.map_err(io::Error::from)?;
        }
        Ok(SignalPipe { read, write })
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Every signal received since the last call, in order.
    pub fn drain(&self) -> Vec<Signal> {
        let mut out = Vec::new();
        self.drain_each(|sig| out.push(sig));
        out
    }

    /// Call `f` for every signal received since the last drain, in order,
    /// without allocating (loops drain on every wake-up).
    pub fn drain_each(&self, mut f: impl FnMut(Signal)) {
        PENDING.store(false, Ordering::Relaxed);
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reading into a live stack buffer from our own pipe.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            buf[..n as usize]
                .iter()
                .filter_map(|&b| Signal::try_from(b as i32).ok())
                .for_each(&mut f);
            if (n as usize) < buf.len() {
                break; // drained; a byte written later wakes poll again
            }
        }
    }

    /// The raw write end, for code that must close it in a child.
    pub fn write_fd(&self) -> RawFd {
        self.write.as_raw_fd()
    }
}

/// A serving worker: from now on a SIGTERM/SIGINT is acknowledged on
/// `fd` with `STOPPED` as soon as the worker will take no more requests:
/// by the handler itself when the loop is not between [`enter_accept`]
/// and [`leave_accept`] (busy in a request, or asleep in poll), else by
/// the loop when it ends. A worker in a long request thus answers at once.
pub fn ack_stop_on(fd: RawFd) {
    ACK_FD.store(fd, Ordering::SeqCst);
}

/// Before taking a request (accept, recvfrom): false when a stop was
/// asked (take nothing more). After true, call [`leave_accept`].
pub fn enter_accept() -> bool {
    ACCEPTING.store(true, Ordering::SeqCst);
    if STOP.load(Ordering::SeqCst) {
        ACCEPTING.store(false, Ordering::SeqCst);
        return false;
    }
    true
}

/// The request is taken (or none was waiting).
pub fn leave_accept() {
    ACCEPTING.store(false, Ordering::SeqCst);
}

/// Whether a signal arrived since the last `drain` (no system call).
pub fn pending() -> bool {
    PENDING.load(Ordering::Relaxed)
}

/// Arm a backstop: the first SIGTERM/SIGINT starts `alarm(secs)`, so a
/// process whose graceful stop hangs (a request stuck in a blocking read)
/// is ended by SIGALRM. 0 disarms.
pub fn alarm_on_stop(secs: u32) {
    ALARM_ON_STOP.store(secs, Ordering::Relaxed);
}

/// A non-blocking, close-on-exec pipe.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills the two-int array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pipe is process-wide: tests that install one take turns.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn a_raised_signal_arrives_as_a_byte_on_the_pipe() {
        let _turn = ONE_AT_A_TIME.lock();
        let pipe = SignalPipe::install(&[Signal::SIGUSR2]).expect("install");
        nix::sys::signal::raise(Signal::SIGUSR2).expect("raise");
        assert_eq!(pipe.drain(), vec![Signal::SIGUSR2]);
        assert!(pipe.drain().is_empty(), "drain empties the pipe");
        let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: installing SIG_DFL has no safety requirements.
        unsafe { sigaction(Signal::SIGUSR2, &dfl) }.expect("restore");
    }

    #[test]
    fn a_forked_child_gets_the_default_action_not_the_parents_pipe() {
        let _turn = ONE_AT_A_TIME.lock();
        let pipe = SignalPipe::install(&[Signal::SIGUSR1]).expect("install");
        // SAFETY: the child only calls async-signal-safe functions (raise,
        // _exit) before it ends.
        let child = match unsafe { libc::fork() } {
            // SAFETY: in the child: raise and _exit are async-signal-safe.
            0 => unsafe {
                libc::raise(libc::SIGUSR1);
                libc::_exit(0) // not reached when SIGUSR1 kills the child
            },
            pid => pid,
        };
        let mut status = 0;
        // SAFETY: waiting for our own child into a live int.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGUSR1,
            "the child died of SIGUSR1's default action (status {status:#x})"
        );
        assert!(pipe.drain().is_empty(), "nothing reached the parent's pipe");
        let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: installing SIG_DFL has no safety requirements.
        unsafe { sigaction(Signal::SIGUSR1, &dfl) }.expect("restore");
    }
}
