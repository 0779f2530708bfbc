//! Verified tokens, kept by their SHA-256 (with the resource they were checked for),
//! each never past its `exp`: a busy client pays for one signature check, not one per
//! request. Bounded in entries.

use super::identity::Identity;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The key of a token checked for a resource.
pub type TokenKey = [u8; 32];

/// The cache key of `token` checked for `resource`.
pub fn token_key(resource: &str, token: &str) -> TokenKey {
    let mut digest = Sha256::new();
    digest.update(resource.as_bytes());
    digest.update([0]);
    digest.update(token.as_bytes());
    digest.finalize().into()
}

/// Seconds since the epoch, now.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// A bounded map from token to identity, with an expiry per entry.
pub struct TokenCache {
    limit: usize,
    entries: RwLock<HashMap<TokenKey, (Arc<Identity>, u64)>>,
}

impl TokenCache {
    /// A cache of at most `limit` entries (0: off).
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The identity of a token checked before, if its entry has not expired.
    pub fn get(&self, key: &TokenKey) -> Option<Arc<Identity>> {
        if self.limit == 0 {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let (identity, until) = entries.get(key)?;
        (*until > now_unix()).then(|| identity.clone())
    }

    /// Keeps `identity` until `until` (seconds since the epoch).
    pub fn insert(&self, key: TokenKey, identity: Arc<Identity>, until: u64) {
        if self.limit == 0 || until <= now_unix() {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.limit {
            let now = now_unix();
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= self.limit {
                // Still full of live tokens: drop an eighth, whichever the map yields.
                let drop: Vec<TokenKey> =
                    entries.keys().take(self.limit / 8 + 1).copied().collect();
                for key in drop {
                    entries.remove(&key);
                }
            }
        }
        entries.insert(key, (identity, until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Arc<Identity> {
        Arc::new(Identity::from_claims(serde_json::Map::new()))
    }

    #[test]
    fn entries_expire_and_the_size_is_bounded() {
        let cache = TokenCache::new(8);
        let live = token_key("r", "a");
        cache.insert(live, identity(), now_unix() + 60);
        assert!(cache.get(&live).is_some());
        assert!(cache.get(&token_key("other", "a")).is_none());
        let dead = token_key("r", "b");
        cache.insert(dead, identity(), now_unix());
        assert!(cache.get(&dead).is_none());
        for i in 0..100 {
            cache.insert(token_key("r", &i.to_string()), identity(), now_unix() + 60);
        }
        assert!(cache.entries.read().unwrap().len() <= 8);
    }
}
