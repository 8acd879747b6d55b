//! The install path operators use: `make install DESTDIR=...` lays out the
//! FHS tree (binary, plugins, header, config, units, man pages), the
//! installed daemon checks the packaged config, and `systemd-analyze verify`
//! is clean on both units.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn make_install(root: &Path) {
    let out = Command::new("make")
        .current_dir(workspace())
        .arg("install")
        .arg(format!("DESTDIR={}", root.display()))
        .arg(format!("PROFILE={}", profile()))
        .arg(format!("OUT={}", target_dir().display()))
        .arg("NOBUILD=1")
        .output()
        .expect("run make (apt-get install make)");
    assert!(
        out.status.success(),
        "make install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn make_install_lays_out_the_fhs_tree_and_the_installed_daemon_checks_its_config() {
    let dir = TestDir::new("install");
    let root = dir.join("root");
    make_install(&root);
    let r = |p: &str| root.join(p.trim_start_matches('/'));
    assert_eq!(mode(&r("/usr/sbin/sockhostd")), 0o755);
    assert_eq!(mode(&r("/usr/bin/sockhostctl")), 0o755);
    for p in [
        "libsockhost_echo.so",
        "libsockhost_daytime.so",
        "libsockhost_probe.so",
        "libsockhost_exec.so",
    ] {
        assert_eq!(
            mode(&r(&format!("/usr/lib/sockhost/plugins/{p}"))),
            0o644,
            "{p}: not writable by others"
        );
    }
    assert!(r("/usr/include/sockhost.h").is_file());
    assert!(r("/etc/sockhost/conf.d").is_dir());
    for page in [
        "/usr/share/man/man8/sockhostd.8",
        "/usr/share/man/man5/sockhost.toml.5",
        "/usr/share/man/man1/sockhostctl.1",
    ] {
        let text = std::fs::read_to_string(r(page)).expect("man page");
        assert!(text.starts_with(".TH "), "{page} is a man page");
    }
    // The packaged config, pointed at the installed plugins, passes --check
    // with the installed binary.
    let conf = std::fs::read_to_string(r("/etc/sockhost/sockhost.toml")).expect("config");
    assert!(
        conf.contains("plugin_dir = \"/usr/lib/sockhost/plugins\""),
        "{conf}"
    );
    let local = conf.replace(
        "/usr/lib/sockhost/plugins",
        &r("/usr/lib/sockhost/plugins").display().to_string(),
    );
    std::fs::write(r("/etc/sockhost/sockhost.toml"), local).expect("rewrite config");
    let out = Command::new(r("/usr/sbin/sockhostd"))
        .arg("--check")
        .arg("-c")
        .arg(r("/etc/sockhost/sockhost.toml"))
        .output()
        .expect("run installed sockhostd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second install keeps the operator's edited config.
    std::fs::write(r("/etc/sockhost/sockhost.toml"), "# edited\n").expect("edit");
    make_install(&root);
    assert_eq!(
        std::fs::read_to_string(r("/etc/sockhost/sockhost.toml")).expect("read"),
        "# edited\n"
    );
}

#[test]
fn systemd_analyze_verify_is_clean_on_both_units() {
    if !tool_or_skip("systemd-analyze", "systemd", "SOCKHOST_REQUIRE_SYSTEMD") {
        return;
    }
    let dir = TestDir::new("units");
    let root = dir.join("root");
    make_install(&root);
    // Verify the installed units, with ExecStart= and ExecReload= pointing
    // at the installed binaries (systemd-analyze checks that they exist
    // and are executable).
    let units = dir.join("units");
    std::fs::create_dir_all(&units).expect("mkdir");
    let binary = root.join("usr/sbin/sockhostd").display().to_string();
    let ctl = root.join("usr/bin/sockhostctl").display().to_string();
    for unit in ["sockhostd.service", "sockhostd.socket"] {
        let text =
            std::fs::read_to_string(root.join("lib/systemd/system").join(unit)).expect("unit");
        std::fs::write(
            units.join(unit),
            text.replace("/usr/sbin/sockhostd", &binary)
                .replace("/usr/bin/sockhostctl", &ctl),
        )
        .expect("write unit");
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(units.join("sockhostd.service"))
        .arg(units.join("sockhostd.socket"))
        .output()
        .expect("systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify complained:\n{said}"
    );
    let service = std::fs::read_to_string(units.join("sockhostd.service")).expect("service");
    for line in [
        "Type=notify",
        "/usr/bin/sockhostctl reload",
        "KillMode=mixed",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
    ] {
        assert!(service.contains(line), "the service unit has {line}");
    }
}
