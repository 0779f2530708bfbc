//! Upstream recycling coordinated across replicas (`worker_recycle.coordination`).
//!
//! Several mcp-edge replicas in front of the same group share, in a [`Store`] (Redis):
//! - **a lease per group**: a replica recycles a server only while it holds its group's
//!   lease ([`Coordination::acquire`]), renewed every third of `lease` while the recycle
//!   runs ([`Lease`]) and released when it ends; a replica that dies holding it releases
//!   it by expiry. So one server of a group recycles at a time across all replicas.
//! - **a request counter per server**: each replica adds the requests it routed since its
//!   last flush every [`FLUSH_INTERVAL`] ([`Coordination::flush`]), never on the request
//!   path, and the trigger reads the sum. The counter's jitter is shared too, so every
//!   replica aims at the same threshold. The holder restarts the counter (with a new
//!   jitter) when its recycle succeeds, in the same script that releases the lease.
//!
//! While the store cannot be reached, recycling pauses: no lease, no recycle (never two at
//! once). Proxying is unaffected; requests keep being counted locally and reach the
//! store with the next flush that succeeds. The pause is logged (when it begins, every
//! [`PAUSE_LOG_EVERY`] while it lasts, and when it ends) and counted.

mod flusher;
mod redis_store;

pub use flusher::flush_loop;
pub use redis_store::RedisStore;

use super::trigger;
use crate::health::ServerState;
use crate::metrics::Metrics;
use mcp_edge_filters::{RedisCoordination, WorkerRecycleSettings};
use rand::Rng;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How often each replica adds its routed requests to the shared counters.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(250);
/// After the store failed a group's lease request, the next try waits this long.
pub const PAUSED_RETRY: Duration = Duration::from_secs(1);
/// While paused, a reminder is logged this often.
pub const PAUSE_LOG_EVERY: Duration = Duration::from_secs(10);

/// A coordination store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum CoordinationError {
    /// The store refused the operation or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No answer within the operation's bound.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// An answer of an unexpected shape.
    #[error("unexpected reply ({0})")]
    Reply(&'static str),
}

/// One server of one group, as the store names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerKey {
    /// The upstream group.
    pub group: String,
    /// The server's address as written in `servers:`.
    pub server: String,
}

/// What every replica sees of one server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shared {
    /// Requests routed to it by all replicas since its last recycle.
    pub requests: u64,
    /// Where in [0, max_requests_jitter] its threshold falls, the same for every replica.
    pub jitter: f64,
}

/// One server's part of a flush.
#[derive(Debug, Clone)]
pub struct Flush {
    /// The server.
    pub key: ServerKey,
    /// Requests routed to it by this replica since its last flush.
    pub delta: u64,
    /// The jitter stored when the server has none yet.
    pub jitter: f64,
}

/// The shared state of the replicas, behind a trait so that the coordination is tested
/// with an in-memory fake in paused time.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Adds each `delta` to its server's counter (storing `jitter` where none is), and
    /// returns each server's shared state, in order.
    async fn flush(&self, counts: &[Flush]) -> Result<Vec<Shared>, CoordinationError>;
    /// Takes the lease of `key.group` for `key.server` for `ttl` when nobody holds it, and
    /// returns the server's shared state read under it; `None` when another holds it.
    async fn acquire(
        &self,
        key: &ServerKey,
        ttl: Duration,
    ) -> Result<Option<Shared>, CoordinationError>;
    /// Extends this process's lease of `group` to `ttl`; false when it no longer holds it.
    async fn renew(&self, group: &str, ttl: Duration) -> Result<bool, CoordinationError>;
    /// With `reset`, restarts `key`'s counter at 0 with that jitter; then releases the
    /// lease of `key.group` if this process holds it.
    async fn release(&self, key: &ServerKey, reset: Option<f64>) -> Result<(), CoordinationError>;
}

/// Why a recycle did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deferred {
    /// Another replica holds the group's lease.
    Busy,
    /// Under the lease the shared counter is below the threshold (another replica just
    /// recycled the server).
    NotDue,
    /// The store could not be reached: recycling paused.
    Paused,
}

