//! Startup is all-or-nothing: a broken plugin, a plugin that started
//! threads under `mixin = "fork"`, a missing handler or a taken address
//! makes the real `sockhostd` exit 1, naming the listener and the cause.

mod common;
use common::life::*;
use common::*;

// Startup refuses every broken plugin with exit 1, naming the listener, the plugin path and why.
#[test]
fn startup_refuses_each_broken_fixture_plugin_naming_listener_and_path() {
    let host = format!(
        "{}.{}",
        sockhost_sdk::sys::SOCKHOST_ABI_MAJOR,
        sockhost_sdk::sys::SOCKHOST_ABI_MINOR
    );
    let cases = [
        ("sockhost_fixture_abi_major", vec!["2.0", host.as_str()]),
        ("sockhost_fixture_no_entry", vec!["sockhost_plugin_init"]),
        ("sockhost_fixture_create_fails", vec!["cannot serve fx-bad"]),
        ("sockhost_fixture_hooks", vec!["record"]), // create: `record` is required
    ];
    for (stem, why) in cases {
        let so = plugin(stem);
        let cfg = listener("fx-bad", "inet", "stream", "127.0.0.1:0", "thread", &so, "");
        let f = refused(&cfg);
        assert_eq!(f.status.code(), Some(1), "{stem}: exit 1\n{}", f.log);
        let path = so.display().to_string();
        let mut needles = vec!["fx-bad", path.as_str()];
        needles.extend(why.iter().copied());
        assert!(
            has_line(&f.log, &needles),
            "{stem}: one line names {needles:?}:\n{}",
            f.log
        );
    }
}

// A plugin that starts threads at load is refused at startup under mixin = "fork" (forking would be unsafe).
#[test]
fn startup_refuses_fork_mixin_for_a_multithreaded_plugin() {
    let so = plugin("sockhost_fixture_thread_at_load");
    let cfg = listener(
        "fx-threads",
        "inet",
        "stream",
        "127.0.0.1:0",
        "fork",
        &so,
        "",
    );
    let f = refused(&cfg);
    assert_eq!(f.status.code(), Some(1), "exit 1\n{}", f.log);
    assert!(
        has_line(&f.log, &["fx-threads", "fork"]),
        "names the listener and the refused mixin:\n{}",
        f.log
    );
    let thread = listener(
        "fx-threads",
        "inet",
        "stream",
        "127.0.0.1:0",
        "thread",
        &so,
        "",
    );
    let d = Daemon::start(&thread);
    let mut s = Stream::connect(&d.addr("fx-threads")).expect("connect");
    assert_eq!(
        s.read_all().expect("reply"),
        b"OK\n",
        "serves under mixin = thread"
    );
}

// A handler path that does not exist stops startup with exit 1, naming the path.
#[test]
fn startup_refuses_a_missing_handler_naming_its_path() {
    let dir = TestDir::new("lc-missing");
    let gone = dir.join("libnot_there.so");
    let cfg = listener(
        "nohandler",
        "inet",
        "stream",
        "127.0.0.1:0",
        "sync",
        &gone,
        "",
    );
    let f = refused(&cfg);
    assert_eq!(f.status.code(), Some(1), "exit 1\n{}", f.log);
    let gone = gone.display().to_string();
    assert!(
        has_line(&f.log, &[&gone, "handler"]),
        "names the handler path:\n{}",
        f.log
    );
}

// An address another process holds makes startup exit 1, naming the listener and the address.
#[test]
fn bind_failure_exits_1_naming_listener_and_address() {
    let (_held, port) = hold_port();
    let addr = format!("127.0.0.1:{port}");
    let ok = tcp_probe("free-one", "thread", "");
    let busy = probe_listener("taken-port", "inet", "stream", &addr, "thread", "");
    let f = refused(&format!("{ok}{busy}"));
    assert_eq!(f.status.code(), Some(1), "exit 1\n{}", f.log);
    assert!(
        has_line(&f.log, &["taken-port", &addr]),
        "names listener and address:\n{}",
        f.log
    );
}
