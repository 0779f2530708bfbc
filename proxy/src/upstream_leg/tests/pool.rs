//! Connection pool tests against real upstreams on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::super::{ConnectionPool, Endpoint, PoolSettings, UpstreamError};
use super::support::{exchange, read_request, serve_each, spawn_upstream, within};

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

fn pool() -> ConnectionPool {
    ConnectionPool::new(PoolSettings::default())
}

/// A pool that probes every idle connection before reuse.
fn probing_pool() -> ConnectionPool {
    ConnectionPool::new(PoolSettings {
        probe_after_idle: Duration::ZERO,
        ..PoolSettings::default()
    })
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let up = spawn_upstream(|s, _| serve_each(s, OK)).await;
    let pool = pool();
    within(async {
        for round in 0..3 {
            let (mut conn, reused) = pool
                .checkout(&Endpoint::plain(up.addr), None)
                .await
                .unwrap();
            assert_eq!(reused, round > 0, "round {round}");
            assert_eq!(conn.was_reused(), reused);
            let (head, body) = exchange(&mut conn, Method::POST, b"{}").await.unwrap();
            assert_eq!((head.status, &body[..]), (StatusCode::OK, &b"ok"[..]));
            pool.release(conn);
            assert_eq!(pool.idle_count(), 1);
        }
    })
    .await;
    assert_eq!(up.accepts(), 1);
}

#[tokio::test]
async fn connection_closed_while_idle_is_not_handed_out() {
    let (closed_tx, mut closed_rx) = mpsc::unbounded_channel::<()>();
    let up = spawn_upstream(move |mut s, index| {
        let closed = closed_tx.clone();
        async move {
            if index == 0 {
                let mut buf = Vec::new();
                read_request(&mut s, &mut buf).await.unwrap();
                s.write_all(OK).await.unwrap();
                drop(s); // the upstream's keep-alive timeout, say
                closed.send(()).unwrap();
            } else {
                serve_each(s, OK).await;
            }
        }
    })
    .await;
    let pool = probing_pool();
    within(async {
        let (mut conn, _) = pool
            .checkout(&Endpoint::plain(up.addr), None)
            .await
            .unwrap();
        exchange(&mut conn, Method::GET, b"").await.unwrap();
        pool.release(conn);
        assert_eq!(pool.idle_count(), 1);
        closed_rx.recv().await.unwrap();
        let (mut conn, reused) = pool
            .checkout(&Endpoint::plain(up.addr), None)
            .await
            .unwrap();
        assert!(
            !reused,
            "a connection closed by the upstream was handed out"
        );
        assert_eq!(pool.idle_count(), 0);
        let (_, body) = exchange(&mut conn, Method::GET, b"").await.unwrap();
        assert_eq!(body, b"ok");
    })
    .await;
    assert_eq!(up.accepts(), 2);
}

