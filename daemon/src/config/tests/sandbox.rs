//! `[listener.sandbox]`: defaults, values, relative paths, and errors.

use std::path::PathBuf;

use super::{case, run, tcp_with, Scratch};
use crate::config::{Network, SandboxMode};

#[test]
fn no_sandbox_table_means_off_with_network_and_no_exec() {
    let s = Scratch::new();
    let c = s.parse(&tcp_with("")).expect("valid");
    let sb = &c.listeners[0].sandbox;
    assert_eq!(sb.mode, SandboxMode::Off);
    assert_eq!(sb.network, Network::Any);
    assert!(!sb.exec);
    assert!(sb.read_only.is_empty() && sb.read_write.is_empty());
}

#[test]
fn sandbox_keys_are_read_and_paths_resolve_against_the_config_folder() {
    let s = Scratch::new();
    s.write("data/x", "");
    let text = tcp_with(
        "[listener.sandbox]\nmode = \"enforce\"\nread_only = [\"data\", \"/etc\"]\nread_write = [\"plugdir\"]\nnetwork = \"none\"\nexec = true",
    );
    let c = s.parse(&text).expect("valid");
    let sb = &c.listeners[0].sandbox;
    assert_eq!(sb.mode, SandboxMode::Enforce);
    assert_eq!(sb.read_only, [s.dir.join("data"), PathBuf::from("/etc")]);
    assert_eq!(sb.read_write, [s.dir.join("plugdir")]);
    assert_eq!(sb.network, Network::None);
    assert!(sb.exec);
}

#[test]
fn bad_sandbox_keys_name_their_line_and_key() {
    run(&[
        case(
            tcp_with("[listener.sandbox]\nmode = \"on\""),
            9,
            "listener.sandbox.mode",
            "expected one of \"enforce\", \"log\", \"off\"",
        ),
        case(
            tcp_with("[listener.sandbox]\nnetwork = \"tcp\""),
            9,
            "listener.sandbox.network",
            "expected one of \"none\", \"any\"",
        ),
        case(
            tcp_with("[listener.sandbox]\nread_only = [\"missing\"]"),
            9,
            "listener.sandbox.read_only",
            "does not exist",
        ),
        case(
            tcp_with("[listener.sandbox]\nread_write = [\"\"]"),
            9,
            "listener.sandbox.read_write",
            "the path is empty",
        ),
        case(
            tcp_with("[listener.sandbox]\nexec = 1"),
            9,
            "listener.sandbox.exec",
            "invalid type",
        ),
        case(
            tcp_with("[listener.sandbox]\nnet = \"none\""),
            9,
            "listener.sandbox.net",
            "unknown key",
        ),
    ]);
}
