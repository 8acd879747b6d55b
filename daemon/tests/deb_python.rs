//! The sockhost-python package: `make deb` builds it beside sockhost, with
//! the Python plugin compiled against Debian's python3 (in its own target
//! folder, target/deb-python). These tests check its control fields (the
//! libpython Depends that dpkg-shlibdeps found, and the exact sockhost it
//! belongs to), that it holds the plugin and its docs and nothing else,
//! with no RUNPATH, that lintian finds no error (as for sockhost), and then
//! install both packages with dpkg in a scratch root and serve an unchanged
//! socketserver handler through the installed daemon and plugin on
//! Debian's libpython, to a real client.
//!
//! Needs what `deb.rs` needs, plus Debian's python3-dev (/usr/bin/python3
//! and its shared libpython to link) and binutils' readelf; a missing one
//! prints SKIPPED, unless SOCKHOST_REQUIRE_DEB=1 (CI sets it).

mod common;
use common::deb::*;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

const PLUGIN: &str = "/usr/lib/sockhost/plugins/libsockhost_python.so";

/// dpkg-dev, readelf, and Debian's python3 with python3-dev.
fn tools() -> bool {
    tool("dpkg-deb", "dpkg")
        && tool("dpkg-shlibdeps", "dpkg-dev")
        && tool("readelf", "binutils")
        && tool("/usr/bin/python3", "python3-dev")
        && tool("/usr/bin/python3-config", "python3-dev")
}

/// What Debian's python3 says to `code`.
fn debian_python(code: &str) -> String {
    stdout(Command::new("/usr/bin/python3").args(["-c", code]))
        .trim()
        .to_owned()
}

/// The file Debian's libpython is (the soname in LIBDIR), e.g.
/// /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0.
fn debian_libpython() -> PathBuf {
    PathBuf::from(debian_python(
        "import os, sysconfig as c; \
         print(os.path.join(c.get_config_var('LIBDIR'), c.get_config_var('INSTSONAME')))",
    ))
}

/// `make deb`: both packages, sockhost's first.
fn both(dir: &TestDir, compress: &str) -> (PathBuf, PathBuf) {
    let mut debs = make_debs(
        "deb",
        &dir.join("debs"),
        env!("CARGO_PKG_VERSION"),
        compress,
    );
    let python = debs.pop().expect("sockhost-python");
    (debs.pop().expect("sockhost"), python)
}

