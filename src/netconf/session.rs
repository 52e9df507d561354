//! One NETCONF session (RFC 6241 §2, §8.1): the hello exchange, then a loop that reads framed
//! messages, answers each rpc in order, and ends on `close-session`, `kill-session`, a framing
//! error, or the client going away.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};
use tracing::{debug, info, warn};

use crate::netconf::capabilities::{parse_client_hello, server_hello};
use crate::netconf::error::{ErrorTag, ErrorType, RpcError};
use crate::netconf::events::Termination;
use crate::netconf::framing::{FrameDecoder, FrameError, Framing, encode};
use crate::netconf::rpc::{self, Outcome};
use crate::netconf::sessions::Counters;
use crate::netconf::subscription::{SessionSubscription, Sink};
use crate::netconf::{NetconfServer, xml};
use crate::ssh::{NetconfIo, Output, Peer};
use std::sync::atomic::Ordering;

/// The per-session state that operations may look at.
pub struct SessionState {
    /// This session's id.
    pub id: u32,
    /// The authenticated user.
    pub user: String,
    /// True once both sides announced base:1.1 (some error tags are only for 1.1 clients).
    pub base_1_1: bool,
    /// The session's monitoring counters.
    pub counters: Arc<Counters>,
    /// Its event subscription (`create-subscription`).
    pub subscription: SessionSubscription,
}

/// Runs a session to its end. Spawned once per `netconf` subsystem channel.
pub async fn run(io: NetconfIo, peer: Peer, server: Arc<NetconfServer>) {
    let from = peer
        .addr
        .map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
    let registration =
        match server
            .sessions
            .try_register(&peer.user, peer.addr, server.session_limits)
        {
            Ok(registration) => registration,
            Err(refused) => {
                // Before a <hello> there is no way to send an rpc-error: the channel closes.
                warn!("session refused: user {} from {from}: {refused}", peer.user);
                let _ = tokio::time::timeout(CLOSE_GRACE, io.output.send(Output::Close)).await;
                return;
            }
        };
    let id = registration.id;
    info!("session {id} started: user {} from {from}", peer.user);
    let info = server.sessions.get(id);
    let io_abort = io.abort;
    let mut conn = Connection {
        input: io.input,
        output: io.output,
        decoder: FrameDecoder::new(server.max_message_size),
        killed: registration.killed,
        subscription: None,
    };
    let mut state = SessionState {
        id,
        user: peer.user.clone(),
        base_1_1: false,
        counters: Arc::clone(&registration.counters),
        subscription: SessionSubscription::default(),
    };
    let reason = conn.serve(&mut state, &server).await;
    if let Some(task) = conn.subscription.take() {
        task.abort();
    }
    info!("session {id} ended: {reason}");
    let stats = &server.sessions.stats;
    let termination = match reason {
        "closed by client" => Termination::Closed,
        "no hello in time" => Termination::Timeout,
        "bad hello" | "bad framing before hello" => Termination::BadHello,
        "killed" => match *conn.killed.borrow() {
            Some(by) if by != 0 => Termination::Killed(by),
            _ => Termination::Other,
        },
        "client disconnected" | "client gone" => Termination::Dropped,
        _ => Termination::Other,
    };
    match termination {
        Termination::Closed => {}
        Termination::Timeout | Termination::BadHello => {
            stats.in_bad_hellos.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            stats.dropped_sessions.fetch_add(1, Ordering::Relaxed);
        }
    }
    // Whatever the way the session ended, it leaves no lock, no unconfirmed commit and no
    // abandoned candidate change behind (RFC 6241 §7.5, §8.4.1).
    let datastore = Arc::clone(&server.datastore);
    match tokio::task::spawn_blocking(move || datastore.session_ended(id)).await {
        Ok(cleanup) if cleanup != Default::default() => {
            info!(
                session = id,
                locks = cleanup.released.len(),
                rolled_back = cleanup.rolled_back,
                discarded = cleanup.discarded,
                "released what the session left behind"
            )
        }
        Ok(_) => {}
        Err(e) => warn!(session = id, error = %e, "cleaning up after the session failed"),
    }
    if let Some(info) = &info {
        server.events.session_end(info, termination);
    }
    server.sessions.unregister(id);
    // A client that does not read fills the output queue: waiting for room would keep the
    // session (and its channel) forever, so after a grace period the channel is closed without
    // the rest.
    let close = tokio::time::timeout(CLOSE_GRACE, conn.output.send(Output::Close));
    if close.await.is_err() {
        io_abort.notify_one();
    }
}

