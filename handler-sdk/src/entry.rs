//! The C entry points the SDK exports for a [`Handler`].
//!
//! Every function the host can call is a generic `extern "C"` trampoline
//! that converts raw pointers to safe types and runs the handler inside
//! `catch_unwind`: an error or a panic becomes `SOCKHOST_ERROR` for that one
//! call, with its message attached to the request (`set_error`), and never
//! unwinds into the host. Per-request state lives in `sockhost_request.user`
//! from its first use until `finish` (or a failed `setup`).

use crate::log::{host, set_host};
use crate::request::{Kind, Request, State};
use crate::{sys, Client, Handler, Listener, Mixin};
use std::cell::RefCell;
use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    /// Where the last panic on this thread happened, set by the panic hook.
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The message of the last failed `create`, owned until the next one.
    static CREATE_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Borrow a host string.
///
/// # Safety
/// `s` must come from the host, which promises a valid UTF-8 pointer and
/// length for the life of the struct holding it.
pub(crate) unsafe fn str_of(s: &sys::sockhost_str) -> &str {
    if s.ptr.is_null() || s.len == 0 {
        return "";
    }
    // SAFETY: per the function contract.
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr.cast::<u8>(), s.len) };
    std::str::from_utf8(bytes).unwrap_or("")
}

/// The entry function's body, called through [`crate::export_handler!`].
///
/// # Safety
/// `host` must be the host's static table and `plugin` a writable table
/// whose `size` says how many bytes may be written.
pub unsafe fn init<H: Handler>(
    host: *const sys::sockhost_host,
    plugin: *mut sys::sockhost_plugin,
    name: *const c_char,
    version: *const c_char,
) -> i32 {
    if host.is_null() || plugin.is_null() {
        return sys::SOCKHOST_ERROR;
    }
    set_host(host);
    install_panic_hook();
    let mut table = sys::sockhost_plugin::empty();
    table.name = name;
    table.version = version;
    table.flags = H::FLAGS;
    table.create = Some(create::<H>);
    table.destroy = Some(destroy::<H>);
    table.setup = Some(setup::<H>);
    table.handle = Some(handle::<H>);
    table.finish = Some(finish::<H>);
    table.verify_request = Some(verify_request::<H>);
    table.handle_timeout = Some(handle_timeout::<H>);
    table.service_actions = Some(service_actions::<H>);
    table.handle_error = Some(handle_error::<H>);
    if H::FORK_HOOKS {
        table.before_fork = Some(before_fork::<H>);
        table.after_fork_parent = Some(after_fork_parent::<H>);
        table.after_fork_child = Some(after_fork_child::<H>);
    }
    // SAFETY: the host zeroed `plugin` and set its size; write no more than
    // min(host's size, ours) bytes, so an older host gets only what it knows.
    unsafe {
        let n = ((*plugin).size as usize).min(std::mem::size_of::<sys::sockhost_plugin>());
        let host_size = (*plugin).size;
        std::ptr::copy_nonoverlapping(
            (&table as *const sys::sockhost_plugin).cast::<u8>(),
            plugin.cast::<u8>(),
            n,
        );
        (*plugin).size = host_size;
    }
    sys::SOCKHOST_OK
}

fn install_panic_hook() {
    // The hook belongs to this plugin's own copy of std; it records where a
    // panic happened so the request's error can say so, and stays quiet
    // otherwise: the host logs the error through handle_error.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        PANIC_AT.with(|p| *p.borrow_mut() = at);
    }));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let msg = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    };
    match PANIC_AT.with(|p| p.borrow_mut().take()) {
        Some(at) => format!("handler panicked at {at}: {msg}"),
        None => format!("handler panicked: {msg}"),
    }
}

/// Run `f`, catching errors and panics; on failure attach the message to
/// `req` (when there is one) and return `SOCKHOST_ERROR`.
fn guarded(req: *mut sys::sockhost_request, f: impl FnOnce() -> crate::Result<()>) -> i32 {
    let message = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return sys::SOCKHOST_OK,
        Ok(Err(e)) => e.to_string(),
        Err(payload) => panic_message(payload.as_ref()),
    };
    if let (false, Some(set_error)) = (req.is_null(), host().and_then(|h| h.set_error)) {
        // SAFETY: `req` is the host's live request; the message is valid
        // UTF-8 for this call and the host copies it.
        unsafe { set_error(req, message.as_ptr().cast(), message.len()) };
    } else {
        crate::log(crate::Level::Error, &message);
    }
    sys::SOCKHOST_ERROR
}

/// Run a hook that has no way to report failure; log a panic instead.
fn quiet(what: &str, f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        crate::log(
            crate::Level::Error,
            &format!("{what}: {}", panic_message(payload.as_ref())),
        );
    }
}

/// # Safety
/// `instance` must be the pointer our `create` returned.
unsafe fn instance<'a, H>(instance: *mut c_void) -> &'a H {
    // SAFETY: per the function contract; the host keeps it alive until destroy.
    unsafe { &*instance.cast::<H>() }
}

