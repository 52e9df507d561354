//! Starts, watches, restarts and stops the Python VM processes.
//!
//! Each VM is a `pyvmd vm` child process; its socket is fd 3, its stdout and stderr go to the
//! shared log file, and it dies with us (`PR_SET_PDEATHSIG`). One task per VM runs the process
//! and restarts it with back-off when it dies unexpectedly; a VM stopped on purpose (the `stop`
//! action, shutdown) stays down until it is started again.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use super::alarms::{ALARM_LIST_PATH, AlarmKey, AlarmList, AlarmType, ManagedObject, Severity};
use super::config::PythonVmConfig;
use super::limits::{ResourceWatch, SAMPLE_INTERVAL, VmLimits};
use super::maapi::{MaapiSessions, OperationalSource, PendingApply};
use super::packages::OperStatus;
use super::streams::PackageNotifications;
use crate::datastore::{Datastore, Transaction};
use crate::vm::protocol::{
    ComponentState, CurrentEntry, FromVm, MAX_MESSAGE, PROTOCOL_VERSION, Reply, ThreadState, ToVm,
    VmPackage, VmStart, encode_message,
};

/// What a VM runs: derived from the packages that share a vm-name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    /// The VM name.
    pub name: String,
    /// Its packages and their application components, in dependency order.
    pub packages: Vec<VmPackage>,
    /// `sys.path` additions.
    pub sys_path: Vec<PathBuf>,
    /// Virtualenv site-packages directories.
    pub site_dirs: Vec<PathBuf>,
    /// Changes when any file of the VM's packages changes, so that a package reload restarts
    /// exactly the VMs whose code changed.
    pub fingerprint: u64,
}

impl VmSpec {
    /// The names of the VM's packages.
    pub fn package_names(&self) -> Vec<String> {
        self.packages.iter().map(|p| p.name.clone()).collect()
    }
}

/// The outcome of starting one component, as `/python-vm/status/start` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentStatus {
    /// The package.
    pub package: String,
    /// The component.
    pub component: String,
    /// The class.
    pub class_name: String,
    /// Started or failed.
    pub state: ComponentState,
    /// Why it failed.
    pub error_info: Option<String>,
}

/// What the supervisor knows about one VM.
#[derive(Debug, Clone, Default)]
pub struct VmStatus {
    /// One entry per component, once the VM reported it (or failed before it could).
    pub components: Vec<ComponentStatus>,
    /// `/python-vm/status/current` of this VM.
    pub current: Vec<CurrentEntry>,
}

/// Settings of the supervisor.
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    /// The `pyvmd` executable to run as `pyvmd vm`.
    pub exe: PathBuf,
    /// Where the VM log files go.
    pub log_dir: PathBuf,
    /// How long a VM may take to start its components.
    pub start_timeout: Duration,
    /// How long a VM may take to tear down before it is killed.
    pub stop_timeout: Duration,
    /// How often a running VM is asked whether it is alive; one that does not answer within
    /// this time is considered hung, killed and restarted.
    pub heartbeat: Duration,
    /// How long a package's upgrade components may run before the upgrade is failed.
    pub upgrade_timeout: Duration,
    /// How long an action or service callback may run before its caller gets an error.
    pub action_timeout: Duration,
    /// The memory and CPU each VM may use before it is stopped as a runaway.
    pub limits: VmLimits,
}

struct VmEntry {
    spec: VmSpec,
    status: VmStatus,
    /// Set while the process runs: where to send it messages.
    commands: Option<mpsc::Sender<ToVm>>,
    /// False once stopped on purpose: the task then does not restart it.
    wanted: bool,
    /// Set while a task runs this VM.
    task_alive: bool,
    /// Woken when the VM should come back early from its restart back-off, or stop.
    wake: Arc<tokio::sync::Notify>,
    /// Those waiting for the process to end (stop action, shutdown).
    exit_waiters: Vec<oneshot::Sender<()>>,
    /// Callbacks sent to the running process and not answered yet, by call id. Dropped when
    /// the process ends, which tells their callers.
    calls: HashMap<u64, oneshot::Sender<Reply>>,
    /// Calls that ran past their timeout and were cancelled: by when each must have ended
    /// before the VM is killed, and what it is.
    overdue: HashMap<u64, (tokio::time::Instant, String)>,
    /// The running process's transactions; the server lends it transactions of its own
    /// (a service callback's) through here.
    maapi: Option<Arc<Mutex<MaapiSessions>>>,
    /// Counts the processes started for this VM: what one process told about its code (a
    /// callback it lacks) is forgotten with it.
    generation: u64,
    /// True once the running process started its components.
    ready: bool,
}

