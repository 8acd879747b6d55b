//! Helpers for the exec plugin suites (exec_*.rs): a listener running a
//! program, scripts written into the test folder, the program's output
//! read back, and processes found by their parent.

#![allow(dead_code)]

use super::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A `[[listener]]` running `command` (TOML array text) through
/// libsockhost_exec.so, with `extra` keys before the config table and
/// `config` lines inside it.
#[allow(clippy::too_many_arguments)] // the listener table's fields, in its order
pub fn exec_listener(
    name: &str,
    family: &str,
    ty: &str,
    address: &str,
    mixin: &str,
    command: &str,
    extra: &str,
    config: &str,
) -> String {
    listener(
        name,
        family,
        ty,
        address,
        mixin,
        &plugin("sockhost_exec"),
        &format!("{extra}\n[listener.config]\ncommand = {command}\n{config}\n"),
    )
}

/// The `command` array (TOML text) running `program` with no arguments.
pub fn argv(program: &Path) -> String {
    format!("[\"{}\"]", program.display())
}

/// An exec listener on loopback TCP, any free port, running `program`
/// with no arguments; `extra` and `config` as for [`exec_listener`].
pub fn tcp_exec(name: &str, mixin: &str, program: &Path, extra: &str, config: &str) -> String {
    exec_listener(
        name,
        "inet",
        "stream",
        "127.0.0.1:0",
        mixin,
        &argv(program),
        extra,
        config,
    )
}

/// An executable shell script `name` in `dir` with `body`.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// `KEY=VALUE` lines as a map.
pub fn env_map(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Connect to `addr`, send `input`, close our side, read all that comes back.
pub fn converse(addr: &str, input: &[u8]) -> String {
    use std::io::Write;
    let mut s = Stream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.write_all(input).expect("send");
    s.shutdown_write();
    let out = s.read_all().expect("read until the program closes");
    String::from_utf8_lossy(&out).into_owned()
}

/// A folder for scripts that outlives the daemon started on it (the
/// daemon's own TestDir holds the config).
pub fn scripts_dir(tag: &str) -> TestDir {
    let d = TestDir::new(tag);
    std::fs::set_permissions(&d.path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    d
}

/// Every process whose parent is `pid`, recursively (workers, request
/// children, programs), whichever thread started it (a thread-mode
/// worker's programs are children of its request threads).
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for c in children_of_any_thread(p) {
            out.push(c);
            todo.push(c);
        }
    }
    out
}

fn children_of_any_thread(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|s| s.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// The log lines containing every one of `needles`.
pub fn lines_with(log: &str, needles: &[&str]) -> Vec<String> {
    log.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_string)
        .collect()
}

/// Run a command to completion (stdin empty) within the deadline; its output on failure.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let start = std::time::Instant::now();
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} did not finish within {DEADLINE:?}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{cmd:?}: {}: {text}", out.status))
    }
}

/// `git ARGS` in `dir`, with `dir` as HOME and no system config; panics
/// with git's output when it fails.
pub fn git(dir: &Path, args: &[&str]) {
    run(Command::new("git")
        .current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(args))
    .unwrap_or_else(|e| panic!("{e}"));
}
