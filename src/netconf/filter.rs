//! Subtree filters (RFC 6241 §6) as the datastore takes them: the XML of a `<filter>` element
//! read into [`FilterNode`]s.

use crate::datastore::FilterNode;
use crate::netconf::xml::{Element, NS_BASE};

/// A subtree filter element as a filter node.
pub fn subtree_filter_node(e: &Element) -> FilterNode {
    let text = e.text();
    let content = (!e.has_elements() && !text.trim().is_empty()).then(|| text.trim().to_string());
    FilterNode {
        // No data lives in the base namespace: a filter element there got it by inheritance
        // from an unqualified <filter>, and means "any namespace", as an un-namespaced one does.
        ns: (!e.ns.is_empty() && e.ns != NS_BASE).then(|| e.ns.clone()),
        name: e.name.clone(),
        content,
        children: e.elements().map(subtree_filter_node).collect(),
        // Namespace declarations are not attributes; nor is anything in the base namespace,
        // which ncclient-style requests put on filter elements by inheritance.
        attributes: e
            .attrs
            .iter()
            .filter(|a| {
                a.ns != NS_BASE && a.prefix.as_deref() != Some("xmlns") && a.name != "xmlns"
            })
            .map(|a| (a.ns.clone(), a.name.clone(), a.value.clone()))
            .collect(),
    }
}
