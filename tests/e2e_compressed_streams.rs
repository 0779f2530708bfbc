//! Compressed event streams, end to end: the real binary between a client that accepts
//! gzip and a legacy SSE upstream that can compress.
//!
//! - an upstream that honours `Accept-Encoding` is asked for `identity`: the edge sees the
//!   plain stream, so its keepalives reach the client intact across a silence longer than
//!   `keepalive_interval`, it sees the `endpoint` event, and an abandoned call on that
//!   session is wound down and counted;
//! - an upstream that compresses anyway has its stream relayed untouched: the client's
//!   gzip decoder reads the whole stream without error after two keepalive intervals of
//!   silence, and the stream is counted and logged once per server.

mod support;

use flate2::write::{GzDecoder, GzEncoder};
use flate2::Compression;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use support::edge::Edge;
use support::http::{Client, Head};
use support::metrics::labelled;
use support::upstream::{Conn, Upstream};

/// `keepalive_interval` of the edge, in seconds.
const KEEPALIVE: f64 = 0.5;

/// When the upstream compresses its event streams.
#[derive(Clone, Copy, PartialEq)]
enum Gzip {
    /// When the request accepts gzip.
    WhenAsked,
    /// Always, whatever the request says.
    Always,
}

/// An event stream in the making, gzip-encoded (flushed per event) or plain.
struct EventWriter {
    gzip: Option<GzEncoder<Vec<u8>>>,
}

impl EventWriter {
    fn start(conn: &mut Conn, gzip: bool) -> std::io::Result<Self> {
        let encoding = if gzip {
            "Content-Encoding: gzip\r\n"
        } else {
            ""
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n{encoding}Transfer-Encoding: chunked\r\n\r\n"
        );
        let mut stream = conn.stream();
        stream.write_all(head.as_bytes())?;
        Ok(Self {
            gzip: gzip.then(|| GzEncoder::new(Vec::new(), Compression::default())),
        })
    }

    fn event(&mut self, conn: &mut Conn, event: &[u8]) -> std::io::Result<()> {
        match self.gzip.as_mut() {
            None => conn.chunk(event),
            Some(encoder) => {
                encoder.write_all(event)?;
                encoder.flush()?;
                let bytes: Vec<u8> = encoder.get_mut().drain(..).collect();
                conn.chunk(&bytes)
            }
        }
    }

    fn finish(self, conn: &mut Conn) -> std::io::Result<()> {
        if let Some(encoder) = self.gzip {
            let rest = encoder.finish()?;
            if !rest.is_empty() {
                conn.chunk(&rest)?;
            }
        }
        conn.end_chunks()
    }
}

/// A legacy SSE upstream: `GET /sse` sends the `endpoint` event, stays silent for
/// `silence`, sends `event: done` and ends; `POST /messages/` is accepted (202) and
/// reported on `calls`, never answered. The request heads it saw go to `seen`.
fn legacy_upstream(
    gzip: Gzip,
    silence: Duration,
    seen: Arc<Mutex<Vec<String>>>,
    calls: mpsc::Sender<String>,
) -> Upstream {
    let calls = Mutex::new(calls);
    Upstream::start(move |mut conn| {
        while let Some(request) = conn.read_request() {
            let accept = request.header("accept-encoding").unwrap_or("").to_string();
            seen.lock().unwrap().push(format!(
                "{} {} accept-encoding={accept}",
                request.method, request.target
            ));
            if request.method == "POST" {
                let _ = calls
                    .lock()
                    .unwrap()
                    .send(String::from_utf8_lossy(&request.body).into_owned());
                if conn.respond(202, "text/plain", b"Accepted").is_err() {
                    return;
                }
                continue;
            }
            let compress = gzip == Gzip::Always || accept.contains("gzip");
            let Ok(mut writer) = EventWriter::start(&mut conn, compress) else {
                return;
            };
            if writer
                .event(
                    &mut conn,
                    b"event: endpoint\ndata: /messages/?session_id=s1\n\n",
                )
                .is_err()
            {
                return;
            }
            // Silent, watching for the peer to leave.
            let _ = conn.stream().set_read_timeout(Some(silence));
            let mut probe = [0u8; 1];
            if let Ok(0) = std::io::Read::read(&mut conn.stream(), &mut probe) {
                return;
            }
            let _ = writer.event(&mut conn, b"event: done\ndata: bye\n\n");
            let _ = writer.finish(&mut conn);
            return;
        }
    })
}

fn edge(upstream: SocketAddr) -> Edge {
    Edge::start(
        upstream,
        &format!(
            "  - sse_guard: {{send_timeout: 5, keepalive_interval: {KEEPALIVE}}}\n  - cleanup_deadline: {{session_pool_cleanup_timeout: 1, task_group_cleanup_timeout: 1}}\n"
        ),
    )
}

/// Opens `GET /sse` accepting gzip.
fn open_stream(edge: &Edge) -> (Client, Head) {
    let mut client = Client::connect(edge.listen);
    client.send(
        "GET",
        "/sse",
        &[("accept", "text/event-stream"), ("accept-encoding", "gzip")],
        b"",
    );
    let head = client.read_head();
    assert_eq!(head.status, 200, "{head:?}");
    (client, head)
}

