//! Thin, audited wrappers over the few libyang calls that the `yang5` bindings do not expose
//! (node insertion and removal at arbitrary places, term changes, metadata lookup, error lists),
//! and an XPath search that frees what libyang returns.
//!
//! Every function takes raw `lyd_node` pointers that must belong to live trees of the server's
//! one context; the callers in this module tree uphold that, nothing else uses them.

use std::ffi::{CStr, CString};
use std::ptr;

use yang5::context::Context;
use yang5::data::{Data, DataNodeRef};
use yang5::ffi;
use yang5::utils::Binding;

use super::error::{DatastoreError, ValidationIssue, ValidationKind};

/// A raw data node pointer.
pub type Node = *mut ffi::lyd_node;

/// The nodes of `data` that `xpath` selects, in document order.
///
/// Use this instead of `yang5`'s `Data::find_xpath`, which never frees the `ly_set` libyang
/// returns: every call of it leaks the set and its array, which over thousands of commits is a
/// steady growth of the server's memory.
pub fn find_xpath<'a, D: Data<'a>>(
    data: &'a D,
    xpath: &str,
) -> Result<Vec<DataNodeRef<'a>>, yang5::Error> {
    let ctx = data.context();
    let Ok(c_xpath) = CString::new(xpath) else {
        return Err(yang5::Error {
            errcode: ffi::LY_ERR::LY_EINVAL,
            msg: Some("an XPath expression cannot contain a NUL character".into()),
            ..Default::default()
        });
    };
    let mut set: *mut ffi::ly_set = ptr::null_mut();
    // SAFETY: `data` is a live node of a live tree; the set is read, its nodes wrapped for the
    // lifetime of the tree, and the set (not the nodes) freed.
    unsafe {
        if ffi::lyd_find_xpath(data.raw(), c_xpath.as_ptr(), &mut set) != ffi::LY_ERR::LY_SUCCESS {
            ffi::ly_set_free(set, None);
            return Err(yang5::Error::new(ctx));
        }
        let nodes = if set.is_null() || (*set).count == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*set).__bindgen_anon_1.dnodes, (*set).count as usize)
                .iter()
                .map(|&raw| DataNodeRef::from_raw(data.tree(), raw))
                .collect()
        };
        ffi::ly_set_free(set, None);
        Ok(nodes)
    }
}

/// The parent of a node, null for a top-level one.
///
/// # Safety
/// `node` must be a valid node.
pub unsafe fn parent(node: Node) -> Node {
    unsafe { (*node).parent as Node }
}

/// The first of a node's siblings (the node itself if it is the first).
///
/// # Safety
/// `node` must be a valid node.
pub unsafe fn first_sibling(node: Node) -> Node {
    unsafe { ffi::lyd_first_sibling(node) }
}

/// The first child of an inner node (what libyang's inline `lyd_child()` does).
///
/// # Safety
/// `node` must be null or a valid node.
pub unsafe fn child(node: Node) -> Node {
    unsafe {
        if node.is_null() || (*node).schema.is_null() {
            return ptr::null_mut();
        }
        // libyang's inner nodes (`LYD_NODE_INNER`): notifications, rpcs and actions have
        // children too.
        let inner =
            (ffi::LYS_CONTAINER | ffi::LYS_LIST | ffi::LYS_RPC | ffi::LYS_ACTION | ffi::LYS_NOTIF)
                as u16;
        if (*(*node).schema).nodetype & inner != 0 {
            (*(node as *mut ffi::lyd_node_inner)).child
        } else {
            ptr::null_mut()
        }
    }
}

/// The node's schema node type (`LYS_*`), 0 for opaque nodes.
///
/// # Safety
/// `node` must be a valid node.
pub unsafe fn nodetype(node: Node) -> u32 {
    unsafe {
        if (*node).schema.is_null() {
            0
        } else {
            (*(*node).schema).nodetype as u32
        }
    }
}

/// True for a non-presence container: it has no meaning of its own (RFC 7950 §7.5.1), so
/// it counts as existing whether or not the tree holds it.
///
/// # Safety
/// `node` must be a valid node.
pub unsafe fn is_np_container(node: Node) -> bool {
    unsafe {
        nodetype(node) == ffi::LYS_CONTAINER
            && u32::from((*(*node).schema).flags) & ffi::LYS_PRESENCE == 0
    }
}

/// True for list key leaves, which are created and removed with their list entry.
///
/// # Safety
/// `node` must be a valid node.
pub unsafe fn is_key(node: Node) -> bool {
    unsafe { !(*node).schema.is_null() && (*(*node).schema).flags as u32 & ffi::LYS_KEY != 0 }
}

