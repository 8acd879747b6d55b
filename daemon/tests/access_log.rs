//! `access_log = true` against the real daemon: one line per finished
//! request with listener, client, mixin, duration, outcome and pid, on
//! stderr and as journald fields read back with `journalctl`.

mod common;
use common::journal::{have_journal, journal_entries, Journal};
use common::life::probe_listener;
use common::observe::*;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Protects: `access_log = true` writes one line per finished request
/// with listener, client, mixin, duration, outcome and pid: ok, error (a
/// panic) and crashed (a fork child's abort); without it, none.
#[test]
fn the_access_log_has_one_line_per_request_with_its_outcome() {
    no_core_dumps();
    let cfg = probe_listener(
        "logged",
        "inet",
        "stream",
        "127.0.0.1:0",
        "fork",
        "access_log = true",
    ) + &probe_listener("quiet", "inet", "stream", "127.0.0.1:0", "thread", "");
    let d = Daemon::start(&observed(&cfg));
    let addr = d.addr("logged");
    let mut p = Probe::connect(&addr);
    let pid = p.cmd("PID");
    drop(p);
    let mut panics = Probe::connect(&addr);
    let _ = panics.try_cmd("PANIC");
    drop(panics);
    let mut aborts = Probe::connect(&addr);
    let child = aborts.cmd("PID");
    let _ = aborts.try_cmd("ABORT");
    drop(aborts);
    assert_eq!(stream_cmd(&d.addr("quiet"), "PING"), "PONG");
    let lines = |outcome: &str| {
        d.log()
            .lines()
            .filter(|l| {
                l.contains("request from ") && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert!(
        wait_for(DEADLINE, || (lines("crashed").len() == 1).then_some(())).is_some(),
        "{}",
        d.log()
    );
    std::thread::sleep(Duration::from_millis(200));
    let ok = lines("ok");
    assert_eq!(ok.len(), 1, "{ok:?}");
    for part in [
        "listener=logged",
        "client=\"127.0.0.1:",
        "mixin=\"fork\"",
        "duration_us=",
        &format!("pid={pid}"),
    ] {
        assert!(ok[0].contains(part), "{part} in {}", ok[0]);
    }
    assert_eq!(lines("error").len(), 1, "the panic");
    assert!(
        lines("crashed")[0].contains(&format!("pid={child}")),
        "{:?}",
        lines("crashed")
    );
    let quiet = d
        .log()
        .lines()
        .any(|l| l.contains("listener=quiet") && l.contains("request from "));
    assert!(!quiet, "no access log without access_log = true");
}

/// Protects: in the journal an access log entry carries LISTENER, CLIENT,
/// DURATION_US and OUTCOME (and MIXIN, PID) as fields.
#[test]
fn access_log_entries_carry_journald_fields() {
    if !have_journal() {
        return;
    }
    let _journal = Journal::ensure();
    let name = format!("al{}", std::process::id());
    let dir = TestDir::new("access-journal");
    let (hold, port) = common::life::hold_port();
    drop(hold);
    let cfg = "[daemon]\ncontrol_socket = \"\"\n".to_string()
        + &probe_listener(
            &name,
            "inet",
            "stream",
            &format!("127.0.0.1:{port}"),
            "thread",
            "access_log = true",
        );
    let path = dir.write("sockhost.toml", &cfg);
    let mut child = Command::new(sockhostd())
        .arg("-c")
        .arg(&path)
        .args(["--log", "journald"])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let reply = loop {
        if let Ok(s) = Stream::connect(&format!("127.0.0.1:{port}")) {
            break Probe::from_stream(s).cmd("PING");
        }
        assert!(start.elapsed() < DEADLINE, "daemon never listened");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(reply, "PONG");
    let start = Instant::now();
    let mut entries = Vec::new();
    while start.elapsed() < DEADLINE {
        entries = journal_entries(&format!("LISTENER={name}"));
        if entries.iter().any(|e| e.contains("\"OUTCOME\":\"ok\"")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let entry = entries
        .iter()
        .find(|e| e.contains("\"OUTCOME\":\"ok\""))
        .unwrap_or_else(|| panic!("no access log entry: {entries:?}"));
    for field in [
        "\"CLIENT\":\"127.0.0.1:",
        "\"DURATION_US\":\"",
        "\"MIXIN\":\"thread\"",
        "\"PID\":\"",
    ] {
        assert!(entry.contains(field), "{field} in {entry}");
    }
}
