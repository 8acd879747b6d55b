//! `[daemon] metrics` against the real daemon: exact request counts in
//! every mixin for streams and datagrams (and with `workers = 2`),
//! failures, refusals by reason, the active gauge, the histogram; the text
//! passes `promtool check metrics` and a real Prometheus server scrapes
//! it; hostile scrapers stall neither other scrapes nor signals.

mod common;
use common::life::probe_listener;
use common::observe::*;
use common::sec::*;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The six kinds a listener can be, by (type, mixin).
const KINDS: [(&str, &str); 6] = [
    ("stream", "sync"),
    ("stream", "thread"),
    ("stream", "fork"),
    ("dgram", "sync"),
    ("dgram", "thread"),
    ("dgram", "fork"),
];

/// Protects: every request of every mixin, stream or datagram, and of
/// every worker of a `workers = 2` listener, is counted exactly once, as
/// requests and as one histogram observation, with no failure.
#[test]
fn requests_are_counted_exactly_in_every_mixin_and_with_two_workers() {
    let mut cfg = String::new();
    for (ty, mixin) in KINDS {
        cfg += &probe_listener(
            &format!("{ty}-{mixin}"),
            "inet",
            ty,
            "127.0.0.1:0",
            mixin,
            "",
        );
    }
    cfg += &probe_listener(
        "two",
        "inet",
        "stream",
        "127.0.0.1:0",
        "thread",
        "workers = 2",
    );
    let d = Daemon::start(&observed(&cfg));
    const N: usize = 25;
    for (ty, mixin) in KINDS {
        let addr = d.addr(&format!("{ty}-{mixin}"));
        if ty == "stream" {
            (0..N).for_each(|_| assert_eq!(stream_cmd(&addr, "PING"), "PONG"));
        } else {
            let c = Dgram::connect(&addr, &d.dir.path);
            (0..N).for_each(|_| assert_eq!(c.cmd("PING"), "PONG"));
        }
    }
    let two = d.addr("two");
    let pids: std::collections::BTreeSet<String> =
        (0..4 * N).map(|_| stream_cmd(&two, "PID")).collect();
    let names: Vec<String> = KINDS.iter().map(|(t, m)| format!("{t}-{m}")).collect();
    let text = scrape_until(&d, "every request ended", |t| {
        names.iter().chain(["two".to_string()].iter()).all(|l| {
            let at = [("listener", l.as_str())];
            sample(t, "sockhost_request_duration_seconds_count", &at)
                == sample(t, "sockhost_requests_total", &at)
                && sample(t, "sockhost_requests_active", &at) == Some(0.0)
        })
    });
    for l in &names {
        let at = [("listener", l.as_str())];
        assert_eq!(
            sample(&text, "sockhost_requests_total", &at),
            Some(N as f64),
            "{l}"
        );
        assert_eq!(
            sample(&text, "sockhost_requests_failed_total", &at),
            Some(0.0),
            "{l}"
        );
        assert_eq!(
            sample(&text, "sockhost_requests_active", &at),
            Some(0.0),
            "{l}"
        );
        assert_eq!(sample(&text, "sockhost_workers", &at), Some(1.0), "{l}");
    }
    let at = [("listener", "two")];
    assert_eq!(
        sample(&text, "sockhost_requests_total", &at),
        Some(4.0 * N as f64)
    );
    assert_eq!(sample(&text, "sockhost_workers", &at), Some(2.0));
    assert!(pids.len() <= 2, "served by the two workers: {pids:?}");
    assert_eq!(sample(&text, "sockhost_generation", &[]), Some(1.0));
}

/// Protects: a hook that panics fails its request (all mixins); a fork
/// child that aborts fails its request and the worker keeps serving; an
/// abort that kills a sync worker fails the request it was serving, the
/// worker is restarted (counted) and the counts carry on from where they
/// were.
#[test]
fn panics_and_aborts_are_counted_as_failed_requests() {
    no_core_dumps();
    let cfg = ["sync", "thread", "fork"]
        .iter()
        .map(|m| probe_listener(m, "inet", "stream", "127.0.0.1:0", m, ""))
        .collect::<String>();
    let d = Daemon::start(&observed(&cfg));
    let close_after = |addr: &str, cmd: &str| {
        let mut p = Probe::connect(addr);
        let _ = p.try_cmd(cmd);
    };
    for m in ["sync", "thread", "fork"] {
        let addr = d.addr(m);
        assert_eq!(stream_cmd(&addr, "PING"), "PONG");
        close_after(&addr, "PANIC");
    }
    close_after(&d.addr("fork"), "ABORT");
    let text = scrape_until(&d, "failures counted", |t| {
        sample(t, "sockhost_requests_failed_total", &[("listener", "fork")]) == Some(2.0)
    });
    for (m, requests, failed) in [("sync", 2.0, 1.0), ("thread", 2.0, 1.0), ("fork", 3.0, 2.0)] {
        let at = [("listener", m)];
        assert_eq!(
            sample(&text, "sockhost_requests_total", &at),
            Some(requests),
            "{m}"
        );
        assert_eq!(
            sample(&text, "sockhost_requests_failed_total", &at),
            Some(failed),
            "{m}"
        );
    }
    let w = worker(&d, "sync");
    close_after(&d.addr("sync"), "ABORT");
    let text = scrape_until(&d, "the sync worker restarted", |t| {
        sample(t, "sockhost_worker_restarts_total", &[("listener", "sync")]) == Some(1.0)
    });
    let at = [("listener", "sync")];
    assert_eq!(sample(&text, "sockhost_requests_total", &at), Some(3.0));
    assert_eq!(
        sample(&text, "sockhost_requests_failed_total", &at),
        Some(2.0)
    );
    assert_ne!(worker(&d, "sync"), w, "a new worker");
    assert_eq!(stream_cmd(&d.addr("sync"), "PING"), "PONG");
    assert_eq!(of(&d, "sockhost_requests_total", "sync"), 4.0);
}

