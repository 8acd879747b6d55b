//! xinetd's address lists (`only_from`, `no_access`) as sockhost's
//! `allow`/`deny` networks.
//!
//! Owns [`network`]: one xinetd address entry to CIDR networks. xinetd
//! takes an IPv4 address whose rightmost parts are 0 as a wildcard
//! (`10.0.0.0` is 10.0.0.0/8, `0.0.0.0` everyone), `A.B.{C,D}` as a list of
//! networks, `ADDR/BITS`, IPv6 addresses, and host, domain (`.example.org`)
//! and network names. Names need a resolver at every connection, which
//! sockhost's access lists never use: they come back as `None` for the
//! caller to name.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr};

/// Every address, IPv4 and IPv6.
pub const EVERYONE: [&str; 2] = ["0.0.0.0/0", "::/0"];

/// The networks `entry` stands for, as CIDR text; `None` for a name.
pub fn network(entry: &str) -> Option<Vec<String>> {
    if let Ok(net) = entry.parse::<IpNet>() {
        return Some(vec![net.trunc().to_string()]);
    }
    if let Some((head, tail)) = entry.split_once('{') {
        let list = tail.strip_suffix('}')?;
        let mut out = Vec::new();
        for part in list.split(',') {
            out.extend(network(&format!("{head}{}", part.trim()))?);
        }
        return Some(out);
    }
    match entry.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => Some(wildcard_v4(v4)),
        Ok(ip @ IpAddr::V6(_)) => Some(vec![IpNet::from(ip).to_string()]),
        Err(_) => partial_v4(entry),
    }
}

/// An IPv4 address with trailing zero parts as a wildcard network.
fn wildcard_v4(v4: Ipv4Addr) -> Vec<String> {
    if v4.is_unspecified() {
        return EVERYONE.iter().map(|s| s.to_string()).collect();
    }
    let zeros = v4.octets().iter().rev().take_while(|&&o| o == 0).count();
    let bits = 32 - 8 * zeros as u8;
    vec![format!("{v4}/{bits}")]
}

/// `A.B.C` or `A.B.` (the pieces a `{}` list leaves before the braces,
/// with the list's part appended): the missing parts are wildcards.
fn partial_v4(entry: &str) -> Option<Vec<String>> {
    let parts: Vec<&str> = entry.trim_end_matches('.').split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        octets[i] = p.parse().ok()?;
    }
    let bits = 8 * parts.len() as u8;
    Some(vec![format!("{}/{bits}", Ipv4Addr::from(octets))])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(e: &str) -> Vec<String> {
        network(e).unwrap_or_else(|| panic!("{e} refused"))
    }

    #[test]
    fn xinetd_address_forms() {
        assert_eq!(net("127.0.0.1"), ["127.0.0.1/32"]);
        assert_eq!(net("10.0.0.0"), ["10.0.0.0/8"]);
        assert_eq!(net("192.168.1.0"), ["192.168.1.0/24"]);
        assert_eq!(net("0.0.0.0"), EVERYONE);
        assert_eq!(net("172.16.0.0/12"), ["172.16.0.0/12"]);
        assert_eq!(net("::1"), ["::1/128"]);
        assert_eq!(net("2001:db8::/32"), ["2001:db8::/32"]);
        assert_eq!(
            net("128.138.{10,209}"),
            ["128.138.10.0/24", "128.138.209.0/24"]
        );
        assert!(network("localhost").is_none());
        assert!(network(".example.org").is_none());
        assert!(network("128.138.{10,x}").is_none());
    }
}
