//! NETCONF access control (RFC 8341): what a user may read, write and execute, decided by the
//! `/nacm` configuration of running.
//!
//! An [`Access`] is the rules that apply to one user (those of the rule-lists of the user's
//! groups, in order) with the defaults; every operation of a session asks it. The decision for
//! one request, as §3.4 has it: the first rule (rule-lists in order, rules in order) whose
//! module, rule type and access operations match decides; without one, a node or operation
//! marked `nacm:default-deny-all` (or, for writes, `default-deny-write`) is denied, and
//! anything else gets `read-default`, `write-default` or `exec-default`.
//!
//! Choices where the RFC leaves room:
//! - A `path` rule matches the node it names and all below it (list entries by the keys in its
//!   predicates, or every entry without); its `module-name` must be `*`, the module of the
//!   node, or that of the node's top-level ancestor (augmented nodes stay under their
//!   parent's rules).
//! - Reading: a node denied by a rule is left out with all below it. A node denied only by
//!   default stays as the way to its descendants that a rule permits (with its list keys).
//! - Writing: every node that a change creates, deletes or replaces is checked, including
//!   all nodes of a created or deleted subtree (but non-presence containers, which mean
//!   nothing by themselves); one denial rejects the whole request.
//! - The recovery session of §2.5 is the server's bootstrap user (`--user`): it is never
//!   checked, so a configuration that locks everyone out can be repaired. The server's own
//!   work (services, Python transactions, startup) is not checked either.

use std::sync::atomic::{AtomicU64, Ordering};

use yang5::data::{Data, DataNodeRef, DataTree};
use yang5::schema::{SchemaNode, SchemaNodeKind};
use yang5::utils::Binding;

use super::changes::ChangeOperation;
use super::{DatastoreError, find_xpath, raw};

/// The namespace of ietf-netconf-acm.
pub const NS_NACM: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm";
const MODULE: &str = "ietf-netconf-acm";

/// What a request does to a node, operation or notification (`access-operations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Make a node.
    Create,
    /// See a node, or receive a notification.
    Read,
    /// Change a node's value.
    Update,
    /// Remove a node.
    Delete,
    /// Run an operation or action.
    Exec,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Exec => "exec",
        }
    }
}

/// The `/nacm` counters (config false), kept by the server.
#[derive(Debug, Default)]
pub struct Counters {
    /// Operations refused (`denied-operations`).
    pub denied_operations: AtomicU64,
    /// Writes refused (`denied-data-writes`).
    pub denied_data_writes: AtomicU64,
    /// Notifications not delivered (`denied-notifications`).
    pub denied_notifications: AtomicU64,
}

impl Counters {
    /// The counters as XML, for `get`.
    pub fn to_xml(&self) -> String {
        format!(
            "<nacm xmlns=\"{NS_NACM}\"><denied-operations>{}</denied-operations>\
             <denied-data-writes>{}</denied-data-writes>\
             <denied-notifications>{}</denied-notifications></nacm>",
            self.denied_operations.load(Ordering::Relaxed),
            self.denied_data_writes.load(Ordering::Relaxed),
            self.denied_notifications.load(Ordering::Relaxed)
        )
    }
}

/// One step of a data path: module, node name, and the key values (or leaf-list value, as
/// key `.`) that select instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The node's module.
    pub module: String,
    /// The node's name.
    pub name: String,
    /// Key name and value pairs.
    pub keys: Vec<(String, String)>,
}

/// What a rule is about.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RuleKind {
    /// No rule type: everything of its module.
    Any,
    /// `rpc-name`.
    Rpc(String),
    /// `notification-name`.
    Notification(String),
    /// `path`: the node and all below; empty for `/` (every node).
    Data(Vec<Step>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    module: String,
    kind: RuleKind,
    /// The access operations; `None` for `*`.
    operations: Option<Vec<String>>,
    permit: bool,
}

