//! ThreadingMixIn: each request on a thread of its own, bounded by
//! `max_threads`; the threads are kept for the next requests.
//!
//! A request goes to an idle request thread when one is waiting, else to a
//! new thread: so, as with ThreadingMixIn, a request never waits for
//! another to end (the pool grows to `max_threads`), but a busy listener
//! stops paying for a thread's start and end on every request. A thread
//! idle for `IDLE_EXIT` ends.
//!
//! Promises: never more than `max_threads` request threads; no join handle
//! or other record of a finished thread is kept (CPython's bpo-37193); every
//! thread is named after the listener; `server_close` waits for running
//! threads when `block_on_close` (and not `daemon_threads`), up to the
//! deadline, and says how many it left behind; a thread counts as running
//! until it has let go of the shared instance, so when none runs the
//! instance can be destroyed.

use super::Dispatch;
use crate::config::ListenerConfig;
use crate::os::poll::wait_readable;
use crate::worker::request::{finish_request, request_ended, shutdown_request, Request, Shared};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A request thread with nothing to do for this long ends.
const IDLE_EXIT: Duration = Duration::from_secs(1);

/// One request for a request thread: its slot guard and the request.
type Job = (Finished, Request);

/// Requests handed to idle threads, and how many threads are idle.
#[derive(Default)]
struct Pool {
    state: Mutex<PoolState>,
    wake: Condvar,
}

#[derive(Default)]
struct PoolState {
    jobs: VecDeque<Job>,
    idle: usize,
}

