//! End-to-end tests of how the proxy closes a client it gives up on: a connection closed
//! for `send_timeout`, `client_header_timeout` or `max_connections` is reset
//! (`SO_LINGER` 0), so the kernel frees its send queue at once instead of holding it in
//! FIN-WAIT-1 for a client that never opens its window; and a response that is not an
//! event stream has a bounded socket send buffer. The real binary, real sockets, the
//! kernel's own socket table (`/proc/net/tcp`).

#[path = "support/stalling_clients.rs"]
mod stalling_clients;
mod support;

use stalling_clients::eventually;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use support::edge::{Edge, Ports};
use support::metrics::labelled;
use support::upstream::{Conn, Upstream};

/// The counter of client connections the proxy closed, by reason.
const CLOSED: &str = "mcp_edge_client_connections_closed_total";
/// `/proc/net/tcp`'s code of FIN-WAIT-1.
const FIN_WAIT_1: u8 = 0x04;
/// `/proc/net/tcp`'s code of ESTABLISHED.
const ESTABLISHED: u8 = 0x01;
/// `/proc/net/tcp`'s code of LISTEN.
const LISTEN: u8 = 0x0A;

/// An upstream whose every response is a JSON body that never ends (chunked).
fn endless_json_upstream() -> Upstream {
    Upstream::start(|mut conn: Conn| {
        if conn.read_request().is_none() {
            return;
        }
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        if conn.stream().write_all(head).is_err() {
            return;
        }
        let piece = vec![b'7'; 64 * 1024];
        while conn.chunk(&piece).is_ok() {}
    })
}

/// A config routing `/` to `upstream`, with `server_extra` under `server:`.
fn config(ports: &Ports, upstream: SocketAddr, server_extra: &str) -> String {
    format!(
        "{}upstreams:\n  main:\n    servers: [\"{upstream}\"]\nroutes:\n  - match: {{path_prefix: /}}\n    upstream: main\nfilters: []\n",
        ports.preamble_with(server_extra)
    )
}

/// One socket of the kernel's IPv4 TCP table.
#[derive(Debug)]
struct Socket {
    state: u8,
    /// Send-Q: bytes not yet acknowledged by the peer.
    send_queue: u64,
}

/// The sockets whose local port is `port` (`/proc/net/tcp`; the edge listens on IPv4).
fn sockets_on(port: u16) -> Vec<Socket> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(fields.get(1)?.rsplit(':').next()?, 16).ok()?;
            let state = u8::from_str_radix(fields.get(3)?, 16).ok()?;
            let send_queue = u64::from_str_radix(fields.get(4)?.split(':').next()?, 16).ok()?;
            (local_port == port).then_some(Socket { state, send_queue })
        })
        .collect()
}

/// Sends a request for the endless body and never reads.
fn stuck_client(edge: &Edge) -> TcpStream {
    let mut client = TcpStream::connect(edge.listen).unwrap();
    client
        .write_all(b"GET /endless HTTP/1.1\r\nHost: mcp.test\r\n\r\n")
        .unwrap();
    client
}

/// Clients that never read an endless JSON body are closed at `send_timeout`, and none
/// of the edge's sockets is left in FIN-WAIT-1 holding their data. While they are stuck,
/// the edge's send queue for each stays bounded.
#[test]
fn clients_closed_at_send_timeout_leave_no_queued_socket_behind() {
    const CLIENTS: usize = 5;
    const BOUNDED_SEND_QUEUE: u64 = 512 * 1024;
    let upstream = endless_json_upstream();
    let edge = Edge::start_yaml(|ports| config(ports, upstream.addr, "  send_timeout: 2\n"));
    let port = edge.listen.port();
    let _clients: Vec<TcpStream> = (0..CLIENTS).map(|_| stuck_client(&edge)).collect();

    // Stuck: every accepted socket has data queued that the client does not take. Its
    // largest queue is noted until the closes are counted.
    let mut largest = 0;
    let mut stuck_seen = 0;
    assert!(
        eventually(Duration::from_secs(10), || {
            let stuck: Vec<Socket> = sockets_on(port)
                .into_iter()
                .filter(|s| s.state == ESTABLISHED && s.send_queue > 0)
                .collect();
            stuck_seen = stuck_seen.max(stuck.len());
            largest = stuck.iter().map(|s| s.send_queue).fold(largest, u64::max);
            labelled(&edge, CLOSED, &[("reason", "send_timeout")]) == CLIENTS as f64
        }),
        "{}",
        support::metrics::outcomes(&edge, CLOSED, "reason")
    );
    println!("largest Send-Q of the edge's stuck sockets before the close: {largest} bytes");
    assert_eq!(stuck_seen, CLIENTS, "every client's socket was seen stuck");
    assert!(
        largest <= BOUNDED_SEND_QUEUE,
        "a JSON response's send queue grew to {largest} bytes"
    );
    // The connections close as the exchanges end, just after they are counted.
    let holding = |sockets: &[Socket]| {
        sockets
            .iter()
            .filter(|s| s.state == ESTABLISHED || (s.state == FIN_WAIT_1 && s.send_queue > 0))
            .count()
    };
    let mut after = Vec::new();
    let released = eventually(Duration::from_secs(2), || {
        after = sockets_on(port);
        holding(&after) == 0
    });
    println!("the edge's sockets after the close: {after:?}");
    assert!(
        released,
        "sockets of closed clients still hold data: {after:?}"
    );
    // Stays so: a plain close would keep FIN-WAIT-1 with its queue for minutes.
    std::thread::sleep(Duration::from_millis(500));
    let later = sockets_on(port);
    assert_eq!(holding(&later), 0, "{later:?}");
}

