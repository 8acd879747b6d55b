//! The master process: single-threaded, never loads a plugin, never waits.
//!
//! Owns every listening socket (bound here, kept across reloads so the
//! kernel queues connections while workers change), the worker table, and
//! one poll loop over the signal pipe and the control sockets of workers
//! being started. Every wait is a state of that loop, never a blocking
//! call: a generation starting ([`launch::Launch`]: at start, on reload, on
//! respawn), a reload in flight (`reload`), crash respawns with back-off
//! (`respawn`), the stop deadline. So signals are answered and watchdog
//! pings sent on time whatever a plugin's `create` does. The loop itself
//! is `event_loop`; starting and adopting workers is `generation`; a
//! reload's last step, waiting for the old workers to stop accepting, is
//! `retire`; the counts a binary upgrade hands on are `carry`.
//!
//! Promises: startup is all-or-nothing (every worker reports ready within
//! `start_timeout` before any serves, else exit 1 naming the listener); a
//! crashed worker is logged with its exit status or signal and respawned,
//! its socket staying open meanwhile; SIGTERM/SIGINT abandon any start or
//! reload in flight, drain workers and exit 0, a second one kills them at
//! once; unix socket files are removed on exit.

mod accounts;
mod carry;
pub mod check;
mod conn;
mod control;
mod error;
mod event_loop;
mod exits;
mod generation;
mod late;
mod launch;
mod metrics;
mod observe;
mod relay;
mod reload;
mod respawn;
mod retire;
mod spawn;
mod status;
mod upgrade;

pub use error::StartError;

use crate::config::{self, Config, ListenerConfig};
use crate::os::privileges;
use crate::os::signals::SignalPipe;
use crate::os::systemd::{self, Notifier};
use crate::os::transport::{self, BindError};
use launch::Launch;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use socket2::Socket;
use spawn::Worker;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    accounts::log_warnings(&config);
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
    if let Err(e) = privileges::give_unix_files_to_user(&config, &inherited)
        .and_then(|()| accounts::keep_what_workers_need(&config))
    {
        config
            .listeners
            .iter()
            .filter(|l| !inherited.contains(&l.name))
            .for_each(transport::remove_unix_file);
        return Err(StartError::Io(std::io::Error::new(
            e.kind(),
            format!("master account and capabilities: {e}"),
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