impl Pool {
    /// Hand `job` to an idle thread; give it back when none is free.
    fn offer(&self, job: Job) -> Option<Job> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.idle > st.jobs.len() {
            st.jobs.push_back(job);
            drop(st);
            self.wake.notify_one();
            None
        } else {
            Some(job)
        }
    }

    /// The next job for a thread that just finished one; None when none
    /// came within `IDLE_EXIT` (the thread then ends).
    fn next(&self) -> Option<Job> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.idle += 1;
        let deadline = Instant::now() + IDLE_EXIT;
        loop {
            if let Some(job) = st.jobs.pop_front() {
                st.idle -= 1;
                return Some(job);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                st.idle -= 1;
                return None;
            }
            st = match self.wake.wait_timeout(st, left) {
                Ok((st, _)) => st,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// Counts running request threads. A finishing thread bumps the eventfd
/// only when someone may be waiting for it: the loop, when the thread frees
/// a slot at the `max_threads` cap, or `server_close` (`waiting`). Waking
/// the loop for every finished request would cost a context switch per
/// request for nothing.
struct Active {
    running: AtomicUsize,
    max_threads: usize,
    waiting: AtomicBool,
    done: OwnedFd,
}

impl Active {
    fn finished(&self) {
        // SeqCst here and in `server_close`: either this thread sees
        // `waiting`, or the closer sees the lower count.
        let before = self.running.fetch_sub(1, Ordering::SeqCst);
        if before == self.max_threads || self.waiting.load(Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: writing 8 bytes from a live u64 to our eventfd.
            unsafe { libc::write(self.done.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reading 8 bytes into a live u64 from our non-blocking eventfd.
        unsafe { libc::read(self.done.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

/// A request thread's hold on the server: gives the slot back when the
/// thread ends, even if the request panics past the SDK (or the thread
/// never started), and then counts the request as failed unless it was
/// counted already. The thread's reference to the shared instance is
/// released first, so once the running count reaches zero `server_close`
/// finds the instance unshared and can destroy it.
struct Finished {
    active: Arc<Active>,
    shared: Option<Arc<Shared>>,
    started: Instant,
    counted: bool,
}

impl Drop for Finished {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            if !self.counted {
                shared.meter.ended(self.started, false);
            }
        }
        self.active.finished();
    }
}

pub struct ThreadingMixIn {
    max_threads: usize,
    thread_name: String,
    active: Arc<Active>,
    pool: Arc<Pool>,
    span: tracing::Span,
}

impl ThreadingMixIn {
    pub fn new(l: &ListenerConfig) -> io::Result<ThreadingMixIn> {
        Ok(ThreadingMixIn {
            max_threads: l.max_threads,
            thread_name: thread_name(&l.name),
            active: Arc::new(Active {
                running: AtomicUsize::new(0),
                max_threads: l.max_threads,
                waiting: AtomicBool::new(false),
                done: eventfd()?,
            }),
            pool: Arc::new(Pool::default()),
            span: tracing::Span::current(),
        })
    }

    fn running(&self) -> usize {
        self.active.running.load(Ordering::Acquire)
    }
}

/// Thread names are cut to the kernel's 15 bytes (what `top -H` shows).
fn thread_name(listener: &str) -> String {
    let mut end = listener.len().min(15);
    while !listener.is_char_boundary(end) {
        end -= 1;
    }
    listener[..end].to_string()
}

fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd has no memory-safety preconditions.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// ThreadingMixIn's `process_request_thread`: the body of a request
/// thread. `finish_request` runs under the worker's log span; the guard
/// gives the slot back when the thread ends, however it ends.
fn process_request_thread(span: &tracing::Span, mut guard: Finished, mut request: Request) {
    let _in = span.enter();
    if let Some(shared) = &guard.shared {
        let ok = finish_request(shared, &mut request);
        request_ended(shared, &request.ctx, guard.started, ok);
        guard.counted = true;
        shutdown_request(request);
    }
}

/// A request thread: its first request, then those the pool hands it,
/// until it has been idle for `IDLE_EXIT`. Each request's guard is dropped
/// (its slot given back) before the thread waits for the next.
fn request_thread(span: tracing::Span, pool: Arc<Pool>, first: Job) {
    let (guard, request) = first;
    process_request_thread(&span, guard, request);
    while let Some((guard, request)) = pool.next() {
        process_request_thread(&span, guard, request);
    }
}

impl Dispatch for ThreadingMixIn {
    fn has_capacity(&self) -> bool {
        self.running() < self.max_threads
    }

    fn cap(&self) -> (&'static str, usize) {
        ("max_threads", self.max_threads)
    }

    fn wake_fd(&self) -> Option<RawFd> {
        Some(self.active.done.as_raw_fd())
    }

    /// Hand the request to an idle request thread, or start one
    /// (`process_request_thread`).
    fn process_request(&mut self, request: Request, shared: &Arc<Shared>) {
        self.active.running.fetch_add(1, Ordering::AcqRel);
        let guard = Finished {
            active: Arc::clone(&self.active),
            shared: Some(Arc::clone(shared)),
            started: shared.meter.dispatched(),
            counted: false,
        };
        let Some(job) = self.pool.offer((guard, request)) else {
            return;
        };
        let span = self.span.clone();
        let pool = Arc::clone(&self.pool);
        let spawned = std::thread::Builder::new()
            .name(self.thread_name.clone())
            .spawn(move || request_thread(span, pool, job));
        // On failure the closure is dropped: the connection closes and the
        // guard gives the slot back.
        if let Err(e) = spawned {
            tracing::error!("cannot start a request thread: {e}; the connection was closed");
        }
    }

    fn service_actions(&mut self) {
        self.active.drain();
    }

    fn server_close(&mut self, timeout: Duration, block: bool) {
        if !block {
            return;
        }
        let deadline = Instant::now() + timeout;
        self.active.waiting.store(true, Ordering::SeqCst);
        while self.active.running.load(Ordering::SeqCst) > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    "{} request threads still running after shutdown_timeout ({timeout:?}); exiting without them",
                    self.running()
                );
                return;
            }
            let _ = wait_readable(&[self.active.done.as_raw_fd()], Some(left));
            self.active.drain();
        }
    }
}
