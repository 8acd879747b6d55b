"""sockhost's Python side: the few steps of socketserver the daemon does
not do itself, written in Python so they run exactly as socketserver runs
them (an exception is "being handled" when `handle_error` prints it).

Contract: `load_handler` / `load_server` find the configured classes (the
server's steps, `build_server` and `serve_*`, are steps.py's, imported
below); sys.stdout and sys.stderr are real files on
the worker's log relay (`install_stdio`), and logging is left as CPython
has it. Nothing here starts a thread or touches the listening socket's
blocking mode. `prepare_exit` bounds threading's wait for non-daemon threads
at interpreter exit; everything else about the exit is CPython's own.
"""

import io
import os
import socket
import socketserver
import sys
import threading
import time
import types

import _sockhost

# The daemon's log levels (sockhost.h SOCKHOST_LOG_*).
ERROR, WARN, INFO, DEBUG, TRACE = 1, 2, 3, 4, 5


class LogWriter(io.TextIOBase):
    """sys.stdout / sys.stderr: each complete line is one log message."""

    def __init__(self, name, level):
        super().__init__()
        self.name = name
        self._level = level
        self._pending = ""
        self._lock = threading.Lock()

    def _take(self):
        """The buffer's lock; False if not had within a second: at exit a
        daemon thread the interpreter ended may have died holding it, and
        the last flush must not hang on it."""
        return self._lock.acquire(timeout=1.0)

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "backslashreplace"

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        raise io.UnsupportedOperation(f"{self.name} goes to sockhostd's log, not to a file")

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self._take():
            try:
                self._pending += text
                if "\n" not in self._pending:
                    return len(text)
                *lines, self._pending = self._pending.split("\n")
            finally:
                self._lock.release()
        else:
            lines = text.rstrip("\n").split("\n")
        for line in lines:
            _sockhost.log(self._level, line)
        return len(text)

    def flush(self):
        if not self._take():
            return
        try:
            rest, self._pending = self._pending, ""
        finally:
            self._lock.release()
        if rest:
            _sockhost.log(self._level, rest)


def relay_file(fd, name):
    """A real text file on (a dup of) the worker's log relay, as CPython's
    own sys.stdout/sys.stderr are: line-buffered, `.buffer`, `fileno()`."""
    f = open(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="backslashreplace",
             closefd=True)
    return f


# sd-daemon priorities (sd-daemon(3)) for logging's levels.
def _priority(levelno):
    return 2 if levelno >= 50 else 3 if levelno >= 40 else 4 if levelno >= 30 else \
        6 if levelno >= 20 else 7


def prioritise_last_resort(logging):
    """logging's lastResort handler (what a program that configures no
    logging gets: WARNING and above, the bare message, on sys.stderr) with
    each line given its sd-daemon priority, so the daemon logs an error as
    an error. A program's own configuration is never touched."""
    stock = logging.lastResort
    if stock is None:
        return

    class LastResort(type(stock)):
        def emit(self, record):
            try:
                text = self.format(record)
                prefix = "<%d>" % _priority(record.levelno)
                stream = self.stream
                stream.write("".join(prefix + line + "\n" for line in text.split("\n")))
                self.flush()
            except RecursionError:
                raise
            except Exception:
                self.handleError(record)

    logging.lastResort = LastResort(stock.level)


class WhenImported:
    """A sys.meta_path entry that calls `then(module)` right after module
    `name` is first imported, then leaves sys.meta_path. The module itself
    is found and loaded by the finders after it, unchanged."""

    def __init__(self, name, then):
        self._name = name
        self._then = then

    def find_spec(self, name, path=None, target=None):
        if name != self._name:
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        loader, then = spec.loader, self._then
        run = loader.exec_module

        def exec_module(module):
            run(module)
            then(module)

        loader.exec_module = exec_module
        return spec


def install_stdio(log_fd):
    """sys.stdout and sys.stderr: real files on the worker's log relay
    (each line a log record, info unless it starts with an sd-daemon <N>
    prefix), as a program under systemd has them; under sockhostd --check
    (no relay) writers into the daemon's log. logging is left as CPython
    has it; only its last-resort handler marks each line's priority (when
    logging is imported: a handler that never logs pays nothing for it)."""
    if log_fd >= 0:
        sys.stdout = sys.__stdout__ = relay_file(log_fd, "<stdout>")
        sys.stderr = sys.__stderr__ = relay_file(log_fd, "<stderr>")
    else:
        sys.stdout = LogWriter("<stdout>", INFO)
        sys.stderr = LogWriter("<stderr>", INFO)
    if "logging" in sys.modules:
        prioritise_last_resort(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, WhenImported("logging", prioritise_last_resort))


def flush_logs():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def join_until(deadline):
    """Join the running non-daemon threads (other than this one) until the
    `time.monotonic()` `deadline`, as threading._shutdown joins them, also
    those started meanwhile; return the ones still running then."""
    me = threading.current_thread()
    while True:
        alive = [t for t in threading.enumerate()
                 if t is not me and not t.daemon and t.is_alive()]
        if not alive:
            return []
        for t in alive:
            t.join(max(0.0, deadline - time.monotonic()))
        if time.monotonic() >= deadline:
            return [t for t in threading.enumerate()
                    if t is not me and not t.daemon and t.is_alive()]


