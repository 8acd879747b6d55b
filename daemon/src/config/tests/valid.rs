//! Valid configs: every key, defaults, `load`, and reload comparisons.

use std::net::SocketAddr;
use std::time::Duration;

use super::{listener, tcp, Scratch};
use crate::config::{load, Address, Family, Mixin, SockType};

const FULL: &str = r#"
[daemon]
plugin_dir = "plugdir"
include = ["conf.d/*.toml"]
shutdown_timeout = 2.5
start_timeout = 4
user = "root"
group = "root"
strict_plugin_permissions = false

[[listener]]
name = "echo"
family = "inet"
type = "stream"
address = "127.0.0.1:7000"
mixin = "thread"
handler = "../libp.so"
request_queue_size = 64
allow_reuse_address = false
allow_reuse_port = true
timeout = 5
max_threads = 16
daemon_threads = true
block_on_close = false
connection_timeout = 30.5
disable_nagle_algorithm = true
workers = 4
allow = ["127.0.0.0/8", "::1", "10.1.2.3/8"]
deny = ["10.0.0.0/8"]
max_connections_per_source = 16
rate_limit_per_source = 50
refuse_message = "busy\r\n"

[listener.config]
greeting = "hello"
limits = { depth = 3 }

[[listener]]
name = "local.sock_1"
family = "unix"
type = "stream"
address = "run/local.sock"
mixin = "fork"
handler = "../libp.so"
max_children = 8
allow_uids = [0, 1000]
allow_gids = [0]
mode = "0660"
owner = "root"
group = "0"

[[listener]]
name = "udp6"
family = "inet6"
type = "dgram"
address = "[::1]:7001"
mixin = "sync"
handler = "../libp.so"
max_packet_size = 65507

[[listener]]
name = "abstract"
family = "unix"
type = "dgram"
address = "@sockhost-test"
mixin = "sync"
handler = "../libp.so"
max_packet_size = 1048576
"#;

#[test]
fn every_key_is_read() {
    let s = Scratch::new();
    let c = s.parse(FULL).expect("full config is valid");
    assert_eq!(c.file, s.main_file());
    assert_eq!(c.daemon.plugin_dir, s.dir.join("plugdir"));
    assert_eq!(c.daemon.include, vec!["conf.d/*.toml".to_owned()]);
    assert_eq!(c.daemon.shutdown_timeout, Duration::from_millis(2500));
    assert_eq!(c.daemon.start_timeout, Duration::from_secs(4));
    assert_eq!(
        (c.daemon.user.as_deref(), c.daemon.group.as_deref()),
        (Some("root"), Some("root"))
    );
    assert!(!c.daemon.strict_plugin_permissions);
    let names: Vec<&str> = c.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["echo", "local.sock_1", "udp6", "abstract"]);
}

#[test]
fn every_inet_stream_key_is_read() {
    let s = Scratch::new();
    let c = s.parse(FULL).expect("full config is valid");
    let l = &c.listeners[0];
    assert_eq!(
        (l.family, l.socktype, l.mixin),
        (Family::Inet, SockType::Stream, Mixin::Thread)
    );
    assert_eq!(
        l.address,
        Address::Inet("127.0.0.1:7000".parse::<SocketAddr>().expect("addr"))
    );
    assert_eq!(l.address_text, "127.0.0.1:7000");
    assert_eq!(l.handler, s.dir.join("plugdir").join("../libp.so"));
    assert_eq!((l.defined_at.line, l.defined_at.column), (11, 1));
    assert_eq!((l.handler_at.line, l.handler_at.column), (17, 11));
    assert_eq!(
        (
            l.request_queue_size,
            l.allow_reuse_address,
            l.allow_reuse_port
        ),
        (64, false, true)
    );
    assert_eq!(l.timeout, Some(Duration::from_secs(5)));
    assert_eq!(
        (l.max_threads, l.daemon_threads, l.block_on_close),
        (16, true, false)
    );
    assert_eq!(l.connection_timeout, Some(Duration::from_millis(30500)));
    assert_eq!((l.disable_nagle_algorithm, l.workers), (true, 4));
    let allow: Vec<String> = l.allow.iter().map(ToString::to_string).collect();
    assert_eq!(allow, ["127.0.0.0/8", "::1/128", "10.0.0.0/8"]);
    assert_eq!(l.deny.len(), 1);
    assert_eq!(l.max_connections_per_source, Some(16));
    assert_eq!(l.rate_limit_per_source, Some(50.0));
    assert_eq!(l.refuse_message.as_deref(), Some("busy\r\n"));
    assert_eq!(
        l.config.get("greeting").and_then(|v| v.as_str()),
        Some("hello")
    );
    let back: toml::Table = toml::from_str(&l.config_toml).expect("config_toml is TOML");
    assert_eq!(back, l.config);
}

