//! `lock` and `unlock` (RFC 6241 §7.5, §7.6) of running, candidate and startup.

use std::sync::Arc;

use super::datastore::datastore_param;
use super::{Call, OpOutcome, blocking};
use crate::netconf::error::RpcError;
use crate::netconf::rpc::OpResult;

/// `lock`: the datastore's global lock for this session.
pub async fn lock(call: &Call<'_>) -> OpOutcome {
    change(call, true).await
}

/// `unlock`: releases a lock this session holds.
pub async fn unlock(call: &Call<'_>) -> OpOutcome {
    change(call, false).await
}

async fn change(call: &Call<'_>, lock: bool) -> OpOutcome {
    let target = datastore_param(call.operation, "target")?;
    let datastore = Arc::clone(&call.server.datastore);
    let session = call.session.id;
    blocking(move || {
        if lock {
            datastore.lock(target, session)
        } else {
            datastore.unlock(target, session)
        }
        .map_err(RpcError::from_datastore)
    })
    .await?;
    Ok(OpResult::Ok)
}
