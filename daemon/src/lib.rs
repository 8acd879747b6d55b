//! sockhostd: Python's socketserver as a plugin-hosting daemon.
//!
//! The master ([`master`]) binds every listener and forks one worker
//! ([`worker`]) per listener; a worker loads the handler plugin
//! ([`plugin`]) and runs the socketserver loop ([`server`]) with the
//! listener's dispatch mode ([`dispatch`]: `SyncMixIn`, `ThreadingMixIn`,
//! `ForkingMixIn`). `main.rs` is only the command line.

pub mod access;
pub mod backoff;
pub mod check;
pub mod config;
pub mod daemonize;
pub mod dispatch;
pub mod fdstore;
pub mod gate;
pub mod host;
pub mod limits;
pub mod logfile;
pub mod logging;
pub mod master;
pub mod plugin;
pub mod poll;
pub mod privileges;
pub mod reload;
pub mod server;
pub mod signals;
pub mod spawn;
pub mod syslog;
pub mod systemd;
pub mod transport;
pub mod worker;
