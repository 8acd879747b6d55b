//! sockhost-discard: the Discard Protocol (RFC 863) as a sockhost plugin.
//!
//! Stream: every byte the client sends is read and thrown away until the
//! client closes its side (or the connection is reset); nothing is ever
//! written. Datagram: each datagram is received and dropped; no reply is
//! sent. A read timeout (`connection_timeout`) is an error of that request.
//! It takes no `[listener.config]` keys and ignores any it is given; a
//! request reads into one 4 KiB stack buffer and allocates nothing.

use sockhost_sdk::{export_handler, Handler, Kind, Listener, Request, Result};
use std::io::{ErrorKind, Read};

/// Bytes read per call: one page, as the echo plugin reads.
const CHUNK: usize = 4 * 1024;

/// The discard handler; it keeps no state.
pub struct Discard;

impl Handler for Discard {
    fn create(_listener: &Listener) -> Result<Self> {
        Ok(Discard)
    }

    fn handle(&self, req: &mut Request) -> Result<()> {
        match req.kind() {
            Kind::Stream => drain(&mut req.socket()),
            // The datagram was already read by the host: dropping it is all.
            Kind::Datagram => Ok(()),
        }
    }
}

/// Read `input` to its end and keep nothing; a reset ends it as a close does.
fn drain(input: &mut impl Read) -> Result<()> {
    let mut buf = [0u8; CHUNK];
    loop {
        match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

export_handler!(Discard);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_reads_everything_and_stops_at_the_end() {
        let data = vec![7u8; 3 * CHUNK + 5];
        let mut cursor = std::io::Cursor::new(data);
        drain(&mut cursor).expect("drained");
        assert_eq!(cursor.position(), (3 * CHUNK + 5) as u64);
    }
}