/// A request to decide.
enum Target<'a> {
    Rpc(&'a str),
    Notification(&'a str),
    Data(&'a [Step]),
    /// A whole module (`get-schema`).
    Module,
}

/// How a read of one node goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Permit,
    /// Denied by a rule: the node goes, with all below it.
    Deny,
    /// Denied by default: the node stays if something below it is permitted.
    DenyByDefault,
}

/// The rules that apply to one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// False: nothing is checked (NACM off, the recovery session, the server itself).
    enforced: bool,
    rules: Vec<Rule>,
    read_default: bool,
    write_default: bool,
    exec_default: bool,
}

impl Default for Access {
    /// No checks.
    fn default() -> Access {
        Access::unrestricted()
    }
}

impl Access {
    /// No checks: the server's own work, the recovery session.
    pub fn unrestricted() -> Access {
        Access {
            enforced: false,
            rules: Vec::new(),
            read_default: true,
            write_default: true,
            exec_default: true,
        }
    }

    /// True when nothing is checked.
    pub fn is_unrestricted(&self) -> bool {
        !self.enforced
    }

    /// The rules for `user` in the configuration `running`; the user also belongs to
    /// `external_groups` (the groups a Python user session names, RFC 8341's groups from
    /// outside `/nacm`; used while `enable-external-groups` is true).
    pub fn for_user(running: &DataTree<'_>, user: &str, external_groups: &[String]) -> Access {
        let leaf = |path: &str| {
            running
                .find_path(&format!("/{MODULE}:nacm/{path}"))
                .ok()
                .and_then(|n| n.value_canonical())
        };
        // The defaults of the module apply when running has no /nacm at all.
        let enabled = leaf("enable-nacm").is_none_or(|v| v == "true");
        if !enabled {
            return Access::unrestricted();
        }
        let mut groups: Vec<String> = find_xpath(running, &format!("/{MODULE}:nacm/groups/group"))
            .map(|groups| {
                groups
                    .iter()
                    .filter(|g| {
                        g.children().any(|c| {
                            c.schema().name() == "user-name"
                                && c.value_canonical().as_deref() == Some(user)
                        })
                    })
                    .filter_map(|g| child_value(g, "name"))
                    .collect()
            })
            .unwrap_or_default();
        if leaf("enable-external-groups").is_none_or(|v| v == "true") {
            groups.extend(external_groups.iter().cloned());
        }
        let mut rules = Vec::new();
        for list in find_xpath(running, &format!("/{MODULE}:nacm/rule-list")).unwrap_or_default() {
            let applies = list.children().any(|c| {
                c.schema().name() == "group"
                    && c.value_canonical()
                        .is_some_and(|g| g == "*" || groups.contains(&g))
            });
            if !applies {
                continue;
            }
            for rule in list.children().filter(|c| c.schema().name() == "rule") {
                rules.push(parse_rule(&rule));
            }
        }
        Access {
            enforced: true,
            rules,
            read_default: leaf("read-default").is_none_or(|v| v == "permit"),
            write_default: leaf("write-default").is_some_and(|v| v == "permit"),
            exec_default: leaf("exec-default").is_none_or(|v| v == "permit"),
        }
    }

    /// Whether the protocol operation `module:name` may run. `schema` is its schema node,
    /// for `default-deny-all`.
    pub fn rpc_allowed(&self, module: &str, name: &str, schema: Option<&SchemaNode<'_>>) -> bool {
        if !self.enforced {
            return true;
        }
        // RFC 8341 §3.2.6 (and RFC 6241's module): kill-session and delete-config are
        // default-deny-all.
        let deny_all = (module == "ietf-netconf"
            && matches!(name, "kill-session" | "delete-config"))
            || schema.is_some_and(|s| marked(s, "default-deny-all"));
        self.decide(Operation::Exec, module, None, &Target::Rpc(name))
            .unwrap_or(!deny_all && self.exec_default)
    }

