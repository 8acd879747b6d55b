//! The identity of a plugin file, as the master records it when a
//! generation starts: replacing the file (by rename or in place) changes
//! it, so a reload knows which listeners need a new worker.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
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

/// The files a listener's plugin said it depends on (`depends_on`), with
/// their identity when its workers reported ready: a reload restarts the
/// listener when one of them changed (a Python handler's edited module).
#[derive(Debug, Clone, Default)]
pub struct Depends(Vec<(PathBuf, Option<FileId>)>);

impl Depends {
    pub fn of<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) -> Depends {
        let mut seen: Vec<(PathBuf, Option<FileId>)> = Vec::new();
        for p in paths {
            if !seen.iter().any(|(q, _)| q == p) {
                seen.push((p.clone(), FileId::of(p)));
            }
        }
        Depends(seen)
    }

    /// True when every file is as it was (a file that appeared, vanished,
    /// or was replaced or edited counts as a change).
    pub fn unchanged(&self) -> bool {
        self.0.iter().all(|(p, id)| FileId::of(p) == *id)
    }
}
