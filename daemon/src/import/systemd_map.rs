//! What a `.socket` unit and its service become in sockhost: a
//! [`Service`] per `ListenStream=`/`ListenDatagram=`, running the service's
//! `ExecStart=` through libsockhost_exec.so.
//!
//! Pure: parsed units in, services and notes out. `Accept=yes` is inetd's
//! nowait (the `NAME@.service` template runs once per connection);
//! `Accept=no` and every datagram socket are inetd's wait. Only services
//! that take the socket as stdin (`StandardInput=socket`) can be carried
//! over: one that expects `$LISTEN_FDS` is named as lost. `[Unit]` and
//! `[Install]` are metadata, never a loss.

use super::model::{Bind, Exec, Notes, Origin, Program, Service, Socktype};
use super::systemd::{words, Setting, Unit};

/// systemd's `MaxConnections=` default.
const SYSTEMD_MAX_CONNECTIONS: u64 = 64;

/// The file name of the service `socket` starts: `Service=`, else
/// `STEM@.service` with `Accept=yes`, else `STEM.service`.
pub fn service_name(socket: &Unit, stem: &str) -> String {
    if let Some(s) = socket.last("Socket", "Service") {
        return s.value.clone();
    }
    if accept(socket) {
        format!("{stem}@.service")
    } else {
        format!("{stem}.service")
    }
}

fn accept(socket: &Unit) -> bool {
    socket
        .last("Socket", "Accept")
        .is_some_and(|s| yes(&s.value))
}

fn yes(v: &str) -> bool {
    matches!(v, "yes" | "true" | "on" | "1")
}

/// The `EnvironmentFile=` entries: where, the path, whether optional (`-`).
pub fn environment_files(service: &Unit) -> Vec<(Origin, String, bool)> {
    service
        .all("Service", "EnvironmentFile")
        .into_iter()
        .map(|s| match s.value.strip_prefix('-') {
            Some(p) => (s.at.clone(), p.to_string(), true),
            None => (s.at.clone(), s.value.clone(), false),
        })
        .collect()
}

/// The services of `socket` (the unit `STEM.socket`) starting `service`;
/// `env_files` holds each `EnvironmentFile=`'s text, read by the caller.
pub fn convert(
    stem: &str,
    socket: &Unit,
    service: &Unit,
    env_files: &[(Origin, String, Option<String>)],
    notes: &mut Notes,
) -> Vec<Service> {
    let Some(exec) = program(service, env_files, notes) else {
        return Vec::new();
    };
    let stdin_socket = service
        .last("Service", "StandardInput")
        .is_some_and(|s| s.value == "socket");
    let mut out = Vec::new();
    for s in &socket.settings {
        if s.section != "Socket" {
            continue;
        }
        let socktype = match s.key.as_str() {
            "ListenStream" => Socktype::Stream,
            "ListenDatagram" => Socktype::Dgram,
            k if k.starts_with("Listen") => {
                notes.loss(&s.at, k, "sockhost serves stream and datagram sockets only");
                continue;
            }
            _ => continue,
        };
        if s.value.is_empty() {
            continue;
        }
        let wait = socktype == Socktype::Dgram || !accept(socket);
        if !stdin_socket {
            let how = if wait {
                "the listening socket"
            } else {
                "the connection"
            };
            notes.loss(&s.at, s.key.as_str(), format!("the service takes {how} as $LISTEN_FDS (no StandardInput=socket), which libsockhost_exec.so does not hand over: left out"));
            continue;
        }
        let Some((bind, port)) = listen(&s.value, socket, &s.at, notes) else {
            continue;
        };
        let mut e = exec.clone();
        e.wait = wait;
        let mut svc = Service::new(s.at.clone(), stem, socktype, Program::Exec(e));
        svc.bind = bind;
        svc.port = port;
        if !wait {
            svc.max_children = Some(SYSTEMD_MAX_CONNECTIONS);
        }
        socket_keys(&mut svc, socket, wait, notes);
        service_keys(&mut svc, service, notes);
        out.push(svc);
    }
    out
}

