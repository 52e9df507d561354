//! `/sys:system-state` (RFC 7317): the platform the server runs on and its clock. The "system"
//! is the server: `boot-datetime` is when it started.

use std::sync::OnceLock;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::netconf::xml::escape_text;

/// The namespace of ietf-system.
const NS_SYSTEM: &str = "urn:ietf:params:xml:ns:yang:ietf-system";

/// When the server started (the first call: the runtime makes it at start).
pub fn boot_time() -> DateTime<Utc> {
    static BOOT: OnceLock<DateTime<Utc>> = OnceLock::new();
    *BOOT.get_or_init(Utc::now)
}

/// `uname(2)`: (sysname, release, version, machine).
fn uname() -> Option<(String, String, String, String)> {
    // SAFETY: utsname is plain data; uname fills it with NUL-terminated strings.
    let mut info: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut info) } != 0 {
        return None;
    }
    let field = |chars: &[libc::c_char]| {
        // SAFETY: uname NUL-terminates every field within its array.
        unsafe { std::ffi::CStr::from_ptr(chars.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    Some((
        field(&info.sysname),
        field(&info.release),
        field(&info.version),
        field(&info.machine),
    ))
}

/// `/sys:system-state` as XML.
pub fn system_state_xml() -> String {
    let mut out = format!("<system-state xmlns=\"{NS_SYSTEM}\">");
    if let Some((name, release, version, machine)) = uname() {
        out.push_str(&format!(
            "<platform><os-name>{}</os-name><os-release>{}</os-release>\
             <os-version>{}</os-version><machine>{}</machine></platform>",
            escape_text(&name),
            escape_text(&release),
            escape_text(&version),
            escape_text(&machine)
        ));
    }
    out.push_str(&format!(
        "<clock><current-datetime>{}</current-datetime><boot-datetime>{}</boot-datetime></clock>",
        Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        boot_time().to_rfc3339_opts(SecondsFormat::Secs, true)
    ));
    out.push_str("</system-state>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is rendered validates against the module.
    #[test]
    fn system_state_validates() {
        let xml = system_state_xml();
        assert!(xml.contains("<os-name>Linux</os-name>"), "{xml}");
        let ctx = crate::yang::test_context();
        yang5::data::DataTree::parse_string(
            ctx,
            &xml,
            yang5::data::DataFormat::XML,
            yang5::data::DataParserFlags::STRICT,
            yang5::data::DataValidationFlags::PRESENT,
        )
        .expect("valid /system-state");
    }
}
