//! Exchanges over TLS with a tokio-rustls upstream on 127.0.0.1, certificates by rcgen.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, ServerName};
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

use super::super::{ConnectionPool, Endpoint, PoolSettings, TlsClient, TlsClientSettings};
use super::support::{exchange, spawn_upstream, within, Upstream};

/// A server configuration for `localhost`, and the roots that trust it.
fn material() -> (Arc<ServerConfig>, RootCertStore) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    (Arc::new(server), roots)
}

fn client(roots: RootCertStore) -> TlsClient {
    TlsClient::new(TlsClientSettings {
        roots,
        client_auth: None,
        verify: true,
    })
    .unwrap()
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// A TLS upstream answering every request with `response`, written at once, then
/// keeping the connection open and silent until the client closes it.
async fn tls_upstream(config: Arc<ServerConfig>, response: Arc<Vec<u8>>) -> Upstream {
    let acceptor = TlsAcceptor::from(config);
    spawn_upstream(move |tcp, _| {
        let (acceptor, response) = (acceptor.clone(), response.clone());
        async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let mut seen = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                match tls.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&chunk[..n]),
                }
                if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    seen.clear();
                    if tls.write_all(&response).await.is_err() || tls.flush().await.is_err() {
                        return;
                    }
                }
            }
        }
    })
    .await
}

fn response_with_body(len: usize) -> Arc<Vec<u8>> {
    let mut response = format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n").into_bytes();
    response.extend((0..len).map(|i| b'a' + (i % 26) as u8));
    Arc::new(response)
}

#[tokio::test]
async fn a_body_decrypted_ahead_of_the_reads_is_read_whole_while_the_server_is_silent() {
    // The session decrypts whole records, more than one read takes: what it holds is no
    // longer signalled by the socket, and must be read without waiting for it.
    for len in [10_000, 100_000, 1 << 20] {
        let (server, roots) = material();
        let up = tls_upstream(server, response_with_body(len)).await;
        let endpoint = Endpoint::tls(up.addr, client(roots), localhost());
        within(async {
            let pool = ConnectionPool::new(PoolSettings::default());
            let (mut conn, _) = pool.checkout(&endpoint, None).await.unwrap();
            assert!(conn.is_tls());
            conn.set_read_timeout(Some(Duration::from_secs(5)));
            let (head, body) = exchange(&mut conn, Method::GET, b"").await.unwrap();
            assert_eq!(head.status, StatusCode::OK);
            assert_eq!(body.len(), len);
            assert_eq!(&body[..3], b"abc");
            assert!(conn.is_reusable());
        })
        .await;
    }
}

#[tokio::test]
async fn a_pooled_tls_connection_is_reused_only_for_the_same_endpoint() {
    let (server, roots) = material();
    let up = tls_upstream(server, response_with_body(2)).await;
    let tls = client(roots.clone());
    let endpoint = Endpoint::tls(up.addr, tls.clone(), localhost());
    // The same material built again: an equal endpoint.
    let rebuilt = Endpoint::tls(up.addr, client(roots), localhost());
    let other_name = Endpoint::tls(up.addr, tls, ServerName::try_from("other.test").unwrap());
    within(async {
        let pool = ConnectionPool::new(PoolSettings::default());
        let (mut conn, reused) = pool.checkout(&endpoint, None).await.unwrap();
        assert!(!reused);
        exchange(&mut conn, Method::GET, b"").await.unwrap();
        pool.release(conn);
        assert_eq!(pool.idle_count(), 1);
        // Not for plain HTTP to the same address, nor another server name: they open
        // their own connections (the other name fails verification).
        let (plain, reused) = pool
            .checkout(&Endpoint::plain(up.addr), None)
            .await
            .unwrap();
        assert!(!reused && !plain.is_tls());
        drop(plain);
        let refused = pool.checkout(&other_name, None).await.unwrap_err();
        assert!(
            matches!(refused, super::super::UpstreamError::Tls(_)),
            "{refused:?}"
        );
        let (mut conn, reused) = pool.checkout(&rebuilt, None).await.unwrap();
        assert!(reused && conn.is_tls());
        let (head, body) = exchange(&mut conn, Method::GET, b"").await.unwrap();
        assert_eq!((head.status, body.len()), (StatusCode::OK, 2));
        assert_eq!(up.accepts(), 3, "one TLS, one plain, one refused");
    })
    .await;
}

#[tokio::test]
async fn a_one_shot_request_to_a_resolved_name_speaks_tls_with_that_name() {
    use super::super::oneshot::{resolve, send, OneShot, ReadBody};
    let (server, roots) = material();
    let up = tls_upstream(server, response_with_body(3)).await;
    let request = OneShot {
        method: &Method::POST,
        target: "/admin/recycle",
        host: "localhost",
        user_agent: "mcp-edge-test",
    };
    within(async {
        // 127.0.0.1 is not the certificate's name: the name given to resolve is.
        let by_address = resolve("127.0.0.1", up.addr.port(), Some(&client(roots.clone())))
            .await
            .unwrap();
        let refused = send(&by_address, request, ReadBody::Skip, Duration::from_secs(5)).await;
        assert!(refused.is_err(), "{refused:?}");
        let endpoint = Endpoint::tls(up.addr, client(roots), localhost());
        let reply = send(
            &endpoint,
            request,
            ReadBody::UpTo(64),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(
            (reply.status, &reply.body[..]),
            (StatusCode::OK, &b"abc"[..])
        );
    })
    .await;
}
