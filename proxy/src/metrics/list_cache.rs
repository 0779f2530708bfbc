//! The shared cache of list results (`routes[].list_cache`): hits, misses, evictions by
//! reason, and what it holds, by route.

use prometheus::core::Collector;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

/// The list cache metrics.
pub struct ListCacheMetrics {
    /// Cacheable requests answered from the cache, by route.
    pub hits_total: IntCounterVec,
    /// Cacheable requests the cache could not answer (sent upstream), by route.
    pub misses_total: IntCounterVec,
    /// Entries removed, by route and reason.
    pub evictions_total: IntCounterVec,
    /// Bytes held, by route.
    pub bytes: IntGaugeVec,
    /// Entries held, by route.
    pub entries: IntGaugeVec,
}

impl ListCacheMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let gauge = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["route"]).expect("valid metric")
        };
        let metrics = Self {
            hits_total: counter(
                "mcp_edge_list_cache_hits_total",
                "List requests (tools/list, ...) answered from the route's cache, without the upstream.",
                &["route"],
            ),
            misses_total: counter(
                "mcp_edge_list_cache_misses_total",
                "Cacheable list requests the route's cache could not answer: sent to the upstream.",
                &["route"],
            ),
            evictions_total: counter(
                "mcp_edge_list_cache_evictions_total",
                "Entries removed from the route's list cache: capacity (max_entries or max_bytes), expired (ttlMs or max_ttl), list_changed (a change notification of the upstream group).",
                &["route", "reason"],
            ),
            bytes: gauge(
                "mcp_edge_list_cache_bytes",
                "Bytes of answers held in the route's list cache.",
            ),
            entries: gauge(
                "mcp_edge_list_cache_entries",
                "Answers held in the route's list cache.",
            ),
        };
        let collectors: [Box<dyn Collector>; 5] = [
            Box::new(metrics.hits_total.clone()),
            Box::new(metrics.misses_total.clone()),
            Box::new(metrics.evictions_total.clone()),
            Box::new(metrics.bytes.clone()),
            Box::new(metrics.entries.clone()),
        ];
        for collector in collectors {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        metrics
    }

    /// Every family, each a labelled vector.
    pub fn families(&self) -> [&dyn Collector; 5] {
        [
            &self.hits_total,
            &self.misses_total,
            &self.evictions_total,
            &self.bytes,
            &self.entries,
        ]
    }
}
