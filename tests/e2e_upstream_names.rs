//! Upstream names followed (`resolve_interval`), end to end: a name server the test
//! controls maps one name to loopback addresses (`127.0.0.1`, `127.0.0.2`, one port), and
//! the proxy follows it without a reload. An address that appears takes traffic only once
//! it answers a probe; one that vanishes stops taking traffic, and a session pinned to it
//! gets 404 (the MCP spec's answer for a lost session: the client starts a new one).

mod support;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use support::dns::NameServer;
use support::edge::Edge;
use support::http::Client;
use support::mcp_raw::AFFINITY_KEY;
use support::upstream::Upstream;

const NAME: &str = "pods.edge.test";
const FIRST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const SECOND: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// An upstream on `addr` that answers every request with its own address as the body, and
/// a new `Mcp-Session-Id` when the request has none.
fn pod(addr: SocketAddr) -> Upstream {
    Upstream::start_at(addr, |mut conn| {
        let me = conn.stream().local_addr().unwrap().ip().to_string();
        while let Some(request) = conn.read_request() {
            let session = request
                .header("mcp-session-id")
                .map_or_else(|| format!("session-on-{me}"), str::to_string);
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: {session}\r\nContent-Length: {}\r\n\r\n{me}",
                me.len()
            );
            if conn.stream().write_all(response.as_bytes()).is_err() {
                return;
            }
        }
    })
}

/// One POST through the proxy: status, the answering pod, the session id the client sees.
fn post(edge: &Edge, session: Option<&str>) -> (u16, String, Option<String>) {
    let mut client = Client::connect(edge.listen);
    let mut headers = vec![("content-type", "application/json")];
    if let Some(session) = session {
        headers.push(("mcp-session-id", session));
    }
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let (head, body) = client.exchange("POST", "/mcp", &headers, body);
    let session = head.header("mcp-session-id").map(str::to_string);
    (
        head.status,
        String::from_utf8_lossy(&body).into_owned(),
        session,
    )
}

/// The pods that answered `count` fresh requests.
fn answering(edge: &Edge, count: usize) -> std::collections::BTreeSet<String> {
    (0..count).map(|_| post(edge, None).1).collect()
}

/// Polls `condition` for up to 10 s.
fn eventually(what: &str, edge: &Edge, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not happen within 10 s; log:\n{}", edge.log());
}

#[test]
fn a_followed_name_adds_probed_servers_and_drains_vanished_ones() {
    let first = pod(SocketAddr::new(FIRST.into(), 0));
    let port = first.addr.port();
    let dns = NameServer::start(&format!("{NAME}."), &[FIRST]);
    let edge = Edge::start_yaml(|ports| {
        let resolver = format!("  resolver: {{nameservers: [\"{}\"]}}\n", dns.addr);
        format!(
            "{}upstreams:\n  mcp:\n    servers: [\"{NAME}:{port}\"]\n    resolve_interval: 0.2\n    affinity: {{key: {AFFINITY_KEY}}}\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: mcp\n",
            ports.preamble_with(&resolver)
        )
    });
    let (status, pod_name, session) = post(&edge, None);
    assert_eq!((status, pod_name.as_str()), (200, "127.0.0.1"));
    let pinned_to_first = session.expect("a sealed session id");

    // A new address that refuses connections is not admitted: no new generation.
    let generation = edge.metric("mcp_edge_config_generation");
    dns.set(&[FIRST, SECOND]);
    eventually("a probe of the new address", &edge, || {
        edge.log().contains("failed its probe")
    });
    assert_eq!(answering(&edge, 6), ["127.0.0.1".to_string()].into());
    assert_eq!(edge.metric("mcp_edge_config_generation"), generation);

    // Once it answers, it takes its share of new sessions.
    let _second = pod(SocketAddr::new(SECOND.into(), port));
    eventually("the new pod taking traffic", &edge, || {
        answering(&edge, 4).contains("127.0.0.2")
    });
    let shown: serde_json::Value = serde_json::from_str(&edge.admin_get("/config").1).unwrap();
    assert_eq!(
        shown["config"]["upstreams"]["mcp"]["servers"],
        serde_json::json!([format!("{NAME}:{port}")]),
        "the config is not rewritten"
    );
    assert!(shown["generation"].as_u64().unwrap() >= 2, "{shown}");

    // The first pod vanishes: new requests go to the second, and its session is lost.
    dns.set(&[SECOND]);
    eventually("the vanished pod leaving", &edge, || {
        answering(&edge, 4) == ["127.0.0.2".to_string()].into()
    });
    let (status, _, _) = post(&edge, Some(&pinned_to_first));
    assert_eq!(
        status, 404,
        "a session on a vanished server is a lost session"
    );
    // A reload does not count these changes.
    assert_eq!(edge.metric("mcp_edge_config_reloads_total"), 0.0);
    assert!(dns.queries() >= 3);
}
