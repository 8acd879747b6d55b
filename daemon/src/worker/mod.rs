//! A worker process: serves ONE listener with its plugin.
//!
//! Forked by the master (never exec'd). The worker closes what belongs to
//! the master and to other listeners, puts itself in its box (limits,
//! account, no_new_privs: see `confine`), dies with the master
//! (PR_SET_PDEATHSIG, asked for after the change of account, which
//! clears it), enters the listener's sandbox (`os::sandbox`: Landlock and
//! seccomp, right before the plugin's first code runs), loads the plugin
//! (the master never does), calls
//! `create`, reports `READY` (or `ERROR reason`) on its control socket,
//! preceded by one `DEPENDS path` line per file the plugin named with the
//! host's `depends_on` (the master watches them for reloads), and
//! only starts serving when the master answers `GO`, so a generation starts
//! whole or not at all. On SIGTERM/SIGINT it stops accepting, says
//! `STOPPED` on its control socket (once written, it never accepts again:
//! the master reports a reload done only then; the signal handler says it
//! at once when the loop is not inside an accept, see
//! `os::signals::enter_accept`), finishes what is in flight
//! (up to `shutdown_timeout`), destroys the instance and exits 0.
//! In check mode (`sockhostd --check`) it stops after `create`/`destroy`.

mod access;
pub mod confine;
mod dispatch;
pub mod gate;
mod handover;
mod intake;
mod limits;
mod notices;
pub mod proxy;
pub mod request;
mod server;
pub(crate) mod shared_limits;

use crate::config::{CpuAffinity, DaemonConfig, ListenerConfig, Mixin};
use crate::os::shm::SharedSlice;
use crate::os::signals::SignalPipe;
use crate::os::stats::{Meter, WorkerStats};
use crate::plugin::{self, Instance};
use crate::worker::server::Server;
use nix::sys::signal::Signal;
use socket2::Socket;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// What the master hands a freshly forked worker.
pub struct WorkerArgs<'a> {
    pub listener: &'a ListenerConfig,
    pub daemon: &'a DaemonConfig,
    /// The listening socket (None in check mode).
    pub socket: Option<Socket>,
    /// This worker's end of its control socket.
    pub ctrl: UnixStream,
    /// Fds of the master's that this process must close.
    pub close_fds: Vec<RawFd>,
    pub master_pid: i32,
    pub generation: u64,
    pub check_only: bool,
    /// This worker's counters, shared with the master (None in check mode).
    pub stats: Option<SharedSlice<WorkerStats>>,
    /// The write end of this worker's log relay (None in check mode).
    pub log_fd: Option<std::os::fd::OwnedFd>,
    /// Where this worker goes among the CPUs when it is kept on one
    /// (master/spawn.rs `cpu_slot`).
    pub cpu_slot: usize,
}

/// The signals a worker routes to its loop.
pub const WORKER_SIGNALS: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGCHLD,
];

/// The worker's whole life. Never returns: the process exits here.
pub fn worker_main(args: WorkerArgs) -> ! {
    for fd in &args.close_fds {
        // SAFETY: closing fds inherited from the master that this process
        // does not own and never uses.
        unsafe { libc::close(*fd) };
    }
    crate::os::systemd::clear_env_in_worker();
    let span = tracing::info_span!(
        "worker",
        listener = %args.listener.name,
        generation = args.generation,
        plugin = tracing::field::Empty
    );
    let _in = span.enter();
    let mut ctrl = args.ctrl.try_clone().ok();
    let code = match run(args, &span) {
        Ok(()) => 0,
        Err(msg) => {
            tracing::error!("{msg}");
            if let Some(c) = ctrl.as_mut() {
                let _ = writeln!(c, "ERROR {}", msg.replace('\n', " | "));
            }
            1
        }
    };
    end_leftovers();
    // SAFETY: ending the worker without unwinding into the master's stack
    // frames it inherited through fork.
    unsafe { libc::_exit(code) }
}

