//! End-to-end proxying: the real binary between a raw client and scripted upstreams.

mod support;

use std::sync::mpsc;
use std::time::Duration;
use support::edge::Edge;
use support::http::Client;
use support::upstream::{refusing_addr, Conn, Upstream};

const JSON: (&str, &str) = ("Content-Type", "application/json");
const ACCEPT_BOTH: (&str, &str) = ("Accept", "application/json, text/event-stream");

/// An upstream that answers every request with a JSON echo of what it received.
fn echo_upstream() -> Upstream {
    Upstream::start(|mut conn: Conn| {
        while let Some(request) = conn.read_request() {
            let echo = serde_json::json!({
                "method": request.method,
                "target": request.target,
                "headers": request.headers,
                "body": String::from_utf8_lossy(&request.body),
            });
            if conn
                .respond(200, "application/json", echo.to_string().as_bytes())
                .is_err()
            {
                return;
            }
        }
    })
}

fn header<'a>(echo: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    echo["headers"]
        .as_array()?
        .iter()
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair[1].as_str())
}

#[test]
fn json_post_passes_host_and_mcp_headers_untouched() {
    let upstream = echo_upstream();
    let edge = Edge::start(upstream.addr, "");
    let mut client = Client::connect(edge.listen);
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let (head, response) = client.exchange(
        "POST",
        "/mcp",
        &[
            ("Host", "public.example:443"),
            JSON,
            ACCEPT_BOTH,
            ("Mcp-Session-Id", "session-123"),
            ("MCP-Protocol-Version", "2025-06-18"),
            ("Authorization", "Bearer secret"),
            ("Last-Event-ID", "17"),
        ],
        body,
    );
    assert_eq!(head.status, 200);
    let echo: serde_json::Value = serde_json::from_slice(&response).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["target"], "/mcp");
    assert_eq!(echo["body"].as_str(), std::str::from_utf8(body).ok());
    assert_eq!(header(&echo, "host"), Some("public.example:443"));
    assert_eq!(header(&echo, "mcp-session-id"), Some("session-123"));
    assert_eq!(header(&echo, "mcp-protocol-version"), Some("2025-06-18"));
    assert_eq!(header(&echo, "authorization"), Some("Bearer secret"));
    assert_eq!(header(&echo, "last-event-id"), Some("17"));

    // The client connection is kept alive: a second request on it works.
    let (head, _) = client.exchange("DELETE", "/mcp", &[("Mcp-Session-Id", "session-123")], b"");
    assert_eq!(head.status, 200);
    assert!(edge.wait_metric("mcp_edge_requests_total{route=\"/\",status=\"200\"}", 2.0) >= 2.0);
}

#[test]
fn delete_reaches_the_upstream_as_delete() {
    let upstream = echo_upstream();
    let edge = Edge::start(upstream.addr, "");
    let mut client = Client::connect(edge.listen);
    let (head, response) = client.exchange("DELETE", "/mcp", &[("Mcp-Session-Id", "gone")], b"");
    assert_eq!(head.status, 200);
    let echo: serde_json::Value = serde_json::from_slice(&response).unwrap();
    assert_eq!(echo["method"], "DELETE");
    assert_eq!(header(&echo, "mcp-session-id"), Some("gone"));
}

#[test]
fn sse_post_answer_is_relayed_event_by_event() {
    let upstream = Upstream::start(|mut conn: Conn| {
        let Some(request) = conn.read_request() else {
            return;
        };
        assert_eq!(request.method, "POST");
        conn.start_event_stream().unwrap();
        for n in 1..=3 {
            let event = format!("event: message\ndata: {{\"n\":{n}}}\n\n");
            conn.chunk(event.as_bytes()).unwrap();
        }
        conn.end_chunks().unwrap();
    });
    let edge = Edge::start(upstream.addr, "");
    let mut client = Client::connect(edge.listen);
    client.send(
        "POST",
        "/mcp",
        &[JSON, ACCEPT_BOTH],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
    );
    let head = client.read_head();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    let mut pending = Vec::new();
    for n in 1..=3 {
        let event = client.read_event(&mut pending).expect("event");
        assert_eq!(event, format!("event: message\ndata: {{\"n\":{n}}}\n\n"));
    }
    assert!(
        client.read_event(&mut pending).is_none(),
        "stream ends after 3 events"
    );
}

