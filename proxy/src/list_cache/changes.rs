//! Change notifications seen on an upstream group's event streams (a 2026-07-28
//! `subscriptions/listen` stream, a legacy GET stream, a call's response stream) empty the
//! group's list caches.
//!
//! A [`ListSignal`] is an epoch per upstream group, carried across reloads by the group's
//! name: a change bumps it, and a cache that sees a new epoch empties itself before it
//! answers again. An answer fetched before the change is not stored after it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The notifications that make a group's cached lists stale. `resources/updated` names one
/// resource; every cached read of the group goes with it.
const CHANGES: [&[u8]; 4] = [
    b"notifications/tools/list_changed",
    b"notifications/prompts/list_changed",
    b"notifications/resources/list_changed",
    b"notifications/resources/updated",
];

/// The longest notification name: how much of a chunk's end is kept to find a name split
/// across two chunks.
const LONGEST: usize = 36;

/// The list epoch of one upstream group.
#[derive(Debug, Default)]
pub struct ListSignal {
    epoch: AtomicU64,
    /// Set once a route of the group caches its lists: only then are its event streams
    /// searched.
    watched: AtomicBool,
}

impl ListSignal {
    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The group's lists changed.
    pub fn changed(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// A route of the group caches its lists: its event streams are searched from now on.
    pub fn watch(&self) {
        self.watched.store(true, Ordering::Relaxed);
    }

    /// Whether a route of the group caches its lists.
    pub fn watched(&self) -> bool {
        self.watched.load(Ordering::Relaxed)
    }
}

/// Searches one event stream's bytes for change notifications.
#[derive(Debug)]
pub struct ListChangeWatch {
    signal: Arc<ListSignal>,
    /// The end of the previous chunk, for a name split across two chunks.
    tail: Vec<u8>,
}

impl ListChangeWatch {
    /// The watch of a stream of the group of `signal`; `None` when no route of the group
    /// caches its lists.
    pub fn new(signal: Arc<ListSignal>) -> Option<Self> {
        signal.watched().then(|| Self {
            signal,
            tail: Vec::new(),
        })
    }

    /// The watch of a stream of the group whose epoch `swap` holds; `None` (no reference
    /// taken) when no route of the group caches its lists: the common case costs a load.
    pub fn of(swap: &arc_swap::ArcSwap<ListSignal>) -> Option<Self> {
        let current = swap.load();
        if !current.watched() {
            return None;
        }
        Self::new(arc_swap::Guard::into_inner(current))
    }

    /// Reads one chunk relayed from the upstream.
    pub fn scan(&mut self, chunk: &[u8]) {
        let found = CHANGES.iter().any(|name| {
            if memchr::memmem::find(chunk, name).is_some() {
                return true;
            }
            // Across the boundary: the previous tail and the chunk's start.
            if self.tail.is_empty() {
                return false;
            }
            let mut seam = self.tail.clone();
            seam.extend_from_slice(&chunk[..chunk.len().min(LONGEST - 1)]);
            // Only a name that reaches into this chunk: one wholly in the tail was seen.
            memchr::memmem::find_iter(&seam, name).any(|at| at + name.len() > self.tail.len())
        });
        if found {
            tracing::debug!("a list change notification: the group's list caches empty");
            self.signal.changed();
        }
        let keep = chunk.len().min(LONGEST - 1);
        if keep == LONGEST - 1 {
            self.tail.clear();
        } else {
            let excess = (self.tail.len() + keep).saturating_sub(LONGEST - 1);
            self.tail.drain(..excess.min(self.tail.len()));
        }
        self.tail.extend_from_slice(&chunk[chunk.len() - keep..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_bumps_the_epoch_even_split_across_chunks() {
        let signal = Arc::new(ListSignal::default());
        assert!(ListChangeWatch::new(signal.clone()).is_none());
        signal.watch();
        let mut watch = ListChangeWatch::new(signal.clone()).unwrap();
        watch.scan(b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n");
        assert_eq!(signal.epoch(), 0);
        watch.scan(
            b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n",
        );
        assert_eq!(signal.epoch(), 1);
        watch.scan(b"data: {\"method\":\"notifications/prom");
        watch.scan(b"pts/list_changed\"}\n\n");
        assert_eq!(signal.epoch(), 2);
        // Byte by byte.
        for byte in b"data: {\"method\":\"notifications/resources/updated\"}" {
            watch.scan(&[*byte]);
        }
        assert_eq!(signal.epoch(), 3);
        assert!(CHANGES.iter().all(|name| name.len() <= LONGEST));
    }
}
