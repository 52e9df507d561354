//! The configuration datastores, held as libyang data trees.
//!
//! The running configuration is an immutable snapshot behind an `Arc`: readers clone the `Arc`
//! and print at leisure, so a reader never sees half a commit; writers are serialised by a
//! commit lock, work on a copy, validate it, write it to disk, and only then swap the snapshot.
//! All of this is CPU-bound libyang work, so callers run it on blocking threads.
//!
//! Beside running live the shared candidate and startup (`store`), the global locks (`locks`),
//! the pending confirmed commit (`confirm`), the NMDA views (`nmda`) and the filters (`filter`,
//! `xpath`). Every change of running, whatever operation causes it, goes through
//! `commit_running`, which persists, swaps the snapshot and tells subscribers.

mod bookkeeping;
mod callbacks;
pub mod changes;
mod confirm;
mod edit;
mod error;
mod filter;
pub mod keypath;
mod locks;
pub mod nacm;
mod nmda;
mod notification;
mod operational;
mod persist;
mod raw;
mod schema;
mod services;
mod store;
mod transaction;
pub mod users;
mod validation;
mod xpath;

pub use callbacks::{
    CallbackKind, CommitCallbacks, Proplist, ServiceCall, ServiceOperation, ServicePhase,
    ValidationCall,
};
pub use confirm::{
    CommitRequest, ConfirmRequest, ConfirmTimer, DEFAULT_CONFIRM_TIMEOUT, SessionCleanup,
};
pub use edit::EditOperation;
pub use error::{DatastoreError, ValidationIssue, ValidationKind};
pub use filter::{Filter, FilterNode};
pub use locks::{LockInfo, SessionId};
pub use nacm::Access;
pub use nmda::{DataOptions, NmdaDatastore, OriginFilter};
pub use persist::{remove_stale_temp, sync_dir, write_atomically};
pub use raw::{clear_errors, find_xpath, last_error};
pub use store::{DatastoreName, Source};
pub use transaction::{ElemValue, Transaction};
pub use xpath::XPathFilter;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use yang5::context::Context;
use yang5::data::{Data, DataFormat, DataParserFlags, DataTree, DataValidationFlags};
use yang5::ffi;

/// How default values are reported (RFC 6243).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WithDefaults {
    /// Only what was set explicitly (our basic mode).
    #[default]
    Explicit,
    /// Everything, defaults included.
    ReportAll,
    /// Everything, defaults marked with `wd:default="true"`.
    ReportAllTagged,
    /// Nothing whose value equals its default.
    Trim,
}

impl WithDefaults {
    /// Parses the value of a `with-defaults` parameter.
    pub fn parse(value: &str) -> Option<WithDefaults> {
        Some(match value {
            "explicit" => WithDefaults::Explicit,
            "report-all" => WithDefaults::ReportAll,
            "report-all-tagged" => WithDefaults::ReportAllTagged,
            "trim" => WithDefaults::Trim,
            _ => return None,
        })
    }

    fn print_flags(self) -> u32 {
        match self {
            WithDefaults::Explicit => ffi::LYD_PRINT_WD_EXPLICIT,
            WithDefaults::ReportAll => ffi::LYD_PRINT_WD_ALL,
            WithDefaults::ReportAllTagged => ffi::LYD_PRINT_WD_ALL_TAG,
            WithDefaults::Trim => ffi::LYD_PRINT_WD_TRIM,
        }
    }
}

/// The `test-option` of an edit (RFC 6241 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TestOption {
    /// Validate, then apply if valid.
    #[default]
    TestThenSet,
    /// Apply. The result is validated all the same: an invalid running datastore is never
    /// committed, so this behaves like `test-then-set`.
    Set,
    /// Validate only.
    TestOnly,
}

/// One `edit-config` request, as the datastore needs it.
#[derive(Debug, Clone)]
pub struct EditRequest {
    /// The content of `<config>`: XML data with `nc:operation` attributes.
    pub config: String,
    /// `default-operation`.
    pub default_operation: EditOperation,
    /// `test-option`.
    pub test_option: TestOption,
    /// What the user may change ([`Access::unrestricted`] for the server itself).
    pub access: Access,
}

