"""sockhost's Python side: the few steps of socketserver the daemon does
not do itself, written in Python so they run exactly as socketserver runs
them (an exception is "being handled" when `handle_error` prints it).

Contract: `build_server` makes the server object a socketserver program
would have, without binding anything; `serve` is socketserver's
`finish_request` wrapped in the error handling of `_handle_request_noblock`
and `process_request_thread`; the writers and the logging handler send
text to the daemon's log through `_sockhost.log` and never to a file
descriptor. Nothing here starts a thread or touches the listening socket's
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


def route_logging(logging, level):
    """Give the root logger a handler that sends each record to the
    daemon's log (level mapped), and the daemon's level."""

    class LogHandler(logging.Handler):
        def emit(self, record):
            try:
                mapped = (ERROR if record.levelno >= logging.ERROR
                          else WARN if record.levelno >= logging.WARNING
                          else INFO if record.levelno >= logging.INFO
                          else DEBUG if record.levelno >= logging.DEBUG
                          else TRACE)
                _sockhost.log(mapped, self.format(record))
            except Exception:
                self.handleError(record)

    handler = LogHandler()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)


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


def install_logging(lowest_enabled):
    """Route print, sys.stdout, sys.stderr and logging into the daemon's log.
    The root logger's level follows the daemon's filter. `logging` is routed
    when it is imported (at once if it already is): a handler that never
    logs pays neither its memory nor its at-fork hooks in every child."""
    sys.stdout = LogWriter("<stdout>", INFO)
    sys.stderr = LogWriter("<stderr>", ERROR)
    level = {ERROR: 40, WARN: 30, INFO: 20}.get(lowest_enabled, 10)
    if "logging" in sys.modules:
        route_logging(sys.modules["logging"], level)
    else:
        sys.meta_path.insert(0, WhenImported("logging", lambda m: route_logging(m, level)))


def flush_logs():
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, LogWriter):
            stream.flush()


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


def configured_address(family, text, config_dir):
    """The listener's `address` as socketserver's server_address (used only
    when there is no socket to ask, under sockhostd --check)."""
    if family == socket.AF_UNIX:
        if text.startswith("@"):
            return b"\0" + text[1:].encode()
        return os.path.join(config_dir, text)
    host, _, port = text.rpartition(":")
    return (host.strip("[]"), int(port))


class _InheritedSocket:
    """The socket module as socketserver sees it while the server object is
    made: the new socket its __init__ opens is a dup of the daemon's
    listening socket instead, so no socket is created (a listener whose
    sandbox has network = "none" may not open an inet socket)."""

    def __init__(self, fd):
        self._fd = fd

    def __getattr__(self, name):
        return getattr(socket, name)

    def socket(self, family=-1, type=-1, proto=-1, fileno=None):
        if fileno is None and self._fd >= 0:
            fd, self._fd = os.dup(self._fd), -1
            return socket.socket(family, type, 0, fd)
        return socket.socket(family, type, proto, fileno)


def build_server(server_cls, handler_cls, family, socktype, address, config_dir, listen_fd):
    """The server object, as `server_cls(address, handler_cls,
    bind_and_activate=False)` makes it, then given the daemon's listening
    socket (a dup of it) and the attributes server_bind would set."""
    saved = socketserver.socket
    if listen_fd >= 0:
        socketserver.socket = _InheritedSocket(listen_fd)
    try:
        server = server_cls(configured_address(family, address, config_dir), handler_cls,
                            bind_and_activate=False)
    finally:
        socketserver.socket = saved
    if listen_fd >= 0:
        made = getattr(server, "socket", None)
        server.socket = socket.socket(family, socktype, 0, os.dup(listen_fd))
        if isinstance(made, socket.socket):
            made.close()
        server.server_address = server.socket.getsockname()
    server.address_family = family
    server.socket_type = socktype
    server.RequestHandlerClass = handler_cls
    return server


def overrides(server, name):
    """Whether `server` has its own `name` hook (not socketserver's no-op)."""
    mine = getattr(type(server), name, None)
    stock = {getattr(socketserver.BaseServer, name, None),
             getattr(socketserver.ForkingMixIn, name, None)}
    return mine not in stock


def serve(server, request, client_address):
    """One request: socketserver's finish_request with the error handling
    around it (handle_error while the exception is being handled, then
    shutdown_request). Returns None, or the exception's text.

    A thread-mode request runs on a thread CPython did not start, which
    threading sees as a daemon "dummy" thread; for the request it counts as
    ThreadingMixIn's request thread would (daemon only when the server's
    `daemon_threads` says so), so threads the handler starts are non-daemon
    by default, as under CPython, and the exit joins them."""
    me = threading.current_thread()
    foreign = isinstance(me, threading._DummyThread)
    if foreign:
        me._daemonic = bool(getattr(server, "daemon_threads", False))
    try:
        try:
            server.finish_request(request, client_address)
        except Exception as e:
            server.handle_error(request, client_address)
            return f"{type(e).__name__}: {e}"
        finally:
            server.shutdown_request(request)
        return None
    finally:
        if foreign:
            me._daemonic = True


def module_files(folders):
    """Source files of the loaded modules that live in `folders` (the
    listener's `path`): editing one restarts the listener on reload."""
    roots = [os.path.realpath(f) + os.sep for f in folders]
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            continue
        real = os.path.realpath(path)
        if any(real.startswith(root) for root in roots):
            files.add(real)
    return sorted(files)