    /// Whether the notification `module:name` may be sent to this user.
    pub fn notification_allowed(
        &self,
        module: &str,
        name: &str,
        schema: Option<&SchemaNode<'_>>,
    ) -> bool {
        if !self.enforced {
            return true;
        }
        self.decide(Operation::Read, module, None, &Target::Notification(name))
            .unwrap_or_else(|| {
                !schema.is_some_and(|s| marked(s, "default-deny-all")) && self.read_default
            })
    }

    /// Whether the action at `path` (its steps, the action last) may run: `exec` on it.
    pub fn action_allowed(&self, path: &[Step], schema: Option<&SchemaNode<'_>>) -> bool {
        if !self.enforced {
            return true;
        }
        let Some(last) = path.last() else {
            return self.exec_default;
        };
        let top = path.first().map(|s| s.module.as_str());
        self.decide(Operation::Exec, &last.module, top, &Target::Data(path))
            .unwrap_or_else(|| {
                !schema.is_some_and(|s| marked_in_ancestors(s, &["default-deny-all"]))
                    && self.exec_default
            })
    }

    /// Whether the module `module` may be read as a whole (`get-schema`): denied only by a
    /// rule for the whole module, or for `/`.
    pub fn module_readable(&self, module: &str) -> bool {
        !self.enforced
            || self
                .decide(Operation::Read, module, None, &Target::Module)
                .unwrap_or(self.read_default)
    }

