//! Actions: YANG 1.1 `<action xmlns="urn:ietf:params:xml:ns:yang:1">` (RFC 7950 §7.15.2) and
//! NSO's older `<action xmlns="http://tail-f.com/ns/netconf/actions/1.0"><data>…</data></action>`,
//! whose reply wraps the output in `<data>` and the path to the action.

use std::fmt::Write as _;

use yang5::data::{Data, DataFormat, DataNodeRef, DataOperation, DataParserFlags, DataTree};
use yang5::iter::NodeIterable;
use yang5::schema::SchemaNodeKind;

use super::{Call, OpOutcome, blocking};
use crate::netconf::error::{ErrorInfo, ErrorTag, ErrorType, RpcError};
use crate::netconf::rpc::OpResult;
use crate::netconf::xml::{self, Element, escape_text};
use crate::runtime::packages::NCS_NS;
use crate::runtime::{ActionCall, ActionError, PackageAction};

/// The YANG 1.1 action namespace.
pub const NS_YANG_ACTION: &str = "urn:ietf:params:xml:ns:yang:1";
/// NSO's action namespace (announced as a capability).
pub const NS_TAILF_ACTIONS: &str = "http://tail-f.com/ns/netconf/actions/1.0";

/// How the reply is shaped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Output leaves directly in `<rpc-reply>`.
    Yang11,
    /// Output inside `<data>` and the path to the action node.
    Tailf,
}

/// A node on the path from the top of the tree to an action.
struct PathNode {
    name: String,
    namespace: String,
    /// For a list entry: its keys as (name, value).
    keys: Vec<(String, String)>,
}

/// NSO's actions on every service instance, which the datastore runs.
#[derive(Clone)]
enum ServiceAction {
    /// `re-deploy`, with or without `dry-run`.
    Redeploy { instance: String, dry_run: bool },
    /// `un-deploy`.
    Undeploy { instance: String },
    /// `get-modifications`.
    GetModifications { instance: String },
}

/// The parsed request: where the action is, and what to call.
struct Parsed {
    call: ActionCall,
    /// Set for an action (or rpc) with a `tailf:actionpoint`: package code runs it.
    package: Option<PackageAction>,
    /// Set for an action of a service instance.
    service: Option<ServiceAction>,
    /// From the top down to the action's parent.
    ancestors: Vec<PathNode>,
    /// The action itself.
    action: PathNode,
    /// The action's path, for access control.
    steps: Vec<crate::datastore::nacm::Step>,
}

/// Runs an `<action>` in either form.
pub async fn action(call: &Call<'_>) -> OpOutcome {
    let op = call.operation;
    let (form, holder) = if op.ns == NS_TAILF_ACTIONS {
        let data = op
            .child(NS_TAILF_ACTIONS, "data")
            .ok_or_else(|| vec![RpcError::missing_element("data")])?;
        (Form::Tailf, data)
    } else {
        (Form::Yang11, op)
    };
    let mut scope = call.rpc.ns_decls.clone();
    scope.extend(op.ns_decls.iter().cloned());
    scope.extend(holder.ns_decls.iter().cloned());
    let mut targets = holder.elements();
    let (Some(target), None) = (targets.next(), targets.next()) else {
        return Err(vec![RpcError::new(
            ErrorType::Protocol,
            ErrorTag::MalformedMessage,
            "an <action> must contain exactly one path to the action",
        )]);
    };
    let text = xml::to_string(target, &scope);
    let running = call.server.datastore.running();
    let user = call.session.user.clone();
    let access = call.access();
    let counters = std::sync::Arc::clone(&call.server.nacm);
    let parsed = blocking(move || {
        let parsed = parse(&running, &text, user)?;
        // RFC 8341 §3.4.4: `exec` on the action node.
        if !access.action_allowed(&parsed.steps, None) {
            counters
                .denied_operations
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(vec![RpcError::access_denied(format!(
                "access denied: the action {} may not be run",
                parsed.call.path
            ))]);
        }
        Ok(parsed)
    })
    .await?;
    let output = run(call, &parsed).await?;
    Ok(match form {
        // An action without output answers <ok/> (RFC 7950 §7.15.2).
        Form::Yang11 if output.is_empty() => OpResult::Ok,
        Form::Yang11 => OpResult::Body(output),
        Form::Tailf => OpResult::Body(wrap_tailf(&parsed, &output)),
    })
}

