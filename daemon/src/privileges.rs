//! Users, groups and dropping root: `[daemon] user`/`group` and the unix
//! socket file `owner`/`group`; and the open-file limit the master raises.
//!
//! Promises: a drop clears supplementary groups, sets the group before the
//! user, and fails loudly (never half-dropped) when any step fails.

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
pub fn drop_privileges(user: Option<&str>, group: Option<&str>) -> io::Result<()> {
    if user.is_none() && group.is_none() {
        return Ok(());
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
    if let Some(gid) = gid {
        nix::unistd::setgroups(&[Gid::from_raw(gid)]).map_err(io::Error::from)?;
        nix::unistd::setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid))
            .map_err(io::Error::from)?;
    }
    if let Some(uid) = uid {
        let u = Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u).map_err(io::Error::from)?;
    }
    Ok(())
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
/// unless the listener names an `owner`, so the daemon can remove them.
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
        .filter(|l| l.owner.is_none() && !inherited.contains(&l.name))
    {
        if let crate::config::Address::Unix(path) = &l.address {
            std::os::unix::fs::chown(path, Some(uid), None)?;
        }
    }
    Ok(())
}
