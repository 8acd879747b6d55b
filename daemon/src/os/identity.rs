//! Which account each process runs as: the master's (`[daemon] user` and
//! `group`) and each listener's worker's (`user`, `group`, defaulting to
//! the daemon's), and what the master must keep to start workers as them.
//!
//! Promises: the same rules everywhere (the master's check at start and on
//! reload, the worker's own change of identity): a listener's `user`
//! without `group` runs as that user's primary group, as systemd's `User=`
//! does; a listener that sets neither runs as the daemon's account. The
//! master needs CAP_SETUID and CAP_KILL (to signal them) when some worker
//! runs as another uid, CAP_SETGID when some worker runs as another gid,
//! CAP_SYS_NICE when some worker has a negative `nice`.
//! Never changes this process's credentials: it only computes.

use crate::config::{Config, DaemonConfig, ListenerConfig};
use crate::os::privileges::{lookup_group, lookup_user, Cap};
use nix::unistd::{Gid, Group, Uid, User};
use std::io;

/// A resolved account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
}

impl Identity {
    /// This process's real ids.
    pub fn current() -> Identity {
        Identity {
            uid: Uid::current().as_raw(),
            gid: Gid::current().as_raw(),
        }
    }

    /// "name(uid)", the user as logs show it.
    pub fn user_name(&self) -> String {
        match User::from_uid(Uid::from_raw(self.uid)) {
            Ok(Some(u)) => format!("{}({})", u.name, self.uid),
            _ => self.uid.to_string(),
        }
    }

    /// "name(gid)", the group as logs show it.
    pub fn group_name(&self) -> String {
        match Group::from_gid(Gid::from_raw(self.gid)) {
            Ok(Some(g)) => format!("{}({})", g.name, self.gid),
            _ => self.gid.to_string(),
        }
    }
}

/// The account `user`/`group` name, falling back on `base` for what is
/// not named: `user` alone takes its primary group.
fn resolve(user: Option<&str>, group: Option<&str>, base: &Identity) -> io::Result<Identity> {
    let (uid, primary) = match user {
        Some(name) => {
            let (u, g) = lookup_user(name)?;
            (u, Some(g))
        }
        None => (base.uid, None),
    };
    let gid = match group {
        Some(name) => lookup_group(name)?,
        None => primary.unwrap_or(base.gid),
    };
    Ok(Identity { uid, gid })
}

/// The master's account once it dropped privileges: `[daemon] user` and
/// `group`, or the one it was started as.
pub fn of_daemon(d: &DaemonConfig) -> io::Result<Identity> {
    resolve(d.user.as_deref(), d.group.as_deref(), &Identity::current())
}

/// The account a listener's worker runs as.
pub fn of_listener(l: &ListenerConfig, d: &DaemonConfig) -> io::Result<Identity> {
    let daemon = of_daemon(d)?;
    if l.user.is_none() && l.group.is_none() {
        return Ok(daemon);
    }
    resolve(l.user.as_deref(), l.group.as_deref(), &daemon)
}

/// What the master needs to start every worker of `config`, and the
/// first listener that needs each part (for messages).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// CAP_SETUID and CAP_KILL: a worker runs as another uid.
    pub other_uid: Option<String>,
    /// CAP_SETGID: a worker runs as another gid.
    pub other_gid: Option<String>,
    /// CAP_SYS_NICE: a worker raises its priority (a negative `nice`).
    pub negative_nice: Option<String>,
}

impl Needs {
    /// The capabilities these needs take, besides CAP_NET_BIND_SERVICE.
    pub fn caps(&self) -> Vec<Cap> {
        let mut caps = Vec::new();
        if self.other_uid.is_some() {
            caps.extend([Cap::SETUID, Cap::KILL]);
        }
        if self.other_gid.is_some() {
            caps.push(Cap::SETGID);
        }
        if self.negative_nice.is_some() {
            caps.push(Cap::SYS_NICE);
        }
        caps
    }
}

/// What a master running as `master` needs for `config`.
pub fn needs(config: &Config, master: &Identity) -> io::Result<Needs> {
    let daemon = master;
    let mut needs = Needs::default();
    for l in &config.listeners {
        let worker = of_listener(l, &config.daemon)
            .map_err(|e| io::Error::new(e.kind(), format!("listener \"{}\": {e}", l.name)))?;
        if worker.uid != daemon.uid && needs.other_uid.is_none() {
            needs.other_uid = Some(l.name.clone());
        }
        if worker.gid != daemon.gid && needs.other_gid.is_none() {
            needs.other_gid = Some(l.name.clone());
        }
        if l.nice.is_some_and(|n| n < 0) && needs.negative_nice.is_none() {
            needs.negative_nice = Some(l.name.clone());
        }
    }
    Ok(needs)
}

/// Whether this (running) master, as the account it runs as now, can
/// start every worker of `config`: root can; otherwise it must hold what
/// [`needs`] asks for. The error
/// names the listener, the account and what is missing; `reload` says
/// the config is a reload's (whose fix is a restart).
pub fn master_can_start(config: &Config, reload: bool) -> Result<(), String> {
    if Uid::effective().is_root() {
        return Ok(());
    }
    let needs = needs(config, &Identity::current()).map_err(|e| e.to_string())?;
    let held = crate::os::privileges::held_caps().map_err(|e| format!("capget: {e}"))?;
    let missing = |caps: &[Cap]| -> Vec<&'static str> {
        caps.iter()
            .filter(|c| !held.contains(c))
            .map(|c| c.name())
            .collect()
    };
    for (listener, caps) in [
        (&needs.other_uid, &[Cap::SETUID, Cap::KILL][..]),
        (&needs.other_gid, &[Cap::SETGID][..]),
        (&needs.negative_nice, &[Cap::SYS_NICE][..]),
    ] {
        let Some(name) = listener else { continue };
        let lack = missing(caps);
        if lack.is_empty() {
            continue;
        }
        let l = config.listeners.iter().find(|l| &l.name == name);
        let who = l
            .and_then(|l| of_listener(l, &config.daemon).ok())
            .map_or_else(String::new, |i| {
                format!(" as user {} group {}", i.user_name(), i.group_name())
            });
        let what = if caps.contains(&Cap::SYS_NICE) {
            format!(
                " with nice = {}",
                l.and_then(|l| l.nice).unwrap_or_default()
            )
        } else {
            format!(
                "{who}, another account than the master's ({})",
                Identity::current().user_name()
            )
        };
        let fix = if reload {
            "the master keeps only the capabilities the listeners at its start needed and cannot regain others, so a listener with a new account takes a restart (or give it the daemon's user and group)"
        } else {
            "start the daemon as root (with [daemon] user to drop the rest), or give it these capabilities"
        };
        return Err(format!(
            "listener \"{name}\" runs{what}, but the master lacks {}: {fix}",
            lack.join(", ")
        ));
    }
    Ok(())
}
