//! `[listener.config]` of a Python listener: `handler` (required,
//! "module:Class"), `server` (optional, "module:Class"), `path`
//! (folders prepended to `sys.path`, relative to the config file's folder;
//! default `["."]`) and `directory` (the worker's working directory,
//! relative to the config file's folder; default that folder). Unknown
//! keys and wrong types are errors that name the key; nothing here touches
//! Python or the disk.

use std::path::Path;

#[derive(Debug, PartialEq)]
pub struct Settings {
    pub handler: String,
    pub server: Option<String>,
    /// Absolute folders, in the order given.
    pub path: Vec<String>,
    /// The worker's working directory (absolute).
    pub directory: std::path::PathBuf,
}

/// Every key; others are refused, and the error lists these.
const KEYS: [&str; 4] = ["handler", "server", "path", "directory"];

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
        // Tidy "./" away without touching the disk.
        let resolve = |p: &str| -> std::path::PathBuf { config_dir.join(p).components().collect() };
        let path = entries
            .iter()
            .map(|p| resolve(p).to_string_lossy().into_owned())
            .collect();
        let directory = match table.get("directory") {
            None => resolve("."),
            Some(toml::Value::String(d)) => resolve(d),
            Some(other) => {
                return Err(format!(
                    "[listener.config] directory: expected a folder (a string), found {}",
                    other.type_str()
                ))
            }
        };
        Ok(Settings {
            handler,
            server,
            path,
            directory,
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
        assert_eq!(s.directory, Path::new("/etc/sockhost"));
        let s = parse("handler = \"a:B\"\ndirectory = \"www\"").expect("valid");
        assert_eq!(s.directory, Path::new("/etc/sockhost/www"));
        let s = parse("handler = \"a:B\"\ndirectory = \"/srv\"").expect("valid");
        assert_eq!(s.directory, Path::new("/srv"));
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
        assert!(parse("handler = \"a:B\"\ndirectory = 1")
            .unwrap_err()
            .contains("directory: expected a folder"));
    }
}
