//! One server per state directory: two servers writing the same `running.xml` would overwrite
//! each other's commits. The first takes an exclusive `flock` on `<state-dir>/pyvmd.lock` (and
//! writes its PID there); a second one fails at once, naming the holder. The kernel releases
//! the lock when the process ends, however it ends, so a crash leaves nothing to clean up.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

/// Held for as long as the server runs.
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock of `state_dir` (creating the directory), or explains who holds it.
    pub fn acquire(state_dir: &Path) -> anyhow::Result<StateLock> {
        std::fs::create_dir_all(state_dir)?;
        let path = state_dir.join("pyvmd.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            anyhow::bail!(
                "the state directory {} is in use by another pyvmd{}; stop it, or give this \
                 server its own --state-dir",
                state_dir.display(),
                if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (PID {holder})")
                }
            );
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        Ok(StateLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        // flock locks belong to the open file description: a second open conflicts even in
        // the same process.
        let error = StateLock::acquire(dir.path()).err().unwrap().to_string();
        assert!(error.contains("in use by another pyvmd"), "{error}");
        assert!(
            error.contains(&format!("PID {}", std::process::id())),
            "{error}"
        );
        drop(first);
        StateLock::acquire(dir.path()).unwrap();
    }
}
