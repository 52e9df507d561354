//! Services in the commit pipeline: NSO's FASTMAP.
//!
//! A list or container marked `ncs:servicepoint` holds service instances. When a commit of
//! running creates, changes or deletes an instance, the class that a VM registered for the
//! servicepoint runs against the commit's own tree, before it is validated and persisted:
//! `pre_modification`, then (except for a delete) `cb_create`, then `post_modification`. What
//! the callbacks write joins the commit; an error in any of them aborts it.
//!
//! FASTMAP: `cb_create` is written as if the instance were new, every time. Before it runs,
//! what its previous run wrote is taken back, and what it writes now is recorded — so what it
//! no longer writes disappears, and a deleted instance leaves nothing behind. Each node a
//! service wrote records the instances that wrote it (NSO's backpointers: the node stays until
//! the last of them lets go) and what it was before the first of them did (the reverse diff:
//! a value the service overwrote, or a subtree it deleted, comes back).
//!
//! That bookkeeping ([`bookkeeping`](super::bookkeeping)) is kept in the running tree itself,
//! so it is persisted, rolled back (confirmed commits) and copied (startup) atomically with the
//! data it describes. Only nodes that mean something are tracked: list entries, presence
//! containers, leaves and leaf-list entries; a non-presence container is never "created" or
//! removed by FASTMAP (it would take every sibling with it).
//!
//! The datastore knows nothing of Python: the runtime plugs in as [`CommitCallbacks`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use yang5::context::Context;
use yang5::data::{
    Data, DataDiffFlags, DataFormat, DataNodeRef, DataParserFlags, DataTree, DataValidationFlags,
};
use yang5::ffi;
use yang5::schema::{SchemaNodeKind, SchemaPathFormat};

use super::bookkeeping::{self, Bookkeeping, Claim, InstanceRecord, NodeEntry, Original};
use super::callbacks::{
    CallbackKind, CommitCallbacks, Proplist, ServiceCall, ServiceOperation, ServicePhase,
};
use super::keypath::{nso_keypath, path_prefixes, strip_predicates};
use super::{
    Datastore, DatastoreError, DatastoreName, Transaction, WithDefaults, config_validation_flags,
    raw,
};

/// A node marked with `ncs:servicepoint`.
#[derive(Debug, Clone)]
struct ServicePoint {
    point: String,
    /// The schema node's data path (module names as prefixes): selects every instance.
    data_path: String,
}

/// The servicepoints of the schema.
pub(super) struct Services {
    points: Vec<ServicePoint>,
}

impl Services {
    /// Finds the servicepoints of `ctx`.
    pub(super) fn new(ctx: &'static Context) -> Services {
        let points = ctx
            .traverse()
            .filter(|node| {
                matches!(
                    node.kind(),
                    SchemaNodeKind::List | SchemaNodeKind::Container
                )
            })
            .filter_map(|node| {
                let point = crate::yang::extension_argument(&node, "tailf-ncs", "servicepoint")?;
                Some(ServicePoint {
                    point,
                    data_path: node.path(SchemaPathFormat::DATA),
                })
            })
            .collect();
        Services { points }
    }
}

/// What a service's callback wrote, recorded by its [`Transaction`] as it writes: each node
/// on the way to each write, with what it was before this run first touched it.
#[derive(Default)]
pub(super) struct Journal {
    touched: Vec<(String, Original)>,
    seen: HashSet<String>,
}

impl Journal {
    /// Before a write to `path`: the node and every node on the way to it.
    pub(super) fn before_write(&mut self, tree: &DataTree<'static>, path: &str) {
        for prefix in path_prefixes(path) {
            self.touch(tree, prefix);
        }
    }

    /// Before the instances at `paths` are deleted: the way to them, and their content, which
    /// comes back when the service lets go.
    pub(super) fn before_delete(&mut self, tree: &DataTree<'static>, paths: &[String]) {
        for path in paths {
            let prefixes = path_prefixes(path);
            for prefix in &prefixes[..prefixes.len().saturating_sub(1)] {
                self.touch(tree, prefix);
            }
            let Some(xml) = subtree_xml(tree, path) else {
                continue;
            };
            if self.seen.insert(path.clone()) {
                self.touched.push((path.clone(), Original::Subtree(xml)));
            } else if let Some(entry) = self.touched.iter_mut().find(|(p, _)| p == path)
                && entry.1 != Original::Absent
            {
                entry.1 = Original::Subtree(xml);
            }
        }
    }

