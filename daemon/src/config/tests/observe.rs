//! The keys for looking inside the daemon: `[daemon] control_socket` and
//! `metrics`, and each listener's `access_log`.

use super::{case, run, tcp, tcp_with, Scratch};
use crate::config::{ControlSocket, DEFAULT_CONTROL_SOCKET};

#[test]
fn defaults_are_the_default_socket_no_metrics_and_no_access_log() {
    let s = Scratch::new();
    let c = s.parse(&tcp("a", 7000)).expect("valid");
    assert_eq!(
        c.daemon.control_socket,
        ControlSocket::Default(DEFAULT_CONTROL_SOCKET.into())
    );
    assert_eq!(c.daemon.metrics, None);
    assert!(!c.listeners[0].access_log);
}

#[test]
fn control_socket_is_relative_to_the_config_folder_and_empty_turns_it_off() {
    let s = Scratch::new();
    let text = |v: &str| format!("[daemon]\ncontrol_socket = \"{v}\"\n{}", tcp("a", 7000));
    let c = s.parse(&text("run/ctl.sock")).expect("valid");
    assert_eq!(
        c.daemon.control_socket,
        ControlSocket::At(s.dir.join("run/ctl.sock"))
    );
    let c = s.parse(&text("/tmp/x.sock")).expect("valid");
    assert_eq!(
        c.daemon.control_socket,
        ControlSocket::At("/tmp/x.sock".into())
    );
    assert_eq!(c.daemon.control_socket.path(), Some("/tmp/x.sock".as_ref()));
    let c = s.parse(&text("")).expect("valid");
    assert_eq!(c.daemon.control_socket, ControlSocket::Off);
    assert_eq!(c.daemon.control_socket.path(), None);
}

#[test]
fn metrics_takes_a_numeric_socket_address() {
    let s = Scratch::new();
    let text = |v: &str| format!("[daemon]\nmetrics = \"{v}\"\n{}", tcp("a", 7000));
    let c = s.parse(&text("127.0.0.1:9464")).expect("valid");
    assert_eq!(
        c.daemon.metrics,
        Some("127.0.0.1:9464".parse().expect("addr"))
    );
    let c = s.parse(&text("[::1]:0")).expect("valid");
    assert_eq!(c.daemon.metrics, Some("[::1]:0".parse().expect("addr")));
}

#[test]
fn access_log_is_read() {
    let s = Scratch::new();
    let c = s.parse(&tcp_with("access_log = true")).expect("valid");
    assert!(c.listeners[0].access_log);
}

#[test]
fn bad_values_name_the_file_line_and_key() {
    let long = "x".repeat(120);
    run(&[
        case(
            "[daemon]\nmetrics = \"localhost:9464\"\n",
            2,
            "daemon.metrics",
            "is not an address: expected \"HOST:PORT\"",
        ),
        case(
            "[daemon]\nmetrics = \"127.0.0.1\"\n",
            2,
            "daemon.metrics",
            "\"127.0.0.1\" is not an address",
        ),
        case(
            "[daemon]\nmetrics = 9464\n",
            2,
            "daemon.metrics",
            "invalid type: integer `9464`, expected a string",
        ),
        case(
            format!("[daemon]\ncontrol_socket = \"/{long}\"\n"),
            2,
            "daemon.control_socket",
            "longer than the limit of 107 bytes",
        ),
        case(
            "[daemon]\ncontrol_socket = \"plugdir\"\n",
            2,
            "daemon.control_socket",
            "is a folder",
        ),
        case(
            "[daemon]\ncontrol_socket = false\n",
            2,
            "daemon.control_socket",
            "invalid type: boolean `false`, expected a string",
        ),
        case(
            tcp_with("access_log = \"yes\""),
            8,
            "listener.access_log",
            "invalid type: string \"yes\", expected a boolean",
        ),
    ]);
}
