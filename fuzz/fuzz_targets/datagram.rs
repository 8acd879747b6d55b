//! Fuzz target: the datagram request path, attacker bytes end to end in
//! one process: the daemon's built-in `verify_request` (gate), the host
//! request context, the plugin ABI, the Rust SDK and the probe plugin's
//! command parser (linked in, so coverage reaches it), with the reply sent
//! back over a real unix datagram socket.
//!
//! Promises checked: nothing panics or crashes; every datagram the plugin
//! accepts is answered with exactly one line. Skipped inputs: the probe
//! commands whose documented effect is to abort, panic (the fuzzer treats
//! a caught panic as a crash) or sleep; datagrams over `max_packet_size`,
//! which the daemon drops before any of this runs.

#![no_main]

use libfuzzer_sys::fuzz_target;
use socket2::{Domain, SockAddr, Socket, Type};
use sockhostd::config::{Family, ListenerConfig, SockType};
use sockhostd::worker::gate::Gate;
use sockhostd::plugin::{self, Instance, RequestCtx};
use sockhostd::worker::request::{finish_request, shutdown_request, Request, Shared};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

struct Harness {
    shared: Shared,
    gate: Gate,
    /// The listener's socket (replies leave through it) and the client's.
    _server: Socket,
    client: Socket,
    client_addr: SockAddr,
    max: usize,
}

// Built once per fuzzing process; the Mutex makes the static shareable.
static HARNESS: OnceLock<Mutex<Harness>> = OnceLock::new();

fn harness() -> &'static Mutex<Harness> {
    HARNESS.get_or_init(|| Mutex::new(build()))
}

fn build() -> Harness {
    let dir = std::env::temp_dir().join(format!("sockhost-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let exe = std::env::current_exe().expect("current exe");
    let config = format!(
        "[[listener]]\nname = \"fuzz\"\nfamily = \"unix\"\ntype = \"dgram\"\n\
         address = \"server.sock\"\nmixin = \"sync\"\nhandler = \"{}\"\n\
         rate_limit_per_source = 1000000\n\
         [listener.config]\ngreeting = \"hello\"\nnumber = 7\n",
        exe.display()
    );
    let file = dir.join("sockhost.toml");
    let parsed = sockhostd::config::parse_main(&config, &file).expect("fuzz config");
    let listener: ListenerConfig = parsed.listeners.into_iter().next().expect("one listener");
    let server = Socket::new(Domain::UNIX, Type::DGRAM, None).expect("socket");
    server
        .bind(&SockAddr::unix(dir.join("server.sock")).expect("addr"))
        .expect("bind server");
    let client_path: PathBuf = dir.join("client.sock");
    let client_addr = SockAddr::unix(&client_path).expect("addr");
    let client = Socket::new(Domain::UNIX, Type::DGRAM, None).expect("socket");
    client.bind(&client_addr).expect("bind client");
    client.set_nonblocking(true).expect("nonblocking");
    let record = &sockhost_probe::sockhost_abi;
    let linked =
        plugin::linked(&exe, record, sockhost_probe::sockhost_plugin_init).expect("probe links");
    let instance = Instance::create(linked, &listener).expect("probe create");
    Harness {
        gate: Gate::new(&listener),
        max: listener.max_packet_size,
        shared: Shared {
            server_fd: server.as_raw_fd(),
            listener,
            instance,
            meter: sockhostd::os::stats::Meter::none(),
        },
        _server: server,
        client,
        client_addr,
    }
}

/// Probe commands documented to abort, panic or sleep.
fn deliberate(data: &[u8]) -> bool {
    ["ABORT", "PANIC", "SLEEP"]
        .iter()
        .any(|c| data.starts_with(c.as_bytes()))
}

fuzz_target!(|data: &[u8]| {
    let mut guard = harness().lock().unwrap_or_else(|p| p.into_inner());
    let h = &mut *guard;
    if data.len() > h.max || deliberate(data) {
        return;
    }
    let ctx = RequestCtx::new(
        None,
        h.shared.server_fd,
        Family::Unix,
        SockType::Dgram,
        h.client_addr.clone(),
        data.to_vec(),
    );
    let mut request = Request {
        ctx,
        sock: None,
        slot: None,
    };
    let admitted = h.gate.check(request.ctx.peer(), None).is_ok()
        && h.shared.instance.verify_request(&mut request.ctx);
    if admitted {
        let _ = finish_request(&h.shared, &mut request);
        shutdown_request(request);
    }
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 70_000];
    let mut replies = 0;
    while let Ok(n) = h.client.recv(&mut buf) {
        // SAFETY: recv initialised the first n bytes.
        let reply = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
        assert!(reply.ends_with(b"\n"), "reply is one line: {reply:?}");
        replies += 1;
    }
    assert_eq!(
        replies,
        usize::from(admitted),
        "one reply per accepted datagram"
    );
});
