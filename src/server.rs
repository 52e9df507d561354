//! `pyvmd serve`: loads the YANG context and the datastore, and serves NETCONF over SSH until
//! SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::datastore::Datastore;
use crate::netconf::audit::AuditLog;
use crate::netconf::capabilities::MODULE_FEATURES;
use crate::netconf::{NetconfServer, session};
use crate::notify::{Notifier, NotifyOptions, ReplayLimits};
use crate::runtime::{Runtime, Schema, SchemaSource, SupervisorOptions, packages};
use crate::ssh::{
    self, AuthConfig, SshConfig, SubsystemStarter, ThrottleConfig, UserDirectory, UserPassword,
};
use crate::state_lock::StateLock;
use crate::yang::{YangContext, builtin, extra_modules};

/// Everything `serve` needs to know.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen for SSH.
    pub listen: SocketAddr,
    /// Host keys and the persisted datastores.
    pub state_dir: PathBuf,
    /// A directory of YANG modules to load besides the built-in ones.
    pub yang_dir: Option<PathBuf>,
    /// Extra modules to implement, by name (found in `module_path`) or by file path.
    pub extra_modules: Vec<String>,
    /// Where `extra_modules` names, and their imports, are looked up.
    pub module_path: Vec<PathBuf>,
    /// Password logins.
    pub users: Vec<UserPassword>,
    /// An OpenSSH `authorized_keys` file for public-key logins.
    pub authorized_keys: Option<PathBuf>,
    /// How long a failed login is held before the client may try again.
    pub auth_failure_delay: Duration,
    /// When an address whose logins keep failing is blocked.
    pub login_throttle: ThrottleConfig,
    /// The largest message a client may send.
    pub max_message_size: usize,
    /// How many NETCONF sessions may be open at once, in all and per user.
    pub session_limits: crate::netconf::sessions::SessionLimits,
    /// How long a client has to send its hello.
    pub hello_timeout: Duration,
    /// The Python packages to run.
    pub packages_dir: PathBuf,
    /// Where the VM log files go.
    pub log_dir: PathBuf,
    /// How long a VM may take to start its components before it is failed.
    pub vm_start_timeout: Duration,
    /// How often each VM's liveness is checked.
    pub vm_heartbeat: Duration,
    /// How long a package's upgrade components may run.
    pub vm_upgrade_timeout: Duration,
    /// How long an action callback may run.
    pub vm_action_timeout: Duration,
    /// How long a VM may take to tear down, and a cancelled callback to end, before the VM is
    /// killed.
    pub vm_stop_timeout: Duration,
    /// The memory and CPU each VM may use.
    pub vm_limits: crate::runtime::limits::VmLimits,
    /// How much each stream's replay log keeps.
    pub replay_limits: ReplayLimits,
    /// How many notifications may wait for a subscriber before it is cut off.
    pub notification_queue: usize,
}

/// Writes the modules the server loads into a fresh directory, which lives as long as the
/// returned value: the built-in ones, those of `yang_dir` (`--yang-dir`), and the
/// `extra_modules` (`--modules`) found in `module_path` with their imports.
///
/// # Errors
/// A directory that cannot be read or written, or an extra module that cannot be found.
pub fn module_directory(
    yang_dir: Option<&Path>,
    extra_modules: &[String],
    module_path: &[PathBuf],
) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("pyvmd-yang-")
        .tempdir()
        .context("creating a directory for the YANG modules")?;
    builtin::write_modules(dir.path(), yang_dir).with_context(|| match yang_dir {
        Some(yang_dir) => format!("cannot read the YANG directory {}", yang_dir.display()),
        None => "cannot write the built-in YANG modules".to_string(),
    })?;
    let extra = extra_modules::resolve(extra_modules, module_path)?;
    extra_modules::install(dir.path(), &extra, module_path)?;
    for module in &extra {
        info!(file = %module.display(), "extra YANG module");
    }
    Ok(dir)
}

