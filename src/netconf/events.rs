//! The RFC 6470 base events of the `NETCONF` stream: configuration changes, session start and
//! end, confirmed commits and capability changes, built as `ietf-netconf-notifications` XML and
//! published on the stream.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use quick_xml::escape::escape;
use tracing::warn;

use crate::datastore::changes::{ChangeListener, ConfigChange, ConfirmedCommit};
use crate::netconf::audit::AuditLog;
use crate::netconf::sessions::{SessionInfo, Sessions};
use crate::notify::{NETCONF_STREAM, Notifier};

/// The `ietf-netconf-notifications` namespace (RFC 6470).
pub const NS_BASE_NOTIFICATIONS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications";

/// Why a session ended (RFC 6470 `termination-reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// `close-session`.
    Closed,
    /// `kill-session` by the given session.
    Killed(u32),
    /// The transport went away.
    Dropped,
    /// No `<hello>` in time.
    Timeout,
    /// The `<hello>` was wrong.
    BadHello,
    /// Anything else (a framing error, a subscription that overflowed).
    Other,
}

impl Termination {
    fn as_str(self) -> &'static str {
        match self {
            Termination::Closed => "closed",
            Termination::Killed(_) => "killed",
            Termination::Dropped => "dropped",
            Termination::Timeout => "timeout",
            Termination::BadHello => "bad-hello",
            Termination::Other => "other",
        }
    }
}

/// Publishes the base events; the datastore's change listener.
pub struct BaseEvents {
    notifier: Arc<Notifier>,
    sessions: Arc<Sessions>,
    /// The same events, as lines of the audit log (when the server keeps one).
    audit: OnceLock<AuditLog>,
}

impl BaseEvents {
    /// Events about `sessions`, published on `notifier`'s `NETCONF` stream.
    pub fn new(notifier: Arc<Notifier>, sessions: Arc<Sessions>) -> BaseEvents {
        BaseEvents {
            notifier,
            sessions,
            audit: OnceLock::new(),
        }
    }

    /// Writes the session and change events to `audit` too, from now on.
    pub fn keep_audit_log(&self, audit: AuditLog) {
        let _ = self.audit.set(audit);
    }

    /// The session `id` for the audit log: None for the server (0) or a session gone.
    fn session(&self, id: u32) -> Option<SessionInfo> {
        (id != 0).then(|| self.sessions.get(id)).flatten()
    }

    fn publish(&self, body: &str) {
        if let Err(e) = self.notifier.publish(NETCONF_STREAM, body) {
            warn!(error = %e, "cannot publish a base event");
        }
    }

    /// `netconf-session-start`.
    pub fn session_start(&self, session: &SessionInfo) {
        if let Some(audit) = self.audit.get() {
            audit.session_started(session);
        }
        self.publish(&format!(
            "<netconf-session-start xmlns=\"{NS_BASE_NOTIFICATIONS}\">{}</netconf-session-start>",
            session_parms(session)
        ));
    }

    /// `netconf-session-end`.
    pub fn session_end(&self, session: &SessionInfo, reason: Termination) {
        if let Some(audit) = self.audit.get() {
            audit.session_ended(session, reason.as_str());
        }
        let killed_by = match reason {
            Termination::Killed(by) if by != 0 => format!("<killed-by>{by}</killed-by>"),
            _ => String::new(),
        };
        self.publish(&format!(
            "<netconf-session-end xmlns=\"{NS_BASE_NOTIFICATIONS}\">{}{killed_by}\
             <termination-reason>{}</termination-reason></netconf-session-end>",
            session_parms(session),
            reason.as_str()
        ));
    }

    /// `netconf-capability-change` by the server (a package reload changed the modules).
    pub fn capability_change(&self, old: &[String], new: &[String]) {
        let (added, deleted, modified) = capability_delta(old, new);
        if added.is_empty() && deleted.is_empty() && modified.is_empty() {
            return;
        }
        let mut body = format!(
            "<netconf-capability-change xmlns=\"{NS_BASE_NOTIFICATIONS}\">\
             <changed-by><server/></changed-by>"
        );
        for (name, list) in [
            ("added-capability", added),
            ("deleted-capability", deleted),
            ("modified-capability", modified),
        ] {
            for uri in list {
                let _ = write!(body, "<{name}>{}</{name}>", escape(uri));
            }
        }
        body.push_str("</netconf-capability-change>");
        self.publish(&body);
    }

