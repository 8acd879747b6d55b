//! The classic daemon, without systemd: `--daemonize` lets go of the
//! caller's stdio once ready (a caller reading its output to end-of-file
//! returns while the daemon serves), `--log-file` (reopened on SIGUSR1 by
//! the master and, through it, the workers, as logrotate expects) and
//! `--log syslog` (to a socket standing in for /dev/log, named by
//! SOCKHOST_SYSLOG_SOCKET, which is for tests only).

mod common;
use common::life::{exited, wait_until};
use common::*;
use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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

/// A foreground daemon whose log goes elsewhere than stderr: killed with
/// its workers and reaped on drop.
struct Foreground(Child);

impl Foreground {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// SIGTERM, and wait for a clean exit.
    fn stop(mut self) {
        // SAFETY: signalling the daemon this test started.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let status = wait_for(DEADLINE, || self.0.try_wait().ok().flatten());
        assert!(
            status.is_some_and(|s| s.success()),
            "clean stop: {status:?}"
        );
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        drop(Guard(self.pid()));
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_logging(cfg: &Path, args: &[&str], envs: &[(&str, &Path)]) -> Foreground {
    let mut cmd = Command::new(sockhostd());
    cmd.arg("-c")
        .arg(cfg)
        .args(args)
        .env("SOCKHOST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    Foreground(cmd.spawn().expect("spawn sockhostd"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn panic_request(sock: &Path) {
    let mut p = Probe::connect(&sock.display().to_string());
    let _ = p.try_cmd("PANIC");
}

// --log-file appends; after `mv log log.1` and SIGUSR1 the master and the workers write to a new log.
#[test]
fn log_file_is_reopened_on_sigusr1_by_master_and_workers() {
    let dir = TestDir::new("classic-logfile");
    let (threads, forks) = (dir.join("t.sock"), dir.join("f.sock"));
    let mut cfg = probe("threads", &threads, "thread");
    cfg.push_str(&probe("forks", &forks, "fork"));
    let cfg = dir.write("sockhost.toml", &cfg);
    let log: PathBuf = dir.join("sockhostd.log");
    std::fs::write(&log, "an earlier line\n").expect("seed");
    let log_arg = log.display().to_string();
    let d = spawn_logging(&cfg, &["--log-file", &log_arg], &[]);
    let pid = d.pid();
    assert!(
        wait_until(DEADLINE, || read(&log).contains(" ready: ")),
        "{}",
        read(&log)
    );
    assert!(read(&log).starts_with("an earlier line\n"), "appends");
    // A thread worker logs itself; in fork mode the request's child does.
    let panicked = |text: &str, name: &str| {
        let tag = format!("listener={name}");
        text.lines()
            .filter(|l| l.contains("the client asked for PANIC") && l.contains(&tag))
            .count()
    };
    for (name, sock) in [("threads", &threads), ("forks", &forks)] {
        panic_request(sock);
        assert!(
            wait_until(DEADLINE, || panicked(&read(&log), name) == 1),
            "{}",
            read(&log)
        );
    }

    let rotated = dir.join("sockhostd.log.1");
    std::fs::rename(&log, &rotated).expect("mv log log.1");
    // SAFETY: signalling the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    assert!(
        wait_until(DEADLINE, || read(&log).contains("SIGUSR1: reopened")),
        "the master writes to the new file: {}",
        read(&rotated)
    );
    // Each worker reopens before its next line.
    for (name, sock) in [("threads", &threads), ("forks", &forks)] {
        panic_request(sock);
        assert!(
            wait_until(DEADLINE, || panicked(&read(&log), name) == 1),
            "{name} writes to the new file: new {:?}, old {:?}",
            read(&log),
            read(&rotated)
        );
        assert_eq!(
            panicked(&read(&rotated), name),
            1,
            "nothing more in the old file"
        );
    }
    assert_eq!(child_pids(pid).len(), 2, "SIGUSR1 ended no worker");
    d.stop();
    assert!(read(&log).contains("stopped"), "{}", read(&log));
}

// A worker still starting (its plugin's `create` is slow) when the log is
// rotated is told too: once it serves, its lines go to the new file.
#[test]
fn log_file_rotated_while_a_worker_starts_is_reopened_by_that_worker() {
    let dir = TestDir::new("classic-logfile-start");
    let sock = dir.join("slow.sock");
    let so = plugin("sockhost_fixture_slow_create");
    let address = sock.display().to_string();
    let cfg = listener(
        "slow",
        "unix",
        "stream",
        &address,
        "thread",
        &so,
        "[listener.config]\nsleep_ms = 1500\n",
    );
    let cfg = dir.write("sockhost.toml", &cfg);
    let log: PathBuf = dir.join("sockhostd.log");
    let log_arg = log.display().to_string();
    let d = spawn_logging(&cfg, &["--log-file", &log_arg], &[]);
    let pid = d.pid();
    assert!(
        wait_until(DEADLINE, || child_pids(pid).len() == 1),
        "the worker is forked: {}",
        read(&log)
    );
    let rotated = dir.join("sockhostd.log.1");
    std::fs::rename(&log, &rotated).expect("mv log log.1");
    // SAFETY: signalling the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    assert!(
        wait_until(DEADLINE, || read(&log).contains(" ready: ")),
        "the daemon becomes ready, writing to the new file: new {:?}, old {:?}",
        read(&log),
        read(&rotated)
    );
    assert!(!read(&rotated).contains(" ready: "), "{}", read(&rotated));
    d.stop();
    let stopping = |text: &str| {
        text.lines()
            .any(|l| l.contains("listener=slow") && l.contains("stopping: no new requests"))
    };
    assert!(
        stopping(&read(&log)) && !stopping(&read(&rotated)),
        "the worker that was starting writes to the new file: new {:?}, old {:?}",
        read(&log),
        read(&rotated)
    );
}

// --log syslog sends one datagram per line, ident sockhostd[PID], facility daemon, with the listener.
#[test]
fn log_syslog_sends_lines_with_ident_facility_and_listener() {
    let dir = TestDir::new("classic-syslog");
    let sock = dir.join("p.sock");
    let cfg = dir.write("sockhost.toml", &probe("probe", &sock, "thread"));
    let dev_log = dir.join("dev-log");
    let syslog = UnixDatagram::bind(&dev_log).expect("bind the stand-in for /dev/log");
    syslog
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let env = [("SOCKHOST_SYSLOG_SOCKET", dev_log.as_path())];
    let d = spawn_logging(&cfg, &["--log", "syslog"], &env);
    let pid = d.pid();
    let mut seen = Vec::new();
    let mut until = |needle: &str| -> String {
        let found = wait_for(DEADLINE, || {
            let mut buf = [0u8; 8192];
            let n = syslog.recv(&mut buf).ok()?;
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            seen.push(line.clone());
            line.contains(needle).then_some(line)
        });
        found.unwrap_or_else(|| panic!("no syslog line with {needle}: {seen:?}"))
    };
    let ready = until(" ready: ");
    assert!(ready.starts_with("<30>"), "daemon.info: {ready}");
    assert!(
        ready.contains(&format!(" sockhostd[{pid}]: ")),
        "ident and pid: {ready}"
    );
    panic_request(&sock);
    let line = until("the client asked for PANIC");
    assert!(line.starts_with("<27>"), "daemon.err: {line}");
    assert!(line.contains("listener=probe"), "{line}");
    let worker = worker_of(pid, "probe").unwrap_or(0);
    assert!(
        line.contains(&format!(" sockhostd[{worker}]: ")),
        "the worker's own pid: {line}"
    );
    d.stop();
}

// Without a syslog socket, --log syslog is an error (exit 1), never a silent loss.
#[test]
fn log_syslog_without_a_socket_and_conflicting_targets_are_errors() {
    let dir = TestDir::new("classic-nosyslog");
    let cfg = dir.write(
        "sockhost.toml",
        &probe("probe", &dir.join("p.sock"), "sync"),
    );
    let gone = dir.join("no-such-socket");
    let out = Command::new(sockhostd())
        .arg("-c")
        .arg(&cfg)
        .args(["--log", "syslog"])
        .env("SOCKHOST_SYSLOG_SOCKET", &gone)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot reach syslog at"), "{err}");
    let cf = cfg.display().to_string();
    let (code, _, err) = run_cli(&["-c", &cf, "--log", "stderr", "--log-file", "/tmp/x"]);
    assert_eq!(code, 2, "--log and --log-file conflict: {err}");
}
