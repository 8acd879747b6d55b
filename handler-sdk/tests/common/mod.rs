//! The SDK tests' harness: drives the SDK's trampolines exactly as
//! sockhostd does, without dlopen. A test host table records logs, errors
//! and datagram replies; requests are built over real
//! `UnixStream`/`UnixDatagram` pairs; every hook is called through the
//! plugin table `init` filled (once per test binary, see [`world`]). The
//! handler under test, `Probe`, behaves according to each request's client
//! text, so one plugin table serves every test.

#![allow(dead_code)]

use sockhost_sdk::sys::*;
use sockhost_sdk::{Client, Handler, Kind, Listener, Mixin, Request, Result};
use std::ffi::{c_char, c_void, CStr, CString};
use std::io::{BufRead, ErrorKind, Read, Write};
use std::mem::{offset_of, size_of};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

// ---- the test host -------------------------------------------------------

/// Everything the test host logged, at any level, from any test.
pub static LOGS: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());

/// What the host keeps per request, behind `host_private`.
#[derive(Default)]
pub struct HostSide {
    errors: Mutex<Vec<String>>,
    replies: Mutex<Vec<Vec<u8>>>,
}

pub fn text(msg: *const c_char, len: usize) -> String {
    // SAFETY: the SDK passes a pointer and length valid for the call.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    String::from_utf8(bytes.to_vec()).expect("the SDK sends UTF-8")
}

unsafe extern "C" fn host_log(level: i32, msg: *const c_char, len: usize) {
    LOGS.lock().expect("logs").push((level, text(msg, len)));
}

unsafe extern "C" fn host_log_enabled(level: i32) -> i32 {
    i32::from(level <= SOCKHOST_LOG_INFO)
}

/// The host side of a request made by [`TestRequest`].
///
/// # Safety
/// `req` must be a live request whose `host_private` is a `HostSide`.
unsafe fn side<'a>(req: *mut sockhost_request) -> &'a HostSide {
    // SAFETY: per the function contract.
    unsafe { &*(*req).host_private.cast::<HostSide>() }
}

unsafe extern "C" fn host_set_error(req: *mut sockhost_request, msg: *const c_char, len: usize) {
    // SAFETY: the SDK passes the request it was given.
    let side = unsafe { side(req) };
    side.errors.lock().expect("errors").push(text(msg, len));
}

unsafe extern "C" fn host_reply(
    req: *mut sockhost_request,
    buf: *const c_void,
    len: usize,
) -> isize {
    // SAFETY: the SDK passes the request it was given and a valid buffer.
    let (side, bytes) = unsafe { (side(req), std::slice::from_raw_parts(buf.cast::<u8>(), len)) };
    side.replies.lock().expect("replies").push(bytes.to_vec());
    len as isize
}