/// True if the node exists only as an implicit default.
///
/// # Safety
/// `node` must be a valid node.
pub unsafe fn is_default(node: Node) -> bool {
    unsafe { (*node).flags & ffi::LYD_DEFAULT != 0 }
}

/// The canonical value of a term node.
///
/// # Safety
/// `node` must be a valid leaf or leaf-list node.
pub unsafe fn value(node: Node) -> Option<String> {
    unsafe {
        let canonical = (*(node as *mut ffi::lyd_node_term)).value._canonical;
        if canonical.is_null() {
            None
        } else {
            Some(CStr::from_ptr(canonical).to_string_lossy().into_owned())
        }
    }
}

/// The node's data path, e.g. `/tailf-ncs:python-vm/logging/vm-levels[node-id='x']`.
///
/// # Safety
/// `node` must be a valid node.
pub unsafe fn path(node: Node) -> String {
    unsafe {
        let p = ffi::lyd_path(node, ffi::LYD_PATH_TYPE::LYD_PATH_STD, ptr::null_mut(), 0);
        if p.is_null() {
            return String::new();
        }
        let s = CStr::from_ptr(p).to_string_lossy().into_owned();
        free_c(p as *mut std::ffi::c_void);
        s
    }
}

unsafe extern "C" {
    /// The C library's `free`, for strings that libyang allocates for the caller.
    #[link_name = "free"]
    pub fn free_c(p: *mut std::ffi::c_void);
}

/// The value of the metadata `module:name` on a node, if present.
///
/// # Safety
/// `node` must be a valid node.
pub unsafe fn meta_value(node: Node, module: &str, name: &str) -> Option<String> {
    unsafe {
        let mut meta = (*node).meta;
        while !meta.is_null() {
            let m = &*meta;
            let mname = CStr::from_ptr(m.name).to_bytes();
            if mname == name.as_bytes()
                && !m.annotation.is_null()
                && CStr::from_ptr((*(*m.annotation).module).name).to_bytes() == module.as_bytes()
            {
                let v = m.value._canonical;
                return (!v.is_null()).then(|| CStr::from_ptr(v).to_string_lossy().into_owned());
            }
            meta = m.next;
        }
        None
    }
}

/// The NETCONF base namespace, where the `operation` attribute lives.
const NS_NETCONF: &[u8] = b"urn:ietf:params:xml:ns:netconf:base:1.0";

/// The value of the `nc:operation` attribute of an edit node: metadata on a parsed node, an
/// opaque attribute on a node whose value did not parse.
///
/// # Safety
/// `node` must be a valid node.
pub unsafe fn operation_attribute(node: Node) -> Option<String> {
    unsafe {
        if !(*node).schema.is_null() {
            return meta_value(node, "ietf-netconf", "operation");
        }
        let mut attr = (*(node as *mut ffi::lyd_node_opaq)).attr;
        while !attr.is_null() {
            let a = &*attr;
            let ns = a.name.__bindgen_anon_1.module_ns;
            if CStr::from_ptr(a.name.name).to_bytes() == b"operation"
                && !ns.is_null()
                && CStr::from_ptr(ns).to_bytes() == NS_NETCONF
            {
                return Some(CStr::from_ptr(a.value).to_string_lossy().trim().to_string());
            }
            attr = a.next;
        }
        None
    }
}

/// For an opaque edit node (a leaf or leaf-list entry whose value did not parse), finds its
/// schema node under `parent` and the matching instance among `siblings` (null if none), with
/// the node's data path for error messages. `None` if it is not a known leaf or leaf-list.
///
/// # Safety
/// `parent` null or valid, `siblings` null or valid, `opaque` a valid opaque node.
pub unsafe fn find_opaque_match(
    ctx: &Context,
    parent: Node,
    siblings: Node,
    opaque: Node,
) -> Option<(Node, String)> {
    unsafe {
        let o = &*(opaque as *mut ffi::lyd_node_opaq);
        let ns = o.name.__bindgen_anon_1.module_ns;
        if ns.is_null() || o.name.name.is_null() {
            return None;
        }
        let module = ffi::ly_ctx_get_module_implemented_ns(raw_ctx(ctx), ns);
        if module.is_null() {
            return None;
        }
        let parent_schema = if parent.is_null() {
            ptr::null()
        } else {
            (*parent).schema
        };
        let schema = ffi::lys_find_child(
            raw_ctx(ctx),
            parent_schema,
            module,
            ptr::null(),
            0,
            o.name.name,
            0,
            0,
        );
        if schema.is_null() {
            return None;
        }
        let value = match (*schema).nodetype as u32 {
            ffi::LYS_LEAF => ptr::null(),
            ffi::LYS_LEAFLIST => o.value,
            _ => return None,
        };
        let mut found = ptr::null_mut();
        if siblings.is_null()
            || ffi::lyd_find_sibling_val(siblings, schema, value, 0, &mut found)
                != ffi::LY_ERR::LY_SUCCESS
        {
            found = ptr::null_mut();
        }
        let name = CStr::from_ptr(o.name.name).to_string_lossy();
        let module_name = CStr::from_ptr((*module).name).to_string_lossy();
        let path = if parent.is_null() {
            format!("/{module_name}:{name}")
        } else {
            format!("{}/{name}", path(parent))
        };
        Some((found, path))
    }
}

