//! Metrics of the upstream recycling coordinated across replicas
//! (`worker_recycle.coordination`).

use super::families::Families;
use prometheus::{IntCounterVec, IntGauge, Opts};

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
    /// Creates the metrics, each registered in `families`.
    pub fn register(families: &mut Families) -> Self {
        Self {
            up: families.add(IntGauge::new(
                "mcp_edge_recycle_coordination_up",
                "1 when the last operation on the recycle coordination store (Redis) succeeded; 0 when it failed or none is configured.",
            )
            .expect("valid metric")),
            errors_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_recycle_coordination_errors_total",
                    "Failed operations on the recycle coordination store, by operation (flush, acquire, renew, release, lease_lost).",
                ),
                &["operation"],
            )
            .expect("valid metric")),
            paused_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_recycle_coordination_paused_total",
                    "Due upstream recycles not started because the coordination store was unreachable (at most one a second per group), by upstream group.",
                ),
                &["upstream"],
            )
            .expect("valid metric")),
        }
    }
}