/// Local book-keeping of the coordination.
#[derive(Default)]
struct Book {
    /// The last shared state read per server.
    shared: HashMap<ServerKey, Shared>,
    /// Requests taken from the local counts and not yet added to the store (a flush
    /// failed), per server.
    pending: HashMap<ServerKey, u64>,
    /// Releases that failed, retried before each flush.
    releases: Vec<(ServerKey, Option<f64>)>,
    /// No lease request for a group before this instant (after the store failed one).
    retry_at: HashMap<String, Instant>,
    /// Since when the store has been failing, and when that was last logged.
    paused: Option<(Instant, Instant)>,
}

/// The coordination of one process: its store, its settings and what it knows.
pub struct Coordination {
    settings: RedisCoordination,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    book: Mutex<Book>,
}

impl Coordination {
    /// The coordination of `settings` through `store`.
    pub fn new(settings: RedisCoordination, store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self {
            settings,
            store,
            metrics,
            book: Mutex::new(Book::default()),
        }
    }

    /// The settings it was built from (a reload that changes them builds another).
    pub fn settings(&self) -> &RedisCoordination {
        &self.settings
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What this replica knows of `key`: the shared state last read, plus the requests
    /// it routed since (`local` is its routed count), so that a server it drives past
    /// its threshold is seen due at once, and while the store is unreachable too (the
    /// pause is then counted). `None`: never read yet.
    pub fn shared(&self, key: &ServerKey, local: u64) -> Option<Shared> {
        let book = self.book();
        let shared = *book.shared.get(key)?;
        let pending = book.pending.get(key).copied().unwrap_or(0);
        Some(Shared {
            requests: shared
                .requests
                .saturating_add(pending)
                .saturating_add(local),
            ..shared
        })
    }

    /// Retries the failed releases, then takes the requests routed to `servers` since the
    /// last flush, adds them to the shared counters and reads those back. On failure the
    /// requests stay pending for the next flush.
    pub async fn flush(&self, servers: &[(ServerKey, Arc<ServerState>)]) {
        let releases = std::mem::take(&mut self.book().releases);
        for (key, reset) in releases {
            self.release(&key, reset).await;
        }
        let counts: Vec<Flush> = {
            let mut book = self.book();
            let known: Vec<&ServerKey> = servers.iter().map(|(key, _)| key).collect();
            book.shared.retain(|key, _| known.contains(&key));
            book.pending.retain(|key, _| known.contains(&key));
            let mut rng = rand::thread_rng();
            servers
                .iter()
                .map(|(key, health)| {
                    let pending = book.pending.entry(key.clone()).or_insert(0);
                    *pending += health.take_routed_requests();
                    Flush {
                        key: key.clone(),
                        delta: *pending,
                        jitter: rng.gen::<f64>(),
                    }
                })
                .collect()
        };
        match self.store.flush(&counts).await {
            Ok(shared) => {
                self.reachable();
                let mut book = self.book();
                for (flush, shared) in counts.into_iter().zip(shared) {
                    if let Some(pending) = book.pending.get_mut(&flush.key) {
                        *pending -= flush.delta.min(*pending);
                    }
                    book.shared.insert(flush.key, shared);
                }
            }
            Err(error) => self.unreachable("flush", None, &error),
        }
    }

    /// Takes the lease of `key.group` to recycle `key.server`. With `recheck`, the server
    /// is due by its requests: the shared counter read under the lease must still reach
    /// the threshold, or the lease is given back ([`Deferred::NotDue`]).
    pub async fn acquire(
        self: &Arc<Self>,
        key: &ServerKey,
        recheck: Option<&WorkerRecycleSettings>,
    ) -> Result<Lease, Deferred> {
        let now = Instant::now();
        if self
            .book()
            .retry_at
            .get(&key.group)
            .is_some_and(|at| now < *at)
        {
            return Err(Deferred::Paused);
        }
        let ttl = self.settings.lease.get();
        match self.store.acquire(key, ttl).await {
            Ok(None) => {
                self.reachable();
                Err(Deferred::Busy)
            }
            Ok(Some(shared)) => {
                self.reachable();
                self.book().shared.insert(key.clone(), shared);
                let threshold = recheck.and_then(|s| trigger::threshold_at(s, shared.jitter));
                if threshold.is_some_and(|t| shared.requests < t) {
                    self.release(key, None).await;
                    return Err(Deferred::NotDue);
                }
                Ok(Lease::hold(self.clone(), key.clone()))
            }
            Err(error) => {
                self.book()
                    .retry_at
                    .insert(key.group.clone(), now + PAUSED_RETRY);
                self.metrics
                    .recycle_coordination
                    .paused_total
                    .with_label_values(&[key.group.as_str()])
                    .inc();
                self.unreachable("acquire", Some(key), &error);
                Err(Deferred::Paused)
            }
        }
    }

    /// Releases the lease of `key.group`, restarting `key`'s counter with `reset`; when
    /// the store fails, the release is retried before the next flush (the lease expires
    /// meanwhile, the counter restarts later).
    async fn release(&self, key: &ServerKey, reset: Option<f64>) {
        match self.store.release(key, reset).await {
            Ok(()) => {
                self.reachable();
                if let Some(jitter) = reset {
                    let shared = Shared {
                        requests: 0,
                        jitter,
                    };
                    self.book().shared.insert(key.clone(), shared);
                }
            }
            Err(error) => {
                self.unreachable("release", Some(key), &error);
                self.book().releases.push((key.clone(), reset));
            }
        }
    }

    /// An operation succeeded: a pause, if any, ends.
    fn reachable(&self) {
        self.metrics.recycle_coordination.up.set(1);
        let Some((since, _)) = self.book().paused.take() else {
            return;
        };
        tracing::info!(
            paused = ?since.elapsed(),
            "worker_recycle: coordination store reachable again; upstream recycling resumes"
        );
    }

    /// An operation failed: counted, and logged when a pause begins and every
    /// [`PAUSE_LOG_EVERY`] while it lasts.
    fn unreachable(&self, operation: &str, key: Option<&ServerKey>, error: &CoordinationError) {
        let metrics = &self.metrics.recycle_coordination;
        metrics.up.set(0);
        metrics.errors_total.with_label_values(&[operation]).inc();
        let now = Instant::now();
        let mut book = self.book();
        let log = match &mut book.paused {
            None => {
                book.paused = Some((now, now));
                Some(Duration::ZERO)
            }
            Some((since, logged)) if now.duration_since(*logged) >= PAUSE_LOG_EVERY => {
                *logged = now;
                Some(now.duration_since(*since))
            }
            Some(_) => None,
        };
        drop(book);
        if let Some(paused) = log {
            tracing::warn!(
                operation,
                upstream = key.map(|k| k.group.as_str()),
                server = key.map(|k| k.server.as_str()),
                %error,
                ?paused,
                url = %mcp_edge_filters::redacted_url(&self.settings.url),
                "worker_recycle: coordination store unreachable; upstream recycling paused (proxying goes on)"
            );
        }
    }
}

/// A group's lease while a recycle runs: renewed every third of its duration until
/// released; dropped unreleased (the recycle task ended some other way), it stops
/// renewing and expires.
pub struct Lease {
    coordination: Arc<Coordination>,
    key: ServerKey,
    renewer: tokio::task::JoinHandle<()>,
}

impl Lease {
    fn hold(coordination: Arc<Coordination>, key: ServerKey) -> Self {
        let renewer = tokio::spawn(renew(coordination.clone(), key.clone()));
        Self {
            coordination,
            key,
            renewer,
        }
    }

    /// Releases the lease; `recycled` restarts the server's shared counter with a new
    /// jitter.
    pub async fn release(self, recycled: bool) {
        self.renewer.abort();
        let reset = recycled.then(|| rand::thread_rng().gen::<f64>());
        self.coordination.release(&self.key, reset).await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Renews the lease of `key.group` every third of its duration, until aborted.
async fn renew(coordination: Arc<Coordination>, key: ServerKey) {
    let ttl = coordination.settings.lease.get();
    loop {
        tokio::time::sleep(ttl / 3).await;
        match coordination.store.renew(&key.group, ttl).await {
            Ok(true) => coordination.reachable(),
            Ok(false) => {
                coordination.reachable();
                coordination
                    .metrics
                    .recycle_coordination
                    .errors_total
                    .with_label_values(&["lease_lost"])
                    .inc();
                tracing::warn!(
                    upstream = %key.group,
                    server = %key.server,
                    "worker_recycle: the group's lease expired while this replica recycled (the store was unreachable longer than `lease`); the recycle goes on"
                );
                return;
            }
            Err(error) => coordination.unreachable("renew", Some(&key), &error),
        }
    }
}

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
