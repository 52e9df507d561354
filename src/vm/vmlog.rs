//! The VM's own log file, in NSO's line format.
//!
//! `<LEVEL> DD-Mon-YYYY::HH:MM:SS.mmm <vm> <thread-name>: - <message>`, local time, e.g.
//! `<INFO> 13-May-2024::10:11:12.345 l3vpn ComponentThread:main: - Main RUNNING`. Records come
//! from Python's `logging` (through the root handler that `ncs._vm` installs) and from the Rust
//! side of the VM. The level is shared with Python's root logger and can change at any time.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Local, TimeZone};

use super::protocol::LogLevel;

/// Python's `logging.DEBUG`.
#[cfg_attr(not(test), allow(dead_code))]
pub const DEBUG: u32 = 10;
/// Python's `logging.INFO`.
pub const INFO: u32 = 20;
/// Python's `logging.WARNING`.
pub const WARNING: u32 = 30;
/// Python's `logging.ERROR`.
pub const ERROR: u32 = 40;
/// Python's `logging.CRITICAL`.
pub const CRITICAL: u32 = 50;

/// NSO's name of a Python level number. Custom levels take the name of the standard level
/// below them (e.g. 25 is INFO), since the file only knows the five names.
pub fn level_name(level: u32) -> &'static str {
    match level {
        l if l >= CRITICAL => "CRITICAL",
        l if l >= ERROR => "ERROR",
        l if l >= WARNING => "WARNING",
        l if l >= INFO => "INFO",
        _ => "DEBUG",
    }
}

/// Formats one log line (with its trailing newline). `message` may span several lines (a
/// traceback): they follow the first line unchanged, as in NSO's files.
pub fn format_line<Tz: TimeZone>(
    level: u32,
    time: &DateTime<Tz>,
    vm: &str,
    thread: &str,
    message: &str,
) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let mut line = format!(
        "<{}> {} {vm} {thread}: - {}",
        level_name(level),
        time.format("%d-%b-%Y::%H:%M:%S%.3f"),
        message.trim_end_matches('\n')
    );
    line.push('\n');
    line
}

/// The log file of one VM and its current level.
pub struct VmLog {
    vm_name: String,
    file: Mutex<File>,
    /// The Python level number below which records are dropped ([`LogLevel::python_level`]).
    threshold: AtomicU32,
}

impl VmLog {
    /// Opens (creating, appending) the VM log at `path`.
    pub fn open(path: &Path, vm_name: &str, level: LogLevel) -> std::io::Result<VmLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(VmLog {
            vm_name: vm_name.to_owned(),
            file: Mutex::new(file),
            threshold: AtomicU32::new(level.python_level()),
        })
    }

    /// Changes the level at once.
    pub fn set_level(&self, level: LogLevel) {
        self.threshold
            .store(level.python_level(), Ordering::Relaxed);
    }

    /// Whether a record at `level` is written now. `level-off` is above every level, including
    /// custom levels above CRITICAL.
    pub fn enabled(&self, level: u32) -> bool {
        let threshold = self.threshold.load(Ordering::Relaxed);
        threshold <= CRITICAL && level >= threshold
    }

    /// Writes a record stamped `created` (seconds since the epoch, as Python's
    /// `LogRecord.created`). Write errors are ignored: logging must never fail the VM.
    pub fn write_at(&self, level: u32, created: f64, thread: &str, message: &str) {
        if !self.enabled(level) {
            return;
        }
        let time = epoch_to_local(created);
        let line = format_line(level, &time, &self.vm_name, thread, message);
        // One write_all per record on an O_APPEND file: lines of concurrent threads (and of a
        // second opener) do not interleave.
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let _ = file.write_all(line.as_bytes());
    }

    /// Writes a record stamped now.
    pub fn write(&self, level: u32, thread: &str, message: &str) {
        let now = Local::now();
        let created = now.timestamp() as f64 + f64::from(now.timestamp_subsec_micros()) / 1e6;
        self.write_at(level, created, thread, message);
    }
}

/// Converts Python's float timestamp to local time (the epoch itself if out of range).
fn epoch_to_local(created: f64) -> DateTime<Local> {
    let secs = created.floor();
    let nanos = ((created - secs) * 1e9).round().clamp(0.0, 999_999_999.0) as u32;
    DateTime::from_timestamp(secs as i64, nanos)
        .unwrap_or_default()
        .with_timezone(&Local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    #[test]
    fn line_format_matches_nso() {
        let time = FixedOffset::east_opt(0)
            .unwrap()
            .with_ymd_and_hms(2024, 5, 13, 10, 11, 12)
            .unwrap()
            + chrono::Duration::milliseconds(345);
        assert_eq!(
            format_line(INFO, &time, "l3vpn", "ComponentThread:main", "Main RUNNING"),
            "<INFO> 13-May-2024::10:11:12.345 l3vpn ComponentThread:main: - Main RUNNING\n"
        );
        // Day and time fields are zero-padded, the month is English and abbreviated.
        let time = FixedOffset::east_opt(3600)
            .unwrap()
            .with_ymd_and_hms(2023, 1, 2, 3, 4, 5)
            .unwrap();
        assert_eq!(
            format_line(ERROR, &time, "vm", "MainThread", "boom\n"),
            "<ERROR> 02-Jan-2023::03:04:05.000 vm MainThread: - boom\n"
        );
    }

    #[test]
    fn multi_line_messages_keep_their_lines() {
        let time = FixedOffset::east_opt(0)
            .unwrap()
            .with_ymd_and_hms(2024, 5, 13, 10, 11, 12)
            .unwrap();
        let line = format_line(
            ERROR,
            &time,
            "vm",
            "T",
            "failed\nTraceback (most recent call last):\n  x\nValueError: y\n",
        );
        assert_eq!(
            line,
            "<ERROR> 13-May-2024::10:11:12.000 vm T: - failed\nTraceback (most recent call \
             last):\n  x\nValueError: y\n"
        );
    }

    #[test]
    fn level_names_and_threshold() {
        assert_eq!(level_name(5), "DEBUG");
        assert_eq!(level_name(DEBUG), "DEBUG");
        assert_eq!(level_name(25), "INFO");
        assert_eq!(level_name(WARNING), "WARNING");
        assert_eq!(level_name(ERROR), "ERROR");
        assert_eq!(level_name(CRITICAL), "CRITICAL");
        assert_eq!(level_name(100), "CRITICAL");

        let dir = tempfile::tempdir().unwrap();
        let log = VmLog::open(&dir.path().join("sub/vm.log"), "vm", LogLevel::LevelInfo).unwrap();
        assert!(!log.enabled(DEBUG));
        assert!(log.enabled(INFO));
        log.write(DEBUG, "MainThread", "hidden");
        log.write(INFO, "MainThread", "shown");
        log.set_level(LogLevel::LevelOff);
        assert!(!log.enabled(CRITICAL));
        assert!(!log.enabled(1000));
        log.write(CRITICAL, "MainThread", "hidden too");
        log.set_level(LogLevel::LevelDebug);
        log.write_at(DEBUG, 0.5, "T", "old");
        let text = std::fs::read_to_string(dir.path().join("sub/vm.log")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("<INFO> ") && lines[0].ends_with(" vm MainThread: - shown"));
        assert!(lines[1].starts_with("<DEBUG> ") && lines[1].ends_with(" vm T: - old"));
    }
}
