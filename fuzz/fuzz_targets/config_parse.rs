//! Fuzz target: `sockhostd::config::parse_main` on arbitrary text.
//!
//! Promises checked: parsing never panics, and every error names the file
//! it was given with a line and column inside the text (or none). Inputs
//! that mention `include` (or use `\u` escapes, which could spell it) are
//! skipped: drop-in expansion walks the filesystem, which makes runs slow
//! and machine-dependent; the include rules have unit tests of their own.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

const FILE: &str = "/nonexistent/sockhost-fuzz/sockhost.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains("include") || text.contains("\\u") || text.contains("\\U") {
        return;
    }
    let file = Path::new(FILE);
    match sockhostd::config::parse_main(text, file) {
        Ok(config) => {
            for l in &config.listeners {
                // Rendering a validated listener must not panic either.
                let _ = l.address.to_string();
                let _ = l.defined_at.to_string();
            }
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with(FILE), "error names another file: {shown}");
            if let Some(line) = e.line {
                let lines = text.matches('\n').count() + 1;
                assert!(
                    line >= 1 && line <= lines,
                    "line {line} of {lines}: {shown}"
                );
                assert!(e.column.is_some_and(|c| c >= 1), "column: {shown}");
            }
        }
    }
});
