//! Transports as data: the one place listening sockets are created.
//!
//! A listener's family (inet, inet6, unix) and type (stream, dgram) select
//! the socket; the socketserver attributes (`allow_reuse_address`,
//! `allow_reuse_port`, `request_queue_size`) are applied here, once, in
//! `server_bind` / `server_activate`. Every socket is close-on-exec and
//! non-blocking (the serve loop polls). A unix socket file is replaced only
//! when nothing listens on it, and [`remove_unix_file`] deletes it on exit.

use crate::config::{Address, Family, ListenerConfig, SockType};
use socket2::{Domain, SockAddr, Socket, Type};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// Why a listening socket could not be made; names the listener and address.
#[derive(Debug, thiserror::Error)]
#[error("listener `{name}`: cannot bind {address}: {reason}")]
pub struct BindError {
    pub name: String,
    pub address: String,
    pub reason: String,
}

/// The socket address for a configured address.
pub fn sockaddr(address: &Address) -> io::Result<SockAddr> {
    match address {
        Address::Inet(sa) => Ok(SockAddr::from(*sa)),
        Address::Unix(path) => SockAddr::unix(path),
        Address::Abstract(name) => {
            let mut bytes = vec![0u8];
            bytes.extend_from_slice(name.as_bytes());
            SockAddr::unix(std::ffi::OsStr::from_bytes(&bytes))
        }
    }
}

/// Create, bind and (stream) listen: socketserver's `server_bind` and
/// `server_activate` for one listener.
pub fn bind(l: &ListenerConfig) -> Result<Socket, BindError> {
    let fail = |reason: String| BindError {
        name: l.name.clone(),
        address: l.address_text.clone(),
        reason,
    };
    let sock = server_bind(l).map_err(|e| fail(e.to_string()))?;
    server_activate(l, &sock).map_err(|e| fail(e.to_string()))?;
    Ok(sock)
}

fn domain(f: Family) -> Domain {
    match f {
        Family::Inet => Domain::IPV4,
        Family::Inet6 => Domain::IPV6,
        Family::Unix => Domain::UNIX,
    }
}

fn sock_type(t: SockType) -> Type {
    match t {
        SockType::Stream => Type::STREAM,
        SockType::Dgram => Type::DGRAM,
    }
}

/// socketserver's `server_bind`: options, then bind.
fn server_bind(l: &ListenerConfig) -> io::Result<Socket> {
    // socket2 creates sockets with SOCK_CLOEXEC on Linux.
    let sock = Socket::new(domain(l.family), sock_type(l.socktype), None)?;
    sock.set_nonblocking(true)?;
    if l.family != Family::Unix {
        if l.allow_reuse_address {
            sock.set_reuse_address(true)?;
        }
        if l.allow_reuse_port {
            sock.set_reuse_port(true)?;
        }
        if l.family == Family::Inet6 {
            sock.set_only_v6(true)?;
        }
    }
    if let Address::Unix(path) = &l.address {
        clear_stale_unix_file(path)?;
    }
    sock.bind(&sockaddr(&l.address)?)?;
    if let Address::Unix(path) = &l.address {
        apply_unix_file_settings(l, path)?;
    }
    Ok(sock)
}

/// socketserver's `server_activate`: listen with `request_queue_size`.
fn server_activate(l: &ListenerConfig, sock: &Socket) -> io::Result<()> {
    if l.socktype == SockType::Stream {
        sock.listen(l.request_queue_size)?;
    }
    Ok(())
}

/// Remove a socket file left by a previous run, but only when nothing
/// answers on it: a live daemon's socket is never stolen.
fn clear_stale_unix_file(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    for ty in [Type::STREAM, Type::DGRAM] {
        let probe = Socket::new(Domain::UNIX, ty, None)?;
        match probe.connect(&SockAddr::unix(path)?) {
            Ok(()) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running process", path.display()),
                ))
            }
            Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => continue,
            Err(_) => {}
        }
    }
    std::fs::remove_file(path)
}

/// `socket_mode`, `socket_user` and `socket_group` for a unix socket file.
fn apply_unix_file_settings(l: &ListenerConfig, path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(mode) = l.socket_mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    if l.socket_user.is_some() || l.socket_group.is_some() {
        let uid = match &l.socket_user {
            Some(name) => Some(crate::os::privileges::lookup_user(name)?.0),
            None => None,
        };
        let gid = match &l.socket_group {
            Some(name) => Some(crate::os::privileges::lookup_group(name)?),
            None => None,
        };
        std::os::unix::fs::chown(path, uid, gid)?;
    }
    Ok(())
}

/// Delete a listener's unix socket file, if it has one.
pub fn remove_unix_file(l: &ListenerConfig) {
    if let Address::Unix(path) = &l.address {
        if let Err(e) = std::fs::remove_file(path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(listener = %l.name, "cannot remove {}: {e}", path.display());
            }
        }
    }
}

/// A peer address as text, the way handlers and logs show it:
/// `127.0.0.1:PORT`, `[::1]:PORT`, a unix path, `@name`, or "" (unnamed).
pub fn describe(addr: &SockAddr) -> String {
    let mut out = String::new();
    let _ = describe_into(addr, &mut out);
    out
}

/// [`describe`], written into any `fmt::Write` (a fixed buffer on the
/// request path, so no allocation per request).
pub fn describe_into(addr: &SockAddr, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    if let Some(sa) = addr.as_socket() {
        return write!(out, "{sa}");
    }
    if let Some(p) = addr.as_pathname() {
        return write!(out, "{}", p.display());
    }
    if let Some(name) = addr.as_abstract_namespace() {
        return write!(out, "@{}", String::from_utf8_lossy(name));
    }
    Ok(())
}

/// The address a socket is bound to, as text (for logs: port 0 resolves).
pub fn local_description(sock: &Socket) -> String {
    sock.local_addr().map(|a| describe(&a)).unwrap_or_default()
}
