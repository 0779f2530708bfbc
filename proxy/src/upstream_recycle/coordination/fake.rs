//! An in-memory [`Store`] for the tests: one `World` shared by the replicas' stores, with
//! lease expiry on tokio's (pausable) clock and a switch that makes it unreachable.

use super::{CoordinationError, Flush, ServerKey, Shared, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// What the store holds.
#[derive(Default)]
pub struct World {
    /// Group → (holder, server, expiry).
    leases: Mutex<HashMap<String, (String, String, Instant)>>,
    /// Server → (requests, jitter).
    counters: Mutex<HashMap<ServerKey, (u64, Option<f64>)>>,
    /// Unreachable while set.
    pub down: AtomicBool,
    /// Operations answered.
    pub operations: AtomicU64,
}

impl World {
    /// A fresh world.
    pub fn new() -> Arc<World> {
        Arc::new(World::default())
    }

    /// The shared count of `server` in group `g`.
    pub fn requests(&self, server: &str) -> u64 {
        let key = ServerKey {
            group: "g".into(),
            server: server.into(),
        };
        self.counters.lock().unwrap().get(&key).map_or(0, |c| c.0)
    }

    /// The holder and server of group `g`'s lease, if unexpired.
    pub fn lease(&self) -> Option<(String, String)> {
        let leases = self.leases.lock().unwrap();
        let (holder, server, expiry) = leases.get("g")?;
        (Instant::now() < *expiry).then(|| (holder.clone(), server.clone()))
    }

    fn check(&self) -> Result<(), CoordinationError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(CoordinationError::Timeout(Duration::from_millis(500)));
        }
        self.operations.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// One replica's view of the world.
pub struct MemoryStore {
    world: Arc<World>,
    token: String,
}

impl MemoryStore {
    /// A store of `world` for the replica named `token`.
    pub fn new(world: &Arc<World>, token: &str) -> Arc<MemoryStore> {
        Arc::new(MemoryStore {
            world: world.clone(),
            token: token.to_owned(),
        })
    }

    fn holds(&self, group: &str) -> bool {
        let leases = self.world.leases.lock().unwrap();
        leases
            .get(group)
            .is_some_and(|(holder, _, expiry)| *holder == self.token && Instant::now() < *expiry)
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn flush(&self, counts: &[Flush]) -> Result<Vec<Shared>, CoordinationError> {
        self.world.check()?;
        let mut counters = self.world.counters.lock().unwrap();
        Ok(counts
            .iter()
            .map(|flush| {
                let entry = counters.entry(flush.key.clone()).or_insert((0, None));
                entry.0 += flush.delta;
                let jitter = *entry.1.get_or_insert(flush.jitter);
                Shared {
                    requests: entry.0,
                    jitter,
                }
            })
            .collect())
    }

    async fn acquire(
        &self,
        key: &ServerKey,
        ttl: Duration,
    ) -> Result<Option<Shared>, CoordinationError> {
        self.world.check()?;
        let now = Instant::now();
        let mut leases = self.world.leases.lock().unwrap();
        if leases
            .get(&key.group)
            .is_some_and(|(_, _, expiry)| now < *expiry)
        {
            return Ok(None);
        }
        leases.insert(
            key.group.clone(),
            (self.token.clone(), key.server.clone(), now + ttl),
        );
        let counters = self.world.counters.lock().unwrap();
        let (requests, jitter) = counters.get(key).copied().unwrap_or((0, None));
        Ok(Some(Shared {
            requests,
            jitter: jitter.unwrap_or(0.0),
        }))
    }

    async fn renew(&self, group: &str, ttl: Duration) -> Result<bool, CoordinationError> {
        self.world.check()?;
        if !self.holds(group) {
            return Ok(false);
        }
        let mut leases = self.world.leases.lock().unwrap();
        if let Some(lease) = leases.get_mut(group) {
            lease.2 = Instant::now() + ttl;
        }
        Ok(true)
    }

    async fn release(&self, key: &ServerKey, reset: Option<f64>) -> Result<(), CoordinationError> {
        self.world.check()?;
        if let Some(jitter) = reset {
            self.world
                .counters
                .lock()
                .unwrap()
                .insert(key.clone(), (0, Some(jitter)));
        }
        if self.holds(&key.group) {
            self.world.leases.lock().unwrap().remove(&key.group);
        }
        Ok(())
    }
}
