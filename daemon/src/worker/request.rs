//! One request's half of the socketserver core, shared by the serve loop
//! and every mixin: the [`Request`] as `get_request` made it, what request
//! threads and children share with the loop ([`Shared`]), and the steps
//! after dispatch: `finish_request` (the handler's `setup`, `handle`,
//! `finish`), `handle_error`, `shutdown_request` and `close_request`.
//!
//! Promises: `finish` runs whenever `setup` succeeded; every failure of a
//! hook goes through `handle_error` with the listener and client; dropping
//! a request closes its connection and gives back its per-source slot.
//! Each mixin counts a request once when it dispatches it
//! (`meter.dispatched`) and once when it ends ([`request_ended`], which
//! also writes the access log line when the listener asks for one).

use crate::config::{ListenerConfig, Mixin};
use crate::os::stats::Meter;
use crate::plugin::{Instance, RequestCtx};
use crate::worker::limits::SourceSlot;
use socket2::Socket;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// A request as `get_request` returns it: what the handler will see, and
/// (stream) the connection, owned here so dropping the request closes it.
pub struct Request {
    pub ctx: Box<RequestCtx>,
    pub sock: Option<Socket>,
    /// The connection's place in `max_connections_per_source`, given back
    /// when dropped: with the request, or (fork) when the child is reaped.
    pub slot: Option<SourceSlot>,
}

/// What request threads and children share with the server loop.
pub struct Shared {
    pub listener: ListenerConfig,
    pub instance: Instance,
    /// The listening socket (datagram replies go out through it).
    pub server_fd: RawFd,
    /// This worker's request counters.
    pub meter: Meter,
}

/// socketserver's `finish_request`: build the handler's request and run
/// `setup`, `handle`, `finish` (finish whenever setup succeeded), reporting
/// failures through `handle_error`. The caller then calls
/// `shutdown_request`, as socketserver's `process_request` does.
/// True when every hook succeeded.
#[inline]
pub fn finish_request(shared: &Shared, request: &mut Request) -> bool {
    if let Some(sock) = &request.sock {
        configure_connection(&shared.listener, sock);
    }
    let (inst, ctx) = (&shared.instance, &mut request.ctx);
    match inst.setup(ctx) {
        Err(e) => {
            handle_error(shared, ctx, "setup", &e);
            false
        }
        Ok(()) => {
            let mut ok = true;
            if let Err(e) = inst.handle(ctx) {
                handle_error(shared, ctx, "handle", &e);
                ok = false;
            }
            if let Err(e) = inst.finish(ctx) {
                handle_error(shared, ctx, "finish", &e);
                ok = false;
            }
            ok
        }
    }
}

/// How a request ended, for the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A hook failed or panicked.
    Error,
    /// The process running it died.
    Crashed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Crashed => "crashed",
        }
    }
}

/// A request dispatched at `started` ended: count it (duration, failure,
/// done) and write its access log line if the listener wants one.
#[inline]
pub fn request_ended(shared: &Shared, ctx: &RequestCtx, started: Instant, ok: bool) {
    if ctx.refused {
        return refused_inside(shared.meter, ctx.client());
    }
    let took = shared.meter.ended(started, ok);
    if shared.listener.access_log {
        let outcome = if ok { Outcome::Ok } else { Outcome::Error };
        log_access(
            shared.listener.mixin,
            ctx.client(),
            took,
            outcome,
            std::process::id(),
            ctx.detail.as_deref(),
        );
    }
}

/// The plugin's own `verify_request`, run inside the request (it needed
/// the connection), refused it (`refuse_request`): counted as refused with
/// reason `verify_request` instead of as a request, as the loop's check
/// would have. Logged at debug: a refusal the plugin decided is the
/// plugin's to report, and a flood of them must not flood the log.
#[cold]
pub fn refused_inside(meter: Meter, client: &str) {
    meter.withdrawn(crate::worker::gate::Reason::Plugin.index());
    tracing::debug!(
        client,
        reason = "verify_request",
        "connection from {client} refused by the plugin's verify_request"
    );
}

/// One access log line (xinetd's `log_on_success`): the worker's span
/// names the listener; journald gets CLIENT, DURATION_US, OUTCOME, and
/// DETAIL when the plugin set one (`set_detail`: a program's exit status).
#[cold]
pub fn log_access(
    mixin: Mixin,
    client: &str,
    took: Duration,
    outcome: Outcome,
    pid: u32,
    detail: Option<&str>,
) {
    let mixin = mixin.as_str();
    let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    let who = if client.is_empty() {
        "an unnamed unix peer"
    } else {
        client
    };
    let Some(detail) = detail else {
        tracing::info!(
            client,
            duration_us = us,
            outcome = outcome.as_str(),
            mixin,
            pid,
            "request from {who}: {} in {:.3} ms ({mixin}, pid {pid})",
            outcome.as_str(),
            took.as_secs_f64() * 1000.0
        );
        return;
    };
    tracing::info!(
        client,
        duration_us = us,
        outcome = outcome.as_str(),
        mixin,
        pid,
        detail,
        "request from {who}: {} in {:.3} ms ({mixin}, pid {pid}): {detail}",
        outcome.as_str(),
        took.as_secs_f64() * 1000.0
    );
}

/// `connection_timeout` and `disable_nagle_algorithm` on an accepted socket.
/// The connection is already blocking: on Linux an accepted socket never
/// inherits the listener's O_NONBLOCK (socket2 accepts with accept4 and
/// SOCK_CLOEXEC only), so no fcntl is spent on it per request.
fn configure_connection(l: &ListenerConfig, sock: &Socket) {
    if let Some(t) = l.connection_timeout {
        let _ = sock.set_read_timeout(Some(t));
        let _ = sock.set_write_timeout(Some(t));
    }
    if l.disable_nagle_algorithm {
        let _ = sock.set_tcp_nodelay(true);
    }
}

/// socketserver's `handle_error`: log with listener and client, then the
/// plugin's hook. The connection is still open.
pub fn handle_error(shared: &Shared, ctx: &mut RequestCtx, hook: &str, message: &str) {
    tracing::error!(client = ctx.client(), "{hook}: {message}");
    shared.instance.handle_error(ctx, message);
}

/// socketserver's `shutdown_request`: end the conversation (stream:
/// shutdown for writing so the peer sees EOF), then `close_request`.
pub fn shutdown_request(request: Request) {
    shutdown_connection(&request);
    close_request(request);
}

/// The first half of `shutdown_request`: a stream's shutdown for writing.
/// A forked child calls only this: its `_exit` closes everything at once.
pub fn shutdown_connection(request: &Request) {
    if let Some(sock) = &request.sock {
        let _ = sock.shutdown(std::net::Shutdown::Write);
    }
}

/// socketserver's `close_request`: release the request's socket.
pub fn close_request(request: Request) {
    drop(request);
}
