//! Crash-safe storage of a datastore on disk.
//!
//! A configuration is acknowledged only after it is durable: it is written to a temporary file
//! in the same directory, the file is fsynced, renamed over the old one, and the directory is
//! fsynced so the rename itself survives a crash. At any moment, the file on disk is either the
//! previous or the new configuration, never a mix.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

fn temp_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    file.with_file_name(name)
}

/// Replaces `file` with `contents` atomically and durably.
pub fn write_atomically(file: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = temp_path(file);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, file)?;
    if let Some(dir) = file.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Makes a removal or rename in `file`'s directory durable.
pub fn sync_dir(file: &Path) -> std::io::Result<()> {
    match file.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Removes a temporary file left by a crash in the middle of [`write_atomically`]; the real
/// file still holds the last acknowledged configuration.
pub fn remove_stale_temp(file: &Path) {
    let _ = fs::remove_file(temp_path(file));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("running.xml");
        write_atomically(&file, b"one").unwrap();
        write_atomically(&file, b"two").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"two");
        fs::write(temp_path(&file), b"partial").unwrap();
        remove_stale_temp(&file);
        assert!(!temp_path(&file).exists());
        assert_eq!(fs::read(&file).unwrap(), b"two");
    }
}