    /// A copy of `tree` without what this user may not read, or `None` when the user may read
    /// all of it (then no copy is made).
    ///
    /// With `read-default` permit (the usual case) only the nodes that a rule or
    /// `default-deny-all` could deny are looked at: the instances of the deny rules' paths and
    /// of the marked schema nodes, each decided as a whole request would be. A rule that denies
    /// a whole module, or `read-default` deny, needs the walk over every node.
    ///
    /// # Errors
    /// Copying the tree failed.
    pub fn readable(
        &self,
        tree: &DataTree<'static>,
    ) -> Result<Option<DataTree<'static>>, DatastoreError> {
        if !self.enforced {
            return Ok(None);
        }
        let doomed = match self.candidates(tree) {
            Some(candidates) => {
                let mut doomed = Vec::new();
                for node in candidates {
                    if !self.visit_read(&node, &mut doomed) {
                        doomed.push(node.as_raw());
                    }
                }
                doomed
            }
            None => {
                let mut doomed = Vec::new();
                if let Some(first) = tree.reference() {
                    for top in first.inclusive_siblings() {
                        if !self.visit_read(&top, &mut doomed) {
                            doomed.push(top.as_raw());
                        }
                    }
                }
                doomed
            }
        };
        // A node below another that goes, goes with it.
        let set: std::collections::HashSet<raw::Node> = doomed.iter().copied().collect();
        // SAFETY: nodes of `tree`, which is borrowed for this whole call.
        let doomed: Vec<raw::Node> = doomed
            .into_iter()
            .filter(|&n| unsafe { !has_ancestor_in(n, &set) })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if doomed.is_empty() {
            return Ok(None);
        }
        // Where each doomed node is, as child positions from the top, to find it in the copy.
        // SAFETY: as above.
        let places: Vec<Vec<usize>> = doomed.iter().map(|&n| unsafe { position(n) }).collect();
        let ctx = tree.context();
        raw::clear_errors(ctx);
        let copy = tree.duplicate().map_err(|_| raw::last_error(ctx))?;
        let mut head = copy.into_raw();
        // SAFETY: `head` heads the copy we own, which has the shape of `tree`, so every place
        // names a node of it; they are all found before any is freed, and as none is below
        // another, freeing one leaves the others valid.
        unsafe {
            let nodes: Vec<raw::Node> = places.iter().map(|p| follow(head, p)).collect();
            for node in nodes.into_iter().rev().filter(|n| !n.is_null()) {
                raw::free(&mut head, node);
            }
            Ok(Some(DataTree::from_raw(ctx, head)))
        }
    }

    /// The nodes of `tree` that the rules or `default-deny-all` could keep from this user, or
    /// `None` when every node has to be looked at.
    fn candidates<'a>(&self, tree: &'a DataTree<'static>) -> Option<Vec<DataNodeRef<'a>>> {
        if !self.read_default {
            return None;
        }
        let mut paths = Vec::new();
        for rule in self.rules.iter().filter(|r| {
            !r.permit
                && r.operations
                    .as_ref()
                    .is_none_or(|ops| ops.iter().any(|o| o == "read"))
        }) {
            match &rule.kind {
                RuleKind::Any => return None,
                RuleKind::Data(path) if path.is_empty() => return None,
                RuleKind::Data(path) => paths.push(xpath_of(path)?),
                RuleKind::Rpc(_) | RuleKind::Notification(_) => {}
            }
        }
        paths.extend(deny_all_paths(tree.context()));
        let mut found = Vec::new();
        for path in paths {
            found.extend(find_xpath(tree, &path).ok()?);
        }
        Some(found)
    }

    /// Whether `node` stays; collects what goes below it.
    fn visit_read(&self, node: &DataNodeRef<'_>, doomed: &mut Vec<raw::Node>) -> bool {
        let verdict = self.read_verdict(node);
        if verdict == Read::Deny {
            return false;
        }
        let mut any_child = false;
        for child in node.children() {
            // A list entry's keys go with the entry.
            if child.schema().is_list_key() {
                continue;
            }
            if self.visit_read(&child, doomed) {
                any_child = true;
            } else {
                doomed.push(child.as_raw());
            }
        }
        verdict == Read::Permit || any_child
    }

    fn read_verdict(&self, node: &DataNodeRef<'_>) -> Read {
        let path = steps(node);
        let module = node.schema().module().name().to_owned();
        let top = path.first().map(|s| s.module.clone());
        match self.decide(
            Operation::Read,
            &module,
            top.as_deref(),
            &Target::Data(&path),
        ) {
            Some(true) => Read::Permit,
            Some(false) => Read::Deny,
            None if marked_in_ancestors(&node.schema(), &["default-deny-all"]) => {
                Read::DenyByDefault
            }
            None if self.read_default => Read::Permit,
            None => Read::DenyByDefault,
        }
    }

    /// Checks every change from `old` to `new`; the first one denied is the error.
    ///
    /// # Errors
    /// [`DatastoreError::AccessDenied`] naming the node.
    pub fn check_write(
        &self,
        old: &DataTree<'static>,
        new: &DataTree<'static>,
    ) -> Result<(), DatastoreError> {
        if !self.enforced {
            return Ok(());
        }
        let ctx = old.context();
        raw::clear_errors(ctx);
        let diff = old
            .diff(new, yang5::data::DataDiffFlags::empty())
            .map_err(|_| raw::last_error(ctx))?;
        let Some(first) = diff.tree().reference() else {
            return Ok(());
        };
        for top in first
            .inclusive_siblings()
            .filter(|n| n.schema().module().name() != super::bookkeeping::MODULE)
        {
            self.check_change(&top, None)?;
        }
        Ok(())
    }

    fn check_change(
        &self,
        node: &DataNodeRef<'_>,
        inherited: Option<Operation>,
    ) -> Result<(), DatastoreError> {
        let own = super::changes::diff_operation(node).map(|op| match op {
            ChangeOperation::Create => Operation::Create,
            ChangeOperation::Delete => Operation::Delete,
            ChangeOperation::Replace => Operation::Update,
        });
        let operation = own.or(inherited);
        // A non-presence container means nothing by itself: what is below it is checked.
        // SAFETY: a node of the diff tree, which lives for this call.
        let meaningful = !unsafe { raw::is_np_container(node.as_raw()) };
        if let Some(operation) = operation.filter(|_| meaningful) {
            let path = steps(node);
            let module = node.schema().module().name().to_owned();
            let top = path.first().map(|s| s.module.clone());
            let allowed = self
                .decide(operation, &module, top.as_deref(), &Target::Data(&path))
                .unwrap_or_else(|| {
                    !marked_in_ancestors(
                        &node.schema(),
                        &["default-deny-all", "default-deny-write"],
                    ) && self.write_default
                });
            if !allowed {
                return Err(DatastoreError::AccessDenied {
                    operation: operation.name(),
                    path: node.path(),
                });
            }
        }
        let passed_on = match own {
            Some(Operation::Create | Operation::Delete) => own,
            _ => inherited,
        };
        for child in node.children() {
            self.check_change(&child, passed_on)?;
        }
        Ok(())
    }

    /// The decision of the first matching rule, if one matches. `module` is the module of
    /// the node or operation, `top_module` that of a node's top-level ancestor.
    fn decide(
        &self,
        operation: Operation,
        module: &str,
        top_module: Option<&str>,
        target: &Target<'_>,
    ) -> Option<bool> {
        let module_matches = |rule: &Rule| {
            rule.module == "*" || rule.module == module || Some(rule.module.as_str()) == top_module
        };
        self.rules
            .iter()
            .find(|rule| {
                let operation_matches = rule
                    .operations
                    .as_ref()
                    .is_none_or(|ops| ops.iter().any(|o| o == operation.name()));
                operation_matches
                    && match (&rule.kind, target) {
                        (RuleKind::Any, _) => module_matches(rule),
                        (RuleKind::Rpc(name), Target::Rpc(rpc)) => {
                            module_matches(rule) && (name == "*" || name == rpc)
                        }
                        (RuleKind::Notification(name), Target::Notification(n)) => {
                            module_matches(rule) && (name == "*" || name == n)
                        }
                        (RuleKind::Data(path), Target::Data(node)) => {
                            module_matches(rule) && covers(path, node)
                        }
                        (RuleKind::Data(path), Target::Module) => path.is_empty(),
                        _ => false,
                    }
            })
            .map(|rule| rule.permit)
    }
}

