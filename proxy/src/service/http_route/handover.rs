//! Handing a request whose head mcp-edge already read to Pingora's proxy.
//!
//! Pingora's public entry, [`HttpServerApp::process_new_http`], reads the request head
//! itself (`HttpProxy::process_request` and `Session::new` are private). For an HTTP/2
//! stream that read is a no-op: the head came with the stream, so the session passes as
//! it is. For HTTP/1 it would read the stream again, so the session is reopened on its
//! stream with the bytes already read (the head, and any body bytes read with it) as its
//! pipelined prefix, which Pingora's parser reads before the socket.
//!
//! Pingora keeps the body bytes read with the head in a private buffer. They come back
//! through its own keep-alive path: with the framing headers taken off the parsed head,
//! the request has no body, so every byte read past the head counts as over-read, and
//! [`ServerSession::finish`] returns it with the stream as the next request's prefix. The
//! raw head on the wire keeps its framing, which the reopened session parses again.
//!
//! [`HttpServerApp::process_new_http`]: pingora_core::apps::HttpServerApp::process_new_http

use bytes::BytesMut;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use pingora_core::protocols::http::ServerSession;

/// The session Pingora's proxy can read `session`'s request from: the same for HTTP/2, a
/// new HTTP/1 session on the same stream for HTTP/1. `None` when the connection failed
/// while being handed over (it is closed).
pub(super) async fn reopen(session: ServerSession) -> Option<ServerSession> {
    let ServerSession::H1(mut old) = session else {
        return Some(session);
    };
    let head = old.get_headers_raw_bytes();
    let request = old.req_header_mut();
    request.remove_header(&CONTENT_LENGTH);
    request.remove_header(&TRANSFER_ENCODING);
    // Keep-alive and pipelining on, so that `finish` hands back the stream and what was
    // read past the head.
    old.set_server_keepalive(Some(0));
    old.set_keepalive_reuses_remaining(None);
    old.set_pipelining_enabled(true);
    let reusable = match ServerSession::H1(old).finish().await {
        Ok(Some(reusable)) => reusable,
        Ok(None) => return None,
        Err(error) => {
            tracing::debug!(%error, "a connection failed while its request was handed to the HTTP proxy");
            return None;
        }
    };
    let (stream, read_past_head) = reusable.into_parts();
    let read_past_head = read_past_head.unwrap_or_default();
    let mut prefix = BytesMut::with_capacity(head.len() + read_past_head.len());
    prefix.extend_from_slice(&head);
    prefix.extend_from_slice(&read_past_head);
    let mut session = ServerSession::new_http1(stream);
    // Pipelining stays off: a request pipelined behind this one closes the connection
    // after the answer (clients retry it), as Pingora's proxy does by default.
    session.set_pipelined_prefix(prefix);
    Some(session)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora_core::protocols::Stream;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A request whose body arrived with its head, and a second request pipelined behind
    /// it: the reopened session reads the same head and the whole body, without reading
    /// the socket for what was already read.
    #[tokio::test]
    async fn the_reopened_session_reads_the_same_request_and_body() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let wire =
            b"POST /auth/token?x=1 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello";
        client.write_all(wire).await.unwrap();
        let stream: Stream = Box::new(pingora_core::protocols::l4::stream::Stream::from(server));
        let mut session = ServerSession::new_http1(stream);
        assert!(session.read_request().await.unwrap());
        let mut reopened = reopen(session).await.expect("reopened");
        assert!(reopened.read_request().await.unwrap());
        let request = reopened.req_header();
        assert_eq!(request.uri.to_string(), "/auth/token?x=1");
        assert_eq!(request.headers["content-length"], "5");
        // The body was read with the head: it must not be waited for on the socket.
        let limit = std::time::Duration::from_secs(5);
        let body = tokio::time::timeout(limit, reopened.read_request_body())
            .await
            .expect("the body bytes read with the head are replayed")
            .unwrap()
            .unwrap();
        assert_eq!(&body[..], b"hello");
        assert!(reopened.read_request_body().await.unwrap().is_none());
        // Nothing was written to the client on the way.
        drop(reopened);
        let mut written = Vec::new();
        client.read_to_end(&mut written).await.unwrap();
        assert!(written.is_empty(), "{written:?}");
    }
}