/// Run `f` on the request (its SDK state is made when first used).
///
/// # Safety
/// `req` must be the host's live request.
unsafe fn with_request<R>(
    req: *mut sys::sockhost_request,
    f: impl FnOnce(&mut Request) -> R,
) -> Option<R> {
    // SAFETY: per the function contract.
    let raw = unsafe { req.as_mut()? };
    Some(f(&mut Request::new(raw)))
}

/// Drop the request's SDK state.
///
/// # Safety
/// `req` must be the host's live request.
unsafe fn free_state(req: *mut sys::sockhost_request) {
    // SAFETY: per the function contract.
    if let Some(raw) = unsafe { req.as_mut() } {
        if !raw.user.is_null() {
            // SAFETY: `user` was made by Box::into_raw in Request::state.
            drop(unsafe { Box::from_raw(raw.user.cast::<State>()) });
            raw.user = std::ptr::null_mut();
        }
    }
}

/// Build the handler from the host's listener.
///
/// # Safety
/// `listener` must be null or the host's listener, valid for this call.
unsafe fn build<H: Handler>(listener: *const sys::sockhost_listener) -> crate::Result<H> {
    // SAFETY: per the function contract.
    let l = unsafe { listener.as_ref() }.ok_or("no listener")?;
    // SAFETY: host strings, valid for this call (the same for each below).
    let config = toml::from_str(unsafe { str_of(&l.config_toml) })
        .map_err(|e| format!("[listener.config]: {e}"))?;
    let listener = Listener {
        // SAFETY: as above.
        name: unsafe { str_of(&l.name) }.to_string(),
        // SAFETY: as above.
        address: unsafe { str_of(&l.address) }.to_string(),
        family: l.family,
        kind: Kind::from_socktype(l.socktype),
        mixin: match l.mixin {
            sys::SOCKHOST_MIXIN_THREAD => Mixin::Thread,
            sys::SOCKHOST_MIXIN_FORK => Mixin::Fork,
            _ => Mixin::Sync,
        },
        config,
        config_dir: std::path::PathBuf::new(),
        listen_fd: None,
        log_fd: None,
        max_packet_size: 0,
    };
    let mut listener = listener;
    let has = |end: usize| l.size as usize >= end;
    if has(std::mem::offset_of!(sys::sockhost_listener, reserved1) + 4) {
        // SAFETY: a 1.1 host's string, valid for this call.
        listener.config_dir = unsafe { str_of(&l.config_dir) }.into();
        listener.listen_fd = (l.listen_fd >= 0).then_some(l.listen_fd);
    }
    if has(std::mem::offset_of!(sys::sockhost_listener, max_packet_size) + 4) {
        listener.log_fd = (l.log_fd >= 0).then_some(l.log_fd);
        listener.max_packet_size = l.max_packet_size as usize;
    }
    H::create(&listener)
}

unsafe extern "C" fn create<H: Handler>(
    listener: *const sys::sockhost_listener,
    out: *mut *mut c_void,
    error: *mut *const c_char,
) -> i32 {
    // Every failure, a bad [listener.config], an error or a panic, goes back
    // through `*error` with its own message: that is what the host logs.
    // SAFETY: the host passes a listener valid for this call.
    let outcome = match catch_unwind(AssertUnwindSafe(|| unsafe { build::<H>(listener) })) {
        Ok(built) => built.map_err(|e| e.to_string()),
        Err(payload) => Err(panic_message(payload.as_ref())),
    };
    match outcome {
        Ok(h) if !out.is_null() => {
            // SAFETY: `out` is the host's slot for the instance.
            unsafe { *out = Box::into_raw(Box::new(h)).cast() };
            sys::SOCKHOST_OK
        }
        Ok(h) => {
            quiet("destroy", || drop(h));
            set_create_error(error, "the host passed no instance slot".to_string());
            sys::SOCKHOST_ERROR
        }
        Err(msg) => {
            set_create_error(error, msg);
            sys::SOCKHOST_ERROR
        }
    }
}

/// Hand `msg` to the host through `error`, keeping it alive in a
/// thread-local until the next failed create on this thread.
fn set_create_error(error: *mut *const c_char, msg: String) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    CREATE_ERROR.with(|slot| {
        let mut slot = slot.borrow_mut();
        if !error.is_null() {
            // SAFETY: the host's out-pointer; the string stays alive in the
            // thread-local until the next failed create on this thread.
            unsafe { *error = c.as_ptr() };
        }
        *slot = Some(c);
    });
}

unsafe extern "C" fn destroy<H: Handler>(ptr: *mut c_void) {
    if !ptr.is_null() {
        quiet("destroy", || {
            // SAFETY: made by Box::into_raw in create; the host calls
            // destroy once.
            drop(unsafe { Box::from_raw(ptr.cast::<H>()) })
        });
    }
}

