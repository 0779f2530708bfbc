//! MCP 2026-07-28 at the edge with the official TypeScript SDK v2 on both ends: the client
//! (`@modelcontextprotocol/client`, pinned to 2026-07-28) and a stateless server
//! (`@modelcontextprotocol/server` under `createMcpHandler`), with the real binary between
//! them (`tests/node/modern_client.mjs`, `tests/node/modern_server.mjs`).
//!
//! Three SDK clients in turn, through a route that hides `admin_*` and caches lists:
//! - every request's mirrored headers are validated, and none is refused for them;
//! - `tools/list` lacks the hidden tool, and a call to it is refused before the server;
//! - the second client's `tools/list` comes from the edge's cache (the server marks it
//!   `public` with a `ttlMs`);
//! - the second client's `subscriptions/listen` stream carries the server's
//!   `notifications/tools/list_changed`; closing it leaves nothing parked or abandoned;
//! - that change empties the cache: the third client's `tools/list` reaches the server.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::edge::Edge;
use support::mcp_2026::edge_in_front_of;
use support::node::{self, NodeServer};

/// The server's output, read until it contains `needle` (its lines arrive through a pipe)
/// or 5 s passed.
fn server_output_until(server: &NodeServer, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut output = String::new();
    loop {
        output.push_str(&server.log());
        if output.contains(needle) || Instant::now() > deadline {
            return output;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs one SDK client (a new process) against `url`; `announce` adds the listen stream
/// and the announced change. Asserts what every run must see.
fn run_client(url: &str, announce: bool, edge: &Edge) -> Value {
    let mut args = vec!["--url", url, "--wait-ms", "5000"];
    if announce {
        args.push("--announce");
    }
    let summary = node::run_json("modern_client.mjs", &args, Duration::from_secs(60));
    let context = || format!("{summary}\n{}", edge.log());
    assert_eq!(summary["error"], Value::Null, "{}", context());
    assert_eq!(summary["protocol"], "2026-07-28", "{}", context());
    assert_eq!(summary["echo"], "through the edge", "{}", context());
    // Exposure: the hidden tool is absent from the list and refused on call.
    assert_eq!(
        summary["tools"],
        json!(["echo", "touch_tools"]),
        "{}",
        context()
    );
    assert_eq!(summary["admin_result"], Value::Null, "{}", context());
    assert_eq!(summary["admin_error"]["code"], -32602, "{}", context());
    summary
}

/// How many lines of the server's output are `line`.
fn count_lines(output: &str, line: &str) -> usize {
    output.lines().filter(|seen| *seen == line).count()
}

#[test]
fn the_typescript_sdk_speaking_2026_07_28_is_validated_filtered_cached_and_notified() {
    let script = node::script("modern_server.mjs");
    let server = NodeServer::start(&node::node(), &[script.to_str().expect("UTF-8 path")]);
    // The route hides `admin_*`, caches lists and enforces the mirrored headers.
    let edge = edge_in_front_of(
        server.addr,
        "    mcp_headers: enforce\n    expose:\n      tools:\n        deny: [\"admin_*\"]\n    list_cache: {}\n",
    );
    let url = format!("{}/mcp", edge.base_url());
    let mut seen = String::new();

    // A first client: its `tools/list` reaches the server, and the answer is kept.
    run_client(&url, false, &edge);
    seen.push_str(&server_output_until(&server, "CALL echo"));
    assert_eq!(count_lines(&seen, "REQUEST POST tools/list"), 1, "{seen}");

    // A second client, announcing a change: its `tools/list` comes from the edge's cache
    // (the entry is `public`), and its listen stream carries the server's
    // `notifications/tools/list_changed`.
    let announced = run_client(&url, true, &edge);
    assert_eq!(announced["acknowledged"], true, "{announced}");
    assert_eq!(
        announced["list_changed"],
        true,
        "{announced}\n{}",
        edge.log()
    );
    seen.push_str(&server_output_until(&server, "CALL touch_tools"));
    assert_eq!(count_lines(&seen, "REQUEST POST tools/list"), 1, "{seen}");
    assert_eq!(edge.metric("mcp_edge_list_cache_hits_total{"), 1.0);

    // A third client: the change emptied the cache, so its `tools/list` reaches the server.
    run_client(&url, false, &edge);
    let deadline = Instant::now() + Duration::from_secs(5);
    while count_lines(&seen, "CALL echo") < 3 && Instant::now() < deadline {
        seen.push_str(&server_output_until(&server, "CALL echo"));
    }
    assert_eq!(count_lines(&seen, "REQUEST POST tools/list"), 2, "{seen}");
    assert_eq!(
        edge.metric("mcp_edge_list_cache_evictions_total{reason=\"list_changed\""),
        1.0
    );
    // The hidden tool never reached the server.
    assert!(!seen.contains("CALL admin_reset"), "{seen}");

    // Every SDK request passed the header check, labelled from its validated headers.
    let log = edge.log_until("target=touch_tools");
    for method in [
        "server/discover",
        "tools/list",
        "tools/call target=echo",
        "subscriptions/listen",
    ] {
        let lines: Vec<&str> = log
            .lines()
            .filter(|line| line.contains(&format!("mcp_method={method} ")))
            .collect();
        assert!(!lines.is_empty(), "no access log line for {method}\n{log}");
        for line in lines {
            assert!(
                line.contains("mcp_version=2026-07-28 mcp_labels=headers"),
                "{line}"
            );
        }
    }
    assert_eq!(
        edge.metric("mcp_edge_mcp_header_mismatches_total{"),
        0.0,
        "{log}"
    );

    // The closed subscription ended as a standing stream: nothing wound down or parked.
    let counted = "mcp_edge_mcp_requests_total{mcp_method=\"subscriptions/listen\"";
    assert_eq!(edge.wait_metric(counted, 1.0), 1.0, "{log}");
    let (_, listed) = edge.admin_get("/streams");
    let listed: Value = serde_json::from_str(&listed).expect("/streams is JSON");
    assert_eq!(listed["parked"], 0, "{listed}");
    assert_eq!(listed["count"], 0, "{listed}");
    assert_eq!(edge.metric("mcp_edge_abandoned_calls_total{"), 0.0);
    assert_eq!(
        edge.metric("mcp_edge_cleanup_total{outcome=\"parked\"}"),
        0.0
    );
}