    /// `<changed-by>` for a change by session `id` (0, or a session gone: the server).
    fn changed_by(&self, id: u32) -> String {
        match self.sessions.get(id) {
            Some(session) if id != 0 => {
                format!("<changed-by>{}</changed-by>", session_parms(&session))
            }
            _ => "<changed-by><server/></changed-by>".into(),
        }
    }
}

impl ChangeListener for BaseEvents {
    fn config_changed(&self, change: ConfigChange) {
        if let Some(audit) = self.audit.get() {
            audit.config_changed(self.session(change.session).as_ref(), &change);
        }
        let mut body = format!(
            "<netconf-config-change xmlns=\"{NS_BASE_NOTIFICATIONS}\">{}<datastore>{}</datastore>",
            self.changed_by(change.session),
            change.datastore.as_str()
        );
        for edit in &change.edits {
            let _ = write!(
                body,
                "<edit><target{}>{}</target><operation>{}</operation></edit>",
                edit.target.xmlns(),
                escape(&edit.target.path),
                edit.operation.as_str()
            );
        }
        body.push_str("</netconf-config-change>");
        self.publish(&body);
    }

    fn confirmed_commit(&self, event: ConfirmedCommit) {
        if let Some(audit) = self.audit.get() {
            let session = event.session.and_then(|id| self.session(id));
            audit.confirmed_commit(session.as_ref(), &event);
        }
        let session = event
            .session
            .and_then(|id| self.sessions.get(id))
            .map(|s| session_parms(&s))
            .unwrap_or_default();
        let timeout = event
            .timeout
            .map(|t| format!("<timeout>{}</timeout>", t.as_secs()))
            .unwrap_or_default();
        self.publish(&format!(
            "<netconf-confirmed-commit xmlns=\"{NS_BASE_NOTIFICATIONS}\">{session}\
             <confirm-event>{}</confirm-event>{timeout}</netconf-confirmed-commit>",
            event.event.as_str()
        ));
    }
}

/// `username`, `session-id` and `source-host` (RFC 6470 `common-session-parms`).
fn session_parms(session: &SessionInfo) -> String {
    let host = session
        .addr
        .map(|a| format!("<source-host>{}</source-host>", a.ip().to_canonical()))
        .unwrap_or_default();
    format!(
        "<username>{}</username><session-id>{}</session-id>{host}",
        escape(&session.user),
        session.id
    )
}

/// Capabilities added, deleted, and modified (same base URI, other parameters).
fn capability_delta<'a>(
    old: &'a [String],
    new: &'a [String],
) -> (Vec<&'a String>, Vec<&'a String>, Vec<&'a String>) {
    let base = |uri: &str| uri.split('?').next().unwrap_or(uri).to_string();
    let mut added = Vec::new();
    let mut modified = Vec::new();
    for uri in new.iter().filter(|u| !old.contains(u)) {
        if old.iter().any(|o| base(o) == base(uri)) {
            modified.push(uri);
        } else {
            added.push(uri);
        }
    }
    let deleted = old
        .iter()
        .filter(|u| !new.contains(u) && !new.iter().any(|n| base(n) == base(u)))
        .collect();
    (added, deleted, modified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_changes_are_sorted_into_added_deleted_modified() {
        let old = vec![
            "urn:a?module=a&revision=1".to_string(),
            "urn:b?module=b".to_string(),
            "urn:same".to_string(),
        ];
        let new = vec![
            "urn:a?module=a&revision=2".to_string(),
            "urn:c?module=c".to_string(),
            "urn:same".to_string(),
        ];
        let (added, deleted, modified) = capability_delta(&old, &new);
        assert_eq!(added, vec!["urn:c?module=c"]);
        assert_eq!(deleted, vec!["urn:b?module=b"]);
        assert_eq!(modified, vec!["urn:a?module=a&revision=2"]);
    }
}
