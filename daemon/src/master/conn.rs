//! The master's non-blocking clients: a listening socket and the
//! connections accepted on it, each read, answered and closed in steps of
//! the master's one poll loop (the metrics endpoint and the control socket
//! are built on it).
//!
//! Promises: nothing here blocks: every socket is non-blocking and is read
//! or written only after poll said so; a request is at most `max_request`
//! bytes (more closes the connection); a connection lives at most
//! `timeout` while it is being read or written (a client that sends
//! nothing, or reads nothing, is closed then); at most `max_clients` are
//! open at once, so a flood cannot fill the master's descriptor table: a
//! new connection beyond that takes the place of the oldest one still
//! sending its request (idle clients cannot lock others out), or is closed
//! at once when every open one is past that. A
//! connection parked waiting for something the master does (a reload) has
//! no deadline and is not polled.

use crate::os::poll::Interest;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// A listening socket the endpoint can take connections from.
pub trait Accept: AsRawFd {
    type Stream: Read + Write + AsRawFd;
    /// One waiting connection, already non-blocking.
    fn accept_one(&self) -> io::Result<Self::Stream>;
}

impl Accept for std::net::TcpListener {
    type Stream = std::net::TcpStream;
    fn accept_one(&self) -> io::Result<Self::Stream> {
        let (s, _) = self.accept()?;
        s.set_nonblocking(true)?;
        Ok(s)
    }
}

impl Accept for std::os::unix::net::UnixListener {
    type Stream = std::os::unix::net::UnixStream;
    fn accept_one(&self) -> io::Result<Self::Stream> {
        let (s, _) = self.accept()?;
        s.set_nonblocking(true)?;
        Ok(s)
    }
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading the request until the protocol says it is whole.
    Reading,
    /// The request is whole and waits for the master (not polled).
    Parked,
    /// Writing the answer; closed when all of it is out.
    Writing,
    /// Done: dropped at the next turn.
    Closed,
}

/// One accepted connection.
pub struct Conn<S> {
    pub sock: S,
    pub id: u64,
    pub input: Vec<u8>,
    pub phase: Phase,
    output: Vec<u8>,
    sent: usize,
    deadline: Option<Instant>,
    /// Whether the last `poll_fds` listed it (its place in `ready`).
    polled: bool,
}

/// The limits of an endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_request: usize,
    pub timeout: Duration,
    pub max_clients: usize,
}

/// A listening socket and its open connections.
pub struct Endpoint<L: Accept> {
    /// False once a binary upgrade handed the listener over.
    accepting: bool,
    pub listener: L,
    pub conns: Vec<Conn<L::Stream>>,
    limits: Limits,
    next_id: u64,
    refused: u64,
}

impl<S: Read + Write + AsRawFd> Conn<S> {
    /// Queue `answer` and start writing it (within the timeout).
    pub fn answer(&mut self, answer: Vec<u8>, timeout: Duration) {
        self.output = answer;
        self.sent = 0;
        self.phase = Phase::Writing;
        self.deadline = Some(Instant::now() + timeout);
    }

    /// Let go of the fd now (the peer sees EOF); the record goes later.
    fn sock_shutdown(&mut self) {
        // SAFETY: shutdown on our own connected socket; no memory involved.
        unsafe { libc::shutdown(self.sock.as_raw_fd(), libc::SHUT_RDWR) };
    }

    /// Park a whole request until the master answers it.
    pub fn park(&mut self) {
        self.phase = Phase::Parked;
        self.deadline = None;
    }