fn run(args: WorkerArgs, span: &tracing::Span) -> Result<(), String> {
    let l = args.listener;
    // Decided with the daemon's account, before the worker takes its own.
    let plugin_owner = if args.daemon.strict_plugin_permissions {
        let uid = crate::os::privileges::effective_daemon_uid(args.daemon.user.as_deref())
            .map_err(|e| format!("[daemon] user: {e}"))?;
        Some(uid)
    } else {
        None
    };
    let mut report = confine::confine(l, args.daemon)?;
    die_with_master(args.master_pid)?;
    set_process_name(&args.listener.name);
    let signals = SignalPipe::install(&WORKER_SIGNALS).map_err(|e| format!("signal setup: {e}"))?;
    crate::os::logfile::reopen_on_sigusr1().map_err(|e| format!("signal setup: {e}"))?;
    // Backstop for a stop that hangs: shutdown_timeout for requests in
    // flight, plus time to kill stragglers, then SIGALRM ends the worker.
    let grace = args.daemon.shutdown_timeout.as_secs_f64().ceil() as u32 + 3;
    crate::os::signals::alarm_on_stop(grace);
    if let Some(uid) = plugin_owner {
        crate::config::check_plugin_permissions(&l.handler, uid)
            .map_err(|why| format!("plugin {}: refused: {why}", l.handler.display()))?;
    }
    // The box (rlimits, identity, then this) is complete before any code
    // of the plugin's runs: its constructors run inside dlopen.
    let keep_out = [
        args.socket.as_ref().map_or(-1, |s| s.as_raw_fd()),
        args.ctrl.as_raw_fd(),
    ];
    let relay = args.log_fd.as_ref().map(|fd| fd.as_raw_fd());
    report.sandbox = Some(crate::os::sandbox::enter(l, &keep_out, relay)?);
    if !args.check_only {
        tracing::info!("worker box: {report}");
    }
    let plugin = plugin::load(&l.handler).map_err(|e| e.to_string())?;
    if !args.check_only {
        place_on_cpus(l, plugin, args.cpu_slot)?;
    }
    let listen_fd = args.socket.as_ref().map_or(-1, |s| s.as_raw_fd());
    // Kept open for the worker's whole life (the plugin borrows it).
    let log_fd = args.log_fd.map_or(-1, std::os::fd::IntoRawFd::into_raw_fd);
    let instance = Instance::create_on(plugin, l, listen_fd, log_fd).map_err(|e| e.to_string())?;
    let depends = plugin::take_dependencies();
    if l.mixin == Mixin::Fork {
        if let Err(why) = crate::os::threads::check_single_threaded() {
            instance.destroy();
            return Err(why);
        }
    }
    span.record("plugin", plugin.name.as_str());
    tracing::debug!(version = %plugin.version, path = %l.handler.display(), "plugin loaded");
    let mut ctrl = args.ctrl;
    if args.check_only {
        instance.destroy();
        let _ = writeln!(ctrl, "READY");
        return Ok(());
    }
    let Some(socket) = args.socket else {
        instance.destroy();
        return Err("no listening socket".into());
    };
    // Everything serving needs exists before READY: startup and reload
    // stay all-or-nothing.
    let meter = args.stats.map_or(Meter::none(), Meter::leak);
    let mut server = match Server::new(l.clone(), socket, instance, signals, meter) {
        Ok(server) => server,
        Err((e, instance)) => {
            instance.destroy();
            return Err(format!("cannot start serving: {e}"));
        }
    };
    let mut report = String::new();
    for path in &depends {
        report.push_str(&format!("DEPENDS {}\n", path.display()));
    }
    report.push_str("READY\n");
    ctrl.write_all(report.as_bytes())
        .map_err(|e| format!("control socket: {e}"))?;
    plugin::report_late_to(ctrl.as_raw_fd());
    if !wait_for_go(&ctrl) {
        server.server_close(Duration::ZERO);
        return Ok(()); // the master aborted the generation
    }
    crate::os::daemonize::worker_serving();
    crate::os::signals::ack_stop_on(ctrl.as_raw_fd());
    let served = server.serve_forever();
    // The loop has returned: nothing accepts from here on.
    let _ = ctrl.write_all(b"STOPPED\n");
    server.server_close(args.daemon.shutdown_timeout);
    served.map_err(|e| format!("serve loop failed: {e}"))
}

