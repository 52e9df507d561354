//! Errors of the datastore layer. The NETCONF layer maps them onto `rpc-error` in one place
//! (`netconf::error`).

use thiserror::Error;

/// What kind of problem libyang found, as far as NETCONF's error tags care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationKind {
    /// The XML itself is broken.
    Syntax,
    /// An element that no loaded schema defines.
    UnknownElement,
    /// A value that its type does not allow.
    Value,
    /// A mandatory node or a referenced instance is missing.
    Missing,
    /// Anything else (must, unique, min/max-elements, ...), told apart by the app tag.
    Other,
}

/// One problem found while parsing or validating data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationIssue {
    /// libyang's message.
    pub message: String,
    /// The data path of the offending node (module names as prefixes).
    pub path: Option<String>,
    /// The YANG error-app-tag, e.g. `must-violation` or `data-not-unique`.
    pub app_tag: Option<String>,
    /// The kind of problem.
    pub kind: ValidationKind,
}

/// Why a datastore operation failed. Nothing was changed when one is returned.
#[derive(Debug, Error)]
pub enum DatastoreError {
    /// The data does not parse or does not validate against the schema.
    #[error("invalid data: {}", .0.first().map(|i| i.message.as_str()).unwrap_or("?"))]
    Validation(Vec<ValidationIssue>),
    /// `create` of something that already exists.
    #[error("data already exists: {path}")]
    DataExists {
        /// The data path.
        path: String,
    },
    /// Access control (RFC 8341) does not allow the user this change.
    #[error("access denied: {operation} of {path} is not permitted")]
    AccessDenied {
        /// What was refused: create, update or delete.
        operation: &'static str,
        /// The data path of the node.
        path: String,
    },
    /// `delete` (or an edit under `none`) of something that does not exist.
    #[error("data does not exist: {path}")]
    DataMissing {
        /// The data path.
        path: String,
    },
    /// An `operation` attribute with a value that is not an edit operation.
    #[error("unknown edit operation {value:?}")]
    BadOperation {
        /// The value found.
        value: String,
    },
    /// Another session holds the lock on the datastore to be changed.
    #[error("the {} datastore is locked by session {holder}", datastore.as_str())]
    Locked {
        /// The locked datastore.
        datastore: super::DatastoreName,
        /// The session holding the lock.
        holder: super::SessionId,
    },
    /// `lock` of a datastore that a session (maybe the requester) already holds.
    #[error("the {} datastore is already locked by session {holder}", datastore.as_str())]
    LockDenied {
        /// The datastore.
        datastore: super::DatastoreName,
        /// The session holding the lock.
        holder: super::SessionId,
    },
    /// `lock` of the candidate while it has uncommitted changes (RFC 6241 §7.5).
    #[error("the candidate has uncommitted changes; commit or discard them before locking it")]
    CandidateModified,
    /// `unlock` of a lock the session does not hold.
    #[error("the {} datastore is not locked by this session", datastore.as_str())]
    NotLocked {
        /// The datastore.
        datastore: super::DatastoreName,
    },
    /// A confirmed commit without `persist` is pending, and it belongs to another session.
    #[error("a confirmed commit of session {holder} is pending")]
    ConfirmedCommitOwned {
        /// The session that issued it.
        holder: super::SessionId,
    },
    /// A `persist-id` that does not match the pending confirmed commit (or is missing).
    #[error("{0}")]
    PersistId(String),
    /// `cancel-commit` with no confirmed commit pending.
    #[error("no confirmed commit is pending")]
    NoPendingCommit,
    /// `copy-config` with the same source and target.
    #[error("the source and the target are the same datastore")]
    SameSourceAndTarget,
    /// An operation the datastore does not allow, e.g. deleting running.
    #[error("{0}")]
    NotSupported(String),
    /// An XPath expression that does not parse or cannot be evaluated.
    #[error("invalid XPath: {0}")]
    BadXPath(String),
    /// The configuration could not be written to disk; it was not committed.
    #[error("cannot save the configuration: {0}")]
    Persist(#[from] std::io::Error),
    /// A keypath (of the Python API) that does not name a node of the schema.
    #[error("bad path {path}: {reason}")]
    BadPath {
        /// The keypath.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A write through a read-only transaction, or to state data.
    #[error("{0}")]
    NotWritable(String),
    /// A service callback (or the servicepoint's registration) failed: the commit is aborted.
    #[error("service {keypath}: {message}")]
    Service {
        /// The instance's libyang data path.
        path: String,
        /// The instance's keypath, NSO's form (`/svc:vlan{10}`).
        keypath: String,
        /// What went wrong (the Python message).
        message: String,
    },
    /// A failure inside the server that a client cannot cause.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DatastoreError {
    /// The error as one line: for a validation error, every problem with its path.
    pub fn detail(&self) -> String {
        match self {
            DatastoreError::Validation(issues) => issues
                .iter()
                .map(|i| match &i.path {
                    Some(path) => format!("{path}: {}", i.message),
                    None => i.message.clone(),
                })
                .collect::<Vec<_>>()
                .join("; "),
            e => e.to_string(),
        }
    }
}
