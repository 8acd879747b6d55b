//! TLS server classes under the Python plugin, the two usual ways a
//! socketserver program adds TLS: wrapping the server's socket in
//! `__init__`, and wrapping each accepted connection in `get_request`.
//! In every mixin a TLS client is served as CPython serves it, and a
//! plaintext client is never answered in clear (the handshake fails and
//! the connection is dropped, as under CPython). The certificate is made
//! here with `openssl req`.

mod common;

use common::py::*;
use common::*;
use std::io::Write;
use std::process::Command;

const APP: &str = r#"
import os, socketserver, ssl

HERE = os.path.dirname(os.path.abspath(__file__))


def context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(HERE, "cert.pem"), os.path.join(HERE, "key.pem"))
    return ctx


class WrapInInit(socketserver.TCPServer):
    def __init__(self, address, handler, bind_and_activate=True):
        super().__init__(address, handler, False)
        self.socket = context().wrap_socket(self.socket, server_side=True)
        if bind_and_activate:
            self.server_bind()
            self.server_activate()


class WrapInGetRequest(socketserver.TCPServer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ctx = context()

    def get_request(self):
        sock, address = self.socket.accept()
        return self.ctx.wrap_socket(sock, server_side=True), address


class Upper(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline()
        self.wfile.write(line.upper() + self.request.version().encode() + b"\n")
"#;

/// `python3 CLIENT CAFILE HOST PORT`: one TLS exchange, the reply on stdout.
const CLIENT: &str = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
ctx.check_hostname = False
with socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=20) as raw:
    with ctx.wrap_socket(raw) as s:
        s.sendall(b"hello tls\n")
        out = b""
        while True:
            chunk = s.recv(1000)
            if not chunk:
                break
            out += chunk
sys.stdout.write(out.decode())
"#;

fn tls_exchange(cafile: &std::path::Path, addr: &str) -> String {
    let (host, port) = addr.rsplit_once(':').expect("HOST:PORT");
    let out = Command::new("python3")
        .arg("-c")
        .arg(CLIENT)
        .arg(cafile)
        .arg(host)
        .arg(port)
        .output()
        .expect("run the python3 TLS client");
    assert!(
        out.status.success(),
        "TLS client to {addr} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A plaintext client: what it reads back before the server closes.
fn plaintext_exchange(addr: &str) -> Vec<u8> {
    let mut s = Stream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let _ = s.write_all(b"hello plain\n");
    s.shutdown_write();
    s.read_all().unwrap_or_default()
}

const CLASSES: [&str; 2] = ["WrapInInit", "WrapInGetRequest"];

/// Protects: a server class that wraps its socket in TLS, in `__init__`
/// or in `get_request`, serves TLS clients as CPython does in every mixin
/// and never answers a plaintext client in clear.
#[test]
fn tls_server_classes_serve_tls_and_refuse_plaintext() {
    if !tool_or_skip("openssl", "openssl", "SOCKHOST_REQUIRE_OPENSSL") {
        return;
    }
    let dir = TestDir::new("pytls");
    dir.write("app.py", APP);
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ])
        .current_dir(&dir.path)
        .output()
        .expect("run openssl req");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let mut cases = Vec::new();
    let mut config = String::new();
    for mixin in ["sync", "thread", "fork"] {
        for class in CLASSES {
            let name = format!("{}_{mixin}", class.to_lowercase());
            let server = format!("server = \"app:{class}\"");
            config += &py_listener(&name, "inet", "stream", mixin, "app:Upper", "", &server);
            cases.push((name, format!("app:{class}")));
        }
    }
    let path = dir.write("sockhost.toml", &config);
    let d = Daemon::try_start_in(dir, path, &[])
        .unwrap_or_else(|f| panic!("daemon failed to start ({}):\n{}", f.status, f.log));
    let specs: Vec<_> = cases
        .iter()
        .map(|(name, class)| (name.as_str(), "inet", "stream", "app:Upper", class.as_str()))
        .collect();
    let reference = Reference::start_servers(&d.dir.path, &specs);
    let cafile = d.dir.join("cert.pem");
    for (name, _) in &cases {
        let ours = tls_exchange(&cafile, &d.addr(name));
        assert!(
            ours.starts_with("HELLO TLS\nTLSv1."),
            "{name}: {ours:?}\n{}",
            d.log()
        );
        assert_eq!(ours, tls_exchange(&cafile, &reference.addr(name)), "{name}");
        let plain = plaintext_exchange(&d.addr(name));
        assert!(
            !String::from_utf8_lossy(&plain).contains("HELLO"),
            "{name}: a plaintext client was answered in clear: {plain:?}"
        );
        assert_eq!(plain, plaintext_exchange(&reference.addr(name)), "{name}");
        // Still serving TLS after refusing a plaintext client.
        assert!(tls_exchange(&cafile, &d.addr(name)).starts_with("HELLO TLS\n"));
    }
}

/// Protects: a server class whose socket sockhost cannot carry over (a
/// wrapper that is not an ssl.SSLSocket) or that overrides a step the
/// daemon runs itself (`serve_forever`) is refused by `--check`, naming
/// what, rather than served without it.
#[test]
fn server_steps_sockhost_cannot_run_are_refused_at_check() {
    let app = r#"
import socketserver

class Wrapper:
    def __init__(self, sock):
        self.sock = sock
    def __getattr__(self, name):
        return getattr(self.sock, name)

class Odd(socketserver.TCPServer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.socket = Wrapper(self.socket)

class Loop(socketserver.TCPServer):
    def serve_forever(self, poll_interval=0.5):
        pass

class H(socketserver.BaseRequestHandler):
    def handle(self):
        pass
"#;
    let dir = TestDir::new("pytlscheck");
    dir.write("app.py", app);
    for (class, needle) in [
        ("Odd", "__init__ made the server's socket a app.Wrapper"),
        ("Loop", "overrides serve_forever()"),
    ] {
        let server = format!("server = \"app:{class}\"");
        let cfg = py_listener("x", "inet", "stream", "sync", "app:H", "", &server);
        let path = dir.write(&format!("{class}.toml"), &cfg);
        let (code, _, err) = run_cli(&["--check", "-c", &path.to_string_lossy()]);
        assert_eq!(code, 1, "{class}: {err}");
        assert!(err.contains(needle), "{class}: no {needle:?} in {err}");
    }
}
