//! The data path end to end: response heads flushed at once, upstream keep-alive reuse,
//! stale pooled connections, and interim responses, through the real binary.

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use support::edge::Edge;
use support::http::Client;
use support::upstream::{Conn, Upstream};

const JSON: (&str, &str) = ("Content-Type", "application/json");

#[test]
fn a_silent_event_stream_shows_its_head_before_any_event() {
    let (release, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(Some(gate));
    let upstream = Upstream::start(move |mut conn: Conn| {
        if conn.read_request().is_none() {
            return;
        }
        let gate = gate.lock().unwrap().take().expect("one stream");
        conn.start_event_stream().unwrap();
        // Nothing more until the client has seen the head through the proxy.
        gate.recv().unwrap();
        conn.chunk(b"data: first\n\n").unwrap();
        conn.end_chunks().unwrap();
    });
    // No filters: no keepalive comment could carry the head out either.
    let edge = Edge::start(upstream.addr, "");
    let mut client = Client::connect(edge.listen);
    client.send("GET", "/mcp", &[("Accept", "text/event-stream")], b"");
    let head = client.read_head();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    release.send(()).unwrap();
    let mut pending = Vec::new();
    assert_eq!(client.read_event(&mut pending).unwrap(), "data: first\n\n");
}

#[test]
fn sequential_requests_reuse_one_upstream_connection() {
    let upstream = Upstream::start(|mut conn: Conn| {
        while conn.read_request().is_some() {
            if conn
                .respond(200, "application/json", b"{\"ok\":true}")
                .is_err()
            {
                return;
            }
        }
    });
    let edge = Edge::start(upstream.addr, "");
    let mut client = Client::connect(edge.listen);
    for _ in 0..5 {
        let (head, body) = client.exchange("POST", "/mcp", &[JSON], b"{}");
        assert_eq!(head.status, 200);
        assert_eq!(body, b"{\"ok\":true}");
    }
    assert_eq!(upstream.connections(), 1);
}

#[test]
fn a_pooled_connection_the_upstream_closed_unanswered_is_retried_on_a_fresh_one() {
    // The first connection answers once, then closes on the next request without a
    // byte: what an upstream does when its keep-alive timer fires as a request arrives.
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = accepted.clone();
    let upstream = Upstream::start(move |mut conn: Conn| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            if conn.read_request().is_some() {
                conn.respond(200, "application/json", b"{}").unwrap();
            }
            // The next request is read, then the connection closes unanswered.
            let _ = conn.read_request();
            return;
        }
        while conn.read_request().is_some() {
            if conn.respond(200, "application/json", b"{}").is_err() {
                return;
            }
        }
    });
    let edge = Edge::start(upstream.addr, "");
    let mut client = Client::connect(edge.listen);
    for method in ["POST", "GET"] {
        let (head, _) = client.exchange(method, "/mcp", &[JSON], b"{}");
        assert_eq!(head.status, 200, "{method}");
    }
    assert_eq!(upstream.connections(), 2);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[test]
fn interim_responses_are_skipped_and_the_final_one_relayed() {
    let upstream = Upstream::start(|mut conn: Conn| {
        if conn.read_request().is_none() {
            return;
        }
        let stream = conn.stream();
        let mut writer = stream;
        writer
            .write_all(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
            )
            .unwrap();
        conn.respond(200, "application/json", b"{\"final\":true}")
            .unwrap();
    });
    let edge = Edge::start(upstream.addr, "");
    let mut client = Client::connect(edge.listen);
    client.send("POST", "/mcp", &[JSON, ("Expect", "100-continue")], b"{}");
    // The proxy's own go-ahead for the body; the upstream's interim responses are not
    // relayed.
    assert_eq!(client.read_head().status, 100);
    let head = client.read_head();
    assert_eq!(head.status, 200);
    let body = client.read_body(&head);
    assert_eq!(body, b"{\"final\":true}");
}

#[test]
fn pipelined_requests_are_all_answered_in_order() {
    let upstream = Upstream::start(|mut conn: Conn| {
        while let Some(request) = conn.read_request() {
            let body = format!("{{\"path\":\"{}\"}}", request.target);
            if conn
                .respond(200, "application/json", body.as_bytes())
                .is_err()
            {
                return;
            }
        }
    });
    let edge = Edge::start(upstream.addr, "");
    let mut client = Client::connect(edge.listen);
    // A POST with its body, then two GETs, in one write.
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let pipelined = format!(
        "POST /a HTTP/1.1\r\nHost: mcp.test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}GET /b HTTP/1.1\r\nHost: mcp.test\r\n\r\nGET /c HTTP/1.1\r\nHost: mcp.test\r\n\r\n",
        body.len()
    );
    let mut stream = client.stream();
    stream.write_all(pipelined.as_bytes()).unwrap();
    for path in ["/a", "/b", "/c"] {
        let head = client.read_head();
        assert_eq!(head.status, 200, "{path}");
        let answer = client.read_body(&head);
        assert_eq!(
            String::from_utf8(answer).unwrap(),
            format!("{{\"path\":\"{path}\"}}")
        );
    }
}

#[test]
fn an_idle_pooled_connection_is_closed_after_the_idle_timeout_without_more_traffic() {
    let (closed, closes) = mpsc::channel::<bool>();
    let closed = Mutex::new(closed);
    let upstream = Upstream::start(move |mut conn: Conn| {
        if conn.read_request().is_some() {
            conn.respond(200, "application/json", b"{}").unwrap();
            // The upstream's own keep-alive timer: it closes its side of the idle
            // connection, and waits for the proxy to close the other.
            conn.stream().shutdown(std::net::Shutdown::Write).unwrap();
            let clean = conn.wait_closed();
            closed.lock().unwrap().send(clean).unwrap();
        }
    });
    let edge = Edge::start(upstream.addr, "");
    let mut client = Client::connect(edge.listen);
    let (head, _) = client.exchange("POST", "/mcp", &[JSON], b"{}");
    assert_eq!(head.status, 200);
    // No further request reaches that server: only the pool's sweep (idle timeout 4 s,
    // swept every second) closes the proxy's side.
    assert!(
        closes
            .recv_timeout(std::time::Duration::from_secs(10))
            .is_ok(),
        "the proxy kept a half-closed upstream connection open"
    );
}
