//! ForkingMixIn: a child process per request, bounded by `max_children`.
//!
//! Promises: the worker forks only while it is single-threaded; a child
//! runs `finish_request` and ends in `_exit`, never returning into the
//! loop; children are reaped without blocking on every loop turn after one
//! exited (`collect_children`), so none stays a zombie; each exit is logged
//! (debug when clean, warn on a non-zero status or a signal); at the cap no
//! new request is taken until a child exits; `server_close` waits up to the
//! deadline, then sends SIGTERM, then SIGKILL, and says so. A plugin built
//! for ABI 1.1 that fills the fork hooks gets `before_fork` right before
//! each fork and exactly one of `after_fork_parent` (also when fork failed)
//! or `after_fork_child` (first thing in the child) after it. A child
//! whose plugin called `exec_request` (ABI 1.2) became a program: its
//! status is the program's (0 ok, else a failed request, never a crash),
//! logged with its pid and run time.
//!
//! Cost model: a fork marks every page of the worker copy-on-write, so each
//! page either process writes afterwards costs a fault and a copy. The
//! child therefore writes as little as it can (no signal handlers to undo,
//! no memory freed before `_exit`), and child exits arrive on a signalfd
//! rather than through a signal handler, which would build a signal frame
//! on the worker's stack for every request.

use super::details::Details;
use super::unshared::UnsharedVec;
use super::Dispatch;
use crate::config::{ListenerConfig, Mixin};
use crate::os::stats::Meter;
use crate::os::threads::check_single_threaded;
use crate::plugin::RequestCtx;
use crate::worker::limits::SourceSlot;
use crate::worker::request::{
    close_request, finish_request, log_access, refused_inside, request_ended, shutdown_connection,
    Outcome, Request, Shared,
};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running request child. Kept small and in a plain `Vec`: after every
/// fork each page the worker writes is copied (the child shares them), so
/// recording a child should touch as few pages as possible; the client's
/// address is formatted only when a log line about it is written.
struct Child {
    pid: Pid,
    started: Instant,
    /// The connection's `max_connections_per_source` slot: given back when
    /// the child is reaped, not when the worker closes its copy of the fd.
    _slot: Option<SourceSlot>,
    /// The request (its client names the child in the exit log). Kept
    /// until reaped, then reused for a later request: freeing it while the
    /// child still shares those heap pages would copy them for nothing.
    ctx: Box<RequestCtx>,
    /// Its slot in `details` (u32::MAX: none).
    detail: u32,
}

/// A request child's exit status when a hook failed (socketserver's
/// ForkingMixIn exits 1 when `finish_request` raised); 0 when all went
/// well; anything else (a panic past the SDK exits 70, a signal) means the
/// child crashed.
const FAILED: i32 = 1;

/// Spare request buffers kept at most (each is about 400 bytes).
const SPARE: usize = 64;

pub struct ForkingMixIn {
    max_children: usize,
    /// Running children, in memory no child shares (see `unshared`).
    children: UnsharedVec<Child>,
    /// Request buffers of reaped children, reused for the next requests
    /// instead of a malloc and free each (whose bookkeeping writes shared
    /// heap pages).
    spare: UnsharedVec<Box<RequestCtx>>,
    exits: ChildExits,
    /// Counts each reaped child as ended, and a crashed one as failed.
    meter: Meter,
    access_log: bool,
    /// What children set with `set_detail`, for their access log lines.
    details: Details,
}

/// SIGCHLD as a readable fd. The worker keeps SIGCHLD blocked and reads it
/// from a signalfd (a child unblocks it first thing), so a child's exit
/// costs the loop one read: no signal frame, handler or pipe round trip.
struct ChildExits {
    fd: OwnedFd,
    /// {SIGCHLD}, made once: the child unblocks it without building a set.
    set: libc::sigset_t,
}

impl ChildExits {
    fn new() -> io::Result<ChildExits> {
        // SAFETY: sigemptyset/sigaddset fill a sigset_t we own; blocking a
        // signal in this (single-threaded) worker has no memory-safety
        // preconditions; signalfd returns a fresh fd or -1.
        unsafe {
            let mut set = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(fd);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc)); // it returns the error
            }
            Ok(ChildExits { fd, set })
        }
    }

    /// Whether a child exited since the last call (and forget it). SIGCHLD
    /// does not queue, so one read takes all that is pending.
    fn take(&self) -> bool {
        let mut info = std::mem::MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reading at most one siginfo into a buffer of that size.
        unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) > 0 }
    }

    /// In a fresh child: SIGCHLD back to normal for the request's code.
    fn unblock(&self) {
        // SAFETY: unblocking a signal of our own, single-threaded process.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &self.set, std::ptr::null_mut()) };
    }
}

