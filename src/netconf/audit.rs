//! The audit log (NSO's `audit.log`): who did what, when and from where. One line per session
//! start and end, committed change (with the datastore and every changed path) and confirmed
//! commit event, in `<log-dir>/audit.log`.
//!
//! The file is opened for each line, in append mode: a line is one `write`, and a file that
//! logrotate moved away is replaced by a new one at the next line, without a signal.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{SecondsFormat, Utc};
use tracing::warn;

use crate::datastore::changes::{ConfigChange, ConfirmedCommit};
use crate::netconf::sessions::SessionInfo;

/// The audit log file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    /// Serialises the lines, and remembers that a failure was reported (once).
    failed: Mutex<bool>,
}

impl AuditLog {
    /// The log at `path` (created at the first line).
    pub fn new(path: PathBuf) -> AuditLog {
        AuditLog {
            path,
            failed: Mutex::new(false),
        }
    }

    /// `session 3 started: user admin from 127.0.0.1:4711`.
    pub fn session_started(&self, session: &SessionInfo) {
        self.line(&format!("{} started", who(session)));
    }

    /// `session 3 ended (closed): user admin from 127.0.0.1:4711`.
    pub fn session_ended(&self, session: &SessionInfo, reason: &str) {
        self.line(&format!("{} ended ({reason})", who(session)));
    }

    /// A committed change: by whom (`session`, None for the server), the datastore, and each
    /// changed path with its operation.
    pub fn config_changed(&self, session: Option<&SessionInfo>, change: &ConfigChange) {
        let by = session.map_or_else(|| "the server".to_string(), who);
        let edits: Vec<String> = change
            .edits
            .iter()
            .map(|e| format!("{} {}", e.operation.as_str(), e.target.path))
            .collect();
        self.line(&format!(
            "{by} changed {}: {}",
            change.datastore.as_str(),
            edits.join("; ")
        ));
    }

    /// A confirmed commit event.
    pub fn confirmed_commit(&self, session: Option<&SessionInfo>, event: &ConfirmedCommit) {
        let by = session.map_or_else(|| "the server".to_string(), who);
        self.line(&format!("{by}: confirmed commit {}", event.event.as_str()));
    }

    fn line(&self, text: &str) {
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        let line = format!(
            "{} {}\n",
            Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            text.replace('\n', " ")
        );
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        match written {
            Ok(()) => *failed = false,
            Err(e) if !*failed => {
                *failed = true;
                warn!(path = %self.path.display(), error = %e, "cannot write the audit log");
            }
            Err(_) => {}
        }
    }
}

/// `session 3, user admin from 127.0.0.1:4711`.
fn who(session: &SessionInfo) -> String {
    let from = session
        .addr
        .map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
    format!("session {}, user {} from {from},", session.id, session.user)
}
