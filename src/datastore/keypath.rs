//! NSO keypaths: how the Python API (maapi, maagic, cdb) names data.
//!
//! A keypath is `/ncs:devices/device{ce0}/address`: steps separated by `/`, a step of another
//! module than its parent prefixed with that module's prefix (the module name is accepted too),
//! list entries selected by their keys in braces (`{a b}` for two keys; a key with spaces,
//! braces, quotes or backslashes is written in double quotes with backslash escapes), and, as
//! CDB allows, by position (`device[0]`, 0-based). A leaf-list entry is `ll{value}`.
//!
//! libyang speaks another path language (`/tailf-ncs:devices/device[name='ce0']/address`), with
//! key names that only the schema knows, so a keypath is resolved against the schema (and, for
//! positions, against a data tree) into a [`ResolvedPath`].

use yang5::context::Context;
use yang5::data::{DataNodeRef, DataTree};
use yang5::schema::{DataValueType, SchemaNode, SchemaNodeKind};

use super::DatastoreError;

/// How a step selects instances of a list or leaf-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// No selection: the node itself, or all instances of a list.
    None,
    /// `{k1 k2}`: the entry with these key values (the value, for a leaf-list).
    Keys(Vec<String>),
    /// `[n]`: the n-th instance, counting from 0.
    Index(usize),
}

/// One step of a keypath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The module prefix (or name), if written.
    pub prefix: Option<String>,
    /// The node name.
    pub name: String,
    /// The instance selection.
    pub selector: Selector,
}

fn bad_path(path: &str, reason: impl Into<String>) -> DatastoreError {
    DatastoreError::BadPath {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Parses a keypath into its steps; `/` alone is the root (no steps).
pub fn parse(keypath: &str) -> Result<Vec<Step>, DatastoreError> {
    let bad = |reason: &str| bad_path(keypath, reason);
    let mut chars = keypath.chars().peekable();
    if chars.next() != Some('/') {
        return Err(bad("a keypath starts with /"));
    }
    let mut steps = Vec::new();
    if chars.peek().is_none() {
        return Ok(steps);
    }
    loop {
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if matches!(c, '/' | '{' | '[') {
                break;
            }
            name.push(c);
            chars.next();
        }
        let (prefix, name) = match name.split_once(':') {
            Some((prefix, name)) => (Some(prefix.to_owned()), name.to_owned()),
            None => (None, name),
        };
        let malformed = |s: &str| s.chars().any(|c| c.is_whitespace() || "}]\"'".contains(c));
        if name.is_empty()
            || prefix
                .as_deref()
                .is_some_and(|p| p.is_empty() || malformed(p))
            || malformed(&name)
        {
            return Err(bad("empty or malformed node name"));
        }
        let selector = match chars.peek() {
            Some('{') => {
                chars.next();
                Selector::Keys(parse_keys(&mut chars).ok_or_else(|| bad("unterminated {keys}"))?)
            }
            Some('[') => {
                chars.next();
                let digits: String = chars.by_ref().take_while(|&c| c != ']').collect();
                Selector::Index(
                    digits
                        .trim()
                        .parse()
                        .map_err(|_| bad("a [position] must be a number"))?,
                )
            }
            _ => Selector::None,
        };
        steps.push(Step {
            prefix,
            name,
            selector,
        });
        match chars.next() {
            None => return Ok(steps),
            Some('/') if chars.peek().is_some() => {}
            Some('/') => return Err(bad("a keypath does not end with /")),
            Some(c) => return Err(bad(&format!("unexpected {c:?} after a step"))),
        }
    }
}

/// Reads the keys after `{` up to and including `}`; `None` if the braces do not close.
fn parse_keys(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<Vec<String>> {
    let mut keys = Vec::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next()? {
            '}' => return Some(keys),
            '"' => {
                let mut key = String::new();
                loop {
                    match chars.next()? {
                        '\\' => key.push(chars.next()?),
                        '"' => break,
                        c => key.push(c),
                    }
                }
                keys.push(key);
            }
            first => {
                let mut key = String::from(first);
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '}' {
                        break;
                    }
                    key.push(c);
                    chars.next();
                }
                keys.push(key);
            }
        }
    }
}