/// The running datastore: validated, persisted, shared.
pub struct Datastore {
    /// The schema; replaced (under the commit lock) when a package reload changes the YANG.
    ctx: RwLock<&'static Context>,
    /// The running snapshot. A watch channel, so that the runtime can follow commits: every
    /// committed configuration is published to subscribers after it is on disk.
    running: watch::Sender<Arc<DataTree<'static>>>,
    /// Serialises transactions: one commit at a time. Holds the state that only a
    /// transaction changes (candidate bookkeeping, the pending confirmed commit).
    commit: Mutex<store::Txn>,
    file: PathBuf,
    /// The candidate's own tree; `None` while it equals running.
    candidate: RwLock<Option<Arc<DataTree<'static>>>>,
    /// The startup configuration; `None` when it does not exist.
    startup: RwLock<Option<Arc<DataTree<'static>>>>,
    startup_file: PathBuf,
    /// The running configuration from before a pending confirmed commit, kept on disk while the
    /// commit is unconfirmed.
    rollback_file: PathBuf,
    /// Global locks; changed only under `commit`.
    locks: Mutex<locks::LockTable>,
    /// The servicepoints and validation points of the schema (replaced with it).
    services: RwLock<Arc<services::Services>>,
    validation: RwLock<Arc<validation::ValidationPoints>>,
    /// State data written by package code.
    operational: operational::OperationalStore,
    /// The index of the services' bookkeeping in running.
    bookkeeping: bookkeeping::IndexCache,
    /// The runtime that runs their callbacks in every commit; set once it runs.
    callbacks: std::sync::OnceLock<Arc<dyn CommitCallbacks>>,
    /// Told of every committed change (the event streams).
    listener: std::sync::OnceLock<Arc<dyn changes::ChangeListener>>,
    /// The user access control never checks (RFC 8341's recovery session).
    recovery_user: std::sync::OnceLock<String>,
    /// What users under access control may read of recent snapshots (see
    /// [`Datastore::readable_view`]).
    readable_views: Mutex<Vec<ReadableView>>,
}

/// How many pruned snapshots are kept: a few users reading a datastore that does not change.
const READABLE_VIEWS: usize = 8;

/// What one user's rules leave readable of one snapshot.
struct ReadableView {
    source: Arc<DataTree<'static>>,
    access: Access,
    /// The pruned copy, or `source` itself when nothing is hidden.
    view: Arc<DataTree<'static>>,
}

/// The parse flags for configuration data from clients and from disk: unknown elements and
/// state data are errors.
fn config_parse_flags() -> DataParserFlags {
    DataParserFlags::STRICT | DataParserFlags::NO_STATE
}

fn config_validation_flags() -> DataValidationFlags {
    DataValidationFlags::from_bits_retain(
        ffi::LYD_VALIDATE_NO_STATE | ffi::LYD_VALIDATE_MULTI_ERROR,
    )
}

impl Datastore {
    /// Opens the datastores kept in `state_dir`. Running continues from `running.xml`, the
    /// last committed configuration, so that nothing acknowledged is ever lost by a restart or a
    /// crash — unless a confirmed commit was still unconfirmed when the server stopped: then
    /// running is what it was before that commit (`confirmed-rollback.xml`), as if the commit had
    /// timed out. Only when there is no running configuration yet (a fresh or reset state
    /// directory) does the server boot from startup (`startup.xml`), as a device does (RFC 6241
    /// §8.7).
    pub fn open(ctx: &'static Context, state_dir: &Path) -> Result<Datastore, DatastoreError> {
        std::fs::create_dir_all(state_dir)?;
        let file = state_dir.join("running.xml");
        let startup_file = state_dir.join("startup.xml");
        let rollback_file = state_dir.join("confirmed-rollback.xml");
        let startup = load_config_file(ctx, &startup_file)?;
        let rollback = load_config_file(ctx, &rollback_file)?;
        let running = match rollback {
            Some(rollback) => Some(rollback),
            None => load_config_file(ctx, &file)?,
        };
        let tree = match (running, startup.as_ref()) {
            (Some(tree), _) => tree,
            (None, Some(startup)) => startup.duplicate().map_err(|_| raw::last_error(ctx))?,
            (None, None) => DataTree::new(ctx),
        };
        // running.xml must tell the story the boot chose, or a crash before the next commit
        // would bring back what a rollback or the boot from startup replaced.
        persist::write_atomically(&file, print_stored(&tree)?.as_bytes())?;
        // Settled by now: running.xml holds what the boot chose.
        if let Err(e) = std::fs::remove_file(&rollback_file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(e.into());
        }
        Ok(Datastore {
            ctx: RwLock::new(ctx),
            running: watch::Sender::new(Arc::new(tree)),
            commit: Mutex::new(store::Txn::default()),
            file,
            candidate: RwLock::new(None),
            startup: RwLock::new(startup.map(Arc::new)),
            startup_file,
            rollback_file,
            locks: Mutex::new(locks::LockTable::default()),
            operational: operational::OperationalStore::open(ctx, state_dir)?,
            services: RwLock::new(Arc::new(services::Services::new(ctx))),
            validation: RwLock::new(Arc::new(validation::ValidationPoints::new(ctx))),
            bookkeeping: bookkeeping::IndexCache::default(),
            callbacks: std::sync::OnceLock::new(),
            listener: std::sync::OnceLock::new(),
            recovery_user: std::sync::OnceLock::new(),
            readable_views: Mutex::new(Vec::new()),
        })
    }

