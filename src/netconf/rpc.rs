//! The RPC layer (RFC 6241 §4): checks the `<rpc>` envelope, dispatches the operation, and wraps
//! its result in an `<rpc-reply>` that echoes the attributes of the request.

use std::fmt::Write as _;

use crate::netconf::NetconfServer;
use crate::netconf::error::{ErrorInfo, ErrorTag, ErrorType, RpcError, errors_xml};
use crate::netconf::ops;
use crate::netconf::session::SessionState;
use crate::netconf::sessions::Count;
use crate::netconf::xml::{self, Element, NS_BASE, escape_text};

/// What an operation produced.
pub enum OpResult {
    /// `<ok/>`.
    Ok,
    /// A reply body (e.g. `<data>…</data>`), written inside `<rpc-reply>` as is.
    Body(String),
}

/// What the session should do with an answered message.
pub enum Outcome {
    /// Send the reply and go on.
    Reply(String),
    /// Send the reply, then end the session (`close-session`).
    ReplyAndClose(String),
}

/// Handles one message received after the hello, and counts it for monitoring.
pub async fn handle(message: &[u8], session: &SessionState, server: &NetconfServer) -> Outcome {
    let (outcome, counts) = answer(message, session, server).await;
    for count in counts {
        server.sessions.count(&session.counters, *count);
    }
    outcome
}

/// Reads the envelope of a message: a well-formed `<rpc>` with a `message-id` and exactly one
/// operation, or else the complete `<rpc-reply>` with the error (`base_1_1`: the session
/// speaks base:1.1, which changes the error-tag of a malformed message).
pub fn envelope(message: &[u8], base_1_1: bool) -> Result<Element, String> {
    let rpc = xml::parse(message).map_err(|e| {
        let error =
            RpcError::malformed(base_1_1, format!("the message is not well-formed XML: {e}"));
        error_reply(None, &[error])
    })?;
    if !rpc.is(NS_BASE, "rpc") {
        let error = RpcError::new(
            ErrorType::Rpc,
            ErrorTag::UnknownElement,
            format!("expected <rpc>, got <{}>", rpc.name),
        )
        .with_info(ErrorInfo::BadElement(rpc.name.clone()));
        return Err(error_reply(None, &[error]));
    }
    if rpc.attr("message-id").is_none() {
        let error = RpcError::new(
            ErrorType::Rpc,
            ErrorTag::MissingAttribute,
            "the <rpc> element has no message-id attribute",
        )
        .with_info(ErrorInfo::BadAttribute("message-id".into()))
        .with_info(ErrorInfo::BadElement("rpc".into()));
        return Err(error_reply(Some(&rpc), &[error]));
    }
    if rpc.elements().count() != 1 {
        let error = RpcError::malformed(base_1_1, "an <rpc> must contain exactly one operation");
        return Err(error_reply(Some(&rpc), &[error]));
    }
    Ok(rpc)
}

/// The answer to one message, and what RFC 6022 counts about it.
async fn answer(
    message: &[u8],
    session: &SessionState,
    server: &NetconfServer,
) -> (Outcome, &'static [Count]) {
    const BAD: &[Count] = &[Count::InBadRpc, Count::OutRpcError];
    let rpc = match envelope(message, session.base_1_1) {
        Ok(rpc) => rpc,
        Err(reply) => return (Outcome::Reply(reply), BAD),
    };
    // `envelope` checked that there is exactly one.
    let Some(operation) = rpc.elements().next() else {
        let error = RpcError::malformed(session.base_1_1, "the <rpc> has no operation");
        return (Outcome::Reply(error_reply(Some(&rpc), &[error])), BAD);
    };
    let context = ops::Call {
        rpc: &rpc,
        operation,
        session,
        server,
        access: server.access_for(&session.user),
    };
    let close = operation.is(NS_BASE, "close-session");
    match ops::dispatch(&context).await {
        Ok(result) => {
            let reply = reply(&rpc, result);
            let outcome = if close {
                Outcome::ReplyAndClose(reply)
            } else {
                Outcome::Reply(reply)
            };
            (outcome, &[Count::InRpc])
        }
        Err(errors) => (
            Outcome::Reply(error_reply(Some(&rpc), &errors)),
            &[Count::InRpc, Count::OutRpcError],
        ),
    }
}

fn reply(rpc: &Element, result: OpResult) -> String {
    let mut out = open_reply(Some(rpc));
    match result {
        OpResult::Ok => out.push_str("<ok/>"),
        OpResult::Body(body) => out.push_str(&body),
    }
    out.push_str("</rpc-reply>");
    out
}

/// An `<rpc-reply>` holding `errors`; `rpc` is the request when it could be parsed.
pub fn error_reply(rpc: Option<&Element>, errors: &[RpcError]) -> String {
    let mut out = open_reply(rpc);
    out.push_str(&errors_xml(errors));
    out.push_str("</rpc-reply>");
    out
}

/// `<rpc-reply>` with every attribute of the request echoed (RFC 6241 §4.2), along with the
/// prefix declarations those attributes need.
fn open_reply(rpc: Option<&Element>) -> String {
    let mut out = String::with_capacity(256);
    let _ = write!(out, "<rpc-reply xmlns=\"{NS_BASE}\"");
    if let Some(rpc) = rpc {
        for (prefix, uri) in &rpc.ns_decls {
            if !prefix.is_empty() {
                let _ = write!(out, " xmlns:{prefix}=\"{}\"", escape_text(uri));
            }
        }
        for attr in &rpc.attrs {
            let name = match &attr.prefix {
                Some(p) => format!("{p}:{}", attr.name),
                None => attr.name.clone(),
            };
            let _ = write!(
                out,
                " {name}=\"{}\"",
                quick_xml::escape::escape(&attr.value)
            );
        }
    }
    out.push('>');
    out
}