#[test]
fn sockhost_python_holds_the_plugin_linked_to_debians_libpython_and_lintian_finds_no_error() {
    if !tools() {
        return;
    }
    let dir = TestDir::new("debpy");
    let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
    let (_, deb) = both(&dir, "xz");

    assert_eq!(field(&deb, "Package"), "sockhost-python");
    assert_eq!(field(&deb, "Source"), "sockhost");
    assert_eq!(field(&deb, "Version"), version);
    let depends = field(&deb, "Depends");
    let soname = debian_libpython();
    let libpython = format!(
        "libpython{} (>= ",
        debian_python("import sys; print('%d.%d' % sys.version_info[:2])")
    );
    for want in [
        libpython.as_str(),
        "libc6 (>= ",
        &format!("sockhost (= {version})"),
    ] {
        assert!(depends.contains(want), "{want} in Depends: {depends}");
    }

    // The plugin and the docs policy asks for, nothing else (folders aside).
    let files = contents(&deb);
    let doc = "/usr/share/doc/sockhost-python";
    let want = [
        PLUGIN.to_owned(),
        format!("{doc}/changelog.Debian.gz"),
        format!("{doc}/copyright"),
        "/usr/share/lintian/overrides/sockhost-python".to_owned(),
    ];
    let listed: Vec<&String> = files
        .iter()
        .filter(|(_, (mode, _))| !mode.starts_with('d'))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(listed, want.iter().collect::<Vec<_>>(), "{files:#?}");
    for (path, (mode, owner)) in &files {
        assert_eq!(owner, "root/root", "{path}");
        if !mode.starts_with('d') {
            assert_eq!(mode, "-rw-r--r--", "{path}");
        }
    }

    // No conffiles; one maintainer script, the postinst that reloads the
    // daemon onto the new plugin on upgrade (its branches: deb_scripts.rs).
    let ctl = dir.join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&ctl));
    let mut area: Vec<String> = std::fs::read_dir(&ctl)
        .expect("control area")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    area.sort();
    assert_eq!(area, ["control", "md5sums", "postinst"]);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
    assert_eq!(
        read(&ctl.join("postinst")),
        read(&workspace().join("packaging/debian/sockhost-python.postinst"))
    );
    run(Command::new("sh").arg("-n").arg(ctl.join("postinst")));

    // Linked to Debian's libpython by soname, found on the loader's own
    // path: no RUNPATH (pyenv's, or the build folder's) left in it.
    let root = dir.join("x");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let dynamic = stdout(
        Command::new("readelf")
            .arg("-d")
            .arg(root.join(PLUGIN.trim_start_matches('/'))),
    );
    let name = soname.file_name().expect("soname").to_string_lossy();
    assert!(
        dynamic.contains(&format!("Shared library: [{name}]")),
        "{dynamic}"
    );
    assert!(
        !dynamic.contains("RUNPATH") && !dynamic.contains("RPATH"),
        "{dynamic}"
    );
    let changelog = gunzip(&root.join("usr/share/doc/sockhost-python/changelog.Debian.gz"));
    assert!(
        changelog.starts_with(&format!("sockhost ({version}) ")),
        "{changelog}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("usr/share/doc/sockhost-python/copyright"))
            .expect("copyright"),
        std::fs::read_to_string(workspace().join("packaging/debian/copyright")).expect("ours")
    );

    if !tool("lintian", "lintian") {
        return;
    }
    let said = lintian_finds_no_error(&deb);
    assert!(!said.contains("custom-library-search-path"), "{said}");
}

/// Each `name (>= version)` of a Depends field other than sockhost itself
/// is installed on this machine in a version that satisfies it: the
/// package installs where it was built.
fn depends_are_met_here(depends: &str) {
    for clause in depends.split(", ") {
        let (name, rest) = clause.split_once(' ').unwrap_or((clause, ""));
        if name == "sockhost" {
            continue;
        }
        let have = stdout(Command::new("dpkg-query").args(["-W", "-f", "${Version}", name]));
        if let Some(min) = rest.strip_prefix("(>= ").and_then(|r| r.strip_suffix(')')) {
            run(Command::new("dpkg").args(["--compare-versions", &have, "ge", min]));
        }
    }
}

/// An unchanged StreamRequestHandler: the line upper-cased, then what the
/// interpreter is (version, prefix, the libpython mapped in, where the
/// extension modules came from).
const UPPER: &str = r#"
import socketserver
import sys

import _json
import _socket
import select


def origin(m):
    return getattr(m, "__file__", "built-in")


