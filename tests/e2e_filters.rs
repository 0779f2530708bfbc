//! End-to-end tests of sse_guard, cleanup_deadline and cancel_cap against misbehaving
//! peers: the real binary, scripted upstreams, clients that stop reading or leave.

mod support;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::edge::Edge;
use support::http::Client;
use support::process::assert_idle;
use support::upstream::{Conn, Upstream};

/// What the scripted upstream observed about the proxy's side of the connection.
#[derive(Debug)]
struct UpstreamEnd {
    /// When the proxy closed (or reset) the upstream connection.
    closed_at: Instant,
    /// Whether every write of the full response succeeded.
    response_complete: bool,
    /// Whether the close was clean (EOF) rather than a reset.
    clean_close: bool,
    /// Events written before the connection broke.
    events_written: u64,
}

/// An SSE upstream that writes `events` events of `event_size` bytes every `interval`,
/// ends the response (unless `events` is `None`: never ends), then waits for the proxy to
/// close the connection and reports what it saw.
fn sse_upstream(
    events: Option<u64>,
    interval: Duration,
    event_size: usize,
) -> (Upstream, mpsc::Receiver<UpstreamEnd>) {
    let (report, reports) = mpsc::channel();
    let report = std::sync::Mutex::new(report);
    let upstream = Upstream::start(move |mut conn: Conn| {
        if conn.read_request().is_none() {
            return;
        }
        conn.stream().set_nodelay(true).unwrap();
        let payload = format!("data: {}\n\n", "x".repeat(event_size.saturating_sub(8)));
        let mut written = 0u64;
        let mut complete = conn.start_event_stream().is_ok();
        let mut next = Instant::now();
        while complete && events.is_none_or(|total| written < total) {
            if conn.chunk(payload.as_bytes()).is_err() {
                complete = false;
                break;
            }
            written += 1;
            next += interval;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        if complete {
            complete = conn.end_chunks().is_ok();
        }
        let clean_close = conn.wait_closed();
        let _ = report.lock().unwrap().send(UpstreamEnd {
            closed_at: Instant::now(),
            response_complete: complete,
            clean_close,
            events_written: written,
        });
    });
    (upstream, reports)
}

fn open_sse(addr: SocketAddr, method: &str) -> Client {
    let mut client = Client::connect(addr);
    let body: &[u8] = if method == "POST" {
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#
    } else {
        b""
    };
    client.send(
        method,
        "/mcp",
        &[
            ("Accept", "application/json, text/event-stream"),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    let head = client.read_head();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    client
}

#[test]
fn stuck_reader_is_cut_within_send_timeout() {
    // 400 KB/s: one 40 KB event every 100 ms (10 events/s, well under rapid_yield).
    let (upstream, reports) = sse_upstream(None, Duration::from_millis(100), 40_000);
    let edge = Edge::start(
        upstream.addr,
        "  - sse_guard: {send_timeout: 2, rapid_yield_max: 50, keepalive_interval: 0}\n",
    );
    // A client with a 4 KiB receive buffer that reads the headers, then stops.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&edge.listen.into()).unwrap();
    let mut stuck: TcpStream = socket.into();
    use std::io::Write;
    stuck
        .write_all(b"GET /mcp HTTP/1.1\r\nHost: mcp.test\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 64];
    stuck.read_exact(&mut head).unwrap();
    assert!(head.starts_with(b"HTTP/1.1 200"));
    let stopped = Instant::now();

    let end = reports
        .recv_timeout(Duration::from_secs(15))
        .expect("the proxy closed the upstream connection");
    let cut_after = end.closed_at - stopped;
    println!("stuck reader: upstream closed {cut_after:?} after the client stopped reading");
    assert!(
        cut_after < Duration::from_secs(5),
        "upstream closed after {cut_after:?}"
    );

    // The client side was closed too: draining what the kernel holds ends in EOF/reset.
    stuck
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut sink = vec![0u8; 1 << 16];
    let client_closed = loop {
        match stuck.read(&mut sink) {
            Ok(0) | Err(_) => break Instant::now(),
            Ok(_) => continue,
        }
    };
    assert!(client_closed - stopped < Duration::from_secs(5 + 2));
    assert_eq!(
        edge.metric("mcp_edge_sse_guard_closed_total{reason=\"send_timeout\"}"),
        1.0
    );
    assert_idle(edge.pid(), "stuck reader");
}

fn count_events_until_close(client: &mut Client) -> (u64, Duration) {
    let started = Instant::now();
    let mut pending = Vec::new();
    let mut events = 0;
    while client.read_event(&mut pending).is_some() {
        events += 1;
    }
    (events, started.elapsed())
}

#[test]
fn rapid_yield_closes_a_runaway_stream_within_one_window() {
    // 500 events/s for 3 s.
    let (upstream, _reports) = sse_upstream(Some(1500), Duration::from_millis(2), 32);
    let edge = Edge::start(
        upstream.addr,
        "  - sse_guard: {send_timeout: 5, rapid_yield_window_ms: 1000, rapid_yield_max: 50, keepalive_interval: 0}\n",
    );
    let mut client = open_sse(edge.listen, "GET");
    let (events, elapsed) = count_events_until_close(&mut client);
    println!("rapid yield: closed after {events} events, {elapsed:?}");
    assert!(
        events <= 50,
        "at most max events reach the client, got {events}"
    );
    assert!(
        elapsed < Duration::from_millis(1500),
        "closed within one window: {elapsed:?}"
    );
    assert_eq!(
        edge.metric("mcp_edge_sse_guard_closed_total{reason=\"rapid_yield\"}"),
        1.0
    );
    assert_idle(edge.pid(), "rapid yield");
}

#[test]
fn rapid_yield_zero_disables_the_check() {
    let (upstream, _reports) = sse_upstream(Some(1000), Duration::from_millis(2), 32);
    let edge = Edge::start(
        upstream.addr,
        "  - sse_guard: {send_timeout: 5, rapid_yield_max: 0, keepalive_interval: 0}\n",
    );
    let mut client = open_sse(edge.listen, "GET");
    let (events, _) = count_events_until_close(&mut client);
    assert_eq!(
        events, 1000,
        "every event arrives and the stream ends normally"
    );
    assert_eq!(edge.metric("mcp_edge_sse_guard_closed_total"), 0.0);
}

#[test]
fn a_slow_stream_is_never_closed() {
    let (upstream, _reports) = sse_upstream(Some(30), Duration::from_millis(100), 32);
    let edge = Edge::start(
        upstream.addr,
        "  - sse_guard: {send_timeout: 5, rapid_yield_window_ms: 1000, rapid_yield_max: 50}\n",
    );
    let mut client = open_sse(edge.listen, "GET");
    let (events, _) = count_events_until_close(&mut client);
    assert_eq!(events, 30);
    assert_eq!(edge.metric("mcp_edge_sse_guard_closed_total"), 0.0);
}

#[test]
fn silent_stream_gets_keepalive_comments() {
    let (release, released) = mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let upstream = Upstream::start(move |mut conn: Conn| {
        conn.read_request();
        conn.start_event_stream().unwrap();
        // Silent until the test is done.
        let _ = released.lock().unwrap().recv();
    });
    let edge = Edge::start(upstream.addr, "  - sse_guard: {keepalive_interval: 0.5}\n");
    let mut client = open_sse(edge.listen, "GET");
    let mut pending = Vec::new();
    let mut arrivals = Vec::new();
    for _ in 0..3 {
        let event = client.read_event(&mut pending).expect("keepalive");
        assert_eq!(event, ": keepalive\n\n");
        arrivals.push(Instant::now());
    }
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(400),
            "keepalives {gap:?} apart"
        );
    }
    release.send(()).unwrap();
}

/// Opens a POST answered with SSE, reads the first event, then disconnects. Returns when
/// the client left.
fn post_then_disconnect(edge: &Edge) -> Instant {
    let mut client = open_sse(edge.listen, "POST");
    let mut pending = Vec::new();
    client.read_event(&mut pending).expect("first event");
    client.stream().shutdown(std::net::Shutdown::Both).unwrap();
    drop(client);
    Instant::now()
}

#[test]
fn cleanup_deadline_lets_the_upstream_finish_after_the_client_left() {
    // The upstream needs 2 s (20 events, 100 ms apart) to finish.
    let (upstream, reports) = sse_upstream(Some(20), Duration::from_millis(100), 32);
    let edge = Edge::start(
        upstream.addr,
        "  - cleanup_deadline: {task_group_cleanup_timeout: 5, session_pool_cleanup_timeout: 5}\n",
    );
    let left = post_then_disconnect(&edge);
    let end = reports
        .recv_timeout(Duration::from_secs(10))
        .expect("upstream done");
    println!(
        "cleanup 5 s: upstream finished {:?} after the client left",
        end.closed_at - left
    );
    assert!(end.response_complete, "the upstream completed its response");
    assert!(
        end.clean_close,
        "the upstream saw a clean close, not a reset"
    );
    assert_eq!(end.events_written, 20);
    assert_eq!(
        edge.metric("mcp_edge_cleanup_total{outcome=\"completed\"}"),
        1.0
    );
    assert_idle(edge.pid(), "cleanup completed");
}

#[test]
fn cleanup_deadline_zero_closes_the_upstream_at_once() {
    let (upstream, reports) = sse_upstream(Some(20), Duration::from_millis(100), 32);
    let edge = Edge::start(
        upstream.addr,
        "  - cleanup_deadline: {task_group_cleanup_timeout: 0, session_pool_cleanup_timeout: 0}\n",
    );
    let left = post_then_disconnect(&edge);
    let end = reports
        .recv_timeout(Duration::from_secs(10))
        .expect("upstream done");
    let after = end.closed_at - left;
    println!("cleanup 0: upstream saw the close {after:?} after the client left");
    assert!(!end.response_complete, "the upstream was cut mid-response");
    assert!(
        after < Duration::from_millis(1000),
        "closed at once, got {after:?}"
    );
    assert_eq!(
        edge.metric("mcp_edge_cleanup_total{outcome=\"closed_at_once\"}"),
        1.0
    );
}

#[test]
fn cleanup_deadline_closes_a_never_ending_upstream_at_the_deadline() {
    let (upstream, reports) = sse_upstream(None, Duration::from_millis(200), 32);
    // Parking off: the deadline closes the exchange (tests/e2e_parking.rs parks it).
    let edge = Edge::start(
        upstream.addr,
        "  - cleanup_deadline: {task_group_cleanup_timeout: 5, session_pool_cleanup_timeout: 5, park_max_per_server: 0}\n",
    );
    let left = post_then_disconnect(&edge);
    let end = reports
        .recv_timeout(Duration::from_secs(15))
        .expect("upstream done");
    let after = end.closed_at - left;
    println!("cleanup 5 s, never-ending upstream: closed {after:?} after the client left");
    assert!(
        after >= Duration::from_secs(4) && after <= Duration::from_secs(6),
        "closed at 5 s ± 1, got {after:?}"
    );
    assert_eq!(
        edge.metric("mcp_edge_cleanup_total{outcome=\"deadline_exceeded\"}"),
        1.0
    );
    assert_idle(edge.pid(), "cleanup deadline exceeded");
}

#[test]
fn cancel_cap_terminates_a_spinning_upstream_long_before_the_deadline() {
    // A fast producer: an event every millisecond, forever.
    let (upstream, reports) = sse_upstream(None, Duration::from_millis(1), 32);
    let edge = Edge::start(
        upstream.addr,
        "  - cleanup_deadline: {task_group_cleanup_timeout: 5, session_pool_cleanup_timeout: 5}\n  - cancel_cap: {enabled: true, max_iterations: 100}\n",
    );
    let left = post_then_disconnect(&edge);
    let end = reports
        .recv_timeout(Duration::from_secs(15))
        .expect("upstream done");
    let after = end.closed_at - left;
    println!("cancel_cap: upstream terminated {after:?} after the client left");
    assert!(
        after < Duration::from_millis(2500),
        "terminated long before 5 s: {after:?}"
    );
    assert_eq!(edge.metric("mcp_edge_cancel_cap_terminated_total"), 1.0);
    assert_eq!(
        edge.metric("mcp_edge_cleanup_total{outcome=\"cap_exceeded\"}"),
        1.0
    );
    assert!(
        edge.log().contains("cancel_cap terminated"),
        "logged with its reason"
    );
    assert_idle(edge.pid(), "cancel cap");
}

#[test]
fn without_cancel_cap_a_spinning_upstream_runs_to_the_deadline() {
    let (upstream, reports) = sse_upstream(None, Duration::from_millis(1), 32);
    let edge = Edge::start(
        upstream.addr,
        "  - cleanup_deadline: {task_group_cleanup_timeout: 5, session_pool_cleanup_timeout: 5, park_max_per_server: 0}\n  - cancel_cap: {enabled: false, max_iterations: 100}\n",
    );
    let left = post_then_disconnect(&edge);
    let end = reports
        .recv_timeout(Duration::from_secs(15))
        .expect("upstream done");
    let after = end.closed_at - left;
    assert!(
        after >= Duration::from_secs(4),
        "ran to the deadline: {after:?}"
    );
    assert_eq!(edge.metric("mcp_edge_cancel_cap_terminated_total"), 0.0);
}

#[test]
fn sigterm_sends_retry_hints_closes_streams_and_exits() {
    let (upstream, _reports) = sse_upstream(None, Duration::from_millis(500), 32);
    // `shutdown_delay: 0`: the drain starts at the signal (the delay before it is
    // e2e_shutdown_delay's).
    let upstream_addr = upstream.addr;
    let mut edge = Edge::start_yaml(|ports| {
        format!(
            "{}upstreams:\n  main:\n    servers: [\"{upstream_addr}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\nfilters:\n  - sse_guard: {{send_timeout: 5, keepalive_interval: 0}}\n  - cleanup_deadline: {{task_group_cleanup_timeout: 1, session_pool_cleanup_timeout: 2}}\n",
            ports.preamble_with("  shutdown_delay: 0\n")
        )
    });
    let mut standing = open_sse(edge.listen, "GET");
    let mut answering = open_sse(edge.listen, "POST");
    let (mut standing_pending, mut answering_pending) = (Vec::new(), Vec::new());
    standing.read_event(&mut standing_pending).unwrap();
    answering.read_event(&mut answering_pending).unwrap();
    assert_eq!(edge.metric("mcp_edge_sse_streams_active"), 2.0);
    let (_, streams) = edge.admin_get("/streams");
    let streams: serde_json::Value = serde_json::from_str(&streams).unwrap();
    assert_eq!(streams["count"], 2);

    edge.signal(libc::SIGTERM);
    let signalled = Instant::now();
    for (name, client, pending) in [
        ("standing", &mut standing, &mut standing_pending),
        ("answering", &mut answering, &mut answering_pending),
    ] {
        let mut saw_retry = false;
        while let Some(event) = client.read_event(pending) {
            saw_retry |= event.starts_with("retry: ");
        }
        let closed = signalled.elapsed();
        println!("SIGTERM: {name} stream closed after {closed:?}");
        assert!(saw_retry, "{name} stream got a retry: hint");
        assert!(
            closed < Duration::from_secs(3),
            "{name} closed within 2 s + 1: {closed:?}"
        );
    }
    assert!(edge.wait_exit(Duration::from_secs(10)), "the process exits");
}
