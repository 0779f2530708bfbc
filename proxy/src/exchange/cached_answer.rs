//! An answer the route's list cache may store ([`crate::list_cache`]): a successful,
//! unencoded JSON body is read whole (bounded), offered to the cache as the upstream sent
//! it, and relayed re-framed with its `Content-Length`. A body past the bound is relayed as
//! it comes, and not stored. (Answers in an event stream are relayed and not stored.)

use super::encoded::is_encoded;
use super::legs::{Head, UpstreamLeg};
use super::small_body::ReadAhead;
use crate::list_cache::AnswerFill;
use crate::policy::list_filter::MAX_ANSWER_BYTES;
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, SET_COOKIE, TRANSFER_ENCODING};
use http::HeaderValue;

/// Whether the response may carry an answer to store: `200` with an unencoded JSON body,
/// that sets no cookie and no MCP session (those belong to one caller).
pub fn applies(head: &Head) -> bool {
    head.status == http::StatusCode::OK
        && head
            .content_type()
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"))
        && !is_encoded(head)
        && !head.headers.contains_key(SET_COOKIE)
        && !head.headers.contains_key("mcp-session-id")
}

/// Offers a whole answer `body` of `head` to `fill`.
pub fn offer(fill: &AnswerFill, head: &Head, body: &Bytes) {
    if let Some(content_type) = head.headers.get(CONTENT_TYPE) {
        fill.offer(content_type.clone(), body.clone());
    }
}

/// Reads the body whole, offers it to `fill`, and re-frames `head` for it; past the bound,
/// what was read is relayed first and the rest follows as it comes.
pub async fn read_and_store<U: UpstreamLeg>(
    upstream: &mut U,
    head: &mut Head,
    fill: &AnswerFill,
) -> ReadAhead<U::Error> {
    let mut ahead = ReadAhead::default();
    let mut body = BytesMut::new();
    loop {
        match upstream.read_body().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_ANSWER_BYTES {
                    ahead.chunks.push_back(body.freeze());
                    return ahead;
                }
            }
            Ok(None) => break,
            Err(error) => {
                if !body.is_empty() {
                    ahead.chunks.push_back(body.freeze());
                }
                ahead.error = Some(error);
                return ahead;
            }
        }
    }
    let body = body.freeze();
    offer(fill, head, &body);
    head.headers.remove(TRANSFER_ENCODING);
    head.headers
        .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    if !body.is_empty() {
        ahead.chunks.push_back(body);
    }
    ahead.ended = true;
    ahead
}
