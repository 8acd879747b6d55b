//! The exec plugin's environment, as a program sees it, for inet, inet6
//! and unix stream listeners and behind a PROXY header: tcpserver's and
//! systemd's variables with exact values (addresses without brackets,
//! IPv4-mapped ones as IPv4), ucspi-unix's peer credentials, the default
//! PATH, `env`, `pass_env`, `argv0` and `directory`; nothing else leaks
//! from the daemon's environment.

mod common;
use common::exec::*;
use common::proxy::{sa, v1};
use common::*;
use std::io::Write;

const PRINT_ENV: &str = "echo \"ARGV0=$0\"; echo \"CWD=$(pwd)\"; env";

/// Protects: an inet client's address and port and the listener's own
/// as the program sees them, in fork and thread mode, and only the
/// variables the contract names (plus what `env` adds and what
/// `pass_env` carries over from the daemon).
#[test]
fn inet_programs_get_tcpserver_and_systemd_variables() {
    let dir = scripts_dir("exec-env");
    let s = script(&dir.path, "env.sh", PRINT_ENV);
    for mixin in ["fork", "thread", "sync"] {
        let cfg = exec_listener(
            "e",
            "inet",
            "stream",
            "127.0.0.1:0",
            mixin,
            &format!("[\"{}\"]", s.display()),
            "",
            "env = { GREETING = \"hi there\" }\npass_env = [\"SOCKHOST_LOG\", \"NOT_SET_ANYWHERE\"]",
        );
        let d = Daemon::start(&cfg);
        let addr = d.inet("e");
        let mut c = std::net::TcpStream::connect(addr).expect("connect");
        let me = c.local_addr().expect("local");
        c.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut out = String::new();
        std::io::Read::read_to_string(&mut c, &mut out).expect("read");
        let env = env_map(&out);
        let want = [
            ("PROTO", "TCP".to_string()),
            ("TCPREMOTEIP", "127.0.0.1".into()),
            ("TCPREMOTEPORT", me.port().to_string()),
            ("TCPLOCALIP", "127.0.0.1".into()),
            ("TCPLOCALPORT", addr.port().to_string()),
            ("REMOTE_ADDR", "127.0.0.1".into()),
            ("REMOTE_PORT", me.port().to_string()),
            ("SOCKHOST_LISTENER", "e".into()),
            (
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            ("GREETING", "hi there".into()),
            ("SOCKHOST_LOG", "debug".into()),
            ("ARGV0", s.display().to_string()),
            ("CWD", "/".into()),
        ];
        for (k, v) in &want {
            assert_eq!(env.get(*k), Some(v), "{mixin}: {k} in\n{out}");
        }
        let extra: Vec<&String> = env
            .keys()
            .filter(|k| {
                !want.iter().any(|(w, _)| w == k) && !["PWD", "SHLVL", "_"].contains(&k.as_str())
            })
            .collect();
        assert!(
            extra.is_empty(),
            "{mixin}: unexpected variables {extra:?} in\n{out}"
        );
    }
}

/// Protects: inet6 addresses are written without brackets; `argv0` and
/// `directory` reach the program.
#[test]
fn inet6_addresses_have_no_brackets() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback");
        return;
    }
    let dir = scripts_dir("exec-env6");
    // `sh -c` with no name after the script: $0 is sh's own argv[0].
    let cfg = exec_listener(
        "e6",
        "inet6",
        "stream",
        "[::1]:0",
        "thread",
        &format!("[\"/bin/sh\", \"-c\", {PRINT_ENV:?}]"),
        "",
        &format!("argv0 = \"in.env\"\ndirectory = \"{}\"", dir.path.display()),
    );
    let d = Daemon::start(&cfg);
    let addr = d.inet("e6");
    let mut c = std::net::TcpStream::connect(addr).expect("connect");
    let me = c.local_addr().expect("local");
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut c, &mut out).expect("read");
    let env = env_map(&out);
    assert_eq!(
        env.get("TCPREMOTEIP").map(String::as_str),
        Some("::1"),
        "{out}"
    );
    assert_eq!(env.get("REMOTE_ADDR").map(String::as_str), Some("::1"));
    assert_eq!(env.get("TCPLOCALIP").map(String::as_str), Some("::1"));
    assert_eq!(env.get("TCPREMOTEPORT"), Some(&me.port().to_string()));
    assert_eq!(env.get("TCPLOCALPORT"), Some(&addr.port().to_string()));
    assert_eq!(env.get("ARGV0").map(String::as_str), Some("in.env"));
    assert_eq!(env.get("CWD"), Some(&dir.path.display().to_string()));
}

