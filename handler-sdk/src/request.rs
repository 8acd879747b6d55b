//! One request as a handler sees it: Python's StreamRequestHandler and
//! DatagramRequestHandler in one type.
//!
//! Stream: `rfile` is a buffered reader and `wfile` a buffered writer on the
//! connected socket, `socket()` the unbuffered socket. Datagram: `rfile`
//! reads the datagram's bytes, `wfile` collects the reply, sent as one
//! datagram when the request finishes; `reply` sends one at once. The socket
//! is borrowed: the daemon closes it, never the handler.

use crate::log::host;
use crate::sys;
use std::any::Any;
use std::io::{self, BufRead, BufReader, BufWriter, Cursor, Read, Write};
use std::os::fd::RawFd;

/// Stream or datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Stream,
    Datagram,
}

impl Kind {
    pub(crate) fn from_socktype(t: i32) -> Kind {
        if t == libc::SOCK_DGRAM {
            Kind::Datagram
        } else {
            Kind::Stream
        }
    }
}

/// A borrowed connected socket: unbuffered `Read` and `Write`. Writes never
/// raise SIGPIPE; a closed peer is an `io::Error`.
#[derive(Debug)]
pub struct Socket(RawFd);

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: the fd is the request's socket, open until finish; the
            // buffer is valid for `buf.len()` bytes.
            let n = unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: as in read; MSG_NOSIGNAL turns SIGPIPE into EPIPE.
            let n =
                unsafe { libc::send(self.0, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The request's input: the socket, buffered, or the datagram's bytes.
///
/// Opaque on purpose: the datagram reader holds the host's bytes with a
/// `'static` lifetime the SDK cannot express, so handing out the inner
/// reader would let safe code keep them past the request.
#[derive(Debug)]
pub struct RFile(Input);

#[derive(Debug)]
enum Input {
    Stream(BufReader<Socket>),
    Datagram(Cursor<&'static [u8]>),
}

impl Read for RFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.0 {
            Input::Stream(r) => r.read(buf),
            Input::Datagram(c) => c.read(buf),
        }
    }
}

impl BufRead for RFile {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match &mut self.0 {
            Input::Stream(r) => r.fill_buf(),
            Input::Datagram(c) => c.fill_buf(),
        }
    }
    fn consume(&mut self, amt: usize) {
        match &mut self.0 {
            Input::Stream(r) => r.consume(amt),
            Input::Datagram(c) => c.consume(amt),
        }
    }
}

/// The request's output: the socket, buffered, or the reply datagram.
#[derive(Debug)]
pub enum WFile {
    Stream(BufWriter<Socket>),
    Datagram(Vec<u8>),
}

impl Write for WFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            WFile::Stream(w) => w.write(buf),
            WFile::Datagram(v) => v.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            WFile::Stream(w) => w.flush(),
            WFile::Datagram(_) => Ok(()),
        }
    }
}

/// What the SDK keeps per request, behind `sockhost_request.user`. Made on
/// first use of `rfile`, `wfile` or `user`, so a handler that uses none of
/// them (echo on the raw socket) costs no allocation: in a forked child
/// every heap page written is a copy-on-write fault.
#[derive(Default)]
pub(crate) struct State {
    rfile: Option<RFile>,
    wfile: Option<WFile>,
    user: Option<Box<dyn Any + Send>>,
}

/// One request, handed to every hook of [`crate::Handler`].
pub struct Request<'a> {
    raw: &'a mut sys::sockhost_request,
}

impl<'a> Request<'a> {
    pub(crate) fn new(raw: &'a mut sys::sockhost_request) -> Self {
        Request { raw }
    }

    /// The SDK's state for this request, made on first use.
    fn state(&mut self) -> &mut State {
        if self.raw.user.is_null() {
            self.raw.user = Box::into_raw(Box::<State>::default()).cast();
        }
        // SAFETY: `user` is only ever set here (a boxed `State`) and freed
        // by `entry::free_state`, which runs when the request ends, after
        // every `Request` borrowing it is gone.
        unsafe { &mut *self.raw.user.cast::<State>() }
    }

    /// Stream or datagram.
    pub fn kind(&self) -> Kind {
        Kind::from_socktype(self.raw.socktype)
    }

    /// The client address as text: `127.0.0.1:PORT`, `[::1]:PORT`, a unix
    /// path, `@name` (abstract), or empty for an unnamed unix peer.
    pub fn client(&self) -> &str {
        // SAFETY: the host's strings are valid UTF-8 for the request's life.
        unsafe { crate::entry::str_of(&self.raw.client) }
    }

    /// The socket's address family (`libc::AF_*`).
    pub fn family(&self) -> i32 {
        self.raw.family
    }

