//! What an import produces before it becomes text: the services found in
//! xinetd, inetd or systemd files ([`Service`]), the notes about what was
//! left out ([`Note`]) and the parse errors ([`ParseError`]).
//!
//! Promises: every service and note carries the file and line it came
//! from, so whatever the importer cannot carry over is named as
//! `FILE:LINE: attribute: why`. Knows nothing of any input format and never
//! touches the file system; [`super::emit`] turns the model into TOML.

use std::fmt;
use std::net::IpAddr;

/// Where something was read: a file and a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

impl Origin {
    pub fn new(file: &str, line: usize) -> Origin {
        Origin {
            file: file.to_string(),
            line,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// An input that cannot be read or parsed: `FILE:LINE: why` (exit 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub at: Origin,
    pub why: String,
}

impl ParseError {
    pub fn new(at: Origin, why: impl Into<String>) -> ParseError {
        ParseError {
            at,
            why: why.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.why)
    }
}

/// Something the output lacks (`loss`: exit 3) or only worth telling (a
/// disabled service left out, a value read at import time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub at: Origin,
    pub attribute: String,
    pub why: String,
    pub loss: bool,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.at, self.attribute, self.why)
    }
}

/// The notes of one import, collected as the parsers go.
#[derive(Debug, Default)]
pub struct Notes(pub Vec<Note>);

impl Notes {
    /// Something the output lacks.
    pub fn loss(&mut self, at: &Origin, attribute: &str, why: impl Into<String>) {
        self.push(at, attribute, why.into(), true);
    }

    /// Something worth telling that the output does not lack.
    pub fn info(&mut self, at: &Origin, attribute: &str, why: impl Into<String>) {
        self.push(at, attribute, why.into(), false);
    }

    fn push(&mut self, at: &Origin, attribute: &str, why: String, loss: bool) {
        self.0.push(Note {
            at: at.clone(),
            attribute: attribute.to_string(),
            why,
            loss,
        });
    }

    /// Whether any note is a loss.
    pub fn any_loss(&self) -> bool {
        self.0.iter().any(|n| n.loss)
    }
}

/// The socket type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Socktype {
    Stream,
    Dgram,
}

impl Socktype {
    pub fn as_str(self) -> &'static str {
        match self {
            Socktype::Stream => "stream",
            Socktype::Dgram => "dgram",
        }
    }

    /// The inet protocol name: `tcp` or `udp`.
    pub fn proto(self) -> &'static str {
        match self {
            Socktype::Stream => "tcp",
            Socktype::Dgram => "udp",
        }
    }
}

/// Where a service listens (the port is apart, in [`Service::port`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bind {
    /// Every IPv4 address.
    Any4,
    /// Every IPv6 address, IPv6 only.
    Any6,
    /// Every address, IPv4 and IPv6: two listeners, as sockhost's inet6
    /// sockets are IPv6-only.
    AnyDual,
    /// One address.
    Ip(IpAddr),
    /// A unix socket path or `@abstract` name.
    Unix(String),
}

/// The internal services sockhost has plugins for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Internal {
    Echo,
    Discard,
    Daytime,
    Chargen,
    Time,
}

impl Internal {
    /// The internal service of this name (inetd's and xinetd's names).
    pub fn by_name(name: &str) -> Option<Internal> {
        Some(match name {
            "echo" => Internal::Echo,
            "discard" => Internal::Discard,
            "daytime" => Internal::Daytime,
            "chargen" => Internal::Chargen,
            "time" => Internal::Time,
            _ => return None,
        })
    }

    /// The plugin serving it, relative to `plugin_dir`.
    pub fn plugin(self) -> &'static str {
        match self {
            Internal::Echo => "libsockhost_echo.so",
            Internal::Discard => "libsockhost_discard.so",
            Internal::Daytime => "libsockhost_daytime.so",
            Internal::Chargen => "libsockhost_chargen.so",
            Internal::Time => "libsockhost_time.so",
        }
    }
}

/// A program run for each request (libsockhost_exec.so's keys).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exec {
    pub command: Vec<String>,
    pub argv0: Option<String>,
    pub env: Vec<(String, String)>,
    pub pass_env: Vec<String>,
    pub directory: Option<String>,
    /// `log`, `connection` or `null`; `None`: the plugin's default (log).
    pub stderr: Option<&'static str>,
    pub wait: bool,
}

/// What serves the requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    Internal(Internal),
    Exec(Exec),
}

/// One service to serve: one listener, or two for [`Bind::AnyDual`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub origin: Origin,
    /// The name it had in the input (xinetd's `id`, the service name, the unit).
    pub name: String,
    pub socktype: Socktype,
    pub bind: Bind,
    /// Unused for unix sockets.
    pub port: u16,
    pub program: Program,
    pub user: Option<String>,
    pub group: Option<String>,
    pub nice: Option<i64>,
    pub umask: Option<String>,
    pub max_children: Option<u64>,
    pub max_per_source: Option<u64>,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub nodelay: bool,
    pub access_log: bool,
    pub backlog: Option<u64>,
    pub reuse_port: bool,
    /// `[listener.limits]` keys and their values as TOML text, e.g.
    /// `("open_files", "1024")`, `("memory", "\"8M\"")`.
    pub limits: Vec<(&'static str, String)>,
    pub socket_mode: Option<String>,
    pub socket_user: Option<String>,
    pub socket_group: Option<String>,
}

impl Service {
    /// A service with nothing but what every one has.
    pub fn new(origin: Origin, name: &str, socktype: Socktype, program: Program) -> Service {
        Service {
            origin,
            name: name.to_string(),
            socktype,
            bind: Bind::Any4,
            port: 0,
            program,
            user: None,
            group: None,
            nice: None,
            umask: None,
            max_children: None,
            max_per_source: None,
            allow: Vec::new(),
            deny: Vec::new(),
            nodelay: false,
            access_log: false,
            backlog: None,
            reuse_port: false,
            limits: Vec::new(),
            socket_mode: None,
            socket_user: None,
            socket_group: None,
        }
    }
}
