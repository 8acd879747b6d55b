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
//! The host function table handed to plugins lives in `host`.

mod file_id;
mod host;
mod memcopy;

pub use file_id::{Depends, FileId};

use crate::config::{ListenerConfig, Mixin};
pub use host::{listener_taken, set_exec_mark, RequestCtx, DETAIL_MAX};
pub(crate) use host::{report_late_to, take_dependencies};
use memcopy::private_copy;
use sockhost_sdk::sys;
use std::ffi::{c_char, c_void, CStr, CString};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

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
    /// The ABI minor version the plugin was built against: fields added
    /// to its table after 1.0 are read only when this is high enough.
    minor: u16,
    table: sys::sockhost_plugin,
}

// SAFETY: the table holds function pointers and pointers to static strings
// in a library that is never unloaded; nothing in it is mutated after load.
unsafe impl Send for Plugin {}
// SAFETY: as above; shared references only read the table.
unsafe impl Sync for Plugin {}

impl Plugin {
    /// Whether the plugin asked for `flag` (a `SOCKHOST_PLUGIN_*` bit).
    pub fn wants(&self, flag: u32) -> bool {
        self.table.flags & flag != 0
    }
}

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
    let record = unsafe { &*record };
    check_record(record).map_err(fail)?;
    let minor = record.minor;
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
    initialise(path, init, minor)
}

/// A plugin linked into this binary instead of loaded from a file (the
/// fuzz targets drive the real host path this way): the same version
/// check and entry call as [`load`]. `path` only names it in messages.
pub fn linked(
    path: &Path,
    record: &sys::sockhost_abi_record,
    init: sys::sockhost_plugin_init_fn,
) -> Result<&'static Plugin, PluginError> {
    check_record(record).map_err(|reason| PluginError {
        path: path.to_path_buf(),
        reason,
    })?;
    initialise(path, init, record.minor)
}

/// Call a checked plugin's entry function and keep its table for good.
fn initialise(
    path: &Path,
    init: sys::sockhost_plugin_init_fn,
    minor: u16,
) -> Result<&'static Plugin, PluginError> {
    let fail = |reason: String| PluginError {
        path: path.to_path_buf(),
        reason,
    };
    let mut table = sys::sockhost_plugin::empty();
    // SAFETY: HOST is static; `table` is zeroed with its size set.
    let rc = unsafe { init(&crate::plugin::host::HOST, &mut table) };
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
    let _ = crate::plugin::host::PLUGIN_NAME.set(name.clone());
    let plugin = Plugin {
        path: path.to_path_buf(),
        name,
        version,
        minor,
        table,
    };
    Ok(Box::leak(Box::new(plugin)))
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
    /// Call the plugin's `create` for `l`, with no listening socket.
    pub fn create(plugin: &'static Plugin, l: &ListenerConfig) -> Result<Instance, PluginError> {
        Self::create_on(plugin, l, -1, -1)
    }

    /// Call the plugin's `create` for `l`, lending it `listen_fd` and the
    /// log relay's `log_fd` (-1: none).
    pub fn create_on(
        plugin: &'static Plugin,
        l: &ListenerConfig,
        listen_fd: RawFd,
        log_fd: RawFd,
    ) -> Result<Instance, PluginError> {
        let fail = |reason: String| PluginError {
            path: plugin.path.clone(),
            reason,
        };
        let cstr = |s: &str| CString::new(s).map_err(|_| fail("a string holds a NUL byte".into()));
        let folder = l.defined_at.file.parent().unwrap_or(Path::new("/"));
        let (name, address, config, dir) = (
            cstr(&l.name)?,
            cstr(&l.address_text)?,
            cstr(&l.config_toml)?,
            cstr(&folder.to_string_lossy())?,
        );
        let s = |c: &CString| sys::sockhost_str {
            ptr: c.as_ptr(),
            len: c.as_bytes().len(),
        };
        let raw = sys::sockhost_listener {
            size: std::mem::size_of::<sys::sockhost_listener>() as u32,
            family: l.family.raw(),
            socktype: l.socktype.raw(),
            mixin: match l.mixin {
                Mixin::Sync => sys::SOCKHOST_MIXIN_SYNC,
                Mixin::Thread => sys::SOCKHOST_MIXIN_THREAD,
                Mixin::Fork => sys::SOCKHOST_MIXIN_FORK,
            },
            name: s(&name),
            address: s(&address),
            config_toml: s(&config),
            config_dir: s(&dir),
            listen_fd,
            reserved1: 0,
            log_fd,
            max_packet_size: u32::try_from(l.max_packet_size).unwrap_or(u32::MAX),
        };
        let mut ptr: *mut c_void = std::ptr::null_mut();
        let mut err: *const c_char = std::ptr::null();
        let Some(create) = plugin.table.create else {
            return Err(fail("no create function".into()));
        };
        // SAFETY: `raw` and its strings live across the call; the out
        // pointers are valid locals.
        let rc = host::in_create(|| unsafe { create(&raw, &mut ptr, &mut err) });
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
        let fd = ctx.swap_fd(-1);
        // SAFETY: instance and request are live for the call.
        let rc = unsafe { f(self.ptr, ctx.raw_ptr()) };
        ctx.swap_fd(fd);
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

    /// Whether the plugin asked for `flag` (a `SOCKHOST_PLUGIN_*` bit).
    pub fn wants(&self, flag: u32) -> bool {
        self.plugin.wants(flag)
    }

    /// The plugin's `service_actions`.
    pub fn service_actions(&self) {
        if let Some(f) = self.plugin.table.service_actions {
            // SAFETY: the instance is live.
            unsafe { f(self.ptr) };
        }
    }

    /// A 1.1 fork hook, when the plugin was built for 1.1 and has it.
    fn fork_hook(
        &self,
        pick: fn(&sys::sockhost_plugin) -> Option<sys::InstanceFn>,
    ) -> Option<sys::InstanceFn> {
        (self.plugin.minor >= 1)
            .then(|| pick(&self.plugin.table))
            .flatten()
    }

    /// The plugin's `before_fork`, right before the worker forks.
    pub fn before_fork(&self) {
        if let Some(f) = self.fork_hook(|t| t.before_fork) {
            // SAFETY: the instance is live; called on the worker's thread.
            unsafe { f(self.ptr) };
        }
    }

    /// The plugin's `after_fork_parent`, in the worker after a fork.
    pub fn after_fork_parent(&self) {
        if let Some(f) = self.fork_hook(|t| t.after_fork_parent) {
            // SAFETY: as in before_fork.
            unsafe { f(self.ptr) };
        }
    }

    /// The plugin's `after_fork_child`, first thing in a request child.
    pub fn after_fork_child(&self) {
        if let Some(f) = self.fork_hook(|t| t.after_fork_child) {
            // SAFETY: the instance is live (inherited); the child's only thread.
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
