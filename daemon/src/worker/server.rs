//! The socketserver core, by socketserver's names: one `Server` serves one
//! listener inside a worker process.
//!
//! `serve_forever` → `_handle_request_noblock` → `get_request` →
//! `verify_request` → `process_request` (the step a mixin overrides, see
//! `dispatch`) → `finish_request` (the handler's `setup`, `handle`,
//! `finish`; `finish` whenever `setup` succeeded) → `shutdown_request` →
//! `close_request`; plus `handle_error`, `handle_timeout`,
//! `service_actions`, `shutdown`, `server_close` and `fileno`.
//!
//! Promises: the loop sleeps in one poll over the listening socket, the
//! signal pipe and the mixin's wake fd (no polling interval, unless the
//! plugin asks for socketserver's: `SOCKHOST_PLUGIN_POLL_SERVICE_ACTIONS`
//! wakes it every `POLL_INTERVAL` to run `service_actions`); garbage from a
//! client fails only that request; an oversized datagram is dropped and
//! counted, never handed on, unless the plugin asks for socketserver's
//! truncation (`SOCKHOST_PLUGIN_TRUNCATE_DATAGRAMS`).

use crate::config::{ListenerConfig, SockType};
use crate::os::backoff::AcceptBackoff;
use crate::os::poll::{wait_readable, wait_readable_array};
use crate::os::signals::SignalPipe;
use crate::os::stats::Meter;
use crate::plugin::{Instance, RequestCtx};
use crate::worker::dispatch::{self, Dispatch};
use crate::worker::gate::{Gate, Refusal};
use crate::worker::intake::{Intake, Outcome};
use crate::worker::notices::{CapLog, OversizeLog};
use crate::worker::request::{shutdown_request, Request, Shared};
use nix::sys::signal::Signal;
use socket2::Socket;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most this many requests are taken per wake-up before the loop looks
/// at signals again, so a flood cannot starve a stop request.
const BATCH: usize = 64;

/// socketserver's `serve_forever(poll_interval=0.5)`: how often an idle
/// loop runs `service_actions` for a plugin that asked for it.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// One listener's server: the listening socket, the handler instance and
/// the dispatch mode.
pub struct Server {
    shared: Arc<Shared>,
    socket: Option<Socket>,
    signals: SignalPipe,
    dispatch: Box<dyn Dispatch>,
    gate: Gate,
    shutdown_requested: bool,
    last_activity: Instant,
    recv_buf: Vec<MaybeUninit<u8>>,
    oversized: OversizeLog,
    backoff: AcceptBackoff,
    full: CapLog,
    /// `proxy_protocol`: connections still sending their PROXY header.
    intake: Option<Intake>,
    /// Headers read while the mixin was at its cap: served first when
    /// there is room again (never more than one poll turn's worth).
    held: std::collections::VecDeque<Request>,
    /// The plugin serves the listening socket itself (`take_listener`,
    /// inetd's `wait`): one request at a time, nothing taken from it here.
    taken: bool,
    handovers: crate::worker::handover::Handovers,
}

impl Server {
    /// A server for `listener` on `socket`, calling `instance`, counting
    /// into `meter`. On error the instance is handed back (to be destroyed
    /// by the caller).
    pub fn new(
        listener: ListenerConfig,
        socket: Socket,
        instance: Instance,
        signals: SignalPipe,
        meter: Meter,
    ) -> Result<Server, (io::Error, Instance)> {
        let taken = crate::plugin::listener_taken();
        let mut bound = listener.clone();
        if taken {
            // inetd's `wait`: one program at a time, whatever the mixin.
            (bound.max_children, bound.max_threads) = (1, 1);
        }
        let dispatch = match dispatch::for_listener(&bound, meter) {
            Ok(d) => d,
            Err(e) => return Err((e, instance)),
        };
        let shared = Arc::new(Shared {
            server_fd: socket.as_raw_fd(),
            listener,
            instance,
            meter,
        });
        let gate = Gate::new(&shared.listener).metered(meter);
        let intake = Intake::for_listener(&shared.listener);
        crate::worker::intake::defer_accept(&shared.listener, &socket);
        let buf_len = match shared.listener.socktype {
            SockType::Dgram => shared.listener.max_packet_size + 1,
            SockType::Stream => 0,
        };
        Ok(Server {
            shared,
            socket: Some(socket),
            signals,
            dispatch,
            gate,
            shutdown_requested: false,
            last_activity: Instant::now(),
            recv_buf: vec![MaybeUninit::uninit(); buf_len],
            oversized: OversizeLog::default(),
            backoff: AcceptBackoff::default(),
            full: CapLog::default(),
            intake: intake.filter(|_| !taken),
            held: std::collections::VecDeque::new(),
            taken,
            handovers: Default::default(),
        })
    }

