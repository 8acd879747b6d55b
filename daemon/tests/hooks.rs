//! The socketserver hooks against the real daemon, seen through the hooks
//! fixture (which records `HOOK PID` for every call) and the probe's
//! counters: `handle_timeout` after `timeout` idle seconds,
//! `verify_request` in the worker before any fork, `service_actions` in the
//! worker loop, `handle_error` then `finish` when `handle` fails, a failed
//! `setup` skipping `handle` and `finish`, and `destroy` at stop.

mod common;
use common::*;
use std::path::Path;
use std::time::Duration;

const MIXINS: [&str; 3] = ["sync", "thread", "fork"];
const TYPES: [&str; 2] = ["stream", "dgram"];
const REQUEST_HOOKS: [&str; 4] = ["setup", "handle", "handle_error", "finish"];

/// A hooks-fixture listener recording to `record`; `keys` go before the
/// `[listener.config]` table, `config` inside it.
fn hooks_listener(
    name: &str,
    ty: &str,
    mixin: &str,
    record: &Path,
    keys: &str,
    config: &str,
) -> String {
    let fixture = plugin("sockhost_fixture_hooks");
    let extra = format!(
        "{keys}\n[listener.config]\nrecord = \"{}\"\n{config}\n",
        record.display()
    );
    listener(name, "inet", ty, "127.0.0.1:0", mixin, &fixture, &extra)
}

/// The record as (hook, pid) pairs.
fn record(path: &Path) -> Vec<(String, i32)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (hook, pid) = l.split_once(' ')?;
            Some((hook.to_string(), pid.parse().ok()?))
        })
        .collect()
}

/// Only the per-request hooks, in order.
fn request_hooks(path: &Path) -> Vec<String> {
    record(path)
        .into_iter()
        .map(|(h, _)| h)
        .filter(|h| REQUEST_HOOKS.contains(&h.as_str()))
        .collect()
}

fn count(path: &Path, hook: &str) -> usize {
    record(path).iter().filter(|(h, _)| h == hook).count()
}

/// Wait until `hook` was recorded at least `n` times.
fn wait_hook(path: &Path, hook: &str, n: usize) {
    let seen = wait_for(DEADLINE, || (count(path, hook) >= n).then_some(()));
    assert!(
        seen.is_some(),
        "{hook} not recorded {n} times: {:?}",
        record(path)
    );
}

/// One request carrying `line`; stream: read to EOF, dgram: no wait.
fn send(d: &Daemon, name: &str, ty: &str, line: &str) -> Vec<u8> {
    if ty == "stream" {
        let mut s = Stream::connect(&d.addr(name)).expect("connect");
        std::io::Write::write_all(&mut s, format!("{line}\n").as_bytes()).expect("send");
        s.read_all().unwrap_or_default()
    } else {
        Dgram::connect(&d.addr(name), &d.dir.path)
            .send(line.as_bytes())
            .expect("send");
        Vec::new()
    }
}

