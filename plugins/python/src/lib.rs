//! sockhost-python: runs an unchanged Python `socketserver` request handler
//! class under sockhostd, on an embedded CPython.
//!
//! `create` starts the interpreter, imports `handler` (and `server`) from
//! `[listener.config]`, and builds the server object the way socketserver
//! would: constructed with `bind_and_activate=False`, given the daemon's
//! listening socket (wrapped in TLS again when its `__init__` wrapped its
//! own), then its own `server_bind()` and `server_activate()` run with
//! bind and listen doing nothing (steps.py). A class overriding a step the
//! daemon runs itself (`serve_forever`, `handle_request`) is refused. Each
//! request then goes through the class's steps as `_handle_request_noblock`
//! does: its `get_request` when it has one or wraps the socket
//! (`server.socket.accept()` hands over the connection the daemon took),
//! its `verify_request` with the real socket (a refusal is reported with
//! `refuse_request`, so the daemon counts it as refused), its
//! `process_request` (a mixin's dispatch is the daemon's) or
//! `finish_request`, with
//! `handle_error` and `shutdown_request` as socketserver calls them.
//! `server.shutdown()` and a sync-mode `SystemExit` stop the worker (the
//! daemon starts a fresh one). The server's `verify_request` (datagram),
//! `service_actions` and `handle_timeout` run from the ABI hooks of the
//! same names (only when the class overrides them); `service_actions` runs
//! every 0.5 s while idle too, and a datagram longer than `max_packet_size`
//! is cut to it (the plugin's `FLAGS`).
//!
//! GIL: taken per call (each request thread in thread mode takes it for
//! its request); the worker's main thread holds it only inside a hook,
//! never while it polls. Fork mode: `before_fork` takes the GIL and runs
//! `PyOS_BeforeFork`, the after-fork hooks run `PyOS_AfterFork_Parent` or
//! `PyOS_AfterFork_Child` and release it, so `os.register_at_fork` hooks
//! run and no interpreter lock is held across the fork.
//!
//! Stop: `destroy` (after the last request) runs `server.server_close()`
//! and then finalizes the interpreter as a script's end does (`exit`):
//! `atexit` functions run and output is flushed in the worker, never in a
//! fork-mode request child, which ends in `_exit` like ForkingMixIn's.
//!
//! Reload: every module loaded from the listener's `path` folders is named
//! to the host with `depends_on`, at start and, for a module first
//! imported by a request, before that request's `shutdown_request`, so
//! editing one makes the next SIGHUP restart this listener (the master
//! knows nothing of Python).

mod address;
mod exit;
mod fork;
mod interp;
mod settings;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyModule};
use sockhost_sdk::{export_handler, Client, Handler, Kind, Listener, Mixin, Request, Result};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A Python error as one readable text: `Type: message`, with the extra
/// lines CPython prints for a SyntaxError. The full traceback goes to the
/// log.
pub(crate) fn describe(err: &PyErr) -> String {
    Python::attach(|py| {
        // The traceback, when it reaches the user's code (not for the
        // errors our glue raises about the config).
        if let Some(Ok(text)) = err.traceback(py).map(|tb| tb.format()) {
            let theirs = text.lines().any(|l| {
                l.trim_start().starts_with("File \"")
                    && !l.contains("<sockhost glue.py>")
                    && !l.contains("<sockhost steps.py>")
            });
            if theirs {
                sockhost_sdk::log(sockhost_sdk::Level::Error, text.trim_end());
            }
        }
        let only = py.import("traceback").and_then(|t| {
            t.call_method1("format_exception_only", (err.value(py),))?
                .extract::<Vec<String>>()
        });
        match only {
            Ok(lines) => lines.concat().trim_end().to_string(),
            Err(_) => err.to_string(),
        }
    })
}

/// `[listener.config] directory`: the serving worker's working directory
/// (what `SimpleHTTPRequestHandler` serves, where relative paths in the
/// program point); under `sockhostd --check` (no listening socket, maybe
/// not a worker) only checked to be a folder.
fn enter_directory(dir: &std::path::Path, serving: bool) -> std::result::Result<(), String> {
    let outcome = if serving {
        std::env::set_current_dir(dir)
    } else {
        std::fs::read_dir(dir).map(drop)
    };
    outcome.map_err(|e| format!("[listener.config] directory = {:?}: {e}", dir.display()))
}

