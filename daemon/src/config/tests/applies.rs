//! Keys that do not apply to a listener, and listeners that clash.

use super::{assert_error, listener, tcp, Scratch};

fn with(family: &str, socktype: &str, address: &str, mixin: &str, extra: &str) -> String {
    format!(
        "{}{extra}\n",
        listener("a", family, socktype, address, mixin)
    )
}

#[track_caller]
fn refused(text: &str, key: &'static str, says: &str) {
    let s = Scratch::new();
    let err = s.fail(text);
    assert_error(&err, &s.main_file(), 8, key, says);
    assert_eq!(err.column, Some(1), "points at the key: {err}");
}

#[test]
fn mixin_specific_keys() {
    refused(
        &with(
            "inet",
            "stream",
            "127.0.0.1:1",
            "thread",
            "max_children = 4",
        ),
        "listener.max_children",
        "only used with mixin = \"fork\", and this listener has mixin = \"thread\"",
    );
    refused(
        &with("inet", "stream", "127.0.0.1:1", "fork", "max_threads = 4"),
        "listener.max_threads",
        "only used with mixin = \"thread\"",
    );
    refused(
        &with(
            "inet",
            "stream",
            "127.0.0.1:1",
            "sync",
            "daemon_threads = true",
        ),
        "listener.daemon_threads",
        "mixin = \"sync\"",
    );
}

#[test]
fn socket_type_specific_keys() {
    refused(
        &with(
            "inet",
            "stream",
            "127.0.0.1:1",
            "sync",
            "max_packet_size = 512",
        ),
        "listener.max_packet_size",
        "only used with type = \"dgram\"",
    );
    refused(
        &with(
            "inet",
            "dgram",
            "127.0.0.1:1",
            "sync",
            "connection_timeout = 3",
        ),
        "listener.connection_timeout",
        "only used with type = \"stream\"",
    );
    refused(
        &with(
            "inet6",
            "dgram",
            "[::1]:1",
            "sync",
            "max_connections_per_source = 3",
        ),
        "listener.max_connections_per_source",
        "type = \"stream\"",
    );
    refused(
        &with(
            "inet",
            "dgram",
            "127.0.0.1:1",
            "sync",
            "disable_nagle_algorithm = true",
        ),
        "listener.disable_nagle_algorithm",
        "type = \"stream\"",
    );
}

#[test]
fn family_specific_keys() {
    refused(
        &with(
            "unix",
            "stream",
            "s.sock",
            "sync",
            "disable_nagle_algorithm = true",
        ),
        "listener.disable_nagle_algorithm",
        "TCP_NODELAY has no meaning for unix sockets",
    );
    refused(
        &with(
            "unix",
            "stream",
            "s.sock",
            "sync",
            "allow = [\"127.0.0.1\"]",
        ),
        "listener.allow",
        "unix sockets have no source IP address",
    );
    refused(
        &with("unix", "dgram", "@d", "sync", "deny = []"),
        "listener.deny",
        "no source IP address",
    );
    refused(
        &with("inet", "stream", "127.0.0.1:1", "sync", "allow_uids = [0]"),
        "listener.allow_uids",
        "this listener is inet stream",
    );
    refused(
        &with("unix", "dgram", "d.sock", "sync", "allow_gids = [0]"),
        "listener.allow_gids",
        "this listener is unix dgram",
    );
}

#[test]
fn socket_file_keys_need_a_unix_path() {
    refused(
        &with("inet", "stream", "127.0.0.1:1", "sync", "mode = \"0660\""),
        "listener.mode",
        "need family = \"unix\" with a path address",
    );
    refused(
        &with("unix", "stream", "@abstract", "sync", "owner = \"root\""),
        "listener.owner",
        "not \"@abstract\"",
    );
    refused(
        &with(
            "inet6",
            "dgram",
            "[::1]:1",
            "sync",
            "socket_group = \"root\"",
        ),
        "listener.socket_group",
        "path address",
    );
    refused(
        &with(
            "inet",
            "stream",
            "127.0.0.1:1",
            "sync",
            "socket_mode = \"0660\"",
        ),
        "listener.socket_mode",
        "path address",
    );
}

#[test]
fn duplicate_addresses_name_the_first_listener() {
    let s = Scratch::new();
    let err = s.fail(&format!("{}{}", tcp("one", 7000), tcp("two", 7000)));
    assert_error(
        &err,
        &s.main_file(),
        12,
        "listener.address",
        "address 127.0.0.1:7000 is already used by listener \"one\"",
    );
    assert!(
        err.message
            .ends_with(&format!("{}:5:11", s.main_file().display())),
        "{err}"
    );
    let unix_twice = format!(
        "{}{}",
        listener("one", "unix", "stream", "s.sock", "sync"),
        listener(
            "two",
            "unix",
            "dgram",
            &s.dir.join("s.sock").display().to_string(),
            "sync"
        )
    );
    assert_error(
        &s.fail(&unix_twice),
        &s.main_file(),
        12,
        "listener.address",
        "already used by listener \"one\"",
    );
    let abstract_twice = format!(
        "{}{}",
        listener("one", "unix", "stream", "@x", "sync"),
        listener("two", "unix", "dgram", "@x", "sync")
    );
    assert_error(
        &s.fail(&abstract_twice),
        &s.main_file(),
        12,
        "listener.address",
        "address @x is already used",
    );
}

#[test]
fn same_port_with_another_type_or_port_zero_is_not_a_clash() {
    let s = Scratch::new();
    let tcp_and_udp = format!(
        "{}{}",
        tcp("t", 7000),
        listener("u", "inet", "dgram", "127.0.0.1:7000", "sync")
    );
    assert_eq!(s.parse(&tcp_and_udp).expect("valid").listeners.len(), 2);
    let two_ephemeral = format!("{}{}", tcp("a", 0), tcp("b", 0));
    assert_eq!(s.parse(&two_ephemeral).expect("valid").listeners.len(), 2);
}

#[test]
fn duplicate_name_in_one_file_names_both_lines() {
    let s = Scratch::new();
    let err = s.fail(&format!("{}{}", tcp("same", 7000), tcp("same", 7001)));
    assert_error(
        &err,
        &s.main_file(),
        9,
        "listener.name",
        "duplicate listener name \"same\": already defined at ",
    );
    assert!(
        err.message
            .ends_with(&format!("{}:2:8", s.main_file().display())),
        "{err}"
    );
}

#[test]
fn toml_syntax_errors_carry_line_and_column() {
    let s = Scratch::new();
    let err = s.fail("[daemon]\nshutdown_timeout = \n");
    assert_eq!(
        (err.file.as_path(), err.line),
        (s.main_file().as_path(), Some(2))
    );
    let err = s.fail(&format!("{}name = \"again\"\n", tcp("a", 1)));
    assert_eq!(err.line, Some(8), "duplicate key: {err}");
}
