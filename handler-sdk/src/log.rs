//! Logging into the daemon through the host table.
//!
//! Owns the process-wide pointer to the host's function table (set once by
//! the entry function). Before the entry function ran, or with a host that
//! offers no log function, messages go nowhere: a plugin never writes to
//! the daemon's stderr behind its back.

use crate::sys;
use std::sync::atomic::{AtomicPtr, Ordering};

static HOST: AtomicPtr<sys::sockhost_host> = AtomicPtr::new(std::ptr::null_mut());

pub(crate) fn set_host(host: *const sys::sockhost_host) {
    HOST.store(host.cast_mut(), Ordering::Release);
}

/// The host table, once the entry function has run.
pub(crate) fn host() -> Option<&'static sys::sockhost_host> {
    let ptr = HOST.load(Ordering::Acquire);
    // SAFETY: the ABI promises the host table is static and immutable for the
    // life of the process; the pointer is either null or that table.
    unsafe { ptr.as_ref() }
}

/// Log levels, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// Log `msg` at `level` into the daemon's log, tagged with this plugin.
pub fn log(level: Level, msg: &str) {
    if let Some(f) = host().and_then(|h| h.log) {
        // SAFETY: the host's log function takes a UTF-8 pointer and length,
        // both valid for this call.
        unsafe { f(level as i32, msg.as_ptr().cast(), msg.len()) }
    }
}

/// Whether a message at `level` would be logged (skip costly formatting).
pub fn log_enabled(level: Level) -> bool {
    match host().and_then(|h| h.log_enabled) {
        // SAFETY: a plain function of an integer, offered by the host.
        Some(f) => unsafe { f(level as i32) != 0 },
        None => false,
    }
}

/// `log!(Level::Info, "format", args...)`: formats only when enabled.
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)+) => {
        if $crate::log_enabled($level) {
            $crate::log($level, &format!($($arg)+));
        }
    };
}

/// Name a file this listener's code depends on besides the plugin (a
/// script, say): a reload restarts the listener when it changed. Call it
/// from [`crate::Handler::create`]. False when the host (older than ABI
/// 1.1, or outside `create`) did not take it.
pub fn depends_on(path: &std::path::Path) -> bool {
    let Some(host) = host() else { return false };
    let needed = std::mem::offset_of!(sys::sockhost_host, depends_on)
        + std::mem::size_of::<Option<unsafe extern "C" fn(*const std::ffi::c_char, usize) -> i32>>(
        );
    if (host.size as usize) < needed {
        return false;
    }
    let Some(f) = host.depends_on else {
        return false;
    };
    let text = path.to_string_lossy();
    // SAFETY: the host reads `len` bytes of UTF-8 during the call.
    unsafe { f(text.as_ptr().cast(), text.len()) == 0 }
}

/// Serve the listening socket itself, as inetd's `wait` services do (ABI
/// 1.2): call it from [`crate::Handler::create`]. The host then takes
/// nothing from the socket; each time it is readable it runs one request
/// whose fd is the listening socket, and waits for it to end before
/// polling again. False when the host (older than 1.2, or outside
/// `create`) did not take it.
pub fn take_listener() -> bool {
    let Some(host) = host() else { return false };
    let needed = std::mem::offset_of!(sys::sockhost_host, take_listener)
        + std::mem::size_of::<Option<unsafe extern "C" fn() -> i32>>();
    if (host.size as usize) < needed {
        return false;
    }
    let Some(f) = host.take_listener else {
        return false;
    };
    // SAFETY: a host function without arguments.
    unsafe { f() == 0 }
}