impl ForkingMixIn {
    pub fn new(l: &ListenerConfig, meter: Meter) -> io::Result<ForkingMixIn> {
        Ok(ForkingMixIn {
            max_children: l.max_children,
            children: UnsharedVec::with_capacity(l.max_children)?,
            spare: UnsharedVec::with_capacity(l.max_children.min(SPARE))?,
            exits: ChildExits::new()?,
            meter,
            access_log: l.access_log,
            details: Details::new(l.max_children)?,
        })
    }

    /// socketserver's `collect_children`: reap every child that has exited
    /// (never blocking), logging each. Costs one read when none has.
    pub fn collect_children(&mut self) {
        if self.exits.take() && !self.children.is_empty() {
            self.reap_exited();
        }
    }

    fn reap_exited(&mut self) {
        while !self.children.is_empty() {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(status) => self.reaped(status),
            }
        }
    }

    fn reaped(&mut self, status: WaitStatus) {
        let Some(pid) = status.pid() else { return };
        let Some(at) = self.children.as_slice().iter().position(|c| c.pid == pid) else {
            return;
        };
        let Some(child) = self.children.swap_remove(at) else {
            return;
        };
        let refused = self.details.was_refused(child.detail);
        let (program, detail) = self.details.release(child.detail);
        if refused && matches!(status, WaitStatus::Exited(_, 0)) {
            refused_inside(self.meter, child.ctx.client());
            let Child { ctx, .. } = child;
            let _ = self.spare.push(ctx);
            return;
        }
        if program {
            self.program_ended(child, status);
            return;
        }
        self.count(&child, status, detail.as_deref());
        let ms = child.started.elapsed().as_millis();
        let client = child.ctx.client();
        match status {
            WaitStatus::Exited(_, 0) => {
                tracing::debug!(
                    client,
                    pid = pid.as_raw(),
                    "request child exited after {ms} ms"
                )
            }
            WaitStatus::Exited(_, FAILED) => tracing::debug!(
                client,
                pid = pid.as_raw(),
                "request child exited with status {FAILED} (its request failed) after {ms} ms"
            ),
            WaitStatus::Exited(_, code) => tracing::warn!(
                client,
                pid = pid.as_raw(),
                "request child exited with status {code} after {ms} ms"
            ),
            WaitStatus::Signaled(_, sig, core) => tracing::warn!(
                client,
                pid = pid.as_raw(),
                "request child killed by {}{} after {ms} ms",
                sig.as_str(),
                if core { " (core dumped)" } else { "" }
            ),
            _ => {}
        }
        let Child { ctx, .. } = child;
        let _ = self.spare.push(ctx); // when full, it is freed
    }

    /// A child that became a program (`exec_request`) ended: its status is
    /// the program's (0 ok, anything else a failed request), logged with
    /// its pid and run time as the exec plugin logs a program it waited for.
    fn program_ended(&mut self, child: Child, status: WaitStatus) {
        let ok = matches!(status, WaitStatus::Exited(_, 0));
        let took = self.meter.ended(child.started, ok);
        let pid = child.pid.as_raw();
        let how = match status {
            WaitStatus::Exited(_, code) => format!("exit {code}"),
            WaitStatus::Signaled(_, sig, _) => {
                format!("killed by signal {} ({})", sig as i32, sig.as_str())
            }
            other => format!("{other:?}"),
        };
        let detail = format!("pid {pid} {how} in {:.3} ms", took.as_secs_f64() * 1000.0);
        let client = child.ctx.client();
        if !ok {
            tracing::warn!(client, pid, "program {detail}");
        }
        if self.access_log {
            let outcome = if ok { Outcome::Ok } else { Outcome::Error };
            log_access(
                Mixin::Fork,
                client,
                took,
                outcome,
                pid as u32,
                Some(&detail),
            );
        }
        let Child { ctx, .. } = child;
        let _ = self.spare.push(ctx);
    }

    /// Count a reaped child's request: its exit status says how it went
    /// (the child itself writes no counter: no shared page, no clock).
    fn count(&self, child: &Child, status: WaitStatus, detail: Option<&str>) {
        let outcome = match status {
            WaitStatus::Exited(_, 0) => Outcome::Ok,
            WaitStatus::Exited(_, FAILED) => Outcome::Error,
            _ => Outcome::Crashed,
        };
        let took = self.meter.ended(child.started, outcome == Outcome::Ok);
        if self.access_log {
            let pid = child.pid.as_raw() as u32;
            log_access(Mixin::Fork, child.ctx.client(), took, outcome, pid, detail);
        }
    }

    fn signal_all(&self, sig: Signal) {
        for child in self.children.as_slice() {
            let _ = kill(child.pid, sig);
        }
    }

    /// Wait until every child is reaped or `deadline` passes.
    fn wait_until(&mut self, deadline: Instant) {
        loop {
            self.exits.take();
            self.reap_exited();
            let left = deadline.saturating_duration_since(Instant::now());
            if self.children.is_empty() || left.is_zero() {
                return;
            }
            let _ = crate::os::poll::wait_readable(&[self.exits.fd.as_raw_fd()], Some(left));
        }
    }
}

