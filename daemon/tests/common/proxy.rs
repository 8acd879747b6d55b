//! Helpers for the PROXY protocol suites (proxy.rs, proxy_limits.rs,
//! haproxy.rs): hand-built v1 and v2 headers, a probe conversation that
//! starts with one, and HAProxy found on the machine (or a skip).
//!
//! Promises: headers are built byte by byte from the protocol's layout,
//! not by the parser under test; every read has the suite's deadline.

#![allow(dead_code)]

use super::{Probe, Stream, DEADLINE};
use std::io::{Read, Write};
use std::net::SocketAddr;

/// The v2 signature.
pub const SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// A v1 line for a TCP client `src` talking to `dst`.
pub fn v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let proto = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {proto} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

/// A v2 header: `command` 0 LOCAL or 1 PROXY, the addresses of `src` and
/// `dst` (both the same family) or none, then `tlvs` (already encoded).
pub fn v2(command: u8, addrs: Option<(SocketAddr, SocketAddr)>, tlvs: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    let family = match addrs {
        None => 0x00,
        Some((SocketAddr::V4(s), SocketAddr::V4(d))) => {
            body.extend_from_slice(&s.ip().octets());
            body.extend_from_slice(&d.ip().octets());
            body.extend_from_slice(&s.port().to_be_bytes());
            body.extend_from_slice(&d.port().to_be_bytes());
            0x11
        }
        Some((SocketAddr::V6(s), SocketAddr::V6(d))) => {
            body.extend_from_slice(&s.ip().octets());
            body.extend_from_slice(&d.ip().octets());
            body.extend_from_slice(&s.port().to_be_bytes());
            body.extend_from_slice(&d.port().to_be_bytes());
            0x21
        }
        Some(_) => panic!("mixed families"),
    };
    body.extend_from_slice(tlvs);
    let mut h = SIG.to_vec();
    h.push(0x20 | command);
    h.push(family);
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(&body);
    h
}

/// One TLV: type, 2-byte length, value.
pub fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut t = vec![kind];
    t.extend_from_slice(&(value.len() as u16).to_be_bytes());
    t.extend_from_slice(value);
    t
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// A probe conversation on `addr` that first sends `header`.
pub fn probe_after(addr: &str, header: &[u8]) -> Probe {
    let mut s = Stream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.write_all(header).expect("send the header");
    Probe::from_stream(s)
}

/// Send `header` and `command` in one write; the reply line, or `None`
/// when the daemon closed the connection without one.
pub fn one_segment(addr: &str, header: &[u8], command: &str) -> Option<String> {
    let mut s = Stream::connect(addr).ok()?;
    let mut all = header.to_vec();
    all.extend_from_slice(command.as_bytes());
    all.push(b'\n');
    s.write_all(&all).ok()?;
    reply_line(&mut s)
}

/// The first line the daemon sends, without `\n`; `None` on close first.
pub fn reply_line(s: &mut impl Read) -> Option<String> {
    let start = std::time::Instant::now();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while start.elapsed() < DEADLINE {
        match s.read(&mut byte) {
            Ok(0) => return None,
            Ok(_) if byte[0] == b'\n' => return Some(String::from_utf8_lossy(&line).into()),
            Ok(_) => line.push(byte[0]),
            Err(_) => return None,
        }
    }
    None
}

/// HAProxy's path, or `None` with a SKIPPED line (a failure under CI or
/// with SOCKHOST_REQUIRE_HAPROXY=1, where it must be there).
pub fn haproxy_or_skip(test: &str) -> Option<std::path::PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = std::path::Path::new(dir).join("haproxy");
        if p.is_file() {
            return Some(p);
        }
    }
    let required = std::env::var("SOCKHOST_REQUIRE_HAPROXY").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !required,
        "{test}: haproxy is required here but not installed"
    );
    eprintln!("SKIPPED {test}: haproxy is not installed");
    None
}
