//! The probe's protocol, checked through its own exported entry function the
//! way sockhostd drives it: a small test host, requests over real socket
//! pairs, one thread per stream request. These replies are what the
//! daemon's integration tests and operators rely on (CONTRACT.md's table).

use sockhost_sdk::sys::*;
use std::ffi::{c_char, c_void, CString};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

unsafe extern "C" fn host_log(_level: i32, _msg: *const c_char, _len: usize) {}

unsafe extern "C" fn host_log_enabled(_level: i32) -> i32 {
    0
}

unsafe extern "C" fn host_set_error(_req: *mut sockhost_request, _msg: *const c_char, _len: usize) {
}

/// Records the reply in the `Mutex<Vec<Vec<u8>>>` behind `host_private`.
unsafe extern "C" fn host_reply(
    req: *mut sockhost_request,
    buf: *const c_void,
    len: usize,
) -> isize {
    // SAFETY: the SDK passes the request it was given (whose host_private
    // the test set) and a buffer valid for `len` bytes.
    let (replies, bytes) = unsafe {
        (
            &*(*req).host_private.cast::<Mutex<Vec<Vec<u8>>>>(),
            std::slice::from_raw_parts(buf.cast::<u8>(), len),
        )
    };
    replies.lock().expect("replies").push(bytes.to_vec());
    len as isize
}

static HOST: sockhost_host = sockhost_host {
    size: std::mem::size_of::<sockhost_host>() as u32,
    abi_major: SOCKHOST_ABI_MAJOR,
    abi_minor: SOCKHOST_ABI_MINOR,
    log: Some(host_log),
    log_enabled: Some(host_log_enabled),
    set_error: Some(host_set_error),
    reply: Some(host_reply),
    depends_on: None,
    take_listener: None,
    set_detail: None,
    exec_request: None,
    refuse_request: None,
};

/// The plugin table and one instance, for the whole test binary.
struct Loaded {
    table: sockhost_plugin,
    instance: *mut c_void,
}

// SAFETY: the table holds function pointers and static strings; the
// instance is the probe, which is Sync (the SDK requires it of handlers).
unsafe impl Sync for Loaded {}
// SAFETY: as above.
unsafe impl Send for Loaded {}

fn loaded() -> &'static Loaded {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    LOADED.get_or_init(|| {
        let mut table = sockhost_plugin::empty();
        // SAFETY: a static host table and a zeroed plugin table with its size.
        let rc = unsafe { crate::sockhost_plugin_init(&HOST, &mut table) };
        assert_eq!(rc, SOCKHOST_OK);
        // The SDK's panic hook is silent; print too, so a failing assertion
        // in these tests still explains itself.
        let sdk_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            sdk_hook(info);
            eprintln!("{info}");
        }));
        let (name, address) = (c"probe-test", c"127.0.0.1:0");
        let config = c"greeting = \"hi there\"\nport = 7\nlist = [1, 2]\n";
        let s = |c: &std::ffi::CStr| sockhost_str {
            ptr: c.as_ptr(),
            len: c.to_bytes().len(),
        };
        let listener = sockhost_listener {
            size: std::mem::size_of::<sockhost_listener>() as u32,
            family: libc::AF_INET,
            socktype: libc::SOCK_STREAM,
            mixin: SOCKHOST_MIXIN_THREAD,
            name: s(name),
            address: s(address),
            config_toml: s(config),
            config_dir: s(address),
            listen_fd: -1,
            reserved1: 0,
            log_fd: -1,
            max_packet_size: 0,
        };
        let mut instance = std::ptr::null_mut();
        let mut error: *const c_char = std::ptr::null();
        let create = table.create.expect("create");
        // SAFETY: a listener valid for the call and writable out-pointers.
        let rc = unsafe { create(&listener, &mut instance, &mut error) };
        assert_eq!(rc, SOCKHOST_OK);
        Loaded { table, instance }
    })
}

fn request(socktype: i32, fd: i32, client: &CString, data: &[u8]) -> sockhost_request {
    sockhost_request {
        size: std::mem::size_of::<sockhost_request>() as u32,
        socktype,
        fd,
        family: libc::AF_UNIX,
        client: sockhost_str {
            ptr: client.as_ptr(),
            len: client.as_bytes().len(),
        },
        client_addr: std::ptr::null(),
        client_addr_len: 0,
        reserved: 0,
        data: data.as_ptr(),
        data_len: data.len(),
        user: std::ptr::null_mut(),
        host_private: std::ptr::null_mut(),
        proxy_tlvs: std::ptr::null(),
        proxy_tlvs_len: 0,
    }
}

/// Serve one stream request on its own thread, as thread mode does; the
/// handle gives handle's status.
fn connect(client: &str) -> (UnixStream, JoinHandle<i32>) {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    theirs
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let client = CString::new(client).expect("client");
    let served = std::thread::spawn(move || {
        let p = loaded();
        let mut req = request(libc::SOCK_STREAM, ours.as_raw_fd(), &client, b"");
        let hook = |f: Option<RequestFn>, req: &mut sockhost_request| {
            // SAFETY: the live instance and a request this thread owns.
            unsafe { f.expect("hook")(p.instance, req) }
        };
        assert_eq!(hook(p.table.setup, &mut req), SOCKHOST_OK);
        let status = hook(p.table.handle, &mut req);
        assert_eq!(hook(p.table.finish, &mut req), SOCKHOST_OK);
        status
    });
    (theirs, served)
}

/// A client that sends lines and reads one reply line each.
struct Session {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    served: JoinHandle<i32>,
}

impl Session {
    fn open(client: &str) -> Session {
        let (stream, served) = connect(client);
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Session {
            stream,
            reader,
            served,
        }
    }