/// Finds the instance in `siblings` (a sibling list, possibly empty) that matches `target`:
/// the same schema node, and for a list entry the same keys, for a leaf-list entry the same
/// value. A leaf matches whatever its value (`lyd_find_sibling_first` would compare values).
///
/// # Safety
/// Both must be null or valid nodes of the same context.
pub unsafe fn find_match(siblings: Node, target: Node) -> Node {
    unsafe {
        if siblings.is_null() {
            return ptr::null_mut();
        }
        let mut found = ptr::null_mut();
        let by_instance = (ffi::LYS_LIST | ffi::LYS_LEAFLIST) & nodetype(target) != 0;
        let r = if by_instance {
            ffi::lyd_find_sibling_first(siblings, target, &mut found)
        } else {
            ffi::lyd_find_sibling_val(siblings, (*target).schema, ptr::null(), 0, &mut found)
        };
        if r == ffi::LY_ERR::LY_SUCCESS {
            found
        } else {
            ptr::null_mut()
        }
    }
}

/// Duplicates `node` alone (a list entry comes with its keys), without metadata.
///
/// # Safety
/// `node` must be a valid node.
pub unsafe fn dup_single(ctx: &Context, node: Node) -> Result<Node, DatastoreError> {
    unsafe {
        let mut dup = ptr::null_mut();
        let r = ffi::lyd_dup_single(node, ptr::null_mut(), ffi::LYD_DUP_NO_META, &mut dup);
        if r != ffi::LY_ERR::LY_SUCCESS {
            return Err(last_error(ctx));
        }
        Ok(dup)
    }
}

/// Inserts `node` under `parent`, or among the top-level siblings headed by `*first` when
/// `parent` is null (updating `*first`).
///
/// # Safety
/// `node` must be an unlinked node; `parent` and `*first` null or valid nodes.
pub unsafe fn insert(
    ctx: &Context,
    parent: Node,
    first: &mut Node,
    node: Node,
) -> Result<(), DatastoreError> {
    unsafe {
        let r = if parent.is_null() {
            let mut new_first = ptr::null_mut();
            let r = ffi::lyd_insert_sibling(*first, node, &mut new_first);
            if r == ffi::LY_ERR::LY_SUCCESS {
                *first = new_first;
            }
            r
        } else {
            ffi::lyd_insert_child(parent, node)
        };
        if r != ffi::LY_ERR::LY_SUCCESS {
            ffi::lyd_free_tree(node);
            return Err(last_error(ctx));
        }
        Ok(())
    }
}

/// Frees `node` and its subtree, keeping `*first` pointing at the first top-level sibling.
///
/// # Safety
/// `node` must be a valid node of the tree headed by `*first`.
pub unsafe fn free(first: &mut Node, node: Node) {
    unsafe {
        if *first == node {
            *first = (*node).next;
        }
        ffi::lyd_free_tree(node);
    }
}

/// Sets the value of a term node (this also makes an implicit default explicit).
///
/// # Safety
/// `node` must be a valid leaf node.
pub unsafe fn change_term(ctx: &Context, node: Node, value: &str) -> Result<(), DatastoreError> {
    let v = CString::new(value).map_err(|_| DatastoreError::Internal("NUL in value".into()))?;
    unsafe {
        match ffi::lyd_change_term(node, v.as_ptr()) {
            ffi::LY_ERR::LY_SUCCESS | ffi::LY_ERR::LY_EEXIST | ffi::LY_ERR::LY_ENOT => Ok(()),
            _ => Err(last_error(ctx)),
        }
    }
}

/// libyang's logging options for datastore threads: store every message (so that all errors of
/// a validation can be reported, not only the last), print none. A static, because libyang keeps
/// the pointer.
static STORE_ALL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(ffi::LY_LOSTORE);

