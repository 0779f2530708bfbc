//! Event streams the edge cannot read: an upstream that answers with a content coding
//! (`Content-Encoding: gzip`, ...) although the edge asked it for `identity`.
//!
//! A keepalive comment or a `retry:` hint written into a compressed body corrupts it for
//! the client's decoder, and the edge sees no events in it. So such a stream is relayed
//! byte for byte, with the stream filters off for it: the exchange treats it as a plain
//! body (no keepalives, no retry hints, no event scanning, no `endpoint` rewriting). It is
//! counted in `mcp_edge_encoded_event_streams_total{upstream}` and logged once per server.

use super::legs::{Head, UpstreamLeg};
use super::machine::ExchangeEnv;
use http::header::CONTENT_ENCODING;
use mcp_edge_filters::ResponseHead;

/// True when `head` is an event stream whose body carries a content coding other than
/// `identity`. Such a stream is counted, logged the first time its server sends one, and
/// gets the event-stream idle timeout on `upstream` (it may stay silent as long as any
/// event stream); the caller then relays it as an opaque body.
pub fn opaque_event_stream<U: UpstreamLeg>(
    head: &Head,
    env: &ExchangeEnv<'_>,
    upstream: &mut U,
) -> bool {
    let view = ResponseHead {
        status: head.status.as_u16(),
        content_type: head.content_type(),
    };
    if !view.is_event_stream() || !is_encoded(head) {
        return false;
    }
    let server = env.tracking.server;
    env.events.encoded_event_stream(env.tracking.upstream);
    if server.note_encoded_stream() {
        let coding = head
            .headers
            .get(CONTENT_ENCODING)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("?");
        tracing::warn!(
            upstream = env.tracking.upstream,
            server = %server.address,
            content_encoding = coding,
            "the upstream answered an event stream with a content coding although the edge asked for identity: its streams are relayed untouched, with the stream filters off (logged once per server)"
        );
    }
    upstream.set_read_timeout(env.sse_idle_timeout);
    true
}

/// True when the body carries a content coding other than `identity`.
pub(super) fn is_encoded(head: &Head) -> bool {
    head.headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("?").split(','))
        .map(str::trim)
        .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, StatusCode};

    fn head(encoding: &[&str]) -> Head {
        let mut headers = HeaderMap::new();
        for value in encoding {
            headers.append(CONTENT_ENCODING, HeaderValue::from_str(value).unwrap());
        }
        Head {
            status: StatusCode::OK,
            headers,
        }
    }

    #[test]
    fn identity_and_absent_codings_are_plain_others_are_encoded() {
        assert!(!is_encoded(&head(&[])));
        assert!(!is_encoded(&head(&["identity"])));
        assert!(!is_encoded(&head(&[" Identity "])));
        assert!(is_encoded(&head(&["gzip"])));
        assert!(is_encoded(&head(&["identity, br"])));
        assert!(is_encoded(&head(&["identity", "deflate"])));
    }
}
