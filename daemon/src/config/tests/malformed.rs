//! Malformed configs: each must fail at the right line, naming the key and
//! saying what is allowed.

use super::{case, run, tcp, tcp_with, with, Scratch};

#[test]
fn unknown_keys_are_named_with_the_allowed_keys() {
    run(&[
        case(
            "[daemon]\nplugin_directory = \"x\"\n",
            2,
            "daemon.plugin_directory",
            "unknown key `plugin_directory`, expected one of `plugin_dir`, `include`, `shutdown_timeout`",
        ),
        case(
            tcp_with("max_thread = 3"),
            8,
            "listener.max_thread",
            "unknown key `max_thread`, expected one of `name`, `family`, `type`",
        ),
        case(
            "[server]\nport = 1\n",
            1,
            "server",
            "unknown key `server`, expected `daemon` or `listener`",
        ),
        case(
            "[listener]\nname = \"a\"\n",
            1,
            "listener",
            "write [[listener]] with double brackets",
        ),
    ]);
}

#[test]
fn unknown_key_error_has_the_exact_column() {
    let s = Scratch::new();
    let err = s.fail(&tcp_with("  bogus = 1"));
    assert_eq!((err.line, err.column), (Some(8), Some(3)));
}

#[test]
fn wrong_types_name_the_key_and_the_expected_type() {
    run(&[
        case(
            "[daemon]\nshutdown_timeout = \"10s\"\n",
            2,
            "daemon.shutdown_timeout",
            "invalid type: string \"10s\", expected a number",
        ),
        case(
            "[daemon]\ninclude = \"conf.d\"\n",
            2,
            "daemon.include",
            "expected an array",
        ),
        case(
            "[daemon]\nstrict_plugin_permissions = 1\n",
            2,
            "daemon.strict_plugin_permissions",
            "expected a boolean",
        ),
        case("daemon = 3\n", 1, "daemon", "expected a table"),
        case(
            tcp_with("workers = \"4\""),
            8,
            "listener.workers",
            "expected an integer",
        ),
        case(
            tcp_with("workers = 1.5"),
            8,
            "listener.workers",
            "invalid type: float `1.5`, expected an integer",
        ),
        case(
            tcp_with("allow_reuse_port = \"yes\""),
            8,
            "listener.allow_reuse_port",
            "expected a boolean",
        ),
        case(
            tcp_with("allow = \"127.0.0.0/8\""),
            8,
            "listener.allow",
            "expected an array",
        ),
        case(
            with(
                "unix",
                "stream",
                "s.sock",
                "sync",
                "allow_uids = [1000, \"x\"]",
            ),
            8,
            "listener.allow_uids",
            "expected an integer",
        ),
        case(
            with("unix", "stream", "s.sock", "sync", "mode = 0o660"),
            8,
            "listener.mode",
            "expected an octal string such as \"0660\"",
        ),
        case(
            tcp_with("config = 3"),
            8,
            "listener.config",
            "expected a table",
        ),
        case(
            tcp("a", 7000).replace("name = \"a\"", "name = 5"),
            2,
            "listener.name",
            "expected a string",
        ),
    ]);
}

#[test]
fn out_of_range_numbers_state_the_allowed_range() {
    run(&[
        case(
            tcp_with("request_queue_size = 0"),
            8,
            "listener.request_queue_size",
            "0 is out of range: allowed 1..=65535",
        ),
        case(
            tcp_with("request_queue_size = 70000"),
            8,
            "listener.request_queue_size",
            "allowed 1..=65535",
        ),
        case(
            with(
                "inet",
                "dgram",
                "127.0.0.1:9",
                "sync",
                "max_packet_size = 65508",
            ),
            8,
            "listener.max_packet_size",
            "allowed 1..=65507",
        ),
        case(
            with(
                "unix",
                "dgram",
                "d.sock",
                "sync",
                "max_packet_size = 2000000",
            ),
            8,
            "listener.max_packet_size",
            "allowed 1..=1048576",
        ),
        case(
            with("inet", "stream", "127.0.0.1:9", "fork", "max_children = 0"),
            8,
            "listener.max_children",
            "allowed 1..=65536",
        ),
        case(
            tcp_with("max_threads = 65537"),
            8,
            "listener.max_threads",
            "allowed 1..=65536",
        ),
        case(
            tcp_with("workers = 257"),
            8,
            "listener.workers",
            "allowed 1..=256",
        ),
        case(
            tcp_with("max_connections_per_source = 0"),
            8,
            "listener.max_connections_per_source",
            "allowed 1..=",
        ),
        case(
            with("unix", "stream", "s.sock", "sync", "allow_gids = [0, -1]"),
            8,
            "listener.allow_gids",
            "-1 is out of range: allowed 0..=4294967294",
        ),
    ]);
}