/// Protects: `timeout = 0.3` runs the plugin's handle_timeout in the worker
/// after 0.3 s without a request (hooks fixture record, probe counter).
#[test]
fn handle_timeout_runs_in_the_worker_after_timeout_idle_seconds() {
    let dir = TestDir::new("hooks-timeout");
    let rec = dir.join("record");
    let probe = plugin("sockhost_probe");
    let cfg = hooks_listener("idle", "stream", "fork", &rec, "timeout = 0.3", "")
        + &listener(
            "pidle",
            "inet",
            "stream",
            "127.0.0.1:0",
            "thread",
            &probe,
            "timeout = 0.3",
        );
    let d = Daemon::start(&cfg);
    wait_hook(&rec, "handle_timeout", 2);
    let w = worker(&d, "idle");
    assert!(
        record(&rec)
            .iter()
            .all(|(h, p)| h != "handle_timeout" || *p == w),
        "handle_timeout runs in worker {w}: {:?}",
        record(&rec)
    );
    std::thread::sleep(Duration::from_millis(400));
    let counters = stream_cmd(&d.addr("pidle"), "COUNTERS");
    let timeouts: u64 = counters
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("timeouts="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad COUNTERS reply {counters}"));
    assert!(timeouts > 0, "probe saw no handle_timeout: {counters}");
}

/// Protects: verify_request runs in the worker before dispatch: a datagram
/// the probe refuses (`DENY...`) gets no reply and forks no child, and the
/// hooks fixture records verify_request in the worker, setup in a child.
#[test]
fn verify_request_runs_in_the_worker_before_any_fork() {
    let dir = TestDir::new("hooks-verify");
    let rec = dir.join("record");
    let probe = plugin("sockhost_probe");
    let cfg = listener("deny", "inet", "dgram", "127.0.0.1:0", "fork", &probe, "")
        + &hooks_listener("order", "stream", "fork", &rec, "", "");
    let d = Daemon::start(&cfg);
    let exits = |d: &Daemon| d.log().matches("request child exited").count();
    let before = exits(&d);
    let c = Dgram::connect(&d.addr("deny"), &d.dir.path);
    c.set_timeout(Some(Duration::from_millis(400)));
    c.send(b"DENY this one").expect("send");
    assert!(c.recv().is_err(), "a refused datagram gets no reply");
    c.set_timeout(Some(DEADLINE));
    assert_eq!(c.cmd("PING"), "PONG");
    let one = wait_for(DEADLINE, || (exits(&d) > before).then_some(()));
    assert!(
        one.is_some(),
        "the PING child's exit is logged:\n{}",
        d.log()
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(exits(&d), before + 1, "only PING forked:\n{}", d.log());
    assert!(d.log().contains("refused by the plugin's verify_request"));

    assert_eq!(send(&d, "order", "stream", "hello"), b"OK\n");
    wait_hook(&rec, "finish", 1);
    let w = worker(&d, "order");
    let r = record(&rec);
    let at = |hook: &str| r.iter().position(|(h, _)| h == hook).expect(hook);
    assert!(at("verify_request") < at("setup"), "verify first: {r:?}");
    assert_eq!(
        r[at("verify_request")].1,
        w,
        "verify_request in the worker: {r:?}"
    );
    let child = r[at("setup")].1;
    assert_ne!(child, w, "setup in the request child: {r:?}");
    for hook in ["handle", "finish"] {
        assert_eq!(r[at(hook)].1, child, "{hook} in the same child: {r:?}");
    }
}

/// Protects: the plugin's service_actions runs in the worker's loop (every
/// mixin), e.g. after each request.
#[test]
fn service_actions_runs_in_the_worker_loop_for_every_mixin() {
    let dir = TestDir::new("hooks-service");
    let mut cfg = String::new();
    for m in MIXINS {
        cfg += &hooks_listener(m, "stream", m, &dir.join(m), "", "");
    }
    let probe = plugin("sockhost_probe");
    cfg += &listener("p", "inet", "stream", "127.0.0.1:0", "sync", &probe, "");
    let d = Daemon::start(&cfg);
    for m in MIXINS {
        assert_eq!(send(&d, m, "stream", "x"), b"OK\n");
        wait_hook(&dir.join(m), "service_actions", 1);
        let w = worker(&d, m);
        let r = record(&dir.join(m));
        assert!(
            r.iter().all(|(h, p)| h != "service_actions" || *p == w),
            "{m}: service_actions in worker {w}: {r:?}"
        );
    }
    assert_eq!(stream_cmd(&d.addr("p"), "PING"), "PONG");
    // Let that loop turn end (a turn may take several queued requests).
    std::thread::sleep(Duration::from_millis(100));
    let counters = stream_cmd(&d.addr("p"), "COUNTERS");
    assert!(
        !counters.contains("service_actions=0"),
        "probe counted service_actions: {counters}"
    );
}

/// Protects: when handle fails (an error or a panic) handle_error runs and
/// finish still runs, in that order: setup,handle,handle_error,finish, for
/// every mixin, stream and datagram; the error is logged with its message.
#[test]
fn a_failing_handle_runs_handle_error_and_then_still_finish() {
    let dir = TestDir::new("hooks-error");
    let mut cfg = String::new();
    for m in MIXINS {
        for t in TYPES {
            cfg += &hooks_listener(
                &format!("{m}-{t}"),
                t,
                m,
                &dir.join(&format!("{m}-{t}")),
                "",
                "",
            );
        }
    }
    let d = Daemon::start(&cfg);
    for m in MIXINS {
        for t in TYPES {
            let name = format!("{m}-{t}");
            let rec = dir.join(&name);
            assert_eq!(send(&d, &name, t, "FAIL"), b"", "{name}: no reply");
            wait_hook(&rec, "finish", 1);
            assert_eq!(send(&d, &name, t, "PANIC"), b"", "{name}: no reply");
            wait_hook(&rec, "finish", 2);
        }
    }
    let (status, log) = d.stop();
    assert!(status.success(), "{status}\n{log}");
    let want: Vec<&str> = [REQUEST_HOOKS, REQUEST_HOOKS].concat();
    for m in MIXINS {
        for t in TYPES {
            let name = format!("{m}-{t}");
            assert_eq!(request_hooks(&dir.join(&name)), want, "{name}");
        }
    }
    assert!(
        log.contains("handle: handle fails: the client sent FAIL"),
        "{log}"
    );
    assert!(
        log.contains("handle panics: the client sent PANIC"),
        "{log}"
    );
}

/// Protects: a failed setup skips handle and finish (handle_error reports
/// it), every mixin, stream and datagram; the connection just closes.
#[test]
fn a_failed_setup_skips_handle_and_finish() {
    let dir = TestDir::new("hooks-setup");
    let mut cfg = String::new();
    for m in MIXINS {
        for t in TYPES {
            let name = format!("{m}-{t}");
            cfg += &hooks_listener(&name, t, m, &dir.join(&name), "", "fail_setup = true");
        }
    }
    let d = Daemon::start(&cfg);
    for m in MIXINS {
        for t in TYPES {
            let name = format!("{m}-{t}");
            assert_eq!(send(&d, &name, t, "hello"), b"", "{name}: no reply");
            wait_hook(&dir.join(&name), "handle_error", 1);
        }
    }
    // Stopping waits for requests in flight, so the records are final.
    let (status, log) = d.stop();
    assert!(status.success(), "{status}\n{log}");
    for m in MIXINS {
        for t in TYPES {
            let name = format!("{m}-{t}");
            assert_eq!(
                request_hooks(&dir.join(&name)),
                ["setup", "handle_error"],
                "{name}"
            );
        }
    }
    assert!(
        log.contains("setup: setup fails: fail_setup = true"),
        "{log}"
    );
}

/// Protects: on stop the worker waits for requests in flight, then calls
/// the plugin's destroy once, in the worker (every mixin), never skipping
/// it. Thread mode runs a few more rounds: a request thread that has given
/// its slot back but still holds the instance would make the destroy race.
#[test]
fn stop_finishes_requests_in_flight_then_destroys_the_instance() {
    stop_with_requests_in_flight(&MIXINS);
    for _ in 0..4 {
        stop_with_requests_in_flight(&["thread"]);
    }
}

fn stop_with_requests_in_flight(mixins: &[&str]) {
    let dir = TestDir::new("hooks-destroy");
    let mut cfg = String::new();
    for m in mixins {
        cfg += &hooks_listener(m, "stream", m, &dir.join(m), "", "");
    }
    let mut d = Daemon::start(&cfg);
    let workers: Vec<i32> = mixins.iter().map(|m| worker(&d, m)).collect();
    // One connection per listener, its handle blocked reading a line.
    let mut conns: Vec<Stream> = mixins
        .iter()
        .map(|m| Stream::connect(&d.addr(m)).expect("connect"))
        .collect();
    for m in mixins {
        wait_hook(&dir.join(m), "handle", 1);
    }
    d.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(100));
    for c in &mut conns {
        std::io::Write::write_all(c, b"late\n").expect("send");
        assert_eq!(c.read_all().expect("reply"), b"OK\n", "in flight: answered");
    }
    let status = d.wait_exit(DEADLINE).expect("daemon stops");
    std::thread::sleep(Duration::from_millis(50));
    let log = d.log();
    assert!(status.success(), "{status}\n{log}");
    assert!(!log.contains("destroy is skipped"), "{log}");
    for (m, w) in mixins.iter().zip(workers) {
        let r = record(&dir.join(m));
        let destroys: Vec<i32> = r
            .iter()
            .filter(|(h, _)| h == "destroy")
            .map(|x| x.1)
            .collect();
        assert_eq!(destroys, [w], "{m}: one destroy, in the worker: {r:?}");
        assert_eq!(
            r.last().map(|x| x.0.as_str()),
            Some("destroy"),
            "{m}: destroy last"
        );
    }
}
