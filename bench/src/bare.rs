//! Bare echo servers: the practical limit each dispatch model reaches on
//! this machine, with nothing but the system calls the model needs.
//!
//! `sync` serves each request inline; `thread` starts a thread per request;
//! `fork` forks a child per request (SIGCHLD ignored, so the kernel reaps
//! and no zombie outlives the server).
//! With `workers > 1` that many processes share the listening socket, each
//! running the model, as sockhostd's `workers` does. Stream requests echo
//! until the client closes; datagram requests answer one datagram.
//! Promises: blocking sockets, one reused buffer where the model allows it,
//! no logging, no allocation per request beyond what the model itself
//! needs (a thread's stack, a process); the process runs until killed.
//! This is a measuring stick, not a server to deploy: it has no limits.

use crate::target::Target;
use std::io::{self, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixListener};

/// Dispatch model of a bare server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Model {
    Sync,
    Thread,
    Fork,
}

/// Bytes per read: the same order as a plugin's buffer, small enough that
/// a fresh thread or child touches few stack pages.
const CHUNK: usize = 4 * 1024;

/// A bound listening endpoint.
enum Endpoint {
    Tcp(TcpListener),
    Unix(UnixListener),
    Udp(UdpSocket),
    UnixGram(UnixDatagram),
}

/// Bind `target`, fork `workers - 1` more processes, and serve forever.
pub fn serve(target: &Target, model: Model, workers: usize) -> io::Result<()> {
    let ep = bind(target)?;
    if model == Model::Fork {
        // SAFETY: ignoring SIGCHLD has no memory-safety preconditions; it
        // makes the kernel reap exited children.
        unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    }
    for _ in 1..workers.max(1) {
        // SAFETY: nothing else runs yet in this process (single-threaded),
        // so the child inherits no held lock; it serves and never returns.
        match unsafe { libc::fork() } {
            0 => break,
            n if n < 0 => return Err(io::Error::last_os_error()),
            _ => {}
        }
    }
    println!("ready");
    match ep {
        Endpoint::Tcp(l) => loop {
            let (s, _) = l.accept()?;
            dispatch(model, l.as_raw_fd(), move || echo_stream(s));
        },
        Endpoint::Unix(l) => loop {
            let (s, _) = l.accept()?;
            dispatch(model, l.as_raw_fd(), move || echo_stream(s));
        },
        Endpoint::Udp(s) => serve_udp(s, model),
        Endpoint::UnixGram(s) => serve_unixgram(s, model),
    }
}

fn bind(t: &Target) -> io::Result<Endpoint> {
    Ok(match t {
        Target::Tcp(sa) => Endpoint::Tcp(TcpListener::bind(sa)?),
        Target::Udp(sa) => Endpoint::Udp(UdpSocket::bind(sa)?),
        Target::Unix(p) => {
            let _ = std::fs::remove_file(p);
            Endpoint::Unix(UnixListener::bind(p)?)
        }
        Target::UnixGram(p) => {
            let _ = std::fs::remove_file(p);
            Endpoint::UnixGram(UnixDatagram::bind(p)?)
        }
    })
}

/// Run `work` as the model says. `listener` is closed in a forked child.
fn dispatch(model: Model, listener: i32, work: impl FnOnce() + Send + 'static) {
    match model {
        Model::Sync => work(),
        Model::Thread => {
            // A failed spawn drops the request: the client sees a close.
            let _ = std::thread::Builder::new().spawn(work);
        }
        // SAFETY: the forking process is single-threaded in fork mode; the
        // child does its one request and leaves with _exit.
        Model::Fork => match unsafe { libc::fork() } {
            0 => {
                // SAFETY: the child's copy of the listening fd is unused.
                unsafe { libc::close(listener) };
                work();
                // SAFETY: end the child without returning into the loop.
                unsafe { libc::_exit(0) }
            }
            // The parent drops its copy of the request when `work` drops.
            _ => drop(work),
        },
    }
}

/// Echo a stream until the peer closes it (or fails).
fn echo_stream<S: Read + Write>(mut s: S) {
    let mut buf = [0u8; CHUNK];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 || s.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

fn serve_udp(s: UdpSocket, model: Model) -> io::Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer) = s.recv_from(&mut buf)?;
        if model == Model::Sync {
            let _ = s.send_to(&buf[..n], peer);
            continue;
        }
        let (reply, data) = (s.try_clone()?, buf[..n].to_vec());
        dispatch(model, -1, move || {
            let _ = reply.send_to(&data, peer);
        });
    }
}

fn serve_unixgram(s: UnixDatagram, model: Model) -> io::Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer) = s.recv_from(&mut buf)?;
        let Some(path) = peer.as_pathname().map(|p| p.to_path_buf()) else {
            continue; // an unnamed client cannot be answered
        };
        if model == Model::Sync {
            let _ = s.send_to(&buf[..n], &path);
            continue;
        }
        let (reply, data) = (s.try_clone()?, buf[..n].to_vec());
        dispatch(model, -1, move || {
            let _ = reply.send_to(&data, &path);
        });
    }
}
