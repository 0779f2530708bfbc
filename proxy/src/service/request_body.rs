//! Reads a request's body, whole and bounded, before it is forwarded.
//!
//! MCP messages are small JSON-RPC documents; buffering them lets a refused connection be
//! retried on the next server, and the body be read for its MCP method and target.

use super::outcome::Refusal;
use super::request_checks::expects_continue;
use super::responses::ProxyRefusal;
use bytes::{Bytes, BytesMut};
use pingora_core::protocols::http::ServerSession;
use pingora_error::ErrorType;

/// The request body as read from the client.
pub(super) enum RequestBody {
    /// The whole body.
    Complete(Bytes),
    /// The client reset the connection before the body was complete.
    ClientGone,
    /// The body is too large or malformed; the connection closes after the answer.
    Refused(Refusal),
}

/// Reads the whole request body of `session`, up to `limit` bytes, answering
/// `Expect: 100-continue` first.
pub(super) async fn read_request_body(session: &mut ServerSession, limit: u64) -> RequestBody {
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return too_large(limit);
    }
    if expects_continue(session.req_header()) && !session.is_body_empty() {
        // The client waits for the go-ahead before it sends the body (RFC 9110
        // §10.1.1): routed and within the limit, it gets one now. `Expect` itself is
        // not forwarded: the body is buffered here.
        if let Err(error) = write_continue(session).await {
            tracing::debug!(%error, "the client left before 100 Continue");
            return RequestBody::ClientGone;
        }
    }
    let mut body = BytesMut::new();
    loop {
        let chunk = match session.read_request_body().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            // A client that reset the connection mid-body left: nobody reads an
            // answer, and it is no problem of the proxy's.
            Err(error) if error.etype() == &ErrorType::ReadError => {
                tracing::debug!(%error, "the client left while sending the request body");
                return RequestBody::ClientGone;
            }
            // A malformed body (bad chunk framing) or one cut short by a close is
            // refused: a half-closed client still reads the answer.
            Err(error) => {
                return RequestBody::Refused(Refusal::new(
                    ProxyRefusal::MalformedRequest,
                    format!("the request body is malformed or incomplete: {error}"),
                ))
            }
        };
        if (body.len() + chunk.len()) as u64 > limit {
            return too_large(limit);
        }
        if body.is_empty() {
            // The usual case, one chunk: no copy.
            body = BytesMut::from(chunk);
            continue;
        }
        body.extend_from_slice(&chunk);
    }
    RequestBody::Complete(body.freeze())
}

fn too_large(limit: u64) -> RequestBody {
    RequestBody::Refused(Refusal::new(
        ProxyRefusal::BodyTooLarge,
        format!("request body exceeds the limit of {limit} bytes"),
    ))
}

/// Writes `100 Continue`, keeping the connection reusable: Pingora would otherwise take any
/// response written before the body was read as a reason to close after it.
async fn write_continue(session: &mut ServerSession) -> pingora_error::Result<()> {
    session.set_close_on_response_before_downstream_finish(false);
    let written = session.write_continue_response().await;
    session.set_close_on_response_before_downstream_finish(true);
    written
}
