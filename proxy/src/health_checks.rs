//! Active health probes: a background service that probes every server of every group
//! with an `health.active` config, on the group's interval, and records the results.

use crate::config::model::{ActiveHealthConfig, ProbeKind};
use crate::generation::LiveConfig;
use crate::upstream_leg::oneshot::{self, OneShot, ReadBody};
use crate::upstream_leg::Endpoint;
use http::Method;
use pingora_core::server::ShutdownWatch;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{timeout, Instant};

/// How often the checker looks for probes that are due.
const TICK: Duration = Duration::from_millis(100);

/// Probes the servers of the live generation.
pub struct HealthChecker {
    live: Arc<LiveConfig>,
}

impl HealthChecker {
    /// A checker over the live config.
    pub fn new(live: Arc<LiveConfig>) -> Self {
        Self { live }
    }

    /// Probes until shutdown starts. Probes run concurrently; each server has at most one
    /// probe in flight.
    pub async fn run(&self, mut shutdown: ShutdownWatch) {
        let mut next_probe: HashMap<String, Instant> = HashMap::new();
        let mut in_flight: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
        let mut ticker = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => return,
            }
            in_flight.retain(|_, probe| !probe.is_finished());
            let generation = self.live.current();
            let now = Instant::now();
            for group in generation.routes.groups() {
                let Some(active) = group.health.as_ref().and_then(|h| h.active.clone()) else {
                    continue;
                };
                let interval = active.interval.get();
                for server in &group.servers {
                    let due = next_probe.get(&server.address).is_none_or(|at| *at <= now);
                    if !due || in_flight.contains_key(&server.address) {
                        continue;
                    }
                    next_probe.insert(server.address.clone(), now + interval);
                    let (health, endpoint, active) = (
                        server.health.clone(),
                        server.endpoint.clone(),
                        active.clone(),
                    );
                    let host = server.authority.clone();
                    in_flight.insert(
                        server.address.clone(),
                        tokio::spawn(async move {
                            let ok = probe(&endpoint, &host, &active).await;
                            health.record_probe(ok, active.rise.get_u32(), active.fall.get_u32());
                        }),
                    );
                }
            }
        }
    }
}

/// One probe: a TCP connect (no TLS handshake, even to an `https://` server), or an HTTP
/// GET (over TLS to an `https://` server) whose status is below 500. `host` is the
/// server's `host:port`, sent as `Host`.
pub(crate) async fn probe(endpoint: &Endpoint, host: &str, active: &ActiveHealthConfig) -> bool {
    let limit = active.timeout.get();
    if active.kind == ProbeKind::Tcp {
        let connect = tokio::net::TcpStream::connect(endpoint.socket());
        return matches!(timeout(limit, connect).await, Ok(Ok(_)));
    }
    let request = OneShot {
        method: &Method::GET,
        target: &active.path,
        host,
        user_agent: "mcp-edge-health",
    };
    oneshot::send(endpoint, request, ReadBody::Skip, limit)
        .await
        .is_ok_and(|reply| reply.status.as_u16() < 500)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn http_probe() -> ActiveHealthConfig {
        serde_yaml::from_str("{kind: http, path: /healthz, timeout: 2}").unwrap()
    }

    /// A plain upstream answering one request per connection with `status`; the request
    /// heads it read are sent on the returned channel.
    async fn upstream(status: u16) -> (Endpoint, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (heads, seen) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
                let response = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        (Endpoint::plain(addr), seen)
    }

    #[tokio::test]
    async fn an_http_probe_sends_a_get_and_takes_a_status_below_500_as_healthy() {
        let (endpoint, mut seen) = upstream(404).await;
        assert!(probe(&endpoint, "mcp.internal:8000", &http_probe()).await);
        let head = seen.recv().await.unwrap().to_ascii_lowercase();
        assert!(head.starts_with("get /healthz http/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nhost: mcp.internal:8000\r\n"), "{head}");
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        let (endpoint, _seen) = upstream(503).await;
        assert!(!probe(&endpoint, "mcp.internal:8000", &http_probe()).await);
    }

    #[tokio::test]
    async fn a_probe_of_a_closed_port_fails() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let endpoint = Endpoint::plain(closed);
        assert!(!probe(&endpoint, "x:1", &http_probe()).await);
        let tcp: ActiveHealthConfig = serde_yaml::from_str("{kind: tcp}").unwrap();
        assert!(!probe(&endpoint, "x:1", &tcp).await);
    }
}
