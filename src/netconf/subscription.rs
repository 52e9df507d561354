//! A session's event subscription (RFC 5277): made by `create-subscription`, started once its
//! `<ok/>` is on the wire (so no notification can overtake the reply), and then run by a task
//! of its own beside the session's rpcs (`:interleave`).
//!
//! The task sends the replay first (stored events from `startTime`, read off the log on a
//! blocking thread), then `replayComplete`, then live events until `stopTime`, then
//! `notificationComplete`. A filter is evaluated on each event parsed by libyang, so subtree and
//! XPath filters mean what they mean for `get`. If the subscriber falls so far behind that its
//! queue overflows, the session is ended (see [`crate::notify`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use yang5::data::{Data, DataFormat, DataOperation, DataParserFlags, DataTree};

use crate::datastore::{Access, Filter};
use crate::netconf::NetconfServer;
use crate::netconf::framing::{Framing, encode};
use crate::netconf::sessions::{Count, Counters};
use crate::notify::{Event, Subscription};
use crate::ssh::Output;

/// The RFC 5277 namespace of `replayComplete`, `notificationComplete` and `/netconf/streams`.
pub const NS_NC_NOTIFICATIONS: &str = "urn:ietf:params:xml:ns:netmod:notification";

/// A subscription made by `create-subscription`, waiting for its reply to be sent.
pub struct NewSubscription {
    /// The stream's events.
    pub subscription: Subscription,
    /// Only events this filter selects are sent.
    pub filter: Option<Filter>,
    /// `startTime`: replay from then.
    pub start: Option<DateTime<Utc>>,
    /// `stopTime`: end then.
    pub stop: Option<DateTime<Utc>>,
}

/// A session's subscription slot: one subscription per session at a time.
#[derive(Default)]
pub struct SessionSubscription {
    pending: Mutex<Option<NewSubscription>>,
    /// True from `create-subscription` until the subscription ends.
    active: Arc<AtomicBool>,
}

impl SessionSubscription {
    /// True while the session has a subscription.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Takes the slot for `new`; false if the session has a subscription already.
    pub fn offer(&self, new: NewSubscription) -> bool {
        if self.active.swap(true, Ordering::Relaxed) {
            return false;
        }
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(new);
        true
    }

    /// Starts the subscription made by the rpc just answered, if any, sending to the sink that
    /// `sink` makes.
    pub fn start(&self, sink: impl FnOnce() -> Sink) -> Option<JoinHandle<()>> {
        let new = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        let sink = sink();
        let active = Arc::clone(&self.active);
        Some(tokio::spawn(async move {
            run(new, &sink).await;
            active.store(false, Ordering::Relaxed);
        }))
    }
}

/// Where a subscription's notifications go: the session's output.
pub struct Sink {
    /// The session's output queue.
    pub output: mpsc::Sender<Output>,
    /// The session's framing.
    pub framing: Framing,
    /// The session, for counters and for ending it on overflow.
    pub session_id: u32,
    /// Its counters.
    pub counters: Arc<Counters>,
    /// The server.
    pub server: Arc<NetconfServer>,
    /// The session's user, whose access control decides what it receives.
    pub user: String,
    /// The user's rules, with the running configuration they were read from (read again when
    /// it changes).
    pub access: Mutex<Option<(Arc<DataTree<'static>>, Access)>>,
}

impl Sink {
    async fn send(&self, message: &str) -> Result<(), ()> {
        let framed = encode(self.framing, message.as_bytes());
        self.output
            .send(Output::Data(framed))
            .await
            .map_err(|_| ())?;
        self.server
            .sessions
            .count(&self.counters, Count::OutNotification);
        Ok(())
    }