#[test]
fn get_stream_is_not_buffered() {
    let (send_second, second) = mpsc::channel::<()>();
    let second = std::sync::Mutex::new(Some(second));
    let upstream = Upstream::start(move |mut conn: Conn| {
        let Some(request) = conn.read_request() else {
            return;
        };
        assert_eq!(request.method, "GET");
        let gate = second.lock().unwrap().take().expect("one stream");
        conn.start_event_stream().unwrap();
        conn.chunk(b"id: 1\ndata: first\n\n").unwrap();
        // The second event waits for the test's signal, which comes only after the client
        // has received the first one through the proxy.
        gate.recv().unwrap();
        conn.chunk(b"id: 2\ndata: second\n\n").unwrap();
        conn.end_chunks().unwrap();
    });
    let edge = Edge::start(upstream.addr, "");
    let mut client = Client::connect(edge.listen);
    client.send(
        "GET",
        "/mcp",
        &[("Accept", "text/event-stream"), ("Mcp-Session-Id", "s")],
        b"",
    );
    let head = client.read_head();
    assert_eq!(head.status, 200);
    let mut pending = Vec::new();
    assert_eq!(
        client.read_event(&mut pending).unwrap(),
        "id: 1\ndata: first\n\n"
    );
    assert_eq!(edge.metric("mcp_edge_sse_streams_active"), 1.0);
    send_second.send(()).unwrap();
    assert_eq!(
        client.read_event(&mut pending).unwrap(),
        "id: 2\ndata: second\n\n"
    );
}

#[test]
fn legacy_sse_flow_endpoint_then_messages() {
    // One GET /sse stream per session; POST /messages/ answers 202 and pushes the
    // JSON-RPC response onto the stream, like the 2024-11-05 transport.
    let (to_stream, from_posts) = mpsc::channel::<String>();
    let from_posts = std::sync::Mutex::new(Some(from_posts));
    let to_stream = std::sync::Mutex::new(to_stream);
    let upstream = Upstream::start(move |mut conn: Conn| {
        while let Some(request) = conn.read_request() {
            if request.method == "GET" && request.target == "/sse" {
                let posts = from_posts.lock().unwrap().take().expect("one stream");
                conn.start_event_stream().unwrap();
                conn.chunk(b"event: endpoint\ndata: /messages/?session_id=abc\n\n")
                    .unwrap();
                for message in posts {
                    let event = format!("event: message\ndata: {message}\n\n");
                    if conn.chunk(event.as_bytes()).is_err() {
                        return;
                    }
                }
                return;
            }
            assert_eq!(request.target, "/messages/?session_id=abc");
            let body = String::from_utf8(request.body).unwrap();
            to_stream.lock().unwrap().send(body).unwrap();
            conn.respond(202, "text/plain", b"Accepted").unwrap();
        }
    });
    let edge = Edge::start(upstream.addr, "");
    let mut stream = Client::connect(edge.listen);
    stream.send("GET", "/sse", &[("Accept", "text/event-stream")], b"");
    assert_eq!(stream.read_head().status, 200);
    let mut pending = Vec::new();
    let endpoint = stream.read_event(&mut pending).unwrap();
    assert_eq!(
        endpoint,
        "event: endpoint\ndata: /messages/?session_id=abc\n\n"
    );

    let mut poster = Client::connect(edge.listen);
    let message = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let (head, _) = poster.exchange(
        "POST",
        "/messages/?session_id=abc",
        &[JSON],
        message.as_bytes(),
    );
    assert_eq!(head.status, 202);
    assert_eq!(
        stream.read_event(&mut pending).unwrap(),
        format!("event: message\ndata: {message}\n\n")
    );
}