fn refused(text: &str, listener: &str, reason: &str) -> f64 {
    let at = [("listener", listener), ("reason", reason)];
    sample(text, "sockhost_requests_refused_total", &at).unwrap_or(-1.0)
}

/// Protects: refusals are counted by the rule that refused them: `deny`,
/// `allow`, `rate_limit_per_source`, `max_connections_per_source` and the
/// plugin's `verify_request`; a refused request is not a request.
#[test]
fn refusals_are_counted_by_reason() {
    let acl = "allow = [\"127.0.0.0/29\"]\ndeny = [\"127.0.0.3\"]";
    let cfg = probe_listener("acl", "inet", "stream", "127.0.0.1:0", "thread", acl)
        + &probe_listener(
            "rate",
            "inet",
            "stream",
            "127.0.0.1:0",
            "sync",
            "rate_limit_per_source = 1",
        )
        + &probe_listener(
            "conns",
            "inet",
            "stream",
            "127.0.0.1:0",
            "thread",
            "max_connections_per_source = 1",
        )
        + &probe_listener("dg", "inet", "dgram", "127.0.0.1:0", "sync", "");
    let d = Daemon::start(&observed(&cfg));
    let acl = d.inet("acl");
    assert_eq!(ping_from("127.0.0.2", acl), Outcome::Served);
    (0..2).for_each(|_| assert!(matches!(ping_from("127.0.0.3", acl), Outcome::Refused(_))));
    (0..3).for_each(|_| assert!(matches!(ping_from("127.0.0.9", acl), Outcome::Refused(_))));
    let rate = d.inet("rate");
    let served = (0..6)
        .filter(|_| ping_from("127.0.0.4", rate) == Outcome::Served)
        .count();
    let conns = d.inet("conns");
    let mut held = tcp_from("127.0.0.5", conns).expect("connect");
    assert_eq!(ping_on(&mut held), Outcome::Served);
    assert!(matches!(ping_from("127.0.0.5", conns), Outcome::Refused(_)));
    let c = Dgram::connect(&d.addr("dg"), &d.dir.path);
    c.send(b"DENY me").expect("send");
    c.send(b"DENY me too").expect("send");
    assert_eq!(c.cmd("PING"), "PONG");
    let text = scrape_until(&d, "refusals counted", |t| {
        refused(t, "dg", "verify_request") == 2.0
    });
    assert_eq!(refused(&text, "acl", "deny"), 2.0);
    assert_eq!(refused(&text, "acl", "allow"), 3.0);
    assert_eq!(refused(&text, "acl", "rate_limit"), 0.0);
    assert_eq!(
        sample(&text, "sockhost_requests_total", &[("listener", "acl")]),
        Some(1.0)
    );
    assert_eq!(refused(&text, "rate", "rate_limit"), (6 - served) as f64);
    assert!(served < 6, "the burst of 1 ran out");
    assert_eq!(refused(&text, "conns", "max_per_source"), 1.0);
    assert_eq!(refused(&text, "dg", "verify_request"), 2.0);
    assert_eq!(
        sample(&text, "sockhost_requests_total", &[("listener", "dg")]),
        Some(1.0)
    );
    for reason in [
        "deny",
        "allow",
        "peer",
        "rate_limit",
        "max_per_source",
        "verify_request",
    ] {
        assert!(
            refused(&text, "dg", reason) >= 0.0,
            "every reason has a series: {reason}"
        );
    }
}

