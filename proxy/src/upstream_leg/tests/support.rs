//! Test upstreams on 127.0.0.1 and client helpers.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::super::response::ResponseHead;
use super::super::{UpstreamConnection, UpstreamError};

/// A test upstream: its address and how many connections it accepted.
pub(super) struct Upstream {
    pub(super) addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
}

impl Upstream {
    /// Connections accepted so far.
    pub(super) fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

/// Listens on 127.0.0.1:0 and runs `handler(stream, index)` in a new task for
/// each accepted connection (index counts from 0).
pub(super) async fn spawn_upstream<F, Fut>(mut handler: F) -> Upstream
where
    F: FnMut(TcpStream, usize) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let counter = accepts.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let index = counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(handler(stream, index));
        }
    });
    Upstream { addr, accepts }
}

/// Reads one request (head and `content-length` body) off `stream`, keeping
/// extra bytes in `buf`. `None` at end of stream.
pub(super) async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let body_len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            let total = end + 4 + body_len;
            if buf.len() >= total {
                return Some(buf.drain(..total).collect());
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Serves `response` to every request of the connection until it closes.
pub(super) async fn serve_each(mut stream: TcpStream, response: &'static [u8]) {
    let mut buf = Vec::new();
    while read_request(&mut stream, &mut buf).await.is_some() {
        if stream.write_all(response).await.is_err() {
            return;
        }
    }
}

/// Fails the test if `fut` takes more than 10 s (a safety net against hangs,
/// not a synchronisation).
pub(super) async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("test took more than 10 s")
}

/// Request headers with a Host.
pub(super) fn host_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("upstream"));
    headers
}

/// Sends `method target` with `body`, reads the head and the whole body.
pub(super) async fn exchange(
    conn: &mut UpstreamConnection,
    method: Method,
    body: &[u8],
) -> Result<(ResponseHead, Vec<u8>), UpstreamError> {
    conn.send_request(&method, "/mcp", &host_headers(), body)
        .await?;
    let head = conn.read_response_head().await?;
    let mut out = Vec::new();
    while let Some(piece) = conn.read_body().await? {
        out.extend_from_slice(&piece);
    }
    Ok((head, out))
}
