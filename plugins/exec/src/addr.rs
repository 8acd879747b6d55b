//! The environment a program gets about its request, as tcpserver
//! (`PROTO`, `TCPREMOTEIP`, …), ucspi-unix (`UNIXREMOTEPID`, …) and systemd
//! (`REMOTE_ADDR`, `REMOTE_PORT`) set it.
//!
//! Promises: addresses are written without brackets and an IPv4-mapped
//! IPv6 address as plain IPv4; the client is the address the host gave
//! (with `proxy_protocol`, the one the PROXY header names); the local
//! address is the socket's own. Nothing here fails a request: what cannot
//! be read is left out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

/// An IP address and port from a `struct sockaddr`'s bytes (inet or
/// inet6), IPv4-mapped addresses as IPv4.
pub fn ip_port(bytes: &[u8]) -> Option<(IpAddr, u16)> {
    let family = i32::from(u16::from_ne_bytes([*bytes.first()?, *bytes.get(1)?]));
    match family {
        libc::AF_INET if bytes.len() >= std::mem::size_of::<libc::sockaddr_in>() => {
            let port = u16::from_be_bytes([bytes[2], bytes[3]]);
            let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
            Some((IpAddr::V4(ip), port))
        }
        libc::AF_INET6 if bytes.len() >= std::mem::size_of::<libc::sockaddr_in6>() => {
            let port = u16::from_be_bytes([bytes[2], bytes[3]]);
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&bytes[8..24]);
            let ip = Ipv6Addr::from(octets);
            Some((normalise(IpAddr::V6(ip)), port))
        }
        _ => None,
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it maps.
pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The socket's own address, as `struct sockaddr` bytes.
pub fn local(fd: RawFd) -> Vec<u8> {
    // SAFETY: an all-zero sockaddr_storage is a valid out-buffer.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most `len` bytes into `ss`.
    let rc = unsafe {
        libc::getsockname(
            fd,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Vec::new();
    }
    // SAFETY: the kernel filled `len` bytes (at most the storage's size).
    let all = unsafe {
        std::slice::from_raw_parts(
            (&ss as *const libc::sockaddr_storage).cast::<u8>(),
            std::mem::size_of::<libc::sockaddr_storage>(),
        )
    };
    all[..(len as usize).min(all.len())].to_vec()
}

/// A unix socket address's path (`@name` for an abstract one).
pub fn unix_path(bytes: &[u8]) -> Option<String> {
    let path = bytes.get(2..)?;
    if path.is_empty() {
        return None;
    }
    if path[0] == 0 {
        return Some(format!("@{}", String::from_utf8_lossy(&path[1..])));
    }
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    Some(String::from_utf8_lossy(&path[..end]).into_owned())
}

/// The peer's pid, uid and gid on a connected unix socket.
pub fn peer_cred(fd: RawFd) -> Option<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED writes one ucred into a buffer of that size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cred)
}

/// The request's variables. `stream`: TCP or UDP names; `client`: the
/// client's address bytes (empty for `wait`); `fd`: the socket whose
/// local address (and, unix stream, peer) is described.
pub fn request_env(
    family: i32,
    stream: bool,
    client: &[u8],
    fd: RawFd,
    listener: &str,
) -> Vec<(String, String)> {
    let mut env = Vec::with_capacity(8);
    let mut put = |k: &str, v: String| env.push((k.to_string(), v));
    if family == libc::AF_UNIX {
        put("PROTO", "UNIX".into());
        if stream {
            if let Some(c) = peer_cred(fd).filter(|c| c.pid > 0) {
                put("UNIXREMOTEPID", c.pid.to_string());
                put("UNIXREMOTEEUID", c.uid.to_string());
                put("UNIXREMOTEEGID", c.gid.to_string());
            }
        }
        if let Some(p) = unix_path(&local(fd)) {
            put("UNIXLOCALPATH", p);
        }
    } else {
        let proto = if stream { "TCP" } else { "UDP" };
        put("PROTO", proto.into());
        if let Some((ip, port)) = ip_port(client) {
            put(&format!("{proto}REMOTEIP"), ip.to_string());
            put(&format!("{proto}REMOTEPORT"), port.to_string());
            put("REMOTE_ADDR", ip.to_string());
            put("REMOTE_PORT", port.to_string());
        }
        if let Some((ip, port)) = ip_port(&local(fd)) {
            put(&format!("{proto}LOCALIP"), ip.to_string());
            put(&format!("{proto}LOCALPORT"), port.to_string());
        }
    }
    put("SOCKHOST_LISTENER", listener.to_string());
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_are_written_as_ipv4() {
        let mapped: Ipv6Addr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(normalise(IpAddr::V6(mapped)).to_string(), "192.0.2.7");
        let v6: Ipv6Addr = "2001:db8::1".parse().expect("ip");
        assert_eq!(normalise(IpAddr::V6(v6)).to_string(), "2001:db8::1");
    }

    #[test]
    fn unix_paths_and_abstract_names() {
        let mut b = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        b.extend_from_slice(b"/run/x.sock\0");
        assert_eq!(unix_path(&b).as_deref(), Some("/run/x.sock"));
        let mut a = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        a.extend_from_slice(b"\0name");
        assert_eq!(unix_path(&a).as_deref(), Some("@name"));
    }
}