pub static HOST: sockhost_host = sockhost_host {
    size: size_of::<sockhost_host>() as u32,
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

// ---- the handler under test ----------------------------------------------

/// Per-request storage: the hooks run so far.
#[derive(Default)]
pub struct Trail(Vec<&'static str>);

/// Per-request storage whose drops are counted (one test uses it).
#[derive(Default)]
pub struct DropProbe;
pub static DROP_PROBES: AtomicUsize = AtomicUsize::new(0);
impl Drop for DropProbe {
    fn drop(&mut self) {
        DROP_PROBES.fetch_add(1, Ordering::SeqCst);
    }
}

/// Behaves according to the request's client text, so one plugin table can
/// serve every test.
pub struct Probe {
    name: String,
    mixin: Mixin,
    greeting: String,
    panic_hooks: bool,
}

impl Handler for Probe {
    fn create(l: &Listener) -> Result<Self> {
        if let Some(why) = l.config.get("fail").and_then(|v| v.as_str()) {
            return Err(why.into());
        }
        if l.config.contains_key("panic") {
            panic!("create exploded");
        }
        Ok(Probe {
            name: l.name.clone(),
            mixin: l.mixin,
            greeting: l
                .config
                .get("greeting")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
            panic_hooks: l.config.contains_key("panic_hooks"),
        })
    }

    fn setup(&self, req: &mut Request) -> Result<()> {
        if req.client() == "raw" {
            return Ok(());
        }
        if req.client() == "setup-fails" {
            req.user::<DropProbe>();
            return Err("setup refused".into());
        }
        req.user::<Trail>().0.push("setup");
        Ok(())
    }

    fn handle(&self, req: &mut Request) -> Result<()> {
        if req.client() == "raw" {
            // Only the unbuffered socket: no rfile, wfile or user.
            req.socket().write_all(b"raw\n")?;
            return Ok(());
        }
        req.user::<Trail>().0.push("handle");
        let mode = req.client().to_string();
        match (mode.as_str(), req.kind()) {
            ("panic", _) => panic!("boom {}", line!()),
            ("fail", _) => {
                req.wfile().write_all(b"partial\n")?;
                Err("handle refused".into())
            }
            ("echo", _) => {
                req.reply(req.data())?;
                Ok(())
            }
            ("listener", _) => {
                let w = req.wfile();
                writeln!(w, "{} {:?} {}", self.name, self.mixin, self.greeting)?;
                Ok(())
            }
            (_, Kind::Stream) => {
                let mut line = String::new();
                req.rfile().read_line(&mut line)?;
                write!(req.wfile(), "hello {line}")?;
                Ok(())
            }
            (_, Kind::Datagram) => {
                let mut data = Vec::new();
                req.rfile().read_to_end(&mut data)?;
                req.wfile().write_all(b"got ")?;
                req.wfile().write_all(&data)?;
                Ok(())
            }
        }
    }

    fn finish(&self, req: &mut Request) -> Result<()> {
        if req.client() == "raw" {
            return Ok(());
        }
        req.user::<Trail>().0.push("finish");
        if req.kind() == Kind::Stream {
            let trail = req.user::<Trail>().0.join(",");
            writeln!(req.wfile(), "{trail}")?;
        }
        Ok(())
    }

    fn verify_request(&self, client: &Client) -> bool {
        if client.address == "verify-panic" {
            panic!("verify exploded");
        }
        !client.data.starts_with(b"DENY")
    }

    fn handle_timeout(&self) {
        if self.panic_hooks {
            panic!("timeout hook exploded");
        }
    }

    fn handle_error(&self, req: &mut Request, message: &str) {
        let _ = writeln!(req.wfile(), "sorry: {message}");
    }
}

// ---- plugin tables, filled once ------------------------------------------

pub const NAME: &CStr = c"sdk-test";
pub const VERSION: &CStr = c"9.9.9";

/// `init` run with a host table smaller than ours.
pub const SMALL: usize = offset_of!(sockhost_plugin, setup);

/// A plugin table's worth of bytes and some, aligned like the table.
#[repr(C, align(8))]
pub struct Bytes(pub [u8; size_of::<sockhost_plugin>() + 32]);

pub struct World {
    pub table: sockhost_plugin,
    pub small: Bytes,
}

// SAFETY: the table holds function pointers and pointers to static strings,
// none of which is ever written after `world()` built it.
unsafe impl Sync for World {}
// SAFETY: as above.
unsafe impl Send for World {}

/// Runs `init` the way the host does, once for the whole test binary: the
/// SDK installs its panic hook there, and later tests must not race it.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut table = sockhost_plugin::empty();
        // SAFETY: a static host table and a zeroed plugin table with its size.
        let status = unsafe {
            sockhost_sdk::__private::init::<Probe>(
                &HOST,
                &mut table,
                NAME.as_ptr(),
                VERSION.as_ptr(),
            )
        };
        assert_eq!(status, SOCKHOST_OK);

        let mut small = Bytes([0xAA; size_of::<sockhost_plugin>() + 32]);
        small.0[..SMALL].fill(0);
        small.0[..4].copy_from_slice(&(SMALL as u32).to_ne_bytes());
        // SAFETY: the buffer is aligned for the table and `size` says how
        // many bytes of it the SDK may write.
        let status = unsafe {
            sockhost_sdk::__private::init::<Probe>(
                &HOST,
                small.0.as_mut_ptr().cast(),
                NAME.as_ptr(),
                VERSION.as_ptr(),
            )
        };
        assert_eq!(status, SOCKHOST_OK);

        // Keep the SDK's hook (it records where a panic happened) and print
        // panics too, so a failing assertion still explains itself.
        let sdk_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            sdk_hook(info);
            eprintln!("{info}");
        }));
        World { table, small }
    })
}

/// An instance created through the table, destroyed on drop.
pub struct Instance(pub *mut c_void);

impl Drop for Instance {
    fn drop(&mut self) {
        let destroy = world().table.destroy.expect("destroy");
        // SAFETY: the pointer came from a successful create.
        unsafe { destroy(self.0) };
    }
}

pub fn host_str(s: &CStr) -> sockhost_str {
    sockhost_str {
        ptr: s.as_ptr(),
        len: s.to_bytes().len(),
    }
}

