//! Starting the embedded interpreter and preparing it for packages.
//!
//! The interpreter is initialised with CPython's `PyConfig` API rather than
//! `Python::initialize()`: `Py_InitializeEx` aborts the process when Python cannot start (e.g. a
//! missing standard library), while `Py_InitializeFromConfig` returns the error, which the VM
//! reports to the server as [`FromVm::Fatal`](super::protocol::FromVm::Fatal). pyo3 works on an
//! interpreter initialised this way: `Python::attach` only requires `Py_IsInitialized()`.

use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;
use std::path::PathBuf;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::native::_pyvmd;

include!(concat!(env!("OUT_DIR"), "/embedded_python.rs"));

/// The importer that serves [`EMBEDDED_MODULES`]; it runs before anything imports `ncs`.
const IMPORTER: &CStr = match CStr::from_bytes_with_nul(
    concat!(include_str!("../../python/pyvmd_importer.py"), "\0").as_bytes(),
) {
    Ok(source) => source,
    Err(_) => panic!("python/pyvmd_importer.py must not contain NUL bytes"),
};

/// The interpreter pyo3 linked against (set by build.rs), if known.
fn linked_executable() -> Option<&'static str> {
    option_env!("PYVMD_PYTHON_EXECUTABLE")
}

/// Initialises CPython and releases the GIL; `Err` explains why Python cannot run.
///
/// Settings, and why:
/// - `executable` = the interpreter whose libpython is linked (when it exists): CPython derives
///   `sys.prefix` from the executable, and without one it searches `PATH` for `python3`, which
///   may find another installation (pyenv's) and load its standard library into our libpython.
///   It also makes `sys.executable` a real Python for packages that start one (multiprocessing).
/// - no signal handlers: the VM's main thread is Rust, which never runs Python's handlers, so
///   Python's SIGINT handler would only make the VM ignore Ctrl-C; the server stops VMs.
/// - unbuffered stdio: stdout and stderr go to a file shared by all VMs; lines of a VM that is
///   killed must not be lost, and lines of different VMs should interleave in time order.
/// - `argv` is not parsed: the VM's command line is not Python's.
pub fn initialize() -> Result<(), String> {
    pyo3::append_to_inittab!(_pyvmd);
    let executable = linked_executable()
        .filter(|path| std::path::Path::new(path).exists())
        .and_then(|path| CString::new(path).ok());
    let mut config = MaybeUninit::<ffi::PyConfig>::uninit();
    let config = config.as_mut_ptr();
    // SAFETY: `config` points to writable storage for a PyConfig, which PyConfig_InitPythonConfig
    // fully initialises before any field is touched; it is cleared before it goes out of scope;
    // this runs once, on the main thread, before any other Python API call. PyEval_SaveThread
    // releases the GIL that initialisation left held by this thread.
    let status = unsafe {
        ffi::PyConfig_InitPythonConfig(config);
        (*config).parse_argv = 0;
        (*config).install_signal_handlers = 0;
        (*config).buffered_stdio = 0;
        let mut status = None;
        if let Some(executable) = &executable {
            let set = ffi::PyConfig_SetBytesString(
                config,
                &raw mut (*config).executable,
                executable.as_ptr(),
            );
            if ffi::PyStatus_Exception(set) != 0 {
                status = Some(set);
            }
        }
        let status = status.unwrap_or_else(|| ffi::Py_InitializeFromConfig(config));
        ffi::PyConfig_Clear(config);
        if ffi::PyStatus_Exception(status) != 0 {
            Err(status_message(&status))
        } else {
            ffi::PyEval_SaveThread();
            Ok(())
        }
    };
    status.map_err(|message| {
        format!(
            "no usable Python: {message} (libpython {}, interpreter {}; is its standard library \
             installed, and PYTHONHOME unset or right?)",
            option_env!("PYVMD_PYTHON_VERSION").unwrap_or("3"),
            linked_executable().unwrap_or("unknown"),
        )
    })
}

/// The text of a failed `PyStatus`: `function: message`.
fn status_message(status: &ffi::PyStatus) -> String {
    let text = |ptr: *const std::ffi::c_char| {
        if ptr.is_null() {
            None
        } else {
            // SAFETY: a non-null PyStatus string is a static NUL-terminated C string.
            Some(
                unsafe { CStr::from_ptr(ptr) }
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    };
    match (text(status.func), text(status.err_msg)) {
        (Some(func), Some(msg)) => format!("{func}: {msg}"),
        (None, Some(msg)) => msg,
        (_, None) if status.exitcode != 0 => format!("exit code {}", status.exitcode),
        _ => "initialisation failed".to_owned(),
    }
}

/// Installs the embedded importer, the root log handler at `level`, and the package paths.
pub fn prepare(
    py: Python<'_>,
    sys_path: &[PathBuf],
    site_dirs: &[PathBuf],
    level: u32,
) -> PyResult<()> {
    // Importing `threading` here makes this (the initialising) thread Python's main thread.
    py.import("threading")?;
    let importer = PyModule::from_code(
        py,
        IMPORTER,
        c"<pyvmd>/pyvmd_importer.py",
        c"_pyvmd_importer",
    )?;
    importer.call_method0("install")?;
    let to_strings = |paths: &[PathBuf]| -> Vec<String> {
        paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    };
    py.import("ncs._vm")?.call_method1(
        "boot",
        (
            PyList::new(py, to_strings(sys_path))?,
            PyList::new(py, to_strings(site_dirs))?,
            level,
        ),
    )?;
    Ok(())
}

/// The full traceback of `err`, as Python prints it.
pub fn format_traceback(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py.import("traceback").and_then(|tb| {
        tb.call_method1("format_exception", (err.value(py),))?
            .extract::<Vec<String>>()
    });
    match formatted {
        Ok(lines) => lines.concat(),
        Err(_) => err.to_string(),
    }
}
