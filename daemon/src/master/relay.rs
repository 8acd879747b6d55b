//! The log relay: output that is not ours (a program's stderr, later a
//! Python handler's `sys.stdout`/`sys.stderr`) turned into log records
//! that carry the listener and the writer's pid.
//!
//! One relay per worker: a unix stream socket pair. The worker gets the
//! write end (ABI 1.2 `sockhost_listener.log_fd`) and hands it on as fd 2
//! to what it runs; every process holding it may write. The master keeps
//! the read end, non-blocking, in its one poll loop, with `SO_PASSCRED` set
//! before anyone can write: the kernel then attaches the writer's
//! credentials to each write and never merges the bytes of two writers
//! into one read, so each chunk comes with its writer's pid for free (a
//! pipe would need one pipe per program to know that; SCM_CREDENTIALS on a
//! datagram socket would fail writes bigger than the socket buffer). A
//! stream socket behaves like the pipe programs expect (any write size,
//! back-pressure when full).
//!
//! Promises: a wake-up reads at most [`READS_PER_WAKE`] chunks per relay, so
//! a chatty program cannot hold the master; the master never blocks on it
//! (a full relay blocks the writer, not us); a line longer than
//! [`MAX_LINE`] bytes is split; bytes that are not UTF-8 and control
//! characters are escaped; a line starting with an sd-daemon `<N>` prefix
//! is logged at that priority (0-3 error, 4 warn, 5-6 info, 7 debug),
//! others at info; a partial line is kept per writer until its newline
//! comes, [`PARTIAL_WAIT`] passes without more from that writer (it may
//! have exited: its last line had no newline), [`MAX_PARTIAL`] writers
//! have one, or the relay ends. The relay ends (`readable` returns false) once every writer is
//! gone. Records: message = the line; fields `listener` and `syslog_pid`
//! (journald: LISTENER, SYSLOG_PID, so `journalctl` shows the writer's pid).

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, UnixAddr};
use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The longest line logged as one record; longer ones are split.
pub const MAX_LINE: usize = 4096;
/// Chunks read per relay per wake-up of the master.
pub const READS_PER_WAKE: usize = 16;
/// Writers with a partial line kept at once; past it they are flushed.
const MAX_PARTIAL: usize = 64;
/// How long a partial line waits for the rest before it is logged as is.
pub const PARTIAL_WAIT: Duration = Duration::from_millis(500);

/// The master's end of one worker's relay.
#[derive(Debug)]
pub struct Relay {
    listener: String,
    sock: UnixStream,
    /// Per writer pid: bytes of a line not yet ended, and when they came.
    partial: HashMap<i32, (Vec<u8>, Instant)>,
}

/// A relay for `listener`'s worker: the master's end, and the write end
/// for the worker (CLOEXEC: the worker dup2s it where it is needed).
pub fn pair(listener: &str) -> io::Result<(Relay, OwnedFd)> {
    let (read, write) = UnixStream::pair()?;
    setsockopt(&read, sockopt::PassCred, &true).map_err(io::Error::from)?;
    read.set_nonblocking(true)?;
    let _ = read.shutdown(std::net::Shutdown::Write);
    let _ = write.shutdown(std::net::Shutdown::Read);
    let relay = Relay {
        listener: listener.to_string(),
        sock: read,
        partial: HashMap::new(),
    };
    Ok((relay, OwnedFd::from(write)))
}

impl Relay {
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Read what is there (bounded) and log every complete line. False
    /// once every writer closed its end: drop the relay.
    pub fn readable(&mut self) -> bool {
        let mut buf = [0u8; MAX_LINE];
        for _ in 0..READS_PER_WAKE {
            match self.read_chunk(&mut buf) {
                Ok(Some((0, _))) => {
                    self.flush_all();
                    return false;
                }
                Ok(Some((n, pid))) => self.take(pid, &buf[..n]),
                Ok(None) => return true,
                Err(e) => {
                    tracing::warn!(listener = %self.listener, "log relay: {e}; closed");
                    self.flush_all();
                    return false;
                }
            }
        }
        true
    }

