//! An open event stream, as the rest of the process sees it: counted in the active
//! gauges, listed in `/streams`, and scanned once per chunk for event boundaries.

use crate::health::{ServerState, StreamCount};
use crate::mcp::CallWatch;
use crate::streams::{StreamHandle, StreamKind, StreamRegistry, StreamState};
use mcp_edge_filters::EventBoundaryScanner;
use prometheus::IntGauge;
use std::sync::Arc;

/// Registration and counters of one open event stream; all released on drop.
pub struct EventStream {
    _active: ActiveGauge,
    _per_server: StreamCount,
    handle: StreamHandle,
    scanner: EventBoundaryScanner,
}

/// Where an event stream is registered and counted.
pub struct StreamTracking<'a> {
    /// The registry behind `/streams`.
    pub registry: &'a Arc<StreamRegistry>,
    /// `mcp_edge_sse_streams_active`.
    pub active: &'a IntGauge,
    /// The route prefix that matched.
    pub route: &'a Arc<str>,
    /// The upstream group.
    pub upstream: &'a str,
    /// The server's health record, which counts its open streams.
    pub server: &'a Arc<ServerState>,
}

impl EventStream {
    /// Registers a stream of `kind` answering a request with `method`.
    pub fn open(tracking: &StreamTracking<'_>, method: &str, kind: StreamKind) -> Self {
        let handle = tracking.registry.open(
            tracking.route.clone(),
            tracking.upstream,
            &tracking.server.address,
            method,
            kind,
            StreamState::Open,
        );
        Self {
            _active: ActiveGauge::open(tracking.active),
            _per_server: tracking.server.open_stream(),
            handle,
            scanner: EventBoundaryScanner::new(),
        }
    }

    /// Scans `chunk`, records it, and returns how many events it completed.
    pub fn record(&mut self, chunk: &[u8]) -> u32 {
        let events = self.scanner.feed(chunk);
        self.handle.stats().record(events, chunk.len());
        events
    }
}

/// Counts an open SSE stream for as long as it lives.
struct ActiveGauge(IntGauge);

impl ActiveGauge {
    fn open(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for ActiveGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What the event stream of a request with `method`, whose exchange watches `calls`, is:
/// a GET's standing stream, a `subscriptions/listen` stream, or the answer to a request.
pub fn stream_kind(method: &http::Method, calls: &CallWatch) -> StreamKind {
    match calls {
        _ if method == http::Method::GET => StreamKind::Standing,
        CallWatch::Standing { .. } => StreamKind::Standing,
        CallWatch::Listen => StreamKind::Listen,
        CallWatch::Opaque { .. } | CallWatch::Calls { .. } => StreamKind::Response,
    }
}
