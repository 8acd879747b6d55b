//! A plugin's private in-memory copy: the file's bytes copied into an
//! anonymous memory file (memfd) and sealed, so that nothing (an operator
//! overwriting the `.so` in place, or this process) can change what a
//! worker runs after it loaded it.
//!
//! Sealing can fail with `EBUSY` while the kernel still holds a page of
//! the new copy for a moment (the copy itself, done with splice, pins
//! them briefly): the whole copy is then made again, a bounded number of
//! times ([`ATTEMPTS`]), before the plugin is refused.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

/// How many times a copy is made before `EBUSY` is given up on.
pub(super) const ATTEMPTS: u32 = 5;

/// The seals on a plugin's private copy: its bytes can never change again.
const SEALS: libc::c_int =
    libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;

/// Copy the file at `path` into an anonymous memory file, sealed so that
/// nothing (not even this process) can change it after the copy. A copy
/// that meets `EBUSY` is made again, up to [`ATTEMPTS`] times.
pub(super) fn private_copy(path: &Path) -> io::Result<OwnedFd> {
    retry_busy(ATTEMPTS, || copy_once(path, add_seals))
}

/// Run `attempt` until it ends in anything but `EBUSY`, at most `times`
/// times, pausing a little longer after each busy one (1, 2, 4 ... ms).
fn retry_busy<T>(times: u32, mut attempt: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut n = 1;
    loop {
        match attempt() {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                if n >= times {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{e} (private copy still busy after {times} attempts)"),
                    ));
                }
                tracing::debug!("private copy: {e}; attempt {} of {times}", n + 1);
                std::thread::sleep(Duration::from_millis(1 << (n - 1)));
                n += 1;
            }
            other => return other,
        }
    }
}

/// One copy of `path` into a fresh memfd, sealed by `seal` (the seam the
/// tests use to make the kernel say `EBUSY`).
fn copy_once(path: &Path, seal: impl FnOnce(RawFd) -> io::Result<()>) -> io::Result<OwnedFd> {
    let mut src = std::fs::File::open(path)?;
    if !src.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let name = c"sockhost-plugin";
    // SAFETY: memfd_create with a static NUL-terminated name.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut dst = std::fs::File::from(owned);
    io::copy(&mut src, &mut dst)?;
    seal(dst.as_raw_fd())?;
    Ok(OwnedFd::from(dst))
}

/// Add [`SEALS`] to the memfd `fd`.
fn add_seals(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_ADD_SEALS on a memfd the caller owns; no shared writable
    // mapping of it exists (F_SEAL_WRITE would refuse one).
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{add_seals, copy_once, private_copy, retry_busy, ATTEMPTS, SEALS};
    use std::io::{self, Read, Seek, Write};
    use std::os::fd::AsRawFd;
    use std::path::{Path, PathBuf};

    fn sample(tag: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("sockhost-{tag}-{}", std::process::id()));
        std::fs::write(&path, b"not really a plugin").expect("write");
        path
    }

    /// The real copy, whose sealing says `EBUSY` the first `busy` times.
    fn copy_busy_first(path: &Path, busy: u32) -> (io::Result<std::os::fd::OwnedFd>, u32) {
        let mut calls = 0;
        let result = retry_busy(ATTEMPTS, || {
            calls += 1;
            copy_once(path, |fd| {
                if calls <= busy {
                    Err(io::Error::from_raw_os_error(libc::EBUSY))
                } else {
                    add_seals(fd)
                }
            })
        });
        (result, calls)
    }

    #[test]
    fn a_busy_seal_is_retried_and_the_copy_made_again() {
        let path = sample("busy");
        let (copy, calls) = copy_busy_first(&path, ATTEMPTS - 1);
        let _ = std::fs::remove_file(&path);
        assert_eq!(calls, ATTEMPTS, "one copy per attempt");
        let fd = copy.expect("the last attempt succeeds");
        // SAFETY: F_GET_SEALS on a live fd.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(seals & SEALS, SEALS, "sealed: {seals:#x}");
        let mut text = String::new();
        let mut f = std::fs::File::from(fd);
        f.seek(io::SeekFrom::Start(0)).expect("rewind");
        f.read_to_string(&mut text).expect("read the copy");
        assert_eq!(text, "not really a plugin");
    }

    #[test]
    fn a_seal_busy_every_time_fails_after_the_last_attempt_saying_so() {
        let path = sample("always-busy");
        let (copy, calls) = copy_busy_first(&path, u32::MAX);
        let _ = std::fs::remove_file(&path);
        assert_eq!(calls, ATTEMPTS, "bounded");
        let e = copy.expect_err("gives up");
        assert_eq!(e.kind(), io::ErrorKind::ResourceBusy, "{e}");
        assert!(e.to_string().contains("still busy after 5 attempts"), "{e}");
    }

    #[test]
    fn other_errors_are_not_retried() {
        let mut calls = 0;
        let r: io::Result<()> = retry_busy(ATTEMPTS, || {
            calls += 1;
            Err(io::Error::from_raw_os_error(libc::EPERM))
        });
        assert_eq!(r.expect_err("fails").raw_os_error(), Some(libc::EPERM));
        assert_eq!(calls, 1);
    }

    #[test]
    fn the_private_copy_is_sealed_against_every_change() {
        let path = std::env::temp_dir().join(format!("sockhost-seal-{}", std::process::id()));
        std::fs::write(&path, b"not really a plugin").expect("write");
        let fd = private_copy(&path).expect("copy");
        let _ = std::fs::remove_file(&path);
        // SAFETY: F_GET_SEALS on a live fd.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(seals & SEALS, SEALS, "seals {seals:#x}");
        let mut f = std::fs::File::from(fd);
        assert!(f.write_all(b"x").is_err(), "a sealed copy refuses writes");
        assert_eq!(f.metadata().expect("stat").len(), 19);
    }
}
