//! `[listener.config]` of an exec listener, checked once, in `create`.
//!
//! Promises: every key is known (an unknown one is refused, naming it and
//! the allowed ones), every value has its type; `command[0]` is resolved
//! to an absolute path now (a bare name on the program's `PATH`), and one
//! that does not exist or is not an executable file is refused naming the
//! path, so `sockhostd --check` fails and a reload rolls back; `directory`
//! exists. Nothing here runs a program.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// PATH for programs when neither `env` nor `pass_env` sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const KEYS: [&str; 8] = [
    "command",
    "argv0",
    "env",
    "pass_env",
    "directory",
    "stderr",
    "wait",
    "max_runtime",
];

/// Where a program's fd 2 goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stderr {
    /// The worker's log relay: each line a log record.
    Log,
    /// The connection (inetd's way).
    Connection,
    /// /dev/null.
    Null,
}

/// One exec listener's settings.
#[derive(Debug)]
pub struct Settings {
    /// `command[0]`, resolved.
    pub path: PathBuf,
    /// argv[0] as the program sees it.
    pub argv0: OsString,
    /// `command[1..]`.
    pub args: Vec<String>,
    /// The fixed part of the environment: PATH, `pass_env`, `env`.
    pub env: Vec<(OsString, OsString)>,
    pub directory: PathBuf,
    pub stderr: Stderr,
    pub wait: bool,
    /// None: no limit.
    pub max_runtime: Option<Duration>,
}

fn string_list(table: &toml::Table, key: &str) -> Result<Vec<String>, String> {
    let Some(v) = table.get(key) else {
        return Ok(Vec::new());
    };
    let arr = v
        .as_array()
        .ok_or_else(|| format!("`{key}` must be an array of strings"))?;
    arr.iter()
        .map(|x| {
            let s = x
                .as_str()
                .ok_or_else(|| format!("`{key}` must be an array of strings, not {x}"))?;
            no_nul(key, s)?;
            Ok(s.to_string())
        })
        .collect()
}

fn string(table: &toml::Table, key: &str) -> Result<Option<String>, String> {
    match table.get(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => no_nul(key, s).map(|()| Some(s.clone())),
        Some(other) => Err(format!("`{key}` must be a string, not {other}")),
    }
}

/// A NUL byte cannot go into an argument, a path or the environment.
fn no_nul(key: &str, s: &str) -> Result<(), String> {
    if s.contains('\0') {
        return Err(format!("`{key}`: {s:?} holds a NUL byte"));
    }
    Ok(())
}

/// The longest `max_runtime` taken: 2^32 seconds (about 136 years).
const MAX_RUNTIME_LIMIT: f64 = 4_294_967_296.0;

impl Settings {
    /// Check `table`; `stream`: the listener is a stream one.
    pub fn parse(table: &toml::Table, stream: bool) -> Result<Settings, String> {
        if let Some(k) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "unknown key `{k}` in [listener.config] (allowed: `{}`)",
                KEYS.join("`, `")
            ));
        }
        let command = string_list(table, "command")?;
        let Some(first) = command.first() else {
            return Err("`command` is required: the program and its arguments, e.g. [\"/usr/bin/git\", \"daemon\", \"--inetd\"]".into());
        };
        let env = environment(table)?;
        let path_var = env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| DEFAULT_PATH.into());
        let path = resolve(first, &path_var)?;
        let argv0 = string(table, "argv0")?.unwrap_or_else(|| first.clone());
        let directory = PathBuf::from(string(table, "directory")?.unwrap_or_else(|| "/".into()));
        if !directory.is_absolute() || !directory.is_dir() {
            return Err(format!(
                "`directory` {}: not an existing absolute folder",
                directory.display()
            ));
        }
        let wait = match table.get("wait") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(other) => return Err(format!("`wait` must be true or false, not {other}")),
        };
        let stderr = match string(table, "stderr")?.as_deref() {
            None | Some("log") => Stderr::Log,
            Some("connection") => Stderr::Connection,
            Some("null") => Stderr::Null,
            Some(other) => {
                return Err(format!(
                    "`stderr` = {other:?}: allowed values are \"log\", \"connection\", \"null\""
                ))
            }
        };
        if stderr == Stderr::Connection && !stream && !wait {
            return Err("`stderr` = \"connection\" needs a stream listener (or wait = true): a datagram program's stderr has nowhere to go; use \"log\"".into());
        }
        let max_runtime = match table.get("max_runtime") {
            None => None,
            Some(toml::Value::Float(f))
                if f.is_finite() && *f >= 0.0 && *f <= MAX_RUNTIME_LIMIT =>
            {
                (*f > 0.0)
                    .then(|| Duration::try_from_secs_f64(*f).ok())
                    .flatten()
            }
            Some(toml::Value::Integer(i)) if *i >= 0 && *i as f64 <= MAX_RUNTIME_LIMIT => {
                (*i > 0).then(|| Duration::from_secs(*i as u64))
            }
            Some(other) => {
                return Err(format!(
                    "`max_runtime` must be a number of seconds from 0 to 4294967296 (2^32), not {other}"
                ))
            }
        };
        Ok(Settings {
            path,
            argv0: argv0.into(),
            args: command[1..].to_vec(),
            env,
            directory,
            stderr,
            wait,
            max_runtime,
        })
    }
}