/// A keypath resolved for libyang.
#[derive(Debug, Clone)]
pub struct ResolvedPath {
    /// The libyang data path, with key predicates for every selected entry. A last step of a
    /// list or leaf-list without a selector has no predicate: the path then names all
    /// instances.
    pub data_path: String,
    /// The schema node of the last step; `None` for the root.
    pub schema: Option<SchemaNode<'static>>,
    /// The last step selects all instances of a list or leaf-list.
    pub all_instances: bool,
}

/// The data nodes under `parent` (or at the top of `ctx`), seeing through choices and cases,
/// which have no data nodes of their own.
pub fn data_children(
    ctx: &'static Context,
    parent: Option<&SchemaNode<'static>>,
) -> Vec<SchemaNode<'static>> {
    match parent {
        Some(node) => data_nodes(node.children()),
        None => data_nodes(
            ctx.modules(false)
                .filter(|m| m.is_implemented())
                .flat_map(|m| m.data()),
        ),
    }
}

/// Schema nodes as data sees them: choices and cases replaced by what they hold, in order.
pub fn data_nodes<'a>(nodes: impl Iterator<Item = SchemaNode<'a>>) -> Vec<SchemaNode<'a>> {
    let mut out = Vec::new();
    let mut pending: Vec<SchemaNode<'a>> = nodes.collect();
    pending.reverse();
    while let Some(node) = pending.pop() {
        match node.kind() {
            SchemaNodeKind::Choice | SchemaNodeKind::Case => {
                let mut inner: Vec<_> = node.children().collect();
                inner.reverse();
                pending.extend(inner);
            }
            _ => out.push(node),
        }
    }
    out
}

/// The default value of a leaf, canonical; `None` when it has none. (`yang5`'s
/// `default_value_canonical` alone gives `""` for a string leaf without a default.)
pub fn default_value(node: &SchemaNode<'_>) -> Option<String> {
    if !node.has_default() {
        return None;
    }
    node.default_value_canonical().ok().flatten()
}

/// True if `prefix` names `node`'s module (by prefix or by name).
fn module_matches(node: &SchemaNode<'_>, prefix: &str) -> bool {
    let module = node.module();
    module.prefix() == prefix || module.name() == prefix
}

/// The child of `parent` that a step names: of the written module if any, else preferably of
/// the parent's module.
fn find_child(
    ctx: &'static Context,
    parent: Option<&SchemaNode<'static>>,
    step: &Step,
) -> Option<SchemaNode<'static>> {
    let candidates: Vec<_> = data_children(ctx, parent)
        .into_iter()
        .filter(|c| c.name() == step.name)
        .collect();
    match &step.prefix {
        Some(prefix) => candidates.into_iter().find(|c| module_matches(c, prefix)),
        None => {
            let parent_module = parent.map(|p| p.module().name().to_owned());
            candidates
                .iter()
                .find(|c| Some(c.module().name()) == parent_module.as_deref())
                .or(candidates.first())
                .cloned()
        }
    }
}

/// The schema node a keypath names, ignoring its keys and positions; `None` for the root.
pub fn find_schema(
    ctx: &'static Context,
    keypath: &str,
) -> Result<Option<SchemaNode<'static>>, DatastoreError> {
    let mut node = None;
    for step in parse(keypath)? {
        node =
            Some(find_child(ctx, node.as_ref(), &step).ok_or_else(|| {
                bad_path(keypath, format!("no node {} in the schema", step.name))
            })?);
    }
    Ok(node)
}

/// Quotes a value for a libyang predicate.
fn quote(keypath: &str, value: &str) -> Result<String, DatastoreError> {
    if value.contains('\0') {
        return Err(bad_path(keypath, "a key contains a NUL character"));
    }
    if !value.contains('\'') {
        Ok(format!("'{value}'"))
    } else if !value.contains('"') {
        Ok(format!("\"{value}\""))
    } else {
        Err(bad_path(
            keypath,
            "a key holding both kinds of quotes cannot be addressed",
        ))
    }
}

