//! Malformed values that name places: addresses, networks, names,
//! accounts and handler files.

use super::{assert_error, case, listener, run, tcp, tcp_with, with, Scratch};

#[test]
fn addresses_must_match_their_family() {
    let long = format!("/{}", "x".repeat(107));
    run(&[
        case(
            listener("a", "inet", "stream", "example.com:80", "sync"),
            5,
            "listener.address",
            "host names other than \"localhost\" are not resolved",
        ),
        case(
            listener("a", "inet", "stream", "[::1]:80", "sync"),
            5,
            "listener.address",
            "use family = \"inet6\"",
        ),
        case(
            listener("a", "inet", "stream", "127.0.0.1:65536", "sync"),
            5,
            "listener.address",
            "not a number in 0..=65535",
        ),
        case(
            listener("a", "inet", "stream", "/run/x.sock", "sync"),
            5,
            "listener.address",
            "expects \"A.B.C.D:PORT\"",
        ),
        case(
            listener("a", "inet6", "stream", "127.0.0.1:80", "sync"),
            5,
            "listener.address",
            "expects \"[ADDR]:PORT\"",
        ),
        case(
            listener("a", "inet6", "dgram", "[::g]:80", "sync"),
            5,
            "listener.address",
            "not an IPv6 address",
        ),
        case(
            listener("a", "unix", "stream", "127.0.0.1:80", "sync"),
            5,
            "listener.address",
            "expects a socket file path or \"@name\"",
        ),
        case(
            listener("a", "unix", "stream", &long, "sync"),
            5,
            "listener.address",
            "longer than the limit of 107 bytes",
        ),
        case(
            listener("a", "unix", "stream", "", "sync"),
            5,
            "listener.address",
            "empty address",
        ),
    ]);
}

#[test]
fn relative_unix_path_counts_the_config_folder_toward_the_limit() {
    let s = Scratch::new();
    let room = 107 - s.dir.as_os_str().len() - 1;
    let fits = listener("a", "unix", "stream", &"x".repeat(room), "sync");
    assert!(s.parse(&fits).is_ok());
    let err = s.fail(&listener(
        "a",
        "unix",
        "stream",
        &"x".repeat(room + 1),
        "sync",
    ));
    assert_error(
        &err,
        &s.main_file(),
        5,
        "listener.address",
        "108 bytes, longer than the limit of 107 bytes",
    );
}

#[test]
fn bad_cidr_entries_are_named() {
    run(&[
        case(
            tcp_with("allow = [\"10.0.0.0/8\", \"10.0.0.0/33\"]"),
            8,
            "listener.allow",
            "\"10.0.0.0/33\" is not an IP network",
        ),
        case(
            tcp_with("allow = []\ndeny = [\"nonsense\"]"),
            9,
            "listener.deny",
            "\"nonsense\" is not an IP network: expected CIDR",
        ),
    ]);
}

#[test]
fn bad_names_and_accounts_are_refused() {
    run(&[
        case(
            tcp("has space", 7000),
            2,
            "listener.name",
            "invalid listener name \"has space\"",
        ),
        case(
            tcp(&"n".repeat(65), 7000),
            2,
            "listener.name",
            "1 to 64 characters",
        ),
        case(
            tcp("", 7000),
            2,
            "listener.name",
            "invalid listener name \"\"",
        ),
        case(
            with(
                "unix",
                "stream",
                "s.sock",
                "sync",
                "owner = \"no-such-user-sockhost\"",
            ),
            8,
            "listener.owner",
            "no such user: \"no-such-user-sockhost\"",
        ),
        case(
            "[daemon]\ngroup = \"no-such-group-sockhost\"\n",
            2,
            "daemon.group",
            "no such group",
        ),
        case(
            "[daemon]\nuser = \"\"\n",
            2,
            "daemon.user",
            "user name is empty",
        ),
        case(
            "[daemon]\nplugin_dir = \"\"\n",
            2,
            "daemon.plugin_dir",
            "plugin_dir is empty",
        ),
    ]);
}

#[test]
fn handler_must_be_an_existing_regular_file() {
    let s = Scratch::new();
    let err = s.fail(&tcp("a", 7000).replace("libp.so", "libmissing.so"));
    assert_error(
        &err,
        &s.main_file(),
        7,
        "listener.handler",
        "handler not found: ",
    );
    assert!(
        err.message
            .ends_with(&s.dir.join("libmissing.so").display().to_string()),
        "{err}"
    );
    let err = s.fail(&tcp("a", 7000).replace("libp.so", "plugdir"));
    assert_error(
        &err,
        &s.main_file(),
        7,
        "listener.handler",
        "handler is a directory",
    );
    let err = s.fail(&format!(
        "[daemon]\nplugin_dir = \"plugdir\"\n{}",
        tcp("a", 7000)
    ));
    assert_error(
        &err,
        &s.main_file(),
        9,
        "listener.handler",
        &format!("{}", s.dir.join("plugdir/libp.so").display()),
    );
}
