//! The YANG library: what modules the server implements and imports, told to clients in three
//! ways that different clients read:
//!
//! - RFC 7895 `/modules-state` with its `module-set-id`, announced by the
//!   `urn:ietf:params:netconf:capability:yang-library:1.0` capability. This is the form yangcli
//!   understands: it reads `/modules-state` and fetches every module it lacks with
//!   `<get-schema>`.
//! - RFC 8525 `/yang-library` (module sets, schemas, the NMDA datastores), announced by the
//!   `yang-library:1.1` capability of RFC 8526.
//! - RFC 6022 `/netconf-state/schemas`, the list `<get-schema>` serves.
//!
//! libyang has `ietf-yang-library@2019-01-04` built in, which defines both `/yang-library` and
//! the (deprecated, but still defined) `/modules-state` in the same namespace as the 2016
//! revision; both are built here from [`YangContext::modules`] and
//! [`YangContext::imported_modules`] so that they list exactly what the server advertises and
//! `<get-schema>` can return, and none of libyang's private modules.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::netconf::xml::escape_text;
use crate::yang::{ModuleInfo, YangContext};

/// The namespace of ietf-yang-library (both revisions).
pub const NS_YANG_LIBRARY: &str = "urn:ietf:params:xml:ns:yang:ietf-yang-library";
/// The namespace of the datastore identities (RFC 8342).
pub const NS_DATASTORES: &str = "urn:ietf:params:xml:ns:yang:ietf-datastores";

/// The modules of the library: implemented ones, then those only imported.
pub struct Library {
    /// Implemented modules.
    pub implemented: Vec<ModuleInfo>,
    /// Modules present only for their definitions.
    pub imported: Vec<ModuleInfo>,
    /// RFC 7895 `module-set-id` and RFC 8525 `content-id`: a digest of everything listed, so
    /// it changes exactly when the library does.
    pub id: String,
}

impl Library {
    /// The library of a YANG context.
    pub fn new(yang: &YangContext) -> Library {
        let implemented = yang.modules();
        let imported = yang.imported_modules();
        let mut digest = Sha256::new();
        for m in implemented.iter().chain(&imported) {
            digest.update(m.capability().as_bytes());
            digest.update([u8::from(m.implemented)]);
            for s in &m.submodules {
                digest.update(s.name.as_bytes());
                digest.update(s.revision.as_deref().unwrap_or("").as_bytes());
            }
            digest.update(b"\n");
        }
        let id = digest
            .finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        Library {
            implemented,
            imported,
            id,
        }
    }

    /// Every module, implemented first.
    pub fn all(&self) -> impl Iterator<Item = &ModuleInfo> {
        self.implemented.iter().chain(&self.imported)
    }

    /// The capabilities that announce the library: `yang-library:1.0` (RFC 7950 §5.6.4) with
    /// the RFC 7895 revision, the form yangcli reads, and `yang-library:1.1` with the
    /// `content-id` of `/yang-library`, which RFC 8526 requires of an NMDA server.
    ///
    /// yangcli (yuma123 2.13) does not know the 1.1 capability: it takes it for a module
    /// capability without a module and warns once per connect, then goes on with the 1.0 one.
    pub fn capabilities(&self) -> Vec<String> {
        vec![
            format!(
                "urn:ietf:params:netconf:capability:yang-library:1.0?revision=2016-06-21&module-set-id={}",
                self.id
            ),
            format!(
                "urn:ietf:params:netconf:capability:yang-library:1.1?revision=2019-01-04&content-id={}",
                self.id
            ),
        ]
    }

    /// RFC 7895 `/modules-state` as XML.
    pub fn modules_state_xml(&self) -> String {
        let mut out = String::with_capacity(8192);
        let _ = write!(
            out,
            "<modules-state xmlns=\"{NS_YANG_LIBRARY}\"><module-set-id>{}</module-set-id>",
            self.id
        );
        // Modules that only deviate others are named by their `<deviation>` entries: listed as
        // modules too, yangcli (yuma123 2.13) fetches them twice and fails on the second copy.
        let deviating: std::collections::HashSet<&str> = self
            .all()
            .flat_map(|m| m.deviations.iter().map(String::as_str))
            .collect();
        for m in self.all().filter(|m| !deviating.contains(m.name.as_str())) {
            out.push_str("<module>");
            name_revision(&mut out, &m.name, m.revision.as_deref(), true);
            let _ = write!(out, "<namespace>{}</namespace>", escape_text(&m.namespace));
            for f in &m.features {
                let _ = write!(out, "<feature>{}</feature>", escape_text(f));
            }
            for d in &m.deviations {
                out.push_str("<deviation>");
                let revision = self
                    .implemented
                    .iter()
                    .find(|x| &x.name == d)
                    .and_then(|x| x.revision.as_deref());
                name_revision(&mut out, d, revision, true);
                out.push_str("</deviation>");
            }
            let _ = write!(
                out,
                "<conformance-type>{}</conformance-type>",
                if m.implemented { "implement" } else { "import" }
            );
            for s in &m.submodules {
                out.push_str("<submodule>");
                name_revision(&mut out, &s.name, s.revision.as_deref(), true);
                out.push_str("</submodule>");
            }
            out.push_str("</module>");
        }
        out.push_str("</modules-state>");
        out
    }

