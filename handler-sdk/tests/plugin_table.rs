//! `init` and `create` as a plugin author relies on them: `init` fills the
//! table the host needs and never writes past the size the host set;
//! `create` sees the listener and its config, and a failed (or panicking)
//! `create`'s message reaches the host through `error`.

mod common;

use common::*;
use sockhost_sdk::sys::*;
use std::ffi::CStr;
use std::mem::{offset_of, size_of};

#[test]
fn init_fills_the_table_the_host_needs() {
    let t = &world().table;
    assert_eq!(t.size as usize, size_of::<sockhost_plugin>());
    assert_eq!(t.flags, 0);
    // SAFETY: the SDK stores the static strings it was given.
    assert_eq!(unsafe { CStr::from_ptr(t.name) }, NAME);
    // SAFETY: as above.
    assert_eq!(unsafe { CStr::from_ptr(t.version) }, VERSION);
    assert!(t.create.is_some() && t.handle.is_some(), "required hooks");
    assert!(t.setup.is_some() && t.finish.is_some() && t.destroy.is_some());
    assert!(t.verify_request.is_some() && t.handle_error.is_some());
    assert!(t.handle_timeout.is_some() && t.service_actions.is_some());
}

#[test]
fn init_writes_no_more_than_the_size_the_host_set() {
    let bytes = &world().small.0;
    assert!(
        bytes[SMALL..].iter().all(|&b| b == 0xAA),
        "init wrote past the host's size"
    );
    let size = u32::from_ne_bytes(bytes[..4].try_into().expect("4 bytes"));
    assert_eq!(size as usize, SMALL, "init must keep the host's size");
    let word = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    assert_ne!(
        word(offset_of!(sockhost_plugin, create)),
        0,
        "create filled"
    );
    assert_ne!(
        word(offset_of!(sockhost_plugin, destroy)),
        0,
        "destroy filled"
    );
    assert_eq!(
        word(offset_of!(sockhost_plugin, name)),
        NAME.as_ptr() as u64
    );
}

#[test]
fn create_sees_the_listener_and_its_config() {
    let inst = create("alpha", "greeting = \"hi there\"").expect("create");
    let (mut req, peer) = TestRequest::stream("listener");
    let t = &world().table;
    assert_eq!(req.call(t.setup, &inst), SOCKHOST_OK);
    assert_eq!(req.call(t.handle, &inst), SOCKHOST_OK);
    assert_eq!(req.call(t.finish, &inst), SOCKHOST_OK);
    req.close();
    assert_eq!(
        read_all(peer),
        "alpha Thread hi there\nsetup,handle,finish\n"
    );
}

#[test]
fn a_failed_create_returns_its_message_through_error() {
    assert_eq!(
        create("x", "fail = \"no way\"").err().as_deref(),
        Some("no way")
    );

    let err = create("x", "panic = true").err().expect("create panics");
    assert!(err.contains("create exploded"), "{err}");
    assert!(err.contains("common/mod.rs:"), "names the location: {err}");

    let err = create("x", "this is = not toml [")
        .err()
        .expect("bad config");
    assert!(err.starts_with("[listener.config]"), "{err}");
}
