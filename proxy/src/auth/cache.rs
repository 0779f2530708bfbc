//! Verified tokens, kept with the resource they were checked for, each never past its
//! `exp`: a busy client pays for one signature check, not one per request. Bounded in
//! entries.

use super::identity::Identity;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, now.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// One verified token: the resource it was checked for, who it speaks for, and until
/// when (seconds since the epoch).
struct Entry {
    resource: Box<str>,
    identity: Arc<Identity>,
    until: u64,
}

/// A bounded map from token to identity, with an expiry per entry. Keyed by the token
/// itself (std's SipHash with a per-process random key, so no client can aim collisions),
/// and a hit compares the whole token: no token is ever taken for another.
pub struct TokenCache {
    limit: usize,
    entries: RwLock<HashMap<Box<str>, Entry>>,
}

impl TokenCache {
    /// A cache of at most `limit` entries (0: off).
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The identity of `token` checked before for `resource`, if its entry has not
    /// expired.
    pub fn get(&self, resource: &str, token: &str) -> Option<Arc<Identity>> {
        if self.limit == 0 {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(token)?;
        (*entry.resource == *resource && entry.until > now_unix()).then(|| entry.identity.clone())
    }

    /// Keeps `identity` of `token` checked for `resource` until `until` (seconds since
    /// the epoch).
    pub fn insert(&self, resource: &str, token: &str, identity: Arc<Identity>, until: u64) {
        if self.limit == 0 || until <= now_unix() {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.limit {
            let now = now_unix();
            entries.retain(|_, entry| entry.until > now);
            if entries.len() >= self.limit {
                // Still full of live tokens: drop an eighth, whichever the map yields.
                let drop: Vec<Box<str>> =
                    entries.keys().take(self.limit / 8 + 1).cloned().collect();
                for key in drop {
                    entries.remove(&key);
                }
            }
        }
        let entry = Entry {
            resource: resource.into(),
            identity,
            until,
        };
        entries.insert(token.into(), entry);
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
        cache.insert("r", "a", identity(), now_unix() + 60);
        assert!(cache.get("r", "a").is_some());
        assert!(cache.get("other", "a").is_none());
        assert!(cache.get("r", "ab").is_none());
        cache.insert("r", "b", identity(), now_unix());
        assert!(cache.get("r", "b").is_none());
        for i in 0..100 {
            cache.insert("r", &i.to_string(), identity(), now_unix() + 60);
        }
        assert!(cache.entries.read().unwrap().len() <= 8);
    }
}