/// Resolves a keypath. `tree` is needed for positional steps (`[n]`), which are turned into
/// the keys of the n-th instance; without it they are an error.
pub fn resolve(
    ctx: &'static Context,
    tree: Option<&DataTree<'static>>,
    keypath: &str,
) -> Result<ResolvedPath, DatastoreError> {
    resolve_steps(ctx, tree, keypath, &parse(keypath)?)
}

/// [`resolve`] of parsed steps (`keypath` is for error messages).
pub fn resolve_steps(
    ctx: &'static Context,
    tree: Option<&DataTree<'static>>,
    keypath: &str,
    steps: &[Step],
) -> Result<ResolvedPath, DatastoreError> {
    let mut data_path = String::new();
    let mut parent: Option<SchemaNode<'static>> = None;
    let mut all_instances = false;
    for (i, step) in steps.iter().enumerate() {
        let node = find_child(ctx, parent.as_ref(), step)
            .ok_or_else(|| bad_path(keypath, format!("no node {} in the schema", step.name)))?;
        let module = node.module();
        if parent
            .as_ref()
            .is_none_or(|p| p.module().name() != module.name())
        {
            data_path.push_str(&format!("/{}:{}", module.name(), node.name()));
        } else {
            data_path.push('/');
            data_path.push_str(node.name());
        }
        let last = i + 1 == steps.len();
        let kind = node.kind();
        let is_multi = matches!(kind, SchemaNodeKind::List | SchemaNodeKind::LeafList);
        match &step.selector {
            Selector::None => {
                if is_multi && !last {
                    return Err(bad_path(
                        keypath,
                        format!("{} is a list: select an entry with {{keys}}", step.name),
                    ));
                }
                all_instances = is_multi;
            }
            _ if !is_multi => {
                return Err(bad_path(
                    keypath,
                    format!("{} is not a list: it takes no keys", step.name),
                ));
            }
            Selector::Keys(keys) => {
                data_path.push_str(&predicate(ctx, keypath, &node, keys)?);
            }
            Selector::Index(n) => {
                let tree = tree.ok_or_else(|| {
                    bad_path(keypath, "a [position] is only allowed in CDB paths")
                })?;
                let instance = nth_instance(tree, &data_path, *n).ok_or_else(|| {
                    DatastoreError::DataMissing {
                        path: keypath.to_owned(),
                    }
                })?;
                data_path.push_str(&instance);
            }
        }
        parent = Some(node);
    }
    Ok(ResolvedPath {
        data_path,
        schema: parent,
        all_instances,
    })
}

/// The predicate selecting the entry with `keys` of a list (the value, of a leaf-list).
fn predicate(
    ctx: &Context,
    keypath: &str,
    node: &SchemaNode<'static>,
    keys: &[String],
) -> Result<String, DatastoreError> {
    if node.kind() == SchemaNodeKind::LeafList {
        return match keys {
            [value] => Ok(format!("[.={}]", quote(keypath, value)?)),
            _ => Err(bad_path(keypath, "a leaf-list entry takes one value")),
        };
    }
    let names: Vec<_> = node.list_keys().map(|k| k.name().to_owned()).collect();
    if names.is_empty() {
        return Err(bad_path(
            keypath,
            format!("{} has no keys: select an entry by [position]", node.name()),
        ));
    }
    if names.len() != keys.len() {
        return Err(bad_path(
            keypath,
            format!(
                "{} has {} key(s) ({}), {} given",
                node.name(),
                names.len(),
                names.join(" "),
                keys.len()
            ),
        ));
    }
    let mut out = String::new();
    for (key, value) in node.list_keys().zip(keys) {
        let value = match key.leaf_type().map(|t| t.base_type()) {
            Some(DataValueType::IdentityRef | DataValueType::InstanceId | DataValueType::Union) => {
                module_prefixes(ctx, value)
            }
            _ => value.clone(),
        };
        out.push_str(&format!("[{}={}]", key.name(), quote(keypath, &value)?));
    }
    Ok(out)
}

