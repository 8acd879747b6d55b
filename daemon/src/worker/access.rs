//! The built-in part of `verify_request`: `allow`/`deny` CIDR lists, and
//! `allow_uids`/`allow_gids` for unix stream peers.
//!
//! Runs in the worker's loop before any fork or thread. Deny is checked
//! first and wins; a non-empty allow list admits only its matches; an empty
//! one admits everyone. Unix peers are not subject to CIDR lists; a unix
//! stream peer is admitted when its uid is in `allow_uids` or its primary
//! or a supplementary group is in `allow_gids` (SO_PEERCRED and
//! SO_PEERGROUPS: the credentials the kernel recorded at connect, which the
//! client cannot forge); with both lists empty every peer is admitted. A
//! peer whose credentials cannot be read is refused, never admitted.

use crate::config::ListenerConfig;
use ipnet::IpNet;
use socket2::SockAddr;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};

/// A listener's access rules.
#[derive(Debug, Clone, Default)]
pub struct AccessControl {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
    uids: Vec<u32>,
    gids: Vec<u32>,
}

/// Which CIDR list refused a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// It is in `deny`.
    Deny,
    /// `allow` is not empty and it is not in it.
    Allow,
}

/// A unix stream peer's credentials, as the kernel recorded them at connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl AccessControl {
    pub fn new(l: &ListenerConfig) -> AccessControl {
        AccessControl {
            allow: l.allow.clone(),
            deny: l.deny.clone(),
            uids: l.allow_uids.clone(),
            gids: l.allow_gids.clone(),
        }
    }

    /// Whether peers must pass `allow_uids`/`allow_gids`.
    pub fn checks_credentials(&self) -> bool {
        !self.uids.is_empty() || !self.gids.is_empty()
    }

    /// Whether the unix stream peer on `sock`, with credentials `cred`, may
    /// be served. Supplementary groups are read only when needed.
    pub fn allowed_peer(&self, cred: &PeerCred, sock: &impl AsFd) -> bool {
        if !self.checks_credentials() || self.uids.contains(&cred.uid) {
            return true;
        }
        if self.gids.is_empty() {
            return false;
        }
        if self.gids.contains(&cred.gid) {
            return true;
        }
        peer_groups(sock).is_ok_and(|groups| groups.iter().any(|g| self.gids.contains(g)))
    }

    /// The list that refuses a client at `peer`, if one does.
    pub fn refusal(&self, peer: &SockAddr) -> Option<Rule> {
        peer.as_socket().and_then(|sa| self.refusal_ip(sa.ip()))
    }

    fn refusal_ip(&self, ip: IpAddr) -> Option<Rule> {
        let ip = canonical_ip(ip);
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return Some(Rule::Deny);
        }
        let admitted = self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip));
        (!admitted).then_some(Rule::Allow)
    }
}

/// An IPv4-mapped IPv6 address stands for the IPv4 address it maps, for
/// CIDR rules and per-source limits alike.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The credentials of the peer of a connected unix stream socket.
pub fn peer_credentials(sock: &impl AsFd) -> io::Result<PeerCred> {
    let cred = nix::sys::socket::getsockopt(sock, nix::sys::socket::sockopt::PeerCredentials)?;
    Ok(PeerCred {
        pid: cred.pid(),
        uid: cred.uid(),
        gid: cred.gid(),
    })
}

/// SO_PEERGROUPS (Linux 4.13), which libc does not export for every target.
#[cfg(target_arch = "sparc64")]
const SO_PEERGROUPS: libc::c_int = 0x3d;
#[cfg(not(target_arch = "sparc64"))]
const SO_PEERGROUPS: libc::c_int = 59;

/// The peer's supplementary groups at connect.
pub fn peer_groups(sock: &impl AsFd) -> io::Result<Vec<u32>> {
    let fd = sock.as_fd().as_raw_fd();
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    // A first try with room for 64 groups; on ERANGE the kernel said how
    // many there are (at most NGROUPS_MAX, 65536): one more try with that.
    for _ in 0..2 {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: `groups` is a live buffer of `len` bytes; the kernel
        // writes at most `len` bytes and stores the size it needs in `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let count = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(count.min(groups.len()));
            return Ok(groups);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) || count <= groups.len() || count > 65536 {
            return Err(err);
        }
        groups.resize(count, 0);
    }
    Err(io::Error::from_raw_os_error(libc::ERANGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> AccessControl {
        let p = |v: &[&str]| v.iter().map(|s| s.parse().expect("cidr")).collect();
        AccessControl {
            allow: p(allow),
            deny: p(deny),
            ..AccessControl::default()
        }
    }

    #[test]
    fn unix_peers_pass_by_uid_or_group_and_a_socketpair_reports_our_own() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let cred = peer_credentials(&a).expect("SO_PEERCRED");
        // SAFETY: getuid/getgid have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        assert_eq!((cred.uid, cred.gid), (uid, gid));
        assert_eq!(cred.pid, std::process::id() as i32);
        let open = AccessControl::default();
        assert!(open.allowed_peer(&cred, &a), "no lists: everyone");
        let by_uid = AccessControl {
            uids: vec![uid],
            ..AccessControl::default()
        };
        assert!(by_uid.allowed_peer(&cred, &a));
        let other_uid = AccessControl {
            uids: vec![uid.wrapping_add(1)],
            ..AccessControl::default()
        };
        assert!(!other_uid.allowed_peer(&cred, &a));
        let by_gid = AccessControl {
            uids: vec![uid.wrapping_add(1)],
            gids: vec![gid],
            ..AccessControl::default()
        };
        assert!(by_gid.allowed_peer(&cred, &a), "either list admits");
        let other_gid = AccessControl {
            gids: vec![gid.wrapping_add(12345)],
            ..AccessControl::default()
        };
        let supplementary = peer_groups(&a).unwrap_or_default();
        assert_eq!(
            other_gid.allowed_peer(&cred, &a),
            supplementary.contains(&gid.wrapping_add(12345))
        );
    }

    #[test]
    fn deny_wins_and_nonempty_allow_admits_only_matches() {
        let r = rules(&["127.0.0.0/8", "::1/128"], &["127.0.0.2/32"]);
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(r.refusal_ip(ip("127.0.0.1")), None);
        assert_eq!(r.refusal_ip(ip("127.0.0.2")), Some(Rule::Deny), "deny wins");
        assert_eq!(
            r.refusal_ip(ip("10.1.2.3")),
            Some(Rule::Allow),
            "not in allow"
        );
        assert_eq!(r.refusal_ip(ip("::1")), None);
        assert_eq!(
            r.refusal_ip(ip("::ffff:127.0.0.1")),
            None,
            "mapped v4 matches v4 rules"
        );
    }

    #[test]
    fn empty_lists_admit_everyone() {
        let ip = "192.0.2.1".parse::<IpAddr>().expect("ip");
        assert_eq!(rules(&[], &[]).refusal_ip(ip), None);
        assert_eq!(rules(&[], &["0.0.0.0/0"]).refusal_ip(ip), Some(Rule::Deny));
    }

    #[test]
    fn mapped_ipv4_counts_as_ipv4() {
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().expect("ip");
        assert_eq!(
            canonical_ip(mapped),
            "127.0.0.2".parse::<IpAddr>().expect("ip")
        );
        let v6: IpAddr = "::1".parse().expect("ip");
        assert_eq!(canonical_ip(v6), v6);
    }
}
