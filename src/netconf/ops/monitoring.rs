//! NETCONF monitoring (RFC 6022): the `/netconf-state` state data and `<get-schema>`, and the
//! YANG library state (`/modules-state`, `/yang-library`) and the event streams
//! (`/netconf/streams`) that `get` returns beside it.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Call, OpOutcome};
use crate::datastore::{DatastoreName, Filter};
use crate::netconf::NetconfServer;
use crate::netconf::error::{ErrorInfo, ErrorTag, ErrorType, RpcError};
use crate::netconf::library::NS_YANG_LIBRARY;
use crate::netconf::rpc::OpResult;
use crate::netconf::sessions::Counters;
use crate::netconf::subscription::NS_NC_NOTIFICATIONS;
use crate::netconf::xml::escape_text;

/// The namespace of ietf-netconf-monitoring.
pub const NS_MONITORING: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring";

/// The server's state documents (XML) for `get` and the operational datastore:
/// `/netconf-state`, `/modules-state` and `/yang-library` — those that `filter` may select
/// (a subtree filter names its top-level nodes; anything else may select any of them), so
/// that a `get` of `/python-vm` does not build the monitoring data.
pub fn state_documents(server: &NetconfServer, filter: Option<&Filter>) -> Vec<String> {
    let wanted = |ns: &str, name: &str| match filter {
        Some(Filter::Subtree(nodes)) => nodes
            .iter()
            .any(|n| n.name == name && n.ns.as_deref().is_none_or(|n| n == ns)),
        _ => true,
    };
    let mut docs = Vec::new();
    if wanted(NS_MONITORING, "netconf-state") {
        docs.push(netconf_state_xml(server));
    }
    if wanted(NS_YANG_LIBRARY, "modules-state") {
        docs.push(server.schema().library.modules_state_xml());
    }
    if wanted(NS_YANG_LIBRARY, "yang-library") {
        docs.push(server.schema().library.yang_library_xml());
    }
    if wanted(NS_NC_NOTIFICATIONS, "netconf") {
        docs.push(super::notifications::streams_xml(&server.notifier));
    }
    if wanted(crate::datastore::nacm::NS_NACM, "nacm") {
        docs.push(server.nacm.to_xml());
    }
    docs
}

/// `/netconf-state` (RFC 6022 §2).
fn netconf_state_xml(server: &NetconfServer) -> String {
    let mut out = String::with_capacity(16384);
    let _ = write!(
        out,
        "<netconf-state xmlns=\"{NS_MONITORING}\"><capabilities>"
    );
    for c in &server.schema().capabilities {
        let _ = write!(out, "<capability>{}</capability>", escape_text(c));
    }
    out.push_str("</capabilities><datastores>");
    let locks = server.datastore.lock_list();
    for ds in DatastoreName::ALL {
        let _ = write!(out, "<datastore><name>{}</name>", ds.as_str());
        if let Some(lock) = locks.iter().find(|l| l.datastore == ds) {
            let _ = write!(
                out,
                "<locks><global-lock><locked-by-session>{}</locked-by-session>\
                 <locked-time>{}</locked-time></global-lock></locks>",
                lock.session,
                date_time(lock.since)
            );
        }
        out.push_str("</datastore>");
    }
    out.push_str("</datastores><schemas>");
    for m in server.schema().library.all() {
        let namespace = escape_text(&m.namespace);
        schema_entry(&mut out, &m.name, m.revision.as_deref(), &namespace);
        for s in &m.submodules {
            schema_entry(&mut out, &s.name, s.revision.as_deref(), &namespace);
        }
    }
    out.push_str("</schemas><sessions>");
    for s in server.sessions.list() {
        let _ = write!(
            out,
            "<session><session-id>{}</session-id><transport>netconf-ssh</transport>\
             <username>{}</username>",
            s.id,
            escape_text(&s.user)
        );
        if let Some(addr) = s.addr {
            let _ = write!(out, "<source-host>{}</source-host>", addr.ip());
        }
        let _ = write!(out, "<login-time>{}</login-time>", date_time(s.started));
        counters_xml(&mut out, &s.counters);
        out.push_str("</session>");
    }
    let stats = &server.sessions.stats;
    let get = Counters::get;
    let _ = write!(
        out,
        "</sessions><statistics><netconf-start-time>{}</netconf-start-time>\
         <in-bad-hellos>{}</in-bad-hellos><in-sessions>{}</in-sessions>\
         <dropped-sessions>{}</dropped-sessions>",
        date_time(stats.started),
        get(&stats.in_bad_hellos),
        get(&stats.in_sessions),
        get(&stats.dropped_sessions)
    );
    counters_xml(&mut out, &stats.totals);
    out.push_str("</statistics></netconf-state>");
    out
}