thread_local! {
    static STORE_ALL_SET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Prepares this thread for an operation whose errors we report: makes libyang store all its
/// messages on this thread, and clears what earlier operations left.
pub fn clear_errors(ctx: &Context) {
    STORE_ALL_SET.with(|set| {
        if !set.get() {
            // SAFETY: the options live in a static, so the pointer stays valid.
            unsafe { ffi::ly_temp_log_options(STORE_ALL.as_ptr()) };
            set.set(true);
        }
    });
    unsafe { ffi::ly_err_clean(raw_ctx(ctx), ptr::null_mut()) };
}

fn raw_ctx(ctx: &Context) -> *mut ffi::ly_ctx {
    crate::yang::raw_context(ctx)
}

/// Refuses text that holds a NUL character: libyang takes C strings, and no valid data holds
/// one (XML has no such character). Text from clients and package code passes here before it
/// reaches libyang.
pub fn refuse_nul(text: &str) -> Result<(), DatastoreError> {
    match text.contains('\0') {
        false => Ok(()),
        true => Err(DatastoreError::Validation(vec![ValidationIssue {
            message: "the data holds a NUL character".into(),
            path: None,
            app_tag: None,
            kind: ValidationKind::Syntax,
        }])),
    }
}

/// Every error libyang recorded on this thread since [`clear_errors`], as one error.
pub fn last_error(ctx: &Context) -> DatastoreError {
    let mut issues = Vec::new();
    unsafe {
        let mut item = ffi::ly_err_first(raw_ctx(ctx));
        while !item.is_null() {
            let e = &*item;
            if e.level == ffi::LY_LOG_LEVEL::LY_LLERR {
                issues.push(issue_from(e));
            }
            item = e.next;
        }
    }
    if issues.is_empty() {
        issues.push(ValidationIssue {
            message: "unknown libyang error".into(),
            path: None,
            app_tag: None,
            kind: ValidationKind::Other,
        });
    }
    DatastoreError::Validation(issues)
}

unsafe fn issue_from(e: &ffi::ly_err_item) -> ValidationIssue {
    let text = |p: *mut std::os::raw::c_char| {
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    };
    let message = text(e.msg).unwrap_or_else(|| "invalid data".into());
    let kind = match e.vecode {
        ffi::LY_VECODE::LYVE_SYNTAX | ffi::LY_VECODE::LYVE_SYNTAX_XML => ValidationKind::Syntax,
        ffi::LY_VECODE::LYVE_REFERENCE if message.contains("not found") => {
            ValidationKind::UnknownElement
        }
        ffi::LY_VECODE::LYVE_REFERENCE => ValidationKind::Missing,
        _ if message.starts_with("Mandatory node") => ValidationKind::Missing,
        ffi::LY_VECODE::LYVE_DATA => ValidationKind::Value,
        _ => ValidationKind::Other,
    };
    ValidationIssue {
        message,
        path: text(e.data_path).or_else(|| text(e.schema_path)),
        app_tag: text(e.apptag),
        kind,
    }
}

#[cfg(test)]
mod tests {
    use yang5::data::{DataFormat, DataParserFlags, DataTree, DataValidationFlags};

    use super::*;

    #[test]
    fn xpath_search_finds_nodes_in_order_and_reports_bad_expressions() {
        let ctx = crate::yang::test_context();
        let tree = DataTree::parse_string(
            ctx,
            r#"<python-vm xmlns="http://tail-f.com/ns/ncs"><logging>
                 <vm-levels><node-id>b</node-id><level>level-debug</level></vm-levels>
                 <vm-levels><node-id>a</node-id><level>level-error</level></vm-levels>
               </logging></python-vm>"#,
            DataFormat::XML,
            DataParserFlags::empty(),
            DataValidationFlags::PRESENT,
        )
        .expect("valid data");
        let ids: Vec<_> = find_xpath(&tree, "/tailf-ncs:python-vm/logging/vm-levels/node-id")
            .expect("a valid expression")
            .iter()
            .map(|n| n.value_canonical().unwrap_or_default())
            .collect();
        // A system-ordered list is kept sorted by libyang: document order is key order.
        assert_eq!(ids, ["a", "b"]);
        assert!(find_xpath(&tree, "/tailf-ncs:python-vm/nothing-here").is_ok_and(|n| n.is_empty()));
        assert!(find_xpath(&tree, "/tailf-ncs:python-vm/[").is_err());
        assert!(find_xpath(&tree, "/a\0b").is_err());
    }
}
