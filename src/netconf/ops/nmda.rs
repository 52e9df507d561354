//! NMDA operations (RFC 8526): `get-data` on running, candidate, startup, intended and
//! operational, and `edit-data` on the writable datastores.

use std::sync::Arc;

use super::datastore::{bad_value, content_xml, data_reply, namespaces_in_scope};
use super::{Call, OpOutcome, blocking};
use crate::datastore::{
    DataOptions, EditOperation, EditRequest, Filter, FilterNode, NmdaDatastore, OriginFilter,
    TestOption, WithDefaults, XPathFilter,
};
use crate::netconf::error::{ErrorInfo, ErrorTag, ErrorType, RpcError};
use crate::netconf::rpc::OpResult;
use crate::netconf::xml::{Element, NS_BASE};

/// The namespace of ietf-netconf-nmda.
pub const NS_NMDA: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda";
/// The namespace of the datastore identities.
const NS_DATASTORES: &str = "urn:ietf:params:xml:ns:yang:ietf-datastores";
/// The namespace of the origin identities.
const NS_ORIGIN: &str = "urn:ietf:params:xml:ns:yang:ietf-origin";
/// The namespace of ietf-netconf-with-defaults.
const NS_WITH_DEFAULTS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults";

/// A parameter of the operation: in the nmda namespace, or unqualified.
fn param<'a>(op: &'a Element, name: &str) -> Option<&'a Element> {
    op.elements()
        .find(|e| e.name == name && (e.ns == NS_NMDA || e.ns.is_empty() || e.ns == NS_BASE))
}

/// The local name of an identityref value whose prefix must map to `namespace` (an unprefixed
/// value is taken as is).
fn identity(call: &Call<'_>, path: &[&Element], value: &str, namespace: &str) -> Option<String> {
    let value = value.trim();
    match value.split_once(':') {
        None => Some(value.to_string()),
        Some((prefix, local)) => {
            let scope = namespaces_in_scope(call, path);
            let ns = scope
                .iter()
                .rev()
                .find(|(p, _)| p == prefix)
                .map(|(_, n)| n);
            // A module name as prefix (JSON style) is accepted too.
            let module_ok = matches!(
                (prefix, namespace),
                ("ietf-datastores", NS_DATASTORES) | ("ietf-origin", NS_ORIGIN)
            );
            (ns.is_some_and(|n| n == namespace) || module_ok).then(|| local.to_string())
        }
    }
}

fn datastore_param(call: &Call<'_>) -> Result<NmdaDatastore, Vec<RpcError>> {
    let op = call.operation;
    let e = param(op, "datastore").ok_or_else(|| vec![RpcError::missing_element("datastore")])?;
    identity(call, &[op, e], &e.text(), NS_DATASTORES)
        .and_then(|local| NmdaDatastore::parse(&local))
        .ok_or_else(|| vec![bad_value("datastore", &e.text())])
}

