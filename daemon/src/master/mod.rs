//! The master process: single-threaded, never loads a plugin, never waits.
//!
//! Owns every listening socket (bound here, kept across reloads so the
//! kernel queues connections while workers change), the worker table, and
//! one poll loop over the signal pipe and the control sockets of workers
//! being started. Every wait is a state of that loop, never a blocking
//! call: a generation starting ([`launch::Launch`]: at start, on reload, on
//! respawn), a reload in flight (`reload`), crash respawns with back-off
//! (`respawn`), the stop deadline. So signals are answered and watchdog
//! pings sent on time whatever a plugin's `create` does.
//!
//! Promises: startup is all-or-nothing (every worker reports ready within
//! `start_timeout` before any serves, else exit 1 naming the listener); a
//! crashed worker is logged with its exit status or signal and respawned,
//! its socket staying open meanwhile; SIGTERM/SIGINT abandon any start or
//! reload in flight, drain workers and exit 0, a second one kills them at
//! once; unix socket files are removed on exit.

pub mod check;
mod conn;
mod control;
mod error;
mod exits;
mod late;
mod launch;
mod metrics;
mod observe;
mod relay;
mod reload;
mod respawn;
mod spawn;
mod status;
mod upgrade;

pub use error::StartError;

use crate::config::{self, Config, ListenerConfig};
use crate::os::poll::Interest;
use crate::os::privileges;
use crate::os::signals::SignalPipe;
use crate::os::systemd::{self, Notifier};
use crate::os::transport::{self, BindError};
use launch::{Launch, LaunchState};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use socket2::Socket;
use spawn::Worker;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The master's signals.
pub const MASTER_SIGNALS: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGCHLD,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

pub struct Master {
    config: Config,
    sockets: HashMap<String, Socket>,
    /// Workers told to serve (or draining).
    workers: Vec<Worker>,
    signals: SignalPipe,
    generation: u64,
    plugin_ids: HashMap<String, Option<crate::plugin::FileId>>,
    /// Per listener: the files its plugin named with `depends_on`.
    depends: HashMap<String, crate::plugin::Depends>,
    notifier: Notifier,
    /// Listeners whose socket came from the service manager: their unix
    /// socket files are systemd's, never removed by us.
    inherited: HashSet<String>,
    /// The sockets handed to the service manager's fd store.
    fdstore: crate::os::fdstore::FdStore,
    /// The caller's fds (the `--daemonize` report pipe) kept from workers.
    private_fds: Vec<RawFd>,
    /// The first generation, until every worker reported ready.
    starting: Option<Launch>,
    /// Set when the first generation failed: `run` returns it.
    start_failed: Option<String>,
    reload: reload::Reloads,
    respawn: respawn::Respawns,
    /// Killed (SIGKILL) and not yet reaped.
    dying: Vec<Pid>,
    /// This binary's path as it was at start, and its arguments: what a
    /// binary upgrade runs.
    exe: PathBuf,
    args: Vec<OsString>,
    upgrade: upgrade::Upgrades,
    /// Started by a binary upgrade: the sockets the service manager owns,
    /// to become `inherited` once this daemon serves.
    owned_after_start: Option<HashSet<String>>,
    stop_deadline: Option<Instant>,
    /// Metrics endpoint, control socket, and the totals they show.
    pub(crate) obs: observe::Observe,
    /// Every worker's log relay, until all its writers are gone.
    relays: Vec<relay::Relay>,
}

/// Bind every listener's socket; on failure release what was bound.
pub(crate) fn bind_all<'a>(
    listeners: impl IntoIterator<Item = &'a ListenerConfig>,
) -> Result<HashMap<String, Socket>, BindError> {
    let mut bound: Vec<&ListenerConfig> = Vec::new();
    let mut sockets = HashMap::new();
    for l in listeners {
        match transport::bind(l) {
            Ok(s) => {
                tracing::info!(listener = %l.name, "bound {} ({} {})", transport::local_description(&s), l.family, l.socktype);
                sockets.insert(l.name.clone(), s);
                bound.push(l);
            }
            Err(e) => {
                drop(sockets);
                bound.iter().for_each(|l| transport::remove_unix_file(l));
                return Err(e);
            }
        }
    }
    Ok(sockets)
}

