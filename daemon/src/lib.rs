//! sockhostd: Python's socketserver as a plugin-hosting daemon.
//!
//! The folders are the process model:
//! - [`master`]: the single-threaded supervisor. It binds every listener,
//!   forks one worker per listener, reloads, checks and stops; it never
//!   loads a plugin.
//! - [`worker`]: one listener's process. It loads the handler plugin and
//!   runs the socketserver loop ([`worker::server`]) with the listener's
//!   dispatch mode ([`worker::dispatch`]: `SyncMixIn`, `ThreadingMixIn`,
//!   `ForkingMixIn`) behind the built-in `verify_request`.
//! - [`plugin`]: loading a handler `.so`, the ABI checks and the host
//!   function table.
//! - [`os`]: what both sides use from the operating system: signals, poll,
//!   sockets, privileges, systemd, daemonizing, logging.
//! - [`config`]: TOML to a validated model; depends on nothing else here.
//! - [`import`]: `sockhostctl import`, xinetd/inetd/systemd configs to
//!   sockhost listeners; depends on nothing else here.
//!
//! `main.rs` is only the command line.

pub mod config;
pub mod import;
pub mod master;
pub mod os;
pub mod plugin;
pub mod worker;
