//! The master process: single-threaded, never loads a plugin.
//!
//! Owns every listening socket (bound here, kept across reloads so the
//! kernel queues connections while workers change), one poll loop over the
//! signal pipe, the worker table, crash respawn with back-off, graceful
//! stop, and (in `reload`) generation switches. Workers are forked from
//! here; each serves one listener.
//!
//! Promises: startup is all-or-nothing (every worker reports ready before
//! any serves, else exit 1 with the worker's reason); a crashed worker is
//! logged with its exit status or signal and respawned, its socket staying
//! open meanwhile; SIGTERM/SIGINT drain workers and exit 0, a second one
//! kills them at once; unix socket files are removed on exit.

use crate::config::{self, Config, ConfigError, ListenerConfig};
use crate::privileges;
use crate::signals::SignalPipe;
use crate::spawn::{self, describe_status, Outcome, Worker, READY_TIMEOUT};
use crate::systemd::{self, Notifier};
use crate::transport::{self, BindError};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use socket2::Socket;
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// Why the daemon could not start (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("{0}")]
    Worker(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The master's signals.
pub const MASTER_SIGNALS: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGCHLD,
];

/// Crash back-off: first delay, cap, and how long a worker must live for
/// its crash count to reset.
const RESPAWN_FIRST: Duration = Duration::from_millis(100);
const RESPAWN_CAP: Duration = Duration::from_secs(30);
const HEALTHY_AFTER: Duration = Duration::from_secs(10);

/// A worker slot waiting to be restarted after a crash.
#[derive(Debug)]
pub(crate) struct Respawn {
    pub at: Instant,
    pub listener: String,
    pub index: usize,
}

pub struct Master {
    pub(crate) config: Config,
    pub(crate) sockets: HashMap<String, Socket>,
    pub(crate) workers: Vec<Worker>,
    pub(crate) signals: SignalPipe,
    pub(crate) generation: u64,
    pub(crate) plugin_ids: HashMap<String, Option<crate::reload::FileId>>,
    /// Per listener: the files its plugin named with `depends_on` (ABI 1.1).
    pub(crate) depends: HashMap<String, crate::reload::Depends>,
    pub(crate) notifier: Notifier,
    /// Listeners whose socket came from the service manager: their unix
    /// socket files are systemd's, never removed by us.
    pub(crate) inherited: HashSet<String>,
    /// The caller's fds (the `--daemonize` report pipe) kept from workers.
    private_fds: Vec<RawFd>,
    respawns: Vec<Respawn>,
    crashes: HashMap<(String, usize), u32>,
    stop_deadline: Option<Instant>,
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
    let mut sockets = systemd::match_inherited(&config.listeners, systemd::take_inherited());
    let inherited: HashSet<String> = sockets.keys().cloned().collect();
    let to_bind = config
        .listeners
        .iter()
        .filter(|l| !inherited.contains(&l.name));
    sockets.extend(bind_all(to_bind)?);
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
        private_fds: private_fds.to_vec(),
        respawns: Vec::new(),
        crashes: HashMap::new(),
        stop_deadline: None,
    };
    let names: Vec<String> = master
        .config
        .listeners
        .iter()
        .map(|l| l.name.clone())
        .collect();
    let interrupt = master.signals.fd();
    match master.start_listeners(&master.config.clone(), &names, interrupt) {
        Ok(workers) => master.go(workers),
        Err(why) => {
            master.remove_unix_files();
            return Err(StartError::Worker(why));
        }
    }
    tracing::info!(
        listeners = names.len(),
        workers = master.workers.len(),
        "sockhostd {} ready: {}",
        env!("CARGO_PKG_VERSION"),
        master.summary()
    );
    master.notifier.ready(&master.status_line());
    on_ready();
    master.main_loop();
    master.remove_unix_files();
    tracing::info!("stopped");
    Ok(())
}

impl Master {
    /// The one-line STATUS= for the service manager.
    pub(crate) fn status_line(&self) -> String {
        format!(
            "serving {} listeners with {} workers (generation {})",
            self.config.listeners.len(),
            self.workers.len(),
            self.generation
        )
    }