unsafe extern "C" fn setup<H: Handler>(ptr: *mut c_void, req: *mut sys::sockhost_request) -> i32 {
    // SAFETY: host pointers, live for this call.
    let h = unsafe { instance::<H>(ptr) };
    let status = guarded(req, || {
        // SAFETY: as above.
        unsafe { with_request(req, |r| h.setup(r)) }.unwrap_or(Ok(()))
    });
    if status != sys::SOCKHOST_OK {
        // finish will not run: drop the state now.
        // SAFETY: as above.
        unsafe { free_state(req) };
    }
    status
}

unsafe extern "C" fn handle<H: Handler>(ptr: *mut c_void, req: *mut sys::sockhost_request) -> i32 {
    // SAFETY: host pointers, live for this call.
    let h = unsafe { instance::<H>(ptr) };
    guarded(req, || {
        // SAFETY: as above.
        unsafe { with_request(req, |r| h.handle(r)) }.unwrap_or(Ok(()))
    })
}

unsafe extern "C" fn finish<H: Handler>(ptr: *mut c_void, req: *mut sys::sockhost_request) -> i32 {
    // SAFETY: host pointers, live for this call.
    let h = unsafe { instance::<H>(ptr) };
    let status = guarded(req, || {
        // SAFETY: as above.
        let r = unsafe {
            with_request(req, |r| {
                let hook = h.finish(r);
                let flushed = r.flush_wfile();
                hook.and(flushed.map_err(Into::into))
            })
        };
        r.unwrap_or(Ok(()))
    });
    // SAFETY: as above; the request ends here.
    unsafe { free_state(req) };
    status
}

unsafe extern "C" fn verify_request<H: Handler>(
    ptr: *mut c_void,
    req: *const sys::sockhost_request,
) -> i32 {
    // SAFETY: host pointers, live for this call.
    let (h, raw) = unsafe { (instance::<H>(ptr), req.as_ref()) };
    let Some(raw) = raw else {
        return sys::SOCKHOST_ERROR;
    };
    let data = if raw.data.is_null() {
        &[][..]
    } else {
        // SAFETY: the host's datagram bytes, live for this call.
        unsafe { std::slice::from_raw_parts(raw.data, raw.data_len) }
    };
    // SAFETY: host string, live for this call.
    let address = unsafe { str_of(&raw.client) };
    let client = Client {
        address,
        kind: Kind::from_socktype(raw.socktype),
        data,
        addr: crate::request::sockaddr_bytes(raw),
        family: raw.family,
    };
    let mut ok = false;
    quiet("verify_request", || ok = h.verify_request(&client));
    if ok {
        sys::SOCKHOST_OK
    } else {
        sys::SOCKHOST_ERROR
    }
}

unsafe extern "C" fn handle_timeout<H: Handler>(ptr: *mut c_void) {
    // SAFETY: the host's instance pointer.
    let h = unsafe { instance::<H>(ptr) };
    quiet("handle_timeout", || h.handle_timeout());
}

unsafe extern "C" fn service_actions<H: Handler>(ptr: *mut c_void) {
    // SAFETY: the host's instance pointer.
    let h = unsafe { instance::<H>(ptr) };
    quiet("service_actions", || h.service_actions());
}

unsafe extern "C" fn handle_error<H: Handler>(
    ptr: *mut c_void,
    req: *mut sys::sockhost_request,
    msg: *const c_char,
    len: usize,
) {
    // SAFETY: host pointers and message, live for this call.
    let h = unsafe { instance::<H>(ptr) };
    let text = sys::sockhost_str { ptr: msg, len };
    // SAFETY: as above.
    let message = unsafe { str_of(&text) }.to_string();
    // The host may call this after a failed setup or after finish, when the
    // request has no SDK state any more: then the state made here is this
    // call's alone, so flush what the handler wrote and free it again
    // (nothing else would: finish does not run after it).
    // SAFETY: as above.
    let had_state = unsafe { req.as_ref() }.is_some_and(|r| !r.user.is_null());
    quiet("handle_error", || {
        // SAFETY: as above.
        unsafe {
            with_request(req, |r| {
                h.handle_error(r, &message);
                if !had_state {
                    // Best effort: the request is failing already.
                    let _ = r.flush_wfile();
                }
            })
        };
    });
    if !had_state {
        // SAFETY: as above.
        unsafe { free_state(req) };
    }
}

unsafe extern "C" fn before_fork<H: Handler>(ptr: *mut c_void) {
    // SAFETY: the host's instance pointer.
    let h = unsafe { instance::<H>(ptr) };
    quiet("before_fork", || h.before_fork());
}

unsafe extern "C" fn after_fork_parent<H: Handler>(ptr: *mut c_void) {
    // SAFETY: the host's instance pointer.
    let h = unsafe { instance::<H>(ptr) };
    quiet("after_fork_parent", || h.after_fork_parent());
}

unsafe extern "C" fn after_fork_child<H: Handler>(ptr: *mut c_void) {
    // SAFETY: the host's instance pointer.
    let h = unsafe { instance::<H>(ptr) };
    quiet("after_fork_child", || h.after_fork_child());
}