/// A `Listen*=` address: a port (IPv4 and IPv6), `ADDR:PORT`, `[V6]:PORT`, a path or `@name`.
fn listen(value: &str, socket: &Unit, at: &Origin, notes: &mut Notes) -> Option<(Bind, u16)> {
    let v6only = socket
        .last("Socket", "BindIPv6Only")
        .is_some_and(|s| s.value == "ipv6-only");
    let any = if v6only { Bind::Any6 } else { Bind::AnyDual };
    if value.starts_with('/') || value.starts_with('@') {
        return Some((Bind::Unix(value.to_string()), 0));
    }
    if let Ok(port) = value.parse::<u16>() {
        return Some((any, port));
    }
    let parsed = value.parse::<std::net::SocketAddr>();
    match parsed {
        Ok(sa) if sa.ip().is_unspecified() && sa.is_ipv6() => Some((any, sa.port())),
        Ok(sa) if sa.ip().is_unspecified() => Some((Bind::Any4, sa.port())),
        Ok(sa) => Some((Bind::Ip(sa.ip()), sa.port())),
        Err(_) => {
            notes.loss(at, "Listen", format!("`{value}` is not an address sockhost binds (interface-scoped and vsock addresses are not): left out"));
            None
        }
    }
}

/// The program from `ExecStart=` and the service's environment.
fn program(
    service: &Unit,
    env_files: &[(Origin, String, Option<String>)],
    notes: &mut Notes,
) -> Option<Exec> {
    let starts = service.all("Service", "ExecStart");
    let Some(start) = starts.last() else {
        let at = service
            .settings
            .first()
            .map_or(Origin::new("?", 1), |s| s.at.clone());
        notes.loss(&at, "ExecStart", "missing: nothing to run, left out");
        return None;
    };
    if starts.len() > 1 {
        notes.loss(
            &start.at,
            "ExecStart",
            "only the last command is run (sockhost runs one program per request)",
        );
    }
    let mut v = start.value.as_str();
    let mut argv0_given = false;
    while let Some(c) = v.chars().next().filter(|c| "-@:+!".contains(*c)) {
        match c {
            '@' => argv0_given = true,
            '+' | '!' => notes.loss(&start.at, "ExecStart", format!("the `{c}` prefix (privileges beyond User=) has no counterpart: the program runs as the listener's user")),
            _ => {}
        }
        v = &v[1..];
    }
    let mut argv = match words(v) {
        Ok(w) if !w.is_empty() => w,
        Ok(_) => {
            notes.loss(&start.at, "ExecStart", "empty: left out");
            return None;
        }
        Err(e) => {
            notes.loss(&start.at, "ExecStart", format!("{e}: left out"));
            return None;
        }
    };
    for w in argv.iter_mut() {
        if w.contains('$') {
            notes.loss(
                &start.at,
                "ExecStart",
                format!("`{w}`: environment variables are not expanded in the command"),
            );
        }
        if w.replace("%%", "").contains('%') {
            notes.loss(
                &start.at,
                "ExecStart",
                format!("`{w}`: unit specifiers (%i, %n, ...) are not resolved"),
            );
        }
        *w = w.replace("%%", "%");
    }
    let argv0 = if argv0_given && argv.len() > 1 {
        Some(argv.remove(1))
    } else {
        None
    };
    let mut env = Vec::new();
    for (at, path, text) in env_files {
        if let Some(text) = text {
            notes.info(
                at,
                "EnvironmentFile",
                format!("{path} read now: its variables are written into `env`"),
            );
            env.extend(env_file(text));
        }
    }
    for s in service.all("Service", "Environment") {
        match words(&s.value) {
            Ok(ws) => env.extend(
                ws.iter()
                    .filter_map(|w| w.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string())),
            ),
            Err(e) => notes.loss(&s.at, "Environment", format!("{e}: left out")),
        }
    }
    Some(Exec {
        command: argv,
        argv0,
        env,
        ..Exec::default()
    })
}

