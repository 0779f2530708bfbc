//! The access log and the MCP-aware metrics, end to end: the real binary, a scripted
//! upstream, raw clients.
//!
//! - a tool call answered normally, and one whose client leaves before the answer, each
//!   get one access log line naming the call (method, tool, JSON-RPC id), its status (499
//!   when the client left first), how it ended and a keyed hash of the session id, never
//!   the id itself;
//! - the metrics count them by MCP method and tool, and the abandoned call by tool and
//!   wind-down outcome;
//! - the log file is reopened on SIGUSR1 after a rotation.

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::edge::{Edge, Ports};
use support::http::Client;
use support::metrics::labelled;
use support::upstream::Upstream;

const SESSION_ID: &str = "session-secret-4f7c";

/// A tool call body.
fn tool_call(id: u32, tool: &str) -> Vec<u8> {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#)
        .into_bytes()
}

/// An edge with the access log at `log` in `format`, a cleanup deadline, and `/` routed
/// to `upstream`.
fn edge_with_access_log(upstream: SocketAddr, format: &str) -> Edge {
    Edge::start_yaml(move |ports: &Ports| {
        format!(
            "{}upstreams:\n  main:\n    servers: [\"{upstream}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\nfilters:\n  - cleanup_deadline: {{session_pool_cleanup_timeout: 5, task_group_cleanup_timeout: 5}}\nobservability:\n  access_log: {{format: {format}, path: {}/access.log}}\n",
            ports.preamble(),
            ports.dir.display()
        )
    })
}

/// The lines of `path` once it holds `count`, waiting up to 10 s.
fn wait_lines(path: &Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} holds {} lines, expected {count}:\n{text}",
            path.display(),
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An upstream answering tool calls: `fast` at once; `slow` only once `release` says so
/// (it reports on `arrived` when the call reached it).
fn tool_upstream(arrived: mpsc::Sender<()>, release: mpsc::Receiver<()>) -> Upstream {
    let arrived = Mutex::new(arrived);
    let release = Arc::new(Mutex::new(release));
    Upstream::start(move |mut conn| {
        while let Some(request) = conn.read_request() {
            let body = String::from_utf8_lossy(&request.body).to_string();
            if body.contains("\"slow\"") {
                let _ = arrived.lock().unwrap().send(());
                let _ = release
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(10));
            }
            let answer = br#"{"jsonrpc":"2.0","id":0,"result":{"content":[]}}"#;
            if conn.respond(200, "application/json", answer).is_err() {
                return;
            }
        }
    })
}

