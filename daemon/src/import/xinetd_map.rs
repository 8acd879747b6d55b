//! What xinetd's attributes become in sockhost: one [`Service`] per
//! enabled `service` block, with `defaults` applied, and a [`Notes`] entry
//! for every attribute that cannot be carried over.
//!
//! Pure: entries in (from [`super::xinetd::parse`]), services and notes
//! out. Follows xinetd(8)'s rules: `defaults` gives every service its
//! attributes, which a service's `=` replaces and `+=`/`-=` extend; a
//! service needs `socket_type` and `wait`, and `user` and `server` unless
//! it is INTERNAL; the port is `port`, or the service name looked up in
//! /etc/services (UNLISTED services must give `port`); `server_args` holds
//! argv[0] only with `flags = NAMEINARGS`.

use super::access::{network, EVERYONE};
use super::model::{Bind, Exec, Internal, Notes, Origin, Program, Service, Socktype};
use super::services::Services;
use super::xinetd::{Attr, Block, Op};
use std::collections::BTreeMap;

/// An attribute's resolved values, the line that last set them and the
/// line each value comes from.
#[derive(Clone, Debug)]
struct Value {
    at: Origin,
    values: Vec<String>,
    lines: Vec<Origin>,
}

type Attrs = BTreeMap<String, Value>;

/// The services of `blocks` under `defaults`.
pub fn convert(
    defaults: &[Attr],
    blocks: &[Block],
    ports: &Services,
    notes: &mut Notes,
) -> Vec<Service> {
    let mut base = Attrs::new();
    apply(
        &mut base,
        defaults
            .iter()
            .filter(|a| !matches!(a.key.as_str(), "enabled" | "disabled")),
    );
    let listed = |key: &str| -> Option<Vec<String>> {
        defaults
            .iter()
            .filter(|a| a.key == key)
            .map(|a| a.values.clone())
            .reduce(|mut a, b| {
                a.extend(b);
                a
            })
    };
    let (enabled, disabled) = (listed("enabled"), listed("disabled"));
    let mut out = Vec::new();
    for block in blocks {
        let mut attrs = base.clone();
        apply(&mut attrs, block.attrs.iter());
        let id = attrs.get("id").and_then(|v| v.values.first().cloned());
        let names = [Some(block.name.clone()), id.clone()];
        let off_by_list = disabled
            .as_ref()
            .is_some_and(|d| names.iter().flatten().any(|n| d.contains(n)))
            || enabled
                .as_ref()
                .is_some_and(|e| !names.iter().flatten().any(|n| e.contains(n)));
        if let Some(v) = attrs.get("disable").filter(|v| v.values == ["yes"]) {
            notes.info(
                &v.at,
                "disable",
                format!("service `{}` is disabled: left out", block.name),
            );
            continue;
        }
        if off_by_list {
            notes.info(
                &block.at,
                "disabled",
                format!(
                    "service `{}` is disabled in `defaults`: left out",
                    block.name
                ),
            );
            continue;
        }
        if let Some(s) = service(block, &attrs, id.as_deref(), ports, notes) {
            out.push(s);
        }
    }
    out
}

/// Apply `attrs` in order onto `to`.
fn apply<'a>(to: &mut Attrs, attrs: impl Iterator<Item = &'a Attr>) {
    for a in attrs {
        let slot = to.entry(a.key.clone()).or_insert_with(|| Value {
            at: a.at.clone(),
            values: Vec::new(),
            lines: Vec::new(),
        });
        slot.at = a.at.clone();
        if a.op == Op::Set {
            slot.values.clear();
            slot.lines.clear();
        }
        if a.op == Op::Remove {
            let keep: Vec<bool> = slot.values.iter().map(|v| !a.values.contains(v)).collect();
            let mut k = keep.iter();
            slot.values.retain(|_| *k.next().unwrap_or(&true));
            let mut k = keep.iter();
            slot.lines.retain(|_| *k.next().unwrap_or(&true));
        } else {
            slot.values.extend(a.values.iter().cloned());
            slot.lines.extend(a.values.iter().map(|_| a.at.clone()));
        }
    }
}