/// `KEY=VALUE` lines of an environment file, quotes removed.
fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let unq = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_string(), unq.to_string())
        })
        .collect()
}

/// `[Socket]` settings other than the addresses.
fn socket_keys(svc: &mut Service, socket: &Unit, wait: bool, notes: &mut Notes) {
    for s in socket.settings.iter().filter(|s| s.section == "Socket") {
        let n = || s.value.parse::<u64>().ok();
        match s.key.as_str() {
            k if k.starts_with("Listen") => {}
            "Accept" | "Service" | "BindIPv6Only" => {}
            "MaxConnections" if !wait => svc.max_children = n(),
            "MaxConnectionsPerSource" if !wait => svc.max_per_source = n(),
            "MaxConnections" | "MaxConnectionsPerSource" => {}
            "Backlog" => svc.backlog = n(),
            "ReusePort" => svc.reuse_port = yes(&s.value),
            "NoDelay" => svc.nodelay = yes(&s.value),
            "SocketMode" => svc.socket_mode = Some(s.value.clone()),
            "SocketUser" => svc.socket_user = Some(s.value.clone()),
            "SocketGroup" => svc.socket_group = Some(s.value.clone()),
            "FreeBind" if !matches!(svc.bind, Bind::Ip(_)) => {}
            "RemoveOnStop" | "DirectoryMode" => {}
            k => unsupported(s, k, notes),
        }
    }
}

/// `[Service]` settings other than the command and environment.
fn service_keys(svc: &mut Service, service: &Unit, notes: &mut Notes) {
    let (mut directory, mut stderr) = (None, None);
    for s in service.settings.iter().filter(|s| s.section == "Service") {
        let v = s.value.as_str();
        match s.key.as_str() {
            "ExecStart" | "Environment" | "EnvironmentFile" | "StandardInput" => {}
            "Type" if matches!(v, "simple" | "exec" | "oneshot") => {}
            "User" => svc.user = Some(v.to_string()),
            "Group" => svc.group = Some(v.to_string()),
            "WorkingDirectory" => directory = Some(v.trim_start_matches('-').to_string()),
            "StandardError" => {
                stderr = match v {
                    "socket" | "inherit" => Some("connection"),
                    "null" => Some("null"),
                    _ => Some("log"),
                }
            }
            "StandardOutput" if matches!(v, "socket" | "inherit") => {}
            "Nice" => svc.nice = v.parse().ok(),
            "UMask" => svc.umask = Some(format!("{v:0>4}")),
            "LimitNOFILE" => limit(svc, "open_files", v, s, notes),
            "LimitNPROC" => limit(svc, "processes", v, s, notes),
            "LimitCPU" => limit(svc, "cpu_seconds", v, s, notes),
            "LimitAS" => match v.parse::<u64>() {
                Ok(_) => svc.limits.push(("memory", format!("\"{v}\""))),
                Err(_) if v == "infinity" => {}
                Err(_) => unsupported(s, "LimitAS", notes),
            },
            "SuccessExitStatus" => notes.loss(
                &s.at,
                "SuccessExitStatus",
                "a non-zero exit always counts as a failed request in sockhost's metrics and log",
            ),
            k => unsupported(s, k, notes),
        }
    }
    if let Program::Exec(e) = &mut svc.program {
        e.directory = directory;
        // No StandardError=: systemd's default (inherit, from
        // StandardInput=socket) is the connection; the output keeps
        // sockhost's deliberate default, the log (docs/migrating.md).
        e.stderr = stderr;
    }
}

fn limit(svc: &mut Service, key: &'static str, v: &str, s: &Setting, notes: &mut Notes) {
    match v.parse::<u64>() {
        Ok(n) => svc.limits.push((key, n.to_string())),
        Err(_) if v == "infinity" => {}
        Err(_) => unsupported(s, &s.key, notes),
    }
}

fn unsupported(s: &Setting, key: &str, notes: &mut Notes) {
    notes.loss(
        &s.at,
        key,
        format!(
            "`{}` has no sockhost counterpart, not carried over",
            s.value
        ),
    );
}
