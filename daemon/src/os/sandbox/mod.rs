//! A listener's sandbox (`[listener.sandbox]`): Landlock and seccomp,
//! entered by the worker once, after its identity is settled and before
//! any plugin code runs (a library's constructors run inside `dlopen`).
//!
//! Owns the order inside the box: one thread only → no_new_privs → the
//! reporter process is forked → Landlock (`enforce` only) → seccomp, whose
//! notification fd goes to the reporter. Promises: under `enforce` every
//! part asked for is in force or [`enter`] fails naming the part the
//! kernel lacks (never a silent downgrade); under `log` nothing is blocked
//! and the reporter logs each call that `enforce` would block; `off` does
//! nothing. What it entered is part of the worker's one start line.
//! Never called twice in a process, never after a thread was started.

pub mod exposure;
mod landlock;
mod needs;
mod report;
mod report_text;
mod seccomp;

use crate::config::{ListenerConfig, Network, SandboxMode};
use std::os::fd::RawFd;

pub use needs::{Access, Grant};
pub use seccomp::FILTER_GROUPS;

/// What sandbox a worker entered: its part of the worker's one start
/// line (`worker box: ... sandbox=enforce landlock=[ABI 7, ...]
/// seccomp=[...]`, see [`crate::worker::confine::BoxReport`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxReport {
    pub mode: SandboxMode,
    /// The Landlock ABI enforced and its rule count (`enforce` only).
    pub landlock: Option<(i64, usize)>,
    /// TCP bind/connect denied by Landlock (`network = "none"`).
    pub tcp_denied: bool,
    /// What the seccomp filter blocks (or, under `log`, reports).
    pub filters: Option<String>,
}

impl std::fmt::Display for SandboxReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sandbox={}", self.mode.as_str())?;
        match (self.mode, self.landlock) {
            (SandboxMode::Off, _) => return Ok(()),
            (_, Some((abi, rules))) => write!(
                f,
                " landlock=[ABI {abi}, {rules} rules, signals and abstract unix sockets scoped to this listener{}]",
                if self.tcp_denied { ", TCP bind/connect denied" } else { "" }
            )?,
            (_, None) => f.write_str(
                " landlock=[files not restricted, signals not scoped (log mode: Landlock has no log-only mode)]",
            )?,
        }
        if let Some(filters) = &self.filters {
            write!(f, " seccomp=[{filters}]")?;
        }
        Ok(())
    }
}

/// Put this process into `l`'s sandbox. `keep_out` are fds the reporter
/// process must not hold (the listening and control sockets); `log_fd`
/// the worker's log relay, where the reporter writes. Returns what it
/// entered, for the worker's start line.
pub fn enter(
    l: &ListenerConfig,
    keep_out: &[RawFd],
    log_fd: Option<RawFd>,
) -> Result<SandboxReport, String> {
    let sb = &l.sandbox;
    let mut out = SandboxReport {
        mode: sb.mode,
        landlock: None,
        tcp_denied: false,
        filters: None,
    };
    if sb.mode == SandboxMode::Off {
        return Ok(out);
    }
    crate::os::threads::check_single_threaded()
        .map_err(|why| format!("sandbox: cannot be set up: {why}"))?;
    no_new_privileges()?;
    let grants = if sb.mode == SandboxMode::Enforce {
        needs::grants(l)?
    } else {
        Vec::new()
    };
    let reporter = report::Reporter::spawn(&l.name, sb.mode, keep_out, log_fd)?;
    if sb.mode == SandboxMode::Enforce {
        let network_none = sb.network == Network::None;
        let abi = landlock::restrict(&grants, network_none)?;
        out.landlock = Some((abi, grants.len()));
        out.tcp_denied = network_none;
    }
    let notify = seccomp::install(sb.mode, sb.network, sb.exec)?;
    reporter.hand_over(notify)?;
    out.filters = Some(seccomp::describe(sb.mode, sb.network, sb.exec));
    Ok(out)
}

/// The grants `l`'s worker would get under `enforce` (for `sockhostctl
/// security`): the listener's own paths and its runtime's.
pub fn planned_grants(l: &ListenerConfig) -> Result<Vec<Grant>, String> {
    needs::grants(l)
}

fn no_new_privileges() -> Result<(), String> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(format!(
            "sandbox: PR_SET_NO_NEW_PRIVS: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
