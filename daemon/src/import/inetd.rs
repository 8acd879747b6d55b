//! inetd.conf, from text to services: one entry per line,
//! `SERVICE SOCKTYPE PROTO WAIT USER SERVER ARGV0 ARGS...`.
//!
//! Pure: text in, [`Service`]s and [`Notes`] out. Reads what
//! openbsd-inetd (Debian's inetd) reads: `host:service` and `[v6addr]:service`,
//! a `host:` line setting the address of the lines after it, `tcp`/`udp`
//! (IPv4 and IPv6), `tcp4`/`tcp6`/`udp4`/`udp6`, `tcp46`/`udp46`, `unix`
//! (the service is a socket path), `wait`/`nowait` with an optional `.max`,
//! `user`, `user:group` and `user.group`, `internal` services, lines that
//! start with whitespace continuing the line before, and `#` comments.
//! Debian's update-inetd disables an entry by prefixing `#<off># `: such an
//! entry is left out with a note. An entry run through `/usr/sbin/tcpd` is
//! unwrapped to the program tcpd would run, with a note that
//! hosts.allow/hosts.deny are not carried over.

use super::model::{Bind, Exec, Internal, Notes, Origin, ParseError, Program, Service, Socktype};
use super::services::Services;
use std::net::IpAddr;

/// tcp_wrappers' program, which runs its first argument.
const TCPD: &str = "/usr/sbin/tcpd";
/// Where tcpd finds a program named without a folder (Debian's REAL_DAEMON_DIR).
const TCPD_DIR: &str = "/usr/sbin";

/// The services of the inetd.conf `file` holding `text`.
pub fn parse(
    file: &str,
    text: &str,
    ports: &Services,
    notes: &mut Notes,
) -> Result<Vec<Service>, ParseError> {
    let mut out = Vec::new();
    let mut host: Option<String> = None;
    for (at, line) in entries(file, text) {
        if let Some(off) = line.strip_prefix("#<off>#") {
            let name = off.split_whitespace().next().unwrap_or("?");
            notes.info(
                &at,
                name,
                "disabled (update-inetd's `#<off>#`): left out".to_string(),
            );
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [only] = words.as_slice() {
            if let Some(h) = only.strip_suffix(':') {
                host = (h != "*").then(|| h.to_string());
                continue;
            }
        }
        if words.len() < 6 {
            return Err(ParseError::new(
                at,
                "expected `SERVICE SOCKTYPE PROTO WAIT USER SERVER [ARGV0 ARGS...]`",
            ));
        }
        if let Some(s) = entry(&at, &words, host.as_deref(), ports, notes)? {
            out.push(s);
        }
    }
    Ok(out)
}

/// The logical lines of `text` with their first line: a line that starts
/// with a blank continues the one before; blank lines end an entry.
fn entries(file: &str, text: &str) -> Vec<(Origin, String)> {
    let mut out: Vec<(Origin, String)> = Vec::new();
    let mut open = false;
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            open = false;
            continue;
        }
        let continues = raw.starts_with([' ', '\t']);
        match out.last_mut() {
            Some((_, prev)) if continues && open => {
                prev.push(' ');
                prev.push_str(raw.trim());
            }
            _ => {
                out.push((Origin::new(file, i + 1), raw.trim().to_string()));
                // A comment is never continued.
                open = !raw.starts_with('#');
            }
        }
    }
    out
}