impl Dispatch for ForkingMixIn {
    fn has_capacity(&self) -> bool {
        self.children.len() < self.max_children
    }

    fn cap(&self) -> (&'static str, usize) {
        ("max_children", self.max_children)
    }

    fn wake_fd(&self) -> Option<RawFd> {
        Some(self.exits.fd.as_raw_fd())
    }

    fn spare_ctx(&mut self) -> Option<Box<RequestCtx>> {
        self.spare.pop()
    }

    fn process_request(&mut self, mut request: Request, shared: &Arc<Shared>) {
        let started = shared.meter.dispatched();
        if let Err(why) = check_single_threaded() {
            tracing::error!(client = request.ctx.client(), "not forking: {why}");
            request_ended(shared, &request.ctx, started, false);
            close_request(request);
            return;
        }
        let slot = request.slot.take();
        let detail = self.details.take().unwrap_or(u32::MAX);
        shared.instance.before_fork();
        // SAFETY: the worker is single-threaded (checked just above), so the
        // child cannot inherit a lock held by another thread.
        let forked = unsafe { fork() };
        if !matches!(forked, Ok(ForkResult::Child)) {
            shared.instance.after_fork_parent();
        }
        match forked {
            Ok(ForkResult::Child) => {
                run_child(request, shared, &self.exits, (&self.details, detail))
            }
            Ok(ForkResult::Parent { child }) => {
                let Request { ctx, sock, .. } = request;
                drop(sock); // close_request: the worker's copy of the connection
                let record = Child {
                    pid: child,
                    started,
                    _slot: slot,
                    ctx,
                    detail,
                };
                if self.children.push(record).is_err() {
                    // Not reachable: requests are taken only below the cap.
                    tracing::error!(
                        pid = child.as_raw(),
                        "more than max_children children; this one's exit is not logged"
                    );
                }
            }
            Err(e) => {
                let _ = self.details.release(detail);
                let client = request.ctx.client();
                tracing::error!(client, "fork failed: {e}; the connection was closed");
                request_ended(shared, &request.ctx, started, false);
                close_request(request);
            }
        }
    }

    fn service_actions(&mut self) {
        self.collect_children();
    }

    fn server_close(&mut self, timeout: Duration, block: bool) {
        self.collect_children();
        if !block || self.children.is_empty() {
            return;
        }
        self.wait_until(Instant::now() + timeout);
        if self.children.is_empty() {
            return;
        }
        tracing::warn!(
            "{} request children still running after shutdown_timeout ({timeout:?}); sending SIGTERM",
            self.children.len()
        );
        self.signal_all(Signal::SIGTERM);
        self.wait_until(Instant::now() + Duration::from_secs(1));
        if !self.children.is_empty() {
            tracing::warn!(
                "{} request children ignored SIGTERM; sending SIGKILL",
                self.children.len()
            );
            self.signal_all(Signal::SIGKILL);
            self.wait_until(Instant::now() + Duration::from_secs(1));
        }
    }
}

/// The child's whole life: serve the request, then `_exit`. Never returns.
/// Signal handlers inherited from the worker need no undoing (they give a
/// signal its default action in any process but the worker), and nothing
/// is freed or closed by hand: `_exit` does both at once, and each heap
/// page a free would touch is a copy-on-write fault. Inlined (with
/// `finish_request`) so the child's first steps run from fewer code pages,
/// each of which a fresh child faults in. The outcome is the exit status
/// (0 ok, [`FAILED`] a hook failed): the worker counts the request, its
/// duration and its access log line when it reaps the child, so the child
/// writes no shared page and reads no clock.
#[inline(always)]
fn run_child(
    mut request: Request,
    shared: &Shared,
    exits: &ChildExits,
    (details, slot): (&Details, u32),
) -> ! {
    exits.unblock();
    if let Some(flag) = details.exec_flag(slot) {
        crate::plugin::set_exec_mark(flag);
    }
    shared.instance.after_fork_child();
    if request.sock.is_some() {
        // A stream child needs only its connection, not the listening socket.
        // SAFETY: closing our copy of the listening fd; nothing in the child
        // uses it for stream requests.
        unsafe { libc::close(shared.server_fd) };
    }
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        finish_request(shared, &mut request)
    }));
    shutdown_connection(&request);
    if let Some(text) = &request.ctx.detail {
        details.write(slot, text);
    }
    if request.ctx.refused {
        details.refused(slot);
    }
    let status = match ok {
        Ok(true) => 0,
        Ok(false) => FAILED,
        Err(_) => 70,
    };
    // SAFETY: _exit ends the child without running the parent's atexit
    // handlers or destructors (socketserver's os._exit).
    unsafe { libc::_exit(status) }
}
