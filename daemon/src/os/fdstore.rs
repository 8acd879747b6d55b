//! The service manager's file descriptor store, owned by the master.
//!
//! With `FileDescriptorStoreMax=` set, systemd keeps the fds a service sends
//! it (`FDSTORE=1` + `FDNAME=`) while the service restarts and hands them
//! back on the next start in `LISTEN_FDS`/`LISTEN_FDNAMES`, so a listening
//! socket never closes and the kernel queues connections across
//! `systemctl restart`. This module sends the store what it needs: every
//! socket the master bound itself, named after its listener, and
//! `FDSTOREREMOVE=1` for a listener that went away, was rebound, or whose
//! inherited socket turned out unusable. Sockets that came from
//! `LISTEN_FDS` are not sent again: they are in the store already, or owned
//! by a socket unit.
//!
//! Promises: nothing is sent unless `NOTIFY_SOCKET` is set (sending to a
//! service without a store, `FileDescriptorStoreMax=0`, is harmless: systemd
//! drops the fd); a removal for a name always goes out before the new
//! socket of that name; a failure to send is one warning, never an error.
//! The master keeps the unix socket files of stored sockets on exit
//! ([`FdStore::holds`]): the next start takes the same socket back, and its
//! file must still be there. Never called from a worker.

use sd_notify::NotifyState;
use socket2::Socket;
use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;

/// The names this master handed to the store.
#[derive(Debug, Default)]
pub struct FdStore {
    stored: HashSet<String>,
}

/// Whether a service manager listens for notifications at all.
pub fn offered() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some_and(|v| !v.is_empty())
}

/// systemd accepts fd names of printable ASCII without ':' up to 255 bytes;
/// listener names (A-Z a-z 0-9 . _ -) always qualify, this is the guard.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// Tell the service manager to drop every stored fd named `name`.
pub fn remove_name(name: &str) {
    if !offered() || !valid_name(name) {
        return;
    }
    let states = [NotifyState::FdStoreRemove, NotifyState::FdName(name)];
    if let Err(e) = sd_notify::notify(&states) {
        tracing::warn!(listener = %name, "cannot remove the socket from the service manager's fd store: {e}");
    }
}

impl FdStore {
    /// Hand `sock` to the store under `name`.
    pub fn store(&mut self, name: &str, sock: &Socket) {
        if !offered() {
            return;
        }
        if !valid_name(name) {
            tracing::warn!(listener = %name, "not storing the socket: the name is not a valid FDNAME");
            return;
        }
        let states = [NotifyState::FdStore, NotifyState::FdName(name)];
        match sd_notify::notify_with_fds(&states, &[sock.as_fd()]) {
            Ok(()) => {
                tracing::debug!(listener = %name, "socket handed to the service manager's fd store");
                self.stored.insert(name.to_string());
            }
            Err(e) => {
                tracing::warn!(listener = %name, "cannot hand the socket to the service manager's fd store: {e}")
            }
        }
    }

    /// Drop `name` from the store.
    pub fn remove(&mut self, name: &str) {
        self.stored.remove(name);
        remove_name(name);
    }

    /// At start: store the sockets the master bound (not the inherited ones).
    pub fn store_bound(&mut self, sockets: &HashMap<String, Socket>, inherited: &HashSet<String>) {
        let mut names: Vec<&String> = sockets.keys().filter(|n| !inherited.contains(*n)).collect();
        names.sort();
        for name in names {
            self.store(name, &sockets[name]);
        }
    }

    /// After a reload switched generations: forget `removed`, replace the
    /// stored socket of every `rebound` listener with its new one.
    pub fn reloaded(
        &mut self,
        removed: &[String],
        rebound: &[String],
        sockets: &HashMap<String, Socket>,
    ) {
        for name in removed {
            self.remove(name);
        }
        for name in rebound {
            self.remove(name);
            if let Some(sock) = sockets.get(name) {
                self.store(name, sock);
            }
        }
    }

    /// Whether `name`'s socket is in the store: its unix socket file stays
    /// on exit, for the next start.
    pub fn holds(&self, name: &str) -> bool {
        self.stored.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_names_are_valid_fd_names_and_separators_are_not() {
        assert!(valid_name("echo"));
        assert!(valid_name("a.b_c-1"));
        assert!(!valid_name(""));
        assert!(!valid_name("a:b"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"x".repeat(256)));
    }
}
