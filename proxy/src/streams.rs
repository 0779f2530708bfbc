//! The registry of open SSE streams, served by the admin listener at `/streams`.
//!
//! A stream registers when its response head turns out to be `text/event-stream` and
//! deregisters when its [`StreamHandle`] drops. The relay updates counters on atomics, so
//! the registry lock is taken only on open, close and listing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// What is known about one open stream.
pub struct StreamStats {
    /// The route prefix that matched.
    pub route: Arc<str>,
    /// The upstream group.
    pub upstream: String,
    /// The upstream server (`host:port`).
    pub server: String,
    /// The request method (`GET` for a standing stream, `POST` for an answer).
    pub method: String,
    /// What the stream is: an answer, or a standing stream (GET or listen).
    pub kind: StreamKind,
    /// Whether it is relayed to its client, or parked.
    pub state: StreamState,
    opened: Instant,
    events: AtomicU64,
    bytes: AtomicU64,
    /// Milliseconds after `opened` of the last event; `u64::MAX` before the first.
    last_event_ms: AtomicU64,
}

impl StreamStats {
    /// Records `events` completed events and `bytes` forwarded.
    pub fn record(&self, events: u32, bytes: usize) {
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if events > 0 {
            self.events.fetch_add(u64::from(events), Ordering::Relaxed);
            let since_open = self.opened.elapsed().as_millis() as u64;
            self.last_event_ms.store(since_open, Ordering::Relaxed);
        }
    }

    fn describe(&self, now: Instant) -> serde_json::Value {
        let age = now.duration_since(self.opened);
        let last = self.last_event_ms.load(Ordering::Relaxed);
        let last_event_age = (last != u64::MAX)
            .then(|| (age.as_millis() as u64).saturating_sub(last) as f64 / 1000.0);
        serde_json::json!({
            "route": &*self.route,
            "upstream": self.upstream,
            "server": self.server,
            "method": self.method,
            "kind": self.kind.label(),
            "state": self.state.label(),
            "age_seconds": age.as_secs_f64(),
            "events": self.events.load(Ordering::Relaxed),
            "bytes": self.bytes.load(Ordering::Relaxed),
            "last_event_age_seconds": last_event_age,
        })
    }
}

/// What a listed exchange is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    /// An event stream relayed to its client.
    Open,
    /// An abandoned exchange kept running upstream after its cleanup deadline.
    Parked,
}

impl StreamState {
    /// The `state` field of `/streams`.
    pub fn label(self) -> &'static str {
        match self {
            StreamState::Open => "open",
            StreamState::Parked => "parked",
        }
    }
}

/// What an event stream is, for `/streams` and for how it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// The answer to a request (a POST's response stream), which ends with its answer.
    Response,
    /// A standing `GET` stream (streamable HTTP before 2026-07-28, legacy SSE).
    Standing,
    /// The response stream of a `subscriptions/listen` POST (2026-07-28): standing, never
    /// answered while it lasts.
    Listen,
}

impl StreamKind {
    /// The `kind` field of `/streams`.
    pub fn label(self) -> &'static str {
        match self {
            StreamKind::Response => "response",
            StreamKind::Standing => "standing",
            StreamKind::Listen => "listen",
        }
    }

    /// True for a stream that carries no answer of its own: closed at once when its
    /// client leaves or the process drains.
    pub fn is_standing(self) -> bool {
        matches!(self, StreamKind::Standing | StreamKind::Listen)
    }
}

/// All open SSE streams of the process.
#[derive(Default)]
pub struct StreamRegistry {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<StreamStats>>>,
}

impl StreamRegistry {
    /// Registers a stream (or a parked exchange); it stays listed until the handle drops.
    pub fn open(
        self: &Arc<Self>,
        route: Arc<str>,
        upstream: &str,
        server: &str,
        method: &str,
        kind: StreamKind,
        state: StreamState,
    ) -> StreamHandle {
        let stats = Arc::new(StreamStats {
            route,
            upstream: upstream.to_string(),
            server: server.to_string(),
            method: method.to_string(),
            kind,
            state,
            opened: Instant::now(),
            events: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_event_ms: AtomicU64::new(u64::MAX),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, stats.clone());
        }
        StreamHandle {
            id,
            stats,
            registry: self.clone(),
        }
    }

    #[cfg(test)]
    /// How many streams are open.
    pub fn len(&self) -> usize {
        self.open.lock().map(|open| open.len()).unwrap_or(0)
    }

    #[cfg(test)]
    /// True when no stream is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `/streams` document: every open stream, oldest first.
    pub fn describe(&self) -> serde_json::Value {
        let now = Instant::now();
        let mut streams: Vec<_> = self
            .open
            .lock()
            .map(|open| open.values().cloned().collect())
            .unwrap_or_default();
        streams.sort_by_key(|stats| stats.opened);
        let parked = streams
            .iter()
            .filter(|s| s.state == StreamState::Parked)
            .count();
        let list: Vec<_> = streams.iter().map(|s| s.describe(now)).collect();
        serde_json::json!({ "count": list.len(), "parked": parked, "streams": list })
    }
}

/// Keeps one stream listed; deregisters it on drop.
pub struct StreamHandle {
    id: u64,
    stats: Arc<StreamStats>,
    registry: Arc<StreamRegistry>,
}

impl StreamHandle {
    /// The stream's counters.
    pub fn stats(&self) -> &StreamStats {
        &self.stats
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        if let Ok(mut open) = self.registry.open.lock() {
            open.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn streams_are_listed_while_their_handle_lives() {
        let registry = Arc::new(StreamRegistry::default());
        let handle = registry.open(
            Arc::from("/mcp"),
            "gateway",
            "127.0.0.1:4444",
            "POST",
            StreamKind::Listen,
            StreamState::Open,
        );
        tokio::time::advance(std::time::Duration::from_secs(3)).await;
        handle.stats().record(2, 100);
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        let listed = registry.describe();
        assert_eq!(listed["count"], 1);
        let stream = &listed["streams"][0];
        assert_eq!(stream["route"], "/mcp");
        assert_eq!(stream["kind"], "listen");
        assert_eq!(stream["events"], 2);
        assert_eq!(stream["bytes"], 100);
        assert_eq!(stream["age_seconds"], 4.0);
        assert_eq!(stream["last_event_age_seconds"], 1.0);
        drop(handle);
        assert!(registry.is_empty());
    }
}
