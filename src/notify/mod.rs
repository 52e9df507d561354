//! Event streams (RFC 5277): what happens in the server, as notifications, to every subscriber
//! of a stream and into the stream's replay log.
//!
//! Publishing never waits for a subscriber. Each subscription has a bounded queue; a publisher
//! that finds it full drops the subscription and marks it overflowed, and the subscriber's
//! session ends it (a NETCONF subscription has no way to say that events were lost, so it is
//! closed rather than left with a silent gap; the client resubscribes with a replay from the last
//! `eventTime` it saw). Events of one stream are numbered and published under the stream's lock,
//! so every subscriber and the replay log see them in the same order.

mod event;
mod replay;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tracing::warn;

pub use event::{Event, NS_NOTIFICATION, event_time};
pub use replay::{ReplayLimits, ReplayLog, ReplaySnapshot};

/// The default stream (RFC 5277 §3.2.3): the RFC 6470 base events.
pub const NETCONF_STREAM: &str = "NETCONF";
/// NSO's alarm stream: every `alarm-notification`.
pub const ALARMS_STREAM: &str = "ncs-alarms";

/// How a stream is declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// Its name, as clients give it in `create-subscription`.
    pub name: String,
    /// What it carries (`/netconf/streams/stream/description`).
    pub description: String,
    /// Whether it keeps a replay log.
    pub replay: bool,
}

/// What `/netconf/streams` says about a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// When its replay log was created; `None` without replay.
    pub replay_log_created: Option<DateTime<Utc>>,
}

/// Why a stream could not be published to or subscribed to.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// No stream has this name.
    #[error("there is no event stream named {0:?}")]
    UnknownStream(String),
    /// A replay was asked of a stream that keeps no log.
    #[error("the event stream {0:?} does not support replay")]
    NoReplay(String),
    /// The replay log could not be opened.
    #[error("cannot open the replay log of stream {stream:?}: {error}")]
    Log {
        /// The stream.
        stream: String,
        /// What went wrong.
        error: std::io::Error,
    },
}

/// Settings of the event streams.
#[derive(Debug, Clone)]
pub struct NotifyOptions {
    /// Where replay logs live (`<state>/notifications`); `None` keeps no logs (tests).
    pub dir: Option<PathBuf>,
    /// How much each replay log keeps.
    pub limits: ReplayLimits,
    /// How many events may wait for one subscriber before its subscription is dropped.
    pub queue_depth: usize,
}

struct Subscriber {
    id: u64,
    queue: mpsc::Sender<Arc<Event>>,
    overflow: Arc<Overflow>,
}

/// Set once a subscriber's queue overflowed; its subscription can wait for it.
#[derive(Default)]
struct Overflow {
    happened: AtomicBool,
    notify: tokio::sync::Notify,
}

struct StreamState {
    log: Option<ReplayLog>,
    next_seq: u64,
    last_time: Option<DateTime<Utc>>,
    subscribers: Vec<Subscriber>,
    next_subscriber: u64,
}

struct Stream {
    spec: StreamSpec,
    state: Mutex<StreamState>,
}

impl Stream {
    fn state(&self) -> MutexGuard<'_, StreamState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Every stream of the server.
pub struct Notifier {
    options: NotifyOptions,
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
}

/// A live subscription to one stream: the events published since it was made, and, for a
/// replay, the stored events from before. Dropping it unsubscribes.
pub struct Subscription {
    /// Events published since the subscription was made, in order.
    pub events: mpsc::Receiver<Arc<Event>>,
    /// For a replay: the stored events (all older than any of `events`).
    pub replay: Option<ReplaySnapshot>,
    overflow: Arc<Overflow>,
    stream: Arc<Stream>,
    id: u64,
}

impl Subscription {
    /// True once the subscriber fell so far behind that its queue overflowed; `events` then
    /// ends after what it holds.
    pub fn overflowed(&self) -> bool {
        self.overflow_signal().happened()
    }

    /// A handle that waits for the overflow of this subscription: a subscriber stuck on a
    /// client that does not read learns it there, not only at the end of its queue.
    pub fn overflow_signal(&self) -> OverflowSignal {
        OverflowSignal(Arc::clone(&self.overflow))
    }
}

/// Waits for a subscription's overflow (see [`Subscription::overflow_signal`]).
#[derive(Clone)]
pub struct OverflowSignal(Arc<Overflow>);

impl OverflowSignal {
    /// True once the subscription's queue has overflowed.
    pub fn happened(&self) -> bool {
        self.0.happened.load(Ordering::Relaxed)
    }

