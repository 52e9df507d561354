//! `pyvmd bench`: measures a real server over loopback SSH with a light client.
//!
//! It starts `pyvmd serve` (this same binary) on a free port with a temporary state directory,
//! drives it with [`NetconfClient`], and prints each figure beside the target it is held to.
//! Timings are measured here, never asserted in tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::client::NetconfClient;

mod notifications;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// A directory of extra YANG modules for the server.
    pub yang_dir: Option<PathBuf>,
    /// Number of list entries in the large-datastore figures.
    pub entries: usize,
    /// Round trips in the small get-config figure.
    pub round_trips: usize,
    /// Edits in the edit-config latency figure.
    pub edits: usize,
    /// Sessions in the session-rate figure.
    pub sessions: usize,
    /// Create/delete cycles of a service instance in the services' memory figure.
    pub service_cycles: usize,
    /// Run only this group of figures (`core`, `vms`, `actions`, `services`,
    /// `notifications`); all if `None`.
    pub only: Option<String>,
}

/// One measured figure.
struct Figure {
    name: String,
    value: f64,
    unit: &'static str,
    /// (comparison, bound): the figure passes when `value <comparison> bound`.
    target: Option<(&'static str, f64)>,
}

impl Figure {
    fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Figure {
            name: name.into(),
            value,
            unit,
            target: None,
        }
    }

    fn at_least(mut self, bound: f64) -> Self {
        self.target = Some((">=", bound));
        self
    }

    fn at_most(mut self, bound: f64) -> Self {
        self.target = Some(("<=", bound));
        self
    }

    fn verdict(&self) -> &'static str {
        match self.target {
            None => "",
            Some((">=", b)) if self.value >= b => "ok",
            Some(("<=", b)) if self.value <= b => "ok",
            Some(_) => "MISSED",
        }
    }
}

/// The server under test; killed when dropped.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts a server; without `packages` it gets an empty packages directory.
    fn start(
        yang_dir: Option<&std::path::Path>,
        packages: Option<&std::path::Path>,
    ) -> anyhow::Result<ServerProcess> {
        let dir = tempfile::tempdir()?;
        let packages = packages.map_or_else(|| dir.path().join("packages"), |p| p.to_path_buf());
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let mut command = Command::new(std::env::current_exe()?);
        command.arg("serve");
        if let Some(dir) = yang_dir {
            command.arg("--yang-dir").arg(dir);
        }
        let child = command
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--log-dir")
            .arg(dir.path().join("logs"))
            .arg("--packages")
            .arg(packages)
            .arg("--log-level")
            .arg("warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting pyvmd serve")?;
        Ok(ServerProcess {
            child,
            addr,
            _dir: dir,
        })
    }

    fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.child.id())
    }

    /// The pids of the server's Python VM processes.
    fn vm_pids(&self) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                // The parent pid is the 4th field, after the parenthesised command name.
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<u32>().ok());
                ppid == Some(self.child.id())
            })
            .collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc status")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

const NS_NCS: &str = "http://tail-f.com/ns/ncs";

/// Runs every benchmark and prints the results.
pub async fn run(options: BenchOptions) -> anyhow::Result<()> {
    let wanted = |group: &str| options.only.as_deref().is_none_or(|only| only == group);
    if let Some(only) = &options.only
        && !["core", "vms", "actions", "services", "notifications"].contains(&only.as_str())
    {
        bail!("unknown group {only:?}: use core, vms, actions, services or notifications");
    }
    let mut figures = Vec::new();
    if wanted("core") {
        figures.extend(core(&options).await?);
    }
    if wanted("vms") {
        for count in [1, 10, 50] {
            figures.extend(vm_startup(options.yang_dir.as_deref(), count).await?);
        }
        figures.extend(vm_transactions(options.yang_dir.as_deref(), options.entries).await?);
    }
    if wanted("actions") {
        figures.extend(package_actions(options.yang_dir.as_deref(), options.round_trips).await?);
    }
    if wanted("services") {
        figures.extend(
            services(
                options.yang_dir.as_deref(),
                options.edits,
                options.service_cycles,
            )
            .await?,
        );
    }
    if wanted("notifications") {
        figures.extend(
            notifications::notifications(options.yang_dir.as_deref(), options.edits).await?,
        );
    }
    println!(
        "{:<58} {:>12}  {:<5} {:>10}  verdict",
        "figure", "value", "unit", "target"
    );
    for f in &figures {
        let target = f
            .target
            .map(|(c, b)| format!("{c} {b}"))
            .unwrap_or_default();
        println!(
            "{:<58} {:>12.2}  {:<5} {:>10}  {}",
            f.name,
            f.value,
            f.unit,
            target,
            f.verdict()
        );
    }
    Ok(())
}

