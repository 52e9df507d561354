//! Transactions of the Python API (NSO's MAAPI): a private copy of running that package code
//! reads and changes by keypath, then applies to running as one commit.
//!
//! Reads see the transaction's own changes at once. The changes are also recorded, so that
//! applying works even when running moved on meanwhile (a NETCONF client committed): they are
//! then replayed onto the new running, and the result is validated as a whole, like any commit.
//! Nothing is validated before `apply` (or `validate`), as in NSO: a transaction may pass
//! through invalid states on its way to a valid one.

use std::sync::Arc;

use yang5::data::{Data, DataTree};
use yang5::schema::{DataValueType, SchemaNode, SchemaNodeKind};

use super::keypath::{self, ResolvedPath};
use super::services::Journal;
use super::{Access, Datastore, DatastoreError, DatastoreName, config_validation_flags, raw};

/// One recorded change, by libyang data path.
#[derive(Debug, Clone)]
enum Change {
    /// Set a leaf (creating what is missing on the way).
    Set { path: String, value: String },
    /// Create a node that must not exist yet.
    Create { path: String },
    /// Delete every instance `path` names; `must_exist` makes "none" an error.
    Delete { path: String, must_exist: bool },
}

/// What `get_elem` read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElemValue {
    /// A leaf's canonical value (`""` for a leaf of type `empty`).
    Leaf(String),
    /// A leaf-list's values, in order.
    LeafList(Vec<String>),
    /// A leaf that is not set, with its default value: what a transaction started with
    /// NSO's `FLAG_NO_DEFAULTS` reads instead of the value.
    Default(String),
}

/// The datastore a transaction writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    /// Configuration, in running.
    Running,
    /// State data, in the operational store (see `operational`).
    Operational,
}

/// A transaction on running (see the module documentation).
pub struct Transaction {
    tree: DataTree<'static>,
    /// Running as it was when the transaction started (or last applied).
    base: Arc<DataTree<'static>>,
    writable: bool,
    target: Target,
    changes: Vec<Change>,
    /// Set for a service callback's transaction: what it writes (see `services`).
    journal: Option<Journal>,
    /// NSO's `FLAG_NO_DEFAULTS`: a leaf that is not set reads as [`ElemValue::Default`].
    no_defaults: bool,
    /// The rights of the user it runs for: `tree` holds only what they may read, and applying
    /// checks each change (see [`Transaction::restrict`]).
    access: Access,
}

impl Datastore {
    /// Starts a transaction on running; a read-only one when `writable` is false.
    pub fn transaction(&self, writable: bool) -> Result<Transaction, DatastoreError> {
        let base = self.running();
        raw::clear_errors(self.ctx());
        let tree = base.duplicate().map_err(|_| raw::last_error(self.ctx()))?;
        Ok(Transaction {
            tree,
            base,
            writable,
            target: Target::Running,
            changes: Vec::new(),
            journal: None,
            no_defaults: false,
            access: Access::unrestricted(),
        })
    }

    /// Commits a transaction's changes to running (validated, persisted, announced). The
    /// transaction stays usable, now based on the new running. Fails, changing nothing, when
    /// a NETCONF session holds the lock on running or the result does not validate.
    pub fn apply_transaction(&self, trans: &mut Transaction) -> Result<(), DatastoreError> {
        if trans.target == Target::Operational {
            return self.apply_operational(trans, &[]);
        }
        self.apply(trans, true)
    }

    /// Applies an upgrade component's transaction: as [`Datastore::apply_transaction`], but
    /// without the services phase, as NSO's CDB upgrade (the VMs that serve the servicepoints
    /// do not run yet).
    pub fn apply_upgrade_transaction(&self, trans: &mut Transaction) -> Result<(), DatastoreError> {
        self.apply(trans, false)
    }

