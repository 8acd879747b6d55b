//! The PROXY protocol header (v1 text or v2 binary, told apart by their
//! signatures) at the start of a connection on a `proxy_protocol` listener.
//!
//! Owns finding where a header ends ([`scan`]), reading exactly that many
//! bytes off a connection without ever blocking ([`HeaderReader`]), and
//! turning a complete header into the client it names ([`parse`], with the
//! `ppp` crate). Promises: not one byte past the header is taken from the
//! socket (what follows belongs to the plugin); every byte taken is part of
//! the header, so a header that arrives in pieces never makes the loop spin
//! on data it already saw; a v2 `LOCAL` command, a v1 `UNKNOWN` line and
//! addresses that are neither IPv4 nor IPv6 (unspecified, unix) leave the
//! real peer as the client; garbage, a v1 line over 107 bytes, an unknown
//! version or command, or a truncated address block is an error naming what
//! was wrong. Never logs; never panics on input.

use socket2::{SockAddr, Socket};
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;

/// The 12 bytes that open every v2 header.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The v2 fixed part: signature, version/command, family/protocol, length.
const V2_FIXED: usize = 16;
/// What opens every v1 header.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 line, CRLF included.
const V1_MAX: usize = 107;
/// Bytes looked at per peek.
const PEEK: usize = 536;

/// Where the header in `bytes` (everything read so far) ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// Every byte so far belongs to the header, and more are needed.
    Incomplete,
    /// The header is the first `n` bytes.
    Complete(usize),
}

/// Find the end of the header that `bytes` starts with.
pub fn scan(bytes: &[u8]) -> Result<Scan, String> {
    let n = bytes.len().min(V2_SIGNATURE.len());
    if n > 0 && bytes[..n] == V2_SIGNATURE[..n] {
        if bytes.len() < V2_FIXED {
            return Ok(Scan::Incomplete);
        }
        let total = V2_FIXED + usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
        return Ok(if bytes.len() >= total {
            Scan::Complete(total)
        } else {
            Scan::Incomplete
        });
    }
    let n = bytes.len().min(V1_PREFIX.len());
    if n > 0 && bytes[..n] == V1_PREFIX[..n] {
        let limit = bytes.len().min(V1_MAX);
        return match bytes[..limit].iter().position(|&b| b == b'\r') {
            Some(cr) if cr + 1 < bytes.len() => Ok(Scan::Complete(cr + 2)),
            Some(_) => Ok(Scan::Incomplete),
            None if bytes.len() >= V1_MAX => {
                Err(format!("a PROXY v1 line longer than {V1_MAX} bytes"))
            }
            None => Ok(Scan::Incomplete),
        };
    }
    if bytes.is_empty() {
        return Ok(Scan::Incomplete);
    }
    Err("the connection does not start with a PROXY header".into())
}

/// What a complete header says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proxied {
    /// The client it names; `None`: the real peer is the client
    /// (v2 `LOCAL`, v1 `UNKNOWN`, unspecified or unix addresses).
    pub source: Option<SocketAddr>,
    /// v2: the TLVs, raw as sent (type, 2-byte big-endian length, value)
    /// and checked to be well formed; empty for v1.
    pub tlvs: Vec<u8>,
}

/// Read a complete header (exactly the bytes [`scan`] said).
pub fn parse(header: &[u8]) -> Result<Proxied, String> {
    if header.starts_with(V2_SIGNATURE) {
        return parse_v2(header);
    }
    use ppp::v1::{Addresses, Header};
    let h = Header::try_from(header).map_err(|e| format!("a malformed PROXY v1 header: {e}"))?;
    let source = match h.addresses {
        Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Unknown => None,
    };
    Ok(Proxied {
        source,
        tlvs: Vec::new(),
    })
}

fn parse_v2(header: &[u8]) -> Result<Proxied, String> {
    use ppp::v2::{Addresses, Command, Header};
    let h = Header::try_from(header).map_err(|e| format!("a malformed PROXY v2 header: {e}"))?;
    if let Some(bad) = h.tlvs().find_map(Result::err) {
        return Err(format!("a malformed PROXY v2 TLV: {bad}"));
    }
    let tlvs = h.tlv_bytes().to_vec();
    if h.command == Command::Local {
        return Ok(Proxied { source: None, tlvs });
    }
    let source = match h.addresses {
        Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Unspecified | Addresses::Unix(_) => None,
    };
    Ok(Proxied { source, tlvs })
}

/// The TLV of type `kind` in raw TLV bytes, if any (the first one).
pub fn find_tlv(tlvs: &[u8], kind: u8) -> Option<&[u8]> {
    let mut rest = tlvs;
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        let value = rest.get(3..3 + len)?;
        if rest[0] == kind {
            return Some(value);
        }
        rest = &rest[3 + len..];
    }
    None
}

/// How far reading a header got.
#[derive(Debug)]
pub enum Step {
    Done(Proxied),
    /// Wait until the socket is readable again.
    More,
    Failed(String),
}

/// A header being read off one connection, a piece at a time.
#[derive(Debug, Default)]
pub struct HeaderReader {
    taken: Vec<u8>,
}

