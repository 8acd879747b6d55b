//! SIGHUP reload: a new generation starts whole before the old one drains,
//! nothing is refused or reset while it happens, connections opened before
//! a reload keep talking to the old generation, and any failure rolls the
//! reload back with the old generation serving untouched.

mod common;
use common::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Config with probe listeners `a` and `b` (and optionally `c`), each with
/// `[listener.config] v = VERSION`; plugin at `handler`.
fn config(handler: &Path, version: u32, with_c: bool, extra: &str) -> String {
    let mut cfg = String::from("[daemon]\nshutdown_timeout = 5.0\ninclude = [\"conf.d/*.toml\"]\n");
    let conf = format!("[listener.config]\nv = {version}\n");
    cfg.push_str(&listener(
        "a",
        "inet",
        "stream",
        "127.0.0.1:0",
        "thread",
        handler,
        &conf,
    ));
    cfg.push_str(&listener(
        "b",
        "inet",
        "stream",
        "127.0.0.1:0",
        "fork",
        handler,
        &conf,
    ));
    if with_c {
        cfg.push_str(&listener(
            "c",
            "inet",
            "stream",
            "127.0.0.1:0",
            "sync",
            handler,
            &conf,
        ));
    }
    cfg.push_str(extra);
    cfg
}

/// A daemon whose config lives in its own dir, with a private copy of the
/// probe plugin at `dir/libcurrent.so`.
fn start(version: u32) -> Daemon {
    let dir = TestDir::new("reload");
    let handler = dir.join("libcurrent.so");
    std::fs::copy(plugin("sockhost_probe"), &handler).expect("copy plugin");
    std::fs::create_dir_all(dir.join("conf.d")).expect("conf.d");
    let path = dir.write("sockhost.toml", &config(&handler, version, false, ""));
    Daemon::try_start_in(dir, path, &[])
        .unwrap_or_else(|f| panic!("start: {}\n{}", f.status, f.log))
}

fn rewrite(d: &Daemon, text: &str) {
    // Write to a temp file and rename, as a deploy tool would.
    let tmp = d.dir.join("sockhost.toml.new");
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, &d.config).expect("rename config");
}

/// Send SIGHUP and wait for the n-th reload outcome line; returns its text.
fn reload(d: &Daemon) -> String {
    let count =
        |log: &str| log.matches("reload done").count() + log.matches("reload failed").count();
    let before = count(&d.log());
    d.signal(libc::SIGHUP);
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        let log = d.log();
        if count(&log) > before {
            let line = log
                .lines()
                .rfind(|l| l.contains("reload done") || l.contains("reload failed"));
            return line.unwrap_or_default().to_string();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no reload outcome within the deadline:\n{}", d.log());
}

/// The address a listener was bound to, from the newest `bound` line.
fn bound_addr(d: &Daemon, name: &str) -> String {
    let log = d.log();
    let line = log
        .lines()
        .rfind(|l| l.contains("bound ") && l.contains(&format!("listener={name}")))
        .unwrap_or_else(|| panic!("no bound line for {name}:\n{log}"));
    let after = line.split("bound ").nth(1).unwrap_or("");
    after.split(' ').next().unwrap_or("").to_string()
}

fn config_v(addr: &str) -> String {
    Probe::connect(addr).cmd("CONFIG v")
}

#[test]
fn a_connection_opened_before_a_reload_keeps_the_old_generation() {
    let d = start(1);
    let mut old = Probe::connect(&d.addr("a"));
    assert_eq!(old.cmd("CONFIG v"), "1");
    rewrite(&d, &config(&d.dir.join("libcurrent.so"), 2, false, ""));
    let outcome = reload(&d);
    assert!(
        outcome.contains("reload done") && outcome.contains("changed [a, b]"),
        "{outcome}"
    );
    assert_eq!(
        old.cmd("CONFIG v"),
        "1",
        "the open connection still talks to generation 1"
    );
    assert_eq!(
        config_v(&d.addr("a")),
        "2",
        "a new connection gets generation 2"
    );
    assert_eq!(config_v(&d.addr("b")), "2");
    drop(old);
    assert!(
        d.wait_log("finished draining", DEADLINE),
        "the old worker drains and exits:\n{}",
        d.log()
    );
}

#[test]
fn unchanged_listeners_keep_their_workers() {
    let d = start(1);
    let pid_before = Probe::connect(&d.addr("a")).cmd("PID");
    let outcome = reload(&d); // same file: nothing changed
    assert!(outcome.contains("kept [a, b]"), "{outcome}");
    assert_eq!(
        Probe::connect(&d.addr("a")).cmd("PID"),
        pid_before,
        "same worker process"
    );
}

/// Each bad change is rolled back whole: the old generation keeps serving
/// (same worker, same config value) and the log says what failed.
#[test]
fn every_failed_reload_rolls_back_and_keeps_serving() {
    let d = start(1);
    let handler = d.dir.join("libcurrent.so");
    let pid = Probe::connect(&d.addr("a")).cmd("PID");
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("hold a port");
    let busy = held.local_addr().expect("addr").to_string();
    let create_fails = plugin("sockhost_fixture_create_fails");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "syntax error",
            "[[listener]\nname = \"a\"\n".to_string(),
            "sockhost.toml:1",
        ),
        (
            "unknown key",
            config(&handler, 2, false, "").replace(
                "shutdown_timeout = 5.0",
                "shutdown_timeout = 5.0\nbogus_key = 1",
            ),
            "bogus_key",
        ),
        (
            "missing plugin",
            config(
                &handler,
                2,
                false,
                &listener(
                    "m",
                    "inet",
                    "stream",
                    "127.0.0.1:0",
                    "sync",
                    Path::new("/nonexistent/libx.so"),
                    "",
                ),
            ),
            "/nonexistent/libx.so",
        ),
        (
            "create fails",
            config(
                &handler,
                2,
                false,
                &listener(
                    "f",
                    "inet",
                    "stream",
                    "127.0.0.1:0",
                    "sync",
                    &create_fails,
                    "",
                ),
            ),
            "cannot serve f",
        ),
        (
            "address in use",
            config(
                &handler,
                2,
                false,
                &listener("u", "inet", "stream", &busy, "sync", &handler, ""),
            ),
            &busy,
        ),
    ];
    for (what, text, needle) in cases {
        rewrite(&d, &text);
        let outcome = reload(&d);
        assert!(
            outcome.contains("reload failed") && outcome.contains("nothing changed"),
            "{what}: {outcome}"
        );
        assert!(
            outcome.contains(needle),
            "{what}: the log names the cause `{needle}`: {outcome}"
        );
        let mut p = Probe::connect(&d.addr("a"));
        assert_eq!(p.cmd("CONFIG v"), "1", "{what}: old config still served");
        assert_eq!(p.cmd("PID"), pid, "{what}: the same old worker serves");
    }
    drop(held);
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

