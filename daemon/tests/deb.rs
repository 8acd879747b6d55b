//! The Debian package: `make deb-sockhost` (half of `make deb`) turns the
//! `make install` tree into `sockhost_VERSION-REV_ARCH.deb`; the Python
//! plugin's package is `deb_python.rs`'s. These tests build it from the binaries
//! the tests run (no extra compile), check its files, modes and control
//! area, run lintian (no errors allowed), and install, upgrade, remove and
//! purge it with dpkg in a scratch root, the maintainer scripts running for
//! real under DPKG_ROOT (dpkg's chrootless mode), so the machine's own
//! users, units and services are never touched. The scripts' systemd and
//! in-place upgrade branches are driven against stubs in `deb_scripts.rs`.
//!
//! Needs dpkg-deb and dpkg-shlibdeps (dpkg-dev), lintian, and for the
//! scratch root systemd-sysusers (systemd) and root; a missing tool prints
//! SKIPPED, unless SOCKHOST_REQUIRE_DEB=1 (CI sets it) makes it a failure.

mod common;
use common::deb::*;
use common::*;
use std::path::Path;
use std::process::Command;

#[test]
fn make_deb_ships_the_fhs_tree_with_conffiles_and_lintian_finds_no_error() {
    if !tool("dpkg-deb", "dpkg") || !tool("dpkg-shlibdeps", "dpkg-dev") {
        return;
    }
    let dir = TestDir::new("deb");
    let version = env!("CARGO_PKG_VERSION");
    let deb = make_deb(&dir.join("debs"), version, "xz");
    let files = contents(&deb);
    let mut expect = vec![
        ("/usr/sbin/sockhostd", "-rwxr-xr-x"),
        ("/usr/include/sockhost.h", "-rw-r--r--"),
        ("/usr/lib/sysusers.d/sockhost.conf", "-rw-r--r--"),
        ("/lib/systemd/system/sockhostd.service", "-rw-r--r--"),
        ("/lib/systemd/system/sockhostd.socket", "-rw-r--r--"),
        ("/usr/share/man/man8/sockhostd.8.gz", "-rw-r--r--"),
        ("/usr/share/man/man5/sockhost.toml.5.gz", "-rw-r--r--"),
        ("/usr/share/doc/sockhost/copyright", "-rw-r--r--"),
        ("/usr/share/doc/sockhost/changelog.Debian.gz", "-rw-r--r--"),
        ("/etc/sockhost/sockhost.toml", "-rw-r--r--"),
        ("/etc/sockhost/conf.d", "drwxr-xr-x"),
    ];
    let plugins = [
        "libsockhost_echo.so",
        "libsockhost_daytime.so",
        "libsockhost_chargen.so",
        "libsockhost_discard.so",
        "libsockhost_time.so",
        "libsockhost_probe.so",
        "libsockhost_http_hello.so",
    ];
    let plugin_paths: Vec<String> = plugins
        .iter()
        .map(|p| format!("/usr/lib/sockhost/plugins/{p}"))
        .collect();
    expect.extend(plugin_paths.iter().map(|p| (p.as_str(), "-rw-r--r--")));
    expect.push(("/usr/bin/sockhostctl", "-rwxr-xr-x"));
    // The Python plugin links the libpython it was built against (pyenv's
    // here, no Debian package): it is sockhost-python's, built apart.
    assert!(
        !files.keys().any(|f| f.contains("libsockhost_python")),
        "the Python plugin is in sockhost-python, not here"
    );
    let listing = format!("{files:#?}");
    for (path, mode) in &expect {
        let (m, owner) = files
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{listing}"));
        assert_eq!(m, mode, "{path}");
        assert_eq!(owner, "root/root", "{path}");
    }
    for (path, (_, owner)) in &files {
        assert_eq!(owner, "root/root", "{path}");
        if path.starts_with("/usr/share/man/") && path.matches('/').count() > 4 {
            assert!(path.ends_with(".gz"), "man page {path} is compressed");
        }
    }

    // The control area: the config is the one conffile, the scripts are the
    // ones in packaging/debian.
    let ctl = dir.join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&ctl));
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
    assert_eq!(
        read(&ctl.join("conffiles")),
        "/etc/sockhost/sockhost.toml\n"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let shipped = ctl.join(script);
        assert_eq!(
            read(&shipped),
            read(&workspace().join("packaging/debian").join(script)),
            "{script}"
        );
        run(Command::new("sh").arg("-n").arg(&shipped));
    }
    let md5sums = read(&ctl.join("md5sums"));
    assert!(md5sums.contains("  usr/sbin/sockhostd\n"), "{md5sums}");
    assert!(
        !md5sums.contains("etc/sockhost"),
        "conffiles have no md5sum"
    );
    let control = read(&ctl.join("control"));
    for field in [
        "Package: sockhost\n".to_owned(),
        format!("Version: {version}-1\n"),
        format!("Architecture: {}\n", arch()),
    ] {
        assert!(control.contains(&field), "{field}in:\n{control}");
    }
    let depends = control
        .lines()
        .find_map(|l| l.strip_prefix("Depends: "))
        .expect("a Depends field");
    assert!(
        depends.contains("libc6 (>=") && depends.contains("adduser"),
        "{depends}"
    );
    assert_eq!(field(&deb, "Suggests"), "sockhost-python");

    // The files themselves: the config runs as the sockhost user, the
    // changelog's newest entry is this version, the binary runs.
    let root = dir.join("x");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let conf = read(&root.join("etc/sockhost/sockhost.toml"));
    assert!(
        conf.contains("\nuser = \"sockhost\"\ngroup = \"sockhost\"\n"),
        "{conf}"
    );
    let changelog = gunzip(&root.join("usr/share/doc/sockhost/changelog.Debian.gz"));
    assert!(
        changelog.starts_with(&format!("sockhost ({version}-1) ")),
        "{changelog}"
    );
    let said = stdout(Command::new(root.join("usr/sbin/sockhostd")).arg("--version"));
    assert!(said.contains(version), "{said}");

    if !tool("lintian", "lintian") {
        return;
    }
    lintian_finds_no_error(&deb);
}

