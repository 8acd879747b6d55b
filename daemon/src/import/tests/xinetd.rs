//! xinetd: Debian's shipped files, defaults, `+=`/`-=`, and every
//! attribute sockhost carries over or names as lost.

use super::super::model::Notes;
use super::super::xinetd::{parse, Entry};
use super::super::xinetd_map::convert;
use super::*;

const ECHO: &str = include_str!("../../../tests/corpus/import/xinetd.d/echo");
const SERVERS: &str = include_str!("../../../tests/corpus/import/xinetd.d/servers");
const CHARGEN_UDP: &str = include_str!("../../../tests/corpus/import/xinetd.d/chargen-udp");
const TIME: &str = include_str!("../../../tests/corpus/import/xinetd.d/time");
const FINGER: &str = include_str!("../../../tests/corpus/import/finger.xinetd");
const CONF: &str = include_str!("../../../tests/corpus/import/xinetd.conf");

/// Files as one xinetd config: the services, the notes.
fn import(files: &[(&str, &str)]) -> (Vec<Service>, Notes) {
    let mut defaults = Vec::new();
    let mut blocks = Vec::new();
    for (name, text) in files {
        for e in parse(name, text).unwrap_or_else(|e| panic!("{e}")) {
            match e {
                Entry::Defaults(b) => defaults.extend(b.attrs),
                Entry::Service(b) => blocks.push(b),
                Entry::Include(..) | Entry::IncludeDir(..) => {}
            }
        }
    }
    let mut notes = Notes::default();
    let services = convert(&defaults, &blocks, &ports(), &mut notes);
    (services, notes)
}

