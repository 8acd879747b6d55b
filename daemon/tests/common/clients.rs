//! Clients for every listener kind: [`Stream`] and [`Dgram`] over inet,
//! inet6 and unix sockets, and [`Probe`], a conversation with the probe
//! plugin (one command, one line back).

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A connected stream to any listener kind.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Connect to a daemon-logged address: `1.2.3.4:P`, `[::1]:P`, a path or `@name`.
    pub fn connect(addr: &str) -> std::io::Result<Stream> {
        let s = if let Some(name) = addr.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            let sa = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            Stream::Unix(UnixStream::connect_addr(&sa)?)
        } else if addr.starts_with('/') {
            Stream::Unix(UnixStream::connect(addr)?)
        } else {
            let sa: SocketAddr = addr.parse().map_err(std::io::Error::other)?;
            Stream::Tcp(TcpStream::connect_timeout(&sa, DEADLINE)?)
        };
        s.set_timeout(Some(DEADLINE));
        Ok(s)
    }

    pub fn set_timeout(&self, t: Option<Duration>) {
        match self {
            Stream::Tcp(s) => {
                let _ = s.set_read_timeout(t);
                let _ = s.set_write_timeout(t);
            }
            Stream::Unix(s) => {
                let _ = s.set_read_timeout(t);
                let _ = s.set_write_timeout(t);
            }
        }
    }

    pub fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }

    /// Read until EOF.
    pub fn read_all(&mut self) -> std::io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.read_to_end(&mut v)?;
        Ok(v)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A probe conversation over one stream connection.
pub struct Probe {
    reader: BufReader<Stream>,
}

impl Probe {
    pub fn connect(addr: &str) -> Probe {
        Probe {
            reader: BufReader::new(
                Stream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}")),
            ),
        }
    }

    /// Send one command line, return the reply line without its `\n`.
    pub fn cmd(&mut self, command: &str) -> String {
        self.try_cmd(command)
            .unwrap_or_else(|e| panic!("probe {command}: {e}"))
    }

    pub fn try_cmd(&mut self, command: &str) -> std::io::Result<String> {
        self.reader
            .get_mut()
            .write_all(format!("{command}\n").as_bytes())?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(line.trim_end_matches('\n').to_string())
    }

    pub fn stream(&mut self) -> &mut Stream {
        self.reader.get_mut()
    }
}

/// A datagram client for any listener kind; unix clients bind a path in
/// `dir` so the server can reply.
pub enum Dgram {
    Udp(UdpSocket, SocketAddr),
    Unix(UnixDatagram),
}

impl Dgram {
    pub fn connect(addr: &str, dir: &Path) -> Dgram {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = if addr.starts_with('/') || addr.starts_with('@') {
            let me = dir.join(format!("client-{}.sock", N.fetch_add(1, Ordering::SeqCst)));
            let _ = std::fs::remove_file(&me);
            let s = UnixDatagram::bind(&me).expect("bind unix client");
            if let Some(name) = addr.strip_prefix('@') {
                use std::os::linux::net::SocketAddrExt;
                let sa = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                    .expect("abstract");
                s.connect_addr(&sa).expect("connect abstract");
            } else {
                s.connect(addr).expect("connect unix dgram");
            }
            Dgram::Unix(s)
        } else {
            let sa: SocketAddr = addr.parse().expect("inet address");
            let local = if sa.is_ipv6() {
                "[::1]:0"
            } else {
                "127.0.0.1:0"
            };
            let s = UdpSocket::bind(local).expect("bind udp client");
            Dgram::Udp(s, sa)
        };
        d.set_timeout(Some(DEADLINE));
        d
    }

    pub fn set_timeout(&self, t: Option<Duration>) {
        let _ = match self {
            Dgram::Udp(s, _) => s.set_read_timeout(t),
            Dgram::Unix(s) => s.set_read_timeout(t),
        };
    }

    pub fn send(&self, data: &[u8]) -> std::io::Result<usize> {
        match self {
            Dgram::Udp(s, to) => s.send_to(data, to),
            Dgram::Unix(s) => s.send(data),
        }
    }

    pub fn recv(&self) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        let n = match self {
            Dgram::Udp(s, _) => s.recv(&mut buf)?,
            Dgram::Unix(s) => s.recv(&mut buf)?,
        };
        buf.truncate(n);
        Ok(buf)
    }

    /// A probe command as one datagram; the reply without its `\n`.
    pub fn cmd(&self, command: &str) -> String {
        self.send(command.as_bytes()).expect("send datagram");
        let reply = self
            .recv()
            .unwrap_or_else(|e| panic!("no reply to {command}: {e}"));
        String::from_utf8_lossy(&reply)
            .trim_end_matches('\n')
            .to_string()
    }
}

impl Probe {
    /// A probe conversation over an already connected stream.
    pub fn from_stream(s: Stream) -> Probe {
        Probe {
            reader: BufReader::new(s),
        }
    }
}

// ---- dispatch, hook and crash helpers ---------------------------------------

/// One stream request to a probe listener: connect, one command, close.
pub fn stream_cmd(addr: &str, command: &str) -> String {
    Probe::connect(addr).cmd(command)
}

// ---- CLI and lifecycle helpers: see life.rs ---------------------------------
