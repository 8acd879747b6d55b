//! What a sandboxed listener may reach on the filesystem: its own
//! `read_only`/`read_write` paths plus what its plugin and runtime need.
//!
//! Owns the list. The plugin's libraries are found with the dynamic loader
//! itself (`ld.so --list PLUGIN`, which maps but never runs the libraries),
//! so RUNPATH, `LD_LIBRARY_PATH` and ld.so.cache are honoured exactly as at
//! `dlopen`. A library in a system library folder grants that folder (what
//! it `dlopen`s later, NSS and gconv modules, Python's extension modules,
//! sit there too); one anywhere else grants only its own file, so a plugin
//! beside the config never opens the config folder. Promises: never the
//! config folder's parent, `/tmp` or `/home` unless the listener lists
//! them (or its Python `path` or `directory` does). Never touches
//! Landlock itself.

use crate::config::{ListenerConfig, Network};
use std::path::{Path, PathBuf};

/// How much a grant allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read files and list folders.
    Read,
    /// Read, list, and execute (libraries, programs).
    ReadExec,
    /// Everything Landlock handles (read, write, create, remove).
    ReadWrite,
    /// Read and write existing files only (devices, the log file).
    FileReadWrite,
}

/// One path and what it allows, with why it is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub path: PathBuf,
    pub access: Access,
    pub why: &'static str,
}

/// Folders of the system's shared libraries (read and execute).
const LIB_DIRS: [&str; 5] = ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib"];

/// Runtime data every C runtime reads: loader cache, locales, time zones,
/// user and group names, the processor count.
const RUNTIME_READ: [&str; 14] = [
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/timezone",
    "/usr/share/zoneinfo",
    "/usr/share/locale",
    "/etc/locale.alias",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/sys/devices/system/cpu",
    "/proc/sys/vm/overcommit_memory",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/cpuinfo",
];

/// Name resolution, when the listener may use the network.
const NETWORK_READ: [&str; 6] = [
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/host.conf",
];

/// Every grant for `l`'s worker under `enforce`, for this process (its
/// `/proc/PID` is this process's).
pub fn grants(l: &ListenerConfig) -> Result<Vec<Grant>, String> {
    let mut out = Vec::new();
    let mut add = |path: PathBuf, access: Access, why: &'static str| {
        if path.exists()
            && !out
                .iter()
                .any(|g: &Grant| g.path == path && g.access == access)
        {
            out.push(Grant { path, access, why });
        }
    };
    for dir in LIB_DIRS {
        add(dir.into(), Access::ReadExec, "system libraries");
    }
    for p in RUNTIME_READ {
        add(p.into(), Access::Read, "C runtime data");
    }
    if l.sandbox.network == Network::Any {
        for p in NETWORK_READ {
            add(p.into(), Access::Read, "name resolution");
        }
    }
    add("/dev/null".into(), Access::FileReadWrite, "device");
    for p in ["/dev/zero", "/dev/urandom", "/dev/random"] {
        add(p.into(), Access::Read, "device");
    }
    // /proc/self is a symlink to /proc/PID: Landlock checks the inode it
    // resolves to, so the grant is this worker's own folder.
    add(
        PathBuf::from(format!("/proc/{}", std::process::id())),
        Access::Read,
        "/proc/self",
    );
    add(l.handler.clone(), Access::ReadExec, "plugin");
    let libs = libraries(&l.handler);
    for lib in &libs {
        add_library(&mut add, lib.clone());
    }
    if let Some(log) = crate::os::logfile::path() {
        add(log.to_path_buf(), Access::FileReadWrite, "log file");
    }
    python(l, &libs, &mut add);
    if l.sandbox.exec {
        program(l, &mut add)?;
    }
    // With `exec = true`, what the listener may read it may also run: how
    // a script is given the tools it calls (`read_only = ["/usr/bin/cat"]`).
    let listed = if l.sandbox.exec {
        Access::ReadExec
    } else {
        Access::Read
    };
    for p in &l.sandbox.read_only {
        add(p.clone(), listed, "read_only");
    }
    for p in &l.sandbox.read_write {
        add(p.clone(), Access::ReadWrite, "read_write");
    }
    for g in &out {
        if matches!(g.why, "plugin" | "read_only" | "read_write") && !g.path.exists() {
            return Err(format!("sandbox: {} does not exist", g.path.display()));
        }
    }
    Ok(out)
}

