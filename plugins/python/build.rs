//! Build script: link libpython with an rpath to the folder it was found in,
//! so the plugin loads the same libpython it was built against (pyenv's
//! lives outside the loader's default path). Which Python: PYO3_PYTHON, else
//! `python3` on PATH (pyo3's rules).
//!
//! No rpath when that folder is one the dynamic loader searches anyway
//! (`/usr/lib`, `/lib`, `/usr/lib64`, `/lib64` and their multiarch folders
//! such as `/usr/lib/x86_64-linux-gnu`, where Debian's libpython lives): it
//! would change nothing at run time, and a distribution package must not
//! carry one (lintian's custom-library-search-path).

use std::path::Path;

fn main() {
    let config = pyo3_build_config::get();
    let Some(dir) = config.lib_dir() else {
        return;
    };
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows") || is_system_dir(dir) {
        return;
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
}

/// Whether the loader searches `dir` without being told: the trusted
/// folders, or a multiarch folder (`*-linux-gnu*`) right below one.
fn is_system_dir(dir: &str) -> bool {
    let path = Path::new(dir.trim_end_matches('/'));
    let trusted = |p: &Path| {
        ["/lib", "/usr/lib", "/lib64", "/usr/lib64"]
            .map(Path::new)
            .contains(&p)
    };
    if trusted(path) {
        return true;
    }
    let multiarch = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains("-linux-gnu"));
    multiarch && path.parent().is_some_and(trusted)
}
