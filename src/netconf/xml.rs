//! A small namespace-aware XML element tree for NETCONF messages.
//!
//! The envelope of every message (`<hello>`, `<rpc>` and the parameters of an operation) is read
//! into this tree; payloads that are YANG data (`<config>`, filters) are handed on, re-serialised
//! with every namespace declaration they need, to the datastore layer, which parses them with
//! libyang. Keeping the tree namespace-resolved lets us be lenient in one place: un-namespaced
//! elements inside an `<rpc>` (as ncclient sends them) are read as base-namespace elements.

use std::fmt::Write as _;

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use thiserror::Error;

/// The NETCONF base namespace (RFC 6241).
pub const NS_BASE: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

/// Why a message is not well-formed XML.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct XmlError(pub String);

/// An XML element with resolved namespaces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Element {
    /// The namespace URI, empty when the element has none.
    pub ns: String,
    /// The local name.
    pub name: String,
    /// The prefix the element was written with, kept so attributes such as `message-id` can be
    /// echoed as sent.
    pub prefix: Option<String>,
    /// Namespace declarations made on this element: (prefix, URI); the default namespace has an
    /// empty prefix.
    pub ns_decls: Vec<(String, String)>,
    /// Attributes other than namespace declarations.
    pub attrs: Vec<Attribute>,
    /// Child nodes in document order.
    pub children: Vec<Node>,
}

/// An attribute with its resolved namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Namespace URI (empty for an unprefixed attribute).
    pub ns: String,
    /// The prefix as written, if any.
    pub prefix: Option<String>,
    /// The local name.
    pub name: String,
    /// The unescaped value.
    pub value: String,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data (unescaped).
    Text(String),
}

impl Element {
    /// A new element in namespace `ns`.
    pub fn new(ns: &str, name: &str) -> Self {
        Element {
            ns: ns.to_string(),
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// The child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element with this local name whose namespace is `ns` or, leniently,
    /// none at all (ncclient leaves operation parameters un-namespaced).
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.elements()
            .find(|e| e.name == name && (e.ns == ns || e.ns.is_empty()))
    }

    /// True if the element is in `ns` or, leniently, in no namespace.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.name == name && (self.ns == ns || self.ns.is_empty())
    }

    /// The concatenated text content of the element (not of its descendants).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for node in &self.children {
            if let Node::Text(t) = node {
                out.push_str(t);
            }
        }
        out
    }

    /// True if the element has child elements.
    pub fn has_elements(&self) -> bool {
        self.elements().next().is_some()
    }

    /// The value of an un-namespaced attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.name == name && a.ns.is_empty())
            .map(|a| a.value.as_str())
    }
}

/// How deep elements may nest in a message. Everything that walks a parsed message, here and
/// in libyang, may recurse once per level: a client must not be able to exhaust a thread's
/// stack. Real configurations are a few dozen levels deep.
pub const MAX_DEPTH: usize = 256;

