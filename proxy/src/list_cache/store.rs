//! The entries of one route's cache: least recently used first out ([`lru`]), bounded by
//! count and by bytes; an entry expires at its `ttlMs` or the route's `max_ttl`, whichever
//! comes first, and the whole cache empties when its upstream group's lists change.

use super::answer::{Freshness, StoredAnswer};
use super::key::Key;
use crate::config::list_cache::ListCacheConfig;
use lru::LruCache;
use prometheus::{IntCounter, IntGauge};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// What an entry costs besides its body: its key, its bookkeeping and the LRU's links.
const ENTRY_OVERHEAD: usize = 128;

/// The metrics of one route's cache (`route` label), set once by the service.
#[derive(Debug, Clone)]
pub struct CacheCounters {
    /// Requests answered from the cache.
    pub hits: IntCounter,
    /// Cacheable requests the cache could not answer.
    pub misses: IntCounter,
    /// Entries pushed out by `max_entries` or `max_bytes`.
    pub evicted_capacity: IntCounter,
    /// Entries found expired.
    pub evicted_expired: IntCounter,
    /// Entries dropped because their group's lists changed.
    pub evicted_list_changed: IntCounter,
    /// Bytes held.
    pub bytes: IntGauge,
    /// Entries held.
    pub entries: IntGauge,
}

/// One entry.
#[derive(Debug)]
struct Entry {
    answer: Arc<StoredAnswer>,
    expires: Instant,
}

impl Entry {
    fn weight(&self) -> usize {
        self.answer.len() + ENTRY_OVERHEAD
    }
}

/// The entries and their sizes.
#[derive(Debug)]
struct Entries {
    lru: LruCache<Key, Entry>,
    bytes: usize,
    /// The group's list epoch the entries belong to; `None` before the first use.
    epoch: Option<u64>,
}

/// One route's cache of list results.
#[derive(Debug)]
pub struct ListCache {
    /// The route's and its group's config, as they were when the cache was made: a reload
    /// keeps the cache only when both are unchanged.
    fingerprint: [u8; 32],
    /// The secret its keys are made with.
    secret: Key,
    max_bytes: usize,
    max_ttl: Duration,
    entries: Mutex<Entries>,
    counters: OnceLock<CacheCounters>,
}

impl ListCache {
    /// An empty cache bounded by `config`, for a route and group whose configs have
    /// `fingerprint`.
    pub fn new(config: &ListCacheConfig, fingerprint: [u8; 32]) -> Self {
        let max_entries =
            NonZeroUsize::new(config.max_entries.get_usize()).unwrap_or(NonZeroUsize::MIN);
        Self {
            fingerprint,
            secret: rand::random(),
            max_bytes: config.max_bytes.get_usize(),
            max_ttl: config.max_ttl.get(),
            entries: Mutex::new(Entries {
                lru: LruCache::new(max_entries),
                bytes: 0,
                epoch: None,
            }),
            counters: OnceLock::new(),
        }
    }

