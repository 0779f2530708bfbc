//! Server health: passive ejection on connect failures, active probes, and the per-server
//! state new sessions are balanced on.
//!
//! State is kept per server address in a [`HealthBook`] that outlives config generations,
//! so a reload that keeps a server keeps its health and its stream count.

use crate::config::model::PassiveHealthConfig;
use crate::drain::{DrainSignal, DrainTrigger};
use crate::parking::ParkingLot;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// The health of one server.
pub struct ServerState {
    /// The server address.
    pub address: String,
    healthy: AtomicBool,
    consecutive_connect_failures: AtomicU32,
    ejected_until_ms: AtomicU64,
    /// Consecutive probe results of the same kind (positive: successes, negative: failures).
    probe_streak: AtomicI64,
    active_streams: AtomicI64,
    ejections: AtomicU64,
    epoch: Instant,
    retirement: DrainTrigger,
    parking: Arc<ParkingLot>,
    /// Successful active probes so far (re-admission after a recycle waits for a new one).
    probe_successes: AtomicU64,
    /// Requests routed to this server since its last recycle.
    routed_requests: AtomicU64,
    /// True while an upstream recycle runs: no new sessions.
    recycling: AtomicBool,
    /// Set once the server answered an event stream with a content coding (logged once).
    sent_encoded_stream: AtomicBool,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState")
            .field("address", &self.address)
            .field("healthy", &self.healthy())
            .field("ejected", &self.ejected())
            .field("active_streams", &self.active_streams())
            .finish()
    }
}

impl ServerState {
    fn new(address: &str) -> Self {
        Self {
            address: address.to_string(),
            healthy: AtomicBool::new(true),
            consecutive_connect_failures: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            probe_streak: AtomicI64::new(0),
            active_streams: AtomicI64::new(0),
            ejections: AtomicU64::new(0),
            epoch: Instant::now(),
            retirement: crate::drain::drain_channel().0,
            parking: Arc::default(),
            probe_successes: AtomicU64::new(0),
            routed_requests: AtomicU64::new(0),
            recycling: AtomicBool::new(false),
            sent_encoded_stream: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// True when the server may take new sessions: healthy by probes, not ejected, and
    /// not being recycled.
    pub fn available(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
            && !self.recycling.load(Ordering::Acquire)
            && self.ejected_until_ms.load(Ordering::Acquire) <= self.now_ms()
    }

    /// Counts one request routed to this server (towards `worker_recycle.max_requests`).
    pub fn record_routed_request(&self) {
        self.routed_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests routed to this server since its last recycle.
    pub fn routed_requests(&self) -> u64 {
        self.routed_requests.load(Ordering::Relaxed)
    }

    /// Restarts the routed-request count (after a recycle).
    pub fn reset_routed_requests(&self) {
        self.routed_requests.store(0, Ordering::Relaxed);
    }

    /// Returns the routed-request count and restarts it (the coordinated recycle hands the
    /// count to the shared counters).
    pub fn take_routed_requests(&self) -> u64 {
        self.routed_requests.swap(0, Ordering::Relaxed)
    }

    /// True while the server is being recycled: it takes no new sessions, but requests
    /// of its existing sessions still reach it.
    pub fn recycling(&self) -> bool {
        self.recycling.load(Ordering::Acquire)
    }

    /// Marks the server as recycling (or re-admits it); returns the previous state.
    pub fn set_recycling(&self, recycling: bool) -> bool {
        self.recycling.swap(recycling, Ordering::AcqRel)
    }

    /// Notes that the server answered an event stream with a content coding; true the
    /// first time only, so that it is logged once per server, not once per stream.
    pub fn note_encoded_stream(&self) -> bool {
        !self.sent_encoded_stream.swap(true, Ordering::AcqRel)
    }

    /// Successful active probes so far.
    pub fn probe_successes(&self) -> u64 {
        self.probe_successes.load(Ordering::Acquire)
    }

    /// True when active probes consider the server healthy.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// True while passively ejected.
    pub fn ejected(&self) -> bool {
        self.ejected_until_ms.load(Ordering::Acquire) > self.now_ms()
    }

    /// Open SSE streams to this server through this process.
    pub fn active_streams(&self) -> i64 {
        self.active_streams.load(Ordering::Relaxed)
    }

    /// Ejections so far.
    pub fn ejections(&self) -> u64 {
        self.ejections.load(Ordering::Relaxed)
    }

    /// Counts a connect failure; ejects the server after `consecutive_failures`. Returns
    /// true when this failure ejected it.
    pub fn record_connect_failure(&self, passive: Option<&PassiveHealthConfig>) -> bool {
        let failures = self
            .consecutive_connect_failures
            .fetch_add(1, Ordering::AcqRel)
            + 1;
        let Some(passive) = passive else {
            return false;
        };
        if failures < passive.consecutive_failures.get_u32() {
            return false;
        }
        self.consecutive_connect_failures
            .store(0, Ordering::Release);
        let period = passive.eject_seconds.or_zero();
        self.ejected_until_ms
            .store(self.now_ms() + period.as_millis() as u64, Ordering::Release);
        self.ejections.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(server = %self.address, failures, ?period, "ejected after consecutive connect failures");
        true
    }

    /// Counts a successful connect.
    pub fn record_connect_success(&self) {
        self.consecutive_connect_failures
            .store(0, Ordering::Release);
    }

    /// Records a probe result; flips health after `rise` successes or `fall` failures.
    pub fn record_probe(&self, ok: bool, rise: u32, fall: u32) {
        if ok {
            self.probe_successes.fetch_add(1, Ordering::AcqRel);
        }
        let streak = if ok {
            self.probe_streak
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                    Some(if s > 0 { s + 1 } else { 1 })
                })
                .map_or(1, |s| if s > 0 { s + 1 } else { 1 })
        } else {
            self.probe_streak
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                    Some(if s < 0 { s - 1 } else { -1 })
                })
                .map_or(-1, |s| if s < 0 { s - 1 } else { -1 })
        };
        let healthy = self.healthy.load(Ordering::Acquire);
        if !healthy && streak >= i64::from(rise) {
            self.healthy.store(true, Ordering::Release);
            tracing::info!(server = %self.address, "server healthy again");
        } else if healthy && -streak >= i64::from(fall) {
            self.healthy.store(false, Ordering::Release);
            tracing::warn!(server = %self.address, "server unhealthy: probes failing");
        }
    }

    /// Marks the server removed by a reload (or gone from its followed name): its open
    /// streams drain as in a process drain (under `session_pool_cleanup_timeout`).
    pub fn retire(&self) {
        tracing::info!(server = %self.address, "server removed: draining its streams");
        self.retirement.start();
    }

    /// Clears a retirement: a reload brought the server back.
    pub fn reinstate(&self) {
        self.retirement.cancel();
    }

    /// Resolves when the server is retired.
    pub fn retirement(&self) -> DrainSignal {
        self.retirement.signal()
    }

    /// Forgets probe results: without active checks a server counts as healthy.
    pub fn clear_probes(&self) {
        self.probe_streak.store(0, Ordering::Release);
        self.healthy.store(true, Ordering::Release);
    }

    /// The exchanges abandoned by their clients and parked on this server.
    pub fn parking(&self) -> &Arc<ParkingLot> {
        &self.parking
    }

    /// Counts an open stream until the guard drops.
    pub fn open_stream(self: &Arc<Self>) -> StreamCount {
        self.active_streams.fetch_add(1, Ordering::Relaxed);
        StreamCount(self.clone())
    }
}

