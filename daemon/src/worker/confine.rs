//! The worker's box: everything that confines a worker, set up in ONE
//! place, in ONE order, before any code the daemon did not write runs
//! (before `dlopen`, so before a plugin's constructors) and before any
//! thread exists (the worker is forked from the single-threaded master).
//!
//! The order, and why:
//! 1. namespaces (none yet): `unshare` needs root, so it comes first;
//! 2. rlimits, nice, umask: raising a priority or a hard limit may need
//!    privileges the worker still has here;
//! 3. groups, gid, uid: `setgroups([])`, `setresgid`, `setresuid`, in that
//!    order (the uid last, since after it nothing else can change); then
//!    every capability is dropped unless the worker runs as root;
//! 4. PR_SET_NO_NEW_PRIVS, for every worker: a plugin or the program it
//!    runs cannot gain privileges through a setuid or file-capability
//!    binary (a program that must be root runs under `user = "root"`
//!    instead). Landlock and seccomp need it too;
//! 5. the sandbox (Landlock, then seccomp last) goes right after step 4.
//!
//! Request children (fork mode) and programs inherit all of it: limits,
//! nice, umask, credentials and no_new_privs survive fork and execve.
//! Limits are set as soft and hard alike, so nothing inside can raise
//! them back.
//!
//! Promises: any step that fails fails the worker's start with a message
//! naming the setting and the errno: never a silent half box. Returns a
//! [`BoxReport`] the worker logs once, with the sandbox's part added (step 5).
//! Never runs after the plugin is loaded.

use crate::config::{DaemonConfig, Limits, ListenerConfig};
use crate::os::identity::{self, Identity};
use crate::os::sandbox::SandboxReport;
use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{getgroups, getresgid, getresuid, setgroups, setresgid, setresuid, Gid, Uid};
use std::fmt;

/// What box a worker runs in: one log line at its start.
#[derive(Debug)]
pub struct BoxReport {
    pub identity: Identity,
    /// The supplementary groups after the change (empty, or the primary).
    pub groups: Vec<u32>,
    pub limits: Limits,
    pub nice: Option<i32>,
    pub umask: Option<u32>,
    pub no_new_privs: bool,
    /// The sandbox entered (step 5), once it is.
    pub sandbox: Option<SandboxReport>,
}

impl fmt::Display for BoxReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> = self.groups.iter().map(u32::to_string).collect();
        write!(
            f,
            "user={} group={} groups=[{}]",
            self.identity.user_name(),
            self.identity.group_name(),
            groups.join(",")
        )?;
        let l = &self.limits;
        let parts = [
            ("memory", l.memory.map(size)),
            ("open_files", l.open_files.map(|n| n.to_string())),
            ("processes", l.processes.map(|n| n.to_string())),
            ("cpu_seconds", l.cpu_seconds.map(|n| n.to_string())),
        ];
        let set: Vec<String> = parts
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        if set.is_empty() {
            f.write_str(" limits=inherited")?;
        } else {
            write!(f, " limits=[{}]", set.join(","))?;
        }
        match self.nice {
            Some(n) => write!(f, " nice={n}")?,
            None => f.write_str(" nice=inherited")?,
        }
        match self.umask {
            Some(m) => write!(f, " umask={m:04o}")?,
            None => f.write_str(" umask=inherited")?,
        }
        write!(f, " no_new_privs={}", self.no_new_privs)?;
        if let Some(sandbox) = &self.sandbox {
            write!(f, " {sandbox}")?;
        }
        Ok(())
    }
}

