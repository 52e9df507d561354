//! The russh server: accepts connections, authenticates them (see [`super::auth`]) and turns
//! every `netconf` subsystem channel into a [`NetconfIo`] for the NETCONF layer.
//!
//! Per channel, two tasks do the I/O so that the NETCONF session never touches russh:
//! - a **reader** that drains the channel from the moment it is opened and queues the data for
//!   the session. It never blocks on the session: russh's connection loop waits when a
//!   channel's message buffer is full, and a stalled loop cannot process the window
//!   adjustments the writer is waiting for, so a session that writes a large reply without
//!   reading would deadlock. Instead the queued bytes are bounded by
//!   [`SshConfig::input_queue_bytes`] and a client that exceeds the bound loses the channel.
//! - a **writer** that owns the write side and executes [`Output`]s, waiting for the client's
//!   window as needed (this is the session's backpressure).
//!
//! Everything but the `netconf` subsystem is refused with `channel_failure` (russh's default
//! handlers never answer, and the client would hang waiting).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use russh::keys::PrivateKey;
use russh::server::{Auth, ChannelOpenHandle, Handle, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Pty, SshId};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::auth::{AuthConfig, Authenticator};
use super::host_keys;
use super::throttle::LoginThrottle;
use super::{NetconfIo, Output, Peer, SubsystemStarter};

/// The name of the only subsystem served (RFC 6242).
const NETCONF_SUBSYSTEM: &str = "netconf";
/// How long a client may take from connecting to being authenticated (OpenSSH's default
/// `LoginGraceTime`). Without it, connections that never authenticate would live forever,
/// since there is no inactivity timeout (see [`russh_config`]).
const LOGIN_GRACE_TIME: Duration = Duration::from_secs(120);
/// How often an idle connection is probed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How many [`Output`]s a session may queue before it waits for the writer.
const OUTPUT_QUEUE: usize = 16;
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again, so the
/// loop does not spin.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Configuration of the SSH transport.
#[derive(Debug, Clone)]
pub struct SshConfig {
    /// Where the host keys live (created if missing; see [`host_keys`]).
    pub state_dir: PathBuf,
    /// Who may log in.
    pub auth: AuthConfig,
    /// Bound of the per-channel input queue: bytes received from a client that its session has
    /// not consumed yet. A client that sends more than this ahead of its session loses the
    /// channel. Raised to at least one SSH packet (32 KiB) if set lower.
    pub input_queue_bytes: usize,
}

/// Runs the SSH server on an already bound `listener`, forever.
///
/// Loads (or on first start generates) the host keys, then accepts connections; each runs in
/// its own task. Returns only if startup fails (host keys unreadable, state directory not
/// writable). Every accepted `netconf` subsystem channel is handed to `starter`.
pub async fn serve(
    config: SshConfig,
    listener: TcpListener,
    starter: SubsystemStarter,
) -> anyhow::Result<()> {
    serve_with_grace(config, listener, starter, LOGIN_GRACE_TIME).await
}

/// [`serve`] with a configurable login grace time (tests use a short one).
async fn serve_with_grace(
    config: SshConfig,
    listener: TcpListener,
    starter: SubsystemStarter,
    login_grace: Duration,
) -> anyhow::Result<()> {
    let state_dir = config.state_dir.clone();
    // RSA key generation is CPU-bound for a while; keep it off the runtime's threads.
    let keys = tokio::task::spawn_blocking(move || host_keys::load_or_generate(&state_dir))
        .await
        .context("host key task failed")??;
    if config.auth.methods().is_empty() {
        tracing::warn!("no users and no authorized_keys file configured: nobody can log in");
    }
    let russh_config = Arc::new(russh_config(keys, &config.auth));
    let shared = Arc::new(Shared {
        throttle: Arc::new(LoginThrottle::new(config.auth.throttle)),
        auth: Arc::new(config.auth),
        starter,
        // A single packet must fit, or every large write would cost the client its channel.
        input_queue_bytes: config
            .input_queue_bytes
            .max(russh_config.maximum_packet_size as usize),
        login_grace,
    });
    // The one line that tells a person the server can be used, and how.
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "an unknown address".into());
    let users: Vec<&str> = shared.auth.users.iter().map(|u| u.user.as_str()).collect();
    tracing::info!(
        "ready: NETCONF over SSH on {address} (subsystem netconf); users: {}",
        if users.is_empty() {
            "none (public keys only)".to_string()
        } else {
            users.join(", ")
        }
    );
    let loopback = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
    if !loopback
        && shared
            .auth
            .users
            .iter()
            .any(|u| u.user == "admin" && u.password == "admin")
    {
        tracing::warn!(
            "the built-in password of admin is accepted on {address}, which is not a loopback \
             address: set NETCONF_PASSWORD (or --password), or listen on 127.0.0.1"
        );
    }
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                if let Some(left) = shared.throttle.blocked(addr.ip()) {
                    tracing::debug!(peer = %addr, left = ?left, "connection refused: address blocked");
                    drop(stream);
                    continue;
                }
                tokio::spawn(run_connection(
                    russh_config.clone(),
                    shared.clone(),
                    stream,
                    addr,
                ));
            }
            Err(e) => {
                // Usually transient (EMFILE, ECONNABORTED): keep serving the others.
                tracing::warn!(error = %e, "accepting an SSH connection failed");
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
            }
        }
    }
}