/// What access control (RFC 8341) costs a user that it checks, against the bootstrap user
/// (which it does not): the small get-config round trips, and the get-config of the whole
/// datastore (every node is checked, and one list entry of `options.entries` hidden). The
/// rules: one group, three rule-lists of which the user's has a path rule that hides an entry.
async fn access_control(
    addr: std::net::SocketAddr,
    admin: &mut NetconfClient,
    small_get: &str,
    options: &BenchOptions,
) -> anyhow::Result<Vec<Figure>> {
    let setup = edit_config(&format!(
        "<system xmlns=\"urn:ietf:params:xml:ns:yang:ietf-system\"><authentication><user>\
         <name>bench</name><password>$0$bench</password></user></authentication></system>\
         <nacm xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-acm\" xmlns:ncs=\"{NS_NCS}\">\
         <groups><group><name>readers</name><user-name>bench</user-name></group></groups>\
         <rule-list><name>others</name><group>others</group><rule><name>all</name>\
         <module-name>*</module-name><access-operations>*</access-operations>\
         <action>permit</action></rule></rule-list>\
         <rule-list><name>readers</name><group>readers</group><rule><name>hide-one</name>\
         <module-name>tailf-ncs</module-name>\
         <path>/ncs:python-vm/ncs:logging/ncs:vm-levels[ncs:node-id='vm-00000']</path>\
         <access-operations>read</access-operations><action>deny</action></rule></rule-list>\
         <rule-list><name>audit</name><group>audit</group><rule><name>none</name>\
         <module-name>*</module-name><access-operations>*</access-operations>\
         <action>deny</action></rule></rule-list></nacm>"
    ));
    expect_ok_or_data(&admin.rpc(&setup).await?)?;
    let mut user = NetconfClient::connect(addr, "bench", "bench").await?;
    let start = Instant::now();
    for _ in 0..options.round_trips {
        expect_ok_or_data(&user.rpc(small_get).await?)?;
    }
    let rate = options.round_trips as f64 / start.elapsed().as_secs_f64();
    let mut figures = vec![Figure::new(
        "small get-config round trips/s, a user under access control",
        rate,
        "1/s",
    )];
    let get_all = "<get-config><source><running/></source></get-config>";
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let reply = user.rpc(get_all).await?;
        best = best.min(start.elapsed().as_secs_f64() * 1000.0);
        let count = reply.matches("<vm-levels>").count();
        if count + 1 != options.entries {
            bail!(
                "access control left {count} of {} entries, expected all but one",
                options.entries
            );
        }
    }
    figures.push(Figure::new(
        format!(
            "get-config of {} list entries, a user under access control (best of 5)",
            options.entries
        ),
        best,
        "ms",
    ));
    user.close().await?;
    Ok(figures)
}

