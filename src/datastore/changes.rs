//! What each change of a configuration datastore changed, told to a listener once it is on
//! disk: the `netconf-config-change` and `netconf-confirmed-commit` events of RFC 6470 are built
//! from these.
//!
//! The changed nodes come from libyang's diff of the old and the new tree: the topmost node of
//! each created, deleted or replaced subtree, with its instance-identifier. Every path that
//! changes running or startup reports here (NETCONF edits and commits, copy-config, rollbacks of
//! confirmed commits, Python transactions, service re-deploys), so the events tell the whole
//! story.

use std::fmt::Write as _;
use std::time::Duration;

use yang5::data::{Data, DataDiffFlags, DataNodeRef, DataTree};

use super::DatastoreName;
use super::locks::SessionId;

/// What happened to a changed node (RFC 6470 `edit-operation-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOperation {
    /// The node (with its subtree) was created.
    Create,
    /// The node (with its subtree) was deleted.
    Delete,
    /// A leaf got a new value, or an ordered entry moved.
    Replace,
}

impl ChangeOperation {
    /// The RFC 6470 name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOperation::Create => "create",
            ChangeOperation::Delete => "delete",
            ChangeOperation::Replace => "replace",
        }
    }
}

/// An instance-identifier as XML writes it: every name qualified, with its prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePath {
    /// e.g. `/demo:tools/demo:host[demo:name='h1']`; prefixes are module names.
    pub path: String,
    /// (prefix, namespace) of every prefix in `path`.
    pub prefixes: Vec<(String, String)>,
}

impl InstancePath {
    /// The instance-identifier of a data node: every step qualified by its module's name,
    /// list entries by their keys, leaf-list entries by their value.
    pub fn of(node: &DataNodeRef<'_>) -> InstancePath {
        let mut path = String::new();
        let mut prefixes: Vec<(String, String)> = Vec::new();
        let nodes: Vec<_> = node.inclusive_ancestors().collect();
        for n in nodes.iter().rev() {
            let schema = n.schema();
            let module = schema.module();
            let prefix = module.name().to_owned();
            if !prefixes.iter().any(|(p, _)| *p == prefix) {
                prefixes.push((prefix.clone(), module.namespace().to_owned()));
            }
            let _ = write!(path, "/{prefix}:{}", schema.name());
            for key in n.list_keys() {
                let value = key.value_canonical().unwrap_or_default();
                let _ = write!(
                    path,
                    "[{prefix}:{}={}]",
                    key.schema().name(),
                    quote_xpath(&value)
                );
            }
            if schema.kind() == yang5::schema::SchemaNodeKind::LeafList {
                let value = n.value_canonical().unwrap_or_default();
                let _ = write!(path, "[.={}]", quote_xpath(&value));
            }
        }
        InstancePath { path, prefixes }
    }

    /// The `xmlns:` declarations of the prefixes, each with a leading space.
    pub fn xmlns(&self) -> String {
        self.prefixes
            .iter()
            .map(|(p, ns)| format!(" xmlns:{p}=\"{}\"", quick_xml::escape::escape(ns)))
            .collect()
    }
}

/// Quotes a string for an XPath predicate (XPath 1.0 has no escapes: a value with both kinds
/// of quote is built with `concat`).
pub fn quote_xpath(value: &str) -> String {
    if !value.contains('\'') {
        format!("'{value}'")
    } else if !value.contains('"') {
        format!("\"{value}\"")
    } else {
        let parts: Vec<String> = value.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

/// One changed node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedNode {
    /// Which node.
    pub target: InstancePath,
    /// What happened to it.
    pub operation: ChangeOperation,
}

/// A committed change of a configuration datastore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    /// Running or startup.
    pub datastore: DatastoreName,
    /// The session that made it; 0 for the server itself (a Python transaction, a service
    /// action, the rollback of a confirmed commit that timed out).
    pub session: SessionId,
    /// What changed, in document order.
    pub edits: Vec<ChangedNode>,
}

/// What happened to a confirmed commit (RFC 6470 `confirm-event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmEvent {
    /// A confirmed commit started a series.
    Start,
    /// It was cancelled (`cancel-commit`, or its session ended).
    Cancel,
    /// Its confirm-timeout passed.
    Timeout,
    /// A follow-up confirmed commit extended it.
    Extend,
    /// A confirming commit made it permanent.
    Complete,
}

impl ConfirmEvent {
    /// The RFC 6470 name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmEvent::Start => "start",
            ConfirmEvent::Cancel => "cancel",
            ConfirmEvent::Timeout => "timeout",
            ConfirmEvent::Extend => "extend",
            ConfirmEvent::Complete => "complete",
        }
    }
}

