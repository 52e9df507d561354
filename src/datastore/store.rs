//! The three configuration datastores (running, candidate, startup) and the operations that
//! write them: `edit-config` on any of them, `copy-config`, `delete-config`, `lock`/`unlock`.
//!
//! Every write takes the transaction mutex ([`Datastore::txn`]), checks the target's lock, builds
//! the new tree off to the side, validates it, and only then stores it, so that a failed
//! operation changes nothing and a reader (who clones an `Arc` snapshot) never sees a partial
//! change.
//!
//! The candidate is shared by all sessions (RFC 6241 §8.3). While nobody has changed it, it *is*
//! running (`None`), so it follows every change of running; the first change gives it a tree of
//! its own, which `commit` and `discard-changes` give up again. Startup is `None` when it does
//! not exist (never saved, or deleted with `delete-config`).

use std::collections::BTreeSet;
use std::sync::{Arc, MutexGuard, RwLockReadGuard, RwLockWriteGuard};

use yang5::data::{Data, DataFormat, DataTree};
use yang5::utils::Binding;

use super::Access;
use super::confirm::PendingCommit;
use super::locks::{LockInfo, LockTable, SessionId};
use super::{
    Datastore, DatastoreError, EditRequest, TestOption, WithDefaults, bookkeeping,
    config_parse_flags, config_validation_flags, edit, persist, print, print_stored, raw,
};

/// A configuration datastore that clients name in `<source>` and `<target>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatastoreName {
    /// `<running/>`.
    Running,
    /// `<candidate/>` (`:candidate`).
    Candidate,
    /// `<startup/>` (`:startup`).
    Startup,
}

impl DatastoreName {
    /// Every configuration datastore.
    pub const ALL: [DatastoreName; 3] = [
        DatastoreName::Running,
        DatastoreName::Candidate,
        DatastoreName::Startup,
    ];

    /// The element name (`running`, ...), also the name in monitoring data.
    pub fn as_str(self) -> &'static str {
        match self {
            DatastoreName::Running => "running",
            DatastoreName::Candidate => "candidate",
            DatastoreName::Startup => "startup",
        }
    }

    /// The datastore named by an element name.
    pub fn parse(name: &str) -> Option<DatastoreName> {
        DatastoreName::ALL.into_iter().find(|d| d.as_str() == name)
    }
}

/// Where `copy-config` and `validate` take a configuration from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A datastore.
    Datastore(DatastoreName),
    /// An inline `<config>`: its content as XML.
    Config(String),
}

/// The state that only the holder of the transaction mutex may change.
#[derive(Default)]
pub(super) struct Txn {
    /// The sessions that changed the candidate since it last equalled running.
    pub(super) candidate_modifiers: BTreeSet<SessionId>,
    /// The confirmed commit waiting for confirmation.
    pub(super) confirmed: Option<PendingCommit>,
    /// Counts confirmed commits, to tell their timers apart.
    pub(super) generation: u64,
}

