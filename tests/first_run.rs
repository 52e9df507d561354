//! What a new user meets first, with the real binary: starting from any directory, one server
//! per state directory, a busy port, log level names, and a log readable without a terminal.

mod common;
use common::free_port;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pyvmd::client::NetconfClient;

/// `pyvmd serve` in `cwd` with only `args` (every directory default, relative to `cwd`).
fn serve(cwd: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pyvmd"));
    command
        .current_dir(cwd)
        .arg("serve")
        .args(args)
        .env_remove("NETCONF_LOG_LEVEL")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs a server that is expected to exit by itself (within 30 s).
fn run_to_exit(mut command: Command) -> Output {
    let mut child = command.spawn().expect("pyvmd starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("waiting").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pyvmd did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

async fn connect(port: u16) -> NetconfClient {
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match NetconfClient::connect(addr, "admin", "admin").await {
            Ok(client) => return client,
            Err(e) if Instant::now() > deadline => panic!("cannot connect: {e:#}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// From a directory without the checkout: built-in modules, a warning about the missing
/// packages directory, one ready line, no escape codes in a redirected log; and a second
/// server on the same state directory exits at once, naming the first one's PID.
#[tokio::test]
async fn from_any_directory_with_one_server_per_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let first = serve(dir.path(), &["--listen", &listen]).spawn().unwrap();
    let mut client = connect(port).await;
    let reply = client
        .rpc("<get-config><source><running/></source></get-config>")
        .await
        .unwrap();
    assert!(reply.contains("<data"), "{reply}");

    let other_port = free_port();
    let second = run_to_exit(serve(
        dir.path(),
        &["--listen", &format!("127.0.0.1:{other_port}")],
    ));
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("in use by another pyvmd")
            && stderr.contains(&format!("PID {}", first.id())),
        "{stderr}"
    );

    client.close().await.unwrap();

    // `pyvmd health` (the container health check) logs in with the environment's user.
    let health = Command::new(env!("CARGO_BIN_EXE_pyvmd"))
        .args(["health", "--timeout", "20"])
        .env("NETCONF_PORT", port.to_string())
        .env("NETCONF_USER", "admin")
        .env("NETCONF_PASSWORD", "admin")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&health.stdout);
    assert!(
        health.status.success() && said.starts_with("ok: NETCONF answers on 127.0.0.1:"),
        "{said}"
    );

    // logrotate: the file is moved away and the server told with SIGHUP; what it logs next goes
    // to a new file of the old name.
    let log_path = dir.path().join("logs/pyvmd.log");
    std::fs::rename(&log_path, dir.path().join("logs/pyvmd.log.1")).unwrap();
    unsafe { libc::kill(first.id() as i32, libc::SIGHUP) };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        connect(port).await.close().await.unwrap();
        let fresh = std::fs::read_to_string(&log_path).unwrap_or_default();
        if fresh.contains("started: user admin") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing logged to a new file after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM, then read what it logged.
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    let output = first.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "SIGTERM is a clean stop: {log}");
    let health = Command::new(env!("CARGO_BIN_EXE_pyvmd"))
        .args(["health", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert_eq!(health.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&health.stdout).starts_with("unhealthy: "));
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a redirected log:\n{log}"
    );
    assert_eq!(
        log.matches("ready: NETCONF over SSH on").count(),
        1,
        "{log}"
    );
    assert!(log.contains("packages directory does not exist"), "{log}");
    // The startup summary.
    for line in [
        "YANG: ",
        "packages in ./packages: 0 up",
        "Python VMs: 0 started",
        "logs: ./logs/pyvmd.log (the server)",
    ] {
        assert!(log.contains(line), "no {line:?} in the log:\n{log}");
    }
    assert!(
        !log.contains("Some("),
        "Debug formatting in the log:\n{log}"
    );
    let file = std::fs::read_to_string(dir.path().join("logs/pyvmd.log.1")).unwrap();
    assert!(file.contains("ready: NETCONF over SSH on"), "{file}");
}

/// A busy port fails the start at once, before any package runs.
#[test]
fn a_busy_port_fails_before_packages_start() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    // A package whose VM would write a file if it started.
    let package = dir.path().join("packages/marker");
    std::fs::create_dir_all(package.join("python")).unwrap();
    std::fs::write(
        package.join("package-meta-data.xml"),
        "<ncs-package xmlns=\"http://tail-f.com/ns/ncs-packages\"><name>marker</name>\
         <package-version>1.0</package-version><component><name>main</name><application>\
         <python-class-name>marker.Main</python-class-name></application></component>\
         </ncs-package>",
    )
    .unwrap();
    std::fs::write(
        package.join("python/marker.py"),
        "import pathlib\nfrom ncs.application import Application\n\n\
         class Main(Application):\n    def setup(self):\n        \
         pathlib.Path('started').write_text('yes')\n",
    )
    .unwrap();
    let started = Instant::now();
    let output = run_to_exit(serve(
        dir.path(),
        &["--listen", &format!("127.0.0.1:{port}")],
    ));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!dir.path().join("started").exists(), "a VM started");
    drop(busy);
}

/// The level names users bring work; anything else is refused with the names.
#[test]
fn log_level_names() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_to_exit(serve(dir.path(), &["--log-level", "loud"]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown log level \"loud\""), "{stderr}");

    // `warning` keeps warnings (the missing packages directory) and drops info lines.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    drop(busy);
    let mut child = serve(
        dir.path(),
        &[
            "--log-level",
            "warning",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
    )
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.try_wait();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("packages directory does not exist"), "{log}");
    assert!(
        !log.contains("ready:"),
        "an info line at level warning:\n{log}"
    );
}