    /// One chunk and its writer's pid (0 when the kernel gave none);
    /// None when nothing is waiting.
    fn read_chunk(&self, buf: &mut [u8]) -> io::Result<Option<(usize, i32)>> {
        let mut iov = [IoSliceMut::new(buf)];
        let mut space = nix::cmsg_space!(libc::ucred);
        let msg = match recvmsg::<UnixAddr>(
            self.sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut pid = 0;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmCredentials(cred) = c {
                    pid = cred.pid();
                }
            }
        }
        Ok(Some((msg.bytes, pid)))
    }

    /// Bytes from `pid`: log its complete lines, keep the rest.
    fn take(&mut self, pid: i32, bytes: &[u8]) {
        if !self.partial.contains_key(&pid) && self.partial.len() >= MAX_PARTIAL {
            self.flush_all();
        }
        let mut pending = self.partial.remove(&pid).map(|p| p.0).unwrap_or_default();
        pending.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(nl) = pending[start..].iter().position(|&b| b == b'\n') {
            emit(&self.listener, pid, &pending[start..start + nl]);
            start += nl + 1;
        }
        while pending.len() - start >= MAX_LINE {
            emit(&self.listener, pid, &pending[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        if start < pending.len() {
            pending.drain(..start);
            self.partial.insert(pid, (pending, Instant::now()));
        }
    }

    fn flush_all(&mut self) {
        for (pid, (line, _)) in std::mem::take(&mut self.partial) {
            emit(&self.listener, pid, &line);
        }
    }

    /// When the oldest partial line is due to be logged as it is.
    pub fn due(&self) -> Option<Instant> {
        self.partial
            .values()
            .map(|(_, at)| *at + PARTIAL_WAIT)
            .min()
    }

    /// Log the partial lines that waited [`PARTIAL_WAIT`].
    pub fn tick(&mut self, now: Instant) {
        let listener = &self.listener;
        self.partial.retain(|pid, (line, at)| {
            let keep = now < *at + PARTIAL_WAIT;
            if !keep {
                emit(listener, *pid, line);
            }
            keep
        });
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.flush_all();
    }
}

/// The level an sd-daemon `<N>` prefix names, and the line without it.
pub fn priority(line: &[u8]) -> (tracing::Level, &[u8]) {
    match line {
        [b'<', d @ b'0'..=b'7', b'>', rest @ ..] => {
            let level = match d {
                b'0'..=b'3' => tracing::Level::ERROR,
                b'4' => tracing::Level::WARN,
                b'7' => tracing::Level::DEBUG,
                _ => tracing::Level::INFO,
            };
            (level, rest)
        }
        _ => (tracing::Level::INFO, line),
    }
}

/// The line as safe text: invalid UTF-8 replaced, control characters
/// (but tab) written as `\xNN`, a trailing CR dropped.
pub fn safe_text(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut out = String::with_capacity(line.len());
    for c in String::from_utf8_lossy(line).chars() {
        if c.is_control() && c != '\t' {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn emit(listener: &str, pid: i32, line: &[u8]) {
    let (level, rest) = priority(line);
    let text = safe_text(rest);
    match level {
        tracing::Level::ERROR => tracing::error!(listener = %listener, syslog_pid = pid, "{text}"),
        tracing::Level::WARN => tracing::warn!(listener = %listener, syslog_pid = pid, "{text}"),
        tracing::Level::DEBUG => tracing::debug!(listener = %listener, syslog_pid = pid, "{text}"),
        _ => tracing::info!(listener = %listener, syslog_pid = pid, "{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd_daemon_prefixes_pick_the_level() {
        assert_eq!(priority(b"<3>boom"), (tracing::Level::ERROR, &b"boom"[..]));
        assert_eq!(priority(b"<4>hm"), (tracing::Level::WARN, &b"hm"[..]));
        assert_eq!(priority(b"<6>ok"), (tracing::Level::INFO, &b"ok"[..]));
        assert_eq!(priority(b"<7>dbg"), (tracing::Level::DEBUG, &b"dbg"[..]));
        assert_eq!(priority(b"<9>x"), (tracing::Level::INFO, &b"<9>x"[..]));
        assert_eq!(priority(b"plain"), (tracing::Level::INFO, &b"plain"[..]));
    }

    #[test]
    fn binary_junk_is_escaped() {
        assert_eq!(safe_text(b"a\x1b[31mb\r"), "a\\x1b[31mb");
        assert_eq!(safe_text(b"\xff\tok"), "\u{fffd}\tok");
    }

    #[test]
    fn a_writer_s_pid_comes_with_its_bytes() {
        use std::io::Write;
        let (mut relay, write) = pair("t").expect("pair");
        let mut w = UnixStream::from(write);
        w.write_all(b"one\ntw").expect("write");
        let mut buf = [0u8; MAX_LINE];
        let (n, pid) = relay.read_chunk(&mut buf).expect("read").expect("data");
        assert_eq!(&buf[..n], b"one\ntw");
        assert_eq!(pid, std::process::id() as i32);
        relay.take(pid, &buf[..n]);
        assert_eq!(
            relay.partial.get(&pid).map(|p| p.0.as_slice()),
            Some(&b"tw"[..])
        );
        assert!(relay.due().is_some());
        relay.tick(Instant::now() + PARTIAL_WAIT);
        assert!(relay.partial.is_empty() && relay.due().is_none());
        w.write_all(b"three").expect("write");
        assert!(relay.readable());
        drop(w);
        assert!(!relay.readable(), "end of file once the writer is gone");
        assert!(relay.partial.is_empty(), "flushed at the end");
    }
}
