//! The http-hello plugin behind the real daemon: keep-alive (two requests
//! on one connection, in every mixin), `Connection: close` honoured, a
//! malformed request answered 400 and an oversized head 431, each error
//! closing the connection after its answer; pipelined requests answered in
//! order; HTTP/1.0 closes unless asked to keep alive.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};

const BODY: &str = "hello from sockhost\n";

/// One daemon with an http-hello listener per mixin, heads capped at 1 KiB.
fn start() -> Daemon {
    let http = plugin("sockhost_http_hello");
    let extra = format!(
        "connection_timeout = 10.0\n[listener.config]\nbody = {BODY:?}\nmax_header_bytes = 1024\n"
    );
    let cfg: String = ["sync", "thread", "fork"]
        .iter()
        .map(|m| listener(m, "inet", "stream", "127.0.0.1:0", m, &http, &extra))
        .collect();
    Daemon::start(&cfg)
}

/// A response: status line, header lines (lower-cased names), body.
struct Response {
    status: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Read one response framed by its Content-Length.
fn read_response(r: &mut BufReader<Stream>) -> Response {
    let mut status = String::new();
    r.read_line(&mut status).expect("status line");
    assert!(status.ends_with("\r\n"), "no status line, got {status:?}");
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("header line");
        let line = line.trim_end_matches("\r\n");
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("name: value");
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut resp = Response {
        status: status.trim_end().to_string(),
        headers,
        body: Vec::new(),
    };
    let len: usize = resp
        .header("content-length")
        .expect("every answer has Content-Length")
        .parse()
        .expect("a number");
    resp.body = vec![0; len];
    r.read_exact(&mut resp.body).expect("body");
    resp
}

fn connect(d: &Daemon, name: &str) -> BufReader<Stream> {
    BufReader::new(Stream::connect(&d.addr(name)).expect("connect"))
}

fn send(r: &mut BufReader<Stream>, text: &str) {
    r.get_mut().write_all(text.as_bytes()).expect("send");
}

/// After an answer that closes: the client reads end of file, not a reset.
fn assert_closed(r: &mut BufReader<Stream>) {
    let mut rest = Vec::new();
    r.read_to_end(&mut rest)
        .expect("a clean end of file after the answer");
    assert!(rest.is_empty(), "nothing after the answer: {rest:?}");
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection_in_every_mixin() {
    let d = start();
    for mixin in ["sync", "thread", "fork"] {
        let mut c = connect(&d, mixin);
        for path in ["/", "/again"] {
            send(
                &mut c,
                &format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"),
            );
            let r = read_response(&mut c);
            assert_eq!(r.status, "HTTP/1.1 200 OK", "{mixin}");
            assert_eq!(r.body, BODY.as_bytes(), "{mixin}");
            assert_eq!(r.header("connection"), None, "{mixin}: kept alive");
            assert!(r.header("date").is_some(), "{mixin}: Date");
        }
    }
}

#[test]
fn connection_close_is_honoured() {
    let d = start();
    let mut c = connect(&d, "thread");
    send(
        &mut c,
        "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    );
    let r = read_response(&mut c);
    assert_eq!(r.status, "HTTP/1.1 200 OK");
    assert_eq!(r.header("connection"), Some("close"));
    assert_closed(&mut c);
}

#[test]
fn http_1_0_closes_unless_asked_to_keep_alive() {
    let d = start();
    let mut c = connect(&d, "thread");
    send(&mut c, "GET / HTTP/1.0\r\n\r\n");
    assert_eq!(read_response(&mut c).body, BODY.as_bytes());
    assert_closed(&mut c);

    let mut c = connect(&d, "thread");
    send(&mut c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(
        read_response(&mut c).header("connection"),
        Some("keep-alive")
    );
    send(&mut c, "HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let mut status = String::new();
    c.read_line(&mut status).expect("second answer");
    assert_eq!(status, "HTTP/1.1 200 OK\r\n");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let d = start();
    let mut c = connect(&d, "fork");
    send(
        &mut c,
        "GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc\
         GET /3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..3 {
        let r = read_response(&mut c);
        assert_eq!(r.status, "HTTP/1.1 200 OK");
        assert_eq!(r.body, BODY.as_bytes());
    }
    assert_closed(&mut c);
}

#[test]
fn a_bad_request_gets_400_and_the_connection_closes() {
    let d = start();
    for bad in [
        "this is not http\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",                           // no Host
        "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", // space in a name
    ] {
        let mut c = connect(&d, "thread");
        send(&mut c, bad);
        let r = read_response(&mut c);
        assert_eq!(r.status, "HTTP/1.1 400 Bad Request", "{bad:?}");
        assert_eq!(r.header("connection"), Some("close"), "{bad:?}");
        assert_closed(&mut c);
    }
}

#[test]
fn oversized_headers_get_431_and_the_connection_closes() {
    let d = start();
    let mut c = connect(&d, "sync");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(4000)
    );
    send(&mut c, &big);
    let r = read_response(&mut c);
    assert_eq!(r.status, "HTTP/1.1 431 Request Header Fields Too Large");
    assert_eq!(r.header("connection"), Some("close"));
    assert_closed(&mut c);
    // The worker is fine and serves the next client.
    let mut c = connect(&d, "sync");
    send(&mut c, "GET / HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(read_response(&mut c).body, BODY.as_bytes());
}