/// One enabled service block, or `None` (with a note) when it cannot be served.
fn service(
    block: &Block,
    attrs: &Attrs,
    id: Option<&str>,
    ports: &Services,
    notes: &mut Notes,
) -> Option<Service> {
    let one = |k: &str| {
        attrs
            .get(k)
            .and_then(|v| v.values.first().map(String::as_str))
    };
    let at = |k: &str| attrs.get(k).map_or(block.at.clone(), |v| v.at.clone());
    let words = |k: &str| attrs.get(k).map(|v| v.values.clone()).unwrap_or_default();
    let left_out = |notes: &mut Notes, k: &str, why: String| {
        notes.loss(
            &at(k),
            k,
            format!("{why}: service `{}` left out", block.name),
        );
        None
    };
    let types = words("type");
    let flags = words("flags");
    let socktype = match one("socket_type") {
        Some("stream") => Socktype::Stream,
        Some("dgram") => Socktype::Dgram,
        Some(other) => {
            return left_out(
                notes,
                "socket_type",
                format!("`{other}` sockets are not served by sockhost"),
            )
        }
        None => {
            return left_out(
                notes,
                "socket_type",
                "missing (xinetd refuses such a service too)".into(),
            )
        }
    };
    for t in &types {
        if matches!(t.as_str(), "RPC" | "TCPMUX" | "TCPMUXPLUS") {
            return left_out(
                notes,
                "type",
                format!("{t} services are not served by sockhost"),
            );
        }
    }
    let internal = types.iter().any(|t| t == "INTERNAL");
    let wait = match one("wait") {
        Some("yes") => true,
        Some("no") => false,
        _ if internal => socktype == Socktype::Dgram,
        _ => return left_out(notes, "wait", "missing or not yes/no".into()),
    };
    let program = if internal {
        match Internal::by_name(&block.name) {
            Some(i) => Program::Internal(i),
            None => {
                return left_out(
                    notes,
                    "type",
                    format!("no internal service `{}` in sockhost", block.name),
                )
            }
        }
    } else {
        let Some(server) = one("server") else {
            return left_out(notes, "server", "missing".into());
        };
        let mut args = words("server_args");
        let argv0 = if flags.iter().any(|f| f == "NAMEINARGS") {
            (!args.is_empty()).then(|| args.remove(0))
        } else {
            Some(server.rsplit('/').next().unwrap_or(server).to_string())
        };
        let server = super::inetd::unwrap_tcpd(server, argv0.as_deref(), &at("server"), notes);
        let mut command = vec![server];
        command.extend(args);
        let env = words("env")
            .iter()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        Program::Exec(Exec {
            command,
            argv0,
            env,
            pass_env: words("passenv"),
            wait,
            ..Exec::default()
        })
    };
    let mut s = Service::new(
        block.at.clone(),
        id.unwrap_or(&block.name),
        socktype,
        program,
    );
    s.bind = bind(
        one("bind").or(one("interface")),
        &flags,
        one("v6only") == Some("yes"),
        &at("bind"),
        notes,
    )?;
    let proto = one("protocol").unwrap_or(socktype.proto());
    let proto = proto.trim_end_matches('6');
    s.port = match one("port") {
        Some(p) => match p.parse() {
            Ok(n) => n,
            Err(_) => return left_out(notes, "port", format!("`{p}` is not a port number")),
        },
        None if types.iter().any(|t| t == "UNLISTED") => {
            return left_out(notes, "port", "an UNLISTED service needs one".into())
        }
        None => match ports.port(&block.name, proto) {
            Some(p) => p,
            None => {
                return left_out(
                    notes,
                    "port",
                    format!("`{}/{proto}` is not in /etc/services", block.name),
                )
            }
        },
    };
    if !internal {
        s.user = one("user").map(str::to_string);
        s.group = one("group").map(str::to_string);
    }
    rest(&mut s, attrs, notes);
    Some(s)
}

/// The address from `bind`/`interface` and the IPv4/IPv6 flags.
fn bind(
    addr: Option<&str>,
    flags: &[String],
    v6only: bool,
    at: &Origin,
    notes: &mut Notes,
) -> Option<Bind> {
    if let Some(a) = addr {
        return match a.parse() {
            Ok(ip) => Some(Bind::Ip(ip)),
            Err(_) => {
                notes.loss(
                    at,
                    "bind",
                    format!(
                        "`{a}` is not an IP address (names are not resolved): service left out"
                    ),
                );
                None
            }
        };
    }
    Some(match (flags.iter().any(|f| f == "IPv6"), v6only) {
        (true, true) => Bind::Any6,
        (true, false) => Bind::AnyDual,
        (false, _) => Bind::Any4,
    })
}

/// Every other attribute: carried over, harmless, or named as a loss.
fn rest(s: &mut Service, attrs: &Attrs, notes: &mut Notes) {
    for (key, v) in attrs {
        let first = v.values.first().map(String::as_str).unwrap_or("");
        let number = || first.parse::<u64>().ok();
        match key.as_str() {
            "id" | "type" | "socket_type" | "protocol" | "wait" | "user" | "group" | "server"
            | "server_args" | "env" | "passenv" | "port" | "bind" | "interface" | "v6only"
            | "disable" => {}
            "instances" => s.max_children = number(),
            "per_source" => s.max_per_source = number(),
            "nice" => s.nice = first.parse().ok(),
            "umask" => s.umask = Some(format!("{:0>4}", first)),
            "only_from" if v.values.is_empty() => {
                s.deny = EVERYONE.iter().map(|e| e.to_string()).collect()
            }
            "only_from" => s.allow = networks(v, key, notes),
            "no_access" => s.deny.extend(networks(v, key, notes)),
            "flags" => flags(s, &v.values, &v.at, notes),
            "rlimit_as" => limit(s, "memory", first, true, key, &v.at, notes),
            "rlimit_cpu" => limit(s, "cpu_seconds", first, false, key, &v.at, notes),
            "rlimit_files" => limit(s, "open_files", first, false, key, &v.at, notes),
            "log_on_success" => log_on_success(s, &v.values, &v.at, notes),
            "groups" if first == "no" => {}
            "log_on_failure" if v.values.is_empty() => {}
            _ => notes.loss(&v.at, key, why_not(key)),
        }
    }
    crossing(s, attrs, notes);
}