impl Datastore {
    /// Takes the transaction mutex: one writer at a time, over all datastores.
    pub(super) fn txn(&self) -> MutexGuard<'_, Txn> {
        self.commit.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lock table. Taken after [`Datastore::txn`] when both are needed.
    pub(super) fn locks(&self) -> MutexGuard<'_, LockTable> {
        self.locks.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn candidate_slot(&self) -> RwLockReadGuard<'_, Option<Arc<DataTree<'static>>>> {
        self.candidate.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn candidate_slot_mut(
        &self,
    ) -> RwLockWriteGuard<'_, Option<Arc<DataTree<'static>>>> {
        self.candidate.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn startup_slot(&self) -> RwLockReadGuard<'_, Option<Arc<DataTree<'static>>>> {
        self.startup.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn startup_slot_mut(&self) -> RwLockWriteGuard<'_, Option<Arc<DataTree<'static>>>> {
        self.startup.write().unwrap_or_else(|p| p.into_inner())
    }

    /// A consistent snapshot of a datastore. The candidate is running while unmodified; a
    /// startup that does not exist reads as empty.
    pub fn snapshot(&self, datastore: DatastoreName) -> Arc<DataTree<'static>> {
        match datastore {
            DatastoreName::Running => self.running(),
            DatastoreName::Candidate => self.candidate_tree().unwrap_or_else(|| self.running()),
            DatastoreName::Startup => self
                .startup_slot()
                .clone()
                .unwrap_or_else(|| Arc::new(DataTree::new(self.ctx()))),
        }
    }

    /// The candidate's own tree, `None` while it equals running.
    pub(super) fn candidate_tree(&self) -> Option<Arc<DataTree<'static>>> {
        self.candidate_slot().clone()
    }

    /// True if the candidate has changes that are neither committed nor discarded.
    pub fn candidate_modified(&self) -> bool {
        self.candidate_slot().is_some()
    }

    /// True if the startup datastore exists.
    pub fn startup_exists(&self) -> bool {
        self.startup_slot().is_some()
    }

    /// Makes the candidate equal running again.
    pub(super) fn reset_candidate(&self, txn: &mut Txn) {
        *self.candidate_slot_mut() = None;
        txn.candidate_modifiers.clear();
    }

    /// Fails if a session other than `session` holds the lock on `datastore`.
    pub(super) fn check_unlocked(
        &self,
        datastore: DatastoreName,
        session: SessionId,
    ) -> Result<(), DatastoreError> {
        match self.locks().held_by_other(datastore, session) {
            Some(holder) => Err(DatastoreError::Locked { datastore, holder }),
            None => Ok(()),
        }
    }

    /// Applies an `edit-config` to `target` on behalf of `session`: edit a copy, validate it,
    /// store it. On any error nothing changes.
    pub fn edit(
        &self,
        target: DatastoreName,
        session: SessionId,
        request: &EditRequest,
    ) -> Result<(), DatastoreError> {
        let mut txn = self.txn();
        self.check_unlocked(target, session)?;
        raw::clear_errors(self.ctx());
        let (edit, strict_errors) = self.parse_edit(&request.config)?;
        let current = self.snapshot(target);
        let copy = current
            .duplicate()
            .map_err(|_| raw::last_error(self.ctx()))?;
        let mut first = copy.into_raw();
        let mut editor = edit::Editor::new(self.ctx(), strict_errors);
        // SAFETY: `first` heads a private copy, `edit` a separate tree, both of our context.
        let applied = unsafe { editor.apply(&mut first, edit.raw(), request.default_operation) };
        // SAFETY: `first` is the (possibly new) head of the copy, which we own.
        let mut tree = unsafe { DataTree::from_raw(self.ctx(), first) };
        applied?;
        raw::clear_errors(self.ctx());
        tree.validate(config_validation_flags())
            .map_err(|_| raw::last_error(self.ctx()))?;
        request.access.check_write(&current, &tree)?;
        if request.test_option == TestOption::TestOnly {
            return Ok(());
        }
        self.store(&mut txn, target, session, tree)
    }

    /// `copy-config`: replaces `target` with the configuration of `source`. With `defaults`,
    /// the source is taken as a `get-config` with that with-defaults mode would report it
    /// (RFC 6243 §4.5.3: `report-all` turns defaults into explicit configuration).
    pub fn copy(
        &self,
        session: SessionId,
        source: &Source,
        target: DatastoreName,
        defaults: Option<WithDefaults>,
        access: &Access,
    ) -> Result<(), DatastoreError> {
        if *source == Source::Datastore(target) {
            return Err(DatastoreError::SameSourceAndTarget);
        }
        let mut txn = self.txn();
        self.check_unlocked(target, session)?;
        raw::clear_errors(self.ctx());
        let tree = match (source, defaults) {
            (Source::Config(xml), _) => self.parse_config(xml)?,
            (Source::Datastore(ds), None) => self
                .snapshot(*ds)
                .duplicate()
                .map_err(|_| raw::last_error(self.ctx()))?,
            (Source::Datastore(ds), Some(mode)) => {
                let source = self.snapshot(*ds);
                let mut tree = self.parse_config(&print(&source, mode)?)?;
                bookkeeping::copy(&source, &mut tree)?;
                tree
            }
        };
        access.check_write(&self.snapshot(target), &tree)?;
        self.store(&mut txn, target, session, tree)
    }

    /// `delete-config`: only startup can be deleted (running cannot, RFC 6241 §7.4, and the
    /// candidate is reset with `discard-changes`).
    pub fn delete(
        &self,
        session: SessionId,
        target: DatastoreName,
        access: &Access,
    ) -> Result<(), DatastoreError> {
        if target != DatastoreName::Startup {
            return Err(DatastoreError::NotSupported(format!(
                "the {} datastore cannot be deleted",
                target.as_str()
            )));
        }
        let _txn = self.txn();
        self.check_unlocked(target, session)?;
        access.check_write(&self.snapshot(target), &DataTree::new(self.ctx()))?;
        match std::fs::remove_file(&self.startup_file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        persist::sync_dir(&self.startup_file)?;
        let old = self.startup_slot_mut().take();
        self.report_change(DatastoreName::Startup, session, old.as_deref(), None);
        Ok(())
    }

    /// Validates a datastore's content anew (`validate` with a datastore as source).
    pub fn validate(&self, datastore: DatastoreName) -> Result<(), DatastoreError> {
        let snapshot = self.snapshot(datastore);
        let ctx = snapshot.context();
        raw::clear_errors(ctx);
        let mut copy = snapshot.duplicate().map_err(|_| raw::last_error(ctx))?;
        copy.validate(config_validation_flags())
            .map_err(|_| raw::last_error(ctx))?;
        self.check_validation_points(&Arc::new(copy))
    }

    /// `lock` (RFC 6241 §7.5). Denied while another session (or this one) holds the lock, and
    /// for the candidate while it has uncommitted changes.
    pub fn lock(&self, datastore: DatastoreName, session: SessionId) -> Result<(), DatastoreError> {
        let _txn = self.txn();
        if datastore == DatastoreName::Candidate && self.candidate_modified() {
            return Err(DatastoreError::CandidateModified);
        }
        self.locks()
            .acquire(datastore, session)
            .map_err(|holder| DatastoreError::LockDenied { datastore, holder })
    }

    /// `unlock` (RFC 6241 §7.6): only the holder can release a lock.
    pub fn unlock(
        &self,
        datastore: DatastoreName,
        session: SessionId,
    ) -> Result<(), DatastoreError> {
        let _txn = self.txn();
        if self.locks().release(datastore, session) {
            Ok(())
        } else {
            Err(DatastoreError::NotLocked { datastore })
        }
    }

    /// Prints `datastore`, or what `filter` selects of it, as XML (`get-config`).
    pub fn read(
        &self,
        datastore: DatastoreName,
        filter: Option<&super::Filter>,
        defaults: WithDefaults,
        access: &Access,
    ) -> Result<String, DatastoreError> {
        let snapshot = self.readable_view(&self.snapshot(datastore), access)?;
        super::select_and_print(
            snapshot.context(),
            &snapshot,
            filter,
            defaults,
            &Access::unrestricted(),
        )
    }

    /// The locks held now.
    pub fn lock_list(&self) -> Vec<LockInfo> {
        self.locks().list()
    }

    /// Parses and validates a complete configuration.
    pub(super) fn parse_config(&self, xml: &str) -> Result<DataTree<'static>, DatastoreError> {
        raw::refuse_nul(xml)?;
        raw::clear_errors(self.ctx());
        DataTree::parse_string(
            self.ctx(),
            xml,
            DataFormat::XML,
            config_parse_flags(),
            config_validation_flags(),
        )
        .map_err(|_| raw::last_error(self.ctx()))
    }

    /// Stores a validated tree as the new content of `target`.
    pub(super) fn store(
        &self,
        txn: &mut Txn,
        target: DatastoreName,
        session: SessionId,
        tree: DataTree<'static>,
    ) -> Result<(), DatastoreError> {
        match target {
            DatastoreName::Running => {
                let tree = self.prepare_commit(&self.running(), Arc::new(tree))?;
                self.commit_running(tree, session)
            }
            DatastoreName::Candidate => {
                *self.candidate_slot_mut() = Some(Arc::new(tree));
                txn.candidate_modifiers.insert(session);
                Ok(())
            }
            DatastoreName::Startup => {
                persist::write_atomically(&self.startup_file, print_stored(&tree)?.as_bytes())?;
                let tree = Arc::new(tree);
                let old = self.startup_slot_mut().replace(Arc::clone(&tree));
                self.report_change(DatastoreName::Startup, session, old.as_deref(), Some(&tree));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use yang5::context::Context;

    use super::*;
    use crate::datastore::{CommitRequest, ConfirmRequest, EditOperation};

    const NCS: &str = "http://tail-f.com/ns/ncs";

    fn context() -> &'static Context {
        crate::yang::test_context()
    }

    fn level(
        ds: &Datastore,
        target: DatastoreName,
        session: SessionId,
        level: &str,
    ) -> Result<(), DatastoreError> {
        ds.edit(
            target,
            session,
            &EditRequest {
                config: format!(
                    "<python-vm xmlns=\"{NCS}\"><logging><level>{level}</level></logging></python-vm>"
                ),
                default_operation: EditOperation::Merge,
                test_option: TestOption::TestThenSet,
                access: Access::unrestricted(),
            },
        )
    }

    fn read(ds: &Datastore, d: DatastoreName) -> String {
        ds.read(d, None, WithDefaults::Explicit, &Access::unrestricted())
            .unwrap()
    }

    fn confirmed(timeout: u64, persist: Option<&str>) -> CommitRequest {
        CommitRequest {
            confirmed: Some(ConfirmRequest {
                timeout: Duration::from_secs(timeout),
                persist: persist.map(String::from),
            }),
            persist_id: None,
        }
    }

    #[test]
    fn candidate_follows_running_until_changed_then_commit_resets_it() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        level(&ds, DatastoreName::Running, 1, "level-debug").unwrap();
        assert!(read(&ds, DatastoreName::Candidate).contains("level-debug"));
        level(&ds, DatastoreName::Candidate, 1, "level-error").unwrap();
        assert!(ds.candidate_modified());
        assert!(read(&ds, DatastoreName::Running).contains("level-debug"));
        // Uncommitted changes keep others from locking the candidate, and its own session too.
        assert!(matches!(
            ds.lock(DatastoreName::Candidate, 2),
            Err(DatastoreError::CandidateModified)
        ));
        ds.commit(1, &CommitRequest::default()).unwrap();
        assert!(!ds.candidate_modified());
        assert!(read(&ds, DatastoreName::Running).contains("level-error"));
        level(&ds, DatastoreName::Candidate, 1, "level-info").unwrap();
        ds.discard_changes(1).unwrap();
        assert!(read(&ds, DatastoreName::Candidate).contains("level-error"));
    }

    #[test]
    fn locks_keep_other_sessions_out_and_die_with_their_session() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        ds.lock(DatastoreName::Running, 1).unwrap();
        assert!(matches!(
            ds.lock(DatastoreName::Running, 2),
            Err(DatastoreError::LockDenied { holder: 1, .. })
        ));
        assert!(matches!(
            level(&ds, DatastoreName::Running, 2, "level-debug"),
            Err(DatastoreError::Locked { holder: 1, .. })
        ));
        level(&ds, DatastoreName::Running, 1, "level-debug").unwrap();
        assert!(matches!(
            ds.unlock(DatastoreName::Running, 2),
            Err(DatastoreError::NotLocked { .. })
        ));
        ds.lock(DatastoreName::Candidate, 1).unwrap();
        level(&ds, DatastoreName::Candidate, 1, "level-off").unwrap();
        let cleanup = ds.session_ended(1);
        assert_eq!(cleanup.released.len(), 2);
        assert!(cleanup.discarded, "{cleanup:?}");
        assert!(ds.lock_list().is_empty());
        assert!(!ds.candidate_modified());
        level(&ds, DatastoreName::Running, 2, "level-info").unwrap();
    }

    #[test]
    fn confirmed_commit_rolls_back_on_timeout_cancel_and_session_end() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        level(&ds, DatastoreName::Running, 1, "level-debug").unwrap();

        level(&ds, DatastoreName::Candidate, 1, "level-error").unwrap();
        let timer = ds.commit(1, &confirmed(60, None)).unwrap().unwrap();
        assert!(read(&ds, DatastoreName::Running).contains("level-error"));
        // Only the issuing session can confirm.
        assert!(matches!(
            ds.commit(2, &CommitRequest::default()),
            Err(DatastoreError::ConfirmedCommitOwned { holder: 1 })
        ));
        assert!(ds.expire_confirmed(timer.generation).unwrap());
        assert!(read(&ds, DatastoreName::Running).contains("level-debug"));

        level(&ds, DatastoreName::Candidate, 1, "level-error").unwrap();
        let first = ds.commit(1, &confirmed(60, None)).unwrap().unwrap();
        level(&ds, DatastoreName::Candidate, 1, "level-off").unwrap();
        // A follow-up confirmed commit: the old timer no longer counts, rollback goes back to
        // before the first.
        ds.commit(1, &confirmed(60, None)).unwrap().unwrap();
        assert!(!ds.expire_confirmed(first.generation).unwrap());
        ds.cancel_commit(1, None).unwrap();
        assert!(read(&ds, DatastoreName::Running).contains("level-debug"));

        level(&ds, DatastoreName::Candidate, 1, "level-error").unwrap();
        ds.commit(1, &confirmed(60, None)).unwrap();
        assert!(ds.session_ended(1).rolled_back);
        assert!(read(&ds, DatastoreName::Running).contains("level-debug"));

        // persist: survives its session, confirmed by persist-id from any session.
        level(&ds, DatastoreName::Candidate, 1, "level-error").unwrap();
        ds.commit(1, &confirmed(60, Some("tok"))).unwrap();
        assert!(!ds.session_ended(1).rolled_back);
        assert!(matches!(
            ds.commit(2, &CommitRequest::default()),
            Err(DatastoreError::PersistId(_))
        ));
        ds.commit(
            2,
            &CommitRequest {
                confirmed: None,
                persist_id: Some("tok".into()),
            },
        )
        .unwrap();
        assert!(!ds.confirmed_commit_pending());
        assert!(read(&ds, DatastoreName::Running).contains("level-error"));
    }

