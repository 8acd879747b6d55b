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
    /// `dev ino size mtime_ns` (`-` for no mtime): how a worker sends an
    /// identity it took itself (a late `depends_on`).
    pub fn to_words(&self) -> String {
        let mtime = self
            .mtime
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or("-".to_string(), |d| d.as_nanos().to_string());
        format!("{} {} {} {mtime}", self.dev, self.ino, self.size)
    }

    /// The identity `to_words` wrote.
    pub fn from_words(words: &[&str]) -> Option<FileId> {
        let [dev, ino, size, mtime] = words else {
            return None;
        };
        let mtime = match *mtime {
            "-" => None,
            ns => {
                let ns: u64 = ns.parse().ok()?;
                Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(ns))
            }
        };
        Some(FileId {
            dev: dev.parse().ok()?,
            ino: ino.parse().ok()?,
            size: size.parse().ok()?,
            mtime,
        })
    }

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

    /// Also depend on `path` (unless named already), with the identity
    /// the worker saw (`None`: it did not exist).
    pub fn add(&mut self, path: PathBuf, id: Option<FileId>) {
        if !self.0.iter().any(|(q, _)| *q == path) {
            self.0.push((path, id));
        }
    }

    /// True when every file is as it was (a file that appeared, vanished,
    /// or was replaced or edited counts as a change).
    pub fn unchanged(&self) -> bool {
        self.0.iter().all(|(p, id)| FileId::of(p) == *id)
    }
}

#[cfg(test)]
mod words_tests {
    use super::*;

    #[test]
    fn an_identity_survives_words() {
        let id = FileId::of(Path::new("/proc/self/exe")).or(FileId::of(Path::new("/")));
        let id = id.expect("an identity");
        let words = id.to_words();
        let parts: Vec<&str> = words.split(' ').collect();
        assert_eq!(FileId::from_words(&parts), Some(id));
        assert_eq!(FileId::from_words(&["1", "2"]), None);
        assert_eq!(FileId::from_words(&["1", "x", "3", "-"]), None);
    }
}
