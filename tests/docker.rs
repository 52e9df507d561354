//! The Docker image and the lab (`docker/`), end to end: builds the base images where no
//! registry is reachable (`docker/base-images.sh`), the server image once and the two client
//! images; brings the lab of `docker/compose.yml` up under a project name of its own, waits for
//! both servers' health checks, runs the ncclient client (an edit, a service commit, an action,
//! an rpc, notifications, the second server) and the yangcli client from their containers
//! against the servers by service name; checks that a committed change survives
//! `docker-compose restart`, and that `docker stop` ends the server cleanly: exit status 0,
//! every VM stopped by the server after its `teardown()`. The lab is taken down (volumes
//! included) when the test ends, whether it passed or not.
//!
//! Without Docker (or docker-compose) the test prints a loud notice and passes, except under CI
//! (`CI=true`), where that is a failure. A cold run (no base images, no build cache) takes about
//! ten minutes on two cores, most of it the release build inside the image; a warm one about a
//! minute.

mod common;
use common::{ci, free_port};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The images the test builds (tagged apart from the `pyvmd` a user builds).
const IMAGE: &str = "pyvmd:test";
const NCCLIENT_IMAGE: &str = "pyvmd-lab-ncclient:test";
const YANGCLI_IMAGE: &str = "pyvmd-lab-yangcli:test";

/// Panics under CI, otherwise prints a notice; returns false so that the caller stops.
fn missing(what: &str) -> bool {
    if ci() {
        panic!("CI=true and {what}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n{bar}\nSKIPPED: {what}\n{bar}\n",
        bar = "!".repeat(78)
    );
    false
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `command` to completion within `limit`, returning (success, stdout + stderr).
fn run(mut command: Command, limit: Duration) -> (bool, String) {
    let shown = format!("{command:?}");
    let mut child = match command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return (false, format!("{shown}: {e}")),
    };
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the command") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    match status {
        Some(s) => (s.success(), text),
        None => (false, format!("{shown}\n{text}\n[killed after {limit:?}]")),
    }
}

/// Runs `command`, panicking with its output when it fails; returns the output.
fn must(what: &str, command: Command, limit: Duration) -> String {
    let (ok, output) = run(command, limit);
    assert!(ok, "{what} failed:\n{}", tail(&output, 120));
    output
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn docker(args: &[&str]) -> Command {
    let mut command = Command::new("docker");
    command.args(args);
    command
}

/// `docker-compose` (1.x), or else the `docker compose` plugin.
fn compose_program() -> Option<Vec<String>> {
    let works = |program: &[&str]| {
        let mut command = Command::new(program[0]);
        command.args(&program[1..]).arg("version");
        run(command, Duration::from_secs(30)).0
    };
    if works(&["docker-compose"]) {
        Some(vec!["docker-compose".into()])
    } else if works(&["docker", "compose"]) {
        Some(vec!["docker".into(), "compose".into()])
    } else {
        None
    }
}

/// The lab under a project name of its own; taken down, volumes included, when dropped.
struct Lab {
    program: Vec<String>,
    project: String,
    file: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Lab {
    fn compose(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program[0]);
        command
            .args(&self.program[1..])
            .arg("--project-name")
            .arg(&self.project)
            .arg("--file")
            .arg(&self.file)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// The id of the service's container.
    fn container(&self, service: &str) -> String {
        let output = must(
            "docker-compose ps",
            self.compose(&["ps", "-q", service]),
            Duration::from_secs(60),
        );
        let id = output
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_hexdigit()))
            .unwrap_or_else(|| panic!("no container for {service}:\n{output}"));
        id.to_string()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let (_, logs) = run(
                self.compose(&["logs", "--no-color", "--tail", "150"]),
                Duration::from_secs(60),
            );
            eprintln!("--- lab logs ---\n{logs}\n---");
        }
        let (ok, output) = run(
            self.compose(&["down", "--volumes", "--remove-orphans", "--timeout", "30"]),
            Duration::from_secs(180),
        );
        if !ok {
            eprintln!("taking the lab down failed:\n{output}");
        }
    }
}

fn inspect(id: &str, format: &str) -> String {
    must(
        "docker inspect",
        docker(&["inspect", "--format", format, id]),
        Duration::from_secs(30),
    )
    .trim()
    .to_string()
}