/// Owns every VM.
pub struct Supervisor {
    options: SupervisorOptions,
    /// Where package-load-failure alarms go.
    alarms: Arc<AlarmList>,
    vms: Mutex<BTreeMap<String, VmEntry>>,
    /// The id of the last [`ToVm::Call`].
    last_call: AtomicU64,
    config: Mutex<PythonVmConfig>,
    /// What the VMs' transactions (`ncs.maapi`) work on.
    datastore: Arc<Datastore>,
    operational: OperationalSource,
    /// Where the notifications package code sends go.
    notifications: PackageNotifications,
}

/// Why a callback in a VM got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The VM is not running.
    #[error("its Python VM is not running")]
    NotRunning,
    /// The VM ended before it answered.
    #[error("its Python VM ended during the call")]
    Died,
    /// No answer in time.
    #[error("no answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
}

/// Why a VM process ended.
enum Exit {
    /// It was asked to stop.
    Stopped,
    /// It died or failed to start.
    Failed(String),
}

impl Supervisor {
    /// A supervisor with no VMs.
    pub fn new(
        options: SupervisorOptions,
        config: PythonVmConfig,
        alarms: Arc<AlarmList>,
        datastore: Arc<Datastore>,
        operational: OperationalSource,
        notifications: PackageNotifications,
    ) -> Arc<Supervisor> {
        Arc::new(Supervisor {
            options,
            alarms,
            notifications,
            vms: Mutex::new(BTreeMap::new()),
            last_call: AtomicU64::new(0),
            config: Mutex::new(config),
            datastore,
            operational,
        })
    }

    /// The settings.
    pub fn options(&self) -> &SupervisorOptions {
        &self.options
    }

    /// Starts the process of the VM `spec` describes; returns it with the start message it is
    /// to be sent (with the current log settings).
    pub(super) fn spawn(&self, spec: &VmSpec) -> std::io::Result<(VmProcess, VmStart)> {
        let config = self.config();
        let start = VmStart {
            protocol: PROTOCOL_VERSION,
            vm_name: spec.name.clone(),
            log_file: config.vm_log_file(&self.options.log_dir, &spec.name),
            log_level: config.level_for(&spec.name, &spec.package_names()),
            self_assign: config.self_assign,
            sys_path: spec.sys_path.clone(),
            site_dirs: spec.site_dirs.clone(),
            packages: with_source_settings(&spec.packages, &config),
        };
        let process = VmProcess::spawn(
            &self.options,
            &spec.name,
            &config.shared_log_file(&self.options.log_dir),
        )?;
        Ok((process, start))
    }

    /// A fresh set of transactions for one VM process.
    pub fn maapi_sessions(&self) -> MaapiSessions {
        MaapiSessions::new(Arc::clone(&self.datastore), Arc::clone(&self.operational))
    }

