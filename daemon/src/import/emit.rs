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
        let _ = writeln!(out, "# {line}");
    }
    for ((svc, v6), name) in listeners.iter().zip(names) {
        out.push('\n');
        listener(&mut out, svc, *v6, &name);
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
            if let Some(n) = s.max_children {
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

/// A TOML string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML array of strings.
fn list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", inner.join(", "))
}

fn listener(out: &mut String, s: &Service, v6: bool, name: &str) {
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
    let _ = writeln!(out, "# {}: {}", s.origin, s.name);
    let _ = writeln!(out, "[[listener]]");
    let _ = writeln!(out, "name = {}", q(name));
    let _ = writeln!(out, "family = \"{family}\"");
    let _ = writeln!(out, "type = \"{}\"", s.socktype.as_str());
    let _ = writeln!(out, "address = {}", q(&address));
    let _ = writeln!(out, "mixin = \"{mixin}\"");
    let _ = writeln!(out, "handler = \"{handler}\"");
    keys(out, s);
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
            let pairs: Vec<String> = e
                .env
                .iter()
                .map(|(k, v)| format!("{} = {}", q(k), q(v)))
                .collect();
            let _ = writeln!(out, "env = {{ {} }}", pairs.join(", "));
        }
        if !e.pass_env.is_empty() {
            let _ = writeln!(out, "pass_env = {}", list(&e.pass_env));
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

/// The optional listener keys.
fn keys(out: &mut String, s: &Service) {
    let strings = [
        ("user", &s.user),
        ("group", &s.group),
        ("umask", &s.umask),
        ("socket_mode", &s.socket_mode),
        ("socket_user", &s.socket_user),
        ("socket_group", &s.socket_group),
    ];
    for (k, v) in strings {
        if let Some(v) = v {
            let _ = writeln!(out, "{k} = {}", q(v));
        }
    }
    let numbers = [
        ("nice", s.nice),
        ("max_children", s.max_children.map(|n| n as i64)),
        (
            "max_connections_per_source",
            s.max_per_source.map(|n| n as i64),
        ),
        ("request_queue_size", s.backlog.map(|n| n as i64)),
    ];
    for (k, v) in numbers {
        if let Some(v) = v {
            let _ = writeln!(out, "{k} = {v}");
        }
    }
    if !s.allow.is_empty() {
        let _ = writeln!(out, "allow = {}", list(&s.allow));
    }
    if !s.deny.is_empty() {
        let _ = writeln!(out, "deny = {}", list(&s.deny));
    }
    if s.nodelay {
        let _ = writeln!(out, "disable_nagle_algorithm = true");
    }
    if s.reuse_port {
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
                "dup-2"
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
}
