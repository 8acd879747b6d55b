//! A real HAProxy (started in the foreground, `haproxy -db`) on loopback
//! in front of sockhostd with `proxy_protocol = true`, running the shipped
//! packaging/haproxy.cfg with its addresses swapped for test ports, plus a
//! v1 (`send-proxy`) backend beside its v2 one. Skipped (SKIPPED on
//! stderr) without haproxy, except under CI or SOCKHOST_REQUIRE_HAPROXY=1.

mod common;
use common::proxy::*;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// HAProxy, killed and reaped when dropped.
struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let (l, port) = life::hold_port();
    drop(l);
    port
}

/// The shipped config, pointed at `backend` from frontends on `v2_port`
/// (the shipped one) and `v1_port` (the same with send-proxy).
fn config(dir: &TestDir, backend: &str, v2_port: u16, v1_port: u16) -> String {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/haproxy.cfg");
    let text = std::fs::read_to_string(&shipped).expect("packaging/haproxy.cfg");
    let stats = dir.join("stats.sock");
    let mut cfg = text
        .replace(
            "log /dev/log local0",
            &format!(
                "log stderr format raw local0\n    stats socket {}",
                stats.display()
            ),
        )
        .replace("0.0.0.0:7000", &format!("127.0.0.1:{v2_port}"))
        .replace("10.0.0.11:7000", backend)
        .replace("server host2 10.0.0.12:7000\n", "")
        .replace("inter 2s", "inter 200ms")
        .replace("maxconn 20000", "maxconn 1000");
    cfg.push_str(&format!(
        "\nfrontend app_v1\n    bind 127.0.0.1:{v1_port}\n    default_backend sockhost_v1\n\n\
         backend sockhost_v1\n    server host1 {backend} send-proxy check check-send-proxy inter 200ms\n"
    ));
    cfg
}

/// HAProxy's `show stat` rows for servers: (backend, server, status, check).
fn server_states(stats: &Path) -> Vec<(String, String, String, String)> {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(stats) else {
        return Vec::new();
    };
    let _ = s.set_read_timeout(Some(DEADLINE));
    let _ = s.write_all(b"show stat\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|f| f.len() > 37 && f[1] != "FRONTEND" && f[1] != "BACKEND")
        .map(|f| (f[0].clone(), f[1].clone(), f[17].clone(), f[36].clone()))
        .collect()
}

/// Protects: behind HAProxy with send-proxy-v2 and send-proxy, the plugin
/// sees the original client (the test's own address as HAProxy saw it),
/// the UNIQUE_ID TLV arrives, health checks with check-send-proxy pass,
/// and 200 requests through it succeed with 0 errors.
#[test]
fn behind_haproxy_the_plugin_sees_the_original_client() {
    let Some(haproxy) = haproxy_or_skip("behind_haproxy_the_plugin_sees_the_original_client")
    else {
        return;
    };
    let trusted = "proxy_trusted = [\"127.0.0.0/8\"]";
    let d = Daemon::start(&listener(
        "p",
        "inet",
        "stream",
        "127.0.0.1:0",
        "thread",
        &plugin("sockhost_probe"),
        &format!("proxy_protocol = true\n{trusted}"),
    ));
    let dir = TestDir::new("hap");
    let (v2_port, v1_port) = (free_port(), free_port());
    let cfg = dir.write("haproxy.cfg", &config(&dir, &d.addr("p"), v2_port, v1_port));
    let check = Command::new(&haproxy)
        .arg("-c")
        .arg("-f")
        .arg(&cfg)
        .output()
        .expect("haproxy -c");
    assert!(
        check.status.success(),
        "config check: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _h = Haproxy(
        Command::new(&haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy"),
    );
    let stats = dir.join("stats.sock");
    let up = life::wait_until(DEADLINE, || {
        let states = server_states(&stats);
        states.len() == 2
            && states
                .iter()
                .all(|s| s.2 == "UP" && s.3.starts_with("L4OK"))
    });
    assert!(
        up,
        "health checks pass: {:?}\n{}",
        server_states(&stats),
        d.log()
    );
    for port in [v2_port, v1_port] {
        let start = Instant::now();
        let mut errors = 0;
        for _ in 0..100 {
            if !one_request_keeps_its_client(port) {
                errors += 1;
            }
        }
        assert_eq!(
            errors,
            0,
            "port {port}: {errors} errors in {:?}",
            start.elapsed()
        );
    }
    let mut s = TcpStream::connect(("127.0.0.1", v2_port)).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    s.write_all(b"TLV 5\n").expect("send");
    let mut id = String::new();
    BufReader::new(&s).read_line(&mut id).expect("reply");
    // unique-id-format %{+X}o %ci:%cp_...: the client's address in hex.
    let me = s.local_addr().expect("local address");
    let expect = format!("7F000001:{:04X}_", me.port());
    assert!(
        id.starts_with(&expect),
        "UNIQUE_ID reaches the plugin: {id:?}, want {expect}"
    );
    assert!(!d.log().contains("refused by"), "{}", d.log());
}

/// One probe conversation through HAProxy on `port`: CLIENT is this
/// connection's own local address, and PING is answered.
fn one_request_keeps_its_client(port: u16) -> bool {
    let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(me) = s.local_addr() else { return false };
    let mut r = BufReader::new(&s);
    let mut w = &s;
    let mut line = String::new();
    let ok = w.write_all(b"CLIENT\nPING\n").is_ok()
        && r.read_line(&mut line).is_ok()
        && line.trim_end() == me.to_string();
    line.clear();
    ok && r.read_line(&mut line).is_ok() && line == "PONG\n"
}
