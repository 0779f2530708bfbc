//! A small response whose whole body has already arrived leaves in one write.
//!
//! Pingora writes a chunked body chunk by chunk and its terminator on its own, each
//! flushed, and a read of the client's side flushes a head written earlier: a `202`
//! with an empty chunked body reached the client as two segments, its terminator about
//! a millisecond after its head, where a direct connection and nginx send one. So before
//! the head of a response that is not an event stream is written, the body bytes the
//! upstream leg can give at once (already received) are taken. When they are the whole
//! body, the response is re-framed with `Content-Length` (framing is hop-by-hop), and
//! head and body leave together.

use crate::legs::{Head, UpstreamLeg};
use bytes::Bytes;
use http::header;
use std::collections::VecDeque;
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// The most body bytes taken ahead of the head.
const SMALL_BODY_BYTES: usize = 16 * 1024;

/// What was read ahead of the head.
pub struct ReadAhead<E> {
    /// Body chunks, in order, not yet relayed.
    pub chunks: VecDeque<Bytes>,
    /// Whether the body ended.
    pub ended: bool,
    /// The error the upstream failed with, if it did.
    pub error: Option<E>,
}

impl<E> Default for ReadAhead<E> {
    fn default() -> Self {
        Self {
            chunks: VecDeque::new(),
            ended: false,
            error: None,
        }
    }
}

/// Takes the body bytes `upstream` can give without waiting, when `head` frames its body
/// in chunks; re-frames `head` with `Content-Length` when they are the whole body.
pub fn read_ahead<U: UpstreamLeg>(upstream: &mut U, head: &mut Head) -> ReadAhead<U::Error> {
    let mut ahead = ReadAhead::default();
    if !is_chunked(head) {
        return ahead;
    }
    let mut size = 0;
    while size <= SMALL_BODY_BYTES {
        match poll_now(upstream.read_body()) {
            Some(Ok(Some(chunk))) => {
                size += chunk.len();
                ahead.chunks.push_back(chunk);
            }
            Some(Ok(None)) => {
                ahead.ended = true;
                break;
            }
            Some(Err(error)) => {
                ahead.error = Some(error);
                break;
            }
            None => break,
        }
    }
    if ahead.ended {
        head.headers.remove(header::TRANSFER_ENCODING);
        head.headers
            .insert(header::CONTENT_LENGTH, http::HeaderValue::from(size));
    }
    ahead
}

/// Whether `head` frames its body in chunks (a status that carries a body).
fn is_chunked(head: &Head) -> bool {
    let bodiless = head.status.is_informational()
        || head.status == http::StatusCode::NO_CONTENT
        || head.status == http::StatusCode::NOT_MODIFIED;
    !bodiless
        && head
            .headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .any(|value| value.as_bytes().eq_ignore_ascii_case(b"chunked"))
}

/// Polls `future` once: its output when it is ready at once. A pending read is dropped;
/// the upstream leg's reads are cancel-safe (the relay's `select!` relies on it too).
fn poll_now<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}
