//! The datastore operations: `get`, `get-config`, `edit-config` and `validate` (RFC 6241 §7),
//! with subtree filters (§6) and the `with-defaults` parameter (RFC 6243).

use std::sync::Arc;

use super::{Call, OpOutcome, blocking};
use crate::datastore::{EditOperation, EditRequest, FilterNode, TestOption, WithDefaults};
use crate::netconf::error::{ErrorInfo, ErrorTag, ErrorType, RpcError};
use crate::netconf::rpc::OpResult;
use crate::netconf::xml::{self, Element, NS_BASE};

/// The namespace of the `with-defaults` parameter.
const NS_WITH_DEFAULTS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults";

/// `get`: running configuration and state data.
pub async fn get(call: &Call<'_>) -> OpOutcome {
    read(call).await
}

/// `get-config`: the configuration of a datastore.
pub async fn get_config(call: &Call<'_>) -> OpOutcome {
    let source = call
        .operation
        .child(NS_BASE, "source")
        .ok_or_else(|| vec![RpcError::missing_element("source")])?;
    datastore_name(source, "source")?;
    read(call).await
}

async fn read(call: &Call<'_>) -> OpOutcome {
    let filter = parse_filter(call.operation)?;
    let defaults = parse_with_defaults(call.operation)?;
    let datastore = Arc::clone(&call.server.datastore);
    let data = blocking(move || {
        datastore
            .get_config(filter.as_deref(), defaults)
            .map_err(RpcError::from_datastore)
    })
    .await?;
    Ok(OpResult::Body(if data.is_empty() {
        "<data/>".into()
    } else {
        format!("<data>{data}</data>")
    }))
}

/// `edit-config` on running.
pub async fn edit_config(call: &Call<'_>) -> OpOutcome {
    let op = call.operation;
    let target = op
        .child(NS_BASE, "target")
        .ok_or_else(|| vec![RpcError::missing_element("target")])?;
    datastore_name(target, "target")?;
    let default_operation = match op.child(NS_BASE, "default-operation") {
        None => EditOperation::Merge,
        Some(e) => match EditOperation::parse(e.text().trim()) {
            Some(o @ (EditOperation::Merge | EditOperation::Replace | EditOperation::None)) => o,
            _ => return Err(vec![bad_value("default-operation", &e.text())]),
        },
    };
    let test_option = match op.child(NS_BASE, "test-option") {
        None => TestOption::default(),
        Some(e) => match e.text().trim() {
            "test-then-set" => TestOption::TestThenSet,
            "set" => TestOption::Set,
            "test-only" => TestOption::TestOnly,
            _ => return Err(vec![bad_value("test-option", &e.text())]),
        },
    };
    // Every error option gets all-or-nothing behaviour: a transaction is applied as a whole
    // or not at all, which is what rollback-on-error asks and is also a correct outcome of
    // stop-on-error and continue-on-error when the edit fails.
    if let Some(e) = op.child(NS_BASE, "error-option") {
        let v = e.text();
        if !matches!(
            v.trim(),
            "stop-on-error" | "continue-on-error" | "rollback-on-error"
        ) {
            return Err(vec![bad_value("error-option", &v)]);
        }
    }
    if op.child(NS_BASE, "url").is_some() {
        return Err(vec![RpcError::not_supported(
            "the :url capability is not supported; send the edit in <config>",
        )]);
    }
    let config = op
        .child(NS_BASE, "config")
        .ok_or_else(|| vec![RpcError::missing_element("config")])?;
    let request = EditRequest {
        config: content_xml(call, &[op], config),
        default_operation,
        test_option,
    };
    let datastore = Arc::clone(&call.server.datastore);
    blocking(move || {
        datastore
            .edit_running(&request)
            .map_err(RpcError::from_datastore)
    })
    .await?;
    Ok(OpResult::Ok)
}