/// Waits until the container's health check passes.
fn wait_healthy(id: &str, what: &str) -> Duration {
    let start = Instant::now();
    loop {
        let status = inspect(id, "{{.State.Status}} {{.State.Health.Status}}");
        match status.as_str() {
            "running healthy" => return start.elapsed(),
            "running starting" => {}
            _ => panic!(
                "{what} is {status}:\n{}",
                inspect(id, "{{json .State.Health}}")
            ),
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{what} is not healthy after 120 s:\n{}",
            inspect(id, "{{json .State.Health}}")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Prints how long a stage took (the test's wall time is in the output of `--nocapture`).
fn stage(name: &str, start: Instant) {
    eprintln!(
        "docker test: {name}: {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn docker_image_and_lab() {
    let total = Instant::now();
    if !run(
        docker(&["info", "--format", "{{.ServerVersion}}"]),
        Duration::from_secs(60),
    )
    .0 && !missing("Docker is not available (`docker info` fails)")
    {
        return;
    }
    let Some(program) = compose_program() else {
        missing("neither docker-compose nor `docker compose` is available");
        return;
    };
    let root = repo();
    let dir = root.join("docker");

    // Base images, where no registry is reachable (the script skips those that exist).
    let t = Instant::now();
    let mut base = Command::new("bash");
    base.arg(dir.join("base-images.sh"));
    must("docker/base-images.sh", base, Duration::from_secs(20 * 60));
    stage("base images", t);

    // The server image, once; the clients.
    let t = Instant::now();
    let mut build = docker(&["build", "--file", "docker/Dockerfile", "--tag", IMAGE, "."]);
    build.current_dir(&root);
    must("building the image", build, Duration::from_secs(30 * 60));
    stage("server image", t);
    let t = Instant::now();
    for (image, context) in [(NCCLIENT_IMAGE, "ncclient"), (YANGCLI_IMAGE, "yangcli")] {
        let context = dir.join("clients").join(context);
        let context = context.to_str().expect("a UTF-8 path");
        must(
            &format!("building {image}"),
            docker(&["build", "--tag", image, context]),
            Duration::from_secs(10 * 60),
        );
    }
    stage("client images", t);
    let size: u64 = inspect(IMAGE, "{{.Size}}").parse().expect("a size");
    eprintln!("docker test: {IMAGE} is {:.1} MB", size as f64 / 1e6);

    let port = free_port();
    let port2 = free_port();
    let lab = Lab {
        program,
        project: format!("pyvmdtest{}", std::process::id()),
        file: dir.join("compose.yml"),
        env: vec![
            ("PYVMD_IMAGE", IMAGE.to_string()),
            ("PYVMD_LAB_NCCLIENT_IMAGE", NCCLIENT_IMAGE.to_string()),
            ("PYVMD_LAB_YANGCLI_IMAGE", YANGCLI_IMAGE.to_string()),
            ("PYVMD_LAB_PORT", port.to_string()),
            ("PYVMD2_LAB_PORT", port2.to_string()),
        ],
    };
    let t = Instant::now();
    must(
        "docker-compose up",
        lab.compose(&["up", "--detach", "--no-build"]),
        Duration::from_secs(180),
    );
    let server = lab.container("pyvmd");
    let server2 = lab.container("pyvmd2");
    let healthy = wait_healthy(&server, "pyvmd");
    wait_healthy(&server2, "pyvmd2");
    stage(&format!("lab up (pyvmd healthy after {healthy:.1?})"), t);

    // The server runs as its own user, and its port is published on loopback only.
    let uid = must(
        "docker exec",
        docker(&["exec", &server, "id", "-u"]),
        Duration::from_secs(30),
    );
    assert_eq!(uid.trim(), "830", "the server does not run as pyvmd");
    let published = must(
        "docker port",
        docker(&["port", &server, "830/tcp"]),
        Duration::from_secs(30),
    );
    assert_eq!(
        published.trim(),
        format!("127.0.0.1:{port}"),
        "port 830 is not published on loopback only"
    );
    let mut banner = [0u8; 8];
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the published port answers");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    stream.read_exact(&mut banner).expect("an SSH banner");
    assert_eq!(
        &banner, b"SSH-2.0-",
        "not an SSH server on the published port"
    );
    drop(stream);

    // The clients, from their containers, reach the servers by service name.
    let t = Instant::now();
    let output = must(
        "the ncclient client",
        lab.compose(&["run", "--rm", "ncclient"]),
        Duration::from_secs(240),
    );
    for expected in [
        "connected to pyvmd:830 as admin",
        "committed vlan-service 'lab'",
        "the service wrote /vlans/vlan[10] with ports ge1, ge2",
        "action ping: pinged router1.example 2 times",
        "rpc echo: hi",
        "notification: tick",
        "second server pyvmd2:2830 as oper",
        "lab-demo: OK",
    ] {
        assert!(
            output.contains(expected),
            "the ncclient client did not print {expected:?}:\n{output}"
        );
    }
    stage("ncclient client", t);

    let t = Instant::now();
    let output = must(
        "the yangcli client",
        lab.compose(&["run", "--rm", "yangcli"]),
        Duration::from_secs(240),
    );
    for expected in [
        "NETCONF session established for admin on pyvmd",
        "level level-debug",
        "message HELLO",
        "vlan 20 {",
        "Incoming notification",
        "message 'hello from the lab'",
        "replayComplete",
        "stream ticker",
    ] {
        assert!(
            output.contains(expected),
            "the yangcli client did not print {expected:?}:\n{output}"
        );
    }
    let complaints: Vec<&str> = output
        .lines()
        // yuma123 2.13 warns about RFC 8526's yang-library:1.1 capability, which it does not
        // know, and goes on (tests/yangcli.rs).
        .filter(|l| {
            !l.contains("capability URI 'urn:ietf:params:netconf:capability:yang-library:1.1?")
        })
        .filter(|l| {
            let l = l.trim_start().to_ascii_lowercase();
            l.starts_with("error") || l.starts_with("warning") || l.contains("failed")
        })
        .collect();
    assert!(
        complaints.is_empty(),
        "yangcli complained: {complaints:#?}\n{output}"
    );
    stage("yangcli client", t);

    // What was committed survives a restart (state on the named volume).
    let t = Instant::now();
    let started = inspect(&server, "{{.State.StartedAt}}");
    must(
        "docker-compose restart",
        lab.compose(&["restart", "pyvmd"]),
        Duration::from_secs(120),
    );
    assert_ne!(
        inspect(&server, "{{.State.StartedAt}}"),
        started,
        "pyvmd was not restarted"
    );
    wait_healthy(&server, "pyvmd after the restart");
    let output = must(
        "the check after the restart",
        lab.compose(&["run", "--rm", "--no-deps", "ncclient", "check"]),
        Duration::from_secs(120),
    );
    assert!(
        output.contains("check: vlan 10 with ports ge1, ge2 is in running"),
        "the committed change did not survive the restart:\n{output}"
    );
    stage("restart", t);

    // `docker stop`: SIGTERM through tini; the server stops every VM (teardown() runs) and exits 0.
    let t = Instant::now();
    let started = inspect(&server, "{{.State.StartedAt}}");
    let top = must(
        "docker top",
        docker(&["top", &server, "-o", "pid,args"]),
        Duration::from_secs(30),
    );
    let vms: Vec<String> = top
        .lines()
        .filter_map(|l| l.split_once("pyvmd vm "))
        .map(|(_, name)| name.trim().to_string())
        .collect();
    assert!(
        vms.len() >= 5,
        "the example packages' VMs are not running:\n{top}"
    );
    let stop = Instant::now();
    must(
        "docker stop",
        docker(&["stop", "--time", "30", &server]),
        Duration::from_secs(60),
    );
    let stopped_in = stop.elapsed();
    assert_eq!(
        inspect(&server, "{{.State.ExitCode}} {{.State.OOMKilled}}"),
        "0 false",
        "pyvmd did not exit cleanly"
    );
    assert!(
        stopped_in < Duration::from_secs(25),
        "docker stop took {stopped_in:?}"
    );
    let logs = must(
        "docker logs",
        docker(&["logs", "--since", &started, &server]),
        Duration::from_secs(30),
    );
    let (_, after) = logs
        .split_once("shutting down signal=\"SIGTERM\"")
        .unwrap_or_else(|| panic!("no shutdown on SIGTERM in the log:\n{}", tail(&logs, 60)));
    for vm in &vms {
        assert!(
            after.contains(&format!(
                "VM process exited vm=\"{vm}\" status=\"exit status: 0\""
            )),
            "VM {vm} was not stopped by the server:\n{after}"
        );
    }
    assert!(
        !after.contains("killing it"),
        "a VM had to be killed:\n{after}"
    );
    // The components' teardown() ran: hello-worker's last words are in its log on the volume.
    let mut cat = docker(&[
        "run",
        "--rm",
        "--volumes-from",
        &server,
        "--entrypoint",
        "cat",
        IMAGE,
        "/logs/ncs-python-vm-hello-worker.log",
    ]);
    cat.env("NO_COLOR", "1");
    let vm_log = must("reading the VM log", cat, Duration::from_secs(60));
    let last = vm_log
        .lines()
        .rfind(|l| l.contains("Main RUNNING") || l.contains("Main FINISHED"))
        .unwrap_or_default();
    assert!(
        last.contains("Main FINISHED"),
        "hello-worker's teardown() did not run at the stop:\n{}",
        tail(&vm_log, 20)
    );
    stage(&format!("docker stop (took {stopped_in:.1?})"), t);

    drop(lab);
    stage("total", total);
}