/// One entry; `Ok(None)` (with a note) when sockhost cannot serve it.
fn entry(
    at: &Origin,
    w: &[&str],
    host: Option<&str>,
    ports: &Services,
    notes: &mut Notes,
) -> Result<Option<Service>, ParseError> {
    let (svc, socktype, proto, wait, user, server) = (w[0], w[1], w[2], w[3], w[4], w[5]);
    let skip = |notes: &mut Notes, attr: &str, why: String| {
        notes.loss(at, attr, format!("{why}: `{svc}` left out"));
        Ok(None)
    };
    let socktype = match socktype {
        "stream" => Socktype::Stream,
        "dgram" => Socktype::Dgram,
        other => {
            return skip(
                notes,
                "socket type",
                format!("`{other}` sockets are not served by sockhost"),
            )
        }
    };
    let (proto, bufs) = proto
        .split_once(',')
        .map_or((proto, None), |(p, b)| (p, Some(b)));
    if let Some(b) = bufs {
        notes.loss(
            at,
            "protocol",
            format!("`{b}` (socket buffer sizes) has no sockhost counterpart"),
        );
    }
    let (wait, max) = wait
        .split_once('.')
        .map_or((wait, None), |(w, m)| (w, Some(m)));
    let wait = match wait {
        "wait" => true,
        "nowait" => false,
        other => {
            return Err(ParseError::new(
                at.clone(),
                format!("`{other}`: expected wait or nowait"),
            ))
        }
    };
    if let Some(m) = max {
        notes.loss(at, "wait", format!(".{m} (a service-wide rate that stops the service): not carried over; sockhost never switches a service off (see rate_limit_per_source)"));
    }
    let (host, svc_name) = split_host(svc, host, proto == "unix");
    let family = match proto {
        "tcp" | "udp" | "tcp46" | "udp46" => Bind::AnyDual,
        "tcp4" | "udp4" => Bind::Any4,
        "tcp6" | "udp6" => Bind::Any6,
        "unix" => Bind::Unix(svc_name.to_string()),
        other => {
            return skip(
                notes,
                "protocol",
                format!("`{other}` is not served by sockhost"),
            )
        }
    };
    let name = svc_name.rsplit('/').next().unwrap_or(svc_name);
    let program = if server == "internal" {
        match Internal::by_name(name) {
            Some(i) => Program::Internal(i),
            None => {
                return skip(
                    notes,
                    "internal",
                    format!("no internal service `{name}` in sockhost"),
                )
            }
        }
    } else {
        Program::Exec(exec(at, server, &w[6..], wait, notes))
    };
    let mut s = Service::new(at.clone(), name, socktype, program);
    s.bind = match (host, family) {
        (_, Bind::Unix(p)) => Bind::Unix(p),
        (None, f) => f,
        (Some(h), _) => match h.trim_start_matches('[').trim_end_matches(']') {
            "localhost" => Bind::Ip(IpAddr::from([127, 0, 0, 1])),
            h => match h.parse() {
                Ok(ip) => Bind::Ip(ip),
                Err(_) => {
                    return skip(
                        notes,
                        "host",
                        format!("`{h}` is not an IP address (names are not resolved)"),
                    )
                }
            },
        },
    };
    if !matches!(s.bind, Bind::Unix(_)) {
        s.port = match ports.port(svc_name, socktype.proto()) {
            Some(p) => p,
            None => {
                return skip(
                    notes,
                    "service",
                    format!("`{svc_name}/{}` is not in /etc/services", socktype.proto()),
                )
            }
        };
    }
    if matches!(s.program, Program::Exec(_)) {
        let (u, g) = user
            .split_once([':', '.'])
            .map_or((user, None), |(u, g)| (u, Some(g)));
        s.user = Some(u.to_string());
        s.group = g.map(str::to_string);
    }
    Ok(Some(s))
}

/// `host:service`, `[v6]:service` or a bare service with the `host:` line's host.
fn split_host<'a>(
    svc: &'a str,
    default: Option<&'a str>,
    unix: bool,
) -> (Option<&'a str>, &'a str) {
    if unix {
        return (None, svc);
    }
    match svc.rsplit_once(':') {
        Some(("*", s)) => (None, s),
        Some((h, s)) => (Some(h), s),
        None => (default, svc),
    }
}

/// The program tcpd would run for `server` started as `argv0` (tcpd runs
/// its argv[0], found in /usr/sbin when it has no folder), with a loss
/// note; any other server as it is.
pub fn unwrap_tcpd(server: &str, argv0: Option<&str>, at: &Origin, notes: &mut Notes) -> String {
    match argv0 {
        Some(real) if server == TCPD && real != "tcpd" && real != TCPD => {
            let program = if real.starts_with('/') {
                real.to_string()
            } else {
                format!("{TCPD_DIR}/{real}")
            };
            notes.loss(at, "tcpd", format!("runs {program} directly: tcp_wrappers' /etc/hosts.allow and /etc/hosts.deny rules are not carried over (use allow/deny)"));
            program
        }
        _ => server.to_string(),
    }
}

/// The program of an entry; `/usr/sbin/tcpd` is unwrapped.
fn exec(at: &Origin, server: &str, args: &[&str], wait: bool, notes: &mut Notes) -> Exec {
    let argv0 = args.first().map(|a| a.to_string());
    let server = unwrap_tcpd(server, argv0.as_deref(), at, notes);
    let mut command = vec![server];
    command.extend(args.iter().skip(1).map(|a| a.to_string()));
    Exec {
        command,
        argv0,
        wait,
        ..Exec::default()
    }
}
