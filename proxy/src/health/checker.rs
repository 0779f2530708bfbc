//! Active health probes: a background service that probes every server of every group
//! with an `health.active` config, on the group's interval, and records the results.

use crate::config::model::{ActiveHealthConfig, ProbeKind};
use crate::generation::LiveConfig;
use pingora_core::server::ShutdownWatch;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
                    let (health, socket, active) =
                        (server.health.clone(), server.socket, active.clone());
                    let host = server.address.clone();
                    in_flight.insert(
                        server.address.clone(),
                        tokio::spawn(async move {
                            let ok = probe(socket, &host, &active).await;
                            health.record_probe(ok, active.rise.get_u32(), active.fall.get_u32());
                        }),
                    );
                }
            }
        }
    }
}

/// One probe: a TCP connect, or an HTTP GET whose status is below 500.
async fn probe(socket: SocketAddr, host: &str, active: &ActiveHealthConfig) -> bool {
    let limit = active.timeout.get();
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(socket).await.ok()?;
        if active.kind == ProbeKind::Tcp {
            return Some(true);
        }
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: mcp-edge-health\r\nConnection: close\r\n\r\n",
            active.path
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        let status: u16 = std::str::from_utf8(&head[9..12]).ok()?.parse().ok()?;
        Some(head.starts_with(b"HTTP/1.") && status < 500)
    };
    matches!(timeout(limit, attempt).await, Ok(Some(true)))
}
