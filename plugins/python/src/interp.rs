//! The embedded CPython interpreter: started once per worker, from
//! `create`, on the worker's main thread.
//!
//! Promises: libpython's symbols are made global before the interpreter
//! starts (the daemon loads this plugin RTLD_LOCAL, so without that the
//! extension modules `_socket`, `select`, `_json`, `_ssl` would not find the
//! C API they need); the interpreter installs no signal handler and starts
//! no thread; `sys.stdout` and `sys.stderr` are real files on the worker's
//! log relay (`log_fd`), whose lines the daemon logs; `logging` is left as
//! CPython has it; when `start` returns the GIL is released, so the worker's
//! main loop never holds it while it polls. Finalizing it is `exit`'s
//! business (from `destroy`); a forked request child ends in `_exit` with
//! it alive.

use pyo3::prelude::*;
use pyo3::types::PyModule;
use sockhost_sdk::Level;
use std::ffi::{c_void, CStr};

/// Our Python side (glue.py), compiled once as module `_sockhost_glue`.
const GLUE: &CStr = {
    const TEXT: &str = concat!(include_str!("glue.py"), "\0");
    match CStr::from_bytes_with_nul(TEXT.as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("glue.py holds a NUL byte"),
    }
};

/// The server's steps (steps.py), compiled first as `_sockhost_steps`
/// (glue.py imports from it).
const STEPS: &CStr = {
    const TEXT: &str = concat!(include_str!("steps.py"), "\0");
    match CStr::from_bytes_with_nul(TEXT.as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("steps.py holds a NUL byte"),
    }
};

/// `_sockhost.depends_on(path)`: name a file the listener's code was
/// loaded from (watched for reload); False when the host did not take it.
#[pyfunction]
fn depends_on(path: &str) -> bool {
    sockhost_sdk::depends_on(std::path::Path::new(path))
}

/// `_sockhost.log(level, text)`: one message into the daemon's log.
#[pyfunction]
fn log(level: i32, text: &str) {
    let level = match level {
        1 => Level::Error,
        2 => Level::Warn,
        3 => Level::Info,
        4 => Level::Debug,
        _ => Level::Trace,
    };
    sockhost_sdk::log(level, text);
}

/// Re-open the already loaded libpython with RTLD_GLOBAL (and
/// RTLD_NOLOAD: never a second copy), found by the address of one of its
/// functions, so extension modules resolve the C API against it.
fn make_libpython_global() -> Result<(), String> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    let probe = pyo3::ffi::Py_IsInitialized as *const c_void;
    // SAFETY: dladdr only reads the loader's tables and fills `info`.
    if unsafe { libc::dladdr(probe, info.as_mut_ptr()) } == 0 {
        return Err("cannot find which file libpython was loaded from (dladdr)".into());
    }
    // SAFETY: dladdr succeeded, so `info` is filled in.
    let info = unsafe { info.assume_init() };
    if info.dli_fname.is_null() {
        return Err("dladdr gave no file name for libpython".into());
    }
    // SAFETY: dli_fname is a NUL-terminated path owned by the loader.
    let file = unsafe { CStr::from_ptr(info.dli_fname) };
    let flags = libc::RTLD_NOW | libc::RTLD_GLOBAL | libc::RTLD_NOLOAD;
    // SAFETY: the library is already loaded (RTLD_NOLOAD), so no code of
    // it runs; this only changes its symbols' visibility. Never closed.
    let handle = unsafe { libc::dlopen(file.as_ptr(), flags) };
    if handle.is_null() {
        return Err(format!(
            "cannot make {} global: {}",
            file.to_string_lossy(),
            dl_error()
        ));
    }
    Ok(())
}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated message.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        return "unknown error".into();
    }
    // SAFETY: as above.
    unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
}

/// Start the interpreter (once) and return the glue module. `path` is
/// prepended to `sys.path`, in order; `log_fd` is the worker's log relay.
pub fn start(path: &[String], log_fd: Option<i32>) -> Result<Py<PyModule>, String> {
    make_libpython_global()?;
    Python::initialize();
    Python::attach(|py| -> PyResult<Py<PyModule>> {
        let sys = py.import("sys")?;
        sys.setattr("argv", vec!["sockhostd"])?;
        // Never write __pycache__ into the config's folder.
        sys.setattr("dont_write_bytecode", true)?;
        let sys_path = sys.getattr("path")?;
        for (i, p) in path.iter().enumerate() {
            sys_path.call_method1("insert", (i, p))?;
        }
        let native = PyModule::new(py, "_sockhost")?;
        native.add_function(wrap_pyfunction!(log, &native)?)?;
        native.add_function(wrap_pyfunction!(depends_on, &native)?)?;
        native.add_function(wrap_pyfunction!(crate::fork::fork_is_quiet, &native)?)?;
        sys.getattr("modules")?.set_item("_sockhost", &native)?;
        PyModule::from_code(py, STEPS, c"<sockhost steps.py>", c"_sockhost_steps")?;
        let glue = PyModule::from_code(py, GLUE, c"<sockhost glue.py>", c"_sockhost_glue")?;
        glue.call_method1("install_stdio", (log_fd.unwrap_or(-1),))?;
        Ok(glue.unbind())
    })
    .map_err(|e| crate::describe(&e))
}
