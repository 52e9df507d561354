//! The part of the running configuration that drives the runtime: `/python-vm/logging`,
//! `/python-vm/sanity-checks` and the options of notification sources
//! (`/pyvmd-notifications:notification-sources`), read from each committed running snapshot.

use std::collections::BTreeMap;

use yang5::data::{Data, DataTree};

use crate::vm::protocol::{LogLevel, SelfAssignMode, SourceSettings};

/// What `/python-vm` configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonVmConfig {
    /// `logging/log-file-prefix`.
    pub log_file_prefix: String,
    /// `logging/level`: the level of every VM without a `vm-levels` entry.
    pub level: LogLevel,
    /// `logging/vm-levels`: node-id (a VM or package name) → level.
    pub vm_levels: BTreeMap<String, LogLevel>,
    /// `sanity-checks/self-assign-warning`.
    pub self_assign: SelfAssignMode,
    /// `/notification-sources/source`: (package, component) → what overrides the metadata.
    pub sources: BTreeMap<(String, String), SourceSettings>,
}

impl Default for PythonVmConfig {
    /// The YANG defaults.
    fn default() -> Self {
        PythonVmConfig {
            log_file_prefix: "ncs-python-vm".into(),
            level: LogLevel::LevelInfo,
            vm_levels: BTreeMap::new(),
            self_assign: SelfAssignMode::Alarm,
            sources: BTreeMap::new(),
        }
    }
}

const ROOT: &str = "/tailf-ncs:python-vm";

impl PythonVmConfig {
    /// Reads the configuration from a validated running tree (defaults are present in it).
    pub fn from_running(tree: &DataTree<'_>) -> PythonVmConfig {
        let mut config = PythonVmConfig::default();
        let value = |path: &str| {
            tree.find_path(&format!("{ROOT}/{path}"))
                .ok()
                .and_then(|n| n.value_canonical())
        };
        if let Some(prefix) = value("logging/log-file-prefix") {
            config.log_file_prefix = prefix;
        }
        if let Some(level) = value("logging/level").and_then(|v| LogLevel::parse(&v)) {
            config.level = level;
        }
        config.self_assign = match value("sanity-checks/self-assign-warning").as_deref() {
            Some("log") => SelfAssignMode::Log,
            Some("off") => SelfAssignMode::Off,
            _ => SelfAssignMode::Alarm,
        };
        if let Ok(entries) =
            crate::datastore::find_xpath(tree, &format!("{ROOT}/logging/vm-levels"))
        {
            for entry in entries {
                let mut node_id = None;
                let mut level = None;
                for child in entry.children() {
                    match child.schema().name() {
                        "node-id" => node_id = child.value_canonical(),
                        "level" => {
                            level = child.value_canonical().and_then(|v| LogLevel::parse(&v))
                        }
                        _ => {}
                    }
                }
                if let (Some(id), Some(level)) = (node_id, level) {
                    config.vm_levels.insert(id, level);
                }
            }
        }
        config.sources = sources_from_running(tree);
        config
    }

    /// The settings a source runs with: those of the metadata (`base`), with the configured
    /// stream and options of `package`/`component` over them.
    pub fn source_settings(
        &self,
        package: &str,
        component: &str,
        base: &SourceSettings,
    ) -> SourceSettings {
        let mut settings = base.clone();
        if let Some(configured) = self
            .sources
            .get(&(package.to_owned(), component.to_owned()))
        {
            if configured.stream.is_some() {
                settings.stream.clone_from(&configured.stream);
            }
            settings.options.extend(configured.options.clone());
        }
        settings
    }

    /// The effective level of a VM: its own `vm-levels` entry, else that of one of its packages
    /// (the first in load order), else the global level.
    pub fn level_for(&self, vm_name: &str, packages: &[String]) -> LogLevel {
        self.vm_levels
            .get(vm_name)
            .or_else(|| packages.iter().find_map(|p| self.vm_levels.get(p)))
            .copied()
            .unwrap_or(self.level)
    }

    /// `<log-dir>/<prefix>-<vm>.log`.
    pub fn vm_log_file(&self, log_dir: &std::path::Path, vm_name: &str) -> std::path::PathBuf {
        log_dir.join(format!("{}-{vm_name}.log", self.log_file_prefix))
    }

    /// `<log-dir>/<prefix>.log`: what every VM writes to stdout and stderr.
    pub fn shared_log_file(&self, log_dir: &std::path::Path) -> std::path::PathBuf {
        log_dir.join(format!("{}.log", self.log_file_prefix))
    }
}

/// `/pyvmd-notifications:notification-sources/source` entries.
fn sources_from_running(tree: &DataTree<'_>) -> BTreeMap<(String, String), SourceSettings> {
    let mut sources = BTreeMap::new();
    let Ok(entries) =
        crate::datastore::find_xpath(tree, "/pyvmd-notifications:notification-sources/source")
    else {
        return sources;
    };
    for entry in entries {
        let (mut package, mut component) = (None, None);
        let mut settings = SourceSettings::default();
        for child in entry.children() {
            match child.schema().name() {
                "package" => package = child.value_canonical(),
                "component" => component = child.value_canonical(),
                "stream" => settings.stream = child.value_canonical(),
                "option" => {
                    let mut name = None;
                    let mut value = None;
                    for part in child.children() {
                        match part.schema().name() {
                            "name" => name = part.value_canonical(),
                            "value" => value = part.value_canonical(),
                            _ => {}
                        }
                    }
                    if let (Some(name), Some(value)) = (name, value) {
                        settings.options.insert(name, value);
                    }
                }
                _ => {}
            }
        }
        if let (Some(package), Some(component)) = (package, component) {
            sources.insert((package, component), settings);
        }
    }
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_resolve_vm_then_package_then_global() {
        let mut config = PythonVmConfig::default();
        config
            .vm_levels
            .insert("pkg-b".into(), LogLevel::LevelError);
        let packages = vec!["pkg-a".to_string(), "pkg-b".to_string()];
        assert_eq!(config.level_for("vm", &packages), LogLevel::LevelError);
        config.vm_levels.insert("vm".into(), LogLevel::LevelDebug);
        assert_eq!(config.level_for("vm", &packages), LogLevel::LevelDebug);
        assert_eq!(config.level_for("other", &[]), LogLevel::LevelInfo);
    }
}