    /// The schema context.
    pub fn context(&self) -> &'static Context {
        self.ctx()
    }

    fn ctx(&self) -> &'static Context {
        *self.ctx.read().unwrap_or_else(|p| p.into_inner())
    }

    /// A consistent snapshot of the running configuration.
    pub fn running(&self) -> Arc<DataTree<'static>> {
        self.running.borrow().clone()
    }

    /// Follows running: the receiver sees every committed configuration.
    pub fn subscribe(&self) -> watch::Receiver<Arc<DataTree<'static>>> {
        self.running.subscribe()
    }

    /// Plugs in the runtime that runs package callbacks in commits; until then, a commit that
    /// needs one fails as if its point were not registered.
    pub fn set_commit_callbacks(&self, callbacks: Arc<dyn CommitCallbacks>) {
        let _ = self.callbacks.set(callbacks);
    }

    /// Makes `user` the recovery user, whom access control never checks: the server's
    /// bootstrap user, the way back in when the rules lock everyone out.
    pub fn set_recovery_user(&self, user: &str) {
        let _ = self.recovery_user.set(user.to_owned());
    }

    /// What `user`, a member of `external_groups` besides the `/nacm` groups, may do now by
    /// the rules of running: nothing is checked for the recovery user.
    pub fn access_for(&self, user: &str, external_groups: &[String]) -> Access {
        if self.recovery_user.get().is_some_and(|r| r == user) {
            return Access::unrestricted();
        }
        Access::for_user(&self.running(), user, external_groups)
    }

    /// What `access` leaves readable of the snapshot `source`. Pruning copies the snapshot,
    /// which costs about as much as printing it; the copies of recent snapshots are kept, so
    /// that a user who reads a datastore that has not changed since pays once.
    fn readable_view(
        &self,
        source: &Arc<DataTree<'static>>,
        access: &Access,
    ) -> Result<Arc<DataTree<'static>>, DatastoreError> {
        if access.is_unrestricted() {
            return Ok(Arc::clone(source));
        }
        let views = || {
            self.readable_views
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        };
        if let Some(view) = views()
            .iter()
            .find(|v| Arc::ptr_eq(&v.source, source) && &v.access == access)
        {
            return Ok(Arc::clone(&view.view));
        }
        // A snapshot that nobody else holds (the tree with state data that `<get-data>` builds
        // for one request) can never be asked for again: it is not kept, and one only the
        // cache still holds is dropped.
        let asked_again = Arc::strong_count(source) > 1;
        let view = match access.readable(source)? {
            Some(pruned) => Arc::new(pruned),
            None => Arc::clone(source),
        };
        if !asked_again {
            return Ok(view);
        }
        let mut views = views();
        views.retain(|v| Arc::strong_count(&v.source) > 1);
        if views.len() >= READABLE_VIEWS {
            views.remove(0);
        }
        views.push(ReadableView {
            source: Arc::clone(source),
            access: access.clone(),
            view: Arc::clone(&view),
        });
        Ok(view)
    }

    /// Plugs in what is told of every committed change, from then on.
    pub fn set_change_listener(&self, listener: Arc<dyn changes::ChangeListener>) {
        let _ = self.listener.set(listener);
    }

    /// Tells the listener what a change of `datastore` by `session` changed. Called with the
    /// commit lock held, after the change is on disk.
    fn report_change(
        &self,
        datastore: DatastoreName,
        session: locks::SessionId,
        old: Option<&DataTree<'static>>,
        new: Option<&DataTree<'static>>,
    ) {
        let Some(listener) = self.listener.get() else {
            return;
        };
        match changes::changed_nodes(old, new, self.ctx()) {
            Ok(edits) if edits.is_empty() => {}
            Ok(edits) => listener.config_changed(changes::ConfigChange {
                datastore,
                session,
                edits,
            }),
            Err(e) => tracing::warn!(error = %e, "cannot compute what a commit changed"),
        }
    }

    /// Tells the listener about a confirmed commit.
    fn report_confirmed(&self, event: changes::ConfirmedCommit) {
        if let Some(listener) = self.listener.get() {
            listener.confirmed_commit(event);
        }
    }

    /// What package code does in a commit of running, between the edit (validated, in `new`)
    /// and the commit: the services phase, then the validation points. Gives the tree to
    /// commit. The caller holds the commit lock.
    fn prepare_commit(
        &self,
        old: &Arc<DataTree<'static>>,
        new: Arc<DataTree<'static>>,
    ) -> Result<Arc<DataTree<'static>>, DatastoreError> {
        // First: nothing, not even a service callback, sees a password in clear.
        let new = users::hash_cleartext_passwords(new)?;
        let tree = self.run_services(old, new, None)?;
        self.check_validation_points(&tree)?;
        Ok(tree)
    }

    /// Makes a validated tree the running configuration: on disk first, then in memory, then
    /// announced to subscribers and the change listener. `session` made the change (0: the
    /// server). The caller holds the commit lock.
    fn commit_running(
        &self,
        tree: Arc<DataTree<'static>>,
        session: locks::SessionId,
    ) -> Result<(), DatastoreError> {
        persist::write_atomically(&self.file, print_stored(&tree)?.as_bytes())?;
        self.bookkeeping.committed(&tree);
        let old = self.running.send_replace(Arc::clone(&tree));
        self.report_change(DatastoreName::Running, session, Some(&old), Some(&tree));
        Ok(())
    }

    /// Applies an `edit-config` to running on behalf of the server itself (session 0, which
    /// holds no locks): see [`Datastore::edit`].
    pub fn edit_running(&self, request: &EditRequest) -> Result<(), DatastoreError> {
        self.edit(DatastoreName::Running, 0, request)
    }

    /// Validates a complete configuration given as XML (the inline `<config>` of `validate`).
    pub fn validate_config(&self, config: &str) -> Result<(), DatastoreError> {
        raw::refuse_nul(config)?;
        raw::clear_errors(self.ctx());
        let tree = DataTree::parse_string(
            self.ctx(),
            config,
            DataFormat::XML,
            config_parse_flags(),
            config_validation_flags(),
        )
        .map_err(|_| raw::last_error(self.ctx()))?;
        self.check_validation_points(&Arc::new(tree))
    }

    /// Prints running, or what `filter` selects of it, as XML (the server's own reads).
    pub fn get_config(
        &self,
        filter: Option<&Filter>,
        defaults: WithDefaults,
    ) -> Result<String, DatastoreError> {
        let running = self.running();
        select_and_print(
            running.context(),
            &running,
            filter,
            defaults,
            &Access::unrestricted(),
        )
    }

    /// Prints running together with operational data (`get`). `operational` holds XML
    /// documents of config-false data produced by the server itself (VM status, packages).
    /// What `access` does not allow to read is left out.
    pub fn get(
        &self,
        filter: Option<&Filter>,
        defaults: WithDefaults,
        operational: &[String],
        access: &Access,
    ) -> Result<String, DatastoreError> {
        let tree = self.with_state(&self.running(), operational)?;
        select_and_print(tree.context(), &tree, filter, defaults, access)
    }

    /// A copy of `config` with the operational data documents merged in.
    fn with_state(
        &self,
        config: &Arc<DataTree<'static>>,
        operational: &[String],
    ) -> Result<DataTree<'static>, DatastoreError> {
        raw::clear_errors(self.ctx());
        let mut tree = config
            .duplicate()
            .map_err(|_| raw::last_error(self.ctx()))?;
        for xml in operational {
            let state = DataTree::parse_string(
                self.ctx(),
                xml,
                DataFormat::XML,
                DataParserFlags::STRICT | DataParserFlags::NO_VALIDATION,
                DataValidationFlags::empty(),
            )
            .map_err(|e| {
                DatastoreError::Internal(format!("operational data does not parse: {e}"))
            })?;
            tree.merge(&state).map_err(|e| {
                DatastoreError::Internal(format!("cannot merge operational data: {e}"))
            })?;
        }
        self.add_package_state(&mut tree)?;
        self.add_service_state(config, &mut tree)?;
        Ok(tree)
    }

    /// Parses the content of `<config>` without validating it. When the strict parse fails, a
    /// lenient one keeps unparsable values as opaque nodes (see [`edit::Editor`]) and the strict
    /// errors are returned beside it.
    fn parse_edit(
        &self,
        config: &str,
    ) -> Result<(DataTree<'static>, Option<DatastoreError>), DatastoreError> {
        if config.trim().is_empty() {
            return Ok((DataTree::new(self.ctx()), None));
        }
        raw::refuse_nul(config)?;
        let flags = config_parse_flags() | DataParserFlags::NO_VALIDATION;
        let parse = |flags| {
            DataTree::parse_string(
                self.ctx(),
                config,
                DataFormat::XML,
                flags,
                DataValidationFlags::empty(),
            )
        };
        match parse(DataParserFlags::from_bits_retain(flags.bits())) {
            Ok(tree) => Ok((tree, None)),
            Err(_) => {
                let strict = raw::last_error(self.ctx());
                raw::clear_errors(self.ctx());
                let lenient = DataParserFlags::from_bits_retain(flags.bits() | ffi::LYD_PARSE_OPAQ);
                match parse(lenient) {
                    Ok(tree) => Ok((tree, Some(strict))),
                    Err(_) => Err(strict),
                }
            }
        }
    }
}

