//! Upgrade components: code that migrates a package's data when its version changes.
//!
//! The server remembers the version of every package that came up (`package-versions.json` in
//! the state directory). When a package starts (server start, `/ncs:packages/reload`) with
//! another version than the one that last ran, and it has `upgrade` components, they run before
//! the package's VM starts (a VM still running the previous version is stopped first), as in
//! NSO: in a short-lived VM of their own, each class instantiated
//! with no arguments and `upgrade(self, cdbsock, trans)` called, where `cdbsock` reads the data
//! as it was before and `trans` is a write transaction on running. When every component returns
//! True (or None), the server applies `trans` as one commit and records the new version. When
//! one fails (False, an exception, a crash, the time limit) nothing is applied, the package is
//! not started (oper-status `program-code-error`, a `package-load-failure` alarm), and the old
//! version stays recorded, so the upgrade runs again at the next start or reload.
//!
//! A package seen for the first time has nothing to upgrade: its version is only recorded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::packages::{ComponentKind, OperStatus, PackageSet};
use super::supervisor::{Supervisor, VmSpec};
use crate::datastore::write_atomically;
use crate::vm::protocol::{FromVm, ToVm, VmComponent, VmPackage};

/// The file, in the state directory, that records package versions.
pub const VERSIONS_FILE: &str = "package-versions.json";

/// The version of every package that last came up.
#[derive(Debug)]
pub struct PackageVersions {
    file: PathBuf,
    versions: BTreeMap<String, String>,
}

impl PackageVersions {
    /// Reads the record; a missing file is an empty record, and so is an unreadable one (with
    /// a warning: upgrades cannot be detected until the packages come up once more).
    pub fn load(state_dir: &Path) -> PackageVersions {
        let file = state_dir.join(VERSIONS_FILE);
        let versions = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                warn!(file = %file.display(), error = %e, "unreadable package version record");
                BTreeMap::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                warn!(file = %file.display(), error = %e, "cannot read the package version record");
                BTreeMap::new()
            }
        };
        PackageVersions { file, versions }
    }

    /// Records the versions of the packages that are up; others keep their recorded version.
    pub fn record(&mut self, packages: &PackageSet) -> std::io::Result<()> {
        let before = self.versions.clone();
        for p in &packages.packages {
            if let (true, Some(version)) = (p.status.is_up(), &p.version) {
                self.versions.insert(p.name.clone(), version.clone());
            }
        }
        if self.versions == before {
            return Ok(());
        }
        let json = serde_json::to_vec_pretty(&self.versions).map_err(std::io::Error::other)?;
        write_atomically(&self.file, &json)
    }
}

/// A package whose upgrade components must run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeJob {
    /// The package.
    pub package: String,
    /// The version that last ran.
    pub from: String,
    /// The version now on disk.
    pub to: String,
    /// Its upgrade components, in file order.
    pub components: Vec<VmComponent>,
    /// The `sys.path` of the package's VM.
    pub sys_path: Vec<PathBuf>,
    /// The virtualenv site directories of the package's VM.
    pub site_dirs: Vec<PathBuf>,
}

/// The packages that are up, have upgrade components, and changed version since they last ran,
/// in dependency order (a package after the packages it requires).
pub fn pending(packages: &PackageSet, versions: &PackageVersions) -> Vec<UpgradeJob> {
    let mut jobs = Vec::new();
    for group in packages.vm_groups() {
        for p in &group.packages {
            let (Some(from), Some(to)) = (versions.versions.get(&p.name), &p.version) else {
                continue;
            };
            let components: Vec<VmComponent> = p
                .components
                .iter()
                .filter_map(|c| match &c.kind {
                    ComponentKind::Upgrade { class_name } => Some(VmComponent {
                        name: c.name.clone(),
                        class_name: class_name.clone(),
                        source: None,
                    }),
                    _ => None,
                })
                .collect();
            if from == to || components.is_empty() {
                continue;
            }
            jobs.push(UpgradeJob {
                package: p.name.clone(),
                from: from.clone(),
                to: to.clone(),
                components,
                sys_path: group.sys_path.clone(),
                site_dirs: group.site_dirs.clone(),
            });
        }
    }
    jobs
}

/// Runs the pending upgrades; a package whose upgrade fails is marked `program-code-error`
/// (and the packages that require it then miss a dependency). Then records the versions of
/// the packages that are up.
pub async fn run_pending(
    supervisor: &Supervisor,
    packages: &mut PackageSet,
    versions: &mut PackageVersions,
) {
    let mut failed = Vec::new();
    for job in pending(packages, versions) {
        info!(
            package = job.package,
            from = job.from,
            to = job.to,
            "upgrading package"
        );
        // On a reload the previous version may still run: its code must not act on data that
        // is being migrated. The reload starts the VM again afterwards (its spec changed).
        if let Some(vm) = supervisor.resolve(&job.package) {
            supervisor.stop(&vm).await;
        }
        match run(supervisor, &job).await {
            Ok(()) => info!(package = job.package, to = job.to, "package upgraded"),
            Err(error) => {
                warn!(package = job.package, error, "package upgrade failed");
                failed.push((
                    job.package.clone(),
                    format!("upgrade from {} to {} failed: {error}", job.from, job.to),
                ));
            }
        }
    }
    if !failed.is_empty() {
        let mut all = std::mem::take(&mut packages.packages);
        for (name, error) in failed {
            if let Some(p) = all.iter_mut().find(|p| p.name == name) {
                p.status = OperStatus::ProgramCodeError;
                p.error_info = Some(error);
            }
        }
        *packages = PackageSet::from_packages(all);
    }
    if let Err(e) = versions.record(packages) {
        warn!(error = %e, "cannot save the package version record");
    }
}

