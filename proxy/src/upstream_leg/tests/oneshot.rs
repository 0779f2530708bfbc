//! One-shot requests against test upstreams on 127.0.0.1.

use std::time::Duration;

use http::{Method, StatusCode};
use tokio::io::AsyncWriteExt;

use super::super::oneshot::{resolve, send, OneShot, OneShotError, ReadBody};
use super::super::Endpoint;
use super::support::{read_request, spawn_upstream, within, Upstream};

/// An upstream that sends each request head it reads on `heads`, then `response`.
async fn answering(
    response: &'static [u8],
) -> (Upstream, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (heads, seen) = tokio::sync::mpsc::unbounded_channel();
    let upstream = spawn_upstream(move |mut stream, _| {
        let heads = heads.clone();
        async move {
            let mut buf = Vec::new();
            if let Some(request) = read_request(&mut stream, &mut buf).await {
                let _ = heads.send(String::from_utf8_lossy(&request).into_owned());
                let _ = stream.write_all(response).await;
                // Stay open: a reader that waits for the close would hang.
                std::future::pending::<()>().await;
            }
        }
    })
    .await;
    (upstream, seen)
}

fn get<'a>(target: &'a str) -> OneShot<'a> {
    OneShot {
        method: &Method::GET,
        target,
        host: "admin.test:9",
        user_agent: "mcp-edge-test",
    }
}

#[tokio::test]
async fn a_get_reads_status_and_body_and_asks_to_close() {
    let (upstream, mut seen) = answering(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    )
    .await;
    let endpoint = Endpoint::plain(upstream.addr);
    let reply = within(send(
        &endpoint,
        get("/config?x=1"),
        ReadBody::UpTo(1024),
        Duration::from_secs(5),
    ))
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(&reply.body[..], b"abcde");
    let head = seen.recv().await.unwrap().to_ascii_lowercase();
    assert!(head.starts_with("get /config?x=1 http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nhost: admin.test:9\r\n"), "{head}");
    assert!(head.contains("\r\nuser-agent: mcp-edge-test\r\n"), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
}

#[tokio::test]
async fn skip_returns_at_the_head_of_a_body_that_never_ends() {
    let (upstream, _seen) =
        answering(b"HTTP/1.1 503 Busy\r\ncontent-length: 1000\r\n\r\npartial").await;
    let endpoint = Endpoint::plain(upstream.addr);
    let reply = within(send(
        &endpoint,
        get("/"),
        ReadBody::Skip,
        Duration::from_secs(5),
    ))
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.body.is_empty());
    // The same answer read in full waits for the rest: the deadline ends it.
    let error = within(send(
        &endpoint,
        get("/"),
        ReadBody::UpTo(4096),
        Duration::from_millis(200),
    ))
    .await
    .unwrap_err();
    assert!(matches!(error, OneShotError::Timeout(_)), "{error}");
}

#[tokio::test]
async fn a_body_past_the_limit_is_an_error() {
    let (upstream, _seen) =
        answering(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789").await;
    let endpoint = Endpoint::plain(upstream.addr);
    let error = within(send(
        &endpoint,
        get("/"),
        ReadBody::UpTo(9),
        Duration::from_secs(5),
    ))
    .await
    .unwrap_err();
    assert!(matches!(error, OneShotError::BodyTooLarge(9)), "{error}");
}

#[tokio::test]
async fn a_refused_connect_is_an_upstream_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let error = within(send(
        &Endpoint::plain(closed),
        get("/"),
        ReadBody::Skip,
        Duration::from_secs(5),
    ))
    .await
    .unwrap_err();
    assert!(matches!(error, OneShotError::Upstream(_)), "{error}");
}

#[tokio::test]
async fn hosts_resolve_with_or_without_brackets() {
    let endpoint = resolve("127.0.0.1", 8080, None).await.unwrap();
    assert_eq!(endpoint.socket(), "127.0.0.1:8080".parse().unwrap());
    assert!(!endpoint.is_tls());
    let endpoint = resolve("[::1]", 443, None).await.unwrap();
    assert_eq!(endpoint.socket(), "[::1]:443".parse().unwrap());
    let error = resolve("no-such-host.invalid", 80, None).await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot resolve no-such-host.invalid:80: "),
        "{error}"
    );
}
