//! The imported services as sockhost config text: one `[[listener]]`
//! table per listener, handlers named relative to `plugin_dir`.
//!
//! Owns the listener names (valid, unique: a name shared by a TCP and a UDP
//! service gets `-tcp`/`-udp`, any other clash a number), the split of a
//! dual-stack service into an IPv4 and an IPv6 listener (sockhost's inet6
//! sockets are IPv6-only; the second one is named `NAME-v6`), and the
//! mixin (a program per connection: `fork`; inetd's `wait`: `sync`; the
//! internal services: `thread`, or `sync` for datagrams). Promises: every
//! string is TOML-quoted, so nothing in an input can break the output.

use super::model::{Bind, Notes, Program, Service, Socktype};
use std::collections::HashMap;
use std::fmt::Write;

/// Longest listener name sockhost accepts.
const MAX_NAME: usize = 64;

/// The config text for `services`; `header` lines become comments at the top.
pub fn emit(services: &[Service], header: &str, notes: &mut Notes) -> String {
    let listeners = split_dual(services, notes);
    let names = unique_names(&listeners);
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "# {}", comment(line));
    }
    for ((svc, v6), name) in listeners.iter().zip(names) {
        out.push('\n');
        listener(&mut out, svc, *v6, &name, notes);
    }
    out
}

/// Each service with whether it is the IPv6 half of a dual-stack pair.
fn split_dual<'s>(services: &'s [Service], notes: &mut Notes) -> Vec<(&'s Service, bool)> {
    let mut out = Vec::new();
    for s in services {
        out.push((s, false));
        if s.bind == Bind::AnyDual {
            out.push((s, true));
            let waits = matches!(&s.program, Program::Exec(e) if e.wait);
            if let Some(n) = s.max_children.filter(|_| !waits) {
                notes.loss(
                    &s.origin,
                    "instances",
                    format!(
                        "{n} holds for each of the IPv4 and IPv6 listeners `{}` and `{}-v6` ({} in all)",
                        s.name,
                        s.name,
                        2 * n
                    ),
                );
            }
        }
    }
    out
}

/// A valid, unique name for each listener.
fn unique_names(listeners: &[(&Service, bool)]) -> Vec<String> {
    let base: Vec<String> = listeners.iter().map(|(s, _)| clean(&s.name)).collect();
    let mut types: HashMap<&str, Vec<Socktype>> = HashMap::new();
    for ((s, _), b) in listeners.iter().zip(&base) {
        types.entry(b.as_str()).or_default().push(s.socktype);
    }
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut names = Vec::new();
    for ((s, v6), b) in listeners.iter().zip(&base) {
        let both = types
            .get(b.as_str())
            .is_some_and(|t| t.contains(&Socktype::Stream) && t.contains(&Socktype::Dgram));
        let mut name = b.clone();
        if both {
            name = format!("{name}-{}", s.socktype.proto());
        }
        if *v6 {
            name.push_str("-v6");
        }
        let n = taken.entry(name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            name = format!("{name}-{n}");
        }
        names.push(fit(name));
    }
    names
}

/// `name` with every character sockhost does not take in a name as `_`.
fn clean(name: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let s: String = name.chars().map(|c| if ok(c) { c } else { '_' }).collect();
    if s.is_empty() {
        "service".into()
    } else {
        s
    }
}

/// At most [`MAX_NAME`] characters, keeping the end (the suffixes).
fn fit(name: String) -> String {
    let n = name.chars().count();
    if n <= MAX_NAME {
        name
    } else {
        name.chars().skip(n - MAX_NAME).collect()
    }
}

