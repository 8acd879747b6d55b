//! `[daemon] include`: patterns to the sorted list of drop-in files.
//!
//! Owns glob expansion. Promises: patterns resolve against the main file's
//! folder; each pattern's matches are sorted; a pattern matching nothing is
//! fine, but a literal path (no `*`, `?` or `[`) that does not exist is an
//! error at that entry; a file is listed once, and the main file itself is
//! never listed. Never reads the drop-ins (see `mod.rs`).

use std::path::{Path, PathBuf};

use glob::{MatchOptions, Pattern};
use toml::Spanned;

use super::error::ConfigError;
use super::source::Source;

const KEY: &str = "daemon.include";

/// The drop-in files named by `patterns`, in order.
pub fn expand(src: &Source, patterns: &[Spanned<String>]) -> Result<Vec<PathBuf>, ConfigError> {
    let mut files: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        for file in expand_one(src, pattern)? {
            if file != src.file && !files.contains(&file) {
                files.push(file);
            }
        }
    }
    Ok(files)
}

fn expand_one(src: &Source, pattern: &Spanned<String>) -> Result<Vec<PathBuf>, ConfigError> {
    let text = pattern.get_ref();
    if text.is_empty() {
        return Err(src.value_error(pattern, KEY, "include pattern is empty"));
    }
    if !text.contains(['*', '?', '[']) {
        return literal(src, pattern, &src.folder.join(text));
    }
    let full = if Path::new(text).is_absolute() {
        text.clone()
    } else {
        format!("{}/{text}", Pattern::escape(&src.folder.to_string_lossy()))
    };
    let options = MatchOptions {
        require_literal_leading_dot: true,
        ..MatchOptions::new()
    };
    let paths = glob::glob_with(&full, options).map_err(|e| {
        src.value_error(
            pattern,
            KEY,
            format!("bad glob pattern \"{text}\": {}", e.msg),
        )
    })?;
    let mut files = Vec::new();
    for path in paths {
        let path = path.map_err(|e| {
            src.value_error(pattern, KEY, format!("cannot read {}", e.path().display()))
        })?;
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn literal(
    src: &Source,
    pattern: &Spanned<String>,
    path: &Path,
) -> Result<Vec<PathBuf>, ConfigError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let why = if path.exists() {
        "is not a regular file"
    } else {
        "does not exist"
    };
    Err(src.value_error(
        pattern,
        KEY,
        format!("include file {} {why}", path.display()),
    ))
}
