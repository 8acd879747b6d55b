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
//! nothing but say so. One start line per worker says what it runs under.
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

/// Put this process into `l`'s sandbox. `keep_out` are fds the reporter
/// process must not hold (the listening and control sockets).
pub fn enter(l: &ListenerConfig, keep_out: &[RawFd]) -> Result<(), String> {
    let sb = &l.sandbox;
    let who = identity();
    if sb.mode == SandboxMode::Off {
        tracing::info!("sandbox off; {who}");
        return Ok(());
    }
    crate::os::threads::check_single_threaded()
        .map_err(|why| format!("sandbox: cannot be set up: {why}"))?;
    no_new_privileges()?;
    let grants = if sb.mode == SandboxMode::Enforce {
        needs::grants(l)?
    } else {
        Vec::new()
    };
    let reporter = report::Reporter::spawn(&l.name, sb.mode, keep_out)?;
    let files = if sb.mode == SandboxMode::Enforce {
        let abi = landlock::restrict(&grants, sb.network == Network::None)?;
        format!(
            "Landlock ABI {abi} ({} rules; signals and abstract unix sockets scoped to this listener{})",
            grants.len(),
            if sb.network == Network::None {
                "; TCP bind/connect denied"
            } else {
                ""
            }
        )
    } else {
        "files not restricted, signals not scoped (log mode: Landlock has no log-only mode)"
            .to_owned()
    };
    let notify = seccomp::install(sb.mode, sb.network, sb.exec)?;
    reporter.hand_over(notify)?;
    tracing::info!(
        mode = sb.mode.as_str(),
        "sandbox {}: {who}; {files}; seccomp: {}",
        sb.mode.as_str(),
        seccomp::describe(sb.mode, sb.network, sb.exec)
    );
    Ok(())
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

/// "user NAME (uid), group (gid), limits ..." for the start line.
fn identity() -> String {
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name);
    let limit = |r: nix::sys::resource::Resource| match nix::sys::resource::getrlimit(r) {
        Ok((_, hard)) if hard == libc::RLIM_INFINITY => "unlimited".to_owned(),
        Ok((soft, hard)) if soft == hard => soft.to_string(),
        Ok((soft, hard)) => format!("{soft}/{hard}"),
        Err(e) => format!("? ({e})"),
    };
    use nix::sys::resource::Resource as R;
    format!(
        "user {name} (uid {uid}, gid {gid}); limits memory={} open_files={} processes={} cpu_seconds={}",
        limit(R::RLIMIT_AS),
        limit(R::RLIMIT_NOFILE),
        limit(R::RLIMIT_NPROC),
        limit(R::RLIMIT_CPU)
    )
}
