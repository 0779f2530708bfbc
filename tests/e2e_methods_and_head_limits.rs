//! Requests the edge answers itself before routing, through the real binary: `CONNECT`
//! (and `TRACE` where the route does not allow it) get 405 with `Allow`, and a request
//! head over its field or total limit gets 431. None of them reaches the upstream; each
//! is counted by kind and logged with the request id the client was given.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use support::edge::Edge;
use support::http::{Client, Head};
use support::upstream::{Conn, Upstream};

/// An upstream that answers every request with 200.
fn answering_upstream() -> Upstream {
    Upstream::start(|mut conn: Conn| {
        while conn.read_request().is_some() {
            if conn
                .respond(200, "application/json", b"{\"ok\":true}")
                .is_err()
            {
                return;
            }
        }
    })
}

/// An edge in front of `upstream`: `/mcp` forwards TRACE, `/` does not.
fn edge(upstream: SocketAddr, server_lines: &str) -> Edge {
    Edge::start_yaml(|ports| {
        format!(
            "{}upstreams:\n  main:\n    servers: [\"{upstream}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\n  - match: {{path_prefix: /traced}}\n    upstream: main\n    allow_trace: true\n",
            ports.preamble_with(server_lines)
        )
    })
}

/// Writes `bytes` on a new connection and reads one response.
fn exchange(edge: &Edge, bytes: &[u8]) -> (Head, Vec<u8>) {
    let mut client = Client::connect(edge.listen);
    client.stream().write_all(bytes).unwrap();
    let head = client.read_head();
    let body = client.read_body(&head);
    (head, body)
}

/// A POST to `/mcp` carrying `headers` (each `name: value`, no line end).
fn post_with(headers: &[String]) -> Vec<u8> {
    let mut request = String::from("POST /mcp HTTP/1.1\r\nHost: mcp.test\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("Content-Length: 2\r\n\r\n{}");
    request.into_bytes()
}

#[test]
fn connect_is_answered_405_with_allow_and_never_reaches_the_upstream() {
    let upstream = answering_upstream();
    let edge = edge(upstream.addr, "");
    let (head, _) = exchange(
        &edge,
        b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n",
    );
    assert_eq!(head.status, 405);
    assert_eq!(head.header("x-mcp-edge-error"), Some("method_not_allowed"));
    let allow = head
        .header("allow")
        .expect("a 405 names the allowed methods");
    assert!(
        allow.contains("POST") && !allow.contains("CONNECT"),
        "{allow}"
    );
    assert_eq!(upstream.connections(), 0);
    assert_eq!(
        edge.metric("mcp_edge_refusals_total{kind=\"method_not_allowed\"}"),
        1.0
    );
    let request_id = head.header("x-mcp-edge-request-id").unwrap().to_string();
    assert!(edge.log().contains(&request_id), "{}", edge.log());
}

#[test]
fn trace_is_refused_unless_the_route_allows_it() {
    let upstream = answering_upstream();
    let edge = edge(upstream.addr, "");
    let (head, _) = exchange(&edge, b"TRACE /mcp HTTP/1.1\r\nHost: mcp.test\r\n\r\n");
    assert_eq!(head.status, 405);
    assert_eq!(upstream.connections(), 0);
    let (head, _) = exchange(&edge, b"TRACE /traced HTTP/1.1\r\nHost: mcp.test\r\n\r\n");
    assert_eq!(head.status, 200, "allow_trace: true forwards TRACE");
    assert_eq!(upstream.connections(), 1);
}

#[test]
fn an_oversized_header_field_or_head_is_a_431_that_reaches_no_upstream() {
    let upstream = answering_upstream();
    let edge = edge(upstream.addr, "");
    let token = |bytes: usize| format!("Authorization: Bearer {}", "t".repeat(bytes));
    // The case: a 64 KiB Authorization header.
    for headers in [
        vec![token(64 * 1024)],
        // One field just over the 8 KiB default.
        vec![token(8 * 1024)],
        // Many fields under the field limit, together over the 60 KiB head default.
        (0..10)
            .map(|i| format!("X-Filler-{i}: {}", "f".repeat(7 * 1024)))
            .collect(),
    ] {
        let (head, _) = exchange(&edge, &post_with(&headers));
        assert_eq!(head.status, 431);
        assert_eq!(
            head.header("x-mcp-edge-error"),
            Some("header_fields_too_large")
        );
        assert_eq!(head.header("connection"), Some("close"));
    }
    assert_eq!(upstream.connections(), 0);
    assert_eq!(
        edge.metric("mcp_edge_refusals_total{kind=\"header_fields_too_large\"}"),
        3.0
    );
    // Under both limits, a large token is forwarded.
    let (head, _) = exchange(&edge, &post_with(&[token(7 * 1024)]));
    assert_eq!(head.status, 200);
}

#[test]
fn the_head_limits_are_configurable() {
    let upstream = answering_upstream();
    let edge = edge(
        upstream.addr,
        "  max_request_header_field_bytes: 70000\n  max_request_headers_bytes: 100000\n",
    );
    let big = format!("Authorization: Bearer {}", "t".repeat(64 * 1024));
    let (head, _) = exchange(&edge, &post_with(&[big]));
    assert_eq!(head.status, 200);
    assert_eq!(upstream.connections(), 1);
}