/// What the client reads of a stream, decoded as its `Content-Encoding` says.
struct Decoded {
    gzip: Option<GzDecoder<Vec<u8>>>,
    plain: Vec<u8>,
}

impl Decoded {
    fn new(head: &Head) -> Self {
        let gzip = head.header("content-encoding") == Some("gzip");
        Self {
            gzip: gzip.then(|| GzDecoder::new(Vec::new())),
            plain: Vec::new(),
        }
    }

    /// Feeds one chunk; panics when the decoder rejects it.
    fn feed(&mut self, chunk: &[u8]) {
        match self.gzip.as_mut() {
            None => self.plain.extend_from_slice(chunk),
            Some(decoder) => {
                decoder
                    .write_all(chunk)
                    .and_then(|()| decoder.flush())
                    .unwrap_or_else(|e| panic!("the client's gzip decoder failed: {e}"));
            }
        }
    }

    fn text(&self) -> String {
        let bytes = match &self.gzip {
            Some(decoder) => decoder.get_ref(),
            None => &self.plain,
        };
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// Ends the body: a gzip stream must end cleanly.
    fn finish(self) -> String {
        match self.gzip {
            Some(decoder) => {
                let bytes = decoder
                    .finish()
                    .unwrap_or_else(|e| panic!("the gzip stream did not end cleanly: {e}"));
                String::from_utf8_lossy(&bytes).into_owned()
            }
            None => String::from_utf8_lossy(&self.plain).into_owned(),
        }
    }
}

#[test]
fn an_upstream_asked_for_identity_is_read_kept_alive_and_its_abandoned_call_counted() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (calls_tx, calls) = mpsc::channel();
    let upstream = legacy_upstream(
        Gzip::WhenAsked,
        Duration::from_secs(30),
        seen.clone(),
        calls_tx,
    );
    let edge = edge(upstream.addr);
    let (mut client, head) = open_stream(&edge);
    let mut decoded = Decoded::new(&head);
    // A silence of more than two keepalive intervals: every byte decodes, the endpoint
    // event and keepalive comments arrive.
    let silent_until = Instant::now() + Duration::from_secs_f64(KEEPALIVE * 2.5);
    while Instant::now() < silent_until || decoded.text().matches(": keepalive").count() < 2 {
        let chunk = client.read_chunk().expect("the stream stays open");
        decoded.feed(&chunk);
    }
    let text = decoded.text();
    assert!(
        text.contains("event: endpoint\ndata: /messages/?session_id=s1\n\n"),
        "{text}"
    );
    assert!(text.matches(": keepalive").count() >= 2, "{text}");
    let requests = seen.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .any(|r| r == "GET /sse accept-encoding=identity"),
        "the upstream was not asked for identity: {requests:?}"
    );

    // A call on the session, then the client leaves: the edge saw the endpoint event,
    // so the call is known, wound down and counted.
    let call = br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"slow","arguments":{}}}"#;
    let mut poster = Client::connect(edge.listen);
    let (posted, _) = poster.exchange(
        "POST",
        "/messages/?session_id=s1",
        &[("content-type", "application/json")],
        call,
    );
    assert_eq!(posted.status, 202);
    calls
        .recv_timeout(Duration::from_secs(10))
        .expect("the call reached the upstream");
    drop(client);
    let counted = edge.wait_metric("mcp_edge_abandoned_calls_total", 1.0);
    assert_eq!(counted, 1.0, "{}", edge.log());
    assert_eq!(
        labelled(&edge, "mcp_edge_abandoned_calls_total", &[("tool", "slow")]),
        1.0
    );
    assert!(
        edge.log().contains("winding down an abandoned call"),
        "{}",
        edge.log()
    );
    assert_eq!(
        labelled(&edge, "mcp_edge_encoded_event_streams_total", &[]),
        0.0
    );
}

#[test]
fn a_stream_compressed_anyway_is_relayed_untouched_counted_and_logged_once() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (calls_tx, _calls) = mpsc::channel();
    let silence = Duration::from_secs_f64(KEEPALIVE * 2.5);
    let upstream = legacy_upstream(Gzip::Always, silence, seen, calls_tx);
    let edge = edge(upstream.addr);
    for _ in 0..2 {
        let (mut client, head) = open_stream(&edge);
        assert_eq!(head.header("content-encoding"), Some("gzip"), "{head:?}");
        let mut decoded = Decoded::new(&head);
        while let Some(chunk) = client.read_chunk() {
            decoded.feed(&chunk);
        }
        let text = decoded.finish();
        assert_eq!(
            text,
            "event: endpoint\ndata: /messages/?session_id=s1\n\nevent: done\ndata: bye\n\n"
        );
    }
    assert_eq!(
        labelled(
            &edge,
            "mcp_edge_encoded_event_streams_total",
            &[("upstream", "main")]
        ),
        2.0
    );
    let log = edge.log();
    assert_eq!(
        log.matches("answered an event stream with a content coding")
            .count(),
        1,
        "{log}"
    );
}
