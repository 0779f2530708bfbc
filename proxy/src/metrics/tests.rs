//! The registry: every family declared once, the fixed outcomes zeroed.

use super::*;

#[test]
fn render_includes_design_metric_names() {
    let metrics = Metrics::new();
    metrics
        .requests_total
        .with_label_values(&["/", "200"])
        .inc();
    metrics
        .sse_guard_closed_total
        .with_label_values(&["rapid_yield"])
        .inc();
    metrics
        .cleanup_total
        .with_label_values(&["completed"])
        .inc();
    metrics
        .mcp
        .requests_total
        .with_label_values(&["tools/call", "200"])
        .inc();
    let text = String::from_utf8(metrics.render()).unwrap();
    for name in [
        "mcp_edge_requests_total",
        "mcp_edge_sse_streams_active",
        "mcp_edge_sse_guard_closed_total",
        "mcp_edge_cleanup_total",
        "mcp_edge_cancel_cap_terminated_total",
        "mcp_edge_worker_recycles_total",
        "mcp_edge_config_reloads_total",
        "mcp_edge_config_generation",
        "mcp_edge_mcp_requests_total",
        "mcp_edge_build_info",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
        "mcp_edge_client_connections_closed_total",
        "mcp_edge_client_connections_active",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

#[test]
fn fresh_metrics_declare_every_family_once_and_zero_the_fixed_outcomes() {
    let text = String::from_utf8(Metrics::new().render()).unwrap();
    for family in [
        "mcp_edge_requests_total counter",
        "mcp_edge_request_duration_seconds histogram",
        "mcp_edge_upstream_errors_total counter",
        "mcp_edge_upstream_recycles_total counter",
        "mcp_edge_upstream_server_recycling gauge",
        "mcp_edge_upstream_ejections_total counter",
        "mcp_edge_upstream_server_available gauge",
        "mcp_edge_abandoned_calls_total counter",
        "mcp_edge_tool_call_duration_seconds histogram",
        "mcp_edge_parked_ended_total counter",
    ] {
        let line = format!("# TYPE {family}\n");
        assert_eq!(text.matches(&line).count(), 1, "{line} in:\n{text}");
    }
    for series in [
        "mcp_edge_cleanup_total{outcome=\"deadline_exceeded\"} 0",
        "mcp_edge_cleanup_total{outcome=\"pool_standing_stream_closed\"} 0",
        "mcp_edge_sse_guard_closed_total{reason=\"send_timeout\"} 0",
        "mcp_edge_parked_ended_total{outcome=\"closed_age_bound\"} 0",
    ] {
        assert!(text.contains(series), "{series} missing from:\n{text}");
    }
}
