//! The services' bookkeeping (FASTMAP, see [`services`](super::services)): for each service
//! instance, the nodes its last `cb_create` wrote (each with what it was before the first
//! service wrote it) and its property list.
//!
//! It is stored in the running tree, in the hidden `pyvmd-services` module, one list entry per
//! instance: `instance[id]` holds the instance's data path and its record as JSON. The key is a
//! hash of the path, because a data path with both kinds of quotes cannot be a key value in a
//! path expression. So the bookkeeping is persisted, rolled back and copied with the data it
//! describes, and a commit reads and rewrites only the records of the instances it touches.
//!
//! Who owns a node (NSO's backpointers, the reference count) follows from all the records;
//! that index lives in memory, built once from a tree and carried from commit to commit: each
//! services phase works on a [`Bookkeeping`] view (the index plus its own changes), which
//! becomes the new index when its tree is committed.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use yang5::data::{Data, DataTree};

use super::callbacks::Proplist;
use super::{DatastoreError, raw};

/// The module of the bookkeeping. Client output leaves its data out.
pub const MODULE: &str = "pyvmd-services";
const TOP: &str = "/pyvmd-services:service-bookkeeping";
const ENTRIES: &str = "/pyvmd-services:service-bookkeeping/instance";

/// What a node was before the first service wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Original {
    /// It did not exist: it goes when the last writer lets go.
    Absent,
    /// A leaf with this value: the value comes back.
    Leaf(String),
    /// A list entry, presence container or leaf-list entry that existed: it stays.
    Present,
    /// A subtree that a service deleted (XML, with its parents): it comes back.
    Subtree(String),
}

/// A node an instance wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// Its data path.
    pub path: String,
    /// What it was before the first service wrote it (the same in every owner's claim).
    pub original: Original,
}

/// What is kept of one service instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// Its servicepoint.
    pub point: String,
    /// Its keypath, NSO's form.
    pub keypath: String,
    /// The nodes its last `cb_create` wrote, in the order it wrote them (parents first).
    #[serde(default)]
    pub claims: Vec<Claim>,
    /// What its last `cb_create` returned.
    #[serde(default)]
    pub proplist: Proplist,
    /// Un-deployed: what it wrote was taken back, and it runs no callbacks until re-deployed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub undeployed: bool,
}

/// Who wrote a node, and what it was before.
#[derive(Debug, Clone)]
pub struct NodeEntry {
    /// The instances (data paths) that wrote it.
    pub owners: BTreeSet<String>,
    /// What it was before the first of them did.
    pub original: Original,
}

/// All the records, and the nodes they own.
#[derive(Debug, Default, Clone)]
struct Index {
    instances: HashMap<String, InstanceRecord>,
    nodes: HashMap<String, NodeEntry>,
}

impl Index {
    /// Reads every record of `tree`.
    fn build(tree: &DataTree<'static>) -> Result<Index, DatastoreError> {
        let mut index = Index::default();
        let Ok(entries) = super::find_xpath(tree, ENTRIES) else {
            return Ok(index);
        };
        for entry in entries {
            let leaf = |name: &str| {
                entry
                    .children()
                    .find(|c| c.schema().name() == name)
                    .and_then(|c| c.value_canonical())
            };
            let (Some(path), Some(record)) = (leaf("path"), leaf("record")) else {
                continue;
            };
            let record: InstanceRecord = serde_json::from_str(&record).map_err(|e| {
                DatastoreError::Internal(format!(
                    "the service record of {path} does not parse: {e}"
                ))
            })?;
            index.add(&path, record);
        }
        Ok(index)
    }

    fn add(&mut self, path: &str, record: InstanceRecord) {
        for claim in &record.claims {
            self.nodes
                .entry(claim.path.clone())
                .or_insert_with(|| NodeEntry {
                    owners: BTreeSet::new(),
                    original: claim.original.clone(),
                })
                .owners
                .insert(path.to_owned());
        }
        self.instances.insert(path.to_owned(), record);
    }
}

/// One services phase's view of the bookkeeping: the index it started from, plus its changes.
pub struct Bookkeeping {
    base: Arc<Index>,
    /// Changed records (`None`: removed).
    instances: HashMap<String, Option<InstanceRecord>>,
    /// Changed node entries (`None`: nobody owns the node any more).
    nodes: HashMap<String, Option<NodeEntry>>,
}

impl Bookkeeping {
    /// The record of the instance at `path`.
    pub fn instance(&self, path: &str) -> Option<&InstanceRecord> {
        match self.instances.get(path) {
            Some(changed) => changed.as_ref(),
            None => self.base.instances.get(path),
        }
    }