/// A confirmed-commit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmedCommit {
    /// What happened.
    pub event: ConfirmEvent,
    /// Whose doing; `None` for a timeout.
    pub session: Option<SessionId>,
    /// The new confirm-timeout, for `start` and `extend`.
    pub timeout: Option<Duration>,
}

/// Told of every committed change; called with the commit lock held, so calls arrive in commit
/// order. Must not block.
pub trait ChangeListener: Send + Sync {
    /// A datastore changed.
    fn config_changed(&self, change: ConfigChange);
    /// A confirmed commit started, was extended, confirmed, cancelled or timed out.
    fn confirmed_commit(&self, event: ConfirmedCommit);
}

/// The topmost changed nodes between `old` and `new` (`None` for an empty datastore).
pub fn changed_nodes(
    old: Option<&DataTree<'static>>,
    new: Option<&DataTree<'static>>,
    ctx: &'static yang5::context::Context,
) -> Result<Vec<ChangedNode>, yang5::Error> {
    let empty = DataTree::new(ctx);
    let diff = old
        .unwrap_or(&empty)
        .diff(new.unwrap_or(&empty), DataDiffFlags::empty())?;
    let mut edits = Vec::new();
    if let Some(first) = diff.tree().reference() {
        // The services' bookkeeping is the server's own, never shown to clients.
        for top in first
            .inclusive_siblings()
            .filter(|n| n.schema().module().name() != super::bookkeeping::MODULE)
        {
            collect(&top, &mut edits);
        }
    }
    Ok(edits)
}

/// The operation libyang's diff gives `node` (`none`, and no operation, are `None`).
pub fn diff_operation(node: &DataNodeRef<'_>) -> Option<ChangeOperation> {
    node.meta()
        .find(|m| m.name() == "operation")
        .and_then(|m| match m.value() {
            "create" => Some(ChangeOperation::Create),
            "delete" => Some(ChangeOperation::Delete),
            "replace" => Some(ChangeOperation::Replace),
            _ => None,
        })
}

/// Adds `node` if the diff gives it an operation, else looks below it.
fn collect(node: &DataNodeRef<'_>, edits: &mut Vec<ChangedNode>) {
    match diff_operation(node) {
        Some(operation) => edits.push(ChangedNode {
            target: InstancePath::of(node),
            operation,
        }),
        None => {
            for child in node.children() {
                collect(&child, edits);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use yang5::data::{DataFormat, DataParserFlags, DataValidationFlags};

    use super::*;

    fn tree(xml: &str) -> DataTree<'static> {
        DataTree::parse_string(
            crate::yang::test_context(),
            xml,
            DataFormat::XML,
            DataParserFlags::STRICT | DataParserFlags::NO_STATE,
            DataValidationFlags::NO_STATE,
        )
        .unwrap()
    }

    #[test]
    fn the_topmost_changed_nodes_with_their_operation() {
        let ns = "xmlns=\"http://tail-f.com/ns/ncs\"";
        let old = tree(&format!(
            "<python-vm {ns}><logging><level>level-info</level>\
             <vm-levels><node-id>a</node-id><level>level-debug</level></vm-levels>\
             </logging></python-vm>"
        ));
        let new = tree(&format!(
            "<python-vm {ns}><logging><level>level-error</level>\
             <vm-levels><node-id>b</node-id><level>level-debug</level></vm-levels>\
             </logging></python-vm>"
        ));
        let edits = changed_nodes(Some(&old), Some(&new), crate::yang::test_context()).unwrap();
        let seen: Vec<(&str, &str)> = edits
            .iter()
            .map(|e| (e.target.path.as_str(), e.operation.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "/tailf-ncs:python-vm/tailf-ncs:logging/tailf-ncs:level",
                    "replace"
                ),
                (
                    "/tailf-ncs:python-vm/tailf-ncs:logging/tailf-ncs:vm-levels[tailf-ncs:node-id='a']",
                    "delete"
                ),
                (
                    "/tailf-ncs:python-vm/tailf-ncs:logging/tailf-ncs:vm-levels[tailf-ncs:node-id='b']",
                    "create"
                ),
            ]
        );
        assert_eq!(
            edits[0].target.xmlns(),
            " xmlns:tailf-ncs=\"http://tail-f.com/ns/ncs\""
        );
        // From nothing: the top node is created; no change: no edits.
        let created = changed_nodes(None, Some(&new), crate::yang::test_context()).unwrap();
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].operation, ChangeOperation::Create);
        assert!(
            changed_nodes(Some(&new), Some(&new), crate::yang::test_context())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn xpath_quoting_survives_both_quotes() {
        assert_eq!(quote_xpath("a"), "'a'");
        assert_eq!(quote_xpath("it's"), "\"it's\"");
        assert_eq!(quote_xpath("a'b\"c"), "concat('a', \"'\", 'b\"c')");
    }
}