    /// Read what is there. False when the connection should close (EOF
    /// before a whole request, an error, or more than `max` bytes).
    fn read_some(&mut self, max: usize) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.sock.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    if self.input.len() + n > max {
                        return false;
                    }
                    self.input.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }

    /// Write what the socket takes. False once done or failed (close it).
    fn write_some(&mut self) -> bool {
        while self.sent < self.output.len() {
            match self.sock.write(&self.output[self.sent..]) {
                Ok(0) => return false,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        false
    }
}

impl<L: Accept> Endpoint<L> {
    pub fn new(listener: L, limits: Limits) -> Endpoint<L> {
        Endpoint {
            accepting: true,
            listener,
            conns: Vec::new(),
            limits,
            next_id: 0,
            refused: 0,
        }
    }

    /// The fds to poll: the listener, then each connection being read or
    /// written.
    pub fn poll_fds(&mut self, out: &mut Vec<(RawFd, Interest)>) {
        if self.accepting {
            out.push((self.listener.as_raw_fd(), Interest::Read));
        }
        for c in &mut self.conns {
            let interest = match c.phase {
                Phase::Reading => Some(Interest::Read),
                Phase::Writing => Some(Interest::Write),
                Phase::Parked | Phase::Closed => None,
            };
            c.polled = interest.is_some();
            if let Some(i) = interest {
                out.push((c.sock.as_raw_fd(), i));
            }
        }
    }

    /// Every fd this endpoint holds (a forked worker closes them).
    pub fn fds(&self, out: &mut Vec<RawFd>) {
        out.push(self.listener.as_raw_fd());
        out.extend(self.conns.iter().map(|c| c.sock.as_raw_fd()));
    }

    /// Handle readiness, `ready` in the order of the last
    /// [`Endpoint::poll_fds`] (connections answered or accepted since then
    /// are skipped until the next turn). `complete` says whether a
    /// request is whole.
    /// Returns the ids of connections whose request became whole (they are
    /// parked until answered).
    pub fn on_ready(&mut self, ready: &[bool], complete: impl Fn(&[u8]) -> bool) -> Vec<u64> {
        let mut whole = Vec::new();
        let mut it = ready.iter().copied();
        let accept = self.accepting && it.next().unwrap_or(false);
        let max = self.limits.max_request;
        let mut keep = Vec::with_capacity(self.conns.len());
        for mut c in std::mem::take(&mut self.conns) {
            let is_ready = c.polled && it.next().unwrap_or(false);
            c.polled = false;
            let open = match (c.phase, is_ready) {
                (Phase::Closed, _) => false,
                (Phase::Reading, true) => {
                    let open = c.read_some(max);
                    if open && complete(&c.input) {
                        c.park();
                        whole.push(c.id);
                    }
                    open
                }
                (Phase::Writing, true) => c.write_some(),
                _ => true,
            };
            if open {
                keep.push(c);
            }
        }
        self.conns = keep;
        if accept {
            self.accept_all();
        }
        whole
    }

    fn accept_all(&mut self) {
        // Bounded: at most one batch per wake-up, so a flood of connects
        // cannot keep the loop here.
        for _ in 0..64 {
            match self.listener.accept_one() {
                Ok(sock) if self.conns.len() >= self.limits.max_clients && !self.evict() => {
                    self.refused += 1;
                    tracing::debug!(
                        "{} clients open: closed a new one at once ({} so far)",
                        self.limits.max_clients,
                        self.refused
                    );
                    drop(sock);
                }
                Ok(sock) => {
                    self.next_id += 1;
                    self.conns.push(Conn {
                        sock,
                        id: self.next_id,
                        input: Vec::new(),
                        phase: Phase::Reading,
                        output: Vec::new(),
                        sent: 0,
                        deadline: Some(Instant::now() + self.limits.timeout),
                        polled: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return, // WouldBlock, or out of fds: try next turn
            }
        }
    }

    /// Close the oldest connection still sending its request. False when
    /// there is none.
    fn evict(&mut self) -> bool {
        let oldest = self.conns.iter().position(|c| c.phase == Phase::Reading);
        match oldest {
            Some(i) => {
                self.conns.remove(i);
                self.refused += 1;
                true
            }
            None => false,
        }
    }

    /// The listening socket's fd.
    pub fn listener_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// Accept no more clients (those open are still answered): after a
    /// binary upgrade the new daemon accepts on the same socket.
    pub fn stop_accepting(&mut self) {
        self.accepting = false;
    }

    /// Accept clients again (after [`Endpoint::stop_accepting`]).
    pub fn resume_accepting(&mut self) {
        self.accepting = true;
    }

    /// The connection `id`, if still open.
    pub fn conn(&mut self, id: u64) -> Option<&mut Conn<L::Stream>> {
        self.conns.iter_mut().find(|c| c.id == id)
    }

    /// Answer connection `id` (if still open) and start writing at once;
    /// the rest goes out as poll allows.
    pub fn answer(&mut self, id: u64, answer: Vec<u8>) {
        let timeout = self.limits.timeout;
        if let Some(c) = self.conn(id) {
            c.answer(answer, timeout);
            if !c.write_some() {
                c.phase = Phase::Closed;
                c.sock_shutdown();
            }
        }
    }

    /// The earliest deadline of any connection.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().filter_map(|c| c.deadline).min()
    }

    /// Close every connection past its deadline, and those done.
    pub fn expire(&mut self, now: Instant) {
        self.conns
            .retain(|c| c.phase != Phase::Closed && c.deadline.is_none_or(|d| d > now));
    }

    /// Connections closed at once because `max_clients` were open.
    #[cfg(test)]
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixListener, UnixStream};

    fn endpoint(dir: &std::path::Path, max_clients: usize) -> Endpoint<UnixListener> {
        let path = dir.join("e.sock");
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        let limits = Limits {
            max_request: 16,
            timeout: Duration::from_secs(5),
            max_clients,
        };
        Endpoint::new(l, limits)
    }

    fn turn(e: &mut Endpoint<UnixListener>) -> Vec<u64> {
        let mut fds = Vec::new();
        e.poll_fds(&mut fds);
        let ready = crate::os::poll::wait_events(&fds, Some(Duration::from_secs(5))).expect("poll");
        e.on_ready(&ready, |b| b.ends_with(b"\n"))
    }

    #[test]
    fn a_line_is_read_parked_answered_and_the_connection_closed() {
        let dir = std::env::temp_dir().join(format!("sockhost-conn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut e = endpoint(&dir, 1);
        let idle = UnixStream::connect(dir.join("e.sock")).expect("connect");
        turn(&mut e); // accept
        assert_eq!(e.conns.len(), 1);
        let mut client = UnixStream::connect(dir.join("e.sock")).expect("connect");
        client.write_all(b"hi\n").expect("write");
        let mut whole = Vec::new();
        while whole.is_empty() {
            whole = turn(&mut e);
        }
        assert_eq!(e.refused(), 1, "over max_clients: the idle one made room");
        let third = UnixStream::connect(dir.join("e.sock")).expect("connect");
        turn(&mut e);
        assert_eq!(
            e.refused(),
            2,
            "the parked one stays; the new one is closed"
        );
        drop((idle, third));
        let id = whole[0];
        assert_eq!(e.conn(id).map(|c| c.input.clone()), Some(b"hi\n".to_vec()));
        e.answer(id, b"ok\n".to_vec());
        e.expire(Instant::now());
        assert!(e.conns.is_empty(), "written and closed");
        let mut got = String::new();
        client.read_to_string(&mut got).expect("read");
        assert_eq!(got, "ok\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_oversized_request_and_an_expired_one_are_closed() {
        let dir = std::env::temp_dir().join(format!("sockhost-conn2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut e = endpoint(&dir, 4);
        let mut big = UnixStream::connect(dir.join("e.sock")).expect("connect");
        let _idle = UnixStream::connect(dir.join("e.sock")).expect("connect");
        turn(&mut e);
        assert_eq!(e.conns.len(), 2);
        big.write_all(&[b'x'; 64]).expect("write");
        while e.conns.len() == 2 {
            turn(&mut e);
        }
        assert_eq!(e.conns.len(), 1, "the oversized one is closed");
        assert!(e.next_deadline().is_some());
        e.expire(Instant::now() + Duration::from_secs(6));
        assert!(e.conns.is_empty(), "the idle one expires");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