impl HeaderReader {
    /// Take what has arrived of the header, without waiting.
    pub fn read_from(&mut self, sock: &Socket) -> Step {
        loop {
            let before = self.taken.len();
            let mut peek = [MaybeUninit::<u8>::uninit(); PEEK];
            let n = match sock.recv_with_flags(&mut peek, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
                Ok(0) => return Step::Failed(self.closed()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::More,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Step::Failed(format!("reading the PROXY header: {e}")),
            };
            // SAFETY: recv initialised the first n bytes of `peek`.
            let peeked = unsafe { std::slice::from_raw_parts(peek.as_ptr().cast::<u8>(), n) };
            self.taken.extend_from_slice(peeked);
            let (want, done) = match scan(&self.taken) {
                Ok(Scan::Complete(total)) => (total, true),
                Ok(Scan::Incomplete) => (self.taken.len(), false),
                Err(why) => return Step::Failed(why),
            };
            self.taken.truncate(want);
            if let Err(e) = discard(sock, want - before) {
                return Step::Failed(format!("reading the PROXY header: {e}"));
            }
            if done {
                return match parse(&self.taken) {
                    Ok(p) => Step::Done(p),
                    Err(why) => Step::Failed(why),
                };
            }
        }
    }

    fn closed(&self) -> String {
        if self.taken.is_empty() {
            "closed before sending a PROXY header".into()
        } else {
            format!("closed after {} bytes of a PROXY header", self.taken.len())
        }
    }
}

/// Take `n` bytes already seen with MSG_PEEK off the socket.
fn discard(sock: &Socket, mut n: usize) -> io::Result<()> {
    let mut sink = [MaybeUninit::<u8>::uninit(); PEEK];
    while n > 0 {
        let chunk = n.min(sink.len());
        match sock.recv_with_flags(&mut sink[..chunk], libc::MSG_DONTWAIT) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(got) => n -= got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The client a header names, as the socket address the request gets.
pub fn client_addr(source: SocketAddr) -> SockAddr {
    SockAddr::from(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, addrs: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        let len = (addrs.len() + tlvs.len()) as u16;
        h.extend_from_slice(&len.to_be_bytes());
        h.extend_from_slice(addrs);
        h.extend_from_slice(tlvs);
        h
    }

    const V4: [u8; 12] = [192, 0, 2, 7, 10, 0, 0, 1, 0x30, 0x39, 0, 80];

    #[test]
    fn a_v1_line_ends_at_its_crlf_and_names_the_client() {
        let line = b"PROXY TCP4 192.0.2.7 10.0.0.1 12345 80\r\nGET /";
        assert_eq!(scan(line), Ok(Scan::Complete(40)));
        let p = parse(&line[..40]).expect("valid");
        assert_eq!(p.source, Some("192.0.2.7:12345".parse().expect("addr")));
        let six = b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n";
        let p = parse(six).expect("valid");
        assert_eq!(p.source, Some("[2001:db8::1]:1".parse().expect("addr")));
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").map(|p| p.source), Ok(None));
    }

    #[test]
    fn pieces_of_a_header_are_incomplete_never_wrong() {
        let line = b"PROXY TCP4 192.0.2.7 10.0.0.1 12345 80\r\n";
        for n in 0..line.len() {
            assert_eq!(scan(&line[..n]), Ok(Scan::Incomplete), "{n} bytes");
        }
        let h = v2(1, 0x11, &V4, &[]);
        for n in 0..h.len() {
            assert_eq!(scan(&h[..n]), Ok(Scan::Incomplete), "{n} bytes");
        }
        assert_eq!(scan(&h), Ok(Scan::Complete(28)));
    }

    #[test]
    fn garbage_and_overlong_lines_are_refused() {
        assert!(scan(b"GET / HTTP/1.1\r\n").is_err());
        assert!(scan(b"PROXX").is_err());
        assert!(scan(&[b'P', b'R', b'O', b'X', b'Y', b' ', b'x'].repeat(20)).is_err());
        assert!(parse(b"PROXY TCP4 1.2.3.4\r\n").is_err());
        assert!(parse(b"PROXY TCP4 999.2.3.4 1.2.3.4 1 2\r\n").is_err());
        let mut bad_version = v2(1, 0x11, &V4, &[]);
        bad_version[12] = 0x31;
        assert!(parse(&bad_version).is_err());
        assert!(
            parse(&v2(1, 0x11, &V4[..8], &[])).is_err(),
            "short addresses"
        );
    }

    #[test]
    fn v2_gives_the_source_and_keeps_the_tlvs_raw() {
        let tlvs = [1, 0, 2, b'h', b'2', 0xE0, 0, 1, 7];
        let p = parse(&v2(1, 0x11, &V4, &tlvs)).expect("valid");
        assert_eq!(p.source, Some("192.0.2.7:12345".parse().expect("addr")));
        assert_eq!(p.tlvs, tlvs);
        assert_eq!(find_tlv(&p.tlvs, 1), Some(&b"h2"[..]));
        assert_eq!(find_tlv(&p.tlvs, 0xE0), Some(&[7u8][..]));
        assert_eq!(find_tlv(&p.tlvs, 2), None);
        let mut six = vec![0x20, 0x01, 0x0d, 0xb8];
        six.extend_from_slice(&[0; 12]);
        six.extend_from_slice(&[0; 15]);
        six.push(1);
        six.extend_from_slice(&[0, 9, 0, 80]);
        let p = parse(&v2(1, 0x21, &six, &[])).expect("valid");
        assert_eq!(p.source, Some("[2001:db8::]:9".parse().expect("addr")));
    }

    #[test]
    fn local_and_unspecified_keep_the_real_peer() {
        assert_eq!(parse(&v2(0, 0, &[], &[])).map(|p| p.source), Ok(None));
        assert_eq!(parse(&v2(0, 0x11, &V4, &[])).map(|p| p.source), Ok(None));
        assert_eq!(parse(&v2(1, 0, &[], &[])).map(|p| p.source), Ok(None));
    }

    #[test]
    fn a_truncated_tlv_is_refused() {
        assert!(parse(&v2(1, 0x11, &V4, &[1, 0, 5, b'x'])).is_err());
        assert_eq!(find_tlv(&[1, 0, 5, b'x'], 1), None);
    }
}
