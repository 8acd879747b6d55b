//! Memory shared between the master and the processes it forks.
//!
//! A [`SharedSlice`] is an anonymous `MAP_SHARED` mapping made in the
//! master before it forks: every worker and every request child forked
//! from that worker sees the same pages, so counters and tables kept in it
//! with atomics are exact across processes without a lock or a system call.
//! Only types for which all-zero bytes are a valid value and that are safe
//! to touch from several processes at once ([`ShmSafe`]: the integer
//! atomics and arrays or `#[repr(C)]` structs of them) can live there.
//!
//! A region can also be a file's ([`SharedSlice::map_fd`]: a memfd a
//! binary upgrade hands to the new daemon), shared by whoever maps it.
//!
//! Promises: an anonymous mapping starts zeroed, is never moved, and is unmapped
//! when the last handle in a process is dropped (other processes keep
//! theirs). Children share it, unless [`SharedSlice::keep_from_later_forks`]
//! was called: the master does that once it forked the one worker a block
//! is for, so later workers (other listeners' plugins) never map it.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize};

/// Types that may live in memory shared between processes.
///
/// # Safety
/// All-zero bytes must be a valid value, the type must hold no pointer
/// (another process maps the region at the same address only by
/// inheritance, and nothing may point outside it), and every access through
/// `&Self` must be sound while other processes access the same bytes (the
/// integer atomics are).
pub unsafe trait ShmSafe: Sync {}

// SAFETY: integer atomics: zero is a valid value, no pointers, and their
// operations are lock-free instructions that are sound across processes.
unsafe impl ShmSafe for AtomicU64 {}
// SAFETY: as for AtomicU64.
unsafe impl ShmSafe for AtomicI64 {}
// SAFETY: as for AtomicU64.
unsafe impl ShmSafe for AtomicU32 {}
// SAFETY: as for AtomicU64.
unsafe impl ShmSafe for AtomicUsize {}
// SAFETY: an array of ShmSafe values is ShmSafe element by element.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {}

/// `len` values of `T` in one shared anonymous mapping, zeroed.
pub struct SharedSlice<T: ShmSafe> {
    ptr: NonNull<T>,
    len: usize,
    bytes: usize,
}

// SAFETY: the mapping is only reached through `&[T]` and T is Sync.
unsafe impl<T: ShmSafe> Send for SharedSlice<T> {}
// SAFETY: as above.
unsafe impl<T: ShmSafe> Sync for SharedSlice<T> {}

impl<T: ShmSafe> SharedSlice<T> {
    /// Map `len` zeroed values (at least one page).
    pub fn new(len: usize) -> io::Result<SharedSlice<T>> {
        let bytes = std::mem::size_of::<T>()
            .checked_mul(len.max(1))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "shared region too big"))?;
        // SAFETY: a fresh anonymous mapping: no existing memory is touched;
        // the result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<T>()).ok_or_else(io::Error::last_os_error)?;
        Ok(SharedSlice { ptr, len, bytes })
    }

    /// Map `len` values of the file `fd` from byte `offset` (page-aligned;
    /// the file must be at least that long): shared with every process that
    /// maps the same file, such as a memfd handed to another program.
    pub fn map_fd(fd: std::os::fd::RawFd, offset: u64, len: usize) -> io::Result<SharedSlice<T>> {
        let bytes = std::mem::size_of::<T>()
            .checked_mul(len.max(1))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "shared region too big"))?;
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too big"))?;
        // SAFETY: a new shared mapping of a file the caller holds open; no
        // existing memory is touched; the result is checked before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<T>()).ok_or_else(io::Error::last_os_error)?;
        Ok(SharedSlice { ptr, len, bytes })
    }

    /// The shared values.
    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the mapping holds `len` values of T, zeroed by the kernel
        // (a valid T by ShmSafe), page-aligned, alive as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: ShmSafe> SharedSlice<T> {
    /// Processes forked from this one from now on do not get the mapping
    /// (MADV_DONTFORK); those forked before keep sharing it.
    pub fn keep_from_later_forks(&self) -> io::Result<()> {
        // SAFETY: advising on our own whole mapping; no memory changes.
        let rc =
            unsafe { libc::madvise(self.ptr.as_ptr().cast(), self.bytes, libc::MADV_DONTFORK) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Keep the mapping for the rest of the process's life.
    pub fn leak(self) -> &'static [T] {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: the mapping is never unmapped (no Drop runs), so the
        // values live as long as the process.
        unsafe { std::slice::from_raw_parts(this.ptr.as_ptr(), this.len) }
    }
}

impl<T: ShmSafe> std::fmt::Debug for SharedSlice<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SharedSlice({} x {} bytes at {:p})",
            self.len,
            std::mem::size_of::<T>(),
            self.ptr
        )
    }
}

impl<T: ShmSafe> std::ops::Deref for SharedSlice<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: ShmSafe> Drop for SharedSlice<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `new` with this length, and no
        // reference into it outlives self (they borrow from it).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.bytes) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn a_forked_child_writes_what_the_parent_reads() {
        let counters: SharedSlice<AtomicU64> = SharedSlice::new(4).expect("map");
        assert!(counters.iter().all(|c| c.load(Ordering::Relaxed) == 0));
        // SAFETY: the child only does atomic adds and _exit.
        match unsafe { libc::fork() } {
            0 => {
                counters[2].fetch_add(7, Ordering::Relaxed);
                // SAFETY: ends the child without running the parent's state.
                unsafe { libc::_exit(0) }
            }
            -1 => panic!("fork: {}", io::Error::last_os_error()),
            pid => {
                let mut status = 0;
                // SAFETY: waits for the child just forked.
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }
        }
        assert_eq!(counters[2].load(Ordering::Relaxed), 7);
        assert_eq!(counters[1].load(Ordering::Relaxed), 0);
    }
}
