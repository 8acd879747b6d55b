//! systemd integration owned by the master: the notify protocol, the
//! watchdog, and socket activation.
//!
//! Promises: notifications go out only when `NOTIFY_SOCKET` is set (through
//! the sd-notify crate), only from the master; `RELOADING=1` always travels
//! with `MONOTONIC_USEC` in one message; the watchdog is pinged at half its
//! interval by the master's loop, so a stuck master is noticed. Inherited
//! sockets (`LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES`) are matched to
//! listeners by name, else by family, type and bound address; the rest are
//! logged, closed and removed from the fd store ([`crate::os::fdstore`]), and
//! so is a name match of the wrong family or type, or a unix socket whose
//! file is gone (it could never be reached). An inherited unix socket's
//! file is never unlinked or re-created. Workers clear every systemd variable at start
//! ([`clear_env_in_worker`]) so they can never speak for the service.

use crate::config::ListenerConfig;
use crate::os::transport;
use sd_notify::NotifyState;
use socket2::Socket;
use std::collections::HashMap;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileTypeExt;
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

    /// A binary upgrade handed over: `pid` is the service's main process now.
    pub fn main_pid(&self, pid: i32, status: &str) {
        if let Ok(pid) = u32::try_from(pid) {
            self.send(&[NotifyState::MainPid(pid), NotifyState::Status(status)]);
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
/// bound address. Returns the matched sockets by listener name. The rest
/// are logged, closed and dropped from the service manager's fd store (a
/// stored socket whose listener left the config must not come back): those
/// matching no listener, duplicates of a matched socket (a socket unit's
/// socket that was also stored), and name matches that cannot serve the
/// listener (another family or type, or a unix socket whose file is gone).
pub fn match_inherited(
    listeners: &[ListenerConfig],
    inherited: Vec<(Socket, String)>,
) -> HashMap<String, Socket> {
    let mut matched: HashMap<String, Socket> = HashMap::new();
    let mut rest = Vec::new();
    for (sock, name) in inherited {
        let listener = listeners.iter().find(|l| l.name == name);
        match listener {
            Some(l) if !matched.contains_key(&name) => match unusable(l, &sock) {
                None => {
                    warn_if_moved(l, &sock);
                    matched.insert(name, sock);
                }
                Some(why) => {
                    tracing::warn!(listener = %name, "closing the inherited socket {}: {why}; binding anew", transport::local_description(&sock));
                    crate::os::fdstore::remove_name(&name);
                }
            },
            _ => rest.push((sock, name)),
        }
    }
    for (sock, name) in rest {
        if let Some(twin) = matched.iter().find(|(_, s)| same_socket(s, &sock)) {
            tracing::debug!(listener = %twin.0, "closing a second copy of the inherited socket (name `{name}`)");
            continue;
        }
        let found = listeners.iter().find(|l| {
            !matched.contains_key(&l.name)
                && same_endpoint(l, &sock)
                && unusable(l, &sock).is_none()
        });
        match found {
            Some(l) => {
                matched.insert(l.name.clone(), sock);
            }
            None => {
                tracing::warn!(
                    "closing an inherited socket that matches no listener: name `{name}`, bound to {}",
                    transport::local_description(&sock)
                );
                crate::os::fdstore::remove_name(&name);
            }
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

/// Why an inherited socket cannot serve `l`, if it cannot.
fn unusable(l: &ListenerConfig, sock: &Socket) -> Option<String> {
    let want_type = match l.socktype {
        crate::config::SockType::Stream => socket2::Type::STREAM,
        crate::config::SockType::Dgram => socket2::Type::DGRAM,
    };
    match sock.r#type() {
        Ok(ty) if ty == want_type => {}
        Ok(_) => return Some(format!("it is not a {} socket", l.socktype)),
        Err(e) => return Some(format!("cannot read its type: {e}")),
    }
    let (Ok(local), Ok(want)) = (sock.local_addr(), transport::sockaddr(&l.address)) else {
        return Some("cannot read its address".into());
    };
    if local.domain() != want.domain() {
        return Some(format!("it is not a {} socket", l.family));
    }
    if let crate::config::Address::Unix(path) = &l.address {
        let bound = local.as_pathname().map(std::path::Path::to_path_buf);
        let on_disk = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
        if bound.as_deref() == Some(path.as_path()) && !on_disk {
            return Some(format!("its file {} is gone", path.display()));
        }
    }
    None
}

/// A name match bound elsewhere than the config says is still used (a
/// socket unit decides its address); say so, since a stored socket keeps
/// its address until the service is stopped.
fn warn_if_moved(l: &ListenerConfig, sock: &Socket) {
    let any_port = matches!(&l.address, crate::config::Address::Inet(sa) if sa.port() == 0);
    if !any_port && !same_endpoint(l, sock) {
        tracing::warn!(
            listener = %l.name,
            "the inherited socket is bound to {}, the config says {}; using the inherited one (stop and start the service to bind the new address)",
            transport::local_description(sock),
            l.address_text
        );
    }
}

/// Two fds of one socket (the inode names the socket).
fn same_socket(a: &Socket, b: &Socket) -> bool {
    match (nix::sys::stat::fstat(a), nix::sys::stat::fstat(b)) {
        (Ok(x), Ok(y)) => x.st_dev == y.st_dev && x.st_ino == y.st_ino,
        _ => false,
    }
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
