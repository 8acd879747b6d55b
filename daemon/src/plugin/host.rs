//! The host's side of each call into a plugin: the host function table
//! (`log`, `log_enabled`, `set_error`, `reply`, `depends_on`,
//! `take_listener`, `set_detail`, `exec_request`, `refuse_request`) and
//! the request a plugin
//! sees (`RequestCtx`, the boxed `sockhost_request` plus the memory it
//! points into).
//!
//! Promises: every pointer a plugin receives stays valid until the request
//! ends; host functions may be called from any thread; a plugin that
//! passes back a pointer we did not give it gets -1 or nothing, never a
//! crash of our making.

use crate::config::{Family, SockType};
use crate::os::transport;
use socket2::SockAddr;
use sockhost_sdk::sys;
use std::ffi::{c_char, c_void};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU8, Ordering};
use std::sync::OnceLock;

/// The plugin name for log lines from the host's log function.
pub(crate) static PLUGIN_NAME: OnceLock<String> = OnceLock::new();

// ---- the host function table ------------------------------------------

pub(crate) static HOST: sys::sockhost_host = sys::sockhost_host {
    size: std::mem::size_of::<sys::sockhost_host>() as u32,
    abi_major: sys::SOCKHOST_ABI_MAJOR,
    abi_minor: sys::SOCKHOST_ABI_MINOR,
    log: Some(host_log),
    log_enabled: Some(host_log_enabled),
    set_error: Some(host_set_error),
    reply: Some(host_reply),
    depends_on: Some(host_depends_on),
    take_listener: Some(host_take_listener),
    set_detail: Some(host_set_detail),
    exec_request: Some(host_exec_request),
    refuse_request: Some(host_refuse_request),
};

/// In a fork-mode request child: the flag that tells the worker this
/// child became a program (its exit status is the program's). Null in
/// every other process and thread.
static EXEC_MARK: AtomicPtr<AtomicU8> = AtomicPtr::new(std::ptr::null_mut());

/// A forked request child: `mark` is where `exec_request` says so.
pub fn set_exec_mark(mark: &AtomicU8) {
    EXEC_MARK.store((mark as *const AtomicU8).cast_mut(), Ordering::SeqCst);
}

unsafe extern "C" fn host_exec_request(_req: *mut sys::sockhost_request) -> i32 {
    let mark = EXEC_MARK.load(Ordering::SeqCst);
    // SAFETY: set only in a fork child, to a flag in shared memory that
    // lives as long as the process.
    match unsafe { mark.as_ref() } {
        Some(m) => {
            m.store(1, Ordering::SeqCst);
            0
        }
        None => -1,
    }
}

unsafe extern "C" fn host_refuse_request(req: *mut sys::sockhost_request) -> i32 {
    // SAFETY: the plugin passes back the request we gave it.
    match unsafe { ctx_of(req) } {
        Some(ctx) => {
            ctx.refused = true;
            0
        }
        None => -1,
    }
}

/// Set while the plugin's `create` runs (`take_listener` is refused
/// outside it).
static IN_CREATE: AtomicBool = AtomicBool::new(false);
/// The plugin took the listening socket (`take_listener`).
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Run the plugin's `create` (`f`), letting it call `take_listener`.
pub(crate) fn in_create<T>(f: impl FnOnce() -> T) -> T {
    IN_CREATE.store(true, Ordering::SeqCst);
    let out = f();
    IN_CREATE.store(false, Ordering::SeqCst);
    out
}

/// Whether the plugin serves the listening socket itself (inetd's `wait`).
pub fn listener_taken() -> bool {
    TAKEN.load(Ordering::SeqCst)
}

unsafe extern "C" fn host_take_listener() -> i32 {
    if !IN_CREATE.load(Ordering::SeqCst) {
        return -1;
    }
    TAKEN.store(true, Ordering::SeqCst);
    0
}

/// The most bytes of a request's detail kept (and carried from a forked
/// child to the worker).
pub const DETAIL_MAX: usize = 200;

