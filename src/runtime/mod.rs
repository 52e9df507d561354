//! The Python VM runtime: the packages found in `--packages`, the VM processes that run them,
//! and what NETCONF sees of both (`/python-vm/status`, `/ncs:packages`, the `start`, `stop` and
//! `reload` actions). It follows the running datastore: a committed change of `/python-vm`
//! reaches the VMs at once.

mod actions;
mod alarms;
mod callbacks;
mod config;
pub mod import_check;
pub mod limits;
mod maapi;
pub mod packages;
mod status;
pub mod streams;
mod supervisor;
mod system_state;
mod upgrade;

pub use actions::{PackageAction, actionpoint, package_action};
pub use config::PythonVmConfig;
pub use supervisor::{ComponentStatus, SupervisorOptions, VmSpec, VmStatus};

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use thiserror::Error;
use tracing::info;

use crate::datastore::Datastore;
use crate::notify::Notifier;
use crate::vm::protocol::{VmComponent, VmPackage};
use crate::yang::YangContext;
use alarms::AlarmList;
use callbacks::CommitRunner;
use maapi::OperationalSource;
use packages::PackageSet;
use supervisor::Supervisor;
use upgrade::PackageVersions;

/// Why an action failed.
#[derive(Debug, Error)]
pub enum ActionError {
    /// An input value names nothing this server knows.
    #[error("{message}")]
    InvalidInput {
        /// The input leaf.
        leaf: String,
        /// What is wrong.
        message: String,
    },
    /// A mandatory input leaf is missing.
    #[error("missing input {0}")]
    MissingInput(String),
    /// No such action is implemented here.
    #[error("the action {0} has no handler in this server")]
    Unknown(String),
    /// No running VM registered the actionpoint.
    #[error(
        "no Python code registered the actionpoint {point} (for {path}); the package that registers it is not running"
    )]
    NotRegistered {
        /// The actionpoint.
        point: String,
        /// The action's keypath.
        path: String,
    },
    /// The callback raised, returned `CONFD_ERR`, timed out or its VM ended.
    #[error("{message}")]
    Failed {
        /// What the client reads: the Python message, or why there was no answer.
        message: String,
    },
    /// The callback's output does not fit the model.
    #[error("the action {path} returned an output that does not fit its model: {message}")]
    BadOutput {
        /// The action's keypath.
        path: String,
        /// libyang's complaint.
        message: String,
    },
}

/// One action invocation: the data path of the action node and its input leaves.
#[derive(Debug, Clone)]
pub struct ActionCall {
    /// The action's data path, e.g. `/tailf-ncs:python-vm/stop`.
    pub path: String,
    /// The input leaves, at any depth: (name, value).
    pub input: Vec<(String, String)>,
    /// Who invokes it.
    pub user: String,
}

impl ActionCall {
    fn input(&self, name: &str) -> Result<&str, ActionError> {
        self.input
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| ActionError::MissingInput(name.to_string()))
    }
}

/// The runtime.
pub struct Runtime {
    supervisor: Arc<Supervisor>,
    alarms: Arc<AlarmList>,
    packages: Mutex<PackageSet>,
    packages_dir: PathBuf,
    /// The versions of the packages that last came up. Held across a whole reload, so that
    /// reloads (and their upgrades) run one at a time.
    versions: tokio::sync::Mutex<PackageVersions>,
    /// The fingerprints of the package YANG in the schema (see
    /// [`PackageSet::yang_fingerprints`]).
    loaded_yang: Mutex<std::collections::BTreeMap<String, u64>>,
    /// The schema: the server's modules and the packages' YANG. A watch channel, so that the
    /// NETCONF layer hears of a reload that changed it.
    yang: tokio::sync::watch::Sender<Arc<YangContext>>,
    /// The event streams (packages add theirs).
    notifier: Arc<Notifier>,
    /// Where the schema is built from again when package YANG changes.
    schema_source: SchemaSource,
    datastore: Arc<Datastore>,
}

/// The schema the runtime starts with, and what it is built from again on a reload.
pub struct Schema {
    /// The schema: the server's modules and the packages' YANG.
    pub yang: Arc<YangContext>,
    /// What it was built from.
    pub source: SchemaSource,
}

