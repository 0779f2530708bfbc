//! HTTP conformance at the edge, through the real binary: raw clients writing exact bytes,
//! a recording upstream that captures what reached it. Request head checks (Host,
//! Transfer-Encoding, Expect), `100 Continue`, headers a client cannot strip with
//! `Connection`, the forwarding headers, what refusals disclose, and resets.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::edge::Edge;
use support::http::{Client, Head};
use support::upstream::{refusing_addr, Conn, Request, Upstream};

/// How long a test waits for something that should be prompt.
const PROMPT: Duration = Duration::from_secs(5);

/// An upstream that answers every request with `{"ok":true}` and hands each request, as
/// received, to the test.
fn recording_upstream() -> (Upstream, Receiver<Request>) {
    let (record, recorded) = mpsc::channel();
    let record = Mutex::new(record);
    let upstream = Upstream::start(move |mut conn: Conn| {
        while let Some(request) = conn.read_request() {
            let _ = record.lock().unwrap().send(request);
            if conn
                .respond(200, "application/json", b"{\"ok\":true}")
                .is_err()
            {
                return;
            }
        }
    });
    (upstream, recorded)
}

/// The next request the upstream received.
fn received(recorded: &Receiver<Request>) -> Request {
    recorded
        .recv_timeout(PROMPT)
        .expect("the upstream received the request")
}

/// Writes `bytes` on a new connection and reads one response.
fn raw_exchange(edge: &Edge, bytes: &[u8]) -> (Head, Vec<u8>) {
    let mut client = Client::connect(edge.listen);
    client.stream().write_all(bytes).unwrap();
    let head = client.read_head();
    let body = client.read_body(&head);
    (head, body)
}

fn edge_with_server(upstream: SocketAddr, server_lines: &str) -> Edge {
    Edge::start_yaml(|ports| {
        format!(
            "{}upstreams:\n  main:\n    servers: [\"{upstream}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\n",
            ports.preamble_with(server_lines)
        )
    })
}