unsafe extern "C" fn host_set_detail(
    req: *mut sys::sockhost_request,
    msg: *const c_char,
    len: usize,
) {
    // SAFETY: the plugin passes back the request we gave it, and `len` bytes.
    let (Some(ctx), false) = (unsafe { ctx_of(req) }, msg.is_null()) else {
        return;
    };
    // SAFETY: as above.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    let mut cut = text.len().min(DETAIL_MAX);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    ctx.detail = Some(text);
}

/// Files named through `depends_on` while the worker is starting; `None`
/// once it reported them (later calls are refused).
static DEPENDS: std::sync::Mutex<Option<Vec<std::path::PathBuf>>> =
    std::sync::Mutex::new(Some(Vec::new()));

unsafe extern "C" fn host_depends_on(path: *const c_char, len: usize) -> i32 {
    if path.is_null() {
        return -1;
    }
    // SAFETY: the plugin passes `len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(path.cast::<u8>(), len) };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return -1;
    };
    if text.contains('\n') || !text.starts_with('/') {
        return -1;
    }
    let mut guard = DEPENDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(list) = guard.as_mut() {
        list.push(text.into());
        return 0;
    }
    drop(guard);
    let fd = LATE_FD.load(Ordering::Acquire);
    if fd < 0 {
        return -1;
    }
    // One write per line (a few hundred bytes at most), so lines from
    // request threads or children never interleave.
    let line = match super::FileId::of(std::path::Path::new(text)) {
        Some(id) => format!("DEPENDS_ID {} {text}\n", id.to_words()),
        None => format!("DEPENDS {text}\n"),
    };
    // SAFETY: `fd` is the worker's control socket, open for the life of
    // the worker (and inherited by its request children); `line` is a
    // live buffer of that length.
    let n = unsafe { libc::write(fd, line.as_ptr().cast(), line.len()) };
    if n == line.len() as isize {
        0
    } else {
        -1
    }
}

/// The serving worker's control socket, for `depends_on` after READY
/// (the master reads such late lines: master/late.rs); -1 before.
static LATE_FD: AtomicI32 = AtomicI32::new(-1);

/// From now on `depends_on` reports each file to the master at once on
/// `fd` (the worker's control socket).
pub(crate) fn report_late_to(fd: std::os::fd::RawFd) {
    LATE_FD.store(fd, Ordering::Release);
}

/// The files the plugin named with `depends_on`, once; afterwards the
/// host function refuses new names.
pub(crate) fn take_dependencies() -> Vec<std::path::PathBuf> {
    let mut guard = DEPENDS.lock().unwrap_or_else(|e| e.into_inner());
    guard.take().unwrap_or_default()
}

const TARGET: &str = "sockhost::plugin";

unsafe extern "C" fn host_log(level: i32, msg: *const c_char, len: usize) {
    if msg.is_null() {
        return;
    }
    // SAFETY: the plugin passes `len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    let text = String::from_utf8_lossy(bytes);
    let plugin = PLUGIN_NAME.get().map(String::as_str).unwrap_or("?");
    match level {
        sys::SOCKHOST_LOG_ERROR => tracing::error!(target: TARGET, plugin, "{text}"),
        sys::SOCKHOST_LOG_WARN => tracing::warn!(target: TARGET, plugin, "{text}"),
        sys::SOCKHOST_LOG_INFO => tracing::info!(target: TARGET, plugin, "{text}"),
        sys::SOCKHOST_LOG_DEBUG => tracing::debug!(target: TARGET, plugin, "{text}"),
        _ => tracing::trace!(target: TARGET, plugin, "{text}"),
    }
}

unsafe extern "C" fn host_log_enabled(level: i32) -> i32 {
    let on = match level {
        sys::SOCKHOST_LOG_ERROR => tracing::enabled!(target: TARGET, tracing::Level::ERROR),
        sys::SOCKHOST_LOG_WARN => tracing::enabled!(target: TARGET, tracing::Level::WARN),
        sys::SOCKHOST_LOG_INFO => tracing::enabled!(target: TARGET, tracing::Level::INFO),
        sys::SOCKHOST_LOG_DEBUG => tracing::enabled!(target: TARGET, tracing::Level::DEBUG),
        _ => tracing::enabled!(target: TARGET, tracing::Level::TRACE),
    };
    on as i32
}