/// Runs an `rpc` of a package module: one with a `tailf:actionpoint` is run by package code
/// like an action; the reply holds its output.
pub async fn rpc(call: &Call<'_>) -> OpOutcome {
    let text = xml::to_string(call.operation, &call.rpc.ns_decls);
    let running = call.server.datastore.running();
    let user = call.session.user.clone();
    let parsed = blocking(move || parse(&running, &text, user)).await?;
    if parsed.package.is_none() {
        return Err(vec![RpcError::not_supported(format!(
            "the rpc {} has no tailf:actionpoint, and this server has no handler for it",
            parsed.call.path
        ))]);
    }
    Ok(OpResult::Body(run(call, &parsed).await?))
}

/// True when `op` is an rpc that a loaded module defines.
pub fn is_module_rpc(call: &Call<'_>) -> bool {
    let op = call.operation;
    call.server
        .datastore
        .context()
        .get_module_implemented_ns(&op.ns)
        .is_some_and(|m| m.rpcs().any(|r| r.name() == op.name))
}

/// Runs what `parsed` names: package code for an actionpoint, the datastore for a service
/// action, else the server's own actions.
async fn run(call: &Call<'_>, parsed: &Parsed) -> Result<String, Vec<RpcError>> {
    if let Some(action) = &parsed.service {
        return run_service_action(call, action).await;
    }
    let outcome = match &parsed.package {
        Some(action) => {
            call.server
                .runtime
                .package_action(
                    action.clone(),
                    &call.session.user,
                    call.server.datastore.running(),
                )
                .await
        }
        None => call.server.runtime.action(&parsed.call).await,
    };
    outcome.map_err(|e| vec![action_error(parsed, e)])
}

/// Runs `re-deploy`, `un-deploy` or `get-modifications` of a service instance.
async fn run_service_action(
    call: &Call<'_>,
    action: &ServiceAction,
) -> Result<String, Vec<RpcError>> {
    let datastore = std::sync::Arc::clone(&call.server.datastore);
    let action = action.clone();
    let result = blocking(move || {
        match action {
            ServiceAction::Redeploy { instance, dry_run } => datastore.redeploy(&instance, dry_run),
            ServiceAction::Undeploy { instance } => datastore.undeploy(&instance).map(|()| None),
            ServiceAction::GetModifications { instance } => {
                datastore.service_modifications(&instance).map(Some)
            }
        }
        .map_err(RpcError::from_datastore)
    })
    .await?;
    Ok(match result {
        None => String::new(),
        Some(xml) => format!(
            "<result-xml xmlns=\"{NCS_NS}\"><local-node>{}</local-node></result-xml>",
            escape_text(&xml)
        ),
    })
}

/// The service action that `action` (an action node of a parsed request) is, if it is one.
fn service_action(action: &DataNodeRef<'_>) -> Option<ServiceAction> {
    let parent = action.parent()?;
    crate::yang::extension_argument(&parent.schema(), "tailf-ncs", "servicepoint")?;
    let instance = parent.path();
    match action.schema().name() {
        "re-deploy" => Some(ServiceAction::Redeploy {
            instance,
            dry_run: action.children().any(|c| c.schema().name() == "dry-run"),
        }),
        "un-deploy" => Some(ServiceAction::Undeploy { instance }),
        "get-modifications" => Some(ServiceAction::GetModifications { instance }),
        _ => None,
    }
}

