//! A client's `struct sockaddr` as socketserver's `client_address`: what
//! CPython's socket module returns from `accept()` / `recvfrom()` for it.
//!
//! inet: `(host, port)`; inet6: `(host, port, flowinfo, scope_id)`, the
//! host text from `inet_ntop` as CPython makes it; unix: the path as `str`
//! (`''` for an unnamed peer), `bytes` for an abstract address (leading
//! NUL kept), `None` when the kernel gave no address at all.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use std::ffi::{c_char, CStr};

/// `client_address` for `addr`, the raw sockaddr bytes of `family`.
pub fn client_address<'py>(
    py: Python<'py>,
    family: i32,
    addr: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let bad = || pyo3::exceptions::PyValueError::new_err("malformed client address");
    match family {
        libc::AF_INET => {
            let (port, ip) = (
                addr.get(2..4).ok_or_else(bad)?,
                addr.get(4..8).ok_or_else(bad)?,
            );
            let port = u16::from_be_bytes([port[0], port[1]]);
            let mut text = [0u8; 15];
            let host = ipv4_text([ip[0], ip[1], ip[2], ip[3]], &mut text);
            Ok((PyString::new(py, host), port)
                .into_pyobject(py)?
                .into_any())
        }
        libc::AF_INET6 => {
            let field = |r: std::ops::Range<usize>| addr.get(r).ok_or_else(bad);
            let port = field(2..4)?;
            let port = u16::from_be_bytes([port[0], port[1]]);
            let flow = field(4..8)?;
            let flowinfo = u32::from_be_bytes([flow[0], flow[1], flow[2], flow[3]]);
            let ip = field(8..24)?;
            let scope = field(24..28)?;
            let scope_id = u32::from_ne_bytes([scope[0], scope[1], scope[2], scope[3]]);
            let host = ntop6(ip).ok_or_else(bad)?;
            Ok((host, port, flowinfo, scope_id)
                .into_pyobject(py)?
                .into_any())
        }
        libc::AF_UNIX => {
            if addr.is_empty() {
                return Ok(py.None().into_bound(py));
            }
            let path = addr.get(2..).unwrap_or(&[]);
            if path.first() == Some(&0) {
                return Ok(PyBytes::new(py, path).into_any());
            }
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            let path = &path[..end];
            match std::str::from_utf8(path) {
                Ok(text) => Ok(PyString::new(py, text).into_any()),
                // Not UTF-8: decode as CPython does (the filesystem encoding).
                Err(_) => py
                    .import("os")?
                    .call_method1("fsdecode", (PyBytes::new(py, path),)),
            }
        }
        _ => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "unknown address family {family}"
        ))),
    }
}

/// An IPv4 address in dotted decimal, written into `buf` on the stack:
/// no heap page is touched (a fork-mode request child would copy it).
fn ipv4_text(ip: [u8; 4], buf: &mut [u8; 15]) -> &str {
    let mut at = 0;
    for (i, octet) in ip.iter().enumerate() {
        if i > 0 {
            buf[at] = b'.';
            at += 1;
        }
        let (h, t, o) = (octet / 100, octet / 10 % 10, octet % 10);
        if h > 0 {
            buf[at] = b'0' + h;
            at += 1;
        }
        if h > 0 || t > 0 {
            buf[at] = b'0' + t;
            at += 1;
        }
        buf[at] = b'0' + o;
        at += 1;
    }
    // Only ASCII digits and dots were written.
    std::str::from_utf8(&buf[..at]).unwrap_or("")
}

extern "C" {
    /// POSIX inet_ntop (glibc), which the libc crate does not declare.
    fn inet_ntop(
        af: libc::c_int,
        src: *const libc::c_void,
        dst: *mut c_char,
        size: libc::socklen_t,
    ) -> *const c_char;
}

/// An IPv6 address as text, by the same `inet_ntop` CPython uses.
fn ntop6(ip: &[u8]) -> Option<String> {
    let mut out = [0 as c_char; 64];
    // SAFETY: `ip` holds the 16 bytes of an in6_addr; `out` is writable for
    // its length, which exceeds INET6_ADDRSTRLEN.
    let p = unsafe {
        inet_ntop(
            libc::AF_INET6,
            ip.as_ptr().cast(),
            out.as_mut_ptr(),
            out.len() as libc::socklen_t,
        )
    };
    if p.is_null() {
        return None;
    }
    // SAFETY: inet_ntop wrote a NUL-terminated string into `out`.
    Some(
        unsafe { CStr::from_ptr(out.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod ipv4_tests {
    use super::ipv4_text;

    #[test]
    fn dotted_decimal_as_the_standard_library_writes_it() {
        for ip in [
            [127, 0, 0, 1],
            [0, 0, 0, 0],
            [255, 255, 255, 255],
            [10, 20, 100, 9],
            [1, 99, 200, 250],
        ] {
            let mut buf = [0u8; 15];
            assert_eq!(
                ipv4_text(ip, &mut buf),
                std::net::Ipv4Addr::from(ip).to_string()
            );
        }
    }
}