/// An XPath that selects the instances of a rule path (every step qualified); `None` if a
/// key value holds both kinds of quotes.
fn xpath_of(path: &[Step]) -> Option<String> {
    let mut out = String::new();
    for step in path {
        out.push_str(&format!("/{}:{}", step.module, step.name));
        for (key, value) in &step.keys {
            let quote = if !value.contains('\'') {
                '\''
            } else if !value.contains('"') {
                '"'
            } else {
                return None;
            };
            out.push_str(&format!("[{key}={quote}{value}{quote}]"));
        }
    }
    Some(out)
}

/// The schema paths of the data nodes marked `default-deny-all` in `ctx`, found once per
/// context.
fn deny_all_paths(ctx: &'static yang5::context::Context) -> Vec<String> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static FOUND: Mutex<Option<HashMap<usize, Vec<String>>>> = Mutex::new(None);
    let key = std::ptr::from_ref(ctx) as usize;
    let mut found = FOUND.lock().unwrap_or_else(|p| p.into_inner());
    found
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_insert_with(|| {
            ctx.traverse()
                .filter(|s| {
                    !matches!(
                        s.kind(),
                        SchemaNodeKind::Rpc
                            | SchemaNodeKind::Action
                            | SchemaNodeKind::Notification
                            | SchemaNodeKind::Input
                            | SchemaNodeKind::Output
                            | SchemaNodeKind::Choice
                            | SchemaNodeKind::Case
                    ) && marked(s, "default-deny-all")
                })
                .map(|s| s.path(yang5::schema::SchemaPathFormat::DATA))
                .collect()
        })
        .clone()
}

/// Whether an ancestor of `node` is in `set`.
///
/// # Safety
/// `node` must be a valid node.
unsafe fn has_ancestor_in(node: raw::Node, set: &std::collections::HashSet<raw::Node>) -> bool {
    unsafe {
        let mut parent = raw::parent(node);
        while !parent.is_null() {
            if set.contains(&parent) {
                return true;
            }
            parent = raw::parent(parent);
        }
        false
    }
}