/// A byte count the way the config writes it, when it is a whole unit.
fn size(bytes: u64) -> String {
    for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
        if bytes % (1 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// Put this worker in its box (steps 1 to 4 above). Call it first thing
/// in the worker, before the plugin is loaded and before any thread.
pub fn confine(l: &ListenerConfig, d: &DaemonConfig) -> Result<BoxReport, String> {
    // 1. namespaces: none yet.
    // 2. limits, nice, umask.
    set_limits(&l.limits)?;
    if let Some(n) = l.nice {
        set_nice(n)?;
    }
    if let Some(mask) = l.umask {
        // SAFETY: umask only swaps a process attribute.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    // 3. groups, gid, uid; then capabilities.
    let target =
        identity::of_listener(l, d).map_err(|e| format!("cannot resolve the account: {e}"))?;
    let groups = become_account(&target)?;
    crate::os::privileges::drop_capabilities()
        .map_err(|e| format!("cannot drop capabilities: {e}"))?;
    // 4. no_new_privs.
    no_new_privileges()?;
    Ok(BoxReport {
        identity: target,
        groups,
        limits: l.limits.clone(),
        nice: l.nice,
        umask: l.umask,
        no_new_privs: true,
        sandbox: None,
    })
}

/// setrlimit with soft = hard for every limit set.
fn set_limits(limits: &Limits) -> Result<(), String> {
    let all = [
        ("memory", Resource::RLIMIT_AS, limits.memory),
        ("open_files", Resource::RLIMIT_NOFILE, limits.open_files),
        ("processes", Resource::RLIMIT_NPROC, limits.processes),
        ("cpu_seconds", Resource::RLIMIT_CPU, limits.cpu_seconds),
    ];
    for (key, resource, value) in all {
        let Some(n) = value else { continue };
        setrlimit(resource, n, n).map_err(|e| {
            let hint = if e == nix::errno::Errno::EPERM {
                " (above the daemon's own hard limit: raise it, e.g. LimitNOFILE= in the unit, or start the daemon as root)"
            } else {
                ""
            };
            format!("[listener.limits] {key} = {n}: setrlimit failed: {e}{hint}")
        })?;
    }
    Ok(())
}

fn set_nice(n: i32) -> Result<(), String> {
    // SAFETY: setpriority on this process with integer arguments.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!(
            "nice = {n}: setpriority failed: {e} (a negative nice needs the daemon to start as root)"
        ));
    }
    Ok(())
}

/// Become `target` with no supplementary groups (the list ends up empty,
/// or holding only the primary group when it already did). A worker that
/// keeps the account of a daemon started as an ordinary user keeps its
/// groups too (it could not drop them). Returns the group list after.
fn become_account(target: &Identity) -> Result<Vec<u32>, String> {
    let (uid, gid) = (Uid::from_raw(target.uid), Gid::from_raw(target.gid));
    let fail = |what: &str, e: nix::errno::Errno| {
        format!(
            "cannot run as user {} group {}: {what} failed: {e}",
            target.user_name(),
            target.group_name()
        )
    };
    let current = getgroups().map_err(|e| fail("getgroups", e))?;
    let only_primary = current.iter().all(|g| *g == gid);
    // A daemon started as an ordinary user (no [daemon] user, not root)
    // cannot change its groups, and its workers keep its account as is.
    let unchanged = Uid::current() == uid && Gid::current() == gid && !Uid::effective().is_root();
    let groups = if only_primary || unchanged {
        current
    } else {
        setgroups(&[]).map_err(|e| fail("setgroups", e))?;
        Vec::new()
    };
    let r = getresgid().map_err(|e| fail("getresgid", e))?;
    if [r.real, r.effective, r.saved] != [gid; 3] {
        setresgid(gid, gid, gid).map_err(|e| fail("setresgid", e))?;
    }
    let r = getresuid().map_err(|e| fail("getresuid", e))?;
    if [r.real, r.effective, r.saved] != [uid; 3] {
        setresuid(uid, uid, uid).map_err(|e| fail("setresuid", e))?;
    }
    Ok(groups.into_iter().map(Gid::as_raw).collect())
}

/// PR_SET_NO_NEW_PRIVS: inherited across fork and execve, never undone.
fn no_new_privileges() -> Result<(), String> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("cannot set no_new_privs: {e}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_are_shown_in_the_largest_whole_unit() {
        assert_eq!(size(512 << 20), "512M");
        assert_eq!(size(2 << 30), "2G");
        assert_eq!(size(1536), "1536");
        assert_eq!(size(3 << 10), "3K");
    }
}
