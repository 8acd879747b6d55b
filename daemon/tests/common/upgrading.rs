//! Helpers for the binary-upgrade suites (upgrade.rs, upgrade_counts.rs):
//! a copy of sockhostd in the test's folder that can be replaced the way a
//! package manager does, a daemon started from it, continuous echo load,
//! and finding and reaping the new daemon an upgrade started.

use super::{child_pids, listener, plugin, sockhostd, Daemon, TestDir, DEADLINE};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Put `bytes` at `path` as an executable, the way a package manager
/// replaces a binary: a new file renamed over the old.
pub fn install_binary(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, bytes).expect("write binary");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::rename(&tmp, path).expect("rename binary");
}

pub fn real_binary() -> Vec<u8> {
    std::fs::read(sockhostd()).expect("read sockhostd")
}

/// A copy of sockhostd in the test dir, and the daemon started from it.
pub fn start_copy(dir: TestDir, extra_daemon: &str) -> (Daemon, PathBuf) {
    start_copy_env(dir, extra_daemon, &[])
}

pub fn start_copy_env(
    dir: TestDir,
    extra_daemon: &str,
    env: &[(&str, &Path)],
) -> (Daemon, PathBuf) {
    let bin = dir.join("sockhostd");
    install_binary(&bin, &real_binary());
    let cfg = format!(
        "[daemon]\nshutdown_timeout = 2\ncontrol_socket = \"ctl.sock\"\nmetrics = \"127.0.0.1:0\"\n{extra_daemon}\n{}{}",
        listener(
            "echo",
            "inet",
            "stream",
            "127.0.0.1:0",
            "thread",
            &plugin("sockhost_echo"),
            ""
        ),
        listener(
            "probe",
            "unix",
            "stream",
            "probe.sock",
            "fork",
            &plugin("sockhost_probe"),
            ""
        ),
    );
    let path = dir.write("sockhost.toml", &cfg);
    let mut cmd = Command::new(&bin);
    cmd.arg("-c").arg(&path).args(["--log", "stderr"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let d = Daemon::try_start_cmd(dir, path, cmd).unwrap_or_else(|f| panic!("{}", f.log));
    (d, bin)
}

/// The inode of the socket listening on TCP `port` (from /proc/net/tcp).
pub fn listen_inode(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let want = format!(":{port:04X}");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 9 && f[1].ends_with(&want) && f[3] == "0A").then(|| f[9].to_string())
    })
}

/// New connection per request, until stopped: (answered, failures).
pub struct Load {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(u64, Vec<String>)>,
}

impl Load {
    pub fn start(port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let (mut ok, mut failures) = (0u64, Vec::new());
            let t0 = Instant::now();
            while !flag.load(Ordering::Relaxed) && t0.elapsed() < DEADLINE {
                match echo_once(port) {
                    Ok(()) => ok += 1,
                    Err(e) => failures.push(e),
                }
            }
            (ok, failures)
        });
        Load { stop, thread }
    }

    pub fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("load thread")
    }
}

pub fn echo_once(port: u16) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"ping\n").map_err(|e| format!("write: {e}"))?;
    s.shutdown(std::net::Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    let mut got = Vec::new();
    s.read_to_end(&mut got).map_err(|e| format!("read: {e}"))?;
    if got == b"ping\n" {
        Ok(())
    } else {
        Err(format!("answered {got:?}"))
    }
}

/// Kills a process this test does not own as a child (the new daemon),
/// and its workers, when dropped.
pub struct Reap(pub i32);

impl Drop for Reap {
    fn drop(&mut self) {
        for w in child_pids(self.0) {
            // SAFETY: killing the worker groups of the daemon we started.
            unsafe { libc::kill(-w, libc::SIGKILL) };
        }
        // SAFETY: as above.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

pub fn handed_over_to(d: &Daemon) -> i32 {
    assert!(
        d.wait_log("handed over to pid ", DEADLINE),
        "no hand-over:\n{}",
        d.log()
    );
    let log = d.log();
    let rest = log
        .split("handed over to pid ")
        .nth(1)
        .expect("hand-over line");
    rest.split(';')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .expect("new pid")
}