/// Why an attribute sockhost has no counterpart for is left out.
fn why_not(key: &str) -> String {
    match key {
        "access_times" => "sockhost has no time-of-day access control",
        "redirect" => "sockhost does not forward connections to another host",
        "banner" | "banner_success" | "banner_fail" => "sockhost sends no banner files (only `refuse_message` on a refusal)",
        "cps" => "no service-wide connection rate: sockhost limits per source (`rate_limit_per_source`) and never switches a service off",
        "max_load" => "sockhost does not refuse by load average",
        "log_type" => "sockhost logs where the daemon's --log says (journald, stderr, syslog, a file), not per service",
        "log_on_failure" => "refused connections are counted in sockhost_requests_refused_total{reason}, not logged one by one",
        "groups" => "programs run with no supplementary groups",
        "rlimit_data" | "rlimit_rss" | "rlimit_stack" => "no such [listener.limits] key",
        "deny_time" => "sockhost does not ban sources for a time",
        "mdns" => "sockhost does not announce services",
        "libwrap" => "tcp_wrappers' hosts.allow/hosts.deny are not consulted",
        "rpc_version" | "rpc_number" => "RPC services are not served",
        "enabled" | "disabled" => "only meaningful in `defaults`",
        _ => "unknown attribute, not carried over",
    }
    .to_string()
}

/// `only_from`/`no_access` entries as networks; names are named as lost,
/// at the line that gave them.
fn networks(v: &Value, key: &str, notes: &mut Notes) -> Vec<String> {
    let mut out = Vec::new();
    for (e, at) in v.values.iter().zip(&v.lines) {
        match network(e) {
            Some(n) => out.extend(n),
            None => notes.loss(
                at,
                key,
                format!("`{e}`: host and network names are not resolved, left out"),
            ),
        }
    }
    out
}

/// xinetd lets the more specific of only_from and no_access win; sockhost's
/// deny always wins: name an allowed network inside a denied one.
fn crossing(s: &Service, attrs: &Attrs, notes: &mut Notes) {
    let nets =
        |v: &[String]| -> Vec<ipnet::IpNet> { v.iter().filter_map(|n| n.parse().ok()).collect() };
    let (allow, deny) = (nets(&s.allow), nets(&s.deny));
    for a in &allow {
        if let Some(d) = deny
            .iter()
            .find(|d| d.contains(a) && d.prefix_len() < a.prefix_len())
        {
            let at = attrs
                .get("only_from")
                .map_or(s.origin.clone(), |v| v.at.clone());
            notes.loss(&at, "only_from", format!("{a} is inside no_access {d}: xinetd lets the more specific one win, sockhost's deny always wins"));
        }
    }
}

fn flags(s: &mut Service, flags: &[String], at: &Origin, notes: &mut Notes) {
    for f in flags {
        match f.as_str() {
            "IPv4" | "IPv6" | "NAMEINARGS" | "NOLIBWRAP" | "REUSE" => {}
            "NODELAY" => s.nodelay = true,
            other => notes.loss(at, "flags", format!("{other} has no sockhost counterpart")),
        }
    }
}

fn limit(
    s: &mut Service,
    key: &'static str,
    value: &str,
    size: bool,
    attr: &str,
    at: &Origin,
    notes: &mut Notes,
) {
    if value.eq_ignore_ascii_case("UNLIMITED") {
        return;
    }
    let digits = value.trim_end_matches(['K', 'k', 'M', 'm']);
    if digits.parse::<u64>().is_err() || (!size && digits != value) {
        notes.loss(at, attr, format!("`{value}` is not a limit sockhost reads"));
        return;
    }
    let text = if size {
        format!("\"{}\"", value.to_ascii_uppercase())
    } else {
        value.to_string()
    };
    s.limits.push((key, text));
}

fn log_on_success(s: &mut Service, items: &[String], at: &Origin, notes: &mut Notes) {
    for i in items {
        match i.as_str() {
            "PID" | "HOST" | "EXIT" | "DURATION" => s.access_log = true,
            other => notes.loss(
                at,
                "log_on_success",
                format!("{other} is not in sockhost's access log"),
            ),
        }
    }
}
