//! Active health probes: a background service that probes every server of every group
//! with an `health.active` config, on the group's interval, and records the results.

use crate::config::model::{ActiveHealthConfig, ProbeKind};
use crate::generation::LiveConfig;
use crate::upstream_leg::{Endpoint, UpstreamConnection};
use http::{header, HeaderName, HeaderValue, Method};
use mcp_edge_filters::seconds;
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
                let interval = seconds(active.interval).unwrap_or(Duration::from_secs(5));
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
                            health.record_probe(ok, active.rise, active.fall);
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
async fn probe(endpoint: &Endpoint, host: &str, active: &ActiveHealthConfig) -> bool {
    let limit = seconds(active.timeout).unwrap_or(Duration::from_secs(1));
    let attempt = async {
        if active.kind == ProbeKind::Tcp {
            return tokio::net::TcpStream::connect(endpoint.socket())
                .await
                .is_ok();
        }
        let Ok(host) = HeaderValue::from_str(host) else {
            return false;
        };
        let headers: [(HeaderName, HeaderValue); 3] = [
            (header::HOST, host),
            (
                header::USER_AGENT,
                HeaderValue::from_static("mcp-edge-health"),
            ),
            (header::CONNECTION, HeaderValue::from_static("close")),
        ];
        let Ok(mut connection) = UpstreamConnection::open(endpoint, None).await else {
            return false;
        };
        let headers = headers.iter().map(|(name, value)| (name, value));
        if connection
            .send_request(&Method::GET, &active.path, headers, b"")
            .await
            .is_err()
        {
            return false;
        }
        connection
            .read_response_head()
            .await
            .is_ok_and(|head| head.status.as_u16() < 500)
    };
    matches!(timeout(limit, attempt).await, Ok(true))
}
