//! The two legs of an exchange, behind small traits.
//!
//! The state machine in [`machine`](super::machine) talks to the client and to the
//! upstream only through [`ClientLeg`] and [`UpstreamLeg`]. In the proxy they are Pingora's
//! downstream session and mcp-edge's own HTTP/1 upstream connection; in the unit tests they
//! are fakes driven under paused tokio time.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use mcp_edge_filters::StreamPlan;
use std::future::Future;
use std::time::Duration;

/// A response head: what the upstream sent, then what the client is sent.
#[derive(Debug, Clone)]
pub struct Head {
    /// The status code.
    pub status: StatusCode,
    /// The header fields, framing included.
    pub headers: HeaderMap,
}

impl Head {
    /// The `Content-Type`, when it is valid text.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
    }
}

/// Why a write to the client failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientWriteError {
    /// The write did not complete within its timeout (the plan's `send_timeout`, or the
    /// server's `send_timeout` for a response that is not an event stream), or the kernel
    /// gave up on unacknowledged data (the socket's user timeout).
    TimedOut,
    /// The client's connection failed (reset, closed).
    Failed,
}

/// What the client's side of the connection said while a response was under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// The client closed or reset its connection.
    Gone,
    /// The kernel gave up on the connection: data sent to the client stayed
    /// unacknowledged (or unsent, the client's window closed) past the socket's user
    /// timeout, which a `send_timeout` plan sets to that timeout. A stuck reader, not a
    /// client that left.
    TimedOut,
    /// The client sent bytes where none were expected (for example a pipelined request).
    /// It has not left; the relay stops watching instead of spinning on it.
    Unexpected,
}

/// The client's side of an exchange.
pub trait ClientLeg: Send {
    /// Applies the client-side half of the filters' plan: the per-write send timeout and
    /// small socket buffering. Runs once, before the head is written.
    fn apply_plan(&mut self, plan: &StreamPlan);

    /// Writes the response head. A head without `Content-Length` (every event stream:
    /// a standing one may stay silent for minutes) must be on the wire when this returns;
    /// one with a length may wait to leave with the body, in one write.
    fn write_head(
        &mut self,
        head: Head,
    ) -> impl Future<Output = Result<(), ClientWriteError>> + Send;

    /// Writes one body chunk.
    fn write_body(
        &mut self,
        chunk: Bytes,
    ) -> impl Future<Output = Result<(), ClientWriteError>> + Send;

    /// Ends the response cleanly (the last chunk of a chunked body, a flush).
    fn finish(&mut self) -> impl Future<Output = Result<(), ClientWriteError>> + Send;

    /// Resolves when the client leaves, or sends something it should not. Must be
    /// cancel-safe: the relay polls it in a `select!` and drops it on every other wake.
    fn departure(&mut self) -> impl Future<Output = Departure> + Send;

    /// Closes the client's side promptly, without waiting on a client that does not read.
    fn abort(&mut self) -> impl Future<Output = ()> + Send;
}

/// The upstream's side of an exchange: a request already sent, its response to read.
pub trait UpstreamLeg: Send {
    /// How the upstream failed.
    type Error: std::fmt::Display + Send + 'static;

    /// Reads the response head (interim 1xx responses are the leg's business).
    fn read_head(&mut self) -> impl Future<Output = Result<Head, Self::Error>> + Send;

    /// Reads the next piece of the body; `Ok(None)` at its end. Must be cancel-safe.
    fn read_body(&mut self) -> impl Future<Output = Result<Option<Bytes>, Self::Error>> + Send;

    /// Bounds each following read; `None` waits for ever.
    fn set_read_timeout(&mut self, timeout: Option<Duration>);

    /// True when the response ended cleanly and the connection may serve another request.
    fn is_reusable(&self) -> bool;
}
