//! The daemon under test: start the real `sockhostd` on a config, read its
//! log, signal it, stop it; run it to completion for CLI checks. A
//! [`Daemon`] kills the daemon and its workers when dropped.

use super::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running daemon. Dropping it kills the daemon and its workers.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: TestDir,
    pub config: PathBuf,
    log: Arc<Mutex<String>>,
    pub addrs: HashMap<String, String>,
}

/// How a daemon that failed to start ended.
#[derive(Debug)]
pub struct Failed {
    pub status: ExitStatus,
    pub log: String,
}

impl Daemon {
    /// Start on `config` (written to a fresh temp dir); panic if it does not
    /// become ready.
    pub fn start(config: &str) -> Daemon {
        Daemon::try_start(config)
            .unwrap_or_else(|f| panic!("daemon failed to start ({}):\n{}", f.status, f.log))
    }

    pub fn try_start(config: &str) -> Result<Daemon, Failed> {
        let dir = TestDir::new("d");
        let path = dir.write("sockhost.toml", config);
        Daemon::try_start_in(dir, path, &[])
    }

    /// Start on an existing config file inside `dir`, with extra args.
    pub fn try_start_in(dir: TestDir, config: PathBuf, args: &[&str]) -> Result<Daemon, Failed> {
        let mut cmd = Command::new(sockhostd());
        cmd.arg("-c")
            .arg(&config)
            .args(args)
            .arg("--log")
            .arg("stderr");
        Daemon::try_start_cmd(dir, config, cmd)
    }

    /// Start from a prepared command (a wrapper such as
    /// systemd-socket-activate, extra environment); stdio and the log
    /// filter are set here.
    pub fn try_start_cmd(
        dir: TestDir,
        config: PathBuf,
        mut cmd: Command,
    ) -> Result<Daemon, Failed> {
        let mut child = cmd
            .env(
                "SOCKHOST_LOG",
                std::env::var("SOCKHOST_TEST_LOG").unwrap_or_else(|_| "debug".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sockhostd");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                }
                line.clear();
            }
        });
        let mut d = Daemon {
            child: Some(child),
            dir,
            config,
            log,
            addrs: HashMap::new(),
        };
        let start = Instant::now();
        loop {
            if let Some(line) = d.log().lines().find(|l| l.contains(" ready: ")) {
                d.addrs = parse_ready(line);
                return Ok(d);
            }
            if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                std::thread::sleep(Duration::from_millis(50)); // let the log drain
                d.child = None;
                return Err(Failed {
                    status,
                    log: d.log(),
                });
            }
            assert!(
                start.elapsed() < DEADLINE,
                "daemon not ready within {DEADLINE:?}:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child
            .as_ref()
            .map(|c| c.id() as i32)
            .expect("daemon running")
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Wait until the log contains `needle` (true) or the deadline passes.
    pub fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < within {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The address listener `name` is bound to, as the daemon logged it.
    pub fn addr(&self, name: &str) -> String {
        self.addrs
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no listener {name} in {:?}", self.addrs))
    }

    pub fn inet(&self, name: &str) -> SocketAddr {
        self.addr(name).parse().expect("inet address")
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// SIGTERM, then wait for exit (SIGKILL at the deadline).
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.signal(libc::SIGTERM);
        let status = self
            .wait_exit(DEADLINE)
            .expect("daemon did not stop within the deadline");
        std::thread::sleep(Duration::from_millis(50));
        (status, self.log())
    }

    /// Wait for the daemon to exit on its own.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id() as i32;
            for w in child_pids(pid) {
                // SAFETY: killing the worker groups our daemon started.
                unsafe { libc::kill(-w, libc::SIGKILL) };
                // SAFETY: as above.
                unsafe { libc::kill(w, libc::SIGKILL) };
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `name=addr (mixin)` pairs from the `ready:` line.
fn parse_ready(line: &str) -> HashMap<String, String> {
    let list = line.split(" ready: ").nth(1).unwrap_or("");
    let list = list.split(" listeners=").next().unwrap_or(list);
    list.split(", ")
        .filter_map(|part| {
            let (name, rest) = part.split_once('=')?;
            let addr = rest.rsplit_once(" (").map_or(rest, |(a, _)| a);
            Some((name.trim().to_string(), addr.trim().to_string()))
        })
        .collect()
}

// ---- clients -----------------------------------------------------------------

/// Run `sockhostd` with `args` to completion (for --check, --help, ...).
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(sockhostd())
        .args(args)
        .env("SOCKHOST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("run sockhostd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
