//! Operational data that package code writes (`ncs.OPERATIONAL` write transactions, NSO's
//! CDB operational data): state (`config false`) nodes of any model, kept in a tree of their
//! own, persisted in `operational.xml` and shown by `get` and `get-data` together with
//! running and the server's own state.
//!
//! A write transaction on the operational datastore reads everything `get` shows and may
//! change only state nodes. Applying it replays its changes onto the stored tree, which is
//! written to disk (atomically) before it is swapped in. State data is not validated as a
//! whole (it depends on configuration that moves on without it); values are checked against
//! their types as they are written. State under a configuration node that running no longer
//! has is not shown (NSO deletes it with the configuration).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use yang5::data::{Data, DataFormat, DataParserFlags, DataTree, DataValidationFlags};
use yang5::iter::NodeIterable;

use super::transaction::{Target, Transaction};
use super::{Datastore, DatastoreError, persist, print_stored, raw};

/// The stored operational data.
pub(super) struct OperationalStore {
    tree: RwLock<Arc<DataTree<'static>>>,
    file: PathBuf,
    /// Serialises applies.
    write: Mutex<()>,
}

impl OperationalStore {
    /// Loads `operational.xml` from `state_dir` (empty if there is none).
    pub(super) fn open(
        ctx: &'static yang5::context::Context,
        state_dir: &Path,
    ) -> Result<OperationalStore, DatastoreError> {
        let file = state_dir.join("operational.xml");
        persist::remove_stale_temp(&file);
        raw::clear_errors(ctx);
        let tree = match std::fs::read(&file) {
            Ok(bytes) => DataTree::parse_string(
                ctx,
                bytes,
                DataFormat::XML,
                DataParserFlags::STRICT | DataParserFlags::NO_VALIDATION,
                DataValidationFlags::empty(),
            )
            .map_err(|_| raw::last_error(ctx))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DataTree::new(ctx),
            Err(e) => return Err(e.into()),
        };
        Ok(OperationalStore {
            tree: RwLock::new(Arc::new(tree)),
            file,
            write: Mutex::new(()),
        })
    }

    fn current(&self) -> Arc<DataTree<'static>> {
        self.tree.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Datastore {
    /// Starts a transaction on the operational datastore: it reads running with all state
    /// data (`operational`: the server's own, as XML documents, as for `get`) and, when
    /// `writable`, writes state nodes.
    pub fn operational_transaction(
        &self,
        operational: &[String],
        writable: bool,
    ) -> Result<Transaction, DatastoreError> {
        let base = self.running();
        let tree = self.with_state(&base, operational)?;
        Ok(Transaction::on_operational(tree, base, writable))
    }

    /// Applies an operational transaction's changes to the stored operational data, leaving
    /// out those under any of `skip` (data paths of nodes the server keeps itself).
    pub fn apply_operational(
        &self,
        trans: &mut Transaction,
        skip: &[&str],
    ) -> Result<(), DatastoreError> {
        if !trans.is_dirty() {
            return Ok(());
        }
        let _write = self
            .operational
            .write
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        raw::clear_errors(self.ctx());
        let mut tree = self
            .operational
            .current()
            .duplicate()
            .map_err(|_| raw::last_error(self.ctx()))?;
        // The user's rights are checked on what the changes did to the stored state data.
        let before = match trans.access().is_unrestricted() {
            true => None,
            false => Some(tree.duplicate().map_err(|_| raw::last_error(self.ctx()))?),
        };
        trans.replay_onto(&mut tree, skip)?;
        if let Some(before) = before {
            trans.access().check_write(&before, &tree)?;
        }
        persist::write_atomically(&self.operational.file, print_stored(&tree)?.as_bytes())?;
        *self
            .operational
            .tree
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(tree);
        trans.applied();
        Ok(())
    }

    /// The stored operational data.
    pub(super) fn operational_tree(&self) -> Arc<DataTree<'static>> {
        self.operational.current()
    }

    /// Replaces the stored operational data (in memory; the file holds the same data).
    pub(super) fn set_operational_tree(&self, tree: DataTree<'static>) {
        *self
            .operational
            .tree
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(tree);
    }

    /// Adds the stored operational data to `tree` (running with state data), but for state
    /// under configuration that `tree` does not have.
    pub(super) fn add_package_state(
        &self,
        tree: &mut DataTree<'static>,
    ) -> Result<(), DatastoreError> {
        let stored = self.operational.current();
        let roots: Vec<_> = stored
            .traverse()
            .filter(|node| {
                !node.schema().is_config()
                    && node
                        .parent()
                        .is_none_or(|parent| parent.schema().is_config())
            })
            .collect();
        for root in roots {
            if let Some(parent) = root.parent()
                && tree.find_path(&parent.path()).is_err()
            {
                continue;
            }
            raw::clear_errors(self.ctx());
            let copy = root
                .duplicate(true)
                .map_err(|_| raw::last_error(self.ctx()))?;
            tree.merge(&copy).map_err(|_| raw::last_error(self.ctx()))?;
        }
        Ok(())
    }
}

impl Transaction {
    /// Whether this transaction writes the operational datastore.
    pub fn is_operational(&self) -> bool {
        self.target() == Target::Operational
    }
}