/// How long the end of a session waits for its client to take the output still queued.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

struct Connection {
    input: mpsc::Receiver<Vec<u8>>,
    output: mpsc::Sender<Output>,
    decoder: FrameDecoder,
    killed: tokio::sync::watch::Receiver<Option<u32>>,
    /// The task that sends the session's notifications, while it has a subscription.
    subscription: Option<tokio::task::JoinHandle<()>>,
}

/// What reading the next message gave.
enum Next {
    Message(Vec<u8>),
    Closed(&'static str),
    Frame(FrameError),
}

impl Connection {
    async fn serve(
        &mut self,
        state: &mut SessionState,
        server: &Arc<NetconfServer>,
    ) -> &'static str {
        let hello = server_hello(&server.schema().capabilities, state.id);
        if self.send(hello.as_bytes()).await.is_err() {
            return "client gone";
        }
        let deadline = Instant::now() + server.hello_timeout;
        let hello = match timeout_at(deadline, self.next()).await {
            Err(_) => return "no hello in time",
            Ok(Next::Closed(reason)) => return reason,
            Ok(Next::Frame(e)) => {
                warn!(session = state.id, error = %e, "bad framing before hello");
                return "bad framing before hello";
            }
            Ok(Next::Message(m)) => m,
        };
        match xml::parse(&hello)
            .map_err(|e| e.to_string())
            .and_then(|e| parse_client_hello(&e))
        {
            Ok(h) if h.base_1_1 => {
                state.base_1_1 = true;
                self.decoder.set_framing(Framing::Chunked);
            }
            Ok(_) => {}
            Err(e) => {
                warn!(session = state.id, error = %e, "bad hello");
                return "bad hello";
            }
        }
        if let Some(info) = server.sessions.get(state.id) {
            server.events.session_start(&info);
        }
        loop {
            let message = match self.next().await {
                Next::Message(m) => m,
                Next::Closed(reason) => return reason,
                Next::Frame(e) => {
                    // Answer what we can, then end: after a framing error the rest of the
                    // stream cannot be trusted (RFC 6242 §4.2).
                    warn!(session = state.id, error = %e, "framing error");
                    let error = match e {
                        FrameError::TooBig { .. } => {
                            RpcError::new(ErrorType::Rpc, ErrorTag::TooBig, e.to_string())
                        }
                        _ => RpcError::malformed(state.base_1_1, e.to_string()),
                    };
                    let reply = rpc::error_reply(None, &[error]);
                    let _ = self.send(reply.as_bytes()).await;
                    if matches!(e, FrameError::NulByte) {
                        continue;
                    }
                    return "framing error";
                }
            };
            let outcome = rpc::handle(&message, state, server).await;
            let (reply, close) = match outcome {
                Outcome::Reply(r) => (r, false),
                Outcome::ReplyAndClose(r) => (r, true),
            };
            if self.send(reply.as_bytes()).await.is_err() {
                return "client gone";
            }
            if close {
                return "closed by client";
            }
            // A subscription starts only now that its <ok/> is queued: nothing it sends can
            // overtake the reply.
            let sink = || Sink {
                output: self.output.clone(),
                framing: self.decoder.framing(),
                session_id: state.id,
                counters: Arc::clone(&state.counters),
                server: Arc::clone(server),
                user: state.user.clone(),
                access: Mutex::new(None),
            };
            if let Some(task) = state.subscription.start(sink) {
                self.subscription = Some(task);
            }
        }
    }

    /// Waits for the next complete message.
    async fn next(&mut self) -> Next {
        loop {
            match self.decoder.next_message() {
                Ok(Some(m)) => return Next::Message(m),
                Ok(None) => {}
                Err(e) => return Next::Frame(e),
            }
            tokio::select! {
                chunk = self.input.recv() => match chunk {
                    Some(bytes) => self.decoder.extend(&bytes),
                    None => return Next::Closed("client disconnected"),
                },
                _ = self.killed.changed() => return Next::Closed("killed"),
            }
        }
    }

    async fn send(&self, message: &[u8]) -> Result<(), ()> {
        debug!(bytes = message.len(), "sending message");
        let framed = encode(self.decoder.framing(), message);
        self.output.send(Output::Data(framed)).await.map_err(|_| ())
    }
}