/// The child positions from the top of the tree down to `node` (the first: among the
/// top-level siblings).
///
/// # Safety
/// `node` must be a valid node.
unsafe fn position(node: raw::Node) -> Vec<usize> {
    unsafe {
        let mut places = Vec::new();
        let mut n = node;
        while !n.is_null() {
            let mut index = 0;
            let mut sibling = raw::first_sibling(n);
            while sibling != n {
                index += 1;
                sibling = (*sibling).next;
            }
            places.push(index);
            n = raw::parent(n);
        }
        places.reverse();
        places
    }
}

/// The node at `places` (see [`position`]) below the top-level node `head`.
///
/// # Safety
/// `head` must head a valid tree with a node at `places`.
unsafe fn follow(head: raw::Node, places: &[usize]) -> raw::Node {
    unsafe {
        let mut level = head;
        let mut node = std::ptr::null_mut();
        for &index in places {
            node = level;
            for _ in 0..index {
                if node.is_null() {
                    return node;
                }
                node = (*node).next;
            }
            if node.is_null() {
                return node;
            }
            level = raw::child(node);
        }
        node
    }
}

/// Reads one `rule` entry.
fn parse_rule(rule: &DataNodeRef<'_>) -> Rule {
    let value = |name: &str| child_value(rule, name);
    // The rule-type choice: its leaves sit directly under the rule.
    let kind = if let Some(rpc) = value("rpc-name") {
        RuleKind::Rpc(rpc)
    } else if let Some(notification) = value("notification-name") {
        RuleKind::Notification(notification)
    } else if let Some(path) = value("path") {
        RuleKind::Data(parse_path(&path))
    } else {
        RuleKind::Any
    };
    let operations = value("access-operations").unwrap_or_else(|| "*".into());
    Rule {
        module: value("module-name").unwrap_or_else(|| "*".into()),
        kind,
        operations: (operations.trim() != "*")
            .then(|| operations.split_whitespace().map(str::to_string).collect()),
        permit: value("action").as_deref() == Some("permit"),
    }
}

fn child_value(node: &DataNodeRef<'_>, name: &str) -> Option<String> {
    node.children()
        .find(|c| c.schema().name() == name)
        .and_then(|c| c.value_canonical())
}

/// Whether the rule path `rule` names `node` or one of its ancestors.
fn covers(rule: &[Step], node: &[Step]) -> bool {
    rule.len() <= node.len()
        && rule.iter().zip(node).all(|(r, n)| {
            r.name == n.name
                && r.module == n.module
                && r.keys
                    .iter()
                    .all(|(k, v)| n.keys.iter().any(|(nk, nv)| nk == k && nv == v))
        })
}

/// The steps of a data node's path.
pub fn steps(node: &DataNodeRef<'_>) -> Vec<Step> {
    let mut out: Vec<Step> = node
        .inclusive_ancestors()
        .map(|n| {
            let schema = n.schema();
            let keys = match schema.kind() {
                SchemaNodeKind::List => n
                    .list_keys()
                    .map(|k| {
                        (
                            k.schema().name().to_owned(),
                            k.value_canonical().unwrap_or_default(),
                        )
                    })
                    .collect(),
                SchemaNodeKind::LeafList => {
                    vec![(".".to_owned(), n.value_canonical().unwrap_or_default())]
                }
                _ => Vec::new(),
            };
            Step {
                module: schema.module().name().to_owned(),
                name: schema.name().to_owned(),
                keys,
            }
        })
        .collect();
    out.reverse();
    out
}

