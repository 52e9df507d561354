//! XPath filters (`:xpath`, RFC 6241 §8.9) evaluated by libyang on a data tree.
//!
//! A client writes prefixes bound by `xmlns:p="namespace"` declarations on the `<filter>`
//! element (or its ancestors); libyang's data XPath wants module names as prefixes. The
//! expression is therefore tokenised just enough to find its qualified names (string literals
//! are skipped) and each prefix is replaced by the name of the module with that namespace. An
//! unprefixed name at the start of an absolute path (`/python-vm/logging`, as yangcli and people
//! write it) is given the module of the one top-level node with that name; deeper unprefixed
//! names inherit their parent's module, as in libyang's own syntax.
//!
//! The selected nodes are returned with their subtrees and their ancestors (with list keys),
//! the same shape as a subtree filter's result.

use std::ffi::CString;
use std::ptr;

use yang5::context::Context;
use yang5::data::DataTree;
use yang5::ffi;
use yang5::utils::Binding;

use super::error::DatastoreError;
use super::filter::copy_into;
use super::raw::{self, Node};

/// An XPath filter with the namespace declarations in scope on its `<filter>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XPathFilter {
    /// The `select` expression.
    pub select: String,
    /// `(prefix, namespace)` pairs in scope; later ones shadow earlier ones.
    pub namespaces: Vec<(String, String)>,
}

/// One token of an XPath expression, as far as prefix rewriting cares.
#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    /// A name test or function name: `prefix:local`, `local`, `prefix:*`.
    Name {
        prefix: Option<&'a str>,
        local: &'a str,
    },
    /// Any other text, copied as is (operators, literals, numbers, whitespace).
    Other(&'a str),
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Splits an expression into names and the text between them.
fn tokenize(expr: &str) -> Result<Vec<Token<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(c) = rest.chars().next() {
        if c == '"' || c == '\'' {
            let end = rest[1..]
                .find(c)
                .ok_or_else(|| "unterminated string literal".to_string())?;
            out.push(Token::Other(&rest[..end + 2]));
            rest = &rest[end + 2..];
        } else if is_name_start(c) {
            let len = rest
                .find(|ch: char| !is_name_char(ch))
                .unwrap_or(rest.len());
            let first = &rest[..len];
            let after = &rest[len..];
            // `prefix:local` or `prefix:*`, but not the axis separator `::`.
            if after.starts_with(':') && !after.starts_with("::") {
                let tail = &after[1..];
                if let Some(after_star) = tail.strip_prefix('*') {
                    out.push(Token::Name {
                        prefix: Some(first),
                        local: "*",
                    });
                    rest = after_star;
                    continue;
                }
                if tail.chars().next().is_some_and(is_name_start) {
                    let l = tail
                        .find(|ch: char| !is_name_char(ch))
                        .unwrap_or(tail.len());
                    out.push(Token::Name {
                        prefix: Some(first),
                        local: &tail[..l],
                    });
                    rest = &tail[l..];
                    continue;
                }
            }
            out.push(Token::Name {
                prefix: None,
                local: first,
            });
            rest = after;
        } else {
            let len = c.len_utf8();
            out.push(Token::Other(&rest[..len]));
            rest = &rest[len..];
        }
    }
    Ok(out)
}

/// Rewrites the expression into libyang's syntax (module names as prefixes).
/// `module_of_ns` maps a namespace to its module name, `top_level_module` a top-level node name
/// to the module of the only top-level node with that name.
fn rewrite(
    filter: &XPathFilter,
    module_of_ns: impl Fn(&str) -> Option<String>,
    top_level_module: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let tokens = tokenize(&filter.select)?;
    check_nesting(&tokens)?;
    let mut out = String::with_capacity(filter.select.len() * 2);
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Other(text) => out.push_str(text),
            Token::Name {
                prefix: Some(prefix),
                local,
            } => {
                let ns = filter
                    .namespaces
                    .iter()
                    .rev()
                    .find(|(p, _)| p == prefix)
                    .map(|(_, ns)| ns.as_str())
                    .ok_or_else(|| format!("the prefix \"{prefix}\" is not declared"))?;
                let module = module_of_ns(ns)
                    .ok_or_else(|| format!("no YANG module has the namespace \"{ns}\""))?;
                out.push_str(&module);
                out.push(':');
                out.push_str(local);
            }
            Token::Name {
                prefix: None,
                local,
            } => {
                if starts_absolute_path(&tokens[..i])
                    && let Some(module) = top_level_module(local)
                {
                    out.push_str(&module);
                    out.push(':');
                }
                out.push_str(local);
            }
        }
    }
    Ok(out)
}

/// How deep parentheses and predicates may nest in an expression: libyang parses and
/// evaluates XPath recursively, so a client must not be able to exhaust a thread's stack.
const MAX_XPATH_NESTING: usize = 64;