    /// "echo=127.0.0.1:7000 (thread), ..." for logs.
    pub(crate) fn summary(&self) -> String {
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

    /// Fds a new worker must close: everything the master holds but that
    /// worker's own socket.
    pub(crate) fn fds_to_close(
        &self,
        extra_sockets: &HashMap<String, Socket>,
        own: RawFd,
    ) -> Vec<RawFd> {
        let mut fds = vec![self.signals.fd(), self.signals.write_fd()];
        fds.extend_from_slice(&self.private_fds);
        fds.extend(self.sockets.values().map(|s| s.as_raw_fd()));
        fds.extend(extra_sockets.values().map(|s| s.as_raw_fd()));
        fds.extend(self.workers.iter().map(|w| w.ctrl.as_raw_fd()));
        fds.retain(|&fd| fd != own);
        fds
    }

    /// Spawn the workers of `names` from `config` (sockets looked up in
    /// `self.sockets`), and wait until all are ready. On any failure every
    /// one of them is killed and the reasons are returned.
    pub(crate) fn start_listeners(
        &mut self,
        config: &Config,
        names: &[String],
        interrupt: RawFd,
    ) -> Result<Vec<Worker>, String> {
        self.start_with_sockets(config, names, &HashMap::new(), interrupt)
    }

    pub(crate) fn start_with_sockets(
        &mut self,
        config: &Config,
        names: &[String],
        new_sockets: &HashMap<String, Socket>,
        interrupt: RawFd,
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
                match spawn::spawn(config, l, index, socket, self.generation, close, false) {
                    Ok(w) => started.push(w),
                    Err(e) => {
                        spawn::abort(&started);
                        return Err(format!("listener `{}`: cannot start a worker: {e}", l.name));
                    }
                }
            }
        }
        let refs: Vec<&Worker> = started.iter().collect();
        let outcomes = spawn::wait_ready(&refs, interrupt, Instant::now() + READY_TIMEOUT);
        let mut failures: Vec<String> = started
            .iter()
            .filter_map(|w| match outcomes.get(&w.pid) {
                Some(Outcome::Ready(_)) => None,
                Some(Outcome::Failed(why)) => Some(format!("listener `{}`: {why}", w.listener)),
                None => Some(format!(
                    "listener `{}`: interrupted before it was ready",
                    w.listener
                )),
            })
            .collect();
        failures.dedup();
        if failures.is_empty() {
            for l in config.listeners.iter().filter(|l| names.contains(&l.name)) {
                self.plugin_ids
                    .insert(l.name.clone(), crate::reload::FileId::of(&l.handler));
                let named = started
                    .iter()
                    .filter(|w| w.listener == l.name)
                    .filter_map(|w| match outcomes.get(&w.pid) {
                        Some(Outcome::Ready(paths)) => Some(paths.iter()),
                        _ => None,
                    })
                    .flatten();
                self.depends
                    .insert(l.name.clone(), crate::reload::Depends::of(named));
            }
            Ok(started)
        } else {
            spawn::abort(&started);
            Err(failures.join("; "))
        }
    }

    /// Let ready workers serve, and adopt them.
    pub(crate) fn go(&mut self, workers: Vec<Worker>) {
        for w in workers {
            if let Err(e) = spawn::go(&w) {
                tracing::warn!(listener = %w.listener, "cannot tell worker {} to start: {e}", w.pid);
            }
            self.workers.push(w);
        }
    }

    fn main_loop(&mut self) {
        loop {
            if self.stop_deadline.is_some() && self.workers.is_empty() {
                return;
            }
            let timeout = self
                .next_timer()
                .map(|t| t.saturating_duration_since(Instant::now()));
            let ready =
                crate::poll::wait_readable(&[self.signals.fd()], timeout).unwrap_or_default();
            if ready.first().copied().unwrap_or(false) {
                for sig in self.signals.drain() {
                    match sig {
                        Signal::SIGTERM | Signal::SIGINT => self.begin_stop(sig),
                        Signal::SIGHUP if self.stop_deadline.is_none() => self.reload(),
                        Signal::SIGCHLD => self.reap(),
                        _ => {}
                    }
                }
            }
            self.run_timers();
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        let respawn = self.respawns.iter().map(|r| r.at).min();
        let respawn = respawn.filter(|_| self.stop_deadline.is_none());
        [respawn, self.stop_deadline, self.notifier.watchdog_due()]
            .into_iter()
            .flatten()
            .min()
    }

    fn run_timers(&mut self) {
        self.notifier.watchdog_tick();
        let now = Instant::now();
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
        let due: Vec<Respawn> = {
            let (due, later) = self.respawns.drain(..).partition(|r| r.at <= now);
            self.respawns = later;
            due
        };
        for r in due {
            self.respawn(r);
        }
    }

    /// SIGTERM/SIGINT: drain every worker; a second signal kills them.
    fn begin_stop(&mut self, sig: Signal) {
        if self.stop_deadline.is_some() {
            tracing::warn!("{} again: stopping at once", sig.as_str());
            self.kill_all();
            return;
        }
        let timeout = self.config.daemon.shutdown_timeout;
        tracing::info!(
            "{}: stopping; {} workers finish requests in flight (shutdown_timeout = {:?})",
            sig.as_str(),
            self.workers.len(),
            timeout
        );
        self.notifier.stopping();
        self.respawns.clear();
        for w in &mut self.workers {
            w.draining = true;
            let _ = kill(w.pid, Signal::SIGTERM);
        }
        // Workers enforce shutdown_timeout themselves, then kill their own
        // stragglers; this is the master's backstop.
        self.stop_deadline = Some(Instant::now() + timeout + Duration::from_secs(5));
    }

    fn kill_all(&mut self) {
        for w in &self.workers {
            let _ = kill(Pid::from_raw(-w.pid.as_raw()), Signal::SIGKILL);
            let _ = kill(w.pid, Signal::SIGKILL);
        }
        for w in std::mem::take(&mut self.workers) {
            let _ = waitpid(w.pid, None);
        }
    }

    /// Reap every exited worker; schedule a respawn for each that crashed.
    fn reap(&mut self) {
        loop {
            let status = waitpid(None, Some(WaitPidFlag::WNOHANG));
            let Ok(st) = status else { return };
            let Some(pid) = st.pid() else { return };
            let Some(pos) = self.workers.iter().position(|w| w.pid == pid) else {
                continue;
            };
            let w = self.workers.remove(pos);
            self.worker_exited(w, st);
        }
    }

    fn worker_exited(&mut self, w: Worker, st: WaitStatus) {
        let what = describe_status(Ok(st));
        let (name, gen, pid) = (&w.listener, w.generation, w.pid.as_raw());
        if w.draining {
            tracing::info!(listener = %name, generation = gen, "worker {pid} finished draining ({what})");
            return;
        }
        if self.sockets.contains_key(name) {
            let what = format!("worker {pid} died ({what})");
            self.schedule_respawn(name.clone(), w.index, w.started, &what);
        }
    }

    /// Back off exponentially while a slot keeps crashing soon after start.
    fn schedule_respawn(&mut self, name: String, index: usize, started: Instant, what: &str) {
        let key = (name.clone(), index);
        let count = match self.crashes.get(&key) {
            Some(c) if started.elapsed() < HEALTHY_AFTER => c + 1,
            _ => 1,
        };
        self.crashes.insert(key, count);
        let delay = RESPAWN_FIRST
            .saturating_mul(1 << (count - 1).min(16))
            .min(RESPAWN_CAP);
        if count >= 3 {
            tracing::error!(listener = %name, "{what}; {count} crashes in a row, restarting in {delay:?} (crash-loop back-off)");
        } else {
            tracing::error!(listener = %name, "{what}; restarting in {delay:?}");
        }
        self.respawns.push(Respawn {
            at: Instant::now() + delay,
            listener: name,
            index,
        });
    }

    fn respawn(&mut self, r: Respawn) {
        let config = self.config.clone();
        let Some(l) = config.listeners.iter().find(|l| l.name == r.listener) else {
            return;
        };
        let socket = self.sockets.get(&l.name);
        let own = socket.map_or(-1, |s| s.as_raw_fd());
        let close = self.fds_to_close(&HashMap::new(), own);
        let outcome = spawn::spawn(&config, l, r.index, socket, self.generation, close, false)
            .map_err(|e| e.to_string())
            .and_then(|w| {
                let o = spawn::wait_ready(&[&w], -1, Instant::now() + READY_TIMEOUT);
                match o.get(&w.pid) {
                    Some(Outcome::Ready(_)) => Ok(w),
                    Some(Outcome::Failed(why)) => {
                        spawn::abort(std::slice::from_ref(&w));
                        Err(why.clone())
                    }
                    None => {
                        spawn::abort(std::slice::from_ref(&w));
                        Err("no report".into())
                    }
                }
            });
        match outcome {
            Ok(w) => {
                tracing::info!(listener = %l.name, "worker {} restarted", w.pid);
                self.go(vec![w]);
            }
            Err(why) => {
                let what = format!("restart failed: {why}");
                self.schedule_respawn(l.name.clone(), r.index, Instant::now(), &what);
            }
        }
    }

    pub(crate) fn remove_unix_files(&self) {
        for l in self
            .config
            .listeners
            .iter()
            .filter(|l| !self.inherited.contains(&l.name))
        {
            transport::remove_unix_file(l);
        }
    }
}

use nix::unistd::Pid;