const WANTS: &str = "/etc/systemd/system/multi-user.target.wants/sockhostd.service";

#[test]
fn the_package_installs_upgrades_keeping_the_edited_config_and_purges_in_a_scratch_root() {
    if !tool("dpkg-deb", "dpkg")
        || !tool("dpkg-shlibdeps", "dpkg-dev")
        || !tool("systemd-sysusers", "systemd")
    {
        return;
    }
    if !is_root() {
        eprintln!("SKIPPED: dpkg --root needs root to give the files their owners");
        return;
    }
    let dir = TestDir::new("debroot");
    let first = env!("CARGO_PKG_VERSION").to_owned();
    let next = format!("{first}+1");
    // gzip: quicker than the xz the first test checks, the same files.
    let a = make_deb(&dir.join("a"), &first, "gzip");
    let b = make_deb(&dir.join("b"), &next, "gzip");
    run(Command::new("dpkg").args([
        "--compare-versions",
        &format!("{next}-1"),
        "gt",
        &format!("{first}-1"),
    ]));
    let s = Scratch::new(&dir);

    // Install: files in place, the user created in the scratch root, the
    // service enabled there and the example socket unit not.
    s.dpkg(&["-i", &a.display().to_string()]);
    assert_eq!(s.status(), format!("install ok installed {first}-1"));
    let passwd = s.read("/etc/passwd");
    let user = passwd
        .lines()
        .find(|l| l.starts_with("sockhost:"))
        .unwrap_or_else(|| panic!("no sockhost user:\n{passwd}"));
    assert!(user.ends_with(":/nonexistent:/usr/sbin/nologin"), "{user}");
    assert!(
        has_entry(&s.read("/etc/group"), "sockhost"),
        "a sockhost group"
    );
    let link = std::fs::read_link(s.path(WANTS)).expect("the service is enabled");
    assert_eq!(link, Path::new("/lib/systemd/system/sockhostd.service"));
    assert!(!s.path("/etc/systemd/system/sockets.target.wants").exists());

    // The installed (stripped) daemon loads the installed (stripped) plugins.
    let conf = s
        .read("/etc/sockhost/sockhost.toml")
        .replace(
            "/usr/lib/sockhost/plugins",
            &s.path("/usr/lib/sockhost/plugins").display().to_string(),
        )
        .replace("\nuser = \"sockhost\"\ngroup = \"sockhost\"\n", "\n");
    let check = dir.write("check.toml", &conf);
    run(Command::new(s.path("/usr/sbin/sockhostd"))
        .arg("--check")
        .arg("-c")
        .arg(&check));

    // The operator edits the config and adds a drop-in; the upgrade keeps
    // both without asking (stdin is /dev/null, no --force-conf*).
    let edited = format!(
        "{}# edited by the operator\n",
        s.read("/etc/sockhost/sockhost.toml")
    );
    std::fs::write(s.path("/etc/sockhost/sockhost.toml"), &edited).expect("edit");
    std::fs::write(s.path("/etc/sockhost/conf.d/site.toml"), "# site\n").expect("drop-in");
    s.dpkg(&["-i", &b.display().to_string()]);
    assert_eq!(s.status(), format!("install ok installed {next}-1"));
    assert_eq!(s.read("/etc/sockhost/sockhost.toml"), edited);
    assert_eq!(s.read("/etc/sockhost/conf.d/site.toml"), "# site\n");
    let changelog = gunzip(&s.path("/usr/share/doc/sockhost/changelog.Debian.gz"));
    assert!(
        changelog.starts_with(&format!("sockhost ({next}-1) ")),
        "{changelog}"
    );
    assert!(s.path(WANTS).symlink_metadata().is_ok(), "still enabled");

    // Remove keeps the config; purge takes it, the folder and the unit
    // links, and leaves the account (files it owns may remain).
    s.dpkg(&["--remove", "sockhost"]);
    assert_eq!(s.status(), format!("deinstall ok config-files {next}-1"));
    assert!(!s.path("/usr/sbin/sockhostd").exists());
    assert_eq!(s.read("/etc/sockhost/sockhost.toml"), edited);
    std::fs::remove_file(s.path("/etc/sockhost/conf.d/site.toml")).expect("rm drop-in");
    s.dpkg(&["--purge", "sockhost"]);
    assert!(
        !s.path("/etc/sockhost").exists(),
        "purge removes /etc/sockhost"
    );
    assert!(
        s.path(WANTS).symlink_metadata().is_err(),
        "purge drops the link"
    );
    assert!(
        has_entry(&s.read("/etc/passwd"), "sockhost"),
        "the user stays"
    );
}
