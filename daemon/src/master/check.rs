//! `sockhostd --check`: the operator's pre-flight for a start or a reload.
//!
//! Validates the config and its drop-ins, then in a throw-away child per
//! listener (the same worker code, in check mode) checks the plugin file's
//! permissions, loads it, and calls `create` and `destroy`. Binds nothing,
//! touches no running daemon, and never loads a plugin in this process.

use crate::config::{self, Config};
use crate::master::launch::{Launch, LaunchState};
use crate::master::spawn;
use crate::master::StartError;
use nix::sys::wait::waitpid;
use std::path::Path;

/// `sockhostd --check`: validate the config and, in a child per listener,
/// load its plugin and call `create`/`destroy`. Binds nothing.
pub fn check(config_path: &Path) -> Result<Config, StartError> {
    let config = config::load(config_path)?;
    super::accounts::log_warnings(&config);
    let mut workers = Vec::new();
    for l in &config.listeners {
        workers.push(spawn::spawn_check(&config, l)?);
    }
    let pids: Vec<_> = workers.iter().map(|w| w.pid).collect();
    let mut launch = Launch::new(workers, config.daemon.start_timeout);
    let state = launch.wait();
    if state != LaunchState::Ready {
        // Failed or timed out: the others need not finish.
        let _ = launch.abort();
    }
    for pid in pids {
        let _ = waitpid(pid, None);
    }
    match state {
        LaunchState::Failed(why) => Err(StartError::Worker(why)),
        _ => Ok(config),
    }
}