/// The russh settings.
fn russh_config(keys: Vec<PrivateKey>, auth: &AuthConfig) -> russh::server::Config {
    russh::server::Config {
        server_id: SshId::Standard(concat!("SSH-2.0-pyvmd_", env!("CARGO_PKG_VERSION")).into()),
        methods: auth.methods(),
        auth_rejection_time: auth.failure_delay,
        // OpenSSH clients first send a "none" request to learn the methods; that is not a
        // failed login and must not cost the failure delay.
        auth_rejection_time_initial: Some(Duration::ZERO),
        // Ed25519 first, then RSA. The default algorithm preferences offer rsa-sha2-512,
        // rsa-sha2-256 (and ssh-rsa for old clients) for an RSA key.
        keys,
        // A NETCONF session may legitimately sit idle for hours; russh's inactivity timeout
        // would end it. Keepalives still probe idle connections, and a dead peer is noticed
        // when the kernel gives up retransmitting them.
        inactivity_timeout: None,
        keepalive_interval: Some(KEEPALIVE_INTERVAL),
        // Do not drop connections whose client leaves keepalives unanswered: single-threaded
        // clients (libssh2-based ones such as yangcli) only read their socket when they expect
        // something, so an idle but healthy session would look dead.
        keepalive_max: 0,
        // NETCONF is request/response: Nagle's algorithm would delay small replies.
        nodelay: true,
        ..Default::default()
    }
}

/// State shared by all connections.
struct Shared {
    auth: Arc<AuthConfig>,
    throttle: Arc<LoginThrottle>,
    starter: SubsystemStarter,
    input_queue_bytes: usize,
    login_grace: Duration,
}

/// Runs one connection to its end and logs how it ended.
async fn run_connection(
    config: Arc<russh::server::Config>,
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "set_nodelay failed");
    }
    tracing::debug!(%peer, "SSH connection accepted");
    let authenticated = Arc::new(AtomicBool::new(false));
    let stream = LoginDeadline::new(stream, shared.login_grace, authenticated.clone());
    let user = Arc::new(std::sync::OnceLock::new());
    let handler = Connection {
        auth: Authenticator::new(shared.auth.clone(), shared.throttle.clone(), peer),
        shared,
        peer,
        user: Arc::clone(&user),
        authenticated,
        channels: HashMap::new(),
    };
    let result = match russh::server::run_stream(config, stream, handler).await {
        Ok(session) => session.await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => tracing::debug!(%peer, "SSH connection closed"),
        // Most clients just close the socket when they are done, without a disconnect message:
        // that is not worth reporting as an error.
        Err(russh::Error::IO(e))
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
            ) =>
        {
            tracing::debug!(%peer, "SSH connection closed by the client")
        }
        Err(e) => tracing::debug!(%peer, error = %e, "SSH connection ended"),
    }
    if let Some(user) = user.get() {
        tracing::info!("logout: user {user} from {peer}");
    }
}

/// A channel that is open but has not started the `netconf` subsystem yet. Its reader task
/// is already running (see the module documentation).
struct PendingChannel {
    write: ChannelWriteHalf<Msg>,
    input: mpsc::Receiver<Vec<u8>>,
    gone: watch::Receiver<bool>,
}