    #[test]
    fn unconfirmed_commit_is_rolled_back_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        level(&ds, DatastoreName::Running, 1, "level-debug").unwrap();
        level(&ds, DatastoreName::Candidate, 1, "level-error").unwrap();
        ds.commit(1, &confirmed(600, Some("p"))).unwrap();
        drop(ds);
        let ds = Datastore::open(context(), dir.path()).unwrap();
        assert!(read(&ds, DatastoreName::Running).contains("level-debug"));
        // A confirmed one stays.
        level(&ds, DatastoreName::Candidate, 1, "level-error").unwrap();
        ds.commit(1, &confirmed(600, None)).unwrap();
        ds.commit(1, &CommitRequest::default()).unwrap();
        drop(ds);
        let ds = Datastore::open(context(), dir.path()).unwrap();
        assert!(read(&ds, DatastoreName::Running).contains("level-error"));
        assert!(!dir.path().join("confirmed-rollback.xml").exists());
    }

    #[test]
    fn startup_copy_delete_and_boot() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        assert!(!ds.startup_exists());
        level(&ds, DatastoreName::Running, 1, "level-debug").unwrap();
        ds.copy(
            1,
            &Source::Datastore(DatastoreName::Running),
            DatastoreName::Startup,
            None,
            &Access::unrestricted(),
        )
        .unwrap();
        assert!(read(&ds, DatastoreName::Startup).contains("level-debug"));
        level(&ds, DatastoreName::Running, 1, "level-error").unwrap();
        assert!(matches!(
            ds.copy(
                1,
                &Source::Datastore(DatastoreName::Running),
                DatastoreName::Running,
                None,
                &Access::unrestricted(),
            ),
            Err(DatastoreError::SameSourceAndTarget)
        ));
        drop(ds);
        // A restart keeps the last committed running; startup is kept beside it.
        let ds = Datastore::open(context(), dir.path()).unwrap();
        assert!(read(&ds, DatastoreName::Running).contains("level-error"));
        assert!(read(&ds, DatastoreName::Startup).contains("level-debug"));
        drop(ds);
        // A state directory without running boots from startup.
        std::fs::remove_file(dir.path().join("running.xml")).unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        assert!(read(&ds, DatastoreName::Running).contains("level-debug"));
        ds.copy(
            1,
            &Source::Datastore(DatastoreName::Running),
            DatastoreName::Candidate,
            Some(WithDefaults::ReportAll),
            &Access::unrestricted(),
        )
        .unwrap();
        // report-all made the defaults explicit in the copy.
        assert!(read(&ds, DatastoreName::Candidate).contains("log-file-prefix"));
        assert!(matches!(
            ds.delete(1, DatastoreName::Running, &Access::unrestricted()),
            Err(DatastoreError::NotSupported(_))
        ));
        ds.delete(1, DatastoreName::Startup, &Access::unrestricted())
            .unwrap();
        assert!(!ds.startup_exists());
        assert_eq!(read(&ds, DatastoreName::Startup), "");
        ds.copy(
            1,
            &Source::Config(format!(
                "<python-vm xmlns=\"{NCS}\"><logging><level>bogus</level></logging></python-vm>",
            )),
            DatastoreName::Running,
            None,
            &Access::unrestricted(),
        )
        .unwrap_err();
    }
}