/// The core server: sessions, reads, edits, commits, large datastores.
async fn core(options: &BenchOptions) -> anyhow::Result<Vec<Figure>> {
    let server = ServerProcess::start(options.yang_dir.as_deref(), None)?;
    let mut client = connect_when_ready(server.addr).await?;
    let mut figures = Vec::new();

    // Give the server a moment to settle, then read its idle footprint.
    tokio::time::sleep(Duration::from_millis(500)).await;
    figures.push(
        Figure::new("idle server RSS", server.rss_kib()? as f64 / 1024.0, "MiB").at_most(30.0),
    );

    let start = Instant::now();
    for _ in 0..options.sessions {
        NetconfClient::connect(server.addr, "admin", "admin")
            .await?
            .close()
            .await?;
    }
    let rate = options.sessions as f64 / start.elapsed().as_secs_f64();
    figures.push(Figure::new(
        "sessions/s (connect, hello, close)",
        rate,
        "1/s",
    ));

    let get = format!(
        "<get-config><source><running/></source><filter type=\"subtree\">\
         <python-vm xmlns=\"{NS_NCS}\"><logging><level/></logging></python-vm></filter></get-config>"
    );
    let start = Instant::now();
    for _ in 0..options.round_trips {
        expect_ok_or_data(&client.rpc(&get).await?)?;
    }
    let rate = options.round_trips as f64 / start.elapsed().as_secs_f64();
    figures.push(
        Figure::new("small get-config round trips/s (one session)", rate, "1/s").at_least(1000.0),
    );

    let levels = ["level-debug", "level-info", "level-warning", "level-error"];
    let mut latencies = Vec::with_capacity(options.edits);
    for i in 0..options.edits {
        let edit = edit_config(&format!(
            "<python-vm xmlns=\"{NS_NCS}\"><logging><level>{}</level></logging></python-vm>",
            levels[i % levels.len()]
        ));
        let start = Instant::now();
        expect_ok_or_data(&client.rpc(&edit).await?)?;
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    figures.push(Figure::new("edit-config latency p50", pct(0.50), "ms"));
    figures.push(Figure::new("edit-config latency p99", pct(0.99), "ms"));
    figures.extend(candidate_commits(&mut client, options.edits).await?);
    figures.extend(concurrent_sessions(server.addr, 50, 20).await?);

    let mut entries = String::with_capacity(options.entries * 96);
    for i in 0..options.entries {
        entries.push_str(&format!(
            "<vm-levels><node-id>vm-{i:05}</node-id><level>{}</level></vm-levels>",
            levels[i % levels.len()]
        ));
    }
    let edit = edit_config(&format!(
        "<python-vm xmlns=\"{NS_NCS}\"><logging>{entries}</logging></python-vm>"
    ));
    let start = Instant::now();
    expect_ok_or_data(&client.rpc(&edit).await?)?;
    figures.push(Figure::new(
        format!("edit-config of {} list entries", options.entries),
        start.elapsed().as_secs_f64() * 1000.0,
        "ms",
    ));

    let get_all = "<get-config><source><running/></source></get-config>";
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let reply = client.rpc(get_all).await?;
        best = best.min(start.elapsed().as_secs_f64() * 1000.0);
        let count = reply.matches("<vm-levels>").count();
        if count != options.entries {
            bail!(
                "get-config returned {count} entries, expected {}",
                options.entries
            );
        }
    }
    figures.push(
        Figure::new(
            format!("get-config of {} list entries (best of 5)", options.entries),
            best,
            "ms",
        )
        .at_most(100.0),
    );

    figures.extend(access_control(server.addr, &mut client, &get, options).await?);

    let small_edit = edit_config(&format!(
        "<python-vm xmlns=\"{NS_NCS}\"><logging><level>level-error</level></logging></python-vm>"
    ));
    let start = Instant::now();
    expect_ok_or_data(&client.rpc(&small_edit).await?)?;
    figures.push(Figure::new(
        format!(
            "one-leaf edit-config with {} entries in running",
            options.entries
        ),
        start.elapsed().as_secs_f64() * 1000.0,
        "ms",
    ));
    figures.push(Figure::new(
        "server RSS after the load",
        server.rss_kib()? as f64 / 1024.0,
        "MiB",
    ));
    client.close().await?;
    Ok(figures)
}

