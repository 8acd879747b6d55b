//! The identity of a plugin file, as the master records it when a
//! generation starts: replacing the file (by rename or in place) changes
//! it, so a reload knows which listeners need a new worker.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

/// Identity of a plugin file: replacing it (by rename or in place) changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: Option<SystemTime>,
}

impl FileId {
    pub fn of(path: &Path) -> Option<FileId> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.modified().ok(),
        })
    }
}
