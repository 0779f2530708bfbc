//! Parking end to end: an abandoned call still running at its cleanup deadline keeps its
//! upstream connection open (the upstream never sees the disconnect that would cancel its
//! handler), shows in `/streams` and the per-server gauge, and ends as a late completion,
//! or is closed at the server's count bound.

mod support;

use std::net::Shutdown;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;
use support::edge::Edge;
use support::http::Client;
use support::upstream::{Conn, Upstream};

const JSON: (&str, &str) = ("Content-Type", "application/json");
const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");

/// What the upstream saw of one call.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// The handler finished and the response was written whole.
    Finished,
    /// The proxy closed the connection while the handler was still running.
    ClosedEarly,
}

/// An upstream whose handlers answer with an SSE head and one event, then "work" until the
/// test releases them (one release per call), then finish. Reports what each call saw.
fn slow_tool_upstream() -> (Upstream, mpsc::Sender<()>, mpsc::Receiver<Seen>) {
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let (report, reports) = mpsc::channel();
    let report = Mutex::new(report);
    let upstream = Upstream::start(move |mut conn: Conn| {
        if conn.read_request().is_none() {
            return;
        }
        conn.start_event_stream().unwrap();
        conn.chunk(b"event: message\ndata: {\"progress\":1}\n\n")
            .unwrap();
        // Work until released, watching for the proxy closing the connection meanwhile.
        let closed_early = loop {
            if released
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_millis(20))
                .is_ok()
            {
                break false;
            }
            conn.stream().set_nonblocking(true).unwrap();
            let mut probe = [0u8; 1];
            let peek = conn.stream().peek(&mut probe);
            conn.stream().set_nonblocking(false).unwrap();
            if matches!(peek, Ok(0))
                || matches!(&peek, Err(e) if e.kind() != std::io::ErrorKind::WouldBlock)
            {
                break true;
            }
        };
        let seen = if closed_early {
            Seen::ClosedEarly
        } else if conn
            .chunk(b"event: message\ndata: {\"result\":\"done\"}\n\n")
            .is_ok()
            && conn.end_chunks().is_ok()
        {
            Seen::Finished
        } else {
            Seen::ClosedEarly
        };
        report.lock().unwrap().send(seen).unwrap();
    });
    (upstream, release, reports)
}

fn edge_with_parking(upstream: &Upstream, park_max: u32) -> Edge {
    Edge::start(
        upstream.addr,
        &format!("  - cleanup_deadline: {{task_group_cleanup_timeout: 0.5, session_pool_cleanup_timeout: 1, park_max_per_server: {park_max}, park_max_age: 120}}\n"),
    )
}

/// Starts a call, reads its first event, and leaves.
fn abandon_a_call(edge: &Edge) {
    let mut client = Client::connect(edge.listen);
    client.send(
        "POST",
        "/mcp",
        &[JSON, ACCEPT],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
    );
    assert_eq!(client.read_head().status, 200);
    let mut pending = Vec::new();
    assert!(client.read_event(&mut pending).is_some());
    client.stream().shutdown(Shutdown::Both).unwrap();
}

#[test]
fn an_abandoned_call_is_parked_and_completes_late() {
    let (upstream, release, seen) = slow_tool_upstream();
    let edge = edge_with_parking(&upstream, 4);
    abandon_a_call(&edge);
    // The deadline (0.5 s) passes with the handler still working: parked, not closed.
    assert_eq!(
        edge.wait_metric("mcp_edge_upstream_server_parked{", 1.0),
        1.0
    );
    assert_eq!(
        edge.metric("mcp_edge_cleanup_total{outcome=\"parked\"}"),
        1.0
    );
    let (_, streams) = edge.admin_get("/streams");
    let streams: serde_json::Value = serde_json::from_str(&streams).unwrap();
    assert_eq!(streams["parked"], 1, "{streams}");
    assert!(seen.try_recv().is_err(), "the upstream saw no close");

    release.send(()).unwrap();
    assert_eq!(
        seen.recv_timeout(Duration::from_secs(10)).unwrap(),
        Seen::Finished
    );
    assert_eq!(
        edge.wait_metric(
            "mcp_edge_parked_ended_total{outcome=\"late_completion\"}",
            1.0
        ),
        1.0
    );
    assert_eq!(edge.metric("mcp_edge_upstream_server_parked{"), 0.0);
}

#[test]
fn past_the_count_bound_the_oldest_parked_call_is_closed() {
    let (upstream, release, seen) = slow_tool_upstream();
    let edge = edge_with_parking(&upstream, 2);
    for parked in 1..=2 {
        abandon_a_call(&edge);
        assert_eq!(
            edge.wait_metric("mcp_edge_upstream_server_parked{", f64::from(parked)),
            f64::from(parked)
        );
    }
    abandon_a_call(&edge);
    // The third parked call pushes the oldest out: the upstream sees that one close.
    assert_eq!(
        seen.recv_timeout(Duration::from_secs(10)).unwrap(),
        Seen::ClosedEarly
    );
    assert_eq!(
        edge.wait_metric(
            "mcp_edge_parked_ended_total{outcome=\"closed_count_bound\"}",
            1.0
        ),
        1.0
    );
    assert_eq!(
        edge.wait_metric("mcp_edge_cleanup_total{outcome=\"parked\"}", 3.0),
        3.0
    );
    assert!(edge.metric("mcp_edge_upstream_server_parked{") <= 2.0);
    // The two still parked complete late.
    release.send(()).unwrap();
    release.send(()).unwrap();
    for _ in 0..2 {
        assert_eq!(
            seen.recv_timeout(Duration::from_secs(10)).unwrap(),
            Seen::Finished
        );
    }
    assert_eq!(
        edge.wait_metric(
            "mcp_edge_parked_ended_total{outcome=\"late_completion\"}",
            2.0
        ),
        2.0
    );
}
