//! The candidate's operations: `commit` (with `:confirmed-commit:1.1`), `discard-changes` and
//! `cancel-commit` (RFC 6241 §8.3, §8.4). The datastore keeps the confirmed-commit state; this
//! module parses the parameters and runs the confirm-timeout timer.

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use super::{Call, OpOutcome, blocking};
use crate::datastore::{
    CommitRequest, ConfirmRequest, ConfirmTimer, DEFAULT_CONFIRM_TIMEOUT, Datastore,
};
use crate::netconf::error::{ErrorInfo, ErrorTag, ErrorType, RpcError};
use crate::netconf::rpc::OpResult;
use crate::netconf::xml::{Element, NS_BASE};

/// `commit`: the candidate becomes running; a confirmed commit starts its timer.
pub async fn commit(call: &Call<'_>) -> OpOutcome {
    let op = call.operation;
    let persist_id = text_param(op, "persist-id");
    let confirmed = match op.child(NS_BASE, "confirmed") {
        None => {
            for param in ["confirm-timeout", "persist"] {
                if op.child(NS_BASE, param).is_some() {
                    return Err(vec![
                        RpcError::new(
                            ErrorType::Protocol,
                            ErrorTag::InvalidValue,
                            format!("<{param}> is only allowed with <confirmed/>"),
                        )
                        .with_info(ErrorInfo::BadElement(param.into())),
                    ]);
                }
            }
            None
        }
        Some(_) => Some(ConfirmRequest {
            timeout: confirm_timeout(op)?,
            persist: text_param(op, "persist"),
        }),
    };
    let request = CommitRequest {
        confirmed,
        persist_id,
    };
    let datastore = Arc::clone(&call.server.datastore);
    let session = call.session.id;
    let ds = Arc::clone(&datastore);
    let timer = blocking(move || {
        ds.commit(session, &request)
            .map_err(RpcError::from_datastore)
    })
    .await?;
    if let Some(timer) = timer {
        schedule_rollback(datastore, timer);
    }
    Ok(OpResult::Ok)
}

/// `discard-changes`: the candidate becomes running again.
pub async fn discard_changes(call: &Call<'_>) -> OpOutcome {
    let datastore = Arc::clone(&call.server.datastore);
    let session = call.session.id;
    blocking(move || {
        datastore
            .discard_changes(session)
            .map_err(RpcError::from_datastore)
    })
    .await?;
    Ok(OpResult::Ok)
}

/// `cancel-commit`: rolls back the pending confirmed commit.
pub async fn cancel_commit(call: &Call<'_>) -> OpOutcome {
    let persist_id = text_param(call.operation, "persist-id");
    let datastore = Arc::clone(&call.server.datastore);
    let session = call.session.id;
    blocking(move || {
        datastore
            .cancel_commit(session, persist_id.as_deref())
            .map_err(RpcError::from_datastore)
    })
    .await?;
    Ok(OpResult::Ok)
}

/// Rolls the confirmed commit back when its timeout passes, unless it was confirmed, cancelled
/// or extended by then (the datastore tells by the generation).
fn schedule_rollback(datastore: Arc<Datastore>, timer: ConfirmTimer) {
    tokio::spawn(async move {
        tokio::time::sleep(timer.timeout).await;
        let outcome =
            tokio::task::spawn_blocking(move || datastore.expire_confirmed(timer.generation)).await;
        match outcome {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(error = %e, "rolling back an expired confirmed commit failed"),
            Err(e) => warn!(error = %e, "the confirmed-commit rollback task failed"),
        }
    });
}

/// The trimmed text of a child parameter in the base namespace.
fn text_param(op: &Element, name: &str) -> Option<String> {
    op.child(NS_BASE, name).map(|e| e.text().trim().to_string())
}

/// `confirm-timeout` in seconds (uint32, at least 1); 600 when absent.
fn confirm_timeout(op: &Element) -> Result<Duration, Vec<RpcError>> {
    let Some(text) = text_param(op, "confirm-timeout") else {
        return Ok(DEFAULT_CONFIRM_TIMEOUT);
    };
    match text.parse::<u32>() {
        Ok(secs) if secs >= 1 => Ok(Duration::from_secs(u64::from(secs))),
        _ => Err(vec![super::datastore::bad_value("confirm-timeout", &text)]),
    }
}
