//! Users, groups and dropping root: `[daemon] user`/`group` and the unix
//! socket file's owner; the capabilities the master keeps; and the
//! open-file limit the master raises.
//!
//! Promises: a drop clears supplementary groups, sets the group before the
//! user, and fails loudly (never half-dropped) when any step fails. A
//! master that drops root keeps CAP_NET_BIND_SERVICE (when it had it), so
//! a reload can still bind ports below 1024, plus what its caller asks for
//! (CAP_SETUID, CAP_SETGID, CAP_KILL while some listener runs as another
//! account, CAP_SYS_NICE for a negative `nice`: see os::identity) and nothing else, also after a binary
//! upgrade (they are carried across the exec as ambient capabilities and
//! settled back to permitted only); workers, which run plugin code, hold no
//! capability at all unless they run as root.

use crate::config::Config;
use nix::unistd::{Gid, Group, Uid, User};
use std::collections::HashSet;
use std::io;

/// Resolve a user name (or numeric id) to (uid, primary gid).
pub fn lookup_user(name: &str) -> io::Result<(u32, u32)> {
    let user = match name.parse::<u32>() {
        Ok(id) => User::from_uid(Uid::from_raw(id)),
        Err(_) => User::from_name(name),
    }
    .map_err(io::Error::from)?;
    user.map(|u| (u.uid.as_raw(), u.gid.as_raw()))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no such user `{name}`")))
}

/// Resolve a group name (or numeric id) to a gid.
pub fn lookup_group(name: &str) -> io::Result<u32> {
    let group = match name.parse::<u32>() {
        Ok(id) => Group::from_gid(Gid::from_raw(id)),
        Err(_) => Group::from_name(name),
    }
    .map_err(io::Error::from)?;
    group
        .map(|g| g.gid.as_raw())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no such group `{name}`")))
}

/// The uid plugins will run as: the configured user's, else our own.
pub fn effective_daemon_uid(user: Option<&str>) -> io::Result<u32> {
    match user {
        Some(name) => Ok(lookup_user(name)?.0),
        None => Ok(Uid::effective().as_raw()),
    }
}

/// Drop to `user`/`group` (either may be absent). A no-op when both are.
/// Keeps CAP_NET_BIND_SERVICE (when held) and those of `keep` that are
/// held, permitted and effective; nothing else. Returns what it kept.
pub fn drop_privileges(
    user: Option<&str>,
    group: Option<&str>,
    keep: &[Cap],
) -> io::Result<Vec<Cap>> {
    if user.is_none() && group.is_none() {
        return Ok(Vec::new());
    }
    let (uid, user_gid) = match user {
        Some(name) => {
            let (u, g) = lookup_user(name)?;
            (Some(u), Some(g))
        }
        None => (None, None),
    };
    let gid = match group {
        Some(name) => Some(lookup_group(name)?),
        None => user_gid,
    };
    if already_dropped(uid, gid) {
        // The new binary of an upgrade, started by a master that dropped
        // privileges already: nothing left to drop (or to gain). The old
        // master carried its capabilities across the exec as ambient ones;
        // keep those still needed as plain permitted ones, so they are not
        // handed on to whatever this process or a plugin executes.
        return settle_carried_capabilities(keep);
    }
    if let Some(gid) = gid {
        nix::unistd::setgroups(&[Gid::from_raw(gid)]).map_err(io::Error::from)?;
        nix::unistd::setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid))
            .map_err(io::Error::from)?;
    }
    let mut kept = Vec::new();
    if let Some(uid) = uid {
        let u = Uid::from_raw(uid);
        if uid != 0 {
            kept = wanted(keep, &caps::get()?);
        }
        if !kept.is_empty() {
            caps::keep_across_setuid(true)?;
        }
        nix::unistd::setresuid(u, u, u).map_err(io::Error::from)?;
        if !kept.is_empty() {
            caps::keep_across_setuid(false)?;
            // Everything kept across setuid is dropped here but these.
            caps::set(caps::Set::only(&kept))?;
        }
    }
    Ok(kept)
}

/// CAP_NET_BIND_SERVICE and `keep`, those of them `held` permits.
fn wanted(keep: &[Cap], held: &caps::Set) -> Vec<Cap> {
    let mut all = vec![Cap::NET_BIND_SERVICE];
    all.extend(keep.iter().copied().filter(|c| *c != Cap::NET_BIND_SERVICE));
    all.into_iter().filter(|c| held.permits(c.0)).collect()
}

/// The new binary of an upgrade: what the old master carried across the
/// exec (see [`carry_capabilities_across_exec`]) and is still wanted
/// becomes permitted and effective, nothing inheritable or ambient.
fn settle_carried_capabilities(keep: &[Cap]) -> io::Result<Vec<Cap>> {
    let kept = wanted(keep, &caps::get()?);
    caps::clear_ambient()?;
    caps::set(caps::Set::only(&kept))?;
    Ok(kept)
}

/// The capabilities this process holds (permitted).
pub fn held_caps() -> io::Result<Vec<Cap>> {
    let set = caps::get()?;
    Ok(Cap::CARRIED
        .into_iter()
        .filter(|c| set.permits(c.0))
        .collect())
}

/// In the child between fork and `execve` of a binary upgrade: a process
/// that is not root loses every capability at `execve` unless it is
/// ambient, so a master that kept CAP_NET_BIND_SERVICE (and CAP_SETUID,
/// CAP_SETGID, CAP_KILL for listeners running as other accounts) makes
/// them inheritable and ambient first, and the new binary can still bind
/// ports below 1024 and start such workers. Does nothing for root.
///
/// Async-signal-safe: raw capget/capset/prctl on stack data, no allocation.
pub fn carry_capabilities_across_exec() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return;
    }
    let Ok(mut set) = caps::get() else { return };
    let mut any = false;
    for cap in Cap::CARRIED {
        if set.permits(cap.0) {
            set.inherit(cap.0);
            any = true;
        }
    }
    if !any || caps::set_raw(&set).is_err() {
        return;
    }
    for cap in Cap::CARRIED {
        if set.permits(cap.0) {
            let _ = caps::raise_ambient(cap.0);
        }
    }
}