    fn touch(&mut self, tree: &DataTree<'static>, path: &str) {
        if self.seen.contains(path) {
            return;
        }
        self.seen.insert(path.to_owned());
        let original = match tree.find_path(path) {
            Ok(node) => {
                let schema = node.schema();
                if schema.is_np_container() {
                    return;
                }
                match schema.kind() {
                    SchemaNodeKind::Leaf => {
                        Original::Leaf(node.value_canonical().unwrap_or_default())
                    }
                    _ => Original::Present,
                }
            }
            Err(_) => {
                let schema_path = strip_predicates(path);
                if tree
                    .context()
                    .find_path(&schema_path)
                    .is_ok_and(|s| s.is_np_container())
                {
                    return;
                }
                Original::Absent
            }
        };
        self.touched.push((path.to_owned(), original));
    }
}

/// The node at `path` with its parents, as XML.
fn subtree_xml(tree: &DataTree<'static>, path: &str) -> Option<String> {
    let node = tree.find_path(path).ok()?;
    let copy = node.duplicate(true).ok()?;
    super::print_stored(&copy).ok()
}

/// True if two data nodes hold the same data, all the way down.
pub(super) fn same_data(a: &DataNodeRef<'_>, b: &DataNodeRef<'_>) -> bool {
    // SAFETY: both are live nodes of trees of the same context.
    unsafe {
        ffi::lyd_compare_single(a.as_raw(), b.as_raw(), ffi::LYD_COMPARE_FULL_RECURSION)
            == ffi::LY_ERR::LY_SUCCESS
    }
}

/// `text` as an XPath string literal, if it can be one.
fn xpath_literal(text: &str) -> Option<String> {
    if !text.contains('\'') {
        Some(format!("'{text}'"))
    } else if !text.contains('"') {
        Some(format!("\"{text}\""))
    } else {
        None
    }
}

/// A service instance that the commit touches.
#[derive(Debug, Clone)]
struct InstanceChange {
    point: String,
    path: String,
    keypath: String,
    operation: ServiceOperation,
    /// NSO's `un-deploy`: the callbacks run as for a delete, but the instance stays.
    undeploy: bool,
}

impl InstanceChange {
    /// The error that aborts the commit, for this instance.
    fn error(&self, message: String) -> DatastoreError {
        DatastoreError::Service {
            path: self.path.clone(),
            keypath: self.keypath.clone(),
            message,
        }
    }
}

