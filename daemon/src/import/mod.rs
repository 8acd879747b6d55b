//! `sockhostctl import FORMAT PATH...`: xinetd, inetd and systemd socket
//! configs as sockhost `[[listener]]` tables.
//!
//! Owns reading the inputs (following xinetd's `include`/`includedir`,
//! finding a socket unit's service next to it, /etc/services) and the
//! outcome: the config text and the notes. Each format's syntax is a pure
//! function of text in its own file ([`xinetd`], [`inetd`], [`systemd`]),
//! what it means in sockhost is [`xinetd_map`] / [`systemd_map`], the text
//! written is [`emit`]. Promises: never writes a file; an input that cannot
//! be read or parsed is an `Err` naming `FILE:LINE`; whatever the output
//! lacks is a note with `loss` set.

pub mod access;
pub mod emit;
pub mod inetd;
pub mod model;
pub mod services;
pub mod systemd;
pub mod systemd_map;
pub mod xinetd;
pub mod xinetd_map;

use model::{Note, Notes, Origin, ParseError, Service};
use services::Services;
use std::path::{Path, PathBuf};

/// The input formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Xinetd,
    Inetd,
    Systemd,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Xinetd => "xinetd",
            Format::Inetd => "inetd",
            Format::Systemd => "systemd",
        }
    }
}

/// What an import made: the config text and what to tell about it.
#[derive(Debug)]
pub struct Outcome {
    pub config: String,
    pub notes: Vec<Note>,
}

impl Outcome {
    /// Whether the output lacks something a note names (exit 3).
    pub fn lossy(&self) -> bool {
        self.notes.iter().any(|n| n.loss)
    }
}

/// Where port names are looked up.
const SERVICES_FILE: &str = "/etc/services";
/// How deep xinetd includes may nest before it is taken for a loop.
const MAX_DEPTH: usize = 16;

/// Import `paths` of `format`.
pub fn import(format: Format, paths: &[PathBuf]) -> Result<Outcome, ParseError> {
    let ports = Services::parse(&std::fs::read_to_string(SERVICES_FILE).unwrap_or_default());
    let mut notes = Notes::default();
    let services = match format {
        Format::Xinetd => import_xinetd(paths, &ports, &mut notes)?,
        Format::Inetd => {
            let mut out = Vec::new();
            for p in paths {
                out.extend(inetd::parse(&shown(p), &read(p)?, &ports, &mut notes)?);
            }
            out
        }
        Format::Systemd => {
            let mut out = Vec::new();
            for p in paths {
                out.extend(import_unit(p, &mut notes)?);
            }
            out
        }
    };
    let header = format!(
        "sockhost listeners imported by `sockhostctl import {}` from {}.\n\
         A drop-in: put it in a folder the main config's `include` names.",
        format.as_str(),
        paths.iter().map(|p| shown(p)).collect::<Vec<_>>().join(" ")
    );
    let config = emit::emit(&services, &header, &mut notes);
    let mut seen = Vec::new();
    for n in notes.0 {
        if !seen.contains(&n) {
            seen.push(n);
        }
    }
    Ok(Outcome {
        config,
        notes: seen,
    })
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// A whole input file, or `FILE:0`-less error naming it.
fn read(p: &Path) -> Result<String, ParseError> {
    std::fs::read_to_string(p)
        .map_err(|e| ParseError::new(Origin::new(&shown(p), 1), format!("cannot read: {e}")))
}

/// xinetd files and folders, includes followed, `defaults` applied.
fn import_xinetd(
    paths: &[PathBuf],
    ports: &Services,
    notes: &mut Notes,
) -> Result<Vec<Service>, ParseError> {
    let mut defaults = Vec::new();
    let mut blocks = Vec::new();
    for p in paths {
        if p.is_dir() {
            for f in xinetd_dir(p, &Origin::new(&shown(p), 1))? {
                xinetd_file(&f, 0, &mut defaults, &mut blocks)?;
            }
        } else {
            xinetd_file(p, 0, &mut defaults, &mut blocks)?;
        }
    }
    Ok(xinetd_map::convert(&defaults, &blocks, ports, notes))
}

/// One xinetd file and what it includes.
fn xinetd_file(
    p: &Path,
    depth: usize,
    defaults: &mut Vec<xinetd::Attr>,
    blocks: &mut Vec<xinetd::Block>,
) -> Result<(), ParseError> {
    let text = read(p)?;
    let folder = p.parent().unwrap_or(Path::new("/"));
    for e in xinetd::parse(&shown(p), &text)? {
        match e {
            xinetd::Entry::Defaults(b) => defaults.extend(b.attrs),
            xinetd::Entry::Service(b) => blocks.push(b),
            xinetd::Entry::Include(at, f) | xinetd::Entry::IncludeDir(at, f)
                if depth >= MAX_DEPTH =>
            {
                return Err(ParseError::new(
                    at,
                    format!("`{f}`: includes nested more than {MAX_DEPTH} deep (a loop?)"),
                ));
            }
            xinetd::Entry::Include(_, f) => {
                xinetd_file(&folder.join(f), depth + 1, defaults, blocks)?
            }
            xinetd::Entry::IncludeDir(at, d) => {
                for f in xinetd_dir(&folder.join(d), &at)? {
                    xinetd_file(&f, depth + 1, defaults, blocks)?;
                }
            }
        }
    }
    Ok(())
}

/// The files `includedir` reads: names without '.' and not ending in '~',
/// in byte order.
fn xinetd_dir(dir: &Path, at: &Origin) -> Result<Vec<PathBuf>, ParseError> {
    let list = std::fs::read_dir(dir)
        .map_err(|e| ParseError::new(at.clone(), format!("cannot read {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = list
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            !n.contains('.') && !n.ends_with('~') && e.path().is_file()
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    Ok(files)
}

/// A `.socket` unit with the service it starts, found next to it.
fn import_unit(p: &Path, notes: &mut Notes) -> Result<Vec<Service>, ParseError> {
    let socket = systemd::parse(&shown(p), &read(p)?)?;
    let folder = p.parent().unwrap_or(Path::new("."));
    let file_name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(stem) = file_name.strip_suffix(".socket") else {
        return Err(ParseError::new(
            Origin::new(&shown(p), 1),
            "not a .socket unit (the name must end in .socket)",
        ));
    };
    let service_name = systemd_map::service_name(&socket, stem);
    let service_path = folder.join(&service_name);
    let service = systemd::parse(&shown(&service_path), &read(&service_path)?)?;
    let env_files = systemd_map::environment_files(&service)
        .into_iter()
        .map(|(at, path, optional)| {
            let text = std::fs::read_to_string(&path).ok();
            if text.is_none() && !optional {
                notes.loss(
                    &at,
                    "EnvironmentFile",
                    format!("{path} cannot be read: its variables are left out"),
                );
            }
            (at, path, text)
        })
        .collect::<Vec<_>>();
    Ok(systemd_map::convert(
        stem, &socket, &service, &env_files, notes,
    ))
}

#[cfg(test)]
mod tests;