#[test]
fn refused_server_is_skipped_and_all_down_is_a_502_with_a_reason() {
    let upstream = echo_upstream();
    let dead = refusing_addr();
    let edge = Edge::start_yaml(|ports| {
        format!(
            "{}upstreams:\n  pair:\n    servers: [\"{dead}\", \"{}\"]\n  down:\n    servers: [\"{dead}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: pair\n  - match: {{path_prefix: /down}}\n    upstream: down\n",
            ports.preamble(),
            upstream.addr
        )
    });
    let mut client = Client::connect(edge.listen);
    for _ in 0..4 {
        let (head, _) = client.exchange("POST", "/mcp", &[JSON], b"{}");
        assert_eq!(
            head.status, 200,
            "the live server answers whatever the rotation"
        );
    }
    assert!(
        edge.metric("mcp_edge_upstream_errors_total{kind=\"connect_refused\",upstream=\"pair\"}")
            >= 1.0
    );

    let rpc = br#"{"jsonrpc":"2.0","id":42,"method":"tools/list"}"#;
    let (head, body) = client.exchange("POST", "/down/mcp", &[JSON], rpc);
    assert_eq!(head.status, 502);
    assert_eq!(
        head.header("x-mcp-edge-error"),
        Some("upstream_unavailable")
    );
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["id"], 42);
    assert_eq!(
        error["error"]["message"],
        "mcp-edge: the upstream is unavailable"
    );
    // The details are the log's, under the request id the client was given.
    let request_id = head.header("x-mcp-edge-request-id").unwrap();
    assert_eq!(error["error"]["data"]["request_id"], request_id);
    let log = edge.log();
    let line = log
        .lines()
        .find(|line| line.contains(request_id))
        .unwrap_or_else(|| panic!("no log line for {request_id}:\n{log}"));
    assert!(line.contains("upstream `down` is unavailable"), "{line}");
    assert!(line.contains("connect_refused"), "{line}");

    let (head, body) = client.exchange("GET", "/down/x", &[], b"");
    assert_eq!(head.status, 502);
    assert!(String::from_utf8_lossy(&body).starts_with("mcp-edge: the upstream is unavailable"));
}

#[test]
fn upstream_closing_without_answer_is_a_502_not_a_hang() {
    let upstream = Upstream::start(|mut conn: Conn| {
        let _ = conn.read_request();
        // Close without a response.
    });
    let edge = Edge::start(upstream.addr, "");
    let mut client = Client::connect(edge.listen);
    let (head, _) = client.exchange("POST", "/mcp", &[JSON], b"{}");
    assert_eq!(head.status, 502);
    assert_eq!(head.header("x-mcp-edge-error"), Some("upstream_failed"));
}

#[test]
fn oversized_body_is_a_413_and_never_reaches_the_upstream() {
    let upstream = echo_upstream();
    let edge = Edge::start_yaml(|ports| {
        format!(
            "{}upstreams:\n  main:\n    servers: [\"{}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\n",
            ports.preamble_with("  max_request_body_bytes: 1024\n"),
            upstream.addr
        )
    });
    let mut client = Client::connect(edge.listen);
    let (head, body) = client.exchange("POST", "/mcp", &[JSON], &vec![b'x'; 4096]);
    assert_eq!(head.status, 413);
    assert!(String::from_utf8_lossy(&body).contains("the request body is too large"));
    assert!(edge.log().contains("exceeds the limit of 1024 bytes"));
    assert_eq!(upstream.connections(), 0);

    let mut client = Client::connect(edge.listen);
    let (head, _) = client.exchange("POST", "/mcp", &[JSON], &vec![b'x'; 1024]);
    assert_eq!(head.status, 200, "a body exactly at the limit passes");
}

