//! `user`, `group`, `nice`, `umask`, `[listener.limits]` and the unix
//! socket file keys with their older names.

use super::{case, run, tcp_with, with, Scratch};

#[test]
fn identity_and_limits_are_read() {
    let s = Scratch::new();
    let text = tcp_with(
        "user = \"nobody\"\ngroup = \"nogroup\"\nnice = 5\numask = \"0027\"\n[listener.limits]\nmemory = \"512M\"\nopen_files = 1024\nprocesses = 64\ncpu_seconds = 30",
    );
    let c = s.parse(&text).expect("valid");
    let l = &c.listeners[0];
    assert_eq!(
        (l.user.as_deref(), l.group.as_deref()),
        (Some("nobody"), Some("nogroup"))
    );
    assert_eq!((l.nice, l.umask), (Some(5), Some(0o027)));
    assert_eq!(l.limits.memory, Some(512 << 20));
    assert_eq!(
        (
            l.limits.open_files,
            l.limits.processes,
            l.limits.cpu_seconds
        ),
        (Some(1024), Some(64), Some(30))
    );
    let bytes = s
        .parse(&tcp_with("[listener.limits]\nmemory = 2097152"))
        .expect("valid");
    assert_eq!(bytes.listeners[0].limits.memory, Some(2 << 20));
    let none = s.parse(&tcp_with("")).expect("valid");
    let l = &none.listeners[0];
    assert!(l.user.is_none() && l.group.is_none() && l.nice.is_none() && l.umask.is_none());
    assert!(l.limits.is_empty());
    assert!(none.warnings.is_empty());
}

#[test]
fn bad_identity_and_limits_name_file_line_and_key() {
    run(&[
        case(
            tcp_with("user = \"no-such-user-here\""),
            8,
            "listener.user",
            "no such user: \"no-such-user-here\"",
        ),
        case(
            tcp_with("group = \"no-such-group-here\""),
            8,
            "listener.group",
            "no such group: \"no-such-group-here\"",
        ),
        case(
            tcp_with("nice = 20"),
            8,
            "listener.nice",
            "allowed -20..=19",
        ),
        case(tcp_with("nice = \"5\""), 8, "listener.nice", "an integer"),
        case(
            tcp_with("umask = \"0778\""),
            8,
            "listener.umask",
            "expected an octal mask from \"0000\" to \"0777\"",
        ),
        case(tcp_with("umask = 27"), 8, "listener.umask", "octal string"),
        case(
            tcp_with("[listener.limits]\nmemory = \"12T\""),
            9,
            "listener.limits.memory",
            "K, M or G suffix",
        ),
        case(
            tcp_with("[listener.limits]\nmemory = \"100K\""),
            9,
            "listener.limits.memory",
            "too small",
        ),
        case(
            tcp_with("[listener.limits]\nopen_files = 0"),
            9,
            "listener.limits.open_files",
            "allowed 1..=1048576",
        ),
        case(
            tcp_with("[listener.limits]\nprocesses = \"many\""),
            9,
            "listener.limits.processes",
            "an integer",
        ),
        case(
            tcp_with("[listener.limits]\nstack = \"8M\""),
            9,
            "listener.limits.stack",
            "cpu_seconds",
        ),
    ]);
}

#[test]
fn socket_file_keys_and_their_older_names() {
    let s = Scratch::new();
    let unix = |extra: &str| with("unix", "stream", "s.sock", "sync", extra);
    let new = s
        .parse(&unix(
            "socket_mode = \"0660\"\nsocket_user = \"root\"\nsocket_group = \"0\"\ngroup = \"nogroup\"",
        ))
        .expect("valid");
    let l = &new.listeners[0];
    assert_eq!(l.socket_mode, Some(0o660));
    assert_eq!(
        (l.socket_user.as_deref(), l.socket_group.as_deref()),
        (Some("root"), Some("0"))
    );
    assert_eq!(l.group.as_deref(), Some("nogroup"), "the worker's group");
    assert!(new.warnings.is_empty(), "{:?}", new.warnings);

    // An old config: its `group` still reaches the socket file, with a warning.
    let old = s
        .parse(&unix(
            "mode = \"0660\"\nowner = \"root\"\ngroup = \"nogroup\"",
        ))
        .expect("valid");
    let l = &old.listeners[0];
    assert_eq!(l.socket_mode, Some(0o660));
    assert_eq!(l.socket_user.as_deref(), Some("root"));
    assert_eq!(l.socket_group.as_deref(), Some("nogroup"));
    assert_eq!(l.group.as_deref(), Some("nogroup"));
    assert_eq!(old.warnings.len(), 1, "{:?}", old.warnings);
    let w = &old.warnings[0];
    let at = format!("{}:10:1: key `listener.group`", s.main_file().display());
    assert!(w.starts_with(&at), "{w}");
    assert!(w.contains("socket_group = \"nogroup\""), "{w}");

    run(&[
        case(
            with(
                "unix",
                "stream",
                "s.sock",
                "sync",
                "socket_mode = \"0660\"\nmode = \"0600\"",
            ),
            9,
            "listener.mode",
            "older name of `socket_mode`",
        ),
        case(
            with(
                "unix",
                "stream",
                "s.sock",
                "sync",
                "owner = \"root\"\nsocket_user = \"root\"",
            ),
            8,
            "listener.owner",
            "set only `socket_user`",
        ),
        case(
            with(
                "unix",
                "stream",
                "s.sock",
                "sync",
                "socket_user = \"no-such-user-here\"",
            ),
            8,
            "listener.socket_user",
            "no such user",
        ),
    ]);
}