#[test]
fn every_unix_key_is_read() {
    let s = Scratch::new();
    let c = s.parse(FULL).expect("full config is valid");
    let l = &c.listeners[1];
    assert_eq!(
        (l.family, l.socktype, l.mixin),
        (Family::Unix, SockType::Stream, Mixin::Fork)
    );
    assert_eq!(l.address, Address::Unix(s.dir.join("run/local.sock")));
    assert_eq!(l.max_children, 8);
    assert_eq!(
        (l.allow_uids.as_slice(), l.allow_gids.as_slice()),
        (&[0, 1000][..], &[0][..])
    );
    assert_eq!(l.socket_mode, Some(0o660));
    assert_eq!(
        (l.socket_user.as_deref(), l.socket_group.as_deref()),
        (Some("root"), Some("0"))
    );
    assert!(l.config.is_empty() && l.config_toml.is_empty());
    let udp = &c.listeners[2];
    assert_eq!(
        udp.address,
        Address::Inet("[::1]:7001".parse::<SocketAddr>().expect("addr"))
    );
    assert_eq!(udp.max_packet_size, 65507);
    assert_eq!(
        c.listeners[3].address,
        Address::Abstract("sockhost-test".into())
    );
    assert_eq!(c.listeners[3].max_packet_size, 1_048_576);
}

#[test]
fn defaults_fill_every_optional_key() {
    let s = Scratch::new();
    let c = s
        .parse(&tcp("echo", 7000))
        .expect("minimal config is valid");
    assert_eq!(c.daemon.plugin_dir, s.dir);
    assert!(c.daemon.include.is_empty());
    assert_eq!(c.daemon.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(c.daemon.start_timeout, Duration::from_secs(30));
    assert_eq!(
        (c.daemon.user.clone(), c.daemon.group.clone()),
        (None, None)
    );
    assert!(c.daemon.strict_plugin_permissions);
    let l = &c.listeners[0];
    assert_eq!(l.handler, s.dir.join("libp.so"));
    assert_eq!(
        (
            l.request_queue_size,
            l.allow_reuse_address,
            l.allow_reuse_port
        ),
        (128, true, false)
    );
    assert_eq!((l.timeout, l.connection_timeout), (None, None));
    assert_eq!(
        (l.max_packet_size, l.max_children, l.max_threads, l.workers),
        (8192, 40, 1024, 1)
    );
    assert_eq!(
        (
            l.daemon_threads,
            l.block_on_close,
            l.disable_nagle_algorithm
        ),
        (false, true, false)
    );
    assert!(
        l.allow.is_empty()
            && l.deny.is_empty()
            && l.allow_uids.is_empty()
            && l.allow_gids.is_empty()
    );
    assert_eq!(
        (l.max_connections_per_source, l.rate_limit_per_source),
        (None, None)
    );
    assert_eq!(
        (
            l.refuse_message.clone(),
            l.socket_mode,
            l.socket_user.clone(),
            l.socket_group.clone()
        ),
        (None, None, None, None)
    );
}

#[test]
fn shutdown_timeout_may_be_zero_and_localhost_is_loopback() {
    let s = Scratch::new();
    let text = format!(
        "[daemon]\nshutdown_timeout = 0\n{}",
        listener("a", "inet", "dgram", "localhost:9", "sync")
    );
    let c = s.parse(&text).expect("valid");
    assert_eq!(c.daemon.shutdown_timeout, Duration::ZERO);
    assert_eq!(
        c.listeners[0].address,
        Address::Inet("127.0.0.1:9".parse::<SocketAddr>().expect("addr"))
    );
}

#[test]
fn load_reads_the_file_and_resolves_against_its_folder() {
    let s = Scratch::new();
    let file = s.write(
        "etc/sockhost.toml",
        &listener("u", "unix", "stream", "s.sock", "sync").replace("libp.so", "../libp.so"),
    );
    let c = load(&file).expect("valid");
    assert_eq!(c.file, file);
    assert_eq!(
        c.listeners[0].address,
        Address::Unix(s.dir.join("etc/s.sock"))
    );
    let missing = load(&s.dir.join("nope.toml")).expect_err("missing file");
    assert!(
        missing
            .to_string()
            .contains("nope.toml: cannot read config file"),
        "{missing}"
    );
}

#[test]
fn reload_comparisons_ignore_only_locations() {
    let s = Scratch::new();
    let before = s.parse(&tcp("a", 7000)).expect("valid").listeners.remove(0);
    let moved = s
        .parse(&format!("\n\n{}", tcp("a", 7000)))
        .expect("valid")
        .listeners
        .remove(0);
    assert_ne!(before.defined_at, moved.defined_at);
    assert!(before.same_settings(&moved) && before.same_socket(&moved));
    let more = s
        .parse(&format!("{}workers = 2\n", tcp("a", 7000)))
        .expect("valid")
        .listeners
        .remove(0);
    assert!(!before.same_settings(&more) && before.same_socket(&more));
    let plugin_cfg = s
        .parse(&format!("{}[listener.config]\nx = 1\n", tcp("a", 7000)))
        .expect("valid");
    assert!(!before.same_settings(&plugin_cfg.listeners[0]));
    let other_port = s.parse(&tcp("a", 7001)).expect("valid").listeners.remove(0);
    assert!(!before.same_socket(&other_port) && !before.same_settings(&other_port));
}

#[test]
fn relative_main_file_is_made_absolute() {
    let c = crate::config::parse_main("", std::path::Path::new("sockhost.toml"))
        .expect("empty config is valid");
    assert!(c.file.is_absolute());
    assert_eq!(c.daemon.plugin_dir, std::env::current_dir().expect("cwd"));
    assert!(c.listeners.is_empty());
}
