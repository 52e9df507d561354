//! The candidate's transactions: `commit`, `discard-changes`, and the confirmed commit of
//! RFC 6241 §8.4 (`:confirmed-commit:1.1`) with its rollback when the confirming commit does
//! not come: on `cancel-commit`, on timeout, and when the session that issued a confirmed
//! commit without `persist` ends.
//!
//! The rollback point is the running configuration from before the *first* confirmed commit of
//! a series: follow-up confirmed commits extend the timeout and commit more, and a rollback
//! undoes them all (RFC 6241 §8.4.1).

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};
use yang5::data::DataTree;

use super::changes::{ConfirmEvent, ConfirmedCommit};
use super::locks::SessionId;
use super::store::Txn;
use super::{Datastore, DatastoreError, DatastoreName};
use super::{persist, print_stored};

/// RFC 6241's default `confirm-timeout`, in seconds.
pub const DEFAULT_CONFIRM_TIMEOUT: Duration = Duration::from_secs(600);

/// The `<confirmed/>` part of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmRequest {
    /// `confirm-timeout`.
    pub timeout: Duration,
    /// `persist`: the commit survives its session and is confirmed with this `persist-id`.
    pub persist: Option<String>,
}

/// A `commit` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitRequest {
    /// Present for a confirmed commit.
    pub confirmed: Option<ConfirmRequest>,
    /// `persist-id`: confirms (or extends) the confirmed commit that was given this `persist`.
    pub persist_id: Option<String>,
}

/// A confirmed commit waiting for its confirmation.
pub(super) struct PendingCommit {
    /// Running as it was before the first confirmed commit of the series.
    rollback: Arc<DataTree<'static>>,
    /// The session that issued the latest confirmed commit.
    owner: SessionId,
    /// The `persist` token, if any.
    persist: Option<String>,
    /// Identifies this confirmed commit, so that the timer of an older one does nothing.
    generation: u64,
}

/// What the caller must arrange after a confirmed commit: roll back at `timeout` unless
/// confirmed, by calling [`Datastore::expire_confirmed`] with `generation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmTimer {
    /// Identifies the confirmed commit.
    pub generation: u64,
    /// When to roll back, from now.
    pub timeout: Duration,
}

/// What ending a session undid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SessionCleanup {
    /// The locks it held.
    pub released: Vec<DatastoreName>,
    /// True if its pending confirmed commit was rolled back.
    pub rolled_back: bool,
    /// True if its uncommitted candidate changes were discarded.
    pub discarded: bool,
}

impl Datastore {
    /// Commits the candidate to running (RFC 6241 §8.3.4.1), as a confirmed commit when
    /// `request.confirmed` is given (§8.4.5.1). Confirms a pending confirmed commit when it is
    /// the same session's or carries its `persist-id`. The candidate then equals running.
    pub fn commit(
        &self,
        session: SessionId,
        request: &CommitRequest,
    ) -> Result<Option<ConfirmTimer>, DatastoreError> {
        let mut txn = self.txn();
        for ds in [DatastoreName::Running, DatastoreName::Candidate] {
            self.check_unlocked(ds, session)?;
        }
        match &txn.confirmed {
            Some(pending) => check_confirmer(pending, session, request.persist_id.as_deref())?,
            None if request.persist_id.is_some() => {
                return Err(DatastoreError::PersistId(
                    "no confirmed commit is pending".into(),
                ));
            }
            None => {}
        }
        let candidate = self.candidate_tree();
        let before = self.running();
        let starts_series = txn.confirmed.is_none() && request.confirmed.is_some();
        if starts_series {
            // On disk before running changes: a server that stops before the confirmation
            // comes back with the configuration from before the confirmed commit.
            persist::write_atomically(&self.rollback_file, print_stored(&before)?.as_bytes())?;
        }
        if let Some(tree) = candidate
            && let Err(e) = self
                .prepare_commit(&before, tree)
                .and_then(|tree| self.commit_running(tree, session))
        {
            if starts_series {
                self.forget_rollback_point();
            }
            return Err(e);
        }
        let timer = request.confirmed.as_ref().map(|confirm| {
            let rollback = txn.confirmed.take().map(|p| p.rollback).unwrap_or(before);
            txn.generation += 1;
            txn.confirmed = Some(PendingCommit {
                rollback,
                owner: session,
                persist: confirm.persist.clone(),
                generation: txn.generation,
            });
            ConfirmTimer {
                generation: txn.generation,
                timeout: confirm.timeout,
            }
        });
        if timer.is_none() && txn.confirmed.take().is_some() {
            self.forget_rollback_point();
            self.report_confirmed(ConfirmedCommit {
                event: ConfirmEvent::Complete,
                session: Some(session),
                timeout: None,
            });
        }
        if let Some(timer) = &timer {
            self.report_confirmed(ConfirmedCommit {
                event: match starts_series {
                    true => ConfirmEvent::Start,
                    false => ConfirmEvent::Extend,
                },
                session: Some(session),
                timeout: Some(timer.timeout),
            });
        }
        self.reset_candidate(&mut txn);
        Ok(timer)
    }

