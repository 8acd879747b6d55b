//! Helpers for the Python-handler tests: the socketserver examples from
//! Python's documentation as a module, listeners running them under
//! `libsockhost_python.so`, and a reference: `python3` serving the same
//! classes with the stock socketserver servers, so replies can be compared
//! byte for byte. The reference process is killed when its handle drops.

use super::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The handler classes of Python's socketserver documentation (its
/// examples; MyTCPHandler's print copes with a unix client, which has no
/// host part), plus two that describe what a handler is
/// given (`ShapeStream`, `ShapeDgram`), whose replies must not differ
/// between CPython's servers and sockhostd either.
pub const EXAMPLES: &str = r#"
import socket
import socketserver


class MyTCPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.data = self.request.recv(1024).strip()
        print("{} wrote:".format(self.client_address[0] if isinstance(self.client_address, tuple) else self.client_address))
        print(self.data)
        self.request.sendall(self.data.upper())


class MyStreamHandler(socketserver.StreamRequestHandler):
    def handle(self):
        self.data = self.rfile.readline().strip()
        print("{} wrote:".format(self.client_address))
        print(self.data)
        self.wfile.write(self.data.upper())


class MyUDPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data = self.request[0].strip()
        socket = self.request[1]
        print("{} wrote:".format(self.client_address))
        print(data)
        socket.sendto(data.upper(), self.client_address)


class MyDatagramHandler(socketserver.DatagramRequestHandler):
    def handle(self):
        data = self.rfile.read().strip()
        self.wfile.write(data.upper() + b" " + str(len(data)).encode())


def shape(h):
    a, s = h.client_address, h.server
    parts = [type(a).__name__]
    if isinstance(a, tuple):
        parts += [len(a)] + [type(x).__name__ for x in a]
    if isinstance(h.request, tuple):
        parts += ["tuple", type(h.request[0]).__name__, type(h.request[1]).__name__,
                  h.request[1] is s.socket]
    else:
        parts += [type(h.request).__name__, int(h.request.family), int(h.request.type),
                  h.request.gettimeout()]
    parts += [int(s.address_family), int(s.socket_type), type(s.server_address).__name__,
              int(s.socket.family), int(s.socket.type), s.RequestHandlerClass.__name__,
              s.server_address == s.socket.getsockname()]
    return repr(parts).encode() + b"\n"