/// The russh handler of one connection.
struct Connection {
    shared: Arc<Shared>,
    auth: Authenticator,
    peer: SocketAddr,
    /// The authenticated user, once there is one (read again when the connection ends).
    user: Arc<std::sync::OnceLock<String>>,
    /// Set once authenticated; ends the login deadline.
    authenticated: Arc<AtomicBool>,
    channels: HashMap<ChannelId, PendingChannel>,
}

impl Connection {
    fn record_user(&mut self, user: &str, auth: &Auth) {
        if *auth == Auth::Accept {
            let _ = self.user.set(user.to_owned());
        }
    }

    /// Refuses a channel request we do not serve.
    fn refuse(
        &self,
        channel: ChannelId,
        what: &str,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        tracing::debug!(peer = %self.peer, channel = %channel, request = what, "refusing channel request");
        session.channel_failure(channel)
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(self.auth.none())
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let auth = self.auth.password(user, password).await;
        self.record_user(user, &auth);
        Ok(auth)
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.auth.publickey_offered(user, offer.public_key).await)
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let auth = self.auth.publickey(user, key.public_key).await;
        self.record_user(user, &auth);
        Ok(auth)
    }

    async fn auth_succeeded(&mut self, _session: &mut Session) -> Result<(), Self::Error> {
        self.authenticated.store(true, Ordering::Release);
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let id = channel.id();
        let (read, write) = channel.split();
        // Input queue of one chunk: the reader coalesces everything that arrives while the
        // session is busy into the next chunk, and the bound is enforced in bytes by the
        // reader (see `pump_input`).
        let (input_tx, input_rx) = mpsc::channel(1);
        let (gone_tx, gone_rx) = watch::channel(false);
        tokio::spawn(pump_input(InputPump {
            read,
            input: input_tx,
            gone: gone_tx,
            session: session.handle(),
            channel: id,
            limit: self.shared.input_queue_bytes,
            peer: self.peer,
        }));
        self.channels.insert(
            id,
            PendingChannel {
                write,
                input: input_rx,
                gone: gone_rx,
            },
        );
        tracing::debug!(peer = %self.peer, channel = %id, "session channel opened");
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name != NETCONF_SUBSYSTEM {
            return self.refuse(channel, &format!("subsystem {name:?}"), session);
        }
        // Only once per channel: a second request finds the channel already taken.
        let Some(pending) = self.channels.remove(&channel) else {
            return self.refuse(channel, "repeated netconf subsystem", session);
        };
        session.channel_success(channel)?;

        let (output_tx, output_rx) = mpsc::channel(OUTPUT_QUEUE);
        let abort = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(pump_output(
            pending.write,
            output_rx,
            pending.gone,
            Arc::clone(&abort),
        ));
        // russh only opens channels after authentication, so the user is always known here.
        let user = self.user.get().cloned().unwrap_or_default();
        tracing::debug!(peer = %self.peer, user, channel = %channel, "NETCONF subsystem started");
        let io = NetconfIo {
            input: pending.input,
            output: output_tx,
            abort,
        };
        (self.shared.starter)(
            io,
            Peer {
                user,
                addr: Some(self.peer),
            },
        );
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse(channel, "exec", session)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse(channel, "shell", session)
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse(channel, "pty-req", session)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse(channel, "x11-req", session)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse(channel, "env", session)
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Normally sent without want-reply, in which case this sends nothing.
        self.refuse(channel, "window-change", session)
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // A channel closed before it started the subsystem; its reader ends by itself.
        self.channels.remove(&channel);
        tracing::debug!(peer = %self.peer, channel = %channel, "channel closed by client");
        Ok(())
    }
}

/// What the reader task of one channel needs.
struct InputPump {
    read: ChannelReadHalf,
    input: mpsc::Sender<Vec<u8>>,
    /// Set (or dropped) when the channel is gone, which stops the writer.
    gone: watch::Sender<bool>,
    session: Handle,
    channel: ChannelId,
    limit: usize,
    peer: SocketAddr,
}

