//! The request flow: setup/handle/finish and their per-request state,
//! `wfile` reaching the peer only at finish (stream) or as one reply
//! (datagram), `reply` sending at once, a handler on the raw socket, and
//! `verify_request` seeing the datagram (a panic there refuses it).

mod common;

use common::*;
use sockhost_sdk::sys::*;
use std::io::Write;
use std::os::unix::net::UnixDatagram;

#[test]
fn stream_flow_keeps_state_and_flushes_wfile_at_finish() {
    let inst = create("flow", "").expect("create");
    let (mut req, mut peer) = TestRequest::stream("flow");
    let t = &world().table;
    peer.write_all(b"ping\n").expect("send");

    assert_eq!(req.call(t.setup, &inst), SOCKHOST_OK);
    assert!(!req.raw.user.is_null(), "setup keeps per-request state");
    assert_eq!(req.call(t.handle, &inst), SOCKHOST_OK);
    assert!(
        nothing_yet(&peer),
        "wfile is buffered: nothing reaches the peer before finish"
    );
    assert_eq!(req.call(t.finish, &inst), SOCKHOST_OK);
    assert!(req.raw.user.is_null(), "finish frees the request's state");
    assert!(req.errors().is_empty(), "{:?}", req.errors());
    req.close();
    assert_eq!(read_all(peer), "hello ping\nsetup,handle,finish\n");
}

#[test]
fn a_handler_on_the_raw_socket_gets_no_per_request_state() {
    // In a forked child every heap page written is copied: a handler that
    // uses neither rfile, wfile nor user must not make the SDK allocate.
    let inst = create("raw", "").expect("create");
    let (mut req, peer) = TestRequest::stream("raw");
    let t = &world().table;
    for hook in [t.setup, t.handle, t.finish] {
        assert_eq!(req.call(hook, &inst), SOCKHOST_OK);
        assert!(req.raw.user.is_null(), "no state made");
    }
    assert!(req.errors().is_empty(), "{:?}", req.errors());
    req.close();
    assert_eq!(read_all(peer), "raw\n");
}

#[test]
fn a_datagram_wfile_becomes_one_reply_at_finish() {
    let (socket, _peer) = UnixDatagram::pair().expect("socketpair");
    let inst = create("dgram", "").expect("create");
    let mut req = TestRequest::datagram("", b"ping", &socket);
    let t = &world().table;
    assert_eq!(req.call(t.setup, &inst), SOCKHOST_OK);
    assert_eq!(req.call(t.handle, &inst), SOCKHOST_OK);
    assert!(req.replies().is_empty(), "the reply waits for finish");
    assert_eq!(req.call(t.finish, &inst), SOCKHOST_OK);
    // rfile read the datagram; two writes to wfile made one datagram.
    assert_eq!(req.replies(), [b"got ping".to_vec()]);
    assert!(req.raw.user.is_null());
}

#[test]
fn reply_sends_at_once_and_an_empty_wfile_sends_nothing() {
    let (socket, _peer) = UnixDatagram::pair().expect("socketpair");
    let inst = create("dgram-echo", "").expect("create");
    let mut req = TestRequest::datagram("echo", b"same bytes", &socket);
    let t = &world().table;
    assert_eq!(req.call(t.setup, &inst), SOCKHOST_OK);
    assert_eq!(req.call(t.handle, &inst), SOCKHOST_OK);
    assert_eq!(req.replies(), [b"same bytes".to_vec()]);
    assert_eq!(req.call(t.finish, &inst), SOCKHOST_OK);
    assert_eq!(req.replies().len(), 1, "no second, empty datagram");
}

#[test]
fn verify_request_sees_the_datagram_and_a_panic_refuses() {
    let inst = create("verify", "").expect("create");
    let verify = world().table.verify_request.expect("verify_request");
    let check = |client: &str, data: &[u8]| {
        let req = TestRequest::new(libc::SOCK_DGRAM, -1, client, data);
        // SAFETY: a live instance and request.
        unsafe { verify(inst.0, &req.raw) }
    };
    assert_eq!(check("127.0.0.1:9", b"PING"), SOCKHOST_OK);
    assert_eq!(check("127.0.0.1:9", b"DENY me"), SOCKHOST_ERROR);
    assert_eq!(check("verify-panic", b"PING"), SOCKHOST_ERROR);
}
