//! The operating-system layer shared by the master and the workers:
//! signals and the wake-up pipe, poll, socket creation, privileges,
//! systemd (notify, socket activation), the classic daemon, logging and
//! back-off. Nothing here knows about plugins or the master's state.

pub mod backoff;
pub mod daemonize;
pub mod logging;
pub mod poll;
pub mod privileges;
pub mod shm;
pub mod signals;
pub mod stats;
pub mod systemd;
pub mod threads;
pub mod transport;
