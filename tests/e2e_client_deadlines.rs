//! End-to-end tests of the client deadlines: clients that stall while sending a request
//! head, sit idle on a kept-alive connection, stop reading a response, or hold so many
//! connections that the process runs out of descriptors. The real binary, real sockets.

#[path = "support/profiles.rs"]
mod profiles;
#[path = "support/stalling_clients.rs"]
mod stalling_clients;
mod support;

use profiles::Profile;
use stalling_clients::{
    eventually, idle_keepalive_client, limit_open_files, open_files, small_window_client, trickle,
    wait_closed,
};
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
        assert!(
            counted,
            "{}: the stuck stream was never closed",
            profile.name()
        );
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

/// Slowloris: clients that send their request head one byte at a time, each byte well
/// within any per-read timeout, are closed once `client_header_timeout` has passed since
/// they connected, and counted.
#[test]
fn a_request_head_trickled_byte_by_byte_is_cut_at_client_header_timeout() {
    const CLIENTS: usize = 20;
    const HEAD: &[u8] = b"GET /mcp HTTP/1.1\r\nHost: mcp.test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let upstream = json_upstream(b"{}".to_vec());
    let edge =
        Edge::start_yaml(|ports| config(ports, upstream.addr, "  client_header_timeout: 2\n", ""));
    let listen = edge.listen;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                trickle(
                    listen,
                    HEAD,
                    Duration::from_millis(250),
                    Duration::from_secs(8),
                )
            })
        })
        .collect();
    // One more client sends half a head, then nothing: it is answered 408.
    let mut partial = TcpStream::connect(listen).unwrap();
    partial.write_all(&HEAD[..30]).unwrap();
    let partial_started = Instant::now();
    let mut answer = Vec::new();
    partial
        .set_read_timeout(Some(Duration::from_secs(8)))
        .unwrap();
    let _ = partial.read_to_end(&mut answer);
    let partial_closed = partial_started.elapsed();

    for (i, client) in clients.into_iter().enumerate() {
        let seen = client.join().unwrap();
        let closed_after = seen
            .closed_after
            .unwrap_or_else(|| panic!("client {i} trickling its head was still open after 8 s"));
        assert!(
            closed_after >= Duration::from_millis(1900) && closed_after < Duration::from_secs(4),
            "client {i} closed after {closed_after:?}"
        );
        // The 408 may be lost to the reset the client's next byte draws; never another.
        assert!(
            seen.received.is_empty() || seen.received.starts_with(b"HTTP/1.1 408"),
            "client {i} got {:?}",
            String::from_utf8_lossy(&seen.received)
        );
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        partial_closed < Duration::from_secs(4),
        "{partial_closed:?}"
    );
    assert!(
        labelled(&edge, CLOSED, &[("reason", "header_timeout")]) >= (CLIENTS + 1) as f64,
        "{}",
        support::metrics::outcomes(&edge, CLOSED, "reason")
    );
    // A client that sends its head at once is served as before.
    let mut client = support::http::Client::connect(listen);
    let (head, body) = client.exchange("GET", "/mcp", &[], b"");
    assert_eq!((head.status, body.as_slice()), (200, &b"{}"[..]));
}

/// [`config`] with the listener accepting h2c too.
fn h2c_config(ports: &Ports, upstream: SocketAddr, server_extra: &str) -> String {
    let listener = format!("  - address: \"{}\"\n", ports.listen);
    config(ports, upstream, server_extra, "")
        .replace(&listener, &format!("{listener}    h2c: true\n"))
}

/// A kept-alive HTTP/1 connection idle after its response is closed at
/// `keepalive_timeout` (on an h2c listener, which reads HTTP/1 too).
#[test]
fn an_idle_keepalive_connection_closes_at_keepalive_timeout() {
    let upstream = json_upstream(b"{}".to_vec());
    let edge =
        Edge::start_yaml(|ports| h2c_config(ports, upstream.addr, "  keepalive_timeout: 2\n"));

    // HTTP/1 on the h2c listener: answered, then closed once idle for 2 s.
    let mut client = support::http::Client::connect(edge.listen);
    let (head, _) = client.exchange("GET", "/mcp", &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("connection"), Some("keep-alive"));
    let answered = Instant::now();
    let mut socket = client.stream().try_clone().unwrap();
    let closed = wait_closed(&mut socket, Duration::from_secs(8))
        .expect("the idle keep-alive connection was still open after 8 s");
    let idle_for = closed - answered;
    assert!(
        idle_for >= Duration::from_millis(1900) && idle_for < Duration::from_secs(4),
        "closed after {idle_for:?} idle"
    );
    assert_eq!(
        labelled(&edge, CLOSED, &[("reason", "keepalive_timeout")]),
        1.0
    );
}

/// An h2c connection with no stream open is closed at `keepalive_timeout`, as nginx does.
#[test]
fn an_idle_h2c_connection_closes_at_keepalive_timeout() {
    let upstream = json_upstream(b"{}".to_vec());
    let edge = Edge::start_yaml(|ports| {
        h2c_config(
            ports,
            upstream.addr,
            "  keepalive_timeout: 2
",
        )
    });
    // Prior knowledge: the preface and an empty SETTINGS frame, then nothing.
    let mut h2 = TcpStream::connect(edge.listen).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let opened = Instant::now();
    let closed = wait_closed(&mut h2, Duration::from_secs(8))
        .expect("the idle h2c connection was still open after 8 s");
    let idle_for = closed - opened;
    assert!(
        idle_for >= Duration::from_millis(1900) && idle_for < Duration::from_secs(4),
        "h2c closed after {idle_for:?} idle"
    );
}