    fn vms(&self) -> MutexGuard<'_, BTreeMap<String, VmEntry>> {
        self.vms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current `/python-vm` settings.
    pub(super) fn config(&self) -> PythonVmConfig {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The VM whose package code registered `point` as a callback of `kind` (`action`,
    /// `service`, `validation`): the one showing `"<point> (<kind>)"` in its current status.
    pub fn vm_for_point(&self, kind: &str, point: &str) -> Option<String> {
        self.vm_process_for_point(kind, point).map(|(name, _)| name)
    }

    /// [`Supervisor::vm_for_point`], with the generation of the VM's process.
    pub fn vm_process_for_point(&self, kind: &str, point: &str) -> Option<(String, u64)> {
        let entry_name = format!("{point} ({kind})");
        self.vms().iter().find_map(|(name, entry)| {
            (entry.commands.is_some()
                && entry
                    .status
                    .current
                    .iter()
                    .any(|c| c.class_name == entry_name && c.state == ThreadState::Running))
            .then(|| (name.clone(), entry.generation))
        })
    }

    /// Runs a callback in `vm` ([`ToVm::Call`]) and waits at most `timeout` for its answer.
    /// The callback goes on in the VM after a timeout; its late answer is dropped.
    pub async fn call(
        &self,
        vm: &str,
        call: serde_json::Value,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        let id = self.last_call.fetch_add(1, Ordering::Relaxed) + 1;
        let field = |key: &str| call.get(key).and_then(|v| v.as_str()).unwrap_or("?");
        let what = format!("the {} callback of {}", field("kind"), field("point"));
        let (sender, receiver) = oneshot::channel();
        let commands = {
            let mut vms = self.vms();
            let entry = vms.get_mut(vm).ok_or(CallError::NotRunning)?;
            let commands = entry.commands.clone().ok_or(CallError::NotRunning)?;
            entry.calls.insert(id, sender);
            commands
        };
        if commands.send(ToVm::Call { id, call }).await.is_err() {
            self.forget_call(vm, id);
            return Err(CallError::NotRunning);
        }
        match tokio::time::timeout(timeout, receiver).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(CallError::Died),
            Err(_) => {
                self.cancel_call(vm, id, what);
                Err(CallError::Timeout(timeout))
            }
        }
    }

    /// Runs a call like [`Supervisor::call`], lending it `trans` as the server-owned
    /// transaction `th` (added to the call as `"th"`), and takes the transaction back when the
    /// call ends (`None` if it was lost with the VM process).
    pub async fn call_with_transaction(
        &self,
        vm: &str,
        mut call: serde_json::Value,
        trans: Transaction,
        timeout: Duration,
    ) -> (Option<Transaction>, Result<Reply, CallError>) {
        let Some(maapi) = self.vms().get(vm).and_then(|e| e.maapi.clone()) else {
            return (Some(trans), Err(CallError::NotRunning));
        };
        let th = lock(&maapi).open_server_owned(trans);
        call["th"] = th.into();
        let result = self.call(vm, call, timeout).await;
        let trans = lock(&maapi).take(th);
        (trans, result)
    }

    /// Applies a VM's transaction on a blocking thread and answers the VM from there.
    fn apply_off_task(
        &self,
        maapi: &Arc<Mutex<MaapiSessions>>,
        mut pending: PendingApply,
        id: u64,
        commands: mpsc::Sender<ToVm>,
    ) {
        let maapi = Arc::clone(maapi);
        let datastore = Arc::clone(&self.datastore);
        let alarms = Arc::clone(&self.alarms);
        tokio::spawn(async move {
            let applied = tokio::task::spawn_blocking(move || {
                let result = if pending.trans.is_operational() {
                    // The alarm list is the runtime's own: what package code writes there
                    // raises, clears and purges alarms instead of being stored.
                    alarms.apply_package_writes(&pending.trans);
                    datastore.apply_operational(&mut pending.trans, &[ALARM_LIST_PATH])
                } else {
                    datastore.apply_transaction(&mut pending.trans)
                };
                (pending, result)
            })
            .await;
            let reply = match applied {
                Ok((pending, result)) => lock(&maapi).end_apply(pending, result),
                Err(e) => Reply::error("internal", format!("applying failed: {e}")),
            };
            let _ = commands.send(ToVm::Reply { id, reply }).await;
        });
    }

    /// Gives up on a call that ran past its timeout: the VM is told to raise TimeoutError in
    /// it, and killed if the call has not ended within the stop timeout after that (a loop
    /// that swallows the exception, or code stuck outside Python).
    fn cancel_call(&self, vm: &str, id: u64, what: String) {
        let mut vms = self.vms();
        let Some(entry) = vms.get_mut(vm) else {
            return;
        };
        entry.calls.remove(&id);
        let Some(commands) = &entry.commands else {
            return;
        };
        let _ = commands.try_send(ToVm::Cancel { id });
        let deadline = tokio::time::Instant::now() + self.options.stop_timeout;
        entry.overdue.insert(id, (deadline, what));
    }

    fn forget_call(&self, vm: &str, id: u64) {
        if let Some(entry) = self.vms().get_mut(vm) {
            entry.calls.remove(&id);
        }
    }

    /// Starts a VM for each spec (replacing none: call once at start-up, or after `remove`).
    pub fn add_and_start(self: &Arc<Self>, specs: Vec<VmSpec>) {
        for spec in specs {
            let name = spec.name.clone();
            self.vms().insert(
                name.clone(),
                VmEntry {
                    spec,
                    status: VmStatus::default(),
                    commands: None,
                    wanted: true,
                    task_alive: false,
                    wake: Arc::new(tokio::sync::Notify::new()),
                    exit_waiters: Vec::new(),
                    calls: HashMap::new(),
                    overdue: HashMap::new(),
                    maapi: None,
                    generation: 0,
                    ready: false,
                },
            );
            self.ensure_task(&name);
        }
    }

    /// Makes `specs` the set of VMs: VMs that are gone or whose spec changed (or all, with
    /// `force`) are stopped, running their teardown; new and changed ones are started.
    pub async fn replace(self: &Arc<Self>, specs: Vec<VmSpec>, force: bool) {
        let outdated: Vec<String> = {
            let vms = self.vms();
            vms.iter()
                .filter(|(name, entry)| {
                    force || !specs.iter().any(|s| &s.name == *name && *s == entry.spec)
                })
                .map(|(name, _)| name.clone())
                .collect()
        };
        for name in &outdated {
            self.stop(name).await;
            self.vms().remove(name);
        }
        let fresh: Vec<VmSpec> = {
            let vms = self.vms();
            specs
                .into_iter()
                .filter(|s| !vms.contains_key(&s.name))
                .collect()
        };
        self.add_and_start(fresh);
    }

    /// Waits (at most `timeout`) until every VM that should run has started its components
    /// or failed.
    pub async fn wait_settled(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let settled = self.vms().values().all(|e| {
                !e.wanted
                    || e.ready
                    || e.commands.is_none() && !e.status.components.is_empty()
                    || e.status
                        .components
                        .iter()
                        .any(|c| c.state == ComponentState::Failed)
            });
            if settled || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The VM names, sorted.
    pub fn vm_names(&self) -> Vec<String> {
        self.vms().keys().cloned().collect()
    }

    /// The VM that runs `name`, which is a VM name or the name of one of its packages.
    pub fn resolve(&self, name: &str) -> Option<String> {
        let vms = self.vms();
        if vms.contains_key(name) {
            return Some(name.to_string());
        }
        vms.iter()
            .find(|(_, e)| e.spec.packages.iter().any(|p| p.name == name))
            .map(|(vm, _)| vm.clone())
    }

    /// A snapshot of every VM's spec and status.
    pub fn statuses(&self) -> Vec<(VmSpec, VmStatus)> {
        self.vms()
            .values()
            .map(|e| (e.spec.clone(), e.status.clone()))
            .collect()
    }

    /// What the VMs did with each package: `None` while its VM runs and its components
    /// started (or are starting), else why it is not up (NSO's oper-status terms).
    pub fn package_troubles(&self) -> HashMap<String, (OperStatus, Option<String>)> {
        let mut troubles = HashMap::new();
        for entry in self.vms().values() {
            for package in &entry.spec.packages {
                let failed = entry
                    .status
                    .components
                    .iter()
                    .find(|c| c.package == package.name && c.state == ComponentState::Failed);
                let trouble = match (failed, entry.commands.is_some()) {
                    (Some(c), _) => (
                        OperStatus::ProgramCodeError,
                        Some(format!(
                            "component {} failed: {}",
                            c.component,
                            c.error_info.as_deref().unwrap_or("unknown error")
                        )),
                    ),
                    (None, false) => (
                        OperStatus::PythonUninitialized,
                        Some(format!("its Python VM {} is not running", entry.spec.name)),
                    ),
                    (None, true) => continue,
                };
                troubles.insert(package.name.clone(), trouble);
            }
        }
        troubles
    }

    /// Applies a new runtime configuration: log levels, the self-assign mode and the options of
    /// notification sources reach running VMs at once. (A new log-file prefix applies when a VM
    /// next starts.)
    pub fn apply_config(&self, config: PythonVmConfig) {
        let old = std::mem::replace(
            &mut *self.config.lock().unwrap_or_else(|p| p.into_inner()),
            config.clone(),
        );
        for entry in self.vms().values() {
            let Some(commands) = &entry.commands else {
                continue;
            };
            let packages = entry.spec.package_names();
            let level = config.level_for(&entry.spec.name, &packages);
            if level != old.level_for(&entry.spec.name, &packages) {
                let _ = commands.try_send(ToVm::SetLogLevel { level });
            }
            if config.self_assign != old.self_assign {
                let _ = commands.try_send(ToVm::SetSelfAssign {
                    mode: config.self_assign,
                });
            }
            for package in &entry.spec.packages {
                for component in &package.components {
                    let Some(base) = &component.source else {
                        continue;
                    };
                    let settings = config.source_settings(&package.name, &component.name, base);
                    if settings != old.source_settings(&package.name, &component.name, base) {
                        info!(
                            vm = %entry.spec.name,
                            package = %package.name,
                            component = %component.name,
                            "notification source options changed; running it again"
                        );
                        let _ = commands.try_send(ToVm::SetSourceSettings {
                            package: package.name.clone(),
                            component: component.name.clone(),
                            settings,
                        });
                    }
                }
            }
        }
    }

    /// Starts a stopped VM. Returns false if it was already running.
    pub fn start(self: &Arc<Self>, vm: &str) -> bool {
        let already = {
            let mut vms = self.vms();
            let Some(entry) = vms.get_mut(vm) else {
                return false;
            };
            let already = entry.wanted && entry.task_alive;
            entry.wanted = true;
            entry.wake.notify_one();
            already
        };
        self.ensure_task(vm);
        !already
    }

    /// Stops a VM: its components' `teardown()` runs, then the process ends (it is killed if
    /// it takes longer than the stop timeout). Returns false if it was not running.
    pub async fn stop(&self, vm: &str) -> bool {
        let (done, was_running) = {
            let mut vms = self.vms();
            let Some(entry) = vms.get_mut(vm) else {
                return false;
            };
            entry.wanted = false;
            entry.wake.notify_one();
            let was_running = entry.task_alive;
            let (tx, rx) = oneshot::channel();
            if was_running {
                entry.exit_waiters.push(tx);
            }
            if let Some(commands) = &entry.commands {
                let _ = commands.try_send(ToVm::Stop);
            }
            (rx, was_running)
        };
        if was_running {
            let _ = done.await;
        }
        was_running
    }

    /// Stops every VM at once (server shutdown), each running its teardown.
    pub async fn stop_all(self: &Arc<Self>) {
        let mut stops = tokio::task::JoinSet::new();
        for name in self.vm_names() {
            let this = Arc::clone(self);
            stops.spawn(async move { this.stop(&name).await });
        }
        while stops.join_next().await.is_some() {}
    }

    fn ensure_task(self: &Arc<Self>, vm: &str) {
        {
            let mut vms = self.vms();
            let Some(entry) = vms.get_mut(vm) else {
                return;
            };
            if entry.task_alive {
                return;
            }
            entry.task_alive = true;
        }
        let this = Arc::clone(self);
        let vm = vm.to_string();
        tokio::spawn(async move { this.run_task(vm).await });
    }

    /// Runs a VM until it is stopped on purpose, restarting it with back-off when it fails.
    async fn run_task(self: Arc<Self>, vm: String) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let exit = self.run_once(&vm).await;
            let (wanted, wake) = {
                let mut vms = self.vms();
                let Some(entry) = vms.get_mut(&vm) else {
                    return;
                };
                entry.commands = None;
                entry.calls.clear();
                entry.overdue.clear();
                entry.maapi = None;
                entry.status.current.clear();
                for waiter in entry.exit_waiters.drain(..) {
                    let _ = waiter.send(());
                }
                if let Exit::Failed(reason) = &exit {
                    mark_failed(&mut entry.status, &entry.spec, reason);
                    for package in &entry.spec.packages {
                        self.alarms.raise(
                            package_load_failure(&package.name),
                            Severity::Critical,
                            &format!("Python VM {vm}: {reason}"),
                        );
                    }
                }
                if !entry.wanted {
                    entry.task_alive = false;
                }
                (entry.wanted, Arc::clone(&entry.wake))
            };
            if !wanted {
                info!(vm, "VM stopped");
                return;
            }
            match exit {
                Exit::Stopped => backoff = Duration::from_secs(1),
                Exit::Failed(reason) => {
                    error!(
                        vm,
                        reason,
                        "VM failed; restarting in {} s",
                        backoff.as_secs()
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = wake.notified() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
            let mut vms = self.vms();
            match vms.get_mut(&vm) {
                Some(entry) if entry.wanted => {}
                Some(entry) => {
                    entry.task_alive = false;
                    return;
                }
                None => return,
            }
        }
    }

    /// Runs the VM process once, until it exits.
    async fn run_once(&self, vm: &str) -> Exit {
        let Some(spec) = self.vms().get(vm).map(|e| e.spec.clone()) else {
            return Exit::Stopped;
        };
        let (mut process, start) = match self.spawn(&spec) {
            Ok(spawned) => spawned,
            Err(e) => return Exit::Failed(format!("cannot start the VM process: {e}")),
        };
        info!(vm, pid = process.child.id(), "VM process started");
        let maapi = Arc::new(Mutex::new(self.maapi_sessions()));
        {
            let mut vms = self.vms();
            if let Some(entry) = vms.get_mut(vm) {
                entry.maapi = Some(Arc::clone(&maapi));
                entry.generation += 1;
                entry.ready = false;
                entry.status = VmStatus::default();
                entry.commands = Some(process.commands.clone());
                if !entry.wanted {
                    let _ = process.commands.try_send(ToVm::Stop);
                }
            }
        }
        let _ = process.commands.send(ToVm::Start(start)).await;
        let wake = self.vms().get(vm).map(|e| Arc::clone(&e.wake));
        let wake = wake.unwrap_or_default();
        let start_deadline = tokio::time::Instant::now() + self.options.start_timeout;
        let mut stop_deadline: Option<tokio::time::Instant> = None;
        let mut ready = false;
        let mut stopping = false;
        let mut heartbeat = tokio::time::interval(self.options.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The id of the ping that is still unanswered, if any.
        let mut pending_ping: Option<u64> = None;
        let mut resources =
            ResourceWatch::new(process.child.id().unwrap_or(0), self.options.limits);
        let mut watchdog = tokio::time::interval(SAMPLE_INTERVAL);
        watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_ping = 0u64;
        loop {
            let message = tokio::select! {
                _ = heartbeat.tick(), if ready && stop_deadline.is_none() => {
                    if pending_ping.is_some() {
                        let _ = process.child.kill().await;
                        return Exit::Failed(format!(
                            "the VM stopped answering (no heartbeat within {} s); killed",
                            self.options.heartbeat.as_secs()
                        ));
                    }
                    next_ping += 1;
                    pending_ping = Some(next_ping);
                    let _ = process.commands.try_send(ToVm::Ping { id: next_ping });
                    continue;
                }
                _ = watchdog.tick(), if stop_deadline.is_none() => {
                    if let Some(reason) = resources.check().or_else(|| self.overdue_call(vm)) {
                        let _ = process.child.kill().await;
                        return self.runaway(vm, &spec, &reason);
                    }
                    continue;
                }
                m = process.messages.recv() => m,
                status = process.child.wait() => {
                    let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                    return self.exited(vm, stopping, &status);
                }
                _ = wake.notified() => {
                    // A stop was requested: teardown gets the stop timeout, then the process
                    // is killed.
                    let wanted = self.vms().get(vm).is_some_and(|e| e.wanted);
                    if !wanted && stop_deadline.is_none() {
                        stop_deadline = Some(tokio::time::Instant::now() + self.options.stop_timeout);
                    }
                    continue;
                }
                _ = sleep_until_opt(stop_deadline) => {
                    warn!(vm, "VM did not stop in time; killing it");
                    let _ = process.child.kill().await;
                    return Exit::Stopped;
                }
                _ = tokio::time::sleep_until(start_deadline), if !ready && stop_deadline.is_none() => {
                    let _ = process.child.kill().await;
                    return Exit::Failed(format!(
                        "the VM did not start within {} s",
                        self.options.start_timeout.as_secs()
                    ));
                }
            };
            let Some(message) = message else {
                // The socket closed: the process is ending. Collect its status, killing it
                // if it lingers without its socket.
                let status =
                    match tokio::time::timeout(self.options.stop_timeout, process.child.wait())
                        .await
                    {
                        Ok(Ok(s)) => s.to_string(),
                        _ => {
                            let _ = process.child.kill().await;
                            "killed after closing its socket".into()
                        }
                    };
                return self.exited(vm, stopping, &status);
            };
            // Transactions are served without the VM table lock (applying one persists the
            // configuration).
            let message = match message {
                // No request of package code may carry a NUL to libyang (C strings).
                FromVm::Request { id, request } if holds_nul(&request) => {
                    let reply = Reply::error("badtype", "a path or value holds a NUL character");
                    let _ = process.commands.send(ToVm::Reply { id, reply }).await;
                    continue;
                }
                FromVm::Request { id, request }
                    if request.get("op").and_then(|op| op.as_str()) == Some("notify") =>
                {
                    let reply = self.notifications.handle(request);
                    let _ = process.commands.send(ToVm::Reply { id, reply }).await;
                    continue;
                }
                FromVm::Request { id, request }
                    if request.get("op").and_then(|op| op.as_str()) == Some("source-failed") =>
                {
                    let reply = self.source_failed(&request);
                    let _ = process.commands.send(ToVm::Reply { id, reply }).await;
                    continue;
                }
                FromVm::Request { id, request } => {
                    let started = lock(&maapi).begin_apply(&request);
                    let reply = match started {
                        None => lock(&maapi).handle(request),
                        Some(Err(reply)) => reply,
                        Some(Ok(pending)) => {
                            self.apply_off_task(&maapi, pending, id, process.commands.clone());
                            continue;
                        }
                    };
                    let _ = process.commands.send(ToVm::Reply { id, reply }).await;
                    continue;
                }
                other => other,
            };
            let mut vms = self.vms();
            let Some(entry) = vms.get_mut(vm) else {
                continue;
            };
            match message {
                FromVm::ComponentStatus {
                    package,
                    component,
                    class_name,
                    state,
                    error_info,
                } => {
                    if state == ComponentState::Failed {
                        warn!(
                            vm,
                            package,
                            component,
                            error = error_info.as_deref().unwrap_or("unknown error"),
                            "component failed"
                        );
                        self.alarms.raise(
                            package_load_failure(&package),
                            Severity::Critical,
                            &format!(
                                "component {component} failed: {}",
                                error_info.as_deref().unwrap_or("unknown error")
                            ),
                        );
                    }
                    // A notification source restarted with new options reports again.
                    entry
                        .status
                        .components
                        .retain(|c| !(c.package == package && c.component == component));
                    let recovered = entry.ready
                        && state == ComponentState::Started
                        && !entry
                            .status
                            .components
                            .iter()
                            .any(|c| c.package == package && c.state == ComponentState::Failed);
                    if recovered {
                        self.alarms
                            .clear(&package_load_failure(&package), "package loaded");
                    }
                    entry.status.components.push(ComponentStatus {
                        package,
                        component,
                        class_name,
                        state,
                        error_info,
                    });
                }
                FromVm::Ready => {
                    ready = true;
                    entry.ready = true;
                    info!(vm, "VM started");
                    // A package whose components all started has loaded (again).
                    for package in &entry.spec.packages {
                        let failed = entry.status.components.iter().any(|c| {
                            c.package == package.name && c.state == ComponentState::Failed
                        });
                        if !failed {
                            self.alarms
                                .clear(&package_load_failure(&package.name), "package loaded");
                        }
                    }
                }
                FromVm::Current { entries } => entry.status.current = entries,
                FromVm::Stopped => stopping = true,
                FromVm::Pong { id } => {
                    if pending_ping == Some(id) {
                        pending_ping = None;
                    }
                }
                FromVm::Fatal { message } => {
                    error!(vm, message, "VM cannot run");
                    mark_failed(&mut entry.status, &entry.spec, &message);
                }
                FromVm::CallResult { id, reply } => {
                    entry.overdue.remove(&id);
                    if let Some(caller) = entry.calls.remove(&id) {
                        let _ = caller.send(reply);
                    }
                }
                FromVm::SelfAssignAlarm {
                    keypath,
                    text,
                    managed_object,
                    prefixes,
                } => {
                    warn!(vm, keypath, "{text}");
                    self.alarms.report(
                        AlarmKey {
                            device: "ncs".into(),
                            alarm_type: AlarmType::ncs("package-operation-failure"),
                            managed_object: ManagedObject {
                                path: managed_object,
                                prefixes,
                            },
                            specific_problem: String::new(),
                        },
                        Severity::Critical,
                        &text,
                    );
                }
                FromVm::Request { .. } | FromVm::Upgraded { .. } | FromVm::Checked { .. } => {
                    warn!(vm, "unexpected message from a VM: {message:?}");
                }
            }
        }
    }

    /// A notification source stopped on an error (`run()` raised, or did not return after
    /// `request_exit()`): a `package-operation-failure` alarm on its package.
    fn source_failed(&self, request: &serde_json::Value) -> Reply {
        let field = |key: &str| request.get(key).and_then(|v| v.as_str()).unwrap_or("");
        let (package, component, message) =
            (field("package"), field("component"), field("message"));
        warn!(package, component, "notification source failed: {message}");
        self.alarms.report(
            package_operation_failure(package),
            Severity::Critical,
            &format!("notification source {component} failed: {message}"),
        );
        Reply::ok(serde_json::Value::Null)
    }

    /// What a call that the VM was told to cancel is, once it has outlived its grace.
    fn overdue_call(&self, vm: &str) -> Option<String> {
        let now = tokio::time::Instant::now();
        let vms = self.vms();
        let (_, what) = vms
            .get(vm)?
            .overdue
            .values()
            .find(|(deadline, _)| *deadline <= now)?;
        Some(format!(
            "{what} went on running {} s after its timeout and TimeoutError",
            self.options.stop_timeout.as_secs()
        ))
    }

    /// A VM killed for going over a limit: a `package-operation-failure` alarm on each of its
    /// packages (kept after the restart, unlike the load failure, which the restart clears).
    fn runaway(&self, vm: &str, spec: &VmSpec, reason: &str) -> Exit {
        error!(vm, "VM killed: {reason}");
        for package in &spec.packages {
            self.alarms.report(
                package_operation_failure(&package.name),
                Severity::Critical,
                &format!("Python VM {vm} was killed: {reason}"),
            );
        }
        Exit::Failed(format!("killed: {reason}"))
    }

    fn exited(&self, vm: &str, stopping: bool, status: &str) -> Exit {
        let wanted = self.vms().get(vm).is_some_and(|e| e.wanted);
        if stopping || !wanted {
            info!(vm, status, "VM process exited");
            Exit::Stopped
        } else {
            Exit::Failed(format!("the VM process exited unexpectedly ({status})"))
        }
    }
}

/// The packages of a VM with each notification source's settings as the configuration makes
/// them.
fn with_source_settings(packages: &[VmPackage], config: &PythonVmConfig) -> Vec<VmPackage> {
    let mut packages = packages.to_vec();
    for package in &mut packages {
        for component in &mut package.components {
            if let Some(base) = &component.source {
                component.source =
                    Some(config.source_settings(&package.name, &component.name, base));
            }
        }
    }
    packages
}

/// Whether any string in `value` (keys included) holds a NUL character.
fn holds_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// The key of a package's `package-operation-failure` alarm: what its code did at run time.
fn package_operation_failure(package: &str) -> AlarmKey {
    AlarmKey {
        device: "ncs".into(),
        alarm_type: AlarmType::ncs("package-operation-failure"),
        managed_object: ManagedObject::package(package),
        specific_problem: String::new(),
    }
}

/// The key of a package's `package-load-failure` alarm.
pub fn package_load_failure(package: &str) -> AlarmKey {
    AlarmKey {
        device: "ncs".into(),
        alarm_type: AlarmType::ncs("package-load-failure"),
        managed_object: ManagedObject::package(package),
        specific_problem: String::new(),
    }
}

/// Marks every component of a VM as failed (keeping what already failed for its own reason).
fn mark_failed(status: &mut VmStatus, spec: &VmSpec, reason: &str) {
    for package in &spec.packages {
        for component in &package.components {
            let existing = status
                .components
                .iter_mut()
                .find(|c| c.package == package.name && c.component == component.name);
            match existing {
                Some(c) if c.state == ComponentState::Failed => {}
                Some(c) => {
                    c.state = ComponentState::Failed;
                    c.error_info = Some(reason.to_string());
                }
                None => status.components.push(ComponentStatus {
                    package: package.name.clone(),
                    component: component.name.clone(),
                    class_name: component.class_name.clone(),
                    state: ComponentState::Failed,
                    error_info: Some(reason.to_string()),
                }),
            }
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A running `pyvmd vm` process and its socket.
pub(super) struct VmProcess {
    pub(super) child: tokio::process::Child,
    pub(super) commands: mpsc::Sender<ToVm>,
    pub(super) messages: mpsc::Receiver<FromVm>,
}

impl VmProcess {
    /// Starts `pyvmd vm` with its socket on fd 3 and stdout/stderr appended to `shared_log`.
    pub(super) fn spawn(
        options: &SupervisorOptions,
        vm: &str,
        shared_log: &std::path::Path,
    ) -> std::io::Result<VmProcess> {
        std::fs::create_dir_all(&options.log_dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(shared_log)?;
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let their_fd = theirs.as_raw_fd();
        let mut command = tokio::process::Command::new(&options.exe);
        command
            // `ps` shows `pyvmd vm <name>`.
            .arg("vm")
            .arg(vm)
            .env("PYVMD_VM_FD", "3")
            // Lets operators (and tests) tell VM processes apart.
            .env("PYVMD_VM_NAME", vm)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        // SAFETY: only async-signal-safe calls (dup2, fcntl, prctl, setpgid) between fork and
        // exec.
        unsafe {
            command.pre_exec(move || {
                if their_fd == 3 {
                    // dup2 onto itself would keep close-on-exec set.
                    let flags = libc::fcntl(3, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(their_fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The VM must not outlive the server, even if the server is killed. The signal
                // follows the thread that forked: VMs are spawned from the runtime's worker
                // threads, which live as long as the server (never from spawn_blocking).
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // A process group of its own: a Ctrl-C in the server's terminal reaches the
                // server only, which then stops the VMs with their teardown.
                if libc::setpgid(0, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        drop(theirs);
        ours.set_nonblocking(true)?;
        let stream = tokio::net::UnixStream::from_std(ours)?;
        let (reader, mut writer) = stream.into_split();
        let (commands, mut outgoing) = mpsc::channel::<ToVm>(64);
        let (incoming, messages) = mpsc::channel::<FromVm>(64);
        tokio::spawn(async move {
            while let Some(message) = outgoing.recv().await {
                let Ok(frame) = encode_message(&message) else {
                    continue;
                };
                if writer.write_all(&frame).await.is_err() {
                    break;
                }
            }
        });
        // Buffered: a message's length and body usually arrive in one read.
        let mut reader = tokio::io::BufReader::new(reader);
        tokio::spawn(async move {
            loop {
                let mut len = [0u8; 4];
                if reader.read_exact(&mut len).await.is_err() {
                    break;
                }
                let len = u32::from_be_bytes(len) as usize;
                if len > MAX_MESSAGE {
                    warn!(len, "oversized message from a VM; closing its socket");
                    break;
                }
                let mut body = vec![0u8; len];
                if reader.read_exact(&mut body).await.is_err() {
                    break;
                }
                match serde_json::from_slice::<FromVm>(&body) {
                    Ok(m) => {
                        if incoming.send(m).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => warn!(error = %e, "unreadable message from a VM"),
                }
            }
        });
        Ok(VmProcess {
            child,
            commands,
            messages,
        })
    }
}

/// Locks a VM's transactions; a panic elsewhere does not make them unusable.
fn lock(maapi: &Mutex<MaapiSessions>) -> MutexGuard<'_, MaapiSessions> {
    maapi.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::protocol::VmComponent;

    #[test]
    fn a_failed_vm_marks_its_components_failed_keeping_their_own_errors() {
        let component = |name: &str| VmComponent {
            name: name.into(),
            class_name: format!("m.{name}"),
            source: None,
        };
        let spec = VmSpec {
            name: "vm".into(),
            packages: vec![VmPackage {
                name: "p".into(),
                components: vec![component("a"), component("b"), component("c")],
            }],
            sys_path: vec![],
            site_dirs: vec![],
            fingerprint: 0,
        };
        let reported = |name: &str, state, error: Option<&str>| ComponentStatus {
            package: "p".into(),
            component: name.into(),
            class_name: format!("m.{name}"),
            state,
            error_info: error.map(String::from),
        };
        let mut status = VmStatus {
            components: vec![
                reported("a", ComponentState::Started, None),
                reported("b", ComponentState::Failed, Some("ValueError: own")),
            ],
            current: vec![],
        };
        mark_failed(&mut status, &spec, "the VM process exited unexpectedly");
        let info: Vec<_> = status
            .components
            .iter()
            .map(|c| (c.component.as_str(), c.state, c.error_info.as_deref()))
            .collect();
        assert_eq!(
            info,
            [
                (
                    "a",
                    ComponentState::Failed,
                    Some("the VM process exited unexpectedly")
                ),
                ("b", ComponentState::Failed, Some("ValueError: own")),
                (
                    "c",
                    ComponentState::Failed,
                    Some("the VM process exited unexpectedly")
                ),
            ]
        );
    }
}
