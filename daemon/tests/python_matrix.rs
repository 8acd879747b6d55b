//! The socketserver examples of Python's documentation under sockhostd's
//! Python plugin, for every family × socket type × mixin they apply to:
//! each reply must be byte-identical to the one CPython's own
//! socketserver gives when it serves the same class (a `python3` started
//! here). `Shape*` handlers reply with what they were given (the types of
//! `request` and `client_address`, the server's attributes), so the
//! objects themselves are compared too.

mod common;

use common::py::*;

const FAMILIES: [&str; 3] = ["inet", "inet6", "unix"];
const STREAM: [&str; 3] = ["MyTCPHandler", "MyStreamHandler", "ShapeStream"];
const DGRAM: [&str; 3] = ["MyUDPHandler", "MyDatagramHandler", "ShapeDgram"];

/// (listener name, family, type, "module:Class") for every case.
fn cases() -> Vec<(String, String, String, String)> {
    let mut v = Vec::new();
    for family in FAMILIES {
        for (ty, classes) in [("stream", STREAM), ("dgram", DGRAM)] {
            for class in classes {
                let name = format!("{}_{family}", class.to_lowercase());
                v.push((name, family.into(), ty.into(), format!("examples:{class}")));
            }
        }
    }
    v
}

fn payload(i: usize) -> Vec<u8> {
    format!("  hello socketserver {i}, héllo\n").into_bytes()
}

fn matrix(mixin: &str) {
    let cases = cases();
    let config: String = cases
        .iter()
        .map(|(name, family, ty, spec)| py_listener(name, family, ty, mixin, spec, "", ""))
        .collect();
    let d = start_with(
        &format!("pym-{mixin}"),
        &[("examples.py", EXAMPLES)],
        &config,
    );
    let reference = Reference::start(&d.dir.path, &cases);
    for (i, (name, _, ty, spec)) in cases.iter().enumerate() {
        for round in 0..2 {
            let data = payload(i * 2 + round);
            let (ours, theirs) = if ty == "stream" {
                (
                    stream_exchange(&d.addr(name), &data),
                    stream_exchange(&reference.addr(name), &data),
                )
            } else {
                (
                    dgram_exchange(&d.addr(name), &d.dir.path, &data),
                    dgram_exchange(&reference.addr(name), &d.dir.path, &data),
                )
            };
            assert!(!theirs.is_empty(), "{spec} ({name}) gave CPython no reply");
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
                "{spec} on {name} under mixin {mixin}: sockhostd and CPython differ\n{}",
                d.log()
            );
        }
    }
    let log = d.log();
    assert!(
        log.contains(" wrote:") && log.contains("b'hello socketserver"),
        "print() reaches the log:\n{log}"
    );
    let (status, log) = d.stop();
    assert!(status.success(), "{log}");
}

/// Protects: the documentation's examples reply exactly as under
/// CPython's TCPServer/UDPServer/Unix*Server, mixin sync.
#[test]
fn doc_examples_match_cpython_sync() {
    matrix("sync");
}

/// Protects: the same, one thread per request.
#[test]
fn doc_examples_match_cpython_thread() {
    matrix("thread");
}

/// Protects: the same, one process per request.
#[test]
fn doc_examples_match_cpython_fork() {
    matrix("fork");
}
