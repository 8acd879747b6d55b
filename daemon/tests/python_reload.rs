//! Python listeners and their modules over the daemon's life: a module
//! that does not import, a missing class or one that is not a
//! BaseRequestHandler fails `--check` (exit 1) and rolls a SIGHUP back,
//! with the Python error in the message; editing a handler's `.py` (or a
//! module it imports from `path`) makes the next SIGHUP restart that
//! listener on the new code, while a listener whose modules are unchanged
//! is kept; so does editing a module first imported inside `handle`.

mod common;

use common::py::*;
use common::*;

const GOOD: &str = r#"
import socketserver, helper

class Reply(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"version one " + helper.TAG + b"\n")

class NotAHandler:
    pass
"#;

const HELPER: &str = "TAG = b'helper-a'\n";

const OTHER: &str = r#"
import socketserver

class Other(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"other\n")
"#;

fn reply(d: &Daemon, name: &str) -> String {
    String::from_utf8_lossy(&stream_exchange(&d.addr(name), b"x\n")).into_owned()
}

fn check(spec: &str, files: &[(&str, &str)]) -> (i32, String) {
    let dir = TestDir::new("pycheck");
    for (name, text) in files {
        dir.write(name, text);
    }
    let cfg = py_listener("bad", "inet", "stream", "sync", spec, "", "");
    let path = dir.write("sockhost.toml", &cfg);
    let (code, out, err) = run_cli(&["--check", "-c", &path.display().to_string()]);
    (code, format!("{out}{err}"))
}

/// Protects: `--check` loads the module and class like the worker does:
/// each kind of failure exits 1 with the Python error; a good one passes.
#[test]
fn check_reports_python_errors() {
    let broken = "import socketserver\nraise RuntimeError('import-time failure')\n";
    type Files<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Files, &str); 5] = [
        (
            "nosuch:Handler",
            &[],
            "ModuleNotFoundError: No module named 'nosuch'",
        ),
        (
            "broken:H",
            &[("broken.py", broken)],
            "RuntimeError: import-time failure",
        ),
        ("syntax:H", &[("syntax.py", "class H(:\n")], "SyntaxError"),
        (
            "app:Nope",
            &[("app.py", GOOD), ("helper.py", HELPER)],
            "has no attribute 'Nope'",
        ),
        (
            "app:NotAHandler",
            &[("app.py", GOOD), ("helper.py", HELPER)],
            "is not a socketserver.BaseRequestHandler subclass",
        ),
    ];
    for (spec, files, needle) in cases {
        let (code, text) = check(spec, files);
        assert_eq!(code, 1, "{spec}: {text}");
        assert!(text.contains(needle), "{spec}: no {needle:?} in {text}");
    }
    let (code, text) = check("app:Reply", &[("app.py", GOOD), ("helper.py", HELPER)]);
    assert_eq!(code, 0, "{text}");
}

/// Protects: a reload to a bad handler (import error, missing class, not
/// a handler) rolls back with the Python error logged; the old code
/// keeps serving.
#[test]
fn a_bad_handler_rolls_a_reload_back() {
    let good = py_listener("py", "inet", "stream", "sync", "app:Reply", "", "");
    let files = [("app.py", GOOD), ("helper.py", HELPER)];
    let d = start_with("pyroll", &files, &good);
    assert_eq!(reply(&d, "py"), "version one helper-a\n");
    for (spec, needle) in [
        ("gone:Reply", "No module named 'gone'"),
        ("app:Missing", "has no attribute 'Missing'"),
        (
            "app:NotAHandler",
            "is not a socketserver.BaseRequestHandler subclass",
        ),
    ] {
        let bad = good.replace("app:Reply", spec);
        std::fs::write(&d.config, bad).expect("write config");
        let outcome = reload_outcome(&d);
        assert!(outcome.contains("reload failed"), "{spec}: {outcome}");
        assert!(outcome.contains(needle), "{spec}: {outcome}");
        assert_eq!(
            reply(&d, "py"),
            "version one helper-a\n",
            "{spec}: old code serves"
        );
    }
    d.stop();
}

/// Protects: after editing the handler's module, or a module it imports
/// from `path`, SIGHUP restarts that listener on the new code; a listener
/// whose modules did not change is kept; a syntax error in the edit
/// rolls back.
#[test]
fn sighup_after_editing_the_py_runs_the_new_code() {
    let cfg = py_listener("py", "inet", "stream", "fork", "app:Reply", "", "")
        + &py_listener("other", "inet", "stream", "thread", "other:Other", "", "");
    let files = [("app.py", GOOD), ("helper.py", HELPER), ("other.py", OTHER)];
    let d = start_with("pyedit", &files, &cfg);
    assert_eq!(reply(&d, "py"), "version one helper-a\n");
    let other_worker = worker(&d, "other");

    let unchanged = reload_outcome(&d);
    assert!(
        unchanged.contains("kept [other, py]") || unchanged.contains("kept [py, other]"),
        "{unchanged}"
    );

    d.dir.write(
        "app.py",
        &GOOD.replace("version one", "version two, edited"),
    );
    let outcome = reload_outcome(&d);
    assert!(
        outcome.contains("changed [py]") && outcome.contains("kept [other]"),
        "{outcome}"
    );
    assert_eq!(reply(&d, "py"), "version two, edited helper-a\n");
    assert_eq!(
        worker_of(d.pid(), "other"),
        Some(other_worker),
        "other kept"
    );

    d.dir.write("helper.py", "TAG = b'helper-b, edited'\n");
    let outcome = reload_outcome(&d);
    assert!(outcome.contains("changed [py]"), "{outcome}");
    assert_eq!(reply(&d, "py"), "version two, edited helper-b, edited\n");

    d.dir.write("app.py", "class Reply(:\n");
    let outcome = reload_outcome(&d);
    assert!(
        outcome.contains("reload failed") && outcome.contains("SyntaxError"),
        "{outcome}"
    );
    assert_eq!(reply(&d, "py"), "version two, edited helper-b, edited\n");
    d.stop();
}

const LATE: &str = r#"
import socketserver

class Late(socketserver.StreamRequestHandler):
    def handle(self):
        import lazy
        self.wfile.write(lazy.TAG + b"\n")
"#;

/// Protects: a module first imported inside `handle` (not at start) is
/// watched too, in every mixin (a fork child reports it as well): editing
/// it makes the next SIGHUP restart the listener on the new code.
#[test]
fn modules_imported_inside_handle_are_watched() {
    for mixin in ["sync", "thread", "fork"] {
        let cfg = py_listener("late", "inet", "stream", mixin, "app:Late", "", "");
        let files = [("app.py", LATE), ("lazy.py", "TAG = b'lazy-a'\n")];
        let d = start_with("pylate", &files, &cfg);
        assert_eq!(reply(&d, "late"), "lazy-a\n", "{mixin}");
        d.dir.write("lazy.py", "TAG = b'lazy-b, edited'\n");
        let outcome = reload_outcome(&d);
        assert!(outcome.contains("changed [late]"), "{mixin}: {outcome}");
        assert_eq!(reply(&d, "late"), "lazy-b, edited\n", "{mixin}");
        d.stop();
    }
}
