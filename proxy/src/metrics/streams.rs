//! Metrics of event streams the edge relays without reading them.

use super::families::Families;
use prometheus::{IntCounterVec, Opts};

/// Event-stream metrics kept apart from the per-request set.
pub struct StreamMetrics {
    /// Event streams an upstream answered with a content coding the edge did not ask for,
    /// relayed untouched with the stream filters off, by upstream group.
    pub encoded_event_streams_total: IntCounterVec,
}

impl StreamMetrics {
    /// Creates the metrics, each registered in `families`.
    pub fn register(families: &mut Families) -> Self {
        Self {
            encoded_event_streams_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_encoded_event_streams_total",
                    "Event streams an upstream answered with a Content-Encoding despite the edge asking for identity: relayed untouched, with the stream filters (keepalives, retry hints, event scanning) off, by upstream group.",
                ),
                &["upstream"],
            )
            .expect("valid metric")),
        }
    }
}
