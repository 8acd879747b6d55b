//! Config errors and source locations.
//!
//! Owns [`ConfigError`] (what went wrong, in which file, at which line and
//! column, for which key) and [`Location`]. Promises: every error names its
//! file; line and column are 1-based and counted in characters. Never reads
//! files or decides what is valid: callers build errors, this only renders them.

use std::fmt;
use std::path::{Path, PathBuf};

/// A 1-based position in a config file. Displays as `file:line:column`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

impl Location {
    /// The location of byte `offset` in `text` (clamped to the text's end).
    pub(crate) fn from_offset(file: &Path, text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
        Location {
            file: file.to_path_buf(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// A config problem. Displays as `FILE:LINE:COLUMN: key `KEY`: MESSAGE`,
/// leaving out the parts that are unknown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl ConfigError {
    /// An error about a whole file (cannot read it, ...).
    pub(crate) fn in_file(file: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            key: None,
            message: message.into(),
        }
    }

    /// An error at `at`, about `key` when one is known.
    pub(crate) fn at(at: &Location, key: Option<&str>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: at.file.clone(),
            line: Some(at.line),
            column: Some(at.column),
            key: key.map(str::to_owned),
            message: message.into(),
        }
    }

    fn render(&self) -> String {
        let mut out = self.file.display().to_string();
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
            if let Some(column) = self.column {
                out.push_str(&format!(":{column}"));
            }
        }
        if let Some(key) = &self.key {
            out.push_str(&format!(": key `{key}`"));
        }
        out.push_str(": ");
        out.push_str(&self.message);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_line_and_character_column() {
        let text = "a = 1\nbé = \"x\"\n";
        let file = Path::new("/c.toml");
        let at = Location::from_offset(file, text, text.find('"').unwrap_or(0));
        assert_eq!((at.line, at.column), (2, 6));
        assert_eq!(at.to_string(), "/c.toml:2:6");
        let end = Location::from_offset(file, text, 999);
        assert_eq!((end.line, end.column), (3, 1));
    }

    #[test]
    fn display_leaves_out_unknown_parts() {
        let at = Location {
            file: "/a.toml".into(),
            line: 7,
            column: 8,
        };
        let full = ConfigError::at(&at, Some("listener.mixin"), "bad");
        assert_eq!(full.to_string(), "/a.toml:7:8: key `listener.mixin`: bad");
        let bare = ConfigError::in_file(Path::new("/a.toml"), "cannot read");
        assert_eq!(bare.to_string(), "/a.toml: cannot read");
    }
}
