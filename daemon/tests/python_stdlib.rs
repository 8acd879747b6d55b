//! The standard library's own servers under the Python plugin, unchanged:
//! `http.server` (HTTPServer, ThreadingHTTPServer, SimpleHTTPRequestHandler
//! and a CGI script through CGIHTTPRequestHandler), `xmlrpc.server` and
//! `wsgiref` with a small WSGI app. Each reply must be the one CPython
//! gives serving the same classes (a `python3` started here), but for the
//! `Date:` header. They rely on the server class's own `server_bind`
//! (`server_name`, `server_port`, `base_environ`) and on the listener's
//! `directory` (the worker's working directory).

mod common;

use common::py::*;
use common::*;
use std::io::Write;

const APP: &str = r#"
import wsgiref.simple_server
from xmlrpc.server import SimpleXMLRPCServer


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    keys = ["SERVER_NAME", "PATH_INFO", "QUERY_STRING", "GATEWAY_INTERFACE", "SCRIPT_NAME",
            "wsgi.url_scheme"]
    return [" ".join(f"{k}={environ.get(k)!r}" for k in keys).encode() + b"\n"]


class WSGI(wsgiref.simple_server.WSGIServer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.set_app(app)


class RPC(SimpleXMLRPCServer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_function(lambda a, b: a + b, "add")
        self.register_function(pow)
        self.register_introspection_functions()
"#;

const CGI: &str = "#!/usr/bin/env python3
import os
print(\"Content-Type: text/plain\")
print()
print(\"cgi\", os.environ.get(\"QUERY_STRING\"), os.environ.get(\"SERVER_NAME\"),
      os.environ.get(\"SERVER_SOFTWARE\"), os.environ.get(\"REQUEST_METHOD\"))
";

/// One HTTP exchange: send `request`, read to the end, drop the `Date:`
/// header (the only part that may differ between two servers).
fn http(addr: &str, request: &str) -> String {
    let mut s = Stream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.write_all(request.as_bytes()).expect("send");
    let reply = s.read_all().unwrap_or_else(|e| panic!("read {addr}: {e}"));
    String::from_utf8_lossy(&reply)
        .split("\r\n")
        .filter(|l| !l.starts_with("Date: "))
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn get(addr: &str, path: &str) -> String {
    http(
        addr,
        &format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"),
    )
}

fn post(addr: &str, path: &str, body: &str) -> String {
    http(
        addr,
        &format!(
            "POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: text/xml\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// (name, mixin, handler, server) served by both.
const CASES: [(&str, &str, &str, &str); 6] = [
    (
        "files",
        "sync",
        "http.server:SimpleHTTPRequestHandler",
        "http.server:HTTPServer",
    ),
    (
        "tfiles",
        "thread",
        "http.server:SimpleHTTPRequestHandler",
        "http.server:ThreadingHTTPServer",
    ),
    (
        "cgi",
        "sync",
        "http.server:CGIHTTPRequestHandler",
        "http.server:HTTPServer",
    ),
    (
        "xmlrpc",
        "sync",
        "xmlrpc.server:SimpleXMLRPCRequestHandler",
        "app:RPC",
    ),
    (
        "wsgi",
        "sync",
        "wsgiref.simple_server:WSGIRequestHandler",
        "app:WSGI",
    ),
    (
        "twsgi",
        "thread",
        "wsgiref.simple_server:WSGIRequestHandler",
        "app:WSGI",
    ),
];

fn start() -> (Daemon, Reference) {
    let config: String = CASES
        .iter()
        .map(|(name, mixin, handler, server)| {
            py_listener(
                name,
                "inet",
                "stream",
                mixin,
                handler,
                "",
                &format!("server = \"{server}\""),
            )
        })
        .collect();
    let dir = TestDir::new("pystdlib");
    dir.write("app.py", APP);
    dir.write("www/hello.txt", "hello from www\n");
    dir.write("www/b.txt", "b\n");
    let script = dir.write("cgi-bin/hello.py", CGI);
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod the CGI script");
    let path = dir.write("sockhost.toml", &config);
    let d = Daemon::try_start_in(dir, path, &[])
        .unwrap_or_else(|f| panic!("daemon failed to start ({}):\n{}", f.status, f.log));
    let specs: Vec<_> = CASES
        .iter()
        .map(|(name, _, handler, server)| (*name, "inet", "stream", *handler, *server))
        .collect();
    let reference = Reference::start_servers(&d.dir.path, &specs);
    (d, reference)
}

/// Protects: HTTPServer and ThreadingHTTPServer with
/// SimpleHTTPRequestHandler serve the config's folder (the default
/// `directory`) exactly as CPython serves its working directory: a file,
/// a listing, a missing file.
#[test]
fn http_server_serves_files_as_cpython() {
    let (d, reference) = start();
    for name in ["files", "tfiles"] {
        for path in ["/www/hello.txt", "/www/", "/www/nothing"] {
            let ours = get(&d.addr(name), path);
            let theirs = get(&reference.addr(name), path);
            assert_eq!(ours, theirs, "{name} GET {path}\n{}", d.log());
        }
        assert!(
            get(&d.addr(name), "/www/hello.txt").ends_with("hello from www\n"),
            "{name}"
        );
    }
}

/// Protects: CGIHTTPRequestHandler runs a script (it needs the
/// `server_name` / `server_port` HTTPServer.server_bind sets), xmlrpc.server
/// answers calls and introspection, wsgiref's WSGIServer (its
/// `base_environ` from `setup_environ`) runs a WSGI app: each as CPython.
#[test]
fn cgi_xmlrpc_and_wsgi_answer_as_cpython() {
    let (d, reference) = start();
    let cgi = get(&d.addr("cgi"), "/cgi-bin/hello.py?x=1");
    assert!(
        cgi.contains("cgi x=1 localhost SimpleHTTP/"),
        "{cgi}\n{}",
        d.log()
    );
    assert_eq!(cgi, get(&reference.addr("cgi"), "/cgi-bin/hello.py?x=1"));
    let calls = [
        "<?xml version='1.0'?><methodCall><methodName>add</methodName><params>\
         <param><value><int>2</int></value></param><param><value><int>40</int></value></param>\
         </params></methodCall>",
        "<?xml version='1.0'?><methodCall><methodName>system.listMethods</methodName>\
         <params></params></methodCall>",
        "<?xml version='1.0'?><methodCall><methodName>nope</methodName><params></params>\
         </methodCall>",
    ];
    for call in calls {
        let ours = post(&d.addr("xmlrpc"), "/RPC2", call);
        assert_eq!(ours, post(&reference.addr("xmlrpc"), "/RPC2", call));
    }
    assert!(post(&d.addr("xmlrpc"), "/RPC2", calls[0]).contains("<int>42</int>"));
    for name in ["wsgi", "twsgi"] {
        let ours = get(&d.addr(name), "/a/b?c=d");
        assert!(
            ours.contains("SERVER_NAME='localhost' PATH_INFO='/a/b' QUERY_STRING='c=d'"),
            "{name}: {ours}\n{}",
            d.log()
        );
        assert_eq!(ours, get(&reference.addr(name), "/a/b?c=d"), "{name}");
    }
}

/// Protects: `directory` makes the worker serve that folder (relative to
/// the config's), so an unchanged SimpleHTTPRequestHandler serves it
/// whatever the daemon's own working directory; a missing one fails
/// `--check` naming the key.
#[test]
fn directory_is_the_workers_working_directory() {
    let cfg = py_listener(
        "www",
        "inet",
        "stream",
        "sync",
        "http.server:SimpleHTTPRequestHandler",
        "",
        "server = \"http.server:HTTPServer\"\ndirectory = \"www\"",
    );
    let d = start_with("pydir", &[("www/hello.txt", "hello from www\n")], &cfg);
    let reply = get(&d.addr("www"), "/hello.txt");
    assert!(reply.starts_with("HTTP/1.0 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nhello from www\n"), "{reply}");
    let bad = d.dir.write(
        "bad.toml",
        &cfg.replace("directory = \"www\"", "directory = \"nowhere\""),
    );
    let bad = bad.to_string_lossy().into_owned();
    let (code, _, err) = run_cli(&["--check", "-c", &bad]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("directory = ") && err.contains("nowhere"),
        "{err}"
    );
}
