//! Failed requests: panics and errors become a failed request with a
//! useful message (file:line of a panic), finish and handle_error still
//! run in socketserver's order, per-request state is freed on every path,
//! and a panic in a hook without a status is logged, never unwound.

mod common;

use common::*;
use sockhost_sdk::sys::*;
use std::sync::atomic::Ordering;

#[test]
fn a_panicking_handle_fails_the_request_with_text_and_location() {
    let inst = create("panics", "").expect("create");
    let (mut req, peer) = TestRequest::stream("panic");
    let t = &world().table;
    assert_eq!(req.call(t.setup, &inst), SOCKHOST_OK);
    assert_eq!(req.call(t.handle, &inst), SOCKHOST_ERROR);

    let errors = req.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let msg = &errors[0];
    let line = msg
        .rsplit_once("boom ")
        .and_then(|(_, n)| n.trim().parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no panic text in {msg:?}"));
    assert!(
        msg.contains(&format!("common/mod.rs:{line}")),
        "the message names file:line of the panic: {msg:?}"
    );

    // The request goes on: finish runs with the state setup and handle left.
    assert_eq!(req.call(t.finish, &inst), SOCKHOST_OK);
    assert!(req.raw.user.is_null());
    req.close();
    assert_eq!(read_all(peer), "setup,handle,finish\n");
}

#[test]
fn a_failed_handle_still_finishes_and_frees_state() {
    let inst = create("fails", "").expect("create");
    let (mut req, peer) = TestRequest::stream("fail");
    let t = &world().table;
    assert_eq!(req.call(t.setup, &inst), SOCKHOST_OK);
    assert_eq!(req.call(t.handle, &inst), SOCKHOST_ERROR);
    assert_eq!(req.errors(), ["handle refused"]);
    // The host reports the failure through handle_error, then finishes.
    req.handle_error(&inst, "handle refused");
    assert_eq!(req.call(t.finish, &inst), SOCKHOST_OK);
    assert!(
        req.raw.user.is_null(),
        "finish frees the state after a failure"
    );
    req.close();
    assert_eq!(
        read_all(peer),
        "partial\nsorry: handle refused\nsetup,handle,finish\n"
    );
}

#[test]
fn handle_error_after_finish_reaches_the_peer_and_leaks_nothing() {
    let inst = create("late-error", "").expect("create");
    let (mut req, peer) = TestRequest::stream("fail");
    let t = &world().table;
    assert_eq!(req.call(t.setup, &inst), SOCKHOST_OK);
    assert_eq!(req.call(t.handle, &inst), SOCKHOST_ERROR);
    assert_eq!(req.call(t.finish, &inst), SOCKHOST_OK);
    // socketserver's order: handle_error after the handler is done.
    req.handle_error(&inst, "handle refused");
    assert!(
        req.raw.user.is_null(),
        "handle_error must not leave state behind when finish already ran"
    );
    req.close();
    assert_eq!(
        read_all(peer),
        "partial\nsetup,handle,finish\nsorry: handle refused\n"
    );
}

#[test]
fn a_failed_setup_frees_the_state() {
    let inst = create("setup", "").expect("create");
    let (mut req, peer) = TestRequest::stream("setup-fails");
    let before = DROP_PROBES.load(Ordering::SeqCst);
    assert_eq!(req.call(world().table.setup, &inst), SOCKHOST_ERROR);
    assert_eq!(req.errors(), ["setup refused"]);
    assert!(req.raw.user.is_null(), "no finish will run: setup frees");
    assert_eq!(
        DROP_PROBES.load(Ordering::SeqCst),
        before + 1,
        "the handler's per-request storage is dropped"
    );
    req.close();
    assert_eq!(read_all(peer), "");
}

#[test]
fn panics_in_hooks_without_a_status_are_logged_not_unwound() {
    let inst = create("timeouts", "panic_hooks = true").expect("create");
    let hook = world().table.handle_timeout.expect("handle_timeout");
    // SAFETY: a live instance.
    unsafe { hook(inst.0) };
    let logs = LOGS.lock().expect("logs");
    assert!(
        logs.iter().any(|(level, msg)| *level == SOCKHOST_LOG_ERROR
            && msg.starts_with("handle_timeout:")
            && msg.contains("timeout hook exploded")),
        "{logs:?}"
    );
}