/// What the schema is built from: the directory of the server's modules, and the features
/// they are implemented with.
#[derive(Debug, Clone)]
pub struct SchemaSource {
    /// The modules (built in, and those of `--yang-dir`).
    pub dir: PathBuf,
    /// The features to enable, per module.
    pub features: &'static [(&'static str, &'static [&'static str])],
}

const NS_NCS: &str = "http://tail-f.com/ns/ncs";

impl Runtime {
    /// Takes the packages (read from `packages_dir`, their YANG already loaded), runs the upgrade components of those whose version changed, starts
    /// their VMs, and follows the running configuration.
    pub async fn start(
        options: SupervisorOptions,
        packages_dir: PathBuf,
        packages: PackageSet,
        state_dir: &Path,
        datastore: Arc<Datastore>,
        schema: Schema,
        notifier: Arc<Notifier>,
    ) -> Arc<Runtime> {
        let mut running = datastore.subscribe();
        // /sys:system-state's boot-datetime: now.
        system_state::boot_time();
        let config = PythonVmConfig::from_running(&running.borrow_and_update());
        let mut packages = packages;
        // What is up now had its YANG loaded into the schema.
        let loaded_yang = packages.yang_fingerprints();
        let alarms = Arc::new(AlarmList::open(
            datastore.context(),
            state_dir,
            Arc::clone(&notifier),
        ));
        apply_alarm_filter(&alarms, &running.borrow());
        // The VMs' operational transactions read what `get` shows, which the runtime itself
        // produces: it is reached through a weak reference set once the runtime exists.
        let this: Arc<OnceLock<Weak<Runtime>>> = Arc::default();
        let operational: OperationalSource = {
            let this = Arc::clone(&this);
            Arc::new(move || {
                this.get()
                    .and_then(Weak::upgrade)
                    .map(|runtime| runtime.operational_xml())
                    .unwrap_or_default()
            })
        };
        let supervisor = Supervisor::new(
            options,
            config,
            Arc::clone(&alarms),
            Arc::clone(&datastore),
            operational,
            streams::PackageNotifications::new(Arc::clone(&notifier), Arc::clone(&datastore)),
        );
        let mut versions = PackageVersions::load(state_dir);
        upgrade::run_pending(&supervisor, &mut packages, &mut versions).await;
        report_package_status(&alarms, &packages);
        declare_streams(&notifier, &packages);
        let specs = vm_specs(&packages);
        info!(
            packages = packages.packages.len(),
            vms = specs.len(),
            dir = %packages_dir.display(),
            "packages loaded"
        );
        // After the upgrades: their changes do not run package callbacks (as in NSO).
        datastore.set_commit_callbacks(Arc::new(CommitRunner::new(
            Arc::clone(&supervisor),
            tokio::runtime::Handle::current(),
        )));
        supervisor.add_and_start(specs);
        let runtime = Arc::new(Runtime {
            supervisor: Arc::clone(&supervisor),
            alarms: Arc::clone(&alarms),
            packages: Mutex::new(packages),
            packages_dir,
            versions: tokio::sync::Mutex::new(versions),
            loaded_yang: Mutex::new(loaded_yang),
            yang: tokio::sync::watch::Sender::new(schema.yang),
            notifier,
            schema_source: schema.source,
            datastore: Arc::clone(&datastore),
        });
        let _ = this.set(Arc::downgrade(&runtime));
        tokio::spawn(async move {
            while running.changed().await.is_ok() {
                let tree = running.borrow_and_update().clone();
                apply_alarm_filter(&alarms, &tree);
                supervisor.apply_config(PythonVmConfig::from_running(&tree));
            }
        });
        runtime
    }

    /// The operational data the runtime owns, as XML documents.
    pub fn operational_xml(&self) -> Vec<String> {
        // What discovery found, corrected by what the VMs did since: a stopped VM or a failed
        // component puts its packages' oper-status down.
        let mut packages = self
            .packages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let troubles = self.supervisor.package_troubles();
        for package in &mut packages.packages {
            if let (true, Some((status, info))) =
                (package.status.is_up(), troubles.get(&package.name))
            {
                package.status = status.clone();
                package.error_info = info.clone();
            }
        }
        let packages = packages.operational_xml();
        vec![
            status::status_xml(&self.supervisor.statuses()),
            packages,
            self.alarms.to_xml(),
            system_state::system_state_xml(),
        ]
    }

