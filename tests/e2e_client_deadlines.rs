//! End-to-end tests of the client deadlines: clients that stall while sending a request
//! head, sit idle on a kept-alive connection, stop reading a response, or hold so many
//! connections that the process runs out of descriptors. The real binary, real sockets.

mod support;
#[path = "support/profiles.rs"]
mod profiles;

use profiles::Profile;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::edge::{Edge, Ports};
use support::metrics::labelled;
use support::upstream::{Conn, Upstream};

/// The counter of client connections the proxy closed, by reason.
const CLOSED: &str = "mcp_edge_client_connections_closed_total";

/// An upstream answering every request on a connection with `body` as JSON.
fn json_upstream(body: Vec<u8>) -> Upstream {
    Upstream::start(move |mut conn: Conn| {
        while conn.read_request().is_some() {
            if conn.respond(200, "application/json", &body).is_err() {
                return;
            }
        }
    })
}

/// A config routing `/` to `upstream`, with `server_extra` (lines indented by two spaces)
/// under `server:` and `filters` (list items) under `filters:`.
fn config(ports: &Ports, upstream: SocketAddr, server_extra: &str, filters: &str) -> String {
    let filters = if filters.trim().is_empty() {
        " []\n".to_string()
    } else {
        format!("\n{filters}")
    };
    format!(
        "{}upstreams:\n  main:\n    servers: [\"{upstream}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\nfilters:{filters}",
        ports.preamble_with(server_extra)
    )
}

/// A client socket whose receive buffer is 4 KiB (set before connecting, so the window
/// it advertises stays small).
fn small_window_client(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.into()
}

/// Reads until the peer closes (EOF or reset) or `limit` passes; returns when it closed,
/// `None` when it did not within the limit.
fn wait_closed(stream: &mut TcpStream, limit: Duration) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    let mut sink = vec![0u8; 1 << 16];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut sink) {
            Ok(0) => return Some(Instant::now()),
            Ok(_) => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if Instant::now() >= deadline {
                    return None;
                }
            }
            Err(_) => return Some(Instant::now()),
        }
    }
}

/// Polls `condition` every 20 ms until it holds or `limit` passes; returns whether it held.
fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An SSE upstream that writes a burst of `burst_bytes` of 4 KiB events at once, then one
/// small event every `interval` until the proxy closes the connection, which it reports.
fn filling_sse_upstream(burst_bytes: usize, interval: Duration) -> (Upstream, mpsc::Receiver<()>) {
    let (report, reports) = mpsc::channel();
    let report = std::sync::Mutex::new(report);
    let upstream = Upstream::start(move |mut conn: Conn| {
        if conn.read_request().is_none() {
            return;
        }
        conn.stream().set_nodelay(true).unwrap();
        if conn.start_event_stream().is_err() {
            return;
        }
        let event = format!("data: {}\n\n", "x".repeat(4 * 1024));
        let mut sent = 0;
        while sent < burst_bytes {
            if conn.chunk(event.as_bytes()).is_err() {
                let _ = report.lock().unwrap().send(());
                return;
            }
            sent += event.len();
        }
        while conn.chunk(b"data: tick\n\n").is_ok() {
            std::thread::sleep(interval);
        }
        let _ = report.lock().unwrap().send(());
    });
    (upstream, reports)
}

/// A client that stops reading an event stream the upstream keeps filling is closed by
/// sse_guard's `send_timeout`, and counted as such, not as a client that left. Run under
/// the shipped profiles (their chains, with a short send timeout).
#[test]
fn stuck_sse_reader_is_counted_as_send_timeout() {
    for profile in Profile::ALL {
        let filters = profile
            .filters_yaml()
            .replace("send_timeout: 30.0", "send_timeout: 2.0")
            .replace("send_timeout: 10.0", "send_timeout: 2.0");
        assert!(filters.contains("send_timeout: 2.0"), "{filters}");
        // 12 KiB of events, then silence: every write completes (under the socket's
        // low-water mark), so no write is pending when the client's closed window keeps
        // the data unsent. The kernel's user timeout (the plan's send_timeout) is what
        // finds the stuck reader, while the relay waits on the upstream.
        let (upstream, _closed) = filling_sse_upstream(12 << 10, Duration::from_secs(60));
        let edge = Edge::start(upstream.addr, &filters);
        let mut stuck = small_window_client(edge.listen);
        stuck
            .write_all(b"POST /mcp HTTP/1.1\r\nHost: mcp.test\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            .unwrap();
        let mut head = [0u8; 12];
        stuck.read_exact(&mut head).unwrap();
        assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
        let stopped = Instant::now();

        let counted = eventually(Duration::from_secs(15), || {
            labelled(&edge, "mcp_edge_sse_guard_closed_total", &[]) > 0.0
                || labelled(&edge, "mcp_edge_cleanup_total", &[]) > 0.0
        });
        assert!(counted, "{}: the stuck stream was never closed", profile.name());
        let send_timeouts = labelled(
            &edge,
            "mcp_edge_sse_guard_closed_total",
            &[("reason", "send_timeout")],
        );
        println!(
            "{}: closed {:?} after the client stopped reading; sse_guard: {}; requests: {}",
            profile.name(),
            stopped.elapsed(),
            support::metrics::outcomes(&edge, "mcp_edge_sse_guard_closed_total", "reason"),
            support::metrics::outcomes(&edge, "mcp_edge_requests_total", "status"),
        );
        assert_eq!(
            send_timeouts,
            1.0,
            "{}: the stuck reader was not counted as send_timeout:\n{}",
            profile.name(),
            edge.log()
        );
    }
}
