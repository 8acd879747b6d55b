//! A Python server class's own `verify_request` on stream listeners runs
//! inside the request (thread, fork child or the sync loop's turn) so it
//! can look at the real socket; a refusal there must still be counted as
//! the loop's refusals are: `sockhost_requests_refused_total` with reason
//! `verify_request`, and neither a request nor a failure, in every mixin.

mod common;

use common::observe::*;
use common::py::*;

const APP: &str = r#"
import socket, socketserver


class Peeker(socketserver.TCPServer):
    def verify_request(self, request, client_address):
        return request.recv(5, socket.MSG_PEEK) != b"DENY "


class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"served " + self.rfile.readline())
"#;

const MIXINS: [&str; 3] = ["sync", "thread", "fork"];

fn line(addr: &str, text: &str) -> String {
    String::from_utf8_lossy(&stream_exchange(addr, format!("{text}\n").as_bytes())).into_owned()
}

/// Protects: refusals by the class's `verify_request` are counted as
/// refused (reason `verify_request`), the served requests as requests, and
/// nothing as failed, under sync, thread and fork alike.
#[test]
fn python_verify_request_refusals_are_counted_as_refused() {
    let listeners: String = MIXINS
        .iter()
        .map(|m| {
            py_listener(
                m,
                "inet",
                "stream",
                m,
                "app:Echo",
                "",
                "server = \"app:Peeker\"",
            )
        })
        .collect();
    let d = start_with("pyrefused", &[("app.py", APP)], &observed(&listeners));
    for m in MIXINS {
        let addr = d.addr(m);
        // Refused first: a fork child's refusal is counted when it is
        // reaped, done by the time two more requests went through the same
        // loop (the counter of requests never steps back, so a scrape while
        // a refused child still ran would keep counting it).
        for i in 0..3 {
            assert_eq!(line(&addr, &format!("DENY {i}")), "", "{m}\n{}", d.log());
        }
        for i in 0..2 {
            assert_eq!(
                line(&addr, &format!("HELLO {i}")),
                format!("served HELLO {i}\n")
            );
        }
    }
    for m in MIXINS {
        let refused = |t: &str| {
            sample(
                t,
                "sockhost_requests_refused_total",
                &[("listener", m), ("reason", "verify_request")],
            )
        };
        let text = scrape_until(&d, &format!("{m}: 3 refused, 2 done"), |t| {
            refused(t) == Some(3.0)
                && sample(t, "sockhost_requests_active", &[("listener", m)]) == Some(0.0)
        });
        let one = |name: &str| sample(&text, name, &[("listener", m)]);
        assert_eq!(one("sockhost_requests_total"), Some(2.0), "{m}\n{text}");
        assert_eq!(
            one("sockhost_requests_failed_total"),
            Some(0.0),
            "{m}\n{text}"
        );
    }
    assert!(!d.log().contains("request from 127.0.0.1"), "{}", d.log());
}
