//! The systemd journal for the tests that read log fields back: a
//! systemd-journald started for the test when none runs (stopped when the
//! handle drops), and `journalctl -o json` entries matching a field.

use super::{tool_or_skip, DEADLINE};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether systemd-journald and journalctl are there (else SKIPPED, or a
/// failure under SOCKHOST_REQUIRE_SYSTEMD=1).
pub fn have_journal() -> bool {
    ["/lib/systemd/systemd-journald", "journalctl"]
        .iter()
        .all(|t| tool_or_skip(t, "systemd", "SOCKHOST_REQUIRE_SYSTEMD"))
}

/// systemd-journald, started for the test when none runs.
pub struct Journal(Option<Child>);

impl Journal {
    pub fn ensure() -> Journal {
        let sock = Path::new("/run/systemd/journal/socket");
        let up = || {
            UnixDatagram::unbound()
                .and_then(|s| s.connect(sock))
                .is_ok()
        };
        if up() {
            return Journal(None);
        }
        let child = Command::new("/lib/systemd/systemd-journald")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start systemd-journald");
        let journal = Journal(Some(child));
        let start = Instant::now();
        while !up() {
            assert!(start.elapsed() < DEADLINE, "journald did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        journal
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The journal's entries matching `field_match` (`FIELD=value`), one
/// JSON object per entry.
pub fn journal_entries(field_match: &str) -> Vec<String> {
    let out = Command::new("journalctl")
        .args(["-o", "json", "--no-pager", "--all", field_match])
        .output()
        .expect("journalctl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}
