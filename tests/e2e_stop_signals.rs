//! Stopping the process, end to end: SIGINT and SIGTERM, many times each, with MCP calls
//! in flight and legacy SSE streams open.
//!
//! - every stop ends the process within its bound (SIGINT: the fast stop's 2 s plus
//!   slack; SIGTERM: the grace period, the runtimes' shutdown timeout and slack);
//! - SIGINT is a fast but orderly stop: each open event stream gets its `retry:` hint
//!   before it closes (Pingora's own SIGINT stopped the runtimes and cut the streams);
//! - no log grows past a size bound, and the accept loop never spins on a shut-down
//!   runtime (`Accept() failed`).
//!
//! Each test stops 100 edges, several at a time (about 40 s for both).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::edge::Edge;
use support::http::Client;
use support::upstream::Upstream;

/// SIGINT's bound: the fast stop's 2 s, plus slack for a loaded machine.
const SIGINT_BOUND: Duration = Duration::from_secs(6);
/// SIGTERM's bound: grace (1 s here), the runtimes' 5 s, plus slack.
const SIGTERM_BOUND: Duration = Duration::from_secs(12);
/// No stop may leave a log larger than this.
const LOG_BOUND: u64 = 256 * 1024;
/// Edges stopped side by side.
const PARALLEL: usize = 4;
/// Event streams open on each edge when it is stopped.
const STREAMS: usize = 2;

/// An upstream serving legacy SSE (`GET /sse`: the `endpoint` event, then silence until
/// the peer leaves) and answering every POST with a small JSON-RPC result.
fn mcp_upstream() -> Upstream {
    Upstream::start(|mut conn| {
        while let Some(request) = conn.read_request() {
            if request.method == "GET" {
                if conn.start_event_stream().is_err()
                    || conn
                        .chunk(b"event: endpoint\ndata: /messages/?session_id=s1\n\n")
                        .is_err()
                {
                    return;
                }
                conn.wait_closed();
                return;
            }
            let answer = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#;
            if conn.respond(200, "application/json", answer).is_err() {
                return;
            }
        }
    })
}

/// An edge whose SIGTERM drains at once (`shutdown_delay: 0`): these tests bound the
/// drain itself; the delay before it has its own test (`e2e_shutdown_delay`).
fn edge(upstream: SocketAddr) -> Edge {
    Edge::start_yaml(|ports| {
        format!(
            "{}upstreams:\n  main:\n    servers: [\"{upstream}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\nfilters:\n  - sse_guard: {{send_timeout: 5, keepalive_interval: 10}}\n  - cleanup_deadline: {{session_pool_cleanup_timeout: 0, task_group_cleanup_timeout: 1}}\n",
            ports.preamble_with("  shutdown_delay: 0\n")
        )
    })
}

/// POSTs tool calls on keep-alive connections until `stop` is set or the edge is gone.
fn traffic(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{}}}"#;
        while !stop.load(Ordering::Relaxed) {
            let Ok(mut stream) = TcpStream::connect(addr) else {
                return;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            for _ in 0..20 {
                let request = format!(
                    "POST /mcp HTTP/1.1\r\nHost: mcp.test\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if stream.write_all(request.as_bytes()).is_err() || stream.write_all(body).is_err()
                {
                    break;
                }
                let mut buffer = [0u8; 4096];
                match stream.read(&mut buffer) {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
        }
    })
}

/// One stop: an edge with streams open and calls in flight gets `signal`; returns how
/// long it took to exit, and whether every stream got its `retry:` hint.
fn stop_once(upstream: SocketAddr, signal: i32) -> (Duration, bool) {
    let mut edge = edge(upstream);
    let mut streams: Vec<(Client, Vec<u8>)> = (0..STREAMS)
        .map(|_| {
            let mut client = Client::connect(edge.listen);
            client.send("GET", "/sse", &[("accept", "text/event-stream")], b"");
            let head = client.read_head();
            assert_eq!(head.status, 200, "{head:?}");
            let mut pending = Vec::new();
            let endpoint = client.read_event(&mut pending).expect("the endpoint event");
            assert!(endpoint.contains("event: endpoint"), "{endpoint}");
            (client, pending)
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..2).map(|_| traffic(edge.listen, stop.clone())).collect();
    // Calls are flowing before the signal.
    let deadline = Instant::now() + Duration::from_secs(10);
    while edge.metric("mcp_edge_requests_total") < 4.0 {
        assert!(Instant::now() < deadline, "no traffic:\n{}", edge.log());
        std::thread::sleep(Duration::from_millis(5));
    }
    let signalled = Instant::now();
    edge.signal(signal);
    let bound = if signal == libc::SIGINT {
        SIGINT_BOUND
    } else {
        SIGTERM_BOUND
    };
    let exited = edge.wait_exit(bound);
    let took = signalled.elapsed();
    stop.store(true, Ordering::Relaxed);
    let log = edge.log();
    let log_size = log.len() as u64;
    assert!(
        exited,
        "signal {signal}: the process was still alive after {bound:?} (log {log_size} bytes):\n{}",
        tail(&log)
    );
    assert!(
        log_size <= LOG_BOUND,
        "signal {signal}: log of {log_size} bytes:\n{}",
        tail(&log)
    );
    assert!(
        !log.contains("Accept() failed"),
        "signal {signal}: the accept loop failed:\n{}",
        tail(&log)
    );
    let hinted = streams.iter_mut().all(|(client, pending)| {
        let mut rest = std::mem::take(pending);
        while let Some(chunk) = client.read_chunk() {
            rest.extend_from_slice(&chunk);
        }
        String::from_utf8_lossy(&rest).contains("retry:")
    });
    for caller in callers {
        let _ = caller.join();
    }
    (took, hinted)
}

fn tail(log: &str) -> &str {
    &log[log.len().saturating_sub(4000)..]
}

/// Stops `count` edges with `signal`, [`PARALLEL`] at a time; returns the slowest stop.
fn stop_many(signal: i32, count: usize) -> Duration {
    let upstream = Arc::new(mcp_upstream());
    let per_worker = count.div_ceil(PARALLEL);
    let workers: Vec<_> = (0..PARALLEL)
        .map(|_| {
            let upstream = upstream.clone();
            std::thread::spawn(move || {
                let mut slowest = Duration::ZERO;
                for _ in 0..per_worker {
                    let (took, hinted) = stop_once(upstream.addr, signal);
                    if signal == libc::SIGINT {
                        assert!(hinted, "a stream closed by SIGINT got no retry hint");
                    }
                    slowest = slowest.max(took);
                }
                slowest
            })
        })
        .collect();
    let slowest = workers
        .into_iter()
        .map(|worker| worker.join().expect("a stop failed"))
        .max()
        .unwrap_or_default();
    eprintln!(
        "signal {signal}: {} stops, slowest {slowest:?}",
        per_worker * PARALLEL
    );
    slowest
}

#[test]
fn sigint_stops_fast_and_orderly_every_time() {
    stop_many(libc::SIGINT, 100);
}

#[test]
fn sigterm_stops_within_its_bound_every_time() {
    stop_many(libc::SIGTERM, 100);
}
