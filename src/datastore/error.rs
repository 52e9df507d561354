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
    /// The configuration could not be written to disk; it was not committed.
    #[error("cannot save the configuration: {0}")]
    Persist(#[from] std::io::Error),
    /// A failure inside the server that a client cannot cause.
    #[error("internal error: {0}")]
    Internal(String),
}
