//! A notify socket the test owns, standing in for the service manager's
//! `NOTIFY_SOCKET`: the daemon's READY/RELOADING/STOPPING/WATCHDOG
//! messages arrive here in order.

use super::{TestDir, DEADLINE};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Messages arriving on a notify socket the test owns.
pub struct NotifySocket {
    pub sock: UnixDatagram,
    pub path: std::path::PathBuf,
}

impl NotifySocket {
    pub fn new(dir: &TestDir) -> NotifySocket {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        NotifySocket { sock, path }
    }

    /// The next message that contains `needle`, skipping others (which are
    /// returned too, in order, for order checks).
    pub fn until(&self, needle: &str) -> (String, Vec<String>) {
        let start = Instant::now();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while start.elapsed() < DEADLINE {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if msg.contains(needle) {
                    return (msg, seen);
                }
                seen.push(msg);
            }
        }
        panic!("no notify message with {needle} within the deadline; saw {seen:?}");
    }
}

impl NotifySocket {
    /// Every message that arrives within `within`, with when it came.
    pub fn collect(&self, within: Duration) -> Vec<(Instant, String)> {
        let start = Instant::now();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while start.elapsed() < within {
            if let Ok(n) = self.sock.recv(&mut buf) {
                seen.push((
                    Instant::now(),
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                ));
            }
        }
        seen
    }
}