fn edit_config(config: &str) -> String {
    format!("<edit-config><target><running/></target><config>{config}</config></edit-config>")
}

fn expect_ok_or_data(reply: &str) -> anyhow::Result<()> {
    if reply.contains("<rpc-error>") {
        bail!("the server answered with an error: {reply}");
    }
    Ok(())
}

async fn connect_when_ready(addr: SocketAddr) -> anyhow::Result<NetconfClient> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match NetconfClient::connect(addr, "admin", "admin").await {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => return Err(e.context("server did not start")),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Starts a server with `count` packages, one VM each, and measures how long it takes from
/// starting the server until every component reports `started`, and what an idle VM costs.
async fn vm_startup(
    yang_dir: Option<&std::path::Path>,
    count: usize,
) -> anyhow::Result<Vec<Figure>> {
    let packages = tempfile::tempdir()?;
    for i in 0..count {
        let name = format!("bench-pkg-{i:03}");
        let module = name.replace('-', "_");
        let dir = packages.path().join(&name);
        std::fs::create_dir_all(dir.join("python").join(&module))?;
        std::fs::write(
            dir.join("package-meta-data.xml"),
            format!(
                "<ncs-package xmlns=\"http://tail-f.com/ns/ncs-packages\"><name>{name}</name>\
                 <package-version>1.0</package-version><python-package/><component><name>main</name>\
                 <application><python-class-name>{module}.main.Main</python-class-name></application>\
                 </component></ncs-package>"
            ),
        )?;
        std::fs::write(dir.join("python").join(&module).join("__init__.py"), "")?;
        std::fs::write(
            dir.join("python").join(&module).join("main.py"),
            "from ncs.application import Application\n\n\nclass Main(Application):\n    \
             def setup(self):\n        self.log.info('Main RUNNING')\n",
        )?;
    }
    let started_at = Instant::now();
    let server = ServerProcess::start(yang_dir, Some(packages.path()))?;
    let mut client = connect_when_ready(server.addr).await?;
    let get = format!(
        "<get><filter><python-vm xmlns=\"{NS_NCS}\"><status><start/></status></python-vm></filter></get>"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let reply = client.rpc(&get).await?;
        if reply.matches("<status>started</status>").count() == count {
            break;
        }
        if reply.contains("<status>failed</status>") {
            bail!("a benchmark package failed to start: {reply}");
        }
        if Instant::now() > deadline {
            bail!("{count} packages did not start within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started_at.elapsed().as_secs_f64() * 1000.0;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pids = server.vm_pids();
    let total: u64 = pids.iter().filter_map(|p| rss_kib(*p).ok()).sum();
    client.close().await?;
    let mut startup = Figure::new(
        format!("serve start to {count} packages started"),
        elapsed,
        "ms",
    );
    if count == 50 {
        startup = startup.at_most(3000.0);
    }
    Ok(vec![
        startup,
        Figure::new(
            format!("RSS per idle VM ({} VMs)", pids.len()),
            total as f64 / 1024.0 / pids.len().max(1) as f64,
            "MiB",
        ),
    ])
}

/// The package code of [`vm_transactions`]: it times the transaction API from inside a VM and
/// writes the figures to `results.json` beside the package.
const TRANSACTIONS_PACKAGE: &str = r#"
import json
import os
import threading
import time

import ncs
from ncs.application import Application

RESULTS = os.path.join(os.path.dirname(__file__), "..", "..", "results.json")
LEVEL = "/ncs:python-vm/logging/level"


def percentile(samples, p):
    samples = sorted(samples)
    return samples[int((len(samples) - 1) * p)]


class Main(Application):
    def setup(self):
        # In a thread of its own: setup() must return within the VM start timeout.
        threading.Thread(target=self.measure, name="bench", daemon=True).start()

    def measure(self):
        entries = ENTRIES
        out = {}
        with ncs.maapi.single_read_trans("admin", "system") as t:
            start = time.perf_counter()
            for _ in range(2000):
                t.get_elem(LEVEL)
            out["get_elem_per_s"] = 2000 / (time.perf_counter() - start)
        latencies = []
        for i in range(200):
            start = time.perf_counter()
            with ncs.maapi.single_write_trans("admin", "system") as t:
                t.set_elem("level-error" if i % 2 else "level-info", LEVEL)
                t.apply()
            latencies.append(time.perf_counter() - start)
        out["write_p50_ms"] = percentile(latencies, 0.5) * 1000
        out["write_p99_ms"] = percentile(latencies, 0.99) * 1000
        start = time.perf_counter()
        with ncs.maapi.single_write_trans("admin", "system") as t:
            devices = ncs.maagic.get_root(t).ncs__devices.device
            for i in range(entries):
                devices.create("d%05d" % i).address = "10.0.%d.%d" % (i // 250, i % 250)
            t.apply()
        out["maagic_create_s"] = time.perf_counter() - start
        start = time.perf_counter()
        with ncs.maapi.single_read_trans("admin", "system") as t:
            addresses = [d.address for d in ncs.maagic.get_root(t).ncs__devices.device]
        out["maagic_read_s"] = time.perf_counter() - start
        out["read"] = len(addresses)
        with open(RESULTS, "w") as f:
            json.dump(out, f)
"#;

/// Times the transaction API (`ncs.maapi`, `ncs.maagic`) from a package running in a VM: the
/// round trip of a request over the VM socket, a one-leaf write transaction applied to running,
/// and creating then reading `entries` list entries through maagic.
async fn vm_transactions(
    yang_dir: Option<&std::path::Path>,
    entries: usize,
) -> anyhow::Result<Vec<Figure>> {
    let packages = tempfile::tempdir()?;
    let dir = packages.path().join("bench-maapi");
    std::fs::create_dir_all(dir.join("python").join("bench_maapi"))?;
    std::fs::write(
        dir.join("package-meta-data.xml"),
        "<ncs-package xmlns=\"http://tail-f.com/ns/ncs-packages\"><name>bench-maapi</name>\
         <package-version>1.0</package-version><python-package/><component><name>main</name>\
         <application><python-class-name>bench_maapi.Main</python-class-name></application>\
         </component></ncs-package>",
    )?;
    std::fs::write(
        dir.join("python").join("bench_maapi").join("__init__.py"),
        TRANSACTIONS_PACKAGE.replace("ENTRIES", &entries.to_string()),
    )?;
    let results = dir.join("results.json");
    let server = ServerProcess::start(yang_dir, Some(packages.path()))?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while !results.exists() {
        if Instant::now() > deadline {
            bail!("the transaction benchmark did not finish within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&results)?)?;
    let number = |key: &str| {
        r[key]
            .as_f64()
            .with_context(|| format!("{key} missing from the transaction figures: {r}"))
    };
    Ok(vec![
        Figure::new(
            "maapi get_elem round trips/s from a VM",
            number("get_elem_per_s")?,
            "/s",
        ),
        Figure::new(
            "maapi one-leaf write transaction + apply p50",
            number("write_p50_ms")?,
            "ms",
        ),
        Figure::new(
            "maapi one-leaf write transaction + apply p99",
            number("write_p99_ms")?,
            "ms",
        ),
        Figure::new(
            format!("maagic: create {entries} list entries and apply"),
            number("maagic_create_s")? * 1000.0,
            "ms",
        ),
        Figure::new(
            format!("maagic: read the address of {entries} entries"),
            number("maagic_read_s")? * 1000.0,
            "ms",
        ),
    ])
}

/// Round trips of package actions: the `echo` rpc of the example package `demo-actions`
/// (input and output of one leaf, `cb_action` in the VM), one at a time on one session.
async fn package_actions(
    yang_dir: Option<&std::path::Path>,
    round_trips: usize,
) -> anyhow::Result<Vec<Figure>> {
    let packages = tempfile::tempdir()?;
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packages/demo-actions");
    copy_dir(&example, &packages.path().join("demo-actions"))?;
    let server = ServerProcess::start(yang_dir, Some(packages.path()))?;
    let mut client = connect_when_ready(server.addr).await?;
    let echo = "<echo xmlns=\"http://example.com/pyvmd/demo-actions\"><message>hi</message></echo>";
    // The VM registers its actionpoints once it has started.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client.rpc(echo).await?.contains("<message") {
        if Instant::now() > deadline {
            bail!("the demo-actions package did not start within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut latencies = Vec::with_capacity(round_trips);
    let start = Instant::now();
    for _ in 0..round_trips {
        let one = Instant::now();
        let reply = client.rpc(echo).await?;
        if !reply.contains("<message") {
            bail!("the echo action failed: {reply}");
        }
        latencies.push(one.elapsed());
    }
    let rate = round_trips as f64 / start.elapsed().as_secs_f64();
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    client.close().await?;
    Ok(vec![
        Figure::new("package action (rpc echo) round trips/s", rate, "1/s").at_least(2000.0),
        Figure::new("package action latency p50", pct(0.50), "ms"),
        Figure::new("package action latency p99", pct(0.99), "ms"),
    ])
}

/// The package of the services benchmark: a trivial service (`cb_create` writes one leaf) and
/// a bulk one (`cb_create` writes `count` list entries of two leaves each).
const BENCH_SERVICE_YANG: &str = r#"
module bench-service {
  yang-version 1.1;
  namespace "urn:pyvmd-bench:service";
  prefix bs;
  import tailf-ncs { prefix ncs; }
  container out {
    list entry { key name; leaf name { type string; } leaf value { type string; } }
    list item { key id; leaf id { type uint32; } leaf owner { type string; } }
  }
  augment /ncs:services {
    list trivial {
      key name; uses ncs:service-data; ncs:servicepoint bench-trivial;
      leaf name { type string; }
    }
    list bulk {
      key name; uses ncs:service-data; ncs:servicepoint bench-bulk;
      leaf name { type string; }
      leaf count { type uint32; }
    }
  }
}
"#;

const BENCH_SERVICE_PY: &str = r#"
from ncs.application import Application, Service


class Trivial(Service):
    @Service.create
    def cb_create(self, tctx, root, service, proplist):
        root.bs__out.entry.create(service.name).value = "x"


class Bulk(Service):
    @Service.create
    def cb_create(self, tctx, root, service, proplist):
        items = root.bs__out.item
        owner = service.name
        for i in range(service.count):
            items.create(i).owner = owner


class Main(Application):
    def setup(self):
        self.register_service("bench-trivial", Trivial)
        self.register_service("bench-bulk", Bulk)
"#;

/// Services: the commit round trip of a trivial service instance, a `cb_create` that writes
/// 1,000 list entries, and the memory of the server and the VM over many create/delete cycles.
async fn services(
    yang_dir: Option<&std::path::Path>,
    creates: usize,
    cycles: usize,
) -> anyhow::Result<Vec<Figure>> {
    let packages = tempfile::tempdir()?;
    let package = packages.path().join("bench-service");
    std::fs::create_dir_all(package.join("src/yang"))?;
    std::fs::create_dir_all(package.join("python"))?;
    std::fs::write(
        package.join("package-meta-data.xml"),
        "<ncs-package xmlns=\"http://tail-f.com/ns/ncs-packages\"><name>bench-service</name>\
         <package-version>1.0</package-version><component><name>main</name><application>\
         <python-class-name>bench_service.Main</python-class-name></application></component>\
         </ncs-package>",
    )?;
    std::fs::write(
        package.join("src/yang/bench-service.yang"),
        BENCH_SERVICE_YANG,
    )?;
    std::fs::write(package.join("python/bench_service.py"), BENCH_SERVICE_PY)?;
    let server = ServerProcess::start(yang_dir, Some(packages.path()))?;
    let mut client = connect_when_ready(server.addr).await?;
    let services =
        |inner: String| edit_config(&format!("<services xmlns=\"{NS_NCS}\">{inner}</services>"));
    let trivial = |name: &str, delete: bool| {
        let op = if delete {
            " xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\" nc:operation=\"delete\""
        } else {
            ""
        };
        services(format!(
            "<trivial xmlns=\"urn:pyvmd-bench:service\"{op}><name>{name}</name></trivial>"
        ))
    };
    // The VM registers its servicepoints once it has started.
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .rpc(&trivial("warm-up", false))
        .await?
        .contains("<rpc-error>")
    {
        if Instant::now() > deadline {
            bail!("the bench-service package did not start within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each instance is deleted again, so every create meets the same small datastore.
    let mut latencies = Vec::with_capacity(creates);
    let (create, delete) = (trivial("t", false), trivial("t", true));
    for _ in 0..creates {
        let start = Instant::now();
        expect_ok_or_data(&client.rpc(&create).await?)?;
        latencies.push(start.elapsed());
        expect_ok_or_data(&client.rpc(&delete).await?)?;
    }
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    let mut figures = vec![
        Figure::new("service create (trivial cb_create) p50", pct(0.50), "ms").at_most(3.0),
        Figure::new("service create (trivial cb_create) p99", pct(0.99), "ms"),
    ];

    let bulk = services(
        "<bulk xmlns=\"urn:pyvmd-bench:service\"><name>b</name><count>1000</count></bulk>".into(),
    );
    let start = Instant::now();
    expect_ok_or_data(&client.rpc(&bulk).await?)?;
    figures.push(
        Figure::new(
            "service create, cb_create writing 1,000 entries",
            start.elapsed().as_secs_f64() * 1000.0,
            "ms",
        )
        .at_most(100.0),
    );

    let vm_rss = || -> anyhow::Result<f64> {
        let kib: u64 = server
            .vm_pids()
            .into_iter()
            .map(rss_kib)
            .collect::<anyhow::Result<Vec<u64>>>()?
            .into_iter()
            .sum();
        Ok(kib as f64 / 1024.0)
    };
    // Warm up first: allocators and caches settle in the first cycles.
    let warm = (cycles / 10).max(1);
    let mut server_before = 0.0;
    let mut vm_before = 0.0;
    let start = Instant::now();
    for i in 0..cycles {
        if i == warm {
            server_before = server.rss_kib()? as f64 / 1024.0;
            vm_before = vm_rss()?;
        }
        expect_ok_or_data(&client.rpc(&trivial("cycle", false)).await?)?;
        expect_ok_or_data(&client.rpc(&trivial("cycle", true)).await?)?;
    }
    let rate = cycles as f64 / start.elapsed().as_secs_f64();
    let server_after = server.rss_kib()? as f64 / 1024.0;
    let vm_after = vm_rss()?;
    client.close().await?;
    figures.push(Figure::new(
        format!("service create+delete cycles/s ({cycles})"),
        rate,
        "1/s",
    ));
    figures.push(Figure::new(
        format!("server RSS growth, cycles {warm}..{cycles}"),
        server_after - server_before,
        "MiB",
    ));
    figures.push(Figure::new(
        format!("VM RSS growth, cycles {warm}..{cycles}"),
        vm_after - vm_before,
        "MiB",
    ));
    Ok(figures)
}

/// Copies a directory tree (a package).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Commit latency on the candidate: one-leaf edit of the candidate, then `commit`, timed.
async fn candidate_commits(
    client: &mut NetconfClient,
    commits: usize,
) -> anyhow::Result<Vec<Figure>> {
    let levels = ["level-debug", "level-info", "level-warning", "level-error"];
    let mut latencies = Vec::with_capacity(commits);
    for i in 0..commits.max(1) {
        let edit = format!(
            "<edit-config><target><candidate/></target><config><python-vm xmlns=\"{NS_NCS}\">\
             <logging><level>{}</level></logging></python-vm></config></edit-config>",
            levels[i % levels.len()]
        );
        expect_ok_or_data(&client.rpc(&edit).await?)?;
        let start = Instant::now();
        expect_ok_or_data(&client.rpc("<commit/>").await?)?;
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    Ok(vec![
        Figure::new("candidate commit latency p50", pct(0.50), "ms"),
        Figure::new("candidate commit latency p99", pct(0.99), "ms"),
    ])
}

/// `sessions` sessions at once, each making `rounds` edits of running (its own list entry);
/// every fifth round a session also tries to save running to startup under the startup lock,
/// so the sessions contend for that lock. The only error allowed is `lock-denied`; at the end
/// running must hold every session's last edit.
async fn concurrent_sessions(
    addr: SocketAddr,
    sessions: usize,
    rounds: usize,
) -> anyhow::Result<Vec<Figure>> {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(sessions);
    for s in 0..sessions {
        tasks.push(tokio::spawn(async move {
            let mut client = connect_when_ready(addr).await?;
            let mut latencies = Vec::with_capacity(rounds);
            let mut denied = 0usize;
            let levels = ["level-debug", "level-info", "level-warning", "level-error"];
            for r in 0..rounds {
                let edit = edit_config(&format!(
                    "<python-vm xmlns=\"{NS_NCS}\"><logging><vm-levels><node-id>session-{s:03}\
                     </node-id><level>{}</level></vm-levels></logging></python-vm>",
                    levels[r % levels.len()]
                ));
                let t = Instant::now();
                expect_ok_or_data(&client.rpc(&edit).await?)?;
                latencies.push(t.elapsed());
                if r % 5 == 4 {
                    let reply = client
                        .rpc("<lock><target><startup/></target></lock>")
                        .await?;
                    if reply.contains("<error-tag>lock-denied</error-tag>") {
                        denied += 1;
                        continue;
                    }
                    expect_ok_or_data(&reply)?;
                    expect_ok_or_data(
                        &client
                            .rpc("<copy-config><target><startup/></target><source><running/></source></copy-config>")
                            .await?,
                    )?;
                    expect_ok_or_data(
                        &client
                            .rpc("<unlock><target><startup/></target></unlock>")
                            .await?,
                    )?;
                }
            }
            client.close().await?;
            anyhow::Ok((latencies, denied))
        }));
    }
    let mut latencies = Vec::new();
    let mut denied = 0;
    for task in tasks {
        let (l, d) = task.await??;
        latencies.extend(l);
        denied += d;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut client = connect_when_ready(addr).await?;
    let reply = client
        .rpc("<get-config><source><running/></source></get-config>")
        .await?;
    let last = ["level-debug", "level-info", "level-warning", "level-error"][(rounds - 1) % 4];
    for s in 0..sessions {
        let entry = format!("<node-id>session-{s:03}</node-id><level>{last}</level>");
        if !reply.contains(&entry) {
            bail!("after the concurrent edits running lacks {entry}");
        }
    }
    // Leave running as it was, for the figures that follow.
    let removals: String = (0..sessions)
        .map(|s| {
            format!(
                "<vm-levels nc:operation=\"remove\"><node-id>session-{s:03}</node-id></vm-levels>"
            )
        })
        .collect();
    expect_ok_or_data(
        &client
            .rpc(&edit_config(&format!(
                "<python-vm xmlns=\"{NS_NCS}\" \
                 xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><logging>{removals}</logging></python-vm>"
            )))
            .await?,
    )?;
    client.close().await?;
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    Ok(vec![
        Figure::new(
            format!("{sessions} concurrent sessions: edits/s (incl. connect)"),
            latencies.len() as f64 / elapsed,
            "1/s",
        ),
        Figure::new(
            format!("{sessions} concurrent sessions: edit latency p99"),
            pct(0.99),
            "ms",
        ),
        Figure::new(
            format!("{sessions} concurrent sessions: lock-denied (expected)"),
            denied as f64,
            "",
        ),
    ])
}