/// Runs the server until a termination signal arrives.
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let _state_lock = StateLock::acquire(&options.state_dir)?;
    // Bound before anything starts, so that a busy port fails at once.
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    if !options.packages_dir.is_dir() {
        warn!(
            dir = %options.packages_dir.display(),
            "the packages directory does not exist: no packages run (see --packages)"
        );
    }
    let yang_dir = module_directory(
        options.yang_dir.as_deref(),
        &options.extra_modules,
        &options.module_path,
    )?;
    // Packages come first: their YANG joins the schema that the datastores are opened with.
    let mut packages = packages::discover(&options.packages_dir);
    let (yang, yang_failures) =
        YangContext::load_with_packages(yang_dir.path(), &packages.yang_sources(), MODULE_FEATURES)
            .context("loading the YANG modules")?;
    packages.mark_yang_failures(&yang_failures);
    log_modules(&yang, &packages, &options.extra_modules);
    let ctx = yang.context();
    let state_dir = options.state_dir.clone();
    let datastore = tokio::task::spawn_blocking(move || Datastore::open(ctx, &state_dir))
        .await?
        .with_context(|| {
            format!(
                "loading the running configuration from {}",
                options.state_dir.display()
            )
        })?;
    let datastore = Arc::new(datastore);
    let notify_dir = options.state_dir.join("notifications");
    let notifier = Notifier::open(NotifyOptions {
        dir: Some(notify_dir.clone()),
        limits: options.replay_limits,
        queue_depth: options.notification_queue,
    })
    .with_context(|| format!("opening the replay logs in {}", notify_dir.display()))?;
    let notifier = Arc::new(notifier);
    let runtime = Runtime::start(
        SupervisorOptions {
            exe: std::env::current_exe().context("finding the pyvmd executable")?,
            log_dir: options.log_dir.clone(),
            start_timeout: options.vm_start_timeout,
            stop_timeout: options.vm_stop_timeout,
            heartbeat: options.vm_heartbeat,
            upgrade_timeout: options.vm_upgrade_timeout,
            action_timeout: options.vm_action_timeout,
            limits: options.vm_limits,
        },
        options.packages_dir.clone(),
        packages,
        &options.state_dir,
        Arc::clone(&datastore),
        Schema {
            yang: Arc::new(yang),
            source: SchemaSource {
                dir: yang_dir.path().to_path_buf(),
                features: MODULE_FEATURES,
            },
        },
        Arc::clone(&notifier),
    )
    .await;
    // The bootstrap user is the recovery session of RFC 8341: access control never locks it
    // out, in NETCONF sessions and in the Python transactions started in its name.
    if let Some(bootstrap) = options.users.first() {
        datastore.set_recovery_user(&bootstrap.user);
    }
    let netconf = Arc::new(
        NetconfServer::new(
            Arc::clone(&datastore),
            Arc::clone(&runtime),
            Arc::clone(&notifier),
            options.max_message_size,
            options.hello_timeout,
        )
        .with_session_limits(options.session_limits),
    );
    netconf
        .events
        .keep_audit_log(AuditLog::new(options.log_dir.join("audit.log")));
    // A reload that changes the modules changes the capabilities: a
    // netconf-capability-change event, and new sessions get the new hello.
    let mut schema = runtime.follow_yang();
    let served = Arc::clone(&netconf);
    tokio::spawn(async move {
        while schema.changed().await.is_ok() {
            served.schema();
        }
    });
    let summary = Arc::clone(&runtime);
    let server_log = options.log_dir.join("pyvmd.log");
    let start_timeout = options.vm_start_timeout;
    tokio::spawn(async move { summary.log_startup(start_timeout, &server_log).await });
    let starter: SubsystemStarter = Arc::new(move |io, peer| {
        tokio::spawn(session::run(io, peer, Arc::clone(&netconf)));
    });
    let ssh_config = SshConfig {
        state_dir: options.state_dir.clone(),
        auth: AuthConfig {
            users: options.users.clone(),
            authorized_keys: options.authorized_keys.clone(),
            directory: Some(Arc::new(RunningUsers { datastore })),
            throttle: options.login_throttle,
            failure_delay: options.auth_failure_delay,
        },
        input_queue_bytes: options.max_message_size.clamp(1 << 20, 64 << 20),
    };
    tokio::select! {
        result = ssh::serve(ssh_config, listener, starter) => result,
        signal = shutdown_signal() => {
            info!(signal, "shutting down");
            // Committed data is already on disk; the VMs get to run their teardown.
            runtime.shutdown().await;
            notifier.sync();
            Ok(())
        }
    }
}

/// The users of `/sys:system/authentication` in running, for the SSH layer's logins.
struct RunningUsers {
    datastore: Arc<Datastore>,
}

impl std::fmt::Debug for RunningUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunningUsers")
    }
}

impl RunningUsers {
    fn user(&self, name: &str) -> Option<(crate::datastore::users::LocalUser, bool)> {
        let (users, passwords) = crate::datastore::users::local_users(&self.datastore.running());
        users
            .into_iter()
            .find(|u| u.name == name)
            .map(|u| (u, passwords))
    }
}

impl UserDirectory for RunningUsers {
    fn check_password(&self, user: &str, password: &str) -> bool {
        self.user(user).is_some_and(|(u, passwords_allowed)| {
            passwords_allowed
                && u.password
                    .is_some_and(|hash| crate::datastore::users::password_matches(password, &hash))
        })
    }

    fn has_key(&self, user: &str, key: &russh::keys::PublicKey) -> bool {
        self.user(user).is_some_and(|(u, _)| {
            u.keys.iter().any(|(_, blob)| {
                russh::keys::PublicKey::from_bytes(blob)
                    .is_ok_and(|configured| configured.key_data() == key.key_data())
            })
        })
    }

    fn has_user(&self, user: &str) -> bool {
        self.user(user).is_some()
    }
}

/// The first line of the startup summary: the YANG modules, by where they come from.
fn log_modules(yang: &YangContext, packages: &packages::PackageSet, extra: &[String]) {
    let from_packages: Vec<String> = packages
        .yang_sources()
        .iter()
        .flat_map(|source| &source.files)
        .filter_map(|file| {
            let stem = file.file_stem()?.to_str()?;
            Some(stem.split('@').next().unwrap_or(stem).to_string())
        })
        .collect();
    let mut line = format!(
        "YANG: {} modules implemented, {} imported only",
        yang.modules().len(),
        yang.imported_modules().len()
    );
    if !from_packages.is_empty() {
        line.push_str(&format!("; from packages: {}", from_packages.join(", ")));
    }
    if !extra.is_empty() {
        line.push_str(&format!("; extra: {}", extra.join(", ")));
    }
    info!("{line}");
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
