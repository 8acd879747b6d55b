//! One `poll(2)` wrapper shared by every loop: wait until one of a few fds
//! is readable, a timeout passes, or a signal interrupts.
//!
//! [`wait_events`] also waits for writability, for the master's
//! non-blocking clients.
//!
//! Promises: EINTR is not an error (it returns with no fd ready, so the
//! caller re-checks its signal pipe); a `None` timeout waits forever.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// [`wait_readable`] for a fixed set of fds, without allocating: the serve
/// loop calls it once per turn.
pub fn wait_readable_array<const N: usize>(
    fds: [RawFd; N],
    timeout: Option<Duration>,
) -> io::Result<[bool; N]> {
    let mut pfds = fds.map(pollfd);
    poll(&mut pfds, timeout)?;
    Ok(pfds.map(readable))
}

/// Readiness of the fds passed to [`wait_readable`], in the same order.
pub fn wait_readable(fds: &[RawFd], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds.iter().copied().map(pollfd).collect();
    poll(&mut pfds, timeout)?;
    Ok(pfds.into_iter().map(readable).collect())
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Readable, or hung up / in error (the caller's read then says which).
fn readable(p: libc::pollfd) -> bool {
    p.fd >= 0 && p.revents != 0
}

/// poll(2) on `pfds`; EINTR returns with every `revents` zero.
fn poll(pfds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<()> {
    // SAFETY: pfds is a live, correctly sized array of pollfd.
    let n = unsafe {
        libc::poll(
            pfds.as_mut_ptr(),
            pfds.len() as libc::nfds_t,
            millis(timeout),
        )
    };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
        pfds.iter_mut().for_each(|p| p.revents = 0);
    }
    Ok(())
}

/// A poll timeout in milliseconds: -1 for none, rounded up so a 0.4 ms
/// deadline does not spin at 0 ms.
fn millis(timeout: Option<Duration>) -> i32 {
    match timeout {
        None => -1,
        Some(d) => d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
    }
}

/// What a caller of [`wait_events`] waits for on one fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    Read,
    Write,
}

/// Wait until one of `fds` is ready for what it is paired with (or hung
/// up, or in error), `timeout` passes, or a signal interrupts. Readiness
/// comes back in the same order.
pub fn wait_events(fds: &[(RawFd, Interest)], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, interest)| libc::pollfd {
            fd,
            events: match interest {
                Interest::Read => libc::POLLIN,
                Interest::Write => libc::POLLOUT,
            },
            revents: 0,
        })
        .collect();
    poll(&mut pfds, timeout)?;
    Ok(pfds.into_iter().map(readable).collect())
}