#[test]
fn a_drop_in_plus_sighup_deploys_a_listener_and_removing_it_undeploys() {
    let d = start(1);
    let handler = d.dir.join("libcurrent.so");
    let conf = "[listener.config]\nv = 77\n";
    d.dir.write(
        "conf.d/new.toml",
        &listener(
            "dropin",
            "inet",
            "stream",
            "127.0.0.1:0",
            "thread",
            &handler,
            conf,
        ),
    );
    let outcome = reload(&d);
    assert!(outcome.contains("added [dropin]"), "{outcome}");
    let addr = bound_addr(&d, "dropin");
    assert_eq!(config_v(&addr), "77");
    std::fs::remove_file(d.dir.join("conf.d/new.toml")).expect("remove drop-in");
    let outcome = reload(&d);
    assert!(outcome.contains("removed [dropin]"), "{outcome}");
    let start = Instant::now();
    while Stream::connect(&addr).is_ok() && start.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        Stream::connect(&addr).is_err(),
        "the removed listener's socket is closed"
    );
}

/// Package managers replace a plugin by rename: after SIGHUP new requests
/// run the new code. Overwriting in place (`cp`) must not crash a running
/// worker, which runs from a private copy.
#[test]
fn replacing_a_plugin_takes_effect_on_reload_and_overwriting_in_place_is_harmless() {
    let d = start(1);
    let handler = d.dir.join("libcurrent.so");
    let pid = Probe::connect(&d.addr("a")).cmd("PID");
    // Overwrite in place with different code: the running worker is immune.
    std::fs::write(
        &handler,
        std::fs::read(plugin("sockhost_echo")).expect("read echo"),
    )
    .expect("overwrite");
    let mut p = Probe::connect(&d.addr("a"));
    assert_eq!(
        p.cmd("PING"),
        "PONG",
        "still the probe code in the running worker"
    );
    assert_eq!(p.cmd("PID"), pid, "the worker did not crash");
    drop(p);
    // Restore probe, then replace it by rename with echo: reload picks it up.
    let staged = d.dir.join("libnext.so");
    std::fs::copy(plugin("sockhost_echo"), &staged).expect("stage");
    std::fs::rename(&staged, &handler).expect("rename into place");
    let outcome = reload(&d);
    assert!(
        outcome.contains("changed [a, b]"),
        "a replaced plugin file changes the listener: {outcome}"
    );
    let mut s = Stream::connect(&d.addr("a")).expect("connect");
    std::io::Write::write_all(&mut s, b"PING\n").expect("send");
    s.shutdown_write();
    assert_eq!(
        s.read_all().expect("read"),
        b"PING\n",
        "new connections run the new (echo) code"
    );
}