    fn apply(&self, trans: &mut Transaction, services: bool) -> Result<(), DatastoreError> {
        if trans.changes.is_empty() {
            return Ok(());
        }
        let _txn = self.txn();
        // Session 0 is the server itself: it holds no locks, so any lock on running blocks it.
        self.check_unlocked(DatastoreName::Running, 0)?;
        raw::clear_errors(self.ctx());
        let running = self.running();
        // A restricted transaction's tree lacks what its user may not read: its changes are
        // replayed onto running instead of its tree becoming running.
        let mut tree = if Arc::ptr_eq(&running, &trans.base) && trans.access.is_unrestricted() {
            trans
                .tree
                .duplicate()
                .map_err(|_| raw::last_error(self.ctx()))?
        } else {
            let mut tree = running
                .duplicate()
                .map_err(|_| raw::last_error(self.ctx()))?;
            for change in &trans.changes {
                apply_change(self.ctx(), &mut tree, change)?;
            }
            tree
        };
        trans.access.check_write(&running, &tree)?;
        tree.validate(config_validation_flags())
            .map_err(|_| raw::last_error(self.ctx()))?;
        let tree = match services {
            true => self.prepare_commit(&running, Arc::new(tree))?,
            false => Arc::new(tree),
        };
        // The transaction's next copy (what its user may read) is made before the commit:
        // nothing may fail after it.
        let committed = match trans.access.readable(&tree)? {
            Some(pruned) => pruned,
            None => tree.duplicate().map_err(|_| raw::last_error(self.ctx()))?,
        };
        self.commit_running(tree, 0)?;
        trans.tree = committed;
        trans.base = self.running();
        trans.changes.clear();
        Ok(())
    }
}

impl Change {
    fn path(&self) -> &str {
        match self {
            Change::Set { path, .. } | Change::Create { path } | Change::Delete { path, .. } => {
                path
            }
        }
    }
}

/// Applies one change to `tree`.
fn apply_change(
    ctx: &'static yang5::context::Context,
    tree: &mut DataTree<'static>,
    change: &Change,
) -> Result<(), DatastoreError> {
    raw::clear_errors(ctx);
    match change {
        Change::Set { path, value } => {
            tree.new_path(path, Some(value), false)
                .map_err(|_| raw::last_error(ctx))?;
        }
        Change::Create { path } => {
            if tree.find_path(path).is_ok() {
                return Err(DatastoreError::DataExists { path: path.clone() });
            }
            tree.new_path(path, None, false)
                .map_err(|_| raw::last_error(ctx))?;
        }
        Change::Delete { path, must_exist } => {
            let instances: Vec<String> = super::find_xpath(&*tree, path)
                .map(|set| set.into_iter().map(|n| n.path()).collect())
                .unwrap_or_default();
            if instances.is_empty() && *must_exist {
                return Err(DatastoreError::DataMissing { path: path.clone() });
            }
            for instance in instances {
                tree.remove(&instance).map_err(|_| raw::last_error(ctx))?;
            }
        }
    }
    Ok(())
}

/// Strings from a client go to C: a NUL would cut them short.
fn no_nul(keypath: &str, value: &str) -> Result<(), DatastoreError> {
    if value.contains('\0') {
        return Err(DatastoreError::BadPath {
            path: keypath.to_owned(),
            reason: "the value contains a NUL character".into(),
        });
    }
    Ok(())
}

impl Transaction {
    /// A writable transaction on a commit's `tree` (which grew out of `base`) for a service
    /// callback: what it writes is recorded for FASTMAP.
    pub(super) fn journaled(tree: DataTree<'static>, base: &Arc<DataTree<'static>>) -> Transaction {
        Transaction {
            tree,
            base: Arc::clone(base),
            writable: true,
            target: Target::Running,
            changes: Vec::new(),
            journal: Some(Journal::default()),
            no_defaults: false,
            access: Access::unrestricted(),
        }
    }

    /// A read-only transaction on a commit's `tree` (which grew out of `base`), for a
    /// validation callback.
    pub(super) fn read_only_on(
        tree: DataTree<'static>,
        base: &Arc<DataTree<'static>>,
    ) -> Transaction {
        Transaction {
            tree,
            base: Arc::clone(base),
            writable: false,
            target: Target::Running,
            changes: Vec::new(),
            journal: None,
            no_defaults: false,
            access: Access::unrestricted(),
        }
    }

    /// A transaction on the operational datastore (`tree`: running with state data).
    pub(super) fn on_operational(
        tree: DataTree<'static>,
        base: Arc<DataTree<'static>>,
        writable: bool,
    ) -> Transaction {
        Transaction {
            tree,
            base,
            writable,
            target: Target::Operational,
            changes: Vec::new(),
            journal: None,
            no_defaults: false,
            access: Access::unrestricted(),
        }
    }