/// Each variable once, with the value set last (as the later setting wins
/// in xinetd's `env` and systemd's `Environment=`), where it first appeared.
fn last_wins(env: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in env {
        match out.iter_mut().find(|(seen, _)| seen == k) {
            Some(slot) => slot.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

/// `text` safe in a TOML comment: control characters (a newline in a file
/// name) become `?`.
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A TOML string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML array of strings.
fn list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", inner.join(", "))
}

fn listener(out: &mut String, s: &Service, v6: bool, name: &str, notes: &mut Notes) {
    let (family, address) = match (&s.bind, v6) {
        (Bind::Unix(path), _) => ("unix", path.clone()),
        (Bind::Ip(ip @ std::net::IpAddr::V4(_)), _) => ("inet", format!("{ip}:{}", s.port)),
        (Bind::Ip(ip), _) => ("inet6", format!("[{ip}]:{}", s.port)),
        (Bind::Any6, _) | (Bind::AnyDual, true) => ("inet6", format!("[::]:{}", s.port)),
        (Bind::Any4, _) | (Bind::AnyDual, false) => ("inet", format!("0.0.0.0:{}", s.port)),
    };
    let (mixin, handler) = match &s.program {
        Program::Internal(i) if s.socktype == Socktype::Dgram => ("sync", i.plugin()),
        Program::Internal(i) => ("thread", i.plugin()),
        Program::Exec(e) if e.wait => ("sync", "libsockhost_exec.so"),
        Program::Exec(_) => ("fork", "libsockhost_exec.so"),
    };
    let _ = writeln!(out, "# {}", comment(&format!("{}: {}", s.origin, s.name)));
    let _ = writeln!(out, "[[listener]]");
    let _ = writeln!(out, "name = {}", q(name));
    let _ = writeln!(out, "family = \"{family}\"");
    let _ = writeln!(out, "type = \"{}\"", s.socktype.as_str());
    let _ = writeln!(out, "address = {}", q(&address));
    let _ = writeln!(out, "mixin = \"{mixin}\"");
    let _ = writeln!(out, "handler = \"{handler}\"");
    keys(out, s, mixin, notes);
    if !s.limits.is_empty() {
        let _ = writeln!(out, "[listener.limits]");
        for (k, v) in &s.limits {
            let _ = writeln!(out, "{k} = {v}");
        }
    }
    if let Program::Exec(e) = &s.program {
        let _ = writeln!(out, "[listener.config]");
        let _ = writeln!(out, "command = {}", list(&e.command));
        if let Some(a) = &e.argv0 {
            let _ = writeln!(out, "argv0 = {}", q(a));
        }
        if !e.env.is_empty() {
            let pairs: Vec<String> = last_wins(&e.env)
                .iter()
                .map(|(k, v)| format!("{} = {}", q(k), q(v)))
                .collect();
            let _ = writeln!(out, "env = {{ {} }}", pairs.join(", "));
        }
        if !e.pass_env.is_empty() {
            let mut names: Vec<String> = Vec::new();
            for n in &e.pass_env {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
            let _ = writeln!(out, "pass_env = {}", list(&names));
        }
        if let Some(d) = &e.directory {
            let _ = writeln!(out, "directory = {}", q(d));
        }
        if let Some(stderr) = e.stderr {
            let _ = writeln!(out, "stderr = \"{stderr}\"");
        }
        if e.wait {
            let _ = writeln!(out, "wait = true");
        }
    }
}

/// The optional listener keys, each where sockhost takes it: the limit
/// of programs at once as `max_children` (fork) or `max_threads` (thread;
/// `sync` runs one at a time anyway), per-source limits and TCP_NODELAY on
/// stream listeners, access lists on inet ones, socket file settings on
/// unix paths.
fn keys(out: &mut String, s: &Service, mixin: &str, notes: &mut Notes) {
    let unix = matches!(s.bind, Bind::Unix(_));
    let unix_path = matches!(&s.bind, Bind::Unix(p) if !p.starts_with('@'));
    let stream = s.socktype == Socktype::Stream;
    let strings = [
        ("user", &s.user, true),
        ("group", &s.group, true),
        ("umask", &s.umask, true),
        ("socket_mode", &s.socket_mode, unix_path),
        ("socket_user", &s.socket_user, unix_path),
        ("socket_group", &s.socket_group, unix_path),
    ];
    for (k, v, applies) in strings {
        if let Some(v) = v.as_ref().filter(|_| applies) {
            let _ = writeln!(out, "{k} = {}", q(v));
        }
    }
    let limit = match mixin {
        "fork" => "max_children",
        "thread" => "max_threads",
        _ => "",
    };
    let numbers = [
        ("nice", s.nice, true),
        (limit, s.max_children.map(|n| n as i64), !limit.is_empty()),
        (
            "max_connections_per_source",
            s.max_per_source.map(|n| n as i64),
            stream,
        ),
        ("request_queue_size", s.backlog.map(|n| n as i64), true),
    ];
    for (k, v, applies) in numbers {
        if let Some(v) = v.filter(|_| applies) {
            let _ = writeln!(out, "{k} = {v}");
        }
    }
    if unix && !(s.allow.is_empty() && s.deny.is_empty()) {
        notes.loss(
            &s.origin,
            "only_from",
            "a unix socket has no source address: allow/deny left out (use socket_mode, socket_group)",
        );
    } else {
        if !s.allow.is_empty() {
            let _ = writeln!(out, "allow = {}", list(&s.allow));
        }
        if !s.deny.is_empty() {
            let _ = writeln!(out, "deny = {}", list(&s.deny));
        }
    }
    if s.nodelay && stream && !unix {
        let _ = writeln!(out, "disable_nagle_algorithm = true");
    }
    if s.reuse_port && !unix {
        let _ = writeln!(out, "allow_reuse_port = true");
    }
    if s.access_log {
        let _ = writeln!(out, "access_log = true");
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{Exec, Internal, Origin};
    use super::*;

    fn svc(name: &str, t: Socktype, bind: Bind) -> Service {
        let mut s = Service::new(
            Origin::new("f", 1),
            name,
            t,
            Program::Internal(Internal::Echo),
        );
        s.bind = bind;
        s.port = 7;
        s
    }

    #[test]
    fn names_are_unique_valid_and_say_the_protocol_when_shared() {
        let services = [
            svc("echo", Socktype::Stream, Bind::Any4),
            svc("echo", Socktype::Dgram, Bind::Any4),
            svc("fin ger/x", Socktype::Stream, Bind::AnyDual),
            svc("dup", Socktype::Stream, Bind::Any4),
            svc("dup", Socktype::Stream, Bind::Any4),
        ];
        let mut odd = svc("odd", Socktype::Stream, Bind::Any4);
        odd.origin = Origin::new("/etc/x\n[[listener]]\r", 3);
        let services = [services.as_slice(), &[odd]].concat();
        let text = emit(&services, "hi", &mut Notes::default());
        let doc: toml::Table = toml::from_str(&text).expect("valid TOML");
        let names: Vec<&str> = doc["listener"]
            .as_array()
            .expect("listeners")
            .iter()
            .map(|l| l["name"].as_str().expect("name"))
            .collect();
        assert_eq!(
            names,
            [
                "echo-tcp",
                "echo-udp",
                "fin_ger_x",
                "fin_ger_x-v6",
                "dup",
                "dup-2",
                "odd"
            ]
        );
        assert!(text.contains("address = \"[::]:7\""), "{text}");
        assert!(text.starts_with("# hi\n"), "{text}");
    }

    #[test]
    fn programs_get_exec_keys_and_strings_are_quoted() {
        let mut s = svc(
            "git",
            Socktype::Stream,
            Bind::Ip("127.0.0.1".parse().expect("ip")),
        );
        s.program = Program::Exec(Exec {
            command: vec!["/usr/bin/git".into(), "say \"hi\"\\".into()],
            argv0: Some("git".into()),
            env: vec![("HOME".into(), "/nonexistent".into())],
            pass_env: vec!["LANG".into()],
            wait: false,
            ..Exec::default()
        });
        s.user = Some("nobody".into());
        s.max_children = Some(30);
        s.limits.push(("open_files", "1024".into()));
        let text = emit(&[s], "", &mut Notes::default());
        let doc: toml::Table = toml::from_str(&text).expect("valid TOML");
        let l = &doc["listener"][0];
        assert_eq!(l["mixin"].as_str(), Some("fork"));
        assert_eq!(l["handler"].as_str(), Some("libsockhost_exec.so"));
        assert_eq!(l["address"].as_str(), Some("127.0.0.1:7"));
        assert_eq!(l["user"].as_str(), Some("nobody"));
        assert_eq!(l["max_children"].as_integer(), Some(30));
        assert_eq!(l["limits"]["open_files"].as_integer(), Some(1024));
        let c = &l["config"];
        assert_eq!(c["command"][1].as_str(), Some("say \"hi\"\\"));
        assert_eq!(c["argv0"].as_str(), Some("git"));
        assert_eq!(c["env"]["HOME"].as_str(), Some("/nonexistent"));
        assert_eq!(c["pass_env"][0].as_str(), Some("LANG"));
        assert!(c.get("wait").is_none());
    }

    #[test]
    fn keys_go_only_where_sockhost_takes_them() {
        let mut internal = svc("echo", Socktype::Stream, Bind::Any4);
        internal.max_children = Some(9);
        let mut waits = svc("tftp", Socktype::Dgram, Bind::AnyDual);
        waits.program = Program::Exec(Exec {
            command: vec!["/usr/sbin/in.tftpd".into()],
            wait: true,
            ..Exec::default()
        });
        waits.max_children = Some(9);
        waits.max_per_source = Some(2);
        waits.nodelay = true;
        waits.socket_mode = Some("0660".into());
        let mut unix = svc("u", Socktype::Stream, Bind::Unix("/run/u.sock".into()));
        unix.socket_mode = Some("0660".into());
        unix.nodelay = true;
        let mut notes = Notes::default();
        let text = emit(&[internal, waits, unix], "", &mut notes);
        let doc: toml::Table = toml::from_str(&text).expect("valid TOML");
        let l = |i: usize| doc["listener"][i].as_table().cloned().expect("table");
        assert_eq!(
            l(0)["max_threads"].as_integer(),
            Some(9),
            "thread: max_threads"
        );
        assert!(l(0).get("max_children").is_none());
        for key in [
            "max_children",
            "max_threads",
            "max_connections_per_source",
            "disable_nagle_algorithm",
            "socket_mode",
        ] {
            assert!(
                l(1).get(key).is_none(),
                "{key} on a sync dgram listener:\n{text}"
            );
        }
        assert_eq!(l(3)["socket_mode"].as_str(), Some("0660"));
        assert!(l(3).get("disable_nagle_algorithm").is_none());
        assert!(
            notes.0.is_empty(),
            "a wait service runs one program: {:?}",
            notes.0
        );
    }
}