/// Prints what `filter` selects of `tree` (all of it without a filter), of what `access`
/// allows to read. What may not be read goes first, so that a filter cannot test it.
fn select_and_print(
    ctx: &'static Context,
    tree: &DataTree<'static>,
    filter: Option<&Filter>,
    defaults: WithDefaults,
    access: &Access,
) -> Result<String, DatastoreError> {
    let readable = access.readable(tree)?;
    let tree = readable.as_ref().unwrap_or(tree);
    match select(ctx, tree, filter)? {
        None => print(tree, defaults),
        Some(selected) => print(&selected, defaults),
    }
}

/// What `filter` selects of `tree`, as a new tree; `None` (no copy) without a filter.
pub fn select(
    ctx: &'static Context,
    tree: &DataTree<'static>,
    filter: Option<&Filter>,
) -> Result<Option<DataTree<'static>>, DatastoreError> {
    raw::clear_errors(ctx);
    // SAFETY: `tree` is a live tree of `ctx`, borrowed for the whole selection.
    match filter {
        None => Ok(None),
        Some(Filter::Subtree(nodes)) => unsafe { filter::select(ctx, tree.raw(), nodes) }.map(Some),
        Some(Filter::XPath(xpath)) => unsafe { xpath::select(ctx, tree.raw(), xpath) }.map(Some),
    }
}

