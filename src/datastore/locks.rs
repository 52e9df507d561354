//! Global datastore locks (RFC 6241 §7.5, §7.6): one lock per configuration datastore, held by
//! one session until it unlocks it or ends.
//!
//! The table is only consulted and changed while the datastore's transaction mutex is held, so
//! that "is it locked?" and "apply the change" are one step for every writer; it has its own
//! small mutex so that monitoring can read it without waiting for a commit to finish.

use std::collections::HashMap;
use std::time::SystemTime;

use super::DatastoreName;

/// The id of a NETCONF session; 0 stands for the server itself.
pub type SessionId = u32;

/// A lock as monitoring reports it (RFC 6022 `global-lock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// The locked datastore.
    pub datastore: DatastoreName,
    /// The session holding it.
    pub session: SessionId,
    /// When the lock was taken.
    pub since: SystemTime,
}

/// Who holds which lock.
#[derive(Debug, Default)]
pub struct LockTable {
    held: HashMap<DatastoreName, (SessionId, SystemTime)>,
}

impl LockTable {
    /// The session holding the lock on `datastore`, if any.
    pub fn holder(&self, datastore: DatastoreName) -> Option<SessionId> {
        self.held.get(&datastore).map(|(s, _)| *s)
    }

    /// The session other than `session` that holds `datastore`, if any: that session's lock
    /// keeps `session` from changing the datastore.
    pub fn held_by_other(&self, datastore: DatastoreName, session: SessionId) -> Option<SessionId> {
        self.holder(datastore).filter(|&holder| holder != session)
    }

    /// Takes the lock; `Err(holder)` if some session (possibly `session` itself) holds it.
    pub fn acquire(
        &mut self,
        datastore: DatastoreName,
        session: SessionId,
    ) -> Result<(), SessionId> {
        match self.holder(datastore) {
            Some(holder) => Err(holder),
            None => {
                self.held.insert(datastore, (session, SystemTime::now()));
                Ok(())
            }
        }
    }

    /// Releases the lock; false if `session` does not hold it.
    pub fn release(&mut self, datastore: DatastoreName, session: SessionId) -> bool {
        if self.holder(datastore) == Some(session) {
            self.held.remove(&datastore);
            true
        } else {
            false
        }
    }

    /// Releases every lock of `session`; returns the datastores it held.
    pub fn release_all(&mut self, session: SessionId) -> Vec<DatastoreName> {
        let mine: Vec<DatastoreName> = self
            .held
            .iter()
            .filter(|(_, (s, _))| *s == session)
            .map(|(d, _)| *d)
            .collect();
        for d in &mine {
            self.held.remove(d);
        }
        mine
    }

    /// Every lock held, by datastore.
    pub fn list(&self) -> Vec<LockInfo> {
        let mut all: Vec<LockInfo> = self
            .held
            .iter()
            .map(|(d, (s, t))| LockInfo {
                datastore: *d,
                session: *s,
                since: *t,
            })
            .collect();
        all.sort_by_key(|l| l.datastore);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_per_datastore_and_release_all() {
        let mut t = LockTable::default();
        t.acquire(DatastoreName::Running, 1).unwrap();
        assert_eq!(t.acquire(DatastoreName::Running, 2), Err(1));
        assert_eq!(t.acquire(DatastoreName::Running, 1), Err(1));
        t.acquire(DatastoreName::Candidate, 1).unwrap();
        t.acquire(DatastoreName::Startup, 2).unwrap();
        assert_eq!(t.held_by_other(DatastoreName::Running, 2), Some(1));
        assert_eq!(t.held_by_other(DatastoreName::Running, 1), None);
        assert!(!t.release(DatastoreName::Startup, 1));
        let mut released = t.release_all(1);
        released.sort();
        assert_eq!(released, [DatastoreName::Running, DatastoreName::Candidate]);
        assert_eq!(t.list().len(), 1);
        assert!(t.release(DatastoreName::Startup, 2));
        assert!(t.list().is_empty());
    }
}
