//! Starting a new sockhostd binary that inherits the listening sockets, the
//! way a service manager hands them over: the sockets at fds 3.., with
//! `LISTEN_FDS`, `LISTEN_FDNAMES` and `LISTEN_PID` set, so the new daemon
//! takes them through the same code as socket activation (never re-bound).
//!
//! Promises: only the fds given survive into the new program (every other
//! fd of the master is close-on-exec); the new program starts with no
//! signal blocked; everything that allocates is done before the fork, so
//! the child only calls async-signal-safe functions until `execve`. If
//! `execve` fails the child writes the reason to the report fd and exits
//! 127. A master that dropped root but kept capabilities (CAP_NET_BIND_SERVICE,
//! and CAP_SETUID/CAP_SETGID/CAP_KILL for listeners running as other
//! accounts) hands them on to the new program (see os::privileges).

use nix::unistd::Pid;
use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Where the handed-over fds start, as in socket activation.
const FIRST_FD: RawFd = 3;
/// Variables the new program must not inherit from this one.
const DROPPED: [&str; 4] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", UPGRADE_FD_VAR];
/// The variable naming the fd the new daemon reports readiness on.
pub const UPGRADE_FD_VAR: &str = "SOCKHOST_UPGRADE_FD";

/// Fork and exec `exe` with `args` (argv[1..]), handing it `sockets`
/// (name, fd) at fds 3.. and `report` right after them; `extra_env` is
/// added to this process's environment. Returns the new process's pid.
pub fn spawn(
    exe: &Path,
    args: &[OsString],
    sockets: &[(String, RawFd)],
    report: RawFd,
    extra_env: &[(String, String)],
) -> io::Result<Pid> {
    let c = |b: &[u8]| CString::new(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
    let path = c(exe.as_os_str().as_bytes())?;
    let mut argv = vec![path.clone()];
    for a in args {
        argv.push(c(a.as_bytes())?);
    }
    let n = sockets.len();
    let names: Vec<&str> = sockets.iter().map(|(name, _)| name.as_str()).collect();
    let mut env: Vec<CString> = Vec::new();
    for (k, v) in std::env::vars_os() {
        if DROPPED.iter().any(|d| k.as_bytes() == d.as_bytes()) {
            continue;
        }
        let mut kv = k.as_bytes().to_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        env.push(c(&kv)?);
    }
    env.push(c(format!("LISTEN_FDS={n}").as_bytes())?);
    env.push(c(format!("LISTEN_FDNAMES={}", names.join(":")).as_bytes())?);
    env.push(c(
        format!("{UPGRADE_FD_VAR}={}", FIRST_FD + n as RawFd).as_bytes()
    )?);
    for (k, v) in extra_env {
        env.push(c(format!("{k}={v}").as_bytes())?);
    }
    // LISTEN_PID is the child's own pid, written by the child into this
    // buffer (no allocation after the fork).
    let mut listen_pid = *b"LISTEN_PID=\0\0\0\0\0\0\0\0\0\0\0\0";
    let mut fds: Vec<RawFd> = sockets.iter().map(|&(_, fd)| fd).collect();
    fds.push(report);
    let argv_ptrs: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(listen_pid.as_ptr().cast());
    env_ptrs.push(std::ptr::null());
    // SAFETY: the master is single-threaded; the child below only calls
    // async-signal-safe functions (fcntl, dup2, sigprocmask, getpid,
    // capget/capset/prctl, execve, write, _exit) on memory prepared
    // before the fork.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // SAFETY: as above; never returns.
            unsafe { child(&fds, &mut listen_pid, &path, &argv_ptrs, &env_ptrs) }
        }
        pid => Ok(Pid::from_raw(pid)),
    }
}

/// The child's side between fork and exec.
///
/// # Safety
/// Only in a child just forked from a single-threaded process; the
/// pointer arrays are NULL-terminated and point into live CStrings.
unsafe fn child(
    fds: &[RawFd],
    listen_pid: &mut [u8; 23],
    path: &CString,
    argv: &[*const libc::c_char],
    env: &[*const libc::c_char],
) -> ! {
    let report = fds.last().copied().unwrap_or(-1);
    // Move every fd out of the way first (3.. may be taken by them), then
    // down into place; dup2 clears close-on-exec on the targets.
    let mut high = [0 as RawFd; 256];
    let count = fds.len().min(high.len());
    for i in 0..count {
        // SAFETY: fcntl on fds the parent holds open.
        high[i] = unsafe { libc::fcntl(fds[i], libc::F_DUPFD_CLOEXEC, 512) };
        if high[i] < 0 {
            // SAFETY: leaving the child.
            unsafe { fail(report, b"cannot hand over the sockets (fcntl)\n") };
        }
    }
    for (i, &fd) in high.iter().enumerate().take(count) {
        // SAFETY: dup2 onto the target number.
        if unsafe { libc::dup2(fd, FIRST_FD + i as RawFd) } < 0 {
            // SAFETY: leaving the child.
            unsafe { fail(high[count - 1], b"cannot hand over the sockets (dup2)\n") };
        }
    }
    // SAFETY: an empty set unblocks every signal for the new program.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
    // SAFETY: getpid has no preconditions.
    write_decimal(&mut listen_pid[11..22], unsafe { libc::getpid() });
    crate::os::privileges::carry_capabilities_across_exec();
    // SAFETY: NULL-terminated arrays of live C strings.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), env.as_ptr()) };
    // SAFETY: leaving the child.
    unsafe {
        fail(
            FIRST_FD + count as RawFd - 1,
            b"cannot execute the new binary\n",
        )
    }
}

/// Write `n` in decimal into `out` followed by NUL (no allocation).
fn write_decimal(out: &mut [u8], n: i32) {
    let mut digits = [0u8; 10];
    let mut len = 0;
    let mut v = n.unsigned_abs();
    loop {
        digits[len] = b'0' + (v % 10) as u8;
        len += 1;
        v /= 10;
        if v == 0 || len == digits.len() {
            break;
        }
    }
    let len = len.min(out.len() - 1);
    for i in 0..len {
        out[i] = digits[len - 1 - i];
    }
    out[len] = 0;
}

/// Write `msg` to `fd` and end the child.
///
/// # Safety
/// Only in the forked child.
unsafe fn fail(fd: RawFd, msg: &[u8]) -> ! {
    // SAFETY: write and _exit are async-signal-safe.
    unsafe {
        libc::write(fd, msg.as_ptr().cast(), msg.len());
        libc::_exit(127)
    }
}

#[cfg(test)]
mod tests {
    use super::write_decimal;

    #[test]
    fn pids_are_written_in_decimal_and_terminated() {
        let mut buf = [0xffu8; 11];
        write_decimal(&mut buf, 4_194_303);
        assert_eq!(&buf[..8], b"4194303\0");
        write_decimal(&mut buf, 7);
        assert_eq!(&buf[..2], b"7\0");
    }
}