#[test]
fn connection_cannot_strip_end_to_end_headers() {
    let (upstream, recorded) = recording_upstream();
    let edge = Edge::start(upstream.addr, "");
    let (head, _) = raw_exchange(
        &edge,
        b"POST /mcp HTTP/1.1\r\nHost: mcp.test\r\nAuthorization: Bearer t\r\n\
          Mcp-Session-Id: s1\r\nContent-Type: application/json\r\nX-Private: hop\r\n\
          Connection: Host, Authorization, Mcp-Session-Id, Content-Type, Content-Length, X-Forwarded-For, X-Private\r\n\
          Content-Length: 2\r\n\r\n{}",
    );
    assert_eq!(head.status, 200);
    let request = received(&recorded);
    assert_eq!(request.header("host"), Some("mcp.test"));
    assert_eq!(request.header("authorization"), Some("Bearer t"));
    assert_eq!(request.header("mcp-session-id"), Some("s1"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("content-length"), Some("2"));
    assert_eq!(request.body, b"{}");
    assert_eq!(request.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(
        request.header("x-private"),
        None,
        "a nominated header is dropped"
    );
    assert_eq!(request.header("connection"), None);
}

#[test]
fn chunked_twice_is_a_400_that_reaches_no_upstream() {
    let (upstream, _recorded) = recording_upstream();
    let edge = Edge::start(upstream.addr, "");
    for framing in [
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
    ] {
        let request =
            format!("POST /mcp HTTP/1.1\r\nHost: mcp.test\r\n{framing}\r\n2\r\n{{}}\r\n0\r\n\r\n");
        let (head, _) = raw_exchange(&edge, request.as_bytes());
        assert_eq!(head.status, 400, "{framing:?}");
        assert_eq!(head.header("x-mcp-edge-error"), Some("bad_request"));
        assert_eq!(head.header("connection"), Some("close"));
    }
    let (head, _) = raw_exchange(
        &edge,
        b"POST /mcp HTTP/1.1\r\nHost: mcp.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    );
    assert_eq!(
        head.status, 501,
        "a transfer coding the proxy does not decode"
    );
    assert_eq!(upstream.connections(), 0);
}

#[test]
fn a_missing_invalid_or_repeated_host_is_a_400_that_reaches_no_upstream() {
    let (upstream, recorded) = recording_upstream();
    let edge = Edge::start(upstream.addr, "");
    for hosts in ["", "Host: a b\r\n", "Host: \r\n", "Host: a\r\nHost: b\r\n"] {
        let request = format!("GET /mcp HTTP/1.1\r\n{hosts}\r\n");
        let (head, _) = raw_exchange(&edge, request.as_bytes());
        assert_eq!(head.status, 400, "{hosts:?}");
    }
    assert_eq!(upstream.connections(), 0);
    // HTTP/1.0 may omit Host.
    let (head, _) = raw_exchange(&edge, b"GET /mcp HTTP/1.0\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_eq!(received(&recorded).target, "/mcp");
}

#[test]
fn expect_100_continue_gets_the_go_ahead_before_the_body_and_is_not_forwarded() {
    let (upstream, recorded) = recording_upstream();
    let edge = Edge::start(upstream.addr, "");
    let mut client = Client::connect(edge.listen);
    client.stream().set_read_timeout(Some(PROMPT)).unwrap();
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: mcp.test\r\nContent-Type: application/json\r\n\
         Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    client.stream().write_all(head.as_bytes()).unwrap();
    // Only the head was sent: the client waits for the go-ahead, as curl does.
    let started = Instant::now();
    assert_eq!(client.read_head().status, 100);
    assert!(started.elapsed() < Duration::from_millis(500));
    client.stream().write_all(body).unwrap();
    let response = client.read_head();
    assert_eq!(response.status, 200);
    assert_eq!(client.read_body(&response), b"{\"ok\":true}");
    let request = received(&recorded);
    assert_eq!(request.body, body);
    assert_eq!(
        request.header("expect"),
        None,
        "the proxy met the expectation"
    );
    // The connection stays usable; a request without a body gets no 100.
    let (head, _) = client.exchange("GET", "/mcp", &[("Expect", "100-continue")], b"");
    assert_eq!(head.status, 200);
}

#[test]
fn an_oversized_body_announced_with_expect_is_refused_without_a_100() {
    let (upstream, _recorded) = recording_upstream();
    let edge = edge_with_server(upstream.addr, "  max_request_body_bytes: 16\n");
    let mut client = Client::connect(edge.listen);
    client
        .stream()
        .write_all(
            b"POST /mcp HTTP/1.1\r\nHost: mcp.test\r\nExpect: 100-continue\r\nContent-Length: 17\r\n\r\n",
        )
        .unwrap();
    assert_eq!(client.read_head().status, 413);
    assert_eq!(upstream.connections(), 0);
}

#[test]
fn an_expectation_other_than_100_continue_is_a_417() {
    let (upstream, _recorded) = recording_upstream();
    let edge = Edge::start(upstream.addr, "");
    let (head, _) = raw_exchange(
        &edge,
        b"POST /mcp HTTP/1.1\r\nHost: mcp.test\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}",
    );
    assert_eq!(head.status, 417);
    assert_eq!(head.header("x-mcp-edge-error"), Some("expectation_failed"));
    assert_eq!(upstream.connections(), 0);
}

#[test]
fn a_malformed_chunked_body_is_a_400_not_a_502() {
    let (upstream, _recorded) = recording_upstream();
    let edge = Edge::start(upstream.addr, "");
    let (head, _) = raw_exchange(
        &edge,
        b"POST /mcp HTTP/1.1\r\nHost: mcp.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(head.status, 400);
    assert_eq!(head.header("x-mcp-edge-error"), Some("malformed_request"));
    assert_eq!(upstream.connections(), 0);
}

const CLIENT_FORWARDING_HEADERS: &str = "X-Forwarded-For: 203.0.113.9\r\n\
    X-Forwarded-Proto: https\r\nX-Forwarded-Host: forged.test\r\n\
    Forwarded: for=203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\n";

#[test]
fn an_untrusted_client_forwarding_headers_are_replaced_by_the_proxy_own() {
    let (upstream, recorded) = recording_upstream();
    let edge = Edge::start(upstream.addr, "");
    let request =
        format!("GET /mcp HTTP/1.1\r\nHost: mcp.test:8080\r\n{CLIENT_FORWARDING_HEADERS}\r\n");
    let (head, _) = raw_exchange(&edge, request.as_bytes());
    assert_eq!(head.status, 200);
    let request = received(&recorded);
    let forwarding: Vec<(&str, &str)> = request
        .headers
        .iter()
        .filter(|(name, _)| {
            name.starts_with("x-forwarded") || name == "forwarded" || name == "x-real-ip"
        })
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    assert_eq!(
        forwarding,
        [
            ("x-forwarded-for", "127.0.0.1"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "mcp.test:8080"),
        ]
    );
}

#[test]
fn a_trusted_proxy_forwarding_headers_are_kept_and_the_peer_appended() {
    let (upstream, recorded) = recording_upstream();
    let edge = edge_with_server(upstream.addr, "  trusted_proxies: [\"127.0.0.0/8\"]\n");
    let request = format!("GET /mcp HTTP/1.1\r\nHost: mcp.test\r\n{CLIENT_FORWARDING_HEADERS}\r\n");
    let (head, _) = raw_exchange(&edge, request.as_bytes());
    assert_eq!(head.status, 200);
    let request = received(&recorded);
    let all = |name: &str| -> Vec<&str> {
        request
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(all("x-forwarded-for"), ["203.0.113.9, 127.0.0.1"]);
    assert_eq!(all("x-forwarded-proto"), ["https"]);
    assert_eq!(all("x-forwarded-host"), ["forged.test"]);
    assert_eq!(all("forwarded"), ["for=203.0.113.9"]);
    assert_eq!(all("x-real-ip"), ["203.0.113.9"]);
}

#[test]
fn a_502_tells_the_client_nothing_about_the_upstream() {
    // An upstream answering garbage: its bytes, the group's name and the server's address
    // are the log's, not the client's.
    let upstream = Upstream::start(|mut conn: Conn| {
        if conn.read_request().is_some() {
            let mut stream = conn.stream();
            let _ = stream.write_all(b"HTTP/1.1 2x0 SECRET-RAW-BYTES\r\nX: internal\r\n\r\n");
        }
    });
    let dead = refusing_addr();
    let edge = Edge::start_yaml(|ports| {
        format!(
            "{}upstreams:\n  internal-group:\n    servers: [\"{}\"]\n  dead-group:\n    servers: [\"{dead}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: internal-group\n  - match: {{path_prefix: /dead}}\n    upstream: dead-group\n",
            ports.preamble(),
            upstream.addr
        )
    });
    let rpc = br#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#;
    for (path, code, server) in [
        ("/mcp", "upstream_failed", upstream.addr),
        ("/dead/mcp", "upstream_unavailable", dead),
    ] {
        for body in [&rpc[..], b"plain"] {
            let mut client = Client::connect(edge.listen);
            let (head, answer) = client.exchange("POST", path, &[], body);
            assert_eq!(head.status, 502, "{path}");
            assert_eq!(head.header("x-mcp-edge-error"), Some(code));
            let answer = String::from_utf8_lossy(&answer);
            for secret in ["SECRET", "internal", "dead-group", &server.to_string()] {
                assert!(!answer.contains(secret), "{secret} disclosed: {answer}");
            }
            let request_id = head.header("x-mcp-edge-request-id").expect("request id");
            assert!(answer.contains(request_id), "{answer}");
            assert!(answer.contains(code), "{answer}");
            let log = edge.log();
            let line = log
                .lines()
                .find(|line| line.contains(request_id))
                .unwrap_or_else(|| panic!("no log line for {request_id}:\n{log}"));
            assert!(line.contains(&server.to_string()), "{line}");
            assert!(line.contains("WARN"), "{line}");
        }
    }
}

#[test]
fn client_resets_log_no_error() {
    // An upstream slow enough that some resets land while the exchange is in flight.
    let upstream = Upstream::start(|mut conn: Conn| {
        while conn.read_request().is_some() {
            std::thread::sleep(Duration::from_millis(20));
            if conn.respond(200, "application/json", b"{}").is_err() {
                return;
            }
        }
    });
    let edge = Edge::start(upstream.addr, "");
    let full = b"POST /mcp HTTP/1.1\r\nHost: mcp.test\r\nContent-Length: 2\r\n\r\n{}";
    let stages: [&[u8]; 4] = [
        b"",
        b"POST /mcp HTTP/1.1\r\nHost: mc",
        b"POST /mcp HTTP/1.1\r\nHost: mcp.test\r\nContent-Length: 10\r\n\r\n{}",
        full,
    ];
    const RESETS: usize = 400;
    for i in 0..RESETS {
        let stream = TcpStream::connect(edge.listen).unwrap();
        // The proxy may have answered or closed already: a failed write is fine.
        let _ = (&stream).write_all(stages[i % stages.len()]);
        if i % 8 == 3 {
            // Now and then wait for the exchange to reach the upstream.
            std::thread::sleep(Duration::from_millis(5));
        }
        reset(stream);
    }
    // The proxy still serves, and every reset was handled by then.
    let mut client = Client::connect(edge.listen);
    let (head, _) = client.exchange("POST", "/mcp", &[], b"{}");
    assert_eq!(head.status, 200);
    // A reset is the client's choice: neither an error of the proxy's nor a refusal.
    let log = edge.log();
    let noise: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("ERROR") || line.contains("refused request"))
        .collect();
    assert!(
        noise.is_empty(),
        "{} ERROR or refusal lines for {RESETS} resets, first: {:?}",
        noise.len(),
        noise.first()
    );
}

/// Closes `stream` with an RST (SO_LINGER 0) rather than a FIN.
fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}
