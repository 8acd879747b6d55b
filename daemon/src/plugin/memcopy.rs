//! A plugin's private in-memory copy: the file's bytes copied into an
//! anonymous memory file (memfd) and sealed, so that nothing (an operator
//! overwriting the `.so` in place, or this process) can change what a
//! worker runs after it loaded it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// The seals on a plugin's private copy: its bytes can never change again.
const SEALS: libc::c_int =
    libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;

/// Copy the file at `path` into an anonymous memory file, sealed so that
/// nothing (not even this process) can change it after the copy.
pub(super) fn private_copy(path: &Path) -> std::io::Result<OwnedFd> {
    let mut src = std::fs::File::open(path)?;
    if !src.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let name = c"sockhost-plugin";
    // SAFETY: memfd_create with a static NUL-terminated name.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut dst = std::fs::File::from(owned);
    std::io::copy(&mut src, &mut dst)?;
    // SAFETY: F_ADD_SEALS on a memfd we own; no shared writable mapping
    // of it exists (F_SEAL_WRITE would refuse one).
    if unsafe { libc::fcntl(dst.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(OwnedFd::from(dst))
}

#[cfg(test)]
mod tests {
    use super::{private_copy, SEALS};
    use std::io::Write;
    use std::os::fd::AsRawFd;

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
