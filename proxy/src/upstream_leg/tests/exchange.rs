//! Single exchanges against real upstreams on 127.0.0.1.

use http::{Method, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::super::connection::next_read_size;
use super::super::response::BodyFraming;
use super::super::{UpstreamConnection, UpstreamError};
use super::support::{exchange, host_headers, read_request, serve_each, spawn_upstream, within};

async fn connect(addr: std::net::SocketAddr) -> UpstreamConnection {
    UpstreamConnection::connect(addr, Some(std::time::Duration::from_secs(5)))
        .await
        .unwrap()
}

#[tokio::test]
async fn continue_then_ok() {
    let up = spawn_upstream(|s, _| {
        serve_each(
            s,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        )
    })
    .await;
    within(async {
        let mut conn = connect(up.addr).await;
        let (head, body) = exchange(&mut conn, Method::POST, b"{}").await.unwrap();
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(body, b"ok");
        assert!(conn.is_reusable());
    })
    .await;
}

#[tokio::test]
async fn sse_chunks_arrive_as_written_and_no_buffer_is_held() {
    let (go_tx, go_rx) = mpsc::unbounded_channel::<()>();
    let mut go_rx = Some(go_rx);
    let up = spawn_upstream(move |mut s, _| {
        let mut go = go_rx.take().unwrap();
        async move {
            let mut buf = Vec::new();
            read_request(&mut s, &mut buf).await.unwrap();
            let head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
            s.write_all(head).await.unwrap();
            for i in 0..3 {
                go.recv().await.unwrap();
                let event = format!("data: {i}\n\n");
                s.write_all(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes()).await.unwrap();
            }
            go.recv().await.unwrap();
            s.write_all(b"0\r\n\r\n").await.unwrap();
            serve_each(s, b"").await;
        }
    })
    .await;
    within(async {
        let mut conn = connect(up.addr).await;
        conn.send_request(&Method::GET, "/sse", &host_headers(), b"")
            .await
            .unwrap();
        let head = conn.read_response_head().await.unwrap();
        assert_eq!(head.framing, BodyFraming::Chunked);
        assert_eq!(
            conn.read_buffer_capacity(),
            0,
            "nothing buffered after the head"
        );
        for i in 0..3 {
            // The next event is written only after this one was read.
            go_tx.send(()).unwrap();
            let piece = conn.read_body().await.unwrap().unwrap();
            assert_eq!(piece, format!("data: {i}\n\n").as_bytes());
            drop(piece);
            assert_eq!(conn.read_buffer_capacity(), 0, "idle stream holds a buffer");
            assert!(!conn.is_reusable());
        }
        go_tx.send(()).unwrap();
        assert_eq!(conn.read_body().await.unwrap(), None);
        assert!(conn.is_reusable());
    })
    .await;
}

#[tokio::test]
async fn garbage_is_an_invalid_response() {
    let up = spawn_upstream(|s, _| serve_each(s, b"SSH-2.0-OpenSSH_9.6\r\n\r\n")).await;
    within(async {
        let mut conn = connect(up.addr).await;
        let err = exchange(&mut conn, Method::GET, b"").await.unwrap_err();
        assert!(matches!(err, UpstreamError::InvalidResponse(_)), "{err:?}");
        assert!(!err.is_stale_reuse(true));
        assert!(!conn.is_reusable());
        let again = conn.read_body().await.unwrap_err();
        assert!(matches!(again, UpstreamError::InvalidState(_)));
    })
    .await;
}

#[tokio::test]
async fn close_mid_body_is_reported() {
    for response in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello"[..],
        &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n"[..],
    ] {
        let up = spawn_upstream(move |mut s, _| async move {
            let mut buf = Vec::new();
            read_request(&mut s, &mut buf).await.unwrap();
            s.write_all(response).await.unwrap();
        })
        .await;
        within(async {
            let mut conn = connect(up.addr).await;
            conn.send_request(&Method::GET, "/", &host_headers(), b"")
                .await
                .unwrap();
            conn.read_response_head().await.unwrap();
            assert_eq!(conn.read_body().await.unwrap().unwrap(), "hello");
            let err = conn.read_body().await.unwrap_err();
            assert!(matches!(err, UpstreamError::ClosedMidBody), "{err:?}");
            assert!(!conn.is_reusable());
        })
        .await;
    }
}

