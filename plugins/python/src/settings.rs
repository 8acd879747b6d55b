//! `[listener.config]` of a Python listener: `handler` (required,
//! "module:Class"), `server` (optional, "module:Class") and `path`
//! (folders prepended to `sys.path`, relative to the config file's folder;
//! default `["."]`). Unknown keys and wrong types are errors that name the
//! key; nothing here touches Python.

use std::path::Path;

#[derive(Debug, PartialEq)]
pub struct Settings {
    pub handler: String,
    pub server: Option<String>,
    /// Absolute folders, in the order given.
    pub path: Vec<String>,
}

/// Every key; others are refused, and the error lists these.
const KEYS: [&str; 3] = ["handler", "server", "path"];

fn string(table: &toml::Table, key: &str) -> Result<Option<String>, String> {
    match table.get(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "[listener.config] {key}: expected a string \"module:Class\", found {}",
            other.type_str()
        )),
    }
}

impl Settings {
    /// Read the table; relative `path` entries resolve against `config_dir`.
    pub fn parse(table: &toml::Table, config_dir: &Path) -> Result<Settings, String> {
        if let Some(key) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            let known: Vec<String> = KEYS.iter().map(|k| format!("`{k}`")).collect();
            return Err(format!(
                "[listener.config] unknown key `{key}` for the Python plugin (known: {})",
                known.join(", ")
            ));
        }
        let handler = string(table, "handler")?.ok_or(
            "[listener.config] handler is missing: name the request handler class as \
             handler = \"module:Class\"",
        )?;
        let server = string(table, "server")?;
        let entries: Vec<String> = match table.get("path") {
            None => vec![".".into()],
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => Err(format!(
                        "[listener.config] path: expected strings, found {}",
                        other.type_str()
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(format!(
                    "[listener.config] path: expected an array of folders, found {}",
                    other.type_str()
                ))
            }
        };
        let path = entries
            .iter()
            .map(|p| {
                let joined = config_dir.join(p);
                // Tidy "./" away without touching the disk.
                let clean: std::path::PathBuf = joined.components().collect();
                clean.to_string_lossy().into_owned()
            })
            .collect();
        Ok(Settings {
            handler,
            server,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        Settings::parse(&table, Path::new("/etc/sockhost"))
    }

    #[test]
    fn defaults_and_relative_paths() {
        let s = parse("handler = \"upper:Upper\"").expect("valid");
        assert_eq!(s.handler, "upper:Upper");
        assert_eq!(s.server, None);
        assert_eq!(s.path, vec!["/etc/sockhost".to_string()]);
        let s = parse("handler = \"a:B\"\nserver = \"a:S\"\npath = [\"py\", \"/opt/x\"]")
            .expect("valid");
        assert_eq!(s.server.as_deref(), Some("a:S"));
        assert_eq!(s.path, vec!["/etc/sockhost/py", "/opt/x"]);
    }

    #[test]
    fn errors_name_the_key() {
        assert!(parse("").unwrap_err().contains("handler is missing"));
        assert!(parse("handler = 1")
            .unwrap_err()
            .contains("handler: expected a string"));
        assert!(parse("handler = \"a:B\"\npath = \"x\"")
            .unwrap_err()
            .contains("path: expected an array"));
        assert!(parse("handler = \"a:B\"\ngreeting = 1")
            .unwrap_err()
            .contains("unknown key `greeting`"));
    }
}
