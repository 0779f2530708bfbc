//! Server-sent events: framing, and responses whose body is a stream of events.
//!
//! Each event is its own body chunk; hyper writes a chunk out as soon as the stream
//! yields it and then waits for the next, so nothing is held back in a buffer.

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::Value;
use std::convert::Infallible;

/// Frames one event: `event: <name>`, one `data:` line per line of `data`, a blank line.
pub fn event(name: &str, data: &str) -> Bytes {
    let mut frame = format!("event: {name}\n");
    for line in data.lines() {
        frame.push_str("data: ");
        frame.push_str(line);
        frame.push('\n');
    }
    frame.push('\n');
    Bytes::from(frame)
}

/// Frames a JSON-RPC message as a `message` event.
pub fn message(message: &Value) -> Bytes {
    event("message", &message.to_string())
}

/// A `200 text/event-stream` response whose body is `events`, written as they come.
pub fn response(events: impl Stream<Item = Bytes> + Send + 'static) -> Response {
    let mut response = Response::new(Body::from_stream(events.map(Ok::<_, Infallible>)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_events() {
        assert_eq!(
            event("endpoint", "/messages/?session_id=ab"),
            "event: endpoint\ndata: /messages/?session_id=ab\n\n"
        );
        assert_eq!(event("x", "a\nb"), "event: x\ndata: a\ndata: b\n\n");
        assert_eq!(
            message(&json!({"jsonrpc": "2.0"})),
            "event: message\ndata: {\"jsonrpc\":\"2.0\"}\n\n"
        );
    }
}