#[test]
fn unmatched_path_is_a_404() {
    let upstream = echo_upstream();
    let edge = Edge::start_yaml(|ports| {
        format!(
            "{}upstreams:\n  main:\n    servers: [\"{}\"]\nroutes:\n  - match: {{path_prefix: /mcp}}\n    upstream: main\n",
            ports.preamble(),
            upstream.addr
        )
    });
    let mut client = Client::connect(edge.listen);
    let (head, body) = client.exchange("GET", "/elsewhere", &[], b"");
    assert_eq!(head.status, 404);
    assert!(String::from_utf8_lossy(&body).contains("no route matches the request path"));
    assert!(edge.log().contains("no route matches path `/elsewhere`"));
    let (head, _) = client.exchange("POST", "/mcp", &[JSON], b"{}");
    assert_eq!(head.status, 200);
    assert_eq!(upstream.connections(), 1);
}

#[test]
fn malformed_request_gets_a_400_and_the_proxy_keeps_serving() {
    use std::io::{Read, Write};
    let upstream = echo_upstream();
    let edge = Edge::start(upstream.addr, "");
    let mut raw = std::net::TcpStream::connect(edge.listen).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(b"NOT A REQUEST\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    let mut client = Client::connect(edge.listen);
    let (head, _) = client.exchange("POST", "/mcp", &[JSON], b"{}");
    assert_eq!(head.status, 200);
}

#[test]
fn admin_answers_health_metrics_and_config() {
    let upstream = echo_upstream();
    let edge = Edge::start(upstream.addr, "");
    assert_eq!(edge.admin_get("/healthz").0, 200);
    assert_eq!(edge.admin_get("/readyz").0, 200);
    let (status, metrics) = edge.admin_get("/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("mcp_edge_config_generation 1"),
        "{metrics}"
    );
    let (status, config) = edge.admin_get("/config");
    assert_eq!(status, 200);
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["generation"], 1);
    let source = std::fs::read(edge.config_path()).unwrap();
    use sha2::Digest;
    assert_eq!(config["sha256"], hex::encode(sha2::Sha256::digest(&source)));
    assert_eq!(
        config["config"]["upstreams"]["main"]["servers"][0],
        upstream.addr.to_string()
    );
}

#[test]
fn h2c_listener_speaks_http2_with_prior_knowledge() {
    let upstream = echo_upstream();
    let edge = Edge::start_yaml(|ports| {
        let listener = format!("  - address: \"{}\"\n", ports.listen);
        format!(
            "{}upstreams:\n  main:\n    servers: [\"{}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\n",
            ports
                .preamble()
                .replace(&listener, &format!("{listener}    h2c: true\n")),
            upstream.addr
        )
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (status, echo) = runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(edge.listen).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        let mut client = client.ready().await.unwrap();
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://{}/mcp", edge.listen))
            .header("content-type", "application/json")
            .header("mcp-session-id", "h2-session")
            .body(())
            .unwrap();
        let (response, mut body_out) = client.send_request(request, false).unwrap();
        body_out
            .send_data(
                bytes::Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
                true,
            )
            .unwrap();
        let response = response.await.unwrap();
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            bytes.extend_from_slice(&chunk);
        }
        (status, bytes)
    });
    assert_eq!(status, 200);
    let echo: serde_json::Value = serde_json::from_slice(&echo).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(header(&echo, "mcp-session-id"), Some("h2-session"));
    assert_eq!(
        header(&echo, "host"),
        Some(edge.listen.to_string().as_str()),
        "Host from :authority"
    );
}

#[test]
fn tls_listener_serves_https_with_the_configured_certificate() {
    use std::sync::Arc;
    let upstream = echo_upstream();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let edge = Edge::start_yaml(|ports| {
        let listener = format!("  - address: \"{}\"\n", ports.listen);
        let tls = format!(
            "{listener}    tls: {{cert: \"{}\", key: \"{}\"}}\n",
            cert.display(),
            key.display()
        );
        format!(
            "{}upstreams:\n  main:\n    servers: [\"{}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\n",
            ports.preamble().replace(&listener, &tls),
            upstream.addr
        )
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let answer = runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::net::TcpStream::connect(edge.listen).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .expect("TLS handshake with the configured certificate");
        tls.write_all(b"GET /tls HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    });
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""target":"/tls""#), "{answer}");
    assert!(
        answer.contains(r#"["x-forwarded-proto","https"]"#),
        "X-Forwarded-Proto by the listener's TLS: {answer}"
    );
}
