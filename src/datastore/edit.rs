//! The `edit-config` semantics of RFC 6241 §7.2 applied to libyang data trees.
//!
//! The edit (the content of `<config>`) is parsed by libyang without validation, so its
//! `nc:operation` attributes arrive as metadata. It is then walked node by node against a copy
//! of the target datastore: each edit node finds its counterpart among the target's siblings
//! (libyang matches list entries by key and leaf-list entries by value), and the effective
//! operation, inherited from the parent unless the node carries its own, decides what happens.
//! The caller validates the result; nothing here touches the live datastore.

use std::ptr;

use yang5::context::Context;
use yang5::ffi;

use super::error::DatastoreError;
use super::raw::{self, Node};

/// An edit operation (the `operation` attribute, or `default-operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditOperation {
    /// Merge into what exists, creating what does not.
    Merge,
    /// Replace what exists (or create it).
    Replace,
    /// Create; an error if it exists.
    Create,
    /// Delete; an error if it does not exist.
    Delete,
    /// Delete if it exists.
    Remove,
    /// Only a path to nested operations (`default-operation none`): the path must exist.
    None,
}

impl EditOperation {
    /// Parses the value of an `operation` attribute or a `default-operation` parameter.
    pub fn parse(value: &str) -> Option<EditOperation> {
        Some(match value {
            "merge" => EditOperation::Merge,
            "replace" => EditOperation::Replace,
            "create" => EditOperation::Create,
            "delete" => EditOperation::Delete,
            "remove" => EditOperation::Remove,
            "none" => EditOperation::None,
            _ => return Option::None,
        })
    }
}

/// Applies one edit to a copy of a datastore.
pub struct Editor<'a> {
    ctx: &'a Context,
    /// The errors of the strict parse of the edit, if it failed. The edit was then parsed
    /// leniently, with values its type rejects kept as opaque nodes, because a `delete` or
    /// `remove` of a leaf needs no valid value (`<level nc:operation="delete"/>`). Any other use
    /// of an opaque node reports these errors.
    strict_errors: Option<DatastoreError>,
}

impl<'a> Editor<'a> {
    /// An editor; `strict_errors` as described on the field.
    pub fn new(ctx: &'a Context, strict_errors: Option<DatastoreError>) -> Self {
        Editor { ctx, strict_errors }
    }

    /// Applies the edit whose top-level nodes start at `edit` to the tree whose top-level nodes
    /// start at `*target` (updated when top-level nodes are added or removed).
    ///
    /// # Safety
    /// `edit` and `*target` must be null or the first top-level siblings of two distinct, live
    /// trees of the editor's context.
    pub unsafe fn apply(
        &mut self,
        target: &mut Node,
        edit: Node,
        default_operation: EditOperation,
    ) -> Result<(), DatastoreError> {
        unsafe { self.apply_siblings(ptr::null_mut(), target, edit, default_operation) }
    }

    /// The error for an edit node that did not parse.
    fn invalid(&mut self) -> DatastoreError {
        self.strict_errors
            .take()
            .unwrap_or_else(|| DatastoreError::Internal("unparsable edit node".into()))
    }

    /// Applies the edit siblings starting at `edit` under `parent` (null: top level, siblings
    /// headed by `*first`).
    unsafe fn apply_siblings(
        &mut self,
        parent: Node,
        first: &mut Node,
        edit: Node,
        inherited: EditOperation,
    ) -> Result<(), DatastoreError> {
        unsafe {
            let mut e = edit;
            while !e.is_null() {
                // Keys are created and deleted with their list entry.
                if parent.is_null() || !raw::is_key(e) {
                    let op = node_operation(e)?.unwrap_or(inherited);
                    if (*e).schema.is_null() {
                        self.apply_opaque(parent, first, e, op)?;
                    } else {
                        self.apply_node(parent, first, e, op)?;
                    }
                }
                e = (*e).next;
            }
            Ok(())
        }
    }

    unsafe fn apply_node(
        &mut self,
        parent: Node,
        first: &mut Node,
        e: Node,
        op: EditOperation,
    ) -> Result<(), DatastoreError> {
        unsafe {
            let siblings = siblings_under(parent, *first);
            let existing = raw::find_match(siblings, e);
            // A node present only as an implicit default does not "exist" for create and
            // delete (RFC 6243 §4.5.2), but it is the node to update for the others.
            let exists = !existing.is_null() && !raw::is_default(existing);
            let is_leaf = raw::nodetype(e) == ffi::LYS_LEAF;
            match op {
                EditOperation::Create if exists => {
                    Err(DatastoreError::DataExists { path: raw::path(e) })
                }
                EditOperation::Delete if !exists => {
                    Err(DatastoreError::DataMissing { path: raw::path(e) })
                }
                EditOperation::Delete | EditOperation::Remove => {
                    if exists {
                        raw::free(first, existing);
                    }
                    Ok(())
                }
                EditOperation::Replace if exists && !is_leaf => {
                    raw::free(first, existing);
                    let node = self.create(parent, first, e, ptr::null_mut())?;
                    self.apply_children(node, e, op)
                }
                EditOperation::Merge | EditOperation::Replace | EditOperation::Create => {
                    let node = self.create(parent, first, e, existing)?;
                    self.apply_children(node, e, op)
                }
                EditOperation::None if !existing.is_null() => self.apply_children(existing, e, op),
                // RFC 6241 §7.2: under `none`, a level of the edit that the datastore lacks is
                // data-missing, even when an operation below it would create something; only
                // a non-presence container, which has no existence of its own, is built.
                EditOperation::None => match nested_operations(e)? {
                    Nested::Constructive if raw::is_np_container(e) => {
                        let node = self.create(parent, first, e, ptr::null_mut())?;
                        self.apply_children(node, e, op)
                    }
                    Nested::Constructive => Err(DatastoreError::DataMissing { path: raw::path(e) }),
                    Nested::OnlyRemove => Ok(()),
                    Nested::Nothing | Nested::Delete => {
                        Err(DatastoreError::DataMissing { path: raw::path(e) })
                    }
                },
            }
        }
    }

