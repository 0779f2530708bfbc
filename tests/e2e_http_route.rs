//! Routes of `kind: http`, end to end: the real binary, Pingora's proxy behind mcp-edge's
//! listener, and upstreams on ephemeral loopback ports.
//!
//! - a plain HTTP route: GET and POST answered by a plain upstream, the request body
//!   streamed to it before the client finished sending it (the MCP exchange buffers the
//!   whole body first), the forwarding headers by `trusted_proxies`, the request counted
//!   in `/metrics` by route and written to the access log;
//! - a WebSocket echo through the route (the MCP exchange refuses upgrades);
//! - an HTTP/2 upstream with prior knowledge (`protocol: h2c`), which an MCP route
//!   cannot use.

mod support;

use futures::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::edge::{Edge, Ports};
use support::http::Client;
use support::metrics::labelled;
use support::upstream::{refusing_addr, Upstream};
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for what it expects.
const DEADLINE: Duration = Duration::from_secs(10);

/// An edge with `/mcp` an MCP route (to a refusing upstream) and `/app` a `kind: http`
/// route to `upstream`, whose group has `group_extra` lines (indented by 4), and the
/// access log on.
fn edge_with_http_route(upstream: &str, group_extra: &str) -> Edge {
    let mcp = refusing_addr();
    Edge::start_yaml(move |ports: &Ports| {
        format!(
            "{}upstreams:\n  mcp:\n    servers: [\"{mcp}\"]\n  app:\n    servers: [\"{upstream}\"]\n{group_extra}routes:\n  - match: {{path_prefix: /mcp}}\n    upstream: mcp\n  - match: {{path_prefix: /app}}\n    upstream: app\n    kind: http\nobservability:\n  access_log: {{format: json, path: {}/access.log}}\n",
            ports.preamble(),
            ports.dir.display()
        )
    })
}

