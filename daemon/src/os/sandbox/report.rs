//! The reporter: a small process that answers the seccomp filter's
//! notifications for one sandboxed worker and logs each blocked call.
//!
//! Forked by the worker before Landlock and seccomp (so it is in neither,
//! runs only this code, and as the worker's user), it receives the
//! filter's notification fd over a socketpair, then loops: receive a
//! notification, log "blocked" (`enforce`) or "would block" (`log`) with the
//! listener, the pid and the call with its telling arguments, answer with
//! the errno (EAFNOSUPPORT for sockets, EPERM for the rest) or let the call
//! run. Lines are rate-limited per call description (one a second, with the
//! count held back), each a line on the worker's log relay. Promises: it exits when the last process using the
//! filter is gone (the fd hangs up, kernel 5.8 on) or when the worker dies
//! (PR_SET_PDEATHSIG); it never holds the listening or control socket. Never runs
//! plugin code, never blocks a signal the worker relies on.

use crate::config::SandboxMode;
use crate::os::ratelimit::RateLimit;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::collections::HashMap;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// The worker's end: hands the notification fd over.
pub struct Reporter {
    sock: OwnedFd,
}

impl Reporter {
    /// Fork the reporter for listener `name`.
    /// `log_fd`: the worker's log relay, where its lines go (the master
    /// logs them with the listener and this process's pid, to wherever
    /// the log goes now: a rotated log file is followed); without one
    /// (--check) they go to the inherited log.
    pub fn spawn(
        name: &str,
        mode: SandboxMode,
        keep_out: &[RawFd],
        log_fd: Option<RawFd>,
    ) -> Result<Reporter, String> {
        let (mine, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| format!("sandbox: reporter socketpair: {e}"))?;
        // SAFETY: getpid cannot fail.
        let worker = unsafe { libc::getpid() };
        // SAFETY: the worker is single-threaded here (checked by the
        // caller), so the child may run ordinary code; it ends in _exit.
        match unsafe { libc::fork() } {
            -1 => {
                let e = std::io::Error::last_os_error();
                let hint = if e.raw_os_error() == Some(libc::EAGAIN) {
                    " (the reporter is one more process of the listener's user: raise [listener.limits] processes)"
                } else {
                    ""
                };
                Err(format!(
                    "sandbox: cannot start the reporter process: {e}{hint}"
                ))
            }
            0 => {
                drop(mine);
                // Die with the worker: POLLHUP on the notification fd only
                // comes from kernel 5.8 on, and a worker that dies before
                // handing it over leaves nobody to hang up.
                // SAFETY: prctl with integer arguments.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
                // SAFETY: getppid cannot fail.
                if unsafe { libc::getppid() } != worker {
                    // SAFETY: the worker died before the prctl took hold.
                    unsafe { libc::_exit(0) }
                }
                close_copies(keep_out);
                ignore_stop_signals();
                let code = match receive_fd(&theirs) {
                    Some(notify) => {
                        serve(name, mode, &notify, log_fd);
                        0
                    }
                    None => 0,
                };
                // SAFETY: ending the reporter without unwinding into the
                // worker's frames.
                unsafe { libc::_exit(code) }
            }
            _ => Ok(Reporter { sock: mine }),
        }
    }

    /// Give the reporter the filter's notification fd.
    pub fn hand_over(self, notify: OwnedFd) -> Result<(), String> {
        let fds = [notify.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let iov = [std::io::IoSlice::new(b"N")];
        sendmsg::<()>(self.sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
            .map_err(|e| format!("sandbox: cannot hand the filter to the reporter: {e}"))?;
        Ok(())
    }
}

/// Close every fd of this process that is `keep_out` or a copy of one
/// (the same open socket, also under another number): the `keep_out`
/// fds themselves always, copies as far as /proc/self/fd can be read.
fn close_copies(keep_out: &[RawFd]) {
    let id = |fd: RawFd| {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat fills `st` or fails; the fd is only inspected.
        (unsafe { libc::fstat(fd, st.as_mut_ptr()) } == 0).then(|| {
            // SAFETY: fstat succeeded, so `st` is initialised.
            let st = unsafe { st.assume_init() };
            (st.st_dev, st.st_ino)
        })
    };
    let unwanted: Vec<_> = keep_out
        .iter()
        .filter(|fd| **fd >= 0)
        .filter_map(|fd| id(*fd))
        .collect();
    for fd in keep_out.iter().filter(|fd| **fd >= 0) {
        // SAFETY: closing this process's copy of a worker fd that the
        // reporter never uses.
        unsafe { libc::close(*fd) };
    }
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        if id(fd).is_some_and(|i| unwanted.contains(&i)) {
            // SAFETY: closing this process's copy of a worker socket that
            // the reporter never uses.
            unsafe { libc::close(fd) };
        }
    }
}

/// The worker's stop signals are not the reporter's: it ends with the fd.
fn ignore_stop_signals() {
    for sig in [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        // SAFETY: setting a signal's disposition to ignore.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
}

fn receive_fd(sock: &OwnedFd) -> Option<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .ok()?;
    for c in msg.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: a fd just received, owned by no one else here.
            return fds.first().map(|fd| unsafe { OwnedFd::from_raw_fd(*fd) });
        }
    }
    None
}

