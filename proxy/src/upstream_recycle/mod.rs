//! Upstream server recycling (`worker_recycle` with a group's `recycle_hook`): the seed's
//! GUNICORN_MAX_REQUESTS, aimed at the upstream workers that leak.
//!
//! - [`hook`] runs a hook (exec or http) for one server under its timeout.
//! - [`trigger`] decides when a server is due (requests + jitter, parked count and age)
//!   and backs off after failures.
//! - [`controller`] is the rolling loop: one server of a group at a time, no new sessions
//!   while it recycles, re-admitted when healthy again; it follows config reloads.
//! - [`hold`] keeps a due server waiting while another server of its group is down.
//! - [`coordination`] extends "one at a time" and the request counts across replicas
//!   (`worker_recycle.coordination`): a lease per group and shared counters in Redis.

pub mod controller;
pub mod coordination;
pub mod hold;
pub mod hook;
pub mod trigger;

use crate::config::model::RecycleHookConfig;
use crate::health::ServerState;
use crate::metrics::Metrics;
use crate::upstream_leg::TlsClient;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use controller::{RecycleController, Timings};
pub use hook::HookError;

/// The side effects of a recycle, behind a trait so that the rolling logic is tested in
/// paused time with fakes.
#[async_trait::async_trait]
pub trait Recycler: Send + Sync + 'static {
    /// Runs `hook` for `server` (its address as written in `servers:`); an `https://` hook
    /// speaks TLS with `tls`, the group's TLS client.
    async fn run_hook(
        &self,
        hook: &RecycleHookConfig,
        server: &str,
        tls: Option<&TlsClient>,
    ) -> Result<(), HookError>;

    /// True when `socket` accepts a TCP connection (re-admission without active checks).
    async fn reachable(&self, socket: SocketAddr) -> bool;
}

/// The real recycler: real processes, requests and connects.
pub struct SystemRecycler;

/// How long a re-admission connect probe may take.
const REACHABLE_TIMEOUT: Duration = Duration::from_secs(1);

#[async_trait::async_trait]
impl Recycler for SystemRecycler {
    async fn run_hook(
        &self,
        hook: &RecycleHookConfig,
        server: &str,
        tls: Option<&TlsClient>,
    ) -> Result<(), HookError> {
        hook::run(hook, server, tls).await
    }

    async fn reachable(&self, socket: SocketAddr) -> bool {
        matches!(
            tokio::time::timeout(REACHABLE_TIMEOUT, tokio::net::TcpStream::connect(socket)).await,
            Ok(Ok(_))
        )
    }
}

/// Takes a server out of new-session balancing while alive (the `recycling` flag and
/// gauge); dropping it re-admits the server, however the recycle ended.
pub struct RecyclingGuard {
    health: Arc<ServerState>,
    metrics: Arc<Metrics>,
    labels: [String; 2],
}

impl RecyclingGuard {
    /// Marks `health` (server `labels[1]` of group `labels[0]`) as recycling.
    pub fn start(health: Arc<ServerState>, metrics: Arc<Metrics>, labels: [String; 2]) -> Self {
        health.set_recycling(true);
        metrics
            .upstream_server_recycling
            .with_label_values(&[labels[0].as_str(), labels[1].as_str()])
            .set(1);
        Self {
            health,
            metrics,
            labels,
        }
    }
}

impl Drop for RecyclingGuard {
    fn drop(&mut self) {
        self.health.set_recycling(false);
        self.metrics
            .upstream_server_recycling
            .with_label_values(&[self.labels[0].as_str(), self.labels[1].as_str()])
            .set(0);
    }
}
