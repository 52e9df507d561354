//! `create-subscription` (RFC 5277 §2.1.1) and the `/netconf/streams` state document (§3.4).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::datastore::parse_filter_element;
use super::{Call, OpOutcome};
use crate::netconf::error::{ErrorInfo, ErrorTag, ErrorType, RpcError};
use crate::netconf::rpc::OpResult;
use crate::netconf::subscription::{NS_NC_NOTIFICATIONS, NewSubscription};
use crate::netconf::xml::{NS_BASE, escape_text};
use crate::notify::{NETCONF_STREAM, Notifier, NotifyError, event_time};

/// The namespace of `create-subscription` and its parameters.
pub const NS_NOTIFICATION: &str = crate::notify::NS_NOTIFICATION;

/// `create-subscription`: validates the parameters, subscribes, and leaves the subscription
/// for the session to start once the `<ok/>` is sent.
pub async fn create_subscription(call: &Call<'_>) -> OpOutcome {
    let op = call.operation;
    let param = |name: &str| op.child(NS_NOTIFICATION, name);
    let stream = param("stream")
        .map(|s| s.text().trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| NETCONF_STREAM.to_string());
    let start = param("startTime")
        .map(|e| parse_time("startTime", &e.text()))
        .transpose()?;
    let stop = param("stopTime")
        .map(|e| parse_time("stopTime", &e.text()))
        .transpose()?;
    match (start, stop) {
        (None, Some(_)) => {
            return Err(vec![
                RpcError::new(
                    ErrorType::Protocol,
                    ErrorTag::MissingElement,
                    "stopTime needs a startTime: a stop time only ends a replay subscription",
                )
                .with_info(ErrorInfo::BadElement("startTime".into())),
            ]);
        }
        (Some(start), Some(stop)) if start > stop => {
            return Err(vec![RpcError::bad_element(
                "stopTime",
                "stopTime is earlier than startTime",
            )]);
        }
        (Some(start), _) if start > Utc::now() => {
            return Err(vec![RpcError::bad_element(
                "startTime",
                "startTime is in the future: a replay can only start at or before now",
            )]);
        }
        _ => {}
    }
    // RFC 5277 puts <filter> in its own namespace; ncclient sends NETCONF's.
    let filter = param("filter")
        .or_else(|| op.child(NS_BASE, "filter"))
        .map(|f| parse_filter_element(call, op, f))
        .transpose()?;
    if call.session.subscription.is_active() {
        return Err(vec![RpcError::new(
            ErrorType::Protocol,
            ErrorTag::OperationFailed,
            "this session already has a subscription; a session has one at a time \
             (open another session for another stream)",
        )]);
    }
    let subscription = call
        .server
        .notifier
        .subscribe(&stream, start)
        .map_err(|e| vec![subscribe_error(&stream, e)])?;
    let offered = call.session.subscription.offer(NewSubscription {
        subscription,
        filter,
        start,
        stop,
    });
    if !offered {
        return Err(vec![RpcError::new(
            ErrorType::Protocol,
            ErrorTag::OperationFailed,
            "this session already has a subscription",
        )]);
    }
    Ok(OpResult::Ok)
}

fn subscribe_error(stream: &str, error: NotifyError) -> RpcError {
    match error {
        NotifyError::UnknownStream(_) => RpcError::new(
            ErrorType::Application,
            ErrorTag::InvalidValue,
            format!("there is no event stream {stream:?}; /netconf/streams lists them"),
        )
        .with_info(ErrorInfo::BadElement("stream".into())),
        NotifyError::NoReplay(_) => RpcError::new(
            ErrorType::Protocol,
            ErrorTag::OperationFailed,
            format!("the event stream {stream:?} does not support replay: leave out startTime"),
        ),
        NotifyError::Log { .. } => RpcError::new(
            ErrorType::Application,
            ErrorTag::OperationFailed,
            error.to_string(),
        ),
    }
}

/// A `date-and-time` parameter.
fn parse_time(name: &str, text: &str) -> Result<DateTime<Utc>, Vec<RpcError>> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            vec![
                RpcError::new(
                    ErrorType::Protocol,
                    ErrorTag::BadElement,
                    format!("{name} \"{}\" is not a date-and-time: {e}", text.trim()),
                )
                .with_info(ErrorInfo::BadElement(name.into())),
            ]
        })
}

/// `/netconf/streams`: every stream, with its replay support and log creation time.
pub fn streams_xml(notifier: &Notifier) -> String {
    let mut out = format!("<netconf xmlns=\"{NS_NC_NOTIFICATIONS}\"><streams>");
    for stream in notifier.streams() {
        let _ = write!(
            out,
            "<stream><name>{}</name><description>{}</description><replaySupport>{}</replaySupport>",
            escape_text(&stream.name),
            escape_text(&stream.description),
            stream.replay_log_created.is_some()
        );
        if let Some(created) = stream.replay_log_created {
            let _ = write!(
                out,
                "<replayLogCreationTime>{}</replayLogCreationTime>",
                event_time(created)
            );
        }
        out.push_str("</stream>");
    }
    out.push_str("</streams></netconf>");
    out
}
