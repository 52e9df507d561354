//! `kill-session` (RFC 6241 §7.9); `close-session` needs no work beyond ending the session.

use super::{Call, OpOutcome};
use crate::netconf::error::{ErrorInfo, ErrorTag, ErrorType, RpcError};
use crate::netconf::rpc::OpResult;
use crate::netconf::xml::NS_BASE;

/// Ends another session: its locks are released and its transactions aborted as it ends.
pub fn kill_session(call: &Call<'_>) -> OpOutcome {
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
    if !call.server.sessions.kill(id) {
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