fn enable(text: &str) -> String {
    text.lines()
        .filter(|l| !l.contains("disable"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn debians_disabled_internal_services_are_left_out_with_a_note_not_a_loss() {
    let (services, notes) = import(&[("echo", ECHO), ("servers", SERVERS), ("xinetd.conf", CONF)]);
    assert!(services.is_empty());
    assert!(!notes.any_loss(), "{:?}", lines(&notes.0));
    assert_eq!(
        lines(&notes.0),
        [
            "echo:7: disable: service `echo` is disabled: left out",
            "echo:19: disable: service `echo` is disabled: left out",
            "servers:11: disable: service `servers` is disabled: left out",
        ]
    );
}

#[test]
fn enabled_internal_services_become_their_plugins_named_by_id() {
    let (services, notes) = import(&[
        ("echo", &enable(ECHO)),
        ("chargen-udp", &enable(CHARGEN_UDP)),
        ("time", &enable(TIME)),
    ]);
    assert!(!notes.any_loss(), "{:?}", lines(&notes.0));
    let ls = listeners(&services);
    let names: Vec<&str> = ls.iter().map(|l| s(l, "name")).collect();
    assert_eq!(
        names,
        [
            "echo-stream",
            "echo-dgram",
            "chargen-dgram",
            "time-stream",
            "time-dgram"
        ]
    );
    let echo = named(&ls, "echo-stream");
    assert_eq!(s(echo, "handler"), "libsockhost_echo.so");
    assert_eq!(s(echo, "type"), "stream");
    assert_eq!(s(echo, "address"), "0.0.0.0:7");
    assert_eq!(s(echo, "mixin"), "thread");
    // user = root is xinetd's own account for internal services: not the worker's.
    assert!(echo.get("user").is_none());
    let chargen = named(&ls, "chargen-dgram");
    assert_eq!(s(chargen, "handler"), "libsockhost_chargen.so");
    assert_eq!(s(chargen, "type"), "dgram");
    assert_eq!(s(chargen, "address"), "0.0.0.0:19");
    assert_eq!(
        s(named(&ls, "time-dgram"), "handler"),
        "libsockhost_time.so"
    );
    assert!(chargen.get("config").is_none());
}

#[test]
fn an_internal_service_sockhost_lacks_is_a_loss() {
    let (services, notes) = import(&[("servers", &enable(SERVERS))]);
    assert!(services.is_empty());
    assert_eq!(
        lines(&notes.0),
        ["servers:6: type: no internal service `servers` in sockhost: service `servers` left out"]
    );
}

#[test]
fn fingerds_example_runs_in_fingerd_on_ipv4_and_ipv6() {
    let (services, notes) = import(&[("finger.xinetd", FINGER)]);
    let ls = listeners(&services);
    assert_eq!(ls.len(), 2, "flags = IPv6: an IPv4 and an IPv6 listener");
    let v4 = named(&ls, "finger");
    let v6 = named(&ls, "finger-v6");
    assert_eq!(s(v4, "address"), "0.0.0.0:79");
    assert_eq!(s(v6, "address"), "[::]:79");
    assert_eq!(s(v6, "family"), "inet6");
    for l in [v4, v6] {
        assert_eq!(s(l, "handler"), "libsockhost_exec.so");
        assert_eq!(s(l, "mixin"), "fork");
        assert_eq!(s(l, "user"), "nobody");
        assert_eq!(
            l["access_log"].as_bool(),
            Some(true),
            "log_on_success = HOST"
        );
        let c = l["config"].as_table().expect("config");
        assert_eq!(strs(c, "command"), ["/usr/sbin/in.fingerd", "-l", "-w"]);
        assert_eq!(s(c, "argv0"), "in.fingerd");
        assert!(c.get("wait").is_none());
    }
    assert_eq!(
        lines(&notes.0),
        ["finger.xinetd:11: log_type: sockhost logs where the daemon's --log says (journald, stderr, syslog, a file), not per service"]
    );
}

const RICH: &str = "defaults
{
\tonly_from = 10.0.0.0 192.168.1.0
\tinstances = 60
\tpassenv = LANG
\tdisabled = gone
}
service git
{
\tsocket_type = stream
\twait = no
\tuser = git
\tgroup = git
\tserver = /usr/lib/git-core/git-daemon
\tserver_args = git-daemon --inetd --export-all
\tflags = NAMEINARGS NODELAY
\tonly_from += 127.0.0.1 localhost
\tonly_from -= 192.168.1.0
\tno_access = 10.1.0.0
\tper_source = 5
\tenv = HOME=/nonexistent GIT_X=1
\tpassenv += TZ
\tbind = 127.0.0.1
\tnice = 5
\tumask = 027
\trlimit_files = 1024
\trlimit_as = 64M
\tcps = 50 10
\taccess_times = 08:00-17:00
\tredirect = 10.0.0.9 23
\tbanner = /etc/issue
}
service tftp
{
\ttype = UNLISTED
\tsocket_type = dgram
\tprotocol = udp
\twait = yes
\tuser = root
\tserver = /usr/sbin/in.tftpd
\tserver_args = -s /srv/tftp
\tport = 6969
\tinstances = UNLIMITED
\tbind = ::1
}
service gone
{
\tsocket_type = stream
\twait = no
\tuser = nobody
\tserver = /bin/true
\tport = 1
}
service nameless
{
\ttype = UNLISTED
\tsocket_type = stream
\twait = no
\tuser = nobody
\tserver = /bin/true
}
";

#[test]
fn every_carried_attribute_lands_on_its_key_and_the_rest_is_named() {
    let (services, notes) = import(&[("rich", RICH)]);
    let ls = listeners(&services);
    assert_eq!(ls.len(), 2, "{ls:#?}");
    let git = named(&ls, "git");
    assert_eq!(s(git, "address"), "127.0.0.1:9418", "bind + /etc/services");
    assert_eq!(s(git, "user"), "git");
    assert_eq!(s(git, "group"), "git");
    assert_eq!(
        git["max_children"].as_integer(),
        Some(60),
        "instances from defaults"
    );
    assert_eq!(git["max_connections_per_source"].as_integer(), Some(5));
    assert_eq!(
        strs(git, "allow"),
        ["10.0.0.0/8", "127.0.0.1/32"],
        "defaults, += and -="
    );
    assert_eq!(strs(git, "deny"), ["10.1.0.0/16"]);
    assert_eq!(git["disable_nagle_algorithm"].as_bool(), Some(true));
    assert_eq!(git["nice"].as_integer(), Some(5));
    assert_eq!(s(git, "umask"), "0027");
    let limits = git["limits"].as_table().expect("limits");
    assert_eq!(limits["open_files"].as_integer(), Some(1024));
    assert_eq!(s(limits, "memory"), "64M");
    let c = git["config"].as_table().expect("config");
    assert_eq!(
        strs(c, "command"),
        ["/usr/lib/git-core/git-daemon", "--inetd", "--export-all"]
    );
    assert_eq!(s(c, "argv0"), "git-daemon", "NAMEINARGS");
    let env = c["env"].as_table().expect("env");
    assert_eq!(s(env, "HOME"), "/nonexistent");
    assert_eq!(s(env, "GIT_X"), "1");
    assert_eq!(strs(c, "pass_env"), ["LANG", "TZ"]);

    let tftp = named(&ls, "tftp");
    assert_eq!(s(tftp, "family"), "inet6");
    assert_eq!(s(tftp, "address"), "[::1]:6969");
    assert_eq!(s(tftp, "mixin"), "sync");
    assert!(tftp.get("max_children").is_none(), "UNLIMITED");
    let c = tftp["config"].as_table().expect("config");
    assert_eq!(c["wait"].as_bool(), Some(true));
    assert_eq!(
        strs(c, "command"),
        ["/usr/sbin/in.tftpd", "-s", "/srv/tftp"]
    );
    assert_eq!(s(c, "argv0"), "in.tftpd");

    let l = lines(&notes.0);
    for want in [
        "rich:17: only_from: `localhost`: host and network names are not resolved, left out",
        "rich:28: cps: no service-wide connection rate",
        "rich:29: access_times: sockhost has no time-of-day access control",
        "rich:30: redirect: sockhost does not forward connections",
        "rich:31: banner: sockhost sends no banner files",
        "rich:46: disabled: service `gone` is disabled in `defaults`: left out",
        "rich:54: port: an UNLISTED service needs one: service `nameless` left out",
    ] {
        assert!(
            l.iter().any(|n| n.starts_with(want)),
            "{want}\nnot in {l:#?}"
        );
    }
    assert!(notes.any_loss());
}

#[test]
fn a_more_specific_only_from_inside_no_access_is_named() {
    let text =
        "service x\n{\nsocket_type = stream\nwait = no\nuser = a\nserver = /bin/cat\nport = 9\n\
                only_from = 10.1.2.0\nno_access = 10.0.0.0\n}\n";
    let (_, notes) = import(&[("x", text)]);
    let l = lines(&notes.0);
    assert!(
        l.iter()
            .any(|n| n.starts_with("x:8: only_from: 10.1.2.0/24 is inside no_access 10.0.0.0/8")),
        "{l:?}"
    );
}

#[test]
fn a_tcpd_wrapped_server_runs_the_real_program_and_says_so() {
    let text =
        "service finger\n{\nsocket_type = stream\nwait = no\nuser = nobody\nflags = NAMEINARGS\n\
                server = /usr/sbin/tcpd\nserver_args = in.fingerd -w\n}\n";
    let (services, notes) = import(&[("f", text)]);
    let ls = listeners(&services);
    let c = ls[0]["config"].as_table().expect("config");
    assert_eq!(strs(c, "command"), ["/usr/sbin/in.fingerd", "-w"]);
    assert_eq!(s(c, "argv0"), "in.fingerd");
    assert!(
        lines(&notes.0)[0].starts_with("f:7: tcpd: runs /usr/sbin/in.fingerd directly"),
        "{:?}",
        notes.0
    );
}