/// Parses the path-to-action XML (or an rpc) with libyang, so the action and its input are
/// checked against the schema.
fn parse(running: &DataTree<'static>, text: &str, user: String) -> Result<Parsed, Vec<RpcError>> {
    let ctx = running.context();
    let tree = DataTree::parse_op_string(
        ctx,
        text,
        DataFormat::XML,
        DataParserFlags::STRICT,
        DataOperation::RpcYang,
    )
    .map_err(|e| {
        vec![RpcError::new(
            ErrorType::Protocol,
            ErrorTag::InvalidValue,
            format!("not a valid action request: {e}"),
        )]
    })?;
    let action = tree
        .traverse()
        .find(|n| {
            matches!(
                n.schema().kind(),
                SchemaNodeKind::Action | SchemaNodeKind::Rpc
            )
        })
        .ok_or_else(|| {
            vec![RpcError::new(
                ErrorType::Protocol,
                ErrorTag::UnknownElement,
                "the request names no action",
            )]
        })?;
    let input = action
        .traverse()
        .filter(|c| c.as_raw() != action.as_raw())
        .filter_map(|c| {
            c.value_canonical()
                .map(|v| (c.schema().name().to_string(), v))
        })
        .collect();
    let ancestors = action
        .ancestors()
        .collect::<Vec<DataNodeRef<'_>>>()
        .into_iter()
        .rev()
        .map(|a| {
            let keys = a
                .list_keys()
                .filter_map(|k| {
                    k.value_canonical()
                        .map(|v| (k.schema().name().to_string(), v))
                })
                .collect();
            PathNode {
                name: a.schema().name().to_string(),
                namespace: a.schema().module().namespace().to_string(),
                keys,
            }
        })
        .collect();
    let package = crate::runtime::package_action(&action);
    if package.is_some() {
        // Package code gets only valid input (mandatory leaves, must, leafrefs into running).
        validate_input(running, &tree)?;
    }
    Ok(Parsed {
        steps: crate::datastore::nacm::steps(&action),
        package,
        service: service_action(&action),
        call: ActionCall {
            path: action.path(),
            input,
            user,
        },
        ancestors,
        action: PathNode {
            name: action.schema().name().to_string(),
            namespace: action.schema().module().namespace().to_string(),
            keys: Vec::new(),
        },
    })
}

/// Validates the input of a parsed action or rpc (`tree`) against the schema and `running`.
fn validate_input(
    running: &DataTree<'static>,
    tree: &DataTree<'static>,
) -> Result<(), Vec<RpcError>> {
    let ctx = running.context();
    let (Some(top), dep) = (tree.reference(), running.reference()) else {
        return Ok(());
    };
    crate::datastore::clear_errors(ctx);
    // SAFETY: both trees are alive and of the same context; libyang only reads `running`, and
    // changes `tree` (our own copy) at most by adding input defaults.
    let rc = unsafe {
        yang5::ffi::lyd_validate_op(
            top.as_raw(),
            dep.map_or(std::ptr::null(), |r| r.as_raw() as *const _),
            yang5::ffi::lyd_type::LYD_TYPE_RPC_YANG,
            std::ptr::null_mut(),
        )
    };
    if rc == yang5::ffi::LY_ERR::LY_SUCCESS {
        Ok(())
    } else {
        Err(RpcError::from_datastore(crate::datastore::last_error(ctx)))
    }
}

/// `<data>` + the path to the action + the output, as NSO's action form replies.
fn wrap_tailf(parsed: &Parsed, output: &str) -> String {
    let mut out = String::from("<data>");
    for node in &parsed.ancestors {
        let _ = write!(
            out,
            "<{} xmlns=\"{}\">",
            node.name,
            escape_text(&node.namespace)
        );
        for (key, value) in &node.keys {
            let _ = write!(out, "<{key}>{}</{key}>", escape_text(value));
        }
    }
    let action = &parsed.action;
    let _ = write!(
        out,
        "<{0} xmlns=\"{1}\">{output}</{0}>",
        action.name,
        escape_text(&action.namespace)
    );
    for node in parsed.ancestors.iter().rev() {
        let _ = write!(out, "</{}>", node.name);
    }
    out.push_str("</data>");
    out
}

fn action_error(parsed: &Parsed, e: ActionError) -> RpcError {
    match e {
        ActionError::InvalidInput { leaf, message } => {
            RpcError::new(ErrorType::Application, ErrorTag::InvalidValue, message)
                .with_info(ErrorInfo::BadElement(leaf))
        }
        ActionError::MissingInput(leaf) => RpcError::new(
            ErrorType::Protocol,
            ErrorTag::MissingElement,
            format!("the action {} needs the input {leaf}", parsed.call.path),
        )
        .with_info(ErrorInfo::BadElement(leaf)),
        e @ ActionError::Unknown(_) => RpcError::not_supported(e.to_string()),
        e @ (ActionError::NotRegistered { .. }
        | ActionError::Failed { .. }
        | ActionError::BadOutput { .. }) => RpcError::new(
            ErrorType::Application,
            ErrorTag::OperationFailed,
            e.to_string(),
        ),
    }
}

/// True for the operation elements this module handles.
pub fn is_action(op: &Element) -> bool {
    op.name == "action" && (op.ns == NS_YANG_ACTION || op.ns == NS_TAILF_ACTIONS)
}