/// A keypath writes identities and instance-identifiers with module prefixes
/// (`op:link-down`, `/op:port[op:name='x']`), as NSO does; libyang's paths want its own
/// (canonical) form with module names: `oper:link-down`, and for an instance-identifier the
/// module named where it changes and key names bare (`/oper:port[name='x']`).
fn module_prefixes(ctx: &Context, value: &str) -> String {
    let module_of = |prefix: &str| {
        ctx.modules(false)
            .filter(|m| m.is_implemented())
            .find(|m| m.prefix() == prefix || m.name() == prefix)
            .map(|m| m.name().to_owned())
    };
    if !value.starts_with('/') {
        return match value.split_once(':') {
            Some((prefix, name)) => match module_of(prefix) {
                Some(module) => format!("{module}:{name}"),
                None => value.to_owned(),
            },
            None => value.to_owned(),
        };
    }
    let mut out = String::with_capacity(value.len());
    let mut current = String::new();
    for step in path_steps(value) {
        let (name, predicates) = step.split_at(step.find('[').unwrap_or(step.len()));
        out.push('/');
        match name.split_once(':') {
            Some((prefix, name)) => {
                let Some(module) = module_of(prefix) else {
                    return value.to_owned();
                };
                if module != current {
                    out.push_str(&module);
                    out.push(':');
                    current = module;
                }
                out.push_str(name);
            }
            None => out.push_str(name),
        }
        // `[p:key=...]` → `[key=...]`: keys are of the list's own module.
        let mut rest = predicates;
        while let Some(open) = rest.find('[') {
            out.push('[');
            rest = &rest[open + 1..];
            let end = rest.find('=').unwrap_or(rest.len());
            let key = &rest[..end];
            out.push_str(key.split_once(':').map_or(key, |(_, k)| k));
            rest = &rest[end..];
            let close = (predicate_end(rest) + 1).min(rest.len());
            out.push_str(&rest[..close]);
            rest = &rest[close..];
        }
    }
    out
}

/// The predicate selecting the n-th instance of `path` in `tree` (by its keys, its value, or
/// for a keyless list its position).
fn nth_instance(tree: &DataTree<'static>, path: &str, n: usize) -> Option<String> {
    let instances = super::find_xpath(tree, path).ok()?;
    let node = instances.into_iter().nth(n)?;
    let schema = node.schema();
    if schema.kind() == SchemaNodeKind::LeafList {
        let value = node.value_canonical()?;
        return quote(path, &value).ok().map(|q| format!("[.={q}]"));
    }
    let mut out = String::new();
    for key in node.list_keys() {
        let value = key.value_canonical()?;
        out.push_str(&format!(
            "[{}={}]",
            key.schema().name(),
            quote(path, &value).ok()?
        ));
    }
    if out.is_empty() {
        out = format!("[{}]", n + 1);
    }
    Some(out)
}

/// NSO's keypath of a data node: `/prefix:top/child{key}/...`, the prefix written where the
/// module changes.
pub fn nso_keypath(node: &DataNodeRef<'_>) -> String {
    let nodes: Vec<DataNodeRef<'_>> = node.inclusive_ancestors().collect();
    let mut out = String::new();
    let mut module = String::new();
    for n in nodes.iter().rev() {
        let schema = n.schema();
        let m = schema.module();
        out.push('/');
        if m.name() != module {
            out.push_str(m.prefix());
            out.push(':');
            module = m.name().to_owned();
        }
        out.push_str(schema.name());
        let keys: Vec<String> = n
            .list_keys()
            .map(|k| k.value_canonical().unwrap_or_default())
            .collect();
        if !keys.is_empty() {
            out.push_str(&format_keys(&keys));
        }
    }
    out
}