pub struct PyHandler {
    /// Released (with the GIL held) before the interpreter is finalized.
    py: ManuallyDrop<Objects>,
    datagram: bool,
    fork: bool,
    has_verify: bool,
    has_service_actions: bool,
    /// Whether the worker serves (it has a listening socket): under
    /// `sockhostd --check` the interpreter is not finalized at destroy.
    serving: bool,
    /// Requests inside Python now (thread mode: several at once).
    in_flight: AtomicUsize,
    /// Fork mode: threading's after-fork hook can skip itself (fork.rs).
    quiet_forks: bool,
    /// glue.threading_quiet's verdict, taken whenever Python last ran in
    /// the worker (only Python can start a thread there).
    threading_quiet: AtomicBool,
}

/// The Python objects a handler keeps.
struct Objects {
    glue: Py<PyModule>,
    server: Py<PyAny>,
    /// `server.socket`, the datagram requests' socket.
    server_socket: Py<PyAny>,
    /// glue.plan's verdict: which of the server's steps run in Python.
    steps: Py<PyAny>,
    /// `glue.serve_stream` or `glue.serve_datagram`.
    serve: Py<PyAny>,
    /// Fork mode with `quiet_forks`: `threading._active` and
    /// `threading._limbo` (never rebound, only mutated), whose sizes are
    /// read again right before each fork.
    thread_tables: Option<(Py<PyAny>, Py<PyAny>)>,
}