/// Parses a complete document into its root element. DTDs are refused (no entity expansion),
/// and so is nesting deeper than [`MAX_DEPTH`].
pub fn parse(input: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(input).map_err(|e| XmlError(format!("not UTF-8: {e}")))?;
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let err = |reader: &NsReader<&[u8]>, e: String| {
        XmlError(format!("{e} (at byte {})", reader.buffer_position()))
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| err(&reader, e.to_string()))?;
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                let _ = start;
                return Err(err(&reader, "content after the root element".into()));
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                let (resolved, local) = reader.resolver().resolve_element(start.name());
                let ns = resolved_ns(resolved).map_err(|e| err(&reader, e))?;
                let mut element = Element {
                    ns,
                    name: local.into_inner().to_string(),
                    prefix: start.name().prefix().map(|p| p.into_inner().to_string()),
                    ..Default::default()
                };
                for attr in start.attributes() {
                    let attr = attr.map_err(|e| err(&reader, e.to_string()))?;
                    let value = attr
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| err(&reader, e.to_string()))?
                        .into_owned();
                    let key = attr.key;
                    if let Some(decl) = key.as_namespace_binding() {
                        let prefix = match decl {
                            quick_xml::name::PrefixDeclaration::Default => String::new(),
                            quick_xml::name::PrefixDeclaration::Named(p) => p.to_string(),
                        };
                        element.ns_decls.push((prefix, value));
                        continue;
                    }
                    let (resolved, local) = reader.resolver().resolve_attribute(key);
                    let ns = resolved_ns(resolved).map_err(|e| err(&reader, e))?;
                    element.attrs.push(Attribute {
                        ns,
                        prefix: key.prefix().map(|p| p.into_inner().to_string()),
                        name: local.into_inner().to_string(),
                        value,
                    });
                }
                if matches!(event, Event::Start(_)) {
                    if stack.len() >= MAX_DEPTH {
                        return Err(err(
                            &reader,
                            format!("elements are nested more than {MAX_DEPTH} levels deep"),
                        ));
                    }
                    stack.push(element);
                } else {
                    attach(&mut stack, &mut root, element);
                }
            }
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| err(&reader, "unexpected end tag".into()))?;
                attach(&mut stack, &mut root, element);
            }
            Event::Text(t) => {
                let s = t.xml10_content();
                push_text(&mut stack, &root, &s).map_err(|e| err(&reader, e))?;
            }
            Event::GeneralRef(r) => {
                let name = r.xml10_content().into_owned();
                let s = match r
                    .resolve_char_ref()
                    .map_err(|e| err(&reader, e.to_string()))?
                {
                    Some(c) => c.to_string(),
                    None => match name.as_str() {
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "amp" => "&".into(),
                        "apos" => "'".into(),
                        "quot" => "\"".into(),
                        _ => return Err(err(&reader, format!("unknown entity &{name};"))),
                    },
                };
                push_text(&mut stack, &root, &s).map_err(|e| err(&reader, e))?;
            }
            Event::CData(c) => {
                let s = c.xml10_content().into_owned();
                push_text(&mut stack, &root, &s).map_err(|e| err(&reader, e))?;
            }
            Event::DocType(_) => return Err(err(&reader, "DTDs are not allowed".into())),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError("unexpected end of document".into()));
    }
    root.ok_or_else(|| XmlError("no root element".into()))
}

fn resolved_ns(resolved: ResolveResult) -> Result<String, String> {
    match resolved {
        ResolveResult::Bound(ns) => Ok(ns.0.to_string()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(p) => Err(format!("undeclared namespace prefix '{p}'")),
    }
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(element)),
        None => *root = Some(element),
    }
}