/// Protects: the active gauge shows requests being handled (three
/// sleeping ones) and drops back to 0; their durations land in the right
/// buckets, and sum and count add up.
#[test]
fn the_active_gauge_and_the_histogram_follow_sleeping_requests() {
    let cfg = probe_listener("sleepy", "inet", "stream", "127.0.0.1:0", "thread", "")
        + &probe_listener("sleepy-fork", "inet", "stream", "127.0.0.1:0", "fork", "");
    let d = Daemon::start(&observed(&cfg));
    for name in ["sleepy", "sleepy-fork"] {
        let addr = d.addr(name);
        let sleepers: Vec<_> = (0..3)
            .map(|_| {
                let addr = addr.clone();
                std::thread::spawn(move || stream_cmd(&addr, "SLEEP 600"))
            })
            .collect();
        scrape_until(&d, "three active", |t| {
            sample(t, "sockhost_requests_active", &[("listener", name)]) == Some(3.0)
        });
        sleepers
            .into_iter()
            .for_each(|s| assert_eq!(s.join().expect("client"), "SLEPT 600"));
        // A fork child's request ends when its worker reaps it, a moment
        // after the client has its answer.
        let text = scrape_until(&d, "none active", |t| {
            let at = [("listener", name)];
            sample(t, "sockhost_request_duration_seconds_count", &at) == Some(3.0)
                && sample(t, "sockhost_requests_active", &at) == Some(0.0)
        });
        let bucket = |le: &str| {
            sample(
                &text,
                "sockhost_request_duration_seconds_bucket",
                &[("listener", name), ("le", le)],
            )
        };
        assert_eq!(
            sample(&text, "sockhost_requests_active", &[("listener", name)]),
            Some(0.0)
        );
        assert_eq!(bucket("0.5"), Some(0.0), "{name}: 600 ms is above 0.5 s");
        assert_eq!(bucket("+Inf"), Some(3.0));
        let sum = sample(
            &text,
            "sockhost_request_duration_seconds_sum",
            &[("listener", name)],
        )
        .unwrap_or(0.0);
        assert!((1.8..30.0).contains(&sum), "{name}: sum {sum}");
        let below_10 = bucket("10").unwrap_or(0.0);
        assert_eq!(below_10, 3.0, "{name}: well under 10 s");
    }
}

/// Protects: the exposition passes `promtool check metrics` (Prometheus'
/// own linter), with traffic on every kind of series.
#[test]
fn promtool_check_metrics_is_clean() {
    if !have_tool("promtool") {
        return;
    }
    let cfg = probe_listener(
        "p",
        "inet",
        "stream",
        "127.0.0.1:0",
        "fork",
        "deny = [\"127.0.0.3\"]",
    );
    let d = Daemon::start(&observed(&cfg));
    assert_eq!(stream_cmd(&d.addr("p"), "PING"), "PONG");
    let _ = ping_from("127.0.0.3", d.inet("p"));
    let text = scrape(&d);
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
}

/// Protects: scrapers that connect and send nothing, or send a 1 MiB
/// request, stall neither another scrape nor a signal (a reload) nor the
/// control socket; the flood is closed.
#[test]
fn hostile_scrapers_stall_nothing() {
    let cfg = probe_listener("p", "inet", "stream", "127.0.0.1:0", "sync", "");
    let d = Daemon::start(&observed(&cfg));
    let addr = metrics_addr(&d);
    let idle: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    let mut flood = TcpStream::connect(addr).expect("connect");
    let big = vec![b'x'; 1 << 20];
    let sender = std::thread::spawn(move || {
        let _ = flood.write_all(&big);
        read_until_eof(&mut flood, DEADLINE).is_some()
    });
    let start = Instant::now();
    for _ in 0..5 {
        assert!(scrape(&d).contains("sockhost_requests_total"));
    }
    assert!(
        sender.join().expect("flood thread"),
        "the flood's connection is closed"
    );
    let (code, out, err) = ctl(&d, &["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = ctl(&d, &["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("generation 2"), "{out}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    d.signal(libc::SIGHUP);
    assert!(d.wait_log("generation 3", DEADLINE), "{}", d.log());
    drop(idle);
    let nf = http(addr, "GET /nothing HTTP/1.0\r\n\r\n");
    assert!(nf.starts_with("HTTP/1.1 404 "), "{nf}");
}

/// Protects: a real Prometheus server scrapes the endpoint and its HTTP
/// API answers `sockhost_requests_total` with the exact count.
#[test]
fn a_real_prometheus_scrapes_the_exact_count() {
    if !have_tool("prometheus") {
        return;
    }
    let cfg = probe_listener("p", "inet", "stream", "127.0.0.1:0", "thread", "");
    let d = Daemon::start(&observed(&cfg));
    (0..7).for_each(|_| assert_eq!(stream_cmd(&d.addr("p"), "PING"), "PONG"));
    let target = metrics_addr(&d);
    let (hold, port) = common::life::hold_port();
    drop(hold);
    let conf = d.dir.write(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sockhost\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    );
    let prom = Command::new("prometheus")
        .arg(format!("--config.file={}", conf.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            d.dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let mut prom = KillOnDrop(prom);
    let api: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let query = "GET /api/v1/query?query=sockhost_requests_total HTTP/1.0\r\n\r\n";
    let start = Instant::now();
    let mut last = String::new();
    let found = loop {
        if start.elapsed() > Duration::from_secs(60) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(500));
        if TcpStream::connect(api).is_err() {
            continue;
        }
        last = http(api, query);
        if last.contains("\"listener\":\"p\"") {
            break true;
        }
    };
    prom.stop();
    assert!(found, "no sample from Prometheus within 60 s: {last}");
    assert!(last.contains("\"status\":\"success\""), "{last}");
    assert!(last.contains(",\"7\"]"), "the value is 7: {last}");
}

/// A child process killed and reaped when dropped (a failed assertion
/// must not leave a Prometheus server behind).
struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.stop();
    }
}