/// The characters of a data path with, for each, whether it stands outside every predicate
/// (and every quoted key value inside one): the `[` and `]` of a predicate are inside.
fn outside_predicates(path: &str) -> impl Iterator<Item = (usize, char, bool)> + '_ {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    path.char_indices().map(move |(i, c)| {
        let outside = match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                false
            }
            (Some(_), _) => false,
            (None, '\'' | '"') if depth > 0 => {
                quote = Some(c);
                false
            }
            (None, '[') => {
                depth += 1;
                false
            }
            (None, ']') => {
                depth = depth.saturating_sub(1);
                false
            }
            _ => depth == 0,
        };
        (i, c, outside)
    })
}

/// The data paths from the top down to `path` (itself last), split at the `/` that are not
/// inside a predicate.
pub fn path_prefixes(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = outside_predicates(path)
        .filter(|&(i, c, outside)| outside && c == '/' && i > 0)
        .map(|(i, _, _)| &path[..i])
        .collect();
    out.push(path);
    out
}

/// `path` without its predicates: the schema node's path.
pub fn strip_predicates(path: &str) -> String {
    outside_predicates(path)
        .filter(|&(_, _, outside)| outside)
        .map(|(_, c, _)| c)
        .collect()
}

/// Where the predicate whose inside starts `text` (just after its `[`) ends: the index of its
/// `]` (or the length of `text`, when it is not closed).
pub fn predicate_end(text: &str) -> usize {
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, ']') => return i,
            _ => {}
        }
    }
    text.len()
}

/// The steps of a data path (`/a:x/y[k='1/2']` → `a:x`, `y[k='1/2']`), split at the `/` that
/// are not inside a predicate.
pub fn path_steps(path: &str) -> Vec<&str> {
    let mut steps = Vec::new();
    let mut start = 0;
    for prefix in path_prefixes(path) {
        let step = &path[start..prefix.len()];
        steps.push(step.strip_prefix('/').unwrap_or(step));
        start = prefix.len();
    }
    steps
}

/// A libyang data path (module names where the module changes) written with the modules'
/// prefixes instead, as NSO prints XPath: `/tailf-ncs:devices/device[name='ce0']` →
/// `/ncs:devices/device[name='ce0']`.
pub fn prefixed_xpath(ctx: &Context, data_path: &str) -> String {
    let mut out = String::with_capacity(data_path.len());
    for step in path_steps(data_path) {
        out.push('/');
        match step.split_once(':') {
            Some((module, rest)) if !module.contains('[') => {
                let prefix = ctx
                    .get_module_latest(module)
                    .map(|m| m.prefix().to_owned())
                    .unwrap_or_else(|| module.to_owned());
                out.push_str(&prefix);
                out.push(':');
                out.push_str(rest);
            }
            _ => out.push_str(step),
        }
    }
    out
}

