//! The `pyvmd` command: `serve` runs the NETCONF server, `bench` measures one, `health` checks
//! one; `new-package` and `check-packages` are for package authors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use pyvmd::server::{ServeOptions, serve};
use pyvmd::ssh::UserPassword;

/// A NETCONF server that hosts NSO-style Python packages in embedded Python VMs.
#[derive(Parser)]
#[command(name = "pyvmd", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the NETCONF server (SSH, port 830 by default).
    Serve(Box<ServeArgs>),
    /// Start a server on a free loopback port and measure it.
    Bench(BenchArgs),
    /// Check that a server answers NETCONF (log in, `<get>`, close); exit status 0 if it does.
    Health(HealthArgs),
    /// Write the skeleton of a new package, which loads and runs as it is.
    NewPackage(NewPackageArgs),
    /// Load a packages directory without serving it and print what is wrong (file:line: ...);
    /// exit status 1 if anything is.
    CheckPackages(CheckPackagesArgs),
    /// A Python VM, started by `serve` with its socket as fd 3 (internal).
    #[command(hide = true)]
    Vm {
        /// The VM's name: only shown by `ps` (the VM learns it from the server).
        name: Option<String>,
    },
}

#[derive(Args)]
struct BenchArgs {
    /// A directory of extra YANG modules for the server under test.
    #[arg(long)]
    yang_dir: Option<PathBuf>,
    /// List entries in the large-datastore figures.
    #[arg(long, default_value_t = 10_000)]
    entries: usize,
    /// Round trips in the small get-config figure.
    #[arg(long, default_value_t = 5_000)]
    round_trips: usize,
    /// Edits in the edit-config latency figure.
    #[arg(long, default_value_t = 500)]
    edits: usize,
    /// Sessions in the session-rate figure.
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// Create/delete cycles of a service instance in the services' memory figure.
    #[arg(long, default_value_t = 10_000)]
    service_cycles: usize,
    /// Run only one group of figures: core, vms, actions, services or notifications.
    #[arg(long)]
    only: Option<String>,
}

#[derive(Args)]
struct HealthArgs {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// The server's port.
    #[arg(long, env = "NETCONF_PORT", default_value_t = 830)]
    port: u16,
    #[command(flatten)]
    login: LoginArgs,
    /// Seconds to wait for the whole exchange.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("kind").multiple(false))]
struct NewPackageArgs {
    /// The package name: also its YANG module's name and (with `_` for `-`) its Python
    /// package's.
    name: String,
    /// A service: `/ncs:services/NAME`, whose `cb_create` writes a result.
    #[arg(long, group = "kind")]
    service: bool,
    /// An action: `/NAME/double`.
    #[arg(long, group = "kind")]
    action: bool,
    /// A notification source that posts an event on the stream NAME every 2 s.
    #[arg(long, group = "kind")]
    notification_source: bool,
    /// Where to write it [default: packages/NAME].
    #[arg(long)]
    dest: Option<PathBuf>,
}

#[derive(Args)]
struct CheckPackagesArgs {
    /// The directory of packages (one per subdirectory).
    #[arg(default_value = "./packages")]
    dir: PathBuf,
    #[command(flatten)]
    schema: SchemaArgs,
}

/// The password login: the one `serve` accepts, and `health` logs in with.
#[derive(Args)]
struct LoginArgs {
    /// The user name for password logins.
    #[arg(long, env = "NETCONF_USER", default_value = "admin")]
    user: String,
    /// The password for password logins.
    #[arg(
        long,
        env = "NETCONF_PASSWORD",
        default_value = "admin",
        hide_env_values = true
    )]
    password: String,
}

/// Where YANG modules come from, besides the built-in ones and the packages'.
#[derive(Args)]
struct SchemaArgs {
    /// A directory of YANG modules to load besides the built-in ones (every *.yang file in it
    /// is implemented; those of its subdirectories are imported when needed).
    #[arg(long)]
    yang_dir: Option<PathBuf>,
    /// Extra YANG modules to implement: names (looked up in --module-path) or paths of .yang
    /// files, separated by spaces or commas.
    #[arg(long, env = "NETCONF_MODULES")]
    modules: Option<String>,
    /// Directories where --modules names and their imports are looked up (with their
    /// subdirectories), separated by `:`.
    #[arg(long, env = "NETCONF_MODULE_PATH")]
    module_path: Option<String>,
}

