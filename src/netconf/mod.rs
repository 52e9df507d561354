//! The NETCONF protocol layer (RFC 6241, RFC 6242): framing, sessions, the rpc envelope, the
//! operations, and the mapping of errors onto `rpc-error`.

pub mod capabilities;
pub mod error;
pub mod framing;
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
    /// Live sessions.
    pub sessions: Sessions,
    /// What the server's `<hello>` announces.
    pub capabilities: Vec<String>,
    /// The largest message a client may send, in bytes.
    pub max_message_size: usize,
    /// How long a client has to send its `<hello>`.
    pub hello_timeout: Duration,
}
