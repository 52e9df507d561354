//! The SSH transport (RFC 6242): a russh server that authenticates users and hands every
//! `netconf` subsystem channel to the NETCONF layer as a [`NetconfIo`].

mod auth;
mod host_keys;
mod server;
mod throttle;

pub use auth::{AuthConfig, UserDirectory, UserPassword};
pub use server::{SshConfig, serve};
pub use throttle::ThrottleConfig;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

/// The byte streams of one `netconf` subsystem channel.
///
/// `input` yields the bytes the client sends, in order, and ends (`None`) when the client sends
/// EOF or the connection goes away. The SSH layer drains the channel continuously into this
/// bounded queue, so a session that is busy writing a large reply never stalls the connection
/// (russh stops processing window updates when a channel's buffer is full).
pub struct NetconfIo {
    /// Bytes from the client; `None` once the client is gone.
    pub input: mpsc::Receiver<Vec<u8>>,
    /// What the session writes; a writer task owned by the SSH layer sends it on the channel.
    /// Sending fails once the channel is gone.
    pub output: mpsc::Sender<Output>,
    /// Closes the channel at once, dropping what is not written yet: for a session that ends
    /// while its client does not read (the writer would otherwise wait for window space that
    /// never comes).
    pub abort: Arc<tokio::sync::Notify>,
}

/// One instruction for the writer task of a channel.
#[derive(Debug)]
pub enum Output {
    /// Bytes for the client.
    Data(Vec<u8>),
    /// End the channel cleanly: exit status 0, EOF, close.
    Close,
}

/// Who is on the other end of a session.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The authenticated user name.
    pub user: String,
    /// The client's address.
    pub addr: Option<SocketAddr>,
}

/// Called once for each accepted `netconf` subsystem; it must return quickly (spawn a task).
pub type SubsystemStarter = Arc<dyn Fn(NetconfIo, Peer) + Send + Sync>;
