//! systemd integration owned by the master: the notify protocol, the
//! watchdog, and socket activation.
//!
//! Promises: notifications go out only when `NOTIFY_SOCKET` is set (through
//! the sd-notify crate), only from the master; `RELOADING=1` always travels
//! with `MONOTONIC_USEC` in one message; the watchdog is pinged at half its
//! interval by the master's loop, so a stuck master is noticed. Inherited
//! sockets (`LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES`) are matched to
//! listeners by name, else by family, type and bound address; the rest are
//! logged and closed. Workers clear every systemd variable at start
//! ([`clear_env_in_worker`]) so they can never speak for the service.

use crate::config::ListenerConfig;
use crate::os::transport;
use sd_notify::NotifyState;
use socket2::Socket;
use std::collections::HashMap;
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

/// The notify side: READY, RELOADING, STOPPING, STATUS, WATCHDOG.
#[derive(Debug)]
pub struct Notifier {
    watchdog: Option<Duration>,
    last_ping: Instant,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        Notifier {
            watchdog: sd_notify::watchdog_enabled(),
            last_ping: Instant::now(),
        }
    }

    fn send(&self, states: &[NotifyState]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!("cannot notify the service manager: {e}");
        }
    }

    /// Startup finished, or a reload finished or was rolled back.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A reload begins: RELOADING=1 with MONOTONIC_USEC, as systemd's
    /// notify-reload type requires.
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[
                NotifyState::Reloading,
                now,
                NotifyState::Status("reloading"),
            ]),
            Err(e) => tracing::warn!("cannot read CLOCK_MONOTONIC for RELOADING=1: {e}"),
        }
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    /// When the next watchdog ping is due (None: watchdog off).
    pub fn watchdog_due(&self) -> Option<Instant> {
        self.watchdog.map(|w| self.last_ping + w / 2)
    }

    /// Ping the watchdog if due.
    pub fn watchdog_tick(&mut self) {
        if self.watchdog_due().is_some_and(|t| Instant::now() >= t) {
            self.send(&[NotifyState::Watchdog]);
            self.last_ping = Instant::now();
        }
    }
}

/// Sockets handed over by the service manager, with their names.
pub fn take_inherited() -> Vec<(Socket, String)> {
    let fds = match sd_notify::listen_fds_with_names() {
        Ok(fds) => fds.collect::<Vec<_>>(),
        Err(e) => {
            tracing::warn!("ignoring the inherited sockets: {e}");
            Vec::new()
        }
    };
    fds.into_iter()
        .map(|(fd, name)| {
            // SAFETY: the service manager passed this fd to us (LISTEN_PID is
            // our pid); nothing else in the process owns it.
            (unsafe { Socket::from_raw_fd(fd) }, name)
        })
        .collect()
}

/// Match inherited sockets to listeners: by name, then by family, type and
/// bound address. Returns the matched sockets by listener name; unmatched
/// ones are logged and closed.
pub fn match_inherited(
    listeners: &[ListenerConfig],
    inherited: Vec<(Socket, String)>,
) -> HashMap<String, Socket> {
    let mut matched: HashMap<String, Socket> = HashMap::new();
    let mut rest = Vec::new();
    for (sock, name) in inherited {
        if listeners.iter().any(|l| l.name == name) && !matched.contains_key(&name) {
            matched.insert(name, sock);
        } else {
            rest.push((sock, name));
        }
    }
    for (sock, name) in rest {
        let found = listeners
            .iter()
            .find(|l| !matched.contains_key(&l.name) && same_endpoint(l, &sock));
        match found {
            Some(l) => {
                matched.insert(l.name.clone(), sock);
            }
            None => tracing::warn!(
                "closing an inherited socket that matches no listener: name `{name}`, bound to {}",
                transport::local_description(&sock)
            ),
        }
    }
    for (name, sock) in &matched {
        if let Err(e) = sock.set_nonblocking(true) {
            tracing::warn!(listener = %name, "inherited socket: cannot make it non-blocking: {e}");
        }
        tracing::info!(listener = %name, "using the inherited socket {}", transport::local_description(sock));
    }
    matched
}

fn same_endpoint(l: &ListenerConfig, sock: &Socket) -> bool {
    let want_type = match l.socktype {
        crate::config::SockType::Stream => socket2::Type::STREAM,
        crate::config::SockType::Dgram => socket2::Type::DGRAM,
    };
    let (Ok(ty), Ok(local), Ok(want)) = (
        sock.r#type(),
        sock.local_addr(),
        transport::sockaddr(&l.address),
    ) else {
        return false;
    };
    ty == want_type && transport::describe(&local) == transport::describe(&want)
}

/// Forget every systemd variable in a worker: only the master notifies,
/// and inherited fds were the master's to take.
pub fn clear_env_in_worker() {
    for var in [
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
    ] {
        // SAFETY: called in a freshly forked worker before it starts any
        // thread, so no other thread can read the environment concurrently.
        unsafe { std::env::remove_var(var) };
    }
}
