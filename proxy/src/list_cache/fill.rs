//! What a cacheable request that missed takes to its exchange: where to store the
//! upstream's answer, once it arrived whole.

use super::answer::{Scope, StoredAnswer};
use super::changes::ListSignal;
use super::key::CacheRequest;
use super::store::ListCache;
use bytes::Bytes;
use std::sync::Arc;

/// Stores the answer to one request, if it may be cached. Cloned per attempt: a request
/// sent again after a stale pooled connection stores its answer as well.
#[derive(Debug, Clone)]
pub struct AnswerFill {
    cache: Arc<ListCache>,
    request: Arc<CacheRequest>,
    /// The group's lists, and their epoch when the request missed.
    signal: Arc<ListSignal>,
    epoch: u64,
}

impl AnswerFill {
    /// The fill of `request`, which missed `cache` at `epoch` of `signal`.
    pub fn new(
        cache: Arc<ListCache>,
        request: Arc<CacheRequest>,
        signal: Arc<ListSignal>,
        epoch: u64,
    ) -> Self {
        Self {
            cache,
            request,
            signal,
            epoch,
        }
    }

    /// Offers the whole answer `body` (a successful, unencoded JSON response of type
    /// `content_type`): it is stored when it is this call's complete result with a positive
    /// `ttlMs` and a `cacheScope`, and, when `private`, the caller had credentials.
    pub fn offer(&self, content_type: http::HeaderValue, body: Bytes) {
        let Some((answer, freshness)) = StoredAnswer::of(body, content_type, &self.request.call_id)
        else {
            return;
        };
        let key = match freshness.scope {
            Scope::Public => self.request.public,
            Scope::Private => match self.request.private {
                Some(key) => key,
                None => return,
            },
        };
        // A change since the miss keeps the answer out: it may predate the change.
        if self.signal.epoch() != self.epoch {
            return;
        }
        self.cache.insert(key, answer, freshness, self.epoch);
    }
}