/// When this daemon was started by a binary upgrade: which of the
/// sockets it took over the service manager owns (their unix socket files
/// are never removed here); the others become this daemon's own once it
/// serves. None otherwise (every inherited socket is the manager's).
fn systemd_owned<'a>(names: impl Iterator<Item = &'a String>) -> Option<HashSet<String>> {
    let names: HashSet<String> = names.cloned().collect();
    let list = std::env::var_os(upgrade::SYSTEMD_OWNED_VAR)?;
    // SAFETY: the master is still single-threaded: nothing reads the
    // environment concurrently.
    unsafe { std::env::remove_var(upgrade::SYSTEMD_OWNED_VAR) };
    let list = list.to_string_lossy().into_owned();
    let owned: HashSet<&str> = list.split(':').filter(|s| !s.is_empty()).collect();
    Some(
        names
            .into_iter()
            .filter(|n| owned.contains(n.as_str()))
            .collect(),
    )
}

/// Run the daemon in the foreground until stopped. Err means exit 1.
pub fn run(config_path: &Path) -> Result<(), StartError> {
    run_with(config_path, &[], || {})
}

/// [`run`], calling `on_ready` once every listener serves.
/// `private_fds` are the caller's fds that no worker may keep open.
pub fn run_with(
    config_path: &Path,
    private_fds: &[RawFd],
    on_ready: impl FnOnce(),
) -> Result<(), StartError> {
    let config = config::load(config_path)?;
    privileges::raise_fd_limit();
    let signals = SignalPipe::install(&MASTER_SIGNALS)?;
    let (mut handed, inherited_sockets) = observe::split_handed(systemd::take_inherited());
    let mut sockets = systemd::match_inherited(&config.listeners, inherited_sockets);
    // Until it serves, an upgrade's new daemon treats every socket it took
    // over as not its own: if it fails, the old daemon still serves on them.
    let inherited: HashSet<String> = sockets.keys().cloned().collect();
    let owned_after_start = systemd_owned(sockets.keys());
    let to_bind = config
        .listeners
        .iter()
        .filter(|l| !sockets.contains_key(&l.name));
    sockets.extend(bind_all(to_bind)?);
    let obs = match observe::Observe::open(&config, &mut handed) {
        Ok(obs) => obs,
        Err(e) => {
            config
                .listeners
                .iter()
                .filter(|l| !inherited.contains(&l.name))
                .for_each(transport::remove_unix_file);
            return Err(StartError::Io(e));
        }
    };
    let d = &config.daemon;
    if let Err(e) = privileges::give_unix_files_to_user(&config, &inherited)
        .and_then(|()| privileges::drop_privileges(d.user.as_deref(), d.group.as_deref()))
    {
        config
            .listeners
            .iter()
            .filter(|l| !inherited.contains(&l.name))
            .for_each(transport::remove_unix_file);
        return Err(StartError::Io(std::io::Error::new(
            e.kind(),
            format!("cannot drop privileges: {e}"),
        )));
    }
    let mut master = Master {
        config,
        sockets,
        workers: Vec::new(),
        signals,
        generation: 1,
        plugin_ids: HashMap::new(),
        depends: HashMap::new(),
        notifier: Notifier::from_env(),
        inherited,
        fdstore: Default::default(),
        private_fds: private_fds.to_vec(),
        starting: None,
        start_failed: None,
        reload: reload::Reloads::default(),
        respawn: respawn::Respawns::default(),
        dying: Vec::new(),
        exe: std::env::current_exe()
            .unwrap_or_else(|_| PathBuf::from(std::env::args_os().next().unwrap_or_default())),
        args: std::env::args_os().skip(1).collect(),
        upgrade: upgrade::Upgrades::default(),
        owned_after_start,
        stop_deadline: None,
        obs,
        relays: Vec::new(),
    };
    master
        .fdstore
        .store_bound(&master.sockets, &master.inherited);
    let result = master.start();
    if result.is_ok() && master.stop_deadline.is_none() {
        on_ready();
    }
    if result.is_ok() {
        master.serve();
    }
    master.remove_unix_files();
    if result.is_ok() {
        tracing::info!("stopped");
    }
    result
}

