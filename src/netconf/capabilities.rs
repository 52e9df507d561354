//! The capabilities this server announces in its `<hello>`, and reading the client's.

use std::fmt::Write as _;

use crate::netconf::xml::{Element, NS_BASE, escape_text};

/// base:1.0 (end-of-message framing).
pub const BASE_1_0: &str = "urn:ietf:params:netconf:base:1.0";
/// base:1.1 (chunked framing).
pub const BASE_1_1: &str = "urn:ietf:params:netconf:base:1.1";

/// The protocol capabilities: only what works is announced.
pub fn protocol_capabilities() -> Vec<String> {
    [
        BASE_1_0,
        BASE_1_1,
        "urn:ietf:params:netconf:capability:writable-running:1.0",
        "urn:ietf:params:netconf:capability:candidate:1.0",
        "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
        "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
        "urn:ietf:params:netconf:capability:validate:1.1",
        "urn:ietf:params:netconf:capability:startup:1.0",
        "urn:ietf:params:netconf:capability:xpath:1.0",
        "urn:ietf:params:netconf:capability:notification:1.0",
        "urn:ietf:params:netconf:capability:interleave:1.0",
        "urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit&also-supported=report-all,report-all-tagged,trim",
        // NSO's <action> form, beside YANG 1.1 actions.
        "http://tail-f.com/ns/netconf/actions/1.0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The ietf-netconf features that match [`protocol_capabilities`]; enabled when the YANG
/// context is loaded so that the module capability of ietf-netconf tells the same story.
pub const IETF_NETCONF_FEATURES: &[&str] = &[
    "writable-running",
    "candidate",
    "confirmed-commit",
    "rollback-on-error",
    "validate",
    "startup",
    "xpath",
];

/// The features of ietf-netconf-nmda: `get-data` takes `with-origin` and `origin-filter`
/// (origin) and `with-defaults` (with-defaults).
pub const NMDA_FEATURES: &[&str] = &["origin", "with-defaults"];

/// Every module whose features the server chooses, for [`crate::yang::YangContext::load`].
pub const MODULE_FEATURES: &[(&str, &[&str])] = &[
    ("ietf-netconf", IETF_NETCONF_FEATURES),
    ("ietf-netconf-nmda", NMDA_FEATURES),
    // Users with passwords and SSH keys (RFC 7317 §5).
    ("ietf-system", &["authentication", "local-users"]),
    // The password hashes a user entry may hold ($1$, $5$, $6$; $0$ is hashed on commit).
    (
        "iana-crypt-hash",
        &["crypt-hash-md5", "crypt-hash-sha-256", "crypt-hash-sha-512"],
    ),
];

/// The server's `<hello>` message.
pub fn server_hello(capabilities: &[String], session_id: u32) -> String {
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><hello xmlns=\"{NS_BASE}\"><capabilities>"
    );
    for c in capabilities {
        let _ = write!(out, "<capability>{}</capability>", escape_text(c));
    }
    let _ = write!(
        out,
        "</capabilities><session-id>{session_id}</session-id></hello>"
    );
    out
}

/// What the client's `<hello>` says.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientHello {
    /// True if the client announced base:1.1, so chunked framing follows.
    pub base_1_1: bool,
}

/// Reads a client `<hello>`; an error says why the session must be closed (RFC 6241 §8.1).
pub fn parse_client_hello(hello: &Element) -> Result<ClientHello, String> {
    if !hello.is(NS_BASE, "hello") {
        return Err(format!("expected <hello>, got <{}>", hello.name));
    }
    if hello.child(NS_BASE, "session-id").is_some() {
        return Err("a client <hello> must not contain a session-id".into());
    }
    let caps: Vec<String> = hello
        .child(NS_BASE, "capabilities")
        .map(|c| {
            c.elements()
                .filter(|e| e.is(NS_BASE, "capability"))
                .map(|e| e.text().trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    let base_1_0 = caps.iter().any(|c| c == BASE_1_0);
    let base_1_1 = caps.iter().any(|c| c == BASE_1_1);
    if !base_1_0 && !base_1_1 {
        return Err("the client supports neither base:1.0 nor base:1.1".into());
    }
    Ok(ClientHello { base_1_1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netconf::xml::parse;

    #[test]
    fn client_hello_versions() {
        let h = parse(
            br#"<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>
            <capability>urn:ietf:params:netconf:base:1.0</capability>
            <capability> urn:ietf:params:netconf:base:1.1 </capability></capabilities></hello>"#,
        )
        .unwrap();
        assert_eq!(parse_client_hello(&h), Ok(ClientHello { base_1_1: true }));
        let h = parse(b"<hello><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>").unwrap();
        assert_eq!(parse_client_hello(&h), Ok(ClientHello { base_1_1: false }));
        let h = parse(b"<hello><capabilities/></hello>").unwrap();
        assert!(parse_client_hello(&h).is_err());
        let h = parse(b"<hello><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability></capabilities><session-id>4</session-id></hello>").unwrap();
        assert!(parse_client_hello(&h).is_err());
    }

    #[test]
    fn server_hello_lists_capabilities_and_session() {
        let h = server_hello(&protocol_capabilities(), 7);
        let e = parse(h.as_bytes()).unwrap();
        assert_eq!(e.child(NS_BASE, "session-id").unwrap().text(), "7");
        assert_eq!(
            e.child(NS_BASE, "capabilities").unwrap().elements().count(),
            protocol_capabilities().len()
        );
    }
}