/// Formats key values as a keypath's `{...}`, quoting where needed.
pub fn format_keys(keys: &[String]) -> String {
    let parts: Vec<String> = keys
        .iter()
        .map(|k| {
            if !k.is_empty() && !k.chars().any(|c| c.is_whitespace() || "{}\"\\".contains(c)) {
                k.clone()
            } else {
                let escaped: String = k
                    .chars()
                    .flat_map(|c| match c {
                        '"' | '\\' => vec!['\\', c],
                        c => vec![c],
                    })
                    .collect();
                format!("\"{escaped}\"")
            }
        })
        .collect();
    format!("{{{}}}", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> &'static Context {
        crate::yang::test_context()
    }

    #[test]
    fn keypaths_parse_into_steps() {
        let steps = parse(r#"/ncs:devices/device{"a b" c\d}/address"#).unwrap();
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0].prefix.as_deref(), Some("ncs"));
        assert_eq!(
            steps[1].selector,
            Selector::Keys(vec!["a b".into(), "c\\d".into()])
        );
        assert_eq!(
            parse("/ncs:devices/device[2]").unwrap()[1].selector,
            Selector::Index(2)
        );
        assert!(parse("/").unwrap().is_empty());
        for bad in ["", "ncs:x", "/a//b", "/a/", "/a{b", "/a[x]", "/:a", "/a}b"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_are_quoted_only_when_needed() {
        assert_eq!(format_keys(&["ce0".into()]), "{ce0}");
        let keys = vec!["a b".into(), "x\"y".into(), String::new()];
        let formatted = format_keys(&keys);
        assert_eq!(formatted, r#"{"a b" "x\"y" ""}"#);
        let steps = parse(&format!("/ncs:devices/device{formatted}")).unwrap();
        assert_eq!(steps[1].selector, Selector::Keys(keys));
    }

    #[test]
    fn keypaths_resolve_to_libyang_paths() {
        let resolved = resolve(ctx(), None, "/ncs:python-vm/logging/level").unwrap();
        assert_eq!(resolved.data_path, "/tailf-ncs:python-vm/logging/level");
        assert_eq!(resolved.schema.unwrap().kind(), SchemaNodeKind::Leaf);
        // Without a prefix, and with the module name as prefix.
        let resolved = resolve(ctx(), None, "/tailf-ncs:python-vm/logging/vm-levels").unwrap();
        assert!(resolved.all_instances);
        let resolved = resolve(ctx(), None, "/python-vm/logging/vm-levels{it's}/level").unwrap();
        assert_eq!(
            resolved.data_path,
            "/tailf-ncs:python-vm/logging/vm-levels[node-id=\"it's\"]/level"
        );
        assert!(resolve(ctx(), None, "/ncs:python-vm/nothing").is_err());
        assert!(resolve(ctx(), None, "/ncs:python-vm/logging/vm-levels/level").is_err());
        assert!(resolve(ctx(), None, "/ncs:python-vm/logging/vm-levels{a b}").is_err());
        assert!(resolve(ctx(), None, "/ncs:python-vm/logging{a}").is_err());
    }

    #[test]
    fn positions_resolve_against_the_data() {
        let mut tree = DataTree::new(ctx());
        for vm in ["b", "a"] {
            tree.new_path(
                &format!("/tailf-ncs:python-vm/logging/vm-levels[node-id='{vm}']/level"),
                Some("level-debug"),
                false,
            )
            .unwrap();
        }
        // Positions count in data order; libyang keeps system-ordered lists sorted.
        let resolved = resolve(
            ctx(),
            Some(&tree),
            "/ncs:python-vm/logging/vm-levels[1]/level",
        )
        .unwrap();
        assert_eq!(
            resolved.data_path,
            "/tailf-ncs:python-vm/logging/vm-levels[node-id='b']/level"
        );
        assert!(matches!(
            resolve(ctx(), Some(&tree), "/ncs:python-vm/logging/vm-levels[2]"),
            Err(DatastoreError::DataMissing { .. })
        ));
    }

    #[test]
    fn data_paths_split_outside_predicates() {
        assert_eq!(
            path_prefixes("/a:x/y[k='1/2'][j=\"it's\"]/z[.='v]/']"),
            vec![
                "/a:x",
                "/a:x/y[k='1/2'][j=\"it's\"]",
                "/a:x/y[k='1/2'][j=\"it's\"]/z[.='v]/']",
            ]
        );
        assert_eq!(path_prefixes("/a:x"), vec!["/a:x"]);
        assert_eq!(path_steps("/a:x/y[k='1/2']"), vec!["a:x", "y[k='1/2']"]);
        assert_eq!(
            strip_predicates("/a:x/y[k='1/2']/z[.='v]']"),
            "/a:x/y/z".to_owned()
        );
    }
    #[test]
    fn identities_and_instance_identifiers_in_keys_get_module_names() {
        let ctx = crate::yang::test_context();
        assert_eq!(
            module_prefixes(ctx, "al:package-load-failure"),
            "tailf-ncs-alarms:package-load-failure"
        );
        assert_eq!(
            module_prefixes(ctx, "/ncs:packages/ncs:package[ncs:name='a]b']/ncs:name"),
            "/tailf-ncs:packages/package[name='a]b']/name"
        );
        assert_eq!(module_prefixes(ctx, "plain text"), "plain text");
        assert_eq!(module_prefixes(ctx, "/nope:x"), "/nope:x");
    }
}
