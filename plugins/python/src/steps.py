"""sockhost's Python side, the server's steps: the server object a
socketserver program would have, on the daemon's listening socket, and one
request through the class's own get_request, verify_request,
process_request (or finish_request), handle_error and shutdown_request, as
`_handle_request_noblock` runs them after the daemon took the request
(glue.py imports what the plugin calls from here).

Contract: nothing here binds, listens on or accepts from the listening
socket: `build_server` gives the class the daemon's socket with bind and
listen made no-ops and accept / recvfrom handing over what the daemon took;
a class step the daemon would skip, or a socket wrapper it cannot carry
over, is refused with an exception naming it, never served without it (a
TLS server is never served in clear). Modules loaded from the listener's
`path` are named to the daemon (`watch_modules`) for reload.
"""

import os
import signal
import socket
import socketserver
import sys
import threading

import _sockhost

INFO = 3   # sockhost.h SOCKHOST_LOG_INFO


def configured_address(family, text, config_dir):
    """The listener's `address` as socketserver's server_address (what the
    class is constructed with; server_bind then reads the real one)."""
    if family == socket.AF_UNIX:
        if text.startswith("@"):
            return b"\0" + text[1:].encode()
        return os.path.join(config_dir, text)
    host, _, port = text.rpartition(":")
    return (host.strip("[]"), int(port))


# Server methods sockhost does not run, because the daemon runs that step
# itself: a class that overrides one is refused (its code would be skipped).
NOT_RUN = {
    "serve_forever": "the daemon runs the serve loop",
    "handle_request": "the daemon takes each request",
    "_handle_request_noblock": "the daemon takes each request",
}

# What one request thread (or the worker's only thread) is handed: the
# connection or datagram the daemon took, for server.socket.accept() /
# recvfrom() inside get_request; `inline`: a mixin's process_request runs
# the request here (the daemon has dispatched it already).
_here = threading.local()

# The server sockhost serves, the pid of the worker serving it (None under
# sockhostd --check) and its mixin.
SERVED = {"server": None, "worker": None, "mixin": "sync"}


class HostSocket(socket.socket):
    """The daemon's listening socket as `server.socket`: a real socket
    (a dup of the listening one) whose bind and listen do nothing, as the
    daemon bound it already, and whose accept / recvfrom hand over what the
    daemon took for this request (see `adopt`)."""


def _handed_connection():
    pair = getattr(_here, "conn", None)
    if pair is None:
        raise BlockingIOError(11, "sockhost: no connection is waiting on this listening socket "
                                  "(the daemon accepts them; accept() is for get_request)")
    _here.conn = None
    return pair


def _handed_datagram(bufsize, flags=0):
    pair = getattr(_here, "datagram", None)
    if pair is None:
        raise BlockingIOError(11, "sockhost: no datagram is waiting on this socket "
                                  "(the daemon receives them; recvfrom() is for get_request)")
    _here.datagram = None
    data, address = pair
    return data[:bufsize], address


def _no_bind(address):
    """The daemon bound the listening socket already."""


def _no_listen(backlog=None):
    """The daemon's listening socket listens already (request_queue_size in
    the listener's config)."""


def adopt(sock, what):
    """Make `sock` (a HostSocket, or an ssl.SSLSocket made on one) hand
    over the daemon's connections and datagrams and ignore bind/listen.
    `what` names the step that made it, for the refusal."""
    try:
        slots = vars(sock)
    except TypeError:
        raise TypeError(f"the server's socket after {what} is a {type(sock).__module__}."
                        f"{type(sock).__qualname__}, which sockhost cannot give the daemon's "
                        "listening socket to: it serves only a socket.socket or an "
                        "ssl.SSLSocket there") from None
    slots["bind"] = _no_bind
    slots["listen"] = _no_listen
    slots["_accept"] = _handed_connection
    slots["recvfrom"] = _handed_datagram


def carry_over(made, host):
    """The server's socket: `host` (the daemon's listening socket), wrapped
    as the class wrapped the socket its __init__ made (TLS), never less."""
    if made is None or type(made) in (socket.socket, HostSocket):
        return host
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(made, ssl.SSLSocket):
        return made.context.wrap_socket(
            host, server_side=made.server_side,
            do_handshake_on_connect=made.do_handshake_on_connect,
            suppress_ragged_eofs=made.suppress_ragged_eofs)
    raise TypeError(f"__init__ made the server's socket a {type(made).__module__}."
                    f"{type(made).__qualname__}; sockhost can carry over only a socket.socket "
                    "or an ssl.SSLSocket wrapping (it will not serve such a server unwrapped)")


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


