//! Helpers for the security suites (access.rs, limits.rs, hostile.rs):
//! clients from chosen loopback source addresses or as other users, a
//! daemon started under a low descriptor limit, and process accounting
//! from /proc.

use super::{sockhostd, Daemon, Failed, TestDir, DEADLINE};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A TCP connection to `to` from source address `src` (127.0.0.2, ...):
/// the socket is bound to `src` before it connects.
pub fn tcp_from(src: &str, to: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let ip: std::net::IpAddr = src.parse().map_err(io::Error::other)?;
    let sock = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
    sock.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?;
    sock.connect_timeout(&SockAddr::from(to), DEADLINE)?;
    let s = TcpStream::from(sock);
    s.set_read_timeout(Some(DEADLINE))?;
    s.set_write_timeout(Some(DEADLINE))?;
    Ok(s)
}

/// A UDP socket bound to source address `src`.
pub fn udp_from(src: &str) -> UdpSocket {
    let s = UdpSocket::bind(format!("{src}:0")).expect("bind udp client");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    s
}

/// How a probe `PING` from a connection went.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered `PONG`.
    Served,
    /// Closed without an answer; holds what the server wrote first.
    Refused(String),
}

/// Send `PING` on `s` and tell whether it was served.
pub fn ping_on(s: &mut (impl Read + Write)) -> Outcome {
    let _ = s.write_all(b"PING\n");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(_) if line == "PONG\n" => Outcome::Served,
        _ => Outcome::Refused(line),
    }
}

/// One connection from `src`: served or refused.
pub fn ping_from(src: &str, to: SocketAddr) -> Outcome {
    match tcp_from(src, to) {
        Ok(mut s) => ping_on(&mut s),
        Err(e) => Outcome::Refused(format!("connect: {e}")),
    }
}

/// Everything the server sends until it closes; None if it stays open
/// longer than `within`.
pub fn read_until_eof(s: &mut impl Read, within: Duration) -> Option<Vec<u8>> {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < within {
        match s.read(&mut buf) {
            Ok(0) => return Some(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Some(out),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(out),
        }
    }
    None
}

/// Run the peer helper (`sockhost-fixture-peer`) as another user (uid,
/// gid, supplementary groups): it connects to the abstract unix stream
/// socket `@name`, sends `PING` and prints the first line it gets back (or
/// `EOF`). Returns that line.
pub fn ping_as(name: &str, uid: u32, gid: u32, groups: &[u32]) -> String {
    let groups: Vec<libc::gid_t> = groups.to_vec();
    let exe = super::target_dir().join("sockhost-fixture-peer");
    let mut cmd = Command::new(&exe);
    cmd.arg(name).stdin(Stdio::null());
    // SAFETY: the closure only makes async-signal-safe system calls
    // (setgroups, setgid, setuid) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {} (cargo build --workspace): {e}", exe.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    match text.lines().next() {
        Some(line) if out.status.success() => line.to_string(),
        _ => format!("no reply line from the helper ({}): {text}", out.status),
    }
}

/// Start the daemon on `config` with RLIMIT_NOFILE set to soft/hard.
pub fn start_with_nofile(config: &str, soft: u64, hard: u64) -> Result<Daemon, Failed> {
    let dir = TestDir::new("nofile");
    let path = dir.write("sockhost.toml", config);
    let mut cmd = Command::new(sockhostd());
    cmd.arg("-c").arg(&path).args(["--log", "stderr"]);
    // SAFETY: setrlimit is async-signal-safe; the struct is a copy.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    };
    Daemon::try_start_cmd(dir, path, cmd)
}

/// (soft, hard) "Max open files" of a process, from /proc/PID/limits.
pub fn nofile_limits(pid: i32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut nums = line["Max open files".len()..].split_whitespace();
    Some((nums.next()?.parse().ok()?, nums.next()?.parse().ok()?))
}

/// A process's descriptor count at rest: the least of several samples
/// over 300 ms, so a connection the server is still closing is not
/// counted (compare later counts with `<=`: fewer is fine, more leaked).
pub fn fd_count_at_rest(pid: i32) -> usize {
    (0..6)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            super::fd_count(pid)
        })
        .min()
        .unwrap_or(0)
}

/// CPU time (user + system) a process has used, in clock ticks.
pub fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based).
    let at = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
    at(14).unwrap_or(0) + at(15).unwrap_or(0)
}

/// A line of /proc/PID/status, e.g. `status_field(pid, "NoNewPrivs")`.
pub fn status_field(pid: i32, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
}

/// Resident memory of a process in KiB (0 when unreadable).
pub fn rss_kib(pid: i32) -> u64 {
    status_field(pid, "VmRSS")
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Lines of `log` that contain `needle`.
pub fn count_lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// A free port below 1024 on loopback (the test runs as root, which may
/// bind it): for tests that a dropped master can still bind one.
pub fn free_privileged_port() -> u16 {
    (900..1000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 900..1000")
}

/// A capability set of `pid` from /proc/PID/status (`CapEff`, `CapPrm`,
/// `CapInh`, `CapAmb`) as a mask.
pub fn cap_mask(pid: i32, set: &str) -> u64 {
    let v = status_field(pid, set).unwrap_or_default();
    u64::from_str_radix(v.trim(), 16).expect("capability mask")
}

/// Whether the kernel has Landlock ABI 6 (scopes), which the sandbox
/// needs; prints SKIPPED when not, and fails instead when
/// SOCKHOST_REQUIRE_LANDLOCK is set (CI).
pub fn landlock_or_skip() -> bool {
    // SAFETY: landlock_create_ruleset(NULL, 0, VERSION) only returns a number.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    if abi >= 6 {
        return true;
    }
    assert!(
        std::env::var_os("SOCKHOST_REQUIRE_LANDLOCK").is_none(),
        "Landlock ABI 6 is required (SOCKHOST_REQUIRE_LANDLOCK is set); this kernel has {abi}"
    );
    eprintln!("SKIPPED: this kernel has Landlock ABI {abi}; the sandbox needs 6");
    false
}
