//! `copy-config` and `delete-config` (RFC 6241 §7.3, §7.4).

use std::sync::Arc;

use super::datastore::{datastore_param, source_param};
use super::{Call, OpOutcome, blocking};
use crate::datastore::WithDefaults;
use crate::netconf::error::RpcError;
use crate::netconf::rpc::OpResult;
use crate::netconf::xml::NS_BASE;

/// The namespace of the `with-defaults` parameter.
const NS_WITH_DEFAULTS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults";

/// `copy-config` between datastores, or from an inline `<config>`, with the optional
/// `with-defaults` of RFC 6243 §4.5.3.
pub async fn copy_config(call: &Call<'_>) -> OpOutcome {
    let op = call.operation;
    let target = datastore_param(op, "target")?;
    let source = op
        .child(NS_BASE, "source")
        .ok_or_else(|| vec![RpcError::missing_element("source")])?;
    let source = source_param(call, op, source)?;
    let defaults = match op.child(NS_WITH_DEFAULTS, "with-defaults") {
        None => None,
        Some(_) => Some(super::datastore::parse_with_defaults(op)?),
    };
    let datastore = Arc::clone(&call.server.datastore);
    let session = call.session.id;
    let access = call.access();
    let error = call.datastore_error();
    blocking(move || {
        datastore
            .copy(
                session,
                &source,
                target,
                defaults.filter(|d| *d != WithDefaults::Explicit),
                &access,
            )
            .map_err(error)
    })
    .await?;
    Ok(OpResult::Ok)
}

/// `delete-config` of startup.
pub async fn delete_config(call: &Call<'_>) -> OpOutcome {
    let target = datastore_param(call.operation, "target")?;
    let datastore = Arc::clone(&call.server.datastore);
    let session = call.session.id;
    let access = call.access();
    let error = call.datastore_error();
    blocking(move || datastore.delete(session, target, &access).map_err(error)).await?;
    Ok(OpResult::Ok)
}
