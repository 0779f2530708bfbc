//! One client connection of the proxy listeners, from accept to close: the connection cap,
//! the protocol, and HTTP/1's keep-alive loop with its deadlines.
//!
//! Pingora's own HTTP/1 loop bounds each read of a request head separately (a client that
//! sends one byte a minute is never closed) and waits for ever between two requests. So
//! mcp-edge runs the loop itself, with nginx's deadlines:
//!
//! - `client_header_timeout`: the whole request head, from the accept (first request) or
//!   from the request's first byte (later requests); past it, 408 and close;
//! - `keepalive_timeout`: idle between two requests; past it, close. An h2c connection
//!   with no stream open closes after the same time (Pingora's `h2_idle_timeout`).
//!
//! An idle HTTP/1 connection (waiting for a request's first byte) may also be closed to
//! admit a new connection at `max_connections` ([`ConnectionLimit`]). A connection closed
//! for `client_header_timeout` or for `max_connections` is reset (`SO_LINGER` 0), so the
//! kernel frees it at once ([`super::socket_tuning`]). HTTP/2 connections
//! (h2c with prior knowledge, or TLS with ALPN `h2`) are handed to Pingora's HTTP/2 server.

use super::app::{within, ClientDeadlines, EdgeApp, Handled};
use super::conn_limit::{ConnectionLimit, ConnectionSlot};
use super::socket_tuning::cap_send_buffer;
use super::socket_tuning::reset_stream_on_close;
use async_trait::async_trait;
use bytes::BytesMut;
use pingora_core::apps::{HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::{Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The first read of a request head (Pingora's initial head buffer).
const HEAD_BUFFER_BYTES: usize = 4096;

/// The proxy service's [`ServerApp`]: admits connections under the cap and serves them.
pub struct EdgeConnections {
    app: Arc<EdgeApp>,
    limit: Arc<ConnectionLimit>,
}

impl EdgeConnections {
    /// Serves the connections of `app`'s listeners, counted against `limit` (shared by
    /// every proxy service of the process).
    pub fn new(app: EdgeApp, limit: Arc<ConnectionLimit>) -> Self {
        Self {
            app: Arc::new(app),
            limit,
        }
    }

    /// Whether `stream` speaks HTTP/2: TLS with ALPN `h2`, or, on an h2c listener, the
    /// preface as the first bytes. `None` when the client closed, sent nothing within
    /// `deadline`, or was closed to admit another connection.
    async fn speaks_h2(
        &self,
        stream: &mut Stream,
        deadline: Option<Instant>,
        slot: &ConnectionSlot,
    ) -> Option<bool> {
        if stream.get_ssl_digest().is_some() {
            return Some(matches!(
                stream.selected_alpn_proto(),
                Some(ALPN::H2 | ALPN::Custom(_))
            ));
        }
        let h2c = self.app.server_options().is_some_and(|options| options.h2c);
        if !h2c {
            return Some(false);
        }
        let mut preface = [0u8; H2_PREFACE.len()];
        let _idle = slot.idle();
        let peeked = tokio::select! {
            biased;
            peeked = within(deadline, stream.try_peek(&mut preface)) => peeked,
            _ = slot.reclaimed() => {
                reset_stream_on_close(stream);
                return None;
            }
            _ = self.app.idle_close().closed() => return None,
        };
        match peeked {
            Some(Ok(true)) => Some(preface == H2_PREFACE),
            // A stream that cannot peek is read as HTTP/1, as Pingora does.
            Some(Ok(false)) => Some(false),
            Some(Err(_)) => None,
            None => {
                self.app.metrics().client_closed("header_timeout");
                reset_stream_on_close(stream);
                None
            }
        }
    }

    /// HTTP/1's keep-alive loop on one connection.
    async fn serve_http1(
        &self,
        mut stream: Stream,
        accepted: Instant,
        slot: &ConnectionSlot,
        shutdown: &ShutdownWatch,
    ) {
        // What the kernel holds for this client stays small, once for the connection: a
        // client that stops reading fills little and meets `send_timeout` soon.
        if let Err(error) = cap_send_buffer(stream.id()) {
            tracing::debug!(%error, "could not cap the client socket's send buffer");
        }
        // Bytes of the next request already read (pipelined behind the previous one).
        let mut pending: Option<BytesMut> = None;
        let mut first = true;
        loop {
            let deadlines = self.app.deadlines();
            let head_started = match pending.as_ref().filter(|bytes| !bytes.is_empty()) {
                Some(_) => Instant::now(),
                None => {
                    let mut head = BytesMut::with_capacity(HEAD_BUFFER_BYTES);
                    let idle_until = if first {
                        deadlines.header.map(|limit| accepted + limit)
                    } else {
                        deadlines.keepalive.map(|limit| Instant::now() + limit)
                    };
                    if !self
                        .await_request(&mut stream, &mut head, idle_until, first, slot)
                        .await
                    {
                        return;
                    }
                    pending = Some(head);
                    if first {
                        accepted
                    } else {
                        Instant::now()
                    }
                }
            };
            let mut session = ServerSession::new_http1(stream);
            if let Some(bytes) = pending.take() {
                session.set_pipelined_prefix(bytes);
            }
            // Keep-alive on (the head's own deadline bounds its reads), unless it is
            // configured off or the service is stopping.
            let keepalive = deadlines.keepalive.filter(|_| !*shutdown.borrow());
            session.set_keepalive(keepalive.map(|_| 0));
            let head_deadline = deadlines.header.map(|limit| head_started + limit);
            let handled = self
                .app
                .handle(&mut session, head_deadline, &deadlines, shutdown)
                .await;
            let reused = match handled {
                Handled::Close => return,
                Handled::Reusable => session.finish().await,
                Handled::Proxy(ticket) => {
                    let served = self.app.http_routes().serve(session, ticket, shutdown);
                    match served.await {
                        Some(reused) => {
                            (stream, first) = (reused.consume().0, false);
                            continue;
                        }
                        None => return,
                    }
                }
            };
            match reused {
                Ok(Some(reusable)) => {
                    let (next, overread) = reusable.into_parts();
                    stream = next;
                    pending = overread;
                    first = false;
                }
                _ => return,
            }
        }
    }

    /// Waits for the first bytes of a request, read into `head`, until `idle_until`.
    /// Returns false when the connection must close: the client closed it, stayed silent
    /// past the deadline (counted), or it was chosen to make room for a new connection.
    async fn await_request(
        &self,
        stream: &mut Stream,
        head: &mut BytesMut,
        idle_until: Option<Instant>,
        first: bool,
        slot: &ConnectionSlot,
    ) -> bool {
        let _idle = slot.idle();
        let read = tokio::select! {
            biased;
            read = within(idle_until, stream.read_buf(head)) => read,
            _ = slot.reclaimed() => {
                reset_stream_on_close(stream);
                return false;
            }
            _ = self.app.idle_close().closed() => return false,
        };
        match read {
            Some(Ok(read)) => read > 0,
            Some(Err(_)) => false,
            None => {
                // A new connection that sends nothing is held to the head's deadline, as
                // nginx does (and reset); a kept-alive one to the keep-alive timeout (and
                // closed cleanly: its client did nothing wrong).
                let reason = if first {
                    reset_stream_on_close(stream);
                    "header_timeout"
                } else {
                    "keepalive_timeout"
                };
                self.app.metrics().client_closed(reason);
                false
            }
        }
    }
}

#[async_trait]
impl ServerApp for EdgeConnections {
    /// Admits the connection under the cap (or closes it at once), then serves it: HTTP/2
    /// through Pingora, HTTP/1 through [`EdgeConnections::serve_http1`].
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let accepted = Instant::now();
        let deadlines: ClientDeadlines = self.app.deadlines();
        let Some(slot) = self.limit.admit(self.limit.max(deadlines.max_connections)) else {
            reset_stream_on_close(&stream);
            // Counted; not logged at a higher level, which a flood would turn into one.
            tracing::debug!(
                active = self.limit.active(),
                "refused a client connection: max_connections reached and none idle"
            );
            return None;
        };
        let head_deadline = deadlines.header.map(|limit| accepted + limit);
        match self.speaks_h2(&mut stream, head_deadline, &slot).await {
            None => {}
            Some(true) => {
                // Pingora's HTTP/2 server; the preface is still unread.
                return ServerApp::process_new(&self.app, stream, shutdown).await;
            }
            Some(false) => self.serve_http1(stream, accepted, &slot, shutdown).await,
        }
        None
    }

    /// Runs when the listeners stopped: idle connections close after the idle-close delay.
    async fn cleanup(&self) {
        self.app.http_cleanup().await;
    }
}
