//! Tests of the whole config module through `parse_main` and `load`.
//!
//! Each test works in its own scratch folder under the temp folder (removed
//! on drop) holding a main file, drop-ins and a handler `libp.so`.

mod applies;
mod dropins;
mod identity;
mod malformed;
mod observe;
mod places;
mod proxy;
mod sandbox;
mod valid;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{parse_main, Config, ConfigError};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A scratch config folder with a handler `libp.so` and a folder `plugdir/`.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("sockhost-cfg-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("plugdir")).expect("create scratch folder");
        fs::write(dir.join("libp.so"), b"not really a plugin").expect("write handler");
        Scratch { dir }
    }

    /// The main file's path (not written: `parse` passes the text).
    pub fn main_file(&self) -> PathBuf {
        self.dir.join("sockhost.toml")
    }

    /// Write `text` to `rel` below the scratch folder.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.dir.join(rel);
        fs::create_dir_all(path.parent().expect("has parent")).expect("create folder");
        fs::write(&path, text).expect("write file");
        path
    }

    pub fn parse(&self, text: &str) -> Result<Config, ConfigError> {
        parse_main(text, &self.main_file())
    }

    /// Parse `text`, which must fail, and return the error.
    pub fn fail(&self, text: &str) -> ConfigError {
        match self.parse(text) {
            Ok(config) => panic!("config was accepted:\n{text}\n{config:#?}"),
            Err(e) => e,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A listener's seven required lines (lines 1-7 of a file that starts with it).
pub fn listener(name: &str, family: &str, socktype: &str, address: &str, mixin: &str) -> String {
    format!(
        "[[listener]]\nname = \"{name}\"\nfamily = \"{family}\"\ntype = \"{socktype}\"\naddress = \"{address}\"\nmixin = \"{mixin}\"\nhandler = \"libp.so\"\n"
    )
}

/// An inet stream thread listener named `name` on 127.0.0.1:`port`.
pub fn tcp(name: &str, port: u16) -> String {
    listener(
        name,
        "inet",
        "stream",
        &format!("127.0.0.1:{port}"),
        "thread",
    )
}

/// Assert that `err` is in `file` at `line`, about `key`, saying `says`.
#[track_caller]
pub fn assert_error(err: &ConfigError, file: &Path, line: usize, key: &str, says: &str) {
    let shown = err.to_string();
    assert_eq!(err.file, file, "wrong file in: {shown}");
    assert_eq!(err.line, Some(line), "wrong line in: {shown}");
    assert_eq!(err.key.as_deref(), Some(key), "wrong key in: {shown}");
    assert!(
        err.message.contains(says),
        "message lacks {says:?}: {shown}"
    );
    let prefix = format!("{}:{line}:", file.display());
    assert!(
        shown.starts_with(&prefix),
        "display lacks {prefix}: {shown}"
    );
    assert!(
        shown.contains(&format!("key `{key}`")),
        "display lacks key: {shown}"
    );
}

/// `text` must fail at `line` about `key`, with a message containing `says`.
pub struct Case {
    text: String,
    line: usize,
    key: &'static str,
    says: &'static str,
}

pub fn case(text: impl Into<String>, line: usize, key: &'static str, says: &'static str) -> Case {
    Case {
        text: text.into(),
        line,
        key,
        says,
    }
}

/// A tcp listener (lines 1-7) followed by `extra` from line 8 on.
pub fn tcp_with(extra: &str) -> String {
    format!("{}{extra}\n", tcp("a", 7000))
}

/// A listener of the given kind followed by `extra` from line 8 on.
pub fn with(family: &str, socktype: &str, address: &str, mixin: &str, extra: &str) -> String {
    format!(
        "{}{extra}\n",
        listener("a", family, socktype, address, mixin)
    )
}

pub fn run(cases: &[Case]) {
    let s = Scratch::new();
    for c in cases {
        let err = s.fail(&c.text);
        assert_error(&err, &s.main_file(), c.line, c.key, c.says);
    }
}