class Upper(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline().strip()
        self.wfile.write(line.upper() + b"\n")
        with open("/proc/self/maps") as maps:
            libs = sorted({l.split()[-1] for l in maps if "libpython" in l})
        about = [sys.version.split()[0], sys.prefix, ",".join(libs)]
        about += [origin(m) for m in (_socket, select, _json)]
        self.wfile.write(("|".join(about) + "\n").encode())
"#;

#[test]
fn installed_sockhostd_serves_a_socketserver_handler_through_installed_sockhost_python() {
    if !tools() || !tool("systemd-sysusers", "systemd") {
        return;
    }
    if !is_root() {
        eprintln!("SKIPPED: dpkg --root needs root to give the files their owners");
        return;
    }
    let dir = TestDir::new("debpyroot");
    let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
    let (sockhost, python) = both(&dir, "gzip");
    depends_are_met_here(&field(&python, "Depends"));
    let s = Scratch::new(&dir);
    s.dpkg(&["-i", &sockhost.display().to_string()]);
    s.dpkg(&["-i", &python.display().to_string()]);
    assert_eq!(
        s.status_of("sockhost-python"),
        format!("install ok installed {version}")
    );
    assert!(s.path(PLUGIN).is_file());

    // The handler lives in a folder of its own, as an operator's would.
    let app = TestDir::new("debpyapp");
    app.write("upper.py", UPPER);
    let config = app.write(
        "sockhost.toml",
        &format!(
            "[daemon]\nplugin_dir = \"{}\"\ncontrol_socket = \"\"\n\n{}",
            s.path("/usr/lib/sockhost/plugins").display(),
            "[[listener]]\nname = \"upper\"\nfamily = \"inet\"\ntype = \"stream\"\n\
             address = \"127.0.0.1:0\"\nmixin = \"thread\"\nhandler = \"libsockhost_python.so\"\n\
             [listener.config]\nhandler = \"upper:Upper\"\n"
        ),
    );
    let installed = s.path("/usr/sbin/sockhostd");
    let mut check = Command::new(&installed);
    check.arg("--check").arg("-c").arg(&config);
    run(user_env(&mut check));

    let mut cmd = Command::new(&installed);
    cmd.arg("-c").arg(&config).args(["--log", "stderr"]);
    user_env(&mut cmd);
    let d = Daemon::try_start_cmd(app, config, cmd)
        .unwrap_or_else(|f| panic!("installed sockhostd failed ({}):\n{}", f.status, f.log));
    let mut conn = TcpStream::connect(d.addr("upper")).expect("connect");
    conn.set_read_timeout(Some(DEADLINE)).expect("timeout");
    conn.write_all(b"hello from debian\n").expect("send");
    let mut reply = BufReader::new(conn);
    let mut line = String::new();
    reply.read_line(&mut line).expect("reply");
    assert_eq!(line, "HELLO FROM DEBIAN\n", "{}", d.log());
    line.clear();
    reply.read_line(&mut line).expect("about");
    eprintln!("the handler runs on: {line}");
    let about: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(about.len(), 6, "{line}");
    let (ver, prefix) = (about[0], about[1]);
    assert_eq!(
        ver,
        debian_python("import sys; print(sys.version.split()[0])")
    );
    assert_eq!(prefix, "/usr", "Debian's interpreter, not pyenv's");
    let loaded = Path::new(about[2]).canonicalize().expect("libpython path");
    assert_eq!(loaded, debian_libpython().canonicalize().expect("ours"));
    for origin in &about[3..] {
        assert!(
            *origin == "built-in" || origin.starts_with("/usr/lib/python3"),
            "extension module from {origin}: {line}"
        );
    }
}

/// No help from the test run's environment: cargo's LD_LIBRARY_PATH and
/// any Python settings are not what a user's shell has.
fn user_env(cmd: &mut Command) -> &mut Command {
    for var in [
        "LD_LIBRARY_PATH",
        "PYTHONHOME",
        "PYTHONPATH",
        "PYTHONSTARTUP",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn make_deb_without_python3_dev_stops_before_building_and_names_it() {
    if !tool("make", "make") {
        return;
    }
    let dir = TestDir::new("debpynone");
    let out = Command::new("make")
        .current_dir(workspace())
        .args(["--no-print-directory", "deb", "NOBUILD=1"])
        .arg(format!("PROFILE={}", profile()))
        .arg(format!("OUT={}", target_dir().display()))
        .arg(format!("DEBDIR={}", dir.join("debs").display()))
        .arg("DEB_PYTHON=/nonexistent/python3")
        .output()
        .expect("run make");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("apt-get install python3-dev"), "{said}");
    assert!(said.contains("make deb-sockhost"), "{said}");
    assert!(!dir.join("debs").exists(), "nothing built");
}
