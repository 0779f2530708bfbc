//! MCP-aware metrics: requests by JSON-RPC method, `tools/call` by tool, and the calls
//! clients abandoned mid-flight, by tool and how their wind-down ended, and the requests
//! whose mirrored MCP headers did not match their body.
//!
//! Labels are bounded: methods come from the MCP specification's fixed set and tool names
//! from [`crate::mcp::ToolLabels`] (the first N distinct names, the rest `other`).

use super::families::Families;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

/// Buckets of the per-method and per-tool duration histograms, in seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The MCP-aware metrics.
pub struct McpMetrics {
    /// Requests by MCP method (`none` for bodies that are not JSON-RPC) and status.
    pub requests_total: IntCounterVec,
    /// Request durations by MCP method.
    pub request_duration_seconds: HistogramVec,
    /// `tools/call` requests by tool and status.
    pub tool_calls_total: IntCounterVec,
    /// `tools/call` durations by tool.
    pub tool_call_duration_seconds: HistogramVec,
    /// Calls whose client left while they were in flight, by MCP method, tool and the
    /// wind-down outcome.
    pub abandoned_calls_total: IntCounterVec,
    /// Requests whose mirrored MCP headers were missing, mismatched or malformed, by what
    /// was wrong and what the route did (`refused` or `logged`).
    pub header_mismatches_total: IntCounterVec,
}

impl McpMetrics {
    /// Creates the metrics, each registered in `families`.
    pub fn register(families: &mut Families) -> Self {
        Self {
            requests_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_mcp_requests_total",
                    "Requests by MCP method (none: not JSON-RPC; other: outside the specification) and response status.",
                ),
                &["mcp_method", "status"],
            )
            .expect("valid metric")),
            request_duration_seconds: families.add(HistogramVec::new(
                HistogramOpts::new(
                    "mcp_edge_mcp_request_duration_seconds",
                    "Time from request head to the end of the response, by MCP method.",
                )
                .buckets(DURATION_BUCKETS.to_vec()),
                &["mcp_method"],
            )
            .expect("valid metric")),
            tool_calls_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_tool_calls_total",
                    "tools/call requests by tool (the first N distinct names; the rest are other) and response status.",
                ),
                &["tool", "status"],
            )
            .expect("valid metric")),
            tool_call_duration_seconds: families.add(HistogramVec::new(
                HistogramOpts::new(
                    "mcp_edge_tool_call_duration_seconds",
                    "Time from request head to the end of the response of tools/call, by tool.",
                )
                .buckets(DURATION_BUCKETS.to_vec()),
                &["tool"],
            )
            .expect("valid metric")),
            abandoned_calls_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_abandoned_calls_total",
                    "Calls whose client left while they were in flight, by MCP method, tool (empty unless tools/call) and wind-down outcome: the tools whose handlers outlive their clients.",
                ),
                &["mcp_method", "tool", "outcome"],
            )
            .expect("valid metric")),
            header_mismatches_total: families.add(IntCounterVec::new(
                Opts::new(
                    "mcp_edge_mcp_header_mismatches_total",
                    "Requests whose mirrored MCP headers (MCP-Protocol-Version, Mcp-Method, Mcp-Name) were missing, mismatched or malformed, by problem and action (refused: routes[].mcp_headers enforce; logged: log).",
                ),
                &["problem", "action"],
            )
            .expect("valid metric")),
        }
    }
}