/// Drains the channel into the session's input queue until the channel is gone.
///
/// Reading never waits for the session (see the module documentation). Data that arrives
/// while the session is busy is appended to `pending` and handed over as one chunk when the
/// session takes the previous one. The input ends (the session sees `None`) at EOF once all
/// data is delivered, when the channel closes, or when the client overruns the bound.
async fn pump_input(pump: InputPump) {
    let InputPump {
        mut read,
        input,
        gone,
        session,
        channel,
        limit,
        peer,
    } = pump;
    let mut input = Some(input);
    let mut pending: Vec<u8> = Vec::new();
    // Size of the chunk last handed over; it counts against the bound until the session takes
    // it out of the (one-slot) queue.
    let mut in_queue = 0usize;
    let mut eof = false;
    loop {
        let deliver = !pending.is_empty() && input.is_some();
        tokio::select! {
            msg = read.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    let Some(tx) = &input else {
                        // The session stopped reading (or EOF came first): discard.
                        continue;
                    };
                    let queued = if tx.capacity() == 0 { in_queue } else { 0 };
                    if pending.len() + queued + data.len() > limit {
                        tracing::warn!(
                            %peer,
                            channel = %channel,
                            limit,
                            "client sent more input than the session has consumed; closing channel"
                        );
                        input = None;
                        pending = Vec::new();
                        // Not awaited here: the connection loop may itself be waiting for this
                        // task to take a message, and waiting on it in turn would deadlock.
                        let session = session.clone();
                        tokio::spawn(async move {
                            let _ = session.close(channel).await;
                        });
                        continue;
                    }
                    pending.extend_from_slice(&data);
                }
                Some(ChannelMsg::Eof) => eof = true,
                Some(ChannelMsg::Close) | None => break,
                // Channel requests are answered by the handler; stderr from a client is
                // meaningless for NETCONF.
                Some(_) => {}
            },
            permit = reserve(input.clone()), if deliver => match permit {
                Ok(permit) => {
                    in_queue = pending.len();
                    permit.send(std::mem::take(&mut pending));
                }
                Err(_) => {
                    // The session dropped its input; keep draining the channel regardless.
                    input = None;
                    pending = Vec::new();
                }
            },
        }
        if eof && pending.is_empty() {
            // Everything before EOF was delivered: end the session's input.
            input = None;
        }
    }
    tracing::debug!(%peer, channel = %channel, "channel gone");
    let _ = gone.send(true);
}

/// Waits for room in the input queue. The permit is an owned one (hence the clone of the
/// sender) so that the select loop may drop `input` while a reservation is pending.
async fn reserve(
    input: Option<mpsc::Sender<Vec<u8>>>,
) -> Result<mpsc::OwnedPermit<Vec<u8>>, mpsc::error::SendError<()>> {
    match input {
        Some(tx) => tx.reserve_owned().await,
        // Not polled: the branch is disabled whenever `input` is `None`.
        None => std::future::pending().await,
    }
}

/// Executes the session's [`Output`]s on the channel until `Close`, until the session drops
/// its sender (treated like `Close`, so the client is not left hanging), until the channel
/// is gone (`gone`; waiting for window space would otherwise never end), or until the session
/// aborts it (`abort`: it ended while its client was not reading; the channel is closed
/// without what is still queued).
async fn pump_output(
    write: ChannelWriteHalf<Msg>,
    mut output: mpsc::Receiver<Output>,
    mut gone: watch::Receiver<bool>,
    abort: Arc<tokio::sync::Notify>,
) {
    let channel = write.id();
    let work = async {
        while let Some(out) = output.recv().await {
            match out {
                Output::Data(data) => write.data_bytes(data).await?,
                Output::Close => break,
            }
        }
        write.exit_status(0).await?;
        write.eof().await?;
        write.close().await?;
        Ok::<(), russh::Error>(())
    };
    let aborted = tokio::select! {
        result = work => {
            match result {
                Ok(()) => tracing::debug!(channel = %channel, "NETCONF channel closed by the server"),
                Err(e) => tracing::debug!(channel = %channel, error = %e, "writing to the channel failed"),
            }
            false
        }
        _ = gone.wait_for(|gone| *gone) => {
            tracing::debug!(channel = %channel, "channel gone; writer stops");
            false
        }
        _ = abort.notified() => true,
    };
    if aborted {
        // A close is not subject to the window: it reaches a client that reads nothing.
        let _ = write.close().await;
        tracing::debug!(channel = %channel, "NETCONF channel closed with output still queued");
    }
}

/// A TCP stream that fails reads once the login grace time is over, unless the connection
/// has authenticated by then.
///
/// russh has no handshake or authentication timeout of its own other than the inactivity
/// timeout, which this server disables. Failing the read makes russh end the connection at
/// whatever stage it is stuck in (version exchange, key exchange or authentication).
struct LoginDeadline<S> {
    inner: S,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    authenticated: Arc<AtomicBool>,
}

