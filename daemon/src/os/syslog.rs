//! `--log syslog`: one datagram per log line to the local syslog socket,
//! `/dev/log`, with the ident `sockhostd`, the process's pid and facility
//! daemon; the severity follows the line's level (ERROR err, WARN warning,
//! INFO info, DEBUG/TRACE debug).
//!
//! The datagram is what glibc's syslog(3) sends on that socket,
//! `<PRI>Mmm dd hh:mm:ss sockhostd[PID]: TEXT`, written here rather than
//! through openlog/syslog(3) so the socket path can be pointed elsewhere in
//! tests (`SOCKHOST_SYSLOG_SOCKET`, for tests only) and so nothing in the
//! master ever blocks on a slow syslog daemon: the socket is non-blocking,
//! a line that does not fit in its queue is dropped and counted, and the
//! count is reported with the next line that gets through. A syslog daemon
//! that restarted is reconnected to on the next line. Each process (master,
//! worker, request child) uses its own connection, opened lazily after a
//! fork (the pid tells).

use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

/// The local syslog socket.
pub const DEV_LOG: &str = "/dev/log";
/// Facility daemon (3), shifted as in syslog's PRI.
const LOG_DAEMON: u8 = 3 << 3;

static SYSLOG: OnceLock<Syslog> = OnceLock::new();

/// The connection to the syslog socket.
#[derive(Debug)]
pub struct Syslog {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The socket and the pid that connected it (a forked child reconnects).
    sock: Option<(UnixDatagram, u32)>,
    dropped: u64,
}

/// Where syslog lines go: `/dev/log`, or `SOCKHOST_SYSLOG_SOCKET` (tests).
pub fn socket_path() -> PathBuf {
    std::env::var_os("SOCKHOST_SYSLOG_SOCKET")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEV_LOG), PathBuf::from)
}

fn connect(path: &PathBuf) -> io::Result<UnixDatagram> {
    let sock = UnixDatagram::unbound()?;
    sock.connect(path)?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// Connect to the syslog socket: Err when nothing listens there.
pub fn open() -> io::Result<&'static Syslog> {
    let path = socket_path();
    let sock = connect(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot reach syslog at {}: {e}", path.display()),
        )
    })?;
    let state = State {
        sock: Some((sock, std::process::id())),
        dropped: 0,
    };
    let log = Syslog {
        path,
        state: Mutex::new(state),
    };
    SYSLOG
        .set(log)
        .map_err(|_| io::Error::other("syslog is already open"))?;
    SYSLOG
        .get()
        .ok_or_else(|| io::Error::other("syslog is not open"))
}

fn severity(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// `Mmm dd hh:mm:ss` in local time, as syslog(3) writes it.
fn timestamp() -> String {
    // SAFETY: time(NULL) has no preconditions; localtime_r fills the
    // zeroed struct we own; strftime writes at most buf.len() bytes.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return String::new();
        }
        let mut buf = [0u8; 32];
        let n = libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%b %e %H:%M:%S".as_ptr(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// The datagram for one line.
fn datagram(level: Level, pid: u32, dropped: u64, text: &str) -> Vec<u8> {
    let pri = LOG_DAEMON | severity(level);
    let mut out = format!("<{pri}>{} sockhostd[{pid}]: ", timestamp());
    if dropped > 0 {
        out.push_str(&format!("({dropped} log lines dropped before this one) "));
    }
    out.push_str(text.trim());
    out.into_bytes()
}

impl Syslog {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, level: Level, text: &str) {
        let pid = std::process::id();
        let mut st = self.lock();
        for attempt in 0..2 {
            if st.sock.as_ref().is_none_or(|(_, owner)| *owner != pid) {
                st.sock = connect(&self.path).ok().map(|s| (s, pid));
            }
            let Some((sock, _)) = st.sock.as_ref() else {
                break;
            };
            match sock.send(&datagram(level, pid, st.dropped, text)) {
                Ok(_) => {
                    st.dropped = 0;
                    return;
                }
                // The syslog daemon went away or restarted: reconnect once.
                Err(e) if attempt == 0 && is_disconnect(&e) => st.sock = None,
                Err(_) => break,
            }
        }
        st.dropped += 1;
    }
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED | libc::ENOTCONN | libc::ECONNRESET | libc::ENOENT | libc::EPIPE)
    )
}

/// One line on its way: collects the formatted event, sends it on drop.
pub struct LineWriter {
    syslog: &'static Syslog,
    level: Level,
    buf: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let text = String::from_utf8_lossy(&self.buf);
            self.syslog.send(self.level, &text);
        }
    }
}

impl<'a> MakeWriter<'a> for &'static Syslog {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            syslog: self,
            level: Level::INFO,
            buf: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LineWriter {
        LineWriter {
            syslog: self,
            level: *meta.level(),
            buf: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_has_priority_ident_pid_and_the_text_without_newline() {
        let d = String::from_utf8(datagram(Level::WARN, 42, 0, "hello listener=echo\n"))
            .expect("utf-8");
        assert!(d.starts_with("<28>"), "daemon.warning is 3*8+4: {d}");
        assert!(d.ends_with(" sockhostd[42]: hello listener=echo"), "{d}");
        let d = String::from_utf8(datagram(Level::ERROR, 1, 3, "x")).expect("utf-8");
        assert!(d.starts_with("<27>"), "{d}");
        assert!(d.contains("(3 log lines dropped before this one) x"), "{d}");
    }
}