/// A client that never reads a large JSON response is dropped at `send_timeout`, and the
/// exchange winds down like a departure: the upstream connection is released.
#[test]
fn a_client_that_never_reads_a_json_response_is_dropped_at_send_timeout() {
    const BODY_BYTES: usize = 32 << 20;
    let (report, reports) = mpsc::channel();
    let report = std::sync::Mutex::new(report);
    let upstream = Upstream::start(move |mut conn: Conn| {
        if conn.read_request().is_none() {
            return;
        }
        let body = vec![b'7'; BODY_BYTES];
        let written = conn.respond(200, "application/json", &body);
        let _ = report
            .lock()
            .unwrap()
            .send((Instant::now(), written.is_ok()));
    });
    let edge = Edge::start_yaml(|ports| config(ports, upstream.addr, "  send_timeout: 2\n", ""));
    let mut stuck = small_window_client(edge.listen);
    stuck
        .write_all(b"POST /mcp HTTP/1.1\r\nHost: mcp.test\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        .unwrap();
    let mut head = [0u8; 12];
    stuck.read_exact(&mut head).unwrap();
    assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
    let stopped = Instant::now();

    let (ended, complete) = reports
        .recv_timeout(Duration::from_secs(10))
        .expect("the upstream connection was still held 10 s after the client stopped reading");
    assert!(
        !complete,
        "the whole response went out to a client that reads nothing"
    );
    let held = ended - stopped;
    assert!(held < Duration::from_secs(5), "upstream held for {held:?}");
    assert!(
        eventually(Duration::from_secs(5), || labelled(
            &edge,
            CLOSED,
            &[("reason", "send_timeout")]
        ) == 1.0),
        "{}",
        support::metrics::outcomes(&edge, CLOSED, "reason")
    );
    // The client was closed: what the kernel holds drains, then EOF or a reset.
    let mut received = 0usize;
    stuck
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut sink = vec![0u8; 1 << 16];
    let closed = loop {
        match stuck.read(&mut sink) {
            Ok(0) => break true,
            Ok(read) => received += read,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break false
            }
            Err(_) => break true,
        }
    };
    assert!(closed, "the stuck client's connection stayed open");
    assert!(received < BODY_BYTES, "received the whole body");
    assert_eq!(labelled(&edge, "mcp_edge_sse_guard_closed_total", &[]), 0.0);
}

/// With the process limited to 128 descriptors, 300 idle clients do not starve the admin
/// listener or a new client: past `max_connections` the longest-idle connections are
/// closed to admit new ones, and the process stays under its limit.
#[test]
fn idle_clients_past_max_connections_do_not_starve_new_clients_or_the_admin_listener() {
    const OPEN_FILES: u64 = 128;
    const IDLE_CLIENTS: usize = 300;
    let upstream = json_upstream(b"{}".to_vec());
    let edge =
        Edge::start_yaml(|ports| config(ports, upstream.addr, "  max_connections: 40\n", ""));
    limit_open_files(edge.pid(), OPEN_FILES);
    println!("idle process: {} descriptors", open_files(edge.pid()));

    let saturating = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..IDLE_CLIENTS {
        if saturating.elapsed() > Duration::from_secs(20) {
            break;
        }
        idle.extend(idle_keepalive_client(edge.listen));
    }
    println!(
        "{} idle clients in {:?}; process: {} descriptors",
        idle.len(),
        saturating.elapsed(),
        open_files(edge.pid())
    );

    let asked = Instant::now();
    let health = support::edge::admin_get(edge.admin, "/healthz");
    let answered_in = asked.elapsed();
    assert_eq!(
        health.map(|(status, _)| status),
        Some(200),
        "admin /healthz unanswered ({answered_in:?}) with the proxy listener saturated"
    );
    assert!(answered_in < Duration::from_secs(2), "{answered_in:?}");

    let asked = Instant::now();
    let mut client = TcpStream::connect_timeout(&edge.listen, Duration::from_secs(2))
        .expect("connect a new client");
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    client
        .write_all(b"GET /mcp HTTP/1.1\r\nHost: mcp.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = Vec::new();
    let _ = client.read_to_end(&mut response);
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "a new client got {:?} after {:?}",
        String::from_utf8_lossy(&response),
        asked.elapsed()
    );
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );

    let files = open_files(edge.pid());
    assert!(files < OPEN_FILES as usize, "{files} descriptors open");
    assert!(
        edge.metric("mcp_edge_client_connections_active") <= 41.0,
        "{}",
        edge.metric("mcp_edge_client_connections_active")
    );
    assert!(
        labelled(&edge, CLOSED, &[("reason", "reclaimed")]) > 0.0,
        "{}",
        support::metrics::outcomes(&edge, CLOSED, "reason")
    );
    drop(idle);
}