    fn listener(&self) -> &ListenerConfig {
        &self.shared.listener
    }

    /// socketserver's `fileno`: the listening socket's fd (-1 once closed).
    pub fn fileno(&self) -> RawFd {
        self.socket.as_ref().map_or(-1, |s| s.as_raw_fd())
    }

    /// Serve until `shutdown` (SIGTERM/SIGINT), then return.
    pub fn serve_forever(&mut self) -> io::Result<()> {
        while !self.shutdown_requested {
            while !self.held.is_empty() && self.dispatch.has_capacity() {
                if let Some(request) = self.held.pop_front() {
                    self.verify_and_process(request);
                }
            }
            let room = self.dispatch.has_capacity();
            self.full.update(&*self.dispatch, room);
            let can_accept = room && self.backoff.ready();
            let fds = [
                self.signals.fd(),
                if can_accept { self.fileno() } else { -1 },
                self.dispatch.wake_fd().unwrap_or(-1),
            ];
            let timeout = self.poll_timeout(can_accept, room);
            let ready = if room && self.intake.as_ref().is_some_and(|i| !i.is_empty()) {
                self.wait_with_intake(fds, timeout)?
            } else {
                wait_readable_array(fds, timeout)?
            };
            if ready[0] {
                self.handle_signals();
            }
            if ready[1] && !self.shutdown_requested && self.taken {
                self.hand_over_listener();
            } else if ready[1] && !self.shutdown_requested {
                self._handle_request_noblock();
            } else if can_accept && self.timeout_expired() {
                self.handle_timeout();
            }
            self.service_actions();
        }
        Ok(())
    }

    /// The serve loop's poll with the connections still sending their
    /// PROXY header beside `fixed`; reads what arrived and hands on the
    /// headers that are done. Returns `fixed`'s readiness.
    fn wait_with_intake(
        &mut self,
        fixed: [RawFd; 3],
        timeout: Option<Duration>,
    ) -> io::Result<[bool; 3]> {
        let mut fds = fixed.to_vec();
        if let Some(intake) = &self.intake {
            intake.fds(&mut fds);
        }
        let ready = wait_readable(&fds, timeout)?;
        let done = match self.intake.as_mut() {
            Some(intake) => intake.advance(&ready[3..], Instant::now()),
            None => Vec::new(),
        };
        for outcome in done {
            self.header_read(outcome);
        }
        Ok([ready[0], ready[1], ready[2]])
    }

