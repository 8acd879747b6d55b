//! How many threads this process has, and whether forking it is safe.
//!
//! A fork-mode worker forks per request; forking a multi-threaded process
//! can deadlock the child on a lock another thread held (allocator,
//! stderr, tracing), so the worker checks before every fork and refuses
//! instead. The check is cheap enough for that path: no system call while
//! glibc says no thread was ever started.

#[cfg(target_env = "gnu")]
extern "C" {
    /// glibc (2.32 and later): non-zero while this process has never
    /// started a thread. It never turns back on, so it can only err on the
    /// safe side.
    static __libc_single_threaded: std::ffi::c_char;
}

/// Whether glibc promises no thread was ever started in this process.
fn never_threaded() -> bool {
    #[cfg(target_env = "gnu")]
    // SAFETY: a plain byte glibc writes only when a thread is created,
    // which can only happen on this (then the only) thread.
    return unsafe { std::ptr::read_volatile(&raw const __libc_single_threaded) } != 0;
    #[cfg(not(target_env = "gnu"))]
    false
}

/// Threads in this process. Checked before every fork, so it is cheap:
/// no system call at all while glibc knows no thread was ever started,
/// else one `stat` (procfs gives `/proc/self/task` a link count of two
/// plus the number of threads); /proc/self/status if that looks wrong.
pub fn thread_count() -> Option<usize> {
    use std::os::unix::fs::MetadataExt;
    if never_threaded() {
        return Some(1);
    }
    if let Ok(m) = std::fs::metadata("/proc/self/task") {
        if let Some(n) = m.nlink().checked_sub(2).filter(|&n| n > 0) {
            return usize::try_from(n).ok();
        }
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Threads:"))?;
    line["Threads:".len()..].trim().parse().ok()
}

/// Err(reason) when forking now would be unsafe.
pub fn check_single_threaded() -> Result<(), String> {
    match thread_count() {
        Some(1) => Ok(()),
        Some(n) => Err(format!(
            "the worker has {n} threads (the plugin started some); forking a \
             multi-threaded process can deadlock the child, so mixin = \"fork\" is refused"
        )),
        None => Err("cannot read /proc/self/status to check the thread count".into()),
    }
}
