//! `sockhostctl import` as a user runs it: the real binary on real files,
//! its exit codes and messages, its output as a drop-in of a real config
//! that `sockhostd --check` accepts and the daemon serves.

mod common;
use common::life::hold_port;
use common::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn sockhostctl() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sockhostctl"))
}

fn corpus(p: &str) -> PathBuf {
    workspace().join("daemon/tests/corpus/import").join(p)
}

/// `sockhostctl import ARGS...`: exit code, stdout, stderr.
fn import(args: &[&Path]) -> (i32, String, String) {
    let out = Command::new(sockhostctl())
        .arg("import")
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

/// A main config in `dir` that includes `conf.d/*.toml`, with plugins
/// from the build's target folder; returns its path.
fn main_config(dir: &TestDir) -> PathBuf {
    dir.write(
        "sockhost.toml",
        &format!(
            "[daemon]\nplugin_dir = \"{}\"\ncontrol_socket = \"\"\ninclude = [\"conf.d/*.toml\"]\n",
            target_dir().display()
        ),
    )
}

/// A loopback port free for TCP and UDP (released on return).
fn free_port() -> u16 {
    loop {
        let (tcp, port) = hold_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            drop(tcp);
            return port;
        }
    }
}

/// Protects: exit 0 when everything was carried over (Debian's
/// xinetd.d folder, every service disabled: notes, no loss; micro-httpd's
/// Accept=yes pair), 3 when something is named on stderr as
/// `FILE:LINE: attribute: why` (fingerd's example: log_type), 1 for an
/// input that cannot be read or parsed (FILE:LINE), 2 for a bad command line.
#[test]
fn exit_codes_and_messages() {
    let (code, out, err) = import(&[Path::new("xinetd"), &corpus("xinetd.d")]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("[[listener]]"), "{out}");
    let echo = corpus("xinetd.d/echo");
    assert!(
        err.contains(&format!(
            "{}:7: disable: service `echo` is disabled: left out",
            echo.display()
        )),
        "{err}"
    );

    let (code, out, err) = import(&[Path::new("systemd"), &corpus("systemd/micro-httpd.socket")]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(
        out.contains("command = [\"/usr/sbin/micro-httpd\", \"/var/www/html\"]"),
        "{out}"
    );

    let finger = corpus("finger.xinetd");
    let (code, out, err) = import(&[Path::new("xinetd"), &finger]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(
        err,
        format!(
            "{}:11: log_type: sockhost logs where the daemon's --log says (journald, stderr, syslog, a file), not per service\n",
            finger.display()
        )
    );
    assert!(out.contains("name = \"finger-v6\""), "{out}");

    let (code, _, err) = import(&[Path::new("inetd"), &corpus("inetd.conf")]);
    assert_eq!(code, 3, "tcpd's hosts.allow is not carried over: {err}");

    let dir = TestDir::new("import-bad");
    let bad = dir.write("bad", "service x\n{\nwait = no\n");
    let (code, out, err) = import(&[Path::new("xinetd"), &bad]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains(&format!("{}:1: `service x` is never closed", bad.display())),
        "{err}"
    );
    let missing = dir.join("nonesuch.conf");
    let (code, _, err) = import(&[Path::new("inetd"), &missing]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("{}:1: cannot read", missing.display())),
        "{err}"
    );

    for args in [&["bogus", "x"][..], &["inetd"][..], &[][..]] {
        let paths: Vec<&Path> = args.iter().map(Path::new).collect();
        let (code, _, err) = import(&paths);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

/// Protects: an imported xinetd config of internal services is a drop-in
/// the daemon serves unchanged (relative handler names resolve against
/// plugin_dir): echo echoes, chargen sends RFC 864's first line, time
/// answers a datagram with four bytes.
#[test]
fn imported_internal_services_serve_as_a_drop_in() {
    let (echo, chargen, time) = (free_port(), free_port(), free_port());
    let dir = TestDir::new("import-serve");
    let xinetd = dir.write(
        "xinetd.d/internal",
        &format!(
            "defaults\n{{\n\tonly_from = 127.0.0.1\n}}\n\
             service echo\n{{\n\ttype = INTERNAL UNLISTED\n\tid = echo-stream\n\tsocket_type = stream\n\
             \tprotocol = tcp\n\tuser = root\n\twait = no\n\tport = {echo}\n\tbind = 127.0.0.1\n}}\n\
             service chargen\n{{\n\ttype = INTERNAL UNLISTED\n\tsocket_type = stream\n\twait = no\n\
             \tport = {chargen}\n\tbind = 127.0.0.1\n}}\n\
             service time\n{{\n\ttype = INTERNAL UNLISTED\n\tsocket_type = dgram\n\tprotocol = udp\n\
             \twait = yes\n\tport = {time}\n\tbind = 127.0.0.1\n}}\n"
        ),
    );
    let (code, out, err) = import(&[Path::new("xinetd"), &xinetd]);
    assert_eq!(code, 0, "{err}");
    dir.write("conf.d/imported.toml", &out);
    let config = main_config(&dir);
    let (code, _, err) = run_cli(&["--check", "-c", &config.display().to_string()]);
    assert_eq!(code, 0, "--check refused the import:\n{out}\n{err}");
    let d = Daemon::try_start_in(dir, config, &[])
        .unwrap_or_else(|f| panic!("{}:\n{out}\n{}", f.status, f.log));

    let mut s = Stream::connect(&format!("127.0.0.1:{echo}")).expect("connect echo");
    s.write_all(b"imported\r\n").expect("send");
    s.shutdown_write();
    assert_eq!(s.read_all().expect("echo"), b"imported\r\n");

    let mut s = Stream::connect(&format!("127.0.0.1:{chargen}")).expect("connect chargen");
    let mut line = [0u8; 74];
    s.read_exact(&mut line).expect("chargen line");
    assert_eq!(
        &line[..],
        &b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n"[..]
    );
    drop(s);

    let c = Dgram::connect(&format!("127.0.0.1:{time}"), &d.dir.path);
    c.send(b"").expect("send");
    assert_eq!(c.recv().expect("time reply").len(), 4);
}

/// Whether this build has what imported programs need: the exec plugin
/// and the per-listener `user`/`group` keys. Without them the test says
/// SKIPPED, or fails when SOCKHOST_REQUIRE_EXEC is set.
fn programs_supported() -> bool {
    let skip = |why: String| {
        assert!(
            std::env::var_os("SOCKHOST_REQUIRE_EXEC").is_none(),
            "SOCKHOST_REQUIRE_EXEC is set: {why}"
        );
        eprintln!("SKIPPED: {why}");
        false
    };
    if !target_dir().join("libsockhost_exec.so").exists() {
        return skip("libsockhost_exec.so is not built (run cargo build --workspace)".into());
    }
    let dir = TestDir::new("import-probe-keys");
    let cfg = dir.write(
        "sockhost.toml",
        &format!(
            "[daemon]\ncontrol_socket = \"\"\n{}",
            listener(
                "p",
                "inet",
                "stream",
                "127.0.0.1:0",
                "fork",
                &plugin("sockhost_probe"),
                "user = \"nobody\"\ngroup = \"nogroup\"\n"
            )
        ),
    );
    let (code, _, err) = run_cli(&["--check", "-c", &cfg.display().to_string()]);
    if code != 0 && err.contains("user") {
        return skip(format!(
            "the listener keys user/group are not accepted: {err}"
        ));
    }
    true
}

/// Protects: programs imported from all three formats (inetd.conf,
/// xinetd, a systemd Accept=yes pair) make a drop-in `sockhostd --check`
/// accepts, and an imported `/bin/cat` service serves a connection.
#[test]
fn imported_programs_pass_check_and_serve() {
    if !programs_supported() {
        return;
    }
    let (p_inetd, p_xinetd, p_systemd) = (free_port(), free_port(), free_port());
    let dir = TestDir::new("import-programs");
    let inetd = dir.write(
        "inetd.conf",
        &format!("127.0.0.1:{p_inetd} stream tcp4 nowait nobody /bin/cat cat\n"),
    );
    let xinetd = dir.write(
        "xinetd.conf",
        &format!(
            "service cat\n{{\n\ttype = UNLISTED\n\tsocket_type = stream\n\twait = no\n\tuser = nobody\n\
             \tserver = /bin/cat\n\tport = {p_xinetd}\n\tbind = 127.0.0.1\n\tinstances = 5\n}}\n"
        ),
    );
    let socket = dir.write(
        "units/kitten.socket",
        &format!(
            "[Unit]\nDescription=kitten\n[Socket]\nListenStream=127.0.0.1:{p_systemd}\nAccept=yes\n"
        ),
    );
    dir.write(
        "units/kitten@.service",
        "[Service]\nExecStart=-/bin/cat\nUser=nobody\nStandardInput=socket\n",
    );
    for (format, path, name) in [
        ("inetd", &inetd, "a"),
        ("xinetd", &xinetd, "b"),
        ("systemd", &socket, "c"),
    ] {
        let (code, out, err) = import(&[Path::new(format), path]);
        assert_eq!(code, 0, "{format}: {err}");
        dir.write(&format!("conf.d/{name}.toml"), &out);
    }
    let config = main_config(&dir);
    let (code, _, err) = run_cli(&["--check", "-c", &config.display().to_string()]);
    assert_eq!(code, 0, "--check refused the import: {err}");
    let _d = Daemon::try_start_in(dir, config, &[])
        .unwrap_or_else(|f| panic!("{}:\n{}", f.status, f.log));
    for port in [p_inetd, p_xinetd, p_systemd] {
        let mut s = Stream::connect(&format!("127.0.0.1:{port}")).expect("connect");
        s.write_all(b"meow\n").expect("send");
        s.shutdown_write();
        assert_eq!(s.read_all().expect("cat"), b"meow\n", "port {port}");
    }
}

/// Protects: the inetd.conf lines Debian's git, rsync and tftpd-hpa
/// document (the corpus, without fingerd's, whose program is not
/// installed) import whole (exit 0) and pass `sockhostd --check` with
/// the real programs.
#[test]
fn debians_documented_inetd_lines_pass_check() {
    if !programs_supported() {
        return;
    }
    let need = [
        ("/usr/bin/git", "git"),
        ("/usr/bin/rsync", "rsync"),
        ("/usr/sbin/in.tftpd", "tftpd-hpa"),
    ];
    if !need
        .iter()
        .all(|(tool, pkg)| tool_or_skip(tool, pkg, "SOCKHOST_REQUIRE_PROGRAMS"))
    {
        return;
    }
    let dir = TestDir::new("import-debian");
    let corpus_text = std::fs::read_to_string(corpus("inetd.conf")).expect("corpus");
    let lines: Vec<&str> = corpus_text
        .lines()
        .filter(|l| !l.starts_with("finger"))
        .collect();
    let conf = dir.write("inetd.conf", &(lines.join("\n") + "\n"));
    let (code, out, err) = import(&[Path::new("inetd"), &conf]);
    assert_eq!(code, 0, "{err}");
    for name in ["git", "rsync", "rsync-v6", "tftp", "tftp-v6"] {
        assert!(
            out.contains(&format!("name = \"{name}\"")),
            "{name}:\n{out}"
        );
    }
    dir.write("conf.d/inetd.toml", &out);
    let config = main_config(&dir);
    let (code, _, err) = run_cli(&["--check", "-c", &config.display().to_string()]);
    assert_eq!(code, 0, "--check refused the import:\n{out}\n{err}");
}

/// Protects: xinetd's `include` and `includedir` are followed from the
/// file given (relative to its folder), `includedir` skips names with a
/// `.` or ending in `~` as xinetd does, and `defaults` reach the included
/// services; a systemd service's `EnvironmentFile=` is read into `env`
/// (a note, not a loss) and a missing optional one (`-`) is no loss.
#[test]
fn includes_and_environment_files_are_followed() {
    let dir = TestDir::new("import-include");
    let svc = |name: &str, port: u16| {
        format!(
            "service {name}\n{{\n\ttype = UNLISTED\n\tsocket_type = stream\n\twait = no\n\tuser = nobody\n\
             \tserver = /bin/cat\n\tport = {port}\n}}\n"
        )
    };
    dir.write("d/kept", &svc("kept", 1001));
    dir.write("d/old.dpkg-old", &svc("dotted", 1002));
    dir.write("d/kept~", &svc("backup", 1003));
    dir.write("more.conf", &svc("included", 1004));
    let main = dir.write(
        "xinetd.conf",
        "defaults\n{\n\tonly_from = 192.168.7.0\n}\nincludedir d\ninclude more.conf\n",
    );
    let (code, out, err) = import(&[Path::new("xinetd"), &main]);
    assert_eq!(code, 0, "{err}");
    let doc: toml::Table = toml::from_str(&out).expect("TOML");
    let ls = doc["listener"].as_array().expect("listeners");
    let names: Vec<&str> = ls.iter().filter_map(|l| l["name"].as_str()).collect();
    assert_eq!(names, ["kept", "included"]);
    for l in ls {
        assert_eq!(
            l["allow"][0].as_str(),
            Some("192.168.7.0/24"),
            "defaults apply"
        );
    }

    let env = dir.write("env", "# c\nGREETING=\"hello there\"\nLANG=C.UTF-8\n");
    let socket = dir.write(
        "units/e.socket",
        "[Socket]\nListenStream=127.0.0.1:1005\nAccept=yes\n",
    );
    dir.write(
        "units/e@.service",
        &format!(
            "[Service]\nExecStart=/bin/cat\nStandardInput=socket\nEnvironmentFile=-/nonexistent/env\n\
             EnvironmentFile={}\nEnvironment=LANG=C\n",
            env.display()
        ),
    );
    let (code, out, err) = import(&[Path::new("systemd"), &socket]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("EnvironmentFile: {} read now", env.display())),
        "{err}"
    );
    let doc: toml::Table = toml::from_str(&out).expect("TOML");
    let e = &doc["listener"][0]["config"]["env"];
    assert_eq!(e["GREETING"].as_str(), Some("hello there"));
    assert_eq!(
        e["LANG"].as_str(),
        Some("C"),
        "Environment= after the file wins"
    );

    std::fs::remove_file(dir.join("units/e@.service")).expect("rm");
    let (code, _, err) = import(&[Path::new("systemd"), &socket]);
    assert_eq!(code, 1, "the service is missing: {err}");
    assert!(err.contains("e@.service:1: cannot read"), "{err}");
}