    /// Every record.
    pub fn instances(&self) -> impl Iterator<Item = (&String, &InstanceRecord)> {
        let changed = self
            .instances
            .iter()
            .filter_map(|(path, record)| record.as_ref().map(|r| (path, r)));
        let unchanged = self
            .base
            .instances
            .iter()
            .filter(|(path, _)| !self.instances.contains_key(*path));
        changed.chain(unchanged)
    }

    /// Sets (or with `None` removes) the record of the instance at `path`.
    pub fn set_instance(&mut self, path: &str, record: Option<InstanceRecord>) {
        self.instances.insert(path.to_owned(), record);
    }

    /// Who wrote the node at `path`, and what it was.
    pub fn node(&self, path: &str) -> Option<&NodeEntry> {
        match self.nodes.get(path) {
            Some(changed) => changed.as_ref(),
            None => self.base.nodes.get(path),
        }
    }

    /// Sets (or with `None` forgets) the entry of the node at `path`.
    pub fn set_node(&mut self, path: &str, entry: Option<NodeEntry>) {
        self.nodes.insert(path.to_owned(), entry);
    }

    /// Writes the changed records into `tree`.
    pub fn write(&self, tree: &mut DataTree<'static>) -> Result<(), DatastoreError> {
        let ctx = tree.context();
        for (path, record) in &self.instances {
            let entry = format!("{ENTRIES}[id='{}']", entry_id(path));
            raw::clear_errors(ctx);
            match record {
                Some(record) => {
                    let json = serde_json::to_string(record).map_err(|e| {
                        DatastoreError::Internal(format!("cannot write a service record: {e}"))
                    })?;
                    tree.new_path(&format!("{entry}/path"), Some(path), false)
                        .map_err(|_| raw::last_error(ctx))?;
                    tree.new_path(&format!("{entry}/record"), Some(&json), false)
                        .map_err(|_| raw::last_error(ctx))?;
                }
                None => {
                    if tree.find_path(&entry).is_ok() {
                        tree.remove(&entry).map_err(|_| raw::last_error(ctx))?;
                    }
                }
            }
        }
        let empty = super::find_xpath(tree, ENTRIES)
            .map(|set| set.is_empty())
            .unwrap_or(true);
        if empty && tree.find_path(TOP).is_ok() {
            tree.remove(TOP).map_err(|_| raw::last_error(ctx))?;
        }
        Ok(())
    }

    /// The index after this phase's changes.
    fn into_index(self) -> Index {
        let mut index = Arc::unwrap_or_clone(self.base);
        for (path, record) in self.instances {
            match record {
                Some(record) => index.instances.insert(path, record),
                None => index.instances.remove(&path),
            };
        }
        for (path, entry) in self.nodes {
            match entry {
                Some(entry) => index.nodes.insert(path, entry),
                None => index.nodes.remove(&path),
            };
        }
        index
    }
}

