//! The table of live NETCONF sessions: session-ids, the handle `kill-session` uses, and the
//! counters that RFC 6022 monitoring reports per session and for the whole server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::watch;

/// What the server knows about one session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The session-id (never 0).
    pub id: u32,
    /// The authenticated user.
    pub user: String,
    /// The client's address.
    pub addr: Option<SocketAddr>,
    /// When the session started.
    pub started: SystemTime,
    /// Its counters.
    pub counters: Arc<Counters>,
}

/// The message counters of RFC 6022, for one session or for all.
#[derive(Debug, Default)]
pub struct Counters {
    /// Correct `<rpc>` messages received.
    pub in_rpcs: AtomicU64,
    /// Messages received that were not correct `<rpc>`s.
    pub in_bad_rpcs: AtomicU64,
    /// `<rpc-reply>`s sent that held an `<rpc-error>`.
    pub out_rpc_errors: AtomicU64,
    /// Notifications sent.
    pub out_notifications: AtomicU64,
}

impl Counters {
    fn field(&self, what: Count) -> &AtomicU64 {
        match what {
            Count::InRpc => &self.in_rpcs,
            Count::InBadRpc => &self.in_bad_rpcs,
            Count::OutRpcError => &self.out_rpc_errors,
            Count::OutNotification => &self.out_notifications,
        }
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Server-wide statistics (RFC 6022 `/netconf-state/statistics`).
#[derive(Debug)]
pub struct Statistics {
    /// When the server started.
    pub started: SystemTime,
    /// Sessions that ended before a valid `<hello>`.
    pub in_bad_hellos: AtomicU64,
    /// Sessions started.
    pub in_sessions: AtomicU64,
    /// Sessions that ended other than by `close-session`.
    pub dropped_sessions: AtomicU64,
    /// The sum of all sessions' counters.
    pub totals: Counters,
}

impl Default for Statistics {
    fn default() -> Self {
        Statistics {
            started: SystemTime::now(),
            in_bad_hellos: AtomicU64::new(0),
            in_sessions: AtomicU64::new(0),
            dropped_sessions: AtomicU64::new(0),
            totals: Counters::default(),
        }
    }
}

/// Which counter [`Sessions::count`] increments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// A correct `<rpc>`.
    InRpc,
    /// A message that was not a correct `<rpc>`.
    InBadRpc,
    /// A reply with an `<rpc-error>`.
    OutRpcError,
    /// A notification.
    OutNotification,
}

struct Entry {
    info: SessionInfo,
    kill: watch::Sender<Option<u32>>,
}

/// All live sessions.
#[derive(Default)]
pub struct Sessions {
    next_id: AtomicU32,
    live: Mutex<HashMap<u32, Entry>>,
    /// Server-wide statistics.
    pub stats: Statistics,
}

/// Returned by [`Sessions::register`]; the session ends when `killed` changes.
pub struct Registration {
    /// The new session's id.
    pub id: u32,
    /// Becomes the id of the session that killed this one (0: the server).
    pub killed: watch::Receiver<Option<u32>>,
    /// The session's counters.
    pub counters: Arc<Counters>,
}

/// How many sessions may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// In all.
    pub total: usize,
    /// Of one user.
    pub per_user: usize,
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        SessionLimits {
            total: usize::MAX,
            per_user: usize::MAX,
        }
    }
}

/// Why a session was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionRefused {
    /// The server has as many sessions as it allows.
    #[error("the server has {0} sessions, the most it allows (--max-sessions)")]
    Total(usize),
    /// The user has as many sessions as one user may have.
    #[error(
        "user {user} has {count} sessions, the most one user may have (--max-sessions-per-user)"
    )]
    PerUser {
        /// The user.
        user: String,
        /// Its sessions.
        count: usize,
    },
}

impl Sessions {
    /// Allocates a session-id and records the session, unless `limits` forbid another one.
    ///
    /// # Errors
    /// The server, or the user, has as many sessions as `limits` allow.
    pub fn try_register(
        &self,
        user: &str,
        addr: Option<SocketAddr>,
        limits: SessionLimits,
    ) -> Result<Registration, SessionRefused> {
        let mut table = self.table();
        if table.len() >= limits.total {
            return Err(SessionRefused::Total(table.len()));
        }
        let count = table.values().filter(|e| e.info.user == user).count();
        if count >= limits.per_user {
            return Err(SessionRefused::PerUser {
                user: user.to_owned(),
                count,
            });
        }
        Ok(self.insert(&mut table, user, addr))
    }

    /// Allocates a session-id and records the session.
    pub fn register(&self, user: &str, addr: Option<SocketAddr>) -> Registration {
        let mut table = self.table();
        self.insert(&mut table, user, addr)
    }

    fn insert(
        &self,
        table: &mut HashMap<u32, Entry>,
        user: &str,
        addr: Option<SocketAddr>,
    ) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (kill, killed) = watch::channel(None);
        let counters = Arc::new(Counters::default());
        let info = SessionInfo {
            id,
            user: user.to_string(),
            addr,
            started: SystemTime::now(),
            counters: Arc::clone(&counters),
        };
        self.stats.in_sessions.fetch_add(1, Ordering::Relaxed);
        table.insert(id, Entry { info, kill });
        Registration {
            id,
            killed,
            counters,
        }
    }

    /// Counts one event of session `counters` and of the whole server.
    pub fn count(&self, counters: &Counters, what: Count) {
        for c in [counters, &self.stats.totals] {
            c.field(what).fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets a session that has ended.
    pub fn unregister(&self, id: u32) {
        self.table().remove(&id);
    }

    /// Asks session `id` to end on behalf of session `by` (0: the server); false if there is
    /// no such session.
    pub fn kill(&self, id: u32, by: u32) -> bool {
        match self.table().get(&id) {
            Some(entry) => {
                let _ = entry.kill.send(Some(by));
                true
            }
            None => false,
        }
    }

    /// What the server knows about session `id`, if it is live.
    pub fn get(&self, id: u32) -> Option<SessionInfo> {
        self.table().get(&id).map(|e| e.info.clone())
    }

    /// A snapshot of the live sessions, by id.
    pub fn list(&self) -> Vec<SessionInfo> {
        let mut all: Vec<SessionInfo> = self.table().values().map(|e| e.info.clone()).collect();
        all.sort_by_key(|s| s.id);
        all
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Entry>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_kill_reaches_the_session() {
        let sessions = Sessions::default();
        let a = sessions.register("admin", None);
        let mut b = sessions.register("admin", None);
        assert_ne!(a.id, b.id);
        assert!(a.id > 0);
        assert!(sessions.kill(b.id, a.id));
        assert!(b.killed.has_changed().unwrap());
        assert_eq!(*b.killed.borrow_and_update(), Some(a.id));
        assert_eq!(sessions.get(a.id).unwrap().user, "admin");
        sessions.unregister(b.id);
        assert!(!sessions.kill(b.id, a.id));
        assert!(sessions.get(b.id).is_none());
        assert_eq!(sessions.list().len(), 1);
    }
}
