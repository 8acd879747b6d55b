//! Fork mode: the interpreter around the worker's fork of each request
//! child, as `os.fork()` handles it, and one shortcut CPython lacks.
//!
//! Promises: `before_fork` takes the GIL and runs `PyOS_BeforeFork`;
//! exactly one of `after_fork_parent` (`PyOS_AfterFork_Parent`, GIL given
//! back) or `after_fork_child` (`PyOS_AfterFork_Child`, GIL kept: the child
//! ends in `_exit` and never gives it back, as a ForkingMixIn child) follows,
//! so every `os.register_at_fork` hook runs where CPython runs it.
//!
//! The shortcut: threading's after-fork hook (`threading._after_fork`)
//! rebuilds its locks and thread table in every child, which under
//! CPython 3.11 dirties about 120 pages the child must copy (measured with
//! `bench/python-cpu.sh`: about a third of a request child's faults). When
//! the worker forks from its only thread and threading knows of no other
//! live thread, that rebuild changes nothing: the child's one thread is
//! the thread that forked, with the same ident, and no lock can be held
//! by a thread the fork left behind. `glue.quiet_after_fork` makes the hook
//! skip itself for such a fork only: the worker decides before the fork
//! (`glue.threading_quiet` after each server hook, confirmed in
//! `before_fork` by the sizes of threading's thread tables), the child
//! reads the verdict once (`_sockhost.fork_is_quiet`) and forgets it, so
//! an `os.fork()` the handler itself makes, or a fork from a worker whose
//! threading lists another thread, runs the hook in full.

use pyo3::prelude::*;
use std::cell::Cell;

thread_local! {
    /// The GIL state `before_fork` took, for the after-fork hook to give back.
    static FORK_GIL: Cell<Option<pyo3::ffi::PyGILState_STATE>> = const { Cell::new(None) };
    /// Whether threading's after-fork hook may skip itself in the child of
    /// the fork under way (set by `before_fork`, cleared after it). Next to
    /// FORK_GIL: both are written on every fork, on one page.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// `_sockhost.fork_is_quiet()`: whether this process is the child of a
/// fork the worker made from its only thread with threading quiet (see
/// the module text). Read by threading's after-fork hook; true only until
/// `PyOS_AfterFork_Child` returns.
#[pyfunction]
pub fn fork_is_quiet() -> bool {
    QUIET.with(Cell::get)
}

/// Before the worker's fork: the GIL, then CPython's pre-fork locks and
/// `before` hooks. `quiet_tables`: when the cached verdict says threading
/// may skip its rebuild, threading's `_active` and `_limbo` dicts, whose
/// sizes are read again here (no Python runs, nothing is written) after
/// every `before` hook ran: Python the worker ran since the verdict
/// (another module's at-fork hooks, a signal handler, a finalizer) may
/// have left a thread in them.
pub fn before_fork(quiet_tables: Option<(*mut pyo3::ffi::PyObject, *mut pyo3::ffi::PyObject)>) {
    // SAFETY: the interpreter is running (create succeeded); the worker's
    // only thread takes the GIL, then CPython's pre-fork locks.
    let state = unsafe {
        let state = pyo3::ffi::PyGILState_Ensure();
        pyo3::ffi::PyOS_BeforeFork();
        state
    };
    FORK_GIL.with(|g| g.set(Some(state)));
    // SAFETY: GIL held; both are dicts the handler keeps alive; PyDict_Size
    // only reads them.
    let quiet = quiet_tables.is_some_and(|(active, limbo)| unsafe {
        pyo3::ffi::PyDict_Size(active) == 1 && pyo3::ffi::PyDict_Size(limbo) == 0
    });
    QUIET.with(|q| q.set(quiet));
}

/// In the worker after its fork (also when the fork failed).
pub fn after_fork_parent() {
    QUIET.with(|q| q.set(false));
    if let Some(state) = FORK_GIL.with(Cell::take) {
        // SAFETY: paired with before_fork on this thread, GIL held.
        unsafe {
            pyo3::ffi::PyOS_AfterFork_Parent();
            pyo3::ffi::PyGILState_Release(state);
        }
    }
}

/// First thing in a request child.
pub fn after_fork_child() {
    if FORK_GIL.with(Cell::take).is_some() {
        // SAFETY: the child's only thread is the one that ran before_fork,
        // GIL held; CPython resets its locks and runs the
        // register_at_fork(after_in_child=...) hooks. The child keeps the
        // GIL, as a ForkingMixIn child does (its request's Python::attach
        // finds it held): dropping it only to take it again would write
        // the lock's pages, and the child ends in _exit, never giving it
        // back. Threads the handler starts still run: the eval loop hands
        // the GIL over as usual.
        unsafe { pyo3::ffi::PyOS_AfterFork_Child() };
    }
    // A fork the handler makes from here on is not the worker's.
    QUIET.with(|q| q.set(false));
}