/// What an action asks of one instance in a commit of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Forced<'a> {
    /// `re-deploy`: run as if the instance changed.
    Redeploy(&'a str),
    /// `un-deploy`: take back what it wrote, keep the instance.
    Undeploy(&'a str),
}

impl Services {
    /// The instances that differ between `old` and `new`; the `forced` one counts as
    /// changed if it exists.
    fn changed_instances(
        &self,
        old: &DataTree<'static>,
        new: &DataTree<'static>,
        forced: Option<Forced<'_>>,
    ) -> Vec<InstanceChange> {
        let mut changes = Vec::new();
        for sp in &self.points {
            let instances = |tree: &DataTree<'static>| -> BTreeMap<String, String> {
                super::find_xpath(tree, &sp.data_path)
                    .map(|set| {
                        set.into_iter()
                            .map(|n| (n.path(), nso_keypath(&n)))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let before = instances(old);
            let after = instances(new);
            let change = |path: &String, keypath: &String, operation| InstanceChange {
                point: sp.point.clone(),
                path: path.clone(),
                keypath: keypath.clone(),
                operation,
                undeploy: false,
            };
            for (path, keypath) in &after {
                if !before.contains_key(path) {
                    changes.push(change(path, keypath, ServiceOperation::Create));
                } else if forced == Some(Forced::Redeploy(path.as_str())) {
                    changes.push(change(path, keypath, ServiceOperation::Update));
                } else if forced == Some(Forced::Undeploy(path.as_str())) {
                    changes.push(InstanceChange {
                        undeploy: true,
                        ..change(path, keypath, ServiceOperation::Delete)
                    });
                } else if let (Ok(a), Ok(b)) = (old.find_path(path), new.find_path(path))
                    && !same_data(&a, &b)
                {
                    changes.push(change(path, keypath, ServiceOperation::Update));
                }
            }
            for (path, keypath) in &before {
                if !after.contains_key(path) {
                    changes.push(change(path, keypath, ServiceOperation::Delete));
                }
            }
        }
        // Deletes first: what they let go of is free for the others to write.
        changes.sort_by_key(|c| c.operation != ServiceOperation::Delete);
        changes
    }
}

/// One commit's services phase.
struct Phase<'a> {
    callbacks: Option<&'a Arc<dyn CommitCallbacks>>,
    book: Bookkeeping,
    /// The tree before the phase, for the transactions' `base`.
    base: Arc<DataTree<'static>>,
}

impl Phase<'_> {
    fn run_instance(
        &mut self,
        change: &InstanceChange,
        mut tree: DataTree<'static>,
    ) -> Result<DataTree<'static>, DatastoreError> {
        let record = self.book.instance(&change.path).cloned();
        let mut proplist = record
            .as_ref()
            .map(|r| r.proplist.clone())
            .unwrap_or_default();
        let claims = record.map(|r| r.claims).unwrap_or_default();
        let registered = match self.callbacks {
            Some(callbacks) => callbacks.check_registered(CallbackKind::Service, &change.point),
            None => Err(format!(
                "no Python class is registered for the servicepoint {}",
                change.point
            )),
        };
        // A delete goes through without its callbacks: an instance must never be stuck
        // because its package is gone.
        let callbacks = match registered {
            Ok(()) => self.callbacks,
            Err(_) if change.operation == ServiceOperation::Delete => None,
            Err(message) => return Err(change.error(message)),
        };
        if let Some(callbacks) = callbacks {
            (tree, _) = self.call(
                callbacks,
                change,
                ServicePhase::PreModification,
                &mut proplist,
                tree,
            )?;
        }
        self.release(&mut tree, &change.path, &claims)?;
        self.book.set_instance(&change.path, None);
        let Some(callbacks) = callbacks else {
            return Ok(tree);
        };
        let mut claims = Vec::new();
        if change.operation != ServiceOperation::Delete {
            let journal;
            (tree, journal) =
                self.call(callbacks, change, ServicePhase::Create, &mut proplist, tree)?;
            claims = self.claim(&tree, &change.path, journal);
        }
        (tree, _) = self.call(
            callbacks,
            change,
            ServicePhase::PostModification,
            &mut proplist,
            tree,
        )?;
        // An un-deployed instance stays, with its proplist; re-deploy brings its writes back.
        if change.undeploy || change.operation != ServiceOperation::Delete {
            let record = InstanceRecord {
                point: change.point.clone(),
                keypath: change.keypath.clone(),
                claims,
                proplist,
                undeployed: change.undeploy,
            };
            self.book.set_instance(&change.path, Some(record));
        }
        Ok(tree)
    }

    /// Runs one callback with the commit's tree; a proplist it returns replaces `proplist`.
    fn call(
        &self,
        callbacks: &Arc<dyn CommitCallbacks>,
        change: &InstanceChange,
        phase: ServicePhase,
        proplist: &mut Proplist,
        tree: DataTree<'static>,
    ) -> Result<(DataTree<'static>, Journal), DatastoreError> {
        let call = ServiceCall {
            point: &change.point,
            phase,
            operation: change.operation,
            keypath: &change.keypath,
            path: &change.path,
            proplist,
        };
        let (trans, outcome) =
            callbacks.run_service(&call, Transaction::journaled(tree, &self.base));
        let trans = trans.ok_or_else(|| {
            change.error(format!(
                "the VM serving the servicepoint {} ended during {}",
                change.point,
                phase.as_str()
            ))
        })?;
        if let Some(returned) = outcome.map_err(|message| change.error(message))? {
            *proplist = returned;
        }
        Ok(trans.into_journaled())
    }

    /// Takes back what `instance` wrote: each node it wrote loses it as an owner, and a node
    /// nobody owns any more becomes what it was before the first service wrote it.
    fn release(
        &mut self,
        tree: &mut DataTree<'static>,
        instance: &str,
        claims: &[Claim],
    ) -> Result<(), DatastoreError> {
        let ctx = tree.context();
        // Deepest first: a node's children go before it.
        for claim in claims.iter().rev() {
            let path = &claim.path;
            let Some(mut entry) = self.book.node(path).cloned() else {
                continue;
            };
            entry.owners.remove(instance);
            if !entry.owners.is_empty() {
                self.book.set_node(path, Some(entry));
                continue;
            }
            self.book.set_node(path, None);
            raw::clear_errors(ctx);
            match entry.original {
                Original::Absent => {
                    if tree.find_path(path).is_ok() {
                        tree.remove(path).map_err(|_| raw::last_error(ctx))?;
                    }
                }
                Original::Leaf(value) => {
                    tree.new_path(path, Some(&value), false)
                        .map_err(|_| raw::last_error(ctx))?;
                }
                Original::Present => {}
                Original::Subtree(xml) => {
                    let subtree = DataTree::parse_string(
                        ctx,
                        xml,
                        DataFormat::XML,
                        DataParserFlags::STRICT | DataParserFlags::NO_VALIDATION,
                        DataValidationFlags::empty(),
                    )
                    .map_err(|_| raw::last_error(ctx))?;
                    tree.merge(&subtree).map_err(|_| raw::last_error(ctx))?;
                }
            }
        }
        Ok(())
    }

    /// Records what `instance`'s `cb_create` wrote; returns its claims.
    fn claim(&mut self, tree: &DataTree<'static>, instance: &str, journal: Journal) -> Vec<Claim> {
        let mut claims = Vec::new();
        for (path, original) in journal.touched {
            if original == Original::Absent && tree.find_path(&path).is_err() {
                continue; // created and deleted again in the same run
            }
            let mut entry = self.book.node(&path).cloned().unwrap_or(NodeEntry {
                owners: BTreeSet::new(),
                original,
            });
            entry.owners.insert(instance.to_owned());
            claims.push(Claim {
                path: path.clone(),
                original: entry.original.clone(),
            });
            self.book.set_node(&path, Some(entry));
        }
        claims
    }
}