    /// Runs an action; returns the children of its output as XML.
    pub async fn action(&self, call: &ActionCall) -> Result<String, ActionError> {
        let schema_path = crate::datastore::keypath::strip_predicates(&call.path);
        if schema_path.starts_with(alarms::ALARM_LIST_PATH) {
            return self.alarm_action(call, &schema_path);
        }
        match call.path.as_str() {
            "/tailf-ncs:python-vm/stop" => {
                let vm = self.vm_named(call.input("name")?)?;
                let result = if self.supervisor.stop(&vm).await {
                    format!("VM {vm} stopped")
                } else {
                    format!("VM {vm} was not running")
                };
                Ok(result_xml(&result))
            }
            "/tailf-ncs:python-vm/start" => {
                let vm = self.vm_named(call.input("name")?)?;
                let result = if self.supervisor.start(&vm) {
                    format!("VM {vm} started")
                } else {
                    format!("VM {vm} is already running")
                };
                Ok(result_xml(&result))
            }
            "/tailf-ncs:packages/reload" => {
                let force = call.input.iter().any(|(name, _)| name == "force");
                let mut versions = self.versions.lock().await;
                let mut fresh = packages::discover(&self.packages_dir);
                self.reload_schema(&mut fresh).await?;
                upgrade::run_pending(&self.supervisor, &mut fresh, &mut versions).await;
                report_package_status(&self.alarms, &fresh);
                declare_streams(&self.notifier, &fresh);
                self.supervisor.replace(vm_specs(&fresh), force).await;
                // The result tells what the VMs did, so wait until they have done it.
                self.supervisor
                    .wait_settled(self.supervisor.options().start_timeout)
                    .await;
                let troubles = self.supervisor.package_troubles();
                let mut out = String::new();
                for p in &fresh.packages {
                    let (status, info) = match troubles.get(&p.name) {
                        Some((status, info)) if p.status.is_up() => (status, info.clone()),
                        _ => (&p.status, p.error_info.clone()),
                    };
                    let info = info.unwrap_or_else(|| status.as_str().to_string());
                    let _ = write!(
                        out,
                        "<reload-result xmlns=\"{NS_NCS}\"><package>{}</package><result>{}</result>\
                         <info>{}</info></reload-result>",
                        quick_xml::escape::escape(&p.name),
                        status.is_up(),
                        quick_xml::escape::escape(&info)
                    );
                }
                info!(packages = fresh.packages.len(), force, "packages reloaded");
                *self.packages.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
                Ok(out)
            }
            other => Err(ActionError::Unknown(other.to_string())),
        }
    }

    fn vm_named(&self, name: &str) -> Result<String, ActionError> {
        self.supervisor
            .resolve(name)
            .ok_or_else(|| ActionError::InvalidInput {
                leaf: "name".into(),
                message: format!("no VM or package named \"{name}\""),
            })
    }

    /// The schema the server serves now.
    pub fn yang(&self) -> Arc<YangContext> {
        self.yang.borrow().clone()
    }

    /// Follows the schema: the receiver sees every schema a reload builds.
    pub fn follow_yang(&self) -> tokio::sync::watch::Receiver<Arc<YangContext>> {
        self.yang.subscribe()
    }