/// Counts a request in `in_flight` while it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(count: &'a AtomicUsize) -> InFlight<'a> {
        count.fetch_add(1, Ordering::AcqRel);
        InFlight(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PyHandler {
    fn build(l: &Listener) -> std::result::Result<PyHandler, String> {
        let s = settings::Settings::parse(&l.config, &l.config_dir)?;
        enter_directory(&s.directory, l.listen_fd.is_some())?;
        let glue = interp::start(&s.path, l.log_fd)?;
        let socktype = match l.kind {
            Kind::Stream => libc::SOCK_STREAM,
            Kind::Datagram => libc::SOCK_DGRAM,
        };
        let made = Python::attach(|py| -> PyResult<PyHandler> {
            let g = glue.bind(py);
            let handler = g.call_method1("load_handler", (&s.handler,))?;
            let server_cls = g.call_method1("load_server", (&s.server, l.family, socktype))?;
            let dir = l.config_dir.to_string_lossy();
            let fd = l.listen_fd.unwrap_or(-1);
            let mixin = match l.mixin {
                Mixin::Sync => "sync",
                Mixin::Thread => "thread",
                Mixin::Fork => "fork",
            };
            let args = (
                server_cls, handler, l.family, socktype, &l.address, dir, fd, mixin,
            );
            let server = g.call_method1("build_server", args)?;
            let datagram = l.kind == Kind::Datagram;
            let steps = g.call_method1("plan", (&server, datagram))?;
            let overrides = |name: &str| -> PyResult<bool> {
                g.call_method1("overrides", (&server, name))?.is_truthy()
            };
            // A stream listener's verify_request runs in Python with the
            // real socket (glue.serve); the host's hook has no fd to lend.
            let (has_verify, has_service_actions) = (
                datagram && overrides("verify_request")?,
                overrides("service_actions")?,
            );
            g.call_method1("watch_modules", (&s.path,))?;
            if l.mixin == Mixin::Fork {
                // Objects made so far stay out of the collector's way, so
                // a request child does not copy their pages to count them.
                let gc = py.import("gc")?;
                gc.call_method0("collect")?;
                gc.call_method0("freeze")?;
            }
            // Every module imported so far is named now, so a request (a
            // fork child above all, whose findings die with it) looks for
            // new ones only after it imported some itself.
            g.call_method0("watch_modules")?;
            let plain = steps.extract::<(bool, bool, bool)>()? == (false, false, false);
            let serve = match (datagram, l.mixin == Mixin::Fork && plain) {
                (true, _) => g.getattr("serve_datagram")?,
                (false, true) => g.call_method1("child_server", (&server,))?,
                (false, false) => g.getattr("serve_stream")?,
            };
            // Fork mode: threading's rebuild in each child skipped when it
            // would change nothing (fork.rs).
            let quiet_forks = l.mixin == Mixin::Fork
                && l.listen_fd.is_some()
                && g.call_method0("quiet_after_fork")?.is_truthy()?;
            let threading_quiet = quiet_forks && g.call_method0("threading_quiet")?.is_truthy()?;
            let thread_tables = if quiet_forks {
                let threading = py.import("threading")?;
                Some((
                    threading.getattr("_active")?.unbind(),
                    threading.getattr("_limbo")?.unbind(),
                ))
            } else {
                None
            };
            let objects = Objects {
                thread_tables,
                glue: glue.clone_ref(py),
                server_socket: server.getattr("socket")?.unbind(),
                serve: serve.unbind(),
                steps: steps.unbind(),
                server: server.unbind(),
            };
            Ok(PyHandler {
                py: ManuallyDrop::new(objects),
                datagram: l.kind == Kind::Datagram,
                fork: l.mixin == Mixin::Fork,
                has_verify,
                has_service_actions,
                serving: l.listen_fd.is_some(),
                in_flight: AtomicUsize::new(0),
                quiet_forks,
                threading_quiet: AtomicBool::new(threading_quiet),
            })
        });
        made.map_err(|e| describe(&e))
    }

    /// What the glue's serve step takes for this request: a dup of the
    /// connection (the glue owns it from then on) or the datagram's bytes.
    fn request<'py>(&self, py: Python<'py>, fd: i32, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        if self.datagram {
            return Ok(PyBytes::new(py, data).into_any());
        }
        // SAFETY: `fd` is the request's open connection (borrowed); the
        // duplicate is ours and goes to the glue, which closes it.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(dup.into_pyobject(py)?.into_any())
    }

    /// Call a no-argument server hook on the worker's main thread, logging
    /// its exception (socketserver would let it end serve_forever).
    fn server_hook(&self, name: &str) {
        Python::attach(|py| {
            if let Err(e) = self.py.server.bind(py).call_method0(name) {
                sockhost_sdk::log(
                    sockhost_sdk::Level::Error,
                    &format!("server.{name}: {}", describe(&e)),
                );
            }
            // Modules the hook imported: named here, in the worker, not
            // again in every request child.
            let _ = self.py.glue.bind(py).call_method0("watch_modules");
            self.recheck_threads(py);
        });
    }

    /// After Python ran in the worker (a server hook): whether threading
    /// still knows of no live thread but this one, for the next forks.
    fn recheck_threads(&self, py: Python<'_>) {
        if self.quiet_forks {
            let glue = self.py.glue.bind(py);
            let quiet = glue
                .call_method0("threading_quiet")
                .and_then(|v| v.is_truthy())
                .unwrap_or(false);
            self.threading_quiet.store(quiet, Ordering::Release);
        }
    }
}

impl Handler for PyHandler {
    fn create(l: &Listener) -> Result<Self> {
        Ok(PyHandler::build(l)?)
    }

    fn handle(&self, req: &mut Request) -> Result<()> {
        // A fork child never runs destroy: nothing there reads the count
        // (and writing it would copy its page).
        let _counted = (!self.fork).then(|| InFlight::enter(&self.in_flight));
        let outcome = Python::attach(|py| -> PyResult<Option<Option<String>>> {
            let addr = address::client_address(py, req.family(), req.client_addr())?;
            let request = self.request(py, req.fd(), req.data())?;
            let glue = self.py.glue.bind(py);
            let args = (
                self.py.server.bind(py),
                request,
                addr,
                self.py.steps.bind(py),
            );
            let result = self.py.serve.bind(py).call1(args);
            if self.fork {
                // The child ends in _exit: let no half line be lost.
                let _ = glue.call_method0(pyo3::intern!(py, "flush_logs"));
            }
            let result = result?;
            if result.is_none() {
                Ok(None)
            } else if result.is_instance_of::<PyBool>() {
                // The class's verify_request refused the client.
                Ok(Some(None))
            } else {
                Ok(Some(Some(result.extract::<String>()?)))
            }
        });
        match outcome {
            Ok(None) => Ok(()),
            Ok(Some(None)) => {
                req.refuse_request();
                Ok(())
            }
            // handle_error has reported it with its traceback already.
            Ok(Some(Some(text))) => Err(text.into()),
            Err(e) => Err(describe(&e).into()),
        }
    }

