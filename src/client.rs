//! A small SSH client for our tests and benchmarks: one `netconf` subsystem channel as a byte
//! stream ([`SshChannel`]). It accepts any host key, so it is not meant for production use.
//! NETCONF framing is layered on top of it, further down in this file.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use russh::client::{self, Handle, Msg};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, ChannelWriteHalf, Disconnect};
use tokio::sync::mpsc;

use crate::netconf::capabilities::{BASE_1_0, BASE_1_1};
use crate::netconf::framing::{FrameDecoder, Framing, encode};
use crate::netconf::xml::{self, NS_BASE};

/// The russh client handler: trusts every host key (test servers generate fresh ones).
struct AcceptAnyHostKey;

impl client::Handler for AcceptAnyHostKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// One SSH connection with one `netconf` subsystem channel.
///
/// Received data is drained from the connection continuously by a background task (into an
/// unbounded queue, which is fine for a test client): russh's connection loop stalls when a
/// channel's buffer is full, and then could not process the window adjustments that a large
/// [`send`](Self::send) waits for.
pub struct SshChannel {
    session: Handle<AcceptAnyHostKey>,
    write: ChannelWriteHalf<Msg>,
    input: mpsc::UnboundedReceiver<Vec<u8>>,
}

impl SshChannel {
    /// Connects to `addr`, logs in as `user` with `password` and starts the `netconf`
    /// subsystem. Fails if the login or the subsystem is refused.
    pub async fn connect(addr: SocketAddr, user: &str, password: &str) -> anyhow::Result<Self> {
        let mut session = open(addr).await?;
        let auth = session
            .authenticate_password(user, password)
            .await
            .context("password authentication")?;
        ensure!(
            auth.success(),
            "password authentication as {user:?} refused"
        );
        Self::start_netconf(session).await
    }

    /// Like [`connect`](Self::connect), but logs in with the private key `key`.
    pub async fn connect_with_key(
        addr: SocketAddr,
        user: &str,
        key: PrivateKey,
    ) -> anyhow::Result<Self> {
        let mut session = open(addr).await?;
        // For RSA keys, sign with the best hash the server announced (rsa-sha2-512/256).
        let hash = session
            .best_supported_rsa_hash()
            .await
            .context("negotiating the RSA signature hash")?
            .flatten();
        let auth = session
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
            .await
            .context("public key authentication")?;
        ensure!(
            auth.success(),
            "public key authentication as {user:?} refused"
        );
        Self::start_netconf(session).await
    }