/// Keeps a server's stream count up while alive.
pub struct StreamCount(Arc<ServerState>);

impl Drop for StreamCount {
    fn drop(&mut self) {
        self.0.active_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Health of every server the process has been configured with, by address.
#[derive(Default)]
pub struct HealthBook {
    servers: Mutex<HashMap<String, Arc<ServerState>>>,
}

impl HealthBook {
    /// The health record of `address`, created on first use.
    pub fn server(&self, address: &str) -> Arc<ServerState> {
        let mut servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        servers
            .entry(address.to_string())
            .or_insert_with(|| Arc::new(ServerState::new(address)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn passive_ejection_after_consecutive_failures_expires() {
        let server = ServerState::new("127.0.0.1:1");
        let passive = PassiveHealthConfig {
            consecutive_failures: mcp_edge_filters::bounded::Count::new(3),
            eject_seconds: mcp_edge_filters::bounded::OptionalSeconds::from_secs(10),
        };
        assert!(!server.record_connect_failure(Some(&passive)));
        server.record_connect_success();
        assert!(!server.record_connect_failure(Some(&passive)));
        assert!(!server.record_connect_failure(Some(&passive)));
        assert!(server.record_connect_failure(Some(&passive)));
        assert!(!server.available());
        tokio::time::advance(std::time::Duration::from_secs(10)).await;
        assert!(server.available());
        assert_eq!(server.ejections(), 1);
    }

    #[test]
    fn probes_flip_health_after_rise_and_fall() {
        let server = ServerState::new("127.0.0.1:1");
        server.record_probe(false, 2, 2);
        assert!(server.healthy());
        server.record_probe(false, 2, 2);
        assert!(!server.healthy());
        server.record_probe(true, 2, 2);
        assert!(!server.healthy());
        server.record_probe(true, 2, 2);
        assert!(server.healthy());
    }
}
