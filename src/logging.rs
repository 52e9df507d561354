//! The server's own log: to stderr (coloured only on a terminal, and never with `NO_COLOR`) and
//! to `<log-dir>/pyvmd.log`, which `logrotate` can rotate: on `SIGHUP` the file is reopened.
//!
//! Levels are given by the names people use: `error`, `warn`/`warning`, `info`, `debug`,
//! `trace`, `off`, and yuma123's `debug2`..`debug4` (as `NETCONF_LOG_LEVEL` in its images).
//! Anything else is refused; a full `tracing` filter can be given with `--log-filter`.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

/// The tracing level for a level name, or an error that lists the names.
pub fn level_filter(name: &str) -> anyhow::Result<&'static str> {
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "off" | "none" => "off",
        "error" | "err" => "error",
        "warn" | "warning" => "warn",
        "info" => "info",
        "debug" => "debug",
        "trace" | "debug2" | "debug3" | "debug4" => "trace",
        _ => anyhow::bail!(
            "unknown log level {name:?}: use error, warn (or warning), info, debug, trace or off \
             (or a full filter with --log-filter)"
        ),
    })
}

/// The log file, reopened by [`LogFile::reopen`].
pub struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl LogFile {
    fn open(path: &Path) -> std::io::Result<File> {
        OpenOptions::new().create(true).append(true).open(path)
    }

    /// Reopens the file by its name: after `logrotate` moved it, logging goes on in a new one.
    pub fn reopen(&self) -> std::io::Result<()> {
        let file = LogFile::open(&self.path)?;
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = file;
        Ok(())
    }
}

/// A writer for one log event.
pub struct LogWriter(Arc<LogFile>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0
            .file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .flush()
    }
}

/// Sets up logging at `level` (a level name) or with `filter` (a `tracing` filter, which wins);
/// returns the log file, for [`LogFile::reopen`].
pub fn init(log_dir: &Path, level: &str, filter: Option<&str>) -> anyhow::Result<Arc<LogFile>> {
    let directives = match filter {
        Some(filter) => {
            EnvFilter::try_new(filter)
                .with_context(|| format!("invalid --log-filter {filter:?}"))?;
            filter.to_owned()
        }
        None => format!("{},russh=warn", level_filter(level)?),
    };
    std::fs::create_dir_all(log_dir)
        .with_context(|| format!("creating the log directory {}", log_dir.display()))?;
    let path = log_dir.join("pyvmd.log");
    let file = LogFile::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let log_file = Arc::new(LogFile {
        path,
        file: Mutex::new(file),
    });
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let for_file = Arc::clone(&log_file);
    tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_ansi(colour)
                .with_writer(std::io::stderr)
                .with_filter(EnvFilter::new(&directives)),
        )
        .with(
            fmt::layer()
                .with_ansi(false)
                .with_writer(move || LogWriter(Arc::clone(&for_file)))
                .with_filter(EnvFilter::new(&directives)),
        )
        .init();
    Ok(log_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_users_bring() {
        assert_eq!(level_filter("warning").unwrap(), "warn");
        assert_eq!(level_filter("WARN").unwrap(), "warn");
        assert_eq!(level_filter("debug3").unwrap(), "trace");
        assert_eq!(level_filter("off").unwrap(), "off");
        let e = level_filter("loud").unwrap_err().to_string();
        assert!(e.contains("unknown log level"), "{e}");
    }
}
