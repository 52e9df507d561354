//! The NMDA view of the datastores (RFC 8342, RFC 8526 `get-data`): the conventional
//! configuration datastores, `intended`, and `operational`, read with `config-filter`,
//! `max-depth`, `origin-filter` and `with-origin`.
//!
//! pyvmd applies no templates and has no inactive configuration, so `intended` is running; and
//! `operational` is running with the server's state data merged in. In `operational`, every
//! configuration node comes from `intended` and every state node from the server itself, whose
//! origin RFC 8342 leaves `unknown`; that is what `with-origin` reports and `origin-filter`
//! selects on (an origin-filter of `or:intended` thus selects the configuration).

use std::ffi::CString;
use std::ptr;

use yang5::data::{Data, DataTree};
use yang5::ffi;
use yang5::utils::Binding;

use super::raw::{self, Node};
use super::{Datastore, DatastoreError, DatastoreName, Filter, WithDefaults};

/// A datastore that `get-data` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NmdaDatastore {
    /// running, candidate or startup.
    Conventional(DatastoreName),
    /// `ds:intended`: running, as pyvmd transforms nothing.
    Intended,
    /// `ds:operational`: running and state data.
    Operational,
}

impl NmdaDatastore {
    /// The datastore named by a `ds:` identity's local name.
    pub fn parse(identity: &str) -> Option<NmdaDatastore> {
        match identity {
            "intended" => Some(NmdaDatastore::Intended),
            "operational" => Some(NmdaDatastore::Operational),
            other => DatastoreName::parse(other).map(NmdaDatastore::Conventional),
        }
    }
}

/// `origin-filter` / `negated-origin-filter`: origin identities' local names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginFilter {
    /// The origins listed.
    pub origins: Vec<String>,
    /// True for `negated-origin-filter`.
    pub negated: bool,
}

impl OriginFilter {
    /// Whether nodes of `origin` pass the filter.
    fn passes(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == origin) != self.negated
    }
}

/// The `get-data` parameters besides the datastore and the filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataOptions {
    /// `config-filter`: only configuration (true) or only state (false).
    pub config_filter: Option<bool>,
    /// `max-depth`: levels returned, top-level nodes being level 1.
    pub max_depth: Option<u16>,
    /// `origin-filter` (operational only).
    pub origin_filter: Option<OriginFilter>,
    /// `with-origin` (operational only).
    pub with_origin: bool,
    /// `with-defaults`.
    pub defaults: WithDefaults,
    /// What the user may read.
    pub access: super::Access,
}

impl Datastore {
    /// `get-data`: prints what `filter` selects of `datastore`, shaped by `options`.
    /// `operational` holds the server's state data documents, merged into `operational`.
    pub fn read_data(
        &self,
        datastore: NmdaDatastore,
        filter: Option<&Filter>,
        options: &DataOptions,
        operational: &[String],
    ) -> Result<String, DatastoreError> {
        let is_operational = datastore == NmdaDatastore::Operational;
        if !is_operational && (options.with_origin || options.origin_filter.is_some()) {
            return Err(DatastoreError::NotSupported(
                "with-origin and origin-filter apply to the operational datastore only".into(),
            ));
        }
        let source = match datastore {
            NmdaDatastore::Conventional(ds) => self.snapshot(ds),
            NmdaDatastore::Intended => self.running(),
            NmdaDatastore::Operational => {
                std::sync::Arc::new(self.with_state(&self.running(), operational)?)
            }
        };
        // The snapshot's own schema: a reload may replace the datastore's meanwhile.
        let ctx = source.context();
        // What may not be read goes first, so that a filter cannot test it.
        let source = self.readable_view(&source, &options.access)?;
        let tree = match super::select(ctx, &source, filter)? {
            Some(selected) => selected,
            None => source.duplicate().map_err(|_| raw::last_error(ctx))?,
        };
        let keep_config = match (&options.config_filter, &options.origin_filter) {
            (Some(false), _) => false,
            (_, Some(f)) => f.passes("intended"),
            _ => true,
        };
        let keep_state = match (&options.config_filter, &options.origin_filter) {
            (Some(true), _) => false,
            (_, Some(f)) => f.passes("unknown"),
            _ => true,
        };
        let mut first = tree.into_raw();
        // SAFETY: `first` heads the tree we own (released from `tree` above, taken back below).
        unsafe {
            prune(&mut first, keep_config, keep_state);
            if let Some(depth) = options.max_depth {
                limit_depth(&mut first, depth);
            }
        }
        // SAFETY: as above.
        let tree = unsafe { DataTree::from_raw(ctx, first) };
        if options.with_origin {
            // SAFETY: the tree is ours and of `ctx`.
            unsafe { annotate_origin(ctx, tree.raw(), None)? };
        }
        // A container whose children lie below max-depth is still there: print it empty.
        let extra = if options.max_depth.is_some() {
            ffi::LYD_PRINT_EMPTY_CONT
        } else {
            0
        };
        super::print_with(&tree, options.defaults, extra)
    }
}

