//! `/python-vm/status`: the operational view of the VMs, rendered as XML for `get`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use quick_xml::escape::escape;

use super::supervisor::{VmSpec, VmStatus};
use crate::vm::protocol::{ComponentState, ThreadState};

/// Renders `/python-vm/status/start` and `/python-vm/status/current` for every VM.
pub fn status_xml(vms: &[(VmSpec, VmStatus)]) -> String {
    let mut out = String::from("<python-vm xmlns=\"http://tail-f.com/ns/ncs\"><status>");
    for (spec, status) in vms {
        let _ = write!(out, "<start><node-id>{}</node-id>", escape(&spec.name));
        // Group by package, in the VM's package order.
        for package in &spec.packages {
            let components: Vec<_> = status
                .components
                .iter()
                .filter(|c| c.package == package.name)
                .collect();
            if components.is_empty() {
                continue;
            }
            let _ = write!(
                out,
                "<packages><package-name>{}</package-name>",
                escape(&package.name)
            );
            for c in components {
                let _ = write!(
                    out,
                    "<components><component-name>{}</component-name><class-name>{}</class-name><status>{}</status>",
                    escape(&c.component),
                    escape(&c.class_name),
                    match c.state {
                        ComponentState::Started => "started",
                        ComponentState::Failed => "failed",
                    }
                );
                if let Some(info) = &c.error_info {
                    let _ = write!(out, "<error-info>{}</error-info>", escape(info));
                }
                out.push_str("</components>");
            }
            out.push_str("</packages>");
        }
        out.push_str("</start>");
    }
    for (spec, status) in vms {
        if status.current.is_empty() {
            continue;
        }
        let _ = write!(out, "<current><node-id>{}</node-id>", escape(&spec.name));
        // package → component → [(class-name, state)], keys unique and ordered.
        let mut tree: BTreeMap<&str, BTreeMap<&str, BTreeMap<&str, ThreadState>>> = BTreeMap::new();
        for e in &status.current {
            tree.entry(&e.package)
                .or_default()
                .entry(&e.component)
                .or_default()
                .insert(&e.class_name, e.state);
        }
        for (package, components) in tree {
            let _ = write!(
                out,
                "<packages><package-name>{}</package-name>",
                escape(package)
            );
            for (component, names) in components {
                let _ = write!(
                    out,
                    "<components><component-name>{}</component-name>",
                    escape(component)
                );
                for (name, state) in names {
                    let _ = write!(
                        out,
                        "<class-names><class-name>{}</class-name><status>{}</status></class-names>",
                        escape(name),
                        match state {
                            ThreadState::Running => "running",
                            ThreadState::Finished => "finished",
                        }
                    );
                }
                out.push_str("</components>");
            }
            out.push_str("</packages>");
        }
        out.push_str("</current>");
    }
    out.push_str("</status></python-vm>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::supervisor::ComponentStatus;
    use crate::vm::protocol::{CurrentEntry, VmComponent, VmPackage};

    #[test]
    fn renders_start_and_current() {
        let spec = VmSpec {
            name: "vm<1>".into(),
            packages: vec![VmPackage {
                name: "p".into(),
                components: vec![VmComponent {
                    name: "main".into(),
                    class_name: "m.App".into(),
                    source: None,
                }],
            }],
            sys_path: vec![],
            site_dirs: vec![],
            fingerprint: 0,
        };
        let status = VmStatus {
            components: vec![ComponentStatus {
                package: "p".into(),
                component: "main".into(),
                class_name: "m.App".into(),
                state: ComponentState::Failed,
                error_info: Some("boom & bust".into()),
            }],
            current: vec![CurrentEntry {
                package: "p".into(),
                component: "main".into(),
                class_name: "ComponentThread:main".into(),
                state: ThreadState::Running,
            }],
        };
        let xml = status_xml(&[(spec, status)]);
        assert!(xml.contains("<node-id>vm&lt;1&gt;</node-id>"), "{xml}");
        assert!(xml.contains("<status>failed</status><error-info>boom &amp; bust</error-info>"));
        assert!(xml.contains(
            "<class-names><class-name>ComponentThread:main</class-name><status>running</status>"
        ));
    }
}