    /// Returns once the subscription's queue has overflowed.
    pub async fn wait(&self) {
        if !self.happened() {
            self.0.notify.notified().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stream.state().subscribers.retain(|s| s.id != self.id);
    }
}

impl Notifier {
    /// The streams every server has: `NETCONF` and `ncs-alarms`, both with replay.
    pub fn open(options: NotifyOptions) -> Result<Notifier, NotifyError> {
        let notifier = Notifier {
            options,
            streams: RwLock::new(BTreeMap::new()),
        };
        notifier.declare(StreamSpec {
            name: NETCONF_STREAM.into(),
            description: "default NETCONF event stream: configuration changes, sessions, \
                          confirmed commits and capability changes (RFC 6470)"
                .into(),
            replay: true,
        })?;
        notifier.declare(StreamSpec {
            name: ALARMS_STREAM.into(),
            description: "every new, changed and cleared alarm (alarm-notification)".into(),
            replay: true,
        })?;
        Ok(notifier)
    }

    /// Adds a stream (a package's); declaring an existing stream again changes nothing.
    pub fn declare(&self, spec: StreamSpec) -> Result<(), NotifyError> {
        if self.find(&spec.name).is_some() {
            return Ok(());
        }
        let log = match (&self.options.dir, spec.replay) {
            (Some(dir), true) => Some(
                ReplayLog::open(&log_dir(dir, &spec.name), self.options.limits).map_err(
                    |error| NotifyError::Log {
                        stream: spec.name.clone(),
                        error,
                    },
                )?,
            ),
            _ => None,
        };
        let state = StreamState {
            next_seq: log.as_ref().map_or(1, |l| l.next_seq()),
            last_time: log.as_ref().and_then(|l| l.last_time()),
            log,
            subscribers: Vec::new(),
            next_subscriber: 1,
        };
        let stream = Arc::new(Stream {
            spec: spec.clone(),
            state: Mutex::new(state),
        });
        self.streams
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(spec.name)
            .or_insert(stream);
        Ok(())
    }

