//! Metrics of the upstream recycling coordinated across replicas
//! (`worker_recycle.coordination`).

use prometheus::core::Collector;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

/// The coordination store's metrics.
pub struct CoordinationMetrics {
    /// 1 when the last operation on the coordination store succeeded; 0 when it failed,
    /// or when no coordination is configured.
    pub up: IntGauge,
    /// Failed operations on the coordination store, by operation (`flush`, `acquire`,
    /// `renew`, `release`, and `lease_lost`: a lease that expired while its holder
    /// recycled).
    pub errors_total: IntCounterVec,
    /// Due recycles not started because the coordination store was unreachable (recycling
    /// paused; at most one a second per group), by upstream group.
    pub paused_total: IntCounterVec,
}

impl CoordinationMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Self {
        let metrics = Self {
            up: IntGauge::new(
                "mcp_edge_recycle_coordination_up",
                "1 when the last operation on the recycle coordination store (Redis) succeeded; 0 when it failed or none is configured.",
            )
            .expect("valid metric"),
            errors_total: IntCounterVec::new(
                Opts::new(
                    "mcp_edge_recycle_coordination_errors_total",
                    "Failed operations on the recycle coordination store, by operation (flush, acquire, renew, release, lease_lost).",
                ),
                &["operation"],
            )
            .expect("valid metric"),
            paused_total: IntCounterVec::new(
                Opts::new(
                    "mcp_edge_recycle_coordination_paused_total",
                    "Due upstream recycles not started because the coordination store was unreachable (at most one a second per group), by upstream group.",
                ),
                &["upstream"],
            )
            .expect("valid metric"),
        };
        let collectors: [Box<dyn Collector>; 3] = [
            Box::new(metrics.up.clone()),
            Box::new(metrics.errors_total.clone()),
            Box::new(metrics.paused_total.clone()),
        ];
        for collector in collectors {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        metrics
    }

    /// The labelled families (absent from the registry's output until their first series
    /// exists).
    pub fn labelled(&self) -> [&dyn Collector; 2] {
        [&self.errors_total, &self.paused_total]
    }
}
