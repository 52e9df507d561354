//! `kill-session` (RFC 6241 §7.9); `close-session` needs no work beyond ending the session.

use std::sync::Arc;

use super::{Call, OpOutcome, blocking};
use crate::netconf::error::{ErrorInfo, ErrorTag, ErrorType, RpcError};
use crate::netconf::rpc::OpResult;
use crate::netconf::xml::NS_BASE;

/// Ends another session. Its locks are released, its unconfirmed confirmed commit rolled back
/// and its abandoned candidate changes discarded before the reply, so that the client that
/// killed it can take over at once.
pub async fn kill_session(call: &Call<'_>) -> OpOutcome {
    let text = call
        .operation
        .child(NS_BASE, "session-id")
        .ok_or_else(|| vec![RpcError::missing_element("session-id")])?
        .text();
    let id: u32 = text.trim().parse().map_err(|_| {
        vec![
            RpcError::new(
                ErrorType::Protocol,
                ErrorTag::InvalidValue,
                format!("\"{}\" is not a session-id", text.trim()),
            )
            .with_info(ErrorInfo::BadElement("session-id".into())),
        ]
    })?;
    if id == call.session.id {
        return Err(vec![
            RpcError::new(
                ErrorType::Protocol,
                ErrorTag::InvalidValue,
                "a session cannot kill itself; use close-session",
            )
            .with_info(ErrorInfo::BadElement("session-id".into())),
        ]);
    }
    let known = call.server.sessions.kill(id, call.session.id);
    if known {
        let datastore = Arc::clone(&call.server.datastore);
        blocking(move || Ok(datastore.session_ended(id))).await?;
    }
    if !known {
        return Err(vec![
            RpcError::new(
                ErrorType::Protocol,
                ErrorTag::InvalidValue,
                format!("there is no session {id}"),
            )
            .with_info(ErrorInfo::BadElement("session-id".into())),
        ]);
    }
    Ok(OpResult::Ok)
}