/// Protects: a unix stream program gets PROTO=UNIX, the peer's pid, euid
/// and egid (SO_PEERCRED) and the socket's path.
#[test]
fn unix_programs_get_the_peer_s_credentials() {
    let dir = scripts_dir("exec-envu");
    let s = script(&dir.path, "env.sh", PRINT_ENV);
    let sock = dir.join("u.sock");
    let cfg = exec_listener(
        "u",
        "unix",
        "stream",
        &sock.display().to_string(),
        "fork",
        &format!("[\"{}\"]", s.display()),
        "",
        "",
    );
    let d = Daemon::start(&cfg);
    let out = converse(&d.addr("u"), b"");
    let env = env_map(&out);
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!(env.get("PROTO").map(String::as_str), Some("UNIX"), "{out}");
    assert_eq!(
        env.get("UNIXREMOTEPID"),
        Some(&std::process::id().to_string())
    );
    assert_eq!(env.get("UNIXREMOTEEUID"), Some(&uid.to_string()));
    assert_eq!(env.get("UNIXREMOTEEGID"), Some(&gid.to_string()));
    assert_eq!(env.get("UNIXLOCALPATH"), Some(&sock.display().to_string()));
    assert_eq!(env.get("SOCKHOST_LISTENER").map(String::as_str), Some("u"));
    assert!(!env.contains_key("REMOTE_ADDR") && !env.contains_key("TCPREMOTEIP"));
}

/// Protects: behind `proxy_protocol` the remote variables are the
/// header's client, and an IPv4-mapped client is written as IPv4.
#[test]
fn proxied_clients_come_from_the_header_and_mapped_ones_as_ipv4() {
    let dir = scripts_dir("exec-envp");
    let s = script(&dir.path, "env.sh", PRINT_ENV);
    let cfg = exec_listener(
        "p",
        "inet",
        "stream",
        "127.0.0.1:0",
        "fork",
        &format!("[\"{}\"]", s.display()),
        "proxy_protocol = true\nproxy_trusted = [\"127.0.0.0/8\"]",
        "",
    );
    let d = Daemon::start(&cfg);
    let addr = d.addr("p");
    let cases = [
        (
            sa("192.0.2.7:12345"),
            sa("10.0.0.1:443"),
            "192.0.2.7",
            "12345",
        ),
        (
            sa("[2001:db8::7]:4000"),
            sa("[2001:db8::1]:443"),
            "2001:db8::7",
            "4000",
        ),
        (
            sa("[::ffff:198.51.100.9]:5555"),
            sa("[::ffff:10.0.0.1]:443"),
            "198.51.100.9",
            "5555",
        ),
    ];
    for (src, dst, ip, port) in cases {
        let mut c = Stream::connect(&addr).expect("connect");
        c.write_all(&v1(src, dst)).expect("header");
        c.shutdown_write();
        let out = String::from_utf8_lossy(&c.read_all().expect("read")).into_owned();
        let env = env_map(&out);
        assert_eq!(
            env.get("TCPREMOTEIP").map(String::as_str),
            Some(ip),
            "{src}: {out}"
        );
        assert_eq!(env.get("REMOTE_ADDR").map(String::as_str), Some(ip));
        assert_eq!(env.get("TCPREMOTEPORT").map(String::as_str), Some(port));
        assert_eq!(env.get("REMOTE_PORT").map(String::as_str), Some(port));
        assert_eq!(env.get("TCPLOCALIP").map(String::as_str), Some("127.0.0.1"));
    }
}
