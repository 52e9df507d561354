//! Build script: links libpython with an rpath, and embeds the Python API sources.
//!
//! 1. Without an rpath, a binary built against one libpython3.11 can silently load another one
//!    at run time (this machine has pyenv's and Debian's). `add_libpython_rpath_link_args`
//!    records the library directory of the interpreter chosen by `PYO3_PYTHON` (pinned in
//!    `.cargo/config.toml`).
//! 2. Every `python/ncs/**/*.py` and `python/_ncs/**/*.py` file is embedded with `include_str!` into a generated table
//!    (`$OUT_DIR/embedded_python.rs`), which the VM's in-memory importer serves. Generating the
//!    table means a new module of the API needs no Rust edit to ship.
//! 3. `PYVMD_PYTHON_EXECUTABLE` and `PYVMD_PYTHON_VERSION` name the interpreter pyo3 was
//!    configured with.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    // The interpreter whose libpython is linked: the VM runs as if it were that executable, so
    // that it finds the standard library that matches the library (see src/vm/interp.rs).
    let config = pyo3_build_config::get();
    if let Some(executable) = config.executable() {
        println!("cargo:rustc-env=PYVMD_PYTHON_EXECUTABLE={executable}");
    }
    println!("cargo:rustc-env=PYVMD_PYTHON_VERSION={}", config.version());

    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let python = manifest.join("python");
    println!("cargo:rerun-if-changed={}", python.display());
    let mut files = Vec::new();
    collect(&python.join("ncs"), &mut files);
    collect(&python.join("_ncs"), &mut files);
    files.sort();

    let mut table = String::from(
        "/// The embedded Python API: (module name, file name shown in tracebacks, source, is a\n\
         /// package).\npub const EMBEDDED_MODULES: &[(&str, &str, &str, bool)] = &[\n",
    );
    for file in &files {
        let relative = file.strip_prefix(&python).expect("collected under python/");
        let mut parts: Vec<String> = relative
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let last = parts.pop().expect("a file name");
        let stem = last.strip_suffix(".py").expect("collected .py files only");
        let is_package = stem == "__init__";
        if !is_package {
            parts.push(stem.to_owned());
        }
        let module = parts.join(".");
        let shown = format!("<pyvmd>/{}", relative.to_string_lossy());
        writeln!(
            table,
            "    ({module:?}, {shown:?}, include_str!({:?}), {is_package}),",
            file.to_string_lossy()
        )
        .expect("writing to a String");
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("embedded_python.rs"), table).expect("writing embedded_python.rs");
}

/// Collects the `.py` files under `dir`, recursively (skipping `__pycache__`).
fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("reading python/").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "__pycache__") {
                collect(&path, files);
            }
        } else if path.extension().is_some_and(|e| e == "py") {
            files.push(path);
        }
    }
}
