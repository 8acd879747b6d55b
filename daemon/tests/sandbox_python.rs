//! A Python socketserver handler under `[listener.sandbox] mode =
//! "enforce"`: the interpreter starts in the box (its standard library and
//! the listener's `path` are granted), the handler serves in thread and
//! fork mode, reads its own folder, gets EACCES for a file beside the
//! config and EAFNOSUPPORT for a new inet socket, and the log names the
//! blocked socket; the listener's `directory` is readable and not
//! writable unless `read_write` lists it. Needs Landlock ABI 6: SKIPPED
//! otherwise.

mod common;
use common::life::{has_line, wait_until};
use common::py::*;
use common::*;

const APP: &str = r#"
import os, socket, socketserver

class Probe(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            cmd = line.decode().strip()
            if cmd.startswith("READ "):
                try:
                    with open(cmd[5:]) as f:
                        reply = "OK %d" % len(f.read())
                except OSError as e:
                    reply = "ERR %d" % e.errno
            elif cmd.startswith("WRITE "):
                try:
                    with open(cmd[6:], "w") as f:
                        f.write("x")
                    reply = "OK"
                except OSError as e:
                    reply = "ERR %d" % e.errno
            elif cmd == "CWD":
                reply = os.getcwd()
            elif cmd == "SOCKET":
                try:
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
                    reply = "OK"
                except OSError as e:
                    reply = "ERR %d" % e.errno
            else:
                reply = cmd.upper()
            self.wfile.write((reply + "\n").encode())
"#;

// Protects: the Python plugin runs in the box it promises: stdlib and path
// readable, everything else and new inet sockets refused, and reported.
#[test]
fn a_python_handler_serves_under_enforce_and_is_boxed() {
    if !common::sec::landlock_or_skip() {
        return;
    }
    let sandbox = "[listener.sandbox]\nmode = \"enforce\"\nnetwork = \"none\"";
    let mut cfg = String::new();
    for m in ["thread", "fork"] {
        let name = format!("py-{m}");
        cfg += &py_listener(
            &name,
            "inet",
            "stream",
            m,
            "app:Probe",
            sandbox,
            "path = [\"app\"]",
        );
    }
    let d = start_with(
        "sandbox-py",
        &[("app/app.py", APP), ("secret.txt", "secret\n")],
        &cfg,
    );
    let folder = d.config.parent().expect("config folder").to_path_buf();
    let own = folder.join("app/app.py").display().to_string();
    let secret = folder.join("secret.txt").display().to_string();
    for m in ["thread", "fork"] {
        let name = format!("py-{m}");
        let mut p = Probe::connect(&d.addr(&name));
        assert_eq!(p.cmd("hello"), "HELLO", "{name} serves:\n{}", d.log());
        assert!(
            p.cmd(&format!("READ {own}")).starts_with("OK "),
            "{name} reads its path"
        );
        assert_eq!(
            p.cmd(&format!("READ {secret}")),
            "ERR 13",
            "{name}: EACCES beside the config"
        );
        assert_eq!(
            p.cmd("SOCKET"),
            "ERR 97",
            "{name}: EAFNOSUPPORT for a new inet socket"
        );
        let needles = [
            "sandbox blocked socket(AF_INET, SOCK_DGRAM)",
            &format!("listener {name} pid"),
        ];
        assert!(
            wait_until(DEADLINE, || has_line(&d.log(), &needles)),
            "{name}: the blocked socket is logged:\n{}",
            d.log()
        );
    }
}

// Protects: the Python listener's `directory` (what SimpleHTTPRequestHandler
// serves) is readable under enforce but not writable, unless `read_write`
// lists it; the folder beside it stays closed.
#[test]
fn the_python_directory_is_readable_and_writable_only_when_listed() {
    if !common::sec::landlock_or_skip() {
        return;
    }
    let boxed = |extra: &str| {
        format!("[listener.sandbox]\nmode = \"enforce\"\nnetwork = \"none\"\n{extra}")
    };
    let config = "path = [\"app\"]\ndirectory = \"www\"";
    let mut cfg = py_listener(
        "ro",
        "inet",
        "stream",
        "thread",
        "app:Probe",
        &boxed(""),
        config,
    );
    cfg += &py_listener(
        "rw",
        "inet",
        "stream",
        "fork",
        "app:Probe",
        &boxed("read_write = [\"www\"]"),
        config,
    );
    let d = start_with(
        "sandbox-pydir",
        &[
            ("app/app.py", APP),
            ("www/index.html", "<p>hello</p>\n"),
            ("other/secret.txt", "secret\n"),
        ],
        &cfg,
    );
    let folder = d.config.parent().expect("config folder").to_path_buf();
    let www = folder.join("www").display().to_string();
    let secret = folder.join("other/secret.txt").display().to_string();
    for (name, writes) in [("ro", "ERR 13"), ("rw", "OK")] {
        let mut p = Probe::connect(&d.addr(name));
        assert_eq!(p.cmd("CWD"), www, "{name}: works in its directory");
        assert_eq!(p.cmd("READ index.html"), "OK 13", "{name}:\n{}", d.log());
        assert_eq!(
            p.cmd("WRITE new.txt"),
            writes,
            "{name} writes its directory"
        );
        assert_eq!(p.cmd(&format!("READ {secret}")), "ERR 13", "{name}: closed");
    }
}
