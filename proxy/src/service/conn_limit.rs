//! The cap on client connections (`server.max_connections`).
//!
//! Every connection of the proxy listeners holds a [`ConnectionSlot`] for its life. Past
//! the cap a new connection first takes the place of the longest-idle one (an HTTP/1
//! connection waiting for its next request, or a new one that has sent nothing yet), as
//! nginx reuses its idle keep-alive connections when `worker_connections` run out; with
//! none idle it is closed at once. So the process keeps descriptors free for the admin
//! listener, the upstream connections and its files, instead of hitting its open-file
//! limit, where every accept (the admin listener's too) fails.
//!
//! A connection is counted from the end of its TLS handshake (Pingora bounds handshakes
//! at 60 s); upstream connections are not counted, which is why the default cap is half
//! the descriptors.

use crate::metrics::Metrics;
use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Descriptors kept out of the default cap: listeners, the admin listener and its
/// connections, log and pid files, health probes, recycle hooks.
const HEADROOM_FDS: u64 = 64;

/// The default cap for an open-file limit of `nofile`: half of what is left after the
/// headroom, since a proxied connection may hold an upstream connection too.
pub fn default_max_connections(nofile: u64) -> usize {
    let usable = nofile.saturating_sub(HEADROOM_FDS) / 2;
    usize::try_from(usable).unwrap_or(usize::MAX).max(1)
}

/// The process's soft open-file limit (`RLIMIT_NOFILE`), `None` when unlimited or unknown.
pub fn open_file_limit() -> Option<u64> {
    let (soft, _hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    (soft != RLIM_INFINITY).then_some(soft)
}

/// The connections of the proxy listeners, counted against the cap.
pub struct ConnectionLimit {
    /// The cap when the config sets none.
    default_max: usize,
    active: AtomicUsize,
    /// Idle connections by the order they became idle (the first is the longest idle),
    /// each with the signal that closes it.
    idle: Mutex<BTreeMap<u64, Arc<Notify>>>,
    next_idle: AtomicU64,
    metrics: Arc<Metrics>,
}

impl ConnectionLimit {
    /// A limit whose default cap derives from the process's open-file limit.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let default_max = open_file_limit().map_or(usize::MAX, default_max_connections);
        Self::with_default(default_max, metrics)
    }

    /// A limit whose cap is `default_max` when the config sets none.
    pub fn with_default(default_max: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            default_max,
            active: AtomicUsize::new(0),
            idle: Mutex::new(BTreeMap::new()),
            next_idle: AtomicU64::new(0),
            metrics,
        }
    }

    /// The cap in force for `configured` (`server.max_connections`).
    pub fn max(&self, configured: Option<u32>) -> usize {
        configured.map_or(self.default_max, |max| max as usize)
    }

    /// Admits a new connection under the cap `max`, closing the longest-idle connection to
    /// make room when the cap is reached; `None` (counted) when none is idle.
    pub fn admit(self: &Arc<Self>, max: usize) -> Option<ConnectionSlot> {
        let active = self.active.fetch_add(1, Ordering::AcqRel) + 1;
        let slot = ConnectionSlot {
            limit: self.clone(),
            close: Arc::new(Notify::new()),
        };
        self.metrics.client_connections_active.inc();
        if active <= max {
            return Some(slot);
        }
        if self.reclaim_longest_idle() {
            // The reclaimed connection releases its slot as it closes, at once.
            self.metrics.client_closed("reclaimed");
            return Some(slot);
        }
        drop(slot);
        self.metrics.client_closed("over_capacity");
        None
    }

    /// Connections open now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    fn reclaim_longest_idle(&self) -> bool {
        let longest = self.idle_set().pop_first();
        match longest {
            Some((_, close)) => {
                close.notify_one();
                true
            }
            None => false,
        }
    }

    fn idle_set(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Notify>>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One admitted connection's place under the cap; released on drop.
pub struct ConnectionSlot {
    limit: Arc<ConnectionLimit>,
    close: Arc<Notify>,
}

impl ConnectionSlot {
    /// Marks the connection idle until the guard drops: it may be closed to admit another.
    pub fn idle(&self) -> IdleGuard<'_> {
        let key = self.limit.next_idle.fetch_add(1, Ordering::Relaxed);
        self.limit.idle_set().insert(key, self.close.clone());
        IdleGuard { slot: self, key }
    }

    /// Resolves once the connection was chosen to close (while idle) to admit another.
    pub async fn reclaimed(&self) {
        self.close.notified().await;
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limit.active.fetch_sub(1, Ordering::AcqRel);
        self.limit.metrics.client_connections_active.dec();
    }
}

/// An idle period of a connection; see [`ConnectionSlot::idle`].
pub struct IdleGuard<'a> {
    slot: &'a ConnectionSlot,
    key: u64,
}

impl Drop for IdleGuard<'_> {
    fn drop(&mut self) {
        self.slot.limit.idle_set().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limit() -> Arc<ConnectionLimit> {
        Arc::new(ConnectionLimit::with_default(2, Arc::new(Metrics::new())))
    }

    #[test]
    fn the_default_cap_keeps_headroom_and_a_descriptor_for_each_upstream() {
        assert_eq!(default_max_connections(1024), 480);
        assert_eq!(default_max_connections(10), 1);
        assert_eq!(limit().max(Some(7)), 7);
        assert_eq!(limit().max(None), 2);
    }

    #[test]
    fn past_the_cap_a_connection_is_refused_when_none_is_idle() {
        let limit = limit();
        let first = limit.admit(2).expect("under the cap");
        let _second = limit.admit(2).expect("at the cap");
        assert!(limit.admit(2).is_none());
        assert_eq!(limit.active(), 2);
        drop(first);
        assert!(limit.admit(2).is_some());
    }

    #[tokio::test]
    async fn past_the_cap_the_longest_idle_connection_is_closed() {
        let limit = limit();
        let older = limit.admit(2).unwrap();
        let newer = limit.admit(2).unwrap();
        let _older_idle = older.idle();
        let _newer_idle = newer.idle();
        let third = limit.admit(2).expect("admitted in place of an idle one");
        tokio::time::timeout(Duration::from_secs(1), older.reclaimed())
            .await
            .expect("the longest idle connection is told to close");
        let newer_told = tokio::time::timeout(Duration::from_millis(50), newer.reclaimed()).await;
        assert!(newer_told.is_err(), "only one connection makes room");
        drop(third);
    }

    #[test]
    fn a_busy_connection_is_not_reclaimed() {
        let limit = limit();
        let first = limit.admit(2).unwrap();
        {
            let _idle = first.idle();
        }
        let _second = limit.admit(2).unwrap();
        assert!(limit.admit(2).is_none(), "no connection is idle any more");
    }
}