def build_server(server_cls, handler_cls, family, socktype, address, config_dir, listen_fd,
                 mixin):
    """The server object, as `server_cls(address, handler_cls)` makes it,
    on the daemon's listening socket: constructed with
    `bind_and_activate=False`, its socket replaced by the listening socket
    (TLS-wrapped again when __init__ wrapped it), then its own
    `server_bind()` and `server_activate()` run, with bind and listen
    doing nothing. A step sockhost would skip is refused."""
    for name, why in NOT_RUN.items():
        if overrides(server_cls, name):
            raise TypeError(f"[listener.config] server: {server_cls.__qualname__} overrides "
                            f"{name}(), which sockhost never calls ({why}); move that code "
                            "to service_actions, process_request or the handler")
    saved = socketserver.socket
    if listen_fd >= 0:
        socketserver.socket = _InheritedSocket(listen_fd)
    try:
        server = server_cls(configured_address(family, address, config_dir), handler_cls,
                            bind_and_activate=False)
    finally:
        socketserver.socket = saved
    made = getattr(server, "socket", None)
    if listen_fd >= 0:
        host = HostSocket(family, socktype, 0, os.dup(listen_fd))
    else:
        host = HostSocket(family, socktype, 0)
    try:
        sock = carry_over(made, host)
    except BaseException:
        host.close()
        raise
    adopt(sock, "__init__")
    if isinstance(made, socket.socket) and made is not sock:
        made.close()
    server.socket = sock
    server.address_family = family
    server.socket_type = socktype
    server.RequestHandlerClass = handler_cls
    if listen_fd >= 0:
        server.server_address = sock.getsockname()
    if hasattr(server, "server_bind"):     # BaseServer itself has none
        server.server_bind()
    server.server_activate()
    if server.socket is not sock:
        # server_bind/server_activate wrapped it (TLS): the wrapper must
        # sit on the listening socket and hand over as well.
        now = server.socket
        if not isinstance(now, socket.socket) or now.fileno() != sock.fileno():
            raise TypeError(f"server_bind/server_activate replaced the server's socket with "
                            f"{now!r}; sockhost serves only the daemon's listening socket")
        adopt(now, "server_bind/server_activate")
    elif type(sock) is HostSocket and not overrides(server, "get_request"):
        # Nothing will ask it for a connection: serve on a plain
        # socket.socket, exactly the type CPython's server has.
        server.socket = socket.socket(family, socktype, 0, sock.detach())
    SERVED.update(server=server, worker=os.getpid() if listen_fd >= 0 else None, mixin=mixin)
    return server


def plan(server, datagram):
    """Which of the server's steps a request must go through in Python:
    (get_request, verify_request, process_request)."""
    wrapped = type(server.socket) not in (socket.socket, HostSocket)
    accept = overrides(server, "get_request") or (wrapped and not datagram)
    verify = overrides(server, "verify_request") and not datagram
    return (accept, verify, overrides(server, "process_request"))


def stop_worker(why):
    """Stop serving as serve_forever returning would: the worker finishes
    its requests, runs server_close and exits; the daemon starts a new one."""
    worker = SERVED["worker"]
    _sockhost.log(INFO, f"{why}: this worker stops serving (server_close, then exit); "
                        "the daemon starts a fresh one on the same listening socket")
    if worker is not None:
        os.kill(worker, signal.SIGTERM)


def _install_server_patches():
    """socketserver's steps that differ for the served server (and only
    for it: another server the program runs itself is left alone):
    `shutdown()` stops the worker instead of waiting for a serve_forever
    that is the daemon's; ThreadingMixIn's / ForkingMixIn's
    process_request runs the request where the daemon dispatched it."""
    base = socketserver.BaseServer
    stock_shutdown = base.shutdown

    def shutdown(self):
        if self is SERVED["server"]:
            stop_worker("server.shutdown()")
            return
        stock_shutdown(self)

    base.shutdown = shutdown
    for mixin in (socketserver.ThreadingMixIn, getattr(socketserver, "ForkingMixIn", None)):
        if mixin is None:
            continue

        def process_request(self, request, client_address, _stock=mixin.process_request):
            if getattr(_here, "inline", False) and self is SERVED["server"]:
                return base.process_request(self, request, client_address)
            return _stock(self, request, client_address)

        mixin.process_request = process_request
        STOCK_FUNCS.add(process_request)
    STOCK_FUNCS.add(shutdown)


STOCK = [socketserver.BaseServer, socketserver.TCPServer, socketserver.UDPServer,
         socketserver.ThreadingMixIn] + (
    [socketserver.ForkingMixIn] if hasattr(socketserver, "ForkingMixIn") else [])
STOCK_FUNCS = set()


def _overridden(cls, name):
    mine = getattr(cls, name, None)
    return mine is not None and mine not in STOCK_FUNCS and mine not in {
        getattr(base, name, None) for base in STOCK}


def overrides(server, name):
    """Whether `server` (an instance or a class) has its own `name`, not
    socketserver's (nor the stand-ins above)."""
    return _overridden(server if isinstance(server, type) else type(server), name)

_install_server_patches()