    /// Part of a reload: when the packages' YANG is not what the schema holds, the schema is
    /// built again with it and every datastore moves to it. A running configuration that does
    /// not fit the new schema refuses the reload (nothing changes); a package whose YANG does
    /// not compile is marked (it and its dependents stay down), as at start.
    async fn reload_schema(&self, fresh: &mut PackageSet) -> Result<(), ActionError> {
        let fingerprints = fresh.yang_fingerprints();
        if *self.loaded_yang.lock().unwrap_or_else(|p| p.into_inner()) == fingerprints {
            return Ok(());
        }
        let sources = fresh.yang_sources();
        let source = self.schema_source.clone();
        let datastore = Arc::clone(&self.datastore);
        let failed = |message: String| ActionError::Failed { message };
        let (yang, failures) = tokio::task::spawn_blocking(move || {
            let (yang, failures) =
                YangContext::load_with_packages(&source.dir, &sources, source.features)
                    .map_err(|e| format!("the new schema does not load: {e}"))?;
            datastore
                .replace_schema(yang.context())
                .map_err(|e| format!("reload refused: {e}"))?;
            Ok::<_, String>((yang, failures))
        })
        .await
        .map_err(|e| failed(format!("internal error: {e}")))?
        .map_err(failed)?;
        fresh.mark_yang_failures(&failures);
        info!(
            modules = yang.modules().len(),
            "schema rebuilt with the packages' new YANG"
        );
        *self.loaded_yang.lock().unwrap_or_else(|p| p.into_inner()) = fingerprints
            .into_iter()
            .filter(|(package, _)| !failures.contains_key(package))
            .collect();
        self.yang.send_replace(Arc::new(yang));
        Ok(())
    }

    /// The alarm actions: `handle-alarm` and `purge` of an alarm, `purge-alarms` of the list.
    fn alarm_action(&self, call: &ActionCall, schema_path: &str) -> Result<String, ActionError> {
        let alarm = || {
            call.path
                .rsplit_once('/')
                .map(|(parent, _)| parent.to_owned())
                .unwrap_or_default()
        };
        let missing = || ActionError::Failed {
            message: "no such alarm (it may have been purged)".into(),
        };
        let input = |name: &str| call.input.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        match schema_path.strip_prefix(alarms::ALARM_LIST_PATH) {
            Some("/alarm/handle-alarm") => {
                let state =
                    alarms::HandlingState::parse(call.input("state")?).ok_or_else(|| {
                        ActionError::InvalidInput {
                            leaf: "state".into(),
                            message: "not an alarm state".into(),
                        }
                    })?;
                let description = input("description").map(String::as_str).unwrap_or("");
                if !self.alarms.handle(&alarm(), state, &call.user, description) {
                    return Err(missing());
                }
                Ok(String::new())
            }
            Some("/alarm/purge") => {
                if !self.alarms.purge(&alarm()) {
                    return Err(missing());
                }
                Ok(String::new())
            }
            Some("/purge-alarms") => {
                let mut filter = alarms::PurgeFilter {
                    cleared: match input("alarm-status").map(String::as_str) {
                        Some("cleared") => Some(true),
                        Some("not-cleared") => Some(false),
                        _ => None,
                    },
                    ..Default::default()
                };
                for (unit, seconds) in [
                    ("seconds", 1),
                    ("minutes", 60),
                    ("hours", 3600),
                    ("days", 86_400),
                    ("weeks", 604_800),
                ] {
                    if let Some(n) = input(unit).and_then(|v| v.parse::<i64>().ok()) {
                        filter.older_than = Some(chrono::Duration::seconds(n * seconds));
                    }
                }
                filter.handling =
                    input("alarm-handling-state").and_then(|s| alarms::HandlingState::parse(s));
                let purged = self.alarms.purge_matching(&filter);
                Ok(format!(
                    "<purged-alarms xmlns=\"http://tail-f.com/ns/ncs-alarms\">{purged}</purged-alarms>"
                ))
            }
            _ => Err(ActionError::Unknown(call.path.clone())),
        }
    }

    /// Runs a package action (see [`actions`]): the VM that registered its actionpoint calls
    /// `cb_action`; the output is built and validated against the model (and `running`, for
    /// references into the configuration). Returns the output's XML.
    pub async fn package_action(
        &self,
        action: PackageAction,
        user: &str,
        running: Arc<yang5::data::DataTree<'static>>,
    ) -> Result<String, ActionError> {
        let keypath = format!("{}/{}", action.keypath, action.name);
        let vm = self
            .supervisor
            .vm_for_point("action", &action.point)
            .ok_or_else(|| ActionError::NotRegistered {
                point: action.point.clone(),
                path: keypath.clone(),
            })?;
        let call = serde_json::json!({
            "kind": "action",
            "point": action.point,
            "name": action.name,
            "kp": action.keypath,
            "input": action.input,
            "params": action.params,
            "user": user,
            "alarm": {
                "path": action.managed_object.path,
                "prefixes": action.managed_object.prefixes,
            },
        });
        let timeout = self.supervisor.options().action_timeout;
        let reply = self
            .supervisor
            .call(&vm, call, timeout)
            .await
            .map_err(|e| ActionError::Failed {
                message: format!("the action {keypath} failed: {e}"),
            })?;
        if !reply.ok {
            return Err(ActionError::Failed {
                message: reply
                    .message
                    .unwrap_or_else(|| format!("the action {keypath} failed")),
            });
        }
        tokio::task::spawn_blocking(move || actions::reply_xml(&running, &action, &reply.value))
            .await
            .map_err(|e| ActionError::Failed {
                message: format!("internal error: {e}"),
            })?
            .map_err(|message| ActionError::BadOutput {
                path: keypath,
                message,
            })
    }