    fn verify_request(&self, client: &Client) -> bool {
        if !self.has_verify {
            return true;
        }
        Python::attach(|py| {
            let verdict = (|| -> PyResult<bool> {
                let addr = address::client_address(py, client.family, client.addr)?;
                // The connection is not the plugin's yet (the host lends no
                // fd here): a stream request is passed as None.
                let request = if self.datagram {
                    let pair = (
                        PyBytes::new(py, client.data),
                        self.py.server_socket.bind(py),
                    );
                    pair.into_pyobject(py)?.into_any()
                } else {
                    py.None().into_bound(py)
                };
                self.py
                    .server
                    .bind(py)
                    .call_method1("verify_request", (request, addr))?
                    .is_truthy()
            })();
            self.recheck_threads(py);
            verdict.unwrap_or_else(|e| {
                sockhost_sdk::log(
                    sockhost_sdk::Level::Error,
                    &format!(
                        "server.verify_request: {}; the request is refused",
                        describe(&e)
                    ),
                );
                false
            })
        })
    }

    fn service_actions(&self) {
        if self.has_service_actions {
            self.server_hook("service_actions");
        }
    }

    fn handle_timeout(&self) {
        self.server_hook("handle_timeout");
    }

    const FORK_HOOKS: bool = true;

    /// socketserver's poll_interval for `service_actions`, its truncation
    /// of a datagram longer than `max_packet_size`, and a CPU of its own
    /// for a thread-mode worker (its request threads take turns on the
    /// GIL) or each of several sync workers, unless the listener's
    /// `cpu_affinity` says otherwise.
    const FLAGS: u32 = sockhost_sdk::sys::SOCKHOST_PLUGIN_POLL_SERVICE_ACTIONS
        | sockhost_sdk::sys::SOCKHOST_PLUGIN_TRUNCATE_DATAGRAMS
        | sockhost_sdk::sys::SOCKHOST_PLUGIN_ONE_CPU;

    fn before_fork(&self) {
        let tables = self
            .py
            .thread_tables
            .as_ref()
            .map(|(a, l)| (a.as_ptr(), l.as_ptr()));
        let quiet = self.threading_quiet.load(Ordering::Acquire);
        fork::before_fork(tables.filter(|_| quiet));
    }

    fn after_fork_parent(&self) {
        fork::after_fork_parent();
    }

    fn after_fork_child(&self) {
        fork::after_fork_child();
    }
}

impl Drop for PyHandler {
    /// On graceful stop (the last request has finished), as a socketserver
    /// script ends: `server.server_close()`, then the interpreter is
    /// finalized (`exit`): threading joins non-daemon threads (up to
    /// what is left of `shutdown_timeout`), `atexit` functions run, output
    /// and open files are flushed. Not under `sockhostd --check`, and not
    /// while a request still runs Python (the log says so).
    fn drop(&mut self) {
        self.server_hook("server_close");
        Python::attach(|py| {
            let _ = self.py.glue.bind(py).call_method0("flush_logs");
            // SAFETY: dropped once, here, with the GIL held (so each
            // reference is released now, not queued); `self.py` is not
            // used again.
            unsafe { ManuallyDrop::drop(&mut self.py) };
        });
        let running = self.in_flight.load(Ordering::Acquire);
        if running > 0 {
            sockhost_sdk::log(
                sockhost_sdk::Level::Warn,
                &format!(
                    "python: {running} requests still in handle at destroy; \
                     the interpreter is not finalized (atexit functions do not run)"
                ),
            );
        } else if self.serving {
            exit::finalize(exit::stop_budget());
        }
    }
}

export_handler!(PyHandler);