/// PATH (default), then `pass_env` from the daemon's environment, then
/// `env`: later entries win.
fn environment(table: &toml::Table) -> Result<Vec<(OsString, OsString)>, String> {
    let mut env: Vec<(OsString, OsString)> = vec![("PATH".into(), DEFAULT_PATH.into())];
    let mut set = |k: OsString, v: OsString| {
        env.retain(|(have, _)| *have != k);
        env.push((k, v));
    };
    for name in string_list(table, "pass_env")? {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(format!("`pass_env`: {name:?} is not a variable name"));
        }
        if let Some(v) = std::env::var_os(&name) {
            set(name.into(), v);
        }
    }
    match table.get("env") {
        None => {}
        Some(toml::Value::Table(t)) => {
            for (k, v) in t {
                let Some(v) = v.as_str() else {
                    return Err(format!("`env.{k}` must be a string, not {v}"));
                };
                if k.is_empty() || k.contains(['=', '\0']) {
                    return Err(format!("`env`: {k:?} is not a variable name"));
                }
                no_nul(&format!("env.{k}"), v)?;
                set(k.into(), v.into());
            }
        }
        Some(other) => {
            return Err(format!(
                "`env` must be a table of strings, e.g. {{ HOME = \"/nonexistent\" }}, not {other}"
            ))
        }
    }
    Ok(env)
}

/// `name` as an absolute path to an executable file: itself when
/// absolute, else the first match on `path_var`.
pub fn resolve(name: &str, path_var: &OsString) -> Result<PathBuf, String> {
    if name.contains('/') {
        let p = Path::new(name);
        if !p.is_absolute() {
            return Err(format!(
                "command {name}: give an absolute path or a bare name found on PATH"
            ));
        }
        return executable(p).map(|()| p.to_path_buf());
    }
    let mut last = None;
    for dir in path_var.as_bytes().split(|&b| b == b':') {
        if dir.is_empty() {
            continue;
        }
        let candidate = Path::new(std::ffi::OsStr::from_bytes(dir)).join(name);
        match executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if candidate.exists() => last = Some(e),
            Err(_) => {}
        }
    }
    Err(last.unwrap_or_else(|| {
        format!(
            "command {name}: not found on PATH ({})",
            path_var.to_string_lossy()
        )
    }))
}

fn executable(p: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(p).map_err(|e| format!("command {}: {e}", p.display()))?;
    if !meta.is_file() {
        return Err(format!("command {}: not a regular file", p.display()));
    }
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| format!("command {}: holds a NUL byte", p.display()))?;
    // SAFETY: access reads a NUL-terminated path that lives across the call.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("command {}: not executable: {e}", p.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, String> {
        Settings::parse(&toml::from_str(text).expect("toml"), true)
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = parse("command = [\"/bin/cat\"]\ncomand = 1").expect_err("refused");
        assert!(
            e.contains("`comand`") && e.contains("allowed: `command`"),
            "{e}"
        );
    }

    #[test]
    fn bare_names_are_found_on_path_and_missing_ones_named() {
        let s = parse("command = [\"cat\", \"-u\"]").expect("cat is on the default PATH");
        assert!(s.path.is_absolute() && s.path.ends_with("cat"));
        assert_eq!(s.argv0, "cat");
        assert_eq!(s.args, ["-u"]);
        let e = parse("command = [\"/nonexistent/prog\"]").expect_err("refused");
        assert!(e.contains("/nonexistent/prog"), "{e}");
        let plain = std::env::temp_dir().join(format!("sockhost-exec-{}", std::process::id()));
        std::fs::write(&plain, "data").expect("write");
        let e = parse(&format!("command = [\"{}\"]", plain.display()));
        let _ = std::fs::remove_file(&plain);
        let e = e.expect_err("not executable");
        assert!(e.contains("not executable"), "{e}");
    }

    #[test]
    fn env_wins_over_pass_env_and_the_default_path() {
        let s = parse("command = [\"/bin/cat\"]\nenv = { PATH = \"/x\", A = \"1\" }").expect("ok");
        let path: Vec<_> = s.env.iter().filter(|(k, _)| k == "PATH").collect();
        assert_eq!(path.len(), 1);
        assert_eq!(path[0].1, "/x");
    }

    #[test]
    fn values_are_checked() {
        for bad in [
            "stderr = \"file\"",
            "wait = 1",
            "max_runtime = -1",
            "directory = \"/nonexistent\"",
            "env = [1]",
        ] {
            assert!(
                parse(&format!("command = [\"/bin/cat\"]\n{bad}")).is_err(),
                "{bad}"
            );
        }
        for bad in ["1e20", "4294967297", "9223372036854775807", "inf"] {
            let e =
                parse(&format!("command = [\"/bin/cat\"]\nmax_runtime = {bad}")).expect_err(bad);
            assert!(e.contains("`max_runtime`"), "{bad}: {e}");
        }
        let s = parse("command = [\"/bin/cat\"]\nmax_runtime = 4294967296").expect("2^32");
        assert_eq!(s.max_runtime, Some(Duration::from_secs(1 << 32)));
        let s = parse("command = [\"/bin/cat\"]\nmax_runtime = 1.5").expect("ok");
        assert_eq!(s.max_runtime, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn nul_bytes_are_refused_naming_the_key() {
        for (bad, key) in [
            ("command = [\"/bin/cat\", \"a\\u0000b\"]", "`command`"),
            ("command = [\"/bin/cat\"]\nargv0 = \"c\\u0000t\"", "`argv0`"),
            (
                "command = [\"/bin/cat\"]\nenv = { \"A\\u0000B\" = \"1\" }",
                "`env`",
            ),
            (
                "command = [\"/bin/cat\"]\nenv = { A = \"1\\u00002\" }",
                "`env.A`",
            ),
            (
                "command = [\"/bin/cat\"]\npass_env = [\"HO\\u0000ME\"]",
                "`pass_env`",
            ),
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains(key), "{bad}: {e}");
        }
    }
}
