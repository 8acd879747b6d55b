//! One HTTP connection: read requests, answer each in order, until one of
//! the two sides ends it.
//!
//! Promises: requests are answered strictly in the order they arrived, and
//! every answer to the requests found in one read goes out in one write
//! (pipelining); a request body announced by Content-Length is skipped, never
//! read as the next request; the input buffer never grows past the head
//! limit plus one read; after an error answer or a `close` the conversation
//! stops and [`End::Close`] tells the caller to end the connection
//! gracefully. Generic over `Read + Write` so it is tested without sockets.

use crate::parse::{parse, Head, Method, Parsed, METHOD_NOT_ALLOWED};
use crate::response::{write_error, Answer};
use std::io::{self, ErrorKind, Read, Write};

/// How a conversation ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The client closed, went quiet past the timeout, or vanished.
    Peer,
    /// We answered with `Connection: close` (asked for, or an error):
    /// shut down our side and let the client read the answer.
    Close,
}

/// Extra room beyond the head limit, so one read can take a whole batch.
const READ_ROOM: usize = 16 * 1024;

/// Serve requests on `s` until the conversation ends.
pub fn serve<S: Read + Write>(s: &mut S, answer: &Answer, max_head: usize) -> io::Result<End> {
    let mut buf = vec![0u8; max_head + READ_ROOM];
    let (mut start, mut end) = (0usize, 0usize);
    let mut skip: u64 = 0;
    let mut out = Vec::with_capacity(4096);
    loop {
        let outcome = answer_all(
            &buf[..end],
            &mut start,
            &mut skip,
            answer,
            max_head,
            &mut out,
        );
        if !out.is_empty() {
            if let Err(e) = s.write_all(&out) {
                return peer_gone(e);
            }
            out.clear();
        }
        if let Some(end) = outcome {
            return Ok(end);
        }
        // Keep the unparsed tail at the front, then read more after it.
        buf.copy_within(start..end, 0);
        end -= start;
        start = 0;
        match s.read(&mut buf[end..]) {
            Ok(0) => return Ok(End::Peer),
            Ok(n) => end += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return peer_gone(e),
        }
    }
}

/// Answer every complete request in `buf[*start..]` into `out`, moving
/// `*start` past them. `Some(End::Close)` when the connection must close.
fn answer_all(
    buf: &[u8],
    start: &mut usize,
    skip: &mut u64,
    answer: &Answer,
    max_head: usize,
    out: &mut Vec<u8>,
) -> Option<End> {
    loop {
        let pending = buf.len() - *start;
        if *skip > 0 {
            let n = pending.min(usize::try_from(*skip).unwrap_or(usize::MAX));
            *start += n;
            *skip -= n as u64;
            if *skip > 0 {
                return None;
            }
        }
        match parse(&buf[*start..], max_head) {
            Parsed::Incomplete => return None,
            Parsed::Error(status) => {
                write_error(status, out);
                return Some(End::Close);
            }
            Parsed::Request(head, used) => {
                *start += used;
                if !respond(&head, answer, out) {
                    return Some(End::Close);
                }
                *skip = head.content_length;
            }
        }
    }
}

/// Append the answer to one request; false when the connection closes.
fn respond(head: &Head, answer: &Answer, out: &mut Vec<u8>) -> bool {
    if head.method == Method::Other {
        write_error(METHOD_NOT_ALLOWED, out);
        return false;
    }
    answer.write(head, out);
    head.keep_alive
}

/// Resets, broken pipes and timeouts just end the conversation.
fn peer_gone(e: io::Error) -> io::Result<End> {
    match e.kind() {
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::WouldBlock
        | ErrorKind::TimedOut => Ok(End::Peer),
        _ => Err(e),
    }
}