def _failed(server, request, client_address, e):
    """socketserver's `except Exception` around process_request: the
    server's handle_error while the exception is being handled, then
    shutdown_request. Returns the text for the daemon, or None when the
    program's own handle_error dealt with it."""
    try:
        server.handle_error(request, client_address)
    finally:
        server.shutdown_request(request)
    if overrides(server, "handle_error"):
        return None
    return f"{type(e).__name__}: {e}"


def _system_exit(server, e):
    """SystemExit from a handler, as each mixin's CPython server treats it:
    sync: serve_forever ends (the worker stops); thread: the request thread
    ends quietly; fork: the request child ends with status 1."""
    mixin = SERVED["mixin"]
    if mixin == "sync":
        stop_worker(f"SystemExit({e.code!r}) from a handler")
        return None
    if mixin == "thread":
        return None
    return f"SystemExit: {e.code!r}"


def serve(server, request, client_address, steps=(False, False, False)):
    """One request, as socketserver's `_handle_request_noblock` after its
    get_request: verify_request (stream listeners whose class has its own,
    with the real socket), process_request (the class's own, with the
    mixin's dispatch already done by the daemon) or finish_request +
    shutdown_request, with handle_error for an exception. Returns None,
    False when verify_request refused the client (the daemon counts a
    refusal), or the failure's text for the daemon's log.

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
        _, verify, process = steps
        if verify and not server.verify_request(request, client_address):
            server.shutdown_request(request)
            return False
        try:
            if process:
                _here.inline = True
                try:
                    server.process_request(request, client_address)
                finally:
                    _here.inline = False
            else:
                server.finish_request(request, client_address)
                watch_modules()
                server.shutdown_request(request)
        except Exception as e:
            return _failed(server, request, client_address, e)
        except SystemExit as e:
            server.shutdown_request(request)
            return _system_exit(server, e)
        except BaseException:
            server.shutdown_request(request)
            raise
        return None
    finally:
        watch_modules()
        if foreign:
            me._daemonic = True


def serve_stream(server, fd, client_address, steps):
    """A connection the daemon accepted (`fd`, ours to close): through the
    class's get_request when it has one or wraps the socket (TLS), which
    gets it from server.socket.accept(); a get_request that fails with
    OSError (a TLS handshake a plaintext client fails) drops the
    connection quietly, as socketserver does."""
    if steps[0]:
        _here.conn = (fd, client_address)
        try:
            request, client_address = server.get_request()
        except OSError:
            return None
        finally:
            if getattr(_here, "conn", None) is not None:
                _here.conn = None
                os.close(fd)
    else:
        request = socket.socket(server.socket.family, socket.SOCK_STREAM, 0, fd)
    return serve(server, request, client_address, steps)


def child_server(server):
    """The serve step for a fork-mode request child of a stream server
    whose class has none of its own get_request, verify_request or
    process_request: ForkingMixIn's child step for step (finish_request,
    then shutdown_request, with handle_error for an exception), as
    serve_stream would run it, with fewer frames and objects so the child
    copies fewer pages: the socket's family is an int found once here (no
    enum lookup in the child), the socket class and constants are bound."""

    def serve_child(server, fd, client_address, steps, new=socket.socket,
                    family=int(server.socket.family), stream=int(socket.SOCK_STREAM)):
        request = new(family, stream, 0, fd)
        try:
            server.finish_request(request, client_address)
        except Exception as e:
            return _failed(server, request, client_address, e)
        except SystemExit as e:
            server.shutdown_request(request)
            return _system_exit(server, e)
        except BaseException:
            server.shutdown_request(request)
            raise
        finally:
            watch_modules()
        server.shutdown_request(request)
        return None

    return serve_child


def serve_datagram(server, data, client_address, steps):
    """A datagram: `(data, server.socket)`, or what the class's get_request
    makes of it (server.socket.recvfrom hands it over); data beyond the
    class's max_packet_size is cut, as recvfrom(max_packet_size) cuts it."""
    if steps[0]:
        _here.datagram = (data, client_address)
        try:
            request, client_address = server.get_request()
        except OSError:
            return None
        finally:
            _here.datagram = None
    else:
        size = getattr(server, "max_packet_size", len(data))
        request = (data[:size], server.socket)
    return serve(server, request, client_address, steps)


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



# The listener's `path` folders, the module files named to the daemon so
# far and how many modules sys.modules held when last looked at.
_watch = {"folders": [], "reported": set(), "seen": 0}
_watch_lock = threading.Lock()


def watch_modules(folders=None):
    """Name the files of modules loaded from the listener's `path` since the
    last call to the daemon (`depends_on`), so editing one restarts the
    listener on reload. Costs a length check when no module was loaded."""
    if folders is not None:
        _watch["folders"] = list(folders)
    if len(sys.modules) == _watch["seen"]:
        return
    with _watch_lock:
        _watch["seen"] = len(sys.modules)
        fresh = [f for f in module_files(_watch["folders"]) if f not in _watch["reported"]]
        _watch["reported"].update(fresh)
    for f in fresh:
        _sockhost.depends_on(f)