/// Call `create` with a listener named `name` and `config` as its TOML.
pub fn create(name: &str, config: &str) -> std::result::Result<Instance, String> {
    let (name, address, config) = (
        CString::new(name).expect("name"),
        CString::new("127.0.0.1:0").expect("address"),
        CString::new(config).expect("config"),
    );
    let listener = sockhost_listener {
        size: size_of::<sockhost_listener>() as u32,
        family: libc::AF_INET,
        socktype: libc::SOCK_STREAM,
        mixin: SOCKHOST_MIXIN_THREAD,
        name: host_str(&name),
        address: host_str(&address),
        config_toml: host_str(&config),
        config_dir: host_str(&address),
        listen_fd: -1,
        reserved1: 0,
        log_fd: -1,
        max_packet_size: 0,
    };
    let mut instance = std::ptr::null_mut();
    let mut error: *const c_char = std::ptr::null();
    let create = world().table.create.expect("create");
    // SAFETY: a listener valid for the call and writable out-pointers.
    let status = unsafe { create(&listener, &mut instance, &mut error) };
    if status == SOCKHOST_OK {
        assert!(!instance.is_null());
        return Ok(Instance(instance));
    }
    assert!(
        instance.is_null(),
        "a failed create must not hand out an instance"
    );
    assert!(!error.is_null(), "a failed create must say why");
    // SAFETY: the SDK promises a NUL-terminated string valid until its next call.
    Err(unsafe { CStr::from_ptr(error) }
        .to_string_lossy()
        .into_owned())
}

/// A request as the host builds it, with the host's end of the socket.
pub struct TestRequest {
    pub raw: sockhost_request,
    side: Box<HostSide>,
    _client: CString,
    _data: Vec<u8>,
    _socket: Option<UnixStream>,
}

impl TestRequest {
    pub fn new(socktype: i32, fd: i32, client: &str, data: &[u8]) -> TestRequest {
        let client = CString::new(client).expect("client");
        let data = data.to_vec();
        let mut side = Box::<HostSide>::default();
        let raw = sockhost_request {
            size: size_of::<sockhost_request>() as u32,
            socktype,
            fd,
            family: libc::AF_UNIX,
            client: host_str(&client),
            client_addr: std::ptr::null(),
            client_addr_len: 0,
            reserved: 0,
            data: if socktype == libc::SOCK_DGRAM {
                data.as_ptr()
            } else {
                std::ptr::null()
            },
            data_len: if socktype == libc::SOCK_DGRAM {
                data.len()
            } else {
                0
            },
            user: std::ptr::null_mut(),
            host_private: (&mut *side as *mut HostSide).cast(),
            proxy_tlvs: std::ptr::null(),
            proxy_tlvs_len: 0,
        };
        TestRequest {
            raw,
            side,
            _client: client,
            _data: data,
            _socket: None,
        }
    }

    /// A stream request; returns it and the client's end of the connection.
    pub fn stream(client: &str) -> (TestRequest, UnixStream) {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        theirs
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut req = TestRequest::new(libc::SOCK_STREAM, ours.as_raw_fd(), client, b"");
        req._socket = Some(ours);
        (req, theirs)
    }

    pub fn datagram(client: &str, data: &[u8], socket: &UnixDatagram) -> TestRequest {
        TestRequest::new(libc::SOCK_DGRAM, socket.as_raw_fd(), client, data)
    }

    pub fn call(&mut self, hook: Option<RequestFn>, instance: &Instance) -> i32 {
        let hook = hook.expect("the SDK fills every request hook");
        // SAFETY: a live instance and a request the host side owns.
        unsafe { hook(instance.0, &mut self.raw) }
    }

    pub fn handle_error(&mut self, instance: &Instance, msg: &str) {
        let hook = world().table.handle_error.expect("handle_error");
        // SAFETY: as in `call`; the message is valid for the call.
        unsafe { hook(instance.0, &mut self.raw, msg.as_ptr().cast(), msg.len()) };
    }

    pub fn errors(&self) -> Vec<String> {
        self.side.errors.lock().expect("errors").clone()
    }

    pub fn replies(&self) -> Vec<Vec<u8>> {
        self.side.replies.lock().expect("replies").clone()
    }

    /// Close the host's end, as the daemon does after finish.
    pub fn close(mut self) {
        self._socket = None;
    }
}

/// Everything the peer receives until the host closes its end.
pub fn read_all(mut peer: UnixStream) -> String {
    let mut got = String::new();
    peer.read_to_string(&mut got).expect("read the reply");
    got
}

/// Whether the peer has received nothing yet.
pub fn nothing_yet(peer: &UnixStream) -> bool {
    peer.set_nonblocking(true).expect("nonblocking");
    let mut byte = [0u8; 1];
    let empty = matches!((&*peer).read(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock);
    peer.set_nonblocking(false).expect("blocking");
    empty
}