    /// The client address as the raw `struct sockaddr` bytes the host gave.
    pub fn client_addr(&self) -> &'a [u8] {
        sockaddr_bytes(self.raw)
    }

    /// The raw socket: connected (stream) or listening (datagram). Borrowed.
    pub fn fd(&self) -> RawFd {
        self.raw.fd
    }

    /// The datagram's bytes; empty for streams. The slice lives as long as
    /// the request, not the borrow of `self`, so `req.reply(req.data())`
    /// echoes a datagram without copying it.
    pub fn data(&self) -> &'a [u8] {
        datagram_bytes(self.raw)
    }

    /// The connected socket, unbuffered (stream requests).
    pub fn socket(&self) -> Socket {
        Socket(self.raw.fd)
    }

    /// Buffered input (StreamRequestHandler.rfile / DatagramRequestHandler).
    pub fn rfile(&mut self) -> &mut RFile {
        let (kind, fd, data) = (self.kind(), self.raw.fd, datagram_bytes(self.raw));
        self.state().rfile.get_or_insert_with(|| match kind {
            Kind::Stream => RFile(Input::Stream(BufReader::new(Socket(fd)))),
            Kind::Datagram => RFile(Input::Datagram(Cursor::new(data))),
        })
    }

    /// Buffered output, flushed (stream) or sent as one datagram after
    /// `finish`.
    pub fn wfile(&mut self) -> &mut WFile {
        let (kind, fd) = (self.kind(), self.raw.fd);
        self.state().wfile.get_or_insert_with(|| match kind {
            Kind::Stream => WFile::Stream(BufWriter::new(Socket(fd))),
            Kind::Datagram => WFile::Datagram(Vec::new()),
        })
    }

    /// Datagram requests: send `buf` to the client now, as one datagram.
    pub fn reply(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(f) = host().and_then(|h| h.reply) else {
            return Err(io::Error::other("the host offers no reply function"));
        };
        // SAFETY: the request pointer is the host's own, live for this call;
        // the buffer is valid for its length.
        let n = unsafe { f(self.raw, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Attach `text` to this request's access log line (ABI 1.2, field
    /// DETAIL; at most 200 bytes kept), e.g. a program's exit status. False
    /// when the host is older than 1.2.
    pub fn set_detail(&mut self, text: &str) -> bool {
        let Some(h) = host() else { return false };
        let needed = std::mem::offset_of!(sys::sockhost_host, set_detail)
            + std::mem::size_of::<Option<crate::sys::RequestTextFn>>();
        if (h.size as usize) < needed {
            return false;
        }
        let Some(f) = h.set_detail else { return false };
        // SAFETY: the request pointer is the host's own, live for this call;
        // the host copies `len` bytes of `text` during the call.
        unsafe { f(self.raw, text.as_ptr().cast(), text.len()) };
        true
    }

    /// In a fork-mode request child about to `execve` a program in its own
    /// place (ABI 1.2): true when the host will take this process's exit
    /// status as the program's (and log it); false elsewhere (spawn and
    /// wait instead).
    pub fn exec_request(&mut self) -> bool {
        let Some(h) = host() else { return false };
        let needed =
            std::mem::offset_of!(sys::sockhost_host, exec_request) + std::mem::size_of::<usize>();
        if (h.size as usize) < needed {
            return false;
        }
        let Some(f) = h.exec_request else {
            return false;
        };
        // SAFETY: the request pointer is the host's own, live for this call.
        unsafe { f(self.raw) == 0 }
    }

    /// The plugin's own check, run inside this request (it needed the
    /// connection), refused the client (ABI 1.2): the host counts the
    /// request as refused with reason `verify_request`, not as served or
    /// failed. Return from the hook as usual. False when the host is
    /// older than this call.
    pub fn refuse_request(&mut self) -> bool {
        let Some(h) = host() else { return false };
        let needed =
            std::mem::offset_of!(sys::sockhost_host, refuse_request) + std::mem::size_of::<usize>();
        if (h.size as usize) < needed {
            return false;
        }
        let Some(f) = h.refuse_request else {
            return false;
        };
        // SAFETY: the request pointer is the host's own, live for this call.
        unsafe { f(self.raw) == 0 }
    }

    /// The TLVs of a PROXY v2 header (`proxy_protocol` listeners), raw as
    /// sent: type, 2-byte big-endian length, value, one after another.
    /// Empty when there are none, and from a host older than ABI 1.1.
    pub fn proxy_tlvs_raw(&self) -> &'a [u8] {
        let end = std::mem::offset_of!(sys::sockhost_request, proxy_tlvs_len)
            + std::mem::size_of::<usize>();
        if (self.raw.size as usize) < end || self.raw.proxy_tlvs.is_null() {
            return &[];
        }
        // SAFETY: the host (1.1 or later, as `size` shows) promises
        // `proxy_tlvs_len` bytes that stay unchanged until the request ends.
        unsafe { std::slice::from_raw_parts(self.raw.proxy_tlvs, self.raw.proxy_tlvs_len) }
    }

    /// Every TLV of the PROXY v2 header, as (type, value), in order.
    pub fn proxy_tlvs(&self) -> ProxyTlvs<'a> {
        ProxyTlvs(self.proxy_tlvs_raw())
    }

    /// The value of the first PROXY v2 TLV of type `kind` (for instance
    /// 0x01 ALPN, 0x02 AUTHORITY, 0x05 UNIQUE_ID, 0x20 SSL), if sent.
    pub fn proxy_tlv(&self, kind: u8) -> Option<&'a [u8]> {
        self.proxy_tlvs().find(|(k, _)| *k == kind).map(|(_, v)| v)
    }

    /// Per-request storage of the handler's own, created on first use and
    /// dropped after `finish`.
    pub fn user<T: Default + Send + 'static>(&mut self) -> &mut T {
        let slot = &mut self.state().user;
        if !slot.as_ref().is_some_and(|b| b.is::<T>()) {
            *slot = Some(Box::new(T::default()));
        }
        match slot.as_mut().and_then(|b| b.downcast_mut::<T>()) {
            Some(v) => v,
            None => unreachable!("the slot was just filled with a T"),
        }
    }

    /// Flush `wfile`: write out a stream's buffer, or send the collected
    /// datagram reply (if any).
    pub(crate) fn flush_wfile(&mut self) -> io::Result<()> {
        if self.raw.user.is_null() {
            return Ok(()); // nothing was written through wfile
        }
        match self.state().wfile.take() {
            Some(WFile::Stream(mut w)) => w.flush(),
            Some(WFile::Datagram(v)) if !v.is_empty() => self.reply(&v).map(|_| ()),
            _ => Ok(()),
        }
    }
}

