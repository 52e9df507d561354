//! Subtree and XPath filters of `get-config` over a running datastore with data: any filter
//! selects something or is refused with an error.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use pyvmd::datastore::{Access, DatastoreName, Filter, WithDefaults, XPathFilter};
use pyvmd::netconf::{filter::subtree_filter_node, xml};

const NAMESPACES: &[(&str, &str)] = &[
    ("ncs", "http://tail-f.com/ns/ncs"),
    ("nacm", "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"),
    ("sys", "urn:ietf:params:xml:ns:yang:ietf-system"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let filter = match control & 1 {
        0 => {
            let wrapped = format!(
                "<filter xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">{text}</filter>"
            );
            let Ok(element) = xml::parse(wrapped.as_bytes()) else {
                return;
            };
            Filter::Subtree(element.elements().map(subtree_filter_node).collect())
        }
        _ => Filter::XPath(XPathFilter {
            select: text.to_owned(),
            namespaces: NAMESPACES
                .iter()
                .map(|(p, n)| (p.to_string(), n.to_string()))
                .collect(),
        }),
    };
    let defaults = match control >> 1 & 3 {
        0 => WithDefaults::Explicit,
        1 => WithDefaults::ReportAll,
        2 => WithDefaults::ReportAllTagged,
        _ => WithDefaults::Trim,
    };
    let access = Access::unrestricted();
    if let Ok(reply) =
        common::datastore().read(DatastoreName::Running, Some(&filter), defaults, &access)
    {
        let wrapped = format!("<data>{reply}</data>");
        assert!(
            xml::parse(wrapped.as_bytes()).is_ok(),
            "a reply that is not XML: {reply}"
        );
    }
});