#[test]
fn access_log_lines_and_metrics_name_each_call_and_how_it_ended() {
    let (arrived_tx, arrived) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let upstream = tool_upstream(arrived_tx, release_rx);
    let edge = edge_with_access_log(upstream.addr, "json");
    let log_path = edge.dir.path().join("access.log");
    let headers = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-session-id", SESSION_ID),
    ];

    let mut client = Client::connect(edge.listen);
    client.send("POST", "/mcp", &headers, &tool_call(8, "fast"));
    let head = client.read_head();
    assert_eq!(head.status, 200);
    client.read_body(&head);

    let mut leaving = Client::connect(edge.listen);
    leaving.send("POST", "/mcp", &headers, &tool_call(7, "slow"));
    arrived
        .recv_timeout(Duration::from_secs(10))
        .expect("the slow call reached the upstream");
    drop(leaving);
    // The edge sees the departure and starts to wind the call down; then the upstream
    // answers, inside the cleanup deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !edge.log().contains("winding down an abandoned call") {
        assert!(Instant::now() < deadline, "no wind-down:\n{}", edge.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    release.send(()).unwrap();

    let lines = wait_lines(&log_path, 2);
    let parsed: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let fast = parsed
        .iter()
        .find(|line| line["target"] == "fast")
        .expect("a line for the fast call");
    assert_eq!(fast["status"], 200, "{fast}");
    assert_eq!(fast["end"], "completed", "{fast}");
    assert_eq!(fast["mcp_method"], "tools/call", "{fast}");
    assert_eq!(fast["jsonrpc_id"], "8", "{fast}");
    assert_eq!(fast["method"], "POST", "{fast}");
    assert_eq!(fast["path"], "/mcp", "{fast}");
    assert_eq!(fast["route"], "/", "{fast}");
    assert_eq!(fast["upstream"], upstream.addr.to_string(), "{fast}");
    assert!(fast["bytes_in"].as_u64().unwrap() > 0, "{fast}");
    assert!(fast["bytes_out"].as_u64().unwrap() > 0, "{fast}");
    assert!(fast["duration"].as_f64().is_some(), "{fast}");
    assert!(
        fast["client"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{fast}"
    );

    let slow = parsed
        .iter()
        .find(|line| line["target"] == "slow")
        .expect("a line for the abandoned call");
    assert_eq!(slow["status"], 499, "{slow}");
    assert_eq!(slow["end"], "client_gone", "{slow}");
    assert_eq!(slow["wind_down"], "completed", "{slow}");
    assert_eq!(slow["jsonrpc_id"], "7", "{slow}");

    let hash = fast["session"].as_str().expect("a session hash");
    assert_eq!(hash.len(), 16, "{fast}");
    assert_eq!(slow["session"], fast["session"], "one session, one hash");
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(!text.contains(SESSION_ID), "the session id leaked:\n{text}");

    let call = |tool: &str, status: &str| {
        labelled(
            &edge,
            "mcp_edge_tool_calls_total",
            &[("tool", tool), ("status", status)],
        )
    };
    assert_eq!(call("fast", "200"), 1.0);
    assert_eq!(call("slow", "499"), 1.0);
    assert_eq!(
        labelled(
            &edge,
            "mcp_edge_mcp_requests_total",
            &[("mcp_method", "tools/call")]
        ),
        2.0
    );
    assert_eq!(
        labelled(
            &edge,
            "mcp_edge_abandoned_calls_total",
            &[("tool", "slow"), ("outcome", "completed")]
        ),
        1.0
    );
    assert_eq!(
        labelled(&edge, "mcp_edge_abandoned_calls_total", &[("tool", "fast")]),
        0.0
    );
    assert_eq!(
        labelled(&edge, "mcp_edge_requests_total", &[("status", "499")]),
        1.0
    );
}

#[test]
fn the_access_log_is_reopened_on_sigusr1_after_a_rotation() {
    let (arrived_tx, _arrived) = mpsc::channel();
    let (_release, release_rx) = mpsc::channel();
    let upstream = tool_upstream(arrived_tx, release_rx);
    let edge = edge_with_access_log(upstream.addr, "text");
    let log_path = edge.dir.path().join("access.log");
    let call = |id: u32| {
        let mut client = Client::connect(edge.listen);
        client.send(
            "POST",
            "/mcp",
            &[("content-type", "application/json")],
            &tool_call(id, "fast"),
        );
        assert_eq!(client.read_head().status, 200);
    };

    call(1);
    let first = wait_lines(&log_path, 1);
    assert!(first[0].contains(" status=200 "), "{}", first[0]);
    assert!(first[0].contains(" mcp_method=tools/call"), "{}", first[0]);
    assert!(first[0].contains(" jsonrpc_id=1"), "{}", first[0]);

    let rotated = edge.dir.path().join("access.log.1");
    std::fs::rename(&log_path, &rotated).unwrap();
    edge.signal(libc::SIGUSR1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !edge.log().contains("SIGUSR1") {
        assert!(
            Instant::now() < deadline,
            "SIGUSR1 not handled:\n{}",
            edge.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    call(2);
    let after = wait_lines(&log_path, 1);
    assert!(after[0].contains(" jsonrpc_id=2"), "{}", after[0]);
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert_eq!(old.lines().count(), 1, "{old}");
    assert_eq!(
        edge.admin_get("/healthz").0,
        200,
        "SIGUSR1 must not end the process"
    );
}
