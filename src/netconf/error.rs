//! `rpc-error` (RFC 6241 §4.3 and Appendix A), and the one place where the errors of the lower
//! layers are mapped onto it.

use std::fmt::Write as _;

use crate::datastore::{DatastoreError, ValidationIssue, ValidationKind};
use crate::netconf::xml::escape_text;

/// The layer an error occurred in (`error-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// Secure transport layer.
    Transport,
    /// Messages layer.
    Rpc,
    /// Operations layer.
    Protocol,
    /// Content layer.
    Application,
}

impl ErrorType {
    fn as_str(self) -> &'static str {
        match self {
            ErrorType::Transport => "transport",
            ErrorType::Rpc => "rpc",
            ErrorType::Protocol => "protocol",
            ErrorType::Application => "application",
        }
    }
}

/// The `error-tag` values of RFC 6241 Appendix A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ErrorTag {
    InUse,
    InvalidValue,
    TooBig,
    MissingAttribute,
    BadAttribute,
    UnknownAttribute,
    MissingElement,
    BadElement,
    UnknownElement,
    UnknownNamespace,
    AccessDenied,
    LockDenied,
    ResourceDenied,
    RollbackFailed,
    DataExists,
    DataMissing,
    OperationNotSupported,
    OperationFailed,
    MalformedMessage,
}

impl ErrorTag {
    /// The tag as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        use ErrorTag::*;
        match self {
            InUse => "in-use",
            InvalidValue => "invalid-value",
            TooBig => "too-big",
            MissingAttribute => "missing-attribute",
            BadAttribute => "bad-attribute",
            UnknownAttribute => "unknown-attribute",
            MissingElement => "missing-element",
            BadElement => "bad-element",
            UnknownElement => "unknown-element",
            UnknownNamespace => "unknown-namespace",
            AccessDenied => "access-denied",
            LockDenied => "lock-denied",
            ResourceDenied => "resource-denied",
            RollbackFailed => "rollback-failed",
            DataExists => "data-exists",
            DataMissing => "data-missing",
            OperationNotSupported => "operation-not-supported",
            OperationFailed => "operation-failed",
            MalformedMessage => "malformed-message",
        }
    }
}

/// One item of `error-info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorInfo {
    /// The session holding a lock, or the session a `kill-session` refers to.
    SessionId(u32),
    /// The attribute that is missing or bad.
    BadAttribute(String),
    /// The element that is missing, bad or unknown.
    BadElement(String),
    /// The namespace that is unknown.
    BadNamespace(String),
}

/// An `error-path` with the namespaces of the prefixes it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPath {
    /// The instance-identifier, prefixes being module names.
    pub path: String,
    /// (prefix, namespace) for every prefix in `path`.
    pub prefixes: Vec<(String, String)>,
}

/// One `rpc-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    /// `error-type`.
    pub error_type: ErrorType,
    /// `error-tag`.
    pub tag: ErrorTag,
    /// `error-app-tag`.
    pub app_tag: Option<String>,
    /// `error-path`: an instance-identifier of the node in error.
    pub path: Option<ErrorPath>,
    /// `error-message`, for humans.
    pub message: Option<String>,
    /// `error-info`.
    pub info: Vec<ErrorInfo>,
}

impl RpcError {
    /// An error with a type, tag and message.
    pub fn new(error_type: ErrorType, tag: ErrorTag, message: impl Into<String>) -> Self {
        RpcError {
            error_type,
            tag,
            app_tag: None,
            path: None,
            message: Some(message.into()),
            info: Vec::new(),
        }
    }

    /// Adds an `error-info` item.
    pub fn with_info(mut self, info: ErrorInfo) -> Self {
        self.info.push(info);
        self
    }

    /// A protocol error about a missing parameter of an operation.
    pub fn missing_element(element: &str) -> Self {
        RpcError::new(
            ErrorType::Protocol,
            ErrorTag::MissingElement,
            format!("missing parameter <{element}>"),
        )
        .with_info(ErrorInfo::BadElement(element.to_string()))
    }

    /// A protocol error about a parameter with a bad value.
    pub fn bad_element(element: &str, message: impl Into<String>) -> Self {
        RpcError::new(ErrorType::Protocol, ErrorTag::BadElement, message)
            .with_info(ErrorInfo::BadElement(element.to_string()))
    }

    /// A message that cannot be processed as it stands. `malformed-message` is new in base:1.1
    /// and must not be sent to base:1.0 clients, which get `operation-failed`.
    pub fn malformed(base_1_1: bool, message: impl Into<String>) -> Self {
        let tag = if base_1_1 {
            ErrorTag::MalformedMessage
        } else {
            ErrorTag::OperationFailed
        };
        RpcError::new(ErrorType::Rpc, tag, message)
    }

