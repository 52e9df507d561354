//! The notification figures: delivery rate to one and to twenty subscribers, the replay of
//! 100,000 stored events, the server's memory beside a subscriber that never reads, and the
//! latency from a commit to its `netconf-config-change` at the client.
//!
//! Events come from a package (a `burst` rpc whose Python code sends notifications in batches
//! of 1,000 with `ncs.notif.Stream.send_batch`), so the figures include the server's validation
//! of every notification by libyang, its replay log and the SSH transport.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::{Figure, NS_NCS, ServerProcess, connect_when_ready, edit_config, expect_ok_or_data};
use crate::client::NetconfClient;

const BENCH_NOTIFY_YANG: &str = r#"
module bench-notify {
  yang-version 1.1;
  namespace "urn:pyvmd-bench:notify";
  prefix bn;
  import tailf-common { prefix tailf; }
  notification ping {
    leaf seq { type uint64; }
    leaf data { type string; }
  }
  rpc burst {
    tailf:actionpoint bench-burst;
    input {
      leaf count { type uint32; }
    }
  }
}
"#;

const BENCH_NOTIFY_PY: &str = r#"
import ncs.notif
from ncs.application import Application
from ncs.dp import Action

STREAM = ncs.notif.Stream("bench")


class Burst(Action):
    @Action.action
    def cb_action(self, uinfo, name, kp, input, output):
        batch = []
        for seq in range(input.count):
            batch.append('<ping xmlns="urn:pyvmd-bench:notify"><seq>%d</seq>'
                         '<data>0123456789abcdef</data></ping>' % seq)
            if len(batch) == 1000:
                STREAM.send_batch(batch)
                batch = []
        STREAM.send_batch(batch)


class Main(Application):
    def setup(self):
        self.register_action("bench-burst", Burst)
"#;

const NS_NOTIFICATION: &str = "urn:ietf:params:xml:ns:netconf:notification:1.0";

fn subscribe(stream: &str, start: Option<&str>) -> String {
    let start = start
        .map(|t| format!("<startTime>{t}</startTime>"))
        .unwrap_or_default();
    format!(
        "<create-subscription xmlns=\"{NS_NOTIFICATION}\"><stream>{stream}</stream>{start}\
         </create-subscription>"
    )
}

async fn subscriber(server: &ServerProcess, stream: &str) -> anyhow::Result<NetconfClient> {
    let mut client = connect_when_ready(server.addr).await?;
    expect_ok_or_data(&client.rpc(&subscribe(stream, None)).await?)?;
    Ok(client)
}

/// Receives `count` notifications; the time from the first to the last.
async fn receive(client: &mut NetconfClient, count: usize) -> anyhow::Result<Duration> {
    let mut first = None;
    for _ in 0..count {
        client.notification().await?;
        first.get_or_insert_with(Instant::now);
    }
    Ok(first.map(|f| f.elapsed()).unwrap_or_default())
}