/// `validate` of running or of an inline `<config>`.
pub async fn validate(call: &Call<'_>) -> OpOutcome {
    let op = call.operation;
    let source = op
        .child(NS_BASE, "source")
        .ok_or_else(|| vec![RpcError::missing_element("source")])?;
    let Some(config) = source.child(NS_BASE, "config") else {
        // Running is validated on every commit, so it is always valid.
        datastore_name(source, "source")?;
        return Ok(OpResult::Ok);
    };
    let text = content_xml(call, &[op, source], config);
    let datastore = Arc::clone(&call.server.datastore);
    blocking(move || {
        datastore
            .validate_config(&text)
            .map_err(RpcError::from_datastore)
    })
    .await?;
    Ok(OpResult::Ok)
}

/// Checks a `<source>`/`<target>` parameter names a datastore this server has.
fn datastore_name(param: &Element, what: &str) -> Result<(), Vec<RpcError>> {
    let mut names = param.elements();
    match (names.next(), names.next()) {
        (Some(e), None) if e.is(NS_BASE, "running") => Ok(()),
        (Some(e), None) => Err(vec![
            RpcError::new(
                ErrorType::Protocol,
                ErrorTag::InvalidValue,
                format!("the datastore <{}> is not supported here", e.name),
            )
            .with_info(ErrorInfo::BadElement(what.into())),
        ]),
        _ => Err(vec![RpcError::missing_element(what)]),
    }
}

fn bad_value(element: &str, value: &str) -> RpcError {
    RpcError::new(
        ErrorType::Protocol,
        ErrorTag::InvalidValue,
        format!("\"{}\" is not a valid {element}", value.trim()),
    )
    .with_info(ErrorInfo::BadElement(element.into()))
}

/// The children of `holder` (e.g. `<config>`) as a standalone XML text for libyang, carrying
/// the namespace declarations in scope from the `<rpc>` down to `holder`.
fn content_xml(call: &Call<'_>, path: &[&Element], holder: &Element) -> String {
    let mut scope: Vec<(String, String)> = call.rpc.ns_decls.clone();
    for e in path.iter().chain(std::iter::once(&holder)) {
        scope.extend(e.ns_decls.iter().cloned());
    }
    holder
        .elements()
        .map(|e| xml::to_string(e, &scope))
        .collect()
}

/// Reads the `<filter>` parameter. Only subtree filters exist without `:xpath`.
fn parse_filter(op: &Element) -> Result<Option<Vec<FilterNode>>, Vec<RpcError>> {
    let Some(filter) = op.child(NS_BASE, "filter") else {
        return Ok(None);
    };
    let kind = filter
        .attrs
        .iter()
        .find(|a| a.name == "type" && (a.ns.is_empty() || a.ns == NS_BASE))
        .map(|a| a.value.as_str())
        .unwrap_or("subtree");
    match kind {
        "subtree" => Ok(Some(filter.elements().map(filter_node).collect())),
        "xpath" => Err(vec![
            RpcError::not_supported(
                "XPath filters need the :xpath capability, which this server does not announce",
            )
            .with_info(ErrorInfo::BadAttribute("type".into())),
        ]),
        other => Err(vec![
            RpcError::new(
                ErrorType::Protocol,
                ErrorTag::BadAttribute,
                format!("unknown filter type \"{other}\""),
            )
            .with_info(ErrorInfo::BadAttribute("type".into()))
            .with_info(ErrorInfo::BadElement("filter".into())),
        ]),
    }
}

fn filter_node(e: &Element) -> FilterNode {
    let text = e.text();
    let content = (!e.has_elements() && !text.trim().is_empty()).then(|| text.trim().to_string());
    FilterNode {
        // No data lives in the base namespace: a filter element there got it by inheritance
        // from an unqualified <filter>, and means "any namespace", as an un-namespaced one does.
        ns: (!e.ns.is_empty() && e.ns != NS_BASE).then(|| e.ns.clone()),
        name: e.name.clone(),
        content,
        children: e.elements().map(filter_node).collect(),
    }
}

fn parse_with_defaults(op: &Element) -> Result<WithDefaults, Vec<RpcError>> {
    match op.child(NS_WITH_DEFAULTS, "with-defaults") {
        None => Ok(WithDefaults::default()),
        Some(e) => WithDefaults::parse(e.text().trim())
            .ok_or_else(|| vec![bad_value("with-defaults", &e.text())]),
    }
}
