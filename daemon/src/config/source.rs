//! One config file's text, its spans and its errors.
//!
//! Owns the step from TOML text to raw serde structs: it parses once into a
//! spanned tree, indexes every key path (`listener.mixin`) with the spans of
//! the key and its value, deserializes, and turns any toml/serde failure into
//! a [`ConfigError`] naming file, line, column and key. Promises: every error
//! it builds carries a location when toml gave a span. Never validates values.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::error::{ConfigError, Location};

/// A key path with the spans of its key and of its value.
#[derive(Clone, Debug)]
struct Entry {
    path: String,
    key: Range<usize>,
    value: Range<usize>,
}

/// A parsed config file: where it is, its text, and its key index.
#[derive(Debug)]
pub(crate) struct Source<'t> {
    pub file: PathBuf,
    pub folder: PathBuf,
    text: &'t str,
    entries: Vec<Entry>,
}

impl<'t> Source<'t> {
    /// Parse `text` (named `file`, which must be absolute) into `T`.
    pub fn parse<T: DeserializeOwned>(
        text: &'t str,
        file: &Path,
    ) -> Result<(Source<'t>, T), ConfigError> {
        let folder = file
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        let mut source = Source {
            file: file.to_path_buf(),
            folder,
            text,
            entries: Vec::new(),
        };
        let tree = DeTable::parse(text).map_err(|e| source.toml_error(&e))?;
        index_table(tree.get_ref(), "", &mut source.entries);
        let raw = T::deserialize(toml::de::Deserializer::from(tree))
            .map_err(|e| source.toml_error(&e))?;
        Ok((source, raw))
    }

    /// The location of a byte span's start.
    pub fn location(&self, span: &Range<usize>) -> Location {
        Location::from_offset(&self.file, self.text, span.start)
    }

    /// The location of the key whose value has `span` (the value itself if unknown).
    pub fn key_location(&self, value_span: &Range<usize>) -> Location {
        let entry = self.entries.iter().find(|e| e.value == *value_span);
        self.location(entry.map_or(value_span, |e| &e.key))
    }

    /// An error at the value with `span`, about `key`.
    pub fn error(&self, span: &Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::at(&self.location(span), Some(key), message)
    }

    /// An error at the key of the value with `span`, about `key`.
    pub fn key_error(
        &self,
        span: &Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::at(&self.key_location(span), Some(key), message)
    }

    /// An error about a spanned value of `key`.
    pub fn value_error<T>(
        &self,
        value: &Spanned<T>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        self.error(&value.span(), key, message)
    }

    /// The innermost key path whose key or value holds byte `offset`.
    fn key_at(&self, offset: usize) -> Option<&str> {
        let holds = |r: &Range<usize>| r.start <= offset && (offset < r.end || r.is_empty());
        self.entries
            .iter()
            .filter(|e| holds(&e.key) || holds(&e.value))
            .min_by_key(|e| if holds(&e.key) { 0 } else { e.value.len() })
            .map(|e| e.path.as_str())
    }

    fn toml_error(&self, error: &toml::de::Error) -> ConfigError {
        let Some(span) = error.span() else {
            return ConfigError::in_file(&self.file, friendly(error.message(), None));
        };
        let key = self.key_at(span.start);
        let mut message = friendly(error.message(), key);
        if key.is_none() && message.trim_end() == "duplicate key" {
            // The key index is not built when parsing failed: quote the
            // key from the text, so the message says which one.
            if let Some(name) = self.text.get(span.clone()).map(str::trim) {
                if !name.is_empty() && name.len() <= 128 && !name.contains('\n') {
                    message = format!("duplicate key `{name}`");
                }
            }
        }
        let mut err = ConfigError::at(&self.location(&span), key, message);
        err.message = err.message.trim_end().to_owned();
        err
    }
}

/// Serde's wording, in TOML's terms.
fn friendly(message: &str, key: Option<&str>) -> String {
    const WORDS: [(&str, &str); 6] = [
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
        ("invalid type: map", "invalid type: table"),
        ("invalid type: sequence", "invalid type: array"),
        ("floating point", "float"),
        ("unknown field", "unknown key"),
    ];
    let mut out = message.to_owned();
    for (from, to) in WORDS {
        out = out.replace(from, to);
    }
    if key == Some("listener") && out.starts_with("invalid type: table") {
        out.push_str(" (write [[listener]] with double brackets)");
    }
    out
}

fn index_table(table: &DeTable<'_>, prefix: &str, out: &mut Vec<Entry>) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        out.push(Entry {
            path: path.clone(),
            key: key.span(),
            value: value.span(),
        });
        index_value(value, &path, out);
    }
}

fn index_value(value: &Spanned<DeValue<'_>>, path: &str, out: &mut Vec<Entry>) {
    match value.get_ref() {
        DeValue::Table(table) => index_table(table, path, out),
        DeValue::Array(items) => items.iter().for_each(|item| index_value(item, path, out)),
        _ => {}
    }
}
