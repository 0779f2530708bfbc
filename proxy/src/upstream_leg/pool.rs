//! Keep-alive pool of idle upstream connections.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::Duration;
use tokio::time::Instant;

use super::connection::UpstreamConnection;
use super::error::UpstreamError;
use super::tls::{Endpoint, EndpointKey};

/// Settings of the idle-connection pool.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most idle connections kept per endpoint and per worker thread
    /// (the oldest is closed beyond). 0 disables pooling. Default 128.
    pub max_idle_per_server: usize,
    /// Idle connections older than this are closed instead of reused.
    /// Default 4 s: below uvicorn's 5 s keep-alive.
    pub idle_timeout: Duration,
    /// A connection idle at least this long is probed for a close (one non-blocking
    /// peek) before it is reused. A busy connection, idle for less, is reused as is: a
    /// close racing the request is caught by the caller's stale-connection retry.
    /// Default 500 ms.
    pub probe_after_idle: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_idle_per_server: 128,
            idle_timeout: Duration::from_secs(4),
            probe_after_idle: Duration::from_millis(500),
        }
    }
}

/// Idle connections are kept per worker thread (a connection must stay on the
/// tokio runtime that created it) and per endpoint: server address, and for TLS the
/// client settings and server name, so a connection is only reused for a request
/// that would have opened the same one.
type ShardKey = (ThreadId, EndpointKey);

/// Keep-alive pool of upstream connections, keyed by endpoint and sharded by
/// thread. `Send + Sync`: share it in an `Arc`.
#[derive(Debug, Default)]
pub struct ConnectionPool {
    settings: PoolSettings,
    idle: Mutex<HashMap<ShardKey, VecDeque<UpstreamConnection>>>,
}

impl ConnectionPool {
    /// An empty pool.
    pub fn new(settings: PoolSettings) -> Self {
        ConnectionPool {
            settings,
            idle: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ShardKey, VecDeque<UpstreamConnection>>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a live idle connection to `endpoint` (reused = true) or opens a
    /// new one (TCP_NODELAY on, TLS handshake done) within `connect_timeout`
    /// (reused = false).
    pub async fn checkout(
        &self,
        endpoint: &Endpoint,
        connect_timeout: Option<Duration>,
    ) -> Result<(UpstreamConnection, bool), UpstreamError> {
        if let Some(mut conn) = self.take_idle(endpoint.key()) {
            conn.mark_reused();
            return Ok((conn, true));
        }
        let conn = UpstreamConnection::open(endpoint, connect_timeout).await?;
        Ok((conn, false))
    }

    /// Pops the most recently used live idle connection of this thread to
    /// `endpoint`, closing expired and dead ones on the way.
    fn take_idle(&self, endpoint: EndpointKey) -> Option<UpstreamConnection> {
        let key = (thread::current().id(), endpoint);
        loop {
            let (candidate, expired) = {
                let mut idle = self.lock();
                let list = idle.get_mut(&key)?;
                let expired = self.split_expired(list, Instant::now());
                let candidate = list.pop_back();
                if list.is_empty() {
                    idle.remove(&key);
                }
                (candidate, expired)
            };
            // Closed outside the lock.
            drop(expired);
            let conn = candidate?;
            // A busy connection is taken as is; one idle longer may have met the
            // upstream's keep-alive timer: it is probed first.
            if conn.idle_since().elapsed() < self.settings.probe_after_idle || conn.probe_alive() {
                return Some(conn);
            }
            tracing::debug!(addr = %endpoint.socket, "discarding an idle upstream connection closed by the server");
        }
    }

    /// Removes the connections idle for `idle_timeout` or more from the front
    /// (oldest end) of `list`.
    fn split_expired(
        &self,
        list: &mut VecDeque<UpstreamConnection>,
        now: Instant,
    ) -> Vec<UpstreamConnection> {
        let timeout = self.settings.idle_timeout;
        let fresh_from = list
            .iter()
            .position(|c| now.saturating_duration_since(c.idle_since()) < timeout)
            .unwrap_or(list.len());
        list.drain(..fresh_from).collect()
    }

    /// Returns a connection whose exchange finished cleanly
    /// ([`UpstreamConnection::is_reusable`]) to the pool of the current thread;
    /// any other connection is dropped (closed).
    pub fn release(&self, mut conn: UpstreamConnection) {
        if self.settings.max_idle_per_server == 0 || !conn.is_reusable() {
            return;
        }
        conn.make_idle();
        let key = (thread::current().id(), conn.endpoint_key());
        let evicted = {
            let mut idle = self.lock();
            let list = idle.entry(key).or_default();
            list.push_back(conn);
            if list.len() > self.settings.max_idle_per_server {
                list.pop_front()
            } else {
                None
            }
        };
        drop(evicted);
    }

    /// Closes every idle connection (of any thread) that has been idle for
    /// `idle_timeout` or more; returns how many. The proxy calls it once a second
    /// (the pool sweep in `server.rs`), so a connection the upstream closed does not
    /// stay half-open until the next checkout.
    pub fn evict_expired(&self) -> usize {
        let now = Instant::now();
        let expired: Vec<UpstreamConnection> = {
            let mut idle = self.lock();
            let mut expired = Vec::new();
            for list in idle.values_mut() {
                expired.extend(self.split_expired(list, now));
            }
            idle.retain(|_, list| !list.is_empty());
            expired
        };
        expired.len()
    }

    #[cfg(test)]
    /// Number of idle connections held (all threads and servers).
    pub fn idle_count(&self) -> usize {
        self.lock().values().map(VecDeque::len).sum()
    }
}
