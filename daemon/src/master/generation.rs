//! Generations of workers: starting the first one (all-or-nothing),
//! forking a set of workers without waiting for them, letting ready ones
//! serve (`GO`), and what the master remembers of the plugins they run.

use super::launch::{Launch, LaunchState};
use super::spawn::{self, Worker};
use super::{relay, Master, StartError};
use crate::config::Config;
use crate::os::transport;
use socket2::Socket;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

impl Master {
    /// Start the first generation and run the loop until it is ready, it
    /// failed (Err: exit 1), or a stop signal came first (Ok, stopping).
    pub(super) fn start(&mut self) -> Result<(), StartError> {
        let config = self.config.clone();
        let names: Vec<String> = config.listeners.iter().map(|l| l.name.clone()).collect();
        let workers = self
            .spawn_workers(&config, &names, &HashMap::new(), self.generation)
            .map_err(StartError::Worker)?;
        self.starting = Some(Launch::new(workers, config.daemon.start_timeout));
        while self.starting.is_some() {
            self.turn();
        }
        if let Some(why) = self.start_failed.take() {
            self.kill_all();
            while !self.dying.is_empty() {
                self.turn();
            }
            return Err(StartError::Worker(why));
        }
        Ok(())
    }

    pub(super) fn advance_start(&mut self) {
        let Some(state) = self.starting.as_ref().map(Launch::state) else {
            return;
        };
        match state {
            LaunchState::Pending => {}
            LaunchState::Ready => {
                if let Some(launch) = self.starting.take() {
                    self.record_depends(launch.depends());
                    self.go(launch.into_workers());
                }
                self.record_plugins(&self.config.clone(), None);
                if let Some(owned) = self.owned_after_start.take() {
                    self.inherited = owned;
                }
                self.obs.started();
                tracing::info!(
                    listeners = self.config.listeners.len(),
                    workers = self.workers.len(),
                    "sockhostd {} ready: {}",
                    env!("CARGO_PKG_VERSION"),
                    self.summary()
                );
                self.notifier.ready(&self.status_line());
            }
            LaunchState::Failed(why) => {
                if let Some(launch) = self.starting.take() {
                    self.dying.extend(launch.abort());
                }
                self.start_failed = Some(why);
            }
        }
    }

    /// The one-line STATUS= for the service manager.
    pub(super) fn status_line(&self) -> String {
        format!(
            "serving {} listeners with {} workers (generation {})",
            self.config.listeners.len(),
            self.workers.len(),
            self.generation
        )
    }

    /// "echo=127.0.0.1:7000 (thread), ..." for logs.
    pub(super) fn summary(&self) -> String {
        let parts: Vec<String> = self
            .config
            .listeners
            .iter()
            .map(|l| {
                let addr = self
                    .sockets
                    .get(&l.name)
                    .map(transport::local_description)
                    .unwrap_or_default();
                format!("{}={} ({:?})", l.name, addr, l.mixin).to_lowercase()
            })
            .collect();
        parts.join(", ")
    }

    /// Remember the plugin files `names` (all when None) now run, so a
    /// reload can tell a replaced plugin.
    pub(super) fn record_plugins(&mut self, config: &Config, names: Option<&[String]>) {
        for l in &config.listeners {
            if names.is_none_or(|n| n.contains(&l.name)) {
                self.plugin_ids
                    .insert(l.name.clone(), crate::plugin::FileId::of(&l.handler));
            }
        }
    }

    /// Remember the files each listener's plugin depends on (ABI 1.1
    /// `depends_on`), as its new workers reported them.
    pub(super) fn record_depends(&mut self, reported: HashMap<String, Vec<PathBuf>>) {
        for (listener, paths) in reported {
            self.depends
                .insert(listener, crate::plugin::Depends::of(&paths));
        }
    }

    /// Fds a new worker must close: everything the master holds but that
    /// worker's own socket.
    pub(super) fn fds_to_close(
        &self,
        extra_sockets: &HashMap<String, Socket>,
        own: RawFd,
    ) -> Vec<RawFd> {
        let mut fds = vec![self.signals.fd(), self.signals.write_fd()];
        fds.extend_from_slice(&self.private_fds);
        fds.extend(self.sockets.values().map(|s| s.as_raw_fd()));
        fds.extend(extra_sockets.values().map(|s| s.as_raw_fd()));
        fds.extend(self.workers.iter().map(|w| w.ctrl.as_raw_fd()));
        fds.extend(self.launches().flat_map(Launch::ctrl_fds));
        fds.extend(self.obs.fds());
        fds.extend(self.upgrade.report_fd());
        fds.extend(self.relays.iter().map(relay::Relay::fd));
        fds.extend(
            self.workers
                .iter()
                .chain(self.launches().flat_map(Launch::workers))
                .filter_map(|w| w.relay.as_ref().map(relay::Relay::fd)),
        );
        fds.retain(|&fd| fd != own);
        fds
    }

    /// Fork the workers of `names` from `config` (sockets from
    /// `new_sockets`, else `self.sockets`), without waiting for them. On a
    /// fork failure the ones already forked are killed.
    pub(super) fn spawn_workers(
        &mut self,
        config: &Config,
        names: &[String],
        new_sockets: &HashMap<String, Socket>,
        generation: u64,
    ) -> Result<Vec<Worker>, String> {
        let mut started: Vec<Worker> = Vec::new();
        for l in config.listeners.iter().filter(|l| names.contains(&l.name)) {
            let socket = new_sockets
                .get(&l.name)
                .or_else(|| self.sockets.get(&l.name));
            let own = socket.map_or(-1, |s| s.as_raw_fd());
            for index in 0..l.workers {
                let mut close = self.fds_to_close(new_sockets, own);
                close.extend(started.iter().map(|w| w.ctrl.as_raw_fd()));
                close.extend(
                    started
                        .iter()
                        .filter_map(|w| w.relay.as_ref().map(relay::Relay::fd)),
                );
                match spawn::spawn(config, l, index, socket, generation, close, false) {
                    Ok(w) => started.push(w),
                    Err(e) => {
                        self.dying
                            .extend(Launch::new(started, Duration::ZERO).abort());
                        return Err(format!("listener `{}`: cannot start a worker: {e}", l.name));
                    }
                }
            }
        }
        Ok(started)
    }

    /// Let ready workers serve, and adopt them.
    pub(super) fn go(&mut self, workers: Vec<Worker>) {
        for w in workers {
            if let Err(e) = spawn::go(&w) {
                tracing::warn!(listener = %w.listener, "cannot tell worker {} to start: {e}", w.pid);
            }
            self.workers.push(w);
        }
    }
}