/// `get-data`.
pub async fn get_data(call: &Call<'_>) -> OpOutcome {
    let op = call.operation;
    let datastore = datastore_param(call)?;
    let filter = match (param(op, "subtree-filter"), param(op, "xpath-filter")) {
        (Some(_), Some(_)) => {
            return Err(vec![RpcError::bad_element(
                "xpath-filter",
                "give either subtree-filter or xpath-filter",
            )]);
        }
        (Some(subtree), None) => Some(Filter::Subtree(
            subtree
                .elements()
                .map(crate::netconf::filter::subtree_filter_node)
                .collect::<Vec<FilterNode>>(),
        )),
        (None, Some(xpath)) => Some(Filter::XPath(XPathFilter {
            select: xpath.text().trim().to_string(),
            namespaces: namespaces_in_scope(call, &[op, xpath]),
        })),
        (None, None) => None,
    };
    let config_filter = match param(op, "config-filter") {
        None => None,
        Some(e) => match e.text().trim() {
            "true" => Some(true),
            "false" => Some(false),
            other => return Err(vec![bad_value("config-filter", other)]),
        },
    };
    let max_depth = match param(op, "max-depth") {
        None => None,
        Some(e) => match e.text().trim() {
            "unbounded" => None,
            text => match text.parse::<u16>() {
                Ok(n) if n >= 1 => Some(n),
                _ => return Err(vec![bad_value("max-depth", text)]),
            },
        },
    };
    let origin_filter = origin_filter(call)?;
    let with_origin = param(op, "with-origin").is_some();
    let defaults = match op
        .elements()
        .find(|e| e.name == "with-defaults" && (e.ns == NS_NMDA || e.ns == NS_WITH_DEFAULTS))
    {
        None => WithDefaults::default(),
        Some(e) => WithDefaults::parse(e.text().trim())
            .ok_or_else(|| vec![bad_value("with-defaults", &e.text())])?,
    };
    let options = DataOptions {
        config_filter,
        max_depth,
        origin_filter,
        with_origin,
        defaults,
        access: call.access(),
    };
    let operational = if datastore == NmdaDatastore::Operational {
        let mut docs = call.server.runtime.operational_xml();
        docs.extend(super::monitoring::state_documents(
            call.server,
            filter.as_ref(),
        ));
        docs
    } else {
        Vec::new()
    };
    let ds = Arc::clone(&call.server.datastore);
    let data = blocking(move || {
        ds.read_data(datastore, filter.as_ref(), &options, &operational)
            .map_err(RpcError::from_datastore)
    })
    .await?;
    Ok(match data_reply(data) {
        OpResult::Body(body) => {
            OpResult::Body(body.replacen("<data", &format!("<data xmlns=\"{NS_NMDA}\""), 1))
        }
        other => other,
    })
}

fn origin_filter(call: &Call<'_>) -> Result<Option<OriginFilter>, Vec<RpcError>> {
    let op = call.operation;
    let mut origins = Vec::new();
    let mut negated = None;
    for e in op.elements() {
        let is_negated = match e.name.as_str() {
            "origin-filter" => false,
            "negated-origin-filter" => true,
            _ => continue,
        };
        if negated.is_some_and(|n| n != is_negated) {
            return Err(vec![RpcError::bad_element(
                &e.name,
                "origin-filter and negated-origin-filter cannot be combined",
            )]);
        }
        negated = Some(is_negated);
        let local = identity(call, &[op, e], &e.text(), NS_ORIGIN)
            .ok_or_else(|| vec![bad_value(&e.name, &e.text())])?;
        origins.push(local);
    }
    Ok(negated.map(|negated| OriginFilter { origins, negated }))
}

/// `edit-data`: `edit-config` semantics on running, candidate or startup.
pub async fn edit_data(call: &Call<'_>) -> OpOutcome {
    let op = call.operation;
    let target = match datastore_param(call)? {
        NmdaDatastore::Conventional(ds) => ds,
        _ => {
            return Err(vec![
                RpcError::new(
                    ErrorType::Protocol,
                    ErrorTag::InvalidValue,
                    "intended and operational cannot be edited",
                )
                .with_info(ErrorInfo::BadElement("datastore".into())),
            ]);
        }
    };
    let default_operation = match param(op, "default-operation") {
        None => EditOperation::Merge,
        Some(e) => match EditOperation::parse(e.text().trim()) {
            Some(o @ (EditOperation::Merge | EditOperation::Replace | EditOperation::None)) => o,
            _ => return Err(vec![bad_value("default-operation", &e.text())]),
        },
    };
    if param(op, "url").is_some() {
        return Err(vec![RpcError::not_supported(
            "the :url capability is not supported; send the edit in <config>",
        )]);
    }
    let config = param(op, "config").ok_or_else(|| vec![RpcError::missing_element("config")])?;
    let request = EditRequest {
        config: content_xml(call, &[op], config)?,
        default_operation,
        test_option: TestOption::TestThenSet,
        access: call.access(),
    };
    let ds = Arc::clone(&call.server.datastore);
    let session = call.session.id;
    let error = call.datastore_error();
    blocking(move || ds.edit(target, session, &request).map_err(error)).await?;
    Ok(OpResult::Ok)
}