    /// Sends `event` if access control lets the user receive it and the filter selects it.
    async fn deliver(&self, event: &Event, filter: Option<&Filter>) -> Result<(), ()> {
        if !self.allowed(event) {
            self.server
                .nacm
                .denied_notifications
                .fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if let Some(filter) = filter
            && !selects(&self.server, filter, event)
        {
            return Ok(());
        }
        self.send(event.message()).await
    }

    /// RFC 8341 §3.4.6: whether the user may receive `event` (its notification's rules).
    fn allowed(&self, event: &Event) -> bool {
        let running = self.server.datastore.running();
        let mut cached = self.access.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = cached
            .as_ref()
            .is_none_or(|(tree, _)| !Arc::ptr_eq(tree, &running));
        if fresh {
            *cached = Some((Arc::clone(&running), self.server.access_for(&self.user)));
        }
        let Some((_, access)) = cached.as_ref() else {
            return true;
        };
        if access.is_unrestricted() {
            return true;
        }
        let Some((ns, name)) = notification_name(event.body()) else {
            return true;
        };
        let ctx = self.server.datastore.context();
        let Some(module) = ctx
            .get_module_implemented_ns(&ns)
            .map(|m| m.name().to_owned())
        else {
            return true;
        };
        let schema = ctx.find_path(&format!("/{module}:{name}")).ok();
        access.notification_allowed(&module, &name, schema.as_ref())
    }

    async fn complete(&self, what: &str) -> Result<(), ()> {
        let body = format!("<{what} xmlns=\"{NS_NC_NOTIFICATIONS}\"/>");
        self.send(Event::new(0, Utc::now(), &body).message()).await
    }
}

/// Runs a subscription to its end. If the subscriber's queue overflows meanwhile (even while
/// the task waits for a client that does not read), the session is ended.
async fn run(new: NewSubscription, sink: &Sink) {
    let overflow = new.subscription.overflow_signal();
    tokio::select! {
        _ = forward(new, sink) => {}
        _ = overflow.wait() => {}
    }
    if overflow.happened() {
        warn!(
            session = sink.session_id,
            "the subscriber did not keep up with its stream; ending the session so that it can \
             resubscribe with a replay"
        );
        sink.server.sessions.kill(sink.session_id, 0);
    }
}

/// Sends the replay, then the live events, to the end of the subscription.
async fn forward(mut new: NewSubscription, sink: &Sink) {
    let filter = new.filter.as_ref();
    if let (Some(start), Some(snapshot)) = (new.start, new.subscription.replay.take()) {
        let (tx, mut rx) = mpsc::channel::<Event>(1024);
        let stop = new.stop;
        let reader = tokio::task::spawn_blocking(move || {
            snapshot.read(start, stop, |event| tx.blocking_send(event).is_ok())
        });
        while let Some(event) = rx.recv().await {
            if sink.deliver(&event, filter).await.is_err() {
                return;
            }
        }
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!(session = sink.session_id, error = %e, "reading the replay log failed")
            }
            Err(e) => warn!(session = sink.session_id, error = %e, "the replay reader failed"),
        }
        if sink.complete("replayComplete").await.is_err() {
            return;
        }
    }
    let stop_at = new.stop.map(|stop| {
        let wait = (stop - Utc::now()).to_std().unwrap_or_default();
        tokio::time::Instant::now() + wait
    });
    loop {
        let next = match stop_at {
            Some(at) => match tokio::time::timeout_at(at, new.subscription.events.recv()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            None => new.subscription.events.recv().await,
        };
        let Some(event) = next else {
            // The queue was dropped: it overflowed (see run).
            return;
        };
        if new.stop.is_some_and(|stop| event.time > stop) {
            break;
        }
        if sink.deliver(&event, filter).await.is_err() {
            return;
        }
    }
    debug!(
        session = sink.session_id,
        "subscription reached its stopTime"
    );
    let _ = sink.complete("notificationComplete").await;
}

/// The namespace and name of the notification that an event's body is.
fn notification_name(body: &str) -> Option<(String, String)> {
    let root = crate::netconf::xml::parse(body.as_bytes()).ok()?;
    Some((root.ns, root.name))
}

/// Whether `filter` selects anything of `event`, parsed as a notification of the current
/// schema. An event the schema no longer describes (its package was removed) is not selected.
fn selects(server: &NetconfServer, filter: &Filter, event: &Event) -> bool {
    let yang = server.schema().yang.clone();
    let ctx = yang.context();
    let Ok(tree) = DataTree::parse_op_string(
        ctx,
        event.body(),
        DataFormat::XML,
        DataParserFlags::empty(),
        DataOperation::NotificationYang,
    ) else {
        return false;
    };
    match crate::datastore::select(ctx, &tree, Some(filter)) {
        Ok(Some(selected)) => selected.tree().reference().is_some(),
        Ok(None) => true,
        Err(_) => false,
    }
}
