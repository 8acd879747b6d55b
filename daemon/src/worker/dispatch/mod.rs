//! Dispatch modes: socketserver's `process_request` overrides, one trait
//! with three implementations.
//!
//! - [`SyncMixIn`]: handle inline, one request at a time (BaseServer).
//! - [`ThreadingMixIn`]: a named thread per request, at most `max_threads`
//!   at once; at the cap the loop stops accepting (connections wait in the
//!   backlog, none refused). Finished threads leave nothing behind; a
//!   thread that frees a slot at the cap (or ends while `server_close`
//!   waits) wakes the loop through an eventfd.
//! - [`ForkingMixIn`]: a child process per request, at most `max_children`;
//!   children are reaped in `service_actions` (`collect_children`), woken by
//!   SIGCHLD (read from a signalfd). A child always ends in `_exit`.
//!   Forking is refused when the worker has more than one thread (a fork
//!   could deadlock the child).

mod details;
mod fork;
mod thread;
mod unshared;

pub use fork::ForkingMixIn;
pub use thread::ThreadingMixIn;

use crate::config::{ListenerConfig, Mixin};
use crate::os::stats::Meter;
use crate::plugin::RequestCtx;
use crate::worker::request::{finish_request, request_ended, shutdown_request, Request, Shared};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

/// The part of the server a mixin overrides.
pub trait Dispatch {
    /// Whether a new request may be taken now (below the cap).
    fn has_capacity(&self) -> bool;
    /// The cap's config key and value, for the log line when it is hit.
    fn cap(&self) -> (&'static str, usize) {
        ("", 0)
    }
    /// An fd that becomes readable when capacity may have come back.
    fn wake_fd(&self) -> Option<RawFd> {
        None
    }
    /// A used request buffer to fill for the next request, if the mixin
    /// keeps them (fork: a fresh allocation per request costs page faults).
    fn spare_ctx(&mut self) -> Option<Box<RequestCtx>> {
        None
    }
    /// socketserver's `process_request`.
    fn process_request(&mut self, request: Request, shared: &Arc<Shared>);
    /// The mixin's part of `service_actions` (fork: reap children).
    fn service_actions(&mut self) {}
    /// The mixin's part of `server_close`: wait for requests in flight when
    /// `block`, up to `timeout`.
    fn server_close(&mut self, timeout: Duration, block: bool);
}

/// The dispatch a listener's `mixin` names. Fails only when the system
/// refuses the fd a mixin waits on (descriptor exhaustion at start).
/// `meter` is where the fork mixin counts the children it reaps.
pub fn for_listener(l: &ListenerConfig, meter: Meter) -> std::io::Result<Box<dyn Dispatch>> {
    Ok(match l.mixin {
        Mixin::Sync => Box::new(SyncMixIn),
        Mixin::Thread => Box::new(ThreadingMixIn::new(l)?),
        Mixin::Fork => Box::new(ForkingMixIn::new(l, meter)?),
    })
}

/// BaseServer's own `process_request`: finish the request inline.
pub struct SyncMixIn;

impl Dispatch for SyncMixIn {
    fn has_capacity(&self) -> bool {
        true
    }
    fn process_request(&mut self, mut request: Request, shared: &Arc<Shared>) {
        let started = shared.meter.dispatched();
        let ok = finish_request(shared, &mut request);
        request_ended(shared, &request.ctx, started, ok);
        shutdown_request(request);
    }
    fn server_close(&mut self, _timeout: Duration, _block: bool) {}
}