def prepare_exit(budget):
    """Just before Py_FinalizeEx: flush the log writers, and make the
    interpreter's first exit step, threading._shutdown (threading's own
    at-exit calls, such as concurrent.futures stopping its workers, then a
    join of every non-daemon thread, with no time limit), wait at most
    `budget` seconds. A thread still running then is named in a warning and
    left behind as a daemon thread is: the rest of the exit (atexit
    functions, flushing, module teardown) runs without it."""
    flush_logs()
    deadline = time.monotonic() + budget
    stock = threading._shutdown

    def _shutdown():
        if hasattr(threading, "_SHUTTING_DOWN"):
            threading._SHUTTING_DOWN = True
        calls = getattr(threading, "_threading_atexits", None)
        if calls:
            for call in reversed(calls):
                call()
            calls.clear()
        late = join_until(deadline)
        if late:
            names = ", ".join(repr(t.name) for t in late)
            _sockhost.log(WARN, f"{len(late)} non-daemon threads still running at exit after "
                                f"shutdown_timeout ({names}); the interpreter ends without "
                                "waiting for them, as for daemon threads")
            return
        stock()

    threading._shutdown = _shutdown


def quiet_after_fork():
    """Fork mode, once per worker: let threading's after-fork hook skip its
    rebuild (new locks, a fresh thread table, every known thread's locks
    reset: about 120 dirtied pages per request child under 3.11) in the
    child of a fork for which the worker found it would change nothing
    (`_sockhost.fork_is_quiet()`, see fork.rs); any other fork runs it in
    full. The hook object os.register_at_fork holds is threading's own
    function, so its code is what changes. Only on the CPython whose hook
    this was checked against (3.11); False elsewhere, leaving it as is."""
    hook = getattr(threading, "_after_fork", None)
    if (sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11)
            or not isinstance(hook, types.FunctionType) or hook.__closure__
            or hook.__defaults__ or hook.__code__.co_argcount
            or hook.__code__.co_filename == quiet_after_fork.__code__.co_filename):
        return False
    full = types.FunctionType(hook.__code__, hook.__globals__, hook.__name__)

    def _after_fork(_full=full, _quiet=_sockhost.fork_is_quiet):
        if not _quiet():
            _full()

    hook.__code__ = _after_fork.__code__
    hook.__defaults__ = _after_fork.__defaults__
    return True


def threading_quiet():
    """Whether threading's after-fork rebuild would change nothing in the
    child of a fork made now, from this thread: no thread starting, this
    thread the only live one threading knows and its main thread (so the
    child's thread keeps its ident and entry), and every other Thread
    object still referenced already seen to have ended."""
    main = threading.main_thread()
    active = threading._active
    return (not threading._limbo and len(active) == 1
            and active.get(threading.get_ident()) is main
            and all(t is main or t._is_stopped for t in list(threading._dangling)))


def load(spec, what):
    """`module:Name` -> the object; errors say which key and what is wrong."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"[listener.config] {what} = {spec!r}: expected \"module:Class\"")
    module = __import__(module_name, fromlist=["_"])
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(
                f"[listener.config] {what} = {spec!r}: module {module_name!r} "
                f"({getattr(module, '__file__', '?')}) has no attribute {attr!r}") from None
    return obj


def load_handler(spec):
    cls = load(spec, "handler")
    if not (isinstance(cls, type) and issubclass(cls, socketserver.BaseRequestHandler)):
        raise TypeError(f"[listener.config] handler = {spec!r}: {cls!r} is not a "
                        "socketserver.BaseRequestHandler subclass")
    return cls


DEFAULT_SERVERS = {
    (socket.AF_INET, socket.SOCK_STREAM): socketserver.TCPServer,
    (socket.AF_INET6, socket.SOCK_STREAM): socketserver.TCPServer,
    (socket.AF_INET, socket.SOCK_DGRAM): socketserver.UDPServer,
    (socket.AF_INET6, socket.SOCK_DGRAM): socketserver.UDPServer,
    (socket.AF_UNIX, socket.SOCK_STREAM): socketserver.UnixStreamServer,
    (socket.AF_UNIX, socket.SOCK_DGRAM): socketserver.UnixDatagramServer,
}


def load_server(spec, family, socktype):
    if not spec:
        return DEFAULT_SERVERS[(family, socktype)]
    cls = load(spec, "server")
    if not (isinstance(cls, type) and issubclass(cls, socketserver.BaseServer)):
        raise TypeError(f"[listener.config] server = {spec!r}: {cls!r} is not a "
                        "socketserver.BaseServer subclass")
    return cls


# The server's steps (steps.py, compiled first as _sockhost_steps): what
# the plugin calls on this module.
from _sockhost_steps import (build_server, overrides, plan, child_server,  # noqa: E402,F401
                             serve_datagram, serve_stream, watch_modules)