    async fn start_netconf(session: Handle<AcceptAnyHostKey>) -> anyhow::Result<Self> {
        let channel = session
            .channel_open_session()
            .await
            .context("opening a session channel")?;
        channel
            .request_subsystem(true, "netconf")
            .await
            .context("requesting the netconf subsystem")?;
        let (mut read, write) = channel.split();
        let (tx, input) = mpsc::unbounded_channel();
        loop {
            match read.wait().await {
                Some(ChannelMsg::Success) => break,
                Some(ChannelMsg::Failure) => bail!("the server refused the netconf subsystem"),
                // Not expected before the reply, but keep it rather than lose it.
                Some(ChannelMsg::Data { data }) => {
                    let _ = tx.send(data.to_vec());
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                    bail!("the channel closed before the netconf subsystem started")
                }
                Some(_) => {}
            }
        }
        tokio::spawn(async move {
            let mut tx = Some(tx);
            // Keep draining after EOF too (until the channel is gone), so that the connection
            // never stalls on this channel.
            while let Some(msg) = read.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        if let Some(tx) = &tx {
                            let _ = tx.send(data.to_vec());
                        }
                    }
                    // Dropping the sender makes `recv` return `None` after the queued data.
                    ChannelMsg::Eof | ChannelMsg::Close => tx = None,
                    _ => {}
                }
            }
        });
        Ok(SshChannel {
            session,
            write,
            input,
        })
    }

    /// Sends `data` on the channel, waiting for the server's window as needed.
    pub async fn send(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.write
            .data_bytes(data.to_vec())
            .await
            .context("sending on the SSH channel")
    }

    /// The next chunk of data from the server; `None` once the server sent EOF or closed the
    /// channel (or the connection is gone).
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.input.recv().await
    }

    /// Ends the channel (EOF, close) and the connection. Errors are ignored: the other end
    /// may already be gone.
    pub async fn close(self) {
        let _ = self.write.eof().await;
        let _ = self.write.close().await;
        let _ = self
            .session
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// Connects and runs the key exchange.
async fn open(addr: SocketAddr) -> anyhow::Result<Handle<AcceptAnyHostKey>> {
    let config = client::Config {
        // Benchmarks measure request latency; do not let Nagle's algorithm add to it.
        nodelay: true,
        ..Default::default()
    };
    client::connect(Arc::new(config), addr, AcceptAnyHostKey)
        .await
        .with_context(|| format!("SSH connection to {addr}"))
}

/// A minimal NETCONF client over [`SshChannel`]: hello exchange, framing, one rpc at a time,
/// and the notifications of a subscription (which may arrive between an rpc and its reply).
/// Light enough that benchmarks measure the server rather than the client.
pub struct NetconfClient {
    channel: SshChannel,
    decoder: FrameDecoder,
    next_message_id: u64,
    /// Notifications that arrived while an rpc waited for its reply.
    notifications: std::collections::VecDeque<Vec<u8>>,
    /// The session-id the server assigned.
    pub session_id: u32,
    /// The capabilities the server announced.
    pub capabilities: Vec<String>,
}

impl NetconfClient {
    /// Connects, logs in with a password and exchanges hellos (announcing base:1.0 and 1.1).
    pub async fn connect(addr: SocketAddr, user: &str, password: &str) -> anyhow::Result<Self> {
        let channel = SshChannel::connect(addr, user, password).await?;
        Self::start(channel).await
    }

    /// Exchanges hellos on an open `netconf` channel.
    pub async fn start(channel: SshChannel) -> anyhow::Result<Self> {
        let mut client = NetconfClient {
            channel,
            decoder: FrameDecoder::new(usize::MAX / 2),
            next_message_id: 1,
            notifications: std::collections::VecDeque::new(),
            session_id: 0,
            capabilities: Vec::new(),
        };
        let hello = client.recv_message().await?;
        let hello = xml::parse(&hello)?;
        client.session_id = hello
            .child(NS_BASE, "session-id")
            .and_then(|e| e.text().trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("server hello without a session-id"))?;
        client.capabilities = hello
            .child(NS_BASE, "capabilities")
            .map(|c| c.elements().map(|e| e.text().trim().to_string()).collect())
            .unwrap_or_default();
        let ours = format!(
            "<hello xmlns=\"{NS_BASE}\"><capabilities><capability>{BASE_1_0}</capability>\
             <capability>{BASE_1_1}</capability></capabilities></hello>"
        );
        client.send_message(ours.as_bytes()).await?;
        if client.capabilities.iter().any(|c| c == BASE_1_1) {
            client.decoder.set_framing(Framing::Chunked);
        }
        Ok(client)
    }

    /// Sends `<rpc>` around `operation` and returns the text of the `<rpc-reply>`.
    pub async fn rpc(&mut self, operation: &str) -> anyhow::Result<String> {
        let id = self.next_message_id;
        self.next_message_id += 1;
        let message = format!("<rpc xmlns=\"{NS_BASE}\" message-id=\"{id}\">{operation}</rpc>");
        self.send_message(message.as_bytes()).await?;
        loop {
            let message = self.recv_message().await?;
            if is_notification(&message) {
                self.notifications.push_back(message);
                continue;
            }
            return Ok(String::from_utf8(message)?);
        }
    }

    /// The next notification (of a subscription made with `create-subscription`).
    pub async fn notification(&mut self) -> anyhow::Result<Vec<u8>> {
        if let Some(queued) = self.notifications.pop_front() {
            return Ok(queued);
        }
        let message = self.recv_message().await?;
        anyhow::ensure!(
            is_notification(&message),
            "expected a notification, got: {}",
            String::from_utf8_lossy(&message)
        );
        Ok(message)
    }

    /// Sends one message with the session's framing.
    pub async fn send_message(&mut self, message: &[u8]) -> anyhow::Result<()> {
        self.channel
            .send(&encode(self.decoder.framing(), message))
            .await
    }

    /// Receives the next complete message.
    pub async fn recv_message(&mut self) -> anyhow::Result<Vec<u8>> {
        loop {
            if let Some(m) = self.decoder.next_message()? {
                return Ok(m);
            }
            match self.channel.recv().await {
                Some(bytes) => self.decoder.extend(&bytes),
                None => anyhow::bail!("the server closed the session"),
            }
        }
    }

    /// Sends `close-session` and closes the channel.
    pub async fn close(mut self) -> anyhow::Result<()> {
        let reply = self.rpc("<close-session/>").await?;
        anyhow::ensure!(reply.contains("<ok/>"), "close-session failed: {reply}");
        self.channel.close().await;
        Ok(())
    }
}

/// True for a `<notification>` message (as this server writes them: the element first).
fn is_notification(message: &[u8]) -> bool {
    let text = message.trim_ascii_start();
    let text = match text.strip_prefix(b"<?xml") {
        Some(rest) => rest
            .iter()
            .position(|&b| b == b'>')
            .map_or(rest, |i| rest[i + 1..].trim_ascii_start()),
        None => text,
    };
    text.starts_with(b"<notification")
}

#[cfg(test)]
mod tests {
    // Round trips against the real server are tested in `ssh::server`; these cover failures.
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::*;

    async fn bounded<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(30), f)
            .await
            .expect("timed out")
    }

    #[tokio::test]
    async fn connecting_to_a_closed_port_fails() {
        // Bind and drop to get a port that (almost certainly) has no listener.
        let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("addr");
        assert!(bounded(SshChannel::connect(addr, "u", "p")).await.is_err());
    }

    #[tokio::test]
    async fn a_server_that_is_not_ssh_is_an_error_not_a_hang() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        assert!(bounded(SshChannel::connect(addr, "u", "p")).await.is_err());
    }
}
