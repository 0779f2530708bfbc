//! The exchange's events, counted: the one place where what an exchange reports becomes
//! metrics.

use crate::drain::DrainClose;
use crate::exchange::ExchangeEvents;
use crate::metrics::Metrics;
use mcp_edge_filters::{CloseReason, WindDownOutcome};

impl ExchangeEvents for Metrics {
    /// `mcp_edge_client_connections_closed_total{reason="send_timeout"}`.
    fn client_send_timed_out(&self) {
        self.client_closed("send_timeout");
    }

    /// `mcp_edge_sse_guard_closed_total{reason}`.
    fn guard_closed(&self, reason: CloseReason) {
        self.sse_guard_closed_total
            .with_label_values(&[reason.label()])
            .inc();
    }

    /// `mcp_edge_cleanup_total{outcome}`, and `mcp_edge_cancel_cap_terminated_total` when
    /// `cancel_cap` ended it.
    fn wound_down(&self, outcome: WindDownOutcome) {
        self.cleanup_total
            .with_label_values(&[outcome.label()])
            .inc();
        if outcome == WindDownOutcome::CapExceeded {
            self.cancel_cap_terminated_total.inc();
        }
    }

    /// `mcp_edge_abandoned_calls_total{method, tool, outcome}`.
    fn call_abandoned(&self, method: &str, tool: &str, outcome: WindDownOutcome) {
        self.mcp
            .abandoned_calls_total
            .with_label_values(&[method, tool, outcome.label()])
            .inc();
    }

    /// `mcp_edge_cleanup_total{outcome}` with the drain's outcome.
    fn drain_closed(&self, close: DrainClose) {
        self.cleanup_total.with_label_values(&[close.label()]).inc();
    }

    /// `mcp_edge_encoded_event_streams_total{upstream}`.
    fn encoded_event_stream(&self, upstream: &str) {
        self.streams
            .encoded_event_streams_total
            .with_label_values(&[upstream])
            .inc();
    }
}
