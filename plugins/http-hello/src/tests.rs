//! Unit tests: the head parser, the date, and whole conversations over an
//! in-memory stream (pipelining, bodies, limits). The daemon-level tests
//! are in daemon/tests/http_hello.rs.

use crate::conn::{serve, End};
use crate::parse::*;
use crate::response::{imf_fixdate, Answer};
use crate::HttpHello;
use std::io::{self, Read, Write};

fn head(text: &str) -> Head {
    match parse(text.as_bytes(), 8192) {
        Parsed::Request(h, n) => {
            assert_eq!(n, text.len(), "the whole head is consumed");
            h
        }
        other => panic!("{text:?}: {other:?}"),
    }
}

fn status(text: &str) -> u16 {
    match parse(text.as_bytes(), 8192) {
        Parsed::Error(Status(code, _)) => code,
        other => panic!("{text:?}: expected an error, got {other:?}"),
    }
}

#[test]
fn keep_alive_follows_version_and_connection() {
    assert!(head("GET / HTTP/1.1\r\nHost: a\r\n\r\n").keep_alive);
    assert!(!head("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive);
    assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
    let h = head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert!(h.keep_alive && h.explicit_keep_alive);
    let h = head("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n");
    assert!(!h.keep_alive);
    assert_eq!(
        head("HEAD /x HTTP/1.1\r\nhost: a\r\n\r\n").method,
        Method::Head
    );
    assert_eq!(head("POST / HTTP/1.0\n\n").method, Method::Other);
}

#[test]
fn leading_empty_lines_are_skipped_and_bodies_measured() {
    let h = head("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(h.content_length, 5);
    let h = head("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(h.content_length, 5);
}

#[test]
fn malformed_heads_get_400() {
    for bad in [
        "GET /\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "GET / HTTPS/1.1\r\nHost: a\r\n\r\n",
        "\u{1}\r\n\r\n",
    ] {
        assert_eq!(status(bad), 400, "{bad:?}");
    }
}

#[test]
fn other_versions_get_505_and_transfer_encoding_501() {
    assert_eq!(status("GET / HTTP/2.0\r\n\r\n"), 505);
    assert_eq!(
        status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
        501
    );
}

#[test]
fn heads_past_the_limit_get_431_and_short_ones_wait() {
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\nHost: a\r\n", 64),
        Parsed::Incomplete
    );
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "y".repeat(100)
    );
    assert_eq!(parse(big.as_bytes(), 64), Parsed::Error(TOO_LARGE));
    assert_eq!(parse(&b"\r\n".repeat(40), 64), Parsed::Error(TOO_LARGE));
    let exact = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert!(matches!(
        parse(exact.as_bytes(), exact.len()),
        Parsed::Request(..)
    ));
    assert_eq!(
        parse(exact.as_bytes(), exact.len() - 1),
        Parsed::Error(TOO_LARGE)
    );
}

#[test]
fn dates_are_imf_fixdate() {
    assert_eq!(imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(imf_fixdate(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(imf_fixdate(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_eq!(imf_fixdate(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
}

/// An in-memory connection: input delivered in the given chunks, output
/// collected.
struct Fake {
    chunks: Vec<Vec<u8>>,
    out: Vec<u8>,
}

impl Read for Fake {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.chunks.is_empty() {
            return Ok(0);
        }
        let chunk = &mut self.chunks[0];
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        chunk.drain(..n);
        if chunk.is_empty() {
            self.chunks.remove(0);
        }
        Ok(n)
    }
}

impl Write for Fake {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn converse(chunks: &[&str]) -> (End, String) {
    let mut f = Fake {
        chunks: chunks.iter().map(|c| c.as_bytes().to_vec()).collect(),
        out: Vec::new(),
    };
    let answer = Answer::new("hi\n", "text/plain");
    let end = serve(&mut f, &answer, 1024).expect("conversation");
    (end, String::from_utf8(f.out).expect("utf-8"))
}

#[test]
fn pipelined_requests_are_answered_in_order_with_bodies_skipped() {
    let (end, out) = converse(&[
        "GET /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab",
        "cdGET / HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
    ]);
    assert_eq!(end, End::Peer);
    assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 3, "{out}");
    assert_eq!(out.matches("hi\n").count(), 2, "HEAD has no body: {out}");
    assert!(!out.contains("Connection:"), "{out}");
    assert!(out.contains("Content-Length: 3\r\n") && out.contains("Date: "));
}

#[test]
fn close_and_errors_end_the_conversation() {
    let (end, out) = converse(&[
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    ]);
    assert_eq!(end, End::Close);
    assert_eq!(
        out.matches("200 OK").count(),
        1,
        "nothing after close: {out}"
    );
    assert!(out.contains("Connection: close\r\n"));

    let (end, out) = converse(&["GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"]);
    assert_eq!(end, End::Peer);
    assert!(out.contains("Connection: keep-alive\r\n"), "{out}");

    let (end, out) = converse(&["BREW / HTTP/1.1\r\nHost: a\r\n\r\n"]);
    assert_eq!(end, End::Close);
    assert!(out.starts_with("HTTP/1.1 405 ") && out.contains("Allow: GET, HEAD\r\n"));

    let (end, out) = converse(&["GET / HTTP/1.1\r\nHost: a\r\n\r\nnonsense\r\n\r\n"]);
    assert_eq!(end, End::Close);
    assert!(
        out.contains("200 OK") && out.contains("400 Bad Request"),
        "{out}"
    );

    let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "z".repeat(2000));
    let (end, out) = converse(&[&big]);
    assert_eq!(end, End::Close);
    assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
}

#[test]
fn config_is_checked() {
    let table = |text: &str| -> toml::Table { toml::from_str(text).expect("toml") };
    assert!(HttpHello::from_config(&table("body = \"x\"\nmax_header_bytes = 1024")).is_ok());
    for bad in [
        "bdy = \"x\"",
        "body = 3",
        "max_header_bytes = 10",
        "content_type = \"a\\nb\"",
    ] {
        assert!(HttpHello::from_config(&table(bad)).is_err(), "{bad}");
    }
}
