//! `pyvmd health`: proves that a server answers NETCONF, for container health checks and
//! scripts that wait for a server to come up.
//!
//! A listening port is not enough (the port is bound before the YANG modules and the
//! datastores load), so the check logs in over SSH, exchanges hellos and sends a `<get>`: a
//! server that answers it serves clients.

use std::net::SocketAddr;
use std::time::Duration;

use crate::client::NetconfClient;

/// What the check sends: small, and answered from state every server has.
const PROBE: &str = "<get><filter type=\"subtree\"><netconf-state \
    xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring\"><statistics/></netconf-state>\
    </filter></get>";

/// Logs in to `addr`, sends a `<get>` and closes the session; all within `timeout`. Returns the
/// session-id the server gave.
///
/// # Errors
/// The server did not answer in time, refused the login, or answered with an `rpc-error`.
pub async fn check(
    addr: SocketAddr,
    user: &str,
    password: &str,
    timeout: Duration,
) -> anyhow::Result<u32> {
    let probe = async {
        let mut client = NetconfClient::connect(addr, user, password).await?;
        let reply = client.rpc(PROBE).await?;
        anyhow::ensure!(
            reply.contains("<data") && !reply.contains("<rpc-error"),
            "the server answered the <get> with: {reply}"
        );
        let session = client.session_id;
        client.close().await?;
        Ok(session)
    };
    match tokio::time::timeout(timeout, probe).await {
        Ok(result) => result,
        Err(_) => anyhow::bail!("no NETCONF answer within {} s", timeout.as_secs_f32()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing listens: the check fails promptly, with the reason.
    #[tokio::test]
    async fn a_closed_port_fails() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = check(addr, "admin", "admin", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(!err.to_string().is_empty());
    }

    /// A port that accepts but never speaks SSH: the timeout ends the wait.
    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _hold = tokio::spawn(async move {
            let _conn = listener.accept().await;
            std::future::pending::<()>().await;
        });
        let err = check(addr, "admin", "admin", Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no NETCONF answer"), "{err}");
    }
}
