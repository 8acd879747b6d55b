//! The classic daemon, without systemd: `--daemonize` lets go of the
//! caller's stdio once ready (a caller reading its output to end-of-file
//! returns while the daemon serves).

mod common;
use common::life::{exited, wait_until};
use common::*;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;

fn probe(name: &str, path: &Path, mixin: &str) -> String {
    let so = plugin("sockhost_probe");
    let address = path.display().to_string();
    listener(name, "unix", "stream", &address, mixin, &so, "")
}

/// Kills a daemon (and its worker groups) if the test ends before it does.
struct Guard(i32);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0 <= 0 || exited(self.0) {
            return;
        }
        for w in child_pids(self.0) {
            // SAFETY: killing the worker groups of a daemon this test started.
            unsafe { libc::kill(-w, libc::SIGKILL) };
        }
        // SAFETY: killing the daemon this test started.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

fn stop(pid: i32) {
    // SAFETY: signalling the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(wait_until(DEADLINE, || exited(pid)), "SIGTERM stops {pid}");
}

fn stdio_targets(pid: i32) -> Vec<String> {
    (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|e| format!("unreadable: {e}"))
        })
        .collect()
}

// `out=$(sockhostd --daemonize ...)` returns: once ready no process of the daemon holds the caller's pipes.
#[test]
fn daemonize_lets_go_of_the_callers_stdout_and_stderr() {
    let dir = TestDir::new("classic-stdio");
    let (threads, forks) = (dir.join("t.sock"), dir.join("f.sock"));
    let mut cfg = probe("threads", &threads, "thread");
    cfg.push_str(&probe("forks", &forks, "fork"));
    let cfg = dir.write("sockhost.toml", &cfg);
    let pid_file = dir.join("sockhostd.pid");
    let mut child = Command::new(sockhostd())
        .arg("--daemonize")
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("-c")
        .arg(&cfg)
        .args(["--log", "stderr"])
        .env("SOCKHOST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let (tx, rx) = mpsc::channel();
    // Read both pipes to end-of-file, as `$(...)` or ssh would.
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut text);
        }
        let mut e = String::new();
        if let Some(r) = err.as_mut() {
            let _ = r.read_to_string(&mut e);
        }
        let _ = tx.send((text, e));
    });
    let status = child.wait().expect("wait");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    let _guard = Guard(pid);
    let (stdout, stderr) = rx
        .recv_timeout(DEADLINE)
        .expect("the caller's pipes reach end-of-file while the daemon runs");
    assert!(status.success(), "{stderr}");
    assert!(pid > 0, "pid file written");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(" ready: "),
        "start-up lines still reach the caller: {stderr}"
    );
    assert!(!exited(pid), "the daemon keeps serving");
    for sock in [&threads, &forks] {
        let mut p = Probe::connect(&sock.display().to_string());
        assert_eq!(p.cmd("PING"), "PONG");
    }
    let workers = child_pids(pid);
    assert_eq!(workers.len(), 2, "one worker per listener");
    for p in std::iter::once(pid).chain(workers) {
        assert_eq!(stdio_targets(p), ["/dev/null"; 3], "stdio of {p}");
    }
    stop(pid);
}