fn counters_xml(out: &mut String, c: &Counters) {
    let get = Counters::get;
    let _ = write!(
        out,
        "<in-rpcs>{}</in-rpcs><in-bad-rpcs>{}</in-bad-rpcs><out-rpc-errors>{}</out-rpc-errors>\
         <out-notifications>{}</out-notifications>",
        get(&c.in_rpcs),
        get(&c.in_bad_rpcs),
        get(&c.out_rpc_errors),
        get(&c.out_notifications)
    );
}

/// One `/netconf-state/schemas/schema` entry; every schema is in YANG and fetched with
/// `<get-schema>` (location `NETCONF`).
fn schema_entry(out: &mut String, name: &str, revision: Option<&str>, namespace: &str) {
    let _ = write!(
        out,
        "<schema><identifier>{}</identifier><version>{}</version><format>yang</format>\
         <namespace>{namespace}</namespace><location>NETCONF</location></schema>",
        escape_text(name),
        escape_text(revision.unwrap_or(""))
    );
}

/// `<get-schema>` (RFC 6022 §3.1): the text of a module or submodule, in YANG (as loaded) or
/// YIN (printed by libyang).
pub async fn get_schema(call: &Call<'_>) -> OpOutcome {
    let op = call.operation;
    let param = |name: &str| {
        op.elements()
            .find(|e| e.name == name && (e.ns == NS_MONITORING || e.ns.is_empty()))
            .map(|e| e.text().trim().to_string())
    };
    let identifier =
        param("identifier").ok_or_else(|| vec![RpcError::missing_element("identifier")])?;
    let version = param("version").filter(|v| !v.is_empty());
    // An identityref: `yang`, `ncm:yang` or another prefix bound to the monitoring namespace.
    let format = param("format").unwrap_or_else(|| "yang".into());
    let format = format.rsplit(':').next().unwrap_or("yang").to_string();
    // A module that access control hides as a whole is not served either.
    if !call.access.module_readable(&identifier) {
        call.server
            .nacm
            .denied_operations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(vec![RpcError::access_denied(format!(
            "access denied: the schema {identifier} may not be read"
        ))]);
    }
    let schema = call.server.schema();
    let text = match format.as_str() {
        "yang" => schema.yang.schema_text(&identifier, version.as_deref()),
        "yin" => schema.yang.schema_yin(&identifier, version.as_deref()),
        other => {
            return Err(vec![
                RpcError::new(
                    ErrorType::Application,
                    ErrorTag::InvalidValue,
                    format!("schemas are available in yang and yin, not {other}"),
                )
                .with_info(ErrorInfo::BadElement("format".into())),
            ]);
        }
    };
    match text {
        Some(text) => Ok(OpResult::Body(format!(
            "<data xmlns=\"{NS_MONITORING}\">{}</data>",
            escape_text(&text)
        ))),
        None => Err(vec![
            RpcError::new(
                ErrorType::Application,
                ErrorTag::InvalidValue,
                match &version {
                    Some(v) => format!("no schema {identifier} revision {v}"),
                    None => format!("no schema {identifier}"),
                },
            )
            .with_info(ErrorInfo::BadElement("identifier".into())),
        ]),
    }
}

/// A `yang:date-and-time` in UTC, to the second.
pub fn date_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn date_time_is_utc_rfc3339() {
        assert_eq!(date_time(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_637_458);
        assert_eq!(date_time(t), "2026-11-25T20:10:58Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(date_time(leap), "2000-02-29T00:00:00Z");
    }
}