impl SchemaArgs {
    fn options(self) -> pyvmd::tools::check_packages::SchemaOptions {
        use pyvmd::yang::extra_modules::{parse_list, parse_path};
        pyvmd::tools::check_packages::SchemaOptions {
            yang_dir: self.yang_dir,
            extra_modules: parse_list(self.modules.as_deref().unwrap_or_default()),
            module_path: parse_path(self.module_path.as_deref().unwrap_or_default()),
        }
    }
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 0.0.0.0:$NETCONF_PORT, or 0.0.0.0:830].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Port to listen on when --listen is not given.
    #[arg(long, env = "NETCONF_PORT", default_value_t = 830)]
    port: u16,
    /// Directory for host keys and the persisted configuration.
    #[arg(long, default_value = "./state")]
    state_dir: PathBuf,
    /// Directory of Python packages (one sub-directory per package).
    #[arg(long, default_value = "./packages")]
    packages: PathBuf,
    #[command(flatten)]
    schema: SchemaArgs,
    /// Directory for the server's log file (pyvmd.log) and the VM logs.
    #[arg(long, default_value = "./logs")]
    log_dir: PathBuf,
    #[command(flatten)]
    login: LoginArgs,
    /// An OpenSSH authorized_keys file for public-key logins [default: <state-dir>/authorized_keys].
    #[arg(long)]
    authorized_keys: Option<PathBuf>,
    /// Delay after a failed login, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    auth_failure_delay_ms: u64,
    /// Failed logins from one address after which it is blocked (0: never); each failure
    /// before doubles the delay of the next.
    #[arg(long, default_value_t = 10)]
    auth_block_after: u32,
    /// Seconds an address stays blocked (and its failures are remembered).
    #[arg(long, default_value_t = 300)]
    auth_block_secs: u64,
    /// Log level: error, warn (or warning), info, debug, trace or off.
    #[arg(long, env = "NETCONF_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// A full `tracing` filter instead of --log-level (e.g. `info,pyvmd::runtime=debug`).
    #[arg(long)]
    log_filter: Option<String>,
    /// The largest message a client may send, in bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_message_size: usize,
    /// NETCONF sessions that may be open at once; a further one is closed at its start.
    #[arg(long, default_value_t = 256)]
    max_sessions: usize,
    /// NETCONF sessions that one user may have open at once.
    #[arg(long, default_value_t = 64)]
    max_sessions_per_user: usize,
    /// Seconds a client has to send its hello.
    #[arg(long, default_value_t = 60)]
    hello_timeout: u64,
    /// Seconds a Python VM may take to start its components before it is failed.
    #[arg(long, default_value_t = 30)]
    vm_start_timeout: u64,
    /// Seconds between liveness checks of each Python VM; a VM that misses one is restarted.
    #[arg(long, default_value_t = 10)]
    vm_heartbeat: u64,
    /// Seconds a package's upgrade components may run before the upgrade is failed.
    #[arg(long, default_value_t = 300)]
    vm_upgrade_timeout: u64,
    /// Seconds an action or service callback may run before the client gets an error (a
    /// commit that waits for a service callback fails).
    #[arg(long, default_value_t = 240)]
    vm_action_timeout: u64,
    /// Seconds a stopping Python VM gets for teardown, and a callback that ran past its
    /// timeout gets to end after TimeoutError, before the VM is killed.
    #[arg(long, default_value_t = 15)]
    vm_stop_timeout: u64,
    /// The resident memory each Python VM may hold, in MiB; a VM over it is killed, alarmed
    /// and restarted (0: no limit).
    #[arg(long, default_value_t = 2048)]
    vm_max_memory_mib: u64,
    /// The share of a CPU core each Python VM may keep busy, in percent, averaged over
    /// --vm-cpu-window-secs; a VM over it is killed, alarmed and restarted (0: no limit).
    #[arg(long, default_value_t = 95)]
    vm_max_cpu_percent: u64,
    /// Over how many seconds the CPU use of --vm-max-cpu-percent is averaged.
    #[arg(long, default_value_t = 120)]
    vm_cpu_window_secs: u64,
    /// The most each stream's replay log keeps on disk, in MiB (the oldest events go first).
    #[arg(long, default_value_t = 64)]
    replay_max_mib: u64,
    /// Days of events each stream's replay log keeps.
    #[arg(long, default_value_t = 7)]
    replay_max_days: u64,
    /// Notifications that may wait for one subscriber; a subscriber that falls further behind
    /// loses its session (and resubscribes with a replay).
    #[arg(long, default_value_t = 10_000)]
    notification_queue: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => run_serve(*args),
        Command::Vm { .. } => pyvmd::vm::run_vm(),
        Command::Health(args) => run_health(args),
        Command::NewPackage(args) => run_new_package(args),
        Command::CheckPackages(args) => run_check_packages(args),
        Command::Bench(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(pyvmd::bench::run(pyvmd::bench::BenchOptions {
                yang_dir: args.yang_dir,
                entries: args.entries,
                round_trips: args.round_trips,
                edits: args.edits,
                sessions: args.sessions,
                service_cycles: args.service_cycles,
                only: args.only,
            })),
    }
}

