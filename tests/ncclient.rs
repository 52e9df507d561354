//! End-to-end NETCONF tests driven by ncclient, the Python client most users have.
//!
//! The tests live in `tests/python/` (`unittest`; stdlib plus ncclient, paramiko and lxml). This
//! file only runs them against the `pyvmd` binary that cargo built for this test:
//!
//! ```text
//! python3 -m unittest discover -s tests/python -p 'test_*.py' -v
//! ```
//!
//! with `PYVMD_BIN` = this crate's `pyvmd` binary and `PYVMD_YANG_DIR` = `<crate>/yang`. Each
//! test class starts its own server on a free port with temporary directories and stops it.
//!
//! The suite's output is streamed as it comes, straight to the real stdout/stderr (libtest's
//! capture only covers `print!`-style macros), so a long run shows its progress.
//!
//! Needs `python3` (or `$PYVMD_PYTHON`) with ncclient (`pip install ncclient`). Without it the test
//! prints a loud notice and passes, except under CI (`CI=true`), where that is a failure.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;

#[test]
fn ncclient_suite() {
    let python = std::env::var("PYVMD_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));

    if let Err(why) = check_python(&python) {
        if common::ci() {
            panic!("CI=true and the ncclient test suite cannot run: {why}");
        }
        // Written to the real stderr, not eprintln!: libtest would hide it for a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "\n{bar}\nSKIPPED: the ncclient end-to-end suite did not run: {why}\n\
                          Install it with `{python} -m pip install ncclient` (or set PYVMD_PYTHON).\n{bar}\n",
            bar = "!".repeat(78)
        );
        return;
    }

    let mut child = Command::new(&python)
        .args([
            "-m",
            "unittest",
            "discover",
            "-s",
            "tests/python",
            "-p",
            "test_*.py",
            "-v",
        ])
        .current_dir(manifest_dir)
        .env("PYVMD_BIN", env!("CARGO_BIN_EXE_pyvmd"))
        .env("PYVMD_YANG_DIR", manifest_dir.join("yang"))
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));

    // Forward both streams as they come (unittest -v reports on stderr).
    let out = forward(child.stdout.take().expect("piped stdout"), false);
    let err = forward(child.stderr.take().expect("piped stderr"), true);
    let status = child.wait().expect("waiting for the python test suite");
    out.join().expect("stdout forwarder");
    err.join().expect("stderr forwarder");

    assert!(
        status.success(),
        "the ncclient suite failed ({status}); see its output above"
    );
}

/// Ok if `python` runs and imports ncclient, paramiko and lxml; otherwise why not.
fn check_python(python: &str) -> Result<(), String> {
    let probe = Command::new(python)
        .args(["-c", "import ncclient, paramiko, lxml"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`{python}` cannot be started ({e})"))?;
    if probe.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{python}` cannot import ncclient/paramiko/lxml:\n{}",
            String::from_utf8_lossy(&probe.stderr).trim_end()
        ))
    }
}

/// Copy `stream` line by line to the process's real stdout or stderr.
fn forward(stream: impl Read + Send + 'static, to_stderr: bool) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            let _ = if to_stderr {
                std::io::stderr().write_all(&line)
            } else {
                std::io::stdout().write_all(&line)
            };
            line.clear();
        }
    })
}
