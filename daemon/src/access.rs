//! The built-in part of `verify_request`: `allow`/`deny` CIDR lists.
//!
//! Runs in the worker's loop before any fork or thread. Deny is checked
//! first and wins; a non-empty allow list admits only its matches; an empty
//! one admits everyone. Unix peers are not subject to CIDR lists.

use crate::config::ListenerConfig;
use ipnet::IpNet;
use socket2::SockAddr;
use std::net::IpAddr;

/// A listener's address-based access rules.
#[derive(Debug, Clone, Default)]
pub struct AccessControl {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl AccessControl {
    pub fn new(l: &ListenerConfig) -> AccessControl {
        AccessControl {
            allow: l.allow.clone(),
            deny: l.deny.clone(),
        }
    }

    /// Whether a client at `peer` may be served.
    pub fn allowed(&self, peer: &SockAddr) -> bool {
        match peer.as_socket() {
            Some(sa) => self.allowed_ip(sa.ip()),
            None => true,
        }
    }

    fn allowed_ip(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> AccessControl {
        let p = |v: &[&str]| v.iter().map(|s| s.parse().expect("cidr")).collect();
        AccessControl {
            allow: p(allow),
            deny: p(deny),
        }
    }

    #[test]
    fn deny_wins_and_nonempty_allow_admits_only_matches() {
        let r = rules(&["127.0.0.0/8", "::1/128"], &["127.0.0.2/32"]);
        assert!(r.allowed_ip("127.0.0.1".parse().expect("ip")));
        assert!(!r.allowed_ip("127.0.0.2".parse().expect("ip")), "deny wins");
        assert!(
            !r.allowed_ip("10.1.2.3".parse().expect("ip")),
            "not in allow"
        );
        assert!(r.allowed_ip("::1".parse().expect("ip")));
        assert!(
            r.allowed_ip("::ffff:127.0.0.1".parse().expect("ip")),
            "mapped v4 matches v4 rules"
        );
    }

    #[test]
    fn empty_lists_admit_everyone() {
        assert!(rules(&[], &[]).allowed_ip("192.0.2.1".parse().expect("ip")));
        assert!(!rules(&[], &["0.0.0.0/0"]).allowed_ip("192.0.2.1".parse().expect("ip")));
    }
}
