//! The official Python SDK's legacy SSE client, through mcp-edge, in front of an upstream
//! that gzips its event stream whatever the client asked for (as ContextForge does). The
//! session stays silent for more than two `keepalive_interval`s and then calls again: the
//! edge must never write a keepalive comment into the compressed body (the client's
//! decoder would fail and the session die). The same session direct is the baseline.

mod support;

use support::edge::Edge;
use support::python::{sdk_client_args, Sdk, SdkServer, Transport};

/// The edge's `keepalive_interval`, in seconds, and the client's silence: 2.5 intervals.
const KEEPALIVE: &str = "1";
const IDLE: &str = "2.5";

#[test]
fn a_legacy_sdk_session_through_a_gzip_upstream_survives_a_silence_past_two_keepalives() {
    let server = SdkServer::start_with(Sdk::V2, "gzip_sse_server.py", &[]);
    let direct = format!("http://{}/sse", server.addr);
    let baseline = sdk_client_args(
        Sdk::V2,
        Transport::Sse,
        &direct,
        "legacy",
        &["--idle", IDLE],
    );
    assert_eq!(baseline["add"], "5", "direct: {baseline}");

    let filters = format!(
        "  - sse_guard: {{send_timeout: 10, keepalive_interval: {KEEPALIVE}}}\n  - cleanup_deadline: {{session_pool_cleanup_timeout: 1, task_group_cleanup_timeout: 1}}\n"
    );
    let edge = Edge::start(server.addr, &filters);
    let through = format!("{}/sse", edge.base_url());
    let summary = sdk_client_args(
        Sdk::V2,
        Transport::Sse,
        &through,
        "legacy",
        &["--idle", IDLE],
    );
    assert_eq!(
        summary["add"],
        "5",
        "through mcp-edge: {summary}\n{}",
        edge.log()
    );
    assert_eq!(summary["progress"], 3, "{summary}");
    // The compressed stream was relayed untouched, and counted.
    assert!(
        edge.metric("mcp_edge_encoded_event_streams_total") >= 1.0,
        "{}",
        edge.log()
    );
}