    /// `discard-changes`: the candidate becomes running again.
    pub fn discard_changes(&self, session: SessionId) -> Result<(), DatastoreError> {
        let mut txn = self.txn();
        self.check_unlocked(DatastoreName::Candidate, session)?;
        self.reset_candidate(&mut txn);
        Ok(())
    }

    /// `cancel-commit` (RFC 6241 §8.4.4.1): rolls a pending confirmed commit back.
    pub fn cancel_commit(
        &self,
        session: SessionId,
        persist_id: Option<&str>,
    ) -> Result<(), DatastoreError> {
        let mut txn = self.txn();
        let pending = txn
            .confirmed
            .as_ref()
            .ok_or(DatastoreError::NoPendingCommit)?;
        check_confirmer(pending, session, persist_id)?;
        self.check_unlocked(DatastoreName::Running, session)?;
        self.roll_back(&mut txn, ConfirmEvent::Cancel, Some(session))
    }

    /// The confirm-timeout of confirmed commit `generation` passed: rolls it back if it is
    /// still pending. True if it rolled back.
    pub fn expire_confirmed(&self, generation: u64) -> Result<bool, DatastoreError> {
        let mut txn = self.txn();
        if txn
            .confirmed
            .as_ref()
            .is_none_or(|p| p.generation != generation)
        {
            return Ok(false);
        }
        info!(
            generation,
            "confirm-timeout passed: rolling back the confirmed commit"
        );
        self.roll_back(&mut txn, ConfirmEvent::Timeout, None)?;
        Ok(true)
    }

    /// True while a confirmed commit waits for its confirmation.
    pub fn confirmed_commit_pending(&self) -> bool {
        self.txn().confirmed.is_some()
    }

    /// Undoes what session `session` leaves behind when it ends (closed, dropped or killed):
    /// releases its locks; rolls back its confirmed commit unless that was given `persist`
    /// (RFC 6241 §8.4.1); discards the candidate changes it abandons, which are all changes if
    /// it held the candidate lock, or the changes no other session contributed to.
    pub fn session_ended(&self, session: SessionId) -> SessionCleanup {
        let mut txn = self.txn();
        let released = self.locks().release_all(session);
        let mut cleanup = SessionCleanup {
            released,
            ..SessionCleanup::default()
        };
        if txn
            .confirmed
            .as_ref()
            .is_some_and(|p| p.owner == session && p.persist.is_none())
        {
            match self.roll_back(&mut txn, ConfirmEvent::Cancel, Some(session)) {
                Ok(()) => cleanup.rolled_back = true,
                Err(e) => warn!(session, error = %e, "rolling back a confirmed commit failed"),
            }
        }
        let only_mine =
            txn.candidate_modifiers.len() == 1 && txn.candidate_modifiers.contains(&session);
        let held_candidate = cleanup.released.contains(&DatastoreName::Candidate);
        if self.candidate_modified() && (held_candidate || only_mine) {
            self.reset_candidate(&mut txn);
            cleanup.discarded = true;
        }
        txn.candidate_modifiers.remove(&session);
        cleanup
    }

    /// Restores running to the rollback point of the pending confirmed commit, and resets the
    /// candidate to it; `event` and `session` say why and whose doing it is (`None`: the
    /// server's, on timeout).
    fn roll_back(
        &self,
        txn: &mut Txn,
        event: ConfirmEvent,
        session: Option<SessionId>,
    ) -> Result<(), DatastoreError> {
        let Some(pending) = txn.confirmed.take() else {
            return Ok(());
        };
        if let Err(e) = self.commit_running(Arc::clone(&pending.rollback), session.unwrap_or(0)) {
            txn.confirmed = Some(pending);
            return Err(e);
        }
        self.forget_rollback_point();
        self.reset_candidate(txn);
        self.report_confirmed(ConfirmedCommit {
            event,
            session,
            timeout: None,
        });
        Ok(())
    }

    /// Removes the rollback point from disk once the confirmed commit is settled. Failing to
    /// would roll back at the next start, so it is logged loudly.
    fn forget_rollback_point(&self) {
        let removed = match std::fs::remove_file(&self.rollback_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => persist::sync_dir(&self.rollback_file),
        };
        if let Err(e) = removed {
            warn!(error = %e, file = %self.rollback_file.display(), "cannot remove the rollback point");
        }
    }
}

/// Checks that `session` (with `persist_id`) may confirm or cancel `pending`.
fn check_confirmer(
    pending: &PendingCommit,
    session: SessionId,
    persist_id: Option<&str>,
) -> Result<(), DatastoreError> {
    match (&pending.persist, persist_id) {
        (Some(expected), Some(given)) if expected == given => Ok(()),
        (Some(_), Some(_)) => Err(DatastoreError::PersistId(
            "no confirmed commit with this persist-id is pending".into(),
        )),
        (Some(_), None) => Err(DatastoreError::PersistId(
            "the pending confirmed commit was given a persist token: give it as persist-id".into(),
        )),
        (None, Some(_)) => Err(DatastoreError::PersistId(
            "the pending confirmed commit has no persist token".into(),
        )),
        (None, None) if pending.owner != session => Err(DatastoreError::ConfirmedCommitOwned {
            holder: pending.owner,
        }),
        (None, None) => Ok(()),
    }
}
