//! inetd.conf: the entries Debian packages document, and the forms
//! openbsd-inetd reads.

use super::super::inetd::parse;
use super::super::model::Notes;
use super::*;

const CONF: &str = include_str!("../../../tests/corpus/import/inetd.conf");

fn import(text: &str) -> (Vec<Service>, Notes) {
    let mut notes = Notes::default();
    let services =
        parse("inetd.conf", text, &ports(), &mut notes).unwrap_or_else(|e| panic!("{e}"));
    (services, notes)
}

#[test]
fn the_documented_entries_of_debian_packages() {
    let (services, notes) = import(CONF);
    let ls = listeners(&services);
    let names: Vec<&str> = ls.iter().map(|l| s(l, "name")).collect();
    assert_eq!(
        names,
        [
            "finger",
            "finger-v6",
            "git",
            "rsync",
            "rsync-v6",
            "tftp",
            "tftp-v6"
        ]
    );

    let finger = named(&ls, "finger");
    let c = finger["config"].as_table().expect("config");
    assert_eq!(
        strs(c, "command"),
        ["/usr/sbin/in.fingerd"],
        "tcpd unwrapped"
    );
    assert_eq!(s(c, "argv0"), "/usr/sbin/in.fingerd");
    assert_eq!(s(finger, "user"), "nobody");
    assert_eq!(s(finger, "address"), "0.0.0.0:79");
    assert_eq!(s(named(&ls, "finger-v6"), "address"), "[::]:79");

    let git = named(&ls, "git");
    assert_eq!(s(git, "family"), "inet", "tcp4: IPv4 only");
    assert_eq!(s(git, "address"), "0.0.0.0:9418");
    assert_eq!(s(git, "mixin"), "fork");
    let c = git["config"].as_table().expect("config");
    assert_eq!(
        strs(c, "command"),
        [
            "/usr/bin/git",
            "daemon",
            "--inetd",
            "--base-path=/var/lib",
            "/var/lib/git"
        ]
    );
    assert_eq!(s(c, "argv0"), "git");

    let rsync = named(&ls, "rsync");
    assert_eq!(s(rsync, "user"), "root");
    let c = rsync["config"].as_table().expect("config");
    assert_eq!(strs(c, "command"), ["/usr/bin/rsync", "--daemon"]);
    assert_eq!(s(c, "argv0"), "rsyncd");

    let tftp = named(&ls, "tftp");
    assert_eq!(s(tftp, "type"), "dgram");
    assert_eq!(s(tftp, "address"), "0.0.0.0:69");
    assert_eq!(s(tftp, "mixin"), "sync");
    let c = tftp["config"].as_table().expect("config");
    assert_eq!(c["wait"].as_bool(), Some(true));
    assert_eq!(
        strs(c, "command"),
        ["/usr/sbin/in.tftpd", "-s", "/tftpboot", "-r", "blksize"],
        "continued line"
    );
    assert_eq!(s(c, "argv0"), "in.tftpd");

    assert_eq!(
        lines(&notes.0),
        [
            "inetd.conf:3: tcpd: runs /usr/sbin/in.fingerd directly: tcp_wrappers' /etc/hosts.allow and /etc/hosts.deny rules are not carried over (use allow/deny)",
            "inetd.conf:4: talk: disabled (update-inetd's `#<off>#`): left out",
        ]
    );
    assert!(notes.0[0].loss && !notes.0[1].loss);
}

#[test]
fn hosts_families_users_groups_internal_and_unix() {
    let text = "127.0.0.1:echo stream tcp nowait nobody internal\n\
                echo dgram udp4 wait root internal\n\
                [::1]:finger stream tcp6 nowait nobody:nogroup /usr/sbin/in.fingerd in.fingerd -w\n\
                ::1:\n\
                time stream tcp46 nowait a.b /bin/date date\n\
                *:\n\
                /run/x.sock stream unix nowait www-data /bin/cat cat\n\
                chargen stream tcp4 nowait.40 nobody internal\n\
                talk dgram udp6,sndbuf=4096 wait nobody /usr/sbin/in.talkd in.talkd\n";
    let (services, notes) = import(text);
    let ls = listeners(&services);
    let names: Vec<&str> = ls.iter().map(|l| s(l, "name")).collect();
    assert_eq!(
        names,
        ["echo-tcp", "echo-udp", "finger", "time", "x.sock", "chargen", "talk"]
    );
    let echo = named(&ls, "echo-tcp");
    assert_eq!(s(echo, "address"), "127.0.0.1:7");
    assert_eq!(s(echo, "handler"), "libsockhost_echo.so");
    assert!(echo.get("user").is_none());
    assert_eq!(s(named(&ls, "echo-udp"), "address"), "0.0.0.0:7");
    let finger = named(&ls, "finger");
    assert_eq!(s(finger, "address"), "[::1]:79");
    assert_eq!(
        (s(finger, "user"), s(finger, "group")),
        ("nobody", "nogroup")
    );
    let time = named(&ls, "time");
    assert_eq!(s(time, "address"), "[::1]:37", "the `::1:` line's host");
    assert_eq!((s(time, "user"), s(time, "group")), ("a", "b"));
    let unix = named(&ls, "x.sock");
    assert_eq!(
        (s(unix, "family"), s(unix, "address")),
        ("unix", "/run/x.sock")
    );
    assert_eq!(
        s(named(&ls, "chargen"), "address"),
        "0.0.0.0:19",
        "`*:` resets the host"
    );
    let l = lines(&notes.0);
    assert!(
        l.iter().any(|n| n.starts_with("inetd.conf:8: wait: .40 ")),
        "{l:?}"
    );
    assert!(
        l.iter()
            .any(|n| n.starts_with("inetd.conf:9: protocol: `sndbuf=4096`")),
        "{l:?}"
    );
}

#[test]
fn what_cannot_be_served_is_named_and_bad_lines_are_errors() {
    let (services, notes) = import(
        "nonesuch stream tcp nowait root /bin/cat cat\nqotd stream tcp nowait root internal\n\
         rstatd/1-3 dgram rpc/udp wait root /usr/sbin/rpc.rstatd rpc.rstatd\n",
    );
    assert!(services.is_empty());
    assert_eq!(
        lines(&notes.0),
        [
            "inetd.conf:1: service: `nonesuch/tcp` is not in /etc/services: `nonesuch` left out",
            "inetd.conf:2: internal: no internal service `qotd` in sockhost: `qotd` left out",
            "inetd.conf:3: protocol: `rpc/udp` is not served by sockhost: `rstatd/1-3` left out",
        ]
    );
    let mut n = Notes::default();
    let err =
        parse("inetd.conf", "# x\nfinger stream tcp\n", &ports(), &mut n).expect_err("short line");
    assert!(
        err.to_string()
            .starts_with("inetd.conf:2: expected `SERVICE SOCKTYPE"),
        "{err}"
    );
    let err = parse(
        "inetd.conf",
        "finger stream tcp sometimes root /bin/x x\n",
        &ports(),
        &mut n,
    )
    .expect_err("bad wait");
    assert!(
        err.to_string().starts_with("inetd.conf:1: `sometimes`"),
        "{err}"
    );
}
