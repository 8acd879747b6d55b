//! The control socket `sockhostctl` talks to: a unix stream socket in the
//! master's poll loop, one command per connection.
//!
//! Protocol: the client sends one line (`status`, `status json`,
//! `reload`); the master answers with one line holding the exit status
//! `sockhostctl` should use (`0`, `1`), then the text to print, and closes.
//!
//! Reloads: a `reload` request waits (parked, no deadline) for the outcome
//! of a reload that starts after it arrived. [`Control::wants_reload`] tells
//! the master someone waits; [`Control::reload_started`] (called whenever a
//! reload starts, for SIGHUP too) attaches every waiting client to that
//! reload; [`Control::reload_finished`] answers them. A request that
//! arrives while a reload runs therefore waits for the next one, which the
//! master starts once the running one is over: reloads run one after the
//! other and every client hears about one that began after it asked.
//!
//! Upgrades: an `upgrade` request waits likewise, for the outcome of the
//! binary upgrade in flight or of one the master starts for it
//! ([`Control::wants_upgrade`], [`Control::upgrade_finished`]).
//!
//! Promises: never blocks (see `conn`); the socket file has mode 0600, or
//! 0660 and the daemon's group when `[daemon] group` is set; it is removed
//! when the master exits, and never replaced while another process
//! answers on it.

use crate::config::{ControlSocket, DaemonConfig};
use crate::master::conn::{Endpoint, Limits};
use crate::master::status::ReloadRecord;
use crate::os::poll::Interest;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const LIMITS: Limits = Limits {
    max_request: 1024,
    timeout: Duration::from_secs(5),
    max_clients: 16,
};

/// Something the master must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    Status { json: bool },
}

/// The control socket and its clients.
pub struct Control {
    endpoint: Endpoint<UnixListener>,
    path: PathBuf,
    /// Reload requests not yet attached to a reload.
    waiting: Vec<u64>,
    /// Clients waiting for the reload that runs now.
    attached: Vec<u64>,
    /// Clients waiting for a binary upgrade's outcome.
    upgrading: Vec<u64>,
    /// The socket file belongs to the new daemon of an upgrade: not
    /// removed on exit.
    keep_file: bool,
    /// The last reload's outcome (for `status`).
    pub last_reload: Option<ReloadRecord>,
}

/// Open the control socket `daemon` asks for. `Ok(None)`: none (turned
/// off, or the default's folder is missing or not writable: a warning says
/// so). Err only for a path set explicitly.
///
/// `handed` is the listening socket a binary upgrade's old daemon passed
/// on: used as it is (the file stays) when it is bound to the same path.
pub fn open(
    daemon: &DaemonConfig,
    handed: Option<std::os::fd::OwnedFd>,
) -> io::Result<Option<Control>> {
    let (path, default) = match &daemon.control_socket {
        ControlSocket::Off => return Ok(None),
        ControlSocket::Default(p) => (p.clone(), true),
        ControlSocket::At(p) => (p.clone(), false),
    };
    let taken = handed.map(UnixListener::from).filter(|l| {
        l.local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(Path::to_path_buf))
            .is_some_and(|p| p == path)
    });
    let keep_file = taken.is_some();
    let bound = match taken {
        Some(l) => l.set_nonblocking(true).map(|()| l),
        None => bind(&path, daemon),
    };
    match bound {
        Ok(listener) => Ok(Some(Control {
            endpoint: Endpoint::new(listener, LIMITS),
            path,
            waiting: Vec::new(),
            attached: Vec::new(),
            upgrading: Vec::new(),
            keep_file,
            last_reload: None,
        })),
        Err(e) if default => {
            tracing::warn!(
                "no control socket at {} ({e}); sockhostctl cannot reach this daemon (set [daemon] control_socket, or \"\" to turn it off)",
                path.display()
            );
            Ok(None)
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("[daemon] control_socket {}: {e}", path.display()),
        )),
    }
}

/// Bind `path` (replacing a stale socket file nobody answers on), set its
/// mode and owner, listen.
fn bind(path: &Path, daemon: &DaemonConfig) -> io::Result<UnixListener> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another daemon answers on it",
            ));
        }
        let meta = std::fs::symlink_metadata(path)?;
        if !std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket",
            ));
        }
        std::fs::remove_file(path)?;
    }
    // Bound with umask 0177 so the file is never briefly open to others.
    // SAFETY: umask only changes this process's file creation mask.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above, restoring it.
    unsafe { libc::umask(old) };
    let listener = bound?;
    listener.set_nonblocking(true)?;
    let gid = match daemon.group.as_deref() {
        Some(g) => Some(crate::os::privileges::lookup_group(g)?),
        None => None,
    };
    let uid = match daemon.user.as_deref() {
        Some(u) => Some(crate::os::privileges::lookup_user(u)?.0),
        None => None,
    };
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::chown(path, uid, gid)?;
    }
    let mode = if gid.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// A whole command: one line.
fn complete(input: &[u8]) -> bool {
    input.contains(&b'\n')
}