    /// RFC 8525 `/yang-library` as XML: one module set and one schema, used by every datastore.
    pub fn yang_library_xml(&self) -> String {
        let mut out = String::with_capacity(8192);
        let _ = write!(
            out,
            "<yang-library xmlns=\"{NS_YANG_LIBRARY}\" xmlns:ds=\"{NS_DATASTORES}\">\
             <module-set><name>complete</name>"
        );
        for m in &self.implemented {
            out.push_str("<module>");
            name_revision(&mut out, &m.name, m.revision.as_deref(), false);
            let _ = write!(out, "<namespace>{}</namespace>", escape_text(&m.namespace));
            for s in &m.submodules {
                out.push_str("<submodule>");
                name_revision(&mut out, &s.name, s.revision.as_deref(), false);
                out.push_str("</submodule>");
            }
            for f in &m.features {
                let _ = write!(out, "<feature>{}</feature>", escape_text(f));
            }
            for d in &m.deviations {
                let _ = write!(out, "<deviation>{}</deviation>", escape_text(d));
            }
            out.push_str("</module>");
        }
        for m in &self.imported {
            out.push_str("<import-only-module>");
            name_revision(&mut out, &m.name, m.revision.as_deref(), true);
            let _ = write!(out, "<namespace>{}</namespace>", escape_text(&m.namespace));
            for s in &m.submodules {
                out.push_str("<submodule>");
                name_revision(&mut out, &s.name, s.revision.as_deref(), false);
                out.push_str("</submodule>");
            }
            out.push_str("</import-only-module>");
        }
        out.push_str(
            "</module-set><schema><name>complete</name><module-set>complete</module-set></schema>",
        );
        for ds in ["running", "candidate", "startup", "intended", "operational"] {
            let _ = write!(
                out,
                "<datastore><name>ds:{ds}</name><schema>complete</schema></datastore>"
            );
        }
        let _ = write!(out, "<content-id>{}</content-id></yang-library>", self.id);
        out
    }
}

/// `<name>` and `<revision>`; a missing revision is written as empty when `empty_revision`
/// (keys of RFC 7895 lists), and left out otherwise.
fn name_revision(out: &mut String, name: &str, revision: Option<&str>, empty_revision: bool) {
    let _ = write!(out, "<name>{}</name>", escape_text(name));
    match revision {
        Some(r) => {
            let _ = write!(out, "<revision>{}</revision>", escape_text(r));
        }
        None if empty_revision => out.push_str("<revision></revision>"),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use yang5::data::{DataFormat, DataParserFlags, DataTree, DataValidationFlags};

    use super::*;
    use crate::netconf::capabilities::MODULE_FEATURES;

    fn library() -> (YangContext, Library) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("yang");
        let yang = YangContext::load(&dir, MODULE_FEATURES).expect("yang/ loads");
        let library = Library::new(&yang);
        (yang, library)
    }

    #[test]
    fn library_data_is_valid_against_ietf_yang_library() {
        let (yang, library) = library();
        // Both together: /yang-library is mandatory in the schema, so neither validates alone.
        {
            let xml = library.modules_state_xml() + &library.yang_library_xml();
            DataTree::parse_string(
                yang.context(),
                &xml,
                DataFormat::XML,
                DataParserFlags::STRICT,
                DataValidationFlags::PRESENT,
            )
            .unwrap_or_else(|e| panic!("{e}: {xml}"));
        }
        let state = library.modules_state_xml();
        assert!(state.contains("<name>tailf-ncs</name>"));
        assert!(state.contains("<conformance-type>import</conformance-type>"));
        assert!(state.contains(&format!("<module-set-id>{}</module-set-id>", library.id)));
    }

    #[test]
    fn id_is_stable_and_announced() {
        let (_, a) = library();
        let (_, b) = library();
        assert_eq!(a.id, b.id);
        assert_eq!(a.id.len(), 16);
        let caps = a.capabilities();
        assert_eq!(
            caps,
            [
                format!(
                    "urn:ietf:params:netconf:capability:yang-library:1.0?revision=2016-06-21&module-set-id={}",
                    a.id
                ),
                format!(
                    "urn:ietf:params:netconf:capability:yang-library:1.1?revision=2019-01-04&content-id={}",
                    a.id
                )
            ]
        );
    }
}
