//! A Python handler's standard streams and logging, as a program under
//! systemd has them: `sys.stdout` and `sys.stderr` are real text files on
//! the worker's log relay (`.buffer`, `fileno()`, `faulthandler`, a
//! subprocess given `stdout=sys.stdout`), each line one record at info
//! unless an sd-daemon `<N>` prefix says otherwise (http.server's access
//! lines are not errors); `logging` is left as CPython has it: a program's
//! own configuration (a file, a format, a level) is kept, and without one
//! only WARNING and above reach stderr (logging's last resort), at their
//! priority.

mod common;

use common::py::*;
use common::*;

const APP: &str = r#"
import faulthandler, logging, os, socketserver, subprocess, sys

faulthandler.enable()          # at import: the listener must still start


class Streams(socketserver.StreamRequestHandler):
    def handle(self):
        print("P-msg")
        sys.stderr.write("S-msg\n")
        sys.stderr.write("<3>X-msg\n")
        sys.stdout.buffer.write(b"B-msg\n")
        sys.stdout.flush()
        subprocess.run(["sh", "-c", "echo C-msg from $$"], stdout=sys.stdout, check=True)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=False)
        log = logging.getLogger("app")
        log.error("E-msg"); log.warning("W-msg"); log.info("I-msg"); log.debug("D-msg")
        reply = [sys.stdout.fileno() >= 0, sys.stderr.fileno() >= 0, faulthandler.is_enabled(),
                 sys.stdout.isatty(), os.getpid()]
        self.wfile.write(repr(reply).encode() + b"\n")
"#;

const CONFIGURED: &str = r#"
import logging, os, socketserver

HERE = os.path.dirname(os.path.abspath(__file__))
logging.basicConfig(filename=os.path.join(HERE, "app.log"), level=logging.DEBUG,
                    format="%(levelname)s %(name)s %(message)s")


class Logs(socketserver.StreamRequestHandler):
    def handle(self):
        log = logging.getLogger("app")
        log.debug("D-one"); log.info("I-one"); log.error("E-one")
        self.wfile.write(b"logged\n")
"#;

const LATE: &str = r#"
import socketserver

class LateLogs(socketserver.StreamRequestHandler):
    def handle(self):
        import logging
        logging.getLogger("late").warning("late-msg")
        self.wfile.write(b"logged late\n")
"#;

fn line(addr: &str) -> String {
    String::from_utf8_lossy(&stream_exchange(addr, b"x\n")).into_owned()
}

/// The log line holding `msg` for listener `name`, if any.
fn record<'a>(log: &'a str, name: &str, msg: &str) -> Option<&'a str> {
    log.lines()
        .find(|l| l.contains(msg) && l.contains(&format!("listener={name}")))
}

fn level_of(log: &str, name: &str, msg: &str) -> String {
    let l = record(log, name, msg).unwrap_or_else(|| panic!("no {msg:?} in\n{log}"));
    ["ERROR", "WARN", "INFO", "DEBUG"]
        .into_iter()
        .find(|lv| l.contains(&format!(" {lv} ")))
        .unwrap_or("?")
        .to_string()
}

/// Protects: print, sys.stderr, sys.stdout.buffer, a subprocess writing
/// to sys.stdout's fd and faulthandler (enabled at import, dumping to
/// sys.stderr) all reach the log, at info unless `<N>` says otherwise;
/// unconfigured logging gives only WARNING and above, at their level, as
/// CPython's last resort does. In each mixin.
#[test]
fn standard_streams_are_real_files_on_the_log_relay() {
    for mixin in ["sync", "thread", "fork"] {
        let cfg = py_listener("io", "inet", "stream", mixin, "app:Streams", "", "");
        let d = start_with("pystdio", &[("app.py", APP)], &cfg);
        let reply = line(&d.addr("io"));
        assert!(
            reply.starts_with("[True, True, True, False, "),
            "{mixin}: {reply}\n{}",
            d.log()
        );
        assert!(d.wait_log("W-msg", DEADLINE), "{}", d.log());
        assert!(d.wait_log("C-msg from", DEADLINE), "{}", d.log());
        let log = d.log();
        for (msg, level) in [
            ("P-msg", "INFO"),
            ("S-msg", "INFO"),
            ("X-msg", "ERROR"),
            ("B-msg", "INFO"),
            ("C-msg from", "INFO"),
            ("Stack (most recent call first)", "INFO"),
            ("E-msg", "ERROR"),
            ("W-msg", "WARN"),
        ] {
            assert_eq!(level_of(&log, "io", msg), level, "{mixin}: {msg}\n{log}");
        }
        assert!(!log.contains("<3>X-msg"), "{log}");
        assert!(!log.contains("I-msg") && !log.contains("D-msg"), "{log}");
        d.stop();
    }
}

/// Protects: a program's own logging configuration (basicConfig with a
/// file, a format and DEBUG) behaves as under CPython: every record in its
/// file, in its format, none of them in the daemon's log.
#[test]
fn a_programs_own_logging_configuration_is_kept() {
    for mixin in ["thread", "fork"] {
        let cfg = py_listener("conf", "inet", "stream", mixin, "app:Logs", "", "");
        let d = start_with("pylogconf", &[("app.py", CONFIGURED)], &cfg);
        assert_eq!(line(&d.addr("conf")), "logged\n");
        let file = d.dir.join("app.log");
        let want = "DEBUG app D-one\nINFO app I-one\nERROR app E-one\n";
        let text = wait_for(DEADLINE, || {
            let t = std::fs::read_to_string(&file).unwrap_or_default();
            (t == want).then_some(t)
        });
        assert_eq!(text.as_deref(), Some(want), "{mixin}\n{}", d.log());
        let log = d.log();
        assert!(!log.contains("-one"), "{mixin}: {log}");
        d.stop();
    }
}

/// Protects: `logging` imported for the first time inside a request (here
/// in a fork child) still reaches the log at its level; and
/// http.server's access lines (written to stderr) are info, not errors.
#[test]
fn late_logging_and_access_lines() {
    let cfg = py_listener("late", "inet", "stream", "fork", "late:LateLogs", "", "")
        + &py_listener(
            "www",
            "inet",
            "stream",
            "sync",
            "http.server:SimpleHTTPRequestHandler",
            "",
            "server = \"http.server:HTTPServer\"",
        );
    let d = start_with("pylatelog", &[("late.py", LATE)], &cfg);
    assert_eq!(line(&d.addr("late")), "logged late\n");
    let mut s = Stream::connect(&d.addr("www")).expect("connect");
    std::io::Write::write_all(&mut s, b"GET /late.py HTTP/1.0\r\n\r\n").expect("send");
    let reply = s.read_all().expect("read");
    assert!(reply.starts_with(b"HTTP/1.0 200 OK"));
    assert!(d.wait_log("\"GET /late.py HTTP/1.0\" 200", DEADLINE));
    assert!(d.wait_log("late-msg", DEADLINE), "{}", d.log());
    let log = d.log();
    assert_eq!(level_of(&log, "late", "late-msg"), "WARN", "{log}");
    assert_eq!(
        level_of(&log, "www", "\"GET /late.py HTTP/1.0\" 200"),
        "INFO",
        "{log}"
    );
    d.stop();
}
