//! The operating-system layer shared by the master and the workers:
//! signals and the wake-up pipe, poll, socket creation, privileges,
//! systemd (notify, socket activation), the classic daemon, logging and
//! back-off. Nothing here knows about plugins or the master's state.

pub(crate) mod backoff;
pub(crate) mod cpu;
pub mod daemonize;
pub(crate) mod fdstore;
pub(crate) mod identity;
pub(crate) mod logfile;
pub mod logging;
pub(crate) mod poll;
pub(crate) mod privileges;
pub(crate) mod ratelimit;
pub(crate) mod reexec;
pub mod sandbox;
pub(crate) mod shm;
pub(crate) mod signals;
pub(crate) mod stats;
pub(crate) mod syslog;
pub(crate) mod systemd;
pub(crate) mod threads;
pub(crate) mod transport;