    /// The fingerprint of the configs it was made for.
    pub fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }

    /// The secret its keys are made with.
    pub fn secret(&self) -> &Key {
        &self.secret
    }

    /// Its metrics, made by `make` on first use.
    pub fn counters(&self, make: impl FnOnce() -> CacheCounters) -> &CacheCounters {
        self.counters.get_or_init(make)
    }

    /// The fresh answer under `key`, the group's lists being at `epoch`. An expired one is
    /// dropped.
    pub fn get(&self, key: &Key, epoch: u64) -> Option<Arc<StoredAnswer>> {
        let mut entries = self.lock(epoch);
        let now = Instant::now();
        let answer = match entries.lru.get(key) {
            Some(entry) if entry.expires > now => Some(entry.answer.clone()),
            Some(_) => {
                let expired = entries.lru.pop(key);
                if let Some(expired) = expired {
                    entries.bytes -= expired.weight();
                    self.count(|c| &c.evicted_expired, 1);
                }
                None
            }
            None => None,
        };
        self.show(&entries);
        answer
    }

    /// Stores `answer` under `key`, fresh for its `ttlMs` capped by `max_ttl`; not when the
    /// group's lists changed since `epoch` (when the request was looked up), nor when it
    /// is larger than `max_bytes`. Least recently used entries leave to make room.
    pub fn insert(&self, key: Key, answer: StoredAnswer, freshness: Freshness, epoch: u64) {
        let entry = Entry {
            answer: Arc::new(answer),
            expires: Instant::now() + freshness.ttl.min(self.max_ttl),
        };
        let weight = entry.weight();
        if weight > self.max_bytes {
            return;
        }
        let mut entries = self.lock(epoch);
        if entries.epoch != Some(epoch) {
            // The lists changed while the answer was on its way: it may be stale.
            return;
        }
        let mut evicted = 0;
        if let Some((old_key, old)) = entries.lru.push(key, entry) {
            entries.bytes -= old.weight();
            if old_key != key {
                evicted += 1;
            }
        }
        entries.bytes += weight;
        while entries.bytes > self.max_bytes {
            let Some((_, old)) = entries.lru.pop_lru() else {
                break;
            };
            entries.bytes -= old.weight();
            evicted += 1;
        }
        self.count(|c| &c.evicted_capacity, evicted);
        self.show(&entries);
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lru
            .len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries, emptied first when the group's lists are no longer at the epoch they
    /// belong to.
    fn lock(&self, epoch: u64) -> std::sync::MutexGuard<'_, Entries> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.epoch {
            Some(seen) if seen >= epoch => {}
            Some(_) => {
                let dropped = entries.lru.len() as u64;
                entries.lru.clear();
                entries.bytes = 0;
                entries.epoch = Some(epoch);
                self.count(|c| &c.evicted_list_changed, dropped);
            }
            None => entries.epoch = Some(epoch),
        }
        entries
    }

    fn count(&self, which: impl FnOnce(&CacheCounters) -> &IntCounter, by: u64) {
        if by > 0 {
            if let Some(counters) = self.counters.get() {
                which(counters).inc_by(by);
            }
        }
    }

    fn show(&self, entries: &Entries) {
        if let Some(counters) = self.counters.get() {
            counters.bytes.set(entries.bytes as i64);
            counters.entries.set(entries.lru.len() as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::answer::Scope;
    use super::*;
    use bytes::Bytes;
    use mcp_edge_filters::bounded::Count;

    fn answer(size: usize) -> (StoredAnswer, Freshness) {
        let pad = "x".repeat(size);
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":{{"pad":"{pad}","ttlMs":1000,"cacheScope":"public"}}}}"#
        );
        let json = http::HeaderValue::from_static("application/json");
        StoredAnswer::of(Bytes::from(body), json, "1").unwrap()
    }

    fn cache(entries: u64, bytes: u64) -> ListCache {
        let config = ListCacheConfig {
            max_entries: Count::new(entries),
            max_bytes: Count::new(bytes),
            ..ListCacheConfig::default()
        };
        ListCache::new(&config, [0; 32])
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_at_their_ttl_or_the_cap() {
        let cache = cache(10, 1 << 20);
        let (a, fresh) = answer(10);
        cache.insert([1; 32], a, fresh, 0);
        assert!(cache.get(&[1; 32], 0).is_some());
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(cache.get(&[1; 32], 0).is_none());
        assert!(cache.is_empty());
        let (b, fresh) = answer(10);
        let long = Freshness {
            ttl: Duration::from_secs(3600),
            scope: Scope::Public,
        };
        cache.insert([2; 32], b, long, 0);
        tokio::time::advance(Duration::from_secs(301)).await;
        assert!(cache.get(&[2; 32], 0).is_none(), "max_ttl caps {fresh:?}");
    }

    #[test]
    fn count_and_bytes_push_out_the_least_recently_used() {
        let cache = cache(2, 4096);
        for k in 1..=2u8 {
            let (a, f) = answer(100);
            cache.insert([k; 32], a, f, 0);
        }
        assert!(cache.get(&[1; 32], 0).is_some());
        let (c, f) = answer(100);
        cache.insert([3; 32], c, f, 0);
        assert!(
            cache.get(&[2; 32], 0).is_none(),
            "the least recently used left"
        );
        assert!(cache.get(&[1; 32], 0).is_some());
        // Bytes: a large answer pushes both out; one over the bound is not stored.
        let (big, f) = answer(3800);
        cache.insert([4; 32], big, f, 0);
        assert_eq!(cache.len(), 1);
        let (huge, f) = answer(5000);
        cache.insert([5; 32], huge, f, 0);
        assert!(cache.get(&[5; 32], 0).is_none());
    }

    #[test]
    fn a_list_change_empties_it_and_stale_answers_are_not_stored() {
        let cache = cache(10, 1 << 20);
        let (a, f) = answer(10);
        cache.insert([1; 32], a, f, 0);
        assert!(cache.get(&[1; 32], 1).is_none());
        assert!(cache.is_empty());
        let (b, f) = answer(10);
        cache.insert([2; 32], b, f, 0);
        assert!(
            cache.get(&[2; 32], 1).is_none(),
            "fetched before the change"
        );
    }
}