    fn find(&self, name: &str) -> Option<Arc<Stream>> {
        self.streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    fn all(&self) -> Vec<Arc<Stream>> {
        self.streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Every stream, by name.
    pub fn streams(&self) -> Vec<StreamInfo> {
        self.all()
            .iter()
            .map(|s| StreamInfo {
                name: s.spec.name.clone(),
                description: s.spec.description.clone(),
                replay_log_created: s.state().log.as_ref().map(|l| l.created()),
            })
            .collect()
    }

    /// True if `name` is a stream.
    pub fn has_stream(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Publishes an event whose content is `body` (the notification's element, as XML) on
    /// `stream`: into its replay log and to every subscriber.
    pub fn publish(&self, stream: &str, body: &str) -> Result<Arc<Event>, NotifyError> {
        let stream = self
            .find(stream)
            .ok_or_else(|| NotifyError::UnknownStream(stream.to_string()))?;
        let mut state = stream.state();
        // eventTime never goes backwards within a stream, whatever the clock does, so that a
        // replay by time returns what a live subscriber saw.
        let now = Utc::now();
        let time = state.last_time.map_or(now, |last| last.max(now));
        let event = Arc::new(Event::new(state.next_seq, time, body));
        state.next_seq += 1;
        state.last_time = Some(time);
        if let Some(log) = &mut state.log
            && let Err(e) = log.append(&event)
        {
            warn!(stream = %stream.spec.name, error = %e, "cannot write to the replay log");
        }
        state
            .subscribers
            .retain(|s| match s.queue.try_send(Arc::clone(&event)) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    warn!(
                        stream = %stream.spec.name,
                        queued = self.options.queue_depth,
                        "a subscriber fell too far behind; its subscription is dropped"
                    );
                    s.overflow.happened.store(true, Ordering::Relaxed);
                    // A stored permit: the subscription may not be waiting yet.
                    s.overflow.notify.notify_one();
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        Ok(event)
    }

    /// Subscribes to `stream`. With `replay_from`, the stored events from that time on come
    /// first (in [`Subscription::replay`]); events published later arrive in
    /// [`Subscription::events`], none missed and none twice.
    pub fn subscribe(
        &self,
        stream: &str,
        replay_from: Option<DateTime<Utc>>,
    ) -> Result<Subscription, NotifyError> {
        let stream = self
            .find(stream)
            .ok_or_else(|| NotifyError::UnknownStream(stream.to_string()))?;
        let (queue, events) = mpsc::channel(self.options.queue_depth.max(1));
        let overflow = Arc::new(Overflow::default());
        let mut state = stream.state();
        let replay = match replay_from {
            None => None,
            Some(start) => match &state.log {
                Some(log) => Some(log.snapshot(start)),
                None if stream.spec.replay => Some(ReplaySnapshot::default()),
                None => return Err(NotifyError::NoReplay(stream.spec.name.clone())),
            },
        };
        let id = state.next_subscriber;
        state.next_subscriber += 1;
        state.subscribers.push(Subscriber {
            id,
            queue,
            overflow: Arc::clone(&overflow),
        });
        drop(state);
        Ok(Subscription {
            events,
            replay,
            overflow,
            stream,
            id,
        })
    }

    /// Makes every replay log durable (at shutdown).
    pub fn sync(&self) {
        for stream in self.all() {
            if let Some(log) = &mut stream.state().log
                && let Err(e) = log.sync()
            {
                warn!(stream = %stream.spec.name, error = %e, "cannot sync the replay log");
            }
        }
    }
}

/// The directory of a stream's log: its name where that is a safe file name, else its name
/// hex-encoded.
fn log_dir(dir: &Path, stream: &str) -> PathBuf {
    let safe = !stream.is_empty()
        && !stream.starts_with('.')
        && stream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if safe {
        dir.join(stream)
    } else {
        dir.join(format!(
            "x-{}",
            stream
                .bytes()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifier(dir: Option<&Path>, queue_depth: usize) -> Notifier {
        Notifier::open(NotifyOptions {
            dir: dir.map(Path::to_path_buf),
            limits: ReplayLimits::default(),
            queue_depth,
        })
        .unwrap()
    }

    #[test]
    fn subscribers_get_events_in_order_and_a_replay_misses_none() {
        let dir = tempfile::tempdir().unwrap();
        let n = notifier(Some(dir.path()), 100);
        let mut live = n.subscribe(NETCONF_STREAM, None).unwrap();
        n.publish(NETCONF_STREAM, "<a xmlns=\"urn:a\"/>").unwrap();
        let mut replaying = n
            .subscribe(NETCONF_STREAM, Some(DateTime::<Utc>::MIN_UTC))
            .unwrap();
        n.publish(NETCONF_STREAM, "<b xmlns=\"urn:a\"/>").unwrap();
        assert_eq!(live.events.try_recv().unwrap().seq, 1);
        assert_eq!(live.events.try_recv().unwrap().seq, 2);
        let mut replayed = Vec::new();
        replaying
            .replay
            .take()
            .unwrap()
            .read(DateTime::<Utc>::MIN_UTC, None, |e| {
                replayed.push(e.seq);
                true
            })
            .unwrap();
        assert_eq!(replayed, vec![1]);
        assert_eq!(replaying.events.try_recv().unwrap().seq, 2);
        assert!(replaying.events.try_recv().is_err());
    }

    #[test]
    fn a_full_queue_drops_the_subscription_not_the_publisher() {
        let n = notifier(None, 2);
        let mut slow = n.subscribe(ALARMS_STREAM, None).unwrap();
        for _ in 0..5 {
            n.publish(ALARMS_STREAM, "<a xmlns=\"urn:a\"/>").unwrap();
        }
        assert!(slow.overflowed());
        assert_eq!(slow.events.try_recv().unwrap().seq, 1);
        assert_eq!(slow.events.try_recv().unwrap().seq, 2);
        // The queue is closed: what it held, then the end.
        assert!(matches!(
            slow.events.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn errors_name_the_stream() {
        let n = notifier(None, 2);
        n.declare(StreamSpec {
            name: "plain".into(),
            description: "no replay".into(),
            replay: false,
        })
        .unwrap();
        assert!(matches!(
            n.subscribe("nope", None),
            Err(NotifyError::UnknownStream(_))
        ));
        assert!(matches!(
            n.subscribe("plain", Some(Utc::now())),
            Err(NotifyError::NoReplay(_))
        ));
        assert!(matches!(
            n.publish("nope", "<a/>"),
            Err(NotifyError::UnknownStream(_))
        ));
        let names: Vec<String> = n.streams().into_iter().map(|s| s.name).collect();
        assert_eq!(names, vec!["NETCONF", "ncs-alarms", "plain"]);
    }

    #[test]
    fn log_directories_are_safe_names() {
        let dir = Path::new("/s");
        assert_eq!(log_dir(dir, "NETCONF"), Path::new("/s/NETCONF"));
        assert_eq!(log_dir(dir, "../x"), Path::new("/s/x-2e2e2f78"));
    }
}
