//! sockhost-echo: the Echo Protocol (RFC 862) as a sockhost plugin.
//!
//! Stream: every byte the client sends is written back, unbuffered, until
//! the client closes its side; then `handle` returns and the daemon closes
//! the connection. A peer that resets or vanishes mid-write also just ends
//! the conversation; a read or write timeout (`connection_timeout`) is an
//! error of that request. Datagram: each datagram is answered with one
//! datagram holding the same bytes.
//!
//! This plugin is benchmarked: a stream request uses one 4 KiB buffer on the
//! stack (one page: a fresh request thread or forked child touches, and
//! copies, one page for it, not sixteen) and the raw socket, a datagram is
//! replied from the host's own buffer; neither allocates on the heap. It
//! takes no `[listener.config]` keys and ignores any it is given.

use sockhost_sdk::{export_handler, Handler, Kind, Listener, Request, Result};
use std::io::{ErrorKind, Read, Write};

/// Bytes moved per read: one page. Larger buffers made connection-per-
/// request runs slower (each page of stack is faulted in per thread or
/// child) and cost resident memory per idle connection in thread mode; a
/// bulk transfer pays one read and one write per 4 KiB.
const CHUNK: usize = 4 * 1024;

/// The echo handler; it keeps no state.
pub struct Echo;

impl Handler for Echo {
    fn create(_listener: &Listener) -> Result<Self> {
        Ok(Echo)
    }

    fn handle(&self, req: &mut Request) -> Result<()> {
        match req.kind() {
            Kind::Stream => echo_stream(req),
            Kind::Datagram => {
                req.reply(req.data())?;
                Ok(())
            }
        }
    }
}

/// Copy the socket's input back to it until end of file.
fn echo_stream(req: &Request) -> Result<()> {
    let mut socket = req.socket();
    let mut buf = [0u8; CHUNK];
    loop {
        let n = match socket.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if peer_gone(e.kind()) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        // `buf[..n]` cannot fail: read never reports more than it was given.
        match socket.write_all(&buf[..n]) {
            Ok(()) => {}
            Err(e) if peer_gone(e.kind()) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether an error only means the client went away, which ends an echo
/// conversation as normally as a close does.
fn peer_gone(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)
}

export_handler!(Echo);
