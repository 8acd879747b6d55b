//! Unix listeners' socket files: removed on exit (relative and absolute
//! paths), a stale one replaced at start, a live one never stolen (start
//! fails naming the path), and an abstract `@name` serves with no file.

mod common;
use common::life::*;
use common::*;

// Unix socket files (relative to the config folder or absolute) exist while serving and are removed on exit.
#[test]
fn unix_socket_files_are_removed_on_exit() {
    let dir = TestDir::new("lc-unix");
    let dgram = dir.join("abs-dgram.sock");
    let cfg = unix_probe("u-stream", "stream", "rel-stream.sock", "thread")
        + &unix_probe("u-dgram", "dgram", &dgram.display().to_string(), "sync");
    let stream = dir.join("rel-stream.sock");
    let d = start_in(dir, &cfg).unwrap_or_else(|f| panic!("start: {}\n{}", f.status, f.log));
    assert_eq!(
        Probe::connect(&stream.display().to_string()).cmd("PING"),
        "PONG"
    );
    assert_eq!(
        Dgram::connect(&d.addr("u-dgram"), &d.dir.path).cmd("PING"),
        "PONG"
    );
    assert!(
        stream.exists() && dgram.exists(),
        "socket files exist while serving"
    );
    let (status, log) = d.stop();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!stream.exists(), "{} removed on exit", stream.display());
    assert!(!dgram.exists(), "{} removed on exit", dgram.display());
}

// A socket file left by a dead process is replaced at start, and the daemon serves on it.
#[test]
fn stale_unix_socket_file_is_replaced_at_start() {
    let dir = TestDir::new("lc-stale");
    let path = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind the stale socket"));
    assert!(path.exists(), "the dead listener left its file");
    let cfg = unix_probe("stale", "stream", &path.display().to_string(), "sync");
    let _d = start_in(dir, &cfg).unwrap_or_else(|f| panic!("start: {}\n{}", f.status, f.log));
    let mut p = Probe::connect(&path.display().to_string());
    assert_eq!(
        p.cmd("LISTENER"),
        "stale",
        "the daemon serves on the replaced path"
    );
}

// A unix socket a live process listens on is never stolen: start fails with exit 1 naming the path.
#[test]
fn live_unix_socket_is_not_stolen() {
    // The socket lives in a folder of its own: a failed start removes the daemon's.
    let owner = TestDir::new("lc-live-owner");
    let path = owner.join("live.sock");
    let live = std::os::unix::net::UnixListener::bind(&path).expect("bind the live socket");
    let cfg = unix_probe("thief", "stream", &path.display().to_string(), "sync");
    let f = refused(&cfg);
    assert_eq!(f.status.code(), Some(1), "exit 1\n{}", f.log);
    let shown = path.display().to_string();
    assert!(
        has_line(&f.log, &["thief", &shown]),
        "names listener and path:\n{}",
        f.log
    );
    let _client = std::os::unix::net::UnixStream::connect(&path).expect("our socket still answers");
    live.set_nonblocking(false).expect("blocking");
    assert!(
        live.accept().is_ok(),
        "the connection reached the original owner"
    );
}

// An abstract `@name` unix address serves (no file involved).
#[test]
fn abstract_unix_address_serves() {
    let name = format!("@sockhost-lc-{}", std::process::id());
    let cfg = unix_probe("abstract", "stream", &name, "thread");
    let d = Daemon::start(&cfg);
    assert_eq!(d.addr("abstract"), name, "logged as the abstract name");
    let mut p = Probe::connect(&name);
    assert_eq!(p.cmd("LISTENER"), "abstract");
    assert_eq!(p.cmd("CLIENT"), "", "an unnamed unix peer");
}
