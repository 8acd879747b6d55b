//! The host side of the plugin ABI: load a handler `.so`, check it, call it.
//!
//! Only workers (and `--check` children) call [`load`]; the master never
//! does. Loading checks the version record before any plugin code runs and
//! refuses another major or a newer minor with a message naming the path,
//! what was found and what is needed. Libraries are opened RTLD_NOW |
//! RTLD_LOCAL and never closed (a new plugin generation is a new process).
//! The library is loaded from a private in-memory copy (memfd), so an
//! operator overwriting the `.so` in place (`cp new.so old.so`) cannot crash
//! a running worker; the new file is picked up by the next generation.
//! The host function table handed to plugins lives here.

use crate::config::{Family, ListenerConfig, Mixin, SockType};
use crate::transport;
use socket2::SockAddr;
use sockhost_sdk::sys;
use std::ffi::{c_char, c_void, CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Why a plugin was refused; always names the path.
#[derive(Debug, thiserror::Error)]
#[error("plugin {}: {reason}", path.display())]
pub struct PluginError {
    pub path: PathBuf,
    pub reason: String,
}

/// A loaded, checked plugin: its function table. Lives for the process.
#[derive(Debug)]
pub struct Plugin {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
    table: sys::sockhost_plugin,
}

// SAFETY: the table holds function pointers and pointers to static strings
// in a library that is never unloaded; nothing in it is mutated after load.
unsafe impl Send for Plugin {}
// SAFETY: as above; shared references only read the table.
unsafe impl Sync for Plugin {}

/// The plugin name for log lines from the host's log function.
static PLUGIN_NAME: OnceLock<String> = OnceLock::new();

/// Load and check the plugin at `path`; the result lives for the process.
pub fn load(path: &Path) -> Result<&'static Plugin, PluginError> {
    let fail = |reason: String| PluginError {
        path: path.to_path_buf(),
        reason,
    };
    let flags = libc::RTLD_NOW | libc::RTLD_LOCAL;
    let copy = private_copy(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let copy_path = format!("/proc/self/fd/{}", copy.as_raw_fd());
    // SAFETY: loading runs the library's initialisers; that is the trust an
    // operator grants by naming the plugin. The handle is never closed.
    let lib = unsafe { libloading::os::unix::Library::open(Some(copy_path.as_str()), flags) }
        .map_err(|e| {
            fail(format!(
                "cannot load: {}",
                e.to_string()
                    .replace(&copy_path, &path.display().to_string())
            ))
        })?;
    drop(copy); // the mapping outlives the fd
                // SAFETY: reading the address of a data symbol; not dereferenced here.
    let record = unsafe { lib.get::<*const sys::sockhost_abi_record>(sys::SOCKHOST_ABI_SYMBOL) }
        .map(|s| *s)
        .map_err(|_| {
            fail(format!(
                "not a sockhost plugin: no `{}` version record (define it with \
                 SOCKHOST_DEFINE_ABI() in C or export_handler! in Rust)",
                sys::SOCKHOST_ABI_SYMBOL
            ))
        })?;
    // SAFETY: the symbol is the plugin's version record, at least as large
    // as its first two fields in any plugin that exports it by this name.
    check_record(unsafe { &*record }).map_err(fail)?;
    // SAFETY: the record promised ABI 1.x, whose entry has this signature.
    let init = unsafe { lib.get::<sys::sockhost_plugin_init_fn>(sys::SOCKHOST_ENTRY_SYMBOL) }
        .map(|s| *s)
        .map_err(|_| {
            fail(format!(
                "no entry function `{}`",
                sys::SOCKHOST_ENTRY_SYMBOL
            ))
        })?;
    let _never_closed = lib.into_raw();
    let mut table = sys::sockhost_plugin::empty();
    // SAFETY: HOST is static; `table` is zeroed with its size set.
    let rc = unsafe { init(&HOST, &mut table) };
    if rc != sys::SOCKHOST_OK {
        return Err(fail(format!(
            "entry function `{}` failed ({rc})",
            sys::SOCKHOST_ENTRY_SYMBOL
        )));
    }
    if table.create.is_none() || table.handle.is_none() {
        return Err(fail("the plugin table lacks `create` or `handle`".into()));
    }
    let name = static_str(table.name).unwrap_or_else(|| file_stem(path));
    let version = static_str(table.version).unwrap_or_default();
    let _ = PLUGIN_NAME.set(name.clone());
    let plugin = Plugin {
        path: path.to_path_buf(),
        name,
        version,
        table,
    };
    Ok(Box::leak(Box::new(plugin)))
}

/// Copy the file at `path` into an anonymous, sealed-off memory file.
fn private_copy(path: &Path) -> std::io::Result<OwnedFd> {
    let mut src = std::fs::File::open(path)?;
    if !src.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let name = c"sockhost-plugin";
    // SAFETY: memfd_create with a static NUL-terminated name.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut dst = std::fs::File::from(owned);
    std::io::copy(&mut src, &mut dst)?;
    Ok(OwnedFd::from(dst))
}

/// Refuse a record that is not ours, another major, or a newer minor.
fn check_record(r: &sys::sockhost_abi_record) -> Result<(), String> {
    let (maj, min) = (sys::SOCKHOST_ABI_MAJOR, sys::SOCKHOST_ABI_MINOR);
    if r.magic != sys::SOCKHOST_ABI_MAGIC {
        return Err(format!(
            "not a sockhost plugin: version record magic is {:#018x}, expected {:#018x}",
            r.magic,
            sys::SOCKHOST_ABI_MAGIC
        ));
    }
    if (r.size as usize) < std::mem::size_of::<sys::sockhost_abi_record>() {
        return Err(format!(
            "version record is {} bytes, expected at least 16",
            r.size
        ));
    }
    if r.major != maj || r.minor > min {
        return Err(format!(
            "built for plugin ABI {}.{}, but this sockhostd speaks {maj}.{min} \
             (needs major {maj}, minor at most {min}); rebuild the plugin against \
             this sockhostd's sockhost.h",
            r.major, r.minor
        ));
    }
    Ok(())
}

fn static_str(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the ABI promises a static NUL-terminated string.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

// ---- the host function table ------------------------------------------

static HOST: sys::sockhost_host = sys::sockhost_host {
    size: std::mem::size_of::<sys::sockhost_host>() as u32,
    abi_major: sys::SOCKHOST_ABI_MAJOR,
    abi_minor: sys::SOCKHOST_ABI_MINOR,
    log: Some(host_log),
    log_enabled: Some(host_log_enabled),
    set_error: Some(host_set_error),
    reply: Some(host_reply),
};

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
    client: CString,
    peer: SockAddr,
    data: Vec<u8>,
    /// The message a hook attached with `set_error`.
    pub error: Option<String>,
}

// SAFETY: the raw pointers point into this same box (client, peer, data) or
// are the plugin's per-request slot, which the ABI ties to the request, not
// to a thread; the request is handled by one thread at a time.
unsafe impl Send for RequestCtx {}

impl RequestCtx {
    /// A request: `fd` is the connected (stream) or listening (dgram)
    /// socket, `data` the datagram (empty for streams).
    pub fn new(
        fd: RawFd,
        family: Family,
        socktype: SockType,
        peer: SockAddr,
        data: Vec<u8>,
    ) -> Box<Self> {
        let text = transport::describe(&peer);
        let client = CString::new(text).unwrap_or_default();
        let mut ctx = Box::new(RequestCtx {
            raw: sys::sockhost_request {
                size: std::mem::size_of::<sys::sockhost_request>() as u32,
                socktype: socktype_raw(socktype),
                fd,
                family: family_raw(family),
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
            },
            client,
            peer,
            data,
            error: None,
        });
        ctx.fix_pointers();
        ctx
    }

    fn fix_pointers(&mut self) {
        self.raw.client = sys::sockhost_str {
            ptr: self.client.as_ptr(),
            len: self.client.as_bytes().len(),
        };
        self.raw.client_addr = self.peer.as_ptr().cast();
        self.raw.client_addr_len = self.peer.len();
        if socktype_raw(SockType::Dgram) == self.raw.socktype {
            self.raw.data = self.data.as_ptr();
            self.raw.data_len = self.data.len();
        }
        self.raw.host_private = (self as *mut RequestCtx).cast();
    }

    /// The client's socket address.
    pub fn peer(&self) -> &SockAddr {
        &self.peer
    }

    /// The client address as text.
    pub fn client(&self) -> &str {
        self.client.to_str().unwrap_or("")
    }

    fn raw_ptr(&mut self) -> *mut sys::sockhost_request {
        &mut self.raw
    }

    /// Take the hook's error message, or a generic one.
    fn take_error(&mut self, hook: &str, rc: i32) -> String {
        self.error
            .take()
            .unwrap_or_else(|| format!("{hook} failed ({rc})"))
    }
}

fn family_raw(f: Family) -> i32 {
    match f {
        Family::Inet => libc::AF_INET,
        Family::Inet6 => libc::AF_INET6,
        Family::Unix => libc::AF_UNIX,
    }
}

fn socktype_raw(t: SockType) -> i32 {
    match t {
        SockType::Stream => libc::SOCK_STREAM,
        SockType::Dgram => libc::SOCK_DGRAM,
    }
}

// ---- instances -------------------------------------------------------------

/// A plugin instance serving one listener (the handler's `create` result).
#[derive(Debug)]
pub struct Instance {
    pub plugin: &'static Plugin,
    ptr: *mut c_void,
}

// SAFETY: the ABI requires an instance to be usable from any thread and
// concurrently (thread mixin); the host never frees it while in use.
unsafe impl Send for Instance {}
// SAFETY: as above.
unsafe impl Sync for Instance {}

impl Instance {
    /// Call the plugin's `create` for `l`.
    pub fn create(plugin: &'static Plugin, l: &ListenerConfig) -> Result<Instance, PluginError> {
        let fail = |reason: String| PluginError {
            path: plugin.path.clone(),
            reason,
        };
        let cstr = |s: &str| CString::new(s).map_err(|_| fail("a string holds a NUL byte".into()));
        let (name, address, config) = (
            cstr(&l.name)?,
            cstr(&l.address_text)?,
            cstr(&l.config_toml)?,
        );
        let s = |c: &CString| sys::sockhost_str {
            ptr: c.as_ptr(),
            len: c.as_bytes().len(),
        };
        let raw = sys::sockhost_listener {
            size: std::mem::size_of::<sys::sockhost_listener>() as u32,
            family: family_raw(l.family),
            socktype: socktype_raw(l.socktype),
            mixin: match l.mixin {
                Mixin::Sync => sys::SOCKHOST_MIXIN_SYNC,
                Mixin::Thread => sys::SOCKHOST_MIXIN_THREAD,
                Mixin::Fork => sys::SOCKHOST_MIXIN_FORK,
            },
            name: s(&name),
            address: s(&address),
            config_toml: s(&config),
        };
        let mut ptr: *mut c_void = std::ptr::null_mut();
        let mut err: *const c_char = std::ptr::null();
        let Some(create) = plugin.table.create else {
            return Err(fail("no create function".into()));
        };
        // SAFETY: `raw` and its strings live across the call; the out
        // pointers are valid locals.
        let rc = unsafe { create(&raw, &mut ptr, &mut err) };
        if rc != sys::SOCKHOST_OK {
            let why = static_str(err).unwrap_or_else(|| format!("returned {rc}"));
            return Err(fail(format!(
                "create failed for listener `{}`: {why}",
                l.name
            )));
        }
        Ok(Instance { plugin, ptr })
    }

    fn call(
        &self,
        hook: &str,
        f: Option<sys::RequestFn>,
        ctx: &mut RequestCtx,
    ) -> Result<(), String> {
        let Some(f) = f else { return Ok(()) };
        // SAFETY: the instance is live; the request is boxed and live.
        let rc = unsafe { f(self.ptr, ctx.raw_ptr()) };
        if rc == sys::SOCKHOST_OK {
            Ok(())
        } else {
            Err(ctx.take_error(hook, rc))
        }
    }

    /// The handler's `setup`.
    pub fn setup(&self, ctx: &mut RequestCtx) -> Result<(), String> {
        self.call("setup", self.plugin.table.setup, ctx)
    }

    /// The handler's `handle`.
    pub fn handle(&self, ctx: &mut RequestCtx) -> Result<(), String> {
        self.call("handle", self.plugin.table.handle, ctx)
    }

    /// The handler's `finish`.
    pub fn finish(&self, ctx: &mut RequestCtx) -> Result<(), String> {
        self.call("finish", self.plugin.table.finish, ctx)
    }

    /// The plugin's `verify_request` (true when absent).
    pub fn verify_request(&self, ctx: &mut RequestCtx) -> bool {
        let Some(f) = self.plugin.table.verify_request else {
            return true;
        };
        let fd = std::mem::replace(&mut ctx.raw.fd, -1);
        // SAFETY: instance and request are live for the call.
        let rc = unsafe { f(self.ptr, ctx.raw_ptr()) };
        ctx.raw.fd = fd;
        rc == sys::SOCKHOST_OK
    }

    /// The plugin's `handle_error`, after the host logged `msg`.
    pub fn handle_error(&self, ctx: &mut RequestCtx, msg: &str) {
        if let Some(f) = self.plugin.table.handle_error {
            // SAFETY: instance, request and message live for the call.
            unsafe { f(self.ptr, ctx.raw_ptr(), msg.as_ptr().cast(), msg.len()) };
        }
    }

    /// The plugin's `handle_timeout`.
    pub fn handle_timeout(&self) {
        if let Some(f) = self.plugin.table.handle_timeout {
            // SAFETY: the instance is live.
            unsafe { f(self.ptr) };
        }
    }

    /// The plugin's `service_actions`.
    pub fn service_actions(&self) {
        if let Some(f) = self.plugin.table.service_actions {
            // SAFETY: the instance is live.
            unsafe { f(self.ptr) };
        }
    }

    /// The plugin's `destroy`; the instance is gone afterwards.
    pub fn destroy(self) {
        if let Some(f) = self.plugin.table.destroy {
            // SAFETY: called once, after every request has finished.
            unsafe { f(self.ptr) };
        }
    }
}