#[tokio::test]
async fn body_until_close_is_complete_but_not_reusable() {
    let up = spawn_upstream(|mut s, _| async move {
        let mut buf = Vec::new();
        read_request(&mut s, &mut buf).await.unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil ").await.unwrap();
        s.write_all(b"close").await.unwrap();
    })
    .await;
    within(async {
        let mut conn = connect(up.addr).await;
        let (head, body) = exchange(&mut conn, Method::GET, b"").await.unwrap();
        assert_eq!(head.framing, BodyFraming::UntilClose);
        assert_eq!(body, b"until close");
        assert!(!conn.is_reusable());
    })
    .await;
}

#[tokio::test]
async fn bodyless_responses_keep_the_connection() {
    let up = spawn_upstream(|mut s, _| async move {
        let mut buf = Vec::new();
        read_request(&mut s, &mut buf).await.unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n")
            .await
            .unwrap();
        read_request(&mut s, &mut buf).await.unwrap();
        s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .await
            .unwrap();
        serve_each(s, b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n").await;
    })
    .await;
    within(async {
        let mut conn = connect(up.addr).await;
        let (head, body) = exchange(&mut conn, Method::HEAD, b"").await.unwrap();
        assert_eq!((head.framing, body.len()), (BodyFraming::Empty, 0));
        assert!(conn.is_reusable());
        let (head, _) = exchange(&mut conn, Method::DELETE, b"").await.unwrap();
        assert_eq!(head.status, StatusCode::NO_CONTENT);
        let (head, _) = exchange(&mut conn, Method::POST, b"{}").await.unwrap();
        assert_eq!(head.status, StatusCode::ACCEPTED);
        assert!(conn.is_reusable());
    })
    .await;
}

#[tokio::test]
async fn large_bodies_both_ways() {
    const UP: usize = 200 * 1024;
    const DOWN: usize = 1024 * 1024 + 7;
    let up = spawn_upstream(|mut s, _| async move {
        let mut buf = Vec::new();
        let req = read_request(&mut s, &mut buf).await.unwrap();
        let body_at = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert_eq!(req.len() - body_at, UP);
        assert!(req[body_at..].iter().all(|&b| b == b'u'));
        let body: Vec<u8> = (0..DOWN).map(|i| (i % 251) as u8).collect();
        s.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {DOWN}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        s.write_all(&body).await.unwrap();
    })
    .await;
    within(async {
        let mut conn = connect(up.addr).await;
        let (_, body) = exchange(&mut conn, Method::POST, &vec![b'u'; UP])
            .await
            .unwrap();
        assert_eq!(body.len(), DOWN);
        assert!(body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        assert!(conn.is_reusable());
        assert_eq!(conn.read_buffer_capacity(), 0);
    })
    .await;
}

#[test]
fn read_size_adapts() {
    assert_eq!(next_read_size(8192, 8192), 16384);
    assert_eq!(next_read_size(65536, 65536), 65536);
    assert_eq!(next_read_size(32768, 100), 16384);
    assert_eq!(next_read_size(8192, 100), 8192);
    assert_eq!(next_read_size(16384, 10000), 16384);
}

#[tokio::test]
async fn read_timeout_then_resume() {
    let (go_tx, go_rx) = mpsc::unbounded_channel::<()>();
    let mut go_rx = Some(go_rx);
    let up = spawn_upstream(move |mut s, _| {
        let mut go = go_rx.take().unwrap();
        async move {
            let mut buf = Vec::new();
            read_request(&mut s, &mut buf).await.unwrap();
            go.recv().await.unwrap();
            write_ok(&mut s).await;
        }
    })
    .await;
    within(async {
        let mut conn = connect(up.addr).await;
        conn.set_read_timeout(Some(std::time::Duration::from_millis(30)));
        conn.send_request(&Method::GET, "/", &host_headers(), b"")
            .await
            .unwrap();
        let err = conn.read_response_head().await.unwrap_err();
        assert!(matches!(err, UpstreamError::ReadTimeout), "{err:?}");
        go_tx.send(()).unwrap();
        conn.set_read_timeout(None);
        let head = conn.read_response_head().await.unwrap();
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(conn.read_body().await.unwrap().unwrap(), "ok");
    })
    .await;
}

async fn write_ok(s: &mut tokio::net::TcpStream) {
    s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        .await
        .unwrap();
}

#[tokio::test]
async fn dropped_reads_lose_nothing() {
    let (go_tx, go_rx) = mpsc::unbounded_channel::<&'static [u8]>();
    let mut go_rx = Some(go_rx);
    let up = spawn_upstream(move |mut s, _| {
        let mut go = go_rx.take().unwrap();
        async move {
            let mut buf = Vec::new();
            read_request(&mut s, &mut buf).await.unwrap();
            while let Some(part) = go.recv().await {
                s.write_all(part).await.unwrap();
            }
        }
    })
    .await;
    within(async {
        let mut conn = connect(up.addr).await;
        conn.send_request(&Method::GET, "/", &host_headers(), b"")
            .await
            .unwrap();
        go_tx.send(b"HTTP/1.1 200 OK\r\nTransfer-Enc").unwrap();
        poll_once_and_drop(conn.read_response_head()).await;
        go_tx.send(b"oding: chunked\r\n\r\n5\r").unwrap();
        let head = conn.read_response_head().await.unwrap();
        assert_eq!(head.framing, BodyFraming::Chunked);
        poll_once_and_drop(conn.read_body()).await;
        go_tx.send(b"\nhel").unwrap();
        assert_eq!(conn.read_body().await.unwrap().unwrap(), "hel");
        poll_once_and_drop(conn.read_body()).await;
        go_tx.send(b"lo\r\n0\r\n\r\n").unwrap();
        assert_eq!(conn.read_body().await.unwrap().unwrap(), "lo");
        assert_eq!(conn.read_body().await.unwrap(), None);
        assert!(conn.is_reusable());
    })
    .await;
}

/// Polls `fut` once inside `select!` and drops it if it is pending, as a
/// `select!` whose other branch wins would.
async fn poll_once_and_drop<T: std::fmt::Debug>(fut: impl std::future::Future<Output = T>) {
    tokio::select! {
        biased;
        out = fut => panic!("expected a pending read, got {out:?}"),
        _ = std::future::ready(()) => {}
    }
}

#[tokio::test]
async fn chunks_buffered_together_are_read_as_one_piece() {
    let up = spawn_upstream(|mut s, _| async move {
        let mut buf = Vec::new();
        read_request(&mut s, &mut buf).await.unwrap();
        // Head, three chunks and the last chunk in one write: one read upstream.
        let mut response = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for event in ["data: 1\n\n", "data: 2\n\n", "data: 3\n\n"] {
            response.extend_from_slice(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
        }
        response.extend_from_slice(b"0\r\n\r\n");
        s.write_all(&response).await.unwrap();
        serve_each(s, b"").await;
    })
    .await;
    within(async {
        let mut conn = connect(up.addr).await;
        conn.send_request(&Method::GET, "/sse", &host_headers(), b"")
            .await
            .unwrap();
        conn.read_response_head().await.unwrap();
        let piece = conn.read_body().await.unwrap().unwrap();
        assert_eq!(piece, &b"data: 1\n\ndata: 2\n\ndata: 3\n\n"[..]);
        assert_eq!(conn.read_body().await.unwrap(), None);
        assert!(conn.is_reusable());
    })
    .await;
}