    /// An opaque edit node: a leaf or leaf-list entry whose value did not parse. Only deleting
    /// or removing it makes sense.
    unsafe fn apply_opaque(
        &mut self,
        parent: Node,
        first: &mut Node,
        e: Node,
        op: EditOperation,
    ) -> Result<(), DatastoreError> {
        unsafe {
            if !matches!(op, EditOperation::Delete | EditOperation::Remove) {
                return Err(self.invalid());
            }
            let siblings = siblings_under(parent, *first);
            let Some((existing, path)) = raw::find_opaque_match(self.ctx, parent, siblings, e)
            else {
                return Err(self.invalid());
            };
            if existing.is_null() || raw::is_default(existing) {
                return match op {
                    EditOperation::Delete => Err(DatastoreError::DataMissing { path }),
                    _ => Ok(()),
                };
            }
            raw::free(first, existing);
            Ok(())
        }
    }

    unsafe fn apply_children(
        &mut self,
        node: Node,
        e: Node,
        op: EditOperation,
    ) -> Result<(), DatastoreError> {
        unsafe {
            let edit_children = raw::child(e);
            if edit_children.is_null() {
                return Ok(());
            }
            // Children are only ever inserted under `node`, never at the top level.
            let mut unused = ptr::null_mut();
            self.apply_siblings(node, &mut unused, edit_children, op)
        }
    }

    /// Makes sure the node of `e` exists in the target and returns it: updates a leaf's value,
    /// reuses an existing inner node, or inserts a copy of `e` (with keys, without children).
    unsafe fn create(
        &mut self,
        parent: Node,
        first: &mut Node,
        e: Node,
        existing: Node,
    ) -> Result<Node, DatastoreError> {
        unsafe {
            if !existing.is_null() {
                if raw::nodetype(e) == ffi::LYS_LEAF {
                    let value = raw::value(e).unwrap_or_default();
                    raw::change_term(self.ctx, existing, &value)?;
                } else if raw::is_default(existing) {
                    // An implicit non-presence container becomes explicit.
                    (*existing).flags &= !ffi::LYD_DEFAULT;
                }
                return Ok(existing);
            }
            let dup = raw::dup_single(self.ctx, e)?;
            raw::insert(self.ctx, parent, first, dup)?;
            Ok(dup)
        }
    }
}

/// The first of the target nodes under `parent`, or the top-level `first` when there is no
/// parent.
unsafe fn siblings_under(parent: Node, first: Node) -> Node {
    if parent.is_null() {
        first
    } else {
        unsafe { raw::child(parent) }
    }
}

/// The operation a node carries in its `nc:operation` attribute.
unsafe fn node_operation(e: Node) -> Result<Option<EditOperation>, DatastoreError> {
    match unsafe { raw::operation_attribute(e) } {
        None => Ok(None),
        Some(v) => EditOperation::parse(&v)
            .map(Some)
            .ok_or(DatastoreError::BadOperation { value: v }),
    }
}

/// What operations a subtree of the edit carries, for a node missing under `none`.
enum Nested {
    /// merge, replace or create somewhere: the path to it must be built.
    Constructive,
    /// Only remove operations: nothing to do.
    OnlyRemove,
    /// A delete below a missing node: what it deletes is missing too.
    Delete,
    /// No operation at all.
    Nothing,
}

unsafe fn nested_operations(e: Node) -> Result<Nested, DatastoreError> {
    unsafe {
        let mut found = Nested::Nothing;
        let mut stack = vec![e];
        while let Some(n) = stack.pop() {
            match node_operation(n)? {
                Some(EditOperation::Merge | EditOperation::Replace | EditOperation::Create) => {
                    return Ok(Nested::Constructive);
                }
                Some(EditOperation::Delete) => found = Nested::Delete,
                Some(EditOperation::Remove) if matches!(found, Nested::Nothing) => {
                    found = Nested::OnlyRemove
                }
                _ => {}
            }
            let mut c = raw::child(n);
            while !c.is_null() {
                stack.push(c);
                c = (*c).next;
            }
        }
        Ok(found)
    }
}