/// `code` and `text` as the protocol's answer.
fn answer(code: u8, text: &str) -> Vec<u8> {
    let mut out = format!("{code}\n{text}").into_bytes();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

impl Control {
    pub fn poll_fds(&mut self, out: &mut Vec<(RawFd, Interest)>) {
        self.endpoint.poll_fds(out);
    }

    pub fn fds(&self, out: &mut Vec<RawFd>) {
        self.endpoint.fds(out);
    }

    /// Handle readiness (in the order of the last `poll_fds`); returns
    /// what the master must answer with [`Control::answer`].
    pub fn on_ready(&mut self, ready: &[bool]) -> Vec<(u64, Ask)> {
        let mut asks = Vec::new();
        for id in self.endpoint.on_ready(ready, complete) {
            let line = self
                .endpoint
                .conn(id)
                .map(|c| String::from_utf8_lossy(&c.input).into_owned())
                .unwrap_or_default();
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["status"] => asks.push((id, Ask::Status { json: false })),
                ["status", "json"] => asks.push((id, Ask::Status { json: true })),
                ["reload"] => self.waiting.push(id),
                ["upgrade"] => self.upgrading.push(id),
                _ => {
                    let msg = format!("unknown command {:?}", line.trim_end());
                    self.endpoint.answer(id, answer(2, &msg));
                }
            }
        }
        asks
    }

    /// Answer `id` with exit status `code` and `text`.
    pub fn answer(&mut self, id: u64, code: u8, text: &str) {
        self.endpoint.answer(id, answer(code, text));
    }

    /// Whether a client waits for a reload that has not started yet.
    pub fn wants_reload(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// A reload starts now: every waiting client gets its outcome.
    pub fn reload_started(&mut self) {
        self.attached.append(&mut self.waiting);
    }

    /// The reload that started last is over: answer its clients.
    pub fn reload_finished(&mut self, outcome: &ReloadRecord) {
        let code = if outcome.ok { 0 } else { 1 };
        for id in std::mem::take(&mut self.attached) {
            self.answer(id, code, &outcome.message);
        }
        self.last_reload = Some(outcome.clone());
    }

    /// Whether a client waits for a binary upgrade.
    pub fn wants_upgrade(&self) -> bool {
        !self.upgrading.is_empty()
    }

    /// A binary upgrade ended: answer every client waiting for one.
    pub fn upgrade_finished(&mut self, ok: bool, message: &str) {
        for id in std::mem::take(&mut self.upgrading) {
            self.answer(id, if ok { 0 } else { 1 }, message);
        }
    }

    /// The listening socket, for a binary upgrade to hand over.
    pub fn listening_fd(&self) -> RawFd {
        self.endpoint.listener_fd()
    }

    /// This daemon serves: a socket file taken over from the old daemon of
    /// an upgrade is its own now.
    pub fn own_file(&mut self) {
        self.keep_file = false;
    }

    /// A binary upgrade handed over: the new daemon accepts from now on,
    /// and the socket file is its own.
    pub fn handed_over(&mut self) {
        self.keep_file = true;
        self.endpoint.stop_accepting();
    }

    /// Refuse the reloads asked for (the daemon is stopping).
    pub fn refuse_reloads(&mut self, why: &str) {
        for id in std::mem::take(&mut self.waiting) {
            self.answer(id, 1, why);
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.endpoint.next_deadline()
    }

    pub fn expire(&mut self, now: Instant) {
        self.endpoint.expire(now);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        if !self.keep_file {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ControlSocket;
    use std::io::{Read, Write};

    fn daemon(path: &Path) -> DaemonConfig {
        DaemonConfig {
            plugin_dir: "/".into(),
            include: Vec::new(),
            shutdown_timeout: Duration::from_secs(1),
            start_timeout: Duration::from_secs(30),
            user: None,
            group: None,
            strict_plugin_permissions: true,
            control_socket: ControlSocket::At(path.to_path_buf()),
            metrics: None,
        }
    }

    fn turn(c: &mut Control) {
        let mut fds = Vec::new();
        c.poll_fds(&mut fds);
        let ready =
            crate::os::poll::wait_events(&fds, Some(Duration::from_millis(200))).expect("poll");
        assert!(c.on_ready(&ready).is_empty(), "only reloads asked");
    }

    fn ask_reload(path: &Path, c: &mut Control) -> UnixStream {
        let mut s = UnixStream::connect(path).expect("connect");
        s.write_all(b"reload\n").expect("send");
        while !c.wants_reload() {
            turn(c);
        }
        s
    }

    fn record(ok: bool, message: &str) -> ReloadRecord {
        ReloadRecord {
            at: std::time::SystemTime::now(),
            ok,
            message: message.into(),
        }
    }

    #[test]
    fn a_reload_asked_for_while_one_runs_gets_the_next_ones_outcome() {
        let dir = std::env::temp_dir().join(format!("sockhost-ctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("c.sock");
        let mut c = open(&daemon(&path), None)
            .expect("open")
            .expect("a control socket");
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut first = ask_reload(&path, &mut c);
        c.reload_started();
        assert!(!c.wants_reload(), "attached to the running reload");
        let mut second = ask_reload(&path, &mut c);
        c.reload_finished(&record(true, "generation 2"));
        let mut got = String::new();
        first.read_to_string(&mut got).expect("answer");
        assert_eq!(got, "0\ngeneration 2\n");
        assert!(c.wants_reload(), "the second waits for a reload of its own");
        c.reload_started();
        c.reload_finished(&record(false, "/x.toml:1:2: bad"));
        got.clear();
        second.read_to_string(&mut got).expect("answer");
        assert_eq!(got, "1\n/x.toml:1:2: bad\n");
        assert_eq!(c.last_reload.as_ref().map(|r| r.ok), Some(false));
        drop(c);
        assert!(!path.exists(), "removed with the master");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
