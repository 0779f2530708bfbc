//! The mcp-edge process recycle of `worker_recycle`: after `process_max_requests` plus a
//! uniform jitter in [0, `process_max_requests_jitter`] requests, the process starts its
//! successor through the same path as a binary upgrade (the successor inherits the
//! listening sockets) and drains. Off by default: the upstream servers are what leak, and
//! `crate::upstream_recycle` recycles them.
//!
//! The jitter is drawn once per process; `MCP_EDGE_RECYCLE_SEED` makes it reproducible
//! (mixed with the process's recycle count, so successive processes still differ).
//! `mcp_edge_worker_recycles_total` is carried to the successor in `MCP_EDGE_RECYCLES`.

use mcp_edge_filters::WorkerRecycleSettings;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::Notify;

/// Environment variable carrying the recycle count to the successor.
pub const RECYCLES_ENV: &str = "MCP_EDGE_RECYCLES";
/// Environment variable seeding the jitter (for tests).
pub const SEED_ENV: &str = "MCP_EDGE_RECYCLE_SEED";

/// Counts served requests and asks for a recycle once at the threshold.
pub struct RecycleCounter {
    served: AtomicU64,
    jitter_fraction: f64,
    requested: AtomicBool,
    notify: Notify,
}

impl RecycleCounter {
    /// A counter whose jitter is drawn from `seed` (or the OS when `None`).
    pub fn new(seed: Option<u64>) -> Self {
        let jitter_fraction = match seed {
            Some(seed) => rand::rngs::StdRng::seed_from_u64(seed).gen::<f64>(),
            None => rand::thread_rng().gen::<f64>(),
        };
        Self {
            served: AtomicU64::new(0),
            jitter_fraction,
            requested: AtomicBool::new(false),
            notify: Notify::new(),
        }
    }

    /// The request count at which this process recycles under `settings`; `None` when
    /// recycling is off (`process_max_requests: 0`).
    pub fn threshold(&self, settings: &WorkerRecycleSettings) -> Option<u64> {
        let (max, jitter_max) = (
            settings.process_max_requests.get(),
            settings.process_max_requests_jitter.get(),
        );
        if max == 0 {
            return None;
        }
        let span = jitter_max as f64 + 1.0;
        let jitter = ((self.jitter_fraction * span) as u64).min(jitter_max);
        Some(max.saturating_add(jitter))
    }

    /// Counts one served request; asks for a recycle (once) when the threshold is reached.
    pub fn record_request(&self, settings: Option<&WorkerRecycleSettings>) {
        let served = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        let Some(threshold) = settings.and_then(|s| self.threshold(s)) else {
            return;
        };
        if served >= threshold && !self.requested.swap(true, Ordering::AcqRel) {
            tracing::info!(
                served,
                threshold,
                "worker_recycle: process request threshold reached"
            );
            self.notify.notify_one();
        }
    }

    /// Requests served so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Resolves when a recycle was asked for.
    pub async fn requested(&self) {
        self.notify.notified().await;
    }

    /// Lets a later threshold ask again, after a failed recycle: counting restarts.
    pub fn rearm(&self) {
        self.served.store(0, Ordering::Relaxed);
        self.requested.store(false, Ordering::Release);
    }
}

/// The arguments the successor starts with: this process's own, in upgrade mode.
pub fn successor_args() -> Vec<std::ffi::OsString> {
    let mut args: Vec<_> = std::env::args_os()
        .skip(1)
        .filter(|arg| arg != "-u" && arg != "--upgrade")
        .collect();
    args.push("-u".into());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max: u64, jitter: u64) -> WorkerRecycleSettings {
        WorkerRecycleSettings {
            process_max_requests: mcp_edge_filters::bounded::Count::new(max),
            process_max_requests_jitter: mcp_edge_filters::bounded::Count::new(jitter),
            ..WorkerRecycleSettings::default()
        }
    }

    #[test]
    fn threshold_is_max_plus_a_jitter_within_bounds_and_spread() {
        let thresholds: Vec<u64> = (0..200)
            .map(|seed| {
                RecycleCounter::new(Some(seed))
                    .threshold(&settings(200, 50))
                    .unwrap()
            })
            .collect();
        assert!(thresholds.iter().all(|t| (200..=250).contains(t)));
        let distinct: std::collections::BTreeSet<_> = thresholds.iter().collect();
        assert!(distinct.len() > 20, "jitter is spread: {distinct:?}");
        assert!(thresholds.contains(&200) || thresholds.iter().min() < Some(&205));
        assert!(thresholds.iter().max() > Some(&245));
    }

    #[test]
    fn zero_disables_and_the_request_fires_once() {
        let counter = RecycleCounter::new(Some(1));
        assert_eq!(counter.threshold(&settings(0, 10)), None);
        let exact = settings(3, 0);
        for _ in 0..2 {
            counter.record_request(Some(&exact));
        }
        assert!(!counter.requested.load(Ordering::Acquire));
        counter.record_request(Some(&exact));
        assert!(counter.requested.load(Ordering::Acquire));
        counter.record_request(Some(&exact));
        counter.rearm();
        assert_eq!(counter.served(), 0);
    }
}
