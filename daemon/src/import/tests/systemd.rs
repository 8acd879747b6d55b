//! systemd: Debian's micro-httpd Accept=yes pair, and the socket and
//! service settings sockhost carries over or names as lost.

use super::super::model::Notes;
use super::super::systemd::parse;
use super::super::systemd_map::{convert, service_name};
use super::*;

const SOCKET: &str = include_str!("../../../tests/corpus/import/systemd/micro-httpd.socket");
const SERVICE: &str = include_str!("../../../tests/corpus/import/systemd/micro-httpd@.service");

fn import(stem: &str, socket: &str, service: &str) -> (Vec<Service>, Notes) {
    let socket = parse(&format!("{stem}.socket"), socket).unwrap_or_else(|e| panic!("{e}"));
    let name = service_name(&socket, stem);
    let service = parse(&name, service).unwrap_or_else(|e| panic!("{e}"));
    let mut notes = Notes::default();
    let services = convert(stem, &socket, &service, &[], &mut notes);
    (services, notes)
}

#[test]
fn micro_httpds_accept_yes_pair_is_carried_over_whole() {
    let socket = parse("micro-httpd.socket", SOCKET).expect("parses");
    assert_eq!(service_name(&socket, "micro-httpd"), "micro-httpd@.service");
    let (services, notes) = import("micro-httpd", SOCKET, SERVICE);
    assert!(
        notes.0.is_empty(),
        "metadata and FreeBind on 0.0.0.0 are no loss: {:?}",
        lines(&notes.0)
    );
    let ls = listeners(&services);
    assert_eq!(ls.len(), 1);
    let l = &ls[0];
    assert_eq!(s(l, "name"), "micro-httpd");
    assert_eq!(s(l, "address"), "0.0.0.0:80");
    assert_eq!(s(l, "mixin"), "fork");
    assert_eq!((s(l, "user"), s(l, "group")), ("www-data", "www-data"));
    assert_eq!(
        l["max_children"].as_integer(),
        Some(64),
        "systemd's MaxConnections default"
    );
    let c = l["config"].as_table().expect("config");
    assert_eq!(
        strs(c, "command"),
        ["/usr/sbin/micro-httpd", "/var/www/html"],
        "`-` prefix dropped"
    );
    assert!(c.get("wait").is_none() && c.get("argv0").is_none());
}

#[test]
fn sockets_services_prefixes_and_what_is_lost() {
    let socket = "[Unit]\nDescription=x\n[Socket]\nListenStream=2222\nListenDatagram=127.0.0.1:2223\n\
                  ListenStream=/run/x.sock\nListenFIFO=/run/x.fifo\nAccept=yes\nMaxConnections=10\n\
                  MaxConnectionsPerSource=2\nBindIPv6Only=both\nBacklog=50\nNoDelay=true\nSocketMode=0660\n\
                  KeepAlive=yes\n[Install]\nWantedBy=sockets.target\n";
    let service = "[Service]\nExecStart=@-/usr/sbin/tinysshd tinysshd -v \"/etc/tiny ssh\"\nUser=tiny\n\
                   Environment=\"A=1 2\" B=3\nStandardInput=socket\nStandardError=journal\n\
                   WorkingDirectory=-/srv\nLimitNOFILE=100\nSuccessExitStatus=111\nProtectSystem=strict\n";
    let (services, notes) = import("tiny", socket, service);
    let ls = listeners(&services);
    let names: Vec<&str> = ls.iter().map(|l| s(l, "name")).collect();
    assert_eq!(names, ["tiny-tcp", "tiny-tcp-v6", "tiny-udp", "tiny-tcp-2"]);
    let tcp = named(&ls, "tiny-tcp");
    assert_eq!(s(tcp, "address"), "0.0.0.0:2222");
    assert_eq!(s(named(&ls, "tiny-tcp-v6"), "address"), "[::]:2222");
    assert_eq!(tcp["max_children"].as_integer(), Some(10));
    assert_eq!(tcp["max_connections_per_source"].as_integer(), Some(2));
    assert_eq!(tcp["request_queue_size"].as_integer(), Some(50));
    assert_eq!(tcp["disable_nagle_algorithm"].as_bool(), Some(true));
    assert_eq!(s(tcp, "user"), "tiny");
    assert_eq!(tcp["limits"]["open_files"].as_integer(), Some(100));
    let c = tcp["config"].as_table().expect("config");
    assert_eq!(
        strs(c, "command"),
        ["/usr/sbin/tinysshd", "-v", "/etc/tiny ssh"]
    );
    assert_eq!(s(c, "argv0"), "tinysshd");
    assert_eq!(s(&c["env"].as_table().cloned().expect("env"), "A"), "1 2");
    assert_eq!(s(c, "stderr"), "log");
    assert_eq!(s(c, "directory"), "/srv");
    let udp = named(&ls, "tiny-udp");
    assert_eq!(s(udp, "address"), "127.0.0.1:2223");
    assert_eq!(
        udp["config"]["wait"].as_bool(),
        Some(true),
        "datagram sockets are always Accept=no"
    );
    assert!(udp.get("max_children").is_none());
    let unix = named(&ls, "tiny-tcp-2");
    assert_eq!(
        (s(unix, "family"), s(unix, "address")),
        ("unix", "/run/x.sock")
    );
    assert_eq!(s(unix, "socket_mode"), "0660");

    let l = lines(&notes.0);
    for want in [
        "tiny.socket:7: ListenFIFO: sockhost serves stream and datagram sockets only",
        "tiny.socket:15: KeepAlive: `yes` has no sockhost counterpart",
        "tiny@.service:9: SuccessExitStatus:",
        "tiny@.service:10: ProtectSystem: `strict` has no sockhost counterpart",
    ] {
        assert!(
            l.iter().any(|n| n.starts_with(want)),
            "{want}\nnot in {l:#?}"
        );
    }
    assert!(
        !l.iter()
            .any(|n| n.contains("Description") || n.contains("WantedBy")),
        "{l:#?}"
    );
}

#[test]
fn a_service_expecting_listen_fds_is_named_not_emitted() {
    let (services, notes) = import(
        "d",
        "[Socket]\nListenStream=9000\n",
        "[Service]\nExecStart=/usr/bin/d\n",
    );
    assert!(services.is_empty());
    assert!(notes.any_loss());
    assert!(lines(&notes.0)[0].starts_with(
        "d.socket:2: ListenStream: the service takes the listening socket as $LISTEN_FDS"
    ));
}
