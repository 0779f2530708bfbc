//! The shared cache of list results (`routes[].list_cache`): hits, misses, evictions by
//! reason, and what it holds, by route.

use super::families::Families;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};

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
    /// Creates the metrics, each registered in `families`.
    pub fn register(families: &mut Families) -> Self {
        let counter = |families: &mut Families, name: &str, help: &str, labels: &[&str]| {
            families.add(IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
        };
        let gauge = |families: &mut Families, name: &str, help: &str| {
            families.add(IntGaugeVec::new(Opts::new(name, help), &["route"]).expect("valid metric"))
        };
        Self {
            hits_total: counter(
                families,
                "mcp_edge_list_cache_hits_total",
                "List requests (tools/list, ...) answered from the route's cache, without the upstream.",
                &["route"],
            ),
            misses_total: counter(
                families,
                "mcp_edge_list_cache_misses_total",
                "Cacheable list requests the route's cache could not answer: sent to the upstream.",
                &["route"],
            ),
            evictions_total: counter(
                families,
                "mcp_edge_list_cache_evictions_total",
                "Entries removed from the route's list cache: capacity (max_entries or max_bytes), expired (ttlMs or max_ttl), list_changed (a change notification of the upstream group).",
                &["route", "reason"],
            ),
            bytes: gauge(
                families,
                "mcp_edge_list_cache_bytes",
                "Bytes of answers held in the route's list cache.",
            ),
            entries: gauge(
                families,
                "mcp_edge_list_cache_entries",
                "Answers held in the route's list cache.",
            ),
        }
    }
}