/// Parses a `path` as libyang gives it (module names as prefixes, where the module changes):
/// `/ietf-system:system/authentication/user[name='alice']`. `/` is every node (no steps).
pub fn parse_path(path: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut module = String::new();
    for part in split_steps(path) {
        let (name_part, predicates) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part.as_str(), ""),
        };
        let name = match name_part.split_once(':') {
            Some((m, n)) => {
                module = m.to_owned();
                n.to_owned()
            }
            None => name_part.to_owned(),
        };
        steps.push(Step {
            module: module.clone(),
            name,
            keys: parse_predicates(predicates),
        });
    }
    steps
}

/// The steps of a path, split at `/` outside predicates and quotes.
fn split_steps(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for c in path.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => depth -= 1,
            (None, '/') if depth == 0 => {
                if !current.trim().is_empty() {
                    parts.push(std::mem::take(&mut current).trim().to_owned());
                }
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        parts.push(current.trim().to_owned());
    }
    parts
}

/// `[a='1'][b="2"]` → `[("a","1"), ("b","2")]`; a key's prefix is dropped; positional
/// predicates select nothing in particular and are ignored.
fn parse_predicates(text: &str) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    for predicate in text.split(']').filter_map(|p| p.trim().strip_prefix('[')) {
        let Some((key, value)) = predicate.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let key = key.rsplit(':').next().unwrap_or(key).to_owned();
        let value = value.trim().trim_matches(['\'', '"']).to_owned();
        keys.push((key, value));
    }
    keys
}

/// Whether `schema` carries the NACM extension `name`.
fn marked(schema: &SchemaNode<'_>, name: &str) -> bool {
    crate::yang::has_extension(schema, MODULE, name)
}