/// Refuses expressions that nest `(` and `[` deeper than [`MAX_XPATH_NESTING`].
fn check_nesting(tokens: &[Token<'_>]) -> Result<(), String> {
    let mut depth = 0usize;
    for token in tokens {
        match token {
            Token::Other("(" | "[") => {
                depth += 1;
                if depth > MAX_XPATH_NESTING {
                    return Err(format!(
                        "the expression nests more than {MAX_XPATH_NESTING} levels deep"
                    ));
                }
            }
            Token::Other(")" | "]") => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// True if the tokens before a name end with a `/` (or `//`) that begins an absolute location
/// path: nothing that could be a step (a name, `]`, `)`, `*`, `.`) comes before the slashes.
fn starts_absolute_path(before: &[Token<'_>]) -> bool {
    let mut iter = before
        .iter()
        .rev()
        .filter(|t| !matches!(t, Token::Other(s) if s.trim().is_empty()));
    let mut slashes = 0;
    for t in iter.by_ref() {
        match t {
            Token::Other("/") if slashes < 2 => slashes += 1,
            _ => {
                return slashes > 0
                    && !matches!(
                        t,
                        Token::Name { .. } | Token::Other("]" | ")" | "*" | "." | "/")
                    );
            }
        }
    }
    slashes > 0
}

/// Returns a new tree with what `filter` selects from the tree headed by `first`.
///
/// # Safety
/// `first` must be null or the first top-level sibling of a live tree of `ctx`.
pub unsafe fn select(
    ctx: &'static Context,
    first: Node,
    filter: &XPathFilter,
) -> Result<DataTree<'static>, DatastoreError> {
    let module_of_ns = |ns: &str| {
        ctx.get_module_implemented_ns(ns)
            .map(|m| m.name().to_string())
    };
    let top_level_module = |name: &str| {
        let mut found = ctx
            .modules(false)
            .filter(|m| m.is_implemented())
            .filter(|m| m.data().any(|n| n.name() == name));
        match (found.next(), found.next()) {
            (Some(m), None) => Some(m.name().to_string()),
            _ => None,
        }
    };
    let expr = rewrite(filter, module_of_ns, top_level_module).map_err(DatastoreError::BadXPath)?;
    let c_expr = CString::new(expr).map_err(|_| DatastoreError::BadXPath("NUL in XPath".into()))?;
    raw::clear_errors(ctx);
    let mut set: *mut ffi::ly_set = ptr::null_mut();
    let mut result: Node = ptr::null_mut();
    unsafe {
        // Checked against the schema first, so that a misspelt node is an error rather than
        // an empty answer, and so that an expression is judged the same on an empty datastore.
        let r = ffi::lys_find_xpath(
            crate::yang::raw_context(ctx),
            ptr::null(),
            c_expr.as_ptr(),
            ffi::LYS_FIND_NO_MATCH_ERROR,
            &mut set,
        );
        ffi::ly_set_free(set, None);
        set = ptr::null_mut();
        if r != ffi::LY_ERR::LY_SUCCESS {
            return Err(xpath_error(ctx));
        }
        if first.is_null() {
            return Ok(DataTree::new(ctx));
        }
        if ffi::lyd_find_xpath(first, c_expr.as_ptr(), &mut set) != ffi::LY_ERR::LY_SUCCESS {
            return Err(xpath_error(ctx));
        }
        let nodes: Vec<Node> = if set.is_null() || (*set).count == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*set).__bindgen_anon_1.dnodes, (*set).count as usize)
                .to_vec()
        };
        let mut outcome = Ok(());
        for node in nodes {
            // A node whose ancestor is also selected comes with that ancestor's subtree.
            if outcome.is_ok() && !has_selected_ancestor(node, set) {
                outcome = copy_into(ctx, &mut result, node);
            }
        }
        ffi::ly_set_free(set, None);
        let tree = DataTree::from_raw(ctx, result);
        outcome.map(|()| tree)
    }
}

unsafe fn has_selected_ancestor(node: Node, set: *mut ffi::ly_set) -> bool {
    unsafe {
        let selected =
            std::slice::from_raw_parts((*set).__bindgen_anon_1.dnodes, (*set).count as usize);
        let mut p = (*node).parent as Node;
        while !p.is_null() {
            if selected.contains(&p) {
                return true;
            }
            p = (*p).parent as Node;
        }
        false
    }
}

/// libyang's messages about a failed evaluation, as one bad-XPath error.
fn xpath_error(ctx: &Context) -> DatastoreError {
    let message = match raw::last_error(ctx) {
        DatastoreError::Validation(issues) => issues
            .iter()
            .map(|i| i.message.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    };
    DatastoreError::BadXPath(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(select: &str) -> XPathFilter {
        XPathFilter {
            select: select.into(),
            namespaces: vec![("n".into(), "urn:ncs".into())],
        }
    }

    fn rw(select: &str) -> Result<String, String> {
        rewrite(
            &filter(select),
            |ns| (ns == "urn:ncs").then(|| "tailf-ncs".to_string()),
            |name| (name == "python-vm").then(|| "tailf-ncs".to_string()),
        )
    }

    #[test]
    fn prefixes_become_module_names() {
        assert_eq!(
            rw("/n:python-vm/n:logging[n:level='a:b']").unwrap(),
            "/tailf-ncs:python-vm/tailf-ncs:logging[tailf-ncs:level='a:b']"
        );
        assert_eq!(
            rw("/n:python-vm/n:*").unwrap(),
            "/tailf-ncs:python-vm/tailf-ncs:*"
        );
        assert_eq!(
            rw("/python-vm/logging | //python-vm").unwrap(),
            "/tailf-ncs:python-vm/logging | //tailf-ncs:python-vm"
        );
        assert_eq!(
            rw("count(/python-vm) > 0").unwrap(),
            "count(/tailf-ncs:python-vm) > 0"
        );
        assert_eq!(
            rw("/python-vm/child::logging").unwrap(),
            "/tailf-ncs:python-vm/child::logging"
        );
        assert!(rw("/x:python-vm").is_err());
        assert!(rw("/n:python-vm[level='x]").is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        let e = rw(&deep).unwrap_err();
        assert!(e.contains("nests more than"), "{e}");
        let fine = format!("/python-vm[{}1{}]", "(".repeat(10), ")".repeat(10));
        assert!(rw(&fine).is_ok());
    }
}
