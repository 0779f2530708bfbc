//! The client leg of an exchange over Pingora's downstream session.

use super::socket_tuning::keep_client_buffers_small;
use crate::exchange::{ClientLeg, ClientWriteError, Departure, Head};
use bytes::Bytes;
use mcp_edge_filters::StreamPlan;
use pingora_core::protocols::http::ServerSession;
use pingora_error::{Error, ErrorType};
use pingora_http::ResponseHeader;
use std::time::Duration;

/// How long closing a client's side may take (a stuck client cannot take a flush).
const CLIENT_CLOSE_LIMIT: Duration = Duration::from_millis(100);

/// Pingora's downstream session as a [`ClientLeg`].
pub struct PingoraClient<'a> {
    session: &'a mut ServerSession,
}

impl<'a> PingoraClient<'a> {
    /// The client leg of `session`.
    pub fn new(session: &'a mut ServerSession) -> Self {
        Self { session }
    }
}

impl ClientLeg for PingoraClient<'_> {
    fn apply_plan(&mut self, plan: &StreamPlan) {
        let Some(send_timeout) = plan.send_timeout else {
            return;
        };
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
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.status = head.status;
        parts.headers = head.headers;
        let response = ResponseHeader::from(parts);
        self.session
            .write_response_header(Box::new(response))
            .await
            .map_err(|error| write_error(&error))
    }

    async fn write_body(&mut self, chunk: Bytes) -> Result<(), ClientWriteError> {
        self.session
            .write_response_body(chunk, false)
            .await
            .map_err(|error| write_error(&error))
    }

    async fn finish(&mut self) -> Result<(), ClientWriteError> {
        self.session
            .write_response_body(Bytes::new(), true)
            .await
            .map_err(|error| write_error(&error))
    }

    async fn departure(&mut self) -> Departure {
        // With no request body left, any read result other than an error is bytes the
        // client should not have sent yet.
        match self.session.read_body_or_idle(true).await {
            Err(_) => Departure::Gone,
            Ok(_) => Departure::Unexpected,
        }
    }

    async fn abort(&mut self) {
        let _ = tokio::time::timeout(CLIENT_CLOSE_LIMIT, self.session.shutdown()).await;
    }
}

fn write_error(error: &Error) -> ClientWriteError {
    if error.etype() == &ErrorType::WriteTimedout {
        ClientWriteError::TimedOut
    } else {
        ClientWriteError::Failed
    }
}