/// Whether `schema` or one of its ancestors carries one of the NACM extensions `names`.
fn marked_in_ancestors(schema: &SchemaNode<'_>, names: &[&str]) -> bool {
    schema
        .inclusive_ancestors()
        .any(|s| names.iter().any(|name| marked(&s, name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use yang5::data::{DataFormat, DataParserFlags, DataPrinterFlags, DataValidationFlags};

    fn tree(xml: &str) -> DataTree<'static> {
        DataTree::parse_string(
            crate::yang::test_context(),
            xml,
            DataFormat::XML,
            DataParserFlags::STRICT | DataParserFlags::NO_VALIDATION,
            DataValidationFlags::empty(),
        )
        .unwrap()
    }

    const RULES: &str = r#"<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm">
        <groups><group><name>ops</name><user-name>olga</user-name></group></groups>
        <rule-list><name>ops</name><group>ops</group>
          <rule><name>no-vm-levels</name><module-name>tailf-ncs</module-name>
            <path xmlns:ncs="http://tail-f.com/ns/ncs">/ncs:python-vm/ncs:logging/ncs:vm-levels[ncs:node-id='secret']</path>
            <access-operations>*</access-operations><action>deny</action></rule>
          <rule><name>logging</name><module-name>tailf-ncs</module-name>
            <path xmlns:ncs="http://tail-f.com/ns/ncs">/ncs:python-vm/ncs:logging</path>
            <access-operations>create update</access-operations><action>permit</action></rule>
          <rule><name>no-kill</name><module-name>ietf-netconf</module-name>
            <rpc-name>get-config</rpc-name><access-operations>exec</access-operations>
            <action>deny</action></rule>
        </rule-list></nacm>"#;

    const DATA: &str = r#"<python-vm xmlns="http://tail-f.com/ns/ncs"><logging>
        <level>level-info</level>
        <vm-levels><node-id>secret</node-id><level>level-debug</level></vm-levels>
        <vm-levels><node-id>open</node-id><level>level-error</level></vm-levels>
        </logging></python-vm>"#;

    #[test]
    fn rules_decide_reads_writes_and_operations() {
        let running = tree(RULES);
        let olga = Access::for_user(&running, "olga", &[]);
        assert!(!olga.is_unrestricted());
        // Reads: the denied entry goes, the rest stays.
        let pruned = olga
            .readable(&tree(DATA))
            .unwrap()
            .expect("something is hidden");
        let xml = pruned
            .print_string(DataFormat::XML, DataPrinterFlags::WITH_SIBLINGS)
            .unwrap();
        assert!(!xml.contains("secret") && xml.contains("open"), "{xml}");
        // Operations: get-config is denied by a rule, get permitted by default.
        assert!(!olga.rpc_allowed("ietf-netconf", "get-config", None));
        assert!(olga.rpc_allowed("ietf-netconf", "get", None));
        // Writes: under logging, create and update only; elsewhere write-default (deny).
        let old = tree(DATA);
        let changed = tree(&DATA.replace("level-info", "level-error"));
        olga.check_write(&old, &changed).unwrap();
        let removed = tree(&DATA.replace(
            "<vm-levels><node-id>open</node-id><level>level-error</level></vm-levels>",
            "",
        ));
        let err = olga.check_write(&old, &removed).unwrap_err();
        assert!(
            matches!(
                err,
                DatastoreError::AccessDenied {
                    operation: "delete",
                    ..
                }
            ),
            "{err}"
        );
        // A user in no group gets the defaults only; the recovery session nothing.
        let other = Access::for_user(&running, "someone", &[]);
        assert!(other.rpc_allowed("ietf-netconf", "get-config", None));
        assert!(other.check_write(&old, &changed).is_err());
        assert!(Access::unrestricted().check_write(&old, &removed).is_ok());
        // Nothing to hide: no copy.
        let nothing_hidden = tree(&DATA.replace("secret", "public"));
        assert!(olga.readable(&nothing_hidden).unwrap().is_none());
        assert!(
            Access::unrestricted()
                .readable(&tree(DATA))
                .unwrap()
                .is_none()
        );
    }

    /// /nacm is default-deny-all: hidden from a user without a rule for it, found without a
    /// walk over every node; with read-default deny, the walk keeps what a rule permits.
    #[test]
    fn default_deny_all_and_read_default_deny() {
        let running = tree(RULES);
        let olga = Access::for_user(&running, "olga", &[]);
        let both = tree(&format!("{RULES}{DATA}"));
        let xml = olga
            .readable(&both)
            .unwrap()
            .unwrap()
            .print_string(DataFormat::XML, DataPrinterFlags::WITH_SIBLINGS)
            .unwrap();
        assert!(!xml.contains("<nacm") && xml.contains("open"), "{xml}");
        let strict = tree(&RULES.replace("<groups>", "<read-default>deny</read-default><groups>"));
        let olga = Access::for_user(&strict, "olga", &[]);
        let pruned = olga.readable(&tree(DATA)).unwrap();
        let xml = pruned.map(|t| {
            t.print_string(DataFormat::XML, DataPrinterFlags::WITH_SIBLINGS)
                .unwrap()
        });
        // Nothing is permitted to read: nothing is left.
        assert!(
            xml.as_deref().unwrap_or_default().trim().is_empty(),
            "{xml:?}"
        );
    }

    #[test]
    fn paths_parse_into_steps() {
        let steps = parse_path("/ietf-system:system/authentication/user[name='alice']/password");
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[2].module, "ietf-system");
        assert_eq!(steps[2].keys, [("name".to_owned(), "alice".to_owned())]);
        assert!(parse_path("/").is_empty());
        let quoted = parse_path("/m:a[k=\"x/y\"]/m2:b");
        assert_eq!(quoted[0].keys, [("k".to_owned(), "x/y".to_owned())]);
        assert_eq!(quoted[1].module, "m2");
    }

    #[test]
    fn a_path_covers_its_subtree_and_matching_entries() {
        let rule = parse_path("/m:a/l[k='1']");
        assert!(covers(&rule, &parse_path("/m:a/l[k='1']/x")));
        assert!(!covers(&rule, &parse_path("/m:a/l[k='2']/x")));
        assert!(!covers(&rule, &parse_path("/m:a")));
        assert!(covers(&parse_path("/m:a/l"), &parse_path("/m:a/l[k='2']")));
        assert!(covers(&[], &parse_path("/m:a")));
    }
}