    /// Runs the transaction with a user's rights (RFC 8341): what they may not read leaves
    /// the transaction's copy now and after each apply, and applying refuses a change they
    /// may not make.
    ///
    /// # Errors
    /// Copying the tree failed.
    pub fn restrict(&mut self, access: Access) -> Result<(), DatastoreError> {
        if let Some(readable) = access.readable(&self.tree)? {
            self.tree = readable;
        }
        self.access = access;
        Ok(())
    }

    /// The rights of the user the transaction runs for.
    pub(super) fn access(&self) -> &Access {
        &self.access
    }

    /// Reads unset leaves as [`ElemValue::Default`] (NSO's `FLAG_NO_DEFAULTS`).
    pub fn set_no_defaults(&mut self, on: bool) {
        self.no_defaults = on;
    }

    /// A transaction in this one (NSO's `start_trans_in_trans`): it reads what this one
    /// holds, uncommitted changes included, and [`Transaction::absorb`] takes its changes
    /// back into this one.
    pub fn child(&self, writable: bool) -> Result<Transaction, DatastoreError> {
        let ctx = self.ctx();
        raw::clear_errors(ctx);
        Ok(Transaction {
            tree: self.tree.duplicate().map_err(|_| raw::last_error(ctx))?,
            base: Arc::clone(&self.base),
            writable: writable && self.writable,
            target: self.target,
            changes: Vec::new(),
            journal: None,
            no_defaults: self.no_defaults,
            access: self.access.clone(),
        })
    }

    /// Takes the changes of `child` (see [`Transaction::child`]) into this transaction, as if
    /// they had been made here (a service's transaction records them for FASTMAP).
    pub fn absorb(&mut self, child: &mut Transaction) -> Result<(), DatastoreError> {
        for change in std::mem::take(&mut child.changes) {
            self.change(change)?;
        }
        Ok(())
    }

    pub(super) fn target(&self) -> Target {
        self.target
    }

    /// The data paths the transaction changed (in order, once each change).
    pub fn changed_paths(&self) -> Vec<&str> {
        self.changes.iter().map(Change::path).collect()
    }

    /// Replays the changes onto `tree`, but those under any of `skip`.
    pub(super) fn replay_onto(
        &self,
        tree: &mut DataTree<'static>,
        skip: &[&str],
    ) -> Result<(), DatastoreError> {
        for change in &self.changes {
            let path = change.path();
            if skip.iter().any(|prefix| path.starts_with(prefix)) {
                continue;
            }
            apply_change(self.ctx(), tree, change)?;
        }
        Ok(())
    }

    /// The changes are applied: the transaction goes on from here.
    pub(super) fn applied(&mut self) {
        self.changes.clear();
    }

    /// The tree and what was written to it, back from a callback.
    pub(super) fn into_journaled(self) -> (DataTree<'static>, Journal) {
        (self.tree, self.journal.unwrap_or_default())
    }

