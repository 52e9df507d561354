//! The NETCONF protocol layer (RFC 6241, RFC 6242): framing, sessions, the rpc envelope, the
//! operations, and the mapping of errors onto `rpc-error`.

pub mod capabilities;
pub mod error;
pub mod framing;
pub mod library;
mod ops;
pub mod rpc;
pub mod session;
pub mod sessions;
pub mod xml;

use std::sync::Arc;
use std::time::Duration;

use crate::datastore::Datastore;
use sessions::Sessions;

/// State shared by all NETCONF sessions.
pub struct NetconfServer {
    /// The running datastore.
    pub datastore: Arc<Datastore>,
    /// The Python VM runtime: operational data and actions.
    pub runtime: Arc<crate::runtime::Runtime>,
    /// Live sessions.
    pub sessions: Sessions,
    /// What the server's `<hello>` announces.
    pub capabilities: Vec<String>,
    /// The largest message a client may send, in bytes.
    pub max_message_size: usize,
    /// How long a client has to send its `<hello>`.
    pub hello_timeout: Duration,
    /// The YANG modules (`<get-schema>` serves their text).
    pub yang: Arc<crate::yang::YangContext>,
    /// The YANG library built from them (monitoring, `/modules-state`, `/yang-library`).
    pub library: Arc<library::Library>,
}
