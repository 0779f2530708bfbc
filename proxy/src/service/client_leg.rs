//! The client leg of an exchange over Pingora's downstream session.

use super::socket_tuning::{keep_client_buffers_small, reset_session_on_close};
use crate::exchange::{ClientLeg, ClientWriteError, Departure, Head};
use bytes::Bytes;
use mcp_edge_filters::{ResponseHead, StreamPlan};
use pingora_core::protocols::http::ServerSession;
use pingora_error::{Error, ErrorType};
use pingora_http::ResponseHeader;
use std::time::Duration;

/// How long closing a client's side may take (a stuck client cannot take a flush).
const CLIENT_CLOSE_LIMIT: Duration = Duration::from_millis(100);

/// Pingora's downstream session as a [`ClientLeg`].
///
/// The session arrives with the server's `send_timeout` as its write timeout (set when its
/// request head was read). A plan's `send_timeout` (sse_guard) replaces it; an event
/// stream without one has none: a standing stream's client may rightly take nothing for
/// a long time, and sse_guard is the layer that judges event-stream clients.
pub struct PingoraClient<'a> {
    session: &'a mut ServerSession,
    /// Whether a plan's `send_timeout` was applied.
    guarded: bool,
}

impl<'a> PingoraClient<'a> {
    /// The client leg of `session`.
    pub fn new(session: &'a mut ServerSession) -> Self {
        Self {
            session,
            guarded: false,
        }
    }
}

impl PingoraClient<'_> {
    /// Classifies a failed write. A write that timed out ends the connection: its close is
    /// made a reset, so the kernel drops the data the client never took.
    fn write_failed(&self, error: &Error) -> ClientWriteError {
        let failed = write_error(error);
        if failed == ClientWriteError::TimedOut {
            reset_session_on_close(self.session);
        }
        failed
    }
}

impl ClientLeg for PingoraClient<'_> {
    fn apply_plan(&mut self, plan: &StreamPlan) {
        let Some(send_timeout) = plan.send_timeout else {
            return;
        };
        self.guarded = true;
        self.session.set_write_timeout(Some(send_timeout));
        if plan.small_send_buffer {
            // HTTP/2 multiplexes streams on one socket: only an HTTP/1 socket is tuned.
            if let Some(stream) = self.session.stream() {
                if let Err(error) = keep_client_buffers_small(stream.id(), send_timeout) {
                    tracing::debug!(%error, "could not shrink the client socket's buffers");
                }
            }
        }
    }

    async fn write_head(&mut self, head: Head) -> Result<(), ClientWriteError> {
        // The upstream's header map moves into Pingora's head as is (names lower-cased,
        // which HTTP/1.1 and HTTP/2 clients read alike): no copy, no re-hashing.
        // The send buffer was capped once for the connection (`connection.rs`).
        if !self.guarded && is_event_stream(&head) {
            self.session.set_write_timeout(None);
        }
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.status = head.status;
        parts.headers = head.headers;
        let response = ResponseHeader::from(parts);
        self.session
            .write_response_header(Box::new(response))
            .await
            .map_err(|error| self.write_failed(&error))
    }

    async fn write_body(&mut self, chunk: Bytes) -> Result<(), ClientWriteError> {
        self.session
            .write_response_body(chunk, false)
            .await
            .map_err(|error| self.write_failed(&error))
    }

    async fn finish(&mut self) -> Result<(), ClientWriteError> {
        self.session
            .write_response_body(Bytes::new(), true)
            .await
            .map_err(|error| self.write_failed(&error))
    }

    async fn departure(&mut self) -> Departure {
        // With no request body left, any read result other than an error is bytes the
        // client should not have sent yet.
        match self.session.read_body_or_idle(true).await {
            Err(error) if kernel_timed_out(&error) => Departure::TimedOut,
            Err(_) => Departure::Gone,
            Ok(_) => Departure::Unexpected,
        }
    }

    async fn abort(&mut self) {
        let _ = tokio::time::timeout(CLIENT_CLOSE_LIMIT, self.session.shutdown()).await;
    }
}

/// A write that timed out, in Pingora (the write timeout) or in the kernel (the socket's
/// user timeout, `ETIMEDOUT`, which a stuck reader under a `send_timeout` plan hits first:
/// the unacknowledged data was queued before the pending write began), is a timeout; any
/// other failure is a client that left.
fn write_error(error: &Error) -> ClientWriteError {
    if error.etype() == &ErrorType::WriteTimedout || kernel_timed_out(error) {
        ClientWriteError::TimedOut
    } else {
        ClientWriteError::Failed
    }
}

/// Whether the connection failed with `ETIMEDOUT`: the kernel gave up on data the client
/// did not acknowledge within the socket's user timeout.
fn kernel_timed_out(error: &Error) -> bool {
    error
        .root_cause()
        .downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
}

/// Whether `head` starts an event stream (as the filters judge it).
fn is_event_stream(head: &Head) -> bool {
    ResponseHead {
        status: head.status.as_u16(),
        content_type: head.content_type(),
    }
    .is_event_stream()
}
