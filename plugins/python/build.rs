//! Build script: link libpython with an rpath to the folder it was found in,
//! so the plugin loads the same libpython it was built against (pyenv's
//! lives outside the loader's default path). Which Python: PYO3_PYTHON, else
//! `python3` on PATH (pyo3's rules).

fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
}