/// Reads and validates a configuration file; `None` if it does not exist. A temporary file
/// left by a crash during a write is removed first (the file itself is intact).
fn load_config_file(
    ctx: &'static Context,
    file: &Path,
) -> Result<Option<DataTree<'static>>, DatastoreError> {
    persist::remove_stale_temp(file);
    raw::clear_errors(ctx);
    let mut tree = match std::fs::read(file) {
        Ok(bytes) => DataTree::parse_string(
            ctx,
            bytes,
            DataFormat::XML,
            config_parse_flags() | DataParserFlags::NO_VALIDATION,
            DataValidationFlags::empty(),
        )
        .map_err(|_| raw::last_error(ctx))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    tree.validate(config_validation_flags())
        .map_err(|_| raw::last_error(ctx))?;
    Ok(Some(tree))
}

/// Prints a tree for clients: all top-level nodes as compact XML, but for the server's own
/// bookkeeping (see [`services`]).
fn print(tree: &DataTree<'_>, defaults: WithDefaults) -> Result<String, DatastoreError> {
    print_with(tree, defaults, 0)
}

/// [`print`] with extra libyang print flags (e.g. `LYD_PRINT_EMPTY_CONT`).
fn print_with(
    tree: &DataTree<'_>,
    defaults: WithDefaults,
    extra: u32,
) -> Result<String, DatastoreError> {
    let flags = ffi::LYD_PRINT_SHRINK | defaults.print_flags() | extra;
    let tops: Vec<_> = tree
        .reference()
        .map(|first| first.inclusive_siblings().collect())
        .unwrap_or_default();
    let hidden =
        |n: &yang5::data::DataNodeRef<'_>| n.schema().module().name() == bookkeeping::MODULE;
    if !tops.iter().any(hidden) {
        return print_raw(tree.context(), tree.raw(), flags | ffi::LYD_PRINT_SIBLINGS);
    }
    let mut out = String::new();
    for top in tops.iter().filter(|n| !hidden(n)) {
        out.push_str(&print_raw(tree.context(), top.as_raw(), flags)?);
    }
    Ok(out)
}

