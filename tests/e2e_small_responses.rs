//! A small response whose whole chunked body reached the edge with its head leaves in one
//! write, re-framed with `Content-Length` (framing is hop-by-hop): a `202` with an empty
//! chunked body no longer reaches the client as a head and, a moment later, its
//! terminator. Responses still streaming, and event streams, keep their chunked framing.

mod support;

use std::io::Write;
use std::net::TcpStream;
use support::edge::Edge;
use support::http::Client;
use support::upstream::{Conn, Upstream};

/// An upstream answering each request with `response`, written in one piece.
fn upstream_answering(response: &'static [u8]) -> Upstream {
    Upstream::start(move |mut conn: Conn| {
        while conn.read_request().is_some() {
            let mut stream: &TcpStream = conn.stream();
            if stream.write_all(response).is_err() {
                return;
            }
        }
    })
}

/// The head and body of one POST through `edge`.
fn post(edge: &Edge) -> (support::http::Head, Vec<u8>) {
    let mut client = Client::connect(edge.listen);
    client.send(
        "POST",
        "/mcp",
        &[("content-type", "application/json")],
        b"{}",
    );
    let head = client.read_head();
    let body = client.read_body(&head);
    (head, body)
}

#[test]
fn an_empty_chunked_202_is_reframed_with_a_content_length_of_zero() {
    let upstream =
        upstream_answering(b"HTTP/1.1 202 Accepted\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n");
    let edge = Edge::start(upstream.addr, "");
    let (head, body) = post(&edge);
    assert_eq!(head.status, 202);
    assert_eq!(head.header("content-length"), Some("0"));
    assert_eq!(head.header("transfer-encoding"), None);
    assert!(body.is_empty());
}

#[test]
fn a_small_chunked_json_body_that_arrived_whole_leaves_with_a_content_length() {
    let upstream = upstream_answering(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n\
          7\r\n{\"a\":1}\r\n0\r\n\r\n",
    );
    let edge = Edge::start(upstream.addr, "");
    for _ in 0..3 {
        let (head, body) = post(&edge);
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some("7"));
        assert_eq!(head.header("transfer-encoding"), None);
        assert_eq!(body, b"{\"a\":1}");
    }
}

#[test]
fn an_event_stream_keeps_its_chunked_framing() {
    let upstream = upstream_answering(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
          f\r\ndata: {\"a\":1}\n\n\r\n0\r\n\r\n",
    );
    let edge = Edge::start(upstream.addr, "");
    let (head, body) = post(&edge);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), None);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(body, b"data: {\"a\":1}\n\n");
}