/// A capability the master may keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap(u32);

impl Cap {
    pub const SETGID: Cap = Cap(6);
    pub const SETUID: Cap = Cap(7);
    pub const KILL: Cap = Cap(5);
    pub const NET_BIND_SERVICE: Cap = Cap(10);
    pub const SYS_NICE: Cap = Cap(23);
    /// Every capability the master may keep, carried across an upgrade.
    pub const CARRIED: [Cap; 5] = [
        Cap::NET_BIND_SERVICE,
        Cap::SETUID,
        Cap::SETGID,
        Cap::KILL,
        Cap::SYS_NICE,
    ];

    /// The name `capabilities(7)` uses.
    pub fn name(self) -> &'static str {
        match self.0 {
            5 => "CAP_KILL",
            6 => "CAP_SETGID",
            7 => "CAP_SETUID",
            10 => "CAP_NET_BIND_SERVICE",
            23 => "CAP_SYS_NICE",
            _ => "CAP_?",
        }
    }
}

/// Whether this process already runs as exactly `uid` and `gid` (not root).
fn already_dropped(uid: Option<u32>, gid: Option<u32>) -> bool {
    use nix::unistd::{getegid, geteuid, getgid, getuid};
    let user_ok = uid.is_none_or(|u| getuid().as_raw() == u && geteuid().as_raw() == u);
    let group_ok = gid.is_none_or(|g| getgid().as_raw() == g && getegid().as_raw() == g);
    !geteuid().is_root() && user_ok && group_ok
}

/// Drop every capability, unless this process runs as root (then the
/// operator chose root, and capabilities would not confine it anyway).
/// Workers call this: the master may keep CAP_NET_BIND_SERVICE.
pub fn drop_capabilities() -> io::Result<()> {
    if Uid::effective().is_root() {
        return Ok(());
    }
    caps::set(caps::Set::default())
}

/// capget(2)/capset(2) and PR_SET_KEEPCAPS, for the few calls above.
mod caps {
    use std::io;

    /// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
    const VERSION_3: u32 = 0x2008_0522;

    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }

    /// This process's capability sets.
    #[derive(Default)]
    pub struct Set([Data; 2]);

    impl Set {
        /// Permitted and effective: `caps` alone.
        pub fn only(caps: &[super::Cap]) -> Set {
            let mut set = Set::default();
            for cap in caps {
                let word = &mut set.0[(cap.0 / 32) as usize];
                word.effective |= 1 << (cap.0 % 32);
                word.permitted |= 1 << (cap.0 % 32);
            }
            set
        }

        /// Add `cap` to the inheritable set.
        pub fn inherit(&mut self, cap: u32) {
            self.0[(cap / 32) as usize].inheritable |= 1 << (cap % 32);
        }

        pub fn permits(&self, cap: u32) -> bool {
            self.0[(cap / 32) as usize].permitted & (1 << (cap % 32)) != 0
        }
    }

    pub fn get() -> io::Result<Set> {
        let mut header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut set = Set::default();
        // SAFETY: capget writes two Data words for version 3 into `set`.
        let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, set.0.as_mut_ptr()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(set)
    }

    pub fn set(set: Set) -> io::Result<()> {
        set_raw(&set)
    }

    pub fn set_raw(set: &Set) -> io::Result<()> {
        let mut header = Header {
            version: VERSION_3,
            pid: 0,
        };
        // SAFETY: capset reads two Data words for version 3 from `set`.
        let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, set.0.as_ptr()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// PR_CAP_AMBIENT_RAISE: `cap` (permitted and inheritable already)
    /// survives the next execve.
    pub fn raise_ambient(cap: u32) -> io::Result<()> {
        let (op, raise) = (libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE);
        // SAFETY: prctl(PR_CAP_AMBIENT, RAISE, cap) takes integers only.
        if unsafe { libc::prctl(op, raise as libc::c_ulong, cap as libc::c_ulong, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// PR_CAP_AMBIENT_CLEAR_ALL: no capability survives an execve.
    pub fn clear_ambient() -> io::Result<()> {
        let (op, clear) = (libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL);
        // SAFETY: prctl(PR_CAP_AMBIENT, CLEAR_ALL) takes integers only.
        if unsafe { libc::prctl(op, clear as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// PR_SET_KEEPCAPS: keep the permitted set across the next setuid.
    pub fn keep_across_setuid(on: bool) -> io::Result<()> {
        // SAFETY: prctl with PR_SET_KEEPCAPS takes one integer argument.
        if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on), 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The master raises its soft RLIMIT_NOFILE to the hard limit: workers
/// inherit it, and a busy thread-mode worker needs a descriptor per client.
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
            }
        }
    }
}

/// With `[daemon] user`, unix socket files we created belong to that user
/// unless the listener names a `socket_user`, so the daemon can remove them.
pub fn give_unix_files_to_user(
    config: &Config,
    inherited: &HashSet<String>,
) -> std::io::Result<()> {
    let Some(user) = config.daemon.user.as_deref() else {
        return Ok(());
    };
    let (uid, _) = lookup_user(user)?;
    for l in config
        .listeners
        .iter()
        .filter(|l| l.socket_user.is_none() && !inherited.contains(&l.name))
    {
        if let crate::config::Address::Unix(path) = &l.address {
            std::os::unix::fs::chown(path, Some(uid), None)?;
        }
    }
    Ok(())
}