/// True for nodes of state data (config false).
unsafe fn is_state(node: Node) -> bool {
    unsafe {
        let schema = (*node).schema;
        !schema.is_null() && u32::from((*schema).flags) & ffi::LYS_CONFIG_R != 0
    }
}

/// Removes configuration nodes (unless `keep_config`) and state nodes (unless `keep_state`)
/// from the siblings headed by `*first`, keeping list keys and the ancestors of what stays.
/// Returns true if anything other than keys is left.
unsafe fn prune(first: &mut Node, keep_config: bool, keep_state: bool) -> bool {
    unsafe {
        if keep_config && keep_state {
            return !first.is_null();
        }
        let mut any = false;
        let mut node = *first;
        while !node.is_null() {
            let next = (*node).next;
            let keep = if raw::is_key(node) {
                true
            } else if is_state(node) {
                // State nodes have only state below them.
                any |= keep_state;
                keep_state
            } else {
                let inner = (ffi::LYS_CONTAINER | ffi::LYS_LIST) & raw::nodetype(node) != 0;
                let below = if inner {
                    let mut child = raw::child(node);
                    let kept = prune(&mut child, keep_config, keep_state);
                    kept || (keep_config && raw::child(node).is_null())
                } else {
                    keep_config
                };
                any |= below;
                below
            };
            if !keep {
                raw::free(first, node);
            }
            node = next;
        }
        any
    }
}

/// Frees every node deeper than `depth` (top-level nodes are at depth 1), except list keys,
/// which identify the entries that are returned.
unsafe fn limit_depth(first: &mut Node, depth: u16) {
    unsafe {
        let mut node = *first;
        while !node.is_null() {
            let next = (*node).next;
            if depth == 0 && !raw::is_key(node) {
                raw::free(first, node);
            } else {
                let mut child = raw::child(node);
                if !child.is_null() {
                    limit_depth(&mut child, depth.saturating_sub(1));
                }
            }
            node = next;
        }
    }
}

/// Adds `or:origin` to every node whose origin differs from its parent's (RFC 8342 §7.4: the
/// origin is inherited).
unsafe fn annotate_origin(
    ctx: &'static yang5::context::Context,
    first: Node,
    parent_origin: Option<&str>,
) -> Result<(), DatastoreError> {
    unsafe {
        let raw_ctx = crate::yang::raw_context(ctx);
        let name =
            CString::new("ietf-origin").map_err(|e| DatastoreError::Internal(e.to_string()))?;
        let module = ffi::ly_ctx_get_module_implemented(raw_ctx, name.as_ptr());
        if module.is_null() {
            return Err(DatastoreError::NotSupported(
                "ietf-origin is not loaded; with-origin is not available".into(),
            ));
        }
        let meta_name =
            CString::new("origin").map_err(|e| DatastoreError::Internal(e.to_string()))?;
        let mut node = first;
        while !node.is_null() {
            let origin = if is_state(node) {
                "unknown"
            } else {
                "intended"
            };
            if parent_origin != Some(origin) {
                let value = CString::new(format!("ietf-origin:{origin}"))
                    .map_err(|e| DatastoreError::Internal(e.to_string()))?;
                let r = ffi::lyd_new_meta(
                    raw_ctx,
                    node,
                    module,
                    meta_name.as_ptr(),
                    value.as_ptr(),
                    0,
                    ptr::null_mut(),
                );
                if r != ffi::LY_ERR::LY_SUCCESS {
                    return Err(raw::last_error(ctx));
                }
            }
            annotate_origin(ctx, raw::child(node), Some(origin))?;
            node = (*node).next;
        }
        Ok(())
    }
}