/// Reads until EOF or an error; returns what arrived and whether the end was a reset.
fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, bool) {
    stream
        .set_read_timeout(Some(Duration::from_secs(8)))
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return (received, false),
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error) => {
                assert_ne!(error.kind(), ErrorKind::WouldBlock, "still open after 8 s");
                return (received, error.kind() == ErrorKind::ConnectionReset);
            }
        }
    }
}

/// The edge's sockets on `port` other than its listening one.
fn connections_on(port: u16) -> Vec<Socket> {
    sockets_on(port)
        .into_iter()
        .filter(|s| s.state != LISTEN)
        .collect()
}

/// A client that sends no request head within `client_header_timeout` is reset. One that
/// sends part of a head is answered 408 and then reset: the edge keeps no socket for it
/// (a plain close leaves one in FIN-WAIT-2 until the client closes its side).
#[test]
fn clients_closed_at_client_header_timeout_are_reset() {
    let upstream = endless_json_upstream();
    let edge =
        Edge::start_yaml(|ports| config(ports, upstream.addr, "  client_header_timeout: 1\n"));
    let port = edge.listen.port();
    let mut silent = TcpStream::connect(edge.listen).unwrap();
    let mut partial = TcpStream::connect(edge.listen).unwrap();
    partial.write_all(b"GET / HTTP/1.1\r\nHost: mc").unwrap();
    let (received, reset) = read_to_end(&mut silent);
    assert!(
        received.is_empty() && reset,
        "silent: reset {reset}, {received:?}"
    );
    let (received, _) = read_to_end(&mut partial);
    assert!(
        received.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    // The client keeps its socket open; the edge holds none.
    let mut left = Vec::new();
    let released = eventually(Duration::from_secs(2), || {
        left = connections_on(port);
        left.is_empty()
    });
    assert!(released, "the edge still holds {left:?}");
    drop(partial);
}

/// Past `max_connections`, with no connection idle, a new connection is reset.
#[test]
fn a_connection_refused_at_max_connections_is_reset() {
    let upstream = endless_json_upstream();
    let edge = Edge::start_yaml(|ports| config(ports, upstream.addr, "  max_connections: 1\n"));
    // The harness's readiness probe connected to the listener: its slot must be free.
    // Until the edge accepted it, the active count is 0 as well, so first have a request
    // answered: the listener accepts in order, so the probe was accepted before it.
    let answered = eventually(Duration::from_secs(5), || {
        let Ok(mut settle) = TcpStream::connect(edge.listen) else {
            return false;
        };
        let _ = settle.write_all(b"NOT-HTTP\r\n\r\n");
        read_to_end(&mut settle).0.starts_with(b"HTTP/1.1 400")
    });
    assert!(answered, "no request was answered: {}", edge.log());
    let probe_gone = eventually(Duration::from_secs(5), || {
        edge.metric("mcp_edge_client_connections_active") == 0.0
    });
    assert!(
        probe_gone,
        "the readiness probe's connection is still counted"
    );
    let mut busy = stuck_client(&edge);
    let mut head = [0u8; 12];
    busy.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let mut refused = TcpStream::connect(edge.listen).unwrap();
    let (received, reset) = read_to_end(&mut refused);
    assert!(
        received.is_empty() && reset,
        "refused: reset {reset}, {received:?}"
    );
    // At least this one: settling the probe may have been refused too.
    assert!(labelled(&edge, CLOSED, &[("reason", "over_capacity")]) >= 1.0);
}
