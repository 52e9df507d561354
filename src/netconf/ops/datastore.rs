//! The datastore operations: `get`, `get-config`, `edit-config` and `validate` (RFC 6241 §7),
//! on running, candidate and startup, with subtree (§6) and XPath (§8.9) filters and the
//! `with-defaults` parameter (RFC 6243).

use std::sync::Arc;

use super::{Call, OpOutcome, blocking};
use crate::datastore::{
    DatastoreName, EditOperation, EditRequest, Filter, Source, TestOption, WithDefaults,
    XPathFilter,
};
use crate::netconf::error::{ErrorInfo, ErrorTag, ErrorType, RpcError};
use crate::netconf::filter::subtree_filter_node;
use crate::netconf::rpc::OpResult;
use crate::netconf::xml::{self, Element, NS_BASE};

/// The namespace of the `with-defaults` parameter.
const NS_WITH_DEFAULTS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults";

/// `get`: running configuration and state data.
pub async fn get(call: &Call<'_>) -> OpOutcome {
    let filter = parse_filter(call, call.operation)?;
    let defaults = parse_with_defaults(call.operation)?;
    let datastore = Arc::clone(&call.server.datastore);
    let mut operational = call.server.runtime.operational_xml();
    operational.extend(super::monitoring::state_documents(
        call.server,
        filter.as_ref(),
    ));
    let access = call.access();
    let data = blocking(move || {
        datastore
            .get(filter.as_ref(), defaults, &operational, &access)
            .map_err(RpcError::from_datastore)
    })
    .await?;
    Ok(data_reply(data))
}

/// `get-config`: the configuration of a datastore.
pub async fn get_config(call: &Call<'_>) -> OpOutcome {
    let source = datastore_param(call.operation, "source")?;
    let filter = parse_filter(call, call.operation)?;
    let defaults = parse_with_defaults(call.operation)?;
    let datastore = Arc::clone(&call.server.datastore);
    let access = call.access();
    let data = blocking(move || {
        datastore
            .read(source, filter.as_ref(), defaults, &access)
            .map_err(RpcError::from_datastore)
    })
    .await?;
    Ok(data_reply(data))
}

/// `<data>` holding `data`.
pub(super) fn data_reply(data: String) -> OpResult {
    OpResult::Body(if data.is_empty() {
        "<data/>".into()
    } else {
        format!("<data>{data}</data>")
    })
}

/// `edit-config` on running or the candidate.
pub async fn edit_config(call: &Call<'_>) -> OpOutcome {
    let op = call.operation;
    let target = datastore_param(op, "target")?;
    if target == DatastoreName::Startup {
        return Err(vec![
            RpcError::new(
                ErrorType::Protocol,
                ErrorTag::InvalidValue,
                "edit-config cannot target startup; use copy-config",
            )
            .with_info(ErrorInfo::BadElement("target".into())),
        ]);
    }
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
        config: content_xml(call, &[op], config)?,
        default_operation,
        test_option,
        access: call.access(),
    };
    let datastore = Arc::clone(&call.server.datastore);
    let session = call.session.id;
    let error = call.datastore_error();
    blocking(move || datastore.edit(target, session, &request).map_err(error)).await?;
    Ok(OpResult::Ok)
}

/// `validate` of a datastore or of an inline `<config>`.
pub async fn validate(call: &Call<'_>) -> OpOutcome {
    let op = call.operation;
    let source = op
        .child(NS_BASE, "source")
        .ok_or_else(|| vec![RpcError::missing_element("source")])?;
    let source = source_param(call, op, source)?;
    let datastore = Arc::clone(&call.server.datastore);
    blocking(move || {
        match &source {
            Source::Config(text) => datastore.validate_config(text),
            Source::Datastore(ds) => datastore.validate(*ds),
        }
        .map_err(RpcError::from_datastore)
    })
    .await?;
    Ok(OpResult::Ok)
}

/// Reads a `<source>` that may name a datastore or hold an inline `<config>`.
pub(super) fn source_param(
    call: &Call<'_>,
    op: &Element,
    source: &Element,
) -> Result<Source, Vec<RpcError>> {
    match source.child(NS_BASE, "config") {
        Some(config) => Ok(Source::Config(content_xml(call, &[op, source], config)?)),
        None => datastore_name(source, "source").map(Source::Datastore),
    }
}

/// Reads the mandatory `<source>`/`<target>` parameter `what` of an operation, which must
/// name a datastore this server has.
pub(super) fn datastore_param(op: &Element, what: &str) -> Result<DatastoreName, Vec<RpcError>> {
    let param = op
        .child(NS_BASE, what)
        .ok_or_else(|| vec![RpcError::missing_element(what)])?;
    datastore_name(param, what)
}