fn run_health(args: HealthArgs) -> anyhow::Result<()> {
    let addr = SocketAddr::new(args.host, args.port);
    let timeout = Duration::from_secs(args.timeout.max(1));
    let checked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(pyvmd::tools::health::check(
            addr,
            &args.login.user,
            &args.login.password,
            timeout,
        ));
    match checked {
        Ok(session) => {
            println!("ok: NETCONF answers on {addr} (session {session})");
            Ok(())
        }
        Err(e) => {
            println!("unhealthy: {addr}: {e:#}");
            std::process::exit(1)
        }
    }
}

fn run_new_package(args: NewPackageArgs) -> anyhow::Result<()> {
    use pyvmd::tools::new_package::{Skeleton, create};
    let kind = if args.service {
        Skeleton::Service
    } else if args.action {
        Skeleton::Action
    } else if args.notification_source {
        Skeleton::NotificationSource
    } else {
        Skeleton::Plain
    };
    let dest = args
        .dest
        .unwrap_or_else(|| PathBuf::from("packages").join(&args.name));
    let files = create(&args.name, kind, &dest)?;
    println!("wrote package {} in {}:", args.name, dest.display());
    for file in &files {
        println!("  {}", file.display());
    }
    let packages = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    println!(
        "next: pyvmd check-packages {0}; pyvmd serve --packages {0}; then \
         python3 -m unittest discover -s {1}/test -v",
        packages.display(),
        dest.display()
    );
    Ok(())
}

fn run_check_packages(args: CheckPackagesArgs) -> anyhow::Result<()> {
    // Quiet unless something is wrong with the tool itself: the findings are the output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("error")
        .with_writer(std::io::stderr)
        .try_init();
    let exe = std::env::current_exe()?;
    let schema = args.schema.options();
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(pyvmd::tools::check_packages::check(&args.dir, &schema, exe))?;
    for finding in &report.findings {
        println!("{finding}");
    }
    let ok = report.packages.iter().filter(|(_, _, ok)| *ok).count();
    for (name, version, passed) in &report.packages {
        if *passed {
            println!("ok: {name} {}", version.as_deref().unwrap_or(""));
        }
    }
    println!(
        "{} package(s) in {}: {ok} ok, {} with problems",
        report.packages.len(),
        args.dir.display(),
        report.packages.len() - ok
    );
    if report.findings.is_empty() {
        Ok(())
    } else {
        std::process::exit(1)
    }
}

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let log_file =
        pyvmd::logging::init(&args.log_dir, &args.log_level, args.log_filter.as_deref())?;
    let authorized_keys = args
        .authorized_keys
        .or_else(|| Some(args.state_dir.join("authorized_keys")));
    let schema = args.schema.options();
    let options = ServeOptions {
        listen: args
            .listen
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], args.port))),
        state_dir: args.state_dir,
        yang_dir: schema.yang_dir,
        extra_modules: schema.extra_modules,
        module_path: schema.module_path,
        users: vec![UserPassword {
            user: args.login.user,
            password: args.login.password,
        }],
        authorized_keys,
        auth_failure_delay: Duration::from_millis(args.auth_failure_delay_ms),
        login_throttle: pyvmd::ssh::ThrottleConfig {
            block_after: args.auth_block_after,
            block_for: Duration::from_secs(args.auth_block_secs.max(1)),
        },
        max_message_size: args.max_message_size,
        session_limits: pyvmd::netconf::sessions::SessionLimits {
            total: args.max_sessions.max(1),
            per_user: args.max_sessions_per_user.max(1),
        },
        hello_timeout: Duration::from_secs(args.hello_timeout),
        packages_dir: args.packages,
        log_dir: args.log_dir,
        vm_start_timeout: Duration::from_secs(args.vm_start_timeout),
        vm_heartbeat: Duration::from_secs(args.vm_heartbeat.max(1)),
        vm_upgrade_timeout: Duration::from_secs(args.vm_upgrade_timeout.max(1)),
        vm_action_timeout: Duration::from_secs(args.vm_action_timeout.max(1)),
        vm_stop_timeout: Duration::from_secs(args.vm_stop_timeout.max(1)),
        vm_limits: pyvmd::runtime::limits::VmLimits {
            max_memory_mib: args.vm_max_memory_mib,
            max_cpu_percent: args.vm_max_cpu_percent,
            cpu_window: Duration::from_secs(args.vm_cpu_window_secs.max(1)),
        },
        replay_limits: pyvmd::notify::ReplayLimits {
            max_bytes: args.replay_max_mib.max(1) << 20,
            max_age: Duration::from_secs(args.replay_max_days.max(1) * 24 * 3600),
        },
        notification_queue: args.notification_queue.max(1),
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            // logrotate moves the file and sends SIGHUP: the next line goes to a new file.
            if let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        if let Err(e) = log_file.reopen() {
                            tracing::warn!(error = %e, "cannot reopen the log file");
                        }
                    }
                });
            }
            serve(options).await
        })
}