    fn ask(&mut self, line: &[u8]) -> String {
        self.stream.write_all(line).expect("send");
        let mut reply = String::new();
        self.reader.read_line(&mut reply).expect("reply");
        reply
    }

    /// Close our side; return what else arrived and handle's status.
    fn close(mut self) -> (String, i32) {
        self.stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        let mut rest = String::new();
        self.reader.read_to_string(&mut rest).expect("read rest");
        (rest, self.served.join().expect("the request thread"))
    }
}

/// One datagram request; returns the replies sent, or None if refused.
fn datagram(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let p = loaded();
    let (socket, _peer) = UnixDatagram::pair().expect("socketpair");
    let client = CString::new("@peer").expect("client");
    let replies = Mutex::new(Vec::new());
    let mut req = request(libc::SOCK_DGRAM, socket.as_raw_fd(), &client, data);
    req.host_private = (&replies as *const Mutex<Vec<Vec<u8>>>).cast_mut().cast();
    let verify = p.table.verify_request.expect("verify_request");
    // SAFETY: the live instance and a request owned here.
    if unsafe { verify(p.instance, &req) } != SOCKHOST_OK {
        return None;
    }
    for hook in [p.table.setup, p.table.handle, p.table.finish] {
        // SAFETY: as above; `replies` outlives the calls.
        let rc = unsafe { hook.expect("hook")(p.instance, &mut req) };
        assert_eq!(rc, SOCKHOST_OK);
    }
    Some(replies.into_inner().expect("replies"))
}

#[test]
fn stream_commands_answer_per_the_contract() {
    let mut s = Session::open("/run/client.sock");
    let mut check = |cmd: &str, want: &str| {
        assert_eq!(
            s.ask(format!("{cmd}\n").as_bytes()),
            format!("{want}\n"),
            "{cmd}"
        );
    };
    check("PING", "PONG");
    check("PID", &std::process::id().to_string());
    // SAFETY: getppid cannot fail.
    check("PPID", &unsafe { libc::getppid() }.to_string());
    check("CLIENT", "/run/client.sock");
    check("LISTENER", "probe-test");
    check("CONFIG greeting", "hi there");
    check("CONFIG port", "7");
    check("CONFIG list", "[1, 2]");
    check("CONFIG missing", "ERR no such key");
    check("ECHO some text", "some text");
    check("SLEEP 5", "SLEPT 5");
    check("SLEEP soon", "ERR bad number");
    check("HOOKS", "setup,handle");
    check("VERSION", env!("CARGO_PKG_VERSION"));
    check("ping", "ERR unknown command");
    check("", "ERR unknown command");
    let tid = s.ask(b"TID\n");
    let tid: u32 = tid.trim().parse().expect("TID is a number");
    assert_ne!(
        tid,
        std::process::id(),
        "the request runs on its own thread"
    );
    assert_eq!(s.ask(b"PING\r\n"), "PONG\n", "CRLF lines work");
    assert_eq!(s.ask(b"\xff\xfeP\n"), "ERR unknown command\n", "bad UTF-8");
    assert_eq!(s.close(), (String::new(), SOCKHOST_OK));
}

#[test]
fn counters_report_the_optional_hooks() {
    let p = loaded();
    let reply = |s: &mut Session| s.ask(b"COUNTERS\n");
    let mut s = Session::open("");
    let before = reply(&mut s);
    // SAFETY: the live instance; these hooks take nothing else.
    unsafe {
        p.table.handle_timeout.expect("handle_timeout")(p.instance);
        p.table.service_actions.expect("service_actions")(p.instance);
    }
    let after = reply(&mut s);
    let numbers = |r: &str| -> Vec<u64> {
        r.trim()
            .split(' ')
            .map(|kv| kv.split_once('=').expect("key=value").1.parse().expect("n"))
            .collect()
    };
    assert!(before.starts_with("timeouts="), "{before}");
    let (b, a) = (numbers(&before), numbers(&after));
    assert!(a[0] > b[0] && a[1] > b[1], "{before} -> {after}");
    s.close();
}

#[test]
fn a_line_over_64_kib_is_refused_and_the_connection_closed() {
    let mut s = Session::open("");
    let mut fits = vec![b'A'; 64 * 1024];
    fits.extend_from_slice(b"\r\n");
    assert_eq!(s.ask(&fits), "ERR unknown command\n", "64 KiB still fits");
    let mut long = vec![b'A'; 64 * 1024 + 1];
    long.push(b'\n');
    assert_eq!(s.ask(&long), "ERR line too long\n");
    let (rest, status) = s.close();
    assert_eq!(
        (rest.as_str(), status),
        ("", SOCKHOST_OK),
        "closed after it"
    );
}

#[test]
fn panic_fails_the_request_without_a_reply() {
    let mut s = Session::open("");
    assert_eq!(s.ask(b"PING\n"), "PONG\n");
    s.stream.write_all(b"PANIC\nPING\n").expect("send");
    let (rest, status) = s.close();
    assert_eq!((rest.as_str(), status), ("", SOCKHOST_ERROR));
}

#[test]
fn datagrams_get_one_reply_each_and_deny_is_refused() {
    assert_eq!(datagram(b"PING"), Some(vec![b"PONG\n".to_vec()]));
    assert_eq!(datagram(b"ECHO a b\r\n"), Some(vec![b"a b\n".to_vec()]));
    assert_eq!(datagram(b"CLIENT\n"), Some(vec![b"@peer\n".to_vec()]));
    assert_eq!(datagram(b"HOOKS"), Some(vec![b"setup,handle\n".to_vec()]));
    assert_eq!(datagram(b"DENY PING"), None);
}