    /// Says what runs once the VMs have started (or failed; at most `timeout`): the packages
    /// and their status, the VMs, and where the logs go (`server_log` is the server's own).
    /// Part of the startup summary.
    pub async fn log_startup(&self, timeout: std::time::Duration, server_log: &Path) {
        self.supervisor.wait_settled(timeout).await;
        // Discovery's verdict, then what the VMs made of the packages that were up.
        let troubles = self.supervisor.package_troubles();
        let (up, not_up): (Vec<String>, Vec<String>) = {
            let packages = self.packages.lock().unwrap_or_else(|p| p.into_inner());
            let (up, not_up): (Vec<_>, Vec<_>) = packages
                .packages
                .iter()
                .map(|p| match troubles.get(&p.name) {
                    Some((status, _)) if p.status.is_up() => (p.name.clone(), status.as_str()),
                    _ => (p.name.clone(), p.status.as_str()),
                })
                .partition(|(_, status)| *status == "up");
            (
                up.into_iter().map(|(name, _)| name).collect(),
                not_up
                    .into_iter()
                    .map(|(name, status)| format!("{name} ({status})"))
                    .collect(),
            )
        };
        let mut packages_line = format!(
            "packages in {}: {}",
            self.packages_dir.display(),
            counted(&up, "up")
        );
        if !not_up.is_empty() {
            packages_line.push_str(&format!(", not up: {}", not_up.join(", ")));
        }
        info!("{packages_line}");
        let (running, failed): (Vec<_>, Vec<_>) = self
            .supervisor
            .statuses()
            .into_iter()
            .map(|(spec, status)| {
                let failed: Vec<String> = status
                    .components
                    .iter()
                    .filter(|c| c.state == crate::vm::protocol::ComponentState::Failed)
                    .map(|c| format!("{}/{}", c.package, c.component))
                    .collect();
                (spec.name, failed)
            })
            .partition(|(_, failed)| failed.is_empty());
        let running: Vec<String> = running.into_iter().map(|(name, _)| name).collect();
        let mut vms_line = format!("Python VMs: {}", counted(&running, "started"));
        for (vm, components) in &failed {
            vms_line.push_str(&format!(
                "; {vm} has failed components: {}",
                components.join(", ")
            ));
        }
        info!("{vms_line}");
        let config = self.supervisor.config();
        let log_dir = &self.supervisor.options().log_dir;
        info!(
            "logs: {} (the server), {} (every VM's output), {} (one per VM)",
            server_log.display(),
            config.shared_log_file(log_dir).display(),
            config.vm_log_file(log_dir, "<vm>").display()
        );
    }

    /// Stops every VM, running their teardown (server shutdown).
    pub async fn shutdown(&self) {
        self.supervisor.stop_all().await;
    }
}

/// `3 <what> (a, b, c)`, or `0 <what>`.
fn counted(names: &[String], what: &str) -> String {
    if names.is_empty() {
        format!("0 {what}")
    } else {
        format!("{} {what} ({})", names.len(), names.join(", "))
    }
}

/// Raises `package-load-failure` for every package that cannot load (bad metadata, missing or
/// circular dependencies, ...), and clears it for the others whose VM starts. (A package in a
/// VM is cleared once its components have started.)
fn report_package_status(alarms: &AlarmList, packages: &PackageSet) {
    for p in &packages.packages {
        let key = supervisor::package_load_failure(&p.name);
        if p.status.is_up() {
            if p.applications().is_empty() {
                alarms.clear(&key, "package loaded");
            }
        } else {
            let text = match &p.error_info {
                Some(info) => format!("{}: {info}", p.status.as_str()),
                None => p.status.as_str().to_string(),
            };
            alarms.raise(key, alarms::Severity::Critical, &text);
        }
    }
}

