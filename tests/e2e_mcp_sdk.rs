//! End to end with the official Python MCP SDK: its client talks through the real
//! `mcp-edge` binary to its own server (both transports, both protocol eras) and to the
//! built-in demo server. Each case runs the whole scripted session of
//! `tests/python/sdk_client.py`: initialize, tools/list, add, countdown with progress over
//! SSE, ping, and the session's end.
//!
//! The first run installs the SDK into `target/mcp-edge-test-venv` (see `support::python`).

mod support;

use serde_json::Value;
use std::net::SocketAddr;
use support::edge::Edge;
use support::python::{sdk_client, SdkServer, Transport};

/// A filter chain whose `sse_guard` writes keep-alive comments into every quiet stream, so
/// the SDK sees comment lines between its events.
const CHATTY_SSE_GUARD: &str = "  - sse_guard: {send_timeout: 2, keepalive_interval: 0.2}\n";

/// Checks the client's summary of a handshake-era session.
fn assert_full_session(summary: &Value) {
    assert_tools_and_calls(summary);
    assert_eq!(summary["ping"], true, "{summary}");
}

/// Checks what every era has: the tools, `add` and the countdown's progress.
fn assert_tools_and_calls(summary: &Value) {
    let tools: Vec<&str> = summary["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {summary}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for tool in ["add", "countdown", "echo"] {
        assert!(tools.contains(&tool), "{tool} missing from {summary}");
    }
    assert_eq!(summary["add"], "5", "{summary}");
    assert_eq!(summary["progress"], 3, "{summary}");
}

/// The proxy URL of `transport`'s endpoint.
fn url(edge: &Edge, transport: Transport) -> String {
    format!("{}{}", edge.base_url(), transport.path())
}

#[test]
fn sdk_streamable_http_session_through_the_proxy() {
    let server = SdkServer::start(Transport::StreamableHttp);
    let edge = Edge::start(server.addr, "");
    let summary = sdk_client(
        Transport::StreamableHttp,
        &url(&edge, Transport::StreamableHttp),
        "legacy",
    );
    assert_full_session(&summary);
}

#[test]
fn sdk_legacy_sse_through_the_proxy() {
    let server = SdkServer::start(Transport::Sse);
    let edge = Edge::start(server.addr, CHATTY_SSE_GUARD);
    let summary = sdk_client(Transport::Sse, &url(&edge, Transport::Sse), "legacy");
    assert_full_session(&summary);
}

/// The 2.x client's default `auto` mode probes `server/discover` and, against a 2.x server,
/// speaks the stateless 2026-07-28 protocol (`Mcp-Method`/`Mcp-Name` headers, no session,
/// no ping). A 1.x SDK (via `MCP_EDGE_TEST_PYTHON`) does the handshake instead.
#[test]
fn sdk_auto_mode_through_the_proxy() {
    let server = SdkServer::start(Transport::StreamableHttp);
    let edge = Edge::start(server.addr, CHATTY_SSE_GUARD);
    let summary = sdk_client(
        Transport::StreamableHttp,
        &url(&edge, Transport::StreamableHttp),
        "auto",
    );
    assert_tools_and_calls(&summary);
    let sdk_major = summary["sdk"].as_str().and_then(|v| v.split('.').next());
    if sdk_major.is_some_and(|major| major != "1") {
        assert_eq!(summary["protocol"], "2026-07-28", "{summary}");
    } else {
        assert_eq!(summary["ping"], true, "{summary}");
    }
}

/// The built-in demo MCP server on its own runtime; stopped on drop.
struct DemoServer {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl DemoServer {
    fn start() -> DemoServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the demo server");
        let addr = listener.local_addr().expect("demo server address");
        runtime.spawn(mcp_edge::demo::mcp_server::serve(listener));
        DemoServer {
            addr,
            _runtime: runtime,
        }
    }
}

#[test]
fn demo_server_streamable_http_through_the_proxy() {
    let demo = DemoServer::start();
    let edge = Edge::start(demo.addr, "");
    let url = url(&edge, Transport::StreamableHttp);
    assert_full_session(&sdk_client(Transport::StreamableHttp, &url, "legacy"));
    // `auto` first probes `server/discover` without a session; the demo server refuses it
    // with 400 and the client falls back to the handshake.
    assert_full_session(&sdk_client(Transport::StreamableHttp, &url, "auto"));
}

#[test]
fn demo_server_legacy_sse_through_the_proxy() {
    let demo = DemoServer::start();
    let edge = Edge::start(demo.addr, CHATTY_SSE_GUARD);
    let summary = sdk_client(Transport::Sse, &url(&edge, Transport::Sse), "legacy");
    assert_full_session(&summary);
}
