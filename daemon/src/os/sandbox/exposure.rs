//! `sockhostctl security`: what each listener's worker may do, worked out
//! from the config file as the worker would, and an exposure score from 0
//! (boxed in) to 10 (can do whatever its user can), as
//! `systemd-analyze security` rates units.
//!
//! Owns the weights (documented in docs/sandbox.md):
//! runs as root 2.5; files not limited by Landlock 2.5; a `read_write` path
//! 0.5; `network = "any"` 1.5; programs may be executed 1.0; namespaces,
//! ptrace, modules and identity changes not filtered 2.0; signals and
//! abstract unix sockets not scoped 0.5. Under `log` nothing is blocked, so
//! it scores as `off`. The user is the listener's, else the daemon's, else
//! root; limits are shown, not scored. Promises: reads only the config and the files it
//! names; never contacts the daemon. Never changes anything.

use super::needs::{self, Access};
use crate::config::{Config, ListenerConfig, Network, SandboxMode};
use std::fmt::Write;

/// One scored line: what, and the points it adds (0 when boxed).
struct Item {
    what: &'static str,
    text: String,
    points: f64,
}

/// The report for `listener` (every listener when None); Err names an
/// unknown listener.
pub fn report(config: &Config, listener: Option<&str>) -> Result<String, String> {
    let chosen: Vec<&ListenerConfig> = config
        .listeners
        .iter()
        .filter(|l| listener.is_none_or(|n| l.name == n))
        .collect();
    if chosen.is_empty() {
        if let Some(n) = listener {
            return Err(format!(
                "no listener named {n} in {}",
                config.file.display()
            ));
        }
    }
    let mut out = String::new();
    let mut summary = Vec::new();
    for l in chosen {
        let (text, score) = one(config, l);
        out.push_str(&text);
        out.push('\n');
        summary.push((l.name.as_str(), score));
    }
    out.push_str("LISTENER                         EXPOSURE\n");
    for (name, score) in summary {
        let _ = writeln!(out, "{name:<32} {score:>4.1} {}", rating(score));
    }
    Ok(out)
}

/// systemd-analyze's words for a score.
fn rating(score: f64) -> &'static str {
    match score {
        s if s < 2.0 => "OK",
        s if s < 5.0 => "MEDIUM",
        s if s < 8.0 => "EXPOSED",
        _ => "UNSAFE",
    }
}

fn limits(l: &crate::config::Limits) -> String {
    let show = |name: &str, v: Option<u64>| v.map(|v| format!("{name}={v}"));
    let set: Vec<String> = [
        show("memory", l.memory),
        show("open_files", l.open_files),
        show("processes", l.processes),
        show("cpu_seconds", l.cpu_seconds),
    ]
    .into_iter()
    .flatten()
    .collect();
    if set.is_empty() {
        "none set (inherited from the daemon)".into()
    } else {
        set.join(" ")
    }
}

fn one(config: &Config, l: &ListenerConfig) -> (String, f64) {
    let sb = &l.sandbox;
    let boxed = sb.mode == SandboxMode::Enforce;
    let user = l
        .user
        .clone()
        .or_else(|| config.daemon.user.clone())
        .unwrap_or_else(|| "root".into());
    let mut items = vec![
        Item {
            what: "user",
            text: user.clone(),
            points: if user == "root" { 2.5 } else { 0.0 },
        },
        Item {
            what: "limits",
            text: limits(&l.limits),
            points: 0.0,
        },
    ];
    if boxed {
        match needs::grants(l) {
            Ok(grants) => {
                let mut text = String::from("Landlock: only these");
                for g in &grants {
                    let how = match g.access {
                        Access::Read => "read",
                        Access::ReadExec => "read+exec",
                        Access::ReadWrite => "read-write",
                        Access::FileReadWrite => "read-write (file)",
                    };
                    let path = if g.why == "/proc/self" {
                        "/proc/<worker pid>".to_owned()
                    } else {
                        g.path.display().to_string()
                    };
                    let _ = write!(text, "\n             {how:<17} {path}  ({})", g.why);
                }
                items.push(Item {
                    what: "files",
                    text,
                    points: 0.0,
                });
            }
            Err(why) => items.push(Item {
                what: "files",
                text: format!("the worker would not start: {why}"),
                points: 0.0,
            }),
        }
        if !sb.read_write.is_empty() {
            items.push(Item {
                what: "writes",
                text: format!("{} read_write path(s)", sb.read_write.len()),
                points: 0.5,
            });
        }
    } else {
        items.push(Item {
            what: "files",
            text: format!("anything {user} may read or write"),
            points: 2.5,
        });
    }
    let net_open = !boxed || sb.network == Network::Any;
    items.push(Item {
        what: "network",
        text: if net_open {
            "any socket family".into()
        } else {
            "unix sockets only (no new inet sockets)".into()
        },
        points: if net_open { 1.5 } else { 0.0 },
    });
    let exec = !boxed || sb.exec;
    items.push(Item {
        what: "exec",
        text: if exec {
            "may run programs".into()
        } else {
            "no execve".into()
        },
        points: if exec { 1.0 } else { 0.0 },
    });
    items.push(Item {
        what: "syscalls",
        text: if boxed {
            "blocked: namespaces, ptrace, modules, identity, mounts (EPERM)".into()
        } else {
            "not filtered".into()
        },
        points: if boxed { 0.0 } else { 2.0 },
    });
    items.push(Item {
        what: "signals",
        text: if boxed {
            "only the listener's own processes (Landlock scope)".into()
        } else {
            "any process of its user".into()
        },
        points: if boxed { 0.0 } else { 0.5 },
    });
    let score: f64 = items.iter().map(|i| i.points).sum::<f64>().min(10.0);
    let mut text = format!(
        "listener {} ({}), sandbox {}\n",
        l.name,
        l.handler.display(),
        sb.mode.as_str()
    );
    for i in &items {
        let pts = if i.points > 0.0 {
            format!("+{:.1}", i.points)
        } else {
            "    ".into()
        };
        let _ = writeln!(text, "  {pts} {:<9}{}", i.what, i.text);
    }
    let _ = writeln!(text, "  exposure {score:.1} {}", rating(score));
    (text, score)
}
