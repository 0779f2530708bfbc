//! MCP 2026-07-28 at the edge, end to end with the real binary.
//!
//! - `subscriptions/listen` streams are standing streams: clients that subscribe and leave
//!   leave nothing parked and no abandoned call, and the upstream sees each stream closed
//!   within a second; a `notifications/tools/list_changed` reaches its subscriber; open
//!   ones are listed in `/streams` as `listen`.
//! - The mirrored headers (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) are checked
//!   against the body: a table of bad requests, each `400` with JSON-RPC error -32020 and
//!   the request's id, none seen by the upstream; `log` forwards and counts; older
//!   versions' headers are never checked.
//! - Good requests are forwarded: the Python SDK (`mcp` 2.x, which speaks 2026-07-28)
//!   with its headers validated, and the TypeScript SDK v1 (1.32.2, which speaks
//!   2025-11-25 and older) unvalidated. The TypeScript SDK v2, which speaks 2026-07-28,
//!   has its own file: `e2e_mcp_2026_typescript.rs`.
//!
//! The raw requests follow the specification's transports page: no SDK sends malformed
//! headers, and the upstream must be scripted to see exactly what reached it.

mod support;

use serde_json::Value;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::http::Client;
use support::mcp_2026::edge_in_front_of;
use support::metrics::labelled;
use support::python::{sdk_client_with, Sdk, SdkServer, Transport};
use support::upstream::{Request, Upstream};

const V: &str = "2026-07-28";

/// A 2026-07-28 request body.
fn body(id: u64, method: &str, params: Value) -> String {
    let mut params = params;
    params["_meta"] = serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

/// A recording upstream: answers every POST with a JSON result, except
/// `subscriptions/listen`, answered with an event stream (acknowledgement, then
/// `notifications/tools/list_changed`) held open until the edge closes it; the instant of
/// each such close is sent on the returned channel.
fn recording_upstream() -> (Upstream, Arc<Mutex<Vec<Request>>>, mpsc::Receiver<Instant>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (closed, closes) = mpsc::channel();
    let closed = Mutex::new(closed);
    let record = seen.clone();
    let upstream = Upstream::start(move |mut conn| {
        while let Some(request) = conn.read_request() {
            record.lock().unwrap().push(request.clone());
            let message: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let id = message["id"].clone();
            if message["method"] == "subscriptions/listen" {
                let tag = serde_json::json!({"io.modelcontextprotocol/subscriptionId": id});
                let ack = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged", "params": {"_meta": tag, "notifications": {"toolsListChanged": true}}});
                let changed = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed", "params": {"_meta": tag}});
                let _ = conn.start_event_stream();
                let _ = conn.chunk(format!("event: message\ndata: {ack}\n\n").as_bytes());
                let _ = conn.chunk(format!("event: message\ndata: {changed}\n\n").as_bytes());
                conn.wait_closed();
                let _ = closed.lock().unwrap().send(Instant::now());
                return;
            }
            let answer = serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {"resultType": "complete", "content": []}});
            if conn
                .respond(200, "application/json", answer.to_string().as_bytes())
                .is_err()
            {
                return;
            }
        }
    });
    (upstream, seen, closes)
}

/// Sends a POST with `headers` (plus Host, Content-Type, Accept).
fn post(client: &mut Client, headers: &[(&str, &str)], body: &str) {
    let mut all = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    all.extend_from_slice(headers);
    client.send("POST", "/mcp", &all, body.as_bytes());
}

fn listen_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", "subscriptions/listen"),
    ]
}

#[test]
fn listen_streams_left_by_their_clients_are_closed_at_once_never_parked_nor_abandoned() {
    const CLIENTS: u64 = 12;
    let (upstream, _seen, closes) = recording_upstream();
    let edge = edge_in_front_of(upstream.addr, "");
    let mut clients = Vec::new();
    for id in 0..CLIENTS {
        let mut client = Client::connect(edge.listen);
        let listen = body(
            id,
            "subscriptions/listen",
            serde_json::json!({"notifications": {"toolsListChanged": true}}),
        );
        post(&mut client, &listen_headers(), &listen);
        let head = client.read_head();
        assert_eq!(head.status, 200, "{head:?}\n{}", edge.log());
        assert_eq!(head.header("content-type"), Some("text/event-stream"));
        let mut pending = Vec::new();
        let ack = client.read_event(&mut pending).expect("acknowledgement");
        assert!(
            ack.contains("notifications/subscriptions/acknowledged"),
            "{ack}"
        );
        // The change notification reaches the subscriber through the edge.
        let changed = client.read_event(&mut pending).expect("list_changed");
        assert!(
            changed.contains("notifications/tools/list_changed"),
            "{changed}"
        );
        clients.push(client);
    }
    let (_, listed) = edge.admin_get("/streams");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let listens = listed["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|stream| stream["kind"] == "listen")
        .count();
    assert_eq!(listens as u64, CLIENTS, "{listed}");

    let left = Instant::now();
    drop(clients);
    for n in 0..CLIENTS {
        let closed = closes
            .recv_timeout(Duration::from_secs(1).saturating_sub(left.elapsed()))
            .unwrap_or_else(|_| {
                panic!(
                    "{n} of {CLIENTS} upstream streams closed within 1 s\n{}",
                    edge.log()
                )
            });
        assert!(closed.duration_since(left) < Duration::from_secs(1));
    }
    // Each exchange ended (it is counted when it ends) well before the 2 s task-group
    // deadline: nothing was wound down, parked or abandoned.
    let counted = "mcp_edge_mcp_requests_total{mcp_method=\"subscriptions/listen\"";
    assert_eq!(edge.wait_metric(counted, CLIENTS as f64), CLIENTS as f64);
    let (_, listed) = edge.admin_get("/streams");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["parked"], 0, "{listed}");
    assert_eq!(listed["count"], 0, "{listed}");
    let metrics = edge.admin_get("/metrics").1;
    assert_eq!(
        edge.metric("mcp_edge_abandoned_calls_total{"),
        0.0,
        "{metrics}"
    );
    assert_eq!(
        edge.metric("mcp_edge_cleanup_total{outcome=\"parked\"}"),
        0.0
    );
    assert_eq!(
        edge.metric("mcp_edge_cleanup_total{outcome=\"deadline_exceeded\"}"),
        0.0
    );
}