    /// An operation that access control (RFC 8341) does not allow this user.
    pub fn access_denied(message: impl Into<String>) -> Self {
        RpcError::new(ErrorType::Protocol, ErrorTag::AccessDenied, message)
    }

    /// An operation this server does not support.
    pub fn not_supported(message: impl Into<String>) -> Self {
        RpcError::new(
            ErrorType::Protocol,
            ErrorTag::OperationNotSupported,
            message,
        )
    }

    /// Writes the `<rpc-error>` element (in the base namespace, which the enclosing
    /// `<rpc-reply>` declares as default).
    pub fn write_xml(&self, out: &mut String) {
        out.push_str("<rpc-error>");
        let _ = write!(
            out,
            "<error-type>{}</error-type><error-tag>{}</error-tag><error-severity>error</error-severity>",
            self.error_type.as_str(),
            self.tag.as_str()
        );
        if let Some(app_tag) = &self.app_tag {
            let _ = write!(
                out,
                "<error-app-tag>{}</error-app-tag>",
                escape_text(app_tag)
            );
        }
        if let Some(path) = &self.path {
            write_error_path(out, path);
        }
        if let Some(message) = &self.message {
            let _ = write!(
                out,
                "<error-message xml:lang=\"en\">{}</error-message>",
                escape_text(message)
            );
        }
        if !self.info.is_empty() {
            out.push_str("<error-info>");
            for info in &self.info {
                match info {
                    ErrorInfo::SessionId(id) => {
                        let _ = write!(out, "<session-id>{id}</session-id>");
                    }
                    ErrorInfo::BadAttribute(a) => {
                        let _ = write!(out, "<bad-attribute>{}</bad-attribute>", escape_text(a));
                    }
                    ErrorInfo::BadElement(e) => {
                        let _ = write!(out, "<bad-element>{}</bad-element>", escape_text(e));
                    }
                    ErrorInfo::BadNamespace(n) => {
                        let _ = write!(out, "<bad-namespace>{}</bad-namespace>", escape_text(n));
                    }
                }
            }
            out.push_str("</error-info>");
        }
        out.push_str("</rpc-error>");
    }
}

/// Writes `error-path`. libyang reports paths with module names as prefixes
/// (`/tailf-ncs:python-vm/logging/level`); an XML instance-identifier needs those prefixes bound,
/// so each one is declared for the namespace the datastore resolved it to.
fn write_error_path(out: &mut String, path: &ErrorPath) {
    let mut decls = String::new();
    for (prefix, ns) in &path.prefixes {
        let _ = write!(decls, " xmlns:{prefix}=\"{}\"", escape_text(ns));
    }
    let _ = write!(
        out,
        "<error-path{decls}>{}</error-path>",
        escape_text(&path.path)
    );
}

/// Serialises a list of errors as the body of an `<rpc-reply>`.
pub fn errors_xml(errors: &[RpcError]) -> String {
    let mut out = String::new();
    for e in errors {
        e.write_xml(&mut out);
    }
    out
}