/// Reads a `<source>`/`<target>` parameter that names a datastore this server has.
fn datastore_name(param: &Element, what: &str) -> Result<DatastoreName, Vec<RpcError>> {
    let mut names = param.elements();
    match (names.next(), names.next()) {
        (Some(e), None) if e.ns == NS_BASE || e.ns.is_empty() => {
            match DatastoreName::parse(&e.name) {
                Some(ds) => Ok(ds),
                None if e.name == "url" => Err(vec![RpcError::not_supported(
                    "the :url capability is not supported",
                )]),
                None => Err(vec![
                    RpcError::new(
                        ErrorType::Protocol,
                        ErrorTag::InvalidValue,
                        format!("there is no datastore <{}>", e.name),
                    )
                    .with_info(ErrorInfo::BadElement(what.into())),
                ]),
            }
        }
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

/// An `invalid-value` error about a parameter.
pub(super) fn bad_value(element: &str, value: &str) -> RpcError {
    RpcError::new(
        ErrorType::Protocol,
        ErrorTag::InvalidValue,
        format!("\"{}\" is not a valid {element}", value.trim()),
    )
    .with_info(ErrorInfo::BadElement(element.into()))
}

/// The children of `holder` (e.g. `<config>`) as a standalone XML text for libyang, carrying
/// the namespace declarations in scope from the `<rpc>` down to `holder`. A child without a
/// namespace is an `unknown-element` error that names the namespace it probably lacks.
pub(super) fn content_xml(
    call: &Call<'_>,
    path: &[&Element],
    holder: &Element,
) -> Result<String, Vec<RpcError>> {
    // In the NETCONF namespace too: a client that leaves out xmlns inherits the <rpc>'s, and
    // ietf-netconf defines no data nodes.
    if let Some(bare) = holder
        .elements()
        .find(|e| e.ns.is_empty() || e.ns == NS_BASE)
    {
        return Err(vec![unqualified(call, &bare.name)]);
    }
    let mut scope: Vec<(String, String)> = call.rpc.ns_decls.clone();
    for e in path.iter().chain(std::iter::once(&holder)) {
        scope.extend(e.ns_decls.iter().cloned());
    }
    Ok(holder
        .elements()
        .map(|e| xml::to_string(e, &scope))
        .collect())
}

/// The error for a top-level data element `name` that has no namespace.
fn unqualified(call: &Call<'_>, name: &str) -> RpcError {
    let namespaces: Vec<String> = call
        .server
        .datastore
        .context()
        .traverse()
        .filter(|n| n.ancestors().next().is_none() && n.name() == name)
        .map(|n| n.module().namespace().to_owned())
        .collect();
    let hint = match namespaces.as_slice() {
        [] => "no loaded module has a top-level node of that name".to_string(),
        [ns] => format!("write <{name} xmlns=\"{ns}\">"),
        several => format!("give it one of the namespaces {}", several.join(", ")),
    };
    RpcError::new(
        ErrorType::Application,
        ErrorTag::UnknownElement,
        format!("the element <{name}> has no namespace: {hint}"),
    )
    .with_info(ErrorInfo::BadElement(name.to_owned()))
}

/// Reads the `<filter>` parameter of `op`: a subtree filter, or an XPath filter whose
/// prefixes are those declared on the way from the `<rpc>` to the `<filter>`.
pub(super) fn parse_filter(call: &Call<'_>, op: &Element) -> Result<Option<Filter>, Vec<RpcError>> {
    let Some(filter) = op.child(NS_BASE, "filter") else {
        return Ok(None);
    };
    parse_filter_element(call, op, filter).map(Some)
}

/// Reads a `<filter>` element (RFC 6241's, or the `subtree-filter`/`xpath-filter` of
/// get-data, which the caller turns into the same shape).
pub(super) fn parse_filter_element(
    call: &Call<'_>,
    op: &Element,
    filter: &Element,
) -> Result<Filter, Vec<RpcError>> {
    let kind = filter
        .attrs
        .iter()
        .find(|a| a.name == "type" && (a.ns.is_empty() || a.ns == NS_BASE))
        .map(|a| a.value.as_str())
        .unwrap_or("subtree");
    match kind {
        "subtree" => Ok(Filter::Subtree(
            filter.elements().map(subtree_filter_node).collect(),
        )),
        "xpath" => {
            let select = filter
                .attrs
                .iter()
                .find(|a| a.name == "select" && (a.ns.is_empty() || a.ns == NS_BASE))
                .map(|a| a.value.clone())
                .ok_or_else(|| {
                    vec![
                        RpcError::new(
                            ErrorType::Protocol,
                            ErrorTag::MissingAttribute,
                            "an XPath filter needs a select attribute",
                        )
                        .with_info(ErrorInfo::BadAttribute("select".into()))
                        .with_info(ErrorInfo::BadElement("filter".into())),
                    ]
                })?;
            Ok(Filter::XPath(XPathFilter {
                select,
                namespaces: namespaces_in_scope(call, &[op, filter]),
            }))
        }
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

/// The prefix declarations in scope at the last element of `path` (starting below `<rpc>`).
pub(super) fn namespaces_in_scope(call: &Call<'_>, path: &[&Element]) -> Vec<(String, String)> {
    let mut scope: Vec<(String, String)> = call.rpc.ns_decls.clone();
    for e in path {
        scope.extend(e.ns_decls.iter().cloned());
    }
    scope
}

/// Reads the `with-defaults` parameter (RFC 6243 §4.5.1); our basic mode when absent.
pub(super) fn parse_with_defaults(op: &Element) -> Result<WithDefaults, Vec<RpcError>> {
    match op.child(NS_WITH_DEFAULTS, "with-defaults") {
        None => Ok(WithDefaults::default()),
        Some(e) => WithDefaults::parse(e.text().trim())
            .ok_or_else(|| vec![bad_value("with-defaults", &e.text())]),
    }
}
