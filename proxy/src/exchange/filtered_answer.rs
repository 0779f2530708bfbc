//! A list answer filtered on its way ([`crate::policy::list_filter`]): a JSON body is read
//! whole, filtered and re-framed with its new `Content-Length` before its head leaves; an
//! answer the edge cannot read (compressed, or too large) is replaced by a JSON-RPC error,
//! so hidden items never pass unread. Answers in an event stream are filtered event by
//! event in the relay ([`crate::policy::event_filter`]).

use super::cached_answer;
use super::encoded::is_encoded;
use super::legs::{Head, UpstreamLeg};
use super::small_body::ReadAhead;
use crate::list_cache::AnswerFill;
use crate::policy::list_filter::MAX_ANSWER_BYTES;
use crate::policy::AnswerFilter;
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::HeaderValue;

/// Whether a response that is not a (readable) event stream carries an answer to filter:
/// a successful JSON body, or a compressed body of either kind.
pub fn applies(head: &Head) -> bool {
    if !head.status.is_success() || head.status == http::StatusCode::NO_CONTENT {
        return false;
    }
    let content_type = head.content_type().unwrap_or("").to_ascii_lowercase();
    let json = content_type.starts_with("application/json");
    let events = content_type.starts_with("text/event-stream");
    json || (events && is_encoded(head))
}

/// Reads the whole body, filters the answer, and re-frames `head` for the result. The
/// answer as the upstream sent it is offered to `fill` first: the cache holds it unfiltered.
pub async fn read_filtered<U: UpstreamLeg>(
    upstream: &mut U,
    head: &mut Head,
    filter: &AnswerFilter,
    fill: Option<&AnswerFill>,
) -> ReadAhead<U::Error> {
    let mut ahead = ReadAhead::default();
    let mut body = BytesMut::new();
    let mut oversized = false;
    loop {
        match upstream.read_body().await {
            Ok(Some(chunk)) => {
                // Past the bound the rest is read and dropped: the connection stays usable.
                oversized |= body.len() + chunk.len() > MAX_ANSWER_BYTES;
                if !oversized {
                    body.extend_from_slice(&chunk);
                }
            }
            Ok(None) => break,
            Err(error) => {
                ahead.error = Some(error);
                return ahead;
            }
        }
    }
    let answer = if oversized || is_encoded(head) {
        tracing::warn!(
            oversized,
            "a list answer to filter cannot be read: the call gets a JSON-RPC error instead"
        );
        head.headers.remove(CONTENT_ENCODING);
        head.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Bytes::from(filter.unreadable_answer())
    } else {
        let body = body.freeze();
        if let Some(fill) = fill.filter(|_| cached_answer::applies(head)) {
            cached_answer::offer(fill, head, &body);
        }
        match filter.filter(&body) {
            Some(filtered) => Bytes::from(filtered),
            None => body,
        }
    };
    head.headers.remove(TRANSFER_ENCODING);
    head.headers
        .insert(CONTENT_LENGTH, HeaderValue::from(answer.len()));
    if !answer.is_empty() {
        ahead.chunks.push_back(answer);
    }
    ahead.ended = true;
    ahead
}