/// Answer notifications until the filter has no more users.
fn serve(name: &str, mode: SandboxMode, notify: &OwnedFd, log_fd: Option<RawFd>) {
    let mut limits: HashMap<String, RateLimit> = HashMap::new();
    loop {
        let mut pfd = libc::pollfd {
            fd: notify.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd we own.
        let n = unsafe { libc::poll(&mut pfd, 1, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if pfd.revents & libc::POLLIN == 0 {
            return; // POLLHUP: no process uses the filter any more.
        }
        // SAFETY: a zeroed seccomp_notif is what NOTIF_RECV expects.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: the ioctl fills `req`, a struct of the size it encodes.
        let rc =
            unsafe { libc::ioctl(notify.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) };
        if rc < 0 {
            continue; // the caller died meanwhile (ENOENT), or EINTR
        }
        let nr = i64::from(req.data.nr);
        let args = req.data.args;
        let what = super::report_text::describe(nr, &args, req.pid);
        let errno = if nr == libc::SYS_socket || nr == libc::SYS_socketpair {
            libc::EAFNOSUPPORT
        } else {
            libc::EPERM
        };
        let mut resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 0,
            error: 0,
            flags: 0,
        };
        if mode == SandboxMode::Enforce {
            resp.error = -errno;
        } else {
            resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
        }
        // SAFETY: the ioctl reads `resp`, a struct of the size it encodes.
        unsafe {
            libc::ioctl(
                notify.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut resp,
            )
        };
        log_line(name, mode, req.pid, &what, errno, &mut limits, log_fd);
    }
}

fn log_line(
    name: &str,
    mode: SandboxMode,
    pid: u32,
    what: &str,
    errno: i32,
    limits: &mut HashMap<String, RateLimit>,
    log_fd: Option<RawFd>,
) {
    const MAX_KINDS: usize = 256;
    let key = if limits.len() < MAX_KINDS || limits.contains_key(what) {
        what.to_owned()
    } else {
        "other".to_owned()
    };
    let limit = limits
        .entry(key)
        .or_insert_with(|| RateLimit::new(Duration::from_secs(1)));
    let Some(held) = limit.allow(Instant::now()) else {
        return;
    };
    let more = if held > 0 {
        format!(" ({held} more held back)")
    } else {
        String::new()
    };
    let err = std::io::Error::from_raw_os_error(errno);
    let text = if mode == SandboxMode::Enforce {
        format!(
            "sandbox blocked {what} in listener {name} pid {pid}: {}{more}",
            super::report_text::errno_name(errno, &err)
        )
    } else {
        format!("sandbox (log mode) would block {what} in listener {name} pid {pid}{more}")
    };
    match log_fd {
        Some(fd) => relay_line(fd, &text),
        None => tracing::warn!(listener = name, pid, "{text}"),
    }
}

/// One line to the log relay at warning level (sd-daemon `<4>`). Never
/// waits: while the relay is full (the master behind) the line is dropped,
/// so that answering the filter's notifications never stalls on the log.
fn relay_line(fd: RawFd, text: &str) {
    let line = format!("<4>{}\n", text.replace('\n', " "));
    // SAFETY: send reads `line` for its length; the relay is a unix
    // stream socket (MSG_NOSIGNAL: no SIGPIPE if the master is gone).
    unsafe {
        libc::send(
            fd,
            line.as_ptr().cast(),
            line.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
}