/// The upstream reads the second request of the first connection and closes
/// it without answering (`reset`: with an RST rather than a FIN).
async fn stale_reuse_is_retryable(reset: bool) {
    let up = spawn_upstream(move |mut s, index| async move {
        if index > 0 {
            return serve_each(s, OK).await;
        }
        let mut buf = Vec::new();
        read_request(&mut s, &mut buf).await.unwrap();
        s.write_all(OK).await.unwrap();
        read_request(&mut s, &mut buf).await.unwrap();
        if reset {
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
    })
    .await;
    let pool = pool();
    within(async {
        let (mut conn, _) = pool
            .checkout(&Endpoint::plain(up.addr), None)
            .await
            .unwrap();
        exchange(&mut conn, Method::POST, b"{}").await.unwrap();
        pool.release(conn);
        let (mut conn, reused) = pool
            .checkout(&Endpoint::plain(up.addr), None)
            .await
            .unwrap();
        assert!(reused);
        let err = exchange(&mut conn, Method::POST, b"{}").await.unwrap_err();
        assert!(
            matches!(err, UpstreamError::ClosedBeforeResponse),
            "{err:?}"
        );
        assert!(err.is_stale_reuse(reused));
        assert!(
            !err.is_stale_reuse(false),
            "a fresh connection is not stale"
        );
        pool.release(conn);
        assert_eq!(
            pool.idle_count(),
            0,
            "a failed connection went back to the pool"
        );
        let (mut conn, reused) = pool
            .checkout(&Endpoint::plain(up.addr), None)
            .await
            .unwrap();
        assert!(!reused);
        assert_eq!(
            exchange(&mut conn, Method::POST, b"{}").await.unwrap().1,
            b"ok"
        );
    })
    .await;
    assert_eq!(up.accepts(), 2);
}

#[tokio::test]
async fn stale_reuse_closed_with_fin() {
    stale_reuse_is_retryable(false).await;
}

#[tokio::test]
async fn stale_reuse_closed_with_rst() {
    stale_reuse_is_retryable(true).await;
}

#[tokio::test]
async fn expired_connections_are_not_reused() {
    let up = spawn_upstream(|s, _| serve_each(s, OK)).await;
    let pool = ConnectionPool::new(PoolSettings {
        idle_timeout: Duration::ZERO,
        ..PoolSettings::default()
    });
    within(async {
        for _ in 0..2 {
            let (mut conn, reused) = pool
                .checkout(&Endpoint::plain(up.addr), None)
                .await
                .unwrap();
            assert!(!reused);
            exchange(&mut conn, Method::GET, b"").await.unwrap();
            pool.release(conn);
        }
        assert_eq!(pool.evict_expired(), 1);
        assert_eq!(pool.idle_count(), 0);
    })
    .await;
    assert_eq!(up.accepts(), 2);
}

#[tokio::test]
async fn idle_connections_are_capped_and_unfinished_ones_dropped() {
    let up = spawn_upstream(|s, _| serve_each(s, OK)).await;
    let pool = ConnectionPool::new(PoolSettings {
        max_idle_per_server: 2,
        ..PoolSettings::default()
    });
    within(async {
        let mut conns = Vec::new();
        for _ in 0..3 {
            let (mut conn, _) = pool
                .checkout(&Endpoint::plain(up.addr), None)
                .await
                .unwrap();
            exchange(&mut conn, Method::GET, b"").await.unwrap();
            conns.push(conn);
        }
        let (unfinished, _) = pool
            .checkout(&Endpoint::plain(up.addr), None)
            .await
            .unwrap();
        pool.release(unfinished);
        assert_eq!(pool.idle_count(), 0);
        for conn in conns {
            pool.release(conn);
        }
        assert_eq!(pool.idle_count(), 2);
    })
    .await;
}

#[tokio::test]
async fn connect_refused_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = pool()
        .checkout(&Endpoint::plain(addr), Some(Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Connect(_)), "{err:?}");
}

#[test]
fn idle_connections_stay_on_their_thread() {
    let pool = Arc::new(pool());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let up = rt.block_on(async {
        let up = spawn_upstream(|s, _| serve_each(s, OK)).await;
        let (mut conn, _) = pool
            .checkout(&Endpoint::plain(up.addr), None)
            .await
            .unwrap();
        exchange(&mut conn, Method::GET, b"").await.unwrap();
        pool.release(conn);
        up
    });
    assert_eq!(pool.idle_count(), 1);
    let other = pool.clone();
    let addr = up.addr;
    let reused_elsewhere = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            other
                .checkout(&Endpoint::plain(addr), None)
                .await
                .unwrap()
                .1
        })
    })
    .join()
    .unwrap();
    assert!(
        !reused_elsewhere,
        "another thread got this thread's connection"
    );
    assert_eq!(pool.idle_count(), 1);
    let reused_here =
        rt.block_on(async { pool.checkout(&Endpoint::plain(addr), None).await.unwrap().1 });
    assert!(reused_here);
}