impl RpcError {
    /// Maps a datastore error onto the rpc-errors that report it (one per validation issue).
    pub fn from_datastore(e: DatastoreError) -> Vec<RpcError> {
        use DatastoreError as D;
        let with_path = |mut error: RpcError, path: String| {
            error.path = Some(error_path(path));
            error
        };
        match e {
            D::Validation(issues) => issues.into_iter().map(from_issue).collect(),
            D::DataExists { path } => vec![with_path(
                RpcError::new(
                    ErrorType::Application,
                    ErrorTag::DataExists,
                    format!("data already exists: {path}"),
                ),
                path,
            )],
            D::AccessDenied { ref path, .. } => vec![with_path(
                RpcError::new(
                    ErrorType::Application,
                    ErrorTag::AccessDenied,
                    e.to_string(),
                ),
                path.clone(),
            )],
            D::DataMissing { path } => vec![with_path(
                RpcError::new(
                    ErrorType::Application,
                    ErrorTag::DataMissing,
                    format!("data does not exist: {path}"),
                ),
                path,
            )],
            D::BadOperation { value } => vec![
                RpcError::new(
                    ErrorType::Protocol,
                    ErrorTag::BadAttribute,
                    format!("unknown edit operation \"{value}\""),
                )
                .with_info(ErrorInfo::BadAttribute("operation".into())),
            ],
            D::Locked { holder, .. } => vec![
                RpcError::new(ErrorType::Protocol, ErrorTag::InUse, e.to_string())
                    .with_info(ErrorInfo::SessionId(holder)),
            ],
            D::LockDenied { holder, .. } => vec![
                RpcError::new(ErrorType::Protocol, ErrorTag::LockDenied, e.to_string())
                    .with_info(ErrorInfo::SessionId(holder)),
            ],
            // No session holds the lock; RFC 6241 §7.5 has session-id 0 for "not a session".
            D::CandidateModified => vec![
                RpcError::new(ErrorType::Protocol, ErrorTag::LockDenied, e.to_string())
                    .with_info(ErrorInfo::SessionId(0)),
            ],
            D::NotLocked { .. } | D::NoPendingCommit => vec![RpcError::new(
                ErrorType::Protocol,
                ErrorTag::OperationFailed,
                e.to_string(),
            )],
            D::ConfirmedCommitOwned { holder } => vec![
                RpcError::new(ErrorType::Protocol, ErrorTag::InUse, e.to_string())
                    .with_info(ErrorInfo::SessionId(holder)),
            ],
            D::PersistId(_) => vec![
                RpcError::new(ErrorType::Protocol, ErrorTag::InvalidValue, e.to_string())
                    .with_info(ErrorInfo::BadElement("persist-id".into())),
            ],
            D::SameSourceAndTarget => vec![
                RpcError::new(ErrorType::Protocol, ErrorTag::InvalidValue, e.to_string())
                    .with_info(ErrorInfo::BadElement("target".into())),
            ],
            D::NotSupported(_) | D::NotWritable(_) => vec![RpcError::not_supported(e.to_string())],
            D::BadPath { .. } => vec![RpcError::new(
                ErrorType::Application,
                ErrorTag::InvalidValue,
                e.to_string(),
            )],
            D::BadXPath(_) => vec![
                RpcError::new(ErrorType::Protocol, ErrorTag::InvalidValue, e.to_string())
                    .with_info(ErrorInfo::BadAttribute("select".into()))
                    .with_info(ErrorInfo::BadElement("filter".into())),
            ],
            D::Service { ref path, .. } => {
                let path = path.clone();
                vec![with_path(
                    RpcError::new(
                        ErrorType::Application,
                        ErrorTag::OperationFailed,
                        e.to_string(),
                    ),
                    path,
                )]
            }
            e @ (D::Persist(_) | D::Internal(_)) => vec![RpcError::new(
                ErrorType::Application,
                ErrorTag::OperationFailed,
                e.to_string(),
            )],
        }
    }
}

/// RFC 7950 §15 gives the error-tag of most YANG validation failures by app tag; the rest
/// follow from what kind of problem libyang saw.
fn from_issue(issue: ValidationIssue) -> RpcError {
    let tag = match (issue.app_tag.as_deref(), issue.kind) {
        (
            Some("too-many-elements" | "too-few-elements" | "must-violation" | "data-not-unique"),
            _,
        ) => ErrorTag::OperationFailed,
        (Some("instance-required" | "missing-choice"), _) => ErrorTag::DataMissing,
        (Some("missing-instance"), _) => ErrorTag::BadAttribute,
        (_, ValidationKind::UnknownElement) => ErrorTag::UnknownElement,
        (_, ValidationKind::Missing) => ErrorTag::DataMissing,
        (_, ValidationKind::Syntax) => ErrorTag::MalformedMessage,
        (_, ValidationKind::Value) => ErrorTag::InvalidValue,
        (_, ValidationKind::Other) => ErrorTag::OperationFailed,
    };
    let error_type = match tag {
        ErrorTag::MalformedMessage => ErrorType::Rpc,
        _ => ErrorType::Application,
    };
    // RFC 6241 App. A: unknown-element names the element; libyang quotes it in its message
    // ("Node \"x\" not found ...").
    let bad_element = (tag == ErrorTag::UnknownElement)
        .then(|| issue.message.split('"').nth(1).map(str::to_string))
        .flatten();
    let mut error = RpcError::new(error_type, tag, issue.message);
    error.info.extend(bad_element.map(ErrorInfo::BadElement));
    error.app_tag = issue.app_tag;
    error.path = issue.path.map(error_path);
    error
}

/// Resolves the module-name prefixes of a libyang data path to namespaces.
fn error_path(path: String) -> ErrorPath {
    let mut prefixes: Vec<(String, String)> = Vec::new();
    for segment in path.split('/') {
        let Some((module, _)) = segment.split_once(':') else {
            continue;
        };
        if prefixes.iter().any(|(p, _)| p == module) {
            continue;
        }
        if let Some(ns) = crate::yang::module_namespace(module) {
            prefixes.push((module.to_string(), ns));
        }
    }
    ErrorPath { path, prefixes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_error_xml_has_all_parts() {
        let e = RpcError::new(ErrorType::Protocol, ErrorTag::LockDenied, "locked <by> 3")
            .with_info(ErrorInfo::SessionId(3));
        let mut out = String::new();
        e.write_xml(&mut out);
        assert_eq!(
            out,
            "<rpc-error><error-type>protocol</error-type><error-tag>lock-denied</error-tag>\
             <error-severity>error</error-severity><error-message xml:lang=\"en\">locked &lt;by&gt; 3\
             </error-message><error-info><session-id>3</session-id></error-info></rpc-error>"
        );
    }
}