/// Load on two listeners while the config changes ten times (values
/// changed, a listener added and removed, the plugin replaced): every
/// request succeeds.
#[test]
fn ten_reloads_under_load_drop_nothing() {
    let d = start(0);
    let handler = d.dir.join("libcurrent.so");
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for name in ["a", "b", "a", "b"] {
        let addr = d.addr(name);
        let (stop, ok, failed, errors) = (stop.clone(), ok.clone(), failed.clone(), errors.clone());
        clients.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match Stream::connect(&addr).and_then(|s| {
                    let mut p = Probe::from_stream(s);
                    p.try_cmd("CONFIG v")
                }) {
                    Ok(v) if v.parse::<u32>().is_ok() => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        if let Ok(mut e) = errors.lock() {
                            e.push(format!("{addr}: {other:?}"));
                        }
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    for round in 1..=10u32 {
        if round == 6 {
            let staged = d.dir.join("libnext.so");
            std::fs::copy(plugin("sockhost_probe"), &staged).expect("stage");
            std::fs::rename(&staged, &handler).expect("replace plugin");
        }
        rewrite(&d, &config(&handler, round, round % 3 == 1, ""));
        let outcome = reload(&d);
        assert!(outcome.contains("reload done"), "round {round}: {outcome}");
        std::thread::sleep(Duration::from_millis(150));
    }
    stop.store(true, Ordering::Relaxed);
    clients.into_iter().for_each(|c| c.join().expect("client"));
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let errors = errors.lock().map(|e| e.clone()).unwrap_or_default();
    assert_eq!(
        failed,
        0,
        "{ok} ok, {failed} failed: {:?}",
        &errors[..errors.len().min(5)]
    );
    assert!(ok > 100, "the load ran: {ok} requests");
    assert_eq!(config_v(&d.addr("a")), "10", "the last generation serves");
}

/// The reload soak: `cargo test --release -p sockhostd --test reload -- --ignored
/// --nocapture reload_soak` (SOCKHOST_SOAK_SECS sets the length, default 60).
/// Load on two listeners while the config is reloaded in a loop; prints
/// requests served, failures, and reload latency (SIGHUP to every new worker
/// ready, as the daemon measures it) — median, p90 and max.
#[test]
#[ignore = "soak: run on demand, prints figures"]
fn reload_soak() {
    let secs: u64 = std::env::var("SOCKHOST_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let d = start(0);
    let handler = d.dir.join("libcurrent.so");
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let clients: Vec<_> = ["a", "b", "a", "b"]
        .into_iter()
        .map(|name| {
            let addr = d.addr(name);
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = Stream::connect(&addr)
                        .and_then(|s| Probe::from_stream(s).try_cmd("CONFIG v"));
                    match r {
                        Ok(v) if v.parse::<u32>().is_ok() => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let start_at = Instant::now();
    let mut round = 0u32;
    let mut outside_ms = Vec::new();
    while start_at.elapsed() < Duration::from_secs(secs) {
        round += 1;
        rewrite(&d, &config(&handler, round, round % 2 == 0, ""));
        let t = Instant::now();
        let outcome = reload(&d);
        outside_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(outcome.contains("reload done"), "{outcome}");
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    clients.into_iter().for_each(|c| c.join().expect("client"));
    let mut inside: Vec<f64> = d
        .log()
        .lines()
        .filter_map(|l| {
            l.split("reload done in ")
                .nth(1)?
                .split(" ms")
                .next()?
                .parse()
                .ok()
        })
        .collect();
    inside.sort_by(f64::total_cmp);
    outside_ms.sort_by(f64::total_cmp);
    let pct = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("reload soak: {secs} s, {round} reloads, 2 listeners changed per reload (+1 added/removed every other)");
    println!(
        "requests: {ok} served, {failed} failed ({:.0} req/s, new connection per request)",
        ok as f64 / secs as f64
    );
    println!(
        "reload latency, SIGHUP to new generation ready (daemon's measure): median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        pct(&inside, 0.5),
        pct(&inside, 0.9),
        pct(&inside, 1.0)
    );
    println!(
        "reload latency seen by the test (SIGHUP to log line): median {:.1} ms, p90 {:.1} ms",
        pct(&outside_ms, 0.5),
        pct(&outside_ms, 0.9)
    );
    assert_eq!(failed, 0, "no request may fail across reloads");
}
