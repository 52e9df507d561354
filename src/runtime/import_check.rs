//! The Python half of `pyvmd check-packages`: every component's class imported in a VM of its
//! package's `vm-name` (the same `sys.path` as when it runs), without running anything.

use std::path::PathBuf;
use std::time::Duration;

use super::packages::{ComponentKind, PackageSet};
use super::supervisor::{SupervisorOptions, VmProcess};
use crate::vm::protocol::{
    FromVm, ImportProblem, LogLevel, PROTOCOL_VERSION, SelfAssignMode, ToVm, VmComponent,
    VmPackage, VmStart,
};

/// How long one check VM may take to import its packages' classes.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Imports the class of every application and upgrade component of the packages that are up,
/// one short-lived VM per `vm-name`, and returns the components that fail. `exe` is the `pyvmd`
/// executable; the VMs' logs go to `log_dir`.
pub async fn check_imports(
    packages: &PackageSet,
    exe: PathBuf,
    log_dir: PathBuf,
) -> Vec<ImportProblem> {
    let options = SupervisorOptions {
        exe,
        log_dir: log_dir.clone(),
        start_timeout: CHECK_TIMEOUT,
        stop_timeout: CHECK_TIMEOUT,
        heartbeat: CHECK_TIMEOUT,
        upgrade_timeout: CHECK_TIMEOUT,
        action_timeout: CHECK_TIMEOUT,
        limits: Default::default(),
    };
    let mut problems = Vec::new();
    for group in packages.vm_groups() {
        let vm_packages: Vec<VmPackage> = group
            .packages
            .iter()
            .map(|p| VmPackage {
                name: p.name.clone(),
                components: p
                    .components
                    .iter()
                    .filter_map(|c| match &c.kind {
                        ComponentKind::Application { class_name, .. }
                        | ComponentKind::Upgrade { class_name }
                            if !class_name.trim().is_empty() =>
                        {
                            Some(VmComponent {
                                name: c.name.clone(),
                                class_name: class_name.clone(),
                                source: None,
                            })
                        }
                        _ => None,
                    })
                    .collect(),
            })
            .collect();
        if vm_packages.iter().all(|p| p.components.is_empty()) {
            continue;
        }
        let start = VmStart {
            protocol: PROTOCOL_VERSION,
            vm_name: group.vm_name.clone(),
            log_file: log_dir.join(format!("ncs-python-vm-{}.log", group.vm_name)),
            log_level: LogLevel::LevelInfo,
            self_assign: SelfAssignMode::Off,
            sys_path: group.sys_path.clone(),
            site_dirs: group.site_dirs.clone(),
            packages: vm_packages,
        };
        let first_package = group.packages.first().map(|p| p.name.clone());
        let vm_failed = |message: String| ImportProblem {
            package: first_package.clone().unwrap_or_default(),
            component: String::new(),
            class_name: String::new(),
            file: None,
            line: None,
            message: format!("the Python VM {} cannot run: {message}", group.vm_name),
        };
        let shared_log = log_dir.join("ncs-python-vm.log");
        let mut process = match VmProcess::spawn(&options, &group.vm_name, &shared_log) {
            Ok(process) => process,
            Err(e) => {
                problems.push(vm_failed(e.to_string()));
                continue;
            }
        };
        let _ = process.commands.send(ToVm::Check(start)).await;
        let outcome = tokio::time::timeout(CHECK_TIMEOUT, async {
            loop {
                match process.messages.recv().await {
                    Some(FromVm::Checked { problems }) => break Ok(problems),
                    Some(FromVm::Fatal { message }) => break Err(message),
                    Some(_) => {}
                    None => break Err("the VM exited before it answered".to_string()),
                }
            }
        })
        .await;
        match outcome {
            Ok(Ok(found)) => problems.extend(found),
            Ok(Err(message)) => problems.push(vm_failed(message)),
            Err(_) => problems.push(vm_failed(format!(
                "importing took more than {} s (an import that never returns?)",
                CHECK_TIMEOUT.as_secs()
            ))),
        }
        let _ = process.child.kill().await;
        let _ = process.child.wait().await;
    }
    problems
}
