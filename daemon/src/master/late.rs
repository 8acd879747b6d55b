//! What a serving worker reports after READY on its control socket:
//! `DEPENDS_ID dev ino size mtime_ns path` lines (or `DEPENDS path` for a
//! file that did not exist), for files its plugin named with `depends_on`
//! while serving (a Python module first imported inside a handler), with
//! the identity the worker saw when it named them (an edit made before
//! this line is read still counts). The master adds them to the
//! listener's recorded dependencies, so a reload after editing one
//! restarts the listener.
//!
//! Promises: never blocks (the control socket is non-blocking), reads at
//! most what is there on each wake-up, stops polling a socket at EOF, and
//! ignores any other line (a worker has nothing else to say after READY).

use super::spawn::Worker;
use super::Master;
use crate::plugin::FileId;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;

/// A serving worker's control socket as the master reads it after GO.
#[derive(Debug, Default)]
pub struct Late {
    /// An incomplete last line.
    buf: Vec<u8>,
    /// The worker closed it (it is exiting): no longer polled.
    eof: bool,
}

/// At most this much is read from one worker per wake-up.
const PER_WAKE: usize = 64 * 1024;

/// One late line: the path and the identity the worker saw.
fn parse_line(line: &str) -> Option<(PathBuf, Option<FileId>)> {
    if let Some(path) = line.strip_prefix("DEPENDS ") {
        return path.starts_with('/').then(|| (PathBuf::from(path), None));
    }
    let rest = line.strip_prefix("DEPENDS_ID ")?;
    let words: Vec<&str> = rest.splitn(5, ' ').collect();
    let (path, id) = words.split_last()?;
    let id = FileId::from_words(id)?;
    path.starts_with('/')
        .then(|| (PathBuf::from(*path), Some(id)))
}

/// Read what `w` sent; return the complete lines' files.
fn read_late(w: &mut Worker) -> Vec<(PathBuf, Option<FileId>)> {
    let mut chunk = [0u8; 4096];
    let mut taken = 0;
    while taken < PER_WAKE {
        match (&w.ctrl).read(&mut chunk) {
            Ok(0) => {
                w.late.eof = true;
                break;
            }
            Ok(n) => {
                taken += n;
                w.late.buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => {
                w.late.eof = true;
                break;
            }
        }
    }
    let Some(end) = w.late.buf.iter().rposition(|&b| b == b'\n') else {
        return Vec::new();
    };
    let whole: Vec<u8> = w.late.buf.drain(..=end).collect();
    String::from_utf8_lossy(&whole)
        .lines()
        .filter_map(parse_line)
        .collect()
}

impl Master {
    /// Control sockets of serving workers still open.
    pub(super) fn late_fds(&self) -> Vec<RawFd> {
        self.workers
            .iter()
            .filter(|w| !w.late.eof)
            .map(|w| w.ctrl.as_raw_fd())
            .collect()
    }

    /// `fd` (a serving worker's control socket) is readable.
    pub(super) fn late_readable(&mut self, fd: RawFd) {
        let Some(w) = self.workers.iter_mut().find(|w| w.ctrl.as_raw_fd() == fd) else {
            return;
        };
        let paths = read_late(w);
        // A draining worker runs the old generation's code: what it now
        // depends on is not the listener's current set.
        if paths.is_empty() || w.draining {
            return;
        }
        let listener = w.listener.clone();
        let depends = self.depends.entry(listener.clone()).or_default();
        for (path, id) in paths {
            tracing::debug!(listener = %listener, "now also depends on {}", path.display());
            depends.add(path, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_lines_parse() {
        assert_eq!(
            parse_line("DEPENDS /srv/a b.py"),
            Some(("/srv/a b.py".into(), None))
        );
        let (path, id) = parse_line("DEPENDS_ID 1 2 3 - /srv/x y.py").expect("parses");
        assert_eq!(path, PathBuf::from("/srv/x y.py"));
        assert_eq!(id, FileId::from_words(&["1", "2", "3", "-"]));
        assert_eq!(parse_line("DEPENDS relative.py"), None);
        assert_eq!(parse_line("DEPENDS_ID 1 2 /srv/x.py"), None);
        assert_eq!(parse_line("READY"), None);
    }
}
