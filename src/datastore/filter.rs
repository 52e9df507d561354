//! Subtree filtering (RFC 6241 §6) evaluated on a libyang data tree.
//!
//! Working on the libyang tree rather than on XML text means list entries are known as such: the
//! output is built by copying each selected node together with its ancestors, and libyang adds
//! the list keys of those ancestors, so a client that selects one leaf of a list entry still sees
//! which entry it belongs to.

use std::ptr;

use yang5::context::Context;
use yang5::data::DataTree;
use yang5::ffi;
use yang5::utils::Binding;

use super::error::DatastoreError;
use super::raw::{self, Node};

/// A `<filter>`: what part of a datastore a retrieval returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// A subtree filter (RFC 6241 §6): its top-level filter nodes.
    Subtree(Vec<FilterNode>),
    /// An XPath filter (`:xpath`, RFC 6241 §8.9).
    XPath(super::xpath::XPathFilter),
}

/// One node of a subtree filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterNode {
    /// The namespace to match; `None` matches any namespace.
    pub ns: Option<String>,
    /// The local name to match.
    pub name: String,
    /// For a content match node: the value to match.
    pub content: Option<String>,
    /// Child filter nodes (containment node when non-empty).
    pub children: Vec<FilterNode>,
    /// Attribute match expressions (RFC 6241 §6.2.2): `(namespace, name, value)`. A data node
    /// matches only if it carries each as a metadata annotation of a module with that
    /// namespace (any module for an empty namespace) and that value.
    pub attributes: Vec<(String, String, String)>,
}

impl FilterNode {
    fn is_content_match(&self) -> bool {
        self.content.is_some() && self.children.is_empty()
    }

    fn is_selection(&self) -> bool {
        self.content.is_none() && self.children.is_empty()
    }
}

/// What a filter selects among a set of siblings.
enum Selection {
    /// All of them (and their subtrees).
    All,
    /// These nodes (any depth below the siblings' parent).
    Nodes(Vec<Node>),
}

/// Returns a new tree holding what `filter` selects from the tree headed by `first`.
/// An empty filter selects nothing (RFC 6241 §6.4.2).
///
/// # Safety
/// `first` must be null or the first top-level sibling of a live tree of `ctx`.
pub unsafe fn select(
    ctx: &'static Context,
    first: Node,
    filter: &[FilterNode],
) -> Result<DataTree<'static>, DatastoreError> {
    let mut result: Node = ptr::null_mut();
    let mut build = || -> Result<(), DatastoreError> {
        if filter.is_empty() {
            return Ok(());
        }
        let selected = match unsafe { filter_siblings(first, filter) } {
            Some(Selection::All) => siblings(first),
            Some(Selection::Nodes(nodes)) => nodes,
            None => Vec::new(),
        };
        for node in selected {
            unsafe { copy_into(ctx, &mut result, node)? };
        }
        Ok(())
    };
    let outcome = build();
    let tree = unsafe { DataTree::from_raw(ctx, result) };
    outcome.map(|_| tree)
}

/// Copies `node` with its subtree and its ancestors into the tree headed by `*result`.
pub(super) unsafe fn copy_into(
    ctx: &Context,
    result: &mut Node,
    node: Node,
) -> Result<(), DatastoreError> {
    unsafe {
        let mut dup = ptr::null_mut();
        let opts = ffi::LYD_DUP_RECURSIVE | ffi::LYD_DUP_WITH_PARENTS | ffi::LYD_DUP_WITH_FLAGS;
        if ffi::lyd_dup_single(node, ptr::null_mut(), opts, &mut dup) != ffi::LY_ERR::LY_SUCCESS {
            return Err(raw::last_error(ctx));
        }
        let mut top = dup;
        while !(*top).parent.is_null() {
            top = (*top).parent;
        }
        let opts = (ffi::LYD_MERGE_DESTRUCT | ffi::LYD_MERGE_WITH_FLAGS) as u16;
        if ffi::lyd_merge_siblings(result, top, opts) != ffi::LY_ERR::LY_SUCCESS {
            return Err(raw::last_error(ctx));
        }
        Ok(())
    }
}

fn siblings(first: Node) -> Vec<Node> {
    let mut out = Vec::new();
    let mut n = first;
    while !n.is_null() {
        out.push(n);
        n = unsafe { (*n).next };
    }
    out
}

/// True if `node` carries every attribute `f` asks for.
unsafe fn attributes_match(node: Node, f: &FilterNode) -> bool {
    f.attributes.iter().all(|(ns, name, value)| {
        let mut meta = unsafe { (*node).meta };
        while !meta.is_null() {
            // SAFETY: metadata of a live node, with their annotation's module.
            let m = unsafe { &*meta };
            let mname = unsafe { std::ffi::CStr::from_ptr(m.name) }.to_bytes();
            let mns = if m.annotation.is_null() {
                &b""[..]
            } else {
                unsafe { std::ffi::CStr::from_ptr((*(*m.annotation).module).ns) }.to_bytes()
            };
            let mvalue = m.value._canonical;
            if mname == name.as_bytes()
                && (ns.is_empty() || mns == ns.as_bytes())
                && !mvalue.is_null()
                && unsafe { std::ffi::CStr::from_ptr(mvalue) }.to_bytes() == value.as_bytes()
            {
                return true;
            }
            meta = m.next;
        }
        false
    })
}

unsafe fn name_matches(node: Node, f: &FilterNode) -> bool {
    unsafe {
        let schema = (*node).schema;
        if schema.is_null() || !attributes_match(node, f) {
            return false;
        }
        let name = std::ffi::CStr::from_ptr((*schema).name).to_bytes();
        if name != f.name.as_bytes() {
            return false;
        }
        match &f.ns {
            None => true,
            Some(ns) => {
                std::ffi::CStr::from_ptr((*(*schema).module).ns).to_bytes() == ns.as_bytes()
            }
        }
    }
}

unsafe fn content_matches(node: Node, f: &FilterNode) -> bool {
    unsafe {
        let term = (ffi::LYS_LEAF | ffi::LYS_LEAFLIST) & raw::nodetype(node) != 0;
        term && name_matches(node, f)
            && raw::value(node).as_deref() == f.content.as_deref().map(str::trim)
    }
}

/// Evaluates `filters` against the siblings starting at `first`. `None` means a content match
/// node failed, so the parent of these siblings is not selected at all.
unsafe fn filter_siblings(first: Node, filters: &[FilterNode]) -> Option<Selection> {
    unsafe {
        let data = siblings(first);
        for f in filters.iter().filter(|f| f.is_content_match()) {
            if !data.iter().any(|&d| content_matches(d, f)) {
                return None;
            }
        }
        if filters.iter().all(FilterNode::is_content_match) {
            return Some(Selection::All);
        }
        let mut nodes = Vec::new();
        for d in data {
            let matching: Vec<&FilterNode> =
                filters.iter().filter(|f| name_matches(d, f)).collect();
            if matching.is_empty() {
                continue;
            }
            let content_hit = matching
                .iter()
                .any(|f| f.is_content_match() && content_matches(d, f));
            if content_hit || matching.iter().any(|f| f.is_selection()) {
                nodes.push(d);
                continue;
            }
            for f in matching.iter().filter(|f| !f.children.is_empty()) {
                match filter_siblings(raw::child(d), &f.children) {
                    Some(Selection::All) => {
                        nodes.push(d);
                        break;
                    }
                    Some(Selection::Nodes(v)) => nodes.extend(v),
                    None => {}
                }
            }
        }
        Some(Selection::Nodes(nodes))
    }
}
