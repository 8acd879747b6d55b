//! `sockhostd --check`: the operator's pre-flight for a start or a reload.
//!
//! Validates the config and its drop-ins, then in a throw-away child per
//! listener (the same worker code, in check mode) checks the plugin file's
//! permissions, loads it, and calls `create` and `destroy`. Binds nothing,
//! touches no running daemon, and never loads a plugin in this process.

use crate::config::{self, Config};
use crate::master::StartError;
use crate::spawn::{self, Outcome, Worker, READY_TIMEOUT};
use nix::sys::wait::waitpid;
use std::path::Path;
use std::time::Instant;

/// `sockhostd --check`: validate the config and, in a child per listener,
/// load its plugin and call `create`/`destroy`. Binds nothing.
pub fn check(config_path: &Path) -> Result<Config, StartError> {
    let config = config::load(config_path)?;
    let mut workers = Vec::new();
    for l in &config.listeners {
        workers.push(spawn::spawn_check(&config, l)?);
    }
    let refs: Vec<&Worker> = workers.iter().collect();
    let outcomes = spawn::wait_ready(&refs, -1, Instant::now() + READY_TIMEOUT);
    let failures: Vec<String> = workers
        .iter()
        .filter_map(|w| match outcomes.get(&w.pid) {
            Some(Outcome::Ready(_)) => None,
            Some(Outcome::Failed(why)) => Some(format!("listener `{}`: {why}", w.listener)),
            None => Some(format!("listener `{}`: no report", w.listener)),
        })
        .collect();
    for w in &workers {
        let _ = waitpid(w.pid, None);
    }
    if failures.is_empty() {
        Ok(config)
    } else {
        Err(StartError::Worker(failures.join("; ")))
    }
}