class ShapeStream(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.recv(100)
        self.request.sendall(shape(self))


class ShapeDgram(socketserver.BaseRequestHandler):
    def handle(self):
        self.request[1].sendto(shape(self), self.client_address)
"#;

/// The reference server: `python3 REF FOLDER SPECS`, SPECS a JSON list of
/// [name, family, type, "module:Class", address, "module:Server" or ""]
/// (the server class; "" for the stock one), run in FOLDER. Prints
/// `name address` for each, then READY, then serves until stdin closes.
const REFERENCE: &str = r#"
import importlib, json, os, socket, socketserver, sys, threading
sys.path.insert(0, sys.argv[1])
# Handlers print; their output must never reach the pipe the test stops
# reading after READY (a print there would fail the request).
out, sys.stdout = sys.stdout, open(os.devnull, "w")
stock = {("inet", "stream"): socketserver.TCPServer, ("inet", "dgram"): socketserver.UDPServer,
         ("unix", "stream"): socketserver.UnixStreamServer,
         ("unix", "dgram"): socketserver.UnixDatagramServer}
def load(spec):
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)
for name, family, kind, spec, address, server_spec in json.loads(sys.argv[2]):
    handler = load(spec)
    server_cls = stock[("unix" if family == "unix" else "inet", kind)]
    if server_spec:
        server_cls = load(server_spec)
    if family == "inet6":
        server_cls = type("V6", (server_cls,), {"address_family": socket.AF_INET6})
    if family == "unix":
        where = address
    else:
        host, _, port = address.rpartition(":")
        where = (host.strip("[]"), int(port))
    server = server_cls(where, handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    a = server.server_address
    shown = a if family == "unix" else (f"[{a[0]}]:{a[1]}" if family == "inet6" else f"{a[0]}:{a[1]}")
    print(name, shown, file=out, flush=True)
print("READY", file=out, flush=True)
sys.stdin.read()
"#;

/// The Python plugin the workspace built.
pub fn python_plugin() -> PathBuf {
    plugin("sockhost_python")
}

/// A listener bound to a free port (or `NAME.sock` in the config's folder
/// for unix), running `spec` ("module:Class") under the Python plugin.
/// `keys` go before `[listener.config]`, `config` inside it.
pub fn py_listener(
    name: &str,
    family: &str,
    ty: &str,
    mixin: &str,
    spec: &str,
    keys: &str,
    config: &str,
) -> String {
    let address = any_address(name, family);
    let extra = format!("{keys}\n[listener.config]\nhandler = \"{spec}\"\n{config}\n");
    listener(name, family, ty, &address, mixin, &python_plugin(), &extra)
}

/// `127.0.0.1:0`, `[::1]:0` or `NAME.sock`.
pub fn any_address(name: &str, family: &str) -> String {
    match family {
        "inet" => "127.0.0.1:0".into(),
        "inet6" => "[::1]:0".into(),
        _ => format!("{name}.sock"),
    }
}

/// Write `files` (name, text) and `config` into a fresh folder and start
/// the daemon there.
pub fn start_with(tag: &str, files: &[(&str, &str)], config: &str) -> Daemon {
    let dir = TestDir::new(tag);
    for (name, text) in files {
        dir.write(name, text);
    }
    let path = dir.write("sockhost.toml", config);
    Daemon::try_start_in(dir, path, &[])
        .unwrap_or_else(|f| panic!("daemon failed to start ({}):\n{}", f.status, f.log))
}

/// `python3` serving the same classes with the stock socketserver servers.
pub struct Reference {
    child: Child,
    pub addrs: HashMap<String, String>,
}

impl Reference {
    /// `specs`: (name, family, type, "module:Class"); modules come from
    /// `folder`, unix sockets are made there as `ref-NAME.sock`.
    pub fn start(folder: &Path, specs: &[(String, String, String, String)]) -> Reference {
        let with: Vec<_> = specs
            .iter()
            .map(|(n, f, t, s)| (n.as_str(), f.as_str(), t.as_str(), s.as_str(), ""))
            .collect();
        Reference::start_servers(folder, &with)
    }

    /// As `start`, each with a server class ("module:Class", or "" for
    /// the stock one): (name, family, type, handler, server).
    pub fn start_servers(folder: &Path, specs: &[(&str, &str, &str, &str, &str)]) -> Reference {
        let list: Vec<String> = specs
            .iter()
            .map(|(name, family, ty, spec, server)| {
                let address = match *family {
                    "unix" => folder
                        .join(format!("ref-{name}.sock"))
                        .display()
                        .to_string(),
                    other => any_address(name, other),
                };
                format!(
                    "[\"{name}\", \"{family}\", \"{ty}\", \"{spec}\", \"{address}\", \"{server}\"]"
                )
            })
            .collect();
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(REFERENCE)
            .arg(folder)
            .arg(format!("[{}]", list.join(", ")))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(folder)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run python3 (the reference socketserver)");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let done = line == "READY";
                let _ = tx.send(line);
                if done {
                    break;
                }
            }
        });
        let mut addrs = HashMap::new();
        loop {
            match rx.recv_timeout(DEADLINE) {
                Ok(line) if line == "READY" => break,
                Ok(line) => {
                    if let Some((name, addr)) = line.split_once(' ') {
                        addrs.insert(name.to_string(), addr.to_string());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the reference python3 did not start");
                }
            }
        }
        Reference { child, addrs }
    }

    pub fn addr(&self, name: &str) -> String {
        self.addrs
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("reference has no {name}: {:?}", self.addrs))
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One stream request: send `payload`, close the write side, read to EOF.
pub fn stream_exchange(addr: &str, payload: &[u8]) -> Vec<u8> {
    let mut s = Stream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.write_all(payload).expect("send");
    s.shutdown_write();
    s.read_all()
        .unwrap_or_else(|e| panic!("read from {addr}: {e}"))
}

/// One datagram request: send `payload`, wait for one reply.
pub fn dgram_exchange(addr: &str, dir: &Path, payload: &[u8]) -> Vec<u8> {
    let d = Dgram::connect(addr, dir);
    d.send(payload).expect("send datagram");
    d.recv()
        .unwrap_or_else(|e| panic!("no reply from {addr}: {e}"))
}

/// Send SIGHUP and wait for its outcome line (`reload done ...` or
/// `reload failed ...`), which is returned.
pub fn reload_outcome(d: &Daemon) -> String {
    let count =
        |log: &str| log.matches("reload done").count() + log.matches("reload failed").count();
    let before = count(&d.log());
    d.signal(libc::SIGHUP);
    let line = wait_for(DEADLINE, || {
        let log = d.log();
        (count(&log) > before).then(|| {
            log.lines()
                .rfind(|l| l.contains("reload done") || l.contains("reload failed"))
                .unwrap_or_default()
                .to_string()
        })
    });
    line.unwrap_or_else(|| panic!("no reload outcome within the deadline:\n{}", d.log()))
}