/// The `RequestCtx` behind a request pointer a plugin handed back.
///
/// # Safety
/// `req` must be the `raw` field of a live `RequestCtx` (every request the
/// host passes out is), or null.
unsafe fn ctx_of<'a>(req: *mut sys::sockhost_request) -> Option<&'a mut RequestCtx> {
    // SAFETY: per the function contract, host_private points at the ctx.
    unsafe {
        req.as_ref()
            .and_then(|r| r.host_private.cast::<RequestCtx>().as_mut())
    }
}

unsafe extern "C" fn host_set_error(
    req: *mut sys::sockhost_request,
    msg: *const c_char,
    len: usize,
) {
    // SAFETY: the plugin passes back the request we gave it, and `len` bytes.
    let (Some(ctx), false) = (unsafe { ctx_of(req) }, msg.is_null()) else {
        return;
    };
    // SAFETY: as above.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    ctx.error = Some(String::from_utf8_lossy(bytes).into_owned());
}

unsafe extern "C" fn host_reply(
    req: *mut sys::sockhost_request,
    buf: *const c_void,
    len: usize,
) -> isize {
    // SAFETY: the plugin passes back the request we gave it.
    let Some(ctx) = (unsafe { ctx_of(req) }) else {
        return -1;
    };
    // SAFETY: sendto on the request's socket with the plugin's buffer of
    // `len` bytes and the client's address, both live for this call.
    unsafe {
        libc::sendto(
            ctx.raw.fd,
            buf,
            len,
            libc::MSG_NOSIGNAL,
            ctx.peer.as_ptr().cast(),
            ctx.peer.len(),
        )
    }
}

// ---- requests ------------------------------------------------------------

/// One request as the host hands it to the plugin. Boxed so the raw
/// struct's address (and `host_private`, pointing back here) stays put.
pub struct RequestCtx {
    raw: sys::sockhost_request,
    client: ClientText,
    peer: SockAddr,
    data: Vec<u8>,
    /// A PROXY v2 header's TLVs, raw (empty when none).
    proxy_tlvs: Vec<u8>,
    /// The message a hook attached with `set_error`.
    pub error: Option<String>,
    /// The text a hook attached with `set_detail`, for the access log.
    pub detail: Option<String>,
    /// The plugin's own check, run inside the request, refused it
    /// (`refuse_request`): counted as refused, not served.
    pub refused: bool,
}

/// A client address as NUL-terminated UTF-8 in a fixed buffer: the longest
/// text is a unix path (107 bytes) or an IPv6 address with scope and port.
/// Text that would not fit is cut at a character boundary.
struct ClientText {
    buf: [u8; 128],
    len: usize,
}

impl Default for ClientText {
    fn default() -> Self {
        ClientText {
            buf: [0; 128],
            len: 0,
        }
    }
}

impl ClientText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for ClientText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        // Keep one byte for the NUL; cut whole characters only.
        let room = self.buf.len() - 1 - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        self.buf[self.len] = 0;
        Ok(())
    }
}

// SAFETY: the raw pointers point into this same box (client, peer, data) or
// are the plugin's per-request slot, which the ABI ties to the request, not
// to a thread; the request is handled by one thread at a time.
unsafe impl Send for RequestCtx {}

impl RequestCtx {
    /// A request: `fd` is the connected (stream) or listening (dgram)
    /// socket, `data` the datagram (empty for streams). Built in `spare`,
    /// a finished request's box (its contents are dropped), when given:
    /// that saves an allocation.
    pub fn new(
        spare: Option<Box<Self>>,
        fd: RawFd,
        family: Family,
        socktype: SockType,
        peer: SockAddr,
        data: Vec<u8>,
    ) -> Box<Self> {
        let value = Self::value(fd, family, socktype, peer, data);
        let mut ctx = match spare {
            Some(mut ctx) => {
                *ctx = value;
                ctx
            }
            None => Box::new(value),
        };
        ctx.fix_pointers();
        ctx
    }

