//! Raw mirror of `include/sockhost.h`, the plugin ABI.
//!
//! Contract: every type, constant and field here is exactly what the header
//! declares, in the same order; `tests/abi_layout.rs` compiles the header and
//! fails on any difference in size, offset or value. The header is the source
//! of truth: change it first, then this file. Nothing here has behaviour.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void};

/// "SOCKHOST" read as a big-endian 64-bit number.
pub const SOCKHOST_ABI_MAGIC: u64 = 0x534F_434B_484F_5354;
pub const SOCKHOST_ABI_MAJOR: u16 = 1;
pub const SOCKHOST_ABI_MINOR: u16 = 2;
/// Name of the exported version record.
pub const SOCKHOST_ABI_SYMBOL: &str = "sockhost_abi";
/// Name of the exported entry function.
pub const SOCKHOST_ENTRY_SYMBOL: &str = "sockhost_plugin_init";

pub const SOCKHOST_OK: i32 = 0;
pub const SOCKHOST_ERROR: i32 = -1;

pub const SOCKHOST_LOG_ERROR: i32 = 1;
pub const SOCKHOST_LOG_WARN: i32 = 2;
pub const SOCKHOST_LOG_INFO: i32 = 3;
pub const SOCKHOST_LOG_DEBUG: i32 = 4;
pub const SOCKHOST_LOG_TRACE: i32 = 5;

pub const SOCKHOST_MIXIN_SYNC: i32 = 0;
pub const SOCKHOST_MIXIN_THREAD: i32 = 1;
pub const SOCKHOST_MIXIN_FORK: i32 = 2;

pub const SOCKHOST_PLUGIN_POLL_SERVICE_ACTIONS: u32 = 0x1;
pub const SOCKHOST_PLUGIN_TRUNCATE_DATAGRAMS: u32 = 0x2;
pub const SOCKHOST_PLUGIN_ONE_CPU: u32 = 0x4;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct sockhost_abi_record {
    pub magic: u64,
    pub size: u32,
    pub major: u16,
    pub minor: u16,
}

impl sockhost_abi_record {
    /// The record this SDK (and the host built with it) speaks.
    pub const CURRENT: sockhost_abi_record = sockhost_abi_record {
        magic: SOCKHOST_ABI_MAGIC,
        size: std::mem::size_of::<sockhost_abi_record>() as u32,
        major: SOCKHOST_ABI_MAJOR,
        minor: SOCKHOST_ABI_MINOR,
    };
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sockhost_str {
    pub ptr: *const c_char,
    pub len: usize,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sockhost_listener {
    pub size: u32,
    pub family: i32,
    pub socktype: i32,
    pub mixin: i32,
    pub name: sockhost_str,
    pub address: sockhost_str,
    pub config_toml: sockhost_str,
    // ABI 1.1
    pub config_dir: sockhost_str,
    pub listen_fd: i32,
    pub reserved1: u32,
    // ABI 1.2
    pub log_fd: i32,
    pub max_packet_size: u32,
}

#[repr(C)]
#[derive(Debug)]
pub struct sockhost_request {
    pub size: u32,
    pub socktype: i32,
    pub fd: i32,
    pub family: i32,
    pub client: sockhost_str,
    pub client_addr: *const c_void,
    pub client_addr_len: u32,
    pub reserved: u32,
    pub data: *const u8,
    pub data_len: usize,
    pub user: *mut c_void,
    pub host_private: *mut c_void,
    /// Since 1.1 (check `size`): PROXY v2 TLVs, raw; null when none.
    pub proxy_tlvs: *const u8,
    pub proxy_tlvs_len: usize,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sockhost_host {
    pub size: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub log: Option<unsafe extern "C" fn(level: i32, msg: *const c_char, len: usize)>,
    pub log_enabled: Option<unsafe extern "C" fn(level: i32) -> i32>,
    pub set_error:
        Option<unsafe extern "C" fn(req: *mut sockhost_request, msg: *const c_char, len: usize)>,
    pub reply: Option<
        unsafe extern "C" fn(req: *mut sockhost_request, buf: *const c_void, len: usize) -> isize,
    >,
    // ABI 1.1
    pub depends_on: Option<unsafe extern "C" fn(path: *const c_char, len: usize) -> i32>,
    // ABI 1.2
    pub take_listener: Option<unsafe extern "C" fn() -> i32>,
    pub set_detail: Option<RequestTextFn>,
    pub exec_request: Option<unsafe extern "C" fn(req: *mut sockhost_request) -> i32>,
    pub refuse_request: Option<unsafe extern "C" fn(req: *mut sockhost_request) -> i32>,
}

/// `set_error` and `set_detail`: text attached to a request.
pub type RequestTextFn =
    unsafe extern "C" fn(req: *mut sockhost_request, msg: *const c_char, len: usize);

pub type CreateFn = unsafe extern "C" fn(
    listener: *const sockhost_listener,
    instance: *mut *mut c_void,
    error: *mut *const c_char,
) -> i32;
pub type RequestFn = unsafe extern "C" fn(instance: *mut c_void, req: *mut sockhost_request) -> i32;
pub type VerifyFn =
    unsafe extern "C" fn(instance: *mut c_void, req: *const sockhost_request) -> i32;
pub type InstanceFn = unsafe extern "C" fn(instance: *mut c_void);
pub type HandleErrorFn = unsafe extern "C" fn(
    instance: *mut c_void,
    req: *mut sockhost_request,
    msg: *const c_char,
    len: usize,
);

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sockhost_plugin {
    pub size: u32,
    pub flags: u32,
    pub name: *const c_char,
    pub version: *const c_char,
    pub create: Option<CreateFn>,
    pub destroy: Option<InstanceFn>,
    pub setup: Option<RequestFn>,
    pub handle: Option<RequestFn>,
    pub finish: Option<RequestFn>,
    pub verify_request: Option<VerifyFn>,
    pub handle_timeout: Option<InstanceFn>,
    pub service_actions: Option<InstanceFn>,
    pub handle_error: Option<HandleErrorFn>,
    // ABI 1.1
    pub before_fork: Option<InstanceFn>,
    pub after_fork_parent: Option<InstanceFn>,
    pub after_fork_child: Option<InstanceFn>,
}

impl sockhost_plugin {
    /// A zeroed table with `size` set, as the host hands it to the entry function.
    pub fn empty() -> sockhost_plugin {
        sockhost_plugin {
            size: std::mem::size_of::<sockhost_plugin>() as u32,
            flags: 0,
            name: std::ptr::null(),
            version: std::ptr::null(),
            create: None,
            destroy: None,
            setup: None,
            handle: None,
            finish: None,
            verify_request: None,
            handle_timeout: None,
            service_actions: None,
            handle_error: None,
            before_fork: None,
            after_fork_parent: None,
            after_fork_child: None,
        }
    }
}

pub type sockhost_plugin_init_fn =
    unsafe extern "C" fn(host: *const sockhost_host, plugin: *mut sockhost_plugin) -> i32;