impl Datastore {
    /// The services phase of a commit of running (the caller holds the commit lock and has
    /// validated `new`): runs the callbacks of every instance that differs between `old`
    /// (running) and `new`, and of `redeploy`, and gives the tree to commit, validated —
    /// `new` itself when no instance changed. The bookkeeping always comes from `old`: what a
    /// client wrote in its place is dropped.
    pub(super) fn run_services(
        &self,
        old: &Arc<DataTree<'static>>,
        new: Arc<DataTree<'static>>,
        forced: Option<Forced<'_>>,
    ) -> Result<Arc<DataTree<'static>>, DatastoreError> {
        let services = Arc::clone(&self.services.read().unwrap_or_else(|p| p.into_inner()));
        let mut changes = services.changed_instances(old, &new, forced);
        let book = match changes.is_empty() {
            true => None,
            false => Some(self.bookkeeping.view(old)?),
        };
        if let Some(book) = &book {
            // An un-deployed instance stays so, changed or not, until it is re-deployed.
            changes.retain(|c| {
                c.operation != ServiceOperation::Update
                    || forced == Some(Forced::Redeploy(&c.path))
                    || !book.instance(&c.path).is_some_and(|r| r.undeployed)
            });
        }
        let same_bookkeeping = bookkeeping::same(old, &new);
        if changes.is_empty() && same_bookkeeping {
            self.bookkeeping.carried(old, &new);
            return Ok(new);
        }
        let mut phase = Phase {
            callbacks: self.callbacks.get(),
            book: match book {
                Some(book) => book,
                None => self.bookkeeping.view(old)?,
            },
            base: Arc::clone(&new),
        };
        raw::clear_errors(self.ctx());
        let mut tree = new.duplicate().map_err(|_| raw::last_error(self.ctx()))?;
        if !same_bookkeeping {
            bookkeeping::copy(old, &mut tree)?;
        }
        for change in &changes {
            tree = phase.run_instance(change, tree)?;
        }
        phase.book.write(&mut tree)?;
        if !changes.is_empty() {
            raw::clear_errors(self.ctx());
            tree.validate(config_validation_flags())
                .map_err(|_| raw::last_error(self.ctx()))?;
        }
        let tree = Arc::new(tree);
        self.bookkeeping.prepared(&tree, phase.book);
        Ok(tree)
    }

    /// NSO's `re-deploy` of the service instance at `path` (a data path): its callbacks run
    /// again, as for a change of the instance. With `dry_run` nothing is committed and the
    /// change it would make is returned (libyang's diff, as XML).
    pub fn redeploy(&self, path: &str, dry_run: bool) -> Result<Option<String>, DatastoreError> {
        let _txn = self.txn();
        let (old, new) = self.run_forced(path, Forced::Redeploy(path))?;
        if !dry_run {
            self.check_validation_points(&new)?;
            self.commit_running(new, 0)?;
            return Ok(None);
        }
        raw::clear_errors(self.ctx());
        let diff = old
            .diff(&new, DataDiffFlags::empty())
            .map_err(|_| raw::last_error(self.ctx()))?;
        Ok(Some(super::print(diff.tree(), WithDefaults::Explicit)?))
    }

    /// NSO's `un-deploy` of the service instance at `path`: what it wrote is taken back (its
    /// pre and post modification callbacks run as for a delete), the instance stays; changes of
    /// it run nothing until `re-deploy` deploys it again.
    pub fn undeploy(&self, path: &str) -> Result<(), DatastoreError> {
        let _txn = self.txn();
        let (_, new) = self.run_forced(path, Forced::Undeploy(path))?;
        self.check_validation_points(&new)?;
        self.commit_running(new, 0)
    }

    /// The services phase of an action on the instance at `path` (the caller holds the commit
    /// lock): running, and the tree the action makes of it.
    fn run_forced(
        &self,
        path: &str,
        forced: Forced<'_>,
    ) -> Result<(Arc<DataTree<'static>>, Arc<DataTree<'static>>), DatastoreError> {
        self.check_unlocked(DatastoreName::Running, 0)?;
        let old = self.running();
        if old.find_path(path).is_err() {
            return Err(DatastoreError::DataMissing {
                path: path.to_owned(),
            });
        }
        let new = self.run_services(&old, Arc::clone(&old), Some(forced))?;
        Ok((old, new))
    }

    /// NSO's `get-modifications` of the service instance at `path`: the configuration its
    /// last `cb_create` wrote, as XML (with the parents of each node, for context).
    pub fn service_modifications(&self, path: &str) -> Result<String, DatastoreError> {
        let running = self.running();
        if running.find_path(path).is_err() {
            return Err(DatastoreError::DataMissing {
                path: path.to_owned(),
            });
        }
        let book = self.bookkeeping.view(&running)?;
        let Some(record) = book.instance(path) else {
            return Ok(String::new());
        };
        raw::clear_errors(self.ctx());
        let mut out = DataTree::new(self.ctx());
        for claim in &record.claims {
            // Nodes that existed before (the way to what it wrote) are not its own.
            if claim.original == Original::Present {
                continue;
            }
            let Ok(node) = running.find_path(&claim.path) else {
                continue;
            };
            let copy = node
                .duplicate(true)
                .map_err(|_| raw::last_error(self.ctx()))?;
            out.merge(&copy).map_err(|_| raw::last_error(self.ctx()))?;
        }
        super::print(&out, WithDefaults::Explicit)
    }

    /// Adds the state data of every service instance to `tree` (`running` with state data,
    /// for `get`): `private/property-list`, the proplist its last `cb_create` returned.
    pub(super) fn add_service_state(
        &self,
        running: &Arc<DataTree<'static>>,
        tree: &mut DataTree<'static>,
    ) -> Result<(), DatastoreError> {
        let book = self.bookkeeping.view(running)?;
        for (instance, record) in book.instances() {
            for (name, value) in &record.proplist {
                // A name with both kinds of quotes cannot be written in a predicate.
                let Some(name) = xpath_literal(name) else {
                    continue;
                };
                let path = format!("{instance}/private/property-list/property[name={name}]/value");
                raw::clear_errors(self.ctx());
                // State data must not make `get` fail: a property that does not fit is left
                // out.
                if tree.new_path(&path, Some(value), false).is_err() {
                    tracing::warn!(
                        instance = %instance,
                        error = %raw::last_error(self.ctx()),
                        "cannot show a service's property"
                    );
                }
            }
        }
        Ok(())
    }
}