/// The datagram's bytes, for a lifetime the caller picks: `'a` of the
/// `Request<'a>` (they are the host's buffer, not part of the request
/// struct, unchanged until the request's finish returns), or `'static` for
/// the reader kept in `State`, sound because `State` is dropped when the
/// request ends (finish, or a failed setup), before the host frees them.
fn datagram_bytes<'a>(raw: &sys::sockhost_request) -> &'a [u8] {
    if raw.data.is_null() || raw.data_len == 0 {
        return &[];
    }
    // SAFETY: the host promises `data` points to `data_len` bytes that live
    // until the request's finish returns; every `Request<'a>` ends before.
    unsafe { std::slice::from_raw_parts(raw.data, raw.data_len) }
}

/// The client's `struct sockaddr` bytes, for the request's life (the host
/// keeps them in the request's own box until it ends).
pub(crate) fn sockaddr_bytes<'a>(raw: &sys::sockhost_request) -> &'a [u8] {
    if raw.client_addr.is_null() || raw.client_addr_len == 0 {
        return &[];
    }
    // SAFETY: the host promises `client_addr` points to `client_addr_len`
    // bytes that live as long as the request.
    unsafe {
        std::slice::from_raw_parts(raw.client_addr.cast::<u8>(), raw.client_addr_len as usize)
    }
}

/// The TLVs of a PROXY v2 header, as (type, value); see
/// [`Request::proxy_tlvs`]. Stops at the first one that does not fit
/// (the host only passes well-formed lists).
#[derive(Clone, Debug)]
pub struct ProxyTlvs<'a>(&'a [u8]);

impl<'a> Iterator for ProxyTlvs<'a> {
    type Item = (u8, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.0;
        let (&kind, head) = rest.split_first()?;
        let len = usize::from(u16::from_be_bytes([*head.first()?, *head.get(1)?]));
        let value = head.get(2..2 + len)?;
        self.0 = &head[2 + len..];
        Some((kind, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(tlvs: &[u8], size: usize) -> sys::sockhost_request {
        sys::sockhost_request {
            size: size as u32,
            socktype: libc::SOCK_STREAM,
            fd: -1,
            family: libc::AF_INET,
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
            proxy_tlvs: if tlvs.is_empty() {
                std::ptr::null()
            } else {
                tlvs.as_ptr()
            },
            proxy_tlvs_len: tlvs.len(),
        }
    }

    #[test]
    fn proxy_tlvs_are_found_by_type_and_listed_in_order() {
        let tlvs = [1, 0, 2, b'h', b'2', 5, 0, 0, 0xE0, 0, 1, 9];
        let mut r = raw(&tlvs, std::mem::size_of::<sys::sockhost_request>());
        let req = Request::new(&mut r);
        assert_eq!(req.proxy_tlv(1), Some(&b"h2"[..]));
        assert_eq!(req.proxy_tlv(5), Some(&[][..]));
        assert_eq!(req.proxy_tlv(2), None);
        let all: Vec<(u8, &[u8])> = req.proxy_tlvs().collect();
        assert_eq!(all, [(1, &b"h2"[..]), (5, &[][..]), (0xE0, &[9][..])]);
    }

    #[test]
    fn an_older_host_or_a_cut_list_gives_no_tlvs() {
        let tlvs = [1, 0, 2, b'h', b'2'];
        let old = std::mem::offset_of!(sys::sockhost_request, proxy_tlvs);
        let mut r = raw(&tlvs, old);
        assert!(Request::new(&mut r).proxy_tlvs_raw().is_empty(), "1.0 host");
        let cut = [1, 0, 9, b'x'];
        let mut r = raw(&cut, std::mem::size_of::<sys::sockhost_request>());
        assert_eq!(Request::new(&mut r).proxy_tlvs().count(), 0);
    }
}
