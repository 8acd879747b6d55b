//! The PROXY protocol keys: defaults, values, and where they apply.

use std::time::Duration;

use super::{case, run, tcp_with, with, Scratch};

#[test]
fn proxy_keys_default_to_off_with_a_three_second_timeout() {
    let s = Scratch::new();
    let c = s.parse(&tcp_with("")).expect("valid");
    let l = &c.listeners[0];
    assert!(!l.proxy_protocol);
    assert!(l.proxy_trusted.is_empty());
    assert_eq!(l.proxy_header_timeout, Duration::from_secs(3));
}

#[test]
fn proxy_keys_are_read() {
    let s = Scratch::new();
    let text = tcp_with(
        "proxy_protocol = true\nproxy_trusted = [\"10.0.0.0/8\", \"::1\"]\nproxy_header_timeout = 0.5",
    );
    let c = s.parse(&text).expect("valid");
    let l = &c.listeners[0];
    assert!(l.proxy_protocol);
    let nets: Vec<String> = l.proxy_trusted.iter().map(|n| n.to_string()).collect();
    assert_eq!(nets, ["10.0.0.0/8", "::1/128"]);
    assert_eq!(l.proxy_header_timeout, Duration::from_millis(500));
}

#[test]
fn a_unix_stream_listener_takes_proxy_protocol_and_allow_on_the_header_address() {
    let s = Scratch::new();
    let path = s.dir.join("p.sock");
    let text = with(
        "unix",
        "stream",
        &path.display().to_string(),
        "sync",
        "proxy_protocol = true\nallow = [\"192.0.2.0/24\"]",
    );
    let c = s.parse(&text).expect("valid");
    assert!(c.listeners[0].proxy_protocol);
    assert_eq!(c.listeners[0].allow.len(), 1);
}

#[test]
fn bad_proxy_keys_name_the_key_and_place() {
    run(&[
        case(
            with(
                "inet",
                "dgram",
                "127.0.0.1:1",
                "sync",
                "proxy_protocol = true",
            ),
            8,
            "listener.proxy_protocol",
            "only used with type = \"stream\"",
        ),
        case(
            tcp_with("proxy_trusted = [\"10.0.0.0/8\"]"),
            8,
            "listener.proxy_trusted",
            "only used with proxy_protocol = true",
        ),
        case(
            tcp_with("proxy_header_timeout = 2"),
            8,
            "listener.proxy_header_timeout",
            "only used with proxy_protocol = true",
        ),
        case(
            tcp_with("proxy_protocol = true\nproxy_trusted = [\"10.0.0.0/33\"]"),
            9,
            "listener.proxy_trusted",
            "is not an IP network",
        ),
        case(
            tcp_with("proxy_protocol = true\nproxy_header_timeout = 0"),
            9,
            "listener.proxy_header_timeout",
            "greater than 0",
        ),
        case(
            tcp_with("proxy_protocol = \"yes\""),
            8,
            "listener.proxy_protocol",
            "",
        ),
    ]);
}

#[test]
fn proxy_trusted_on_a_unix_listener_says_what_trust_is_there() {
    let s = Scratch::new();
    let path = s.dir.join("p.sock");
    let text = with(
        "unix",
        "stream",
        &path.display().to_string(),
        "sync",
        "proxy_protocol = true\nproxy_trusted = [\"127.0.0.1\"]",
    );
    let err = s.fail(&text);
    assert_eq!(err.key.as_deref(), Some("listener.proxy_trusted"));
    assert!(
        err.message
            .contains("socket_mode, socket_user, socket_group"),
        "{err}"
    );
}
