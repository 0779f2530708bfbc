//! The route's list cache ([`crate::list_cache`]), consulted once the body is read and the
//! route's policy admitted the request, before any upstream: a fresh answer is written at
//! once, with the caller's id and through the route's exposure; a miss takes an
//! [`AnswerFill`] to its exchange, which stores the upstream's answer.

use super::forward::Forwarder;
use super::outcome::{Departure, Outcome};
use super::record::RequestRecord;
use crate::exchange::{ClientLeg, Head};
use crate::list_cache::key::Place;
use crate::list_cache::{AnswerFill, CacheCounters, CacheRequest, Credentials, ListCache};
use crate::metrics::Metrics;
use crate::policy::AnswerFilter;
use crate::routing::Route;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use pingora_core::protocols::http::ServerSession;
use pingora_http::RequestHeader;
use std::sync::Arc;

/// What the cache made of a request.
pub(super) enum CacheStep {
    /// The cache does not apply (no cache on the route, or a request it may not answer).
    Bypass,
    /// A fresh answer, rendered with the caller's id.
    Hit {
        /// The answer.
        body: Bytes,
        /// Its `Content-Type`.
        content_type: http::HeaderValue,
    },
    /// Not in the cache: the upstream's answer is offered to the fill.
    Miss(AnswerFill),
}

impl Forwarder<'_> {
    /// Consults `route`'s cache for `request` with body `body` (its MCP view and its
    /// authenticated caller, when auth found one, in `record`).
    pub(super) fn consult_list_cache(
        &self,
        request: &RequestHeader,
        route: &Route,
        record: &RequestRecord,
        body: &[u8],
    ) -> CacheStep {
        let (Some(cache), Some(mcp)) = (&route.list_cache, record.mcp.as_ref()) else {
            return CacheStep::Bypass;
        };
        let place = Place {
            route: &route.prefix,
            group: &route.upstream.name,
            version_header: request
                .headers
                .get("mcp-protocol-version")
                .map(|value| value.as_bytes()),
        };
        let credentials = Credentials {
            headers: Some(&request.headers),
            subject: record
                .identity
                .as_ref()
                .and_then(|identity| identity.client_key()),
        };
        let Some(keys) = CacheRequest::of(cache.secret(), mcp, body, place, credentials) else {
            return CacheStep::Bypass;
        };
        let counters = cache.counters(|| counters(self.metrics, &route.prefix));
        let signal = route.upstream.list_signal.load_full();
        let epoch = signal.epoch();
        let found = keys
            .private
            .as_ref()
            .and_then(|key| cache.get(key, epoch))
            .or_else(|| cache.get(&keys.public, epoch));
        match found {
            Some(answer) => {
                counters.hits.inc();
                CacheStep::Hit {
                    body: answer.render(&keys.call_id),
                    content_type: answer.content_type.clone(),
                }
            }
            None => {
                counters.misses.inc();
                let cache: Arc<ListCache> = cache.clone();
                CacheStep::Miss(AnswerFill::new(cache, Arc::new(keys), signal, epoch))
            }
        }
    }
}

/// Writes a cached answer `body` to the client, filtered by the route's exposure.
pub(super) async fn answer_from_cache<C: ClientLeg>(
    client: &mut C,
    body: Bytes,
    content_type: http::HeaderValue,
    filter: Option<&AnswerFilter>,
) -> Outcome {
    let body = match filter.and_then(|filter| filter.filter(&body)) {
        Some(filtered) => Bytes::from(filtered),
        None => body,
    };
    let mut head = Head {
        status: http::StatusCode::OK,
        headers: http::HeaderMap::with_capacity(2),
    };
    head.headers.insert(CONTENT_TYPE, content_type);
    head.headers
        .insert(CONTENT_LENGTH, http::HeaderValue::from(body.len()));
    let gone = |head_sent| {
        Outcome::ClientGone(Departure::DuringResponse {
            head_sent,
            wind_down: None,
        })
    };
    if client.write_head(head).await.is_err() {
        return gone(false);
    }
    if client.write_body(body).await.is_err() || client.finish().await.is_err() {
        return gone(true);
    }
    Outcome::Cached
}

/// The cache metrics of the route `route`.
fn counters(metrics: &Metrics, route: &str) -> CacheCounters {
    let cache = &metrics.list_cache;
    let evicted = |reason: &str| cache.evictions_total.with_label_values(&[route, reason]);
    CacheCounters {
        hits: cache.hits_total.with_label_values(&[route]),
        misses: cache.misses_total.with_label_values(&[route]),
        evicted_capacity: evicted("capacity"),
        evicted_expired: evicted("expired"),
        evicted_list_changed: evicted("list_changed"),
        bytes: cache.bytes.with_label_values(&[route]),
        entries: cache.entries.with_label_values(&[route]),
    }
}

/// Hits a session with a cached answer: for [`Forwarder::forward`].
pub(super) async fn serve_hit(
    session: &mut ServerSession,
    body: Bytes,
    content_type: http::HeaderValue,
    filter: Option<&AnswerFilter>,
) -> Outcome {
    let mut client = super::client_leg::PingoraClient::new(session);
    answer_from_cache(&mut client, body, content_type, filter).await
}