/// Prints a tree as it is stored on disk: everything set explicitly, bookkeeping included.
fn print_stored(tree: &DataTree<'_>) -> Result<String, DatastoreError> {
    let flags = ffi::LYD_PRINT_SIBLINGS | ffi::LYD_PRINT_SHRINK | ffi::LYD_PRINT_WD_EXPLICIT;
    print_raw(tree.context(), tree.raw(), flags)
}

/// Prints `node` (with its siblings if `flags` says so) as XML.
fn print_raw(
    ctx: &Context,
    node: *mut ffi::lyd_node,
    flags: u32,
) -> Result<String, DatastoreError> {
    if node.is_null() {
        return Ok(String::new());
    }
    let mut out = std::ptr::null_mut();
    // SAFETY: `node` is a live node of a tree of `ctx`; libyang allocates `out`, freed below.
    let r = unsafe { ffi::lyd_print_mem(&mut out, node, ffi::LYD_FORMAT::LYD_XML, flags) };
    if r != ffi::LY_ERR::LY_SUCCESS {
        return Err(raw::last_error(ctx));
    }
    if out.is_null() {
        // Nothing to print, e.g. only defaults in explicit mode.
        return Ok(String::new());
    }
    let text = unsafe { std::ffi::CStr::from_ptr(out) }
        .to_string_lossy()
        .into_owned();
    unsafe { raw::free_c(out as *mut std::ffi::c_void) };
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NCS: &str = "http://tail-f.com/ns/ncs";
    const NC: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

    fn context() -> &'static Context {
        crate::yang::test_context()
    }

    fn edit(ds: &Datastore, config: &str) -> Result<(), DatastoreError> {
        ds.edit_running(&EditRequest {
            config: format!("<python-vm xmlns=\"{NCS}\" xmlns:nc=\"{NC}\">{config}</python-vm>"),
            default_operation: EditOperation::Merge,
            test_option: TestOption::TestThenSet,
            access: Access::unrestricted(),
        })
    }

    fn running(ds: &Datastore) -> String {
        ds.get_config(None, WithDefaults::Explicit).unwrap()
    }

    #[test]
    fn merge_twice_updates_the_leaf() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        for level in ["level-debug", "level-info", "level-error"] {
            edit(&ds, &format!("<logging><level>{level}</level></logging>")).unwrap();
            assert!(
                running(&ds).contains(&format!("<level>{level}</level>")),
                "{}",
                running(&ds)
            );
        }
    }

    #[test]
    fn create_delete_remove_and_their_errors() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        let entry = |op: &str| {
            format!(
                "<logging><vm-levels nc:operation=\"{op}\"><node-id>a</node-id><level>level-error</level></vm-levels></logging>"
            )
        };
        edit(&ds, &entry("create")).unwrap();
        assert!(matches!(
            edit(&ds, &entry("create")),
            Err(DatastoreError::DataExists { .. })
        ));
        edit(&ds, &entry("delete")).unwrap();
        assert!(matches!(
            edit(&ds, &entry("delete")),
            Err(DatastoreError::DataMissing { .. })
        ));
        edit(&ds, &entry("remove")).unwrap();
        assert!(!running(&ds).contains("vm-levels"));
        // A delete needs no valid value.
        edit(&ds, "<logging><level>level-debug</level></logging>").unwrap();
        edit(&ds, "<logging><level nc:operation=\"delete\"/></logging>").unwrap();
        assert!(!running(&ds).contains("<level>"));
        assert!(matches!(
            edit(&ds, "<logging><level nc:operation=\"delete\"/></logging>"),
            Err(DatastoreError::DataMissing { .. })
        ));
    }

    #[test]
    fn invalid_edits_change_nothing_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        edit(&ds, "<logging><level>level-warning</level></logging>").unwrap();
        let before = running(&ds);
        assert!(matches!(
            edit(&ds, "<logging><level>bogus</level></logging>"),
            Err(DatastoreError::Validation(_))
        ));
        assert!(matches!(
            edit(
                &ds,
                "<logging><vm-levels><node-id>x</node-id></vm-levels></logging>"
            ),
            Err(DatastoreError::Validation(_))
        ));
        assert_eq!(running(&ds), before);
        drop(ds);
        let ds = Datastore::open(context(), dir.path()).unwrap();
        assert_eq!(running(&ds), before);
    }

    #[test]
    fn replace_and_default_operation_none() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        edit(&ds, "<logging><level>level-debug</level><vm-levels><node-id>a</node-id><level>level-error</level></vm-levels></logging>").unwrap();
        edit(
            &ds,
            "<logging nc:operation=\"replace\"><level>level-warning</level></logging>",
        )
        .unwrap();
        assert!(!running(&ds).contains("vm-levels"));
        let none = |config: &str| {
            ds.edit_running(&EditRequest {
                config: format!(
                    "<python-vm xmlns=\"{NCS}\" xmlns:nc=\"{NC}\">{config}</python-vm>"
                ),
                default_operation: EditOperation::None,
                test_option: TestOption::TestThenSet,
                access: Access::unrestricted(),
            })
        };
        // Under none, data without an operation changes nothing.
        none("<logging><level>level-error</level></logging>").unwrap();
        assert!(running(&ds).contains("level-warning"));
        none("<logging><level nc:operation=\"merge\">level-error</level></logging>").unwrap();
        assert!(running(&ds).contains("level-error"));
        // A list entry the datastore lacks is data-missing under none, even with a merge below
        // it (RFC 6241 §7.2); the edit changes nothing.
        let before = running(&ds);
        let err = none(
            "<logging><vm-levels><node-id>zz</node-id>\
             <level nc:operation=\"merge\">level-debug</level></vm-levels></logging>",
        )
        .unwrap_err();
        assert!(matches!(err, DatastoreError::DataMissing { .. }), "{err:?}");
        assert_eq!(running(&ds), before);
    }

    #[test]
    fn subtree_filters_select_entries_with_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        edit(&ds, "<logging><vm-levels><node-id>a</node-id><level>level-error</level></vm-levels><vm-levels><node-id>b</node-id><level>level-info</level></vm-levels></logging>").unwrap();
        let node = |name: &str, content: Option<&str>, children: Vec<FilterNode>| FilterNode {
            ns: None,
            name: name.into(),
            content: content.map(String::from),
            children,
            attributes: Vec::new(),
        };
        let by_key = vec![node(
            "python-vm",
            None,
            vec![node(
                "logging",
                None,
                vec![node(
                    "vm-levels",
                    None,
                    vec![node("node-id", Some("b"), vec![])],
                )],
            )],
        )];
        let out = ds
            .get_config(
                Some(&Filter::Subtree(by_key.clone())),
                WithDefaults::Explicit,
            )
            .unwrap();
        assert!(
            out.contains("<node-id>b</node-id><level>level-info</level>"),
            "{out}"
        );
        assert!(!out.contains("<node-id>a</node-id>"), "{out}");
        let levels_only = vec![node(
            "python-vm",
            None,
            vec![node(
                "logging",
                None,
                vec![node("vm-levels", None, vec![node("level", None, vec![])])],
            )],
        )];
        let out = ds
            .get_config(
                Some(&Filter::Subtree(levels_only.clone())),
                WithDefaults::Explicit,
            )
            .unwrap();
        assert!(
            out.contains("<node-id>a</node-id><level>level-error</level>"),
            "{out}"
        );
        let nothing = vec![node("python-vm", None, vec![node("nope", None, vec![])])];
        assert_eq!(
            ds.get_config(
                Some(&Filter::Subtree(nothing.clone())),
                WithDefaults::Explicit
            )
            .unwrap(),
            ""
        );
    }
}