/// `cpu_affinity`: keep the worker on one CPU when the listener says
/// `one`, or says `auto` (the default) and its plugin asks for it
/// (SOCKHOST_PLUGIN_ONE_CPU) for a worker that serves with threads or is
/// one of several sync workers (never a fork-mode worker: its request
/// children would share the one CPU); before `create`, so every thread
/// and process the plugin starts from then on inherits it (a thread a
/// plugin's library constructor started during dlopen would not: the
/// mask is the calling thread's; the Python plugin starts none).
fn place_on_cpus(l: &ListenerConfig, plugin: &plugin::Plugin, slot: usize) -> Result<(), String> {
    let asks = plugin.wants(sockhost_sdk::sys::SOCKHOST_PLUGIN_ONE_CPU);
    if !l.may_keep_on_one_cpu() || (l.cpu_affinity == CpuAffinity::Auto && !asks) {
        return Ok(());
    }
    let why = match (l.cpu_affinity, l.mixin) {
        (CpuAffinity::One, _) => "cpu_affinity = \"one\"",
        (_, Mixin::Thread) => {
            "its plugin's request threads take turns on one lock; cpu_affinity = \"all\" to spread them"
        }
        _ => "its plugin asks for a CPU per worker; cpu_affinity = \"all\" to let them move",
    };
    match crate::os::cpu::keep_on_one(slot) {
        Ok((cpu, of)) => {
            tracing::info!("worker kept on CPU {cpu} (of {of} the daemon may use): {why}")
        }
        // `auto` is the default: a host that refuses the call (a seccomp
        // profile, a cpuset changing under us) must not stop the listener.
        Err(e) if l.cpu_affinity == CpuAffinity::Auto => {
            tracing::warn!("cpu_affinity = \"auto\": the worker stays on the daemon's CPUs: {e}")
        }
        Err(e) => {
            return Err(format!(
                "cpu_affinity = \"one\": cannot keep the worker on one CPU: {e}"
            ))
        }
    }
    Ok(())
}

/// SIGTERM to whatever is left in this worker's process group as it
/// exits (programs a request started and that outlived the stop, since
/// requests in flight were already waited for): none runs on without its
/// worker. Only when the worker leads its own group (the master makes it
/// so), never the master's group; the worker blocks SIGTERM first, so its
/// exit status stays its own.
fn end_leftovers() {
    // SAFETY: getpgrp and getpid have no preconditions.
    let (group, me) = unsafe { (libc::getpgrp(), libc::getpid()) };
    if group != me {
        return;
    }
    // SAFETY: blocking SIGTERM in this thread (the worker is about to
    // _exit: the signal must not end it first), then signalling our own
    // process group; sigset_t is filled by sigemptyset/sigaddset.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::kill(-me, libc::SIGTERM);
    }
}

/// Block until the master says `GO` (true) or closes the socket (false).
fn wait_for_go(ctrl: &UnixStream) -> bool {
    let mut line = String::new();
    let mut reader = BufReader::new(ctrl);
    matches!(reader.read_line(&mut line), Ok(n) if n > 0 && line.trim() == "GO")
}

/// Ask for SIGTERM when the master dies, and check it has not already.
fn die_with_master(master_pid: i32) -> Result<(), String> {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGTERM as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } != master_pid {
        return Err("the master exited while this worker started".into());
    }
    Ok(())
}

/// `shd:NAME` in `ps` and `top`: the kernel keeps 15 bytes of a thread's
/// name, so the prefix is short to leave 11 for the listener's.
fn set_process_name(listener: &str) {
    let mut name: Vec<u8> = format!("shd:{listener}").into_bytes();
    name.truncate(15);
    name.push(0);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0) };
}