/// Adds the streams that the packages that are up declare (a stream stays when its package
/// goes: subscribers and its replay log outlive a reload).
fn declare_streams(notifier: &Notifier, packages: &PackageSet) {
    for package in packages.packages.iter().filter(|p| p.status.is_up()) {
        for stream in &package.streams {
            if let Err(e) = notifier.declare(stream.clone()) {
                tracing::warn!(package = %package.name, error = %e, "cannot add the package's stream");
            }
        }
    }
}

/// Follows `/al:alarms/control/filter-level`.
fn apply_alarm_filter(alarms: &AlarmList, running: &yang5::data::DataTree<'_>) {
    use yang5::data::Data;
    let level = running
        .find_path("/tailf-ncs-alarms:alarms/control/filter-level")
        .ok()
        .and_then(|n| n.value_canonical())
        .and_then(|v| alarms::Severity::parse(&v))
        .unwrap_or(alarms::Severity::Cleared);
    alarms.set_filter_level(level);
}

fn result_xml(result: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<result xmlns=\"{NS_NCS}\">{}</result>",
        quick_xml::escape::escape(result)
    );
    out
}

/// One VM per vm-name among the packages that are up and have application components (a VM
/// of library packages alone would run nothing).
fn vm_specs(packages: &PackageSet) -> Vec<VmSpec> {
    packages
        .vm_groups()
        .into_iter()
        .filter(|group| group.has_applications())
        .map(|group| VmSpec {
            name: group.vm_name.clone(),
            packages: group
                .packages
                .iter()
                .map(|p| VmPackage {
                    name: p.name.clone(),
                    components: p
                        .applications()
                        .into_iter()
                        .filter_map(|c| {
                            c.application_class().map(|class_name| VmComponent {
                                name: c.name.clone(),
                                class_name: class_name.to_string(),
                                source: c.source.clone(),
                            })
                        })
                        .collect(),
                })
                .collect(),
            sys_path: group.sys_path.clone(),
            site_dirs: group.site_dirs.clone(),
            fingerprint: fingerprint(group.packages.iter().map(|p| p.dir.as_path())),
        })
        .collect()
}

/// A hash of the names, sizes and modification times of every file below `dirs`.
fn fingerprint<'a>(dirs: impl Iterator<Item = &'a std::path::Path>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut stack: Vec<PathBuf> = dirs.map(PathBuf::from).collect();
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                // Compiled bytecode changes whenever Python runs; it is not a change of code.
                if path.file_name().is_some_and(|n| n != "__pycache__") {
                    stack.push(path);
                }
            } else {
                files.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    files.sort();
    files.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_packages_give_one_vm_per_vm_name_with_applications() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packages");
        let specs = vm_specs(&packages::discover(&dir));
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        // common-lib is a library: its own VM would run nothing.
        assert_eq!(
            names,
            [
                "demo-actions",
                "demo-service",
                "hello-worker",
                "shared-vm",
                "ticker"
            ]
        );
        let shared = &specs[3];
        assert_eq!(shared.package_names(), ["shared-a", "shared-b"]);
        assert!(
            shared
                .sys_path
                .iter()
                .any(|p| p.ends_with("common-lib/python"))
        );
    }

    #[test]
    fn the_fingerprint_follows_file_changes_but_not_bytecode() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("python/__pycache__")).unwrap();
        std::fs::write(dir.path().join("python/m.py"), "x = 1\n").unwrap();
        let before = fingerprint(std::iter::once(dir.path()));
        std::fs::write(dir.path().join("python/__pycache__/m.pyc"), "bytes").unwrap();
        assert_eq!(fingerprint(std::iter::once(dir.path())), before);
        std::fs::write(dir.path().join("python/m.py"), "x = 22\n").unwrap();
        assert_ne!(fingerprint(std::iter::once(dir.path())), before);
    }
}
