//! Where a benchmark connects or listens, written `KIND:ADDRESS`:
//! `tcp:127.0.0.1:7000`, `tcp:[::1]:7000`, `unix:/run/x.sock`,
//! `udp:127.0.0.1:7000`, `unixgram:/run/x.sock`.
//!
//! Owns parsing those strings and opening client connections to them.
//! Promises: only loopback addresses are accepted for inet kinds (this tool
//! must never send traffic off the machine); every client socket gets a read
//! and write timeout, so a dead server shows up as errors, never as a hang.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::os::fd::FromRawFd;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A parsed `KIND:ADDRESS`.
#[derive(Clone, Debug)]
pub enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
    Udp(SocketAddr),
    UnixGram(PathBuf),
}

impl Target {
    /// Parse `KIND:ADDRESS`; inet addresses must be loopback.
    pub fn parse(text: &str) -> Result<Target, String> {
        let (kind, rest) = text
            .split_once(':')
            .ok_or_else(|| format!("`{text}`: expected KIND:ADDRESS (tcp, unix, udp, unixgram)"))?;
        let inet = |s: &str| -> Result<SocketAddr, String> {
            let sa: SocketAddr = s
                .parse()
                .map_err(|e| format!("`{s}`: not an IP:PORT address ({e})"))?;
            if !sa.ip().is_loopback() {
                return Err(format!("`{s}`: only loopback addresses are allowed"));
            }
            Ok(sa)
        };
        match kind {
            "tcp" => Ok(Target::Tcp(inet(rest)?)),
            "udp" => Ok(Target::Udp(inet(rest)?)),
            "unix" => Ok(Target::Unix(PathBuf::from(rest))),
            "unixgram" => Ok(Target::UnixGram(PathBuf::from(rest))),
            other => Err(format!(
                "unknown kind `{other}` (expected tcp, unix, udp or unixgram)"
            )),
        }
    }

    /// Whether this is a datagram target.
    pub fn is_dgram(&self) -> bool {
        matches!(self, Target::Udp(_) | Target::UnixGram(_))
    }
}

/// A connected stream client.
pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Client socket timeout: long enough for any healthy server under load.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

impl Conn {
    /// Connect to a stream target, with timeouts set and Nagle off. For an
    /// IPv4 target, `source` (when given) is the loopback address to connect
    /// from: each client using its own keeps the client's ports in
    /// TIME_WAIT from capping the new-connection rate of one 4-tuple space.
    pub fn connect(t: &Target, source: Option<Ipv4Addr>) -> io::Result<Conn> {
        let c = match t {
            Target::Tcp(SocketAddr::V4(sa)) if source.is_some() => {
                let s = connect_from(*sa, source.unwrap_or(Ipv4Addr::LOCALHOST))?;
                s.set_nodelay(true)?;
                Conn::Tcp(s)
            }
            Target::Tcp(sa) => {
                let s = TcpStream::connect(sa)?;
                s.set_nodelay(true)?;
                Conn::Tcp(s)
            }
            Target::Unix(p) => Conn::Unix(UnixStream::connect(p)?),
            _ => return Err(io::Error::other("not a stream target")),
        };
        match &c {
            Conn::Tcp(s) => {
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
            }
            Conn::Unix(s) => {
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
            }
        }
        Ok(c)
    }
}

/// A TCP connection to `to` from `from` (port chosen at connect time, so
/// ports are shared with other source addresses: IP_BIND_ADDRESS_NO_PORT).
fn connect_from(to: SocketAddrV4, from: Ipv4Addr) -> io::Result<TcpStream> {
    let sockaddr = |a: SocketAddrV4| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let check = |rc: libc::c_int| {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc)
        }
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: socket() has no memory preconditions; the fd is owned below.
    let fd =
        check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a fresh socket nobody else owns; it closes on drop.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    let (local, remote) = (sockaddr(SocketAddrV4::new(from, 0)), sockaddr(to));
    // SAFETY: the option value and both addresses are live locals of the
    // sizes passed.
    unsafe {
        check(libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ))?;
        check(libc::bind(
            fd,
            (&local as *const libc::sockaddr_in).cast(),
            len,
        ))?;
        check(libc::connect(
            fd,
            (&remote as *const libc::sockaddr_in).cast(),
            len,
        ))?;
    }
    Ok(stream)
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connected datagram client. Unix clients bind a path of their own (in
/// the temp folder, removed on drop) so the server has somewhere to reply.
pub enum Dgram {
    Udp(UdpSocket),
    Unix(UnixDatagram, PathBuf),
}

impl Dgram {
    pub fn connect(t: &Target) -> io::Result<Dgram> {
        let d = match t {
            Target::Udp(sa) => {
                let local = if sa.is_ipv6() {
                    "[::1]:0"
                } else {
                    "127.0.0.1:0"
                };
                let s = UdpSocket::bind(local)?;
                s.connect(sa)?;
                s.set_read_timeout(Some(Duration::from_secs(1)))?;
                Dgram::Udp(s)
            }
            Target::UnixGram(p) => {
                static N: AtomicUsize = AtomicUsize::new(0);
                let me = std::env::temp_dir().join(format!(
                    "sockhost-bench-{}-{}.sock",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                let _ = std::fs::remove_file(&me);
                let s = UnixDatagram::bind(&me)?;
                s.connect(p)?;
                s.set_read_timeout(Some(Duration::from_secs(1)))?;
                Dgram::Unix(s, me)
            }
            _ => return Err(io::Error::other("not a datagram target")),
        };
        Ok(d)
    }

    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Dgram::Udp(s) => s.send(buf),
            Dgram::Unix(s, _) => s.send(buf),
        }
    }

    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Dgram::Udp(s) => s.recv(buf),
            Dgram::Unix(s, _) => s.recv(buf),
        }
    }
}

impl Drop for Dgram {
    fn drop(&mut self) {
        if let Dgram::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_refuses_non_loopback() {
        assert!(matches!(
            Target::parse("tcp:127.0.0.1:80"),
            Ok(Target::Tcp(_))
        ));
        assert!(matches!(Target::parse("udp:[::1]:80"), Ok(Target::Udp(_))));
        assert!(matches!(Target::parse("unix:/x.sock"), Ok(Target::Unix(_))));
        assert!(matches!(
            Target::parse("unixgram:/x.sock"),
            Ok(Target::UnixGram(_))
        ));
        assert!(Target::parse("tcp:192.0.2.1:80").is_err());
        assert!(Target::parse("sctp:127.0.0.1:80").is_err());
        assert!(Target::parse("127.0.0.1:80").is_err());
    }
}