    /// The data node at a libyang data path, if it exists in the transaction's tree.
    pub fn data_node(&self, data_path: &str) -> Option<yang5::data::DataNodeRef<'_>> {
        self.tree.find_path(data_path).ok()
    }

    /// Tells the journal, if any, that `data_path` is written (even where nothing changes: a
    /// service that writes what is there shares it).
    fn record_write(&mut self, data_path: &str) {
        if let Some(journal) = self.journal.as_mut() {
            journal.before_write(&self.tree, data_path);
        }
    }

    fn ctx(&self) -> &'static yang5::context::Context {
        self.base.context()
    }

    fn resolve(&self, keypath: &str) -> Result<ResolvedPath, DatastoreError> {
        keypath::resolve(self.ctx(), Some(&self.tree), keypath)
    }

    /// Resolves a keypath that must name a node (not the root).
    fn resolve_node(
        &self,
        keypath: &str,
    ) -> Result<(ResolvedPath, SchemaNode<'static>), DatastoreError> {
        let resolved = self.resolve(keypath)?;
        let schema = resolved
            .schema
            .clone()
            .ok_or_else(|| DatastoreError::BadPath {
                path: keypath.to_owned(),
                reason: "the root is not a data node".into(),
            })?;
        Ok((resolved, schema))
    }

    fn instances(&self, data_path: &str) -> Vec<yang5::data::DataNodeRef<'_>> {
        super::find_xpath(&self.tree, data_path).unwrap_or_default()
    }

    /// Reads a leaf (or all values of a leaf-list). A leaf that is not set but has a default
    /// reads as the default, as long as the entry it belongs to exists.
    pub fn get_elem(&self, keypath: &str) -> Result<ElemValue, DatastoreError> {
        let (resolved, schema) = self.resolve_node(keypath)?;
        match schema.kind() {
            SchemaNodeKind::LeafList if resolved.all_instances => Ok(ElemValue::LeafList(
                self.instances(&resolved.data_path)
                    .iter()
                    .filter_map(|n| n.value_canonical())
                    .collect(),
            )),
            SchemaNodeKind::Leaf | SchemaNodeKind::LeafList => {
                if let Ok(node) = self.tree.find_path(&resolved.data_path) {
                    let value = node.value_canonical().unwrap_or_default();
                    // Validation adds the defaults to the tree, marked as such.
                    if self.no_defaults && node.is_default() {
                        return Ok(ElemValue::Default(value));
                    }
                    return Ok(ElemValue::Leaf(value));
                }
                match keypath::default_value(&schema) {
                    Some(default) if self.owner_exists(keypath)? && self.no_defaults => {
                        Ok(ElemValue::Default(default))
                    }
                    Some(default) if self.owner_exists(keypath)? => Ok(ElemValue::Leaf(default)),
                    _ => Err(DatastoreError::DataMissing {
                        path: keypath.to_owned(),
                    }),
                }
            }
            _ => Err(DatastoreError::BadPath {
                path: keypath.to_owned(),
                reason: format!("{} is not a leaf", schema.name()),
            }),
        }
    }

    /// True if the list entry or presence container that holds the node of `keypath` exists
    /// (non-presence containers on the way always exist).
    fn owner_exists(&self, keypath: &str) -> Result<bool, DatastoreError> {
        let steps = keypath::parse(keypath)?;
        let mut len = steps.len().saturating_sub(1);
        while len > 0 {
            let resolved =
                keypath::resolve_steps(self.ctx(), Some(&self.tree), keypath, &steps[..len])?;
            match resolved.schema {
                Some(schema) if schema.is_np_container() => len -= 1,
                _ => return Ok(self.tree.find_path(&resolved.data_path).is_ok()),
            }
        }
        Ok(true)
    }

    /// True if the node exists (any instance, for a list or leaf-list without keys).
    pub fn exists(&self, keypath: &str) -> Result<bool, DatastoreError> {
        match self.resolve(keypath) {
            Ok(resolved) if resolved.schema.is_none() => Ok(true),
            Ok(resolved) => Ok(!self.instances(&resolved.data_path).is_empty()),
            // A position past the end names nothing.
            Err(DatastoreError::DataMissing { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Resolves a keypath that must name all instances of a list or leaf-list.
    fn resolve_all(&self, keypath: &str) -> Result<ResolvedPath, DatastoreError> {
        let (resolved, schema) = self.resolve_node(keypath)?;
        if !resolved.all_instances {
            return Err(DatastoreError::BadPath {
                path: keypath.to_owned(),
                reason: format!("{} is not a list (or an entry was selected)", schema.name()),
            });
        }
        Ok(resolved)
    }

    /// The number of entries of a list or leaf-list.
    pub fn num_instances(&self, keypath: &str) -> Result<usize, DatastoreError> {
        let resolved = self.resolve_all(keypath)?;
        Ok(self.instances(&resolved.data_path).len())
    }

    /// The keys of every entry of a list, in order (the values, for a leaf-list).
    pub fn keys(&self, keypath: &str) -> Result<Vec<Vec<String>>, DatastoreError> {
        let resolved = self.resolve_all(keypath)?;
        Ok(self
            .instances(&resolved.data_path)
            .iter()
            .map(|n| {
                if n.schema().kind() == SchemaNodeKind::LeafList {
                    vec![n.value_canonical().unwrap_or_default()]
                } else {
                    n.list_keys()
                        .map(|k| k.value_canonical().unwrap_or_default())
                        .collect()
                }
            })
            .collect())
    }

    /// Resolves a keypath for a write: the transaction must be writable and the node
    /// configuration.
    fn resolve_writable(
        &self,
        keypath: &str,
    ) -> Result<(ResolvedPath, SchemaNode<'static>), DatastoreError> {
        if !self.writable {
            return Err(DatastoreError::NotWritable(
                "the transaction is read-only".into(),
            ));
        }
        let (resolved, schema) = self.resolve_node(keypath)?;
        match (self.target, schema.is_config()) {
            (Target::Running, false) => Err(DatastoreError::NotWritable(format!(
                "{keypath} is state data, not configuration (write it in an OPERATIONAL \
                 transaction)"
            ))),
            (Target::Operational, true) => Err(DatastoreError::NotWritable(format!(
                "{keypath} is configuration: an OPERATIONAL transaction writes state data only"
            ))),
            _ => Ok((resolved, schema)),
        }
    }

    /// Records and applies a change; a change that fails leaves the tree as it was.
    fn change(&mut self, change: Change) -> Result<(), DatastoreError> {
        match &change {
            Change::Set { path, .. } | Change::Create { path } => self.record_write(path),
            Change::Delete { path, .. } if self.journal.is_some() => {
                let instances: Vec<String> =
                    self.instances(path).iter().map(|n| n.path()).collect();
                if let Some(journal) = self.journal.as_mut() {
                    journal.before_delete(&self.tree, &instances);
                }
            }
            Change::Delete { .. } => {}
        }
        match apply_change(self.ctx(), &mut self.tree, &change) {
            Ok(()) => {
                self.changes.push(change);
                Ok(())
            }
            Err(e) => {
                // Only a delete of several instances can fail half-way; rebuilding costs a
                // copy of running, so it is paid on that failure, never on success.
                if matches!(change, Change::Delete { .. }) {
                    self.rebuild(self.changes.len())?;
                }
                Err(e)
            }
        }
    }

    /// Goes back to running plus the first `keep` recorded changes (they applied before, so
    /// they apply again).
    fn rebuild(&mut self, keep: usize) -> Result<(), DatastoreError> {
        let ctx = self.ctx();
        self.changes.truncate(keep);
        raw::clear_errors(ctx);
        let mut tree = self.base.duplicate().map_err(|_| raw::last_error(ctx))?;
        for change in &self.changes {
            apply_change(ctx, &mut tree, change)?;
        }
        self.tree = tree;
        Ok(())
    }

    /// Sets a leaf. For a leaf of type `empty`, any value creates it.
    pub fn set_elem(&mut self, keypath: &str, value: &str) -> Result<(), DatastoreError> {
        no_nul(keypath, value)?;
        let (resolved, schema) = self.resolve_writable(keypath)?;
        match schema.kind() {
            SchemaNodeKind::Leaf => {}
            SchemaNodeKind::LeafList if !resolved.all_instances => {}
            SchemaNodeKind::LeafList => {
                return self.set_leaf_list(keypath, &[value.to_owned()]);
            }
            _ => {
                return Err(DatastoreError::BadPath {
                    path: keypath.to_owned(),
                    reason: format!("{} is not a leaf", schema.name()),
                });
            }
        }
        let is_empty_type = schema
            .leaf_type()
            .is_some_and(|t| t.base_type() == DataValueType::Empty);
        if is_empty_type && self.tree.find_path(&resolved.data_path).is_ok() {
            self.record_write(&resolved.data_path);
            return Ok(());
        }
        self.change(Change::Set {
            path: resolved.data_path,
            value: if is_empty_type {
                String::new()
            } else {
                value.to_owned()
            },
        })
    }

    /// Replaces all values of a leaf-list.
    pub fn set_leaf_list(
        &mut self,
        keypath: &str,
        values: &[String],
    ) -> Result<(), DatastoreError> {
        for value in values {
            no_nul(keypath, value)?;
        }
        let (resolved, schema) = self.resolve_writable(keypath)?;
        if schema.kind() != SchemaNodeKind::LeafList || !resolved.all_instances {
            return Err(DatastoreError::BadPath {
                path: keypath.to_owned(),
                reason: format!("{} is not a leaf-list", schema.name()),
            });
        }
        let changes_before = self.changes.len();
        let result = (|| {
            self.change(Change::Delete {
                path: resolved.data_path.clone(),
                must_exist: false,
            })?;
            for value in values {
                let path = keypath::resolve(
                    self.ctx(),
                    None,
                    &format!(
                        "{keypath}{}",
                        keypath::format_keys(std::slice::from_ref(value))
                    ),
                )?
                .data_path;
                self.change(Change::Set {
                    path,
                    value: value.clone(),
                })?;
            }
            Ok(())
        })();
        if result.is_err() {
            self.rebuild(changes_before)?;
        }
        result
    }

    /// Creates a list entry, presence container, leaf of type `empty` or leaf-list entry.
    pub fn create(&mut self, keypath: &str) -> Result<(), DatastoreError> {
        let (resolved, schema) = self.resolve_writable(keypath)?;
        if resolved.all_instances {
            return Err(DatastoreError::BadPath {
                path: keypath.to_owned(),
                reason: format!("give the keys of the {} entry to create", schema.name()),
            });
        }
        if self.tree.find_path(&resolved.data_path).is_ok() {
            // `safe_create` (and maagic's `create`) of what exists: still the service's.
            self.record_write(&resolved.data_path);
            return Err(DatastoreError::DataExists {
                path: keypath.to_owned(),
            });
        }
        self.change(Change::Create {
            path: resolved.data_path,
        })
    }

    /// Deletes a node with everything below it (all entries, for a list without keys).
    pub fn delete(&mut self, keypath: &str) -> Result<(), DatastoreError> {
        let (resolved, _) = self.resolve_writable(keypath)?;
        if self.instances(&resolved.data_path).is_empty() {
            return Err(DatastoreError::DataMissing {
                path: keypath.to_owned(),
            });
        }
        self.change(Change::Delete {
            path: resolved.data_path,
            must_exist: true,
        })
    }

    /// Validates the transaction's configuration as a commit would.
    pub fn validate(&self) -> Result<(), DatastoreError> {
        let ctx = self.ctx();
        raw::clear_errors(ctx);
        let mut copy = self.tree.duplicate().map_err(|_| raw::last_error(ctx))?;
        copy.validate(config_validation_flags())
            .map_err(|_| raw::last_error(ctx))
    }

    /// The transaction's configuration has changes that are not applied.
    pub fn is_dirty(&self) -> bool {
        !self.changes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Datastore) {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(crate::yang::test_context(), dir.path()).unwrap();
        (dir, ds)
    }

    const LEVEL: &str = "/ncs:python-vm/logging/level";

    #[test]
    fn reads_see_defaults_and_the_transactions_own_writes() {
        let (_dir, ds) = open();
        let mut t = ds.transaction(true).unwrap();
        assert_eq!(
            t.get_elem(LEVEL).unwrap(),
            ElemValue::Leaf("level-info".into())
        );
        t.set_elem(LEVEL, "level-debug").unwrap();
        assert_eq!(
            t.get_elem(LEVEL).unwrap(),
            ElemValue::Leaf("level-debug".into())
        );
        // Not applied: running is unchanged.
        let other = ds.transaction(false).unwrap();
        assert_eq!(
            other.get_elem(LEVEL).unwrap(),
            ElemValue::Leaf("level-info".into())
        );
        ds.apply_transaction(&mut t).unwrap();
        let after = ds.transaction(false).unwrap();
        assert_eq!(
            after.get_elem(LEVEL).unwrap(),
            ElemValue::Leaf("level-debug".into())
        );
        assert!(!t.is_dirty());
    }

    #[test]
    fn an_unset_leaf_without_default_does_not_exist() {
        let (_dir, ds) = open();
        let mut t = ds.transaction(true).unwrap();
        t.create("/ncs:devices/device{d}").unwrap();
        assert!(matches!(
            t.get_elem("/ncs:devices/device{d}/authgroup"),
            Err(DatastoreError::DataMissing { .. })
        ));
    }

    #[test]
    fn list_entries_are_created_counted_and_deleted() {
        let (_dir, ds) = open();
        let mut t = ds.transaction(true).unwrap();
        let list = "/ncs:python-vm/logging/vm-levels";
        for vm in ["b", "a b"] {
            let entry = format!("{list}{}", keypath::format_keys(&[vm.to_owned()]));
            t.create(&entry).unwrap();
            t.set_elem(&format!("{entry}/level"), "level-error")
                .unwrap();
        }
        assert!(matches!(
            t.create(&format!("{list}{{b}}")),
            Err(DatastoreError::DataExists { .. })
        ));
        assert_eq!(t.num_instances(list).unwrap(), 2);
        // System-ordered lists are kept sorted by key.
        assert_eq!(
            t.keys(list).unwrap(),
            vec![vec!["a b".to_owned()], vec!["b".to_owned()]]
        );
        assert!(t.exists(&format!("{list}[1]")).unwrap());
        assert!(!t.exists(&format!("{list}[2]")).unwrap());
        t.delete(&format!("{list}{{b}}")).unwrap();
        assert!(matches!(
            t.delete(&format!("{list}{{b}}")),
            Err(DatastoreError::DataMissing { .. })
        ));
        ds.apply_transaction(&mut t).unwrap();
        assert_eq!(
            ds.transaction(false).unwrap().num_instances(list).unwrap(),
            1
        );
    }

    #[test]
    fn bad_values_and_read_only_writes_are_refused() {
        let (_dir, ds) = open();
        let mut t = ds.transaction(true).unwrap();
        assert!(matches!(
            t.set_elem(LEVEL, "loud"),
            Err(DatastoreError::Validation(_))
        ));
        assert!(t.set_elem(LEVEL, "a\0b").is_err());
        assert!(matches!(
            t.set_elem("/ncs:python-vm/nothing", "x"),
            Err(DatastoreError::BadPath { .. })
        ));
        let mut r = ds.transaction(false).unwrap();
        assert!(matches!(
            r.set_elem(LEVEL, "level-debug"),
            Err(DatastoreError::NotWritable(_))
        ));
    }

    #[test]
    fn changes_are_replayed_onto_a_running_that_moved_on() {
        let (_dir, ds) = open();
        let mut t = ds.transaction(true).unwrap();
        t.create("/ncs:python-vm/logging/vm-levels{x}").unwrap();
        t.set_elem("/ncs:python-vm/logging/vm-levels{x}/level", "level-off")
            .unwrap();
        let mut other = ds.transaction(true).unwrap();
        other.set_elem(LEVEL, "level-error").unwrap();
        ds.apply_transaction(&mut other).unwrap();
        ds.apply_transaction(&mut t).unwrap();
        let after = ds.transaction(false).unwrap();
        assert_eq!(
            after.get_elem(LEVEL).unwrap(),
            ElemValue::Leaf("level-error".into())
        );
        assert_eq!(
            after
                .get_elem("/ncs:python-vm/logging/vm-levels{x}/level")
                .unwrap(),
            ElemValue::Leaf("level-off".into())
        );
    }

    #[test]
    fn rebuilding_keeps_exactly_the_first_changes() {
        // What a change that fails half-way (a delete of several instances, a leaf-list
        // replacement) goes back to.
        let (_dir, ds) = open();
        let mut t = ds.transaction(true).unwrap();
        let names = "/ncs:devices/device-group{g}/device-name";
        t.create("/ncs:devices/device-group{g}").unwrap();
        t.set_leaf_list(names, &["a".into(), "b".into()]).unwrap();
        let kept = t.changes.len();
        t.set_leaf_list(names, &["c".into()]).unwrap();
        t.set_elem(LEVEL, "level-off").unwrap();
        t.rebuild(kept).unwrap();
        assert_eq!(
            t.get_elem(names).unwrap(),
            ElemValue::LeafList(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            t.get_elem(LEVEL).unwrap(),
            ElemValue::Leaf("level-info".into())
        );
        assert!(t.set_leaf_list(names, &["c".into(), "d\0".into()]).is_err());
        assert_eq!(t.changes.len(), kept);
    }

    #[test]
    fn a_lock_on_running_blocks_apply() {
        let (_dir, ds) = open();
        ds.lock(DatastoreName::Running, 7).unwrap();
        let mut t = ds.transaction(true).unwrap();
        t.set_elem(LEVEL, "level-debug").unwrap();
        assert!(matches!(
            ds.apply_transaction(&mut t),
            Err(DatastoreError::Locked { holder: 7, .. })
        ));
    }
}
