//! How the embedded interpreter ends: as a Python program's does, with
//! `Py_FinalizeEx` (threading's join of non-daemon threads, `atexit`
//! functions, `sys.stdout`/`sys.stderr` flushed, modules torn down so open
//! files are flushed and closed), called from the plugin's `destroy` on the
//! worker's main thread, the thread that started it.
//!
//! Promises: finalization starts only when no other thread is attached to
//! the interpreter through this plugin (the host calls `destroy` after the
//! last request hook returned, and `PyHandler` checks its own count too);
//! threads the handler started itself are CPython's business, as at the end
//! of any script: daemon threads are left to CPython (they end, or hang
//! harmlessly, when they next want the GIL), non-daemon threads are joined,
//! but only for what is left of the worker's `shutdown_timeout` (the rest of
//! finalization then runs without them, with a warning naming them), so a
//! thread that never ends cannot keep a stopping worker past it. Failures
//! are logged, never raised: a finalization that cannot flush is reported,
//! not a crash. Never runs in a forked request child (the host calls no
//! `destroy` there: a child ends in `_exit`, like ForkingMixIn's
//! `os._exit`, so no `atexit` function runs in it), nor under
//! `sockhostd --check` (nothing was served; the worker just exits).

use pyo3::prelude::*;
use sockhost_sdk::{log, Level};
use std::time::Duration;

/// The worker's backstop: its first SIGTERM/SIGINT arms
/// `alarm(ceil(shutdown_timeout) + 3 s)` (sockhostd's
/// `os::signals::alarm_on_stop`). What is left of that alarm less these 3 s
/// is what is left of `shutdown_timeout` itself.
const ALARM_GRACE: Duration = Duration::from_secs(3);

/// What is left of the worker's `shutdown_timeout` since its stop signal,
/// read from the stop alarm without changing it; zero when no stop alarm
/// runs (the master abandoned the generation before it served).
pub fn stop_budget() -> Duration {
    let mut timer = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
    };
    // SAFETY: getitimer only fills the live struct it is given.
    if unsafe { libc::getitimer(libc::ITIMER_REAL, &mut timer) } != 0 {
        return Duration::ZERO;
    }
    let secs = u64::try_from(timer.it_value.tv_sec).unwrap_or(0);
    let micros = u32::try_from(timer.it_value.tv_usec).unwrap_or(0);
    let left = Duration::from_secs(secs) + Duration::from_micros(micros.into());
    left.saturating_sub(ALARM_GRACE)
}

/// Finalize the interpreter, waiting at most `budget` for the handler's
/// non-daemon threads. Call once, on the thread that started it, after
/// every object of ours is released. Nothing may call into Python after.
pub fn finalize(budget: Duration) {
    // SAFETY: reads a flag of the runtime; callable at any time.
    if unsafe { pyo3::ffi::Py_IsInitialized() } == 0 {
        return;
    }
    Python::attach(|py| {
        let prepared = py
            .import("_sockhost_glue")
            .and_then(|g| g.call_method1("prepare_exit", (budget.as_secs_f64(),)));
        if let Err(e) = prepared {
            log(
                Level::Warn,
                &format!(
                    "python: threading's wait for non-daemon threads is not bounded: {}",
                    crate::describe(&e)
                ),
            );
        }
    });
    // SAFETY: the interpreter is initialized and this is its main thread
    // (create and destroy run there), so PyGILState_Ensure makes the main
    // thread state current again; no other thread of ours is attached.
    // The GIL is never released: Py_FinalizeEx frees the thread state.
    let status = unsafe {
        pyo3::ffi::PyGILState_Ensure();
        pyo3::ffi::Py_FinalizeEx()
    };
    if status < 0 {
        log(
            Level::Error,
            "python: finalizing the interpreter: sys.stdout or sys.stderr could not be flushed",
        );
    } else {
        log(Level::Debug, "python: interpreter finalized");
    }
}