    /// The request's fields; its pointers are fixed once it is in its box.
    fn value(fd: RawFd, family: Family, socktype: SockType, peer: SockAddr, data: Vec<u8>) -> Self {
        let mut client = ClientText::default();
        let _ = transport::describe_into(&peer, &mut client);
        RequestCtx {
            raw: sys::sockhost_request {
                size: std::mem::size_of::<sys::sockhost_request>() as u32,
                socktype: socktype.raw(),
                fd,
                family: family.raw(),
                client: sys::sockhost_str {
                    ptr: std::ptr::null(),
                    len: 0,
                },
                client_addr: std::ptr::null(),
                client_addr_len: 0,
                reserved: 0,
                data: std::ptr::null(),
                data_len: 0,
                user: std::ptr::null_mut(),
                host_private: std::ptr::null_mut(),
                proxy_tlvs: std::ptr::null(),
                proxy_tlvs_len: 0,
            },
            client,
            peer,
            data,
            proxy_tlvs: Vec::new(),
            error: None,
            detail: None,
            refused: false,
        }
    }

    fn fix_pointers(&mut self) {
        self.raw.client = sys::sockhost_str {
            ptr: self.client.buf.as_ptr().cast(),
            len: self.client.len,
        };
        self.raw.client_addr = self.peer.as_ptr().cast();
        self.raw.client_addr_len = self.peer.len();
        if SockType::Dgram.raw() == self.raw.socktype {
            self.raw.data = self.data.as_ptr();
            self.raw.data_len = self.data.len();
        }
        self.raw.host_private = (self as *mut RequestCtx).cast();
        if !self.proxy_tlvs.is_empty() {
            self.raw.proxy_tlvs = self.proxy_tlvs.as_ptr();
            self.raw.proxy_tlvs_len = self.proxy_tlvs.len();
        }
    }

    /// What a PROXY header said: `client` (when it names one) becomes the
    /// request's client everywhere, and `tlvs` reach the plugin.
    pub fn proxied(&mut self, client: Option<SockAddr>, tlvs: Vec<u8>) {
        if let Some(peer) = client {
            self.client = ClientText::default();
            let _ = transport::describe_into(&peer, &mut self.client);
            self.peer = peer;
        }
        self.proxy_tlvs = tlvs;
        self.fix_pointers();
    }

    /// Replace the fd the plugin sees (verify_request gets -1); returns
    /// the old one.
    pub(crate) fn swap_fd(&mut self, fd: RawFd) -> RawFd {
        std::mem::replace(&mut self.raw.fd, fd)
    }

    /// The client's socket address.
    pub fn peer(&self) -> &SockAddr {
        &self.peer
    }

    /// The client address as text.
    pub fn client(&self) -> &str {
        self.client.as_str()
    }

    pub(crate) fn raw_ptr(&mut self) -> *mut sys::sockhost_request {
        &mut self.raw
    }

    /// Take the hook's error message, or a generic one.
    pub(crate) fn take_error(&mut self, hook: &str, rc: i32) -> String {
        self.error
            .take()
            .unwrap_or_else(|| format!("{hook} failed ({rc})"))
    }
}

#[cfg(test)]
mod tests {
    use super::ClientText;
    use std::fmt::Write;

    #[test]
    fn client_text_is_nul_terminated_and_cut_at_a_character_boundary() {
        let mut t = ClientText::default();
        write!(t, "[::1]:{}", 7000).expect("write");
        assert_eq!(t.as_str(), "[::1]:7000");
        assert_eq!(t.buf[t.len], 0, "NUL-terminated for C plugins");
        let mut long = ClientText::default();
        let path = format!("/{}", "é".repeat(100)); // 201 bytes
        write!(long, "{path}").expect("write");
        assert!(
            long.len <= 127 && path.starts_with(long.as_str()),
            "cut, still valid UTF-8"
        );
        assert_eq!(long.buf[long.len], 0);
    }
}
