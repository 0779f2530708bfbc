//! Metrics of event streams the edge relays without reading them.

use prometheus::core::Collector;
use prometheus::{IntCounterVec, Opts, Registry};

/// Event-stream metrics kept apart from the per-request set.
pub struct StreamMetrics {
    /// Event streams an upstream answered with a content coding the edge did not ask for,
    /// relayed untouched with the stream filters off, by upstream group.
    pub encoded_event_streams_total: IntCounterVec,
}

impl StreamMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Self {
        let metrics = Self {
            encoded_event_streams_total: IntCounterVec::new(
                Opts::new(
                    "mcp_edge_encoded_event_streams_total",
                    "Event streams an upstream answered with a Content-Encoding despite the edge asking for identity: relayed untouched, with the stream filters (keepalives, retry hints, event scanning) off, by upstream group.",
                ),
                &["upstream"],
            )
            .expect("valid metric"),
        };
        registry
            .register(Box::new(metrics.encoded_event_streams_total.clone()))
            .expect("metric names are unique");
        metrics
    }

    /// Every family, each a labelled vector (absent from the registry's output until its
    /// first series exists).
    pub fn families(&self) -> [&dyn Collector; 1] {
        [&self.encoded_event_streams_total]
    }
}