impl<S> LoginDeadline<S> {
    fn new(inner: S, grace: Duration, authenticated: Arc<AtomicBool>) -> Self {
        LoginDeadline {
            inner,
            deadline: Some(Box::pin(tokio::time::sleep(grace))),
            authenticated,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LoginDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.authenticated.load(Ordering::Acquire) {
            this.deadline = None;
        }
        // Polling the timer registers this task to be woken when it fires, so a client that
        // sends nothing at all is caught too.
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "not authenticated within the login grace time",
            )));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LoginDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Instant;

    use russh::client;
    use russh::keys::{Algorithm, HashAlg, PublicKeyOrCertificate};

    use super::*;
    use crate::client::SshChannel;
    use crate::ssh::UserPassword;

    const USER: &str = "admin";
    const PASSWORD: &str = "secret";
    const FAILURE_DELAY: Duration = Duration::from_millis(200);
    /// Upper bound for anything a test waits for, so a bug fails the test instead of hanging.
    const TIMEOUT: Duration = Duration::from_secs(30);

    struct TestServer {
        addr: SocketAddr,
        authorized_keys: PathBuf,
        /// The users of the sessions started so far.
        users: Arc<Mutex<Vec<String>>>,
        _dir: tempfile::TempDir,
    }

    /// A starter whose sessions echo their input and close at EOF.
    fn echo_starter(users: Arc<Mutex<Vec<String>>>) -> SubsystemStarter {
        Arc::new(move |mut io: NetconfIo, peer: Peer| {
            users.lock().expect("lock").push(peer.user);
            tokio::spawn(async move {
                while let Some(chunk) = io.input.recv().await {
                    if io.output.send(Output::Data(chunk)).await.is_err() {
                        return;
                    }
                }
                let _ = io.output.send(Output::Close).await;
            });
        })
    }

    /// Host key files shared by all tests: generating an RSA key takes seconds in a debug
    /// build, so it is done once and the files are copied into each test's state directory.
    fn host_key_files() -> &'static [(&'static str, Vec<u8>)] {
        static FILES: std::sync::OnceLock<Vec<(&'static str, Vec<u8>)>> =
            std::sync::OnceLock::new();
        FILES.get_or_init(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            host_keys::load_or_generate(dir.path()).expect("host keys");
            [host_keys::ED25519_KEY_FILE, host_keys::RSA_KEY_FILE]
                .into_iter()
                .map(|name| {
                    (
                        name,
                        std::fs::read(dir.path().join(name)).expect("read key"),
                    )
                })
                .collect()
        })
    }

    async fn start_with(input_queue_bytes: usize, starter: Option<SubsystemStarter>) -> TestServer {
        start_with_grace(input_queue_bytes, starter, LOGIN_GRACE_TIME).await
    }

    async fn start_with_grace(
        input_queue_bytes: usize,
        starter: Option<SubsystemStarter>,
        login_grace: Duration,
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let state_dir = dir.path().join("state");
        std::fs::create_dir(&state_dir).expect("mkdir");
        for (name, contents) in host_key_files() {
            let path = state_dir.join(name);
            std::fs::write(&path, contents).expect("write key");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod");
        }
        let authorized_keys = dir.path().join("authorized_keys");
        let users = Arc::new(Mutex::new(Vec::new()));
        let config = SshConfig {
            state_dir,
            auth: AuthConfig {
                users: vec![UserPassword {
                    user: USER.into(),
                    password: PASSWORD.into(),
                }],
                authorized_keys: Some(authorized_keys.clone()),
                directory: None,
                throttle: crate::ssh::ThrottleConfig {
                    block_after: 0,
                    block_for: Duration::from_secs(1),
                },
                failure_delay: FAILURE_DELAY,
            },
            input_queue_bytes,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let starter = starter.unwrap_or_else(|| echo_starter(users.clone()));
        tokio::spawn(async move {
            if let Err(e) = serve_with_grace(config, listener, starter, login_grace).await {
                panic!("serve failed: {e:#}");
            }
        });
        TestServer {
            addr,
            authorized_keys,
            users,
            _dir: dir,
        }
    }

    async fn start() -> TestServer {
        start_with(8 << 20, None).await
    }

    async fn with_timeout<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(TIMEOUT, f).await.expect("timed out")
    }

    /// Reads from `channel` until `n` bytes have arrived (or the channel ends).
    async fn recv_exactly(channel: &mut SshChannel, n: usize) -> Vec<u8> {
        let mut got = Vec::new();
        while got.len() < n {
            match with_timeout(channel.recv()).await {
                Some(chunk) => got.extend_from_slice(&chunk),
                None => break,
            }
        }
        got
    }

    /// A raw russh client handler that records the host key it was shown.
    #[derive(Clone, Default)]
    struct RawClient {
        host_key: Arc<Mutex<Option<Algorithm>>>,
    }

    impl client::Handler for RawClient {
        type Error = russh::Error;

        async fn check_server_key(
            &mut self,
            key: &PublicKeyOrCertificate,
        ) -> Result<bool, Self::Error> {
            if let PublicKeyOrCertificate::PublicKey { key, .. } = key {
                *self.host_key.lock().expect("lock") = Some(key.algorithm());
            }
            Ok(true)
        }
    }

    async fn raw_connect(
        addr: SocketAddr,
        preferred_host_keys: Option<Vec<Algorithm>>,
    ) -> (client::Handle<RawClient>, RawClient) {
        let mut config = client::Config::default();
        if let Some(keys) = preferred_host_keys {
            config.preferred.key = keys.into();
        }
        let handler = RawClient::default();
        let handle = with_timeout(client::connect(Arc::new(config), addr, handler.clone()))
            .await
            .expect("connect");
        (handle, handler)
    }

    async fn raw_login(addr: SocketAddr) -> client::Handle<RawClient> {
        let (mut handle, _) = raw_connect(addr, None).await;
        let auth = with_timeout(handle.authenticate_password(USER, PASSWORD))
            .await
            .expect("auth");
        assert!(auth.success());
        handle
    }

    /// Waits for the reply to a channel request.
    async fn reply(channel: &mut russh::Channel<client::Msg>) -> ChannelMsg {
        loop {
            match with_timeout(channel.wait()).await {
                Some(msg @ (ChannelMsg::Success | ChannelMsg::Failure)) => return msg,
                Some(ChannelMsg::WindowAdjusted { .. }) => continue,
                other => panic!("unexpected channel message {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn echoes_with_password_login() {
        let server = start().await;
        let mut channel = with_timeout(SshChannel::connect(server.addr, USER, PASSWORD))
            .await
            .expect("connect");
        channel.send(b"hello").await.expect("send");
        assert_eq!(recv_exactly(&mut channel, 5).await, b"hello");

        // More than the SSH window (2 MiB) in both directions at once: the server's reader
        // must keep draining while its writer waits for the client's window.
        let big: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
        with_timeout(channel.send(&big)).await.expect("send big");
        assert!(recv_exactly(&mut channel, big.len()).await == big);

        channel.close().await;
        assert_eq!(*server.users.lock().expect("lock"), vec![USER.to_string()]);
    }

    #[tokio::test]
    async fn wrong_password_is_refused_and_may_be_retried() {
        let server = start().await;
        assert!(
            with_timeout(SshChannel::connect(server.addr, USER, "wrong"))
                .await
                .is_err()
        );
        assert!(
            with_timeout(SshChannel::connect(server.addr, "nobody", PASSWORD))
                .await
                .is_err()
        );

        let (mut handle, _) = raw_connect(server.addr, None).await;
        let started = Instant::now();
        let auth = with_timeout(handle.authenticate_password(USER, "wrong"))
            .await
            .expect("auth");
        assert!(
            started.elapsed() >= FAILURE_DELAY,
            "failure was not delayed"
        );
        match auth {
            client::AuthResult::Failure {
                remaining_methods, ..
            } => {
                assert!(remaining_methods.contains(&russh::MethodKind::Password));
                assert!(remaining_methods.contains(&russh::MethodKind::PublicKey));
            }
            client::AuthResult::Success => panic!("wrong password accepted"),
        }
        // Same connection, second try.
        let auth = with_timeout(handle.authenticate_password(USER, PASSWORD))
            .await
            .expect("auth");
        assert!(auth.success());
    }

    #[tokio::test]
    async fn refuses_everything_but_the_netconf_subsystem() {
        let server = start().await;
        let handle = raw_login(server.addr).await;

        let mut channel = handle.channel_open_session().await.expect("open");
        channel.exec(true, "ls").await.expect("exec");
        assert!(matches!(reply(&mut channel).await, ChannelMsg::Failure));
        channel.request_shell(true).await.expect("shell");
        assert!(matches!(reply(&mut channel).await, ChannelMsg::Failure));
        channel
            .request_pty(true, "xterm", 80, 24, 0, 0, &[])
            .await
            .expect("pty");
        assert!(matches!(reply(&mut channel).await, ChannelMsg::Failure));
        channel.set_env(true, "LANG", "C").await.expect("env");
        assert!(matches!(reply(&mut channel).await, ChannelMsg::Failure));
        channel.request_subsystem(true, "sftp").await.expect("sftp");
        assert!(matches!(reply(&mut channel).await, ChannelMsg::Failure));

        // The same channel can still become a NETCONF session, but only once.
        channel
            .request_subsystem(true, "netconf")
            .await
            .expect("netconf");
        assert!(matches!(reply(&mut channel).await, ChannelMsg::Success));
        channel
            .request_subsystem(true, "netconf")
            .await
            .expect("netconf");
        assert!(matches!(reply(&mut channel).await, ChannelMsg::Failure));

        // Input ends at EOF; the echo session then closes: exit status 0, EOF, close.
        channel.data_bytes(&b"bye"[..]).await.expect("data");
        channel.eof().await.expect("eof");
        let mut data = Vec::new();
        let mut events = Vec::new();
        while let Some(msg) = with_timeout(channel.wait()).await {
            match msg {
                ChannelMsg::Data { data: d } => data.extend_from_slice(&d),
                ChannelMsg::ExitStatus { exit_status } => {
                    events.push(format!("exit {exit_status}"))
                }
                ChannelMsg::Eof => events.push("eof".into()),
                ChannelMsg::Close => {
                    events.push("close".into());
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(data, b"bye");
        assert_eq!(events, ["exit 0", "eof", "close"]);
    }

    #[tokio::test]
    async fn channels_of_one_connection_are_independent() {
        let server = start().await;
        let handle = raw_login(server.addr).await;
        let mut channels = Vec::new();
        for _ in 0..3 {
            let mut channel = handle.channel_open_session().await.expect("open");
            channel
                .request_subsystem(true, "netconf")
                .await
                .expect("netconf");
            assert!(matches!(reply(&mut channel).await, ChannelMsg::Success));
            channels.push(channel);
        }
        for round in 0..3u8 {
            // Write to all channels first, in reverse order, then read each one back.
            for (i, channel) in channels.iter().enumerate().rev() {
                channel
                    .data_bytes(vec![round, i as u8])
                    .await
                    .expect("data");
            }
            for (i, channel) in channels.iter_mut().enumerate() {
                let mut got = Vec::new();
                while got.len() < 2 {
                    match with_timeout(channel.wait()).await {
                        Some(ChannelMsg::Data { data }) => got.extend_from_slice(&data),
                        Some(_) => {}
                        None => panic!("channel {i} ended"),
                    }
                }
                assert_eq!(got, [round, i as u8]);
            }
        }
        // Closing one channel leaves the others working.
        channels.remove(0).close().await.expect("close");
        channels[1]
            .data_bytes(&b"still here"[..])
            .await
            .expect("data");
        let mut got = Vec::new();
        while got.len() < 10 {
            match with_timeout(channels[1].wait()).await {
                Some(ChannelMsg::Data { data }) => got.extend_from_slice(&data),
                Some(_) => {}
                None => panic!("channel ended"),
            }
        }
        assert_eq!(got, b"still here");
        assert_eq!(server.users.lock().expect("lock").len(), 3);
    }

    #[tokio::test]
    async fn public_key_login_follows_authorized_keys() {
        let server = start().await;
        let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).expect("key");
        let login = |user: &'static str| {
            let key = key.clone();
            let addr = server.addr;
            async move { with_timeout(SshChannel::connect_with_key(addr, user, key)).await }
        };

        // No authorized_keys file yet.
        assert!(login(USER).await.is_err());

        let line = key.public_key().to_openssh().expect("encode");
        std::fs::write(&server.authorized_keys, format!("{line}\n")).expect("write");
        let mut channel = login(USER).await.expect("key login");
        channel.send(b"key").await.expect("send");
        assert_eq!(recv_exactly(&mut channel, 3).await, b"key");
        channel.close().await;

        // A key only logs in as a configured user.
        assert!(login("root").await.is_err());
        // Edits take effect without a restart.
        std::fs::write(&server.authorized_keys, "").expect("write");
        assert!(login(USER).await.is_err());
    }

    #[tokio::test]
    async fn offers_ed25519_and_rsa_sha2_host_keys() {
        let server = start().await;
        let cases = [
            (None, Algorithm::Ed25519),
            (
                Some(vec![Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512),
                }]),
                Algorithm::Rsa { hash: None },
            ),
            (
                Some(vec![Algorithm::Rsa {
                    hash: Some(HashAlg::Sha256),
                }]),
                Algorithm::Rsa { hash: None },
            ),
        ];
        for (preferred, expected) in cases {
            let (mut handle, client) = raw_connect(server.addr, preferred.clone()).await;
            assert_eq!(
                client.host_key.lock().expect("lock").clone(),
                Some(expected),
                "{preferred:?}"
            );
            let auth = with_timeout(handle.authenticate_password(USER, PASSWORD))
                .await
                .expect("auth");
            assert!(auth.success());
        }
    }

    #[tokio::test]
    async fn a_client_that_overruns_the_input_queue_loses_the_channel() {
        // Sessions that never read their input.
        let parked: Arc<Mutex<Vec<NetconfIo>>> = Arc::default();
        let starter: SubsystemStarter = {
            let parked = parked.clone();
            Arc::new(move |io, _| parked.lock().expect("lock").push(io))
        };
        let server = start_with(64 << 10, Some(starter)).await;
        let mut channel = with_timeout(SshChannel::connect(server.addr, USER, PASSWORD))
            .await
            .expect("connect");
        // The send may or may not fail, depending on when the close arrives.
        let _ = with_timeout(channel.send(&vec![b'x'; 256 << 10])).await;
        assert_eq!(with_timeout(channel.recv()).await, None);
        // The session sees its input end.
        let mut io = parked.lock().expect("lock").pop().expect("a session");
        let mut received = 0;
        while let Some(chunk) = with_timeout(io.input.recv()).await {
            received += chunk.len();
        }
        assert!(received <= 64 << 10, "{received}");
    }

    #[tokio::test]
    async fn connections_that_do_not_authenticate_in_time_are_dropped() {
        // Long enough for a loaded machine to log in well within it (last part).
        let grace = Duration::from_secs(1);
        let server = start_with_grace(1 << 20, None, grace).await;

        // A client that sends nothing at all, not even its version.
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        let mut sink = Vec::new();
        let started = Instant::now();
        // Reads the server's version line, then sees the connection end.
        let _ = with_timeout(tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut sink)).await;
        assert!(started.elapsed() >= grace);

        // A client that completes the key exchange but never authenticates.
        let (mut handle, _) = raw_connect(server.addr, None).await;
        tokio::time::sleep(grace * 2).await;
        assert!(
            with_timeout(handle.authenticate_password(USER, PASSWORD))
                .await
                .is_err()
        );

        // Authenticated connections are not affected.
        let mut channel = with_timeout(SshChannel::connect(server.addr, USER, PASSWORD))
            .await
            .expect("connect");
        tokio::time::sleep(grace * 2).await;
        channel.send(b"late").await.expect("send");
        assert_eq!(recv_exactly(&mut channel, 4).await, b"late");
    }

    #[tokio::test]
    async fn login_deadline_fails_reads_until_authenticated() {
        let flag = Arc::new(AtomicBool::new(false));
        // Keep the other end open: the read must fail because of the deadline, not EOF.
        let (a, _b) = tokio::io::duplex(64);
        let mut stream = LoginDeadline::new(a, Duration::from_millis(50), flag.clone());
        let mut buf = [0u8; 8];
        let err = tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
            .await
            .expect_err("deadline");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        let (a, mut b2) = tokio::io::duplex(64);
        let mut stream = LoginDeadline::new(a, Duration::from_millis(50), flag.clone());
        flag.store(true, Ordering::Release);
        tokio::time::sleep(Duration::from_millis(100)).await;
        tokio::io::AsyncWriteExt::write_all(&mut b2, b"ok")
            .await
            .expect("write");
        let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
            .await
            .expect("read");
        assert_eq!(&buf[..n], b"ok");
    }
}