impl Master {
    /// Start the first generation and run the loop until it is ready, it
    /// failed (Err: exit 1), or a stop signal came first (Ok, stopping).
    fn start(&mut self) -> Result<(), StartError> {
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

    /// Run the loop until stopped and every worker is gone.
    fn serve(&mut self) {
        while !(self.stop_deadline.is_some()
            && self.workers.is_empty()
            && self.dying.is_empty()
            && self.reload.idle()
            && self.respawn.idle()
            && !self.upgrade.in_flight())
        {
            self.turn();
        }
    }

    /// One turn of the loop: wait for a signal, a worker's report or the
    /// next timer, and handle what came.
    fn turn(&mut self) {
        self.adopt_relays();
        let mut fds = vec![self.signals.fd()];
        fds.extend(self.launches().flat_map(Launch::fds));
        let upgrade_fd = self.upgrade.fd();
        fds.extend(upgrade_fd);
        let late = self.late_fds();
        fds.extend(&late);
        let ours = fds.len();
        let mut polled: Vec<(RawFd, Interest)> =
            fds.iter().map(|&fd| (fd, Interest::Read)).collect();
        self.observer_fds(&mut polled);
        let relays_at = polled.len();
        polled.extend(self.relays.iter().map(|r| (r.fd(), Interest::Read)));
        let timeout = self
            .next_timer()
            .map(|t| t.saturating_duration_since(Instant::now()));
        let ready = crate::os::poll::wait_events(&polled, timeout).unwrap_or_default();
        for (&fd, _) in fds.iter().zip(&ready).skip(1).filter(|(_, &r)| r) {
            if Some(fd) == upgrade_fd {
                self.upgrade_readable();
            } else if late.contains(&fd) {
                self.late_readable(fd);
            } else {
                self.launches_mut().for_each(|l| l.readable(fd));
            }
        }
        if ready.first().copied().unwrap_or(false) {
            for sig in self.signals.drain() {
                match sig {
                    Signal::SIGTERM | Signal::SIGINT => self.begin_stop(sig),
                    Signal::SIGHUP => self.request_reload(),
                    Signal::SIGUSR2 => self.request_upgrade(),
                    Signal::SIGCHLD => self.reap(),
                    // Workers still starting install their own handler
                    // before READY; only serving ones are told.
                    Signal::SIGUSR1 => {
                        crate::os::logfile::reopen_in_master(self.workers.iter().map(|w| w.pid))
                    }
                    _ => {}
                }
            }
        }
        self.serve_observers(ready.get(ours..relays_at).unwrap_or_default());
        let relays_ready = ready.get(relays_at..).unwrap_or_default().to_vec();
        self.read_relays(&relays_ready);
        self.expire_observers();
        self.run_timers();
        self.advance();
    }

    /// Take the relays of workers forked since the last turn.
    fn adopt_relays(&mut self) {
        let mut new = Vec::new();
        new.extend(self.workers.iter_mut().filter_map(|w| w.relay.take()));
        for l in self.launches_mut() {
            new.extend(l.take_relays());
        }
        self.relays.extend(new);
    }

    /// Read the relays that are readable (`ready`, in `self.relays`
    /// order); drop those whose writers are all gone.
    fn read_relays(&mut self, ready: &[bool]) {
        let mut i = 0;
        self.relays.retain_mut(|r| {
            let keep = !ready.get(i).copied().unwrap_or(false) || r.readable();
            i += 1;
            keep
        });
    }

    /// Every launch in flight: the first generation, a reload's, respawns.
    fn launches(&self) -> impl Iterator<Item = &Launch> {
        self.starting
            .iter()
            .chain(self.reload.launch())
            .chain(self.respawn.launches())
    }

    fn launches_mut(&mut self) -> impl Iterator<Item = &mut Launch> {
        self.starting
            .iter_mut()
            .chain(self.reload.launch_mut())
            .chain(self.respawn.launches_mut())
    }

    /// Act on launches that finished, one way or the other.
    fn advance(&mut self) {
        self.advance_start();
        self.advance_reload();
        self.advance_respawns();
        self.advance_upgrade();
    }

    fn advance_start(&mut self) {
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
    fn status_line(&self) -> String {
        format!(
            "serving {} listeners with {} workers (generation {})",
            self.config.listeners.len(),
            self.workers.len(),
            self.generation
        )
    }

    /// "echo=127.0.0.1:7000 (thread), ..." for logs.
    fn summary(&self) -> String {
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
    fn record_plugins(&mut self, config: &Config, names: Option<&[String]>) {
        for l in &config.listeners {
            if names.is_none_or(|n| n.contains(&l.name)) {
                self.plugin_ids
                    .insert(l.name.clone(), crate::plugin::FileId::of(&l.handler));
            }
        }
    }

    /// Remember the files each listener's plugin depends on (ABI 1.1
    /// `depends_on`), as its new workers reported them.
    fn record_depends(&mut self, reported: HashMap<String, Vec<PathBuf>>) {
        for (listener, paths) in reported {
            self.depends
                .insert(listener, crate::plugin::Depends::of(&paths));
        }
    }

    /// Fds a new worker must close: everything the master holds but that
    /// worker's own socket.
    fn fds_to_close(&self, extra_sockets: &HashMap<String, Socket>, own: RawFd) -> Vec<RawFd> {
        let mut fds = vec![self.signals.fd(), self.signals.write_fd()];
        fds.extend_from_slice(&self.private_fds);
        fds.extend(self.sockets.values().map(|s| s.as_raw_fd()));
        fds.extend(extra_sockets.values().map(|s| s.as_raw_fd()));
        fds.extend(self.workers.iter().map(|w| w.ctrl.as_raw_fd()));
        fds.extend(self.launches().flat_map(Launch::ctrl_fds));
        fds.extend(self.obs.fds());
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
    fn spawn_workers(
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
    fn go(&mut self, workers: Vec<Worker>) {
        for w in workers {
            if let Err(e) = spawn::go(&w) {
                tracing::warn!(listener = %w.listener, "cannot tell worker {} to start: {e}", w.pid);
            }
            self.workers.push(w);
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        let launches = self
            .launches()
            .map(Launch::deadline)
            .chain(self.upgrade.deadline())
            .min();
        let respawn = self
            .respawn
            .next_due()
            .filter(|_| self.stop_deadline.is_none());
        [
            launches,
            respawn,
            self.stop_deadline,
            self.notifier.watchdog_due(),
            self.observers_due(),
            self.relays.iter().filter_map(relay::Relay::due).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn run_timers(&mut self) {
        self.notifier.watchdog_tick();
        let now = Instant::now();
        self.relays.iter_mut().for_each(|r| r.tick(now));
        self.launches_mut().for_each(|l| l.tick(now));
        if let Some(deadline) = self.stop_deadline {
            if now >= deadline && !self.workers.is_empty() {
                tracing::warn!(
                    "{} workers still running at the stop deadline; killing them",
                    self.workers.len()
                );
                self.kill_all();
            }
            return;
        }
        self.start_due_respawns(now);
    }
}