/// Runs one package's upgrade components in a VM of their own and applies their transaction.
async fn run(supervisor: &Supervisor, job: &UpgradeJob) -> Result<(), String> {
    let options = supervisor.options();
    let mut maapi = supervisor.maapi_sessions();
    let datastore_error = |e: crate::datastore::DatastoreError| e.to_string();
    let trans = maapi
        .datastore()
        .transaction(true)
        .map_err(datastore_error)?;
    let before = maapi
        .datastore()
        .transaction(false)
        .map_err(datastore_error)?;
    let th = maapi.open_server_owned(trans);
    let cdb_th = maapi.open_server_owned(before);
    let spec = VmSpec {
        name: format!("{}-upgrade", job.package),
        packages: vec![VmPackage {
            name: job.package.clone(),
            components: job.components.clone(),
        }],
        sys_path: job.sys_path.clone(),
        site_dirs: job.site_dirs.clone(),
        // Not compared with anything: an upgrade VM runs once.
        fingerprint: 0,
    };
    let (mut process, start) = supervisor
        .spawn(&spec)
        .map_err(|e| format!("cannot start the upgrade VM: {e}"))?;
    let _ = process
        .commands
        .send(ToVm::Upgrade { start, th, cdb_th })
        .await;
    let deadline = tokio::time::Instant::now() + options.upgrade_timeout;
    let outcome = loop {
        let message = tokio::select! {
            m = process.messages.recv() => m,
            _ = tokio::time::sleep_until(deadline) => {
                break Err(format!(
                    "the upgrade did not finish within {} s",
                    options.upgrade_timeout.as_secs()
                ));
            }
        };
        match message {
            Some(FromVm::Request { id, request }) => {
                let reply = maapi.handle(request);
                let _ = process.commands.send(ToVm::Reply { id, reply }).await;
            }
            Some(FromVm::Upgraded { error: None }) => break Ok(()),
            Some(FromVm::Upgraded { error: Some(error) }) => break Err(error),
            Some(FromVm::Fatal { message }) => break Err(message),
            Some(_) => {}
            None => break Err("the upgrade VM exited before it finished".into()),
        }
    };
    // The VM exits by itself after `Upgraded`; in every other case it is done for.
    if outcome.is_err() {
        let _ = process.child.kill().await;
    }
    let _ = process.child.wait().await;
    outcome?;
    let mut trans = maapi.take(th).ok_or("the upgrade transaction is gone")?;
    maapi
        .datastore()
        .apply_upgrade_transaction(&mut trans)
        .map_err(|e| format!("applying the upgrade's changes: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::packages;

    fn package(dir: &Path, name: &str, version: &str, upgrade: bool) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.join("python")).unwrap();
        let upgrade = if upgrade {
            "<component><name>up</name><upgrade><python-class-name>m.Up</python-class-name>\
             </upgrade></component>"
        } else {
            ""
        };
        std::fs::write(
            p.join("package-meta-data.xml"),
            format!(
                "<ncs-package xmlns=\"http://tail-f.com/ns/ncs-packages\"><name>{name}</name>\
                 <package-version>{version}</package-version><ncs-min-version>6.0</ncs-min-version>\
                 <component><name>main</name><application><python-class-name>m.App\
                 </python-class-name></application></component>{upgrade}</ncs-package>"
            ),
        )
        .unwrap();
    }

    #[test]
    fn upgrades_are_pending_only_for_changed_versions_with_upgrade_components() {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        package(dir.path(), "a", "1.0", true);
        package(dir.path(), "b", "1.0", false);
        let mut versions = PackageVersions::load(state.path());
        // First sight: nothing to upgrade, the versions are recorded.
        let set = packages::discover(dir.path());
        assert!(pending(&set, &versions).is_empty());
        versions.record(&set).unwrap();
        let versions = PackageVersions::load(state.path());
        assert_eq!(versions.versions.get("a").map(String::as_str), Some("1.0"));

        package(dir.path(), "a", "2.0", true);
        package(dir.path(), "b", "2.0", false);
        let jobs = pending(&packages::discover(dir.path()), &versions);
        assert_eq!(jobs.len(), 1);
        assert_eq!((jobs[0].from.as_str(), jobs[0].to.as_str()), ("1.0", "2.0"));
        assert_eq!(jobs[0].components[0].class_name, "m.Up");
        assert!(jobs[0].sys_path.iter().any(|p| p.ends_with("a/python")));
    }
}