fn push_text(stack: &mut [Element], root: &Option<Element>, s: &str) -> Result<(), String> {
    match stack.last_mut() {
        Some(parent) => {
            if let Some(Node::Text(prev)) = parent.children.last_mut() {
                prev.push_str(s);
            } else {
                parent.children.push(Node::Text(s.to_string()));
            }
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None if root.is_some() => Err("text after the root element".into()),
        None => Err("text before the root element".into()),
    }
}

/// Escapes text for element content.
pub fn escape_text(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// Serialises `element` as a standalone document fragment.
///
/// Every element is written with an explicit default namespace where it differs from its
/// parent's, and namespaced attributes get generated prefixes, so the output does not depend on
/// declarations made outside the fragment. `inherited` lists the prefix declarations in scope at
/// `element` (from its ancestors); they are repeated on the fragment's root because values such
/// as identityrefs (`x:foo`) may refer to them.
pub fn to_string(element: &Element, inherited: &[(String, String)]) -> String {
    let mut out = String::new();
    write_element(&mut out, element, "", Some(inherited));
    out
}

fn write_element(
    out: &mut String,
    e: &Element,
    parent_ns: &str,
    root_decls: Option<&[(String, String)]>,
) {
    out.push('<');
    out.push_str(&e.name);
    if e.ns != parent_ns || root_decls.is_some() {
        let _ = write!(out, " xmlns=\"{}\"", quick_xml::escape::escape(&e.ns));
    }
    // Prefix declarations that text values may refer to: the in-scope ones on the root, and the
    // element's own everywhere.
    let mut declared: Vec<&str> = Vec::new();
    let decls = root_decls
        .unwrap_or(&[])
        .iter()
        .chain(e.ns_decls.iter())
        .rev();
    for (prefix, uri) in decls {
        if prefix.is_empty() || prefix.starts_with("pyvmd-a") || declared.contains(&prefix.as_str())
        {
            continue;
        }
        declared.push(prefix);
        let _ = write!(
            out,
            " xmlns:{prefix}=\"{}\"",
            quick_xml::escape::escape(uri)
        );
    }
    for (i, attr) in e.attrs.iter().enumerate() {
        if attr.ns.is_empty() {
            let _ = write!(
                out,
                " {}=\"{}\"",
                attr.name,
                quick_xml::escape::escape(&attr.value)
            );
        } else {
            let _ = write!(
                out,
                " xmlns:pyvmd-a{i}=\"{}\" pyvmd-a{i}:{}=\"{}\"",
                quick_xml::escape::escape(&attr.ns),
                attr.name,
                quick_xml::escape::escape(&attr.value)
            );
        }
    }
    if e.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for child in &e.children {
        match child {
            Node::Element(c) => write_element(out, c, &e.ns, None),
            Node::Text(t) => out.push_str(&escape_text(t)),
        }
    }
    out.push_str("</");
    out.push_str(&e.name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_references_to_nul_are_not_characters() {
        // XML 1.0 §4.1: a character reference must name a Char, which NUL is not; libyang,
        // which takes C strings, must never see one.
        for doc in [
            &b"<a>&#0;</a>"[..],
            b"<a>&#x0;</a>",
            b"<a b='&#0;'/>",
            b"<a b='x&#x00;'/>",
        ] {
            assert!(parse(doc).is_err(), "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn resolves_namespaces_and_attributes() {
        let doc = br#"<?xml version="1.0"?>
<nc:rpc xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="7" xmlns:x="urn:x">
  <nc:edit-config><target><running/></target>
    <config><top xmlns="urn:t" nc:operation="merge"><v>x:id &amp; &#65;</v></top></config>
  </nc:edit-config>
</nc:rpc>"#;
        let rpc = parse(doc).unwrap();
        assert_eq!(rpc.ns, NS_BASE);
        assert_eq!(rpc.name, "rpc");
        assert_eq!(rpc.attr("message-id"), Some("7"));
        let edit = rpc.child(NS_BASE, "edit-config").unwrap();
        // Un-namespaced parameters are accepted as base-namespace elements.
        assert!(
            edit.child(NS_BASE, "target")
                .unwrap()
                .child(NS_BASE, "running")
                .is_some()
        );
        let config = edit.child(NS_BASE, "config").unwrap();
        let top = config.elements().next().unwrap();
        assert_eq!(top.ns, "urn:t");
        assert_eq!(top.attrs[0].ns, NS_BASE);
        assert_eq!(top.attrs[0].name, "operation");
        assert_eq!(top.elements().next().unwrap().text(), "x:id & A");
    }

    #[test]
    fn fragment_serialisation_is_self_contained() {
        let doc = br#"<r xmlns:x="urn:x" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"><c><top xmlns="urn:t" nc:operation="delete"><v>x:id</v></top></c></r>"#;
        let root = parse(doc).unwrap();
        let top = root.elements().next().unwrap().elements().next().unwrap();
        let text = to_string(top, &root.ns_decls);
        let again = parse(text.as_bytes()).unwrap();
        assert_eq!(again.ns, "urn:t");
        assert_eq!(again.attrs[0].ns, NS_BASE);
        assert!(text.contains("xmlns:x=\"urn:x\""));
        assert_eq!(again.elements().next().unwrap().ns, "urn:t");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(parse(deep(MAX_DEPTH).as_bytes()).is_ok());
        let e = parse(deep(10_000).as_bytes()).unwrap_err();
        assert!(e.0.contains("nested more than"), "{e:?}");
    }

    #[test]
    fn malformed_documents_are_errors() {
        for doc in [
            &b"<a><b></a>"[..],
            b"<a>",
            b"",
            b"<a/><b/>",
            b"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
            b"<p:a/>",
            b"text",
            b"<a>&bogus;</a>",
        ] {
            assert!(parse(doc).is_err(), "{}", String::from_utf8_lossy(doc));
        }
    }
}
