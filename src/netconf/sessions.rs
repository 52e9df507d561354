//! The table of live NETCONF sessions: session-ids, and the handle `kill-session` uses.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
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
}

struct Entry {
    info: SessionInfo,
    kill: watch::Sender<bool>,
}

/// All live sessions.
#[derive(Default)]
pub struct Sessions {
    next_id: AtomicU32,
    live: Mutex<HashMap<u32, Entry>>,
}

/// Returned by [`Sessions::register`]; the session ends when `killed` changes.
pub struct Registration {
    /// The new session's id.
    pub id: u32,
    /// Changes to `true` when another session kills this one.
    pub killed: watch::Receiver<bool>,
}

impl Sessions {
    /// Allocates a session-id and records the session.
    pub fn register(&self, user: &str, addr: Option<SocketAddr>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (kill, killed) = watch::channel(false);
        let info = SessionInfo {
            id,
            user: user.to_string(),
            addr,
            started: SystemTime::now(),
        };
        self.table().insert(id, Entry { info, kill });
        Registration { id, killed }
    }

    /// Forgets a session that has ended.
    pub fn unregister(&self, id: u32) {
        self.table().remove(&id);
    }

    /// Asks session `id` to end; false if there is no such session.
    pub fn kill(&self, id: u32) -> bool {
        match self.table().get(&id) {
            Some(entry) => {
                let _ = entry.kill.send(true);
                true
            }
            None => false,
        }
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
        assert!(sessions.kill(b.id));
        assert!(b.killed.has_changed().unwrap());
        assert!(*b.killed.borrow_and_update());
        sessions.unregister(b.id);
        assert!(!sessions.kill(b.id));
        assert_eq!(sessions.list().len(), 1);
    }
}
