//! Helpers for the CLI and lifecycle suites (startup, stop, unix sockets,
//! example plugins, containment, listener keys), in a module of their own so
//! their names never clash with other suites' helpers.

use super::{child_pids, listener, plugin, sockhostd, Daemon, Failed, Stream, TestDir, DEADLINE};
use std::collections::BTreeSet;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One `[[listener]]` table serving the workspace's probe plugin.
pub fn probe_listener(
    name: &str,
    family: &str,
    ty: &str,
    address: &str,
    mixin: &str,
    extra: &str,
) -> String {
    let probe = plugin("sockhost_probe");
    listener(name, family, ty, address, mixin, &probe, extra)
}

/// The three dispatch modes.
pub const MIXINS: [&str; 3] = ["sync", "thread", "fork"];

/// Start a daemon on `config` written into `dir` (for tests that must know
/// the folder before the daemon starts).
pub fn start_in(dir: TestDir, config: &str) -> Result<Daemon, Failed> {
    let path = dir.write("sockhost.toml", config);
    Daemon::try_start_in(dir, path, &[])
}

/// The outcome of a start that must fail.
pub fn refused(config: &str) -> Failed {
    match Daemon::try_start(config) {
        Ok(d) => panic!("the daemon started but should have refused:\n{}", d.log()),
        Err(f) => f,
    }
}

/// A probe listener on loopback TCP, any free port.
pub fn tcp_probe(name: &str, mixin: &str, extra: &str) -> String {
    probe_listener(name, "inet", "stream", "127.0.0.1:0", mixin, extra)
}

/// A probe listener on a unix path (or `@name`).
pub fn unix_probe(name: &str, ty: &str, path: &str, mixin: &str) -> String {
    probe_listener(name, "unix", ty, path, mixin, "")
}

/// The daemon's worker processes: the master's direct children.
pub fn workers_of(master: i32) -> BTreeSet<i32> {
    child_pids(master).into_iter().collect()
}

/// [`super::wait_for`] for a condition: true once `cond` holds, false
/// if `within` passes first.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    super::wait_for(within, || cond().then_some(())).is_some()
}

/// Whether `pid` has exited: gone from /proc, or a zombie not yet reaped.
pub fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// Read until the peer closes the connection (EOF or a reset) and return
/// what was read; Err if it is still open when `within` has passed.
pub fn read_until_closed(s: &mut Stream, within: Duration) -> Result<Vec<u8>, String> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let left = within.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(format!(
                "still open after {within:?} ({} bytes read)",
                got.len()
            ));
        }
        s.set_timeout(Some(left));
        match s.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return Ok(got)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
}

/// A loopback TCP port the test holds bound (and listening) while the
/// returned listener lives.
pub fn hold_port() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a test port");
    let port = l.local_addr().expect("local addr").port();
    (l, port)
}

/// `len` deterministic pseudo-random bytes, NULs included.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    super::Rng(seed | 1).bytes(len)
}

/// Whether one line of `log` contains every needle.
pub fn has_line(log: &str, needles: &[&str]) -> bool {
    log.lines().any(|l| needles.iter().all(|n| l.contains(n)))
}

/// Build plugins/c-echo/echo.c with the contract's command, into `dir`.
pub fn build_c_echo(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = dir.join("libc_echo.so");
    let st = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-I"])
        .arg(root.join("handler-sdk/include"))
        .arg(root.join("plugins/c-echo/echo.c"))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run cc");
    assert!(st.success(), "cc builds echo.c: {st}");
    out
}

/// Years (UTC, a day either side for the daemon's time zone) it may be now.
pub fn plausible_years() -> Vec<i64> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    [-86_400, 0, 86_400]
        .iter()
        .map(|d| civil_year((now + d).div_euclid(86_400)))
        .collect()
}

/// The proleptic Gregorian year of day `days` since 1970-01-01.
pub fn civil_year(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    yoe + era * 400 + i64::from(mp >= 10)
}

/// Whether thread `tid` of `pid` sleeps in nanosleep (its kernel wait
/// channel); None when the kernel does not show wait channels.
pub fn in_nanosleep(pid: i32, tid: i32) -> Option<bool> {
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/wchan")).ok()?;
    match wchan.trim() {
        "" | "0" => None,
        w => Some(w.contains("nanosleep")),
    }
}

/// Run `sockhostd ARGS` to completion within [`DEADLINE`], stdout and
/// stderr going to files in `dir` (a daemonizing child keeps inherited
/// pipes open, so pipes could block the test). Ok((status, stderr)), or
/// Err(stderr so far) when it was still running at the deadline (it is
/// then killed).
pub fn run_to_files(args: &[&str], dir: &Path) -> Result<(i32, String), String> {
    let out = dir.join("cli.stdout");
    let err = dir.join("cli.stderr");
    let mut child = Command::new(sockhostd())
        .args(args)
        .env("SOCKHOST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("spawn sockhostd");
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("wait for sockhostd") {
            let text = std::fs::read_to_string(&err).unwrap_or_default();
            return Ok((st.code().unwrap_or(-1), text));
        }
        if start.elapsed() >= DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::fs::read_to_string(&err).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
