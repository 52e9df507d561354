//! The `pyvmd` command: `serve` runs the NETCONF server, `bench` measures one.

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
    /// A directory of YANG modules to load besides the built-in ones (every *.yang file in it
    /// is implemented; those of its subdirectories are imported when needed).
    #[arg(long)]
    yang_dir: Option<PathBuf>,
    /// Directory for the server's log file (pyvmd.log) and the VM logs.
    #[arg(long, default_value = "./logs")]
    log_dir: PathBuf,
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
    /// An OpenSSH authorized_keys file for public-key logins [default: <state-dir>/authorized_keys].
    #[arg(long)]
    authorized_keys: Option<PathBuf>,
    /// Delay after a failed login, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    auth_failure_delay_ms: u64,
    /// Log level: error, warn (or warning), info, debug, trace or off.
    #[arg(long, env = "NETCONF_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// A full `tracing` filter instead of --log-level (e.g. `info,pyvmd::runtime=debug`).
    #[arg(long)]
    log_filter: Option<String>,
    /// The largest message a client may send, in bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_message_size: usize,
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

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let log_file =
        pyvmd::logging::init(&args.log_dir, &args.log_level, args.log_filter.as_deref())?;
    let authorized_keys = args
        .authorized_keys
        .or_else(|| Some(args.state_dir.join("authorized_keys")));
    let options = ServeOptions {
        listen: args
            .listen
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], args.port))),
        state_dir: args.state_dir,
        yang_dir: args.yang_dir,
        users: vec![UserPassword {
            user: args.user,
            password: args.password,
        }],
        authorized_keys,
        auth_failure_delay: Duration::from_millis(args.auth_failure_delay_ms),
        max_message_size: args.max_message_size,
        hello_timeout: Duration::from_secs(args.hello_timeout),
        packages_dir: args.packages,
        log_dir: args.log_dir,
        vm_start_timeout: Duration::from_secs(args.vm_start_timeout),
        vm_heartbeat: Duration::from_secs(args.vm_heartbeat.max(1)),
        vm_upgrade_timeout: Duration::from_secs(args.vm_upgrade_timeout.max(1)),
        vm_action_timeout: Duration::from_secs(args.vm_action_timeout.max(1)),
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
