//! An upstream's answer as the cache holds it: the body as it came, and where its id sits,
//! so that the answer served to a later caller carries that caller's id and is otherwise
//! the upstream's, byte for byte.

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::ops::Range;
use std::time::Duration;

/// Who a cached answer may be served to (`cacheScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Any caller.
    Public,
    /// Callers with the same credentials.
    Private,
}

/// A stored answer.
#[derive(Debug)]
pub struct StoredAnswer {
    body: Bytes,
    /// Where the upstream's id is in `body`.
    id: Range<usize>,
    /// The upstream's `Content-Type`.
    pub content_type: http::HeaderValue,
}

/// What an answer says about its caching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// `cacheScope`.
    pub scope: Scope,
    /// `ttlMs`.
    pub ttl: Duration,
}

/// A JSON-RPC answer, as far as caching goes.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    id: &'a RawValue,
    #[serde(borrow)]
    result: &'a RawValue,
}

/// The caching fields of a result.
#[derive(Deserialize)]
struct Hints<'a> {
    #[serde(rename = "ttlMs")]
    ttl_ms: Option<serde_json::Number>,
    #[serde(borrow, rename = "cacheScope")]
    cache_scope: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "resultType")]
    result_type: Option<Cow<'a, str>>,
}

impl StoredAnswer {
    /// The answer `body` (content type `content_type`) to the call whose id is `call_id`
    /// (compact JSON text), and its freshness; `None` when it may not be cached: not this
    /// call's result, an interim result (`resultType` other than `complete`), no positive
    /// `ttlMs`, or no `cacheScope` of `public` or `private`.
    pub fn of(
        body: Bytes,
        content_type: http::HeaderValue,
        call_id: &str,
    ) -> Option<(Self, Freshness)> {
        let answer: Answer<'_> = serde_json::from_slice(&body).ok()?;
        if answer.id.get().trim() != call_id {
            return None;
        }
        let hints: Hints<'_> = serde_json::from_str(answer.result.get()).ok()?;
        if hints
            .result_type
            .as_deref()
            .is_some_and(|kind| kind != "complete")
        {
            return None;
        }
        let ttl = Duration::from_millis(hints.ttl_ms?.as_u64().filter(|ms| *ms > 0)?);
        let scope = match hints.cache_scope.as_deref()? {
            "public" => Scope::Public,
            "private" => Scope::Private,
            _ => return None,
        };
        let raw = answer.id.get();
        let start = (raw.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
        let id = start..start + raw.len();
        (id.end <= body.len()).then_some(())?;
        Some((
            Self {
                body,
                id,
                content_type,
            },
            Freshness { scope, ttl },
        ))
    }

    /// The answer for the call whose id is `call_id` (compact JSON text).
    pub fn render(&self, call_id: &str) -> Bytes {
        let mut out = BytesMut::with_capacity(self.body.len() - self.id.len() + call_id.len());
        out.extend_from_slice(&self.body[..self.id.start]);
        out.extend_from_slice(call_id.as_bytes());
        out.extend_from_slice(&self.body[self.id.end..]);
        out.freeze()
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    /// Whether the body is empty (never, for a stored answer).
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json() -> http::HeaderValue {
        http::HeaderValue::from_static("application/json")
    }

    #[test]
    fn the_id_is_replaced_and_every_other_byte_stays() {
        let body = br#"{"jsonrpc":"2.0", "id" : 7 ,"result":{"tools":[{"name":"id"}],"ttlMs":60000,"cacheScope":"public","id":9}}"#;
        let (answer, fresh) = StoredAnswer::of(Bytes::from_static(body), json(), "7").unwrap();
        assert_eq!(fresh.scope, Scope::Public);
        assert_eq!(fresh.ttl, Duration::from_secs(60));
        assert_eq!(&answer.render("7")[..], &body[..]);
        assert_eq!(
            &answer.render("\"caller-1\"")[..],
            br#"{"jsonrpc":"2.0", "id" : "caller-1" ,"result":{"tools":[{"name":"id"}],"ttlMs":60000,"cacheScope":"public","id":9}}"#
        );
    }

    #[test]
    fn only_complete_fresh_scoped_answers_to_this_call_are_kept() {
        let of =
            |body: &'static str| StoredAnswer::of(Bytes::from_static(body.as_bytes()), json(), "1");
        assert!(
            of(r#"{"jsonrpc":"2.0","id":1,"result":{"ttlMs":5,"cacheScope":"private"}}"#)
                .is_some_and(|(_, f)| f.scope == Scope::Private)
        );
        // Another id, an error, no hints, a zero or negative ttl, an unknown scope.
        assert!(
            of(r#"{"jsonrpc":"2.0","id":2,"result":{"ttlMs":5,"cacheScope":"public"}}"#).is_none()
        );
        assert!(of(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}"#).is_none());
        assert!(of(r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#).is_none());
        assert!(
            of(r#"{"jsonrpc":"2.0","id":1,"result":{"ttlMs":0,"cacheScope":"public"}}"#).is_none()
        );
        assert!(
            of(r#"{"jsonrpc":"2.0","id":1,"result":{"ttlMs":-5,"cacheScope":"public"}}"#).is_none()
        );
        assert!(
            of(r#"{"jsonrpc":"2.0","id":1,"result":{"ttlMs":5,"cacheScope":"shared"}}"#).is_none()
        );
        assert!(of(r#"{"jsonrpc":"2.0","id":1,"result":{"ttlMs":5}}"#).is_none());
        // An interim result of a multi round-trip request.
        assert!(of(r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required","ttlMs":5,"cacheScope":"public"}}"#).is_none());
        // Two ids: not one answer.
        assert!(of(
            r#"{"jsonrpc":"2.0","id":1,"id":1,"result":{"ttlMs":5,"cacheScope":"public"}}"#
        )
        .is_none());
    }
}