/// Runs the notification figures.
pub async fn notifications(
    yang_dir: Option<&std::path::Path>,
    edits: usize,
) -> anyhow::Result<Vec<Figure>> {
    let packages = tempfile::tempdir()?;
    let package = packages.path().join("bench-notify");
    std::fs::create_dir_all(package.join("src/yang"))?;
    std::fs::create_dir_all(package.join("python"))?;
    std::fs::write(
        package.join("package-meta-data.xml"),
        "<ncs-package xmlns=\"http://tail-f.com/ns/ncs-packages\"><name>bench-notify</name>\
         <package-version>1.0</package-version>\
         <notification-stream xmlns=\"urn:pyvmd:package:1.0\"><name>bench</name>\
         <replay-support>true</replay-support></notification-stream>\
         <component><name>main</name><application>\
         <python-class-name>bench_notify.Main</python-class-name></application></component>\
         </ncs-package>",
    )?;
    std::fs::write(
        package.join("src/yang/bench-notify.yang"),
        BENCH_NOTIFY_YANG,
    )?;
    std::fs::write(package.join("python/bench_notify.py"), BENCH_NOTIFY_PY)?;
    let server = ServerProcess::start(yang_dir, Some(packages.path()))?;
    let mut producer = connect_when_ready(server.addr).await?;
    let burst = |count: usize| {
        format!("<burst xmlns=\"urn:pyvmd-bench:notify\"><count>{count}</count></burst>")
    };
    // The VM registers its actionpoint once it has started.
    let deadline = Instant::now() + Duration::from_secs(60);
    while producer.rpc(&burst(1)).await?.contains("<rpc-error>") {
        if Instant::now() > deadline {
            bail!("the bench-notify package did not start within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut figures = Vec::new();

    // One subscriber.
    let count = 50_000;
    let mut one = subscriber(&server, "bench").await?;
    let produce = async {
        let mut producer = producer;
        expect_ok_or_data(&producer.rpc(&burst(count)).await?)?;
        Ok::<_, anyhow::Error>(producer)
    };
    let (producer_back, took) = tokio::try_join!(produce, receive(&mut one, count))?;
    producer = producer_back;
    figures.push(
        Figure::new(
            "notifications/s delivered to 1 subscriber",
            count as f64 / took.as_secs_f64(),
            "1/s",
        )
        .at_least(20_000.0),
    );
    one.close().await?;

    // Twenty subscribers.
    let count = 10_000;
    let mut many = Vec::new();
    for _ in 0..20 {
        many.push(subscriber(&server, "bench").await?);
    }
    let start = Instant::now();
    let receivers: Vec<_> = many
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move { receive(&mut client, count).await.map(|_| client) })
        })
        .collect();
    expect_ok_or_data(&producer.rpc(&burst(count)).await?)?;
    let mut many = Vec::new();
    for receiver in receivers {
        many.push(receiver.await??);
    }
    let took = start.elapsed();
    figures.push(Figure::new(
        "notifications/s delivered to each of 20 subscribers",
        count as f64 / took.as_secs_f64(),
        "1/s",
    ));
    figures.push(Figure::new(
        "notifications/s delivered to 20 subscribers in all",
        (20 * count) as f64 / took.as_secs_f64(),
        "1/s",
    ));
    for client in many {
        client.close().await?;
    }

    // Replay: top the log up to 100,000 events, then replay them all.
    let stored = 1 + 50_000 + 10_000;
    expect_ok_or_data(&producer.rpc(&burst(100_000 - stored)).await?)?;
    let mut replayer = connect_when_ready(server.addr).await?;
    let start = Instant::now();
    expect_ok_or_data(
        &replayer
            .rpc(&subscribe("bench", Some("1970-01-01T00:00:00Z")))
            .await?,
    )?;
    let mut replayed = 0usize;
    loop {
        let message = replayer.notification().await?;
        if message
            .windows(b"replayComplete".len())
            .any(|w| w == b"replayComplete")
        {
            break;
        }
        replayed += 1;
    }
    let took = start.elapsed();
    if replayed != 100_000 {
        bail!("the replay gave {replayed} events, not 100,000");
    }
    figures.push(Figure::new(
        "replay of 100,000 stored events",
        took.as_secs_f64() * 1000.0,
        "ms",
    ));
    figures.push(Figure::new(
        "replayed events/s",
        replayed as f64 / took.as_secs_f64(),
        "1/s",
    ));
    replayer.close().await?;

    // A subscriber that never reads: the server's memory stays bounded (its queue overflows
    // and its session is ended) while another 50,000 events are delivered elsewhere.
    let _stalled = subscriber(&server, "bench").await?;
    let rss_before = server.rss_kib()? as f64 / 1024.0;
    expect_ok_or_data(&producer.rpc(&burst(50_000)).await?)?;
    let rss_after = server.rss_kib()? as f64 / 1024.0;
    figures.push(Figure::new(
        "server RSS growth, 50,000 events, one subscriber not reading",
        rss_after - rss_before,
        "MiB",
    ));

    // Commit → netconf-config-change, on a session that is subscribed to NETCONF and edits
    // (interleave): from sending the edit to receiving its event, so the figure includes the
    // commit itself.
    let mut session = connect_when_ready(server.addr).await?;
    expect_ok_or_data(&session.rpc(&subscribe("NETCONF", None)).await?)?;
    let mut latencies = Vec::with_capacity(edits);
    for i in 0..edits {
        let level = if i % 2 == 0 {
            "level-debug"
        } else {
            "level-info"
        };
        let edit = edit_config(&format!(
            "<python-vm xmlns=\"{NS_NCS}\"><logging><level>{level}</level></logging></python-vm>"
        ));
        let start = Instant::now();
        expect_ok_or_data(&session.rpc(&edit).await?)?;
        loop {
            let event = session.notification().await?;
            if event
                .windows(b"netconf-config-change".len())
                .any(|w| w == b"netconf-config-change")
            {
                break;
            }
        }
        latencies.push(start.elapsed());
    }
    session.close().await?;
    producer.close().await?;
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    figures.push(
        Figure::new(
            "commit → netconf-config-change at the client p50",
            pct(0.5),
            "ms",
        )
        .at_most(2.0),
    );
    figures.push(Figure::new(
        "commit → netconf-config-change at the client p99",
        pct(0.99),
        "ms",
    ));
    figures.push(Figure::new(
        "server RSS after 100,000 notifications",
        server.rss_kib().context("reading the server's RSS")? as f64 / 1024.0,
        "MiB",
    ));
    Ok(figures)
}