/// Request headers, as names and values.
type Headers = Vec<(&'static str, &'static str)>;

/// A `tools/call` of `name` with every mirrored header right, as a list to spoil.
fn call_headers(name: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("MCP-Protocol-Version", V),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", name),
    ]
}

fn without(
    headers: Vec<(&'static str, &'static str)>,
    name: &str,
) -> Vec<(&'static str, &'static str)> {
    headers.into_iter().filter(|(n, _)| *n != name).collect()
}

fn with(
    mut headers: Vec<(&'static str, &'static str)>,
    name: &'static str,
    value: &'static str,
) -> Vec<(&'static str, &'static str)> {
    headers.retain(|(n, _)| *n != name);
    headers.push((name, value));
    headers
}

#[test]
fn bad_mirrored_headers_are_refused_with_header_mismatch_and_never_reach_the_upstream() {
    let (upstream, seen, _closes) = recording_upstream();
    let edge = edge_in_front_of(upstream.addr, "");
    let call = |id: u64, name: &str| {
        body(
            id,
            "tools/call",
            serde_json::json!({"name": name, "arguments": {}}),
        )
    };
    let cases: Vec<(&str, Headers, String)> = vec![
        (
            "version missing",
            without(call_headers("search"), "MCP-Protocol-Version"),
            call(1, "search"),
        ),
        (
            "method missing",
            without(call_headers("search"), "Mcp-Method"),
            call(2, "search"),
        ),
        (
            "name missing",
            without(call_headers("search"), "Mcp-Name"),
            call(3, "search"),
        ),
        (
            "method mismatched",
            with(call_headers("search"), "Mcp-Method", "tools/list"),
            call(4, "search"),
        ),
        (
            "name mismatched",
            call_headers("search"),
            call(5, "delete_everything"),
        ),
        (
            "version mismatched",
            with(call_headers("search"), "MCP-Protocol-Version", "2025-11-25"),
            call(6, "search"),
        ),
        (
            "bad base64 sentinel",
            call_headers("=?base64?not*base64?="),
            call(7, "search"),
        ),
        (
            "non-canonical base64",
            call_headers("=?base64?SGVsbG9=?="),
            call(8, "Hello"),
        ),
        (
            "raw non-ASCII name",
            call_headers("Hello, 世界"),
            call(9, "Hello, 世界"),
        ),
        (
            "method sent twice",
            {
                let mut h = call_headers("search");
                h.push(("Mcp-Method", "tools/call"));
                h
            },
            call(10, "search"),
        ),
        (
            "listen without headers",
            vec![],
            body(11, "subscriptions/listen", serde_json::json!({})),
        ),
        (
            "resource uri mismatched",
            vec![
                ("MCP-Protocol-Version", V),
                ("Mcp-Method", "resources/read"),
                ("Mcp-Name", "file:///public"),
            ],
            body(
                12,
                "resources/read",
                serde_json::json!({"uri": "file:///etc/shadow"}),
            ),
        ),
    ];
    for (case, headers, request) in &cases {
        let mut client = Client::connect(edge.listen);
        post(&mut client, headers, request);
        let head = client.read_head();
        let answer = client.read_body(&head);
        assert_eq!(
            head.status,
            400,
            "{case}: {}",
            String::from_utf8_lossy(&answer)
        );
        assert_eq!(
            head.header("x-mcp-edge-error"),
            Some("mcp_header_mismatch"),
            "{case}"
        );
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        let sent: Value = serde_json::from_str(request).unwrap();
        assert_eq!(answer["error"]["code"], -32020, "{case}: {answer}");
        assert_eq!(answer["id"], sent["id"], "{case}: {answer}");
    }
    // A control character cannot even be parsed as a header: a 400 from the head parser.
    let mut client = Client::connect(edge.listen);
    post(
        &mut client,
        &call_headers("sea\x01rch"),
        &call(13, "sea\u{1}rch"),
    );
    assert_eq!(client.read_head().status, 400, "control character");

    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
    let refused = cases.len() as f64;
    assert_eq!(
        edge.metric("mcp_edge_refusals_total{kind=\"mcp_header_mismatch\"}"),
        refused
    );
    assert_eq!(
        edge.metric("mcp_edge_mcp_header_mismatches_total{"),
        refused
    );

    // The good ones pass, the base64 sentinel decoded; their labels come from validated
    // headers.
    let mut client = Client::connect(edge.listen);
    let (head, _) = {
        post(&mut client, &call_headers("search"), &call(20, "search"));
        let head = client.read_head();
        let answer = client.read_body(&head);
        (head, answer)
    };
    assert_eq!(head.status, 200);
    post(
        &mut client,
        &call_headers("=?base64?SGVsbG8sIOS4lueVjA==?="),
        &call(21, "Hello, 世界"),
    );
    let head = client.read_head();
    client.read_body(&head);
    assert_eq!(head.status, 200);
    assert_eq!(seen.lock().unwrap().len(), 2);
    let log = edge.log_until("mcp_version=2026-07-28 mcp_labels=headers");
    assert!(
        log.contains("mcp_version=2026-07-28 mcp_labels=headers"),
        "{log}"
    );
}