/// The key of an instance's entry: the first 128 bits of the SHA-256 of its data path.
fn entry_id(path: &str) -> String {
    Sha256::digest(path.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True if `a` and `b` hold the same bookkeeping.
pub fn same(a: &DataTree<'static>, b: &DataTree<'static>) -> bool {
    match (a.find_path(TOP), b.find_path(TOP)) {
        (Err(_), Err(_)) => true,
        (Ok(a), Ok(b)) => super::services::same_data(&a, &b),
        _ => false,
    }
}

/// Gives `to` the bookkeeping of `from`, replacing its own.
pub fn copy(from: &DataTree<'static>, to: &mut DataTree<'static>) -> Result<(), DatastoreError> {
    let ctx = to.context();
    raw::clear_errors(ctx);
    if to.find_path(TOP).is_ok() {
        to.remove(TOP).map_err(|_| raw::last_error(ctx))?;
    }
    if let Ok(top) = from.find_path(TOP) {
        let copy = top.duplicate(false).map_err(|_| raw::last_error(ctx))?;
        to.merge(&copy).map_err(|_| raw::last_error(ctx))?;
    }
    Ok(())
}

/// The index of the running tree, kept between commits (see the module documentation).
#[derive(Default)]
pub struct IndexCache {
    state: Mutex<CacheState>,
}

/// A tree and the index of its bookkeeping. The tree is held (not just its address), so that
/// a new tree that happens to reuse a freed one's memory is never mistaken for it.
type Indexed = (Arc<DataTree<'static>>, Arc<Index>);

#[derive(Default)]
struct CacheState {
    /// The index of running.
    current: Option<Indexed>,
    /// The index of a tree a commit prepared, waiting for it to be committed.
    pending: Option<Indexed>,
}

impl IndexCache {
    fn state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A view of the bookkeeping of `tree` (running), from the cache when it holds this
    /// tree's index, else built now.
    pub fn view(&self, tree: &Arc<DataTree<'static>>) -> Result<Bookkeeping, DatastoreError> {
        let cached = match &self.state().current {
            Some((at, index)) if Arc::ptr_eq(at, tree) => Some(Arc::clone(index)),
            _ => None,
        };
        let base = match cached {
            Some(index) => index,
            None => {
                let index = Arc::new(Index::build(tree)?);
                self.state().current = Some((Arc::clone(tree), Arc::clone(&index)));
                index
            }
        };
        Ok(Bookkeeping {
            base,
            instances: HashMap::new(),
            nodes: HashMap::new(),
        })
    }

    /// A services phase turned running's bookkeeping into `book` for `tree`, which is about
    /// to be committed.
    pub fn prepared(&self, tree: &Arc<DataTree<'static>>, book: Bookkeeping) {
        // Running's index is given up first, so that the phase's view owns it and updates it
        // in place instead of copying it.
        self.state().current = None;
        let index = Arc::new(book.into_index());
        self.state().pending = Some((Arc::clone(tree), index));
    }

    /// `new` will be committed with the same bookkeeping as `old` (running).
    pub fn carried(&self, old: &Arc<DataTree<'static>>, new: &Arc<DataTree<'static>>) {
        let mut state = self.state();
        let index = match &state.current {
            Some((at, index)) if Arc::ptr_eq(at, old) => Arc::clone(index),
            _ => return,
        };
        state.pending = Some((Arc::clone(new), index));
    }

    /// `tree` is the new running: the prepared index becomes current if it is this tree's.
    /// Any other tree (a rollback, say) is indexed when first needed.
    pub fn committed(&self, tree: &Arc<DataTree<'static>>) {
        let mut state = self.state();
        state.current = match state.pending.take() {
            Some((at, index)) if Arc::ptr_eq(&at, tree) => Some((at, index)),
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(claims: &[&str]) -> InstanceRecord {
        InstanceRecord {
            point: "p".into(),
            keypath: "/kp".into(),
            claims: claims
                .iter()
                .map(|path| Claim {
                    path: (*path).into(),
                    original: Original::Absent,
                })
                .collect(),
            proplist: vec![("runs".into(), "1".into())],
            undeployed: false,
        }
    }

    #[test]
    fn records_round_trip_through_the_tree_and_the_cache_follows_commits() {
        let ctx = crate::yang::test_context();
        let cache = IndexCache::default();
        let empty = Arc::new(DataTree::new(ctx));
        let mut book = cache.view(&empty).unwrap();
        // Both kinds of quotes: not a usable key value, but fine in the record.
        let odd = "/a:x[k=\"it's\"]";
        book.set_instance(odd, Some(record(&["/n:one", "/n:two"])));
        book.set_instance("/a:y", Some(record(&["/n:two"])));
        for (node, owners) in [("/n:one", vec![odd]), ("/n:two", vec![odd, "/a:y"])] {
            let owners = owners.into_iter().map(String::from).collect();
            let original = Original::Absent;
            book.set_node(node, Some(NodeEntry { owners, original }));
        }
        let mut tree = DataTree::new(ctx);
        book.write(&mut tree).unwrap();
        let tree = Arc::new(tree);
        cache.prepared(&tree, book);
        cache.committed(&tree);

        // From the cache, and built anew from the tree: the same view.
        for view in [cache.view(&tree).unwrap(), {
            let fresh = IndexCache::default();
            fresh.view(&tree).unwrap()
        }] {
            assert_eq!(view.instance(odd), Some(&record(&["/n:one", "/n:two"])));
            let two = view.node("/n:two").unwrap();
            assert_eq!(two.owners.len(), 2);
            assert_eq!(view.instances().count(), 2);
        }

        // Removing the last record removes the container.
        let mut book = cache.view(&tree).unwrap();
        book.set_instance(odd, None);
        book.set_instance("/a:y", None);
        let mut copy = tree.duplicate().unwrap();
        book.write(&mut copy).unwrap();
        assert!(copy.find_path(TOP).is_err());
        assert!(!same(&tree, &copy));
        assert!(same(&copy, &Arc::new(DataTree::new(ctx))));
    }

    #[test]
    fn entry_ids_are_stable() {
        assert_eq!(entry_id("/a:x"), entry_id("/a:x"));
        assert_ne!(entry_id("/a:x"), entry_id("/a:y"));
        assert_eq!(entry_id("/a:x").len(), 32);
    }
}
