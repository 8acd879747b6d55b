//! Helpers for the metrics, control-socket and access-log suites: a config
//! head that turns both on inside the test's own folder, scraping and
//! reading samples, running `sockhostctl`, and finding Prometheus' tools.
//!
//! Promises: nothing here waits past [`DEADLINE`]; a config made with
//! [`observed`] never touches /run/sockhost (its control socket is in the
//! daemon's temp folder) and binds its metrics port on loopback.

use super::{Daemon, DEADLINE};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `[daemon]` with a control socket `ctl.sock` next to the config and
/// metrics on an ephemeral loopback port, then `listeners`.
pub fn observed(listeners: &str) -> String {
    format!("[daemon]\ncontrol_socket = \"ctl.sock\"\nmetrics = \"127.0.0.1:0\"\n\n{listeners}")
}

/// The sockhostctl binary cargo built with the daemon.
pub fn sockhostctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sockhostctl"))
}

/// The daemon's control socket (as [`observed`] places it).
pub fn ctl_socket(d: &Daemon) -> PathBuf {
    d.dir.join("ctl.sock")
}

/// Run `sockhostctl -s SOCKET ARGS`: (exit code, stdout, stderr).
pub fn ctl(d: &Daemon, args: &[&str]) -> (i32, String, String) {
    let socket = ctl_socket(d);
    let mut all = vec!["-s", socket.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    ctl_raw(&all)
}

/// Run `sockhostctl ARGS` as given.
pub fn ctl_raw(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(sockhostctl())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sockhostctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Where the daemon serves metrics (from its `metrics on http://` line).
pub fn metrics_addr(d: &Daemon) -> SocketAddr {
    let log = d.log();
    let line = log
        .lines()
        .find_map(|l| l.split("metrics on http://").nth(1))
        .unwrap_or_else(|| panic!("no metrics line in:\n{log}"));
    line.trim_end_matches("/metrics")
        .trim()
        .trim_end_matches("/metrics")
        .parse()
        .unwrap_or_else(|e| panic!("metrics address in {line:?}: {e}"))
}

/// One HTTP exchange: `request` sent as is; the whole answer.
pub fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, DEADLINE).expect("connect to metrics");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    s.write_all(request.as_bytes()).expect("send request");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read answer");
    out
}

/// `GET /metrics`: the body (the status must be 200).
pub fn scrape(d: &Daemon) -> String {
    let answer = http(
        metrics_addr(d),
        "GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    );
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_string()
}

/// The value of sample `name{labels}` in `text` (labels in any order).
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
        if n != name {
            return None;
        }
        let inner = rest.strip_suffix('}')?;
        let have: Vec<&str> = inner.split(',').filter(|p| !p.is_empty()).collect();
        let want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let same = have.len() == want.len() && want.iter().all(|w| have.contains(&w.as_str()));
        same.then(|| value.parse().ok()).flatten()
    })
}

/// A listener's sample from a fresh scrape (0 when absent).
pub fn of(d: &Daemon, name: &str, listener: &str) -> f64 {
    sample(&scrape(d), name, &[("listener", listener)]).unwrap_or(0.0)
}

/// Scrape until `f(text)` holds; panic with the last text at the deadline.
pub fn scrape_until(d: &Daemon, what: &str, f: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let text = scrape(d);
        if f(&text) {
            return text;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}:\n{text}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether Prometheus' `tool` is installed (else SKIPPED, or a failure
/// under SOCKHOST_REQUIRE_PROMETHEUS=1).
pub fn have_tool(tool: &str) -> bool {
    super::tool_or_skip(tool, "prometheus", "SOCKHOST_REQUIRE_PROMETHEUS")
}
