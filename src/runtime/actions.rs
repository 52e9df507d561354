//! Package actions: YANG `action`s (and `tailf:action`s, which load as actions) and `rpc`s that
//! name a `tailf:actionpoint`, run by the class a VM registered for the point
//! (`Application.register_action`), whose `cb_action(uinfo, name, kp, input, output[, trans])`
//! gets the input and fills the output.
//!
//! The input goes to the VM as JSON shaped like the data (leaf → string, empty leaf → true,
//! container → object, list → array of objects, leaf-list → array of strings), with a
//! description of the input and output schema, from which `ncs._vm` builds maagic-style
//! parameter objects. The output comes back as JSON of the same shape; it is built into a
//! libyang reply and validated before the client sees it.

use serde_json::{Map, Value, json};
use yang5::data::{Data, DataNodeRef, DataPrinterFlags, DataTree};
use yang5::iter::NodeIterable;
use yang5::schema::{DataValueType, SchemaNode, SchemaNodeKind};

use super::alarms::ManagedObject;
use super::maapi::{kind_name, type_name};
use crate::datastore::keypath::{self, data_nodes, nso_keypath};
use crate::yang::extension_argument;

/// The module that declares `tailf:actionpoint`.
const TAILF_COMMON: &str = "tailf-common";

/// A package action invocation, as the VM gets it.
#[derive(Debug, Clone)]
pub struct PackageAction {
    /// The actionpoint.
    pub point: String,
    /// The action's (or rpc's) name.
    pub name: String,
    /// NSO's `kp`: the keypath of the node the action belongs to (`/dm:tools/host{h1}`); for
    /// an rpc, the rpc's own (`/dm:echo`).
    pub keypath: String,
    /// The libyang data path of the action (or rpc) node, where the output goes.
    pub data_path: String,
    /// The input (see the module documentation).
    pub input: Value,
    /// The input and output schema: `{"input": [...], "output": [...]}`.
    pub params: Value,
    /// What a self-assign alarm raised in the callback is about.
    pub managed_object: ManagedObject,
}

/// The actionpoint of an action or rpc schema node.
pub fn actionpoint(node: &SchemaNode<'_>) -> Option<String> {
    extension_argument(node, TAILF_COMMON, "actionpoint")
}

/// Reads the invocation out of a parsed action or rpc (`op` is the action or rpc node of the
/// request's tree). `None` when the node names no actionpoint.
pub fn package_action(op: &DataNodeRef<'_>) -> Option<PackageAction> {
    let schema = op.schema();
    let point = actionpoint(&schema)?;
    let parent = op.parent();
    let keypath = match &parent {
        Some(parent) => nso_keypath(parent),
        None => format!("/{}:{}", schema.module().prefix(), schema.name()),
    };
    let managed_object = match &parent {
        Some(parent) => ManagedObject::of_data_node(parent),
        None => ManagedObject::of_data_node(op),
    };
    Some(PackageAction {
        point,
        name: schema.name().to_owned(),
        keypath,
        data_path: op.path(),
        input: children_json(op),
        params: json!({
            "input": schema.input().map(|(i, _)| describe(data_nodes(i))).unwrap_or_default(),
            "output": schema.output().map(|(o, _)| describe(data_nodes(o))).unwrap_or_default(),
        }),
        managed_object,
    })
}

/// The children of a data node as JSON (see the module documentation).
fn children_json(node: &DataNodeRef<'_>) -> Value {
    let mut object = Map::new();
    for child in node.children() {
        let schema = child.schema();
        let name = schema.name().to_owned();
        match schema.kind() {
            SchemaNodeKind::Leaf => {
                let is_empty = schema
                    .leaf_type()
                    .is_some_and(|t| t.base_type() == DataValueType::Empty);
                let value = if is_empty {
                    Value::Bool(true)
                } else {
                    Value::String(child.value_canonical().unwrap_or_default())
                };
                object.insert(name, value);
            }
            SchemaNodeKind::LeafList => push(&mut object, name, json!(child.value_canonical())),
            SchemaNodeKind::List => push(&mut object, name, children_json(&child)),
            SchemaNodeKind::Container => {
                object.insert(name, children_json(&child));
            }
            _ => {}
        }
    }
    Value::Object(object)
}

fn push(object: &mut Map<String, Value>, name: String, value: Value) {
    match object
        .entry(name)
        .or_insert_with(|| Value::Array(Vec::new()))
    {
        Value::Array(items) => items.push(value),
        other => *other = Value::Array(vec![value]),
    }
}

/// Describes schema nodes, recursively, for `ncs._vm`.
fn describe(nodes: Vec<SchemaNode<'_>>) -> Value {
    let out: Vec<Value> = nodes
        .into_iter()
        .map(|child| {
            json!({
                "name": child.name(),
                "kind": kind_name(&child),
                "type": type_name(&child),
                "presence": child.kind() == SchemaNodeKind::Container && !child.is_np_container(),
                "keys": child.list_keys().map(|k| k.name().to_owned()).collect::<Vec<_>>(),
                "default": keypath::default_value(&child),
                "children": describe(data_nodes(child.children())),
            })
        })
        .collect();
    Value::Array(out)
}

