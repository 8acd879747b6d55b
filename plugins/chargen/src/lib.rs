//! sockhost-chargen: the Character Generator Protocol (RFC 864) as a
//! sockhost plugin.
//!
//! The characters are the 95 printable ASCII characters, space (0x20) to
//! tilde (0x7E), as a ring. Line N (from 0) is the 72 characters of the
//! ring starting at position N mod 95, followed by "\r\n": each line
//! starts one character later than the one before, RFC 864's "rotating"
//! pattern, which repeats every 95 lines.
//!
//! Stream: the lines are written from line 0 on, without end, until the
//! client closes or resets the connection (then `handle` returns Ok); data
//! the client sends is read and thrown away between writes. A write
//! timeout (`connection_timeout`) is an error of that request.
//! Datagram: any datagram is answered with one datagram of a random length
//! from 0 to 512 bytes (never more), holding the first bytes of the same
//! pattern from line 0. It takes no `[listener.config]` keys and ignores
//! any it is given. The 95-line period is built once, in `create`.

use sockhost_sdk::{export_handler, Handler, Kind, Listener, Request, Result};
use std::io::{ErrorKind, Write};

/// Characters in the ring: ' ' to '~'.
const RING: usize = 95;
/// Characters on a line, the line end not counted.
const WIDTH: usize = 72;
/// Bytes on a line with its "\r\n".
const LINE: usize = WIDTH + 2;
/// Longest datagram reply (RFC 864: "between 0 and 512").
pub const MAX_DATAGRAM: usize = 512;

/// The chargen handler: one full period of the pattern.
pub struct Chargen {
    period: Vec<u8>,
}

impl Handler for Chargen {
    fn create(_listener: &Listener) -> Result<Self> {
        Ok(Chargen { period: period() })
    }

    fn handle(&self, req: &mut Request) -> Result<()> {
        match req.kind() {
            Kind::Stream => self.stream(req),
            Kind::Datagram => {
                let len = random_len();
                // The period (7,030 bytes) is longer than any reply.
                let reply = self.period.get(..len).unwrap_or(&self.period);
                req.reply(reply)?;
                Ok(())
            }
        }
    }
}

impl Chargen {
    /// Write the pattern until the peer goes away.
    fn stream(&self, req: &Request) -> Result<()> {
        let mut socket = req.socket();
        loop {
            discard_pending(req.fd());
            match socket.write_all(&self.period) {
                Ok(()) => {}
                Err(e) if peer_gone(e.kind()) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Lines 0 to 94 of the pattern, each with its "\r\n".
fn period() -> Vec<u8> {
    let mut out = Vec::with_capacity(RING * LINE);
    for first in 0..RING {
        out.extend((0..WIDTH).map(|k| b' ' + ((first + k) % RING) as u8));
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Read and drop whatever the client has sent so far, without waiting.
fn discard_pending(fd: std::os::fd::RawFd) {
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: `fd` is the request's socket, open for the request's
        // life; the buffer is valid for its length; MSG_DONTWAIT makes the
        // call return at once when nothing is there.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        // 0 (the client shut its side) or an error (nothing pending): the
        // next write tells whether the client is still reading.
        if n <= 0 {
            return;
        }
    }
}

/// A random length from 0 to MAX_DATAGRAM, both included.
fn random_len() -> usize {
    let mut raw = [0u8; 2];
    // SAFETY: the buffer is valid for 2 bytes; flags 0 block only until
    // the kernel's pool is first initialised, long before a request.
    let n = unsafe { libc::getrandom(raw.as_mut_ptr().cast(), raw.len(), 0) };
    let r = if n == 2 {
        u16::from_ne_bytes(raw) as usize
    } else {
        // No randomness to be had: the clock's nanoseconds are varied enough.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(MAX_DATAGRAM, |d| d.subsec_nanos() as usize)
    };
    r % (MAX_DATAGRAM + 1)
}

/// Whether an error only means the client went away.
fn peer_gone(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)
}

export_handler!(Chargen);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_rotate_through_the_95_printables() {
        let p = period();
        assert_eq!(p.len(), 95 * 74);
        let lines: Vec<&[u8]> = p.chunks(LINE).collect();
        assert_eq!(
            &lines[0][..WIDTH],
            &b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg"[..]
        );
        assert_eq!(
            &lines[1][..WIDTH],
            &b"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh"[..]
        );
        // Line 94 starts with '~' and wraps to the space.
        assert_eq!(&lines[94][..3], b"~ !");
        assert!(lines.iter().all(|l| l.ends_with(b"\r\n")));
    }

    #[test]
    fn datagram_lengths_stay_within_512() {
        let lens: Vec<usize> = (0..2000).map(|_| random_len()).collect();
        assert!(lens.iter().all(|&l| l <= MAX_DATAGRAM));
        // Random, not fixed: 2,000 draws give many lengths.
        let distinct: std::collections::BTreeSet<_> = lens.iter().collect();
        assert!(distinct.len() > 100, "{}", distinct.len());
    }
}