#[test]
fn log_mode_forwards_and_counts_and_older_versions_are_never_checked() {
    let (upstream, seen, _closes) = recording_upstream();
    let edge = edge_in_front_of(upstream.addr, "    mcp_headers: log\n");
    let mut client = Client::connect(edge.listen);
    let spoiled = with(call_headers("search"), "Mcp-Name", "other");
    post(
        &mut client,
        &spoiled,
        &body(1, "tools/call", serde_json::json!({"name": "search"})),
    );
    let head = client.read_head();
    client.read_body(&head);
    assert_eq!(head.status, 200);
    assert_eq!(seen.lock().unwrap().len(), 1);
    let logged = [("action", "logged"), ("problem", "mismatched")];
    assert_eq!(
        labelled(&edge, "mcp_edge_mcp_header_mismatches_total", &logged),
        1.0
    );
    // A 2025-11-25 request's headers are not checked, and its labels come from the body.
    let (upstream, seen, _closes) = recording_upstream();
    let edge = edge_in_front_of(upstream.addr, "");
    let mut client = Client::connect(edge.listen);
    let legacy = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search"}}"#;
    post(
        &mut client,
        &[
            ("MCP-Protocol-Version", "2025-11-25"),
            ("Mcp-Method", "tools/list"),
            ("Mcp-Name", "x"),
        ],
        legacy,
    );
    let head = client.read_head();
    client.read_body(&head);
    assert_eq!(head.status, 200);
    assert_eq!(seen.lock().unwrap().len(), 1);
    let log = edge.log_until("mcp_method=tools/call target=search jsonrpc_id=3 mcp_labels=body");
    assert!(
        log.contains("mcp_method=tools/call target=search jsonrpc_id=3 mcp_labels=body"),
        "{log}"
    );
}

#[test]
fn the_python_sdk_speaking_2026_07_28_is_validated_and_forwarded() {
    let server = SdkServer::start_with(
        Sdk::V2,
        "interop_server.py",
        &["--transport", "streamable-http"],
    );
    let edge = edge_in_front_of(server.addr, "");
    let url = format!("{}{}", edge.base_url(), Transport::StreamableHttp.path());
    let summary = sdk_client_with(Sdk::V2, Transport::StreamableHttp, &url, "auto");
    assert_eq!(summary["add"], "5", "{summary}\n{}", edge.log());
    let log = edge.log_until("mcp_method=tools/call target=add");
    assert!(log.contains("mcp_method=tools/call target=add"), "{log}");
    assert!(
        log.contains("mcp_version=2026-07-28 mcp_labels=headers"),
        "{log}"
    );
    assert_eq!(
        edge.metric("mcp_edge_mcp_header_mismatches_total{"),
        0.0,
        "{log}"
    );
}

#[test]
fn the_typescript_sdk_speaking_2025_11_25_is_forwarded_unchecked() {
    use support::node::{self, NodeServer};
    let script = node::script("announce_server.cjs");
    let server = NodeServer::start(&node::node(), &[script.to_str().expect("UTF-8 path")]);
    let edge = edge_in_front_of(server.addr, "");
    let url = format!("{}/mcp", edge.base_url());
    let summary = node::run_json(
        "announce_client.cjs",
        &["--url", &url, "--sessions", "3", "--wait-ms", "1000"],
        Duration::from_secs(60),
    );
    assert_eq!(summary["errors"], 0, "{summary}\n{}", edge.log());
    assert_eq!(summary["sessions"], 3, "{summary}");
    assert_eq!(
        edge.metric("mcp_edge_refusals_total{kind=\"mcp_header_mismatch\"}"),
        0.0
    );
    let log = edge.log_until("mcp_method=tools/call target=announce");
    assert!(
        log.contains("mcp_method=tools/call target=announce"),
        "{log}"
    );
}
