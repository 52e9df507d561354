//! End-to-end tests with the Rust client: they start the real `pyvmd` binary on a free loopback
//! port with temporary directories and talk NETCONF over SSH to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pyvmd::client::NetconfClient;

const NS_NCS: &str = "http://tail-f.com/ns/ncs";

/// A server process on its own state directory; killed when dropped.
struct Server {
    child: Option<Child>,
    addr: SocketAddr,
    dir: PathBuf,
    extra: Vec<String>,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Server {
            child: None,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            dir: dir.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let yang = Path::new(env!("CARGO_MANIFEST_DIR")).join("yang");
        let child = Command::new(env!("CARGO_BIN_EXE_pyvmd"))
            .arg("serve")
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--log-dir")
            .arg(self.dir.join("logs"))
            .arg("--packages")
            .arg(self.dir.join("packages"))
            .arg("--yang-dir")
            .arg(yang)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pyvmd starts");
        self.child = Some(child);
    }

    async fn connect(&self) -> NetconfClient {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match NetconfClient::connect(self.addr, "admin", "admin").await {
                Ok(client) => return client,
                Err(e) if Instant::now() > deadline => panic!("cannot connect: {e:#}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// SIGKILL, then start again on the same directories.
    fn kill_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn set_level(level: &str) -> String {
    format!(
        "<edit-config><target><running/></target><config><python-vm xmlns=\"{NS_NCS}\">\
         <logging><level>{level}</level></logging></python-vm></config></edit-config>"
    )
}

const GET_LEVEL: &str = "<get-config><source><running/></source><filter>\
    <python-vm xmlns=\"http://tail-f.com/ns/ncs\"><logging><level/></logging></python-vm>\
    </filter></get-config>";

#[tokio::test]
async fn hello_edit_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut client = server.connect().await;
    assert!(client.session_id > 0);
    for cap in [
        "urn:ietf:params:netconf:base:1.1",
        "urn:ietf:params:netconf:capability:writable-running:1.0",
    ] {
        assert!(client.capabilities.iter().any(|c| c == cap), "{cap}");
    }
    assert!(
        client
            .capabilities
            .iter()
            .any(|c| c.starts_with("http://tail-f.com/ns/ncs?module=tailf-ncs&revision="))
    );
    let reply = client.rpc(&set_level("level-debug")).await.unwrap();
    assert!(reply.contains("<ok/>"), "{reply}");
    let reply = client.rpc(GET_LEVEL).await.unwrap();
    assert!(reply.contains("<level>level-debug</level>"), "{reply}");
    let reply = client.rpc(&set_level("not-a-level")).await.unwrap();
    assert!(
        reply.contains("<error-tag>invalid-value</error-tag>"),
        "{reply}"
    );
    let reply = client.rpc(GET_LEVEL).await.unwrap();
    assert!(reply.contains("<level>level-debug</level>"), "{reply}");
    client.close().await.unwrap();
}

#[tokio::test]
async fn acknowledged_edits_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let levels = [
        "level-debug",
        "level-warning",
        "level-error",
        "level-critical",
    ];
    for round in 0..3 {
        let mut client = server.connect().await;
        let mut last = None;
        for i in 0..(5 + round * 7) {
            let level = levels[i % levels.len()];
            let reply = client.rpc(&set_level(level)).await.unwrap();
            assert!(reply.contains("<ok/>"), "{reply}");
            last = Some(level);
        }
        server.kill_and_restart();
        let mut client = server.connect().await;
        let reply = client.rpc(GET_LEVEL).await.unwrap();
        let expected = format!("<level>{}</level>", last.unwrap());
        assert!(reply.contains(&expected), "after kill -9: {reply}");
    }
}

#[tokio::test]
async fn an_oversize_message_ends_only_its_own_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-message-size", "4096"]);
    let mut bystander = server.connect().await;
    let mut offender = server.connect().await;
    let padding = "x".repeat(8192);
    let reply = offender
        .rpc(&format!(
            "<get-config><source><running/></source><!-- {padding} --></get-config>"
        ))
        .await
        .unwrap();
    assert!(reply.contains("<error-tag>too-big</error-tag>"), "{reply}");
    assert!(
        offender.rpc(GET_LEVEL).await.is_err(),
        "the session must end"
    );
    let reply = bystander.rpc(GET_LEVEL).await.unwrap();
    assert!(reply.contains("<data"), "{reply}");
    let mut fresh = server.connect().await;
    assert!(fresh.rpc(GET_LEVEL).await.unwrap().contains("<data"));
}

#[tokio::test]
async fn malformed_xml_gets_an_error_and_the_session_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut client = server.connect().await;
    client
        .send_message(b"<rpc message-id=\"1\"><get>")
        .await
        .unwrap();
    let reply = String::from_utf8(client.recv_message().await.unwrap()).unwrap();
    assert!(
        reply.contains("<error-tag>malformed-message</error-tag>"),
        "{reply}"
    );
    client
        .send_message(b"<rpc xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><get/></rpc>")
        .await
        .unwrap();
    let reply = String::from_utf8(client.recv_message().await.unwrap()).unwrap();
    assert!(
        reply.contains("<error-tag>missing-attribute</error-tag>"),
        "{reply}"
    );
    assert!(
        reply.contains("<bad-attribute>message-id</bad-attribute>"),
        "{reply}"
    );
    let reply = client.rpc("<frobnicate/>").await.unwrap();
    assert!(
        reply.contains("<error-tag>operation-not-supported</error-tag>"),
        "{reply}"
    );
    assert!(client.rpc(GET_LEVEL).await.unwrap().contains("<data"));
}

#[tokio::test]
async fn kill_session_ends_the_other_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    let reply = a
        .rpc(&format!(
            "<kill-session><session-id>{}</session-id></kill-session>",
            b.session_id
        ))
        .await
        .unwrap();
    assert!(reply.contains("<ok/>"), "{reply}");
    assert!(b.rpc(GET_LEVEL).await.is_err());
    let reply = a
        .rpc(&format!(
            "<kill-session><session-id>{}</session-id></kill-session>",
            a.session_id
        ))
        .await
        .unwrap();
    assert!(
        reply.contains("<error-tag>invalid-value</error-tag>"),
        "{reply}"
    );
}
