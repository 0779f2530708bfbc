//! End to end with the official Python MCP SDK, both generations: `mcp` 2.x (`MCPServer`,
//! `mcp.Client`) and `mcp<2` (`FastMCP`, `ClientSession`). An SDK client talks through the
//! real `mcp-edge` binary to an SDK server, on streamable HTTP and legacy SSE, every
//! client/server pairing (2.x against 1.x and the reverse included), each under the
//! balanced and the aggressive profile's filter chain (read from `conf/`).
//!
//! Each case runs the scripted session of `tests/python/sdk_client.py`: initialize,
//! tools/list, tools/call (`add`), a tool streaming progress notifications (`countdown`),
//! ping, and the session's end. `tests/python/interop_server.py` logs every request that
//! reached the upstream, so the case also checks the GET stream and the DELETE that ends
//! a streamable HTTP session, and that stateless (2026-07-28) POSTs carry no session.
//! The built-in demo server is covered too. After every case, the alerting rules shipped in
//! `conf/prometheus/` must stay silent: normal sessions abandon no call.
//!
//! The first run installs the SDKs into `target/mcp-edge-test-venv{,-v1}` (see
//! `support::python`). Each case is its own test, so the harness runs them in parallel.

#[path = "support/profiles.rs"]
mod profiles;
mod support;

use profiles::Profile;
use serde_json::Value;
use std::net::SocketAddr;
use support::alerts;
use support::edge::Edge;
use support::python::{sdk_client, sdk_client_with, Sdk, SdkServer, Transport};

/// A filter chain whose `sse_guard` writes keep-alive comments into every quiet stream, so
/// the SDK sees comment lines between its events.
const CHATTY_SSE_GUARD: &str = "  - sse_guard: {send_timeout: 2, keepalive_interval: 0.2}\n";

/// How the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// The `initialize` handshake (and a session on streamable HTTP).
    Handshake,
    /// The 2.x client's `auto` mode against a 2.x server: stateless 2026-07-28 POSTs.
    Stateless,
}

/// Runs one case of the matrix and checks the client's summary and the server's log.
fn run_case(server_sdk: Sdk, transport: Transport, client_sdk: Sdk, style: Style, filters: &str) {
    let server = SdkServer::start_with(
        server_sdk,
        "interop_server.py",
        &["--transport", transport.arg()],
    );
    let edge = Edge::start(server.addr, filters);
    let mode = match style {
        Style::Handshake => "legacy",
        Style::Stateless => "auto",
    };
    let summary = sdk_client_with(client_sdk, transport, &url(&edge, transport), mode);
    assert_tools_and_calls(&summary);
    let log = server.log();
    let seen = |line: &str| log.lines().any(|logged| logged.starts_with(line));
    let context = format!(
        "{summary}\n--- server log\n{log}\n--- proxy log\n{}",
        edge.log()
    );
    match (style, transport) {
        (Style::Stateless, _) => {
            assert_eq!(summary["protocol"], "2026-07-28", "{context}");
            assert!(seen("REQ POST /mcp 200 session=no"), "{context}");
            assert!(!seen("REQ GET") && !seen("REQ DELETE"), "{context}");
            assert!(!log.contains("session=yes"), "{context}");
        }
        (Style::Handshake, Transport::StreamableHttp) => {
            assert_eq!(summary["ping"], true, "{context}");
            assert!(
                seen("REQ POST /mcp 200 session=no"),
                "initialize: {context}"
            );
            assert!(
                seen("REQ GET /mcp 200 session=yes"),
                "GET stream: {context}"
            );
            assert!(
                seen("REQ DELETE /mcp 200 session=yes"),
                "session end: {context}"
            );
        }
        (Style::Handshake, Transport::Sse) => {
            assert_eq!(summary["ping"], true, "{context}");
            assert!(seen("REQ GET /sse 200"), "{context}");
            assert!(seen("REQ POST /messages/ 202"), "{context}");
        }
    }
    // A normal session abandons nothing: the shipped alerts stay silent.
    alerts::assert_quiet(&edge, &context);
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

/// Checks the client's summary of a handshake-era session.
fn assert_full_session(summary: &Value) {
    assert_tools_and_calls(summary);
    assert_eq!(summary["ping"], true, "{summary}");
}

/// The proxy URL of `transport`'s endpoint.
fn url(edge: &Edge, transport: Transport) -> String {
    format!("{}{}", edge.base_url(), transport.path())
}

/// One module per pairing, with a test per profile.
macro_rules! matrix {
    ($($name:ident: $server:ident $transport:ident $client:ident $style:ident;)*) => {$(
        mod $name {
            use super::*;

            #[test]
            fn balanced() {
                let filters = Profile::Balanced.filters_yaml();
                run_case(Sdk::$server, Transport::$transport, Sdk::$client, Style::$style, &filters);
            }

            #[test]
            fn aggressive() {
                let filters = Profile::Aggressive.filters_yaml();
                run_case(Sdk::$server, Transport::$transport, Sdk::$client, Style::$style, &filters);
            }
        }
    )*};
}

matrix! {
    v2_server_v2_client_streamable_http: V2 StreamableHttp V2 Handshake;
    v2_server_v1_client_streamable_http: V2 StreamableHttp V1 Handshake;
    v1_server_v2_client_streamable_http: V1 StreamableHttp V2 Handshake;
    v1_server_v1_client_streamable_http: V1 StreamableHttp V1 Handshake;
    v2_server_v2_client_stateless_post: V2 StreamableHttp V2 Stateless;
    v2_server_v2_client_legacy_sse: V2 Sse V2 Handshake;
    v2_server_v1_client_legacy_sse: V2 Sse V1 Handshake;
    v1_server_v2_client_legacy_sse: V1 Sse V2 Handshake;
    v1_server_v1_client_legacy_sse: V1 Sse V1 Handshake;
}

/// Keep-alive comments between the events of legacy SSE, read by both client generations.
#[test]
fn legacy_sse_with_keepalive_comments() {
    for client in [Sdk::V2, Sdk::V1] {
        run_case(
            Sdk::V2,
            Transport::Sse,
            client,
            Style::Handshake,
            CHATTY_SSE_GUARD,
        );
    }
}

/// The 2.x client's `auto` mode against a 1.x server: the `server/discover` probe is
/// refused and the client falls back to the handshake, through the proxy.
#[test]
fn v2_auto_mode_falls_back_against_a_v1_server() {
    let server = SdkServer::start_with(
        Sdk::V1,
        "interop_server.py",
        &["--transport", "streamable-http"],
    );
    let edge = Edge::start(server.addr, &Profile::Balanced.filters_yaml());
    let summary = sdk_client_with(
        Sdk::V2,
        Transport::StreamableHttp,
        &url(&edge, Transport::StreamableHttp),
        "auto",
    );
    assert_full_session(&summary);
    assert_ne!(summary["protocol"], "2026-07-28", "{summary}");
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