#[test]
fn seconds_and_rates_must_be_finite_and_positive() {
    run(&[
        case(
            tcp_with("timeout = 0"),
            8,
            "listener.timeout",
            "greater than 0",
        ),
        case(
            tcp_with("timeout = nan"),
            8,
            "listener.timeout",
            "expected a finite number of seconds",
        ),
        case(
            tcp_with("connection_timeout = -1.5"),
            8,
            "listener.connection_timeout",
            "-1.5 is not allowed",
        ),
        case(
            tcp_with("connection_timeout = inf"),
            8,
            "listener.connection_timeout",
            "finite",
        ),
        case(
            "[daemon]\nshutdown_timeout = -1\n",
            2,
            "daemon.shutdown_timeout",
            "0 or more",
        ),
        case(
            "[daemon]\nstart_timeout = 0\n",
            2,
            "daemon.start_timeout",
            "greater than 0",
        ),
        case(
            tcp_with("rate_limit_per_source = 0"),
            8,
            "listener.rate_limit_per_source",
            "greater than 0",
        ),
    ]);
}

#[test]
fn bad_modes_state_the_allowed_form() {
    let unix = |mode: &str| {
        with(
            "unix",
            "stream",
            "s.sock",
            "sync",
            &format!("mode = \"{mode}\""),
        )
    };
    run(&[
        case(
            unix("0888"),
            8,
            "listener.mode",
            "expected octal permissions from \"0000\" to \"7777\"",
        ),
        case(
            unix("17777"),
            8,
            "listener.mode",
            "\"17777\" is not allowed",
        ),
        case(unix("rw-rw----"), 8, "listener.mode", "such as \"0660\""),
        case(unix(""), 8, "listener.mode", "\"\" is not allowed"),
    ]);
}

#[test]
fn bad_enumeration_values_list_the_allowed_set() {
    run(&[
        case(
            tcp("a", 7000).replace("\"thread\"", "\"forking\""),
            6,
            "listener.mixin",
            "unknown value \"forking\", expected one of \"sync\", \"thread\", \"fork\"",
        ),
        case(
            tcp("a", 7000).replace("\"inet\"", "\"ipv4\""),
            3,
            "listener.family",
            "expected one of \"inet\", \"inet6\", \"unix\"",
        ),
        case(
            tcp("a", 7000).replace("\"stream\"", "\"seqpacket\""),
            4,
            "listener.type",
            "unknown value \"seqpacket\", expected one of \"stream\", \"dgram\"",
        ),
    ]);
}

#[test]
fn enumeration_error_displays_exactly() {
    let s = Scratch::new();
    let err = s.fail(&tcp("a", 7000).replace("\"thread\"", "\"forking\""));
    let want = format!(
        "{}:6:9: key `listener.mixin`: unknown value \"forking\", expected one of \"sync\", \"thread\", \"fork\"",
        s.main_file().display()
    );
    assert_eq!(err.to_string(), want);
}

#[test]
fn missing_required_keys_are_reported_at_the_listener_table() {
    let without = |key: &str| {
        let text = tcp("a", 7000);
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .collect();
        format!("{}\n{}\n", tcp("first", 7001), kept.join("\n"))
    };
    run(&[
        case(
            without("name"),
            9,
            "listener.name",
            "missing required key `name`",
        ),
        case(
            without("family"),
            9,
            "listener.family",
            "missing required key `family`",
        ),
        case(
            without("type"),
            9,
            "listener.type",
            "missing required key `type`",
        ),
        case(
            without("address"),
            9,
            "listener.address",
            "missing required key `address`",
        ),
        case(
            without("mixin"),
            9,
            "listener.mixin",
            "missing required key `mixin`",
        ),
        case(
            without("handler"),
            9,
            "listener.handler",
            "missing required key `handler`",
        ),
    ]);
}