/// Builds the reply of `action` from the callback's output JSON and validates it (against
/// `running`, for leafrefs into the configuration). Returns the output children as XML.
pub fn reply_xml(
    running: &DataTree<'static>,
    action: &PackageAction,
    output: &Value,
) -> Result<String, String> {
    let ctx = running.context();
    crate::datastore::clear_errors(ctx);
    let mut tree = DataTree::new(ctx);
    tree.new_path(&action.data_path, None, true)
        .map_err(|e| format!("cannot build the reply: {e}"))?;
    let mut paths = Vec::new();
    {
        let op = tree
            .find_path(&action.data_path)
            .map_err(|e| format!("cannot build the reply: {e}"))?;
        let op_schema = op.schema();
        if let Some((output_schema, _)) = op_schema.output() {
            output_paths(
                &data_nodes(output_schema),
                op_schema.module().name(),
                &action.data_path,
                output,
                &mut paths,
            )?;
        }
    }
    for (path, value) in paths {
        tree.new_path(&path, value.as_deref(), true)
            .map_err(|e| format!("the output does not fit the model at {path}: {e}"))?;
    }
    let top = tree
        .reference()
        .ok_or_else(|| "cannot build the reply".to_owned())?;
    // SAFETY: both trees are alive and of the same context; libyang only reads `running`.
    let rc = unsafe {
        yang5::ffi::lyd_validate_op(
            top.as_raw(),
            running
                .reference()
                .map_or(std::ptr::null(), |r| r.as_raw() as *const _),
            yang5::ffi::lyd_type::LYD_TYPE_REPLY_YANG,
            std::ptr::null_mut(),
        )
    };
    if rc != yang5::ffi::LY_ERR::LY_SUCCESS {
        return Err(format!(
            "the output is not valid: {}",
            crate::datastore::last_error(ctx)
        ));
    }
    let op = tree
        .find_path(&action.data_path)
        .map_err(|e| format!("cannot print the reply: {e}"))?;
    let mut xml = String::new();
    for child in op.children() {
        xml.push_str(
            &child
                .print_string(yang5::data::DataFormat::XML, DataPrinterFlags::SHRINK)
                .map_err(|e| format!("cannot print the reply: {e}"))?,
        );
    }
    Ok(xml)
}

/// The paths (and values) to create for `value`, whose nodes are `children` (of a parent of
/// module `module`), at `base`.
fn output_paths(
    children: &[SchemaNode<'_>],
    module: &str,
    base: &str,
    value: &Value,
    out: &mut Vec<(String, Option<String>)>,
) -> Result<(), String> {
    let Value::Object(object) = value else {
        return Err(format!(
            "the output at {base} must be an object, not {value}"
        ));
    };
    for (name, value) in object {
        let child = children
            .iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| format!("the output has no node {name} at {base}"))?;
        let child_module = child.module();
        let path = if child_module.name() == module {
            format!("{base}/{}", child.name())
        } else {
            format!("{base}/{}:{}", child_module.name(), child.name())
        };
        let grandchildren = data_nodes(child.children());
        match child.kind() {
            SchemaNodeKind::Leaf => {
                let is_empty = child
                    .leaf_type()
                    .is_some_and(|t| t.base_type() == DataValueType::Empty);
                match (is_empty, value) {
                    (true, Value::Bool(true)) => out.push((path, None)),
                    (true, Value::Bool(false) | Value::Null) | (false, Value::Null) => {}
                    (false, v) => {
                        let text = scalar(v, &path)?;
                        out.push((path, Some(text)));
                    }
                    (true, other) => return Err(format!("{path} is empty-typed, not {other}")),
                }
            }
            SchemaNodeKind::LeafList => {
                let Value::Array(items) = value else {
                    return Err(format!("{path} is a leaf-list: give a list"));
                };
                for item in items {
                    let text = scalar(item, &path)?;
                    out.push((format!("{path}[.={}]", quote(&text)?), None));
                }
            }
            SchemaNodeKind::Container => {
                out.push((path.clone(), None));
                output_paths(&grandchildren, child_module.name(), &path, value, out)?;
            }
            SchemaNodeKind::List => {
                let Value::Array(entries) = value else {
                    return Err(format!("{path} is a list: give a list of entries"));
                };
                for entry in entries {
                    let mut entry_path = path.clone();
                    for key in child.list_keys() {
                        let key_value = entry.get(key.name()).ok_or_else(|| {
                            format!("an entry of {path} lacks its key {}", key.name())
                        })?;
                        entry_path.push_str(&format!(
                            "[{}={}]",
                            key.name(),
                            quote(&scalar(key_value, &path)?)?
                        ));
                    }
                    out.push((entry_path.clone(), None));
                    output_paths(&grandchildren, child_module.name(), &entry_path, entry, out)?;
                }
            }
            _ => return Err(format!("{path} cannot be set in an output")),
        }
    }
    Ok(())
}

fn scalar(value: &Value, path: &str) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("{path} takes a single value, not {other}")),
    }
}

fn quote(value: &str) -> Result<String, String> {
    if !value.contains('\'') {
        Ok(format!("'{value}'"))
    } else if !value.contains('"') {
        Ok(format!("\"{value}\""))
    } else {
        Err(format!(
            "a value with both kinds of quote cannot be a key: {value}"
        ))
    }
}