/// The access log's lines once one satisfies `found`, waiting up to [`DEADLINE`].
fn wait_access_line(path: &Path, found: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let hit = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|line| found(line));
        if let Some(line) = hit {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no such access log line in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `mcp_edge_requests_total{route="/app",status}` once it reaches `expected` (a request
/// is counted just after its response is sent), or after [`DEADLINE`].
fn requests_counted(edge: &Edge, status: &str, expected: f64) -> f64 {
    let labels = [("route", "/app"), ("status", status)];
    let deadline = Instant::now() + DEADLINE;
    loop {
        let counted = labelled(edge, "mcp_edge_requests_total", &labels);
        if counted >= expected || Instant::now() >= deadline {
            return counted;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A request head as a plain upstream read it: the request line and the headers.
struct SeenHead {
    line: String,
    headers: Vec<(String, String)>,
}

impl SeenHead {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a request head from `reader`; `None` when the peer closed.
fn read_head(reader: &mut BufReader<std::net::TcpStream>) -> Option<SeenHead> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Some(SeenHead {
        line: line.trim_end().to_string(),
        headers,
    })
}

/// A plain upstream that reports each request head on `heads` as soon as it is read, then
/// reads the body (Content-Length) and answers with `<line>|<body>`.
fn reporting_upstream(heads: mpsc::Sender<SeenHead>) -> Upstream {
    let heads = Arc::new(Mutex::new(heads));
    Upstream::start(move |conn| {
        let stream = conn.stream().try_clone().expect("clone upstream socket");
        let mut reader = BufReader::new(stream);
        while let Some(head) = read_head(&mut reader) {
            let length: usize = head
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let line = head.line.clone();
            let _ = heads.lock().unwrap().send(head);
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let mut answer = line.into_bytes();
            answer.push(b'|');
            answer.extend_from_slice(&body);
            let response = format!(
                "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                answer.len()
            );
            let stream = reader.get_mut();
            if stream.write_all(response.as_bytes()).is_err() || stream.write_all(&answer).is_err()
            {
                return;
            }
        }
    })
}

#[test]
fn a_plain_http_route_streams_requests_to_its_upstream_and_is_counted_and_logged() {
    let (heads_tx, heads) = mpsc::channel();
    let upstream = reporting_upstream(heads_tx);
    let edge = edge_with_http_route(&upstream.addr.to_string(), "");
    let mut client = Client::connect(edge.listen);

    // GET, with a forged X-Forwarded-For from an untrusted peer.
    let (head, body) = client.exchange(
        "GET",
        "/app/page?x=1",
        &[("Host", "auth.test"), ("X-Forwarded-For", "203.0.113.9")],
        b"",
    );
    assert_eq!(head.status, 201);
    assert_eq!(
        String::from_utf8_lossy(&body),
        "GET /app/page?x=1 HTTP/1.1|"
    );
    let seen = heads
        .recv_timeout(DEADLINE)
        .expect("the upstream saw the GET");
    assert_eq!(seen.header("host"), Some("auth.test"), "Host is kept");
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));

    // POST on the same connection: the head reaches the upstream while the client still
    // holds back half of the body (the MCP exchange would wait for all of it).
    let stream = client.stream();
    let mut writer = stream.try_clone().expect("clone client socket");
    writer
        .write_all(
            b"POST /app/upload HTTP/1.1\r\nHost: auth.test\r\nContent-Length: 10\r\n\r\nhello",
        )
        .expect("send the first half");
    let seen = heads
        .recv_timeout(DEADLINE)
        .expect("the upstream saw the POST before its body was complete");
    assert_eq!(seen.line, "POST /app/upload HTTP/1.1");
    writer.write_all(b"world").expect("send the second half");
    let head = client.read_head();
    let body = client.read_body(&head);
    assert_eq!(head.status, 201);
    assert_eq!(
        String::from_utf8_lossy(&body),
        "POST /app/upload HTTP/1.1|helloworld"
    );

    // Counted by route and status, and logged.
    assert_eq!(requests_counted(&edge, "201", 2.0), 2.0);
    let line = wait_access_line(&edge.dir.path().join("access.log"), |line| {
        line["path"] == "/app/upload"
    });
    assert_eq!(line["method"], "POST");
    assert_eq!(line["route"], "/app");
    assert_eq!(line["status"], 201);
    assert_eq!(line["upstream"], upstream.addr.to_string());
    assert_eq!(line["end"], "completed");
    assert_eq!(line["bytes_in"], 10);
}

/// A WebSocket server that greets each client, then echoes every message.
async fn websocket_echo() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                if socket.send(Message::text("welcome")).await.is_err() {
                    return;
                }
                while let Some(Ok(message)) = socket.next().await {
                    if message.is_close() || socket.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_echoes_both_ways_through_an_http_route() {
    let upstream = websocket_echo().await;
    let edge = tokio::task::spawn_blocking(move || edge_with_http_route(&upstream.to_string(), ""))
        .await
        .unwrap();
    let stream = tokio::net::TcpStream::connect(edge.listen).await.unwrap();
    let url = format!("ws://{}/app/socket", edge.listen);
    let (mut socket, response) = tokio::time::timeout(
        DEADLINE,
        tokio_tungstenite::client_async(url.as_str(), stream),
    )
    .await
    .expect("the upgrade is answered in time")
    .expect("the upgrade is accepted");
    assert_eq!(response.status(), 101);
    let greeting = tokio::time::timeout(DEADLINE, socket.next())
        .await
        .expect("the greeting in time")
        .expect("the socket is open")
        .unwrap();
    assert_eq!(greeting, Message::text("welcome"));
    for message in [
        Message::text("ping from the client"),
        Message::binary(vec![0u8, 1, 2, 255]),
    ] {
        socket.send(message.clone()).await.unwrap();
        let echoed = tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("the echo in time")
            .expect("the socket is open")
            .unwrap();
        assert_eq!(echoed, message);
    }
    socket.close(None).await.unwrap();
}

/// An HTTP/2 server with prior knowledge (h2c) that answers every request with the HTTP
/// version it arrived in, and notes it in `seen`.
fn h2c_upstream(seen: Arc<Mutex<Vec<http::Version>>>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let Ok(mut connection) = h2::server::handshake(stream).await else {
                        return;
                    };
                    while let Some(Ok((request, mut respond))) = connection.accept().await {
                        let version = request.version();
                        seen.lock().unwrap().push(version);
                        let head = http::Response::builder()
                            .status(200)
                            .header("content-type", "text/plain")
                            .body(())
                            .unwrap();
                        let Ok(mut body) = respond.send_response(head, false) else {
                            continue;
                        };
                        let text = format!("{version:?} {}", request.uri().path());
                        let _ = body.send_data(bytes::Bytes::from(text), true);
                    }
                });
            }
        });
    });
    addr
}

#[test]
fn an_http_route_speaks_http2_to_an_h2c_upstream() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = h2c_upstream(seen.clone());
    let edge = edge_with_http_route(&upstream.to_string(), "    protocol: h2c\n");
    let mut client = Client::connect(edge.listen);
    for path in ["/app/grpc.Health/Check", "/app/second"] {
        let (head, body) = client.exchange("GET", path, &[], b"");
        assert_eq!(head.status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(String::from_utf8_lossy(&body), format!("HTTP/2.0 {path}"));
    }
    assert_eq!(*seen.lock().unwrap(), [http::Version::HTTP_2; 2]);
    assert_eq!(requests_counted(&edge, "200", 2.0), 2.0);
}
