//! Connections of a `proxy_protocol` listener that are still sending their
//! PROXY header: read in the serve loop, never in a request's thread or
//! child.
//!
//! Why here: the header's address is what `allow`/`deny` and the per-source
//! limits judge, and they must judge before a thread or a process is spent;
//! and the loop must never wait on one client. So a connection whose header
//! is not all there at accept is parked here, its fd polled beside the
//! listening socket, until the header is complete, broken, or
//! `proxy_header_timeout` passes. Owns the trust check (`proxy_trusted`,
//! against the socket's real peer) and the parked set. Promises: no call
//! blocks; a parked connection costs one fd and its header's bytes; at most
//! [`MAX_WAITING`] are parked (more are refused at once, so a flood of
//! silent connections cannot exhaust fds); each one leaves exactly once,
//! admitted with what its header said or refused with the reason.

use crate::config::ListenerConfig;
use crate::worker::access::canonical_ip;
use crate::worker::proxy::{HeaderReader, Proxied, Step};
use crate::worker::request::Request;
use ipnet::IpNet;
use socket2::Socket;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// The most connections waiting for their header at once.
pub const MAX_WAITING: usize = 1024;

/// On a TCP listener with `proxy_protocol`: TCP_DEFER_ACCEPT, so the
/// kernel hands over a connection once its first bytes (the header, which
/// a balancer sends at once) are there, and the loop rarely has to park
/// one. A connection that sends nothing is accepted after about
/// `proxy_header_timeout` anyway, then parked and refused as usual.
/// Without `proxy_protocol` it is cleared (the listening socket outlives
/// a reload that turns it off, and a protocol where the server speaks
/// first must not wait). Best effort: without it the loop parks more.
pub fn defer_accept(l: &ListenerConfig, listening: &Socket) {
    use crate::config::{Family, SockType};
    if l.family == Family::Unix || l.socktype != SockType::Stream {
        return;
    }
    let secs = if l.proxy_protocol {
        l.proxy_header_timeout.as_secs().clamp(1, 60) as libc::c_int
    } else {
        0
    };
    // SAFETY: setsockopt reads one c_int from a live local for this call,
    // on a socket this process holds open.
    let rc = unsafe {
        libc::setsockopt(
            listening.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&secs as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        tracing::debug!("TCP_DEFER_ACCEPT not set: {e}");
    }
}

/// What became of a connection's header.
pub enum Outcome {
    /// The header is read; the request may go on to `verify_request`.
    Admitted(Request, Proxied),
    /// Close it without reaching the plugin; the reason for the log.
    Refused(Request, String),
}

struct Waiting {
    /// Taken out once, when the connection leaves.
    request: Slot,
    reader: HeaderReader,
    deadline: Instant,
}

/// One listener's header intake.
pub struct Intake {
    trusted: Vec<IpNet>,
    timeout: Duration,
    waiting: Vec<Waiting>,
}

impl Intake {
    /// The intake for `l`, or `None` when it has `proxy_protocol` off.
    pub fn for_listener(l: &ListenerConfig) -> Option<Intake> {
        if l.proxy_protocol && l.proxy_trusted.is_empty() && l.family != crate::config::Family::Unix
        {
            tracing::warn!(
                "proxy_protocol without proxy_trusted: any peer that reaches this listener may name any client; list the balancers in proxy_trusted"
            );
        }
        l.proxy_protocol.then(|| Intake {
            trusted: l.proxy_trusted.clone(),
            timeout: l.proxy_header_timeout,
            waiting: Vec::new(),
        })
    }

    /// A connection just accepted: admitted or refused now if its header
    /// is all there (or it may not send one), else parked (`None`).
    pub fn accepted(&mut self, request: Request, now: Instant) -> Option<Outcome> {
        if let Some(why) = self.untrusted(&request) {
            return Some(Outcome::Refused(request, why));
        }
        let mut reader = HeaderReader::default();
        let Some(sock) = request.sock.as_ref() else {
            return Some(Outcome::Refused(request, "not a connection".into()));
        };
        match reader.read_from(sock) {
            Step::Done(p) => Some(Outcome::Admitted(request, p)),
            Step::Failed(why) => Some(Outcome::Refused(request, why)),
            Step::More if self.waiting.len() >= MAX_WAITING => Some(Outcome::Refused(
                request,
                format!("{MAX_WAITING} connections already waiting for their PROXY header"),
            )),
            Step::More => {
                self.waiting.push(Waiting {
                    request: Slot(Some(request)),
                    reader,
                    deadline: now + self.timeout,
                });
                None
            }
        }
    }

    /// The peer may not send a header: why, or `None` when it may.
    fn untrusted(&self, request: &Request) -> Option<String> {
        if self.trusted.is_empty() {
            return None;
        }
        let ip = request
            .ctx
            .peer()
            .as_socket()
            .map(|sa| canonical_ip(sa.ip()))?;
        if self.trusted.iter().any(|n| n.contains(&ip)) {
            return None;
        }
        Some("the peer is not in proxy_trusted".into())
    }

    /// Whether any connection is parked.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The parked connections' fds, in the order [`Intake::advance`] takes.
    pub fn fds(&self, out: &mut Vec<RawFd>) {
        out.extend(
            self.waiting
                .iter()
                .map(|w| w.request.sock().map_or(-1, |s| s.as_raw_fd())),
        );
    }

    /// How long until the first parked connection runs out of time.
    pub fn due_in(&self, now: Instant) -> Option<Duration> {
        self.waiting
            .iter()
            .map(|w| w.deadline.saturating_duration_since(now))
            .min()
    }

    /// Read from the parked connections that `ready` (one flag per fd
    /// given by [`Intake::fds`]) says are readable, and give up on those
    /// whose time is up. Returns those that are done, in order.
    pub fn advance(&mut self, ready: &[bool], now: Instant) -> Vec<Outcome> {
        let mut done = Vec::new();
        let timeout = self.timeout;
        let mut flags = ready.iter().copied();
        self.waiting.retain_mut(|w| {
            let readable = flags.next().unwrap_or(false);
            let step = match (readable, w.request.sock()) {
                (true, Some(sock)) => w.reader.read_from(sock),
                _ => Step::More,
            };
            let outcome = match step {
                Step::More if now < w.deadline => return true,
                Step::More => Err(format!("no complete PROXY header within {timeout:?}")),
                Step::Done(p) => Ok(p),
                Step::Failed(why) => Err(why),
            };
            done.push((w.request.take(), outcome));
            false
        });
        done.into_iter()
            .filter_map(|(request, outcome)| {
                let request = request?;
                Some(match outcome {
                    Ok(p) => Outcome::Admitted(request, p),
                    Err(why) => Outcome::Refused(request, why),
                })
            })
            .collect()
    }
}

/// A parked request, until it leaves.
struct Slot(Option<Request>);

impl Slot {
    fn sock(&self) -> Option<&socket2::Socket> {
        self.0.as_ref().and_then(|r| r.sock.as_ref())
    }

    fn take(&mut self) -> Option<Request> {
        self.0.take()
    }
}