fn add_library(add: &mut impl FnMut(PathBuf, Access, &'static str), lib: PathBuf) {
    let in_system = LIB_DIRS.iter().any(|d| lib.starts_with(d));
    if !in_system {
        add(lib, Access::ReadExec, "library");
    }
}

/// The files the loader maps for `file` (itself excluded), as
/// `ld.so --list` resolves them; empty when the loader cannot say.
pub fn libraries(file: &Path) -> Vec<PathBuf> {
    let Some(loader) = loader() else {
        return Vec::new();
    };
    let out = std::process::Command::new(&loader)
        .arg("--list")
        .arg(file)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    let Ok(out) = out else {
        return Vec::new();
    };
    let mut libs = vec![loader];
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let line = line.trim();
        let path = match line.split_once(" => ") {
            Some((_, rest)) => rest.split(" (").next().unwrap_or(""),
            None => line.split(" (").next().unwrap_or(""),
        };
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    libs
}

/// This program's ELF interpreter (PT_INTERP of /proc/self/exe).
fn loader() -> Option<PathBuf> {
    let elf = std::fs::read("/proc/self/exe").ok()?;
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    if elf.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let (size, count) = (usize::from(u16_at(0x36)?), usize::from(u16_at(0x38)?));
    for i in 0..count {
        let ph = phoff.checked_add(i.checked_mul(size)?)?;
        if u32_at(ph)? == 3 {
            let off = usize::try_from(u64_at(ph + 8)?).ok()?;
            let len = usize::try_from(u64_at(ph + 32)?).ok()?;
            let text = elf.get(off..off.checked_add(len)?)?;
            let text = text.split(|b| *b == 0).next()?;
            return Some(PathBuf::from(String::from_utf8_lossy(text).into_owned()));
        }
    }
    None
}

/// The Python plugin: its standard library (from the libpython it links),
/// the listener's `path` folders and its `directory` when set (read only).
fn python(
    l: &ListenerConfig,
    libs: &[PathBuf],
    add: &mut impl FnMut(PathBuf, Access, &'static str),
) {
    if l.handler.file_name().and_then(|n| n.to_str()) != Some("libsockhost_python.so") {
        return;
    }
    for lib in libs {
        let Some(name) = lib.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(version) = name
            .strip_prefix("libpython")
            .and_then(|v| v.split(".so").next())
        else {
            continue;
        };
        let version = version.trim_end_matches('d').trim_end_matches('t');
        let Some(libdir) = lib.parent() else { continue };
        // sys.prefix is the folder above lib/ (or above lib/<multiarch>/).
        for prefix in libdir.ancestors().skip(1).take(2) {
            add(
                prefix.join(format!("lib/python{version}")),
                Access::ReadExec,
                "Python standard library",
            );
            add(
                prefix.join("lib/python3/dist-packages"),
                Access::ReadExec,
                "Python packages",
            );
            add(
                prefix.join(format!("local/lib/python{version}")),
                Access::ReadExec,
                "Python packages",
            );
        }
    }
    let folder = l.defined_at.file.parent().unwrap_or(Path::new("/"));
    let paths: Vec<String> = match l.config.get("path") {
        Some(toml::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(_) => Vec::new(),
        None => vec![".".to_owned()],
    };
    for p in paths {
        add(folder.join(p), Access::Read, "Python path");
    }
    // A `directory` the listener names (what SimpleHTTPRequestHandler
    // serves): read only, writable only when `read_write` lists it too.
    // Unset, the working directory is the config's folder, granted only
    // as far as `path` grants it (the config file itself sits there).
    if let Some(toml::Value::String(d)) = l.config.get("directory") {
        add(folder.join(d), Access::Read, "Python directory");
    }
}

/// The exec plugin's `command[0]` (found on PATH when relative), its
/// libraries, its `libexec` helpers folder, and the interpreter a `#!`
/// line names. Nothing else outside the granted trees may be executed.
fn program(
    l: &ListenerConfig,
    add: &mut impl FnMut(PathBuf, Access, &'static str),
) -> Result<(), String> {
    let Some(first) = l
        .config
        .get("command")
        .and_then(|c| c.as_array())
        .and_then(|a| a.first())
        .and_then(|v| v.as_str())
    else {
        return Ok(());
    };
    let Some(program) = find_program(first) else {
        return Err(format!("sandbox: program {first} not found"));
    };
    let mut todo = vec![program];
    for _ in 0..4 {
        let Some(file) = todo.pop() else { break };
        add(file.clone(), Access::ReadExec, "program");
        if let Some(helpers) = libexec(&file) {
            add(helpers, Access::ReadExec, "program helpers");
        }
        for lib in libraries(&file) {
            add_library(add, lib);
        }
        if let Some(interp) = shebang(&file) {
            todo.push(interp);
        }
    }
    Ok(())
}

/// `PREFIX/libexec` for a program in `PREFIX/bin` or `PREFIX/sbin`: where
/// programs keep the helpers they run (git's `git-core`, ssh's
/// `sftp-server`). Debian keeps them under `/usr/lib`, already granted; a
/// program built into `/usr/local` or `/opt/NAME` keeps them here.
fn libexec(program: &Path) -> Option<PathBuf> {
    let bin = program.parent()?;
    let name = bin.file_name()?.to_str()?;
    (name == "bin" || name == "sbin").then(|| bin.parent().map(|p| p.join("libexec")))?
}

fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = std::env::var("PATH")
        .unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    path.split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The interpreter of a `#!` script.
fn shebang(file: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(file).ok()?.read(&mut head).ok()?;
    let text = head.get(..n)?.strip_prefix(b"#!")?;
    let line = text.split(|b| *b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    let interp = line.split_whitespace().next()?;
    interp.starts_with('/').then(|| PathBuf::from(interp))
}
