//! The routes' caches of list results across generations: a route whose config and
//! upstream group's config are unchanged keeps its cache through a reload (or a refresh of
//! the upstream names); any other starts empty. A group keeps its list epoch by name, so a
//! change notification on a stream opened before a reload reaches the caches after it.

use super::{Route, RouteTable, UpstreamGroup};
use crate::config::model::{Config, RouteConfig};
use crate::list_cache::ListCache;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The cache of `route` (served by `group`), when it sets `list_cache`.
pub(super) fn cache_of(
    route: &RouteConfig,
    config: &Config,
    group: &UpstreamGroup,
) -> Option<Arc<ListCache>> {
    let settings = route.list_cache.as_ref()?;
    group.list_signal.load().watch();
    let mut hash = Sha256::new();
    // Serializing a config that was just deserialized cannot fail.
    hash.update(serde_json::to_vec(route).unwrap_or_default());
    hash.update([0]);
    hash.update(serde_json::to_vec(&config.upstreams.get(&route.upstream)).unwrap_or_default());
    Some(Arc::new(ListCache::new(settings, hash.finalize().into())))
}

impl RouteTable {
    /// Takes over what `previous` (the generation this one replaces) cached: the list
    /// epoch of each group of the same name, and the cache of each route whose configs
    /// did not change. Called before this table serves.
    pub fn keep_list_caches(&mut self, previous: &RouteTable) {
        for group in &self.groups {
            if let Some(old) = previous.groups.iter().find(|g| g.name == group.name) {
                let signal = old.list_signal.load_full();
                if group.list_signal.load().watched() {
                    signal.watch();
                }
                group.list_signal.store(signal);
            }
        }
        for route in &mut self.routes {
            let Some(cache) = &route.list_cache else {
                continue;
            };
            if let Some(kept) = previous.cache_with(cache.fingerprint()) {
                route.list_cache = Some(kept);
            }
        }
    }

    /// The cache made for configs of `fingerprint`, if a route has it.
    fn cache_with(&self, fingerprint: &[u8; 32]) -> Option<Arc<ListCache>> {
        self.routes
            .iter()
            .filter_map(|route: &Route| route.list_cache.as_ref())
            .find(|cache| cache.fingerprint() == fingerprint)
            .cloned()
    }
}