    /// A PROXY header is read (or failed): on to `verify_request`, or
    /// refused with reason `proxy_header`.
    fn header_read(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Admitted(mut request, p) => {
                let client = p.source.map(crate::worker::proxy::client_addr);
                request.ctx.proxied(client, p.tlvs);
                if self.dispatch.has_capacity() {
                    self.verify_and_process(request);
                } else {
                    self.held.push_back(request);
                }
            }
            Outcome::Refused(request, why) => {
                let refusal = Refusal::proxy_header(why);
                self.gate
                    .refuse(request.ctx.client(), request.sock.as_ref(), &refusal);
                shutdown_request(request);
            }
        }
    }

    /// How long the loop may sleep: until the idle `timeout`, the accept
    /// back-off, refusals due to be logged, or (while the mixin has room to
    /// take them on) a PROXY header's deadline.
    fn poll_timeout(&self, can_accept: bool, room: bool) -> Option<Duration> {
        let idle = self.listener().timeout.filter(|_| can_accept);
        let idle = idle.map(|t| t.saturating_sub(self.last_activity.elapsed()));
        let header = self
            .intake
            .as_ref()
            .filter(|_| room)
            .and_then(|i| i.due_in(Instant::now()));
        let poll = self
            .shared
            .instance
            .wants(sockhost_sdk::sys::SOCKHOST_PLUGIN_POLL_SERVICE_ACTIONS)
            .then_some(POLL_INTERVAL);
        [
            self.backoff.remaining(),
            self.gate.log_due_in(),
            header,
            poll,
        ]
        .into_iter()
        .fold(idle, |a, b| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    fn timeout_expired(&self) -> bool {
        self.listener()
            .timeout
            .is_some_and(|t| self.last_activity.elapsed() >= t)
    }

    fn handle_signals(&mut self) {
        let mut stop = false;
        // SIGCHLD needs nothing here: service_actions reaps after this turn
        // (a fork worker gets it on its mixin's signalfd instead).
        self.signals
            .drain_each(|sig| stop |= matches!(sig, Signal::SIGTERM | Signal::SIGINT));
        if stop {
            self.shutdown();
        }
    }

    /// socketserver's `shutdown`: stop the loop after this turn.
    pub fn shutdown(&mut self) {
        if !self.shutdown_requested {
            tracing::info!("stopping: no new requests; finishing those in flight");
        }
        self.shutdown_requested = true;
    }

    /// Take every request waiting now (up to a batch), without blocking.
    #[allow(non_snake_case)]
    fn _handle_request_noblock(&mut self) {
        for _ in 0..BATCH {
            let request = match self.get_request() {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(e) => {
                    self.backoff.failed(&self.shared.listener.name, &e);
                    return;
                }
            };
            self.backoff.succeeded(&self.shared.listener.name);
            if self.shared.listener.timeout.is_some() {
                self.last_activity = Instant::now();
            }
            match self.intake.as_mut() {
                None => self.verify_and_process(request),
                Some(intake) => {
                    if let Some(outcome) = intake.accepted(request, Instant::now()) {
                        self.header_read(outcome);
                    }
                }
            }
            if !self.dispatch.has_capacity() || crate::os::signals::pending() {
                return;
            }
        }
    }

    /// inetd's `wait`: the listening socket is readable and the plugin
    /// serves it itself; one request whose fd is the listening socket, no
    /// client, no data. The loop polls the socket again only once the
    /// mixin (capped at one) has room: when that request ended.
    fn hand_over_listener(&mut self) {
        let name = &self.shared.listener.name;
        if self.handovers.looping(Instant::now()) {
            let why = io::Error::other(
                "the `wait` program keeps ending without taking the request waiting on the socket",
            );
            self.backoff.failed(name, &why);
            return;
        }
        if self.handovers.calm() {
            self.backoff.succeeded(name);
        }
        if self.shared.listener.timeout.is_some() {
            self.last_activity = Instant::now();
        }
        // SAFETY: an all-zero sockaddr_storage of length 0 is a valid
        // (empty, AF_UNSPEC) address.
        let none = unsafe { socket2::SockAddr::new(std::mem::zeroed(), 0) };
        let ctx = self.new_ctx(self.shared.server_fd, none, Vec::new());
        let request = Request {
            ctx,
            sock: None,
            slot: None,
        };
        self.process_request(request);
    }

    /// `verify_request`, then `process_request` or `shutdown_request`.
    #[inline]
    fn verify_and_process(&mut self, mut request: Request) {
        if self.verify_request(&mut request) {
            self.process_request(request);
        } else {
            shutdown_request(request);
        }
    }

    /// socketserver's `get_request`: accept a connection, or receive a
    /// datagram. `None` when nothing is waiting (or a datagram was dropped).
    fn get_request(&mut self) -> io::Result<Option<Request>> {
        if !crate::os::signals::enter_accept() {
            return Ok(None); // stopping: take nothing more
        }
        let outcome = self.take_one();
        crate::os::signals::leave_accept();
        outcome
    }

    fn take_one(&mut self) -> io::Result<Option<Request>> {
        let Some(sock) = self.socket.as_ref() else {
            return Ok(None);
        };
        let outcome = match self.shared.listener.socktype {
            SockType::Stream => sock.accept().map(|(s, peer)| {
                let ctx = self.new_ctx(s.as_raw_fd(), peer, Vec::new());
                Some(Request {
                    ctx,
                    sock: Some(s),
                    slot: None,
                })
            }),
            SockType::Dgram => self.receive_datagram(),
        };
        match outcome {
            Err(e) if is_transient(&e) => Ok(None),
            other => other,
        }
    }

    fn receive_datagram(&mut self) -> io::Result<Option<Request>> {
        let Some(sock) = self.socket.as_ref() else {
            return Ok(None);
        };
        let (n, peer) = sock.recv_from_with_flags(&mut self.recv_buf, libc::MSG_TRUNC)?;
        let max = self.shared.listener.max_packet_size;
        let truncate = self
            .shared
            .instance
            .wants(sockhost_sdk::sys::SOCKHOST_PLUGIN_TRUNCATE_DATAGRAMS);
        let n = if truncate { n.min(max) } else { n };
        if n > max {
            self.shared.meter.dropped();
            self.oversized
                .record(&crate::os::transport::describe(&peer), n, max);
            return Ok(None);
        }
        // SAFETY: recvfrom initialised the first n bytes (n <= buffer size).
        let data =
            unsafe { std::slice::from_raw_parts(self.recv_buf.as_ptr().cast::<u8>(), n) }.to_vec();
        let ctx = self.new_ctx(self.shared.server_fd, peer, data);
        Ok(Some(Request {
            ctx,
            sock: None,
            slot: None,
        }))
    }

    /// A request's context, in a spare buffer of the mixin's if it has one.
    fn new_ctx(&mut self, fd: RawFd, peer: socket2::SockAddr, data: Vec<u8>) -> Box<RequestCtx> {
        let l = &self.shared.listener;
        let spare = self.dispatch.spare_ctx();
        RequestCtx::new(spare, fd, l.family, l.socktype, peer, data)
    }

    /// socketserver's `verify_request`: the built-in access control, then
    /// the plugin's hook. Runs before any fork or thread.
    fn verify_request(&mut self, request: &mut Request) -> bool {
        let verdict = match self.gate.check(request.ctx.peer(), request.sock.as_ref()) {
            Ok(slot) if self.shared.instance.verify_request(&mut request.ctx) => {
                request.slot = slot;
                return true;
            }
            Ok(_) => Refusal::plugin(),
            Err(why) => why,
        };
        self.gate
            .refuse(request.ctx.client(), request.sock.as_ref(), &verdict);
        false
    }

    /// socketserver's `process_request`: hand over to the mixin.
    fn process_request(&mut self, request: Request) {
        self.dispatch.process_request(request, &self.shared);
    }

    /// socketserver's `handle_timeout`: the plugin's hook, then reset.
    pub fn handle_timeout(&mut self) {
        self.last_activity = Instant::now();
        self.dispatch.service_actions();
        self.shared.instance.handle_timeout();
    }

    /// socketserver's `service_actions`: the mixin's (fork: reap children)
    /// then the plugin's; and refusal counts due to be logged.
    pub fn service_actions(&mut self) {
        self.dispatch.service_actions();
        self.gate.service_actions();
        self.shared.instance.service_actions();
    }

    /// socketserver's `server_close`: wait for requests in flight
    /// (`block_on_close`, up to `shutdown_timeout`), close the listening
    /// socket, and destroy the handler instance. The socket closes only
    /// after the wait: a datagram request thread sends its reply on it
    /// (the loop has stopped taking requests already; the master keeps
    /// the socket open for the next generation either way).
    pub fn server_close(mut self, shutdown_timeout: Duration) {
        let l = &self.shared.listener;
        let block = l.block_on_close && !l.daemon_threads;
        self.dispatch.server_close(shutdown_timeout, block);
        self.socket = None;
        drop(self.dispatch);
        match Arc::try_unwrap(self.shared) {
            Ok(shared) => shared.instance.destroy(),
            Err(_) => {
                tracing::warn!("requests still running at exit; the plugin's destroy is skipped")
            }
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAGAIN | libc::EINTR | libc::ECONNABORTED | libc::EPROTO | libc::EPERM)
    )
}
